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

/// Checks a required short text field: not blank, at most `max` bytes.
pub(crate) fn required_text(
    field: &'static str,
    value: &str,
    max: usize,
) -> Result<(), ValidationError> {
    if value.trim().is_empty() {
        return Err(ValidationError::EmptyField { field });
    }
    optional_text(field, value, max)
}

/// Checks an optional text field's length.
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
