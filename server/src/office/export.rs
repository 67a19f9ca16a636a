//! The anonymised export in the shape of HTCDS / CTDC (`admin export htcds`): one CSV row per
//! case opened in a period, with HTCDS variable names and picklist values, read from the
//! sealed facts of the report index (no case document is decrypted), then made k-anonymous
//! over its quasi-identifiers ([`crate::office::anonymity`]).
//!
//! What a row holds: the year and quarter of registration (never a date), gender, the CTDC
//! age band at registration and the majority status it implies, citizenship, the HTCDS
//! exploitation and labour flags, the country of recruitment (the quasi-identifiers), and the
//! means of control, recruitment type, case status and reason for closure. No name, client
//! code, id, free text, team or place below a country. Rows are sorted by their text, so
//! their order says nothing of when or in which order the cases were opened.
//!
//! The file is written to a temporary file beside the target and renamed into place once
//! complete; an existing file is never replaced. Each export is audited
//! ([`crate::office::audit::action::HTCDS_EXPORTED`]) with its k and counts.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;

use fieldcase_core::model::Gender;
use time::Date;

use super::anonymity::{self, AgeBand, Anonymised, Place, QuasiIds, Step};
use super::audit;
use super::reports::Period;
use crate::error::ServerError;
use crate::storage::case_docs::CaseVault;
use crate::storage::report_index::{self, CaseFacts, Teams, facts};
use crate::storage::sql::Sql;

/// CTDC publishes with k = 11.
pub const DEFAULT_K: usize = 11;

/// Largest k taken: beyond it hardly a row of an NGO's caseload would remain.
pub const MAX_K: usize = 1000;

/// The HTCDS exploitation and labour flags, in the order of their columns.
pub const EXPLOITATION_FLAGS: [&str; 14] = [
    "isSexualExploit",
    "isForcedLabour",
    "isForcedMarriage",
    "isOtherExploit",
    "typeOfLabourAgriculture",
    "typeOfLabourAquafarming",
    "typeOfLabourBegging",
    "typeOfLabourConstruction",
    "typeOfLabourDomesticWork",
    "typeOfLabourHospitality",
    "typeOfLabourIllicitActivities",
    "typeOfLabourManufacturing",
    "typeOfLabourMiningOrDrilling",
    "typeOfLabourOther",
];

/// The HTCDS means-of-control flags, in the order of their columns.
pub const CONTROL_FLAGS: [&str; 13] = [
    "meansOfControlDebtBondage",
    "meansOfControlTakesEarnings",
    "meansOfControlThreats",
    "meansOfControlPsychologicalAbuse",
    "meansOfControlPhysicalAbuse",
    "meansOfControlSexualAbuse",
    "meansOfControlFalsePromises",
    "meansOfControlPsychoactiveSubstances",
    "meansOfControlRestrictsMovement",
    "meansOfControlWithholdsDocuments",
    "meansOfControlWithholdsNecessities",
    "meansOfControlThreatOfLawEnforcement",
    "meansOfControlOther",
];

/// Every column of the export, in order.
pub fn columns() -> Vec<&'static str> {
    let mut c = vec![
        "yearOfRegistration",
        "quarterOfRegistration",
        "gender",
        "ageBroad",
        "majorityStatus",
        "citizenship",
    ];
    c.extend(EXPLOITATION_FLAGS);
    c.push("countryOfRecruitment");
    c.extend(CONTROL_FLAGS);
    c.extend(["recruitmentType", "caseStatus", "reasonForClosure"]);
    c
}

/// What a row says beyond its quasi-identifiers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Other {
    /// The means-of-control flags that apply.
    pub means_of_control: BTreeSet<&'static str>,
    /// `recruitmentType`.
    pub recruitment_type: Option<String>,
    /// `caseStatus`.
    pub case_status: Option<String>,
    /// `reasonForClosure`.
    pub closure_reason: Option<String>,
}

