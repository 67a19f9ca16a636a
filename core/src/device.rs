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
use crate::protocol::{WipeOrder, WipeReceipt};
use crate::store::WipeReport;
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
        let server_key =
            crate::protocol::decode_public_key(&enrolled.server_public_key).map_err(|_| {
                CoreError::Corrupt {
                    what: "server public key",
                }
            })?;
        let identity = StoreIdentity {
            user: UserId::from_uuid(enrolled.user_id),
            device: DeviceId::from_uuid(enrolled.device_id),
            lease_key: Some(server_key.to_bytes()),
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

    /// The fingerprint of this phone's device key ([`crate::protocol::key_fingerprint`]): the
    /// app shows it after enrollment, and an admin confirms the phone by it before it syncs.
    pub fn key_fingerprint(&self) -> Result<String> {
        let credential = self.credential()?;
        let key_bytes = Zeroizing::new(
            crate::protocol::decode_hex_array::<32>(&credential.signing_key)
                .map_err(|_| CoreError::Corrupt { what: "credential" })?,
        );
        let public = SigningKey::from_bytes(&key_bytes).verifying_key();
        Ok(crate::protocol::key_fingerprint(public.as_bytes()))
    }

    fn credential(&self) -> Result<SealedCredential> {
        self.store
            .get_sealed_meta(CREDENTIAL_ROW)?
            .ok_or(CoreError::NoStore)
    }

    fn client(&self) -> Result<DeviceClient> {
        let credential = self.credential()?;
        let bad = || CoreError::Corrupt { what: "credential" };
        let key_bytes = Zeroizing::new(
            crate::protocol::decode_hex_array::<32>(&credential.signing_key).map_err(|_| bad())?,
        );
        let pin = Fingerprint::parse(&credential.pin).map_err(|_| bad())?;
        let client = Client::new(&credential.server_url, pin)?;
        Ok(DeviceClient::new(
            client,
            DeviceCredential::new(credential.device_id, SigningKey::from_bytes(&key_bytes)),
        ))
    }

    /// Syncs with the office now (the store must be unlocked; an expired lease does not stop a
    /// sync, which is what renews it). If the office revoked this phone, the answer carries a
    /// signed wipe order: core verifies it, wipes the store, sends a signed wipe receipt when it
    /// can, and returns [`CoreError::RevokedAndWiped`].
    pub fn sync_now(&self) -> Result<SyncReport> {
        let client = self.client()?;
        let mut transport = HttpsSync { client };
        match crate::sync::sync(&self.store, &mut transport) {
            Err(CoreError::Network(TransportError::Http {
                code,
                wipe_order: Some(order),
                ..
            })) if code == crate::protocol::error_code::DEVICE_REVOKED => {
                self.obey_wipe_order(&order, Some(&transport.client))?;
                Err(CoreError::RevokedAndWiped)
            }
            other => other,
        }
    }

    /// Carries out a wipe order after verifying that the enrolled office signed it for this
    /// device; a forged order is [`CoreError::ForgedWipeOrder`] and wipes nothing. The signed
    /// receipt is sent at once (through `client`, or a client built from the credential); if the
    /// office cannot be reached it waits in the store's folder for [`send_pending_receipt`].
    pub fn obey_wipe_order(
        &self,
        order: &WipeOrder,
        client: Option<&DeviceClient>,
    ) -> Result<WipeReport> {
        let credential = self.credential()?;
        let server = crate::protocol::decode_public_key(&credential.server_public_key)
            .map_err(|_| CoreError::Corrupt { what: "credential" })?;
        if !order.verify(&server, &credential.device_id) {
            return Err(CoreError::ForgedWipeOrder);
        }
        match client {
            Some(c) => self.wipe_with_receipt(&credential, c, "revoked"),
            None => self.wipe_with_receipt(&credential, &self.client()?, "revoked"),
        }
    }

    /// Panic wipe: makes the case data unreadable at once, with no network (the key file is
    /// shredded first, then the database deleted). A receipt signed with the device key is left
    /// in the folder so that [`send_pending_receipt`] tells the office at the next
    /// chance. Works locked too, without a receipt (the key that would sign it is sealed).
    pub fn panic_wipe(&self) -> Result<WipeReport> {
        match (self.credential(), self.client()) {
            (Ok(credential), Ok(client)) => {
                let receipt = sign_receipt(&credential, &client, "panic")?;
                write_pending_receipt(self.store.dir(), &credential, &receipt)?;
                self.store.wipe(None)
            }
            _ => self.store.wipe(None),
        }
    }

    fn wipe_with_receipt(
        &self,
        credential: &SealedCredential,
        client: &DeviceClient,
        reason: &str,
    ) -> Result<WipeReport> {
        let receipt = sign_receipt(credential, client, reason)?;
        let report = self.store.wipe(None)?;
        let body = serde_json::to_vec(&receipt).map_err(|_| CoreError::Crypto)?;
        let request = crate::transport::RawRequest {
            method: "POST".into(),
            path: crate::protocol::PATH_WIPE_RECEIPT.into(),
            headers: vec![("content-type".into(), "application/json".into())],
            body,
        };
        // Best effort: the wipe has happened whatever the network does; an unsent receipt waits.
        if !matches!(client.client().send(&request), Ok(r) if (200..300).contains(&r.status)) {
            write_pending_receipt(self.store.dir(), credential, &receipt)?;
        }
        Ok(report)
    }
}

