//! Signed statements between the office and a device: the server's wipe order and lease, and the
//! device's wipe and purge receipts. Each is signed with Ed25519 over a domain-separated message,
//! so a signature for one kind of statement is never valid for another.
//!
//! - A [`WipeOrder`] is signed by the server's key, which the device learned at enrollment; core
//!   wipes only on an order that verifies and names this device.
//! - A [`Lease`] is signed by the server; a device holding no valid lease opens no case data.
//! - A [`WipeReceipt`] is signed by the device's key before the key is destroyed, so the office
//!   can trust that the device really wiped itself.
//! - A [`PinAnnouncement`] is signed by the server: the certificate the office will present
//!   next, which a device adds to its pins before the office switches to it.

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

fn message(kind: &str, device_id: &Uuid, at: i64, reason: &str) -> Vec<u8> {
    format!("fieldcase-{kind}-v1\n{device_id}\n{at}\n{reason}").into_bytes()
}

fn sign(key: &SigningKey, msg: &[u8]) -> String {
    hex::encode(key.sign(msg).to_bytes())
}

fn verifies(key: &VerifyingKey, msg: &[u8], signature: &str) -> bool {
    let Ok(bytes) = super::decode_hex_array::<64>(signature) else {
        return false;
    };
    key.verify_strict(msg, &Signature::from_bytes(&bytes))
        .is_ok()
        && key.verify(msg, &Signature::from_bytes(&bytes)).is_ok()
}

/// The server's order to a revoked device to wipe itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WipeOrder {
    /// The device that must wipe.
    pub device_id: Uuid,
    /// When the server issued the order (Unix seconds).
    pub issued_at: i64,
    /// Why (`revoked`).
    pub reason: String,
    /// Ed25519 signature by the server's key, lowercase hex.
    pub signature: String,
}

impl WipeOrder {
    /// Signs an order with the server's key.
    pub fn sign(key: &SigningKey, device_id: Uuid, issued_at: i64, reason: &str) -> Self {
        let signature = sign(key, &message("wipe-order", &device_id, issued_at, reason));
        Self {
            device_id,
            issued_at,
            reason: reason.to_owned(),
            signature,
        }
    }

    /// Whether the order was signed by `server` and names `device`.
    pub fn verify(&self, server: &VerifyingKey, device: &Uuid) -> bool {
        &self.device_id == device
            && verifies(
                server,
                &message("wipe-order", &self.device_id, self.issued_at, &self.reason),
                &self.signature,
            )
    }
}

/// The device's signed statement that it wiped itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WipeReceipt {
    /// The device that wiped.
    pub device_id: Uuid,
    /// When (device clock, Unix seconds).
    pub wiped_at: i64,
    /// Why: `revoked` (on the server's order) or `panic` (the worker's own wipe).
    pub reason: String,
    /// Ed25519 signature by the device's key, lowercase hex.
    pub signature: String,
}

impl WipeReceipt {
    /// Signs a receipt with the device's key.
    pub fn sign(key: &SigningKey, device_id: Uuid, wiped_at: i64, reason: &str) -> Self {
        let signature = sign(key, &message("wipe-receipt", &device_id, wiped_at, reason));
        Self {
            device_id,
            wiped_at,
            reason: reason.to_owned(),
            signature,
        }
    }

    /// Whether the receipt was signed by `device`'s key.
    pub fn verify(&self, device: &VerifyingKey) -> bool {
        verifies(
            device,
            &message("wipe-receipt", &self.device_id, self.wiped_at, &self.reason),
            &self.signature,
        )
    }
}

/// The server's grant that a device may open case data offline until `expires_at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// The device.
    pub device_id: Uuid,
    /// End of the lease (Unix seconds, server clock).
    pub expires_at: i64,
    /// Ed25519 signature by the server's key, lowercase hex.
    pub signature: String,
}

impl Lease {
    /// Signs a lease with the server's key.
    pub fn sign(key: &SigningKey, device_id: Uuid, expires_at: i64) -> Self {
        let signature = sign(key, &message("lease", &device_id, expires_at, ""));
        Self {
            device_id,
            expires_at,
            signature,
        }
    }

    /// Whether the lease was signed by `server` and names `device`.
    pub fn verify(&self, server: &VerifyingKey, device: &Uuid) -> bool {
        &self.device_id == device
            && verifies(
                server,
                &message("lease", &self.device_id, self.expires_at, ""),
                &self.signature,
            )
    }
}

