//! The enrollment invite: everything a phone needs to enroll — the office's address, its
//! certificate fingerprint and the one-time enrollment code — in one versioned, checksummed
//! string that the office shows as a QR code, so the worker scans instead of typing 64 hex
//! digits and a code.
//!
//! Text form: `FC1:` then the payload in base32 (RFC 4648, no padding), whose alphabet fits a QR
//! code's alphanumeric mode. Payload of version 1:
//!
//! | bytes | what |
//! | --- | --- |
//! | 32 | SHA-256 fingerprint of the office's certificate |
//! | 10 | the enrollment code (its 16 Crockford symbols, 5 bits each) |
//! | 1 | length `n` of the address (1 to [`MAX_URL_LEN`]) |
//! | `n` | the address, `https://host[:port]`, UTF-8 |
//! | 4 | checksum: the first 4 bytes of SHA-256 over a domain tag and everything before |
//!
//! The checksum catches a misread or altered string before anything is sent; what makes the
//! pin trustworthy is where the invite comes from (the office's own screen, in person), exactly
//! as for a fingerprint typed by hand.

use sha2::{Digest, Sha256};

use super::{CROCKFORD_ALPHABET, Fingerprint, format_enrollment_code, normalize_enrollment_code};

/// The text every invite starts with, before its version number.
pub const INVITE_PREFIX: &str = "FC";
/// The version of the invite format this build writes and reads.
pub const INVITE_VERSION: u32 = 1;
/// Longest office address an invite carries, in bytes.
pub const MAX_URL_LEN: usize = 200;
/// Longest invite text read (a version-1 invite with the longest address is under 400).
pub const MAX_INVITE_LEN: usize = 1024;
const CODE_BYTES: usize = 10;
const CHECKSUM_BYTES: usize = 4;
const FIXED: usize = 32 + CODE_BYTES + 1 + CHECKSUM_BYTES;
const CHECKSUM_TAG: &[u8] = b"fieldcase-invite-v1\n";

/// Why a text is not an enrollment invite this build can use. Nothing was sent anywhere.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InviteError {
    /// It does not start with `FC` and a version (some other QR code was scanned).
    #[error("not a fieldcase enrollment invite")]
    NotAnInvite,
    /// A version this build does not know: the app needs updating (or the office does).
    #[error("enrollment invite version {0} is not supported (this app reads version 1)")]
    UnsupportedVersion(u32),
    /// Characters outside the invite's alphabet: a misread, or the text was altered.
    #[error("the enrollment invite holds characters it cannot hold")]
    BadEncoding,
    /// Shorter than its contents say: cut off.
    #[error("the enrollment invite is cut short")]
    Truncated,
    /// Longer than its contents say.
    #[error("the enrollment invite is longer than its contents")]
    TooLong,
    /// The checksum does not match: a misread, or the text was altered. Scan again.
    #[error("the enrollment invite's checksum does not match: scan it again")]
    BadChecksum,
    /// The office address is not `https://host[:port]`.
    #[error("the enrollment invite's office address is not https://host[:port]")]
    BadUrl,
}

/// The office's address, certificate and one-time code, as an invite carries them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrollmentInvite {
    /// The office's address, `https://host[:port]`.
    pub url: String,
    /// SHA-256 fingerprint of the office's certificate: what the phone pins.
    pub pin: Fingerprint,
    /// The enrollment code, normalised (16 Crockford symbols, no separators).
    pub code: String,
}

/// Whether `url` is an office address a phone can pin: `https://host[:port]` and nothing else,
/// at most [`MAX_URL_LEN`] bytes.
fn check_url(url: &str) -> Result<(), InviteError> {
    if url.is_empty() || url.len() > MAX_URL_LEN || !url.starts_with("https://") {
        return Err(InviteError::BadUrl);
    }
    let parsed = url::Url::parse(url).map_err(|_| InviteError::BadUrl)?;
    let rest = &url["https://".len()..];
    let plain = parsed.scheme() == "https"
        && parsed.host_str().is_some_and(|h| !h.is_empty())
        && parsed.username().is_empty()
        && parsed.password().is_none()
        && parsed.path() == "/"
        && parsed.query().is_none()
        && parsed.fragment().is_none()
        && !rest.is_empty()
        && !rest.contains(['/', '?', '#', '@', '\\'])
        && !rest.chars().any(|c| c.is_whitespace() || c.is_control());
    if plain {
        Ok(())
    } else {
        Err(InviteError::BadUrl)
    }
}

fn code_to_bytes(normalized: &str) -> Option<[u8; CODE_BYTES]> {
    let mut bits: u128 = 0;
    for c in normalized.bytes() {
        let index = CROCKFORD_ALPHABET.iter().position(|a| *a == c)?;
        bits = (bits << 5) | index as u128;
    }
    let bytes = bits.to_be_bytes();
    bytes[16 - CODE_BYTES..].try_into().ok()
}

