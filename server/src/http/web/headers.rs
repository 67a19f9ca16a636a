//! What every answer of the web pages carries: no caching, no framing, scripts and styles from
//! this origin only; and the one stylesheet and script, served from the binary.

use axum::http::{HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Response};

const CSS: &str = include_str!("../../../static/web.css");

const PRINT_CSS: &str = include_str!("../../../static/print.css");

const JS: &str = include_str!("../../../static/web.js");

/// Headers on every page: no caching, no framing, scripts and styles from this origin only.
pub fn secure_headers() -> [(HeaderName, HeaderValue); 5] {
    [
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
            ),
        ),
    ]
}

pub(super) async fn css() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], CSS).into_response()
}

pub(super) async fn print_css() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        PRINT_CSS,
    )
        .into_response()
}

pub(super) async fn js() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        JS,
    )
        .into_response()
}
