//! Unlocking, locking and wiping: the wrong key is a typed error, a locked store reads nothing,
//! and a wiped store leaves nothing behind that opens an old copy.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use fieldcase_core::CoreError;
use fieldcase_core::crypto::StaticKeyProvider;
use fieldcase_core::store::{DB_FILE, KEY_FILE, Store};

#[test]
fn wrong_key_or_passphrase_is_a_typed_error_and_locked_reads_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let t = create(dir.path(), [5; 32]);
    let case = t
        .store
        .create_case(&new_case("K-0142", t.identity.user))
        .unwrap();
    t.store
        .write_note(case, &note("met at the centre"))
        .unwrap();
    t.store.lock().unwrap();
    assert!(!t.store.is_unlocked());
    assert!(matches!(t.store.case(case), Err(CoreError::Locked)));
    assert!(matches!(t.store.list_cases(), Err(CoreError::Locked)));
    assert!(matches!(
        t.store.write_note(case, &note("x")),
        Err(CoreError::Locked)
    ));
    assert!(matches!(t.store.pending_changes(), Err(CoreError::Locked)));
    drop(t);

    let store = Store::open(dir.path(), options(&new_clock())).unwrap();
    assert!(matches!(
        store.unlock_with_keystore(&StaticKeyProvider::new([6; 32])),
        Err(CoreError::WrongKey)
    ));
    assert!(matches!(
        store.unlock_with_passphrase("wrong horse"),
        Err(CoreError::WrongKey)
    ));
    assert!(matches!(store.case(case), Err(CoreError::Locked)));

    store.unlock_with_passphrase("correct horse").unwrap();
    assert_eq!(store.case(case).unwrap().notes[0].body, "met at the centre");
    store.lock().unwrap();
    store
        .unlock_with_keystore(&StaticKeyProvider::new([5; 32]))
        .unwrap();
    assert_eq!(store.case(case).unwrap().client_code, "K-0142");
}

#[test]
fn a_key_file_from_another_store_does_not_open_this_database() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let ta = create(a.path(), [1; 32]);
    ta.store
        .create_case(&new_case("K-1", ta.identity.user))
        .unwrap();
    drop(ta);
    drop(create(b.path(), [1; 32]));
    std::fs::copy(b.path().join(KEY_FILE), a.path().join(KEY_FILE)).unwrap();
    let store = Store::open(a.path(), options(&new_clock())).unwrap();
    assert!(matches!(
        store.unlock_with_keystore(&StaticKeyProvider::new([1; 32])),
        Err(CoreError::WrongKey)
    ));
}

#[test]
fn wipe_removes_every_file_and_an_old_copy_stays_unreadable() {
    let dir = tempfile::tempdir().unwrap();
    let t = create(dir.path(), [9; 32]);
    let case = t
        .store
        .create_case(&new_case("K-0999", t.identity.user))
        .unwrap();
    t.store
        .write_note(case, &note("court date moved to Friday"))
        .unwrap();

    // An attacker copies the database (and its WAL) before the wipe.
    let copy = tempfile::tempdir().unwrap();
    for name in [
        DB_FILE.to_string(),
        format!("{DB_FILE}-wal"),
        format!("{DB_FILE}-shm"),
    ] {
        if dir.path().join(&name).exists() {
            std::fs::copy(dir.path().join(&name), copy.path().join(&name)).unwrap();
        }
    }

    let report = t.store.wipe(Some(&t.keys)).unwrap();
    assert_eq!(report.key_slots_destroyed, 2);
    assert!(report.keystore_key_destroyed);
    assert!(report.files_removed.contains(&KEY_FILE.to_string()));
    assert!(report.files_removed.contains(&DB_FILE.to_string()));
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "files remain after wipe: {left:?}");
    assert!(matches!(t.store.case(case), Err(CoreError::NoStore)));
    assert!(matches!(
        Store::open(dir.path(), options(&new_clock())),
        Err(CoreError::NoStore)
    ));

    // The copy: no key file survived, and the keystore no longer hands out its key.
    assert!(matches!(
        Store::open(copy.path(), options(&new_clock())),
        Err(CoreError::NoStore)
    ));
    assert!(t.keys.root_key_gone());
}

trait Gone {
    fn root_key_gone(&self) -> bool;
}
impl Gone for StaticKeyProvider {
    fn root_key_gone(&self) -> bool {
        use fieldcase_core::crypto::KeyProvider;
        self.root_key().is_err()
    }
}

#[test]
fn creating_over_an_existing_store_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(create(dir.path(), [2; 32]));
    let keys = StaticKeyProvider::new([2; 32]);
    let result = Store::create(
        dir.path(),
        &fieldcase_core::store::StoreIdentity {
            user: fieldcase_core::ids::UserId::new(),
            device: fieldcase_core::ids::DeviceId::new(),
            lease_key: None,
        },
        fieldcase_core::store::KeySetup {
            keystore: Some(&keys),
            passphrase: None,
        },
        options(&new_clock()),
    );
    assert!(matches!(result, Err(CoreError::AlreadyExists)));
}
