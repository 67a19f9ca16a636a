//! Making edits to a case document. Every edit is validated first, made in one automerge
//! transaction that is rolled back on any error, and committed with its author and time.

use automerge::transaction::{CommitOptions, Transactable};
use automerge::{ActorId, AutoCommit, ObjId, ObjType, ReadDoc};
use time::OffsetDateTime;

use super::read::{child, format_date, format_time, scalar_str};
use super::{CaseDoc, DOC_SCHEMA};
use crate::error::{CoreError, Result};
use crate::ids::{CaseId, ChecklistItemId, NoteId, TaskId, UserId};
use crate::model::{
    Author, CaseStatus, CaseUpdate, ConsentStatus, LegalStatus, Limits, NewCase, NewNote, NewTask,
    RiskLevel, TaskUpdate, ValidationError,
};

pub(super) fn am(_: automerge::AutomergeError) -> CoreError {
    CoreError::Document("edit failed")
}

pub(super) fn map(doc: &mut AutoCommit, obj: &ObjId, key: &str) -> Result<ObjId> {
    match child(doc, obj, key, ObjType::Map) {
        Some(id) => Ok(id),
        None => doc.put_object(obj, key, ObjType::Map).map_err(am),
    }
}

fn put_set(doc: &mut AutoCommit, obj: &ObjId, key: &str, members: &[UserId]) -> Result<()> {
    let set = map(doc, obj, key)?;
    for member in members {
        doc.put(&set, member.to_string(), true).map_err(am)?;
    }
    Ok(())
}

/// Prefix of the keys of a note that name its editors: `editor:DEVICE` holds the editor's user.
pub(crate) const EDITOR_PREFIX: &str = "editor:";

/// The key of a note naming `device` as one of its editors.
pub(crate) fn editor_key(device: crate::ids::DeviceId) -> String {
    format!("{EDITOR_PREFIX}{device}")
}

impl CaseDoc {
    /// Runs `edit` as one change by `author` at `now`; on error nothing of it remains.
    pub(super) fn transact<T>(
        &mut self,
        author: Author,
        now: OffsetDateTime,
        what: &str,
        edit: impl FnOnce(&mut AutoCommit) -> Result<T>,
    ) -> Result<T> {
        // Every time an edit records (a note's written or edited time, a case's opening) is
        // this one: a clock outside the range a record may hold writes nothing.
        crate::model::time_in_range("the time of the edit", now)?;
        let result = register_author(&mut self.doc, author).and_then(|()| edit(&mut self.doc));
        let message = match self.on_behalf_of {
            Some(user) => format!("{what} by={user}"),
            None => what.to_owned(),
        };
        match result {
            Ok(value) => {
                self.doc.commit_with(
                    CommitOptions::default()
                        .with_message(message)
                        .with_time(now.unix_timestamp()),
                );
                Ok(value)
            }
            Err(e) => {
                self.doc.rollback();
                Err(e)
            }
        }
    }

    /// A new case document, written by `author` as replica `actor`.
    pub fn create(
        id: CaseId,
        new: &NewCase,
        author: Author,
        actor: &ActorId,
        now: OffsetDateTime,
    ) -> Result<Self> {
        new.validate()?;
        let mut doc = Self {
            id,
            doc: AutoCommit::new().with_actor(actor.clone()),
            on_behalf_of: None,
            checked: None,
            touched_notes: None,
        };
        doc.transact(author, now, "case.create", |d| {
            let root = automerge::ROOT;
            d.put(&root, "schema", DOC_SCHEMA).map_err(am)?;
            d.put(&root, "client_code", new.client_code.as_str())
                .map_err(am)?;
            d.put(&root, "status", CaseStatus::Open.as_str())
                .map_err(am)?;
            d.put(&root, "consent", new.consent.as_str()).map_err(am)?;
            d.put(&root, "created_at", format_time(now)?).map_err(am)?;
            put_set(d, &root, "assigned", &new.assigned_workers)?;
            d.put_object(&root, "notes", ObjType::Map).map_err(am)?;
            d.put_object(&root, "tasks", ObjType::Map).map_err(am)?;
            for key in super::plan::PLAN_MAPS {
                d.put_object(&root, key, ObjType::Map).map_err(am)?;
            }
            Ok(())
        })?;
        Ok(doc)
    }

