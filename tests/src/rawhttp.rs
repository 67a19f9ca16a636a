//! A raw HTTP/1.1 client over real TLS (pinned certificate), for tests that must send what no
//! well-behaved client sends: bytes that are not UTF-8 in a header, a body that lies about its
//! length, a request trickled one byte at a time.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use fieldcase_core::protocol::Fingerprint;
use rustls::pki_types::ServerName;
use rustls::{ClientConnection, StreamOwned};

/// A TLS 1.3 connection to the test server, speaking HTTP/1.1 by hand.
pub struct RawConnection {
    stream: StreamOwned<ClientConnection, TcpStream>,
    /// Plaintext already received while trickling.
    pending: Vec<u8>,
    /// A final answer received before the body was sent.
    early: Option<RawAnswer>,
}

/// What came back: a status and body, or the server closing the connection without an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawAnswer {
    /// An HTTP response.
    Response {
        /// Status code.
        status: u16,
        /// Body (de-chunked).
        body: Vec<u8>,
    },
    /// The server closed the connection (or reset it) before answering.
    Closed,
}

impl RawConnection {
    /// Connects and completes the TLS handshake, trusting only `pin`.
    pub fn connect(addr: SocketAddr, pin: Fingerprint) -> RawConnection {
        RawConnection::over(TcpStream::connect(addr).unwrap(), pin)
    }

    /// [`RawConnection::connect`] from the local address `source` (another loopback address,
    /// such as 127.0.0.2, is another client address to the server).
    pub fn connect_from(
        source: std::net::IpAddr,
        addr: SocketAddr,
        pin: Fingerprint,
    ) -> RawConnection {
        let socket = socket2::Socket::new(
            socket2::Domain::for_address(addr),
            socket2::Type::STREAM,
            Some(socket2::Protocol::TCP),
        )
        .unwrap();
        socket.bind(&SocketAddr::new(source, 0).into()).unwrap();
        socket.connect(&addr.into()).unwrap();
        RawConnection::over(socket.into(), pin)
    }

    fn over(tcp: TcpStream, pin: Fingerprint) -> RawConnection {
        let config = fieldcase_core::transport::client_config(pin).unwrap();
        let conn =
            ClientConnection::new(config, ServerName::try_from("localhost").unwrap()).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut stream = StreamOwned::new(conn, tcp);
        while stream.conn.is_handshaking() {
            stream.conn.complete_io(&mut stream.sock).unwrap();
        }
        RawConnection {
            stream,
            pending: Vec::new(),
            early: None,
        }
    }

