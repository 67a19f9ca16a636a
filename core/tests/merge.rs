//! Concurrent offline edits merge: notes from two replicas both survive, concurrent body edits
//! merge character-wise, concurrent field changes resolve deterministically and are reported with
//! both authors. Checked with changes exchanged in both orders and delivered more than once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use fieldcase_core::ActorId;
use fieldcase_core::document::CaseDoc;
use fieldcase_core::ids::{CaseId, DeviceId, UserId};
use fieldcase_core::model::{Author, CaseUpdate, LegalStatus, RiskLevel, TaskStatus, TaskUpdate};
use proptest::prelude::*;
use time::macros::datetime;

struct Replica {
    doc: CaseDoc,
    author: Author,
}

fn author() -> Author {
    Author {
        user: UserId::new(),
        device: DeviceId::new(),
    }
}

fn replica_of(base: &mut CaseDoc) -> Replica {
    Replica {
        doc: CaseDoc::load(base.id(), &base.save(), &ActorId::random()).unwrap(),
        author: author(),
    }
}

/// Sends everything `from` has that `to` lacks, `times` times over.
fn deliver(from: &mut CaseDoc, to: &mut CaseDoc, times: usize) {
    let heads = to.heads();
    let changes = from.changes_since(&heads);
    for _ in 0..times {
        to.apply_encoded_changes(&changes).unwrap();
    }
}

fn base() -> (CaseDoc, Author) {
    let office = author();
    let mut doc = CaseDoc::create(
        CaseId::new(),
        &new_case("K-0142", office.user),
        office,
        &ActorId::random(),
        datetime!(2026-11-24 08:00 UTC),
    )
    .unwrap();
    doc.add_task(
        office,
        &task("ID card", datetime!(2026-11-24 10:00 +01:00), office.user),
        datetime!(2026-11-24 08:01 UTC),
    )
    .unwrap();
    (doc, office)
}

#[test]
fn two_replicas_edit_offline_and_converge_in_either_order() {
    for a_first in [true, false] {
        let (mut office, office_author) = base();
        let first_note = office
            .add_note(
                office_author,
                &note("The client arrived on time."),
                datetime!(2026-11-24 08:02 UTC),
            )
            .unwrap();
        let task_id = office.tasks().unwrap()[0].id;
        let mut a = replica_of(&mut office);
        let mut b = replica_of(&mut office);
        let t = datetime!(2026-11-24 09:00 UTC);

        a.doc.add_note(a.author, &note("Note from A"), t).unwrap();
        b.doc.add_note(b.author, &note("Note from B"), t).unwrap();
        a.doc
            .edit_note_body(a.author, first_note, "The client arrived early.", t)
            .unwrap();
        b.doc
            .edit_note_body(
                b.author,
                first_note,
                "The client arrived on time. She brought her ID.",
                t,
            )
            .unwrap();
        a.doc
            .update_task(
                a.author,
                task_id,
                &TaskUpdate {
                    status: Some(TaskStatus::Done),
                    ..Default::default()
                },
                t,
            )
            .unwrap();
        b.doc
            .update_task(
                b.author,
                task_id,
                &TaskUpdate {
                    status: Some(TaskStatus::Missed),
                    ..Default::default()
                },
                t,
            )
            .unwrap();

        // Through the office, like sync: each phone uploads, then downloads; duplicates included.
        let (first, second) = if a_first {
            (&mut a, &mut b)
        } else {
            (&mut b, &mut a)
        };
        deliver(&mut first.doc, &mut office, 2);
        deliver(&mut second.doc, &mut office, 1);
        deliver(&mut office, &mut first.doc, 2);
        deliver(&mut office, &mut second.doc, 1);

        let (ca, cb, co) = (
            a.doc.case().unwrap(),
            b.doc.case().unwrap(),
            office.case().unwrap(),
        );
        assert_eq!(ca, cb);
        assert_eq!(ca, co);
        assert_eq!(a.doc.heads(), office.heads());
        let bodies: Vec<_> = ca.notes.iter().map(|n| n.body.as_str()).collect();
        assert!(
            bodies.contains(&"Note from A") && bodies.contains(&"Note from B"),
            "{bodies:?}"
        );
        // Character-wise: A's "early" and B's appended sentence both survive.
        let merged = &ca.notes.iter().find(|n| n.id == first_note).unwrap().body;
        assert_eq!(merged, "The client arrived early. She brought her ID.");

        // The status conflict is reported on every replica, with both authors, same winner.
        for doc in [&mut a.doc, &mut b.doc, &mut office] {
            let conflicts = doc.conflicts().unwrap();
            assert_eq!(conflicts.len(), 1, "{conflicts:?}");
            let c = &conflicts[0];
            assert_eq!((c.task, c.field.as_str()), (Some(task_id), "status"));
            let mut values: Vec<_> = c
                .values
                .iter()
                .map(|v| (v.value.clone(), v.author))
                .collect();
            values.sort_by(|x, y| x.0.cmp(&y.0));
            assert_eq!(
                values,
                vec![
                    ("done".into(), Some(a.author)),
                    ("missed".into(), Some(b.author))
                ]
            );
            assert_eq!(c.winner, conflicts[0].winner);
        }
        let winner = a.doc.conflicts().unwrap()[0].winner.value.clone();
        assert_eq!(ca.tasks[0].status.as_str(), winner);

        // A person resolves the conflict by writing the field again.
        office
            .update_task(
                office_author,
                task_id,
                &TaskUpdate {
                    status: Some(TaskStatus::Done),
                    ..Default::default()
                },
                t,
            )
            .unwrap();
        assert!(office.conflicts().unwrap().is_empty());
    }
}

