//! HTTP: the router and its middleware, the signed-request extractor of devices, enrollment,
//! the sync endpoint, the admin API, the web pages with their session extractor, TLS, and
//! running the server. Handlers decode and bound what arrives, check who asks, run an office
//! operation on the blocking pool inside one transaction, and turn its result into an answer.
//!
//! Must not: write SQL or hold business rules (those are the office's), or be imported by
//! `office` or `storage`.

mod address_slots;
pub(crate) mod admin_api;
pub(crate) mod attachments;
mod body_rate;
mod connection_cap;
pub mod device_auth;
mod device_rate;
pub(crate) mod error;
pub(crate) mod ratelimit;
pub(crate) mod routes;
pub(crate) mod serve;
pub(crate) mod state;
pub(crate) mod sync;
mod sync_stream;
pub mod tls;
pub mod web;
