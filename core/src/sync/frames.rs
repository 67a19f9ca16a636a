//! The framing of a streamed sync answer: several responses, one after another, in one HTTP
//! body, so that on a slow link the office keeps the link full (it builds the next page while
//! the phone receives the last) and the phone applies each frame as it arrives.
//!
//! ```text
//! stream = frame*
//! frame  = length (u32 little-endian, 1..=MAX_MESSAGE_BYTES) · response message
//! ```
//!
//! A phone asks for it with the [`crate::protocol::HEADER_STREAM`] request header, and an
//! office that streams answers with [`CONTENT_TYPE`]; any other answer is one response, as
//! before. Every frame but the stream's last says `more`; a stream that ends on a frame that
//! says `more` (the office stopped at its bound of bytes or time) is followed by another
//! round. A body that ends inside a frame was cut: the frames before it are applied and kept,
//! and the next sync starts from the cursor of the last of them, so a cut costs at most the
//! frame in flight ([`super::hub::FRAME_BUDGET`]) and the part of a TLS record that had
//! arrived (the office sends small records for this).

use std::io::{self, Read};

use super::messages::{MAX_MESSAGE_BYTES, SyncError, SyncResponse};

/// Content type of a streamed answer.
pub const CONTENT_TYPE: &str = "application/x-fieldcase-frames";

/// Bytes before each frame: its length.
const LENGTH_BYTES: usize = 4;

/// One response as a frame of a stream.
pub fn encode_frame(response: &SyncResponse) -> Result<Vec<u8>, SyncError> {
    let message = response.encode()?;
    let length = u32::try_from(message.len()).map_err(|_| SyncError::TooLarge(message.len()))?;
    let mut frame = Vec::with_capacity(LENGTH_BYTES + message.len());
    frame.extend_from_slice(&length.to_le_bytes());
    frame.extend_from_slice(&message);
    Ok(frame)
}

/// Reads the frames of a stream from `R`, one at a time, trusting no length.
pub struct FrameReader<R> {
    inner: R,
    /// Bytes of frames read so far.
    read: u64,
}

impl<R: Read> FrameReader<R> {
    /// Reads frames from `inner`.
    pub fn new(inner: R) -> Self {
        Self { inner, read: 0 }
    }

    /// Bytes of the frames read so far, their lengths included.
    pub fn bytes_read(&self) -> u64 {
        self.read
    }

    /// The next frame's message, or `None` when the stream ended where a frame could start.
    /// A stream that ends inside a frame fails with [`io::ErrorKind::UnexpectedEof`] (the link
    /// was cut); a length of zero or past [`MAX_MESSAGE_BYTES`] with
    /// [`io::ErrorKind::InvalidData`], before anything is allocated for it.
    pub fn next_frame(&mut self) -> io::Result<Option<Vec<u8>>> {
        let mut length = [0u8; LENGTH_BYTES];
        let mut filled = 0;
        while filled < LENGTH_BYTES {
            match self.inner.read(&mut length[filled..]) {
                Ok(0) if filled == 0 => return Ok(None),
                Ok(0) => return Err(cut()),
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        let length = usize::try_from(u32::from_le_bytes(length)).unwrap_or(usize::MAX);
        if length == 0 || length > MAX_MESSAGE_BYTES {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "a frame of the sync answer has an impossible length",
            ));
        }
        let mut message = Vec::new();
        (&mut self.inner)
            .take(length as u64)
            .read_to_end(&mut message)?;
        if message.len() < length {
            return Err(cut());
        }
        self.read = self.read.saturating_add((LENGTH_BYTES + length) as u64);
        Ok(Some(message))
    }
}

fn cut() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "the sync answer ended in the middle of a frame",
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::sync::PROTOCOL_VERSION;

    fn response(cursor: u64, more: bool) -> SyncResponse {
        SyncResponse {
            version: PROTOCOL_VERSION,
            cursor,
            more,
            accepted: Vec::new(),
            updates: Vec::new(),
            purge: Vec::new(),
            lease: None,
            epoch: Some([7; 16]),
            reset: false,
            attested: Vec::new(),
            remaining: None,
        }
    }

    #[test]
    fn frames_come_back_in_order_and_the_end_is_clean() {
        let mut stream = Vec::new();
        for cursor in 1..=3 {
            stream.extend(encode_frame(&response(cursor, cursor < 3)).unwrap());
        }
        let total = stream.len() as u64;
        let mut reader = FrameReader::new(stream.as_slice());
        let mut cursors = Vec::new();
        while let Some(frame) = reader.next_frame().unwrap() {
            cursors.push(SyncResponse::decode(&frame).unwrap().cursor);
        }
        assert_eq!(cursors, vec![1, 2, 3]);
        assert_eq!(reader.bytes_read(), total);
    }

    #[test]
    fn a_stream_cut_inside_a_frame_keeps_the_frames_before_it() {
        let mut stream = encode_frame(&response(1, true)).unwrap();
        let second = encode_frame(&response(2, false)).unwrap();
        // Cut inside the second frame's length, then inside its message.
        for cut_at in [2, second.len() - 1] {
            let mut cut_stream = stream.clone();
            cut_stream.extend_from_slice(&second[..cut_at]);
            let mut reader = FrameReader::new(cut_stream.as_slice());
            assert!(reader.next_frame().unwrap().is_some());
            let err = reader.next_frame().unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        }
        stream.extend_from_slice(&second);
        let mut reader = FrameReader::new(stream.as_slice());
        assert!(reader.next_frame().unwrap().is_some());
        assert!(reader.next_frame().unwrap().is_some());
        assert!(reader.next_frame().unwrap().is_none());
    }

    #[test]
    fn impossible_lengths_are_refused_before_allocating() {
        for length in [0u32, u32::MAX, (MAX_MESSAGE_BYTES + 1) as u32] {
            let mut stream = length.to_le_bytes().to_vec();
            stream.extend_from_slice(b"FCSY");
            let err = FrameReader::new(stream.as_slice())
                .next_frame()
                .unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        }
    }

    #[test]
    fn merged_frames_are_the_one_answer() {
        let mut first = response(5, true);
        first.accepted.push(crate::ids::CaseId::new());
        let mut last = response(9, false);
        last.remaining = None;
        let merged = SyncResponse::merged(vec![first.clone(), last]).unwrap();
        assert_eq!(merged.cursor, 9);
        assert!(!merged.more);
        assert_eq!(merged.accepted, first.accepted);
        assert!(SyncResponse::merged(Vec::new()).is_none());
    }
}
