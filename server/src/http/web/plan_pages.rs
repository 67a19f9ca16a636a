//! A case's life in the browser: opening a case (intake), assigning and taking workers off,
//! putting it on hold, closing it with a reason, reopening it; its individual recovery plan
//! (goals, services, reviews), its client profile (HTCDS core fields) and its history. Each
//! action is a form for the roles that may change the case (its team's case managers and
//! admins), audited by the office operation it calls ([`crate::office::plan`],
//! [`crate::office::cases`]), and reaches the phones at their next sync.

use axum::Form;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect};
use fieldcase_core::document::HistoryEntry;
use fieldcase_core::ids::{CaseId, GoalId, UserId};
use fieldcase_core::model::{
    AssistanceTag, Case, CaseStatus, ClientProfile, ClosureReason, ConsentStatus, ExploitationType,
    Gender, GoalStatus, GoalUpdate, HtcdsStatus, LabourIndustry, MeansOfControl, NewCase, NewGoal,
    NewReview, NewService, RecruitmentMethod,
};
use fieldcase_core::protocol::Role;
use maud::{Markup, html};
use uuid::Uuid;

use super::auth::{WebError, WebUser};
use super::i18n::{Lang, Msg, Vocab, belgrade};
use super::layout::{Names, Page, csrf_field, name_of, page, parse_case, short, user_names};
use crate::display::for_page;
use crate::http::state::AppState;
use crate::office::access::{self, Ability};
use crate::office::plan::{self, PlanEdit};
use crate::office::{cases, teams};

type Fields = Vec<(String, String)>;

fn one<'a>(form: &'a Fields, key: &str) -> &'a str {
    form.iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.trim())
        .unwrap_or("")
}

fn all<'a>(form: &'a Fields, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    form.iter()
        .filter(move |(k, _)| k == key)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

fn bad(what: &str) -> WebError {
    WebError::BadInput(what.to_owned())
}

fn parse_opt<T: std::str::FromStr>(form: &Fields, key: &str) -> Result<Option<T>, WebError> {
    match one(form, key) {
        "" => Ok(None),
        v => v.parse().map(Some).map_err(|_| bad(key)),
    }
}

fn parse_all<T: std::str::FromStr>(form: &Fields, key: &str) -> Result<Vec<T>, WebError> {
    all(form, key)
        .map(|v| v.parse().map_err(|_| bad(key)))
        .collect()
}

fn date(form: &Fields, key: &str) -> Result<Option<time::Date>, WebError> {
    match one(form, key) {
        "" => Ok(None),
        v => time::Date::parse(v, time::macros::format_description!("[year]-[month]-[day]"))
            .map(Some)
            .map_err(|_| bad(key)),
    }
}

