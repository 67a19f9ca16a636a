//! A phone's first sync of hundreds of cases, against the real office over real TLS, reports its
//! progress: figures that never go backwards, the office's estimate of what is left known
//! before the cases arrive, and a last event whose done equals its expected.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use fieldcase_core::device::HttpsSync;
use fieldcase_core::ids::{CaseId, UserId};
use fieldcase_core::protocol::Role;
use fieldcase_core::sync::{SyncProgress, SyncTransport, sync_with_progress};
use fieldcase_tests::{TestDevice, TestServer, office_notes};
use rand::Rng;
use rand::distributions::Alphanumeric;

/// The rules every sync's events keep, whatever the estimates were.
fn assert_rules(events: &[SyncProgress]) {
    assert!(!events.is_empty());
    for pair in events.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        assert!(b.cases_done >= a.cases_done, "cases went back: {pair:?}");
        assert!(b.bytes_done >= a.bytes_done, "bytes went back: {pair:?}");
        assert!(
            b.cases_expected >= a.cases_expected,
            "expected cases fell: {pair:?}"
        );
        assert!(
            b.bytes_expected >= a.bytes_expected,
            "expected bytes fell: {pair:?}"
        );
    }
    for e in events {
        assert!(
            e.cases_done <= e.cases_expected && e.bytes_done <= e.bytes_expected,
            "{e:?}"
        );
    }
    let (last, before) = events.split_last().unwrap();
    assert!(last.finished && before.iter().all(|e| !e.finished));
    assert_eq!(last.cases_done, last.cases_expected);
    assert_eq!(last.bytes_done, last.bytes_expected);
}

/// The phone's real transport, asking for one page a round trip, so that each page is one
/// event for certain (a streamed answer is applied in batches of whatever frames have
/// arrived, which on loopback is a matter of timing).
struct PageByPage(HttpsSync);

impl SyncTransport for PageByPage {
    fn round_trip(&mut self, request: &[u8]) -> fieldcase_core::Result<Vec<u8>> {
        self.0.round_trip(request)
    }
}

fn note_body(len: usize) -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

/// `n` cases for `worker`, each with a task and two notes the office wrote after opening it
/// (stored as chunks after the case's snapshot, as an office's cases are).
fn caseload(server: &TestServer, worker: UserId, n: usize) -> Vec<CaseId> {
    let cases: Vec<CaseId> = (0..n)
        .map(|i| server.create_case(&format!("K-{i:04}"), &[worker]).0)
        .collect();
    let state = &server.running().state;
    let vault = state.vault().clone();
    office_notes(state.db(), &vault, state.now(), &cases, 2, &|_, _| {
        note_body(400)
    })
    .unwrap();
    cases
}

#[test]
fn a_first_sync_of_hundreds_of_cases_reports_progress_up_to_done_equal_expected() {
    const CASES: usize = 400;
    let server = TestServer::start();
    let ana = server.add_user("ana", Role::FieldWorker);
    let cases = caseload(&server, ana, CASES);

    // Round by round, as the sync loop reports it over the phone's real transport.
    let phone = TestDevice::enroll_direct(&server, "ana");
    let mut transport = PageByPage(HttpsSync::new(phone.device.client().unwrap()));
    let mut events = Vec::new();
    let report = sync_with_progress(
        phone.device.store(),
        &mut transport,
        &mut |p: SyncProgress| events.push(p),
    )
    .unwrap();
    assert!(
        report.round_trips >= 3,
        "{} round trips: not a paged sync",
        report.round_trips
    );
    // One event before the first round, one after each answer (the last one the end).
    assert_eq!(events.len(), report.round_trips + 1);
    assert_rules(&events);
    let last = *events.last().unwrap();
    assert_eq!(last.cases_done, CASES as u64);
    // Every byte that moved is done (and estimated bytes never sent count as done too).
    assert!(last.bytes_done >= (report.bytes_sent + report.bytes_received) as u64);
    // After the first page the office said how much was left: the bar knew every case, and
    // most of the bytes, long before they arrived.
    let after_first = events[1];
    assert_eq!(after_first.cases_expected, CASES as u64);
    assert!(after_first.cases_done < CASES as u64 / 2);
    assert!(
        after_first.bytes_expected >= last.bytes_done / 2,
        "estimate {} of {} bytes",
        after_first.bytes_expected,
        last.bytes_done
    );
    assert_eq!(phone.device.store().list_cases().unwrap().len(), CASES);

    // Uploads are known from the outbox before anything is sent: long notes on half the cases
    // take several rounds to go up.
    let written = &cases[..CASES / 2];
    for case in written {
        phone.write_note(*case, &note_body(1500));
    }
    let mut events = Vec::new();
    let report = sync_with_progress(
        phone.device.store(),
        &mut transport,
        &mut |p: SyncProgress| events.push(p),
    )
    .unwrap();
    assert!(report.round_trips >= 2, "{report:?}");
    assert_rules(&events);
    assert_eq!(events[0].cases_expected, written.len() as u64);
    assert_eq!(events[0].cases_done, 0);
    assert_eq!(report.cases_uploaded, written.len());
    assert_eq!(events.last().unwrap().cases_done, written.len() as u64);
}

#[test]
fn the_device_hands_events_to_a_slow_listener_without_slowing_the_sync() {
    const CASES: usize = 300;
    let server = TestServer::start();
    let ana = server.add_user("ana", Role::FieldWorker);
    caseload(&server, ana, CASES);
    let phone = TestDevice::enroll_direct(&server, "ana");
    let seen: Arc<Mutex<Vec<(SyncProgress, std::thread::ThreadId)>>> = Arc::default();
    let theirs = Arc::clone(&seen);
    let listener = move |p: SyncProgress| {
        theirs
            .lock()
            .unwrap()
            .push((p, std::thread::current().id()));
        // A listener slower than the link: it is given the latest event when it is ready.
        std::thread::sleep(Duration::from_millis(300));
    };
    let report = phone
        .device
        .sync_now_with_progress(Some(Arc::new(listener)))
        .unwrap();
    assert!(report.frames >= 3, "{report:?}");
    let seen = seen.lock().unwrap();
    let events: Vec<SyncProgress> = seen.iter().map(|(p, _)| *p).collect();
    // The listener got the end before the call returned, in order, on a thread not the caller's.
    assert_rules(&events);
    assert_eq!(events.last().unwrap().cases_done, CASES as u64);
    assert!(seen.iter().all(|(_, t)| *t != std::thread::current().id()));
    assert_eq!(phone.device.store().list_cases().unwrap().len(), CASES);

    // A listener that panics gets nothing more, and the sync does not notice.
    let phone = TestDevice::enroll_direct(&server, "ana");
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = Arc::clone(&calls);
    let failing = move |_p: SyncProgress| {
        counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        panic!("the app's listener failed");
    };
    let report = phone
        .device
        .sync_now_with_progress(Some(Arc::new(failing)))
        .unwrap();
    assert!(report.frames >= 3);
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert_eq!(phone.device.store().list_cases().unwrap().len(), CASES);
}
