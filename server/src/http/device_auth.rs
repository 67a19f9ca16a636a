//! Device authentication by signed requests, as an axum extractor usable by any handler.
//!
//! [`Authenticated`] checks, in order: the five headers are present and well-formed, the
//! timestamp is within the window, the device exists and it and its user are active (on every
//! request: revocation depends on it), the signature verifies over the canonical request with
//! the body digest the headers claim; only then does it read the body (bounded by its
//! `MAX_BODY` parameter) and check it against that digest, and check that the nonce was never
//! seen for this device. Only then is the nonce recorded, so a refused request changes
//! nothing. The sync endpoint records it in its own write transaction instead (`DEFER_NONCE`),
//! so that a sync takes one turn at the database's write gate and commits once, not twice.
//!
//! A phone that holds more than one certificate pin (while the office rotates its certificate)
//! sends them in [`HEADER_PINS`]; the header is covered by the signature (one more line of the
//! canonical string), and recorded in the nonce's transaction
//! ([`crate::office::pins::record_pins`]). Signed because an acknowledgement is what lets an
//! admin switch certificates: if anyone on the path could add it (say, whoever holds a leaked
//! key of the current certificate, the very reason to rotate), she could make a phone look
//! ready that never got the new pin, and strand it.

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, OriginalUri, Request};
use axum::http::{HeaderMap, StatusCode, header};
use ed25519_dalek::VerifyingKey;
use fieldcase_core::protocol::{
    HEADER_BODY_SHA256, HEADER_DEVICE, HEADER_NONCE, HEADER_PINS, HEADER_SIGNATURE,
    HEADER_TIMESTAMP, MAX_SIGNED_BODY, ParsedAuth, Role, TIMESTAMP_WINDOW_SECS, WipeOrder,
    error_code, parse_pins,
};
use http_body_util::BodyExt;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::http::error::AppError;
use crate::http::state::AppState;
use crate::office::{devices, pins};

/// A request whose device signature checked out, with its body.
///
/// `MAX_BODY` bounds the body (default [`MAX_SIGNED_BODY`]); a sync handler uses
/// `Authenticated<{ fieldcase_core::protocol::MAX_SYNC_BODY }>`.
#[derive(Debug, Clone)]
///
/// With `ALLOW_REVOKED`, a revoked device whose signature verifies is let through with
/// `revoked: true` (only the sync endpoint does this, to quarantine what the device uploads
/// before answering with a wipe order); every other endpoint refuses it at once.
///
/// With `DEFER_NONCE`, the nonce is not recorded here: the handler records it with
/// [`Authenticated::deferred_nonce`] in its own write transaction, as the first thing that
/// transaction does (the sync endpoint, so that a sync commits once rather than twice). A
/// handler that defers must record it before it changes anything.
pub struct Authenticated<
    const MAX_BODY: usize = MAX_SIGNED_BODY,
    const ALLOW_REVOKED: bool = false,
    const DEFER_NONCE: bool = false,
> {
    /// The device.
    pub device_id: Uuid,
    /// The device is revoked (only ever true with `ALLOW_REVOKED`).
    pub revoked: bool,
    /// Its user.
    pub user_id: Uuid,
    /// The user's role.
    pub role: Role,
    /// The device's public key, which verified the request.
    pub public_key: VerifyingKey,
    /// The request body (already covered by the signature).
    pub body: Bytes,
    /// The nonce to record, when `DEFER_NONCE` left it to the handler.
    nonce: Option<PendingNonce>,
}

/// A request's nonce (and the certificate pins it acknowledges), to record once.
#[derive(Debug, Clone)]
struct PendingNonce {
    device_id: Uuid,
    nonce: [u8; 16],
    expires_at: i64,
    now: i64,
    acknowledged: Option<Vec<fieldcase_core::protocol::Fingerprint>>,
}

