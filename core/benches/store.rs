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
use fieldcase_core::sync::hub::{MemoryHub, handle_sync};
use fieldcase_core::sync::{SyncRequest, SyncTransport};
use time::macros::{datetime, offset};

const KEY: [u8; 32] = [0x11; 32];

fn options() -> StoreOptions {
    StoreOptions {
        clock: Arc::new(ManualClock::new(datetime!(2026-11-24 07:00 UTC))),
        ..StoreOptions::default()
    }
}

/// A note of about 300 bytes whose words differ from note to note, as real notes do (identical
/// bodies would let automerge's deflate look far better than it is).
fn body(i: usize) -> String {
    const WORDS: &[&str] = &[
        "client",
        "centre",
        "officer",
        "birth",
        "certificate",
        "application",
        "court",
        "hearing",
        "police",
        "statement",
        "interpreter",
        "Friday",
        "Monday",
        "documents",
        "copy",
        "decision",
        "interview",
        "shelter",
        "doctor",
        "clinic",
        "lawyer",
        "prosecutor",
        "registry",
        "waited",
        "signed",
        "refused",
        "accepted",
        "called",
        "anxious",
        "calm",
        "tired",
        "brother",
        "employer",
        "bus",
        "ticket",
        "address",
        "residence",
        "permit",
        "allowance",
        "training",
        "job",
        "plan",
    ];
    let mut state = (i as u64)
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut out = format!("Visit {i}:");
    while out.len() < 300 {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        out.push(' ');
        out.push_str(WORDS[(state >> 33) as usize % WORDS.len()]);
    }
    out
}

fn note(i: usize) -> NewNote {
    NewNote {
        kind: NoteKind::Visit,
        body: body(i),
        tags: vec![],
        task: None,
    }
}

fn create(dir: &Path) -> (Store, UserId) {
    let keys = StaticKeyProvider::new(KEY);
    let user = UserId::new();
    let store = Store::create(
        dir,
        &StoreIdentity {
            user,
            device: DeviceId::new(),
            lease_key: None,
        },
        KeySetup {
            keystore: Some(&keys),
            passphrase: None,
        },
        options(),
    )
    .unwrap();
    (store, user)
}

fn open(dir: &Path) -> Store {
    let store = Store::open(dir, options()).unwrap();
    store
        .unlock_with_keystore(&StaticKeyProvider::new(KEY))
        .unwrap();
    store
}

fn new_case(i: usize, user: UserId) -> NewCase {
    NewCase {
        client_code: format!("K-{i:04}"),
        consent: ConsentStatus::Given,
        assigned_workers: vec![user],
    }
}

fn dir_size(dir: &Path) -> u64 {
    [
        DB_FILE.to_string(),
        format!("{DB_FILE}-wal"),
        KEY_FILE.to_string(),
    ]
    .iter()
    .filter_map(|n| std::fs::metadata(dir.join(n)).ok())
    .map(|m| m.len())
    .sum()
}

/// The phone's side of an in-process sync with a memory hub (uploads land nowhere else).
struct Link<'a> {
    hub: &'a mut MemoryHub,
    user: UserId,
    device: DeviceId,
}

impl SyncTransport for Link<'_> {
    fn round_trip(&mut self, request: &[u8]) -> fieldcase_core::Result<Vec<u8>> {
        let request = SyncRequest::decode(request)?;
        for upload in &request.uploads {
            if self.hub.case_bytes(upload.case_id).is_none() {
                let mut doc = fieldcase_core::document::CaseDoc::empty(
                    upload.case_id,
                    &fieldcase_core::ActorId::random(),
                );
                doc.apply_encoded_changes(&upload.changes)?;
                self.hub.put_case(upload.case_id, doc.save(), &[self.user]);
            }
        }
        let response = handle_sync(self.hub, self.device, self.user, &request)?;
        Ok(response.encode()?)
    }
}

fn vacuumed_size(dir: &Path) -> u64 {
    let conn = rusqlite::Connection::open(dir.join(DB_FILE)).unwrap();
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE); VACUUM;")
        .unwrap();
    drop(conn);
    dir_size(dir)
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

    // The floor under any durable write on this disk: one bare SQLite WAL commit
    // (synchronous = FULL) of a row the size of a sealed note change.
    let floor = tempfile::tempdir().unwrap();
    let conn = rusqlite::Connection::open(floor.path().join("floor.db")).unwrap();
    conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB);").unwrap();
    c.bench_function(
        "bare SQLite durable commit of a 700-byte row (floor)",
        |b| {
            b.iter(|| {
                conn.execute("INSERT INTO t (v) VALUES (?1)", [vec![7u8; 700]])
                    .unwrap()
            })
        },
    );
    drop(conn);

    // A worker writes into the few cases she has open today: documents stay in memory.
    c.bench_function("write one note (durable), case open", |b| {
        let mut i = 0;
        b.iter(|| {
            i += 1;
            store.write_note(cases[i % 10], &note(i)).unwrap()
        })
    });
    drop(store);
    // The first note into a case after unlocking: its document is loaded first.
    c.bench_function("write one note (durable), first write after unlock", |b| {
        let mut i = 0;
        b.iter_batched(
            || open(big.path()),
            |s| {
                i += 1;
                s.write_note(cases[10 + i % 900], &note(i)).unwrap()
            },
            BatchSize::PerIteration,
        )
    });

    // One case with 50 notes.
    let small = tempfile::tempdir().unwrap();
    let (store, user) = create(small.path());
    let case: CaseId = store.create_case(&new_case(1, user)).unwrap();
    for i in 0..50 {
        store.write_note(case, &note(i)).unwrap();
    }
    drop(store);
    c.bench_function("open and unlock with a keystore key", |b| {
        b.iter(|| black_box(open(small.path())))
    });
    c.bench_function("load a case with 50 notes (cold)", |b| {
        b.iter_batched(
            || open(small.path()),
            |s| black_box(s.case(case).unwrap()),
            BatchSize::PerIteration,
        )
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
                doc.add_note(
                    n.author,
                    &NewNote {
                        kind: n.kind,
                        body: n.body.clone(),
                        tags: vec![],
                        task: None,
                    },
                    n.written_at,
                )
                .unwrap();
            }
            doc.save().len() as u64
        })
        .sum();
    drop(store);
    let as_written = vacuumed_size(sized.path());
    // Sync to an in-memory hub (which empties the outbox), then compact.
    let store = open(sized.path());
    let mut hub = MemoryHub::new();
    let mut link = Link {
        hub: &mut hub,
        user,
        device: DeviceId::new(),
    };
    fieldcase_core::sync::sync(&store, &mut link).unwrap();
    store.compact().unwrap();
    drop(store);
    let compacted = vacuumed_size(sized.path());
    println!(
        "figure: store size for 200 cases x 20 notes: {as_written} bytes as written (outbox full), \
         {compacted} bytes after sync and compact(), vs {plain} bytes of unencrypted automerge saves \
         (ratios {:.2} and {:.2})",
        as_written as f64 / plain as f64,
        compacted as f64 / plain as f64
    );
}

criterion_group! {
    name = store;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(4));
    targets = benches
}
criterion_main!(store);
