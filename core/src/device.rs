//! The phone as a whole: a store plus the credential it enrolled with, so that the app (through
//! the bindings) enrolls once, then unlocks, edits and syncs.
//!
//! The credential (device id, Ed25519 signing key, server address, pinned certificate
//! fingerprints, server public key) is kept sealed in the store like case data, so a locked or
//! wiped phone cannot sign requests either.
//!
//! # Certificate rotation
//!
//! The phone pins the office's certificate by fingerprint, and may hold up to
//! [`crate::protocol::MAX_PINS`] of them. While the office has a next certificate ready, every
//! sync answer announces it, signed with the office's key (the one that signs leases, learned at
//! enrollment); after a successful sync the phone's pins become the certificate the office
//! showed plus the announced one if its signature verifies ([`next_pins`]). A phone holding two
//! pins acknowledges both in a signed request header, which tells the office it may switch. So
//! pins follow the office: a rotated-away (perhaps leaked) certificate is dropped at the first
//! sync on the new one, and an abandoned next certificate at the first sync without its
//! announcement. A phone that was offline through the whole rotation meets a certificate it
//! does not hold, gets [`TransportError::PinMismatch`] with the fingerprint the server shows,
//! and comes back with [`Device::repin`] once the worker has the new fingerprint from the
//! office by a channel she trusts (in person, by phone).

mod pending;

use std::sync::{Arc, Mutex};

use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

pub use pending::PENDING_FILE;

use crate::crypto::KeyProvider;
use crate::error::{CoreError, Result};
use crate::ids::{DeviceId, UserId};
use crate::protocol::{Fingerprint, MAX_PINS, PinAnnouncement};
use crate::protocol::{WipeOrder, WipeReceipt};
use crate::store::WipeReport;
use crate::store::{KeySetup, Store, StoreIdentity, StoreOptions};
use crate::sync::progress::Delivery;
use crate::sync::{ProgressListener, SyncProgress, SyncReport, SyncTransport};
use crate::transport::{
    self, Client, DeviceClient, DeviceCredential, NextPinHeaders, TransportError, TransportOptions,
};

/// Path of the sync endpoint.
pub const PATH_SYNC: &str = "/v1/sync";
/// How long [`Device::sync_now_with_progress`] waits, once the sync is done, for a busy
/// listener to be given the last event before it returns anyway.
pub const PROGRESS_CLOSE_WAIT: std::time::Duration = std::time::Duration::from_secs(2);
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
    /// The first of `pins`: still written so that an older app reading this credential (which
    /// knows only `pin`) keeps working.
    pin: String,
    /// Every certificate fingerprint the phone accepts, the one the office last showed first.
    /// Absent from credentials written before certificate rotation: then `pin` is the only one.
    #[serde(default)]
    pins: Vec<String>,
    server_public_key: String,
}

impl SealedCredential {
    /// The pinned fingerprints, at least one.
    fn pins(&self) -> Result<Vec<Fingerprint>> {
        let bad = || CoreError::Corrupt { what: "credential" };
        if self.pins.is_empty() {
            return Ok(vec![Fingerprint::parse(&self.pin).map_err(|_| bad())?]);
        }
        self.pins
            .iter()
            .map(|p| Fingerprint::parse(p).map_err(|_| bad()))
            .collect()
    }

    fn set_pins(&mut self, pins: &[Fingerprint]) {
        if let Some(first) = pins.first() {
            self.pin = first.to_hex();
            self.pins = pins.iter().map(Fingerprint::to_hex).collect();
        }
    }

    fn office_key(&self) -> Result<ed25519_dalek::VerifyingKey> {
        crate::protocol::decode_public_key(&self.server_public_key)
            .map_err(|_| CoreError::Corrupt { what: "credential" })
    }
}

