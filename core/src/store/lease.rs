//! The offline lease: an enrolled store opens case data only while it holds a lease signed by its
//! office server that has not run out. Every successful sync brings a renewed lease; a phone kept
//! offline past it stops opening cases until a sync succeeds (which renews it, or wipes a revoked
//! phone).
//!
//! Why it cannot be flipped in the file: the server's public key is inside the sealed identity
//! row (no unlock without it), and a lease counts only if its Ed25519 signature verifies for this
//! device. Editing, deleting or rolling back the lease row yields no lease or an older one.
//!
//! Why setting the clock back does not help: the lease is checked against the phone's *trusted
//! time*, not its wall clock. The trusted time is a high-water mark kept sealed in the same row
//! as the lease: the office's time at each successful sync (it replaces the mark, since the
//! office has just shown what time it is), raised by the phone's own clock while the store runs
//! and by the time elapsed since (a monotonic clock, which setting the wall clock does not
//! move). The lease is open only while the trusted time is within it; a wall clock set back
//! leaves the mark where it was. The mark is written at least every [`MARK_STEP`] seconds, and
//! always when it first passes the lease's end, so an app restarted after the clock was set back
//! starts from it. See `docs/adr/0004` for what this does not cover (time the app is not running
//! while the clock is held back; an old copy of the whole row put back by someone who can write
//! the app's files).

use std::time::Duration;

use ed25519_dalek::VerifyingKey;
use rusqlite::Connection;
use serde::{Deserialize, Serialize};

use super::records::Sealer;
use crate::error::{CoreError, Result};
use crate::protocol::Lease;

const LEASE_ROW: &str = "lease";
/// The trusted-time mark is written again once it has moved this many seconds.
pub(crate) const MARK_STEP: i64 = 60;

/// The sealed `lease` row: the lease and the trusted-time mark, together so that neither can be
/// put back without the other. Rows written before the mark existed read with a mark of 0.
#[derive(Serialize, Deserialize)]
struct LeaseRow {
    #[serde(flatten)]
    lease: Lease,
    /// The latest time (Unix seconds) this phone has trusted.
    #[serde(default)]
    trusted_time: i64,
}

/// What decides whether case data may be opened.
pub(crate) struct LeaseGate {
    server: VerifyingKey,
    device: uuid::Uuid,
    /// The valid lease that runs longest, if any.
    lease: Option<Lease>,
    /// The trusted-time mark (Unix seconds) ...
    mark: i64,
    /// ... and the clock's elapsed reading when it was taken.
    mark_elapsed: Duration,
    /// The mark as last written to the row.
    stored_mark: i64,
}

impl LeaseGate {
    /// A gate with no lease yet (a store just enrolled: its first sync brings one).
    pub(crate) fn empty(server: VerifyingKey, device: uuid::Uuid, elapsed: Duration) -> Self {
        Self {
            server,
            device,
            lease: None,
            mark: 0,
            mark_elapsed: elapsed,
            stored_mark: 0,
        }
    }

    /// Loads the stored lease and trusted-time mark for an enrolled store; `elapsed` is the
    /// clock's elapsed reading now.
    pub(crate) fn load(
        conn: &Connection,
        sealer: &Sealer<'_>,
        server: VerifyingKey,
        device: uuid::Uuid,
        elapsed: Duration,
    ) -> Result<Self> {
        let mut gate = Self::empty(server, device, elapsed);
        // A row that does not open, or a lease that does not verify, counts as no lease.
        if let Ok(Some(row)) = sealer.meta::<LeaseRow>(conn, LEASE_ROW) {
            gate.accept(&row.lease);
            gate.mark = row.trusted_time;
            gate.stored_mark = row.trusted_time;
        }
        Ok(gate)
    }

    /// Takes `lease` if it is signed by the server for this device; returns whether it was.
    pub(crate) fn accept(&mut self, lease: &Lease) -> bool {
        let valid = lease.verify(&self.server, &self.device);
        if valid
            && self
                .lease
                .as_ref()
                .is_none_or(|held| lease.expires_at >= held.expires_at)
        {
            self.lease = Some(lease.clone());
        }
        valid
    }

    /// The trusted time now, given the wall clock `wall` (Unix seconds) and the clock's elapsed
    /// reading: the later of the wall clock and the mark moved on by the time elapsed since it
    /// was taken. Raises the mark to it.
    pub(crate) fn trusted_now(&mut self, wall: i64, elapsed: Duration) -> i64 {
        let passed = elapsed.saturating_sub(self.mark_elapsed).as_secs();
        let carried = self
            .mark
            .saturating_add(i64::try_from(passed).unwrap_or(i64::MAX));
        let now = wall.max(carried);
        self.mark = now;
        self.mark_elapsed = elapsed;
        now
    }

