//! Can one client stall the office? A good phone's sync latency measured side by side, in one
//! run, against the same real server over TLS on 127.0.0.1:
//!
//! - idle: nothing else happens;
//! - bombs: an enrolled hostile device sends, back to back, sync requests of 40 deflate bombs
//!   (each a 64 KB chunk inflating to 64 MiB) for cases it is not assigned, measured once it has
//!   kept at it for three seconds;
//! - trickle: 130 clients at another address send a `POST /login` body one byte a second.
//!
//! Prints one line per scenario with the median and 90th percentile of 30 syncs (each first
//! writes a note, so every sync uploads and downloads), and each loaded figure's ratio to idle.
//! The aim is under 2x idle. Run: `cargo bench -p fieldcase-tests --bench stall`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use fieldcase_core::ids::CaseId;
use fieldcase_core::protocol::Role;
use fieldcase_core::sync::{CaseChanges, PROTOCOL_VERSION, SyncRequest};
use fieldcase_tests::rawhttp::{RawConnection, request};
use fieldcase_tests::{TestDevice, TestServer, deflate_bomb, raw_device};

const SYNCS: usize = 30;

/// Median and 90th percentile of `SYNCS` syncs of `phone` (each after writing a note), ms.
fn latencies(phone: &TestDevice, case: CaseId) -> (f64, f64) {
    let mut ms: Vec<f64> = (0..SYNCS)
        .map(|i| {
            phone.write_note(case, &format!("note {i} written during the measurement"));
            let start = Instant::now();
            phone.device.sync_now().expect("the good phone's sync");
            start.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    ms.sort_by(f64::total_cmp);
    (ms[SYNCS / 2], ms[SYNCS * 9 / 10])
}

fn report(name: &str, (p50, p90): (f64, f64), idle: Option<(f64, f64)>) {
    match idle {
        None => println!("stall: {name:<8} p50 {p50:7.1} ms  p90 {p90:7.1} ms"),
        Some((i50, i90)) => println!(
            "stall: {name:<8} p50 {p50:7.1} ms  p90 {p90:7.1} ms  ({:.2}x / {:.2}x idle)",
            p50 / i50,
            p90 / i90
        ),
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let server = TestServer::start();
    let ana = server.add_user("ana", Role::FieldWorker);
    server.add_user("mallory", Role::FieldWorker);
    let (case, _) = server.create_case("K-STALL", &[ana]);
    let phone = TestDevice::enroll_direct(&server, "ana");
    phone.device.sync_now().expect("first sync");

    let idle = latencies(&phone, case);
    report("idle", idle, None);

    // An enrolled hostile device uploading bombs for cases it may not change, back to back.
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicUsize::new(0));
    let hostile = raw_device(&server, "mallory");
    let bomb = deflate_bomb(64);
    let body = SyncRequest {
        version: PROTOCOL_VERSION,
        cursor: 0,
        uploads: (0..40)
            .map(|_| CaseChanges {
                case_id: CaseId::new(),
                changes: bomb.clone(),
                heads: vec![automerge::ChangeHash([9; 32])],
            })
            .collect(),
        purged: vec![],
        ..SyncRequest::default()
    }
    .encode()
    .expect("the hostile request");
    let bomber = {
        let (stop, sent) = (stop.clone(), sent.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let _ = hostile.post("/v1/sync", &body);
                sent.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    // A sustained attack: the device has spent its burst when the measurement starts.
    std::thread::sleep(Duration::from_secs(3));
    let bombs = latencies(&phone, case);
    stop.store(true, Ordering::Relaxed);
    bomber.join().expect("the hostile device");
    report("bombs", bombs, Some(idle));
    println!(
        "stall:          ({} hostile requests of 40 bombs each during the measurement)",
        sent.load(Ordering::Relaxed)
    );

    // 130 clients at another address trickle a login form's body, a byte a second.
    let (addr, pin) = (server.addr(), server.fingerprint());
    let other: IpAddr = "127.0.0.2".parse().expect("an address");
    let head = request(
        "POST",
        "/login",
        &[
            (
                "content-type",
                b"application/x-www-form-urlencoded".to_vec(),
            ),
            ("content-length", b"1000".to_vec()),
        ],
        b"",
    );
    let stop = Arc::new(AtomicBool::new(false));
    let tricklers: Vec<_> = (0..130)
        .map(|_| {
            let mut c = RawConnection::connect_from(other, addr, pin);
            let _ = c.write(&head);
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) && c.write(b"x").is_ok() {
                    std::thread::sleep(Duration::from_secs(1));
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let trickle = latencies(&phone, case);
    stop.store(true, Ordering::Relaxed);
    report("trickle", trickle, Some(idle));
    for t in tricklers {
        let _ = t.join();
    }
}
