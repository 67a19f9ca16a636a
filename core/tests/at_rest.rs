//! Nothing that describes a person or a case is stored in the clear: not in the database, not in
//! its WAL, not in the key file.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use fieldcase_core::store::{DB_FILE, KEY_FILE};
use time::macros::datetime;

const SECRETS: &[&str] = &[
    "ZEBRA-CLIENT-4471",
    "she was afraid of the man at the bus station in Vranje",
    "Bulevar Oslobodjenja 99 Zrenjanin",
    "Okruzni sud Uzice hearing prep",
    "passport photocopy for Dimitrovgrad",
];

fn scan(dir: &std::path::Path) -> Vec<(String, &'static str)> {
    let mut found = Vec::new();
    for name in [
        DB_FILE.to_string(),
        format!("{DB_FILE}-wal"),
        KEY_FILE.to_string(),
    ] {
        let Ok(bytes) = std::fs::read(dir.join(&name)) else {
            continue;
        };
        for secret in SECRETS {
            if contains(&bytes, secret.as_bytes()) {
                found.push((name.clone(), *secret));
            }
        }
    }
    found
}

#[test]
fn database_wal_and_key_file_hold_no_plaintext() {
    let dir = tempfile::tempdir().unwrap();
    let t = create(dir.path(), [3; 32]);
    let me = t.identity.user;
    let case = t.store.create_case(&new_case(SECRETS[0], me)).unwrap();
    t.store.write_note(case, &note(SECRETS[1])).unwrap();
    let mut new_task = task(SECRETS[3], datetime!(2026-11-24 10:00 +01:00), me);
    new_task.office_address = SECRETS[2].into();
    new_task.checklist = vec![SECRETS[4].into()];
    t.store.add_task(case, &new_task).unwrap();
    // Enough edits to go past a compaction as well.
    for i in 0..40 {
        t.store
            .write_note(case, &note(&format!("{} #{i}", SECRETS[1])))
            .unwrap();
    }
    assert!(
        dir.path().join(format!("{DB_FILE}-wal")).exists(),
        "the WAL is scanned while open"
    );
    assert_eq!(
        scan(dir.path()),
        vec![],
        "plaintext found while the store is open"
    );

    // The data is really there, through the API.
    let timeline = t.store.timeline(case).unwrap();
    assert_eq!(timeline.len(), 42);
    drop(t);
    assert_eq!(scan(dir.path()), vec![], "plaintext found after close");
    // And the test would notice plaintext: the scanner finds what is really there.
    let bytes = std::fs::read(dir.path().join(DB_FILE)).unwrap();
    assert!(
        contains(&bytes, b"case_index"),
        "scanner reads the real file"
    );
}
