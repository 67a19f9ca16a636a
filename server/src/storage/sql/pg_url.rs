//! The PostgreSQL setting: a `postgres://` URL, read once at start-up into the client's
//! configuration and the way every connection is secured, so that all connections the server
//! opens (the pool, the migration runner, the notification listener) are made alike by
//! [`PgUrl::connect`].
//!
//! # TLS: `sslmode` and `sslrootcert` in the URL's query
//!
//! | `sslmode` | what the connection does |
//! | --- | --- |
//! | `verify-full` | TLS (1.2 or 1.3, rustls with the ring provider). The server's certificate must chain to a CA certificate in the file `sslrootcert` names (those CAs only, not the system's), be valid now, and name the host of the URL (a DNS name or an IP address in its subjectAltName). Anything else ends the connection before a password or a row is sent. `sslrootcert` is required. |
//! | `require` | TLS, but the certificate is **not** checked at all: it keeps out someone who only listens on the network, not someone who can take over the database's address and pose as it. |
//! | `disable` | No TLS. The default, and allowed, only when every host is this machine (`localhost`, 127.0.0.0/8, `::1`) or a Unix socket. For any other host it is refused unless the URL also says `allow_remote_plaintext=true`. |
//!
//! Without `sslmode`, a URL whose hosts are all on this machine means `disable`, and any other
//! host is refused with a message that names the settings to choose from: a database across a
//! network is never reached in clear by default, nor silently. `prefer` and `allow` (which fall
//! back to no TLS unnoticed), `verify-ca` (checks the CA but not the name) and any other value
//! are refused, as are `sslrootcert` with a mode that would not use it, TLS on a Unix socket
//! (PostgreSQL has none) and client certificates (`sslcert`, `sslkey`). The CA file is read
//! here, once: a bad one stops the start, and a changed one takes effect at the next start.
//!
//! The URL is never logged and no error repeats it (it may hold a password): errors name the
//! setting that is wrong, and a CA file by its path.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use postgres::config::Host;
use postgres::{Client, NoTls};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::SqlError;

/// The query parameter that lets `sslmode=disable` reach a host other than this machine.
pub const ALLOW_REMOTE_PLAINTEXT: &str = "allow_remote_plaintext";

/// How connections to PostgreSQL are secured: the URL's `sslmode` (see the module
/// documentation for what each one checks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// No TLS (this machine, or a host explicitly allowed).
    Disable,
    /// TLS without any check of the server's certificate.
    Require,
    /// TLS; the certificate must chain to the configured CA and name the host.
    VerifyFull,
}

impl SslMode {
    /// The setting's name (`disable`, `require`, `verify-full`), for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Require => "require",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

/// A PostgreSQL connection URL (`postgres://user:password@host:port/db?sslmode=...`), parsed,
/// with its TLS settings checked and its CA file read. Its `Debug` hides the password, and it
/// has no `Display`: the text of the URL is never logged.
#[derive(Clone)]
pub struct PgUrl {
    config: Box<postgres::Config>,
    mode: SslMode,
    /// The TLS client of `Require` and `VerifyFull`; `None` for `Disable`.
    tls: Option<MakeRustlsConnect>,
}

impl std::fmt::Debug for PgUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // postgres::Config's Debug prints the password as "_".
        f.debug_struct("PgUrl")
            .field("config", &self.config)
            .field("sslmode", &self.mode)
            .finish()
    }
}

/// The URL's query parameters that this module reads itself (the client library knows only
/// some `sslmode`s, and no `sslrootcert`).
#[derive(Default)]
struct TlsSettings {
    mode: Option<String>,
    root_cert: Option<PathBuf>,
    allow_remote_plaintext: bool,
}

/// Where one of the URL's hosts is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// A Unix socket.
    Socket,
    /// TCP to this machine.
    Loopback,
    /// TCP to another machine.
    Remote,
}

