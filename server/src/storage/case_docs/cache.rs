//! The decrypted documents of recently used cases, kept in memory between requests: each one
//! taken out for one transaction and given back only after it committed, used only while its
//! heads equal the stored heads, bounded by count and by automerge operations.
//!
//! A document taken out is leased: a sync that wants the same case meanwhile (a sync of the
//! same case that waited for the first one's lock on PostgreSQL, a phone downloading what
//! another one uploads) waits, up to [`RETURN_WAIT`], for it to be given back
//! instead of loading and decrypting a second copy from the database. Loading a grown case
//! costs tens of milliseconds of CPU; without the lease, under load, the more syncs overlap the
//! more copies are loaded, and the more CPU that takes the more they overlap.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

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
/// Longest a transaction waits for a document another one has taken out before it loads its
/// own copy: longer than a sync's transaction takes when the office keeps up (a few to tens of
/// milliseconds), short enough that two transactions each waiting for the other's document
/// (which the locks do not rule out for cases only read) lose little.
pub(crate) const RETURN_WAIT: Duration = Duration::from_millis(250);

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
    /// The lease of this case while it is out of the cache (none for a case created here).
    pub(super) lease: Option<Lease>,
}

impl LoadedCase {
    /// Whether the case has a row yet (one created in this transaction has not).
    pub fn exists(&self) -> bool {
        self.exists
    }

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
            lease: None,
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
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    entries: Mutex<Entries>,
    /// Signalled whenever a lease ends.
    returned: Condvar,
}

struct Entries {
    docs: HashMap<CaseId, (LoadedCase, u64)>,
    tick: u64,
    ops: u64,
    budget: u64,
    /// The cases taken out, with the thread of each lease.
    out: HashMap<CaseId, Vec<ThreadId>>,
}

impl Default for Entries {
    fn default() -> Self {
        Entries {
            docs: HashMap::new(),
            tick: 0,
            ops: 0,
            budget: CACHE_OPS,
            out: HashMap::new(),
        }
    }
}

/// A case taken out of the cache for one transaction: until it ends (the document is given
/// back, or dropped), other transactions wanting the case wait for it ([`DocCache::await_return`]).
pub(crate) struct Lease {
    shared: Arc<Shared>,
    case: CaseId,
    thread: ThreadId,
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Ok(mut entries) = self.shared.entries.lock()
            && let Some(threads) = entries.out.get_mut(&self.case)
        {
            if let Some(at) = threads.iter().position(|t| *t == self.thread) {
                threads.swap_remove(at);
            }
            if threads.is_empty() {
                entries.out.remove(&self.case);
            }
        }
        self.shared.returned.notify_all();
    }
}

impl DocCache {
    /// Waits, up to [`RETURN_WAIT`], while another thread's transaction has `case` taken out,
    /// so that the next [`DocCache::take`] finds the document it gives back. Returns at once
    /// when no other thread has it (a transaction taking the same case twice never waits for
    /// itself).
    pub(crate) fn await_return(&self, case: CaseId) {
        let me = std::thread::current().id();
        let deadline = Instant::now() + RETURN_WAIT;
        let Ok(mut entries) = self.shared.entries.lock() else {
            return;
        };
        loop {
            let others = entries
                .out
                .get(&case)
                .is_some_and(|threads| !threads.contains(&me));
            let now = Instant::now();
            if !others || now >= deadline {
                return;
            }
            entries = match self.shared.returned.wait_timeout(entries, deadline - now) {
                Ok((entries, _)) => entries,
                Err(_) => return,
            };
        }
    }

    /// Takes `case` out for this thread's transaction: its document if the copy in memory
    /// holds exactly the stored `heads` (its own heads, not what it was last stored as: a copy
    /// changed and not stored is stale too), else the lease alone, for the document the caller
    /// loads from the database. A stale copy is dropped.
    pub(crate) fn take(&self, case: CaseId, heads: &[ChangeHash]) -> Result<LoadedCase, Lease> {
        let lease = Lease {
            shared: self.shared.clone(),
            case,
            thread: std::thread::current().id(),
        };
        let taken = {
            let Ok(mut entries) = self.shared.entries.lock() else {
                return Err(lease);
            };
            entries.out.entry(case).or_default().push(lease.thread);
            let taken = entries.docs.remove(&case);
            if let Some((taken, _)) = &taken {
                entries.ops = entries.ops.saturating_sub(taken.doc.op_count());
            }
            taken
        };
        let Some((mut loaded, _)) = taken else {
            return Err(lease);
        };
        let mut ours = loaded.doc.heads();
        let mut stored = heads.to_vec();
        ours.sort_unstable();
        stored.sort_unstable();
        if ours == stored && loaded.stored_heads.len() == stored.len() {
            loaded.lease = Some(lease);
            Ok(loaded)
        } else {
            Err(lease)
        }
    }

