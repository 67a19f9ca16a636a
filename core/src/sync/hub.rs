//! The office's side of sync, sans-IO: what the server does with a [`SyncRequest`], over any
//! [`HubStorage`] (the server's SQLite store, or [`MemoryHub`] in tests and benchmarks).
//!
//! Per device and case the hub keeps the heads the device is *confirmed* to have, and the heads it
//! was last *sent* together with the cursor of that response. A later request whose cursor has
//! reached that response's cursor proves the device applied it, and the sent heads become
//! confirmed; a lost response is simply sent again from the confirmed heads. Sending too much is
//! harmless (automerge ignores a change it has); sending too little would lose data, so every
//! doubt falls back to sending more.

use std::collections::{BTreeMap, HashMap};

use automerge::{ActorId, ChangeHash};

use super::epoch::{Attested, OfficeEpoch};
use super::messages::{CaseChanges, PROTOCOL_VERSION, Remaining, SyncRequest, SyncResponse};
use crate::document::{
    CaseDoc, MAX_INFLATED, ReceivedDoc, attested_part, inflated_size, is_document_chunk,
};
use crate::error::{CoreError, Result};
use crate::ids::{CaseId, DeviceId, UserId};
use crate::model::Author;
use time::OffsetDateTime;

/// Largest total of change bytes put in one response before paginating with `more`.
/// Small enough that a phone on a slow link whose sync is cut keeps every page it received
/// whole, and that neither side holds more than about this much of case data for one round;
/// large enough that a round trip carries some 50 compact cases.
pub const RESPONSE_BUDGET: usize = 128 * 1024;

/// Largest size of the updates in one frame of a page, as they travel (changes, heads and the
/// office's statement of them; one case alone may be larger): what a phone whose link is cut in
/// the middle of a streamed answer receives again at most, since it applies and keeps every
/// whole frame as it arrives. With the part of a TLS record that arrived (the office sends
/// records of 4 KiB) and the new connection's handshake and headers (about 2 KB), a cut costs
/// under 16 KiB.
pub const FRAME_BUDGET: usize = 8 * 1024;

/// What one case's update weighs in a frame: its changes, its id and heads, and the office's
/// statement of those heads (ids, epoch, heads, MAC), with a few bytes of lengths.
fn update_size(changes: &[u8], heads: &[ChangeHash]) -> usize {
    const FIXED: usize = 16 + 16 + 16 + 32 + 8;
    changes
        .len()
        .saturating_add(FIXED)
        .saturating_add(heads.len().saturating_mul(2 * 32))
}

/// A case's whole document, compacted, with the heads it leads to.
pub type WholeCase = (Vec<u8>, Vec<ChangeHash>);

/// What the hub knows of one device's copy of one case.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceCaseState {
    /// Heads the device is known to have.
    pub confirmed: Vec<ChangeHash>,
    /// Heads sent in a response not yet known to be applied, with that response's cursor.
    pub sent: Option<(Vec<ChangeHash>, u64)>,
    /// When the hub first told the device to purge the case (Unix seconds): its uploads to the
    /// case are taken for [`PURGE_GRACE_SECS`] after, then refused, receipt or not.
    pub purge_ordered_at: Option<i64>,
}

/// How long after first telling a device to purge a case the hub still takes its uploads to it:
/// long enough for the sync session that carried the order, and one retry, to deliver what was
/// written before; short enough that a device that never purges cannot keep writing.
pub const PURGE_GRACE_SECS: i64 = 3600;

impl DeviceCaseState {
    /// Whether the device holds the case, for a request that comes with `cursor`: heads it
    /// confirmed, or heads sent in a response whose cursor the request has reached (the device
    /// applied it). Heads merely sent do not count: that answer may have been lost, and a device
    /// without the case must then be sent the whole document again, not changes.
    pub fn holds_case(&self, cursor: u64) -> bool {
        !self.confirmed.is_empty() || self.sent.as_ref().is_some_and(|(_, at)| cursor >= *at)
    }
}

