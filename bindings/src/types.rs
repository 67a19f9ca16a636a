//! The model as it crosses the FFI: records and enums mirroring `fieldcase_core::model`, with
//! conversions only. Ids cross as UUID text, instants as RFC 3339 text (with the offset they were
//! planned in), calendar dates as `YYYY-MM-DD`.

use fieldcase_core::document::{Conflict as CoreConflict, ConflictValue as CoreConflictValue};
use fieldcase_core::ids;
use fieldcase_core::model::{self, ValidationError};
use fieldcase_core::store::{PendingChange as CorePending, TimelineEntry as CoreEntry};
use fieldcase_core::sync::SyncReport as CoreSyncReport;
use time::format_description::well_known::Rfc3339;
use time::{Date, OffsetDateTime};

use crate::FieldcaseError;

/// Mirrors a core vocabulary enum as a uniffi enum, with conversions both ways.
macro_rules! mirror_enum {
    ($(#[$doc:meta])* $name:ident = $core:path { $($(#[$vdoc:meta])* $variant:ident),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, uniffi::Enum)]
        pub enum $name {
            $($(#[$vdoc])* $variant),+
        }

        impl From<$core> for $name {
            fn from(v: $core) -> Self {
                match v { $(<$core>::$variant => $name::$variant),+ }
            }
        }

        impl From<$name> for $core {
            fn from(v: $name) -> Self {
                match v { $($name::$variant => <$core>::$variant),+ }
            }
        }
    };
}
pub(crate) use mirror_enum;

mirror_enum!(
    /// Where a case stands.
    CaseStatus = model::CaseStatus {
        /// Being worked on.
        Open,
        /// Paused.
        OnHold,
        /// Finished.
        Closed,
    }
);

mirror_enum!(
    /// Whether the client agreed to the organisation keeping their data.
    ConsentStatus = model::ConsentStatus {
        /// Not yet recorded.
        Pending,
        /// Given.
        Given,
        /// Withdrawn.
        Withdrawn,
    }
);

mirror_enum!(
    /// How much danger the client is in, as last assessed.
    RiskLevel = model::RiskLevel {
        /// Not assessed yet.
        NotAssessed,
        /// Low.
        Low,
        /// Medium.
        Medium,
        /// High.
        High,
    }
);

mirror_enum!(
    /// Where the client stands legally, as last recorded.
    LegalStatus = model::LegalStatus {
        /// Not known or not recorded yet.
        Unknown,
        /// Being identified as a victim of trafficking.
        IdentificationPending,
        /// Formally identified as a victim of trafficking.
        IdentifiedVictim,
        /// A residence permit or a decision on it is pending.
        ResidencePending,
        /// Holds a temporary residence permit.
        TemporaryResidence,
        /// A citizen or permanent resident.
        Resident,
    }
);

mirror_enum!(
    /// Where an accompaniment takes the client.
    OfficeKind = model::OfficeKind {
        /// Police station.
        Police,
        /// Social welfare centre.
        SocialWelfareCentre,
        /// Court.
        Court,
        /// Public prosecutor's office.
        Prosecutor,
        /// Registry office.
        RegistryOffice,
        /// Health centre or clinic.
        HealthCentre,
        /// National employment service.
        EmploymentService,
        /// Embassy or consulate.
        EmbassyOrConsulate,
        /// School.
        School,
        /// Anything else.
        Other,
    }
);

mirror_enum!(
    /// Where an accompaniment task stands.
    TaskStatus = model::TaskStatus {
        /// Planned, not yet started.
        Planned,
        /// With the client at the office now.
        InProgress,
        /// Done.
        Done,
        /// The client or the office did not come.
        Missed,
        /// Called off.
        Cancelled,
    }
);

mirror_enum!(
    /// What kind of contact a note records.
    NoteKind = model::NoteKind {
        /// A visit or accompaniment in person.
        Visit,
        /// A phone call.
        Call,
        /// A meeting at the office.
        Meeting,
        /// An observation.
        Observation,
    }
);

mirror_enum!(
    /// The kinds of assistance a note can be tagged with.
    AssistanceTag = model::AssistanceTag {
        /// SOS line.
        Sos,
        /// Psychological support.
        Psychological,
        /// Legal aid.
        Legal,
        /// Medical help.
        Medical,
        /// Reintegration.
        Reintegration,
        /// Vocational training.
        VocationalTraining,
        /// Job search.
        JobSearch,
        /// Day centre.
        DayCentre,
        /// Administrative obstacles.
        Administrative,
    }
);

/// Who made a change: the person and the phone they used.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Author {
    /// The person's id.
    pub user_id: String,
    /// The device's id.
    pub device_id: String,
}

/// A visit note as it stands after every merge.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct VisitNote {
    /// The note's id.
    pub id: String,
    /// Who wrote it first.
    pub author: Author,
    /// When it was written (RFC 3339).
    pub written_at: String,
    /// When it was last edited (RFC 3339), if ever.
    pub edited_at: Option<String>,
    /// Who edited its body after it was written (colleagues completing it), each device once.
    pub edited_by: Vec<Author>,
    /// What kind of contact it records.
    pub kind: NoteKind,
    /// The text.
    pub body: String,
    /// Kinds of assistance it is about.
    pub tags: Vec<AssistanceTag>,
    /// The task it reports on, if any.
    pub task_id: Option<String>,
}

/// What a worker supplies to write a note.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct NewNote {
    /// What kind of contact it records.
    pub kind: NoteKind,
    /// The text; must not be blank.
    pub body: String,
    /// Kinds of assistance it is about.
    #[uniffi(default = [])]
    pub tags: Vec<AssistanceTag>,
    /// The task it reports on, if any.
    #[uniffi(default = None)]
    pub task_id: Option<String>,
}

