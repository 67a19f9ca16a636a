//! Backups of an office on SQLite: a consistent copy of the database taken while the office runs
//! (`VACUUM INTO`, a read snapshot, not a file copy), with `server.key`, the TLS certificate and
//! key, and a manifest (time, schema version, counts, audit head, each file's SHA-256), in one
//! file encrypted with age to recipients the office machine does not hold: a stolen backup is
//! useless without their identities.
//!
//! [`verify`] opens a backup and checks everything it can: the age stream is authenticated (a
//! file cut short or changed fails to decrypt), each file against the manifest's digest, the
//! schema against this build, the audit chain (keyed with the backup's own `server.key`) and the
//! counts against the manifest. [`restore`] does the same into a staging folder beside the
//! target and renames it into place only when all of it passed, so a failed restore writes
//! nothing; the restored log records the restore.
//!
//! On PostgreSQL the database is backed up by PostgreSQL's own tools (`docs/postgres.md`);
//! [`create`] with `keys_only` covers what lives outside it.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::audit::{self, ChainReport};
use crate::error::ServerError;
use crate::storage::data_dir::{KEY_FILE, create_private};
use crate::storage::keys::ServerKeys;
use crate::storage::sql::{self, Database, DatabaseConfig};

/// The first bytes of a backup's plaintext.
const MAGIC: &[u8] = b"fieldcase-backup-1\n";
/// The files of a data folder a backup holds besides the database (those present).
const FOLDER_FILES: [&str; 3] = [KEY_FILE, "tls-cert.pem", "tls-key.pem"];
/// Name of the database inside a backup.
const DB_ENTRY: &str = "server.db";
/// Largest entry a backup may hold (a guard against a damaged length, not a product limit).
const MAX_ENTRY: u64 = 64 << 30;

/// Audit action of a restore (detail: when the backup was made, Unix seconds).
pub const OFFICE_RESTORED: &str = "office_restored";

/// What a backup says of itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// When it was made, Unix seconds.
    pub created_at: i64,
    /// The database schema version it holds (`None`: keys only).
    pub schema_version: Option<i64>,
    /// How many rows the main tables held.
    pub counts: Counts,
    /// The audit chain's head hash (hex) when it was made, if the log is chained.
    pub audit_head: Option<String>,
    /// Whether the audit chain checked out when it was made.
    pub audit_intact: bool,
    /// Each file it holds, with its SHA-256 (hex).
    pub files: Vec<(String, String)>,
}

/// Row counts of the main tables.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Cases.
    pub cases: i64,
    /// Users.
    pub users: i64,
    /// Devices.
    pub devices: i64,
    /// Audit entries.
    pub audit_entries: i64,
}

/// The files of a backup, opened.
pub struct Contents {
    /// Its manifest.
    pub manifest: Manifest,
    /// Each file by name.
    pub files: Vec<(String, Zeroizing<Vec<u8>>)>,
}

fn hex_digest(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn counts(sql: &mut dyn sql::Sql) -> Result<Counts, ServerError> {
    let mut count = |table: &str| -> Result<i64, ServerError> {
        Ok(sql
            .query_row(&format!("SELECT count(*) FROM {table}"), &[])?
            .get(0)?)
    };
    Ok(Counts {
        cases: count("cases")?,
        users: count("users")?,
        devices: count("devices")?,
        audit_entries: count("audit_log")?,
    })
}

/// Opens the database at `path` (migrating it to this build's schema) with the record key of
/// `keys` (its audit chain checks), and reads its counts and audit report.
fn inspect(path: &Path, keys: &ServerKeys) -> Result<(Counts, ChainReport), ServerError> {
    let key = keys.derive(audit::KEY_PURPOSE)?;
    let db = Database::open(&DatabaseConfig::Sqlite(path.to_path_buf()))?.with_record_key(key);
    let (counts, report) =
        db.read(|sql| Ok::<_, ServerError>((counts(sql)?, audit::verify_chain(sql)?)))?;
    Ok((counts, report))
}

/// A file in `dir` that is removed (with SQLite's companions) when this is dropped.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut p = self.0.clone().into_os_string();
            p.push(suffix);
            let _ = std::fs::remove_file(PathBuf::from(p));
        }
    }
}