#[test]
fn every_change_records_its_author() {
    let (mut office, office_author) = base();
    let mut a = replica_of(&mut office);
    a.doc
        .add_note(
            a.author,
            &note("from the phone"),
            datetime!(2026-11-24 09:00 UTC),
        )
        .unwrap();
    deliver(&mut a.doc, &mut office, 1);
    let case = office.case().unwrap();
    let phone_note = case
        .notes
        .iter()
        .find(|n| n.body == "from the phone")
        .unwrap();
    assert_eq!(phone_note.author, a.author);
    let authors = office.change_authors();
    assert_eq!(authors.len(), office.change_count());
    assert!(
        authors.iter().all(|a| a.is_some()),
        "a change without an author"
    );
    assert!(authors.contains(&Some(office_author)) && authors.contains(&Some(a.author)));
}

#[test]
fn hostile_bytes_are_errors_not_panics() {
    let (mut office, _) = base();
    for entry in std::fs::read_dir(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/crashers/case_doc_load"
    ))
    .unwrap()
    {
        let hex = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        let bytes = hex::decode(hex.trim()).unwrap();
        assert!(CaseDoc::load(CaseId::new(), &bytes, &ActorId::random()).is_err());
        let mut copy = replica_of(&mut office);
        assert!(copy.doc.apply_encoded_changes(&bytes).is_err());
    }
    // Random garbage and a valid document that is not a case.
    assert!(
        CaseDoc::load(
            CaseId::new(),
            b"\x85\x6f\x4a\x83garbage",
            &ActorId::random()
        )
        .is_err()
    );
    let mut other = automerge::AutoCommit::new();
    assert!(CaseDoc::load(CaseId::new(), &other.save(), &ActorId::random()).is_err());
}

#[derive(Debug, Clone)]
enum Edit {
    AddNote(u8),
    RewriteFirstNote(u8),
    SetStatus(u8),
    Tick(bool),
}

