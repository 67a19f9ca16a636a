//! The server's self-signed TLS certificate (created on first start, reused after) and the
//! rustls configuration: ring provider, TLS 1.3 only.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use fieldcase_core::protocol::Fingerprint;
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use zeroize::Zeroizing;

use crate::error::ServerError;
use crate::storage::data_dir::create_private;

/// Certificate file (PEM) inside the data folder.
pub const CERT_FILE: &str = "tls-cert.pem";
/// Private key file (PEM, mode 0600) inside the data folder.
pub const CERT_KEY_FILE: &str = "tls-key.pem";

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

    fn read_pair(cert_path: &Path, key_path: &Path) -> Result<TlsIdentity, ServerError> {
        let cert = CertificateDer::from_pem_file(cert_path)
            .map_err(|e| ServerError::Tls(format!("reading {CERT_FILE}: {e}")))?;
        let key = PrivateKeyDer::from_pem_file(key_path)
            .map_err(|_| ServerError::Tls(format!("reading {CERT_KEY_FILE} failed")))?;
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

    /// A rustls server configuration: ring, TLS 1.3 only, no client certificates, h2 and http/1.1.
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
        Ok(Arc::new(config))
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
