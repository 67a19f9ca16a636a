//! Devices (with revocation, for admins) and the quarantine of revoked devices' uploads (listed
//! for admins; read and decided by the case's team).

use std::collections::HashMap;

use axum::Form;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect};
use maud::html;
use uuid::Uuid;

use super::auth::{WebError, WebUser};
use super::i18n::{Msg, belgrade, belgrade_unix};
use super::layout::{Page, csrf_field, name_of, page, short, user_names};
use crate::display::for_page;
use crate::http::state::AppState;
use crate::office::access::{self, Ability, ReadVia};
use crate::office::devices::{self, DeviceStatus};
use crate::office::quarantine;

pub(super) async fn devices(State(state): State<AppState>, user: WebUser) -> Page {
    user.require(Ability::ManageDevices)?;
    let rows = state
        .db()
        .call_read(|sql| Ok::<_, WebError>(devices::list_devices(sql)?))
        .await?;
    let l = user.lang;
    let body = html! {
        @if rows.is_empty() { p { (l.t(Msg::Nothing)) } }
        div.scroll { table #devices {
            thead { tr {
                th { (l.t(Msg::User)) } th { (l.t(Msg::Device)) } th { (l.t(Msg::State)) } th { (l.t(Msg::KeyFingerprint)) }
                th { (l.t(Msg::LastSync)) } th { (l.t(Msg::LeaseExpiry)) } th { (l.t(Msg::Receipts)) } th {}
            } }
            tbody { @for d in &rows { tr data-device=(d.device_id) {
                td { (d.user_name) " (" (l.v(d.role)) ")" }
                td { code title=(d.device_id) { (short(&d.device_id.to_string())) } }
                td.state {
                    @if d.status == DeviceStatus::Active && d.confirmed_at.is_none() {
                        (l.t(Msg::AwaitingConfirmation))
                        form.confirm method="post" action={ "/devices/" (d.device_id) "/confirm" } {
                            (csrf_field(&user))
                            label { (l.t(Msg::FingerprintOnPhone)) " "
                                input name="fingerprint" required maxlength="40" autocomplete="off"; }
                            button type="submit" { (l.t(Msg::Confirm)) }
                        }
                    } @else { (l.v(d.status)) }
                    @if let Some(at) = d.revoked_at { br; small { (belgrade_unix(Some(at))) } } }
                td { code.fingerprint { (d.fingerprint) } }
                td { (belgrade_unix(d.last_sync_at)) }
                td { (belgrade_unix(d.lease_expires_at)) }
                td {
                    @if let Some(w) = d.wiped_at { "wiped " (belgrade_unix(Some(w))) @if let Some(r) = &d.wipe_reason { " (" (r) ")" } br; }
                    "purged cases: " (d.purge_receipts)
                }
                td { @if d.status == DeviceStatus::Active {
                    form method="get" action={ "/devices/" (d.device_id) "/revoke" } {
                        button.danger type="submit" { (l.t(Msg::Revoke)) }
                    }
                } }
            } } }
        } }
    };
    Ok(page(Some(&user), l, l.t(Msg::Devices), body))
}

pub(super) async fn revoke_confirm(user: WebUser, Path(id): Path<String>) -> Page {
    user.require(Ability::ManageDevices)?;
    let id = Uuid::try_parse(&id).map_err(|_| WebError::NotFound)?;
    let l = user.lang;
    let body = html! {
        p role="alert" { (l.t(Msg::ConfirmRevoke)) }
        p { code { (id) } }
        form method="post" action={ "/devices/" (id) "/revoke" } {
            (csrf_field(&user))
            button.danger #confirm-revoke type="submit" { (l.t(Msg::YesRevoke)) }
            " " a href="/devices" { (l.t(Msg::Cancel)) }
        }
    };
    Ok(page(Some(&user), l, l.t(Msg::Revoke), body))
}

