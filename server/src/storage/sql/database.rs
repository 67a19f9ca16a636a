//! "The database", chosen by configuration: embedded SQLite or PostgreSQL, with one way to run
//! work in a write transaction (in a [`WriteScope`]: exclusive, or a device's sync beside
//! others) or a read-only snapshot.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use postgres::IsolationLevel;
use rusqlite::{Connection, TransactionBehavior};

use zeroize::Zeroizing;

use super::{Backend, Keyed, Order, PgPool, PgUrl, Sql, SqlError, pg_migrate};

use crate::error::ServerError;
use crate::storage::phases::{self, Phase, Phases};

/// The advisory lock key of the global write lock (the bytes of "fcwrite!"), taken per
/// transaction with `pg_advisory_xact_lock`.
pub(crate) const WRITE_LOCK_KEY: i64 = i64::from_be_bytes(*b"fcwrite!");

/// The advisory lock key of the commit order (the bytes of "fcorder!"): a write that runs beside
/// others ([`WriteScope::Sync`]) takes it before it takes a sequence number or writes a row that
/// other cases share, and holds it until it has committed ([`Sql::enter_commit_order`]).
pub(crate) const ORDER_LOCK_KEY: i64 = i64::from_be_bytes(*b"fcorder!");

/// The first half of the two-key advisory locks a sync takes on the device and the cases it
/// writes ([`LockKey`]); the two-key lock space never meets the one-key locks above.
const DEVICE_LOCKS: i32 = i32::from_be_bytes(*b"fcdv");
/// See [`DEVICE_LOCKS`].
const CASE_LOCKS: i32 = i32::from_be_bytes(*b"fccs");

/// How long a PostgreSQL writer waits for the write lock (or any other lock) before its
/// transaction fails with `lock_not_available`, answered as "try again later".
const LOCK_TIMEOUT: &str = "30s";

/// Default size of the PostgreSQL pool of one server instance.
pub const DEFAULT_PG_CONNECTIONS: usize = 8;

/// How long a caller waits for a pooled connection.
const POOL_WAIT: Duration = Duration::from_secs(30);

/// One thing a [`WriteScope::Sync`] transaction writes and no other transaction may write at the
/// same time: a device (its row, its nonces, what the office knows it holds) or a case (its
/// document, chunks, assignments and report facts). Taken as a transaction-scoped two-key
/// advisory lock on PostgreSQL, in one order for every transaction (sorted), so that two syncs
/// never wait for each other in a circle; two keys that share a hash only wait for each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LockKey(i32, i32);

impl LockKey {
    /// The lock of a device.
    pub fn device(id: &uuid::Uuid) -> LockKey {
        LockKey(DEVICE_LOCKS, fold(id))
    }

    /// The lock of a case.
    pub fn case(id: &uuid::Uuid) -> LockKey {
        LockKey(CASE_LOCKS, fold(id))
    }
}

/// A UUID folded to 32 bits with FNV-1a: the same on every instance and build (a lock key must
/// be, or two instances would not exclude each other), and spread over every bit for UUIDs that
/// share most of theirs (time-ordered ones).
fn fold(id: &uuid::Uuid) -> i32 {
    let hash = id.as_bytes().iter().fold(0x811c_9dc5_u32, |h, &b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    i32::from_be_bytes(hash.to_be_bytes())
}

/// What a write transaction keeps others from writing while it runs (PostgreSQL only: SQLite
/// has one writer at a time whatever the scope).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteScope {
    /// Everything: no other write runs beside it. Every write but a device's sync.
    Exclusive,
    /// A device's sync: it runs beside other syncs and waits only for those that write the same
    /// device or cases, for any exclusive write, and for the commit order when it takes a
    /// sequence number or writes a row that other cases share ([`Sql::enter_commit_order`]).
    /// `keys` name every device and case it may write; it must write nothing else that
    /// another sync could write outside the commit order.
    Sync {
        /// The device and cases it writes.
        keys: Vec<LockKey>,
    },
}

/// Which database the server uses.
#[derive(Debug, Clone)]
pub enum DatabaseConfig {
    /// The embedded default: one SQLite file (normally `server.db` in the data folder).
    Sqlite(PathBuf),
    /// A PostgreSQL database, shared by any number of server instances.
    Postgres(PgUrl),
}

