//! Queries on the server database: users, enrollment codes, devices, request nonces, audit log.
//!
//! Plain synchronous functions over a [`rusqlite::Connection`], used by the HTTP handlers (through
//! [`crate::db::Db::call`]) and by the admin commands alike.

use ed25519_dalek::VerifyingKey;
use fieldcase_core::protocol::{self, Role};
use rand::RngCore;
use rand::rngs::OsRng;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use uuid::Uuid;

use crate::error::ServerError;

/// A user as listed by `admin user list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRow {
    /// Random UUIDv7 id.
    pub id: Uuid,
    /// Display name (personal data: stays in the database).
    pub name: String,
    /// Role.
    pub role: Role,
    /// Whether the user may use the system.
    pub active: bool,
    /// Number of active devices.
    pub active_devices: u32,
}

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

/// A device as seen by request authentication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRow {
    /// Device id.
    pub id: Uuid,
    /// Owning user.
    pub user_id: Uuid,
    /// The user's role.
    pub role: Role,
    /// Ed25519 public key.
    pub public_key: [u8; 32],
    /// Device not revoked.
    pub device_active: bool,
    /// User not deactivated.
    pub user_active: bool,
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
    Db(#[from] rusqlite::Error),
}

fn parse_uuid(s: &str) -> Result<Uuid, rusqlite::Error> {
    Uuid::try_parse(s).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })
}

fn parse_role(s: &str) -> Result<Role, rusqlite::Error> {
    Role::parse(s).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            0,
            rusqlite::types::Type::Text,
            "unknown role".into(),
        )
    })
}

/// Appends one hash-chained audit record (ids only, never names or secrets) inside the caller's
/// transaction; see [`crate::audit`].
pub fn audit(
    conn: &Connection,
    now: i64,
    action: &str,
    user_id: Option<&Uuid>,
    device_id: Option<&Uuid>,
) -> Result<(), rusqlite::Error> {
    audit_with_detail(conn, now, action, user_id, device_id, None)
}

/// Like [`audit`] with a short machine `detail` (an id, a reason from a fixed vocabulary, a
/// count; never personal data), at most [`crate::audit::MAX_DETAIL_LEN`] bytes.
pub fn audit_with_detail(
    conn: &Connection,
    now: i64,
    action: &str,
    user_id: Option<&Uuid>,
    device_id: Option<&Uuid>,
    detail: Option<&str>,
) -> Result<(), rusqlite::Error> {
    crate::audit::append(
        conn,
        &crate::audit::NewEntry {
            at: now,
            action,
            user_id,
            device_id,
            detail,
        },
    )?;
    Ok(())
}

/// Adds a user with a random UUIDv7 id.
pub fn add_user(
    conn: &mut Connection,
    name: &str,
    role: Role,
    now: i64,
) -> Result<Uuid, ServerError> {
    let name = name.trim();
    if name.is_empty() || name.len() > 200 {
        return Err(ServerError::Config(
            "a user name is 1 to 200 characters".to_owned(),
        ));
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let exists: Option<String> = tx
        .query_row("SELECT id FROM users WHERE name = ?1", [name], |r| r.get(0))
        .optional()?;
    if exists.is_some() {
        return Err(ServerError::DuplicateUser);
    }
    let id = Uuid::now_v7();
    tx.execute(
        "INSERT INTO users (id, name, role, active, created_at) VALUES (?1, ?2, ?3, 1, ?4)",
        params![id.to_string(), name, role.as_str(), now],
    )?;
    audit(&tx, now, "user_added", Some(&id), None)?;
    tx.commit()?;
    Ok(id)
}

/// The id of the user called `name` (case-insensitive).
pub fn user_id_by_name(conn: &Connection, name: &str) -> Result<Uuid, ServerError> {
    let id: Option<String> = conn
        .query_row("SELECT id FROM users WHERE name = ?1", [name], |r| r.get(0))
        .optional()?;
    let id = id.ok_or(ServerError::UnknownUser)?;
    Ok(parse_uuid(&id)?)
}

/// Lists users by name.
pub fn list_users(conn: &Connection) -> Result<Vec<UserRow>, ServerError> {
    let mut stmt = conn.prepare(
        "SELECT u.id, u.name, u.role, u.active,
                (SELECT count(*) FROM devices d WHERE d.user_id = u.id AND d.status = 'active')
         FROM users u ORDER BY u.name",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(UserRow {
            id: parse_uuid(&r.get::<_, String>(0)?)?,
            name: r.get(1)?,
            role: parse_role(&r.get::<_, String>(2)?)?,
            active: r.get::<_, i64>(3)? != 0,
            active_devices: r.get(4)?,
        })
    })?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// Issues a one-time enrollment code for the user called `user_name`, valid for `ttl_secs`.
