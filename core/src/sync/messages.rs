//! Versioned, length-limited sync messages in a compact binary framing, decoded without trusting
//! their sizes.
//!
//! Version 3 framing (all integers are unsigned LEB128 varints unless said otherwise):
//!
//! ```text
//! message  = magic "FCSY" · version (u32 little-endian) · kind (1 request, 2 response) · body
//! request  = cursor · list(changes) · list(id) · epoch · list(attested)
//! response = cursor · more (0|1) · list(id) accepted · list(changes) updates · list(id) purge
//!            · lease (0 | 1 · device id · expires_at (i64 LE) · bytes(signature))
//!            · epoch · reset (0|1) · list(attested) · [remaining]
//! remaining = 1 · cases · bytes      (optional; see below)
//! changes  = id (16 bytes) · list(hash (32 bytes)) heads · bytes(automerge change chunks)
//! epoch    = 0 | 1 · 16 bytes
//! attested = id (16 bytes) · epoch (16 bytes) · list(hash (32 bytes)) heads · mac (32 bytes)
//! list(x)  = count · x…          bytes = length · raw bytes
//! ```
//!
//! Version 3 added the office epoch and attested heads ([`super::epoch`]); version 2 lacked them.
//! Change bytes travel as they are (version 1 carried them base64 in JSON, about 1.4x larger and
//! slower to parse). Every count and length is checked against what is left of the message and
//! against [`MAX_CASES`] and [`MAX_HEADS`] before anything is allocated, and trailing bytes are
//! refused, so any input decodes to a message or to a typed [`SyncError`], never a panic. A
//! version-1 (JSON) message is recognised and refused as [`SyncError::UnsupportedVersion`].
//!
//! The one exception to "no trailing bytes" is the response's optional `remaining` section: how
//! much the office still has to send after this page, for the phone's progress bar
//! ([`Remaining`]). Phones built before it refuse any trailing byte, so an office adds it only
//! to the answers of a phone that said it reads it (the [`crate::protocol::HEADER_REMAINING`]
//! request header); a phone reads it leniently: absent, of an unknown tag, malformed or over
//! [`MAX_REMAINING_CASES`] / [`MAX_REMAINING_BYTES`], it is taken as unknown (`None`), never as
//! an error, and whatever follows it is left for later versions. It never changes what is
//! stored: it only feeds progress figures.

use automerge::ChangeHash;
use serde::{Deserialize, Serialize};

use super::epoch::{Attested, OfficeEpoch};
use crate::ids::CaseId;

/// The sync protocol version this build speaks (3: binary framing with the office epoch and
/// attested heads; 2 was the same framing without them; 1 was JSON with base64).
pub const PROTOCOL_VERSION: u32 = 3;
/// Largest encoded message accepted, either way.
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;
/// Most cases in one message.
pub const MAX_CASES: usize = 5_000;
/// Most heads per case (concurrent branches not yet merged).
pub const MAX_HEADS: usize = 64;
/// The first bytes of every binary sync message.
pub const MAGIC: &[u8; 4] = b"FCSY";
/// Largest count of cases left a [`Remaining`] may state; a larger one is taken as unknown.
pub const MAX_REMAINING_CASES: u64 = 10_000_000;
/// Largest count of bytes left a [`Remaining`] may state (1 TiB); a larger one is taken as
/// unknown.
pub const MAX_REMAINING_BYTES: u64 = 1 << 40;
/// Tag of the [`Remaining`] section of a response.
const TAG_REMAINING: u8 = 1;
/// Longest lease signature accepted (hex of a 64-byte Ed25519 signature is 128).
const MAX_SIGNATURE: usize = 256;
const KIND_REQUEST: u8 = 1;
const KIND_RESPONSE: u8 = 2;

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