impl DatabaseConfig {
    /// Reads a database setting: a `postgres://` or `postgresql://` URL is PostgreSQL (with
    /// its TLS settings checked and its CA file read: [`PgUrl::parse`]), `sqlite:PATH` or
    /// anything else is the path of a SQLite file.
    pub fn parse(setting: &str) -> Result<DatabaseConfig, SqlError> {
        let setting = setting.trim();
        if setting.starts_with("postgres://") || setting.starts_with("postgresql://") {
            return Ok(DatabaseConfig::Postgres(PgUrl::parse(setting)?));
        }
        let path = setting.strip_prefix("sqlite:").unwrap_or(setting);
        if path.is_empty() {
            return Err(SqlError::Config("the database setting is empty"));
        }
        Ok(DatabaseConfig::Sqlite(PathBuf::from(path)))
    }

    /// The embedded default: `server.db` in the data folder.
    pub fn default_in(data_dir: &std::path::Path) -> DatabaseConfig {
        DatabaseConfig::Sqlite(data_dir.join(crate::storage::sql::DB_FILE))
    }

    /// How connections to PostgreSQL are secured (the URL's `sslmode`), for logs; `None` on
    /// SQLite.
    pub fn pg_ssl_mode(&self) -> Option<super::SslMode> {
        match self {
            DatabaseConfig::Sqlite(_) => None,
            DatabaseConfig::Postgres(url) => Some(url.ssl_mode()),
        }
    }

    /// `sqlite` or `postgres`, for logs (never the URL).
    pub fn backend_name(&self) -> &'static str {
        match self {
            DatabaseConfig::Sqlite(_) => "sqlite",
            DatabaseConfig::Postgres(_) => "postgres",
        }
    }
}

/// The server's database, either backend, cheap to clone and shared by every request.
///
/// Every write is a transaction through [`Database::write`] or [`Database::write_in`]. On
/// SQLite one writer runs at a time (`BEGIN IMMEDIATE`), whatever the [`WriteScope`]. On
/// PostgreSQL the transaction-scoped advisory lock `WRITE_LOCK_KEY` orders writers across
/// instances: an [`WriteScope::Exclusive`] write takes it exclusively for its whole
/// transaction; a device's sync ([`WriteScope::Sync`]) takes it shared, plus one lock per
/// device and case it writes, so syncs of different devices and cases run side by side; and
/// the part every writer shares, the commit order (`ORDER_LOCK_KEY`), is taken only when the
/// sync first needs it ([`Sql::enter_commit_order`]), after its automerge work, and held until
/// it has committed.
///
/// What must be ordered is the sync cursor. A device asks for "every case whose `seq` is above
/// my cursor" and moves its cursor to the highest `seq` it received. If two writers took `seq`
/// 7 and 8 and the one with 8 committed first, a reader could see 8 but not yet 7, move its
/// cursor to 8 and never receive 7. Case sequence numbers must therefore become visible in the
/// order they were taken, which the commit order guarantees: a writer takes a number only
/// while it holds the order, and lets it go only by committing (also for `audit_log.seq`,
/// whose hash chain needs the same, and the shared report counts). Lock release follows commit
/// visibility in PostgreSQL, and writes run at READ COMMITTED, so every statement after taking
/// a lock sees all that earlier holders committed. (At REPEATABLE READ the snapshot would be
/// taken by the first statement, before the wait, and miss them: do not change the level.)
///
/// [`Database::read`] runs in a consistent read-only snapshot (SQLite's deferred transaction
/// with `query_only`; PostgreSQL's REPEATABLE READ READ ONLY) and takes no lock.
///
/// Requests wait for their turn on an async, first-come-first-served gate (one turn on SQLite,
/// one per pooled connection on PostgreSQL) before they take a blocking thread: waiting on the
/// connection inside the blocking pool instead made a thread for every waiting request
/// (hundreds under load, each with its own allocator arena that kept memory it had freed: the
/// office's resident size grew by about 25 MB a minute while heaptrack saw under 19 MB of heap
/// in use), and served them in no particular order.
#[derive(Debug, Clone)]
pub struct Database {
    inner: Arc<Inner>,
    turns: Arc<tokio::sync::Semaphore>,
    /// The gate of reads: one turn per SQLite reader connection, so that reads wait only for
    /// each other, never for a write (on PostgreSQL, one per pooled connection, shared with
    /// writes by the pool itself).
    reads: Arc<tokio::sync::Semaphore>,
    /// The key of the office's keyed records, handed to every transaction.
    record_key: Option<Arc<Zeroizing<[u8; 32]>>>,
}

