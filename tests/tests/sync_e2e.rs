//! End to end over real TLS on 127.0.0.1: enrolled phones with real encrypted stores sync with the
//! real office server, through a fault-injecting proxy where the network misbehaves.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use fieldcase_core::CoreError;
use fieldcase_core::model::{TaskStatus, TaskUpdate};
use fieldcase_core::protocol::Role;
use fieldcase_core::transport::TransportError;
use fieldcase_tests::{FaultProxy, TestDevice, TestServer};

#[test]
fn two_phones_edit_one_case_offline_and_all_three_replicas_converge() {
    for a_first in [true, false] {
        let server = TestServer::start();
        let ana = server.add_user("ana", Role::FieldWorker);
        let bojan = server.add_user("bojan", Role::FieldWorker);
        let (case, task) = server.create_case("K-0142", &[ana, bojan]);
        let a = TestDevice::enroll_direct(&server, "ana");
        let b = TestDevice::enroll_direct(&server, "bojan");

        // Morning sync: the office's case and task reach both phones.
        let first = a.device.sync_now().unwrap();
        assert_eq!(first.cases_updated, 1);
        b.device.sync_now().unwrap();
        assert_eq!(a.case(case).tasks[0].id, task);
        let shared = a.write_note(case, "Arrived at the registry office at 9:40.");
        a.device.sync_now().unwrap();
        b.device.sync_now().unwrap();

        // Offline: both add notes, both edit the shared note, both set the task status.
        a.write_note(case, "Ana: the clerk accepted the application.");
        b.write_note(case, "Bojan: client was calm, no interpreter needed.");
        a.device
            .store()
            .edit_note(case, shared, "Arrived at the registry office at 9:35.")
            .unwrap();
        b.device
            .store()
            .edit_note(
                case,
                shared,
                "Arrived at the registry office at 9:40. Queue was short.",
            )
            .unwrap();
        let done = TaskUpdate {
            status: Some(TaskStatus::Done),
            ..Default::default()
        };
        let missed = TaskUpdate {
            status: Some(TaskStatus::Missed),
            ..Default::default()
        };
        a.device.store().update_task(case, task, &done).unwrap();
        b.device.store().update_task(case, task, &missed).unwrap();

        let (first, second) = if a_first { (&a, &b) } else { (&b, &a) };
        first.device.sync_now().unwrap();
        second.device.sync_now().unwrap();
        first.device.sync_now().unwrap();

        let office = server.case(case);
        assert_eq!(a.case(case), office);
        assert_eq!(b.case(case), office);
        assert_eq!(office.notes.len(), 3);
        let merged = &office.notes.iter().find(|n| n.id == shared).unwrap().body;
        assert_eq!(
            merged,
            "Arrived at the registry office at 9:35. Queue was short."
        );
        let conflicts = server.conflicts(case);
        assert_eq!(conflicts.len(), 1, "{conflicts:?}");
        assert_eq!(conflicts[0].field, "status");
        let mut authors: Vec<_> = conflicts[0]
            .values
            .iter()
            .map(|v| v.author.unwrap().user)
            .collect();
        authors.sort();
        let mut expected = vec![ana, bojan];
        expected.sort();
        assert_eq!(authors, expected);
        assert_eq!(a.device.store().conflicts(case).unwrap(), conflicts);
        assert!(a.device.store().pending_changes().unwrap().is_empty());
    }
}

#[test]
fn a_sync_cut_mid_response_completes_next_time_without_loss_or_duplicates() {
    let server = TestServer::start();
    let ana = server.add_user("ana", Role::FieldWorker);
    let (case, _) = server.create_case("K-7", &[ana]);
    let proxy = FaultProxy::start(server.addr());
    let phone = TestDevice::enroll(&server, "ana", &proxy.url());
    phone.device.sync_now().unwrap();

    // The phone writes offline; a second phone of the same worker has written a lot, which
    // waits at the office, so the response carrying it back to this phone is long (random text:
    // it travels as a compressed document, so repeated words would make it short).
    let mine = phone.write_note(case, "written on this phone before the cut");
    let other = TestDevice::enroll_direct(&server, "ana");
    other.device.sync_now().unwrap();
    let mut written = vec![mine];
    for i in 0..40 {
        let details: String = (0..20)
            .map(|_| uuid::Uuid::new_v4().simple().to_string())
            .collect();
        written.push(other.write_note(case, &format!("note {i}: {details}")));
    }
    other.device.sync_now().unwrap();

    proxy.cut_next_response_after(6_000);
    let cut = phone.device.sync_now();
    assert!(matches!(cut, Err(CoreError::Network(_))), "{cut:?}");
    // The office did receive the upload; the phone has not yet seen the other phone's notes.
    assert_eq!(server.case(case).notes.len(), 41);
    assert_eq!(phone.case(case).notes.len(), 1);
    assert_eq!(
        phone.device.store().pending_changes().unwrap().len(),
        1,
        "not acknowledged yet"
    );

    let report = phone.device.sync_now().unwrap();
    assert!(report.round_trips >= 1);
    assert!(
        report.bytes_received > 6_000,
        "the response was not long enough to be cut"
    );
    let office = server.case(case);
    assert_eq!(phone.case(case), office);
    assert_eq!(office.notes.len(), 41, "nothing lost, nothing duplicated");
    for id in &written {
        assert_eq!(office.notes.iter().filter(|n| n.id == *id).count(), 1);
    }
    assert!(phone.device.store().pending_changes().unwrap().is_empty());
}

