//! The hub checks only what an upload's changes touched (`CaseDoc::check_bounds_since`), so that
//! its cost follows the change, not the case. These tests hold it to the whole-document check:
//! every hostile change the whole check refuses, the incremental one refuses too, on a case that
//! already holds notes and tasks; ordinary edits pass both.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use automerge::{AutoCommit, ObjType, ReadDoc, transaction::Transactable};
use fieldcase_core::document::{CaseDoc, MAX_DEPTH, MAX_TEXT_BYTES};
use fieldcase_core::ids::{CaseId, DeviceId, UserId};
use fieldcase_core::model::{
    Author, ConsentStatus, NewCase, NewNote, NewTask, NoteKind, OfficeKind, TaskStatus, TaskUpdate,
    ValidationError,
};
use fieldcase_core::{ActorId, CoreError};
use time::macros::{date, datetime};

fn author() -> Author {
    Author {
        user: UserId::new(),
        device: DeviceId::new(),
    }
}

/// A case with a task and 20 notes, as the office holds it.
fn office_case() -> (CaseId, Vec<u8>, fieldcase_core::ids::TaskId, String) {
    let id = CaseId::new();
    let who = author();
    let at = datetime!(2026-11-24 08:00 UTC);
    let mut doc = CaseDoc::create(
        id,
        &NewCase {
            client_code: "K-0142".into(),
            consent: ConsentStatus::Given,
            assigned_workers: vec![who.user],
        },
        who,
        &ActorId::random(),
        at,
    )
    .unwrap();
    let task = doc
        .add_task(
            who,
            &NewTask {
                purpose: "ID application".into(),
                office_kind: OfficeKind::SocialWelfareCentre,
                office_name: "PU Novi Sad".into(),
                office_address: "Kraljevića Marka 1".into(),
                scheduled_at: datetime!(2026-11-25 10:00 UTC),
                time_zone: "Europe/Belgrade".into(),
                assignees: vec![who.user],
                checklist: vec!["birth certificate copy".into()],
            },
            at,
        )
        .unwrap();
    let mut first_note = String::new();
    for i in 0..20 {
        let note = doc
            .add_note(
                who,
                &NewNote {
                    kind: NoteKind::Visit,
                    body: format!("visit note {i}"),
                    tags: vec![],
                    task: None,
                },
                at,
            )
            .unwrap();
        if i == 0 {
            first_note = note.to_string();
        }
    }
    (id, doc.save(), task, first_note)
}

/// Registers a raw replica's actor as `device` of `user`, as a phone's store does with its own
/// edits (the hub takes changes only from actors registered to the uploading device).
fn registered(doc: &mut AutoCommit, user: UserId, device: DeviceId) {
    let actor = doc.get_actor().to_hex_string();
    let authors = doc.get(automerge::ROOT, "authors").unwrap().unwrap().1;
    let entry = doc.put_object(&authors, actor, ObjType::Map).unwrap();
    doc.put(&entry, "user", user.to_string()).unwrap();
    doc.put(&entry, "device", device.to_string()).unwrap();
}

/// Edits a note's body on a raw replica as a phone's store does: the text spliced, and the
/// device recorded among the note's editors (the hub refuses an edit of a colleague's note that
/// does not name its editor).
fn correct_note(doc: &mut AutoCommit, obj: &automerge::ObjId, user: UserId, device: DeviceId) {
    let body = doc.get(obj, "body").unwrap().unwrap().1;
    doc.splice_text(&body, 0, 0, "Corrected: ").unwrap();
    doc.put(obj, format!("editor:{device}"), user.to_string())
        .unwrap();
}

/// Applies what `edit` does to a raw copy of the case at the office, and returns both checks'
/// verdicts: (incremental, whole).
fn verdicts(edit: impl FnOnce(&mut AutoCommit, &str)) -> (bool, bool) {
    let (id, saved, _, note) = office_case();
    let mut phone = AutoCommit::load(&saved).unwrap();
    let before = phone.get_heads();
    edit(&mut phone, &note);
    let changes = phone.save_after(&before);
    let mut office = CaseDoc::load(id, &saved, &ActorId::random()).unwrap();
    let heads = office.heads();
    office.apply_encoded_changes(&changes).unwrap();
    let incremental = office.check_bounds_since(&heads).is_ok();
    let whole = office.check_bounds().is_ok();
    (incremental, whole)
}