/// Makes a backup of the office in `data_dir` (its database the SQLite file `db_file`, or none
/// with `keys_only`) into `to`, encrypted to `recipients`. The file appears whole or not at all.
pub fn create(
    data_dir: &Path,
    db_file: Option<&Path>,
    recipients: &[age::x25519::Recipient],
    to: &Path,
    now: i64,
) -> Result<Manifest, ServerError> {
    // The copy, its checks and its encryption are a core's work for a while in a large office:
    // they run on a thread of their own at the lowest scheduling priority, so that the syncs and
    // pages served beside them on a small machine go first. Lowering it may be refused; then the
    // backup runs as it is.
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let _ = thread_priority::set_current_thread_priority(
                    thread_priority::ThreadPriority::Min,
                );
                create_now(data_dir, db_file, recipients, to, now)
            })
            .join()
            .map_err(|_| ServerError::Internal("the backup stopped"))?
    })
}

fn create_now(
    data_dir: &Path,
    db_file: Option<&Path>,
    recipients: &[age::x25519::Recipient],
    to: &Path,
    now: i64,
) -> Result<Manifest, ServerError> {
    if recipients.is_empty() {
        return Err(ServerError::Config(
            "a backup needs at least one recipient (age1...)".to_owned(),
        ));
    }
    let keys = ServerKeys::load(data_dir)?;
    let mut files: Vec<(String, Zeroizing<Vec<u8>>)> = Vec::new();
    let mut manifest = Manifest {
        created_at: now,
        schema_version: None,
        counts: Counts::default(),
        audit_head: None,
        audit_intact: true,
        files: Vec::new(),
    };
    if let Some(db_file) = db_file {
        let copy = Scratch(data_dir.join(format!(".backup-{}.db", uuid::Uuid::new_v4())));
        drop(create_private(&copy.0)?);
        let conn = rusqlite::Connection::open(db_file)?;
        conn.busy_timeout(std::time::Duration::from_secs(30))?;
        let target = copy.0.to_str().ok_or(ServerError::Config(
            "the data folder's path is not UTF-8".to_owned(),
        ))?;
        conn.execute("VACUUM INTO ?1", [target])?;
        drop(conn);
        // The copy as it was taken, in its own schema (older than this build's when `serve`
        // backs up before migrating); what the manifest says of it is read from it migrated, as
        // a restore will open it.
        let bytes = Zeroizing::new(
            std::fs::read(&copy.0).map_err(ServerError::io("reading the database copy"))?,
        );
        let schema: i64 =
            rusqlite::Connection::open(&copy.0)?
                .pragma_query_value(None, "user_version", |r| r.get(0))?;
        let (counts, report) = inspect(&copy.0, &keys)?;
        manifest.schema_version = Some(schema);
        manifest.counts = counts;
        if let ChainReport::Intact { head, .. } = report {
            manifest.audit_head = head.map(hex::encode);
        } else {
            manifest.audit_intact = false;
        }
        files.push((DB_ENTRY.to_owned(), bytes));
    }
    for name in FOLDER_FILES {
        let path = data_dir.join(name);
        if path.is_file() {
            let bytes = Zeroizing::new(
                std::fs::read(&path).map_err(ServerError::io("reading the data folder"))?,
            );
            files.push((name.to_owned(), bytes));
        }
    }
    manifest.files = files
        .iter()
        .map(|(n, b)| (n.clone(), hex_digest(b)))
        .collect();
    write(
        &Contents {
            manifest: manifest.clone(),
            files,
        },
        recipients,
        to,
    )?;
    Ok(manifest)
}

