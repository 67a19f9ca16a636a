//! Attachments across the FFI: what the case's attachment list shows, adding one from bytes or
//! from a file the app hands over, opening, removing, asking for a download, moving the bytes,
//! and the storage report the app shows beside the camera button.

use fieldcase_core::ids::{AttachmentId, CaseId, NoteId, TaskId};
use fieldcase_core::model;
use fieldcase_core::store;
use fieldcase_core::transfer;

use crate::FieldcaseError;
use crate::device::FieldcaseDevice;
use crate::error::call;
use crate::types::{Author, instant, parse_id};

crate::types::mirror_enum!(
    /// The kinds of file a case may hold (told by their first bytes, not by their name).
    MediaType = model::MediaType {
        /// A JPEG photo.
        Jpeg,
        /// A PNG image.
        Png,
        /// A WebP image.
        Webp,
        /// A PDF document.
        Pdf,
    }
);

/// Where an attachment's bytes stand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum AttachmentState {
    /// Added here; nothing of it has reached the office yet.
    OnlyHere,
    /// Added here; the office holds `acked` of its `total` chunks.
    Uploading {
        /// Chunks the office holds.
        acked: u32,
        /// Chunks in all.
        total: u32,
    },
    /// At the office, and here too: it opens.
    AtOffice,
    /// At the office, not here: ask for it with `request_download`, then sync attachments.
    NotDownloaded,
    /// Being downloaded.
    Downloading {
        /// Chunks here.
        held: u32,
        /// Chunks in all.
        total: u32,
    },
}

impl From<store::AttachmentState> for AttachmentState {
    fn from(s: store::AttachmentState) -> Self {
        use store::AttachmentState as S;
        match s {
            S::OnlyHere => Self::OnlyHere,
            S::Uploading { acked, total } => Self::Uploading { acked, total },
            S::AtOffice => Self::AtOffice,
            S::NotDownloaded => Self::NotDownloaded,
            S::Downloading { held, total } => Self::Downloading { held, total },
        }
    }
}

/// One attachment of a case.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Attachment {
    /// Its id.
    pub id: String,
    /// What it is, in the worker's words.
    pub label: String,
    /// What kind of file it is.
    pub media_type: MediaType,
    /// Its size in bytes (after its metadata was removed).
    pub size: u64,
    /// SHA-256 of its bytes, 64 hex digits.
    pub sha256: String,
    /// Who added it.
    pub author: Author,
    /// When it was added (RFC 3339).
    pub added_at: String,
    /// The note it belongs to, if any.
    pub note_id: Option<String>,
    /// The task it belongs to, if any.
    pub task_id: Option<String>,
    /// Where its bytes stand.
    pub state: AttachmentState,
}

impl From<store::Attachment> for Attachment {
    fn from(a: store::Attachment) -> Self {
        let r = a.reference;
        Self {
            id: r.id.to_string(),
            label: r.label,
            media_type: r.media_type.into(),
            size: r.size,
            sha256: r.hash.to_string(),
            author: r.author.into(),
            added_at: instant(r.added_at),
            note_id: r.note.map(|n| n.to_string()),
            task_id: r.task.map(|t| t.to_string()),
            state: a.state.into(),
        }
    }
}

/// What the worker supplies to attach a file.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct NewAttachment {
    /// What it is ("summons for 12 March"); no path characters.
    pub label: String,
    /// The kind of file the app believes it is (checked against the bytes).
    pub media_type: MediaType,
    /// The note it belongs to, if any.
    #[uniffi(default = None)]
    pub note_id: Option<String>,
    /// The task it belongs to, if any.
    #[uniffi(default = None)]
    pub task_id: Option<String>,
}

impl NewAttachment {
    fn to_core(&self) -> Result<model::NewAttachment, FieldcaseError> {
        Ok(model::NewAttachment {
            label: self.label.clone(),
            media_type: self.media_type.into(),
            note: self
                .note_id
                .as_deref()
                .map(parse_id::<NoteId>)
                .transpose()?,
            task: self
                .task_id
                .as_deref()
                .map(parse_id::<TaskId>)
                .transpose()?,
        })
    }
}

/// What an attachment transfer did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Record)]
pub struct TransferReport {
    /// Chunks sent to the office.
    pub chunks_sent: u32,
    /// Chunks received.
    pub chunks_received: u32,
    /// Attachments the office now holds whole.
    pub uploads_completed: u32,
    /// Attachments now here whole.
    pub downloads_completed: u32,
    /// Case syncs run between chunks because notes were waiting.
    pub syncs_between: u32,
    /// Attachments left for a later transfer.
    pub left: u32,
    /// Whether the chunk budget ran out.
    pub budget_spent: bool,
}

impl From<transfer::TransferReport> for TransferReport {
    fn from(r: transfer::TransferReport) -> Self {
        Self {
            chunks_sent: r.chunks_sent,
            chunks_received: r.chunks_received,
            uploads_completed: r.uploads_completed,
            downloads_completed: r.downloads_completed,
            syncs_between: r.syncs_between,
            left: r.left,
            budget_spent: r.budget_spent,
        }
    }
}

