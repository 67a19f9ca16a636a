//! Cases at the office: their encrypted storage, creation and assignment, and the storage the
//! core's sync hub runs on ([`SqliteHub`]).
//!
//! Case documents are sealed with a data key that is wrapped with age to the identity in
//! `server.key`; a copy of `server.db` alone reads as ciphertext. How they are laid out on disk
//! and kept in memory is [`crate::case_docs`]. Which users may receive a case
//! is the `case_assignments` table (need to know), kept in step with the document's own
//! `assigned` set by every operation here.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Arc;

use fieldcase_core::ActorId;
use fieldcase_core::CoreError;
use fieldcase_core::crypto::{DataKey, KeySlot};
use fieldcase_core::document::CaseDoc;
use fieldcase_core::ids::{CaseId, DeviceId, TaskId, UserId};
use fieldcase_core::model::{Author, Case, CaseStatus, NewCase, NewTask};
use fieldcase_core::sync::hub::{DeviceCaseState, HubStorage};
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::case_docs::{DocCache, LoadedCase, checkout, heads_text, parse_heads, store};
use crate::error::ServerError;
use crate::keys::ServerKeys;

/// The server's case-sealing key and the identity its own edits are made as.
pub struct CaseVault {
    key: DataKey,
    /// Who office edits (admin commands) are recorded as.
    pub office: Author,
    /// The automerge actor of this server process.
    pub actor: ActorId,
    /// The change sequence number of the latest case stored by this process (the web pages'
    /// live updates wait on it).
    changes: tokio::sync::watch::Sender<u64>,
    /// Decrypted documents of recently used cases (see [`crate::case_docs`]).
    pub(crate) docs: DocCache,
}

impl std::fmt::Debug for CaseVault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaseVault")
            .field("office", &self.office)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize, Deserialize)]
struct OfficeIdentity {
    user: UserId,
    device: DeviceId,
}

fn meta(conn: &Connection, name: &str) -> Result<Option<Vec<u8>>, ServerError> {
    Ok(conn
        .query_row(
            "SELECT value FROM server_meta WHERE name = ?1",
            [name],
            |r| r.get(0),
        )
        .optional()?)
}

fn put_meta(conn: &Connection, name: &str, value: &[u8]) -> Result<(), ServerError> {
    conn.execute(
        "INSERT INTO server_meta (name, value) VALUES (?1, ?2)",
        params![name, value],
    )?;
    Ok(())
}

impl CaseVault {
    /// Loads the wrapped data key (creating it on first start) and the office identity.
    pub fn load_or_create(
        conn: &mut Connection,
        keys: &ServerKeys,
    ) -> Result<Arc<CaseVault>, ServerError> {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let key = match meta(&tx, "data_key")? {
            Some(bytes) => {
                let slot: KeySlot = serde_json::from_slice(&bytes)
                    .map_err(|_| ServerError::KeyFile("wrapped data key is malformed"))?;
                slot.open_with_identity(&keys.age_identity)
                    .map_err(|_| ServerError::KeyFile("server.key does not open this database"))?
            }
            None => {
                let key = DataKey::generate();
                let slot = KeySlot::for_recipient(&key, &keys.age_identity.to_public())?;
                let bytes = serde_json::to_vec(&slot)
                    .map_err(|_| ServerError::Internal("encoding key slot"))?;
                put_meta(&tx, "data_key", &bytes)?;
                key
            }
        };
        let office = match meta(&tx, "office_identity")? {
            Some(bytes) => serde_json::from_slice::<OfficeIdentity>(&bytes)
                .map_err(|_| ServerError::Internal("office identity is malformed"))?,
            None => {
                let id = OfficeIdentity {
                    user: UserId::new(),
                    device: DeviceId::new(),
                };
                let bytes = serde_json::to_vec(&id)
                    .map_err(|_| ServerError::Internal("encoding office identity"))?;
                put_meta(&tx, "office_identity", &bytes)?;
                id
            }
        };
        tx.commit()?;
        Ok(Arc::new(CaseVault {
            key,
            office: Author {
                user: office.user,
                device: office.device,
            },
            actor: ActorId::random(),
            changes: tokio::sync::watch::Sender::new(0),
            docs: DocCache::default(),
        }))
    }

