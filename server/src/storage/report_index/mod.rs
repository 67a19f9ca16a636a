//! The report index: what reports and the anonymised export read, kept up to date in the same
//! transaction as every change of a case, so that neither decrypts a case document.
//!
//! For each case the office keeps its *facts* ([`CaseFacts`]: team, opening and closing days,
//! the close reason, identified or not, age band at opening, the HTCDS profile without the year
//! of birth, and dated events: accompaniments with office kind and outcome, services by area,
//! goals achieved by area), sealed with the office's data key in `report_facts` (it links a
//! case id to a nationality). Every store of a case ([`crate::storage::case_docs`]) derives
//! the facts again, compares them with the stored ones and applies the difference to
//! `report_counts`: `(grain, bucket, team, metric, key) → n`, a day bucket and a month bucket
//! for every count. A report for any period is then a sum over at most two partial months of
//! days and the whole months between, whatever the number of cases ([`sums`]).
//!
//! A team move ([`moved`]) carries the case's counts to its new team; an erasure ([`erased`])
//! closes the case in the index if it was open and freezes its facts: erased cases stay
//! counted, their facts hold nothing that names or describes the client beyond what
//! `case_statistics` keeps. A backfill derives the facts of cases stored before the index
//! existed (`storage::case_docs::backfill_index`, at every start, for the cases that lack
//! them).

pub mod facts;

use std::collections::BTreeMap;

use fieldcase_core::crypto::{open, seal};
use fieldcase_core::document::CaseDoc;
use fieldcase_core::ids::CaseId;
use fieldcase_core::model::{ClosureReason, Country, ExploitationType, Gender, HtcdsStatus};
use time::{Date, Month};

pub use facts::{CaseFacts, difference};

use crate::error::ServerError;
use crate::sql_params;
use crate::storage::case_docs::CaseVault;
use crate::storage::sql::Sql;

/// Bucket grains (`report_counts.grain`).
const DAY: i64 = 0;
const MONTH: i64 = 1;

fn facts_aad(case: CaseId) -> Vec<u8> {
    let mut aad = b"fieldcase-server/report-facts/".to_vec();
    aad.extend_from_slice(case.as_bytes());
    aad
}

/// The month bucket of a Julian day: months since the year 0.
pub fn month_of(day: i32) -> i64 {
    let d = facts::date_of(day);
    i64::from(d.year()) * 12 + i64::from(u8::from(d.month())) - 1
}

fn first_of_month(month: i64) -> Option<i32> {
    let year = i32::try_from(month.div_euclid(12)).ok()?;
    let m = Month::try_from(u8::try_from(month.rem_euclid(12) + 1).ok()?).ok()?;
    Date::from_calendar_date(year, m, 1)
        .ok()
        .map(|d| d.to_julian_day())
}

/// The facts stored for `case`, if any.
pub fn stored(
    sql: &mut dyn Sql,
    vault: &CaseVault,
    case: CaseId,
) -> Result<Option<CaseFacts>, ServerError> {
    let Some(row) = sql.query_opt(
        "SELECT facts FROM report_facts WHERE case_id = ?1",
        sql_params![&case.to_string()],
    )?
    else {
        return Ok(None);
    };
    let sealed: Vec<u8> = row.get(0)?;
    Ok(Some(open_facts(vault, case, &sealed)?))
}

fn open_facts(vault: &CaseVault, case: CaseId, sealed: &[u8]) -> Result<CaseFacts, ServerError> {
    let plain = open(vault.key(), &facts_aad(case), sealed, "report facts")?;
    serde_json::from_slice(&plain).map_err(|_| ServerError::Internal("stored report facts"))
}

