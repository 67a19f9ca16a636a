//! Key slots: the data key wrapped with age, to the keystore's key or to a passphrase.
//!
//! age headers are pre-scanned and capped before age parses them (DESIGN.md section 11: parsing
//! cost grows faster than the stanza count): at most [`MAX_STANZAS`] stanzas in at most
//! [`MAX_HEADER_BYTES`], an scrypt stanza only in a passphrase slot, and scrypt's work factor capped
//! at [`MAX_SCRYPT_WORK_FACTOR`].

use std::io::{Read, Write};
use std::iter;

use age::secrecy::SecretString;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::DataKey;
use crate::error::{CoreError, Result};

/// Most stanzas accepted in a key slot's age header.
pub const MAX_STANZAS: usize = 64;
/// Largest age header accepted, in bytes.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
/// Highest scrypt work factor (log2 N) accepted when unwrapping: about a second on a phone.
pub const MAX_SCRYPT_WORK_FACTOR: u8 = 20;
/// Lowest scrypt work factor (log2 N, 64 MiB of memory per guess) a passphrase slot may be made
/// with or opened at: a setting below it is raised to it, a key file holding a slot below it is
/// refused ([`CoreError::KeySlotTooWeak`]).
pub const MIN_SCRYPT_WORK_FACTOR: u8 = 16;
/// The scrypt work factor used for new passphrase slots.
pub const DEFAULT_SCRYPT_WORK_FACTOR: u8 = 18;
const AGE_MAGIC: &[u8] = b"age-encryption.org/v1\n";
const SCRYPT_STANZA: &[u8] = b"\n-> scrypt ";

/// What a key slot is wrapped to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SlotKind {
    /// The 32-byte secret from the platform keystore, used as an age X25519 identity.
    Keystore,
    /// A passphrase alone, through age's scrypt recipient: only in a store made without a
    /// keystore (tools, tests), or beside a keystore slot in a store made by an earlier build
    /// (where it no longer opens the store alone).
    Passphrase,
    /// The keystore's secret and a passphrase together: age's scrypt recipient over a secret
    /// derived from both ([`bound_secret`]), so neither opens the store without the other.
    KeystorePassphrase,
}

impl SlotKind {
    /// Whether opening it runs scrypt over a passphrase.
    pub fn has_passphrase(self) -> bool {
        matches!(self, SlotKind::Passphrase | SlotKind::KeystorePassphrase)
    }
}

/// The secret a [`SlotKind::KeystorePassphrase`] slot is wrapped to: HMAC-SHA256 keyed with the
/// keystore's root secret over the passphrase, in hex. Without the root it cannot be computed,
/// so a copy of the key file cannot be attacked offline; with the root (which the keystore
/// hands out only after the user authenticated), each guess still costs an scrypt.
fn bound_secret(root: &[u8; 32], passphrase: &str) -> Result<SecretString> {
    use hmac::Mac;
    let mut mac =
        hmac::Hmac::<sha2::Sha256>::new_from_slice(root).map_err(|_| CoreError::Crypto)?;
    mac.update(b"fieldcase-keystore-passphrase-v1\n");
    mac.update(passphrase.as_bytes());
    let tag = Zeroizing::new(mac.finalize().into_bytes());
    Ok(SecretString::from(hex::encode(tag.as_slice())))
}

/// The data key, wrapped with age to one secret.
#[derive(Clone, Serialize, Deserialize)]
pub struct KeySlot {
    /// What it is wrapped to.
    pub kind: SlotKind,
    /// The age file holding the data key.
    #[serde(with = "crate::util::base64_bytes")]
    pub wrapped: Vec<u8>,
    /// For a passphrase slot of a pair (see [`Opened`]): a fixed-size blob, random in the slot
    /// that holds the data key and in a filler, sealed under the slot's key in a duress slot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kit: Option<String>,
}

/// What a passphrase slot opened to. Passphrase stores hold two passphrase slots of one kind, in
/// random order and of one size and work factor: the one holding the data key, and a companion
/// that is either a filler (random content under a random passphrase, which nothing opens) or
/// the duress slot (a key for the duress kit, under the duress PIN). Nothing but the passphrase
/// that opens one tells them apart.
pub enum Opened {
    /// The store's data key.
    Data(DataKey),
    /// The key of the duress kit: the duress PIN was entered.
    Duress(Zeroizing<[u8; 32]>),
}

