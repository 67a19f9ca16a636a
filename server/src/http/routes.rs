//! The HTTP routes: `/healthz`, `/v1/enroll`, `/v1/whoami`, and typed answers for everything else.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::Json;
use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use fieldcase_core::protocol::{
    self, EnrollRequest, EnrollResponse, MAX_ENROLL_BODY, PATH_ENROLL, PATH_HEALTHZ, PATH_WHOAMI,
    WhoAmI, enrollment_code_hash, error_code,
};

use crate::http::device_auth::{Authenticated, read_body};
use crate::http::error::AppError;
use crate::http::state::AppState;
use crate::office::enrollment::{self, EnrollRefusal};

/// The routes without state, to which more routes (such as sync) can be merged before
/// [`finish`] turns them into an app.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route(PATH_HEALTHZ, get(healthz))
        .route(PATH_ENROLL, post(enroll))
        .route(PATH_WHOAMI, get(whoami))
        .route(crate::http::sync::PATH_SYNC, post(crate::http::sync::sync))
        .route(
            crate::http::attachments::PATH_ATTACHMENT,
            get(crate::http::attachments::status),
        )
        .route(
            crate::http::attachments::PATH_CHUNK,
            put(crate::http::attachments::put_chunk).get(crate::http::attachments::get_chunk),
        )
        .route(
            protocol::PATH_WIPE_RECEIPT,
            post(crate::http::sync::wipe_receipt),
        )
        .merge(crate::http::admin_api::routes())
        .merge(crate::http::web::routes())
}

/// Adds fallbacks, the request timeout and the state to a set of routes.
pub(crate) fn finish(routes: Router<AppState>, state: AppState) -> Router {
    routes
        .fallback(fallback)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            request_timeout,
        ))
        .with_state(state)
}

/// The complete HTTP app.
pub(crate) fn app(state: AppState) -> Router {
    finish(routes(), state)
}

/// Bounds each request: a slot of its client address (`max_requests_per_address`), then one
/// among `max_concurrent_requests`, a body that keeps arriving at `min_body_bytes_per_sec`, and
/// `request_timeout` overall.
async fn request_timeout(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let limits = *state.limits();
    let slots = state.in_flight().clone();
    let per_address = state.per_address().clone();
    let address = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let req = req.map(|body| {
        crate::http::body_rate::at_least(body, limits.min_body_bytes_per_sec, limits.body_grace)
    });
    let work = async move {
        // The address's own slot first: requests from one address wait behind each other, not
        // in front of everyone else's.
        let _address_slot = match address {
            Some(address) => per_address.acquire(address).await,
            None => None,
        };
        let _permit = slots.acquire_owned().await;
        next.run(req).await
    };
    let limit = limits.request_timeout;
    // The office's time zone for the pages (the name was checked at start-up).
    let zone = crate::http::web::i18n::OfficeZone::get(limits.office_time_zone)
        .unwrap_or_else(crate::http::web::i18n::OfficeZone::default_zone);
    let work = crate::http::web::i18n::with_zone(zone, work);
    match tokio::time::timeout(limit, work).await {
        Ok(response) => response,
        Err(_) => AppError::new(
            StatusCode::REQUEST_TIMEOUT,
            error_code::TIMEOUT,
            "the request took too long",
        )
        .into_response(),
    }
}

async fn healthz() -> &'static str {
    "ok"
}

/// Whether the path names a protocol version (`/v<digits>` or `/v<digits>/...`) other than ours.
fn other_version(path: &str) -> bool {
    let Some(rest) = path.strip_prefix("/v") else {
        return false;
    };
    let digits: &str = rest.split('/').next().unwrap_or("");
    !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && digits.parse::<u32>().ok() != Some(protocol::PROTOCOL_VERSION)
}

async fn fallback(uri: Uri) -> AppError {
    if other_version(uri.path()) {
        AppError::new(
            StatusCode::BAD_REQUEST,
            error_code::UNSUPPORTED_PROTOCOL_VERSION,
            format!(
                "this server speaks protocol version {}; update the app",
                protocol::PROTOCOL_VERSION
            ),
        )
    } else {
        AppError::new(
            StatusCode::NOT_FOUND,
            error_code::NOT_FOUND,
            "no such endpoint",
        )
    }
}

async fn method_not_allowed() -> AppError {
    AppError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        error_code::METHOD_NOT_ALLOWED,
        "this endpoint does not accept this method",
    )
}

