//! Cases: the list, a case's page with its timeline (live), and planning a task.

use std::collections::HashMap;

use axum::Form;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect};
use fieldcase_core::ids::{CaseId, UserId};
use fieldcase_core::model::{Case, NewTask, OfficeKind};
use fieldcase_core::protocol::Role;
use maud::{Markup, html};
use uuid::Uuid;

use super::auth::{WebError, WebUser};
use super::headers::secure_headers;
use super::i18n::{self, Lang, Msg, belgrade};
use super::layout::{Names, Page, csrf_field, name_of, page, parse_case, short, user_names};
use crate::display::for_page;
use crate::http::state::AppState;
use crate::office::cases;

fn last_activity(case: &Case) -> Option<time::OffsetDateTime> {
    case.notes
        .iter()
        .map(|n| n.edited_at.unwrap_or(n.written_at))
        .chain(std::iter::once(case.created_at))
        .max()
}

pub(super) async fn case_list(State(state): State<AppState>, user: WebUser) -> Page {
    user.require_office()?;
    let vault = state.vault().clone();
    let mut rows = state
        .db()
        .call_read(move |sql| {
            let mut rows = Vec::new();
            for id in cases::list_case_ids(sql)? {
                let (case, _) = cases::read_case(sql, &vault, id)?;
                rows.push(case);
            }
            Ok::<_, WebError>(rows)
        })
        .await?;
    rows.sort_by_key(|c| std::cmp::Reverse(last_activity(c)));
    let l = user.lang;
    let body = html! {
        @if rows.is_empty() { p { (l.t(Msg::Nothing)) } }
        @else {
            div.scroll { table {
                thead { tr { th { (l.t(Msg::Client)) } th { (l.t(Msg::Status)) } th { (l.t(Msg::Notes)) } th { (l.t(Msg::LastActivity)) } } }
                tbody { @for c in &rows { tr {
                    td { a href={ "/cases/" (c.id) } { (for_page(&c.client_code)) } }
                    td { (c.status.as_str()) }
                    td { (c.notes.len()) }
                    td { (last_activity(c).map(belgrade).unwrap_or_default()) }
                } } }
            } }
        }
    };
    Ok(page(Some(&user), l, l.t(Msg::Cases), body))
}

async fn load_case(
    state: &AppState,
    id: CaseId,
) -> Result<(Case, HashMap<Uuid, (String, Role)>), WebError> {
    let (case, names, _) = load_case_with_conflicts(state, id).await?;
    Ok((case, names))
}

async fn load_case_with_conflicts(
    state: &AppState,
    id: CaseId,
) -> Result<(Case, Names, Vec<fieldcase_core::document::Conflict>), WebError> {
    let vault = state.vault().clone();
    Ok(state
        .db()
        .call_read(move |sql| {
            let (case, conflicts) = cases::read_case(sql, &vault, id).map_err(|e| match e {
                crate::error::ServerError::UnknownCase => crate::http::error::AppError::new(
                    axum::http::StatusCode::NOT_FOUND,
                    "not_found",
                    "no such case",
                ),
                other => other.into(),
            })?;
            Ok::<_, crate::http::error::AppError>((case, user_names(sql)?, conflicts))
        })
        .await?)
}