/// One case as the export reads it, before anonymisation.
pub fn row_of(f: &CaseFacts) -> (QuasiIds, Other) {
    let opened = facts::date_of(f.opened);
    let p = &f.profile;
    let mut exploitation = BTreeSet::new();
    let mut other = Other {
        means_of_control: BTreeSet::new(),
        recruitment_type: None,
        case_status: None,
        closure_reason: None,
    };
    for (name, value) in p.htcds_fields() {
        match name {
            "recruitmentType" => other.recruitment_type = Some(value),
            "caseStatus" => other.case_status = Some(value),
            "reasonForClosure" => other.closure_reason = Some(value),
            n if EXPLOITATION_FLAGS.contains(&n) => {
                exploitation.insert(n);
            }
            n if CONTROL_FLAGS.contains(&n) => {
                other.means_of_control.insert(n);
            }
            // gender, citizenship, countryOfRecruitment: read typed below; the year of
            // birth is not in the facts.
            _ => {}
        }
    }
    let quasi = QuasiIds {
        year: opened.year(),
        quarter: Some(quarter(opened)),
        gender: p.gender,
        age: f.age_band.as_deref().and_then(AgeBand::parse),
        citizenship: Place::of(p.nationality),
        exploitation,
        recruitment_country: Place::of(p.recruitment_country),
    };
    (quasi, other)
}

/// The quarter of a date, 1 to 4.
pub fn quarter(d: Date) -> u8 {
    (u8::from(d.month()) - 1) / 3 + 1
}

/// The HTCDS picklist value of a gender.
pub fn gender_value(g: Gender) -> &'static str {
    match g {
        Gender::Female => "Woman",
        Gender::Male => "Man",
        Gender::Other => "Trans/Transgender/NonConforming",
    }
}

fn place_value(p: Place) -> String {
    match p {
        Place::NotRecorded => String::new(),
        Place::Country(c) => c.to_string(),
        Place::Other => "other".to_owned(),
    }
}

/// An export made: its rows (anonymised) and what was done to them.
#[derive(Debug, Clone)]
pub struct Export {
    /// The period of registration.
    pub period: Period,
    /// The k it was made with.
    pub k: usize,
    /// Cases opened in the period (of the teams asked for).
    pub cases: usize,
    /// The anonymised rows, the suppressed count and the generalisation.
    pub anonymised: Anonymised<Other>,
}

impl Export {
    /// Rows written.
    pub fn written(&self) -> usize {
        self.anonymised.rows.len()
    }

    /// Rows suppressed.
    pub fn suppressed(&self) -> usize {
        self.anonymised.suppressed
    }

    /// The generalisation steps applied.
    pub fn steps(&self) -> &[Step] {
        &self.anonymised.generalisation.steps
    }

    /// The CSV: a header of HTCDS names, then one line a row, lines sorted.
    pub fn csv(&self) -> String {
        let main_only = self
            .anonymised
            .generalisation
            .has(Step::MainExploitationTypes);
        let mut lines: Vec<String> = self
            .anonymised
            .rows
            .iter()
            .map(|(q, o)| line(q, o, main_only))
            .collect();
        lines.sort();
        let mut out = columns().join(",");
        out.push_str("\r\n");
        for l in lines {
            out.push_str(&l);
            out.push_str("\r\n");
        }
        out
    }

    /// What the command prints: counts and the generalisation applied.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "HTCDS export of cases registered {} to {}, k = {}: {} cases, {} rows written, \
             {} suppressed (in groups smaller than k).\n",
            self.period.from,
            self.period.to,
            self.k,
            self.cases,
            self.written(),
            self.suppressed()
        );
        if self.steps().is_empty() {
            s.push_str("Nothing generalised.\n");
        } else {
            s.push_str("Generalised:\n");
            for step in self.steps() {
                s.push_str(&format!("- {}\n", step.describe()));
            }
        }
        s
    }

    /// The audit detail: k, counts and steps (short, no case data).
    pub fn audit_detail(&self) -> String {
        let steps: Vec<&str> = self.steps().iter().map(Step::name).collect();
        let steps = if steps.is_empty() {
            "none".to_owned()
        } else {
            steps.join("+")
        };
        format!(
            "k={} cases={} written={} suppressed={} generalised={steps}",
            self.k,
            self.cases,
            self.written(),
            self.suppressed()
        )
    }
}

fn flag(on: bool, recorded: bool) -> &'static str {
    match (recorded, on) {
        (false, _) => "",
        (true, true) => "1",
        (true, false) => "0",
    }
}

