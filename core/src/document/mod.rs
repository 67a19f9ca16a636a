//! One automerge document per case: how cases, notes and tasks are laid out in it, how edits are
//! made, and how the merged state is read back.
//!
//! Layout of a case document (root map):
//!
//! ```text
//! schema: 1
//! client_code, status, consent, created_at: str
//! risk_level, legal_status: str           absent in older documents (read as their defaults)
//! assigned: { user_id: true }            set of workers (a map, so concurrent adds both survive)
//! authors:  { actor_hex: { user, device } }   who each replica's changes belong to
//! notes:    { note_id: { author_user, author_device, written_at, edited_at, kind,
//!                        body: Text, tags: { tag: true }, task } }
//! tasks:    { task_id: { purpose, office_kind, office_name, office_address, scheduled_at,
//!                        time_zone, assignees: { user_id: true }, status, outcome, follow_up,
//!                        checklist: { item_id: { pos, label, done } } } }
//! goals, services, reviews: the recovery plan; profile.*: the client profile (see `plan`)
//! attachments: { attachment_id: str }    each an AttachmentRef as JSON, written once, never
//!                                         changed; a removal deletes the key
//! ```
//!
//! Notes and tasks are maps keyed by random ids, so two notes added offline on two phones both
//! survive a merge; note bodies are automerge Text, so concurrent edits merge character-wise; a
//! scalar field changed on two replicas keeps automerge's deterministic winner, and
//! [`CaseDoc::conflicts`] reports every value with its author and time so a UI can show the
//! conflict; sensitive ones wait for a person, who settles them with
//! [`CaseDoc::resolve_conflict`].
//!
//! Every automerge call that sees stored or received bytes runs behind `catch_unwind`, because
//! automerge 0.12 panics on some malformed input (DESIGN.md section 11).

mod attachments;
mod authorship;
mod bounds;
mod chunks;
mod conflict;
mod plan;
mod read;
mod write;

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};

use automerge::{ActorId, AutoCommit, ChangeHash};

pub use attachments::AttachmentSnapshot;
pub use authorship::{ContentSnapshot, NoteSnapshot};
pub use bounds::{MAX_DEPTH, MAX_ENTRIES, MAX_TEXT_BYTES};
pub use chunks::{
    MAX_CHUNKS_AT_ONCE, MAX_INFLATED, document_heads, inflated_size, is_document_chunk,
};
pub use conflict::{
    Conflict, ConflictOn, ConflictValue, SENSITIVE_CASE_FIELDS, SENSITIVE_GOAL_FIELDS,
    SENSITIVE_TASK_FIELDS,
};
pub use plan::HistoryEntry;

use crate::error::{CoreError, Result};
use crate::ids::CaseId;

/// The schema version written into every case document.
pub const DOC_SCHEMA: i64 = 1;

/// How [`CaseDoc::apply_received`] took what a peer sent.
#[derive(Debug, Clone)]
pub struct Received {
    /// The bytes were a whole saved document holding every change of ours, and it replaced ours:
    /// those bytes alone now load as this document, so storage can keep them as they came.
    pub adopted: bool,
    /// The notes the adopted document's bounds check read at load, which the authorship check
    /// of the same upload takes instead of reading every note again. Carried here rather than
    /// kept on the document, so that a document kept in memory after it never holds them twice.
    notes_read: Option<NotesRead>,
}

impl Received {
    fn applied() -> Received {
        Received {
            adopted: false,
            notes_read: None,
        }
    }
}

/// A whole document a peer sent, loaded, with the outcome of its bounds check
/// ([`CaseDoc::check_bounds`]): what [`CaseDoc::apply_checked`] adopts when it holds every
/// change of ours. Loading and checking are work on the received bytes alone (about 3 ms for a
/// case of 20 notes), so a hub does them for every document of a request side by side, before
/// its transaction.
pub struct ReceivedDoc {
    doc: CaseDoc,
    bounds: Result<NotesRead>,
}

impl ReceivedDoc {
    /// Loads `bytes` as case `id`'s document and checks its bounds; `None` when the bytes are
    /// not a whole document (change chunks are applied, not loaded). A load that fails is an
    /// error; bounds that fail are kept for the adoption, which alone needs them.
    pub fn load(id: CaseId, bytes: &[u8]) -> Option<Result<ReceivedDoc>> {
        Some(load_whole(id, bytes)?.map(|mut doc| {
            let bounds = doc.check_bounds_reading().map(|notes| NotesRead {
                heads: doc.doc.get_heads(),
                notes,
            });
            ReceivedDoc { doc, bounds }
        }))
    }
}

