//! Attachments at the office: the chunks phones upload, checked against the reference the case
//! document holds (its author, size and hash) and sealed with the office's key; the chunks phones
//! download; the whole file for the web pages; and a case manager's scan attached from the
//! browser. Content is kept once ([`CaseVault::content_key`] finds the same content again),
//! whichever case and phone it came from.
//!
//! Need-to-know: a device reaches an attachment only when its user is assigned to the case, and
//! uploads only the attachments its own phone added. A chunk is taken only in order; the last
//! one completes the upload only when the whole matches the reference's hash, else every chunk
//! of it is dropped and the upload starts again.

use std::io::Cursor;

use fieldcase_core::crypto::{open, seal};
use fieldcase_core::ids::{AttachmentId, CaseId, DeviceId, UserId};
use fieldcase_core::model::{AttachmentRef, ContentHash, Limits, MediaType, NewAttachment};
use fieldcase_core::protocol::{CHUNKS_IN_FLIGHT, ChunkAck};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use super::access::{self, ReadVia, Staff};
use super::audit;
use super::cases::load_doc;
use crate::error::ServerError;
use crate::sql_params;
use crate::storage::case_docs::{CaseVault, WithDocs, store};
use crate::storage::sql::Sql;

/// Widest or tallest image a thumbnail is drawn from.
pub const MAX_PIXELS_SIDE: u32 = 12_000;
/// Most memory the decoder may take for one thumbnail.
pub const MAX_DECODE_BYTES: u64 = 256 * 1024 * 1024;
/// Side of the box a thumbnail fits in, in pixels.
const THUMBNAIL_SIDE: u32 = 240;

/// Audit action of an attachment downloaded from the web pages (detail: case and attachment).
pub const ATTACHMENT_DOWNLOADED: &str = "attachment_downloaded";
/// Audit action of an image attachment's thumbnail shown on a case page (detail: case and
/// attachment): it shows the picture, so it is a read like a download.
pub const ATTACHMENT_THUMBNAIL: &str = "attachment_thumbnail";
/// Audit action of an attachment added from the web pages (detail: case and attachment).
pub const ATTACHMENT_ADDED: &str = "attachment_added";

/// One attachment as the case page lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfficeAttachment {
    /// What the case document records.
    pub reference: AttachmentRef,
    /// Whether the office holds all of its bytes.
    pub complete: bool,
}

fn blob_key(vault: &CaseVault, hash: &ContentHash) -> Result<[u8; 32], ServerError> {
    let mut mac = Hmac::<Sha256>::new_from_slice(vault.content_key())
        .map_err(|_| ServerError::Internal("content key"))?;
    mac.update(&hash.0);
    Ok(mac.finalize().into_bytes().into())
}

fn chunk_aad(blob: &[u8; 32], idx: u32) -> Vec<u8> {
    let mut aad = b"fieldcase-server/attachment-chunks/".to_vec();
    aad.extend_from_slice(blob);
    aad.extend_from_slice(&idx.to_be_bytes());
    aad
}

/// The reference of attachment `id` in `case`, read from the case document.
fn reference(
    sql: &mut dyn Sql,
    vault: &CaseVault,
    case: CaseId,
    id: AttachmentId,
) -> Result<WithDocs<AttachmentRef>, ServerError> {
    let loaded = load_doc(sql, vault, case)?;
    match loaded.doc.attachment(id) {
        Ok(found) => Ok(WithDocs::new(found, [loaded])),
        Err(e) => {
            vault.keep([loaded]);
            Err(match e {
                fieldcase_core::CoreError::AttachmentNotFound => ServerError::UnknownAttachment,
                e => e.into(),
            })
        }
    }
}

fn require_assigned(sql: &mut dyn Sql, user: UserId, case: CaseId) -> Result<(), ServerError> {
    let assigned = sql
        .query_opt(
            "SELECT 1 FROM case_assignments WHERE case_id = ?1 AND user_id = ?2",
            sql_params![&case.to_string(), &user.to_string()],
        )?
        .is_some();
    if assigned {
        Ok(())
    } else {
        Err(ServerError::NotAssigned)
    }
}

struct Blob {
    key: [u8; 32],
    received: u32,
    complete: bool,
    /// Chunks held past `received` (sent ahead of a gap).
    ahead: Vec<u32>,
}

