//! The references to a case's attachments. Each is one JSON string under `attachments`, keyed by
//! the attachment's id: a reference is written once and never changed, so a scalar suits it (no
//! field can be merged half from one replica and half from another), and a removal deletes the
//! key. The bytes themselves never enter the document.

use std::collections::BTreeMap;

use automerge::transaction::Transactable;
use automerge::{ObjType, ReadDoc, ScalarValue, Value};
use time::OffsetDateTime;

use super::CaseDoc;
use super::read::child;
use super::write::{am, map, touch};
use crate::error::{CoreError, Result};
use crate::ids::AttachmentId;
use crate::model::{AttachmentRef, Author};

/// The attachment references of a document by key, as the hub compares them before and after an
/// upload (`None` for a key that does not hold a readable reference).
pub type AttachmentSnapshot = BTreeMap<String, Option<AttachmentRef>>;

impl CaseDoc {
    fn attachments_obj(&self) -> Option<automerge::ObjId> {
        child(&self.doc, &automerge::ROOT, "attachments", ObjType::Map)
    }

    /// Every readable attachment reference, by key (see [`AttachmentSnapshot`]).
    pub fn attachment_snapshot(&self) -> AttachmentSnapshot {
        let Some(obj) = self.attachments_obj() else {
            return AttachmentSnapshot::new();
        };
        self.doc
            .map_range(&obj, ..)
            .map(|item| {
                let parsed = match item.value {
                    automerge::ValueRef::Scalar(automerge::ScalarValueRef::Str(text)) => {
                        serde_json::from_str::<AttachmentRef>(&text)
                            .ok()
                            .filter(|r| r.id.to_string() == item.key && r.validate().is_ok())
                    }
                    _ => None,
                };
                (item.key.into_owned(), parsed)
            })
            .collect()
    }

    /// The case's attachments, oldest first. An entry that does not read as a reference is left
    /// out (the hub refuses such an entry from a phone).
    pub fn attachments(&self) -> Vec<AttachmentRef> {
        let mut refs: Vec<AttachmentRef> =
            self.attachment_snapshot().into_values().flatten().collect();
        refs.sort_by_key(|r| (r.added_at, r.id));
        refs
    }

    /// One attachment's reference.
    pub fn attachment(&self, id: AttachmentId) -> Result<AttachmentRef> {
        let obj = self
            .attachments_obj()
            .ok_or(CoreError::AttachmentNotFound)?;
        match self.doc.get(&obj, id.to_string()) {
            Ok(Some((Value::Scalar(s), _))) => match s.as_ref() {
                ScalarValue::Str(text) => {
                    serde_json::from_str(text).map_err(|_| CoreError::Corrupt {
                        what: "attachment reference",
                    })
                }
                _ => Err(CoreError::AttachmentNotFound),
            },
            _ => Err(CoreError::AttachmentNotFound),
        }
    }

    /// Records a new attachment's reference, after checking it and the caps of the case. The
    /// note or task it names must be in the case.
    pub fn add_attachment(&mut self, reference: &AttachmentRef, now: OffsetDateTime) -> Result<()> {
        reference.validate()?;
        crate::model::check_case_caps(&self.attachments(), reference.size)?;
        if let Some(note) = reference.note {
            self.note_obj(note)?;
        }
        if let Some(task) = reference.task {
            self.task_obj(task)?;
        }
        let json = serde_json::to_string(reference).map_err(|_| CoreError::Corrupt {
            what: "attachment reference",
        })?;
        self.transact(reference.author, now, "attachment.add", |d| {
            let obj = map(d, &automerge::ROOT, "attachments")?;
            d.put(&obj, reference.id.to_string(), json).map_err(am)?;
            touch(d, now)
        })
    }

    /// Removes an attachment's reference: only its author may, and only as itself.
    pub fn remove_attachment(
        &mut self,
        author: Author,
        id: AttachmentId,
        now: OffsetDateTime,
    ) -> Result<AttachmentRef> {
        let reference = self.attachment(id)?;
        if reference.author != author {
            return Err(CoreError::NotYours);
        }
        self.transact(author, now, "attachment.remove", |d| {
            let obj = map(d, &automerge::ROOT, "attachments")?;
            d.delete(&obj, id.to_string()).map_err(am)
        })?;
        Ok(reference)
    }
}

/// Checks what an upload did to the attachment references against `author`, the device that
/// uploaded it: a new reference must name that device and user and not be dated in the future;
/// a reference is never changed; only its author removes one.
pub(super) fn check_changes(
    before: &AttachmentSnapshot,
    after: &AttachmentSnapshot,
    author: Author,
    now: OffsetDateTime,
) -> Result<()> {
    let refuse = CoreError::Document;
    for (key, old) in before {
        match (old, after.get(key)) {
            (Some(old), None) if old.author != author => {
                return Err(refuse("an upload removes a colleague's attachment"));
            }
            (Some(old), Some(new)) if Some(old) != new.as_ref() => {
                return Err(refuse("an upload changes an attachment's reference"));
            }
            _ => {}
        }
    }
    for (key, new) in after {
        if before.contains_key(key) {
            continue;
        }
        let Some(new) = new else {
            return Err(refuse("a new attachment is not a readable reference"));
        };
        if new.author != author {
            return Err(refuse(
                "a new attachment names another author than the device that uploaded it",
            ));
        }
        if new.added_at > now + time::Duration::seconds(crate::protocol::TIMESTAMP_WINDOW_SECS) {
            return Err(refuse("an attachment is dated in the future"));
        }
    }
    let refs: Vec<AttachmentRef> = after.values().flatten().cloned().collect();
    if refs.len() > crate::model::Limits::ATTACHMENTS_PER_CASE
        || refs.iter().map(|r| r.size).sum::<u64>() > crate::model::Limits::CASE_ATTACHMENTS_MAX
    {
        return Err(refuse("a case's attachments exceed their caps"));
    }
    Ok(())
}
