//! The phone's screens through the store API: lists from the index, timelines, notes, tasks,
//! checklists, pending changes, and validation that refuses bad input and changes nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use fieldcase_core::CoreError;
use fieldcase_core::ids::UserId;
use fieldcase_core::model::{
    CaseUpdate, ConsentStatus, LegalStatus, Limits, NoteKind, RiskLevel, TaskStatus, TaskUpdate,
    ValidationError,
};
use fieldcase_core::store::TimelineEntry;
use time::macros::{date, datetime, offset};

#[test]
fn todays_tasks_timeline_checklist_and_pending_changes() {
    let dir = tempfile::tempdir().unwrap();
    let t = create(dir.path(), [4; 32]);
    let me = t.identity.user;
    let colleague = UserId::new();
    let a = t.store.create_case(&new_case("K-0142", me)).unwrap();
    let b = t.store.create_case(&new_case("K-0143", me)).unwrap();
    let today = t
        .store
        .add_task(
            a,
            &task("ID application", datetime!(2026-11-24 10:00 +01:00), me),
        )
        .unwrap();
    // Late evening in Belgrade is still today there, though it is tomorrow nowhere else yet.
    t.store
        .add_task(
            b,
            &task("evening check-in", datetime!(2026-11-24 23:30 +01:00), me),
        )
        .unwrap();
    t.store
        .add_task(b, &task("court", datetime!(2026-11-25 09:00 +01:00), me))
        .unwrap();
    t.store
        .add_task(
            b,
            &task(
                "someone else's",
                datetime!(2026-11-24 11:00 +01:00),
                colleague,
            ),
        )
        .unwrap();

    let todays = t.store.today_tasks(offset!(+1)).unwrap();
    let purposes: Vec<_> = todays.iter().map(|t| t.purpose.as_str()).collect();
    assert_eq!(purposes, ["ID application", "evening check-in"]);
    assert_eq!(todays[0].client_code, "K-0142");
    assert_eq!(todays[0].checklist_total, 2);
    let tomorrow = t
        .store
        .my_tasks_on(date!(2026 - 11 - 25), offset!(+1))
        .unwrap();
    assert_eq!(tomorrow.len(), 1);
    assert_eq!(t.store.upcoming_tasks(7).unwrap().len(), 3);

    // Tick a checklist item; the index follows.
    let item = t.store.case(a).unwrap().tasks[0].checklist[0].id;
    t.store.set_checklist_item(a, today, item, true).unwrap();
    assert_eq!(
        t.store.today_tasks(offset!(+1)).unwrap()[0].checklist_done,
        1
    );

    // Notes and tasks in time order.
    t.clock.advance(time::Duration::hours(2));
    let n = t
        .store
        .write_note(a, &note("at the centre, application filed"))
        .unwrap();
    t.store
        .edit_note(a, n, "at the centre, application filed; answer in 2 weeks")
        .unwrap();
    t.store
        .update_task(
            a,
            today,
            &TaskUpdate {
                status: Some(TaskStatus::Done),
                follow_up: Some(date!(2026 - 12 - 08)),
                ..Default::default()
            },
        )
        .unwrap();
    let timeline = t.store.timeline(a).unwrap();
    assert!(matches!(&timeline[0], TimelineEntry::Task(t) if t.status == TaskStatus::Done));
    assert!(
        matches!(&timeline[1], TimelineEntry::Note(n) if n.body.ends_with("2 weeks") && n.edited_at.is_some())
    );
    // The finished task is no longer upcoming.
    assert_eq!(t.store.upcoming_tasks(7).unwrap().len(), 2);
    // A day count past what a date can hold is a typed error, not a panic inside core.
    for days in [u32::MAX, 100_000] {
        assert!(matches!(
            t.store.upcoming_tasks(days),
            Err(fieldcase_core::CoreError::Invalid(
                fieldcase_core::model::ValidationError::TimeOutOfRange { field: "days" }
            ))
        ));
    }

    let cases = t.store.list_cases().unwrap();
    assert_eq!(cases[0].id, a, "most recently active first");
    assert_eq!(cases[0].note_count, 1);

    let pending: Vec<_> = t
        .store
        .pending_changes()
        .unwrap()
        .into_iter()
        .map(|p| p.action)
        .collect();
    assert_eq!(
        pending,
        [
            "case.create",
            "case.create",
            "task.add",
            "task.add",
            "task.add",
            "task.add",
            "checklist.tick",
            "note.add",
            "note.edit",
            "task.update"
        ]
    );
}

