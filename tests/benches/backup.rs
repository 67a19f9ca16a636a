//! Backups of a running office, measured: an office of N cases of 20 notes each (N = 2,000 by
//! default, `--cases 10000` for the full size) on SQLite; the time and size of
//! `office::backup::create` while the office serves; a phone's sync latency while the backup
//! runs against the same office idle (each sync after writing a note; ten backups, each after
//! ten idle syncs, so that both are measured side by side on the same machine);
//! and the time of a restore. Run: `cargo bench -p fieldcase-tests --bench backup`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use fieldcase_core::ids::CaseId;
use fieldcase_core::model::{ConsentStatus, NewCase};
use fieldcase_core::protocol::Role;
use fieldcase_server::office::{backup, cases};
use fieldcase_tests::{TestDevice, TestServer, office_notes};

const NOTES: usize = 20;
/// Backups taken, each after ten idle syncs: one backup overlaps only a few syncs.
const ROUNDS: usize = 10;

fn percentiles(mut ms: Vec<f64>) -> (f64, f64) {
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| ms[((ms.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.9))
}

/// One sync of `phone` after writing a note, ms.
fn one_sync(phone: &TestDevice, case: CaseId, i: usize) -> f64 {
    phone.write_note(case, &format!("note {i} written during the measurement"));
    let start = Instant::now();
    phone.device.sync_now().expect("the phone's sync");
    start.elapsed().as_secs_f64() * 1000.0
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--list") {
        return;
    }
    let n: usize = args
        .iter()
        .position(|a| a == "--cases")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000);
    // One phone syncs back to back for the whole run: more often than the per-device rate
    // limit lets a phone do in the field.
    let server = TestServer::start_adjusted(None, |limits| {
        limits.device_burst = 100_000;
        limits.device_requests_per_sec = 100_000;
    });
    let state = &server.running().state;
    let vault = state.vault().clone();
    let (ana, bea) = (
        server.add_user("ana", Role::FieldWorker),
        server.add_user("bea", Role::FieldWorker),
    );
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let seeding = Instant::now();
    let made: Vec<CaseId> = (0..n)
        .map(|i| {
            let new = NewCase {
                client_code: format!("K-B-{i:05}"),
                consent: ConsentStatus::Given,
                assigned_workers: vec![bea],
            };
            state
                .db()
                .write(|sql| cases::create_case(sql, &vault, &new, None, now))
                .unwrap()
                .keep(&vault)
                .0
        })
        .collect();
    office_notes(state.db(), &vault, now, &made, NOTES, &|c, i| {
        format!("Visit {i} of case {c}: the client was accompanied to the office as planned.")
    })
    .unwrap();
    println!(
        "backup: seeded {n} cases of {NOTES} notes in {:.1} s",
        seeding.elapsed().as_secs_f64()
    );
    let (case, _) = server.create_case("K-PHONE", &[ana]);
    let phone = TestDevice::enroll_direct(&server, "ana");
    phone.device.sync_now().unwrap();

    let (identity, recipient) = {
        let identity = age::x25519::Identity::generate();
        let recipient = identity.to_public();
        (identity, recipient)
    };
    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("office.fcbak");
    // Rounds of idle syncs and of syncs during a backup, alternating, so that both see the same
    // machine; one backup overlaps only a few syncs.
    let (mut idle, mut during, mut took) = (Vec::new(), Vec::new(), Vec::new());
    let mut i = 0;
    for _ in 0..ROUNDS {
        for _ in 0..10 {
            idle.push(one_sync(&phone, case, i));
            i += 1;
        }
        let data = server.dir.path().to_path_buf();
        let (to, recipients) = (file.clone(), vec![recipient.clone()]);
        let started = Instant::now();
        let job = std::thread::spawn(move || {
            let db = data.join(fieldcase_server::storage::sql::DB_FILE);
            backup::create(&data, Some(&db), &recipients, &to, now).unwrap();
            Instant::now()
        });
        while !job.is_finished() {
            during.push(one_sync(&phone, case, i));
            i += 1;
        }
        took.push(job.join().unwrap().duration_since(started).as_secs_f64());
    }
    took.sort_by(f64::total_cmp);
    let took = took[took.len() / 2];
    let idle = percentiles(idle);
    let size = std::fs::metadata(&file).unwrap().len();
    let db_size = std::fs::metadata(server.dir.path().join("server.db"))
        .unwrap()
        .len();
    println!(
        "backup: create {:.2} s (median of {ROUNDS}), {:.1} MB (database {:.1} MB)",
        took,
        size as f64 / 1e6,
        db_size as f64 / 1e6
    );
    println!(
        "backup: phone sync idle p50 {:.1} ms p90 {:.1} ms",
        idle.0, idle.1
    );
    if during.len() >= 3 {
        let d = percentiles(during.clone());
        println!(
            "backup: phone sync during the backup p50 {:.1} ms p90 {:.1} ms ({} syncs; {:.2}x / {:.2}x idle)",
            d.0,
            d.1,
            during.len(),
            d.0 / idle.0,
            d.1 / idle.1
        );
    } else {
        println!(
            "backup: the backup ended after {} syncs: too short to measure",
            during.len()
        );
    }
    let restored = out.path().join("restored");
    let start = Instant::now();
    backup::restore(&file, &[identity], &restored, now).unwrap();
    println!("backup: restore {:.2} s", start.elapsed().as_secs_f64());
}