/// What the office still has to send a device after one page of a sync, so that the phone can
/// show how far a long first sync has come. Counts only: no case id, nothing of a case.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Remaining {
    /// Cases assigned to the device's user that changed past this page's cursor: the office
    /// goes through each of them in a later page (a case the device already holds as it is
    /// costs nothing then). When the office listed no further than its per-request limit, a
    /// lower bound.
    pub cases: u64,
    /// The stored size, in bytes, of those cases' documents: what sending them whole costs,
    /// an estimate (a device that holds part of a case is sent only what it lacks).
    pub bytes: u64,
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
    /// The office epoch of the last response this device applied (`None` before its first).
    #[serde(default)]
    pub epoch: Option<OfficeEpoch>,
    /// For uploads of whole cases: the office's last statement of what it held of each, which a
    /// restored office takes back as its own ([`super::epoch`]).
    #[serde(default)]
    pub attested: Vec<Attested>,
}

impl Default for SyncRequest {
    /// A request of this protocol version that uploads nothing and knows nothing yet: cursor 0,
    /// no epoch.
    fn default() -> Self {
        SyncRequest {
            version: PROTOCOL_VERSION,
            cursor: 0,
            uploads: Vec::new(),
            purged: Vec::new(),
            epoch: None,
            attested: Vec::new(),
        }
    }
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
    /// The office's epoch: the device sends it back with its next request.
    #[serde(default)]
    pub epoch: Option<OfficeEpoch>,
    /// The device synced last in another epoch (the office was restored since): nothing of its
    /// request was taken; it must forget what it believes the office holds and offer every case
    /// it has, whole, from cursor 0.
    #[serde(default)]
    pub reset: bool,
    /// The office's statement of the heads it sent for each update, kept by the device.
    #[serde(default)]
    pub attested: Vec<Attested>,
    /// What the office still has to send after this page, when it says (offices built before
    /// this field, and answers to phones that did not ask, carry none).
    #[serde(default)]
    pub remaining: Option<Remaining>,
}

pub(crate) mod hash_list {
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

/// Appends the binary form of messages.
struct Writer(Vec<u8>);

impl Writer {
    fn new(version: u32, kind: u8, capacity: usize) -> Self {
        let mut out = Vec::with_capacity(capacity + 16);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&version.to_le_bytes());
        out.push(kind);
        Self(out)
    }

    fn varint(&mut self, mut v: u64) {
        loop {
            let byte = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                self.0.push(byte);
                return;
            }
            self.0.push(byte | 0x80);
        }
    }

    fn bytes(&mut self, b: &[u8]) {
        self.varint(b.len() as u64);
        self.0.extend_from_slice(b);
    }

    fn ids(&mut self, ids: &[CaseId]) {
        self.varint(ids.len() as u64);
        for id in ids {
            self.0.extend_from_slice(id.as_bytes());
        }
    }

    fn changes(&mut self, list: &[CaseChanges]) {
        self.varint(list.len() as u64);
        for c in list {
            self.0.extend_from_slice(c.case_id.as_bytes());
            self.varint(c.heads.len() as u64);
            for h in &c.heads {
                self.0.extend_from_slice(&h.0);
            }
            self.bytes(&c.changes);
        }
    }

    fn epoch(&mut self, epoch: Option<&OfficeEpoch>) {
        match epoch {
            None => self.0.push(0),
            Some(e) => {
                self.0.push(1);
                self.0.extend_from_slice(e);
            }
        }
    }

    fn attested(&mut self, list: &[Attested]) -> Result<(), SyncError> {
        self.varint(list.len() as u64);
        for a in list {
            if a.heads.len() > MAX_HEADS {
                return Err(SyncError::Malformed("too many heads"));
            }
            self.0.extend_from_slice(a.case_id.as_bytes());
            self.0.extend_from_slice(&a.epoch);
            self.varint(a.heads.len() as u64);
            for h in &a.heads {
                self.0.extend_from_slice(&h.0);
            }
            self.0.extend_from_slice(&a.mac);
        }
        Ok(())
    }

    fn finish(self) -> Result<Vec<u8>, SyncError> {
        if self.0.len() > MAX_MESSAGE_BYTES {
            return Err(SyncError::TooLarge(self.0.len()));
        }
        Ok(self.0)
    }
}

