//! The reports page (`/reports`): a period and a team picked in a form, each breakdown as a
//! table and a bar chart drawn here as SVG (no script; this period solid, the previous one
//! striped, every bar labelled with its words and its number, so nothing depends on colour),
//! a CSV download of the same figures, and the Markdown and CSV the command line prints
//! (`admin report`). Hidden figures are shown as "< threshold", never drawn as a bar, and the
//! rule is printed on every report.

use std::collections::HashMap;
use std::fmt::Write as _;

use axum::extract::{Query, State};
use axum::http::header;
use axum::response::IntoResponse;
use maud::{Markup, html};
use time::{Date, OffsetDateTime};
use uuid::Uuid;

use super::auth::{WebError, WebUser};
use super::i18n::{Lang, Msg};
use super::layout::{Page, page};
use crate::display::for_page;
use crate::http::state::AppState;
use crate::office::access::Ability;
use crate::office::reports::{self, Figure, Keys, Line, Period, Report, Scope, Section};

/// The words of a figure: its count, or "< threshold".
pub fn figure_text(f: Figure, threshold: i64) -> String {
    match f {
        Figure::Shown(n) => n.to_string(),
        Figure::Hidden => format!("< {threshold}"),
    }
}

fn change_text(line: &Line) -> String {
    match line.change() {
        Some(0) => "0".to_owned(),
        Some(n) if n > 0 => format!("+{n}"),
        Some(n) => n.to_string(),
        None => "—".to_owned(),
    }
}

/// The title of a section.
pub fn section_title(l: Lang, s: &Section) -> &'static str {
    l.text(&format!("report-section-{}", s.name))
}

/// The label of a line's key.
pub fn key_label(l: Lang, s: &Section, key: &str) -> String {
    let own = |k: &str| {
        l.text(&format!("report-key-{}", k.replace('_', "-")))
            .to_owned()
    };
    match (s.keys, key) {
        (_, "not_recorded") | (_, "other") => own(key),
        (Keys::Report, k) => own(k),
        (Keys::Vocab(field), k) => l.value(field, k).to_owned(),
        (Keys::Country, k) => k.to_owned(),
    }
}

/// The report's scope in words.
pub fn scope_text(l: Lang, r: &Report) -> String {
    match &r.scope {
        Scope::Team(name) => format!("{}: {name}", l.t(Msg::ReportTeam)),
        Scope::MyTeams => l.t(Msg::ReportMyTeams).to_owned(),
        Scope::Office => l.t(Msg::ReportOffice).to_owned(),
    }
}

fn csv_field(s: &str) -> String {
    // A field a spreadsheet would run as a formula starts with a quote mark.
    let s = if s.starts_with(['=', '+', '-', '@']) && s.parse::<i64>().is_err() {
        format!("'{s}")
    } else {
        s.to_owned()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

fn lines_with_total(s: &Section) -> impl Iterator<Item = &Line> {
    s.total.iter().chain(s.lines.iter())
}

/// The report as CSV: the period, the scope and the rule first, then one row a figure
/// (`section,key,label,count,previous,change`).
pub fn csv(r: &Report, l: Lang) -> String {
    let mut out = String::new();
    let t = r.threshold;
    let row = |cells: &[&str]| -> String {
        let mut line = cells
            .iter()
            .map(|c| csv_field(c))
            .collect::<Vec<_>>()
            .join(",");
        line.push_str("\r\n");
        line
    };
    out += &row(&[
        "period",
        &r.period.from.to_string(),
        &r.period.to.to_string(),
    ]);
    out += &row(&[
        "previous",
        &r.previous.from.to_string(),
        &r.previous.to.to_string(),
    ]);
    out += &row(&["scope", &scope_text(l, r)]);
    out += &row(&[
        "rule",
        &l.count("report-rule", usize::try_from(t).unwrap_or(0)),
    ]);
    out += &row(&["section", "key", "label", "count", "previous", "change"]);
    for s in &r.sections {
        for line in lines_with_total(s) {
            let label = if line.key == "total" {
                l.t(Msg::ReportTotal).to_owned()
            } else {
                key_label(l, s, &line.key)
            };
            out += &row(&[
                s.name,
                &line.key,
                &label,
                &figure_text(line.current, t),
                &figure_text(line.previous, t),
                &change_text(line),
            ]);
        }
    }
    out
}

/// The report as Markdown: a heading, the period, scope and rule, a table a section.
pub fn markdown(r: &Report, l: Lang) -> String {
    let t = r.threshold;
    let esc = |s: &str| s.replace('|', "\\|");
    let mut out = String::new();
    let _ = writeln!(out, "# {}\n", l.t(Msg::Reports));
    let _ = writeln!(
        out,
        "{}: {} – {}  \n{}: {} – {}  \n{}\n",
        l.t(Msg::ReportPeriod),
        r.period.from,
        r.period.to,
        l.t(Msg::ReportPrevious),
        r.previous.from,
        r.previous.to,
        esc(&scope_text(l, r)),
    );
    let _ = writeln!(
        out,
        "_{}_\n",
        l.count("report-rule", usize::try_from(t).unwrap_or(0))
    );
    for s in &r.sections {
        let _ = writeln!(out, "## {}\n", section_title(l, s));
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |\n| --- | ---: | ---: | ---: |",
            l.t(Msg::ReportWhat),
            l.t(Msg::ReportCount),
            l.t(Msg::ReportPrevious),
            l.t(Msg::ReportChange)
        );
        for line in lines_with_total(s) {
            let label = if line.key == "total" {
                l.t(Msg::ReportTotal).to_owned()
            } else {
                key_label(l, s, &line.key)
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} |",
                esc(&label),
                figure_text(line.current, t),
                figure_text(line.previous, t),
                change_text(line)
            );
        }
        out.push('\n');
    }
    out
}

