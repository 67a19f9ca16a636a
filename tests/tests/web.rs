//! The office pages over plain HTTPS (no browser): CSRF tokens, roles, login rate limiting,
//! session expiry and the session cookie's attributes; the conflict inbox with two real phones;
//! role changes; the enrollment QR code; pages in the visitor's language.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use fieldcase_core::protocol::Role;
use fieldcase_core::transport::{Client, RawRequest};
use fieldcase_server::http::web::auth;
use fieldcase_server::office::sign_in::{self, LoginRefusal};
use fieldcase_server::sql_params;
use fieldcase_tests::{TestDevice, TestServer};

const PASSWORD: &str = "correct horse battery";

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// A session for `name` made directly in the database, as a successful login would.
fn session(server: &TestServer, name: &str) -> sign_in::NewSession {
    server
        .running()
        .state
        .db()
        .write(|sql| {
            let id = fieldcase_server::office::users::user_id_by_name(sql, name)?;
            sign_in::create_session(sql, id, now())
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

/// A request with extra headers; returns status, `Set-Cookie` values are not exposed by the
/// transport, so the body is what tests look at.
fn send(
    server: &TestServer,
    method: &str,
    path: &str,
    token: &str,
    body: &str,
    extra: &[(&str, &str)],
) -> (u16, String) {
    let client = Client::new(&server.running().url(), server.fingerprint()).unwrap();
    let mut headers = vec![
        ("cookie".into(), format!("{}={token}", auth::SESSION_COOKIE)),
        (
            "content-type".into(),
            "application/x-www-form-urlencoded".into(),
        ),
    ];
    headers.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let response = client
        .send(&RawRequest {
            method: method.into(),
            path: path.into(),
            headers,
            body: body.as_bytes().to_vec(),
        })
        .unwrap();
    (
        response.status,
        String::from_utf8_lossy(&response.body).into_owned(),
    )
}

fn page(server: &TestServer, path: &str, token: &str) -> String {
    let (status, body) = send(server, "GET", path, token, "", &[]);
    assert_eq!(status, 200, "{path}: {body}");
    body
}

fn device_status(server: &TestServer, id: &str) -> String {
    server.with_sql(|c| {
        c.query_row("SELECT status FROM devices WHERE id = ?1", sql_params![id])?
            .get(0)
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
    for page in [
        "/cases",
        "/devices",
        "/quarantine",
        "/teams",
        "/users",
        "/audit",
    ] {
        assert_eq!(get(&server, page, &ana.token), 403, "{page}");
        assert_eq!(get(&server, page, &admin.token), 200, "{page}");
        // No session: to the login page.
        assert_eq!(get(&server, page, "nope"), 303, "{page}");
    }
    for (page, status) in [
        ("/cases", 200),
        ("/tasks", 200),
        ("/conflicts", 200),
        ("/quarantine", 200),
        ("/devices", 403),
        ("/teams", 403),
        ("/users", 403),
        ("/audit", 403),
    ] {
        assert_eq!(get(&server, page, &marija.token), status, "{page}");
    }
}

#[test]
fn sessions_expire_when_idle_and_end_at_logout() {
    let server = TestServer::start();
    server.add_web_user("marija", Role::CaseManager, PASSWORD);
    let s = session(&server, "marija");
    assert_eq!(get(&server, "/cases", &s.token), 200);
    server.with_sql(|c| {
        c.execute(
            "UPDATE web_sessions SET last_seen = last_seen - ?1",
            sql_params![sign_in::IDLE_TIMEOUT_SECS + 1],
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
    let stored: i64 = server.with_sql(|c| {
        c.query_row(
            "SELECT count(*) FROM web_sessions WHERE token_hash = ?1",
            sql_params![s.token.as_bytes()],
        )?
        .get(0)
    });
    assert_eq!(stored, 0);
}

#[test]
fn login_attempts_are_rate_limited_by_name_and_address_and_passwords_hashed_with_argon2id() {
    let server = TestServer::start();
    server.add_web_user("marija", Role::CaseManager, PASSWORD);
    let db = server.running().state.db();
    let key = [7u8; 32];
    let t0 = now();
    // One attempt as the page makes it: limits and a provisional failure in one transaction,
    // the password checked outside it, the outcome in a second one.
    let attempt = |name: &str, password: &str, ip: &str, at: i64| {
        let begun = db
            .write(|c| sign_in::begin_login(c, &key, ip, name, at))
            .unwrap();
        let attempt = begun?;
        let ok = sign_in::check_password(&attempt, password);
        db.write(|c| sign_in::finish_login(c, attempt, ok, at))
            .unwrap()
            .map(|_| ())
    };
    assert!(attempt("marija", PASSWORD, "10.0.0.1", t0).is_ok());
    // Each failure makes the name wait longer from that address: 1, 2, 4, 8 s.
    let mut at = t0;
    for n in 0..sign_in::FAILURES_PER_NAME_AND_ADDRESS {
        assert_eq!(
            attempt("marija", "wrong password", "10.0.0.1", at).err(),
            Some(LoginRefusal::BadCredentials),
            "failure {n}"
        );
        if n < sign_in::FAILURES_PER_NAME_AND_ADDRESS - 1 {
            // Too soon after it: refused without a password check.
            assert_eq!(
                attempt("marija", PASSWORD, "10.0.0.1", at).err(),
                Some(LoginRefusal::TooManyAttempts)
            );
        }
        at += 1 << n;
    }
    // Locked for this name from this address, even with the right password...
    assert_eq!(
        attempt("Marija ", PASSWORD, "10.0.0.1", at + 60).err(),
        Some(LoginRefusal::TooManyAttempts)
    );
    // ...but someone failing on purpose elsewhere does not lock her out.
    assert!(attempt("marija", PASSWORD, "10.0.0.2", at + 60).is_ok());
    // A success clears the failures of that name from that address.
    assert!(attempt("marija", "wrong password", "10.0.0.3", at).is_err());
    assert!(attempt("marija", PASSWORD, "10.0.0.3", at + 1).is_ok());
    let left: i64 = server.with_sql(|c| {
        c.query_row(
            "SELECT count(*) FROM web_login_failures WHERE ip = '10.0.0.3'",
            &[],
        )?
        .get(0)
    });
    assert_eq!(left, 0);

    // What was typed into the name field is never stored as typed.
    let typed = "my-secret-password-typed-as-name";
    assert!(attempt(typed, "x", "10.0.0.4", at).is_err());
    let names: Vec<String> = server.with_sql(|c| {
        c.query_all("SELECT name FROM web_login_failures", &[])?
            .iter()
            .map(|r| r.get(0))
            .collect()
    });
    assert!(!names.is_empty());
    assert!(
        names
            .iter()
            .all(|n| !n.contains("secret") && !n.contains("marija"))
    );

    let hash: String = server.with_sql(|c| {
        c.query_row("SELECT password_hash FROM web_logins", &[])?
            .get(0)
    });
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
fn the_cases_team_reads_and_releases_a_quarantined_upload_and_an_admin_off_the_team_only_sees_it_wait()
 {
    let server = TestServer::start();
    let ana = server.add_user("ana", Role::FieldWorker);
    server.add_web_user("admin", Role::Admin, PASSWORD);
    server.add_web_user("marija", Role::CaseManager, PASSWORD);
    let (case, _) = server.create_case("K-9", &[ana]);
    let phone = TestDevice::enroll_direct(&server, "ana");
    phone.device.sync_now().unwrap();
    phone.write_note(case, "Written after the phone was lost.");
    server.revoke(phone.id());
    assert!(phone.device.sync_now().is_err());
    let held: Vec<String> = server.with_sql(|c| {
        c.query_all("SELECT id FROM quarantine", &[])?
            .iter()
            .map(|r| r.get(0))
            .collect()
    });
    assert_eq!(held.len(), 1);
    let id = &held[0];
    let admin = session(&server, "admin");
    let listed = page(&server, "/quarantine", &admin.token);
    assert!(listed.contains(&format!("/quarantine/{id}")), "{listed}");
    let (status, shown) = send(
        &server,
        "GET",
        &format!("/quarantine/{id}"),
        &admin.token,
        "",
        &[],
    );
    assert_eq!(status, 403);
    assert!(!shown.contains("Written after the phone was lost."));
    let release = format!("/quarantine/{id}/release");
    assert_eq!(
        post(
            &server,
            &release,
            &admin.token,
            &format!("csrf={}", admin.csrf)
        ),
        403,
        "an admin off the case's team decides nothing about its content"
    );
    let s = session(&server, "marija");
    let shown = page(&server, &format!("/quarantine/{id}"), &s.token);
    assert!(shown.contains("Written after the phone was lost."));
    assert_eq!(reads(&server, case, "case_read_quarantine"), 1);
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

/// How many audit entries of `action` name `case`.
fn reads(server: &TestServer, case: fieldcase_core::ids::CaseId, action: &str) -> i64 {
    server.with_sql(|c| {
        c.query_row(
            "SELECT COUNT(*) FROM audit_log WHERE action = ?1 AND detail = ?2",
            sql_params![action, &case.to_string()],
        )?
        .get(0)
    })
}

#[test]
fn every_read_of_a_case_at_the_office_is_audited_and_an_unchanged_timeline_reads_nothing() {
    let server = TestServer::start();
    let ana = server.add_user("ana", Role::FieldWorker);
    server.add_web_user("marija", Role::CaseManager, PASSWORD);
    let (case, _) = server.create_case("K-AUDIT", &[ana]);
    let marija = session(&server, "marija");
    assert_eq!(get(&server, &format!("/cases/{case}"), &marija.token), 200);
    assert_eq!(reads(&server, case, "case_read"), 1);
    // The fragment the open page fetches is a read too.
    let fragment = page(&server, &format!("/cases/{case}/timeline"), &marija.token);
    assert_eq!(reads(&server, case, "case_read_timeline"), 1);
    let seq = fragment
        .split("data-seq=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the fragment names the change it shows")
        .to_owned();
    // Asked again with nothing changed since: no content, nothing read, nothing audited.
    let since = format!("/cases/{case}/timeline?since={seq}");
    let (status, body) = send(&server, "GET", &since, &marija.token, "", &[]);
    assert_eq!((status, body.as_str()), (204, ""));
    assert_eq!(reads(&server, case, "case_read_timeline"), 1);
    // Once the case changed, the same request reads (and is audited).
    let phone = TestDevice::enroll_direct(&server, "ana");
    phone.device.sync_now().unwrap();
    phone.write_note(case, "A new note");
    phone.device.sync_now().unwrap();
    let (status, body) = send(&server, "GET", &since, &marija.token, "", &[]);
    assert_eq!(status, 200);
    assert!(body.contains("A new note"));
    assert_eq!(reads(&server, case, "case_read_timeline"), 2);
    // The lists write one entry per view.
    let lists = |server: &TestServer| -> i64 {
        server.with_sql(|c| {
            c.query_row(
                "SELECT COUNT(*) FROM audit_log WHERE action = 'case_list_read'",
                &[],
            )?
            .get(0)
        })
    };
    assert_eq!(get(&server, "/cases", &marija.token), 200);
    assert_eq!(get(&server, "/tasks", &marija.token), 200);
    assert_eq!(lists(&server), 2);
    // A field worker's attempt is refused and reads nothing.
    server.add_web_user("ana2", Role::FieldWorker, PASSWORD);
    let worker = session(&server, "ana2");
    assert_eq!(get(&server, &format!("/cases/{case}"), &worker.token), 403);
    assert_eq!(
        get(&server, &format!("/cases/{case}/events"), &worker.token),
        403,
        "nor does the live-update stream open for them"
    );
    assert_eq!(reads(&server, case, "case_read"), 1);
}

/// The form planning a task, under `s`'s CSRF token.
fn task_form(s: &sign_in::NewSession) -> String {
    format!(
        "csrf={}&purpose=x&office_kind=police&office_name=y&date=2026-12-24&time=10:00",
        s.csrf
    )
}

/// Two teams, each with a case manager and a case; an admin on no team.
struct TwoTeams {
    server: TestServer,
    north_case: fieldcase_core::ids::CaseId,
    south_case: fieldcase_core::ids::CaseId,
}

fn two_teams() -> TwoTeams {
    use fieldcase_server::office::teams;
    let server = TestServer::start();
    let ana = server.add_user("ana", Role::FieldWorker);
    let mira = server.add_web_user("mira", Role::CaseManager, PASSWORD);
    server.add_web_user("sanja", Role::CaseManager, PASSWORD);
    server.add_web_user("boss", Role::Admin, PASSWORD);
    let (north_case, _) = server.create_case("K-NORTH", &[ana]);
    let (south_case, _) = server.create_case("K-SOUTH", &[ana]);
    let mira = *mira.as_uuid();
    server
        .running()
        .state
        .db()
        .write(|sql| {
            let south = teams::create_team(sql, "South", now())?;
            teams::move_case(
                sql,
                server.running().state.vault(),
                south_case,
                south,
                None,
                now(),
            )?;
            teams::set_member(sql, teams::DEFAULT_TEAM, mira, false, now())?;
            teams::set_member(sql, south, mira, true, now())
        })
        .unwrap();
    TwoTeams {
        server,
        north_case,
        south_case,
    }
}

#[test]
fn a_case_manager_sees_her_teams_cases_and_nothing_else_by_any_path() {
    let TwoTeams {
        server,
        north_case,
        south_case,
    } = two_teams();
    let mira = session(&server, "mira");
    let sanja = session(&server, "sanja");
    let cases = page(&server, "/cases", &mira.token);
    assert!(
        cases.contains("K-SOUTH") && !cases.contains("K-NORTH"),
        "{cases}"
    );
    let cases = page(&server, "/cases", &sanja.token);
    assert!(
        cases.contains("K-NORTH") && !cases.contains("K-SOUTH"),
        "{cases}"
    );
    let tasks = page(&server, "/tasks", &mira.token);
    assert!(
        tasks.contains("K-SOUTH") && !tasks.contains("K-NORTH"),
        "{tasks}"
    );
    // The other team's case: the page, its fragment, its stream and its changes are refused.
    let (status, body) = send(
        &server,
        "GET",
        &format!("/cases/{north_case}"),
        &mira.token,
        "",
        &[],
    );
    assert_eq!(status, 403);
    assert!(!body.contains("K-NORTH") && !body.contains("ID card application"));
    assert!(
        body.contains("break-glass"),
        "the refusal offers a break-glass read: {body}"
    );
    for path in [
        format!("/cases/{north_case}/timeline"),
        format!("/cases/{north_case}/events"),
    ] {
        assert_eq!(get(&server, &path, &mira.token), 403, "{path}");
    }
    let task = task_form(&mira);
    assert_eq!(
        post(
            &server,
            &format!("/cases/{north_case}/tasks"),
            &mira.token,
            &task
        ),
        403
    );
    assert_eq!(server.case(north_case).tasks.len(), 1, "no task was added");
    assert_eq!(
        post(
            &server,
            &format!("/cases/{south_case}/tasks"),
            &mira.token,
            &task
        ),
        303
    );
    assert_eq!(reads(&server, north_case, "case_read"), 0);
    // The admin manages people and devices and reads no case.
    let boss = session(&server, "boss");
    let cases = page(&server, "/cases", &boss.token);
    assert!(
        !cases.contains("K-NORTH") && !cases.contains("K-SOUTH"),
        "{cases}"
    );
    assert_eq!(
        get(&server, &format!("/cases/{south_case}"), &boss.token),
        403
    );
    let teams = page(&server, "/teams", &boss.token);
    assert!(teams.contains("South") && teams.contains("mira"), "{teams}");
}

#[test]
fn a_break_glass_read_needs_a_reason_is_audited_shown_to_the_team_read_only_and_ends() {
    let TwoTeams {
        server, north_case, ..
    } = two_teams();
    let mira = session(&server, "mira");
    let open = format!("/cases/{north_case}/break-glass");
    assert_eq!(
        post(
            &server,
            &open,
            &mira.token,
            &format!("csrf={}&reason=because", mira.csrf)
        ),
        400,
        "a reason of a few letters says nothing"
    );
    assert_eq!(
        post(
            &server,
            &open,
            &mira.token,
            "reason=the+client+is+here+at+night"
        ),
        403
    );
    let reason = "the client came to the night shelter; her team is not reachable";
    let form = format!(
        "csrf={}&reason={}",
        mira.csrf,
        reason.replace(' ', "+").replace(';', "%3B")
    );
    assert_eq!(post(&server, &open, &mira.token, &form), 303);
    let shown = page(&server, &format!("/cases/{north_case}"), &mira.token);
    assert!(
        shown.contains("K-NORTH") && shown.contains("break-glass-open"),
        "{shown}"
    );
    assert!(
        !shown.contains("create-task"),
        "a break-glass read offers no changes"
    );
    assert_eq!(reads(&server, north_case, "case_break_glass"), 1);
    assert_eq!(reads(&server, north_case, "case_read"), 1);
    // Read only.
    let task = task_form(&mira);
    assert_eq!(
        post(
            &server,
            &format!("/cases/{north_case}/tasks"),
            &mira.token,
            &task
        ),
        403
    );
    // The team sees who read it and why.
    let sanja = session(&server, "sanja");
    let team_view = page(&server, &format!("/cases/{north_case}"), &sanja.token);
    assert!(
        team_view.contains("break-glass-reads") && team_view.contains(reason),
        "{team_view}"
    );
    assert!(team_view.contains("mira"));
    // Once its time is over, the case is closed to her again.
    server.with_sql(|c| c.execute("UPDATE break_glass SET until = until - 3600", &[]));
    assert_eq!(
        get(&server, &format!("/cases/{north_case}"), &mira.token),
        403
    );
    assert_eq!(
        get(
            &server,
            &format!("/cases/{north_case}/timeline"),
            &mira.token
        ),
        403
    );
}

fn audit_count(server: &TestServer, action: &str, user: Option<&str>) -> i64 {
    server.with_sql(|c| {
        c.query_row(
            "SELECT count(*) FROM audit_log WHERE action = ?1 AND (CAST(?2 AS TEXT) IS NULL OR user_id = ?2)",
            sql_params![action, user],
        )?
        .get(0)
    })
}

/// Form-encodes `pairs`.
fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| {
            let enc: String = v
                .bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                        (b as char).to_string()
                    }
                    _ => format!("%{b:02X}"),
                })
                .collect();
            format!("{k}={enc}")
        })
        .collect::<Vec<_>>()
        .join("&")
}

#[test]
fn concurrent_consent_changes_wait_in_the_inbox_until_a_case_manager_picks_one_for_every_phone() {
    use fieldcase_core::model::{CaseUpdate, ConsentStatus, RiskLevel};

    let server = TestServer::start();
    let ana = server.add_user("ana", Role::FieldWorker);
    let bojan = server.add_user("bojan", Role::FieldWorker);
    let marija_id = server.add_web_user("marija", Role::CaseManager, PASSWORD);
    let (case, _) = server.create_case("K-0142", &[ana, bojan]);
    let a = TestDevice::enroll_direct(&server, "ana");
    let b = TestDevice::enroll_direct(&server, "bojan");
    a.device.sync_now().unwrap();
    let note = a.write_note(case, "Met the client at the centre.");
    a.device.sync_now().unwrap();
    b.device.sync_now().unwrap();

    // Offline, each phone records a different consent, and both edit the same note.
    let consent = |c| CaseUpdate {
        consent: Some(c),
        ..Default::default()
    };
    a.device
        .store()
        .update_case(case, &consent(ConsentStatus::Withdrawn))
        .unwrap();
    b.device
        .store()
        .update_case(case, &consent(ConsentStatus::Pending))
        .unwrap();
    a.device
        .store()
        .edit_note(case, note, "Early: met the client at the centre.")
        .unwrap();
    b.device
        .store()
        .edit_note(case, note, "Met the client at the centre. She is safe.")
        .unwrap();
    for phone in [&a, &b, &a] {
        phone.device.sync_now().unwrap();
    }

    // The note merged by itself; only the consent waits for a person.
    let merged = "Early: met the client at the centre. She is safe.";
    assert_eq!(server.case(case).notes[0].body, merged);
    let waiting = server.conflicts(case);
    assert_eq!(waiting.len(), 1, "{waiting:?}");
    assert_eq!(
        (waiting[0].field.as_str(), waiting[0].task),
        ("consent", None)
    );
    assert!(waiting[0].values.iter().all(|v| v.at.is_some()));

    let s = session(&server, "marija");
    let inbox = page(&server, "/conflicts", &s.token);
    for needle in ["K-0142", "withdrawn", "pending", "ana", "bojan"] {
        assert!(
            inbox.contains(needle),
            "{needle} missing from the inbox: {inbox}"
        );
    }
    for phone in [&a, &b] {
        let device = phone.id().to_string();
        let short = &device[device.len() - 8..];
        assert!(inbox.contains(short), "device {short} missing: {inbox}");
    }
    assert!(!inbox.contains(merged), "notes do not enter the inbox");

    // The decision needs the session's CSRF token; then it is written and audited.
    let path = format!("/cases/{case}/resolve");
    let decide = form(&[
        ("csrf", &s.csrf),
        ("field", "consent"),
        ("value", "pending"),
    ]);
    let no_token = form(&[("field", "consent"), ("value", "pending")]);
    assert_eq!(
        send(&server, "POST", &path, &s.token, &no_token, &[]).0,
        403
    );
    assert_eq!(server.conflicts(case).len(), 1);
    assert_eq!(send(&server, "POST", &path, &s.token, &decide, &[]).0, 303);
    assert!(server.conflicts(case).is_empty());
    assert_eq!(server.case(case).consent, ConsentStatus::Pending);
    assert_eq!(
        audit_count(&server, "conflict_resolved", Some(&marija_id.to_string())),
        1
    );
    // A second decision on the same field finds nothing to decide.
    assert_eq!(send(&server, "POST", &path, &s.token, &decide, &[]).0, 409);
    assert!(page(&server, "/conflicts", &s.token).contains("no-conflicts"));

    // Both phones take the decision at their next sync and hold no conflict any more.
    for phone in [&a, &b] {
        phone.device.sync_now().unwrap();
        let on_phone = phone.case(case);
        assert_eq!(on_phone.consent, ConsentStatus::Pending);
        assert_eq!(on_phone.notes[0].body, merged);
        assert!(phone.device.store().conflicts(case).unwrap().is_empty());
    }

    // The same operation through the signed admin API, for a risk-level conflict.
    a.device
        .store()
        .update_case(
            case,
            &CaseUpdate {
                risk_level: Some(RiskLevel::High),
                ..Default::default()
            },
        )
        .unwrap();
    b.device
        .store()
        .update_case(
            case,
            &CaseUpdate {
                risk_level: Some(RiskLevel::Low),
                ..Default::default()
            },
        )
        .unwrap();
    a.device.sync_now().unwrap();
    b.device.sync_now().unwrap();
    let office_admin = server.add_user("office-admin", Role::Admin);
    let api = admin_client(&server, "office-admin");
    server.sign_in_on_the_web(office_admin);
    // Off the case's team, the inbox holds nothing for her.
    let listed: serde_json::Value =
        serde_json::from_slice(&api.get("/v1/admin/conflicts").unwrap()).unwrap();
    assert_eq!(listed, serde_json::json!([]));
    server.join_default_team(office_admin);
    let listed: serde_json::Value =
        serde_json::from_slice(&api.get("/v1/admin/conflicts").unwrap()).unwrap();
    let fields: Vec<&str> = listed[0]["conflicts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["risk_level"]);
    let values = listed[0]["conflicts"][0]["values"].as_array().unwrap();
    assert!(
        values
            .iter()
            .all(|v| v["author_device"].is_string() && v["at"].is_string())
    );
    let resolve = format!("/v1/admin/cases/{case}/resolve");
    assert!(
        api.post(&resolve, br#"{"field": "risk_level", "value": "extreme"}"#)
            .is_err(),
        "a value the field does not take is refused"
    );
    api.post(&resolve, br#"{"field": "risk_level", "value": "medium"}"#)
        .unwrap();
    for phone in [&a, &b] {
        phone.device.sync_now().unwrap();
        assert_eq!(phone.case(case).risk_level, RiskLevel::Medium);
        assert!(phone.device.store().conflicts(case).unwrap().is_empty());
    }
}

/// A device of an admin, talking to the admin API with signed requests.
fn admin_client(server: &TestServer, name: &str) -> fieldcase_core::transport::DeviceClient {
    use fieldcase_core::transport::{DeviceClient, DeviceCredential, enroll};
    let url = format!("https://{}", server.addr());
    let key = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
    let enrolled = enroll(
        &url,
        server.fingerprint(),
        &server.enrollment_code(name),
        &key,
    )
    .unwrap();
    DeviceClient::new(
        Client::new(&url, server.fingerprint()).unwrap(),
        DeviceCredential::new(enrolled.device_id, key),
    )
}

#[test]
fn a_demoted_admin_can_no_longer_open_admin_pages() {
    let server = TestServer::start();
    let dragan = server.add_web_user("dragan", Role::Admin, PASSWORD);
    server.add_web_user("vesna", Role::Admin, PASSWORD);
    let vesna = session(&server, "vesna");
    let dragan_session = session(&server, "dragan");
    assert_eq!(get(&server, "/devices", &dragan_session.token), 200);
    assert!(page(&server, "/users", &vesna.token).contains(&format!("/users/{dragan}/role")));

    let path = format!("/users/{dragan}/role");
    assert_eq!(
        post(&server, &path, &vesna.token, "role=case-manager"),
        403,
        "no CSRF token"
    );
    assert_eq!(
        post(
            &server,
            &path,
            &vesna.token,
            &format!("csrf={}&role=case-manager", vesna.csrf)
        ),
        303
    );
    // At once, on the session dragan already had.
    assert_eq!(get(&server, "/devices", &dragan_session.token), 403);
    assert_eq!(get(&server, "/users", &dragan_session.token), 403);
    assert_eq!(get(&server, "/cases", &dragan_session.token), 200);
    assert_eq!(
        audit_count(&server, "user_role_changed", Some(&dragan.to_string())),
        1
    );

    // The last active admin keeps the role.
    let refused = server.running().state.db().write(|c| {
        fieldcase_server::office::users::change_role(c, "vesna", Role::FieldWorker, now())
    });
    assert!(
        matches!(refused, Err(fieldcase_server::ServerError::LastAdmin)),
        "{refused:?}"
    );
    assert_eq!(get(&server, "/users", &vesna.token), 200);
}

/// The text of the `<output id=ID>` element of a page.
fn output_text<'a>(body: &'a str, id: &str) -> &'a str {
    let marker = format!("id=\"{id}\">");
    let start = body.find(&marker).unwrap() + marker.len();
    &body[start..start + body[start..].find('<').unwrap()]
}

#[test]
fn the_enrollment_page_shows_an_invite_a_phone_enrolls_with_and_nothing_typed() {
    let server = TestServer::start();
    let ana = server.add_user("ana", Role::FieldWorker);
    server.add_web_user("admin", Role::Admin, PASSWORD);
    let s = session(&server, "admin");
    let issue = || {
        let (status, body) = send(
            &server,
            "POST",
            &format!("/users/{ana}/code"),
            &s.token,
            &format!("csrf={}", s.csrf),
            &[],
        );
        assert_eq!(status, 200, "{body}");
        body
    };
    // No public_url configured: the address the admin's browser reached.
    let body = issue();
    let invite = output_text(&body, "enrollment-invite").to_owned();
    let parsed = fieldcase_core::protocol::EnrollmentInvite::parse(&invite).unwrap();
    assert_eq!(parsed.url, format!("https://{}", server.addr()));
    assert_eq!(parsed.pin, server.fingerprint());
    assert_eq!(parsed.display_code(), output_text(&body, "enrollment-code"));
    let dir = tempfile::tempdir().unwrap();
    let keys = fieldcase_core::crypto::StaticKeyProvider::random();
    let phone = fieldcase_core::device::Device::enroll_with_invite(
        dir.path(),
        &invite,
        fieldcase_core::store::KeySetup {
            keystore: Some(&keys),
            passphrase: None,
        },
        fieldcase_tests::device_options(&std::sync::Arc::new(
            fieldcase_core::clock::ManualClock::new(time::OffsetDateTime::now_utc()),
        )),
    )
    .unwrap();
    assert!(phone.key_fingerprint().is_ok());

    // With public_url set, the invite carries it, whatever the browser reached.
    server
        .running()
        .state
        .set_public_url("https://office.lan:8443");
    let body = issue();
    let parsed =
        fieldcase_core::protocol::EnrollmentInvite::parse(output_text(&body, "enrollment-invite"))
            .unwrap();
    assert_eq!(parsed.url, "https://office.lan:8443");
}

#[test]
fn an_enrollment_code_is_shown_as_text_and_as_an_inline_qr_code() {
    let server = TestServer::start();
    let ana = server.add_user("ana", Role::FieldWorker);
    server.add_web_user("admin", Role::Admin, PASSWORD);
    let s = session(&server, "admin");
    let (status, body) = send(
        &server,
        "POST",
        &format!("/users/{ana}/code"),
        &s.token,
        &format!("csrf={}", s.csrf),
        &[],
    );
    assert_eq!(status, 200, "{body}");
    let start = body.find("id=\"enrollment-code\">").unwrap() + "id=\"enrollment-code\">".len();
    let code = &body[start..start + body[start..].find('<').unwrap()];
    assert_eq!(code.len(), 19, "XXXX-XXXX-XXXX-XXXX: {code}");
    let qr = &body[body.find("id=\"enrollment-qr\"").unwrap()..];
    assert!(qr.contains("<svg") && qr.contains("<path"), "{qr}");
    assert!(!body.contains("<?xml"), "the SVG is inline HTML");
    // Nothing on the page is fetched from elsewhere (the SVG namespace is a name, not a fetch).
    for attr in ["src=\"http", "href=\"http", "url(http"] {
        assert!(!body.contains(attr), "{attr}: {body}");
    }
}

#[test]
fn the_login_and_error_pages_speak_the_visitors_language() {
    let server = TestServer::start();
    server.add_web_user("ana", Role::FieldWorker, PASSWORD);
    let (status, body) = send(&server, "GET", "/login?lang=sr-Cyrl", "", "", &[]);
    assert_eq!(status, 200);
    assert!(body.contains("lang=\"sr-Cyrl\""), "{body}");
    for text in ["Пријава", "Корисничко име", "Лозинка"] {
        assert!(body.contains(text), "{text}: {body}");
    }
    // Without a choice, the browser's language.
    let (_, body) = send(
        &server,
        "GET",
        "/login",
        "",
        "",
        &[("accept-language", "sr-Latn-RS,en;q=0.5")],
    );
    assert!(body.contains("Korisničko ime"), "{body}");
    let (_, body) = send(
        &server,
        "GET",
        "/login",
        "",
        "",
        &[("accept-language", "de-DE")],
    );
    assert!(body.contains("User name"), "{body}");
    // A refused login form (no double-submit token) in the browser's language.
    let (status, body) = send(
        &server,
        "POST",
        "/login",
        "",
        "name=ana&password=x",
        &[("accept-language", "sr")],
    );
    assert_eq!(status, 403);
    assert!(body.contains("безбедносни токен"), "{body}");

    // A signed-in user's own choice wins over the browser's.
    let s = session(&server, "ana");
    assert_eq!(
        post(
            &server,
            "/lang",
            &s.token,
            &format!("csrf={}&lang=sr-Cyrl", s.csrf)
        ),
        303
    );
    let (status, body) = send(
        &server,
        "GET",
        "/devices",
        &s.token,
        "",
        &[("accept-language", "en")],
    );
    assert_eq!(status, 403);
    assert!(body.contains("403 Забрањено"), "{body}");
    let (status, body) = send(&server, "GET", "/cases/not-a-case", &s.token, "", &[]);
    assert_eq!(
        status, 403,
        "a field worker is refused before the lookup: {body}"
    );
    server.add_web_user("marija", Role::CaseManager, PASSWORD);
    let m = session(&server, "marija");
    assert_eq!(
        post(
            &server,
            "/lang",
            &m.token,
            &format!("csrf={}&lang=sr-Latn", m.csrf)
        ),
        303
    );
    let (status, body) = send(&server, "GET", "/cases/not-a-case", &m.token, "", &[]);
    assert_eq!(status, 404);
    assert!(body.contains("404 Nije pronađeno"), "{body}");
}

#[test]
fn the_live_stream_ends_with_its_session_and_background_requests_do_not_keep_a_page_signed_in() {
    use fieldcase_tests::rawhttp::{RawAnswer, RawConnection, request};
    use std::time::Duration;

    let server = TestServer::start();
    let ana = server.add_user("ana", Role::FieldWorker);
    server.add_web_user("marija", Role::CaseManager, PASSWORD);
    let (case, _) = server.create_case("K-LIVE", &[ana]);
    let marija = session(&server, "marija");
    let cookie = format!("{}={}", auth::SESSION_COOKIE, marija.token).into_bytes();

    // The stream opens for a live session, then the case manager signs out.
    let mut stream = RawConnection::connect(server.addr(), server.fingerprint());
    stream.send(&request(
        "GET",
        &format!("/cases/{case}/events"),
        &[
            ("cookie", cookie.clone()),
            ("accept", b"text/event-stream".to_vec()),
        ],
        b"",
    ));
    std::thread::sleep(Duration::from_millis(300));
    server.with_sql(|c| {
        sign_in::end_session(c, &marija.token, now())
            .map_err(|_| fieldcase_server::error::SqlError::Refused("ending the session failed"))
    });
    // A change to the case after the logout reaches nobody: the stream ends instead.
    let state = &server.running().state;
    let vault = state.vault().clone();
    state
        .db()
        .write(|c| {
            fieldcase_server::office::cases::set_status(
                c,
                &vault,
                case,
                fieldcase_core::model::CaseStatus::OnHold,
                now(),
            )
        })
        .unwrap()
        .keep(&vault);
    match stream.read_answer(Duration::from_secs(30)) {
        RawAnswer::Response { status, body } => {
            assert_eq!(status, 200);
            let body = String::from_utf8_lossy(&body);
            assert!(!body.contains("event: changed"), "{body}");
        }
        RawAnswer::Closed => panic!("the stream was still open 30 s after the logout"),
    }

    // A page left open: its own requests do not count as activity.
    let s = session(&server, "marija");
    let long_ago = now() - 25 * 60;
    let last_seen = |server: &TestServer| -> i64 {
        server.with_sql(|c| {
            c.query_row("SELECT max(last_seen) FROM web_sessions", &[])?
                .get(0)
        })
    };
    server.with_sql(|c| {
        c.execute(
            "UPDATE web_sessions SET last_seen = ?1",
            sql_params![long_ago],
        )?;
        Ok(())
    });
    let timeline = format!("/cases/{case}/timeline");
    let (status, _) = send(
        &server,
        "GET",
        &timeline,
        &s.token,
        "",
        &[(auth::BACKGROUND_HEADER, "1")],
    );
    assert_eq!(status, 200);
    assert_eq!(
        last_seen(&server),
        long_ago,
        "a background poll refreshed the session"
    );
    // What the person does still does.
    assert_eq!(get(&server, &timeline, &s.token), 200);
    assert!(last_seen(&server) > long_ago);
}

#[test]
fn signing_in_again_ends_the_session_the_browser_held_before() {
    let server = TestServer::start();
    server.add_web_user("ana", Role::FieldWorker, PASSWORD);
    let older = session(&server, "ana");
    assert_eq!(get(&server, "/", &older.token), 200);
    let login_token = "a-login-form-token-of-this-browser";
    let (status, _) = send(
        &server,
        "POST",
        "/login",
        &older.token,
        &format!("csrf={login_token}&name=ana&password={PASSWORD}"),
        &[("cookie", &format!("{}={login_token}", auth::LOGIN_COOKIE))],
    );
    assert_eq!(status, 303);
    // The session the browser held before is gone; only the new one is left.
    assert_eq!(get(&server, "/", &older.token), 303);
    let sessions: i64 = server.with_sql(|c| {
        c.query_row("SELECT count(*) FROM web_sessions", &[])?
            .get(0)
    });
    assert_eq!(sessions, 1);
}

#[test]
fn a_colleagues_edit_of_a_note_reaches_the_office_shown_with_its_editor() {
    let server = TestServer::start();
    let ana = server.add_user("ana", Role::FieldWorker);
    let bojan = server.add_user("bojan", Role::FieldWorker);
    server.add_web_user("marija", Role::CaseManager, PASSWORD);
    let (case, _) = server.create_case("K-EDIT", &[ana, bojan]);
    let ana_phone = TestDevice::enroll_direct(&server, "ana");
    let bojan_phone = TestDevice::enroll_direct(&server, "bojan");
    ana_phone.device.sync_now().unwrap();
    let note = ana_phone.write_note(case, "Statement given at the police station.");
    ana_phone.device.sync_now().unwrap();
    bojan_phone.device.sync_now().unwrap();
    bojan_phone
        .device
        .store()
        .edit_note(
            case,
            note,
            "Statement given at the police station; the interpreter came late.",
        )
        .unwrap();
    bojan_phone.device.sync_now().unwrap();
    let at_office = server.case(case);
    assert_eq!(
        at_office.notes[0].body,
        "Statement given at the police station; the interpreter came late."
    );
    assert_eq!(at_office.notes[0].author.user, ana);
    assert_eq!(at_office.notes[0].edited_by[0].user, bojan);
    let marija = session(&server, "marija");
    let shown = page(&server, &format!("/cases/{case}"), &marija.token);
    let edited = shown
        .split("class=\"edited-by\"")
        .nth(1)
        .expect("the page says the note was edited");
    assert!(
        edited.split("</span>").next().unwrap().contains("bojan"),
        "{shown}"
    );
}

#[test]
fn a_phone_syncs_only_once_an_admin_confirms_the_key_fingerprint_it_shows() {
    use fieldcase_core::CoreError;
    use fieldcase_core::transport::TransportError;
    let server = TestServer::start_adjusted(None, |l| l.confirm_enrollment = true);
    let ana = server.add_user("ana", Role::FieldWorker);
    server.add_web_user("admin", Role::Admin, PASSWORD);
    let (case, _) = server.create_case("K-CONFIRM", &[ana]);
    let phone = TestDevice::enroll_direct(&server, "ana");
    let unconfirmed = |phone: &TestDevice| {
        matches!(
            phone.device.sync_now(),
            Err(CoreError::Network(TransportError::Http { status: 403, ref code, .. }))
                if code == "device_unconfirmed"
        )
    };
    assert!(unconfirmed(&phone), "an unconfirmed phone synced");
    let admin = session(&server, "admin");
    let devices = page(&server, "/devices", &admin.token);
    let shown = phone.device.key_fingerprint().unwrap();
    assert!(devices.contains(&shown), "{devices}");
    let confirm = format!("/devices/{}/confirm", phone.id());
    // A fingerprint that is not the phone's is refused and confirms nothing.
    let wrong = format!("csrf={}&fingerprint=0000-0000-0000-0000", admin.csrf);
    assert_eq!(post(&server, &confirm, &admin.token, &wrong), 409);
    assert!(unconfirmed(&phone));
    let right = format!("csrf={}&fingerprint={shown}", admin.csrf);
    assert_eq!(post(&server, &confirm, &admin.token, &right), 303);
    phone.device.sync_now().unwrap();
    assert_eq!(phone.case(case).client_code, "K-CONFIRM");
    assert_eq!(audit_count(&server, "device_confirmed", None), 1);
}

/// The case's life through the pages: only people of the case's team open, plan, close and
/// erase it, closing needs a reason, each step is audited with who took it.
#[test]
fn only_the_cases_team_opens_plans_closes_and_erases_a_case_each_step_audited() {
    let TwoTeams {
        server,
        north_case,
        south_case,
    } = two_teams();
    server.add_web_user("fw", Role::FieldWorker, PASSWORD);
    let (mira, fw) = (session(&server, "mira"), session(&server, "fw"));
    let mira_id = mira.user_id.to_string();
    let south: String = server.with_sql(|c| {
        c.query_row("SELECT id FROM teams WHERE name = 'South'", &[])?
            .get(0)
    });
    let default_team = fieldcase_server::office::teams::DEFAULT_TEAM.to_string();
    let ana: String = server.with_sql(|c| {
        c.query_row("SELECT id FROM users WHERE name = 'ana'", &[])?
            .get(0)
    });

    // Intake: on her own team only; a field worker gets no intake page at all.
    assert_eq!(get(&server, "/cases/new", &fw.token), 403);
    assert_eq!(get(&server, "/cases/new", &mira.token), 200);
    let intake = |team: &str| {
        form(&[
            ("csrf", &mira.csrf),
            ("client_code", "K-NEW-7"),
            ("consent", "given"),
            ("team", team),
            ("worker", &ana),
        ])
    };
    assert_eq!(
        post(&server, "/cases", &mira.token, &intake(&default_team)),
        403
    );
    assert_eq!(post(&server, "/cases", &mira.token, &intake(&south)), 303);
    assert_eq!(audit_count(&server, "case_opened_web", Some(&mira_id)), 1);

    // The plan: on her team's case, not on another team's.
    let goal = form(&[
        ("csrf", &mira.csrf),
        ("area", "legal"),
        ("description", "Residence permit"),
        ("target_date", "2027-06-30"),
    ]);
    assert_eq!(
        post(
            &server,
            &format!("/cases/{north_case}/goals"),
            &mira.token,
            &goal
        ),
        403
    );
    assert_eq!(
        post(
            &server,
            &format!("/cases/{south_case}/goals"),
            &mira.token,
            &goal
        ),
        303
    );
    let blank = form(&[
        ("csrf", &mira.csrf),
        ("area", "legal"),
        ("description", " "),
    ]);
    assert_eq!(
        post(
            &server,
            &format!("/cases/{south_case}/goals"),
            &mira.token,
            &blank
        ),
        400
    );
    assert_eq!(server.case(south_case).plan.goals.len(), 1);
    assert_eq!(audit_count(&server, "plan_goal_added", Some(&mira_id)), 1);
    let profile = form(&[
        ("csrf", &mira.csrf),
        ("gender", "female"),
        ("birth_year", "1999"),
        ("nationality", "XX"),
    ]);
    assert_eq!(
        post(
            &server,
            &format!("/cases/{south_case}/profile"),
            &mira.token,
            &profile
        ),
        400,
        "an unassigned country code is refused"
    );
    assert!(
        server.case(south_case).profile.is_empty(),
        "nothing changed"
    );

    // Closing needs a reason.
    let lifecycle = |pairs: &[(&str, &str)]| {
        let mut all = vec![("csrf", mira.csrf.as_str())];
        all.extend_from_slice(pairs);
        post(
            &server,
            &format!("/cases/{south_case}/lifecycle"),
            &mira.token,
            &form(&all),
        )
    };
    assert_eq!(lifecycle(&[("status", "closed")]), 400);
    assert_eq!(
        lifecycle(&[("status", "closed"), ("reason", "referred")]),
        303
    );
    let closed = server.case(south_case);
    assert_eq!(closed.status, fieldcase_core::model::CaseStatus::Closed);
    assert_eq!(
        closed.profile.closure_reason,
        Some(fieldcase_core::model::ClosureReason::Referred)
    );
    assert_eq!(audit_count(&server, "case_closed", Some(&mira_id)), 1);
    assert_eq!(lifecycle(&[("status", "open")]), 303);
    assert_eq!(audit_count(&server, "case_reopened", Some(&mira_id)), 1);

    // Withdrawn consent: a confirmation, then the case is gone from the office's pages.
    let case_page = format!("/cases/{south_case}");
    assert!(page(&server, &case_page, &mira.token).contains("Residence permit"));
    assert_eq!(
        get(&server, &format!("{case_page}/erase"), &mira.token),
        200
    );
    assert_eq!(
        post(
            &server,
            &format!("{case_page}/erase"),
            &mira.token,
            &form(&[("csrf", &mira.csrf)])
        ),
        303
    );
    assert_eq!(get(&server, &case_page, &mira.token), 404);
    assert_eq!(audit_count(&server, "case_erased", Some(&mira_id)), 1);
}

/// The whole duress path against a real office: a phone with a passphrase and a duress PIN,
/// opened with the PIN, syncs; the office revokes it and every page of the case managers of the
/// worker's team shows the alert (not those of another team), until one acknowledges it.
#[test]
fn a_duress_notice_alerts_the_workers_team_on_every_page_until_acknowledged() {
    use fieldcase_core::crypto::StaticKeyProvider;
    use fieldcase_core::device::{Device, ServerAddress};
    use fieldcase_core::store::KeySetup;

    let server = TestServer::start();
    let ana = server.add_user("ana", Role::FieldWorker);
    server.add_web_user("maria", Role::CaseManager, PASSWORD);
    let (case, _) = server.create_case("K-DURESS-1", &[ana]);
    let petar = server.add_web_user("petar", Role::CaseManager, PASSWORD);
    server
        .running()
        .state
        .db()
        .write(|sql| {
            let north = fieldcase_server::office::teams::create_team(sql, "North", now())?;
            let default = fieldcase_server::office::teams::DEFAULT_TEAM;
            fieldcase_server::office::teams::set_member(
                sql,
                default,
                *petar.as_uuid(),
                false,
                now(),
            )?;
            fieldcase_server::office::teams::set_member(sql, north, *petar.as_uuid(), true, now())
        })
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let keys = StaticKeyProvider::random();
    let clock = std::sync::Arc::new(fieldcase_core::clock::ManualClock::new(
        time::OffsetDateTime::now_utc(),
    ));
    let phone = Device::enroll(
        dir.path(),
        &ServerAddress {
            url: format!("https://{}", server.addr()),
            pin: server.fingerprint(),
        },
        &server.enrollment_code("ana"),
        KeySetup {
            keystore: Some(&keys),
            passphrase: Some("plum kettle orbit sparrow"),
        },
        fieldcase_tests::device_options(&clock),
    )
    .unwrap();
    phone.sync_now().unwrap();
    assert_eq!(phone.store().case(case).unwrap().client_code, "K-DURESS-1");
    phone
        .set_duress_pin(Some(&keys), "tram 9 stops at the old mill")
        .unwrap();
    phone.store().lock().unwrap();
    phone
        .store()
        .unlock(Some(&keys), Some("tram 9 stops at the old mill"))
        .unwrap();
    assert!(phone.store().list_cases().unwrap().is_empty());
    let device = phone.store().author().unwrap().device.to_string();
    let result = phone.sync_now();
    assert!(
        matches!(result, Err(fieldcase_core::CoreError::RevokedAndWiped)),
        "{result:?}"
    );
    assert_eq!(device_status(&server, &device), "revoked");

    let maria = session(&server, "maria");
    for path in ["/cases", "/tasks", &format!("/cases/{case}")] {
        let html = page(&server, path, &maria.token);
        assert!(html.contains("duress-alert"), "{path}");
        assert!(html.contains("ana"), "{path}");
    }
    let other_team = session(&server, "petar");
    assert!(!page(&server, "/cases", &other_team.token).contains("duress-alert"));

    let alert: String = server.with_sql(|c| {
        c.query_row(
            "SELECT id FROM alerts WHERE device_id = ?1",
            sql_params![&device],
        )?
        .get(0)
    });
    let ack = format!("/alerts/{alert}/ack");
    assert_eq!(
        post(
            &server,
            &ack,
            &other_team.token,
            &format!("csrf={}", other_team.csrf)
        ),
        404
    );
    assert_eq!(
        post(&server, &ack, &maria.token, &format!("csrf={}", maria.csrf)),
        303
    );
    assert!(!page(&server, "/cases", &maria.token).contains("duress-alert"));
    for action in ["duress_notice", "duress_alert_raised", "alert_acknowledged"] {
        assert_eq!(audit_count(&server, action, None), 1, "{action}");
    }
}

#[test]
fn a_case_file_for_court_holds_what_was_picked_only_and_every_one_is_audited_with_what_it_held() {
    let TwoTeams {
        server,
        south_case,
        north_case,
    } = two_teams();
    server.add_web_user("fw", Role::FieldWorker, PASSWORD);
    let (mira, sanja, fw) = (
        session(&server, "mira"),
        session(&server, "sanja"),
        session(&server, "fw"),
    );
    let phone = TestDevice::enroll_direct(&server, "ana");
    phone.device.sync_now().unwrap();
    let picked = phone.write_note(
        south_case,
        "Суд у Београду: клијенткиња сведочи 12. јануара.",
    );
    let also = phone.write_note(
        south_case,
        "Police took her statement; the interpreter was late.",
    );
    let left_out = phone.write_note(south_case, "Private: she fears her cousin in Niš.");
    let elsewhere = phone.write_note(north_case, "A note of another case.");
    phone.device.sync_now().unwrap();
    let path = format!("/cases/{south_case}/case-file");

    // The case page offers it to the case's team.
    let case_page = page(&server, &format!("/cases/{south_case}"), &mira.token);
    assert!(case_page.contains("case-file-form"), "{case_page}");

    let asked = |s: &sign_in::NewSession, sections: &[&str], notes: &[String]| {
        let mut pairs = vec![("csrf", s.csrf.as_str())];
        pairs.extend(sections.iter().map(|v| ("section", *v)));
        pairs.extend(notes.iter().map(|v| ("note", v.as_str())));
        form(&pairs)
    };
    let two = [picked.to_string(), also.to_string()];
    let (status, file) = send(
        &server,
        "POST",
        &path,
        &mira.token,
        &asked(&mira, &["summary", "accompaniments"], &two),
        &[],
    );
    assert_eq!(status, 200, "{file}");
    for shown in [
        "K-SOUTH",
        "Суд у Београду: клијенткиња сведочи 12. јануара.",
        "Police took her statement; the interpreter was late.",
        "file-summary",
        "file-accompaniments",
        "/static/print.css",
        "Prepared on",
    ] {
        assert!(file.contains(shown), "{shown} is missing: {file}");
    }
    for hidden in [
        "she fears her cousin",
        "A note of another case",
        "id=\"plan\"",
    ] {
        assert!(!file.contains(hidden), "{hidden} was not asked for: {file}");
    }
    let details = server.with_sql(|c| {
        c.query_all(
            "SELECT detail, user_id FROM audit_log WHERE action = 'case_read_case_file'",
            &[],
        )?
        .iter()
        .map(|r| Ok((r.get::<String>(0)?, r.get::<String>(1)?)))
        .collect::<Result<Vec<_>, _>>()
    });
    assert_eq!(details.len(), 1);
    let (detail, by) = &details[0];
    assert_eq!(by, &mira.user_id.to_string());
    assert!(detail.starts_with(&south_case.to_string()), "{detail}");
    assert!(
        detail.ends_with("sections=summary,accompaniments notes=2"),
        "{detail}"
    );
    let named: String = audit_details_of(&server, "case_file_notes").join(" ");
    assert!(named.contains(&picked.to_string()) && named.contains(&also.to_string()));
    assert!(!named.contains(&left_out.to_string()), "{named}");

    // Refused, and nothing read or audited: another case's note, another team's case, a field
    // worker, a form without its token, a section that does not exist.
    let foreign = [elsewhere.to_string()];
    let (status, _) = send(
        &server,
        "POST",
        &path,
        &mira.token,
        &asked(&mira, &["plan"], &foreign),
        &[],
    );
    assert_eq!(status, 400);
    let (status, _) = send(
        &server,
        "POST",
        &path,
        &sanja.token,
        &asked(&sanja, &["plan"], &two),
        &[],
    );
    assert_eq!(status, 403, "sanja is not on the case's team");
    let (status, _) = send(
        &server,
        "POST",
        &path,
        &fw.token,
        &asked(&fw, &["plan"], &two),
        &[],
    );
    assert_eq!(status, 403);
    let (status, _) = send(&server, "POST", &path, &mira.token, "section=plan", &[]);
    assert_eq!(status, 403);
    let (status, _) = send(
        &server,
        "POST",
        &path,
        &mira.token,
        &asked(&mira, &["everything"], &[]),
        &[],
    );
    assert_eq!(status, 400);
    assert_eq!(audit_count(&server, "case_read_case_file", None), 1);

    // In Serbian Cyrillic, with the plan, and no note: said so.
    let lang = form(&[("csrf", &mira.csrf), ("lang", "sr-Cyrl")]);
    assert_eq!(post(&server, "/lang", &mira.token, &lang), 303);
    let (status, file) = send(
        &server,
        "POST",
        &path,
        &mira.token,
        &asked(&mira, &["plan"], &[]),
        &[],
    );
    assert_eq!(status, 200, "{file}");
    for shown in [
        "Досије случаја за суд",
        "Није изабрана ниједна белешка са посете.",
        "id=\"plan\"",
    ] {
        assert!(file.contains(shown), "{shown} is missing: {file}");
    }
    assert!(!file.contains("Суд у Београду"));
    assert_eq!(audit_count(&server, "case_read_case_file", None), 2);
    assert_eq!(audit_count(&server, "case_file_notes", None), 1);
}

fn audit_details_of(server: &TestServer, action: &str) -> Vec<String> {
    server.with_sql(|c| {
        c.query_all(
            "SELECT detail FROM audit_log WHERE action = ?1 ORDER BY seq",
            sql_params![action],
        )?
        .iter()
        .map(|r| r.get(0))
        .collect()
    })
}
