//! Wire types shared by devices and the office server, and the canonical form of a signed request.
//!
//! This module is pure: no I/O, no clock and no randomness. The device side
//! ([`crate::transport`]) and the server both build the string a device signs with
//! [`canonical_request`], so the two can never disagree on it.
//!
//! # Protocol version
//!
//! The version is the first path segment ([`API_PREFIX`], `/v1`). A server answers a request for
//! another version with `400` and [`error_code::UNSUPPORTED_PROTOCOL_VERSION`]. The version also
//! appears in the signed canonical string, so a signature made for one version is never valid for
//! another.
//!
//! # Signed requests
//!
//! Every authenticated request carries five headers: [`HEADER_DEVICE`] (device id),
//! [`HEADER_TIMESTAMP`] (Unix seconds), [`HEADER_NONCE`] ([`NONCE_LEN`] random bytes, lowercase
//! hex), [`HEADER_BODY_SHA256`] (the body's SHA-256, lowercase hex) and [`HEADER_SIGNATURE`]
//! (Ed25519 signature, lowercase hex) over [`canonical_request`], which holds that digest; so
//! the server checks the signature before it reads the body.
//! The server accepts a timestamp within [`TIMESTAMP_WINDOW_SECS`] of its own clock and each
//! nonce once per device.
//!
//! A phone that holds more than one certificate pin (during a certificate rotation) also sends
//! [`HEADER_PINS`], and its value is one more line of the signed string, so that the office's
//! record of which phones hold the next certificate cannot be forged by whoever sits between
//! them (someone holding a leaked key of the current certificate, say). Without that header
//! the signed string is exactly what it always was, so phones and offices of either age agree.

mod attachments;
mod invite;
mod statements;

pub use attachments::{CHUNKS_IN_FLIGHT, ChunkAck, attachment_chunk_path, attachment_path};
pub use invite::{EnrollmentInvite, INVITE_VERSION, InviteError, MAX_INVITE_LEN};
pub use statements::{Lease, PinAnnouncement, WipeOrder, WipeReceipt, next_pin_message};

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// The protocol version this build speaks.
pub const PROTOCOL_VERSION: u32 = 1;
/// Path prefix of every versioned endpoint.
pub const API_PREFIX: &str = "/v1";
/// Unauthenticated liveness probe; answers `200 ok`.
pub const PATH_HEALTHZ: &str = "/healthz";
/// Enrollment endpoint (`POST`, body [`EnrollRequest`], answer [`EnrollResponse`]).
pub const PATH_ENROLL: &str = "/v1/enroll";
/// Authenticated identity probe (`GET`, answer [`WhoAmI`]).
pub const PATH_WHOAMI: &str = "/v1/whoami";
/// Path where a device (even a revoked one) delivers its signed [`WipeReceipt`].
pub const PATH_WIPE_RECEIPT: &str = "/v1/wipe-receipt";

/// Header carrying the device id (a UUID) of a signed request.
pub const HEADER_DEVICE: &str = "x-fieldcase-device";
/// Header carrying the request timestamp in Unix seconds.
pub const HEADER_TIMESTAMP: &str = "x-fieldcase-timestamp";
/// Header carrying the request nonce, lowercase hex of [`NONCE_LEN`] random bytes.
pub const HEADER_NONCE: &str = "x-fieldcase-nonce";
/// Header carrying the Ed25519 signature over [`canonical_request`], lowercase hex.
pub const HEADER_SIGNATURE: &str = "x-fieldcase-signature";
/// Header holding the SHA-256 of the request body (lowercase hex), which the signature covers:
/// the server verifies the signature before it reads a byte of the body, then checks the body
/// against this digest.
pub const HEADER_BODY_SHA256: &str = "x-fieldcase-body-sha256";

