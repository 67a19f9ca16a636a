//! Bounds on the shape of a case document received from elsewhere.
//!
//! automerge accepts any well-formed change, so a hostile or broken peer could send changes that
//! are valid automerge but no case document we write: maps nested thousands deep, a "note" of
//! hundreds of megabytes, a string where the notes map belongs. [`CaseDoc::check_bounds`] walks
//! the merged document (every concurrent value too, since conflicts are shown) and refuses what
//! our layout never holds, before the hub stores it.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use automerge::iter::DocItem;
use automerge::legacy::{Key, ObjectId, OpId, OpType};
use automerge::{
    ChangeHash, ObjId, ObjType, Prop, ReadDoc, ScalarValue, ScalarValueRef, Value, ValueRef,
};

use super::{CaseDoc, guarded};
use crate::error::{CoreError, Result};
use crate::ids::{NoteId, TaskId};
use crate::model::{Limits, VisitNote};

/// Deepest object nesting below the root. Our layout reaches 4
/// (`tasks / task / checklist / item`); the rest is headroom.
pub const MAX_DEPTH: usize = 8;
/// Longest text or string value: four note bodies, so that concurrent edits of one note that
/// each stayed within [`Limits::NOTE_BODY_MAX`] still merge.
pub const MAX_TEXT_BYTES: usize = 4 * Limits::NOTE_BODY_MAX;
/// Root keys that always hold maps.
const MAP_KEYS: [&str; 7] = [
    "notes", "tasks", "assigned", "authors", "goals", "services", "reviews",
];
/// Most values in one map or list (notes of a case, items of a checklist, ...).
pub const MAX_ENTRIES: usize = 100_000;

/// An object id as automerge's text form (`_root` or `counter@actor`), to look it up.
/// Why a document holding a time outside the years 1900 to 2199 is refused: the office shows and
/// computes with every time it holds, and times far outside that range overflow.
const OUT_OF_RANGE: &str = "a time in the changes lies outside the years 1900 to 2199";

fn object_text(obj: &ObjectId) -> String {
    obj.to_string()
}

fn refuse(why: &'static str) -> CoreError {
    CoreError::Document(why)
}

impl CaseDoc {
    /// Checks that the document keeps the shape of a case: it reads as a case, its notes, tasks,
    /// assignments and authors are maps, no object nests
    /// deeper than [`MAX_DEPTH`], no text or string is longer than [`MAX_TEXT_BYTES`], no map or
    /// list holds more than [`MAX_ENTRIES`] values.
    pub fn check_bounds(&self) -> Result<()> {
        self.check_bounds_reading().map(drop)
    }

    /// [`CaseDoc::check_bounds`], giving back the notes it read to see that they read, by their
    /// key in the notes map: what the hub's authorship check of the same document reads next.
    pub(super) fn check_bounds_reading(&self) -> Result<BTreeMap<String, VisitNote>> {
        self.walk_document()?;
        // The collections of the layout stay maps: a peer replacing the notes map with a string
        // would hide every note from every reader.
        self.check_layout()?;
        let layout = |_| refuse("the changes break the case document's layout");
        let notes = self.notes_by_key().map_err(layout)?;
        let case = self.case_without_notes().map_err(layout)?;
        case.check_times().map_err(|_| refuse(OUT_OF_RANGE))?;
        for note in notes.values() {
            note.check_times().map_err(|_| refuse(OUT_OF_RANGE))?;
        }
        Ok(notes)
    }

