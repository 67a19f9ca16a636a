//! fieldcase-core: the shared library behind every fieldcase phone and the office server.
//!
//! It owns the domain model (cases, visit notes, accompaniment tasks), one automerge document per
//! case, the encrypted SQLite store a phone keeps offline, the sans-IO sync engine and its HTTPS
//! transport. See `ARCHITECTURE.md` at the repository root for the layering.

pub mod clock;
pub mod crypto;
pub mod device;
pub mod document;
pub mod error;
pub mod ids;
pub mod media;
pub mod model;
pub mod protocol;
pub mod selfcheck;
pub mod store;
pub mod sync;
pub mod transfer;
pub mod transport;
mod util;

pub use automerge::{ActorId, ChangeHash};
pub use error::{CoreError, Result};