/// A raw edit of a case document, given the id of one of its notes.
type Edit = dyn FnOnce(&mut AutoCommit, &str);

/// A raw edit of a case document that knows which notes it touches.
type NoteEdit<'a> = dyn Fn(&mut AutoCommit) + 'a;

fn notes_map(doc: &AutoCommit) -> automerge::ObjId {
    doc.get(automerge::ROOT, "notes").unwrap().unwrap().1
}

fn note_obj(doc: &AutoCommit, note: &str) -> automerge::ObjId {
    doc.get(notes_map(doc), note).unwrap().unwrap().1
}

#[test]
fn hostile_changes_are_refused_by_both_checks() {
    let cases: Vec<(&str, Box<Edit>)> = vec![
        (
            "maps nested too deep inside a note",
            Box::new(|doc, note| {
                let mut obj = note_obj(doc, note);
                for _ in 0..MAX_DEPTH {
                    obj = doc.put_object(&obj, "x", ObjType::Map).unwrap();
                }
            }),
        ),
        (
            "maps nested too deep at the root",
            Box::new(|doc, _| {
                let mut obj = doc.put_object(automerge::ROOT, "x", ObjType::Map).unwrap();
                for _ in 0..MAX_DEPTH + 2 {
                    obj = doc.put_object(&obj, "x", ObjType::Map).unwrap();
                }
            }),
        ),
        (
            "a string over the limit in an existing note",
            Box::new(|doc, note| {
                let obj = note_obj(doc, note);
                doc.put(&obj, "kind", "x".repeat(MAX_TEXT_BYTES + 1))
                    .unwrap();
            }),
        ),
        (
            "a note body grown past the limit",
            Box::new(|doc, note| {
                let obj = note_obj(doc, note);
                let body = doc.get(&obj, "body").unwrap().unwrap().1;
                doc.splice_text(&body, 0, 0, &"y".repeat(MAX_TEXT_BYTES + 1))
                    .unwrap();
            }),
        ),
        (
            "the notes map replaced by a string",
            Box::new(|doc, _| {
                doc.put(automerge::ROOT, "notes", "gone").unwrap();
            }),
        ),
        (
            "a note whose author is no id",
            Box::new(|doc, note| {
                let obj = note_obj(doc, note);
                doc.put(&obj, "author_user", "not an id").unwrap();
            }),
        ),
        (
            "a new note missing its fields",
            Box::new(|doc, _| {
                let notes = notes_map(doc);
                let obj = doc
                    .put_object(&notes, uuid::Uuid::now_v7().to_string(), ObjType::Map)
                    .unwrap();
                doc.put(&obj, "kind", "visit").unwrap();
            }),
        ),
        (
            "a task with a status no task has",
            Box::new(|doc, _| {
                let tasks = doc.get(automerge::ROOT, "tasks").unwrap().unwrap().1;
                let task = doc.keys(&tasks).next().unwrap();
                let obj = doc.get(&tasks, task.as_str()).unwrap().unwrap().1;
                doc.put(&obj, "status", "exploded").unwrap();
            }),
        ),
        (
            "the case's status broken",
            Box::new(|doc, _| {
                doc.put(automerge::ROOT, "status", "nonsense").unwrap();
            }),
        ),
        (
            "a note dated at the end of the year 9999",
            Box::new(|doc, note| {
                let obj = note_obj(doc, note);
                doc.put(&obj, "written_at", "9999-12-31T23:30:00Z").unwrap();
            }),
        ),
        (
            "a note edited in the year 2200",
            Box::new(|doc, note| {
                let obj = note_obj(doc, note);
                doc.put(&obj, "edited_at", "2200-01-01T00:00:00Z").unwrap();
            }),
        ),
        (
            "a task rescheduled to the year 9999",
            Box::new(|doc, _| {
                let tasks = doc.get(automerge::ROOT, "tasks").unwrap().unwrap().1;
                let task = doc.keys(&tasks).next().unwrap();
                let obj = doc.get(&tasks, task.as_str()).unwrap().unwrap().1;
                doc.put(&obj, "scheduled_at", "9999-12-31T23:30:00+00:00")
                    .unwrap();
            }),
        ),
        (
            "the case opened in 1899",
            Box::new(|doc, _| {
                doc.put(automerge::ROOT, "created_at", "1899-12-31T23:00:00Z")
                    .unwrap();
            }),
        ),
        (
            "a huge list where tags belong",
            Box::new(|doc, note| {
                let obj = note_obj(doc, note);
                let list = doc.put_object(&obj, "extra", ObjType::List).unwrap();
                doc.insert(&list, 0, "z".repeat(MAX_TEXT_BYTES + 1))
                    .unwrap();
            }),
        ),
    ];
    for (name, edit) in cases {
        let (incremental, whole) = verdicts(edit);
        assert!(!whole, "{name}: the whole check should refuse it");
        assert!(!incremental, "{name}: the incremental check let it through");
    }
}

