//! The office in a browser: server-rendered pages (maud, plain HTML and CSS, one small script)
//! for case managers and admins. Every action calls the same office operations as the admin CLI
//! and the signed admin API ([`crate::office`]), which audit what they change.
//!
//! Sign-in is by user name and password ([`auth`], over [`crate::office::sign_in`]); what a
//! page shows is decided by [`crate::office::access`]: case managers and admins see the cases of
//! their teams (every read audited), admins manage users, teams and devices, field workers see
//! nothing but a pointer to their phone. Every form carries the session's CSRF token.
//!
//! Inside: `headers` and `i18n` at the bottom, then `auth` (cookies, the session extractor,
//! refusals), `layout` (the page frame), and the pages themselves, one module per area.

mod admin_pages;
mod attachment_pages;
pub mod auth;
mod case_file_pages;
mod case_pages;
mod conflict_pages;
mod device_pages;
mod headers;
pub mod i18n;
mod layout;
mod live;
mod login_pages;
mod plan_pages;
pub mod report_pages;
mod team_pages;

use axum::Router;
use axum::routing::{get, post};

use crate::http::state::AppState;

pub use headers::secure_headers;

/// The web routes, to merge into the app.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(login_pages::home))
        .route(
            "/login",
            get(login_pages::login_page).post(login_pages::login_submit),
        )
        .route("/logout", post(login_pages::logout))
        .route("/lang", post(login_pages::set_lang))
        .route(
            "/cases",
            get(case_pages::case_list).post(plan_pages::create_case),
        )
        .route("/cases/new", get(plan_pages::new_case_page))
        .route("/cases/{id}/assign", post(plan_pages::assign))
        .route("/cases/{id}/lifecycle", post(plan_pages::lifecycle))
        .route("/cases/{id}/goals", post(plan_pages::add_goal))
        .route("/cases/{id}/goals/{goal}", post(plan_pages::update_goal))
        .route("/cases/{id}/services", post(plan_pages::add_service))
        .route("/cases/{id}/reviews", post(plan_pages::add_review))
        .route("/cases/{id}/profile", post(plan_pages::save_profile))
        .route(
            "/cases/{id}/erase",
            get(plan_pages::erase_confirm).post(plan_pages::erase),
        )
        .route("/cases/{id}", get(case_pages::case_page))
        .route("/cases/{id}/case-file", post(case_file_pages::case_file))
        .route("/cases/{id}/timeline", get(case_pages::case_timeline))
        .route("/cases/{id}/events", get(live::events))
        .route("/cases/{id}/tasks", post(case_pages::add_task))
        .route(
            "/cases/{id}/attachments",
            post(attachment_pages::attach).layer(attachment_pages::form_limit()),
        )
        .route(
            "/cases/{id}/attachments/{attachment}",
            get(attachment_pages::download),
        )
        .route(
            "/cases/{id}/attachments/{attachment}/thumbnail",
            get(attachment_pages::thumbnail_image),
        )
        .route("/cases/{id}/resolve", post(conflict_pages::resolve))
        .route(
            "/cases/{id}/break-glass",
            post(case_pages::open_break_glass),
        )
        .route("/cases/{id}/team", post(case_pages::move_case))
        .route(
            "/teams",
            get(team_pages::teams_page).post(team_pages::create_team),
        )
        .route("/teams/{id}/members", post(team_pages::set_member))
        .route("/conflicts", get(conflict_pages::inbox))
        .route("/devices", get(device_pages::devices))
        .route(
            "/devices/{id}/revoke",
            get(device_pages::revoke_confirm).post(device_pages::revoke),
        )
        .route("/devices/{id}/confirm", post(device_pages::confirm))
        .route("/alerts/{id}/ack", post(device_pages::acknowledge_alert))
        .route("/quarantine", get(device_pages::quarantine_list))
        .route("/quarantine/{id}", get(device_pages::quarantine_show))
        .route(
            "/quarantine/{id}/{decision}",
            post(device_pages::quarantine_decide),
        )
        .route("/tasks", get(admin_pages::tasks_by_day))
        .route("/reports", get(report_pages::reports_page))
        .route(
            "/users",
            get(admin_pages::users).post(admin_pages::add_user),
        )
        .route("/users/{id}/code", post(admin_pages::issue_code))
        .route("/users/{id}/password", post(admin_pages::set_password))
        .route("/users/{id}/deactivate", post(admin_pages::deactivate))
        .route("/users/{id}/role", post(admin_pages::change_role))
        .route("/audit", get(admin_pages::audit))
        .route("/static/web.css", get(headers::css))
        .route("/static/web.js", get(headers::js))
        .route("/static/print.css", get(headers::print_css))
        .layer(axum::middleware::from_fn(auth::lang_scope))
}