/// The storage a hub needs. Implementations run [`handle_sync`] inside one transaction, so a
/// failed request changes nothing.
///
/// The storage holds the documents it hands out for the rest of the request: a document is
/// loaded (or taken from a cache) at most once per request, changed in place, and stored with
/// [`HubStorage::store_case`], which may write only what changed since it was loaded. A request
/// that fails must drop what it holds, since a failed apply may have left a document half
/// changed.
pub trait HubStorage {
    /// The hub's clock: notes dated past the clock-skew window from it are refused, and the
    /// grace of a device told to purge a case runs on it.
    fn now(&self) -> OffsetDateTime;
    /// The document of a case, if the hub has it, held for the rest of the request.
    fn case_doc(&mut self, case: CaseId) -> Result<Option<&mut CaseDoc>>;
    /// Stores the document of `case` as [`HubStorage::case_doc`] now holds it and gives it the
    /// next change sequence number. `received` is what a device sent when it alone makes up the
    /// whole document now (a received document that covered ours and was adopted): storage may
    /// keep those bytes as they came rather than encode the document again. Storage may put the
    /// write off to the end of the request's transaction (the server does, so that the one
    /// thing every writer orders, the sequence number, is taken just before the commit); the
    /// request goes on reading the document it holds, and lists the case in what changed only
    /// once it is stored (the device's next request finds it there, with nothing to send).
    fn store_case(&mut self, case: CaseId, received: Option<&[u8]>) -> Result<()>;
    /// The whole document of `case`, compacted, with its heads: what a device that has nothing
    /// of the case (or nothing the hub can place) receives; `None` when the hub has no such
    /// case. Storage may answer with the snapshot it stores when that is the whole document,
    /// without loading it into automerge or encoding it again: a phone's first sync of 1,000
    /// cases is then served at the cost of reading them.
    fn whole_case(&mut self, case: CaseId) -> Result<Option<WholeCase>>;
    /// Whether `user` may receive and change `case`.
    fn is_assigned(&mut self, user: UserId, case: CaseId) -> Result<bool>;
    /// Whether the office erased `case`'s content (its retention ran out, or the client
    /// withdrew her consent): an upload to it from a device told to purge it is acknowledged
    /// and dropped, so that the device's outbox empties and it purges the case rather than
    /// keep offering, and keeping, what it wrote. None by default.
    fn is_erased(&mut self, _case: CaseId) -> Result<bool> {
        Ok(false)
    }
    /// The cases assigned to `user` whose sequence number is above `cursor`, ascending, with
    /// their sequence numbers; at most `limit`.
    fn assigned_changed_since(
        &mut self,
        user: UserId,
        cursor: u64,
        limit: usize,
    ) -> Result<Vec<(CaseId, u64)>>;
    /// The stored size, in bytes, of the documents of the cases assigned to `user` whose
    /// sequence number is above `cursor`: what the hub tells a device it still has to send
    /// after a page ([`super::messages::Remaining`]), an estimate for its progress bar. Asked
    /// only when a page leaves cases for later, so a sync that fits one page costs nothing more.
    fn assigned_changed_bytes(&mut self, user: UserId, cursor: u64) -> Result<u64>;
    /// What the hub knows of `device`'s copy of `case`.
    fn device_state(&mut self, device: DeviceId, case: CaseId) -> Result<DeviceCaseState>;
    /// Records what the hub knows of `device`'s copy of `case`.
    fn set_device_state(
        &mut self,
        device: DeviceId,
        case: CaseId,
        state: &DeviceCaseState,
    ) -> Result<()>;
    /// The cases `device` holds (the hub has sync state for them) that are no longer assigned
    /// to `user`: the device must purge them.
    fn cases_to_purge(&mut self, device: DeviceId, user: UserId) -> Result<Vec<CaseId>>;
    /// Records the device's receipt that it purged `case`, and forgets its sync state for it.
    fn record_purge(&mut self, device: DeviceId, case: CaseId) -> Result<()>;
    /// The office's current epoch ([`super::epoch`]): a restore from a backup draws a new one.
    fn office_epoch(&self) -> OfficeEpoch;
    /// The key the office attests heads with ([`Attested`]); it never leaves the office.
    fn attestation_key(&self) -> &[u8; 32];
    /// Forgets what the hub knows of every copy of a case `device` holds: the device synced last
    /// in another epoch, so none of it describes what the device holds now. Once per device and
    /// epoch: a request delayed from before the device started over must not make the hub forget
    /// what it learnt of the device since.
    fn forget_device(&mut self, device: DeviceId) -> Result<()>;
    /// Starts `case` again, empty, held for the rest of the request like
    /// [`HubStorage::case_doc`]: a device gives back a case the office attested in an earlier
    /// epoch and no longer has any record of (it was opened after the backup restored).
    fn recover_case(&mut self, case: CaseId) -> Result<()>;
    /// A device gave back history of `case` the office had attested and lost, now stored: the
    /// office's own records that follow the document (who the case is assigned to) follow it
    /// again, and the recovery is recorded.
    fn case_recovered(&mut self, case: CaseId, device: DeviceId) -> Result<()>;
}