#[test]
fn a_hostile_value_that_loses_a_conflict_is_still_refused() {
    // Two replicas put the same key concurrently: whichever value wins, both are kept and shown
    // as a conflict, so the long one must be refused even where it is not the visible one.
    let (id, saved, _, note) = office_case();
    let mut office = CaseDoc::load(id, &saved, &ActorId::random()).unwrap();
    let heads = office.heads();
    let mut changes = Vec::new();
    for kind in ["visit".to_string(), "x".repeat(MAX_TEXT_BYTES + 1)] {
        let mut phone = AutoCommit::load(&saved).unwrap();
        let before = phone.get_heads();
        let obj = note_obj(&phone, &note);
        phone.put(&obj, "kind", kind).unwrap();
        changes.extend(phone.save_after(&before));
    }
    office.apply_encoded_changes(&changes).unwrap();
    assert!(office.check_bounds().is_err());
    assert!(office.check_bounds_since(&heads).is_err());
}

#[test]
fn ordinary_edits_pass_both_checks() {
    let (id, saved, task, _) = office_case();
    let mut phone = CaseDoc::load(id, &saved, &ActorId::random()).unwrap();
    let before = phone.heads();
    let who = author();
    let at = datetime!(2026-11-24 12:00 UTC);
    let note = phone
        .add_note(
            who,
            &NewNote {
                kind: NoteKind::Visit,
                body: "at the centre; the application was accepted".into(),
                tags: vec![],
                task: Some(task),
            },
            at,
        )
        .unwrap();
    phone
        .edit_note_body(who, note, "at the centre: the application was accepted", at)
        .unwrap();
    phone
        .update_task(
            who,
            task,
            &TaskUpdate {
                status: Some(TaskStatus::Done),
                ..Default::default()
            },
            at,
        )
        .unwrap();
    let changes = phone.changes_since(&before);
    let mut office = CaseDoc::load(id, &saved, &ActorId::random()).unwrap();
    let heads = office.heads();
    office.apply_encoded_changes(&changes).unwrap();
    office.check_bounds_since(&heads).unwrap();
    office.check_bounds().unwrap();
    // With nothing new since, there is nothing to refuse.
    let now = office.heads();
    office.check_bounds_since(&now).unwrap();
}

/// A device may send a case as its whole saved document (when that is smaller than its changes);
/// the hub then adopts it and checks it whole. A hostile edit sent that way is refused like one
/// sent as changes, and the hub keeps the case as it was.
#[test]
fn a_hostile_whole_document_upload_is_refused_and_nothing_is_stored() {
    use fieldcase_core::sync::hub::{MemoryHub, handle_sync};

    let (id, saved, _, note) = office_case();
    let (user, device) = (UserId::new(), DeviceId::new());
    let mut hub = MemoryHub::new();
    hub.put_case(id, saved.clone(), &[user]);
    let upload = |edit: &dyn Fn(&mut AutoCommit)| raw_upload(id, &saved, (user, device), 0, edit);
    let hostile = upload(&|doc| {
        let obj = note_obj(doc, &note);
        doc.put(&obj, "kind", "x".repeat(MAX_TEXT_BYTES + 1))
            .unwrap();
    });
    assert!(handle_sync(&mut hub, device, user, &hostile).is_err());
    assert_eq!(
        hub.case_bytes(id),
        Some(saved.as_slice()),
        "the hub stored a refused case"
    );
    // The same path takes an ordinary edit.
    let ordinary = upload(&|doc| {
        let obj = note_obj(doc, &note);
        correct_note(doc, &obj, user, device);
    });
    let response = handle_sync(&mut hub, device, user, &ordinary).unwrap();
    assert_eq!(response.accepted, vec![id]);
    assert_ne!(
        hub.case_bytes(id),
        Some(saved.as_slice()),
        "the ordinary edit was not stored"
    );
}

