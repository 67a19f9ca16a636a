//! Cases at the office: their encrypted storage, creation and assignment, and the storage the
//! core's sync hub runs on ([`SqlHub`]), over either database backend.
//!
//! Case documents are sealed with a data key that is wrapped with age to the identity in
//! `server.key`; a copy of the database (`server.db`, or a PostgreSQL dump) alone reads as
//! ciphertext. How they are laid out on disk
//! and kept in memory is [`crate::case_docs`]. Which users may receive a case
//! is the `case_assignments` table (need to know), kept in step with the document's own
//! `assigned` set by every operation here.
//!
//! The operations run inside the caller's write transaction ([`crate::sql::Database::write`]);
//! those that store a case return it in a [`WithDocs`], to give to the vault once committed.

use std::collections::HashMap;
use std::sync::Arc;

use fieldcase_core::ActorId;
use fieldcase_core::CoreError;
use fieldcase_core::crypto::{DataKey, KeySlot};
use fieldcase_core::document::CaseDoc;
use fieldcase_core::ids::{CaseId, DeviceId, TaskId, UserId};
use fieldcase_core::model::{Author, Case, CaseStatus, NewCase, NewTask};
use fieldcase_core::sync::hub::{DeviceCaseState, HubStorage, WholeCase};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::case_docs::{
    DocCache, LoadedCase, WithDocs, checkout, heads_text, parse_heads, store, whole_snapshot,
};
use crate::error::ServerError;
use crate::keys::ServerKeys;
use crate::sql::{Sql, SqlError};
use crate::sql_params;

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

fn meta(sql: &mut dyn Sql, name: &str) -> Result<Option<Vec<u8>>, ServerError> {
    Ok(sql
        .query_opt(
            "SELECT value FROM server_meta WHERE name = ?1",
            sql_params![name],
        )?
        .map(|r| r.get(0))
        .transpose()?)
}

fn put_meta(sql: &mut dyn Sql, name: &str, value: &[u8]) -> Result<(), ServerError> {
    sql.execute(
        "INSERT INTO server_meta (name, value) VALUES (?1, ?2)",
        sql_params![name, value],
    )?;
    Ok(())
}

impl CaseVault {
    /// Loads the wrapped data key (creating it on first start) and the office identity, inside
    /// the caller's write transaction (instances starting at once on one PostgreSQL database
    /// are serialised by its write lock, so exactly one creates the key).
    pub fn load_or_create(
        sql: &mut dyn Sql,
        keys: &ServerKeys,
    ) -> Result<Arc<CaseVault>, ServerError> {
        let key = match meta(sql, "data_key")? {
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
                put_meta(sql, "data_key", &bytes)?;
                key
            }
        };
        let office = match meta(sql, "office_identity")? {
            Some(bytes) => serde_json::from_slice::<OfficeIdentity>(&bytes)
                .map_err(|_| ServerError::Internal("office identity is malformed"))?,
            None => {
                let id = OfficeIdentity {
                    user: UserId::new(),
                    device: DeviceId::new(),
                };
                let bytes = serde_json::to_vec(&id)
                    .map_err(|_| ServerError::Internal("encoding office identity"))?;
                put_meta(sql, "office_identity", &bytes)?;
                id
            }
        };
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

    /// Wakes whenever this process stores a case (a sync, an office edit), and on PostgreSQL
    /// whenever any instance committed one ([`crate::live_notify`]). A store of this process
    /// may not be committed yet when it wakes: readers re-check, and the live pages also
    /// re-check every few seconds.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// The sealing key (for other sealed server tables such as quarantine).
    pub(crate) fn key(&self) -> &DataKey {
        &self.key
    }

    /// Tells the live pages that a case was stored under `seq` (by this process, or by another
    /// instance, heard through PostgreSQL's notifications).
    pub fn changed(&self, seq: u64) {
        self.changes.send_replace(seq);
    }
}

fn user_is_active(sql: &mut dyn Sql, user: UserId) -> Result<bool, ServerError> {
    Ok(sql
        .query_opt(
            "SELECT active FROM users WHERE id = ?1",
            sql_params![&user.to_string()],
        )?
        .map(|r| r.get::<i64>(0))
        .transpose()?
        == Some(1))
}

/// Takes a case's document out for this transaction (see [`crate::case_docs`]).
pub(crate) fn load_doc(
    sql: &mut dyn Sql,
    vault: &CaseVault,
    case: CaseId,
) -> Result<LoadedCase, ServerError> {
    checkout(sql, vault, case)?.ok_or(ServerError::UnknownCase)
}