/// Response header of a sync answer while the office has a next certificate ready: its SHA-256
/// fingerprint, lowercase hex (see [`PinAnnouncement`]).
pub const HEADER_NEXT_PIN: &str = "x-fieldcase-next-pin";
/// Response header beside [`HEADER_NEXT_PIN`]: the office key's signature over
/// [`next_pin_message`], lowercase hex.
pub const HEADER_NEXT_PIN_SIGNATURE: &str = "x-fieldcase-next-pin-signature";
/// Request header of a phone that holds more than one certificate pin: every fingerprint it
/// accepts, lowercase hex, comma-separated, at most [`MAX_PINS`]. Covered by the request
/// signature (see [`canonical_request`]), so the office can trust what it records.
pub const HEADER_PINS: &str = "x-fieldcase-pins";
/// Most certificate fingerprints a phone holds (and acknowledges) at once.
pub const MAX_PINS: usize = 4;
/// Request header of a sync: the statement the phone holds for the office (base64 of a blob
/// sealed to the office's key; see [`crate::crypto::office`]): a prepared panic receipt, or after
/// the duress PIN was entered, the duress notice. The office answers a sync that carried one
/// with [`HEADER_HELD_ACK`]; a phone does not take an answer without it.
pub const HEADER_HELD: &str = "x-fieldcase-held";
/// Response header of a sync answer: the office read the phone's [`HEADER_HELD`] statement.
pub const HEADER_HELD_ACK: &str = "x-fieldcase-held-ack";
/// Request header of a sync from a phone that reads the optional `remaining` section of an
/// answer (value `1`; [`crate::sync::Remaining`]): the office adds the section only for such a
/// phone, since phones built before it refuse an answer with bytes past its end.
pub const HEADER_REMAINING: &str = "x-fieldcase-remaining";
/// Request header of a sync from a phone that takes its answer streamed (value `1`;
/// [`crate::sync::frames`]): the office may then send several pages in one answer, each cut
/// into frames the phone applies as they arrive.
pub const HEADER_STREAM: &str = "x-fieldcase-stream";
/// Longest [`HEADER_HELD`] value read.
pub const MAX_HELD_HEADER: usize = 4096;
/// Bytes a statement for the office is padded to before sealing, so that a panic receipt and a
/// duress notice seal to the same size.
pub const STATEMENT_LEN: usize = 512;

/// A wipe receipt as the statement a phone holds for the office: its JSON padded with spaces to
/// [`STATEMENT_LEN`].
pub fn statement_bytes(receipt: &WipeReceipt) -> Vec<u8> {
    let mut bytes = serde_json::to_vec(receipt).unwrap_or_default();
    if bytes.len() < STATEMENT_LEN {
        bytes.resize(STATEMENT_LEN, b' ');
    }
    bytes
}

/// Response header of a successful sync answer: the office's time, Unix seconds in decimal.
/// The phone takes it as its trusted time for the offline lease (`store::lease`); it comes over
/// the pinned TLS connection, so only the enrolled office can have set it.
pub const HEADER_SERVER_TIME: &str = "x-fieldcase-server-time";

/// Number of random bytes in a request nonce.
pub const NONCE_LEN: usize = 16;
/// How far (seconds, either way) a request timestamp may be from the server's clock.
pub const TIMESTAMP_WINDOW_SECS: i64 = 300;
/// Largest request body the server accepts on the enrollment endpoint.
pub const MAX_ENROLL_BODY: usize = 4 * 1024;
/// Largest request body of an ordinary authenticated request.
pub const MAX_SIGNED_BODY: usize = 64 * 1024;
/// Largest request body of a sync request.
pub const MAX_SYNC_BODY: usize = 16 * 1024 * 1024;