    /// [`CaseDoc::check_bounds`] for a document that held every change of `before` and had its
    /// bounds checked then: only what the changes since touched is looked at, so the cost follows
    /// the changes, not the size of the case. The same rules: every object a new operation
    /// targets or makes keeps within the depth, size and length limits (all its concurrent
    /// values too), and every note and task it touches still reads, as do the case's own fields
    /// when it touches the root. With no `before` (a case new to this replica) the whole
    /// document is checked.
    pub fn check_bounds_since(&mut self, before: &[ChangeHash]) -> Result<()> {
        self.touched_notes = None;
        if before.is_empty() {
            return self.check_bounds();
        }
        // What the new operations touch: each object with the map keys they write (lists and
        // texts are checked whole, since their elements have no key to look up).
        let mut touched: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for change in self.doc.get_changes(before) {
            let expanded = guarded("decoding a change panicked", || change.decode())?;
            let actor = expanded.actor_id.clone();
            let start = expanded.start_op.get();
            for (index, op) in expanded.operations.iter().enumerate() {
                let keys = touched.entry(object_text(&op.obj)).or_default();
                if let Key::Map(key) = &op.key {
                    keys.insert(key.to_string());
                }
                if let OpType::Make(_) = op.action {
                    let made = OpId(start.saturating_add(index as u64), actor.clone());
                    touched.entry(made.to_string()).or_default();
                }
            }
        }
        let mut notes = BTreeSet::new();
        let mut tasks = BTreeSet::new();
        let mut root = false;
        // Whether every note the changes may have changed is named in `notes`: not when an
        // object they touched cannot be placed, or the notes map itself was written at the root
        // (its old keys may be gone).
        let mut notes_complete = true;
        for (obj, keys) in touched {
            // An object that no longer exists or cannot be found is not part of the case (the
            // whole walk would not reach it either).
            let Ok(obj) = guarded("finding an object panicked", || self.doc.import_obj(&obj))?
            else {
                notes_complete = false;
                continue;
            };
            let Ok(parents) = self.doc.parents(&obj) else {
                notes_complete = false;
                continue;
            };
            let path: Vec<_> = parents.collect();
            let depth = path.len();
            if depth > MAX_DEPTH {
                return Err(refuse("objects in the changes nest too deep"));
            }
            self.check_object(&obj, depth, &keys)?;
            // The path runs from the object up to the root: its last two steps name the
            // collection and the note or task the object belongs to.
            let top: Vec<String> = path
                .iter()
                .rev()
                .take(2)
                .map(|p| match &p.prop {
                    Prop::Map(key) => key.clone(),
                    Prop::Seq(i) => i.to_string(),
                })
                .collect();
            match top.as_slice() {
                [] => {
                    root = true;
                    for key in &keys {
                        match key.as_str() {
                            "notes" => {
                                notes_complete = false;
                                notes.extend(self.keys_of_map("notes"));
                            }
                            "tasks" => tasks.extend(self.keys_of_map("tasks")),
                            _ => {}
                        }
                    }
                }
                [collection] => {
                    let entries = if collection == "notes" {
                        &mut notes
                    } else {
                        &mut tasks
                    };
                    if collection == "notes" || collection == "tasks" {
                        entries.extend(keys.iter().cloned());
                    }
                }
                [collection, entry, ..] => match collection.as_str() {
                    "notes" => {
                        notes.insert(entry.clone());
                    }
                    "tasks" => {
                        tasks.insert(entry.clone());
                    }
                    _ => {}
                },
            }
        }
        let broken = || refuse("the changes break the case document's layout");
        if root {
            self.check_layout()?;
            let case = self.case_fields().map_err(|_| broken())?;
            crate::model::time_in_range("the time a case was opened", case.created_at)
                .map_err(|_| refuse(OUT_OF_RANGE))?;
        }
        for note in notes.iter().filter_map(|n| n.parse::<NoteId>().ok()) {
            match self.note(note) {
                Ok(note) => note.check_times().map_err(|_| refuse(OUT_OF_RANGE))?,
                Err(CoreError::NoteNotFound) => {}
                Err(_) => return Err(broken()),
            }
        }
        for task in tasks.iter().filter_map(|t| t.parse::<TaskId>().ok()) {
            match self.task(task) {
                Ok(task) => task.check_times().map_err(|_| refuse(OUT_OF_RANGE))?,
                Err(CoreError::TaskNotFound) => {}
                Err(_) => return Err(broken()),
            }
        }
        self.touched_notes = notes_complete.then(|| super::TouchedNotes {
            before: before.to_vec(),
            after: self.doc.get_heads(),
            keys: notes,
        });
        Ok(())
    }

    /// The keys of a map at the root (every note or task, when the map itself was replaced).
    fn keys_of_map(&self, key: &str) -> Vec<String> {
        match super::read::child(&self.doc, &automerge::ROOT, key, ObjType::Map) {
            Some(map) => self.doc.keys(&map).collect(),
            None => Vec::new(),
        }
    }

    /// The checks of one object that operations touched, at `depth`: its size, and for a map
    /// every value (concurrent ones too) of the keys they wrote; a text's length; a list whole.
    fn check_object(&self, obj: &ObjId, depth: usize, keys: &BTreeSet<String>) -> Result<()> {
        let doc = &self.doc;
        let ty = doc
            .object_type(obj)
            .map_err(|_| refuse("malformed case document"))?;
        match ty {
            ObjType::Map | ObjType::Table => {
                if doc.length(obj) > MAX_ENTRIES {
                    return Err(refuse("a map or list in the changes is too large"));
                }
                for key in keys {
                    self.check_key(obj, key, depth)?;
                }
                Ok(())
            }
            ObjType::Text | ObjType::List => self.walk(obj, depth),
        }
    }

    /// The root's collections are maps and the case's own fields read.
    fn check_layout(&self) -> Result<()> {
        for key in MAP_KEYS {
            let values = self
                .doc
                .get_all(&automerge::ROOT, key)
                .map_err(|_| refuse("malformed case document"))?;
            if values
                .iter()
                .any(|(value, _)| !matches!(value, Value::Object(ObjType::Map)))
            {
                return Err(refuse("the changes break the case document's layout"));
            }
        }
        self.case_fields()
            .map(|_| ())
            .map_err(|_| refuse("the changes break the case document's layout"))
    }

