//! How the office keeps case documents: a sealed snapshot per case (`cases.doc`) followed by the
//! sealed change chunks stored since (`case_chunks`), and the decrypted documents of recently
//! used cases kept in memory.
//!
//! Why: a sync that adds one note to a case used to load the whole document, re-encode it and
//! seal it again, so the office's cost per sync grew with the size of the case. Now a store
//! appends only the new changes (compacted into a new snapshot once they pile up), and a case
//! that was used recently is not loaded at all. The in-memory copy is taken only when its heads
//! equal the heads stored beside the case, and heads name a document's content exactly (they are
//! hashes of its change graph): a copy that another process, another server instance or a
//! rolled-back transaction made different can never be mistaken for the stored one.
//!
//! A document is *taken out* of the cache for one transaction ([`checkout`]) and given back only
//! after that transaction committed ([`CaseVault::keep`]), so memory never runs ahead of the disk:
//! a request that fails drops what it holds. Functions that store cases inside a caller's
//! transaction hand the documents back in a [`WithDocs`], which the caller gives to the vault
//! once the transaction committed.
//!
//! With several server instances on one PostgreSQL database each instance has its own memory;
//! the heads check is what keeps that safe. Each store also sends `NOTIFY fieldcase_cases`
//! (delivered at commit) so that the other instances' live pages hear of it
//! ([`crate::live_notify`]).

use std::collections::HashMap;
use std::sync::Mutex;

use fieldcase_core::crypto::{open, seal};
use fieldcase_core::document::CaseDoc;
use fieldcase_core::ids::CaseId;
use fieldcase_core::model::CaseStatus;
use fieldcase_core::sync::hub::WholeCase;
use fieldcase_core::{ChangeHash, CoreError};
use zeroize::Zeroizing;

use crate::cases::CaseVault;
use crate::error::ServerError;
use crate::sql::{Backend, Sql};
use crate::sql_params;

/// Most change chunks stored after a snapshot before the next store compacts them into it.
pub const MAX_CHUNKS: usize = 32;
/// Most documents kept in memory. A case of 20 notes holds about 22 KB once loaded, half of it
/// the fixed cost of any document (docs/BENCHMARKS.md), but loading takes transient buffers on
/// top (with room for 1,024, a first sync of 1,000 such cases peaked at 137 MB); a sync touches
/// a few cases, so a few hundred recent ones cover the phones syncing at one time.
pub const CACHE_DOCS: usize = 256;
/// Most automerge operations in the documents kept in memory. A document loaded from its saved
/// form takes about 25 bytes an operation (measured: 179 KB for a case of 240 notes, 7,344
/// operations, 6 KB saved), plus about 11 KB a document whatever its size; one grown by single
/// applies takes within 10% of that since the patch log is reset after each apply (a probe of
/// 5–240 notes), and each store that compacts reloads the document from the new snapshot.
/// So this holds the cache to roughly 50-150 MB. Until a busy office reaches it, its resident
/// size grows with the documents it takes in; then it stays flat (docs/BENCHMARKS.md).
pub const CACHE_OPS: u64 = 2_000_000;

/// A case document taken out for one transaction, with what storing only its new changes needs.
pub struct LoadedCase {
    /// The document; change it in place, then [`store`] it.
    pub doc: CaseDoc,
    /// Heads as stored: what the next store writes the changes since.
    stored_heads: Vec<ChangeHash>,
    /// Whether the case has a row yet (a case created in this transaction has not).
    exists: bool,
    /// Size of the stored snapshot.
    snapshot_bytes: usize,
    /// Number and total size of the chunks stored since the snapshot.
    chunks: usize,
    chunk_bytes: usize,
    /// The stored snapshot in the clear while it is the whole document (no chunk since): what a
    /// device that has nothing of the case is sent, without encoding the document again.
    snapshot: Option<Zeroizing<Vec<u8>>>,
}

impl LoadedCase {
    /// A case that is not stored yet (created at the office).
    pub fn new(doc: CaseDoc) -> LoadedCase {
        LoadedCase {
            doc,
            stored_heads: Vec::new(),
            exists: false,
            snapshot_bytes: 0,
            chunks: 0,
            chunk_bytes: 0,
            snapshot: None,
        }
    }