    /// Wakes whenever this process stores a case (a sync, an office edit). The store may not
    /// be committed yet when it wakes: read through [`crate::db::Db`], whose one connection
    /// serialises the read after the write's transaction.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// The sealing key (for other sealed server tables such as quarantine).
    pub(crate) fn key(&self) -> &DataKey {
        &self.key
    }

    /// Tells the live pages that a case was stored under `seq`.
    pub(crate) fn changed(&self, seq: u64) {
        self.changes.send_replace(seq);
    }
}

fn user_is_active(conn: &Connection, user: UserId) -> Result<bool, ServerError> {
    Ok(conn
        .query_row(
            "SELECT active FROM users WHERE id = ?1",
            [user.to_string()],
            |r| r.get::<_, i64>(0),
        )
        .optional()?
        == Some(1))
}

/// Takes a case's document out for this transaction (see [`crate::case_docs`]).
pub(crate) fn load_doc(
    conn: &Connection,
    vault: &CaseVault,
    case: CaseId,
) -> Result<LoadedCase, ServerError> {
    checkout(conn, vault, case)?.ok_or(ServerError::UnknownCase)
}

/// Sets a case's status at the office (closing starts its retention period: once it has passed,
/// devices purge the case).
pub fn set_status(
    conn: &mut Connection,
    vault: &CaseVault,
    case: CaseId,
    status: CaseStatus,
    now: i64,
) -> Result<(), ServerError> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let mut loaded = load_doc(&tx, vault, case)?;
    loaded.doc.set_status(vault.office, status, at(now))?;
    store(&tx, vault, &mut loaded, None, now)?;
    crate::store::audit(&mut &*tx, now, &format!("case_status_{status}"), None, None)?;
    tx.commit()?;
    vault.keep([loaded]);
    Ok(())
}

fn at(now: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(now).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Opens a case at the office, assigned to `new.assigned_workers` (who must be active users),
/// optionally with a first accompaniment task. It reaches their phones at their next sync.
pub fn create_case(
    conn: &mut Connection,
    vault: &CaseVault,
    new: &NewCase,
    task: Option<&NewTask>,
    now: i64,
) -> Result<(CaseId, Option<TaskId>), ServerError> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    for user in &new.assigned_workers {
        if !user_is_active(&tx, *user)? {
            return Err(ServerError::UnknownUser);
        }
    }
    let id = CaseId::new();
    let mut loaded = LoadedCase::new(CaseDoc::create(
        id,
        new,
        vault.office,
        &vault.actor,
        at(now),
    )?);
    let task_id = task
        .map(|t| loaded.doc.add_task(vault.office, t, at(now)))
        .transpose()?;
    store(&tx, vault, &mut loaded, None, now)?;
    for user in &new.assigned_workers {
        tx.execute(
            "INSERT OR IGNORE INTO case_assignments (case_id, user_id) VALUES (?1, ?2)",
            params![id.to_string(), user.to_string()],
        )?;
    }
    tx.commit()?;
    vault.keep([loaded]);
    Ok((id, task_id))
}

/// Assigns a worker to a case (or removes them). Assigning makes the whole case reach their phone
/// at its next sync.
pub fn set_assigned(
    conn: &mut Connection,
    vault: &CaseVault,
    case: CaseId,
    user: UserId,
    assigned: bool,
    now: i64,
) -> Result<(), ServerError> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    if assigned && !user_is_active(&tx, user)? {
        return Err(ServerError::UnknownUser);
    }
    let mut loaded = load_doc(&tx, vault, case)?;
    loaded
        .doc
        .set_assigned(vault.office, user, assigned, at(now))?;
    store(&tx, vault, &mut loaded, None, now)?;
    if assigned {
        tx.execute(
            "INSERT OR IGNORE INTO case_assignments (case_id, user_id) VALUES (?1, ?2)",
            params![case.to_string(), user.to_string()],
        )?;
    } else {
        tx.execute(
            "DELETE FROM case_assignments WHERE case_id = ?1 AND user_id = ?2",
            params![case.to_string(), user.to_string()],
        )?;
    }
    crate::store::audit(
        &mut &*tx,
        now,
        if assigned {
            "case_assigned"
        } else {
            "case_unassigned"
        },
        Some(user.as_uuid()),
        None,
    )?;
    tx.commit()?;
    vault.keep([loaded]);
    Ok(())
}

