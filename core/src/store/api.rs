//! The phone-shaped API: what the screens need (today's tasks, a case's timeline, writing and
//! editing notes, updating tasks and checklists, the changes waiting to sync).

use std::collections::BTreeSet;

use rusqlite::params;
use serde::{Deserialize, Serialize};
use time::{Date, Duration, OffsetDateTime, Time, UtcOffset};

use super::records::Sealer;
use super::{Inner, Store, Unlocked};
use crate::document::{CaseDoc, Conflict, HistoryEntry};
use crate::error::{CoreError, Result};
use crate::ids::{CaseId, ChecklistItemId, GoalId, NoteId, ReviewId, ServiceId, TaskId};
use crate::model::{
    Author, Case, CaseSummary, CaseUpdate, ClientProfile, GoalUpdate, NewCase, NewGoal, NewNote,
    NewReview, NewService, NewTask, Plan, Task, TaskStatus, TaskSummary, TaskUpdate, VisitNote,
};

/// One entry of a case's timeline, in time order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TimelineEntry {
    /// A visit note, placed at the time it was written.
    Note(VisitNote),
    /// An accompaniment task, placed at its scheduled time.
    Task(Task),
}

impl TimelineEntry {
    /// The time the entry is placed at.
    pub fn at(&self) -> OffsetDateTime {
        match self {
            TimelineEntry::Note(n) => n.written_at,
            TimelineEntry::Task(t) => t.scheduled_at,
        }
    }
}

/// A local edit that has not reached the office yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingChange {
    /// The case edited.
    pub case_id: CaseId,
    /// What was done (`note.add`, `task.update`, ...).
    pub action: String,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

impl Store {
    /// Runs `f` with the open connection, the unlocked state and a sealer.
    /// Case data access: the store must be unlocked and, if enrolled, hold a valid lease.
    pub(super) fn with_unlocked<T>(
        &self,
        f: impl FnOnce(&mut rusqlite::Connection, &mut Unlocked, &uuid::Uuid) -> Result<T>,
    ) -> Result<T> {
        let wall = self.options.clock.now().unix_timestamp();
        let elapsed = self.options.clock.elapsed();
        self.with_unlocked_for_sync(|conn, u, store_id| {
            if let Some(gate) = u.lease.as_mut() {
                // Trusted time, not the wall clock: see `super::lease`.
                let now = gate.trusted_now(wall, elapsed);
                if gate.mark_due() {
                    let sealer = Sealer {
                        key: &u.key,
                        store_id,
                    };
                    gate.store(conn, &sealer)?;
                }
                gate.check(now)?;
            }
            f(conn, u, store_id)
        })
    }

    /// Takes the office's time (Unix seconds), read from the answer of a sync that just
    /// succeeded over the pinned connection, as the trusted time (see `super::lease`), and
    /// writes it with the lease.
    pub(crate) fn trust_office_time(&self, office_now: i64) -> Result<()> {
        let elapsed = self.options.clock.elapsed();
        self.with_unlocked_for_sync(|conn, u, store_id| {
            if let Some(gate) = u.lease.as_mut() {
                gate.trust_office_time(office_now, elapsed);
                let sealer = Sealer {
                    key: &u.key,
                    store_id,
                };
                gate.store(conn, &sealer)?;
            }
            Ok(())
        })
    }

    /// The trusted time (Unix seconds) an enrolled store checks its lease against: see
    /// `super::lease`. `None` for a store with no lease gate.
    pub fn trusted_time(&self) -> Result<Option<i64>> {
        let wall = self.options.clock.now().unix_timestamp();
        let elapsed = self.options.clock.elapsed();
        self.with_unlocked_for_sync(|_, u, _| {
            Ok(u.lease.as_mut().map(|g| {
                g.trusted_now(wall, elapsed);
                g.mark()
            }))
        })
    }

