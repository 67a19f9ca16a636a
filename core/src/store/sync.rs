//! The store's side of sync: building a request from the outbox and applying a response in one
//! transaction. No network here (see [`crate::sync`]).

use std::collections::{HashMap, HashSet};

use automerge::ChangeHash;
use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};

use super::records::Sealer;
use super::{Store, Unlocked};
use crate::document::CaseDoc;
use crate::error::{CoreError, Result};
use crate::ids::CaseId;
use crate::sync::{
    Attested, CaseChanges, OfficeEpoch, PROTOCOL_VERSION, SyncRequest, SyncResponse,
};

/// Change bytes put in one request before the rest waits for the next round. Small enough that
/// on a slow link a cut costs at most one such page: each accepted page is acknowledged and not
/// sent again.
pub const UPLOAD_BUDGET: usize = 128 * 1024;

/// Cases whose documents a request loads side by side before taking their changes: enough to
/// keep the threads busy, few enough that past the upload budget little is loaded for nothing
/// (what is loaded stays in memory for the next round).
const PRELOAD_BATCH: usize = 16;

/// What one pending edit is taken to weigh at least as a change on the wire (a note's change is
/// about 550 B, a task's status or a checklist item less): a case not in memory whose pending
/// edits weigh at least its stored snapshot goes as that snapshot, read and sent as stored,
/// rather than loaded into automerge to take its changes. A wrong guess costs bytes, never
/// data: the whole document holds every change.
const EDIT_BYTES: usize = 256;

/// A request built from the store, remembering which outbox entries it covers.
#[derive(Debug, Clone)]
pub struct PreparedSync {
    request: SyncRequest,
    outbox_upto: i64,
    /// Cases with pending changes left for a later round (over the upload budget).
    deferred: HashSet<CaseId>,
    /// The office's last statement of each uploaded case, as read for the request: kept with
    /// the heads the office confirms, without reading the case's sync state again.
    statements: HashMap<CaseId, Attested>,
    /// Cases whose documents were loaded into automerge to build the request.
    loaded: usize,
}

impl PreparedSync {
    /// How many cases' documents building the request loaded into automerge (the rest were
    /// in memory, or went as stored).
    pub fn cases_loaded(&self) -> usize {
        self.loaded
    }

    /// The request to send.
    pub fn request(&self) -> &SyncRequest {
        &self.request
    }

    /// Whether cases with pending changes were left for the next round.
    pub fn more_uploads(&self) -> bool {
        !self.deferred.is_empty()
    }

    /// What the later frames of a streamed answer to this request are applied with: a request
    /// that uploaded nothing and covers no outbox entry, from the same office epoch. The first
    /// frame, applied with this request itself, settles its uploads and purge receipts.
    pub fn continuation(&self) -> PreparedSync {
        PreparedSync {
            request: SyncRequest {
                version: self.request.version,
                cursor: self.request.cursor,
                uploads: Vec::new(),
                purged: Vec::new(),
                epoch: self.request.epoch,
                attested: Vec::new(),
            },
            outbox_upto: 0,
            deferred: HashSet::new(),
            statements: self.statements.clone(),
            loaded: 0,
        }
    }

    /// How many cases with pending changes were left for later rounds (over the upload
    /// budget): what a progress bar still expects to send after this request.
    pub fn deferred_cases(&self) -> usize {
        self.deferred.len()
    }
}

/// What applying one response did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AppliedSync {
    /// Cases whose uploaded changes the server accepted.
    pub uploaded: usize,
    /// Cases that received changes.
    pub updated: usize,
    /// Purge receipts wait to be sent (the client makes one more round for them).
    pub receipts_pending: bool,
    /// The office was restored since this device last synced: the store forgot what it believed
    /// the office holds and queued every case it has to be offered again, whole.
    pub reset: bool,
}

#[derive(Serialize, Deserialize, Default)]
struct CaseSyncState {
    /// Heads the server is known to have, as hex.
    server_heads: Vec<String>,
    /// The office's last statement of the heads it held, shown to it again should it be
    /// restored from a backup ([`crate::sync::epoch`]).
    #[serde(default)]
    attested: Option<Attested>,
}

