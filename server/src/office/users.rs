//! The office's users: adding, listing and finding them by name, their role (changed with an
//! audit entry; the last active admin keeps it) and deactivation, which revokes every device of
//! the user in the same transaction.
//!
//! Plain synchronous functions over a [`Sql`] connection of either backend, run inside the
//! caller's write transaction ([`crate::storage::sql::Database::write`]), used by the admin
//! commands, the admin API and the web pages alike.

use fieldcase_core::protocol::Role;
use uuid::Uuid;

use super::audit::{self, action};
use super::devices::{REVOKED_WITH_USER, revoke_in};
use super::rows::{parse_role, parse_uuid};
use crate::error::{ServerError, SqlError};
use crate::sql_params;
use crate::storage::sql::Sql;

/// A user as listed by `admin user list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRow {
    /// Random id (UUIDv4: it tells nothing of when the user was added).
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

/// Adds a user with a random id (UUIDv4, no creation time in it), inside the caller's write transaction. A case manager
/// joins the default team ([`super::teams::DEFAULT_TEAM`]), so that an office with one team
/// need not manage teams; an admin joins none (see [`super::access`]).
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
    let id = Uuid::new_v4();
    sql.execute(
        "INSERT INTO users (id, name, role, active, created_at) VALUES (?1, ?2, ?3, 1, ?4)",
        sql_params![&id.to_string(), name, role.as_str(), now],
    )?;
    audit::record(sql, now, "user_added", Some(&id), None)?;
    if role == Role::CaseManager {
        super::teams::set_member(sql, super::teams::DEFAULT_TEAM, id, true, now)?;
    }
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

/// Resolves a user given by id (UUID text) or by name (case-insensitive): her id and whether
/// she is active.
pub fn resolve_user(sql: &mut dyn Sql, user: &str) -> Result<(Uuid, bool), ServerError> {
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
    audit::record_detail(
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
    audit::record_detail(
        sql,
        now,
        action::USER_ROLE_CHANGED,
        Some(&user_id),
        None,
        Some(role.as_str()),
    )?;
    Ok(changed)
}