/// Only the code's hash is stored.
pub fn issue_enrollment_code(
    conn: &mut Connection,
    user_name: &str,
    ttl_secs: i64,
    now: i64,
) -> Result<IssuedCode, ServerError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let user: Option<(String, i64)> = tx
        .query_row(
            "SELECT id, active FROM users WHERE name = ?1",
            [user_name.trim()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let Some((user_id, active)) = user else {
        return Err(ServerError::UnknownUser);
    };
    if active == 0 {
        return Err(ServerError::UserInactive);
    }
    let user_id = parse_uuid(&user_id)?;
    let mut random = [0u8; 10];
    OsRng.fill_bytes(&mut random);
    let code = protocol::format_enrollment_code(&random);
    let normalized = protocol::normalize_enrollment_code(&code)
        .map_err(|_| ServerError::Internal("enrollment code encoding"))?;
    let hash = protocol::enrollment_code_hash(&normalized);
    let expires_at = now.saturating_add(ttl_secs);
    tx.execute(
        "INSERT INTO enrollment_codes (code_hash, user_id, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4)",
        params![hash.as_slice(), user_id.to_string(), now, expires_at],
    )?;
    audit(&tx, now, "enrollment_code_issued", Some(&user_id), None)?;
    tx.commit()?;
    Ok(IssuedCode {
        code,
        user_id,
        expires_at,
    })
}

/// Consumes an enrollment code (by hash) and registers a device with `public_key`, atomically.
pub fn enroll_device(
    conn: &mut Connection,
    code_hash: &[u8; 32],
    public_key: &[u8; 32],
    now: i64,
) -> Result<Enrolled, EnrollRefusal> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let row: Option<(String, i64, Option<i64>, String, i64)> = tx
        .query_row(
            "SELECT c.user_id, c.expires_at, c.used_at, u.role, u.active
             FROM enrollment_codes c JOIN users u ON u.id = c.user_id
             WHERE c.code_hash = ?1",
            [code_hash.as_slice()],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .optional()?;
    let Some((user_id, expires_at, used_at, role, active)) = row else {
        return Err(EnrollRefusal::Unknown);
    };
    if used_at.is_some() {
        return Err(EnrollRefusal::Used);
    }
    if now >= expires_at {
        return Err(EnrollRefusal::Expired);
    }
    if active == 0 {
        return Err(EnrollRefusal::UserInactive);
    }
    let key_taken: Option<String> = tx
        .query_row(
            "SELECT id FROM devices WHERE public_key = ?1",
            [public_key.as_slice()],
            |r| r.get(0),
        )
        .optional()?;
    if key_taken.is_some() {
        return Err(EnrollRefusal::KeyInUse);
    }
    let user_id = parse_uuid(&user_id)?;
    let role = parse_role(&role)?;
    let device_id = Uuid::now_v7();
    let changed = tx.execute(
        "UPDATE enrollment_codes SET used_at = ?1, device_id = ?2
         WHERE code_hash = ?3 AND used_at IS NULL AND expires_at > ?1",
        params![now, device_id.to_string(), code_hash.as_slice()],
    )?;
    if changed != 1 {
        return Err(EnrollRefusal::Used);
    }
    tx.execute(
        "INSERT INTO devices (id, user_id, public_key, status, enrolled_at)
         VALUES (?1, ?2, ?3, 'active', ?4)",
        params![
            device_id.to_string(),
            user_id.to_string(),
            public_key.as_slice(),
            now
        ],
    )?;
    audit(
        &tx,
        now,
        "device_enrolled",
        Some(&user_id),
        Some(&device_id),
    )?;
    tx.commit()?;
    Ok(Enrolled {
        device_id,
        user_id,
        role,
    })
}

/// Looks a device up with its user's state (for every authenticated request).
pub fn lookup_device(
    conn: &Connection,
    device_id: &Uuid,
) -> Result<Option<DeviceRow>, rusqlite::Error> {
    conn.query_row(
        "SELECT d.id, d.user_id, u.role, d.public_key, d.status, u.active
         FROM devices d JOIN users u ON u.id = d.user_id WHERE d.id = ?1",
        [device_id.to_string()],
        |r| {
            let key: Vec<u8> = r.get(3)?;
            let public_key: [u8; 32] = key.as_slice().try_into().map_err(|_| {
                rusqlite::Error::FromSqlConversionFailure(
                    3,
                    rusqlite::types::Type::Blob,
                    "public key is not 32 bytes".into(),
                )
            })?;
            Ok(DeviceRow {
                id: parse_uuid(&r.get::<_, String>(0)?)?,
                user_id: parse_uuid(&r.get::<_, String>(1)?)?,
                role: parse_role(&r.get::<_, String>(2)?)?,
                public_key,
                device_active: r.get::<_, String>(4)? == "active",
                user_active: r.get::<_, i64>(5)? != 0,
            })
        },
    )
    .optional()
}

/// Records a nonce for a device until `expires_at`; `false` if it was seen before (a replay).
/// Prunes nonces whose window has passed.
pub fn record_nonce(
    conn: &mut Connection,
    device_id: &Uuid,
    nonce: &[u8],
    expires_at: i64,
    now: i64,
) -> Result<bool, rusqlite::Error> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute("DELETE FROM request_nonces WHERE expires_at < ?1", [now])?;
    let inserted = tx.execute(
        "INSERT OR IGNORE INTO request_nonces (device_id, nonce, expires_at) VALUES (?1, ?2, ?3)",
        params![device_id.to_string(), nonce, expires_at],
    )?;
    tx.commit()?;
    Ok(inserted == 1)
}

/// Whether a device exists, is active, and belongs to an active user (read inside the caller's
/// transaction, so a revocation that committed meanwhile is seen).
pub fn device_is_active(conn: &Connection, device_id: &Uuid) -> Result<bool, rusqlite::Error> {
    Ok(conn
        .query_row(
            "SELECT d.status = 'active' AND u.active = 1 FROM devices d JOIN users u ON u.id = d.user_id WHERE d.id = ?1",
            [device_id.to_string()],
            |r| r.get::<_, bool>(0),
        )
        .optional()?
        .unwrap_or(false))
}

/// A device's enrolled public key, whatever its state (to check its signed receipts).
pub fn device_public_key(
    conn: &Connection,
    device_id: &Uuid,
) -> Result<Option<VerifyingKey>, rusqlite::Error> {
    let bytes: Option<Vec<u8>> = conn
        .query_row(
            "SELECT public_key FROM devices WHERE id = ?1",
            [device_id.to_string()],
            |r| r.get(0),
        )
        .optional()?;
    Ok(bytes
        .and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok())
        .and_then(|b| VerifyingKey::from_bytes(&b).ok()))
}
