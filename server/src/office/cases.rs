//! Cases at the office: opening them, assigning workers, planning tasks, their status, and
//! reading them, over either database backend (the sync hub's storage is
//! [`crate::office::hub`]).
//!
//! Case documents are sealed with a data key that is wrapped with age to the identity in
//! `server.key`; a copy of the database (`server.db`, or a PostgreSQL dump) alone reads as
//! ciphertext. How they are laid out on disk
//! and kept in memory is [`crate::storage::case_docs`]. Which users may receive a case
//! is the `case_assignments` table (need to know), kept in step with the document's own
//! `assigned` set by every operation here.
//!
//! The operations run inside the caller's write transaction ([`crate::storage::sql::Database::write`]);
//! those that store a case return it in a [`WithDocs`], to give to the vault once committed.

use fieldcase_core::document::CaseDoc;
use fieldcase_core::ids::{CaseId, TaskId, UserId};
use fieldcase_core::model::{Case, CaseStatus, NewCase, NewTask};
use time::OffsetDateTime;
use uuid::Uuid;

use super::audit::{self, action};
use super::teams::DEFAULT_TEAM;
use crate::error::ServerError;
use crate::sql_params;
use crate::storage::case_docs::CaseVault;
use crate::storage::case_docs::{LoadedCase, WithDocs, checkout, store};
use crate::storage::sql::Sql;

fn user_is_active(sql: &mut dyn Sql, user: UserId) -> Result<bool, ServerError> {
    Ok(sql
        .query_opt(
            "SELECT active FROM users WHERE id = ?1",
            sql_params![&user.to_string()],
        )?
        .map(|r| r.get::<i64>(0))
        .transpose()?
        == Some(1))
}

/// Takes a case's document out for this transaction (see [`crate::storage::case_docs`]).
pub(crate) fn load_doc(
    sql: &mut dyn Sql,
    vault: &CaseVault,
    case: CaseId,
) -> Result<LoadedCase, ServerError> {
    checkout(sql, vault, case)?.ok_or(ServerError::UnknownCase)
}

/// Sets a case's status at the office (closing starts its retention period: once it has passed,
/// devices purge the case).
pub fn set_status(
    sql: &mut dyn Sql,
    vault: &CaseVault,
    case: CaseId,
    status: CaseStatus,
    now: i64,
) -> Result<WithDocs<()>, ServerError> {
    let mut loaded = load_doc(sql, vault, case)?;
    loaded.doc.set_status(vault.office, status, at(now))?;
    store(sql, vault, &mut loaded, None, now)?;
    if status != CaseStatus::Closed {
        // Reopened: a purge ordered at the end of its retention no longer stands (the hub
        // orders it again wherever it still does).
        sql.execute(
            "UPDATE device_case_state SET purge_ordered_at = NULL WHERE case_id = ?1",
            sql_params![&case.to_string()],
        )?;
    }
    let action = format!("{}{status}", action::CASE_STATUS_PREFIX);
    audit::record_detail(sql, now, &action, None, None, Some(&case.to_string()))?;
    Ok(WithDocs::new((), [loaded]))
}