#[derive(Debug)]
enum Inner {
    Sqlite {
        /// The one connection that writes (and reads, when the file has no reader
        /// connections: an in-memory database).
        writer: Mutex<Connection>,
        /// Read-only connections to the same file: in WAL mode they read the last committed
        /// state while the writer writes, so reads never wait behind a write transaction.
        readers: Vec<Mutex<Connection>>,
        /// Which reader the next read takes first.
        next: std::sync::atomic::AtomicUsize,
    },
    Postgres(Box<PgPool>, PgUrl),
}

/// How many read-only connections a SQLite office keeps beside its writer.
const SQLITE_READERS: usize = 2;

/// Opens a read-only connection to the SQLite file `path` (already opened and migrated by the
/// writer, in WAL mode).
fn sqlite_reader(path: &str) -> Result<Connection, SqlError> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.pragma_update(None, "query_only", true)?;
    Ok(conn)
}

impl Database {
    /// Opens the configured database and brings its schema up to date (SQLite:
    /// [`super::open_sqlite`]; PostgreSQL: [`pg_migrate`], then a pool of
    /// [`DEFAULT_PG_CONNECTIONS`]).
    pub fn open(config: &DatabaseConfig) -> Result<Database, ServerError> {
        Database::open_with(config, DEFAULT_PG_CONNECTIONS)
    }

    /// Like [`Database::open`], with at most `pg_connections` pooled connections on
    /// PostgreSQL (ignored for SQLite, which has one connection).
    pub fn open_with(
        config: &DatabaseConfig,
        pg_connections: usize,
    ) -> Result<Database, ServerError> {
        match config {
            DatabaseConfig::Sqlite(path) => Ok(Database::from_sqlite(super::open_sqlite(path)?)),
            DatabaseConfig::Postgres(url) => Database::open_postgres(url, pg_connections.max(1)),
        }
    }

    /// Wraps an open (and migrated) SQLite connection, the writer, with [`SQLITE_READERS`]
    /// read-only connections to the same file beside it (none for an in-memory database, or
    /// when they cannot be opened: reads then share the writer's connection).
    pub fn from_sqlite(conn: Connection) -> Database {
        let readers: Vec<Mutex<Connection>> = match conn.path().filter(|p| !p.is_empty()) {
            Some(path) => (0..SQLITE_READERS)
                .map_while(|_| sqlite_reader(path).ok())
                .map(Mutex::new)
                .collect(),
            None => Vec::new(),
        };
        Database {
            reads: Arc::new(tokio::sync::Semaphore::new(readers.len().max(1))),
            inner: Arc::new(Inner::Sqlite {
                writer: Mutex::new(conn),
                readers,
                next: std::sync::atomic::AtomicUsize::new(0),
            }),
            turns: Arc::new(tokio::sync::Semaphore::new(1)),
            record_key: None,
        }
    }

    /// Connects to PostgreSQL, migrates it (serialised with other instances starting at the
    /// same time) and keeps a pool of at most `max_connections`.
    pub fn open_postgres(url: &PgUrl, max_connections: usize) -> Result<Database, ServerError> {
        let pool = PgPool::new(url.clone(), max_connections, POOL_WAIT);
        let mut client = pool.connect()?;
        pg_migrate(&mut client)?;
        drop(client);
        Ok(Database {
            inner: Arc::new(Inner::Postgres(Box::new(pool), url.clone())),
            turns: Arc::new(tokio::sync::Semaphore::new(max_connections)),
            reads: Arc::new(tokio::sync::Semaphore::new(max_connections)),
            record_key: None,
        })
    }