/// Bytes a passphrase slot of a pair wraps: a 32-byte key and a 32-byte tag saying what it is.
const PAYLOAD_LEN: usize = 64;

fn payload_tag(key: &[u8; 32], duress: bool) -> Result<[u8; 32]> {
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).map_err(|_| CoreError::Crypto)?;
    mac.update(if duress {
        b"fieldcase-slot-duress-v1"
    } else {
        b"fieldcase-slot-data-v1\0\0"
    });
    Ok(mac.finalize().into_bytes().into())
}

fn payload(key: &[u8; 32], duress: bool) -> Result<Zeroizing<Vec<u8>>> {
    let mut out = Zeroizing::new(Vec::with_capacity(PAYLOAD_LEN));
    out.extend_from_slice(key);
    out.extend_from_slice(&payload_tag(key, duress)?);
    Ok(out)
}

fn secret_for(root: Option<&[u8; 32]>, passphrase: &str) -> Result<SecretString> {
    match root {
        Some(root) => bound_secret(root, passphrase),
        None => Ok(SecretString::from(passphrase.to_owned())),
    }
}

impl std::fmt::Debug for KeySlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeySlot({:?}, {} bytes)", self.kind, self.wrapped.len())
    }
}

fn identity_from_root(root: &[u8; 32]) -> Result<age::x25519::Identity> {
    let hrp = bech32::Hrp::parse("AGE-SECRET-KEY-").map_err(|_| CoreError::Crypto)?;
    let encoded = Zeroizing::new(
        bech32::encode::<bech32::Bech32>(hrp, root)
            .map_err(|_| CoreError::Crypto)?
            .to_uppercase(),
    );
    encoded.parse().map_err(|_| CoreError::Crypto)
}

fn wrap(key: &DataKey, recipient: &dyn age::Recipient) -> Result<Vec<u8>> {
    wrap_bytes(key.expose(), recipient)
}

fn wrap_bytes(bytes: &[u8], recipient: &dyn age::Recipient) -> Result<Vec<u8>> {
    let encryptor =
        age::Encryptor::with_recipients(iter::once(recipient)).map_err(|_| CoreError::Crypto)?;
    let mut out = Vec::with_capacity(256);
    let mut writer = encryptor.wrap_output(&mut out)?;
    writer.write_all(bytes)?;
    writer.finish()?;
    Ok(out)
}

/// Opens an age file to at most `max` bytes of plaintext.
fn unwrap_bytes(
    wrapped: &[u8],
    identity: &dyn age::Identity,
    max: usize,
) -> Result<Zeroizing<Vec<u8>>> {
    let decryptor = age::Decryptor::new_buffered(wrapped)
        .map_err(|_| CoreError::Corrupt { what: "key slot" })?;
    let mut reader = decryptor
        .decrypt(iter::once(identity))
        .map_err(|e| match e {
            age::DecryptError::NoMatchingKeys | age::DecryptError::DecryptionFailed => {
                CoreError::WrongKey
            }
            age::DecryptError::ExcessiveWork { .. } => CoreError::Corrupt {
                what: "key slot work factor",
            },
            _ => CoreError::Corrupt { what: "key slot" },
        })?;
    let mut plain = Zeroizing::new(Vec::with_capacity(max + 1));
    reader
        .by_ref()
        .take(max as u64 + 1)
        .read_to_end(&mut plain)
        .map_err(|_| CoreError::WrongKey)?;
    Ok(plain)
}

fn unwrap(wrapped: &[u8], identity: &dyn age::Identity) -> Result<DataKey> {
    let decryptor = age::Decryptor::new_buffered(wrapped)
        .map_err(|_| CoreError::Corrupt { what: "key slot" })?;
    let mut reader = decryptor
        .decrypt(iter::once(identity))
        .map_err(|e| match e {
            age::DecryptError::NoMatchingKeys | age::DecryptError::DecryptionFailed => {
                CoreError::WrongKey
            }
            age::DecryptError::ExcessiveWork { .. } => CoreError::Corrupt {
                what: "key slot work factor",
            },
            _ => CoreError::Corrupt { what: "key slot" },
        })?;
    let mut plain = Zeroizing::new(Vec::with_capacity(33));
    reader
        .by_ref()
        .take(33)
        .read_to_end(&mut plain)
        .map_err(|_| CoreError::WrongKey)?;
    let bytes: [u8; 32] = plain
        .as_slice()
        .try_into()
        .map_err(|_| CoreError::Corrupt { what: "key slot" })?;
    Ok(DataKey::from_bytes(Zeroizing::new(bytes)))
}

