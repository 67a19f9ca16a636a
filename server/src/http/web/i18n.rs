//! Languages of the pages (English, Serbian in Latin and in Cyrillic script) and times in the
//! office's time zone.
//!
//! The strings live in Fluent files a translator edits without touching code:
//! `server/i18n/en.ftl`, `sr-Latn.ftl`, `sr-Cyrl.ftl` (compiled in). [`Msg`] names each page
//! string by its Fluent id; [`Lang::t`] gives its text, [`Lang::count`] a count with the plural
//! form the language's CLDR rules pick (Serbian: 1 beleška, 2 beleške, 5 beleški), and
//! [`Lang::value`] the label of a value of a fixed vocabulary (`vocab-FIELD-VALUE`). A test fails
//! when any id, or any value of any vocabulary, lacks a translation in one of the three files.
//!
//! Times are shown in the office's time zone, an IANA name (`office_time_zone` in the
//! configuration, `Europe/Belgrade` by default) looked up in the tz database (the system's, else
//! the copy compiled into jiff), set for each web request by [`crate::http::web::auth`].

use std::collections::HashMap;
use std::sync::OnceLock;

use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource};
use time::{Date, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};
/// A page language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// English.
    En,
    /// Serbian, Latin script.
    SrLatn,
    /// Serbian, Cyrillic script.
    SrCyrl,
}

impl Lang {
    /// Every language, for the picker.
    pub const ALL: [Lang; 3] = [Lang::En, Lang::SrLatn, Lang::SrCyrl];

    /// BCP 47 code (stored per user, used in `<html lang>`).
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::SrLatn => "sr-Latn",
            Lang::SrCyrl => "sr-Cyrl",
        }
    }

    /// Parses a code; English for anything unknown.
    pub fn from_code(code: &str) -> Lang {
        Lang::ALL
            .into_iter()
            .find(|l| l.code() == code)
            .unwrap_or(Lang::En)
    }

    /// The language's own name.
    pub fn name(self) -> &'static str {
        match self {
            Lang::En => "English",
            Lang::SrLatn => "Srpski (latinica)",
            Lang::SrCyrl => "Српски (ћирилица)",
        }
    }

    /// The language an anonymous visitor's browser asks for (`Accept-Language`, in order):
    /// `sr-Latn…` is Serbian Latin, any other `sr…` (`sr`, `sr-RS`, `sr-Cyrl`) Serbian
    /// Cyrillic, the official script; anything else, or nothing, English.
    pub fn from_accept_language(header: &str) -> Option<Lang> {
        header.split(',').find_map(|part| {
            let tag = part
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            if tag.starts_with("sr-latn") {
                Some(Lang::SrLatn)
            } else if tag == "sr" || tag.starts_with("sr-") {
                Some(Lang::SrCyrl)
            } else if tag == "en" || tag.starts_with("en-") {
                Some(Lang::En)
            } else {
                None
            }
        })
    }

    /// Parses a code exactly; `None` for anything unknown.
    pub fn parse(code: &str) -> Option<Lang> {
        Lang::ALL.into_iter().find(|l| l.code() == code)
    }

    /// The text of `msg` in this language.
    pub fn t(self, msg: Msg) -> &'static str {
        self.text(msg.id())
    }

    /// The text of the Fluent message `id` (without arguments) in this language; English
    /// where this language lacks it, the id itself where English does too (a test keeps both
    /// from happening).
    pub fn text(self, id: &str) -> &'static str {
        let tables = texts();
        tables[self.index()]
            .get(id)
            .or_else(|| tables[0].get(id))
            .copied()
            .unwrap_or("?")
    }

    /// The label of `value` of the vocabulary `field` (`vocab-FIELD-VALUE`, `_` and `.` as `-`).
    pub fn value(self, field: &str, value: &str) -> &'static str {
        let id = format!("vocab-{field}-{}", value.replace(['_', '.'], "-"));
        let tables = texts();
        tables[self.index()]
            .get(id.as_str())
            .or_else(|| tables[0].get(id.as_str()))
            .copied()
            .unwrap_or("?")
    }

    /// The label of `value` of the vocabulary `field`, if the translations have one (for
    /// names that may come from elsewhere, such as an older audit log's actions).
    pub fn label(self, field: &str, value: &str) -> Option<&'static str> {
        let id = format!("vocab-{field}-{}", value.replace(['_', '.'], "-"));
        let tables = texts();
        tables[self.index()]
            .get(id.as_str())
            .or_else(|| tables[0].get(id.as_str()))
            .copied()
    }

    /// The label of a value of one of core's vocabularies.
    pub fn v<V: Vocab>(self, value: V) -> &'static str {
        self.value(V::FIELD, value.name())
    }

    /// `count` things as the Fluent message `id` says them, with the plural form this
    /// language's rules pick for `count`.
    pub fn count(self, id: &str, count: usize) -> String {
        let bundle = &bundles()[self.index()];
        let Some(pattern) = bundle.get_message(id).and_then(|m| m.value()) else {
            return count.to_string();
        };
        let mut args = FluentArgs::new();
        args.set("count", count);
        let mut errors = Vec::new();
        bundle
            .format_pattern(pattern, Some(&args), &mut errors)
            .into_owned()
    }

    fn index(self) -> usize {
        match self {
            Lang::En => 0,
            Lang::SrLatn => 1,
            Lang::SrCyrl => 2,
        }
    }
}

