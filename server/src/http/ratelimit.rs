//! Counting failed attempts per client address, in fixed windows, in memory.
//!
//! There is no count across all addresses: such a trip-wire let anyone block every enrollment
//! by failing on purpose, and it protects nothing here, since an enrollment code has 80 random
//! bits, is valid for minutes and works once (guessing one from any number of addresses is
//! hopeless), while one address guessing fast is slowed by its own count.

use std::collections::HashMap;
use std::net::IpAddr;

/// Most addresses tracked at once; beyond this, windows that ended are forgotten first, and a
/// new address is not tracked while every tracked window is still running.
const MAX_TRACKED: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Window {
    start: i64,
    count: u32,
}

impl Window {
    fn current(&mut self, now: i64, len: i64) -> &mut Self {
        if now >= self.start.saturating_add(len) || now < self.start {
            *self = Window {
                start: now,
                count: 0,
            };
        }
        self
    }
}

/// Bounds failures (e.g. wrong enrollment codes) per address.
#[derive(Debug)]
pub(crate) struct FailureLimiter {
    per_client: u32,
    window: i64,
    clients: HashMap<IpAddr, Window>,
}

impl FailureLimiter {
    /// `per_client` failures per address per `window` seconds.
    pub(crate) fn new(per_client: u32, window: i64) -> FailureLimiter {
        FailureLimiter {
            per_client,
            window: window.max(1),
            clients: HashMap::new(),
        }
    }

    /// Whether `ip` may try now; if not, seconds until it may.
    pub(crate) fn check(&mut self, ip: IpAddr, now: i64) -> Result<(), i64> {
        let window = self.window;
        if let Some(w) = self.clients.get_mut(&ip) {
            let w = w.current(now, window);
            if w.count >= self.per_client {
                return Err(w.start + window - now);
            }
        }
        Ok(())
    }

    /// Counts one failure for `ip`.
    pub(crate) fn record_failure(&mut self, ip: IpAddr, now: i64) {
        let window = self.window;
        if self.clients.len() >= MAX_TRACKED && !self.clients.contains_key(&ip) {
            self.clients
                .retain(|_, w| now < w.start.saturating_add(window) && now >= w.start);
            if self.clients.len() >= MAX_TRACKED {
                return;
            }
        }
        let w = self.clients.entry(ip).or_insert(Window {
            start: now,
            count: 0,
        });
        w.current(now, window).count += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_per_client_and_resets() {
        let ip: IpAddr = [10, 0, 0, 1].into();
        let other: IpAddr = [10, 0, 0, 2].into();
        let mut l = FailureLimiter::new(2, 60);
        assert!(l.check(ip, 0).is_ok());
        l.record_failure(ip, 0);
        l.record_failure(ip, 1);
        assert_eq!(l.check(ip, 2), Err(58));
        assert!(l.check(other, 2).is_ok());
        assert!(l.check(ip, 60).is_ok());
    }

    #[test]
    fn failures_elsewhere_never_lock_an_address_out() {
        let mut l = FailureLimiter::new(3, 60);
        for i in 0..=255u8 {
            for _ in 0..3 {
                l.record_failure([10, 0, 1, i].into(), 0);
            }
        }
        // Hundreds of addresses at their limit: a new one still enrolls.
        assert!(l.check([10, 0, 0, 9].into(), 1).is_ok());
        assert!(l.check([10, 0, 1, 7].into(), 1).is_err());
    }
}
