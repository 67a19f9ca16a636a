//! Faults of the phone's disk: full, read-only, the database replaced by something else. Each
//! gives a typed storage error, corrupts nothing (`PRAGMA integrity_check` says ok), loses no
//! acknowledged note, and the store works again once the fault is cleared.
//!
//! The faults are real: the store lives on its own small tmpfs (a real `ENOSPC` when it fills, a
//! real read-only remount), because the tests run as root, for whom `chmod` changes nothing.
//! Mounting needs root with `CAP_SYS_ADMIN`, which the test machines have.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod mounts;

use std::path::Path;

use common::*;
use fieldcase_core::CoreError;
use fieldcase_core::crypto::StaticKeyProvider;
use fieldcase_core::ids::CaseId;
use fieldcase_core::store::{DB_FILE, Store};
use mounts::Tmpfs;
use rusqlite::ErrorCode;

const KEY: [u8; 32] = [0x3c; 32];

fn sqlite_code(e: &CoreError) -> Option<ErrorCode> {
    match e {
        CoreError::Storage(rusqlite::Error::SqliteFailure(f, _)) => Some(f.code),
        _ => None,
    }
}

fn integrity_ok(dir: &Path) {
    let conn = rusqlite::Connection::open(dir.join(DB_FILE)).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
}

fn reopen(dir: &Path) -> Store {
    let store = Store::open(dir, options(&new_clock())).unwrap();
    store
        .unlock_with_keystore(&StaticKeyProvider::new(KEY))
        .unwrap();
    store
}

fn note_bodies(store: &Store, case: CaseId) -> Vec<String> {
    store
        .case(case)
        .unwrap()
        .notes
        .into_iter()
        .map(|n| n.body)
        .collect()
}

fn assert_all_present(store: &Store, case: CaseId, acknowledged: &[String]) {
    let have = note_bodies(store, case);
    for body in acknowledged {
        assert!(have.contains(body), "acknowledged note {body:?} lost");
    }
}

#[test]
fn a_full_disk_is_a_typed_error_and_loses_no_acknowledged_note() {
    let disk = Tmpfs::mount(2 * 1024 * 1024);
    let dir = disk.path().join("store");
    std::fs::create_dir(&dir).unwrap();
    let t = create(&dir, KEY);
    let case = t
        .store
        .create_case(&new_case("K-9", t.identity.user))
        .unwrap();
    let mut acknowledged = Vec::new();
    for i in 0..5 {
        let body = format!("before the disk filled {i}");
        t.store.write_note(case, &note(&body)).unwrap();
        acknowledged.push(body);
    }
    let filler = disk.fill();
    // Write until the disk refuses: every write either commits or fails with "disk full".
    let long = "x".repeat(20_000);
    let mut refusal = None;
    for i in 0..200 {
        let body = format!("{i} {long}");
        match t.store.write_note(case, &note(&body)) {
            Ok(_) => acknowledged.push(body),
            Err(e) => {
                refusal = Some((e, body));
                break;
            }
        }
    }
    let (refusal, refused_body) = refusal.expect("the full disk never refused a write");
    assert_eq!(
        sqlite_code(&refusal),
        Some(ErrorCode::DiskFull),
        "expected a disk-full storage error, got {refusal:?}"
    );
    // The store still reads, and a second refusal is just as clean.
    assert_all_present(&t.store, case, &acknowledged);
    assert!(t.store.write_note(case, &note(&long)).is_err());

    // Space again: the same open store writes, and the refused note did not sneak in with it.
    std::fs::remove_file(&filler).unwrap();
    t.store
        .write_note(case, &note("freed, same store"))
        .unwrap();
    acknowledged.push("freed, same store".to_owned());
    assert!(!note_bodies(&t.store, case).contains(&refused_body));
    drop(t);
    integrity_ok(&dir);
    let store = reopen(&dir);
    assert!(!note_bodies(&store, case).contains(&refused_body));
    assert_all_present(&store, case, &acknowledged);
    store
        .write_note(case, &note("after the disk was freed"))
        .unwrap();
    assert!(note_bodies(&store, case).contains(&"after the disk was freed".to_owned()));
    drop(store);
    integrity_ok(&dir);
}

