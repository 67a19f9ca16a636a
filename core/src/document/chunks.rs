//! A scan of automerge's chunk framing before automerge parses received or stored bytes.
//!
//! automerge 0.12 trusts sizes written inside its chunks. Three of them let a few bytes take
//! gigabytes: a *bundle* chunk (an experimental type that nothing here makes) collects its
//! run-length-encoded columns into vectors, so a 186-byte bundle found by fuzzing took more than
//! 20 GB before it failed; a *compressed change* chunk is inflated in full, and so is every
//! deflated column of a *document* chunk, so a deflate bomb within the 16 MiB sync body would
//! inflate about a thousand times. This scan reads only the chunk framing and a document's
//! column directory, inflating what is deflated into a counter, never into memory. It refuses
//! any chunk type but documents, changes and compressed changes, framing that does not add up,
//! and chunks that inflate past [`MAX_INFLATED`] together, before automerge sees the bytes.

use std::io::Read;

use crate::error::{CoreError, Result};

/// automerge's chunk magic bytes.
const MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];
/// A whole saved document.
const DOCUMENT: u8 = 0;
/// One change.
const CHANGE: u8 = 1;
/// One change, deflated (automerge compresses changes that shrink by it).
const COMPRESSED: u8 = 2;

/// Most bytes the deflated parts of one call's chunks may inflate to, all together. Four times
/// the largest sync message ([`crate::sync::messages::MAX_MESSAGE_BYTES`]): a document that inflates
/// further would be too large to sync anyway, since automerge's columns deflate only a few times
/// (a saved case of 240 notes is about 6 KB).
pub const MAX_INFLATED: u64 = 64 * 1024 * 1024;
/// Most chunks one call may hand to automerge (a saved document and its appended changes, or a
/// sync round's changes of one case).
pub const MAX_CHUNKS_AT_ONCE: usize = 100_000;

/// Whether `bytes` start with an automerge document chunk (magic, checksum, type 0).
pub fn is_document_chunk(bytes: &[u8]) -> bool {
    bytes.len() > 8 && bytes[..4] == MAGIC && bytes[8] == DOCUMENT
}

/// The heads a saved document names in its header, read without loading it: `Some` only when
/// `bytes` are exactly one document chunk whose header reads. The heads are what the document
/// says of itself; a peer that loads it checks them (automerge verifies them against the
/// changes it rebuilds, and the hub that the upload leads to them).
pub fn document_heads(bytes: &[u8]) -> Option<Vec<automerge::ChangeHash>> {
    let (kind, body, after) = chunk(bytes).ok()?;
    if kind != DOCUMENT || !after.is_empty() {
        return None;
    }
    let (heads, _) = header_heads(body)?;
    if heads.len() / 32 > crate::sync::messages::MAX_HEADS {
        return None;
    }
    heads
        .chunks_exact(32)
        .map(|hash| Some(automerge::ChangeHash(hash.try_into().ok()?)))
        .collect()
}

/// A document body's heads (32-byte hashes, one after another) and what follows them: the
/// body starts with its actors (a count, then each as a length and its bytes), then a count of
/// heads. `None` when that does not add up.
fn header_heads(body: &[u8]) -> Option<(&[u8], &[u8])> {
    let (actors, mut rest) = uleb(body)?;
    for _ in 0..actors {
        let (len, after) = uleb(rest)?;
        rest = after.get(usize::try_from(len).ok()?..)?;
    }
    let (count, after) = uleb(rest)?;
    let len = usize::try_from(count).ok()?.checked_mul(32)?;
    Some((after.get(..len)?, after.get(len..)?))
}

/// Checks the chunk framing of `bytes` as described in the module documentation: chunks of the
/// three types fieldcase makes, in any order (a saved document with appended changes, or
/// changes), each whole, nothing after the last.
pub(crate) fn prescan(bytes: &[u8]) -> Result<()> {
    inflated_size(bytes).map(|_| ())
}

/// [`prescan`], returning how many bytes the deflated parts of `bytes` inflate to: a hub bounds
/// what all the uploads of one request make automerge inflate together, not only each one.
pub fn inflated_size(bytes: &[u8]) -> Result<u64> {
    let mut rest = bytes;
    let mut count = 0usize;
    let mut inflated = 0u64;
    while !rest.is_empty() {
        count += 1;
        if count > MAX_CHUNKS_AT_ONCE {
            return Err(CoreError::Document("too many automerge chunks"));
        }
        let (kind, body, after) = chunk(rest)?;
        match kind {
            CHANGE => {}
            DOCUMENT => inflated += deflated_columns(body, MAX_INFLATED - inflated)?,
            COMPRESSED => inflated += inflate_counted(body, MAX_INFLATED - inflated)?,
            _ => {
                return Err(CoreError::Document(
                    "an automerge chunk type fieldcase does not use",
                ));
            }
        }
        rest = after;
    }
    Ok(inflated)
}