/// A date as `YYYY-MM-DD`.
pub(super) fn show_date(d: time::Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

/// A `<select>` of a vocabulary's values by label, with an empty first choice when `optional`.
fn select<V: Vocab + PartialEq>(
    l: Lang,
    id: &str,
    name: &str,
    current: Option<V>,
    optional: bool,
) -> Markup {
    html! {
        select id=(id) name=(name) {
            @if optional { option value="" { "—" } }
            @for v in V::all() {
                option value=(v.name()) selected[current == Some(*v)] { (l.v(*v)) }
            }
        }
    }
}

/// Checkboxes of a vocabulary's values by label.
fn checks<V: Vocab + PartialEq>(l: Lang, name: &str, current: &[V]) -> Markup {
    html! {
        @for v in V::all() {
            label.check { input type="checkbox" name=(name) value=(v.name()) checked[current.contains(v)]; " " (l.v(*v)) }
        }
    }
}

fn workers(names: &Names) -> Vec<(Uuid, String)> {
    let mut out: Vec<(Uuid, String)> = names
        .iter()
        .filter(|(_, (_, role))| *role == Role::FieldWorker)
        .map(|(id, (n, _))| (*id, n.clone()))
        .collect();
    out.sort_by(|a, b| a.1.cmp(&b.1));
    out
}

/// The case's lifecycle: its workers, and putting it on hold, closing and reopening it.
pub(super) fn lifecycle_section(l: Lang, user: &WebUser, case: &Case, names: &Names) -> Markup {
    let id = case.id;
    html! {
        section #lifecycle aria-labelledby="lifecycle-h" {
            h2 #lifecycle-h { (l.t(Msg::Lifecycle)) }
            form.inline method="post" action={ "/cases/" (id) "/assign" } {
                (csrf_field(user))
                label for="worker" { (l.t(Msg::AssignedWorkers)) }
                select #worker name="worker" {
                    @for (wid, wname) in workers(names) { option value=(wid) { (wname) } }
                }
                button #assign name="assigned" value="1" type="submit" { (l.t(Msg::Assign)) }
                button #unassign name="assigned" value="0" type="submit" { (l.t(Msg::Unassign)) }
            }
            @if case.status == CaseStatus::Open {
                form.inline method="post" action={ "/cases/" (id) "/lifecycle" } {
                    (csrf_field(user))
                    input type="hidden" name="status" value="on_hold";
                    button #hold type="submit" { (l.t(Msg::PutOnHold)) }
                }
            }
            @if case.status != CaseStatus::Closed {
                form.inline method="post" action={ "/cases/" (id) "/lifecycle" } {
                    (csrf_field(user))
                    input type="hidden" name="status" value="closed";
                    label for="reason" { (l.t(Msg::ClosureReason)) }
                    (select::<ClosureReason>(l, "reason", "reason", None, false))
                    button #close type="submit" { (l.t(Msg::CloseCase)) }
                }
            } @else {
                form.inline method="post" action={ "/cases/" (id) "/lifecycle" } {
                    (csrf_field(user))
                    input type="hidden" name="status" value="open";
                    button #reopen type="submit" { (l.t(Msg::Reopen)) }
                }
            }
            @if case.status == CaseStatus::OnHold {
                form.inline method="post" action={ "/cases/" (id) "/lifecycle" } {
                    (csrf_field(user))
                    input type="hidden" name="status" value="open";
                    button #reopen type="submit" { (l.t(Msg::Reopen)) }
                }
            }
            p { a.danger #withdraw-consent href={ "/cases/" (id) "/erase" } { (l.t(Msg::WithdrawConsent)) } }
        }
    }
}