/// The Fluent sources, in the order of [`Lang::ALL`].
const SOURCES: [(&str, &str); 3] = [
    ("en", include_str!("../../../i18n/en.ftl")),
    // Serbian in either script follows Serbian's plural rules.
    ("sr", include_str!("../../../i18n/sr-Latn.ftl")),
    ("sr", include_str!("../../../i18n/sr-Cyrl.ftl")),
];

type Bundle = FluentBundle<FluentResource>;

/// The three bundles, parsed once. A file that does not parse keeps the messages that do (the
/// completeness test fails on the rest).
fn bundles() -> &'static [Bundle; 3] {
    static BUNDLES: OnceLock<[Bundle; 3]> = OnceLock::new();
    BUNDLES.get_or_init(|| {
        SOURCES.map(|(lang, source)| {
            let lang: unic_langid::LanguageIdentifier = lang
                .parse()
                .unwrap_or_else(|_| unic_langid::LanguageIdentifier::default());
            let mut bundle = FluentBundle::new_concurrent(vec![lang]);
            // HTML pages: no Unicode isolation marks around placeables.
            bundle.set_use_isolating(false);
            let resource = match FluentResource::try_new(source.to_owned()) {
                Ok(r) => r,
                Err((r, _)) => r,
            };
            let _ = bundle.add_resource(resource);
            bundle
        })
    })
}

/// Every message without arguments, formatted once per language and kept for the life of the
/// process (a few kilobytes), so pages borrow `&'static str`.
fn texts() -> &'static [HashMap<&'static str, &'static str>; 3] {
    static TEXTS: OnceLock<[HashMap<&'static str, &'static str>; 3]> = OnceLock::new();
    TEXTS.get_or_init(|| {
        let all = bundles();
        [0, 1, 2].map(|i| {
            let bundle = &all[i];
            let mut out = HashMap::new();
            for id in message_ids(SOURCES[i].1) {
                let Some(pattern) = bundle.get_message(id).and_then(|m| m.value()) else {
                    continue;
                };
                let mut errors = Vec::new();
                let text = bundle
                    .format_pattern(pattern, None, &mut errors)
                    .into_owned();
                out.insert(id, &*Box::leak(text.into_boxed_str()));
            }
            out
        })
    })
}

/// The ids of the messages a Fluent source defines (lines `id =` at the start of a line).
fn message_ids(source: &'static str) -> impl Iterator<Item = &'static str> {
    source.lines().filter_map(|line| {
        let (id, _) = line.split_once(" =")?;
        let ok = !id.is_empty()
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        ok.then_some(id)
    })
}

/// A fixed vocabulary whose values the pages show by label (`vocab-FIELD-VALUE`).
pub trait Vocab: Copy + 'static {
    /// The vocabulary's name in the Fluent ids.
    const FIELD: &'static str;
    /// Every value.
    fn all() -> &'static [Self];
    /// The value's stable name.
    fn name(self) -> &'static str;
}