fn at(now: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(now).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Opens a case at the office on the default team ([`create_case_in_team`]).
pub fn create_case(
    sql: &mut dyn Sql,
    vault: &CaseVault,
    new: &NewCase,
    task: Option<&NewTask>,
    now: i64,
) -> Result<WithDocs<(CaseId, Option<TaskId>)>, ServerError> {
    create_case_in_team(sql, vault, DEFAULT_TEAM, new, task, now)
}

/// Opens a case at the office on `team`, assigned to `new.assigned_workers` (who must be active
/// users), optionally with a first accompaniment task. It reaches their phones at their next
/// sync, and the team's people see it at the office.
pub fn create_case_in_team(
    sql: &mut dyn Sql,
    vault: &CaseVault,
    team: Uuid,
    new: &NewCase,
    task: Option<&NewTask>,
    now: i64,
) -> Result<WithDocs<(CaseId, Option<TaskId>)>, ServerError> {
    sql.query_opt(
        "SELECT id FROM teams WHERE id = ?1",
        sql_params![&team.to_string()],
    )?
    .ok_or(ServerError::UnknownTeam)?;
    for user in &new.assigned_workers {
        if !user_is_active(sql, *user)? {
            return Err(ServerError::UnknownUser);
        }
    }
    let id = CaseId::new();
    let mut loaded = LoadedCase::new(CaseDoc::create(
        id,
        new,
        vault.office,
        &vault.actor,
        at(now),
    )?);
    let task_id = task
        .map(|t| loaded.doc.add_task(vault.office, t, at(now)))
        .transpose()?;
    store(sql, vault, &mut loaded, None, now)?;
    let case = id.to_string();
    sql.execute(
        "UPDATE cases SET team_id = ?1 WHERE id = ?2",
        sql_params![&team.to_string(), &case],
    )?;
    crate::storage::report_index::moved(sql, vault, id)?;
    audit::record_detail(sql, now, action::CASE_CREATED, None, None, Some(&case))?;
    for user in &new.assigned_workers {
        sql.execute(
            "INSERT INTO case_assignments (case_id, user_id) VALUES (?1, ?2)
             ON CONFLICT DO NOTHING",
            sql_params![&case, &user.to_string()],
        )?;
        let worker = Some(user.as_uuid());
        audit::record_detail(sql, now, action::CASE_ASSIGNED, worker, None, Some(&case))?;
    }
    if let Some(task) = task_id {
        let detail = format!("{id}/{task}");
        audit::record_detail(sql, now, action::TASK_ADDED, None, None, Some(&detail))?;
    }
    Ok(WithDocs::new((id, task_id), [loaded]))
}

/// Assigns a worker to a case (or removes them). Assigning makes the whole case reach their phone
/// at its next sync.
pub fn set_assigned(
    sql: &mut dyn Sql,
    vault: &CaseVault,
    case: CaseId,
    user: UserId,
    assigned: bool,
    now: i64,
) -> Result<WithDocs<()>, ServerError> {
    set_assigned_by(sql, vault, case, user, assigned, None, now)
}

/// [`set_assigned`] for `by`, the person at the office who decided (named in the case's
/// history).
pub fn set_assigned_by(
    sql: &mut dyn Sql,
    vault: &CaseVault,
    case: CaseId,
    user: UserId,
    assigned: bool,
    by: Option<&Uuid>,
    now: i64,
) -> Result<WithDocs<()>, ServerError> {
    if assigned && !user_is_active(sql, user)? {
        return Err(ServerError::UnknownUser);
    }
    let mut loaded = load_doc(sql, vault, case)?;
    loaded
        .doc
        .set_on_behalf_of(by.map(|u| UserId::from_uuid(*u)));
    loaded
        .doc
        .set_assigned(vault.office, user, assigned, at(now))?;
    store(sql, vault, &mut loaded, None, now)?;
    if assigned {
        sql.execute(
            "INSERT INTO case_assignments (case_id, user_id) VALUES (?1, ?2)
             ON CONFLICT DO NOTHING",
            sql_params![&case.to_string(), &user.to_string()],
        )?;
        // A purge ordered to her devices no longer stands.
        sql.execute(
            "UPDATE device_case_state SET purge_ordered_at = NULL
             WHERE case_id = ?1 AND device_id IN (SELECT id FROM devices WHERE user_id = ?2)",
            sql_params![&case.to_string(), &user.to_string()],
        )?;
    } else {
        sql.execute(
            "DELETE FROM case_assignments WHERE case_id = ?1 AND user_id = ?2",
            sql_params![&case.to_string(), &user.to_string()],
        )?;
    }
    audit::record_detail(
        sql,
        now,
        if assigned {
            action::CASE_ASSIGNED
        } else {
            action::CASE_UNASSIGNED
        },
        Some(user.as_uuid()),
        None,
        Some(&case.to_string()),
    )?;
    Ok(WithDocs::new((), [loaded]))
}

/// Plans an accompaniment task in a case at the office.
pub fn add_task(
    sql: &mut dyn Sql,
    vault: &CaseVault,
    case: CaseId,
    task: &NewTask,
    now: i64,
) -> Result<WithDocs<TaskId>, ServerError> {
    let mut loaded = load_doc(sql, vault, case)?;
    let id = loaded.doc.add_task(vault.office, task, at(now))?;
    store(sql, vault, &mut loaded, None, now)?;
    let detail = format!("{case}/{id}");
    audit::record_detail(sql, now, action::TASK_ADDED, None, None, Some(&detail))?;
    Ok(WithDocs::new(id, [loaded]))
}

/// A case as the office sees it, with the conflicts its fields hold. Only reads, so the
/// document goes back to memory at once (it is what the caller's snapshot holds, and the heads
/// check keeps a copy that a rolled-back write made different from being used).
pub fn read_case(
    sql: &mut dyn Sql,
    vault: &CaseVault,
    case: CaseId,
) -> Result<(Case, Vec<fieldcase_core::document::Conflict>), ServerError> {
    let mut loaded = load_doc(sql, vault, case)?;
    let read = (loaded.doc.case()?, loaded.doc.conflicts()?);
    // Only read: what it holds is what is stored.
    vault.keep([loaded]);
    Ok(read)
}

/// The change sequence number of a case (it grows with every stored change), if it exists.
pub fn case_seq(sql: &mut dyn Sql, case: CaseId) -> Result<Option<i64>, ServerError> {
    Ok(sql
        .query_opt(
            "SELECT seq FROM cases WHERE id = ?1",
            sql_params![&case.to_string()],
        )?
        .map(|r| r.get(0))
        .transpose()?)
}

/// Ids of every case not erased, oldest first. Only the office's own work (retention, the hub) and the
/// command line list every case; people at the office see their teams' cases
/// ([`crate::office::access::team_case_ids`]).
pub fn list_case_ids(sql: &mut dyn Sql) -> Result<Vec<CaseId>, ServerError> {
    let rows = sql.query_all(
        "SELECT id FROM cases WHERE erased_at IS NULL ORDER BY created_at, id",
        &[],
    )?;
    Ok(rows
        .iter()
        .filter_map(|r| r.get::<String>(0).ok().and_then(|s| s.parse().ok()))
        .collect())
}

/// The history of a case's plan, profile and life (who did what, when), oldest first, for a
/// page whose read of the case was already checked and audited.
pub fn case_history(
    sql: &mut dyn Sql,
    vault: &CaseVault,
    case: CaseId,
) -> Result<Vec<fieldcase_core::document::HistoryEntry>, ServerError> {
    let mut loaded = load_doc(sql, vault, case)?;
    let history = loaded.doc.history();
    vault.keep([loaded]);
    Ok(history)
}

/// Whether a case's content was erased at the office ([`crate::office::retention`]).
pub fn is_erased(sql: &mut dyn Sql, case: CaseId) -> Result<bool, ServerError> {
    let row = sql
        .query_opt(
            "SELECT erased_at FROM cases WHERE id = ?1",
            sql_params![&case.to_string()],
        )?
        .ok_or(ServerError::UnknownCase)?;
    Ok(row.get::<Option<i64>>(0)?.is_some())
}
