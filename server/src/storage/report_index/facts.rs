//! A case's *facts*: the few things reports and the anonymised export count, derived from its
//! document and its row, and the counts they add to the pre-aggregated buckets.
//!
//! Days are Julian day numbers (`time::Date::to_julian_day`): a case's opening is the date of
//! its `created_at` (UTC), a closing the date the office first saw it closed (`cases.closed_at`,
//! UTC), an accompaniment the date of its planned time in the offset it was planned in, a
//! service its `given_on`, a goal achieved the day the office first stored it achieved (the
//! document keeps no date for it).

use std::collections::BTreeMap;

use fieldcase_core::ids::GoalId;
use fieldcase_core::model::{
    AssistanceTag, Case, ClientProfile, GoalStatus, LegalStatus, OfficeKind, TaskStatus,
};
use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime};

/// The CTDC age bands (`ageBroad`), youngest first.
pub const AGE_BANDS: [&str; 9] = [
    "0-8", "9-17", "18-20", "21-23", "24-26", "27-29", "30-38", "39-47", "48+",
];

/// The CTDC age band of someone born in `birth_year`, in `year`.
pub fn age_band(birth_year: i32, year: i32) -> &'static str {
    match year - birth_year {
        ..=8 => AGE_BANDS[0],
        9..=17 => AGE_BANDS[1],
        18..=20 => AGE_BANDS[2],
        21..=23 => AGE_BANDS[3],
        24..=26 => AGE_BANDS[4],
        27..=29 => AGE_BANDS[5],
        30..=38 => AGE_BANDS[6],
        39..=47 => AGE_BANDS[7],
        _ => AGE_BANDS[8],
    }
}

/// Whether an age band is a child's (under 18).
pub fn is_child_band(band: &str) -> bool {
    band == AGE_BANDS[0] || band == AGE_BANDS[1]
}

/// Whether a legal status means the client was identified as a victim: the identification
/// itself, or a residence step that follows it.
pub fn is_identified(status: LegalStatus) -> bool {
    matches!(
        status,
        LegalStatus::IdentifiedVictim
            | LegalStatus::ResidencePending
            | LegalStatus::TemporaryResidence
            | LegalStatus::Resident
    )
}

/// Metric names of the buckets (`report_counts.metric`).
pub mod metric {
    /// A case opened (key `all`).
    pub const OPENED: &str = "opened";
    /// A case opened, identified as a victim or not (`yes`, `no`).
    pub const IDENTIFIED: &str = "opened_identified";
    /// A case opened, by age at opening (`child`, `adult`, `not_recorded`).
    pub const AGE: &str = "opened_age";
    /// A case opened, by gender (or `not_recorded`).
    pub const GENDER: &str = "opened_gender";
    /// A case opened, once per type of exploitation (or `not_recorded`).
    pub const EXPLOITATION: &str = "opened_exploitation";
    /// A case opened, by nationality (ISO code, or `not_recorded`).
    pub const NATIONALITY: &str = "opened_nationality";
    /// A case closed, by reason (or `not_recorded`).
    pub const CLOSED: &str = "closed";
    /// An accompaniment, key `office_kind:status`.
    pub const ACCOMPANIMENT: &str = "accompaniment";
    /// A service given, by area.
    pub const SERVICE: &str = "service";
    /// A goal achieved, by area.
    pub const GOAL_ACHIEVED: &str = "goal_achieved";
}

/// The key of a value not recorded.
pub const NOT_RECORDED: &str = "not_recorded";

/// One accompaniment as counted: its day, the kind of office, where it stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accompaniment {
    /// Julian day of its planned time.
    pub day: i32,
    /// The kind of office.
    pub kind: OfficeKind,
    /// Its outcome (status).
    pub status: TaskStatus,
}

/// A goal achieved, since the day the office first stored it so.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GoalAchieved {
    /// The goal (to keep its day while it stays achieved).
    pub goal: GoalId,
    /// Julian day it was first stored achieved.
    pub day: i32,
    /// Its area.
    pub area: AssistanceTag,
}