macro_rules! vocab {
    ($($ty:path => $field:literal),+ $(,)?) => {
        $(impl Vocab for $ty {
            const FIELD: &'static str = $field;
            fn all() -> &'static [Self] { <$ty>::ALL }
            fn name(self) -> &'static str { self.as_str() }
        })+

        /// Checks every value of every vocabulary against a language's labels (for the test).
        #[cfg(test)]
        fn missing_values(lang: Lang) -> Vec<String> {
            let mut missing = Vec::new();
            $(for v in <$ty>::ALL {
                let id = format!("vocab-{}-{}", $field, v.as_str().replace(['_', '.'], "-"));
                if !texts()[lang.index()].contains_key(id.as_str()) {
                    missing.push(id);
                }
            })+
            missing
        }
    };
}

use fieldcase_core::model as m;
vocab! {
    m::CaseStatus => "case-status",
    m::ConsentStatus => "consent",
    m::RiskLevel => "risk-level",
    m::LegalStatus => "legal-status",
    m::OfficeKind => "office-kind",
    m::TaskStatus => "task-status",
    m::NoteKind => "note-kind",
    m::AssistanceTag => "assistance-tag",
    m::GoalStatus => "goal-status",
    m::Gender => "gender",
    m::ExploitationType => "exploitation",
    m::LabourIndustry => "labour-industry",
    m::MeansOfControl => "means-of-control",
    m::RecruitmentMethod => "recruitment-method",
    m::HtcdsStatus => "htcds-status",
    m::ClosureReason => "closure-reason",
}

impl Vocab for fieldcase_core::protocol::Role {
    const FIELD: &'static str = "role";
    fn all() -> &'static [Self] {
        &[
            fieldcase_core::protocol::Role::FieldWorker,
            fieldcase_core::protocol::Role::CaseManager,
            fieldcase_core::protocol::Role::Admin,
        ]
    }
    fn name(self) -> &'static str {
        self.as_str()
    }
}

impl Vocab for crate::office::devices::DeviceStatus {
    const FIELD: &'static str = "device-status";
    fn all() -> &'static [Self] {
        &[
            crate::office::devices::DeviceStatus::Active,
            crate::office::devices::DeviceStatus::Revoked,
        ]
    }
    fn name(self) -> &'static str {
        self.as_str()
    }
}

/// Fields a conflict can be on (`vocab-conflict-field-…`), and actions of a case's history
/// (`vocab-history-…`): every name core can give, for the completeness test.
#[cfg(test)]
pub(crate) const CONFLICT_FIELDS: &[&str] = &[
    "consent",
    "risk_level",
    "legal_status",
    "outcome",
    "status",
    "client_code",
    "follow_up",
    "scheduled_at",
    "office_name",
    "office_address",
    "purpose",
    "description",
    "target_date",
    "area",
];
/// The actions the office writes to its audit log, each with a label.
#[cfg(test)]
pub(crate) const AUDIT_ACTIONS: &[&str] = &[
    "alert_acknowledged",
    "duress_alert_raised",
    "duress_notice",
    "attachment_downloaded",
    "attachment_thumbnail",
    "attachment_added",
    "backup_taken",
    "case_assigned",
    "case_assigned_web",
    "case_break_glass",
    "case_closed",
    "case_created",
    "case_erased",
    "case_list_read",
    "case_moved",
    "case_opened_web",
    "case_purged",
    "case_put_on_hold",
    "case_read",
    "case_read_case_file",
    "case_file_notes",
    "case_read_cli",
    "case_read_conflicts",
    "case_read_live",
    "case_read_quarantine",
    "case_read_timeline",
    "case_recovered",
    "case_reopened",
    "case_status_open",
    "case_status_on_hold",
    "case_status_closed",
    "case_unassigned",
    "case_unassigned_web",
    "conflict_resolved",
    "device_confirmed",
    "device_enrolled",
    "device_revoked",
    "device_started_over",
    "enrollment_code_issued",
    "htcds_exported",
    "office_restored",
    "plan_goal_added",
    "plan_goal_changed",
    "plan_reviewed",
    "plan_service_added",
    "profile_changed",
    "quarantine_held",
    "quarantine_released",
    "quarantine_discarded",
    "task_added",
    "task_added_web",
    "team_created",
    "team_joined",
    "team_left",
    "tls_next_prepared",
    "tls_rotated",
    "user_added",
    "user_deactivated",
    "user_role_changed",
    "web_login",
    "web_login_failed",
    "web_logout",
    "web_password_set",
];
#[cfg(test)]
pub(crate) const HISTORY_ACTIONS: &[&str] = &[
    "case.create",
    "case.status",
    "case.assign",
    "case.update",
    "goal.add",
    "goal.update",
    "service.add",
    "review.add",
    "profile.update",
];

