//! The attachment channel's wire: chunks travel one per signed request, on their own paths,
//! apart from case sync, so a sync of notes never waits behind a photo.
//!
//! - `GET  /v1/cases/{case}/attachments/{id}`: where the upload stands at the office
//!   ([`ChunkAck`]); a phone asks before it sends the first chunk, and skips content the office
//!   already holds.
//! - `PUT  /v1/cases/{case}/attachments/{id}/chunks/{index}`: one chunk, raw; the answer is the
//!   new [`ChunkAck`] (the chunks held in order from the first). A chunk the office already
//!   holds is acknowledged again, not stored twice; one up to [`CHUNKS_IN_FLIGHT`] ahead of the
//!   next is kept until the gap is filled.
//! - `GET  /v1/cases/{case}/attachments/{id}/chunks/{index}`: one chunk of an attachment the
//!   office holds whole, raw.

use serde::{Deserialize, Serialize};

use crate::ids::{AttachmentId, CaseId};

/// How many chunks past the next one the office lacks it takes (and keeps until the gap is
/// filled): a phone keeps two in flight, so that on a slow link one chunk's bytes travel while
/// the other's answer comes back.
pub const CHUNKS_IN_FLIGHT: u32 = 4;

/// Where an attachment's upload stands at the office.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkAck {
    /// Chunks the office holds, counted from the first: the next one to send.
    pub acked: u32,
    /// Chunks in all.
    pub total: u32,
    /// Whether the office holds the whole attachment, checked against its hash.
    pub complete: bool,
    /// Chunks past `acked` the office holds already (sent ahead before a cut): not to send
    /// again.
    #[serde(default)]
    pub ahead: Vec<u32>,
}

/// The path of an attachment's status.
pub fn attachment_path(case: CaseId, id: AttachmentId) -> String {
    format!("/v1/cases/{case}/attachments/{id}")
}

/// The path of one chunk of an attachment.
pub fn attachment_chunk_path(case: CaseId, id: AttachmentId, index: u32) -> String {
    format!("/v1/cases/{case}/attachments/{id}/chunks/{index}")
}
