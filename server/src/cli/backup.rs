//! `admin backup` (create, verify, restore, restored) and `admin key export`: the office's data and keys
//! kept where the office machine is not, encrypted with age to people who hold the identities.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use fieldcase_server::clock::rfc3339;
use fieldcase_server::office::backup::{self, Manifest};
use fieldcase_server::storage::data_dir::KEY_FILE;
use fieldcase_server::storage::sql::DatabaseConfig;
use fieldcase_server::{Clock, SystemClock};

use super::Settings;

/// `admin backup ...`
#[derive(Subcommand, Debug)]
pub enum BackupCommand {
    /// Take a consistent copy of the office (while it runs), with its key and certificate,
    /// encrypted to the recipients.
    Create {
        /// Where to write the backup.
        #[arg(long)]
        to: PathBuf,
        /// An age recipient (age1...) who can open it; repeat for several. Default: the
        /// configuration's `backup_recipients`.
        #[arg(long = "recipient", value_name = "AGE_RECIPIENT")]
        recipients: Vec<String>,
        /// Only what lives outside the database (server.key, the certificate): for an office
        /// on PostgreSQL, whose database PostgreSQL's own tools back up.
        #[arg(long)]
        keys_only: bool,
    },
    /// Open a backup and check it through: integrity, audit chain, counts.
    Verify {
        /// The backup file.
        file: PathBuf,
        /// A file holding an age identity (AGE-SECRET-KEY-...) of one of its recipients.
        #[arg(long)]
        identity: PathBuf,
    },
    /// Rebuild the data folder (`--data`, which must not exist or be empty) from a backup.
    Restore {
        /// The backup file.
        file: PathBuf,
        /// A file holding an age identity (AGE-SECRET-KEY-...) of one of its recipients.
        #[arg(long)]
        identity: PathBuf,
    },
    /// Record that the office's database was restored by other means (PostgreSQL's
    /// `pg_restore`): a new office epoch, so that every phone gives back what the restored
    /// database lacks. `restore` does this itself. Run it before `serve` starts.
    Restored,
}

/// The age recipients given as text (age1...), each checked.
pub fn recipients(given: &[String]) -> Result<Vec<age::x25519::Recipient>> {
    given
        .iter()
        .map(|r| {
            r.trim()
                .parse::<age::x25519::Recipient>()
                .map_err(|_| anyhow::anyhow!("not an age recipient (age1...): {}", r.trim()))
        })
        .collect()
}

fn identities(file: &Path) -> Result<Vec<age::x25519::Identity>> {
    let text = zeroize::Zeroizing::new(
        std::fs::read_to_string(file).context("reading the identity file")?,
    );
    let found: Vec<age::x25519::Identity> = text
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("AGE-SECRET-KEY-"))
        .filter_map(|l| l.parse().ok())
        .collect();
    if found.is_empty() {
        bail!("the identity file holds no age identity (AGE-SECRET-KEY-...)");
    }
    Ok(found)
}

fn print_manifest(out: &mut impl Write, m: &Manifest) -> Result<()> {
    writeln!(out, "made:           {}", rfc3339(m.created_at))?;
    match m.schema_version {
        Some(v) => writeln!(out, "schema version: {v}")?,
        None => writeln!(out, "keys only (no database)")?,
    }
    let c = m.counts;
    writeln!(
        out,
        "counts:         {} cases, {} users, {} devices, {} audit entries",
        c.cases, c.users, c.devices, c.audit_entries
    )?;
    writeln!(
        out,
        "audit head:     {}{}",
        m.audit_head.as_deref().unwrap_or("-"),
        if m.audit_intact {
            ""
        } else {
            " (the log was already broken)"
        }
    )?;
    Ok(())
}

/// Runs one `admin backup` command; `configured` are the configuration's recipients.
pub fn run(
    settings: &Settings,
    configured: &[String],
    command: BackupCommand,
    out: &mut impl Write,
) -> Result<()> {
    let now = SystemClock.now();
    match command {
        BackupCommand::Create {
            to,
            recipients: given,
            keys_only,
        } => {
            let given = if given.is_empty() {
                configured
            } else {
                &given[..]
            };
            let recipients = recipients(given)?;
            let db_file = match (&settings.database, keys_only) {
                (_, true) => None,
                (DatabaseConfig::Sqlite(path), false) => Some(path.as_path()),
                (DatabaseConfig::Postgres(_), false) => bail!(
                    "this office's database is PostgreSQL: back it up with pg_dump \
                     (docs/postgres.md) and take the keys with --keys-only"
                ),
            };
            let sqlite = db_file.map(Path::to_path_buf);
            fieldcase_server::storage::data_dir::require_office(&settings.data, sqlite.as_deref())?;
            let manifest = backup::create(&settings.data, db_file, &recipients, &to, now)?;
            writeln!(out, "backup written to {}", to.display())?;
            print_manifest(out, &manifest)?;
        }
        BackupCommand::Verify { file, identity } => {
            let scratch = std::env::temp_dir();
            let manifest = backup::verify(&file, &identities(&identity)?, &scratch)?;
            writeln!(out, "backup ok")?;
            print_manifest(out, &manifest)?;
        }
        BackupCommand::Restore { file, identity } => {
            let manifest = backup::restore(&file, &identities(&identity)?, &settings.data, now)?;
            writeln!(out, "restored into {}", settings.data.display())?;
            print_manifest(out, &manifest)?;
        }
        BackupCommand::Restored => {
            let office = super::Office::open(settings)?;
            office
                .db
                .write(|sql| backup::mark_restored(sql, now, None))?;
            writeln!(
                out,
                "new office epoch recorded: phones that synced before give back what this \
                 database lacks at their next sync"
            )?;
        }
    }
    Ok(())
}

/// `admin key export --to RECIPIENT --out FILE`: `server.key` encrypted to one age recipient.
pub fn export_key(
    settings: &Settings,
    to: &str,
    out_file: &Path,
    out: &mut impl Write,
) -> Result<()> {
    let recipient = recipients(&[to.to_owned()])?;
    let key = zeroize::Zeroizing::new(
        std::fs::read(settings.data.join(KEY_FILE)).context("reading server.key")?,
    );
    let encryptor =
        age::Encryptor::with_recipients(recipient.iter().map(|r| r as &dyn age::Recipient))
            .map_err(|_| anyhow::anyhow!("no usable recipient"))?;
    let file = fieldcase_server::storage::data_dir::create_private(out_file)?;
    let mut writer = encryptor.wrap_output(file)?;
    writer.write_all(&key)?;
    writer.finish()?.sync_all()?;
    writeln!(
        out,
        "server.key written, encrypted to {}, to {}",
        to.trim(),
        out_file.display()
    )?;
    Ok(())
}
