//! The office's case-sealing key (a random data key wrapped with age to the identity in
//! `server.key`, stored in `server_meta`), the identity office edits are made as, the office's
//! epoch and the key sync attests heads with, the signal live pages wait on, and the memory of
//! decrypted documents.

use std::sync::Arc;

use fieldcase_core::ActorId;
use fieldcase_core::crypto::{DataKey, KeySlot};
use fieldcase_core::ids::{DeviceId, UserId};
use fieldcase_core::model::Author;
use fieldcase_core::sync::OfficeEpoch;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::cache::{DocCache, LoadedCase};
use crate::error::ServerError;
use crate::sql_params;
use crate::storage::keys::ServerKeys;
use crate::storage::sql::Sql;

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
    /// Decrypted documents of recently used cases (see [`crate::storage::case_docs`]).
    pub(crate) docs: DocCache,
    /// The office's epoch ([`fieldcase_core::sync::epoch`]), read at start: only a restore,
    /// made while no server runs on the data, changes it.
    epoch: OfficeEpoch,
    /// The key sync attests the heads it sends with, derived from `server.key`.
    attestation_key: Zeroizing<[u8; 32]>,
    /// The key attachment contents are found by (a keyed hash of their SHA-256), derived from
    /// `server.key`.
    content_key: Zeroizing<[u8; 32]>,
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

/// The `server_meta` row holding the office's epoch.
const EPOCH_ROW: &str = "office_epoch";

/// What the sync attestation key is derived for from `server.key`.
const ATTESTATION_PURPOSE: &str = "sync heads attestation";

/// What the attachment content key is derived for from `server.key`.
const CONTENT_PURPOSE: &str = "attachment content ids";

/// Draws a new office epoch and records it in place of the current one: what a restore does, so
/// that every phone that synced with the office before starts over with it and gives back what
/// the backup lacks.
pub fn new_epoch(sql: &mut dyn Sql) -> Result<OfficeEpoch, ServerError> {
    let epoch: OfficeEpoch = rand::random();
    sql.execute(
        "DELETE FROM server_meta WHERE name = ?1",
        sql_params![EPOCH_ROW],
    )?;
    put_meta(sql, EPOCH_ROW, &epoch)?;
    Ok(epoch)
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
        let epoch = match meta(sql, EPOCH_ROW)? {
            Some(bytes) => OfficeEpoch::try_from(bytes.as_slice())
                .map_err(|_| ServerError::Internal("office epoch is malformed"))?,
            None => new_epoch(sql)?,
        };
        Ok(Arc::new(CaseVault {
            key,
            epoch,
            attestation_key: keys.derive(ATTESTATION_PURPOSE)?,
            content_key: keys.derive(CONTENT_PURPOSE)?,
            office: Author {
                user: office.user,
                device: office.device,
            },
            actor: ActorId::random(),
            changes: tokio::sync::watch::Sender::new(0),
            docs: DocCache::default(),
        }))
    }

    /// The key attachment contents are found by.
    pub(crate) fn content_key(&self) -> &[u8; 32] {
        &self.content_key
    }

    /// Wakes whenever this process stores a case (a sync, an office edit), and on PostgreSQL
    /// whenever any instance committed one (`storage::live_notify`). A store of this process
    /// may not be committed yet when it wakes: readers re-check, and the live pages also
    /// re-check every few seconds.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// The sealing key (for other sealed server tables such as quarantine).
    pub(crate) fn key(&self) -> &DataKey {
        &self.key
    }

    /// The office's epoch, as read when this vault was loaded.
    pub fn epoch(&self) -> OfficeEpoch {
        self.epoch
    }

    /// The key sync attests the heads it sends with.
    pub(crate) fn attestation_key(&self) -> &[u8; 32] {
        &self.attestation_key
    }

    /// Tells the live pages that a case was stored under `seq` (by this process, or by another
    /// instance, heard through PostgreSQL's notifications).
    pub fn changed(&self, seq: u64) {
        self.changes.send_replace(seq);
    }
}

/// A result together with the case documents a transaction stored (or read): give them to the
/// vault with [`WithDocs::keep`] once the transaction committed, so that memory never runs
/// ahead of the database. Dropping it only costs a reload.
#[must_use = "give the documents to the vault once the transaction committed"]
pub struct WithDocs<T> {
    value: T,
    docs: Vec<LoadedCase>,
}

impl<T> WithDocs<T> {
    /// `value` with the documents `docs`.
    pub fn new(value: T, docs: impl IntoIterator<Item = LoadedCase>) -> WithDocs<T> {
        WithDocs {
            value,
            docs: docs.into_iter().collect(),
        }
    }

    /// The value, before the documents are given back.
    pub fn value(&self) -> &T {
        &self.value
    }

    /// The same documents with `f` of the value.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> WithDocs<U> {
        WithDocs {
            value: f(self.value),
            docs: self.docs,
        }
    }

    /// Gives the documents to `vault`'s memory (call after the commit) and returns the value.
    pub fn keep(self, vault: &CaseVault) -> T {
        vault.keep(self.docs);
        self.value
    }
}

impl CaseVault {
    /// Gives back documents taken out with `checkout` once what they hold is committed (or
    /// when they were only read), so that the next request finds them in memory.
    pub fn keep(&self, loaded: impl IntoIterator<Item = LoadedCase>) {
        for case in loaded {
            self.docs.keep(case);
        }
    }

    /// Number of case documents held decrypted in memory.
    pub fn docs_in_memory(&self) -> usize {
        self.docs.len()
    }
}