async fn whoami(auth: Authenticated) -> Json<WhoAmI> {
    Json(WhoAmI {
        device_id: auth.device_id,
        user_id: auth.user_id,
        role: auth.role,
    })
}

async fn enroll(
    State(state): State<AppState>,
    req: Request,
) -> Result<Json<EnrollResponse>, AppError> {
    let ip = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let now = state.now();
    {
        let mut limiter = state
            .enroll_failures()
            .lock()
            .map_err(|_| AppError::internal(&"rate limiter lock poisoned"))?;
        if let Err(wait) = limiter.check(ip, now) {
            return Err(AppError::new(
                StatusCode::TOO_MANY_REQUESTS,
                error_code::TOO_MANY_ATTEMPTS,
                format!(
                    "too many failed enrollment attempts; try again in {} minutes",
                    wait / 60 + 1
                ),
            ));
        }
    }
    let result = enroll_inner(&state, req, now).await;
    if let Err(e) = &result
        && e.status.is_client_error()
    {
        if let Ok(mut limiter) = state.enroll_failures().lock() {
            limiter.record_failure(ip, now);
        }
        tracing::info!(code = e.code, "enrollment refused");
    }
    result.map(Json)
}

async fn enroll_inner(
    state: &AppState,
    req: Request,
    now: i64,
) -> Result<EnrollResponse, AppError> {
    let (parts, body) = req.into_parts();
    let body = read_body(&parts.headers, body, MAX_ENROLL_BODY).await?;
    let request: EnrollRequest = serde_json::from_slice(&body)
        .map_err(|_| AppError::malformed("the body is not an enrollment request"))?;
    let (code, key) = protocol::verify_enroll_request(&request).map_err(|e| match e {
        protocol::DecodeError::BadEnrollmentCode => AppError::malformed(e.to_string()),
        _ => AppError::new(
            StatusCode::BAD_REQUEST,
            error_code::BAD_DEVICE_KEY,
            "the device key or its proof of possession is invalid",
        ),
    })?;
    let hash = enrollment_code_hash(&code);
    let public_key = key.to_bytes();
    let confirm = state.limits().confirm_enrollment;
    let enrolled = state
        .db()
        .call_write(move |sql| {
            match enrollment::enroll_device(sql, &hash, &public_key, confirm, now) {
                Ok(e) => Ok(Ok(e)),
                Err(EnrollRefusal::Db(e)) => Err(AppError::from(e)),
                Err(refusal) => Ok(Err(refusal)),
            }
        })
        .await?
        .map_err(|refusal| match refusal {
            EnrollRefusal::Unknown => AppError::unauthorized(
                error_code::ENROLLMENT_CODE_UNKNOWN,
                "this enrollment code is not known; check it or ask an admin for a new one",
            ),
            EnrollRefusal::Used => AppError::new(
                StatusCode::CONFLICT,
                error_code::ENROLLMENT_CODE_USED,
                "this enrollment code was already used; ask an admin for a new one",
            ),
            EnrollRefusal::Expired => AppError::new(
                StatusCode::GONE,
                error_code::ENROLLMENT_CODE_EXPIRED,
                "this enrollment code has expired; ask an admin for a new one",
            ),
            EnrollRefusal::UserInactive => AppError::new(
                StatusCode::FORBIDDEN,
                error_code::USER_INACTIVE,
                "the user of this enrollment code is deactivated",
            ),
            EnrollRefusal::KeyInUse => AppError::new(
                StatusCode::CONFLICT,
                error_code::DEVICE_KEY_IN_USE,
                "this device key is already enrolled",
            ),
            EnrollRefusal::Db(e) => AppError::from(e),
        })?;
    tracing::info!(device_id = %enrolled.device_id, user_id = %enrolled.user_id, "device enrolled");
    Ok(EnrollResponse {
        device_id: enrolled.device_id,
        user_id: enrolled.user_id,
        role: enrolled.role,
        server_public_key: hex::encode(state.keys().verifying_key().as_bytes()),
    })
}

#[cfg(test)]
mod tests {
    use super::other_version;

    #[test]
    fn version_detection() {
        assert!(other_version("/v2/whoami"));
        assert!(other_version("/v0"));
        assert!(!other_version("/v1/nothing"));
        assert!(!other_version("/vx/whoami"));
        assert!(!other_version("/healthz"));
    }
}
