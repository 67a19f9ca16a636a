//! Case documents at rest: a sealed snapshot per case (`cases.doc`) followed by the sealed
//! change chunks stored since (`case_chunks`), each bound to its case (and a chunk to its
//! sequence number), compacted into a new snapshot once they pile up.

use fieldcase_core::crypto::{open, seal};
use fieldcase_core::document::CaseDoc;
use fieldcase_core::ids::CaseId;
use fieldcase_core::model::CaseStatus;
use fieldcase_core::sync::hub::WholeCase;
use fieldcase_core::{ChangeHash, CoreError};
use zeroize::Zeroizing;

use super::cache::LoadedCase;
use super::vault::CaseVault;
use crate::error::ServerError;
use crate::sql_params;
use crate::storage::phases::{self, Phase};
use crate::storage::report_index;
use crate::storage::sql::{Backend, Sql};

/// Most change chunks stored after a snapshot before the next store compacts them into it.
pub const MAX_CHUNKS: usize = 32;

/// The PostgreSQL channel on which every store of a case is announced (see
/// `storage::live_notify`).
pub const CASES_CHANNEL: &str = "fieldcase_cases";

/// Heads as stored in text columns: hex hashes joined by commas.
pub(crate) fn heads_text(heads: &[ChangeHash]) -> String {
    heads
        .iter()
        .map(|h| h.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// Parses [`heads_text`]; `what` names the table for the error.
pub(crate) fn parse_heads(text: &str, what: &'static str) -> Result<Vec<ChangeHash>, CoreError> {
    text.split(',')
        .filter(|s| !s.is_empty())
        .map(|h| h.parse().map_err(|_| CoreError::Corrupt { what }))
        .collect()
}

fn doc_aad(case: CaseId) -> Vec<u8> {
    let mut aad = b"fieldcase-server/cases/".to_vec();
    aad.extend_from_slice(case.as_bytes());
    aad
}

/// A chunk is bound to its case and to the sequence number it was stored under, so chunks cannot
/// be moved between cases or reordered without the open failing.
fn chunk_aad(case: CaseId, seq: i64) -> Vec<u8> {
    let mut aad = b"fieldcase-server/case-chunks/".to_vec();
    aad.extend_from_slice(case.as_bytes());
    aad.extend_from_slice(&seq.to_be_bytes());
    aad
}

/// [`checkout`] for a device's sync, which first waits (up to
/// [`super::cache::RETURN_WAIT`]) while another transaction has the case out: that one gives
/// it back when it ends, with the heads it stored, read next. A sync's own documents go back on
/// its database thread right after its commit, so a sync of the same case let in by the locks
/// finds them instead of loading another copy. Never waits while holding what orders every
/// writer. Only syncs wait: an office page may hold a document across several of its own
/// transactions on other threads, and would wait for itself.
pub(crate) fn checkout_for_sync(
    sql: &mut dyn Sql,
    vault: &CaseVault,
    case: CaseId,
) -> Result<Option<LoadedCase>, ServerError> {
    if !phases::holding() {
        vault.docs.await_return(case);
    }
    checkout(sql, vault, case)
}

/// Takes a case's document out for this transaction: from memory when the copy there has the
/// stored heads, else from the database (snapshot, then each chunk in order). `None` when the
/// case does not exist.
pub(crate) fn checkout(
    sql: &mut dyn Sql,
    vault: &CaseVault,
    case: CaseId,
) -> Result<Option<LoadedCase>, ServerError> {
    let id = case.to_string();
    let Some(stored) = sql.query_opt("SELECT heads FROM cases WHERE id = ?1", sql_params![&id])?
    else {
        return Ok(None);
    };
    let stored: String = stored.get(0)?;
    let stored_heads = parse_heads(&stored, "cases")?;
    let lease = match vault.docs.take(case, &stored_heads) {
        Ok(loaded) => return Ok(Some(loaded)),
        Err(lease) => lease,
    };
    // Not in memory (evicted, or changed by another instance): loaded from the database, the
    // snapshot and its chunks in one statement, so in one consistent state even where a sync
    // of another case may commit meanwhile (PostgreSQL at READ COMMITTED).
    phases::time(Phase::Load, || {
        let rows = sql.query_all(
            "SELECT 0, doc FROM cases WHERE id = ?1
             UNION ALL SELECT seq, chunk FROM case_chunks WHERE case_id = ?1
             ORDER BY 1",
            sql_params![&id],
        )?;
        let mut rows = rows.into_iter();
        let Some(first) = rows.next() else {
            return Ok(None);
        };
        let (at, sealed): (i64, Vec<u8>) = (first.get(0)?, first.get(1)?);
        if at != 0 {
            // Chunks with no snapshot before them.
            return Err(CoreError::Corrupt { what: "cases" }.into());
        }
        let snapshot = open(vault.key(), &doc_aad(case), &sealed, "case document")?;
        let mut doc = CaseDoc::load(case, &snapshot, &vault.actor)?;
        let mut loaded = LoadedCase {
            stored_heads: Vec::new(),
            exists: true,
            snapshot_bytes: snapshot.len(),
            chunks: 0,
            chunk_bytes: 0,
            snapshot: None,
            doc: CaseDoc::empty(case, &vault.actor),
            lease: Some(lease),
        };
        for row in rows {
            let seq: i64 = row.get(0)?;
            let sealed: Vec<u8> = row.get(1)?;
            let chunk = open(vault.key(), &chunk_aad(case, seq), &sealed, "case changes")?;
            // Each chunk is applied on its own, exactly as it was checked when it was stored.
            doc.apply_encoded_changes(&chunk)?;
            loaded.chunks += 1;
            loaded.chunk_bytes = loaded.chunk_bytes.saturating_add(chunk.len());
        }
        loaded.stored_heads = doc.heads();
        loaded.doc = doc;
        if loaded.chunks == 0 {
            loaded.snapshot = Some(snapshot);
        }
        Ok(Some(loaded))
    })
}

/// The stored snapshot of a case with its heads, when the snapshot is the whole document (no
/// chunk stored since): what a device that has nothing of the case is sent, read without
/// loading the document into automerge (which costs some 2 ms for a case of 20 notes, against
/// a few microseconds to open the snapshot). `None` when chunks follow the snapshot, or there
/// is no such case.
pub(crate) fn whole_snapshot(
    sql: &mut dyn Sql,
    vault: &CaseVault,
    case: CaseId,
) -> Result<Option<WholeCase>, ServerError> {
    let id = case.to_string();
    let Some(row) = sql.query_opt(
        // Rows from before heads were recorded have none: those are loaded.
        "SELECT heads, doc FROM cases c WHERE id = ?1 AND heads <> ''
             AND NOT EXISTS (SELECT 1 FROM case_chunks k WHERE k.case_id = c.id)",
        sql_params![&id],
    )?
    else {
        return Ok(None);
    };
    let heads: String = row.get(0)?;
    let sealed: Vec<u8> = row.get(1)?;
    let snapshot = open(vault.key(), &doc_aad(case), &sealed, "case document")?;
    Ok(Some((snapshot.to_vec(), parse_heads(&heads, "cases")?)))
}

/// Stores a document taken out with [`checkout`] (or made with [`LoadedCase::new`]) under the
/// next change sequence number: only the changes since it was stored, as one sealed chunk, unless
/// the chunks have piled up (then a new compacted snapshot replaces them). `received` is a whole
/// document a device sent that the document now is (see `HubStorage::store_case`): it becomes the
/// snapshot as it came, with no encoding. Returns the sequence number.
///
/// Everything that takes time (the changes, the compaction's save, sealing and reload, reading
/// the case's report facts) is done before the transaction takes its place in the commit order
/// ([`crate::storage::sql::Sql::enter_commit_order`]), which it then holds until it commits:
/// the sequence number and the rows written under it come last.
pub(crate) fn store(
    sql: &mut dyn Sql,
    vault: &CaseVault,
    loaded: &mut LoadedCase,
    received: Option<&[u8]>,
    now: i64,
) -> Result<u64, ServerError> {
    let case = loaded.doc.id();
    let id = case.to_string();
    let heads = loaded.doc.heads();
    let closed = loaded.doc.status()? == CaseStatus::Closed;
    let chunk = match received {
        Some(_) => None,
        None if !loaded.exists => None,
        None => Some(Zeroizing::new(
            loaded.doc.changes_since(&loaded.stored_heads),
        )),
    };
    let compact = chunk.as_ref().is_none_or(|c| {
        loaded.chunks + 1 > MAX_CHUNKS
            || loaded.chunk_bytes.saturating_add(c.len()) > loaded.snapshot_bytes
    });
    let facts = report_index::Pending::read(&loaded.doc)?;
    // Housekeeping: the chunks have piled up and become a new snapshot, sealed here (its seal
    // is bound to the case only).
    let snapshot = match compact {
        true => Some(phases::time(
            Phase::Compact,
            || -> Result<_, ServerError> {
                let snapshot = match received {
                    Some(bytes) => Zeroizing::new(bytes.to_vec()),
                    None => Zeroizing::new(loaded.doc.save()),
                };
                let sealed = seal(vault.key(), &doc_aad(case), &snapshot)?;
                if received.is_none() {
                    // automerge keeps memory from every save followed by applies (measured: a
                    // case of 240 notes saved after each of its changes held 9.6 MB, against
                    // 0.18 MB loaded fresh): start again from the snapshot, as any later load
                    // would. Done before the commit order is taken, so no other writer waits.
                    loaded.doc = CaseDoc::load(case, &snapshot, &vault.actor)?;
                }
                Ok((snapshot, sealed))
            },
        )?),
        false => None,
    };
    let seq = next_seq(sql)?;
    if let Some((snapshot, sealed)) = snapshot {
        phases::time(Phase::Compact, || -> Result<(), ServerError> {
            if loaded.exists {
                sql.execute(
                    "UPDATE cases SET doc = ?2, seq = ?3, heads = ?4, updated_at = ?5,
                         closed_at = CASE WHEN ?6 = 1 THEN COALESCE(closed_at, ?5) ELSE NULL END
                     WHERE id = ?1",
                    sql_params![&id, &sealed, seq, &heads_text(&heads), now, closed],
                )?;
                sql.execute(
                    "DELETE FROM case_chunks WHERE case_id = ?1",
                    sql_params![&id],
                )?;
            } else {
                sql.execute(
                    "INSERT INTO cases (id, seq, doc, heads, created_at, updated_at, closed_at)
                     VALUES (?1, ?3, ?2, ?4, ?5, ?5, CASE WHEN ?6 = 1 THEN CAST(?5 AS BIGINT) END)",
                    sql_params![&id, &sealed, seq, &heads_text(&heads), now, closed],
                )?;
            }
            Ok(())
        })?;
        loaded.snapshot_bytes = snapshot.len();
        loaded.chunks = 0;
        loaded.chunk_bytes = 0;
        loaded.snapshot = Some(snapshot);
    } else if let Some(chunk) = chunk {
        let sealed = seal(vault.key(), &chunk_aad(case, seq), &chunk)?;
        sql.execute(
            "INSERT INTO case_chunks (case_id, seq, chunk) VALUES (?1, ?2, ?3)",
            sql_params![&id, seq, &sealed],
        )?;
        // closed_at keeps the first time the case was seen closed; reopening clears it.
        sql.execute(
            "UPDATE cases SET seq = ?2, heads = ?3, updated_at = ?4,
                 closed_at = CASE WHEN ?5 = 1 THEN COALESCE(closed_at, ?4) ELSE NULL END
             WHERE id = ?1",
            sql_params![&id, seq, &heads_text(&heads), now, closed],
        )?;
        loaded.chunks += 1;
        loaded.chunk_bytes = loaded.chunk_bytes.saturating_add(chunk.len());
        loaded.snapshot = None;
    }
    notify_instances(sql, seq)?;
    loaded.exists = true;
    loaded.stored_heads = heads;
    // The report index follows every store, in the same transaction.
    facts.write(sql, vault, case, now)?;
    let seq = u64::try_from(seq).unwrap_or(0);
    vault.changed(seq);
    Ok(seq)
}

/// Takes the next case sequence number, in the commit order (which this transaction then holds
/// until it ends), so that numbers become visible in the order they were taken.
fn next_seq(sql: &mut dyn Sql) -> Result<i64, ServerError> {
    sql.enter_commit_order()?;
    Ok(sql
        .query_row(
            "UPDATE case_seq SET value = value + 1 WHERE id = 1 RETURNING value",
            &[],
        )?
        .get(0)?)
}

/// Tells every listening PostgreSQL instance that case sequence number `seq` was taken:
/// delivered when (and only if) this transaction commits. Nothing on SQLite (one instance).
fn notify_instances(sql: &mut dyn Sql, seq: i64) -> Result<(), ServerError> {
    if sql.backend() == Backend::Postgres {
        sql.execute(
            "SELECT pg_notify(?1, ?2)",
            sql_params![CASES_CHANNEL, &seq.to_string()],
        )?;
    }
    Ok(())
}

/// Replaces a case's content by `doc`, a document with a history of its own (an erasure: nothing
/// of the old document may remain): the sealed snapshot is rewritten, every change chunk
/// dropped, the heads and sequence number moved on. The caller has checked the old document out
/// and drops it (it must not go back to memory).
pub(crate) fn replace_content(
    sql: &mut dyn Sql,
    vault: &CaseVault,
    doc: &mut CaseDoc,
    now: i64,
) -> Result<u64, ServerError> {
    let case = doc.id();
    let id = case.to_string();
    let heads = doc.heads();
    let snapshot = Zeroizing::new(doc.save());
    let sealed = seal(vault.key(), &doc_aad(case), &snapshot)?;
    let seq = next_seq(sql)?;
    sql.execute(
        "UPDATE cases SET doc = ?2, seq = ?3, heads = ?4, updated_at = ?5 WHERE id = ?1",
        sql_params![&id, &sealed, seq, &heads_text(&heads), now],
    )?;
    sql.execute(
        "DELETE FROM case_chunks WHERE case_id = ?1",
        sql_params![&id],
    )?;
    notify_instances(sql, seq)?;
    let seq = u64::try_from(seq).unwrap_or(0);
    vault.changed(seq);
    Ok(seq)
}

/// Derives the report index's facts of every case that has none (cases stored before the
/// index existed): from the document, or for a case erased before, from its anonymised
/// statistics. Returns how many it derived. The documents are taken out for this transaction
/// and dropped.
pub fn backfill_index(sql: &mut dyn Sql, vault: &CaseVault) -> Result<usize, ServerError> {
    let mut done = 0;
    for (case, erased, updated) in report_index::missing(sql)? {
        if erased {
            done += usize::from(report_index::backfill_erased(sql, vault, case)?);
        } else if let Some(loaded) = checkout(sql, vault, case)? {
            report_index::refresh(sql, vault, &loaded.doc, updated)?;
            done += 1;
        }
    }
    Ok(done)
}
