//! TLS for the device client: rustls with the ring provider, TLS 1.3 only, and a certificate
//! verifier that accepts exactly the pinned end-entity certificates (by SHA-256 of their DER):
//! usually one, two while the office rotates its certificate (the current one and the next one
//! it announced).
//!
//! No trust store is consulted. Handshake signatures are still verified with the provider's
//! algorithms against the pinned certificate's key, so a peer that merely replays the certificate
//! without its private key fails the handshake.

use std::io::{Read, Write};
use std::sync::{Arc, Mutex};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, SignatureScheme, StreamOwned};
use ureq::unversioned::transport::{
    Buffers, ConnectionDetails, Connector, LazyBuffers, NextTimeout, Transport, TransportAdapter,
};

use crate::protocol::Fingerprint;

/// The error a pinned verifier raises when the server shows another certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("server certificate does not match the pinned fingerprint")]
pub(crate) struct PinMismatchError {
    /// Fingerprint of the certificate the server presented.
    pub(crate) actual: Fingerprint,
}

/// The fingerprint of the certificate the server showed on the last handshake this client's
/// verifier accepted: which of its pins the office uses now.
#[derive(Debug, Default)]
pub(crate) struct PresentedPin(Mutex<Option<Fingerprint>>);

impl PresentedPin {
    /// The last accepted fingerprint, if a handshake has been accepted.
    pub(crate) fn get(&self) -> Option<Fingerprint> {
        self.0.lock().ok().and_then(|g| *g)
    }

    fn set(&self, fingerprint: Fingerprint) {
        if let Ok(mut g) = self.0.lock() {
            *g = Some(fingerprint);
        }
    }
}

