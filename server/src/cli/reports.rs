//! `admin report`: the report of a period for the whole office or one team, as CSV or
//! Markdown on standard output, counts below the office's threshold hidden and the rule
//! printed with it (the same figures as the reports page).

use std::io::Write;

use anyhow::{Context, Result};
use clap::ValueEnum;
use fieldcase_server::http::web::i18n::Lang;
use fieldcase_server::http::web::report_pages;
use fieldcase_server::office::reports::{self, Period};
use fieldcase_server::office::teams;
use time::Date;

use super::Office;

/// How `admin report` writes the report.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// One row a figure, with the period, scope and rule first.
    Csv,
    /// A heading, the rule and one table a breakdown.
    Md,
}

/// Parses `YYYY-MM-DD`.
pub fn parse_date(s: &str) -> Result<Date, String> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    Date::parse(s, format).map_err(|_| format!("{s:?} is not a date (YYYY-MM-DD)"))
}

/// Writes the report of `from..=to` for `team` (name or id; the whole office without one).
pub fn run(
    office: &Office,
    from: Date,
    to: Date,
    team: Option<&str>,
    format: Format,
    lang: &str,
    out: &mut impl Write,
) -> Result<()> {
    let lang = Lang::parse(lang).context("the language is en, sr-Latn or sr-Cyrl")?;
    let period = Period::new(from, to)?;
    // Opening the vault derives the facts of cases stored before the index existed.
    office.vault()?;
    let threshold = office.limits.report_threshold;
    let report = office.db.read(|sql| {
        let team = team.map(|t| teams::resolve_team(sql, t)).transpose()?;
        reports::report(sql, None, team, period, threshold)
    })?;
    let text = match format {
        Format::Csv => report_pages::csv(&report, lang),
        Format::Md => report_pages::markdown(&report, lang),
    };
    out.write_all(text.as_bytes())?;
    Ok(())
}
