//! What the office says is left after each page of a sync, for a phone's progress bar: only to
//! a phone that asks for it (an older phone refuses an answer with bytes past its end and gets
//! exactly the answer it knows), counting down page by page to the last, which says nothing.
//! On the backend of the run (SQLite, or PostgreSQL with `FIELDCASE_TEST_DATABASE=postgres`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::TestServer;
use ed25519_dalek::SigningKey;
use fieldcase_core::device::PATH_SYNC;
use fieldcase_core::ids::UserId;
use fieldcase_core::model::{ConsentStatus, NewCase, NewTask, OfficeKind};
use fieldcase_core::protocol::{HEADER_REMAINING, Role};
use fieldcase_core::sync::{SyncRequest, SyncResponse};
use fieldcase_core::transport::{DeviceClient, DeviceCredential};
use fieldcase_server::office::cases;
use rand::rngs::OsRng;

const CASES: usize = 400;

/// `n` cases for `worker`, each with a task, opened in one transaction.
fn caseload(t: &TestServer, worker: UserId, n: usize) {
    let state = &t.server.state;
    let vault = state.vault().clone();
    let now = state.now();
    let task = NewTask {
        purpose: "ID card application".into(),
        office_kind: OfficeKind::RegistryOffice,
        office_name: "Matična služba".into(),
        office_address: "Novi Sad".into(),
        scheduled_at: time::OffsetDateTime::from_unix_timestamp(now).unwrap(),
        time_zone: "Europe/Belgrade".into(),
        assignees: vec![worker],
        checklist: vec!["birth certificate copy".into()],
    };
    let made = state
        .db()
        .write(|sql| {
            (0..n)
                .map(|i| {
                    let new = NewCase {
                        client_code: format!("K-{i:04}"),
                        consent: ConsentStatus::Given,
                        assigned_workers: vec![worker],
                    };
                    cases::create_case(sql, &vault, &new, Some(&task), now)
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .unwrap();
    for case in made {
        case.keep(&vault);
    }
}

#[test]
fn what_is_left_goes_only_to_phones_that_ask_and_counts_down_to_the_last_page() {
    let t = TestServer::start();
    let ana = UserId::from_uuid(t.add_user("ana", Role::FieldWorker));
    caseload(&t, ana, CASES);
    let key = SigningKey::generate(&mut OsRng);
    let enrolled = t.client().enroll(&t.issue_code("ana", 900), &key).unwrap();
    let phone = DeviceClient::new(t.client(), DeviceCredential::new(enrolled.device_id, key));
    let asks = [(HEADER_REMAINING.to_owned(), "1".to_owned())];
    let first = SyncRequest::default().encode().unwrap();

    // A phone built before: the answer ends where the message always ended.
    let old = phone.post_answer(PATH_SYNC, &first, &[]).unwrap().body;
    let answer = SyncResponse::decode(&old).unwrap();
    assert!(
        answer.more,
        "{CASES} cases fit one page: the test needs several"
    );
    assert_eq!(answer.remaining, None);
    assert_eq!(answer.encode().unwrap(), old, "bytes past the end");

    // A phone that asks, page after page from the start: the cases left fall by what each page
    // carried, the bytes left with them, and the last page says nothing.
    let mut cursor = 0;
    let mut received = 0usize;
    let mut bytes_left = u64::MAX;
    let mut pages = 0;
    loop {
        let request = SyncRequest {
            cursor,
            ..SyncRequest::default()
        };
        let body = phone
            .post_answer(PATH_SYNC, &request.encode().unwrap(), &asks)
            .unwrap()
            .body;
        let answer = SyncResponse::decode(&body).unwrap();
        pages += 1;
        received += answer.updates.len();
        cursor = answer.cursor;
        if !answer.more {
            assert_eq!(answer.remaining, None);
            break;
        }
        let left = answer
            .remaining
            .expect("a page with more after it says what is left");
        assert_eq!(left.cases, (CASES - received) as u64);
        // Each case left weighs at least its sealed document, and the estimate falls.
        assert!(left.bytes >= left.cases * 200, "{left:?}");
        assert!(left.bytes < bytes_left, "{left:?} after {bytes_left}");
        bytes_left = left.bytes;
        assert!(pages < 100, "the office kept saying there is more");
    }
    assert!(pages >= 2);
    assert_eq!(received, CASES);
}