/// Writes `after` as the facts of `case` and moves the counts from `before` to it.
fn replace(
    sql: &mut dyn Sql,
    vault: &CaseVault,
    case: CaseId,
    before: Option<&CaseFacts>,
    after: &CaseFacts,
) -> Result<(), ServerError> {
    // The counts are shared by every case: written only in the commit order.
    sql.enter_commit_order()?;
    for ((team, day, metric, key), n) in difference(before, Some(after)) {
        for (grain, bucket) in [(DAY, i64::from(day)), (MONTH, month_of(day))] {
            sql.execute(
                "INSERT INTO report_counts (grain, bucket, team_id, metric, key, n)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (grain, bucket, team_id, metric, key)
                 DO UPDATE SET n = report_counts.n + excluded.n",
                sql_params![grain, bucket, &team, metric, &key, n],
            )?;
            if n < 0 {
                sql.execute(
                    "DELETE FROM report_counts WHERE grain = ?1 AND bucket = ?2
                         AND team_id = ?3 AND metric = ?4 AND key = ?5 AND n = 0",
                    sql_params![grain, bucket, &team, metric, &key],
                )?;
            }
        }
    }
    let json = zeroize::Zeroizing::new(
        serde_json::to_vec(after).map_err(|_| ServerError::Internal("encoding report facts"))?,
    );
    let sealed = seal(vault.key(), &facts_aad(case), &json)?;
    sql.execute(
        "INSERT INTO report_facts (case_id, facts) VALUES (?1, ?2)
         ON CONFLICT (case_id) DO UPDATE SET facts = excluded.facts",
        sql_params![&case.to_string(), &sealed],
    )?;
    Ok(())
}

/// The case's row as the index needs it: team, closed at, erased or not.
fn case_row(
    sql: &mut dyn Sql,
    case: CaseId,
) -> Result<Option<(String, Option<i64>, bool)>, ServerError> {
    let Some(row) = sql.query_opt(
        "SELECT team_id, closed_at, erased_at FROM cases WHERE id = ?1",
        sql_params![&case.to_string()],
    )?
    else {
        return Ok(None);
    };
    let erased: Option<i64> = row.get(2)?;
    Ok(Some((row.get(0)?, row.get(1)?, erased.is_some())))
}

/// Derives the facts of `doc` as just stored (at `now`, Unix seconds) and applies what changed
/// to the counts. Nothing changes for an erased case. Call it after the case's row was written.
pub fn refresh(
    sql: &mut dyn Sql,
    vault: &CaseVault,
    doc: &CaseDoc,
    now: i64,
) -> Result<(), ServerError> {
    Pending::read(doc)?.write(sql, vault, doc.id(), now)
}

/// A refresh in two steps, so that the document is read before a transaction takes its place in
/// the commit order ([`crate::storage::sql::Sql::enter_commit_order`]) and only the index's
/// rows are written in it.
pub struct Pending {
    case: fieldcase_core::model::Case,
}

impl Pending {
    /// Reads what the facts are derived from out of `doc` (its fields, plan and tasks; not its
    /// notes).
    pub fn read(doc: &CaseDoc) -> Result<Pending, ServerError> {
        Ok(Pending {
            case: doc.case_without_notes()?,
        })
    }

    /// Derives the facts of `case` from what was read and the case's row as it is now (call
    /// after the row was written), and applies what changed to the index.
    pub fn write(
        self,
        sql: &mut dyn Sql,
        vault: &CaseVault,
        case: CaseId,
        now: i64,
    ) -> Result<(), ServerError> {
        let Some((team, closed_at, erased)) = case_row(sql, case)? else {
            return Ok(());
        };
        let before = stored(sql, vault, case)?;
        if erased || before.as_ref().is_some_and(|b| b.erased) {
            return Ok(());
        }
        let today = facts::day_of(now).ok_or(ServerError::Internal("clock out of range"))?;
        let after = CaseFacts::derive(&self.case, &team, closed_at, before.as_ref(), today);
        if before.as_ref() != Some(&after) {
            replace(sql, vault, case, before.as_ref(), &after)?;
        }
        Ok(())
    }
}