    /// Writes bytes at once. An error means the server closed the connection.
    pub fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes)?;
        self.stream.flush()
    }

    /// Writes `bytes` in chunks, stopping as soon as the server has answered or closed (a server
    /// refusing a large body early closes the connection, and a reset would lose its answer).
    pub fn send(&mut self, bytes: &[u8]) {
        // With `expect: 100-continue` (added by [`request`] to large bodies), the headers go
        // first and the body only once the server asks for it, as a real client does.
        let head_end = bytes
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map_or(bytes.len(), |p| p + 4);
        let head = String::from_utf8_lossy(&bytes[..head_end]).to_ascii_lowercase();
        let mut bytes = bytes;
        if head.contains("\r\nexpect: 100-continue\r\n") {
            if self.write(&bytes[..head_end]).is_err() {
                return;
            }
            match self.read_answer(Duration::from_secs(10)) {
                RawAnswer::Response { status: 100, .. } => bytes = &bytes[head_end..],
                answer => {
                    self.early = Some(answer);
                    return;
                }
            }
        }
        for chunk in bytes.chunks(64 * 1024) {
            if self.write(chunk).is_err() || self.server_closed() {
                return;
            }
        }
    }

    /// Writes `bytes` one at a time, `gap` apart, stopping early when the server has answered
    /// or closed the connection, or when `deadline` has passed; returns how many bytes went out
    /// and how long it took.
    pub fn trickle(
        &mut self,
        bytes: &[u8],
        gap: Duration,
        deadline: Duration,
    ) -> (usize, Duration) {
        let started = Instant::now();
        for (i, b) in bytes.iter().enumerate() {
            if started.elapsed() > deadline {
                return (i, started.elapsed());
            }
            if self.write(std::slice::from_ref(b)).is_err() {
                return (i, started.elapsed());
            }
            std::thread::sleep(gap);
            if self.server_closed() {
                return (i + 1, started.elapsed());
            }
        }
        (bytes.len(), started.elapsed())
    }

    /// Whether the server has answered or closed: reads whatever TLS records have arrived
    /// without blocking, keeping any answer for [`RawConnection::read_answer`].
    fn server_closed(&mut self) -> bool {
        self.stream.sock.set_nonblocking(true).unwrap();
        let mut closed = false;
        loop {
            match self.stream.conn.read_tls(&mut self.stream.sock) {
                Ok(0) => {
                    closed = true;
                    break;
                }
                Ok(_) => {
                    if self.stream.conn.process_new_packets().is_err() {
                        closed = true;
                        break;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(_) => {
                    closed = true;
                    break;
                }
            }
        }
        self.stream.sock.set_nonblocking(false).unwrap();
        let mut chunk = [0u8; 8192];
        loop {
            match self.stream.conn.reader().read(&mut chunk) {
                Ok(0) => {
                    closed = true;
                    break;
                }
                Ok(n) => self.pending.extend_from_slice(&chunk[..n]),
                Err(_) => break,
            }
        }
        closed || !self.pending.is_empty()
    }

    /// Reads one response (or the close), waiting at most `timeout`.
    pub fn read_answer(&mut self, timeout: Duration) -> RawAnswer {
        if let Some(answer) = self.early.take() {
            return answer;
        }
        self.stream.sock.set_read_timeout(Some(timeout)).unwrap();
        let mut buf = std::mem::take(&mut self.pending);
        let mut chunk = [0u8; 8192];
        loop {
            if let Some(answer) = parse(&buf) {
                return answer;
            }
            match self.stream.read(&mut chunk) {
                Ok(0) | Err(_) => return parse(&buf).unwrap_or(RawAnswer::Closed),
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    }
}

fn parse(buf: &[u8]) -> Option<RawAnswer> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
    let status: u16 = head.split(' ').nth(1)?.parse().ok()?;
    let rest = &buf[end + 4..];
    if (100..200).contains(&status) {
        return Some(RawAnswer::Response {
            status,
            body: Vec::new(),
        });
    }
    let header = |name: &str| {
        head.lines()
            .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_owned()))
    };
    if let Some(len) = header("content-length:") {
        let len: usize = len.parse().ok()?;
        return (rest.len() >= len).then(|| RawAnswer::Response {
            status,
            body: rest[..len].to_vec(),
        });
    }
    if header("transfer-encoding:").is_some_and(|v| v.contains("chunked")) {
        let mut body = Vec::new();
        let mut at = 0;
        loop {
            let line_end = rest[at..].windows(2).position(|w| w == b"\r\n")? + at;
            let size =
                usize::from_str_radix(std::str::from_utf8(&rest[at..line_end]).ok()?, 16).ok()?;
            let start = line_end + 2;
            if size == 0 {
                return Some(RawAnswer::Response { status, body });
            }
            if rest.len() < start + size + 2 {
                return None;
            }
            body.extend_from_slice(&rest[start..start + size]);
            at = start + size + 2;
        }
    }
    None
}

/// Builds an HTTP/1.1 request by hand: headers are raw bytes (not necessarily UTF-8), and a
/// `content-length` is added unless one is given.
pub fn request(method: &str, path: &str, headers: &[(&str, Vec<u8>)], body: &[u8]) -> Vec<u8> {
    let mut out = format!("{method} {path} HTTP/1.1\r\nhost: localhost\r\n").into_bytes();
    for (name, value) in headers {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    if body.len() > 64 * 1024 {
        out.extend_from_slice(b"expect: 100-continue\r\n");
    }
    if !headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("content-length"))
    {
        out.extend_from_slice(format!("content-length: {}\r\n", body.len()).as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out
}
