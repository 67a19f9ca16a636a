//! Helpers shared by the server's integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ed25519_dalek::SigningKey;
use fieldcase_core::protocol::Role;
use fieldcase_core::transport::{Client, DeviceClient, DeviceCredential};
use fieldcase_server::office::{enrollment, users};
use fieldcase_server::storage::testing::{TempPgDatabase, TestBackend};
use fieldcase_server::{RunningServer, Server, ServerOptions};
use rand::rngs::OsRng;

/// A running in-process server with its data folder, on the backend named by
/// `FIELDCASE_TEST_DATABASE` (`sqlite`, the default, or `postgres`: a fresh database each).
pub struct TestServer {
    pub server: RunningServer,
    pub dir: tempfile::TempDir,
    /// The PostgreSQL database, dropped after the server (fields drop in order).
    pub pg: Option<TempPgDatabase>,
}

/// The PostgreSQL database of each data folder a [`TestServer`] of this process uses, so that
/// the admin commands run on a data folder find the same database.
static DATABASES: std::sync::Mutex<Vec<(std::path::PathBuf, String)>> =
    std::sync::Mutex::new(Vec::new());

/// `FIELDCASE_DATABASE_URL` for an admin command on `data`, if its server is on PostgreSQL.
pub fn database_url_for(data: &std::path::Path) -> Option<String> {
    DATABASES
        .lock()
        .unwrap()
        .iter()
        .find(|(d, _)| d == data)
        .map(|(_, url)| url.clone())
}

/// The backend of this test run.
pub fn backend() -> TestBackend {
    TestBackend::from_env().unwrap()
}

/// A fresh database for a server on the backend of this run (`None` for SQLite: the file in
/// the data folder).
pub fn fresh_database() -> Option<TempPgDatabase> {
    match backend() {
        TestBackend::Sqlite => None,
        TestBackend::Postgres => Some(TempPgDatabase::create().unwrap()),
    }
}

impl TestServer {
    pub fn start() -> TestServer {
        TestServer::start_with(|_| {})
    }

    /// A server on SQLite whatever the backend of the run (for tests that work on the
    /// database file itself: copying it, tampering with it).
    pub fn start_sqlite() -> TestServer {
        TestServer::start_on(None, |_| {})
    }

    pub fn start_with(f: impl FnOnce(&mut ServerOptions)) -> TestServer {
        TestServer::start_on(fresh_database(), f)
    }

    fn start_on(pg: Option<TempPgDatabase>, f: impl FnOnce(&mut ServerOptions)) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let mut options = ServerOptions::new(dir.path(), "127.0.0.1:0".parse().unwrap());
        options.database = pg.as_ref().map(TempPgDatabase::config);
        // Phones sync once enrolled; the tests of an admin's confirmation turn it on.
        options.limits.confirm_enrollment = false;
        f(&mut options);
        let server = Server::start_with(options).unwrap();
        if let Some(pg) = &pg {
            DATABASES
                .lock()
                .unwrap()
                .push((dir.path().to_path_buf(), pg.url_text().to_owned()));
        }
        TestServer { server, dir, pg }
    }

    /// The environment a `fieldcase-server` process needs to use this server's database.
    pub fn database_env(&self) -> Vec<(&'static str, String)> {
        match &self.pg {
            Some(pg) => vec![("FIELDCASE_DATABASE_URL", pg.url_text().to_owned())],
            None => Vec::new(),
        }
    }

    pub fn client(&self) -> Client {
        Client::new(&self.server.url(), self.server.fingerprint).unwrap()
    }

    pub fn add_user(&self, name: &str, role: Role) -> uuid::Uuid {
        let now = self.server.state.now();
        self.server
            .state
            .db()
            .write(|sql| users::add_user(sql, name, role, now))
            .unwrap()
    }

    pub fn issue_code(&self, name: &str, ttl: i64) -> String {
        let now = self.server.state.now();
        self.server
            .state
            .db()
            .write(|sql| enrollment::issue_enrollment_code(sql, name, ttl, now))
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
            .read(|c| c.query_row(sql, &[])?.get::<i64>(0))
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

/// A SQLite file at `path` as an office of an older version left it: the schema of the first
/// `steps` migrations, then `rows`.
pub fn sqlite_at_schema(path: &std::path::Path, steps: usize, rows: &str) {
    let conn = rusqlite::Connection::open(path).unwrap();
    for (_, step) in &fieldcase_server::storage::sql::SQLITE_MIGRATIONS[..steps] {
        conn.execute_batch(step).unwrap();
    }
    conn.pragma_update(None, "user_version", steps as i64)
        .unwrap();
    conn.execute_batch(rows).unwrap();
}

/// A fresh PostgreSQL database as an office of an older version left it: the schema of the
/// first `steps` migrations, then `rows`.
pub fn postgres_at_schema(steps: usize, rows: &str) -> TempPgDatabase {
    let pg = TempPgDatabase::create().unwrap();
    let mut client = pg.connect().unwrap();
    client
        .batch_execute(&format!(
            "CREATE TABLE schema_version (id BIGINT PRIMARY KEY CHECK (id = 1),
                                          version BIGINT NOT NULL);
             INSERT INTO schema_version (id, version) VALUES (1, {steps});"
        ))
        .unwrap();
    for (_, step) in &fieldcase_server::storage::sql::PG_MIGRATIONS[..steps] {
        client.batch_execute(step).unwrap();
    }
    client.batch_execute(rows).unwrap();
    pg
}