impl PendingNonce {
    /// Records the nonce (and the pins with it) in `sql`'s transaction; `false` when this
    /// device used it before (a replay: nothing recorded).
    fn record(
        &self,
        sql: &mut dyn crate::storage::sql::Sql,
    ) -> Result<bool, crate::error::SqlError> {
        let fresh =
            devices::record_nonce(sql, &self.device_id, &self.nonce, self.expires_at, self.now)?;
        if let (true, Some(acknowledged)) = (fresh, &self.acknowledged) {
            pins::record_pins(sql, &self.device_id, acknowledged, self.now)?;
        }
        Ok(fresh)
    }
}

/// The refusal of a request whose nonce this device used before.
fn replayed() -> AppError {
    AppError::unauthorized(
        error_code::REPLAYED_REQUEST,
        "this request was already received (nonce reused)",
    )
}

impl<const MAX_BODY: usize, const ALLOW_REVOKED: bool>
    Authenticated<MAX_BODY, ALLOW_REVOKED, true>
{
    /// The request's nonce, for the handler to record in its write transaction
    /// ([`DeferredNonce::record`]).
    pub fn deferred_nonce(&self) -> DeferredNonce {
        DeferredNonce(self.nonce.clone())
    }
}

/// A request's nonce its handler records in its own transaction.
#[derive(Debug, Clone)]
pub struct DeferredNonce(Option<PendingNonce>);

impl DeferredNonce {
    /// Records the nonce in `sql`'s transaction, before anything else it writes; a replay is
    /// refused (returning the error rolls the transaction back, so the replay changes nothing).
    /// In a request of several transactions, record it in the first: the next finds it used.
    pub fn record(&self, sql: &mut dyn crate::storage::sql::Sql) -> Result<(), AppError> {
        match &self.0 {
            Some(pending) => match pending.record(sql) {
                Ok(true) => Ok(()),
                Ok(false) => Err(replayed()),
                Err(e) => Err(AppError::from(e)),
            },
            None => Ok(()),
        }
    }
}

