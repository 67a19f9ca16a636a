//! Reading the merged state of a case document into model values.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::str::FromStr;

use automerge::{
    AutoCommit, ObjId, ObjType, ReadDoc, ScalarValue, ScalarValueRef, Value, ValueRef,
};
use time::format_description::well_known::Rfc3339;
use time::{Date, OffsetDateTime};

use super::CaseDoc;
use crate::error::{CoreError, Result};
use crate::ids::{ChecklistItemId, DeviceId, NoteId, TaskId, UserId};
use crate::model::{Author, Case, CaseSummary, ChecklistItem, Task, TaskSummary, VisitNote};

const DATE_FORMAT: &[time::format_description::BorrowedFormatItem<'static>] =
    time::macros::format_description!("[year]-[month]-[day]");

fn corrupt<E>(_: E) -> CoreError {
    CoreError::Document("malformed case document")
}

/// A scalar string field, if present.
pub(crate) fn scalar_str(doc: &AutoCommit, obj: &ObjId, key: &str) -> Option<String> {
    match doc.get(obj, key).ok()?? {
        (Value::Scalar(s), _) => match s.as_ref() {
            ScalarValue::Str(s) => Some(s.to_string()),
            _ => None,
        },
        (Value::Object(ObjType::Text), id) => doc.text(&id).ok(),
        _ => None,
    }
}

/// A scalar integer field, if present.
pub(crate) fn scalar_i64(doc: &AutoCommit, obj: &ObjId, key: &str) -> Option<i64> {
    match doc.get(obj, key).ok()?? {
        (Value::Scalar(s), _) => match s.as_ref() {
            ScalarValue::Int(i) => Some(*i),
            ScalarValue::Uint(u) => i64::try_from(*u).ok(),
            _ => None,
        },
        _ => None,
    }
}

/// A child object of the given type, if present.
pub(crate) fn child(doc: &AutoCommit, obj: &ObjId, key: &str, ty: ObjType) -> Option<ObjId> {
    match doc.get(obj, key).ok()?? {
        (Value::Object(t), id) if t == ty => Some(id),
        _ => None,
    }
}

fn required_str(doc: &AutoCommit, obj: &ObjId, key: &str) -> Result<String> {
    scalar_str(doc, obj, key).ok_or(CoreError::Document("case document lacks a field"))
}

fn parse<T: FromStr>(doc: &AutoCommit, obj: &ObjId, key: &str) -> Result<T> {
    required_str(doc, obj, key)?.parse().map_err(corrupt)
}

pub(crate) fn parse_time(text: &str) -> Result<OffsetDateTime> {
    OffsetDateTime::parse(text, &Rfc3339).map_err(corrupt)
}

pub(crate) fn format_time(at: OffsetDateTime) -> Result<String> {
    at.format(&Rfc3339)
        .map_err(|_| CoreError::Invalid(crate::model::ValidationError::InvalidDateTime))
}

pub(crate) fn parse_date(text: &str) -> Result<Date> {
    Date::parse(text, DATE_FORMAT).map_err(corrupt)
}

pub(crate) fn format_date(date: Date) -> Result<String> {
    date.format(DATE_FORMAT)
        .map_err(|_| CoreError::Invalid(crate::model::ValidationError::InvalidDateTime))
}

/// The latest of the concurrent time values a field holds, if any parse.
pub(crate) fn latest_time(doc: &AutoCommit, obj: &ObjId, key: &str) -> Option<OffsetDateTime> {
    doc.get_all(obj, key)
        .ok()?
        .into_iter()
        .filter_map(|(v, _)| match v {
            Value::Scalar(s) => match s.as_ref() {
                ScalarValue::Str(t) => parse_time(t).ok(),
                _ => None,
            },
            _ => None,
        })
        .max()
}

fn optional_time(doc: &AutoCommit, obj: &ObjId, key: &str) -> Result<Option<OffsetDateTime>> {
    scalar_str(doc, obj, key)
        .map(|t| parse_time(&t))
        .transpose()
}

/// The keys of a map object parsed as ids or enum names, sorted, skipping any that do not parse.
pub(super) fn key_set<T: FromStr + Ord>(doc: &AutoCommit, obj: Option<ObjId>) -> Vec<T> {
    let Some(obj) = obj else { return Vec::new() };
    let mut out: Vec<T> = doc.keys(&obj).filter_map(|k| k.parse().ok()).collect();
    out.sort();
    out
}

/// One map object's fields, read in one scan of automerge's operations, where each `get` seeks
/// into them anew (a case of 20 notes took about 1.2 ms to read field by field). Each key holds
/// its winning value, as `get` gives it.
pub(super) struct Fields<'a> {
    doc: &'a AutoCommit,
    pub(super) items: Vec<(Cow<'a, str>, ValueRef<'a>, ObjId)>,
}

