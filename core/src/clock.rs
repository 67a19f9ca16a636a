//! Time, through a clock the caller can replace so that tests can move it.
//!
//! A clock gives two readings: the wall clock ([`Clock::now`]), which whoever holds the phone can
//! set to anything, and the time elapsed since a fixed point ([`Clock::elapsed`]), which setting
//! the wall clock does not move. The offline lease counts with both (see `store::lease`): a
//! wall clock set back does not make time run backwards for it.

use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use time::{Duration, OffsetDateTime};

/// A source of the current time.
pub trait Clock: Send + Sync {
    /// The current instant, by the wall clock.
    fn now(&self) -> OffsetDateTime;

    /// Time elapsed since a fixed point (for the system clock: the first reading in this
    /// process), never going backwards and not moved by setting the wall clock. A clock that
    /// cannot tell returns zero, which counts no time as passed.
    fn elapsed(&self) -> std::time::Duration {
        std::time::Duration::ZERO
    }
}

/// The real wall clock, with the process's monotonic clock for [`Clock::elapsed`].
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

fn process_start() -> Instant {
    static START: OnceLock<Instant> = OnceLock::new();
    *START.get_or_init(Instant::now)
}

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }

    fn elapsed(&self) -> std::time::Duration {
        process_start().elapsed()
    }
}

/// The system clock shifted by a fixed amount: what a phone whose clock was set wrong reads (for
/// tests and demonstrations through the bindings). Elapsed time is the system's.
#[derive(Debug, Clone, Copy)]
pub struct OffsetClock(pub Duration);

impl Clock for OffsetClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc().saturating_add(self.0)
    }

    fn elapsed(&self) -> std::time::Duration {
        process_start().elapsed()
    }
}

/// A clock that stands still until it is told to move: for tests and simulations.
///
/// [`ManualClock::advance`] by a positive amount is time passing (both readings move);
/// [`ManualClock::set`], or `advance` by a negative amount, is someone setting the wall clock
/// (the elapsed time does not move).
#[derive(Debug)]
pub struct ManualClock(Mutex<(OffsetDateTime, std::time::Duration)>);

impl ManualClock {
    /// A clock showing `start`.
    pub fn new(start: OffsetDateTime) -> Self {
        Self(Mutex::new((start, std::time::Duration::ZERO)))
    }

    /// Sets the wall clock, as a person setting the phone's clock does: no time passes.
    pub fn set(&self, to: OffsetDateTime) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).0 = to;
    }

    /// Moves the time shown forward (time passing), or back with a negative duration (the wall
    /// clock set back: no time passes).
    pub fn advance(&self, by: Duration) {
        let mut now = self.0.lock().unwrap_or_else(|e| e.into_inner());
        now.0 += by;
        if by.is_positive() {
            now.1 = now.1.saturating_add(by.unsigned_abs());
        }
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).0
    }

    fn elapsed(&self) -> std::time::Duration {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setting_a_manual_clock_passes_no_time_and_advancing_does() {
        let c = ManualClock::new(OffsetDateTime::UNIX_EPOCH);
        c.advance(Duration::seconds(10));
        c.set(OffsetDateTime::UNIX_EPOCH);
        c.advance(Duration::seconds(-5));
        assert_eq!(c.elapsed(), std::time::Duration::from_secs(10));
        assert_eq!(c.now(), OffsetDateTime::UNIX_EPOCH - Duration::seconds(5));
    }
}