/// A first upload of many cases, whose documents the hub loads and checks side by side: one
/// hostile document among them, wherever it is, fails the request and is not stored (that the
/// cases before it are rolled back too is the storage's transaction, tested at the server); the
/// same request without it stores every case.
#[test]
fn one_hostile_document_among_many_fails_the_request_wherever_it_is() {
    use fieldcase_core::sync::hub::{MemoryHub, handle_sync};
    use fieldcase_core::sync::{CaseChanges, PROTOCOL_VERSION, SyncRequest};
    let (user, device) = (UserId::new(), DeviceId::new());
    let cases: Vec<_> = (0..6).map(|_| office_case()).collect();
    let new_hub = || {
        let mut hub = MemoryHub::new();
        for (id, saved, _, _) in &cases {
            hub.put_case(*id, saved.clone(), &[user]);
        }
        hub
    };
    let uploads = |hostile: Option<usize>| -> Vec<CaseChanges> {
        cases
            .iter()
            .enumerate()
            .map(|(i, (id, saved, _, note))| {
                let mut phone = AutoCommit::load(saved).unwrap();
                registered(&mut phone, user, device);
                let obj = note_obj(&phone, note);
                if hostile == Some(i) {
                    phone
                        .put(&obj, "kind", "x".repeat(MAX_TEXT_BYTES + 1))
                        .unwrap();
                } else {
                    correct_note(&mut phone, &obj, user, device);
                }
                CaseChanges {
                    case_id: *id,
                    heads: phone.get_heads(),
                    changes: phone.save(),
                }
            })
            .collect()
    };
    let request = |uploads| SyncRequest {
        version: PROTOCOL_VERSION,
        cursor: 0,
        uploads,
        purged: vec![],
        ..SyncRequest::default()
    };
    let stored =
        |hub: &MemoryHub, i: usize| hub.case_bytes(cases[i].0) != Some(cases[i].1.as_slice());
    for hostile in [5, 4, 0] {
        let mut hub = new_hub();
        let refused = handle_sync(&mut hub, device, user, &request(uploads(Some(hostile))));
        assert!(
            refused.is_err(),
            "case {hostile}'s hostile document was taken"
        );
        assert!(!stored(&hub, hostile), "the hostile document was stored");
    }
    let mut hub = new_hub();
    let response = handle_sync(&mut hub, device, user, &request(uploads(None))).unwrap();
    assert_eq!(response.accepted.len(), cases.len());
    assert!((0..cases.len()).all(|i| stored(&hub, i)));
}

#[test]
fn times_outside_1900_to_2199_are_refused_at_input_and_nothing_is_written() {
    let (id, saved, task, _) = office_case();
    let mut doc = CaseDoc::load(id, &saved, &ActorId::random()).unwrap();
    let heads = doc.heads();
    let note = NewNote {
        kind: NoteKind::Visit,
        body: "written on a phone whose clock is wrong".into(),
        tags: vec![],
        task: None,
    };
    // A clock far off: the edit's time is the note's time.
    for at in [
        datetime!(2200-01-01 0:00 UTC),
        datetime!(9999-12-31 23:30 UTC),
        datetime!(1899-12-31 23:59 UTC),
    ] {
        let err = doc.add_note(author(), &note, at).unwrap_err();
        assert!(
            matches!(
                err,
                CoreError::Invalid(ValidationError::TimeOutOfRange { .. })
            ),
            "{at}: {err:?}"
        );
    }
    // A task planned or moved out of range, and a follow-up date out of range.
    let mut far = NewTask {
        purpose: "court hearing".into(),
        office_kind: OfficeKind::Court,
        office_name: "Osnovni sud".into(),
        office_address: String::new(),
        scheduled_at: datetime!(9999-12-31 23:30 UTC),
        time_zone: "Europe/Belgrade".into(),
        assignees: vec![],
        checklist: vec![],
    };
    let at = datetime!(2026-11-24 09:00 UTC);
    assert!(matches!(
        doc.add_task(author(), &far, at).unwrap_err(),
        CoreError::Invalid(ValidationError::TimeOutOfRange { .. })
    ));
    far.scheduled_at = datetime!(2199-12-31 23:00 UTC);
    let kept = doc.add_task(author(), &far, at).unwrap();
    let after_good = doc.heads();
    for update in [
        TaskUpdate {
            scheduled_at: Some(datetime!(2200-01-01 0:00 UTC)),
            ..TaskUpdate::default()
        },
        TaskUpdate {
            follow_up: Some(date!(2300 - 01 - 01)),
            ..TaskUpdate::default()
        },
    ] {
        assert!(matches!(
            doc.update_task(author(), task, &update, at).unwrap_err(),
            CoreError::Invalid(ValidationError::TimeOutOfRange { .. })
        ));
    }
    // Nothing of the refused edits is in the document; the one in range is.
    assert_eq!(doc.heads(), after_good);
    assert_ne!(heads, after_good);
    assert!(doc.task(kept).is_ok());
    assert!(doc.check_bounds().is_ok());
}