/// Number of Crockford base32 symbols in an enrollment code (5 bits each: 80 bits).
pub const ENROLLMENT_CODE_SYMBOLS: usize = 16;
/// The Crockford base32 alphabet used for enrollment codes.
pub const CROCKFORD_ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// Machine-readable error codes carried in [`ErrorBody::error`].
pub mod error_code {
    /// The path names a protocol version this server does not speak.
    pub const UNSUPPORTED_PROTOCOL_VERSION: &str = "unsupported_protocol_version";
    /// No such endpoint.
    pub const NOT_FOUND: &str = "not_found";
    /// The endpoint exists but not with this method.
    pub const METHOD_NOT_ALLOWED: &str = "method_not_allowed";
    /// The request body is not what the endpoint expects.
    pub const MALFORMED_REQUEST: &str = "malformed_request";
    /// The request body is larger than the endpoint allows.
    pub const BODY_TOO_LARGE: &str = "body_too_large";
    /// The request took too long.
    pub const TIMEOUT: &str = "timeout";
    /// The enrollment code is not known to the server.
    pub const ENROLLMENT_CODE_UNKNOWN: &str = "enrollment_code_unknown";
    /// The enrollment code was already used.
    pub const ENROLLMENT_CODE_USED: &str = "enrollment_code_used";
    /// The enrollment code has expired.
    pub const ENROLLMENT_CODE_EXPIRED: &str = "enrollment_code_expired";
    /// The device key did not prove possession of its private half, or is unusable.
    pub const BAD_DEVICE_KEY: &str = "bad_device_key";
    /// Another device already uses this public key.
    pub const DEVICE_KEY_IN_USE: &str = "device_key_in_use";
    /// Too many failed attempts from this client; retry later.
    pub const TOO_MANY_ATTEMPTS: &str = "too_many_attempts";
    /// The device sent requests faster than the office takes them: retry later.
    pub const TOO_MANY_REQUESTS: &str = "too_many_requests";
    /// A signed-request header is missing.
    pub const MISSING_AUTH: &str = "missing_auth";
    /// A signed-request header is present but malformed.
    pub const BAD_AUTH_HEADER: &str = "bad_auth_header";
    /// The device id is not known.
    pub const UNKNOWN_DEVICE: &str = "unknown_device";
    /// The device was revoked (or its user deactivated).
    pub const DEVICE_REVOKED: &str = "device_revoked";
    /// The device enrolled, but an admin has not yet confirmed its key fingerprint.
    pub const DEVICE_UNCONFIRMED: &str = "device_unconfirmed";
    /// The user is deactivated.
    pub const USER_INACTIVE: &str = "user_inactive";
    /// The signature does not verify.
    pub const BAD_SIGNATURE: &str = "bad_signature";
    /// The timestamp is outside the accepted window.
    pub const STALE_TIMESTAMP: &str = "stale_timestamp";
    /// The nonce was already used: a replayed request.
    pub const REPLAYED_REQUEST: &str = "replayed_request";
    /// Something failed inside the server; nothing more is said.
    pub const INTERNAL: &str = "internal";
    /// The authenticated user's role may not do this.
    pub const FORBIDDEN: &str = "forbidden";
    /// An admin action asked for from a device, without a sign-in to the office's web pages by
    /// the same user in the last minutes: a phone alone (a stolen one) cannot act as an admin.
    pub const RECENT_SIGN_IN_REQUIRED: &str = "recent_sign_in_required";
    /// The quarantined upload was already released or discarded.
    pub const ALREADY_DECIDED: &str = "already_decided";
    /// A sync upload held changes that do not apply (malformed automerge data); nothing stored.
    pub const BAD_CHANGES: &str = "bad_changes";
    /// The server's disk is full; nothing was stored, try again later.
    pub const STORAGE_FULL: &str = "storage_full";
    /// The server's storage cannot be written (read-only, I/O error); nothing was stored.
    pub const STORAGE_UNAVAILABLE: &str = "storage_unavailable";
    /// The case holds no such attachment (never added, or removed).
    pub const ATTACHMENT_NOT_FOUND: &str = "attachment_not_found";
    /// The device's user is not assigned to the attachment's case.
    pub const NOT_ASSIGNED: &str = "not_assigned";
    /// An attachment chunk came out of order; the answer's body says which one the office wants.
    pub const CHUNK_OUT_OF_ORDER: &str = "chunk_out_of_order";
    /// An attachment chunk was refused (wrong size, past the end, not this device's upload);
    /// nothing was stored.
    pub const CHUNK_REFUSED: &str = "chunk_refused";
    /// The chunks of an attachment did not add up to its hash: the office dropped them all, and
    /// the upload starts again from the first.
    pub const ATTACHMENT_HASH_MISMATCH: &str = "attachment_hash_mismatch";
    /// A whole upload that is not the kind of file its reference gives, or still holds metadata
    /// a phone removes (location, camera): the office dropped every chunk of it.
    pub const ATTACHMENT_REFUSED: &str = "attachment_refused";
    /// The office does not hold the whole attachment yet: try again later.
    pub const ATTACHMENT_NOT_AT_OFFICE: &str = "attachment_not_at_office";
}

/// Body of every error answer: `{ "error": "code", "reason": "human text" }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Machine-readable code, one of [`error_code`] (a newer server may send others).
    pub error: String,
    /// Human-readable explanation, safe to show to a user.
    pub reason: String,
    /// With `device_revoked`: the server's signed order to wipe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wipe_order: Option<WipeOrder>,
}

/// A user's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Visits people, writes notes, works the assigned cases.
    FieldWorker,
    /// Assigns and oversees cases.
    CaseManager,
    /// Manages users and devices.
    Admin,
}

impl Role {
    /// The wire and storage name (`field-worker`, `case-manager`, `admin`).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::FieldWorker => "field-worker",
            Role::CaseManager => "case-manager",
            Role::Admin => "admin",
        }
    }

    /// Parses the wire and storage name.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "field-worker" => Some(Role::FieldWorker),
            "case-manager" => Some(Role::CaseManager),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Body of `POST /v1/enroll`. Carries only public material.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollRequest {
    /// The one-time enrollment code as typed (normalised by the server).
    pub code: String,
    /// The device's Ed25519 public key, lowercase hex of 32 bytes.
    pub device_public_key: String,
    /// Ed25519 signature by the device key over [`enroll_proof_message`], lowercase hex: proves
    /// that the device holds the private half.
    pub proof: String,
}

