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

mirror_enum!(
    /// Where a goal of the recovery plan stands.
    GoalStatus = model::GoalStatus {
        /// Agreed, not started.
        Planned,
        /// Being worked on.
        InProgress,
        /// Reached.
        Achieved,
        /// Given up.
        Dropped,
    }
);

mirror_enum!(
    /// The client's gender (HTCDS v2 `gender`).
    Gender = model::Gender {
        /// Female.
        Female,
        /// Male.
        Male,
        /// Transgender, non-binary or another gender identity.
        Other,
    }
);

mirror_enum!(
    /// A type of exploitation (HTCDS v2).
    ExploitationType = model::ExploitationType {
        /// Sexual exploitation.
        Sexual,
        /// Forced labour.
        Labour,
        /// Forced marriage.
        ForcedMarriage,
        /// Forced criminal activity.
        ForcedCriminality,
        /// Forced begging.
        Begging,
        /// Any other form.
        Other,
    }
);

mirror_enum!(
    /// The industry of labour exploitation (HTCDS v2 `typeOfLabour`).
    LabourIndustry = model::LabourIndustry {
        /// Agriculture.
        Agriculture,
        /// Construction.
        Construction,
        /// Domestic work.
        DomesticWork,
        /// Manufacturing.
        Manufacturing,
        /// Hospitality.
        Hospitality,
        /// Fishing.
        Fishing,
        /// Mining or quarrying.
        Mining,
        /// Any other industry.
        Other,
    }
);

mirror_enum!(
    /// A means of control (HTCDS v2).
    MeansOfControl = model::MeansOfControl {
        /// Debt bondage.
        DebtBondage,
        /// Took the client's earnings.
        TakesEarnings,
        /// Threats against the client.
        Threats,
        /// Threats against the family.
        ThreatsToFamily,
        /// Psychological abuse.
        PsychologicalAbuse,
        /// Physical abuse.
        PhysicalAbuse,
        /// Sexual abuse.
        SexualAbuse,
        /// False promises.
        FalsePromises,
        /// Alcohol or drugs.
        Substances,
        /// Movement restricted.
        RestrictsMovement,
        /// Documents withheld.
        WithholdsDocuments,
        /// Necessities withheld.
        WithholdsNecessities,
        /// Threat of the authorities.
        ThreatOfAuthorities,
        /// Any other means.
        Other,
    }
);

mirror_enum!(
    /// How the client was recruited (HTCDS v2 `recruitmentType`).
    RecruitmentMethod = model::RecruitmentMethod {
        /// Someone the client knew.
        PersonalContact,
        /// A family member or partner.
        FamilyOrPartner,
        /// A job advertisement.
        JobAdvertisement,
        /// A recruitment or travel agency.
        Agency,
        /// Online or social media.
        Online,
        /// Abduction.
        Abduction,
        /// Any other way.
        Other,
    }
);

mirror_enum!(
    /// The case's status as HTCDS v2 names it.
    HtcdsStatus = model::HtcdsStatus {
        /// Active.
        Active,
        /// Follow-up.
        FollowUp,
        /// Closed.
        Closed,
        /// Closed and referred.
        ClosedReferred,
    }
);

mirror_enum!(
    /// Why a case was closed (HTCDS v2).
    ClosureReason = model::ClosureReason {
        /// The plan's goals were reached.
        GoalsAchieved,
        /// The client asked.
        ClientRequest,
        /// Contact lost.
        LostContact,
        /// Referred elsewhere.
        Referred,
        /// Moved away.
        Relocated,
        /// Died.
        Deceased,
        /// Any other reason.
        Other,
    }
);

/// A goal of the individual recovery plan.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Goal {
    /// The goal's id.
    pub id: String,
    /// The area of help.
    pub area: AssistanceTag,
    /// What the client wants to reach.
    pub description: String,
    /// Where it stands.
    pub status: GoalStatus,
    /// When it should be reached (`YYYY-MM-DD`), if agreed.
    pub target_date: Option<String>,
    /// Who set it.
    pub created_by: Author,
    /// When it was set (RFC 3339).
    pub created_at: String,
}

/// What a worker supplies to set a goal (it starts as planned).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct NewGoal {
    /// The area of help.
    pub area: AssistanceTag,
    /// What the client wants to reach.
    pub description: String,
    /// When it should be reached (`YYYY-MM-DD`).
    #[uniffi(default = None)]
    pub target_date: Option<String>,
}

/// A change to some fields of a goal; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq, uniffi::Record)]
pub struct GoalUpdate {
    /// New area of help.
    #[uniffi(default = None)]
    pub area: Option<AssistanceTag>,
    /// New description.
    #[uniffi(default = None)]
    pub description: Option<String>,
    /// New status (sensitive: a concurrent change waits for a case manager).
    #[uniffi(default = None)]
    pub status: Option<GoalStatus>,
    /// New target date (`YYYY-MM-DD`).
    #[uniffi(default = None)]
    pub target_date: Option<String>,
}