/// Writes `contents` to `to`, encrypted to `recipients`, through a temporary file renamed into
/// place.
pub fn write(
    contents: &Contents,
    recipients: &[age::x25519::Recipient],
    to: &Path,
) -> Result<(), ServerError> {
    let mut tmp = to.to_path_buf().into_os_string();
    tmp.push(".part");
    let tmp = PathBuf::from(tmp);
    let result = (|| {
        let file = create_private(&tmp)?;
        let encryptor =
            age::Encryptor::with_recipients(recipients.iter().map(|r| r as &dyn age::Recipient))
                .map_err(|_| ServerError::Config("no usable backup recipient".to_owned()))?;
        let io = |e: std::io::Error| ServerError::io("writing the backup")(e);
        let mut out = encryptor
            .wrap_output(std::io::BufWriter::new(file))
            .map_err(&io)?;
        out.write_all(MAGIC).map_err(&io)?;
        let manifest = serde_json::to_vec(&contents.manifest)
            .map_err(|_| ServerError::Internal("encoding a manifest"))?;
        write_entry(&mut out, "manifest.json", &manifest).map_err(&io)?;
        for (name, bytes) in &contents.files {
            write_entry(&mut out, name, bytes).map_err(&io)?;
        }
        let mut inner = out.finish().map_err(&io)?;
        inner.flush().map_err(&io)?;
        inner
            .into_inner()
            .map_err(|e| io(e.into_error()))?
            .sync_all()
            .map_err(&io)?;
        std::fs::rename(&tmp, to).map_err(ServerError::io("naming the backup"))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn write_entry(out: &mut impl Write, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    let name = name.as_bytes();
    out.write_all(&u16::try_from(name.len()).unwrap_or(u16::MAX).to_le_bytes())?;
    out.write_all(name)?;
    out.write_all(&(bytes.len() as u64).to_le_bytes())?;
    out.write_all(bytes)
}

/// Opens the backup `file` with `identities`: decrypts it and checks each file against the
/// manifest. [`ServerError::BackupKey`] when no identity opens it, [`ServerError::BackupDamaged`]
/// when it is not a backup or was cut short or changed.
pub fn open(file: &Path, identities: &[age::x25519::Identity]) -> Result<Contents, ServerError> {
    let reader = std::io::BufReader::new(
        std::fs::File::open(file).map_err(ServerError::io("opening the backup"))?,
    );
    let decryptor = age::Decryptor::new_buffered(reader)
        .map_err(|_| ServerError::BackupDamaged("not an age-encrypted backup"))?;
    let mut plain = decryptor
        .decrypt(identities.iter().map(|i| i as &dyn age::Identity))
        .map_err(|e| match e {
            age::DecryptError::NoMatchingKeys => ServerError::BackupKey,
            _ => ServerError::BackupDamaged("its header does not open"),
        })?;
    let damaged = |_| ServerError::BackupDamaged("cut short or changed");
    let mut magic = vec![0u8; MAGIC.len()];
    plain.read_exact(&mut magic).map_err(damaged)?;
    if magic != MAGIC {
        return Err(ServerError::BackupDamaged("not a fieldcase backup"));
    }
    let mut entries = Vec::new();
    loop {
        let mut len = [0u8; 2];
        match plain.read(&mut len[..1]) {
            Ok(0) => break,
            Ok(_) => plain.read_exact(&mut len[1..]).map_err(damaged)?,
            Err(e) => return Err(damaged(e)),
        }
        let mut name = vec![0u8; usize::from(u16::from_le_bytes(len))];
        plain.read_exact(&mut name).map_err(damaged)?;
        let name =
            String::from_utf8(name).map_err(|_| ServerError::BackupDamaged("a bad file name"))?;
        let mut size = [0u8; 8];
        plain.read_exact(&mut size).map_err(damaged)?;
        let size = u64::from_le_bytes(size);
        if size > MAX_ENTRY {
            return Err(ServerError::BackupDamaged("an entry of impossible size"));
        }
        let mut bytes = Zeroizing::new(Vec::new());
        (&mut plain)
            .take(size)
            .read_to_end(&mut bytes)
            .map_err(damaged)?;
        if bytes.len() as u64 != size {
            return Err(ServerError::BackupDamaged("cut short or changed"));
        }
        entries.push((name, bytes));
    }
    let mut entries = entries.into_iter();
    let manifest: Manifest = match entries.next() {
        Some((name, bytes)) if name == "manifest.json" => serde_json::from_slice(&bytes)
            .map_err(|_| ServerError::BackupDamaged("its manifest does not read"))?,
        _ => return Err(ServerError::BackupDamaged("no manifest")),
    };
    let files: Vec<(String, Zeroizing<Vec<u8>>)> = entries.collect();
    let listed: Vec<(String, String)> = files
        .iter()
        .map(|(n, b)| (n.clone(), hex_digest(b)))
        .collect();
    if listed != manifest.files {
        return Err(ServerError::BackupDamaged(
            "its files are not the ones its manifest lists",
        ));
    }
    Ok(Contents { manifest, files })
}

/// Writes the files of `contents` into the new folder `dir` (0700; with `only_database`, the
/// database alone: the keys are read from memory and never written) and checks them as a
/// whole: the schema is one this build knows, the audit chain checks out with the backup's own
/// key to the head the manifest names, and the counts are the manifest's.
fn unpack_and_check(
    contents: &Contents,
    dir: &Path,
    only_database: bool,
) -> Result<(), ServerError> {
    if let Some(found) = contents.manifest.schema_version
        && found > sql::schema_version()
    {
        return Err(ServerError::SchemaTooNew {
            found,
            known: sql::schema_version(),
        });
    }
    crate::storage::data_dir::prepare(dir)?;
    for (name, bytes) in &contents.files {
        if name.contains('/') || name.contains('\\') || name.starts_with('.') {
            return Err(ServerError::BackupDamaged("a file name outside the folder"));
        }
        if only_database && name != DB_ENTRY {
            continue;
        }
        let mut file = create_private(&dir.join(name))?;
        file.write_all(bytes)
            .and_then(|()| file.sync_all())
            .map_err(ServerError::io("writing the restored folder"))?;
    }
    let key_file = contents
        .files
        .iter()
        .find(|(name, _)| name == KEY_FILE)
        .ok_or(ServerError::BackupDamaged("it holds no server.key"))?;
    let keys = ServerKeys::parse(&key_file.1)?;
    if contents.manifest.schema_version.is_some() {
        let (counts, report) = inspect(&dir.join(DB_ENTRY), &keys)?;
        if counts != contents.manifest.counts {
            return Err(ServerError::BackupDamaged(
                "its database does not hold what its manifest counts",
            ));
        }
        match report {
            ChainReport::Intact { head, .. } => {
                if head.map(hex::encode) != contents.manifest.audit_head {
                    return Err(ServerError::BackupDamaged(
                        "its audit log does not end at the head its manifest names",
                    ));
                }
            }
            ChainReport::Broken { .. } if !contents.manifest.audit_intact => {}
            ChainReport::Broken { .. } => {
                return Err(ServerError::BackupDamaged("its audit log was changed"));
            }
        }
    }
    Ok(())
}

/// Checks a backup through and through (see the module's doc) without writing anything but the
/// database into a scratch folder (0700, removed after; the keys stay in memory); returns its
/// manifest.
pub fn verify(
    file: &Path,
    identities: &[age::x25519::Identity],
    scratch_in: &Path,
) -> Result<Manifest, ServerError> {
    let contents = open(file, identities)?;
    let scratch = scratch_in.join(format!(".verify-{}", uuid::Uuid::new_v4()));
    let result = unpack_and_check(&contents, &scratch, true);
    let _ = std::fs::remove_dir_all(&scratch);
    result.map(|()| contents.manifest)
}

/// Records that the office's database was restored from a backup: a new office epoch, so that
/// every phone that synced before starts over with the office and gives back what it holds that
/// the backup lacks ([`fieldcase_core::sync::epoch`]). [`restore`] does it; an office on
/// PostgreSQL, restored with `pg_restore`, does it with `admin backup restored`. Audited
/// (`office_restored`, with when the backup was made if known).
pub fn mark_restored(
    sql: &mut dyn sql::Sql,
    now: i64,
    backup_made_at: Option<i64>,
) -> Result<(), ServerError> {
    crate::storage::case_docs::new_epoch(sql)?;
    let detail = backup_made_at.map(|at| at.to_string());
    audit::record_detail(sql, now, OFFICE_RESTORED, None, None, detail.as_deref())?;
    Ok(())
}

/// Restores a backup into `data_dir`, which must not exist or be empty: everything is checked
/// in a staging folder beside it, which is renamed into place only if all of it passed; the
/// restored audit log records the restore. `serve` starts on the folder as on any office.
pub fn restore(
    file: &Path,
    identities: &[age::x25519::Identity],
    data_dir: &Path,
    now: i64,
) -> Result<Manifest, ServerError> {
    let occupied = data_dir.exists()
        && std::fs::read_dir(data_dir)
            .map_err(ServerError::io("reading the folder to restore into"))?
            .next()
            .is_some();
    if occupied {
        return Err(ServerError::RestoreTarget(data_dir.to_path_buf()));
    }
    let contents = open(file, identities)?;
    let parent = data_dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let staging = parent.join(format!(".restore-{}", uuid::Uuid::new_v4()));
    let result = (|| {
        unpack_and_check(&contents, &staging, false)?;
        if contents.manifest.schema_version.is_some() {
            let keys = ServerKeys::load(&staging)?;
            let db = Database::open(&DatabaseConfig::Sqlite(staging.join(DB_ENTRY)))?
                .with_record_key(keys.derive(audit::KEY_PURPOSE)?);
            let made_at = contents.manifest.created_at;
            db.write(|sql| mark_restored(sql, now, Some(made_at)))?;
        }
        if data_dir.exists() {
            std::fs::remove_dir(data_dir).map_err(ServerError::io("replacing the empty folder"))?;
        }
        std::fs::rename(&staging, data_dir).map_err(ServerError::io("moving the restored folder"))
    })();
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&staging);
    }
    result.map(|()| contents.manifest)
}

/// The `server_meta` row holding the outcome of the last scheduled backup.
const LAST_BACKUP: &str = "last_backup";
/// Audit action of a scheduled backup (detail: `ok` or `failed`).
pub const BACKUP_TAKEN: &str = "backup_taken";

/// The outcome of the last scheduled backup, as the admin pages show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastBackup {
    /// When it ran, Unix seconds.
    pub at: i64,
    /// The file it wrote, or why it failed.
    pub outcome: Result<String, String>,
}