/// Carries `case`'s counts to the team its row now names (call after the move).
pub fn moved(sql: &mut dyn Sql, vault: &CaseVault, case: CaseId) -> Result<(), ServerError> {
    let Some((team, ..)) = case_row(sql, case)? else {
        return Ok(());
    };
    if let Some(before) = stored(sql, vault, case)?
        && before.team != team
    {
        let after = CaseFacts {
            team,
            ..before.clone()
        };
        replace(sql, vault, case, Some(&before), &after)?;
    }
    Ok(())
}

/// Freezes `case`'s facts at its erasure (at `now`): it stays counted, closed on the day it
/// was closed, or today if it was open.
pub fn erased(
    sql: &mut dyn Sql,
    vault: &CaseVault,
    case: CaseId,
    now: i64,
) -> Result<(), ServerError> {
    if let Some(before) = stored(sql, vault, case)? {
        let today = facts::day_of(now).ok_or(ServerError::Internal("clock out of range"))?;
        let after = CaseFacts {
            closed: before.closed.or(Some(today.max(before.opened))),
            erased: true,
            ..before.clone()
        };
        if after != before {
            replace(sql, vault, case, Some(&before), &after)?;
        }
    }
    Ok(())
}

/// The cases that have no facts yet (stored before the index existed): id, whether erased,
/// when last stored (Unix seconds).
pub fn missing(sql: &mut dyn Sql) -> Result<Vec<(CaseId, bool, i64)>, ServerError> {
    let rows = sql.query_all(
        "SELECT id, erased_at, updated_at FROM cases c
         WHERE NOT EXISTS (SELECT 1 FROM report_facts f WHERE f.case_id = c.id)
         ORDER BY id",
        &[],
    )?;
    let mut out = Vec::new();
    for row in rows {
        let id: String = row.get(0)?;
        let erased: Option<i64> = row.get(1)?;
        let case: CaseId = id
            .parse()
            .map_err(|_| ServerError::Internal("stored case id is not an id"))?;
        out.push((case, erased.is_some(), row.get(2)?));
    }
    Ok(out)
}

/// Derives the facts of a case erased before the index existed from its anonymised
/// statistics; false when it has none.
pub fn backfill_erased(
    sql: &mut dyn Sql,
    vault: &CaseVault,
    case: CaseId,
) -> Result<bool, ServerError> {
    match from_statistics(sql, case)? {
        Some(f) => {
            replace(sql, vault, case, None, &f)?;
            Ok(true)
        }
        None => Ok(false),
    }
}