    /// Replaces the mark with the office's time `office_now` (Unix seconds), seen in the answer
    /// of a successful sync: the office has just said what time it is, so a mark pushed ahead by
    /// a phone clock that ran fast comes back to it.
    pub(crate) fn trust_office_time(&mut self, office_now: i64, elapsed: Duration) {
        self.mark = office_now;
        self.mark_elapsed = elapsed;
    }

    /// Whether the mark must be written now: it moved [`MARK_STEP`] seconds since it was last
    /// written, or it passed the end of the lease since.
    pub(crate) fn mark_due(&self) -> bool {
        let end = self.expires_at().unwrap_or(i64::MIN);
        self.mark.abs_diff(self.stored_mark) >= MARK_STEP.unsigned_abs()
            || (self.mark > end && self.stored_mark <= end)
    }

    /// Refuses with [`CoreError::LeaseExpired`] unless the lease holds at `now` (trusted time).
    pub(crate) fn check(&self, now: i64) -> Result<()> {
        match self.expires_at() {
            Some(end) if now <= end => Ok(()),
            _ => Err(CoreError::LeaseExpired),
        }
    }

    /// Writes the lease held and the mark (inside the caller's transaction, if any). Without a
    /// lease there is nothing to keep: no lease opens nothing.
    pub(crate) fn store(&mut self, conn: &Connection, sealer: &Sealer<'_>) -> Result<()> {
        let Some(lease) = &self.lease else {
            return Ok(());
        };
        let row = LeaseRow {
            lease: lease.clone(),
            trusted_time: self.mark,
        };
        sealer.put_meta(conn, LEASE_ROW, &row)?;
        self.stored_mark = self.mark;
        Ok(())
    }

    /// When the lease runs out, if there is one.
    pub(crate) fn expires_at(&self) -> Option<i64> {
        self.lease.as_ref().map(|l| l.expires_at)
    }

    /// The trusted-time mark (Unix seconds).
    pub(crate) fn mark(&self) -> i64 {
        self.mark
    }

    /// The office key and the device this gate checks leases for.
    pub(crate) fn subject(&self) -> (VerifyingKey, uuid::Uuid) {
        (self.server, self.device)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn gate_with_lease(end: i64) -> LeaseGate {
        let key = ed25519_dalek::SigningKey::from_bytes(&[3; 32]);
        let device = uuid::Uuid::from_u128(7);
        let mut gate = LeaseGate::empty(key.verifying_key(), device, Duration::ZERO);
        assert!(gate.accept(&Lease::sign(&key, device, end)));
        gate
    }

    #[test]
    fn a_wall_clock_set_back_does_not_reopen_an_expired_lease() {
        let mut gate = gate_with_lease(1_000);
        let now = gate.trusted_now(900, Duration::from_secs(0));
        assert!(gate.check(now).is_ok());
        let now = gate.trusted_now(1_100, Duration::from_secs(200));
        assert!(gate.check(now).is_err());
        assert!(gate.mark_due(), "passing the end is written at once");
        // Set back to before the end: the mark holds.
        let now = gate.trusted_now(500, Duration::from_secs(200));
        assert_eq!(now, 1_100);
        assert!(gate.check(now).is_err());
    }

    #[test]
    fn time_passing_after_the_clock_was_set_back_still_counts() {
        let mut gate = gate_with_lease(1_000);
        assert_eq!(gate.trusted_now(990, Duration::from_secs(0)), 990);
        // Set back by a day, then 20 s pass: the trusted time is 1_010, past the end.
        let now = gate.trusted_now(990 - 86_400 + 20, Duration::from_secs(20));
        assert_eq!(now, 1_010);
        assert!(gate.check(now).is_err());
    }

    #[test]
    fn the_office_time_replaces_a_mark_a_fast_clock_pushed_ahead() {
        let mut gate = gate_with_lease(10_000);
        let ahead = gate.trusted_now(50_000, Duration::from_secs(1));
        assert!(gate.check(ahead).is_err());
        gate.trust_office_time(9_000, Duration::from_secs(2));
        let now = gate.trusted_now(8_000, Duration::from_secs(3));
        assert_eq!(now, 9_001);
        assert!(gate.check(now).is_ok());
    }

    #[test]
    fn a_lease_for_another_device_or_signer_is_not_taken() {
        let key = ed25519_dalek::SigningKey::from_bytes(&[3; 32]);
        let other = ed25519_dalek::SigningKey::from_bytes(&[4; 32]);
        let device = uuid::Uuid::from_u128(7);
        let mut gate = LeaseGate::empty(key.verifying_key(), device, Duration::ZERO);
        assert!(!gate.accept(&Lease::sign(&other, device, 100)));
        assert!(!gate.accept(&Lease::sign(&key, uuid::Uuid::from_u128(8), 100)));
        assert_eq!(gate.expires_at(), None);
        // A shorter lease after a longer one keeps the longer.
        assert!(gate.accept(&Lease::sign(&key, device, 200)));
        assert!(gate.accept(&Lease::sign(&key, device, 150)));
        assert_eq!(gate.expires_at(), Some(200));
    }
}
