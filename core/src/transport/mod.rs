//! The device side of the wire: a blocking HTTPS client that talks only to the pinned office server.
//!
//! - TLS 1.3 only, rustls with the ring provider, no system trust store: the server's end-entity
//!   certificate must hash (SHA-256 over its DER) to the fingerprint the device got at enrollment,
//!   or the handshake fails with [`TransportError::PinMismatch`] before any request byte is sent.
//! - No proxies from the environment, no redirects, connect and overall timeouts, a cap on the
//!   response size.
//! - [`enroll`] registers a new device key; [`DeviceClient`] signs every request with the device's
//!   Ed25519 key (see [`crate::protocol`] for the canonical form).
//! - Certificate rotation: a client may pin several certificates ([`Client::with_pins`]) and
//!   notes which one the server showed ([`Client::presented_pin`]); a response hands over the
//!   office's next-certificate announcement headers as they came ([`RawResponse::next_pin`]),
//!   for [`crate::device`] to verify; a [`DeviceClient`] that holds more than one pin says so in
//!   a signed request header ([`crate::protocol::HEADER_PINS`]).
//!
//! Errors are typed ([`TransportError`]) and never carry a key.

mod tls;
pub use tls::client_config;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ed25519_dalek::SigningKey;
use rand::RngCore;
use ureq::unversioned::resolver::DefaultResolver;
use ureq::unversioned::transport::{Connector, TcpConnector};
use uuid::Uuid;

use crate::protocol::{
    self, DecodeError, EnrollResponse, ErrorBody, Fingerprint, HEADER_NEXT_PIN,
    HEADER_NEXT_PIN_SIGNATURE, HEADER_PINS, NONCE_LEN, PATH_ENROLL, PATH_HEALTHZ, PATH_WHOAMI,
    WhoAmI,
};

/// Why a request to the server failed.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The base URL or path is not usable (only `https://host[:port]` and absolute paths).
    #[error("invalid server address: {0}")]
    InvalidUrl(&'static str),
    /// The server showed a certificate other than the pinned one; nothing was sent.
    #[error("server certificate does not match the pinned fingerprint (server shows {actual})")]
    PinMismatch {
        /// Fingerprint of the certificate the server presented.
        actual: Fingerprint,
    },
    /// The server answered with an error status.
    #[error("server refused the request ({status} {code}): {reason}")]
    Http {
        /// HTTP status.
        status: u16,
        /// Machine-readable code (see [`crate::protocol::error_code`]).
        code: String,
        /// Human-readable reason given by the server.
        reason: String,
        /// With `device_revoked`: the server's signed order to wipe (verified by core before
        /// anything is wiped).
        wipe_order: Option<Box<crate::protocol::WipeOrder>>,
    },
    /// Connecting or the whole exchange took too long.
    #[error("the server did not answer in time")]
    Timeout,
    /// Could not reach the server.
    #[error("could not connect to the server: {0}")]
    Connect(String),
    /// Network I/O failed.
    #[error("network error: {0}")]
    Io(#[source] std::io::Error),
    /// TLS failed for another reason than the pin.
    #[error("tls error: {0}")]
    Tls(String),
    /// The response body is larger than allowed.
    #[error("response larger than {limit} bytes")]
    TooLarge {
        /// The cap in bytes.
        limit: u64,
    },
    /// The response is not what the protocol says.
    #[error("unexpected response from server: {0}")]
    BadResponse(String),
    /// A caller-supplied value (such as an enrollment code) is malformed.
    #[error("invalid input: {0}")]
    BadInput(#[from] DecodeError),
    /// Any other HTTP client failure.
    #[error("http client error: {0}")]
    Other(String),
}

impl TransportError {
    /// The server's error code, if the server answered with an error.
    pub fn code(&self) -> Option<&str> {
        match self {
            TransportError::Http { code, .. } => Some(code),
            _ => None,
        }
    }
}

impl From<ureq::Error> for TransportError {
    fn from(e: ureq::Error) -> Self {
        let e = match e {
            ureq::Error::Io(io) => tls::unwrap_io(io),
            other => other,
        };
        match e {
            ureq::Error::Timeout(_) => TransportError::Timeout,
            ureq::Error::Io(io) => match io.kind() {
                std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => {
                    TransportError::Timeout
                }
                _ => TransportError::Io(io),
            },
            ureq::Error::BodyExceedsLimit(limit) => TransportError::TooLarge { limit },
            ureq::Error::Rustls(rustls::Error::InvalidCertificate(
                rustls::CertificateError::Other(other),
            )) => match other.0.downcast_ref::<tls::PinMismatchError>() {
                Some(m) => TransportError::PinMismatch { actual: m.actual },
                None => TransportError::Tls(other.to_string()),
            },
            ureq::Error::Rustls(t) => TransportError::Tls(t.to_string()),
            ureq::Error::Tls(t) => TransportError::Tls(t.to_string()),
            ureq::Error::ConnectionFailed | ureq::Error::HostNotFound => {
                TransportError::Connect(e.to_string())
            }
            other => TransportError::Other(other.to_string()),
        }
    }
}

/// Bodies larger than this are sent with `Expect: 100-continue`, so a server that refuses the
/// request (too large, not authenticated) answers before the body is sent.
pub const EXPECT_CONTINUE_ABOVE: usize = 64 * 1024;

/// Limits of the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransportOptions {
    /// Longest time to establish the TCP connection.
    pub connect_timeout: Duration,
    /// Longest time for a whole exchange (connect, TLS, request, response).
    pub timeout: Duration,
    /// Largest response body accepted.
    pub max_response_bytes: u64,
}

impl Default for TransportOptions {
    fn default() -> Self {
        TransportOptions {
            connect_timeout: Duration::from_secs(10),
            timeout: Duration::from_secs(60),
            max_response_bytes: 32 * 1024 * 1024,
        }
    }
}

/// An HTTP request as sent, for callers that need full control (diagnostics, tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawRequest {
    /// HTTP method, e.g. `GET`.
    pub method: String,
    /// Absolute path with optional query, e.g. `/v1/whoami`.
    pub path: String,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// Body (empty for none).
    pub body: Vec<u8>,
}