/// Accepts exactly the pinned certificates.
#[derive(Debug)]
pub(crate) struct PinnedVerifier {
    pins: Vec<Fingerprint>,
    presented: Arc<PresentedPin>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for PinnedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let actual = Fingerprint::of_der(end_entity.as_ref());
        if self.pins.contains(&actual) {
            self.presented.set(actual);
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::Other(rustls::OtherError(Arc::new(PinMismatchError {
                    actual,
                }))),
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// Builds the client configuration: ring, TLS 1.3 only, pinned verifier, no client certificate.
/// Public so that test clients which must speak HTTP by hand connect exactly as phones do.
pub fn client_config(pin: Fingerprint) -> Result<Arc<ClientConfig>, rustls::Error> {
    pinned_config(vec![pin]).map(|(config, _)| config)
}

/// [`client_config`] accepting any of `pins`, and where the verifier notes which one the server
/// showed.
pub(crate) fn pinned_config(
    pins: Vec<Fingerprint>,
) -> Result<(Arc<ClientConfig>, Arc<PresentedPin>), rustls::Error> {
    let provider: Arc<CryptoProvider> = Arc::new(rustls::crypto::ring::default_provider());
    let presented = Arc::new(PresentedPin::default());
    let verifier = PinnedVerifier {
        pins,
        presented: presented.clone(),
        algorithms: provider.signature_verification_algorithms,
    };
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((Arc::new(config), presented))
}

/// ureq connector that wraps the TCP transport in pinned TLS, and refuses plain HTTP.
#[derive(Debug)]
pub(crate) struct PinnedTlsConnector {
    pub(crate) config: Arc<ClientConfig>,
}

impl<In: Transport> Connector<In> for PinnedTlsConnector {
    type Out = PinnedTlsTransport;

    fn connect(
        &self,
        details: &ConnectionDetails,
        chained: Option<In>,
    ) -> Result<Option<Self::Out>, ureq::Error> {
        let Some(transport) = chained else {
            return Ok(None);
        };
        if !details.needs_tls() || transport.is_tls() {
            return Err(ureq::Error::Tls(
                "only https with a pinned certificate is allowed",
            ));
        }
        let host = details
            .uri
            .host()
            .ok_or(ureq::Error::Tls("url has no host"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let name = ServerName::try_from(host)
            .map_err(|_| ureq::Error::Tls("invalid server name"))?
            .to_owned();
        let mut conn = ClientConnection::new(self.config.clone(), name)?;
        let mut sock = TransportAdapter::new(transport.boxed(), details.current_time.clone());
        sock.set_timeout(details.timeout);
        if let Err(e) = conn.complete_io(&mut sock) {
            return Err(unwrap_io(e));
        }
        let buffers = LazyBuffers::new(
            details.config.input_buffer_size(),
            details.config.output_buffer_size(),
        );
        Ok(Some(PinnedTlsTransport {
            buffers,
            stream: StreamOwned { conn, sock },
        }))
    }
}

/// A TLS stream over a chained ureq transport.
pub(crate) struct PinnedTlsTransport {
    buffers: LazyBuffers,
    stream: StreamOwned<ClientConnection, TransportAdapter>,
}

impl std::fmt::Debug for PinnedTlsTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PinnedTlsTransport").finish_non_exhaustive()
    }
}

impl Transport for PinnedTlsTransport {
    fn buffers(&mut self) -> &mut dyn Buffers {
        &mut self.buffers
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        self.stream.get_mut().set_timeout(timeout);
        let output = self
            .buffers
            .output()
            .get(..amount)
            .ok_or(ureq::Error::Tls("output buffer underrun"))?;
        self.stream.write_all(output)?;
        Ok(())
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        self.stream.get_mut().set_timeout(timeout);
        let input = self.buffers.input_append_buf();
        let amount = self.stream.read(input)?;
        self.buffers.input_appended(amount);
        Ok(amount > 0)
    }

    fn is_open(&mut self) -> bool {
        self.stream.get_mut().get_mut().is_open()
    }

    fn is_tls(&self) -> bool {
        true
    }
}

/// Recovers the rustls error (notably a pin mismatch) or ureq error (notably a timeout) that an
/// I/O error wraps, so callers see it as such rather than as plain I/O.
pub(crate) fn unwrap_io(e: std::io::Error) -> ureq::Error {
    let wrapped = e
        .get_ref()
        .is_some_and(|i| i.is::<rustls::Error>() || i.is::<ureq::Error>());
    if !wrapped {
        return ureq::Error::Io(e);
    }
    let kind = e.kind();
    let Some(inner) = e.into_inner() else {
        return ureq::Error::Io(std::io::Error::from(kind));
    };
    let inner = match inner.downcast::<rustls::Error>() {
        Ok(tls) => return ureq::Error::Rustls(*tls),
        Err(other) => other,
    };
    match inner.downcast::<ureq::Error>() {
        Ok(u) => *u,
        Err(other) => ureq::Error::Io(std::io::Error::new(kind, other)),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn certificate() -> CertificateDer<'static> {
        let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        certified.cert.der().clone()
    }

    fn verifier(pins: Vec<Fingerprint>) -> PinnedVerifier {
        PinnedVerifier {
            pins,
            presented: Arc::new(PresentedPin::default()),
            algorithms: rustls::crypto::ring::default_provider().signature_verification_algorithms,
        }
    }

    fn check(v: &PinnedVerifier, cert: &CertificateDer<'_>) -> Result<(), Fingerprint> {
        let name = ServerName::try_from("localhost").unwrap();
        match v.verify_server_cert(cert, &[], &name, &[], UnixTime::now()) {
            Ok(_) => Ok(()),
            Err(rustls::Error::InvalidCertificate(rustls::CertificateError::Other(other))) => {
                Err(other.0.downcast_ref::<PinMismatchError>().unwrap().actual)
            }
            Err(e) => panic!("unexpected error {e}"),
        }
    }

    #[test]
    fn every_pinned_certificate_is_accepted_and_noted_and_no_other() {
        let (current, next, stranger) = (certificate(), certificate(), certificate());
        let fp = |c: &CertificateDer<'_>| Fingerprint::of_der(c.as_ref());
        let v = verifier(vec![fp(&current), fp(&next)]);
        assert_eq!(v.presented.get(), None);
        assert_eq!(check(&v, &current), Ok(()));
        assert_eq!(v.presented.get(), Some(fp(&current)));
        assert_eq!(check(&v, &next), Ok(()));
        assert_eq!(v.presented.get(), Some(fp(&next)));
        // A certificate that is not pinned is refused with what the server showed, and does
        // not change which pin the office was last seen with.
        assert_eq!(check(&v, &stranger), Err(fp(&stranger)));
        assert_eq!(v.presented.get(), Some(fp(&next)));
        let only_current = verifier(vec![fp(&current)]);
        assert_eq!(check(&only_current, &next), Err(fp(&next)));
        assert_eq!(check(&verifier(Vec::new()), &current), Err(fp(&current)));
    }
}