#[test]
fn the_hub_takes_changes_only_from_the_uploading_devices_own_actor_and_notes_in_its_name() {
    use fieldcase_core::sync::SyncRequest;
    use fieldcase_core::sync::hub::{MemoryHub, handle_sync};
    let (id, saved, _, _) = office_case();
    let (ana, ana_phone) = (UserId::new(), DeviceId::new());
    let (bo, bo_phone) = (UserId::new(), DeviceId::new());
    let fresh = || {
        let mut hub = MemoryHub::new();
        hub.put_case(id, saved.clone(), &[ana, bo]);
        hub
    };
    // A note made by a replica whose actor is registered to `registered_as`, naming
    // `named` as its author.
    let upload = |registered_as: (UserId, DeviceId), named: (UserId, DeviceId)| {
        raw_upload(id, &saved, registered_as, 0, |phone| {
            put_note(phone, named, "2026-11-24T10:00:00Z", "who wrote this?");
        })
    };
    let refused = |request: &SyncRequest| {
        matches!(
            handle_sync(&mut fresh(), bo_phone, bo, request),
            Err(CoreError::Document(_))
        )
    };
    // Bo's phone passing its changes off as Ana's phone.
    assert!(refused(&upload((ana, ana_phone), (ana, ana_phone))));
    // Bo's phone, registered as itself, writing a note in Ana's name.
    assert!(refused(&upload((bo, bo_phone), (ana, ana_phone))));
    // Registered to Bo's user but another device.
    assert!(refused(&upload((bo, DeviceId::new()), (bo, bo_phone))));
    // Its own note, as itself: taken.
    let response = handle_sync(
        &mut fresh(),
        bo_phone,
        bo,
        &upload((bo, bo_phone), (bo, bo_phone)),
    )
    .unwrap();
    assert_eq!(response.accepted, vec![id]);
}

/// An upload of what `edit` does to a raw replica of `saved`, registered to `(user, device)`.
fn raw_upload(
    id: CaseId,
    saved: &[u8],
    (user, device): (UserId, DeviceId),
    cursor: u64,
    edit: impl FnOnce(&mut AutoCommit),
) -> fieldcase_core::sync::SyncRequest {
    use fieldcase_core::sync::{CaseChanges, PROTOCOL_VERSION, SyncRequest};
    let mut phone = AutoCommit::load(saved).unwrap();
    registered(&mut phone, user, device);
    edit(&mut phone);
    SyncRequest {
        version: PROTOCOL_VERSION,
        cursor,
        uploads: vec![CaseChanges {
            case_id: id,
            heads: phone.get_heads(),
            changes: phone.save(),
        }],
        purged: vec![],
        ..SyncRequest::default()
    }
}

/// [`raw_upload`] as a phone that synced before sends it: only the changes since the office's
/// copy (the hub then reads again only the notes they touch).
fn raw_changes_upload(
    id: CaseId,
    saved: &[u8],
    who: (UserId, DeviceId),
    edit: impl FnOnce(&mut AutoCommit),
) -> fieldcase_core::sync::SyncRequest {
    let mut request = raw_upload(id, saved, who, 0, edit);
    let mut phone = AutoCommit::load(&request.uploads[0].changes).unwrap();
    let mut office = AutoCommit::load(saved).unwrap();
    request.uploads[0].changes = phone.save_after(&office.get_heads());
    request
}

