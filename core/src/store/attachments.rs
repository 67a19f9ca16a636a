//! Attachments on the phone: added with their metadata removed, sealed in chunks with the data
//! key, listed with where they stand, opened only while unlocked, removed by their author. The
//! case document holds each one's reference (and so travels with case sync); the bytes travel
//! on their own ([`crate::device::Device::sync_attachments`]) and rest in `attachment_chunks`.

use std::path::Path;

use rusqlite::{OptionalExtension, Transaction, params};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::Store;
use super::records::Sealer;
use crate::error::{CoreError, Result};
use crate::ids::{AttachmentId, CaseId};
use crate::model::{AttachmentRef, ContentHash, Limits, NewAttachment};

const CHUNKS: &str = "attachment_chunks";

/// Where an attachment's bytes stand, as the case's attachment list shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AttachmentState {
    /// Added on this phone; nothing of it has reached the office yet.
    OnlyHere,
    /// Added on this phone; the office has acknowledged `acked` of its `total` chunks.
    Uploading {
        /// Chunks the office holds.
        acked: u32,
        /// Chunks in all.
        total: u32,
    },
    /// At the office, and its bytes are here too.
    AtOffice,
    /// At the office; its bytes are not on this phone (download it to open it).
    NotDownloaded,
    /// Being downloaded: `held` of `total` chunks are here.
    Downloading {
        /// Chunks here.
        held: u32,
        /// Chunks in all.
        total: u32,
    },
}

/// One attachment of a case: the reference every replica shares, and where its bytes stand.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    /// What the case document records.
    pub reference: AttachmentRef,
    /// Where its bytes stand.
    pub state: AttachmentState,
}

/// How much room the store takes and what is left on its volume.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StorageReport {
    /// Bytes the store's files take (database, its journal, the key file).
    pub used_bytes: u64,
    /// Bytes left on the volume the store lives on.
    pub available_bytes: u64,
    /// Below this many free bytes, new attachments are refused while notes still work.
    pub attachment_floor: u64,
}

/// One attachment whose bytes must travel, as the transfer loop sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transfer {
    /// The case it belongs to.
    pub case: CaseId,
    /// Its reference (hash and size are what the other side checks).
    pub reference: AttachmentRef,
    /// The next chunk to send or fetch.
    pub next: u32,
}

#[derive(Debug, Default)]
struct Row {
    ours: bool,
    acked: u32,
    held: u32,
    complete: bool,
    wanted: bool,
}

fn read_row(conn: &rusqlite::Connection, id: AttachmentId) -> Result<Option<Row>> {
    Ok(conn
        .query_row(
            "SELECT ours, acked, held, complete, wanted FROM attachments WHERE id = ?1",
            [id.as_bytes().as_slice()],
            |r| {
                Ok(Row {
                    ours: r.get(0)?,
                    acked: r.get(1)?,
                    held: r.get(2)?,
                    complete: r.get(3)?,
                    wanted: r.get(4)?,
                })
            },
        )
        .optional()?)
}

fn state_of(row: Option<&Row>, total: u32) -> AttachmentState {
    match row {
        Some(r) if r.ours && r.acked == 0 => AttachmentState::OnlyHere,
        Some(r) if r.ours && r.acked < total => AttachmentState::Uploading {
            acked: r.acked,
            total,
        },
        Some(r) if r.complete => AttachmentState::AtOffice,
        Some(r) if r.held > 0 => AttachmentState::Downloading {
            held: r.held,
            total,
        },
        _ => AttachmentState::NotDownloaded,
    }
}

/// Writes `bytes` as the sealed chunks of attachment `id`, in `tx`.
fn put_chunks(
    tx: &Transaction<'_>,
    sealer: &Sealer<'_>,
    id: AttachmentId,
    first: u32,
    bytes: &[u8],
) -> Result<()> {
    let row = id.as_bytes().as_slice();
    let mut insert = tx.prepare_cached(
        "INSERT INTO attachment_chunks (attachment_id, idx, data) VALUES (?1, ?2, ?3)",
    )?;
    for (offset, chunk) in bytes.chunks(Limits::ATTACHMENT_CHUNK).enumerate() {
        let idx = i64::from(first) + offset as i64;
        insert.execute(params![row, idx, sealer.seal(CHUNKS, row, idx, chunk)?])?;
    }
    Ok(())
}