    /// The whole walk in one pass over the document (automerge's document iterator visits
    /// every visible value, parents before children), where looking each key up would seek
    /// into automerge's operations once a key (with the case read that follows, the whole
    /// check of a case of 20 notes went from 2.0 to 0.75 ms). Values that lost a
    /// conflict are not visited by the iterator, so each key or element marked as conflicted is
    /// checked with all its values, and the objects among those walked.
    fn walk_document(&self) -> Result<()> {
        let doc = &self.doc;
        let mut depths: HashMap<ObjId, usize> = HashMap::new();
        depths.insert(automerge::ROOT, 0);
        let mut entries: HashMap<ObjId, usize> = HashMap::new();
        for item in doc.iter() {
            let obj: &ObjId = &item.obj;
            let depth = *depths.get(obj).ok_or(refuse("malformed case document"))?;
            // The key or index is kept only where a conflict needs every value looked up.
            let (value, id, conflicted) = match item.item {
                DocItem::Map(m) => {
                    if m.key.len() > MAX_TEXT_BYTES {
                        return Err(refuse("a key in the changes is too long"));
                    }
                    let id = m.id();
                    let prop = m.conflict.then(|| Prop::Map(m.key.into_owned()));
                    (m.value, id, prop)
                }
                DocItem::List(l) => {
                    let id = l.id();
                    (l.value, id, l.conflict.then_some(Prop::Seq(l.index)))
                }
                // A text's length is checked where the text is met as a value.
                DocItem::Text(_) => continue,
            };
            let count = entries.entry(obj.clone()).or_default();
            *count += 1;
            if *count > MAX_ENTRIES {
                return Err(refuse("a map or list in the changes is too large"));
            }
            match value {
                ValueRef::Object(ty) => {
                    if depth + 1 > MAX_DEPTH {
                        return Err(refuse("objects in the changes nest too deep"));
                    }
                    if ty == ObjType::Text && doc.length(&id) > MAX_TEXT_BYTES {
                        return Err(refuse("a text in the changes is too long"));
                    }
                    // The iterator goes through a table as if it were a list; our layout has
                    // none, and a peer's table is walked by key, as before this single pass.
                    if ty == ObjType::Table {
                        self.walk(&id, depth + 1)?;
                    }
                    depths.insert(id, depth + 1);
                }
                ValueRef::Scalar(s) => check_scalar(&s)?,
            }
            if let Some(prop) = conflicted {
                self.check_values(obj, prop, depth)?;
            }
        }
        Ok(())
    }

    fn walk(&self, obj: &ObjId, depth: usize) -> Result<()> {
        let doc = &self.doc;
        let ty = doc
            .object_type(obj)
            .map_err(|_| refuse("malformed case document"))?;
        let len = doc.length(obj);
        if len > MAX_ENTRIES && ty != ObjType::Text {
            return Err(refuse("a map or list in the changes is too large"));
        }
        match ty {
            ObjType::Text => {
                if len > MAX_TEXT_BYTES {
                    return Err(refuse("a text in the changes is too long"));
                }
                Ok(())
            }
            ObjType::Map | ObjType::Table => {
                for key in doc.keys(obj) {
                    self.check_key(obj, &key, depth)?;
                }
                Ok(())
            }
            ObjType::List => {
                for index in 0..len {
                    self.check_values(obj, index, depth)?;
                }
                Ok(())
            }
        }
    }

    /// One key of a map at `depth`: its length, and every value it holds (concurrent ones too).
    fn check_key(&self, obj: &ObjId, key: &str, depth: usize) -> Result<()> {
        if key.len() > MAX_TEXT_BYTES {
            return Err(refuse("a key in the changes is too long"));
        }
        self.check_values(obj, key, depth)
    }

    /// Every value one key or element of `obj` at `depth` holds, concurrent ones too.
    fn check_values(&self, obj: &ObjId, prop: impl Into<Prop>, depth: usize) -> Result<()> {
        let values = self
            .doc
            .get_all(obj, prop)
            .map_err(|_| refuse("malformed case document"))?;
        for (value, id) in values {
            self.check_value(&value, &id, depth)?;
        }
        Ok(())
    }

    fn check_value(&self, value: &Value<'_>, id: &ObjId, depth: usize) -> Result<()> {
        match value {
            Value::Object(_) => {
                if depth + 1 > MAX_DEPTH {
                    return Err(refuse("objects in the changes nest too deep"));
                }
                self.walk(id, depth + 1)
            }
            Value::Scalar(s) => match s.as_ref() {
                ScalarValue::Str(text) if text.len() > MAX_TEXT_BYTES => {
                    Err(refuse("a string in the changes is too long"))
                }
                ScalarValue::Bytes(bytes) | ScalarValue::Unknown { bytes, .. }
                    if bytes.len() > MAX_TEXT_BYTES =>
                {
                    Err(refuse("a value in the changes is too long"))
                }
                _ => Ok(()),
            },
        }
    }
}

/// The length limits of one scalar as the document iterator yields it.
fn check_scalar(value: &ScalarValueRef<'_>) -> Result<()> {
    match value {
        ScalarValueRef::Str(text) if text.len() > MAX_TEXT_BYTES => {
            Err(refuse("a string in the changes is too long"))
        }
        ScalarValueRef::Bytes(bytes) | ScalarValueRef::Unknown { bytes, .. }
            if bytes.len() > MAX_TEXT_BYTES =>
        {
            Err(refuse("a value in the changes is too long"))
        }
        _ => Ok(()),
    }
}
