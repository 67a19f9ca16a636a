//! k-anonymity over the quasi-identifiers of the anonymised export: what someone who knows a
//! client could know of her (when she came to the NGO, gender, age, citizenship, how she was
//! exploited, where she was recruited), generalised in steps over the whole export and then,
//! for the rows still in a group of fewer than `k`, suppressed.
//!
//! The steps, in order of how much they lose: countries seen fewer than `k` times in the
//! export become `other`; the quarter of registration goes, leaving the year; ages go into
//! wider bands (0-17, 18-29, 30-47, 48+, each a union of CTDC bands); the forms of labour
//! exploitation go, leaving the HTCDS main types; ages go to under 18 or 18 and over. Each step
//! applies to every row (global recoding: one mapping for the whole export, so a value means
//! the same in every row). The first level at which at most [`MAX_SUPPRESSED_PERCENT`] of the
//! rows would be suppressed is taken; when none is, the level that suppresses fewest.
//!
//! Not a defence against everything: k-anonymity says nothing of the other columns within a
//! group (eleven rows that all share a means of control disclose it), nor of two exports of
//! overlapping periods read together.

use std::collections::{BTreeSet, HashMap};

use fieldcase_core::model::{Country, Gender};

/// The rows an export may suppress before a further step of generalisation is not applied:
/// 5 %.
pub const MAX_SUPPRESSED_PERCENT: usize = 5;

/// An age band: from `lo` years to `hi` included, or `lo` and over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AgeBand {
    /// Youngest age in it.
    pub lo: u8,
    /// Oldest age in it; `None` for "and over".
    pub hi: Option<u8>,
}

impl AgeBand {
    /// The band `lo` to `hi`.
    pub const fn new(lo: u8, hi: Option<u8>) -> AgeBand {
        AgeBand { lo, hi }
    }

    /// As CTDC writes it: `9-17`, `48+`.
    pub fn label(&self) -> String {
        match self.hi {
            Some(hi) => format!("{}-{hi}", self.lo),
            None => format!("{}+", self.lo),
        }
    }

    /// Reads a label written by [`AgeBand::label`].
    pub fn parse(s: &str) -> Option<AgeBand> {
        if let Some(lo) = s.strip_suffix('+') {
            return Some(AgeBand::new(lo.parse().ok()?, None));
        }
        let (lo, hi) = s.split_once('-')?;
        let (lo, hi): (u8, u8) = (lo.parse().ok()?, hi.parse().ok()?);
        (lo <= hi).then_some(AgeBand::new(lo, Some(hi)))
    }

    /// Whether every age of `other` lies in this band.
    pub fn contains(&self, other: &AgeBand) -> bool {
        let upper_ok = match (self.hi, other.hi) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(a), Some(b)) => b <= a,
        };
        self.lo <= other.lo && upper_ok
    }

    /// Whether the band lies under 18.
    pub fn is_child(&self) -> bool {
        self.hi.is_some_and(|hi| hi < 18)
    }
}

/// The wider age bands of the third step, each a union of CTDC bands.
pub const WIDE_BANDS: [AgeBand; 4] = [
    AgeBand::new(0, Some(17)),
    AgeBand::new(18, Some(29)),
    AgeBand::new(30, Some(47)),
    AgeBand::new(48, None),
];

/// Under 18, 18 and over: the last step.
pub const MAJORITY_BANDS: [AgeBand; 2] = [AgeBand::new(0, Some(17)), AgeBand::new(18, None)];

/// The band of `bands` that holds `band`'s youngest age (bands as given when none does).
fn widen(band: AgeBand, bands: &[AgeBand]) -> AgeBand {
    bands
        .iter()
        .copied()
        .find(|b| b.lo <= band.lo && b.hi.is_none_or(|hi| band.lo <= hi))
        .unwrap_or(band)
}

/// A country as exported: recorded, grouped with the rare ones, or not recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Place {
    /// Not recorded.
    NotRecorded,
    /// This country.
    Country(Country),
    /// A country seen fewer than `k` times in the export.
    Other,
}

impl Place {
    /// The place of an optional country.
    pub fn of(c: Option<Country>) -> Place {
        c.map_or(Place::NotRecorded, Place::Country)
    }
}

