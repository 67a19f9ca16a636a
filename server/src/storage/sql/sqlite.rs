//! [`Sql`] over rusqlite: [`rusqlite::Connection`] and [`rusqlite::Transaction`]. The portable
//! dialect is SQLite's own, so the text runs as it is; statements go through rusqlite's
//! prepared-statement cache.

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, Transaction};

use super::{Backend, Param, Row, Sql, SqlError, Value};

impl rusqlite::ToSql for Param<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self {
            Param::Null => ValueRef::Null,
            Param::Int(i) => ValueRef::Integer(*i),
            Param::Text(t) => ValueRef::Text(t.as_bytes()),
            Param::Blob(b) => ValueRef::Blob(b),
        }))
    }
}

fn value_of(v: ValueRef<'_>, index: usize) -> Result<Value, SqlError> {
    Ok(match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Int(i),
        ValueRef::Text(t) => Value::Text(
            std::str::from_utf8(t)
                .map_err(|_| SqlError::ColumnType {
                    index,
                    expected: "UTF-8 text",
                    found: "text that is not UTF-8",
                })?
                .to_owned(),
        ),
        ValueRef::Blob(b) => Value::Blob(b.to_vec()),
        // No server table stores a REAL (all are STRICT without REAL columns).
        ValueRef::Real(_) => {
            return Err(SqlError::UnsupportedType {
                index,
                type_name: "REAL".to_owned(),
            });
        }
    })
}

fn params_of<'p>(
    params: &'p [Param<'_>],
) -> rusqlite::ParamsFromIter<std::slice::Iter<'p, Param<'p>>> {
    rusqlite::params_from_iter(params.iter())
}

fn execute(conn: &Connection, sql: &str, params: &[Param<'_>]) -> Result<u64, SqlError> {
    let mut stmt = conn.prepare_cached(sql)?;
    let changed = if stmt.column_count() == 0 {
        stmt.execute(params_of(params))?
    } else {
        // `RETURNING`: rusqlite's `execute` refuses statements that return rows.
        let mut rows = stmt.query(params_of(params))?;
        while rows.next()?.is_some() {}
        drop(rows);
        usize::try_from(conn.changes()).unwrap_or(usize::MAX)
    };
    Ok(u64::try_from(changed).unwrap_or(u64::MAX))
}

fn read_row(row: &rusqlite::Row<'_>, columns: usize) -> Result<Row, SqlError> {
    let mut values = Vec::with_capacity(columns);
    for index in 0..columns {
        values.push(value_of(row.get_ref(index)?, index)?);
    }
    Ok(Row::new(values))
}

fn query(
    conn: &Connection,
    sql: &str,
    params: &[Param<'_>],
    at_most: Option<usize>,
) -> Result<Vec<Row>, SqlError> {
    let mut stmt = conn.prepare_cached(sql)?;
    let columns = stmt.column_count();
    let mut rows = stmt.query(params_of(params))?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        if at_most.is_some_and(|n| out.len() >= n) {
            return Err(SqlError::TooManyRows);
        }
        out.push(read_row(row, columns)?);
    }
    Ok(out)
}

fn query_opt(conn: &Connection, sql: &str, params: &[Param<'_>]) -> Result<Option<Row>, SqlError> {
    Ok(query(conn, sql, params, Some(1))?.into_iter().next())
}

/// The same [`Sql`] for a connection, a transaction and a shared connection (code that holds
/// `&Connection` passes `&mut &*conn`): rusqlite itself needs no `&mut`, and a transaction
/// derefs to its connection.
macro_rules! sql_over_connection {
    ($($ty:ty),+) => {$(
        impl Sql for $ty {
            fn backend(&self) -> Backend {
                Backend::Sqlite
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
                query_opt(self, sql, params)
            }

            fn execute_batch(&mut self, sql: &str) -> Result<(), SqlError> {
                Ok(Connection::execute_batch(self, sql)?)
            }
        }
    )+};
}

sql_over_connection!(Connection, Transaction<'_>, &Connection);
