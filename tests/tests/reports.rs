//! Reports against a recount: a random caseload built through the office's real write paths
//! (cases opened on two teams, profiles, goals, closes with reasons, reopens, erasures, team
//! moves) and a real phone's syncs over TLS (tasks planned and done, services, legal status),
//! then every figure of the report, read from the index, equals the same figure counted
//! directly from the decrypted documents, for the whole office and for each team, this period
//! and the one before.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};

use fieldcase_core::ids::{CaseId, GoalId, TaskId};
use fieldcase_core::model::{
    AssistanceTag, Case, CaseStatus, CaseUpdate, ClientProfile, ClosureReason, ConsentStatus,
    ExploitationType, Gender, GoalStatus, GoalUpdate, LegalStatus, NewCase, NewGoal, NewService,
    NewTask, OfficeKind, TaskStatus, TaskUpdate,
};
use fieldcase_core::protocol::Role;
use fieldcase_server::office::plan::{self, PlanEdit};
use fieldcase_server::office::reports::{self, Figure, Period, Report};
use fieldcase_server::office::{cases, retention, teams};
use fieldcase_server::sql_params;
use fieldcase_tests::{TestDevice, TestServer};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use time::macros::date;
use time::{Date, Duration, OffsetDateTime};
use uuid::Uuid;

/// What the test knows of a case beyond its document: goals it made achieved and when, and the
/// case as it was when erased.
#[derive(Default)]
struct Known {
    achieved: BTreeMap<GoalId, Date>,
    erased: Option<(Case, Option<Date>, Date, Uuid)>,
}

fn unix(d: Date) -> i64 {
    d.midnight().assume_utc().unix_timestamp() + 12 * 3600
}

fn random_day(rng: &mut StdRng) -> Date {
    date!(2025 - 01 - 01) + Duration::days(rng.gen_range(0..730))
}

fn pick<T: Copy>(rng: &mut StdRng, all: &[T]) -> T {
    all[rng.gen_range(0..all.len())]
}

const NATIONS: [&str; 4] = ["RS", "AL", "UA", "NG"];

fn random_profile(rng: &mut StdRng) -> ClientProfile {
    let mut exploitation: Vec<ExploitationType> = (0..rng.gen_range(0..3))
        .map(|_| pick(rng, ExploitationType::ALL))
        .collect();
    exploitation.sort();
    exploitation.dedup();
    ClientProfile {
        gender: rng.gen_bool(0.8).then(|| pick(rng, Gender::ALL)),
        birth_year: rng.gen_bool(0.8).then(|| rng.gen_range(1960..2020)),
        nationality: rng
            .gen_bool(0.8)
            .then(|| pick(rng, &NATIONS).parse().unwrap()),
        exploitation,
        ..Default::default()
    }
}

