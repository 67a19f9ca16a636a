//! The server's self-signed TLS certificate (created on first start, reused after) and the
//! rustls configuration: ring provider, TLS 1.3 only.
//!
//! # Rotation
//!
//! Phones pin the certificate, so a new one goes through three pairs of files in the data
//! folder: the current pair ([`CERT_FILE`], [`CERT_KEY_FILE`]), which `serve` loads at start;
//! the next pair ([`NEXT_CERT_FILE`], [`NEXT_KEY_FILE`]) made by [`prepare_next`], announced to
//! phones (signed, [`NextPinWatch`]) while it exists; and the previous pair
//! ([`PREVIOUS_CERT_FILE`], [`PREVIOUS_KEY_FILE`]) that [`rotate`] keeps when the next pair
//! becomes the current one, as the way back.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use fieldcase_core::protocol::{Fingerprint, PinAnnouncement};
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use zeroize::Zeroizing;

use crate::error::ServerError;
use crate::storage::data_dir::create_private;

/// Largest plaintext of one TLS record the server sends.
pub const TLS_RECORD_BYTES: usize = 4096;

/// Certificate file (PEM) inside the data folder.
pub const CERT_FILE: &str = "tls-cert.pem";
/// Private key file (PEM, mode 0600) inside the data folder.
pub const CERT_KEY_FILE: &str = "tls-key.pem";
/// The next certificate (PEM), while a rotation is prepared.
pub const NEXT_CERT_FILE: &str = "tls-cert.next.pem";
/// The next certificate's key (PEM, mode 0600).
pub const NEXT_KEY_FILE: &str = "tls-key.next.pem";
/// The certificate used before the last rotation (PEM).
pub const PREVIOUS_CERT_FILE: &str = "tls-cert.previous.pem";
/// The key of the certificate used before the last rotation (PEM, mode 0600).
pub const PREVIOUS_KEY_FILE: &str = "tls-key.previous.pem";

/// The server's certificate and key, ready for rustls.
pub struct TlsIdentity {
    cert: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
}

impl std::fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsIdentity")
            .field("fingerprint", &self.fingerprint())
            .finish_non_exhaustive()
    }
}

impl TlsIdentity {
    /// Loads the certificate and key of an existing office from `data_dir`, creating nothing.
    pub fn load(data_dir: &Path) -> Result<TlsIdentity, ServerError> {
        Self::read_pair(&data_dir.join(CERT_FILE), &data_dir.join(CERT_KEY_FILE))
    }

    /// Loads the certificate and key from `data_dir`, creating a self-signed pair if neither exists.
    pub fn load_or_create(data_dir: &Path) -> Result<TlsIdentity, ServerError> {
        let cert_path = data_dir.join(CERT_FILE);
        let key_path = data_dir.join(CERT_KEY_FILE);
        match (cert_path.exists(), key_path.exists()) {
            (true, true) => Self::read_pair(&cert_path, &key_path),
            (false, false) => {
                let identity = Self::generate_files(&cert_path, &key_path)?;
                tracing::info!("generated a new self-signed TLS certificate");
                Ok(identity)
            }
            _ => Err(ServerError::Tls(format!(
                "only one of {CERT_FILE} and {CERT_KEY_FILE} exists in the data folder"
            ))),
        }
    }

