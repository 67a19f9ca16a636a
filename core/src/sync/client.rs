//! Drives sync rounds between a [`Store`] and a transport until the server has nothing more.

use super::messages::{SyncRequest, SyncResponse};
use super::progress::{SyncProgress, Tracker, Work};
use crate::error::{CoreError, Result};
use crate::store::AppliedSync;
use crate::store::Store;

/// Most rounds in one sync (each round moves at most one paginated batch of updates).
pub const MAX_ROUNDS: usize = 1_000;

/// Carries one encoded request to the server and brings back its encoded response.
pub trait SyncTransport {
    /// One round trip. Errors are reported as [`CoreError::Network`].
    fn round_trip(&mut self, request: &[u8]) -> Result<Vec<u8>>;

    /// One round trip whose answer may come as a stream of frames ([`super::frames`]): each
    /// frame is an encoded response, and `frames` is called, in order, with every batch of
    /// frames that have arrived, so that the sync applies each as it comes and keeps it
    /// should the link be cut before the rest. A transport that does not stream hands over its
    /// one answer as one frame (the default).
    fn round_trip_frames(
        &mut self,
        request: &[u8],
        frames: &mut dyn FnMut(Vec<Vec<u8>>) -> Result<()>,
    ) -> Result<()> {
        let reply = self.round_trip(request)?;
        frames(vec![reply])
    }
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
    /// Answers received: one a round trip from an office that does not stream, one a frame of
    /// a streamed answer (where one round trip carries several pages, each of several frames).
    pub frames: usize,
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

/// [`sync`], telling `progress` how far it has come: one event before the first round (what
/// the outbox holds), one after each answer applied (each batch of frames of a streamed
/// answer), and a last one, `finished`, once the sync is done (see
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
    // What the office said it still has to send.
    let mut office_left = Work::default();
    // Upload bytes and cases sent so far, to estimate the size of the uploads left for later
    // rounds (the store builds each round's uploads only when it sends them).
    let mut upload_bytes = 0usize;
    let mut upload_cases = 0usize;
    // A note written while the clock ran ahead would be refused as one from the future.
    store.redate_future_notes()?;
    for round in 0..MAX_ROUNDS {
        let prepared = store.prepare_sync()?;
        let receipts_sent = !prepared.request().purged.is_empty();
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
        let deferred_left = Work::new(deferred, deferred.saturating_mul(per_case));
        if round == 0 {
            progress(tracker.step(Work::default(), uploads_left.plus(office_left)));
        }
        let mut moved = Work::new(uploads, body.len());
        // The request's own uploads count as moved with its first frame; later frames of a
        // streamed answer go with a request that uploads nothing.
        let continuation = prepared.continuation();
        let mut first = Some(prepared);
        let mut last: Option<(bool, AppliedSync)> = None;
        // The sync is over once the office has nothing more, nothing waits to be sent, and
        // purge receipts either went with this request or are not owed.
        let done = |more: bool, applied: &AppliedSync| {
            !more && !more_uploads && (!applied.receipts_pending || receipts_sent)
        };
        let mut finished = None;
        // The phone's own work of applying frames while later ones are on their way is not
        // round-trip time.
        let mut applied_for = std::time::Duration::ZERO;
        let sent = std::time::Instant::now();
        let outcome = transport.round_trip_frames(&body, &mut |batch| {
            report.frames += batch.len();
            let Some((response, bytes)) = decode_batch(batch)? else {
                return Ok(());
            };
            report.bytes_received += bytes;
            let more = response.more;
            // An office that does not say what is left (one built before it could) leaves
            // downloads unknown until they arrive; an answer that is the last page leaves
            // nothing.
            office_left = match (more, response.remaining) {
                (true, Some(left)) => Work {
                    cases: left.cases,
                    bytes: left.bytes,
                },
                _ => Work::default(),
            };
            let received = response.updates.len();
            let prepared = first.take().unwrap_or_else(|| continuation.clone());
            let applying = std::time::Instant::now();
            let applied = store.apply_sync(prepared, response)?;
            applied_for += applying.elapsed();
            report.cases_uploaded += applied.uploaded;
            report.cases_updated += applied.updated;
            let batch_moved = std::mem::take(&mut moved).plus(Work::new(received, bytes));
            if done(more, &applied) {
                finished = Some(batch_moved);
            } else {
                progress(tracker.step(batch_moved, deferred_left.plus(office_left)));
            }
            last = Some((more, applied));
            Ok(())
        });
        report.round_trip_time += sent.elapsed().saturating_sub(applied_for);
        report.round_trips += 1;
        report.bytes_sent += body.len();
        outcome?;
        let Some((more, applied)) = last else {
            return Err(CoreError::Sync(super::SyncError::Malformed(
                "the server's answer held no response",
            )));
        };
        if done(more, &applied) {
            progress(tracker.finish(finished.unwrap_or_default()));
            return Ok(report);
        }
    }
    Err(CoreError::Sync(super::SyncError::Malformed(
        "the server kept saying there is more",
    )))
}

/// The frames of one batch decoded and merged into the one response they make, with their
/// encoded size; `None` for no frame.
fn decode_batch(batch: Vec<Vec<u8>>) -> Result<Option<(SyncResponse, usize)>> {
    let mut bytes = 0usize;
    let mut merged: Option<SyncResponse> = None;
    for raw in batch {
        bytes = bytes.saturating_add(raw.len());
        let frame = SyncResponse::decode(&raw).map_err(CoreError::Sync)?;
        match merged.as_mut() {
            Some(response) => response.absorb(frame),
            None => merged = Some(frame),
        }
    }
    Ok(merged.map(|response| (response, bytes)))
}

/// Encodes a request; kept here so tests and the server agree on one codec.
pub fn encode_request(request: &SyncRequest) -> Result<Vec<u8>> {
    request.encode().map_err(CoreError::Sync)
}
