//! Open connections per client address: each address may hold at most a set number of TCP
//! connections at once; one more is closed as soon as it is accepted, before its TLS handshake.
//! Request slots ([`crate::http::address_slots`]) bound what one address asks at once; this
//! bounds what it merely holds open (idle keep-alive connections, handshakes never finished),
//! so that one client cannot use up the server's sockets and file descriptors while the
//! phones and the case managers elsewhere wait to connect.

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use axum_server::accept::Accept;
use futures_util::future::BoxFuture;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// How many connections each address holds open now.
#[derive(Debug)]
pub(crate) struct ConnectionCounts {
    per_address: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One open connection's place in its address's count, given back when the connection closes.
#[derive(Debug)]
pub(crate) struct ConnectionPlace {
    counts: Arc<ConnectionCounts>,
    address: IpAddr,
}

impl ConnectionCounts {
    /// At most `per_address` open connections from one address.
    pub(crate) fn new(per_address: usize) -> Arc<ConnectionCounts> {
        Arc::new(ConnectionCounts {
            per_address: per_address.max(1),
            open: Mutex::new(HashMap::new()),
        })
    }

    /// A place for one more connection from `address`, or `None` when it holds its share.
    pub(crate) fn enter(self: &Arc<Self>, address: IpAddr) -> Option<ConnectionPlace> {
        let mut open = self.open.lock().ok()?;
        let count = open.entry(address).or_insert(0);
        if *count >= self.per_address {
            return None;
        }
        *count += 1;
        Some(ConnectionPlace {
            counts: self.clone(),
            address,
        })
    }

    /// Connections open now from `address`.
    #[cfg(test)]
    fn open_from(&self, address: IpAddr) -> usize {
        self.open
            .lock()
            .map(|o| o.get(&address).copied().unwrap_or(0))
            .unwrap_or(0)
    }
}

impl Drop for ConnectionPlace {
    fn drop(&mut self) {
        if let Ok(mut open) = self.counts.open.lock()
            && let Some(count) = open.get_mut(&self.address)
        {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.address);
            }
        }
    }
}

/// An acceptor that runs `inner` on connections whose address holds less than its share, and
/// closes the others at once.
#[derive(Debug, Clone)]
pub(crate) struct ConnectionCap<A> {
    inner: A,
    counts: Arc<ConnectionCounts>,
}

impl<A> ConnectionCap<A> {
    /// Caps connections by `counts` in front of `inner`.
    pub(crate) fn new(inner: A, counts: Arc<ConnectionCounts>) -> Self {
        ConnectionCap { inner, counts }
    }
}

impl<A, S> Accept<TcpStream, S> for ConnectionCap<A>
where
    A: Accept<TcpStream, S, Stream = TcpStream> + Clone + Send + Sync + 'static,
    A::Future: Send,
    A::Service: Send,
    S: Send + 'static,
{
    type Stream = Capped<TcpStream>;
    type Service = A::Service;
    type Future = BoxFuture<'static, io::Result<(Self::Stream, Self::Service)>>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        let place = stream
            .peer_addr()
            .ok()
            .and_then(|peer| self.counts.enter(peer.ip()));
        let inner = self.inner.clone();
        Box::pin(async move {
            // Dropping the stream closes the connection.
            let place = place.ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::ConnectionRefused,
                    "too many open connections from one address",
                )
            })?;
            let (stream, service) = inner.accept(stream, service).await?;
            Ok((
                Capped {
                    stream,
                    _place: place,
                },
                service,
            ))
        })
    }
}

/// A connection holding its place in its address's count until it is dropped.
#[derive(Debug)]
pub(crate) struct Capped<T> {
    stream: T,
    _place: ConnectionPlace,
}

impl<T: AsyncRead + Unpin> AsyncRead for Capped<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Capped<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn an_address_holds_its_share_and_gets_places_back_as_connections_close() {
        let counts = ConnectionCounts::new(2);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let first = counts.enter(a).unwrap();
        let _second = counts.enter(a).unwrap();
        assert!(counts.enter(a).is_none(), "a third from the same address");
        assert!(counts.enter(b).is_some(), "another address is not affected");
        drop(first);
        assert!(counts.enter(a).is_some());
        assert_eq!(counts.open_from(a), 1);
    }
}