/// `bytes` loaded as case `id`'s whole document; `None` when they are not a document chunk.
fn load_whole(id: CaseId, bytes: &[u8]) -> Option<Result<CaseDoc>> {
    if !is_document_chunk(bytes) {
        return None;
    }
    let loaded = chunks::prescan(bytes)
        .and_then(|()| guarded("load panicked", || AutoCommit::load(bytes)))
        .and_then(|r| r.map_err(|_| CoreError::Document("cannot load received document")));
    Some(loaded.map(|doc| CaseDoc {
        id,
        doc,
        on_behalf_of: None,
        checked: None,
        touched_notes: None,
    }))
}

/// The history of what a peer sent (a whole document or change chunks) up to `heads` alone, as
/// change chunks: the part a restored office takes back as its own because it attested
/// those heads before ([`crate::sync::epoch`]). Refused when the bytes do not load or do not hold
/// every one of `heads`.
pub fn attested_part(bytes: &[u8], heads: &[ChangeHash]) -> Result<Vec<u8>> {
    chunks::prescan(bytes)?;
    let mut doc = guarded("load panicked", || AutoCommit::load(bytes))?
        .map_err(|_| CoreError::Document("cannot load received document"))?;
    if heads.is_empty() || !heads.iter().all(|h| doc.get_change_by_hash(h).is_some()) {
        return Err(CoreError::Document(
            "the upload lacks the history its attestation names",
        ));
    }
    let mut part = guarded("fork panicked", || doc.fork_at(heads))?
        .map_err(|_| CoreError::Document("cannot take the attested history"))?;
    guarded("encoding the history panicked", || {
        part.get_changes(&[])
            .into_iter()
            .flat_map(|c| c.raw_bytes().to_vec())
            .collect()
    })
}

/// One case's automerge document, with the actor of the replica that edits it.
pub struct CaseDoc {
    id: CaseId,
    doc: AutoCommit,
    /// Who the replica's edits are made for, named in their messages (`by=USER`): the office
    /// edits as itself for the case manager who acted.
    on_behalf_of: Option<crate::ids::UserId>,
    /// What the hub read of the document at these heads when it last checked an upload (see
    /// [`CaseDoc::take_content_snapshot`]): the same heads hold the same content, so the next
    /// upload's "before" need not be read again from automerge.
    checked: Option<(Vec<automerge::ChangeHash>, authorship::ContentSnapshot)>,
    /// The notes the changes between two heads can have changed, as the last
    /// [`CaseDoc::check_bounds_since`] found them: [`CaseDoc::check_authorship`] of those
    /// changes reads only these notes again.
    touched_notes: Option<TouchedNotes>,
}

/// Every note of a document, by key, as read at `heads`.
#[derive(Debug, Clone)]
struct NotesRead {
    heads: Vec<automerge::ChangeHash>,
    notes: std::collections::BTreeMap<String, crate::model::VisitNote>,
}

/// The keys of the notes that the changes from `before` to `after` touch (an operation on the
/// note's key in the notes map, or on an object inside the note): every other note reads at
/// `after` as it did at `before`, since what a note reads is held in its own objects.
#[derive(Debug, Clone)]
struct TouchedNotes {
    before: Vec<automerge::ChangeHash>,
    after: Vec<automerge::ChangeHash>,
    keys: std::collections::BTreeSet<String>,
}

impl std::fmt::Debug for CaseDoc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CaseDoc({})", self.id)
    }
}

thread_local! {
    /// How many [`guarded`] calls this thread is inside.
    static GUARD_DEPTH: Cell<u32> = const { Cell::new(0) };
}

/// Whether this thread is inside an automerge call whose panic core turns into a typed error
/// (automerge 0.12 panics on some malformed input, DESIGN.md section 11). For panic hooks: a
/// fuzzer, or a crash reporter, can tell such a panic, which refuses the input and harms
/// nothing, from a fault.
pub fn panic_is_guarded() -> bool {
    GUARD_DEPTH.with(Cell::get) > 0
}

/// Runs an automerge call that may panic on hostile bytes, turning a panic into a typed error.
pub(crate) fn guarded<T>(what: &'static str, f: impl FnOnce() -> T) -> Result<T> {
    /// Leaves the guarded region however the call ends.
    struct Inside;
    impl Drop for Inside {
        fn drop(&mut self) {
            GUARD_DEPTH.with(|d| d.set(d.get().saturating_sub(1)));
        }
    }
    GUARD_DEPTH.with(|d| d.set(d.get().saturating_add(1)));
    let _inside = Inside;
    catch_unwind(AssertUnwindSafe(f)).map_err(|_| CoreError::Document(what))
}