    /// Access for sync and the device credential: unlocked, lease not required (a sync is what
    /// renews the lease, or wipes a revoked device).
    pub(super) fn with_unlocked_for_sync<T>(
        &self,
        f: impl FnOnce(&mut rusqlite::Connection, &mut Unlocked, &uuid::Uuid) -> Result<T>,
    ) -> Result<T> {
        let mut guard = self.guard()?;
        let Inner {
            conn,
            keys,
            unlocked,
            ..
        } = guard.as_mut().ok_or(CoreError::NoStore)?;
        let unlocked = unlocked.as_mut().ok_or(CoreError::Locked)?;
        f(conn, unlocked, &keys.store_id)
    }

    /// Who this store belongs to: the enrolled user and this device.
    pub fn author(&self) -> Result<Author> {
        self.with_unlocked_for_sync(|_, u, _| Ok(u.author))
    }

    /// When the offline lease runs out (Unix seconds), for an enrolled store that holds one.
    pub fn lease_expires_at(&self) -> Result<Option<i64>> {
        self.with_unlocked_for_sync(|_, u, _| Ok(u.lease.as_ref().and_then(|g| g.expires_at())))
    }

    /// Makes one edit to a case and persists it in one transaction: the change, the refreshed
    /// index row and an outbox entry. Returns after the commit.
    fn edit_case<T>(
        &self,
        case: CaseId,
        action: &'static str,
        edit: impl FnOnce(&mut CaseDoc, Author, OffsetDateTime) -> Result<T>,
    ) -> Result<T> {
        let now = self.options.clock.now();
        let compact_after = self.options.compact_after;
        self.with_unlocked(|conn, u, store_id| {
            edit_loaded(conn, u, store_id, compact_after, (case, action, now), edit)
        })
    }

    /// Dates at now the notes this phone wrote that the office has not received and that lie
    /// past the clock-skew window ahead of this phone's clock (it ran ahead when they were
    /// written, and is right now: a sync needs it within the window of the office's). The
    /// office refuses a note from the future, so without this such a note would hold back every
    /// later sync. Runs before each sync; returns how many notes it re-dated.
    pub fn redate_future_notes(&self) -> Result<usize> {
        let now = self.options.clock.now();
        let compact_after = self.options.compact_after;
        let limit = now + Duration::seconds(crate::protocol::TIMESTAMP_WINDOW_SECS / 2);
        self.with_unlocked_for_sync(|conn, u, store_id| {
            // Only cases with an edit made past the window can hold such a note: a note is
            // dated with the time of the edit that wrote it, and that edit's outbox entry stays
            // until the office accepts the case. A case offered again after the office was
            // restored may hold notes whose entries went with the old office: those are read.
            let cases: BTreeSet<CaseId> = {
                let sealer = Sealer {
                    key: &u.key,
                    store_id,
                };
                read_outbox(conn, &sealer)?
                    .into_iter()
                    .filter(|p| p.at > limit || p.action == super::sync::OFFER_AGAIN)
                    .map(|p| p.case_id)
                    .collect()
            };
            let mut redated = 0;
            for case in cases {
                let ahead: Vec<NoteId> = {
                    let sealer = Sealer {
                        key: &u.key,
                        store_id,
                    };
                    let known = super::sync::server_heads(conn, &sealer, case)?;
                    let doc = u.docs.get_or_load(conn, &sealer, &u.actor, case)?;
                    let at_office = doc.note_keys_at(&known);
                    doc.notes()?
                        .into_iter()
                        .filter(|n| n.author == u.author && n.written_at > limit)
                        .filter(|n| !at_office.contains(&n.id.to_string()))
                        .map(|n| n.id)
                        .collect()
                };
                for note in ahead {
                    edit_loaded(
                        conn,
                        u,
                        store_id,
                        compact_after,
                        (case, "note.redate", now),
                        |doc, author, now| doc.redate_note(author, note, now),
                    )?;
                    redated += 1;
                }
            }
            Ok(redated)
        })
    }

