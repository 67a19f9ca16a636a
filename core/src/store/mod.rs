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
mod attachments;
mod attempts;
mod cache;
mod duress;
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
pub use attachments::{Attachment, AttachmentState, StorageReport, Transfer};
pub use sync::{AppliedSync, PreparedSync};

use crate::clock::{Clock, SystemClock};
use crate::crypto::{DataKey, KeyProvider, KeySlot, SlotKind};
use crate::error::{CoreError, Result};
use crate::ids::{DeviceId, UserId};
use crate::model::Author;
use keyfile::KeyFile;
pub(crate) use keyfile::sync_dir;

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
    /// Free bytes the volume must keep for notes and sync: below it (counting what an attachment
    /// would take), new attachments are refused.
    pub attachment_free_floor: u64,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            clock: Arc::new(SystemClock),
            scrypt_work_factor: crate::crypto::DEFAULT_SCRYPT_WORK_FACTOR,
            compact_after: 8,
            attachment_free_floor: 200 * 1024 * 1024,
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

/// The secrets a new store's data key is wrapped to: at least one of them. Given both, the
/// store opens only with both together (one [`SlotKind::KeystorePassphrase`] slot); a
/// passphrase alone is for stores made without a keystore (see
/// `docs/adr/0006-passphrase-and-keystore.md`).
pub struct KeySetup<'a> {
    /// The platform keystore's key.
    pub keystore: Option<&'a dyn KeyProvider>,
    /// A passphrase the worker types (at least [`crate::crypto::MIN_PASSPHRASE_CHARS`]
    /// characters and hard enough to guess: [`crate::crypto::check_passphrase_strength`]).
    pub passphrase: Option<&'a str>,
}

/// What a store opens with, read from its key file while locked, so that an app asks for a
/// passphrase only when one is needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnlockNeeds {
    /// The platform keystore's key is needed.
    pub keystore: bool,
    /// The worker's passphrase is needed.
    pub passphrase: bool,
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
    /// For a store with a passphrase pair: which slot of the key file holds the data key.
    real_slot: Option<usize>,
}

struct Inner {
    conn: Connection,
    keys: KeyFile,
    unlocked: Option<Unlocked>,
    /// The clock's elapsed reading at the last wrong passphrase in this run of the app.
    last_failure: Option<std::time::Duration>,
}