/// The attestation `request` shows for its upload of `case`, if one verifies under the office's
/// key and was made in another epoch than the current one (within one epoch the hub never needs
/// one: it still holds all it attested).
fn recovery_attestation<'r>(
    storage: &dyn HubStorage,
    request: &'r SyncRequest,
    case: CaseId,
) -> Option<&'r Attested> {
    let epoch = storage.office_epoch();
    request
        .attested
        .iter()
        .find(|a| a.case_id == case)
        .filter(|a| a.epoch != epoch && a.verify(storage.attestation_key()))
}

/// Which uploads of `request` `device` (owned by `user`) may make, index for index, with what
/// the hub knows of its copy of each such case (`None`: the upload is skipped), checked before
/// any received byte is inflated or loaded: a case assigned to its user, or one unassigned since
/// the device was sent it (that still takes the device's pending changes, so nothing written in
/// the field is lost, for [`PURGE_GRACE_SECS`] after the purge was first ordered; then the
/// device purges it). What the allowed uploads would inflate to is bounded for the whole
/// request ([`MAX_INFLATED`]). Only reads `storage`.
pub fn allowed_uploads(
    storage: &mut dyn HubStorage,
    device: DeviceId,
    user: UserId,
    request: &SyncRequest,
) -> Result<Vec<Option<DeviceCaseState>>> {
    Ok(allowed_and_due(storage, device, user, request)?.0)
}

/// [`allowed_uploads`], with the cases the device must purge it read on the way (none read when
/// the request uploads nothing).
fn allowed_and_due(
    storage: &mut dyn HubStorage,
    device: DeviceId,
    user: UserId,
    request: &SyncRequest,
) -> Result<(Vec<Option<DeviceCaseState>>, Vec<CaseId>)> {
    let now = storage.now();
    let mut known = Vec::with_capacity(request.uploads.len());
    let mut inflated = 0u64;
    let due = if request.uploads.is_empty() {
        Vec::new()
    } else {
        storage.cases_to_purge(device, user)?
    };
    for upload in &request.uploads {
        let state = storage.device_state(device, upload.case_id)?;
        // Once a purge is due and its grace is over, the device writes to the case no more,
        // whether or not it sent its receipt.
        let purge_over = due.contains(&upload.case_id)
            && state
                .purge_ordered_at
                .is_some_and(|at| now.unix_timestamp() >= at.saturating_add(PURGE_GRACE_SECS));
        let allowed = !purge_over
            && (state != DeviceCaseState::default()
                || storage.is_assigned(user, upload.case_id)?
                || recovery_attestation(storage, request, upload.case_id).is_some());
        if allowed {
            // What automerge would inflate, bounded for the whole request, not only each upload.
            inflated = inflated.saturating_add(inflated_size(&upload.changes)?);
            if inflated > MAX_INFLATED {
                return Err(CoreError::Document(
                    "the uploads of one request inflate past the limit",
                ));
            }
        }
        known.push(allowed.then_some(state));
    }
    Ok((known, due))
}

/// The documents of a request's uploads, loaded and bounds-checked ahead of
/// [`handle_sync_loaded`]: for a phone's first upload of its cases this is most of the hub's
/// work, and it needs no storage, so a server does it outside its database turn.
pub struct LoadedUploads(Vec<Option<Option<Result<ReceivedDoc>>>>);

/// Loads the documents of the uploads `allowed` marks (index for index; see
/// [`allowed_uploads`]), side by side.
pub fn load_uploads(request: &SyncRequest, allowed: &[bool]) -> LoadedUploads {
    let loaded = load_documents(&request.uploads, allowed);
    LoadedUploads(
        loaded
            .into_iter()
            .zip(allowed)
            .map(|(doc, &allowed)| allowed.then_some(doc))
            .collect(),
    )
}

/// Handles one sync request from `device` (owned by `user`): applies its uploads to the cases it
/// may change, and answers with what changed since its cursor among the cases assigned to `user`.
/// Bad changes in an upload fail the whole request with a typed error; nothing is stored.
pub fn handle_sync(
    storage: &mut dyn HubStorage,
    device: DeviceId,
    user: UserId,
    request: &SyncRequest,
) -> Result<SyncResponse> {
    handle_sync_loaded(storage, device, user, request, None)
}

