//! The device's encrypted store: one SQLite file (WAL) beside a small key file.
//!
//! - Every row that describes a person or a case is sealed with the data key
//!   ([`crate::crypto::seal`]), bound to its table and row; ids are random and stay in the clear.
//! - The data key is wrapped with age in the key file (`keyfile`), to the platform keystore's
//!   key and/or a passphrase. `unlock` unwraps it into memory; `lock` forgets it; `wipe` shreds the
//!   key file, asks the keystore to destroy its key, and deletes every file.
//! - Each edit is one SQLite transaction holding the change, the refreshed sealed index row and the
//!   outbox entry; the call returns only after the commit (synchronous = FULL), so a returned edit
//!   survives a crash, and a crash mid-write leaves the last committed state.
//! - Lists (today's tasks, cases) are read from the sealed index, never by loading documents.

mod api;
mod cache;
mod keyfile;
mod lease;
mod records;
pub mod schema;
mod sync;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use automerge::ActorId;
use rusqlite::{Connection, OpenFlags};
use serde::{Deserialize, Serialize};

pub use api::{PendingChange, TimelineEntry};
pub use sync::{AppliedSync, PreparedSync};

use crate::clock::{Clock, SystemClock};
use crate::crypto::{DataKey, KeyProvider, KeySlot, SlotKind};
use crate::error::{CoreError, Result};
use crate::ids::{DeviceId, UserId};
use crate::model::Author;
use keyfile::KeyFile;

/// Name of the database file inside the store's folder.
pub const DB_FILE: &str = "fieldcase.db";
/// Name of the key file inside the store's folder.
pub const KEY_FILE: &str = "fieldcase.keys";
/// How many case documents stay loaded in memory while unlocked.
const DOC_CACHE: usize = 64;

/// How a store is tuned. The defaults suit a phone.
#[derive(Clone)]
pub struct StoreOptions {
    /// The clock for timestamps (tests replace it).
    pub clock: Arc<dyn Clock>,
    /// scrypt work factor (log2 N) for new passphrase slots.
    pub scrypt_work_factor: u8,
    /// Compact a case document into one snapshot after this many separate changes.
    pub compact_after: usize,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            clock: Arc::new(SystemClock),
            scrypt_work_factor: crate::crypto::DEFAULT_SCRYPT_WORK_FACTOR,
            compact_after: 8,
        }
    }
}

impl std::fmt::Debug for StoreOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreOptions")
            .field("scrypt_work_factor", &self.scrypt_work_factor)
            .field("compact_after", &self.compact_after)
            .finish()
    }
}

/// The secrets a new store's data key is wrapped to: at least one of them.
pub struct KeySetup<'a> {
    /// The platform keystore's key.
    pub keystore: Option<&'a dyn KeyProvider>,
    /// A passphrase the worker types.
    pub passphrase: Option<&'a str>,
}

/// Who this store's edits belong to: the enrolled user and device.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoreIdentity {
    /// The worker.
    pub user: UserId,
    /// This phone.
    pub device: DeviceId,
    /// For a store enrolled with an office: the server's Ed25519 public key, which signs the
    /// offline lease. `Some` makes case data open only under a valid lease.
    #[serde(default)]
    pub lease_key: Option<[u8; 32]>,
}

#[derive(Serialize, Deserialize)]
struct SealedIdentity {
    user: UserId,
    device: DeviceId,
    actor: String,
    /// For an enrolled store: the office server's Ed25519 public key (hex) that signs leases.
    #[serde(default)]
    lease_key: Option<String>,
}

/// Gives the store a new automerge actor for every later edit, recorded in its sealed identity.
/// A restored office may have lost changes this device made, and the device may then receive a
/// case again without them: an edit under the old actor would reuse their sequence numbers for
/// other changes, which automerge refuses wherever both meet. Under a new actor no later change
/// can collide with one made before.
pub(super) fn rotate_actor(
    tx: &rusqlite::Transaction<'_>,
    sealer: &records::Sealer<'_>,
) -> Result<ActorId> {
    let mut identity: SealedIdentity = sealer.meta(tx, "identity")?.ok_or(CoreError::Corrupt {
        what: "store identity",
    })?;
    let actor = ActorId::random();
    identity.actor = actor.to_hex_string();
    sealer.put_meta(tx, "identity", &identity)?;
    Ok(actor)
}

/// What a wipe removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WipeReport {
    /// Key slots destroyed with the key file.
    pub key_slots_destroyed: usize,
    /// Whether the keystore was asked to destroy its key and did.
    pub keystore_key_destroyed: bool,
    /// Names of the files deleted (no paths, nothing personal).
    pub files_removed: Vec<String>,
}

/// State present only while unlocked.
struct Unlocked {
    key: DataKey,
    author: Author,
    actor: ActorId,
    docs: cache::DocCache,
    /// For an enrolled store: the lease that must be valid for case data to open.
    lease: Option<lease::LeaseGate>,
}

struct Inner {
    conn: Connection,
    keys: KeyFile,
    unlocked: Option<Unlocked>,
}

