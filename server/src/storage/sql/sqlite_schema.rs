//! The server's SQLite database: opening (WAL) and versioned migrations (the handle requests
//! use is [`crate::storage::sql::Database`]).

use std::path::Path;
use std::time::Duration;

use rusqlite::Connection;

use crate::error::ServerError;

/// Migrations in order; step `i` (0-based) moves the schema to `user_version = i + 1`.
/// [`crate::storage::sql::PG_MIGRATIONS`] holds the PostgreSQL equivalents, under the same names.
pub const MIGRATIONS: &[(&str, &str)] = &[
    (
        "001_initial",
        include_str!("../../../migrations/001_initial.sql"),
    ),
    (
        "002_cases",
        include_str!("../../../migrations/002_cases.sql"),
    ),
    (
        "003_revocation",
        include_str!("../../../migrations/003_revocation.sql"),
    ),
    (
        "004_case_retention",
        include_str!("../../../migrations/004_case_retention.sql"),
    ),
    ("005_web", include_str!("../../../migrations/005_web.sql")),
    (
        "006_case_chunks",
        include_str!("../../../migrations/006_case_chunks.sql"),
    ),
    (
        "007_login_failures",
        include_str!("../../../migrations/007_login_failures.sql"),
    ),
    (
        "008_teams",
        include_str!("../../../migrations/008_teams.sql"),
    ),
    (
        "009_purge_grace",
        include_str!("../../../migrations/009_purge_grace.sql"),
    ),
    (
        "010_device_confirmation",
        include_str!("../../../migrations/010_device_confirmation.sql"),
    ),
    (
        "011_tls_pins",
        include_str!("../../../migrations/011_tls_pins.sql"),
    ),
    (
        "012_device_epoch",
        include_str!("../../../migrations/012_device_epoch.sql"),
    ),
    (
        "013_attachments",
        include_str!("../../../migrations/013_attachments.sql"),
    ),
    (
        "014_alerts",
        include_str!("../../../migrations/014_alerts.sql"),
    ),
    (
        "015_case_erasure",
        include_str!("../../../migrations/015_case_erasure.sql"),
    ),
    (
        "016_report_index",
        include_str!("../../../migrations/016_report_index.sql"),
    ),
];

/// File name of the database inside the data folder.
pub const DB_FILE: &str = "server.db";

/// Opens (creating if needed) the database at `path` and brings its schema up to date.
pub fn open_sqlite(path: &Path) -> Result<Connection, ServerError> {
    if !path.exists() {
        // Owner-only from the start; SQLite gives its -wal and -shm files the same mode.
        match crate::storage::data_dir::create_private(path) {
            Ok(_) => {}
            Err(ServerError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
    let mut conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // Deleted rows are overwritten, not left in free pages: a discarded quarantine upload or
    // an ended session must not stay readable in the file (the key file sits beside it).
    conn.pragma_update(None, "secure_delete", "ON")?;
    migrate(&mut conn)?;
    Ok(conn)
}

/// The schema version this build writes.
pub fn schema_version() -> i64 {
    i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX)
}

/// Applies every migration above the file's `user_version`, each in its own transaction that also
/// sets `user_version`.
pub fn migrate(conn: &mut Connection) -> Result<(), ServerError> {
    let current: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let known = schema_version();
    if current > known {
        return Err(ServerError::SchemaTooNew {
            found: current,
            known,
        });
    }
    for (index, (name, sql)) in MIGRATIONS.iter().enumerate() {
        let version = i64::try_from(index).unwrap_or(i64::MAX) + 1;
        if version <= current {
            continue;
        }
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", version)?;
        tx.commit()?;
        tracing::info!(migration = name, version, "applied database migration");
    }
    Ok(())
}