/// [`handle_sync`] with the uploads' documents loaded beforehand ([`load_uploads`]). Which
/// uploads are allowed is decided again here, in the request's transaction: a document loaded
/// for an upload no longer allowed is dropped, one allowed since is loaded now.
pub fn handle_sync_loaded(
    storage: &mut dyn HubStorage,
    device: DeviceId,
    user: UserId,
    request: &SyncRequest,
    loaded: Option<LoadedUploads>,
) -> Result<SyncResponse> {
    let frames = handle_sync_frames(storage, device, user, request, loaded)?;
    SyncResponse::merged(frames).ok_or(CoreError::Sync(super::SyncError::Malformed(
        "an answer of no frames",
    )))
}

/// [`handle_sync_loaded`], its answer cut into frames of at most [`FRAME_BUDGET`], each with
/// its own cursor, for an answer streamed to a phone that applies each frame as
/// it arrives. The first frame carries what concerns the request as a whole (the accepted
/// uploads, the cases to purge); merged ([`SyncResponse::merged`]) they are the one answer a
/// phone that does not stream receives.
pub fn handle_sync_frames(
    storage: &mut dyn HubStorage,
    device: DeviceId,
    user: UserId,
    request: &SyncRequest,
    loaded: Option<LoadedUploads>,
) -> Result<Vec<SyncResponse>> {
    let epoch = storage.office_epoch();
    if request.epoch.is_some_and(|e| e != epoch) {
        // The device synced last in another epoch: the office was restored since. What each
        // side believes of the other is from that other timeline; both forget it, and the device
        // offers everything it holds again. Its request is not taken: its changes were made
        // against heads this office may not have.
        storage.forget_device(device)?;
        return Ok(vec![SyncResponse {
            version: PROTOCOL_VERSION,
            cursor: 0,
            more: true,
            accepted: Vec::new(),
            updates: Vec::new(),
            purge: Vec::new(),
            lease: None,
            epoch: Some(epoch),
            reset: true,
            attested: Vec::new(),
            remaining: None,
        }]);
    }
    for case in &request.purged {
        storage.record_purge(device, *case)?;
    }
    let now = storage.now();
    let mut accepted = Vec::new();
    let (known, due) = allowed_and_due(storage, device, user, request)?;
    let mut loaded = loaded.map(|l| l.0).unwrap_or_default();
    loaded.resize_with(request.uploads.len(), || None);
    let missing: Vec<bool> = known
        .iter()
        .zip(&loaded)
        .map(|(k, l)| k.is_some() && l.is_none())
        .collect();
    let mut late = load_documents(&request.uploads, &missing).into_iter();
    let wholes: Vec<Option<Result<ReceivedDoc>>> = loaded
        .into_iter()
        .zip(&missing)
        .map(|(early, &missing)| {
            let late = late.next().flatten();
            if missing { late } else { early.flatten() }
        })
        .collect();
    for ((upload, whole), known) in request.uploads.iter().zip(wholes).zip(known) {
        let Some(known) = known else {
            // An upload to a case the device must purge that is not taken any more is still
            // acknowledged when the hub has it already (a resend whose answer was lost), so that
            // the device's outbox empties and it purges the case.
            if due.contains(&upload.case_id) && storage.is_erased(upload.case_id)? {
                // Erased at the office: nothing of it is taken, and the device drops it.
                accepted.push(upload.case_id);
            } else if due.contains(&upload.case_id)
                && !upload.heads.is_empty()
                && let Some(doc) = storage.case_doc(upload.case_id)?
                && doc.has_all(&upload.heads)
            {
                accepted.push(upload.case_id);
            }
            continue;
        };
        // History the office attested in an earlier epoch and lacks now (it was restored from a
        // backup since) is taken back as its own before the rest is checked as any upload is.
        // An attestation from an earlier epoch also shows that the device held the case then:
        // like a device whose case was taken from it, it may still give its own changes, and
        // it is told to purge the case if the office does not assign it to its user.
        let attested = recovery_attestation(storage, request, upload.case_id);
        if attested.is_some() && storage.case_doc(upload.case_id)?.is_none() {
            storage.recover_case(upload.case_id)?;
        }
        let Some(doc) = storage.case_doc(upload.case_id)? else {
            continue;
        };
        let recovery = attested.filter(|a| !doc.has_all(&a.heads));
        if let Some(attested) = recovery {
            let part = attested_part(&upload.changes, &attested.heads)?;
            doc.apply_checked(&part, None)?;
            if !doc.has_all(&attested.heads) {
                return Err(CoreError::Document(
                    "the attested history does not lead to its heads",
                ));
            }
        }
        // Changes always come with the heads they lead to: automerge skips bytes it cannot parse,
        // so without heads to check, garbage would be "accepted" as nothing.
        if upload.heads.is_empty() && !upload.changes.is_empty() {
            return Err(CoreError::Document(
                "changes sent without the heads they lead to",
            ));
        }
        // A resent upload (its response was lost) is already here: nothing to redo.
        let mut store = recovery.is_some();
        let mut adopted = false;
        if upload.heads.is_empty() || !doc.has_all(&upload.heads) {
            let before = doc.heads();
            let content_before = doc.take_content_snapshot();
            let received = doc.apply_checked(&upload.changes, whole)?;
            adopted = received.adopted;
            let author = Author { user, device };
            doc.check_authorship(&before, &content_before, received, author, now)?;
            if !doc.has_all(&upload.heads) {
                return Err(CoreError::Document("upload lacks changes its heads name"));
            }
            store |= doc.heads() != before;
        }
        if store {
            let adopted = adopted.then_some(upload.changes.as_slice());
            storage.store_case(upload.case_id, adopted)?;
        }
        if recovery.is_some() {
            storage.case_recovered(upload.case_id, device)?;
        }
        if attested.is_some() && known == DeviceCaseState::default() {
            // The device holds the case (it just offered it whole): should the office not assign
            // it to its user, the device is told to purge it like any case taken away.
            storage.set_device_state(device, upload.case_id, &DeviceCaseState::default())?;
        }
        // The device's own heads are the best knowledge of what it has: they cover every response
        // it applied, and a response it did not apply will be sent again from them. That holds
        // only where the hub knows the device holds the case. Otherwise this may be an old
        // request the network delayed, from before the device purged the case, or the answer
        // that offered the case again may have been lost: the device may hold nothing of it,
        // what the hub knows stays as it is, and the device is owed the whole document (changes
        // alone would not make a case on a device without it).
        if known.holds_case(request.cursor) {
            let state = DeviceCaseState {
                confirmed: upload.heads.clone(),
                sent: None,
                purge_ordered_at: known.purge_ordered_at,
            };
            storage.set_device_state(device, upload.case_id, &state)?;
        }
        accepted.push(upload.case_id);
    }

    let mut frames = continue_feed(storage, device, user, request.cursor, request.cursor)?;
    let purge = storage.cases_to_purge(device, user)?;
    for case in &purge {
        let mut state = storage.device_state(device, *case)?;
        if state.purge_ordered_at.is_none() {
            state.purge_ordered_at = Some(now.unix_timestamp());
            storage.set_device_state(device, *case, &state)?;
        }
    }
    if let Some(first) = frames.first_mut() {
        first.accepted = accepted;
        first.purge = purge;
    }
    Ok(frames)
}

