//! Answers to HTTP requests that fail: [`AppError`], a status with a machine code and a reason
//! safe to show (typed JSON, no internals); storage faults of the machine become "try again
//! later" answers (507, 503) rather than a bare 500.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use fieldcase_core::CoreError;
use fieldcase_core::protocol::{ErrorBody, error_code};

use crate::error::{ServerError, SqlError};

/// An error answer: status, machine code and human reason, rendered as
/// `{ "error": code, "reason": reason }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppError {
    /// HTTP status.
    pub status: StatusCode,
    /// One of [`error_code`].
    pub code: &'static str,
    /// Human-readable, safe to show.
    pub reason: String,
    /// With `device_revoked`: the signed order for the device to wipe itself.
    pub wipe_order: Option<fieldcase_core::protocol::WipeOrder>,
}

impl AppError {
    /// Builds an error answer.
    pub fn new(status: StatusCode, code: &'static str, reason: impl Into<String>) -> AppError {
        AppError {
            status,
            code,
            reason: reason.into(),
            wipe_order: None,
        }
    }

    /// `500 internal`; logs `detail` (which must hold no secret) and answers nothing more.
    pub fn internal(detail: &dyn std::fmt::Display) -> AppError {
        tracing::error!(error = %detail, "request failed");
        AppError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            error_code::INTERNAL,
            "internal server error",
        )
    }

    /// `400 malformed_request`.
    pub fn malformed(reason: impl Into<String>) -> AppError {
        AppError::new(
            StatusCode::BAD_REQUEST,
            error_code::MALFORMED_REQUEST,
            reason,
        )
    }

    /// `401` with a code.
    pub fn unauthorized(code: &'static str, reason: impl Into<String>) -> AppError {
        AppError::new(StatusCode::UNAUTHORIZED, code, reason)
    }

    /// `413 body_too_large`.
    pub fn too_large(limit: usize) -> AppError {
        AppError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            error_code::BODY_TOO_LARGE,
            format!("request body is larger than {limit} bytes"),
        )
    }
}

/// The answer for a storage fault of the machine (disk full, read-only or failing disk), which
/// the client should retry later, rather than a bare `500`. `None` for any other database error.
fn storage_fault(e: &rusqlite::Error) -> Option<AppError> {
    let rusqlite::Error::SqliteFailure(failure, _) = e else {
        return None;
    };
    let (status, code, reason) = match failure.code {
        rusqlite::ErrorCode::DiskFull => (
            StatusCode::INSUFFICIENT_STORAGE,
            error_code::STORAGE_FULL,
            "the server's disk is full; nothing was stored, try again later",
        ),
        rusqlite::ErrorCode::ReadOnly
        | rusqlite::ErrorCode::SystemIoFailure
        | rusqlite::ErrorCode::CannotOpen => (
            StatusCode::SERVICE_UNAVAILABLE,
            error_code::STORAGE_UNAVAILABLE,
            "the server cannot write its storage; nothing was stored, try again later",
        ),
        _ => return None,
    };
    tracing::error!(error = %e, "storage fault");
    Some(AppError::new(status, code, reason))
}

/// [`storage_fault`] for the SQL facade: SQLite's faults as above; on PostgreSQL, class 53
/// (insufficient resources: disk full, out of memory, too many connections), class 08 (the
/// connection failed), 57P0x (the database is shutting down or starting), 55P03 (a lock not
/// had within the lock timeout), 25006 (read-only transaction on a standby), a full pool and a
/// failed TLS handshake with the database (a new pooled connection) are answered as "try again
/// later".
fn sql_fault(e: &SqlError) -> Option<AppError> {
    let full = (
        StatusCode::INSUFFICIENT_STORAGE,
        error_code::STORAGE_FULL,
        "the server's disk is full; nothing was stored, try again later",
    );
    let unavailable = (
        StatusCode::SERVICE_UNAVAILABLE,
        error_code::STORAGE_UNAVAILABLE,
        "the server cannot write its storage; nothing was stored, try again later",
    );
    let (status, code, reason) = match e {
        SqlError::Sqlite(db) => return storage_fault(db),
        SqlError::Pool(_) | SqlError::Tls(_) | SqlError::TlsNotOffered => unavailable,
        SqlError::Postgres { code, .. } if code == "53100" => full,
        SqlError::Postgres { code, .. }
            if code.starts_with("53")
                || code.starts_with("08")
                || code.starts_with("57P0")
                || code == "55P03"
                || code == "25006" =>
        {
            unavailable
        }
        _ => return None,
    };
    tracing::error!(error = %e, "storage fault");
    Some(AppError::new(status, code, reason))
}

impl From<ServerError> for AppError {
    fn from(e: ServerError) -> Self {
        let fault = match &e {
            ServerError::Db(db) | ServerError::Core(fieldcase_core::CoreError::Storage(db)) => {
                storage_fault(db)
            }
            ServerError::Sql(sql) => sql_fault(sql),
            _ => None,
        };
        fault.unwrap_or_else(|| AppError::internal(&e))
    }
}

impl From<crate::error::SqlError> for AppError {
    fn from(e: crate::error::SqlError) -> Self {
        sql_fault(&e).unwrap_or_else(|| AppError::internal(&e))
    }
}

impl From<rusqlite::Error> for AppError {
    fn from(e: rusqlite::Error) -> Self {
        storage_fault(&e).unwrap_or_else(|| AppError::internal(&e))
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: self.code.to_owned(),
            reason: self.reason,
            wipe_order: self.wipe_order,
        };
        (self.status, Json(body)).into_response()
    }
}

/// The answer to a request the hub refused: a database failure core's error cannot carry as
/// such (507/503), bad changes as 422, anything else as the core error it is.
pub(crate) fn hub_refusal(e: CoreError, failure: Option<SqlError>) -> AppError {
    match (e, failure) {
        (_, Some(failure)) => AppError::from(failure),
        (CoreError::Document(why), None) => AppError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            error_code::BAD_CHANGES,
            format!("the uploaded changes do not apply: {why}; nothing was stored"),
        ),
        (e, None) => AppError::from(ServerError::Core(e)),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use super::*;
    use crate::storage::sql::{Database, DatabaseConfig, PgUrl};

    #[test]
    fn an_unreachable_database_is_a_storage_fault_not_a_bare_500() {
        let closed = PgUrl::parse("postgres://u:p@127.0.0.1:1/db").unwrap();
        let Err(err) = Database::open(&DatabaseConfig::Postgres(closed)) else {
            panic!("a closed port answered");
        };
        let answer = AppError::from(err);
        assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(answer.code, error_code::STORAGE_UNAVAILABLE);
    }
}
