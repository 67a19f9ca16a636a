//! The conflict inbox: concurrent changes to sensitive fields (a case's consent, risk level and
//! legal status, a task's outcome) wait here, every value with who wrote it (user and device)
//! and when, until a case manager picks one of the values or writes a new one.
//!
//! [`resolve`] is the one operation behind the web page, `fieldcase-server admin case resolve`
//! and `POST /v1/admin/cases/{id}/resolve`. It loads the case document, which holds every
//! concurrent value, and writes the chosen value over all of them
//! ([`fieldcase_core::document::CaseDoc::resolve_conflict`]); the change goes out to the
//! assigned phones at their next sync like any office edit, and once a phone has it the field
//! holds that single value there too. Each resolution is audited (`conflict_resolved`, with the
//! case, task and field as detail; never the values, which are case data). Notes never come
//! here: concurrent notes and body edits merge by themselves.

use fieldcase_core::document::{Conflict, ConflictOn};
use fieldcase_core::ids::{CaseId, GoalId, TaskId};
use uuid::Uuid;

use crate::error::ServerError;
use crate::office::cases;
use crate::storage::case_docs::CaseVault;
use crate::storage::case_docs::WithDocs;
use crate::storage::sql::Sql;

/// Audit action of a resolved conflict.
pub const CONFLICT_RESOLVED: &str = "conflict_resolved";

/// One case's sensitive conflicts, as the inbox lists them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseConflicts {
    /// The case.
    pub case: CaseId,
    /// The client's code, to recognise the case.
    pub client_code: String,
    /// Each task's purpose by id, to name the task a conflict is on.
    pub task_purposes: Vec<(TaskId, String)>,
    /// Each goal's description by id, to name the goal a conflict is on.
    pub goal_descriptions: Vec<(GoalId, String)>,
    /// The sensitive conflicts, case fields first, then by task.
    pub conflicts: Vec<Conflict>,
}

/// Those of `cases` that hold a sensitive conflict, in the order given (who may see which
/// cases is [`crate::office::access::conflict_inbox`]).
pub fn inbox(
    sql: &mut dyn Sql,
    vault: &CaseVault,
    cases: &[CaseId],
) -> Result<Vec<CaseConflicts>, ServerError> {
    let mut out = Vec::new();
    for &id in cases {
        let (case, conflicts) = cases::read_case(sql, vault, id)?;
        let conflicts: Vec<Conflict> = conflicts.into_iter().filter(|c| c.is_sensitive()).collect();
        if conflicts.is_empty() {
            continue;
        }
        out.push(CaseConflicts {
            case: id,
            client_code: case.client_code,
            task_purposes: case.tasks.into_iter().map(|t| (t.id, t.purpose)).collect(),
            goal_descriptions: case
                .plan
                .goals
                .into_iter()
                .map(|g| (g.id, g.description))
                .collect(),
            conflicts,
        });
    }
    Ok(out)
}

/// A decision on one conflict: which field, and the value it keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    /// The case.
    pub case: CaseId,
    /// The task whose field it is, or `None` for a field of the case or a goal.
    pub task: Option<TaskId>,
    /// The goal of the recovery plan whose field (status) it is, if a goal's.
    pub goal: Option<GoalId>,
    /// The field (`consent`, `risk_level`, `legal_status`; `outcome` of a task).
    pub field: String,
    /// The value to keep: one of the concurrent values or a new one.
    pub value: String,
}

/// Settles the conflict on a field of a case (or of one of its tasks) with the value chosen:
/// one of the concurrent values or a new one the field accepts. `by` is the case manager or
/// admin who decided (`None` from the command line). Refused with [`ServerError::NoConflict`]
/// when the field holds a single value (already resolved), and with a validation error for a
/// field that is not sensitive or a value it does not take; nothing changes then.
pub fn resolve(
    sql: &mut dyn Sql,
    vault: &CaseVault,
    decision: &Resolution,
    by: Option<&Uuid>,
    now: i64,
) -> Result<WithDocs<()>, ServerError> {
    let Resolution {
        case,
        task,
        goal,
        field,
        value,
    } = decision;
    let (case, task) = (*case, *task);
    let on = match (task, goal) {
        (Some(t), _) => ConflictOn::Task(t),
        (None, Some(g)) => ConflictOn::Goal(*g),
        (None, None) => ConflictOn::Case,
    };
    let mut loaded = cases::load_doc(sql, vault, case)?;
    let open = loaded
        .doc
        .conflicts()?
        .into_iter()
        .any(|c| c.on() == on && c.field == *field && c.is_sensitive());
    if !open {
        return Err(ServerError::NoConflict);
    }
    let at = time::OffsetDateTime::from_unix_timestamp(now)
        .map_err(|_| ServerError::Internal("clock out of range"))?;
    // The case's history names the case manager who decided.
    loaded
        .doc
        .set_on_behalf_of(by.map(|u| fieldcase_core::ids::UserId::from_uuid(*u)));
    loaded
        .doc
        .resolve_conflict_on(vault.office, on, field, value, at)?;
    crate::storage::case_docs::store(sql, vault, &mut loaded, None, now)?;
    let detail = match on {
        ConflictOn::Task(t) => format!("{case}/{t}/{field}"),
        ConflictOn::Goal(g) => format!("{case}/{g}/{field}"),
        ConflictOn::Case => format!("{case}/{field}"),
    };
    crate::office::audit::record_detail(sql, now, CONFLICT_RESOLVED, by, None, Some(&detail))?;
    Ok(WithDocs::new((), [loaded]))
}
