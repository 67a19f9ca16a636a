//! The platform keystore's side of the key hierarchy, behind a trait the app implements.

use std::sync::Mutex;

use zeroize::Zeroizing;

/// Why a key provider could not hand out its key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The platform holds the key only for a user who has just authenticated (device PIN,
    /// pattern, password or biometrics): the app asks her to, then calls again. Reported as
    /// [`crate::CoreError::AuthenticationRequired`].
    #[error("the keystore needs the user to authenticate first")]
    AuthenticationRequired,
    /// The key is not there or the platform failed (reported as
    /// [`crate::CoreError::KeyProvider`]).
    #[error("{0}")]
    Unavailable(String),
}

impl From<String> for KeyError {
    fn from(s: String) -> Self {
        KeyError::Unavailable(s)
    }
}

impl From<KeyError> for crate::CoreError {
    fn from(e: KeyError) -> Self {
        match e {
            KeyError::AuthenticationRequired => crate::CoreError::AuthenticationRequired,
            KeyError::Unavailable(s) => crate::CoreError::KeyProvider(s),
        }
    }
}

/// Supplies the 32-byte root secret that the Android Keystore or the iOS Keychain holds for this
/// app. Keys never cross the FFI as strings; the shells implement this trait.
pub trait KeyProvider: Send + Sync {
    /// The root secret. The shells make it usable only after the user authenticated
    /// ([`KeyError::AuthenticationRequired`] until then).
    fn root_key(&self) -> Result<Zeroizing<[u8; 32]>, KeyError>;

    /// Destroys the root secret in the keystore (the shells delete the keystore entry). Called by
    /// every wipe of core, after the key file is shredded and with the store's lock released, so
    /// that nothing that survives a wipe opens an old copy of the key file or the database.
    fn destroy(&self) -> Result<(), String> {
        Ok(())
    }
}

impl<T: KeyProvider + ?Sized> KeyProvider for std::sync::Arc<T> {
    fn root_key(&self) -> Result<Zeroizing<[u8; 32]>, KeyError> {
        (**self).root_key()
    }

    fn destroy(&self) -> Result<(), String> {
        (**self).destroy()
    }
}

/// A key provider holding its key in memory: for tests, benchmarks and desktop tools.
pub struct StaticKeyProvider(Mutex<Option<Zeroizing<[u8; 32]>>>);

impl StaticKeyProvider {
    /// A provider that hands out `key` until destroyed.
    pub fn new(key: [u8; 32]) -> Self {
        Self(Mutex::new(Some(Zeroizing::new(key))))
    }

    /// A provider with a fresh random key.
    pub fn random() -> Self {
        use rand::RngCore;
        let mut key = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut key);
        let provider = Self::new(key);
        zeroize::Zeroize::zeroize(&mut key);
        provider
    }
}

impl KeyProvider for StaticKeyProvider {
    fn root_key(&self) -> Result<Zeroizing<[u8; 32]>, KeyError> {
        self.0
            .lock()
            .map_err(|_| KeyError::Unavailable("key provider poisoned".to_string()))?
            .clone()
            .ok_or_else(|| KeyError::Unavailable("the key was destroyed".to_string()))
    }

    fn destroy(&self) -> Result<(), String> {
        *self
            .0
            .lock()
            .map_err(|_| "key provider poisoned".to_string())? = None;
        Ok(())
    }
}
