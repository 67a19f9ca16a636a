//! The append-only audit log and its keyed hash chain.
//!
//! Every entry is chained to the one before it: its `hash` is
//!
//! ```text
//! HMAC-SHA-256( key, "fieldcase-audit-v2" 0x00
//!        || prev_hash (32 bytes)
//!        || seq (i64, big-endian) || at (i64, big-endian)
//!        || field(action) || opt(user_id) || opt(device_id) || opt(detail) )
//! ```
//!
//! under a key derived from `server.key` ([`KEY_PURPOSE`]), which the database never holds: who
//! can write the database but lacks `server.key` cannot rewrite an entry, nor the chain after
//! it. Logs from before the key hold entries hashed without it (`SHA-256` over
//! `"fieldcase-audit-v1" 0x00` and the same fields) and, older still, entries with no hash;
//! where the keyed chain starts is recorded in `server_meta` under a MAC of its own, and from
//! there on an entry without a valid MAC is tampering. An office can write down the head
//! (`admin audit head`, the audit page) or send it elsewhere, and check the log against it
//! later (`admin audit verify --head`): a log rebuilt from an earlier point no longer holds it.
//!
//! where `field(s)` is the byte length as a big-endian `u32` followed by the UTF-8 bytes, and
//! `opt(x)` is `0x00` for none or `0x01 || field(x)`, so no two different entries encode to the
//! same bytes. `prev_hash` is the previous entry's hash, or 32 zero bytes for the first chained
//! entry (rows written before schema 3 carry no hash and come before the chain).
//! Appending without the key is possible only while the log has no keyed part (tools and tests
//! on a bare database); once it has, an entry without the key is refused.
//!
//! Entries are appended inside the caller's write transaction ([`append`] takes any [`Sql`]),
//! in the commit order ([`Sql::enter_commit_order`]: a sync that runs beside others on
//! PostgreSQL appends only once it holds it); `seq` is written explicitly as the last `seq`
//! plus one, so two writers that raced anyway would collide on the primary key instead of
//! forking the chain.
//!
//! [`verify_chain`] recomputes the chain and names the first entry where it breaks: a changed
//! field, a removed entry (a gap in `seq`, or entries missing at the end according to SQLite's
//! AUTOINCREMENT counter, or PostgreSQL's `audit_log_sequence` that stands in for it), an
//! inserted or re-linked entry, the keyed start removed or forged. What the key cannot catch is
//! a log cut short together with its high-water mark, or rebuilt by a process that holds the key;
//! comparing the head hash ([`ChainReport::Intact::head`]) with a copy kept elsewhere does.
//!
//! Entries hold ids, action names and short machine details only; never names, note text or
//! secrets.

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::error::ServerError;
use crate::sql_params;
use crate::storage::sql::{Backend, Row, Sql, SqlError};

/// Domain separation tag of entry hashes made without the key (logs from before it).
const DOMAIN: &[u8] = b"fieldcase-audit-v1\0";
/// Domain separation tag of keyed entries.
const DOMAIN_KEYED: &[u8] = b"fieldcase-audit-v2\0";
/// Domain separation tag of the record of where the keyed chain starts.
const DOMAIN_KEYED_FROM: &[u8] = b"fieldcase-audit-keyed-from-v2\0";
/// The `server_meta` row that records where the keyed chain starts.
const KEYED_FROM: &str = "audit_keyed_from";

/// What the audit key is derived for from `server.key`
/// ([`crate::storage::keys::ServerKeys::derive`]).
pub const KEY_PURPOSE: &str = "audit log: entry MACs";

/// The `prev_hash` of the first chained entry.
pub const GENESIS: [u8; 32] = [0u8; 32];

/// Longest `detail` accepted, in bytes.
pub const MAX_DETAIL_LEN: usize = 200;