/// One item of a task's document checklist.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ChecklistItem {
    /// The item's id.
    pub id: String,
    /// What to bring or do.
    pub label: String,
    /// Ticked off.
    pub done: bool,
}

/// An accompaniment task as it stands after every merge.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Task {
    /// The task's id.
    pub id: String,
    /// Why the client goes.
    pub purpose: String,
    /// What kind of office.
    pub office_kind: OfficeKind,
    /// The office's name.
    pub office_name: String,
    /// The office's address.
    pub office_address: String,
    /// When (RFC 3339, in the offset it was planned in).
    pub scheduled_at: String,
    /// The IANA time zone it was planned in.
    pub time_zone: String,
    /// Ids of the workers who accompany the client.
    pub assignees: Vec<String>,
    /// Where it stands.
    pub status: TaskStatus,
    /// Documents to bring.
    pub checklist: Vec<ChecklistItem>,
    /// What came of it.
    pub outcome: Option<String>,
    /// When to follow up (`YYYY-MM-DD`).
    pub follow_up: Option<String>,
}

/// A change to some fields of a task; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq, uniffi::Record)]
pub struct TaskUpdate {
    /// New status.
    #[uniffi(default = None)]
    pub status: Option<TaskStatus>,
    /// New outcome text.
    #[uniffi(default = None)]
    pub outcome: Option<String>,
    /// New follow-up date (`YYYY-MM-DD`).
    #[uniffi(default = None)]
    pub follow_up: Option<String>,
    /// New time (RFC 3339), to reschedule.
    #[uniffi(default = None)]
    pub scheduled_at: Option<String>,
}

/// A change to the sensitive fields of a case; `None` leaves a field as it is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, uniffi::Record)]
pub struct CaseUpdate {
    /// New consent.
    #[uniffi(default = None)]
    pub consent: Option<ConsentStatus>,
    /// New risk level.
    #[uniffi(default = None)]
    pub risk_level: Option<RiskLevel>,
    /// New legal status.
    #[uniffi(default = None)]
    pub legal_status: Option<LegalStatus>,
}

/// A whole case as it stands after every merge.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Case {
    /// The case's id.
    pub id: String,
    /// The client's code.
    pub client_code: String,
    /// Where the case stands.
    pub status: CaseStatus,
    /// Consent to keep the client's data.
    pub consent: ConsentStatus,
    /// How much danger the client is in, as last assessed.
    pub risk_level: RiskLevel,
    /// Where the client stands legally, as last recorded.
    pub legal_status: LegalStatus,
    /// Ids of the workers assigned.
    pub assigned_workers: Vec<String>,
    /// When it was opened (RFC 3339).
    pub created_at: String,
    /// Visit notes, oldest first.
    pub notes: Vec<VisitNote>,
    /// Tasks, earliest first.
    pub tasks: Vec<Task>,
}