impl CaseDoc {
    /// Loads a document from saved bytes (a full save, optionally followed by change chunks) and
    /// sets the actor that local edits will be made as.
    pub fn load(id: CaseId, bytes: &[u8], actor: &ActorId) -> Result<Self> {
        chunks::prescan(bytes)?;
        let doc = guarded("load panicked", || AutoCommit::load(bytes))?
            .map_err(|_| CoreError::Document("cannot load case document"))?;
        let mut doc = Self {
            id,
            doc,
            on_behalf_of: None,
            checked: None,
            touched_notes: None,
        };
        doc.doc.set_actor(actor.clone());
        doc.check_schema()?;
        Ok(doc)
    }

    /// An empty document for a case first seen through sync, to which the received changes are
    /// then applied.
    pub fn empty(id: CaseId, actor: &ActorId) -> Self {
        Self {
            id,
            doc: AutoCommit::new().with_actor(actor.clone()),
            on_behalf_of: None,
            checked: None,
            touched_notes: None,
        }
    }

    /// Names `user` in the messages of this replica's next edits (`by=USER`), until changed:
    /// the office writes as itself and records which case manager acted, so that a case's
    /// history shows her ([`HistoryEntry::by`]).
    pub fn set_on_behalf_of(&mut self, user: Option<crate::ids::UserId>) {
        self.on_behalf_of = user;
    }

    fn check_schema(&self) -> Result<()> {
        match read::scalar_i64(&self.doc, &automerge::ROOT, "schema") {
            Some(DOC_SCHEMA) => Ok(()),
            Some(_) => Err(CoreError::Document("unsupported case document schema")),
            None => Err(CoreError::Document("not a case document")),
        }
    }

    /// Applies changes received from elsewhere (concatenated change chunks). Applying a change
    /// twice, or in another order, changes nothing more. On error the document must be dropped
    /// and reloaded from storage, since a panic may have left it half-applied.
    pub fn apply_encoded_changes(&mut self, bytes: &[u8]) -> Result<usize> {
        if bytes.is_empty() {
            return Ok(0);
        }
        chunks::prescan(bytes)?;
        let applied = guarded("apply panicked", || self.doc.load_incremental(bytes))?
            .map_err(|_| CoreError::Document("cannot apply changes"))?;
        // automerge 0.12 records a patch for every applied operation in the document's patch
        // log even while that log is inactive, and keeps them: 300 received notes held 10.9 MB
        // against 0.34 MB with this (the log is never read here; a fresh one is inactive).
        self.doc.reset_diff_cursor();
        self.check_schema()?;
        Ok(applied)
    }

    /// Applies what a peer sent, the cheapest correct way. A whole saved document that already
    /// holds every change of this one is taken by loading it, in one pass: automerge applies a
    /// received change in about 1.7 ms (more as the document grows), while loading a saved
    /// document of the same changes costs a fraction of that. Anything else (change chunks, or a
    /// document lacking some of our changes) is applied as [`CaseDoc::apply_encoded_changes`]
    /// does. Same contract: on error, drop this document and reload it from storage.
    pub fn apply_received(&mut self, bytes: &[u8]) -> Result<Received> {
        if let Some(whole) = load_whole(self.id, bytes) {
            let mut candidate = whole?;
            if candidate.has_all(&self.heads()) {
                self.replace_with(candidate)?;
                return Ok(Received {
                    adopted: true,
                    notes_read: None,
                });
            }
        }
        self.apply_encoded_changes(bytes)?;
        Ok(Received::applied())
    }

    /// [`CaseDoc::apply_received`] with the bounds of what was sent checked too (as
    /// [`CaseDoc::check_bounds_since`] does), for bytes that may come from a hostile peer.
    /// `whole` is [`ReceivedDoc::load`] of the same bytes, done beforehand (a hub loads the
    /// documents of a request side by side). Same contract: on error, drop this document and
    /// reload it from storage.
    pub fn apply_checked(
        &mut self,
        bytes: &[u8],
        whole: Option<Result<ReceivedDoc>>,
    ) -> Result<Received> {
        if let Some(whole) = whole {
            let ReceivedDoc { mut doc, bounds } = whole?;
            if doc.has_all(&self.heads()) {
                // The document is what the peer sent: its whole walk (done at load) costs what
                // was received, where finding its new changes would make automerge rebuild them.
                let notes_read = bounds?;
                self.replace_with(doc)?;
                return Ok(Received {
                    adopted: true,
                    notes_read: Some(notes_read),
                });
            }
        }
        let before = self.heads();
        self.apply_encoded_changes(bytes)?;
        self.check_bounds_since(&before)?;
        Ok(Received::applied())
    }

