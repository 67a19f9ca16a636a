//! The anonymised HTCDS export against the documents: a random caseload built through the
//! office's real write paths (cases opened on two teams, profiles set and changed, closes with
//! reasons, reopens, team moves, erasures), exported for a year with several k, then every
//! exported row is checked against the cases recomputed from the decrypted documents (for
//! erased cases, the document as it was just before its erasure): it matches at least k of
//! them on its quasi-identifiers, holds no id, code, name or free text, and the rows written
//! and suppressed add up to the cases registered in the year. Bad arguments are refused with
//! a typed error and write nothing, audit nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use fieldcase_core::ids::CaseId;
use fieldcase_core::model::{
    Case, CaseStatus, ClientProfile, ClosureReason, ConsentStatus, Country, ExploitationType,
    Gender, HtcdsStatus, LabourIndustry, MeansOfControl, NewCase, NewGoal, RecruitmentMethod,
};
use fieldcase_server::ServerError;
use fieldcase_server::office::anonymity::Step;
use fieldcase_server::office::export::{self, Export};
use fieldcase_server::office::plan::{self, PlanEdit};
use fieldcase_server::office::reports::Period;
use fieldcase_server::office::{cases, retention, teams};
use fieldcase_server::sql_params;
use fieldcase_server::storage::report_index::Teams;
use fieldcase_tests::TestServer;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use time::macros::date;
use time::{Date, Duration};
use uuid::Uuid;

fn unix(d: Date) -> i64 {
    d.midnight().assume_utc().unix_timestamp() + 12 * 3600
}

/// Free text every case carries (client code prefix and goal description): must never
/// reach the export.
const MARK: &str = "Zorana";

fn country(s: &str) -> Country {
    s.parse().unwrap()
}

/// A caseload like a real one: most clients alike, a few rare.
fn random_profile(rng: &mut StdRng) -> ClientProfile {
    let gender = match rng.gen_range(0..20) {
        0..14 => Some(Gender::Female),
        14..18 => Some(Gender::Male),
        18 => Some(Gender::Other),
        _ => None,
    };
    let nationality = match rng.gen_range(0..20) {
        0..12 => Some("RS"),
        12..15 => Some("AL"),
        15..17 => Some("UA"),
        17..19 => Some(["NG", "VN", "BA", "MD", "CN"][rng.gen_range(0..5)]),
        _ => None,
    }
    .map(country);
    let (exploitation, labour_industry) = match rng.gen_range(0..20) {
        0..10 => (vec![ExploitationType::Sexual], None),
        10..14 => (
            vec![ExploitationType::Labour],
            rng.gen_bool(0.5).then(|| {
                [LabourIndustry::Agriculture, LabourIndustry::Construction][rng.gen_range(0..2)]
            }),
        ),
        14..16 => (vec![ExploitationType::Begging], None),
        16 => (
            vec![ExploitationType::Sexual, ExploitationType::Labour],
            Some(LabourIndustry::Hospitality),
        ),
        17 => (vec![ExploitationType::ForcedMarriage], None),
        _ => (vec![], None),
    };
    let mut means_of_control: Vec<MeansOfControl> = (0..rng.gen_range(0..3))
        .map(|_| MeansOfControl::ALL[rng.gen_range(0..MeansOfControl::ALL.len())])
        .collect();
    means_of_control.sort();
    means_of_control.dedup();
    ClientProfile {
        gender,
        birth_year: rng.gen_bool(0.9).then(|| rng.gen_range(1975..2012)),
        nationality,
        exploitation,
        labour_industry,
        means_of_control,
        recruitment_method: rng
            .gen_bool(0.5)
            .then(|| RecruitmentMethod::ALL[rng.gen_range(0..RecruitmentMethod::ALL.len())]),
        recruitment_country: match rng.gen_range(0..4) {
            0 | 1 => None,
            2 => nationality,
            _ => Some(country("RS")),
        },
        ..Default::default()
    }
}

/// A case's quasi-identifiers as the test reads them from its document, in the export's words.
#[derive(Debug)]
struct Source {
    year: i32,
    quarter: u8,
    gender: &'static str,
    /// Ages of its CTDC band, `None` when the year of birth is not recorded.
    age: Option<(u8, Option<u8>)>,
    citizenship: Option<Country>,
    exploitation: BTreeSet<&'static str>,
    recruitment: Option<Country>,
}