/// Reads at most `limit` bytes of body; `413` beyond that.
pub async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, AppError> {
    if let Some(len) = headers.get(header::CONTENT_LENGTH) {
        let len: u64 = len
            .to_str()
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| AppError::malformed("invalid content-length"))?;
        if len > limit as u64 {
            return Err(AppError::too_large(limit));
        }
    }
    let mut body = body;
    let mut buf: Vec<u8> = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| AppError::malformed("could not read the request body"))?;
        if let Ok(data) = frame.into_data() {
            if buf.len().saturating_add(data.len()) > limit {
                return Err(AppError::too_large(limit));
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(Bytes::from(buf))
}

/// `403 device_revoked`, carrying the server's signed order for the device to wipe itself.
pub fn revoked(state: &AppState, device: Uuid) -> AppError {
    let mut error = AppError::new(
        StatusCode::FORBIDDEN,
        error_code::DEVICE_REVOKED,
        "this device has been revoked; it must wipe its data",
    );
    error.wipe_order = Some(WipeOrder::sign(
        &state.keys().signing_key,
        device,
        state.now(),
        "revoked",
    ));
    error
}

fn header_str<'a>(headers: &'a HeaderMap, name: &'static str) -> Result<&'a str, AppError> {
    let value = headers.get(name).ok_or_else(|| {
        AppError::unauthorized(
            error_code::MISSING_AUTH,
            format!("this endpoint needs a signed request; the {name} header is missing"),
        )
    })?;
    value.to_str().map_err(|_| {
        AppError::unauthorized(
            error_code::BAD_AUTH_HEADER,
            format!("malformed {name} header"),
        )
    })
}

impl<const MAX_BODY: usize, const ALLOW_REVOKED: bool, const DEFER_NONCE: bool>
    FromRequest<AppState> for Authenticated<MAX_BODY, ALLOW_REVOKED, DEFER_NONCE>
{
    type Rejection = AppError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (parts, body) = req.into_parts();
        let headers = &parts.headers;
        let auth = ParsedAuth::parse(
            header_str(headers, HEADER_DEVICE)?,
            header_str(headers, HEADER_TIMESTAMP)?,
            header_str(headers, HEADER_NONCE)?,
            header_str(headers, HEADER_SIGNATURE)?,
        )
        .map_err(|e| AppError::unauthorized(error_code::BAD_AUTH_HEADER, e.to_string()))?;
        let body_sha256 =
            ParsedAuth::parse_body_digest(header_str(headers, HEADER_BODY_SHA256)?)
                .map_err(|e| AppError::unauthorized(error_code::BAD_AUTH_HEADER, e.to_string()))?;
        let pins_header = match headers.get(HEADER_PINS) {
            Some(_) => Some(header_str(headers, HEADER_PINS)?),
            None => None,
        };
        let acknowledged = pins_header
            .map(parse_pins)
            .transpose()
            .map_err(|e| AppError::unauthorized(error_code::BAD_AUTH_HEADER, e.to_string()))?;

        let now = state.now();
        if !auth.timestamp_fresh(now) {
            return Err(AppError::unauthorized(
                error_code::STALE_TIMESTAMP,
                format!(
                    "request timestamp is more than {TIMESTAMP_WINDOW_SECS} seconds from the \
                     server's clock; check the device clock"
                ),
            ));
        }

        let device_id = auth.device_id;
        let device = state
            .db()
            .call_read(move |sql| devices::lookup_device(sql, &device_id))
            .await?
            .ok_or_else(|| {
                AppError::unauthorized(error_code::UNKNOWN_DEVICE, "this device is not enrolled")
            })?;
        if !device.device_active && !ALLOW_REVOKED {
            return Err(revoked(state, device.id));
        }
        if !device.user_active && device.device_active {
            return Err(AppError::new(
                StatusCode::FORBIDDEN,
                error_code::USER_INACTIVE,
                "the user of this device is deactivated",
            ));
        }

        if !device.confirmed && device.device_active {
            return Err(AppError::new(
                StatusCode::FORBIDDEN,
                error_code::DEVICE_UNCONFIRMED,
                format!(
                    "an admin must first confirm this device by its key fingerprint {}",
                    fieldcase_core::protocol::key_fingerprint(&device.public_key)
                ),
            ));
        }
        // The signature covers the body's digest: it is checked before a byte of the body is
        // read, so only the device's own key can make the server read a body.
        let key = VerifyingKey::from_bytes(&device.public_key)
            .map_err(|_| AppError::internal(&"stored device key is invalid"))?;
        let uri = parts
            .extensions
            .get::<OriginalUri>()
            .map(|u| &u.0)
            .unwrap_or(&parts.uri);
        let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
        if !auth.verify_digest_with_pins(
            &key,
            parts.method.as_str(),
            path,
            &body_sha256,
            pins_header,
        ) {
            return Err(AppError::unauthorized(
                error_code::BAD_SIGNATURE,
                "the request signature does not verify",
            ));
        }
        // The device's own pace, once it proved it is the device, before its body is read.
        if let Err(wait) = state.device_rates().take(device.id) {
            return Err(AppError::new(
                StatusCode::TOO_MANY_REQUESTS,
                error_code::TOO_MANY_REQUESTS,
                format!(
                    "this device sends requests too fast; retry in {} s",
                    wait.as_secs().max(1)
                ),
            ));
        }
        let body = read_body(headers, body, MAX_BODY).await?;
        if Sha256::digest(&body).as_slice() != body_sha256 {
            return Err(AppError::unauthorized(
                error_code::BAD_SIGNATURE,
                "the request body is not the one that was signed",
            ));
        }

        let pending = PendingNonce {
            device_id,
            nonce: auth.nonce,
            expires_at: auth.timestamp.saturating_add(TIMESTAMP_WINDOW_SECS),
            now,
            acknowledged,
        };
        let nonce = if DEFER_NONCE {
            Some(pending)
        } else {
            let fresh = state
                .db()
                .call_write(move |sql| pending.record(sql))
                .await?;
            if !fresh {
                return Err(replayed());
            }
            None
        };

        Ok(Authenticated {
            device_id: device.id,
            revoked: !device.device_active,
            user_id: device.user_id,
            role: device.role,
            public_key: key,
            body,
            nonce,
        })
    }
}