/// The recovery plan: goals (with their status, and a form to change it), services, reviews,
/// and the forms to add each when `change` (the user may change the case).
pub(super) fn plan_section(
    l: Lang,
    user: &WebUser,
    case: &Case,
    names: &Names,
    conflicted: &[GoalId],
    change: bool,
) -> Markup {
    let plan = &case.plan;
    let id = case.id;
    let goal_text = |g: &GoalId| {
        plan.goals
            .iter()
            .find(|x| x.id == *g)
            .map(|x| for_page(&x.description))
            .unwrap_or_else(|| short(&g.to_string()))
    };
    html! {
        section #plan aria-labelledby="plan-h" {
            h2 #plan-h { (l.t(Msg::Plan)) " · " (l.count("goals-count", plan.goals.len())) }
            h3 { (l.t(Msg::Goals)) }
            @if plan.goals.is_empty() { p { (l.t(Msg::Nothing)) } }
            @else {
                div.scroll { table #goals {
                    thead { tr { th { (l.t(Msg::Area)) } th { (l.t(Msg::Goal)) } th { (l.t(Msg::Status)) } th { (l.t(Msg::TargetDate)) } } }
                    tbody { @for g in &plan.goals { tr.goal data-goal=(g.id) {
                        td { (l.v(g.area)) }
                        td.description { (for_page(&g.description)) }
                        td.status {
                            span.goal-status { (l.v(g.status)) }
                            @if conflicted.contains(&g.id) {
                                " " a.error href="/conflicts" { (l.t(Msg::ConflictsWaiting)) }
                            }
                            @if change {
                                form.inline method="post" action={ "/cases/" (id) "/goals/" (g.id) } {
                                    (csrf_field(user))
                                    (select::<GoalStatus>(l, &format!("status-{}", g.id), "status", Some(g.status), false))
                                    button.goal-status-change type="submit" { (l.t(Msg::ChangeStatus)) }
                                }
                            }
                        }
                        td { (g.target_date.map(show_date).unwrap_or_default()) }
                    } } }
                } }
            }
            @if change {
                details #add-goal-box {
                    summary { (l.t(Msg::AddGoal)) }
                    form.task method="post" action={ "/cases/" (id) "/goals" } {
                        (csrf_field(user))
                        label for="goal-area" { (l.t(Msg::Area)) }
                        (select::<AssistanceTag>(l, "goal-area", "area", None, false))
                        label for="goal-description" { (l.t(Msg::Description)) }
                        input #goal-description name="description" required maxlength="8192";
                        label for="goal-target" { (l.t(Msg::TargetDate)) }
                        input #goal-target type="date" name="target_date";
                        button #add-goal type="submit" { (l.t(Msg::AddGoal)) }
                    }
                }
            }
            h3 { (l.t(Msg::Services)) }
            @if plan.services.is_empty() { p { (l.t(Msg::Nothing)) } }
            ul #services { @for s in &plan.services { li.service {
                time { (show_date(s.given_on)) } " · " (l.v(s.area)) " · " (for_page(&s.description))
                " · " (l.t(Msg::By)) " " (name_of(names, &s.recorded_by.user))
                @if !s.goals.is_empty() {
                    " · " (l.t(Msg::LinkedGoals)) ": "
                    @for (i, g) in s.goals.iter().enumerate() { @if i > 0 { ", " } (goal_text(g)) }
                }
                @if !s.notes.is_empty() { " · " (l.count("notes-count", s.notes.len())) }
            } } }
            @if change {
                details {
                    summary { (l.t(Msg::AddService)) }
                    form.task method="post" action={ "/cases/" (id) "/services" } {
                        (csrf_field(user))
                        label for="service-area" { (l.t(Msg::Area)) }
                        (select::<AssistanceTag>(l, "service-area", "area", None, false))
                        label for="service-description" { (l.t(Msg::Description)) }
                        input #service-description name="description" required maxlength="8192";
                        label for="service-date" { (l.t(Msg::GivenOn)) }
                        input #service-date type="date" name="given_on" required;
                        @if !plan.goals.is_empty() {
                            fieldset { legend { (l.t(Msg::LinkedGoals)) }
                                @for g in &plan.goals {
                                    label.check { input type="checkbox" name="goal" value=(g.id); " " (for_page(&g.description)) }
                                }
                            }
                        }
                        @if !case.tasks.is_empty() {
                            fieldset { legend { (l.t(Msg::LinkedTasks)) }
                                @for t in &case.tasks {
                                    label.check { input type="checkbox" name="task" value=(t.id); " " (for_page(&t.purpose)) }
                                }
                            }
                        }
                        button #add-service type="submit" { (l.t(Msg::AddService)) }
                    }
                }
            }
            h3 { (l.t(Msg::Reviews)) }
            @if plan.reviews.is_empty() { p { (l.t(Msg::Nothing)) } }
            ul #reviews { @for r in &plan.reviews { li.review {
                time { (show_date(r.reviewed_on)) } " · " (l.t(Msg::Reviewer)) ": " (name_of(names, &r.reviewer))
                p.body { (for_page(&r.summary)) }
            } } }
            @if change {
                details {
                    summary { (l.t(Msg::AddReview)) }
                    form.task method="post" action={ "/cases/" (id) "/reviews" } {
                        (csrf_field(user))
                        label for="review-date" { (l.t(Msg::ReviewedOn)) }
                        input #review-date type="date" name="reviewed_on" required;
                        label for="review-summary" { (l.t(Msg::Summary)) }
                        textarea #review-summary name="summary" rows="3" required maxlength="8192" {}
                        button #add-review type="submit" { (l.t(Msg::AddReview)) }
                    }
                }
            }
        }
    }
}

