//! Sealing to the office: what a phone keeps for the office alone (a wipe receipt waiting to be
//! sent, a duress notice) is encrypted with age to an X25519 key of the office, so that nobody
//! holding the phone reads it, the phone included.
//!
//! The office's X25519 key is the Montgomery form of the Ed25519 key it published at enrollment
//! (the key that signs wipe orders and leases, held in every phone's sealed identity): every
//! enrolled phone already has it, and the office derives the matching X25519 secret from its
//! signing key ([`office_identity`]). This is how age's `ssh-ed25519` recipients work; using one
//! key pair for Ed25519 signatures and an X25519 KEM is shown jointly secure in Thormarker, "On
//! using the same key pair for Ed25519 and an X25519 based KEM" (IACR ePrint 2021/509).

use std::io::{Read, Write};
use std::iter;

use ed25519_dalek::{SigningKey, VerifyingKey};
use zeroize::Zeroizing;

use crate::error::{CoreError, Result};

/// Largest sealed blob opened (a statement is a few hundred bytes).
pub const MAX_SEALED: usize = 8 * 1024;

fn bech32_encode(hrp: &str, bytes: &[u8; 32]) -> Result<Zeroizing<String>> {
    let hrp = bech32::Hrp::parse(hrp).map_err(|_| CoreError::Crypto)?;
    Ok(Zeroizing::new(
        bech32::encode::<bech32::Bech32>(hrp, bytes).map_err(|_| CoreError::Crypto)?,
    ))
}

/// The office's age X25519 recipient, from its Ed25519 public key.
pub fn office_recipient(office: &VerifyingKey) -> Result<age::x25519::Recipient> {
    let montgomery = office.to_montgomery().to_bytes();
    bech32_encode("age", &montgomery)?
        .parse()
        .map_err(|_| CoreError::Crypto)
}

/// The office's age X25519 identity, from its Ed25519 signing key (the secret matching
/// [`office_recipient`] of its public key).
pub fn office_identity(office: &SigningKey) -> Result<age::x25519::Identity> {
    let scalar = Zeroizing::new(office.to_scalar_bytes());
    let encoded = bech32_encode("AGE-SECRET-KEY-", &scalar)?;
    Zeroizing::new(encoded.to_uppercase())
        .parse()
        .map_err(|_| CoreError::Crypto)
}

/// Encrypts `plain` to the office whose Ed25519 public key is `office`.
pub fn seal_to_office(office: &VerifyingKey, plain: &[u8]) -> Result<Vec<u8>> {
    let recipient = office_recipient(office)?;
    let encryptor = age::Encryptor::with_recipients(iter::once(&recipient as &dyn age::Recipient))
        .map_err(|_| CoreError::Crypto)?;
    let mut out = Vec::with_capacity(plain.len() + 256);
    let mut writer = encryptor.wrap_output(&mut out)?;
    writer.write_all(plain)?;
    writer.finish()?;
    Ok(out)
}

/// Opens a blob sealed with [`seal_to_office`], as the office does with its signing key.
pub fn open_as_office(office: &SigningKey, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    let bad = || CoreError::Corrupt {
        what: "sealed statement",
    };
    if sealed.len() > MAX_SEALED {
        return Err(bad());
    }
    // Only an X25519 stanza may reach age's parser (no scrypt at a cost of someone's choosing).
    super::keyslot::prescan(sealed, super::SlotKind::Keystore).map_err(|_| bad())?;
    let identity = office_identity(office)?;
    let decryptor = age::Decryptor::new_buffered(sealed).map_err(|_| bad())?;
    let mut reader = decryptor
        .decrypt(iter::once(&identity as &dyn age::Identity))
        .map_err(|_| bad())?;
    let mut plain = Zeroizing::new(Vec::new());
    reader
        .by_ref()
        .take(MAX_SEALED as u64)
        .read_to_end(&mut plain)
        .map_err(|_| bad())?;
    Ok(plain)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn only_the_office_opens_what_is_sealed_to_it() {
        let office = SigningKey::from_bytes(&[9; 32]);
        let other = SigningKey::from_bytes(&[10; 32]);
        let sealed = seal_to_office(&office.verifying_key(), b"wiped").unwrap();
        assert_eq!(&*open_as_office(&office, &sealed).unwrap(), b"wiped");
        assert!(open_as_office(&other, &sealed).is_err());
        // The recipient is the public half of the identity.
        assert_eq!(
            office_identity(&office).unwrap().to_public().to_string(),
            office_recipient(&office.verifying_key())
                .unwrap()
                .to_string()
        );
        assert!(open_as_office(&office, b"not age").is_err());
    }
}
