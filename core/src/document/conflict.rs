//! Conflicts: a field that two replicas changed concurrently. automerge keeps every concurrent
//! value and picks a deterministic winner; this module reports them all, with their authors and
//! the time of the change that wrote each, so a UI can show the conflict and let a person pick.
//!
//! Some fields are *sensitive* ([`Conflict::is_sensitive`]: the case's consent, risk level and
//! legal status, a task's outcome, a recovery-plan goal's status): their conflicts wait in the office's conflict inbox until a
//! case manager picks a value or writes a new one ([`CaseDoc::resolve_conflict`]). Writing a
//! field from a replica that has seen every concurrent value supersedes them all, so the conflict
//! is gone on every replica once the write has reached it.

use automerge::ObjId as ExId;
use automerge::{ObjId, ObjType, ReadDoc, ScalarValue, Value};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::CaseDoc;
use super::read::child;
use crate::error::{CoreError, Result};
use crate::ids::{GoalId, TaskId};
use crate::model::Author;

/// Task fields whose concurrent changes are reported.
const TASK_FIELDS: &[&str] = &[
    "status",
    "outcome",
    "follow_up",
    "scheduled_at",
    "office_name",
    "office_address",
    "purpose",
];
/// Case fields whose concurrent changes are reported.
const CASE_FIELDS: &[&str] = &[
    "status",
    "consent",
    "risk_level",
    "legal_status",
    "client_code",
];

/// Fields of a goal of the recovery plan whose concurrent changes are reported.
const GOAL_FIELDS: &[&str] = &["status", "description", "target_date", "area"];

/// Case fields whose conflicts wait for a person (the conflict inbox).
pub const SENSITIVE_CASE_FIELDS: &[&str] = &["consent", "risk_level", "legal_status"];
/// Task fields whose conflicts wait for a person (the conflict inbox).
pub const SENSITIVE_TASK_FIELDS: &[&str] = &["outcome"];
/// Goal fields whose conflicts wait for a person (the conflict inbox).
pub const SENSITIVE_GOAL_FIELDS: &[&str] = &["status"];

/// What a conflicting field belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ConflictOn {
    /// The case itself.
    Case,
    /// One of its accompaniment tasks.
    Task(TaskId),
    /// One goal of its recovery plan.
    Goal(GoalId),
}

/// One of the concurrent values of a field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConflictValue {
    /// The value, as text.
    pub value: String,
    /// Who wrote it, if the writer registered (every fieldcase replica does).
    pub author: Option<Author>,
    /// When it was written: the time of the change that wrote it, as its author's clock gave it
    /// (`None` if the change carries no time).
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub at: Option<OffsetDateTime>,
}

/// A field that holds more than one concurrent value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conflict {
    /// The task the field belongs to, or `None` for a field of the case itself or of a goal.
    pub task: Option<TaskId>,
    /// The goal of the recovery plan the field belongs to, if it is a goal's.
    #[serde(default)]
    pub goal: Option<GoalId>,
    /// The field's name (`status`, `outcome`, ...).
    pub field: String,
    /// The value every replica shows (automerge's deterministic winner).
    pub winner: ConflictValue,
    /// Every concurrent value, the winner included, in a stable order.
    pub values: Vec<ConflictValue>,
}

impl Conflict {
    /// Whether a person must settle this conflict (the conflict inbox): consent, risk level and
    /// legal status of the case, and a task's outcome. Other fields keep automerge's winner.
    pub fn is_sensitive(&self) -> bool {
        is_sensitive_on(self.on(), &self.field)
    }

    /// What the field belongs to.
    pub fn on(&self) -> ConflictOn {
        match (self.task, self.goal) {
            (Some(t), _) => ConflictOn::Task(t),
            (None, Some(g)) => ConflictOn::Goal(g),
            (None, None) => ConflictOn::Case,
        }
    }
}

/// Whether `field` of what `on` names is sensitive.
pub fn is_sensitive_on(on: ConflictOn, field: &str) -> bool {
    match on {
        ConflictOn::Case => SENSITIVE_CASE_FIELDS.contains(&field),
        ConflictOn::Task(_) => SENSITIVE_TASK_FIELDS.contains(&field),
        ConflictOn::Goal(_) => SENSITIVE_GOAL_FIELDS.contains(&field),
    }
}

/// When each actor's changes were made: (actor, first op counter, last op counter, time).
type ChangeTimes = Vec<(automerge::ActorId, u64, u64, i64)>;

