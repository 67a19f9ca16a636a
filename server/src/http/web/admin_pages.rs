//! Admin pages (users, enrollment codes, deactivation, the audit log with its chain check) and
//! the team's tasks by day. Every action goes through the office's operations
//! ([`crate::office::users`], [`crate::office::enrollment`], [`crate::office::sign_in`],
//! [`crate::office::audit`]), which audit what they change.

use std::collections::{BTreeMap, HashMap};

use axum::Form;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect};
use fieldcase_core::protocol::Role;
use maud::html;
use uuid::Uuid;

use super::auth::{WebError, WebUser};
use super::i18n::{Msg, belgrade, belgrade_unix};
use super::layout::{Page, csrf_field, name_of, page, short, user_names};
use crate::display::for_page;
use crate::http::state::AppState;
use crate::office::access::{self, Ability};

/// Minutes an enrollment code issued from the pages stays valid.
const CODE_TTL_SECS: i64 = 15 * 60;

fn csrf(form: &HashMap<String, String>) -> Option<&str> {
    form.get("csrf").map(String::as_str)
}

fn parse_role(text: &str) -> Result<Role, WebError> {
    Role::parse(text).ok_or_else(|| WebError::BadInput("role".to_owned()))
}

/// The name of the user with id `id`.
async fn user_name(state: &AppState, id: &str) -> Result<String, WebError> {
    let id = Uuid::try_parse(id).map_err(|_| WebError::NotFound)?;
    let names = state
        .db()
        .call_read(|sql| Ok::<_, WebError>(user_names(sql)?))
        .await?;
    names
        .get(&id)
        .map(|(n, _)| n.clone())
        .ok_or(WebError::NotFound)
}

pub(super) async fn users(State(state): State<AppState>, user: WebUser) -> Page {
    user.require(Ability::ManageUsers)?;
    let rows = state
        .db()
        .call_read(|sql| Ok::<_, WebError>(crate::office::users::list_users(sql)?))
        .await?;
    let l = user.lang;
    let body = html! {
        div.scroll { table #users {
            thead { tr { th { (l.t(Msg::User)) } th { (l.t(Msg::RoleLabel)) } th { (l.t(Msg::Active)) } th { (l.t(Msg::Devices)) } th {} } }
            tbody { @for u in &rows { tr data-user=(u.name) {
                td { (u.name) }
                td {
                    (l.v(u.role))
                    @if u.active && u.id != user.id {
                        form.role method="post" action={ "/users/" (u.id) "/role" } {
                            (csrf_field(&user))
                            select name="role" aria-label=(l.t(Msg::RoleLabel)) {
                                @for r in [Role::FieldWorker, Role::CaseManager, Role::Admin] {
                                    option value=(r.as_str()) selected[r == u.role] { (l.v(r)) }
                                }
                            }
                            " " button type="submit" { (l.t(Msg::ChangeRole)) }
                        }
                    }
                }
                td { @if u.active { (l.t(Msg::Yes)) } @else { (l.t(Msg::No)) } }
                td { (u.active_devices) }
                td { @if u.active {
                    form method="post" action={ "/users/" (u.id) "/code" } {
                        (csrf_field(&user)) button type="submit" { (l.t(Msg::IssueCode)) }
                    }
                    details {
                        summary { (l.t(Msg::SetPassword)) }
                        form method="post" action={ "/users/" (u.id) "/password" } {
                            (csrf_field(&user))
                            label { (l.t(Msg::Password)) " "
                                input type="password" name="password" autocomplete="new-password" minlength="10" required; }
                            button type="submit" { (l.t(Msg::Save)) }
                        }
                    }
                    @if u.id != user.id {
                        details {
                            summary { (l.t(Msg::Deactivate)) }
                            form method="post" action={ "/users/" (u.id) "/deactivate" } {
                                (csrf_field(&user))
                                label.check { input type="checkbox" name="confirm" value="yes" required; " " (l.t(Msg::ConfirmDeactivate)) }
                                button.danger type="submit" { (l.t(Msg::Deactivate)) }
                            }
                        }
                    }
                } }
            } } }
        } }
        section aria-labelledby="add-user" {
            h2 #add-user { (l.t(Msg::AddUser)) }
            form.task method="post" action="/users" {
                (csrf_field(&user))
                label for="new-name" { (l.t(Msg::UserName)) }
                input #new-name name="name" required maxlength="200";
                label for="new-role" { (l.t(Msg::RoleLabel)) }
                select #new-role name="role" {
                    @for r in [Role::FieldWorker, Role::CaseManager, Role::Admin] { option value=(r.as_str()) { (l.v(r)) } }
                }
                button type="submit" { (l.t(Msg::AddUser)) }
            }
        }
    };
    Ok(page(Some(&user), l, l.t(Msg::Users), body))
}

