//! Limits of the core transport against real sockets: timeouts, response cap, https only.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use common::TestServer;
use fieldcase_core::protocol::Fingerprint;
use fieldcase_core::transport::{Client, TransportError, TransportOptions};

#[test]
fn a_silent_server_times_out() {
    // Accepts TCP connections and never says anything.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let _keep = std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming().take(4) {
            held.push(s);
        }
        std::thread::sleep(Duration::from_secs(10));
    });
    let options = TransportOptions {
        timeout: Duration::from_secs(1),
        ..TransportOptions::default()
    };
    let client =
        Client::with_options(&format!("https://{addr}"), Fingerprint([0; 32]), options).unwrap();
    let started = Instant::now();
    let err = client.healthz().unwrap_err();
    assert!(matches!(err, TransportError::Timeout), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn responses_are_capped() {
    let t = TestServer::start();
    let options = TransportOptions {
        max_response_bytes: 1,
        ..TransportOptions::default()
    };
    let client = Client::with_options(&t.server.url(), t.server.fingerprint, options).unwrap();
    let err = client.healthz().unwrap_err();
    assert!(
        matches!(err, TransportError::TooLarge { limit: 1 }),
        "{err:?}"
    );
}

#[test]
fn only_https_urls_are_accepted() {
    for bad in [
        "http://127.0.0.1:8443",
        "127.0.0.1:8443",
        "https://",
        "https://host/path",
        "https://user@host",
    ] {
        assert!(
            matches!(
                Client::new(bad, Fingerprint([0; 32])),
                Err(TransportError::InvalidUrl(_))
            ),
            "{bad}"
        );
    }
    Client::new("https://[::1]:8443/", Fingerprint([0; 32])).unwrap();
}

#[test]
fn nothing_listening_is_a_connect_error() {
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let err = Client::new(&format!("https://{addr}"), Fingerprint([0; 32]))
        .unwrap()
        .healthz()
        .unwrap_err();
    assert!(
        matches!(err, TransportError::Connect(_) | TransportError::Io(_)),
        "{err:?}"
    );
}
