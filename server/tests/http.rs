//! The real server in-process on 127.0.0.1:0 over real TLS, with real SQLite files, driven by the
//! core transport.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::Duration;

use axum::routing::post;
use common::TestServer;
use ed25519_dalek::SigningKey;
use fieldcase_core::protocol::{self, Fingerprint, Role, error_code};
use fieldcase_core::transport::{
    Client, DeviceClient, DeviceCredential, RawRequest, TransportError,
};
use fieldcase_server::http::device_auth::Authenticated;
use fieldcase_server::{Limits, ManualClock, sql_params};
use rand::rngs::OsRng;

fn http_error(e: TransportError) -> (u16, String, String) {
    match e {
        TransportError::Http {
            status,
            code,
            reason,
            ..
        } => (status, code, reason),
        other => panic!("expected an HTTP error, got {other:?}"),
    }
}

fn expect_refusal(t: &TestServer, client: &Client, req: &RawRequest, status: u16, code: &str) {
    let before = t.snapshot();
    let resp = client.send(req).unwrap();
    assert_eq!(
        resp.status,
        status,
        "body: {}",
        String::from_utf8_lossy(&resp.body)
    );
    let body = resp.error_body().expect("typed JSON error");
    assert_eq!(body.error, code);
    assert!(!body.reason.is_empty());
    assert_eq!(
        t.snapshot(),
        before,
        "a refused request changed the database"
    );
}

#[test]
fn healthz_answers_ok() {
    let t = TestServer::start();
    let body = t.client().get_unsigned("/healthz").unwrap();
    assert_eq!(body, b"ok");
    t.client().healthz().unwrap();
}

#[test]
fn unknown_paths_and_versions_get_typed_errors() {
    let t = TestServer::start();
    let (status, code, _) = http_error(t.client().get_unsigned("/v2/whoami").unwrap_err());
    assert_eq!(
        (status, code.as_str()),
        (400, error_code::UNSUPPORTED_PROTOCOL_VERSION)
    );
    let (status, code, _) = http_error(t.client().get_unsigned("/nope").unwrap_err());
    assert_eq!((status, code.as_str()), (404, error_code::NOT_FOUND));
    let (status, code, _) = http_error(t.client().get_unsigned("/v1/enroll").unwrap_err());
    assert_eq!(
        (status, code.as_str()),
        (405, error_code::METHOD_NOT_ALLOWED)
    );
}

#[test]
fn enroll_then_whoami_and_code_is_single_use() {
    let t = TestServer::start();
    let user_id = t.add_user("Field Worker One", Role::FieldWorker);
    let code = t.issue_code("Field Worker One", 900);
    let key = SigningKey::generate(&mut OsRng);

    let answer = fieldcase_core::transport::enroll(
        &t.server.url(),
        t.server.fingerprint,
        &code.to_lowercase(),
        &key,
    )
    .unwrap();
    assert_eq!(answer.user_id, user_id);
    assert_eq!(answer.role, Role::FieldWorker);
    assert_eq!(
        answer.server_public_key,
        hex::encode(t.server.state.keys().verifying_key().as_bytes())
    );
    // Only the public key is stored.
    let stored: Vec<u8> = t
        .server
        .state
        .db()
        .read(|c| {
            c.query_row(
                "SELECT public_key FROM devices WHERE id = ?1",
                sql_params![&answer.device_id.to_string()],
            )?
            .get(0)
        })
        .unwrap();
    assert_eq!(stored, key.verifying_key().to_bytes());
    // The code is stored only as a hash.
    let normalized = protocol::normalize_enrollment_code(&code).unwrap();
    let hash = protocol::enrollment_code_hash(&normalized);
    let stored_codes: i64 = t
        .server
        .state
        .db()
        .read(|c| {
            c.query_row(
                "SELECT count(*) FROM enrollment_codes WHERE code_hash = ?1",
                sql_params![hash.as_slice()],
            )?
            .get(0)
        })
        .unwrap();
    assert_eq!(stored_codes, 1);

    let device = DeviceClient::new(t.client(), DeviceCredential::new(answer.device_id, key));
    let who = device.whoami().unwrap();
    assert_eq!(who.device_id, answer.device_id);
    assert_eq!(who.user_id, user_id);
    assert_eq!(who.role, Role::FieldWorker);
    // Each request gets a fresh nonce, so repeated calls work.
    device.whoami().unwrap();

    // Reusing the code with another key is refused.
    let before = t.snapshot();
    let other = SigningKey::generate(&mut OsRng);
    let (status, code_err, reason) = http_error(t.client().enroll(&code, &other).unwrap_err());
    assert_eq!(
        (status, code_err.as_str()),
        (409, error_code::ENROLLMENT_CODE_USED)
    );
    assert!(reason.contains("already used"));
    assert_eq!(t.snapshot(), before);
}