/// The work factor (log2 N) of the scrypt stanza in `header`, if it has a well-formed one
/// (`-> scrypt <salt> <log2 N>`).
fn scrypt_work_factor(header: &[u8]) -> Option<u8> {
    let at = header
        .windows(SCRYPT_STANZA.len())
        .position(|w| w == SCRYPT_STANZA)?;
    let line = &header[at + SCRYPT_STANZA.len()..];
    let line = &line[..line.iter().position(|b| *b == b'\n')?];
    let text = std::str::from_utf8(line).ok()?;
    let mut args = text.split(' ');
    let (_salt, factor, rest) = (args.next()?, args.next()?, args.next());
    if rest.is_some() || factor.len() > 2 {
        return None;
    }
    factor.parse().ok()
}

/// Checks an age header's shape before age parses it: magic, size, stanza count, and an scrypt
/// stanza present exactly when `kind` is a passphrase slot, with a work factor no lower than
/// [`MIN_SCRYPT_WORK_FACTOR`].
pub(crate) fn prescan(wrapped: &[u8], kind: SlotKind) -> Result<()> {
    let bad = || CoreError::Corrupt {
        what: "key slot header",
    };
    if !wrapped.starts_with(AGE_MAGIC) {
        return Err(bad());
    }
    let window = &wrapped[..wrapped.len().min(MAX_HEADER_BYTES)];
    let end = window
        .windows(5)
        .position(|w| w == b"\n--- ")
        .ok_or_else(bad)?;
    let header = &window[..end + 1];
    let stanzas = header.windows(4).filter(|w| w == b"\n-> ").count();
    if stanzas == 0 || stanzas > MAX_STANZAS {
        return Err(bad());
    }
    let has_scrypt = header
        .windows(SCRYPT_STANZA.len())
        .any(|w| w == SCRYPT_STANZA);
    match kind {
        SlotKind::Passphrase | SlotKind::KeystorePassphrase if !has_scrypt || stanzas != 1 => {
            Err(bad())
        }
        SlotKind::Passphrase | SlotKind::KeystorePassphrase => {
            let found = scrypt_work_factor(header).ok_or_else(bad)?;
            if found < MIN_SCRYPT_WORK_FACTOR {
                return Err(CoreError::KeySlotTooWeak {
                    found,
                    floor: MIN_SCRYPT_WORK_FACTOR,
                });
            }
            Ok(())
        }
        SlotKind::Keystore if has_scrypt => Err(bad()),
        SlotKind::Keystore => Ok(()),
    }
}

fn scrypt_recipient(secret: SecretString, work_factor: u8) -> age::scrypt::Recipient {
    let mut recipient = age::scrypt::Recipient::new(secret);
    recipient.set_work_factor(work_factor.clamp(MIN_SCRYPT_WORK_FACTOR, MAX_SCRYPT_WORK_FACTOR));
    recipient
}

fn scrypt_identity(secret: SecretString) -> age::scrypt::Identity {
    let mut identity = age::scrypt::Identity::new(secret);
    identity.set_max_work_factor(MAX_SCRYPT_WORK_FACTOR);
    identity
}

impl KeySlot {
    /// Wraps `key` to the keystore's 32-byte root secret.
    pub fn for_keystore(key: &DataKey, root: &[u8; 32]) -> Result<Self> {
        let identity = identity_from_root(root)?;
        Ok(Self {
            kind: SlotKind::Keystore,
            wrapped: wrap(key, &identity.to_public())?,
            kit: None,
        })
    }

