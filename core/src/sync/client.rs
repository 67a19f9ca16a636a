//! Drives sync rounds between a [`Store`] and a transport until the server has nothing more.

use super::messages::{SyncRequest, SyncResponse};
use super::progress::{SyncProgress, Tracker, Work};
use crate::error::{CoreError, Result};
use crate::store::Store;

/// Most rounds in one sync (each round moves at most one paginated batch of updates).
pub const MAX_ROUNDS: usize = 1_000;

/// Carries one encoded request to the server and brings back its encoded response.
pub trait SyncTransport {
    /// One round trip. Errors are reported as [`CoreError::Network`].
    fn round_trip(&mut self, request: &[u8]) -> Result<Vec<u8>>;
}

/// What a sync did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// Round trips made.
    pub round_trips: usize,
    /// Request bytes sent.
    pub bytes_sent: usize,
    /// Response bytes received.
    pub bytes_received: usize,
    /// Cases whose local changes the server accepted.
    pub cases_uploaded: usize,
    /// Cases that received changes from the server.
    pub cases_updated: usize,
    /// Time spent in round trips (on the network and at the office); the rest of a sync's time
    /// is the phone's own work (preparing requests, applying answers).
    pub round_trip_time: std::time::Duration,
    /// Where each round trip's time went at the office, when the office says
    /// (`Server-Timing`: see the server's `server_timing` setting), one entry a round trip.
    pub server_timing: Vec<String>,
}

/// Syncs `store` through `transport`: uploads what changed locally and applies what changed at
/// the office, round after round while the server says there is more. Each applied response is
/// one transaction; an error leaves the store as it was after the last whole round.
pub fn sync(store: &Store, transport: &mut dyn SyncTransport) -> Result<SyncReport> {
    sync_with_progress(store, transport, &mut |_: SyncProgress| {})
}

/// [`sync`], telling `progress` how far it has come: one event before each round (before the
/// first, what the outbox holds), and a last one, `finished`, once the sync is done (see
/// [`super::progress`] for what the figures mean and the rules they keep). `progress` is
/// called on the sync's thread with no lock held; a caller that hands events to an app
/// should pass them on without waiting ([`super::progress::Delivery`]).
pub fn sync_with_progress(
    store: &Store,
    transport: &mut dyn SyncTransport,
    progress: &mut dyn FnMut(SyncProgress),
) -> Result<SyncReport> {
    let mut report = SyncReport::default();
    let mut tracker = Tracker::new();
    // What moved in the last round, and what the office said it still has to send.
    let mut moved = Work::default();
    let mut office_left = Work::default();
    // Upload bytes and cases sent so far, to estimate the size of the uploads left for later
    // rounds (the store builds each round's uploads only when it sends them).
    let mut upload_bytes = 0usize;
    let mut upload_cases = 0usize;
    // A note written while the clock ran ahead would be refused as one from the future.
    store.redate_future_notes()?;
    for _ in 0..MAX_ROUNDS {
        let prepared = store.prepare_sync()?;
        let prepared_purged_empty = prepared.request().purged.is_empty();
        let more_uploads = prepared.more_uploads();
        let body = prepared.request().encode().map_err(CoreError::Sync)?;
        let uploads = prepared.request().uploads.len();
        upload_bytes = upload_bytes.saturating_add(body.len());
        upload_cases = upload_cases.saturating_add(uploads);
        let deferred = prepared.deferred_cases();
        let per_case = upload_bytes.checked_div(upload_cases).unwrap_or(0);
        let uploads_left = Work::new(
            uploads.saturating_add(deferred),
            body.len().saturating_add(deferred.saturating_mul(per_case)),
        );
        progress(tracker.step(moved, uploads_left.plus(office_left)));
        let sent = std::time::Instant::now();
        let reply = transport.round_trip(&body)?;
        report.round_trip_time += sent.elapsed();
        report.round_trips += 1;
        report.bytes_sent += body.len();
        report.bytes_received += reply.len();
        let response = SyncResponse::decode(&reply).map_err(CoreError::Sync)?;
        let more = response.more;
        // An office that does not say what is left (one built before it could) leaves
        // downloads unknown until they arrive; an answer that is the last page leaves nothing.
        office_left = match (more, response.remaining) {
            (true, Some(left)) => Work {
                cases: left.cases,
                bytes: left.bytes,
            },
            _ => Work::default(),
        };
        let received = response.updates.len();
        let applied = store.apply_sync(prepared, response)?;
        moved = Work::new(
            uploads.saturating_add(received),
            body.len().saturating_add(reply.len()),
        );
        report.cases_uploaded += applied.uploaded;
        report.cases_updated += applied.updated;
        let receipts_sent = !prepared_purged_empty;
        if !more && !more_uploads && (!applied.receipts_pending || receipts_sent) {
            progress(tracker.finish(moved));
            return Ok(report);
        }
    }
    Err(CoreError::Sync(super::SyncError::Malformed(
        "the server kept saying there is more",
    )))
}

/// Encodes a request; kept here so tests and the server agree on one codec.
pub fn encode_request(request: &SyncRequest) -> Result<Vec<u8>> {
    request.encode().map_err(CoreError::Sync)
}
