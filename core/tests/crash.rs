//! A store killed mid-write (SIGKILL) reopens with every note it had acknowledged.
//!
//! The test re-runs its own binary as a child that writes notes in a loop and prints the id of
//! each one after `write_note` returns; the parent kills it at a random moment, then reopens the
//! store and checks every printed note is there and the database passes `integrity_check`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use fieldcase_core::crypto::StaticKeyProvider;
use fieldcase_core::ids::CaseId;
use fieldcase_core::store::Store;

const CHILD_ENV: &str = "FIELDCASE_CRASH_CHILD_DIR";
const KEY: [u8; 32] = [0x5a; 32];

/// The child process of `killed_writer_loses_no_acknowledged_note`; run only by it.
#[test]
#[ignore = "run as a child process by killed_writer_loses_no_acknowledged_note"]
fn crash_child_writer() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let dir = std::path::PathBuf::from(dir);
    let store = Store::open(&dir, options(&new_clock())).unwrap();
    store
        .unlock_with_keystore(&StaticKeyProvider::new(KEY))
        .unwrap();
    let case: CaseId = std::env::var("FIELDCASE_CRASH_CASE")
        .unwrap()
        .parse()
        .unwrap();
    let mut out = std::io::stdout().lock();
    for i in 0.. {
        let id = store
            .write_note(case, &note(&format!("note {i} written before the kill")))
            .unwrap();
        use std::io::Write;
        writeln!(out, "committed {id}").unwrap();
        out.flush().unwrap();
    }
}

#[test]
fn killed_writer_loses_no_acknowledged_note() {
    let dir = tempfile::tempdir().unwrap();
    let t = create(dir.path(), KEY);
    let case = t
        .store
        .create_case(&new_case("K-7", t.identity.user))
        .unwrap();
    drop(t);
    let exe = std::env::current_exe().unwrap();
    let mut acknowledged = Vec::new();
    for round in 0..5u64 {
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "crash_child_writer",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, dir.path())
            .env("FIELDCASE_CRASH_CASE", case.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        // Let it write for a while (a different number of notes each round), then kill it mid-write.
        let want = 5 + round as usize * 7;
        let started = Instant::now();
        let mut seen = 0;
        while seen < want && started.elapsed() < Duration::from_secs(60) {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(id) = line.strip_prefix("committed ") {
                        acknowledged.push(id.to_owned());
                        seen += 1;
                    }
                }
                _ => break,
            }
        }
        child.kill().unwrap(); // SIGKILL on Unix
        // Anything printed before the kill landed is acknowledged too.
        for line in lines.map_while(Result::ok) {
            if let Some(id) = line.strip_prefix("committed ") {
                acknowledged.push(id.to_owned());
            }
        }
        child.wait().unwrap();
        assert!(seen > 0, "child wrote nothing in round {round}");

        let store = Store::open(dir.path(), options(&new_clock())).unwrap();
        store
            .unlock_with_keystore(&StaticKeyProvider::new(KEY))
            .unwrap();
        let notes: Vec<String> = store
            .case(case)
            .unwrap()
            .notes
            .iter()
            .map(|n| n.id.to_string())
            .collect();
        for id in &acknowledged {
            assert!(
                notes.contains(id),
                "acknowledged note {id} lost after kill in round {round}"
            );
        }
        drop(store);
        let conn =
            rusqlite::Connection::open(dir.path().join(fieldcase_core::store::DB_FILE)).unwrap();
        let check: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(check, "ok");
    }
    assert!(acknowledged.len() >= 5 + 12 + 19 + 26 + 33);
}
