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
use hmac::{Hmac, Mac};
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
/// Failed logins allowed per user name from one client address per window.
pub const FAILURES_PER_NAME_AND_ADDRESS: i64 = 5;
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

/// A login that passed the limits: its password is checked next, outside any transaction
/// ([`check_password`]: argon2 takes tens of milliseconds and must not hold the database), then
/// [`finish_login`] records the outcome. It is counted as a failure from the start, so that
/// attempts sent at once cannot run more password checks than the limits allow.
#[derive(Debug)]
pub struct LoginAttempt {
    ip: String,
    name_tag: String,
    /// The active user of that name and their password hash, if there is one.
    user: Option<(Uuid, String)>,
}

/// The form in which a typed user name is kept among the failures: an HMAC under a key of
/// this office, never the text (a password typed into the name field must not be stored).
fn name_tag(key: &[u8; 32], name: &str) -> Result<String, ServerError> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
        .map_err(|_| ServerError::Internal("the login failure key"))?;
    mac.update(name.trim().to_lowercase().as_bytes());
    Ok(hex::encode(mac.finalize().into_bytes()))
}

/// Seconds a name must wait after its `failures`-th failure from one address before the next
/// attempt from there: 1, 2, 4, 8 s, at most a minute.
fn delay_after(failures: i64) -> i64 {
    let exponent = u32::try_from(failures.saturating_sub(1).clamp(0, 6)).unwrap_or(6);
    (1_i64 << exponent).min(60)
}

/// Starts a login inside the caller's write transaction (commit it whatever the answer):
/// refuses it while the name has failed [`FAILURES_PER_NAME_AND_ADDRESS`] times from this
/// address, or this address [`FAILURES_PER_IP`] times, within [`FAILURE_WINDOW_SECS`], or
/// before the delay after the last failure of the name from this address has passed.
/// Counting by name and address together, not by name alone, keeps anyone from locking a
/// user out by failing on purpose from elsewhere. `key` tags the typed name
/// ([`crate::storage::keys::ServerKeys::derive`]).
pub fn begin_login(
    sql: &mut dyn Sql,
    key: &[u8; 32],
    ip: &str,
    name: &str,
    now: i64,
) -> Result<Result<LoginAttempt, LoginRefusal>, ServerError> {
    let tag = name_tag(key, name)?;
    let since = now - FAILURE_WINDOW_SECS;
    sql.execute(
        "DELETE FROM web_login_failures WHERE at < ?1",
        sql_params![since],
    )?;
    let counts = sql.query_row(
        "SELECT CAST(coalesce(sum(CASE WHEN name = ?1 AND ip = ?2 THEN 1 ELSE 0 END), 0) AS BIGINT),
                CAST(coalesce(sum(CASE WHEN ip = ?2 THEN 1 ELSE 0 END), 0) AS BIGINT),
                CAST(coalesce(max(CASE WHEN name = ?1 AND ip = ?2 THEN at END), 0) AS BIGINT)
         FROM web_login_failures WHERE at >= ?3",
        sql_params![&tag, ip, since],
    )?;
    let (by_pair, by_ip, last): (i64, i64, i64) = (counts.get(0)?, counts.get(1)?, counts.get(2)?);
    if by_pair >= FAILURES_PER_NAME_AND_ADDRESS
        || by_ip >= FAILURES_PER_IP
        || (by_pair > 0 && now < last.saturating_add(delay_after(by_pair)))
    {
        return Ok(Err(LoginRefusal::TooManyAttempts));
    }
    sql.execute(
        "INSERT INTO web_login_failures (ip, name, at) VALUES (?1, ?2, ?3)",
        sql_params![ip, &tag, now],
    )?;
    let user = match sql.query_opt(
        "SELECT u.id, w.password_hash FROM users u JOIN web_logins w ON w.user_id = u.id
         WHERE u.name = ?1 AND u.active = 1",
        sql_params![name.trim()],
    )? {
        Some(r) => Some((parse_uuid(&r.get::<String>(0)?)?, r.get(1)?)),
        None => None,
    };
    Ok(Ok(LoginAttempt {
        ip: ip.to_owned(),
        name_tag: tag,
        user,
    }))
}

/// Checks the password of an attempt (argon2id; the same work whether or not the user
/// exists). Runs outside any transaction.
pub fn check_password(attempt: &LoginAttempt, password: &str) -> bool {
    match &attempt.user {
        Some((_, hash)) => PasswordHash::new(hash)
            .map(|h| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &h)
                    .is_ok()
            })
            .unwrap_or(false),
        None => {
            let salt = SaltString::generate(&mut HashRng);
            let _ = Argon2::default().hash_password(password.as_bytes(), &salt);
            false
        }
    }
}

