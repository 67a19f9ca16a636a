//! Reports: what the office did in a period, for a team or every team a person may see, each
//! figure beside the previous period of equal length, read from the report index
//! ([`crate::storage::report_index`]) so that no case is decrypted and the cost does not grow
//! with the number of cases.
//!
//! Who: case managers see the reports of their teams, admins of every team and of the whole
//! office ([`Ability::ReadReports`]). A report holds only counts, every one below the
//! threshold hidden and none recoverable from the others ([`crate::office::suppression`]), so
//! it shows no case content and is not audited as a read of one.
//!
//! Figures: cases new in the period, open at its end, closed in it (by reason); of the new
//! cases, identified as victims, children and adults (age at opening), by gender, by type of
//! exploitation (a case with several types counts in each), by nationality (nationalities seen
//! fewer times than the threshold in both periods grouped as "other"); accompaniments planned
//! in the period by kind of office and by outcome (their status); services given by area;
//! goals achieved by area.

use fieldcase_core::model::{
    AssistanceTag, ClosureReason, ExploitationType, Gender, OfficeKind, TaskStatus,
};
use fieldcase_core::protocol::Role;
use time::{Date, Duration};
use uuid::Uuid;

use super::access::{Ability, Staff, require};
use super::suppression::{Relation, suppress};
use super::teams;
use crate::error::ServerError;
use crate::sql_params;
use crate::storage::report_index::facts::{NOT_RECORDED, metric};
use crate::storage::report_index::{Sums, Teams, sums, sums_until};
use crate::storage::sql::Sql;

/// The threshold when the configuration names none: counts under 5 are hidden.
pub const DEFAULT_THRESHOLD: i64 = 5;

/// Longest period a report covers: ten years.
pub const MAX_PERIOD_DAYS: i64 = 3660;

/// A period of whole days, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    /// First day.
    pub from: Date,
    /// Last day.
    pub to: Date,
}

impl Period {
    /// The period `from..=to`; refused when it ends before it starts, is longer than
    /// [`MAX_PERIOD_DAYS`] or lies outside the years 1900 to 2199.
    pub fn new(from: Date, to: Date) -> Result<Period, ServerError> {
        if to < from {
            return Err(ServerError::BadPeriod("the period ends before it starts"));
        }
        if (to - from).whole_days() + 1 > MAX_PERIOD_DAYS {
            return Err(ServerError::BadPeriod("a period covers at most ten years"));
        }
        if from.year() < 1900 || to.year() > 2199 {
            return Err(ServerError::BadPeriod(
                "a period lies within the years 1900 to 2199",
            ));
        }
        Ok(Period { from, to })
    }

    /// Its length in days.
    pub fn days(&self) -> i64 {
        (self.to - self.from).whole_days() + 1
    }

    /// The period of equal length just before it.
    pub fn previous(&self) -> Period {
        let to = self.from - Duration::days(1);
        Period {
            from: to - Duration::days(self.days() - 1),
            to,
        }
    }
}

/// One figure as shown: its count, or hidden.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Figure {
    /// Shown.
    Shown(i64),
    /// Hidden: below the threshold, or hidden so that a hidden count cannot be worked out.
    Hidden,
}

impl Figure {
    /// The count when shown.
    pub fn shown(self) -> Option<i64> {
        match self {
            Figure::Shown(n) => Some(n),
            Figure::Hidden => None,
        }
    }
}

/// One line of a report: what it counts (a stable name of its section's vocabulary), now and
/// in the previous period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// The value counted (`female`, `police`, `RS`, `other`, `not_recorded`…).
    pub key: String,
    /// In the period.
    pub current: Figure,
    /// In the previous period.
    pub previous: Figure,
}

impl Line {
    /// The change from the previous period, shown only when both sides are.
    pub fn change(&self) -> Option<i64> {
        Some(self.current.shown()? - self.previous.shown()?)
    }
}