/// A complete note on a raw replica, naming `(user, device)` as its author, written at `at`.
fn put_note(doc: &mut AutoCommit, (user, device): (UserId, DeviceId), at: &str, body: &str) {
    let notes = notes_map(doc);
    let note = doc
        .put_object(
            &notes,
            fieldcase_core::ids::NoteId::new().to_string(),
            ObjType::Map,
        )
        .unwrap();
    doc.put(&note, "author_user", user.to_string()).unwrap();
    doc.put(&note, "author_device", device.to_string()).unwrap();
    doc.put(&note, "written_at", at).unwrap();
    doc.put(&note, "kind", "visit").unwrap();
    let text = doc.put_object(&note, "body", ObjType::Text).unwrap();
    doc.splice_text(&text, 0, 0, body).unwrap();
    doc.put_object(&note, "tags", ObjType::Map).unwrap();
}

#[test]
fn the_hub_keeps_a_colleagues_edit_with_its_editor_and_refuses_erasing_or_rewriting_notes() {
    use fieldcase_core::sync::hub::{MemoryHub, handle_sync};
    let (id, saved, _, note) = office_case();
    let (bo, bo_phone) = (UserId::new(), DeviceId::new());
    let now = datetime!(2026-12-03 12:00 UTC);
    let fresh = || {
        let mut hub = MemoryHub::new();
        hub.put_case(id, saved.clone(), &[bo]);
        hub.set_now(now);
        hub
    };
    let refused = |edit: &dyn Fn(&mut AutoCommit)| {
        let mut hub = fresh();
        let request = raw_upload(id, &saved, (bo, bo_phone), 0, edit);
        let refused = matches!(
            handle_sync(&mut hub, bo_phone, bo, &request),
            Err(CoreError::Document(_))
        );
        refused && hub.case_bytes(id) == Some(saved.as_slice())
    };
    // Erasing a note.
    assert!(refused(&|doc| {
        let notes = notes_map(doc);
        doc.delete(&notes, note.as_str()).unwrap();
    }));
    // Rewriting who wrote it, or when.
    assert!(refused(&|doc| {
        let obj = note_obj(doc, &note);
        doc.put(&obj, "author_user", bo.to_string()).unwrap();
    }));
    assert!(refused(&|doc| {
        let obj = note_obj(doc, &note);
        doc.put(&obj, "written_at", "2020-01-01T00:00:00Z").unwrap();
    }));
    // Editing the office's note without naming the editor, or naming another device.
    assert!(refused(&|doc| {
        let obj = note_obj(doc, &note);
        let body = doc.get(&obj, "body").unwrap().unwrap().1;
        doc.splice_text(&body, 0, 0, "Silently: ").unwrap();
    }));
    assert!(refused(&|doc| {
        correct_note(doc, &note_obj(doc, &note), bo, DeviceId::new());
    }));
    // A new note of its own dated tomorrow.
    assert!(refused(&|doc| {
        put_note(doc, (bo, bo_phone), "2026-12-04T12:00:00Z", "from tomorrow");
    }));
    // A correction that names its editor is kept, and the office sees who made it.
    let mut hub = fresh();
    let request = raw_upload(id, &saved, (bo, bo_phone), 0, |doc| {
        correct_note(doc, &note_obj(doc, &note), bo, bo_phone);
    });
    assert_eq!(
        handle_sync(&mut hub, bo_phone, bo, &request)
            .unwrap()
            .accepted,
        vec![id]
    );
    let doc = CaseDoc::load(id, hub.case_bytes(id).unwrap(), &ActorId::random()).unwrap();
    let edited = doc.note(note.parse().unwrap()).unwrap();
    assert!(edited.body.starts_with("Corrected: "));
    assert_eq!(
        edited.edited_by,
        vec![fieldcase_core::model::Author {
            user: bo,
            device: bo_phone
        }]
    );
}