    /// Takes `candidate` (a whole received document holding every change of this one) in
    /// place of this document, keeping this replica's actor.
    fn replace_with(&mut self, mut candidate: CaseDoc) -> Result<()> {
        candidate.check_schema()?;
        candidate.doc.set_actor(self.doc.get_actor().clone());
        candidate.on_behalf_of = self.on_behalf_of;
        *self = candidate;
        Ok(())
    }

    /// The case's id.
    pub fn id(&self) -> CaseId {
        self.id
    }

    /// The current heads (hashes of the latest changes).
    pub fn heads(&mut self) -> Vec<ChangeHash> {
        self.doc.get_heads()
    }

    /// The whole document, compacted.
    pub fn save(&mut self) -> Vec<u8> {
        self.doc.save()
    }

    /// The change this replica made last, encoded (compressed when that pays): what an edit
    /// appends to storage. Cheaper than [`CaseDoc::changes_since`] for one change.
    pub fn last_local_change(&mut self) -> Option<Vec<u8>> {
        self.doc
            .get_last_local_change()
            .map(|mut c| c.bytes().into_owned())
    }

    /// Every change not reachable from `heads`, encoded as change chunks: what a peer that has
    /// `heads` lacks.
    pub fn changes_since(&mut self, heads: &[ChangeHash]) -> Vec<u8> {
        // Nothing is newer than `heads` when they name every head of this document: answered
        // without asking automerge, which rebuilds changes from its operations to find out.
        if self.doc.get_heads().iter().all(|h| heads.contains(h)) {
            return Vec::new();
        }
        self.doc.save_after(heads)
    }

    /// What a peer that has `heads` lacks, in the form cheaper to send and to take: the changes
    /// since `heads`, or the whole compact document when the peer lacks nearly all of it.
    ///
    /// A compact document is smaller than its changes (one header, compressed columns; 20 notes:
    /// about 2 KB against 11 KB of change chunks) and loads in one pass, where each change is
    /// applied on its own. Which one is smaller is decided from the changes' operation counts,
    /// which automerge keeps in its change graph, so neither form is built only to be compared:
    /// building the changes means automerge rebuilding them from its operations, which cost the
    /// phone most of a 1,000-case upload. Only where the counts leave it open are both built and
    /// the smaller sent. Empty when the peer has everything.
    pub fn changes_for(&mut self, heads: &[ChangeHash]) -> Vec<u8> {
        if self.doc.get_heads().iter().all(|h| heads.contains(h)) {
            return Vec::new();
        }
        let ops = |changes: Vec<automerge::ChangeMetadata<'_>>| -> (usize, u64) {
            let count = changes.len();
            let ops = changes
                .iter()
                .map(|c| (c.max_op + 1).saturating_sub(c.start_op))
                .sum();
            (count, ops)
        };
        let (count, pending) = ops(self.doc.get_changes_meta(heads));
        if count <= 1 {
            return self.doc.save_after(heads);
        }
        let (_, all) = ops(self.doc.get_changes_meta(&[]));
        // Nine tenths or more of the operations are new to the peer: the document, which holds at
        // most a ninth more operations, compressed, is the smaller. Under half: the changes are.
        if pending.saturating_mul(10) >= all.saturating_mul(9) {
            return self.doc.save();
        }
        let changes = self.doc.save_after(heads);
        if pending.saturating_mul(2) < all {
            return changes;
        }
        let whole = self.doc.save();
        if whole.len() < changes.len() {
            whole
        } else {
            changes
        }
    }

    /// Whether every change named by `heads` is in this document.
    pub fn has_all(&mut self, heads: &[ChangeHash]) -> bool {
        heads
            .iter()
            .all(|h| self.doc.get_change_by_hash(h).is_some())
    }

    /// Number of operations in the document: what its size in memory follows (about 25 bytes
    /// each for a freshly loaded document, several times that for one grown by many applies).
    pub fn op_count(&self) -> u64 {
        automerge::ReadDoc::stats(&self.doc).num_ops
    }

    /// Number of changes in the document's history.
    pub fn change_count(&mut self) -> usize {
        self.doc.get_changes(&[]).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_guarded_call_is_known_as_such_while_it_runs_and_not_after_it_panics() {
        assert!(!panic_is_guarded());
        let inside = guarded("test", panic_is_guarded);
        assert!(matches!(inside, Ok(true)));
        let nested = guarded("outer", || guarded("inner", panic_is_guarded));
        assert!(matches!(nested, Ok(Ok(true))));
        // Unwinds as a panic does, without the panic hook's message.
        let panicked = guarded("test", || -> u8 { std::panic::resume_unwind(Box::new(())) });
        assert!(matches!(panicked, Err(CoreError::Document("test"))));
        assert!(!panic_is_guarded(), "the depth is restored after a panic");
    }
}