/// Answer to a successful enrollment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollResponse {
    /// The id the server gave this device.
    pub device_id: Uuid,
    /// The user the device is bound to.
    pub user_id: Uuid,
    /// That user's role.
    pub role: Role,
    /// The server's Ed25519 public key (lowercase hex of 32 bytes), to verify wipe orders.
    pub server_public_key: String,
}

/// Answer to `GET /v1/whoami`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WhoAmI {
    /// The authenticated device.
    pub device_id: Uuid,
    /// The user it is bound to.
    pub user_id: Uuid,
    /// That user's role.
    pub role: Role,
}

/// Why a wire value could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Not valid hex of the expected length.
    #[error("expected {expected} bytes of hex")]
    BadHex {
        /// Number of bytes expected.
        expected: usize,
    },
    /// Not a valid Ed25519 public key.
    #[error("not a valid Ed25519 public key")]
    BadPublicKey,
    /// Not a valid enrollment code.
    #[error("an enrollment code has {ENROLLMENT_CODE_SYMBOLS} letters and digits")]
    BadEnrollmentCode,
    /// Not a SHA-256 fingerprint.
    #[error("a certificate fingerprint is 64 hex digits")]
    BadFingerprint,
}

/// SHA-256 of a DER certificate: what a device pins.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    /// The fingerprint of a DER-encoded certificate.
    pub fn of_der(der: &[u8]) -> Fingerprint {
        Fingerprint(Sha256::digest(der).into())
    }

    /// Lowercase hex, 64 digits.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses 64 hex digits; colons, spaces and case are ignored (`AB:CD:...` works).
    pub fn parse(s: &str) -> Result<Fingerprint, DecodeError> {
        let cleaned: String = s
            .chars()
            .filter(|c| !matches!(c, ':' | ' ' | '-'))
            .collect();
        decode_hex_array::<32>(&cleaned)
            .map(Fingerprint)
            .map_err(|_| DecodeError::BadFingerprint)
    }
}

impl std::fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Fingerprint({})", self.to_hex())
    }
}

impl std::fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// Decodes exactly `N` bytes of hex (either case).
pub fn decode_hex_array<const N: usize>(s: &str) -> Result<[u8; N], DecodeError> {
    let mut out = [0u8; N];
    if s.len() != 2 * N {
        return Err(DecodeError::BadHex { expected: N });
    }
    hex::decode_to_slice(s, &mut out).map_err(|_| DecodeError::BadHex { expected: N })?;
    Ok(out)
}

/// Decodes an Ed25519 public key from lowercase hex, rejecting invalid and weak (small-order) keys.
pub fn decode_public_key(s: &str) -> Result<VerifyingKey, DecodeError> {
    let bytes = decode_hex_array::<32>(s)?;
    let key = VerifyingKey::from_bytes(&bytes).map_err(|_| DecodeError::BadPublicKey)?;
    if key.is_weak() {
        return Err(DecodeError::BadPublicKey);
    }
    Ok(key)
}

/// Normalises a typed enrollment code: drops separators (`-`, spaces), upper-cases, maps the
/// Crockford look-alikes (`I`, `L` → `1`, `O` → `0`) and checks length and alphabet.
pub fn normalize_enrollment_code(typed: &str) -> Result<String, DecodeError> {
    let mut out = String::with_capacity(ENROLLMENT_CODE_SYMBOLS);
    for c in typed.chars() {
        let c = match c.to_ascii_uppercase() {
            '-' | ' ' => continue,
            'I' | 'L' => '1',
            'O' => '0',
            c => c,
        };
        if !c.is_ascii() || !CROCKFORD_ALPHABET.contains(&(c as u8)) {
            return Err(DecodeError::BadEnrollmentCode);
        }
        if out.len() == ENROLLMENT_CODE_SYMBOLS {
            return Err(DecodeError::BadEnrollmentCode);
        }
        out.push(c);
    }
    if out.len() != ENROLLMENT_CODE_SYMBOLS {
        return Err(DecodeError::BadEnrollmentCode);
    }
    Ok(out)
}

