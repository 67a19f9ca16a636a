//! Signing in and out, the home page, and the language choice.

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::Form;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use fieldcase_core::protocol::Role;
use maud::html;

use super::auth::{self, WebError, WebUser};
use super::i18n::{Lang, Msg};
use super::layout::{Page, page};
use crate::http::error::AppError;
use crate::http::state::AppState;
use crate::office::sign_in::{self, LoginRefusal};

/// The client's address, if the server was started with connection info.
pub(super) struct ClientIp(String);

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

pub(super) async fn home(user: Result<WebUser, WebError>) -> Page {
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

pub(super) async fn login_page(
    headers: HeaderMap,
    axum::extract::Query(query): axum::extract::Query<HashMap<String, String>>,
) -> Response {
    // `?lang=` (the links on the page) wins and is remembered; else the browser's language.
    let chosen = query.get("lang").and_then(|c| Lang::parse(c));
    let lang = chosen.unwrap_or_else(|| auth::browser_lang(&parts_of(headers)));
    let mut response = login_form(lang, &sign_in::random_token(), None);
    if let Some(l) = chosen
        && let Ok(v) = HeaderValue::from_str(&auth::lang_cookie(l))
    {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    response
}

pub(super) async fn login_submit(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Page {
    // Double-submit check: the form's token must match the cookie set with the form.
    let parts = parts_of(headers);
    let cookie = auth::cookie(&parts, auth::LOGIN_COOKIE).unwrap_or("");
    let sent = form.get("csrf").map(String::as_str).unwrap_or("");
    if cookie.is_empty() || !sign_in::same(cookie, sent) {
        return Err(WebError::Csrf);
    }
    let lang = auth::browser_lang(&parts);
    let older = auth::cookie(&parts, auth::SESSION_COOKIE).map(str::to_owned);
    let name = form.get("name").cloned().unwrap_or_default();
    let password = zeroize::Zeroizing::new(form.get("password").cloned().unwrap_or_default());
    let now = state.now();
    let key = *state.login_key();
    let begun = state
        .db()
        .call_write(move |sql| {
            sign_in::begin_login(sql, &key, &ip, &name, now).map_err(WebError::from)
        })
        .await?;
    let result = match begun {
        Err(refusal) => Err(refusal),
        Ok(attempt) => {
            // argon2 runs on the blocking pool, outside any database turn.
            let (attempt, ok) = tokio::task::spawn_blocking(move || {
                let ok = sign_in::check_password(&attempt, &password);
                (attempt, ok)
            })
            .await
            .map_err(|_| WebError::Internal(AppError::internal(&"the password check failed")))?;
            finish(&state, attempt, ok, older, now).await?
        }
    };
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
            let mut response = login_form(lang, &sign_in::random_token(), Some(msg));
            *response.status_mut() = match refusal {
                LoginRefusal::BadCredentials => axum::http::StatusCode::UNAUTHORIZED,
                LoginRefusal::TooManyAttempts => axum::http::StatusCode::TOO_MANY_REQUESTS,
            };
            Ok(response)
        }
    }
}

/// Records a checked login attempt; with a session, the user's own language choice, which
/// follows them to this browser.
async fn finish(
    state: &AppState,
    attempt: sign_in::LoginAttempt,
    ok: bool,
    older: Option<String>,
    now: i64,
) -> Result<Result<(sign_in::NewSession, Option<Lang>), LoginRefusal>, WebError> {
    state
        .db()
        .call_write(move |sql| {
            let outcome = sign_in::finish_login(sql, attempt, ok, now)?;
            // A session this browser held before ends with the new one.
            if outcome.is_ok()
                && let Some(older) = older
            {
                sign_in::end_session(sql, &older, now)?;
            }
            let lang = match &outcome {
                Ok(session) => {
                    sign_in::user_lang(sql, &session.user_id)?.and_then(|l| Lang::parse(&l))
                }
                Err(_) => None,
            };
            Ok::<_, WebError>(outcome.map(|s| (s, lang)))
        })
        .await
}

pub(super) async fn logout(
    State(state): State<AppState>,
    user: WebUser,
    Form(form): Form<HashMap<String, String>>,
) -> Page {
    user.check_csrf(form.get("csrf").map(String::as_str))?;
    let now = state.now();
    let token = user.token.clone();
    state
        .db()
        .call_write(move |sql| sign_in::end_session(sql, &token, now).map_err(WebError::from))
        .await?;
    let mut response = Redirect::to("/login").into_response();
    if let Ok(v) = HeaderValue::from_str(&auth::session_cookie(None)) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(response)
}

/// Whether `path` names a page of this server, and only that: it starts with one `/`, and not
/// with `//` or `/\` (which browsers read as another host), and holds no control character.
fn is_local_path(path: &str) -> bool {
    path.starts_with('/')
        && !path.starts_with("//")
        && !path.starts_with("/\\")
        && !path.chars().any(|c| c.is_control() || c == '\\')
}

pub(super) async fn set_lang(
    State(state): State<AppState>,
    user: WebUser,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Page {
    user.check_csrf(form.get("csrf").map(String::as_str))?;
    let lang = Lang::from_code(form.get("lang").map(String::as_str).unwrap_or("en"));
    let id = user.id;
    state
        .db()
        .call_write(move |sql| {
            sign_in::set_user_lang(sql, &id, lang.code()).map_err(WebError::from)
        })
        .await?;
    // Back to the page the form was on (same origin only: the referrer policy sends none, so
    // this is usually home).
    let back = headers
        .get(header::REFERER)
        .and_then(|v| v.to_str().ok())
        .and_then(|r| r.find("://").map(|i| &r[i + 3..]))
        .and_then(|r| r.find('/').map(|i| r[i..].to_owned()))
        .filter(|p| is_local_path(p))
        .unwrap_or_else(|| "/".to_owned());
    let mut response = Redirect::to(&back).into_response();
    if let Ok(v) = HeaderValue::from_str(&auth::lang_cookie(lang)) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::is_local_path;

    #[test]
    fn only_paths_of_this_server_are_followed_back() {
        for local in ["/", "/cases", "/cases/01a2?x=1"] {
            assert!(is_local_path(local), "{local}");
        }
        for elsewhere in [
            "//evil.example/",
            "/\\evil.example",
            "/\\/x",
            "https://x/",
            "",
            "/a\nb",
        ] {
            assert!(!is_local_path(elsewhere), "{elsewhere:?}");
        }
    }
}
