//! Who wrote what, checked at the hub: every change an upload brings must be made by an
//! automerge actor registered (in the document's `authors` map) to the uploading device and its
//! user; every note it creates must name that device and user as its author; it may edit the
//! body of a colleague's note only by recording itself among the note's editors (workers on a
//! case complete each other's notes, so such edits are kept and shown with their editor rather
//! than refused); it may never delete a note or change who wrote one, when, or what it records;
//! and no note it writes may be dated past the clock-skew window. Attachment references follow
//! the same rules: added only in the uploader's name, never changed, removed only by their author. Without this a tampered phone
//! could write notes in a colleague's name, rewrite them silently, erase them, or pass its
//! changes off as the office's.

use std::collections::{BTreeMap, BTreeSet};

use automerge::{ChangeHash, ReadDoc};

use super::{CaseDoc, Received, guarded};
use crate::error::{CoreError, Result};
use crate::ids::NoteId;
use crate::model::{Author, VisitNote};
use crate::protocol::TIMESTAMP_WINDOW_SECS;
use time::OffsetDateTime;

/// What the hub compares before and after an upload: the notes, the attachment references and
/// who recorded each entry of the recovery plan.
#[derive(Debug, Clone, Default)]
pub struct ContentSnapshot {
    /// The notes by key.
    pub notes: NoteSnapshot,
    /// The attachment references by key.
    pub attachments: super::AttachmentSnapshot,
    /// Who each goal, service and review of the recovery plan names as its author, by key.
    pub(crate) plan: BTreeMap<String, super::plan::Attribution>,
}

/// The notes of a document by key, as the hub compares them before and after an upload (`None`
/// for a key that does not hold a readable note).
pub type NoteSnapshot = BTreeMap<String, Option<VisitNote>>;

fn refuse(why: &'static str) -> CoreError {
    CoreError::Document(why)
}

/// Whether `at` lies past the clock-skew window from `now`.
fn in_the_future(at: OffsetDateTime, now: OffsetDateTime) -> bool {
    at > now + time::Duration::seconds(TIMESTAMP_WINDOW_SECS)
}

/// Checks one note an upload created.
fn check_new(note: &VisitNote, author: Author, now: OffsetDateTime) -> Result<()> {
    if note.author != author {
        return Err(refuse(
            "a new note names another author than the device that uploaded it",
        ));
    }
    if note.edited_by.iter().any(|e| *e != author) {
        return Err(refuse("a new note names editors other than its author"));
    }
    if in_the_future(note.written_at, now) || note.edited_at.is_some_and(|t| in_the_future(t, now))
    {
        return Err(refuse("a note is dated in the future"));
    }
    Ok(())
}

/// Checks one note an upload changed.
fn check_changed(
    old: &VisitNote,
    new: &VisitNote,
    author: Author,
    now: OffsetDateTime,
) -> Result<()> {
    if (old.author, old.written_at, old.kind, old.task)
        != (new.author, new.written_at, new.kind, new.task)
    {
        return Err(refuse(
            "an upload changes who wrote a note, when, or what it records",
        ));
    }
    if new
        .edited_by
        .iter()
        .any(|e| !old.edited_by.contains(e) && *e != author)
    {
        return Err(refuse("an upload names another device as a note's editor"));
    }
    let edited = (&old.body, &old.tags, old.edited_at) != (&new.body, &new.tags, new.edited_at);
    if edited && new.author != author && !new.edited_by.contains(&author) {
        return Err(refuse(
            "an upload edits a colleague's note without naming its editor",
        ));
    }
    if edited && new.edited_at.is_some_and(|t| in_the_future(t, now)) {
        return Err(refuse("a note is dated in the future"));
    }
    Ok(())
}

/// Checks one note key between before and after an upload: `None` where the notes map lacks
/// the key, `Some(None)` where it holds something that does not read as a note.
fn check_note(
    old: Option<&Option<VisitNote>>,
    new: Option<&Option<VisitNote>>,
    author: Author,
    now: OffsetDateTime,
) -> Result<()> {
    match (old, new) {
        (Some(_), None) => Err(refuse("an upload deletes a note")),
        (Some(Some(old)), Some(Some(new))) if old != new => check_changed(old, new, author, now),
        (Some(Some(_)), Some(None)) => Err(refuse("an upload breaks a note")),
        (Some(None) | None, Some(Some(new))) => check_new(new, author, now),
        (None, Some(None)) => Err(refuse("a new note is not a readable note")),
        _ => Ok(()),
    }
}

/// The recovery plan's rules for an upload: no goal, service or review disappears or changes
/// whom it names as its author or when it was recorded, and every new one names the uploader
/// (a review names her as its reviewer).
fn check_plan(
    before: &BTreeMap<String, super::plan::Attribution>,
    after: &BTreeMap<String, super::plan::Attribution>,
    author: Author,
) -> Result<()> {
    for (key, old) in before {
        match after.get(key) {
            None => return Err(refuse("an upload deletes an entry of the recovery plan")),
            Some(new) if new != old => {
                return Err(refuse(
                    "an upload changes who recorded an entry of the recovery plan, or when",
                ));
            }
            Some(_) => {}
        }
    }
    for (key, new) in after {
        if before.contains_key(key) {
            continue;
        }
        match new {
            Some((user, device, _))
                if *user == author.user && device.is_none_or(|d| d == author.device) => {}
            Some(_) => {
                return Err(refuse(
                    "a new entry of the recovery plan names another author than the uploader",
                ));
            }
            None => return Err(refuse("a new entry of the recovery plan does not read")),
        }
    }
    Ok(())
}

