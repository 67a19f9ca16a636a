//! Moving attachment bytes between the phone and the office, on their own requests after and
//! apart from case sync ([`crate::protocol::ChunkAck`]'s module has the wire). One chunk per
//! request, two in flight on their own connections: a cut costs at most the chunk on the
//! connection cut, and the next transfer resumes from the last chunk the office acknowledged. Before each chunk the loop looks at the outbox: a note
//! written meanwhile is synced first, so notes never wait behind a photo for more than one
//! chunk.

use std::time::Duration;

use crate::device::Device;
use crate::error::{CoreError, Result};
use crate::protocol::{ChunkAck, attachment_chunk_path, attachment_path, error_code};
use crate::store::Transfer;
use crate::transport::{DeviceClient, TransportError};

/// What the app asks of one attachment transfer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TransferOptions {
    /// Download every attachment of this phone's cases not yet here, not only those asked for
    /// (the app's "download on Wi-Fi" setting, while on Wi-Fi).
    pub download_all: bool,
    /// Stop after this many chunks (the app's budget for one background run); `None` for all.
    pub max_chunks: Option<u32>,
}

/// What one attachment transfer did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TransferReport {
    /// Chunks sent to the office.
    pub chunks_sent: u32,
    /// Chunks received from the office.
    pub chunks_received: u32,
    /// Attachments the office now holds whole that it did not before.
    pub uploads_completed: u32,
    /// Attachments now here whole that were not before.
    pub downloads_completed: u32,
    /// Case syncs run between chunks because notes were waiting.
    pub syncs_between: u32,
    /// Attachments left for a later transfer (not yet at the office, or refused this time).
    pub left: u32,
    /// Whether the chunk budget ran out before everything moved.
    pub budget_spent: bool,
}

fn code(e: &CoreError) -> Option<&str> {
    match e {
        CoreError::Network(TransportError::Http { code, .. }) => Some(code),
        _ => None,
    }
}

fn ack(body: &[u8]) -> Result<ChunkAck> {
    serde_json::from_slice(body).map_err(|_| {
        CoreError::Network(TransportError::BadResponse(
            "not an attachment acknowledgement".into(),
        ))
    })
}

/// One request through `client`, sent again after a wait while the office says this device asks
/// too fast, until `throttled` (the run's waiting so far) reaches [`MAX_THROTTLED`].
fn send_with(
    client: &DeviceClient,
    throttled: &mut Duration,
    request: impl Fn(&DeviceClient) -> std::result::Result<Vec<u8>, TransportError>,
) -> Result<Vec<u8>> {
    loop {
        match request(client) {
            Err(TransportError::Http { code, .. })
                if code == error_code::TOO_MANY_REQUESTS && *throttled < MAX_THROTTLED =>
            {
                *throttled += THROTTLE_WAIT;
                std::thread::sleep(THROTTLE_WAIT);
            }
            other => return other.map_err(CoreError::Network),
        }
    }
}

/// The later of two acknowledgements of one upload.
fn later(a: ChunkAck, b: ChunkAck) -> ChunkAck {
    let acked = a.acked.max(b.acked);
    let mut ahead: Vec<u32> = a
        .ahead
        .into_iter()
        .chain(b.ahead)
        .filter(|i| *i > acked)
        .collect();
    ahead.sort_unstable();
    ahead.dedup();
    ChunkAck {
        acked,
        total: a.total,
        complete: a.complete || b.complete,
        ahead,
    }
}

struct Run<'a> {
    device: &'a Device,
    client: DeviceClient,
    options: TransferOptions,
    report: TransferReport,
    /// Time spent waiting for the office's rate limit in this run.
    throttled: Duration,
}

/// How long one run waits in all for the office's per-device rate limit before it stops.
const MAX_THROTTLED: Duration = Duration::from_secs(60);
/// How long it waits each time the office says this device asks too fast (the office's rate
/// gives a request back every half second).
const THROTTLE_WAIT: Duration = Duration::from_millis(600);

