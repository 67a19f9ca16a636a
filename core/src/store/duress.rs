//! The duress PIN: a second passphrase that, entered at unlock, destroys the real store at once
//! and opens a workspace that looks like a phone with no cases assigned yet.
//!
//! A store with a passphrase holds two passphrase slots of one kind, size and work factor, in
//! random order ([`crate::crypto::Opened`]): the one that holds the data key, and a companion.
//! Without a duress PIN the companion is a filler; with one it holds the key of the *duress kit*,
//! wrapped to the duress PIN (bound to the keystore key like the passphrase). Every slot of the
//! pair carries a kit blob of one fixed size: random in the data slot and in a filler, in the
//! duress slot the kit sealed under its key, which holds what the workspace needs to look like
//! this phone (who it belongs to, its credential for the office, its lease) and the duress notice
//! for the office, signed with the device key and sealed to the office's key when the PIN was
//! set. Both blobs are written again after every sync, so the kit follows the lease and the pins
//! and no diff of the key file tells which slot changed.
//!
//! Unlock runs scrypt over both slots whatever the passphrase, so the duress PIN costs the same
//! key derivation as the real one. When it opens the duress slot, the store shreds the key file
//! (the only wrapping of the data key), deletes the database, and builds a new store in its place
//! from the kit: a new data key wrapped to the duress PIN (which is from then on this store's
//! passphrase) with a filler beside it, the credential and the lease, no case. The duress notice
//! becomes the statement the key file holds for the office (the key file's `held`), which every
//! store holds (a prepared panic receipt for the others) and every sync sends, sealed; the office
//! reads it, revokes the phone and alerts the worker's team. Nothing written to the folder says
//! "duress": the new store is what a phone enrolled with the duress PIN as its passphrase and no
//! case assigned would hold.

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::crypto::DataKey;
use crate::error::{CoreError, Result};

/// Size of a kit before sealing: room for the credential, the lease and the notice.
pub(crate) const KIT_LEN: usize = 6144;
/// The `meta` row that holds the companion slot's key (and, with a duress PIN, the notice).
pub(crate) const COMPANION_ROW: &str = "companion";
/// `meta` rows a kit carries over to the workspace.
pub(crate) const KIT_ROWS: &[&str] = &["credential", "lease"];

/// The sealed `companion` row: the key of the companion slot, whether it is the duress slot, and
/// its notice for the office. Every store with a passphrase has one.
#[derive(Serialize, Deserialize)]
pub(crate) struct Companion {
    /// The companion slot's key (hex): the kit's key for a duress slot, random for a filler.
    pub key: String,
    /// Whether the companion is the duress slot.
    pub duress: bool,
    /// The duress notice sealed to the office (base64), for a duress slot.
    #[serde(default)]
    pub notice: Option<String>,
    /// The workspace's key file, made when the PIN was set, for a duress slot.
    #[serde(default)]
    pub workspace: Option<Workspace>,
}

/// The key file of the workspace the duress PIN opens, made when the PIN was set, so that the
/// duress unlock runs no more key derivation than a real one: a new data key, wrapped to the PIN
/// in a pair with a filler.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct Workspace {
    /// The workspace's data key (hex).
    pub key: String,
    /// The workspace's store id (its kit blobs are bound to it).
    pub store_id: uuid::Uuid,
    /// Its two passphrase slots, in their order.
    pub slots: Vec<crate::crypto::KeySlot>,
    /// Which of them holds the data key.
    pub real_slot: usize,
}

impl Workspace {
    /// The workspace's data key.
    pub(crate) fn key(&self) -> Result<Zeroizing<[u8; 32]>> {
        let bytes = crate::protocol::decode_hex_array::<32>(&self.key)
            .map_err(|_| CoreError::Corrupt { what: "kit" })?;
        Ok(Zeroizing::new(bytes))
    }
}

impl Drop for Workspace {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.key);
    }
}

impl Companion {
    /// A filler's row.
    pub(crate) fn filler() -> Self {
        use rand::RngCore;
        let mut key = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(key.as_mut());
        Self {
            key: hex::encode(key.as_slice()),
            duress: false,
            notice: None,
            workspace: None,
        }
    }

    /// The companion slot's key.
    pub(crate) fn key(&self) -> Result<Zeroizing<[u8; 32]>> {
        let bytes =
            crate::protocol::decode_hex_array::<32>(&self.key).map_err(|_| CoreError::Corrupt {
                what: "companion row",
            })?;
        Ok(Zeroizing::new(bytes))
    }
}

impl Drop for Companion {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.key);
    }
}

/// What the workspace opened with the duress PIN needs to look like this phone.
#[derive(Serialize, Deserialize)]
pub(crate) struct Kit {
    /// Whom the store belongs to.
    pub identity: super::StoreIdentity,
    /// Sealed `meta` rows carried over ([`KIT_ROWS`]), as their JSON values.
    pub rows: Vec<(String, serde_json::Value)>,
    /// The duress notice sealed to the office (base64).
    pub notice: String,
    /// The workspace's key file, made when the PIN was set.
    pub workspace: Option<Workspace>,
}

fn aad(store_id: &uuid::Uuid) -> Vec<u8> {
    let mut aad = store_id.as_bytes().to_vec();
    aad.extend_from_slice(b"slot kit");
    aad
}

/// A kit blob that holds nothing: what the data slot and a filler carry (indistinguishable from
/// a sealed kit).
pub(crate) fn empty_blob(store_id: &uuid::Uuid) -> Result<String> {
    use base64::Engine;
    let sealed = crate::crypto::seal(
        &DataKey::generate(),
        &aad(store_id),
        &Zeroizing::new(vec![0u8; KIT_LEN]),
    )?;
    Ok(base64::engine::general_purpose::STANDARD.encode(sealed))
}

/// Seals `kit` under the duress slot's key, padded to [`KIT_LEN`].
pub(crate) fn seal_kit(kit: &Kit, key: &[u8; 32], store_id: &uuid::Uuid) -> Result<String> {
    use base64::Engine;
    let mut plain =
        Zeroizing::new(serde_json::to_vec(kit).map_err(|_| CoreError::Corrupt { what: "kit" })?);
    if plain.len() > KIT_LEN {
        return Err(CoreError::Corrupt { what: "kit" });
    }
    plain.resize(KIT_LEN, b' ');
    let sealed = crate::crypto::seal(
        &DataKey::from_bytes(Zeroizing::new(*key)),
        &aad(store_id),
        &plain,
    )?;
    Ok(base64::engine::general_purpose::STANDARD.encode(sealed))
}

/// Opens a kit sealed with [`seal_kit`].
pub(crate) fn open_kit(blob: &str, key: &[u8; 32], store_id: &uuid::Uuid) -> Result<Kit> {
    use base64::Engine;
    let bad = || CoreError::Corrupt { what: "kit" };
    let sealed = base64::engine::general_purpose::STANDARD
        .decode(blob)
        .map_err(|_| bad())?;
    let plain = crate::crypto::open(
        &DataKey::from_bytes(Zeroizing::new(*key)),
        &aad(store_id),
        &sealed,
        "kit",
    )?;
    serde_json::from_slice(&plain).map_err(|_| bad())
}
