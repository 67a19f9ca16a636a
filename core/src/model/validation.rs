//! Typed validation errors: each names the rule broken, never the text that broke it.

use time::{Date, OffsetDateTime};

/// A rule of the domain model that the input broke. Nothing is changed when one is returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ValidationError {
    /// A visit note must say something.
    #[error("a visit note cannot be empty")]
    EmptyNote,
    /// A required text field was empty or only white space.
    #[error("{field} cannot be empty")]
    EmptyField {
        /// Which field.
        field: &'static str,
    },
    /// A text field was longer than its limit.
    #[error("{field} is {len} bytes, over the limit of {max}")]
    TooLong {
        /// Which field.
        field: &'static str,
        /// Its length in bytes.
        len: usize,
        /// The limit in bytes.
        max: usize,
    },
    /// A list had more entries than allowed.
    #[error("{field} has {count} entries, over the limit of {max}")]
    TooMany {
        /// Which list.
        field: &'static str,
        /// How many were given.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A follow-up date must not be before the visit it follows.
    #[error("the follow-up date is before the visit")]
    FollowUpBeforeVisit,
    /// A status name that fieldcase does not know.
    #[error("unknown {field} value")]
    UnknownValue {
        /// Which enumerated field (task status, office kind, ...).
        field: &'static str,
    },
    /// A time-zone name that is not of the IANA form (`Europe/Belgrade`, `UTC`).
    #[error("invalid time zone name")]
    InvalidTimeZone,
    /// A text could not be parsed as an id of the named kind.
    #[error("invalid {0}")]
    InvalidId(&'static str),
    /// A date or time could not be parsed.
    #[error("invalid date or time")]
    InvalidDateTime,
    /// A text held a control character other than a line break or a tab: text is data, and an
    /// escape sequence in it could retitle or clear the terminal of whoever prints it.
    #[error("{field} holds a control character")]
    ControlCharacter {
        /// Which field.
        field: &'static str,
    },
    /// Fields that do not go together (an industry without labour exploitation, a reason for
    /// closure on an open case).
    #[error("{rule}")]
    Inconsistent {
        /// The rule broken.
        rule: &'static str,
    },
    /// A name held a path character (`/`, `\\`, `..`): it may become a file name.
    #[error("{field} holds a path character")]
    PathCharacters {
        /// Which field.
        field: &'static str,
    },
    /// Bytes larger than their cap.
    #[error("{field} is {size} bytes, over the limit of {max}")]
    TooLarge {
        /// What was too large.
        field: &'static str,
        /// Its size in bytes.
        size: u64,
        /// The limit in bytes.
        max: u64,
    },
    /// A file whose first bytes are not of the kind it was said to be, or of no kind allowed.
    #[error("the file is not of the media type it was given as")]
    MediaTypeMismatch,
    /// A date or time outside the years 1900 to 2199 ([`super::Limits::EARLIEST_TIME`],
    /// [`super::Limits::LATEST_TIME`]).
    #[error("{field} is outside the years 1900 to 2199")]
    TimeOutOfRange {
        /// Which field.
        field: &'static str,
    },
}

/// Checks that a time lies in the range a record may hold.
pub(crate) fn time_in_range(
    field: &'static str,
    at: OffsetDateTime,
) -> Result<(), ValidationError> {
    if at < super::Limits::EARLIEST_TIME || at >= super::Limits::LATEST_TIME {
        return Err(ValidationError::TimeOutOfRange { field });
    }
    Ok(())
}

/// Checks that a date lies in the range a record may hold.
pub(crate) fn date_in_range(field: &'static str, date: Date) -> Result<(), ValidationError> {
    let years = super::Limits::EARLIEST_TIME.year()..super::Limits::LATEST_TIME.year();
    if !years.contains(&date.year()) {
        return Err(ValidationError::TimeOutOfRange { field });
    }
    Ok(())
}

/// Characters that show nothing: zero-width spaces and joiners, the word joiner, the byte-order
/// mark, the soft hyphen. A text made only of these and white space is blank.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{2060}'..='\u{2064}' | '\u{FEFF}'
    )
}