#[test]
fn expired_and_unknown_codes_are_refused() {
    let clock = ManualClock::new();
    let c2 = clock.clone();
    let t = TestServer::start_with(|o| o.clock = Arc::new(c2));
    t.add_user("Case Manager", Role::CaseManager);
    let code = t.issue_code("Case Manager", 60);
    clock.advance(61);
    let key = SigningKey::generate(&mut OsRng);
    let before = t.snapshot();
    let (status, code_err, _) = http_error(t.client().enroll(&code, &key).unwrap_err());
    assert_eq!(
        (status, code_err.as_str()),
        (410, error_code::ENROLLMENT_CODE_EXPIRED)
    );
    let (status, code_err, _) =
        http_error(t.client().enroll("0000-0000-0000-0000", &key).unwrap_err());
    assert_eq!(
        (status, code_err.as_str()),
        (401, error_code::ENROLLMENT_CODE_UNKNOWN)
    );
    assert_eq!(t.snapshot(), before);
    // A malformed code never reaches the server.
    assert!(matches!(
        t.client().enroll("short", &key),
        Err(TransportError::BadInput(_))
    ));
}

#[test]
fn enroll_rejects_bad_proof_and_oversize_body() {
    let t = TestServer::start();
    t.add_user("u", Role::FieldWorker);
    let code = t.issue_code("u", 900);
    let key = SigningKey::generate(&mut OsRng);
    let mut req = protocol::enroll_request(&code, &key).unwrap();
    // Claim another key than the one that signed the proof.
    req.device_public_key =
        hex::encode(SigningKey::generate(&mut OsRng).verifying_key().as_bytes());
    let raw = RawRequest {
        method: "POST".into(),
        path: "/v1/enroll".into(),
        headers: vec![("content-type".into(), "application/json".into())],
        body: serde_json::to_vec(&req).unwrap(),
    };
    expect_refusal(&t, &t.client(), &raw, 400, error_code::BAD_DEVICE_KEY);

    let big = RawRequest {
        body: vec![b' '; protocol::MAX_ENROLL_BODY + 1],
        ..raw.clone()
    };
    expect_refusal(&t, &t.client(), &big, 413, error_code::BODY_TOO_LARGE);

    let junk = RawRequest {
        body: b"{not json".to_vec(),
        ..raw
    };
    expect_refusal(&t, &t.client(), &junk, 400, error_code::MALFORMED_REQUEST);

    // The code is still good after all that.
    t.client().enroll(&code, &key).unwrap();
}

#[test]
fn wrong_pin_is_refused_before_sending_anything() {
    let t = TestServer::start();
    t.add_user("u", Role::Admin);
    let code = t.issue_code("u", 900);
    let key = SigningKey::generate(&mut OsRng);
    let mut wrong = t.server.fingerprint;
    wrong.0[0] ^= 1;
    let before = t.snapshot();
    let err = fieldcase_core::transport::enroll(&t.server.url(), wrong, &code, &key).unwrap_err();
    match err {
        TransportError::PinMismatch { actual } => assert_eq!(actual, t.server.fingerprint),
        other => panic!("expected PinMismatch, got {other:?}"),
    }
    let err = Client::new(&t.server.url(), Fingerprint([0; 32]))
        .unwrap()
        .healthz()
        .unwrap_err();
    assert!(matches!(err, TransportError::PinMismatch { .. }));
    // Nothing reached the server: the code was not consumed.
    assert_eq!(t.snapshot(), before);
    t.client().enroll(&code, &key).unwrap();
}

