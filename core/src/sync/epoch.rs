//! The office's timeline, and the heads of a case it vouches for.
//!
//! A restore from a backup sends the office back in time, while phones keep what they wrote and
//! received after the backup. Two things let the hub take all of that back without trusting a
//! phone more than it does in any other sync:
//!
//! - The **office epoch**: random bytes the office draws when its data is created and again at
//!   every restore. A phone sends the epoch it last synced in; a phone from another epoch is told
//!   to start over ([`crate::sync::SyncResponse::reset`]): it forgets what it believed the office
//!   holds and offers every case it has, whole, while the hub forgets what it believed the phone
//!   holds. Nothing is deleted on the phone, and automerge takes a change it has once only, so
//!   nothing is duplicated either.
//! - **Attested heads** ([`Attested`]): with every update, the hub sends a MAC, under a key only
//!   the office holds, over the epoch, the case and the heads it sent. Heads are change hashes,
//!   and the hash of a change covers those of its dependencies, so the MAC vouches for the whole
//!   history up to those heads. After a restore a phone shows its last attestation of a case
//!   with its upload: the hub takes that history as the office's own (it once was: colleagues'
//!   notes, the office's tasks and assignments), and checks only what the phone added since
//!   against the phone's authorship, as in any sync. A phone cannot forge an attestation, and
//!   one from the current epoch is never needed, so it is never taken as one.

use automerge::ChangeHash;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::ids::CaseId;

/// Identifies one timeline of the office's data: drawn at random when the office is created and
/// again by every restore.
pub type OfficeEpoch = [u8; 16];

/// Domain of the attestation MAC, so that its key can never vouch for anything else.
const DOMAIN: &[u8] = b"fieldcase attested heads v1";

/// The office's statement that, in `epoch`, it held case `case_id` at `heads` (and so every
/// change those heads descend from).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Attested {
    /// The case.
    pub case_id: CaseId,
    /// The office epoch the statement was made in.
    pub epoch: OfficeEpoch,
    /// The heads the office held.
    #[serde(with = "super::messages::hash_list")]
    pub heads: Vec<ChangeHash>,
    /// HMAC-SHA-256 under the office's attestation key.
    pub mac: [u8; 32],
}

fn keyed(key: &[u8; 32], epoch: &OfficeEpoch, case: CaseId, heads: &[ChangeHash]) -> Hmac<Sha256> {
    // HMAC takes a key of any length: new_from_slice cannot fail here.
    let mut mac = match <Hmac<Sha256> as Mac>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts a 32-byte key"),
    };
    mac.update(DOMAIN);
    mac.update(epoch);
    mac.update(case.as_bytes());
    let mut sorted: Vec<&ChangeHash> = heads.iter().collect();
    sorted.sort();
    sorted.dedup();
    mac.update(&(sorted.len() as u64).to_le_bytes());
    for head in sorted {
        mac.update(&head.0);
    }
    mac
}

impl Attested {
    /// The office's statement, made with its attestation `key`.
    pub fn new(key: &[u8; 32], epoch: OfficeEpoch, case: CaseId, heads: &[ChangeHash]) -> Self {
        let mac = keyed(key, &epoch, case, heads)
            .finalize()
            .into_bytes()
            .into();
        Attested {
            case_id: case,
            epoch,
            heads: heads.to_vec(),
            mac,
        }
    }

    /// Whether `key` made this statement (compared in constant time).
    pub fn verify(&self, key: &[u8; 32]) -> bool {
        keyed(key, &self.epoch, self.case_id, &self.heads)
            .verify_slice(&self.mac)
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn only_the_key_that_made_a_statement_verifies_it_and_any_change_breaks_it() {
        let key = [7u8; 32];
        let case = CaseId::new();
        let heads = vec![ChangeHash([1; 32]), ChangeHash([2; 32])];
        let made = Attested::new(&key, [3; 16], case, &heads);
        assert!(made.verify(&key));
        // The order heads are listed in does not matter.
        let mut reordered = made.clone();
        reordered.heads.reverse();
        assert!(reordered.verify(&key));
        assert!(!made.verify(&[8u8; 32]));
        let mut other_case = made.clone();
        other_case.case_id = CaseId::new();
        assert!(!other_case.verify(&key));
        let mut other_epoch = made.clone();
        other_epoch.epoch = [4; 16];
        assert!(!other_epoch.verify(&key));
        let mut fewer = made.clone();
        fewer.heads.pop();
        assert!(!fewer.verify(&key));
        let mut flipped = made.clone();
        flipped.mac[0] ^= 1;
        assert!(!flipped.verify(&key));
    }
}
