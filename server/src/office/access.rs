//! Need to know at the office: the one place that says what each role may see and do, and which
//! cases a person at the office may read. Every page, admin API call and command that shows case
//! content comes through here; `ARCHITECTURE.md` holds the same table (a test compares them).
//!
//! - A role allows a set of [`Ability`]s ([`may`]).
//! - Case content is read through a team: a case belongs to one team
//!   ([`crate::office::teams`]), and a case manager or admin reads the cases of the teams she is
//!   on and nothing else. An admin manages people, teams and devices without reading any case
//!   unless she is also on its team.
//! - Where someone must read a case outside her teams (a client turns up at night and her team
//!   cannot be reached), she opens a break-glass read ([`break_glass`]): she gives a reason, the
//!   read stays open for [`BREAK_GLASS_SECS`], it is audited, and the case's team sees it on the
//!   case page ([`break_glass_reads`]). A break-glass read lets her read, never change.
//! - Every read of case content writes an audit entry ([`read_case`], [`record_list_read`]):
//!   one per case for what shows one case, one per view for the lists.

use fieldcase_core::document::Conflict;
use fieldcase_core::ids::CaseId;
use fieldcase_core::model::Case;
use fieldcase_core::protocol::Role;
use uuid::Uuid;

use super::audit;
use super::cases;
use super::rows::parse_uuid;
use crate::error::ServerError;
use crate::sql_params;
use crate::storage::case_docs::CaseVault;
use crate::storage::sql::Sql;

/// Someone at the office asking to see or change something: who, and in which role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Staff {
    /// The user.
    pub id: Uuid,
    /// Her role.
    pub role: Role,
}

/// What a role may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ability {
    /// Receive and change, on one's phone, the cases one is assigned to.
    SyncAssignedCases,
    /// Read the cases of one's teams: lists, case pages, timelines, live updates, tasks, the
    /// conflict inbox, quarantined uploads.
    ReadTeamCases,
    /// Change the cases of one's teams: plan tasks, resolve conflicts, release or discard a
    /// quarantined upload, move a case to another team.
    ChangeTeamCases,
    /// Read a case outside one's teams, with a reason, for a short time, shown to its team.
    BreakGlass,
    /// Add users, issue enrollment codes, set passwords and roles, deactivate.
    ManageUsers,
    /// Create teams, put people on them and take them off.
    ManageTeams,
    /// List and revoke devices, see what the quarantine holds (not its content).
    ManageDevices,
    /// Read and verify the audit log.
    ReadAuditLog,
    /// Read reports (counts only, small ones hidden): of one's teams, or, for an admin, of
    /// every team and the whole office.
    ReadReports,
}

impl Ability {
    /// Every ability, in the order of the table in `ARCHITECTURE.md`.
    pub const ALL: [Ability; 9] = [
        Ability::SyncAssignedCases,
        Ability::ReadTeamCases,
        Ability::ChangeTeamCases,
        Ability::BreakGlass,
        Ability::ManageUsers,
        Ability::ManageTeams,
        Ability::ManageDevices,
        Ability::ReadAuditLog,
        Ability::ReadReports,
    ];

    /// The name used in `ARCHITECTURE.md`'s table.
    pub fn as_str(self) -> &'static str {
        match self {
            Ability::SyncAssignedCases => "sync assigned cases",
            Ability::ReadTeamCases => "read team cases",
            Ability::ChangeTeamCases => "change team cases",
            Ability::BreakGlass => "break-glass read",
            Ability::ManageUsers => "manage users",
            Ability::ManageTeams => "manage teams",
            Ability::ManageDevices => "manage devices",
            Ability::ReadAuditLog => "read audit log",
            Ability::ReadReports => "read reports",
        }
    }
}

/// Whether `role` allows `ability`. Reading and changing cases also needs the case to be on one
/// of the person's teams ([`reach`]).
pub fn may(role: Role, ability: Ability) -> bool {
    use Ability::*;
    match ability {
        SyncAssignedCases => true,
        ReadTeamCases | ChangeTeamCases | BreakGlass | ReadReports => {
            matches!(role, Role::CaseManager | Role::Admin)
        }
        ManageUsers | ManageTeams | ManageDevices | ReadAuditLog => role == Role::Admin,
    }
}

