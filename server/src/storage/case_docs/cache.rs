//! The decrypted documents of recently used cases, kept in memory between requests: each one
//! taken out for one transaction and given back only after it committed, used only while its
//! heads equal the stored heads, bounded by count and by automerge operations.

use std::collections::HashMap;
use std::sync::Mutex;

use fieldcase_core::ChangeHash;
use fieldcase_core::document::CaseDoc;
use fieldcase_core::ids::CaseId;
use zeroize::Zeroizing;

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
    /// The document; change it in place, then store it (`case_docs::store`).
    pub doc: CaseDoc,
    /// Heads as stored: what the next store writes the changes since.
    pub(super) stored_heads: Vec<ChangeHash>,
    /// Whether the case has a row yet (a case created in this transaction has not).
    pub(super) exists: bool,
    /// Size of the stored snapshot.
    pub(super) snapshot_bytes: usize,
    /// Number and total size of the chunks stored since the snapshot.
    pub(super) chunks: usize,
    pub(super) chunk_bytes: usize,
    /// The stored snapshot in the clear while it is the whole document (no chunk since): what a
    /// device that has nothing of the case is sent, without encoding the document again.
    pub(super) snapshot: Option<Zeroizing<Vec<u8>>>,
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
    pub(crate) fn take(&self, case: CaseId, heads: &[ChangeHash]) -> Option<LoadedCase> {
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
    pub(crate) fn keep(&self, loaded: LoadedCase) {
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
    pub(crate) fn len(&self) -> usize {
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
