//! Web logins: argon2id password hashes, session cookies (stored only as SHA-256 of the token,
//! idle expiry), per-session CSRF tokens, rate-limited login attempts, role checks.

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng as HashRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use fieldcase_core::protocol::Role;
use rand::RngCore;
use rand::rngs::OsRng;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::i18n::{Lang, Msg};
use crate::error::{AppError, ServerError};
use crate::sql::Sql;
use crate::sql_params;
use crate::state::AppState;

/// Name of the session cookie (`__Host-`: Secure, path `/`, no domain).
pub const SESSION_COOKIE: &str = "__Host-fc_session";
/// Name of the cookie holding the login form's CSRF token (double submit).
pub const LOGIN_COOKIE: &str = "__Host-fc_login";
/// A session ends after this many seconds without a request.
pub const IDLE_TIMEOUT_SECS: i64 = 30 * 60;
/// A session ends this many seconds after login whatever happens.
pub const ABSOLUTE_TIMEOUT_SECS: i64 = 12 * 3600;
/// Failed logins allowed per user name per window.
pub const FAILURES_PER_NAME: i64 = 5;
/// Failed logins allowed per client address per window.
pub const FAILURES_PER_IP: i64 = 20;
/// The failure-counting window, seconds.
pub const FAILURE_WINDOW_SECS: i64 = 15 * 60;

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

/// A random 32-byte token, base64url.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// Compares two strings in time independent of where they differ.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// Sets (or replaces) the web password of the user called `name`, inside the caller's write
/// transaction; audited.
pub fn set_password(
    sql: &mut dyn Sql,
    name: &str,
    password: &str,
    now: i64,
) -> Result<(), ServerError> {
    if password.chars().count() < 10 || password.len() > 1024 {
        return Err(ServerError::Config(
            "a password is 10 to 1024 characters".to_owned(),
        ));
    }
    let user = crate::store::user_id_by_name(sql, name)?;
    let salt = SaltString::generate(&mut HashRng);
    let hash = Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|_| ServerError::Internal("hashing the password"))?
        .to_string();
    sql.execute(
        "INSERT INTO web_logins (user_id, password_hash, set_at) VALUES (?1, ?2, ?3)
         ON CONFLICT(user_id) DO UPDATE SET password_hash = excluded.password_hash,
             set_at = excluded.set_at",
        sql_params![&user.to_string(), &hash, now],
    )?;
    // A new password ends every session of the user.
    sql.execute(
        "DELETE FROM web_sessions WHERE user_id = ?1",
        sql_params![&user.to_string()],
    )?;
    crate::store::audit(sql, now, "web_password_set", Some(&user), None)?;
    Ok(())
}

/// Why a login was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginRefusal {
    /// Wrong name or password, no password set, or the user is deactivated (not told apart).
    BadCredentials,
    /// Too many failures recently.
    TooManyAttempts,
}

/// A new session: the cookie token (given to the browser only) and the CSRF token.
#[derive(Debug, Clone)]
pub struct NewSession {
    /// Cookie value.
    pub token: String,
    /// CSRF token of the session.
    pub csrf: String,
    /// The user.
    pub user_id: Uuid,
}

/// Checks a name and password (rate-limited per name and client address) and opens a session,
/// inside the caller's write transaction (a refusal is recorded too: commit it).
pub fn login(
    sql: &mut dyn Sql,
    ip: &str,
    name: &str,
    password: &str,
    now: i64,
) -> Result<Result<NewSession, LoginRefusal>, ServerError> {
    let key = name.trim().to_lowercase();
    let since = now - FAILURE_WINDOW_SECS;
    sql.execute(
        "DELETE FROM web_login_failures WHERE at < ?1",
        sql_params![since],
    )?;
    let counts = sql.query_row(
        "SELECT CAST(coalesce(sum(CASE WHEN name = ?1 THEN 1 ELSE 0 END), 0) AS BIGINT),
                CAST(coalesce(sum(CASE WHEN ip = ?2 THEN 1 ELSE 0 END), 0) AS BIGINT)
         FROM web_login_failures WHERE at >= ?3",
        sql_params![&key, ip, since],
    )?;
    let (by_name, by_ip): (i64, i64) = (counts.get(0)?, counts.get(1)?);
    if by_name >= FAILURES_PER_NAME || by_ip >= FAILURES_PER_IP {
        return Ok(Err(LoginRefusal::TooManyAttempts));
    }
    let row: Option<(String, String)> = match sql.query_opt(
        "SELECT u.id, w.password_hash FROM users u JOIN web_logins w ON w.user_id = u.id
         WHERE u.name = ?1 AND u.active = 1",
        sql_params![name.trim()],
    )? {
        Some(r) => Some((r.get(0)?, r.get(1)?)),
        None => None,
    };
    let ok = match &row {
        Some((_, hash)) => PasswordHash::new(hash)
            .map(|h| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &h)
                    .is_ok()
            })
            .unwrap_or(false),
        None => {
            // Same work whether or not the user exists.
            let salt = SaltString::generate(&mut HashRng);
            let _ = Argon2::default().hash_password(password.as_bytes(), &salt);
            false
        }
    };
    let user_id = match (&row, ok) {
        (Some((id, _)), true) => {
            Uuid::try_parse(id).map_err(|_| ServerError::Internal("bad user id"))?
        }
        _ => {
            sql.execute(
                "INSERT INTO web_login_failures (ip, name, at) VALUES (?1, ?2, ?3)",
                sql_params![ip, &key, now],
            )?;
            let user = row.as_ref().and_then(|(id, _)| Uuid::try_parse(id).ok());
            crate::store::audit(sql, now, "web_login_failed", user.as_ref(), None)?;
            return Ok(Err(LoginRefusal::BadCredentials));
        }
    };
    let session = create_session(sql, user_id, now)?;
    crate::store::audit(sql, now, "web_login", Some(&user_id), None)?;
    Ok(Ok(session))
}

