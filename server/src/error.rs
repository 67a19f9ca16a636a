//! Error types: [`ServerError`] for starting and administering the server, [`AppError`] for
//! answers to HTTP requests (typed JSON, no internals).

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use fieldcase_core::protocol::{ErrorBody, error_code};

/// Failures of the server outside a request: start-up, storage, keys, TLS, administration.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// File-system or socket failure.
    #[error("i/o error on {what}: {source}")]
    Io {
        /// What was being done (never a secret).
        what: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// SQLite failure.
    #[error("database error: {0}")]
    Db(#[from] rusqlite::Error),
    /// Failure of the SQL facade over either backend ([`crate::sql`]; no row data, no URL).
    #[error("database error: {0}")]
    Sql(#[from] crate::sql::SqlError),
    /// The database was written by a newer server.
    #[error("database schema version {found} is newer than this server knows ({known})")]
    SchemaTooNew {
        /// Version in the file.
        found: i64,
        /// Highest version this build knows.
        known: i64,
    },
    /// The key file is malformed.
    #[error("server key file is malformed: {0}")]
    KeyFile(&'static str),
    /// The TLS certificate or key could not be made or loaded.
    #[error("tls setup failed: {0}")]
    Tls(String),
    /// The configuration is invalid.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// No such user (the name is not repeated: it is personal data).
    #[error("no user with that name")]
    UnknownUser,
    /// A user with this name exists already.
    #[error("a user with this name exists already")]
    DuplicateUser,
    /// The user is deactivated.
    #[error("the user is deactivated")]
    UserInactive,
    /// No quarantined upload with that id.
    #[error("no quarantined upload with that id")]
    UnknownQuarantine,
    /// The quarantined upload was already released or discarded.
    #[error("that quarantined upload was already decided")]
    QuarantineDecided,
    /// No case with that id.
    #[error("no case with that id")]
    UnknownCase,
    /// A core operation failed (validation, document, encryption).
    #[error("{0}")]
    Core(#[from] fieldcase_core::CoreError),
    /// A worker thread or task failed.
    #[error("internal failure: {0}")]
    Internal(&'static str),
    /// No device with that id.
    #[error("no device with that id")]
    UnknownDevice,
    /// The field holds no conflict to resolve (someone may have resolved it already).
    #[error("that field holds no conflict (it may have been resolved already)")]
    NoConflict,
    /// The change would leave no active admin.
    #[error("the last active admin cannot lose the admin role")]
    LastAdmin,
}

impl ServerError {
    /// Wraps an I/O error with a description of what was being done.
    pub fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ServerError {
        let what = what.into();
        move |source| ServerError::Io { what, source }
    }
}

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
/// had within the lock timeout), 25006 (read-only transaction on a standby) and a full pool
/// are answered as "try again later".
fn sql_fault(e: &crate::sql::SqlError) -> Option<AppError> {
    use crate::sql::SqlError;
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
        SqlError::Pool(_) => unavailable,
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

impl From<crate::sql::SqlError> for AppError {
    fn from(e: crate::sql::SqlError) -> Self {
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