    /// Writes a fresh self-signed certificate for `localhost`, `127.0.0.1` and `::1` (devices pin
    /// it, so its names matter little) and its key (mode 0600), then loads them.
    fn generate_files(cert_path: &Path, key_path: &Path) -> Result<TlsIdentity, ServerError> {
        let names = vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
            "::1".to_owned(),
        ];
        let certified = rcgen::generate_simple_self_signed(names)
            .map_err(|e| ServerError::Tls(e.to_string()))?;
        let key_pem = Zeroizing::new(certified.signing_key.serialize_pem());
        let mut key_file = create_private(key_path)?;
        key_file
            .write_all(key_pem.as_bytes())
            .and_then(|()| key_file.sync_all())
            .map_err(ServerError::io("writing the TLS key"))?;
        std::fs::write(cert_path, certified.cert.pem())
            .map_err(ServerError::io("writing the TLS certificate"))?;
        Self::read_pair(cert_path, key_path)
    }

    /// The next certificate and key in `data_dir`, if a rotation is prepared.
    pub fn load_next(data_dir: &Path) -> Result<Option<TlsIdentity>, ServerError> {
        let cert_path = data_dir.join(NEXT_CERT_FILE);
        let key_path = data_dir.join(NEXT_KEY_FILE);
        match (cert_path.exists(), key_path.exists()) {
            (true, true) => Self::read_pair(&cert_path, &key_path).map(Some),
            (false, false) => Ok(None),
            _ => Err(ServerError::Tls(format!(
                "only one of {NEXT_CERT_FILE} and {NEXT_KEY_FILE} exists in the data folder"
            ))),
        }
    }

    fn read_pair(cert_path: &Path, key_path: &Path) -> Result<TlsIdentity, ServerError> {
        let name = |p: &Path| p.file_name().map(|n| n.to_string_lossy().into_owned());
        let cert = CertificateDer::from_pem_file(cert_path).map_err(|e| {
            ServerError::Tls(format!(
                "reading {}: {e}",
                name(cert_path).unwrap_or_default()
            ))
        })?;
        let key = PrivateKeyDer::from_pem_file(key_path).map_err(|_| {
            ServerError::Tls(format!(
                "reading {} failed",
                name(key_path).unwrap_or_default()
            ))
        })?;
        Ok(TlsIdentity { cert, key })
    }

    /// SHA-256 over the DER certificate: what devices pin.
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint::of_der(self.cert.as_ref())
    }

    /// The DER certificate.
    pub fn cert_der(&self) -> &[u8] {
        self.cert.as_ref()
    }

    /// A rustls server configuration: ring, TLS 1.3 only, no client certificates, http/1.1,
    /// records of at most [`TLS_RECORD_BYTES`].
    pub fn server_config(&self) -> Result<Arc<ServerConfig>, ServerError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| ServerError::Tls(e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(vec![self.cert.clone()], self.key.clone_key())
            .map_err(|e| ServerError::Tls(e.to_string()))?;
        // HTTP/1.1 only: an HTTP/2 connection has no idle timeout here, and one connection's
        // streams could hold every request slot. Phones and browsers speak HTTP/1.1.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        // Records of at most 4 KiB: a phone can use a record only once all of it arrived, so on
        // a link cut in the middle of a streamed answer what it loses beyond the frame in flight
        // is at most this (16 KiB records would lose up to 16 KiB more); 22 bytes a record, 0.5 %.
        config.max_fragment_size = Some(TLS_RECORD_BYTES);
        Ok(Arc::new(config))
    }
}

/// Makes the next certificate and key (self-signed, like the first) beside the current pair,
/// for phones to learn before [`rotate`] switches to it. Refuses if a next pair exists already
/// (announced to phones, perhaps acknowledged by some: replacing it would waste that) or if the
/// folder holds no current certificate.
pub fn prepare_next(data_dir: &Path) -> Result<TlsIdentity, ServerError> {
    TlsIdentity::load(data_dir)?;
    let cert_path = data_dir.join(NEXT_CERT_FILE);
    let key_path = data_dir.join(NEXT_KEY_FILE);
    if cert_path.exists() || key_path.exists() {
        return Err(ServerError::NextCertificateExists);
    }
    TlsIdentity::generate_files(&cert_path, &key_path)
}

/// Makes the previous pair (kept by the last [`rotate`]) the next one again: the way back from
/// a rotation that phones then follow like any other (announced, acknowledged, rotated), so
/// no phone is stranded. Refuses if a next pair exists already or there is no previous pair.
pub fn prepare_from_previous(data_dir: &Path) -> Result<TlsIdentity, ServerError> {
    TlsIdentity::load(data_dir)?;
    let cert_path = data_dir.join(NEXT_CERT_FILE);
    let key_path = data_dir.join(NEXT_KEY_FILE);
    if cert_path.exists() || key_path.exists() {
        return Err(ServerError::NextCertificateExists);
    }
    let (previous_cert, previous_key) = (
        data_dir.join(PREVIOUS_CERT_FILE),
        data_dir.join(PREVIOUS_KEY_FILE),
    );
    if !previous_cert.exists() || !previous_key.exists() {
        return Err(ServerError::NoPreviousCertificate);
    }
    let previous = TlsIdentity::read_pair(&previous_cert, &previous_key)?;
    previous.server_config()?;
    copy_private(&previous_key, &key_path)?;
    copy_private(&previous_cert, &cert_path)?;
    sync_dir(data_dir)?;
    Ok(previous)
}

/// What [`rotate`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rotated {
    /// The certificate used until now, kept in the previous files.
    pub previous: Fingerprint,
    /// The certificate `serve` uses from its next start.
    pub current: Fingerprint,
}

