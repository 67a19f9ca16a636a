//! Wrong passphrases in a row, counted in the key file and slowed down.
//!
//! The first [`FREE_ATTEMPTS`] wrong passphrases cost nothing but scrypt's time; from then on each
//! further attempt waits [`FIRST_WAIT_SECS`], doubling with every wrong one, up to
//! [`MAX_WAIT_SECS`]. An attempt made too early is refused before scrypt runs, with
//! [`CoreError::TooManyAttempts`] saying how long is left. A right passphrase clears the count.
//!
//! The count is sealed (XChaCha20-Poly1305) in the key file under a key derived from the
//! keystore's secret, so it cannot be lowered or forged without the keystore (a count that does
//! not open counts as the first wait). The wait runs on the wall clock and, within one run of
//! the app, also on the monotonic clock, so a clock set forward does not cut it short while the
//! app runs; a clock set back never does (the time of the last failure is the floor). Not covered,
//! and said in `docs/adr/0004`: someone who can write the app's files can put back an older key
//! file with a lower count, and a store made without a keystore (tools, tests) has no secret to
//! seal the count with (its key is derived from the store id, which only catches careless
//! edits). The platform's own lockout of the screen lock, which the keystore key sits behind,
//! is the wall outside this one.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::crypto::DataKey;
use crate::error::{CoreError, Result};

/// Wrong passphrases in a row that cost no wait.
pub const FREE_ATTEMPTS: u32 = 5;
/// The first wait, in seconds, after [`FREE_ATTEMPTS`] wrong passphrases.
pub const FIRST_WAIT_SECS: u64 = 30;
/// The longest wait, in seconds.
pub const MAX_WAIT_SECS: u64 = 3600;

/// The count as sealed in the key file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Attempts {
    /// Wrong passphrases since the last right one.
    pub failures: u32,
    /// When the last one was (Unix seconds, wall clock).
    pub last_failure_at: i64,
}

impl Attempts {
    /// The wait before the next attempt after this many failures.
    pub(crate) fn wait(&self) -> u64 {
        match self.failures.checked_sub(FREE_ATTEMPTS) {
            None => 0,
            Some(over) => FIRST_WAIT_SECS
                .saturating_mul(1u64 << over.min(20))
                .min(MAX_WAIT_SECS),
        }
    }

    /// Seconds left before the next attempt may be made at wall time `now`, given the
    /// monotonic time passed since the last failure in this run of the app (if it was in this
    /// run); 0 when it may be made now.
    pub(crate) fn left(&self, now: i64, since_in_this_run: Option<Duration>) -> u64 {
        let wait = self.wait();
        if wait == 0 {
            return 0;
        }
        // A clock set back does not make the wait longer or shorter: the last failure is the
        // floor of "now".
        let passed_wall = now
            .saturating_sub(self.last_failure_at)
            .max(0)
            .unsigned_abs();
        let passed = match since_in_this_run {
            Some(mono) => passed_wall.min(mono.as_secs()),
            None => passed_wall,
        };
        wait.saturating_sub(passed)
    }
}

/// The key the count is sealed with: from the keystore's secret when the store has one, else
/// from the store id (which seals nothing against someone who reads this code).
pub(crate) fn key(root: Option<&[u8; 32]>, store_id: &uuid::Uuid) -> Result<DataKey> {
    use hmac::Mac;
    let secret: &[u8] = match root {
        Some(r) => r,
        None => store_id.as_bytes(),
    };
    let mut mac =
        hmac::Hmac::<sha2::Sha256>::new_from_slice(secret).map_err(|_| CoreError::Crypto)?;
    mac.update(b"fieldcase-unlock-attempts-v1");
    mac.update(store_id.as_bytes());
    let bytes = mac.finalize().into_bytes();
    let mut key = Zeroizing::new([0u8; 32]);
    key.copy_from_slice(&bytes);
    Ok(DataKey::from_bytes(key))
}

fn aad(store_id: &uuid::Uuid) -> Vec<u8> {
    let mut aad = store_id.as_bytes().to_vec();
    aad.extend_from_slice(b"unlock-attempts");
    aad
}

/// Reads the sealed count: none kept is a count of 0; `None` when one is kept but does not open
/// with this key (a wrong keystore secret, or a garbled file). The caller then refuses nothing up
/// front and overwrites nothing unless the attempt succeeds, so neither another keystore nor a
/// garbled count locks the worker out.
pub(crate) fn read(
    sealed: Option<&[u8]>,
    key: &DataKey,
    store_id: &uuid::Uuid,
) -> Option<Attempts> {
    let Some(sealed) = sealed else {
        return Some(Attempts::default());
    };
    crate::crypto::open(key, &aad(store_id), sealed, "unlock attempts")
        .ok()
        .and_then(|plain| serde_json::from_slice(&plain).ok())
}

/// Seals a count for the key file.
pub(crate) fn seal(attempts: &Attempts, key: &DataKey, store_id: &uuid::Uuid) -> Result<Vec<u8>> {
    let plain = serde_json::to_vec(attempts).map_err(|_| CoreError::Crypto)?;
    crate::crypto::seal(key, &aad(store_id), &plain)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn waits_start_after_the_free_attempts_and_double_up_to_the_cap() {
        let at = |failures| Attempts {
            failures,
            last_failure_at: 1_000,
        };
        assert_eq!(at(FREE_ATTEMPTS - 1).wait(), 0);
        assert_eq!(at(FREE_ATTEMPTS).wait(), 30);
        assert_eq!(at(FREE_ATTEMPTS + 1).wait(), 60);
        assert_eq!(at(FREE_ATTEMPTS + 40).wait(), MAX_WAIT_SECS);
        assert_eq!(at(FREE_ATTEMPTS).left(1_010, None), 20);
        // The clock set back: the full wait is still ahead.
        assert_eq!(at(FREE_ATTEMPTS).left(0, None), 30);
        // The clock set forward within one run: the monotonic clock keeps the wait.
        assert_eq!(
            at(FREE_ATTEMPTS).left(99_999, Some(Duration::from_secs(5))),
            25
        );
    }

    #[test]
    fn a_count_reads_back_only_with_its_key() {
        let store = uuid::Uuid::from_u128(1);
        let k = key(Some(&[2; 32]), &store).unwrap();
        let other = key(Some(&[3; 32]), &store).unwrap();
        let count = Attempts {
            failures: 3,
            last_failure_at: 77,
        };
        let sealed = seal(&count, &k, &store).unwrap();
        assert_eq!(read(Some(&sealed), &k, &store), Some(count));
        assert_eq!(read(Some(&sealed), &other, &store), None);
        assert_eq!(read(Some(b"garbage"), &k, &store), None);
        assert_eq!(read(None, &k, &store), Some(Attempts::default()));
    }
}
