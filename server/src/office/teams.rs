//! Teams: who at the office works on which cases. Every case belongs to one team; case managers
//! and admins read the cases of the teams they are on ([`crate::office::access`] decides).
//! Admins create teams, put people on them and take them off; a case moves between teams as a
//! whole. Every change is audited (`team_created`, `team_joined`, `team_left`, `case_moved`).
//!
//! The default team ([`DEFAULT_TEAM`], called "Office" until renamed) always exists: a database
//! from before teams had every case put on it, with every case manager and admin, so that
//! nothing anyone could see disappeared on upgrade. Cases opened without a team go to it, and
//! case managers added without a team join it, so that an office of one team never has to
//! think about teams; an admin joins no team unless asked, since managing people and devices
//! needs no case content.

use fieldcase_core::ids::CaseId;
use fieldcase_core::protocol::Role;
use uuid::Uuid;

use super::audit;
use super::rows::parse_uuid;
use crate::error::ServerError;
use crate::sql_params;
use crate::storage::case_docs::CaseVault;
use crate::storage::sql::Sql;

/// The team every case belonged to before there were teams, and the one a case goes to when
/// none is named.
pub const DEFAULT_TEAM: Uuid = Uuid::from_u128(0x0000_0000_0000_4000_8000_0000_0000_0001);

/// Audit actions of team changes.
pub mod action {
    /// A team was created (detail: its id).
    pub const TEAM_CREATED: &str = "team_created";
    /// A person was put on a team (user: her; detail: the team id).
    pub const TEAM_JOINED: &str = "team_joined";
    /// A person was taken off a team (user: her; detail: the team id).
    pub const TEAM_LEFT: &str = "team_left";
    /// A case moved to another team (detail: `case team`).
    pub const CASE_MOVED: &str = "case_moved";
}

/// A team as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeamRow {
    /// Random id.
    pub id: Uuid,
    /// Name (unique, case-insensitive).
    pub name: String,
    /// Its members, by name: (id, name, role).
    pub members: Vec<(Uuid, String, Role)>,
    /// How many cases it holds.
    pub cases: u64,
}

/// Creates a team called `name` (1 to 100 characters, unique regardless of case).
pub fn create_team(sql: &mut dyn Sql, name: &str, now: i64) -> Result<Uuid, ServerError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(ServerError::Config(
            "a team name is 1 to 100 characters, without control characters".to_owned(),
        ));
    }
    if sql
        .query_opt("SELECT id FROM teams WHERE name = ?1", sql_params![name])?
        .is_some()
    {
        return Err(ServerError::DuplicateTeam);
    }
    let id = Uuid::new_v4();
    sql.execute(
        "INSERT INTO teams (id, name, created_at) VALUES (?1, ?2, ?3)",
        sql_params![&id.to_string(), name, now],
    )?;
    let detail = id.to_string();
    audit::record_detail(sql, now, action::TEAM_CREATED, None, None, Some(&detail))?;
    Ok(id)
}

/// The team given by id or by name (case-insensitive).
pub fn resolve_team(sql: &mut dyn Sql, team: &str) -> Result<Uuid, ServerError> {
    let team = team.trim();
    let row = match Uuid::try_parse(team) {
        Ok(id) => sql.query_opt(
            "SELECT id FROM teams WHERE id = ?1",
            sql_params![&id.to_string()],
        )?,
        Err(_) => sql.query_opt("SELECT id FROM teams WHERE name = ?1", sql_params![team])?,
    };
    let row = row.ok_or(ServerError::UnknownTeam)?;
    Ok(parse_uuid(&row.get::<String>(0)?)?)
}

