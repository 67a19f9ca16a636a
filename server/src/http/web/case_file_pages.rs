//! The case file for court in the browser: the form on the case page that picks what goes in it,
//! and the printable page itself (its own print style sheet: A4, page numbers "n / N" in the
//! margin, a running header with the client code, the date and "confidential" on every page).
//!
//! PDF comes from the browser's own "Save as PDF": it lays out Serbian in either script with the
//! fonts the office machine has, breaks pages and numbers them. A PDF made on the server would
//! need a typesetting engine and fonts shipped in the binary for the same result.

use axum::Form;
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use fieldcase_core::ids::NoteId;
use fieldcase_core::model::Case;
use maud::{DOCTYPE, Markup, html};

use super::auth::{WebError, WebUser};
use super::headers::secure_headers;
use super::i18n::{Lang, Msg, belgrade, belgrade_unix};
use super::layout::{Names, Page, csrf_field, name_of, parse_case, user_names};
use super::plan_pages::{plan_section, profile_section, show_date};
use crate::display::for_page;
use crate::http::state::AppState;
use crate::office::access::Ability;
use crate::office::case_file::{self, CaseFile, CaseFileRequest, Sections};

/// How much of a note the picking form shows.
const PREVIEW_CHARS: usize = 120;

/// The case page's section that prepares a case file: the sections (all by default) and the
/// visit notes (none by default) to include. The file opens in a new tab.
pub(super) fn picker_section(l: Lang, user: &WebUser, case: &Case, names: &Names) -> Markup {
    let mut notes: Vec<_> = case.notes.iter().collect();
    notes.sort_by_key(|n| n.written_at);
    html! {
        section #case-file-box aria-labelledby="case-file-h" {
            details {
                summary #case-file-h { (l.t(Msg::CaseFile)) }
                p.hint { (l.t(Msg::CaseFileIntro)) }
                form.task #case-file-form method="post" action={ "/cases/" (case.id) "/case-file" } target="_blank" {
                    (csrf_field(user))
                    fieldset { legend { (l.t(Msg::CaseFileSections)) }
                        label.check { input type="checkbox" name="section" value="summary" checked; " " (l.t(Msg::Summary)) }
                        label.check { input type="checkbox" name="section" value="plan" checked; " " (l.t(Msg::Plan)) }
                        label.check { input type="checkbox" name="section" value="accompaniments" checked; " " (l.t(Msg::Accompaniments)) }
                    }
                    fieldset { legend { (l.t(Msg::CaseFileNotes)) }
                        @if notes.is_empty() { p { (l.t(Msg::Nothing)) } }
                        @for n in &notes {
                            label.check { input type="checkbox" name="note" value=(n.id);
                                " " time { (belgrade(n.written_at)) } " · " (name_of(names, &n.author.user)) " · "
                                (for_page(&preview(&n.body)))
                            }
                        }
                    }
                    button #prepare-case-file type="submit" { (l.t(Msg::PrepareCaseFile)) }
                }
            }
        }
    }
}

/// The start of a note's text, on one line.
fn preview(body: &str) -> String {
    let line: String = body.split_whitespace().collect::<Vec<_>>().join(" ");
    match line.char_indices().nth(PREVIEW_CHARS) {
        Some((at, _)) => format!("{}…", &line[..at]),
        None => line,
    }
}

/// The form's choice: the sections ticked and the notes ticked.
fn request(form: &[(String, String)]) -> Result<CaseFileRequest, WebError> {
    let mut sections = Sections {
        summary: false,
        plan: false,
        accompaniments: false,
    };
    let mut notes = Vec::new();
    for (name, value) in form {
        match (name.as_str(), value.as_str()) {
            ("section", "summary") => sections.summary = true,
            ("section", "plan") => sections.plan = true,
            ("section", "accompaniments") => sections.accompaniments = true,
            ("section", _) => return Err(WebError::BadInput("section".to_owned())),
            ("note", id) => notes.push(
                id.parse::<NoteId>()
                    .map_err(|_| WebError::BadInput("note".to_owned()))?,
            ),
            _ => {}
        }
        if notes.len() > case_file::MAX_NOTES {
            return Err(WebError::BadInput("note".to_owned()));
        }
    }
    Ok(CaseFileRequest { sections, notes })
}

/// Prepares the case file asked for (checked, read and audited as one act) and shows it ready
/// to print.
pub(super) async fn case_file(
    State(state): State<AppState>,
    user: WebUser,
    Path(id): Path<String>,
    Form(form): Form<Vec<(String, String)>>,
) -> Page {
    user.require(Ability::ChangeTeamCases)?;
    let csrf = form
        .iter()
        .find(|(n, _)| n == "csrf")
        .map(|(_, v)| v.as_str());
    user.check_csrf(csrf)?;
    let case = parse_case(&id)?;
    let asked = request(&form)?;
    let (vault, who, now) = (state.vault().clone(), user.staff(), state.now());
    let (file, names) = state
        .db()
        .call_write(move |sql| {
            let file = case_file::prepare(sql, &vault, who, case, &asked, now)?;
            Ok::<_, crate::error::ServerError>((file, user_names(sql)?))
        })
        .await?;
    Ok((secure_headers(), printable(user.lang, &user, &file, &names)).into_response())
}