/// The CTDC band of an age, as the standard lists them.
fn ctdc_band(age: i32) -> (u8, Option<u8>) {
    let bands: [(u8, Option<u8>); 9] = [
        (0, Some(8)),
        (9, Some(17)),
        (18, Some(20)),
        (21, Some(23)),
        (24, Some(26)),
        (27, Some(29)),
        (30, Some(38)),
        (39, Some(47)),
        (48, None),
    ];
    *bands
        .iter()
        .find(|(lo, hi)| age >= i32::from(*lo) && hi.is_none_or(|h| age <= i32::from(h)))
        .unwrap()
}

fn source_of(case: &Case) -> Source {
    let opened = case.created_at.date();
    let p = &case.profile;
    let mut exploitation = BTreeSet::new();
    for t in &p.exploitation {
        exploitation.extend(match t {
            ExploitationType::Sexual => &["isSexualExploit"][..],
            ExploitationType::Labour => &["isForcedLabour"],
            ExploitationType::ForcedMarriage => &["isForcedMarriage"],
            ExploitationType::ForcedCriminality => {
                &["isForcedLabour", "typeOfLabourIllicitActivities"]
            }
            ExploitationType::Begging => &["isForcedLabour", "typeOfLabourBegging"],
            ExploitationType::Other => &["isOtherExploit"],
        });
    }
    exploitation.extend(p.labour_industry.map(|i| match i {
        LabourIndustry::Agriculture => "typeOfLabourAgriculture",
        LabourIndustry::Construction => "typeOfLabourConstruction",
        LabourIndustry::Hospitality => "typeOfLabourHospitality",
        other => panic!("not in this caseload: {other:?}"),
    }));
    Source {
        year: opened.year(),
        quarter: (u8::from(opened.month()) - 1) / 3 + 1,
        gender: match p.gender {
            Some(Gender::Female) => "Woman",
            Some(Gender::Male) => "Man",
            Some(Gender::Other) => "Trans/Transgender/NonConforming",
            None => "",
        },
        age: p.birth_year.map(|y| ctdc_band(opened.year() - y)),
        citizenship: p.nationality,
        exploitation,
        recruitment: p.recruitment_country,
    }
}

/// Reads an exported age band (`18-29`, `48+`).
fn band(s: &str) -> (u8, Option<u8>) {
    match s.strip_suffix('+') {
        Some(lo) => (lo.parse().unwrap(), None),
        None => {
            let (lo, hi) = s.split_once('-').unwrap();
            (lo.parse().unwrap(), Some(hi.parse().unwrap()))
        }
    }
}

/// Whether an exported place (`RS`, `other`, empty) is what `c` became in this export.
fn place_matches(value: &str, c: Option<Country>, rare: &BTreeSet<Country>) -> bool {
    match (value, c) {
        ("", None) => true,
        ("other", Some(c)) => rare.contains(&c),
        (v, Some(c)) => v == c.as_str() && !rare.contains(&c),
        _ => false,
    }
}

/// Whether the exported row (`col → value`) is what `s` looks like after this export's
/// generalisation: the test's own reading of each column.
fn matches(row: &BTreeMap<&str, &str>, s: &Source, e: &Export) -> bool {
    let g = &e.anonymised.generalisation;
    let quarter_ok = match row["quarterOfRegistration"] {
        "" => g.has(Step::YearOnly),
        q => q == format!("Q{}", s.quarter),
    };
    let age_ok = match (row["ageBroad"], s.age) {
        ("", None) => true,
        (b, Some((lo, hi))) if !b.is_empty() => {
            let (blo, bhi) = band(b);
            let upper = match (bhi, hi) {
                (None, _) => true,
                (Some(_), None) => false,
                (Some(a), Some(b)) => b <= a,
            };
            blo <= lo && upper
        }
        _ => false,
    };
    let main_only = g.has(Step::MainExploitationTypes);
    let expected: BTreeSet<&str> = s
        .exploitation
        .iter()
        .copied()
        .filter(|f| !main_only || f.starts_with("is"))
        .collect();
    let shown: BTreeSet<&str> = export::EXPLOITATION_FLAGS
        .iter()
        .copied()
        .filter(|f| row[f] == "1")
        .collect();
    row["yearOfRegistration"] == s.year.to_string()
        && quarter_ok
        && row["gender"] == s.gender
        && age_ok
        && place_matches(row["citizenship"], s.citizenship, &g.rare_citizenships)
        && place_matches(
            row["countryOfRecruitment"],
            s.recruitment,
            &g.rare_recruitment_countries,
        )
        && shown == expected
}