/// One frame of a page while it is built.
struct FrameParts {
    updates: Vec<CaseChanges>,
    /// Every case the frame covers (updated or found current), with the state to record.
    states: Vec<(CaseId, DeviceCaseState)>,
    /// The highest sequence number the frame covers: applied, it is the device's cursor.
    cursor: u64,
    bytes: usize,
}

impl FrameParts {
    fn starting_at(cursor: u64) -> Self {
        Self {
            updates: Vec::new(),
            states: Vec::new(),
            cursor,
            bytes: 0,
        }
    }
}

/// One page of what changed among the cases assigned to `user` past `from`, at most
/// [`RESPONSE_BUDGET`] of change bytes, cut into frames of at most [`FRAME_BUDGET`] as they
/// travel (or one case, when a case alone is larger). Each frame has its own cursor, and the
/// heads it sends count as the device's once the device comes back with that frame's cursor: a
/// phone that applied some frames of a page before its link was cut is not sent them again.
/// What the device is known to have is what it proved with `acked`: the request's own page
/// reads from the request's cursor; a streamed answer's next page ([`handle_sync_frames`]) from
/// the cursor its last page ended at, with the request's cursor as `acked`, never counting what
/// the stream sent before (a frame in flight may yet be lost with the link).
pub fn continue_feed(
    storage: &mut dyn HubStorage,
    device: DeviceId,
    user: UserId,
    acked: u64,
    from: u64,
) -> Result<Vec<SyncResponse>> {
    let epoch = storage.office_epoch();
    let mut frames = Vec::new();
    let mut frame = FrameParts::starting_at(from);
    let mut budget = RESPONSE_BUDGET;
    let mut more = false;
    let limit = super::messages::MAX_CASES / 2;
    let changed = storage.assigned_changed_since(user, from, limit)?;
    more |= changed.len() == limit;
    let listed: Vec<u64> = changed.iter().map(|&(_, seq)| seq).collect();
    for (case, seq) in changed {
        if budget == 0 {
            more = true;
            break;
        }
        let mut state = storage.device_state(device, case)?;
        if let Some((sent, at)) = state.sent.take()
            && acked >= at
        {
            state.confirmed = sent;
        }
        // A device that has nothing of the case, or heads the hub does not hold (it cannot tell
        // what they lack), gets the compact document, not every change.
        let since_known = if state.confirmed.is_empty() {
            None
        } else {
            let Some(doc) = storage.case_doc(case)? else {
                continue;
            };
            match doc.has_all(&state.confirmed) {
                true => Some((doc.changes_for(&state.confirmed), doc.heads())),
                false => None,
            }
        };
        let (changes, heads) = match since_known {
            Some(update) => update,
            None => match storage.whole_case(case)? {
                Some(whole) => whole,
                None => continue,
            },
        };
        // A case found current adds nothing to a frame's bytes, so it never starts a new one.
        let size = (!changes.is_empty()).then(|| update_size(&changes, &heads));
        if let Some(size) = size
            && frame.bytes > 0
            && frame.bytes.saturating_add(size) > FRAME_BUDGET
        {
            let cursor = frame.cursor;
            frames.push(std::mem::replace(
                &mut frame,
                FrameParts::starting_at(cursor),
            ));
        }
        frame.cursor = frame.cursor.max(seq);
        if let Some(size) = size {
            budget = budget.saturating_sub(changes.len());
            frame.bytes = frame.bytes.saturating_add(size);
            frame.updates.push(CaseChanges {
                case_id: case,
                changes,
                heads,
            });
        }
        frame.states.push((case, state));
    }
    let page_cursor = frame.cursor;
    frames.push(frame);
    // What is left for later pages, said only when there are later pages (an answer that is the
    // last page stays as short as before): the listed cases past this page's cursor (a lower
    // bound when the list stopped at its limit), and what their documents weigh.
    let left = listed.iter().filter(|&&seq| seq > page_cursor).count();
    let page_left = match (more, left) {
        (false, _) => None,
        (true, 0) => Some(Remaining::default()),
        (true, left) => Some(Remaining {
            cases: u64::try_from(left).unwrap_or(u64::MAX),
            bytes: storage.assigned_changed_bytes(user, page_cursor)?,
        }),
    };
    let key = *storage.attestation_key();
    // Each frame says what is left after it: the later frames of this page, then the rest.
    let mut after = page_left;
    let mut out = Vec::with_capacity(frames.len());
    for (i, parts) in frames.into_iter().enumerate().rev() {
        let last = out.is_empty();
        for (case, mut state) in parts.states {
            // Heads sent now count as the device's once it comes back with this frame's cursor.
            if let Some(update) = parts.updates.iter().find(|u| u.case_id == case) {
                state.sent = Some((update.heads.clone(), parts.cursor));
            }
            storage.set_device_state(device, case, &state)?;
        }
        let attested = parts
            .updates
            .iter()
            .map(|u| Attested::new(&key, epoch, u.case_id, &u.heads))
            .collect();
        let remaining = after;
        if i > 0 {
            let own = Remaining {
                cases: u64::try_from(parts.updates.len()).unwrap_or(u64::MAX),
                bytes: u64::try_from(parts.bytes).unwrap_or(u64::MAX),
            };
            let later = after.unwrap_or_default();
            after = Some(Remaining {
                cases: later.cases.saturating_add(own.cases),
                bytes: later.bytes.saturating_add(own.bytes),
            });
        }
        out.push(SyncResponse {
            version: PROTOCOL_VERSION,
            cursor: parts.cursor,
            more: if last { more } else { true },
            accepted: Vec::new(),
            updates: parts.updates,
            purge: Vec::new(),
            lease: None,
            epoch: Some(epoch),
            reset: false,
            attested,
            remaining,
        });
    }
    out.reverse();
    Ok(out)
}

