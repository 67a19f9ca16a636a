//! The storage the core's sync hub runs on at the office ([`SqlHub`]): cases, their documents
//! and per-device sync state in the caller's write transaction, over either database backend.

use std::collections::HashMap;

use fieldcase_core::CoreError;
use fieldcase_core::document::CaseDoc;
use fieldcase_core::ids::{CaseId, DeviceId, UserId};
use fieldcase_core::sync::OfficeEpoch;
use fieldcase_core::sync::hub::{DeviceCaseState, HubStorage, WholeCase};
use time::OffsetDateTime;

use crate::error::{ServerError, SqlError};
use crate::office::audit::{self, action};
use crate::sql_params;
use crate::storage::case_docs::{
    CaseVault, LoadedCase, checkout_for_sync, heads_text, parse_heads, store, whole_snapshot,
};
use crate::storage::sql::Sql;

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
    /// Stores of cases that exist, put off to [`SqlHub::store_deferred`] (with what a device
    /// sent that makes up the whole document), when the hub defers them.
    deferred: Option<Vec<(CaseId, Option<Vec<u8>>)>>,
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
            deferred: None,
        }
    }

    /// The hub, its stores of cases that exist put off to [`SqlHub::store_deferred`], which the
    /// sync's transaction calls last, just before it commits. Storing takes the case's sequence
    /// number, and with it the commit order every writer shares (on PostgreSQL); deferred,
    /// the order is held for the stores and the commit only, not for the rest of the sync
    /// (the device's states, what it is owed, its lease). A new case (one a device gives back
    /// to a restored office) is stored at once: the rows that follow it need it.
    pub fn deferring_stores(mut self) -> Self {
        self.deferred = Some(Vec::new());
        self
    }

    /// Makes the stores put off so far, in the order they were asked for; later stores are made
    /// at once.
    pub fn store_deferred(&mut self) -> Result<(), ServerError> {
        for (case, received) in self.deferred.take().unwrap_or_default() {
            let loaded = self
                .held
                .get_mut(&case)
                .ok_or(ServerError::Core(CoreError::CaseNotFound))?;
            store(self.sql, self.vault, loaded, received.as_deref(), self.now)?;
        }
        Ok(())
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
        params: &[crate::storage::sql::Param<'_>],
    ) -> fieldcase_core::Result<Vec<crate::storage::sql::Row>> {
        let result = self.sql.query_all(text, params);
        result.map_err(|e| self.fail(e))
    }

    fn query_opt(
        &mut self,
        text: &str,
        params: &[crate::storage::sql::Param<'_>],
    ) -> fieldcase_core::Result<Option<crate::storage::sql::Row>> {
        let result = self.sql.query_opt(text, params);
        result.map_err(|e| self.fail(e))
    }

    fn execute(
        &mut self,
        text: &str,
        params: &[crate::storage::sql::Param<'_>],
    ) -> fieldcase_core::Result<u64> {
        let result = self.sql.execute(text, params);
        result.map_err(|e| self.fail(e))
    }

    /// Appends an audit entry about `device` in the request's transaction.
    fn audit(
        &mut self,
        action: &str,
        device: DeviceId,
        detail: Option<&str>,
    ) -> fieldcase_core::Result<()> {
        let result = audit::record_detail(
            self.sql,
            self.now,
            action,
            None,
            Some(device.as_uuid()),
            detail,
        );
        result.map_err(|e| self.fail(e))
    }

    fn get<T: crate::storage::sql::FromValue>(
        &mut self,
        row: &crate::storage::sql::Row,
        index: usize,
    ) -> fieldcase_core::Result<T> {
        row.get(index).map_err(|e| self.fail(e))
    }
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl HubStorage for SqlHub<'_> {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(self.now).unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }

    fn case_doc(&mut self, case: CaseId) -> fieldcase_core::Result<Option<&mut CaseDoc>> {
        if !self.held.contains_key(&case) {
            match checkout_for_sync(self.sql, self.vault, case) {
                Ok(Some(loaded)) => {
                    self.held.insert(case, loaded);
                }
                Ok(None) => return Ok(None),
                Err(e) => return Err(self.fail_server(e)),
            }
        }
        Ok(self.held.get_mut(&case).map(|l| &mut l.doc))
    }

    fn store_case(&mut self, case: CaseId, received: Option<&[u8]>) -> fieldcase_core::Result<()> {
        let loaded = self.held.get_mut(&case).ok_or(CoreError::CaseNotFound)?;
        if let Some(deferred) = self.deferred.as_mut()
            && loaded.exists()
        {
            match deferred.iter_mut().find(|(c, _)| *c == case) {
                // Stored twice in one request: the document as it is then, encoded afresh.
                Some(entry) => entry.1 = None,
                None => deferred.push((case, received.map(<[u8]>::to_vec))),
            }
            return Ok(());
        }
        let result = store(self.sql, self.vault, loaded, received, self.now);
        result.map(|_| ()).map_err(|e| self.fail_server(e))
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

    fn is_erased(&mut self, case: CaseId) -> fieldcase_core::Result<bool> {
        Ok(self
            .query_opt(
                "SELECT 1 FROM cases WHERE id = ?1 AND erased_at IS NOT NULL",
                sql_params![&case.to_string()],
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

    fn assigned_changed_bytes(&mut self, user: UserId, cursor: u64) -> fieldcase_core::Result<u64> {
        // The sealed snapshot and the sealed chunks stored since: a few bytes of sealing more
        // than what a device is sent of them, an estimate for its progress bar. SQLite reads a
        // blob's length from its record header, PostgreSQL from its TOAST pointer: no document
        // is read.
        let mut total = 0i64;
        for text in [
            "SELECT CAST(coalesce(sum(length(c.doc)), 0) AS BIGINT)
             FROM cases c JOIN case_assignments a ON a.case_id = c.id
             WHERE a.user_id = ?1 AND c.seq > ?2",
            "SELECT CAST(coalesce(sum(length(k.chunk)), 0) AS BIGINT)
             FROM case_chunks k JOIN cases c ON c.id = k.case_id
             JOIN case_assignments a ON a.case_id = c.id
             WHERE a.user_id = ?1 AND c.seq > ?2",
        ] {
            let row = self.query_opt(text, sql_params![&user.to_string(), to_i64(cursor)])?;
            if let Some(row) = row {
                let bytes: i64 = self.get(&row, 0)?;
                total = total.saturating_add(bytes);
            }
        }
        Ok(u64::try_from(total).unwrap_or(0))
    }

    fn device_state(
        &mut self,
        device: DeviceId,
        case: CaseId,
    ) -> fieldcase_core::Result<DeviceCaseState> {
        let Some(row) = self.query_opt(
            "SELECT confirmed, sent, sent_cursor, purge_ordered_at FROM device_case_state
             WHERE device_id = ?1 AND case_id = ?2",
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
            purge_ordered_at: self.get(&row, 3)?,
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
            "INSERT INTO device_case_state (device_id, case_id, confirmed, sent, sent_cursor, purge_ordered_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT(device_id, case_id) DO UPDATE SET confirmed = excluded.confirmed,
                 sent = excluded.sent, sent_cursor = excluded.sent_cursor,
                 purge_ordered_at = excluded.purge_ordered_at",
            sql_params![
                &device.to_string(),
                &case.to_string(),
                &heads_text(&state.confirmed),
                sent.as_ref(),
                sent_cursor,
                state.purge_ordered_at
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
            self.audit("case_purged", device, None)?;
        }
        Ok(())
    }

    fn office_epoch(&self) -> OfficeEpoch {
        self.vault.epoch()
    }

    fn attestation_key(&self) -> &[u8; 32] {
        self.vault.attestation_key()
    }

    fn forget_device(&mut self, device: DeviceId) -> fieldcase_core::Result<()> {
        let id = device.to_string();
        let epoch = self.vault.epoch();
        let row = self.query_opt(
            "SELECT office_epoch FROM devices WHERE id = ?1",
            sql_params![&id],
        )?;
        let started: Option<Vec<u8>> = match row {
            Some(row) => self.get(&row, 0)?,
            None => None,
        };
        if started.as_deref() == Some(epoch.as_slice()) {
            // It started over in this epoch already: this request was delayed from before.
            return Ok(());
        }
        self.execute(
            "DELETE FROM device_case_state WHERE device_id = ?1",
            sql_params![&id],
        )?;
        self.execute(
            "UPDATE devices SET office_epoch = ?2 WHERE id = ?1",
            sql_params![&id, &epoch.to_vec()],
        )?;
        self.audit(action::DEVICE_STARTED_OVER, device, None)
    }

    fn recover_case(&mut self, case: CaseId) -> fieldcase_core::Result<()> {
        let doc = CaseDoc::empty(case, &self.vault.actor);
        self.held.insert(case, LoadedCase::new(doc));
        Ok(())
    }

    fn case_recovered(&mut self, case: CaseId, device: DeviceId) -> fieldcase_core::Result<()> {
        // A case the office had no record of left came back on the default team (the column's
        // default), where the people who manage cases see it and may move it.
        let id = case.to_string();
        // The assignments follow the document again: it holds the office's own decisions up to
        // what it attested, and a phone cannot change who is assigned. Only active users.
        let loaded = self.held.get_mut(&case).ok_or(CoreError::CaseNotFound)?;
        let assigned = loaded.doc.case()?.assigned_workers;
        self.execute(
            "DELETE FROM case_assignments WHERE case_id = ?1",
            sql_params![&id],
        )?;
        for user in assigned {
            self.execute(
                "INSERT INTO case_assignments (case_id, user_id)
                 SELECT ?1, id FROM users WHERE id = ?2 AND active = 1
                 ON CONFLICT DO NOTHING",
                sql_params![&id, &user.to_string()],
            )?;
        }
        self.audit(action::CASE_RECOVERED, device, Some(&id))
    }
}
