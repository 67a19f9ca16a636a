//! Cases: the list, a case's page with its timeline (live), and planning a task.

use std::collections::HashMap;

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use fieldcase_core::ids::{CaseId, UserId};
use fieldcase_core::model::{Case, NewTask, OfficeKind};
use fieldcase_core::protocol::Role;
use maud::{Markup, html};
use uuid::Uuid;

use super::auth::{WebError, WebUser};
use super::headers::secure_headers;
use super::i18n::{self, Lang, Msg, belgrade, belgrade_unix};
use super::layout::{Names, Page, csrf_field, name_of, page, parse_case, short, user_names};
use crate::display::for_page;
use crate::http::state::AppState;
use crate::office::access::{self, Ability, Reach, ReadVia};
use crate::office::{cases, teams};

fn last_activity(case: &Case) -> Option<time::OffsetDateTime> {
    case.notes
        .iter()
        .map(|n| n.edited_at.unwrap_or(n.written_at))
        .chain(std::iter::once(case.created_at))
        .max()
}

pub(super) async fn case_list(State(state): State<AppState>, user: WebUser) -> Page {
    user.require(Ability::ReadTeamCases)?;
    let (vault, who, now) = (state.vault().clone(), user.staff(), state.now());
    let mut rows: Vec<Case> = state
        .db()
        .call_write(move |sql| access::read_team_cases(sql, &vault, who, "cases", now))
        .await?
        .into_iter()
        .map(|(case, _)| case)
        .collect();
    rows.sort_by_key(|c| std::cmp::Reverse(last_activity(c)));
    let l = user.lang;
    let body = html! {
        @if access::may(user.role, Ability::ChangeTeamCases) {
            p { a.button #new-case href="/cases/new" { (l.t(Msg::NewCase)) } }
        }
        @if rows.is_empty() { p { (l.t(Msg::Nothing)) } }
        @else {
            div.scroll { table {
                thead { tr { th { (l.t(Msg::Client)) } th { (l.t(Msg::Status)) } th { (l.t(Msg::Notes)) } th { (l.t(Msg::LastActivity)) } } }
                tbody { @for c in &rows { tr {
                    td { a href={ "/cases/" (c.id) } { (for_page(&c.client_code)) } }
                    td { (l.v(c.status)) }
                    td { (l.count("notes-count", c.notes.len())) }
                    td { (last_activity(c).map(belgrade).unwrap_or_default()) }
                } } }
            } }
        }
    };
    Ok(page(Some(&user), l, l.t(Msg::Cases), body))
}

/// What the case page shows besides the case: names, break-glass reads (for the team), teams.
struct CaseExtras {
    names: Names,
    break_glass: Vec<access::BreakGlassRead>,
    teams: Vec<(Uuid, String)>,
    team: Uuid,
    history: Vec<fieldcase_core::document::HistoryEntry>,
    attachments: Vec<crate::office::attachments::OfficeAttachment>,
}

/// The timeline (notes and tasks, newest first), also served alone for the live update script.
fn timeline(l: Lang, case: &Case, names: &Names, seq: i64) -> Markup {
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
        ol.timeline #timeline data-count=(case.notes.len()) data-seq=(seq) {
            @for (at, item) in &items {
                @match item {
                    Item::Note(n) => li.note data-note=(n.id) {
                        div.meta {
                            strong { (l.t(Msg::VisitNote)) } " · " time { (belgrade(*at)) }
                            " · " (l.t(Msg::By)) " " span.author { (name_of(names, &n.author.user)) }
                            " · " (l.t(Msg::Device)) " " code { (short(&n.author.device.to_string())) }
                            @let others: Vec<_> = n.edited_by.iter().filter(|e| **e != n.author).collect();
                            @if !others.is_empty() {
                                " · " span.edited-by { (l.t(Msg::EditedBy)) " "
                                    @for (i, e) in others.iter().enumerate() {
                                        @if i > 0 { ", " } (name_of(names, &e.user)) " (" code { (short(&e.device.to_string())) } ")"
                                    }
                                }
                            }
                        }
                        p.body { (for_page(&n.body)) }
                        @if !n.tags.is_empty() {
                            p.tags { @for t in &n.tags { span.tag { (l.v(*t)) } " " } }
                        }
                    },
                    Item::Task(t) => li.task data-task=(t.id) {
                        div.meta {
                            strong { (l.t(Msg::Task)) } " · " time { (belgrade(*at)) }
                            " · " (l.v(t.status))
                        }
                        p.body { (for_page(&t.purpose)) " — " (for_page(&t.office_name)) " (" (l.v(t.office_kind)) "), " (for_page(&t.office_address)) }
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
    user.require(Ability::ReadTeamCases)?;
    let id = parse_case(&id)?;
    let (vault, who, now) = (state.vault().clone(), user.staff(), state.now());
    // Opening a case is a read of case data: checked against the user's teams and audited in
    // the same transaction.
    let read = state
        .db()
        .call_write(move |sql| {
            let read = access::read_case(sql, &vault, who, id, ReadVia::Page, now)?;
            // The history is of the case just read (and audited) above.
            let extras = CaseExtras {
                names: user_names(sql)?,
                break_glass: match read.reach {
                    Reach::Team => access::break_glass_reads(sql, id)?,
                    Reach::BreakGlass { .. } => Vec::new(),
                },
                teams: teams::list_teams(sql)?
                    .into_iter()
                    .map(|t| (t.id, t.name))
                    .collect(),
                team: teams::team_of_case(sql, id)?,
                history: cases::case_history(sql, &vault, id)?,
                attachments: crate::office::attachments::list(sql, &vault, id)?.keep(&vault),
            };
            Ok::<_, crate::error::ServerError>((read, extras))
        })
        .await;
    let (read, extras) = match read {
        Ok(found) => found,
        Err(crate::error::ServerError::OutsideTeam) => return break_glass_offer(&user, id),
        Err(e) => return Err(e.into()),
    };
    let (case, conflicts, names) = (read.case, read.conflicts, extras.names);
    let sensitive_conflicts = conflicts.iter().filter(|c| c.is_sensitive()).count();
    let conflicted_goals: Vec<_> = conflicts
        .iter()
        .filter(|c| c.is_sensitive())
        .filter_map(|c| c.goal)
        .collect();
    let office_device = state.vault().office.device;
    let other_conflicts: Vec<_> = conflicts.iter().filter(|c| !c.is_sensitive()).collect();
    let l = user.lang;
    let workers: Vec<(Uuid, String)> = names
        .iter()
        .filter(|(_, (_, role))| *role == Role::FieldWorker)
        .map(|(id, (n, _))| (*id, n.clone()))
        .collect();
    let today = time::OffsetDateTime::now_utc();
    let body = html! {
        @if let Reach::BreakGlass { until } = read.reach {
            p.error role="alert" #break-glass-open { (l.t(Msg::BreakGlassOpenUntil)) " " (belgrade_unix(Some(until))) }
        }
        p.case-meta { (l.t(Msg::Client)) ": " strong { (for_page(&case.client_code)) } " · " (l.t(Msg::Status)) ": " span #case-status { (l.v(case.status)) }
            " · " (l.t(Msg::Assignees)) ": "
            @for (i, w) in case.assigned_workers.iter().enumerate() { @if i > 0 { ", " } (name_of(&names, w)) }
        }
        p.case-meta #sensitive {
            (l.t(Msg::Consent)) ": " (l.v(case.consent))
            " · " (l.t(Msg::RiskLevel)) ": " (l.v(case.risk_level))
            " · " (l.t(Msg::LegalStatus)) ": " (l.v(case.legal_status))
        }
        @if sensitive_conflicts > 0 {
            p.error role="status" #conflicts-waiting { a href="/conflicts" { (l.t(Msg::ConflictsWaiting)) " (" (l.count("conflicts-count", sensitive_conflicts)) ")" } }
        }
        @if !other_conflicts.is_empty() {
            ul.conflicts { @for c in &other_conflicts { li {
                (l.value("conflict-field", &c.field)) ": " @for (i, v) in c.values.iter().enumerate() { @if i > 0 { " / " } (for_page(&v.value)) }
                " (" (l.t(Msg::Shown)) ": " (for_page(&c.winner.value)) ")"
            } } }
        }
        @if !extras.break_glass.is_empty() {
            section #break-glass-reads aria-labelledby="break-glass-h" {
                h2 #break-glass-h { (l.t(Msg::BreakGlassReads)) }
                ul { @for b in &extras.break_glass { li {
                    strong { (for_page(&b.name)) } " · " (belgrade_unix(Some(b.opened_at))) " – " (belgrade_unix(Some(b.until)))
                    " · " (l.t(Msg::Reason)) ": " (for_page(&b.reason))
                } } }
            }
        }
        @if read.reach == Reach::Team {
            form.inline method="post" action={ "/cases/" (case.id) "/team" } {
                (csrf_field(&user))
                label for="team" { (l.t(Msg::Team)) }
                select #team name="team" {
                    @for (tid, tname) in &extras.teams { option value=(tid) selected[*tid == extras.team] { (for_page(tname)) } }
                }
                button type="submit" { (l.t(Msg::MoveCase)) }
            }
        }
        @if read.reach == Reach::Team { section aria-labelledby="new-task" {
            details {
                summary #new-task { (l.t(Msg::NewTask)) }
                form.task method="post" action={ "/cases/" (case.id) "/tasks" } {
                    (csrf_field(&user))
                    label for="purpose" { (l.t(Msg::Purpose)) }
                    input #purpose name="purpose" required maxlength="500";
                    label for="office_kind" { (l.t(Msg::OfficeKind)) }
                    select #office_kind name="office_kind" {
                        @for k in OfficeKind::ALL { option value=(k.as_str()) { (l.v(*k)) } }
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
        } }
        @if read.reach == Reach::Team { (super::plan_pages::lifecycle_section(l, &user, &case, &names)) }
        (super::plan_pages::plan_section(l, &user, &case, &names, &conflicted_goals, read.reach == Reach::Team))
        (super::plan_pages::profile_section(l, &user, &case, read.reach == Reach::Team))
        (super::plan_pages::history_section(l, &extras.history, &names, office_device, &case))
        section aria-labelledby="timeline-h" {
            h2 #timeline-h { (l.t(Msg::Timeline)) }
            p.hint { (l.t(Msg::LiveUpdates)) }
            div #live data-src={ "/cases/" (case.id) "/timeline" } data-events={ "/cases/" (case.id) "/events" } aria-live="polite" {
                (timeline(l, &case, &names, read.seq))
            }
        }
        (super::attachment_pages::section(l, &user, case.id, &extras.attachments, &names,
            read.reach == Reach::Team && user.role != Role::FieldWorker))
        @if read.reach == Reach::Team && access::may(user.role, Ability::ChangeTeamCases) {
            (super::case_file_pages::picker_section(l, &user, &case, &names))
        }
    };
    Ok(page(Some(&user), l, &for_page(&case.client_code), body))
}

/// The query of a timeline fetch: the change sequence number the page shows.
#[derive(serde::Deserialize)]
pub(super) struct Since {
    since: Option<i64>,
}

/// The timeline alone, for the open page's script. When the case has not changed since the
/// `since` the page shows, the answer is 204 with no content: nothing is read, so nothing is
/// audited; otherwise the read is checked and audited like the page.
pub(super) async fn case_timeline(
    State(state): State<AppState>,
    user: WebUser,
    Path(id): Path<String>,
    Query(since): Query<Since>,
) -> Page {
    user.require(Ability::ReadTeamCases)?;
    let id = parse_case(&id)?;
    let (vault, who, now) = (state.vault().clone(), user.staff(), state.now());
    let read = state
        .db()
        .call_write(move |sql| {
            if since.since.is_some() && cases::case_seq(sql, id)? == since.since {
                access::reach(sql, who, id, now)?.ok_or(crate::error::ServerError::OutsideTeam)?;
                return Ok(None);
            }
            let read = access::read_case(sql, &vault, who, id, ReadVia::Timeline, now)?;
            Ok::<_, crate::error::ServerError>(Some((read, user_names(sql)?)))
        })
        .await?;
    Ok(match read {
        None => (secure_headers(), StatusCode::NO_CONTENT).into_response(),
        Some((read, names)) => (
            secure_headers(),
            timeline(user.lang, &read.case, &names, read.seq),
        )
            .into_response(),
    })
}

/// The page a case manager sees for a case outside her teams: why, and the break-glass form.
fn break_glass_offer(user: &WebUser, case: CaseId) -> Page {
    user.require(Ability::BreakGlass)?;
    let l = user.lang;
    let body = html! {
        p role="alert" { (l.t(Msg::OutsideTeam)) }
        p { (l.t(Msg::BreakGlassIntro)) }
        form.task method="post" action={ "/cases/" (case) "/break-glass" } {
            (csrf_field(user))
            label for="reason" { (l.t(Msg::Reason)) }
            textarea #reason name="reason" rows="3" required
                minlength=(access::MIN_REASON_CHARS) maxlength=(access::MAX_REASON_CHARS) {}
            button.danger #open-break-glass type="submit" { (l.t(Msg::OpenBreakGlass)) }
        }
    };
    let mut response = page(Some(user), l, l.t(Msg::OutsideTeam), body);
    *response.status_mut() = StatusCode::FORBIDDEN;
    Ok(response)
}

/// Opens a break-glass read with the reason given, then shows the case.
pub(super) async fn open_break_glass(
    State(state): State<AppState>,
    user: WebUser,
    Path(id): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Page {
    user.require(Ability::BreakGlass)?;
    user.check_csrf(form.get("csrf").map(String::as_str))?;
    let case = parse_case(&id)?;
    let reason = form.get("reason").cloned().unwrap_or_default();
    let (who, now) = (user.staff(), state.now());
    state
        .db()
        .call_write(move |sql| access::break_glass(sql, who, case, &reason, now))
        .await?;
    Ok(Redirect::to(&format!("/cases/{case}")).into_response())
}

/// Moves a case to another team (a change of the case: only its team's people).
pub(super) async fn move_case(
    State(state): State<AppState>,
    user: WebUser,
    Path(id): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Page {
    user.require(Ability::ChangeTeamCases)?;
    user.check_csrf(form.get("csrf").map(String::as_str))?;
    let case = parse_case(&id)?;
    let team = form
        .get("team")
        .and_then(|t| Uuid::try_parse(t).ok())
        .ok_or_else(|| WebError::BadInput("team".to_owned()))?;
    let (who, now, vault) = (user.staff(), state.now(), state.vault().clone());
    state
        .db()
        .call_write(move |sql| {
            access::require_change(sql, who, case)?;
            teams::move_case(sql, &vault, case, team, Some(&who.id), now)
        })
        .await?;
    Ok(Redirect::to(&format!("/cases/{case}")).into_response())
}

pub(super) async fn add_task(
    State(state): State<AppState>,
    user: WebUser,
    Path(id): Path<String>,
    Form(form): Form<Vec<(String, String)>>,
) -> Page {
    user.require(Ability::ChangeTeamCases)?;
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
    let (vault, now, who) = (state.vault().clone(), state.now(), user.staff());
    let by = who.id;
    state
        .db()
        .call_write(move |sql| {
            access::require_change(sql, who, case)?;
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
