//! [`Sql`] over the blocking `postgres` client ([`postgres::Client`] and
//! [`postgres::Transaction`]), the conversions between [`Param`]/[`Value`] and PostgreSQL's
//! types, safe errors, and [`PgPool`], a small bounded pool of connections.
//!
//! The blocking client runs a small runtime of its own inside each call, so it must only be
//! used on a thread that is not running async code: tokio's blocking pool
//! ([`super::Database::call_write`]), a plain thread, or start-up code.
//!
//! Each pooled connection keeps the statements it has prepared ([`Prepared`]): a statement given
//! as text costs two round trips to the server (prepare, then execute) and a parse and plan
//! there, a prepared one a single round trip. Inside a write transaction, much of it under the
//! commit order that every writer shares, that is most of a sync's time.
//!
//! Connections are opened by [`PgUrl::connect`], with or without TLS as the URL's `sslmode`
//! says. A failed TLS handshake becomes [`SqlError::Tls`] (rustls's reason, say a certificate
//! not signed by the configured CA or not naming the host), a server that refuses TLS
//! [`SqlError::TlsNotOffered`].

use std::collections::HashMap;
use std::error::Error as StdError;
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use postgres::types::{FromSql, IsNull, ToSql, Type, to_sql_checked};
use postgres::{Client, GenericClient, Statement, Transaction};

use super::{Backend, Param, PgUrl, Row, Sql, SqlError, Value, to_postgres_placeholders};

type BoxError = Box<dyn StdError + Sync + Send>;

/// A fixed message as a conversion error (never a value: values may be personal data).
fn conversion(msg: &'static str) -> BoxError {
    msg.into()
}

