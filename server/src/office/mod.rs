//! The office's operations: what the admin commands, the admin API, the web pages and the sync
//! endpoint all call. Each is a plain synchronous function over a [`crate::storage::sql::Sql`]
//! connection of either backend, run inside the caller's write transaction
//! ([`crate::storage::sql::Database::write`]) together with its audit entries, so that it is
//! either fully recorded or not made; those that store a case return its document in a
//! [`crate::storage::case_docs::WithDocs`], given to memory once the transaction committed.
//!
//! Must not: speak HTTP or render pages, open its own transaction, or import anything from
//! `http`.

pub mod access;
pub mod alerts;
pub mod anonymity;
pub mod attachments;
pub mod audit;
pub mod backup;
pub mod case_file;
pub mod cases;
pub mod conflicts;
pub mod devices;
pub mod enrollment;
pub mod export;
pub mod hub;
pub mod pins;
pub mod plan;
pub mod quarantine;
pub mod reports;
pub mod retention;
mod rows;
pub mod sign_in;
pub mod suppression;
pub mod teams;
pub mod users;

#[cfg(test)]
mod tests;