/// Chunks of `blob` held from `received` on, in order.
fn held_from(sql: &mut dyn Sql, blob: &[u8; 32], received: u32) -> Result<Vec<u32>, ServerError> {
    sql.query_all(
        "SELECT idx FROM attachment_blob_chunks WHERE blob_key = ?1 AND idx >= ?2 ORDER BY idx",
        sql_params![blob.as_slice(), i64::from(received)],
    )?
    .into_iter()
    .map(|row| Ok(u32::try_from(row.get::<i64>(0)?).unwrap_or(u32::MAX)))
    .collect()
}

/// The content row of `reference`, made (empty) when the office has none yet, and the link
/// from the attachment to it.
fn blob_for(
    sql: &mut dyn Sql,
    vault: &CaseVault,
    case: CaseId,
    reference: &AttachmentRef,
    now: i64,
) -> Result<Blob, ServerError> {
    let key = blob_key(vault, &reference.hash)?;
    let row = sql.query_opt(
        "SELECT received, complete FROM attachment_blobs WHERE blob_key = ?1",
        sql_params![key.as_slice()],
    )?;
    let (received, complete) = match row {
        Some(r) => (
            u32::try_from(r.get::<i64>(0)?).unwrap_or(0),
            r.get::<i64>(1)? == 1,
        ),
        None => {
            sql.execute(
                "INSERT INTO attachment_blobs (blob_key, size, chunks, received, complete)
                 VALUES (?1, ?2, ?3, 0, 0)",
                sql_params![
                    key.as_slice(),
                    i64::try_from(reference.size).unwrap_or(i64::MAX),
                    i64::from(reference.chunk_count())
                ],
            )?;
            (0, false)
        }
    };
    sql.execute(
        "INSERT INTO attachments (id, case_id, blob_key, created_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (id) DO NOTHING",
        sql_params![
            &reference.id.to_string(),
            &case.to_string(),
            key.as_slice(),
            now
        ],
    )?;
    let ahead = if complete {
        Vec::new()
    } else {
        held_from(sql, &key, received)?
    };
    Ok(Blob {
        key,
        received,
        complete,
        ahead,
    })
}

fn ack(blob: &Blob, reference: &AttachmentRef) -> ChunkAck {
    ChunkAck {
        acked: blob.received,
        total: reference.chunk_count(),
        complete: blob.complete,
        ahead: blob.ahead.clone(),
    }
}

/// Checks that `device` (of `user`) may upload attachment `id` of `case`: its user is assigned,
/// the case's document holds the reference, and this device added it.
fn uploadable(
    sql: &mut dyn Sql,
    vault: &CaseVault,
    (device, user): (DeviceId, UserId),
    case: CaseId,
    id: AttachmentId,
) -> Result<WithDocs<AttachmentRef>, ServerError> {
    require_assigned(sql, user, case)?;
    let found = reference(sql, vault, case, id)?;
    if found.value().author.device != device {
        found.keep(vault);
        return Err(ServerError::ChunkRefused(
            "only the phone that added an attachment uploads it",
        ));
    }
    Ok(found)
}

/// Where the upload of attachment `id` stands, for the device that added it.
pub fn upload_status(
    sql: &mut dyn Sql,
    vault: &CaseVault,
    who: (DeviceId, UserId),
    case: CaseId,
    id: AttachmentId,
    now: i64,
) -> Result<WithDocs<ChunkAck>, ServerError> {
    let found = uploadable(sql, vault, who, case, id)?;
    let reference = found.value().clone();
    let blob = blob_for(sql, vault, case, &reference, now)?;
    Ok(found.map(|_| ack(&blob, &reference)))
}

