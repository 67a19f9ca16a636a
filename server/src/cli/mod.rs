//! The admin command line of the `fieldcase-server` binary, one file per command group. Each
//! command resolves its settings, opens the office it is pointed at (never creating one by
//! mistake), calls the office's operations inside a transaction and prints the result.
//!
//! Part of the binary, not of the library: it sits on top of every layer and uses `anyhow` for
//! messages an operator reads.

pub mod audit;
pub mod backup;
pub mod cases;
pub mod devices;
pub mod export;
pub mod quarantine;
pub mod reports;
pub mod serve;
pub mod teams;
pub mod tls;
pub mod users;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use fieldcase_core::ids::UserId;
use fieldcase_server::config::{DEFAULT_DATA_DIR, DEFAULT_LISTEN, FileConfig};
use fieldcase_server::storage::case_docs::CaseVault;
use fieldcase_server::storage::data_dir;
use fieldcase_server::storage::keys::ServerKeys;
use fieldcase_server::storage::sql::{Database, DatabaseConfig};
use fieldcase_server::{Clock, Limits, SystemClock};

/// What the command line and the configuration file say, flags first.
pub struct Settings {
    /// The data folder.
    pub data: PathBuf,
    /// The HTTPS address.
    pub listen: SocketAddr,
    /// The address printed for devices at enrollment.
    pub public_url: Option<String>,
    /// Limits of the HTTP app.
    pub limits: Limits,
    /// The database (its `Debug` hides a password; it is never printed).
    pub database: DatabaseConfig,
    /// Who backups are encrypted to when no `--recipient` is given (age1...).
    pub backup_recipients: Vec<String>,
    /// Scheduled backups of `serve`: how often, where, how many kept.
    pub backup_schedule: Option<(Duration, PathBuf, usize)>,
}

impl Settings {
    /// Merges the flags over the configuration file over the defaults.
    pub fn resolve(
        cli_data: Option<PathBuf>,
        config: Option<PathBuf>,
        listen: Option<SocketAddr>,
        database: Option<String>,
    ) -> Result<Settings> {
        let file = match config {
            Some(path) => FileConfig::load(&path).context("loading the configuration file")?,
            None => FileConfig::default(),
        };
        let default_listen: SocketAddr =
            DEFAULT_LISTEN.parse().context("default listen address")?;
        let mut limits = Limits::default();
        if let Some(secs) = file.request_timeout_secs {
            if secs == 0 {
                bail!("request_timeout_secs must be positive");
            }
            limits.request_timeout = Duration::from_secs(secs);
        }
        if let Some(n) = file.database_connections {
            if n == 0 {
                bail!("database_connections must be positive");
            }
            limits.pg_connections = n;
        }
        if let Some(ops) = file.cached_operations {
            limits.cached_operations = ops;
        }
        if let Some(hours) = file.lease_hours {
            if !(1..=720).contains(&hours) {
                bail!("lease_hours must be 1 to 720 (30 days)");
            }
            limits.lease = Duration::from_secs(hours * 3600);
        }
        if let Some(days) = file.closed_case_retention_days {
            if days > 3650 {
                bail!("closed_case_retention_days must be 0 to 3650");
            }
            limits.retention = Duration::from_secs(days * 24 * 3600);
        }
        if let Some(days) = file.office_retention_days {
            if days > 36500 {
                bail!("office_retention_days must be 0 to 36500");
            }
            limits.office_retention = Duration::from_secs(days * 24 * 3600);
        }
        if let Some(zone) = &file.office_time_zone {
            if fieldcase_server::http::web::i18n::OfficeZone::get(zone).is_none() {
                bail!("office_time_zone {zone:?} is not in the IANA time zone database");
            }
            limits.office_time_zone = Box::leak(zone.clone().into_boxed_str());
        }
        if let Some(t) = file.report_threshold {
            if !(2..=100).contains(&t) {
                bail!("report_threshold must be 2 to 100");
            }
            limits.report_threshold = t;
        }
        if let Some(n) = file.connections_per_address {
            if n == 0 {
                bail!("connections_per_address must be positive");
            }
            limits.max_connections_per_address = n;
        }
        if let Some(n) = file.device_burst {
            if n == 0 {
                bail!("device_burst must be positive");
            }
            limits.device_burst = n;
        }
        if let Some(n) = file.device_requests_per_sec {
            if n == 0 {
                bail!("device_requests_per_sec must be positive");
            }
            limits.device_requests_per_sec = n;
        }
        if let Some(on) = file.server_timing {
            limits.server_timing = on;
        }
        if let Some(confirm) = file.confirm_enrollment {
            limits.confirm_enrollment = confirm;
        }
        let data = cli_data
            .or(file.data)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        // The error never repeats the setting: it may hold a password.
        let database = match database.or(file.database) {
            Some(setting) => DatabaseConfig::parse(&setting).context("the database setting")?,
            None => DatabaseConfig::default_in(&data),
        };
        let backup_recipients = file.backup_recipients.unwrap_or_default();
        let backup_schedule = match (file.backup_every_hours, file.backup_dir) {
            (None, None) => None,
            (Some(hours), Some(dir)) => {
                if !(1..=168).contains(&hours) {
                    bail!("backup_every_hours must be 1 to 168");
                }
                if backup_recipients.is_empty() {
                    bail!("scheduled backups need backup_recipients (age1...)");
                }
                let keep = file.backup_keep.unwrap_or(14);
                if keep == 0 {
                    bail!("backup_keep must be at least 1");
                }
                Some((Duration::from_secs(hours * 3600), dir, keep))
            }
            _ => bail!("backup_every_hours and backup_dir go together"),
        };
        Ok(Settings {
            data,
            listen: listen.or(file.listen).unwrap_or(default_listen),
            public_url: file.public_url,
            limits,
            database,
            backup_recipients,
            backup_schedule,
        })
    }
}

