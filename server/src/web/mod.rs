//! The office in a browser: server-rendered pages (maud, plain HTML and CSS, one small script)
//! for case managers and admins. Every action calls the same library functions as the admin CLI
//! and the signed admin API ([`crate::cases`], [`crate::admin`], [`crate::quarantine`]), which
//! audit what they change.
//!
//! Sign-in is by user name and password ([`auth`]); pages are authorised by role: case managers
//! and admins see cases, only admins see devices and quarantine, field workers see nothing but a
//! pointer to their phone. Every form carries the session's CSRF token.

mod admin_pages;
pub mod auth;
mod conflict_pages;
pub mod i18n;
mod live;

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::Form;
use axum::Router;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use fieldcase_core::ids::{CaseId, UserId};
use fieldcase_core::model::{Case, NewTask, OfficeKind};
use fieldcase_core::protocol::Role;
use maud::{DOCTYPE, Markup, html};
use uuid::Uuid;

use self::auth::{LoginRefusal, WebError, WebUser};
use self::i18n::{Lang, Msg, belgrade, belgrade_unix};
use crate::admin::{self, DeviceStatus};
use crate::cases;
use crate::state::AppState;

pub(crate) type Page = Result<Response, WebError>;

/// The web routes, to merge into the app.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/login", get(login_page).post(login_submit))
        .route("/logout", post(logout))
        .route("/lang", post(set_lang))
        .route("/cases", get(case_list))
        .route("/cases/{id}", get(case_page))
        .route("/cases/{id}/timeline", get(case_timeline))
        .route("/cases/{id}/events", get(live::events))
        .route("/cases/{id}/tasks", post(add_task))
        .route("/cases/{id}/resolve", post(conflict_pages::resolve))
        .route("/conflicts", get(conflict_pages::inbox))
        .route("/devices", get(devices))
        .route("/devices/{id}/revoke", get(revoke_confirm).post(revoke))
        .route("/quarantine", get(quarantine_list))
        .route("/quarantine/{id}", get(quarantine_show))
        .route("/quarantine/{id}/{decision}", post(quarantine_decide))
        .route("/tasks", get(admin_pages::tasks_by_day))
        .route(
            "/users",
            get(admin_pages::users).post(admin_pages::add_user),
        )
        .route("/users/{id}/code", post(admin_pages::issue_code))
        .route("/users/{id}/password", post(admin_pages::set_password))
        .route("/users/{id}/deactivate", post(admin_pages::deactivate))
        .route("/users/{id}/role", post(admin_pages::change_role))
        .route("/audit", get(admin_pages::audit))
        .route("/static/web.css", get(css))
        .route("/static/web.js", get(js))
        .layer(axum::middleware::from_fn(auth::lang_scope))
}

const CSS: &str = include_str!("../../static/web.css");
const JS: &str = include_str!("../../static/web.js");

/// The base64 SHA-256 of the server certificate's public key (its SubjectPublicKeyInfo) in
/// `data_dir`, the form Chromium's `--ignore-certificate-errors-spki-list` takes: a browser can
/// trust exactly this self-signed certificate and nothing else.
pub fn spki_pin(data_dir: &std::path::Path) -> Result<String, crate::error::ServerError> {
    use base64::Engine;
    use sha2::Digest;
    let pem = zeroize::Zeroizing::new(
        std::fs::read_to_string(data_dir.join(crate::tls::CERT_KEY_FILE))
            .map_err(crate::error::ServerError::io("reading the TLS key"))?,
    );
    let key = rcgen::KeyPair::from_pem(&pem)
        .map_err(|e| crate::error::ServerError::Tls(e.to_string()))?;
    Ok(
        base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(
            rcgen::PublicKeyData::subject_public_key_info(&key),
        )),
    )
}

/// Headers on every page: no caching, no framing, scripts and styles from this origin only.
pub fn secure_headers() -> [(HeaderName, HeaderValue); 5] {
    [
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
            ),
        ),
    ]
}

async fn css() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], CSS).into_response()
}