/// What an export row says that someone who knows the client could know.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QuasiIds {
    /// Year of registration (the case's opening).
    pub year: i32,
    /// Quarter of registration, 1 to 4; `None` once generalised to the year.
    pub quarter: Option<u8>,
    /// Gender.
    pub gender: Option<Gender>,
    /// Age band at registration.
    pub age: Option<AgeBand>,
    /// Citizenship.
    pub citizenship: Place,
    /// The HTCDS exploitation flags that apply (`isForcedLabour`, `typeOfLabourBegging`…).
    pub exploitation: BTreeSet<&'static str>,
    /// Country of recruitment.
    pub recruitment_country: Place,
}

/// One step of generalisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Step {
    /// Countries seen fewer than `k` times (citizenship, country of recruitment) as `other`.
    RareCountries,
    /// The quarter of registration dropped: the year only.
    YearOnly,
    /// Ages in the bands 0-17, 18-29, 30-47, 48+.
    WideAgeBands,
    /// The forms of labour (`typeOfLabour…`) dropped: the main types of exploitation only.
    MainExploitationTypes,
    /// Ages as under 18 or 18 and over.
    MajorityOnly,
}

impl Step {
    /// Every step, in the order they are applied.
    pub const LADDER: [Step; 5] = [
        Step::RareCountries,
        Step::YearOnly,
        Step::WideAgeBands,
        Step::MainExploitationTypes,
        Step::MajorityOnly,
    ];

    /// Stable short name (command output, audit detail).
    pub fn name(&self) -> &'static str {
        match self {
            Step::RareCountries => "rare-countries",
            Step::YearOnly => "year",
            Step::WideAgeBands => "age-wide",
            Step::MainExploitationTypes => "exploitation-main",
            Step::MajorityOnly => "age-majority",
        }
    }

    /// What it does, for a person.
    pub fn describe(&self) -> &'static str {
        match self {
            Step::RareCountries => "countries seen fewer than k times written as other",
            Step::YearOnly => "the year of registration without its quarter",
            Step::WideAgeBands => "ages in the bands 0-17, 18-29, 30-47, 48+",
            Step::MainExploitationTypes => {
                "the main types of exploitation without the forms of labour"
            }
            Step::MajorityOnly => "ages as 0-17 or 18+",
        }
    }
}

/// The generalisation applied to every row of an export.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Generalisation {
    /// The steps applied, in order.
    pub steps: Vec<Step>,
    /// Citizenships written as `other`.
    pub rare_citizenships: BTreeSet<Country>,
    /// Countries of recruitment written as `other`.
    pub rare_recruitment_countries: BTreeSet<Country>,
}

impl Generalisation {
    /// Whether `step` is applied.
    pub fn has(&self, step: Step) -> bool {
        self.steps.contains(&step)
    }

    /// `q` as exported under this generalisation.
    pub fn apply(&self, q: &QuasiIds) -> QuasiIds {
        let place = |p: Place, rare: &BTreeSet<Country>| match p {
            Place::Country(c) if rare.contains(&c) => Place::Other,
            p => p,
        };
        let mut age = q.age;
        if self.has(Step::WideAgeBands) {
            age = age.map(|a| widen(a, &WIDE_BANDS));
        }
        if self.has(Step::MajorityOnly) {
            age = age.map(|a| widen(a, &MAJORITY_BANDS));
        }
        QuasiIds {
            year: q.year,
            quarter: q.quarter.filter(|_| !self.has(Step::YearOnly)),
            gender: q.gender,
            age,
            citizenship: place(q.citizenship, &self.rare_citizenships),
            exploitation: if self.has(Step::MainExploitationTypes) {
                q.exploitation
                    .iter()
                    .copied()
                    .filter(|f| f.starts_with("is"))
                    .collect()
            } else {
                q.exploitation.clone()
            },
            recruitment_country: place(q.recruitment_country, &self.rare_recruitment_countries),
        }
    }
}

/// The outcome: the rows kept (generalised, in the order given, less those suppressed), how
/// many were suppressed, the generalisation applied.
#[derive(Debug, Clone)]
pub struct Anonymised<T> {
    /// The rows kept, their quasi-identifiers generalised.
    pub rows: Vec<(QuasiIds, T)>,
    /// Rows suppressed: in a group smaller than `k` after generalisation.
    pub suppressed: usize,
    /// What was generalised.
    pub generalisation: Generalisation,
}

/// The countries seen fewer than `k` times among `places`.
fn rare(places: impl Iterator<Item = Place>, k: usize) -> BTreeSet<Country> {
    let mut seen: HashMap<Country, usize> = HashMap::new();
    for p in places {
        if let Place::Country(c) = p {
            *seen.entry(c).or_insert(0) += 1;
        }
    }
    seen.into_iter()
        .filter(|(_, n)| *n < k)
        .map(|(c, _)| c)
        .collect()
}

