//! Sealed rows: how documents, changes, index entries and outbox entries are written to and read
//! from SQLite. Each sealed value is bound (associated data) to the store, table and row.

use automerge::ActorId;
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::crypto::{DataKey, open, seal};
use crate::document::CaseDoc;
use crate::error::{CoreError, Result};
use crate::ids::CaseId;
use crate::model::CaseSummary;

/// Associated data for a sealed value: store id, table, row key and sequence number.
pub(crate) fn aad(store_id: &uuid::Uuid, table: &str, row: &[u8], seq: i64) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + table.len() + row.len() + 10);
    out.extend_from_slice(store_id.as_bytes());
    out.extend_from_slice(table.as_bytes());
    out.push(0);
    out.extend_from_slice(row);
    out.push(0);
    out.extend_from_slice(&seq.to_le_bytes());
    out
}

/// A case's stored snapshot, opened, and the heads its header names.
pub(crate) type StoredWhole = (zeroize::Zeroizing<Vec<u8>>, Vec<automerge::ChangeHash>);

/// Below this size (sealed) a case's snapshot is written again at every edit rather than
/// followed by separate changes. Saving such a document takes a fraction of a millisecond, and
/// the stored snapshot is then the whole case as it stands: a sync that offers the case whole
/// sends it as stored, without loading the document into automerge (most of the phone's work
/// of a first upload). Larger cases keep up to `compact_after` separate changes.
pub(crate) const SNAPSHOT_EVERY_EDIT_BELOW: usize = 16 * 1024;

/// A case document's sealed rows as read from the database: its snapshot and the changes stored
/// since, in order.
pub(crate) struct SealedDoc {
    case: CaseId,
    snapshot: Vec<u8>,
    changes: Vec<(i64, Vec<u8>)>,
}

/// Reads case `case`'s sealed document rows ([`Sealer::open_doc`] opens them).
pub(crate) fn read_sealed_doc(conn: &Connection, case: CaseId) -> Result<SealedDoc> {
    let row = case.as_bytes();
    let snapshot: Vec<u8> = conn
        .query_row(
            "SELECT snapshot FROM case_docs WHERE case_id = ?1",
            [row.as_slice()],
            |r| r.get(0),
        )
        .optional()?
        .ok_or(CoreError::CaseNotFound)?;
    let mut stmt = conn
        .prepare_cached("SELECT seq, change FROM case_changes WHERE case_id = ?1 ORDER BY seq")?;
    let changes = stmt
        .query_map([row.as_slice()], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(SealedDoc {
        case,
        snapshot,
        changes,
    })
}

/// The store-wide things every sealed row needs.
pub(crate) struct Sealer<'a> {
    pub key: &'a DataKey,
    pub store_id: &'a uuid::Uuid,
}