/// The part of a task that list screens show.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct TaskSummary {
    /// The case it belongs to.
    pub case_id: String,
    /// The client's code.
    pub client_code: String,
    /// The task's id.
    pub task_id: String,
    /// Why the client goes.
    pub purpose: String,
    /// What kind of office.
    pub office_kind: OfficeKind,
    /// The office's name.
    pub office_name: String,
    /// The office's address.
    pub office_address: String,
    /// When (RFC 3339).
    pub scheduled_at: String,
    /// The time zone it was planned in.
    pub time_zone: String,
    /// Where it stands.
    pub status: TaskStatus,
    /// Ids of the workers who accompany the client.
    pub assignees: Vec<String>,
    /// Checklist items ticked.
    pub checklist_done: u32,
    /// Checklist items in all.
    pub checklist_total: u32,
}

/// The part of a case that list screens show.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct CaseSummary {
    /// The case's id.
    pub id: String,
    /// The client's code.
    pub client_code: String,
    /// Where it stands.
    pub status: CaseStatus,
    /// Ids of the workers assigned.
    pub assigned_workers: Vec<String>,
    /// How many visit notes it holds.
    pub note_count: u32,
    /// The latest note or task time (RFC 3339), if any.
    pub last_activity: Option<String>,
    /// Its tasks.
    pub tasks: Vec<TaskSummary>,
}

/// One entry of a case's timeline, in time order.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum TimelineEntry {
    /// A visit note, at the time it was written.
    Note {
        /// The note.
        note: VisitNote,
    },
    /// An accompaniment task, at its scheduled time.
    Task {
        /// The task.
        task: Task,
    },
}

/// One of the concurrent values of a field.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ConflictValue {
    /// The value, as text.
    pub value: String,
    /// Who wrote it, when known.
    pub author: Option<Author>,
    /// When it was written (RFC 3339, by its author's clock), when known.
    pub at: Option<String>,
}

/// A field of a case or task that holds concurrent values.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Conflict {
    /// The task the field belongs to, or `None` for a field of the case.
    pub task_id: Option<String>,
    /// The field's name (`status`, `outcome`, ...).
    pub field: String,
    /// The value every replica shows.
    pub winner: ConflictValue,
    /// Every concurrent value, the winner included.
    pub values: Vec<ConflictValue>,
    /// Whether a case manager must settle it in the office's conflict inbox (consent, risk
    /// level, legal status, a task's outcome); other conflicts keep the value shown.
    pub sensitive: bool,
}

/// A local edit that has not reached the office yet.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct PendingChange {
    /// The case edited.
    pub case_id: String,
    /// What was done (`note.add`, `task.update`, ...).
    pub action: String,
    /// When (RFC 3339).
    pub at: String,
}

/// What one `sync_now` did.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct SyncReport {
    /// Round trips made.
    pub round_trips: u32,
    /// Request bytes sent.
    pub bytes_sent: u64,
    /// Response bytes received.
    pub bytes_received: u64,
    /// Cases whose local changes the office accepted.
    pub cases_uploaded: u32,
    /// Cases that received changes from the office.
    pub cases_updated: u32,
}

/// What a wipe removed.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct WipeReport {
    /// Key slots destroyed with the key file.
    pub key_slots_destroyed: u32,
    /// Whether the keystore destroyed its key.
    pub keystore_key_destroyed: bool,
    /// Names of the files deleted.
    pub files_removed: Vec<String>,
}

// ---- conversions -------------------------------------------------------------------------------

fn invalid(e: ValidationError) -> FieldcaseError {
    FieldcaseError::InvalidInput {
        detail: e.to_string(),
    }
}

/// Parses an id of kind `I` from its UUID text.
pub(crate) fn parse_id<I: std::str::FromStr<Err = ValidationError>>(
    s: &str,
) -> Result<I, FieldcaseError> {
    s.trim().parse().map_err(invalid)
}

