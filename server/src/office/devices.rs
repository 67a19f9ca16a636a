//! Devices: what request authentication reads on every request (the device, its key, its
//! user's state, nonces never seen), the device list with each device's lifecycle (last sync,
//! lease, wipe and purge receipts), revocation (audited, in the caller's transaction, so it is
//! either fully recorded or not made), and what a sync or a wipe receipt records.
//!
//! Revocation takes effect on the device's next request because the HTTP layer's signed-request
//! extractor reads the device's state on every request.

use std::fmt;

use ed25519_dalek::VerifyingKey;
use fieldcase_core::protocol::{Role, WipeReceipt};
use uuid::Uuid;

use super::audit::{self, action};
use super::rows::{parse_role, parse_uuid};
use crate::error::{ServerError, SqlError};
use crate::sql_params;
use crate::storage::sql::Sql;

/// Audit detail of a revocation asked for directly by an admin.
pub const REVOKED_BY_ADMIN: &str = "admin";

/// Audit detail of a revocation that follows from deactivating the device's user.
pub const REVOKED_WITH_USER: &str = "user_deactivated";

/// A device's state as the server enforces it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceStatus {
    /// May make requests (if its user is active).
    Active,
    /// Refused on every request.
    Revoked,
}

impl DeviceStatus {
    /// `active` or `revoked`, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceStatus::Active => "active",
            DeviceStatus::Revoked => "revoked",
        }
    }
}

impl fmt::Display for DeviceStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One device as the admin sees it (`admin devices`, the devices page).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceInfo {
    /// Device id.
    pub device_id: Uuid,
    /// Owning user.
    pub user_id: Uuid,
    /// The user's name (personal data: for the admin's screen only, never for logs).
    pub user_name: String,
    /// The user's role.
    pub role: Role,
    /// Whether the user is active.
    pub user_active: bool,
    /// Enrollment time, Unix seconds.
    pub enrolled_at: i64,
    /// Last successful sync, Unix seconds.
    pub last_sync_at: Option<i64>,
    /// When the device's offline lease runs out, Unix seconds.
    pub lease_expires_at: Option<i64>,
    /// Active or revoked.
    pub status: DeviceStatus,
    /// Revocation time, Unix seconds.
    pub revoked_at: Option<i64>,
    /// When the device confirmed (signed receipt) that it wiped itself, Unix seconds.
    pub wiped_at: Option<i64>,
    /// Why it wiped (`revoked` or `panic`).
    pub wipe_reason: Option<String>,
    /// Number of case purge receipts the device sent.
    pub purge_receipts: u32,
    /// When an admin confirmed its key fingerprint (`None`: it waits, and may not sync).
    pub confirmed_at: Option<i64>,
    /// Its key fingerprint, as the phone shows it ([`fieldcase_core::protocol::key_fingerprint`]).
    pub fingerprint: String,
}

impl DeviceInfo {
    /// Whether the server accepts requests from this device (device active and confirmed, user
    /// active).
    pub fn accepted(&self) -> bool {
        self.status == DeviceStatus::Active && self.user_active && self.confirmed_at.is_some()
    }
}

/// What [`revoke_device`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevokeOutcome {
    /// The device was active and is now revoked.
    Revoked {
        /// Its user.
        user_id: Uuid,
    },
    /// The device was revoked before; nothing changed and nothing was audited.
    AlreadyRevoked {
        /// When it was revoked, Unix seconds (if recorded).
        revoked_at: Option<i64>,
    },
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
    /// An admin confirmed its key fingerprint.
    pub confirmed: bool,
}

fn parse_status(s: &str) -> Result<DeviceStatus, SqlError> {
    match s {
        "active" => Ok(DeviceStatus::Active),
        "revoked" => Ok(DeviceStatus::Revoked),
        _ => Err(SqlError::ColumnType {
            index: 8,
            expected: "a device status",
            found: "other text",
        }),
    }
}

/// Looks a device up with its user's state (for every authenticated request).
pub fn lookup_device(sql: &mut dyn Sql, device_id: &Uuid) -> Result<Option<DeviceRow>, SqlError> {
    let Some(r) = sql.query_opt(
        "SELECT d.id, d.user_id, u.role, d.public_key, d.status, u.active, d.confirmed_at
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
        confirmed: r.get::<Option<i64>>(6)?.is_some(),
    }))
}

/// `false` if it was seen before (a replay). Prunes nonces whose window has passed.
pub fn record_nonce(
    sql: &mut dyn Sql,
    device_id: &Uuid,
    nonce: &[u8],
    expires_at: i64,
    now: i64,
) -> Result<bool, SqlError> {
    // Only this device's expired nonces: a sync runs beside other devices' syncs on
    // PostgreSQL, and deleting their rows would make it wait for them (other devices' expired
    // nonces go with their next request, or with the sweep of `forget_expired_nonces`).
    sql.execute(
        "DELETE FROM request_nonces WHERE device_id = ?1 AND expires_at < ?2",
        sql_params![&device_id.to_string(), now],
    )?;
    let inserted = sql.execute(
        "INSERT INTO request_nonces (device_id, nonce, expires_at) VALUES (?1, ?2, ?3)
         ON CONFLICT DO NOTHING",
        sql_params![&device_id.to_string(), nonce, expires_at],
    )?;
    Ok(inserted == 1)
}