/// A service given to the client.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Service {
    /// The service's id.
    pub id: String,
    /// The area of help.
    pub area: AssistanceTag,
    /// What was given.
    pub description: String,
    /// The day it was given (`YYYY-MM-DD`).
    pub given_on: String,
    /// Ids of the goals it serves.
    pub goal_ids: Vec<String>,
    /// Ids of the tasks it came with.
    pub task_ids: Vec<String>,
    /// Ids of the notes that record it.
    pub note_ids: Vec<String>,
    /// Who recorded it.
    pub recorded_by: Author,
    /// When it was recorded (RFC 3339).
    pub recorded_at: String,
}

/// What a worker supplies to record a service.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct NewService {
    /// The area of help.
    pub area: AssistanceTag,
    /// What was given.
    pub description: String,
    /// The day it was given (`YYYY-MM-DD`).
    pub given_on: String,
    /// Goals it serves.
    #[uniffi(default = [])]
    pub goal_ids: Vec<String>,
    /// Tasks it came with.
    #[uniffi(default = [])]
    pub task_ids: Vec<String>,
    /// Notes that record it.
    #[uniffi(default = [])]
    pub note_ids: Vec<String>,
}

/// A review of the recovery plan.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct PlanReview {
    /// The review's id.
    pub id: String,
    /// The day of the review (`YYYY-MM-DD`).
    pub reviewed_on: String,
    /// Id of who reviewed.
    pub reviewer: String,
    /// What was found and decided.
    pub summary: String,
    /// When it was recorded (RFC 3339).
    pub recorded_at: String,
}

/// What is supplied to record a review (the reviewer is this phone's user).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct NewReview {
    /// The day of the review (`YYYY-MM-DD`).
    pub reviewed_on: String,
    /// What was found and decided.
    pub summary: String,
}

/// The individual recovery plan of a case.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Plan {
    /// Goals, in the order they were set.
    pub goals: Vec<Goal>,
    /// Services given, earliest first.
    pub services: Vec<Service>,
    /// Reviews, earliest first.
    pub reviews: Vec<PlanReview>,
}

/// The client profile of HTCDS v2's core fields, each optional. Countries are ISO 3166-1
/// alpha-2 codes (`RS`).
#[derive(Debug, Clone, Default, PartialEq, Eq, uniffi::Record)]
pub struct ClientProfile {
    /// Gender.
    #[uniffi(default = None)]
    pub gender: Option<Gender>,
    /// Year of birth (never the date).
    #[uniffi(default = None)]
    pub birth_year: Option<i32>,
    /// Nationality (ISO 3166-1 alpha-2).
    #[uniffi(default = None)]
    pub nationality: Option<String>,
    /// Types of exploitation.
    #[uniffi(default = [])]
    pub exploitation: Vec<ExploitationType>,
    /// The industry, for labour exploitation.
    #[uniffi(default = None)]
    pub labour_industry: Option<LabourIndustry>,
    /// Means of control.
    #[uniffi(default = [])]
    pub means_of_control: Vec<MeansOfControl>,
    /// How the client was recruited.
    #[uniffi(default = None)]
    pub recruitment_method: Option<RecruitmentMethod>,
    /// Where the client was recruited (ISO 3166-1 alpha-2).
    #[uniffi(default = None)]
    pub recruitment_country: Option<String>,
    /// The case's HTCDS status.
    #[uniffi(default = None)]
    pub htcds_status: Option<HtcdsStatus>,
    /// Why the case was closed.
    #[uniffi(default = None)]
    pub closure_reason: Option<ClosureReason>,
}

/// One change of a case's plan, profile or life, for its history.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct HistoryEntry {
    /// When (RFC 3339), if known.
    pub at: Option<String>,
    /// Who, if known.
    pub author: Option<Author>,
    /// What was done (`goal.add`, `goal.update`, `service.add`, `review.add`, ...).
    pub action: String,
    /// The goal concerned, for a goal's change.
    pub goal_id: Option<String>,
    /// The goal status it set, if it set one.
    pub status: Option<GoalStatus>,
}

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
    /// The individual recovery plan.
    pub plan: Plan,
    /// The client profile (HTCDS v2 core fields).
    pub profile: ClientProfile,
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
    /// The task the field belongs to, or `None` for a field of the case or of a goal.
    pub task_id: Option<String>,
    /// The goal of the recovery plan the field belongs to (its `status`), if a goal's.
    pub goal_id: Option<String>,
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
    /// Answers received: one a round trip, or one a frame of an answer the office streamed
    /// (several pages in one round trip, each of several frames).
    pub frames: u32,
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
            plan: c.plan.into(),
            profile: c.profile.into(),
        }
    }
}

impl From<model::Goal> for Goal {
    fn from(g: model::Goal) -> Self {
        Self {
            id: g.id.to_string(),
            area: g.area.into(),
            description: g.description,
            status: g.status.into(),
            target_date: g.target_date.map(date),
            created_by: g.created_by.into(),
            created_at: instant(g.created_at),
        }
    }
}

impl NewGoal {
    pub(crate) fn to_core(&self) -> Result<model::NewGoal, FieldcaseError> {
        Ok(model::NewGoal {
            area: self.area.into(),
            description: self.description.clone(),
            target_date: self.target_date.as_deref().map(parse_date).transpose()?,
        })
    }
}