/// An open device store. Cheap to share (`Arc<Store>`); methods take `&self`.
pub struct Store {
    dir: PathBuf,
    options: StoreOptions,
    inner: Mutex<Option<Inner>>,
    /// Set by [`Store::close`].
    closed: std::sync::atomic::AtomicBool,
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
            drop(provider.root_key()?);
        }
        if setup.passphrase.is_some_and(str::is_empty) {
            return Err(crate::model::ValidationError::EmptyField {
                field: "passphrase",
            }
            .into());
        }
        if let Some(passphrase) = setup.passphrase {
            crate::crypto::check_passphrase_strength(passphrase, &[])?;
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
        let key = DataKey::generate();
        let root = setup.keystore.map(|p| p.root_key()).transpose()?;
        let store_id = uuid::Uuid::new_v4();
        let (slots, real_slot) = match (setup.passphrase, &root) {
            (Some(passphrase), root) => Self::pair(
                &key,
                root.as_deref(),
                passphrase,
                options.scrypt_work_factor,
                &store_id,
            )?,
            (None, Some(root)) => (vec![KeySlot::for_keystore(&key, root)?], None),
            (None, None) => return Err(CoreError::KeyProvider("no key given".into())),
        };
        Self::build(
            dir,
            identity,
            key,
            KeyFile::new(store_id, slots),
            real_slot,
            options,
            version,
        )
    }

    /// The passphrase slots of a new store, in random order: the data key and a filler (see
    /// `duress`), with the index of the one holding the data key.
    fn pair(
        key: &DataKey,
        root: Option<&[u8; 32]>,
        passphrase: &str,
        work_factor: u8,
        store_id: &uuid::Uuid,
    ) -> Result<(Vec<KeySlot>, Option<usize>)> {
        let mut real = KeySlot::for_pair(key.expose(), false, root, passphrase, work_factor)?;
        let mut filler = KeySlot::filler(root, work_factor)?;
        real.kit = Some(duress::empty_blob(store_id)?);
        filler.kit = Some(duress::empty_blob(store_id)?);
        Ok(if rand::random::<bool>() {
            (vec![real, filler], Some(0))
        } else {
            (vec![filler, real], Some(1))
        })
    }

    /// Writes a new store in `dir` with data key `key` and key file `keys` (`real_slot`: the
    /// passphrase slot holding the data key, if the store has a pair) and returns it unlocked.
    fn build(
        dir: &Path,
        identity: &StoreIdentity,
        key: DataKey,
        keys: KeyFile,
        real_slot: Option<usize>,
        options: StoreOptions,
        version: i64,
    ) -> Result<Self> {
        std::fs::create_dir_all(dir)?;
        let (db_path, key_path) = (dir.join(DB_FILE), dir.join(KEY_FILE));
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
        if real_slot.is_some() {
            records::Sealer {
                key: &key,
                store_id: &keys.store_id,
            }
            .put_meta(&conn, duress::COMPANION_ROW, &duress::Companion::filler())?;
        }
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
            real_slot,
        };
        Ok(Self {
            dir: dir.to_owned(),
            options,
            closed: std::sync::atomic::AtomicBool::new(false),
            inner: Mutex::new(Some(Inner {
                conn,
                keys,
                unlocked: Some(unlocked),
                last_failure: None,
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
            closed: std::sync::atomic::AtomicBool::new(false),
            inner: Mutex::new(Some(Inner {
                conn,
                keys,
                unlocked: None,
                last_failure: None,
            })),
        })
    }

    fn guard(&self) -> Result<MutexGuard<'_, Option<Inner>>> {
        if self.closed.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(CoreError::Closed);
        }
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
            real_slot: None,
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
                Ok(key) => {
                    Self::finish_unlock(inner, key, self.options.clock.elapsed())?;
                    if kind == SlotKind::Keystore {
                        Self::drop_lone_passphrase_slots(inner, &self.dir)?;
                    }
                    return Ok(());
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// A store made by an earlier build with a keystore slot and a separate passphrase slot:
    /// the passphrase slot alone would let a copy of the key file be attacked offline without
    /// the keystore. It no longer opens the store; at the first keystore unlock it is removed
    /// from the key file.
    fn drop_lone_passphrase_slots(inner: &mut Inner, dir: &Path) -> Result<()> {
        if !inner
            .keys
            .slots
            .iter()
            .any(|s| s.kind == SlotKind::Passphrase)
        {
            return Ok(());
        }
        let mut keys = inner.keys.clone();
        keys.slots.retain(|s| s.kind == SlotKind::Keystore);
        keys.write(&dir.join(KEY_FILE))?;
        inner.keys = keys;
        Ok(())
    }

    /// What this store opens with, from its key file (readable while locked): the keystore key
    /// and the passphrase together, the keystore key alone, or (a store made without a
    /// keystore) the passphrase alone.
    pub fn unlock_needs(&self) -> Result<UnlockNeeds> {
        let guard = self.guard()?;
        let inner = guard.as_ref().ok_or(CoreError::NoStore)?;
        let has = |kind| inner.keys.slots.iter().any(|s| s.kind == kind);
        Ok(if has(SlotKind::KeystorePassphrase) {
            UnlockNeeds {
                keystore: true,
                passphrase: true,
            }
        } else if has(SlotKind::Keystore) {
            UnlockNeeds {
                keystore: true,
                passphrase: false,
            }
        } else {
            UnlockNeeds {
                keystore: false,
                passphrase: true,
            }
        })
    }

    /// Unlocks with what the store needs ([`Store::unlock_needs`]): the keystore's key, the
    /// worker's passphrase, or both. Lacking one of them is [`CoreError::UnlockNeeds`] and tries
    /// nothing; a keystore that wants the user to authenticate first is
    /// [`CoreError::AuthenticationRequired`]; a wrong key or passphrase is
    /// [`CoreError::WrongKey`].
    pub fn unlock(
        &self,
        keystore: Option<&dyn KeyProvider>,
        passphrase: Option<&str>,
    ) -> Result<()> {
        let needs = self.unlock_needs()?;
        let missing = CoreError::UnlockNeeds {
            keystore: needs.keystore,
            passphrase: needs.passphrase,
        };
        match (needs.keystore, needs.passphrase) {
            (true, true) => {
                let (Some(provider), Some(passphrase)) = (keystore, passphrase) else {
                    return Err(missing);
                };
                let root = provider.root_key()?;
                self.counted(Some(&root), || {
                    self.unlock_secret(SlotKind::KeystorePassphrase, Some(&root), passphrase)
                })
            }
            (true, false) => {
                let provider = keystore.ok_or(missing)?;
                let root = provider.root_key()?;
                self.unlock_with(SlotKind::Keystore, |slot| slot.open_with_keystore(&root))
            }
            _ => {
                let passphrase = passphrase.ok_or(missing)?;
                self.counted(None, || {
                    self.unlock_secret(SlotKind::Passphrase, None, passphrase)
                })
            }
        }
    }

    /// Opens every passphrase slot of `kind` with `passphrase` (all of them, whatever opens, so
    /// that the duress PIN costs the same key derivation as the real one), then unlocks with the
    /// data key, or enters the duress workspace (`duress`).
    fn unlock_secret(
        &self,
        kind: SlotKind,
        root: Option<&[u8; 32]>,
        passphrase: &str,
    ) -> Result<()> {
        let opened: Vec<(usize, Result<crate::crypto::Opened>)> = {
            let guard = self.guard()?;
            let inner = guard.as_ref().ok_or(CoreError::NoStore)?;
            inner
                .keys
                .slots
                .iter()
                .enumerate()
                .filter(|(_, s)| s.kind == kind)
                .map(|(i, s)| (i, s.open_secret(root, passphrase)))
                .collect()
        };
        let mut last = CoreError::WrongKey;
        let mut duress_key = None;
        for (index, result) in opened {
            match result {
                Ok(crate::crypto::Opened::Data(key)) => {
                    let mut guard = self.guard()?;
                    let inner = guard.as_mut().ok_or(CoreError::NoStore)?;
                    Self::finish_unlock(inner, key, self.options.clock.elapsed())?;
                    if let Some(u) = inner.unlocked.as_mut() {
                        u.real_slot = Some(index);
                    }
                    return Ok(());
                }
                Ok(crate::crypto::Opened::Duress(key)) => duress_key = Some((index, key)),
                Err(CoreError::WrongKey) => {}
                Err(e) => last = e,
            }
        }
        match duress_key {
            Some((index, key)) => self.enter_duress(index, &key),
            None => Err(last),
        }
    }

    /// The duress PIN opened slot `index`: shreds the key file (the data key's only wrapping)
    /// and the database at once, and builds in their place, from the kit, a store whose
    /// passphrase is the duress PIN, holding this phone's credential and lease and no case, and
    /// the duress notice for the office. See `duress`.
    fn enter_duress(&self, index: usize, kit_key: &[u8; 32]) -> Result<()> {
        let mut guard = self.guard()?;
        let mut kit = {
            let inner = guard.as_ref().ok_or(CoreError::NoStore)?;
            let blob = inner.keys.slots.get(index).and_then(|s| s.kit.as_deref());
            duress::open_kit(
                blob.ok_or(CoreError::Corrupt { what: "kit" })?,
                kit_key,
                &inner.keys.store_id,
            )?
        };
        // The real store goes first: the database is closed, the key file shredded, the files
        // deleted. From here on nothing opens the old data.
        *guard = None;
        keyfile::shred(&self.dir.join(KEY_FILE))?;
        for name in [
            DB_FILE.to_owned(),
            format!("{DB_FILE}-wal"),
            format!("{DB_FILE}-shm"),
            format!("{KEY_FILE}.tmp"),
        ] {
            match std::fs::remove_file(self.dir.join(&name)) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
        }
        keyfile::sync_dir(&self.dir.join(DB_FILE))?;
        // The workspace's key file was made when the PIN was set (its slots wrap a data key to
        // the PIN), so that this unlock runs no more key derivation than a real one.
        let prepared = kit
            .workspace
            .take()
            .ok_or(CoreError::Corrupt { what: "kit" })?;
        let data_key = DataKey::from_bytes(prepared.key()?);
        let mut slots = prepared.slots.clone();
        for slot in &mut slots {
            slot.kit = Some(duress::empty_blob(&prepared.store_id)?);
        }
        let workspace = Store::build(
            &self.dir,
            &kit.identity,
            data_key,
            KeyFile::new(prepared.store_id, slots),
            Some(prepared.real_slot),
            self.options.clone(),
            schema::SCHEMA_VERSION,
        )?;
        for (name, value) in &kit.rows {
            if duress::KIT_ROWS.contains(&name.as_str()) {
                workspace.put_sealed_meta(name, value)?;
            }
        }
        workspace.set_held(&kit.notice)?;
        workspace.reload_lease()?;
        let inner = workspace
            .inner
            .into_inner()
            .map_err(|_| CoreError::Locked)?;
        *guard = inner;
        Ok(())
    }

    /// Reads the lease row again into the unlocked state (after rows were put in place).
    fn reload_lease(&self) -> Result<()> {
        let elapsed = self.options.clock.elapsed();
        let mut guard = self.guard()?;
        let inner = guard.as_mut().ok_or(CoreError::NoStore)?;
        let Inner {
            conn,
            keys,
            unlocked,
            ..
        } = inner;
        let u = unlocked.as_mut().ok_or(CoreError::Locked)?;
        if let Some(gate) = u.lease.as_ref() {
            let (server, device) = gate.subject();
            let sealer = records::Sealer {
                key: &u.key,
                store_id: &keys.store_id,
            };
            u.lease = Some(lease::LeaseGate::load(
                conn, &sealer, server, device, elapsed,
            )?);
        }
        Ok(())
    }

    /// Sets the duress PIN `pin` (bound to the keystore's secret `root` for a store with a
    /// keystore): entered at unlock, it destroys this store and opens an empty workspace (see
    /// `duress`). `notice` is the signed duress notice sealed to the office. The store must be
    /// unlocked and have a passphrase; the PIN must be strong enough and differ from the
    /// passphrase. Setting it again replaces the previous one.
    pub(crate) fn set_duress(
        &self,
        root: Option<&[u8; 32]>,
        pin: &str,
        notice: &[u8],
    ) -> Result<()> {
        use base64::Engine;
        crate::crypto::check_passphrase_strength(pin, &[])?;
        let (real, real_slot) = {
            let guard = self.guard()?;
            let inner = guard.as_ref().ok_or(CoreError::NoStore)?;
            let u = inner.unlocked.as_ref().ok_or(CoreError::Locked)?;
            let index = u.real_slot.ok_or(CoreError::DuressNeedsPassphrase)?;
            let slot = inner
                .keys
                .slots
                .get(index)
                .cloned()
                .ok_or(CoreError::DuressNeedsPassphrase)?;
            (slot, index)
        };
        if matches!(
            real.open_secret(root, pin),
            Ok(crate::crypto::Opened::Data(_))
        ) {
            return Err(CoreError::Invalid(
                crate::model::ValidationError::EmptyField {
                    field: "a duress PIN other than the passphrase",
                },
            ));
        }
        let work_factor = real
            .work_factor()
            .unwrap_or(self.options.scrypt_work_factor);
        let mut key = zeroize::Zeroizing::new([0u8; 32]);
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, key.as_mut());
        let slot = KeySlot::for_pair(&key, true, root, pin, work_factor)?;
        // The workspace's key file, made now: a new data key wrapped to the PIN, and a filler.
        let workspace_key = DataKey::generate();
        let workspace_id = uuid::Uuid::new_v4();
        let (mut slots, workspace_real) =
            Self::pair(&workspace_key, root, pin, work_factor, &workspace_id)?;
        // Their kit blobs are made when the workspace is built (they would not fit in a kit).
        for slot in &mut slots {
            slot.kit = None;
        }
        let companion = duress::Companion {
            key: hex::encode(key.as_slice()),
            duress: true,
            notice: Some(base64::engine::general_purpose::STANDARD.encode(notice)),
            workspace: Some(duress::Workspace {
                key: hex::encode(workspace_key.expose()),
                store_id: workspace_id,
                slots,
                real_slot: workspace_real.unwrap_or(0),
            }),
        };
        self.put_sealed_meta(duress::COMPANION_ROW, &companion)?;
        let mut guard = self.guard()?;
        let inner = guard.as_mut().ok_or(CoreError::NoStore)?;
        let mut keys = inner.keys.clone();
        let other = keys
            .slots
            .iter()
            .enumerate()
            .position(|(i, s)| i != real_slot && s.kind == real.kind)
            .ok_or(CoreError::DuressNeedsPassphrase)?;
        keys.slots[other] = slot;
        keys.write(&self.dir.join(KEY_FILE))?;
        inner.keys = keys;
        drop(guard);
        self.refresh_kits()
    }

    /// Adds the worker's `passphrase` to a store that opens with the keystore's key alone (one
    /// enrolled before the shells asked for one): from then on it opens only with the keystore's
    /// secret `root` and the passphrase together (ADR 0006), which also makes wrong passphrases
    /// counted and a duress PIN possible. The passphrase must pass the strength floor
    /// ([`CoreError::WeakPassphrase`]); `root` must be the key that opens this store
    /// ([`CoreError::WrongKey`]: binding the passphrase to another key would lock the worker
    /// out); a store that has a passphrase already is [`CoreError::PassphraseAlreadySet`].
    /// Checked before anything is written; the key file is replaced atomically, so a crash
    /// leaves the old one or the new one. The store must be unlocked.
    pub fn add_passphrase(&self, root: &[u8; 32], passphrase: &str) -> Result<()> {
        crate::crypto::check_passphrase_strength(passphrase, &[])?;
        let (key, keys) = {
            let guard = self.guard()?;
            let inner = guard.as_ref().ok_or(CoreError::NoStore)?;
            let u = inner.unlocked.as_ref().ok_or(CoreError::Locked)?;
            if u.real_slot.is_some() || inner.keys.slots.iter().any(|s| s.kind.has_passphrase()) {
                return Err(CoreError::PassphraseAlreadySet);
            }
            let opened = inner
                .keys
                .slots
                .iter()
                .filter(|s| s.kind == SlotKind::Keystore)
                .find_map(|s| s.open_with_keystore(root).ok())
                .ok_or(CoreError::WrongKey)?;
            if opened.expose() != u.key.expose() {
                return Err(CoreError::WrongKey);
            }
            (opened, inner.keys.clone())
        };
        let (slots, real_slot) = Self::pair(
            &key,
            Some(root),
            passphrase,
            self.options.scrypt_work_factor,
            &keys.store_id,
        )?;
        self.put_sealed_meta(duress::COMPANION_ROW, &duress::Companion::filler())?;
        let mut guard = self.guard()?;
        let inner = guard.as_mut().ok_or(CoreError::NoStore)?;
        let mut next = inner.keys.clone();
        next.slots = slots;
        next.set_attempts(None);
        next.write(&self.dir.join(KEY_FILE))?;
        inner.keys = next;
        if let Some(u) = inner.unlocked.as_mut() {
            u.real_slot = real_slot;
        }
        Ok(())
    }

    /// Writes both kit blobs of a passphrase pair again: the duress kit from the store as it is
    /// now (credential, lease), or a filler's random blob, and a fresh random blob in the data
    /// slot, so that nothing in the key file tells which slot changed. Nothing to do for a store
    /// without a pair.
    pub(crate) fn refresh_kits(&self) -> Result<()> {
        let Some(real_slot) = self.with_unlocked_for_sync(|_, u, _| Ok(u.real_slot))? else {
            return Ok(());
        };
        let companion: Option<duress::Companion> = self.get_sealed_meta(duress::COMPANION_ROW)?;
        let identity = self.store_identity()?;
        let mut rows = Vec::new();
        for name in duress::KIT_ROWS {
            if let Some(value) = self.get_sealed_meta::<serde_json::Value>(name)? {
                rows.push(((*name).to_owned(), value));
            }
        }
        let mut guard = self.guard()?;
        let inner = guard.as_mut().ok_or(CoreError::NoStore)?;
        let mut keys = inner.keys.clone();
        let store_id = keys.store_id;
        let kind = keys.slots.get(real_slot).map(|s| s.kind);
        for (i, slot) in keys.slots.iter_mut().enumerate() {
            if Some(slot.kind) != kind {
                continue;
            }
            slot.kit = Some(match &companion {
                Some(c) if c.duress && i != real_slot => {
                    let notice = c.notice.clone().unwrap_or_default();
                    let kit = duress::Kit {
                        identity: identity.clone(),
                        rows: rows.clone(),
                        notice,
                        workspace: c.workspace.clone(),
                    };
                    duress::seal_kit(&kit, &*c.key()?, &store_id)?
                }
                _ => duress::empty_blob(&store_id)?,
            });
        }
        keys.write(&self.dir.join(KEY_FILE))?;
        inner.keys = keys;
        Ok(())
    }

    /// Whom this store belongs to, as it was created.
    fn store_identity(&self) -> Result<StoreIdentity> {
        let sealed: SealedIdentity =
            self.get_sealed_meta("identity")?
                .ok_or(CoreError::Corrupt {
                    what: "store identity",
                })?;
        let lease_key = sealed
            .lease_key
            .as_deref()
            .map(crate::protocol::decode_hex_array::<32>)
            .transpose()
            .map_err(|_| CoreError::Corrupt {
                what: "store identity",
            })?;
        Ok(StoreIdentity {
            user: sealed.user,
            device: sealed.device,
            lease_key,
        })
    }

    /// The statement for the office the key file holds (base64 of a blob sealed to the office),
    /// readable locked or unlocked.
    pub fn held(&self) -> Result<Option<String>> {
        let guard = self.guard()?;
        Ok(guard.as_ref().ok_or(CoreError::NoStore)?.keys.held.clone())
    }

    /// Keeps `held` (base64 of a statement sealed to the office) in the key file.
    pub(crate) fn set_held(&self, held: &str) -> Result<()> {
        let mut guard = self.guard()?;
        let inner = guard.as_mut().ok_or(CoreError::NoStore)?;
        let mut keys = inner.keys.clone();
        keys.held = Some(held.to_owned());
        keys.write(&self.dir.join(KEY_FILE))?;
        inner.keys = keys;
        Ok(())
    }

    /// Runs one passphrase attempt under the count of wrong ones (`attempts`): refused with
    /// [`CoreError::TooManyAttempts`] before it runs while a wait is due; a wrong passphrase is
    /// counted (and, once waits have started, reported as `TooManyAttempts` with the new wait),
    /// a right one clears the count. `root` is the keystore's secret the count is sealed with.
    fn counted(&self, root: Option<&[u8; 32]>, attempt: impl FnOnce() -> Result<()>) -> Result<()> {
        let now = self.options.clock.now().unix_timestamp();
        let elapsed = self.options.clock.elapsed();
        let (key, store_id, count, since) = {
            let guard = self.guard()?;
            let inner = guard.as_ref().ok_or(CoreError::NoStore)?;
            let store_id = inner.keys.store_id;
            let key = attempts::key(root, &store_id)?;
            let count = attempts::read(inner.keys.attempts().as_deref(), &key, &store_id);
            let since = inner.last_failure.map(|t| elapsed.saturating_sub(t));
            (key, store_id, count, since)
        };
        let left = count.map_or(0, |c| c.left(now, since));
        if left > 0 {
            return Err(CoreError::TooManyAttempts {
                retry_after_secs: left,
            });
        }
        match (attempt(), count) {
            (Ok(()), _) => {
                if count != Some(attempts::Attempts::default()) {
                    self.keep_attempts(None, None)?;
                }
                Ok(())
            }
            // A count this keystore's secret does not open is not this attempt's to change.
            (Err(e), None) => Err(e),
            (Err(CoreError::WrongKey), Some(count)) => {
                let next = attempts::Attempts {
                    failures: count.failures.saturating_add(1),
                    last_failure_at: now.max(count.last_failure_at),
                };
                let sealed = attempts::seal(&next, &key, &store_id)?;
                self.keep_attempts(Some(&sealed), Some(elapsed))?;
                match next.wait() {
                    0 => Err(CoreError::WrongKey),
                    wait => Err(CoreError::TooManyAttempts {
                        retry_after_secs: wait,
                    }),
                }
            }
            (Err(e), Some(_)) => Err(e),
        }
    }

    /// Writes the sealed count of wrong passphrases into the key file.
    fn keep_attempts(
        &self,
        sealed: Option<&[u8]>,
        failed_at: Option<std::time::Duration>,
    ) -> Result<()> {
        let mut guard = self.guard()?;
        let inner = guard.as_mut().ok_or(CoreError::NoStore)?;
        let mut keys = inner.keys.clone();
        keys.set_attempts(sealed);
        keys.write(&self.dir.join(KEY_FILE))?;
        inner.keys = keys;
        inner.last_failure = failed_at;
        Ok(())
    }

    /// Unlocks a store that opens with the platform keystore's key alone.
    pub fn unlock_with_keystore(&self, provider: &dyn KeyProvider) -> Result<()> {
        self.unlock(Some(provider), None)
    }

    /// Unlocks a store that opens with the worker's passphrase alone (one made without a
    /// keystore).
    pub fn unlock_with_passphrase(&self, passphrase: &str) -> Result<()> {
        self.unlock(None, Some(passphrase))
    }

    /// Closes this handle now: forgets the data key and every decrypted document and closes the
    /// database (what dropping it does, without waiting for the last reference to go, which a
    /// garbage-collected caller may never make). Every later call is [`CoreError::Closed`];
    /// the files stay, and [`Store::open`] opens them again.
    pub fn close(&self) {
        let mut guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        *guard = None;
        self.closed.store(true, std::sync::atomic::Ordering::SeqCst);
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
        let shredded = keyfile::shred(&self.dir.join(KEY_FILE));
        // The keystore is asked with the store's lock released (a platform keystore may call
        // back into the app), and whatever the shredding did: its key must go either way.
        drop(guard);
        let keystore_key_destroyed = match keystore {
            Some(p) => p.destroy().is_ok(),
            None => false,
        };
        let _guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if shredded? {
            files_removed.push(KEY_FILE.to_owned());
        }
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
