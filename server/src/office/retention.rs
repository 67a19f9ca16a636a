//! Retention at the office: a closed case's content is erased once the office's retention
//! period (`office_retention_days`) has passed since it was closed, and at once when the client
//! withdraws her consent (after a confirmation, on the case page or the command line).
//!
//! Erasing a case ([`erase`]) replaces its document by an empty one (a new history, so nothing
//! of the old one survives: notes, tasks, plan, profile, every earlier value), drops its sealed
//! change chunks and its decrypted copy in memory, its attachments (each stored file no other
//! case shares), takes every worker off it and ends the purge
//! grace of every phone that holds it, so that each phone is told to purge it at its next sync
//! and none of its uploads to the case is taken any more. What statistics need stays in
//! `case_statistics`, anonymised: the HTCDS variables of the profile with an age band in place of
//! the year of birth, the counts of the plan, the years it was opened and closed, its team; no
//! client code, no names, no text. Each erasure is audited (`case_erased`, with the case and
//! why). An erased case is no longer listed or readable at the office.

use fieldcase_core::document::CaseDoc;
use fieldcase_core::ids::CaseId;
use fieldcase_core::model::{Case, CaseStatus, ConsentStatus, GoalStatus, NewCase};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use uuid::Uuid;

use super::audit;
use super::cases::load_doc;
use crate::error::ServerError;
use crate::sql_params;
use crate::storage::case_docs::{CaseVault, replace_content};
use crate::storage::report_index::facts::age_band;
use crate::storage::sql::Sql;

/// Days the office keeps a closed case's content when the configuration does not say
/// (`office_retention_days`): ten years. Set it to the NGO's own rule.
pub const DEFAULT_OFFICE_RETENTION_DAYS: u64 = 3650;

/// Audit action of an erasure (detail: case/why).
pub const CASE_ERASED: &str = "case_erased";

/// Why a case's content was erased.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// It stayed closed for the retention period.
    Retention,
    /// The client withdrew her consent.
    ConsentWithdrawn,
}

impl Why {
    /// The name stored and audited.
    pub fn as_str(self) -> &'static str {
        match self {
            Why::Retention => "retention",
            Why::ConsentWithdrawn => "consent_withdrawn",
        }
    }
}

/// Grace the hub gives a device's uploads after its first purge order (see the hub); an erased
/// case's is over at once.
const PURGE_GRACE_SECS: i64 = 3600;

/// The anonymised statistics of a case: its HTCDS variables (the year of birth as an age band
/// at opening) and the counts of its plan.
pub fn statistics(case: &Case) -> Value {
    let mut fields = Map::new();
    for (name, value) in case.profile.htcds_fields() {
        if name == "yearOfBirth" {
            continue;
        }
        fields.insert(name.to_owned(), Value::String(value));
    }
    if let Some(y) = case.profile.birth_year {
        fields.insert(
            "ageBroad".to_owned(),
            Value::String(age_band(y, case.created_at.year()).to_owned()),
        );
    }
    let goals = &case.plan.goals;
    let count = |s: GoalStatus| goals.iter().filter(|g| g.status == s).count();
    let mut areas = Map::new();
    for s in &case.plan.services {
        let n = areas
            .get(s.area.as_str())
            .and_then(Value::as_u64)
            .unwrap_or(0);
        areas.insert(s.area.as_str().to_owned(), json!(n + 1));
    }
    fields.insert(
        "plan".to_owned(),
        json!({
            "goals": goals.len(),
            "goals_achieved": count(GoalStatus::Achieved),
            "goals_dropped": count(GoalStatus::Dropped),
            "services_by_area": areas,
            "reviews": case.plan.reviews.len(),
        }),
    );
    Value::Object(fields)
}

pub use super::cases::is_erased;