/// The facts of a case erased before the index existed, from what `case_statistics` kept: its
/// HTCDS variables, its team and the days of its row. No events (the statistics hold no dates
/// for them), not identified (the legal status is not kept).
fn from_statistics(sql: &mut dyn Sql, case: CaseId) -> Result<Option<CaseFacts>, ServerError> {
    let Some(row) = sql.query_opt(
        "SELECT s.team_id, s.fields, c.created_at, c.closed_at, s.erased_at
         FROM case_statistics s JOIN cases c ON c.id = s.case_id WHERE s.case_id = ?1",
        sql_params![&case.to_string()],
    )?
    else {
        return Ok(None);
    };
    let team: String = row.get(0)?;
    let fields: String = row.get(1)?;
    let created: i64 = row.get(2)?;
    let closed: Option<i64> = row.get(3)?;
    let erased_at: i64 = row.get(4)?;
    let v: serde_json::Value = serde_json::from_str(&fields)
        .map_err(|_| ServerError::Internal("stored case statistics"))?;
    let text = |name: &str| v.get(name).and_then(|x| x.as_str()).map(str::to_owned);
    let flag = |name: &str| text(name).as_deref() == Some("1");
    let mut exploitation = Vec::new();
    if flag("isSexualExploit") {
        exploitation.push(ExploitationType::Sexual);
    }
    if flag("isForcedMarriage") {
        exploitation.push(ExploitationType::ForcedMarriage);
    }
    if flag("isOtherExploit") {
        exploitation.push(ExploitationType::Other);
    }
    let begging = flag("typeOfLabourBegging");
    let illicit = flag("typeOfLabourIllicitActivities");
    if begging {
        exploitation.push(ExploitationType::Begging);
    }
    if illicit {
        exploitation.push(ExploitationType::ForcedCriminality);
    }
    if flag("isForcedLabour") && !begging && !illicit {
        exploitation.push(ExploitationType::Labour);
    }
    let profile = fieldcase_core::model::ClientProfile {
        gender: text("gender").and_then(|g| g.parse::<Gender>().ok()),
        nationality: text("citizenship").and_then(|c| c.parse::<Country>().ok()),
        exploitation,
        htcds_status: text("caseStatus").and_then(|s| s.parse::<HtcdsStatus>().ok()),
        closure_reason: text("reasonForClosure").and_then(|r| r.parse::<ClosureReason>().ok()),
        ..Default::default()
    }
    .normalized();
    let opened = facts::day_of(created).ok_or(ServerError::Internal("stored time"))?;
    Ok(Some(CaseFacts {
        team,
        opened,
        closed: closed.or(Some(erased_at)).and_then(facts::day_of),
        identified: false,
        age_band: text("ageBroad").filter(|b| facts::AGE_BANDS.contains(&b.as_str())),
        profile,
        accompaniments: Vec::new(),
        services: Vec::new(),
        goals_achieved: Vec::new(),
        erased: true,
    }))
}

/// Sums of the counts `(metric, key) → n`.
pub type Sums = BTreeMap<(String, String), i64>;

/// Which teams a sum covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Teams {
    /// Every team of the office.
    All,
    /// These teams (ids as stored).
    Only(Vec<String>),
}

