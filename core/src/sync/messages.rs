//! Versioned, length-limited sync messages, decoded without trusting their sizes.

use automerge::ChangeHash;
use serde::{Deserialize, Serialize};

use crate::ids::CaseId;

/// The sync protocol version this build speaks.
pub const PROTOCOL_VERSION: u32 = 1;
/// Largest encoded message accepted, either way.
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;
/// Most cases in one message.
pub const MAX_CASES: usize = 5_000;
/// Most heads per case (concurrent branches not yet merged).
pub const MAX_HEADS: usize = 64;

/// Why a sync message was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SyncError {
    /// The message is larger than [`MAX_MESSAGE_BYTES`].
    #[error("sync message of {0} bytes is over the limit")]
    TooLarge(usize),
    /// The peer speaks another protocol version.
    #[error("unsupported sync protocol version {0}")]
    UnsupportedVersion(u32),
    /// The message is not well-formed, or breaks a count limit.
    #[error("malformed sync message: {0}")]
    Malformed(&'static str),
}

/// The changes of one case, and the heads of the sender after them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseChanges {
    /// The case.
    pub case_id: CaseId,
    /// automerge change chunks, concatenated.
    #[serde(with = "crate::util::base64_bytes")]
    pub changes: Vec<u8>,
    /// The sender's heads for the case after these changes.
    #[serde(with = "hash_list")]
    pub heads: Vec<ChangeHash>,
}

/// Device → server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncRequest {
    /// Protocol version.
    pub version: u32,
    /// The server cursor this device has applied everything up to (0 at first).
    pub cursor: u64,
    /// Cases with local changes the server lacks.
    pub uploads: Vec<CaseChanges>,
    /// Cases this device purged after the last response told it to (purge receipts).
    #[serde(default)]
    pub purged: Vec<CaseId>,
}

/// Server → device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncResponse {
    /// Protocol version.
    pub version: u32,
    /// The cursor to send next time once this response is applied.
    pub cursor: u64,
    /// Whether more updates wait (the device should sync again at once).
    pub more: bool,
    /// Cases uploaded in the request that the server accepted and stored.
    pub accepted: Vec<CaseId>,
    /// Changes of cases the device lacks, with the server's heads.
    pub updates: Vec<CaseChanges>,
    /// Cases the device must purge (no longer assigned to its user), once their pending changes
    /// are in.
    #[serde(default)]
    pub purge: Vec<CaseId>,
    /// A renewed offline lease, signed by the server (added by the server, not the hub).
    #[serde(default)]
    pub lease: Option<crate::protocol::Lease>,
}

mod hash_list {
    use automerge::ChangeHash;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(heads: &[ChangeHash], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(heads.iter().map(|h| h.to_string()))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Vec<ChangeHash>, D::Error> {
        let texts = Vec::<String>::deserialize(d)?;
        if texts.len() > super::MAX_HEADS {
            return Err(serde::de::Error::custom("too many heads"));
        }
        texts
            .iter()
            .map(|t| {
                t.parse()
                    .map_err(|_| serde::de::Error::custom("bad change hash"))
            })
            .collect()
    }
}

fn decode<T: for<'de> Deserialize<'de>>(
    bytes: &[u8],
    version: impl Fn(&T) -> u32,
    cases: impl Fn(&T) -> usize,
) -> Result<T, SyncError> {
    if bytes.len() > MAX_MESSAGE_BYTES {
        return Err(SyncError::TooLarge(bytes.len()));
    }
    // Check the version first, so a newer peer gets a clear answer rather than "malformed".
    #[derive(Deserialize)]
    struct Version {
        version: u32,
    }
    let v: Version =
        serde_json::from_slice(bytes).map_err(|_| SyncError::Malformed("not a sync message"))?;
    if v.version != PROTOCOL_VERSION {
        return Err(SyncError::UnsupportedVersion(v.version));
    }
    let message: T =
        serde_json::from_slice(bytes).map_err(|_| SyncError::Malformed("bad field"))?;
    debug_assert_eq!(version(&message), PROTOCOL_VERSION);
    if cases(&message) > MAX_CASES {
        return Err(SyncError::Malformed("too many cases"));
    }
    Ok(message)
}

fn encode<T: Serialize>(message: &T) -> Result<Vec<u8>, SyncError> {
    let bytes = serde_json::to_vec(message).map_err(|_| SyncError::Malformed("cannot encode"))?;
    if bytes.len() > MAX_MESSAGE_BYTES {
        return Err(SyncError::TooLarge(bytes.len()));
    }
    Ok(bytes)
}

impl SyncRequest {
    /// Encodes the request, refusing one over the size limit.
    pub fn encode(&self) -> Result<Vec<u8>, SyncError> {
        encode(self)
    }

    /// Decodes and bounds-checks a request.
    pub fn decode(bytes: &[u8]) -> Result<Self, SyncError> {
        let request: Self = decode(
            bytes,
            |r: &Self| r.version,
            |r| r.uploads.len() + r.purged.len(),
        )?;
        let mut ids: Vec<CaseId> = request.uploads.iter().map(|u| u.case_id).collect();
        ids.sort();
        if ids.windows(2).any(|w| w[0] == w[1]) {
            return Err(SyncError::Malformed("a case uploaded twice"));
        }
        Ok(request)
    }
}

impl SyncResponse {
    /// Encodes the response, refusing one over the size limit.
    pub fn encode(&self) -> Result<Vec<u8>, SyncError> {
        encode(self)
    }

    /// Decodes and bounds-checks a response.
    pub fn decode(bytes: &[u8]) -> Result<Self, SyncError> {
        decode(
            bytes,
            |r: &Self| r.version,
            |r| r.updates.len() + r.accepted.len(),
        )
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn round_trip_and_refusals() {
        let request = SyncRequest {
            version: PROTOCOL_VERSION,
            cursor: 7,
            uploads: vec![CaseChanges {
                case_id: CaseId::new(),
                changes: vec![1, 2, 3],
                heads: vec![ChangeHash([9; 32])],
            }],
            purged: vec![],
        };
        let bytes = request.encode().unwrap();
        assert_eq!(SyncRequest::decode(&bytes).unwrap(), request);
        let newer = String::from_utf8(bytes.clone())
            .unwrap()
            .replace("\"version\":1", "\"version\":2");
        assert_eq!(
            SyncRequest::decode(newer.as_bytes()),
            Err(SyncError::UnsupportedVersion(2))
        );
        assert!(matches!(
            SyncRequest::decode(b"{}"),
            Err(SyncError::Malformed(_))
        ));
        assert!(matches!(
            SyncRequest::decode(&vec![b' '; MAX_MESSAGE_BYTES + 1]),
            Err(SyncError::TooLarge(_))
        ));
        let bad_hash = String::from_utf8(bytes)
            .unwrap()
            .replace(&"09".repeat(32), "zz");
        assert!(matches!(
            SyncRequest::decode(bad_hash.as_bytes()),
            Err(SyncError::Malformed(_))
        ));
        let mut twice = request.clone();
        twice.uploads.push(twice.uploads[0].clone());
        assert!(matches!(
            SyncRequest::decode(&twice.encode().unwrap()),
            Err(SyncError::Malformed(_))
        ));
    }
}
