//! The client profile that the IOM Human Trafficking Case Data Standard (HTCDS v2) calls core,
//! each field optional (`docs/htcds.md` maps every field to its HTCDS name). The year of birth
//! is kept, never a full birth date: a phone holds no more than statistics need.

use serde::{Deserialize, Serialize};

use super::{
    ClosureReason, Country, ExploitationType, Gender, HtcdsStatus, LabourIndustry, MeansOfControl,
    RecruitmentMethod, ValidationError,
};

/// The client's profile, every field optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientProfile {
    /// Gender.
    #[serde(default)]
    pub gender: Option<Gender>,
    /// Year of birth (never the date).
    #[serde(default)]
    pub birth_year: Option<i32>,
    /// Nationality.
    #[serde(default)]
    pub nationality: Option<Country>,
    /// Types of exploitation, sorted.
    #[serde(default)]
    pub exploitation: Vec<ExploitationType>,
    /// The industry, where the exploitation was labour.
    #[serde(default)]
    pub labour_industry: Option<LabourIndustry>,
    /// Means of control, sorted.
    #[serde(default)]
    pub means_of_control: Vec<MeansOfControl>,
    /// How the client was recruited.
    #[serde(default)]
    pub recruitment_method: Option<RecruitmentMethod>,
    /// Where the client was recruited.
    #[serde(default)]
    pub recruitment_country: Option<Country>,
    /// The case's status as HTCDS names it.
    #[serde(default)]
    pub htcds_status: Option<HtcdsStatus>,
    /// Why the case was closed.
    #[serde(default)]
    pub closure_reason: Option<ClosureReason>,
}

impl ClientProfile {
    /// Earliest year of birth taken.
    pub const EARLIEST_BIRTH_YEAR: i32 = 1900;

    /// Checks the profile: a year of birth between 1900 and `this_year`, an industry only
    /// beside labour exploitation, a reason for closure only on a closed case, lists without
    /// repeats and within their vocabularies' sizes.
    pub fn validate(&self, this_year: i32) -> Result<(), ValidationError> {
        if let Some(y) = self.birth_year
            && !(Self::EARLIEST_BIRTH_YEAR..=this_year).contains(&y)
        {
            return Err(ValidationError::TimeOutOfRange {
                field: "year of birth",
            });
        }
        if self.labour_industry.is_some() && !self.exploitation.contains(&ExploitationType::Labour)
        {
            return Err(ValidationError::Inconsistent {
                rule: "an industry is recorded only for labour exploitation",
            });
        }
        let closed = matches!(
            self.htcds_status,
            Some(HtcdsStatus::Closed | HtcdsStatus::ClosedReferred)
        );
        if self.closure_reason.is_some() && !closed {
            return Err(ValidationError::Inconsistent {
                rule: "a reason for closure is recorded only for a closed case",
            });
        }
        super::validation::at_most(
            "types of exploitation",
            self.exploitation.len(),
            ExploitationType::ALL.len(),
        )?;
        super::validation::at_most(
            "means of control",
            self.means_of_control.len(),
            MeansOfControl::ALL.len(),
        )?;
        Ok(())
    }

    /// The profile with its lists sorted and without repeats (how it is stored and read).
    pub fn normalized(mut self) -> Self {
        self.exploitation.sort();
        self.exploitation.dedup();
        self.means_of_control.sort();
        self.means_of_control.dedup();
        self
    }

    /// True when no field is recorded.
    pub fn is_empty(&self) -> bool {
        self == &ClientProfile::default()
    }
}

/// The HTCDS v2 name of one exploitation type: the flag it sets and, for forms HTCDS files as
/// labour, the type of labour.
fn exploitation_flags(t: ExploitationType) -> &'static [&'static str] {
    match t {
        ExploitationType::Sexual => &["isSexualExploit"],
        ExploitationType::Labour => &["isForcedLabour"],
        ExploitationType::ForcedMarriage => &["isForcedMarriage"],
        ExploitationType::ForcedCriminality => &["isForcedLabour", "typeOfLabourIllicitActivities"],
        ExploitationType::Begging => &["isForcedLabour", "typeOfLabourBegging"],
        ExploitationType::Other => &["isOtherExploit"],
    }
}

