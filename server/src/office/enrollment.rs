//! Enrollment: one-time codes that bind one new device to a user (only the code's hash is
//! stored), and registering the device's public key when a phone presents a code.

use fieldcase_core::protocol::{self, Role};
use rand::RngCore;
use rand::rngs::OsRng;
use uuid::Uuid;

use super::audit;
use super::rows::{parse_role, parse_uuid};
use crate::error::{ServerError, SqlError};
use crate::sql_params;
use crate::storage::sql::Sql;

/// A freshly issued enrollment code. The code itself is shown once and never stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedCode {
    /// The code, formatted for typing (`XXXX-XXXX-XXXX-XXXX`).
    pub code: String,
    /// The user the code enrolls a device for.
    pub user_id: Uuid,
    /// Expiry, Unix seconds.
    pub expires_at: i64,
}

/// The enrollment invite for `code` (`XXXX-XXXX-XXXX-XXXX`) at the office reached at `url`
/// whose certificate is `pin`: the text the enrollment page shows as a QR code and `admin
/// enroll` prints, which a phone scans to enroll without typing
/// ([`protocol::EnrollmentInvite`]). `None` when `url` is not an address a phone can pin
/// (`https://host[:port]`).
pub fn invite(url: &str, pin: protocol::Fingerprint, code: &str) -> Option<String> {
    protocol::EnrollmentInvite::new(url, pin, code)
        .ok()
        .map(|i| i.encode())
}

/// A successful enrollment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enrolled {
    /// New device id.
    pub device_id: Uuid,
    /// Its user.
    pub user_id: Uuid,
    /// The user's role.
    pub role: Role,
}

/// Why an enrollment was refused.
#[derive(Debug, thiserror::Error)]
pub enum EnrollRefusal {
    /// No such code.
    #[error("unknown enrollment code")]
    Unknown,
    /// Already used.
    #[error("enrollment code already used")]
    Used,
    /// Expired.
    #[error("enrollment code expired")]
    Expired,
    /// User deactivated.
    #[error("user deactivated")]
    UserInactive,
    /// Public key already enrolled.
    #[error("device key already enrolled")]
    KeyInUse,
    /// Database failure.
    #[error(transparent)]
    Db(#[from] SqlError),
}

/// Issues a one-time enrollment code for the user called `user_name`, valid for `ttl_secs`,
/// inside the caller's write transaction. Only the code's hash is stored.
pub fn issue_enrollment_code(
    sql: &mut dyn Sql,
    user_name: &str,
    ttl_secs: i64,
    now: i64,
) -> Result<IssuedCode, ServerError> {
    let Some(user) = sql.query_opt(
        "SELECT id, active FROM users WHERE name = ?1",
        sql_params![user_name.trim()],
    )?
    else {
        return Err(ServerError::UnknownUser);
    };
    if user.get::<i64>(1)? == 0 {
        return Err(ServerError::UserInactive);
    }
    let user_id = parse_uuid(&user.get::<String>(0)?)?;
    let mut random = [0u8; 10];
    OsRng.fill_bytes(&mut random);
    let code = protocol::format_enrollment_code(&random);
    let normalized = protocol::normalize_enrollment_code(&code)
        .map_err(|_| ServerError::Internal("enrollment code encoding"))?;
    let hash = protocol::enrollment_code_hash(&normalized);
    let expires_at = now.saturating_add(ttl_secs);
    sql.execute(
        "INSERT INTO enrollment_codes (code_hash, user_id, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4)",
        sql_params![hash.as_slice(), &user_id.to_string(), now, expires_at],
    )?;
    audit::record(sql, now, "enrollment_code_issued", Some(&user_id), None)?;
    Ok(IssuedCode {
        code,
        user_id,
        expires_at,
    })
}

/// Consumes an enrollment code (by hash) and registers a device with `public_key`, inside the
/// caller's write transaction (a refusal writes nothing). With `needs_confirmation` the device
/// may not sync until an admin confirms its key fingerprint
/// ([`crate::office::devices::confirm_device`]).
pub fn enroll_device(
    sql: &mut dyn Sql,
    code_hash: &[u8; 32],
    public_key: &[u8; 32],
    needs_confirmation: bool,
    now: i64,
) -> Result<Enrolled, EnrollRefusal> {
    let Some(row) = sql.query_opt(
        "SELECT c.user_id, c.expires_at, c.used_at, u.role, u.active
         FROM enrollment_codes c JOIN users u ON u.id = c.user_id
         WHERE c.code_hash = ?1",
        sql_params![code_hash.as_slice()],
    )?
    else {
        return Err(EnrollRefusal::Unknown);
    };
    if row.get::<Option<i64>>(2)?.is_some() {
        return Err(EnrollRefusal::Used);
    }
    if now >= row.get::<i64>(1)? {
        return Err(EnrollRefusal::Expired);
    }
    if row.get::<i64>(4)? == 0 {
        return Err(EnrollRefusal::UserInactive);
    }
    if sql
        .query_opt(
            "SELECT id FROM devices WHERE public_key = ?1",
            sql_params![public_key.as_slice()],
        )?
        .is_some()
    {
        return Err(EnrollRefusal::KeyInUse);
    }
    let user_id = parse_uuid(&row.get::<String>(0)?)?;
    let role = parse_role(&row.get::<String>(3)?)?;
    let device_id = Uuid::new_v4();
    let changed = sql.execute(
        "UPDATE enrollment_codes SET used_at = ?1, device_id = ?2
         WHERE code_hash = ?3 AND used_at IS NULL AND expires_at > ?1",
        sql_params![now, &device_id.to_string(), code_hash.as_slice()],
    )?;
    if changed != 1 {
        return Err(EnrollRefusal::Used);
    }
    sql.execute(
        "INSERT INTO devices (id, user_id, public_key, status, enrolled_at, confirmed_at)
         VALUES (?1, ?2, ?3, 'active', ?4, ?5)",
        sql_params![
            &device_id.to_string(),
            &user_id.to_string(),
            public_key.as_slice(),
            now,
            (!needs_confirmation).then_some(now)
        ],
    )?;
    audit::record(
        sql,
        now,
        "device_enrolled",
        Some(&user_id),
        Some(&device_id),
    )?;
    Ok(Enrolled {
        device_id,
        user_id,
        role,
    })
}