impl<'a> Fields<'a> {
    pub(super) fn of(doc: &'a AutoCommit, obj: &ObjId) -> Self {
        let items = doc
            .map_range(obj, ..)
            .map(|m| {
                let id = m.id();
                (m.key, m.value, id)
            })
            .collect();
        Fields { doc, items }
    }

    pub(super) fn value(&self, key: &str) -> Option<(&ValueRef<'a>, &ObjId)> {
        self.items
            .iter()
            .find(|(k, _, _)| k == key)
            .map(|(_, v, id)| (v, id))
    }

    /// A string field (a scalar, or a text object read whole), if present.
    pub(super) fn str(&self, key: &str) -> Option<String> {
        match self.value(key)? {
            (ValueRef::Scalar(ScalarValueRef::Str(s)), _) => Some(s.to_string()),
            (ValueRef::Object(ObjType::Text), id) => self.doc.text(id).ok(),
            _ => None,
        }
    }

    pub(super) fn required_str(&self, key: &str) -> Result<String> {
        self.str(key)
            .ok_or(CoreError::Document("case document lacks a field"))
    }

    pub(super) fn parse<T: FromStr>(&self, key: &str) -> Result<T> {
        self.required_str(key)?.parse().map_err(corrupt)
    }

    pub(super) fn optional_enum<T: FromStr>(&self, key: &str) -> Result<Option<T>> {
        self.str(key)
            .map(|v| v.parse().map_err(corrupt))
            .transpose()
    }

    pub(super) fn time(&self, key: &str) -> Result<OffsetDateTime> {
        parse_time(&self.required_str(key)?)
    }

    pub(super) fn optional_time(&self, key: &str) -> Result<Option<OffsetDateTime>> {
        self.str(key).map(|t| parse_time(&t)).transpose()
    }

    pub(super) fn bool(&self, key: &str) -> bool {
        matches!(
            self.value(key),
            Some((ValueRef::Scalar(ScalarValueRef::Boolean(true)), _))
        )
    }

    /// A child object of the given type, if present.
    pub(super) fn child(&self, key: &str, ty: ObjType) -> Option<ObjId> {
        match self.value(key)? {
            (ValueRef::Object(t), id) if *t == ty => Some(id.clone()),
            _ => None,
        }
    }

    /// Every field holding an object of type `ty`, with its key: a map of notes, tasks or
    /// checklist items read in one scan.
    pub(super) fn children(&self, ty: ObjType) -> impl Iterator<Item = (&str, &ObjId)> {
        self.items.iter().filter_map(move |(k, v, id)| match v {
            ValueRef::Object(t) if *t == ty => Some((k.as_ref(), id)),
            _ => None,
        })
    }
}

impl CaseDoc {
    /// The author registered for an automerge actor, if any.
    pub(crate) fn author_of_actor(&self, actor_hex: &str) -> Option<Author> {
        let authors = child(&self.doc, &automerge::ROOT, "authors", ObjType::Map)?;
        let entry = child(&self.doc, &authors, actor_hex, ObjType::Map)?;
        Some(Author {
            user: scalar_str(&self.doc, &entry, "user")?.parse().ok()?,
            device: scalar_str(&self.doc, &entry, "device")?.parse().ok()?,
        })
    }

    pub(crate) fn notes_obj(&self) -> Option<ObjId> {
        child(&self.doc, &automerge::ROOT, "notes", ObjType::Map)
    }

    pub(crate) fn tasks_obj(&self) -> Option<ObjId> {
        child(&self.doc, &automerge::ROOT, "tasks", ObjType::Map)
    }

    pub(crate) fn note_obj(&self, id: NoteId) -> Result<ObjId> {
        let notes = self.notes_obj().ok_or(CoreError::NoteNotFound)?;
        child(&self.doc, &notes, &id.to_string(), ObjType::Map).ok_or(CoreError::NoteNotFound)
    }

    pub(crate) fn task_obj(&self, id: TaskId) -> Result<ObjId> {
        let tasks = self.tasks_obj().ok_or(CoreError::TaskNotFound)?;
        child(&self.doc, &tasks, &id.to_string(), ObjType::Map).ok_or(CoreError::TaskNotFound)
    }