/// Plans an accompaniment task in a case at the office.
pub fn add_task(
    conn: &mut Connection,
    vault: &CaseVault,
    case: CaseId,
    task: &NewTask,
    now: i64,
) -> Result<TaskId, ServerError> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let mut loaded = load_doc(&tx, vault, case)?;
    let id = loaded.doc.add_task(vault.office, task, at(now))?;
    store(&tx, vault, &mut loaded, None, now)?;
    tx.commit()?;
    vault.keep([loaded]);
    Ok(id)
}

/// A case as the office sees it, with the conflicts its fields hold.
pub fn read_case(
    conn: &Connection,
    vault: &CaseVault,
    case: CaseId,
) -> Result<(Case, Vec<fieldcase_core::document::Conflict>), ServerError> {
    let mut loaded = load_doc(conn, vault, case)?;
    let read = (loaded.doc.case()?, loaded.doc.conflicts()?);
    // Only read: what it holds is what is stored.
    vault.keep([loaded]);
    Ok(read)
}

/// The change sequence number of a case (it grows with every stored change), if it exists.
pub fn case_seq(conn: &Connection, case: CaseId) -> Result<Option<i64>, ServerError> {
    Ok(conn
        .query_row(
            "SELECT seq FROM cases WHERE id = ?1",
            [case.to_string()],
            |r| r.get(0),
        )
        .optional()?)
}

/// Ids of every case, oldest first.
pub fn list_case_ids(conn: &Connection) -> Result<Vec<CaseId>, ServerError> {
    let mut stmt = conn.prepare("SELECT id FROM cases ORDER BY created_at, id")?;
    let ids = stmt
        .query_map([], |r| r.get::<_, String>(0))?
        .filter_map(|r| r.ok().and_then(|s| s.parse().ok()))
        .collect();
    Ok(ids)
}

/// The sync hub's storage over one open transaction of the server database. It holds the case
/// documents the request works on; once the transaction committed, give them back to the
/// vault's memory with [`SqliteHub::into_loaded`] and [`CaseVault::keep`].
pub struct SqliteHub<'a> {
    conn: &'a Connection,
    vault: &'a CaseVault,
    now: i64,
    retention_secs: i64,
    held: HashMap<CaseId, LoadedCase>,
}

impl<'a> SqliteHub<'a> {
    /// The hub's storage over `conn` (the transaction every read and write of one sync request
    /// goes through), sealing with `vault`; `now` in Unix seconds; closed cases stay on devices
    /// for `retention_secs`.
    pub fn new(
        conn: &'a Connection,
        vault: &'a CaseVault,
        now: i64,
        retention_secs: i64,
    ) -> SqliteHub<'a> {
        SqliteHub {
            conn,
            vault,
            now,
            retention_secs,
            held: HashMap::new(),
        }
    }

    /// The documents this request loaded, to keep in memory once its transaction committed.
    pub fn into_loaded(self) -> impl Iterator<Item = LoadedCase> {
        self.held.into_values()
    }
}

