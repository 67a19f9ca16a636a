//! Values in and out of the facade: [`Param`] (borrowed parameters), [`Value`] (owned column
//! values), [`Row`] and its typed getters through [`FromValue`].

use super::SqlError;

/// A column value read from either backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// A 64-bit integer (PostgreSQL `BIGINT`, `INTEGER`, `SMALLINT`; booleans read as 0 or 1).
    Int(i64),
    /// UTF-8 text.
    Text(String),
    /// Bytes (PostgreSQL `BYTEA`).
    Blob(Vec<u8>),
}

impl Value {
    /// The name of this value's type, for errors.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "NULL",
            Value::Int(_) => "an integer",
            Value::Text(_) => "text",
            Value::Blob(_) => "a blob",
        }
    }

    /// This value as a parameter (to write back what was read).
    pub fn as_param(&self) -> Param<'_> {
        match self {
            Value::Null => Param::Null,
            Value::Int(i) => Param::Int(*i),
            Value::Text(t) => Param::Text(t),
            Value::Blob(b) => Param::Blob(b),
        }
    }
}

/// A statement parameter; borrowed, so that binding a large blob copies nothing.
///
/// `From` conversions exist for the types the server binds: `i64` (and smaller integers),
/// `bool` (stored as 0 or 1), `&str`, `&String`, `&[u8]`, `&Vec<u8>`, byte arrays and `Option`
/// of each (`None` is NULL, which binds to a column of any type).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Param<'a> {
    /// SQL NULL.
    Null,
    /// A 64-bit integer.
    Int(i64),
    /// UTF-8 text.
    Text(&'a str),
    /// Bytes.
    Blob(&'a [u8]),
}

impl From<i64> for Param<'_> {
    fn from(v: i64) -> Self {
        Param::Int(v)
    }
}

impl From<i32> for Param<'_> {
    fn from(v: i32) -> Self {
        Param::Int(i64::from(v))
    }
}

impl From<u32> for Param<'_> {
    fn from(v: u32) -> Self {
        Param::Int(i64::from(v))
    }
}

impl From<bool> for Param<'_> {
    fn from(v: bool) -> Self {
        Param::Int(i64::from(v))
    }
}

impl<'a> From<&'a str> for Param<'a> {
    fn from(v: &'a str) -> Self {
        Param::Text(v)
    }
}

impl<'a> From<&'a String> for Param<'a> {
    fn from(v: &'a String) -> Self {
        Param::Text(v)
    }
}

impl<'a> From<&'a [u8]> for Param<'a> {
    fn from(v: &'a [u8]) -> Self {
        Param::Blob(v)
    }
}

impl<'a> From<&'a Vec<u8>> for Param<'a> {
    fn from(v: &'a Vec<u8>) -> Self {
        Param::Blob(v)
    }
}

impl<'a, const N: usize> From<&'a [u8; N]> for Param<'a> {
    fn from(v: &'a [u8; N]) -> Self {
        Param::Blob(v)
    }
}

impl<'a> From<&'a Value> for Param<'a> {
    fn from(v: &'a Value) -> Self {
        v.as_param()
    }
}

impl<'a, T> From<Option<T>> for Param<'a>
where
    T: Into<Param<'a>>,
{
    fn from(v: Option<T>) -> Self {
        v.map_or(Param::Null, Into::into)
    }
}

/// Builds a `&[Param]` from expressions that convert into [`Param`]:
/// `sql_params![id.as_str(), now, doc.as_slice()]`.
#[macro_export]
macro_rules! sql_params {
    () => { &[] as &[$crate::storage::sql::Param<'_>] };
    ($($p:expr),+ $(,)?) => { &[$($crate::storage::sql::Param::from($p)),+] as &[$crate::storage::sql::Param<'_>] };
}

/// One row of a query's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    values: Vec<Value>,
}

impl Row {
    /// Wraps the values of one row.
    pub fn new(values: Vec<Value>) -> Row {
        Row { values }
    }

    /// Number of columns.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether the row has no column.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The raw value of column `index` (0-based).
    pub fn value(&self, index: usize) -> Result<&Value, SqlError> {
        self.values.get(index).ok_or(SqlError::NoColumn {
            index,
            len: self.values.len(),
        })
    }

    /// Column `index` read as `T`: `i64`, `bool` (0 or 1 only), `String`, `Vec<u8>`, [`Value`],
    /// or `Option` of one of them for a nullable column. A NULL read as a non-`Option` type, or
    /// a value of another type, is [`SqlError::ColumnType`].
    pub fn get<T: FromValue>(&self, index: usize) -> Result<T, SqlError> {
        T::from_value(index, self.value(index)?)
    }

    /// The row's values.
    pub fn into_values(self) -> Vec<Value> {
        self.values
    }
}

/// A Rust type that a column value can be read as (see [`Row::get`]).
pub trait FromValue: Sized {
    /// Reads `value`, found in column `index` (for the error).
    fn from_value(index: usize, value: &Value) -> Result<Self, SqlError>;
}

fn wrong(index: usize, expected: &'static str, found: &Value) -> SqlError {
    SqlError::ColumnType {
        index,
        expected,
        found: found.type_name(),
    }
}

impl FromValue for i64 {
    fn from_value(index: usize, value: &Value) -> Result<Self, SqlError> {
        match value {
            Value::Int(i) => Ok(*i),
            other => Err(wrong(index, "an integer", other)),
        }
    }
}

impl FromValue for bool {
    fn from_value(index: usize, value: &Value) -> Result<Self, SqlError> {
        match value {
            Value::Int(0) => Ok(false),
            Value::Int(1) => Ok(true),
            Value::Int(_) => Err(SqlError::ColumnType {
                index,
                expected: "a boolean (0 or 1)",
                found: "another integer",
            }),
            other => Err(wrong(index, "a boolean (0 or 1)", other)),
        }
    }
}

impl FromValue for String {
    fn from_value(index: usize, value: &Value) -> Result<Self, SqlError> {
        match value {
            Value::Text(t) => Ok(t.clone()),
            other => Err(wrong(index, "text", other)),
        }
    }
}

impl FromValue for Vec<u8> {
    fn from_value(index: usize, value: &Value) -> Result<Self, SqlError> {
        match value {
            Value::Blob(b) => Ok(b.clone()),
            other => Err(wrong(index, "a blob", other)),
        }
    }
}

impl FromValue for Value {
    fn from_value(_index: usize, value: &Value) -> Result<Self, SqlError> {
        Ok(value.clone())
    }
}

impl<T: FromValue> FromValue for Option<T> {
    fn from_value(index: usize, value: &Value) -> Result<Self, SqlError> {
        match value {
            Value::Null => Ok(None),
            other => T::from_value(index, other).map(Some),
        }
    }
}
