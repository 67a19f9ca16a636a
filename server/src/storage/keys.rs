//! The server's secret key file (`server.key`, mode 0600, outside the database).
//!
//! It holds an age X25519 identity (for encrypting data at rest) and an Ed25519 signing key (for
//! signing wipe orders). Both are generated on first start. The file is TOML:
//!
//! ```toml
//! age_identity = "AGE-SECRET-KEY-1..."
//! ed25519_signing_key = "<64 hex digits>"
//! ```

use std::io::Write;
use std::path::Path;

use age::secrecy::ExposeSecret;
use ed25519_dalek::{SigningKey, VerifyingKey};
use rand::rngs::OsRng;
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

use crate::error::ServerError;
use crate::storage::data_dir::create_private;

pub use crate::storage::data_dir::KEY_FILE;

/// The server's long-term secrets. Zeroized on drop.
pub struct ServerKeys {
    /// Age identity for at-rest encryption.
    pub age_identity: age::x25519::Identity,
    /// Ed25519 key that signs wipe orders.
    pub signing_key: SigningKey,
}

impl std::fmt::Debug for ServerKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerKeys")
            .field("age_recipient", &self.age_identity.to_public().to_string())
            .field(
                "signing_public",
                &hex::encode(self.signing_key.verifying_key().as_bytes()),
            )
            .finish_non_exhaustive()
    }
}

#[derive(Serialize, Deserialize, Zeroize)]
#[zeroize(drop)]
struct KeyFileContents {
    age_identity: String,
    ed25519_signing_key: String,
}

impl ServerKeys {
    /// The public half of the signing key, as sent to devices.
    pub fn verifying_key(&self) -> VerifyingKey {
        self.signing_key.verifying_key()
    }

    /// A key for one purpose, derived from the signing key (HKDF-SHA256, `purpose` as the
    /// info): keyed tags and MACs of the office use these, so that whoever holds a copy of the
    /// database but not `server.key` can neither compute nor forge them.
    pub fn derive(&self, purpose: &str) -> Result<Zeroizing<[u8; 32]>, ServerError> {
        let secret = Zeroizing::new(self.signing_key.to_bytes());
        let hkdf = hkdf::Hkdf::<sha2::Sha256>::new(Some(b"fieldcase-server-keys-v1"), &*secret);
        let mut key = Zeroizing::new([0u8; 32]);
        hkdf.expand(purpose.as_bytes(), key.as_mut())
            .map_err(|_| ServerError::Internal("deriving a key"))?;
        Ok(key)
    }

    /// Loads the key file of an existing office; [`ServerError::NoOffice`] when `data_dir` holds
    /// none (an admin command must not make a second, empty office by mistake).
    pub fn load(data_dir: &Path) -> Result<ServerKeys, ServerError> {
        match std::fs::read(data_dir.join(KEY_FILE)) {
            Ok(bytes) => Self::parse(&Zeroizing::new(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(ServerError::NoOffice(data_dir.to_path_buf()))
            }
            Err(e) => Err(ServerError::io("reading the server key file")(e)),
        }
    }

    /// Loads the key file in `data_dir`, creating it (mode 0600) if it does not exist.
    pub fn load_or_create(data_dir: &Path) -> Result<ServerKeys, ServerError> {
        let path = data_dir.join(KEY_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => {
                let bytes = Zeroizing::new(bytes);
                Self::parse(&bytes)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let keys = ServerKeys {
                    age_identity: age::x25519::Identity::generate(),
                    signing_key: SigningKey::generate(&mut OsRng),
                };
                keys.write_new(&path)?;
                tracing::info!("generated a new server key file");
                Ok(keys)
            }
            Err(e) => Err(ServerError::io("reading the server key file")(e)),
        }
    }

    /// Reads the contents of a key file (as a backup holds it).
    pub fn parse(bytes: &[u8]) -> Result<ServerKeys, ServerError> {
        let text = std::str::from_utf8(bytes).map_err(|_| ServerError::KeyFile("not UTF-8"))?;
        let contents: KeyFileContents =
            toml::from_str(text).map_err(|_| ServerError::KeyFile("not the expected TOML"))?;
        let age_identity: age::x25519::Identity = contents
            .age_identity
            .parse()
            .map_err(|_| ServerError::KeyFile("bad age identity"))?;
        let mut raw = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(&contents.ed25519_signing_key, raw.as_mut())
            .map_err(|_| ServerError::KeyFile("bad signing key"))?;
        Ok(ServerKeys {
            age_identity,
            signing_key: SigningKey::from_bytes(&raw),
        })
    }

    fn write_new(&self, path: &Path) -> Result<(), ServerError> {
        let contents = KeyFileContents {
            age_identity: self.age_identity.to_string().expose_secret().to_owned(),
            ed25519_signing_key: hex::encode(self.signing_key.to_bytes()),
        };
        let text = Zeroizing::new(
            toml::to_string(&contents).map_err(|_| ServerError::Internal("key file encoding"))?,
        );
        let mut file = create_private(path)?;
        file.write_all(b"# fieldcase server secret keys. Keep this file private and backed up.\n")
            .and_then(|()| file.write_all(text.as_bytes()))
            .and_then(|()| file.sync_all())
            .map_err(ServerError::io("writing the server key file"))
    }
}
