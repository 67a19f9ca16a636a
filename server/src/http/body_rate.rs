//! A minimum rate for request bodies: after a short grace, a body must keep arriving at a
//! floor rate or the request ends. A client that trickles a form or a sync body one byte every
//! few seconds holds its request slot for seconds, not for the whole request timeout. The floor
//! is far below a phone on a slow link (3G moves some 100 KB a second).

use std::time::Duration;

use axum::body::{Body, Bytes};
use futures_util::StreamExt;
use tokio::time::Instant;

/// The state of a body being read: its stream, the bytes so far, and whether it has ended.
struct Reading {
    stream: axum::body::BodyDataStream,
    received: u64,
    done: bool,
}

/// `body`, ended with an error once fewer than `bytes_per_sec` bytes a second (counted from
/// the start, after `grace`) have arrived.
pub(crate) fn at_least(body: Body, bytes_per_sec: u64, grace: Duration) -> Body {
    let start = Instant::now();
    let rate = bytes_per_sec.max(1);
    let reading = Reading {
        stream: body.into_data_stream(),
        received: 0,
        done: false,
    };
    let stream = futures_util::stream::unfold(reading, move |mut r| async move {
        if r.done {
            return None;
        }
        // Time allowed so far: the grace, plus a second for every `rate` bytes received.
        let allowed = grace.saturating_add(Duration::from_millis(
            r.received.saturating_mul(1000) / rate,
        ));
        match tokio::time::timeout_at(start + allowed, r.stream.next()).await {
            Ok(Some(Ok(chunk))) => {
                r.received = r
                    .received
                    .saturating_add(u64::try_from(chunk.len()).unwrap_or(u64::MAX));
                Some((Ok::<Bytes, std::io::Error>(chunk), r))
            }
            Ok(Some(Err(e))) => {
                r.done = true;
                Some((Err(std::io::Error::other(e)), r))
            }
            Ok(None) => None,
            Err(_) => {
                r.done = true;
                let slow = std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "the request body arrives too slowly",
                );
                Some((Err(slow), r))
            }
        }
    });
    Body::from_stream(stream)
}
