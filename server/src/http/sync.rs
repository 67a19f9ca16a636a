//! `POST /v1/sync`: one round of the sync protocol for an authenticated device.
//!
//! The request is decoded with every bound checked before any work. Whole documents among the
//! uploads (a phone's first upload of its cases, the heaviest automerge work) are loaded and
//! bounds-checked on the blocking pool before the write transaction, for the uploads a read
//! snapshot allows, so that pages and other syncs do not wait behind that work; the rest (the
//! allowed uploads decided again, the merge, the answer) runs in one write transaction, so a
//! request that fails changes nothing and a bad upload from one device never touches another
//! device's data. On SQLite that transaction is the one writer of its turn; on PostgreSQL it
//! runs beside other devices' syncs ([`crate::storage::sql::WriteScope::Sync`]), locking only
//! its device and the cases it uploads, and taking the commit order only for its sequence
//! numbers and shared rows: its stores are made last (`SqlHub::deferring_stores`), so the order
//! is held for them and the commit alone.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use fieldcase_core::ids::{DeviceId, UserId};
use fieldcase_core::protocol::{HEADER_HELD, Lease, MAX_SYNC_BODY, WipeReceipt, error_code};
use fieldcase_core::sync::hub::{allowed_uploads, handle_sync_frames, load_uploads};
use fieldcase_core::sync::{SyncError, SyncRequest};

use crate::http::device_auth::Authenticated;
use crate::http::error::AppError;
use crate::http::state::AppState;
use crate::office::devices;
use crate::office::hub::SqlHub;
use crate::office::quarantine;
use crate::storage::sql::{LockKey, WriteScope};

/// Path of the sync endpoint.
pub(crate) const PATH_SYNC: &str = fieldcase_core::device::PATH_SYNC;

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

/// What one sync transaction decided.
enum Outcome {
    /// The answer's first page, as frames.
    Synced(Vec<fieldcase_core::sync::SyncResponse>),
    /// The device was revoked after its request was authenticated: its uploads were
    /// quarantined, nothing merged.
    Revoked,
}

/// Reads the statement a phone holds for the office ([`HEADER_HELD`]): sealed to the office's
/// key, a wipe receipt signed by the device. `Some(reason)` when it opens, names this device and
/// verifies with its key; `None` for anything else (which is ignored).
fn held_statement(
    state: &AppState,
    headers: &HeaderMap,
    device: uuid::Uuid,
    key: &ed25519_dalek::VerifyingKey,
) -> Option<String> {
    use base64::Engine;
    let blob = headers
        .get(HEADER_HELD)
        .filter(|v| v.len() <= fieldcase_core::protocol::MAX_HELD_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| base64::engine::general_purpose::STANDARD.decode(v).ok())?;
    let plain =
        fieldcase_core::crypto::office::open_as_office(&state.keys().signing_key, &blob).ok()?;
    let receipt = serde_json::from_slice::<WipeReceipt>(&plain).ok()?;
    if receipt.device_id != device {
        return None;
    }
    // The key that verified the request (the extractor read it): no second trip to the
    // database for it.
    receipt.verify(key).then(|| receipt.reason.clone())
}