/// Splits the first chunk off `bytes`: its type, its body and what follows it.
fn chunk(bytes: &[u8]) -> Result<(u8, &[u8], &[u8])> {
    let framing = || CoreError::Document("automerge chunk framing does not add up");
    let Some((magic, rest)) = bytes.split_first_chunk::<4>() else {
        return Err(framing());
    };
    if *magic != MAGIC {
        return Err(framing());
    }
    // The checksum (four bytes), which automerge checks itself, then the type.
    let Some((&kind, rest)) = rest.get(4..).and_then(<[u8]>::split_first) else {
        return Err(framing());
    };
    let (len, rest) = uleb(rest).ok_or_else(framing)?;
    let len = usize::try_from(len).map_err(|_| framing())?;
    if len > rest.len() {
        return Err(framing());
    }
    let (body, after) = rest.split_at(len);
    Ok((kind, body, after))
}

/// An unsigned LEB128 number of at most 64 bits and the bytes after it.
fn uleb(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let mut value = 0u64;
    for (i, &byte) in bytes.iter().enumerate().take(10) {
        let part = u64::from(byte & 0x7f);
        let shift = 7 * i as u32;
        if shift == 63 && part > 1 {
            return None;
        }
        value |= part << shift;
        if byte & 0x80 == 0 {
            return Some((value, &bytes[i + 1..]));
        }
    }
    None
}

/// The bytes a document chunk's deflated columns inflate to, refused past `budget`.
///
/// A document's body starts with its actors, its heads and the directories of its change and
/// operation columns (a spec and a length each); the columns' data follows in that order. A
/// spec with bit 3 set marks a deflated column.
fn deflated_columns(body: &[u8], budget: u64) -> Result<u64> {
    let layout = || CoreError::Document("automerge document layout does not add up");
    // Past the actors and the heads.
    let (_, mut rest) = header_heads(body).ok_or_else(layout)?;
    // The two column directories.
    let mut columns = Vec::new();
    for _ in 0..2 {
        let (count, after) = uleb(rest).ok_or_else(layout)?;
        rest = after;
        for _ in 0..count {
            let (spec, after) = uleb(rest).ok_or_else(layout)?;
            let (len, after) = uleb(after).ok_or_else(layout)?;
            rest = after;
            let spec = u32::try_from(spec).map_err(|_| layout())?;
            let len = usize::try_from(len).map_err(|_| layout())?;
            columns.push((spec & 0b1000 != 0, len));
        }
    }
    let mut inflated = 0u64;
    for (deflated, len) in columns {
        let data = rest.get(..len).ok_or_else(layout)?;
        rest = &rest[len..];
        if deflated {
            inflated += inflate_counted(data, budget - inflated)?;
        }
    }
    Ok(inflated)
}