    /// The whole document, compacted: the stored snapshot when it is all there is (and the
    /// document was not changed since), else encoded now.
    pub fn saved(&mut self) -> Vec<u8> {
        match &self.snapshot {
            Some(snapshot) if self.doc.heads() == self.stored_heads => snapshot.to_vec(),
            _ => self.doc.save(),
        }
    }
}

/// A result together with the case documents a transaction stored (or read): give them to the
/// vault with [`WithDocs::keep`] once the transaction committed, so that memory never runs
/// ahead of the database. Dropping it only costs a reload.
#[must_use = "give the documents to the vault once the transaction committed"]
pub struct WithDocs<T> {
    value: T,
    docs: Vec<LoadedCase>,
}

impl<T> WithDocs<T> {
    /// `value` with the documents `docs`.
    pub fn new(value: T, docs: impl IntoIterator<Item = LoadedCase>) -> WithDocs<T> {
        WithDocs {
            value,
            docs: docs.into_iter().collect(),
        }
    }

    /// The value, before the documents are given back.
    pub fn value(&self) -> &T {
        &self.value
    }

    /// Gives the documents to `vault`'s memory (call after the commit) and returns the value.
    pub fn keep(self, vault: &CaseVault) -> T {
        vault.keep(self.docs);
        self.value
    }
}

/// The PostgreSQL channel on which every store of a case is announced (see
/// [`crate::live_notify`]).
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
    if let Some(loaded) = vault.docs.take(case, &stored_heads) {
        return Ok(Some(loaded));
    }
    let sealed: Vec<u8> = sql
        .query_row("SELECT doc FROM cases WHERE id = ?1", sql_params![&id])?
        .get(0)?;
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
    };
    let rows = sql.query_all(
        "SELECT seq, chunk FROM case_chunks WHERE case_id = ?1 ORDER BY seq",
        sql_params![&id],
    )?;
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
    let seq: i64 = sql
        .query_row(
            "UPDATE case_seq SET value = value + 1 WHERE id = 1 RETURNING value",
            &[],
        )?
        .get(0)?;
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
    if compact {
        let snapshot = match received {
            Some(bytes) => Zeroizing::new(bytes.to_vec()),
            None => Zeroizing::new(loaded.doc.save()),
        };
        let sealed = seal(vault.key(), &doc_aad(case), &snapshot)?;
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
        loaded.snapshot_bytes = snapshot.len();
        loaded.chunks = 0;
        loaded.chunk_bytes = 0;
        if received.is_none() {
            // automerge keeps memory from every save followed by applies (measured: a case of
            // 240 notes saved after each of its changes held 9.6 MB, against 0.18 MB loaded
            // fresh): start again from the snapshot just written, as any later load would.
            loaded.doc = CaseDoc::load(case, &snapshot, &vault.actor)?;
        }
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
    if sql.backend() == Backend::Postgres {
        // Delivered to every listening instance when (and only if) this transaction commits.
        sql.execute(
            "SELECT pg_notify(?1, ?2)",
            sql_params![CASES_CHANNEL, &seq.to_string()],
        )?;
    }
    loaded.exists = true;
    loaded.stored_heads = heads;
    let seq = u64::try_from(seq).unwrap_or(0);
    vault.changed(seq);
    Ok(seq)
}

/// The decrypted documents of recently used cases, least recently used evicted first, bounded by
/// count ([`CACHE_DOCS`]) and by automerge operations (the budget, [`CACHE_OPS`] unless
/// [`crate::Limits::cached_operations`] says otherwise).
#[derive(Default)]
pub(crate) struct DocCache {
    inner: Mutex<Entries>,
}

struct Entries {
    docs: HashMap<CaseId, (LoadedCase, u64)>,
    tick: u64,
    ops: u64,
    budget: u64,
}

impl Default for Entries {
    fn default() -> Self {
        Entries {
            docs: HashMap::new(),
            tick: 0,
            ops: 0,
            budget: CACHE_OPS,
        }
    }
}