    /// Adds a visit note; returns its id.
    pub fn add_note(
        &mut self,
        author: Author,
        new: &NewNote,
        now: OffsetDateTime,
    ) -> Result<NoteId> {
        new.validate()?;
        if let Some(task) = new.task {
            self.task_obj(task)?;
        }
        let id = NoteId::new();
        self.transact(author, now, "note.add", |d| {
            let notes = map(d, &automerge::ROOT, "notes")?;
            let note = d
                .put_object(&notes, id.to_string(), ObjType::Map)
                .map_err(am)?;
            d.put(&note, "author_user", author.user.to_string())
                .map_err(am)?;
            d.put(&note, "author_device", author.device.to_string())
                .map_err(am)?;
            d.put(&note, "written_at", format_time(now)?).map_err(am)?;
            d.put(&note, "kind", new.kind.as_str()).map_err(am)?;
            let body = d.put_object(&note, "body", ObjType::Text).map_err(am)?;
            d.splice_text(&body, 0, 0, &new.body).map_err(am)?;
            let tags = d.put_object(&note, "tags", ObjType::Map).map_err(am)?;
            for tag in &new.tags {
                d.put(&tags, tag.as_str(), true).map_err(am)?;
            }
            if let Some(task) = new.task {
                d.put(&note, "task", task.to_string()).map_err(am)?;
            }
            touch(d, now)
        })?;
        Ok(id)
    }

    /// Replaces a note's body with `body`, as the smallest splice that turns the old text into
    /// the new one, so that a concurrent edit elsewhere in the body survives the merge.
    pub fn edit_note_body(
        &mut self,
        author: Author,
        note: NoteId,
        body: &str,
        now: OffsetDateTime,
    ) -> Result<()> {
        crate::model::validate_body(body)?;
        let obj = self.note_obj(note)?;
        let text = child(&self.doc, &obj, "body", ObjType::Text)
            .ok_or(CoreError::Document("note body is not text"))?;
        self.transact(author, now, "note.edit", |d| {
            d.update_text(&text, body).map_err(am)?;
            d.put(&obj, "edited_at", format_time(now)?).map_err(am)?;
            // Each editor under a key of her own on the note itself (not in a nested map, which
            // two devices editing at once would each create, one hiding the other).
            d.put(&obj, editor_key(author.device), author.user.to_string())
                .map_err(am)?;
            touch(d, now)
        })
    }

    /// Dates a note the office has not received yet at `now`: a phone whose clock ran ahead when
    /// the note was written would otherwise send a note from the future, which the office
    /// refuses.
    pub fn redate_note(&mut self, author: Author, note: NoteId, now: OffsetDateTime) -> Result<()> {
        let obj = self.note_obj(note)?;
        self.transact(author, now, "note.redate", |d| {
            d.put(&obj, "written_at", format_time(now)?).map_err(am)?;
            touch(d, now)
        })
    }

    /// Adds an accompaniment task; returns its id.
    pub fn add_task(
        &mut self,
        author: Author,
        new: &NewTask,
        now: OffsetDateTime,
    ) -> Result<TaskId> {
        new.validate()?;
        let id = TaskId::new();
        let scheduled = format_time(new.scheduled_at)?;
        self.transact(author, now, "task.add", |d| {
            let tasks = map(d, &automerge::ROOT, "tasks")?;
            let task = d
                .put_object(&tasks, id.to_string(), ObjType::Map)
                .map_err(am)?;
            d.put(&task, "purpose", new.purpose.as_str()).map_err(am)?;
            d.put(&task, "office_kind", new.office_kind.as_str())
                .map_err(am)?;
            d.put(&task, "office_name", new.office_name.as_str())
                .map_err(am)?;
            d.put(&task, "office_address", new.office_address.as_str())
                .map_err(am)?;
            d.put(&task, "scheduled_at", scheduled).map_err(am)?;
            d.put(&task, "time_zone", new.time_zone.as_str())
                .map_err(am)?;
            d.put(&task, "status", crate::model::TaskStatus::Planned.as_str())
                .map_err(am)?;
            put_set(d, &task, "assignees", &new.assignees)?;
            let list = d.put_object(&task, "checklist", ObjType::Map).map_err(am)?;
            for label in &new.checklist {
                add_item(d, &list, label)?;
            }
            Ok(())
        })?;
        Ok(id)
    }

