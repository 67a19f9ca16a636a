//! The attachment channel for devices (wire in [`fieldcase_core::protocol::ChunkAck`]'s module):
//! the status of an upload, one chunk up, one chunk down. Each request is signed like sync and
//! carries at most one chunk, so a cut link costs at most one chunk, and none of them ever waits
//! for, or holds back, a sync of notes beyond its own database turn.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use fieldcase_core::ids::{AttachmentId, CaseId, DeviceId, UserId};
use fieldcase_core::model::Limits;
use fieldcase_core::protocol::{ChunkAck, error_code};

use crate::error::ServerError;
use crate::http::device_auth::Authenticated;
use crate::http::error::AppError;
use crate::http::state::AppState;
use crate::office::attachments;

/// Route of an attachment's status.
pub(crate) const PATH_ATTACHMENT: &str = "/v1/cases/{case}/attachments/{id}";
/// Route of one chunk.
pub(crate) const PATH_CHUNK: &str = "/v1/cases/{case}/attachments/{id}/chunks/{index}";

/// The answer to an attachment request the office refused, as a code the phone acts on.
pub(crate) fn refusal(e: ServerError) -> AppError {
    let (status, code) = match &e {
        ServerError::UnknownAttachment | ServerError::UnknownCase => {
            (StatusCode::NOT_FOUND, error_code::ATTACHMENT_NOT_FOUND)
        }
        ServerError::NotAssigned => (StatusCode::FORBIDDEN, error_code::NOT_ASSIGNED),
        ServerError::ChunkOutOfOrder { .. } => {
            (StatusCode::CONFLICT, error_code::CHUNK_OUT_OF_ORDER)
        }
        ServerError::ChunkRefused(_) => {
            (StatusCode::UNPROCESSABLE_ENTITY, error_code::CHUNK_REFUSED)
        }
        ServerError::AttachmentHashMismatch => (
            StatusCode::UNPROCESSABLE_ENTITY,
            error_code::ATTACHMENT_HASH_MISMATCH,
        ),
        ServerError::AttachmentRefused(_) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            error_code::ATTACHMENT_REFUSED,
        ),
        ServerError::AttachmentNotAtOffice => {
            (StatusCode::CONFLICT, error_code::ATTACHMENT_NOT_AT_OFFICE)
        }
        _ => return AppError::from(e),
    };
    AppError::new(status, code, e.to_string())
}

fn ids(case: &str, id: &str) -> Result<(CaseId, AttachmentId), AppError> {
    match (case.parse(), id.parse()) {
        (Ok(case), Ok(id)) => Ok((case, id)),
        _ => Err(AppError::malformed(
            "the path does not name a case and an attachment",
        )),
    }
}

fn who(auth: &Authenticated<{ Limits::ATTACHMENT_CHUNK }>) -> (DeviceId, UserId) {
    (
        DeviceId::from_uuid(auth.device_id),
        UserId::from_uuid(auth.user_id),
    )
}

/// `GET /v1/cases/{case}/attachments/{id}`: where the upload of this device's attachment stands.
pub(crate) async fn status(
    State(state): State<AppState>,
    Path((case, id)): Path<(String, String)>,
    auth: Authenticated<{ Limits::ATTACHMENT_CHUNK }>,
) -> Result<Json<ChunkAck>, AppError> {
    let (case, id) = ids(&case, &id)?;
    let (vault, now, who) = (state.vault().clone(), state.now(), who(&auth));
    let done = state
        .db()
        .call_write(move |sql| {
            attachments::upload_status(sql, &vault, who, case, id, now).map_err(refusal)
        })
        .await?;
    Ok(Json(done.keep(state.vault())))
}

/// `PUT /v1/cases/{case}/attachments/{id}/chunks/{index}`: one chunk of this device's upload.
pub(crate) async fn put_chunk(
    State(state): State<AppState>,
    Path((case, id, index)): Path<(String, String, u32)>,
    auth: Authenticated<{ Limits::ATTACHMENT_CHUNK }>,
) -> Result<Json<ChunkAck>, AppError> {
    let (case, id) = ids(&case, &id)?;
    let (vault, now, who) = (state.vault().clone(), state.now(), who(&auth));
    let body = auth.body;
    let done = state
        .db()
        .call_write(move |sql| {
            attachments::put_chunk(sql, &vault, who, (case, id, index), &body, now).map_err(refusal)
        })
        .await?;
    done.keep(state.vault()).map(Json).map_err(refusal)
}

/// `GET /v1/cases/{case}/attachments/{id}/chunks/{index}`: one chunk of an attachment the
/// office holds whole, for a device whose user is assigned to the case.
pub(crate) async fn get_chunk(
    State(state): State<AppState>,
    Path((case, id, index)): Path<(String, String, u32)>,
    auth: Authenticated<{ Limits::ATTACHMENT_CHUNK }>,
) -> Result<Response, AppError> {
    let (case, id) = ids(&case, &id)?;
    let (vault, user) = (state.vault().clone(), UserId::from_uuid(auth.user_id));
    let done = state
        .db()
        .call_read(move |sql| {
            attachments::get_chunk(sql, &vault, user, (case, id, index)).map_err(refusal)
        })
        .await?;
    let bytes = done.keep(state.vault());
    Ok((
        [(header::CONTENT_TYPE, "application/octet-stream")],
        bytes.to_vec(),
    )
        .into_response())
}