/// Encodes 10 random bytes as an enrollment code in groups of four (`ABCD-EFGH-JKMN-PQRS`).
pub fn format_enrollment_code(random: &[u8; 10]) -> String {
    let mut bits: u128 = 0;
    for b in random {
        bits = (bits << 8) | u128::from(*b);
    }
    let mut out = String::with_capacity(ENROLLMENT_CODE_SYMBOLS + 3);
    for i in 0..ENROLLMENT_CODE_SYMBOLS {
        if i > 0 && i % 4 == 0 {
            out.push('-');
        }
        let shift = 5 * (ENROLLMENT_CODE_SYMBOLS - 1 - i);
        let idx = ((bits >> shift) & 0x1f) as usize;
        out.push(char::from(CROCKFORD_ALPHABET[idx]));
    }
    out
}

/// SHA-256 of a normalised enrollment code: what the server stores instead of the code.
pub fn enrollment_code_hash(normalized: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"fieldcase-enrollment-code-v1\n");
    h.update(normalized.as_bytes());
    h.finalize().into()
}

/// The message a device signs at enrollment to prove it holds its key.
pub fn enroll_proof_message(normalized_code: &str, device_public_key: &VerifyingKey) -> Vec<u8> {
    format!(
        "fieldcase-enroll-v{PROTOCOL_VERSION}\n{normalized_code}\n{}",
        hex::encode(device_public_key.as_bytes())
    )
    .into_bytes()
}

/// Builds an [`EnrollRequest`] for a code, signed by the device key.
pub fn enroll_request(code: &str, key: &SigningKey) -> Result<EnrollRequest, DecodeError> {
    let normalized = normalize_enrollment_code(code)?;
    let public = key.verifying_key();
    let proof = key.sign(&enroll_proof_message(&normalized, &public));
    Ok(EnrollRequest {
        code: normalized,
        device_public_key: hex::encode(public.as_bytes()),
        proof: hex::encode(proof.to_bytes()),
    })
}

/// Checks the proof of an [`EnrollRequest`]; returns the normalised code and the device key.
pub fn verify_enroll_request(req: &EnrollRequest) -> Result<(String, VerifyingKey), DecodeError> {
    let normalized = normalize_enrollment_code(&req.code)?;
    let key = decode_public_key(&req.device_public_key)?;
    let sig = Signature::from_bytes(&decode_hex_array::<64>(&req.proof)?);
    key.verify_strict(&enroll_proof_message(&normalized, &key), &sig)
        .map_err(|_| DecodeError::BadPublicKey)?;
    Ok((normalized, key))
}

/// The string a device signs for one request, byte for byte:
///
/// ```text
/// fieldcase-request-v1\n
/// METHOD\n            (upper case)
/// PATH\n              (path and query, exactly as sent)
/// DEVICE_ID\n         (hyphenated lowercase UUID)
/// TIMESTAMP\n         (decimal Unix seconds)
/// NONCE\n             (lowercase hex)
/// SHA256(BODY)        (lowercase hex)
/// ```
///
/// A request that carries [`HEADER_PINS`] signs one more line, `\npins:VALUE`, with the header's
/// value exactly as sent ([`canonical_request_with_pins`]).
pub fn canonical_request(
    method: &str,
    path_and_query: &str,
    device_id: &Uuid,
    timestamp: i64,
    nonce: &[u8; NONCE_LEN],
    body: &[u8],
) -> Vec<u8> {
    canonical_request_with_pins(
        method,
        path_and_query,
        device_id,
        timestamp,
        nonce,
        body,
        None,
    )
}

/// [`canonical_request`] of a request that carries [`HEADER_PINS`] with the value `pins`
/// (`None`: a request without it, the same string as [`canonical_request`]).
pub fn canonical_request_with_pins(
    method: &str,
    path_and_query: &str,
    device_id: &Uuid,
    timestamp: i64,
    nonce: &[u8; NONCE_LEN],
    body: &[u8],
    pins: Option<&str>,
) -> Vec<u8> {
    let digest: [u8; 32] = Sha256::digest(body).into();
    canonical_request_digest(
        method,
        path_and_query,
        device_id,
        timestamp,
        nonce,
        &digest,
        pins,
    )
}

/// [`canonical_request_with_pins`] from the body's SHA-256 instead of the body.
fn canonical_request_digest(
    method: &str,
    path_and_query: &str,
    device_id: &Uuid,
    timestamp: i64,
    nonce: &[u8; NONCE_LEN],
    body_sha256: &[u8; 32],
    pins: Option<&str>,
) -> Vec<u8> {
    let mut text = format!(
        "fieldcase-request-v{PROTOCOL_VERSION}\n{}\n{}\n{}\n{}\n{}\n{}",
        method.to_ascii_uppercase(),
        path_and_query,
        device_id.as_hyphenated(),
        timestamp,
        hex::encode(nonce),
        hex::encode(body_sha256),
    );
    if let Some(pins) = pins {
        text.push_str("\npins:");
        text.push_str(pins);
    }
    text.into_bytes()
}