/// One side of the recount: the figures of one period, by section and key.
type Counted = BTreeMap<(&'static str, String), i64>;

fn is_identified(s: LegalStatus) -> bool {
    matches!(
        s,
        LegalStatus::IdentifiedVictim
            | LegalStatus::ResidencePending
            | LegalStatus::TemporaryResidence
            | LegalStatus::Resident
    )
}

/// Counts one period straight from the cases: `(case, closed day, team)` each.
fn recount(cases: &[(Case, Option<Date>, Uuid, &Known)], p: Period) -> Counted {
    let mut c = Counted::new();
    let mut add = |section: &'static str, key: &str| {
        *c.entry((section, key.to_owned())).or_insert(0) += 1;
    };
    let within = |d: Date| p.from <= d && d <= p.to;
    for (case, closed, _, known) in cases {
        let opened = case.created_at.date();
        if opened <= p.to && closed.is_none_or(|d| d > p.to) {
            add("cases", "open");
        }
        if let Some(d) = closed
            && within(*d)
        {
            add("cases", "closed");
            let reason = case
                .profile
                .closure_reason
                .map_or("not_recorded", |r| r.as_str());
            add("closed-by-reason", reason);
        }
        if within(opened) {
            let pr = &case.profile;
            add("cases", "new");
            add(
                "identified",
                if is_identified(case.legal_status) {
                    "yes"
                } else {
                    "no"
                },
            );
            let age = match pr.birth_year {
                Some(y) if opened.year() - y <= 17 => "child",
                Some(_) => "adult",
                None => "not_recorded",
            };
            add("age", age);
            add("gender", pr.gender.map_or("not_recorded", |g| g.as_str()));
            if pr.exploitation.is_empty() {
                add("exploitation", "not_recorded");
            }
            for t in &pr.exploitation {
                add("exploitation", t.as_str());
            }
            let n = pr
                .nationality
                .map_or("not_recorded".to_owned(), |n| n.to_string());
            add("nationality", &n);
        }
        for t in &case.tasks {
            if within(t.scheduled_at.date()) {
                add("accompaniments-by-kind", t.office_kind.as_str());
                add("accompaniments-by-outcome", t.status.as_str());
            }
        }
        for s in &case.plan.services {
            if within(s.given_on) {
                add("services", s.area.as_str());
            }
        }
        for g in &case.plan.goals {
            if g.status == GoalStatus::Achieved
                && let Some(day) = known.achieved.get(&g.id)
                && within(*day)
            {
                add("goals-achieved", g.area.as_str());
            }
        }
    }
    c
}

fn shown(f: Figure) -> i64 {
    f.shown().expect("threshold 0 hides nothing")
}

/// Every line of `report` against the recount of both periods.
fn check(report: &Report, cur: &Counted, prev: &Counted, what: &str) {
    let get =
        |c: &Counted, s: &'static str, k: &str| c.get(&(s, k.to_owned())).copied().unwrap_or(0);
    let mut checked = 0;
    for section in &report.sections {
        for line in &section.lines {
            let name: &'static str = section.name;
            assert_eq!(
                shown(line.current),
                get(cur, name, &line.key),
                "{what}: {name}/{} in the period",
                line.key
            );
            assert_eq!(
                shown(line.previous),
                get(prev, name, &line.key),
                "{what}: {name}/{} in the previous period",
                line.key
            );
            checked += 1;
        }
    }
    // Every key the recount found is in the report (no nationality lost).
    for ((s, k), n) in cur.iter().chain(prev.iter()) {
        let found = report
            .sections
            .iter()
            .any(|sec| sec.name == *s && sec.lines.iter().any(|l| &l.key == k));
        assert!(found || *n == 0, "{what}: {s}/{k} missing from the report");
    }
    assert!(checked > 40);
}