/// The timeline (notes and tasks, newest first), also served alone for the live update script.
fn timeline(l: Lang, case: &Case, names: &HashMap<Uuid, (String, Role)>) -> Markup {
    enum Item<'a> {
        Note(&'a fieldcase_core::model::VisitNote),
        Task(&'a fieldcase_core::model::Task),
    }
    let mut items: Vec<(time::OffsetDateTime, Item<'_>)> = case
        .notes
        .iter()
        .map(|n| (n.written_at, Item::Note(n)))
        .chain(case.tasks.iter().map(|t| (t.scheduled_at, Item::Task(t))))
        .collect();
    items.sort_by_key(|(t, _)| std::cmp::Reverse(*t));
    html! {
        ol.timeline #timeline data-count=(case.notes.len()) {
            @for (at, item) in &items {
                @match item {
                    Item::Note(n) => li.note data-note=(n.id) {
                        div.meta {
                            strong { (l.t(Msg::VisitNote)) } " · " time { (belgrade(*at)) }
                            " · " (l.t(Msg::By)) " " span.author { (name_of(names, &n.author.user)) }
                            " · " (l.t(Msg::Device)) " " code { (short(&n.author.device.to_string())) }
                        }
                        p.body { (for_page(&n.body)) }
                        @if !n.tags.is_empty() {
                            p.tags { @for t in &n.tags { span.tag { (t.as_str()) } " " } }
                        }
                    },
                    Item::Task(t) => li.task data-task=(t.id) {
                        div.meta {
                            strong { (l.t(Msg::Task)) } " · " time { (belgrade(*at)) }
                            " · " (t.status.as_str())
                        }
                        p.body { (for_page(&t.purpose)) " — " (for_page(&t.office_name)) " (" (t.office_kind.as_str()) "), " (for_page(&t.office_address)) }
                        @if !t.checklist.is_empty() {
                            ul.checklist { @for c in &t.checklist {
                                li { @if c.done { "☑ " } @else { "☐ " } (for_page(&c.label)) }
                            } }
                        }
                        p.assignees { (l.t(Msg::Assignees)) ": "
                            @for (i, a) in t.assignees.iter().enumerate() {
                                @if i > 0 { ", " } (name_of(names, a))
                            }
                        }
                    },
                }
            }
        }
    }
}

pub(super) async fn case_page(
    State(state): State<AppState>,
    user: WebUser,
    Path(id): Path<String>,
) -> Page {
    user.require_office()?;
    let id = parse_case(&id)?;
    let (case, names, conflicts) = load_case_with_conflicts(&state, id).await?;
    let sensitive_conflicts = conflicts.iter().filter(|c| c.is_sensitive()).count();
    let other_conflicts: Vec<_> = conflicts.iter().filter(|c| !c.is_sensitive()).collect();
    // Opening a case is a read of case data through the office: audited (the timeline fragment
    // the open page polls is not, or every few seconds would be a new entry).
    let (by, now) = (user.id, state.now());
    state
        .db()
        .call_write(move |sql| {
            crate::office::audit::record_detail(
                sql,
                now,
                "case_read",
                Some(&by),
                None,
                Some(&id.to_string()),
            )?;
            Ok::<_, WebError>(())
        })
        .await?;
    let l = user.lang;
    let workers: Vec<(Uuid, String)> = names
        .iter()
        .filter(|(_, (_, role))| *role == Role::FieldWorker)
        .map(|(id, (n, _))| (*id, n.clone()))
        .collect();
    let today = time::OffsetDateTime::now_utc();
    let body = html! {
        p.case-meta { (l.t(Msg::Client)) ": " strong { (for_page(&case.client_code)) } " · " (l.t(Msg::Status)) ": " (case.status.as_str())
            " · " (l.t(Msg::Assignees)) ": "
            @for (i, w) in case.assigned_workers.iter().enumerate() { @if i > 0 { ", " } (name_of(&names, w)) }
        }
        p.case-meta #sensitive {
            (l.t(Msg::Consent)) ": " (case.consent.as_str())
            " · " (l.t(Msg::RiskLevel)) ": " (case.risk_level.as_str())
            " · " (l.t(Msg::LegalStatus)) ": " (case.legal_status.as_str())
        }
        @if sensitive_conflicts > 0 {
            p.error role="status" { a href="/conflicts" { (l.t(Msg::ConflictsWaiting)) " (" (sensitive_conflicts) ")" } }
        }
        @if !other_conflicts.is_empty() {
            ul.conflicts { @for c in &other_conflicts { li {
                (c.field) ": " @for (i, v) in c.values.iter().enumerate() { @if i > 0 { " / " } (for_page(&v.value)) }
                " (" (l.t(Msg::Shown)) ": " (c.winner.value) ")"
            } } }
        }
        section aria-labelledby="new-task" {
            details {
                summary #new-task { (l.t(Msg::NewTask)) }
                form.task method="post" action={ "/cases/" (case.id) "/tasks" } {
                    (csrf_field(&user))
                    label for="purpose" { (l.t(Msg::Purpose)) }
                    input #purpose name="purpose" required maxlength="500";
                    label for="office_kind" { (l.t(Msg::OfficeKind)) }
                    select #office_kind name="office_kind" {
                        @for k in OfficeKind::ALL { option value=(k.as_str()) { (k.as_str()) } }
                    }
                    label for="office_name" { (l.t(Msg::OfficeName)) }
                    input #office_name name="office_name" required maxlength="500";
                    label for="office_address" { (l.t(Msg::OfficeAddress)) }
                    input #office_address name="office_address" maxlength="500";
                    label for="date" { (l.t(Msg::Date)) }
                    input #date type="date" name="date" required value=(belgrade(today).get(..10).unwrap_or(""));
                    label for="time" { (l.t(Msg::TimeOfDay)) }
                    input #time type="time" name="time" required value="10:00";
                    label for="checklist" { (l.t(Msg::Checklist)) }
                    textarea #checklist name="checklist" rows="4" {}
                    fieldset { legend { (l.t(Msg::Assignees)) }
                        @for (wid, wname) in &workers {
                            label.check { input type="checkbox" name="assignee" value=(wid)
                                checked[case.assigned_workers.iter().any(|a| a.as_uuid() == wid)]; " " (wname) }
                        }
                    }
                    button #create-task type="submit" { (l.t(Msg::CreateTask)) }
                }
            }
        }
        section aria-labelledby="timeline-h" {
            h2 #timeline-h { (l.t(Msg::Timeline)) }
            p.hint { (l.t(Msg::LiveUpdates)) }
            div #live data-src={ "/cases/" (case.id) "/timeline" } data-events={ "/cases/" (case.id) "/events" } aria-live="polite" {
                (timeline(l, &case, &names))
            }
        }
    };
    Ok(page(Some(&user), l, &for_page(&case.client_code), body))
}

