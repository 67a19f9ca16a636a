//! PostgreSQL migrations (`server/migrations/postgres/`), with the discipline of
//! [`crate::storage::sql::migrate`]: numbered steps loaded with `include_str!`, each in its own
//! transaction that also records the version (in `schema_version`, PostgreSQL's stand-in for
//! `PRAGMA user_version`), a database newer than the build refused, and concurrent starts of
//! several instances serialised by a session-level advisory lock.

use postgres::Client;

use super::SqlError;
use crate::error::ServerError;

/// The PostgreSQL migrations in order, named like [`crate::storage::sql`]'s SQLite ones (a test checks
/// that the two lists match step by step): step `i` moves `schema_version` to `i + 1`.
pub const PG_MIGRATIONS: &[(&str, &str)] = &[
    (
        "001_initial",
        include_str!("../../../migrations/postgres/001_initial.sql"),
    ),
    (
        "002_cases",
        include_str!("../../../migrations/postgres/002_cases.sql"),
    ),
    (
        "003_revocation",
        include_str!("../../../migrations/postgres/003_revocation.sql"),
    ),
    (
        "004_case_retention",
        include_str!("../../../migrations/postgres/004_case_retention.sql"),
    ),
    (
        "005_web",
        include_str!("../../../migrations/postgres/005_web.sql"),
    ),
    (
        "006_case_chunks",
        include_str!("../../../migrations/postgres/006_case_chunks.sql"),
    ),
    (
        "007_login_failures",
        include_str!("../../../migrations/postgres/007_login_failures.sql"),
    ),
    (
        "008_teams",
        include_str!("../../../migrations/postgres/008_teams.sql"),
    ),
    (
        "009_purge_grace",
        include_str!("../../../migrations/postgres/009_purge_grace.sql"),
    ),
    (
        "010_device_confirmation",
        include_str!("../../../migrations/postgres/010_device_confirmation.sql"),
    ),
    (
        "011_tls_pins",
        include_str!("../../../migrations/postgres/011_tls_pins.sql"),
    ),
    (
        "012_device_epoch",
        include_str!("../../../migrations/postgres/012_device_epoch.sql"),
    ),
    (
        "013_attachments",
        include_str!("../../../migrations/postgres/013_attachments.sql"),
    ),
    (
        "014_alerts",
        include_str!("../../../migrations/postgres/014_alerts.sql"),
    ),
    (
        "015_case_erasure",
        include_str!("../../../migrations/postgres/015_case_erasure.sql"),
    ),
    (
        "016_report_index",
        include_str!("../../../migrations/postgres/016_report_index.sql"),
    ),
];

/// The advisory lock key that serialises migrations (the bytes of "fcmigrat"); distinct from
/// the write lock, and held by the session, so that it ends with the connection if the
/// process dies half-way.
const MIGRATE_LOCK_KEY: i64 = i64::from_be_bytes(*b"fcmigrat");

/// The schema version this build writes on PostgreSQL (equal to [`crate::storage::sql::schema_version`]).
pub fn pg_schema_version() -> i64 {
    i64::try_from(PG_MIGRATIONS.len()).unwrap_or(i64::MAX)
}

/// Brings the database up to date: takes the migration lock (waiting while another instance
/// migrates), checks the encoding is UTF-8, creates `schema_version` if missing, refuses a
/// version above [`pg_schema_version`], then applies each missing step in its own transaction
/// that also sets `schema_version`. The lock is released before returning, and by the
/// database if the connection drops.
pub fn pg_migrate(client: &mut Client) -> Result<(), ServerError> {
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATE_LOCK_KEY])
        .map_err(SqlError::from)?;
    let result = migrate_locked(client);
    let unlock = client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATE_LOCK_KEY])
        .map_err(SqlError::from);
    result?;
    unlock?;
    Ok(())
}

fn migrate_locked(client: &mut Client) -> Result<(), ServerError> {
    let encoding: String = client
        .query_one("SHOW server_encoding", &[])
        .and_then(|row| row.try_get(0))
        .map_err(SqlError::from)?;
    if encoding != "UTF8" {
        return Err(ServerError::Config(
            "the PostgreSQL database must use the UTF8 encoding".to_owned(),
        ));
    }
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_version (
                 id      BIGINT PRIMARY KEY CHECK (id = 1),
                 version BIGINT NOT NULL
             );
             INSERT INTO schema_version (id, version) VALUES (1, 0) ON CONFLICT (id) DO NOTHING;",
        )
        .map_err(SqlError::from)?;
    let current: i64 = client
        .query_one("SELECT version FROM schema_version WHERE id = 1", &[])
        .and_then(|row| row.try_get(0))
        .map_err(SqlError::from)?;
    let known = pg_schema_version();
    if current > known {
        return Err(ServerError::SchemaTooNew {
            found: current,
            known,
        });
    }
    for (index, (name, sql)) in PG_MIGRATIONS.iter().enumerate() {
        let version = i64::try_from(index).unwrap_or(i64::MAX) + 1;
        if version <= current {
            continue;
        }
        let mut tx = client.transaction().map_err(SqlError::from)?;
        tx.batch_execute(sql).map_err(SqlError::from)?;
        tx.execute(
            "UPDATE schema_version SET version = $1 WHERE id = 1",
            &[&version],
        )
        .map_err(SqlError::from)?;
        tx.commit().map_err(SqlError::from)?;
        tracing::info!(migration = name, version, "applied postgres migration");
    }
    Ok(())
}