#[test]
fn bad_input_is_refused_with_a_typed_error_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let t = create(dir.path(), [4; 32]);
    let me = t.identity.user;
    let case = t.store.create_case(&new_case("K-1", me)).unwrap();
    let task_id = t
        .store
        .add_task(
            case,
            &task("registry", datetime!(2026-11-26 10:00 +01:00), me),
        )
        .unwrap();
    let before = t.store.case(case).unwrap();
    let pending_before = t.store.pending_changes().unwrap().len();

    let err = t.store.write_note(case, &note("   \n")).unwrap_err();
    assert!(matches!(
        err,
        CoreError::Invalid(ValidationError::EmptyNote)
    ));
    let huge = "x".repeat(Limits::NOTE_BODY_MAX + 1);
    assert!(matches!(
        t.store.write_note(case, &note(&huge)),
        Err(CoreError::Invalid(ValidationError::TooLong { .. }))
    ));
    let early = TaskUpdate {
        follow_up: Some(date!(2026 - 11 - 25)),
        ..Default::default()
    };
    assert!(matches!(
        t.store.update_task(case, task_id, &early),
        Err(CoreError::Invalid(ValidationError::FollowUpBeforeVisit))
    ));
    assert!(matches!(
        "postponed".parse::<TaskStatus>(),
        Err(ValidationError::UnknownValue {
            field: "task status"
        })
    ));
    assert!(matches!(
        "karaoke".parse::<NoteKind>(),
        Err(ValidationError::UnknownValue { .. })
    ));
    let mut bad_tz = task("x", datetime!(2026-11-26 10:00 +01:00), me);
    bad_tz.time_zone = "Europe/Belgrade; DROP".into();
    assert!(matches!(
        t.store.add_task(case, &bad_tz),
        Err(CoreError::Invalid(ValidationError::InvalidTimeZone))
    ));
    let mut note_on_missing_task = note("hello");
    note_on_missing_task.task = Some(fieldcase_core::ids::TaskId::new());
    assert!(matches!(
        t.store.write_note(case, &note_on_missing_task),
        Err(CoreError::TaskNotFound)
    ));
    assert!(matches!(
        t.store
            .edit_note(case, fieldcase_core::ids::NoteId::new(), "x"),
        Err(CoreError::NoteNotFound)
    ));
    assert!(matches!(
        t.store.case(fieldcase_core::ids::CaseId::new()),
        Err(CoreError::CaseNotFound)
    ));

    assert_eq!(t.store.case(case).unwrap(), before);
    assert_eq!(t.store.pending_changes().unwrap().len(), pending_before);
    // Nothing changed on disk either: a fresh open sees the same.
    drop(t);
    let store = fieldcase_core::store::Store::open(dir.path(), options(&new_clock())).unwrap();
    store
        .unlock_with_keystore(&fieldcase_core::crypto::StaticKeyProvider::new([4; 32]))
        .unwrap();
    assert_eq!(store.case(case).unwrap(), before);
}

#[test]
fn consent_risk_level_and_legal_status_are_set_from_the_phone_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let t = create(dir.path(), [4; 32]);
    let case = t
        .store
        .create_case(&new_case("K-7", t.identity.user))
        .unwrap();
    let fresh = t.store.case(case).unwrap();
    assert_eq!(
        (fresh.risk_level, fresh.legal_status),
        (RiskLevel::NotAssessed, LegalStatus::Unknown)
    );
    let pending = t.store.pending_changes().unwrap().len();
    // An empty update writes nothing.
    t.store.update_case(case, &CaseUpdate::default()).unwrap();
    assert_eq!(t.store.pending_changes().unwrap().len(), pending);
    t.store
        .update_case(
            case,
            &CaseUpdate {
                consent: Some(ConsentStatus::Withdrawn),
                risk_level: Some(RiskLevel::High),
                legal_status: Some(LegalStatus::IdentifiedVictim),
            },
        )
        .unwrap();
    let changes = t.store.pending_changes().unwrap();
    assert_eq!(changes.last().unwrap().action, "case.update");
    drop(t);
    let store = fieldcase_core::store::Store::open(dir.path(), options(&new_clock())).unwrap();
    store
        .unlock_with_keystore(&fieldcase_core::crypto::StaticKeyProvider::new([4; 32]))
        .unwrap();
    let case = store.case(case).unwrap();
    assert_eq!(case.consent, ConsentStatus::Withdrawn);
    assert_eq!(case.risk_level, RiskLevel::High);
    assert_eq!(case.legal_status, LegalStatus::IdentifiedVictim);
    assert!(matches!(
        "extreme".parse::<RiskLevel>(),
        Err(ValidationError::UnknownValue {
            field: "risk level"
        })
    ));
}