/// Action names written by the server (the audit vocabulary).
pub mod action {
    /// An anonymised HTCDS export was written (detail: k, counts, generalisation steps).
    pub const HTCDS_EXPORTED: &str = "htcds_exported";
    /// A user was added.
    pub const USER_ADDED: &str = "user_added";
    /// A user's role was changed (detail: the new role).
    pub const USER_ROLE_CHANGED: &str = "user_role_changed";
    /// A user was deactivated (detail: number of devices revoked with it).
    pub const USER_DEACTIVATED: &str = "user_deactivated";
    /// An enrollment code was issued.
    pub const ENROLLMENT_CODE_ISSUED: &str = "enrollment_code_issued";
    /// A device was enrolled.
    pub const DEVICE_ENROLLED: &str = "device_enrolled";
    /// A device was revoked (detail: `admin` or `user_deactivated`).
    pub const DEVICE_REVOKED: &str = "device_revoked";
    /// A case was opened (detail: the case id).
    pub const CASE_CREATED: &str = "case_created";
    /// A worker was given a case (user: the worker; detail: the case id).
    pub const CASE_ASSIGNED: &str = "case_assigned";
    /// A worker's case was taken from her (user: the worker; detail: the case id).
    pub const CASE_UNASSIGNED: &str = "case_unassigned";
    /// An accompaniment task was planned at the office (detail: `case/task`).
    pub const TASK_ADDED: &str = "task_added";
    /// A case's status was set at the office, `case_status_closed` or `case_status_open` and so
    /// on (detail: the case id).
    pub const CASE_STATUS_PREFIX: &str = "case_status_";
    /// A device that synced last before the office was restored started over with it (device:
    /// which).
    pub const DEVICE_STARTED_OVER: &str = "device_started_over";
    /// A device gave back history of a case that the office had attested and lost in a restore
    /// (device: which; detail: the case id).
    pub const CASE_RECOVERED: &str = "case_recovered";
}

/// One audit entry to append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewEntry<'a> {
    /// Unix seconds.
    pub at: i64,
    /// Action name (see [`action`]).
    pub action: &'a str,
    /// The user concerned, if any.
    pub user_id: Option<&'a Uuid>,
    /// The device concerned, if any.
    pub device_id: Option<&'a Uuid>,
    /// A short machine detail (ids, a reason from a fixed vocabulary); never personal data.
    pub detail: Option<&'a str>,
}

/// One stored audit entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Position in the log (1, 2, 3, ...).
    pub seq: i64,
    /// Unix seconds.
    pub at: i64,
    /// Action name.
    pub action: String,
    /// The user concerned (as stored).
    pub user_id: Option<String>,
    /// The device concerned (as stored).
    pub device_id: Option<String>,
    /// Short machine detail.
    pub detail: Option<String>,
    /// The previous entry's hash (`None` for entries written before the chain existed).
    pub prev_hash: Option<Vec<u8>>,
    /// This entry's hash (`None` for entries written before the chain existed).
    pub hash: Option<Vec<u8>>,
}

fn put_field(out: &mut Vec<u8>, bytes: &[u8]) {
    // Fields are bounded far below 4 GiB; saturate rather than wrap for an absurd one.
    let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(bytes);
}

fn put_opt(out: &mut Vec<u8>, value: Option<&[u8]>) {
    match value {
        None => out.push(0),
        Some(bytes) => {
            out.push(1);
            put_field(out, bytes);
        }
    }
}

/// The fields of one entry as they are hashed, after the domain tag.
fn entry_bytes(
    prev_hash: &[u8; 32],
    seq: i64,
    at: i64,
    action: &str,
    user_id: Option<&str>,
    device_id: Option<&str>,
    detail: Option<&str>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    out.extend_from_slice(prev_hash);
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(&at.to_be_bytes());
    put_field(&mut out, action.as_bytes());
    put_opt(&mut out, user_id.map(str::as_bytes));
    put_opt(&mut out, device_id.map(str::as_bytes));
    put_opt(&mut out, detail.map(str::as_bytes));
    out
}

/// The hash of one entry made without the key (logs from before it), given its fields as
/// stored (ids as their text form).
pub fn entry_hash(
    prev_hash: &[u8; 32],
    seq: i64,
    at: i64,
    action: &str,
    user_id: Option<&str>,
    device_id: Option<&str>,
    detail: Option<&str>,
) -> [u8; 32] {
    unkeyed_hash(&entry_bytes(
        prev_hash, seq, at, action, user_id, device_id, detail,
    ))
}

/// The unkeyed hash of one entry's [`entry_bytes`].
fn unkeyed_hash(bytes: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(DOMAIN);
    h.update(bytes);
    h.finalize().into()
}