/// How much room the store takes and what is left on its volume.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Record)]
pub struct StorageReport {
    /// Bytes the store's files take.
    pub used_bytes: u64,
    /// Bytes left on the volume.
    pub available_bytes: u64,
    /// Below this many free bytes new attachments are refused (notes still work).
    pub attachment_floor: u64,
}

fn ids(case_id: &str, attachment_id: &str) -> Result<(CaseId, AttachmentId), FieldcaseError> {
    Ok((parse_id(case_id)?, parse_id(attachment_id)?))
}

#[uniffi::export]
impl FieldcaseDevice {
    /// Attaches `bytes` to a case: checked against `media_type`, stripped of location and
    /// camera metadata, sealed, and durable when this returns. HEIC is refused (hand JPEG).
    pub fn attach_bytes(
        &self,
        case_id: String,
        attachment: NewAttachment,
        bytes: Vec<u8>,
    ) -> Result<Attachment, FieldcaseError> {
        let case: CaseId = parse_id(&case_id)?;
        let new = attachment.to_core()?;
        let added = call(|| self.inner.store().attach(case, &new, bytes))?;
        self.attachment(case_id, added.id.to_string())
    }

    /// Attaches the file at `path` (such as the camera's output), as `attach_bytes` does. The
    /// app deletes its own copy afterwards.
    pub fn attach_file(
        &self,
        case_id: String,
        attachment: NewAttachment,
        path: String,
    ) -> Result<Attachment, FieldcaseError> {
        let case: CaseId = parse_id(&case_id)?;
        let new = attachment.to_core()?;
        let added = call(|| {
            self.inner
                .store()
                .attach_file(case, &new, std::path::Path::new(&path))
        })?;
        self.attachment(case_id, added.id.to_string())
    }

    /// A case's attachments, oldest first, with where each one's bytes stand.
    pub fn attachments(&self, case_id: String) -> Result<Vec<Attachment>, FieldcaseError> {
        let case: CaseId = parse_id(&case_id)?;
        call(|| self.inner.store().attachments(case))
            .map(|list| list.into_iter().map(Into::into).collect())
    }

    /// One attachment of a case.
    pub fn attachment(
        &self,
        case_id: String,
        attachment_id: String,
    ) -> Result<Attachment, FieldcaseError> {
        let (case, id) = ids(&case_id, &attachment_id)?;
        call(|| self.inner.store().attachments(case))?
            .into_iter()
            .find(|a| a.reference.id == id)
            .map(Into::into)
            .ok_or(FieldcaseError::NotFound {
                what: "attachment".into(),
            })
    }

    /// An attachment's bytes (only while unlocked). `NotDownloaded` until they are here: call
    /// `request_download`, then `sync_attachments`.
    pub fn open_attachment(
        &self,
        case_id: String,
        attachment_id: String,
    ) -> Result<Vec<u8>, FieldcaseError> {
        let (case, id) = ids(&case_id, &attachment_id)?;
        call(|| self.inner.store().open_attachment(case, id)).map(|b| b.to_vec())
    }

    /// Asks for an attachment's bytes: the next `sync_attachments` downloads them.
    pub fn request_download(
        &self,
        case_id: String,
        attachment_id: String,
    ) -> Result<(), FieldcaseError> {
        let (case, id) = ids(&case_id, &attachment_id)?;
        call(|| self.inner.store().request_download(case, id))
    }

    /// Removes an attachment the worker added by mistake (only its author may), here, at the
    /// office and on the other phones.
    pub fn remove_attachment(
        &self,
        case_id: String,
        attachment_id: String,
    ) -> Result<(), FieldcaseError> {
        let (case, id) = ids(&case_id, &attachment_id)?;
        call(|| self.inner.store().remove_attachment(case, id))
    }

    /// Moves attachment bytes now, after `sync_now`: this phone's own up, resumed from the last
    /// chunk the office acknowledged, then the downloads asked for (every one not yet here when
    /// `download_all`, the app's "download on Wi-Fi" setting while on Wi-Fi). `max_chunks`
    /// bounds one background run. Notes written meanwhile are synced between chunks.
    pub fn sync_attachments(
        &self,
        download_all: bool,
        max_chunks: Option<u32>,
    ) -> Result<TransferReport, FieldcaseError> {
        let options = transfer::TransferOptions {
            download_all,
            max_chunks,
        };
        call(|| self.inner.sync_attachments(options)).map(Into::into)
    }

    /// The room the store takes, what is left on its volume, and the floor below which new
    /// attachments are refused.
    pub fn storage_report(&self) -> Result<StorageReport, FieldcaseError> {
        call(|| self.inner.store().storage_report()).map(|r| StorageReport {
            used_bytes: r.used_bytes,
            available_bytes: r.available_bytes,
            attachment_floor: r.attachment_floor,
        })
    }
}