/// [`ReceivedDoc::load`] of every upload, index for index, side by side: the loads and bounds
/// checks of a first upload's documents are most of the hub's work for it, need nothing from
/// storage, and are independent of each other.
fn load_documents(uploads: &[CaseChanges], wanted: &[bool]) -> Vec<Option<Result<ReceivedDoc>>> {
    let wanted: Vec<(&CaseChanges, bool)> =
        uploads.iter().zip(wanted).map(|(u, &w)| (u, w)).collect();
    let load = |&(u, wanted): &(&CaseChanges, bool)| {
        wanted
            .then(|| ReceivedDoc::load(u.case_id, &u.changes))
            .flatten()
    };
    if wanted
        .iter()
        .filter(|(u, wanted)| *wanted && is_document_chunk(&u.changes))
        .count()
        < 2
    {
        return wanted.iter().map(load).collect();
    }
    crate::util::map_side_by_side(&wanted, load)
}

/// An in-memory hub: for tests of the sync engine. It keeps saved documents and loads the one a
/// request works on afresh at every [`HubStorage::case_doc`], so that a request that fails on a
/// case leaves that case as stored. It has no transactions: cases a failed request stored before
/// the one it failed on stay stored (the server's storage rolls them back).
pub struct MemoryHub {
    actor: ActorId,
    cases: HashMap<CaseId, (Vec<u8>, u64)>,
    /// The document the current request works on, loaded from `cases`.
    held: Option<CaseDoc>,
    assigned: HashMap<CaseId, Vec<UserId>>,
    devices: BTreeMap<(DeviceId, CaseId), DeviceCaseState>,
    seq: u64,
    purged: Vec<(DeviceId, CaseId)>,
    /// The hub's clock, if set; else the system's.
    clock: Option<OffsetDateTime>,
    epoch: OfficeEpoch,
    key: [u8; 32],
    /// A case started again by [`HubStorage::recover_case`], held until stored.
    recovering: Option<CaseId>,
    recovered: Vec<(CaseId, DeviceId)>,
    /// The epoch each device last started over in.
    started_over: HashMap<DeviceId, OfficeEpoch>,
}