/// HMAC-SHA-256 of `parts` under `key`.
fn mac(key: &[u8; 32], parts: &[&[u8]]) -> Result<[u8; 32], SqlError> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
        .map_err(|_| SqlError::Refused("the audit key"))?;
    for part in parts {
        mac.update(part);
    }
    Ok(mac.finalize().into_bytes().into())
}

/// The keyed hash of one entry's [`entry_bytes`].
fn entry_mac(key: &[u8; 32], bytes: &[u8]) -> Result<[u8; 32], SqlError> {
    mac(key, &[DOMAIN_KEYED, bytes])
}

/// Where the keyed chain starts: the first keyed entry's `seq` and the hash it follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct KeyedFrom {
    seq: i64,
    prev: [u8; 32],
}

/// The stored start of the keyed chain: `Ok(None)` when there is none, `Err(())` when it does
/// not verify under `key` (forged, or written under another office's key).
fn keyed_from(
    sql: &mut dyn Sql,
    key: &[u8; 32],
) -> Result<Result<Option<KeyedFrom>, ()>, SqlError> {
    let Some(row) = sql.query_opt(
        "SELECT value FROM server_meta WHERE name = ?1",
        sql_params![KEYED_FROM],
    )?
    else {
        return Ok(Ok(None));
    };
    let value: Vec<u8> = row.get(0)?;
    let (Some(seq), Some(prev), Some(stored)) = (
        value.get(..8).and_then(|b| <[u8; 8]>::try_from(b).ok()),
        value.get(8..40).and_then(|b| <[u8; 32]>::try_from(b).ok()),
        value.get(40..72),
    ) else {
        return Ok(Err(()));
    };
    if value.len() != 72 || mac(key, &[DOMAIN_KEYED_FROM, &seq, &prev])?.as_slice() != stored {
        return Ok(Err(()));
    }
    Ok(Ok(Some(KeyedFrom {
        seq: i64::from_be_bytes(seq),
        prev,
    })))
}

/// Records that the keyed chain starts at `seq`, following `prev`.
fn record_keyed_from(sql: &mut dyn Sql, key: &[u8; 32], from: KeyedFrom) -> Result<(), SqlError> {
    let seq = from.seq.to_be_bytes();
    let tag = mac(key, &[DOMAIN_KEYED_FROM, &seq, &from.prev])?;
    let mut value = Vec::with_capacity(72);
    value.extend_from_slice(&seq);
    value.extend_from_slice(&from.prev);
    value.extend_from_slice(&tag);
    sql.execute(
        "INSERT INTO server_meta (name, value) VALUES (?1, ?2)",
        sql_params![KEYED_FROM, &value],
    )?;
    Ok(())
}

/// The last entry's `seq` (0 for an empty log) and the hash the next entry follows.
fn last_link(sql: &mut dyn Sql) -> Result<(i64, [u8; 32]), SqlError> {
    let last: Option<(i64, Option<Vec<u8>>)> = sql
        .query_opt(
            "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1",
            &[],
        )?
        .map(|r| Ok::<_, SqlError>((r.get(0)?, r.get(1)?)))
        .transpose()?;
    Ok(match last {
        None => (0, GENESIS),
        Some((last_seq, hash)) => {
            let prev = match hash.map(|h| <[u8; 32]>::try_from(h.as_slice())) {
                Some(Ok(h)) => h,
                // The last entry predates the chain: the next one starts it.
                None => GENESIS,
                // A tampered hash must not stop revocations from being recorded: chain on from
                // zero; `verify_chain` names the tampered entry.
                Some(Err(_)) => {
                    tracing::warn!(seq = last_seq, "last audit entry has a malformed hash");
                    GENESIS
                }
            };
            (last_seq, prev)
        }
    })
}

/// Starts the keyed chain after the last entry if it has not started (an office's first start
/// with the key, after an upgrade), so that from then on an entry without a valid MAC shows as
/// tampering. Does nothing without the key in the transaction.
pub fn start_keyed_chain(sql: &mut dyn Sql) -> Result<(), SqlError> {
    let Some(key) = sql.record_key().copied().map(zeroize::Zeroizing::new) else {
        return Ok(());
    };
    match keyed_from(sql, &key)? {
        Ok(Some(_)) | Err(()) => Ok(()),
        Ok(None) => {
            sql.enter_commit_order()?;
            let (last, prev) = last_link(sql)?;
            let seq = last
                .checked_add(1)
                .ok_or_else(|| invalid("audit sequence overflow"))?;
            record_keyed_from(sql, &key, KeyedFrom { seq, prev })
        }
    }
}