fn run(seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    // Closed cases stay on the phone (the dates are spread over two years).
    let server = TestServer::start_adjusted(None, |l| {
        l.retention = std::time::Duration::from_secs(3650 * 24 * 3600);
    });
    let state = &server.running().state;
    let vault = state.vault().clone();
    let db = state.db();
    let ana = server.add_user("ana", Role::FieldWorker);
    let north = db.write(|sql| teams::create_team(sql, "North", 0)).unwrap();
    let team_ids = [teams::DEFAULT_TEAM, north];
    let phone = TestDevice::enroll_direct(&server, "ana");

    let mut made: Vec<CaseId> = Vec::new();
    let mut known: BTreeMap<CaseId, Known> = BTreeMap::new();
    let mut goals: BTreeMap<CaseId, Vec<GoalId>> = BTreeMap::new();
    let mut tasks: BTreeMap<CaseId, Vec<TaskId>> = BTreeMap::new();
    // The office's clock only moves forward, as a real one does: two years in small steps.
    let mut today = date!(2025 - 01 - 01);
    let open_case = |rng: &mut StdRng,
                     made: &mut Vec<CaseId>,
                     known: &mut BTreeMap<CaseId, Known>,
                     day: Date| {
        let team = pick(rng, &team_ids);
        let new = NewCase {
            client_code: format!("K-{}", made.len()),
            consent: ConsentStatus::Given,
            assigned_workers: vec![ana],
        };
        let (case, _) = db
            .write(|sql| cases::create_case_in_team(sql, &vault, team, &new, None, unix(day)))
            .unwrap()
            .keep(&vault);
        let profile = random_profile(rng);
        db.write(|sql| {
            plan::edit(
                sql,
                &vault,
                case,
                &PlanEdit::Profile(profile.clone()),
                None,
                unix(day),
            )
        })
        .unwrap()
        .keep(&vault);
        made.push(case);
        known.insert(case, Known::default());
    };
    for _ in 0..5 {
        open_case(&mut rng, &mut made, &mut known, today);
    }
    phone.device.sync_now().unwrap();

    let live = |known: &BTreeMap<CaseId, Known>, made: &[CaseId], rng: &mut StdRng| {
        let open: Vec<CaseId> = made
            .iter()
            .copied()
            .filter(|c| known[c].erased.is_none())
            .collect();
        pick(rng, &open)
    };
    for step in 0..200 {
        today += Duration::days(rng.gen_range(0..8));
        let day = today;
        if rng.gen_bool(0.15) {
            open_case(&mut rng, &mut made, &mut known, day);
            phone.device.sync_now().unwrap();
            continue;
        }
        let case = live(&known, &made, &mut rng);
        match rng.gen_range(0..11) {
            // The phone: a task planned, then done, missed or cancelled; a service; the legal
            // status. They reach the office through the hub.
            0 | 1 => {
                let at = OffsetDateTime::new_utc(random_day(&mut rng), time::macros::time!(10:00));
                let task = phone
                    .device
                    .store()
                    .add_task(
                        case,
                        &NewTask {
                            purpose: "accompaniment".into(),
                            office_kind: pick(&mut rng, OfficeKind::ALL),
                            office_name: "office".into(),
                            office_address: "street".into(),
                            scheduled_at: at,
                            time_zone: "Europe/Belgrade".into(),
                            assignees: vec![ana],
                            checklist: vec![],
                        },
                    )
                    .unwrap();
                tasks.entry(case).or_default().push(task);
            }
            2 => {
                if let Some(task) = tasks.get(&case).and_then(|t| t.first().copied()) {
                    let status = pick(&mut rng, TaskStatus::ALL);
                    phone
                        .device
                        .store()
                        .update_task(
                            case,
                            task,
                            &TaskUpdate {
                                status: Some(status),
                                ..Default::default()
                            },
                        )
                        .unwrap();
                }
            }
            3 => {
                phone
                    .device
                    .store()
                    .add_service(
                        case,
                        &NewService {
                            area: pick(&mut rng, AssistanceTag::ALL),
                            description: "given".into(),
                            given_on: random_day(&mut rng),
                            goals: vec![],
                            tasks: vec![],
                            notes: vec![],
                        },
                    )
                    .unwrap();
            }
            4 => {
                phone
                    .device
                    .store()
                    .update_case(
                        case,
                        &CaseUpdate {
                            legal_status: Some(pick(&mut rng, LegalStatus::ALL)),
                            ..Default::default()
                        },
                    )
                    .unwrap();
            }
            // The office: goals set and achieved (or not any more), the profile changed.
            5 => {
                db.write(|sql| {
                    plan::edit(
                        sql,
                        &vault,
                        case,
                        &PlanEdit::AddGoal(NewGoal {
                            area: pick(&mut rng, AssistanceTag::ALL),
                            description: "a goal".into(),
                            target_date: None,
                        }),
                        None,
                        unix(day),
                    )
                })
                .unwrap()
                .keep(&vault);
                let plan = server.case(case).plan;
                goals
                    .entry(case)
                    .or_default()
                    .extend(plan.goals.iter().map(|g| g.id));
            }
            6 => {
                if let Some(goal) = goals.get(&case).and_then(|g| g.first().copied()) {
                    let status = pick(&mut rng, GoalStatus::ALL);
                    db.write(|sql| {
                        plan::edit(
                            sql,
                            &vault,
                            case,
                            &PlanEdit::UpdateGoal(
                                goal,
                                GoalUpdate {
                                    status: Some(status),
                                    ..Default::default()
                                },
                            ),
                            None,
                            unix(day),
                        )
                    })
                    .unwrap()
                    .keep(&vault);
                    let k = known.get_mut(&case).unwrap();
                    if status == GoalStatus::Achieved {
                        k.achieved.entry(goal).or_insert(day);
                    } else {
                        k.achieved.remove(&goal);
                    }
                }
            }
            7 => {
                let profile = random_profile(&mut rng);
                let mut current = server.case(case).profile;
                current.gender = profile.gender;
                current.nationality = profile.nationality;
                current.exploitation = profile.exploitation;
                db.write(|sql| {
                    plan::edit(
                        sql,
                        &vault,
                        case,
                        &PlanEdit::Profile(current.clone()),
                        None,
                        unix(day),
                    )
                })
                .unwrap()
                .keep(&vault);
            }
            // Closed with a reason, reopened, moved, erased.
            8 => {
                let status = server.case(case).status;
                let (status, reason) = if status == CaseStatus::Closed {
                    (CaseStatus::Open, None)
                } else {
                    (CaseStatus::Closed, Some(pick(&mut rng, ClosureReason::ALL)))
                };
                db.write(|sql| {
                    plan::set_lifecycle(sql, &vault, case, status, reason, None, unix(day))
                })
                .unwrap()
                .keep(&vault);
            }
            9 => {
                let team = pick(&mut rng, &team_ids);
                db.write(|sql| teams::move_case(sql, &vault, case, team, None, unix(day)))
                    .unwrap();
            }
            _ => {
                if step % 4 == 0 {
                    // Synced first, so nothing the phone wrote is lost to the erasure.
                    phone.device.sync_now().unwrap();
                    let before = server.case(case);
                    let (closed, team) = closed_and_team(&server, case);
                    db.write(|sql| retention::withdraw_consent(sql, &vault, case, None, unix(day)))
                        .unwrap();
                    known.get_mut(&case).unwrap().erased = Some((before, closed, day, team));
                }
            }
        }
        if step % 10 == 9 {
            phone.device.sync_now().unwrap();
        }
    }
    phone.device.sync_now().unwrap();

    // The recount, from the decrypted documents (and, for erased cases, the document as it
    // was just before its erasure).
    let mut all: Vec<(Case, Option<Date>, Uuid, &Known)> = Vec::new();
    for case in &made {
        let k = &known[case];
        match &k.erased {
            Some((before, closed, erased_on, team)) => {
                all.push((before.clone(), closed.or(Some(*erased_on)), *team, k));
            }
            None => {
                let (closed, team) = closed_and_team(&server, *case);
                all.push((server.case(*case), closed, team, k));
            }
        }
    }
    let period = Period::new(date!(2026 - 01 - 01), date!(2026 - 12 - 31)).unwrap();
    for scope in [None, Some(teams::DEFAULT_TEAM), Some(north)] {
        let report = db
            .read(|sql| reports::report(sql, None, scope, period, 0))
            .unwrap();
        let these: Vec<_> = all
            .iter()
            .filter(|(_, _, t, _)| scope.is_none_or(|s| s == *t))
            .map(|(c, d, t, k)| (c.clone(), *d, *t, *k))
            .collect();
        check(
            &report,
            &recount(&these, period),
            &recount(&these, period.previous()),
            &format!("seed {seed}, team {scope:?}"),
        );
    }
    // The cases really did change in every way the test means to cover.
    let kinds: BTreeSet<bool> = all.iter().map(|(_, d, ..)| d.is_some()).collect();
    assert_eq!(kinds.len(), 2, "both open and closed cases");
    assert!(known.values().any(|k| k.erased.is_some()), "an erasure");
}

