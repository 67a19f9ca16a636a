//! The individual recovery plan and the client profile in the case document: validated edits,
//! merged by the CRDT like notes and tasks, concurrent changes of a goal's status reported as a
//! sensitive conflict and settled with one value; the profile's fields one by one.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use fieldcase_core::document::{CaseDoc, ConflictOn};
use fieldcase_core::ids::{CaseId, DeviceId, GoalId, UserId};
use fieldcase_core::model::{
    AssistanceTag, Author, ClientProfile, ClosureReason, Country, ExploitationType, Gender,
    GoalStatus, GoalUpdate, HtcdsStatus, LabourIndustry, MeansOfControl, NewGoal, NewReview,
    NewService, ValidationError,
};
use fieldcase_core::{ActorId, CoreError};
use time::macros::{date, datetime};

fn author() -> Author {
    Author {
        user: UserId::new(),
        device: DeviceId::new(),
    }
}

fn base() -> (CaseDoc, Author) {
    let office = author();
    let doc = CaseDoc::create(
        CaseId::new(),
        &new_case("K-0142", office.user),
        office,
        &ActorId::random(),
        datetime!(2026-11-24 08:00 UTC),
    )
    .unwrap();
    (doc, office)
}

fn fork(doc: &mut CaseDoc) -> CaseDoc {
    CaseDoc::load(doc.id(), &doc.save(), &ActorId::random()).unwrap()
}

fn deliver(from: &mut CaseDoc, to: &mut CaseDoc) {
    let heads = to.heads();
    let changes = from.changes_since(&heads);
    to.apply_encoded_changes(&changes).unwrap();
}

fn goal(text: &str) -> NewGoal {
    NewGoal {
        area: AssistanceTag::Legal,
        description: text.into(),
        target_date: Some(date!(2027 - 03 - 01)),
    }
}

#[test]
fn goals_services_and_reviews_are_written_validated_and_read_back() {
    let (mut doc, office) = base();
    let t = datetime!(2026-11-24 09:00 UTC);
    let id = doc
        .add_goal(office, &goal("Temporary residence permit"), t)
        .unwrap();
    let plan = doc.plan().unwrap();
    assert_eq!(plan.goals.len(), 1);
    assert_eq!(plan.goals[0].status, GoalStatus::Planned);
    assert_eq!(plan.goals[0].created_by, office);
    assert_eq!(doc.case().unwrap().plan, plan, "the case carries its plan");

    for bad in ["", " \u{200B} "] {
        assert!(matches!(
            doc.add_goal(office, &goal(bad), t),
            Err(CoreError::Invalid(ValidationError::EmptyField { .. }))
        ));
    }
    let far = NewGoal {
        target_date: Some(date!(2300 - 01 - 01)),
        ..goal("x")
    };
    assert!(doc.add_goal(office, &far, t).is_err());

    let note = doc
        .add_note(office, &note("Lawyer met the client."), t)
        .unwrap();
    let service = NewService {
        area: AssistanceTag::Legal,
        description: "Lawyer at the hearing".into(),
        given_on: date!(2026 - 11 - 24),
        goals: vec![id],
        tasks: vec![],
        notes: vec![note],
    };
    doc.add_service(office, &service, t).unwrap();
    let unknown = NewService {
        goals: vec![GoalId::new()],
        ..service.clone()
    };
    assert!(matches!(
        doc.add_service(office, &unknown, t),
        Err(CoreError::GoalNotFound)
    ));
    doc.add_review(
        office,
        &NewReview {
            reviewed_on: date!(2026 - 12 - 01),
            summary: "On track.".into(),
            reviewer: None,
        },
        t,
    )
    .unwrap();
    let plan = doc.plan().unwrap();
    assert_eq!(plan.services.len(), 1);
    assert_eq!(plan.services[0].goals, vec![id]);
    assert_eq!(plan.services[0].notes, vec![note]);
    assert_eq!(plan.reviews[0].reviewer, office.user);
    doc.check_bounds().unwrap();

    let history: Vec<String> = doc.history().into_iter().map(|h| h.action).collect();
    assert_eq!(
        history,
        ["case.create", "goal.add", "service.add", "review.add"]
    );
}

