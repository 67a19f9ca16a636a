//! `POST /v1/sync`: one round of the sync protocol for an authenticated device.
//!
//! The request is decoded with every bound checked before any work; the automerge work runs on
//! the blocking pool inside one immediate SQLite transaction, so a request that fails changes
//! nothing and a bad upload from one device never touches another device's data.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use fieldcase_core::CoreError;
use fieldcase_core::ids::{DeviceId, UserId};
use fieldcase_core::protocol::{MAX_SYNC_BODY, error_code};
use fieldcase_core::sync::hub::handle_sync;
use fieldcase_core::sync::{SyncError, SyncRequest};

use crate::auth::Authenticated;
use crate::cases::SqliteHub;
use crate::error::AppError;
use crate::state::AppState;

/// Path of the sync endpoint.
pub const PATH_SYNC: &str = fieldcase_core::device::PATH_SYNC;

fn refused(e: SyncError) -> AppError {
    match e {
        SyncError::TooLarge(_) => {
            AppError::too_large(fieldcase_core::sync::messages::MAX_MESSAGE_BYTES)
        }
        SyncError::UnsupportedVersion(v) => AppError::new(
            StatusCode::BAD_REQUEST,
            error_code::UNSUPPORTED_PROTOCOL_VERSION,
            format!(
                "sync protocol version {v} is not supported; this server speaks {}",
                fieldcase_core::sync::PROTOCOL_VERSION
            ),
        ),
        SyncError::Malformed(why) => AppError::malformed(format!("malformed sync request: {why}")),
        other => AppError::malformed(other.to_string()),
    }
}

/// Handles one sync round.
pub async fn sync(
    State(state): State<AppState>,
    auth: Authenticated<{ MAX_SYNC_BODY }>,
) -> Result<Response, AppError> {
    let request = SyncRequest::decode(&auth.body).map_err(refused)?;
    let device = DeviceId::from_uuid(auth.device_id);
    let user = UserId::from_uuid(auth.user_id);
    let vault = state.vault().clone();
    let now = state.now();
    let response = state
        .db()
        .call(move |conn| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let mut hub = SqliteHub {
                conn: &tx,
                vault: &vault,
                now,
            };
            match handle_sync(&mut hub, device, user, &request, &vault.actor) {
                Ok(response) => {
                    tx.commit()?;
                    Ok(response)
                }
                Err(CoreError::Document(why)) => Err(AppError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    error_code::BAD_CHANGES,
                    format!("the uploaded changes do not apply: {why}; nothing was stored"),
                )),
                Err(e) => Err(AppError::internal(&e)),
            }
        })
        .await?;
    let body = response.encode().map_err(|e| AppError::internal(&e))?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}