/// Handles one sync round.
pub(crate) async fn sync(
    State(state): State<AppState>,
    headers: HeaderMap,
    auth: Authenticated<{ MAX_SYNC_BODY }, true, true>,
) -> Result<Response, AppError> {
    let started = std::time::Instant::now();
    let request = SyncRequest::decode(&auth.body).map_err(refused)?;
    let device = DeviceId::from_uuid(auth.device_id);
    let user = UserId::from_uuid(auth.user_id);
    let vault = state.vault().clone();
    let now = state.now();
    let lease_secs = i64::try_from(state.limits().lease.as_secs()).unwrap_or(i64::MAX);
    // The statement the phone holds: a duress notice revokes it here, before anything of the
    // sync is done, and alerts the worker's team; anything else is only acknowledged.
    let held = headers.contains_key(HEADER_HELD);
    let duress = held_statement(&state, &headers, auth.device_id, &auth.public_key).as_deref()
        == Some("duress");
    // The request's nonce is recorded by the first transaction that writes, with what it
    // writes: one commit for a sync rather than two.
    let mut nonce = Some(auth.deferred_nonce());
    if duress {
        let id = auth.device_id;
        let first = nonce.take();
        state
            .db()
            .call_write(move |sql| {
                if let Some(nonce) = &first {
                    nonce.record(sql)?;
                }
                devices::record_duress(sql, &id, "sync", now).map_err(AppError::from)
            })
            .await?;
        tracing::warn!(device = %id, "duress notice received; device revoked");
    }
    let revoked_at_door = auth.revoked || duress;
    let retention_secs = i64::try_from(state.limits().retention.as_secs()).unwrap_or(i64::MAX);
    let request = Arc::new(request);
    let request_cursor = request.cursor;
    // Whole documents (a phone's first upload of its cases) are loaded and bounds-checked
    // before the write transaction, outside any database turn: which uploads may be made is
    // read in a snapshot, then the documents are loaded on the blocking pool. The transaction
    // decides again and loads whatever it was not given.
    let preloaded = if !revoked_at_door
        && request
            .uploads
            .iter()
            .any(|u| fieldcase_core::document::is_document_chunk(&u.changes))
    {
        let (vault, shared) = (vault.clone(), request.clone());
        let allowed = state
            .db()
            .call_read(move |sql| {
                let mut hub = SqlHub::new(sql, &vault, now, retention_secs);
                match allowed_uploads(&mut hub, device, user, &shared) {
                    Ok(known) => Ok(known.iter().map(Option::is_some).collect::<Vec<_>>()),
                    Err(e) => Err(crate::http::error::hub_refusal(e, hub.take_failure())),
                }
            })
            .await?;
        let shared = request.clone();
        let loaded = tokio::task::spawn_blocking(move || load_uploads(&shared, &allowed))
            .await
            .map_err(|_| AppError::internal(&"loading the uploads stopped"))?;
        Some(loaded)
    } else {
        None
    };
    let kept = nonce.clone();
    // The sync runs beside other devices' syncs (on PostgreSQL): it writes only its device and
    // the cases it uploads, and what all share in the commit order.
    let scope = WriteScope::Sync {
        keys: std::iter::once(LockKey::device(&auth.device_id))
            .chain(
                request
                    .uploads
                    .iter()
                    .map(|u| LockKey::case(u.case_id.as_uuid())),
            )
            .collect(),
    };
    let keeper = vault.clone();
    let (outcome, phases) = state
        .db()
        .call_write_timed_in(
            scope,
            move |sql| {
                if let Some(nonce) = &nonce {
                    nonce.record(sql)?;
                }
                // A revoked device's uploads are kept, never merged (within quarantine's bounds).
                // Checked again inside the transaction: a revocation that committed while this
                // request was on its way (on this instance or another one) stops the merge here too.
                if revoked_at_door || !devices::device_is_active(sql, device.as_uuid())? {
                    for upload in &request.uploads {
                        let held = quarantine::hold(
                            sql,
                            &vault,
                            device,
                            user,
                            upload.case_id,
                            &upload.changes,
                            now,
                        )?;
                        if let Err(why) = held {
                            tracing::warn!(%device, ?why, "upload of a revoked device not kept");
                        }
                    }
                    return Ok((Outcome::Revoked, Vec::new()));
                }
                let mut hub = SqlHub::new(sql, &vault, now, retention_secs).deferring_stores();
                let response = match handle_sync_frames(&mut hub, device, user, &request, preloaded)
                {
                    Ok(response) => response,
                    Err(e) => return Err(crate::http::error::hub_refusal(e, hub.take_failure())),
                };
                let expires = now.saturating_add(lease_secs);
                devices::record_sync(hub.sql(), device.as_uuid(), now, expires)?;
                // Last: the stores take the commit order, held from here to the commit.
                hub.store_deferred()?;
                Ok((
                    Outcome::Synced(response),
                    hub.into_loaded().collect::<Vec<_>>(),
                ))
            },
            // Committed: the documents in memory are what is stored, and a sync of the same
            // case that waited for this one's lock finds them there.
            move |(outcome, loaded)| {
                keeper.keep(loaded);
                outcome
            },
        )
        .await;
    if outcome.is_err()
        && let Some(nonce) = kept
    {
        // A refused sync changed nothing, but its nonce is spent all the same: the same
        // signed request sent again is a replay, as for any other endpoint. (A replay's own
        // refusal finds it spent already, and this records nothing.)
        let _ = state.db().call_write(move |sql| nonce.record(sql)).await;
    }
    let mut frames = match outcome? {
        Outcome::Synced(frames) => frames,
        Outcome::Revoked => return Err(crate::http::device_auth::revoked(&state, auth.device_id)),
    };
    // What is left after this page goes only to a phone that reads it: one built before would
    // refuse an answer with bytes past its end.
    if !headers.contains_key(fieldcase_core::protocol::HEADER_REMAINING) {
        for frame in &mut frames {
            frame.remaining = None;
        }
    }
    if let Some(first) = frames.first_mut() {
        first.lease = Some(Lease::sign(
            &state.keys().signing_key,
            auth.device_id,
            now.saturating_add(lease_secs),
        ));
    }
    let mut answer = if headers.contains_key(fieldcase_core::protocol::HEADER_STREAM) {
        let from = crate::http::sync_stream::Continuation {
            device,
            user,
            acked: request_cursor,
            remaining: headers.contains_key(fieldcase_core::protocol::HEADER_REMAINING),
        };
        let body = crate::http::sync_stream::body(&state, &frames, from)?;
        (
            [(
                header::CONTENT_TYPE,
                fieldcase_core::sync::frames::CONTENT_TYPE,
            )],
            body,
        )
            .into_response()
    } else {
        let response = fieldcase_core::sync::SyncResponse::merged(frames)
            .ok_or_else(|| AppError::internal(&"an answer of no frames"))?;
        let body = response.encode().map_err(|e| AppError::internal(&e))?;
        ([(header::CONTENT_TYPE, "application/octet-stream")], body).into_response()
    };
    announce_next_pin(&state, answer.headers_mut());
    // The office's time, which the phone takes as its trusted time for the lease.
    answer.headers_mut().insert(
        fieldcase_core::protocol::HEADER_SERVER_TIME,
        axum::http::HeaderValue::from(now),
    );
    if state.limits().server_timing
        && let Ok(value) =
            axum::http::HeaderValue::from_str(&phases.server_timing(started.elapsed()))
    {
        answer.headers_mut().insert("server-timing", value);
    }
    if held {
        answer.headers_mut().insert(
            fieldcase_core::protocol::HEADER_HELD_ACK,
            axum::http::HeaderValue::from_static("1"),
        );
    }
    Ok(answer)
}