impl DocCache {
    /// Takes the document of `case` out of memory if the copy holds exactly the stored `heads`
    /// (its own heads, not what it was last stored as: a copy changed and not stored is stale
    /// too); a stale copy is dropped.
    fn take(&self, case: CaseId, heads: &[ChangeHash]) -> Option<LoadedCase> {
        let (mut loaded, _) = {
            let mut entries = self.inner.lock().ok()?;
            let taken = entries.docs.remove(&case)?;
            entries.ops = entries.ops.saturating_sub(taken.0.doc.op_count());
            taken
        };
        let mut ours = loaded.doc.heads();
        let mut stored = heads.to_vec();
        ours.sort_unstable();
        stored.sort_unstable();
        (ours == stored && loaded.stored_heads.len() == stored.len()).then_some(loaded)
    }

    /// Sets the most operations kept (documents past it are dropped, oldest first).
    pub(crate) fn set_budget(&self, ops: u64) {
        if let Ok(mut entries) = self.inner.lock() {
            entries.budget = ops;
            entries.evict();
        }
    }

    /// Keeps a document that is stored as it is (after its transaction committed).
    fn keep(&self, loaded: LoadedCase) {
        let Ok(mut entries) = self.inner.lock() else {
            return;
        };
        let size = loaded.doc.op_count();
        // One document may take a quarter of the budget at most, so that a huge case does not
        // push every other one out.
        if size > entries.budget / 4 {
            return;
        }
        entries.tick += 1;
        let tick = entries.tick;
        let case = loaded.doc.id();
        if let Some((old, _)) = entries.docs.insert(case, (loaded, tick)) {
            entries.ops = entries.ops.saturating_sub(old.doc.op_count());
        }
        entries.ops = entries.ops.saturating_add(size);
        entries.evict();
    }

    /// Number of documents in memory.
    fn len(&self) -> usize {
        self.inner.lock().map(|e| e.docs.len()).unwrap_or(0)
    }
}

impl Entries {
    /// Drops the least recently used documents until the count and the budget hold.
    fn evict(&mut self) {
        while self.docs.len() > CACHE_DOCS || self.ops > self.budget {
            let Some(oldest) = self
                .docs
                .iter()
                .min_by_key(|(_, (_, t))| *t)
                .map(|(id, _)| *id)
            else {
                break;
            };
            if let Some((old, _)) = self.docs.remove(&oldest) {
                self.ops = self.ops.saturating_sub(old.doc.op_count());
            }
        }
    }
}

impl CaseVault {
    /// Gives back documents taken out with [`checkout`] once what they hold is committed (or
    /// when they were only read), so that the next request finds them in memory.
    pub fn keep(&self, loaded: impl IntoIterator<Item = LoadedCase>) {
        for case in loaded {
            self.docs.keep(case);
        }
    }

    /// Number of case documents held decrypted in memory.
    pub fn docs_in_memory(&self) -> usize {
        self.docs.len()
    }
}

#[cfg(test)]
mod tests {
    //! On both backends: a real SQLite file, and a fresh database on the PostgreSQL test server
    //! (see [`crate::testing`]); "another process" is another `Database` on the same storage.
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::sync::Arc;

    use fieldcase_core::model::{ConsentStatus, NewCase, NewNote, NoteKind};

    use super::*;
    use crate::cases::{self, CaseVault};
    use crate::keys::ServerKeys;
    use crate::sql::{Database, DatabaseConfig};
    use crate::testing::TempPgDatabase;
    use crate::{db, store};

    struct Office {
        name: &'static str,
        _dir: tempfile::TempDir,
        _pg: Option<TempPgDatabase>,
        config: DatabaseConfig,
        keys: ServerKeys,
        db: Database,
        vault: Arc<CaseVault>,
    }