/// What reports and the export know of one case. Sealed at rest with the office's key, like
/// every other piece of case data: it links a case to a nationality.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseFacts {
    /// The case's team.
    pub team: String,
    /// Julian day it was opened.
    pub opened: i32,
    /// Julian day it was closed (as recorded now: a reopened case has none).
    pub closed: Option<i32>,
    /// Identified as a victim of trafficking.
    pub identified: bool,
    /// The CTDC age band at opening, when the year of birth is recorded.
    pub age_band: Option<String>,
    /// The HTCDS profile without the year of birth.
    pub profile: ClientProfile,
    /// Accompaniments.
    pub accompaniments: Vec<Accompaniment>,
    /// Services given: day and area.
    pub services: Vec<(i32, AssistanceTag)>,
    /// Goals achieved.
    pub goals_achieved: Vec<GoalAchieved>,
    /// The case's content was erased: these facts no longer change.
    #[serde(default)]
    pub erased: bool,
}

/// The Julian day of a Unix time (UTC), or `None` outside `time`'s range.
pub fn day_of(unix: i64) -> Option<i32> {
    OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .map(|t| t.date().to_julian_day())
}

/// The date of a Julian day (the first representable date for one out of range).
pub fn date_of(day: i32) -> Date {
    Date::from_julian_day(day).unwrap_or(Date::MIN)
}

impl CaseFacts {
    /// The facts of `case` (read without its notes) on `team`, closed at `closed_at` (Unix
    /// seconds) if it is; `before` are the facts stored for it until now (goals achieved keep
    /// the day they were first stored so), `today` the Julian day of this store.
    pub fn derive(
        case: &Case,
        team: &str,
        closed_at: Option<i64>,
        before: Option<&CaseFacts>,
        today: i32,
    ) -> CaseFacts {
        let mut profile = case.profile.clone().normalized();
        let age_band = profile
            .birth_year
            .map(|y| age_band(y, case.created_at.year()).to_owned());
        profile.birth_year = None;
        let accompaniments = case
            .tasks
            .iter()
            .map(|t| Accompaniment {
                day: t.scheduled_at.date().to_julian_day(),
                kind: t.office_kind,
                status: t.status,
            })
            .collect();
        let services = case
            .plan
            .services
            .iter()
            .map(|s| (s.given_on.to_julian_day(), s.area))
            .collect();
        let goals_achieved = case
            .plan
            .goals
            .iter()
            .filter(|g| g.status == GoalStatus::Achieved)
            .map(|g| GoalAchieved {
                goal: g.id,
                day: before
                    .and_then(|b| b.goals_achieved.iter().find(|a| a.goal == g.id))
                    .map_or(today, |a| a.day),
                area: g.area,
            })
            .collect();
        let opened = case.created_at.date().to_julian_day();
        CaseFacts {
            team: team.to_owned(),
            opened,
            // Never before it opened (a clock set wrong): a case counts as open or closed
            // from its opening on.
            closed: closed_at.and_then(day_of).map(|d| d.max(opened)),
            identified: is_identified(case.legal_status),
            age_band,
            profile,
            accompaniments,
            services,
            goals_achieved,
            erased: false,
        }
    }

    /// The counts these facts add: `(team, day, metric, key) → n`.
    pub fn counts(&self) -> BTreeMap<Bucket, i64> {
        let mut out = BTreeMap::new();
        let mut add = |day: i32, metric: &'static str, key: String| {
            *out.entry((self.team.clone(), day, metric, key))
                .or_insert(0) += 1;
        };
        let p = &self.profile;
        let d = self.opened;
        add(d, metric::OPENED, "all".to_owned());
        let identified = if self.identified { "yes" } else { "no" };
        add(d, metric::IDENTIFIED, identified.to_owned());
        let age = match &self.age_band {
            Some(b) if is_child_band(b) => "child",
            Some(_) => "adult",
            None => NOT_RECORDED,
        };
        add(d, metric::AGE, age.to_owned());
        let gender = p.gender.map_or(NOT_RECORDED, |g| g.as_str());
        add(d, metric::GENDER, gender.to_owned());
        if p.exploitation.is_empty() {
            add(d, metric::EXPLOITATION, NOT_RECORDED.to_owned());
        }
        for t in &p.exploitation {
            add(d, metric::EXPLOITATION, t.as_str().to_owned());
        }
        let nationality = p
            .nationality
            .map_or_else(|| NOT_RECORDED.to_owned(), |c| c.to_string());
        add(d, metric::NATIONALITY, nationality);
        if let Some(closed) = self.closed {
            let reason = p.closure_reason.map_or(NOT_RECORDED, |r| r.as_str());
            add(closed, metric::CLOSED, reason.to_owned());
        }
        for a in &self.accompaniments {
            add(
                a.day,
                metric::ACCOMPANIMENT,
                format!("{}:{}", a.kind.as_str(), a.status.as_str()),
            );
        }
        for (day, area) in &self.services {
            add(*day, metric::SERVICE, area.as_str().to_owned());
        }
        for g in &self.goals_achieved {
            add(g.day, metric::GOAL_ACHIEVED, g.area.as_str().to_owned());
        }
        out
    }
}