/// Records the outcome of an attempt inside the caller's write transaction: with the right
/// password the failures of the name from this address are cleared and a session opens;
/// otherwise the attempt stays counted. Both are audited.
pub fn finish_login(
    sql: &mut dyn Sql,
    attempt: LoginAttempt,
    password_ok: bool,
    now: i64,
) -> Result<Result<NewSession, LoginRefusal>, ServerError> {
    match attempt.user {
        Some((user_id, _)) if password_ok => {
            sql.execute(
                "DELETE FROM web_login_failures WHERE ip = ?1 AND name = ?2",
                sql_params![&attempt.ip, &attempt.name_tag],
            )?;
            let session = create_session(sql, user_id, now)?;
            audit::record(sql, now, "web_login", Some(&user_id), None)?;
            Ok(Ok(session))
        }
        user => {
            let user = user.map(|(id, _)| id);
            audit::record(sql, now, "web_login_failed", user.as_ref(), None)?;
            Ok(Err(LoginRefusal::BadCredentials))
        }
    }
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

/// Whether a session last used at `last_seen` and opened at `created` has ended by `now`:
/// idle too long, or open too long whatever happened.
fn expired(last_seen: i64, created: i64, now: i64) -> bool {
    now - last_seen > IDLE_TIMEOUT_SECS || now - created > ABSOLUTE_TIMEOUT_SECS
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
/// with `activity`, marks the session used now (a request the person made; not the page's own
/// background polls, which must not keep an unattended page signed in). An expired session is
/// deleted and reads as none.
pub fn session(
    sql: &mut dyn Sql,
    token: &str,
    now: i64,
    activity: bool,
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
    if expired(last_seen, created, now) {
        sql.execute(
            "DELETE FROM web_sessions WHERE token_hash = ?1",
            sql_params![&hash],
        )?;
        return Ok(None);
    }
    if activity {
        sql.execute(
            "UPDATE web_sessions SET last_seen = ?2 WHERE token_hash = ?1",
            sql_params![&hash, now],
        )?;
    }
    Ok(Some(SessionUser {
        user_id: parse_uuid(&r.get::<String>(0)?)?,
        name: r.get(1)?,
        role: parse_role(&r.get::<String>(2)?)?,
        csrf: r.get(3)?,
        lang: r.get(4)?,
    }))
}

/// Who holds the session of `token`, if it is still live and her account active, read without
/// writing (a live-update stream asks this before each event, so that it ends at logout,
/// expiry, deactivation or a change of role).
pub fn live_session(
    sql: &mut dyn Sql,
    token: &str,
    now: i64,
) -> Result<Option<super::access::Staff>, ServerError> {
    let Some(r) = sql.query_opt(
        "SELECT u.id, u.role, s.last_seen, s.created_at
         FROM web_sessions s JOIN users u ON u.id = s.user_id
         WHERE s.token_hash = ?1 AND u.active = 1",
        sql_params![&token_hash(token)],
    )?
    else {
        return Ok(None);
    };
    let staff = super::access::Staff {
        id: parse_uuid(&r.get::<String>(0)?)?,
        role: parse_role(&r.get::<String>(1)?)?,
    };
    let (last_seen, created): (i64, i64) = (r.get(2)?, r.get(3)?);
    Ok((!expired(last_seen, created, now)).then_some(staff))
}

/// How recent a web sign-in must be for the same user's device to make admin changes through
/// the admin API, seconds.
pub const RECENT_SIGN_IN_SECS: i64 = 15 * 60;

/// Whether `user` signed in to the web pages within [`RECENT_SIGN_IN_SECS`] and that session is
/// still live: what lets a device of the same user make admin changes, so that a phone alone
/// (a stolen admin phone) cannot revoke devices, change roles or release quarantine.
pub fn signed_in_recently(sql: &mut dyn Sql, user: &Uuid, now: i64) -> Result<bool, ServerError> {
    Ok(sql
        .query_opt(
            "SELECT 1 FROM web_sessions s JOIN users u ON u.id = s.user_id
             WHERE s.user_id = ?1 AND u.active = 1 AND s.created_at >= ?2 AND s.last_seen >= ?3
             LIMIT 1",
            sql_params![
                &user.to_string(),
                now - RECENT_SIGN_IN_SECS,
                now - IDLE_TIMEOUT_SECS
            ],
        )?
        .is_some())
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