    /// This database with the key that the office's keyed records (the audit chain) are
    /// authenticated with: every transaction carries it ([`Sql::record_key`]). It is derived
    /// from `server.key`, which the database never holds.
    pub fn with_record_key(mut self, key: Zeroizing<[u8; 32]>) -> Database {
        self.record_key = Some(Arc::new(key));
        self
    }

    /// Runs `f` on `tx`, handing it the record key if this database has one and counting its
    /// statements' time ([`Keyed`]).
    /// `order` says whether the transaction holds the commit order already (see
    /// [`Sql::enter_commit_order`]).
    fn keyed<T>(&self, tx: &mut dyn Sql, order: Order, f: impl FnOnce(&mut dyn Sql) -> T) -> T {
        let key = self.record_key.as_deref().map(|k| &**k);
        f(&mut Keyed {
            inner: tx,
            key,
            order,
        })
    }

    /// Which backend this is.
    pub fn backend(&self) -> Backend {
        match &*self.inner {
            Inner::Sqlite { .. } => Backend::Sqlite,
            Inner::Postgres(..) => Backend::Postgres,
        }
    }

    /// The PostgreSQL database's URL (for the notification listener), `None` on SQLite.
    pub fn pg_url(&self) -> Option<&PgUrl> {
        match &*self.inner {
            Inner::Sqlite { .. } => None,
            Inner::Postgres(_, url) => Some(url),
        }
    }

    /// Runs `f` in a write transaction holding the global write lock (see [`Database`]);
    /// commits if it returns `Ok`, rolls back if it returns `Err` or panics. Blocking: call it
    /// on the blocking pool ([`Database::call_write`]) or a plain thread, never in async code.
    pub fn write<T, E>(&self, f: impl FnOnce(&mut dyn Sql) -> Result<T, E>) -> Result<T, E>
    where
        E: From<SqlError>,
    {
        self.write_in(&WriteScope::Exclusive, f)
    }

    /// [`Database::write`] in `scope`: on PostgreSQL, a [`WriteScope::Sync`] transaction takes
    /// the global write lock shared and its own keys exclusively (see [`Database`]).
    pub fn write_in<T, E>(
        &self,
        scope: &WriteScope,
        f: impl FnOnce(&mut dyn Sql) -> Result<T, E>,
    ) -> Result<T, E>
    where
        E: From<SqlError>,
    {
        let out = self.write_locked(scope, f);
        // The global lock (or the commit order) is let go with the transaction's end.
        phases::release();
        out
    }

