//! Queries on the server database: users, enrollment codes, devices, request nonces, audit log.
//!
//! Plain synchronous functions over a [`Sql`] connection of either backend, used by the HTTP
//! handlers (through [`crate::sql::Database::call_write`] and `call_read`) and by the admin
//! commands alike. Functions that change several rows run inside the caller's write
//! transaction ([`crate::sql::Database::write`]), which makes them atomic.

use ed25519_dalek::VerifyingKey;
use fieldcase_core::protocol::{self, Role};
use rand::RngCore;
use rand::rngs::OsRng;
use uuid::Uuid;

use crate::error::ServerError;
use crate::sql::{Sql, SqlError};
use crate::sql_params;

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
    Db(#[from] SqlError),
}

/// A stored id read back as a UUID; a malformed one is a column of the wrong type.
pub(crate) fn parse_uuid(s: &str) -> Result<Uuid, SqlError> {
    Uuid::try_parse(s).map_err(|_| SqlError::ColumnType {
        index: 0,
        expected: "a UUID",
        found: "other text",
    })
}

pub(crate) fn parse_role(s: &str) -> Result<Role, SqlError> {
    Role::parse(s).ok_or(SqlError::ColumnType {
        index: 0,
        expected: "a role",
        found: "other text",
    })
}

/// Appends one hash-chained audit record (ids only, never names or secrets) inside the caller's
/// transaction; see [`crate::audit`].
pub fn audit(
    sql: &mut dyn Sql,
    now: i64,
    action: &str,
    user_id: Option<&Uuid>,
    device_id: Option<&Uuid>,
) -> Result<(), SqlError> {
    audit_with_detail(sql, now, action, user_id, device_id, None)
}