fn team_filter(teams: &Teams, first: usize) -> String {
    match teams {
        Teams::All => String::new(),
        Teams::Only(ids) if ids.is_empty() => " AND 0 = 1".to_owned(),
        Teams::Only(ids) => {
            let marks: Vec<String> = (0..ids.len()).map(|i| format!("?{}", first + i)).collect();
            format!(" AND team_id IN ({})", marks.join(", "))
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn add_range(
    sql: &mut dyn Sql,
    teams: &Teams,
    metrics: Option<&[&str]>,
    grain: i64,
    from: i64,
    to: i64,
    out: &mut Sums,
) -> Result<(), ServerError> {
    if from > to {
        return Ok(());
    }
    let team_ids: &[String] = match teams {
        Teams::All => &[],
        Teams::Only(ids) => ids,
    };
    let metric_filter = match metrics {
        None => String::new(),
        Some(ms) => {
            let first = 4 + team_ids.len();
            let marks: Vec<String> = (0..ms.len()).map(|i| format!("?{}", first + i)).collect();
            format!(" AND metric IN ({})", marks.join(", "))
        }
    };
    let query = format!(
        "SELECT metric, key, SUM(n) FROM report_counts
         WHERE grain = ?1 AND bucket >= ?2 AND bucket <= ?3{}{metric_filter}
         GROUP BY metric, key",
        team_filter(teams, 4)
    );
    let mut params = vec![
        crate::storage::sql::Param::from(grain),
        crate::storage::sql::Param::from(from),
        crate::storage::sql::Param::from(to),
    ];
    params.extend(team_ids.iter().map(crate::storage::sql::Param::from));
    params.extend(
        metrics
            .unwrap_or(&[])
            .iter()
            .map(|m| crate::storage::sql::Param::from(*m)),
    );
    for row in sql.query_all(&query, &params)? {
        let n: i64 = row.get(2)?;
        *out.entry((row.get(0)?, row.get(1)?)).or_insert(0) += n;
    }
    Ok(())
}

/// The counts of `teams` over the Julian days `from..=to`: whole months from the month
/// buckets, the days before the first and after the last whole month from the day buckets, so
/// the work is the same for any number of cases.
pub fn sums(sql: &mut dyn Sql, teams: &Teams, from: i32, to: i32) -> Result<Sums, ServerError> {
    let mut out = Sums::new();
    if from > to {
        return Ok(out);
    }
    let (mf, mt) = (month_of(from), month_of(to));
    // The first whole month: `from`'s own when it starts on its first day.
    let first_whole = if first_of_month(mf) == Some(from) {
        mf
    } else {
        mf + 1
    };
    // The last whole month: `to`'s own when it ends on its last day.
    let last_whole = if first_of_month(mt + 1).map(|d| d - 1) == Some(to) {
        mt
    } else {
        mt - 1
    };
    if first_whole > last_whole {
        add_range(
            sql,
            teams,
            None,
            DAY,
            i64::from(from),
            i64::from(to),
            &mut out,
        )?;
        return Ok(out);
    }
    let whole_from = first_of_month(first_whole).ok_or(ServerError::Internal("date range"))?;
    let whole_to = first_of_month(last_whole + 1)
        .map(|d| d - 1)
        .ok_or(ServerError::Internal("date range"))?;
    add_range(
        sql,
        teams,
        None,
        DAY,
        i64::from(from),
        i64::from(whole_from) - 1,
        &mut out,
    )?;
    add_range(sql, teams, None, MONTH, first_whole, last_whole, &mut out)?;
    add_range(
        sql,
        teams,
        None,
        DAY,
        i64::from(whole_to) + 1,
        i64::from(to),
        &mut out,
    )?;
    Ok(out)
}

/// The counts of `metrics` of `teams` from the first bucket up to the Julian day `to` (for
/// what stands at a day: cases opened and not closed by then).
pub fn sums_until(
    sql: &mut dyn Sql,
    teams: &Teams,
    metrics: &[&str],
    to: i32,
) -> Result<Sums, ServerError> {
    let mut out = Sums::new();
    let m = month_of(to);
    add_range(sql, teams, Some(metrics), MONTH, i64::MIN, m - 1, &mut out)?;
    let first = first_of_month(m).ok_or(ServerError::Internal("date range"))?;
    add_range(
        sql,
        teams,
        Some(metrics),
        DAY,
        i64::from(first),
        i64::from(to),
        &mut out,
    )?;
    Ok(out)
}

/// The facts of every case of `teams` opened on the Julian days `from..=to` (erased ones
/// included), for the export: each sealed row opened, no document decrypted.
pub fn facts_opened(
    sql: &mut dyn Sql,
    vault: &CaseVault,
    teams: &Teams,
    from: i32,
    to: i32,
) -> Result<Vec<CaseFacts>, ServerError> {
    let rows = sql.query_all(
        "SELECT case_id, facts FROM report_facts ORDER BY case_id",
        &[],
    )?;
    let mut out = Vec::new();
    for row in rows {
        let id: String = row.get(0)?;
        let case: CaseId = id
            .parse()
            .map_err(|_| ServerError::Internal("stored case id is not an id"))?;
        let sealed: Vec<u8> = row.get(1)?;
        let f = open_facts(vault, case, &sealed)?;
        let on_team = match teams {
            Teams::All => true,
            Teams::Only(ids) => ids.contains(&f.team),
        };
        if on_team && (from..=to).contains(&f.opened) {
            out.push(f);
        }
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn months_and_their_first_days() {
        let d = time::macros::date!(2026 - 03 - 17).to_julian_day();
        let m = month_of(d);
        assert_eq!(m, 2026 * 12 + 2);
        assert_eq!(
            first_of_month(m),
            Some(time::macros::date!(2026 - 03 - 01).to_julian_day())
        );
        assert_eq!(
            first_of_month(m + 10),
            Some(time::macros::date!(2027 - 01 - 01).to_julian_day())
        );
    }
}
