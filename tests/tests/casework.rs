//! Casework at the office against a real server over TLS and real phones: the office's
//! retention erases a closed case's content only once its period has passed, and a client's
//! withdrawn consent erases her case at once; the phones holding it purge it at their next sync
//! (their unsent edits of it are not taken), anonymised statistics and an audit record stay.
//! The plan and the lifecycle decisions made at the office reach the phones.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use fieldcase_core::CoreError;
use fieldcase_core::model::{
    AssistanceTag, CaseStatus, ClosureReason, GoalStatus, HtcdsStatus, MediaType, NewAttachment,
    NewGoal,
};
use fieldcase_core::protocol::Role;
use fieldcase_core::transfer::TransferOptions;
use fieldcase_server::office::plan::{self, PlanEdit};
use fieldcase_server::office::{cases, retention};
use fieldcase_server::sql_params;
use fieldcase_tests::{TestDevice, TestServer};

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn audit_details(server: &TestServer, action: &str) -> Vec<String> {
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

#[test]
fn withdrawn_consent_erases_the_case_at_once_and_the_phones_purge_it() {
    let server = TestServer::start();
    let ana = server.add_user("ana", Role::FieldWorker);
    let (case, _) = server.create_case("K-ERASE-1", &[ana]);
    let (kept, _) = server.create_case("K-KEEP-2", &[ana]);
    let phone = TestDevice::enroll_direct(&server, "ana");
    phone.device.sync_now().unwrap();
    phone
        .device
        .store()
        .add_goal(
            case,
            &NewGoal {
                area: AssistanceTag::Psychological,
                description: "Weekly sessions with the psychologist".into(),
                target_date: None,
            },
        )
        .unwrap();
    phone.write_note(case, "Client says she wants to stop.");
    phone
        .device
        .store()
        .attach(
            case,
            &NewAttachment {
                label: "Signed consent form".into(),
                media_type: MediaType::Jpeg,
                note: None,
                task: None,
            },
            fieldcase_tests::photo::plain_jpeg(320, 240, 7),
        )
        .unwrap();
    phone.device.sync_now().unwrap();
    phone
        .device
        .sync_attachments(TransferOptions::default())
        .unwrap();
    assert_eq!(server.case(case).plan.goals.len(), 1);
    assert!(
        server.attachments(case)[0].complete,
        "the scan is at the office"
    );
    // Written on the phone after the decision, not yet sent.
    let unsent = phone.write_note(case, "Written after the consent was withdrawn.");

    let vault = server.running().state.vault().clone();
    server
        .running()
        .state
        .db()
        .write(|sql| retention::withdraw_consent(sql, &vault, case, None, now()))
        .unwrap();

    // The phone syncs without trouble and no longer holds the case; the other case stays.
    phone.device.sync_now().unwrap();
    assert!(matches!(
        phone.device.store().case(case),
        Err(CoreError::CaseNotFound)
    ));
    assert!(phone.device.store().case(kept).is_ok());
    phone.device.sync_now().unwrap();

    // The office holds none of its content, not even the unsent note.
    let left = server.case(case);
    assert!(left.notes.is_empty() && left.plan.is_empty() && left.profile.is_empty());
    assert!(!left.notes.iter().any(|n| n.id == unsent));
    assert_ne!(left.client_code, "K-ERASE-1");
    assert!(left.assigned_workers.is_empty());
    let listed = server
        .running()
        .state
        .db()
        .read(cases::list_case_ids)
        .unwrap();
    assert_eq!(listed, vec![kept]);
    let chunks: i64 = server.with_sql(|c| {
        c.query_row(
            "SELECT COUNT(*) FROM case_chunks WHERE case_id = ?1",
            sql_params![&case.to_string()],
        )?
        .get(0)
    });
    assert_eq!(chunks, 0, "no sealed change of the old history is left");
    let stored: (i64, i64, i64) = server.with_sql(|c| {
        let count = |c: &mut dyn fieldcase_server::storage::sql::Sql, table: &str| {
            c.query_row(&format!("SELECT COUNT(*) FROM {table}"), &[])?
                .get::<i64>(0)
        };
        Ok((
            count(c, "attachments")?,
            count(c, "attachment_blobs")?,
            count(c, "attachment_blob_chunks")?,
        ))
    });
    assert_eq!(stored, (0, 0, 0), "the scan is erased with the case");
    // What stays: the audit record and anonymised statistics.
    assert_eq!(
        audit_details(&server, retention::CASE_ERASED),
        vec![format!("{case}/consent_withdrawn")]
    );
    let (why, fields): (String, String) = server.with_sql(|c| {
        let row = c.query_row(
            "SELECT why, fields FROM case_statistics WHERE case_id = ?1",
            sql_params![&case.to_string()],
        )?;
        Ok((row.get(0)?, row.get(1)?))
    });
    assert_eq!(why, "consent_withdrawn");
    assert!(fields.contains("\"goals\":1"), "{fields}");
    assert!(!fields.contains("K-ERASE") && !fields.contains("psychologist"));
    // Erased once only.
    assert!(
        server
            .running()
            .state
            .db()
            .write(|sql| retention::withdraw_consent(sql, &vault, case, None, now()))
            .is_err()
    );
}

#[test]
fn retention_erases_a_closed_case_only_once_its_period_has_passed() {
    let server = TestServer::start();
    let ana = server.add_user("ana", Role::FieldWorker);
    let (closed, _) = server.create_case("K-CLOSED-3", &[ana]);
    let (open, _) = server.create_case("K-OPEN-4", &[ana]);
    let phone = TestDevice::enroll_direct(&server, "ana");
    let vault = server.running().state.vault().clone();
    let db = server.running().state.db();
    let t = now();
    db.write(|sql| {
        plan::edit(
            sql,
            &vault,
            closed,
            &PlanEdit::AddGoal(NewGoal {
                area: AssistanceTag::Legal,
                description: "Testify at the trial".into(),
                target_date: None,
            }),
            None,
            t,
        )
    })
    .unwrap()
    .keep(&vault);
    // Closing needs a reason, and records it as the HTCDS status.
    assert!(
        db.write(|sql| plan::set_lifecycle(sql, &vault, closed, CaseStatus::Closed, None, None, t))
            .is_err()
    );
    db.write(|sql| {
        plan::set_lifecycle(
            sql,
            &vault,
            closed,
            CaseStatus::Closed,
            Some(ClosureReason::Referred),
            None,
            t,
        )
    })
    .unwrap()
    .keep(&vault);
    phone.device.sync_now().unwrap();
    let on_phone = phone.case(closed);
    assert_eq!(on_phone.status, CaseStatus::Closed);
    assert_eq!(
        on_phone.profile.htcds_status,
        Some(HtcdsStatus::ClosedReferred)
    );
    assert_eq!(on_phone.plan.goals[0].status, GoalStatus::Planned);

    let day = 24 * 3600;
    let erased = db
        .write(|sql| retention::erase_expired(sql, &vault, 30 * day, t + 29 * day))
        .unwrap();
    assert!(erased.is_empty(), "still within its retention period");
    assert_eq!(server.case(closed).plan.goals.len(), 1);
    let erased = db
        .write(|sql| retention::erase_expired(sql, &vault, 30 * day, t + 31 * day))
        .unwrap();
    assert_eq!(erased, vec![closed], "the open case is kept");
    assert!(server.case(closed).plan.is_empty());
    assert_eq!(server.case(open).client_code, "K-OPEN-4");
    assert_eq!(
        audit_details(&server, retention::CASE_ERASED),
        vec![format!("{closed}/retention")]
    );
    assert!(db.read(|sql| retention::is_erased(sql, closed)).unwrap());
    assert!(!db.read(|sql| retention::is_erased(sql, open)).unwrap());
}