async fn js() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        JS,
    )
        .into_response()
}

pub(crate) fn page(user: Option<&WebUser>, lang: Lang, title: &str, body: Markup) -> Response {
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
                            @if matches!(u.role, Role::CaseManager | Role::Admin) {
                                a href="/cases" { (lang.t(Msg::Cases)) }
                                a href="/tasks" { (lang.t(Msg::TasksByDay)) }
                                a href="/conflicts" { (lang.t(Msg::ConflictInbox)) }
                            }
                            @if u.role == Role::Admin {
                                a href="/devices" { (lang.t(Msg::Devices)) }
                                a href="/quarantine" { (lang.t(Msg::Quarantine)) }
                                a href="/users" { (lang.t(Msg::Users)) }
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
                main #main { h1 { (title) } (body) }
            }
        }
    };
    (secure_headers(), markup).into_response()
}

pub(crate) fn csrf_field(user: &WebUser) -> Markup {
    html! { input type="hidden" name="csrf" value=(user.csrf); }
}

/// The client's address, if the server was started with connection info.
struct ClientIp(String);

impl axum::extract::FromRequestParts<AppState> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip().to_string())
                .unwrap_or_else(|| "unknown".to_owned()),
        ))
    }
}

async fn home(user: Result<WebUser, WebError>) -> Page {
    let user = user?;
    match user.role {
        Role::CaseManager | Role::Admin => Ok(Redirect::to("/cases").into_response()),
        _ => Ok(page(
            Some(&user),
            user.lang,
            "fieldcase",
            html! { p { (user.lang.t(Msg::FieldWorkerHome)) } },
        )),
    }
}

fn login_form(lang: Lang, token: &str, error: Option<Msg>) -> Response {
    let body = html! {
        @if let Some(e) = error { p.error role="alert" { (lang.t(e)) } }
        form.login method="post" action="/login" {
            input type="hidden" name="csrf" value=(token);
            label for="name" { (lang.t(Msg::UserName)) }
            input #name name="name" autocomplete="username" required autofocus;
            label for="password" { (lang.t(Msg::Password)) }
            input #password type="password" name="password" autocomplete="current-password" required;
            button #signin type="submit" { (lang.t(Msg::SignIn)) }
        }
        nav.langs aria-label=(lang.t(Msg::Language)) {
            @for l in Lang::ALL {
                @if l == lang { strong lang=(l.code()) { (l.name()) } }
                @else { a href={ "/login?lang=" (l.code()) } lang=(l.code()) hreflang=(l.code()) { (l.name()) } }
                " "
            }
        }
    };
    let mut response = page(None, lang, lang.t(Msg::SignIn), body);
    if let Ok(v) = HeaderValue::from_str(&auth::login_cookie(token)) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    response
}

/// The request's parts without its body (for cookie and header helpers).
fn parts_of(headers: HeaderMap) -> axum::http::request::Parts {
    let mut req = axum::http::Request::new(());
    *req.headers_mut() = headers;
    req.into_parts().0
}