/// Switches certificates in the files: the current pair becomes the previous pair (replacing an
/// older one), the next pair becomes the current one. A running `serve` goes on with the
/// certificate it loaded until it is restarted. Checks nothing about phones: the caller decides
/// whether they are ready. Refuses without a next pair ([`ServerError::NoNextCertificate`]).
///
/// The previous pair is written (copied, synced) before the current files are replaced, and each
/// replacement is a rename, so an interruption leaves either the old current pair or the new one
/// in place, with the old pair also in the previous files (and, for the certificate, possibly the
/// new pair still in the next files).
pub fn rotate(data_dir: &Path) -> Result<Rotated, ServerError> {
    let next = TlsIdentity::load_next(data_dir)?.ok_or(ServerError::NoNextCertificate)?;
    let current = TlsIdentity::load(data_dir)?;
    // The pair must belong together, or `serve` would not start on it.
    next.server_config()?;
    copy_private(
        &data_dir.join(CERT_KEY_FILE),
        &data_dir.join(PREVIOUS_KEY_FILE),
    )?;
    copy_private(
        &data_dir.join(CERT_FILE),
        &data_dir.join(PREVIOUS_CERT_FILE),
    )?;
    std::fs::rename(data_dir.join(NEXT_KEY_FILE), data_dir.join(CERT_KEY_FILE))
        .map_err(ServerError::io("replacing the TLS key"))?;
    std::fs::rename(data_dir.join(NEXT_CERT_FILE), data_dir.join(CERT_FILE))
        .map_err(ServerError::io("replacing the TLS certificate"))?;
    sync_dir(data_dir)?;
    Ok(Rotated {
        previous: current.fingerprint(),
        current: next.fingerprint(),
    })
}

/// Copies `from` to `to` (mode 0600, synced) through a temporary file renamed into place.
fn copy_private(from: &Path, to: &Path) -> Result<(), ServerError> {
    let bytes = Zeroizing::new(std::fs::read(from).map_err(ServerError::io("reading a TLS file"))?);
    let tmp = to.with_extension("tmp");
    match std::fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(ServerError::io("removing a stale temporary file")(e)),
    }
    let mut file = create_private(&tmp)?;
    file.write_all(&bytes)
        .and_then(|()| file.sync_all())
        .map_err(ServerError::io("writing a TLS file"))?;
    std::fs::rename(&tmp, to).map_err(ServerError::io("writing a TLS file"))
}

fn sync_dir(dir: &Path) -> Result<(), ServerError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(ServerError::io("syncing the data folder"))
}

/// The next certificate's announcement for sync answers: its fingerprint and the office key's
/// signature over it, read from the data folder as it is now, so that `admin tls prepare` takes
/// effect on a running server without a restart. What is announced:
///
/// - the next certificate ([`NEXT_CERT_FILE`]) while one is prepared;
/// - else the current certificate ([`CERT_FILE`]) if it is not the one this server presents
///   ([`NextPinWatch::presenting`]): after `admin tls rotate` and before the restart, the
///   running server still presents the old certificate, and phones that sync in between must
///   keep the new pin (a phone drops every pin the office neither shows nor announces);
/// - else nothing.
///
/// The files are read on each call (a certificate is some 600 bytes; an absent next file is one
/// failed `open`), so what is announced is always what the folder holds, whatever the
/// file system's timestamps; the signature is made again only when the fingerprint changes.
#[derive(Debug)]
pub struct NextPinWatch {
    dir: Option<std::path::PathBuf>,
    presented: std::sync::OnceLock<Fingerprint>,
    signed: std::sync::Mutex<Option<PinAnnouncement>>,
}

fn fingerprint_of_file(path: &Path) -> Option<Fingerprint> {
    CertificateDer::from_pem_file(path)
        .ok()
        .map(|cert| Fingerprint::of_der(cert.as_ref()))
}

impl NextPinWatch {
    /// Watches the certificates of `data_dir`.
    pub fn new(data_dir: &Path) -> NextPinWatch {
        NextPinWatch {
            dir: Some(data_dir.to_path_buf()),
            presented: std::sync::OnceLock::new(),
            signed: std::sync::Mutex::new(None),
        }
    }

    /// Announces nothing, ever (a state built without a data folder).
    pub fn none() -> NextPinWatch {
        NextPinWatch {
            dir: None,
            presented: std::sync::OnceLock::new(),
            signed: std::sync::Mutex::new(None),
        }
    }

    /// Tells the watch which certificate this server presents (the one it loaded at start);
    /// the first call counts. Until then only a prepared next certificate is announced.
    pub fn presenting(&self, fingerprint: Fingerprint) {
        let _ = self.presented.set(fingerprint);
    }

    /// The certificate this server presents, once [`NextPinWatch::presenting`] was told.
    pub fn presented(&self) -> Option<Fingerprint> {
        self.presented.get().copied()
    }

    /// The fingerprint to announce now, if any (see the type's documentation).
    fn to_announce(&self) -> Option<Fingerprint> {
        let dir = self.dir.as_ref()?;
        let next_path = dir.join(NEXT_CERT_FILE);
        if next_path.exists() {
            return fingerprint_of_file(&next_path);
        }
        let presented = self.presented.get()?;
        fingerprint_of_file(&dir.join(CERT_FILE)).filter(|current| current != presented)
    }