    /// Wraps `key` to a passphrase alone with scrypt at `work_factor` (log2 N, kept between
    /// [`MIN_SCRYPT_WORK_FACTOR`] and [`MAX_SCRYPT_WORK_FACTOR`]). For stores made without a
    /// keystore only.
    pub fn for_passphrase(key: &DataKey, passphrase: &str, work_factor: u8) -> Result<Self> {
        let recipient = scrypt_recipient(SecretString::from(passphrase.to_owned()), work_factor);
        Ok(Self {
            kind: SlotKind::Passphrase,
            wrapped: wrap(key, &recipient)?,
            kit: None,
        })
    }

    /// Wraps `key` to the keystore's root secret and a passphrase together
    /// ([`SlotKind::KeystorePassphrase`]), with scrypt at `work_factor` (kept between the floor
    /// and the ceiling).
    pub fn for_keystore_and_passphrase(
        key: &DataKey,
        root: &[u8; 32],
        passphrase: &str,
        work_factor: u8,
    ) -> Result<Self> {
        let recipient = scrypt_recipient(bound_secret(root, passphrase)?, work_factor);
        Ok(Self {
            kind: SlotKind::KeystorePassphrase,
            wrapped: wrap(key, &recipient)?,
            kit: None,
        })
    }

    /// Unwraps the data key with the keystore's root secret and the passphrase together.
    pub fn open_with_keystore_and_passphrase(
        &self,
        root: &[u8; 32],
        passphrase: &str,
    ) -> Result<DataKey> {
        if self.kind != SlotKind::KeystorePassphrase {
            return Err(CoreError::WrongKey);
        }
        prescan(&self.wrapped, self.kind)?;
        unwrap(
            &self.wrapped,
            &scrypt_identity(bound_secret(root, passphrase)?),
        )
    }

    /// Wraps `key` to an age X25519 recipient (the office server's identity in its key file).
    pub fn for_recipient(key: &DataKey, recipient: &age::x25519::Recipient) -> Result<Self> {
        Ok(Self {
            kind: SlotKind::Keystore,
            wrapped: wrap(key, recipient)?,
            kit: None,
        })
    }

    /// A passphrase slot of a pair holding the data key (`duress` false) or a duress kit's key
    /// (`duress` true), wrapped to `passphrase`, bound to the keystore's secret `root` when
    /// there is one, at `work_factor`.
    pub fn for_pair(
        key: &[u8; 32],
        duress: bool,
        root: Option<&[u8; 32]>,
        passphrase: &str,
        work_factor: u8,
    ) -> Result<Self> {
        let recipient = scrypt_recipient(secret_for(root, passphrase)?, work_factor);
        Ok(Self {
            kind: if root.is_some() {
                SlotKind::KeystorePassphrase
            } else {
                SlotKind::Passphrase
            },
            wrapped: wrap_bytes(&payload(key, duress)?, &recipient)?,
            kit: None,
        })
    }

    /// A filler for a pair: random content under a random passphrase, which nothing opens,
    /// of the same kind, size and work factor as the slot beside it.
    pub fn filler(root: Option<&[u8; 32]>, work_factor: u8) -> Result<Self> {
        use rand::RngCore;
        let mut noise = Zeroizing::new([0u8; 64]);
        rand::rngs::OsRng.fill_bytes(noise.as_mut());
        let passphrase = Zeroizing::new(hex::encode(&noise[32..]));
        let recipient = scrypt_recipient(secret_for(root, &passphrase)?, work_factor);
        rand::rngs::OsRng.fill_bytes(noise.as_mut());
        Ok(Self {
            kind: if root.is_some() {
                SlotKind::KeystorePassphrase
            } else {
                SlotKind::Passphrase
            },
            wrapped: wrap_bytes(noise.as_slice(), &recipient)?,
            kit: None,
        })
    }