async fn login_page(
    headers: HeaderMap,
    axum::extract::Query(query): axum::extract::Query<HashMap<String, String>>,
) -> Response {
    // `?lang=` (the links on the page) wins and is remembered; else the browser's language.
    let chosen = query.get("lang").and_then(|c| Lang::parse(c));
    let lang = chosen.unwrap_or_else(|| auth::browser_lang(&parts_of(headers)));
    let mut response = login_form(lang, &auth::random_token(), None);
    if let Some(l) = chosen
        && let Ok(v) = HeaderValue::from_str(&auth::lang_cookie(l))
    {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    response
}

async fn login_submit(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Page {
    // Double-submit check: the form's token must match the cookie set with the form.
    let parts = parts_of(headers);
    let cookie = auth::cookie(&parts, auth::LOGIN_COOKIE).unwrap_or("");
    let sent = form.get("csrf").map(String::as_str).unwrap_or("");
    if cookie.is_empty() || !auth::same(cookie, sent) {
        return Err(WebError::Csrf);
    }
    let lang = auth::browser_lang(&parts);
    let name = form.get("name").cloned().unwrap_or_default();
    let password = form.get("password").cloned().unwrap_or_default();
    let now = state.now();
    let result = state
        .db()
        .call_write(move |sql| {
            let outcome = auth::login(sql, &ip, &name, &password, now)?;
            // The user's own language choice follows them to this browser.
            let lang = match &outcome {
                Ok(session) => sql
                    .query_opt(
                        "SELECT lang FROM web_logins WHERE user_id = ?1",
                        crate::sql_params![&session.user_id.to_string()],
                    )?
                    .and_then(|r| r.get::<Option<String>>(0).ok().flatten())
                    .and_then(|l| Lang::parse(&l)),
                Err(_) => None,
            };
            Ok::<_, WebError>(outcome.map(|s| (s, lang)))
        })
        .await?;
    match result {
        Ok((session, user_lang)) => {
            let mut response = Redirect::to("/").into_response();
            if let Ok(v) = HeaderValue::from_str(&auth::session_cookie(Some(&session.token))) {
                response.headers_mut().append(header::SET_COOKIE, v);
            }
            if let Some(l) = user_lang
                && let Ok(v) = HeaderValue::from_str(&auth::lang_cookie(l))
            {
                response.headers_mut().append(header::SET_COOKIE, v);
            }
            Ok(response)
        }
        Err(refusal) => {
            let msg = match refusal {
                LoginRefusal::BadCredentials => Msg::BadLogin,
                LoginRefusal::TooManyAttempts => Msg::TooMany,
            };
            let mut response = login_form(lang, &auth::random_token(), Some(msg));
            *response.status_mut() = match refusal {
                LoginRefusal::BadCredentials => axum::http::StatusCode::UNAUTHORIZED,
                LoginRefusal::TooManyAttempts => axum::http::StatusCode::TOO_MANY_REQUESTS,
            };
            Ok(response)
        }
    }
}

async fn logout(
    State(state): State<AppState>,
    user: WebUser,
    Form(form): Form<HashMap<String, String>>,
) -> Page {
    user.check_csrf(form.get("csrf").map(String::as_str))?;
    let now = state.now();
    let token = user.token.clone();
    state
        .db()
        .call_write(move |sql| auth::end_session(sql, &token, now).map_err(WebError::from))
        .await?;
    let mut response = Redirect::to("/login").into_response();
    if let Ok(v) = HeaderValue::from_str(&auth::session_cookie(None)) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(response)
}

async fn set_lang(
    State(state): State<AppState>,
    user: WebUser,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Page {
    user.check_csrf(form.get("csrf").map(String::as_str))?;
    let lang = Lang::from_code(form.get("lang").map(String::as_str).unwrap_or("en"));
    let id = user.id.to_string();
    state
        .db()
        .call_write(move |sql| {
            sql.execute(
                "UPDATE web_logins SET lang = ?2 WHERE user_id = ?1",
                crate::sql_params![&id, lang.code()],
            )?;
            Ok::<_, WebError>(())
        })
        .await?;
    // Back to the page the form was on (same origin only: the referrer policy sends none, so
    // this is usually home).
    let back = headers
        .get(header::REFERER)
        .and_then(|v| v.to_str().ok())
        .and_then(|r| r.find("://").map(|i| &r[i + 3..]))
        .and_then(|r| r.find('/').map(|i| r[i..].to_owned()))
        .filter(|p| p.starts_with('/') && !p.starts_with("//"))
        .unwrap_or_else(|| "/".to_owned());
    let mut response = Redirect::to(&back).into_response();
    if let Ok(v) = HeaderValue::from_str(&auth::lang_cookie(lang)) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(response)
}

/// User names by id, for showing authors.
pub(crate) fn user_names(
    sql: &mut dyn crate::sql::Sql,
) -> Result<HashMap<Uuid, (String, Role)>, crate::error::ServerError> {
    Ok(crate::store::list_users(sql)?
        .into_iter()
        .map(|u| (u.id, (u.name, u.role)))
        .collect())
}

pub(crate) fn name_of(names: &HashMap<Uuid, (String, Role)>, user: &UserId) -> String {
    names
        .get(user.as_uuid())
        .map(|(n, _)| n.clone())
        .unwrap_or_else(|| short(&user.to_string()))
}

pub(crate) fn short(id: &str) -> String {
    id.chars()
        .rev()
        .take(8)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect()
}

fn last_activity(case: &Case) -> Option<time::OffsetDateTime> {
    case.notes
        .iter()
        .map(|n| n.edited_at.unwrap_or(n.written_at))
        .chain(std::iter::once(case.created_at))
        .max()
}

async fn case_list(State(state): State<AppState>, user: WebUser) -> Page {
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
                    td { a href={ "/cases/" (c.id) } { (c.client_code) } }
                    td { (c.status.as_str()) }
                    td { (c.notes.len()) }
                    td { (last_activity(c).map(belgrade).unwrap_or_default()) }
                } } }
            } }
        }
    };
    Ok(page(Some(&user), l, l.t(Msg::Cases), body))
}