pub(super) async fn add_user(
    State(state): State<AppState>,
    user: WebUser,
    Form(form): Form<HashMap<String, String>>,
) -> Page {
    user.require(Ability::ManageUsers)?;
    user.check_csrf(csrf(&form))?;
    let name = form.get("name").cloned().unwrap_or_default();
    let role = parse_role(form.get("role").map(String::as_str).unwrap_or(""))?;
    let now = state.now();
    state
        .db()
        .call_write(move |sql| {
            crate::office::users::add_user(sql, &name, role, now).map_err(WebError::from)
        })
        .await?;
    Ok(Redirect::to("/users").into_response())
}

pub(super) async fn issue_code(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    user: WebUser,
    Path(id): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Page {
    user.require(Ability::ManageUsers)?;
    user.check_csrf(csrf(&form))?;
    let name = user_name(&state, &id).await?;
    let now = state.now();
    let issued = state
        .db()
        .call_write(move |sql| {
            crate::office::enrollment::issue_enrollment_code(sql, &name, CODE_TTL_SECS, now)
                .map_err(WebError::from)
        })
        .await?;
    let l = user.lang;
    // The address phones use: the configured one, else the one this browser reached.
    let url = state.public_url().map(str::to_owned).or_else(|| {
        headers
            .get(axum::http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(|h| format!("https://{h}"))
    });
    let invite = url
        .zip(state.presented_pin())
        .and_then(|(url, pin)| crate::office::enrollment::invite(&url, pin, &issued.code));
    let qr = invite.as_deref().map(qr_svg).transpose()?;
    let body = html! {
        p { (l.t(Msg::CodeHint)) }
        p.code { output #enrollment-code { (issued.code) } }
        @if let (Some(invite), Some(qr)) = (&invite, &qr) {
            p { (l.t(Msg::QrHint)) }
            figure #enrollment-qr { (maud::PreEscaped(qr)) }
            p.code { output #enrollment-invite { (invite) } }
        } @else {
            p { (l.t(Msg::InviteUnavailable)) }
        }
        p { (belgrade_unix(Some(issued.expires_at))) }
        p { a href="/users" { (l.t(Msg::Users)) } }
    };
    Ok(page(Some(&user), l, l.t(Msg::IssueCode), body))
}

/// The enrollment invite as a QR code, an inline SVG (drawn here: no image is fetched from
/// anywhere). It encodes the invite exactly as shown, which the phone's scanner reads.
fn qr_svg(invite: &str) -> Result<String, WebError> {
    use qrcode::render::svg;
    let qr = qrcode::QrCode::with_error_correction_level(invite.as_bytes(), qrcode::EcLevel::M)
        .map_err(|_| WebError::BadInput("code too long for a QR code".to_owned()))?;
    let svg = qr
        .render::<svg::Color<'_>>()
        .min_dimensions(220, 220)
        .dark_color(svg::Color("#000000"))
        .light_color(svg::Color("#ffffff"))
        .build();
    // Inline in HTML: drop the XML declaration, keep the <svg> element.
    Ok(match svg.find("<svg") {
        Some(i) => svg[i..].to_owned(),
        None => svg,
    })
}

pub(super) async fn change_role(
    State(state): State<AppState>,
    user: WebUser,
    Path(id): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Page {
    user.require(Ability::ManageUsers)?;
    user.check_csrf(csrf(&form))?;
    let role = parse_role(form.get("role").map(String::as_str).unwrap_or(""))?;
    let name = user_name(&state, &id).await?;
    let now = state.now();
    state
        .db()
        .call_write(move |sql| {
            crate::office::users::change_role(sql, &name, role, now).map_err(WebError::from)
        })
        .await?;
    Ok(Redirect::to("/users").into_response())
}

pub(super) async fn set_password(
    State(state): State<AppState>,
    user: WebUser,
    Path(id): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Page {
    user.require(Ability::ManageUsers)?;
    user.check_csrf(csrf(&form))?;
    let name = user_name(&state, &id).await?;
    let password = zeroize::Zeroizing::new(form.get("password").cloned().unwrap_or_default());
    let now = state.now();
    state
        .db()
        .call_write(move |sql| {
            crate::office::sign_in::set_password(sql, &name, &password, now).map_err(WebError::from)
        })
        .await?;
    Ok(Redirect::to("/users").into_response())
}

pub(super) async fn deactivate(
    State(state): State<AppState>,
    user: WebUser,
    Path(id): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Page {
    user.require(Ability::ManageUsers)?;
    user.check_csrf(csrf(&form))?;
    if form.get("confirm").map(String::as_str) != Some("yes") {
        return Err(WebError::BadInput("not confirmed".to_owned()));
    }
    let name = user_name(&state, &id).await?;
    let now = state.now();
    state
        .db()
        .call_write(move |sql| {
            crate::office::users::deactivate_user(sql, &name, now).map_err(WebError::from)
        })
        .await?;
    Ok(Redirect::to("/users").into_response())
}

pub(super) async fn audit(State(state): State<AppState>, user: WebUser) -> Page {
    user.require(Ability::ReadAuditLog)?;
    let (report, entries, last_backup) = state
        .db()
        .call_read(|sql| {
            Ok::<_, WebError>((
                crate::office::audit::verify_chain(sql)?,
                crate::office::audit::list(sql, 500)?,
                crate::office::backup::last(sql)?,
            ))
        })
        .await?;
    let l = user.lang;
    let body = html! {
        p #last-backup {
            (l.t(Msg::LastBackup)) ": "
            @match &last_backup {
                None => { (l.t(Msg::NoBackupYet)) }
                Some(b) => {
                    (belgrade_unix(Some(b.at))) " · "
                    @match &b.outcome {
                        Ok(file) => { (l.t(Msg::BackupOk)) " (" code { (for_page(file)) } ")" }
                        Err(why) => { strong.error { (l.t(Msg::BackupFailed)) } ": " (for_page(why)) }
                    }
                }
            }
        }
        @match &report {
            crate::office::audit::ChainReport::Intact { entries, legacy, unkeyed, head } => {
                p #chain.ok { (l.t(Msg::ChainIntact)) " (" (entries) ")" }
                @if let Some(head) = head {
                    p { (l.t(Msg::ChainHead)) ": " code #head { (hex::encode(head)) } }
                }
                @if *legacy > 0 || *unkeyed > 0 {
                    p { (l.t(Msg::ChainOlder)) ": " (legacy + unkeyed) }
                }
            },
            crate::office::audit::ChainReport::Broken { seq, problem } => p #chain.error role="alert" { (l.t(Msg::ChainBroken)) " " (seq) ": " (problem.to_string()) },
        }
        div.scroll { table {
            thead { tr { th { "#" } th { (l.t(Msg::When)) } th { (l.t(Msg::Action)) } th { (l.t(Msg::User)) } th { (l.t(Msg::Device)) } th { (l.t(Msg::Detail)) } } }
            tbody { @for e in &entries { tr {
                td { (e.seq) }
                td { (belgrade_unix(Some(e.at))) }
                td { @if let Some(label) = l.label("audit-action", &e.action) { (label) " " } code.action { (e.action) } }
                td { code { (e.user_id.as_deref().map(short).unwrap_or_default()) } }
                td { code { (e.device_id.as_deref().map(short).unwrap_or_default()) } }
                td { (e.detail.as_deref().unwrap_or("")) }
            } } }
        } }
    };
    Ok(page(Some(&user), l, l.t(Msg::Audit), body))
}

pub(super) async fn tasks_by_day(State(state): State<AppState>, user: WebUser) -> Page {
    user.require(Ability::ReadTeamCases)?;
    let (vault, who, now) = (state.vault().clone(), user.staff(), state.now());
    let (cases, names) = state
        .db()
        .call_write(move |sql| {
            let cases: Vec<_> = access::read_team_cases(sql, &vault, who, "tasks", now)?
                .into_iter()
                .map(|(case, _)| case)
                .collect();
            Ok::<_, WebError>((cases, user_names(sql)?))
        })
        .await?;
    let mut days: BTreeMap<
        String,
        Vec<(
            String,
            &fieldcase_core::model::Case,
            &fieldcase_core::model::Task,
        )>,
    > = BTreeMap::new();
    for case in &cases {
        for task in &case.tasks {
            let when = belgrade(task.scheduled_at);
            let (day, hour) = when.split_at(10);
            days.entry(day.to_owned())
                .or_default()
                .push((hour.trim().to_owned(), case, task));
        }
    }
    for tasks in days.values_mut() {
        tasks.sort_by(|a, b| a.0.cmp(&b.0));
    }
    let l = user.lang;
    let body = html! {
        @if days.is_empty() { p { (l.t(Msg::Nothing)) } }
        @for (day, tasks) in &days {
            section {
                h2 { (day) }
                ul { @for (hour, case, task) in tasks { li {
                    strong { (hour) } " · " a href={ "/cases/" (case.id) } { (for_page(&case.client_code)) } " · " (for_page(&task.purpose))
                    " — " (for_page(&task.office_name)) " · " (l.v(task.status)) " · "
                    @for (i, a) in task.assignees.iter().enumerate() { @if i > 0 { ", " } (name_of(&names, a)) }
                } } }
            }
        }
    };
    Ok(page(Some(&user), l, l.t(Msg::TasksByDay), body))
}
