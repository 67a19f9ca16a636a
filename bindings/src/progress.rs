//! Sync progress across the FFI: the app implements [`SyncProgressListener`] (one method taking
//! a [`SyncProgress`] record) and passes it to `FieldcaseDevice::sync_now_with_progress`. The
//! rules live in core (`fieldcase_core::sync::progress`): events never go backwards, the last
//! one is `finished` with done equal to expected, the listener runs on a thread of the sync's
//! own (never the caller's, never with the store locked) and sees counts only. An exception the
//! listener throws ends its events, not the sync.

use std::sync::Arc;

use fieldcase_core::sync::progress::{ProgressListener, SyncProgress as CoreProgress};

/// How far a sync has come: counts only, nothing that names or shows a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Record)]
pub struct SyncProgress {
    /// Case transfers done: each case sent, each case received or found up to date (a case
    /// both sent and received counts twice).
    pub cases_done: u64,
    /// Case transfers expected in all, as far as known now: from the phone's pending changes
    /// and what the office says it still has to send. Never below `cases_done`; only grows.
    pub cases_expected: u64,
    /// Bytes done (requests sent and answers received, plus estimated bytes that turned out
    /// not to be needed).
    pub bytes_done: u64,
    /// Bytes expected in all, as far as known now (an estimate). Never below `bytes_done`;
    /// only grows.
    pub bytes_expected: u64,
    /// The last event of the sync: done equals expected. A sync that fails ends without one.
    pub finished: bool,
}

impl From<CoreProgress> for SyncProgress {
    fn from(p: CoreProgress) -> Self {
        Self {
            cases_done: p.cases_done,
            cases_expected: p.cases_expected,
            bytes_done: p.bytes_done,
            bytes_expected: p.bytes_expected,
            finished: p.finished,
        }
    }
}

/// What the app implements to follow a sync (the first sync of hundreds of cases on a slow link
/// takes minutes): a progress bar, or a notification.
#[uniffi::export(with_foreign)]
pub trait SyncProgressListener: Send + Sync {
    /// One event. Called on a background thread of the library's, in order; a listener still
    /// busy with one event is given only the latest when it returns. Hand the figures to the UI
    /// thread and return; do not call the device from here and wait on the sync.
    fn on_progress(&self, progress: SyncProgress);
}

/// The app's listener as core calls it.
pub(crate) struct ForeignListener(pub(crate) Arc<dyn SyncProgressListener>);

impl ProgressListener for ForeignListener {
    fn on_progress(&self, progress: CoreProgress) {
        self.0.on_progress(progress.into());
    }
}