fn parse_case(id: &str) -> Result<CaseId, WebError> {
    id.parse().map_err(|_| WebError::NotFound)
}

async fn load_case(
    state: &AppState,
    id: CaseId,
) -> Result<(Case, HashMap<Uuid, (String, Role)>), WebError> {
    let (case, names, _) = load_case_with_conflicts(state, id).await?;
    Ok((case, names))
}

type Names = HashMap<Uuid, (String, Role)>;

async fn load_case_with_conflicts(
    state: &AppState,
    id: CaseId,
) -> Result<(Case, Names, Vec<fieldcase_core::document::Conflict>), WebError> {
    let vault = state.vault().clone();
    Ok(state
        .db()
        .call_read(move |sql| {
            let (case, conflicts) = cases::read_case(sql, &vault, id).map_err(|e| match e {
                crate::error::ServerError::UnknownCase => crate::error::AppError::new(
                    axum::http::StatusCode::NOT_FOUND,
                    "not_found",
                    "no such case",
                ),
                other => other.into(),
            })?;
            Ok::<_, crate::error::AppError>((case, user_names(sql)?, conflicts))
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
                        p.body { (n.body) }
                        @if !n.tags.is_empty() {
                            p.tags { @for t in &n.tags { span.tag { (t.as_str()) } " " } }
                        }
                    },
                    Item::Task(t) => li.task data-task=(t.id) {
                        div.meta {
                            strong { (l.t(Msg::Task)) } " · " time { (belgrade(*at)) }
                            " · " (t.status.as_str())
                        }
                        p.body { (t.purpose) " — " (t.office_name) " (" (t.office_kind.as_str()) "), " (t.office_address) }
                        @if !t.checklist.is_empty() {
                            ul.checklist { @for c in &t.checklist {
                                li { @if c.done { "☑ " } @else { "☐ " } (c.label) }
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

async fn case_page(State(state): State<AppState>, user: WebUser, Path(id): Path<String>) -> Page {
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
            crate::store::audit_with_detail(
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
        p.case-meta { (l.t(Msg::Client)) ": " strong { (case.client_code) } " · " (l.t(Msg::Status)) ": " (case.status.as_str())
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
                (c.field) ": " @for (i, v) in c.values.iter().enumerate() { @if i > 0 { " / " } (v.value) }
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
    Ok(page(Some(&user), l, &case.client_code, body))
}

async fn case_timeline(
    State(state): State<AppState>,
    user: WebUser,
    Path(id): Path<String>,
) -> Page {
    user.require_office()?;
    let id = parse_case(&id)?;
    let (case, names) = load_case(&state, id).await?;
    Ok((secure_headers(), timeline(user.lang, &case, &names)).into_response())
}

async fn add_task(
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
            crate::store::audit_with_detail(
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

async fn devices(State(state): State<AppState>, user: WebUser) -> Page {
    user.require_admin()?;
    let rows = state
        .db()
        .call_read(|sql| Ok::<_, WebError>(admin::list_devices(sql)?))
        .await?;
    let l = user.lang;
    let body = html! {
        @if rows.is_empty() { p { (l.t(Msg::Nothing)) } }
        div.scroll { table #devices {
            thead { tr {
                th { (l.t(Msg::User)) } th { (l.t(Msg::Device)) } th { (l.t(Msg::State)) }
                th { (l.t(Msg::LastSync)) } th { (l.t(Msg::LeaseExpiry)) } th { (l.t(Msg::Receipts)) } th {}
            } }
            tbody { @for d in &rows { tr data-device=(d.device_id) {
                td { (d.user_name) " (" (d.role.as_str()) ")" }
                td { code title=(d.device_id) { (short(&d.device_id.to_string())) } }
                td.state { (d.status.as_str())
                    @if let Some(at) = d.revoked_at { br; small { (belgrade_unix(Some(at))) } } }
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

async fn revoke_confirm(user: WebUser, Path(id): Path<String>) -> Page {
    user.require_admin()?;
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

async fn revoke(
    State(state): State<AppState>,
    user: WebUser,
    Path(id): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Page {
    user.require_admin()?;
    user.check_csrf(form.get("csrf").map(String::as_str))?;
    let id = Uuid::try_parse(&id).map_err(|_| WebError::NotFound)?;
    let now = state.now();
    state
        .db()
        .call_write(move |sql| Ok::<_, WebError>(admin::revoke_device(sql, &id, now)?))
        .await?;
    Ok(Redirect::to("/devices").into_response())
}

async fn quarantine_list(State(state): State<AppState>, user: WebUser) -> Page {
    user.require_admin()?;
    let rows = state
        .db()
        .call_read(|sql| Ok::<_, WebError>(crate::quarantine::list(sql)?))
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

async fn quarantine_show(
    State(state): State<AppState>,
    user: WebUser,
    Path(id): Path<String>,
) -> Page {
    user.require_admin()?;
    let id = Uuid::try_parse(&id).map_err(|_| WebError::NotFound)?;
    let vault = state.vault().clone();
    let preview = state
        .db()
        .call_read(move |sql| crate::quarantine::preview(sql, &vault, id).map_err(WebError::from))
        .await?;
    let names = state
        .db()
        .call_read(|sql| Ok::<_, WebError>(user_names(sql)?))
        .await?;
    let l = user.lang;
    let body = html! {
        p { (l.t(Msg::Received)) ": " (belgrade_unix(Some(preview.entry.received_at)))
            " · " (l.t(Msg::Decision)) ": " (preview.entry.decision.as_deref().unwrap_or(l.t(Msg::Waiting))) }
        ol.timeline { @for n in &preview.notes { li.note {
            div.meta { time { (belgrade(n.written_at)) } " · " (l.t(Msg::By)) " " (name_of(&names, &n.author.user))
                " · " (l.t(Msg::Device)) " " code { (short(&n.author.device.to_string())) } }
            p.body { (n.body) }
        } } }
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

async fn quarantine_decide(
    State(state): State<AppState>,
    user: WebUser,
    Path((id, decision)): Path<(String, String)>,
    Form(form): Form<HashMap<String, String>>,
) -> Page {
    user.require_admin()?;
    user.check_csrf(form.get("csrf").map(String::as_str))?;
    let id = Uuid::try_parse(&id).map_err(|_| WebError::NotFound)?;
    let decide = match decision.as_str() {
        "release" => crate::quarantine::release,
        "discard" => crate::quarantine::discard,
        _ => return Err(WebError::NotFound),
    };
    let (vault, now) = (state.vault().clone(), state.now());
    state
        .db()
        .call_write(move |sql| decide(sql, &vault, id, now).map_err(WebError::from))
        .await?
        .keep(state.vault());
    Ok(Redirect::to(&format!("/quarantine/{id}")).into_response())
}