pub(super) async fn revoke(
    State(state): State<AppState>,
    user: WebUser,
    Path(id): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Page {
    user.require(Ability::ManageDevices)?;
    user.check_csrf(form.get("csrf").map(String::as_str))?;
    let id = Uuid::try_parse(&id).map_err(|_| WebError::NotFound)?;
    let now = state.now();
    state
        .db()
        .call_write(move |sql| Ok::<_, WebError>(devices::revoke_device(sql, &id, now)?))
        .await?;
    Ok(Redirect::to("/devices").into_response())
}

pub(super) async fn confirm(
    State(state): State<AppState>,
    user: WebUser,
    Path(id): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Page {
    user.require(Ability::ManageDevices)?;
    user.check_csrf(form.get("csrf").map(String::as_str))?;
    let id = Uuid::try_parse(&id).map_err(|_| WebError::NotFound)?;
    let typed = form.get("fingerprint").cloned().unwrap_or_default();
    let now = state.now();
    state
        .db()
        .call_write(move |sql| devices::confirm_device(sql, &id, &typed, now))
        .await?;
    Ok(Redirect::to("/devices").into_response())
}

/// `POST /alerts/{id}/ack`: the person acknowledges an alert she is shown; it leaves everyone's
/// pages (audited).
pub(super) async fn acknowledge_alert(
    State(state): State<AppState>,
    user: WebUser,
    Path(id): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Page {
    user.check_csrf(form.get("csrf").map(String::as_str))?;
    let id = Uuid::try_parse(&id).map_err(|_| WebError::NotFound)?;
    let (who, now) = (user.staff(), state.now());
    state
        .db()
        .call_write(move |sql| crate::office::alerts::acknowledge(sql, who, id, now))
        .await?;
    Ok(Redirect::to("/").into_response())
}

pub(super) async fn quarantine_list(State(state): State<AppState>, user: WebUser) -> Page {
    let who = user.staff();
    let rows = state
        .db()
        .call_read(move |sql| access::quarantine_list(sql, who))
        .await?;
    let l = user.lang;
    let body = html! {
        @if rows.is_empty() { p { (l.t(Msg::Nothing)) } }
        @else { div.scroll { table {
            thead { tr { th { (l.t(Msg::Received)) } th { (l.t(Msg::Device)) } th { (l.t(Msg::Cases)) } th { (l.t(Msg::Decision)) } th {} } }
            tbody { @for q in &rows { tr {
                td { (belgrade_unix(Some(q.received_at))) }
                td { code { (short(&q.device.to_string())) } }
                td { a href={ "/cases/" (q.case) } { code { (short(&q.case.to_string())) } } }
                td { (q.decision.as_deref().unwrap_or(l.t(Msg::Waiting))) }
                td { a href={ "/quarantine/" (q.id) } { (l.t(Msg::Show)) } }
            } } }
        } } }
    };
    Ok(page(Some(&user), l, l.t(Msg::Quarantine), body))
}

pub(super) async fn quarantine_show(
    State(state): State<AppState>,
    user: WebUser,
    Path(id): Path<String>,
) -> Page {
    let id = Uuid::try_parse(&id).map_err(|_| WebError::NotFound)?;
    let (vault, who, now) = (state.vault().clone(), user.staff(), state.now());
    // What a revoked phone wrote is case content: read through the case's team, audited.
    let (preview, names) = state
        .db()
        .call_write(move |sql| {
            let case = quarantine::case_of(sql, id)?;
            access::check_read(sql, who, case, ReadVia::Quarantine, now)?;
            Ok::<_, crate::error::ServerError>((
                quarantine::preview(sql, &vault, id)?,
                user_names(sql)?,
            ))
        })
        .await?;
    let l = user.lang;
    let body = html! {
        p { (l.t(Msg::Received)) ": " (belgrade_unix(Some(preview.entry.received_at)))
            " · " (l.t(Msg::Decision)) ": " (preview.entry.decision.as_deref().map(|d| l.label("quarantine-decision", d).unwrap_or(d)).unwrap_or(l.t(Msg::Waiting))) }
        @if !preview.fields.is_empty() {
            h2 { (l.t(Msg::FieldsChanged)) }
            ul #fields { @for f in &preview.fields {
                li { strong title=(f.field) { (l.label("conflict-field", f.field).unwrap_or(f.field)) } ": " (field_value(l, f.field, &f.before)) " → " (field_value(l, f.field, &f.after)) }
            } }
        }
        @for (title, id, notes) in [(Msg::NotesAdded, "notes", &preview.notes), (Msg::NotesDeleted, "deleted-notes", &preview.deleted_notes)] {
            @if !notes.is_empty() {
                h2 { (l.t(title)) }
                ol.timeline id=(id) { @for n in notes { li.note {
                    div.meta { time { (belgrade(n.written_at)) } " · " (l.t(Msg::By)) " " (name_of(&names, &n.author.user))
                        " · " (l.t(Msg::Device)) " " code { (short(&n.author.device.to_string())) } }
                    p.body { (for_page(&n.body)) }
                } } }
            }
        }
        @for (title, id, tasks) in [(Msg::TasksChanged, "tasks", &preview.tasks), (Msg::TasksDeleted, "deleted-tasks", &preview.deleted_tasks)] {
            @if !tasks.is_empty() {
                h2 { (l.t(title)) }
                ul id=(id) { @for t in tasks {
                    li { time { (belgrade(t.scheduled_at)) } " · " (for_page(&t.purpose)) " — " (for_page(&t.office_name)) " · " (l.v(t.status)) }
                } }
            }
        }
        @if preview.entry.decision.is_none() {
            div.actions {
                form method="post" action={ "/quarantine/" (id) "/release" } {
                    (csrf_field(&user)) button #release type="submit" { (l.t(Msg::Release)) }
                }
                form method="post" action={ "/quarantine/" (id) "/discard" } {
                    (csrf_field(&user)) button.danger #discard type="submit" { (l.t(Msg::Discard)) }
                }
            }
        }
    };
    Ok(page(Some(&user), l, l.t(Msg::Quarantine), body))
}

pub(super) async fn quarantine_decide(
    State(state): State<AppState>,
    user: WebUser,
    Path((id, decision)): Path<(String, String)>,
    Form(form): Form<HashMap<String, String>>,
) -> Page {
    user.require(Ability::ChangeTeamCases)?;
    user.check_csrf(form.get("csrf").map(String::as_str))?;
    let id = Uuid::try_parse(&id).map_err(|_| WebError::NotFound)?;
    let decide = match decision.as_str() {
        "release" => quarantine::release,
        "discard" => quarantine::discard,
        _ => return Err(WebError::NotFound),
    };
    let (vault, now, who) = (state.vault().clone(), state.now(), user.staff());
    state
        .db()
        .call_write(move |sql| {
            let case = quarantine::case_of(sql, id)?;
            access::require_change(sql, who, case)?;
            decide(sql, &vault, id, now)
        })
        .await?
        .keep(state.vault());
    Ok(Redirect::to(&format!("/quarantine/{id}")).into_response())
}

/// A value of a case's own field as the quarantine preview shows it: its label where the field
/// has a vocabulary (consent, risk level, legal status, status), else the text.
fn field_value(l: super::i18n::Lang, field: &str, value: &str) -> String {
    let vocabulary = match field {
        "consent" => "consent",
        "risk_level" => "risk-level",
        "legal_status" => "legal-status",
        "status" => "case-status",
        _ => return for_page(value),
    };
    l.label(vocabulary, value)
        .map_or_else(|| for_page(value), str::to_owned)
}