/// One CSV line; every value comes from a fixed vocabulary or is a number or country code,
/// so none needs quoting.
fn line(q: &QuasiIds, o: &Other, main_only: bool) -> String {
    let mut v: Vec<String> = vec![
        q.year.to_string(),
        q.quarter.map(|n| format!("Q{n}")).unwrap_or_default(),
        q.gender.map(gender_value).unwrap_or_default().to_owned(),
        q.age.map(|a| a.label()).unwrap_or_default(),
        match q.age {
            Some(a) if a.is_child() => "Minor",
            Some(a) if a.lo >= 18 => "Adult",
            _ => "",
        }
        .to_owned(),
        place_value(q.citizenship),
    ];
    let exploited = !q.exploitation.is_empty();
    for f in EXPLOITATION_FLAGS {
        let labour_form = f.starts_with("typeOfLabour");
        let recorded = exploited && !(labour_form && main_only);
        v.push(flag(q.exploitation.contains(f), recorded).to_owned());
    }
    v.push(place_value(q.recruitment_country));
    let controlled = !o.means_of_control.is_empty();
    for f in CONTROL_FLAGS {
        v.push(flag(o.means_of_control.contains(f), controlled).to_owned());
    }
    for s in [&o.recruitment_type, &o.case_status, &o.closure_reason] {
        v.push(s.clone().unwrap_or_default());
    }
    v.join(",")
}

/// The export of the cases of `teams` registered in `period`, made k-anonymous; `k` from 2
/// to [`MAX_K`]. Reads the index only.
pub fn compute(
    sql: &mut dyn Sql,
    vault: &CaseVault,
    teams: &Teams,
    period: Period,
    k: usize,
) -> Result<Export, ServerError> {
    if !(2..=MAX_K).contains(&k) {
        return Err(ServerError::BadExport("k is from 2 to 1000"));
    }
    let facts = report_index::facts_opened(
        sql,
        vault,
        teams,
        period.from.to_julian_day(),
        period.to.to_julian_day(),
    )?;
    let rows: Vec<(QuasiIds, Other)> = facts.iter().map(row_of).collect();
    let cases = rows.len();
    Ok(Export {
        period,
        k,
        cases,
        anonymised: anonymity::anonymise(rows, k),
    })
}

/// Makes the export ([`compute`]), writes it to `out` (a new file: an existing one is
/// refused) and audits it at `now`, all or nothing: the file appears complete or not at all,
/// and when the file cannot be written the caller's transaction (holding the audit entry)
/// fails with it.
pub fn write(
    sql: &mut dyn Sql,
    vault: &CaseVault,
    teams: &Teams,
    period: Period,
    k: usize,
    out: &Path,
    now: i64,
) -> Result<Export, ServerError> {
    if out.exists() {
        return Err(ServerError::BadExport(
            "the output file exists; name a new one",
        ));
    }
    let dir = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if out.file_name().is_none() {
        return Err(ServerError::BadExport("the output is not a file name"));
    }
    let export = compute(sql, vault, teams, period, k)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".fieldcase-export-")
        .tempfile_in(dir)
        .map_err(ServerError::io("creating the export file"))?;
    tmp.write_all(export.csv().as_bytes())
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(ServerError::io("writing the export file"))?;
    audit::record_detail(
        sql,
        now,
        audit::action::HTCDS_EXPORTED,
        None,
        None,
        Some(&export.audit_detail()),
    )?;
    tmp.persist_noclobber(out)
        .map_err(|e| ServerError::io("writing the export file")(e.error))?;
    Ok(export)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use fieldcase_core::model::{
        ClientProfile, ExploitationType, LabourIndustry, MeansOfControl, RecruitmentMethod,
    };

    #[test]
    fn every_htcds_variable_of_a_profile_has_a_column() {
        let cols = columns();
        let mut profiles = Vec::new();
        for i in LabourIndustry::ALL {
            profiles.push(ClientProfile {
                exploitation: ExploitationType::ALL.to_vec(),
                labour_industry: Some(*i),
                means_of_control: MeansOfControl::ALL.to_vec(),
                recruitment_method: Some(RecruitmentMethod::Online),
                recruitment_country: "RS".parse().ok(),
                gender: Some(Gender::Other),
                nationality: "AL".parse().ok(),
                ..Default::default()
            });
        }
        for p in profiles {
            for (name, _) in p.htcds_fields() {
                assert!(cols.contains(&name), "{name} has no column");
            }
        }
        let unique: BTreeSet<&str> = cols.iter().copied().collect();
        assert_eq!(unique.len(), cols.len(), "a column twice");
    }

    #[test]
    fn quarters() {
        assert_eq!(quarter(time::macros::date!(2026 - 01 - 01)), 1);
        assert_eq!(quarter(time::macros::date!(2026 - 03 - 31)), 1);
        assert_eq!(quarter(time::macros::date!(2026 - 04 - 01)), 2);
        assert_eq!(quarter(time::macros::date!(2026 - 12 - 31)), 4);
    }
}