/// The office's next-certificate announcement as two response headers carried it
/// ([`crate::protocol::HEADER_NEXT_PIN`] and [`crate::protocol::HEADER_NEXT_PIN_SIGNATURE`]),
/// not yet verified: [`crate::protocol::PinAnnouncement::verified`] decides whether it counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextPinHeaders {
    /// The announced fingerprint, as sent.
    pub fingerprint: String,
    /// The signature, as sent.
    pub signature: String,
}

/// Longest header value of an announcement kept (a fingerprint is 64 hex digits, a signature
/// 128); anything longer is not an announcement and is dropped unread.
const MAX_ANNOUNCEMENT_HEADER: usize = 256;

impl NextPinHeaders {
    fn from_headers(headers: &ureq::http::HeaderMap) -> Option<NextPinHeaders> {
        let read = |name: &str| {
            headers
                .get(name)
                .filter(|v| v.len() <= MAX_ANNOUNCEMENT_HEADER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        Some(NextPinHeaders {
            fingerprint: read(HEADER_NEXT_PIN)?,
            signature: read(HEADER_NEXT_PIN_SIGNATURE)?,
        })
    }
}

/// An HTTP response of any status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawResponse {
    /// HTTP status.
    pub status: u16,
    /// Body, at most [`TransportOptions::max_response_bytes`].
    pub body: Vec<u8>,
    /// The next-certificate announcement headers, if the response carried both.
    pub next_pin: Option<NextPinHeaders>,
    /// The office's time ([`crate::protocol::HEADER_SERVER_TIME`]), if the response carried a
    /// well-formed one.
    pub server_time: Option<i64>,
    /// Whether the office said it read the phone's statement
    /// ([`crate::protocol::HEADER_HELD_ACK`]).
    pub held_ack: bool,
    /// Where the request's time went at the office (`Server-Timing`, when the office is
    /// configured to say), as sent, at most [`MAX_SERVER_TIMING`] bytes.
    pub server_timing: Option<String>,
}

/// Longest `Server-Timing` value a device keeps.
pub const MAX_SERVER_TIMING: usize = 512;

/// Reads `Server-Timing`: printable text of at most [`MAX_SERVER_TIMING`] bytes, else nothing.
fn server_timing(headers: &ureq::http::HeaderMap) -> Option<String> {
    headers
        .get("server-timing")
        .filter(|v| v.len() <= MAX_SERVER_TIMING)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// Reads [`crate::protocol::HEADER_SERVER_TIME`]: decimal Unix seconds, nothing else.
fn server_time(headers: &ureq::http::HeaderMap) -> Option<i64> {
    headers
        .get(crate::protocol::HEADER_SERVER_TIME)
        .filter(|v| v.len() <= 20)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

/// A 2xx answer to a signed request, with what its headers carried for the device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedAnswer {
    /// The body.
    pub body: Vec<u8>,
    /// The next-certificate announcement headers (unverified).
    pub next_pin: Option<NextPinHeaders>,
    /// The office's time, if the answer carried it.
    pub server_time: Option<i64>,
    /// Whether the office said it read the phone's statement.
    pub held_ack: bool,
    /// Where the request's time went at the office, if the answer said.
    pub server_timing: Option<String>,
}

impl RawResponse {
    /// The body of a 2xx response, or [`TransportError::Http`] with the server's code and reason.
    pub fn into_result(self) -> Result<Vec<u8>, TransportError> {
        if (200..300).contains(&self.status) {
            return Ok(self.body);
        }
        match serde_json::from_slice::<ErrorBody>(&self.body) {
            Ok(e) => Err(TransportError::Http {
                status: self.status,
                code: e.error,
                reason: e.reason,
                wipe_order: e.wipe_order.map(Box::new),
            }),
            Err(_) => Err(TransportError::Http {
                status: self.status,
                code: format!("http_{}", self.status),
                reason: "the server gave no reason".to_owned(),
                wipe_order: None,
            }),
        }
    }

    /// The error body, if this is an error answer in the protocol's format.
    pub fn error_body(&self) -> Option<ErrorBody> {
        serde_json::from_slice(&self.body).ok()
    }
}

/// A response whose status and headers have arrived and whose body is read as it arrives: a
/// streamed sync answer ([`crate::sync::frames`]).
pub struct StreamingResponse {
    /// HTTP status.
    pub status: u16,
    /// The next-certificate announcement headers, if any (unverified).
    pub next_pin: Option<NextPinHeaders>,
    /// The office's time, if the answer carried it.
    pub server_time: Option<i64>,
    /// Whether the office said it read the phone's statement.
    pub held_ack: bool,
    /// Where the request's time went at the office, if the answer said.
    pub server_timing: Option<String>,
    /// The body's content type, if it said one.
    pub content_type: Option<String>,
    body: ureq::Body,
    limit: u64,
}

impl std::fmt::Debug for StreamingResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamingResponse")
            .field("status", &self.status)
            .field("content_type", &self.content_type)
            .finish_non_exhaustive()
    }
}