/// The client profile (HTCDS core fields): what is recorded, and the form to change it.
pub(super) fn profile_section(l: Lang, user: &WebUser, case: &Case, change: bool) -> Markup {
    let p = &case.profile;
    let none = l.t(Msg::NotRecorded);
    let list = |labels: Vec<&'static str>| {
        if labels.is_empty() {
            none.to_owned()
        } else {
            labels.join(", ")
        }
    };
    html! {
        section #profile aria-labelledby="profile-h" {
            h2 #profile-h { (l.t(Msg::Profile)) }
            dl.profile {
                dt { (l.t(Msg::Gender)) } dd { (p.gender.map_or(none, |v| l.v(v))) }
                dt { (l.t(Msg::BirthYear)) } dd { (p.birth_year.map_or(none.to_owned(), |y| y.to_string())) }
                dt { (l.t(Msg::Nationality)) } dd { (p.nationality.map_or(none.to_owned(), |c| c.to_string())) }
                dt { (l.t(Msg::Exploitation)) } dd { (list(p.exploitation.iter().map(|v| l.v(*v)).collect())) }
                dt { (l.t(Msg::LabourIndustry)) } dd { (p.labour_industry.map_or(none, |v| l.v(v))) }
                dt { (l.t(Msg::MeansOfControl)) } dd { (list(p.means_of_control.iter().map(|v| l.v(*v)).collect())) }
                dt { (l.t(Msg::RecruitmentMethod)) } dd { (p.recruitment_method.map_or(none, |v| l.v(v))) }
                dt { (l.t(Msg::RecruitmentCountry)) } dd { (p.recruitment_country.map_or(none.to_owned(), |c| c.to_string())) }
                dt { (l.t(Msg::HtcdsStatus)) } dd #htcds-status { (p.htcds_status.map_or(none, |v| l.v(v))) }
                dt { (l.t(Msg::ClosureReason)) } dd { (p.closure_reason.map_or(none, |v| l.v(v))) }
            }
            @if change {
                details {
                    summary { (l.t(Msg::SaveProfile)) }
                    form.task method="post" action={ "/cases/" (case.id) "/profile" } {
                        (csrf_field(user))
                        label for="gender" { (l.t(Msg::Gender)) }
                        (select::<Gender>(l, "gender", "gender", p.gender, true))
                        label for="birth_year" { (l.t(Msg::BirthYear)) }
                        input #birth_year name="birth_year" inputmode="numeric" pattern="[0-9]{4}" value=(p.birth_year.map(|y| y.to_string()).unwrap_or_default());
                        label for="nationality" { (l.t(Msg::Nationality)) }
                        input #nationality name="nationality" maxlength="2" pattern="[A-Za-z]{2}" value=(p.nationality.map(|c| c.to_string()).unwrap_or_default());
                        fieldset { legend { (l.t(Msg::Exploitation)) } (checks::<ExploitationType>(l, "exploitation", &p.exploitation)) }
                        label for="labour_industry" { (l.t(Msg::LabourIndustry)) }
                        (select::<LabourIndustry>(l, "labour_industry", "labour_industry", p.labour_industry, true))
                        fieldset { legend { (l.t(Msg::MeansOfControl)) } (checks::<MeansOfControl>(l, "control", &p.means_of_control)) }
                        label for="recruitment_method" { (l.t(Msg::RecruitmentMethod)) }
                        (select::<RecruitmentMethod>(l, "recruitment_method", "recruitment_method", p.recruitment_method, true))
                        label for="recruitment_country" { (l.t(Msg::RecruitmentCountry)) }
                        input #recruitment_country name="recruitment_country" maxlength="2" pattern="[A-Za-z]{2}" value=(p.recruitment_country.map(|c| c.to_string()).unwrap_or_default());
                        label for="htcds_status" { (l.t(Msg::HtcdsStatus)) }
                        (select::<HtcdsStatus>(l, "htcds_status", "htcds_status", p.htcds_status, true))
                        label for="closure_reason" { (l.t(Msg::ClosureReason)) }
                        (select::<ClosureReason>(l, "closure_reason", "closure_reason", p.closure_reason, true))
                        button #save-profile type="submit" { (l.t(Msg::SaveProfile)) }
                    }
                }
            }
        }
    }
}

