//! Slow clients against the real server over TLS: requests from one address wait behind each
//! other, not in front of everyone else's, and a body that trickles ends the request long
//! before the request timeout.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::IpAddr;
use std::time::Duration;

use fieldcase_tests::TestServer;
use fieldcase_tests::rawhttp::{RawAnswer, RawConnection, request};

#[test]
fn slow_clients_at_one_address_hold_neither_the_office_nor_their_slots_for_long() {
    // Few slots, a long request timeout: only the limits under test can free them.
    let server = TestServer::start_with_limits(fieldcase_server::ManualClock::new(), |l| {
        l.max_concurrent_requests = 16;
        l.max_requests_per_address = 8;
        l.request_timeout = Duration::from_secs(600);
        l.body_grace = Duration::from_secs(2);
    });
    let (addr, pin) = (server.addr(), server.fingerprint());
    // Twenty clients at 127.0.0.1 send a login form's headers, then its body a byte a second.
    let head = request(
        "POST",
        "/login",
        &[
            (
                "content-type",
                b"application/x-www-form-urlencoded".to_vec(),
            ),
            ("content-length", b"1000".to_vec()),
        ],
        b"",
    );
    let slow: Vec<_> = (0..20)
        .map(|_| {
            let mut c = RawConnection::connect(addr, pin);
            c.write(&head).unwrap();
            std::thread::spawn(move || {
                let (sent, _) = c.trickle(
                    &[b'x'; 1000],
                    Duration::from_secs(1),
                    Duration::from_secs(60),
                );
                (c, sent)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));

    // Another address is answered while they trickle: one address holds at most its share.
    let other: IpAddr = "127.0.0.2".parse().unwrap();
    let mut good = RawConnection::connect_from(other, addr, pin);
    good.write(&request("GET", "/healthz", &[], b"")).unwrap();
    match good.read_answer(Duration::from_secs(20)) {
        RawAnswer::Response { status, body } => {
            assert_eq!(status, 200);
            assert_eq!(body, b"ok");
        }
        RawAnswer::Closed => panic!("a client at another address was not answered"),
    }

    // The trickling bodies are cut off by the floor rate, well before the request timeout and
    // before they could send their thousand bytes.
    for t in slow {
        let (mut c, sent) = t.join().unwrap();
        assert!(
            sent < 100,
            "a body trickled {sent} bytes before it was cut off"
        );
        match c.read_answer(Duration::from_secs(5)) {
            RawAnswer::Response { status, .. } => {
                assert!((400..500).contains(&status), "{status}")
            }
            RawAnswer::Closed => {}
        }
    }
}

/// A bare TCP connection from `source`, holding its socket and nothing else.
fn idle_from(source: IpAddr, addr: std::net::SocketAddr) -> std::net::TcpStream {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )
    .unwrap();
    socket
        .bind(&std::net::SocketAddr::new(source, 0).into())
        .unwrap();
    socket.connect(&addr.into()).unwrap();
    socket.into()
}

#[test]
fn one_address_holds_at_most_its_share_of_open_connections_and_others_still_connect() {
    use std::io::Read;
    let server = TestServer::start_with_limits(fieldcase_server::ManualClock::new(), |l| {
        l.max_connections_per_address = 8;
    });
    let (addr, pin) = (server.addr(), server.fingerprint());
    let hostile: IpAddr = "127.0.0.2".parse().unwrap();
    let held: Vec<_> = (0..8).map(|_| idle_from(hostile, addr)).collect();
    std::thread::sleep(Duration::from_millis(300));
    // One more from the same address is closed at once, before any handshake.
    let mut extra = idle_from(hostile, addr);
    extra
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut buf = [0u8; 16];
    match extra.read(&mut buf) {
        Ok(0) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        other => panic!("the ninth connection from one address was kept: {other:?}"),
    }
    // Everyone else connects and is answered.
    let mut good = RawConnection::connect(addr, pin);
    good.write(&request("GET", "/healthz", &[], b"")).unwrap();
    match good.read_answer(Duration::from_secs(20)) {
        RawAnswer::Response { status, .. } => assert_eq!(status, 200),
        RawAnswer::Closed => panic!("a client at another address was refused"),
    }
    // Once one of its connections closes, the address connects again.
    drop(held);
    std::thread::sleep(Duration::from_millis(300));
    let mut again = RawConnection::connect_from(hostile, addr, pin);
    again.write(&request("GET", "/healthz", &[], b"")).unwrap();
    match again.read_answer(Duration::from_secs(20)) {
        RawAnswer::Response { status, .. } => assert_eq!(status, 200),
        RawAnswer::Closed => panic!("the address stayed shut out after its connections closed"),
    }
}