    /// Opens a new case (at the office, or on a phone for intake) and returns its id.
    pub fn create_case(&self, new: &NewCase) -> Result<CaseId> {
        let now = self.options.clock.now();
        self.with_unlocked(|conn, u, store_id| {
            let sealer = Sealer {
                key: &u.key,
                store_id,
            };
            let id = CaseId::new();
            let mut doc = CaseDoc::create(id, new, u.author, &u.actor, now)?;
            let tx = conn.transaction()?;
            sealer.write_snapshot(&tx, &mut doc)?;
            sealer.write_index(&tx, &doc)?;
            push_outbox(&tx, &sealer, id, "case.create", now)?;
            tx.commit()?;
            u.docs.insert(doc);
            Ok(id)
        })
    }

    /// A whole case.
    pub fn case(&self, case: CaseId) -> Result<Case> {
        self.read_case(case, |doc| doc.case())
    }

    /// The heads (latest change hashes) of a case as this device holds it, sorted: two replicas
    /// with equal heads hold the same history.
    pub fn heads(&self, case: CaseId) -> Result<Vec<automerge::ChangeHash>> {
        self.read_case(case, |doc| {
            let mut heads = doc.heads();
            heads.sort();
            Ok(heads)
        })
    }

    /// Runs `read` on a case document, loading it if needed.
    fn read_case<T>(
        &self,
        case: CaseId,
        read: impl FnOnce(&mut CaseDoc) -> Result<T>,
    ) -> Result<T> {
        self.with_unlocked(|conn, u, store_id| {
            let sealer = Sealer {
                key: &u.key,
                store_id,
            };
            read(u.docs.get_or_load(conn, &sealer, &u.actor, case)?)
        })
    }

    /// A case's notes and tasks in time order.
    pub fn timeline(&self, case: CaseId) -> Result<Vec<TimelineEntry>> {
        let case = self.case(case)?;
        let mut entries: Vec<TimelineEntry> = case
            .notes
            .into_iter()
            .map(TimelineEntry::Note)
            .chain(case.tasks.into_iter().map(TimelineEntry::Task))
            .collect();
        entries.sort_by_key(|e| e.at());
        Ok(entries)
    }

    /// Fields of the case and its tasks that hold concurrent values, with their authors.
    pub fn conflicts(&self, case: CaseId) -> Result<Vec<Conflict>> {
        self.read_case(case, |doc| doc.conflicts())
    }

    /// Writes a visit note; durable once this returns.
    pub fn write_note(&self, case: CaseId, note: &NewNote) -> Result<NoteId> {
        self.edit_case(case, "note.add", |doc, author, now| {
            doc.add_note(author, note, now)
        })
    }

    /// Replaces a note's body (merged character-wise with concurrent edits).
    pub fn edit_note(&self, case: CaseId, note: NoteId, body: &str) -> Result<()> {
        self.edit_case(case, "note.edit", |doc, author, now| {
            doc.edit_note_body(author, note, body, now)
        })
    }

    /// Plans an accompaniment task.
    pub fn add_task(&self, case: CaseId, task: &NewTask) -> Result<TaskId> {
        self.edit_case(case, "task.add", |doc, author, now| {
            doc.add_task(author, task, now)
        })
    }

    /// Changes a task's status, outcome, follow-up or time.
    pub fn update_task(&self, case: CaseId, task: TaskId, update: &TaskUpdate) -> Result<()> {
        self.edit_case(case, "task.update", |doc, author, now| {
            doc.update_task(author, task, update, now)
        })
    }

    /// Records the client's consent, risk level or legal status. These fields are sensitive:
    /// if another phone changed one concurrently, both values wait in the office's conflict inbox
    /// until a case manager settles them, and [`Store::conflicts`] shows them here meanwhile.
    pub fn update_case(&self, case: CaseId, update: &CaseUpdate) -> Result<()> {
        self.edit_case(case, "case.update", |doc, author, now| {
            doc.update_case(author, update, now)
        })
    }