/// The printable page. The running header sits in a table header, which the browser repeats
/// at the top of every printed page.
fn printable(l: Lang, user: &WebUser, file: &CaseFile, names: &Names) -> Markup {
    let case = &file.case;
    let s = file.sections;
    let printed = belgrade_unix(Some(file.printed_at));
    let mut tasks: Vec<_> = case.tasks.iter().collect();
    tasks.sort_by_key(|t| (t.scheduled_at, t.id));
    html! {
        (DOCTYPE)
        html lang=(l.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (l.t(Msg::CaseFile)) " · " (for_page(&case.client_code)) }
                link rel="stylesheet" href="/static/print.css";
                script src="/static/web.js" defer {}
            }
            body.case-file {
                nav.screen-only {
                    button #print-now type="button" { (l.t(Msg::PrintNow)) }
                    " " a href={ "/cases/" (case.id) } { (l.t(Msg::BackToCase)) }
                }
                table.frame {
                    thead { tr { td { div.running {
                        span { (l.t(Msg::CaseFile)) " · " strong { (for_page(&case.client_code)) } }
                        span { (l.t(Msg::PreparedOn)) " " (printed) }
                    } } } }
                    tbody { tr { td {
                        h1 { (l.t(Msg::CaseFile)) " · " (for_page(&case.client_code)) }
                        p.prepared #prepared { (l.t(Msg::PreparedOn)) " " (printed) " · " (l.t(Msg::By)) " " (user.name)
                            " · " (l.t(Msg::Team)) " " (for_page(&file.team)) }
                        p.confidential role="note" { (l.t(Msg::CaseFileConfidential)) }
                        @if s.summary {
                            section #file-summary aria-labelledby="file-summary-h" {
                                h2 #file-summary-h { (l.t(Msg::Summary)) }
                                dl.profile {
                                    dt { (l.t(Msg::Client)) } dd { (for_page(&case.client_code)) }
                                    dt { (l.t(Msg::Status)) } dd { (l.v(case.status)) }
                                    dt { (l.t(Msg::OpenedOn)) } dd { (belgrade(case.created_at)) }
                                    dt { (l.t(Msg::Consent)) } dd { (l.v(case.consent)) }
                                    dt { (l.t(Msg::RiskLevel)) } dd { (l.v(case.risk_level)) }
                                    dt { (l.t(Msg::LegalStatus)) } dd { (l.v(case.legal_status)) }
                                    dt { (l.t(Msg::Assignees)) } dd {
                                        @for (i, w) in case.assigned_workers.iter().enumerate() { @if i > 0 { ", " } (name_of(names, w)) }
                                    }
                                }
                                (profile_section(l, user, case, false))
                            }
                        }
                        @if s.plan { (plan_section(l, user, case, names, &[], false)) }
                        @if s.accompaniments {
                            section #file-accompaniments aria-labelledby="file-accompaniments-h" {
                                h2 #file-accompaniments-h { (l.t(Msg::Accompaniments)) }
                                @if tasks.is_empty() { p { (l.t(Msg::Nothing)) } }
                                @else {
                                    table.accompaniments {
                                        thead { tr {
                                            th { (l.t(Msg::Date)) } th { (l.t(Msg::OfficeKind)) } th { (l.t(Msg::OfficeName)) }
                                            th { (l.t(Msg::Purpose)) } th { (l.t(Msg::Status)) } th { (l.t(Msg::Outcome)) }
                                        } }
                                        tbody { @for t in &tasks { tr.accompaniment {
                                            td { (belgrade(t.scheduled_at)) }
                                            td { (l.v(t.office_kind)) }
                                            td { (for_page(&t.office_name)) }
                                            td { (for_page(&t.purpose)) }
                                            td { (l.v(t.status)) }
                                            td {
                                                (t.outcome.as_deref().map(for_page).unwrap_or_default())
                                                @if let Some(f) = t.follow_up { " · " (l.t(Msg::FollowUp)) ": " (show_date(f)) }
                                            }
                                        } } }
                                    }
                                }
                            }
                        }
                        section #file-notes aria-labelledby="file-notes-h" {
                            h2 #file-notes-h { (l.t(Msg::Notes)) }
                            @if file.notes.is_empty() { p { (l.t(Msg::NoNotesSelected)) } }
                            @for n in &file.notes {
                                article.note data-note=(n.id) {
                                    p.meta { strong { (l.t(Msg::VisitNote)) } " · " time { (belgrade(n.written_at)) }
                                        " · " (l.t(Msg::By)) " " (name_of(names, &n.author.user)) }
                                    p.body { (for_page(&n.body)) }
                                    @if !n.tags.is_empty() {
                                        p.tags { @for (i, t) in n.tags.iter().enumerate() { @if i > 0 { ", " } (l.v(*t)) } }
                                    }
                                }
                            }
                        }
                        p.end { (l.t(Msg::CaseFileEnd)) }
                    } } }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect()
    }

    #[test]
    fn the_form_gives_the_sections_and_notes_ticked_and_refuses_anything_else() {
        let note = NoteId::new();
        let asked = request(&form(&[
            ("csrf", "x"),
            ("section", "plan"),
            ("note", &note.to_string()),
        ]))
        .unwrap();
        assert_eq!(asked.sections.names(), vec!["plan"]);
        assert_eq!(asked.notes, vec![note]);
        assert!(request(&form(&[("section", "everything")])).is_err());
        assert!(request(&form(&[("note", "not-an-id")])).is_err());
        let many: Vec<(String, String)> = (0..=case_file::MAX_NOTES)
            .map(|_| ("note".to_owned(), NoteId::new().to_string()))
            .collect();
        assert!(request(&many).is_err());
    }

    #[test]
    fn a_preview_is_one_line_and_cut_on_a_character() {
        assert_eq!(preview("Sud\n\nu  Beogradu"), "Sud u Beogradu");
        let long = "ћ".repeat(PREVIEW_CHARS + 5);
        let shown = preview(&long);
        assert_eq!(shown.chars().count(), PREVIEW_CHARS + 1);
        assert!(shown.ends_with('…'));
    }
}