/// An open device store. Cheap to share (`Arc<Store>`); methods take `&self`.
pub struct Store {
    dir: PathBuf,
    options: StoreOptions,
    inner: Mutex<Option<Inner>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Store(..)")
    }
}

fn open_connection(path: &Path, create: bool) -> Result<Connection> {
    let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    if create {
        flags |= OpenFlags::SQLITE_OPEN_CREATE;
    }
    let conn = Connection::open_with_flags(path, flags)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "secure_delete", "ON")?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    Ok(conn)
}

impl Store {
    /// Creates a new store in `dir` (created if missing) for `identity`, with a fresh data key
    /// wrapped to the given secrets, and returns it unlocked.
    pub fn create(
        dir: &Path,
        identity: &StoreIdentity,
        setup: KeySetup<'_>,
        options: StoreOptions,
    ) -> Result<Self> {
        Self::create_at_version(dir, identity, setup, options, schema::SCHEMA_VERSION)
    }

    /// Checks, before anything is sent anywhere, that [`Store::create`] could make a store in
    /// `dir` with `setup`: no store there yet, at least one key, a keystore that hands out its
    /// key, a passphrase that is not empty. Enrollment runs it first, so that a refusal here
    /// never uses up an enrollment code or leaves a device at the office with no phone behind it.
    pub fn check_new(dir: &Path, setup: &KeySetup<'_>) -> Result<()> {
        if dir.join(DB_FILE).exists() || dir.join(KEY_FILE).exists() {
            return Err(CoreError::AlreadyExists);
        }
        if setup.keystore.is_none() && setup.passphrase.is_none() {
            return Err(CoreError::KeyProvider(
                "no keystore key and no passphrase given".into(),
            ));
        }
        if let Some(provider) = setup.keystore {
            drop(provider.root_key().map_err(CoreError::KeyProvider)?);
        }
        if setup.passphrase.is_some_and(str::is_empty) {
            return Err(crate::model::ValidationError::EmptyField {
                field: "passphrase",
            }
            .into());
        }
        Ok(())
    }

    #[doc(hidden)]
    /// Creates a store whose database stops at schema `version`: for migration fixtures only.
    pub fn create_at_version(
        dir: &Path,
        identity: &StoreIdentity,
        setup: KeySetup<'_>,
        options: StoreOptions,
        version: i64,
    ) -> Result<Self> {
        Self::check_new(dir, &setup)?;
        std::fs::create_dir_all(dir)?;
        let (db_path, key_path) = (dir.join(DB_FILE), dir.join(KEY_FILE));
        let key = DataKey::generate();
        let mut slots = Vec::new();
        if let Some(provider) = setup.keystore {
            let root = provider.root_key().map_err(CoreError::KeyProvider)?;
            slots.push(KeySlot::for_keystore(&key, &root)?);
        }
        if let Some(passphrase) = setup.passphrase {
            slots.push(KeySlot::for_passphrase(
                &key,
                passphrase,
                options.scrypt_work_factor,
            )?);
        }
        let keys = KeyFile::new(uuid::Uuid::new_v4(), slots);
        let mut conn = open_connection(&db_path, true)?;
        schema::migrate_to(&mut conn, version)?;
        let actor = ActorId::random();
        let sealed = serde_json::to_vec(&SealedIdentity {
            user: identity.user,
            device: identity.device,
            actor: actor.to_hex_string(),
            lease_key: identity.lease_key.map(hex::encode),
        })
        .map_err(|_| CoreError::Crypto)?;
        let sealed = crate::crypto::seal(
            &key,
            &records::aad(&keys.store_id, "meta", b"identity", 0),
            &sealed,
        )?;
        conn.execute(
            "INSERT INTO meta (name, value) VALUES ('identity', ?1)",
            [sealed],
        )?;
        keys.write(&key_path)?;
        let author = Author {
            user: identity.user,
            device: identity.device,
        };
        let lease = match identity.lease_key {
            Some(k) => Some(lease::LeaseGate::empty(
                ed25519_dalek::VerifyingKey::from_bytes(&k)
                    .map_err(|_| CoreError::KeyProvider("the server key is not valid".into()))?,
                *identity.device.as_uuid(),
                options.clock.elapsed(),
            )),
            None => None,
        };
        let unlocked = Unlocked {
            key,
            author,
            actor,
            docs: cache::DocCache::new(DOC_CACHE),
            lease,
        };
        Ok(Self {
            dir: dir.to_owned(),
            options,
            inner: Mutex::new(Some(Inner {
                conn,
                keys,
                unlocked: Some(unlocked),
            })),
        })
    }

    /// Opens an existing store, locked. Migrates the database to the current schema.
    pub fn open(dir: &Path, options: StoreOptions) -> Result<Self> {
        let (db_path, key_path) = (dir.join(DB_FILE), dir.join(KEY_FILE));
        if !db_path.exists() {
            return Err(CoreError::NoStore);
        }
        let keys = KeyFile::read(&key_path)?;
        let mut conn = open_connection(&db_path, false)?;
        schema::migrate(&mut conn)?;
        Ok(Self {
            dir: dir.to_owned(),
            options,
            inner: Mutex::new(Some(Inner {
                conn,
                keys,
                unlocked: None,
            })),
        })
    }

