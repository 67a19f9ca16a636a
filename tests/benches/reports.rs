//! Reports and the anonymised export at scale: offices of 1,000 and 10,000 cases (SQLite) with
//! a year of activity, then side by side in one run: the report of that year computed from the
//! index (`office::reports::report`), the `/reports` page fetched over HTTPS through the real
//! server by an admin, and `admin export htcds` (k = 11) of the year written to a file.
//!
//! Seeding goes through the office's write paths in batches, as a busy office's hub does: 100
//! rounds over the year, each opening 1 % of the cases in one transaction, then, in another,
//! through the hub's storage, giving each new case a profile, an accompaniment, a service and
//! a goal, and moving on as many earlier cases (an accompaniment done or missed, a goal
//! achieved, a case closed with a reason). Every store updates the report index as in
//! production. Run: `cargo bench -p fieldcase-tests --bench reports [-- --sizes 1000,10000]`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use fieldcase_core::ids::{CaseId, GoalId, TaskId};
use fieldcase_core::model::{
    AssistanceTag, CaseStatus, ClientProfile, ClosureReason, ConsentStatus, ExploitationType,
    Gender, GoalStatus, GoalUpdate, HtcdsStatus, NewCase, NewGoal, NewService, NewTask, OfficeKind,
    TaskStatus, TaskUpdate,
};
use fieldcase_core::protocol::Role;
use fieldcase_core::sync::hub::HubStorage;
use fieldcase_core::transport::{Client, RawRequest};
use fieldcase_server::office::hub::SqlHub;
use fieldcase_server::office::reports::{self, Period};
use fieldcase_server::office::{cases, export};
use fieldcase_server::storage::report_index::Teams;
use fieldcase_tests::TestServer;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use time::macros::date;
use time::{Date, Duration, OffsetDateTime};

const ROUNDS: usize = 100;
const REPEATS: usize = 30;
const EXPORTS: usize = 5;

fn pick<T: Copy>(rng: &mut StdRng, all: &[T]) -> T {
    all[rng.gen_range(0..all.len())]
}

fn profile(rng: &mut StdRng) -> ClientProfile {
    let nations = ["RS", "RS", "RS", "AL", "UA", "NG", "BA", "VN"];
    ClientProfile {
        gender: Some(pick(rng, &[Gender::Female, Gender::Female, Gender::Male])),
        birth_year: Some(rng.gen_range(1970..2012)),
        nationality: pick(rng, &nations).parse().ok(),
        exploitation: vec![pick(
            rng,
            &[
                ExploitationType::Sexual,
                ExploitationType::Labour,
                ExploitationType::Begging,
            ],
        )],
        recruitment_country: rng.gen_bool(0.5).then(|| "RS".parse().unwrap()),
        htcds_status: Some(HtcdsStatus::Active),
        ..Default::default()
    }
}