    /// Opens a passphrase slot with `passphrase` (bound to `root` for a keystore-and-passphrase
    /// slot): the data key, or the key of a duress kit. A slot written before pairs existed holds
    /// the bare data key.
    pub fn open_secret(&self, root: Option<&[u8; 32]>, passphrase: &str) -> Result<Opened> {
        let root = match (self.kind, root) {
            (SlotKind::KeystorePassphrase, Some(root)) => Some(root),
            (SlotKind::Passphrase, _) => None,
            _ => return Err(CoreError::WrongKey),
        };
        prescan(&self.wrapped, self.kind)?;
        let plain = unwrap_bytes(
            &self.wrapped,
            &scrypt_identity(secret_for(root, passphrase)?),
            PAYLOAD_LEN,
        )?;
        let mut key = Zeroizing::new([0u8; 32]);
        match plain.len() {
            32 => {
                key.copy_from_slice(&plain);
                Ok(Opened::Data(DataKey::from_bytes(key)))
            }
            PAYLOAD_LEN => {
                key.copy_from_slice(&plain[..32]);
                let tag = &plain[32..];
                if payload_tag(&key, false)?.as_slice() == tag {
                    Ok(Opened::Data(DataKey::from_bytes(key)))
                } else if payload_tag(&key, true)?.as_slice() == tag {
                    Ok(Opened::Duress(key))
                } else {
                    Err(CoreError::Corrupt { what: "key slot" })
                }
            }
            _ => Err(CoreError::Corrupt { what: "key slot" }),
        }
    }

    /// The scrypt work factor of a passphrase slot.
    pub fn work_factor(&self) -> Option<u8> {
        let end = self.wrapped.len().min(MAX_HEADER_BYTES);
        scrypt_work_factor(&self.wrapped[..end])
    }

    /// Unwraps the data key with an age X25519 identity.
    pub fn open_with_identity(&self, identity: &age::x25519::Identity) -> Result<DataKey> {
        prescan(&self.wrapped, SlotKind::Keystore)?;
        unwrap(&self.wrapped, identity)
    }

    /// Unwraps the data key with the keystore's root secret.
    pub fn open_with_keystore(&self, root: &[u8; 32]) -> Result<DataKey> {
        if self.kind != SlotKind::Keystore {
            return Err(CoreError::WrongKey);
        }
        prescan(&self.wrapped, self.kind)?;
        unwrap(&self.wrapped, &identity_from_root(root)?)
    }

