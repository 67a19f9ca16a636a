//! A sync answer streamed to a phone that asked for it ([`fieldcase_core::protocol::HEADER_STREAM`]):
//! the request's own page, then further pages built while the phone receives the ones before,
//! every page cut into frames ([`fieldcase_core::sync::frames`]) the phone applies as they
//! arrive. On a slow link the link stays full instead of idling a round trip between pages,
//! and a cut costs the phone at most the frame in flight.
//!
//! Each further page is its own write transaction under the device's lock (it records what was
//! sent to the device), exactly as a request that uploads nothing would be. What the device is
//! known to hold is only what its request proved: a page never counts the frames sent before
//! it in this stream as applied, since the link may yet lose them.
//!
//! Bounded: a stream stops starting pages once it sent [`STREAM_BYTES`] or ran for
//! [`STREAM_TIME`], when a frame waits more than [`SEND_WAIT`] for the phone to take it, when
//! the device is revoked, and at any error; its last frame then says `more` and the phone
//! asks again. At most as many streams build pages at once as requests are handled at once.

use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use fieldcase_core::ids::{DeviceId, UserId};
use fieldcase_core::sync::SyncResponse;
use fieldcase_core::sync::frames::encode_frame;
use fieldcase_core::sync::hub::continue_feed;
use tokio::sync::{OwnedSemaphorePermit, mpsc};

use crate::http::error::AppError;
use crate::http::state::AppState;
use crate::office::devices;
use crate::office::hub::SqlHub;
use crate::storage::sql::{LockKey, WriteScope};

/// Bytes of frames after which a stream starts no further page: about 8 s of a 1 Mbit/s link,
/// 33 s of EDGE, well inside the phone's timeout for one exchange.
pub(crate) const STREAM_BYTES: usize = 1024 * 1024;

/// Time after which a stream starts no further page.
pub(crate) const STREAM_TIME: Duration = Duration::from_secs(20);

/// Longest wait for the phone to take a frame (the link may be slow, but not stopped).
pub(crate) const SEND_WAIT: Duration = Duration::from_secs(30);

/// Pages built ahead of what the connection has taken.
const PAGES_AHEAD: usize = 2;

/// Where a stream goes on from after its first page.
pub(crate) struct Continuation {
    /// The device and its user.
    pub device: DeviceId,
    /// Whose assigned cases the pages list.
    pub user: UserId,
    /// The cursor of the request: what the device proved it applied.
    pub acked: u64,
    /// Whether the phone reads what is left after a page (else it is left out).
    pub remaining: bool,
}

/// The body of a streamed answer: `first` (the request's own page, already built), then, when
/// it says `more` and a stream slot is free, further pages built on a task of their own.
pub(crate) fn body(
    state: &AppState,
    first: &[SyncResponse],
    from: Continuation,
) -> Result<Body, AppError> {
    let encoded = encode_frames(first).map_err(|e| AppError::internal(&e))?;
    let (sender, receiver) = mpsc::channel::<Result<Bytes, std::io::Error>>(PAGES_AHEAD);
    let go_on = first.last().filter(|last| last.more && !last.reset);
    let sent = encoded.len();
    // The channel is new and empty: the first page always fits.
    let _ = sender.try_send(Ok(Bytes::from(encoded)));
    if let Some(last) = go_on
        && let Ok(slot) = state.sync_streams().clone().try_acquire_owned()
    {
        let cursor = last.cursor;
        tokio::spawn(further_pages(
            state.clone(),
            from,
            cursor,
            sent,
            sender,
            slot,
        ));
    }
    let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|item| (item, receiver))
    });
    Ok(Body::from_stream(stream))
}

fn encode_frames(frames: &[SyncResponse]) -> Result<Vec<u8>, fieldcase_core::sync::SyncError> {
    let mut out = Vec::new();
    for frame in frames {
        out.extend(encode_frame(frame)?);
    }
    Ok(out)
}

/// Builds and sends pages after `cursor` until the feed is done or a bound is reached.
async fn further_pages(
    state: AppState,
    from: Continuation,
    mut cursor: u64,
    mut sent: usize,
    sender: mpsc::Sender<Result<Bytes, std::io::Error>>,
    _slot: OwnedSemaphorePermit,
) {
    let started = Instant::now();
    while sent < STREAM_BYTES && started.elapsed() < STREAM_TIME {
        let mut page = match next_page(&state, &from, cursor).await {
            Ok(Some(page)) => page,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(device = %from.device, code = e.code, reason = %e.reason, "a streamed sync page failed; the phone asks again");
                return;
            }
        };
        if !from.remaining {
            for frame in &mut page {
                frame.remaining = None;
            }
        }
        let Some(last) = page.last() else {
            return;
        };
        let (more, next) = (last.more, last.cursor);
        let encoded = match encode_frames(&page) {
            Ok(encoded) => encoded,
            Err(e) => {
                tracing::warn!(device = %from.device, error = %e, "a streamed sync page did not encode");
                return;
            }
        };
        sent = sent.saturating_add(encoded.len());
        match tokio::time::timeout(SEND_WAIT, sender.send(Ok(Bytes::from(encoded)))).await {
            Ok(Ok(())) => {}
            // The phone is gone or stopped reading: nothing more to build.
            _ => return,
        }
        if !more {
            return;
        }
        cursor = next;
    }
}

/// The page after `cursor`, in one write transaction under the device's lock; `None` when the
/// device was revoked meanwhile.
async fn next_page(
    state: &AppState,
    from: &Continuation,
    cursor: u64,
) -> Result<Option<Vec<SyncResponse>>, AppError> {
    let vault = state.vault().clone();
    let keeper = vault.clone();
    let now = state.now();
    let retention_secs = i64::try_from(state.limits().retention.as_secs()).unwrap_or(i64::MAX);
    let (device, user, acked) = (from.device, from.user, from.acked);
    let scope = WriteScope::Sync {
        keys: vec![LockKey::device(device.as_uuid())],
    };
    let (page, _) = state
        .db()
        .call_write_timed_in(
            scope,
            move |sql| {
                if !devices::device_is_active(sql, device.as_uuid())? {
                    return Ok((None, Vec::new()));
                }
                let mut hub = SqlHub::new(sql, &vault, now, retention_secs);
                let page = match continue_feed(&mut hub, device, user, acked, cursor) {
                    Ok(page) => page,
                    Err(e) => return Err(crate::http::error::hub_refusal(e, hub.take_failure())),
                };
                Ok((Some(page), hub.into_loaded().collect::<Vec<_>>()))
            },
            move |(page, loaded)| {
                keeper.keep(loaded);
                page
            },
        )
        .await;
    page
}
