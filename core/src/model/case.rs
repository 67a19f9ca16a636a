//! Cases: one client's file, with its notes and tasks, and the summary a list screen shows.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::validation::{at_most, required_text, time_in_range};
use super::{
    CaseStatus, ClientProfile, ConsentStatus, LegalStatus, Limits, OfficeKind, Plan, RiskLevel,
    Task, TaskStatus, ValidationError, VisitNote,
};
use crate::ids::{CaseId, TaskId, UserId};

/// A whole case as it stands after every merge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Case {
    /// The case's id.
    pub id: CaseId,
    /// The client's code (never the name, on a device).
    pub client_code: String,
    /// Where the case stands.
    pub status: CaseStatus,
    /// Consent to keep the client's data.
    pub consent: ConsentStatus,
    /// How much danger the client is in, as last assessed.
    #[serde(default = "default_risk")]
    pub risk_level: RiskLevel,
    /// Where the client stands legally, as last recorded.
    #[serde(default = "default_legal")]
    pub legal_status: LegalStatus,
    /// Workers assigned to the case, sorted.
    pub assigned_workers: Vec<UserId>,
    /// When the case was opened.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Visit notes, oldest first.
    pub notes: Vec<VisitNote>,
    /// Accompaniment tasks, earliest first.
    pub tasks: Vec<Task>,
    /// The individual recovery plan.
    #[serde(default)]
    pub plan: Plan,
    /// The client profile of the data standard (HTCDS v2 core fields).
    #[serde(default)]
    pub profile: ClientProfile,
}

fn default_risk() -> RiskLevel {
    RiskLevel::NotAssessed
}

fn default_legal() -> LegalStatus {
    LegalStatus::Unknown
}

impl Case {
    /// Checks that every time of the case, its notes and its tasks lies in the range a record
    /// may hold (a case read from a document another replica wrote).
    pub(crate) fn check_times(&self) -> Result<(), ValidationError> {
        time_in_range("the time a case was opened", self.created_at)?;
        for note in &self.notes {
            note.check_times()?;
        }
        for task in &self.tasks {
            task.check_times()?;
        }
        self.plan.check_times()
    }
}

/// A change to the sensitive fields of a case; `None` leaves a field as it is. Writing a field
/// supersedes every concurrent value it held (it resolves a conflict on it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CaseUpdate {
    /// New consent.
    pub consent: Option<ConsentStatus>,
    /// New risk level.
    pub risk_level: Option<RiskLevel>,
    /// New legal status.
    pub legal_status: Option<LegalStatus>,
}

impl CaseUpdate {
    /// True when the update changes nothing.
    pub fn is_empty(&self) -> bool {
        self == &CaseUpdate::default()
    }
}

/// What is needed to open a case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCase {
    /// The client's code.
    pub client_code: String,
    /// Consent as recorded at intake.
    pub consent: ConsentStatus,
    /// Workers assigned.
    pub assigned_workers: Vec<UserId>,
}

impl NewCase {
    /// Checks the case against the model's rules.
    pub fn validate(&self) -> Result<(), ValidationError> {
        required_text("client code", &self.client_code, Limits::SHORT_TEXT_MAX)?;
        at_most(
            "assigned workers",
            self.assigned_workers.len(),
            Limits::ASSIGNEES_MAX,
        )
    }
}

/// The part of a task that list screens need (today's tasks, upcoming tasks).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskSummary {
    /// The case the task belongs to.
    pub case_id: CaseId,
    /// The client's code, to show beside the task.
    pub client_code: String,
    /// The task's id.
    pub task_id: TaskId,
    /// Why the client goes.
    pub purpose: String,
    /// What kind of office.
    pub office_kind: OfficeKind,
    /// The office's name.
    pub office_name: String,
    /// The office's address.
    pub office_address: String,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub scheduled_at: OffsetDateTime,
    /// The time zone it was planned in.
    pub time_zone: String,
    /// Where it stands.
    pub status: TaskStatus,
    /// Who accompanies the client.
    pub assignees: Vec<UserId>,
    /// Checklist items ticked.
    pub checklist_done: u32,
    /// Checklist items in all.
    pub checklist_total: u32,
}

/// The part of a case that list screens need, kept sealed in the store's index and refreshed on
/// every write, so that lists never load case documents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseSummary {
    /// The case's id.
    pub id: CaseId,
    /// The client's code.
    pub client_code: String,
    /// Where the case stands.
    pub status: CaseStatus,
    /// Workers assigned.
    pub assigned_workers: Vec<UserId>,
    /// How many visit notes it holds.
    pub note_count: u32,
    /// The latest note or task time, for sorting by activity.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_activity: Option<OffsetDateTime>,
    /// Its tasks.
    pub tasks: Vec<TaskSummary>,
}
