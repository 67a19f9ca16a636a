//! Versioned migrations of the device database: each step runs in one transaction that also sets
//! `PRAGMA user_version`, so a crash leaves the database at a whole version.

use rusqlite::Connection;

use crate::error::{CoreError, Result};

/// The migrations in order; index + 1 is the version they bring the database to.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/001_init.sql"),
    include_str!("migrations/002_sync_state.sql"),
    include_str!("migrations/003_attachments.sql"),
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// The database's current schema version.
pub fn version(conn: &Connection) -> Result<i64> {
    Ok(conn.query_row("PRAGMA user_version", [], |r| r.get(0))?)
}

/// Brings the database up to `target` (at most [`SCHEMA_VERSION`]); refuses a newer database.
pub fn migrate_to(conn: &mut Connection, target: i64) -> Result<()> {
    let current = version(conn)?;
    if current > SCHEMA_VERSION {
        return Err(CoreError::SchemaTooNew {
            found: current,
            supported: SCHEMA_VERSION,
        });
    }
    for (index, sql) in MIGRATIONS
        .iter()
        .enumerate()
        .take(target.clamp(0, SCHEMA_VERSION) as usize)
    {
        let step = index as i64 + 1;
        if step <= current {
            continue;
        }
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", step)?;
        tx.commit()?;
    }
    Ok(())
}

/// Brings the database up to the latest version.
pub fn migrate(conn: &mut Connection) -> Result<()> {
    migrate_to(conn, SCHEMA_VERSION)
}
