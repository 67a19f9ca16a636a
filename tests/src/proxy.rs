//! A fault-injecting TCP proxy on 127.0.0.1 for tests and benchmarks: forwards to an upstream that
//! can change (a restarted server), shapes the link (a delay each way, a bandwidth limit, like a
//! phone on 3G; the kernel here has no netem), cuts the next connection after a number of bytes
//! either way, and counts the bytes it carried each way.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The shape of the link the proxy imitates. The default is loopback as it is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Link {
    /// Added to every byte's trip, each way (a round trip gains twice this).
    pub delay_each_way: Duration,
    /// Bytes per second each way; `None` for no limit.
    pub bytes_per_second: Option<u64>,
}

impl Link {
    /// A slow mobile link: `mbit_per_second` each way and `round_trip` of added latency.
    pub fn mobile(mbit_per_second: f64, round_trip: Duration) -> Self {
        Self {
            delay_each_way: round_trip / 2,
            bytes_per_second: Some((mbit_per_second * 1_000_000.0 / 8.0).max(1.0) as u64),
        }
    }

    /// 3G as a field worker has it in town: 1 Mbit/s each way, 300 ms of added round trip.
    pub fn three_g() -> Self {
        Self::mobile(1.0, Duration::from_millis(300))
    }

    /// EDGE, what a phone falls back to outside towns: 256 kbit/s each way, 600 ms of added
    /// round trip.
    pub fn edge() -> Self {
        Self::mobile(0.256, Duration::from_millis(600))
    }
}

#[derive(Default)]
struct Faults {
    cut_next_response_after: Option<usize>,
    cut_next_request_after: Option<usize>,
    link: Link,
}

/// Bytes carried each way over every connection so far, and when each way of the link is free
/// again: the bandwidth is the link's, shared by every connection over it, as a phone's is.
#[derive(Default)]
struct Counters {
    to_server: AtomicU64,
    to_client: AtomicU64,
    up_free: Mutex<Option<Instant>>,
    down_free: Mutex<Option<Instant>>,
}

