//! The office pages over plain HTTPS (no browser): CSRF tokens, roles, login rate limiting,
//! session expiry and the session cookie's attributes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use fieldcase_core::protocol::Role;
use fieldcase_core::transport::{Client, RawRequest};
use fieldcase_server::web::auth::{self, LoginRefusal};
use fieldcase_tests::{TestDevice, TestServer};

const PASSWORD: &str = "correct horse battery";

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// A session for `name` made directly in the database, as a successful login would.
fn session(server: &TestServer, name: &str) -> auth::NewSession {
    server
        .running()
        .state
        .db()
        .with(|conn| {
            let id = fieldcase_server::store::user_id_by_name(conn, name)?;
            auth::create_session(conn, id, now())
        })
        .unwrap()
}

fn post(server: &TestServer, path: &str, token: &str, body: &str) -> u16 {
    let client = Client::new(&server.running().url(), server.fingerprint()).unwrap();
    client
        .send(&RawRequest {
            method: "POST".into(),
            path: path.into(),
            headers: vec![
                ("cookie".into(), format!("{}={token}", auth::SESSION_COOKIE)),
                (
                    "content-type".into(),
                    "application/x-www-form-urlencoded".into(),
                ),
            ],
            body: body.as_bytes().to_vec(),
        })
        .unwrap()
        .status
}

fn get(server: &TestServer, path: &str, token: &str) -> u16 {
    let client = Client::new(&server.running().url(), server.fingerprint()).unwrap();
    client
        .send(&RawRequest {
            method: "GET".into(),
            path: path.into(),
            headers: vec![("cookie".into(), format!("{}={token}", auth::SESSION_COOKIE))],
            body: vec![],
        })
        .unwrap()
        .status
}

fn device_status(server: &TestServer, id: &str) -> String {
    server.with_db(|c| {
        c.query_row("SELECT status FROM devices WHERE id = ?1", [id], |r| {
            r.get(0)
        })
    })
}

#[test]
fn a_form_posted_without_its_csrf_token_is_refused() {
    let server = TestServer::start();
    server.add_user("ana", Role::FieldWorker);
    server.add_web_user("admin", Role::Admin, PASSWORD);
    let phone = TestDevice::enroll_direct(&server, "ana");
    let id = phone.id().to_string();
    let s = session(&server, "admin");
    let path = format!("/devices/{id}/revoke");

    assert_eq!(post(&server, &path, &s.token, ""), 403);
    assert_eq!(post(&server, &path, &s.token, "csrf=not-the-token"), 403);
    assert_eq!(device_status(&server, &id), "active");
    // Another session's token does not do either.
    let other = session(&server, "admin");
    assert_eq!(
        post(&server, &path, &s.token, &format!("csrf={}", other.csrf)),
        403
    );
    assert_eq!(device_status(&server, &id), "active");

    assert_eq!(
        post(&server, &path, &s.token, &format!("csrf={}", s.csrf)),
        303
    );
    assert_eq!(device_status(&server, &id), "revoked");
    // The login form needs its double-submit token too.
    assert_eq!(post(&server, "/login", "", "name=admin&password=x"), 403);
}

#[test]
fn pages_are_authorised_by_role_and_need_a_session() {
    let server = TestServer::start();
    server.add_web_user("ana", Role::FieldWorker, PASSWORD);
    server.add_web_user("marija", Role::CaseManager, PASSWORD);
    server.add_web_user("admin", Role::Admin, PASSWORD);
    let ana = session(&server, "ana");
    let marija = session(&server, "marija");
    let admin = session(&server, "admin");
    for page in ["/cases", "/devices", "/quarantine"] {
        assert_eq!(get(&server, page, &ana.token), 403, "{page}");
        assert_eq!(get(&server, page, &admin.token), 200, "{page}");
        // No session: to the login page.
        assert_eq!(get(&server, page, "nope"), 303, "{page}");
    }
    assert_eq!(get(&server, "/cases", &marija.token), 200);
    assert_eq!(get(&server, "/devices", &marija.token), 403);
    assert_eq!(get(&server, "/quarantine", &marija.token), 403);
}