fn time_of(times: &ChangeTimes, id: &ExId) -> Option<OffsetDateTime> {
    let ExId::Id(counter, actor, _) = id else {
        return None;
    };
    times
        .iter()
        .find(|(a, start, end, _)| a == actor && (*start..=*end).contains(counter))
        .and_then(|(_, _, _, t)| (*t != 0).then_some(*t))
        .and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok())
}

fn as_text(value: &Value<'_>) -> String {
    match value {
        Value::Scalar(s) => match s.as_ref() {
            ScalarValue::Str(s) => s.to_string(),
            other => other.to_string(),
        },
        Value::Object(ty) => format!("({ty})"),
    }
}

impl CaseDoc {
    fn author_of(&self, id: &ExId) -> Option<Author> {
        match id {
            ExId::Id(_, actor, _) => self.author_of_actor(&actor.to_hex_string()),
            ExId::Root => None,
        }
    }

    fn field_conflict(
        &self,
        times: &ChangeTimes,
        obj: &ObjId,
        on: ConflictOn,
        field: &str,
    ) -> Result<Option<Conflict>> {
        let doc = self.inner();
        let all = doc
            .get_all(obj, field)
            .map_err(|_| CoreError::Document("read failed"))?;
        if all.len() < 2 {
            return Ok(None);
        }
        let Some((win_value, win_id)) = doc
            .get(obj, field)
            .map_err(|_| CoreError::Document("read failed"))?
        else {
            return Ok(None);
        };
        let values = all
            .iter()
            .map(|(v, id)| ConflictValue {
                value: as_text(v),
                author: self.author_of(id),
                at: time_of(times, id),
            })
            .collect();
        let (task, goal) = match on {
            ConflictOn::Case => (None, None),
            ConflictOn::Task(t) => (Some(t), None),
            ConflictOn::Goal(g) => (None, Some(g)),
        };
        Ok(Some(Conflict {
            task,
            goal,
            field: field.to_owned(),
            winner: ConflictValue {
                value: as_text(&win_value),
                author: self.author_of(&win_id),
                at: time_of(times, &win_id),
            },
            values,
        }))
    }

    fn conflicted(&self, obj: &ObjId, field: &str) -> bool {
        self.inner()
            .get_all(obj, field)
            .is_ok_and(|all| all.len() > 1)
    }

    /// The objects and fields checked for conflicts: the case's, then each task's in id order,
    /// then each goal's in id order.
    fn checked_fields(&self) -> Vec<(ObjId, ConflictOn, &'static str)> {
        let mut out: Vec<(ObjId, ConflictOn, &'static str)> = CASE_FIELDS
            .iter()
            .map(|f| (automerge::ROOT, ConflictOn::Case, *f))
            .collect();
        if let Some(tasks) = self.tasks_obj() {
            let mut ids: Vec<TaskId> = self
                .inner()
                .keys(&tasks)
                .filter_map(|k| k.parse().ok())
                .collect();
            ids.sort();
            for id in ids {
                if let Some(obj) = child(self.inner(), &tasks, &id.to_string(), ObjType::Map) {
                    out.extend(
                        TASK_FIELDS
                            .iter()
                            .map(|f| (obj.clone(), ConflictOn::Task(id), *f)),
                    );
                }
            }
        }
        for (id, obj) in self.goal_objs() {
            out.extend(
                GOAL_FIELDS
                    .iter()
                    .map(|f| (obj.clone(), ConflictOn::Goal(id), *f)),
            );
        }
        out
    }

    /// Every field of the case and its tasks that currently holds concurrent values, each value
    /// with its author and time.
    pub fn conflicts(&mut self) -> Result<Vec<Conflict>> {
        let fields = self.checked_fields();
        if !fields.iter().any(|(obj, _, f)| self.conflicted(obj, f)) {
            return Ok(Vec::new());
        }
        // Times come from the changes' metadata: read the history only when there is a conflict.
        let times: ChangeTimes = self
            .doc
            .get_changes(&[])
            .iter()
            .map(|c| {
                let start = c.start_op().get();
                let end = start.saturating_add((c.len() as u64).saturating_sub(1));
                (c.actor_id().clone(), start, end, c.timestamp())
            })
            .collect();
        let mut out = Vec::new();
        for (obj, on, field) in &fields {
            out.extend(self.field_conflict(&times, obj, *on, field)?);
        }
        Ok(out)
    }
}