    /// Changes some fields of a task. Writing a field also resolves any conflict on it.
    pub fn update_task(
        &mut self,
        author: Author,
        task: TaskId,
        update: &TaskUpdate,
        now: OffsetDateTime,
    ) -> Result<()> {
        let current = self.task(task)?;
        update.validate(&current)?;
        if update.is_empty() {
            return Ok(());
        }
        let obj = self.task_obj(task)?;
        self.transact(author, now, "task.update", |d| {
            if let Some(status) = update.status {
                d.put(&obj, "status", status.as_str()).map_err(am)?;
            }
            if let Some(outcome) = &update.outcome {
                d.put(&obj, "outcome", outcome.as_str()).map_err(am)?;
            }
            if let Some(date) = update.follow_up {
                d.put(&obj, "follow_up", format_date(date)?).map_err(am)?;
            }
            if let Some(at) = update.scheduled_at {
                d.put(&obj, "scheduled_at", format_time(at)?).map_err(am)?;
            }
            Ok(())
        })
    }

    /// Ticks or unticks one checklist item.
    pub fn set_checklist_item(
        &mut self,
        author: Author,
        task: TaskId,
        item: ChecklistItemId,
        done: bool,
        now: OffsetDateTime,
    ) -> Result<()> {
        let obj = self.task_obj(task)?;
        let list = child(&self.doc, &obj, "checklist", ObjType::Map)
            .ok_or(CoreError::ChecklistItemNotFound)?;
        let entry = child(&self.doc, &list, &item.to_string(), ObjType::Map)
            .ok_or(CoreError::ChecklistItemNotFound)?;
        self.transact(author, now, "checklist.tick", |d| {
            d.put(&entry, "done", done).map_err(am)
        })
    }

    /// Adds an item to a task's checklist; returns its id.
    pub fn add_checklist_item(
        &mut self,
        author: Author,
        task: TaskId,
        label: &str,
        now: OffsetDateTime,
    ) -> Result<ChecklistItemId> {
        crate::model::required_text("checklist item", label, Limits::SHORT_TEXT_MAX)?;
        let current = self.task(task)?;
        if current.checklist.len() >= Limits::CHECKLIST_MAX {
            return Err(ValidationError::TooMany {
                field: "checklist",
                count: current.checklist.len() + 1,
                max: Limits::CHECKLIST_MAX,
            }
            .into());
        }
        let obj = self.task_obj(task)?;
        self.transact(author, now, "checklist.add", |d| {
            let list = map(d, &obj, "checklist")?;
            add_item(d, &list, label)
        })
    }

    /// Sets the case's status.
    pub fn set_status(
        &mut self,
        author: Author,
        status: CaseStatus,
        now: OffsetDateTime,
    ) -> Result<()> {
        self.transact(author, now, "case.status", |d| {
            d.put(&automerge::ROOT, "status", status.as_str())
                .map_err(am)
        })
    }

    /// Records the client's consent.
    pub fn set_consent(
        &mut self,
        author: Author,
        consent: ConsentStatus,
        now: OffsetDateTime,
    ) -> Result<()> {
        self.transact(author, now, "case.consent", |d| {
            d.put(&automerge::ROOT, "consent", consent.as_str())
                .map_err(am)
        })
    }

    /// Changes the sensitive fields of the case (consent, risk level, legal status). Writing a
    /// field supersedes every concurrent value this replica has seen.
    pub fn update_case(
        &mut self,
        author: Author,
        update: &CaseUpdate,
        now: OffsetDateTime,
    ) -> Result<()> {
        if update.is_empty() {
            return Ok(());
        }
        self.transact(author, now, "case.update", |d| {
            let root = automerge::ROOT;
            if let Some(consent) = update.consent {
                d.put(&root, "consent", consent.as_str()).map_err(am)?;
            }
            if let Some(risk) = update.risk_level {
                d.put(&root, "risk_level", risk.as_str()).map_err(am)?;
            }
            if let Some(legal) = update.legal_status {
                d.put(&root, "legal_status", legal.as_str()).map_err(am)?;
            }
            Ok(())
        })
    }

    /// Settles a conflict on a sensitive field (see
    /// [`crate::document::Conflict::is_sensitive`]) of the case (`task` = `None`) or of one of its
    /// tasks: writes `value` (one of the concurrent values or a new one, checked like any edit of
    /// that field) over every concurrent value this replica holds, so that once the change has
    /// reached a replica the field holds that one value there. Any other field, or a value the
    /// field does not accept, is a typed error and changes nothing.
    pub fn resolve_conflict(
        &mut self,
        author: Author,
        task: Option<TaskId>,
        field: &str,
        value: &str,
        now: OffsetDateTime,
    ) -> Result<()> {
        let on = task.map_or(super::ConflictOn::Case, super::ConflictOn::Task);
        self.resolve_conflict_on(author, on, field, value, now)
    }