pub(super) async fn case_timeline(
    State(state): State<AppState>,
    user: WebUser,
    Path(id): Path<String>,
) -> Page {
    user.require_office()?;
    let id = parse_case(&id)?;
    let (case, names) = load_case(&state, id).await?;
    Ok((secure_headers(), timeline(user.lang, &case, &names)).into_response())
}

pub(super) async fn add_task(
    State(state): State<AppState>,
    user: WebUser,
    Path(id): Path<String>,
    Form(form): Form<Vec<(String, String)>>,
) -> Page {
    user.require_office()?;
    let get = |k: &str| {
        form.iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_default()
    };
    user.check_csrf(Some(&get("csrf")))?;
    let case = parse_case(&id)?;
    let bad = |what: &str| WebError::BadInput(what.to_owned());
    let date = time::Date::parse(
        &get("date"),
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .map_err(|_| bad("date"))?;
    let tod = time::Time::parse(
        &get("time"),
        time::macros::format_description!("[hour]:[minute]"),
    )
    .map_err(|_| bad("time"))?;
    let assignees: Vec<UserId> = form
        .iter()
        .filter(|(n, _)| n == "assignee")
        .map(|(_, v)| {
            v.parse::<Uuid>()
                .map(UserId::from_uuid)
                .map_err(|_| bad("assignee"))
        })
        .collect::<Result<_, _>>()?;
    let task = NewTask {
        purpose: get("purpose"),
        office_kind: get("office_kind").parse().map_err(|_| bad("office kind"))?,
        office_name: get("office_name"),
        office_address: get("office_address"),
        scheduled_at: i18n::from_belgrade(date, tod),
        time_zone: "Europe/Belgrade".to_owned(),
        assignees,
        checklist: get("checklist")
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect(),
    };
    let (vault, now, by) = (state.vault().clone(), state.now(), user.id);
    state
        .db()
        .call_write(move |sql| {
            let added = cases::add_task(sql, &vault, case, &task, now)?;
            crate::office::audit::record_detail(
                sql,
                now,
                "task_added_web",
                Some(&by),
                None,
                Some(&added.value().to_string()),
            )?;
            Ok::<_, WebError>(added)
        })
        .await?
        .keep(state.vault());
    Ok(Redirect::to(&format!("/cases/{case}")).into_response())
}