/// The history of the case's plan, profile and life, newest first. A change the office made
/// names the case manager its message names; a phone's change names its author.
pub(super) fn history_section(
    l: Lang,
    history: &[HistoryEntry],
    names: &Names,
    office: fieldcase_core::ids::DeviceId,
    case: &Case,
) -> Markup {
    let goal_text = |g: &GoalId| {
        case.plan
            .goals
            .iter()
            .find(|x| x.id == *g)
            .map(|x| for_page(&x.description))
    };
    html! {
        section #history aria-labelledby="history-h" {
            h2 #history-h { (l.t(Msg::History)) }
            ol.history { @for h in history.iter().rev() { li {
                @if let Some(at) = h.at { time { (belgrade(at)) } " · " }
                @match h.author {
                    Some(a) if a.device == office => {
                        @match h.by {
                            Some(by) => { (name_of(names, &by)) }
                            None => { (l.t(Msg::Office)) }
                        }
                    }
                    Some(a) => { (name_of(names, &a.user)) }
                    None => { "?" }
                }
                " " (l.value("history", &h.action))
                @if let Some(text) = h.goal.as_ref().and_then(goal_text) { ": " em { (text) } }
                @if let Some(s) = h.status { " → " strong { (l.v(s)) } }
            } } }
        }
    }
}

/// Checks that `who` may change `case`, then runs a plan edit for her.
async fn plan_edit(state: &AppState, user: &WebUser, case: CaseId, edit: PlanEdit) -> Page {
    let (vault, now, who) = (state.vault().clone(), state.now(), user.staff());
    state
        .db()
        .call_write(move |sql| {
            access::require_change(sql, who, case)?;
            plan::edit(sql, &vault, case, &edit, Some(&who.id), now)
        })
        .await?
        .keep(state.vault());
    Ok(Redirect::to(&format!("/cases/{case}#plan")).into_response())
}

fn checked(user: &WebUser, form: &Fields) -> Result<(), WebError> {
    user.require(Ability::ChangeTeamCases)?;
    user.check_csrf(Some(one(form, "csrf")))
}

pub(super) async fn add_goal(
    State(state): State<AppState>,
    user: WebUser,
    Path(id): Path<String>,
    Form(form): Form<Fields>,
) -> Page {
    checked(&user, &form)?;
    let case = parse_case(&id)?;
    let goal = NewGoal {
        area: one(&form, "area").parse().map_err(|_| bad("area"))?,
        description: one(&form, "description").to_owned(),
        target_date: date(&form, "target_date")?,
    };
    plan_edit(&state, &user, case, PlanEdit::AddGoal(goal)).await
}

pub(super) async fn update_goal(
    State(state): State<AppState>,
    user: WebUser,
    Path((id, goal)): Path<(String, String)>,
    Form(form): Form<Fields>,
) -> Page {
    checked(&user, &form)?;
    let case = parse_case(&id)?;
    let goal: GoalId = goal.parse().map_err(|_| WebError::NotFound)?;
    let update = GoalUpdate {
        status: parse_opt(&form, "status")?,
        ..GoalUpdate::default()
    };
    plan_edit(&state, &user, case, PlanEdit::UpdateGoal(goal, update)).await
}

pub(super) async fn add_service(
    State(state): State<AppState>,
    user: WebUser,
    Path(id): Path<String>,
    Form(form): Form<Fields>,
) -> Page {
    checked(&user, &form)?;
    let case = parse_case(&id)?;
    let service = NewService {
        area: one(&form, "area").parse().map_err(|_| bad("area"))?,
        description: one(&form, "description").to_owned(),
        given_on: date(&form, "given_on")?.ok_or_else(|| bad("given_on"))?,
        goals: parse_all(&form, "goal")?,
        tasks: parse_all(&form, "task")?,
        notes: parse_all(&form, "note")?,
    };
    plan_edit(&state, &user, case, PlanEdit::AddService(service)).await
}