macro_rules! messages {
    ($($name:ident => $id:literal),+ $(,)?) => {
        /// The strings of the pages, each by its id in the Fluent files.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        #[allow(missing_docs)]
        pub enum Msg { $($name),+ }

        impl Msg {
            /// Every message.
            pub const ALL: &'static [Msg] = &[$(Msg::$name),+];

            /// Its Fluent id.
            pub fn id(self) -> &'static str {
                match self { $(Msg::$name => $id),+ }
            }
        }
    };
}

messages! {
    Attachments => "attachments",
    NoneYet => "none-yet",
    Download => "download",
    StillArriving => "still-arriving",
    WhatItIs => "what-it-is",
    AttachmentFile => "attachment-file",
    Attach => "attach",
    CaseFile => "case-file",
    CaseFileIntro => "case-file-intro",
    CaseFileSections => "case-file-sections",
    Accompaniments => "accompaniments",
    CaseFileNotes => "case-file-notes",
    PrepareCaseFile => "prepare-case-file",
    PrintNow => "print-now",
    PreparedOn => "prepared-on",
    CaseFileConfidential => "case-file-confidential",
    OpenedOn => "opened-on",
    FollowUp => "follow-up",
    NoNotesSelected => "case-file-no-notes",
    CaseFileEnd => "case-file-end",
    BackToCase => "back-to-case",
    SignIn => "sign-in",
    SignOut => "sign-out",
    UserName => "user-name",
    Password => "password",
    BadLogin => "bad-login",
    TooMany => "too-many",
    Cases => "cases",
    Devices => "devices",
    Quarantine => "quarantine",
    Language => "language",
    Save => "save",
    SkipToContent => "skip-to-content",
    Client => "client",
    Status => "status",
    Notes => "notes",
    LastActivity => "last-activity",
    Timeline => "timeline",
    VisitNote => "visit-note",
    Task => "task",
    By => "by",
    Device => "device",
    NewTask => "new-task",
    Purpose => "purpose",
    OfficeKind => "office-kind",
    OfficeName => "office-name",
    OfficeAddress => "office-address",
    Date => "date",
    TimeOfDay => "time-of-day",
    Checklist => "checklist",
    Assignees => "assignees",
    CreateTask => "create-task",
    User => "user",
    State => "state",
    LastSync => "last-sync",
    LeaseExpiry => "lease-expiry",
    Receipts => "receipts",
    Revoke => "revoke",
    ConfirmRevoke => "confirm-revoke",
    YesRevoke => "yes-revoke",
    Cancel => "cancel",
    Release => "release",
    Discard => "discard",
    NotesAdded => "notes-added",
    NotesDeleted => "notes-deleted",
    TasksChanged => "tasks-changed",
    TasksDeleted => "tasks-deleted",
    FieldsChanged => "fields-changed",
    Received => "received",
    Decision => "decision",
    Waiting => "waiting",
    Show => "show",
    Nothing => "nothing",
    FieldWorkerHome => "field-worker-home",
    Users => "users",
    Audit => "audit",
    TasksByDay => "tasks-by-day",
    AddUser => "add-user",
    RoleLabel => "role-label",
    Active => "active",
    Deactivate => "deactivate",
    ConfirmDeactivate => "confirm-deactivate",
    IssueCode => "issue-code",
    CodeHint => "code-hint",
    SetPassword => "set-password",
    ChainIntact => "chain-intact",
    ChainBroken => "chain-broken",
    ChainHead => "chain-head",
    ChainOlder => "chain-older",
    When => "when",
    Action => "action",
    Detail => "detail",
    Yes => "yes",
    No => "no",
    Done => "done",
    ConflictInbox => "conflict-inbox",
    ConflictHint => "conflict-hint",
    NoConflicts => "no-conflicts",
    Field => "field",
    Value => "value",
    NewValue => "new-value",
    KeepValue => "keep-value",
    Decide => "decide",
    Shown => "shown",
    Consent => "consent",
    RiskLevel => "risk-level",
    LegalStatus => "legal-status",
    Outcome => "outcome",
    ConflictsWaiting => "conflicts-waiting",
    ChangeRole => "change-role",
    QrHint => "qr-hint",
    InviteUnavailable => "invite-unavailable",
    Forbidden => "forbidden",
    CsrfRefused => "csrf-refused",
    NotFound => "not-found",
    BadRequest => "bad-request",
    ServerFailure => "server-failure",
    AlreadyResolved => "already-resolved",
    LastAdmin => "last-admin",
    BackHome => "back-home",
    LiveUpdates => "live-updates",
    Team => "team",
    AwaitingConfirmation => "awaiting-confirmation",
    FingerprintOnPhone => "fingerprint-on-phone",
    KeyFingerprint => "key-fingerprint",
    Confirm => "confirm",
    FingerprintMismatch => "fingerprint-mismatch",
    LastBackup => "last-backup",
    NoBackupYet => "no-backup-yet",
    BackupOk => "backup-ok",
    BackupFailed => "backup-failed",
    EditedBy => "edited-by",
    Teams => "teams",
    Members => "members",
    NewTeam => "new-team",
    CreateTeam => "create-team",
    AddMember => "add-member",
    RemoveMember => "remove-member",
    MoveCase => "move-case",
    OutsideTeam => "outside-team",
    BreakGlassIntro => "break-glass-intro",
    Reason => "reason",
    OpenBreakGlass => "open-break-glass",
    BreakGlassOpenUntil => "break-glass-open-until",
    BreakGlassReads => "break-glass-reads",
    Plan => "plan",
    Goals => "goals",
    Goal => "goal",
    Area => "area",
    Description => "description",
    TargetDate => "target-date",
    AddGoal => "add-goal",
    ChangeStatus => "change-status",
    Services => "services",
    Service => "service",
    GivenOn => "given-on",
    AddService => "add-service",
    LinkedGoals => "linked-goals",
    LinkedTasks => "linked-tasks",
    LinkedNotes => "linked-notes",
    Reviews => "reviews",
    ReviewedOn => "reviewed-on",
    Reviewer => "reviewer",
    Summary => "summary",
    AddReview => "add-review",
    Profile => "profile",
    Gender => "gender",
    BirthYear => "birth-year",
    Nationality => "nationality",
    Exploitation => "exploitation",
    LabourIndustry => "labour-industry",
    MeansOfControl => "means-of-control",
    RecruitmentMethod => "recruitment-method",
    RecruitmentCountry => "recruitment-country",
    HtcdsStatus => "htcds-status",
    ClosureReason => "closure-reason",
    SaveProfile => "save-profile",
    NotRecorded => "not-recorded",
    History => "history",
    NewCase => "new-case",
    ClientCode => "client-code",
    ConsentAtIntake => "consent-at-intake",
    AssignedWorkers => "assigned-workers",
    OpenCase => "open-case",
    Lifecycle => "lifecycle",
    Assign => "assign",
    Unassign => "unassign",
    PutOnHold => "put-on-hold",
    CloseCase => "close-case",
    Reopen => "reopen",
    Office => "office",
    ForWhom => "for-whom",
    WithdrawConsent => "withdraw-consent",
    ConfirmErase => "confirm-erase",
    YesErase => "yes-erase",
    Erased => "erased",
    DuressAlert => "duress-alert",
    Acknowledge => "acknowledge",
    Reports => "reports",
    ReportFrom => "report-from",
    ReportTo => "report-to",
    ReportTeam => "report-team",
    ReportMyTeams => "report-my-teams",
    ReportOffice => "report-office",
    ReportShow => "report-show",
    ReportCsv => "report-csv",
    ReportPeriod => "report-period",
    ReportPrevious => "report-previous",
    ReportCount => "report-count",
    ReportChange => "report-change",
    ReportTotal => "report-total",
    ReportWhat => "report-what",
    ReportHiddenNote => "report-hidden-note",
    ReportChartCurrent => "report-chart-current",
    ReportChartPrevious => "report-chart-previous",
    ReportSectionCases => "report-section-cases",
    ReportSectionClosedByReason => "report-section-closed-by-reason",
    ReportSectionIdentified => "report-section-identified",
    ReportSectionAge => "report-section-age",
    ReportSectionGender => "report-section-gender",
    ReportSectionExploitation => "report-section-exploitation",
    ReportSectionNationality => "report-section-nationality",
    ReportSectionAccompanimentsByKind => "report-section-accompaniments-by-kind",
    ReportSectionAccompanimentsByOutcome => "report-section-accompaniments-by-outcome",
    ReportSectionServices => "report-section-services",
    ReportSectionGoalsAchieved => "report-section-goals-achieved",
    ReportKeyNew => "report-key-new",
    ReportKeyOpen => "report-key-open",
    ReportKeyClosed => "report-key-closed",
    ReportKeyYes => "report-key-yes",
    ReportKeyNo => "report-key-no",
    ReportKeyChild => "report-key-child",
    ReportKeyAdult => "report-key-adult",
    ReportKeyNotRecorded => "report-key-not-recorded",
    ReportKeyOther => "report-key-other",
}