#[test]
fn a_device_told_to_purge_a_case_may_write_to_it_for_the_grace_only_receipt_or_not() {
    use fieldcase_core::sync::SyncRequest;
    use fieldcase_core::sync::hub::{MemoryHub, PURGE_GRACE_SECS, handle_sync};
    let (id, saved, _, note) = office_case();
    let (bo, bo_phone) = (UserId::new(), DeviceId::new());
    let start = datetime!(2026-12-03 12:00 UTC);
    let mut hub = MemoryHub::new();
    hub.put_case(id, saved.clone(), &[bo]);
    hub.set_now(start);
    // The phone receives the case.
    let first = SyncRequest::default();
    let cursor = handle_sync(&mut hub, bo_phone, bo, &first).unwrap().cursor;
    // The office takes it from her; her next sync still delivers what she wrote, and orders the
    // purge.
    hub.set_assigned(id, &[]);
    let edit = |text: &'static str| {
        let note = note.clone();
        move |doc: &mut AutoCommit| {
            let obj = note_obj(doc, &note);
            let body = doc.get(&obj, "body").unwrap().unwrap().1;
            doc.splice_text(&body, 0, 0, text).unwrap();
            doc.put(&obj, format!("editor:{bo_phone}"), bo.to_string())
                .unwrap();
        }
    };
    let written_before = raw_upload(id, &saved, (bo, bo_phone), cursor, edit("Before: "));
    let response = handle_sync(&mut hub, bo_phone, bo, &written_before).unwrap();
    assert_eq!(response.accepted, vec![id]);
    assert_eq!(response.purge, vec![id]);
    let stored = hub.case_bytes(id).unwrap().to_vec();
    // A phone that never purges and keeps writing: taken within the grace, refused after.
    hub.set_now(start + time::Duration::seconds(PURGE_GRACE_SECS + 1));
    let later = raw_upload(
        id,
        &stored,
        (bo, bo_phone),
        response.cursor,
        edit("After: "),
    );
    let response = handle_sync(&mut hub, bo_phone, bo, &later).unwrap();
    assert!(response.accepted.is_empty());
    assert_eq!(response.purge, vec![id]);
    assert_eq!(hub.case_bytes(id), Some(stored.as_slice()));
    // What it sent before the order, sent again (its answer was lost), is acknowledged, so that
    // the phone's outbox empties and it purges the case; nothing changes.
    let resent = handle_sync(&mut hub, bo_phone, bo, &written_before).unwrap();
    assert_eq!(resent.accepted, vec![id]);
    assert_eq!(hub.case_bytes(id), Some(stored.as_slice()));
}

#[test]
fn documents_loaded_before_the_transaction_are_used_only_if_the_upload_is_still_allowed() {
    use fieldcase_core::sync::hub::{MemoryHub, allowed_uploads, handle_sync_loaded, load_uploads};
    let (id, saved, _, note) = office_case();
    let (bo, bo_phone) = (UserId::new(), DeviceId::new());
    let mut hub = MemoryHub::new();
    hub.put_case(id, saved.clone(), &[bo]);
    // A whole document, as a phone sends a case the office has not confirmed to it.
    let request = raw_upload(id, &saved, (bo, bo_phone), 0, |doc| {
        correct_note(doc, &note_obj(doc, &note), bo, bo_phone);
    });
    let allowed: Vec<bool> = allowed_uploads(&mut hub, bo_phone, bo, &request)
        .unwrap()
        .iter()
        .map(Option::is_some)
        .collect();
    assert_eq!(allowed, [true]);
    let early = load_uploads(&request, &allowed);
    // Taken from her between the load and the transaction: what was loaded is dropped.
    hub.set_assigned(id, &[]);
    let response = handle_sync_loaded(&mut hub, bo_phone, bo, &request, Some(early)).unwrap();
    assert!(response.accepted.is_empty());
    assert_eq!(hub.case_bytes(id), Some(saved.as_slice()));
    // Given to her between the load (which then skipped it) and the transaction: loaded now.
    let skipped = load_uploads(&request, &[false]);
    hub.set_assigned(id, &[bo]);
    let response = handle_sync_loaded(&mut hub, bo_phone, bo, &request, Some(skipped)).unwrap();
    assert_eq!(response.accepted, vec![id]);
    let doc = CaseDoc::load(id, hub.case_bytes(id).unwrap(), &ActorId::random()).unwrap();
    assert!(
        doc.note(note.parse().unwrap())
            .unwrap()
            .body
            .starts_with("Corrected: ")
    );
}