/// What a section's keys are (for their labels).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keys {
    /// The report's own words (`report-key-…`).
    Report,
    /// Values of one of the model's vocabularies (`vocab-FIELD-…`), `not_recorded` and
    /// `other` being the report's own.
    Vocab(&'static str),
    /// Country codes, `other` and `not_recorded` the report's own.
    Country,
}

/// One breakdown: its total (when it has one) and its lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// Stable name (`cases`, `closed-by-reason`, `gender`…).
    pub name: &'static str,
    /// What its keys are.
    pub keys: Keys,
    /// Its total (one of the report's other figures), when it has one.
    pub total: Option<Line>,
    /// Whether its lines add up to the total (false where a case counts in several lines).
    pub adds_up: bool,
    /// Its lines.
    pub lines: Vec<Line>,
}

/// Which teams a report covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// One team, by name.
    Team(String),
    /// Every team the person may see.
    MyTeams,
    /// The whole office.
    Office,
}

/// A report, every hidden figure already hidden.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The period.
    pub period: Period,
    /// The previous period of equal length.
    pub previous: Period,
    /// Counts below this are hidden.
    pub threshold: i64,
    /// Which teams.
    pub scope: Scope,
    /// The breakdowns, in a fixed order.
    pub sections: Vec<Section>,
}

/// The teams a person may see reports of: an admin every team, a case manager hers; `None`
/// means the whole office.
pub fn visible_teams(sql: &mut dyn Sql, who: Staff) -> Result<Option<Vec<Uuid>>, ServerError> {
    require(who.role, Ability::ReadReports)?;
    if who.role == Role::Admin {
        return Ok(None);
    }
    Ok(Some(teams::teams_of(sql, &who.id)?))
}

/// Every team's id and name, by name (for the team picker and the scope's name).
pub fn team_names(sql: &mut dyn Sql) -> Result<Vec<(Uuid, String)>, ServerError> {
    let rows = sql.query_all("SELECT id, name FROM teams ORDER BY name", sql_params![])?;
    rows.iter()
        .map(|r| {
            let id: String = r.get(0)?;
            let id = Uuid::try_parse(&id).map_err(|_| ServerError::Internal("stored team id"))?;
            Ok((id, r.get(1)?))
        })
        .collect()
}

/// The report of `period` for `team` (or every team `who` may see; `who` is `None` for the
/// command line, which sees the whole office), counts under `threshold` hidden.
pub fn report(
    sql: &mut dyn Sql,
    who: Option<Staff>,
    team: Option<Uuid>,
    period: Period,
    threshold: i64,
) -> Result<Report, ServerError> {
    let visible = match who {
        Some(w) => visible_teams(sql, w)?,
        None => None,
    };
    let names = team_names(sql)?;
    let (teams, scope) = match (team, &visible) {
        (Some(t), Some(mine)) if !mine.contains(&t) => return Err(ServerError::OutsideTeam),
        (Some(t), _) => {
            let name = names
                .iter()
                .find(|(id, _)| *id == t)
                .map(|(_, n)| n.clone())
                .ok_or(ServerError::UnknownTeam)?;
            (Teams::Only(vec![t.to_string()]), Scope::Team(name))
        }
        (None, Some(mine)) => (
            Teams::Only(mine.iter().map(Uuid::to_string).collect()),
            Scope::MyTeams,
        ),
        (None, None) => (Teams::All, Scope::Office),
    };
    let previous = period.previous();
    let day = |d: Date| d.to_julian_day();
    let cur = sums(sql, &teams, day(period.from), day(period.to))?;
    let prev = sums(sql, &teams, day(previous.from), day(previous.to))?;
    let stock = [metric::OPENED, metric::CLOSED];
    let open_at = |s: &Sums| total(s, metric::OPENED) - total(s, metric::CLOSED);
    let open_cur = open_at(&sums_until(sql, &teams, &stock, day(period.to))?);
    let open_prev = open_at(&sums_until(sql, &teams, &stock, day(previous.to))?);
    Ok(build(
        &cur, &prev, open_cur, open_prev, period, previous, threshold, scope,
    ))
}