    /// Sets the most operations kept (documents past it are dropped, oldest first).
    pub(crate) fn set_budget(&self, ops: u64) {
        if let Ok(mut entries) = self.shared.entries.lock() {
            entries.budget = ops;
            entries.evict();
        }
    }

    /// Keeps a document that is stored as it is (after its transaction committed), then ends
    /// its lease, waking a transaction that waits for it.
    pub(crate) fn keep(&self, mut loaded: LoadedCase) {
        let lease = loaded.lease.take();
        self.insert(loaded);
        drop(lease);
    }

    fn insert(&self, loaded: LoadedCase) {
        let Ok(mut entries) = self.shared.entries.lock() else {
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
        self.shared
            .entries
            .lock()
            .map(|e| e.docs.len())
            .unwrap_or(0)
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::mpsc;

    use fieldcase_core::ActorId;

    use super::*;

    fn cached(cache: &DocCache, case: CaseId) {
        let doc = CaseDoc::empty(case, &ActorId::random());
        cache.keep(LoadedCase::new(doc));
    }

    /// A transaction wanting a case another thread has out waits until it is given back and
    /// then finds it in memory, instead of loading its own copy.
    #[test]
    fn a_case_taken_out_elsewhere_is_waited_for_and_found_once_given_back() {
        let cache = Arc::new(DocCache::default());
        let case = CaseId::new();
        cached(&cache, case);
        let (taken_tx, taken_rx) = mpsc::channel();
        let (give_tx, give_rx) = mpsc::channel::<()>();
        let holder = {
            let cache = cache.clone();
            std::thread::spawn(move || {
                let loaded = cache.take(case, &[]).ok().unwrap();
                taken_tx.send(()).unwrap();
                give_rx.recv().unwrap();
                cache.keep(loaded);
            })
        };
        taken_rx.recv().unwrap();
        let started = Instant::now();
        let waiter = {
            let cache = cache.clone();
            std::thread::spawn(move || {
                cache.await_return(case);
                cache.take(case, &[]).is_ok()
            })
        };
        std::thread::sleep(Duration::from_millis(30));
        assert!(!waiter.is_finished(), "did not wait for the lease");
        give_tx.send(()).unwrap();
        holder.join().unwrap();
        assert!(
            waiter.join().unwrap(),
            "the document given back was not found"
        );
        assert!(started.elapsed() < RETURN_WAIT + Duration::from_secs(1));
    }

    /// A lease that ends without the document coming back (its transaction failed) wakes the
    /// waiter at once; the same thread never waits for its own lease; nobody waits past the
    /// bound.
    #[test]
    fn a_dropped_lease_wakes_the_waiter_and_no_thread_waits_for_itself() {
        let cache = Arc::new(DocCache::default());
        let case = CaseId::new();
        cached(&cache, case);
        let own = cache.take(case, &[]).ok().unwrap();
        let started = Instant::now();
        cache.await_return(case);
        assert!(started.elapsed() < RETURN_WAIT, "waited for its own lease");
        let (taken_tx, taken_rx) = mpsc::channel();
        let holder = {
            let cache = cache.clone();
            std::thread::spawn(move || {
                let lease = cache.take(case, &[]).err().unwrap();
                taken_tx.send(()).unwrap();
                std::thread::sleep(Duration::from_millis(50));
                drop(lease);
            })
        };
        drop(own);
        taken_rx.recv().unwrap();
        cache.await_return(case);
        holder.join().unwrap();
        assert!(cache.take(case, &[]).is_err(), "no document came back");
        // A lease never given back holds nobody past the bound.
        {
            let cache = cache.clone();
            std::thread::spawn(move || std::mem::forget(cache.take(case, &[])))
                .join()
                .unwrap();
        }
        let started = Instant::now();
        cache.await_return(case);
        assert!(started.elapsed() >= RETURN_WAIT);
    }
}