/// Refuses with [`ServerError::NotAllowed`] unless `role` allows `ability`.
pub fn require(role: Role, ability: Ability) -> Result<(), ServerError> {
    if may(role, ability) {
        Ok(())
    } else {
        Err(ServerError::NotAllowed)
    }
}

/// How long a break-glass read stays open.
pub const BREAK_GLASS_SECS: i64 = 30 * 60;
/// Fewest characters in a break-glass reason.
pub const MIN_REASON_CHARS: usize = 10;
/// Most characters in a break-glass reason.
pub const MAX_REASON_CHARS: usize = 500;

/// How someone reaches a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// She is on the case's team.
    Team,
    /// Through her open break-glass read, until this time (Unix seconds).
    BreakGlass {
        /// When the read closes.
        until: i64,
    },
}

/// Whether `who` is on the team of `case`. [`ServerError::UnknownCase`] when there is no such
/// case.
fn on_team(sql: &mut dyn Sql, who: Staff, case: CaseId) -> Result<bool, ServerError> {
    let row = sql
        .query_opt(
            "SELECT (SELECT count(*) FROM team_members m
                     WHERE m.team_id = cases.team_id AND m.user_id = ?2)
             FROM cases WHERE id = ?1",
            sql_params![&case.to_string(), &who.id.to_string()],
        )?
        .ok_or(ServerError::UnknownCase)?;
    Ok(row.get::<i64>(0)? > 0)
}

/// How `who` may reach `case` now: through her team, an open break-glass read, or not at all
/// (`None`). [`ServerError::UnknownCase`] when there is no such case.
pub fn reach(
    sql: &mut dyn Sql,
    who: Staff,
    case: CaseId,
    now: i64,
) -> Result<Option<Reach>, ServerError> {
    let on_team = on_team(sql, who, case)?;
    if !may(who.role, Ability::ReadTeamCases) {
        return Ok(None);
    }
    if on_team {
        return Ok(Some(Reach::Team));
    }
    let open = sql
        .query_opt(
            "SELECT max(until) FROM break_glass WHERE case_id = ?1 AND user_id = ?2 AND until > ?3",
            sql_params![&case.to_string(), &who.id.to_string(), now],
        )?
        .map(|r| r.get::<Option<i64>>(0))
        .transpose()?
        .flatten();
    Ok(open.map(|until| Reach::BreakGlass { until }))
}

/// Refuses unless `who` may change `case`: her role allows it and the case is on one of her
/// teams (a break-glass read does not let anyone change a case).
pub fn require_change(sql: &mut dyn Sql, who: Staff, case: CaseId) -> Result<(), ServerError> {
    require(who.role, Ability::ChangeTeamCases)?;
    if on_team(sql, who, case)? {
        Ok(())
    } else {
        Err(ServerError::OutsideTeam)
    }
}

/// Where a read of case content came from; each is its own audit action, all starting with
/// `case_read`, and each names the case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadVia {
    /// The case's page.
    Page,
    /// The timeline fragment the open page fetches when the case changed.
    Timeline,
    /// The live-update stream of an open case page.
    LiveStream,
    /// The conflict inbox (page or admin API) showing this case's contested values.
    Conflicts,
    /// A quarantined upload's preview.
    Quarantine,
    /// The office's command line.
    CommandLine,
}

impl ReadVia {
    /// The audit action of a read this way.
    pub fn action(self) -> &'static str {
        match self {
            ReadVia::Page => "case_read",
            ReadVia::Timeline => "case_read_timeline",
            ReadVia::LiveStream => "case_read_live",
            ReadVia::Conflicts => "case_read_conflicts",
            ReadVia::Quarantine => "case_read_quarantine",
            ReadVia::CommandLine => "case_read_cli",
        }
    }
}

/// Audit action of a list view (detail: the view and how many cases it showed).
pub const CASE_LIST_READ: &str = "case_list_read";
/// Audit action of an opened break-glass read (user: who; detail: the case id).
pub const BREAK_GLASS_OPENED: &str = "case_break_glass";

/// Refuses unless `who` reaches `case` now, and audits the read; returns how she reaches it.
/// Call it in the same write transaction as the read it allows, so that no read goes unaudited.
pub fn check_read(
    sql: &mut dyn Sql,
    who: Staff,
    case: CaseId,
    via: ReadVia,
    now: i64,
) -> Result<Reach, ServerError> {
    require(who.role, Ability::ReadTeamCases)?;
    let reach = reach(sql, who, case, now)?.ok_or(ServerError::OutsideTeam)?;
    let detail = case.to_string();
    audit::record_detail(sql, now, via.action(), Some(&who.id), None, Some(&detail))?;
    Ok(reach)
}