/// The pins a phone holds after a successful sync: the certificate the office showed
/// (`presented`, which the phone already pinned, or the handshake would have failed) and the
/// next certificate the office announced, if the announcement verifies with `office`, the
/// office's key. Everything else is dropped: a certificate the office rotated away from (which
/// may have leaked), a next certificate it abandoned. An announcement signed by another key, or
/// whose signature does not verify, adds nothing. Without a presented pin (no handshake was
/// seen) the pins stay as they were.
pub fn next_pins(
    old: &[Fingerprint],
    presented: Option<Fingerprint>,
    announced: Option<&NextPinHeaders>,
    office: &ed25519_dalek::VerifyingKey,
) -> Vec<Fingerprint> {
    let Some(presented) = presented.filter(|p| old.contains(p)) else {
        return old.to_vec();
    };
    let mut pins = vec![presented];
    let verified = announced
        .and_then(|h| PinAnnouncement::verified(office, &h.fingerprint, &h.signature))
        .map(|a| a.fingerprint);
    if let Some(next) = verified.filter(|n| *n != presented) {
        pins.push(next);
    }
    pins
}

impl Drop for SealedCredential {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.signing_key);
    }
}

/// An enrolled phone: its encrypted store and its server credential.
pub struct Device {
    store: Store,
    /// The platform keystore whose key every wipe of this phone destroys.
    keystore: Mutex<Option<Arc<dyn KeyProvider>>>,
    /// After a wipe: where the statements it left for the office go. In memory only; the folder
    /// keeps no address ([`pending`]).
    office: Mutex<Option<(String, Vec<Fingerprint>)>>,
}

