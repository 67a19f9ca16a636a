//! Helpers shared by the core's integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;

use fieldcase_core::clock::ManualClock;
use fieldcase_core::crypto::StaticKeyProvider;
use fieldcase_core::ids::{DeviceId, UserId};
use fieldcase_core::model::{ConsentStatus, NewCase, NewNote, NewTask, NoteKind, OfficeKind};
use fieldcase_core::store::{KeySetup, Store, StoreIdentity, StoreOptions};
use time::macros::datetime;

/// A test store with its key provider and clock.
pub struct TestStore {
    pub store: Store,
    pub keys: StaticKeyProvider,
    pub clock: Arc<ManualClock>,
    pub identity: StoreIdentity,
}

pub fn options(clock: &Arc<ManualClock>) -> StoreOptions {
    StoreOptions {
        clock: clock.clone(),
        scrypt_work_factor: fieldcase_core::crypto::MIN_SCRYPT_WORK_FACTOR,
        ..StoreOptions::default()
    }
}

pub fn new_clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(datetime!(2026-11-24 08:00 UTC)))
}

/// A passphrase strong enough for a new store.
pub const PASSPHRASE: &str = "plum kettle orbit sparrow";

/// Creates a store in `dir` that opens with the keystore key `key` alone, unlocked.
pub fn create(dir: &Path, key: [u8; 32]) -> TestStore {
    create_with(dir, key, None)
}

/// Creates a store in `dir` that opens with the keystore key `key` and [`PASSPHRASE`] together,
/// unlocked.
pub fn create_with_passphrase(dir: &Path, key: [u8; 32]) -> TestStore {
    create_with(dir, key, Some(PASSPHRASE))
}

fn create_with(dir: &Path, key: [u8; 32], passphrase: Option<&str>) -> TestStore {
    let keys = StaticKeyProvider::new(key);
    let clock = new_clock();
    let identity = StoreIdentity {
        user: UserId::new(),
        device: DeviceId::new(),
        lease_key: None,
    };
    let store = Store::create(
        dir,
        &identity,
        KeySetup {
            keystore: Some(&keys),
            passphrase,
        },
        options(&clock),
    )
    .unwrap();
    TestStore {
        store,
        keys,
        clock,
        identity,
    }
}

pub fn new_case(code: &str, worker: UserId) -> NewCase {
    NewCase {
        client_code: code.into(),
        consent: ConsentStatus::Given,
        assigned_workers: vec![worker],
    }
}

pub fn note(body: &str) -> NewNote {
    NewNote {
        kind: NoteKind::Visit,
        body: body.into(),
        tags: vec![],
        task: None,
    }
}

pub fn task(purpose: &str, at: time::OffsetDateTime, assignee: UserId) -> NewTask {
    NewTask {
        purpose: purpose.into(),
        office_kind: OfficeKind::SocialWelfareCentre,
        office_name: "Centar za socijalni rad".into(),
        office_address: "Novi Sad".into(),
        scheduled_at: at,
        time_zone: "Europe/Belgrade".into(),
        assignees: vec![assignee],
        checklist: vec!["ID application".into(), "birth certificate copy".into()],
    }
}

/// Whether `needle` occurs anywhere in `haystack`.
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