/// Every value of a row is from a vocabulary, a number, a band or a country code.
fn check_values(row: &BTreeMap<&str, &str>) {
    let vocab = |v: &str, all: &[&str]| v.is_empty() || all.contains(&v);
    for (col, v) in row {
        let ok = match *col {
            "yearOfRegistration" => v.len() == 4 && v.parse::<i32>().is_ok(),
            "quarterOfRegistration" => vocab(v, &["Q1", "Q2", "Q3", "Q4"]),
            "gender" => vocab(v, &["Woman", "Man", "Trans/Transgender/NonConforming"]),
            "ageBroad" => {
                v.is_empty()
                    || v.strip_suffix('+').is_some_and(|n| n.parse::<u8>().is_ok())
                    || v.split_once('-')
                        .is_some_and(|(a, b)| a.parse::<u8>().is_ok() && b.parse::<u8>().is_ok())
            }
            "majorityStatus" => vocab(v, &["Minor", "Adult"]),
            "citizenship" | "countryOfRecruitment" => {
                v.is_empty() || *v == "other" || v.parse::<Country>().is_ok()
            }
            "recruitmentType" => v.is_empty() || v.parse::<RecruitmentMethod>().is_ok(),
            "caseStatus" => v.is_empty() || v.parse::<HtcdsStatus>().is_ok(),
            "reasonForClosure" => v.is_empty() || v.parse::<ClosureReason>().is_ok(),
            _ => vocab(v, &["0", "1"]),
        };
        assert!(ok, "{col} holds {v:?}");
    }
}

fn audit_details(server: &TestServer) -> Vec<String> {
    server.with_sql(|sql| {
        let rows = sql.query_all(
            "SELECT detail FROM audit_log WHERE action = ?1 ORDER BY seq",
            sql_params!["htcds_exported"],
        )?;
        rows.iter().map(|r| r.get(0)).collect()
    })
}