fn closed_and_team(server: &TestServer, case: CaseId) -> (Option<Date>, Uuid) {
    server.with_sql(|sql| {
        let row = sql.query_row(
            "SELECT closed_at, team_id FROM cases WHERE id = ?1",
            sql_params![&case.to_string()],
        )?;
        let closed: Option<i64> = row.get(0)?;
        let team: String = row.get(1)?;
        Ok((
            closed.map(|t| OffsetDateTime::from_unix_timestamp(t).unwrap().date()),
            Uuid::parse_str(&team).unwrap(),
        ))
    })
}

#[test]
fn the_report_from_the_index_equals_a_recount_from_the_documents() {
    for seed in [1, 2, 3] {
        run(seed);
    }
}

/// GET `path` with a session of `user`: status and body.
fn web_get(server: &TestServer, path: &str, user: &str) -> (u16, String) {
    use fieldcase_core::transport::{Client, RawRequest};
    let token = server
        .running()
        .state
        .db()
        .write(|sql| {
            let id = fieldcase_server::office::users::user_id_by_name(sql, user)?;
            fieldcase_server::office::sign_in::create_session(
                sql,
                id,
                OffsetDateTime::now_utc().unix_timestamp(),
            )
        })
        .unwrap()
        .token;
    let client = Client::new(&server.running().url(), server.fingerprint()).unwrap();
    let response = client
        .send(&RawRequest {
            method: "GET".into(),
            path: path.into(),
            headers: vec![(
                "cookie".into(),
                format!(
                    "{}={token}",
                    fieldcase_server::http::web::auth::SESSION_COOKIE
                ),
            )],
            body: vec![],
        })
        .unwrap();
    (
        response.status,
        String::from_utf8_lossy(&response.body).into_owned(),
    )
}

