//! Size limits on what a person can type, so one record can never grow without bound, and the
//! range of times a record may hold.

use time::OffsetDateTime;
use time::macros::datetime;

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
    /// Longest text of the recovery plan (a goal, a service, a review's summary), in bytes.
    pub const PLAN_TEXT_MAX: usize = 8 * 1024;
    /// Most goals, tasks or notes one service links to.
    pub const LINKS_MAX: usize = 50;
    /// Most checklist items on one task.
    pub const CHECKLIST_MAX: usize = 50;
    /// Most assignees on one task or case.
    pub const ASSIGNEES_MAX: usize = 20;
    /// Longest IANA time-zone name.
    pub const TIME_ZONE_MAX: usize = 64;
    /// Largest attachment, in bytes (a 12-megapixel photo is 3 to 6 MB; a scanned decision of
    /// a dozen pages a few MB).
    pub const ATTACHMENT_MAX: u64 = 25 * 1024 * 1024;
    /// Most bytes of attachments on one case.
    pub const CASE_ATTACHMENTS_MAX: u64 = 250 * 1024 * 1024;
    /// Most attachments on one case.
    pub const ATTACHMENTS_PER_CASE: usize = 200;
    /// Size of the chunks an attachment rests and travels in: what a cut link costs at most to
    /// send again, and small enough to be taken on a slow link in a few seconds. A chunk must
    /// fit well inside what a flaky link carries between cuts: at 512 KiB a link cut every
    /// 500 KB made almost no progress (59 cuts for 4 MB, against 17 at this size).
    pub const ATTACHMENT_CHUNK: usize = 256 * 1024;
    /// Earliest time a case, note or task may hold: nothing the team records lies before it,
    /// and every time in range can be shown and computed with in any time zone (a time near
    /// the year 9999 overflows when converted).
    pub const EARLIEST_TIME: OffsetDateTime = datetime!(1900-01-01 0:00 UTC);
    /// First time past the range: times from here on are refused.
    pub const LATEST_TIME: OffsetDateTime = datetime!(2200-01-01 0:00 UTC);
}