/// Reads the binary form, checking every length against what is left.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], SyncError> {
        if n > self.0.len() {
            return Err(SyncError::Malformed("truncated"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn byte(&mut self) -> Result<u8, SyncError> {
        Ok(self.take(1)?[0])
    }

    fn varint(&mut self) -> Result<u64, SyncError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            let part = u64::from(b & 0x7f);
            if shift == 63 && part > 1 {
                return Err(SyncError::Malformed("integer overflow"));
            }
            v |= part << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(SyncError::Malformed("integer overflow"))
    }

    /// A count of items of at least `min_size` bytes each, at most `max`.
    fn count(&mut self, max: usize, min_size: usize) -> Result<usize, SyncError> {
        let n = usize::try_from(self.varint()?).map_err(|_| SyncError::Malformed("count"))?;
        if n > max {
            return Err(SyncError::Malformed("too many items"));
        }
        if n.saturating_mul(min_size) > self.0.len() {
            return Err(SyncError::Malformed("truncated"));
        }
        Ok(n)
    }

    fn bytes(&mut self) -> Result<&'a [u8], SyncError> {
        let n = usize::try_from(self.varint()?).map_err(|_| SyncError::Malformed("length"))?;
        self.take(n)
    }

    fn id(&mut self) -> Result<CaseId, SyncError> {
        CaseId::from_slice(self.take(16)?).ok_or(SyncError::Malformed("bad id"))
    }

    fn ids(&mut self) -> Result<Vec<CaseId>, SyncError> {
        let n = self.count(MAX_CASES, 16)?;
        (0..n).map(|_| self.id()).collect()
    }

    fn bool(&mut self) -> Result<bool, SyncError> {
        match self.byte()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(SyncError::Malformed("bad flag")),
        }
    }

    fn heads(&mut self) -> Result<Vec<ChangeHash>, SyncError> {
        let h = self.count(MAX_HEADS, 32)?;
        let mut heads = Vec::with_capacity(h);
        for _ in 0..h {
            let mut hash = [0u8; 32];
            hash.copy_from_slice(self.take(32)?);
            heads.push(ChangeHash(hash));
        }
        Ok(heads)
    }

    fn epoch_bytes(&mut self) -> Result<OfficeEpoch, SyncError> {
        let mut epoch = [0u8; 16];
        epoch.copy_from_slice(self.take(16)?);
        Ok(epoch)
    }

    fn epoch(&mut self) -> Result<Option<OfficeEpoch>, SyncError> {
        match self.bool()? {
            false => Ok(None),
            true => Ok(Some(self.epoch_bytes()?)),
        }
    }

    fn attested(&mut self) -> Result<Vec<Attested>, SyncError> {
        // Each entry is at least an id, an epoch, a head count and a MAC.
        let n = self.count(MAX_CASES, 65)?;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let case_id = self.id()?;
            let epoch = self.epoch_bytes()?;
            let heads = self.heads()?;
            let mut mac = [0u8; 32];
            mac.copy_from_slice(self.take(32)?);
            out.push(Attested {
                case_id,
                epoch,
                heads,
                mac,
            });
        }
        let mut ids: Vec<CaseId> = out.iter().map(|a| a.case_id).collect();
        ids.sort();
        if ids.windows(2).any(|w| w[0] == w[1]) {
            return Err(SyncError::Malformed("a case attested twice"));
        }
        Ok(out)
    }

    fn changes(&mut self) -> Result<Vec<CaseChanges>, SyncError> {
        // Each entry is at least an id, a head count and a length.
        let n = self.count(MAX_CASES, 18)?;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let case_id = self.id()?;
            let heads = self.heads()?;
            let changes = self.bytes()?.to_vec();
            out.push(CaseChanges {
                case_id,
                changes,
                heads,
            });
        }
        Ok(out)
    }

    /// The optional [`Remaining`] section at the end of a response, read leniently: anything
    /// but a well-formed section within bounds is `None`, and what follows it is not read.
    fn remaining(&mut self) -> Option<Remaining> {
        if self.0.first() != Some(&TAG_REMAINING) {
            return None;
        }
        self.0 = &self.0[1..];
        let cases = self.varint().ok()?;
        let bytes = self.varint().ok()?;
        (cases <= MAX_REMAINING_CASES && bytes <= MAX_REMAINING_BYTES)
            .then_some(Remaining { cases, bytes })
    }

    fn end(&self) -> Result<(), SyncError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(SyncError::Malformed("trailing bytes"))
        }
    }
}