/// Sets a case's status at the office (closing starts its retention period: once it has passed,
/// devices purge the case).
pub fn set_status(
    sql: &mut dyn Sql,
    vault: &CaseVault,
    case: CaseId,
    status: CaseStatus,
    now: i64,
) -> Result<WithDocs<()>, ServerError> {
    let mut loaded = load_doc(sql, vault, case)?;
    loaded.doc.set_status(vault.office, status, at(now))?;
    store(sql, vault, &mut loaded, None, now)?;
    crate::store::audit(sql, now, &format!("case_status_{status}"), None, None)?;
    Ok(WithDocs::new((), [loaded]))
}

fn at(now: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(now).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Opens a case at the office, assigned to `new.assigned_workers` (who must be active users),
/// optionally with a first accompaniment task. It reaches their phones at their next sync.
pub fn create_case(
    sql: &mut dyn Sql,
    vault: &CaseVault,
    new: &NewCase,
    task: Option<&NewTask>,
    now: i64,
) -> Result<WithDocs<(CaseId, Option<TaskId>)>, ServerError> {
    for user in &new.assigned_workers {
        if !user_is_active(sql, *user)? {
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
    store(sql, vault, &mut loaded, None, now)?;
    for user in &new.assigned_workers {
        sql.execute(
            "INSERT INTO case_assignments (case_id, user_id) VALUES (?1, ?2)
             ON CONFLICT DO NOTHING",
            sql_params![&id.to_string(), &user.to_string()],
        )?;
    }
    Ok(WithDocs::new((id, task_id), [loaded]))
}

/// Assigns a worker to a case (or removes them). Assigning makes the whole case reach their phone
/// at its next sync.
pub fn set_assigned(
    sql: &mut dyn Sql,
    vault: &CaseVault,
    case: CaseId,
    user: UserId,
    assigned: bool,
    now: i64,
) -> Result<WithDocs<()>, ServerError> {
    if assigned && !user_is_active(sql, user)? {
        return Err(ServerError::UnknownUser);
    }
    let mut loaded = load_doc(sql, vault, case)?;
    loaded
        .doc
        .set_assigned(vault.office, user, assigned, at(now))?;
    store(sql, vault, &mut loaded, None, now)?;
    if assigned {
        sql.execute(
            "INSERT INTO case_assignments (case_id, user_id) VALUES (?1, ?2)
             ON CONFLICT DO NOTHING",
            sql_params![&case.to_string(), &user.to_string()],
        )?;
    } else {
        sql.execute(
            "DELETE FROM case_assignments WHERE case_id = ?1 AND user_id = ?2",
            sql_params![&case.to_string(), &user.to_string()],
        )?;
    }
    crate::store::audit(
        sql,
        now,
        if assigned {
            "case_assigned"
        } else {
            "case_unassigned"
        },
        Some(user.as_uuid()),
        None,
    )?;
    Ok(WithDocs::new((), [loaded]))
}

/// Plans an accompaniment task in a case at the office.
pub fn add_task(
    sql: &mut dyn Sql,
    vault: &CaseVault,
    case: CaseId,
    task: &NewTask,
    now: i64,
) -> Result<WithDocs<TaskId>, ServerError> {
    let mut loaded = load_doc(sql, vault, case)?;
    let id = loaded.doc.add_task(vault.office, task, at(now))?;
    store(sql, vault, &mut loaded, None, now)?;
    Ok(WithDocs::new(id, [loaded]))
}

/// A case as the office sees it, with the conflicts its fields hold. Only reads, so the
/// document goes back to memory at once (it is what the caller's snapshot holds, and the heads
/// check keeps a copy that a rolled-back write made different from being used).
pub fn read_case(
    sql: &mut dyn Sql,
    vault: &CaseVault,
    case: CaseId,
) -> Result<(Case, Vec<fieldcase_core::document::Conflict>), ServerError> {
    let mut loaded = load_doc(sql, vault, case)?;
    let read = (loaded.doc.case()?, loaded.doc.conflicts()?);
    // Only read: what it holds is what is stored.
    vault.keep([loaded]);
    Ok(read)
}

/// The change sequence number of a case (it grows with every stored change), if it exists.
pub fn case_seq(sql: &mut dyn Sql, case: CaseId) -> Result<Option<i64>, ServerError> {
    Ok(sql
        .query_opt(
            "SELECT seq FROM cases WHERE id = ?1",
            sql_params![&case.to_string()],
        )?
        .map(|r| r.get(0))
        .transpose()?)
}

/// Ids of every case, oldest first.
pub fn list_case_ids(sql: &mut dyn Sql) -> Result<Vec<CaseId>, ServerError> {
    let rows = sql.query_all("SELECT id FROM cases ORDER BY created_at, id", &[])?;
    Ok(rows
        .iter()
        .filter_map(|r| r.get::<String>(0).ok().and_then(|s| s.parse().ok()))
        .collect())
}

/// The sync hub's storage over one open transaction of the server database, of either backend
/// (it was `SqliteHub` before PostgreSQL). It holds the case documents the request works on;
/// once the transaction committed, give them back to the vault's memory with
/// [`SqlHub::into_loaded`] and [`CaseVault::keep`].
///
/// The hub's interface returns core's errors. A SQLite failure travels inside them as
/// `CoreError::Storage` (as before); any other database failure is kept here
/// ([`SqlHub::take_failure`]) and stands behind a generic `CoreError`, so that the caller can
/// still answer a PostgreSQL disk-full or lost connection with 507/503.
pub struct SqlHub<'a> {
    sql: &'a mut dyn Sql,
    vault: &'a CaseVault,
    now: i64,
    retention_secs: i64,
    held: HashMap<CaseId, LoadedCase>,
    failure: Option<SqlError>,
}

impl<'a> SqlHub<'a> {
    /// The hub's storage over `sql` (the transaction every read and write of one sync request
    /// goes through), sealing with `vault`; `now` in Unix seconds; closed cases stay on devices
    /// for `retention_secs`.
    pub fn new(
        sql: &'a mut dyn Sql,
        vault: &'a CaseVault,
        now: i64,
        retention_secs: i64,
    ) -> SqlHub<'a> {
        SqlHub {
            sql,
            vault,
            now,
            retention_secs,
            held: HashMap::new(),
            failure: None,
        }
    }

    /// The database failure behind the last error the hub returned, if it was one that core's
    /// error cannot carry (any PostgreSQL failure).
    pub fn take_failure(&mut self) -> Option<SqlError> {
        self.failure.take()
    }

    /// The underlying transaction, for the request's own statements after the hub ran.
    pub fn sql(&mut self) -> &mut dyn Sql {
        self.sql
    }

    /// The documents this request loaded, to keep in memory once its transaction committed.
    pub fn into_loaded(self) -> impl Iterator<Item = LoadedCase> {
        self.held.into_values()
    }

    fn fail(&mut self, e: SqlError) -> CoreError {
        match e {
            SqlError::Sqlite(e) => CoreError::Storage(e),
            other => {
                self.failure = Some(other);
                CoreError::Io(std::io::Error::other("database failure"))
            }
        }
    }

    fn fail_server(&mut self, e: ServerError) -> CoreError {
        match e {
            ServerError::Core(e) => e,
            ServerError::Sql(e) => self.fail(e),
            ServerError::Db(e) => CoreError::Storage(e),
            _ => CoreError::Document("case storage failed"),
        }
    }

    fn query_all(
        &mut self,
        text: &str,
        params: &[crate::sql::Param<'_>],
    ) -> fieldcase_core::Result<Vec<crate::sql::Row>> {
        let result = self.sql.query_all(text, params);
        result.map_err(|e| self.fail(e))
    }

    fn query_opt(
        &mut self,
        text: &str,
        params: &[crate::sql::Param<'_>],
    ) -> fieldcase_core::Result<Option<crate::sql::Row>> {
        let result = self.sql.query_opt(text, params);
        result.map_err(|e| self.fail(e))
    }

    fn execute(
        &mut self,
        text: &str,
        params: &[crate::sql::Param<'_>],
    ) -> fieldcase_core::Result<u64> {
        let result = self.sql.execute(text, params);
        result.map_err(|e| self.fail(e))
    }

    fn get<T: crate::sql::FromValue>(
        &mut self,
        row: &crate::sql::Row,
        index: usize,
    ) -> fieldcase_core::Result<T> {
        row.get(index).map_err(|e| self.fail(e))
    }
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl HubStorage for SqlHub<'_> {
    fn case_doc(&mut self, case: CaseId) -> fieldcase_core::Result<Option<&mut CaseDoc>> {
        if !self.held.contains_key(&case) {
            match checkout(self.sql, self.vault, case) {
                Ok(Some(loaded)) => {
                    self.held.insert(case, loaded);
                }
                Ok(None) => return Ok(None),
                Err(e) => return Err(self.fail_server(e)),
            }
        }
        Ok(self.held.get_mut(&case).map(|l| &mut l.doc))
    }

    fn store_case(&mut self, case: CaseId, received: Option<&[u8]>) -> fieldcase_core::Result<u64> {
        let loaded = self.held.get_mut(&case).ok_or(CoreError::CaseNotFound)?;
        let result = store(self.sql, self.vault, loaded, received, self.now);
        result.map_err(|e| self.fail_server(e))
    }

    fn whole_case(&mut self, case: CaseId) -> fieldcase_core::Result<Option<WholeCase>> {
        // A document this request holds may have changed since it was stored.
        if !self.held.contains_key(&case) {
            match whole_snapshot(self.sql, self.vault, case) {
                Ok(Some(whole)) => return Ok(Some(whole)),
                Ok(None) => {}
                Err(e) => return Err(self.fail_server(e)),
            }
        }
        if self.case_doc(case)?.is_none() {
            return Ok(None);
        }
        let loaded = self.held.get_mut(&case).ok_or(CoreError::CaseNotFound)?;
        Ok(Some((loaded.saved(), loaded.doc.heads())))
    }

    fn is_assigned(&mut self, user: UserId, case: CaseId) -> fieldcase_core::Result<bool> {
        Ok(self
            .query_opt(
                "SELECT 1 FROM case_assignments WHERE case_id = ?1 AND user_id = ?2",
                sql_params![&case.to_string(), &user.to_string()],
            )?
            .is_some())
    }

    fn assigned_changed_since(
        &mut self,
        user: UserId,
        cursor: u64,
        limit: usize,
    ) -> fieldcase_core::Result<Vec<(CaseId, u64)>> {
        let rows = self.query_all(
            "SELECT c.id, c.seq FROM cases c JOIN case_assignments a ON a.case_id = c.id
             WHERE a.user_id = ?1 AND c.seq > ?2 ORDER BY c.seq LIMIT ?3",
            sql_params![
                &user.to_string(),
                to_i64(cursor),
                to_i64(u64::try_from(limit).unwrap_or(u64::MAX))
            ],
        )?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let id: String = self.get(row, 0)?;
            let seq: i64 = self.get(row, 1)?;
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
        let Some(row) = self.query_opt(
            "SELECT confirmed, sent, sent_cursor FROM device_case_state WHERE device_id = ?1 AND case_id = ?2",
            sql_params![&device.to_string(), &case.to_string()],
        )?
        else {
            return Ok(DeviceCaseState::default());
        };
        let confirmed: String = self.get(&row, 0)?;
        let sent: Option<String> = self.get(&row, 1)?;
        let sent_cursor: Option<i64> = self.get(&row, 2)?;
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
            Some((heads, at)) => (Some(heads_text(heads)), Some(to_i64(*at))),
            None => (None, None),
        };
        self.execute(
            "INSERT INTO device_case_state (device_id, case_id, confirmed, sent, sent_cursor) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT(device_id, case_id) DO UPDATE SET confirmed = excluded.confirmed, sent = excluded.sent, sent_cursor = excluded.sent_cursor",
            sql_params![
                &device.to_string(),
                &case.to_string(),
                &heads_text(&state.confirmed),
                sent.as_ref(),
                sent_cursor
            ],
        )?;
        Ok(())
    }

    fn cases_to_purge(
        &mut self,
        device: DeviceId,
        user: UserId,
    ) -> fieldcase_core::Result<Vec<CaseId>> {
        let rows = self.query_all(
            "SELECT s.case_id FROM device_case_state s LEFT JOIN cases c ON c.id = s.case_id
             WHERE s.device_id = ?1 AND (
                 NOT EXISTS (SELECT 1 FROM case_assignments a
                             WHERE a.case_id = s.case_id AND a.user_id = ?2)
                 OR (c.closed_at IS NOT NULL AND c.closed_at + ?3 <= ?4))",
            sql_params![
                &device.to_string(),
                &user.to_string(),
                self.retention_secs,
                self.now
            ],
        )?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let id: String = self.get(row, 0)?;
            out.push(id.parse().map_err(|_| CoreError::Corrupt {
                what: "device_case_state",
            })?);
        }
        Ok(out)
    }

    fn record_purge(&mut self, device: DeviceId, case: CaseId) -> fieldcase_core::Result<()> {
        let deleted = self.execute(
            "DELETE FROM device_case_state WHERE device_id = ?1 AND case_id = ?2",
            sql_params![&device.to_string(), &case.to_string()],
        )?;
        if deleted > 0 {
            self.execute(
                "INSERT INTO purge_receipts (device_id, case_id, at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (device_id, case_id) DO UPDATE SET at = excluded.at",
                sql_params![&device.to_string(), &case.to_string(), self.now],
            )?;
            let result = crate::store::audit(
                self.sql,
                self.now,
                "case_purged",
                None,
                Some(device.as_uuid()),
            );
            result.map_err(|e| self.fail(e))?;
        }
        Ok(())
    }
}