fn get(s: &Sums, metric: &str, key: &str) -> i64 {
    s.get(&(metric.to_owned(), key.to_owned()))
        .copied()
        .unwrap_or(0)
}

fn total(s: &Sums, metric: &str) -> i64 {
    s.iter()
        .filter(|((m, _), _)| m == metric)
        .map(|(_, n)| *n)
        .sum()
}

/// The sum of accompaniment counts whose key (`kind:status`) matches `part` on one side.
fn accompaniments(s: &Sums, kind: Option<&str>, status: Option<&str>) -> i64 {
    s.iter()
        .filter(|((m, k), _)| {
            m == metric::ACCOMPANIMENT && {
                let (a, b) = k.split_once(':').unwrap_or((k, ""));
                kind.is_none_or(|x| x == a) && status.is_none_or(|x| x == b)
            }
        })
        .map(|(_, n)| *n)
        .sum()
}

/// Cells of both periods and the sums that tie them, built section by section.
#[derive(Default)]
struct Cells {
    values: Vec<i64>,
    relations: Vec<Relation>,
}

impl Cells {
    fn pair(&mut self, cur: i64, prev: i64) -> (usize, usize) {
        self.values.push(cur);
        self.values.push(prev);
        (self.values.len() - 2, self.values.len() - 1)
    }
}

struct Draft {
    name: &'static str,
    keys: Keys,
    total: Option<(usize, usize)>,
    adds_up: bool,
    lines: Vec<(String, (usize, usize))>,
}

fn with_not_recorded(names: impl Iterator<Item = &'static str>) -> Vec<String> {
    names
        .map(str::to_owned)
        .chain([NOT_RECORDED.to_owned()])
        .collect()
}