/// Checks size, magic, version and kind; returns a reader over the body.
fn open(bytes: &[u8], kind: u8) -> Result<Reader<'_>, SyncError> {
    if bytes.len() > MAX_MESSAGE_BYTES {
        return Err(SyncError::TooLarge(bytes.len()));
    }
    if bytes.first() == Some(&b'{') {
        // Version 1 spoke JSON: tell an old peer clearly which version it speaks.
        #[derive(Deserialize)]
        struct Version {
            version: u32,
        }
        return match serde_json::from_slice::<Version>(bytes) {
            Ok(v) if v.version != PROTOCOL_VERSION => Err(SyncError::UnsupportedVersion(v.version)),
            _ => Err(SyncError::Malformed("not a sync message")),
        };
    }
    let mut r = Reader(bytes);
    if r.take(4)
        .map_err(|_| SyncError::Malformed("not a sync message"))?
        != MAGIC
    {
        return Err(SyncError::Malformed("not a sync message"));
    }
    let mut version = [0u8; 4];
    version.copy_from_slice(r.take(4)?);
    let version = u32::from_le_bytes(version);
    if version != PROTOCOL_VERSION {
        return Err(SyncError::UnsupportedVersion(version));
    }
    if r.byte()? != kind {
        return Err(SyncError::Malformed("wrong message kind"));
    }
    Ok(r)
}

fn changes_size(list: &[CaseChanges]) -> usize {
    list.iter()
        .map(|c| c.changes.len() + 32 * c.heads.len() + 24)
        .sum()
}

impl SyncRequest {
    /// Encodes the request, refusing one over the size limit.
    pub fn encode(&self) -> Result<Vec<u8>, SyncError> {
        let mut w = Writer::new(self.version, KIND_REQUEST, changes_size(&self.uploads));
        w.varint(self.cursor);
        w.changes(&self.uploads);
        w.ids(&self.purged);
        w.epoch(self.epoch.as_ref());
        w.attested(&self.attested)?;
        w.finish()
    }

    /// Decodes and bounds-checks a request.
    pub fn decode(bytes: &[u8]) -> Result<Self, SyncError> {
        let mut r = open(bytes, KIND_REQUEST)?;
        let cursor = r.varint()?;
        let uploads = r.changes()?;
        let purged = r.ids()?;
        let epoch = r.epoch()?;
        let attested = r.attested()?;
        r.end()?;
        if uploads.len() + purged.len() > MAX_CASES || attested.len() > uploads.len() {
            return Err(SyncError::Malformed("too many cases"));
        }
        let mut ids: Vec<CaseId> = uploads.iter().map(|u| u.case_id).collect();
        ids.sort();
        if ids.windows(2).any(|w| w[0] == w[1]) {
            return Err(SyncError::Malformed("a case uploaded twice"));
        }
        Ok(Self {
            version: PROTOCOL_VERSION,
            cursor,
            uploads,
            purged,
            epoch,
            attested,
        })
    }
}