/// What a [`PinAnnouncement`] signs: a fixed domain-separation prefix, then the 32 bytes of
/// the announced certificate fingerprint. No other statement starts with this prefix.
pub fn next_pin_message(fingerprint: &super::Fingerprint) -> Vec<u8> {
    let mut msg = b"fieldcase-next-pin-v1\n".to_vec();
    msg.extend_from_slice(&fingerprint.0);
    msg
}

/// The office's signed word that it will present the certificate `fingerprint` next (during a
/// certificate rotation): carried in the headers of sync answers, so that a phone pins the new
/// certificate before the office switches to it. Signed with the office's key, the one that
/// signs leases, which the phone learned at enrollment; a header that does not verify with that
/// key is ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinAnnouncement {
    /// The next certificate's SHA-256 fingerprint.
    pub fingerprint: super::Fingerprint,
    /// Ed25519 signature by the office's key over [`next_pin_message`], lowercase hex.
    pub signature: String,
}

impl PinAnnouncement {
    /// Signs an announcement with the office's key.
    pub fn sign(key: &SigningKey, fingerprint: super::Fingerprint) -> Self {
        Self {
            fingerprint,
            signature: sign(key, &next_pin_message(&fingerprint)),
        }
    }

    /// Reads the two header values as they came (the fingerprint in hex, the signature in hex)
    /// and returns the fingerprint only if `server` signed it; anything else is `None`.
    pub fn verified(server: &VerifyingKey, fingerprint: &str, signature: &str) -> Option<Self> {
        let fingerprint = super::Fingerprint::parse(fingerprint).ok()?;
        verifies(server, &next_pin_message(&fingerprint), signature).then(|| Self {
            fingerprint,
            signature: signature.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn statements_verify_only_for_their_signer_device_and_kind() {
        let server = SigningKey::generate(&mut rand::rngs::OsRng);
        let other = SigningKey::generate(&mut rand::rngs::OsRng);
        let device = Uuid::now_v7();
        let order = WipeOrder::sign(&server, device, 100, "revoked");
        assert!(order.verify(&server.verifying_key(), &device));
        assert!(
            !order.verify(&other.verifying_key(), &device),
            "another key"
        );
        assert!(
            !order.verify(&server.verifying_key(), &Uuid::now_v7()),
            "another device"
        );
        let mut changed = order.clone();
        changed.issued_at += 1;
        assert!(!changed.verify(&server.verifying_key(), &device));
        // A lease's signature is not a wipe order's.
        let lease = Lease::sign(&server, device, 100);
        assert!(lease.verify(&server.verifying_key(), &device));
        let confused = WipeOrder {
            device_id: device,
            issued_at: 100,
            reason: String::new(),
            signature: lease.signature,
        };
        assert!(!confused.verify(&server.verifying_key(), &device));
        let receipt = WipeReceipt::sign(&other, device, 5, "panic");
        assert!(receipt.verify(&other.verifying_key()));
        assert!(!receipt.verify(&server.verifying_key()));
    }

    #[test]
    fn a_pin_announcement_verifies_only_with_the_office_key_and_its_own_fingerprint() {
        let server = SigningKey::generate(&mut rand::rngs::OsRng);
        let other = SigningKey::generate(&mut rand::rngs::OsRng);
        let next = super::super::Fingerprint([7; 32]);
        let a = PinAnnouncement::sign(&server, next);
        let fp = next.to_hex();
        let ok = PinAnnouncement::verified(&server.verifying_key(), &fp, &a.signature);
        assert_eq!(ok.map(|a| a.fingerprint), Some(next));
        assert!(
            PinAnnouncement::verified(&other.verifying_key(), &fp, &a.signature).is_none(),
            "signed by another key"
        );
        let swapped = super::super::Fingerprint([8; 32]).to_hex();
        assert!(
            PinAnnouncement::verified(&server.verifying_key(), &swapped, &a.signature).is_none(),
            "another fingerprint under the same signature"
        );
        // A lease's signature over the same bytes' worth of message is no announcement.
        let lease = Lease::sign(&server, Uuid::from_bytes([7; 16]), 0);
        assert!(
            PinAnnouncement::verified(&server.verifying_key(), &fp, &lease.signature).is_none()
        );
        assert!(PinAnnouncement::verified(&server.verifying_key(), &fp, "zz").is_none());
        assert!(
            PinAnnouncement::verified(&server.verifying_key(), "not hex", &a.signature).is_none()
        );
    }
}