/// Whether a text shows nothing: empty, white space, invisible or control characters only.
pub(crate) fn is_blank(value: &str) -> bool {
    value
        .chars()
        .all(|c| c.is_whitespace() || c.is_control() || is_invisible(c))
}

/// Checks a required short text field: not blank, at most `max` bytes.
pub(crate) fn required_text(
    field: &'static str,
    value: &str,
    max: usize,
) -> Result<(), ValidationError> {
    if is_blank(value) {
        return Err(ValidationError::EmptyField { field });
    }
    optional_text(field, value, max)
}

/// Checks an optional text field: at most `max` bytes, and no control character but a line
/// break or a tab.
pub(crate) fn optional_text(
    field: &'static str,
    value: &str,
    max: usize,
) -> Result<(), ValidationError> {
    if value.len() > max {
        return Err(ValidationError::TooLong {
            field,
            len: value.len(),
            max,
        });
    }
    if value
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(ValidationError::ControlCharacter { field });
    }
    Ok(())
}

/// Checks a list's length.
pub(crate) fn at_most(
    field: &'static str,
    count: usize,
    max: usize,
) -> Result<(), ValidationError> {
    if count > max {
        return Err(ValidationError::TooMany { field, count, max });
    }
    Ok(())
}

/// Checks an IANA-style time-zone name: `Area/Location` or `UTC`, ASCII letters, digits, `_+-/`.
pub(crate) fn time_zone(value: &str) -> Result<(), ValidationError> {
    let ok = !value.is_empty()
        && value.len() <= super::Limits::TIME_ZONE_MAX
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+-/".contains(c))
        && !value.starts_with('/')
        && !value.ends_with('/');
    if ok {
        Ok(())
    } else {
        Err(ValidationError::InvalidTimeZone)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_refused_but_line_breaks_and_tabs_kept() {
        let hostile = "\u{1b}]0;TITLE\u{7}\u{1b}[2J";
        assert_eq!(
            optional_text("note body", hostile, 1000),
            Err(ValidationError::ControlCharacter { field: "note body" })
        );
        for bad in ["a\u{0}b", "a\rb", "a\u{7f}b", "a\u{85}b", "x\u{1b}[31m"] {
            assert!(optional_text("f", bad, 1000).is_err(), "{bad:?}");
            assert!(required_text("f", bad, 1000).is_err(), "{bad:?}");
        }
        assert_eq!(optional_text("f", "first line\n\tsecond", 1000), Ok(()));
        assert_eq!(required_text("f", "Čačak — ćevapi, 日本", 1000), Ok(()));
    }

    #[test]
    fn text_of_invisible_characters_only_is_blank() {
        for blank in [
            "",
            " \n\t ",
            "\u{0}\u{0}",
            "\u{200B}\u{200B}",
            "\u{FEFF} \u{2060}",
        ] {
            assert!(is_blank(blank), "{blank:?}");
            assert_eq!(
                required_text("client code", blank, 100),
                Err(ValidationError::EmptyField {
                    field: "client code"
                })
            );
        }
        assert!(!is_blank("\u{200B}a"));
        let note = |body: &str| super::super::NewNote {
            kind: super::super::NoteKind::Visit,
            body: body.into(),
            tags: vec![],
            task: None,
        };
        assert_eq!(
            note("\u{0}\u{200B}\u{200B}").validate(),
            Err(ValidationError::EmptyNote)
        );
        assert_eq!(
            note("court at 10 \u{1b}]0;TITLE\u{7}").validate(),
            Err(ValidationError::ControlCharacter { field: "note body" })
        );
        assert_eq!(note("court at 10\n\tbring the summons").validate(), Ok(()));
    }
}
