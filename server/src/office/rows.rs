//! Reading stored values back as domain values: a malformed one is a column of the wrong type,
//! never a panic.

use fieldcase_core::protocol::Role;
use uuid::Uuid;

use crate::error::SqlError;

/// A stored id read back as a UUID; a malformed one is a column of the wrong type.
pub(crate) fn parse_uuid(s: &str) -> Result<Uuid, SqlError> {
    Uuid::try_parse(s).map_err(|_| SqlError::ColumnType {
        index: 0,
        expected: "a UUID",
        found: "other text",
    })
}

/// A stored role read back; an unknown one is a column of the wrong type.
pub(crate) fn parse_role(s: &str) -> Result<Role, SqlError> {
    Role::parse(s).ok_or(SqlError::ColumnType {
        index: 0,
        expected: "a role",
        found: "other text",
    })
}
