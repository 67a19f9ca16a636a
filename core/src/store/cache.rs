//! The documents kept decrypted in memory while the store is unlocked: a small least-recently-used
//! cache, so that writing into an open case does not reload its document every time.

use std::collections::HashMap;

use automerge::ActorId;
use rusqlite::Connection;

use super::records::{Sealer, read_sealed_doc};
use crate::document::CaseDoc;
use crate::error::{CoreError, Result};
use crate::ids::CaseId;

/// Loaded case documents, at most `capacity`, evicting the least recently used.
pub(crate) struct DocCache {
    docs: HashMap<CaseId, (CaseDoc, u64)>,
    tick: u64,
    capacity: usize,
}

impl DocCache {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            docs: HashMap::new(),
            tick: 0,
            capacity: capacity.max(1),
        }
    }

    /// The document of `case`, loaded from the database if it is not in memory.
    pub(crate) fn get_or_load(
        &mut self,
        conn: &Connection,
        sealer: &Sealer<'_>,
        actor: &ActorId,
        case: CaseId,
    ) -> Result<&mut CaseDoc> {
        if !self.docs.contains_key(&case) {
            let doc = sealer.load_doc(conn, case, actor)?;
            self.insert(doc);
        }
        self.tick += 1;
        let tick = self.tick;
        let entry = self.docs.get_mut(&case).ok_or(CoreError::CaseNotFound)?;
        entry.1 = tick;
        Ok(&mut entry.0)
    }

    /// Loads, side by side, those of `cases` not in memory yet, and keeps them (the caller then
    /// takes each with [`DocCache::get_or_load`]): the rows are read in turn, the documents
    /// opened and loaded on several threads, since loading is most of a first upload's work on
    /// the phone. At most the cache's capacity is loaded.
    pub(crate) fn preload(
        &mut self,
        conn: &Connection,
        sealer: &Sealer<'_>,
        actor: &ActorId,
        cases: &[CaseId],
    ) -> Result<()> {
        let mut sealed = Vec::new();
        for case in cases.iter().take(self.capacity) {
            if !self.docs.contains_key(case) {
                sealed.push(read_sealed_doc(conn, *case)?);
            }
        }
        for doc in crate::util::map_side_by_side(&sealed, |s| sealer.open_doc(s, actor)) {
            self.insert(doc?);
        }
        Ok(())
    }

    /// Whether the document of `case` is in memory.
    pub(crate) fn contains(&self, case: &CaseId) -> bool {
        self.docs.contains_key(case)
    }

    /// Keeps `doc` in memory, evicting the least recently used document when full.
    pub(crate) fn insert(&mut self, doc: CaseDoc) {
        let full = self.docs.len() >= self.capacity && !self.docs.contains_key(&doc.id());
        let oldest = self
            .docs
            .iter()
            .min_by_key(|(_, (_, t))| *t)
            .map(|(id, _)| *id);
        if let (true, Some(oldest)) = (full, oldest) {
            self.docs.remove(&oldest);
        }
        self.tick += 1;
        self.docs.insert(doc.id(), (doc, self.tick));
    }

    /// Drops every document held.
    pub(crate) fn clear(&mut self) {
        self.docs.clear();
    }

    /// Forgets a document (after a failed write, so memory never runs ahead of the disk).
    pub(crate) fn remove(&mut self, case: &CaseId) -> Option<CaseDoc> {
        self.docs.remove(case).map(|(doc, _)| doc)
    }
}