impl StreamingResponse {
    /// The body as it arrives, at most the client's response limit, within its timeout: a read
    /// past the limit fails.
    pub fn into_reader(self) -> impl std::io::Read + Send + 'static {
        self.body.into_with_config().limit(self.limit).reader()
    }

    /// The whole response, its body read to the end.
    pub fn into_raw(mut self) -> Result<RawResponse, TransportError> {
        let body = self.body.with_config().limit(self.limit).read_to_vec()?;
        Ok(RawResponse {
            status: self.status,
            body,
            next_pin: self.next_pin,
            server_time: self.server_time,
            held_ack: self.held_ack,
            server_timing: self.server_timing,
        })
    }
}

/// A connection profile for one office server: its base URL and pinned certificates.
#[derive(Debug, Clone)]
pub struct Client {
    base_url: String,
    agent: ureq::Agent,
    options: TransportOptions,
    presented: Arc<tls::PresentedPin>,
}

impl Client {
    /// A client for `base_url` (`https://host[:port]`) that trusts only the certificate `pin`.
    pub fn new(base_url: &str, pin: Fingerprint) -> Result<Client, TransportError> {
        Client::with_options(base_url, pin, TransportOptions::default())
    }

    /// Like [`Client::new`] with explicit limits.
    pub fn with_options(
        base_url: &str,
        pin: Fingerprint,
        options: TransportOptions,
    ) -> Result<Client, TransportError> {
        Client::with_pins(base_url, &[pin], options)
    }