fn edit_strategy() -> impl Strategy<Value = Edit> {
    prop_oneof![
        any::<u8>().prop_map(Edit::AddNote),
        any::<u8>().prop_map(Edit::RewriteFirstNote),
        (0u8..5).prop_map(Edit::SetStatus),
        any::<bool>().prop_map(Edit::Tick),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Three replicas make random edits, then exchange everything in a random order with
    /// duplicates: all end with the same heads and the same case, and no note is lost.
    #[test]
    fn random_concurrent_edits_converge(
        edits in proptest::collection::vec((0usize..3, edit_strategy()), 1..30),
        order in proptest::collection::vec((0usize..3, 0usize..3), 6..20),
    ) {
        let (mut office, office_author) = base();
        office.add_note(office_author, &note("first"), datetime!(2026-11-24 08:02 UTC)).unwrap();
        let mut replicas: Vec<Replica> = (0..3).map(|_| replica_of(&mut office)).collect();
        let task_id = office.tasks().unwrap()[0].id;
        let first_note = office.notes().unwrap()[0].id;
        let item = office.tasks().unwrap()[0].checklist[0].id;
        let mut added = 0;
        let t = datetime!(2026-11-24 09:00 UTC);
        for (who, edit) in &edits {
            let r = &mut replicas[*who];
            match edit {
                Edit::AddNote(n) => { r.doc.add_note(r.author, &note(&format!("note {n}")), t).unwrap(); added += 1; }
                Edit::RewriteFirstNote(n) => r.doc.edit_note_body(r.author, first_note, &format!("first {n}"), t).unwrap(),
                Edit::SetStatus(s) => r.doc.update_task(r.author, task_id, &TaskUpdate { status: Some(TaskStatus::ALL[*s as usize]), ..Default::default() }, t).unwrap(),
                Edit::Tick(done) => r.doc.set_checklist_item(r.author, task_id, item, *done, t).unwrap(),
            }
        }
        for (from, to) in order {
            if from != to {
                let (a, b) = if from < to {
                    let (l, r) = replicas.split_at_mut(to);
                    (&mut l[from], &mut r[0])
                } else {
                    let (l, r) = replicas.split_at_mut(from);
                    (&mut r[0], &mut l[to])
                };
                deliver(&mut a.doc, &mut b.doc, 2);
            }
        }
        // Finish with a full exchange through replica 0.
        for i in 1..3 {
            let (l, r) = replicas.split_at_mut(i);
            deliver(&mut r[0].doc, &mut l[0].doc, 1);
        }
        for i in 1..3 {
            let (l, r) = replicas.split_at_mut(i);
            deliver(&mut l[0].doc, &mut r[0].doc, 1);
        }
        let reference = replicas[0].doc.case().unwrap();
        prop_assert_eq!(reference.notes.len(), 1 + added);
        let heads = replicas[0].doc.heads();
        for r in replicas.iter_mut().skip(1) {
            prop_assert_eq!(r.doc.case().unwrap(), reference.clone());
            prop_assert_eq!(r.doc.heads(), heads.clone());
        }
    }
}

#[test]
fn sensitive_conflicts_carry_who_and_when_and_one_resolving_write_ends_them_everywhere() {
    let (mut office, office_author) = base();
    // A document written before risk level and legal status existed reads their defaults.
    let before = office.case().unwrap();
    assert_eq!(before.risk_level, RiskLevel::NotAssessed);
    assert_eq!(before.legal_status, LegalStatus::Unknown);
    let task_id = office.tasks().unwrap()[0].id;
    let mut a = replica_of(&mut office);
    let mut b = replica_of(&mut office);
    let (ta, tb) = (
        datetime!(2026-11-24 09:00 UTC),
        datetime!(2026-11-24 09:30 UTC),
    );
    let risk = |r| CaseUpdate {
        risk_level: Some(r),
        ..Default::default()
    };
    a.doc
        .update_case(a.author, &risk(RiskLevel::High), ta)
        .unwrap();
    b.doc
        .update_case(b.author, &risk(RiskLevel::Low), tb)
        .unwrap();
    let outcome = |o: &str| TaskUpdate {
        outcome: Some(o.into()),
        ..Default::default()
    };
    a.doc
        .update_task(a.author, task_id, &outcome("ID filed"), ta)
        .unwrap();
    b.doc
        .update_task(b.author, task_id, &outcome("office closed"), tb)
        .unwrap();
    for r in [&mut a, &mut b] {
        deliver(&mut r.doc, &mut office, 1);
    }
    let conflicts = office.conflicts().unwrap();
    assert_eq!(conflicts.len(), 2, "{conflicts:?}");
    assert!(conflicts.iter().all(|c| c.is_sensitive()));
    let risk_conflict = conflicts.iter().find(|c| c.field == "risk_level").unwrap();
    let mut seen: Vec<_> = risk_conflict
        .values
        .iter()
        .map(|v| (v.value.as_str(), v.author, v.at))
        .collect();
    seen.sort_by_key(|v| v.0);
    assert_eq!(
        seen,
        vec![
            ("high", Some(a.author), Some(ta)),
            ("low", Some(b.author), Some(tb))
        ]
    );

    // Non-sensitive fields and bad values are refused and change nothing.
    let heads = office.heads();
    let at = datetime!(2026-11-24 12:00 UTC);
    for (task, field, value) in [
        (None, "status", "closed"),
        (Some(task_id), "status", "done"),
        (None, "risk_level", "extreme"),
        (None, "client_code", "K-1"),
    ] {
        assert!(
            office
                .resolve_conflict(office_author, task, field, value, at)
                .is_err(),
            "{field}={value}"
        );
    }
    assert_eq!(office.heads(), heads);

    // The case manager picks one risk value and writes a new outcome.
    office
        .resolve_conflict(office_author, None, "risk_level", "low", at)
        .unwrap();
    office
        .resolve_conflict(
            office_author,
            Some(task_id),
            "outcome",
            "Filed on the second visit",
            at,
        )
        .unwrap();
    assert!(office.conflicts().unwrap().is_empty());
    for r in [&mut a, &mut b] {
        deliver(&mut office, &mut r.doc, 1);
        let case = r.doc.case().unwrap();
        assert_eq!(case.risk_level, RiskLevel::Low);
        assert_eq!(
            case.tasks[0].outcome.as_deref(),
            Some("Filed on the second visit")
        );
        assert!(r.doc.conflicts().unwrap().is_empty());
    }
}

/// What a peer is sent: the changes it lacks when that is a little of the case, the compact
/// document when it lacks nearly all of it; either way it ends with exactly the sender's case.
#[test]
fn a_peer_gets_the_changes_it_lacks_or_the_whole_document_when_it_lacks_nearly_all() {
    let (mut office, _) = base();
    let mut phone = replica_of(&mut office);
    let at = datetime!(2026-11-24 09:00 UTC);
    let known = office.heads();
    for i in 0..20 {
        phone
            .doc
            .add_note(
                phone.author,
                &note(&format!("visit {i}: waited at the centre")),
                at,
            )
            .unwrap();
    }
    // The office lacks nearly all of the phone's case: the phone sends the compact document,
    // which is smaller than the twenty changes.
    let upload = phone.doc.changes_for(&known);
    assert!(fieldcase_core::document::is_document_chunk(&upload));
    assert!(upload.len() < phone.doc.changes_since(&known).len());
    office.apply_received(&upload).unwrap();
    assert_eq!(office.heads(), phone.doc.heads());
    assert_eq!(office.case().unwrap(), phone.doc.case().unwrap());

    // One more note is a little of the case: only its change travels.
    let known = office.heads();
    phone
        .doc
        .add_note(phone.author, &note("court: hearing moved to the 12th"), at)
        .unwrap();
    let upload = phone.doc.changes_for(&known);
    assert!(!fieldcase_core::document::is_document_chunk(&upload));
    assert_eq!(upload, phone.doc.changes_since(&known));
    office.apply_received(&upload).unwrap();
    assert_eq!(office.case().unwrap(), phone.doc.case().unwrap());

    // Nothing new: nothing to send.
    assert!(phone.doc.changes_for(&office.heads()).is_empty());
}