/// A bucket of the counts: team, Julian day, metric, key.
pub type Bucket = (String, i32, &'static str, String);

/// What changes in the buckets when a case's facts go from `before` to `after`: each
/// `(team, day, metric, key)` whose count moves, with how much (never zero).
pub fn difference(before: Option<&CaseFacts>, after: Option<&CaseFacts>) -> Vec<(Bucket, i64)> {
    let mut d: BTreeMap<_, i64> = BTreeMap::new();
    if let Some(b) = before {
        for (k, n) in b.counts() {
            *d.entry(k).or_insert(0) -= n;
        }
    }
    if let Some(a) = after {
        for (k, n) in a.counts() {
            *d.entry(k).or_insert(0) += n;
        }
    }
    d.into_iter().filter(|(_, n)| *n != 0).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn facts() -> CaseFacts {
        CaseFacts {
            team: "t".into(),
            opened: 2_460_000,
            closed: None,
            identified: true,
            age_band: Some("9-17".into()),
            profile: ClientProfile {
                exploitation: vec![
                    fieldcase_core::model::ExploitationType::Labour,
                    fieldcase_core::model::ExploitationType::Begging,
                ],
                ..Default::default()
            },
            accompaniments: vec![Accompaniment {
                day: 2_460_003,
                kind: OfficeKind::Police,
                status: TaskStatus::Done,
            }],
            services: vec![],
            goals_achieved: vec![],
            erased: false,
        }
    }

    #[test]
    fn a_case_counts_once_per_breakdown_and_once_per_exploitation_type() {
        let c = facts().counts();
        let n = |m: &str, k: &str| {
            c.iter()
                .filter(|((_, _, mm, kk), _)| *mm == m && kk == k)
                .map(|(_, n)| *n)
                .sum::<i64>()
        };
        assert_eq!(n(metric::OPENED, "all"), 1);
        assert_eq!(n(metric::AGE, "child"), 1);
        assert_eq!(n(metric::IDENTIFIED, "yes"), 1);
        assert_eq!(n(metric::GENDER, NOT_RECORDED), 1);
        assert_eq!(n(metric::EXPLOITATION, "labour"), 1);
        assert_eq!(n(metric::EXPLOITATION, "begging"), 1);
        assert_eq!(n(metric::ACCOMPANIMENT, "police:done"), 1);
        assert_eq!(n(metric::CLOSED, NOT_RECORDED), 0);
    }

    #[test]
    fn a_move_to_another_team_takes_every_count_along() {
        let before = facts();
        let mut after = before.clone();
        after.team = "u".into();
        let d = difference(Some(&before), Some(&after));
        let total: i64 = d.iter().map(|(_, n)| n).sum();
        assert_eq!(total, 0);
        assert!(d.iter().all(|((t, ..), n)| (t == "u") == (*n > 0)));
        assert!(difference(Some(&before), Some(&before)).is_empty());
    }

    #[test]
    fn age_bands_follow_ctdc() {
        assert_eq!(age_band(2010, 2026), "9-17");
        assert_eq!(age_band(2006, 2026), "18-20");
        assert_eq!(age_band(1990, 2026), "30-38");
        assert_eq!(age_band(1950, 2026), "48+");
        assert!(is_child_band(age_band(2009, 2026)));
        assert!(!is_child_band(age_band(2008, 2026)));
    }
}