/// Takes chunk `idx` of attachment `id` from the device that added it. A chunk the office holds
/// already is acknowledged again; one past the next is [`ServerError::ChunkOutOfOrder`]; the
/// last one completes the upload only if the whole matches the reference's hash. A mismatch
/// drops every chunk of it — a change to commit — and is the inner
/// [`ServerError::AttachmentHashMismatch`].
pub fn put_chunk(
    sql: &mut dyn Sql,
    vault: &CaseVault,
    who: (DeviceId, UserId),
    (case, id, idx): (CaseId, AttachmentId, u32),
    bytes: &[u8],
    now: i64,
) -> Result<WithDocs<Result<ChunkAck, ServerError>>, ServerError> {
    let found = uploadable(sql, vault, who, case, id)?;
    let reference = found.value().clone();
    let result = (|| {
        let mut blob = blob_for(sql, vault, case, &reference, now)?;
        let total = reference.chunk_count();
        if blob.complete || idx < blob.received {
            return Ok(Ok(ack(&blob, &reference)));
        }
        if idx >= total {
            return Err(ServerError::ChunkRefused(
                "the chunk lies past the attachment's end",
            ));
        }
        if idx >= blob.received.saturating_add(CHUNKS_IN_FLIGHT) {
            return Err(ServerError::ChunkOutOfOrder {
                expected: blob.received,
            });
        }
        if reference.chunk_len(idx) != Some(bytes.len() as u64) {
            return Err(ServerError::ChunkRefused(
                "the chunk is not of the size the attachment's reference gives",
            ));
        }
        let sealed = seal(vault.key(), &chunk_aad(&blob.key, idx), bytes)?;
        sql.execute(
            "INSERT INTO attachment_blob_chunks (blob_key, idx, data) VALUES (?1, ?2, ?3)
             ON CONFLICT (blob_key, idx) DO NOTHING",
            sql_params![blob.key.as_slice(), i64::from(idx), sealed.as_slice()],
        )?;
        // Chunks may arrive a few ahead of the next one (a phone keeps the link full with
        // more than one in flight): what is acknowledged is the run held from the first.
        let held = held_from(sql, &blob.key, blob.received)?;
        for idx in &held {
            if *idx == blob.received {
                blob.received += 1;
            } else {
                break;
            }
        }
        blob.ahead = held.into_iter().filter(|i| *i > blob.received).collect();
        if blob.received == total {
            let refusal = match whole(sql, vault, &blob.key, &reference) {
                Ok(bytes) => acceptable(&bytes, &reference).err(),
                Err(_) => Some(ServerError::AttachmentHashMismatch),
            };
            if let Some(refusal) = refusal {
                // Garbage in some chunk, or a file no phone of ours makes: drop every chunk.
                sql.execute(
                    "DELETE FROM attachment_blob_chunks WHERE blob_key = ?1",
                    sql_params![blob.key.as_slice()],
                )?;
                sql.execute(
                    "UPDATE attachment_blobs SET received = 0 WHERE blob_key = ?1",
                    sql_params![blob.key.as_slice()],
                )?;
                return Ok(Err(refusal));
            }
            blob.complete = true;
            blob.ahead.clear();
        }
        sql.execute(
            "UPDATE attachment_blobs SET received = ?2, complete = ?3 WHERE blob_key = ?1",
            sql_params![
                blob.key.as_slice(),
                i64::from(blob.received),
                i64::from(blob.complete)
            ],
        )?;
        Ok(Ok(ack(&blob, &reference)))
    })();
    match result {
        Ok(a) => Ok(found.map(|_| a)),
        Err(e) => {
            found.keep(vault);
            Err(e)
        }
    }
}

/// Checks a whole upload the way the phone's own checks would have: its first bytes are of the
/// kind its reference gives, and it holds no metadata the phone removes. A phone running
/// fieldcase never fails this; a modified one cannot make the office keep a photo's GPS tags.
fn acceptable(bytes: &[u8], reference: &AttachmentRef) -> Result<(), ServerError> {
    if MediaType::sniff(bytes) != Some(reference.media_type) {
        return Err(ServerError::AttachmentRefused(
            "the file is not of the media type its reference gives",
        ));
    }
    match fieldcase_core::media::clean(bytes.to_vec(), reference.media_type) {
        Ok(cleaned) if cleaned == bytes => Ok(()),
        _ => Err(ServerError::AttachmentRefused(
            "the file holds metadata (location, camera) a phone removes before it is kept",
        )),
    }
}

fn read_chunk(
    sql: &mut dyn Sql,
    vault: &CaseVault,
    blob: &[u8; 32],
    idx: u32,
) -> Result<Zeroizing<Vec<u8>>, ServerError> {
    let sealed: Vec<u8> = sql
        .query_opt(
            "SELECT data FROM attachment_blob_chunks WHERE blob_key = ?1 AND idx = ?2",
            sql_params![blob.as_slice(), i64::from(idx)],
        )?
        .ok_or(ServerError::AttachmentNotAtOffice)?
        .get(0)?;
    Ok(open(
        vault.key(),
        &chunk_aad(blob, idx),
        &sealed,
        "attachment chunk",
    )?)
}

/// The whole content of `reference` from its chunks, checked against its hash.
fn whole(
    sql: &mut dyn Sql,
    vault: &CaseVault,
    blob: &[u8; 32],
    reference: &AttachmentRef,
) -> Result<Zeroizing<Vec<u8>>, ServerError> {
    let mut out = Zeroizing::new(Vec::with_capacity(
        usize::try_from(reference.size).unwrap_or(0),
    ));
    for idx in 0..reference.chunk_count() {
        out.extend_from_slice(&read_chunk(sql, vault, blob, idx)?);
    }
    if ContentHash::of(&out) != reference.hash {
        return Err(ServerError::AttachmentHashMismatch);
    }
    Ok(out)
}

