//! Size limits on what a person can type, so one record can never grow without bound.

/// The bounds every field is checked against before anything is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits;

impl Limits {
    /// Longest visit note body, in bytes of UTF-8 (about 20 printed pages).
    pub const NOTE_BODY_MAX: usize = 64 * 1024;
    /// Longest short text field (client code, purpose, office name, address, checklist label).
    pub const SHORT_TEXT_MAX: usize = 500;
    /// Longest task outcome text, in bytes.
    pub const OUTCOME_MAX: usize = 8 * 1024;
    /// Most checklist items on one task.
    pub const CHECKLIST_MAX: usize = 50;
    /// Most assignees on one task or case.
    pub const ASSIGNEES_MAX: usize = 20;
    /// Longest IANA time-zone name.
    pub const TIME_ZONE_MAX: usize = 64;
}