fn sign_receipt(
    credential: &SealedCredential,
    client: &DeviceClient,
    reason: &str,
) -> Result<WipeReceipt> {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    Ok(WipeReceipt::sign(
        client.credential().signing_key(),
        credential.device_id,
        now,
        reason,
    ))
}

/// What waits in a wiped phone's folder: the signed receipt and where to send it. No secret.
#[derive(Serialize, Deserialize)]
struct PendingReceipt {
    receipt: WipeReceipt,
    server_url: String,
    pin: String,
}

/// File name of a wipe receipt waiting to be sent.
pub const PENDING_RECEIPT_FILE: &str = "fieldcase.receipt";

fn write_pending_receipt(
    dir: &std::path::Path,
    credential: &SealedCredential,
    receipt: &WipeReceipt,
) -> Result<()> {
    let pending = PendingReceipt {
        receipt: receipt.clone(),
        server_url: credential.server_url.clone(),
        pin: credential.pin.clone(),
    };
    let bytes = serde_json::to_vec(&pending).map_err(|_| CoreError::Crypto)?;
    std::fs::write(dir.join(PENDING_RECEIPT_FILE), bytes)?;
    Ok(())
}

/// Sends a wipe receipt left by a panic wipe (or by a revocation wipe that could not reach the
/// office), and removes it once the office has it. Returns whether one was sent.
pub fn send_pending_receipt(dir: &std::path::Path) -> Result<bool> {
    let path = dir.join(PENDING_RECEIPT_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e.into()),
    };
    let pending: PendingReceipt =
        serde_json::from_slice(&bytes).map_err(|_| CoreError::Corrupt {
            what: "pending receipt",
        })?;
    let pin = Fingerprint::parse(&pending.pin).map_err(|_| CoreError::Corrupt {
        what: "pending receipt",
    })?;
    let client = Client::new(&pending.server_url, pin)?;
    let body = serde_json::to_vec(&pending.receipt).map_err(|_| CoreError::Crypto)?;
    let request = crate::transport::RawRequest {
        method: "POST".into(),
        path: crate::protocol::PATH_WIPE_RECEIPT.into(),
        headers: vec![("content-type".into(), "application/json".into())],
        body,
    };
    client.send(&request)?.into_result()?;
    std::fs::remove_file(&path)?;
    Ok(true)
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