pub use crate::config::DEFAULT_TIME_ZONE;

/// The office's time zone, checked once at start-up ([`OfficeZone::get`]).
#[derive(Debug, Clone)]
pub struct OfficeZone {
    name: String,
    zone: jiff::tz::TimeZone,
}

impl OfficeZone {
    /// The IANA time zone `name` (`Europe/Belgrade`), from the tz database; `None` when the
    /// database does not know it.
    pub fn get(name: &str) -> Option<OfficeZone> {
        jiff::tz::TimeZone::get(name).ok().map(|zone| OfficeZone {
            name: name.to_owned(),
            zone,
        })
    }

    /// The default zone, Europe/Belgrade (UTC if even that were missing).
    pub fn default_zone() -> OfficeZone {
        OfficeZone::get(DEFAULT_TIME_ZONE).unwrap_or_else(|| OfficeZone {
            name: "UTC".to_owned(),
            zone: jiff::tz::TimeZone::UTC,
        })
    }

    /// The zone's IANA name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The zone's UTC offset at the instant `t`. Total over every time `time` can hold: core
    /// keeps the times of cases between 1900 and 2199, but the office shows what it is given
    /// and must not fail on a time near the ends of the range.
    pub fn offset_at(&self, t: OffsetDateTime) -> UtcOffset {
        jiff::Timestamp::from_second(t.unix_timestamp())
            .ok()
            .map(|ts| self.zone.to_offset(ts).seconds())
            .and_then(|s| UtcOffset::from_whole_seconds(s).ok())
            .unwrap_or(UtcOffset::UTC)
    }

