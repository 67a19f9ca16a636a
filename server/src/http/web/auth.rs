//! Web sign-in as the browser sees it: the session, login and language cookies, the
//! [`WebUser`] extractor (the session checked on every request, through
//! [`crate::office::sign_in`]), role checks, and the refusals rendered as pages.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use fieldcase_core::protocol::Role;
use uuid::Uuid;

use super::i18n::{Lang, Msg};
use crate::error::ServerError;
use crate::http::error::AppError;
use crate::http::state::AppState;
use crate::office::access::{self, Ability, Staff};
use crate::office::sign_in;

/// Name of the session cookie (`__Host-`: Secure, path `/`, no domain).
pub const SESSION_COOKIE: &str = "__Host-fc_session";
/// Name of the cookie holding the login form's CSRF token (double submit).
pub const LOGIN_COOKIE: &str = "__Host-fc_login";
/// Name of the cookie remembering the page language (not secret; read before sign-in, so that
/// the login page and error pages speak the language last chosen on this browser).
pub const LANG_COOKIE: &str = "__Host-fc_lang";

tokio::task_local! {
    /// The language of the request being answered: set from the browser (cookie, then
    /// `Accept-Language`) by [`lang_scope`], then from the signed-in user's choice by the
    /// [`WebUser`] extractor; error pages are rendered in it.
    static REQUEST_LANG: std::cell::Cell<Lang>;
}

/// The language of the request being answered (English outside a web request).
pub fn request_lang() -> Lang {
    REQUEST_LANG.try_with(|l| l.get()).unwrap_or(Lang::En)
}

/// The language a browser asks for: the language cookie, then `Accept-Language`, else English.
pub fn browser_lang(parts: &Parts) -> Lang {
    cookie(parts, LANG_COOKIE)
        .and_then(Lang::parse)
        .or_else(|| {
            parts
                .headers
                .get(header::ACCEPT_LANGUAGE)
                .and_then(|v| v.to_str().ok())
                .and_then(Lang::from_accept_language)
        })
        .unwrap_or(Lang::En)
}

/// Middleware around the web routes: answers each request within a language scope, so that
/// refusals rendered by [`WebError`] (403, 404, CSRF, bad input) use the visitor's language.
pub async fn lang_scope(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let (parts, body) = req.into_parts();
    let lang = browser_lang(&parts);
    let req = axum::extract::Request::from_parts(parts, body);
    REQUEST_LANG
        .scope(std::cell::Cell::new(lang), next.run(req))
        .await
}

/// `Set-Cookie` value remembering the page language on this browser.
pub fn lang_cookie(lang: Lang) -> String {
    format!(
        "{LANG_COOKIE}={}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=31536000",
        lang.code()
    )
}

/// The signed-in user of a web request.
#[derive(Debug, Clone)]
pub struct WebUser {
    /// User id.
    pub id: Uuid,
    /// Display name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Chosen language.
    pub lang: Lang,
    /// The session's CSRF token, for forms.
    pub csrf: String,
    /// The session cookie token (for logout).
    pub token: String,
    /// Open alerts this person is shown on every page ([`crate::office::alerts`]).
    pub alerts: Vec<crate::office::alerts::Alert>,
}

impl WebUser {
    /// Who is asking, for the office's need-to-know checks ([`access`]).
    pub fn staff(&self) -> Staff {
        Staff {
            id: self.id,
            role: self.role,
        }
    }

    /// Refuses unless the user's role allows `ability` ([`access::may`]).
    pub fn require(&self, ability: Ability) -> Result<(), WebError> {
        if access::may(self.role, ability) {
            Ok(())
        } else {
            Err(WebError::Forbidden)
        }
    }

    /// Refuses a form whose CSRF token is not this session's.
    pub fn check_csrf(&self, token: Option<&str>) -> Result<(), WebError> {
        match token {
            Some(t) if sign_in::same(t, &self.csrf) => Ok(()),
            _ => Err(WebError::Csrf),
        }
    }
}

/// Failures of web pages, answered as small HTML pages.
#[derive(Debug)]
pub enum WebError {
    /// Not signed in (or the session expired): go to the login page.
    Login,
    /// Signed in without the needed role.
    Forbidden,
    /// The case is on none of the user's teams (the case page offers a break-glass read).
    OutsideTeam,
    /// A form without this session's CSRF token.
    Csrf,
    /// No such thing.
    NotFound,
    /// A bad form value.
    BadInput(String),
    /// Refused because of the current state (a conflict already resolved, the last admin).
    Refused(Msg),
    /// Anything else (logged, not shown).
    Internal(AppError),
}

impl From<AppError> for WebError {
    fn from(e: AppError) -> Self {
        if e.status == StatusCode::NOT_FOUND {
            WebError::NotFound
        } else {
            WebError::Internal(e)
        }
    }
}

impl From<crate::error::SqlError> for WebError {
    fn from(e: crate::error::SqlError) -> Self {
        WebError::from(ServerError::Sql(e))
    }
}