#[allow(clippy::too_many_arguments)]
fn build(
    cur: &Sums,
    prev: &Sums,
    open_cur: i64,
    open_prev: i64,
    period: Period,
    previous: Period,
    threshold: i64,
    scope: Scope,
) -> Report {
    let mut cells = Cells::default();
    let mut drafts: Vec<Draft> = Vec::new();
    let both = |f: &dyn Fn(&Sums) -> i64| (f(cur), f(prev));

    let (n, p) = both(&|s| get(s, metric::OPENED, "all"));
    let new = cells.pair(n, p);
    let open = cells.pair(open_cur, open_prev);
    let (n, p) = both(&|s| total(s, metric::CLOSED));
    let closed = cells.pair(n, p);
    // Open now = open before + new - closed: ties the open figures of both periods.
    cells
        .relations
        .push(vec![(open.0, 1), (open.1, -1), (new.0, -1), (closed.0, 1)]);
    drafts.push(Draft {
        name: "cases",
        keys: Keys::Report,
        total: None,
        adds_up: false,
        lines: vec![
            ("new".to_owned(), new),
            ("open".to_owned(), open),
            ("closed".to_owned(), closed),
        ],
    });

    let mut breakdown = |cells: &mut Cells,
                         name: &'static str,
                         keys: Keys,
                         total: (usize, usize),
                         adds_up: bool,
                         lines: Vec<(String, i64, i64)>| {
        let lines: Vec<(String, (usize, usize))> = lines
            .into_iter()
            .map(|(k, c, p)| (k, cells.pair(c, p)))
            .collect();
        if adds_up {
            for side in 0..2 {
                let pick = |x: (usize, usize)| if side == 0 { x.0 } else { x.1 };
                let mut r: Relation = vec![(pick(total), -1)];
                r.extend(lines.iter().map(|(_, c)| (pick(*c), 1)));
                cells.relations.push(r);
            }
        }
        drafts.push(Draft {
            name,
            keys,
            total: Some(total),
            adds_up,
            lines,
        });
    };
    let of = |metric: &'static str, keys: Vec<String>| -> Vec<(String, i64, i64)> {
        keys.into_iter()
            .map(|k| {
                let (c, p) = (get(cur, metric, &k), get(prev, metric, &k));
                (k, c, p)
            })
            .collect()
    };

    breakdown(
        &mut cells,
        "closed-by-reason",
        Keys::Vocab("closure-reason"),
        closed,
        true,
        of(
            metric::CLOSED,
            with_not_recorded(ClosureReason::ALL.iter().map(|r| r.as_str())),
        ),
    );
    breakdown(
        &mut cells,
        "identified",
        Keys::Report,
        new,
        true,
        of(metric::IDENTIFIED, vec!["yes".into(), "no".into()]),
    );
    breakdown(
        &mut cells,
        "age",
        Keys::Report,
        new,
        true,
        of(
            metric::AGE,
            vec!["child".into(), "adult".into(), NOT_RECORDED.into()],
        ),
    );
    breakdown(
        &mut cells,
        "gender",
        Keys::Vocab("gender"),
        new,
        true,
        of(
            metric::GENDER,
            with_not_recorded(Gender::ALL.iter().map(|g| g.as_str())),
        ),
    );
    breakdown(
        &mut cells,
        "exploitation",
        Keys::Vocab("exploitation"),
        new,
        false,
        of(
            metric::EXPLOITATION,
            with_not_recorded(ExploitationType::ALL.iter().map(|t| t.as_str())),
        ),
    );
    // Nationalities seen at least `threshold` times in either period by name, the rest as one.
    let mut shown_codes: Vec<String> = cur
        .iter()
        .chain(prev.iter())
        .filter(|((m, k), n)| m == metric::NATIONALITY && k != NOT_RECORDED && **n >= threshold)
        .map(|((_, k), _)| k.clone())
        .collect();
    shown_codes.sort();
    shown_codes.dedup();
    let rest = |s: &Sums| {
        s.iter()
            .filter(|((m, k), _)| {
                m == metric::NATIONALITY && k != NOT_RECORDED && !shown_codes.contains(k)
            })
            .map(|(_, n)| *n)
            .sum::<i64>()
    };
    let mut nationality = of(metric::NATIONALITY, shown_codes.clone());
    nationality.push(("other".into(), rest(cur), rest(prev)));
    nationality.push((
        NOT_RECORDED.into(),
        get(cur, metric::NATIONALITY, NOT_RECORDED),
        get(prev, metric::NATIONALITY, NOT_RECORDED),
    ));
    breakdown(
        &mut cells,
        "nationality",
        Keys::Country,
        new,
        true,
        nationality,
    );

    let (c, p) = both(&|s| total(s, metric::ACCOMPANIMENT));
    let acc = cells.pair(c, p);
    let kinds = OfficeKind::ALL
        .iter()
        .map(|k| {
            let f = |s: &Sums| accompaniments(s, Some(k.as_str()), None);
            (k.as_str().to_owned(), f(cur), f(prev))
        })
        .collect();
    breakdown(
        &mut cells,
        "accompaniments-by-kind",
        Keys::Vocab("office-kind"),
        acc,
        true,
        kinds,
    );
    let outcomes = TaskStatus::ALL
        .iter()
        .map(|k| {
            let f = |s: &Sums| accompaniments(s, None, Some(k.as_str()));
            (k.as_str().to_owned(), f(cur), f(prev))
        })
        .collect();
    breakdown(
        &mut cells,
        "accompaniments-by-outcome",
        Keys::Vocab("task-status"),
        acc,
        true,
        outcomes,
    );
    let areas = |metric: &'static str| {
        of(
            metric,
            AssistanceTag::ALL
                .iter()
                .map(|a| a.as_str().to_owned())
                .collect(),
        )
    };
    let (c, p) = both(&|s| total(s, metric::SERVICE));
    let services = cells.pair(c, p);
    breakdown(
        &mut cells,
        "services",
        Keys::Vocab("assistance-tag"),
        services,
        true,
        areas(metric::SERVICE),
    );
    let (c, p) = both(&|s| total(s, metric::GOAL_ACHIEVED));
    let goals = cells.pair(c, p);
    breakdown(
        &mut cells,
        "goals-achieved",
        Keys::Vocab("assistance-tag"),
        goals,
        true,
        areas(metric::GOAL_ACHIEVED),
    );

    let hidden = suppress(&cells.values, &cells.relations, threshold);
    let figure = |i: usize| {
        if hidden[i] {
            Figure::Hidden
        } else {
            Figure::Shown(cells.values[i])
        }
    };
    let line = |key: String, (c, p): (usize, usize)| Line {
        key,
        current: figure(c),
        previous: figure(p),
    };
    let sections = drafts
        .into_iter()
        .map(|d| Section {
            name: d.name,
            keys: d.keys,
            total: d.total.map(|t| line("total".to_owned(), t)),
            adds_up: d.adds_up,
            lines: d.lines.into_iter().map(|(k, c)| line(k, c)).collect(),
        })
        .collect();
    Report {
        period,
        previous,
        threshold,
        scope,
        sections,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use time::macros::date;

    fn sums(entries: &[(&str, &str, i64)]) -> Sums {
        entries
            .iter()
            .map(|(m, k, n)| ((m.to_string(), k.to_string()), *n))
            .collect()
    }

    #[test]
    fn previous_period_has_the_same_length() {
        let p = Period::new(date!(2026 - 01 - 01), date!(2026 - 12 - 31)).unwrap();
        assert_eq!(p.days(), 365);
        let q = p.previous();
        assert_eq!(
            (q.from, q.to),
            (date!(2025 - 01 - 01), date!(2025 - 12 - 31))
        );
        assert!(Period::new(date!(2026 - 02 - 01), date!(2026 - 01 - 01)).is_err());
        assert!(Period::new(date!(2000 - 01 - 01), date!(2026 - 01 - 01)).is_err());
    }

    #[test]
    fn a_lone_small_gender_hides_another_and_no_hidden_figure_comes_back() {
        let cur = sums(&[
            ("opened", "all", 40),
            ("opened_gender", "female", 30),
            ("opened_gender", "male", 8),
            ("opened_gender", "other", 2),
            ("opened_nationality", "RS", 37),
            ("opened_nationality", "AL", 3),
        ]);
        let r = build(
            &cur,
            &Sums::new(),
            40,
            0,
            Period::new(date!(2026 - 01 - 01), date!(2026 - 12 - 31)).unwrap(),
            Period::new(date!(2025 - 01 - 01), date!(2025 - 12 - 31)).unwrap(),
            5,
            Scope::Office,
        );
        let gender = r.sections.iter().find(|s| s.name == "gender").unwrap();
        let fig = |k: &str| gender.lines.iter().find(|l| l.key == k).unwrap().current;
        assert_eq!(fig("female"), Figure::Shown(30));
        assert_eq!(fig("other"), Figure::Hidden);
        // "not recorded" is 0 and hidden too, so the 8 may stay: two hidden cells (2 and 0)
        // leave each undetermined.
        assert_eq!(fig("not_recorded"), Figure::Hidden);
        // A nationality seen 3 times is not named: it goes to "other".
        let nat = r.sections.iter().find(|s| s.name == "nationality").unwrap();
        assert!(nat.lines.iter().all(|l| l.key != "AL"));
        // No hidden figure recoverable: every breakdown that adds up to a shown total has
        // none or at least two hidden lines.
        for s in &r.sections {
            if s.adds_up
                && s.total
                    .as_ref()
                    .is_some_and(|t| t.current.shown().is_some())
            {
                let hidden = s
                    .lines
                    .iter()
                    .filter(|l| l.current == Figure::Hidden)
                    .count();
                assert_ne!(hidden, 1, "{}", s.name);
            }
        }
        // The change is shown only beside two shown figures.
        assert_eq!(gender.lines[0].change(), None);
    }
}