#[test]
fn the_server_restarts_between_two_syncs_and_nothing_is_lost() {
    let mut server = TestServer::start();
    let ana = server.add_user("ana", Role::FieldWorker);
    let (case, _) = server.create_case("K-9", &[ana]);
    let proxy = FaultProxy::start(server.addr());
    let phone = TestDevice::enroll(&server, "ana", &proxy.url());
    phone.device.sync_now().unwrap();
    phone.write_note(case, "before the restart");
    phone.device.sync_now().unwrap();

    server.restart();
    proxy.set_upstream(server.addr());
    phone.write_note(case, "after the restart");
    phone.device.sync_now().unwrap();
    let office = server.case(case);
    assert_eq!(office.notes.len(), 2);
    assert_eq!(phone.case(case), office);
}

#[test]
fn a_wrong_pinned_fingerprint_is_refused_before_anything_is_sent() {
    let server = TestServer::start();
    server.add_user("ana", Role::FieldWorker);
    let code = server.enrollment_code("ana");
    let dir = tempfile::tempdir().unwrap();
    let keys = fieldcase_core::crypto::StaticKeyProvider::random();
    let mut wrong = server.fingerprint();
    wrong.0[0] ^= 0xff;
    let result = fieldcase_core::device::Device::enroll(
        dir.path(),
        &fieldcase_core::device::ServerAddress {
            url: format!("https://{}", server.addr()),
            pin: wrong,
        },
        &code,
        fieldcase_core::store::KeySetup {
            keystore: Some(&keys),
            passphrase: None,
        },
        fieldcase_core::store::StoreOptions::default(),
    );
    assert!(
        matches!(
            result,
            Err(CoreError::Network(TransportError::PinMismatch { .. }))
        ),
        "{result:?}"
    );
    // No store was created, and the code is still good for the real server.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    TestDevice::enroll_direct(&server, "ana");
}

#[test]
fn the_server_database_holds_no_plaintext_of_the_notes() {
    let server = TestServer::start();
    let ana = server.add_user("ana", Role::FieldWorker);
    let (case, _) = server.create_case("CLIENT-ZEBRA-8812", &[ana]);
    let phone = TestDevice::enroll_direct(&server, "ana");
    phone.device.sync_now().unwrap();
    let secret = "she named the recruiter in Vranje: Milos from the car wash";
    phone.write_note(case, secret);
    phone.device.sync_now().unwrap();
    assert_eq!(
        server.case(case).notes[0].body,
        secret,
        "the office can read it through the API"
    );
    for file in server.db_files() {
        let bytes = std::fs::read(&file).unwrap();
        for needle in [
            secret.as_bytes(),
            b"CLIENT-ZEBRA-8812".as_slice(),
            "Matična služba".as_bytes(),
        ] {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle),
                "plaintext in {}",
                file.display()
            );
        }
    }
}

/// The devices the office lists for a user (revoked or not).
fn devices_of(server: &TestServer, user: fieldcase_core::ids::UserId) -> i64 {
    server.with_sql(|sql| {
        sql.query_row(
            "SELECT count(*) FROM devices WHERE user_id = ?1",
            fieldcase_server::sql_params![&user.to_string()],
        )?
        .get(0)
    })
}