impl PgUrl {
    /// Parses a `postgres://` or `postgresql://` URL and its TLS settings (module
    /// documentation), reading the CA file of `verify-full`. The error does not repeat any
    /// part of the URL (it may hold a password).
    pub fn parse(url: &str) -> Result<PgUrl, SqlError> {
        let url = url.trim();
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(SqlError::Config(
                "the PostgreSQL setting must be a postgres:// URL",
            ));
        }
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let mut settings = TlsSettings::default();
        let mut kept = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match decode(key)?.as_str() {
                "sslmode" => {
                    if settings.mode.replace(decode(value)?).is_some() {
                        return Err(SqlError::Config("sslmode is given twice in the URL"));
                    }
                }
                "sslrootcert" => {
                    if settings
                        .root_cert
                        .replace(PathBuf::from(decode(value)?))
                        .is_some()
                    {
                        return Err(SqlError::Config("sslrootcert is given twice in the URL"));
                    }
                }
                ALLOW_REMOTE_PLAINTEXT => {
                    settings.allow_remote_plaintext = match decode(value)?.as_str() {
                        "true" | "1" => true,
                        "false" | "0" => false,
                        _ => {
                            return Err(SqlError::Config(
                                "allow_remote_plaintext must be true or false",
                            ));
                        }
                    }
                }
                "sslcert" | "sslkey" | "sslpassword" => {
                    return Err(SqlError::Config(
                        "client certificates (sslcert, sslkey) are not supported",
                    ));
                }
                _ => kept.push(pair),
            }
        }
        let rest = if kept.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        let mut config: postgres::Config = rest
            .parse()
            .map_err(|_| SqlError::Config("the PostgreSQL URL is not a valid connection string"))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        if config.get_application_name().is_none() {
            config.application_name("fieldcase-server");
        }
        let places = places(&config);
        let mode = decide_mode(&settings, &places)?;
        let tls = match mode {
            SslMode::Disable => None,
            SslMode::Require => Some(MakeRustlsConnect::new(unchecked_client()?)),
            SslMode::VerifyFull => {
                let path = settings.root_cert.as_deref().ok_or(SqlError::Config(
                    "sslmode=verify-full needs sslrootcert=PATH, the file of the CA \
                     certificate(s) the database's certificate must chain to",
                ))?;
                Some(MakeRustlsConnect::new(verifying_client(read_roots(path)?)?))
            }
        };
        // Set explicitly: the client's own default (`prefer`) would fall back to no TLS.
        config.ssl_mode(match mode {
            SslMode::Disable => postgres::config::SslMode::Disable,
            SslMode::Require | SslMode::VerifyFull => postgres::config::SslMode::Require,
        });
        Ok(PgUrl {
            config: Box::new(config),
            mode,
            tls,
        })
    }

    /// The parsed configuration.
    pub fn config(&self) -> &postgres::Config {
        &self.config
    }

    /// How connections are secured.
    pub fn ssl_mode(&self) -> SslMode {
        self.mode
    }

    /// Opens one connection, with TLS as the URL says. A certificate that is not accepted
    /// is [`SqlError::Tls`], a server without TLS when TLS is asked for
    /// [`SqlError::TlsNotOffered`].
    pub fn connect(&self) -> Result<Client, SqlError> {
        Ok(match &self.tls {
            None => self.config.connect(NoTls)?,
            Some(tls) => self.config.connect(tls.clone())?,
        })
    }

    /// The same server, credentials and TLS, another database (tests make one database each).
    pub fn with_dbname(&self, dbname: &str) -> PgUrl {
        let mut url = self.clone();
        url.config.dbname(dbname);
        url
    }

    /// The same URL with another password (a test of a refused login).
    #[cfg(test)]
    pub(crate) fn with_password(&self, password: &str) -> PgUrl {
        let mut url = self.clone();
        url.config.password(password);
        url
    }
}

/// Percent-decodes one part of the query; the error does not repeat it.
fn decode(part: &str) -> Result<String, SqlError> {
    percent_encoding::percent_decode_str(part)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| SqlError::Config("the PostgreSQL URL's query is not valid UTF-8"))
}

/// Where each connection target of `config` is: its `hostaddr` if it has one (the client
/// connects there and uses the host name only for TLS), otherwise its host.
fn places(config: &postgres::Config) -> Vec<Place> {
    let hosts = config.get_hosts();
    let addrs = config.get_hostaddrs();
    (0..hosts.len().max(addrs.len()))
        .map(|i| match (addrs.get(i), hosts.get(i)) {
            (Some(addr), _) => ip_place(*addr),
            (None, Some(Host::Tcp(name))) => name_place(name),
            // The only other kind of host is a Unix socket.
            (None, _) => Place::Socket,
        })
        .collect()
}

fn ip_place(addr: IpAddr) -> Place {
    if addr.to_canonical().is_loopback() {
        Place::Loopback
    } else {
        Place::Remote
    }
}

