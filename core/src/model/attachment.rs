//! Attachments: photos and scans of the papers a client is handed. The case document holds only
//! a reference to each ([`AttachmentRef`]); the bytes travel and rest apart from it, sealed, in
//! chunks of [`Limits::ATTACHMENT_CHUNK`] bytes.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::validation::required_text;
use super::{Author, Limits, ValidationError};
use crate::ids::{AttachmentId, NoteId, TaskId};

/// The SHA-256 of an attachment's bytes (after its metadata was removed): what the office checks
/// every upload against, and what lets it keep the same content once.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContentHash(pub [u8; 32]);

impl ContentHash {
    /// The hash of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self(Sha256::digest(bytes).into())
    }
}

impl fmt::Display for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ContentHash({self})")
    }
}

impl FromStr for ContentHash {
    type Err = ValidationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        crate::protocol::decode_hex_array::<32>(s)
            .map(Self)
            .map_err(|_| ValidationError::InvalidId("content hash"))
    }
}

impl Serialize for ContentHash {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ContentHash {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

super::enums::vocabulary!(
    /// The kinds of file a case may hold: what a phone's camera makes and what an office scanner
    /// makes. Each is recognised by its first bytes, so a file that claims one kind and is another
    /// is refused.
    MediaType, "media type" {
        /// A JPEG photo.
        Jpeg => "image/jpeg",
        /// A PNG image (a screenshot, a scan).
        Png => "image/png",
        /// A WebP image.
        Webp => "image/webp",
        /// A PDF document (a scan, a decision sent by e-mail).
        Pdf => "application/pdf",
    }
);

impl MediaType {
    /// The kind `bytes` are, from their first bytes; `None` for anything not allowed here
    /// (HEIC among them: its metadata cannot be removed here, so the camera must hand JPEG).
    pub fn sniff(bytes: &[u8]) -> Option<Self> {
        if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Some(Self::Jpeg)
        } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
            Some(Self::Png)
        } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
            Some(Self::Webp)
        } else if bytes.starts_with(b"%PDF-") {
            Some(Self::Pdf)
        } else {
            None
        }
    }

    /// Whether this kind is an image the office can draw a thumbnail of.
    pub fn is_image(&self) -> bool {
        !matches!(self, Self::Pdf)
    }

    /// The usual file name extension, for a download's name.
    pub fn extension(&self) -> &'static str {
        match self {
            Self::Jpeg => "jpg",
            Self::Png => "png",
            Self::Webp => "webp",
            Self::Pdf => "pdf",
        }
    }
}

/// What the case document records of one attachment. The bytes are elsewhere; this is what
/// every replica agrees on, and it never changes once written (a removal deletes it whole).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachmentRef {
    /// The attachment.
    pub id: AttachmentId,
    /// The SHA-256 of its bytes.
    pub hash: ContentHash,
    /// Its size in bytes.
    pub size: u64,
    /// What kind of file it is.
    pub media_type: MediaType,
    /// What it is, in the worker's words ("summons for 12 March").
    pub label: String,
    /// Who added it.
    pub author: Author,
    /// When it was added.
    #[serde(with = "time::serde::rfc3339")]
    pub added_at: OffsetDateTime,
    /// The visit note it belongs to, if any.
    #[serde(default)]
    pub note: Option<NoteId>,
    /// The accompaniment task it belongs to, if any.
    #[serde(default)]
    pub task: Option<TaskId>,
}

impl AttachmentRef {
    /// Checks the reference against the model's rules: a label that fits, a size within the cap.
    pub fn validate(&self) -> Result<(), ValidationError> {
        validate_label(&self.label)?;
        validate_size(self.size)?;
        super::time_in_range("the time an attachment was added", self.added_at)
    }

    /// The reference of `bytes` (already cleaned) attached as `new` by `author` at `at`, under
    /// a new id.
    pub fn of_bytes(
        new: &NewAttachment,
        bytes: &[u8],
        author: Author,
        at: OffsetDateTime,
    ) -> AttachmentRef {
        AttachmentRef {
            id: AttachmentId::new(),
            hash: ContentHash::of(bytes),
            size: bytes.len() as u64,
            media_type: new.media_type,
            label: new.label.trim().to_owned(),
            author,
            added_at: at,
            note: new.note,
            task: new.task,
        }
    }

    /// How many chunks its bytes travel and rest in.
    pub fn chunk_count(&self) -> u32 {
        chunk_count(self.size)
    }

    /// The length of chunk `idx` (every chunk is whole but the last); `None` past the end.
    pub fn chunk_len(&self, idx: u32) -> Option<u64> {
        let chunk = Limits::ATTACHMENT_CHUNK as u64;
        match idx.checked_add(1)?.cmp(&self.chunk_count()) {
            std::cmp::Ordering::Less => Some(chunk),
            std::cmp::Ordering::Equal => Some(self.size - u64::from(idx) * chunk),
            std::cmp::Ordering::Greater => None,
        }
    }
}