    fn office(postgres: bool) -> Office {
        let dir = tempfile::tempdir().unwrap();
        let keys = ServerKeys::load_or_create(dir.path()).unwrap();
        let (pg, config) = if postgres {
            let pg = TempPgDatabase::create().unwrap();
            let config = pg.config();
            (Some(pg), config)
        } else {
            (None, DatabaseConfig::Sqlite(dir.path().join(db::DB_FILE)))
        };
        let db = Database::open(&config).unwrap();
        let vault = db
            .write(|sql| CaseVault::load_or_create(sql, &keys))
            .unwrap();
        Office {
            name: if postgres { "postgres" } else { "sqlite" },
            _dir: dir,
            _pg: pg,
            config,
            keys,
            db,
            vault,
        }
    }

    fn offices() -> [Office; 2] {
        [office(false), office(true)]
    }

    fn new_case(o: &Office) -> CaseId {
        new_cases(o, 1)[0]
    }

    /// `n` cases of one field worker.
    fn new_cases(o: &Office, n: usize) -> Vec<CaseId> {
        let user =
            o.db.write(|sql| {
                store::add_user(sql, "ana", fieldcase_core::protocol::Role::FieldWorker, 0)
            })
            .unwrap();
        (0..n)
            .map(|i| {
                o.db.write(|sql| {
                    cases::create_case(
                        sql,
                        &o.vault,
                        &NewCase {
                            client_code: format!("K-{i:04}"),
                            consent: ConsentStatus::Given,
                            assigned_workers: vec![fieldcase_core::ids::UserId::from_uuid(user)],
                        },
                        None,
                        0,
                    )
                })
                .unwrap()
                .keep(&o.vault)
                .0
            })
            .collect()
    }

    fn note(body: &str) -> NewNote {
        NewNote {
            kind: NoteKind::Visit,
            body: body.into(),
            tags: vec![],
            task: None,
        }
    }

    fn add_note(db: &Database, vault: &CaseVault, case: CaseId, body: &str) {
        db.write(|sql| {
            let mut loaded = checkout(sql, vault, case)?.unwrap();
            loaded
                .doc
                .add_note(vault.office, &note(body), time::OffsetDateTime::UNIX_EPOCH)?;
            store(sql, vault, &mut loaded, None, 1)?;
            Ok::<_, ServerError>(WithDocs::new((), [loaded]))
        })
        .unwrap()
        .keep(vault);
    }

    fn chunk_rows(db: &Database) -> i64 {
        db.read(|sql| {
            sql.query_row("SELECT count(*) FROM case_chunks", &[])?
                .get::<i64>(0)
        })
        .unwrap()
    }

    /// The note bodies of `case` as this office reads it (from memory when it holds the case).
    fn bodies(o: &Office, case: CaseId) -> Vec<String> {
        let loaded =
            o.db.read(|sql| checkout(sql, &o.vault, case))
                .unwrap()
                .unwrap();
        loaded
            .doc
            .notes()
            .unwrap()
            .into_iter()
            .map(|n| n.body)
            .collect()
    }

    /// Another process (or server instance) on the same storage, with an empty memory.
    fn other(o: &Office) -> (Database, Arc<CaseVault>) {
        let db = Database::open(&o.config).unwrap();
        let vault = db
            .write(|sql| CaseVault::load_or_create(sql, &o.keys))
            .unwrap();
        (db, vault)
    }

    /// The stored document read from disk alone, by a vault with an empty memory.
    fn from_disk(o: &Office, case: CaseId) -> CaseDoc {
        let (db, vault) = other(o);
        db.read(|sql| checkout(sql, &vault, case))
            .unwrap()
            .unwrap()
            .doc
    }