/// Like [`audit`] with a short machine `detail` (an id, a reason from a fixed vocabulary, a
/// count; never personal data), at most [`crate::audit::MAX_DETAIL_LEN`] bytes.
pub fn audit_with_detail(
    sql: &mut dyn Sql,
    now: i64,
    action: &str,
    user_id: Option<&Uuid>,
    device_id: Option<&Uuid>,
    detail: Option<&str>,
) -> Result<(), SqlError> {
    crate::audit::append(
        sql,
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

/// Adds a user with a random UUIDv7 id, inside the caller's write transaction.
pub fn add_user(sql: &mut dyn Sql, name: &str, role: Role, now: i64) -> Result<Uuid, ServerError> {
    let name = name.trim();
    if name.is_empty() || name.len() > 200 {
        return Err(ServerError::Config(
            "a user name is 1 to 200 characters".to_owned(),
        ));
    }
    if sql
        .query_opt("SELECT id FROM users WHERE name = ?1", sql_params![name])?
        .is_some()
    {
        return Err(ServerError::DuplicateUser);
    }
    let id = Uuid::now_v7();
    sql.execute(
        "INSERT INTO users (id, name, role, active, created_at) VALUES (?1, ?2, ?3, 1, ?4)",
        sql_params![&id.to_string(), name, role.as_str(), now],
    )?;
    audit(sql, now, "user_added", Some(&id), None)?;
    Ok(id)
}

/// The id of the user called `name` (case-insensitive).
pub fn user_id_by_name(sql: &mut dyn Sql, name: &str) -> Result<Uuid, ServerError> {
    let row = sql
        .query_opt("SELECT id FROM users WHERE name = ?1", sql_params![name])?
        .ok_or(ServerError::UnknownUser)?;
    Ok(parse_uuid(&row.get::<String>(0)?)?)
}

/// Lists users by name.
pub fn list_users(sql: &mut dyn Sql) -> Result<Vec<UserRow>, ServerError> {
    let rows = sql.query_all(
        "SELECT u.id, u.name, u.role, u.active,
                (SELECT count(*) FROM devices d WHERE d.user_id = u.id AND d.status = 'active')
         FROM users u ORDER BY u.name",
        &[],
    )?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        out.push(UserRow {
            id: parse_uuid(&r.get::<String>(0)?)?,
            name: r.get(1)?,
            role: parse_role(&r.get::<String>(2)?)?,
            active: r.get::<i64>(3)? != 0,
            active_devices: u32::try_from(r.get::<i64>(4)?).unwrap_or(u32::MAX),
        });
    }
    Ok(out)
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
    audit(sql, now, "enrollment_code_issued", Some(&user_id), None)?;
    Ok(IssuedCode {
        code,
        user_id,
        expires_at,
    })
}

/// Consumes an enrollment code (by hash) and registers a device with `public_key`, inside the
/// caller's write transaction (a refusal writes nothing).
pub fn enroll_device(
    sql: &mut dyn Sql,
    code_hash: &[u8; 32],
    public_key: &[u8; 32],
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
    let device_id = Uuid::now_v7();
    let changed = sql.execute(
        "UPDATE enrollment_codes SET used_at = ?1, device_id = ?2
         WHERE code_hash = ?3 AND used_at IS NULL AND expires_at > ?1",
        sql_params![now, &device_id.to_string(), code_hash.as_slice()],
    )?;
    if changed != 1 {
        return Err(EnrollRefusal::Used);
    }
    sql.execute(
        "INSERT INTO devices (id, user_id, public_key, status, enrolled_at)
         VALUES (?1, ?2, ?3, 'active', ?4)",
        sql_params![
            &device_id.to_string(),
            &user_id.to_string(),
            public_key.as_slice(),
            now
        ],
    )?;
    audit(
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

/// Looks a device up with its user's state (for every authenticated request).
pub fn lookup_device(sql: &mut dyn Sql, device_id: &Uuid) -> Result<Option<DeviceRow>, SqlError> {
    let Some(r) = sql.query_opt(
        "SELECT d.id, d.user_id, u.role, d.public_key, d.status, u.active
         FROM devices d JOIN users u ON u.id = d.user_id WHERE d.id = ?1",
        sql_params![&device_id.to_string()],
    )?
    else {
        return Ok(None);
    };
    let key: Vec<u8> = r.get(3)?;
    let public_key: [u8; 32] = key
        .as_slice()
        .try_into()
        .map_err(|_| SqlError::ColumnType {
            index: 3,
            expected: "a 32-byte public key",
            found: "a blob of another length",
        })?;
    Ok(Some(DeviceRow {
        id: parse_uuid(&r.get::<String>(0)?)?,
        user_id: parse_uuid(&r.get::<String>(1)?)?,
        role: parse_role(&r.get::<String>(2)?)?,
        public_key,
        device_active: r.get::<String>(4)? == "active",
        user_active: r.get::<i64>(5)? != 0,
    }))
}

/// Records a nonce for a device until `expires_at`, inside the caller's write transaction;
/// `false` if it was seen before (a replay). Prunes nonces whose window has passed.
pub fn record_nonce(
    sql: &mut dyn Sql,
    device_id: &Uuid,
    nonce: &[u8],
    expires_at: i64,
    now: i64,
) -> Result<bool, SqlError> {
    sql.execute(
        "DELETE FROM request_nonces WHERE expires_at < ?1",
        sql_params![now],
    )?;
    let inserted = sql.execute(
        "INSERT INTO request_nonces (device_id, nonce, expires_at) VALUES (?1, ?2, ?3)
         ON CONFLICT DO NOTHING",
        sql_params![&device_id.to_string(), nonce, expires_at],
    )?;
    Ok(inserted == 1)
}

/// Whether a device exists, is active, and belongs to an active user (read inside the caller's
/// transaction, so a revocation that committed meanwhile is seen).
pub fn device_is_active(sql: &mut dyn Sql, device_id: &Uuid) -> Result<bool, SqlError> {
    Ok(sql
        .query_opt(
            "SELECT d.status = 'active' AND u.active = 1 FROM devices d JOIN users u ON u.id = d.user_id WHERE d.id = ?1",
            sql_params![&device_id.to_string()],
        )?
        .map(|r| r.get::<bool>(0))
        .transpose()?
        .unwrap_or(false))
}

/// A device's enrolled public key, whatever its state (to check its signed receipts).
pub fn device_public_key(
    sql: &mut dyn Sql,
    device_id: &Uuid,
) -> Result<Option<VerifyingKey>, SqlError> {
    let bytes: Option<Vec<u8>> = sql
        .query_opt(
            "SELECT public_key FROM devices WHERE id = ?1",
            sql_params![&device_id.to_string()],
        )?
        .map(|r| r.get(0))
        .transpose()?;
    Ok(bytes
        .and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok())
        .and_then(|b| VerifyingKey::from_bytes(&b).ok()))
}
