//! Sync between a device and the office server: heads-based change exchange with a server cursor.
//!
//! The engine is sans-IO: [`messages`] defines the versioned, bounded wire messages; the store
//! builds a request from what it holds ([`crate::store::Store::prepare_sync`]) and applies a
//! response in one transaction ([`crate::store::Store::apply_sync`]); [`client::sync`] drives
//! rounds over any [`client::SyncTransport`] (the HTTPS transport, or an in-process server in
//! tests). Nothing here opens a socket.
//!
//! One round: the device sends its server cursor and, for each case with local changes (from the
//! outbox, so cost follows what changed), the changes the server lacks since the heads the server
//! last confirmed. The server applies them, and answers with the changes of every assigned case
//! that changed since the cursor (computed from the heads it knows this device has), a new cursor,
//! and `more` when it paginated. A lost response changes nothing on the device: the next round
//! re-sends, and applying a change twice is a no-op, so sync is idempotent and resumable.
//!
//! On a slow link the office streams its answer ([`frames`]): page after page in one body, each
//! page cut into frames of at most [`hub::FRAME_BUDGET`] that the phone applies as they arrive,
//! so the link stays full and a cut costs at most the frame in flight.
//!
//! A long sync reports how far it has come ([`progress`]): cases and bytes done and expected,
//! from the outbox for uploads and from what the office says is left after each page
//! ([`messages::Remaining`]) for downloads.

pub mod client;
pub mod epoch;
pub mod frames;
pub mod hub;
pub mod messages;
pub mod progress;

pub use client::{SyncReport, SyncTransport, sync, sync_with_progress};
pub use epoch::{Attested, OfficeEpoch};
pub use messages::{
    CaseChanges, PROTOCOL_VERSION, Remaining, SyncError, SyncRequest, SyncResponse,
};
pub use progress::{ProgressListener, SyncProgress};
