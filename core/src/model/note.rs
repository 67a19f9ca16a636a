//! Visit notes: what a worker writes during or right after a visit.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::validation::{at_most, is_blank, optional_text, time_in_range};
use super::{AssistanceTag, Limits, NoteKind, ValidationError};
use crate::ids::{DeviceId, NoteId, TaskId, UserId};

/// Who made a change: the person and the phone (or server) they used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Author {
    /// The person.
    pub user: UserId,
    /// The device they wrote on.
    pub device: DeviceId,
}

/// A visit note as it stands after every merge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VisitNote {
    /// The note's id.
    pub id: NoteId,
    /// Who wrote it first.
    pub author: Author,
    /// When it was written (device clock).
    #[serde(with = "time::serde::rfc3339")]
    pub written_at: OffsetDateTime,
    /// When its body or tags were last edited, if ever.
    #[serde(with = "time::serde::rfc3339::option")]
    pub edited_at: Option<OffsetDateTime>,
    /// Who edited its body after it was written, each device once, sorted: colleagues on a
    /// case complete each other's notes, and the office shows who changed what someone wrote.
    #[serde(default)]
    pub edited_by: Vec<Author>,
    /// What kind of contact it records.
    pub kind: NoteKind,
    /// The text.
    pub body: String,
    /// Kinds of assistance the note is about, sorted.
    pub tags: Vec<AssistanceTag>,
    /// The accompaniment task it reports on, if any.
    pub task: Option<TaskId>,
}

impl VisitNote {
    /// Checks that the note's times lie in the range a record may hold (a note read from a
    /// document another replica wrote).
    pub(crate) fn check_times(&self) -> Result<(), ValidationError> {
        time_in_range("the time a note was written", self.written_at)?;
        if let Some(at) = self.edited_at {
            time_in_range("the time a note was edited", at)?;
        }
        Ok(())
    }
}

/// What a worker supplies to write a new note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewNote {
    /// What kind of contact it records.
    pub kind: NoteKind,
    /// The text; must not be blank.
    pub body: String,
    /// Kinds of assistance it is about.
    pub tags: Vec<AssistanceTag>,
    /// The task it reports on, if any (must exist in the case).
    pub task: Option<TaskId>,
}

impl NewNote {
    /// Checks the note against the model's rules.
    pub fn validate(&self) -> Result<(), ValidationError> {
        validate_body(&self.body)?;
        at_most("tags", self.tags.len(), AssistanceTag::ALL.len())
    }
}

/// A note body must show something (white space, zero-width and control characters alone are
/// blank), must fit [`Limits::NOTE_BODY_MAX`] and hold no control character but line breaks
/// and tabs.
pub(crate) fn validate_body(body: &str) -> Result<(), ValidationError> {
    if is_blank(body) {
        return Err(ValidationError::EmptyNote);
    }
    optional_text("note body", body, Limits::NOTE_BODY_MAX)
}
