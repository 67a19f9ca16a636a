//! The office pages in real headless Chromium (Debian's chromium and chromium-driver, installed
//! by scripts/browser-setup when missing), against a real server over TLS and phones with the
//! real core. Screenshots land in target/test-screenshots/.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use fantoccini::Locator;
use fieldcase_core::CoreError;
use fieldcase_core::protocol::Role;
use fieldcase_tests::browser::Browser;
use fieldcase_tests::{TestDevice, TestServer};

const PASSWORD: &str = "correct horse battery";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn a_case_manager_sees_synced_notes_live_and_plans_a_task_the_phone_receives() {
    runtime().block_on(async {
        let server = TestServer::start();
        let ana = server.add_user("ana", Role::FieldWorker);
        server.add_web_user("marija", Role::CaseManager, PASSWORD);
        let (case, _) = server.create_case("K-17", &[ana]);
        let phone = TestDevice::enroll_direct(&server, "ana");
        phone.device.sync_now().unwrap();
        phone.write_note(case, "First visit: client safe, needs ID card.");
        phone.device.sync_now().unwrap();

        let browser = Browser::start(&server).await;
        let base = server.running().url();
        browser.login(&base, "marija", PASSWORD).await;
        let c = &browser.client;
        assert!(c.current_url().await.unwrap().path().starts_with("/cases"));
        assert!(browser.text().await.contains("K-17"));
        browser.click(Locator::LinkText("K-17")).await;
        browser.wait_for(Locator::Id("timeline")).await;
        let text = browser.text().await;
        assert!(text.contains("First visit: client safe"), "{text}");
        assert!(text.contains("ana"), "the author is shown: {text}");

        // A marker that a reload would erase.
        c.execute("window.__noReload = 42; return 1;", vec![])
            .await
            .unwrap();
        phone.write_note(case, "Second visit: documents collected.");
        phone.device.sync_now().unwrap();
        let started = Instant::now();
        loop {
            // The timeline element is replaced when the update lands: a lookup that races the
            // swap finds a stale element and simply tries again.
            let timeline = match c.find(Locator::Id("timeline")).await {
                Ok(e) => e.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            if timeline.contains("Second visit: documents collected.") {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "the second note did not appear without a reload: {timeline}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let marker = c
            .execute("return window.__noReload;", vec![])
            .await
            .unwrap();
        assert_eq!(marker, serde_json::json!(42), "the page was reloaded");
        // It came by a server-sent event, not by the polling fallback.
        let mode = browser
            .element(Locator::Id("live"))
            .await
            .attr("data-live")
            .await
            .unwrap();
        assert_eq!(mode.as_deref(), Some("events"));
        let shot = browser.screenshot("case-timeline").await;
        assert!(std::fs::metadata(shot).unwrap().len() > 1000);

        // Plan an accompaniment task; the phone gets it at its next sync.
        browser.click(Locator::Id("new-task")).await;
        browser
            .type_into(Locator::Id("purpose"), "Social welfare appointment")
            .await;
        browser
            .type_into(Locator::Id("office_name"), "Centar za socijalni rad")
            .await;
        browser
            .type_into(Locator::Id("checklist"), "ID card\nproof of address")
            .await;
        browser.click(Locator::Id("create-task")).await;
        browser.wait_for_text("Social welfare appointment").await;

        phone.device.sync_now().unwrap();
        let on_phone = phone.case(case);
        let task = on_phone
            .tasks
            .iter()
            .find(|t| t.purpose == "Social welfare appointment")
            .expect("the phone received the task");
        assert_eq!(task.office_name, "Centar za socijalni rad");
        assert_eq!(task.assignees, vec![ana]);
        let labels: Vec<&str> = task.checklist.iter().map(|i| i.label.as_str()).collect();
        assert_eq!(labels, ["ID card", "proof of address"]);
        browser.close().await;
    });
}

#[test]
fn an_admin_revokes_a_device_with_the_button_and_its_next_sync_is_refused() {
    runtime().block_on(async {
        let server = TestServer::start();
        let ana = server.add_user("ana", Role::FieldWorker);
        server.add_web_user("admin", Role::Admin, PASSWORD);
        server.create_case("K-3", &[ana]);
        let phone = TestDevice::enroll_direct(&server, "ana");
        phone.device.sync_now().unwrap();
        let id = phone.id();

        let browser = Browser::start(&server).await;
        let base = server.running().url();
        browser.login(&base, "admin", PASSWORD).await;
        let c = &browser.client;
        c.goto(&format!("{base}/devices")).await.unwrap();
        let text = browser.text().await;
        assert!(text.contains("ana") && text.contains("active"), "{text}");
        browser.screenshot("devices").await;
        browser
            .click(Locator::Css(&format!("tr[data-device='{id}'] button")))
            .await;
        browser.wait_for(Locator::Id("confirm-revoke")).await;
        browser.click(Locator::Id("confirm-revoke")).await;
        browser.wait_for(Locator::Id("devices")).await;
        let row = browser
            .text_of(Locator::Css(&format!("tr[data-device='{id}'] td.state")))
            .await;
        assert!(row.contains("revoked"), "{row}");
        browser.screenshot("devices-after-revoke").await;

        let result = phone.device.sync_now();
        assert!(
            matches!(result, Err(CoreError::RevokedAndWiped)),
            "{result:?}"
        );
        browser.close().await;
    });
}

#[test]
fn a_field_worker_cannot_open_office_or_admin_pages() {
    runtime().block_on(async {
        let server = TestServer::start();
        server.add_web_user("ana", Role::FieldWorker, PASSWORD);
        let browser = Browser::start(&server).await;
        let base = server.running().url();
        browser.login(&base, "ana", PASSWORD).await;
        let c = &browser.client;
        for page in ["/devices", "/quarantine", "/cases"] {
            c.goto(&format!("{base}{page}")).await.unwrap();
            let text = browser.text().await;
            assert!(text.contains("403"), "{page} was not refused: {text}");
        }
        // Logging out ends the session: the pages send back to the login form.
        c.goto(&format!("{base}/")).await.unwrap();
        browser.click(Locator::Id("logout")).await;
        browser.wait_for(Locator::Id("signin")).await;
        c.goto(&format!("{base}/devices")).await.unwrap();
        let url = c.current_url().await.unwrap();
        assert_eq!(
            url.path(),
            "/login",
            "after logout the pages need a new login"
        );
        assert!(c.find(Locator::Id("signin")).await.is_ok());
        browser.close().await;
    });
}

#[test]
fn an_admin_adds_a_user_whose_phone_enrolls_with_the_code_shown_and_reads_the_audit_log() {
    use fieldcase_core::crypto::StaticKeyProvider;
    use fieldcase_core::device::{Device, ServerAddress};
    use fieldcase_core::store::KeySetup;

    runtime().block_on(async {
        let server = TestServer::start();
        server.add_web_user("admin", Role::Admin, PASSWORD);
        let browser = Browser::start(&server).await;
        let base = server.running().url();
        browser.login(&base, "admin", PASSWORD).await;
        let c = &browser.client;

        c.goto(&format!("{base}/users")).await.unwrap();
        browser.type_into(Locator::Id("new-name"), "jelena").await;
        browser
            .select(Locator::Id("new-role"), "field-worker")
            .await;
        browser
            .click(Locator::Css("form[action='/users'] button"))
            .await;
        browser
            .wait_for(Locator::Css("tr[data-user='jelena']"))
            .await;
        browser
            .click(Locator::Css(
                "tr[data-user='jelena'] form[action$='/code'] button",
            ))
            .await;
        let code = browser
            .wait_for(Locator::Id("enrollment-code"))
            .await
            .text()
            .await
            .unwrap();
        // The same code as a QR code, drawn inline.
        browser.element(Locator::Css("#enrollment-qr svg")).await;
        browser.screenshot("enrollment-code").await;

        let dir = tempfile::tempdir().unwrap();
        let keys = StaticKeyProvider::random();
        let clock = std::sync::Arc::new(fieldcase_core::clock::ManualClock::new(
            time::OffsetDateTime::now_utc(),
        ));
        let device = Device::enroll(
            dir.path(),
            &ServerAddress {
                url: base.clone(),
                pin: server.fingerprint(),
            },
            code.trim(),
            KeySetup {
                keystore: Some(&keys),
                passphrase: None,
            },
            fieldcase_tests::device_options(&clock),
        )
        .expect("the phone enrolls with the code the page showed");
        device.sync_now().unwrap();

        // The pages in Serbian Cyrillic, then the audit log with its chain check.
        browser.select(Locator::Id("lang"), "sr-Cyrl").await;
        browser
            .click_and_wait(Locator::Css("form[action='/lang'] button"))
            .await;
        browser.wait_for_text("Одјава").await;
        c.goto(&format!("{base}/audit")).await.unwrap();
        let text = browser.text().await;
        assert!(
            text.contains("Уређаји") && text.contains("Дневник ревизије"),
            "{text}"
        );
        let chain = browser.text_of(Locator::Id("chain")).await;
        assert!(chain.contains("нетакнут"), "{chain}");
        // The head to write down is the one the chain ends with.
        let head = browser.text_of(Locator::Id("head")).await;
        let entries = server.with_sql(|c| {
            c.query_row("SELECT hash FROM audit_log ORDER BY seq DESC LIMIT 1", &[])?
                .get::<Vec<u8>>(0)
        });
        assert_eq!(head.trim(), hex::encode(entries));
        // Each action by its label, with the name the command line prints beside it.
        for action in [
            "user_added",
            "корисник додат",
            "web_login",
            "device_enrolled",
            "уређај пријављен",
        ] {
            assert!(
                text.contains(action),
                "{action} missing from the audit page: {text}"
            );
        }
        browser.screenshot("audit-log-sr-cyrl").await;
        browser.close().await;
    });
}

#[test]
fn a_case_manager_settles_two_phones_concurrent_consent_in_the_conflict_inbox() {
    use fieldcase_core::model::{CaseUpdate, ConsentStatus};

    runtime().block_on(async {
        let server = TestServer::start();
        let ana = server.add_user("ana", Role::FieldWorker);
        let bojan = server.add_user("bojan", Role::FieldWorker);
        server.add_web_user("marija", Role::CaseManager, PASSWORD);
        let (case, _) = server.create_case("K-0142", &[ana, bojan]);
        let a = TestDevice::enroll_direct(&server, "ana");
        let b = TestDevice::enroll_direct(&server, "bojan");
        a.device.sync_now().unwrap();
        let note = a.write_note(case, "Met the client at the centre.");
        a.device.sync_now().unwrap();
        b.device.sync_now().unwrap();
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

        let browser = Browser::start(&server).await;
        let base = server.running().url();
        let c = &browser.client;
        // The login page in Serbian Cyrillic, from its own language links.
        c.goto(&format!("{base}/login")).await.unwrap();
        browser.click(Locator::Css("a[hreflang='sr-Cyrl']")).await;
        let text = browser.wait_for_text("Корисничко име").await;
        assert!(
            text.contains("Пријава") && text.contains("Лозинка"),
            "{text}"
        );
        browser.screenshot("login-sr-cyrl").await;

        browser.login(&base, "marija", PASSWORD).await;
        c.goto(&format!("{base}/conflicts")).await.unwrap();
        let text = browser.text().await;
        for needle in ["K-0142", "withdrawn", "pending", "ana", "bojan"] {
            assert!(text.contains(needle), "{needle} missing: {text}");
        }
        assert!(
            !text.contains("She is safe"),
            "notes do not wait in the inbox"
        );
        let shot = browser.screenshot("conflict-inbox").await;
        assert!(std::fs::metadata(shot).unwrap().len() > 1000);

        browser
            .click(Locator::Css(
                "form[data-field='consent'] input[value='withdrawn']",
            ))
            .await;
        browser
            .click(Locator::Css("form[data-field='consent'] button.decide"))
            .await;
        browser.wait_for(Locator::Id("no-conflicts")).await;
        browser.close().await;

        for phone in [&a, &b] {
            phone.device.sync_now().unwrap();
            let on_phone = phone.case(case);
            assert_eq!(on_phone.consent, ConsentStatus::Withdrawn);
            assert_eq!(
                on_phone.notes[0].body,
                "Early: met the client at the centre. She is safe."
            );
            assert!(phone.device.store().conflicts(case).unwrap().is_empty());
        }
    });
}

/// The whole life of a case, as a new user would try it: a case manager opens a case in the
/// browser, writes a recovery plan with two goals and assigns a worker; the worker's phone gets
/// it, records a service and a note offline and marks a goal achieved while a second worker
/// changes the same goal offline; the case manager sees both values, settles the conflict,
/// reviews the plan and closes the case; after the office's retention the office holds none of
/// its content and the audit log says so. The plan and intake pages are photographed in Serbian
/// Cyrillic.
#[test]
fn a_case_from_intake_to_closure_with_a_recovery_plan_and_a_settled_goal_conflict() {
    use fieldcase_core::model::{
        AssistanceTag, CaseStatus, GoalStatus, GoalUpdate, HtcdsStatus, NewNote, NewService,
        NoteKind,
    };

    runtime().block_on(async {
        let server = TestServer::start();
        let ana = server.add_user("ana", Role::FieldWorker);
        let bojan = server.add_user("bojan", Role::FieldWorker);
        server.add_web_user("marija", Role::CaseManager, PASSWORD);
        let a = TestDevice::enroll_direct(&server, "ana");
        let b = TestDevice::enroll_direct(&server, "bojan");

        let browser = Browser::start(&server).await;
        let base = server.running().url();
        let c = &browser.client;
        c.set_window_size(1280, 2400).await.unwrap();
        browser.login(&base, "marija", PASSWORD).await;

        // Intake: open the case from the list, consent as given, assigned to ana.
        c.goto(&format!("{base}/cases")).await.unwrap();
        browser.click(Locator::Id("new-case")).await;
        browser.type_into(Locator::Id("client_code"), "K-2001").await;
        browser.select(Locator::Id("consent"), "given").await;
        browser
            .click(Locator::Css(&format!("input[name='worker'][value='{ana}']")))
            .await;
        browser.click(Locator::Id("open-case")).await;
        browser.wait_for(Locator::Id("plan")).await;
        let case: fieldcase_core::ids::CaseId = c
            .current_url()
            .await
            .unwrap()
            .path()
            .trim_start_matches("/cases/")
            .parse()
            .expect("the case page of the new case");
        let text = browser.text().await;
        assert!(text.contains("K-2001") && text.contains("ana"), "{text}");

        // The plan: two goals.
        for (area, goal) in [
            ("administrative", "Get an ID card"),
            ("job_search", "Find a job in Novi Sad"),
        ] {
            browser.click(Locator::Css("#add-goal-box summary")).await;
            browser.select(Locator::Id("goal-area"), area).await;
            browser.type_into(Locator::Id("goal-description"), goal).await;
            browser.click(Locator::Id("add-goal")).await;
            browser.wait_for_text(goal).await;
        }
        // A second worker on the case.
        browser.select(Locator::Id("worker"), &bojan.to_string()).await;
        browser.click_and_wait(Locator::Id("assign")).await;
        browser.wait_for(Locator::Id("plan")).await;
        let on_office = server.case(case);
        assert_eq!(on_office.plan.goals.len(), 2);
        assert_eq!(on_office.assigned_workers.len(), 2);
        let id_card = on_office
            .plan
            .goals
            .iter()
            .find(|g| g.description == "Get an ID card")
            .unwrap()
            .id;

        // The phones get it; then, offline, ana records a service and a note and marks the goal
        // achieved, while bojan marks the same goal dropped.
        for phone in [&a, &b] {
            phone.device.sync_now().unwrap();
            assert_eq!(phone.case(case).plan.goals.len(), 2);
        }
        let note = a
            .device
            .store()
            .write_note(
                case,
                &NewNote {
                    kind: NoteKind::Visit,
                    body: "Registry office: the ID card application is filed.".into(),
                    tags: vec![AssistanceTag::Administrative],
                    task: None,
                },
            )
            .unwrap();
        a.device
            .store()
            .add_service(
                case,
                &NewService {
                    area: AssistanceTag::Administrative,
                    description: "Accompanied to the registry office".into(),
                    given_on: time::OffsetDateTime::now_utc().date(),
                    goals: vec![id_card],
                    tasks: vec![],
                    notes: vec![note],
                },
            )
            .unwrap();
        let status = |s| GoalUpdate {
            status: Some(s),
            ..GoalUpdate::default()
        };
        a.device
            .store()
            .update_goal(case, id_card, &status(GoalStatus::Achieved))
            .unwrap();
        b.device
            .store()
            .update_goal(case, id_card, &status(GoalStatus::Dropped))
            .unwrap();
        for phone in [&a, &b, &a] {
            phone.device.sync_now().unwrap();
        }

        // The case manager sees both values in the inbox, by their labels and authors.
        c.goto(&format!("{base}/conflicts")).await.unwrap();
        let text = browser.text().await;
        for needle in ["K-2001", "Get an ID card", "achieved", "dropped", "ana", "bojan"] {
            assert!(text.contains(needle), "{needle} missing: {text}");
        }
        browser
            .click(Locator::Css(
                "form[data-field='status'] input[value='achieved']",
            ))
            .await;
        browser
            .click(Locator::Css("form[data-field='status'] button.decide"))
            .await;
        browser.wait_for(Locator::Id("no-conflicts")).await;

        // The case page: the service is there; a review; then the case is closed.
        c.goto(&format!("{base}/cases/{case}")).await.unwrap();
        let text = browser.wait_for_text("Accompanied to the registry office").await;
        assert!(!text.contains("Conflicting changes wait"), "{text}");
        browser.click(Locator::Css("#plan details:last-of-type summary")).await;
        browser
            .type_into(Locator::Id("review-date"), "01022027")
            .await;
        browser
            .type_into(Locator::Id("review-summary"), "ID card done; job search goes on.")
            .await;
        browser.click(Locator::Id("add-review")).await;
        browser.wait_for_text("ID card done; job search goes on.").await;

        // In Serbian Cyrillic: the plan and, later, the intake page.
        browser.select(Locator::Id("lang"), "sr-Cyrl").await;
        browser
            .click_and_wait(Locator::Css("form[action='/lang'] button"))
            .await;
        c.goto(&format!("{base}/cases/{case}")).await.unwrap();
        let text = browser.wait_for_text("План опоравка").await;
        for needle in ["остварен", "административна помоћ", "2 циља", "Историја"] {
            assert!(text.contains(needle), "{needle} missing: {text}");
        }
        c.execute(
            "document.getElementById('plan').scrollIntoView(); return 1;",
            vec![],
        )
        .await
        .unwrap();
        let shot = browser.screenshot("plan-sr-cyrl").await;
        assert!(std::fs::metadata(shot).unwrap().len() > 1000);
        c.goto(&format!("{base}/cases/new")).await.unwrap();
        browser.wait_for_text("Шифра клијента").await;
        let shot = browser.screenshot("intake-sr-cyrl").await;
        assert!(std::fs::metadata(shot).unwrap().len() > 1000);

        c.goto(&format!("{base}/cases/{case}")).await.unwrap();
        browser.wait_for(Locator::Id("close")).await;
        browser.select(Locator::Id("reason"), "goals_achieved").await;
        browser.click(Locator::Id("close")).await;
        browser.wait_for(Locator::Id("reopen")).await;
        let shot = browser.screenshot("closed-case-sr-cyrl").await;
        assert!(std::fs::metadata(shot).unwrap().len() > 1000);
        browser.close().await;

        let closed = server.case(case);
        assert_eq!(closed.status, CaseStatus::Closed);
        assert_eq!(closed.profile.htcds_status, Some(HtcdsStatus::Closed));
        assert_eq!(closed.plan.reviews.len(), 1);
        for phone in [&a, &b] {
            phone.device.sync_now().unwrap();
            let on_phone = phone.case(case);
            assert_eq!(on_phone.status, CaseStatus::Closed);
            assert_eq!(
                on_phone
                    .plan
                    .goals
                    .iter()
                    .find(|g| g.id == id_card)
                    .unwrap()
                    .status,
                GoalStatus::Achieved
            );
            assert!(phone.device.store().conflicts(case).unwrap().is_empty());
        }

        // After the office's retention period: no content left, the statistics and the audit
        // record stay.
        let vault = server.running().state.vault().clone();
        let later = time::OffsetDateTime::now_utc().unix_timestamp() + 1;
        let erased = server
            .running()
            .state
            .db()
            .write(|sql| fieldcase_server::office::retention::erase_expired(sql, &vault, 0, later))
            .unwrap();
        assert_eq!(erased, vec![case]);
        let left = server.case(case);
        assert!(left.notes.is_empty() && left.plan.is_empty() && left.profile.is_empty());
        assert_ne!(left.client_code, "K-2001");
        let (audited, stats): (i64, String) = server.with_sql(|sql| {
            let n = sql
                .query_row(
                    "SELECT COUNT(*) FROM audit_log WHERE action = 'case_erased' AND detail LIKE ?1",
                    fieldcase_server::sql_params![&format!("{case}/%")],
                )?
                .get(0)?;
            let s = sql
                .query_row(
                    "SELECT fields FROM case_statistics WHERE case_id = ?1",
                    fieldcase_server::sql_params![&case.to_string()],
                )?
                .get(0)?;
            Ok((n, s))
        });
        assert_eq!(audited, 1);
        assert!(stats.contains("\"goals_achieved\":1"), "{stats}");
        assert!(!stats.contains("K-2001") && !stats.contains("ID card"), "{stats}");
    });
}

/// Runs a poppler tool on `pdf` (then `after`) and returns its standard output.
fn poppler(tool: &str, args: &[&str], pdf: &std::path::Path, after: &[&str]) -> String {
    let out = std::process::Command::new(tool)
        .args(args)
        .arg(pdf)
        .args(after)
        .output()
        .unwrap_or_else(|e| panic!("{tool}: {e}"));
    assert!(out.status.success(), "{tool} failed on {}", pdf.display());
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_case_file_prints_in_serbian_cyrillic_with_page_numbers_and_only_the_notes_picked() {
    runtime().block_on(async {
        let server = TestServer::start();
        let ana = server.add_user("ana", Role::FieldWorker);
        server.add_web_user("marija", Role::CaseManager, PASSWORD);
        let (case, _) = server.create_case("К-2026-07", &[ana]);
        let phone = TestDevice::enroll_direct(&server, "ana");
        phone.device.sync_now().unwrap();
        // Enough notes, long enough, to fill more than one page.
        let long = "Клијенткиња је у пратњи дошла у Центар за социјални рад у Новом Саду; \
                    разговор са водитељком случаја, договорен следећи састанак и превод докумената. "
            .repeat(6);
        for i in 1..=8 {
            phone.write_note(case, &format!("Посета {i}. {long}"));
        }
        phone.write_note(case, "Ово није за суд: име рођака и адреса склоништа.");
        phone.device.sync_now().unwrap();

        let browser = Browser::start(&server).await;
        let base = server.running().url();
        let c = &browser.client;
        browser.login(&base, "marija", PASSWORD).await;
        browser.select(Locator::Id("lang"), "sr-Cyrl").await;
        browser
            .click_and_wait(Locator::Css("form[action='/lang'] button"))
            .await;
        c.goto(&format!("{base}/cases/{case}")).await.unwrap();
        browser.wait_for(Locator::Id("case-file-form")).await;
        // Open the picker, tick every note that starts with "Посета", and print in this tab.
        c.execute(
            "document.querySelector('#case-file-box details').open = true;
             document.getElementById('case-file-form').removeAttribute('target');
             for (const box of document.querySelectorAll('#case-file-form input[name=note]')) {
               if (box.parentElement.textContent.includes('Посета')) box.click();
             }
             return 1;",
            vec![],
        )
        .await
        .unwrap();
        browser.click(Locator::Id("prepare-case-file")).await;
        let text = browser.wait_for_text("Досије случаја за суд").await;
        assert!(text.contains("Посета 8."), "{text}");
        assert!(!text.contains("Ово није за суд"), "{text}");
        browser.screenshot("case-file-sr-cyrl").await;

        let pdf = c.print(Default::default()).await.unwrap();
        let path = fieldcase_tests::browser::screenshot_dir().join("case-file-sr-cyrl.pdf");
        std::fs::write(&path, &pdf).unwrap();
        let pages: usize = poppler("pdfinfo", &[], &path, &[])
            .lines()
            .find_map(|l| l.strip_prefix("Pages:"))
            .and_then(|n| n.trim().parse().ok())
            .expect("pdfinfo gives the page count");
        assert!(pages >= 2, "the notes fill more than one page: {pages}");
        let printed = poppler("pdftotext", &["-layout"], &path, &["-"]);
        // Every page numbered "n / N", the running header with the client code on each, the
        // Cyrillic text as text (not boxes), and the note left out absent.
        let squeezed: String = printed.split_whitespace().collect::<Vec<_>>().join("");
        for n in 1..=pages {
            assert!(squeezed.contains(&format!("{n}/{pages}")), "page {n}: {printed}");
        }
        assert!(printed.matches("К-2026-07").count() >= pages, "{printed}");
        for needle in ["Досије случаја за суд", "Поверљиво", "Центар за социјални рад у Новом Саду", "Крај досијеа."] {
            assert!(printed.contains(needle), "{needle}: {printed}");
        }
        assert!(!printed.contains("Ово није за суд"));
        // Images of the pages to look at.
        let shots = fieldcase_tests::browser::screenshot_dir().join("case-file-page");
        let status = std::process::Command::new("pdftoppm")
            .args(["-png", "-r", "60"])
            .arg(&path)
            .arg(&shots)
            .status()
            .unwrap();
        assert!(status.success());
        browser.close().await;
    });
}