fn read_chunk(
    conn: &rusqlite::Connection,
    sealer: &Sealer<'_>,
    id: AttachmentId,
    idx: u32,
) -> Result<Zeroizing<Vec<u8>>> {
    let row = id.as_bytes().as_slice();
    let sealed: Vec<u8> = conn
        .query_row(
            "SELECT data FROM attachment_chunks WHERE attachment_id = ?1 AND idx = ?2",
            params![row, idx],
            |r| r.get(0),
        )
        .optional()?
        .ok_or(CoreError::NotDownloaded)?;
    sealer.open(CHUNKS, row, i64::from(idx), &sealed)
}

/// The whole of an attachment held here, checked against its reference's hash.
fn read_whole(
    conn: &rusqlite::Connection,
    sealer: &Sealer<'_>,
    reference: &AttachmentRef,
) -> Result<Zeroizing<Vec<u8>>> {
    let mut whole = Zeroizing::new(Vec::with_capacity(
        usize::try_from(reference.size).unwrap_or(0),
    ));
    for idx in 0..reference.chunk_count() {
        whole.extend_from_slice(&read_chunk(conn, sealer, reference.id, idx)?);
    }
    if ContentHash::of(&whole) != reference.hash || whole.len() as u64 != reference.size {
        return Err(CoreError::Corrupt { what: "attachment" });
    }
    Ok(whole)
}

/// Bytes the store's files take in `dir`.
fn used_bytes(dir: &Path) -> u64 {
    [
        super::DB_FILE.to_owned(),
        format!("{}-wal", super::DB_FILE),
        super::KEY_FILE.to_owned(),
    ]
    .iter()
    .filter_map(|name| std::fs::metadata(dir.join(name)).ok())
    .map(|m| m.len())
    .sum()
}

impl Store {
    /// How much room the store takes, what is left on its volume, and the floor below which new
    /// attachments are refused. Needs no unlock: it reads file sizes only.
    pub fn storage_report(&self) -> Result<StorageReport> {
        Ok(StorageReport {
            used_bytes: used_bytes(&self.dir),
            available_bytes: fs4::available_space(&self.dir)?,
            attachment_floor: self.options.attachment_free_floor,
        })
    }

    /// Adds an attachment to a case: checks the bytes are of the kind given, removes their
    /// metadata (GPS and camera tags among them), checks the caps and the free space, then seals
    /// them in chunks and records the reference in the case document, in one transaction.
    pub fn attach(
        &self,
        case: CaseId,
        new: &NewAttachment,
        bytes: Vec<u8>,
    ) -> Result<AttachmentRef> {
        let bytes = Zeroizing::new(crate::media::prepare(new, bytes)?);
        let report = self.storage_report()?;
        let floor = self.options.attachment_free_floor;
        if report.available_bytes < floor.saturating_add(bytes.len() as u64 * 2) {
            return Err(CoreError::StorageFull {
                available: report.available_bytes,
                floor,
            });
        }
        let now = self.options.clock.now();
        let compact_after = self.options.compact_after;
        self.with_unlocked(|conn, u, store_id| {
            let reference = AttachmentRef::of_bytes(new, &bytes, u.author, now);
            let id = reference.id;
            let written = reference.clone();
            super::api::edit_loaded_with(
                conn,
                u,
                store_id,
                compact_after,
                (case, "attachment.add", now),
                |doc, _, now| doc.add_attachment(&reference, now),
                |tx, sealer| {
                    tx.execute(
                        "INSERT INTO attachments (id, case_id, ours, held, complete)
                         VALUES (?1, ?2, 1, ?3, 1)",
                        params![
                            id.as_bytes().as_slice(),
                            case.as_bytes().as_slice(),
                            written.chunk_count()
                        ],
                    )?;
                    put_chunks(tx, sealer, id, 0, &bytes)
                },
            )?;
            Ok(written)
        })
    }

    /// Adds the file at `path` (one the app hands over, such as the camera's output) as
    /// [`Store::attach`] does. A file over the cap is refused before it is read.
    pub fn attach_file(
        &self,
        case: CaseId,
        new: &NewAttachment,
        path: &Path,
    ) -> Result<AttachmentRef> {
        crate::model::validate_size(std::fs::metadata(path)?.len())?;
        self.attach(case, new, std::fs::read(path)?)
    }

