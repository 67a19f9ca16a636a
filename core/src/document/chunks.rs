//! A scan of automerge's chunk framing before automerge parses received or stored bytes.
//!
//! automerge 0.12 trusts sizes written inside its chunks. Two of them let a few bytes take
//! gigabytes: a *bundle* chunk (an experimental type that nothing here makes) collects its
//! run-length-encoded columns into vectors, so a 186-byte bundle found by fuzzing took more than
//! 20 GB before it failed; and a *compressed change* chunk is inflated in full, so a deflate bomb
//! within the 16 MiB sync body would inflate about a thousand times. This scan reads only the
//! chunk headers (and inflates compressed changes into a counter, never into memory): it
//! refuses any chunk type but documents, changes and compressed changes, framing that does not
//! add up, and compressed changes that inflate past [`MAX_INFLATED_CHANGE`], before automerge
//! sees the bytes.

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

/// Most bytes one compressed change may inflate to. The largest change fieldcase makes, a note
/// body of [`crate::model::Limits::NOTE_BODY_MAX`] bytes written at once, encodes to little more
/// than its text; this leaves room many times over.
pub const MAX_INFLATED_CHANGE: u64 = 4 * 1024 * 1024;
/// Most chunks one call may hand to automerge (a saved document and its appended changes, or a
/// sync round's changes of one case).
pub const MAX_CHUNKS_AT_ONCE: usize = 100_000;

/// Checks the chunk framing of `bytes` as described in the module documentation: chunks of the
/// three types fieldcase makes, in any order (a saved document with appended changes, or
/// changes), each whole, nothing after the last.
pub(crate) fn prescan(bytes: &[u8]) -> Result<()> {
    let mut rest = bytes;
    let mut count = 0usize;
    while !rest.is_empty() {
        count += 1;
        if count > MAX_CHUNKS_AT_ONCE {
            return Err(CoreError::Document("too many automerge chunks"));
        }
        let (kind, body, after) = chunk(rest)?;
        match kind {
            DOCUMENT | CHANGE => {}
            COMPRESSED => check_inflated(body)?,
            _ => {
                return Err(CoreError::Document(
                    "an automerge chunk type fieldcase does not use",
                ));
            }
        }
        rest = after;
    }
    Ok(())
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

/// Refuses a deflated change that inflates past [`MAX_INFLATED_CHANGE`] (or is no deflate
/// stream), counting the inflated bytes without keeping them.
fn check_inflated(deflated: &[u8]) -> Result<()> {
    let inflater = flate2::bufread::DeflateDecoder::new(deflated);
    let mut limited = inflater.take(MAX_INFLATED_CHANGE + 1);
    let inflated = std::io::copy(&mut limited, &mut std::io::sink())
        .map_err(|_| CoreError::Document("a compressed change that does not inflate"))?;
    if inflated > MAX_INFLATED_CHANGE {
        return Err(CoreError::Document("a compressed change inflates too far"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    /// A chunk with a zero checksum (the scan does not check it; automerge does).
    fn framed(kind: u8, body: &[u8]) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        out.extend([0; 4]);
        out.push(kind);
        let mut len = body.len() as u64;
        loop {
            let byte = (len & 0x7f) as u8;
            len >>= 7;
            if len == 0 {
                out.push(byte);
                break;
            }
            out.push(byte | 0x80);
        }
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
        let doc = framed(DOCUMENT, b"doc");
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
        let limit = MAX_INFLATED_CHANGE as usize;
        let at_limit = framed(COMPRESSED, &deflated(&vec![0; limit]));
        assert!(prescan(&at_limit).is_ok());
        // 8 MiB of zeros deflate to about 8 KB: a bomb of a thousand to one.
        let bomb = deflated(&vec![0; 2 * limit]);
        assert!(bomb.len() < 16 * 1024, "{}", bomb.len());
        assert!(prescan(&framed(COMPRESSED, &bomb)).is_err());
        assert!(prescan(&framed(COMPRESSED, b"\xff\xff not deflate")).is_err());
    }

    #[test]
    fn too_many_chunks_are_refused() {
        let change = framed(CHANGE, b"");
        let many = change.repeat(MAX_CHUNKS_AT_ONCE + 1);
        assert!(prescan(&many).is_err());
        assert!(prescan(&many[change.len()..]).is_ok());
    }
}
