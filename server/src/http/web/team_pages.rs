//! Teams, for admins: who is on which team (and so reads which cases), creating teams, putting
//! people on them and taking them off. Shows no case content: only how many cases a team holds.

use std::collections::HashMap;

use axum::Form;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect};
use maud::html;
use uuid::Uuid;

use super::auth::{WebError, WebUser};
use super::i18n::Msg;
use super::layout::{Page, csrf_field, page};
use crate::display::for_page;
use crate::http::state::AppState;
use crate::office::access::Ability;
use crate::office::{teams, users};

pub(super) async fn teams_page(State(state): State<AppState>, user: WebUser) -> Page {
    user.require(Ability::ManageTeams)?;
    let (teams, people) = state
        .db()
        .call_read(|sql| Ok::<_, WebError>((teams::list_teams(sql)?, users::list_users(sql)?)))
        .await?;
    let l = user.lang;
    let body = html! {
        @for t in &teams {
            section.team data-team=(t.name) {
                h2 { (for_page(&t.name)) }
                p { (l.t(Msg::Cases)) ": " (t.cases) }
                h3 { (l.t(Msg::Members)) }
                @if t.members.is_empty() { p { (l.t(Msg::Nothing)) } }
                ul { @for (id, name, role) in &t.members { li data-member=(name) {
                    (for_page(name)) " (" (l.v(*role)) ") "
                    form.inline method="post" action={ "/teams/" (t.id) "/members" } {
                        (csrf_field(&user))
                        input type="hidden" name="user" value=(id);
                        input type="hidden" name="member" value="no";
                        button type="submit" { (l.t(Msg::RemoveMember)) }
                    }
                } } }
                form.inline method="post" action={ "/teams/" (t.id) "/members" } {
                    (csrf_field(&user))
                    input type="hidden" name="member" value="yes";
                    select name="user" aria-label=(l.t(Msg::User)) {
                        @for p in people.iter().filter(|p| p.active && !t.members.iter().any(|m| m.0 == p.id)) {
                            option value=(p.id) { (for_page(&p.name)) " (" (l.v(p.role)) ")" }
                        }
                    }
                    button type="submit" { (l.t(Msg::AddMember)) }
                }
            }
        }
        section aria-labelledby="new-team" {
            h2 #new-team { (l.t(Msg::NewTeam)) }
            form.task method="post" action="/teams" {
                (csrf_field(&user))
                label for="team-name" { (l.t(Msg::Team)) }
                input #team-name name="name" required maxlength="100";
                button type="submit" { (l.t(Msg::CreateTeam)) }
            }
        }
    };
    Ok(page(Some(&user), l, l.t(Msg::Teams), body))
}

pub(super) async fn create_team(
    State(state): State<AppState>,
    user: WebUser,
    Form(form): Form<HashMap<String, String>>,
) -> Page {
    user.require(Ability::ManageTeams)?;
    user.check_csrf(form.get("csrf").map(String::as_str))?;
    let name = form.get("name").cloned().unwrap_or_default();
    let now = state.now();
    state
        .db()
        .call_write(move |sql| teams::create_team(sql, &name, now))
        .await?;
    Ok(Redirect::to("/teams").into_response())
}

pub(super) async fn set_member(
    State(state): State<AppState>,
    user: WebUser,
    Path(team): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Page {
    user.require(Ability::ManageTeams)?;
    user.check_csrf(form.get("csrf").map(String::as_str))?;
    let team = Uuid::try_parse(&team).map_err(|_| WebError::NotFound)?;
    let member = form
        .get("user")
        .and_then(|u| Uuid::try_parse(u).ok())
        .ok_or_else(|| WebError::BadInput("user".to_owned()))?;
    let join = match form.get("member").map(String::as_str) {
        Some("yes") => true,
        Some("no") => false,
        _ => return Err(WebError::BadInput("member".to_owned())),
    };
    let now = state.now();
    state
        .db()
        .call_write(move |sql| teams::set_member(sql, team, member, join, now))
        .await?;
    Ok(Redirect::to("/teams").into_response())
}