/// Opens a session for a user (after a successful login; tests use it directly).
pub fn create_session(
    sql: &mut dyn Sql,
    user_id: Uuid,
    now: i64,
) -> Result<NewSession, ServerError> {
    let token = random_token();
    let csrf = random_token();
    sql.execute(
        "DELETE FROM web_sessions WHERE last_seen < ?1 OR created_at < ?2",
        sql_params![now - IDLE_TIMEOUT_SECS, now - ABSOLUTE_TIMEOUT_SECS],
    )?;
    sql.execute(
        "INSERT INTO web_sessions (token_hash, user_id, csrf, created_at, last_seen) VALUES (?1, ?2, ?3, ?4, ?4)",
        sql_params![&token_hash(&token), &user_id.to_string(), &csrf, now],
    )?;
    Ok(NewSession {
        token,
        csrf,
        user_id,
    })
}

/// Ends a session.
pub fn end_session(sql: &mut dyn Sql, token: &str, now: i64) -> Result<(), ServerError> {
    let user: Option<String> = sql
        .query_opt(
            "DELETE FROM web_sessions WHERE token_hash = ?1 RETURNING user_id",
            sql_params![&token_hash(token)],
        )?
        .map(|r| r.get(0))
        .transpose()?;
    if let Some(user) = user.and_then(|u| Uuid::try_parse(&u).ok()) {
        crate::store::audit(sql, now, "web_logout", Some(&user), None)?;
    }
    Ok(())
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
}

impl WebUser {
    /// Case managers and admins.
    pub fn require_office(&self) -> Result<(), WebError> {
        match self.role {
            Role::CaseManager | Role::Admin => Ok(()),
            _ => Err(WebError::Forbidden),
        }
    }

    /// Admins only.
    pub fn require_admin(&self) -> Result<(), WebError> {
        match self.role {
            Role::Admin => Ok(()),
            _ => Err(WebError::Forbidden),
        }
    }

    /// Refuses a form whose CSRF token is not this session's.
    pub fn check_csrf(&self, token: Option<&str>) -> Result<(), WebError> {
        match token {
            Some(t) if same(t, &self.csrf) => Ok(()),
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

impl From<crate::sql::SqlError> for WebError {
    fn from(e: crate::sql::SqlError) -> Self {
        WebError::from(ServerError::Sql(e))
    }
}

impl From<ServerError> for WebError {
    fn from(e: ServerError) -> Self {
        match e {
            ServerError::UnknownCase
            | ServerError::UnknownDevice
            | ServerError::UnknownUser
            | ServerError::UnknownQuarantine => WebError::NotFound,
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
        (status, super::secure_headers(), page).into_response()
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

impl FromRequestParts<AppState> for WebUser {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, WebError> {
        let token = cookie(parts, SESSION_COOKIE)
            .ok_or(WebError::Login)?
            .to_owned();
        let now = state.now();
        let found = state
            .db()
            .call_write(move |sql| {
                let hash = token_hash(&token);
                let Some(r) = sql.query_opt(
                    "SELECT u.id, u.name, u.role, s.csrf, coalesce(w.lang, 'en'), s.last_seen, s.created_at
                     FROM web_sessions s JOIN users u ON u.id = s.user_id
                     LEFT JOIN web_logins w ON w.user_id = u.id
                     WHERE s.token_hash = ?1 AND u.active = 1",
                    sql_params![&hash],
                )?
                else {
                    return Ok(None);
                };
                let (id, name, role, csrf, lang): (String, String, String, String, String) =
                    (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?);
                let (last_seen, created): (i64, i64) = (r.get(5)?, r.get(6)?);
                if now - last_seen > IDLE_TIMEOUT_SECS || now - created > ABSOLUTE_TIMEOUT_SECS {
                    sql.execute(
                        "DELETE FROM web_sessions WHERE token_hash = ?1",
                        sql_params![&hash],
                    )?;
                    return Ok(None);
                }
                sql.execute(
                    "UPDATE web_sessions SET last_seen = ?2 WHERE token_hash = ?1",
                    sql_params![&hash, now],
                )?;
                Ok::<_, AppError>(Some((id, name, role, csrf, lang, token)))
            })
            .await
            .map_err(WebError::Internal)?;
        let (id, name, role, csrf, lang, token) = found.ok_or(WebError::Login)?;
        let lang = Lang::from_code(&lang);
        // Refusals from here on speak the user's language.
        let _ = REQUEST_LANG.try_with(|l| l.set(lang));
        Ok(WebUser {
            id: Uuid::try_parse(&id).map_err(|_| WebError::Login)?,
            name,
            role: Role::parse(&role).ok_or(WebError::Login)?,
            lang,
            csrf,
            token,
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