/// Puts the next certificate's signed announcement, if one is prepared, into the headers of a
/// successful sync answer ([`fieldcase_core::protocol::HEADER_NEXT_PIN`] and
/// [`fieldcase_core::protocol::HEADER_NEXT_PIN_SIGNATURE`]); the sync message itself is not
/// touched.
fn announce_next_pin(state: &AppState, headers: &mut axum::http::HeaderMap) {
    use axum::http::HeaderValue;
    use fieldcase_core::protocol::{HEADER_NEXT_PIN, HEADER_NEXT_PIN_SIGNATURE};
    let Some(announcement) = state.next_pin() else {
        return;
    };
    if let (Ok(fingerprint), Ok(signature)) = (
        HeaderValue::from_str(&announcement.fingerprint.to_hex()),
        HeaderValue::from_str(&announcement.signature),
    ) {
        headers.insert(HEADER_NEXT_PIN, fingerprint);
        headers.insert(HEADER_NEXT_PIN_SIGNATURE, signature);
    }
}

/// `POST /v1/wipe-receipt`: a device's signed statement that it wiped itself, sealed to the
/// office's key as a wiped phone keeps it (or as plain JSON, as phones sent it before). Needs no
/// request signature (a revoked or wiped device may have nothing else), because the receipt
/// itself is signed with the device's enrolled key. A panic wipe also revokes the device, a
/// duress notice raises the alert. Idempotent.
pub(crate) async fn wipe_receipt(
    State(state): State<AppState>,
    body: axum::body::Bytes,
) -> Result<StatusCode, AppError> {
    // A receipt is a few hundred bytes, sealed or not.
    const MAX_RECEIPT: usize = 4096;
    if body.len() > MAX_RECEIPT {
        return Err(AppError::too_large(MAX_RECEIPT));
    }
    let plain = if body.starts_with(b"age-encryption.org/") {
        fieldcase_core::crypto::office::open_as_office(&state.keys().signing_key, &body)
            .map_err(|_| AppError::malformed("not sealed to this office"))?
    } else {
        zeroize::Zeroizing::new(body.to_vec())
    };
    let receipt: WipeReceipt =
        serde_json::from_slice(&plain).map_err(|_| AppError::malformed("not a wipe receipt"))?;
    let now = state.now();
    state
        .db()
        .call_write(move |sql| {
            let key = devices::device_public_key(sql, &receipt.device_id)?.ok_or_else(|| {
                AppError::unauthorized(error_code::UNKNOWN_DEVICE, "this device is not enrolled")
            })?;
            if !receipt.verify(&key) {
                return Err(AppError::unauthorized(
                    error_code::BAD_SIGNATURE,
                    "the receipt signature does not verify",
                ));
            }
            devices::record_wipe_receipt(sql, &receipt, now)?;
            if receipt.reason == "duress" {
                devices::record_duress(sql, &receipt.device_id, "receipt", now)?;
            }
            Ok::<_, AppError>(())
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