const CURSOR_ROW: &str = "sync_cursor";
const PURGED_ROW: &str = "purge_receipts";
const EPOCH_ROW: &str = "office_epoch";

/// Cases purged whose receipts the server has not acknowledged yet.
fn purge_receipts(conn: &rusqlite::Connection, sealer: &Sealer<'_>) -> Result<Vec<CaseId>> {
    Ok(sealer.meta(conn, PURGED_ROW)?.unwrap_or_default())
}

fn sync_state(
    conn: &rusqlite::Connection,
    sealer: &Sealer<'_>,
    case: CaseId,
) -> Result<CaseSyncState> {
    let sealed: Option<Vec<u8>> = conn
        .query_row(
            "SELECT state FROM sync_state WHERE case_id = ?1",
            [case.as_bytes().as_slice()],
            |r| r.get(0),
        )
        .optional()?;
    match sealed {
        Some(sealed) => sealer.open_json("sync_state", case.as_bytes(), 0, &sealed),
        None => Ok(CaseSyncState::default()),
    }
}

fn parse_heads(state: &CaseSyncState) -> Result<Vec<ChangeHash>> {
    state
        .server_heads
        .iter()
        .map(|h| {
            h.parse()
                .map_err(|_| CoreError::Corrupt { what: "sync_state" })
        })
        .collect()
}

pub(super) fn server_heads(
    conn: &rusqlite::Connection,
    sealer: &Sealer<'_>,
    case: CaseId,
) -> Result<Vec<ChangeHash>> {
    parse_heads(&sync_state(conn, sealer, case)?)
}

/// Records the heads the server has of `case`, with the office's latest statement of the case.
fn set_server_heads(
    conn: &rusqlite::Connection,
    sealer: &Sealer<'_>,
    case: CaseId,
    heads: &[ChangeHash],
    attested: Option<Attested>,
) -> Result<()> {
    let state = CaseSyncState {
        server_heads: heads.iter().map(|h| h.to_string()).collect(),
        attested,
    };
    write_sync_state(conn, sealer, case, &state)
}

fn write_sync_state(
    conn: &rusqlite::Connection,
    sealer: &Sealer<'_>,
    case: CaseId,
    state: &CaseSyncState,
) -> Result<()> {
    let sealed = sealer.seal_json("sync_state", case.as_bytes(), 0, state)?;
    conn.execute(
        "INSERT INTO sync_state (case_id, state) VALUES (?1, ?2)
         ON CONFLICT(case_id) DO UPDATE SET state = excluded.state",
        params![case.as_bytes().as_slice(), sealed],
    )?;
    Ok(())
}

fn cursor(conn: &rusqlite::Connection, sealer: &Sealer<'_>) -> Result<u64> {
    Ok(sealer.meta(conn, CURSOR_ROW)?.unwrap_or(0))
}

/// The outbox action of a case queued to be offered whole again to an office restored from a
/// backup.
pub(super) const OFFER_AGAIN: &str = "sync.offer_again";

/// Starts over with an office restored from a backup: forgets the heads it was believed to hold
/// (every case is then offered whole, with the office's last statement of it), its cursor and
/// the purge receipts it no longer needs, and queues every case held to be offered again.
/// Deletes no case data. The caller also gives the store a new actor ([`super::rotate_actor`]).
fn reset_for_new_epoch(
    tx: &rusqlite::Transaction<'_>,
    sealer: &Sealer<'_>,
    epoch: Option<OfficeEpoch>,
    now: time::OffsetDateTime,
) -> Result<()> {
    let states: Vec<(Vec<u8>, Vec<u8>)> = {
        let mut stmt = tx.prepare("SELECT case_id, state FROM sync_state")?;
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?
    };
    for (raw, sealed) in states {
        let case = CaseId::from_slice(&raw).ok_or(CoreError::Corrupt { what: "sync_state" })?;
        let mut state: CaseSyncState =
            sealer.open_json("sync_state", case.as_bytes(), 0, &sealed)?;
        state.server_heads.clear();
        write_sync_state(tx, sealer, case, &state)?;
    }
    let held: Vec<Vec<u8>> = {
        let mut stmt = tx.prepare("SELECT case_id FROM case_docs")?;
        stmt.query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?
    };
    for raw in held {
        let case = CaseId::from_slice(&raw).ok_or(CoreError::Corrupt { what: "case_docs" })?;
        super::api::push_outbox(tx, sealer, case, OFFER_AGAIN, now)?;
    }
    // The restored office may lack attachments it had acknowledged: each of this phone's own is
    // offered again (the office answers at once for content it still holds).
    tx.execute("UPDATE attachments SET acked = 0 WHERE ours = 1", [])?;
    sealer.put_meta(tx, CURSOR_ROW, &0u64)?;
    sealer.put_meta(tx, PURGED_ROW, &Vec::<CaseId>::new())?;
    sealer.put_meta(tx, EPOCH_ROW, &epoch)?;
    Ok(())
}