    /// [`CaseDoc::resolve_conflict`] for a field of the case, a task or a goal of the recovery
    /// plan (its status).
    pub fn resolve_conflict_on(
        &mut self,
        author: Author,
        on: super::ConflictOn,
        field: &str,
        value: &str,
        now: OffsetDateTime,
    ) -> Result<()> {
        if !super::conflict::is_sensitive_on(on, field) {
            return Err(ValidationError::UnknownValue {
                field: "conflict field",
            }
            .into());
        }
        match on {
            super::ConflictOn::Goal(goal) => {
                // The only sensitive goal field is the status.
                let update = crate::model::GoalUpdate {
                    status: Some(value.parse()?),
                    ..Default::default()
                };
                self.update_goal(author, goal, &update, now)
            }
            super::ConflictOn::Case => {
                let mut update = CaseUpdate::default();
                match field {
                    "consent" => update.consent = Some(value.parse::<ConsentStatus>()?),
                    "risk_level" => update.risk_level = Some(value.parse::<RiskLevel>()?),
                    _ => update.legal_status = Some(value.parse::<LegalStatus>()?),
                }
                self.update_case(author, &update, now)
            }
            super::ConflictOn::Task(task) => {
                // The only sensitive task field is the outcome.
                let update = TaskUpdate {
                    outcome: Some(value.to_owned()),
                    ..TaskUpdate::default()
                };
                self.update_task(author, task, &update, now)
            }
        }
    }

    /// Assigns a worker to the case, or removes them.
    pub fn set_assigned(
        &mut self,
        author: Author,
        worker: UserId,
        assigned: bool,
        now: OffsetDateTime,
    ) -> Result<()> {
        self.transact(author, now, "case.assign", |d| {
            let set = map(d, &automerge::ROOT, "assigned")?;
            if assigned {
                d.put(&set, worker.to_string(), true).map_err(am)
            } else {
                d.delete(&set, worker.to_string()).map_err(am)
            }
        })
    }
}

/// Records note activity at `now` in the root's `last_activity`, so that a list's "last
/// activity" needs no walk over every note. Concurrent values are all kept by automerge and the
/// reader takes the latest of them.
pub(super) fn touch(d: &mut AutoCommit, now: OffsetDateTime) -> Result<()> {
    let latest = super::read::latest_time(d, &automerge::ROOT, "last_activity");
    if latest.is_none_or(|t| t < now) {
        d.put(&automerge::ROOT, "last_activity", format_time(now)?)
            .map_err(am)?;
    }
    Ok(())
}

fn add_item(d: &mut AutoCommit, list: &ObjId, label: &str) -> Result<ChecklistItemId> {
    let id = ChecklistItemId::new();
    // Where it goes in the list: ids are random, so the order items were added in is kept
    // here (items added concurrently on two phones share a place and follow their ids).
    let pos = d.length(list) as u64;
    let item = d
        .put_object(list, id.to_string(), ObjType::Map)
        .map_err(am)?;
    d.put(&item, "pos", pos).map_err(am)?;
    d.put(&item, "label", label).map_err(am)?;
    d.put(&item, "done", false).map_err(am)?;
    Ok(id)
}

/// Records which user and device this replica's actor belongs to, once per actor.
fn register_author(d: &mut AutoCommit, author: Author) -> Result<()> {
    let actor = d.get_actor().to_hex_string();
    let authors = map(d, &automerge::ROOT, "authors")?;
    if let Some(entry) = child(d, &authors, &actor, ObjType::Map) {
        let same = scalar_str(d, &entry, "user") == Some(author.user.to_string())
            && scalar_str(d, &entry, "device") == Some(author.device.to_string());
        if same {
            return Ok(());
        }
    }
    let entry = d.put_object(&authors, actor, ObjType::Map).map_err(am)?;
    d.put(&entry, "user", author.user.to_string()).map_err(am)?;
    d.put(&entry, "device", author.device.to_string())
        .map_err(am)?;
    let _ = d.length(&entry);
    Ok(())
}
