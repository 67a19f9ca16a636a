//! Figures for the device store: open + unlock with a keystore key, write one note (durable),
//! load a case with 50 notes, list today's tasks across 1,000 cases; and the store's size against
//! the same documents saved unencrypted (printed once).
//!
//! Run: `cargo bench -p fieldcase-core --bench store`
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use fieldcase_core::clock::ManualClock;
use fieldcase_core::crypto::StaticKeyProvider;
use fieldcase_core::ids::{CaseId, DeviceId, UserId};
use fieldcase_core::model::{ConsentStatus, NewCase, NewNote, NewTask, NoteKind, OfficeKind};
use fieldcase_core::store::{DB_FILE, KEY_FILE, KeySetup, Store, StoreIdentity, StoreOptions};
use time::macros::{datetime, offset};

const KEY: [u8; 32] = [0x11; 32];

fn options() -> StoreOptions {
    StoreOptions { clock: Arc::new(ManualClock::new(datetime!(2026-11-24 07:00 UTC))), ..StoreOptions::default() }
}

fn body(i: usize) -> String {
    format!(
        "Visit {i}: accompanied the client to the social welfare centre. The officer asked for the \
         birth certificate copy and the ID application; both were handed in. Next step: wait for the \
         decision, call the centre on Friday, and prepare the client for the interview."
    )
}

fn note(i: usize) -> NewNote {
    NewNote { kind: NoteKind::Visit, body: body(i), tags: vec![], task: None }
}

fn create(dir: &Path) -> (Store, UserId) {
    let keys = StaticKeyProvider::new(KEY);
    let user = UserId::new();
    let store = Store::create(
        dir,
        &StoreIdentity { user, device: DeviceId::new() },
        KeySetup { keystore: Some(&keys), passphrase: None },
        options(),
    )
    .unwrap();
    (store, user)
}

fn open(dir: &Path) -> Store {
    let store = Store::open(dir, options()).unwrap();
    store.unlock_with_keystore(&StaticKeyProvider::new(KEY)).unwrap();
    store
}

fn new_case(i: usize, user: UserId) -> NewCase {
    NewCase { client_code: format!("K-{i:04}"), consent: ConsentStatus::Given, assigned_workers: vec![user] }
}

fn dir_size(dir: &Path) -> u64 {
    [DB_FILE.to_string(), format!("{DB_FILE}-wal"), KEY_FILE.to_string()]
        .iter()
        .filter_map(|n| std::fs::metadata(dir.join(n)).ok())
        .map(|m| m.len())
        .sum()
}

fn benches(c: &mut Criterion) {
    // A store with 1,000 cases, each with one task today or later in the week.
    let big = tempfile::tempdir().unwrap();
    let (store, user) = create(big.path());
    let mut cases = Vec::new();
    for i in 0..1000 {
        let case = store.create_case(&new_case(i, user)).unwrap();
        let day = (i % 7) as i64;
        store
            .add_task(
                case,
                &NewTask {
                    purpose: "accompaniment".into(),
                    office_kind: OfficeKind::ALL[i % OfficeKind::ALL.len()],
                    office_name: "Centar za socijalni rad".into(),
                    office_address: "Novi Sad".into(),
                    scheduled_at: datetime!(2026-11-24 10:00 +01:00) + time::Duration::days(day),
                    time_zone: "Europe/Belgrade".into(),
                    assignees: vec![user],
                    checklist: vec!["ID application".into(), "birth certificate copy".into()],
                },
            )
            .unwrap();
        cases.push(case);
    }
    drop(store);
    let store = open(big.path());
    let today = store.today_tasks(offset!(+1)).unwrap().len();
    println!("figure: today's tasks found across 1000 cases: {today}");
    c.bench_function("list today's tasks across 1000 cases", |b| {
        b.iter(|| black_box(store.today_tasks(offset!(+1)).unwrap()))
    });

    c.bench_function("write one note (durable)", |b| {
        let mut i = 0;
        b.iter(|| {
            i += 1;
            store.write_note(cases[i % 100], &note(i)).unwrap()
        })
    });
    drop(store);

    // One case with 50 notes.
    let small = tempfile::tempdir().unwrap();
    let (store, user) = create(small.path());
    let case: CaseId = store.create_case(&new_case(1, user)).unwrap();
    for i in 0..50 {
        store.write_note(case, &note(i)).unwrap();
    }
    drop(store);
    c.bench_function("open and unlock with a keystore key", |b| b.iter(|| black_box(open(small.path()))));
    c.bench_function("load a case with 50 notes (cold)", |b| {
        b.iter_batched(|| open(small.path()), |s| black_box(s.case(case).unwrap()), BatchSize::PerIteration)
    });

    // Size: the encrypted store against the same documents saved unencrypted.
    let sized = tempfile::tempdir().unwrap();
    let (store, user) = create(sized.path());
    let mut ids = Vec::new();
    for i in 0..200 {
        let case = store.create_case(&new_case(i, user)).unwrap();
        for n in 0..20 {
            store.write_note(case, &note(n)).unwrap();
        }
        ids.push(case);
    }
    let plain: u64 = ids
        .iter()
        .map(|id| {
            let case = store.case(*id).unwrap();
            // The same case rebuilt as an unencrypted automerge save.
            let mut doc = fieldcase_core::document::CaseDoc::create(
                *id,
                &new_case(0, user),
                case.notes[0].author,
                &fieldcase_core::ActorId::random(),
                case.created_at,
            )
            .unwrap();
            for n in &case.notes {
                doc.add_note(n.author, &NewNote { kind: n.kind, body: n.body.clone(), tags: vec![], task: None }, n.written_at)
                    .unwrap();
            }
            doc.save().len() as u64
        })
        .sum();
    drop(store);
    let conn = rusqlite::Connection::open(sized.path().join(DB_FILE)).unwrap();
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE); VACUUM;").unwrap();
    drop(conn);
    let stored = dir_size(sized.path());
    println!(
        "figure: store size for 200 cases x 20 notes: {stored} bytes encrypted vs {plain} bytes of unencrypted automerge saves (ratio {:.2})",
        stored as f64 / plain as f64
    );
}

criterion_group! {
    name = store;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(4));
    targets = benches
}
criterion_main!(store);