/// The content row of `reference` if the office holds all of it.
fn complete_blob(
    sql: &mut dyn Sql,
    vault: &CaseVault,
    reference: &AttachmentRef,
) -> Result<[u8; 32], ServerError> {
    let key = blob_key(vault, &reference.hash)?;
    let complete = sql
        .query_opt(
            "SELECT complete FROM attachment_blobs WHERE blob_key = ?1",
            sql_params![key.as_slice()],
        )?
        .map(|r| r.get::<i64>(0))
        .transpose()?
        == Some(1);
    if complete {
        Ok(key)
    } else {
        Err(ServerError::AttachmentNotAtOffice)
    }
}

/// Chunk `idx` of attachment `id`, for a device whose user is assigned to `case`.
pub fn get_chunk(
    sql: &mut dyn Sql,
    vault: &CaseVault,
    user: UserId,
    (case, id, idx): (CaseId, AttachmentId, u32),
) -> Result<WithDocs<Zeroizing<Vec<u8>>>, ServerError> {
    require_assigned(sql, user, case)?;
    let found = reference(sql, vault, case, id)?;
    let result = (|| {
        let reference = found.value();
        if idx >= reference.chunk_count() {
            return Err(ServerError::ChunkRefused(
                "the chunk lies past the attachment's end",
            ));
        }
        let key = complete_blob(sql, vault, reference)?;
        read_chunk(sql, vault, &key, idx)
    })();
    match result {
        Ok(bytes) => Ok(found.map(|_| bytes)),
        Err(e) => {
            found.keep(vault);
            Err(e)
        }
    }
}

/// A case's attachments for its page, oldest first, and whether the office holds each whole.
/// The caller has checked (and audited) that the reader may read the case.
pub fn list(
    sql: &mut dyn Sql,
    vault: &CaseVault,
    case: CaseId,
) -> Result<WithDocs<Vec<OfficeAttachment>>, ServerError> {
    let loaded = load_doc(sql, vault, case)?;
    let refs = loaded.doc.attachments();
    let docs = WithDocs::new((), [loaded]);
    let mut out = Vec::with_capacity(refs.len());
    for reference in refs {
        let complete = match complete_blob(sql, vault, &reference) {
            Ok(_) => true,
            Err(ServerError::AttachmentNotAtOffice) => false,
            Err(e) => {
                docs.keep(vault);
                return Err(e);
            }
        };
        out.push(OfficeAttachment {
            reference,
            complete,
        });
    }
    Ok(docs.map(|_| out))
}

/// An attachment's reference and its whole content.
pub type Downloaded = (AttachmentRef, Zeroizing<Vec<u8>>);