/// The value of [`HEADER_PINS`] for `pins`: lowercase hex fingerprints joined by commas.
pub fn format_pins(pins: &[Fingerprint]) -> String {
    pins.iter()
        .map(Fingerprint::to_hex)
        .collect::<Vec<_>>()
        .join(",")
}

/// Reads a value of [`HEADER_PINS`]: one to [`MAX_PINS`] fingerprints of 64 lowercase hex
/// digits, comma-separated, nothing else (the value is signed as sent, so there is one way to
/// write it).
pub fn parse_pins(value: &str) -> Result<Vec<Fingerprint>, BadHeader> {
    let bad = BadHeader(HEADER_PINS);
    if value.len() > MAX_PINS * 65 {
        return Err(bad);
    }
    let pins = value
        .split(',')
        .map(|p| {
            if p.len() == 64 && p.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
                decode_hex_array::<32>(p).map(Fingerprint).map_err(|_| bad)
            } else {
                Err(bad)
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    if pins.is_empty() || pins.len() > MAX_PINS {
        return Err(bad);
    }
    Ok(pins)
}

/// The authentication headers of a signed request, already encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHeaders {
    /// Value of [`HEADER_DEVICE`].
    pub device: String,
    /// Value of [`HEADER_TIMESTAMP`].
    pub timestamp: String,
    /// Value of [`HEADER_NONCE`].
    pub nonce: String,
    /// Value of [`HEADER_SIGNATURE`].
    pub signature: String,
    /// Value of [`HEADER_BODY_SHA256`].
    pub body_sha256: String,
}

impl SignedHeaders {
    /// `(name, value)` pairs, ready to put on a request.
    pub fn pairs(&self) -> [(&'static str, &str); 5] {
        [
            (HEADER_DEVICE, &self.device),
            (HEADER_TIMESTAMP, &self.timestamp),
            (HEADER_NONCE, &self.nonce),
            (HEADER_SIGNATURE, &self.signature),
            (HEADER_BODY_SHA256, &self.body_sha256),
        ]
    }
}

/// The fingerprint of a device's public key, as the phone shows it and an admin compares it
/// before confirming the device: the first 8 bytes of its SHA-256 in four groups of four
/// uppercase hex digits (`3F2A-91C0-77DE-0B14`). Whoever raced the worker to an enrollment
/// code would need a key with the same 64-bit prefix, which cannot be searched for.
pub fn key_fingerprint(public_key: &[u8; 32]) -> String {
    let digest = Sha256::digest(public_key);
    let hex = hex::encode_upper(&digest[..8]);
    let groups: Vec<&str> = (0..4).filter_map(|i| hex.get(i * 4..i * 4 + 4)).collect();
    groups.join("-")
}

/// Whether `typed` (as an admin typed it: any case, with or without dashes and spaces) is the
/// fingerprint `expected`.
pub fn same_fingerprint(typed: &str, expected: &str) -> bool {
    let norm = |s: &str| -> String {
        s.chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .map(|c| c.to_ascii_uppercase())
            .collect()
    };
    let typed = norm(typed);
    !typed.is_empty() && typed == norm(expected)
}

/// Signs one request. The caller supplies the clock and the nonce (this module has neither).
pub fn sign_request(
    key: &SigningKey,
    device_id: &Uuid,
    method: &str,
    path_and_query: &str,
    timestamp: i64,
    nonce: &[u8; NONCE_LEN],
    body: &[u8],
) -> SignedHeaders {
    sign_request_with_pins(
        key,
        device_id,
        method,
        path_and_query,
        timestamp,
        nonce,
        body,
        None,
    )
}

/// Signs one request that will carry [`HEADER_PINS`] with the value `pins` (`None`: no such
/// header, the same as [`sign_request`]). The caller sends that header itself.
#[allow(clippy::too_many_arguments)]
pub fn sign_request_with_pins(
    key: &SigningKey,
    device_id: &Uuid,
    method: &str,
    path_and_query: &str,
    timestamp: i64,
    nonce: &[u8; NONCE_LEN],
    body: &[u8],
    pins: Option<&str>,
) -> SignedHeaders {
    let digest: [u8; 32] = Sha256::digest(body).into();
    let msg = canonical_request_digest(
        method,
        path_and_query,
        device_id,
        timestamp,
        nonce,
        &digest,
        pins,
    );
    let sig = key.sign(&msg);
    SignedHeaders {
        device: device_id.as_hyphenated().to_string(),
        timestamp: timestamp.to_string(),
        nonce: hex::encode(nonce),
        signature: hex::encode(sig.to_bytes()),
        body_sha256: hex::encode(digest),
    }
}

/// The authentication headers of a request, decoded but not yet verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedAuth {
    /// Claimed device.
    pub device_id: Uuid,
    /// Claimed timestamp (Unix seconds).
    pub timestamp: i64,
    /// Nonce.
    pub nonce: [u8; NONCE_LEN],
    /// Signature.
    pub signature: [u8; 64],
}

/// Which header was wrong, for an error message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("malformed {0} header")]
pub struct BadHeader(pub &'static str);

impl ParsedAuth {
    /// Decodes the four header values.
    pub fn parse(
        device: &str,
        timestamp: &str,
        nonce: &str,
        signature: &str,
    ) -> Result<ParsedAuth, BadHeader> {
        let device_id = Uuid::try_parse(device).map_err(|_| BadHeader(HEADER_DEVICE))?;
        if timestamp.is_empty()
            || timestamp.len() > 19
            || !timestamp.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(BadHeader(HEADER_TIMESTAMP));
        }
        let timestamp: i64 = timestamp.parse().map_err(|_| BadHeader(HEADER_TIMESTAMP))?;
        let nonce = decode_hex_array::<NONCE_LEN>(nonce).map_err(|_| BadHeader(HEADER_NONCE))?;
        let signature =
            decode_hex_array::<64>(signature).map_err(|_| BadHeader(HEADER_SIGNATURE))?;
        Ok(ParsedAuth {
            device_id,
            timestamp,
            nonce,
            signature,
        })
    }

    /// Whether the timestamp is within [`TIMESTAMP_WINDOW_SECS`] of `now`.
    pub fn timestamp_fresh(&self, now: i64) -> bool {
        now.abs_diff(self.timestamp) <= TIMESTAMP_WINDOW_SECS.unsigned_abs()
    }

    /// Decodes the value of [`HEADER_BODY_SHA256`].
    pub fn parse_body_digest(text: &str) -> Result<[u8; 32], BadHeader> {
        decode_hex_array::<32>(text).map_err(|_| BadHeader(HEADER_BODY_SHA256))
    }

    /// Verifies the signature (strict Ed25519) over the canonical form of this request, whose
    /// body has the SHA-256 `body_sha256`: the check that can run before the body is read.
    pub fn verify_digest(
        &self,
        key: &VerifyingKey,
        method: &str,
        path_and_query: &str,
        body_sha256: &[u8; 32],
    ) -> bool {
        self.verify_digest_with_pins(key, method, path_and_query, body_sha256, None)
    }

    /// [`ParsedAuth::verify_digest`] of a request that carried [`HEADER_PINS`] with the value
    /// `pins` as received (`None`: it carried none).
    pub fn verify_digest_with_pins(
        &self,
        key: &VerifyingKey,
        method: &str,
        path_and_query: &str,
        body_sha256: &[u8; 32],
        pins: Option<&str>,
    ) -> bool {
        let msg = canonical_request_digest(
            method,
            path_and_query,
            &self.device_id,
            self.timestamp,
            &self.nonce,
            body_sha256,
            pins,
        );
        key.verify_strict(&msg, &Signature::from_bytes(&self.signature))
            .is_ok()
    }

    /// Verifies the signature (strict Ed25519) over the canonical form of this request.
    pub fn verify(
        &self,
        key: &VerifyingKey,
        method: &str,
        path_and_query: &str,
        body: &[u8],
    ) -> bool {
        let digest: [u8; 32] = Sha256::digest(body).into();
        self.verify_digest(key, method, path_and_query, &digest)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn code_roundtrip_and_normalisation() {
        let code = format_enrollment_code(&[0xff; 10]);
        assert_eq!(code, "ZZZZ-ZZZZ-ZZZZ-ZZZZ");
        let code = format_enrollment_code(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
        let n = normalize_enrollment_code(&code.to_lowercase().replace('-', " ")).unwrap();
        assert_eq!(n, code.replace('-', ""));
        assert_eq!(
            normalize_enrollment_code("oooo-iiii-llll-0000").unwrap(),
            "0000111111110000"
        );
        assert!(normalize_enrollment_code("UUUU-0000-0000-0000").is_err());
        assert!(normalize_enrollment_code("0000-0000-0000-000").is_err());
        assert!(normalize_enrollment_code("0000-0000-0000-00000").is_err());
    }

    #[test]
    fn sign_and_verify() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let dev = Uuid::from_u128(42);
        let h = sign_request(&key, &dev, "post", "/v1/x?a=1", 1000, &[3; 16], b"body");
        let p = ParsedAuth::parse(&h.device, &h.timestamp, &h.nonce, &h.signature).unwrap();
        let vk = key.verifying_key();
        assert!(p.verify(&vk, "POST", "/v1/x?a=1", b"body"));
        assert!(!p.verify(&vk, "POST", "/v1/x?a=2", b"body"));
        assert!(!p.verify(&vk, "GET", "/v1/x?a=1", b"body"));
        assert!(!p.verify(&vk, "POST", "/v1/x?a=1", b"bodY"));
        assert!(p.timestamp_fresh(1300) && p.timestamp_fresh(700) && !p.timestamp_fresh(1301));
        assert!(ParsedAuth::parse(&h.device, "-5", &h.nonce, &h.signature).is_err());
    }

    #[test]
    fn the_pins_header_is_signed_and_cannot_be_added_or_changed() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let vk = key.verifying_key();
        let dev = Uuid::from_u128(42);
        let pins = format_pins(&[Fingerprint([1; 32]), Fingerprint([2; 32])]);
        let digest: [u8; 32] = Sha256::digest(b"body").into();
        let with = sign_request_with_pins(
            &key,
            &dev,
            "POST",
            "/v1/sync",
            1000,
            &[3; 16],
            b"body",
            Some(&pins),
        );
        let p =
            ParsedAuth::parse(&with.device, &with.timestamp, &with.nonce, &with.signature).unwrap();
        assert!(p.verify_digest_with_pins(&vk, "POST", "/v1/sync", &digest, Some(&pins)));
        assert!(
            !p.verify_digest(&vk, "POST", "/v1/sync", &digest),
            "header dropped"
        );
        let other = format_pins(&[Fingerprint([1; 32]), Fingerprint([9; 32])]);
        assert!(!p.verify_digest_with_pins(&vk, "POST", "/v1/sync", &digest, Some(&other)));
        // A request signed without the header does not verify once one is added to it.
        let without = sign_request(&key, &dev, "POST", "/v1/sync", 1000, &[3; 16], b"body");
        let q = ParsedAuth::parse(
            &without.device,
            &without.timestamp,
            &without.nonce,
            &without.signature,
        )
        .unwrap();
        assert!(q.verify_digest(&vk, "POST", "/v1/sync", &digest));
        assert!(!q.verify_digest_with_pins(&vk, "POST", "/v1/sync", &digest, Some(&pins)));
    }

    #[test]
    fn the_pins_header_has_one_spelling() {
        let two = [Fingerprint([0xab; 32]), Fingerprint([2; 32])];
        assert_eq!(parse_pins(&format_pins(&two)).unwrap(), two.to_vec());
        assert!(parse_pins("").is_err());
        assert!(parse_pins(&format_pins(&two).to_uppercase()).is_err());
        assert!(parse_pins(&format!("{},", format_pins(&two))).is_err());
        assert!(parse_pins(&format_pins(&[Fingerprint([1; 32]); MAX_PINS + 1])).is_err());
        assert!(parse_pins(&"a".repeat(63)).is_err());
    }

    #[test]
    fn enroll_proof() {
        let key = SigningKey::from_bytes(&[9; 32]);
        let req = enroll_request("abcd-efgh-jkmn-pqrs", &key).unwrap();
        let (code, vk) = verify_enroll_request(&req).unwrap();
        assert_eq!(code, "ABCDEFGHJKMNPQRS");
        assert_eq!(vk, key.verifying_key());
        let mut bad = req.clone();
        bad.code = "ABCDEFGHJKMNPQRT".into();
        assert!(verify_enroll_request(&bad).is_err());
    }

    #[test]
    fn fingerprint_parse() {
        let f = Fingerprint::of_der(b"x");
        let colon: Vec<String> = f.0.iter().map(|b| format!("{b:02X}")).collect();
        assert_eq!(Fingerprint::parse(&colon.join(":")).unwrap(), f);
        assert_eq!(Fingerprint::parse(&f.to_hex()).unwrap(), f);
        assert!(Fingerprint::parse("abc").is_err());
    }
}