impl ToSql for Param<'_> {
    /// Checks the actual parameter type PostgreSQL inferred: NULL binds to any type; an
    /// integer to `BIGINT` (or a narrower integer it fits, or a boolean as 0/1); text to the
    /// text types; bytes to `BYTEA`. Anything else is an error, not a silent conversion.
    fn to_sql(&self, ty: &Type, out: &mut bytes::BytesMut) -> Result<IsNull, BoxError> {
        match self {
            Param::Null => Ok(IsNull::Yes),
            Param::Int(i) => match *ty {
                Type::INT8 => i.to_sql(ty, out),
                Type::INT4 => i32::try_from(*i)
                    .map_err(|_| conversion("integer out of range for INTEGER"))?
                    .to_sql(ty, out),
                Type::INT2 => i16::try_from(*i)
                    .map_err(|_| conversion("integer out of range for SMALLINT"))?
                    .to_sql(ty, out),
                Type::BOOL => match i {
                    0 => false.to_sql(ty, out),
                    1 => true.to_sql(ty, out),
                    _ => Err(conversion("a boolean parameter must be 0 or 1")),
                },
                _ => Err(conversion(
                    "an integer parameter in a place of another type",
                )),
            },
            Param::Text(t) => match *ty {
                Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => {
                    t.to_sql(ty, out)
                }
                _ => Err(conversion("a text parameter in a place of another type")),
            },
            Param::Blob(b) => match *ty {
                Type::BYTEA => b.to_sql(ty, out),
                _ => Err(conversion("a blob parameter in a place of another type")),
            },
        }
    }

    /// Every type: NULL binds to a column of any type, and [`ToSql::to_sql`] checks the others.
    fn accepts(_ty: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

impl<'a> FromSql<'a> for Value {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Value, BoxError> {
        Ok(match *ty {
            Type::INT8 => Value::Int(i64::from_sql(ty, raw)?),
            Type::INT4 => Value::Int(i64::from(i32::from_sql(ty, raw)?)),
            Type::INT2 => Value::Int(i64::from(i16::from_sql(ty, raw)?)),
            Type::BOOL => Value::Int(i64::from(bool::from_sql(ty, raw)?)),
            Type::BYTEA => Value::Blob(<Vec<u8>>::from_sql(ty, raw)?),
            _ => Value::Text(String::from_sql(ty, raw)?),
        })
    }

    fn from_sql_null(_ty: &Type) -> Result<Value, BoxError> {
        Ok(Value::Null)
    }

    fn accepts(ty: &Type) -> bool {
        READABLE.contains(ty)
    }
}

/// The PostgreSQL types a [`Value`] reads.
const READABLE: &[Type] = &[
    Type::INT8,
    Type::INT4,
    Type::INT2,
    Type::BOOL,
    Type::BYTEA,
    Type::TEXT,
    Type::VARCHAR,
    Type::BPCHAR,
    Type::NAME,
    Type::UNKNOWN,
];

/// SQLSTATE classes whose message comes from our SQL text or our own triggers, not from row
/// data: 42 (syntax error or access rule violation: names of tables, columns, types) and P0
/// (PL/pgSQL `RAISE`, such as "audit_log is append-only"). Other messages may quote values
/// ("invalid input syntax for type bigint: \"...\""), so only names are kept for them.
fn message_is_safe(code: &str) -> bool {
    code.starts_with("42") || code.starts_with("P0")
}

impl From<postgres::Error> for SqlError {
    fn from(e: postgres::Error) -> SqlError {
        if let Some(db) = e.as_db_error() {
            let code = db.code().code().to_owned();
            let mut info = if message_is_safe(&code) {
                db.message().to_owned()
            } else {
                format!("{:?}", db.code())
                    .trim_start_matches("SqlState(")
                    .trim_end_matches(')')
                    .to_owned()
            };
            for (what, name) in [
                ("table", db.table()),
                ("column", db.column()),
                ("constraint", db.constraint()),
            ] {
                if let Some(name) = name {
                    info.push_str(&format!(", {what} {name}"));
                }
            }
            return SqlError::Postgres { code, info };
        }
        if let Some(tls) = tls_failure(&e) {
            return tls;
        }
        // Outside the database: connection and I/O errors (reported as SQLSTATE 08006,
        // connection failure), and our own fixed conversion messages ("-----"). Their text
        // holds no row data and no part of the connection URL.
        let io = StdError::source(&e).is_some_and(|s| s.is::<std::io::Error>());
        if e.is_closed() || io {
            let info = if e.is_closed() {
                "the connection is closed".to_owned()
            } else {
                e.to_string()
            };
            return SqlError::Postgres {
                code: "08006".to_owned(),
                info,
            };
        }
        SqlError::Postgres {
            code: "-----".to_owned(),
            info: e.to_string(),
        }
    }
}

/// The TLS failure behind a connection error, if it is one. rustls's error reaches us inside
/// the `io::Error` of the TLS stream (whose own `source` skips it, so it is unwrapped with
/// `get_ref`); a server that answers the TLS request with "no" is reported by the client with
/// a fixed text.
fn tls_failure(e: &postgres::Error) -> Option<SqlError> {
    let mut source = StdError::source(e);
    while let Some(s) = source {
        if let Some(tls) = s.downcast_ref::<rustls::Error>() {
            return Some(SqlError::Tls(tls.clone()));
        }
        if let Some(tls) = s
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            return Some(SqlError::Tls(tls.clone()));
        }
        if s.to_string() == "server does not support TLS" {
            return Some(SqlError::TlsNotOffered);
        }
        source = s.source();
    }
    None
}