/// The bytes a deflate stream inflates to, counted without keeping them; refused past `budget`
/// (or when it is no deflate stream).
fn inflate_counted(deflated: &[u8], budget: u64) -> Result<u64> {
    let inflater = flate2::bufread::DeflateDecoder::new(deflated);
    let mut limited = inflater.take(budget.saturating_add(1));
    let inflated = std::io::copy(&mut limited, &mut std::io::sink())
        .map_err(|_| CoreError::Document("a deflated automerge chunk that does not inflate"))?;
    if inflated > budget {
        return Err(CoreError::Document("automerge chunks that inflate too far"));
    }
    Ok(inflated)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::io::Write;

    use super::*;

    /// Appends `n` as unsigned LEB128.
    fn push_uleb(out: &mut Vec<u8>, mut n: u64) {
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }

    /// A chunk with a zero checksum (the scan does not check it; automerge does).
    fn framed(kind: u8, body: &[u8]) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        out.extend([0; 4]);
        out.push(kind);
        push_uleb(&mut out, body.len() as u64);
        out.extend(body);
        out
    }

    fn deflated(plain: &[u8]) -> Vec<u8> {
        let mut encoder =
            flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(plain).unwrap_or_default();
        encoder.finish().unwrap_or_default()
    }

    #[test]
    fn documents_and_changes_pass_and_other_chunk_types_do_not() {
        let doc = document_with_column(false, b"doc");
        let change = framed(CHANGE, b"change");
        let small = framed(COMPRESSED, &deflated(&[7; 1000]));
        assert!(prescan(&[doc.clone(), change.clone(), small.clone()].concat()).is_ok());
        assert!(prescan(&[change.clone(), small, doc.clone()].concat()).is_ok());
        assert!(prescan(&[]).is_ok());
        for kind in [3, 4, 0xff] {
            let other = framed(kind, b"bundle");
            assert!(prescan(&other).is_err(), "type {kind}");
            assert!(prescan(&[doc.clone(), other, change.clone()].concat()).is_err());
        }
    }

    #[test]
    fn framing_that_does_not_add_up_is_refused() {
        let change = framed(CHANGE, b"change");
        for cut in 1..change.len() {
            assert!(prescan(&change[..cut]).is_err(), "cut at {cut}");
        }
        let mut wrong_magic = change.clone();
        wrong_magic[0] ^= 1;
        assert!(prescan(&wrong_magic).is_err());
        let mut trailing = change.clone();
        trailing.push(0x85);
        assert!(prescan(&trailing).is_err());
        // A length that does not fit 64 bits.
        let mut huge = MAGIC.to_vec();
        huge.extend([0, 0, 0, 0, CHANGE]);
        huge.extend([0xff; 10]);
        huge.push(0x01);
        assert!(prescan(&huge).is_err());
        let max = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
        assert_eq!(uleb(&max).map(|(v, _)| v), Some(u64::MAX));
        let over = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02];
        assert_eq!(uleb(&over), None);
    }

    #[test]
    fn a_compressed_change_that_inflates_too_far_or_not_at_all_is_refused() {
        let limit = MAX_INFLATED as usize;
        let at_limit = framed(COMPRESSED, &deflated(&vec![0; limit]));
        assert!(prescan(&at_limit).is_ok());
        // 128 MiB of zeros deflate to about 128 KB: a bomb of a thousand to one.
        let bomb = deflated(&vec![0; 2 * limit]);
        assert!(bomb.len() < 256 * 1024, "{}", bomb.len());
        assert!(prescan(&framed(COMPRESSED, &bomb)).is_err());
        // Two chunks under the limit each, over it together.
        let half = framed(COMPRESSED, &deflated(&vec![0; limit / 2 + 1]));
        assert!(prescan(&[half.clone(), half].concat()).is_err());
        assert!(prescan(&framed(COMPRESSED, b"\xff\xff not deflate")).is_err());
    }

    /// A document chunk body with no actors, heads or change columns and one operation column.
    fn document_with_column(deflated: bool, data: &[u8]) -> Vec<u8> {
        let spec: u8 = if deflated { 0x08 | 0x07 } else { 0x07 };
        let mut body = vec![0, 0, 0, 1, spec];
        push_uleb(&mut body, data.len() as u64);
        body.extend(data);
        framed(DOCUMENT, &body)
    }

    #[test]
    fn a_document_whose_deflated_columns_inflate_too_far_is_refused() {
        let bomb = deflated(&vec![0; 2 * MAX_INFLATED as usize]);
        assert!(prescan(&document_with_column(true, &bomb)).is_err());
        assert!(
            prescan(&document_with_column(false, &bomb)).is_ok(),
            "not deflated: as it is"
        );
        assert!(prescan(&document_with_column(true, &deflated(b"small"))).is_ok());
        let mut cut = document_with_column(true, &deflated(b"small"));
        cut.truncate(cut.len() - 1);
        assert!(prescan(&cut).is_err());
    }

    #[test]
    fn real_documents_pass_and_their_deflated_columns_are_found() {
        use automerge::transaction::Transactable;
        let mut doc = automerge::AutoCommit::new();
        let text = doc
            .put_object(automerge::ROOT, "body", automerge::ObjType::Text)
            .unwrap_or(automerge::ROOT);
        let words: String = (0..20_000).map(|i| format!("w{} ", i % 97)).collect();
        assert!(doc.splice_text(&text, 0, 0, &words).is_ok());
        let saved = doc.save();
        assert!(prescan(&saved).is_ok());
        let (kind, body, rest) = chunk(&saved).unwrap_or((0xff, &[], &[]));
        assert_eq!((kind, rest.len()), (DOCUMENT, 0));
        let inflated = deflated_columns(body, MAX_INFLATED).unwrap_or(0);
        assert!(
            inflated > saved.len() as u64,
            "{inflated} inflated from {}",
            saved.len()
        );
        let changes = doc.save_after(&[]);
        assert!(prescan(&changes).is_ok());
    }

    #[test]
    fn too_many_chunks_are_refused() {
        let change = framed(CHANGE, b"");
        let many = change.repeat(MAX_CHUNKS_AT_ONCE + 1);
        assert!(prescan(&many).is_err());
        assert!(prescan(&many[change.len()..]).is_ok());
    }

    #[test]
    fn a_saved_documents_heads_are_read_from_its_header_and_nothing_else_has_any() {
        use automerge::transaction::Transactable;
        let mut doc = automerge::AutoCommit::new();
        for i in 0..3 {
            doc.put(automerge::ROOT, "n", i).unwrap();
            doc.commit();
        }
        let mut other = doc.fork();
        other.put(automerge::ROOT, "m", 1).unwrap();
        doc.put(automerge::ROOT, "k", 2).unwrap();
        doc.merge(&mut other).unwrap();
        let saved = doc.save();
        let mut heads = doc.get_heads();
        heads.sort();
        let mut read = document_heads(&saved).unwrap();
        read.sort();
        assert_eq!(read.len(), 2);
        assert_eq!(read, heads);
        // A document with changes after it, a change, a cut document, garbage: none.
        let change = doc.get_last_local_change().unwrap().raw_bytes().to_vec();
        let mut appended = saved.clone();
        appended.extend_from_slice(&change);
        assert!(document_heads(&appended).is_none());
        assert!(document_heads(&change).is_none());
        assert!(document_heads(&saved[..saved.len() - 1]).is_none());
        assert!(document_heads(b"not automerge").is_none());
    }
}