/// Deletes every device's expired request nonces (those of devices that made no request since
/// theirs expired, which [`record_nonce`] leaves); returns how many. A replay of an expired
/// nonce is refused by its signed expiry whether or not the nonce is still kept.
pub fn forget_expired_nonces(sql: &mut dyn Sql, now: i64) -> Result<u64, SqlError> {
    sql.execute(
        "DELETE FROM request_nonces WHERE expires_at < ?1",
        sql_params![now],
    )
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

/// Lists every device, newest enrollment first, with its user and lifecycle.
pub fn list_devices(sql: &mut dyn Sql) -> Result<Vec<DeviceInfo>, ServerError> {
    let rows = sql.query_all(
        "SELECT d.id, d.user_id, u.name, u.role, u.active, d.enrolled_at, d.last_sync_at,
                d.lease_expires_at, d.status, d.revoked_at, d.wiped_at, d.wipe_reason,
                (SELECT count(*) FROM purge_receipts p WHERE p.device_id = d.id),
                d.confirmed_at, d.public_key
         FROM devices d JOIN users u ON u.id = d.user_id
         ORDER BY d.enrolled_at DESC, d.id DESC",
        &[],
    )?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        out.push(DeviceInfo {
            device_id: parse_uuid(&r.get::<String>(0)?)?,
            user_id: parse_uuid(&r.get::<String>(1)?)?,
            user_name: r.get(2)?,
            role: parse_role(&r.get::<String>(3)?)?,
            user_active: r.get::<i64>(4)? != 0,
            enrolled_at: r.get(5)?,
            last_sync_at: r.get(6)?,
            lease_expires_at: r.get(7)?,
            status: parse_status(&r.get::<String>(8)?)?,
            revoked_at: r.get(9)?,
            wiped_at: r.get(10)?,
            wipe_reason: r.get(11)?,
            purge_receipts: u32::try_from(r.get::<i64>(12)?).unwrap_or(u32::MAX),
            confirmed_at: r.get(13)?,
            fingerprint: fingerprint_of(&r.get::<Vec<u8>>(14)?)?,
        });
    }
    Ok(out)
}

fn fingerprint_of(key: &[u8]) -> Result<String, SqlError> {
    let key: [u8; 32] = key.try_into().map_err(|_| SqlError::ColumnType {
        index: 0,
        expected: "a 32-byte public key",
        found: "a blob of another length",
    })?;
    Ok(fieldcase_core::protocol::key_fingerprint(&key))
}

/// Audit action of a device an admin confirmed by its key fingerprint.
pub const DEVICE_CONFIRMED: &str = "device_confirmed";

/// Confirms a newly enrolled device: `typed` is the key fingerprint the phone shows, as the
/// admin read it from the phone's screen; it must be the fingerprint of the key the office
/// registered ([`ServerError::FingerprintMismatch`] otherwise: someone else may have used the
/// worker's code first — revoke that device and issue a new code). Audited as
/// `device_confirmed`; confirming a confirmed device changes nothing.
pub fn confirm_device(
    sql: &mut dyn Sql,
    device_id: &Uuid,
    typed: &str,
    now: i64,
) -> Result<(), ServerError> {
    let row = sql
        .query_opt(
            "SELECT public_key, confirmed_at, user_id, status FROM devices WHERE id = ?1",
            sql_params![&device_id.to_string()],
        )?
        .ok_or(ServerError::UnknownDevice)?;
    let fingerprint = fingerprint_of(&row.get::<Vec<u8>>(0)?)?;
    if !fieldcase_core::protocol::same_fingerprint(typed, &fingerprint) {
        return Err(ServerError::FingerprintMismatch);
    }
    if row.get::<Option<i64>>(1)?.is_some() || row.get::<String>(3)? != "active" {
        return Ok(());
    }
    sql.execute(
        "UPDATE devices SET confirmed_at = ?2 WHERE id = ?1 AND confirmed_at IS NULL",
        sql_params![&device_id.to_string(), now],
    )?;
    let user = parse_uuid(&row.get::<String>(2)?)?;
    audit::record(sql, now, DEVICE_CONFIRMED, Some(&user), Some(device_id))?;
    Ok(())
}

