//! The domain model: cases, visit notes, accompaniment tasks, and the rules their fields obey.
//!
//! These are plain values: what a screen shows and what the API accepts. How they are kept (one
//! automerge document per case) lives in [`crate::document`]; this module never touches storage.

mod attachment;
mod case;
mod enums;
mod limits;
mod note;
mod task;
mod validation;

pub use attachment::{
    AttachmentRef, ContentHash, MediaType, NewAttachment, check_case_caps, chunk_count,
    validate_label, validate_size,
};
pub use case::{Case, CaseSummary, CaseUpdate, NewCase, TaskSummary};
pub use enums::{
    AssistanceTag, CaseStatus, ConsentStatus, LegalStatus, NoteKind, OfficeKind, RiskLevel,
    TaskStatus,
};
pub use limits::Limits;
pub(crate) use note::validate_body;
pub use note::{Author, NewNote, VisitNote};
pub use task::{ChecklistItem, NewTask, Task, TaskUpdate};
pub use validation::ValidationError;
pub(crate) use validation::required_text;
pub(crate) use validation::time_in_range;
