//! Sync over real TLS on loopback: first sync of a phone assigned 1,000 cases of 20 notes each,
//! then an incremental sync with 10 cases changed, then one with nothing changed. Prints time,
//! bytes each way and round trips, and each incremental sync's bytes against the changed cases'
//! own change bytes.
//!
//! Run: `cargo bench -p fieldcase-tests --bench sync` (set `FIELDCASE_BENCH_CASES` for another N).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Instant;

use fieldcase_core::protocol::Role;
use fieldcase_core::sync::SyncReport;
use fieldcase_tests::{TestDevice, TestServer};

fn note(i: usize) -> String {
    format!(
        "Visit {i}: went with the client to the centre; the officer took the application, asked for the birth certificate copy, and set the interview for next week. Client calm."
    )
}

fn show(label: &str, elapsed: std::time::Duration, r: &SyncReport) {
    println!(
        "{label:<38} {:>9.1} ms  sent {:>10} B  received {:>10} B  round trips {:>3}  cases up {:>4} down {:>4}",
        elapsed.as_secs_f64() * 1e3,
        r.bytes_sent,
        r.bytes_received,
        r.round_trips,
        r.cases_uploaded,
        r.cases_updated
    );
}

fn main() {
    let n: usize = std::env::var("FIELDCASE_BENCH_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let server = TestServer::start();
    let ana = server.add_user("ana", Role::FieldWorker);
    let started = Instant::now();
    let cases: Vec<_> = (0..n)
        .map(|i| server.create_case(&format!("K-{i:04}"), &[ana]).0)
        .collect();
    // A first phone writes the notes, as a worker would, and syncs them to the office.
    let seeder = TestDevice::enroll_direct(&server, "ana");
    seeder.device.sync_now().unwrap();
    for (c, case) in cases.iter().enumerate() {
        for i in 0..20 {
            seeder.write_note(*case, &note(c * 20 + i));
        }
    }
    seeder.device.sync_now().unwrap();
    println!(
        "setup: {n} cases x 20 notes on the server in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // A newly enrolled phone of the same worker.
    let phone = TestDevice::enroll_direct(&server, "ana");
    let t = Instant::now();
    let first = phone.device.sync_now().unwrap();
    show(
        &format!("first sync, {n} cases x 20 notes"),
        t.elapsed(),
        &first,
    );
    assert_eq!(first.cases_updated, n);

    // Ten cases change at the office (through the seeding phone).
    let before = seeder
        .device
        .store()
        .prepare_sync()
        .unwrap()
        .request()
        .uploads
        .len();
    assert_eq!(before, 0);
    for case in &cases[..10] {
        seeder.write_note(
            *case,
            "follow-up call: the decision arrived, interview on Monday",
        );
    }
    let changed_bytes: usize = seeder
        .device
        .store()
        .prepare_sync()
        .unwrap()
        .request()
        .uploads
        .iter()
        .map(|u| u.changes.len())
        .sum();
    seeder.device.sync_now().unwrap();
    let t = Instant::now();
    let ten = phone.device.sync_now().unwrap();
    show("incremental, 10 changed at the office", t.elapsed(), &ten);
    println!(
        "  the 10 changes themselves: {changed_bytes} B; received / change bytes = {:.2}",
        ten.bytes_received as f64 / changed_bytes as f64
    );

    // Ten cases change on the phone.
    for case in &cases[10..20] {
        phone.write_note(*case, "at the court: hearing postponed to the 12th");
    }
    let t = Instant::now();
    let up = phone.device.sync_now().unwrap();
    show("incremental, 10 changed on the phone", t.elapsed(), &up);

    let t = Instant::now();
    let idle = phone.device.sync_now().unwrap();
    show("no change", t.elapsed(), &idle);
}