impl GoalUpdate {
    pub(crate) fn to_core(&self) -> Result<model::GoalUpdate, FieldcaseError> {
        Ok(model::GoalUpdate {
            area: self.area.map(Into::into),
            description: self.description.clone(),
            status: self.status.map(Into::into),
            target_date: self.target_date.as_deref().map(parse_date).transpose()?,
        })
    }
}

impl From<model::Service> for Service {
    fn from(s: model::Service) -> Self {
        Self {
            id: s.id.to_string(),
            area: s.area.into(),
            description: s.description,
            given_on: date(s.given_on),
            goal_ids: ids(s.goals),
            task_ids: ids(s.tasks),
            note_ids: ids(s.notes),
            recorded_by: s.recorded_by.into(),
            recorded_at: instant(s.recorded_at),
        }
    }
}

fn parse_ids<I: std::str::FromStr<Err = ValidationError>>(
    v: &[String],
) -> Result<Vec<I>, FieldcaseError> {
    v.iter().map(|s| parse_id(s)).collect()
}

impl NewService {
    pub(crate) fn to_core(&self) -> Result<model::NewService, FieldcaseError> {
        Ok(model::NewService {
            area: self.area.into(),
            description: self.description.clone(),
            given_on: parse_date(&self.given_on)?,
            goals: parse_ids(&self.goal_ids)?,
            tasks: parse_ids(&self.task_ids)?,
            notes: parse_ids(&self.note_ids)?,
        })
    }
}

impl From<model::PlanReview> for PlanReview {
    fn from(r: model::PlanReview) -> Self {
        Self {
            id: r.id.to_string(),
            reviewed_on: date(r.reviewed_on),
            reviewer: r.reviewer.to_string(),
            summary: r.summary,
            recorded_at: instant(r.recorded_at),
        }
    }
}

impl NewReview {
    pub(crate) fn to_core(&self) -> Result<model::NewReview, FieldcaseError> {
        Ok(model::NewReview {
            reviewed_on: parse_date(&self.reviewed_on)?,
            summary: self.summary.clone(),
            reviewer: None,
        })
    }
}

impl From<model::Plan> for Plan {
    fn from(p: model::Plan) -> Self {
        Self {
            goals: p.goals.into_iter().map(Into::into).collect(),
            services: p.services.into_iter().map(Into::into).collect(),
            reviews: p.reviews.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<model::ClientProfile> for ClientProfile {
    fn from(p: model::ClientProfile) -> Self {
        Self {
            gender: p.gender.map(Into::into),
            birth_year: p.birth_year,
            nationality: p.nationality.map(|c| c.to_string()),
            exploitation: p.exploitation.into_iter().map(Into::into).collect(),
            labour_industry: p.labour_industry.map(Into::into),
            means_of_control: p.means_of_control.into_iter().map(Into::into).collect(),
            recruitment_method: p.recruitment_method.map(Into::into),
            recruitment_country: p.recruitment_country.map(|c| c.to_string()),
            htcds_status: p.htcds_status.map(Into::into),
            closure_reason: p.closure_reason.map(Into::into),
        }
    }
}

impl ClientProfile {
    pub(crate) fn to_core(&self) -> Result<model::ClientProfile, FieldcaseError> {
        let country = |c: &Option<String>| {
            c.as_deref()
                .map(|c| c.parse::<model::Country>().map_err(invalid))
                .transpose()
        };
        Ok(model::ClientProfile {
            gender: self.gender.map(Into::into),
            birth_year: self.birth_year,
            nationality: country(&self.nationality)?,
            exploitation: self.exploitation.iter().map(|v| (*v).into()).collect(),
            labour_industry: self.labour_industry.map(Into::into),
            means_of_control: self.means_of_control.iter().map(|v| (*v).into()).collect(),
            recruitment_method: self.recruitment_method.map(Into::into),
            recruitment_country: country(&self.recruitment_country)?,
            htcds_status: self.htcds_status.map(Into::into),
            closure_reason: self.closure_reason.map(Into::into),
        })
    }
}

impl From<fieldcase_core::document::HistoryEntry> for HistoryEntry {
    fn from(h: fieldcase_core::document::HistoryEntry) -> Self {
        Self {
            at: h.at.map(instant),
            author: h.author.map(Into::into),
            action: h.action,
            goal_id: h.goal.map(|g| g.to_string()),
            status: h.status.map(Into::into),
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
            goal_id: c.goal.map(|g| g.to_string()),
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
            frames: count(r.frames),
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
        for v in model::GoalStatus::ALL {
            assert_eq!(model::GoalStatus::from(GoalStatus::from(*v)), *v);
        }
        for v in model::MeansOfControl::ALL {
            assert_eq!(model::MeansOfControl::from(MeansOfControl::from(*v)), *v);
        }
        for v in model::ClosureReason::ALL {
            assert_eq!(model::ClosureReason::from(ClosureReason::from(*v)), *v);
        }
    }
}