impl Sealer<'_> {
    pub fn seal(&self, table: &str, row: &[u8], seq: i64, plain: &[u8]) -> Result<Vec<u8>> {
        seal(self.key, &aad(self.store_id, table, row, seq), plain)
    }

    pub fn open(
        &self,
        table: &'static str,
        row: &[u8],
        seq: i64,
        sealed: &[u8],
    ) -> Result<zeroize::Zeroizing<Vec<u8>>> {
        open(
            self.key,
            &aad(self.store_id, table, row, seq),
            sealed,
            table,
        )
    }

    pub fn seal_json<T: Serialize>(
        &self,
        table: &str,
        row: &[u8],
        seq: i64,
        value: &T,
    ) -> Result<Vec<u8>> {
        let plain = zeroize::Zeroizing::new(
            serde_json::to_vec(value).map_err(|_| CoreError::Corrupt { what: "record" })?,
        );
        self.seal(table, row, seq, &plain)
    }

    pub fn open_json<T: DeserializeOwned>(
        &self,
        table: &'static str,
        row: &[u8],
        seq: i64,
        sealed: &[u8],
    ) -> Result<T> {
        let plain = self.open(table, row, seq, sealed)?;
        serde_json::from_slice(&plain).map_err(|_| CoreError::Corrupt { what: table })
    }

    /// The value sealed in the `meta` row `name`, if the row is set.
    pub fn meta<T: DeserializeOwned>(&self, conn: &Connection, name: &str) -> Result<Option<T>> {
        let sealed: Option<Vec<u8>> = conn
            .query_row("SELECT value FROM meta WHERE name = ?1", [name], |r| {
                r.get(0)
            })
            .optional()?;
        sealed
            .map(|s| self.open_json("meta", name.as_bytes(), 0, &s))
            .transpose()
    }

    /// Seals `value` into the `meta` row `name`, in place of what it held.
    pub fn put_meta<T: Serialize>(&self, conn: &Connection, name: &str, value: &T) -> Result<()> {
        let sealed = self.seal_json("meta", name.as_bytes(), 0, value)?;
        conn.execute(
            "INSERT INTO meta (name, value) VALUES (?1, ?2)
             ON CONFLICT(name) DO UPDATE SET value = excluded.value",
            params![name, sealed],
        )?;
        Ok(())
    }

    /// Loads a case document: its snapshot, then every change since, in order.
    pub fn load_doc(&self, conn: &Connection, case: CaseId, actor: &ActorId) -> Result<CaseDoc> {
        self.open_doc(&read_sealed_doc(conn, case)?, actor)
    }

    /// The case's stored snapshot, opened, with the heads its header names, when it is the
    /// whole document as stored (no separate changes follow it) and `worth` says sending it is
    /// worth it, given its size: what a sync offers whole without loading the document. Sizes
    /// and whether changes follow are read first, so a case that does not qualify costs no
    /// blob read and no decryption.
    pub fn stored_whole(
        &self,
        conn: &Connection,
        case: CaseId,
        worth: impl FnOnce(usize) -> bool,
    ) -> Result<Option<StoredWhole>> {
        let row = case.as_bytes();
        let (sealed_len, followed): (i64, bool) = conn
            .query_row(
                "SELECT length(snapshot),
                        EXISTS (SELECT 1 FROM case_changes WHERE case_id = ?1)
                 FROM case_docs WHERE case_id = ?1",
                [row.as_slice()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?
            .ok_or(CoreError::CaseNotFound)?;
        let plain_len = usize::try_from(sealed_len)
            .unwrap_or(usize::MAX)
            .saturating_sub(crate::crypto::SEAL_OVERHEAD);
        if followed || !worth(plain_len) {
            return Ok(None);
        }
        let sealed: Vec<u8> = conn.query_row(
            "SELECT snapshot FROM case_docs WHERE case_id = ?1",
            [row.as_slice()],
            |r| r.get(0),
        )?;
        let snapshot = self.open("case_docs", row, 0, &sealed)?;
        Ok(crate::document::document_heads(&snapshot).map(|heads| (snapshot, heads)))
    }

    /// Opens and loads a case document read with [`read_sealed_doc`]: work on those bytes
    /// alone (some milliseconds for a case of 20 notes), which may run on another thread.
    pub fn open_doc(&self, sealed: &SealedDoc, actor: &ActorId) -> Result<CaseDoc> {
        let row = sealed.case.as_bytes();
        let snapshot = self.open("case_docs", row, 0, &sealed.snapshot)?;
        let mut doc = CaseDoc::load(sealed.case, &snapshot, actor)?;
        let mut changes = zeroize::Zeroizing::new(Vec::new());
        for (seq, change) in &sealed.changes {
            changes.extend_from_slice(&self.open("case_changes", row, *seq, change)?);
        }
        doc.apply_encoded_changes(&changes)?;
        Ok(doc)
    }

    /// Writes a whole document as the case's snapshot and drops its separate changes.
    pub fn write_snapshot(&self, conn: &Connection, doc: &mut CaseDoc) -> Result<()> {
        let saved = zeroize::Zeroizing::new(doc.save());
        self.write_saved_snapshot(conn, doc.id(), &saved)
    }

    /// Stores `saved` (bytes that load as the case's whole document, such as a received
    /// document chunk) as the case's snapshot, without encoding the document again.
    pub fn write_saved_snapshot(
        &self,
        conn: &Connection,
        case: CaseId,
        saved: &[u8],
    ) -> Result<()> {
        let row = case.as_bytes();
        let sealed = self.seal("case_docs", row, 0, saved)?;
        conn.execute(
            "INSERT INTO case_docs (case_id, snapshot) VALUES (?1, ?2)
             ON CONFLICT(case_id) DO UPDATE SET snapshot = excluded.snapshot",
            params![row.as_slice(), sealed],
        )?;
        conn.execute(
            "DELETE FROM case_changes WHERE case_id = ?1",
            [row.as_slice()],
        )?;
        Ok(())
    }

    /// Appends encoded changes to a case; compacts into a new snapshot once `compact_after`
    /// separate changes have piled up, and at once while the case's snapshot is small
    /// ([`SNAPSHOT_EVERY_EDIT_BELOW`]).
    pub fn append_changes(
        &self,
        conn: &Connection,
        doc: &mut CaseDoc,
        changes: &[u8],
        compact_after: usize,
    ) -> Result<()> {
        let row = doc.id().as_bytes().to_owned();
        // The next change's number and whether the snapshot is small, in one statement: this
        // runs at every edit.
        let (seq, small): (i64, bool) = conn.query_row(
            "SELECT (SELECT COALESCE(MAX(seq), 0) + 1 FROM case_changes WHERE case_id = ?1),
                    COALESCE((SELECT length(snapshot) < ?2 FROM case_docs WHERE case_id = ?1), 0)",
            params![row.as_slice(), SNAPSHOT_EVERY_EDIT_BELOW as i64],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        if small || seq as usize > compact_after {
            return self.write_snapshot(conn, doc);
        }
        let sealed = self.seal("case_changes", &row, seq, changes)?;
        conn.execute(
            "INSERT INTO case_changes (case_id, seq, change) VALUES (?1, ?2, ?3)",
            params![row.as_slice(), seq, sealed],
        )?;
        Ok(())
    }

    /// Refreshes the case's sealed index row from the document.
    pub fn write_index(&self, conn: &Connection, doc: &CaseDoc) -> Result<()> {
        let summary = doc.summary()?;
        let id = doc.id();
        let row = id.as_bytes();
        let sealed = self.seal_json("case_index", row, 0, &summary)?;
        conn.execute(
            "INSERT INTO case_index (case_id, summary) VALUES (?1, ?2)
             ON CONFLICT(case_id) DO UPDATE SET summary = excluded.summary",
            params![row.as_slice(), sealed],
        )?;
        Ok(())
    }

    /// Every case summary in the index.
    pub fn read_index(&self, conn: &Connection) -> Result<Vec<CaseSummary>> {
        let mut stmt = conn.prepare_cached("SELECT case_id, summary FROM case_index")?;
        let mut rows = stmt.query([])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            let id: Vec<u8> = r.get(0)?;
            let sealed: Vec<u8> = r.get(1)?;
            out.push(self.open_json("case_index", &id, 0, &sealed)?);
        }
        Ok(out)
    }
}
