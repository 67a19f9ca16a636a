//! The platform keystore as a foreign trait: the Android Keystore or the iOS Keychain implements
//! [`KeyStore`] in Kotlin or Swift and holds the 32-byte root secret; it crosses the FFI as bytes,
//! never as a string, and is copied into `Zeroizing` memory at once.
//!
//! The foreign object is never called while core holds the store's lock: the key is fetched
//! before a call into core, and core's wipe asks for the destroy with the store's lock released,
//! so a keystore implementation that calls back into the device cannot deadlock.

use std::sync::Arc;

use fieldcase_core::crypto::{KeyError, KeyProvider};
use zeroize::{Zeroize, Zeroizing};

use crate::error::KeyStoreError;

/// The platform keystore, implemented by the app (Android Keystore, iOS Keychain).
#[uniffi::export(with_foreign)]
pub trait KeyStore: Send + Sync {
    /// The 32-byte root secret of this app's store (created by the platform on first use).
    /// [`KeyStoreError::AuthenticationRequired`] when the platform holds it only for a user who
    /// has just authenticated: the app asks her to, then calls again.
    fn root_key(&self) -> Result<Vec<u8>, KeyStoreError>;
    /// Destroys the root secret: deletes the keystore entry. Core calls it itself on every wipe
    /// (a panic wipe, the office's wipe order met during a sync) with the keystore the device
    /// was last given. Not named `destroy`: that name is taken by the generated Kotlin objects.
    fn destroy_key(&self) -> Result<(), KeyStoreError>;
}

/// A root key fetched from the foreign keystore before calling core.
pub(crate) struct FetchedKey {
    key: Option<Zeroizing<[u8; 32]>>,
}

impl FetchedKey {
    /// Asks the foreign keystore for its key; anything but 32 bytes is refused.
    pub(crate) fn fetch(store: &dyn KeyStore) -> Result<Self, KeyError> {
        let mut bytes = store.root_key().map_err(|e| match e {
            KeyStoreError::AuthenticationRequired => KeyError::AuthenticationRequired,
            other => KeyError::Unavailable(other.to_string()),
        })?;
        let result = <[u8; 32]>::try_from(bytes.as_slice())
            .map(|k| Self {
                key: Some(Zeroizing::new(k)),
            })
            .map_err(|_| {
                KeyError::Unavailable(format!(
                    "the keystore returned {} bytes, not 32",
                    bytes.len()
                ))
            });
        bytes.zeroize();
        result
    }
}

impl KeyProvider for FetchedKey {
    fn root_key(&self) -> Result<Zeroizing<[u8; 32]>, KeyError> {
        self.key
            .clone()
            .ok_or_else(|| KeyError::Unavailable("no key was fetched for this call".to_owned()))
    }
}

/// The foreign keystore as core keeps it for wipes: it only destroys (core never asks a kept
/// keystore for its key; keys are fetched before each call).
pub(crate) struct KeptKeyStore(pub(crate) Arc<dyn KeyStore>);

impl KeyProvider for KeptKeyStore {
    fn root_key(&self) -> Result<Zeroizing<[u8; 32]>, KeyError> {
        Err(KeyError::Unavailable(
            "a kept keystore is only for wipes".to_owned(),
        ))
    }

    fn destroy(&self) -> Result<(), String> {
        self.0.destroy_key().map_err(|e| e.to_string())
    }
}
