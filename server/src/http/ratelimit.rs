//! Counting failed attempts per client address and globally, in fixed windows, in memory.

use std::collections::HashMap;
use std::net::IpAddr;

/// Most addresses tracked at once; beyond this only the global count applies to new ones.
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

/// Bounds failures (e.g. wrong enrollment codes) per address and overall.
#[derive(Debug)]
pub(crate) struct FailureLimiter {
    per_client: u32,
    global_max: u32,
    window: i64,
    clients: HashMap<IpAddr, Window>,
    global: Window,
}

impl FailureLimiter {
    /// `per_client` failures per address and `global_max` in total per `window` seconds.
    pub(crate) fn new(per_client: u32, global_max: u32, window: i64) -> FailureLimiter {
        FailureLimiter {
            per_client,
            global_max,
            window: window.max(1),
            clients: HashMap::new(),
            global: Window { start: 0, count: 0 },
        }
    }

    /// Whether `ip` may try now; if not, seconds until it may.
    pub(crate) fn check(&mut self, ip: IpAddr, now: i64) -> Result<(), i64> {
        let window = self.window;
        let global = self.global.current(now, window);
        if global.count >= self.global_max {
            return Err(global.start + window - now);
        }
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
        self.global.current(now, window).count += 1;
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
        let mut l = FailureLimiter::new(2, 100, 60);
        assert!(l.check(ip, 0).is_ok());
        l.record_failure(ip, 0);
        l.record_failure(ip, 1);
        assert_eq!(l.check(ip, 2), Err(58));
        assert!(l.check(other, 2).is_ok());
        assert!(l.check(ip, 60).is_ok());
    }

    #[test]
    fn global_cap() {
        let mut l = FailureLimiter::new(100, 3, 60);
        for i in 0..3u8 {
            l.record_failure([10, 0, 0, i].into(), 0);
        }
        assert!(l.check([10, 0, 0, 9].into(), 1).is_err());
    }
}
