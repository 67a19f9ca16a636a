//! Accompaniment tasks: taking a client to an office at a set time, with documents to bring.

use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime};

use super::validation::{
    at_most, date_in_range, optional_text, required_text, time_in_range, time_zone,
};
use super::{Limits, OfficeKind, TaskStatus, ValidationError};
use crate::ids::{ChecklistItemId, TaskId, UserId};

/// One document or step on a task's checklist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChecklistItem {
    /// The item's id.
    pub id: ChecklistItemId,
    /// What to bring or do ("birth certificate copy").
    pub label: String,
    /// Ticked off.
    pub done: bool,
}

/// An accompaniment task as it stands after every merge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    /// The task's id.
    pub id: TaskId,
    /// Why the client goes ("apply for an ID card").
    pub purpose: String,
    /// What kind of office.
    pub office_kind: OfficeKind,
    /// The office's name.
    pub office_name: String,
    /// The office's address.
    pub office_address: String,
    /// When, as an instant with the offset it was planned in.
    #[serde(with = "time::serde::rfc3339")]
    pub scheduled_at: OffsetDateTime,
    /// The IANA time zone the time was planned in (`Europe/Belgrade`).
    pub time_zone: String,
    /// Workers who accompany the client, sorted.
    pub assignees: Vec<UserId>,
    /// Where it stands.
    pub status: TaskStatus,
    /// Documents to bring, in the order they were added.
    pub checklist: Vec<ChecklistItem>,
    /// What came of it.
    pub outcome: Option<String>,
    /// When to follow up.
    pub follow_up: Option<Date>,
}

/// What a case manager or worker supplies to plan a task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTask {
    /// Why the client goes.
    pub purpose: String,
    /// What kind of office.
    pub office_kind: OfficeKind,
    /// The office's name.
    pub office_name: String,
    /// The office's address.
    pub office_address: String,
    /// When.
    pub scheduled_at: OffsetDateTime,
    /// The IANA time zone it was planned in.
    pub time_zone: String,
    /// Who accompanies the client.
    pub assignees: Vec<UserId>,
    /// Labels of the documents to bring.
    pub checklist: Vec<String>,
}

impl Task {
    /// Checks that every time of the task lies in the range a record may hold (a task read
    /// from a document another replica wrote).
    pub(crate) fn check_times(&self) -> Result<(), ValidationError> {
        time_in_range("scheduled time", self.scheduled_at)?;
        if let Some(date) = self.follow_up {
            date_in_range("follow-up date", date)?;
        }
        Ok(())
    }
}

impl NewTask {
    /// Checks the task against the model's rules.
    pub fn validate(&self) -> Result<(), ValidationError> {
        required_text("purpose", &self.purpose, Limits::SHORT_TEXT_MAX)?;
        required_text("office name", &self.office_name, Limits::SHORT_TEXT_MAX)?;
        optional_text(
            "office address",
            &self.office_address,
            Limits::SHORT_TEXT_MAX,
        )?;
        time_zone(&self.time_zone)?;
        time_in_range("scheduled time", self.scheduled_at)?;
        at_most("assignees", self.assignees.len(), Limits::ASSIGNEES_MAX)?;
        at_most("checklist", self.checklist.len(), Limits::CHECKLIST_MAX)?;
        for label in &self.checklist {
            required_text("checklist item", label, Limits::SHORT_TEXT_MAX)?;
        }
        Ok(())
    }
}

/// A change to some fields of a task; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskUpdate {
    /// New status.
    pub status: Option<TaskStatus>,
    /// New outcome text.
    pub outcome: Option<String>,
    /// New follow-up date.
    pub follow_up: Option<Date>,
    /// New time (rescheduling).
    pub scheduled_at: Option<OffsetDateTime>,
}

impl TaskUpdate {
    /// Checks the update against the task it applies to: outcome length, and a follow-up date
    /// that is not before the (possibly rescheduled) visit day.
    pub fn validate(&self, task: &Task) -> Result<(), ValidationError> {
        if let Some(outcome) = &self.outcome {
            optional_text("outcome", outcome, Limits::OUTCOME_MAX)?;
        }
        if let Some(at) = self.scheduled_at {
            time_in_range("scheduled time", at)?;
        }
        if let Some(date) = self.follow_up {
            date_in_range("follow-up date", date)?;
        }
        let visit = self.scheduled_at.unwrap_or(task.scheduled_at);
        let follow_up = self.follow_up.or(task.follow_up);
        if follow_up.is_some_and(|f| f < visit.date()) {
            return Err(ValidationError::FollowUpBeforeVisit);
        }
        Ok(())
    }

    /// True when the update changes nothing.
    pub fn is_empty(&self) -> bool {
        self == &TaskUpdate::default()
    }
}