#[test]
fn a_read_only_folder_is_a_typed_error_and_recovers() {
    let disk = Tmpfs::mount(8 * 1024 * 1024);
    let dir = disk.path().join("store");
    std::fs::create_dir(&dir).unwrap();
    let t = create(&dir, KEY);
    let case = t
        .store
        .create_case(&new_case("K-10", t.identity.user))
        .unwrap();
    let acknowledged = vec!["written while writable".to_owned()];
    t.store.write_note(case, &note(&acknowledged[0])).unwrap();

    // A file system cannot turn read-only under open files (the kernel refuses with EBUSY), so
    // the phone restarts onto a read-only data folder: opening, unlocking or writing fails with
    // a typed storage error, never a panic, and nothing is written.
    drop(t);
    disk.remount(true);
    let refusal = Store::open(&dir, options(&new_clock()))
        .and_then(|store| {
            store.unlock_with_keystore(&StaticKeyProvider::new(KEY))?;
            store.write_note(case, &note("written while read-only"))
        })
        .expect_err("a read-only disk accepted a write");
    assert!(
        matches!(refusal, CoreError::Storage(_) | CoreError::Io(_)),
        "expected a storage error, got {refusal:?}"
    );
    if let Some(code) = sqlite_code(&refusal) {
        assert!(
            matches!(
                code,
                ErrorCode::ReadOnly | ErrorCode::CannotOpen | ErrorCode::SystemIoFailure
            ),
            "got {refusal:?}"
        );
    }

    disk.remount(false);
    let store = reopen(&dir);
    assert_all_present(&store, case, &acknowledged);
    assert!(
        !note_bodies(&store, case).contains(&"written while read-only".to_owned()),
        "a refused write was stored"
    );
    store.write_note(case, &note("writable again")).unwrap();
    drop(store);
    integrity_ok(&dir);
}

#[test]
fn a_database_replaced_by_a_folder_is_a_typed_error_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let t = create(dir.path(), KEY);
    let case = t
        .store
        .create_case(&new_case("K-11", t.identity.user))
        .unwrap();
    let acknowledged = vec!["kept across the fault".to_owned()];
    t.store.write_note(case, &note(&acknowledged[0])).unwrap();
    drop(t);

    // The database file is moved away and a folder stands in its place (an I/O error on open).
    let db = dir.path().join(DB_FILE);
    let aside = dir.path().join("moved-aside.db");
    std::fs::rename(&db, &aside).unwrap();
    std::fs::create_dir(&db).unwrap();
    let refusal = match Store::open(dir.path(), options(&new_clock())) {
        Ok(store) => store
            .unlock_with_keystore(&StaticKeyProvider::new(KEY))
            .expect_err("a folder opened as the database"),
        Err(e) => e,
    };
    assert!(
        matches!(refusal, CoreError::Storage(_) | CoreError::Io(_)),
        "expected a storage error, got {refusal:?}"
    );
    assert!(db.is_dir(), "the failed open replaced the folder");

    // The file is back: everything is there.
    std::fs::remove_dir(&db).unwrap();
    std::fs::rename(&aside, &db).unwrap();
    let store = reopen(dir.path());
    assert_all_present(&store, case, &acknowledged);
    store.write_note(case, &note("after the fault")).unwrap();
    drop(store);
    integrity_ok(dir.path());
}

#[test]
fn an_unreadable_key_file_is_a_typed_error_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let t = create(dir.path(), KEY);
    let case = t
        .store
        .create_case(&new_case("K-12", t.identity.user))
        .unwrap();
    t.store
        .write_note(case, &note("sealed under the key"))
        .unwrap();
    drop(t);
    let keys = dir.path().join(fieldcase_core::store::KEY_FILE);
    let saved = std::fs::read(&keys).unwrap();

    // Garbage in place of the key file: corrupt, never a panic, the database untouched.
    std::fs::write(&keys, b"\x00\xffnot a key file").unwrap();
    let refused = Store::open(dir.path(), options(&new_clock()))
        .and_then(|s| s.unlock_with_keystore(&StaticKeyProvider::new(KEY)));
    assert!(
        matches!(refused, Err(CoreError::Corrupt { .. })),
        "got {refused:?}"
    );
    // A folder in place of the key file: an I/O error.
    std::fs::remove_file(&keys).unwrap();
    std::fs::create_dir(&keys).unwrap();
    let refused = Store::open(dir.path(), options(&new_clock()))
        .and_then(|s| s.unlock_with_keystore(&StaticKeyProvider::new(KEY)));
    assert!(
        matches!(refused, Err(CoreError::Io(_) | CoreError::Corrupt { .. })),
        "got {refused:?}"
    );
    std::fs::remove_dir(&keys).unwrap();
    std::fs::write(&keys, saved).unwrap();
    let store = reopen(dir.path());
    assert_eq!(note_bodies(&store, case), vec!["sealed under the key"]);
    drop(store);
    integrity_ok(dir.path());
}