    /// A client for `base_url` that trusts any of the certificates `pins` (a phone holds two
    /// while the office rotates its certificate) and nothing else.
    pub fn with_pins(
        base_url: &str,
        pins: &[Fingerprint],
        options: TransportOptions,
    ) -> Result<Client, TransportError> {
        let base_url = base_url.trim_end_matches('/');
        let rest = base_url
            .strip_prefix("https://")
            .ok_or(TransportError::InvalidUrl(
                "the address must start with https://",
            ))?;
        if rest.is_empty() || rest.contains('/') || rest.contains('?') || rest.contains('@') {
            return Err(TransportError::InvalidUrl(
                "the address must be https://host[:port] with no path",
            ));
        }
        let (tls, presented) =
            tls::pinned_config(pins.to_vec()).map_err(|e| TransportError::Tls(e.to_string()))?;
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .proxy(None)
            .https_only(true)
            .timeout_connect(Some(options.connect_timeout))
            .timeout_global(Some(options.timeout))
            .user_agent(concat!("fieldcase/", env!("CARGO_PKG_VERSION")))
            .build();
        let connector = TcpConnector::default().chain(tls::PinnedTlsConnector { config: tls });
        let agent = ureq::Agent::with_parts(config, connector, DefaultResolver::default());
        Ok(Client {
            base_url: base_url.to_owned(),
            agent,
            options,
            presented,
        })
    }

    /// Which of the pinned certificates the server showed on the last accepted handshake
    /// (`None` before one).
    pub fn presented_pin(&self) -> Option<Fingerprint> {
        self.presented.get()
    }

    /// The base URL this client talks to.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Sends one request and returns the response whatever its status.
    pub fn send(&self, req: &RawRequest) -> Result<RawResponse, TransportError> {
        self.send_streaming(req)?.into_raw()
    }