#[test]
fn failed_enrollments_are_rate_limited() {
    let t = TestServer::start_with(|o| {
        o.limits = Limits {
            enroll_failures_per_window: 3,
            ..Limits::default()
        }
    });
    t.add_user("u", Role::FieldWorker);
    let code = t.issue_code("u", 900);
    let key = SigningKey::generate(&mut OsRng);
    for _ in 0..3 {
        let (status, _, _) =
            http_error(t.client().enroll("ZZZZ-ZZZZ-ZZZZ-ZZZZ", &key).unwrap_err());
        assert_eq!(status, 401);
    }
    // Even the right code waits now.
    let (status, code_err, _) = http_error(t.client().enroll(&code, &key).unwrap_err());
    assert_eq!(
        (status, code_err.as_str()),
        (429, error_code::TOO_MANY_ATTEMPTS)
    );
    assert_eq!(t.count("SELECT count(*) FROM devices"), 0);
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[test]
fn signed_requests_are_checked() {
    let t = TestServer::start_with(|o| {
        o.extra_routes = Some(axum::Router::new().route(
            "/v1/test/echo",
            post(|auth: Authenticated| async move { auth.body }),
        ));
    });
    let device = t.enrolled_device("worker", Role::FieldWorker);
    let client = t.client();

    // A signed POST with a body works and the body arrives intact.
    let echoed = device.post("/v1/test/echo", b"hello").unwrap();
    assert_eq!(echoed, b"hello");

    // Unsigned.
    let unsigned = RawRequest {
        method: "GET".into(),
        path: "/v1/whoami".into(),
        headers: vec![],
        body: vec![],
    };
    expect_refusal(&t, &client, &unsigned, 401, error_code::MISSING_AUTH);

    // Malformed header.
    let mut malformed = device.signed_request_now("GET", "/v1/whoami", b"");
    malformed.headers[2].1 = "zz".into();
    expect_refusal(&t, &client, &malformed, 401, error_code::BAD_AUTH_HEADER);

    // Bad signature: flip a bit of the signature.
    let mut bad = device.signed_request_now("GET", "/v1/whoami", b"");
    let sig = &mut bad.headers[3].1;
    let flipped = if sig.starts_with('0') { "1" } else { "0" };
    sig.replace_range(0..1, flipped);
    expect_refusal(&t, &client, &bad, 401, error_code::BAD_SIGNATURE);

    // Signature made for another path or body.
    let mut moved = device.signed_request_now("POST", "/v1/test/echo", b"a");
    moved.body = b"b".to_vec();
    expect_refusal(&t, &client, &moved, 401, error_code::BAD_SIGNATURE);

    // Unknown device: a key the server never saw.
    let stranger = DeviceClient::new(
        t.client(),
        DeviceCredential::new(uuid::Uuid::now_v7(), SigningKey::generate(&mut OsRng)),
    );
    let req = stranger.signed_request_now("GET", "/v1/whoami", b"");
    expect_refusal(&t, &client, &req, 401, error_code::UNKNOWN_DEVICE);

    // Stale and future timestamps.
    let stale = device.signed_request("GET", "/v1/whoami", b"", now() - 600, &[1; 16]);
    expect_refusal(&t, &client, &stale, 401, error_code::STALE_TIMESTAMP);
    let future = device.signed_request("GET", "/v1/whoami", b"", now() + 600, &[2; 16]);
    expect_refusal(&t, &client, &future, 401, error_code::STALE_TIMESTAMP);

    // Replay: the first copy is accepted, the second refused.
    let once = device.signed_request_now("GET", "/v1/whoami", b"");
    assert_eq!(client.send(&once).unwrap().status, 200);
    expect_refusal(&t, &client, &once, 401, error_code::REPLAYED_REQUEST);

    // Oversize body on a signed endpoint.
    let big = device.signed_request_now(
        "POST",
        "/v1/test/echo",
        &vec![7u8; protocol::MAX_SIGNED_BODY + 1],
    );
    expect_refusal(&t, &client, &big, 413, error_code::BODY_TOO_LARGE);

    // Unknown protocol version, even correctly signed.
    let v2 = device.signed_request_now("GET", "/v2/whoami", b"");
    expect_refusal(
        &t,
        &client,
        &v2,
        400,
        error_code::UNSUPPORTED_PROTOCOL_VERSION,
    );

    // Still works after all of that.
    device.whoami().unwrap();
}

#[test]
fn revoked_device_and_inactive_user_are_refused_on_the_next_request() {
    let t = TestServer::start();
    let device = t.enrolled_device("worker", Role::FieldWorker);
    device.whoami().unwrap();
    let id = device.credential().device_id.to_string();
    t.server
        .state
        .db()
        .write(|c| {
            c.execute(
                "UPDATE devices SET status = 'revoked' WHERE id = ?1",
                sql_params![&id],
            )
        })
        .unwrap();
    let (status, code, _) = http_error(device.whoami().unwrap_err());
    assert_eq!((status, code.as_str()), (403, error_code::DEVICE_REVOKED));

    let other = t.enrolled_device("worker2", Role::CaseManager);
    other.whoami().unwrap();
    t.server
        .state
        .db()
        .write(|c| c.execute("UPDATE users SET active = 0 WHERE name = 'worker2'", &[]))
        .unwrap();
    let (status, code, _) = http_error(other.whoami().unwrap_err());
    assert_eq!((status, code.as_str()), (403, error_code::USER_INACTIVE));
}

#[test]
fn plaintext_http_gets_no_http_answer() {
    let t = TestServer::start();
    let mut s = std::net::TcpStream::connect(t.server.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    assert!(!buf.starts_with(b"HTTP/"), "plaintext HTTP was answered");
}

#[test]
fn data_folder_is_reused_and_secret_files_are_private() {
    let dir = tempfile::tempdir().unwrap();
    let first =
        fieldcase_server::Server::start(dir.path(), "127.0.0.1:0".parse().unwrap()).unwrap();
    let fp = first.fingerprint;
    let pk = first.state.keys().verifying_key();
    first.shutdown().unwrap();
    let second =
        fieldcase_server::Server::start(dir.path(), "127.0.0.1:0".parse().unwrap()).unwrap();
    assert_eq!(second.fingerprint, fp);
    assert_eq!(second.state.keys().verifying_key(), pk);
    let version: i64 = second
        .state
        .db()
        .read(|c| c.query_row("PRAGMA user_version", &[])?.get(0))
        .unwrap();
    assert_eq!(version, fieldcase_server::storage::sql::schema_version());
    let mode: String = second
        .state
        .db()
        .read(|c| c.query_row("PRAGMA journal_mode", &[])?.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for f in ["server.key", "tls-key.pem", "server.db", "server.db-wal"] {
            let m = std::fs::metadata(dir.path().join(f))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(m & 0o777, 0o600, "{f}");
        }
    }
    second.shutdown().unwrap();
}

#[test]
fn audit_log_is_append_only() {
    let t = TestServer::start();
    t.add_user("u", Role::Admin);
    let n = t.count("SELECT count(*) FROM audit_log");
    assert!(n >= 1);
    let res = t
        .server
        .state
        .db()
        .write(|c| c.execute("DELETE FROM audit_log", &[]));
    assert!(res.is_err());
    assert_eq!(t.count("SELECT count(*) FROM audit_log"), n);
}

fn handshake(
    addr: std::net::SocketAddr,
    version: &'static rustls::SupportedProtocolVersion,
) -> rustls::Error {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[version])
        .unwrap()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let mut sock = std::net::TcpStream::connect(addr).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let err = conn.complete_io(&mut sock).unwrap_err();
    err.into_inner()
        .and_then(|e| e.downcast::<rustls::Error>().ok())
        .map(|e| *e)
        .expect("a rustls error")
}

#[test]
fn only_tls_1_3_is_offered() {
    let t = TestServer::start();
    // TLS 1.3 gets as far as the certificate (which an empty trust store rejects) ...
    let e13 = handshake(t.server.addr, &rustls::version::TLS13);
    assert!(
        matches!(e13, rustls::Error::InvalidCertificate(_)),
        "{e13:?}"
    );
    // ... TLS 1.2 is refused at version negotiation.
    let e12 = handshake(t.server.addr, &rustls::version::TLS12);
    assert!(
        !matches!(e12, rustls::Error::InvalidCertificate(_)),
        "{e12:?}"
    );
}

/// A pinned TLS 1.3 connection to the test server offering `alpn` (nothing: no ALPN at all).
fn pinned_tls(
    t: &TestServer,
    alpn: &[&[u8]],
) -> Result<rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream>, std::io::Error> {
    let mut config =
        (*fieldcase_core::transport::client_config(t.server.fingerprint).unwrap()).clone();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let mut sock = std::net::TcpStream::connect(t.server.addr).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    conn.complete_io(&mut sock)?;
    Ok(rustls::StreamOwned::new(conn, sock))
}

#[test]
fn only_http_1_1_is_spoken_so_every_connection_has_its_idle_timeout() {
    // HTTP/2 connections were never closed when idle, and one could hold every request slot
    // with its streams: the server speaks HTTP/1.1 only.
    let t = TestServer::start();
    let both = pinned_tls(&t, &[b"h2", b"http/1.1"]).unwrap();
    assert_eq!(both.conn.alpn_protocol(), Some(&b"http/1.1"[..]));
    assert!(
        pinned_tls(&t, &[b"h2"]).is_err(),
        "a client offering only h2 got a connection"
    );
    // The HTTP/2 preface sent without asking through ALPN is not answered in HTTP/2.
    let mut raw = pinned_tls(&t, &[]).unwrap();
    raw.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .unwrap();
    let mut answer = Vec::new();
    let _ = raw.read_to_end(&mut answer);
    assert!(
        answer.is_empty() || answer.starts_with(b"HTTP/1.1 "),
        "{:?}",
        String::from_utf8_lossy(&answer)
    );
}