fn invalid(message: &'static str) -> SqlError {
    SqlError::Refused(message)
}

/// Appends one chained entry inside the caller's transaction and returns its `seq`: keyed when
/// the transaction carries the office's key (starting the keyed chain if it has not started),
/// unkeyed only while the log has no keyed part.
///
/// Refuses (without writing) an empty action, a detail longer than [`MAX_DETAIL_LEN`], and an
/// entry without the key in a keyed log.
pub fn append(sql: &mut dyn Sql, entry: &NewEntry<'_>) -> Result<i64, SqlError> {
    if entry.action.is_empty() {
        return Err(invalid("audit action is empty"));
    }
    if entry.detail.is_some_and(|d| d.len() > MAX_DETAIL_LEN) {
        return Err(invalid("audit detail is too long"));
    }
    // One chain for the whole office: appended to only in the commit order.
    sql.enter_commit_order()?;
    let (last, prev) = last_link(sql)?;
    let seq = last
        .checked_add(1)
        .ok_or_else(|| invalid("audit sequence overflow"))?;
    let user_id = entry.user_id.map(Uuid::to_string);
    let device_id = entry.device_id.map(Uuid::to_string);
    let bytes = entry_bytes(
        &prev,
        seq,
        entry.at,
        entry.action,
        user_id.as_deref(),
        device_id.as_deref(),
        entry.detail,
    );
    let hash = match sql.record_key().copied().map(zeroize::Zeroizing::new) {
        Some(key) => {
            if keyed_from(sql, &key)? == Ok(None) {
                record_keyed_from(sql, &key, KeyedFrom { seq, prev })?;
            }
            entry_mac(&key, &bytes)?
        }
        None => {
            let keyed = sql
                .query_opt(
                    "SELECT 1 FROM server_meta WHERE name = ?1",
                    sql_params![KEYED_FROM],
                )?
                .is_some();
            if keyed {
                return Err(invalid(
                    "the audit log is keyed: append with the office's key",
                ));
            }
            unkeyed_hash(&bytes)
        }
    };
    sql.execute(
        "INSERT INTO audit_log (seq, at, action, user_id, device_id, detail, prev_hash, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        sql_params![
            seq,
            entry.at,
            entry.action,
            user_id.as_ref(),
            device_id.as_ref(),
            entry.detail,
            prev.as_slice(),
            hash.as_slice()
        ],
    )?;
    Ok(seq)
}

/// What is wrong at the entry where the chain breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainProblem {
    /// The entry's stored hash does not match its fields: a field was changed.
    Altered,
    /// The entry does not link to the entry before it (its `prev_hash` differs from that entry's
    /// hash): an entry was inserted, replaced or re-linked.
    Unlinked,
    /// The entry with this `seq` is missing (a gap in the sequence).
    Missing,
    /// Entries from this `seq` on were removed from the end (the log is shorter than SQLite's
    /// AUTOINCREMENT counter says it was).
    TruncatedEnd {
        /// The highest `seq` ever written.
        last_written: i64,
    },
    /// The entry has no hash although entries before it are chained.
    Unchained,
    /// A hash column is not 32 bytes.
    Malformed,
    /// The log has entries but no record of where its keyed chain starts: it was removed (or the
    /// server has not started since an upgrade, which records it).
    NotKeyed,
    /// The record of where the keyed chain starts does not verify under this office's key.
    ForgedKeyedStart,
}

impl fmt::Display for ChainProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChainProblem::Altered => f.write_str("its contents were changed (hash mismatch)"),
            ChainProblem::Unlinked => f.write_str(
                "it does not follow the entry before it (an entry was inserted, replaced or \
                 re-linked)",
            ),
            ChainProblem::Missing => f.write_str("the entry is missing (deleted)"),
            ChainProblem::TruncatedEnd { last_written } => write!(
                f,
                "entries from here up to {last_written} are missing (deleted from the end)"
            ),
            ChainProblem::Unchained => f.write_str("it carries no hash inside the chain"),
            ChainProblem::Malformed => f.write_str("its hash columns are malformed"),
            ChainProblem::NotKeyed => f.write_str(
                "the log has no keyed start (it was removed, or the server has not started since \
                 an upgrade)",
            ),
            ChainProblem::ForgedKeyedStart => {
                f.write_str("the record of where the keyed chain starts does not verify")
            }
        }
    }
}