pub(super) async fn add_review(
    State(state): State<AppState>,
    user: WebUser,
    Path(id): Path<String>,
    Form(form): Form<Fields>,
) -> Page {
    checked(&user, &form)?;
    let case = parse_case(&id)?;
    let review = NewReview {
        reviewed_on: date(&form, "reviewed_on")?.ok_or_else(|| bad("reviewed_on"))?,
        summary: one(&form, "summary").to_owned(),
        reviewer: Some(UserId::from_uuid(user.id)),
    };
    plan_edit(&state, &user, case, PlanEdit::AddReview(review)).await
}

pub(super) async fn save_profile(
    State(state): State<AppState>,
    user: WebUser,
    Path(id): Path<String>,
    Form(form): Form<Fields>,
) -> Page {
    checked(&user, &form)?;
    let case = parse_case(&id)?;
    let profile = ClientProfile {
        gender: parse_opt(&form, "gender")?,
        birth_year: parse_opt(&form, "birth_year")?,
        nationality: parse_opt(&form, "nationality")?,
        exploitation: parse_all(&form, "exploitation")?,
        labour_industry: parse_opt(&form, "labour_industry")?,
        means_of_control: parse_all(&form, "control")?,
        recruitment_method: parse_opt(&form, "recruitment_method")?,
        recruitment_country: parse_opt(&form, "recruitment_country")?,
        htcds_status: parse_opt(&form, "htcds_status")?,
        closure_reason: parse_opt(&form, "closure_reason")?,
    };
    plan_edit(&state, &user, case, PlanEdit::Profile(profile)).await
}

/// Assigns a worker to the case or takes her off it (her phones then purge it).
pub(super) async fn assign(
    State(state): State<AppState>,
    user: WebUser,
    Path(id): Path<String>,
    Form(form): Form<Fields>,
) -> Page {
    checked(&user, &form)?;
    let case = parse_case(&id)?;
    let worker = UserId::from_uuid(one(&form, "worker").parse().map_err(|_| bad("worker"))?);
    let assigned = one(&form, "assigned") == "1";
    let (vault, now, who) = (state.vault().clone(), state.now(), user.staff());
    state
        .db()
        .call_write(move |sql| {
            access::require_change(sql, who, case)?;
            let done =
                cases::set_assigned_by(sql, &vault, case, worker, assigned, Some(&who.id), now)?;
            crate::office::audit::record_detail(
                sql,
                now,
                if assigned {
                    "case_assigned_web"
                } else {
                    "case_unassigned_web"
                },
                Some(&who.id),
                None,
                Some(&format!("{case}/{worker}")),
            )?;
            Ok::<_, WebError>(done)
        })
        .await?
        .keep(state.vault());
    Ok(Redirect::to(&format!("/cases/{case}")).into_response())
}

/// Puts the case on hold, closes it with a reason, or reopens it.
pub(super) async fn lifecycle(
    State(state): State<AppState>,
    user: WebUser,
    Path(id): Path<String>,
    Form(form): Form<Fields>,
) -> Page {
    checked(&user, &form)?;
    let case = parse_case(&id)?;
    let status: CaseStatus = one(&form, "status").parse().map_err(|_| bad("status"))?;
    let reason: Option<ClosureReason> = parse_opt(&form, "reason")?;
    let (vault, now, who) = (state.vault().clone(), state.now(), user.staff());
    state
        .db()
        .call_write(move |sql| {
            access::require_change(sql, who, case)?;
            plan::set_lifecycle(sql, &vault, case, status, reason, Some(&who.id), now)
        })
        .await?
        .keep(state.vault());
    Ok(Redirect::to(&format!("/cases/{case}")).into_response())
}

/// The confirmation before erasing a case whose client withdrew her consent.
pub(super) async fn erase_confirm(
    State(state): State<AppState>,
    user: WebUser,
    Path(id): Path<String>,
) -> Page {
    user.require(Ability::ChangeTeamCases)?;
    let case = parse_case(&id)?;
    let who = user.staff();
    state
        .db()
        .call_read(move |sql| access::require_change(sql, who, case))
        .await?;
    let l = user.lang;
    let body = html! {
        p.error role="alert" #erase-warning { (l.t(Msg::ConfirmErase)) }
        form.task method="post" action={ "/cases/" (case) "/erase" } {
            (csrf_field(&user))
            button.danger #confirm-erase type="submit" { (l.t(Msg::YesErase)) }
            " " a href={ "/cases/" (case) } { (l.t(Msg::Cancel)) }
        }
    };
    Ok(page(Some(&user), l, l.t(Msg::WithdrawConsent), body))
}