/// Audits a read of `case` from the office's command line. Whoever runs it on the office
/// machine holds the data folder and `server.key` and could read every case anyway; the entry
/// is the trace such a read leaves.
pub fn record_command_line_read(
    sql: &mut dyn Sql,
    case: CaseId,
    now: i64,
) -> Result<(), ServerError> {
    let detail = case.to_string();
    let action = ReadVia::CommandLine.action();
    audit::record_detail(sql, now, action, None, None, Some(&detail))?;
    Ok(())
}

/// A case as someone at the office was allowed to read it.
#[derive(Debug, Clone)]
pub struct CaseRead {
    /// The case.
    pub case: Case,
    /// The conflicts its fields hold.
    pub conflicts: Vec<Conflict>,
    /// How she reached it.
    pub reach: Reach,
    /// Its change sequence number when read.
    pub seq: i64,
}

/// Reads a case for `who` if she reaches it, and audits the read ([`check_read`]).
pub fn read_case(
    sql: &mut dyn Sql,
    vault: &CaseVault,
    who: Staff,
    case: CaseId,
    via: ReadVia,
    now: i64,
) -> Result<CaseRead, ServerError> {
    // An erased case holds nothing to read (its statistics are not case content).
    if cases::is_erased(sql, case)? {
        return Err(ServerError::UnknownCase);
    }
    let reach = check_read(sql, who, case, via, now)?;
    let seq = cases::case_seq(sql, case)?.ok_or(ServerError::UnknownCase)?;
    let (case, conflicts) = cases::read_case(sql, vault, case)?;
    Ok(CaseRead {
        case,
        conflicts,
        reach,
        seq,
    })
}

/// Ids of the cases on `who`'s teams, oldest first (none for a role that reads no cases).
pub fn team_case_ids(sql: &mut dyn Sql, who: Staff) -> Result<Vec<CaseId>, ServerError> {
    if !may(who.role, Ability::ReadTeamCases) {
        return Ok(Vec::new());
    }
    let rows = sql.query_all(
        "SELECT c.id FROM cases c
         WHERE c.team_id IN (SELECT team_id FROM team_members WHERE user_id = ?1)
           AND c.erased_at IS NULL
         ORDER BY c.created_at, c.id",
        sql_params![&who.id.to_string()],
    )?;
    rows.iter()
        .map(|r| {
            r.get::<String>(0)?
                .parse()
                .map_err(|_| ServerError::Internal("stored case id is not an id"))
        })
        .collect()
}

/// Reads every case on `who`'s teams for a list view called `view`, and audits it as one
/// entry naming the view and how many cases it showed.
pub fn read_team_cases(
    sql: &mut dyn Sql,
    vault: &CaseVault,
    who: Staff,
    view: &str,
    now: i64,
) -> Result<Vec<(Case, Vec<Conflict>)>, ServerError> {
    require(who.role, Ability::ReadTeamCases)?;
    let ids = team_case_ids(sql, who)?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        out.push(cases::read_case(sql, vault, id)?);
    }
    record_list_read(sql, who, view, out.len(), now)?;
    Ok(out)
}

/// Audits a list view that showed `count` cases.
pub fn record_list_read(
    sql: &mut dyn Sql,
    who: Staff,
    view: &str,
    count: usize,
    now: i64,
) -> Result<(), ServerError> {
    let detail = format!("{view}: {count} cases");
    audit::record_detail(sql, now, CASE_LIST_READ, Some(&who.id), None, Some(&detail))?;
    Ok(())
}

/// The conflict inbox of `who`: the sensitive conflicts in her teams' cases, each case shown
/// audited as a read ([`ReadVia::Conflicts`]), since the inbox shows the contested values.
pub fn conflict_inbox(
    sql: &mut dyn Sql,
    vault: &CaseVault,
    who: Staff,
    now: i64,
) -> Result<Vec<super::conflicts::CaseConflicts>, ServerError> {
    require(who.role, Ability::ReadTeamCases)?;
    let ids = team_case_ids(sql, who)?;
    let inbox = super::conflicts::inbox(sql, vault, &ids)?;
    for case in &inbox {
        check_read(sql, who, case.case, ReadVia::Conflicts, now)?;
    }
    Ok(inbox)
}