fn run(seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let server = TestServer::start_adjusted(None, |l| {
        l.retention = std::time::Duration::from_secs(3650 * 24 * 3600);
    });
    let state = &server.running().state;
    let vault = state.vault().clone();
    let db = state.db();
    let north = db.write(|sql| teams::create_team(sql, "North", 0)).unwrap();
    let team_ids = [teams::DEFAULT_TEAM, north];

    let mut made: Vec<CaseId> = Vec::new();
    let mut erased: BTreeMap<CaseId, Case> = BTreeMap::new();
    let mut day = date!(2025 - 09 - 01);
    let mut steps = 0;
    while day <= date!(2026 - 12 - 31) {
        steps += 1;
        let live: Vec<CaseId> = made
            .iter()
            .copied()
            .filter(|c| !erased.contains_key(c))
            .collect();
        if live.is_empty() || rng.gen_bool(0.6) {
            let new = NewCase {
                client_code: format!("{MARK}-{}", made.len()),
                consent: ConsentStatus::Given,
                assigned_workers: vec![],
            };
            let team = team_ids[rng.gen_range(0..2)];
            let (case, _) = db
                .write(|sql| cases::create_case_in_team(sql, &vault, team, &new, None, unix(day)))
                .unwrap()
                .keep(&vault);
            let profile = random_profile(&mut rng);
            for edit in [
                PlanEdit::Profile(profile),
                PlanEdit::AddGoal(NewGoal {
                    area: fieldcase_core::model::AssistanceTag::ALL[0],
                    description: format!("{MARK} finds work"),
                    target_date: None,
                }),
            ] {
                db.write(|sql| plan::edit(sql, &vault, case, &edit, None, unix(day)))
                    .unwrap()
                    .keep(&vault);
            }
            made.push(case);
        } else {
            let case = live[rng.gen_range(0..live.len())];
            match rng.gen_range(0..10) {
                0..4 => {
                    let status = server.case(case).status;
                    let (status, reason) = if status == CaseStatus::Closed {
                        (CaseStatus::Open, None)
                    } else {
                        let r = ClosureReason::ALL[rng.gen_range(0..ClosureReason::ALL.len())];
                        (CaseStatus::Closed, Some(r))
                    };
                    db.write(|sql| {
                        plan::set_lifecycle(sql, &vault, case, status, reason, None, unix(day))
                    })
                    .unwrap()
                    .keep(&vault);
                }
                4..7 => {
                    // The profile changed: who the client is as the case learns more.
                    let mut p = random_profile(&mut rng);
                    let current = server.case(case).profile;
                    p.htcds_status = current.htcds_status;
                    p.closure_reason = current.closure_reason;
                    db.write(|sql| {
                        plan::edit(sql, &vault, case, &PlanEdit::Profile(p), None, unix(day))
                    })
                    .unwrap()
                    .keep(&vault);
                }
                7 | 8 => {
                    let team = team_ids[rng.gen_range(0..2)];
                    db.write(|sql| teams::move_case(sql, &vault, case, team, None, unix(day)))
                        .unwrap();
                }
                _ => {
                    let before = server.case(case);
                    db.write(|sql| retention::withdraw_consent(sql, &vault, case, None, unix(day)))
                        .unwrap();
                    erased.insert(case, before);
                }
            }
        }
        day += Duration::days(rng.gen_range(0..3));
    }
    assert!(steps > 300 && !erased.is_empty());

    // The cases of 2026 as the documents say, with their team.
    let period = Period::new(date!(2026 - 01 - 01), date!(2026 - 12 - 31)).unwrap();
    let mut sources: Vec<(Source, Uuid)> = Vec::new();
    let mut ids: Vec<String> = vec![north.to_string(), teams::DEFAULT_TEAM.to_string()];
    for case in &made {
        ids.push(case.to_string());
        let doc = erased
            .get(case)
            .cloned()
            .unwrap_or_else(|| server.case(*case));
        let opened = doc.created_at.date();
        if opened < period.from || opened > period.to {
            continue;
        }
        let team: String = server.with_sql(|sql| {
            sql.query_row(
                "SELECT team_id FROM cases WHERE id = ?1",
                sql_params![&case.to_string()],
            )?
            .get(0)
        });
        sources.push((source_of(&doc), Uuid::parse_str(&team).unwrap()));
    }

    let dir = tempfile::tempdir().unwrap();
    let mut written_total = 0;
    for (k, scope) in [(2, None), (5, None), (11, None), (3, Some(north))] {
        let these: Vec<&Source> = sources
            .iter()
            .filter(|(_, t)| scope.is_none_or(|s| s == *t))
            .map(|(s, _)| s)
            .collect();
        let teams = scope.map_or(Teams::All, |t| Teams::Only(vec![t.to_string()]));
        let out = dir
            .path()
            .join(format!("export-{k}-{}.csv", scope.is_some()));
        let audited = audit_details(&server).len();
        let e = db
            .write(|sql| export::write(sql, &vault, &teams, period, k, &out, unix(day)))
            .unwrap();
        let what = format!("seed {seed}, k {k}, team {scope:?}");
        // The counts add up.
        assert_eq!(e.cases, these.len(), "{what}");
        assert_eq!(e.written() + e.suppressed(), these.len(), "{what}");
        let details = audit_details(&server);
        assert_eq!(details.len(), audited + 1, "{what}: audited once");
        assert_eq!(details.last().unwrap(), &e.audit_detail());
        assert!(details.last().unwrap().contains(&format!(
            "written={} suppressed={}",
            e.written(),
            e.suppressed()
        )));

        let text = std::fs::read_to_string(&out).unwrap();
        for secret in ids
            .iter()
            .map(String::as_str)
            .chain([MARK, "North", "Office"])
        {
            assert!(!text.contains(secret), "{what}: {secret} in the export");
        }
        let mut lines = text.lines();
        let header: Vec<&str> = lines.next().unwrap().split(',').collect();
        assert_eq!(header, export::columns());
        let rows: Vec<BTreeMap<&str, &str>> = lines
            .map(|l| {
                let v: Vec<&str> = l.split(',').collect();
                assert_eq!(v.len(), header.len(), "{what}: {l}");
                header.iter().copied().zip(v).collect()
            })
            .collect();
        assert_eq!(rows.len(), e.written(), "{what}");
        written_total += rows.len();
        // Sorted by their text: the order says nothing of when a case was opened.
        let text_lines: Vec<&str> = text.lines().skip(1).collect();
        assert!(text_lines.is_sorted(), "{what}");
        // Every exported row matches at least k of the cases on its quasi-identifiers.
        for row in &rows {
            check_values(row);
            let n = these.iter().filter(|s| matches(row, s, &e)).count();
            assert!(n >= k, "{what}: a row matches {n} < {k} cases: {row:?}");
        }
        // Nothing made up: no row is written more often than there are cases it describes.
        let mut groups: BTreeMap<&str, usize> = BTreeMap::new();
        for l in &text_lines {
            *groups.entry(l).or_insert(0) += 1;
        }
        for (row, (l, n)) in rows.iter().zip(text_lines.iter().map(|l| (l, groups[l]))) {
            let sources = these.iter().filter(|s| matches(row, s, &e)).count();
            assert!(
                n <= sources,
                "{what}: {l} written {n} times for {sources} cases"
            );
        }
    }
    assert!(
        written_total > 0,
        "seed {seed}: the caseload allows some rows"
    );
}