fn checksum(body: &[u8]) -> [u8; CHECKSUM_BYTES] {
    let mut h = Sha256::new();
    h.update(CHECKSUM_TAG);
    h.update(body);
    let digest = h.finalize();
    let mut out = [0; CHECKSUM_BYTES];
    out.copy_from_slice(&digest[..CHECKSUM_BYTES]);
    out
}

impl EnrollmentInvite {
    /// An invite for the office at `url` (`https://host[:port]`, a trailing `/` dropped) with the
    /// certificate `pin` and the enrollment `code` (as shown or typed; normalised here).
    pub fn new(url: &str, pin: Fingerprint, code: &str) -> Result<Self, InviteError> {
        let url = url.trim().trim_end_matches('/').to_owned();
        check_url(&url)?;
        let code = normalize_enrollment_code(code).map_err(|_| InviteError::NotAnInvite)?;
        Ok(Self { url, pin, code })
    }

    /// The invite as text: `FC1:` and the base32 payload (what the office's QR code holds).
    pub fn encode(&self) -> String {
        let mut body = Vec::with_capacity(FIXED + self.url.len());
        body.extend_from_slice(&self.pin.0);
        body.extend_from_slice(&code_to_bytes(&self.code).unwrap_or([0; CODE_BYTES]));
        // `new` and `parse` keep the address within MAX_URL_LEN (< 256).
        body.push(u8::try_from(self.url.len()).unwrap_or(u8::MAX));
        body.extend_from_slice(self.url.as_bytes());
        let sum = checksum(&body);
        body.extend_from_slice(&sum);
        format!(
            "{INVITE_PREFIX}{INVITE_VERSION}:{}",
            data_encoding::BASE32_NOPAD.encode(&body)
        )
    }

    /// Reads an invite as scanned (surrounding whitespace ignored; upper or lower case). Every
    /// refusal is typed ([`InviteError`]); nothing is sent before an invite parses whole.
    pub fn parse(text: &str) -> Result<Self, InviteError> {
        let text = text.trim();
        if text.len() > MAX_INVITE_LEN {
            return Err(InviteError::TooLong);
        }
        let (head, payload) = text.split_once(':').ok_or(InviteError::NotAnInvite)?;
        let version = head
            .get(..INVITE_PREFIX.len())
            .filter(|p| p.eq_ignore_ascii_case(INVITE_PREFIX))
            .map(|_| &head[INVITE_PREFIX.len()..])
            .filter(|v| !v.is_empty() && v.len() <= 9 && v.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|v| v.parse::<u32>().ok())
            .ok_or(InviteError::NotAnInvite)?;
        if version != INVITE_VERSION {
            return Err(InviteError::UnsupportedVersion(version));
        }
        let upper = payload.to_ascii_uppercase();
        let body = data_encoding::BASE32_NOPAD
            .decode(upper.as_bytes())
            .map_err(|e| match e.kind {
                data_encoding::DecodeKind::Length if payload.len() < 8 => InviteError::Truncated,
                _ => InviteError::BadEncoding,
            })?;
        if body.len() < FIXED + 1 {
            return Err(InviteError::Truncated);
        }
        let url_len = usize::from(body[32 + CODE_BYTES]);
        let total = FIXED + url_len;
        if body.len() < total {
            return Err(InviteError::Truncated);
        }
        if body.len() > total {
            return Err(InviteError::TooLong);
        }
        let (signed, sum) = body.split_at(total - CHECKSUM_BYTES);
        if checksum(signed) != sum {
            return Err(InviteError::BadChecksum);
        }
        let mut pin = [0; 32];
        pin.copy_from_slice(&body[..32]);
        let mut code = [0; CODE_BYTES];
        code.copy_from_slice(&body[32..32 + CODE_BYTES]);
        let url_at = 32 + CODE_BYTES + 1;
        let url = std::str::from_utf8(&body[url_at..url_at + url_len])
            .map_err(|_| InviteError::BadUrl)?
            .to_owned();
        check_url(&url)?;
        let code = normalize_enrollment_code(&format_enrollment_code(&code))
            .map_err(|_| InviteError::BadEncoding)?;
        Ok(Self {
            url,
            pin: Fingerprint(pin),
            code,
        })
    }

