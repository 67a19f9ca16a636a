//! The phone as a whole: a store plus the credential it enrolled with, so that the app (through
//! the bindings) enrolls once, then unlocks, edits and syncs.
//!
//! The credential (device id, Ed25519 signing key, server address, pinned certificate
//! fingerprint, server public key) is kept sealed in the store like case data, so a locked or
//! wiped phone cannot sign requests either.

use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::{CoreError, Result};
use crate::ids::{DeviceId, UserId};
use crate::protocol::Fingerprint;
use crate::store::{KeySetup, Store, StoreIdentity, StoreOptions};
use crate::sync::{SyncReport, SyncTransport};
use crate::transport::{self, Client, DeviceClient, DeviceCredential, TransportError};

/// Path of the sync endpoint.
pub const PATH_SYNC: &str = "/v1/sync";
const CREDENTIAL_ROW: &str = "credential";

/// Where the server is and how to recognise it.
#[derive(Debug, Clone)]
pub struct ServerAddress {
    /// `https://host:port`.
    pub url: String,
    /// SHA-256 of the server's certificate, given with the enrollment code.
    pub pin: Fingerprint,
}

#[derive(Serialize, Deserialize)]
struct SealedCredential {
    device_id: uuid::Uuid,
    signing_key: String,
    server_url: String,
    pin: String,
    server_public_key: String,
}

impl Drop for SealedCredential {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.signing_key);
    }
}

/// An enrolled phone: its encrypted store and its server credential.
#[derive(Debug)]
pub struct Device {
    store: Store,
}

impl From<TransportError> for CoreError {
    fn from(e: TransportError) -> Self {
        CoreError::Network(e)
    }
}

impl Device {
    /// Enrolls this phone with the code an admin issued: generates the device key (which never
    /// leaves the phone), registers its public half with the pinned server, and creates the
    /// encrypted store in `dir`, unlocked.
    pub fn enroll(
        dir: &std::path::Path,
        server: &ServerAddress,
        code: &str,
        keys: KeySetup<'_>,
        options: StoreOptions,
    ) -> Result<Self> {
        let signing_key = SigningKey::generate(&mut rand::rngs::OsRng);
        let enrolled = transport::enroll(&server.url, server.pin, code, &signing_key)?;
        let identity = StoreIdentity {
            user: UserId::from_uuid(enrolled.user_id),
            device: DeviceId::from_uuid(enrolled.device_id),
        };
        let store = Store::create(dir, &identity, keys, options)?;
        let credential = SealedCredential {
            device_id: enrolled.device_id,
            signing_key: hex::encode(signing_key.to_bytes()),
            server_url: server.url.clone(),
            pin: server.pin.to_hex(),
            server_public_key: enrolled.server_public_key.clone(),
        };
        store.put_sealed_meta(CREDENTIAL_ROW, &credential)?;
        Ok(Self { store })
    }

    /// Opens an enrolled phone's store, locked.
    pub fn open(dir: &std::path::Path, options: StoreOptions) -> Result<Self> {
        Ok(Self {
            store: Store::open(dir, options)?,
        })
    }

    /// The store, for everything the screens do.
    pub fn store(&self) -> &Store {
        &self.store
    }

    fn client(&self) -> Result<DeviceClient> {
        let credential: SealedCredential = self
            .store
            .get_sealed_meta(CREDENTIAL_ROW)?
            .ok_or(CoreError::NoStore)?;
        let key_bytes = Zeroizing::new(
            crate::protocol::decode_hex_array::<32>(&credential.signing_key)
                .map_err(|_| CoreError::Corrupt { what: "credential" })?,
        );
        let pin = Fingerprint::parse(&credential.pin)
            .map_err(|_| CoreError::Corrupt { what: "credential" })?;
        let client = Client::new(&credential.server_url, pin)?;
        Ok(DeviceClient::new(
            client,
            DeviceCredential::new(credential.device_id, SigningKey::from_bytes(&key_bytes)),
        ))
    }

    /// Syncs with the office now (the store must be unlocked).
    pub fn sync_now(&self) -> Result<SyncReport> {
        let mut transport = HttpsSync {
            client: self.client()?,
        };
        crate::sync::sync(&self.store, &mut transport)
    }
}

/// The sync transport over the pinned, signed HTTPS client.
pub struct HttpsSync {
    client: DeviceClient,
}

impl HttpsSync {
    /// Wraps a signed client.
    pub fn new(client: DeviceClient) -> Self {
        Self { client }
    }
}

impl SyncTransport for HttpsSync {
    fn round_trip(&mut self, request: &[u8]) -> Result<Vec<u8>> {
        Ok(self.client.post(PATH_SYNC, request)?)
    }
}