/// A horizontal bar chart of a section's lines: per line its label, a solid bar for this
/// period and a striped one for the previous, each with its number written beside it; a
/// hidden figure gets no bar, only its text.
fn chart(r: &Report, l: Lang, s: &Section) -> Markup {
    const LABEL_W: i64 = 260;
    const BAR_W: i64 = 360;
    const ROW_H: i64 = 34;
    let max = s
        .lines
        .iter()
        .flat_map(|x| [x.current.shown(), x.previous.shown()])
        .flatten()
        .max()
        .unwrap_or(0)
        .max(1);
    let height = ROW_H * i64::try_from(s.lines.len()).unwrap_or(0) + 10;
    let width = LABEL_W + BAR_W + 80;
    let pattern = format!("stripes-{}", s.name);
    let bar = |f: Figure| f.shown().map_or(0, |n| n * BAR_W / max);
    html! {
        svg.chart xmlns="http://www.w3.org/2000/svg" role="img" width=(width) height=(height)
            viewBox={ "0 0 " (width) " " (height) } aria-label=(section_title(l, s)) {
            defs {
                pattern id=(pattern) patternUnits="userSpaceOnUse" width="6" height="6" patternTransform="rotate(45)" {
                    rect width="6" height="6" fill="#fff" {}
                    line x1="0" y1="0" x2="0" y2="6" stroke="#000" stroke-width="3" {}
                }
            }
            @for (i, line) in s.lines.iter().enumerate() {
                @let y = ROW_H * i64::try_from(i).unwrap_or(0) + 4;
                text x="0" y=(y + 18) font-size="12" { (key_label(l, s, &line.key)) }
                rect x=(LABEL_W) y=(y) width=(bar(line.current)) height="12" fill="#222" {}
                text x=(LABEL_W + bar(line.current) + 4) y=(y + 11) font-size="11" { (figure_text(line.current, r.threshold)) }
                rect x=(LABEL_W) y=(y + 14) width=(bar(line.previous)) height="12" fill={ "url(#" (pattern) ")" } stroke="#000" stroke-width="1" {}
                text x=(LABEL_W + bar(line.previous) + 4) y=(y + 25) font-size="11" { (figure_text(line.previous, r.threshold)) }
            }
        }
    }
}

fn table(r: &Report, l: Lang, s: &Section) -> Markup {
    let t = r.threshold;
    html! {
        table {
            thead { tr {
                th scope="col" { (l.t(Msg::ReportWhat)) }
                th scope="col" { (l.t(Msg::ReportCount)) }
                th scope="col" { (l.t(Msg::ReportPrevious)) }
                th scope="col" { (l.t(Msg::ReportChange)) }
            } }
            tbody {
                @if let Some(total) = &s.total {
                    tr { th scope="row" { (l.t(Msg::ReportTotal)) }
                        td { (figure_text(total.current, t)) } td { (figure_text(total.previous, t)) } td { (change_text(total)) } }
                }
                @for line in &s.lines {
                    tr { th scope="row" { (key_label(l, s, &line.key)) }
                        td { (figure_text(line.current, t)) } td { (figure_text(line.previous, t)) } td { (change_text(line)) } }
                }
            }
        }
    }
}