/// How many chunks of [`Limits::ATTACHMENT_CHUNK`] bytes hold `size` bytes (at least one).
pub fn chunk_count(size: u64) -> u32 {
    let chunk = Limits::ATTACHMENT_CHUNK as u64;
    u32::try_from(size.div_ceil(chunk).max(1)).unwrap_or(u32::MAX)
}

/// A new attachment as the app hands it over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAttachment {
    /// What it is, in the worker's words.
    pub label: String,
    /// The kind of file the app says it is (checked against the bytes).
    pub media_type: MediaType,
    /// The visit note it belongs to, if any.
    pub note: Option<NoteId>,
    /// The accompaniment task it belongs to, if any.
    pub task: Option<TaskId>,
}

/// Checks an attachment's label: required, short, no control characters, and no path
/// characters (a label becomes a download's file name at the office).
pub fn validate_label(label: &str) -> Result<(), ValidationError> {
    required_text("attachment label", label, Limits::SHORT_TEXT_MAX)?;
    if label
        .chars()
        .any(|c| matches!(c, '/' | '\\' | '\n' | '\r' | '\t' | '\0') || label.contains(".."))
    {
        return Err(ValidationError::PathCharacters {
            field: "attachment label",
        });
    }
    Ok(())
}

/// Checks an attachment's size against the cap on one attachment.
pub fn validate_size(size: u64) -> Result<(), ValidationError> {
    if size == 0 {
        return Err(ValidationError::EmptyField {
            field: "attachment",
        });
    }
    if size > Limits::ATTACHMENT_MAX {
        return Err(ValidationError::TooLarge {
            field: "attachment",
            size,
            max: Limits::ATTACHMENT_MAX,
        });
    }
    Ok(())
}

/// Checks that the attachments of one case stay within the caps on their count and total size
/// once `adding` more bytes join the `existing` references.
pub fn check_case_caps(existing: &[AttachmentRef], adding: u64) -> Result<(), ValidationError> {
    if existing.len() >= Limits::ATTACHMENTS_PER_CASE {
        return Err(ValidationError::TooMany {
            field: "attachments of a case",
            count: existing.len() + 1,
            max: Limits::ATTACHMENTS_PER_CASE,
        });
    }
    let total = existing.iter().map(|a| a.size).sum::<u64>() + adding;
    if total > Limits::CASE_ATTACHMENTS_MAX {
        return Err(ValidationError::TooLarge {
            field: "attachments of a case",
            size: total,
            max: Limits::CASE_ATTACHMENTS_MAX,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types_are_told_by_their_first_bytes_not_by_what_they_claim() {
        assert_eq!(
            MediaType::sniff(&[0xFF, 0xD8, 0xFF, 0xE0]),
            Some(MediaType::Jpeg)
        );
        assert_eq!(MediaType::sniff(b"%PDF-1.7\n"), Some(MediaType::Pdf));
        assert_eq!(
            MediaType::sniff(b"RIFF\0\0\0\0WEBPVP8 "),
            Some(MediaType::Webp)
        );
        // HEIC: an ISO box `ftyp` with brand `heic`.
        assert_eq!(MediaType::sniff(b"\0\0\0\x18ftypheic\0\0\0\0"), None);
        assert_eq!(MediaType::sniff(b"<html>"), None);
        assert_eq!(MediaType::sniff(b""), None);
    }

    #[test]
    fn labels_with_path_characters_are_refused() {
        for bad in ["../../etc/passwd", "a/b", "a\\b", "x\ny"] {
            assert!(validate_label(bad).is_err(), "{bad:?}");
        }
        assert!(validate_label("Rešenje o boravku, 12. mart").is_ok());
        assert!(validate_label("   ").is_err());
    }

    #[test]
    fn sizes_are_capped_per_attachment_and_per_case() {
        assert!(validate_size(0).is_err());
        assert!(validate_size(Limits::ATTACHMENT_MAX).is_ok());
        assert!(validate_size(Limits::ATTACHMENT_MAX + 1).is_err());
        assert_eq!(chunk_count(1), 1);
        assert_eq!(chunk_count(Limits::ATTACHMENT_CHUNK as u64), 1);
        assert_eq!(chunk_count(Limits::ATTACHMENT_CHUNK as u64 + 1), 2);
        let chunk = Limits::ATTACHMENT_CHUNK as u64;
        let new = NewAttachment {
            label: "scan".into(),
            media_type: MediaType::Pdf,
            note: None,
            task: None,
        };
        let author = Author {
            user: crate::ids::UserId::new(),
            device: crate::ids::DeviceId::new(),
        };
        let mut two = AttachmentRef::of_bytes(&new, b"%PDF-", author, OffsetDateTime::UNIX_EPOCH);
        two.size = chunk + 10;
        assert_eq!(two.chunk_len(0), Some(chunk));
        assert_eq!(two.chunk_len(1), Some(10));
        assert_eq!(two.chunk_len(2), None);
        assert_eq!(two.chunk_len(u32::MAX), None);
    }
}
