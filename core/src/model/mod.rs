//! The domain model: cases, visit notes, accompaniment tasks, and the rules their fields obey.
//!
//! These are plain values: what a screen shows and what the API accepts. How they are kept (one
//! automerge document per case) lives in [`crate::document`]; this module never touches storage.

mod attachment;
mod case;
mod country;
mod enums;
mod limits;
mod note;
mod plan;
mod profile;
mod task;
mod validation;

pub use attachment::{
    AttachmentRef, ContentHash, MediaType, NewAttachment, check_case_caps, chunk_count,
    validate_label, validate_size,
};
pub use case::{Case, CaseSummary, CaseUpdate, NewCase, TaskSummary};
pub use country::{Country, ISO_3166_ALPHA2};
pub use enums::{
    AssistanceTag, CaseStatus, ClosureReason, ConsentStatus, ExploitationType, Gender, GoalStatus,
    HtcdsStatus, LabourIndustry, LegalStatus, MeansOfControl, NoteKind, OfficeKind,
    RecruitmentMethod, RiskLevel, TaskStatus,
};
pub use limits::Limits;
pub(crate) use note::validate_body;
pub use note::{Author, NewNote, VisitNote};
pub use plan::{Goal, GoalUpdate, NewGoal, NewReview, NewService, Plan, PlanReview, Service};
pub use profile::ClientProfile;
pub use task::{ChecklistItem, NewTask, Task, TaskUpdate};
pub use validation::ValidationError;
pub(crate) use validation::required_text;
pub(crate) use validation::{date_in_range, time_in_range};