/// The quarantined uploads `who` may see listed: all of them for whoever manages devices (the
/// list shows no content), those of her teams' cases for a case manager.
pub fn quarantine_list(
    sql: &mut dyn Sql,
    who: Staff,
) -> Result<Vec<super::quarantine::QuarantineEntry>, ServerError> {
    let all = super::quarantine::list(sql)?;
    if may(who.role, Ability::ManageDevices) {
        return Ok(all);
    }
    require(who.role, Ability::ReadTeamCases)?;
    let mine: std::collections::HashSet<CaseId> = team_case_ids(sql, who)?.into_iter().collect();
    Ok(all.into_iter().filter(|q| mine.contains(&q.case)).collect())
}

/// Opens a break-glass read of `case` for `who`, with the reason she gives; returns when it
/// closes. Refused for a role without [`Ability::BreakGlass`], for a reason too short or too long
/// ([`ServerError::BreakGlassReason`]), and for a case she already reaches through her team (it
/// would say nothing).
pub fn break_glass(
    sql: &mut dyn Sql,
    who: Staff,
    case: CaseId,
    reason: &str,
    now: i64,
) -> Result<i64, ServerError> {
    require(who.role, Ability::BreakGlass)?;
    let reason = reason.trim();
    let chars = reason.chars().count();
    if !(MIN_REASON_CHARS..=MAX_REASON_CHARS).contains(&chars)
        || reason
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(ServerError::BreakGlassReason {
            min: MIN_REASON_CHARS,
            max: MAX_REASON_CHARS,
        });
    }
    if reach(sql, who, case, now)? == Some(Reach::Team) {
        return Err(ServerError::Config(
            "that case is on your team already".to_owned(),
        ));
    }
    let until = now.saturating_add(BREAK_GLASS_SECS);
    sql.execute(
        "INSERT INTO break_glass (id, case_id, user_id, reason, opened_at, until)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        sql_params![
            &Uuid::new_v4().to_string(),
            &case.to_string(),
            &who.id.to_string(),
            reason,
            now,
            until
        ],
    )?;
    let detail = case.to_string();
    audit::record_detail(
        sql,
        now,
        BREAK_GLASS_OPENED,
        Some(&who.id),
        None,
        Some(&detail),
    )?;
    Ok(until)
}

/// A break-glass read of a case, as its team sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakGlassRead {
    /// Who read it.
    pub user: Uuid,
    /// Her name.
    pub name: String,
    /// The reason she gave.
    pub reason: String,
    /// When she opened it (Unix seconds).
    pub opened_at: i64,
    /// When it closed or closes.
    pub until: i64,
}

/// Every break-glass read of `case`, newest first.
pub fn break_glass_reads(
    sql: &mut dyn Sql,
    case: CaseId,
) -> Result<Vec<BreakGlassRead>, ServerError> {
    let rows = sql.query_all(
        "SELECT b.user_id, u.name, b.reason, b.opened_at, b.until
         FROM break_glass b JOIN users u ON u.id = b.user_id
         WHERE b.case_id = ?1 ORDER BY b.opened_at DESC, b.id",
        sql_params![&case.to_string()],
    )?;
    rows.iter()
        .map(|r| {
            Ok(BreakGlassRead {
                user: parse_uuid(&r.get::<String>(0)?)?,
                name: r.get(1)?,
                reason: r.get(2)?,
                opened_at: r.get(3)?,
                until: r.get(4)?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mark(allowed: bool) -> &'static str {
        if allowed { "yes" } else { "no" }
    }

    /// The table in `ARCHITECTURE.md` says what [`may`] does, row by row.
    #[test]
    fn the_table_in_architecture_md_is_the_code() {
        let doc = include_str!("../../../ARCHITECTURE.md");
        for ability in Ability::ALL {
            let expected = format!(
                "| {} | {} | {} | {} |",
                ability.as_str(),
                mark(may(Role::FieldWorker, ability)),
                mark(may(Role::CaseManager, ability)),
                mark(may(Role::Admin, ability)),
            );
            assert!(
                doc.lines().any(|l| l.trim() == expected),
                "ARCHITECTURE.md lacks the row {expected}"
            );
        }
    }
}