/// Erases a case's content at the office (see the module), for `why`, by `by` (`None`: the
/// office's own retention run or the command line). Refused for a case already erased.
pub fn erase(
    sql: &mut dyn Sql,
    vault: &CaseVault,
    case: CaseId,
    why: Why,
    by: Option<&Uuid>,
    now: i64,
) -> Result<(), ServerError> {
    if is_erased(sql, case)? {
        return Err(ServerError::UnknownCase);
    }
    // It stays counted in reports: closed today in the index if it was open, its facts frozen.
    crate::storage::report_index::erased(sql, vault, case, now)?;
    let loaded = load_doc(sql, vault, case)?;
    let old = loaded.doc.case()?;
    // The decrypted copy is not given back to memory: dropped here.
    drop(loaded);
    let at = OffsetDateTime::from_unix_timestamp(now)
        .map_err(|_| ServerError::Internal("clock out of range"))?;
    let id = case.to_string();
    let team: String = sql
        .query_row("SELECT team_id FROM cases WHERE id = ?1", sql_params![&id])?
        .get(0)?;
    let closed_at: Option<i64> = sql
        .query_row(
            "SELECT closed_at FROM cases WHERE id = ?1",
            sql_params![&id],
        )?
        .get(0)?;
    let closed_year = closed_at
        .and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok())
        .map(|t| i64::from(t.year()));
    sql.execute(
        "INSERT INTO case_statistics
             (case_id, team_id, opened_year, closed_year, erased_at, why, fields)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        sql_params![
            &id,
            &team,
            i64::from(old.created_at.year()),
            closed_year.or(Some(i64::from(at.year()))),
            now,
            why.as_str(),
            &statistics(&old).to_string()
        ],
    )?;
    // A new, empty document: nothing of the old history remains.
    let consent = if why == Why::ConsentWithdrawn {
        ConsentStatus::Withdrawn
    } else {
        old.consent
    };
    let empty = NewCase {
        client_code: "—".to_owned(),
        consent,
        assigned_workers: Vec::new(),
    };
    let mut doc = CaseDoc::create(case, &empty, vault.office, &vault.actor, at)?;
    doc.set_status(vault.office, CaseStatus::Closed, at)?;
    replace_content(sql, vault, &mut doc, now)?;
    sql.execute(
        "UPDATE cases SET erased_at = ?2, closed_at = COALESCE(closed_at, ?2) WHERE id = ?1",
        sql_params![&id, now],
    )?;
    sql.execute(
        "DELETE FROM case_assignments WHERE case_id = ?1",
        sql_params![&id],
    )?;
    super::attachments::erase_case(sql, case)?;
    // Every phone holding it is told to purge it at its next sync, its uploads no longer taken.
    sql.execute(
        "UPDATE device_case_state SET purge_ordered_at = ?2 WHERE case_id = ?1",
        sql_params![&id, now - PURGE_GRACE_SECS - 1],
    )?;
    let detail = format!("{case}/{}", why.as_str());
    audit::record_detail(sql, now, CASE_ERASED, by, None, Some(&detail))?;
    Ok(())
}

/// Erases every case closed for at least `retention_secs` and not erased yet; returns them.
pub fn erase_expired(
    sql: &mut dyn Sql,
    vault: &CaseVault,
    retention_secs: i64,
    now: i64,
) -> Result<Vec<CaseId>, ServerError> {
    let rows = sql.query_all(
        "SELECT id FROM cases
         WHERE erased_at IS NULL AND closed_at IS NOT NULL AND closed_at + ?1 <= ?2
         ORDER BY closed_at, id",
        sql_params![retention_secs, now],
    )?;
    let mut erased = Vec::new();
    for row in &rows {
        let id: CaseId = row
            .get::<String>(0)?
            .parse()
            .map_err(|_| ServerError::Internal("stored case id is not an id"))?;
        erase(sql, vault, id, Why::Retention, None, now)?;
        erased.push(id);
    }
    Ok(erased)
}

/// Records that the client withdrew her consent and erases the case at once (the page asks for
/// a confirmation first).
pub fn withdraw_consent(
    sql: &mut dyn Sql,
    vault: &CaseVault,
    case: CaseId,
    by: Option<&Uuid>,
    now: i64,
) -> Result<(), ServerError> {
    erase(sql, vault, case, Why::ConsentWithdrawn, by, now)
}