/// A TCP proxy between a device and the server. Stops when dropped.
pub struct FaultProxy {
    /// Where devices connect.
    pub addr: SocketAddr,
    upstream: Arc<Mutex<SocketAddr>>,
    faults: Arc<Mutex<Faults>>,
    counters: Arc<Counters>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FaultProxy {
    /// Starts a proxy to `upstream` over an unshaped link.
    pub fn start(upstream: SocketAddr) -> Self {
        Self::start_with(upstream, Link::default())
    }

    /// Starts a proxy to `upstream` that imitates `link`.
    pub fn start_with(upstream: SocketAddr, link: Link) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let upstream = Arc::new(Mutex::new(upstream));
        let faults = Arc::new(Mutex::new(Faults {
            link,
            ..Faults::default()
        }));
        let counters = Arc::new(Counters::default());
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (upstream, faults, counters, stop) = (
                upstream.clone(),
                faults.clone(),
                counters.clone(),
                stop.clone(),
            );
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((client, _)) => {
                            let target = *upstream.lock().unwrap();
                            let plan = {
                                let mut f = faults.lock().unwrap();
                                Plan {
                                    link: f.link,
                                    cut_response: f.cut_next_response_after.take(),
                                    cut_request: f.cut_next_request_after.take(),
                                }
                            };
                            let counters = counters.clone();
                            std::thread::spawn(move || relay(client, target, plan, &counters));
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                            std::thread::sleep(Duration::from_millis(2));
                        }
                        Err(_) => break,
                    }
                }
            })
        };
        Self {
            addr,
            upstream,
            faults,
            counters,
            stop,
            thread: Some(thread),
        }
    }

    /// `https://` URL of the proxy.
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// Points the proxy at another upstream (a restarted server).
    pub fn set_upstream(&self, upstream: SocketAddr) {
        *self.upstream.lock().unwrap() = upstream;
    }

    /// Shapes new connections like `link` (connections already open keep their shape).
    pub fn set_link(&self, link: Link) {
        self.faults.lock().unwrap().link = link;
    }

    /// Cuts the next connection once `bytes` have come back from the server.
    pub fn cut_next_response_after(&self, bytes: usize) {
        self.faults.lock().unwrap().cut_next_response_after = Some(bytes);
    }

    /// Cuts the next connection once `bytes` have gone to the server.
    pub fn cut_next_request_after(&self, bytes: usize) {
        self.faults.lock().unwrap().cut_next_request_after = Some(bytes);
    }

    /// Bytes carried to the server so far, over every connection (TLS included).
    pub fn bytes_to_server(&self) -> u64 {
        self.counters.to_server.load(Ordering::Relaxed)
    }

    /// Bytes carried back to devices so far, over every connection (TLS included).
    pub fn bytes_to_client(&self) -> u64 {
        self.counters.to_client.load(Ordering::Relaxed)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// What happens to one connection.
#[derive(Clone, Copy)]
struct Plan {
    link: Link,
    cut_response: Option<usize>,
    cut_request: Option<usize>,
}

fn relay(client: TcpStream, target: SocketAddr, plan: Plan, counters: &Arc<Counters>) {
    let Ok(server) = TcpStream::connect_timeout(&target, Duration::from_secs(5)) else {
        let _ = client.shutdown(Shutdown::Both);
        return;
    };
    let _ = client.set_nonblocking(false);
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let both = [client.try_clone().unwrap(), server.try_clone().unwrap()];
    let up = {
        let (from, to) = (client.try_clone().unwrap(), server.try_clone().unwrap());
        let both = [both[0].try_clone().unwrap(), both[1].try_clone().unwrap()];
        let counters = counters.clone();
        std::thread::spawn(move || {
            pipe(
                from,
                to,
                (plan.link, &counters.up_free),
                plan.cut_request,
                &both,
                &|n| {
                    counters.to_server.fetch_add(n, Ordering::Relaxed);
                },
            )
        })
    };
    pipe(
        server,
        client,
        (plan.link, &counters.down_free),
        plan.cut_response,
        &both,
        &|n| {
            counters.to_client.fetch_add(n, Ordering::Relaxed);
        },
    );
    let _ = up.join();
    for s in &both {
        let _ = s.shutdown(Shutdown::Both);
    }
}

/// Largest piece written at once on a rate-limited link (about one packet), so pacing is smooth.
const PACE_CHUNK: usize = 1460;

/// Moves bytes `from` → `to` one way: each read is held back by the link's delay and paced to its
/// bandwidth, which every connection's same way shares (`free`: when the link is free again).
/// Cutting shuts both sockets of the connection, as a dropped link would.
fn pipe(
    mut from: TcpStream,
    mut to: TcpStream,
    (link, free): (Link, &Mutex<Option<Instant>>),
    cut_after: Option<usize>,
    both: &[TcpStream; 2],
    count: &dyn Fn(u64),
) {
    let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>)>();
    let reader = std::thread::spawn(move || {
        let mut buf = vec![0u8; 16 * 1024];
        while let Ok(n) = from.read(&mut buf) {
            if n == 0 || tx.send((Instant::now(), buf[..n].to_vec())).is_err() {
                break;
            }
        }
    });
    let mut written = 0usize;
    'chunks: while let Ok((arrived, data)) = rx.recv() {
        let due = arrived + link.delay_each_way;
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        let piece = if link.bytes_per_second.is_some() {
            PACE_CHUNK
        } else {
            data.len()
        };
        for part in data.chunks(piece) {
            let part = match cut_after {
                Some(limit) if written + part.len() >= limit => {
                    let last = &part[..limit.saturating_sub(written)];
                    let _ = to.write_all(last);
                    count(last.len() as u64);
                    // The connection dies mid-message.
                    for s in both {
                        let _ = s.shutdown(Shutdown::Both);
                    }
                    break 'chunks;
                }
                _ => part,
            };
            if let Some(rate) = link.bytes_per_second {
                // Reserve this piece's time on the shared link, then wait for it.
                let start = {
                    let mut next_free = free.lock().unwrap();
                    let start = next_free.map_or(Instant::now(), |f| f.max(Instant::now()));
                    *next_free = Some(
                        start + Duration::from_secs_f64(part.len() as f64 / rate.max(1) as f64),
                    );
                    start
                };
                let now = Instant::now();
                if start > now {
                    std::thread::sleep(start - now);
                }
            }
            if to.write_all(part).is_err() {
                for s in both {
                    let _ = s.shutdown(Shutdown::Both);
                }
                break 'chunks;
            }
            written += part.len();
            count(part.len() as u64);
        }
    }
    let _ = to.shutdown(Shutdown::Write);
    drop(rx);
    let _ = reader.join();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mobile_profiles_are_the_links_they_are_named_after() {
        let edge = Link::edge();
        assert_eq!(edge.delay_each_way, Duration::from_millis(300));
        assert_eq!(edge.bytes_per_second, Some(32_000));
        let three_g = Link::three_g();
        assert_eq!(three_g.delay_each_way, Duration::from_millis(150));
        assert_eq!(three_g.bytes_per_second, Some(125_000));
    }
}
