//! Figures for one case document as sync handles it: a case made at the office (one task) that a
//! phone then fills with 20 notes, each its own change. What a first upload costs each side per
//! case: building the pending changes or the compact document on the phone; loading it, checking
//! its bounds and reading it on the server.
//!
//! Run: `cargo bench -p fieldcase-core --bench document`
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;

use automerge::ActorId;
use criterion::{Criterion, criterion_group, criterion_main};
use fieldcase_core::document::CaseDoc;
use fieldcase_core::ids::{CaseId, DeviceId, UserId};
use fieldcase_core::model::{
    Author, ConsentStatus, NewCase, NewNote, NewTask, NoteKind, OfficeKind,
};
use time::macros::datetime;

const NOTES: usize = 20;

fn note(i: usize) -> String {
    format!(
        "Visit {i}: went with the client to the centre; the officer took the application, asked \
         for the birth certificate copy, and set the interview for next week. Client calm."
    )
}

/// The case as the office makes it, and the heads the phone received it at.
fn office_case(id: CaseId, user: UserId) -> Vec<u8> {
    let author = Author {
        user,
        device: DeviceId::new(),
    };
    let now = datetime!(2026-11-24 07:00 UTC);
    let new = NewCase {
        client_code: "K-00001".into(),
        consent: ConsentStatus::Given,
        assigned_workers: vec![user],
    };
    let mut doc = CaseDoc::create(id, &new, author, &ActorId::random(), now).unwrap();
    doc.add_task(
        author,
        &NewTask {
            purpose: "ID card application".into(),
            office_kind: OfficeKind::RegistryOffice,
            office_name: "Matična služba".into(),
            office_address: "Novi Sad".into(),
            scheduled_at: now,
            time_zone: "Europe/Belgrade".into(),
            assignees: vec![user],
            checklist: vec![
                "birth certificate copy".into(),
                "ID application form".into(),
            ],
        },
        now,
    )
    .unwrap();
    doc.save()
}

fn benches(c: &mut Criterion) {
    let id = CaseId::new();
    let user = UserId::new();
    let office = office_case(id, user);
    let phone_actor = ActorId::random();
    let mut phone = CaseDoc::load(id, &office, &phone_actor).unwrap();
    let known = phone.heads();
    let author = Author {
        user,
        device: DeviceId::new(),
    };
    for i in 0..NOTES {
        phone
            .add_note(
                author,
                &NewNote {
                    kind: NoteKind::Visit,
                    body: note(i),
                    tags: vec![],
                    task: None,
                },
                datetime!(2026-11-24 09:00 UTC),
            )
            .unwrap();
    }
    let changes = phone.changes_since(&known);
    let whole = phone.save();
    println!(
        "one case, {NOTES} notes: {} ops; pending changes {} B, compact document {} B",
        phone.op_count(),
        changes.len(),
        whole.len()
    );

    let mut g = c.benchmark_group("phone");
    g.bench_function("changes_since", |b| {
        b.iter(|| black_box(phone.changes_since(&known)))
    });
    g.bench_function("save", |b| b.iter(|| black_box(phone.save())));
    g.bench_function("changes_for", |b| {
        b.iter(|| black_box(phone.changes_for(&known)))
    });
    g.finish();

    let office_actor = ActorId::random();
    let mut g = c.benchmark_group("server");
    g.bench_function("load", |b| {
        b.iter(|| black_box(CaseDoc::load(id, &whole, &office_actor).unwrap()))
    });
    let loaded = CaseDoc::load(id, &whole, &office_actor).unwrap();
    g.bench_function("check_bounds", |b| {
        b.iter(|| black_box(loaded.check_bounds().is_ok()))
    });
    g.bench_function("case", |b| b.iter(|| black_box(loaded.case().unwrap())));
    g.bench_function("apply_changes", |b| {
        b.iter(|| {
            let mut doc = CaseDoc::load(id, &office, &office_actor).unwrap();
            doc.apply_encoded_changes(&changes).unwrap();
            black_box(doc)
        })
    });
    g.finish();
}

criterion_group! {
    name = document;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(3));
    targets = benches
}
criterion_main!(document);
