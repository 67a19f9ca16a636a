//! The conflict inbox page: sensitive fields changed on two devices at once, each value with
//! who wrote it (user and device) and when, and a form to keep one value or write a new one.
//! Deciding calls [`crate::office::conflicts::resolve`], the same operation as
//! `fieldcase-server admin case resolve` and `POST /v1/admin/cases/{id}/resolve`.

use std::collections::HashMap;

use axum::Form;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect};
use fieldcase_core::document::Conflict;
use fieldcase_core::model::{ConsentStatus, LegalStatus, RiskLevel};
use maud::{Markup, html};

use super::auth::{WebError, WebUser};
use super::i18n::{Lang, Msg, belgrade};
use super::layout::{Names, Page, csrf_field, name_of, page, parse_case, short, user_names};
use crate::display::for_page;
use crate::http::state::AppState;
use crate::office::access::{self, Ability};
use crate::office::conflicts::{self, CaseConflicts, Resolution};

fn field_label(l: Lang, field: &str) -> String {
    match field {
        "consent" => l.t(Msg::Consent).to_owned(),
        "risk_level" => l.t(Msg::RiskLevel).to_owned(),
        "legal_status" => l.t(Msg::LegalStatus).to_owned(),
        "outcome" => l.t(Msg::Outcome).to_owned(),
        other => other.to_owned(),
    }
}

/// The values a field accepts, for the "new value" picker (`None`: free text).
fn choices(field: &str) -> Option<Vec<&'static str>> {
    match field {
        "consent" => Some(ConsentStatus::ALL.iter().map(|v| v.as_str()).collect()),
        "risk_level" => Some(RiskLevel::ALL.iter().map(|v| v.as_str()).collect()),
        "legal_status" => Some(LegalStatus::ALL.iter().map(|v| v.as_str()).collect()),
        _ => None,
    }
}

fn conflict_form(
    l: Lang,
    user: &WebUser,
    case: &CaseConflicts,
    c: &Conflict,
    index: usize,
    names: &Names,
) -> Markup {
    let purpose = c.task.and_then(|t| {
        case.task_purposes
            .iter()
            .find(|(id, _)| *id == t)
            .map(|(_, p)| p.as_str())
    });
    let new_id = format!("new-{}-{index}", case.case);
    html! {
        form.conflict method="post" action={ "/cases/" (case.case) "/resolve" } data-field=(c.field) {
            (csrf_field(user))
            input type="hidden" name="field" value=(c.field);
            @if let Some(t) = c.task { input type="hidden" name="task" value=(t); }
            fieldset {
                legend { (field_label(l, &c.field)) @if let Some(p) = purpose { " — " (l.t(Msg::Task)) ": " (p) } }
                @for (i, v) in c.values.iter().enumerate() {
                    @let id = format!("pick-{}-{index}-{i}", case.case);
                    div.choice {
                        input type="radio" id=(id) name="value" value=(v.value) checked[i == 0];
                        " "
                        label for=(id) {
                            strong.value { (for_page(&v.value)) }
                            @if let Some(a) = v.author {
                                " · " (l.t(Msg::By)) " " span.author { (name_of(names, &a.user)) }
                                " · " (l.t(Msg::Device)) " " code.device title=(a.device) { (short(&a.device.to_string())) }
                            }
                            @if let Some(at) = v.at { " · " time { (belgrade(at)) } }
                            @if *v == c.winner { " · " em { (l.t(Msg::Shown)) } }
                        }
                    }
                }
                label for=(new_id) { (l.t(Msg::NewValue)) }
                @match choices(&c.field) {
                    Some(values) => select id=(new_id) name="new_value" {
                        option value="" { "—" }
                        @for v in values { option value=(v) { (v) } }
                    },
                    None => input id=(new_id) name="new_value" maxlength="2000";,
                }
            }
            button.decide type="submit" { (l.t(Msg::Decide)) }
        }
    }
}

pub(super) async fn inbox(State(state): State<AppState>, user: WebUser) -> Page {
    user.require(Ability::ReadTeamCases)?;
    let (vault, who, now) = (state.vault().clone(), user.staff(), state.now());
    let (inbox, names) = state
        .db()
        .call_write(move |sql| {
            Ok::<_, WebError>((
                access::conflict_inbox(sql, &vault, who, now)?,
                user_names(sql)?,
            ))
        })
        .await?;
    let l = user.lang;
    let body = html! {
        p.hint { (l.t(Msg::ConflictHint)) }
        @if inbox.is_empty() { p #no-conflicts { (l.t(Msg::NoConflicts)) } }
        @for case in &inbox {
            section.conflict-case data-case=(case.case) {
                h2 { a href={ "/cases/" (case.case) } { (for_page(&case.client_code)) } }
                @for (i, c) in case.conflicts.iter().enumerate() {
                    (conflict_form(l, &user, case, c, i, &names))
                }
            }
        }
    };
    Ok(page(Some(&user), l, l.t(Msg::ConflictInbox), body))
}

pub(super) async fn resolve(
    State(state): State<AppState>,
    user: WebUser,
    Path(id): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Page {
    user.require(Ability::ChangeTeamCases)?;
    user.check_csrf(form.get("csrf").map(String::as_str))?;
    let case = parse_case(&id)?;
    let field = |k: &str| form.get(k).map(|v| v.trim()).unwrap_or("");
    // A new value, when written or picked, wins over the radio choice.
    let value = match field("new_value") {
        "" => field("value"),
        new => new,
    };
    if value.is_empty() {
        return Err(WebError::BadInput("no value chosen".to_owned()));
    }
    let task = match field("task") {
        "" => None,
        t => Some(t.parse().map_err(|_| WebError::NotFound)?),
    };
    let decision = Resolution {
        case,
        task,
        field: field("field").to_owned(),
        value: value.to_owned(),
    };
    let (vault, now, who) = (state.vault().clone(), state.now(), user.staff());
    state
        .db()
        .call_write(move |sql| {
            access::require_change(sql, who, case)?;
            conflicts::resolve(sql, &vault, &decision, Some(&who.id), now)
        })
        .await?
        .keep(state.vault());
    Ok(Redirect::to("/conflicts").into_response())
}