impl Run<'_> {
    /// Whether the budget allows one more chunk (and counts it).
    fn spend(&mut self) -> bool {
        let used = self.report.chunks_sent + self.report.chunks_received;
        if self.options.max_chunks.is_some_and(|max| used >= max) {
            self.report.budget_spent = true;
            return false;
        }
        true
    }

    /// Whether one attachment moved whole; a refusal of that attachment alone (the office or
    /// this phone found its bytes bad, or its case is no longer this worker's) leaves it for
    /// later and lets the others go on, while anything else stops the run.
    fn settle(&mut self, done: Result<bool>) -> Result<bool> {
        match done {
            Ok(moved) => Ok(moved),
            Err(CoreError::Corrupt { .. }) => Ok(false),
            Err(e)
                if matches!(
                    code(&e),
                    Some(
                        error_code::CHUNK_REFUSED
                            | error_code::ATTACHMENT_HASH_MISMATCH
                            | error_code::ATTACHMENT_REFUSED
                            | error_code::NOT_ASSIGNED
                            | error_code::ATTACHMENT_NOT_FOUND
                    )
                ) =>
            {
                tracing::warn!(
                    code = code(&e),
                    "an attachment was refused; the others go on"
                );
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// Syncs the case notes first when any wait in the outbox.
    fn notes_first(&mut self) -> Result<()> {
        if !self.device.store().pending_changes()?.is_empty() {
            self.device.sync_now()?;
            self.report.syncs_between += 1;
        }
        Ok(())
    }

    /// Sends one request, waiting and sending it again while the office says this device asks
    /// too fast (its per-device rate: on a fast link a phone with many photos reaches it), up to
    /// [`MAX_THROTTLED`] in one run; the run then stops with what was done kept.
    fn send(
        &mut self,
        request: impl Fn(&DeviceClient) -> std::result::Result<Vec<u8>, TransportError>,
    ) -> Result<Vec<u8>> {
        send_with(&self.client, &mut self.throttled, request)
    }

    fn status(&mut self, t: &Transfer) -> Result<ChunkAck> {
        let path = attachment_path(t.case, t.reference.id);
        let body = self.send(|c| c.get(&path))?;
        ack(&body)
    }

    /// Sends what the office lacks of one attachment; `false` when it must wait.
    fn upload(&mut self, t: &Transfer) -> Result<bool> {
        let store = self.device.store();
        let id = t.reference.id;
        let total = t.reference.chunk_count();
        // Asked every time: the acknowledgement of the last chunk sent may have been lost, and
        // the office may hold this content already from another phone.
        let mut state = match self.status(t) {
            Ok(state) => state,
            Err(e) if code(&e) == Some(error_code::ATTACHMENT_NOT_FOUND) => return Ok(false),
            Err(e) => return Err(e),
        };
        store.attachment_acknowledged(id, state.acked)?;
        while !state.complete && state.acked < total {
            if !self.spend() {
                return Ok(false);
            }
            self.notes_first()?;
            // Two chunks in flight: while one chunk's answer comes back over a slow link, the
            // other's bytes keep it busy. The second goes on its own connection; if it fails,
            // the office lacks it and it is sent again as the next chunk.
            let first = state.acked;
            let next = (first + 1..total).find(|i| !state.ahead.contains(i));
            let second = match next {
                Some(next) if self.spend() => Some((
                    attachment_chunk_path(t.case, id, next),
                    store.attachment_chunk(id, next)?,
                )),
                _ => None,
            };
            let chunk = store.attachment_chunk(id, first)?;
            let path = attachment_chunk_path(t.case, id, first);
            let (client, throttled) = (&self.client, &mut self.throttled);
            let (main, side) = std::thread::scope(|scope| {
                let side = second
                    .as_ref()
                    .map(|(path, chunk)| scope.spawn(move || client.put(path, chunk)));
                let main = send_with(client, throttled, |c| c.put(&path, &chunk));
                (main, side.map(|h| h.join()))
            });
            if let Some(Ok(Ok(body))) = side {
                self.report.chunks_sent += 1;
                state = later(state, ack(&body)?);
            }
            match main {
                Ok(body) => {
                    self.report.chunks_sent += 1;
                    state = later(state, ack(&body)?);
                    store.attachment_acknowledged(id, state.acked)?;
                }
                Err(e) if code(&e) == Some(error_code::CHUNK_OUT_OF_ORDER) => {
                    state = self.status(t)?;
                    store.attachment_acknowledged(id, state.acked)?;
                }
                Err(e) => return Err(e),
            }
        }
        store.attachment_acknowledged(id, total)?;
        self.report.uploads_completed += 1;
        Ok(true)
    }

    /// Fetches the rest of one attachment; `false` when the office does not hold it yet.
    fn download(&mut self, t: &Transfer) -> Result<bool> {
        let store = self.device.store();
        for idx in t.next..t.reference.chunk_count() {
            if !self.spend() {
                return Ok(false);
            }
            self.notes_first()?;
            let path = attachment_chunk_path(t.case, t.reference.id, idx);
            let bytes = match self.send(|c| c.get(&path)) {
                Ok(bytes) => bytes,
                Err(e) if code(&e) == Some(error_code::ATTACHMENT_NOT_AT_OFFICE) => {
                    return Ok(false);
                }
                Err(e) => return Err(e),
            };
            self.report.chunks_received += 1;
            store.put_downloaded_chunk(t, idx, &bytes)?;
        }
        self.report.downloads_completed += 1;
        Ok(true)
    }
}

impl Device {
    /// Moves attachment bytes now: this phone's own attachments up (oldest first, each resumed
    /// from the last chunk the office acknowledged), then those to download. Run it after
    /// [`Device::sync_now`] (the office takes a chunk only once the case document that names
    /// the attachment reached it); notes written meanwhile are synced between chunks. A
    /// network failure stops the run with what was done kept; the next run goes on from there.
    pub fn sync_attachments(&self, options: TransferOptions) -> Result<TransferReport> {
        let (uploads, downloads) = self.store().pending_transfers(options.download_all)?;
        let mut run = Run {
            device: self,
            client: self.client()?,
            options,
            report: TransferReport::default(),
            throttled: Duration::ZERO,
        };
        for t in &uploads {
            let done = run.upload(t);
            if !run.settle(done)? {
                run.report.left += 1;
            }
        }
        for t in &downloads {
            let done = run.download(t);
            if !run.settle(done)? {
                run.report.left += 1;
            }
        }
        Ok(run.report)
    }
}