impl SyncResponse {
    /// The frames of one streamed answer ([`super::frames`]) as the one answer they make:
    /// the uploads accepted, cases to purge, updates and statements of all of them, the lease
    /// and epoch given last, and the cursor, `more` and what is left of the last frame. `None`
    /// for no frame.
    pub fn merged(frames: Vec<SyncResponse>) -> Option<SyncResponse> {
        frames.into_iter().reduce(|mut merged, later| {
            merged.absorb(later);
            merged
        })
    }

    /// Adds the frame that follows this one to it ([`SyncResponse::merged`]).
    pub fn absorb(&mut self, later: SyncResponse) {
        self.cursor = later.cursor;
        self.more = later.more;
        self.accepted.extend(later.accepted);
        self.updates.extend(later.updates);
        for case in later.purge {
            if !self.purge.contains(&case) {
                self.purge.push(case);
            }
        }
        self.lease = later.lease.or(self.lease.take());
        self.epoch = later.epoch.or(self.epoch);
        self.reset |= later.reset;
        self.attested.extend(later.attested);
        self.remaining = later.remaining;
    }

    /// Encodes the response, refusing one over the size limit.
    pub fn encode(&self) -> Result<Vec<u8>, SyncError> {
        let mut w = Writer::new(self.version, KIND_RESPONSE, changes_size(&self.updates));
        w.varint(self.cursor);
        w.0.push(u8::from(self.more));
        w.ids(&self.accepted);
        w.changes(&self.updates);
        w.ids(&self.purge);
        match &self.lease {
            None => w.0.push(0),
            Some(lease) => {
                if lease.signature.len() > MAX_SIGNATURE {
                    return Err(SyncError::Malformed("lease signature too long"));
                }
                w.0.push(1);
                w.0.extend_from_slice(lease.device_id.as_bytes());
                w.0.extend_from_slice(&lease.expires_at.to_le_bytes());
                w.bytes(lease.signature.as_bytes());
            }
        }
        w.epoch(self.epoch.as_ref());
        w.0.push(u8::from(self.reset));
        w.attested(&self.attested)?;
        if let Some(remaining) = &self.remaining {
            w.0.push(TAG_REMAINING);
            w.varint(remaining.cases.min(MAX_REMAINING_CASES));
            w.varint(remaining.bytes.min(MAX_REMAINING_BYTES));
        }
        w.finish()
    }