/// Records the withdrawn consent and erases the case's content at once.
pub(super) async fn erase(
    State(state): State<AppState>,
    user: WebUser,
    Path(id): Path<String>,
    Form(form): Form<Fields>,
) -> Page {
    checked(&user, &form)?;
    let case = parse_case(&id)?;
    let (vault, now, who) = (state.vault().clone(), state.now(), user.staff());
    state
        .db()
        .call_write(move |sql| {
            access::require_change(sql, who, case)?;
            crate::office::retention::withdraw_consent(sql, &vault, case, Some(&who.id), now)
        })
        .await?;
    Ok(Redirect::to("/cases").into_response())
}

/// The intake page: open a case on one of the user's teams.
pub(super) async fn new_case_page(State(state): State<AppState>, user: WebUser) -> Page {
    user.require(Ability::ChangeTeamCases)?;
    let who = user.staff();
    let (names, my_teams) = state
        .db()
        .call_read(move |sql| {
            let mine = teams::teams_of(sql, &who.id)?;
            let all: Vec<(Uuid, String)> = teams::list_teams(sql)?
                .into_iter()
                .filter(|t| mine.contains(&t.id))
                .map(|t| (t.id, t.name))
                .collect();
            Ok::<_, WebError>((user_names(sql)?, all))
        })
        .await?;
    let l = user.lang;
    let body = html! {
        form.task #intake method="post" action="/cases" {
            (csrf_field(&user))
            label for="client_code" { (l.t(Msg::ClientCode)) }
            input #client_code name="client_code" required maxlength="500" autocomplete="off";
            label for="consent" { (l.t(Msg::ConsentAtIntake)) }
            (select::<ConsentStatus>(l, "consent", "consent", Some(ConsentStatus::Given), false))
            label for="team" { (l.t(Msg::Team)) }
            select #team name="team" {
                @for (tid, tname) in &my_teams { option value=(tid) { (for_page(tname)) } }
            }
            fieldset { legend { (l.t(Msg::AssignedWorkers)) }
                @for (wid, wname) in workers(&names) {
                    label.check { input type="checkbox" name="worker" value=(wid); " " (wname) }
                }
            }
            button #open-case type="submit" { (l.t(Msg::OpenCase)) }
        }
    };
    Ok(page(Some(&user), l, l.t(Msg::NewCase), body))
}

/// Opens the case of the intake form on the chosen team (one the user is on).
pub(super) async fn create_case(
    State(state): State<AppState>,
    user: WebUser,
    Form(form): Form<Fields>,
) -> Page {
    checked(&user, &form)?;
    let team: Uuid = one(&form, "team").parse().map_err(|_| bad("team"))?;
    let new = NewCase {
        client_code: one(&form, "client_code").to_owned(),
        consent: one(&form, "consent").parse().map_err(|_| bad("consent"))?,
        assigned_workers: all(&form, "worker")
            .map(|w| w.parse().map(UserId::from_uuid).map_err(|_| bad("worker")))
            .collect::<Result<_, _>>()?,
    };
    let (vault, now, who) = (state.vault().clone(), state.now(), user.staff());
    let (case, _) = state
        .db()
        .call_write(move |sql| {
            if !teams::teams_of(sql, &who.id)?.contains(&team) {
                return Err(WebError::Forbidden);
            }
            let created = cases::create_case_in_team(sql, &vault, team, &new, None, now)?;
            let (case, _) = *created.value();
            crate::office::audit::record_detail(
                sql,
                now,
                "case_opened_web",
                Some(&who.id),
                None,
                Some(&case.to_string()),
            )?;
            Ok(created)
        })
        .await?
        .keep(state.vault());
    Ok(Redirect::to(&format!("/cases/{case}")).into_response())
}