impl std::fmt::Debug for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Device(..)")
    }
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
        // Everything that can fail here is checked before the code is spent at the office.
        Store::check_new(dir, &keys)?;
        // A phone wiped before tells the office it enrolls with (best effort: an office that
        // cannot be reached fails the enrollment below anyway).
        let _ = pending::send(dir, &server.url, &[server.pin]);
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
            pins: vec![server.pin.to_hex()],
            server_public_key: enrolled.server_public_key.clone(),
        };
        store.put_sealed_meta(CREDENTIAL_ROW, &credential)?;
        let device = Self::from_store(store);
        device.ensure_held(&device.client()?)?;
        Ok(device)
    }

    /// Enrolls this phone with an enrollment invite as the office's QR code shows it
    /// ([`crate::protocol::EnrollmentInvite`]: the office's address, its certificate and the
    /// one-time code in one checksummed string), so the worker types nothing but her passphrase.
    /// An invite that does not parse is [`CoreError::Invite`] and nothing is sent.
    pub fn enroll_with_invite(
        dir: &std::path::Path,
        invite: &str,
        keys: KeySetup<'_>,
        options: StoreOptions,
    ) -> Result<Self> {
        let invite = crate::protocol::EnrollmentInvite::parse(invite)?;
        let server = ServerAddress {
            url: invite.url.clone(),
            pin: invite.pin,
        };
        Self::enroll(dir, &server, &invite.code, keys, options)
    }

    /// Opens an enrolled phone's store, locked.
    pub fn open(dir: &std::path::Path, options: StoreOptions) -> Result<Self> {
        Ok(Self::from_store(Store::open(dir, options)?))
    }

    fn from_store(store: Store) -> Self {
        Self {
            store,
            keystore: Mutex::new(None),
            office: Mutex::new(None),
        }
    }

    /// Remembers the platform keystore this phone's store is wrapped to: every wipe of this
    /// device (a panic wipe, the office's wipe order during a sync, [`Device::wipe`]) then asks
    /// it to destroy its key, whatever the app does after. The bindings call it with every
    /// keystore the app hands them.
    pub fn keep_keystore(&self, keystore: Arc<dyn KeyProvider>) {
        *self.keystore.lock().unwrap_or_else(|e| e.into_inner()) = Some(keystore);
    }

    /// Destroys the store and the remembered keystore's key.
    fn wipe_store(&self) -> Result<WipeReport> {
        let keystore = self
            .keystore
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        self.store.wipe(keystore.as_deref())
    }

    /// Keeps in memory where the statements left for the office go.
    fn remember_office(&self, credential: &SealedCredential) -> Result<()> {
        let pins = credential.pins()?;
        *self.office.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((credential.server_url.clone(), pins));
        Ok(())
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

    /// A client that signs requests with this phone's credential and pins the office's
    /// certificates: what sync and the attachment channel send through.
    pub fn client(&self) -> Result<DeviceClient> {
        let credential = self.credential()?;
        let bad = || CoreError::Corrupt { what: "credential" };
        let key_bytes = Zeroizing::new(
            crate::protocol::decode_hex_array::<32>(&credential.signing_key).map_err(|_| bad())?,
        );
        let pins = credential.pins()?;
        let client = Client::with_pins(&credential.server_url, &pins, TransportOptions::default())?;
        Ok(DeviceClient::new(
            client,
            DeviceCredential::new(credential.device_id, SigningKey::from_bytes(&key_bytes)),
        )
        .acknowledging(&pins))
    }

    /// The certificate fingerprints this phone accepts from the office, the one it last saw
    /// the office use first (two while the office rotates its certificate). The store must be
    /// unlocked.
    pub fn pins(&self) -> Result<Vec<Fingerprint>> {
        self.credential()?.pins()
    }

    /// Pins `fingerprint` as well, for a phone that was offline while the office rotated its
    /// certificate: its sync fails with [`TransportError::PinMismatch`] showing the
    /// fingerprint the server presents; the worker gets the new fingerprint from the office by
    /// a channel she trusts (read out by the admin, `admin tls status`) and the app calls this
    /// with it. The pins held before are kept (a mistyped fingerprint loses nothing) until the
    /// next successful sync, which keeps only what the office shows and announces. Whoever
    /// gets a worker to repin to a certificate of theirs gets the phone's requests, so the
    /// fingerprint must never come from the network the phone is on. The store must be
    /// unlocked.
    pub fn repin(&self, fingerprint: Fingerprint) -> Result<()> {
        let mut credential = self.credential()?;
        let mut pins = vec![fingerprint];
        pins.extend(credential.pins()?.into_iter().filter(|p| *p != fingerprint));
        pins.truncate(MAX_PINS);
        credential.set_pins(&pins);
        self.store.put_sealed_meta(CREDENTIAL_ROW, &credential)
    }

    /// After a successful sync: keeps the pins the office showed and announced ([`next_pins`]).
    fn follow_office_pins(&self, transport: &HttpsSync) -> Result<()> {
        let mut credential = self.credential()?;
        let old = credential.pins()?;
        let pins = next_pins(
            &old,
            transport.client.client().presented_pin(),
            transport.announced.as_ref(),
            &credential.office_key()?,
        );
        if pins != old {
            credential.set_pins(&pins);
            self.store.put_sealed_meta(CREDENTIAL_ROW, &credential)?;
        }
        Ok(())
    }

    /// Syncs with the office now (the store must be unlocked; an expired lease does not stop a
    /// sync, which is what renews it). If the office revoked this phone, the answer carries a
    /// signed wipe order: core verifies it, wipes the store, sends a signed wipe receipt when it
    /// can, and returns [`CoreError::RevokedAndWiped`].
    pub fn sync_now(&self) -> Result<SyncReport> {
        self.sync_now_with_progress(None)
    }

    /// [`Device::sync_now`], telling `listener` how far the sync has come: cases and bytes done
    /// and expected, never going backwards, the last event `finished` with done equal to
    /// expected (see [`crate::sync::progress`]). The listener runs on a thread of its own and
    /// sees counts only; a slow one does not slow the sync (it gets the latest event when it
    /// is ready), one that panics gets nothing more. The call returns once the last event was
    /// handed to the listener, or after [`PROGRESS_CLOSE_WAIT`] if the listener is still busy.
    /// A sync whose rounds fail sends no `finished` event.
    pub fn sync_now_with_progress(
        &self,
        listener: Option<Arc<dyn ProgressListener>>,
    ) -> Result<SyncReport> {
        let delivery = listener.map(Delivery::start);
        let result = self.sync_delivering(delivery.as_ref());
        if let Some(delivery) = delivery {
            delivery.close(PROGRESS_CLOSE_WAIT);
        }
        result
    }

    fn sync_delivering(&self, delivery: Option<&Delivery>) -> Result<SyncReport> {
        let client = self.client()?;
        self.ensure_held(&client)?;
        let mut transport = HttpsSync::new(client).holding(self.store.held()?);
        let mut post = |p: SyncProgress| {
            if let Some(d) = delivery {
                d.post(p);
            }
        };
        let mut result = crate::sync::sync_with_progress(&self.store, &mut transport, &mut post);
        if let Ok(report) = &mut result {
            report.server_timing = std::mem::take(&mut transport.server_timing);
        }
        if result.is_ok() {
            self.follow_office_pins(&transport)?;
            if let Some(office_now) = transport.server_time {
                self.store.trust_office_time(office_now)?;
            }
            // The duress kit follows the lease and the pins (see `store::duress`).
            self.store.refresh_kits()?;
        }
        match result {
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
    /// device; a forged order is [`CoreError::ForgedWipeOrder`] and wipes nothing. The store and
    /// the keystore's key are destroyed; the signed receipt is sent at once (through `client`,
    /// or a client built from the credential); if the office cannot be reached it waits in the
    /// folder, sealed to the office, for [`Device::send_pending_receipt`].
    pub fn obey_wipe_order(
        &self,
        order: &WipeOrder,
        client: Option<&DeviceClient>,
    ) -> Result<WipeReport> {
        let credential = self.credential()?;
        let server = credential.office_key()?;
        if !order.verify(&server, &credential.device_id) {
            return Err(CoreError::ForgedWipeOrder);
        }
        match client {
            Some(c) => self.wipe_with_receipt(&credential, c, "revoked"),
            None => self.wipe_with_receipt(&credential, &self.client()?, "revoked"),
        }
    }

    /// Panic wipe: makes the case data unreadable at once, with no network: the key file is
    /// shredded, the keystore's key destroyed, the database deleted. What it leaves for the
    /// office, sealed to the office's key so that nobody holding the phone reads where the office
    /// is or why the phone is empty: a receipt signed now with the device key (when unlocked),
    /// and the statement the key file held (the panic receipt prepared when the phone first met
    /// the office, or in the workspace of a duress PIN its notice), so a phone wiped locked tells
    /// the office too. [`Device::send_pending_receipt`] sends them while this object lives;
    /// after a restart, the next enrollment or [`send_pending_receipt`] with the office's address.
    pub fn panic_wipe(&self) -> Result<WipeReport> {
        use base64::Engine;
        // Nothing about the receipts may stop the wipe: each part is best effort.
        let mut statements = Vec::new();
        if let (Ok(credential), Ok(client)) = (self.credential(), self.client()) {
            let fresh = sign_receipt(&credential, &client, "panic").and_then(|receipt| {
                crate::crypto::office::seal_to_office(
                    &credential.office_key()?,
                    &crate::protocol::statement_bytes(&receipt),
                )
            });
            statements.extend(fresh.ok());
            let _ = self.remember_office(&credential);
        }
        let held = self.store.held().ok().flatten();
        if let Some(held) =
            held.and_then(|h| base64::engine::general_purpose::STANDARD.decode(h).ok())
        {
            statements.push(held);
        }
        let kept = if statements.is_empty() {
            Ok(())
        } else {
            pending::keep(self.store.dir(), statements)
        };
        let report = self.wipe_store()?;
        // The wipe happened, which is what the worker must be told; a receipt the folder could
        // not keep (a full disk) is lost, and the office learns of the phone when it revokes it.
        drop(kept);
        Ok(report)
    }

    /// Destroys the store and the remembered keystore's key ([`Device::keep_keystore`]), with no
    /// network and leaving nothing for the office (use [`Device::panic_wipe`] for a worker's
    /// own wipe: the office should know).
    pub fn wipe(&self) -> Result<WipeReport> {
        self.wipe_store()
    }

    /// Sends what a wipe of this device left for the office, to the office it was enrolled with
    /// (its address kept in memory since the wipe, never written), and removes what the office
    /// took. Returns whether anything was sent: `false` when nothing waits or this object has no
    /// address (it was not wiped in this run; [`send_pending_receipt`] takes one).
    pub fn send_pending_receipt(&self) -> Result<bool> {
        let office = self
            .office
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        match office {
            Some((url, pins)) => Ok(pending::send(self.store.dir(), &url, &pins)? > 0),
            None => Ok(false),
        }
    }

    /// Sets the duress PIN (a second passphrase, held to the same strength rules, other than
    /// the passphrase): entered at unlock instead of the passphrase, it destroys this phone's
    /// store at once and opens a workspace that looks like a phone with no cases assigned yet,
    /// whose next sync tells the office (which revokes the phone and alerts the worker's team).
    /// See `store::duress`. `keystore` is the platform keystore for a store that opens with the
    /// keystore key and the passphrase. The store must be unlocked.
    pub fn set_duress_pin(&self, keystore: Option<&dyn KeyProvider>, pin: &str) -> Result<()> {
        let root = keystore.map(|k| k.root_key()).transpose()?;
        let credential = self.credential()?;
        let client = self.client()?;
        let notice = sign_receipt(&credential, &client, "duress")?;
        let sealed = crate::crypto::office::seal_to_office(
            &credential.office_key()?,
            &crate::protocol::statement_bytes(&notice),
        )?;
        self.store.set_duress(root.as_deref(), pin, &sealed)
    }

    /// Adds the worker's passphrase to a phone enrolled with the keystore key alone: from then
    /// on it opens only with the keystore's key and the passphrase together, and a duress PIN
    /// can be set. See [`Store::add_passphrase`]. The store must be unlocked.
    pub fn add_passphrase(&self, keystore: &dyn KeyProvider, passphrase: &str) -> Result<()> {
        let root = keystore.root_key()?;
        self.store.add_passphrase(&root, passphrase)
    }

    /// Gives the key file its statement for the office if it has none yet: a panic receipt
    /// signed now and sealed to the office, which a wipe made while locked leaves behind and
    /// every sync carries (the office acts on it only as a receipt).
    fn ensure_held(&self, client: &DeviceClient) -> Result<()> {
        use base64::Engine;
        if self.store.held()?.is_some() {
            return Ok(());
        }
        let credential = self.credential()?;
        let receipt = sign_receipt(&credential, client, "panic")?;
        let sealed = crate::crypto::office::seal_to_office(
            &credential.office_key()?,
            &crate::protocol::statement_bytes(&receipt),
        )?;
        self.store
            .set_held(&base64::engine::general_purpose::STANDARD.encode(sealed))
    }

    fn wipe_with_receipt(
        &self,
        credential: &SealedCredential,
        client: &DeviceClient,
        reason: &str,
    ) -> Result<WipeReport> {
        let receipt = sign_receipt(credential, client, reason)?;
        let sealed = crate::crypto::office::seal_to_office(
            &credential.office_key()?,
            &crate::protocol::statement_bytes(&receipt),
        )?;
        let _ = self.remember_office(credential);
        let report = self.wipe_store()?;
        let request = crate::transport::RawRequest {
            method: "POST".into(),
            path: crate::protocol::PATH_WIPE_RECEIPT.into(),
            headers: vec![("content-type".into(), "application/octet-stream".to_owned())],
            body: sealed.clone(),
        };
        // Best effort: the wipe has happened whatever the network does; an unsent receipt waits,
        // sealed.
        if !matches!(client.client().send(&request), Ok(r) if (200..300).contains(&r.status)) {
            pending::keep(self.store.dir(), vec![sealed])?;
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

/// Sends the statements a wipe left in `dir` (sealed to the office, see [`PENDING_FILE`]) to
/// the office at `server` (the address the app has again: the office's enrollment QR code, or
/// the office read out by phone), and removes what the office took. Returns whether anything
/// was sent. The office opens only what was sealed to it.
pub fn send_pending_receipt(dir: &std::path::Path, server: &ServerAddress) -> Result<bool> {
    Ok(pending::send(dir, &server.url, &[server.pin])? > 0)
}

/// The sync transport over the pinned, signed HTTPS client. It keeps the next-certificate
/// announcement of the last answer (unverified) for the device to act on after the sync.
pub struct HttpsSync {
    client: DeviceClient,
    announced: Option<NextPinHeaders>,
    server_time: Option<i64>,
    held: Option<String>,
    server_timing: Vec<String>,
}

impl HttpsSync {
    /// Wraps a signed client.
    pub fn new(client: DeviceClient) -> Self {
        Self {
            client,
            announced: None,
            server_time: None,
            held: None,
            server_timing: Vec::new(),
        }
    }

    /// Sends `held` (base64 of the statement sealed to the office the key file holds) with every
    /// request, and takes no answer that does not say the office read it.
    pub fn holding(mut self, held: Option<String>) -> Self {
        self.held = held;
        self
    }

    /// The office's time as the last answer gave it.
    pub fn server_time(&self) -> Option<i64> {
        self.server_time
    }

    /// The next-certificate announcement headers of the last answer, if it carried them.
    pub fn announced(&self) -> Option<&NextPinHeaders> {
        self.announced.as_ref()
    }

    /// The headers of a sync request: the statement held, and that this phone reads what the
    /// office says is left after each page (for its progress) and, with `stream`, takes the
    /// answer streamed.
    fn sync_headers(&self, stream: bool) -> Vec<(String, String)> {
        self.held
            .iter()
            .map(|h| (crate::protocol::HEADER_HELD.to_owned(), h.clone()))
            .chain([(crate::protocol::HEADER_REMAINING.to_owned(), "1".to_owned())])
            .chain(stream.then(|| (crate::protocol::HEADER_STREAM.to_owned(), "1".to_owned())))
            .collect()
    }

    /// Takes what a successful answer's headers carried, once the office is known to have read
    /// the phone's statement.
    fn took(
        &mut self,
        held_ack: bool,
        next_pin: Option<NextPinHeaders>,
        server_time: Option<i64>,
        server_timing: Option<String>,
    ) -> Result<()> {
        // An office that did not read the statement (one older than this phone) must not be
        // synced with: it would not know of a duress notice and would send the cases.
        if self.held.is_some() && !held_ack {
            return Err(CoreError::Network(TransportError::BadResponse(
                "the office did not read this phone's statement; the office needs updating"
                    .to_owned(),
            )));
        }
        self.announced = next_pin;
        self.server_time = server_time.or(self.server_time);
        self.server_timing.extend(server_timing);
        Ok(())
    }
}

/// Frames of a streamed answer read ahead of the sync applying them: while the sync applies
/// one batch, the next arrives; a phone on a fast link applies many frames in one transaction.
const FRAMES_AHEAD: usize = 64;

/// A failed read of a streamed answer, as the transport reports it.
fn stream_error(e: std::io::Error) -> CoreError {
    CoreError::Network(match e.kind() {
        std::io::ErrorKind::TimedOut => TransportError::Timeout,
        std::io::ErrorKind::InvalidData => TransportError::BadResponse(e.to_string()),
        _ => TransportError::Io(e),
    })
}

impl SyncTransport for HttpsSync {
    fn round_trip(&mut self, request: &[u8]) -> Result<Vec<u8>> {
        let extra = self.sync_headers(false);
        let answer = self.client.post_answer(PATH_SYNC, request, &extra)?;
        self.took(
            answer.held_ack,
            answer.next_pin,
            answer.server_time,
            answer.server_timing,
        )?;
        Ok(answer.body)
    }

    fn round_trip_frames(
        &mut self,
        request: &[u8],
        frames: &mut dyn FnMut(Vec<Vec<u8>>) -> Result<()>,
    ) -> Result<()> {
        let extra = self.sync_headers(true);
        let mut response = self.client.post_streaming(PATH_SYNC, request, &extra)?;
        if !(200..300).contains(&response.status) {
            let refused = response.into_raw()?.into_result().err();
            return Err(CoreError::Network(refused.unwrap_or_else(|| {
                TransportError::BadResponse("an error answer that was not one".to_owned())
            })));
        }
        self.took(
            response.held_ack,
            response.next_pin.take(),
            response.server_time,
            response.server_timing.take(),
        )?;
        if response.content_type.as_deref() != Some(crate::sync::frames::CONTENT_TYPE) {
            // An office that does not stream: one answer.
            let body = response.into_raw()?.body;
            return frames(vec![body]);
        }
        let reader = response.into_reader();
        let (sender, arrived) = std::sync::mpsc::sync_channel(FRAMES_AHEAD);
        // The reader ends at the stream's end, at its first error, or at its next frame once
        // nobody takes frames any more; the client's timeout bounds each of its reads.
        let reading = std::thread::Builder::new()
            .name("sync-frames".to_owned())
            .spawn(move || {
                let mut stream = crate::sync::frames::FrameReader::new(reader);
                loop {
                    let next = stream.next_frame().transpose();
                    let stop = !matches!(next, Some(Ok(_)));
                    if next.is_none_or(|frame| sender.send(frame).is_err()) || stop {
                        return;
                    }
                }
            })
            .map_err(|e| CoreError::Network(TransportError::Io(e)))?;
        while let Ok(first) = arrived.recv() {
            let mut batch = vec![first.map_err(stream_error)?];
            let mut failed = None;
            while batch.len() < FRAMES_AHEAD
                && let Ok(next) = arrived.try_recv()
            {
                match next {
                    Ok(frame) => batch.push(frame),
                    Err(e) => {
                        failed = Some(e);
                        break;
                    }
                }
            }
            frames(batch)?;
            if let Some(e) = failed {
                return Err(stream_error(e));
            }
        }
        let _ = reading.join();
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn fp(b: u8) -> Fingerprint {
        Fingerprint([b; 32])
    }

    fn headers(a: &PinAnnouncement) -> NextPinHeaders {
        NextPinHeaders {
            fingerprint: a.fingerprint.to_hex(),
            signature: a.signature.clone(),
        }
    }

    #[test]
    fn a_verified_announcement_is_added_and_nothing_else() {
        let office = SigningKey::from_bytes(&[1; 32]);
        let stranger = SigningKey::from_bytes(&[2; 32]);
        let key = office.verifying_key();
        let (current, next) = (fp(10), fp(11));
        let good = headers(&PinAnnouncement::sign(&office, next));
        assert_eq!(
            next_pins(&[current], Some(current), Some(&good), &key),
            vec![current, next]
        );
        // Signed by another key (another office, or whoever sits in between): nothing added.
        let foreign = headers(&PinAnnouncement::sign(&stranger, next));
        assert_eq!(
            next_pins(&[current], Some(current), Some(&foreign), &key),
            vec![current]
        );
        // The office's signature over another fingerprint: nothing added.
        let mut swapped = good.clone();
        swapped.fingerprint = fp(12).to_hex();
        assert_eq!(
            next_pins(&[current], Some(current), Some(&swapped), &key),
            vec![current]
        );
        let mut garbled = good.clone();
        garbled.signature = "00".repeat(64);
        assert_eq!(
            next_pins(&[current], Some(current), Some(&garbled), &key),
            vec![current]
        );
    }

    #[test]
    fn pins_follow_what_the_office_shows_and_announces() {
        let office = SigningKey::from_bytes(&[1; 32]);
        let key = office.verifying_key();
        let (old, new) = (fp(10), fp(11));
        // After the rotation the office shows the new certificate and announces nothing: the
        // old one is dropped.
        assert_eq!(next_pins(&[old, new], Some(new), None, &key), vec![new]);
        // The office abandoned its next certificate: dropped too.
        assert_eq!(next_pins(&[old, new], Some(old), None, &key), vec![old]);
        // Announcing the certificate it already shows adds no second copy.
        let same = headers(&PinAnnouncement::sign(&office, old));
        assert_eq!(next_pins(&[old], Some(old), Some(&same), &key), vec![old]);
        // No handshake seen, or one with a certificate never pinned: nothing changes.
        assert_eq!(next_pins(&[old, new], None, None, &key), vec![old, new]);
        assert_eq!(next_pins(&[old], Some(fp(99)), None, &key), vec![old]);
    }

    #[test]
    fn a_credential_with_a_single_pin_still_reads_and_keeps_it_for_older_apps() {
        let old = serde_json::json!({
            "device_id": uuid::Uuid::from_u128(5),
            "signing_key": "00".repeat(32),
            "server_url": "https://office:8443",
            "pin": fp(10).to_hex(),
            "server_public_key": "11".repeat(32),
        });
        let mut credential: SealedCredential = serde_json::from_value(old).unwrap();
        assert_eq!(credential.pins().unwrap(), vec![fp(10)]);
        credential.set_pins(&[fp(11), fp(10)]);
        let written = serde_json::to_value(&credential).unwrap();
        assert_eq!(written["pin"], fp(11).to_hex());
        assert_eq!(written["pins"][1], fp(10).to_hex());
        let again: SealedCredential = serde_json::from_value(written).unwrap();
        assert_eq!(again.pins().unwrap(), vec![fp(11), fp(10)]);
    }
}
