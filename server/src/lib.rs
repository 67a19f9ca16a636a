//! fieldcase office server: enrollment, device authentication, the sync hub, revocation and
//! quarantine, and the office's web pages and admin API.
//!
//! Everything lives in one data folder: the SQLite database ([`storage::sql::DB_FILE`]; or, for
//! several instances, one PostgreSQL database shared by all: [`storage::sql::DatabaseConfig`]),
//! the secret key file ([`storage::keys::KEY_FILE`], mode 0600) and a self-signed TLS
//! certificate ([`http::tls::CERT_FILE`], [`http::tls::CERT_KEY_FILE`]) whose SHA-256
//! fingerprint devices pin. The server speaks HTTPS only, TLS 1.3 only (rustls with ring).
//!
//! The crate is layered; each layer imports only the ones below it (`ARCHITECTURE.md` has the
//! table, and `tests/layers.rs` checks it):
//!
//! - [`http`]: the router, the signed-request and session extractors, the sync endpoint, the
//!   admin API, the web pages, TLS and [`Server`]. It calls office operations and never writes
//!   SQL itself.
//! - [`office`]: the operations themselves (cases and assignment, the sync hub's storage,
//!   users, sign-in, enrollment, devices and revocation, quarantine, conflicts, audit), each a
//!   plain function inside the caller's database transaction.
//! - [`storage`]: the SQL facade over SQLite and PostgreSQL with their migrations, case
//!   documents at rest and in memory, the key file, the data folder.
//! - at the bottom, shared by all: [`error`], [`clock`], [`config`], [`display`].
//!
//! The `fieldcase-server` binary adds the command line (`src/main.rs` and `src/cli/`) on top.

#![warn(unreachable_pub)]

pub mod clock;
pub mod config;
pub mod display;
pub mod error;
pub mod http;
pub mod office;
pub mod storage;

pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{ServerError, SqlError};
pub use http::error::AppError;
pub use http::serve::{
    RunningServer, SHUTDOWN_GRACE, Server, ServerOptions, TLS_HANDSHAKE_TIMEOUT, serve,
    serve_router,
};
pub use http::state::{AppState, Limits};
