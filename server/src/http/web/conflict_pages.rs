//! The conflict inbox page: sensitive fields changed on two devices at once, each value with
//! who wrote it (user and device) and when, and a form to keep one value or write a new one.
//! Deciding calls [`crate::office::conflicts::resolve`], the same operation as
//! `fieldcase-server admin case resolve` and `POST /v1/admin/cases/{id}/resolve`.

use std::collections::HashMap;

use axum::Form;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect};
use fieldcase_core::document::{Conflict, ConflictOn};
use fieldcase_core::model::{ConsentStatus, GoalStatus, LegalStatus, RiskLevel};
use maud::{Markup, html};

use super::auth::{WebError, WebUser};
use super::i18n::{Lang, Msg, Vocab, belgrade};
use super::layout::{Names, Page, csrf_field, name_of, page, parse_case, short, user_names};
use crate::display::for_page;
use crate::http::state::AppState;
use crate::office::access::{self, Ability};
use crate::office::conflicts::{self, CaseConflicts, Resolution};

fn field_label(l: Lang, c: &Conflict) -> String {
    let field = l.value("conflict-field", &c.field);
    if c.goal.is_some() {
        format!("{} — {field}", l.t(Msg::Goal))
    } else {
        field.to_owned()
    }
}

/// The vocabulary of a conflicting field, if it has one: (its name in the translations, its
/// values) for the "new value" picker and for showing each value by its label.
fn vocabulary(c: &Conflict) -> Option<(&'static str, Vec<&'static str>)> {
    fn names<V: Vocab>() -> Vec<&'static str> {
        V::all().iter().map(|v| v.name()).collect()
    }
    match (c.on(), c.field.as_str()) {
        (ConflictOn::Case, "consent") => Some((ConsentStatus::FIELD, names::<ConsentStatus>())),
        (ConflictOn::Case, "risk_level") => Some((RiskLevel::FIELD, names::<RiskLevel>())),
        (ConflictOn::Case, "legal_status") => Some((LegalStatus::FIELD, names::<LegalStatus>())),
        (ConflictOn::Goal(_), "status") => Some((GoalStatus::FIELD, names::<GoalStatus>())),
        _ => None,
    }
}

/// A value as the page shows it: its label when the field has a vocabulary, else the text.
fn shown(l: Lang, c: &Conflict, value: &str) -> String {
    match vocabulary(c) {
        Some((field, values)) if values.contains(&value) => l.value(field, value).to_owned(),
        _ => for_page(value),
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
    let goal = c.goal.and_then(|g| {
        case.goal_descriptions
            .iter()
            .find(|(id, _)| *id == g)
            .map(|(_, d)| d.as_str())
    });
    let new_id = format!("new-{}-{index}", case.case);
    html! {
        form.conflict method="post" action={ "/cases/" (case.case) "/resolve" } data-field=(c.field) {
            (csrf_field(user))
            input type="hidden" name="field" value=(c.field);
            @if let Some(t) = c.task { input type="hidden" name="task" value=(t); }
            @if let Some(g) = c.goal { input type="hidden" name="goal" value=(g); }
            fieldset {
                legend { (field_label(l, c))
                    @if let Some(p) = purpose { " — " (l.t(Msg::Task)) ": " (for_page(p)) }
                    @if let Some(d) = goal { ": " (for_page(d)) }
                }
                @for (i, v) in c.values.iter().enumerate() {
                    @let id = format!("pick-{}-{index}-{i}", case.case);
                    div.choice {
                        input type="radio" id=(id) name="value" value=(v.value) checked[i == 0];
                        " "
                        label for=(id) {
                            strong.value data-value=(v.value) { (shown(l, c, &v.value)) }
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
                @match vocabulary(c) {
                    Some((field, values)) => select id=(new_id) name="new_value" {
                        option value="" { "—" }
                        @for v in values { option value=(v) { (l.value(field, v)) } }
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
    let goal = match field("goal") {
        "" => None,
        g => Some(g.parse().map_err(|_| WebError::NotFound)?),
    };
    let decision = Resolution {
        case,
        task,
        goal,
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