    /// The case's individual recovery plan (also part of [`Store::case`]).
    pub fn plan(&self, case: CaseId) -> Result<Plan> {
        self.read_case(case, |doc| doc.plan())
    }

    /// Sets a goal of the recovery plan; durable once this returns.
    pub fn add_goal(&self, case: CaseId, goal: &NewGoal) -> Result<GoalId> {
        self.edit_case(case, "goal.add", |doc, author, now| {
            doc.add_goal(author, goal, now)
        })
    }

    /// Changes a goal's area, description, status or target date. The status is sensitive: if
    /// another phone changed it concurrently, both values wait in the office's conflict inbox
    /// until a case manager settles them ([`Store::conflicts`] shows them here meanwhile).
    pub fn update_goal(&self, case: CaseId, goal: GoalId, update: &GoalUpdate) -> Result<()> {
        self.edit_case(case, "goal.update", |doc, author, now| {
            doc.update_goal(author, goal, update, now)
        })
    }

    /// Records a service given to the client, linked to goals, tasks and notes of the case.
    pub fn add_service(&self, case: CaseId, service: &NewService) -> Result<ServiceId> {
        self.edit_case(case, "service.add", |doc, author, now| {
            doc.add_service(author, service, now)
        })
    }

    /// Records a review of the recovery plan, by this phone's user.
    pub fn add_review(&self, case: CaseId, review: &NewReview) -> Result<ReviewId> {
        // On a phone the reviewer is always its user (the office checks it).
        let review = NewReview {
            reviewer: None,
            ..review.clone()
        };
        self.edit_case(case, "review.add", |doc, author, now| {
            doc.add_review(author, &review, now)
        })
    }

    /// Records the client profile (HTCDS core fields); only the fields that differ from the
    /// case's are written.
    pub fn set_profile(&self, case: CaseId, profile: &ClientProfile) -> Result<()> {
        self.edit_case(case, "profile.update", |doc, author, now| {
            doc.set_profile(author, profile, now)
        })
    }

    /// The history of the case's plan, profile and life (who did what, when), oldest first.
    pub fn history(&self, case: CaseId) -> Result<Vec<HistoryEntry>> {
        self.read_case(case, |doc| Ok(doc.history()))
    }

    /// Ticks or unticks a checklist item.
    pub fn set_checklist_item(
        &self,
        case: CaseId,
        task: TaskId,
        item: ChecklistItemId,
        done: bool,
    ) -> Result<()> {
        self.edit_case(case, "checklist.tick", |doc, author, now| {
            doc.set_checklist_item(author, task, item, done, now)
        })
    }

    /// Adds a checklist item to a task.
    pub fn add_checklist_item(
        &self,
        case: CaseId,
        task: TaskId,
        label: &str,
    ) -> Result<ChecklistItemId> {
        self.edit_case(case, "checklist.add", |doc, author, now| {
            doc.add_checklist_item(author, task, label, now)
        })
    }

    /// Every case on the device, most recently active first, from the sealed index.
    pub fn list_cases(&self) -> Result<Vec<CaseSummary>> {
        let mut cases = self.with_unlocked(|conn, u, store_id| {
            Sealer {
                key: &u.key,
                store_id,
            }
            .read_index(conn)
        })?;
        cases.sort_by(|a, b| b.last_activity.cmp(&a.last_activity).then(a.id.cmp(&b.id)));
        Ok(cases)
    }

    /// This worker's tasks scheduled in `[from, to)`, earliest first, from the sealed index.
    /// A task counts as the worker's when they are among its assignees, or when it has none and
    /// the case is assigned to them.
    pub fn my_tasks_between(
        &self,
        from: OffsetDateTime,
        to: OffsetDateTime,
    ) -> Result<Vec<TaskSummary>> {
        let me = self.with_unlocked(|_, u, _| Ok(u.author.user))?;
        let mut out: Vec<TaskSummary> = self
            .with_unlocked(|conn, u, store_id| {
                Sealer {
                    key: &u.key,
                    store_id,
                }
                .read_index(conn)
            })?
            .into_iter()
            .flat_map(|case| {
                let case_mine = case.assigned_workers.contains(&me);
                case.tasks.into_iter().filter(move |t| {
                    t.scheduled_at >= from
                        && t.scheduled_at < to
                        && (t.assignees.contains(&me) || (t.assignees.is_empty() && case_mine))
                })
            })
            .collect();
        out.sort_by_key(|t| (t.scheduled_at, t.task_id));
        Ok(out)
    }