/// The outcome of [`verify_chain`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainReport {
    /// Every entry checks out.
    Intact {
        /// Number of entries in the log, those before the chain included.
        entries: u64,
        /// Entries written before the chain existed (schema < 3), which carry no hash.
        legacy: u64,
        /// Chained entries written before the chain was keyed (hashed without the key).
        unkeyed: u64,
        /// The hash of the last entry (the value to keep elsewhere), if any is chained.
        head: Option<[u8; 32]>,
    },
    /// The chain breaks at entry `seq`.
    Broken {
        /// The first entry that does not check out.
        seq: i64,
        /// What is wrong with it.
        problem: ChainProblem,
    },
}

impl ChainReport {
    /// Whether the chain is intact.
    pub fn is_intact(&self) -> bool {
        matches!(self, ChainReport::Intact { .. })
    }
}

fn read_entry(r: &Row) -> Result<Entry, SqlError> {
    Ok(Entry {
        seq: r.get(0)?,
        at: r.get(1)?,
        action: r.get(2)?,
        user_id: r.get(3)?,
        device_id: r.get(4)?,
        detail: r.get(5)?,
        prev_hash: r.get(6)?,
        hash: r.get(7)?,
    })
}

const ENTRY_COLUMNS: &str = "seq, at, action, user_id, device_id, detail, prev_hash, hash";

/// Recomputes the whole chain, oldest entry first, and reports the first entry where it breaks.
///
/// The whole log is read in one query (inside the caller's read snapshot); entries are small
/// (ids and short details), so even a long log fits in memory.
pub fn verify_chain(sql: &mut dyn Sql) -> Result<ChainReport, ServerError> {
    let key = sql
        .record_key()
        .copied()
        .map(zeroize::Zeroizing::new)
        .ok_or(ServerError::AuditKeyMissing)?;
    let from = match keyed_from(sql, &key)? {
        Ok(from) => from,
        Err(()) => {
            return Ok(ChainReport::Broken {
                seq: 1,
                problem: ChainProblem::ForgedKeyedStart,
            });
        }
    };
    let rows = sql.query_all(
        &format!("SELECT {ENTRY_COLUMNS} FROM audit_log ORDER BY seq"),
        &[],
    )?;
    let mut expected_seq: i64 = 1;
    let mut entries: u64 = 0;
    let mut legacy: u64 = 0;
    let mut unkeyed: u64 = 0;
    // The previous entry's hash once the chain has started.
    let mut prev: Option<[u8; 32]> = None;
    for row in &rows {
        let e = read_entry(row)?;
        if e.seq != expected_seq {
            return Ok(ChainReport::Broken {
                seq: expected_seq,
                problem: ChainProblem::Missing,
            });
        }
        let broken = |problem| {
            Ok(ChainReport::Broken {
                seq: e.seq,
                problem,
            })
        };
        let keyed = from.is_some_and(|f| e.seq >= f.seq);
        match (&e.prev_hash, &e.hash) {
            (None, None) if !keyed && prev.is_none() => legacy += 1,
            (None, None) | (None, Some(_)) | (Some(_), None) => {
                return broken(ChainProblem::Unchained);
            }
            (Some(stored_prev), Some(stored_hash)) => {
                let (Ok(stored_prev), Ok(stored_hash)) = (
                    <[u8; 32]>::try_from(stored_prev.as_slice()),
                    <[u8; 32]>::try_from(stored_hash.as_slice()),
                ) else {
                    return broken(ChainProblem::Malformed);
                };
                let follows = stored_prev == prev.unwrap_or(GENESIS)
                    && from.is_none_or(|f| f.seq != e.seq || f.prev == stored_prev);
                if !follows {
                    return broken(ChainProblem::Unlinked);
                }
                let bytes = entry_bytes(
                    &stored_prev,
                    e.seq,
                    e.at,
                    &e.action,
                    e.user_id.as_deref(),
                    e.device_id.as_deref(),
                    e.detail.as_deref(),
                );
                let computed = if keyed {
                    entry_mac(&key, &bytes)?
                } else {
                    unkeyed += 1;
                    unkeyed_hash(&bytes)
                };
                if computed != stored_hash {
                    return broken(ChainProblem::Altered);
                }
                prev = Some(stored_hash);
            }
        }
        entries += 1;
        expected_seq = expected_seq
            .checked_add(1)
            .ok_or(ServerError::Internal("audit sequence overflow"))?;
    }
    match from {
        // Entries but no keyed start: it was removed (every start of the server records it).
        None if entries > 0 => {
            return Ok(ChainReport::Broken {
                seq: 1,
                problem: ChainProblem::NotKeyed,
            });
        }
        // The keyed start lies past the end: the entries before it were removed.
        Some(f) if f.seq > expected_seq => {
            return Ok(ChainReport::Broken {
                seq: expected_seq,
                problem: ChainProblem::Missing,
            });
        }
        _ => {}
    }
    // AUTOINCREMENT remembers the highest seq ever written; rows cut from the end show here.
    // PostgreSQL has no sqlite_sequence: its migrations keep the same high-water mark in
    // audit_log_sequence (a trigger that only lets it grow).
    let high_water = match sql.backend() {
        Backend::Sqlite => "SELECT seq FROM sqlite_sequence WHERE name = 'audit_log'",
        Backend::Postgres => "SELECT seq FROM audit_log_sequence WHERE id = 1",
    };
    let last_written: Option<i64> = sql
        .query_opt(high_water, &[])?
        .map(|r| r.get(0))
        .transpose()?;
    if let Some(last_written) = last_written
        && last_written >= expected_seq
    {
        return Ok(ChainReport::Broken {
            seq: expected_seq,
            problem: ChainProblem::TruncatedEnd { last_written },
        });
    }
    Ok(ChainReport::Intact {
        entries,
        legacy,
        unkeyed,
        head: prev,
    })
}