impl Store {
    /// Builds the next sync request: the cursor, and for each case with pending local changes the
    /// changes the server lacks. Reads only the cases in the outbox.
    pub fn prepare_sync(&self) -> Result<PreparedSync> {
        self.with_unlocked_for_sync(|conn, u, store_id| {
            let Unlocked {
                key, actor, docs, ..
            } = u;
            let sealer = Sealer { key, store_id };
            let cursor = cursor(conn, &sealer)?;
            let outbox_upto: i64 =
                conn.query_row("SELECT COALESCE(MAX(seq), 0) FROM outbox", [], |r| r.get(0))?;
            let cases: Vec<CaseId> = {
                let mut stmt =
                    conn.prepare_cached("SELECT DISTINCT case_id FROM outbox WHERE seq <= ?1")?;
                let rows: Vec<Vec<u8>> = stmt
                    .query_map([outbox_upto], |r| r.get(0))?
                    .collect::<rusqlite::Result<_>>()?;
                rows.iter()
                    .map(|raw| CaseId::from_slice(raw).ok_or(CoreError::Corrupt { what: "outbox" }))
                    .collect::<Result<_>>()?
            };
            let mut uploads = Vec::new();
            let mut attested = Vec::new();
            let mut statements = HashMap::new();
            let mut deferred = HashSet::new();
            let mut budget = UPLOAD_BUDGET;
            let edits: HashMap<CaseId, usize> = {
                let mut stmt = conn.prepare_cached(
                    "SELECT case_id, COUNT(*) FROM outbox WHERE seq <= ?1 GROUP BY case_id",
                )?;
                let rows: Vec<(Vec<u8>, i64)> = stmt
                    .query_map([outbox_upto], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<rusqlite::Result<_>>()?;
                rows.into_iter()
                    .filter_map(|(raw, n)| {
                        Some((CaseId::from_slice(&raw)?, usize::try_from(n).ok()?))
                    })
                    .collect()
            };
            let mut states = HashMap::new();
            let mut stored = HashMap::new();
            let mut loaded = 0;
            for (i, &case) in cases.iter().enumerate() {
                if budget == 0 || uploads.len() >= crate::sync::messages::MAX_CASES / 2 {
                    deferred.insert(case);
                    continue;
                }
                if i % PRELOAD_BATCH == 0 {
                    let batch = &cases[i..cases.len().min(i + PRELOAD_BATCH)];
                    let mut to_load = Vec::new();
                    for &case in batch {
                        let state = sync_state(conn, &sealer, case)?;
                        let offered_whole = parse_heads(&state)?.is_empty();
                        let weight = edits
                            .get(&case)
                            .copied()
                            .unwrap_or(0)
                            .saturating_mul(EDIT_BYTES);
                        let whole = if docs.contains(&case) {
                            None
                        } else {
                            sealer.stored_whole(conn, case, |len| offered_whole || weight >= len)?
                        };
                        match whole {
                            Some(whole) => {
                                stored.insert(case, whole);
                            }
                            None => to_load.push(case),
                        }
                        states.insert(case, state);
                    }
                    loaded += to_load.iter().filter(|c| !docs.contains(c)).count();
                    docs.preload(conn, &sealer, actor, &to_load)?;
                }
                let state = match states.remove(&case) {
                    Some(state) => state,
                    None => sync_state(conn, &sealer, case)?,
                };
                let known = parse_heads(&state)?;
                // A case offered whole (`whole`) goes with the office's last statement of it,
                // which a restored office takes back as its own.
                let (changes, heads, whole) = match stored.remove(&case) {
                    // The office has it all already (an answer was lost): nothing to send.
                    Some((_, heads)) if heads.iter().all(|h| known.contains(h)) => continue,
                    // The case as stored is the whole document: sent as it is.
                    Some((snapshot, heads)) => (snapshot.to_vec(), heads, known.is_empty()),
                    None => {
                        let doc = docs.get_or_load(conn, &sealer, actor, case)?;
                        let since = if doc.has_all(&known) {
                            known
                        } else {
                            Vec::new()
                        };
                        // Many changes travel smaller as one compact document, which the server
                        // also loads in one pass.
                        (doc.changes_for(&since), doc.heads(), since.is_empty())
                    }
                };
                if !changes.is_empty() {
                    budget = budget.saturating_sub(changes.len());
                    uploads.push(CaseChanges {
                        case_id: case,
                        changes,
                        heads,
                    });
                    if let Some(statement) = state.attested {
                        if whole {
                            attested.push(statement.clone());
                        }
                        statements.insert(case, statement);
                    }
                }
            }
            let purged = purge_receipts(conn, &sealer)?;
            let epoch = sealer
                .meta::<Option<OfficeEpoch>>(conn, EPOCH_ROW)?
                .flatten();
            Ok(PreparedSync {
                request: SyncRequest {
                    version: PROTOCOL_VERSION,
                    cursor,
                    uploads,
                    purged,
                    epoch,
                    attested,
                },
                outbox_upto,
                deferred,
                statements,
                loaded,
            })
        })
    }

    /// Applies a server response in one transaction: the received changes, the refreshed index,
    /// the heads the server now has, the acknowledged outbox entries and the new cursor.
    pub fn apply_sync(
        &self,
        prepared: PreparedSync,
        response: SyncResponse,
    ) -> Result<AppliedSync> {
        let compact_after = self.options.compact_after;
        let now = self.options.clock.now();
        self.with_unlocked_for_sync(|conn, u, store_id| {
            let Unlocked {
                key,
                actor,
                docs,
                lease,
                ..
            } = u;
            let sealer = Sealer { key, store_id };
            let mut touched = Vec::new();
            let result = (|| {
                let tx = conn.transaction()?;
                if response.reset {
                    reset_for_new_epoch(&tx, &sealer, response.epoch, now)?;
                    let rotated = super::rotate_actor(&tx, &sealer)?;
                    tx.commit()?;
                    *actor = rotated;
                    // Documents in memory carry the old actor: they are read again with the new.
                    docs.clear();
                    return Ok(AppliedSync {
                        reset: true,
                        ..AppliedSync::default()
                    });
                }
                for update in &response.updates {
                    touched.push(update.case_id);
                    let known = tx
                        .query_row(
                            "SELECT 1 FROM case_docs WHERE case_id = ?1",
                            [update.case_id.as_bytes().as_slice()],
                            |_| Ok(()),
                        )
                        .optional()?
                        .is_some();
                    if known {
                        let doc = docs.get_or_load(&tx, &sealer, actor, update.case_id)?;
                        if doc.apply_received(&update.changes)?.adopted {
                            // The received document is the whole case now: it becomes the
                            // snapshot as it came, rather than a change that every later load
                            // would apply operation by operation.
                            sealer.write_saved_snapshot(&tx, update.case_id, &update.changes)?;
                        } else {
                            sealer.append_changes(&tx, doc, &update.changes, compact_after)?;
                        }
                        sealer.write_index(&tx, doc)?;
                    } else {
                        let mut doc = CaseDoc::empty(update.case_id, actor);
                        doc.apply_encoded_changes(&update.changes)?;
                        if crate::document::is_document_chunk(&update.changes) {
                            // Loaded above, so these bytes load: keep them as they came.
                            sealer.write_saved_snapshot(&tx, update.case_id, &update.changes)?;
                        } else {
                            sealer.write_snapshot(&tx, &mut doc)?;
                        }
                        sealer.write_index(&tx, &doc)?;
                        docs.insert(doc);
                    }
                    let sent = response
                        .attested
                        .iter()
                        .find(|a| a.case_id == update.case_id && a.heads == update.heads);
                    // An office that attests nothing leaves the last statement as it was.
                    let attested = match (sent, prepared.statements.get(&update.case_id)) {
                        (Some(a), _) | (None, Some(a)) => Some(a.clone()),
                        (None, None) => sync_state(&tx, &sealer, update.case_id)?.attested,
                    };
                    set_server_heads(&tx, &sealer, update.case_id, &update.heads, attested)?;
                }
                let accepted: HashSet<CaseId> = response.accepted.iter().copied().collect();
                let uploaded: HashSet<CaseId> =
                    prepared.request.uploads.iter().map(|c| c.case_id).collect();
                for upload in &prepared.request.uploads {
                    if accepted.contains(&upload.case_id)
                        && !response.updates.iter().any(|c| c.case_id == upload.case_id)
                    {
                        let attested = prepared.statements.get(&upload.case_id).cloned();
                        set_server_heads(&tx, &sealer, upload.case_id, &upload.heads, attested)?;
                    }
                }
                // Outbox entries covered by this request: acknowledged when their case was
                // accepted, or had nothing the server lacked.
                let entries: Vec<(i64, Vec<u8>)> = {
                    let mut stmt =
                        tx.prepare_cached("SELECT seq, case_id FROM outbox WHERE seq <= ?1")?;
                    stmt.query_map([prepared.outbox_upto], |r| Ok((r.get(0)?, r.get(1)?)))?
                        .collect::<rusqlite::Result<_>>()?
                };
                for (seq, raw) in entries {
                    let case =
                        CaseId::from_slice(&raw).ok_or(CoreError::Corrupt { what: "outbox" })?;
                    if accepted.contains(&case)
                        || !(uploaded.contains(&case) || prepared.deferred.contains(&case))
                    {
                        tx.prepare_cached("DELETE FROM outbox WHERE seq = ?1")?
                            .execute([seq])?;
                    }
                }
                // Cases no longer assigned: purged once nothing of them waits to be sent; the
                // receipts go with the next request.
                let mut receipts: Vec<CaseId> = purge_receipts(&tx, &sealer)?
                    .into_iter()
                    .filter(|c| !prepared.request.purged.contains(c))
                    .collect();
                for case in &response.purge {
                    let row = case.as_bytes().as_slice();
                    let waiting: i64 = tx.query_row(
                        "SELECT COUNT(*) FROM outbox WHERE case_id = ?1",
                        [row],
                        |r| r.get(0),
                    )?;
                    if waiting == 0 {
                        for table in ["case_docs", "case_changes", "case_index", "sync_state"] {
                            tx.execute(&format!("DELETE FROM {table} WHERE case_id = ?1"), [row])?;
                        }
                        super::attachments::purge_case(&tx, *case)?;
                        touched.push(*case);
                        if !receipts.contains(case) {
                            receipts.push(*case);
                        }
                    }
                }
                sealer.put_meta(&tx, PURGED_ROW, &receipts)?;
                if let (Some(gate), Some(granted)) = (lease.as_mut(), response.lease.as_ref())
                    && gate.accept(granted)
                {
                    gate.store(&tx, &sealer)?;
                }
                sealer.put_meta(&tx, CURSOR_ROW, &response.cursor)?;
                if response.epoch.is_some() && response.epoch != prepared.request.epoch {
                    sealer.put_meta(&tx, EPOCH_ROW, &response.epoch)?;
                }
                tx.commit()?;
                for case in &response.purge {
                    docs.remove(case);
                }
                Ok(AppliedSync {
                    uploaded: accepted.intersection(&uploaded).count(),
                    updated: response.updates.len(),
                    receipts_pending: !receipts.is_empty(),
                    reset: false,
                })
            })();
            if result.is_err() {
                for case in touched {
                    docs.remove(&case);
                }
            }
            result
        })
    }
}