    /// Decodes and bounds-checks a response.
    pub fn decode(bytes: &[u8]) -> Result<Self, SyncError> {
        let mut r = open(bytes, KIND_RESPONSE)?;
        let cursor = r.varint()?;
        let more = r.bool()?;
        let accepted = r.ids()?;
        let updates = r.changes()?;
        let purge = r.ids()?;
        let lease = if r.bool()? {
            let device_id = uuid::Uuid::from_slice(r.take(16)?)
                .map_err(|_| SyncError::Malformed("bad lease"))?;
            let mut at = [0u8; 8];
            at.copy_from_slice(r.take(8)?);
            let signature = r.bytes()?;
            if signature.len() > MAX_SIGNATURE {
                return Err(SyncError::Malformed("lease signature too long"));
            }
            let signature = std::str::from_utf8(signature)
                .map_err(|_| SyncError::Malformed("bad lease"))?
                .to_owned();
            Some(crate::protocol::Lease {
                device_id,
                expires_at: i64::from_le_bytes(at),
                signature,
            })
        } else {
            None
        };
        let epoch = r.epoch()?;
        let reset = r.bool()?;
        let attested = r.attested()?;
        let remaining = r.remaining();
        if updates.len() + accepted.len() > MAX_CASES || attested.len() > updates.len() {
            return Err(SyncError::Malformed("too many cases"));
        }
        Ok(Self {
            version: PROTOCOL_VERSION,
            cursor,
            more,
            accepted,
            updates,
            purge,
            lease,
            epoch,
            reset,
            attested,
            remaining,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn request() -> SyncRequest {
        SyncRequest {
            version: PROTOCOL_VERSION,
            cursor: 300,
            uploads: vec![CaseChanges {
                case_id: CaseId::new(),
                changes: vec![1, 2, 3],
                heads: vec![ChangeHash([9; 32]), ChangeHash([7; 32])],
            }],
            purged: vec![CaseId::new()],
            epoch: Some([5; 16]),
            attested: vec![Attested::new(
                &[1; 32],
                [4; 16],
                CaseId::new(),
                &[ChangeHash([2; 32])],
            )],
        }
    }

    fn response() -> SyncResponse {
        SyncResponse {
            version: PROTOCOL_VERSION,
            cursor: u64::MAX,
            more: true,
            accepted: vec![CaseId::new()],
            updates: vec![CaseChanges {
                case_id: CaseId::new(),
                changes: vec![0; 300],
                heads: vec![ChangeHash([1; 32])],
            }],
            purge: vec![CaseId::new(), CaseId::new()],
            lease: Some(crate::protocol::Lease {
                device_id: uuid::Uuid::now_v7(),
                expires_at: -5,
                signature: "ab".repeat(64),
            }),
            epoch: Some([6; 16]),
            reset: true,
            attested: vec![Attested::new(
                &[1; 32],
                [6; 16],
                CaseId::new(),
                &[ChangeHash([1; 32])],
            )],
            remaining: None,
        }
    }

    #[test]
    fn round_trip_and_refusals() {
        let request = request();
        let bytes = request.encode().unwrap();
        assert_eq!(SyncRequest::decode(&bytes).unwrap(), request);
        let response = response();
        let encoded = response.encode().unwrap();
        assert_eq!(SyncResponse::decode(&encoded).unwrap(), response);
        let mut no_lease = response.clone();
        no_lease.lease = None;
        assert_eq!(
            SyncResponse::decode(&no_lease.encode().unwrap()).unwrap(),
            no_lease
        );
        // A request is not a response, and the other way round.
        assert!(matches!(
            SyncResponse::decode(&bytes),
            Err(SyncError::Malformed(_))
        ));
        assert!(matches!(
            SyncRequest::decode(&encoded),
            Err(SyncError::Malformed(_))
        ));

        let mut newer = request.clone();
        newer.version = PROTOCOL_VERSION + 1;
        assert_eq!(
            SyncRequest::decode(&newer.encode().unwrap()),
            Err(SyncError::UnsupportedVersion(PROTOCOL_VERSION + 1))
        );
        // Version 1 (JSON with base64) is named as such.
        let old = br#"{"version":1,"cursor":0,"uploads":[],"purged":[]}"#;
        assert_eq!(
            SyncRequest::decode(old),
            Err(SyncError::UnsupportedVersion(1))
        );
        assert_eq!(
            SyncResponse::decode(old),
            Err(SyncError::UnsupportedVersion(1))
        );
        assert!(matches!(
            SyncRequest::decode(b"{}"),
            Err(SyncError::Malformed(_))
        ));
        assert!(matches!(
            SyncRequest::decode(&vec![b' '; MAX_MESSAGE_BYTES + 1]),
            Err(SyncError::TooLarge(_))
        ));
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(matches!(
            SyncRequest::decode(&trailing),
            Err(SyncError::Malformed(_))
        ));
        let mut twice = request.clone();
        twice.uploads.push(twice.uploads[0].clone());
        assert!(matches!(
            SyncRequest::decode(&twice.encode().unwrap()),
            Err(SyncError::Malformed(_))
        ));
    }

    #[test]
    fn every_truncation_and_every_flipped_byte_gives_a_typed_answer() {
        for bytes in [request().encode().unwrap(), response().encode().unwrap()] {
            for end in 0..bytes.len() {
                assert!(SyncRequest::decode(&bytes[..end]).is_err());
                assert!(SyncResponse::decode(&bytes[..end]).is_err());
            }
            for at in 0..bytes.len() {
                for flip in [0x01u8, 0x80, 0xff] {
                    let mut b = bytes.clone();
                    b[at] ^= flip;
                    let _ = SyncRequest::decode(&b);
                    let _ = SyncResponse::decode(&b);
                }
            }
        }
    }

    #[test]
    fn the_remaining_section_is_optional_and_read_leniently() {
        let mut with = response();
        with.remaining = Some(Remaining {
            cases: 420,
            bytes: 3 << 20,
        });
        let bytes = with.encode().unwrap();
        assert_eq!(SyncResponse::decode(&bytes).unwrap(), with);
        // A phone built before the section refuses trailing bytes: the section is what follows
        // the message as it was, so an office that leaves it out sends exactly the old message.
        let without = SyncResponse {
            remaining: None,
            ..with.clone()
        }
        .encode()
        .unwrap();
        assert_eq!(&bytes[..without.len()], without.as_slice());
        assert_eq!(SyncResponse::decode(&without).unwrap().remaining, None);
        // Whatever follows a well-formed section is left for later versions.
        let mut longer = bytes.clone();
        longer.extend_from_slice(&[7, 7, 7]);
        assert_eq!(SyncResponse::decode(&longer).unwrap(), with);
        // Cut short, of another tag, or over its bounds: unknown, and the rest still decodes.
        let base = without.len();
        for cut in base..bytes.len() {
            let got = SyncResponse::decode(&bytes[..cut]).unwrap();
            assert_eq!(got.remaining, None);
            assert_eq!(got.updates, with.updates);
        }
        let mut other = without.clone();
        other.extend_from_slice(&[2, 5, 5]);
        assert_eq!(SyncResponse::decode(&other).unwrap().remaining, None);
        let mut huge = without.clone();
        huge.push(TAG_REMAINING);
        huge.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x7f]); // over MAX_REMAINING_CASES
        huge.push(1);
        assert_eq!(SyncResponse::decode(&huge).unwrap().remaining, None);
        // An office never states more than the bounds.
        let mut over = with.clone();
        over.remaining = Some(Remaining {
            cases: u64::MAX,
            bytes: u64::MAX,
        });
        assert_eq!(
            SyncResponse::decode(&over.encode().unwrap())
                .unwrap()
                .remaining,
            Some(Remaining {
                cases: MAX_REMAINING_CASES,
                bytes: MAX_REMAINING_BYTES,
            })
        );
    }

    #[test]
    fn counts_larger_than_the_message_are_refused_before_allocating() {
        let mut b = MAGIC.to_vec();
        b.extend_from_slice(&PROTOCOL_VERSION.to_le_bytes());
        b.push(KIND_REQUEST);
        b.push(0); // cursor
        b.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]); // a huge upload count
        assert!(matches!(
            SyncRequest::decode(&b),
            Err(SyncError::Malformed(_))
        ));
        let mut b = MAGIC.to_vec();
        b.extend_from_slice(&PROTOCOL_VERSION.to_le_bytes());
        b.push(KIND_REQUEST);
        b.extend_from_slice(&[0xff; 11]); // a varint longer than 64 bits
        assert!(matches!(
            SyncRequest::decode(&b),
            Err(SyncError::Malformed(_))
        ));
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_decode_or_fail_cleanly(
            tail in proptest::collection::vec(proptest::num::u8::ANY, 0..200),
            kind in 0u8..4,
        ) {
            let mut b = MAGIC.to_vec();
            b.extend_from_slice(&PROTOCOL_VERSION.to_le_bytes());
            b.push(kind);
            b.extend_from_slice(&tail);
            let _ = SyncRequest::decode(&b);
            let _ = SyncResponse::decode(&b);
            let _ = SyncRequest::decode(&tail);
            let _ = SyncResponse::decode(&tail);
        }
    }
}