    /// This worker's tasks on the local calendar day `day`, in the phone's UTC `offset`.
    pub fn my_tasks_on(&self, day: Date, offset: UtcOffset) -> Result<Vec<TaskSummary>> {
        let start = day.with_time(Time::MIDNIGHT).assume_offset(offset);
        self.my_tasks_between(start, start + Duration::days(1))
    }

    /// This worker's tasks today (by the store's clock, in the phone's UTC `offset`).
    pub fn today_tasks(&self, offset: UtcOffset) -> Result<Vec<TaskSummary>> {
        let today = self.options.clock.now().to_offset(offset).date();
        self.my_tasks_on(today, offset)
    }

    /// This worker's open tasks from now over the next `days` days.
    pub fn upcoming_tasks(&self, days: u32) -> Result<Vec<TaskSummary>> {
        let now = self.options.clock.now();
        let until = now
            .checked_add(Duration::days(i64::from(days)))
            .unwrap_or(crate::model::Limits::LATEST_TIME);
        crate::model::time_in_range("days", until)?;
        let mut tasks = self.my_tasks_between(now, until)?;
        tasks.retain(|t| matches!(t.status, TaskStatus::Planned | TaskStatus::InProgress));
        Ok(tasks)
    }

    /// Folds every case's separate change rows into its snapshot, so that the store is as small
    /// as its compacted documents and cold loads read one chunk. Returns how many cases were
    /// compacted. Meant for idle moments (the app going to the background, before `lock`).
    pub fn compact(&self) -> Result<usize> {
        self.with_unlocked(|conn, u, store_id| {
            let sealer = Sealer {
                key: &u.key,
                store_id,
            };
            let cases: Vec<Vec<u8>> = {
                let mut stmt = conn.prepare("SELECT DISTINCT case_id FROM case_changes")?;
                stmt.query_map([], |r| r.get(0))?
                    .collect::<rusqlite::Result<_>>()?
            };
            let tx = conn.transaction()?;
            for raw in &cases {
                let case = CaseId::from_slice(raw).ok_or(CoreError::Corrupt {
                    what: "case_changes",
                })?;
                let mut doc = match u.docs.remove(&case) {
                    Some(doc) => doc,
                    None => sealer.load_doc(&tx, case, &u.actor)?,
                };
                sealer.write_snapshot(&tx, &mut doc)?;
                u.docs.insert(doc);
            }
            tx.commit()?;
            // Fold the WAL into the database (secure_delete has zeroed freed pages there), so
            // purged or superseded records leave no bytes behind in either file.
            conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
            Ok(cases.len())
        })
    }

    /// Stores a value sealed in the store's `meta` table under `name` (device credential, ...).
    pub(crate) fn put_sealed_meta<T: Serialize>(&self, name: &str, value: &T) -> Result<()> {
        self.with_unlocked_for_sync(|conn, u, store_id| {
            Sealer {
                key: &u.key,
                store_id,
            }
            .put_meta(conn, name, value)
        })
    }

    /// Reads a value stored by [`Store::put_sealed_meta`].
    pub(crate) fn get_sealed_meta<T: serde::de::DeserializeOwned>(
        &self,
        name: &str,
    ) -> Result<Option<T>> {
        self.with_unlocked_for_sync(|conn, u, store_id| {
            Sealer {
                key: &u.key,
                store_id,
            }
            .meta(conn, name)
        })
    }