    fn guard(&self) -> Result<MutexGuard<'_, Option<Inner>>> {
        self.inner.lock().map_err(|_| CoreError::Locked)
    }

    fn finish_unlock(inner: &mut Inner, key: DataKey, elapsed: std::time::Duration) -> Result<()> {
        let sealed: Vec<u8> = inner
            .conn
            .query_row("SELECT value FROM meta WHERE name = 'identity'", [], |r| {
                r.get(0)
            })
            .map_err(|_| CoreError::Corrupt {
                what: "store identity",
            })?;
        let aad = records::aad(&inner.keys.store_id, "meta", b"identity", 0);
        // A data key from another store's key file fails here, not later.
        let plain = crate::crypto::open(&key, &aad, &sealed, "store identity")
            .map_err(|_| CoreError::WrongKey)?;
        let id: SealedIdentity =
            serde_json::from_slice(&plain).map_err(|_| CoreError::Corrupt {
                what: "store identity",
            })?;
        let actor = ActorId::from(hex::decode(&id.actor).map_err(|_| CoreError::Corrupt {
            what: "store identity",
        })?);
        let lease = match &id.lease_key {
            Some(hex_key) => {
                let bad = || CoreError::Corrupt {
                    what: "store identity",
                };
                let bytes = crate::protocol::decode_hex_array::<32>(hex_key).map_err(|_| bad())?;
                let server = ed25519_dalek::VerifyingKey::from_bytes(&bytes).map_err(|_| bad())?;
                let sealer = records::Sealer {
                    key: &key,
                    store_id: &inner.keys.store_id,
                };
                Some(lease::LeaseGate::load(
                    &inner.conn,
                    &sealer,
                    server,
                    *id.device.as_uuid(),
                    elapsed,
                )?)
            }
            None => None,
        };
        inner.unlocked = Some(Unlocked {
            key,
            author: Author {
                user: id.user,
                device: id.device,
            },
            actor,
            docs: cache::DocCache::new(DOC_CACHE),
            lease,
        });
        Ok(())
    }

    /// Tries every key slot of `kind` with `open`; the first that opens unlocks the store.
    fn unlock_with(
        &self,
        kind: SlotKind,
        open: impl Fn(&KeySlot) -> Result<DataKey>,
    ) -> Result<()> {
        let mut guard = self.guard()?;
        let inner = guard.as_mut().ok_or(CoreError::NoStore)?;
        let mut last = CoreError::WrongKey;
        for slot in inner.keys.slots.iter().filter(|s| s.kind == kind) {
            match open(slot) {
                Ok(key) => return Self::finish_unlock(inner, key, self.options.clock.elapsed()),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// Unlocks with the platform keystore's key.
    pub fn unlock_with_keystore(&self, provider: &dyn KeyProvider) -> Result<()> {
        let root = provider.root_key().map_err(CoreError::KeyProvider)?;
        self.unlock_with(SlotKind::Keystore, |slot| slot.open_with_keystore(&root))
    }

    /// Unlocks with the worker's passphrase.
    pub fn unlock_with_passphrase(&self, passphrase: &str) -> Result<()> {
        self.unlock_with(SlotKind::Passphrase, |slot| {
            slot.open_with_passphrase(passphrase)
        })
    }

    /// Forgets the data key and every decrypted document: nothing can be read until unlocked.
    pub fn lock(&self) -> Result<()> {
        if let Some(inner) = self.guard()?.as_mut() {
            inner.unlocked = None;
        }
        Ok(())
    }

    /// Whether the store is unlocked.
    pub fn is_unlocked(&self) -> bool {
        matches!(
            self.guard().as_deref(),
            Ok(Some(Inner {
                unlocked: Some(_),
                ..
            }))
        )
    }

    /// Destroys the store: shreds the key file (crypto-shredding every copy of the database),
    /// asks the keystore to destroy its key, and deletes the database and its WAL. Works locked or
    /// unlocked and needs no network. After it, every call fails with [`CoreError::NoStore`].
    pub fn wipe(&self, keystore: Option<&dyn KeyProvider>) -> Result<WipeReport> {
        let mut guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let slots = guard.as_ref().map(|i| i.keys.slots.len()).unwrap_or(0);
        // Dropping the connection closes the database before its files go.
        *guard = None;
        let mut files_removed = Vec::new();
        if keyfile::shred(&self.dir.join(KEY_FILE))? {
            files_removed.push(KEY_FILE.to_owned());
        }
        let keystore_key_destroyed = match keystore {
            Some(p) => p.destroy().is_ok(),
            None => false,
        };
        for name in [
            DB_FILE.to_owned(),
            format!("{DB_FILE}-wal"),
            format!("{DB_FILE}-shm"),
            format!("{KEY_FILE}.tmp"),
        ] {
            match std::fs::remove_file(self.dir.join(&name)) {
                Ok(()) => files_removed.push(name),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
        }
        keyfile::sync_dir(&self.dir.join(DB_FILE))?;
        Ok(WipeReport {
            key_slots_destroyed: slots,
            keystore_key_destroyed,
            files_removed,
        })
    }

    /// The folder the store lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}