    #[test]
    fn stores_append_chunks_then_compact_and_the_disk_holds_every_note() {
        for o in offices() {
            let case = new_case(&o);
            let mut seen_chunks = 0;
            for i in 0..3 * MAX_CHUNKS {
                add_note(&o.db, &o.vault, case, &format!("note {i}"));
                let rows = chunk_rows(&o.db);
                assert!(
                    rows <= MAX_CHUNKS as i64,
                    "{}: {rows} chunks piled up",
                    o.name
                );
                seen_chunks = seen_chunks.max(rows);
                // What is on disk (snapshot and chunks) is the document in memory.
                let mut disk = from_disk(&o, case);
                assert_eq!(disk.notes().unwrap().len(), i + 1, "{}", o.name);
                let mut memory =
                    o.db.read(|sql| checkout(sql, &o.vault, case))
                        .unwrap()
                        .unwrap();
                assert_eq!(disk.heads(), memory.doc.heads(), "{}", o.name);
                o.vault.keep([memory]);
            }
            assert!(seen_chunks > 1, "{}: stores never appended a chunk", o.name);
            assert_eq!(o.vault.docs_in_memory(), 1, "{}", o.name);
        }
    }

    #[test]
    fn memory_holds_to_its_budget_dropping_the_least_recently_used_first() {
        for o in offices() {
            let cases = new_cases(&o, 5);
            for case in &cases {
                for i in 0..4 {
                    add_note(&o.db, &o.vault, *case, &format!("visit {i}"));
                }
            }
            // Used in this order: each taken out of memory (or loaded) and given back.
            let touch = |c: CaseId| {
                let loaded =
                    o.db.read(|sql| checkout(sql, &o.vault, c))
                        .unwrap()
                        .unwrap();
                let ops = loaded.doc.op_count();
                o.vault.keep([loaded]);
                ops
            };
            let size = cases.iter().map(|c| touch(*c)).max().unwrap();
            // Room for four documents of this size (one may take a quarter of the budget).
            o.vault.docs.set_budget(size * 4 + size / 2);
            for case in &cases {
                touch(*case);
            }
            assert_eq!(o.vault.docs_in_memory(), 4, "{}", o.name);
            let heads = |c: CaseId| from_disk(&o, c).heads();
            assert!(
                o.vault.docs.take(cases[0], &heads(cases[0])).is_none(),
                "{}: the least recently used document is still in memory",
                o.name
            );
            assert!(
                o.vault.docs.take(cases[4], &heads(cases[4])).is_some(),
                "{}: the most recently used document was dropped",
                o.name
            );
            // No budget: nothing is kept, and every note is still read from the disk.
            o.vault.docs.set_budget(0);
            assert_eq!(o.vault.docs_in_memory(), 0, "{}", o.name);
            add_note(&o.db, &o.vault, cases[1], "with nothing in memory");
            assert_eq!(o.vault.docs_in_memory(), 0, "{}", o.name);
            assert_eq!(bodies(&o, cases[1]).len(), 5, "{}", o.name);
        }
    }

    #[test]
    fn a_copy_in_memory_is_not_used_once_another_process_changed_the_case() {
        for o in offices() {
            let case = new_case(&o);
            add_note(&o.db, &o.vault, case, "from this process");
            // Another process (an admin command, another instance) adds a note.
            let (other_db, other_vault) = other(&o);
            add_note(&other_db, &other_vault, case, "from the other process");
            let bodies = bodies(&o, case);
            assert!(
                bodies.contains(&"from the other process".to_string()),
                "{}",
                o.name
            );
            assert!(
                bodies.contains(&"from this process".to_string()),
                "{}",
                o.name
            );
        }
    }

    #[test]
    fn a_transaction_that_rolled_back_leaves_memory_as_the_disk() {
        for o in offices() {
            let case = new_case(&o);
            add_note(&o.db, &o.vault, case, "kept");
            let mut escaped = None;
            let rolled_back = o.db.write(|sql| {
                let mut loaded = checkout(sql, &o.vault, case)?.unwrap();
                loaded.doc.add_note(
                    o.vault.office,
                    &note("rolled back"),
                    time::OffsetDateTime::UNIX_EPOCH,
                )?;
                store(sql, &o.vault, &mut loaded, None, 1)?;
                escaped = Some(loaded);
                Err::<(), _>(ServerError::Internal("roll back"))
            });
            assert!(rolled_back.is_err());
            // Even a copy given back by mistake must not be used.
            o.vault.keep(escaped);
            let bodies = bodies(&o, case);
            assert_eq!(bodies, vec!["kept".to_string()], "{}", o.name);
        }
    }
}