    /// A case's attachments, oldest first, with where each one's bytes stand.
    pub fn attachments(&self, case: CaseId) -> Result<Vec<Attachment>> {
        self.with_unlocked(|conn, u, store_id| {
            let sealer = Sealer {
                key: &u.key,
                store_id,
            };
            let refs = u
                .docs
                .get_or_load(conn, &sealer, &u.actor, case)?
                .attachments();
            refs.into_iter()
                .map(|reference| {
                    let row = read_row(conn, reference.id)?;
                    Ok(Attachment {
                        state: state_of(row.as_ref(), reference.chunk_count()),
                        reference,
                    })
                })
                .collect()
        })
    }

    /// An attachment's bytes, checked against its hash. [`CoreError::NotDownloaded`] if they are
    /// not all here yet: the app calls [`Store::request_download`] and syncs.
    pub fn open_attachment(&self, case: CaseId, id: AttachmentId) -> Result<Zeroizing<Vec<u8>>> {
        self.with_unlocked(|conn, u, store_id| {
            let sealer = Sealer {
                key: &u.key,
                store_id,
            };
            let reference = u
                .docs
                .get_or_load(conn, &sealer, &u.actor, case)?
                .attachment(id)?;
            match read_row(conn, id)? {
                Some(row) if row.complete => read_whole(conn, &sealer, &reference),
                _ => Err(CoreError::NotDownloaded),
            }
        })
    }

    /// Asks for an attachment's bytes: the next attachment sync downloads it.
    pub fn request_download(&self, case: CaseId, id: AttachmentId) -> Result<()> {
        self.with_unlocked(|conn, u, store_id| {
            let sealer = Sealer {
                key: &u.key,
                store_id,
            };
            u.docs
                .get_or_load(conn, &sealer, &u.actor, case)?
                .attachment(id)?;
            conn.execute(
                "INSERT INTO attachments (id, case_id, ours, wanted) VALUES (?1, ?2, 0, 1)
                 ON CONFLICT (id) DO UPDATE SET wanted = 1",
                params![id.as_bytes().as_slice(), case.as_bytes().as_slice()],
            )?;
            Ok(())
        })
    }

    /// Removes an attachment the worker added by mistake: its reference leaves the case
    /// document (so the office and the other phones drop it too) and its bytes leave this phone,
    /// in one transaction. Only its author may.
    pub fn remove_attachment(&self, case: CaseId, id: AttachmentId) -> Result<()> {
        let now = self.options.clock.now();
        let compact_after = self.options.compact_after;
        self.with_unlocked(|conn, u, store_id| {
            super::api::edit_loaded_with(
                conn,
                u,
                store_id,
                compact_after,
                (case, "attachment.remove", now),
                |doc, author, now| doc.remove_attachment(author, id, now).map(drop),
                |tx, _| {
                    tx.execute(
                        "DELETE FROM attachments WHERE id = ?1",
                        [id.as_bytes().as_slice()],
                    )?;
                    Ok(())
                },
            )
        })
    }

    /// The attachments whose bytes must travel now: this phone's own that the office has not
    /// acknowledged whole (oldest first), and then those to download — the ones asked for, or
    /// every one of the phone's cases not yet here when `download_all` (the app's "download
    /// on Wi-Fi" setting, while on Wi-Fi).
    pub fn pending_transfers(&self, download_all: bool) -> Result<(Vec<Transfer>, Vec<Transfer>)> {
        self.with_unlocked_for_sync(|conn, u, store_id| {
            let sealer = Sealer {
                key: &u.key,
                store_id,
            };
            // Only the cases with something to move are opened: every case when everything is to
            // be downloaded, else those with an upload the office has not acknowledged whole
            // (for this phone's own, `held` is the chunk count) or a download asked for.
            let cases: Vec<CaseId> = if download_all {
                sealer.read_index(conn)?.into_iter().map(|s| s.id).collect()
            } else {
                let mut stmt = conn.prepare_cached(
                    "SELECT DISTINCT case_id FROM attachments
                     WHERE (ours = 1 AND acked < held) OR (wanted = 1 AND complete = 0)",
                )?;
                let rows: Vec<Vec<u8>> = stmt
                    .query_map([], |r| r.get(0))?
                    .collect::<rusqlite::Result<_>>()?;
                rows.iter()
                    .map(|raw| {
                        CaseId::from_slice(raw).ok_or(CoreError::Corrupt {
                            what: "attachments",
                        })
                    })
                    .collect::<Result<_>>()?
            };
            let (mut uploads, mut downloads) = (Vec::new(), Vec::new());
            for case in cases {
                let refs = u
                    .docs
                    .get_or_load(conn, &sealer, &u.actor, case)?
                    .attachments();
                for reference in refs {
                    let row = read_row(conn, reference.id)?;
                    let wanted = row.as_ref().is_some_and(|r| r.wanted);
                    let total = reference.chunk_count();
                    match row {
                        Some(r) if r.ours && r.acked < total => uploads.push(Transfer {
                            case,
                            next: r.acked,
                            reference,
                        }),
                        Some(r) if r.ours || r.complete => {}
                        other if wanted || download_all => downloads.push(Transfer {
                            case,
                            next: other.map_or(0, |r| r.held),
                            reference,
                        }),
                        _ => {}
                    }
                }
            }
            uploads.sort_by_key(|t| (t.reference.added_at, t.reference.id));
            Ok((uploads, downloads))
        })
    }