/// Records the outcome of a scheduled backup (and audits it) in the caller's transaction.
pub fn record_last(sql: &mut dyn sql::Sql, last: &LastBackup) -> Result<(), ServerError> {
    let value = serde_json::to_vec(last).map_err(|_| ServerError::Internal("encoding"))?;
    sql.execute(
        "INSERT INTO server_meta (name, value) VALUES (?1, ?2)
         ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        crate::sql_params![LAST_BACKUP, value.as_slice()],
    )?;
    let detail = if last.outcome.is_ok() { "ok" } else { "failed" };
    audit::record_detail(sql, last.at, BACKUP_TAKEN, None, None, Some(detail))?;
    Ok(())
}

/// The outcome of the last scheduled backup, if one ran.
pub fn last(sql: &mut dyn sql::Sql) -> Result<Option<LastBackup>, ServerError> {
    let row = sql.query_opt(
        "SELECT value FROM server_meta WHERE name = ?1",
        crate::sql_params![LAST_BACKUP],
    )?;
    Ok(row
        .map(|r| r.get::<Vec<u8>>(0))
        .transpose()?
        .and_then(|v| serde_json::from_slice(&v).ok()))
}

/// Keeps the newest `keep` scheduled backups in `dir` (files named `fieldcase-*.fcbak`, which
/// sort by time) and removes the older ones.
pub fn prune(dir: &Path, keep: usize) -> Result<(), ServerError> {
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(ServerError::io("reading the backup folder"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("fieldcase-") && n.ends_with(".fcbak"))
        })
        .collect();
    names.sort();
    let extra = names.len().saturating_sub(keep.max(1));
    for old in names.into_iter().take(extra) {
        std::fs::remove_file(&old).map_err(ServerError::io("removing an old backup"))?;
    }
    Ok(())
}

/// The file name of a scheduled backup made at `now` (Unix seconds), sortable by time.
pub fn scheduled_name(now: i64) -> String {
    let at =
        time::OffsetDateTime::from_unix_timestamp(now).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "fieldcase-{:04}{:02}{:02}T{:02}{:02}{:02}Z.fcbak",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}
