//! Who wrote what, checked at the hub: every change an upload brings must be made by an
//! automerge actor registered (in the document's `authors` map) to the uploading device and its
//! user, and every note it creates must name that device and user as its author. Without this
//! a tampered phone could write notes in a colleague's name, or pass its changes off as the
//! office's.

use std::collections::BTreeSet;

use automerge::{ChangeHash, ReadDoc};

use super::{CaseDoc, guarded};
use crate::error::{CoreError, Result};
use crate::ids::NoteId;
use crate::model::Author;

impl CaseDoc {
    /// The ids of the notes the document holds (keys only, nothing read).
    pub fn note_keys(&self) -> BTreeSet<String> {
        self.notes_obj()
            .map(|notes| self.doc.keys(&notes).collect())
            .unwrap_or_default()
    }

    /// Checks the changes made since `before` against `author`, the device that uploaded them:
    /// each change's actor is registered to `author`, and each note that is not among
    /// `notes_before` names `author`. Refused with [`CoreError::Document`] otherwise.
    pub fn check_authorship(
        &mut self,
        before: &[ChangeHash],
        notes_before: &BTreeSet<String>,
        author: Author,
    ) -> Result<()> {
        // The changes' metadata only: building the changes themselves would make automerge
        // rebuild them from its operations (see `CaseDoc::changes_for`).
        let actors: BTreeSet<String> = guarded("reading the changes panicked", || {
            self.doc
                .get_changes_meta(before)
                .iter()
                .map(|c| c.actor.to_hex_string())
                .collect()
        })?;
        for actor in &actors {
            if self.author_of_actor(actor) != Some(author) {
                return Err(CoreError::Document(
                    "a change is not registered to the device that uploaded it",
                ));
            }
        }
        for key in self.note_keys().difference(notes_before) {
            let Ok(id) = key.parse::<NoteId>() else {
                continue;
            };
            if self.note(id).map(|n| n.author).ok() != Some(author) {
                return Err(CoreError::Document(
                    "a new note names another author than the device that uploaded it",
                ));
            }
        }
        Ok(())
    }
}