    /// A wall-clock date and time in this zone as an instant (in a gap or an overlap of a
    /// daylight-saving change, the earlier offset's reading, as most calendars do).
    pub fn instant(&self, date: Date, time: Time) -> OffsetDateTime {
        let local = PrimitiveDateTime::new(date, time);
        let civil = jiff::civil::DateTime::new(
            i16::try_from(date.year()).unwrap_or(1970),
            i8::try_from(u8::from(date.month())).unwrap_or(1),
            i8::try_from(date.day()).unwrap_or(1),
            i8::try_from(time.hour()).unwrap_or(0),
            i8::try_from(time.minute()).unwrap_or(0),
            i8::try_from(time.second()).unwrap_or(0),
            0,
        );
        let offset = civil
            .ok()
            .and_then(|c| self.zone.to_ambiguous_timestamp(c).compatible().ok())
            .map(|ts| self.zone.to_offset(ts).seconds())
            .and_then(|s| UtcOffset::from_whole_seconds(s).ok())
            .unwrap_or(UtcOffset::UTC);
        local.assume_offset(offset)
    }

    /// `t` in this zone as `YYYY-MM-DD HH:MM` (as it was written where the zone cannot hold
    /// it, past the end of the year 9999).
    pub fn show(&self, t: OffsetDateTime) -> String {
        let l = t.checked_to_offset(self.offset_at(t)).unwrap_or(t);
        format!(
            "{:04}-{:02}-{:02} {:02}:{:02}",
            l.year(),
            u8::from(l.month()),
            l.day(),
            l.hour(),
            l.minute()
        )
    }
}