/// An existing office opened for an admin command: its database, and the time of the command.
pub struct Office {
    /// The data folder.
    pub data: PathBuf,
    /// The database, carrying the audit key.
    pub db: Database,
    /// The office's key file.
    keys: ServerKeys,
    /// Now, Unix seconds.
    pub now: i64,
    /// The limits and periods of the settings (the office's retention period).
    pub limits: Limits,
}

impl Office {
    /// Opens the office in the settings' data folder; refuses a folder that holds none.
    pub fn open(settings: &Settings) -> Result<Office> {
        let sqlite_file = match &settings.database {
            DatabaseConfig::Sqlite(path) => Some(path.as_path()),
            DatabaseConfig::Postgres(_) => None,
        };
        data_dir::require_office(&settings.data, sqlite_file)?;
        let keys = ServerKeys::load(&settings.data).context("server key file")?;
        // The audit log is keyed: every entry a command writes carries the office's key.
        let db = Database::open_with(&settings.database, 2)
            .context("opening the database")?
            .with_record_key(keys.derive(fieldcase_server::office::audit::KEY_PURPOSE)?);
        Ok(Office {
            data: settings.data.clone(),
            db,
            keys,
            now: SystemClock.now(),
            limits: settings.limits,
        })
    }

    /// The case-sealing key, opened with the office's key file.
    pub fn vault(&self) -> Result<Arc<CaseVault>> {
        let vault = self
            .db
            .write(|sql| CaseVault::load_or_create(sql, &self.keys))?;
        // Cases stored before the report index existed get their facts once.
        self.db
            .write(|sql| fieldcase_server::storage::case_docs::backfill_index(sql, &vault))?;
        Ok(vault)
    }

    /// The ids of the users called `names`.
    pub fn user_ids(&self, names: &[String]) -> Result<Vec<UserId>> {
        names
            .iter()
            .map(|n| {
                self.db
                    .read(|sql| fieldcase_server::office::users::user_id_by_name(sql, n))
                    .map(UserId::from_uuid)
                    .context("unknown user name")
            })
            .collect()
    }
}