fn labour_flag(i: LabourIndustry) -> &'static str {
    match i {
        LabourIndustry::Agriculture => "typeOfLabourAgriculture",
        LabourIndustry::Construction => "typeOfLabourConstruction",
        LabourIndustry::DomesticWork => "typeOfLabourDomesticWork",
        LabourIndustry::Manufacturing => "typeOfLabourManufacturing",
        LabourIndustry::Hospitality => "typeOfLabourHospitality",
        LabourIndustry::Fishing => "typeOfLabourAquafarming",
        LabourIndustry::Mining => "typeOfLabourMiningOrDrilling",
        LabourIndustry::Other => "typeOfLabourOther",
    }
}

fn control_flag(m: MeansOfControl) -> &'static str {
    match m {
        MeansOfControl::DebtBondage => "meansOfControlDebtBondage",
        MeansOfControl::TakesEarnings => "meansOfControlTakesEarnings",
        MeansOfControl::Threats | MeansOfControl::ThreatsToFamily => "meansOfControlThreats",
        MeansOfControl::PsychologicalAbuse => "meansOfControlPsychologicalAbuse",
        MeansOfControl::PhysicalAbuse => "meansOfControlPhysicalAbuse",
        MeansOfControl::SexualAbuse => "meansOfControlSexualAbuse",
        MeansOfControl::FalsePromises => "meansOfControlFalsePromises",
        MeansOfControl::Substances => "meansOfControlPsychoactiveSubstances",
        MeansOfControl::RestrictsMovement => "meansOfControlRestrictsMovement",
        MeansOfControl::WithholdsDocuments => "meansOfControlWithholdsDocuments",
        MeansOfControl::WithholdsNecessities => "meansOfControlWithholdsNecessities",
        MeansOfControl::ThreatOfAuthorities => "meansOfControlThreatOfLawEnforcement",
        MeansOfControl::Other => "meansOfControlOther",
    }
}

impl ClientProfile {
    /// The profile as HTCDS v2 variables, for reports and the export: each recorded field under
    /// its HTCDS name (`docs/htcds.md`), in a stable order; the flag variables of
    /// exploitation, labour and means of control as `"1"`, each once. Fields not recorded are
    /// left out (an export writes them as missing).
    pub fn htcds_fields(&self) -> Vec<(&'static str, String)> {
        let mut out: Vec<(&'static str, String)> = Vec::new();
        if let Some(g) = self.gender {
            out.push(("gender", g.as_str().to_owned()));
        }
        if let Some(y) = self.birth_year {
            out.push(("yearOfBirth", y.to_string()));
        }
        if let Some(c) = self.nationality {
            out.push(("citizenship", c.to_string()));
        }
        let mut flags: Vec<&'static str> = Vec::new();
        for t in &self.exploitation {
            flags.extend(exploitation_flags(*t));
        }
        flags.extend(self.labour_industry.map(labour_flag));
        flags.extend(self.means_of_control.iter().map(|m| control_flag(*m)));
        let mut seen = std::collections::BTreeSet::new();
        for f in flags {
            if seen.insert(f) {
                out.push((f, "1".to_owned()));
            }
        }
        if let Some(m) = self.recruitment_method {
            out.push(("recruitmentType", m.as_str().to_owned()));
        }
        if let Some(c) = self.recruitment_country {
            out.push(("countryOfRecruitment", c.to_string()));
        }
        if let Some(s) = self.htcds_status {
            out.push(("caseStatus", s.as_str().to_owned()));
        }
        if let Some(r) = self.closure_reason {
            out.push(("reasonForClosure", r.as_str().to_owned()));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn htcds_variables_each_once() {
        let p = ClientProfile {
            gender: Some(Gender::Female),
            birth_year: Some(1999),
            nationality: "RS".parse().ok(),
            exploitation: vec![ExploitationType::Labour, ExploitationType::Begging],
            labour_industry: Some(LabourIndustry::Agriculture),
            means_of_control: vec![MeansOfControl::Threats, MeansOfControl::ThreatsToFamily],
            ..Default::default()
        };
        let names: Vec<&str> = p.htcds_fields().iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names,
            [
                "gender",
                "yearOfBirth",
                "citizenship",
                "isForcedLabour",
                "typeOfLabourBegging",
                "typeOfLabourAgriculture",
                "meansOfControlThreats"
            ]
        );
        assert!(ClientProfile::default().htcds_fields().is_empty());
    }
}