    /// Unwraps the data key with a passphrase.
    pub fn open_with_passphrase(&self, passphrase: &str) -> Result<DataKey> {
        if self.kind != SlotKind::Passphrase {
            return Err(CoreError::WrongKey);
        }
        prescan(&self.wrapped, self.kind)?;
        unwrap(
            &self.wrapped,
            &scrypt_identity(SecretString::from(passphrase.to_owned())),
        )
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn keystore_slot_opens_only_with_its_key() {
        let key = DataKey::generate();
        let slot = KeySlot::for_keystore(&key, &[7u8; 32]).unwrap();
        assert_eq!(
            slot.open_with_keystore(&[7u8; 32]).unwrap().expose(),
            key.expose()
        );
        assert!(matches!(
            slot.open_with_keystore(&[8u8; 32]),
            Err(CoreError::WrongKey)
        ));
        assert!(matches!(
            slot.open_with_passphrase("x"),
            Err(CoreError::WrongKey)
        ));
    }

    #[test]
    fn passphrase_slot_opens_only_with_its_passphrase() {
        let key = DataKey::generate();
        let slot = KeySlot::for_passphrase(&key, "correct horse", MIN_SCRYPT_WORK_FACTOR).unwrap();
        assert_eq!(
            slot.open_with_passphrase("correct horse").unwrap().expose(),
            key.expose()
        );
        assert!(matches!(
            slot.open_with_passphrase("wrong"),
            Err(CoreError::WrongKey)
        ));
    }

    #[test]
    fn a_bound_slot_opens_only_with_the_keystore_secret_and_the_passphrase_together() {
        let key = DataKey::generate();
        let slot = KeySlot::for_keystore_and_passphrase(&key, &[7; 32], "plum kettle", 1).unwrap();
        assert_eq!(
            slot.open_with_keystore_and_passphrase(&[7; 32], "plum kettle")
                .unwrap()
                .expose(),
            key.expose()
        );
        for (root, pass) in [([8; 32], "plum kettle"), ([7; 32], "plum kettles")] {
            assert!(matches!(
                slot.open_with_keystore_and_passphrase(&root, pass),
                Err(CoreError::WrongKey)
            ));
        }
        // Neither half alone is a key this slot knows.
        assert!(matches!(
            slot.open_with_passphrase("plum kettle"),
            Err(CoreError::WrongKey)
        ));
        assert!(matches!(
            slot.open_with_keystore(&[7; 32]),
            Err(CoreError::WrongKey)
        ));
        // A work factor asked below the floor was raised to it.
        assert_eq!(
            scrypt_work_factor(&slot.wrapped),
            Some(MIN_SCRYPT_WORK_FACTOR)
        );
    }

    #[test]
    fn a_pair_tells_the_data_key_from_the_duress_key_only_to_its_passphrase() {
        let root = [7; 32];
        let data = KeySlot::for_pair(&[1; 32], false, Some(&root), "plum kettle", 16).unwrap();
        let duress = KeySlot::for_pair(&[2; 32], true, Some(&root), "tram nine", 16).unwrap();
        let filler = KeySlot::filler(Some(&root), 16).unwrap();
        // One size, one kind, one work factor.
        assert_eq!(data.wrapped.len(), duress.wrapped.len());
        assert_eq!(data.wrapped.len(), filler.wrapped.len());
        assert_eq!(data.kind, duress.kind);
        assert_eq!(filler.work_factor(), Some(16));
        assert!(matches!(
            data.open_secret(Some(&root), "plum kettle"),
            Ok(Opened::Data(k)) if k.expose() == &[1; 32]
        ));
        assert!(matches!(
            duress.open_secret(Some(&root), "tram nine"),
            Ok(Opened::Duress(k)) if *k == [2; 32]
        ));
        for slot in [&data, &duress, &filler] {
            assert!(matches!(
                slot.open_secret(Some(&[8; 32]), "tram nine"),
                Err(CoreError::WrongKey)
            ));
        }
    }

    #[test]
    fn a_slot_below_the_work_factor_floor_is_refused_before_scrypt_runs() {
        let key = DataKey::generate();
        // Made as an old build or a tampered key file would: age directly at log2 N = 10.
        let mut recipient = age::scrypt::Recipient::new(SecretString::from("p".to_owned()));
        recipient.set_work_factor(10);
        let slot = KeySlot {
            kind: SlotKind::Passphrase,
            wrapped: wrap(&key, &recipient).unwrap(),
            kit: None,
        };
        assert!(matches!(
            slot.open_with_passphrase("p"),
            Err(CoreError::KeySlotTooWeak {
                found: 10,
                floor: MIN_SCRYPT_WORK_FACTOR
            })
        ));
    }

    #[test]
    fn hostile_headers_are_refused_before_parsing() {
        let key = DataKey::generate();
        // A keystore slot must not carry an scrypt stanza (it would let an attacker make unlock
        // run scrypt at a work factor of their choosing).
        let scrypt = KeySlot::for_passphrase(&key, "p", MIN_SCRYPT_WORK_FACTOR).unwrap();
        let forged = KeySlot {
            kind: SlotKind::Keystore,
            wrapped: scrypt.wrapped.clone(),
            kit: None,
        };
        assert!(matches!(
            forged.open_with_keystore(&[1; 32]),
            Err(CoreError::Corrupt { .. })
        ));
        // Too many stanzas.
        let mut many = AGE_MAGIC.to_vec();
        for _ in 0..(MAX_STANZAS + 1) {
            many.extend_from_slice(b"-> X25519 AAAA\nAAAA\n");
        }
        many.extend_from_slice(b"--- AAAA\n");
        let slot = KeySlot {
            kind: SlotKind::Keystore,
            wrapped: many,
            kit: None,
        };
        assert!(matches!(
            slot.open_with_keystore(&[1; 32]),
            Err(CoreError::Corrupt { .. })
        ));
        // Not age at all, and an endless header.
        let slot = KeySlot {
            kind: SlotKind::Keystore,
            wrapped: b"garbage".to_vec(),
            kit: None,
        };
        assert!(slot.open_with_keystore(&[1; 32]).is_err());
        let mut endless = AGE_MAGIC.to_vec();
        endless.resize(MAX_HEADER_BYTES * 2, b'a');
        let slot = KeySlot {
            kind: SlotKind::Keystore,
            wrapped: endless,
            kit: None,
        };
        assert!(slot.open_with_keystore(&[1; 32]).is_err());
    }
}