impl Default for MemoryHub {
    fn default() -> Self {
        Self {
            actor: ActorId::random(),
            cases: HashMap::new(),
            held: None,
            assigned: HashMap::new(),
            devices: BTreeMap::new(),
            seq: 0,
            purged: Vec::new(),
            clock: None,
            epoch: rand::random(),
            key: rand::random(),
            recovering: None,
            recovered: Vec::new(),
            started_over: HashMap::new(),
        }
    }
}

impl MemoryHub {
    /// An empty hub.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the hub's clock (the system's until then).
    pub fn set_now(&mut self, now: OffsetDateTime) {
        self.clock = Some(now);
    }

    /// Puts a case (a saved document) on the hub and assigns it to `users`.
    pub fn put_case(&mut self, case: CaseId, saved: Vec<u8>, users: &[UserId]) {
        self.seq += 1;
        self.cases.insert(case, (saved, self.seq));
        self.assigned.insert(case, users.to_vec());
    }

    /// Assigns a case to exactly `users` (an office decision, bumping nothing: the case's
    /// content did not change).
    pub fn set_assigned(&mut self, case: CaseId, users: &[UserId]) {
        self.assigned.insert(case, users.to_vec());
        // A purge ordered before no longer stands (it is ordered again where it still does).
        for ((_, c), state) in self.devices.iter_mut() {
            if *c == case {
                state.purge_ordered_at = None;
            }
        }
    }

    /// Purge receipts received, in order.
    pub fn purge_receipts(&self) -> &[(DeviceId, CaseId)] {
        &self.purged
    }

    /// The saved document of a case.
    pub fn case_bytes(&self, case: CaseId) -> Option<&[u8]> {
        self.cases.get(&case).map(|(b, _)| b.as_slice())
    }

    /// This hub as a backup taken now would bring it back: the same cases, assignments, sync
    /// state and keys. [`MemoryHub::restore`] makes an office of it again.
    pub fn backup(&self) -> MemoryHub {
        MemoryHub {
            actor: self.actor.clone(),
            cases: self.cases.clone(),
            held: None,
            assigned: self.assigned.clone(),
            devices: self.devices.clone(),
            seq: self.seq,
            purged: self.purged.clone(),
            clock: self.clock,
            epoch: self.epoch,
            key: self.key,
            recovering: None,
            recovered: Vec::new(),
            started_over: self.started_over.clone(),
        }
    }

    /// Restores `backup`: what it held, in a new epoch (as a restore of the server does).
    pub fn restore(backup: &MemoryHub) -> MemoryHub {
        let mut hub = backup.backup();
        hub.actor = ActorId::random();
        hub.epoch = rand::random();
        hub
    }

    /// The cases devices gave back after a restore, with the device, in order.
    pub fn recovered(&self) -> &[(CaseId, DeviceId)] {
        &self.recovered
    }
}