    /// Sends one request and returns the response's status and headers at once, its body left
    /// to read as it arrives ([`StreamingResponse::into_reader`]), within the client's limits.
    pub fn send_streaming(&self, req: &RawRequest) -> Result<StreamingResponse, TransportError> {
        if !req.path.starts_with('/') {
            return Err(TransportError::InvalidUrl("the path must start with /"));
        }
        let url = format!("{}{}", self.base_url, req.path);
        let mut builder = ureq::http::Request::builder()
            .method(req.method.as_str())
            .uri(url.as_str());
        for (name, value) in &req.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        if req.body.len() > EXPECT_CONTINUE_ABOVE
            && !req
                .headers
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case("expect"))
        {
            // Lets the server refuse (e.g. too large) before the body is on the wire.
            builder = builder.header("expect", "100-continue");
        }
        let response = if req.body.is_empty() {
            let request = builder
                .body(())
                .map_err(|_| TransportError::InvalidUrl("invalid request"))?;
            self.agent.run(request)?
        } else {
            let request = builder
                .body(req.body.as_slice())
                .map_err(|_| TransportError::InvalidUrl("invalid request"))?;
            self.agent.run(request)?
        };
        let headers = response.headers();
        let content_type = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .filter(|v| v.len() <= 100)
            .map(str::to_owned);
        Ok(StreamingResponse {
            status: response.status().as_u16(),
            next_pin: NextPinHeaders::from_headers(headers),
            server_time: server_time(headers),
            held_ack: headers.contains_key(crate::protocol::HEADER_HELD_ACK),
            server_timing: server_timing(headers),
            content_type,
            body: response.into_body(),
            limit: self.options.max_response_bytes,
        })
    }

    /// `GET /healthz`: succeeds if the server answers `200`.
    pub fn healthz(&self) -> Result<(), TransportError> {
        self.get_unsigned(PATH_HEALTHZ).map(|_| ())
    }

    /// An unauthenticated `GET`; the body of a 2xx answer.
    pub fn get_unsigned(&self, path: &str) -> Result<Vec<u8>, TransportError> {
        self.send(&RawRequest {
            method: "GET".to_owned(),
            path: path.to_owned(),
            headers: Vec::new(),
            body: Vec::new(),
        })?
        .into_result()
    }

    /// Enrolls the device key `key` with a one-time code. Sends only the public key and a proof.
    pub fn enroll(&self, code: &str, key: &SigningKey) -> Result<EnrollResponse, TransportError> {
        let request = protocol::enroll_request(code, key)?;
        let body =
            serde_json::to_vec(&request).map_err(|e| TransportError::BadResponse(e.to_string()))?;
        let answer = self
            .send(&RawRequest {
                method: "POST".to_owned(),
                path: PATH_ENROLL.to_owned(),
                headers: vec![("content-type".to_owned(), "application/json".to_owned())],
                body,
            })?
            .into_result()?;
        let response: EnrollResponse = serde_json::from_slice(&answer)
            .map_err(|_| TransportError::BadResponse("malformed enrollment answer".to_owned()))?;
        protocol::decode_public_key(&response.server_public_key).map_err(|_| {
            TransportError::BadResponse("server public key is not valid".to_owned())
        })?;
        Ok(response)
    }
}

/// Enrolls a device: connects to `base_url` pinning `pin`, presents `code` and the public half of
/// `key`. The private key never leaves the device.
pub fn enroll(
    base_url: &str,
    pin: Fingerprint,
    code: &str,
    key: &SigningKey,
) -> Result<EnrollResponse, TransportError> {
    Client::new(base_url, pin)?.enroll(code, key)
}

/// What a device authenticates with: its id and its Ed25519 signing key (zeroized on drop).
pub struct DeviceCredential {
    /// The device id from enrollment.
    pub device_id: Uuid,
    signing_key: SigningKey,
}

impl DeviceCredential {
    /// Wraps a device id and its key.
    pub fn new(device_id: Uuid, signing_key: SigningKey) -> DeviceCredential {
        DeviceCredential {
            device_id,
            signing_key,
        }
    }

    /// The signing key (for the store that keeps it sealed).
    pub fn signing_key(&self) -> &SigningKey {
        &self.signing_key
    }
}

impl std::fmt::Debug for DeviceCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceCredential")
            .field("device_id", &self.device_id)
            .finish_non_exhaustive()
    }
}

/// A client that signs every request with the device credential.
#[derive(Debug)]
pub struct DeviceClient {
    client: Client,
    credential: DeviceCredential,
    /// The value of [`HEADER_PINS`] its requests carry (signed), if any.
    pins_header: Option<String>,
}

impl DeviceClient {
    /// Combines a pinned client and a device credential.
    pub fn new(client: Client, credential: DeviceCredential) -> DeviceClient {
        DeviceClient {
            client,
            credential,
            pins_header: None,
        }
    }

    /// Makes every request acknowledge `pins` (the certificates this phone accepts) in the
    /// signed [`HEADER_PINS`] header, so the office knows the phone holds its next certificate.
    /// Only with more than one pin: a phone that holds one has heard of no rotation, and
    /// sending nothing keeps its requests what they were (an office that predates rotation
    /// would not know to sign the extra line).
    pub fn acknowledging(mut self, pins: &[Fingerprint]) -> DeviceClient {
        self.pins_header = (pins.len() > 1).then(|| protocol::format_pins(pins));
        self
    }

    /// The underlying unsigned client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The credential.
    pub fn credential(&self) -> &DeviceCredential {
        &self.credential
    }