/// Every team by name, with its members and how many cases it holds.
pub fn list_teams(sql: &mut dyn Sql) -> Result<Vec<TeamRow>, ServerError> {
    let rows = sql.query_all(
        "SELECT t.id, t.name, (SELECT count(*) FROM cases c WHERE c.team_id = t.id)
         FROM teams t ORDER BY t.name",
        &[],
    )?;
    let mut teams = Vec::with_capacity(rows.len());
    for r in rows {
        teams.push(TeamRow {
            id: parse_uuid(&r.get::<String>(0)?)?,
            name: r.get(1)?,
            members: Vec::new(),
            cases: u64::try_from(r.get::<i64>(2)?).unwrap_or(0),
        });
    }
    let members = sql.query_all(
        "SELECT m.team_id, u.id, u.name, u.role FROM team_members m
         JOIN users u ON u.id = m.user_id ORDER BY u.name",
        &[],
    )?;
    for r in members {
        let team = parse_uuid(&r.get::<String>(0)?)?;
        let member = (
            parse_uuid(&r.get::<String>(1)?)?,
            r.get::<String>(2)?,
            super::rows::parse_role(&r.get::<String>(3)?)?,
        );
        if let Some(t) = teams.iter_mut().find(|t| t.id == team) {
            t.members.push(member);
        }
    }
    Ok(teams)
}

/// The teams `user` is on.
pub fn teams_of(sql: &mut dyn Sql, user: &Uuid) -> Result<Vec<Uuid>, ServerError> {
    let rows = sql.query_all(
        "SELECT team_id FROM team_members WHERE user_id = ?1 ORDER BY team_id",
        sql_params![&user.to_string()],
    )?;
    rows.iter()
        .map(|r| Ok(parse_uuid(&r.get::<String>(0)?)?))
        .collect()
}

fn require_user(sql: &mut dyn Sql, user: &Uuid) -> Result<(), ServerError> {
    sql.query_opt(
        "SELECT id FROM users WHERE id = ?1",
        sql_params![&user.to_string()],
    )?
    .ok_or(ServerError::UnknownUser)?;
    Ok(())
}

/// Puts `user` on `team` (or takes her off). Nothing changes, and nothing is audited, when she
/// already is (or is not) on it.
pub fn set_member(
    sql: &mut dyn Sql,
    team: Uuid,
    user: Uuid,
    member: bool,
    now: i64,
) -> Result<(), ServerError> {
    require_user(sql, &user)?;
    let (t, u) = (team.to_string(), user.to_string());
    sql.query_opt("SELECT id FROM teams WHERE id = ?1", sql_params![&t])?
        .ok_or(ServerError::UnknownTeam)?;
    let changed = if member {
        sql.execute(
            "INSERT INTO team_members (team_id, user_id) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
            sql_params![&t, &u],
        )?
    } else {
        sql.execute(
            "DELETE FROM team_members WHERE team_id = ?1 AND user_id = ?2",
            sql_params![&t, &u],
        )?
    };
    if changed > 0 {
        let what = if member {
            action::TEAM_JOINED
        } else {
            action::TEAM_LEFT
        };
        audit::record_detail(sql, now, what, Some(&user), None, Some(&t))?;
    }
    Ok(())
}

/// The team a case belongs to.
pub fn team_of_case(sql: &mut dyn Sql, case: CaseId) -> Result<Uuid, ServerError> {
    let row = sql
        .query_opt(
            "SELECT team_id FROM cases WHERE id = ?1",
            sql_params![&case.to_string()],
        )?
        .ok_or(ServerError::UnknownCase)?;
    Ok(parse_uuid(&row.get::<String>(0)?)?)
}

/// Moves a case to `team`: from then on that team's people read it and the old team's do not
/// (unless they are on both). `by` is who moved it (`None` from the command line).
pub fn move_case(
    sql: &mut dyn Sql,
    vault: &CaseVault,
    case: CaseId,
    team: Uuid,
    by: Option<&Uuid>,
    now: i64,
) -> Result<(), ServerError> {
    team_of_case(sql, case)?;
    let t = team.to_string();
    sql.query_opt("SELECT id FROM teams WHERE id = ?1", sql_params![&t])?
        .ok_or(ServerError::UnknownTeam)?;
    sql.execute(
        "UPDATE cases SET team_id = ?1 WHERE id = ?2",
        sql_params![&t, &case.to_string()],
    )?;
    // Its counts in the report index go with it.
    crate::storage::report_index::moved(sql, vault, case)?;
    let detail = format!("{case} {team}");
    audit::record_detail(sql, now, action::CASE_MOVED, by, None, Some(&detail))?;
    Ok(())
}