#[test]
fn goals_added_on_two_phones_both_survive_and_concurrent_status_is_a_sensitive_conflict() {
    for a_first in [true, false] {
        let (mut office, office_author) = base();
        let t = datetime!(2026-11-24 09:00 UTC);
        let shared = office.add_goal(office_author, &goal("ID card"), t).unwrap();
        let (mut a, mut b) = (fork(&mut office), fork(&mut office));
        let (wa, wb) = (author(), author());
        a.add_goal(wa, &goal("Job search"), t).unwrap();
        b.add_goal(wb, &goal("Therapy"), t).unwrap();
        let achieved = GoalUpdate {
            status: Some(GoalStatus::Achieved),
            ..Default::default()
        };
        let dropped = GoalUpdate {
            status: Some(GoalStatus::Dropped),
            ..Default::default()
        };
        a.update_goal(wa, shared, &achieved, datetime!(2026-11-25 10:00 UTC))
            .unwrap();
        b.update_goal(wb, shared, &dropped, datetime!(2026-11-25 11:00 UTC))
            .unwrap();
        if a_first {
            deliver(&mut a, &mut office);
            deliver(&mut b, &mut office);
        } else {
            deliver(&mut b, &mut office);
            deliver(&mut a, &mut office);
        }
        office.check_bounds().unwrap();
        assert_eq!(office.plan().unwrap().goals.len(), 3);
        let conflicts = office.conflicts().unwrap();
        let c = conflicts
            .iter()
            .find(|c| c.on() == ConflictOn::Goal(shared))
            .expect("the goal's status conflicts");
        assert_eq!(c.field, "status");
        assert!(c.is_sensitive());
        let mut authors: Vec<_> = c.values.iter().map(|v| v.author.unwrap()).collect();
        authors.sort_by_key(|a| a.user);
        let mut expected = vec![wa, wb];
        expected.sort_by_key(|a| a.user);
        assert_eq!(authors, expected);

        // Settled at the office: one value everywhere once it has travelled.
        office
            .resolve_conflict_on(
                office_author,
                ConflictOn::Goal(shared),
                "status",
                "in_progress",
                datetime!(2026-11-26 09:00 UTC),
            )
            .unwrap();
        assert!(office.conflicts().unwrap().is_empty());
        deliver(&mut office, &mut a);
        assert_eq!(a.goal(shared).unwrap().status, GoalStatus::InProgress);
        assert!(a.conflicts().unwrap().is_empty());
        assert!(
            office
                .resolve_conflict_on(
                    office_author,
                    ConflictOn::Goal(shared),
                    "description",
                    "x",
                    datetime!(2026-11-26 09:00 UTC),
                )
                .is_err(),
            "only the status is settled this way"
        );
    }
}

#[test]
fn reviews_recorded_on_two_phones_offline_both_survive() {
    let (mut office, office_author) = base();
    let (mut a, mut b) = (fork(&mut office), fork(&mut office));
    let t = datetime!(2026-11-24 09:00 UTC);
    a.add_review(
        author(),
        &NewReview {
            reviewed_on: date!(2026 - 11 - 24),
            summary: "A".into(),
            reviewer: None,
        },
        t,
    )
    .unwrap();
    b.add_review(
        author(),
        &NewReview {
            reviewed_on: date!(2026 - 11 - 24),
            summary: "B".into(),
            reviewer: None,
        },
        t,
    )
    .unwrap();
    deliver(&mut a, &mut office);
    deliver(&mut b, &mut office);
    assert_eq!(office.plan().unwrap().reviews.len(), 2);
    let _ = office_author;
}

#[test]
fn the_profile_is_optional_field_by_field_validated_and_merges_field_by_field() {
    let (mut office, office_author) = base();
    let t = datetime!(2026-11-24 09:00 UTC);
    assert!(office.profile().is_empty());
    let (mut a, mut b) = (fork(&mut office), fork(&mut office));
    let nationality: Country = "rs".parse().unwrap();
    a.set_profile(
        author(),
        &ClientProfile {
            gender: Some(Gender::Female),
            birth_year: Some(1999),
            nationality: Some(nationality),
            ..Default::default()
        },
        t,
    )
    .unwrap();
    b.set_profile(
        author(),
        &ClientProfile {
            exploitation: vec![ExploitationType::Labour, ExploitationType::Sexual],
            labour_industry: Some(LabourIndustry::Agriculture),
            means_of_control: vec![
                MeansOfControl::DebtBondage,
                MeansOfControl::WithholdsDocuments,
            ],
            ..Default::default()
        },
        t,
    )
    .unwrap();
    deliver(&mut a, &mut office);
    deliver(&mut b, &mut office);
    office.check_bounds().unwrap();
    let p = office.profile();
    assert_eq!(p.gender, Some(Gender::Female), "a field of one phone");
    assert_eq!(p.birth_year, Some(1999));
    assert_eq!(p.nationality.unwrap().as_str(), "RS");
    assert_eq!(
        p.exploitation,
        vec![ExploitationType::Sexual, ExploitationType::Labour],
        "and the other's"
    );
    assert_eq!(p.labour_industry, Some(LabourIndustry::Agriculture));
    assert_eq!(office.case().unwrap().profile, p);

    let mut refused = |p: ClientProfile| office_refuses(&mut office, office_author, p);
    refused(ClientProfile {
        birth_year: Some(2031),
        ..Default::default()
    });
    refused(ClientProfile {
        labour_industry: Some(LabourIndustry::Fishing),
        ..Default::default()
    });
    refused(ClientProfile {
        closure_reason: Some(ClosureReason::Referred),
        htcds_status: Some(HtcdsStatus::Active),
        ..Default::default()
    });
    assert!("XX".parse::<Country>().is_err());

    // Clearing fields removes them; closing records the HTCDS status and the reason.
    let closed = ClientProfile {
        htcds_status: Some(HtcdsStatus::ClosedReferred),
        closure_reason: Some(ClosureReason::Referred),
        ..p.clone()
    };
    office.set_profile(office_author, &closed, t).unwrap();
    assert_eq!(office.profile(), closed);
    office
        .set_profile(office_author, &ClientProfile::default(), t)
        .unwrap();
    assert!(office.profile().is_empty());
}

fn office_refuses(doc: &mut CaseDoc, who: Author, p: ClientProfile) {
    let before = doc.profile();
    assert!(
        matches!(
            doc.set_profile(who, &p, datetime!(2026-11-24 09:00 UTC)),
            Err(CoreError::Invalid(_))
        ),
        "{p:?}"
    );
    assert_eq!(doc.profile(), before, "nothing changed");
}
