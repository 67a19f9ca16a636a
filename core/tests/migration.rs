//! A database written by the first schema version opens and migrates; the migrated schema equals
//! a fresh one. The fixture in `tests/fixtures/store-v1` was written by schema 1 (see
//! `write_v1_fixture`, run by hand with `--ignored` only when a new fixture is wanted).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use common::*;
use fieldcase_core::crypto::StaticKeyProvider;
use fieldcase_core::ids::{DeviceId, UserId};
use fieldcase_core::store::{DB_FILE, KEY_FILE, KeySetup, Store, StoreIdentity, schema};

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/store-v1");
const FIXTURE_KEY: [u8; 32] = [0x42; 32];

fn schema_of(path: &Path) -> Vec<(String, String)> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut stmt = conn
        .prepare("SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY name")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn version_one_database_opens_and_migrates() {
    let dir = tempfile::tempdir().unwrap();
    for name in [DB_FILE, KEY_FILE] {
        std::fs::copy(Path::new(FIXTURE).join(name), dir.path().join(name)).unwrap();
    }
    let before = rusqlite::Connection::open(dir.path().join(DB_FILE)).unwrap();
    assert_eq!(schema::version(&before).unwrap(), 1);
    drop(before);

    let store = Store::open(dir.path(), options(&new_clock())).unwrap();
    store
        .unlock_with_keystore(&StaticKeyProvider::new(FIXTURE_KEY))
        .unwrap();
    let cases = store.list_cases().unwrap();
    assert_eq!(cases.len(), 1);
    let case = store.case(cases[0].id).unwrap();
    assert_eq!(case.client_code, "K-FIXTURE-1");
    assert_eq!(case.notes.len(), 3);
    assert_eq!(case.notes[0].body, "first note, written by schema 1");
    // The migrated store keeps working.
    store
        .write_note(case.id, &note("written after the migration"))
        .unwrap();
    drop(store);

    let fresh = tempfile::tempdir().unwrap();
    drop(create(fresh.path(), [1; 32]));
    let conn = rusqlite::Connection::open(dir.path().join(DB_FILE)).unwrap();
    assert_eq!(schema::version(&conn).unwrap(), schema::SCHEMA_VERSION);
    assert_eq!(
        schema_of(&dir.path().join(DB_FILE)),
        schema_of(&fresh.path().join(DB_FILE))
    );
}

/// Writes the schema-1 fixture. Run by hand: `cargo test -p fieldcase-core --test migration -- --ignored`.
#[test]
#[ignore]
fn write_v1_fixture() {
    let dir = Path::new(FIXTURE);
    let _ = std::fs::remove_dir_all(dir);
    let keys = StaticKeyProvider::new(FIXTURE_KEY);
    let identity = StoreIdentity {
        user: UserId::new(),
        device: DeviceId::new(),
        lease_key: None,
    };
    let store = Store::create_at_version(
        dir,
        &identity,
        KeySetup {
            keystore: Some(&keys),
            passphrase: None,
        },
        options(&new_clock()),
        1,
    )
    .unwrap();
    let case = store
        .create_case(&new_case("K-FIXTURE-1", identity.user))
        .unwrap();
    for body in ["first note, written by schema 1", "second", "third"] {
        store.write_note(case, &note(body)).unwrap();
    }
    drop(store);
    // Fold the WAL into the database so the fixture is two files.
    let conn = rusqlite::Connection::open(dir.join(DB_FILE)).unwrap();
    conn.pragma_update(None, "journal_mode", "DELETE").unwrap();
}
