//! A small SQL facade, so that one piece of SQL-using code serves both of the server's storage
//! backends: embedded SQLite (the default) and PostgreSQL (several stateless server
//! instances on one database, DESIGN.md section 9).
//!
//! - [`Sql`] is a connection or transaction of either backend: [`Sql::execute`],
//!   [`Sql::query_row`], [`Sql::query_opt`], [`Sql::query_all`] and [`Sql::execute_batch`].
//!   Parameters are [`Param`]s (borrowed, so that a case document is not copied to be bound);
//!   rows come back as [`Row`]s of [`Value`]s with typed getters that return a [`SqlError`], never
//!   panic, on a wrong type or a missing column.
//! - [`Database`] is "the database" chosen by configuration ([`DatabaseConfig`]): it runs a
//!   closure in a write transaction ([`Database::write`], [`Database::write_in`]: on SQLite
//!   one writer at a time, on PostgreSQL an exclusive write or a device's sync beside other
//!   syncs, with the commit order taken only where sequence numbers need it), or in a read-only
//!   snapshot ([`Database::read`]).
//! - [`pg_migrate`] is the PostgreSQL migration runner, with the discipline of [`crate::storage::sql::migrate`].
//!
//! # The portable dialect
//! SQL is written once, in what both SQLite (3.35 or later) and PostgreSQL accept:
//! - numbered placeholders `?1, ?2, ...` (rewritten to `$1, $2, ...` for PostgreSQL, outside
//!   string literals, quoted identifiers and comments; a bare `?` is refused);
//! - `INSERT ... ON CONFLICT (...) DO NOTHING` / `DO UPDATE SET x = excluded.x` instead of
//!   `INSERT OR IGNORE` / `OR REPLACE`, and `RETURNING`;
//! - integers are 64-bit (`BIGINT` in PostgreSQL), blobs are `BYTEA`, booleans are stored as the
//!   integers 0 and 1 (PostgreSQL's own booleans, say from `EXISTS`, read back as 0 and 1);
//! - an aggregate that PostgreSQL widens to `NUMERIC` (`sum` of a `BIGINT`) must be cast back:
//!   `CAST(sum(x) AS BIGINT)`; a parameter whose type PostgreSQL cannot infer from its place
//!   (`SELECT ?1`) must be cast too (`CAST(?1 AS BIGINT)`);
//! - text holds no NUL character (PostgreSQL refuses it) and compares byte by byte (the
//!   PostgreSQL migrations give text keys `COLLATE "C"`, SQLite's `BINARY`).
//!
//! Statements that differ by backend (migrations, `PRAGMA`s, `sqlite_sequence`) branch on
//! [`Sql::backend`]; they are few and each says why.
//!
//! No error of this module carries row data or a password: PostgreSQL's `DETAIL` lines (which
//! quote the offending row) are dropped, and connection URLs never appear in errors or logs.
//!
//! Connections to PostgreSQL are secured as the URL's `sslmode` says ([`PgUrl`]: `verify-full`
//! with a CA file, `require`, or `disable`, which is the default and allowed only on this
//! machine unless explicitly allowed for another host).

mod database;
mod dialect;
mod pg;
mod pg_schema;
mod pg_url;
mod sqlite;
mod sqlite_schema;
mod value;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tls_tests;

pub use crate::error::SqlError;
pub use database::{DEFAULT_PG_CONNECTIONS, Database, DatabaseConfig, LockKey, WriteScope};
pub use dialect::to_postgres_placeholders;
pub use pg::{PgPool, PgTransaction, PooledClient, Prepared};
pub use pg_schema::{PG_MIGRATIONS, pg_migrate, pg_schema_version};
pub use pg_url::{ALLOW_REMOTE_PLAINTEXT, PgUrl, SslMode};
pub use sqlite_schema::{
    DB_FILE, MIGRATIONS as SQLITE_MIGRATIONS, migrate, open_sqlite, schema_version,
};
pub use value::{FromValue, Param, Row, Value};

use crate::storage::phases::{self, Phase};

/// Which backend a [`Sql`] talks to, for the few statements that must differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite through rusqlite.
    Sqlite,
    /// PostgreSQL through the blocking `postgres` client.
    Postgres,
}