#[test]
fn notes_are_guarded_as_well_when_only_the_changes_are_uploaded() {
    use fieldcase_core::sync::hub::{MemoryHub, handle_sync};
    let (id, saved, _, note) = office_case();
    let (bo, bo_phone) = (UserId::new(), DeviceId::new());
    let now = datetime!(2026-12-03 12:00 UTC);
    // The office's case after Bo's phone uploaded a correction and a note of its own, as
    // changes.
    let mut first = MemoryHub::new();
    first.put_case(id, saved.clone(), &[bo]);
    first.set_now(now);
    let request = raw_changes_upload(id, &saved, (bo, bo_phone), |doc| {
        correct_note(doc, &note_obj(doc, &note), bo, bo_phone);
        put_note(doc, (bo, bo_phone), "2026-12-03T11:00:00Z", "her own");
    });
    assert_eq!(
        handle_sync(&mut first, bo_phone, bo, &request)
            .unwrap()
            .accepted,
        vec![id]
    );
    let synced = first.case_bytes(id).unwrap().to_vec();
    // A note of the office's that Bo has not corrected.
    let other = {
        let doc = AutoCommit::load(&saved).unwrap();
        doc.keys(notes_map(&doc)).find(|k| *k != note).unwrap()
    };
    // What each edit does, and whether the hub must refuse it.
    let edits: Vec<(&str, bool, Box<NoteEdit<'_>>)> = vec![
        (
            "erasing a note",
            true,
            Box::new(|doc| {
                let notes = notes_map(doc);
                doc.delete(&notes, other.as_str()).unwrap();
            }),
        ),
        (
            "replacing the notes map",
            true,
            Box::new(|doc| {
                doc.put_object(automerge::ROOT, "notes", ObjType::Map)
                    .unwrap();
            }),
        ),
        (
            "replacing a note by an empty one",
            true,
            Box::new(|doc| {
                let notes = notes_map(doc);
                doc.put_object(&notes, other.as_str(), ObjType::Map)
                    .unwrap();
            }),
        ),
        (
            "rewriting who wrote a note",
            true,
            Box::new(|doc| {
                let obj = note_obj(doc, &other);
                doc.put(&obj, "author_user", UserId::new().to_string())
                    .unwrap();
            }),
        ),
        (
            "editing a colleague's note silently",
            true,
            Box::new(|doc| {
                let obj = note_obj(doc, &other);
                let body = doc.get(&obj, "body").unwrap().unwrap().1;
                doc.splice_text(&body, 0, 0, "Silently: ").unwrap();
            }),
        ),
        (
            "tagging a colleague's note silently",
            true,
            Box::new(|doc| {
                let obj = note_obj(doc, &other);
                let tags = doc.get(&obj, "tags").unwrap().unwrap().1;
                doc.put(&tags, "legal", true).unwrap();
            }),
        ),
        (
            "a note in a colleague's name",
            true,
            Box::new(|doc| {
                put_note(
                    doc,
                    (UserId::new(), bo_phone),
                    "2026-12-03T11:00:00Z",
                    "not hers",
                );
            }),
        ),
        (
            "a note dated tomorrow",
            true,
            Box::new(|doc| {
                put_note(doc, (bo, bo_phone), "2026-12-04T12:00:00Z", "from tomorrow");
            }),
        ),
        (
            "a note key holding a string",
            true,
            Box::new(|doc| {
                let notes = notes_map(doc);
                doc.put(&notes, fieldcase_core::ids::NoteId::new().to_string(), "x")
                    .unwrap();
            }),
        ),
        (
            "a correction that names its editor",
            false,
            Box::new(|doc| correct_note(doc, &note_obj(doc, &note), bo, bo_phone)),
        ),
        (
            "a new note of her own",
            false,
            Box::new(|doc| put_note(doc, (bo, bo_phone), "2026-12-03T11:30:00Z", "visit")),
        ),
    ];
    for (what, hostile, edit) in &edits {
        // On the office's copy as it was, and as it is after an accepted upload.
        for base in [&saved, &synced] {
            let mut hub = MemoryHub::new();
            hub.put_case(id, base.clone(), &[bo]);
            hub.set_now(now);
            let request = raw_changes_upload(id, base, (bo, bo_phone), edit);
            let outcome = handle_sync(&mut hub, bo_phone, bo, &request);
            if *hostile {
                assert!(
                    matches!(outcome, Err(CoreError::Document(_))),
                    "{what}: {outcome:?}"
                );
                assert_eq!(hub.case_bytes(id), Some(base.as_slice()), "{what}");
            } else {
                assert_eq!(outcome.unwrap().accepted, vec![id], "{what}");
            }
        }
    }
}