    /// Local edits that have not reached the office yet, oldest first.
    pub fn pending_changes(&self) -> Result<Vec<PendingChange>> {
        self.with_unlocked(|conn, u, store_id| {
            let sealer = Sealer {
                key: &u.key,
                store_id,
            };
            read_outbox(conn, &sealer)
        })
    }
}

/// Every outbox entry, opened, oldest first.
fn read_outbox(conn: &rusqlite::Connection, sealer: &Sealer<'_>) -> Result<Vec<PendingChange>> {
    let mut stmt = conn.prepare_cached("SELECT seq, case_id, entry FROM outbox ORDER BY seq")?;
    let mut rows = stmt.query([])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let seq: i64 = r.get(0)?;
        let case: Vec<u8> = r.get(1)?;
        let entry: Vec<u8> = r.get(2)?;
        out.push(sealer.open_json("outbox", &case, seq, &entry)?);
    }
    Ok(out)
}

pub(super) fn push_outbox(
    tx: &rusqlite::Transaction<'_>,
    sealer: &Sealer<'_>,
    case: CaseId,
    action: &str,
    at: OffsetDateTime,
) -> Result<()> {
    let seq: i64 = tx.query_row("SELECT COALESCE(MAX(seq), 0) + 1 FROM outbox", [], |r| {
        r.get(0)
    })?;
    let entry = PendingChange {
        case_id: case,
        action: action.to_owned(),
        at,
    };
    let sealed = sealer.seal_json("outbox", case.as_bytes(), seq, &entry)?;
    tx.execute(
        "INSERT INTO outbox (seq, case_id, entry) VALUES (?1, ?2, ?3)",
        params![seq, case.as_bytes().as_slice(), sealed],
    )?;
    Ok(())
}

/// Makes one edit to a loaded case and persists it in one transaction: the change, the
/// refreshed index row and an outbox entry (`what`: the case, the action, the time).
fn edit_loaded<T>(
    conn: &mut rusqlite::Connection,
    u: &mut Unlocked,
    store_id: &uuid::Uuid,
    compact_after: usize,
    what: (CaseId, &'static str, OffsetDateTime),
    edit: impl FnOnce(&mut CaseDoc, Author, OffsetDateTime) -> Result<T>,
) -> Result<T> {
    edit_loaded_with(conn, u, store_id, compact_after, what, edit, |_, _| Ok(()))
}

/// [`edit_loaded`], with `also` writing more rows in the edit's transaction (an attachment's
/// chunks beside its reference): both are on disk, or neither.
pub(super) fn edit_loaded_with<T>(
    conn: &mut rusqlite::Connection,
    u: &mut Unlocked,
    store_id: &uuid::Uuid,
    compact_after: usize,
    (case, action, now): (CaseId, &'static str, OffsetDateTime),
    edit: impl FnOnce(&mut CaseDoc, Author, OffsetDateTime) -> Result<T>,
    also: impl FnOnce(&rusqlite::Transaction<'_>, &Sealer<'_>) -> Result<()>,
) -> Result<T> {
    let sealer = Sealer {
        key: &u.key,
        store_id,
    };
    let doc = u.docs.get_or_load(conn, &sealer, &u.actor, case)?;
    let before = doc.heads();
    let value = edit(doc, u.author, now)?;
    // An edit is one transaction, so it made at most one change.
    if doc.heads() == before {
        return Ok(value);
    }
    let changes = doc
        .last_local_change()
        .ok_or(CoreError::Document("edit left no change"))?;
    let persisted = (|| {
        let tx = conn.transaction()?;
        sealer.append_changes(&tx, doc, &changes, compact_after)?;
        sealer.write_index(&tx, doc)?;
        push_outbox(&tx, &sealer, case, action, now)?;
        also(&tx, &sealer)?;
        tx.commit()?;
        Ok(())
    })();
    if let Err(e) = persisted {
        // The document in memory holds an edit the disk does not: forget it.
        u.docs.remove(&case);
        return Err(e);
    }
    Ok(value)
}
