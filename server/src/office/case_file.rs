//! The case file for court: what a case manager chooses to put on paper for a hearing (the
//! case's summary, its recovery plan, its accompaniments, and the visit notes she selects), read
//! and audited as one act.
//!
//! A case file leaves the office on paper, so it is a disclosure, not a glance: only the people
//! of the case's team who may change it prepare one (a break-glass read does not), the notes are
//! the ones picked by id (none by default), and the audit entry names exactly what was included
//! (sections, then the note ids a few per entry), in the same transaction as the read. A note id the case does not
//! hold refuses the whole file, so nothing is read and nothing is audited.

use fieldcase_core::ids::{CaseId, NoteId};
use fieldcase_core::model::{Case, VisitNote};

use super::access::{self, Staff};
use super::{audit, cases};
use crate::error::ServerError;
use crate::storage::case_docs::CaseVault;
use crate::storage::sql::Sql;

/// The audit action of a case file prepared for print. It starts with `case_read` like every
/// other read of case content; its detail names the case, the sections and the notes included.
pub const CASE_FILE_READ: &str = "case_read_case_file";

/// The audit action that follows [`CASE_FILE_READ`] for the notes included, a few ids per entry
/// (an entry's detail is bounded): its detail is the case id and the note ids.
pub const CASE_FILE_NOTES: &str = "case_file_notes";

/// How many note ids one [`CASE_FILE_NOTES`] entry names (with the case id, within the audit
/// log's bound on a detail).
const NOTES_PER_ENTRY: usize = 4;

/// The most notes one case file may hold: a file for a hearing holds the notes that matter to
/// it, and the audit entries naming them stay bounded.
pub const MAX_NOTES: usize = 200;

/// The parts of a case file besides the selected notes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sections {
    /// The case's status, consent, risk, legal status, workers and client profile.
    pub summary: bool,
    /// The individual recovery plan: goals, services given, reviews.
    pub plan: bool,
    /// The accompaniments (tasks): where, when, why, and what came of them.
    pub accompaniments: bool,
}

impl Sections {
    /// Every section.
    pub const ALL: Sections = Sections {
        summary: true,
        plan: true,
        accompaniments: true,
    };

    /// The names of the sections included, as the audit entry records them.
    pub fn names(self) -> Vec<&'static str> {
        [
            (self.summary, "summary"),
            (self.plan, "plan"),
            (self.accompaniments, "accompaniments"),
        ]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect()
    }
}

/// What a case manager asks to print.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseFileRequest {
    /// The sections to include.
    pub sections: Sections,
    /// The visit notes to include, by id (in any order; each at most once in the file).
    pub notes: Vec<NoteId>,
}

/// A case file as read for print.
#[derive(Debug, Clone)]
pub struct CaseFile {
    /// The case, whole: the page shows only the sections asked for.
    pub case: Case,
    /// The sections to show.
    pub sections: Sections,
    /// The selected notes, oldest first (notes of the same time in the order the case holds them).
    pub notes: Vec<VisitNote>,
    /// The name of the case's team.
    pub team: String,
    /// When it was prepared (Unix seconds).
    pub printed_at: i64,
}

/// Reads a case file of `case` for `who` and audits what it holds. Refused with
/// [`ServerError::OutsideTeam`] unless `who` is on the case's team and may change its cases,
/// with [`ServerError::NotAllowed`] for a role that changes no case, with
/// [`ServerError::UnknownNote`] when a note asked for is not the case's (or is asked twice past
/// [`MAX_NOTES`]), and [`ServerError::UnknownCase`] for an erased or unknown case: in each, nothing
/// is audited.
pub fn prepare(
    sql: &mut dyn Sql,
    vault: &CaseVault,
    who: Staff,
    case_id: CaseId,
    request: &CaseFileRequest,
    now: i64,
) -> Result<CaseFile, ServerError> {
    if cases::is_erased(sql, case_id)? {
        return Err(ServerError::UnknownCase);
    }
    access::require_change(sql, who, case_id)?;
    if request.notes.len() > MAX_NOTES {
        return Err(ServerError::UnknownNote);
    }
    let (case, _) = cases::read_case(sql, vault, case_id)?;
    let mut wanted = request.notes.clone();
    wanted.sort();
    wanted.dedup();
    let mut notes: Vec<VisitNote> = case
        .notes
        .iter()
        .filter(|n| wanted.binary_search(&n.id).is_ok())
        .cloned()
        .collect();
    if notes.len() != wanted.len() {
        return Err(ServerError::UnknownNote);
    }
    notes.sort_by_key(|n| n.written_at);
    let team_id = super::teams::team_of_case(sql, case_id)?;
    let team = super::teams::list_teams(sql)?
        .into_iter()
        .find(|t| t.id == team_id)
        .map(|t| t.name)
        .unwrap_or_default();
    let detail = format!(
        "{case_id} sections={} notes={}",
        request.sections.names().join(","),
        notes.len()
    );
    audit::record_detail(sql, now, CASE_FILE_READ, Some(&who.id), None, Some(&detail))?;
    for some in notes.chunks(NOTES_PER_ENTRY) {
        let ids: Vec<String> = some.iter().map(|n| n.id.to_string()).collect();
        let detail = format!("{case_id} {}", ids.join(","));
        audit::record_detail(
            sql,
            now,
            CASE_FILE_NOTES,
            Some(&who.id),
            None,
            Some(&detail),
        )?;
    }
    Ok(CaseFile {
        case,
        sections: request.sections,
        notes,
        team,
        printed_at: now,
    })
}