/// Revokes one device: its status becomes `revoked` with `revoked_at = now`, audited as
/// `device_revoked` (detail `admin`), inside the caller's write transaction. Its next request
/// is refused.
///
/// Revoking a device that is already revoked changes nothing and returns
/// [`RevokeOutcome::AlreadyRevoked`]; an unknown id is [`ServerError::UnknownDevice`].
pub fn revoke_device(
    sql: &mut dyn Sql,
    device_id: &Uuid,
    now: i64,
) -> Result<RevokeOutcome, ServerError> {
    let Some(row) = sql.query_opt(
        "SELECT user_id, status, revoked_at FROM devices WHERE id = ?1",
        sql_params![&device_id.to_string()],
    )?
    else {
        return Err(ServerError::UnknownDevice);
    };
    let user_id = parse_uuid(&row.get::<String>(0)?)?;
    if parse_status(&row.get::<String>(1)?)? == DeviceStatus::Revoked {
        return Ok(RevokeOutcome::AlreadyRevoked {
            revoked_at: row.get(2)?,
        });
    }
    revoke_in(sql, device_id, &user_id, now, REVOKED_BY_ADMIN)?;
    Ok(RevokeOutcome::Revoked { user_id })
}

/// Marks one active device revoked and audits it, inside the caller's transaction.
pub(crate) fn revoke_in(
    sql: &mut dyn Sql,
    device_id: &Uuid,
    user_id: &Uuid,
    now: i64,
    detail: &str,
) -> Result<(), ServerError> {
    let changed = sql.execute(
        "UPDATE devices SET status = 'revoked', revoked_at = ?1
         WHERE id = ?2 AND status = 'active'",
        sql_params![now, &device_id.to_string()],
    )?;
    if changed != 1 {
        return Err(ServerError::Internal("device changed during revocation"));
    }
    audit::record_detail(
        sql,
        now,
        action::DEVICE_REVOKED,
        Some(user_id),
        Some(device_id),
        Some(detail),
    )?;
    Ok(())
}

/// Audit action of a duress notice received from a device (detail: `sync` or `receipt`, how it
/// came).
pub const DURESS_NOTICE: &str = "duress_notice";

/// Takes a device's signed duress notice (the caller checked its signature against the device's
/// enrolled key): the worker entered her duress PIN, the phone destroyed its case data. Revokes
/// the device (audited as a revocation with detail `duress`), audits the notice, and raises an
/// alert for the case managers of the worker's teams ([`crate::office::alerts`]). A repeat of a
/// notice for a device already revoked by one raises nothing new.
pub fn record_duress(
    sql: &mut dyn Sql,
    device_id: &Uuid,
    how: &str,
    now: i64,
) -> Result<(), ServerError> {
    let row = sql
        .query_opt(
            "SELECT user_id, status FROM devices WHERE id = ?1",
            sql_params![&device_id.to_string()],
        )?
        .ok_or(ServerError::UnknownDevice)?;
    let user_id = parse_uuid(&row.get::<String>(0)?)?;
    let already = sql
        .query_opt(
            "SELECT id FROM alerts WHERE device_id = ?1 AND kind = ?2",
            sql_params![&device_id.to_string(), super::alerts::KIND_DURESS],
        )?
        .is_some();
    if already {
        return Ok(());
    }
    if parse_status(&row.get::<String>(1)?)? == DeviceStatus::Active {
        revoke_in(sql, device_id, &user_id, now, "duress")?;
    }
    audit::record_detail(
        sql,
        now,
        DURESS_NOTICE,
        Some(&user_id),
        Some(device_id),
        Some(how),
    )?;
    super::alerts::raise_duress(sql, &user_id, device_id, now)?;
    Ok(())
}

/// Records a finished sync of a device: when it synced and until when its new lease runs.
pub fn record_sync(
    sql: &mut dyn Sql,
    device_id: &Uuid,
    now: i64,
    lease_expires_at: i64,
) -> Result<(), SqlError> {
    sql.execute(
        "UPDATE devices SET last_sync_at = ?2, lease_expires_at = ?3 WHERE id = ?1",
        sql_params![&device_id.to_string(), now, lease_expires_at],
    )?;
    Ok(())
}

/// Records a device's signed statement that it wiped itself (the caller checked its signature
/// against the device's enrolled key): when and why (`panic` or `revoked`). A panic wipe also
/// revokes the device. Only the first receipt counts and is audited; a repeat changes nothing.
pub fn record_wipe_receipt(
    sql: &mut dyn Sql,
    receipt: &WipeReceipt,
    now: i64,
) -> Result<(), SqlError> {
    let reason = if receipt.reason == "panic" {
        "panic"
    } else {
        "revoked"
    };
    let updated = sql.execute(
        "UPDATE devices SET wiped_at = ?2, wipe_reason = ?3,
             status = 'revoked', revoked_at = COALESCE(revoked_at, ?4)
         WHERE id = ?1 AND wiped_at IS NULL",
        sql_params![
            &receipt.device_id.to_string(),
            receipt.wiped_at,
            reason,
            now
        ],
    )?;
    if updated > 0 {
        audit::record(
            sql,
            now,
            &format!("wipe_receipt_{reason}"),
            None,
            Some(&receipt.device_id),
        )?;
    }
    Ok(())
}
