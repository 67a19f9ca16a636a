//! Unlocking, locking and wiping: the wrong key is a typed error, a locked store reads nothing,
//! and a wiped store leaves nothing behind that opens an old copy.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use fieldcase_core::CoreError;
use fieldcase_core::crypto::{KeyError, KeySlot, StaticKeyProvider};
use fieldcase_core::ids::{DeviceId, UserId};
use fieldcase_core::store::{DB_FILE, KEY_FILE, KeySetup, Store, StoreIdentity, UnlockNeeds};

#[test]
fn wrong_key_or_passphrase_is_a_typed_error_and_locked_reads_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let t = create_with_passphrase(dir.path(), [5; 32]);
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
    let right = StaticKeyProvider::new([5; 32]);
    assert_eq!(
        store.unlock_needs().unwrap(),
        UnlockNeeds {
            keystore: true,
            passphrase: true
        }
    );
    assert!(matches!(
        store.unlock(Some(&StaticKeyProvider::new([6; 32])), Some(PASSPHRASE)),
        Err(CoreError::WrongKey)
    ));
    assert!(matches!(
        store.unlock(Some(&right), Some("plum kettle orbit sparrows")),
        Err(CoreError::WrongKey)
    ));
    assert!(matches!(store.case(case), Err(CoreError::Locked)));

    store.unlock(Some(&right), Some(PASSPHRASE)).unwrap();
    assert_eq!(store.case(case).unwrap().notes[0].body, "met at the centre");
    assert_eq!(store.case(case).unwrap().client_code, "K-0142");
}

#[test]
fn a_store_made_with_both_opens_with_neither_alone() {
    let dir = tempfile::tempdir().unwrap();
    let t = create_with_passphrase(dir.path(), [5; 32]);
    t.store.lock().unwrap();
    let both = CoreError::UnlockNeeds {
        keystore: true,
        passphrase: true,
    };
    let keys = StaticKeyProvider::new([5; 32]);
    for result in [
        t.store.unlock_with_passphrase(PASSPHRASE),
        t.store.unlock_with_keystore(&keys),
        t.store.unlock(None, None),
    ] {
        assert_eq!(result.err().map(|e| e.to_string()), Some(both.to_string()));
    }
    assert!(!t.store.is_unlocked());
    // The key file holds passphrase slots bound to both (the data key's and a companion of the
    // same kind and size): nothing in it opens with the passphrase alone, so a copy of it cannot
    // be attacked offline without the keystore's secret.
    let file: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join(KEY_FILE)).unwrap()).unwrap();
    let kinds: Vec<&str> = file["slots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, vec!["keystore_passphrase", "keystore_passphrase"]);
}

#[test]
fn a_weak_passphrase_is_refused_and_nothing_is_created() {
    for weak in ["short", "password1234", "qwertyuiopasdf", "1234567890"] {
        let dir = tempfile::tempdir().unwrap();
        let keys = StaticKeyProvider::new([1; 32]);
        let result = Store::create(
            dir.path(),
            &StoreIdentity {
                user: UserId::new(),
                device: DeviceId::new(),
                lease_key: None,
            },
            KeySetup {
                keystore: Some(&keys),
                passphrase: Some(weak),
            },
            options(&new_clock()),
        );
        assert!(
            matches!(result, Err(CoreError::WeakPassphrase { ref detail }) if !detail.contains(weak)),
            "{weak}: {result:?}"
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "{weak}");
    }
}

#[test]
fn a_lone_passphrase_slot_beside_a_keystore_slot_no_longer_opens_and_is_removed() {
    // A store as an earlier build made it: a keystore slot and a passphrase slot, either of
    // which opened it. Built here from a passphrase-only store by adding a keystore slot for
    // the same data key.
    let dir = tempfile::tempdir().unwrap();
    let store = Store::create(
        dir.path(),
        &StoreIdentity {
            user: UserId::new(),
            device: DeviceId::new(),
            lease_key: None,
        },
        KeySetup {
            keystore: None,
            passphrase: Some(PASSPHRASE),
        },
        options(&new_clock()),
    )
    .unwrap();
    drop(store);
    let path = dir.path().join(KEY_FILE);
    let mut file: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let slots: Vec<KeySlot> = serde_json::from_value(file["slots"].clone()).unwrap();
    let data_key = slots
        .iter()
        .find_map(|s| match s.open_secret(None, PASSPHRASE) {
            Ok(fieldcase_core::crypto::Opened::Data(k)) => Some(k),
            _ => None,
        })
        .unwrap();
    let keystore_slot = KeySlot::for_keystore(&data_key, &[3; 32]).unwrap();
    let lone = KeySlot::for_passphrase(&data_key, PASSPHRASE, 16).unwrap();
    file["slots"] = serde_json::json!([keystore_slot, lone]);
    std::fs::write(&path, serde_json::to_vec(&file).unwrap()).unwrap();

    let store = Store::open(dir.path(), options(&new_clock())).unwrap();
    assert!(matches!(
        store.unlock_with_passphrase(PASSPHRASE),
        Err(CoreError::UnlockNeeds {
            keystore: true,
            passphrase: false
        })
    ));
    store
        .unlock_with_keystore(&StaticKeyProvider::new([3; 32]))
        .unwrap();
    let file: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(file["slots"].as_array().unwrap().len(), 1);
    assert_eq!(file["slots"][0]["kind"], "keystore");
}