/// A connection or transaction of either backend, in the portable dialect (see the module
/// documentation). Methods take `&mut self` because PostgreSQL's client needs it.
pub trait Sql {
    /// The backend behind this connection.
    fn backend(&self) -> Backend;

    /// Runs one statement and returns the number of rows it changed. A statement with
    /// `RETURNING` may run here too; its rows are read and dropped.
    fn execute(&mut self, sql: &str, params: &[Param<'_>]) -> Result<u64, SqlError>;

    /// Runs one query and returns all its rows.
    fn query_all(&mut self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Row>, SqlError>;

    /// Runs one query that returns at most one row: `None` for no row,
    /// [`SqlError::TooManyRows`] for more than one (on both backends, so a missing `LIMIT` or
    /// key is found in tests rather than silently taking the first row).
    fn query_opt(&mut self, sql: &str, params: &[Param<'_>]) -> Result<Option<Row>, SqlError>;

    /// Runs one query that returns exactly one row ([`SqlError::NoRow`] if none).
    fn query_row(&mut self, sql: &str, params: &[Param<'_>]) -> Result<Row, SqlError> {
        self.query_opt(sql, params)?.ok_or(SqlError::NoRow)
    }

    /// Runs several statements without parameters, as they are: not rewritten, so the text is
    /// in the backend's own dialect (migrations).
    fn execute_batch(&mut self, sql: &str) -> Result<(), SqlError>;

    /// The key the office's keyed records (the audit chain) are authenticated with, when the
    /// database was opened with it ([`Database::with_record_key`]); `None` otherwise.
    fn record_key(&self) -> Option<&[u8; 32]> {
        None
    }

    /// Takes this transaction's place in the commit order, which it then holds until it ends:
    /// call it before taking a sequence number (`case_seq`), appending to the audit chain, or
    /// writing any other row that transactions of other cases and devices also write (the
    /// report counts). Sequence numbers then become visible in the order they were taken, and
    /// two writers never wait for each other's shared rows in a circle. A no-op where the
    /// transaction excludes every other writer already (any SQLite write, an exclusive
    /// PostgreSQL write) and the second time.
    fn enter_commit_order(&mut self) -> Result<(), SqlError> {
        Ok(())
    }
}

/// Whether a transaction holds the commit order (see [`Sql::enter_commit_order`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Order {
    /// It does, or needs none: it excludes every other writer, or it only reads.
    Held,
    /// It runs beside other writers and takes the order when it first needs it.
    Pending,
}

/// A transaction as the office's code sees it: it carries the record key of its database, when
/// it has one, and counts the time of its statements into the request's tally
/// ([`crate::storage::phases`]).
pub(super) struct Keyed<'a> {
    pub(super) inner: &'a mut dyn Sql,
    pub(super) key: Option<&'a [u8; 32]>,
    pub(super) order: Order,
}

impl Sql for Keyed<'_> {
    fn backend(&self) -> Backend {
        self.inner.backend()
    }

    fn execute(&mut self, sql: &str, params: &[Param<'_>]) -> Result<u64, SqlError> {
        phases::time(Phase::Sql, || self.inner.execute(sql, params))
    }

    fn query_all(&mut self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Row>, SqlError> {
        phases::time(Phase::Sql, || self.inner.query_all(sql, params))
    }

    fn query_opt(&mut self, sql: &str, params: &[Param<'_>]) -> Result<Option<Row>, SqlError> {
        phases::time(Phase::Sql, || self.inner.query_opt(sql, params))
    }

    fn execute_batch(&mut self, sql: &str) -> Result<(), SqlError> {
        phases::time(Phase::Sql, || self.inner.execute_batch(sql))
    }

    fn record_key(&self) -> Option<&[u8; 32]> {
        self.key
    }

    fn enter_commit_order(&mut self) -> Result<(), SqlError> {
        if self.order == Order::Pending {
            phases::time(Phase::Lock, || {
                self.inner.execute(
                    "SELECT pg_advisory_xact_lock(?1)",
                    crate::sql_params![database::ORDER_LOCK_KEY],
                )
            })?;
            phases::hold();
            self.order = Order::Held;
        }
        Ok(())
    }
}
