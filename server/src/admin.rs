//! Administration of devices and users: listing devices with their lifecycle, revoking one
//! device, deactivating a user (which revokes all of their devices).
//!
//! Plain synchronous functions over a [`Sql`] connection of either backend, used by the `admin`
//! commands of the binary and (through [`crate::sql::Database::call_write`]) by the admin web
//! pages and the admin API. Every change runs inside the caller's write transaction
//! ([`crate::sql::Database::write`]) together with its audit entries, so a revocation is either
//! fully recorded or not made. Revocation takes effect on the device's next request because
//! [`crate::auth::Authenticated`] reads the device's state on every request.

use std::fmt;

use fieldcase_core::protocol::Role;
use uuid::Uuid;

use crate::audit::action;
use crate::error::ServerError;
use crate::sql::{Sql, SqlError};
use crate::sql_params;
use crate::store::{self, parse_role, parse_uuid};

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
}

impl DeviceInfo {
    /// Whether the server accepts requests from this device (device active and user active).
    pub fn accepted(&self) -> bool {
        self.status == DeviceStatus::Active && self.user_active
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

/// What [`deactivate_user`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deactivated {
    /// The user.
    pub user_id: Uuid,
    /// Whether the user was already deactivated before this call.
    pub was_inactive: bool,
    /// The devices revoked by this call (those that were still active).
    pub revoked_devices: Vec<Uuid>,
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

/// Lists every device, newest enrollment first, with its user and lifecycle.
pub fn list_devices(sql: &mut dyn Sql) -> Result<Vec<DeviceInfo>, ServerError> {
    let rows = sql.query_all(
        "SELECT d.id, d.user_id, u.name, u.role, u.active, d.enrolled_at, d.last_sync_at,
                d.lease_expires_at, d.status, d.revoked_at, d.wiped_at, d.wipe_reason,
                (SELECT count(*) FROM purge_receipts p WHERE p.device_id = d.id)
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
        });
    }
    Ok(out)
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
fn revoke_in(
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
    store::audit_with_detail(
        sql,
        now,
        action::DEVICE_REVOKED,
        Some(user_id),
        Some(device_id),
        Some(detail),
    )?;
    Ok(())
}

/// Resolves a user given by id (UUID text) or by name (case-insensitive).
fn resolve_user(sql: &mut dyn Sql, user: &str) -> Result<(Uuid, bool), ServerError> {
    let user = user.trim();
    let by_id = match Uuid::try_parse(user) {
        Ok(id) => sql.query_opt(
            "SELECT id, active FROM users WHERE id = ?1",
            sql_params![&id.to_string()],
        )?,
        Err(_) => None,
    };
    let found = match by_id {
        Some(found) => Some(found),
        None => sql.query_opt(
            "SELECT id, active FROM users WHERE name = ?1",
            sql_params![user],
        )?,
    };
    let row = found.ok_or(ServerError::UnknownUser)?;
    Ok((parse_uuid(&row.get::<String>(0)?)?, row.get::<i64>(1)? != 0))
}

/// Deactivates a user (given by name or id) and revokes every one of their active devices,
/// inside the caller's write transaction: `users.active = 0`, each device revoked and audited
/// as `device_revoked` (detail `user_deactivated`), then `user_deactivated` (detail: how many
/// devices were revoked).
///
/// For a user who is already deactivated and has no active device nothing changes and nothing is
/// audited; an unknown user is [`ServerError::UnknownUser`].
pub fn deactivate_user(
    sql: &mut dyn Sql,
    user: &str,
    now: i64,
) -> Result<Deactivated, ServerError> {
    let (user_id, active) = resolve_user(sql, user)?;
    let devices = sql
        .query_all(
            "SELECT id FROM devices WHERE user_id = ?1 AND status = 'active' ORDER BY id",
            sql_params![&user_id.to_string()],
        )?
        .iter()
        .map(|r| parse_uuid(&r.get::<String>(0)?))
        .collect::<Result<Vec<_>, SqlError>>()?;
    if !active && devices.is_empty() {
        return Ok(Deactivated {
            user_id,
            was_inactive: true,
            revoked_devices: Vec::new(),
        });
    }
    sql.execute(
        "UPDATE users SET active = 0 WHERE id = ?1",
        sql_params![&user_id.to_string()],
    )?;
    for device_id in &devices {
        revoke_in(sql, device_id, &user_id, now, REVOKED_WITH_USER)?;
    }
    let detail = format!("devices_revoked={}", devices.len());
    store::audit_with_detail(
        sql,
        now,
        action::USER_DEACTIVATED,
        Some(&user_id),
        None,
        Some(&detail),
    )?;
    Ok(Deactivated {
        user_id,
        was_inactive: !active,
        revoked_devices: devices,
    })
}

/// What [`change_role`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoleChanged {
    /// The user.
    pub user_id: Uuid,
    /// The role before.
    pub from: Role,
    /// The role now.
    pub to: Role,
}

/// Gives a user (by name or id) another role, audited as `user_role_changed` (detail: the new
/// role), inside the caller's write transaction. It takes effect on the user's next request:
/// web sessions and signed device requests read the role every time. Taking the admin role from
/// the last active admin is refused ([`ServerError::LastAdmin`]); giving the role a user
/// already has changes nothing and audits nothing.
pub fn change_role(
    sql: &mut dyn Sql,
    user: &str,
    role: Role,
    now: i64,
) -> Result<RoleChanged, ServerError> {
    let (user_id, active) = resolve_user(sql, user)?;
    let current: String = sql
        .query_row(
            "SELECT role FROM users WHERE id = ?1",
            sql_params![&user_id.to_string()],
        )?
        .get(0)?;
    let from = Role::parse(&current).ok_or(ServerError::Internal("unknown stored role"))?;
    let changed = RoleChanged {
        user_id,
        from,
        to: role,
    };
    if from == role {
        return Ok(changed);
    }
    if from == Role::Admin && active {
        let other_admins: i64 = sql
            .query_row(
                "SELECT count(*) FROM users WHERE role = ?1 AND active = 1 AND id <> ?2",
                sql_params![Role::Admin.as_str(), &user_id.to_string()],
            )?
            .get(0)?;
        if other_admins == 0 {
            return Err(ServerError::LastAdmin);
        }
    }
    sql.execute(
        "UPDATE users SET role = ?2 WHERE id = ?1",
        sql_params![&user_id.to_string(), role.as_str()],
    )?;
    store::audit_with_detail(
        sql,
        now,
        action::USER_ROLE_CHANGED,
        Some(&user_id),
        None,
        Some(role.as_str()),
    )?;
    Ok(changed)
}

/// Formats Unix seconds as RFC 3339 UTC (`2026-11-24T10:00:00Z`); the number itself if out of
/// range.
pub fn rfc3339(unix_secs: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix_secs)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| unix_secs.to_string())
}