#[test]
fn sessions_expire_when_idle_and_end_at_logout() {
    let server = TestServer::start();
    server.add_web_user("marija", Role::CaseManager, PASSWORD);
    let s = session(&server, "marija");
    assert_eq!(get(&server, "/cases", &s.token), 200);
    server.with_db(|c| {
        c.execute(
            "UPDATE web_sessions SET last_seen = last_seen - ?1",
            [auth::IDLE_TIMEOUT_SECS + 1],
        )
    });
    assert_eq!(
        get(&server, "/cases", &s.token),
        303,
        "an idle session ends"
    );

    let s = session(&server, "marija");
    assert_eq!(
        post(&server, "/logout", &s.token, &format!("csrf={}", s.csrf)),
        303
    );
    assert_eq!(
        get(&server, "/cases", &s.token),
        303,
        "logout ends the session"
    );
    // Tokens are stored only hashed.
    let stored: i64 = server.with_db(|c| {
        c.query_row(
            "SELECT count(*) FROM web_sessions WHERE token_hash = ?1",
            [s.token.as_bytes()],
            |r| r.get(0),
        )
    });
    assert_eq!(stored, 0);
}

#[test]
fn login_attempts_are_rate_limited_and_passwords_hashed_with_argon2id() {
    let server = TestServer::start();
    server.add_web_user("marija", Role::CaseManager, PASSWORD);
    let db = server.running().state.db();
    let attempt = |password: &str, ip: &str| {
        db.with(|c| auth::login(c, ip, "marija", password, now()))
            .unwrap()
    };
    assert!(attempt(PASSWORD, "10.0.0.1").is_ok());
    for _ in 0..auth::FAILURES_PER_NAME {
        assert_eq!(
            attempt("wrong password", "10.0.0.1").err(),
            Some(LoginRefusal::BadCredentials)
        );
    }
    // Even the right password waits out the window now.
    assert_eq!(
        attempt(PASSWORD, "10.0.0.2").err(),
        Some(LoginRefusal::TooManyAttempts)
    );
    let hash: String =
        server.with_db(|c| c.query_row("SELECT password_hash FROM web_logins", [], |r| r.get(0)));
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    assert!(!hash.contains(PASSWORD));
}

#[test]
fn the_session_cookie_is_secure_http_only_and_same_site_strict() {
    let cookie = auth::session_cookie(Some("t"));
    for attribute in ["Secure", "HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    assert!(cookie.starts_with("__Host-"));
}

#[test]
fn an_admin_reads_and_releases_a_quarantined_upload_through_the_pages() {
    let server = TestServer::start();
    let ana = server.add_user("ana", Role::FieldWorker);
    server.add_web_user("admin", Role::Admin, PASSWORD);
    let (case, _) = server.create_case("K-9", &[ana]);
    let phone = TestDevice::enroll_direct(&server, "ana");
    phone.device.sync_now().unwrap();
    phone.write_note(case, "Written after the phone was lost.");
    server.revoke(phone.id());
    assert!(phone.device.sync_now().is_err());
    let held: Vec<String> = server.with_db(|c| {
        c.prepare("SELECT id FROM quarantine")?
            .query_map([], |r| r.get(0))?
            .collect()
    });
    assert_eq!(held.len(), 1);
    let id = &held[0];
    let s = session(&server, "admin");
    assert_eq!(get(&server, "/quarantine", &s.token), 200);
    assert_eq!(get(&server, &format!("/quarantine/{id}"), &s.token), 200);
    let release = format!("/quarantine/{id}/release");
    assert_eq!(post(&server, &release, &s.token, ""), 403, "no CSRF token");
    assert!(server.case(case).notes.is_empty());
    assert_eq!(
        post(&server, &release, &s.token, &format!("csrf={}", s.csrf)),
        303
    );
    let notes = server.case(case).notes;
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0].body, "Written after the phone was lost.");
}

#[test]
fn opening_a_case_in_the_office_is_audited_but_the_live_timeline_poll_is_not() {
    let server = TestServer::start();
    let ana = server.add_user("ana", Role::FieldWorker);
    server.add_web_user("marija", Role::CaseManager, PASSWORD);
    let (case, _) = server.create_case("K-AUDIT", &[ana]);
    let marija = session(&server, "marija");
    let reads = |server: &TestServer| -> i64 {
        server.with_db(|c| {
            c.query_row(
                "SELECT COUNT(*) FROM audit_log WHERE action = 'case_read' AND detail = ?1",
                [case.to_string()],
                |r| r.get(0),
            )
        })
    };
    assert_eq!(get(&server, &format!("/cases/{case}"), &marija.token), 200);
    assert_eq!(reads(&server), 1);
    assert_eq!(
        get(&server, &format!("/cases/{case}/timeline"), &marija.token),
        200
    );
    assert_eq!(reads(&server), 1);
    // A field worker's attempt is refused and reads nothing.
    server.add_web_user("ana2", Role::FieldWorker, PASSWORD);
    let worker = session(&server, "ana2");
    assert_eq!(get(&server, &format!("/cases/{case}"), &worker.token), 403);
    assert_eq!(reads(&server), 1);
}