    fn write_locked<T, E>(
        &self,
        scope: &WriteScope,
        f: impl FnOnce(&mut dyn Sql) -> Result<T, E>,
    ) -> Result<T, E>
    where
        E: From<SqlError>,
    {
        match &*self.inner {
            Inner::Sqlite { writer, .. } => {
                let mut conn = lock_sqlite(writer)?;
                let mut tx = conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .map_err(SqlError::from)?;
                // One writer at a time, whatever the scope.
                phases::hold();
                let out = self.keyed(&mut tx, Order::Held, f)?;
                phases::time(Phase::Commit, || tx.commit()).map_err(SqlError::from)?;
                Ok(out)
            }
            Inner::Postgres(pool, _) => {
                let mut pooled = pool.get()?;
                let (client, prepared) = pooled.parts()?;
                let mut tx = client
                    .build_transaction()
                    .isolation_level(IsolationLevel::ReadCommitted)
                    .start()
                    .map_err(SqlError::from)?;
                tx.batch_execute(&format!("SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
                    .map_err(SqlError::from)?;
                let mut tx = super::pg::PgTransaction::new(tx, prepared);
                let order = match scope {
                    WriteScope::Exclusive => {
                        phases::time(Phase::Lock, || {
                            tx.execute(
                                "SELECT pg_advisory_xact_lock(?1)",
                                crate::sql_params![WRITE_LOCK_KEY],
                            )
                        })?;
                        phases::hold();
                        Order::Held
                    }
                    WriteScope::Sync { keys } => {
                        let mut keys = keys.clone();
                        keys.sort_unstable();
                        keys.dedup();
                        phases::time(Phase::Lock, || {
                            tx.execute(
                                "SELECT pg_advisory_xact_lock_shared(?1)",
                                crate::sql_params![WRITE_LOCK_KEY],
                            )?;
                            for LockKey(space, key) in keys {
                                tx.execute(
                                    "SELECT pg_advisory_xact_lock(CAST(CAST(?1 AS BIGINT) AS INTEGER),
                                         CAST(CAST(?2 AS BIGINT) AS INTEGER))",
                                    crate::sql_params![i64::from(space), i64::from(key)],
                                )?;
                            }
                            Ok::<_, SqlError>(())
                        })?;
                        Order::Pending
                    }
                };
                let out = self.keyed(&mut tx, order, f)?;
                // A commit that fails on a broken connection has an unknown outcome: the error
                // reaches the caller, which must not acknowledge the write.
                phases::time(Phase::Commit, || tx.commit()).map_err(SqlError::from)?;
                Ok(out)
            }
        }
    }

    /// Runs `f` in a consistent read-only snapshot, without the write lock. A write inside
    /// fails on both backends. Blocking, like [`Database::write`].
    pub fn read<T, E>(&self, f: impl FnOnce(&mut dyn Sql) -> Result<T, E>) -> Result<T, E>
    where
        E: From<SqlError>,
    {
        match &*self.inner {
            Inner::Sqlite { readers, next, .. } if !readers.is_empty() => {
                // Any free reader (the read gate lets in no more reads than readers), starting
                // from the next in turn.
                let first = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let mut conn = (0..readers.len())
                    .find_map(|i| readers[(first + i) % readers.len()].try_lock().ok())
                    .map(Ok)
                    .unwrap_or_else(|| lock_reader(&readers[first % readers.len()]))?;
                let mut tx = conn.transaction().map_err(SqlError::from)?;
                let out = self.keyed(&mut tx, Order::Held, f)?;
                tx.commit().map_err(SqlError::from)?;
                Ok(out)
            }
            Inner::Sqlite { writer, .. } => {
                let mut conn = lock_sqlite(writer)?;
                conn.pragma_update(None, "query_only", true)
                    .map_err(SqlError::from)?;
                let result = (|| {
                    let mut tx = conn.transaction().map_err(SqlError::from)?;
                    let out = self.keyed(&mut tx, Order::Held, f)?;
                    tx.commit().map_err(SqlError::from)?;
                    Ok(out)
                })();
                conn.pragma_update(None, "query_only", false)
                    .map_err(SqlError::from)?;
                result
            }
            Inner::Postgres(pool, _) => {
                let mut pooled = pool.get()?;
                let (client, prepared) = pooled.parts()?;
                let tx = client
                    .build_transaction()
                    .isolation_level(IsolationLevel::RepeatableRead)
                    .read_only(true)
                    .start()
                    .map_err(SqlError::from)?;
                let mut tx = super::pg::PgTransaction::new(tx, prepared);
                let out = self.keyed(&mut tx, Order::Held, f)?;
                tx.commit().map_err(SqlError::from)?;
                Ok(out)
            }
        }
    }

    /// Waits for this request's turn at the database (see [`Database`]). Hold the permit until
    /// the blocking work is done; if the request is dropped first, its work may still finish
    /// while the next one waits on the connection.
    async fn turn(&self) -> Result<tokio::sync::SemaphorePermit<'_>, SqlError> {
        self.turns
            .acquire()
            .await
            .map_err(|_| SqlError::Pool("the database gate is closed"))
    }