#[test]
fn the_reports_page_hides_small_counts_prints_its_rule_and_is_for_case_managers_and_admins() {
    let server = TestServer::start();
    let state = &server.running().state;
    let vault = state.vault().clone();
    let mira = server.add_user("mira", Role::CaseManager);
    server.join_default_team(mira);
    server.add_user("ana", Role::FieldWorker);
    server.add_user("boss", Role::Admin);
    // Twelve women and three men from Serbia, one woman from Albania, opened in March.
    let day = date!(2026 - 03 - 10);
    for i in 0..16 {
        let new = NewCase {
            client_code: format!("K-{i}"),
            consent: ConsentStatus::Given,
            assigned_workers: vec![],
        };
        let (case, _) = state
            .db()
            .write(|sql| cases::create_case(sql, &vault, &new, None, unix(day)))
            .unwrap()
            .keep(&vault);
        let profile = ClientProfile {
            gender: Some(if i < 13 { Gender::Female } else { Gender::Male }),
            nationality: Some(if i == 0 { "AL" } else { "RS" }.parse().unwrap()),
            ..Default::default()
        };
        state
            .db()
            .write(|sql| {
                plan::edit(
                    sql,
                    &vault,
                    case,
                    &PlanEdit::Profile(profile),
                    None,
                    unix(day),
                )
            })
            .unwrap()
            .keep(&vault);
    }
    let path = "/reports?from=2026-01-01&to=2026-12-31";
    let (status, body) = web_get(&server, path, "mira");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Every count below 5 is shown as"), "the rule");
    assert!(body.contains("<svg"), "charts drawn on the server");
    // 13 women shown, 3 men hidden, and the complementary "not recorded"/"other" hidden too.
    assert!(body.contains(">13<"));
    assert!(!body.contains(">3<"), "a small count shown");
    assert!(body.contains("&lt; 5"));
    // Albania, seen once, is not named.
    assert!(!body.contains(">AL<"));
    let (status, csv) = web_get(&server, &format!("{path}&format=csv"), "mira");
    assert_eq!(status, 200);
    assert!(csv.starts_with("period,2026-01-01,2026-12-31\r\n"));
    assert!(csv.contains("rule,"));
    assert!(csv.contains("gender,female,female,13,< 5,"));
    assert!(csv.contains("gender,male,male,< 5,< 5,"));
    assert_eq!(web_get(&server, path, "ana").0, 403);
    assert_eq!(web_get(&server, path, "boss").0, 200);
    assert_eq!(
        web_get(&server, "/reports?from=2026-12-01&to=2026-01-01", "mira").0,
        400
    );
}
