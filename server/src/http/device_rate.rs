//! Requests per device: a token bucket for each enrolled device, taken after its signature
//! verified (so nobody who merely knows a device id can spend its tokens) and before its body is
//! read. A phone syncs every few minutes, a first sync of thousands of cases in some dozens of
//! rounds; a device sending requests back to back, as a stolen or tampered phone uploading
//! bombs would, gets 429 once its burst is spent, and costs the office almost nothing after.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use uuid::Uuid;

/// Most devices tracked at once; beyond this, full buckets are forgotten first.
const MAX_TRACKED: usize = 100_000;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// The buckets of every device that made a request.
#[derive(Debug)]
pub(crate) struct DeviceRates {
    burst: f64,
    per_sec: f64,
    buckets: Mutex<HashMap<Uuid, Bucket>>,
}

impl DeviceRates {
    /// `burst` requests at once, then `per_sec` a second, per device.
    pub(crate) fn new(burst: u32, per_sec: u32) -> DeviceRates {
        DeviceRates {
            burst: f64::from(burst.max(1)),
            per_sec: f64::from(per_sec.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one request's token for `device`; if none is left, how long until one is.
    pub(crate) fn take(&self, device: Uuid) -> Result<(), Duration> {
        self.take_at(device, Instant::now())
    }

    fn take_at(&self, device: Uuid, now: Instant) -> Result<(), Duration> {
        let Ok(mut buckets) = self.buckets.lock() else {
            return Ok(());
        };
        let (burst, per_sec) = (self.burst, self.per_sec);
        if buckets.len() >= MAX_TRACKED && !buckets.contains_key(&device) {
            buckets.retain(|_, b| {
                b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * per_sec < burst
            });
        }
        let bucket = buckets.entry(device).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        let refilled = now.saturating_duration_since(bucket.at).as_secs_f64() * per_sec;
        bucket.tokens = (bucket.tokens + refilled).min(burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / per_sec))
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_device_spends_its_burst_then_gets_its_rate_and_others_are_not_touched() {
        let rates = DeviceRates::new(3, 2);
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(rates.take_at(a, t0).is_ok());
        }
        let wait = rates.take_at(a, t0).unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Duration::from_millis(500));
        assert!(
            rates.take_at(b, t0).is_ok(),
            "another device has its own bucket"
        );
        // Half a second later one request's token is back, and only one.
        let later = t0 + Duration::from_millis(500);
        assert!(rates.take_at(a, later).is_ok());
        assert!(rates.take_at(a, later).is_err());
    }
}