fn percentiles(mut ms: Vec<f64>) -> (f64, f64) {
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| ms[((ms.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.9))
}

/// What one office measured: its size, seeding time, report p50/p90, page p50/p90, export.
struct Figures {
    cases: usize,
    seeded_s: f64,
    report: (f64, f64),
    page: (f64, f64),
    page_bytes: usize,
    export_s: (f64, f64),
    export_summary: String,
}

fn at(day: Date) -> i64 {
    day.midnight().assume_utc().unix_timestamp() + 10 * 3600
}

fn seed(server: &TestServer, n: usize, rng: &mut StdRng) {
    let state = &server.running().state;
    let vault = state.vault().clone();
    let db = state.db();
    let mut made: Vec<(CaseId, TaskId, GoalId)> = Vec::new();
    let per_round = n / ROUNDS;
    for round in 0..ROUNDS {
        let day = date!(2025 - 01 - 01) + Duration::days((round * 365 / ROUNDS) as i64);
        let now = at(day);
        let when = OffsetDateTime::from_unix_timestamp(now).unwrap();
        let opened: Vec<CaseId> = {
            let (ids, docs): (Vec<CaseId>, Vec<_>) = db
                .write(|sql| {
                    let mut ids = Vec::new();
                    let mut docs = Vec::new();
                    for i in 0..per_round {
                        let new = NewCase {
                            client_code: format!("K-{round}-{i}"),
                            consent: ConsentStatus::Given,
                            assigned_workers: vec![],
                        };
                        let made = cases::create_case(sql, &vault, &new, None, now)?;
                        let (id, _) = *made.value();
                        ids.push(id);
                        docs.push(made);
                    }
                    Ok::<_, fieldcase_server::ServerError>((ids, docs))
                })
                .unwrap();
            for d in docs {
                d.keep(&vault);
            }
            ids
        };
        let earlier: Vec<(CaseId, TaskId, GoalId)> = (0..per_round.min(made.len()))
            .map(|_| made[rng.gen_range(0..made.len())])
            .collect();
        let loaded = db
            .write(|sql| {
                let mut hub = SqlHub::new(sql, &vault, now, 0);
                let mut new = Vec::new();
                for case in &opened {
                    let doc = hub.case_doc(*case)?.expect("a case just opened");
                    doc.set_profile(vault.office, &profile(rng), when)?;
                    let task = doc.add_task(
                        vault.office,
                        &NewTask {
                            purpose: "accompaniment".into(),
                            office_kind: pick(rng, OfficeKind::ALL),
                            office_name: "office".into(),
                            office_address: "street".into(),
                            scheduled_at: when + Duration::days(rng.gen_range(0..20)),
                            time_zone: "Europe/Belgrade".into(),
                            assignees: vec![],
                            checklist: vec![],
                        },
                        when,
                    )?;
                    let goal = doc.add_goal(
                        vault.office,
                        &NewGoal {
                            area: pick(rng, AssistanceTag::ALL),
                            description: "a goal".into(),
                            target_date: None,
                        },
                        when,
                    )?;
                    doc.add_service(
                        vault.office,
                        &NewService {
                            area: pick(rng, AssistanceTag::ALL),
                            description: "given".into(),
                            given_on: day,
                            goals: vec![],
                            tasks: vec![],
                            notes: vec![],
                        },
                        when,
                    )?;
                    hub.store_case(*case, None)?;
                    new.push((*case, task, goal));
                }
                for (case, task, goal) in &earlier {
                    let doc = hub.case_doc(*case)?.expect("a case of this office");
                    match rng.gen_range(0..3) {
                        0 => doc.update_task(
                            vault.office,
                            *task,
                            &TaskUpdate {
                                status: Some(pick(rng, &[TaskStatus::Done, TaskStatus::Missed])),
                                ..Default::default()
                            },
                            when,
                        )?,
                        1 => doc.update_goal(
                            vault.office,
                            *goal,
                            &GoalUpdate {
                                status: Some(GoalStatus::Achieved),
                                ..Default::default()
                            },
                            when,
                        )?,
                        _ => {
                            let mut p = doc.profile();
                            p.htcds_status = Some(HtcdsStatus::Closed);
                            p.closure_reason = Some(pick(rng, ClosureReason::ALL));
                            doc.set_profile(vault.office, &p, when)?;
                            doc.set_status(vault.office, CaseStatus::Closed, when)?;
                        }
                    }
                    hub.store_case(*case, None)?;
                }
                Ok::<_, fieldcase_server::ServerError>((new, hub.into_loaded().collect::<Vec<_>>()))
            })
            .unwrap();
        made.extend(loaded.0);
        vault.keep(loaded.1);
    }
}

fn measure(n: usize) -> Figures {
    let server = TestServer::start_adjusted(None, |l| {
        l.retention = std::time::Duration::from_secs(3650 * 24 * 3600);
    });
    let mut rng = StdRng::seed_from_u64(n as u64);
    let start = Instant::now();
    seed(&server, n, &mut rng);
    let seeded_s = start.elapsed().as_secs_f64();
    let state = &server.running().state;
    let db = state.db();
    let year = Period::new(date!(2025 - 01 - 01), date!(2025 - 12 - 31)).unwrap();

    // The report alone, from the index.
    let mut report = Vec::new();
    for _ in 0..REPEATS {
        let t = Instant::now();
        let r = db
            .read(|sql| reports::report(sql, None, None, year, 5))
            .unwrap();
        report.push(t.elapsed().as_secs_f64() * 1000.0);
        assert!(!r.sections.is_empty());
    }

    // The page through the real server, over TLS, as an admin signed in.
    server.add_user("boss", Role::Admin);
    let token = db
        .write(|sql| {
            let id = fieldcase_server::office::users::user_id_by_name(sql, "boss")?;
            fieldcase_server::office::sign_in::create_session(
                sql,
                id,
                OffsetDateTime::now_utc().unix_timestamp(),
            )
        })
        .unwrap()
        .token;
    let client = Client::new(&server.running().url(), server.fingerprint()).unwrap();
    let request = RawRequest {
        method: "GET".into(),
        path: "/reports?from=2025-01-01&to=2025-12-31".into(),
        headers: vec![(
            "cookie".into(),
            format!(
                "{}={token}",
                fieldcase_server::http::web::auth::SESSION_COOKIE
            ),
        )],
        body: vec![],
    };
    let mut page = Vec::new();
    let mut page_bytes = 0;
    for _ in 0..REPEATS {
        let t = Instant::now();
        let response = client.send(&request).unwrap();
        page.push(t.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(response.status, 200);
        page_bytes = response.body.len();
    }

    // The export of the year, k = 11, each to a new file.
    let dir = tempfile::tempdir().unwrap();
    let vault = state.vault().clone();
    let mut took = Vec::new();
    let mut export_summary = String::new();
    for i in 0..EXPORTS {
        let out = dir.path().join(format!("export-{i}.csv"));
        let t = Instant::now();
        let e = db
            .write(|sql| {
                export::write(
                    sql,
                    &vault,
                    &Teams::All,
                    year,
                    11,
                    &out,
                    OffsetDateTime::now_utc().unix_timestamp(),
                )
            })
            .unwrap();
        took.push(t.elapsed().as_secs_f64());
        assert_eq!(e.cases, n);
        export_summary = e.audit_detail();
    }
    Figures {
        cases: n,
        seeded_s,
        report: percentiles(report),
        page: percentiles(page),
        page_bytes,
        export_s: percentiles(took),
        export_summary,
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--list") {
        return;
    }
    let sizes: Vec<usize> = args
        .iter()
        .position(|a| a == "--sizes")
        .and_then(|i| args.get(i + 1))
        .map(|v| v.split(',').filter_map(|s| s.parse().ok()).collect())
        .unwrap_or_else(|| vec![1_000, 10_000]);
    let figures: Vec<Figures> = sizes.iter().map(|n| measure(*n)).collect();
    println!(
        "reports: a year of activity, {} rounds; report and page p50/p90 of {REPEATS}, export p50/p90 of {EXPORTS}",
        ROUNDS
    );
    println!(
        "| cases | seeded | report (index) p50 / p90 | /reports over HTTPS p50 / p90 | page | export k=11 p50 / p90 | export |"
    );
    println!("| ---: | ---: | ---: | ---: | ---: | ---: | --- |");
    for f in &figures {
        println!(
            "| {} | {:.0} s | {:.1} / {:.1} ms | {:.1} / {:.1} ms | {:.0} kB | {:.2} / {:.2} s | {} |",
            f.cases,
            f.seeded_s,
            f.report.0,
            f.report.1,
            f.page.0,
            f.page.1,
            f.page_bytes as f64 / 1000.0,
            f.export_s.0,
            f.export_s.1,
            f.export_summary
        );
    }
    if let (Some(small), Some(big)) = (figures.first(), figures.last())
        && figures.len() > 1
    {
        println!(
            "reports: {} against {} cases: report {:.2}x, page {:.2}x (p50)",
            big.cases,
            small.cases,
            big.report.0 / small.report.0,
            big.page.0 / small.page.0
        );
    }
}