    /// [`Database::write`] on tokio's blocking pool, for request handlers.
    pub async fn call_write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut dyn Sql) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<SqlError> + Send + 'static,
    {
        self.on_blocking_pool(f, Database::write).await
    }

    /// [`Database::call_write`] that also says where the time went: the wait for the turn and
    /// the transaction's tally ([`crate::storage::phases`]), given even when `f` fails.
    pub async fn call_write_timed<T, E, F>(&self, f: F) -> (Result<T, E>, Phases)
    where
        F: FnOnce(&mut dyn Sql) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<SqlError> + Send + 'static,
    {
        self.call_write_timed_in(WriteScope::Exclusive, f, |out| out)
            .await
    }

    /// [`Database::call_write_timed`] in `scope` ([`Database::write_in`]), then `committed` on
    /// what `f` returned, on the same thread at once once the transaction has committed: what
    /// must follow the commit before any other request can see the database (giving back the
    /// case documents the transaction stored, which a waiting sync of the same case takes next)
    /// does not wait for the async task to be woken.
    pub async fn call_write_timed_in<T, U, E, F, G>(
        &self,
        scope: WriteScope,
        f: F,
        committed: G,
    ) -> (Result<U, E>, Phases)
    where
        F: FnOnce(&mut dyn Sql) -> Result<T, E> + Send + 'static,
        G: FnOnce(T) -> U + Send + 'static,
        U: Send + 'static,
        E: From<SqlError> + Send + 'static,
    {
        let waiting = Instant::now();
        let turn = match self.turn().await {
            Ok(turn) => turn,
            Err(e) => return (Err(e.into()), Phases::default()),
        };
        let waited = waiting.elapsed();
        let db = self.clone();
        let ran = tokio::task::spawn_blocking(move || {
            let (out, tally) = phases::collect(|| db.write_in(&scope, f));
            (out.map(committed), tally)
        })
        .await;
        drop(turn);
        match ran {
            Ok((out, tally)) => (
                out,
                Phases {
                    turn: waited,
                    ..tally
                },
            ),
            Err(_) => (
                Err(SqlError::Pool("the database task failed").into()),
                Phases::default(),
            ),
        }
    }

    /// [`Database::read`] on tokio's blocking pool, for request handlers. On SQLite a read waits
    /// only for other reads (its own gate, one turn per reader connection), never for a
    /// write; on PostgreSQL it takes a turn like a write, one per pooled connection.
    pub async fn call_read<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut dyn Sql) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<SqlError> + Send + 'static,
    {
        match &*self.inner {
            Inner::Sqlite { readers, .. } if !readers.is_empty() => {
                let _turn = self
                    .reads
                    .acquire()
                    .await
                    .map_err(|_| SqlError::Pool("the database gate is closed"))?;
                let db = self.clone();
                tokio::task::spawn_blocking(move || db.read(f))
                    .await
                    .map_err(|_| SqlError::Pool("the database task failed"))?
            }
            _ => self.on_blocking_pool(f, Database::read).await,
        }
    }

    /// Runs `run(self, f)` on a blocking thread once this request's turn at the gate came.
    async fn on_blocking_pool<T, E, F>(
        &self,
        f: F,
        run: fn(&Database, F) -> Result<T, E>,
    ) -> Result<T, E>
    where
        F: Send + 'static,
        T: Send + 'static,
        E: From<SqlError> + Send + 'static,
    {
        let _turn = self.turn().await?;
        let db = self.clone();
        tokio::task::spawn_blocking(move || run(&db, f))
            .await
            .map_err(|_| SqlError::Pool("the database task failed"))?
    }
}

/// Locks a SQLite reader connection; one a panicking read poisoned is repaired as
/// [`lock_sqlite`] repairs the writer (its transaction rolled back).
fn lock_reader(conn: &Mutex<Connection>) -> Result<MutexGuard<'_, Connection>, SqlError> {
    match conn.lock() {
        Ok(guard) => Ok(guard),
        Err(poisoned) => {
            let guard = poisoned.into_inner();
            if !guard.is_autocommit() {
                guard.execute_batch("ROLLBACK")?;
            }
            conn.clear_poison();
            Ok(guard)
        }
    }
}

/// Locks the SQLite connection. A closure that panicked poisons the mutex, but its
/// transaction was rolled back as it unwound (rusqlite's `Transaction` drops so), so the
/// connection is repaired and used again, as a pooled PostgreSQL connection is, rather than
/// taking the whole server down: any transaction still open is rolled back and `query_only`
/// (left on by a panicking [`Database::read`]) is turned off.
fn lock_sqlite(conn: &Mutex<Connection>) -> Result<MutexGuard<'_, Connection>, SqlError> {
    match conn.lock() {
        Ok(guard) => Ok(guard),
        Err(poisoned) => {
            let guard = poisoned.into_inner();
            if !guard.is_autocommit() {
                guard.execute_batch("ROLLBACK")?;
            }
            guard.pragma_update(None, "query_only", false)?;
            conn.clear_poison();
            tracing::warn!("a database task panicked; its transaction was rolled back");
            Ok(guard)
        }
    }
}
