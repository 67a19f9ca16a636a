//! The frame every page shares (title, navigation by role, language links, the CSRF field) and
//! the small helpers pages use to show people and ids.

use std::collections::HashMap;

use axum::response::{IntoResponse, Response};
use fieldcase_core::ids::{CaseId, UserId};
use fieldcase_core::protocol::Role;
use maud::{DOCTYPE, Markup, html};
use uuid::Uuid;

use super::auth::{WebError, WebUser};
use super::headers::secure_headers;
use super::i18n::{Lang, Msg};
use crate::office::access::{Ability, may};

pub(super) type Page = Result<Response, WebError>;

pub(super) fn page(user: Option<&WebUser>, lang: Lang, title: &str, body: Markup) -> Response {
    let markup = html! {
        (DOCTYPE)
        html lang=(lang.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · fieldcase" }
                link rel="stylesheet" href="/static/web.css";
                script src="/static/web.js" defer {}
            }
            body {
                a.skip href="#main" { (lang.t(Msg::SkipToContent)) }
                @if let Some(u) = user {
                    header {
                        nav aria-label="main" {
                            strong { "fieldcase" }
                            @if may(u.role, Ability::ReadTeamCases) {
                                a href="/cases" { (lang.t(Msg::Cases)) }
                                a href="/tasks" { (lang.t(Msg::TasksByDay)) }
                                a href="/conflicts" { (lang.t(Msg::ConflictInbox)) }
                                a href="/quarantine" { (lang.t(Msg::Quarantine)) }
                            }
                            @if may(u.role, Ability::ReadReports) {
                                a href="/reports" { (lang.t(Msg::Reports)) }
                            }
                            @if may(u.role, Ability::ManageDevices) {
                                a href="/devices" { (lang.t(Msg::Devices)) }
                            }
                            @if may(u.role, Ability::ManageUsers) {
                                a href="/users" { (lang.t(Msg::Users)) }
                            }
                            @if may(u.role, Ability::ManageTeams) {
                                a href="/teams" { (lang.t(Msg::Teams)) }
                            }
                            @if may(u.role, Ability::ReadAuditLog) {
                                a href="/audit" { (lang.t(Msg::Audit)) }
                            }
                        }
                        div.who {
                            form method="post" action="/lang" {
                                (csrf_field(u))
                                label for="lang" { (lang.t(Msg::Language)) }
                                select #lang name="lang" {
                                    @for l in Lang::ALL {
                                        option value=(l.code()) selected[l == lang] { (l.name()) }
                                    }
                                }
                                button type="submit" { (lang.t(Msg::Save)) }
                            }
                            span { (u.name) }
                            form method="post" action="/logout" {
                                (csrf_field(u))
                                button #logout type="submit" { (lang.t(Msg::SignOut)) }
                            }
                        }
                    }
                }
                @if let Some(u) = user {
                    @for a in &u.alerts {
                        div.alert #duress-alert role="alert" data-alert=(a.id) {
                            strong { (lang.t(Msg::DuressAlert)) }
                            " " span.who { (crate::display::for_page(&a.user_name)) }
                            " · " time { (super::i18n::belgrade_unix(Some(a.raised_at))) }
                            " · " code { (short(&a.device_id.to_string())) }
                            form method="post" action={ "/alerts/" (a.id) "/ack" } {
                                (csrf_field(u))
                                button type="submit" { (lang.t(Msg::Acknowledge)) }
                            }
                        }
                    }
                }
                main #main { h1 { (title) } (body) }
            }
        }
    };
    (secure_headers(), markup).into_response()
}

pub(super) fn csrf_field(user: &WebUser) -> Markup {
    html! { input type="hidden" name="csrf" value=(user.csrf); }
}

/// User names by id, for showing authors.
pub(super) fn user_names(
    sql: &mut dyn crate::storage::sql::Sql,
) -> Result<HashMap<Uuid, (String, Role)>, crate::error::ServerError> {
    Ok(crate::office::users::list_users(sql)?
        .into_iter()
        .map(|u| (u.id, (u.name, u.role)))
        .collect())
}

pub(super) fn name_of(names: &HashMap<Uuid, (String, Role)>, user: &UserId) -> String {
    names
        .get(user.as_uuid())
        .map(|(n, _)| n.clone())
        .unwrap_or_else(|| short(&user.to_string()))
}

pub(super) fn short(id: &str) -> String {
    id.chars()
        .rev()
        .take(8)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect()
}

pub(super) fn parse_case(id: &str) -> Result<CaseId, WebError> {
    id.parse().map_err(|_| WebError::NotFound)
}

pub(super) type Names = HashMap<Uuid, (String, Role)>;