/// The entry whose hash is `head` (a head written down earlier), if the log still holds it.
/// Check the chain first ([`verify_chain`]): in an intact chain, holding an earlier head means
/// that nothing up to it was rewritten or removed.
pub fn entry_with_hash(sql: &mut dyn Sql, head: &[u8; 32]) -> Result<Option<i64>, ServerError> {
    Ok(sql
        .query_opt(
            "SELECT seq FROM audit_log WHERE hash = ?1",
            sql_params![head.as_slice()],
        )?
        .map(|r| r.get(0))
        .transpose()?)
}

/// The last `limit` entries, oldest first.
pub fn list(sql: &mut dyn Sql, limit: u32) -> Result<Vec<Entry>, ServerError> {
    let rows = sql.query_all(
        &format!(
            "SELECT {ENTRY_COLUMNS} FROM
               (SELECT {ENTRY_COLUMNS} FROM audit_log ORDER BY seq DESC LIMIT ?1) AS recent
             ORDER BY seq"
        ),
        sql_params![limit],
    )?;
    Ok(rows.iter().map(read_entry).collect::<Result<Vec<_>, _>>()?)
}

/// Appends one hash-chained audit record (ids only, never names or secrets) inside the caller's
/// transaction; see this module.
pub fn record(
    sql: &mut dyn Sql,
    now: i64,
    action: &str,
    user_id: Option<&Uuid>,
    device_id: Option<&Uuid>,
) -> Result<(), SqlError> {
    record_detail(sql, now, action, user_id, device_id, None)
}

/// Like [`record`] with a short machine `detail` (an id, a reason from a fixed vocabulary, a
/// count; never personal data), at most [`MAX_DETAIL_LEN`] bytes.
pub fn record_detail(
    sql: &mut dyn Sql,
    now: i64,
    action: &str,
    user_id: Option<&Uuid>,
    device_id: Option<&Uuid>,
    detail: Option<&str>,
) -> Result<(), SqlError> {
    append(
        sql,
        &NewEntry {
            at: now,
            action,
            user_id,
            device_id,
            detail,
        },
    )?;
    Ok(())
}
