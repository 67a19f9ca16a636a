//! Conflicts: a field that two replicas changed concurrently. automerge keeps every concurrent
//! value and picks a deterministic winner; this module reports them all, with their authors, so a
//! UI can show the conflict and let a person pick.

use automerge::ObjId as ExId;
use automerge::{ObjId, ObjType, ReadDoc, ScalarValue, Value};
use serde::{Deserialize, Serialize};

use super::CaseDoc;
use super::read::child;
use crate::error::Result;
use crate::ids::TaskId;
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
const CASE_FIELDS: &[&str] = &["status", "consent", "client_code"];

/// One of the concurrent values of a field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConflictValue {
    /// The value, as text.
    pub value: String,
    /// Who wrote it, if the writer registered (every fieldcase replica does).
    pub author: Option<Author>,
}

/// A field that holds more than one concurrent value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conflict {
    /// The task the field belongs to, or `None` for a field of the case itself.
    pub task: Option<TaskId>,
    /// The field's name (`status`, `outcome`, ...).
    pub field: String,
    /// The value every replica shows (automerge's deterministic winner).
    pub winner: ConflictValue,
    /// Every concurrent value, the winner included, in a stable order.
    pub values: Vec<ConflictValue>,
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
        obj: &ObjId,
        task: Option<TaskId>,
        field: &str,
    ) -> Result<Option<Conflict>> {
        let doc = self.inner();
        let all = doc
            .get_all(obj, field)
            .map_err(|_| crate::CoreError::Document("read failed"))?;
        if all.len() < 2 {
            return Ok(None);
        }
        let Some((win_value, win_id)) = doc
            .get(obj, field)
            .map_err(|_| crate::CoreError::Document("read failed"))?
        else {
            return Ok(None);
        };
        let values = all
            .iter()
            .map(|(v, id)| ConflictValue {
                value: as_text(v),
                author: self.author_of(id),
            })
            .collect();
        Ok(Some(Conflict {
            task,
            field: field.to_owned(),
            winner: ConflictValue {
                value: as_text(&win_value),
                author: self.author_of(&win_id),
            },
            values,
        }))
    }

    /// Every field of the case and its tasks that currently holds concurrent values.
    pub fn conflicts(&self) -> Result<Vec<Conflict>> {
        let mut out = Vec::new();
        for field in CASE_FIELDS {
            out.extend(self.field_conflict(&automerge::ROOT, None, field)?);
        }
        if let Some(tasks) = self.tasks_obj() {
            let mut ids: Vec<TaskId> = self
                .inner()
                .keys(&tasks)
                .filter_map(|k| k.parse().ok())
                .collect();
            ids.sort();
            for id in ids {
                if let Some(obj) = child(self.inner(), &tasks, &id.to_string(), ObjType::Map) {
                    for field in TASK_FIELDS {
                        out.extend(self.field_conflict(&obj, Some(id), field)?);
                    }
                }
            }
        }
        Ok(out)
    }
}
