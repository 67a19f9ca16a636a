//! Signing in to the office's web pages: passwords (argon2id hashes, a new one ends every
//! session of the user), logins rate-limited per name and client address with every refusal
//! recorded, sessions stored only as the SHA-256 of their token with an idle and an absolute
//! expiry, and each user's page language. The cookies and the extractor that reads them are
//! the HTTP layer's ([`crate::http::web`]); this module is what they ask.

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng as HashRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use fieldcase_core::protocol::Role;
use rand::RngCore;
use rand::rngs::OsRng;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::audit;
use super::rows::{parse_role, parse_uuid};
use super::users::user_id_by_name;
use crate::error::ServerError;
use crate::sql_params;
use crate::storage::sql::Sql;

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
    let user = user_id_by_name(sql, name)?;
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
    audit::record(sql, now, "web_password_set", Some(&user), None)?;
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
            audit::record(sql, now, "web_login_failed", user.as_ref(), None)?;
            return Ok(Err(LoginRefusal::BadCredentials));
        }
    };
    let session = create_session(sql, user_id, now)?;
    audit::record(sql, now, "web_login", Some(&user_id), None)?;
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
        audit::record(sql, now, "web_logout", Some(&user), None)?;
    }
    Ok(())
}

/// The user behind a live session.
#[derive(Debug, Clone)]
pub struct SessionUser {
    /// User id.
    pub user_id: Uuid,
    /// Display name.
    pub name: String,
    /// Role, as stored now (a change takes effect on the next request).
    pub role: Role,
    /// The session's CSRF token.
    pub csrf: String,
    /// The user's page language code (`en` unless chosen).
    pub lang: String,
}

/// The user of the session whose cookie token is `token`, if it is live and the user active;
/// marks the session used now. An expired session is deleted and reads as none.
pub fn session(
    sql: &mut dyn Sql,
    token: &str,
    now: i64,
) -> Result<Option<SessionUser>, ServerError> {
    let hash = token_hash(token);
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
    Ok(Some(SessionUser {
        user_id: parse_uuid(&r.get::<String>(0)?)?,
        name: r.get(1)?,
        role: parse_role(&r.get::<String>(2)?)?,
        csrf: r.get(3)?,
        lang: r.get(4)?,
    }))
}

/// The page language a user chose, if any.
pub fn user_lang(sql: &mut dyn Sql, user: &Uuid) -> Result<Option<String>, ServerError> {
    Ok(sql
        .query_opt(
            "SELECT lang FROM web_logins WHERE user_id = ?1",
            sql_params![&user.to_string()],
        )?
        .map(|r| r.get::<Option<String>>(0))
        .transpose()?
        .flatten())
}

/// Records the page language a user chose (a language code the caller checked).
pub fn set_user_lang(sql: &mut dyn Sql, user: &Uuid, lang: &str) -> Result<(), ServerError> {
    sql.execute(
        "UPDATE web_logins SET lang = ?2 WHERE user_id = ?1",
        sql_params![&user.to_string(), lang],
    )?;
    Ok(())
}