    /// The announcement to send now, signed with `key`; `None` when there is nothing to
    /// announce (or a file cannot be read: a broken certificate file is the admin's to fix with
    /// `admin tls status`, not a reason to fail syncs).
    pub fn announcement(&self, key: &ed25519_dalek::SigningKey) -> Option<PinAnnouncement> {
        let fingerprint = self.to_announce()?;
        let mut signed = self.signed.lock().ok()?;
        match signed.as_ref() {
            Some(a) if a.fingerprint == fingerprint => Some(a.clone()),
            _ => {
                let announcement = PinAnnouncement::sign(key, fingerprint);
                *signed = Some(announcement.clone());
                Some(announcement)
            }
        }
    }
}

/// The base64 SHA-256 of the server certificate's public key (its SubjectPublicKeyInfo) in
/// `data_dir`, the form Chromium's `--ignore-certificate-errors-spki-list` takes: a browser can
/// trust exactly this self-signed certificate and nothing else.
pub fn spki_pin(data_dir: &std::path::Path) -> Result<String, ServerError> {
    use base64::Engine;
    use sha2::Digest;
    let pem = zeroize::Zeroizing::new(
        std::fs::read_to_string(data_dir.join(CERT_KEY_FILE))
            .map_err(ServerError::io("reading the TLS key"))?,
    );
    let key = rcgen::KeyPair::from_pem(&pem).map_err(|e| ServerError::Tls(e.to_string()))?;
    Ok(
        base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(
            rcgen::PublicKeyData::subject_public_key_info(&key),
        )),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn current(dir: &Path) -> Fingerprint {
        TlsIdentity::load(dir).unwrap().fingerprint()
    }

    #[test]
    fn a_rotation_and_the_way_back_move_the_pairs_and_keep_them_whole() {
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path();
        assert!(
            matches!(prepare_next(dir), Err(ServerError::Tls(_)),),
            "no office certificate yet"
        );
        let first = TlsIdentity::load_or_create(dir).unwrap().fingerprint();
        assert!(matches!(rotate(dir), Err(ServerError::NoNextCertificate)));
        assert!(matches!(
            prepare_from_previous(dir),
            Err(ServerError::NoPreviousCertificate)
        ));
        let second = prepare_next(dir).unwrap().fingerprint();
        assert_ne!(second, first);
        assert!(matches!(
            prepare_next(dir),
            Err(ServerError::NextCertificateExists)
        ));
        assert_eq!(current(dir), first, "preparing changes nothing served");

        let rotated = rotate(dir).unwrap();
        assert_eq!(
            rotated,
            Rotated {
                previous: first,
                current: second
            }
        );
        assert_eq!(current(dir), second);
        assert!(TlsIdentity::load_next(dir).unwrap().is_none());
        // The new current pair is whole: a server starts on it.
        TlsIdentity::load(dir).unwrap().server_config().unwrap();

        // The way back: the previous pair becomes the next one, then the current one again.
        assert_eq!(prepare_from_previous(dir).unwrap().fingerprint(), first);
        assert_eq!(
            TlsIdentity::load_next(dir)
                .unwrap()
                .map(|n| n.fingerprint()),
            Some(first)
        );
        assert_eq!(
            rotate(dir).unwrap(),
            Rotated {
                previous: second,
                current: first
            }
        );
        TlsIdentity::load(dir).unwrap().server_config().unwrap();
        #[cfg(unix)]
        for key in [CERT_KEY_FILE, PREVIOUS_KEY_FILE] {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join(key))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "{key} is readable by others");
        }
    }

    #[test]
    fn the_watch_announces_the_next_certificate_then_the_rotated_one_until_the_restart() {
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path();
        let key = ed25519_dalek::SigningKey::from_bytes(&[3; 32]);
        let first = TlsIdentity::load_or_create(dir).unwrap().fingerprint();
        let watch = NextPinWatch::new(dir);
        watch.presenting(first);
        let announced = |w: &NextPinWatch| w.announcement(&key).map(|a| a.fingerprint);
        assert_eq!(announced(&watch), None);
        let second = prepare_next(dir).unwrap().fingerprint();
        let a = watch.announcement(&key).unwrap();
        assert_eq!(a.fingerprint, second);
        assert!(
            PinAnnouncement::verified(&key.verifying_key(), &second.to_hex(), &a.signature)
                .is_some()
        );
        rotate(dir).unwrap();
        assert_eq!(announced(&watch), Some(second), "before the restart");
        // After the restart the server presents the new certificate: nothing to announce.
        let restarted = NextPinWatch::new(dir);
        restarted.presenting(second);
        assert_eq!(announced(&restarted), None);
        assert_eq!(announced(&NextPinWatch::none()), None);
    }
}