pub(crate) fn parse_instant(s: &str) -> Result<OffsetDateTime, FieldcaseError> {
    OffsetDateTime::parse(s.trim(), &Rfc3339).map_err(|_| invalid(ValidationError::InvalidDateTime))
}

pub(crate) fn parse_date(s: &str) -> Result<Date, FieldcaseError> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    Date::parse(s.trim(), &format).map_err(|_| invalid(ValidationError::InvalidDateTime))
}

pub(crate) fn instant(t: OffsetDateTime) -> String {
    // An OffsetDateTime from core always has a year RFC 3339 can write; fall back to the
    // debug form rather than failing a read.
    t.format(&Rfc3339).unwrap_or_else(|_| t.to_string())
}

fn date(d: Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

fn ids<I: ToString>(v: Vec<I>) -> Vec<String> {
    v.iter().map(ToString::to_string).collect()
}

impl From<model::Author> for Author {
    fn from(a: model::Author) -> Self {
        Self {
            user_id: a.user.to_string(),
            device_id: a.device.to_string(),
        }
    }
}

impl From<model::VisitNote> for VisitNote {
    fn from(n: model::VisitNote) -> Self {
        Self {
            id: n.id.to_string(),
            author: n.author.into(),
            written_at: instant(n.written_at),
            edited_at: n.edited_at.map(instant),
            edited_by: n.edited_by.into_iter().map(Into::into).collect(),
            kind: n.kind.into(),
            body: n.body,
            tags: n.tags.into_iter().map(Into::into).collect(),
            task_id: n.task.map(|t| t.to_string()),
        }
    }
}

impl NewNote {
    pub(crate) fn to_core(&self) -> Result<model::NewNote, FieldcaseError> {
        Ok(model::NewNote {
            kind: self.kind.into(),
            body: self.body.clone(),
            tags: self.tags.iter().map(|t| (*t).into()).collect(),
            task: self
                .task_id
                .as_deref()
                .map(parse_id::<ids::TaskId>)
                .transpose()?,
        })
    }
}

impl From<model::ChecklistItem> for ChecklistItem {
    fn from(c: model::ChecklistItem) -> Self {
        Self {
            id: c.id.to_string(),
            label: c.label,
            done: c.done,
        }
    }
}

impl From<model::Task> for Task {
    fn from(t: model::Task) -> Self {
        Self {
            id: t.id.to_string(),
            purpose: t.purpose,
            office_kind: t.office_kind.into(),
            office_name: t.office_name,
            office_address: t.office_address,
            scheduled_at: instant(t.scheduled_at),
            time_zone: t.time_zone,
            assignees: ids(t.assignees),
            status: t.status.into(),
            checklist: t.checklist.into_iter().map(Into::into).collect(),
            outcome: t.outcome,
            follow_up: t.follow_up.map(date),
        }
    }
}

impl TaskUpdate {
    pub(crate) fn to_core(&self) -> Result<model::TaskUpdate, FieldcaseError> {
        Ok(model::TaskUpdate {
            status: self.status.map(Into::into),
            outcome: self.outcome.clone(),
            follow_up: self.follow_up.as_deref().map(parse_date).transpose()?,
            scheduled_at: self
                .scheduled_at
                .as_deref()
                .map(parse_instant)
                .transpose()?,
        })
    }
}

impl From<CaseUpdate> for model::CaseUpdate {
    fn from(u: CaseUpdate) -> Self {
        Self {
            consent: u.consent.map(Into::into),
            risk_level: u.risk_level.map(Into::into),
            legal_status: u.legal_status.map(Into::into),
        }
    }
}

impl From<model::Case> for Case {
    fn from(c: model::Case) -> Self {
        Self {
            id: c.id.to_string(),
            client_code: c.client_code,
            status: c.status.into(),
            consent: c.consent.into(),
            risk_level: c.risk_level.into(),
            legal_status: c.legal_status.into(),
            assigned_workers: ids(c.assigned_workers),
            created_at: instant(c.created_at),
            notes: c.notes.into_iter().map(Into::into).collect(),
            tasks: c.tasks.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<model::TaskSummary> for TaskSummary {
    fn from(t: model::TaskSummary) -> Self {
        Self {
            case_id: t.case_id.to_string(),
            client_code: t.client_code,
            task_id: t.task_id.to_string(),
            purpose: t.purpose,
            office_kind: t.office_kind.into(),
            office_name: t.office_name,
            office_address: t.office_address,
            scheduled_at: instant(t.scheduled_at),
            time_zone: t.time_zone,
            status: t.status.into(),
            assignees: ids(t.assignees),
            checklist_done: t.checklist_done,
            checklist_total: t.checklist_total,
        }
    }
}

impl From<model::CaseSummary> for CaseSummary {
    fn from(c: model::CaseSummary) -> Self {
        Self {
            id: c.id.to_string(),
            client_code: c.client_code,
            status: c.status.into(),
            assigned_workers: ids(c.assigned_workers),
            note_count: c.note_count,
            last_activity: c.last_activity.map(instant),
            tasks: c.tasks.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<CoreEntry> for TimelineEntry {
    fn from(e: CoreEntry) -> Self {
        match e {
            CoreEntry::Note(n) => TimelineEntry::Note { note: n.into() },
            CoreEntry::Task(t) => TimelineEntry::Task { task: t.into() },
        }
    }
}

impl From<CoreConflictValue> for ConflictValue {
    fn from(v: CoreConflictValue) -> Self {
        Self {
            value: v.value,
            author: v.author.map(Into::into),
            at: v.at.map(instant),
        }
    }
}

impl From<CoreConflict> for Conflict {
    fn from(c: CoreConflict) -> Self {
        Self {
            sensitive: c.is_sensitive(),
            task_id: c.task.map(|t| t.to_string()),
            field: c.field,
            winner: c.winner.into(),
            values: c.values.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<CorePending> for PendingChange {
    fn from(p: CorePending) -> Self {
        Self {
            case_id: p.case_id.to_string(),
            action: p.action,
            at: instant(p.at),
        }
    }
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl From<CoreSyncReport> for SyncReport {
    fn from(r: CoreSyncReport) -> Self {
        Self {
            round_trips: count(r.round_trips),
            bytes_sent: r.bytes_sent as u64,
            bytes_received: r.bytes_received as u64,
            cases_uploaded: count(r.cases_uploaded),
            cases_updated: count(r.cases_updated),
        }
    }
}

impl From<fieldcase_core::store::WipeReport> for WipeReport {
    fn from(r: fieldcase_core::store::WipeReport) -> Self {
        Self {
            key_slots_destroyed: count(r.key_slots_destroyed),
            keystore_key_destroyed: r.keystore_key_destroyed,
            files_removed: r.files_removed,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_instants_round_trip() {
        let d = parse_date("2026-11-24").unwrap();
        assert_eq!(date(d), "2026-11-24");
        let t = parse_instant("2026-11-24T09:00:00+01:00").unwrap();
        assert_eq!(instant(t), "2026-11-24T09:00:00+01:00");
        assert!(matches!(
            parse_date("24.11.2026"),
            Err(FieldcaseError::InvalidInput { .. })
        ));
        assert!(matches!(
            parse_id::<ids::CaseId>("not-a-uuid"),
            Err(FieldcaseError::InvalidInput { .. })
        ));
    }

    #[test]
    fn enums_mirror_core_both_ways() {
        for s in model::TaskStatus::ALL {
            assert_eq!(model::TaskStatus::from(TaskStatus::from(*s)), *s);
        }
        for k in model::OfficeKind::ALL {
            assert_eq!(model::OfficeKind::from(OfficeKind::from(*k)), *k);
        }
        for r in model::RiskLevel::ALL {
            assert_eq!(model::RiskLevel::from(RiskLevel::from(*r)), *r);
        }
        for l in model::LegalStatus::ALL {
            assert_eq!(model::LegalStatus::from(LegalStatus::from(*l)), *l);
        }
        for t in model::AssistanceTag::ALL {
            assert_eq!(model::AssistanceTag::from(AssistanceTag::from(*t)), *t);
        }
    }
}
