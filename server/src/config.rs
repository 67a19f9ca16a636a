//! The optional TOML configuration file. Command-line flags override it.
//!
//! ```toml
//! data = "/var/lib/fieldcase"         # data folder (default ./fieldcase-data)
//! listen = "0.0.0.0:8443"             # HTTPS address (default 127.0.0.1:8443)
//! public_url = "https://office.lan:8443"  # address printed for devices at enrollment
//! request_timeout_secs = 60
//! # The database: a SQLite file (default: server.db in the data folder) or, for several
//! # instances, one PostgreSQL database. The --database flag and FIELDCASE_DATABASE_URL
//! # override it; keep the password out of this file's permissions' reach (mode 0600). A host
//! # other than this machine needs TLS: sslmode=verify-full and the CA file (docs/postgres.md).
//! database = "postgres://fieldcase:secret@db.office.lan:5432/fieldcase?sslmode=verify-full&sslrootcert=/etc/fieldcase/db-ca.pem"
//! database_connections = 8            # PostgreSQL connections of this instance
//! cached_operations = 2000000         # automerge operations of case documents kept in memory
//! report_threshold = 5                # reports hide every count below this (2 to 100)
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::ServerError;

/// Default data folder.
pub const DEFAULT_DATA_DIR: &str = "./fieldcase-data";
/// Default HTTPS address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8443";

/// The office's time zone when the file names none (`office_time_zone`).
pub const DEFAULT_TIME_ZONE: &str = "Europe/Belgrade";

/// Contents of the configuration file; every field is optional.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Data folder.
    pub data: Option<PathBuf>,
    /// HTTPS listen address.
    pub listen: Option<SocketAddr>,
    /// URL devices use to reach the server (printed with enrollment codes).
    pub public_url: Option<String>,
    /// Longest time one request may take, seconds.
    pub request_timeout_secs: Option<u64>,
    /// The database: a `postgres://` URL or the path of a SQLite file
    /// ([`crate::storage::sql::DatabaseConfig::parse`]). May hold a password: never logged.
    pub database: Option<String>,
    /// Most pooled PostgreSQL connections of this instance.
    pub database_connections: Option<usize>,
    /// Most automerge operations of case documents this instance keeps decrypted in memory
    /// ([`crate::Limits::cached_operations`]).
    pub cached_operations: Option<u64>,
    /// Whether a newly enrolled phone waits for an admin to confirm its key fingerprint before
    /// it may sync (`true` unless set; [`crate::Limits::confirm_enrollment`]).
    pub confirm_enrollment: Option<bool>,
    /// Who `admin backup create` encrypts to when no `--recipient` is given: age recipients
    /// (age1...) whose identities the office machine does not hold.
    pub backup_recipients: Option<Vec<String>>,
    /// How long a phone keeps working offline after its last sync before it locks its case data,
    /// hours (72 unless set; 1 to 720).
    pub lease_hours: Option<u64>,
    /// How long a closed case stays on the phones before they purge it, days (30 unless set; 0
    /// to 3650).
    pub closed_case_retention_days: Option<u64>,
    /// How many days the office keeps a closed case's content before erasing it (default 3650,
    /// ten years; 0 erases at the next retention run).
    pub office_retention_days: Option<u64>,
    /// The office's IANA time zone for the pages (default `Europe/Belgrade`).
    pub office_time_zone: Option<String>,
    /// Reports hide every count below this, and as many others as keep the hidden ones from
    /// being worked out (5 unless set; 2 to 100).
    pub report_threshold: Option<i64>,
    /// `serve` takes a backup at start and then every this many hours (1 to 168), into
    /// `backup_dir`, encrypted to `backup_recipients`; none unless set.
    pub backup_every_hours: Option<u64>,
    /// Where `serve` writes its scheduled backups.
    pub backup_dir: Option<PathBuf>,
    /// How many scheduled backups `serve` keeps (14 unless set).
    pub backup_keep: Option<usize>,
    /// Most connections one client address holds open (256 unless set; an office whose phones
    /// all reach the server through one NAT address may need more).
    pub connections_per_address: Option<usize>,
    /// Signed requests one device may make at once before it is held to
    /// `device_requests_per_sec` (120 unless set).
    pub device_burst: Option<u32>,
    /// Signed requests a second one device may make once its burst is spent (2 unless set).
    pub device_requests_per_sec: Option<u32>,
    /// Whether sync answers say where their time went at the office, in a `Server-Timing`
    /// header (off unless set; for load measurements).
    pub server_timing: Option<bool>,
}

impl std::fmt::Debug for FileConfig {
    /// Everything but the database setting, which may hold a password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileConfig")
            .field("data", &self.data)
            .field("listen", &self.listen)
            .field("public_url", &self.public_url)
            .field("request_timeout_secs", &self.request_timeout_secs)
            .field("database", &self.database.as_ref().map(|_| "(set)"))
            .field("database_connections", &self.database_connections)
            .field("cached_operations", &self.cached_operations)
            .field("confirm_enrollment", &self.confirm_enrollment)
            .field("backup_recipients", &self.backup_recipients)
            .field("lease_hours", &self.lease_hours)
            .field(
                "closed_case_retention_days",
                &self.closed_case_retention_days,
            )
            .field("office_retention_days", &self.office_retention_days)
            .field("office_time_zone", &self.office_time_zone)
            .field("report_threshold", &self.report_threshold)
            .field("backup_every_hours", &self.backup_every_hours)
            .field("backup_dir", &self.backup_dir)
            .field("backup_keep", &self.backup_keep)
            .field("connections_per_address", &self.connections_per_address)
            .field("device_burst", &self.device_burst)
            .field("device_requests_per_sec", &self.device_requests_per_sec)
            .field("server_timing", &self.server_timing)
            .finish()
    }
}

impl FileConfig {
    /// Reads and parses a configuration file.
    pub fn load(path: &Path) -> Result<FileConfig, ServerError> {
        let text = std::fs::read_to_string(path)
            .map_err(ServerError::io("reading the configuration file"))?;
        toml::from_str(&text).map_err(|e| ServerError::Config(e.message().to_owned()))
    }
}