fn pg_params<'p>(params: &'p [Param<'_>]) -> Vec<&'p (dyn ToSql + Sync)> {
    params.iter().map(|p| p as &(dyn ToSql + Sync)).collect()
}

fn read_row(row: &postgres::Row) -> Result<Row, SqlError> {
    let mut values = Vec::with_capacity(row.len());
    for (index, column) in row.columns().iter().enumerate() {
        if !READABLE.contains(column.type_()) {
            return Err(SqlError::UnsupportedType {
                index,
                type_name: column.type_().name().to_owned(),
            });
        }
        values.push(row.try_get::<_, Value>(index)?);
    }
    Ok(Row::new(values))
}

fn execute<C: GenericClient>(c: &mut C, sql: &str, params: &[Param<'_>]) -> Result<u64, SqlError> {
    let sql = to_postgres_placeholders(sql)?;
    Ok(c.execute(sql.as_ref(), &pg_params(params))?)
}

fn query<C: GenericClient>(
    c: &mut C,
    sql: &str,
    params: &[Param<'_>],
    at_most: Option<usize>,
) -> Result<Vec<Row>, SqlError> {
    let sql = to_postgres_placeholders(sql)?;
    read_rows(c, sql.as_ref(), params, at_most)
}

/// Runs a query (text or prepared) and reads its rows, at most `at_most` of them.
fn read_rows<C: GenericClient, S: postgres::ToStatement + ?Sized>(
    c: &mut C,
    statement: &S,
    params: &[Param<'_>],
    at_most: Option<usize>,
) -> Result<Vec<Row>, SqlError> {
    use postgres::fallible_iterator::FallibleIterator;
    let mut rows = c.query_raw(statement, pg_params(params))?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        if at_most.is_some_and(|n| out.len() >= n) {
            return Err(SqlError::TooManyRows);
        }
        out.push(read_row(&row)?);
    }
    Ok(out)
}

/// Most statements one connection keeps prepared: more than the server's code has distinct
/// statements, so that text made at run time cannot grow the cache without bound.
const MAX_PREPARED: usize = 512;

/// The statements a connection has prepared, by their text (with PostgreSQL's placeholders).
/// Prepared statements belong to the session, not to a transaction: one that failed or rolled
/// back leaves them usable.
#[derive(Default)]
pub struct Prepared {
    statements: HashMap<String, Statement>,
}

impl Prepared {
    /// The prepared statement for `sql`, prepared on `c` the first time.
    fn get<C: GenericClient>(&mut self, c: &mut C, sql: &str) -> Result<Statement, SqlError> {
        let sql = to_postgres_placeholders(sql)?;
        if let Some(statement) = self.statements.get(sql.as_ref()) {
            return Ok(statement.clone());
        }
        let statement = c.prepare(sql.as_ref())?;
        if self.statements.len() < MAX_PREPARED {
            self.statements.insert(sql.into_owned(), statement.clone());
        }
        Ok(statement)
    }

    /// Forgets the statement for `sql` (after it failed: the table it reads may have changed
    /// under it, and it is prepared afresh next time).
    fn forget(&mut self, sql: &str) {
        if let Ok(sql) = to_postgres_placeholders(sql) {
            self.statements.remove(sql.as_ref());
        }
    }
}

/// A transaction on a pooled connection that runs its statements prepared ([`Prepared`]).
pub struct PgTransaction<'a> {
    tx: Transaction<'a>,
    prepared: &'a mut Prepared,
}

impl<'a> PgTransaction<'a> {
    /// `tx`, running its statements through the connection's `prepared` statements.
    pub fn new(tx: Transaction<'a>, prepared: &'a mut Prepared) -> PgTransaction<'a> {
        PgTransaction { tx, prepared }
    }

    /// Commits the transaction.
    pub fn commit(self) -> Result<(), postgres::Error> {
        self.tx.commit()
    }

    fn run<T>(
        &mut self,
        sql: &str,
        f: impl FnOnce(&mut Transaction<'a>, &Statement) -> Result<T, SqlError>,
    ) -> Result<T, SqlError> {
        let statement = self.prepared.get(&mut self.tx, sql)?;
        let out = f(&mut self.tx, &statement);
        if out.is_err() {
            self.prepared.forget(sql);
        }
        out
    }
}

impl Sql for PgTransaction<'_> {
    fn backend(&self) -> Backend {
        Backend::Postgres
    }

    fn execute(&mut self, sql: &str, params: &[Param<'_>]) -> Result<u64, SqlError> {
        self.run(sql, |tx, statement| {
            Ok(tx.execute(statement, &pg_params(params))?)
        })
    }

    fn query_all(&mut self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Row>, SqlError> {
        self.run(sql, |tx, statement| read_rows(tx, statement, params, None))
    }

    fn query_opt(&mut self, sql: &str, params: &[Param<'_>]) -> Result<Option<Row>, SqlError> {
        self.run(sql, |tx, statement| {
            Ok(read_rows(tx, statement, params, Some(1))?
                .into_iter()
                .next())
        })
    }

    fn execute_batch(&mut self, sql: &str) -> Result<(), SqlError> {
        Ok(self.tx.batch_execute(sql)?)
    }
}

macro_rules! impl_sql_for_pg {
    ($ty:ty) => {
        impl Sql for $ty {
            fn backend(&self) -> Backend {
                Backend::Postgres
            }

            fn execute(&mut self, sql: &str, params: &[Param<'_>]) -> Result<u64, SqlError> {
                execute(self, sql, params)
            }

            fn query_all(&mut self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Row>, SqlError> {
                query(self, sql, params, None)
            }

            fn query_opt(
                &mut self,
                sql: &str,
                params: &[Param<'_>],
            ) -> Result<Option<Row>, SqlError> {
                Ok(query(self, sql, params, Some(1))?.into_iter().next())
            }

            fn execute_batch(&mut self, sql: &str) -> Result<(), SqlError> {
                Ok(GenericClient::batch_execute(self, sql)?)
            }
        }
    };
}

impl_sql_for_pg!(Client);
impl_sql_for_pg!(Transaction<'_>);

/// A small bounded pool of PostgreSQL connections: at most `max` open, idle ones reused,
/// broken ones dropped. Waiting for a free connection is bounded by a timeout, after which the
/// caller gets [`SqlError::Pool`] (and the request a 503) rather than hanging.
pub struct PgPool {
    url: PgUrl,
    max: usize,
    wait: Duration,
    state: Mutex<PoolState>,
    freed: Condvar,
}

struct PoolState {
    idle: Vec<(Client, Prepared)>,
    open: usize,
}

impl std::fmt::Debug for PgPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // PgUrl's Debug redacts the password.
        f.debug_struct("PgPool")
            .field("url", &self.url)
            .field("max", &self.max)
            .finish_non_exhaustive()
    }
}

impl PgPool {
    /// A pool for `url` holding at most `max` (at least 1) connections; a caller waits at
    /// most `wait` for one. Connects lazily.
    pub fn new(url: PgUrl, max: usize, wait: Duration) -> PgPool {
        PgPool {
            url,
            max: max.max(1),
            wait,
            state: Mutex::new(PoolState {
                idle: Vec::new(),
                open: 0,
            }),
            freed: Condvar::new(),
        }
    }

    /// Opens one connection outside the pool (for the migration runner, whose session-level
    /// advisory lock must end with its connection). A session left idle inside a transaction
    /// for a minute (a hung instance holding the write lock) is ended by the database.
    pub fn connect(&self) -> Result<Client, SqlError> {
        let mut client = self.url.connect()?;
        client.batch_execute("SET idle_in_transaction_session_timeout = '60s'")?;
        Ok(client)
    }

    /// A connection from the pool, returned to it when the guard drops.
    pub fn get(&self) -> Result<PooledClient<'_>, SqlError> {
        let deadline = Instant::now() + self.wait;
        let mut state = self
            .state
            .lock()
            .map_err(|_| SqlError::Pool("pool lock poisoned"))?;
        loop {
            while let Some(client) = state.idle.pop() {
                if client.0.is_closed() {
                    state.open = state.open.saturating_sub(1);
                    continue;
                }
                return Ok(PooledClient {
                    pool: self,
                    client: Some(client),
                });
            }
            if state.open < self.max {
                state.open += 1;
                drop(state);
                return match self.connect() {
                    Ok(client) => Ok(PooledClient {
                        pool: self,
                        client: Some((client, Prepared::default())),
                    }),
                    Err(e) => {
                        self.release_slot();
                        Err(e)
                    }
                };
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(SqlError::Pool("no database connection became free in time"));
            }
            state = self
                .freed
                .wait_timeout(state, deadline - now)
                .map_err(|_| SqlError::Pool("pool lock poisoned"))?
                .0;
        }
    }

    fn release_slot(&self) {
        if let Ok(mut state) = self.state.lock() {
            state.open = state.open.saturating_sub(1);
        }
        self.freed.notify_one();
    }

    fn put_back(&self, client: (Client, Prepared)) {
        if client.0.is_closed() {
            self.release_slot();
            return;
        }
        if let Ok(mut state) = self.state.lock() {
            state.idle.push(client);
        }
        self.freed.notify_one();
    }
}

/// A connection borrowed from a [`PgPool`]; goes back to it on drop (or is closed if broken).
pub struct PooledClient<'a> {
    pool: &'a PgPool,
    client: Option<(Client, Prepared)>,
}

impl PooledClient<'_> {
    /// The connection.
    pub fn client(&mut self) -> Result<&mut Client, SqlError> {
        Ok(self.parts()?.0)
    }

    /// The connection and the statements prepared on it, for a [`PgTransaction`].
    pub fn parts(&mut self) -> Result<(&mut Client, &mut Prepared), SqlError> {
        self.client
            .as_mut()
            .map(|(client, prepared)| (client, prepared))
            .ok_or(SqlError::Pool("connection already returned"))
    }
}

impl Drop for PooledClient<'_> {
    fn drop(&mut self) {
        // A transaction on it was rolled back when it dropped (also on a panic); if that
        // failed, the client reports itself closed and is not reused.
        if let Some(client) = self.client.take() {
            self.pool.put_back(client);
        }
    }
}
