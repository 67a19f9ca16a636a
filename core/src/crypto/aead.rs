//! Record sealing with XChaCha20-Poly1305 under the store's data key.
//!
//! A sealed record is `version (1) || nonce (24) || ciphertext || tag (16)`. The associated data
//! binds each record to where it is stored (store, table, row), so a record copied into another
//! row or another store fails to open instead of being read as something else.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use rand::rngs::OsRng;
use zeroize::Zeroizing;

use crate::error::{CoreError, Result};

const VERSION: u8 = 1;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;

/// Bytes a sealed record has beyond its plaintext: the version, the nonce and the tag.
pub const SEAL_OVERHEAD: usize = 1 + NONCE_LEN + TAG_LEN;

/// The 32-byte key that seals every record of one store. Never leaves memory unwrapped.
pub struct DataKey(Zeroizing<[u8; 32]>);

impl DataKey {
    /// A fresh random key.
    pub fn generate() -> Self {
        let mut key = Zeroizing::new([0u8; 32]);
        OsRng.fill_bytes(key.as_mut());
        Self(key)
    }

    /// Wraps key bytes that were just unwrapped from a key slot.
    pub fn from_bytes(bytes: Zeroizing<[u8; 32]>) -> Self {
        Self(bytes)
    }

    /// The raw key, for wrapping into a key slot.
    pub(crate) fn expose(&self) -> &[u8; 32] {
        &self.0
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(chacha20poly1305::Key::from_slice(self.0.as_ref()))
    }
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(..)")
    }
}

/// Seals `plaintext` under `key`, bound to `aad`.
pub fn seal(key: &DataKey, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
    let mut nonce = [0u8; NONCE_LEN];
    OsRng.fill_bytes(&mut nonce);
    let ciphertext = key
        .cipher()
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .map_err(|_| CoreError::Crypto)?;
    let mut out = Vec::with_capacity(1 + NONCE_LEN + ciphertext.len());
    out.push(VERSION);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ciphertext);
    Ok(out)
}

/// Opens a record sealed by [`seal`] with the same key and associated data. Any change to the
/// bytes, the key or the associated data is [`CoreError::Corrupt`] naming `what`.
pub fn open(
    key: &DataKey,
    aad: &[u8],
    sealed: &[u8],
    what: &'static str,
) -> Result<Zeroizing<Vec<u8>>> {
    if sealed.len() < SEAL_OVERHEAD || sealed[0] != VERSION {
        return Err(CoreError::Corrupt { what });
    }
    let (nonce, ciphertext) = sealed[1..].split_at(NONCE_LEN);
    key.cipher()
        .decrypt(
            XNonce::from_slice(nonce),
            Payload {
                msg: ciphertext,
                aad,
            },
        )
        .map(Zeroizing::new)
        .map_err(|_| CoreError::Corrupt { what })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn seal_open_round_trip_and_tamper_detection() {
        let key = DataKey::generate();
        let sealed = seal(&key, b"row-1", b"Tuesday at the centre").unwrap();
        assert_eq!(sealed.len(), b"Tuesday at the centre".len() + SEAL_OVERHEAD);
        assert_eq!(
            &open(&key, b"row-1", &sealed, "note").unwrap()[..],
            b"Tuesday at the centre"
        );
        // Another row's associated data, another key, a flipped bit, a truncation: all refused.
        assert!(matches!(
            open(&key, b"row-2", &sealed, "note"),
            Err(CoreError::Corrupt { what: "note" })
        ));
        assert!(open(&DataKey::generate(), b"row-1", &sealed, "note").is_err());
        let mut flipped = sealed.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert!(open(&key, b"row-1", &flipped, "note").is_err());
        assert!(open(&key, b"row-1", &sealed[..20], "note").is_err());
        assert!(open(&key, b"row-1", &[], "note").is_err());
    }
}