/// The whole of attachment `id` for staff: checks that `who` reaches the case, and audits the
/// read as `action` ([`ATTACHMENT_DOWNLOADED`] or [`ATTACHMENT_THUMBNAIL`]) with the case and
/// the attachment.
pub fn download(
    sql: &mut dyn Sql,
    vault: &CaseVault,
    who: Staff,
    (case, id, action): (CaseId, AttachmentId, &'static str),
    now: i64,
) -> Result<WithDocs<Downloaded>, ServerError> {
    access::check_read(sql, who, case, ReadVia::Page, now)?;
    let found = reference(sql, vault, case, id)?;
    let result = (|| {
        let reference = found.value();
        let key = complete_blob(sql, vault, reference)?;
        let bytes = whole(sql, vault, &key, reference)?;
        let detail = format!("{case} {id}");
        audit::record_detail(sql, now, action, Some(&who.id), None, Some(&detail))?;
        Ok(bytes)
    })();
    match result {
        Ok(bytes) => Ok(found.map(|r| (r, bytes))),
        Err(e) => {
            found.keep(vault);
            Err(e)
        }
    }
}

/// Attaches a file from the office (a case manager's scan): checks its kind, removes its
/// metadata, stores it whole and records its reference in the case document as the office's
/// edit, which reaches the assigned phones by sync (they download it when asked). `who` must be
/// allowed to change the case; audited.
pub fn attach_from_office(
    sql: &mut dyn Sql,
    vault: &CaseVault,
    who: Staff,
    case: CaseId,
    new: &NewAttachment,
    bytes: Vec<u8>,
    now: i64,
) -> Result<WithDocs<AttachmentRef>, ServerError> {
    access::require_change(sql, who, case)?;
    let bytes = Zeroizing::new(
        fieldcase_core::media::prepare(new, bytes).map_err(fieldcase_core::CoreError::from)?,
    );
    let at = time::OffsetDateTime::from_unix_timestamp(now)
        .map_err(|_| ServerError::Internal("clock out of range"))?;
    let reference = AttachmentRef::of_bytes(new, &bytes, vault.office, at);
    let mut loaded = load_doc(sql, vault, case)?;
    if let Err(e) = loaded.doc.add_attachment(&reference, at) {
        // The document in hand may hold half an edit: it is not given back.
        return Err(e.into());
    }
    let blob = blob_for(sql, vault, case, &reference, now)?;
    if !blob.complete {
        sql.execute(
            "DELETE FROM attachment_blob_chunks WHERE blob_key = ?1",
            sql_params![blob.key.as_slice()],
        )?;
        for (idx, chunk) in bytes.chunks(Limits::ATTACHMENT_CHUNK).enumerate() {
            let idx = u32::try_from(idx).map_err(|_| ServerError::Internal("chunk count"))?;
            let sealed = seal(vault.key(), &chunk_aad(&blob.key, idx), chunk)?;
            sql.execute(
                "INSERT INTO attachment_blob_chunks (blob_key, idx, data) VALUES (?1, ?2, ?3)",
                sql_params![blob.key.as_slice(), i64::from(idx), sealed.as_slice()],
            )?;
        }
        sql.execute(
            "UPDATE attachment_blobs SET received = chunks, complete = 1 WHERE blob_key = ?1",
            sql_params![blob.key.as_slice()],
        )?;
    }
    store(sql, vault, &mut loaded, None, now)?;
    let detail = format!("{case} {}", reference.id);
    audit::record_detail(
        sql,
        now,
        ATTACHMENT_ADDED,
        Some(&who.id),
        None,
        Some(&detail),
    )?;
    Ok(WithDocs::new(reference, [loaded]))
}

/// Draws a thumbnail of `bytes` within the decoding bounds, as a JPEG.
/// A picture that claims more than [`MAX_PIXELS_SIDE`] pixels a side, or would take more than
/// [`MAX_DECODE_BYTES`] to decode, is refused before its pixels are read: a decompression bomb
/// costs nothing but its refusal.
pub fn thumbnail(bytes: &[u8], media: MediaType) -> Result<Vec<u8>, ServerError> {
    let format = match media {
        MediaType::Jpeg => image::ImageFormat::Jpeg,
        MediaType::Png => image::ImageFormat::Png,
        MediaType::Webp => image::ImageFormat::WebP,
        MediaType::Pdf => return Err(ServerError::Internal("a PDF has no thumbnail")),
    };
    let mut reader = image::ImageReader::with_format(Cursor::new(bytes), format);
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_PIXELS_SIDE);
    limits.max_image_height = Some(MAX_PIXELS_SIDE);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    reader.limits(limits);
    let decoded = reader
        .decode()
        .map_err(|_| ServerError::Internal("the image does not decode within its bounds"))?;
    let small = decoded.thumbnail(THUMBNAIL_SIDE, THUMBNAIL_SIDE).to_rgb8();
    let mut out = Cursor::new(Vec::new());
    small
        .write_to(&mut out, image::ImageFormat::Jpeg)
        .map_err(|_| ServerError::Internal("encoding a thumbnail"))?;
    Ok(out.into_inner())
}

/// Erases every attachment of `case` at the office (its content is being erased): the case's
/// references, and each stored file no other case's attachment shares (the same content is
/// kept once), its sealed chunks with it. Returns how many attachments the case had.
pub fn erase_case(sql: &mut dyn Sql, case: CaseId) -> Result<usize, ServerError> {
    let id = case.to_string();
    let rows = sql.query_all(
        "SELECT blob_key FROM attachments WHERE case_id = ?1",
        sql_params![&id],
    )?;
    let keys: Vec<Vec<u8>> = rows
        .iter()
        .map(|r| r.get::<Vec<u8>>(0))
        .collect::<Result<_, _>>()?;
    sql.execute(
        "DELETE FROM attachments WHERE case_id = ?1",
        sql_params![&id],
    )?;
    for key in &keys {
        let shared = sql
            .query_opt(
                "SELECT 1 FROM attachments WHERE blob_key = ?1",
                sql_params![key.as_slice()],
            )?
            .is_some();
        if !shared {
            sql.execute(
                "DELETE FROM attachment_blob_chunks WHERE blob_key = ?1",
                sql_params![key.as_slice()],
            )?;
            sql.execute(
                "DELETE FROM attachment_blobs WHERE blob_key = ?1",
                sql_params![key.as_slice()],
            )?;
        }
    }
    Ok(keys.len())
}