impl HubStorage for MemoryHub {
    fn now(&self) -> OffsetDateTime {
        self.clock.unwrap_or_else(OffsetDateTime::now_utc)
    }

    fn case_doc(&mut self, case: CaseId) -> Result<Option<&mut CaseDoc>> {
        if self.recovering == Some(case) {
            return Ok(self.held.as_mut());
        }
        self.held = match self.cases.get(&case) {
            Some((saved, _)) => Some(CaseDoc::load(case, saved, &self.actor)?),
            None => None,
        };
        Ok(self.held.as_mut())
    }

    fn whole_case(&mut self, case: CaseId) -> Result<Option<WholeCase>> {
        Ok(self.case_doc(case)?.map(|doc| (doc.save(), doc.heads())))
    }

    fn store_case(&mut self, case: CaseId, _received: Option<&[u8]>) -> Result<()> {
        let doc = self
            .held
            .as_mut()
            .filter(|d| d.id() == case)
            .ok_or(CoreError::CaseNotFound)?;
        self.seq += 1;
        self.cases.insert(case, (doc.save(), self.seq));
        self.recovering = None;
        Ok(())
    }

    fn is_assigned(&mut self, user: UserId, case: CaseId) -> Result<bool> {
        Ok(self.assigned.get(&case).is_some_and(|u| u.contains(&user)))
    }

    fn assigned_changed_since(
        &mut self,
        user: UserId,
        cursor: u64,
        limit: usize,
    ) -> Result<Vec<(CaseId, u64)>> {
        let mut out: Vec<(CaseId, u64)> = self
            .cases
            .iter()
            .filter(|(id, (_, seq))| {
                *seq > cursor && self.assigned.get(id).is_some_and(|u| u.contains(&user))
            })
            .map(|(id, (_, seq))| (*id, *seq))
            .collect();
        out.sort_by_key(|(_, seq)| *seq);
        out.truncate(limit);
        Ok(out)
    }

    fn assigned_changed_bytes(&mut self, user: UserId, cursor: u64) -> Result<u64> {
        Ok(self
            .cases
            .iter()
            .filter(|(id, (_, seq))| {
                *seq > cursor && self.assigned.get(id).is_some_and(|u| u.contains(&user))
            })
            .map(|(_, (saved, _))| u64::try_from(saved.len()).unwrap_or(u64::MAX))
            .fold(0u64, u64::saturating_add))
    }

    fn device_state(&mut self, device: DeviceId, case: CaseId) -> Result<DeviceCaseState> {
        Ok(self
            .devices
            .get(&(device, case))
            .cloned()
            .unwrap_or_default())
    }

    fn set_device_state(
        &mut self,
        device: DeviceId,
        case: CaseId,
        state: &DeviceCaseState,
    ) -> Result<()> {
        self.devices.insert((device, case), state.clone());
        Ok(())
    }

    fn cases_to_purge(&mut self, device: DeviceId, user: UserId) -> Result<Vec<CaseId>> {
        Ok(self
            .devices
            .keys()
            .filter(|(d, c)| {
                *d == device && !self.assigned.get(c).is_some_and(|u| u.contains(&user))
            })
            .map(|(_, c)| *c)
            .collect())
    }

    fn record_purge(&mut self, device: DeviceId, case: CaseId) -> Result<()> {
        self.devices.remove(&(device, case));
        self.purged.push((device, case));
        Ok(())
    }

    fn office_epoch(&self) -> OfficeEpoch {
        self.epoch
    }

    fn attestation_key(&self) -> &[u8; 32] {
        &self.key
    }

    fn forget_device(&mut self, device: DeviceId) -> Result<()> {
        if self.started_over.insert(device, self.epoch) != Some(self.epoch) {
            self.devices.retain(|(d, _), _| *d != device);
        }
        Ok(())
    }

    fn recover_case(&mut self, case: CaseId) -> Result<()> {
        self.held = Some(CaseDoc::empty(case, &self.actor));
        self.recovering = Some(case);
        Ok(())
    }

    fn case_recovered(&mut self, case: CaseId, device: DeviceId) -> Result<()> {
        let saved = &self.cases.get(&case).ok_or(CoreError::CaseNotFound)?.0;
        let assigned = CaseDoc::load(case, saved, &self.actor)?
            .case()?
            .assigned_workers;
        self.assigned.insert(case, assigned);
        self.recovered.push((case, device));
        Ok(())
    }
}