    /// The code as the office shows it, in groups of four.
    pub fn display_code(&self) -> String {
        code_to_bytes(&self.code)
            .map(|b| format_enrollment_code(&b))
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    fn invite() -> EnrollmentInvite {
        EnrollmentInvite::new(
            "https://office.lan:8443/",
            Fingerprint([7; 32]),
            "ABCD-EFGH-JKMN-PQRS",
        )
        .unwrap()
    }

    #[test]
    fn an_invite_reads_back_as_written() {
        let text = invite().encode();
        assert!(text.starts_with("FC1:"), "{text}");
        let back = EnrollmentInvite::parse(&text).unwrap();
        assert_eq!(back, invite());
        assert_eq!(back.url, "https://office.lan:8443");
        assert_eq!(back.code, "ABCDEFGHJKMNPQRS");
        assert_eq!(back.display_code(), "ABCD-EFGH-JKMN-PQRS");
        // An office on a local network, by its IP address.
        let lan = EnrollmentInvite::new(
            "https://192.168.1.20:8443",
            Fingerprint([3; 32]),
            "ABCD-EFGH-JKMN-PQRS",
        )
        .unwrap();
        assert_eq!(EnrollmentInvite::parse(&lan.encode()).unwrap(), lan);
        // As a phone's scanner may hand it over: lower case, with a newline.
        let sloppy = format!(" {}\n", text.to_ascii_lowercase());
        assert_eq!(EnrollmentInvite::parse(&sloppy).unwrap(), invite());
    }

    #[test]
    fn every_kind_of_wrong_text_has_its_own_error() {
        let text = invite().encode();
        let payload = text.strip_prefix("FC1:").unwrap();
        assert_eq!(
            EnrollmentInvite::parse("https://example.org"),
            Err(InviteError::NotAnInvite)
        );
        assert_eq!(
            EnrollmentInvite::parse(&format!("XY1:{payload}")),
            Err(InviteError::NotAnInvite)
        );
        assert_eq!(
            EnrollmentInvite::parse(&format!("FC2:{payload}")),
            Err(InviteError::UnsupportedVersion(2))
        );
        assert_eq!(
            EnrollmentInvite::parse(&format!("FC1:{}!", &payload[..payload.len() - 1])),
            Err(InviteError::BadEncoding)
        );
        assert_eq!(
            EnrollmentInvite::parse(&text[..text.len() - 16]),
            Err(InviteError::Truncated)
        );
        assert_eq!(EnrollmentInvite::parse("FC1:"), Err(InviteError::Truncated));
        // One symbol changed in the middle: the checksum catches it.
        let mut chars: Vec<char> = text.chars().collect();
        chars[20] = if chars[20] == 'A' { 'B' } else { 'A' };
        assert_eq!(
            EnrollmentInvite::parse(&chars.into_iter().collect::<String>()),
            Err(InviteError::BadChecksum)
        );
        for bad in [
            "http://office.lan",
            "https://",
            "https://user@office.lan",
            "https://office.lan/path",
            "https://office.lan?x=1",
            "https://office lan",
            "ftp://office.lan",
        ] {
            assert_eq!(
                EnrollmentInvite::new(bad, Fingerprint([1; 32]), "ABCD-EFGH-JKMN-PQRS"),
                Err(InviteError::BadUrl),
                "{bad}"
            );
        }
        let long = format!("https://{}.lan", "a".repeat(MAX_URL_LEN));
        assert_eq!(
            EnrollmentInvite::new(&long, Fingerprint([1; 32]), "ABCD-EFGH-JKMN-PQRS"),
            Err(InviteError::BadUrl)
        );
    }

    #[test]
    fn a_checksummed_invite_with_a_bad_address_is_refused() {
        // Built as a hostile office page would: the checksum is right, the address is not https.
        let mut body = vec![1u8; 32];
        body.extend_from_slice(&[0; CODE_BYTES]);
        let url = b"http://office.lan";
        body.push(url.len() as u8);
        body.extend_from_slice(url);
        let sum = checksum(&body);
        body.extend_from_slice(&sum);
        let text = format!("FC1:{}", data_encoding::BASE32_NOPAD.encode(&body));
        assert_eq!(EnrollmentInvite::parse(&text), Err(InviteError::BadUrl));
    }

    fn any_invite() -> impl Strategy<Value = EnrollmentInvite> {
        (
            any::<[u8; 32]>(),
            any::<[u8; CODE_BYTES]>(),
            "[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?(\\.[a-z0-9]{1,20}){0,2}\\.[a-z]{1,6}",
            proptest::option::of(1u16..),
        )
            .prop_map(|(pin, code, host, port)| {
                let url = match port {
                    Some(p) => format!("https://{host}:{p}"),
                    None => format!("https://{host}"),
                };
                EnrollmentInvite::new(&url, Fingerprint(pin), &format_enrollment_code(&code))
                    .unwrap()
            })
    }

    proptest! {
        #[test]
        fn any_invite_round_trips(invite in any_invite()) {
            prop_assert_eq!(EnrollmentInvite::parse(&invite.encode()), Ok(invite));
        }

        #[test]
        fn any_mutation_is_refused_or_reads_the_same(
            invite in any_invite(),
            at in any::<prop::sample::Index>(),
            with in any::<char>(),
            how in 0u8..3,
        ) {
            let text = invite.encode();
            let mut chars: Vec<char> = text.chars().collect();
            let i = at.index(chars.len());
            match how {
                0 => chars[i] = with,
                1 => { chars.remove(i); }
                _ => chars.insert(i, with),
            }
            let mutated: String = chars.into_iter().collect();
            // Refused, or (a letter's case changed, a space at either end) the same invite.
            if let Ok(read) = EnrollmentInvite::parse(&mutated) {
                prop_assert_eq!(read, invite);
            }
        }

        #[test]
        fn any_text_is_refused_or_reads_an_https_office(text in ".{0,400}") {
            if let Ok(read) = EnrollmentInvite::parse(&text) {
                prop_assert!(read.url.starts_with("https://"));
            }
        }
    }
}