    pub(super) fn read_note(&self, id: NoteId, obj: &ObjId) -> Result<VisitNote> {
        let doc = &self.doc;
        let f = Fields::of(doc, obj);
        let mut tags = key_set(doc, f.child("tags", ObjType::Map));
        tags.dedup();
        let mut edited_by = Vec::new();
        for (key, user, _) in &f.items {
            let (Some(device), ValueRef::Scalar(ScalarValueRef::Str(user))) =
                (key.strip_prefix(super::write::EDITOR_PREFIX), user)
            else {
                continue;
            };
            if let (Ok(device), Ok(user)) = (device.parse(), user.parse()) {
                edited_by.push(Author { user, device });
            }
        }
        edited_by.sort_by_key(|a| (a.user, a.device));
        Ok(VisitNote {
            id,
            author: Author {
                user: f.parse::<UserId>("author_user")?,
                device: f.parse::<DeviceId>("author_device")?,
            },
            written_at: f.time("written_at")?,
            edited_at: f.optional_time("edited_at")?,
            edited_by,
            kind: f.parse("kind")?,
            body: f.required_str("body")?,
            tags,
            task: f.str("task").and_then(|t| t.parse().ok()),
        })
    }

    fn read_task(&self, id: TaskId, obj: &ObjId) -> Result<Task> {
        let doc = &self.doc;
        let f = Fields::of(doc, obj);
        let mut checklist = Vec::new();
        if let Some(list) = f.child("checklist", ObjType::Map) {
            let items = Fields::of(doc, &list);
            let mut ids: Vec<(u64, ChecklistItemId, Fields<'_>)> = items
                .children(ObjType::Map)
                .filter_map(|(k, item)| {
                    let fields = Fields::of(doc, item);
                    // Items from before their place was kept go last, by id.
                    let pos = match fields.value("pos") {
                        Some((ValueRef::Scalar(ScalarValueRef::Uint(p)), _)) => *p,
                        Some((ValueRef::Scalar(ScalarValueRef::Int(p)), _)) => {
                            u64::try_from(*p).unwrap_or(u64::MAX)
                        }
                        _ => u64::MAX,
                    };
                    Some((pos, k.parse().ok()?, fields))
                })
                .collect();
            ids.sort_by_key(|(pos, id, _)| (*pos, *id));
            for (_, item_id, item) in ids {
                checklist.push(ChecklistItem {
                    id: item_id,
                    label: item.required_str("label")?,
                    done: item.bool("done"),
                });
            }
        }
        Ok(Task {
            id,
            purpose: f.required_str("purpose")?,
            office_kind: f.parse("office_kind")?,
            office_name: f.required_str("office_name")?,
            office_address: f.str("office_address").unwrap_or_default(),
            scheduled_at: f.time("scheduled_at")?,
            time_zone: f.required_str("time_zone")?,
            assignees: key_set(doc, f.child("assignees", ObjType::Map)),
            status: f.parse("status")?,
            checklist,
            outcome: f.str("outcome"),
            follow_up: f.str("follow_up").map(|d| parse_date(&d)).transpose()?,
        })
    }

    /// One note as it stands.
    pub fn note(&self, id: NoteId) -> Result<VisitNote> {
        let obj = self.note_obj(id)?;
        self.read_note(id, &obj)
    }

    /// One task as it stands.
    pub fn task(&self, id: TaskId) -> Result<Task> {
        let obj = self.task_obj(id)?;
        self.read_task(id, &obj)
    }

    /// Every note, oldest first (by id within the same moment).
    pub fn notes(&self) -> Result<Vec<VisitNote>> {
        let mut notes: Vec<VisitNote> = self.notes_by_key()?.into_values().collect();
        notes.sort_by_key(|n| (n.written_at, n.id));
        Ok(notes)
    }

    /// Every note by its key in the notes map (the maps whose key is a note id); an error when
    /// one of them does not read as a note.
    pub(super) fn notes_by_key(&self) -> Result<BTreeMap<String, VisitNote>> {
        let Some(notes) = self.notes_obj() else {
            return Ok(BTreeMap::new());
        };
        let notes = Fields::of(&self.doc, &notes);
        let mut out = BTreeMap::new();
        for (key, obj) in notes.children(ObjType::Map) {
            if let Ok(id) = key.parse::<NoteId>() {
                out.insert(key.to_owned(), self.read_note(id, obj)?);
            }
        }
        Ok(out)
    }

    /// Every task, earliest first.
    pub fn tasks(&self) -> Result<Vec<Task>> {
        let Some(tasks) = self.tasks_obj() else {
            return Ok(Vec::new());
        };
        let tasks = Fields::of(&self.doc, &tasks);
        let mut out = Vec::new();
        for (key, obj) in tasks.children(ObjType::Map) {
            if let Ok(id) = key.parse::<TaskId>() {
                out.push(self.read_task(id, obj)?);
            }
        }
        out.sort_by_key(|t| (t.scheduled_at, t.id));
        Ok(out)
    }

    /// The whole case as it stands after every merge.
    pub fn case(&self) -> Result<Case> {
        Ok(Case {
            notes: self.notes()?,
            tasks: self.tasks()?,
            plan: self.plan()?,
            ..self.case_fields()?
        })
    }

    /// The case without its notes (left empty): its own fields, profile, tasks and plan. What
    /// the office's report index reads at every store of a case, so that its cost follows the
    /// plan and tasks, not the notes, which it never counts.
    pub fn case_without_notes(&self) -> Result<Case> {
        Ok(Case {
            tasks: self.tasks()?,
            plan: self.plan()?,
            ..self.case_fields()?
        })
    }

    /// The case's own fields and profile, without its notes, tasks and plan (left empty): what a change to the
    /// root of the document can break.
    pub(crate) fn case_fields(&self) -> Result<Case> {
        let doc = &self.doc;
        let root = Fields::of(doc, &automerge::ROOT);
        Ok(Case {
            id: self.id,
            client_code: root.required_str("client_code")?,
            status: root.parse("status")?,
            consent: root.parse("consent")?,
            // Absent from documents written before these fields existed.
            risk_level: root
                .optional_enum("risk_level")?
                .unwrap_or(crate::model::RiskLevel::NotAssessed),
            legal_status: root
                .optional_enum("legal_status")?
                .unwrap_or(crate::model::LegalStatus::Unknown),
            assigned_workers: key_set(doc, root.child("assigned", ObjType::Map)),
            created_at: root.time("created_at")?,
            notes: Vec::new(),
            tasks: Vec::new(),
            plan: crate::model::Plan::default(),
            profile: super::plan::read_profile(doc),
        })
    }

    /// The case's status, read without materialising the case.
    pub fn status(&self) -> Result<crate::model::CaseStatus> {
        parse(&self.doc, &automerge::ROOT, "status")
    }

    /// The summary that list screens need, computed without reading note bodies.
    pub fn summary(&self) -> Result<CaseSummary> {
        let doc = &self.doc;
        let root = automerge::ROOT;
        let client_code = required_str(doc, &root, "client_code")?;
        let notes = self.notes_obj();
        let note_count = notes.as_ref().map_or(0, |n| doc.length(n)) as u32;
        let mut last_activity = latest_time(doc, &root, "last_activity");
        if let (None, Some(notes)) = (last_activity, notes) {
            // Documents written before `last_activity` existed: walk the notes once.
            for key in doc.keys(&notes) {
                if let Some(obj) = child(doc, &notes, &key, ObjType::Map) {
                    let at = optional_time(doc, &obj, "edited_at")?.or(optional_time(
                        doc,
                        &obj,
                        "written_at",
                    )?);
                    last_activity = last_activity.max(at);
                }
            }
        }
        let tasks = self
            .tasks()?
            .into_iter()
            .map(|t| TaskSummary {
                case_id: self.id,
                client_code: client_code.clone(),
                task_id: t.id,
                checklist_done: t.checklist.iter().filter(|i| i.done).count() as u32,
                checklist_total: t.checklist.len() as u32,
                purpose: t.purpose,
                office_kind: t.office_kind,
                office_name: t.office_name,
                office_address: t.office_address,
                scheduled_at: t.scheduled_at,
                time_zone: t.time_zone,
                status: t.status,
                assignees: t.assignees,
            })
            .collect();
        Ok(CaseSummary {
            id: self.id,
            client_code,
            status: parse(doc, &root, "status")?,
            assigned_workers: key_set(doc, child(doc, &root, "assigned", ObjType::Map)),
            note_count,
            last_activity,
            tasks,
        })
    }

    /// The author of every change in the document's history, in order (`None` for a change
    /// whose actor never registered, which fieldcase replicas always do).
    pub fn change_authors(&mut self) -> Vec<Option<Author>> {
        let actors: Vec<String> = self
            .doc
            .get_changes(&[])
            .iter()
            .map(|c| c.actor_id().to_hex_string())
            .collect();
        actors.iter().map(|a| self.author_of_actor(a)).collect()
    }

    pub(crate) fn inner(&self) -> &AutoCommit {
        &self.doc
    }
}
