//! The fixed vocabularies of the model: statuses, kinds of office, kinds of note, assistance tags.
//!
//! Each has a stable lowercase name used in documents and on the wire; parsing an unknown name is
//! a typed [`ValidationError::UnknownValue`].

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::ValidationError;

macro_rules! vocabulary {
    ($(#[$doc:meta])* $name:ident, $field:literal { $($(#[$vdoc:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($(#[$vdoc])* $variant),+
        }

        impl $name {
            /// Every value, in declaration order (for pickers in a UI).
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stable name used in documents and on the wire.
            pub fn as_str(&self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl FromStr for $name {
            type Err = ValidationError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(ValidationError::UnknownValue { field: $field }),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
pub(crate) use vocabulary;

vocabulary!(
    /// Where a case stands.
    CaseStatus, "case status" {
        /// Being worked on.
        Open => "open",
        /// Paused (client unreachable, waiting for a decision).
        OnHold => "on_hold",
        /// Finished; kept until its retention period ends.
        Closed => "closed",
    }
);

vocabulary!(
    /// Whether the client agreed to the organisation keeping their data.
    ConsentStatus, "consent" {
        /// Not yet asked or not yet recorded.
        Pending => "pending",
        /// Given.
        Given => "given",
        /// Withdrawn after having been given.
        Withdrawn => "withdrawn",
    }
);

vocabulary!(
    /// How much danger the client is in, as last assessed (sensitive: concurrent changes wait for
    /// a case manager in the conflict inbox).
    RiskLevel, "risk level" {
        /// Not assessed yet (also what documents written before the field existed read as).
        NotAssessed => "not_assessed",
        /// Low.
        Low => "low",
        /// Medium.
        Medium => "medium",
        /// High: the client may be in danger.
        High => "high",
    }
);

vocabulary!(
    /// Where the client stands legally (status as a victim of trafficking, residence), as last
    /// recorded (sensitive: concurrent changes wait for a case manager in the conflict inbox).
    LegalStatus, "legal status" {
        /// Not known or not recorded yet (also what older documents read as).
        Unknown => "unknown",
        /// Being identified as a victim of trafficking (preliminary identification).
        IdentificationPending => "identification_pending",
        /// Formally identified as a victim of trafficking.
        IdentifiedVictim => "identified_victim",
        /// A residence permit or a decision on it is pending.
        ResidencePending => "residence_pending",
        /// Holds a temporary residence permit.
        TemporaryResidence => "temporary_residence",
        /// A citizen or permanent resident: no residence question.
        Resident => "resident",
    }
);

vocabulary!(
    /// Where an accompaniment takes the client.
    OfficeKind, "office kind" {
        /// Police station.
        Police => "police",
        /// Social welfare centre.
        SocialWelfareCentre => "social_welfare_centre",
        /// Court.
        Court => "court",
        /// Public prosecutor's office.
        Prosecutor => "prosecutor",
        /// Registry office (birth certificates, identity documents).
        RegistryOffice => "registry_office",
        /// Health centre or clinic.
        HealthCentre => "health_centre",
        /// National employment service.
        EmploymentService => "employment_service",
        /// Embassy or consulate.
        EmbassyOrConsulate => "embassy_or_consulate",
        /// School.
        School => "school",
        /// Anything else.
        Other => "other",
    }
);

vocabulary!(
    /// Where an accompaniment task stands.
    TaskStatus, "task status" {
        /// Planned, not yet started.
        Planned => "planned",
        /// The worker is with the client at the office now.
        InProgress => "in_progress",
        /// Done.
        Done => "done",
        /// The client or the office did not come.
        Missed => "missed",
        /// Called off.
        Cancelled => "cancelled",
    }
);

vocabulary!(
    /// What kind of contact a note records.
    NoteKind, "note kind" {
        /// An accompaniment or visit in person.
        Visit => "visit",
        /// A phone call.
        Call => "call",
        /// A meeting at the office.
        Meeting => "meeting",
        /// An observation or anything else worth keeping.
        Observation => "observation",
    }
);

vocabulary!(
    /// The kinds of assistance the organisation gives, used to tag notes.
    AssistanceTag, "assistance tag" {
        /// SOS line.
        Sos => "sos",
        /// Psychological support.
        Psychological => "psychological",
        /// Legal aid.
        Legal => "legal",
        /// Medical help.
        Medical => "medical",
        /// Reintegration.
        Reintegration => "reintegration",
        /// Vocational training.
        VocationalTraining => "vocational_training",
        /// Job search.
        JobSearch => "job_search",
        /// Day centre.
        DayCentre => "day_centre",
        /// Help with administrative obstacles (documents, registrations).
        Administrative => "administrative",
    }
);

vocabulary!(
    /// Where a goal of the recovery plan stands (sensitive: concurrent changes wait for a case
    /// manager in the conflict inbox).
    GoalStatus, "goal status" {
        /// Agreed with the client, not started.
        Planned => "planned",
        /// Being worked on.
        InProgress => "in_progress",
        /// Reached.
        Achieved => "achieved",
        /// Given up (the client's choice, or no longer relevant).
        Dropped => "dropped",
    }
);

vocabulary!(
    /// The client's gender (HTCDS v2 `gender`).
    Gender, "gender" {
        /// Female.
        Female => "female",
        /// Male.
        Male => "male",
        /// Transgender, non-binary or another gender identity.
        Other => "other",
    }
);

vocabulary!(
    /// A type of exploitation the client suffered (HTCDS v2 `typeOfExploit…` flags). A case may
    /// record several.
    ExploitationType, "type of exploitation" {
        /// Sexual exploitation.
        Sexual => "sexual",
        /// Forced labour (the industry is recorded beside it).
        Labour => "labour",
        /// Forced marriage.
        ForcedMarriage => "forced_marriage",
        /// Forced criminal activity.
        ForcedCriminality => "forced_criminality",
        /// Forced begging.
        Begging => "begging",
        /// Any other form.
        Other => "other",
    }
);

vocabulary!(
    /// The industry of labour exploitation (HTCDS v2 `typeOfLabour`).
    LabourIndustry, "labour industry" {
        /// Agriculture.
        Agriculture => "agriculture",
        /// Construction.
        Construction => "construction",
        /// Domestic work.
        DomesticWork => "domestic_work",
        /// Manufacturing.
        Manufacturing => "manufacturing",
        /// Hospitality (hotels, restaurants, bars).
        Hospitality => "hospitality",
        /// Fishing.
        Fishing => "fishing",
        /// Mining or quarrying.
        Mining => "mining",
        /// Any other industry.
        Other => "other",
    }
);

vocabulary!(
    /// A means by which traffickers controlled the client (HTCDS v2 `meansOfControl…` flags). A
    /// case may record several.
    MeansOfControl, "means of control" {
        /// Debt bondage.
        DebtBondage => "debt_bondage",
        /// Took the client's earnings.
        TakesEarnings => "takes_earnings",
        /// Threats against the client.
        Threats => "threats",
        /// Threats against the client's family.
        ThreatsToFamily => "threats_to_family",
        /// Psychological abuse.
        PsychologicalAbuse => "psychological_abuse",
        /// Physical abuse.
        PhysicalAbuse => "physical_abuse",
        /// Sexual abuse.
        SexualAbuse => "sexual_abuse",
        /// False promises.
        FalsePromises => "false_promises",
        /// Alcohol or drugs given to control.
        Substances => "substances",
        /// Movement restricted.
        RestrictsMovement => "restricts_movement",
        /// Identity documents withheld.
        WithholdsDocuments => "withholds_documents",
        /// Food, sleep or medical care withheld.
        WithholdsNecessities => "withholds_necessities",
        /// Threat of being reported to the authorities.
        ThreatOfAuthorities => "threat_of_authorities",
        /// Any other means.
        Other => "other",
    }
);

vocabulary!(
    /// How the client was recruited (HTCDS v2 `recruitmentType`).
    RecruitmentMethod, "recruitment method" {
        /// Through someone the client knew personally.
        PersonalContact => "personal_contact",
        /// Through a family member or partner.
        FamilyOrPartner => "family_or_partner",
        /// Through a job advertisement.
        JobAdvertisement => "job_advertisement",
        /// Through a recruitment or travel agency.
        Agency => "agency",
        /// Online or through social media.
        Online => "online",
        /// Abducted.
        Abduction => "abduction",
        /// Any other way.
        Other => "other",
    }
);

vocabulary!(
    /// The case's status as HTCDS v2 names it (`caseStatus`), beside fieldcase's own
    /// [`CaseStatus`] (which governs what phones hold).
    HtcdsStatus, "HTCDS case status" {
        /// Assistance is being given.
        Active => "active",
        /// Assistance has ended; the client is followed up.
        FollowUp => "follow_up",
        /// Closed.
        Closed => "closed",
        /// Closed and referred to another organisation.
        ClosedReferred => "closed_referred",
    }
);

vocabulary!(
    /// Why a case was closed (HTCDS v2 `reasonForClosure`).
    ClosureReason, "reason for closure" {
        /// The plan's goals were reached.
        GoalsAchieved => "goals_achieved",
        /// The client asked to end assistance.
        ClientRequest => "client_request",
        /// Contact with the client was lost.
        LostContact => "lost_contact",
        /// Referred to another organisation.
        Referred => "referred",
        /// The client moved away or returned to another country.
        Relocated => "relocated",
        /// The client died.
        Deceased => "deceased",
        /// Any other reason.
        Other => "other",
    }
);