tokio::task_local! {
    /// The office's time zone for the web request being answered.
    static REQUEST_ZONE: OfficeZone;
}

/// Runs `f` with `zone` as the office's time zone of this request.
pub(crate) async fn with_zone<F: std::future::Future>(zone: OfficeZone, f: F) -> F::Output {
    REQUEST_ZONE.scope(zone, f).await
}

/// The office's zone of the request being answered (the default zone outside a web request).
pub(crate) fn office_zone() -> OfficeZone {
    REQUEST_ZONE
        .try_with(Clone::clone)
        .unwrap_or_else(|_| OfficeZone::default_zone())
}

/// `t` in the office's time zone as `YYYY-MM-DD HH:MM`.
pub(crate) fn belgrade(t: OffsetDateTime) -> String {
    office_zone().show(t)
}

/// Unix seconds in the office's time zone, or a dash.
pub(crate) fn belgrade_unix(secs: Option<i64>) -> String {
    secs.and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
        .map(belgrade)
        .unwrap_or_else(|| "—".to_owned())
}

/// A wall-clock date and time in the office's time zone as an instant.
pub(crate) fn from_belgrade(date: Date, time: Time) -> OffsetDateTime {
    office_zone().instant(date, time)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_at_the_ends_of_the_range_are_shown_not_a_panic() {
        for t in [
            datetime!(9999-12-31 23:30 UTC),
            datetime!(9999-12-31 23:59:59 -01:00),
            datetime!(-9999-01-01 00:00 UTC),
            datetime!(-9999-01-01 00:00 +05:00),
        ] {
            let shown = belgrade(t);
            assert!(shown.contains(':'), "{shown}");
        }
        assert_eq!(
            belgrade(datetime!(9999-12-31 23:30 UTC)),
            "9999-12-31 23:30"
        );
    }
    use time::macros::datetime;

    #[test]
    fn summer_and_winter() {
        assert_eq!(
            belgrade(datetime!(2026-01-15 12:00 UTC)),
            "2026-01-15 13:00"
        );
        assert_eq!(
            belgrade(datetime!(2026-07-15 12:00 UTC)),
            "2026-07-15 14:00"
        );
        // 2026: DST from 29 March 01:00 UTC to 25 October 01:00 UTC.
        assert_eq!(
            belgrade(datetime!(2026-03-29 00:59 UTC)),
            "2026-03-29 01:59"
        );
        assert_eq!(
            belgrade(datetime!(2026-03-29 01:00 UTC)),
            "2026-03-29 03:00"
        );
        assert_eq!(
            belgrade(datetime!(2026-10-25 00:59 UTC)),
            "2026-10-25 02:59"
        );
        assert_eq!(
            belgrade(datetime!(2026-10-25 01:00 UTC)),
            "2026-10-25 02:00"
        );
        let t = from_belgrade(
            time::macros::date!(2026 - 07 - 01),
            time::macros::time!(10:00),
        );
        assert_eq!(t, datetime!(2026-07-01 08:00 UTC));
    }

    #[test]
    fn browser_languages() {
        assert_eq!(
            Lang::from_accept_language("sr-RS,sr;q=0.9,en;q=0.8"),
            Some(Lang::SrCyrl)
        );
        assert_eq!(Lang::from_accept_language("sr-Latn-RS"), Some(Lang::SrLatn));
        assert_eq!(
            Lang::from_accept_language("de-DE,en-US;q=0.5"),
            Some(Lang::En)
        );
        assert_eq!(Lang::from_accept_language("de"), None);
        assert_eq!(Lang::parse("sr-Cyrl"), Some(Lang::SrCyrl));
        assert_eq!(Lang::parse("xx"), None);
    }

    #[test]
    fn languages() {
        assert_eq!(Lang::from_code("sr-Cyrl").t(Msg::Cases), "Случајеви");
        assert_eq!(Lang::from_code("xx"), Lang::En);
    }

    #[test]
    fn every_message_and_every_vocabulary_value_is_translated_in_every_language() {
        let mut missing = Vec::new();
        for lang in Lang::ALL {
            let table = &texts()[lang.index()];
            for msg in Msg::ALL {
                if !table.contains_key(msg.id()) {
                    missing.push(format!("{}: {}", lang.code(), msg.id()));
                }
            }
            missing.extend(
                missing_values(lang)
                    .into_iter()
                    .map(|id| format!("{}: {id}", lang.code())),
            );
            for (field, names) in [
                ("role", vec!["field-worker", "case-manager", "admin"]),
                ("device-status", vec!["active", "revoked"]),
                ("conflict-field", CONFLICT_FIELDS.to_vec()),
                ("history", HISTORY_ACTIONS.to_vec()),
                ("audit-action", AUDIT_ACTIONS.to_vec()),
                ("quarantine-decision", vec!["released", "discarded"]),
            ] {
                for name in names {
                    if lang.value(field, name) == "?" {
                        missing.push(format!("{}: vocab-{field}-{name}", lang.code()));
                    }
                }
            }
            for id in [
                "notes-count",
                "goals-count",
                "conflicts-count",
                "report-rule",
            ] {
                if bundles()[lang.index()].get_message(id).is_none() {
                    missing.push(format!("{}: {id}", lang.code()));
                }
            }
            // Nothing in one file that the others lack (a key only a translator added).
            for other in Lang::ALL {
                for id in message_ids(SOURCES[other.index()].1) {
                    if bundles()[lang.index()].get_message(id).is_none() {
                        missing.push(format!("{}: {id} (in {})", lang.code(), other.code()));
                    }
                }
            }
        }
        missing.sort();
        missing.dedup();
        assert!(missing.is_empty(), "untranslated: {missing:#?}");
        // The conflict fields and history actions the pages name are those core gives.
        for f in fieldcase_core::document::SENSITIVE_CASE_FIELDS {
            assert!(CONFLICT_FIELDS.contains(f));
        }
    }

    #[test]
    fn serbian_plurals_come_from_the_plural_rules() {
        let forms = |l: Lang| -> Vec<String> {
            [1, 2, 5, 11, 21, 22, 25]
                .map(|n| l.count("notes-count", n))
                .to_vec()
        };
        assert_eq!(
            forms(Lang::SrLatn),
            [
                "1 beleška",
                "2 beleške",
                "5 beleški",
                "11 beleški",
                "21 beleška",
                "22 beleške",
                "25 beleški"
            ]
        );
        assert_eq!(forms(Lang::SrCyrl)[1], "2 белешке");
        assert_eq!(Lang::En.count("notes-count", 1), "1 note");
        assert_eq!(Lang::En.count("notes-count", 2), "2 notes");
        assert_eq!(Lang::SrCyrl.v(m::GoalStatus::Achieved), "остварен");
        assert_eq!(Lang::En.value("conflict-field", "risk_level"), "risk level");
    }

    #[test]
    #[allow(clippy::unwrap_used)]
    fn the_office_zone_comes_from_the_tz_database() {
        let tokyo = OfficeZone::get("Asia/Tokyo").unwrap();
        assert_eq!(
            tokyo.show(datetime!(2026-07-15 12:00 UTC)),
            "2026-07-15 21:00"
        );
        assert!(OfficeZone::get("Mars/Olympus_Mons").is_none());
        let ny = OfficeZone::get("America/New_York").unwrap();
        assert_eq!(
            ny.instant(
                time::macros::date!(2026 - 07 - 01),
                time::macros::time!(10:00)
            ),
            datetime!(2026-07-01 14:00 UTC)
        );
    }
}
