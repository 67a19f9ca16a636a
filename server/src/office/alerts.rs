//! Alerts: what the office must act on at once, shown on every page of the people who must act
//! until one of them acknowledges it.
//!
//! The one kind so far is [`KIND_DURESS`]: a field worker's phone was opened with her duress PIN.
//! The phone destroyed its case data at that moment and, at its next contact, sent a signed
//! duress notice; the office revoked the phone ([`crate::office::devices::record_duress`]) and
//! raised this alert. It is shown to the case managers of the worker's teams (the teams she is
//! on and the teams of the cases assigned to her, as they were when it was raised; the default
//! team when that is none) and to every admin. Raising and acknowledging are audited
//! (`duress_alert_raised`, `alert_acknowledged`). An alert names the worker and the device, never
//! a case.

use fieldcase_core::protocol::Role;
use uuid::Uuid;

use super::access::Staff;
use super::audit;
use super::rows::parse_uuid;
use super::teams::DEFAULT_TEAM;
use crate::error::{ServerError, SqlError};
use crate::sql_params;
use crate::storage::sql::Sql;

/// The kind of an alert raised by a duress notice.
pub const KIND_DURESS: &str = "duress";

/// Audit actions of alerts.
pub mod action {
    /// A duress alert was raised (user: the worker; device: her phone; detail: the alert id).
    pub const DURESS_ALERT_RAISED: &str = "duress_alert_raised";
    /// Someone acknowledged an alert (user: who did; detail: the alert id).
    pub const ALERT_ACKNOWLEDGED: &str = "alert_acknowledged";
}

/// One alert as shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    /// Random id.
    pub id: Uuid,
    /// What happened ([`KIND_DURESS`]).
    pub kind: String,
    /// The worker concerned.
    pub user_id: Uuid,
    /// Her name (for the office's screens only, never for logs).
    pub user_name: String,
    /// The phone concerned.
    pub device_id: Uuid,
    /// When the office raised it (Unix seconds).
    pub raised_at: i64,
    /// When someone acknowledged it, if anyone has.
    pub acknowledged_at: Option<i64>,
}

/// Raises a duress alert about `user`'s phone `device` inside the caller's transaction, for the
/// teams she is on and the teams of her cases; returns its id.
pub fn raise_duress(
    sql: &mut dyn Sql,
    user: &Uuid,
    device: &Uuid,
    now: i64,
) -> Result<Uuid, ServerError> {
    let id = Uuid::new_v4();
    sql.execute(
        "INSERT INTO alerts (id, kind, user_id, device_id, raised_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        sql_params![
            &id.to_string(),
            KIND_DURESS,
            &user.to_string(),
            &device.to_string(),
            now
        ],
    )?;
    let rows = sql.query_all(
        "SELECT team_id FROM team_members WHERE user_id = ?1
         UNION
         SELECT c.team_id FROM case_assignments a JOIN cases c ON c.id = a.case_id
         WHERE a.user_id = ?1",
        sql_params![&user.to_string()],
    )?;
    let mut teams = rows
        .iter()
        .map(|r| parse_uuid(&r.get::<String>(0)?))
        .collect::<Result<Vec<_>, SqlError>>()?;
    if teams.is_empty() {
        teams.push(DEFAULT_TEAM);
    }
    for team in teams {
        sql.execute(
            "INSERT INTO alert_teams (alert_id, team_id) VALUES (?1, ?2)",
            sql_params![&id.to_string(), &team.to_string()],
        )?;
    }
    let detail = id.to_string();
    audit::record_detail(
        sql,
        now,
        action::DURESS_ALERT_RAISED,
        Some(user),
        Some(device),
        Some(&detail),
    )?;
    Ok(id)
}

const SELECT: &str = "SELECT a.id, a.kind, a.user_id, u.name, a.device_id, a.raised_at,
    a.acknowledged_at FROM alerts a JOIN users u ON u.id = a.user_id";

fn read(rows: Vec<crate::storage::sql::Row>) -> Result<Vec<Alert>, SqlError> {
    rows.iter()
        .map(|r| {
            Ok(Alert {
                id: parse_uuid(&r.get::<String>(0)?)?,
                kind: r.get(1)?,
                user_id: parse_uuid(&r.get::<String>(2)?)?,
                user_name: r.get(3)?,
                device_id: parse_uuid(&r.get::<String>(4)?)?,
                raised_at: r.get(5)?,
                acknowledged_at: r.get(6)?,
            })
        })
        .collect()
}

/// The alerts `who` is shown, newest first: those of her teams (every one for an admin), open
/// ones only unless `all`. Field workers are shown none.
pub fn visible_to(sql: &mut dyn Sql, who: Staff, all: bool) -> Result<Vec<Alert>, SqlError> {
    let open = if all {
        ""
    } else {
        " AND a.acknowledged_at IS NULL"
    };
    let rows = match who.role {
        Role::FieldWorker => return Ok(Vec::new()),
        Role::Admin => sql.query_all(
            &format!("{SELECT} WHERE 1 = 1{open} ORDER BY a.raised_at DESC, a.id LIMIT 200"),
            &[],
        )?,
        Role::CaseManager => sql.query_all(
            &format!(
                "{SELECT} WHERE a.id IN (SELECT t.alert_id FROM alert_teams t
                   JOIN team_members m ON m.team_id = t.team_id WHERE m.user_id = ?1){open}
                 ORDER BY a.raised_at DESC, a.id LIMIT 200"
            ),
            sql_params![&who.id.to_string()],
        )?,
    };
    read(rows)
}

/// Acknowledges alert `id` as `who` (who must be shown it): it leaves everyone's pages. Audited;
/// acknowledging an acknowledged alert changes nothing. [`ServerError::UnknownAlert`] for an alert
/// `who` is not shown.
pub fn acknowledge(sql: &mut dyn Sql, who: Staff, id: Uuid, now: i64) -> Result<(), ServerError> {
    if !visible_to(sql, who, true)?.iter().any(|a| a.id == id) {
        return Err(ServerError::UnknownAlert);
    }
    let changed = sql.execute(
        "UPDATE alerts SET acknowledged_at = ?2, acknowledged_by = ?3
         WHERE id = ?1 AND acknowledged_at IS NULL",
        sql_params![&id.to_string(), now, &who.id.to_string()],
    )?;
    if changed > 0 {
        let detail = id.to_string();
        audit::record_detail(
            sql,
            now,
            action::ALERT_ACKNOWLEDGED,
            Some(&who.id),
            None,
            Some(&detail),
        )?;
    }
    Ok(())
}