#[test]
fn the_export_reidentifies_nobody_and_its_counts_add_up() {
    for seed in [7, 8, 9] {
        run(seed);
    }
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn bad_arguments_are_refused_and_write_and_audit_nothing() {
    let server = TestServer::start();
    let state = &server.running().state;
    let vault = state.vault().clone();
    let db = state.db();
    server.create_case("K-1", &[]);
    let dir = tempfile::tempdir().unwrap();
    let year = Period::new(date!(2026 - 01 - 01), date!(2026 - 12 - 31)).unwrap();
    let now = unix(date!(2026 - 06 - 01));
    let out = dir.path().join("x.csv");
    let export = |k: usize, out: &Path| {
        db.write(|sql| export::write(sql, &vault, &Teams::All, year, k, out, now))
    };

    assert!(matches!(export(1, &out), Err(ServerError::BadExport(_))));
    assert!(matches!(export(0, &out), Err(ServerError::BadExport(_))));
    assert!(matches!(
        Period::new(date!(2026 - 12 - 31), date!(2026 - 01 - 01)),
        Err(ServerError::BadPeriod(_))
    ));
    // A folder that does not exist: an I/O error, nothing left behind.
    let missing = dir.path().join("no-such-folder").join("x.csv");
    assert!(matches!(export(11, &missing), Err(ServerError::Io { .. })));
    // A file that exists is never replaced.
    std::fs::write(&out, "kept").unwrap();
    assert!(matches!(export(11, &out), Err(ServerError::BadExport(_))));
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "kept");
    assert_eq!(files_in(dir.path()), ["x.csv"], "no temporary file left");
    assert!(audit_details(&server).is_empty(), "nothing audited");

    // A folder the export cannot write to (not for root, who can write anywhere).
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let locked = dir.path().join("locked");
        std::fs::create_dir(&locked).unwrap();
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o500)).unwrap();
        let probe = locked.join("probe");
        if std::fs::write(&probe, "").is_err() {
            assert!(matches!(
                export(11, &locked.join("x.csv")),
                Err(ServerError::Io { .. })
            ));
            assert!(files_in(&locked).is_empty());
            assert!(audit_details(&server).is_empty(), "nothing audited");
        }
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o700)).unwrap();
    }

    // And one that works: audited once.
    let good = dir.path().join("good.csv");
    let e = export(2, &good).unwrap();
    assert_eq!(e.written() + e.suppressed(), e.cases);
    assert_eq!(audit_details(&server).len(), 1);
}