impl HubStorage for SqliteHub<'_> {
    fn case_doc(&mut self, case: CaseId) -> fieldcase_core::Result<Option<&mut CaseDoc>> {
        if let Entry::Vacant(slot) = self.held.entry(case) {
            match checkout(self.conn, self.vault, case)? {
                Some(loaded) => {
                    slot.insert(loaded);
                }
                None => return Ok(None),
            }
        }
        Ok(self.held.get_mut(&case).map(|l| &mut l.doc))
    }

    fn store_case(&mut self, case: CaseId, received: Option<&[u8]>) -> fieldcase_core::Result<u64> {
        let loaded = self.held.get_mut(&case).ok_or(CoreError::CaseNotFound)?;
        store(self.conn, self.vault, loaded, received, self.now)
    }

    fn is_assigned(&mut self, user: UserId, case: CaseId) -> fieldcase_core::Result<bool> {
        Ok(self
            .conn
            .query_row(
                "SELECT 1 FROM case_assignments WHERE case_id = ?1 AND user_id = ?2",
                params![case.to_string(), user.to_string()],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    fn assigned_changed_since(
        &mut self,
        user: UserId,
        cursor: u64,
        limit: usize,
    ) -> fieldcase_core::Result<Vec<(CaseId, u64)>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT c.id, c.seq FROM cases c JOIN case_assignments a ON a.case_id = c.id
             WHERE a.user_id = ?1 AND c.seq > ?2 ORDER BY c.seq LIMIT ?3",
        )?;
        let rows = stmt.query_map(
            params![
                user.to_string(),
                i64::try_from(cursor).unwrap_or(i64::MAX),
                i64::try_from(limit).unwrap_or(i64::MAX)
            ],
            |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)),
        )?;
        let mut out = Vec::new();
        for row in rows {
            let (id, seq) = row?;
            let id = id
                .parse()
                .map_err(|_| CoreError::Corrupt { what: "cases" })?;
            out.push((id, u64::try_from(seq).unwrap_or(0)));
        }
        Ok(out)
    }

    fn device_state(
        &mut self,
        device: DeviceId,
        case: CaseId,
    ) -> fieldcase_core::Result<DeviceCaseState> {
        let row: Option<(String, Option<String>, Option<i64>)> = self
            .conn
            .query_row(
                "SELECT confirmed, sent, sent_cursor FROM device_case_state WHERE device_id = ?1 AND case_id = ?2",
                params![device.to_string(), case.to_string()],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        let Some((confirmed, sent, sent_cursor)) = row else {
            return Ok(DeviceCaseState::default());
        };
        let sent = match (sent, sent_cursor) {
            (Some(heads), Some(at)) => Some((
                parse_heads(&heads, "device_case_state")?,
                u64::try_from(at).unwrap_or(0),
            )),
            _ => None,
        };
        Ok(DeviceCaseState {
            confirmed: parse_heads(&confirmed, "device_case_state")?,
            sent,
        })
    }

    fn set_device_state(
        &mut self,
        device: DeviceId,
        case: CaseId,
        state: &DeviceCaseState,
    ) -> fieldcase_core::Result<()> {
        let (sent, sent_cursor) = match &state.sent {
            Some((heads, at)) => (
                Some(heads_text(heads)),
                Some(i64::try_from(*at).unwrap_or(i64::MAX)),
            ),
            None => (None, None),
        };
        self.conn.execute(
            "INSERT INTO device_case_state (device_id, case_id, confirmed, sent, sent_cursor) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT(device_id, case_id) DO UPDATE SET confirmed = excluded.confirmed, sent = excluded.sent, sent_cursor = excluded.sent_cursor",
            params![device.to_string(), case.to_string(), heads_text(&state.confirmed), sent, sent_cursor],
        )?;
        Ok(())
    }

    fn cases_to_purge(
        &mut self,
        device: DeviceId,
        user: UserId,
    ) -> fieldcase_core::Result<Vec<CaseId>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT s.case_id FROM device_case_state s LEFT JOIN cases c ON c.id = s.case_id
             WHERE s.device_id = ?1 AND (
                 NOT EXISTS (SELECT 1 FROM case_assignments a
                             WHERE a.case_id = s.case_id AND a.user_id = ?2)
                 OR (c.closed_at IS NOT NULL AND c.closed_at + ?3 <= ?4))",
        )?;
        let rows = stmt.query_map(
            params![
                device.to_string(),
                user.to_string(),
                self.retention_secs,
                self.now
            ],
            |r| r.get::<_, String>(0),
        )?;
        let mut out = Vec::new();
        for row in rows {
            out.push(row?.parse().map_err(|_| CoreError::Corrupt {
                what: "device_case_state",
            })?);
        }
        Ok(out)
    }

    fn record_purge(&mut self, device: DeviceId, case: CaseId) -> fieldcase_core::Result<()> {
        let deleted = self.conn.execute(
            "DELETE FROM device_case_state WHERE device_id = ?1 AND case_id = ?2",
            params![device.to_string(), case.to_string()],
        )?;
        if deleted > 0 {
            self.conn.execute(
                "INSERT OR REPLACE INTO purge_receipts (device_id, case_id, at) VALUES (?1, ?2, ?3)",
                params![device.to_string(), case.to_string(), self.now],
            )?;
            crate::store::audit(
                &mut &*self.conn,
                self.now,
                "case_purged",
                None,
                Some(device.as_uuid()),
            )
            .map_err(|e| match e {
                crate::sql::SqlError::Sqlite(e) => CoreError::Storage(e),
                _ => CoreError::Document("database failure"),
            })?;
        }
        Ok(())
    }
}