/// The generalisation of the first `level` steps of the ladder over `rows`.
fn at_level<T>(rows: &[(QuasiIds, T)], level: usize, k: usize) -> Generalisation {
    let steps: Vec<Step> = Step::LADDER.iter().copied().take(level).collect();
    let mut g = Generalisation::default();
    if steps.contains(&Step::RareCountries) {
        g.rare_citizenships = rare(rows.iter().map(|(q, _)| q.citizenship), k);
        g.rare_recruitment_countries = rare(rows.iter().map(|(q, _)| q.recruitment_country), k);
    }
    g.steps = steps;
    g
}

/// Which rows `g` leaves in a group smaller than `k`.
fn small_groups<T>(rows: &[(QuasiIds, T)], g: &Generalisation, k: usize) -> Vec<bool> {
    let general: Vec<QuasiIds> = rows.iter().map(|(q, _)| g.apply(q)).collect();
    let mut sizes: HashMap<&QuasiIds, usize> = HashMap::new();
    for q in &general {
        *sizes.entry(q).or_insert(0) += 1;
    }
    general.iter().map(|q| sizes[q] < k).collect()
}

/// Makes `rows` k-anonymous over their quasi-identifiers: generalised step by step until at
/// most [`MAX_SUPPRESSED_PERCENT`] of them would be suppressed (or as far as the ladder goes),
/// then the rows still in groups smaller than `k` suppressed. Every row kept shares its
/// quasi-identifiers with at least `k - 1` other kept rows. `k` below 2 is taken as 2.
pub fn anonymise<T>(rows: Vec<(QuasiIds, T)>, k: usize) -> Anonymised<T> {
    let k = k.max(2);
    let allowed = rows.len() * MAX_SUPPRESSED_PERCENT / 100;
    let mut best: Option<(usize, Generalisation, Vec<bool>)> = None;
    for level in 0..=Step::LADDER.len() {
        let g = at_level(&rows, level, k);
        let small = small_groups(&rows, &g, k);
        let n = small.iter().filter(|s| **s).count();
        if best.as_ref().is_none_or(|(b, ..)| n < *b) {
            best = Some((n, g, small));
        }
        if n <= allowed {
            break;
        }
    }
    let (suppressed, generalisation, small) = best.unwrap_or_default();
    let rows = rows
        .into_iter()
        .zip(small)
        .filter(|(_, s)| !s)
        .map(|((q, t), _)| (generalisation.apply(&q), t))
        .collect();
    Anonymised {
        rows,
        suppressed,
        generalisation,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const FLAGS: [&str; 6] = [
        "isSexualExploit",
        "isForcedLabour",
        "isOtherExploit",
        "typeOfLabourBegging",
        "typeOfLabourAgriculture",
        "typeOfLabourIllicitActivities",
    ];
    const BANDS: [&str; 9] = [
        "0-8", "9-17", "18-20", "21-23", "24-26", "27-29", "30-38", "39-47", "48+",
    ];
    const COUNTRIES: [&str; 6] = ["RS", "AL", "UA", "NG", "BA", "VN"];

    fn place() -> impl Strategy<Value = Place> {
        prop_oneof![
            1 => Just(Place::NotRecorded),
            6 => (0..COUNTRIES.len()).prop_map(|i| Place::Country(COUNTRIES[i].parse().unwrap())),
        ]
    }

    fn quasi() -> impl Strategy<Value = QuasiIds> {
        (
            2024..2027i32,
            1..5u8,
            prop::option::of(0..3usize),
            prop::option::of(0..BANDS.len()),
            place(),
            prop::collection::btree_set(0..FLAGS.len(), 0..3),
            place(),
        )
            .prop_map(|(year, quarter, g, a, c, e, r)| QuasiIds {
                year,
                quarter: Some(quarter),
                gender: g.map(|i| Gender::ALL[i]),
                age: a.and_then(|i| AgeBand::parse(BANDS[i])),
                citizenship: c,
                exploitation: e.into_iter().map(|i| FLAGS[i]).collect(),
                recruitment_country: r,
            })
    }

    /// Whether `general` is what `q` may become: each value the same or a generalisation.
    fn generalises(general: &QuasiIds, q: &QuasiIds) -> bool {
        let place_ok =
            |g: Place, p: Place| g == p || (g == Place::Other && p != Place::NotRecorded);
        general.year == q.year
            && (general.quarter.is_none() || general.quarter == q.quarter)
            && general.gender == q.gender
            && match (general.age, q.age) {
                (Some(g), Some(a)) => g.contains(&a),
                (g, a) => g == a,
            }
            && place_ok(general.citizenship, q.citizenship)
            && place_ok(general.recruitment_country, q.recruitment_country)
            && general.exploitation.is_subset(&q.exploitation)
    }

    proptest! {
        #[test]
        fn kept_rows_are_in_groups_of_k_and_nothing_is_lost_or_made_up(
            rows in prop::collection::vec(quasi(), 0..300),
            k in 2..15usize,
        ) {
            let n = rows.len();
            let tagged: Vec<(QuasiIds, usize)> = rows.iter().cloned().zip(0..).collect();
            let out = anonymise(tagged, k);
            prop_assert_eq!(out.rows.len() + out.suppressed, n);
            let mut groups: HashMap<&QuasiIds, usize> = HashMap::new();
            for (q, _) in &out.rows {
                *groups.entry(q).or_insert(0) += 1;
            }
            let mut seen = BTreeSet::new();
            for (q, i) in &out.rows {
                prop_assert!(groups[q] >= k, "a group of {} < {k}", groups[q]);
                // Each row is its own source's, generalised the one way the export says.
                prop_assert!(seen.insert(*i));
                prop_assert_eq!(q, &out.generalisation.apply(&rows[*i]));
                prop_assert!(generalises(q, &rows[*i]));
                // Every source row that generalises to it is counted in its group or
                // suppressed: at least k sources match what an attacker sees.
                let sources = rows.iter().filter(|r| &out.generalisation.apply(r) == q).count();
                prop_assert!(sources >= k);
            }
            // Steps are a prefix of the ladder.
            prop_assert_eq!(
                &out.generalisation.steps[..],
                &Step::LADDER[..out.generalisation.steps.len()]
            );
            // A country written as other is rare: fewer than k rows held it.
            for c in &out.generalisation.rare_citizenships {
                let held = rows.iter().filter(|r| r.citizenship == Place::Country(*c)).count();
                prop_assert!(held < k);
            }
        }

        #[test]
        fn no_step_is_taken_when_it_is_not_needed(
            row in quasi(),
            copies in 11..40usize,
        ) {
            let out = anonymise(vec![(row.clone(), ()); copies], 11);
            prop_assert_eq!(out.suppressed, 0);
            prop_assert!(out.generalisation.steps.is_empty());
            prop_assert!(out.rows.iter().all(|(q, _)| q == &row));
        }
    }

    #[test]
    fn wider_bands_hold_the_ctdc_bands() {
        for b in BANDS {
            let band = AgeBand::parse(b).unwrap();
            assert_eq!(band.label(), b);
            let wide = widen(band, &WIDE_BANDS);
            assert!(wide.contains(&band), "{b} in {}", wide.label());
            let major = widen(band, &MAJORITY_BANDS);
            assert!(major.contains(&band));
            assert_eq!(major.is_child(), band.is_child());
        }
        assert_eq!(AgeBand::parse("17-9"), None);
        assert_eq!(AgeBand::parse("x"), None);
    }

    #[test]
    fn generalising_lifts_a_small_group_over_k() {
        // Twenty women from Serbia aged 21-23 and 24-26 spread over four quarters: no group
        // of 11 until the quarter and the band go.
        let mut rows = Vec::new();
        for i in 0..20u8 {
            rows.push((
                QuasiIds {
                    year: 2026,
                    quarter: Some(i % 4 + 1),
                    gender: Some(Gender::Female),
                    age: AgeBand::parse(if i % 2 == 0 { "21-23" } else { "24-26" }),
                    citizenship: Place::Country("RS".parse().unwrap()),
                    exploitation: BTreeSet::from(["isSexualExploit"]),
                    recruitment_country: Place::NotRecorded,
                },
                i,
            ));
        }
        let out = anonymise(rows, 11);
        assert_eq!(out.suppressed, 0);
        assert_eq!(
            out.generalisation.steps,
            [Step::RareCountries, Step::YearOnly, Step::WideAgeBands]
        );
        assert!(
            out.rows
                .iter()
                .all(|(q, _)| q.age == AgeBand::parse("18-29"))
        );
    }
}