#[test]
fn an_enrollment_that_cannot_make_its_store_uses_no_code_and_leaves_no_device() {
    use fieldcase_core::device::{Device, ServerAddress};
    use fieldcase_core::store::KeySetup;
    let server = TestServer::start();
    let ana = server.add_user("ana", Role::FieldWorker);
    let taken = TestDevice::enroll_direct(&server, "ana");
    assert_eq!(devices_of(&server, ana), 1);
    let address = ServerAddress {
        url: format!("https://{}", server.addr()),
        pin: server.fingerprint(),
    };
    let code = server.enrollment_code("ana");
    let clock = std::sync::Arc::new(fieldcase_core::clock::ManualClock::new(
        time::OffsetDateTime::now_utc(),
    ));
    let keys = fieldcase_core::crypto::StaticKeyProvider::random();
    let with_key = || KeySetup {
        keystore: Some(&keys),
        passphrase: None,
    };
    let enroll = |dir: &std::path::Path, setup: KeySetup<'_>| {
        Device::enroll(
            dir,
            &address,
            &code,
            setup,
            fieldcase_tests::device_options(&clock),
        )
    };
    let no_key = KeySetup {
        keystore: None,
        passphrase: None,
    };
    let empty_passphrase = KeySetup {
        keystore: None,
        passphrase: Some(""),
    };
    let (first, second) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    assert!(matches!(
        enroll(taken.path(), with_key()),
        Err(CoreError::AlreadyExists)
    ));
    assert!(matches!(
        enroll(first.path(), no_key),
        Err(CoreError::KeyProvider(_))
    ));
    assert!(matches!(
        enroll(second.path(), empty_passphrase),
        Err(CoreError::Invalid(_))
    ));
    assert_eq!(
        devices_of(&server, ana),
        1,
        "a phantom device at the office"
    );
    // The code is still good for the phone it was meant for.
    enroll(first.path(), with_key()).unwrap();
    assert_eq!(devices_of(&server, ana), 2);
}

#[test]
fn an_office_asked_to_says_where_each_syncs_time_went_and_compaction_shows_in_it() {
    use fieldcase_tests::load_report::OfficeSplit;

    let quiet = TestServer::start();
    let ana = quiet.add_user("ana", Role::FieldWorker);
    quiet.create_case("K-QUIET", &[ana]);
    let phone = TestDevice::enroll_direct(&quiet, "ana");
    let report = phone.device.sync_now().unwrap();
    assert!(report.server_timing.is_empty(), "off unless configured");
    assert!(report.round_trip_time > std::time::Duration::ZERO);

    let server = TestServer::start_adjusted(None, |limits| limits.server_timing = true);
    let ana = server.add_user("ana", Role::FieldWorker);
    let (case, _) = server.create_case("K-TIMED", &[ana]);
    let phone = TestDevice::enroll_direct(&server, "ana");
    let first = phone.device.sync_now().unwrap();
    assert_eq!(first.server_timing.len(), first.round_trips);
    let split = OfficeSplit::parse(&first.server_timing).unwrap();
    assert!(
        split.total > 0.0 && split.tx > 0.0 && split.commit > 0.0,
        "{split:?}"
    );
    assert!(split.total >= split.tx && split.tx >= split.commit);
    // Each sync stores one more chunk of the case; once the chunks pile up (in number, or in
    // bytes against the snapshot) a sync compacts them into a new snapshot, and says so; the
    // others only append.
    let mut compacted = 0;
    for i in 0..40 {
        phone.write_note(case, &format!("note {i}"));
        let report = phone.device.sync_now().unwrap();
        let split = OfficeSplit::parse(&report.server_timing).unwrap();
        if split.compact > 0.0 {
            compacted += 1;
        }
    }
    assert!(
        (1..40).contains(&compacted),
        "compacted {compacted} times in 40"
    );
}

#[test]
fn a_streamed_answer_stops_at_its_bound_and_the_phone_asks_again_for_the_rest() {
    use fieldcase_core::sync::hub::RESPONSE_BUDGET;
    // More than one streamed answer carries (1 MiB): office-made cases of about 800 bytes.
    const CASES: usize = 1_600;
    let server = TestServer::start();
    let ana = server.add_user("ana", Role::FieldWorker);
    for i in 0..CASES {
        server.create_case(&format!("K-{i:05}"), &[ana]);
    }
    let phone = TestDevice::enroll_direct(&server, "ana");
    let report = phone.device.sync_now().unwrap();
    assert!(
        report.bytes_received > 1024 * 1024,
        "{} B: not past one answer's bound",
        report.bytes_received
    );
    // Each answer carries many pages; the bound ends one, and the phone asks again at once.
    let pages = report.bytes_received / RESPONSE_BUDGET + 1;
    assert!(
        report.round_trips >= 2 && report.round_trips < pages,
        "{} round trips for {pages} pages",
        report.round_trips
    );
    assert_eq!(phone.device.store().list_cases().unwrap().len(), CASES);
    // Nothing is left: the next sync moves no case.
    assert_eq!(phone.device.sync_now().unwrap().cases_updated, 0);
}