    /// Builds a signed request with an explicit timestamp and nonce (normally use
    /// [`DeviceClient::get`] / [`DeviceClient::post`], which take the clock and fresh randomness).
    pub fn signed_request(
        &self,
        method: &str,
        path: &str,
        body: &[u8],
        timestamp: i64,
        nonce: &[u8; NONCE_LEN],
    ) -> RawRequest {
        let headers = protocol::sign_request_with_pins(
            &self.credential.signing_key,
            &self.credential.device_id,
            method,
            path,
            timestamp,
            nonce,
            body,
            self.pins_header.as_deref(),
        );
        let mut pairs: Vec<(String, String)> = headers
            .pairs()
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect();
        if let Some(pins) = &self.pins_header {
            pairs.push((HEADER_PINS.to_owned(), pins.clone()));
        }
        RawRequest {
            method: method.to_ascii_uppercase(),
            path: path.to_owned(),
            headers: pairs,
            body: body.to_vec(),
        }
    }

    /// Builds a signed request stamped now with a fresh random nonce.
    pub fn signed_request_now(&self, method: &str, path: &str, body: &[u8]) -> RawRequest {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        self.signed_request(method, path, body, unix_now(), &nonce)
    }

    /// A signed `GET`; the body of a 2xx answer.
    pub fn get(&self, path: &str) -> Result<Vec<u8>, TransportError> {
        let req = self.signed_request_now("GET", path, &[]);
        self.client.send(&req)?.into_result()
    }

    /// A signed `PUT` of `body`; the body of a 2xx answer.
    pub fn put(&self, path: &str, body: &[u8]) -> Result<Vec<u8>, TransportError> {
        let req = self.signed_request_now("PUT", path, body);
        self.client.send(&req)?.into_result()
    }

    /// A signed `POST` of `body`; the body of a 2xx answer.
    pub fn post(&self, path: &str, body: &[u8]) -> Result<Vec<u8>, TransportError> {
        self.post_announced(path, body).map(|(body, _)| body)
    }

    /// [`DeviceClient::post`], also returning the next-certificate announcement headers the
    /// 2xx answer carried (unverified).
    pub fn post_announced(
        &self,
        path: &str,
        body: &[u8],
    ) -> Result<(Vec<u8>, Option<NextPinHeaders>), TransportError> {
        self.post_answer(path, body, &[])
            .map(|answer| (answer.body, answer.next_pin))
    }

    /// A signed `POST` of `body` with `extra` headers (not covered by the signature), returning
    /// the 2xx answer with what its headers carried.
    pub fn post_answer(
        &self,
        path: &str,
        body: &[u8],
        extra: &[(String, String)],
    ) -> Result<SignedAnswer, TransportError> {
        let mut response = self.post_streaming(path, body, extra)?.into_raw()?;
        let next_pin = response.next_pin.take();
        let (server_time, held_ack) = (response.server_time, response.held_ack);
        let server_timing = response.server_timing.take();
        Ok(SignedAnswer {
            body: response.into_result()?,
            next_pin,
            server_time,
            held_ack,
            server_timing,
        })
    }

    /// A signed `POST` of `body` with `extra` headers, returning the response as soon as its
    /// headers arrived, whatever its status ([`StreamingResponse`]).
    pub fn post_streaming(
        &self,
        path: &str,
        body: &[u8],
        extra: &[(String, String)],
    ) -> Result<StreamingResponse, TransportError> {
        let mut req = self.signed_request_now("POST", path, body);
        req.headers.extend_from_slice(extra);
        self.client.send_streaming(&req)
    }

    /// `GET /v1/whoami`.
    pub fn whoami(&self) -> Result<WhoAmI, TransportError> {
        let body = self.get(PATH_WHOAMI)?;
        serde_json::from_slice(&body)
            .map_err(|_| TransportError::BadResponse("malformed whoami answer".to_owned()))
    }
}

/// Seconds since the Unix epoch by the device clock.
fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
