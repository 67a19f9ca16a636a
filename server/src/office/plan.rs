//! The individual recovery plan and the client profile at the office: goals, services, reviews
//! and the HTCDS profile written by a case manager from the case page or the command line, and
//! the case's lifecycle decisions that touch the profile (closing with a reason, reopening).
//!
//! The office writes as itself ([`CaseVault::office`]) and names the person who acted in the
//! change's message ([`fieldcase_core::document::CaseDoc::set_on_behalf_of`]), so the case's
//! history shows her; every edit is audited with her id and the case (never the text, which is
//! case data). The change reaches the assigned phones at their next sync like any office edit.

use fieldcase_core::ids::{CaseId, GoalId, UserId};
use fieldcase_core::model::{
    CaseStatus, ClientProfile, ClosureReason, GoalUpdate, HtcdsStatus, NewGoal, NewReview,
    NewService,
};
use time::OffsetDateTime;
use uuid::Uuid;

use super::audit;
use super::cases::load_doc;
use crate::error::ServerError;
use crate::sql_params;
use crate::storage::case_docs::{CaseVault, WithDocs, store};
use crate::storage::sql::Sql;

/// Audit actions of the plan, the profile and the lifecycle decisions made here.
pub mod action {
    /// A goal was set (detail: case/goal).
    pub const GOAL_ADDED: &str = "plan_goal_added";
    /// A goal was changed (detail: case/goal).
    pub const GOAL_CHANGED: &str = "plan_goal_changed";
    /// A service was recorded (detail: case).
    pub const SERVICE_ADDED: &str = "plan_service_added";
    /// The plan was reviewed (detail: case).
    pub const REVIEWED: &str = "plan_reviewed";
    /// The client profile was changed (detail: case).
    pub const PROFILE_CHANGED: &str = "profile_changed";
    /// A case was closed with a reason (detail: case/reason).
    pub const CLOSED: &str = "case_closed";
    /// A closed or held case was reopened (detail: case).
    pub const REOPENED: &str = "case_reopened";
    /// A case was put on hold (detail: case).
    pub const ON_HOLD: &str = "case_put_on_hold";
}

/// One edit of a case's plan or profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanEdit {
    /// Set a goal.
    AddGoal(NewGoal),
    /// Change a goal.
    UpdateGoal(GoalId, GoalUpdate),
    /// Record a service.
    AddService(NewService),
    /// Record a review (by the person acting, unless it names another reviewer).
    AddReview(NewReview),
    /// Record the client profile (only the fields that differ are written).
    Profile(ClientProfile),
}

fn at(now: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(now).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Makes `edit` in `case` for `by` (the person acting; `None` from the command line), audited.
pub fn edit(
    sql: &mut dyn Sql,
    vault: &CaseVault,
    case: CaseId,
    edit: &PlanEdit,
    by: Option<&Uuid>,
    now: i64,
) -> Result<WithDocs<()>, ServerError> {
    let mut loaded = load_doc(sql, vault, case)?;
    loaded
        .doc
        .set_on_behalf_of(by.map(|u| UserId::from_uuid(*u)));
    let office = vault.office;
    let (action, detail) = match edit {
        PlanEdit::AddGoal(goal) => {
            let id = loaded.doc.add_goal(office, goal, at(now));
            (action::GOAL_ADDED, id.map(|id| format!("{case}/{id}")))
        }
        PlanEdit::UpdateGoal(goal, update) => {
            let done = loaded.doc.update_goal(office, *goal, update, at(now));
            (
                action::GOAL_CHANGED,
                done.map(|()| format!("{case}/{goal}")),
            )
        }
        PlanEdit::AddService(service) => {
            let id = loaded.doc.add_service(office, service, at(now));
            (action::SERVICE_ADDED, id.map(|_| case.to_string()))
        }
        PlanEdit::AddReview(review) => {
            let mut review = review.clone();
            review.reviewer = review.reviewer.or(by.map(|u| UserId::from_uuid(*u)));
            let id = loaded.doc.add_review(office, &review, at(now));
            (action::REVIEWED, id.map(|_| case.to_string()))
        }
        PlanEdit::Profile(profile) => {
            let done = loaded.doc.set_profile(office, profile, at(now));
            (action::PROFILE_CHANGED, done.map(|()| case.to_string()))
        }
    };
    let detail = detail?;
    store(sql, vault, &mut loaded, None, now)?;
    audit::record_detail(sql, now, action, by, None, Some(&detail))?;
    Ok(WithDocs::new((), [loaded]))
}

/// The HTCDS status a case closed for `reason` takes.
pub fn closed_status(reason: ClosureReason) -> HtcdsStatus {
    if reason == ClosureReason::Referred {
        HtcdsStatus::ClosedReferred
    } else {
        HtcdsStatus::Closed
    }
}

/// Changes the case's lifecycle for `by`: `Closed` with a reason (also recorded in the profile
/// as HTCDS status and reason for closure; the office's retention period starts, and the
/// phones purge the case after theirs), `OnHold`, or `Open` (reopening: the HTCDS status back
/// to active, the reason cleared, a purge ordered at the end of the phones' retention
/// withdrawn). Closing needs a reason; the others take none.
pub fn set_lifecycle(
    sql: &mut dyn Sql,
    vault: &CaseVault,
    case: CaseId,
    status: CaseStatus,
    reason: Option<ClosureReason>,
    by: Option<&Uuid>,
    now: i64,
) -> Result<WithDocs<()>, ServerError> {
    if (status == CaseStatus::Closed) != reason.is_some() {
        return Err(fieldcase_core::CoreError::Invalid(
            fieldcase_core::model::ValidationError::Inconsistent {
                rule: "a case is closed with a reason, and only closing takes one",
            },
        )
        .into());
    }
    let mut loaded = load_doc(sql, vault, case)?;
    loaded
        .doc
        .set_on_behalf_of(by.map(|u| UserId::from_uuid(*u)));
    let office = vault.office;
    let mut profile = loaded.doc.profile();
    match reason {
        Some(reason) => {
            profile.htcds_status = Some(closed_status(reason));
            profile.closure_reason = Some(reason);
        }
        None => {
            profile.closure_reason = None;
            if status == CaseStatus::Open || profile.htcds_status.is_some() {
                profile.htcds_status = Some(HtcdsStatus::Active);
            }
        }
    }
    loaded.doc.set_status(office, status, at(now))?;
    loaded.doc.set_profile(office, &profile, at(now))?;
    store(sql, vault, &mut loaded, None, now)?;
    if status != CaseStatus::Closed {
        sql.execute(
            "UPDATE device_case_state SET purge_ordered_at = NULL WHERE case_id = ?1",
            sql_params![&case.to_string()],
        )?;
    }
    let (action, detail) = match (status, reason) {
        (CaseStatus::Closed, Some(r)) => (action::CLOSED, format!("{case}/{r}")),
        (CaseStatus::OnHold, _) => (action::ON_HOLD, case.to_string()),
        _ => (action::REOPENED, case.to_string()),
    };
    audit::record_detail(sql, now, action, by, None, Some(&detail))?;
    Ok(WithDocs::new((), [loaded]))
}