    /// One chunk of an attachment held here, for upload.
    pub fn attachment_chunk(&self, id: AttachmentId, idx: u32) -> Result<Zeroizing<Vec<u8>>> {
        self.with_unlocked_for_sync(|conn, u, store_id| {
            let sealer = Sealer {
                key: &u.key,
                store_id,
            };
            read_chunk(conn, &sealer, id, idx)
        })
    }

    /// Records that the office holds the first `acked` chunks of this phone's attachment `id`.
    pub fn attachment_acknowledged(&self, id: AttachmentId, acked: u32) -> Result<()> {
        self.with_unlocked_for_sync(|conn, _, _| {
            conn.execute(
                "UPDATE attachments SET acked = MAX(acked, ?2) WHERE id = ?1 AND ours = 1",
                params![id.as_bytes().as_slice(), acked],
            )?;
            Ok(())
        })
    }

    /// Keeps chunk `idx` of a downloaded attachment (chunks come in order). After the last one
    /// the whole is checked against the reference's hash: a mismatch drops what came, so the
    /// next sync fetches it again, and is reported as [`CoreError::Corrupt`].
    pub fn put_downloaded_chunk(&self, transfer: &Transfer, idx: u32, bytes: &[u8]) -> Result<()> {
        let reference = &transfer.reference;
        let total = reference.chunk_count();
        if reference.chunk_len(idx) != Some(bytes.len() as u64) {
            return Err(CoreError::Corrupt {
                what: "attachment chunk",
            });
        }
        self.with_unlocked_for_sync(|conn, u, store_id| {
            let sealer = Sealer {
                key: &u.key,
                store_id,
            };
            let id = reference.id;
            let held = read_row(conn, id)?.map_or(0, |r| r.held);
            if held != idx {
                return Err(CoreError::Corrupt {
                    what: "attachment chunk out of order",
                });
            }
            let tx = conn.transaction()?;
            tx.execute(
                "INSERT INTO attachments (id, case_id, ours, held) VALUES (?1, ?2, 0, ?3)
                 ON CONFLICT (id) DO UPDATE SET held = ?3",
                params![
                    id.as_bytes().as_slice(),
                    transfer.case.as_bytes().as_slice(),
                    idx + 1
                ],
            )?;
            put_chunks(&tx, &sealer, id, idx, bytes)?;
            if idx + 1 == total {
                if read_whole(&tx, &sealer, reference).is_err() {
                    drop(tx);
                    discard_download(conn, id)?;
                    return Err(CoreError::Corrupt { what: "attachment" });
                }
                tx.execute(
                    "UPDATE attachments SET complete = 1 WHERE id = ?1",
                    [id.as_bytes().as_slice()],
                )?;
            }
            tx.commit()?;
            Ok(())
        })
    }
}

/// Drops the downloaded chunks of `id`, so that a download starts again from the first.
fn discard_download(conn: &rusqlite::Connection, id: AttachmentId) -> Result<()> {
    conn.execute(
        "DELETE FROM attachment_chunks WHERE attachment_id = ?1",
        [id.as_bytes().as_slice()],
    )?;
    conn.execute(
        "UPDATE attachments SET held = 0 WHERE id = ?1",
        [id.as_bytes().as_slice()],
    )?;
    Ok(())
}

/// Removes every attachment row and chunk of `case` (a purge), in `tx`.
pub(super) fn purge_case(tx: &Transaction<'_>, case: CaseId) -> Result<()> {
    tx.execute(
        "DELETE FROM attachments WHERE case_id = ?1",
        [case.as_bytes().as_slice()],
    )?;
    Ok(())
}
