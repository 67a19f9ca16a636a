//! Helpers shared by the server's integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ed25519_dalek::SigningKey;
use fieldcase_core::protocol::Role;
use fieldcase_core::transport::{Client, DeviceClient, DeviceCredential};
use fieldcase_server::{RunningServer, Server, ServerOptions, store};
use rand::rngs::OsRng;

/// A running in-process server with its data folder.
pub struct TestServer {
    pub server: RunningServer,
    pub dir: tempfile::TempDir,
}

impl TestServer {
    pub fn start() -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let server = Server::start(dir.path(), "127.0.0.1:0".parse().unwrap()).unwrap();
        TestServer { server, dir }
    }

    pub fn start_with(f: impl FnOnce(&mut ServerOptions)) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let mut options = ServerOptions::new(dir.path(), "127.0.0.1:0".parse().unwrap());
        f(&mut options);
        let server = Server::start_with(options).unwrap();
        TestServer { server, dir }
    }

    pub fn client(&self) -> Client {
        Client::new(&self.server.url(), self.server.fingerprint).unwrap()
    }

    pub fn add_user(&self, name: &str, role: Role) -> uuid::Uuid {
        let now = self.server.state.now();
        self.server
            .state
            .db()
            .write(|sql| store::add_user(sql, name, role, now))
            .unwrap()
    }

    pub fn issue_code(&self, name: &str, ttl: i64) -> String {
        let now = self.server.state.now();
        self.server
            .state
            .db()
            .write(|sql| store::issue_enrollment_code(sql, name, ttl, now))
            .unwrap()
            .code
    }

    /// Adds a user, enrolls a fresh device key for it and returns a signing client.
    pub fn enrolled_device(&self, name: &str, role: Role) -> DeviceClient {
        self.add_user(name, role);
        let code = self.issue_code(name, 900);
        let key = SigningKey::generate(&mut OsRng);
        let answer = self.client().enroll(&code, &key).unwrap();
        DeviceClient::new(self.client(), DeviceCredential::new(answer.device_id, key))
    }

    /// Runs one SQL count query against the real database file.
    pub fn count(&self, sql: &str) -> i64 {
        self.server
            .state
            .db()
            .with(|c| Ok(c.query_row(sql, [], |r| r.get(0))?))
            .unwrap()
    }

    /// Row counts of every table a request could change.
    pub fn snapshot(&self) -> [i64; 5] {
        [
            self.count("SELECT count(*) FROM users"),
            self.count("SELECT count(*) FROM devices"),
            self.count("SELECT count(*) FROM enrollment_codes WHERE used_at IS NOT NULL"),
            self.count("SELECT count(*) FROM request_nonces"),
            self.count("SELECT count(*) FROM audit_log"),
        ]
    }
}