impl CaseDoc {
    /// The keys of the notes the document held at `heads` (none if it lacks those heads).
    pub fn note_keys_at(&mut self, heads: &[ChangeHash]) -> BTreeSet<String> {
        if !self.has_all(heads) {
            return BTreeSet::new();
        }
        match self.doc.get_at(&automerge::ROOT, "notes", heads) {
            Ok(Some((automerge::Value::Object(automerge::ObjType::Map), notes))) => {
                self.doc.keys_at(&notes, heads).collect()
            }
            _ => BTreeSet::new(),
        }
    }

    /// Every note by key, read for [`CaseDoc::check_authorship`].
    pub fn note_snapshot(&self) -> NoteSnapshot {
        self.note_snapshot_from(BTreeMap::new())
    }

    /// [`CaseDoc::note_snapshot`] with the notes of `read` (read at the document's current
    /// heads, by key) taken as they are instead of read again.
    fn note_snapshot_from(&self, mut read: BTreeMap<String, VisitNote>) -> NoteSnapshot {
        let Some(notes) = self.notes_obj() else {
            return NoteSnapshot::new();
        };
        self.doc
            .keys(&notes)
            .map(|key| {
                let note = match read.remove(&key) {
                    Some(note) => Some(note),
                    None => self.note_at_key(&notes, &key).flatten(),
                };
                (key, note)
            })
            .collect()
    }

    /// What the notes map `notes` holds at `key`: `None` without such a key, `Some(None)` when
    /// it does not read as a note.
    fn note_at_key(&self, notes: &automerge::ObjId, key: &str) -> Option<Option<VisitNote>> {
        let (value, obj) = self.doc.get(notes, key).ok().flatten()?;
        let note = match (value, key.parse::<NoteId>()) {
            (automerge::Value::Object(automerge::ObjType::Map), Ok(id)) => {
                self.read_note(id, &obj).ok()
            }
            _ => None,
        };
        Some(note)
    }

    /// The notes, attachment references and authors of the recovery plan's entries, read
    /// before an upload is applied.
    pub fn content_snapshot(&self) -> ContentSnapshot {
        ContentSnapshot {
            notes: self.note_snapshot(),
            attachments: self.attachment_snapshot(),
            plan: self.plan_attributions(),
        }
    }

    /// [`CaseDoc::content_snapshot`] as the hub takes it before applying an upload: the
    /// snapshot the last successful [`CaseDoc::check_authorship`] read after its upload, when
    /// the document is still at the heads it read it at (the same heads are the same changes,
    /// so the same content), else read afresh. Reading every note of a large case is most of
    /// the hub's work on a small upload; this halves it.
    pub fn take_content_snapshot(&mut self) -> ContentSnapshot {
        match self.checked.take() {
            Some((heads, snapshot)) if heads == self.doc.get_heads() => snapshot,
            _ => self.content_snapshot(),
        }
    }

    /// Checks the changes made since `before` against `author`, the device that uploaded them,
    /// and the notes and attachment references against `content_before` (see the module's
    /// rules); `received` is how the changes were taken; `now` is the hub's clock.
    /// Refused with [`CoreError::Document`] otherwise.
    pub fn check_authorship(
        &mut self,
        before: &[ChangeHash],
        content_before: &ContentSnapshot,
        received: Received,
        author: Author,
        now: OffsetDateTime,
    ) -> Result<()> {
        // The changes' metadata only: building the changes themselves would make automerge
        // rebuild them from its operations (see `CaseDoc::changes_for`).
        let actors: BTreeSet<String> = guarded("reading the changes panicked", || {
            self.doc
                .get_changes_meta(before)
                .iter()
                .map(|c| c.actor.to_hex_string())
                .collect()
        })?;
        for actor in &actors {
            if self.author_of_actor(actor) != Some(author) {
                return Err(CoreError::Document(
                    "a change is not registered to the device that uploaded it",
                ));
            }
        }
        // A check that fails leaves nothing kept: the document is at heads never checked.
        self.checked = None;
        // The checks only read: the document stays at these heads to the end.
        let heads = self.doc.get_heads();
        let attachments = self.attachment_snapshot();
        super::attachments::check_changes(&content_before.attachments, &attachments, author, now)?;
        let plan = self.plan_attributions();
        check_plan(&content_before.plan, &plan, author)?;
        let notes = match self.touched_notes.take() {
            Some(touched) if touched.before == before && touched.after == heads => {
                // Only the notes the changes touched can read otherwise than before.
                let mut notes = content_before.notes.clone();
                let notes_obj = self.notes_obj();
                for key in touched.keys {
                    let new = notes_obj
                        .as_ref()
                        .and_then(|obj| self.note_at_key(obj, &key));
                    check_note(content_before.notes.get(&key), new.as_ref(), author, now)?;
                    match new {
                        Some(new) => notes.insert(key, new),
                        None => notes.remove(&key),
                    };
                }
                notes
            }
            _ => {
                let read_at_load = received
                    .notes_read
                    .filter(|read| read.heads == heads)
                    .map(|read| read.notes)
                    .unwrap_or_default();
                let after = self.note_snapshot_from(read_at_load);
                for (key, old) in &content_before.notes {
                    check_note(Some(old), after.get(key), author, now)?;
                }
                for (key, new) in &after {
                    if !content_before.notes.contains_key(key) {
                        check_note(None, Some(new), author, now)?;
                    }
                }
                after
            }
        };
        let checked = ContentSnapshot {
            notes,
            attachments,
            plan,
        };
        self.checked = Some((heads, checked));
        Ok(())
    }
}