#[test]
fn a_keystore_that_wants_the_user_first_is_a_typed_error() {
    struct NeedsUser;
    impl fieldcase_core::crypto::KeyProvider for NeedsUser {
        fn root_key(&self) -> Result<zeroize::Zeroizing<[u8; 32]>, KeyError> {
            Err(KeyError::AuthenticationRequired)
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let t = create_with_passphrase(dir.path(), [5; 32]);
    t.store.lock().unwrap();
    assert!(matches!(
        t.store.unlock(Some(&NeedsUser), Some(PASSPHRASE)),
        Err(CoreError::AuthenticationRequired)
    ));
    assert!(!t.store.is_unlocked());
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
    assert_eq!(report.key_slots_destroyed, 1);
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

#[test]
fn wrong_passphrases_in_a_row_are_slowed_and_the_count_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let t = create_with_passphrase(dir.path(), [5; 32]);
    t.store.lock().unwrap();
    let keys = StaticKeyProvider::new([5; 32]);
    let wrong = "plum kettle orbit sparrows";
    for _ in 1..5 {
        assert!(matches!(
            t.store.unlock(Some(&keys), Some(wrong)),
            Err(CoreError::WrongKey)
        ));
    }
    // The fifth in a row starts the waits, and says how long.
    assert!(matches!(
        t.store.unlock(Some(&keys), Some(wrong)),
        Err(CoreError::TooManyAttempts {
            retry_after_secs: 30
        })
    ));
    // While the wait runs, even the right passphrase is not tried.
    t.clock.advance(time::Duration::seconds(10));
    assert!(matches!(
        t.store.unlock(Some(&keys), Some(PASSPHRASE)),
        Err(CoreError::TooManyAttempts {
            retry_after_secs: 20
        })
    ));
    assert!(!t.store.is_unlocked());
    // Neither the clock set back nor the app started again shortens it.
    t.clock.advance(time::Duration::days(-1));
    let TestStore { store, clock, .. } = t;
    drop(store);
    let store = Store::open(dir.path(), options(&clock)).unwrap();
    assert!(matches!(
        store.unlock(Some(&keys), Some(PASSPHRASE)),
        Err(CoreError::TooManyAttempts { .. })
    ));
    // Once it has passed, a wrong one doubles the wait; a right one after it opens and clears
    // the count.
    clock.advance(time::Duration::days(1) + time::Duration::seconds(25));
    assert!(matches!(
        store.unlock(Some(&keys), Some(wrong)),
        Err(CoreError::TooManyAttempts {
            retry_after_secs: 60
        })
    ));
    clock.advance(time::Duration::seconds(60));
    store.unlock(Some(&keys), Some(PASSPHRASE)).unwrap();
    store.lock().unwrap();
    assert!(matches!(
        store.unlock(Some(&keys), Some(wrong)),
        Err(CoreError::WrongKey)
    ));
    // The count sits in the key file, sealed: it names nothing readable.
    let file = std::fs::read_to_string(dir.path().join(KEY_FILE)).unwrap();
    assert!(file.contains("\"attempts\""));
    assert!(!file.contains("failures"));
}

#[test]
fn a_passphrase_added_to_a_keystore_only_store_is_needed_from_then_on() {
    let dir = tempfile::tempdir().unwrap();
    let t = create(dir.path(), [5; 32]);
    let case = t
        .store
        .create_case(&new_case("K-0143", t.identity.user))
        .unwrap();
    let root = [5; 32];
    let key_file = || std::fs::read(dir.path().join(KEY_FILE)).unwrap();
    let before = key_file();
    // Refused, changing nothing: a weak passphrase, another keystore's key, a locked store.
    assert!(matches!(
        t.store.add_passphrase(&root, "password1"),
        Err(CoreError::WeakPassphrase { .. })
    ));
    assert!(matches!(
        t.store.add_passphrase(&[6; 32], PASSPHRASE),
        Err(CoreError::WrongKey)
    ));
    t.store.lock().unwrap();
    assert!(matches!(
        t.store.add_passphrase(&root, PASSPHRASE),
        Err(CoreError::Locked)
    ));
    assert_eq!(key_file(), before);
    t.store
        .unlock(Some(&StaticKeyProvider::new(root)), None)
        .unwrap();

    t.store.add_passphrase(&root, PASSPHRASE).unwrap();
    assert_eq!(
        t.store.unlock_needs().unwrap(),
        UnlockNeeds {
            keystore: true,
            passphrase: true
        }
    );
    // Only once.
    assert!(matches!(
        t.store
            .add_passphrase(&root, "another long phrase of words"),
        Err(CoreError::PassphraseAlreadySet)
    ));
    drop(t);

    let store = Store::open(dir.path(), options(&new_clock())).unwrap();
    let keys = StaticKeyProvider::new(root);
    // The keystore key alone opens nothing any more, nor the passphrase alone.
    assert!(matches!(
        store.unlock(Some(&keys), None),
        Err(CoreError::UnlockNeeds {
            keystore: true,
            passphrase: true
        })
    ));
    assert!(store.unlock_with_keystore(&keys).is_err());
    assert!(store.unlock_with_passphrase(PASSPHRASE).is_err());
    assert!(matches!(
        store.unlock(Some(&keys), Some("plum kettle orbit sparrows")),
        Err(CoreError::WrongKey)
    ));
    store.unlock(Some(&keys), Some(PASSPHRASE)).unwrap();
    assert_eq!(store.case(case).unwrap().client_code, "K-0143");
    // No slot the keystore key opens alone is left in the key file.
    let file: serde_json::Value = serde_json::from_slice(&key_file()).unwrap();
    let kinds: Vec<&str> = file["slots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["keystore_passphrase", "keystore_passphrase"]);
}