impl From<ServerError> for WebError {
    fn from(e: ServerError) -> Self {
        match e {
            ServerError::UnknownCase
            | ServerError::UnknownDevice
            | ServerError::UnknownUser
            | ServerError::UnknownTeam
            | ServerError::UnknownQuarantine
            | ServerError::UnknownAttachment
            | ServerError::AttachmentNotAtOffice
            | ServerError::UnknownAlert => WebError::NotFound,
            ServerError::UnknownNote => WebError::BadInput(e.to_string()),
            ServerError::NotAllowed => WebError::Forbidden,
            ServerError::FingerprintMismatch => WebError::Refused(Msg::FingerprintMismatch),
            ServerError::OutsideTeam => WebError::OutsideTeam,
            ServerError::BreakGlassReason { .. }
            | ServerError::DuplicateTeam
            | ServerError::BadPeriod(_)
            | ServerError::BadExport(_) => WebError::BadInput(e.to_string()),
            ServerError::QuarantineDecided => {
                WebError::BadInput("that upload was already decided".to_owned())
            }
            ServerError::NoConflict => WebError::Refused(Msg::AlreadyResolved),
            ServerError::LastAdmin => WebError::Refused(Msg::LastAdmin),
            ServerError::Core(e) => WebError::BadInput(e.to_string()),
            ServerError::DuplicateUser => WebError::BadInput(e.to_string()),
            ServerError::Config(why) => WebError::BadInput(why),
            ServerError::UserInactive => WebError::BadInput(e.to_string()),
            other => WebError::Internal(AppError::internal(&other)),
        }
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let l = request_lang();
        let (status, text) = match self {
            WebError::Login => return Redirect::to("/login").into_response(),
            WebError::Forbidden => (StatusCode::FORBIDDEN, l.t(Msg::Forbidden).to_owned()),
            WebError::OutsideTeam => (StatusCode::FORBIDDEN, l.t(Msg::OutsideTeam).to_owned()),
            WebError::Csrf => (StatusCode::FORBIDDEN, l.t(Msg::CsrfRefused).to_owned()),
            WebError::NotFound => (StatusCode::NOT_FOUND, l.t(Msg::NotFound).to_owned()),
            WebError::BadInput(why) => (
                StatusCode::BAD_REQUEST,
                format!("{}: {why}", l.t(Msg::BadRequest)),
            ),
            WebError::Refused(msg) => (StatusCode::CONFLICT, l.t(msg).to_owned()),
            WebError::Internal(e) => (e.status, l.t(Msg::ServerFailure).to_owned()),
        };
        let page = maud::html! {
            (maud::DOCTYPE)
            html lang=(l.code()) { head { meta charset="utf-8"; meta name="viewport" content="width=device-width, initial-scale=1"; title { (text) } link rel="stylesheet" href="/static/web.css"; }
            body { main { h1 { (text) } p { a href="/" { (l.t(Msg::BackHome)) } } } } }
        };
        (status, super::headers::secure_headers(), page).into_response()
    }
}

/// The value of cookie `name` in the request.
pub fn cookie<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Header the page's script sets on the requests it makes by itself.
pub const BACKGROUND_HEADER: &str = "x-fieldcase-background";

/// Whether a request is one the page makes by itself: the script's fetches (which carry
/// [`BACKGROUND_HEADER`]) and the live-update stream (which a browser opens asking for
/// `text/event-stream` and cannot give other headers).
fn is_background(parts: &Parts) -> bool {
    parts.headers.contains_key(BACKGROUND_HEADER)
        || parts
            .headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("text/event-stream"))
}

impl FromRequestParts<AppState> for WebUser {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, WebError> {
        let token = cookie(parts, SESSION_COOKIE)
            .ok_or(WebError::Login)?
            .to_owned();
        // The page's own background requests (the live stream, the timeline it fetches) do not
        // count as the person's activity.
        let activity = !is_background(parts);
        let now = state.now();
        let found = state
            .db()
            .call_write(move |sql| {
                sign_in::session(sql, &token, now, activity).map(|s| s.map(|s| (s, token)))
            })
            .await
            .map_err(|e| WebError::Internal(AppError::from(e)))?;
        let (session, token) = found.ok_or(WebError::Login)?;
        let lang = Lang::from_code(&session.lang);
        // Refusals from here on speak the user's language.
        let _ = REQUEST_LANG.try_with(|l| l.set(lang));
        let staff = Staff {
            id: session.user_id,
            role: session.role,
        };
        // Alerts are shown on every page, so that nobody on the team misses one.
        let alerts = state
            .db()
            .call_read(move |sql| crate::office::alerts::visible_to(sql, staff, false))
            .await
            .map_err(|e| WebError::Internal(AppError::from(e)))?;
        Ok(WebUser {
            id: session.user_id,
            name: session.name,
            role: session.role,
            lang,
            csrf: session.csrf,
            token,
            alerts,
        })
    }
}

/// `Set-Cookie` value for a session token (`None` clears it).
pub fn session_cookie(token: Option<&str>) -> String {
    match token {
        Some(t) => format!("{SESSION_COOKIE}={t}; Path=/; Secure; HttpOnly; SameSite=Strict"),
        None => format!("{SESSION_COOKIE}=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0"),
    }
}

/// `Set-Cookie` value for the login form's CSRF cookie.
pub fn login_cookie(token: &str) -> String {
    format!("{LOGIN_COOKIE}={token}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=3600")
}