fn parse_date(q: &HashMap<String, String>, name: &str) -> Result<Option<Date>, WebError> {
    match q.get(name).map(|s| s.trim()).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => {
            let format = time::macros::format_description!("[year]-[month]-[day]");
            Date::parse(s, format)
                .map(Some)
                .map_err(|_| WebError::BadInput(name.to_owned()))
        }
    }
}

/// `GET /reports`: the form and the report (`?from=YYYY-MM-DD&to=…&team=ID`), or its CSV
/// (`&format=csv`). Case managers see their teams', admins every team's.
pub(super) async fn reports_page(
    State(state): State<AppState>,
    user: WebUser,
    Query(q): Query<HashMap<String, String>>,
) -> Page {
    user.require(Ability::ReadReports)?;
    let today = OffsetDateTime::from_unix_timestamp(state.now())
        .map(|t| t.date())
        .unwrap_or(Date::MIN);
    let from = parse_date(&q, "from")?.unwrap_or_else(|| today.replace_day(1).unwrap_or(today));
    let to = parse_date(&q, "to")?.unwrap_or(today);
    let team = match q.get("team").map(|s| s.trim()).filter(|s| !s.is_empty()) {
        None => None,
        Some(t) => Some(Uuid::try_parse(t).map_err(|_| WebError::BadInput("team".to_owned()))?),
    };
    let period = Period::new(from, to)?;
    let (who, threshold) = (user.staff(), state.limits().report_threshold);
    let (report, teams) = state
        .db()
        .call_read(move |sql| {
            let report = reports::report(sql, Some(who), team, period, threshold)?;
            let visible = reports::visible_teams(sql, who)?;
            let teams: Vec<(Uuid, String)> = reports::team_names(sql)?
                .into_iter()
                .filter(|(id, _)| visible.as_ref().is_none_or(|v| v.contains(id)))
                .collect();
            Ok::<_, WebError>((report, teams))
        })
        .await?;
    let l = user.lang;
    if q.get("format").is_some_and(|f| f == "csv") {
        let name = format!("report-{}-{}.csv", period.from, period.to);
        return Ok((
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"{name}\""),
                ),
                (header::CACHE_CONTROL, "no-store".to_owned()),
            ],
            csv(&report, l),
        )
            .into_response());
    }
    let team_q = team.map(|t| t.to_string()).unwrap_or_default();
    let csv_href = format!(
        "/reports?from={}&to={}&team={team_q}&format=csv",
        period.from, period.to
    );
    let rule = l.count("report-rule", usize::try_from(threshold).unwrap_or(0));
    let body = html! {
        form.report method="get" action="/reports" {
            label for="from" { (l.t(Msg::ReportFrom)) }
            input #from type="date" name="from" value=(period.from.to_string()) required;
            label for="to" { (l.t(Msg::ReportTo)) }
            input #to type="date" name="to" value=(period.to.to_string()) required;
            label for="team" { (l.t(Msg::ReportTeam)) }
            select #team name="team" {
                option value="" selected[team.is_none()] {
                    @if user.role == fieldcase_core::protocol::Role::Admin { (l.t(Msg::ReportOffice)) } @else { (l.t(Msg::ReportMyTeams)) }
                }
                @for (id, name) in &teams {
                    option value=(id) selected[team == Some(*id)] { (for_page(name)) }
                }
            }
            button type="submit" { (l.t(Msg::ReportShow)) }
        }
        p.rule #report-rule { (rule) }
        p { (l.t(Msg::ReportPeriod)) ": " (report.period.from) " – " (report.period.to) " · "
            (l.t(Msg::ReportPrevious)) ": " (report.previous.from) " – " (report.previous.to) " · "
            (for_page(&scope_text(l, &report))) }
        p { a #report-csv href=(csv_href) download { (l.t(Msg::ReportCsv)) } }
        p.legend { "▮ " (l.t(Msg::ReportChartCurrent)) " · ▨ " (l.t(Msg::ReportChartPrevious)) }
        @for s in &report.sections {
            section.report-section id={ "report-" (s.name) } {
                h2 { (section_title(l, s)) }
                (chart(&report, l, s))
                (table(&report, l, s))
            }
        }
    };
    Ok(page(Some(&user), l, l.t(Msg::Reports), body))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_and_never_formulas() {
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("=1+1"), "'=1+1");
        assert_eq!(csv_field("< 5"), "< 5");
        assert_eq!(csv_field("-3"), "-3");
    }
}