fn name_place(name: &str) -> Place {
    let name = name.trim_end_matches('.');
    if name.eq_ignore_ascii_case("localhost") {
        return Place::Loopback;
    }
    match name
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
    {
        Ok(addr) => ip_place(addr),
        Err(_) => Place::Remote,
    }
}

/// The TLS mode the settings ask for, or why they are refused (module documentation).
fn decide_mode(settings: &TlsSettings, places: &[Place]) -> Result<SslMode, SqlError> {
    let remote = places.contains(&Place::Remote);
    let mode = match settings.mode.as_deref() {
        None if remote => {
            return Err(SqlError::Config(
                "the PostgreSQL host is not this machine: add sslmode=verify-full with \
                 sslrootcert=CA-FILE to the URL (or sslmode=require, or sslmode=disable with \
                 allow_remote_plaintext=true on a network you trust)",
            ));
        }
        None | Some("disable") => SslMode::Disable,
        Some("require") => SslMode::Require,
        Some("verify-full") => SslMode::VerifyFull,
        Some("prefer") | Some("allow") => {
            return Err(SqlError::Config(
                "sslmode=prefer and allow may fall back to no TLS unnoticed: use verify-full, \
                 require or disable",
            ));
        }
        Some("verify-ca") => {
            return Err(SqlError::Config(
                "sslmode=verify-ca is not supported: use verify-full (the certificate must \
                 also name the host)",
            ));
        }
        Some(_) => {
            return Err(SqlError::Config(
                "sslmode must be disable, require or verify-full",
            ));
        }
    };
    if settings.allow_remote_plaintext && settings.mode.as_deref() != Some("disable") {
        return Err(SqlError::Config(
            "allow_remote_plaintext goes only with sslmode=disable",
        ));
    }
    if settings.root_cert.is_some() && mode != SslMode::VerifyFull {
        return Err(SqlError::Config(
            "sslrootcert is used only by sslmode=verify-full (sslmode=require checks no \
             certificate)",
        ));
    }
    match mode {
        SslMode::Disable if remote && !settings.allow_remote_plaintext => Err(SqlError::Config(
            "sslmode=disable to a host that is not this machine sends passwords and rows in \
             clear: use sslmode=verify-full, or add allow_remote_plaintext=true if the network \
             is trusted",
        )),
        SslMode::Require | SslMode::VerifyFull if places.contains(&Place::Socket) => {
            Err(SqlError::Config(
                "PostgreSQL has no TLS on a Unix socket: use sslmode=disable for a socket",
            ))
        }
        SslMode::Require | SslMode::VerifyFull if places.is_empty() => Err(SqlError::Config(
            "TLS needs the database's host name in the URL",
        )),
        _ => Ok(mode),
    }
}

/// Reads the CA certificates (PEM) of `verify-full`.
fn read_roots(path: &Path) -> Result<RootCertStore, SqlError> {
    let problem = |problem: String| SqlError::CaFile {
        path: path.to_owned(),
        problem,
    };
    let pem = std::fs::read(path).map_err(|e| problem(format!("cannot be read: {e}")))?;
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| problem(format!("is not valid PEM: {e}")))?;
        roots
            .add(cert)
            .map_err(|e| problem(format!("holds a certificate that cannot be a CA: {e}")))?;
    }
    if roots.is_empty() {
        return Err(problem(
            "holds no certificate (no -----BEGIN CERTIFICATE----- block)".to_owned(),
        ));
    }
    Ok(roots)
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The TLS client of `verify-full`: webpki's checks (chain to `roots`, validity period, the
/// host name) with the ring provider.
fn verifying_client(roots: RootCertStore) -> Result<ClientConfig, SqlError> {
    Ok(ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|_| SqlError::Config("the TLS provider offers no TLS version"))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// The TLS client of `require`: the certificate is taken as it is (see [`Unchecked`]).
fn unchecked_client() -> Result<ClientConfig, SqlError> {
    let provider = provider();
    Ok(ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|_| SqlError::Config("the TLS provider offers no TLS version"))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Unchecked(provider)))
        .with_no_client_auth())
}

/// `sslmode=require`: any certificate is accepted (no chain, no name, no validity period);
/// only the handshake's signatures are checked, which proves the server holds the key of the
/// certificate it sent, whatever that certificate is.
#[derive(Debug)]
struct Unchecked(Arc<CryptoProvider>);

impl ServerCertVerifier for Unchecked {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
