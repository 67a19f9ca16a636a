//! The key hierarchy: one random data key seals every record with XChaCha20-Poly1305; age wraps
//! that data key to the platform keystore's key and/or a passphrase.
//!
//! Why two layers: an age encryption costs about 200 µs and 300 bytes (an X25519 exchange each),
//! an AEAD seal about 5 µs and 40 bytes, so age wraps keys and the AEAD seals records
//! (DESIGN.md section 4). Every secret here lives in `Zeroizing` memory and is wiped on drop.

mod aead;
mod keyslot;
pub mod office;
mod passphrase;
mod provider;

pub use aead::{DataKey, SEAL_OVERHEAD, open, seal};
pub use keyslot::{
    DEFAULT_SCRYPT_WORK_FACTOR, KeySlot, MAX_SCRYPT_WORK_FACTOR, MIN_SCRYPT_WORK_FACTOR, Opened,
    SlotKind,
};
pub use passphrase::{MIN_PASSPHRASE_CHARS, MIN_PASSPHRASE_SCORE, check_passphrase_strength};
pub use provider::{KeyError, KeyProvider, StaticKeyProvider};
