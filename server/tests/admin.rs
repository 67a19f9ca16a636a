//! Device administration and the audit chain: revocation and deactivation refuse the device's
//! next signed request (over real TLS on 127.0.0.1, even on an open keep-alive connection),
//! `admin devices` shows each device's state, and `admin audit verify` names the entry where a
//! tampered audit log breaks. Real SQLite files in temporary folders; the CLI paths run the real
//! binary.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::TestServer;
use ed25519_dalek::SigningKey;
use fieldcase_core::protocol::{Role, error_code};
use fieldcase_core::transport::{Client, DeviceClient, DeviceCredential, TransportError};
use fieldcase_server::clock::rfc3339;
use fieldcase_server::office::audit::{self, ChainProblem, ChainReport};
use fieldcase_server::office::devices::{self, DeviceStatus, RevokeOutcome};
use fieldcase_server::office::{enrollment, users};
use fieldcase_server::storage::keys::{KEY_FILE, ServerKeys};
use fieldcase_server::storage::sql::{self, Database, DatabaseConfig};
use fieldcase_server::storage::testing::TempPgDatabase;
use fieldcase_server::{ServerError, sql_params};
use rand::rngs::OsRng;
use rusqlite::Connection;
use uuid::Uuid;

const BIN: &str = env!("CARGO_BIN_EXE_fieldcase-server");

/// Personal names used in these tests; none may reach the audit log.
const NAMES: &[&str] = &["Ana Marković", "Jelena Petrović", "Milan Jovanović"];

fn run_admin(data: &Path, args: &[&str]) -> Output {
    let mut command = Command::new(BIN);
    if let Some(url) = common::database_url_for(data) {
        command.env("FIELDCASE_DATABASE_URL", url);
    }
    command
        .arg("--data")
        .arg(data)
        .arg("admin")
        .args(args)
        .env("RUST_LOG", "error")
        .output()
        .unwrap()
}

fn admin_ok(data: &Path, args: &[&str]) -> String {
    let out = run_admin(data, args);
    assert!(
        out.status.success(),
        "admin {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn refusal(e: TransportError) -> (u16, String) {
    match e {
        TransportError::Http { status, code, .. } => (status, code),
        other => panic!("expected an HTTP refusal, got {other:?}"),
    }
}

/// Enrolls one more device for an existing user.
fn enroll(t: &TestServer, client: Client, user: &str) -> DeviceClient {
    let code = t.issue_code(user, 900);
    let key = SigningKey::generate(&mut OsRng);
    let answer = client.enroll(&code, &key).unwrap();
    DeviceClient::new(client, DeviceCredential::new(answer.device_id, key))
}

fn device_id(d: &DeviceClient) -> Uuid {
    d.credential().device_id
}

/// A TCP relay in front of the server that counts the connections it accepted, to show that
/// requests travel over one kept-alive connection.
struct CountingProxy {
    port: u16,
    accepted: Arc<AtomicUsize>,
}

impl CountingProxy {
    fn start(target: std::net::SocketAddr) -> CountingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        std::thread::spawn(move || {
            for inbound in listener.incoming() {
                let Ok(inbound) = inbound else { return };
                count.fetch_add(1, Ordering::SeqCst);
                let Ok(outbound) = TcpStream::connect(target) else {
                    return;
                };
                let (a, b) = (inbound.try_clone().unwrap(), outbound.try_clone().unwrap());
                std::thread::spawn(move || pipe(inbound, outbound));
                std::thread::spawn(move || pipe(b, a));
            }
        });
        CountingProxy { port, accepted }
    }

    fn client(&self, t: &TestServer) -> Client {
        Client::new(
            &format!("https://127.0.0.1:{}", self.port),
            t.server.fingerprint,
        )
        .unwrap()
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

fn pipe(mut from: TcpStream, mut to: TcpStream) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

fn audit_count(t: &TestServer) -> i64 {
    t.count("SELECT count(*) FROM audit_log")
}

/// A raw SQLite connection that carries an audit key, as the server's transactions do.
struct Keyed<'a>(&'a Connection, zeroize::Zeroizing<[u8; 32]>);

impl sql::Sql for Keyed<'_> {
    fn backend(&self) -> sql::Backend {
        sql::Backend::Sqlite
    }
    fn execute(&mut self, text: &str, params: &[sql::Param<'_>]) -> Result<u64, sql::SqlError> {
        sql::Sql::execute(&mut self.0, text, params)
    }
    fn query_all(
        &mut self,
        text: &str,
        params: &[sql::Param<'_>],
    ) -> Result<Vec<sql::Row>, sql::SqlError> {
        sql::Sql::query_all(&mut self.0, text, params)
    }
    fn query_opt(
        &mut self,
        text: &str,
        params: &[sql::Param<'_>],
    ) -> Result<Option<sql::Row>, sql::SqlError> {
        sql::Sql::query_opt(&mut self.0, text, params)
    }
    fn execute_batch(&mut self, text: &str) -> Result<(), sql::SqlError> {
        sql::Sql::execute_batch(&mut self.0, text)
    }
    fn record_key(&self) -> Option<&[u8; 32]> {
        Some(&self.1)
    }
}

/// `conn` with the audit key of the office in `dir` (its `server.key`), or a key of the test's
/// own for a bare database.
fn keyed<'a>(conn: &'a Connection, dir: &Path) -> Keyed<'a> {
    let key = match ServerKeys::load(dir) {
        Ok(keys) => keys.derive(audit::KEY_PURPOSE).unwrap(),
        Err(_) => zeroize::Zeroizing::new([9; 32]),
    };
    Keyed(conn, key)
}

fn verify_in(conn: &Connection, dir: &Path) -> ChainReport {
    audit::verify_chain(&mut keyed(conn, dir)).unwrap()
}

#[test]
fn revoke_from_the_cli_refuses_the_next_request_on_an_open_connection() {
    let t = TestServer::start();
    t.add_user(NAMES[0], Role::FieldWorker);
    let proxy = CountingProxy::start(t.server.addr);
    let device = enroll(&t, proxy.client(&t), NAMES[0]);
    let bystander = t.enrolled_device(NAMES[1], Role::FieldWorker);
    device.whoami().unwrap();
    device.whoami().unwrap();
    let connections = proxy.accepted();

    // The admin revokes from the command line while the server runs.
    let id = device_id(&device).to_string();
    let out = admin_ok(t.dir.path(), &["revoke", &id]);
    assert!(out.contains(&format!("revoked device {id}")), "{out}");

    // The very next request, over the connection that is already open, is refused.
    let (status, code) = refusal(device.whoami().unwrap_err());
    assert_eq!((status, code.as_str()), (403, error_code::DEVICE_REVOKED));
    assert_eq!(
        proxy.accepted(),
        connections,
        "the refused request did not reuse the open connection"
    );
    // And every request after it.
    let (status, code) = refusal(device.whoami().unwrap_err());
    assert_eq!((status, code.as_str()), (403, error_code::DEVICE_REVOKED));
    // Another user's device is unaffected.
    bystander.whoami().unwrap();

    // Revoking again changes nothing and is not audited twice.
    let before = audit_count(&t);
    let out = admin_ok(t.dir.path(), &["revoke", &id]);
    assert!(out.contains("already revoked"), "{out}");
    assert_eq!(audit_count(&t), before);
    assert_eq!(
        t.count(&format!(
            "SELECT count(*) FROM audit_log WHERE action = 'device_revoked' \
             AND device_id = '{id}' AND detail = 'admin'"
        )),
        1
    );

    // Unknown or malformed ids are refused with a clear message and a failing exit status.
    let out = run_admin(t.dir.path(), &["revoke", &Uuid::now_v7().to_string()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no device with that id"));
    let out = run_admin(t.dir.path(), &["revoke", "not-a-device"]);
    assert!(!out.status.success());
}

#[test]
fn revoke_device_library_outcomes() {
    let t = TestServer::start();
    let device = t.enrolled_device(NAMES[0], Role::FieldWorker);
    let id = device_id(&device);
    let now = t.server.state.now();
    let db = t.server.state.db();
    let first = db.write(|c| devices::revoke_device(c, &id, now)).unwrap();
    assert!(matches!(first, RevokeOutcome::Revoked { .. }));
    let second = db
        .write(|c| devices::revoke_device(c, &id, now + 5))
        .unwrap();
    assert_eq!(
        second,
        RevokeOutcome::AlreadyRevoked {
            revoked_at: Some(now)
        }
    );
    let unknown = db.write(|c| devices::revoke_device(c, &Uuid::now_v7(), now));
    assert!(matches!(unknown, Err(ServerError::UnknownDevice)));
    let (status, code) = refusal(device.whoami().unwrap_err());
    assert_eq!((status, code.as_str()), (403, error_code::DEVICE_REVOKED));
}

#[test]
fn deactivating_a_user_refuses_every_one_of_their_devices() {
    let t = TestServer::start();
    let user_id = t.add_user(NAMES[0], Role::FieldWorker);
    let phones: Vec<DeviceClient> = (0..3).map(|_| enroll(&t, t.client(), NAMES[0])).collect();
    let bystander = t.enrolled_device(NAMES[1], Role::CaseManager);
    // One device was revoked already: deactivation revokes the other two.
    let now = t.server.state.now();
    let db = t.server.state.db();
    let first = device_id(&phones[0]);
    db.write(|c| devices::revoke_device(c, &first, now))
        .unwrap();
    for p in &phones[1..] {
        p.whoami().unwrap();
    }

    let done = db
        .write(|c| users::deactivate_user(c, &NAMES[0].to_lowercase(), now))
        .unwrap();
    assert_eq!(done.user_id, user_id);
    assert!(!done.was_inactive);
    let mut expected: Vec<Uuid> = phones[1..].iter().map(device_id).collect();
    expected.sort();
    assert_eq!(done.revoked_devices, expected);

    for p in &phones {
        let (status, code) = refusal(p.whoami().unwrap_err());
        assert_eq!((status, code.as_str()), (403, error_code::DEVICE_REVOKED));
    }
    bystander.whoami().unwrap();
    let devices = db.read(devices::list_devices).unwrap();
    for d in devices.iter().filter(|d| d.user_id == user_id) {
        assert_eq!(d.status, DeviceStatus::Revoked);
        assert!(!d.user_active);
        assert!(!d.accepted());
        assert!(d.revoked_at.is_some());
    }
    // No new device for a deactivated user.
    let code = db.write(|c| enrollment::issue_enrollment_code(c, NAMES[0], 900, now));
    assert!(matches!(code, Err(ServerError::UserInactive)));

    // Audited: one device_revoked per device and one user_deactivated, all in the chain.
    assert_eq!(
        t.count(&format!(
            "SELECT count(*) FROM audit_log WHERE action = 'device_revoked' \
             AND user_id = '{user_id}' AND detail = 'user_deactivated'"
        )),
        2
    );
    assert_eq!(
        t.count(&format!(
            "SELECT count(*) FROM audit_log WHERE action = 'user_deactivated' \
             AND user_id = '{user_id}' AND device_id IS NULL AND detail = 'devices_revoked=2'"
        )),
        1
    );
    // Again, by id: nothing left to do, nothing audited.
    let before = audit_count(&t);
    let again = db
        .write(|c| users::deactivate_user(c, &user_id.to_string(), now))
        .unwrap();
    assert!(again.was_inactive && again.revoked_devices.is_empty());
    assert_eq!(audit_count(&t), before);
    let unknown = db.write(|c| users::deactivate_user(c, "nobody", now));
    assert!(matches!(unknown, Err(ServerError::UnknownUser)));
    assert!(db.read(|c| audit::verify_chain(c)).unwrap().is_intact());
}

#[test]
fn deactivate_from_the_cli_and_devices_table_shows_states() {
    let t = TestServer::start();
    t.add_user(NAMES[0], Role::FieldWorker);
    t.add_user(NAMES[1], Role::FieldWorker);
    let kept = enroll(&t, t.client(), NAMES[0]);
    let revoked = enroll(&t, t.client(), NAMES[0]);
    let gone_a = enroll(&t, t.client(), NAMES[1]);
    let gone_b = enroll(&t, t.client(), NAMES[1]);
    kept.whoami().unwrap();

    let out = admin_ok(t.dir.path(), &["revoke", &device_id(&revoked).to_string()]);
    assert!(out.contains("revoked device"));
    let out = admin_ok(t.dir.path(), &["deactivate", NAMES[1]]);
    assert!(out.contains("revoked 2 device(s)"), "{out}");
    for d in [&gone_a, &gone_b] {
        assert!(out.contains(&device_id(d).to_string()));
        let (status, code) = refusal(d.whoami().unwrap_err());
        assert_eq!((status, code.as_str()), (403, error_code::DEVICE_REVOKED));
    }
    kept.whoami().unwrap();

    // What the sync side records (wipe receipt, purge receipts, sync and lease times).
    let wiped_at = 1_790_000_000_i64;
    let synced_at = 1_789_000_000_i64;
    t.server
        .state
        .db()
        .write(|c| {
            c.execute(
                "UPDATE devices SET wiped_at = ?1, wipe_reason = 'revoked' WHERE id = ?2",
                sql_params![wiped_at, &device_id(&revoked).to_string()],
            )?;
            c.execute(
                "UPDATE devices SET last_sync_at = ?1, lease_expires_at = ?2 WHERE id = ?3",
                sql_params![
                    synced_at,
                    synced_at + 72 * 3600,
                    &device_id(&kept).to_string()
                ],
            )?;
            for case in [Uuid::now_v7(), Uuid::now_v7()] {
                c.execute(
                    "INSERT INTO purge_receipts (device_id, case_id, at) VALUES (?1, ?2, ?3)",
                    sql_params![&device_id(&kept).to_string(), &case.to_string(), synced_at],
                )?;
            }
            Ok::<_, ServerError>(())
        })
        .unwrap();

    let table = admin_ok(t.dir.path(), &["devices"]);
    let line = |d: &DeviceClient| -> String {
        let id = device_id(d).to_string();
        table
            .lines()
            .find(|l| l.starts_with(&id))
            .unwrap_or_else(|| panic!("no line for {id} in\n{table}"))
            .to_owned()
    };
    assert!(table.lines().next().unwrap().contains("last sync"));
    let kept_line = line(&kept);
    assert!(kept_line.contains(" active "), "{kept_line}");
    assert!(kept_line.contains(&rfc3339(synced_at)), "{kept_line}");
    assert!(
        kept_line.contains(&rfc3339(synced_at + 72 * 3600)),
        "{kept_line}"
    );
    assert!(kept_line.contains(" 2  "), "purge receipts: {kept_line}");
    assert!(kept_line.ends_with(NAMES[0]), "{kept_line}");
    let revoked_line = line(&revoked);
    assert!(revoked_line.contains(" revoked "), "{revoked_line}");
    assert!(
        revoked_line.contains(&format!("{} (revoked)", rfc3339(wiped_at))),
        "{revoked_line}"
    );
    for d in [&gone_a, &gone_b] {
        let l = line(d);
        assert!(l.contains(" revoked "), "{l}");
        assert!(l.ends_with(NAMES[1]), "{l}");
    }
    // Times are RFC 3339 UTC.
    assert!(rfc3339(0) == "1970-01-01T00:00:00Z");
    assert_eq!(table.lines().count(), 5);
}

/// Builds a data folder with a series of audited actions; returns it with the number of entries.
/// An audited SQLite data folder (on SQLite in every run: the tests tamper with its file).
fn audited_folder() -> (tempfile::TempDir, i64) {
    let t = TestServer::start_sqlite();
    t.add_user(NAMES[0], Role::FieldWorker);
    t.add_user(NAMES[1], Role::CaseManager);
    t.add_user(NAMES[2], Role::Admin);
    let a = enroll(&t, t.client(), NAMES[0]);
    let _b = enroll(&t, t.client(), NAMES[0]);
    let c = enroll(&t, t.client(), NAMES[1]);
    a.whoami().unwrap();
    c.whoami().unwrap();
    let now = t.server.state.now();
    t.server
        .state
        .db()
        .write(|conn| devices::revoke_device(conn, &device_id(&c), now))
        .unwrap();
    admin_ok(t.dir.path(), &["deactivate", NAMES[0]]);
    let n = audit_count(&t);
    let TestServer { server, dir, .. } = t;
    server.shutdown().unwrap();
    (dir, n)
}

/// Copies the office of `from` (its database and key file) into a fresh folder (the server was
/// shut down, so the WAL is checkpointed into the main file).
fn copy_db(from: &Path) -> tempfile::TempDir {
    let to = tempfile::tempdir().unwrap();
    std::fs::copy(from.join(KEY_FILE), to.path().join(KEY_FILE)).unwrap();
    for suffix in ["", "-wal"] {
        let src = from.join(format!("{}{suffix}", sql::DB_FILE));
        if src.exists() {
            std::fs::copy(&src, to.path().join(format!("{}{suffix}", sql::DB_FILE))).unwrap();
        }
    }
    to
}

/// Opens the file as an attacker would: raw SQLite, append-only triggers dropped.
fn tamper(dir: &Path, sql: &str) {
    let conn = Connection::open(dir.join(sql::DB_FILE)).unwrap();
    conn.execute_batch("DROP TRIGGER audit_log_no_update; DROP TRIGGER audit_log_no_delete;")
        .unwrap();
    conn.execute_batch(sql).unwrap();
}

fn expect_broken(dir: &Path, seq: i64, problem: ChainProblem) {
    let conn = sql::open_sqlite(&dir.join(sql::DB_FILE)).unwrap();
    assert_eq!(
        verify_in(&conn, dir),
        ChainReport::Broken {
            seq,
            problem: problem.clone()
        }
    );
    drop(conn);
    let out = run_admin(dir, &["audit", "verify"]);
    assert!(!out.status.success(), "verify passed a tampered log");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("audit chain broken at entry {seq}: {problem}")),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn audit_chain_verifies_and_names_the_tampered_entry() {
    let (dir, n) = audited_folder();
    // 3 users (the case manager joining the default team), 3 codes, 3 enrollments, 1
    // revocation, 2 revocations with a deactivation.
    assert_eq!(n, 14);
    let out = admin_ok(dir.path(), &["audit", "verify"]);
    assert!(
        out.contains(&format!("audit chain ok: {n} entries")),
        "{out}"
    );
    assert!(out.contains("head hash: "), "{out}");

    // No personal names in any audit row, in the database or in `audit list`.
    {
        let conn = sql::open_sqlite(&dir.path().join(sql::DB_FILE)).unwrap();
        let entries = audit::list(&mut &conn, 1000).unwrap();
        assert_eq!(entries.len() as i64, n);
        let allowed = [
            "user_added",
            "team_joined",
            "enrollment_code_issued",
            "device_enrolled",
            "device_revoked",
            "user_deactivated",
        ];
        for e in &entries {
            assert!(allowed.contains(&e.action.as_str()), "{e:?}");
            for text in [
                Some(e.action.as_str()),
                e.user_id.as_deref(),
                e.device_id.as_deref(),
                e.detail.as_deref(),
            ]
            .into_iter()
            .flatten()
            {
                for name in NAMES {
                    assert!(!text.to_lowercase().contains(&name.to_lowercase()));
                    for part in name.split(' ') {
                        assert!(!text.contains(part), "{part} in audit entry {e:?}");
                    }
                }
            }
            for id in [&e.user_id, &e.device_id].into_iter().flatten() {
                Uuid::try_parse(id).unwrap();
            }
        }
    }
    let listed = admin_ok(dir.path(), &["audit", "list", "--limit", "3"]);
    assert_eq!(listed.lines().count(), 4, "{listed}");
    assert!(listed.contains(&format!("{n:>6}  ")), "{listed}");
    assert!(listed.contains("user_deactivated"));
    let everything = admin_ok(dir.path(), &["audit", "list", "--limit", "1000"]);
    assert_eq!(everything.lines().count() as i64, n + 1);
    for name in NAMES {
        assert!(!everything.contains(name));
    }

    // A changed action.
    let d = copy_db(dir.path());
    tamper(
        d.path(),
        "UPDATE audit_log SET action = 'user_deactivated' WHERE seq = 3",
    );
    expect_broken(d.path(), 3, ChainProblem::Altered);

    // A changed time.
    let d = copy_db(dir.path());
    tamper(
        d.path(),
        "UPDATE audit_log SET at = at - 3600 WHERE seq = 5",
    );
    expect_broken(d.path(), 5, ChainProblem::Altered);

    // A changed device id.
    let d = copy_db(dir.path());
    tamper(
        d.path(),
        &format!(
            "UPDATE audit_log SET device_id = '{}' WHERE seq = (SELECT max(seq) FROM audit_log \
             WHERE device_id IS NOT NULL)",
            Uuid::now_v7()
        ),
    );
    let conn = sql::open_sqlite(&d.path().join(sql::DB_FILE)).unwrap();
    assert!(matches!(
        verify_in(&conn, d.path()),
        ChainReport::Broken {
            problem: ChainProblem::Altered,
            ..
        }
    ));
    drop(conn);

    // A deleted entry in the middle.
    let d = copy_db(dir.path());
    tamper(d.path(), "DELETE FROM audit_log WHERE seq = 7");
    expect_broken(d.path(), 7, ChainProblem::Missing);

    // The first entry deleted.
    let d = copy_db(dir.path());
    tamper(d.path(), "DELETE FROM audit_log WHERE seq = 1");
    expect_broken(d.path(), 1, ChainProblem::Missing);

    // The last two entries deleted.
    let d = copy_db(dir.path());
    tamper(
        d.path(),
        &format!("DELETE FROM audit_log WHERE seq >= {}", n - 1),
    );
    expect_broken(
        d.path(),
        n - 1,
        ChainProblem::TruncatedEnd { last_written: n },
    );

    // An entry inserted in the middle, with a correctly computed hash over the entry before it:
    // the entry after it no longer links.
    let d = copy_db(dir.path());
    {
        let conn = Connection::open(d.path().join(sql::DB_FILE)).unwrap();
        let prev: Vec<u8> = conn
            .query_row("SELECT hash FROM audit_log WHERE seq = 4", [], |r| r.get(0))
            .unwrap();
        let prev: [u8; 32] = prev.try_into().unwrap();
        let forged = audit::entry_hash(&prev, 5, 1, "device_enrolled", None, None, None);
        drop(conn);
        tamper(
            d.path(),
            &format!(
                "UPDATE audit_log SET seq = -seq WHERE seq >= 5;
                 UPDATE audit_log SET seq = 1 - seq WHERE seq < 0;
                 INSERT INTO audit_log (seq, at, action, prev_hash, hash)
                   VALUES (5, 1, 'device_enrolled', x'{}', x'{}');",
                hex::encode(prev),
                hex::encode(forged)
            ),
        );
    }
    // Without the office's key the forged entry cannot carry a valid MAC.
    expect_broken(d.path(), 5, ChainProblem::Altered);

    // An entry appended at the end without the chain.
    let d = copy_db(dir.path());
    tamper(
        d.path(),
        "INSERT INTO audit_log (at, action) VALUES (1, 'device_enrolled')",
    );
    expect_broken(d.path(), n + 1, ChainProblem::Unchained);

    // The untouched original still verifies.
    let out = admin_ok(dir.path(), &["audit", "verify"]);
    assert!(out.contains(&format!("audit chain ok: {n} entries")));
}

#[test]
fn triggers_still_forbid_changes_through_the_server_connection() {
    let dir = tempfile::tempdir().unwrap();
    let conn = sql::open_sqlite(&dir.path().join(sql::DB_FILE)).unwrap();
    users::add_user(
        &mut keyed(&conn, dir.path()),
        NAMES[0],
        Role::FieldWorker,
        1_000,
    )
    .unwrap();
    assert!(
        conn.execute("UPDATE audit_log SET action = 'x'", [])
            .is_err()
    );
    assert!(conn.execute("DELETE FROM audit_log", []).is_err());
    assert!(verify_in(&conn, dir.path()).is_intact());
}

#[test]
fn an_upgraded_log_keeps_its_older_entries_and_is_keyed_from_the_first_start_on() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(sql::DB_FILE);
    {
        // A version-2 database with two audit rows written before the chain existed.
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(include_str!("../migrations/001_initial.sql"))
            .unwrap();
        conn.execute_batch(include_str!("../migrations/002_cases.sql"))
            .unwrap();
        conn.execute_batch(
            "INSERT INTO audit_log (at, action) VALUES (10, 'user_added');
             INSERT INTO audit_log (at, action) VALUES (11, 'enrollment_code_issued');
             PRAGMA user_version = 2;",
        )
        .unwrap();
    }
    let mut conn = sql::open_sqlite(&path).unwrap();
    // An entry chained without the key, as a server from before it wrote.
    users::add_user(&mut conn, NAMES[0], Role::FieldWorker, 20).unwrap();
    // Verifying needs the key; a log the server never started with it has no keyed start.
    assert!(matches!(
        audit::verify_chain(&mut &conn),
        Err(ServerError::AuditKeyMissing)
    ));
    assert_eq!(
        verify_in(&conn, dir.path()),
        ChainReport::Broken {
            seq: 1,
            problem: ChainProblem::NotKeyed
        }
    );
    // The first start with the key starts the keyed chain after what is there.
    audit::start_keyed_chain(&mut keyed(&conn, dir.path())).unwrap();
    assert_eq!(
        verify_in(&conn, dir.path()),
        ChainReport::Intact {
            entries: 3,
            legacy: 2,
            unkeyed: 1,
            head: entries_hash(&conn, 3).map(|h| h.try_into().unwrap()),
        }
    );
    users::add_user(
        &mut keyed(&conn, dir.path()),
        NAMES[1],
        Role::FieldWorker,
        30,
    )
    .unwrap();
    users::add_user(
        &mut keyed(&conn, dir.path()),
        NAMES[2],
        Role::FieldWorker,
        40,
    )
    .unwrap();
    match verify_in(&conn, dir.path()) {
        ChainReport::Intact {
            entries,
            legacy,
            unkeyed,
            head,
        } => {
            assert_eq!((entries, legacy, unkeyed), (5, 2, 1));
            assert_eq!(head.map(|h| h.to_vec()), entries_hash(&conn, 5));
        }
        other => panic!("{other:?}"),
    }
    // Once keyed, an entry without the key is refused and nothing is written.
    assert!(users::add_user(&mut conn, "dana", Role::FieldWorker, 50).is_err());
    assert_eq!(audit::list(&mut &conn, 10).unwrap().len(), 5);
    drop(conn);

    let tampered = |sql: &str| {
        let d = tempfile::tempdir().unwrap();
        std::fs::copy(&path, d.path().join(sql::DB_FILE)).unwrap();
        tamper(d.path(), sql);
        let conn = sql::open_sqlite(&d.path().join(sql::DB_FILE)).unwrap();
        verify_in(&conn, dir.path())
    };
    // Every hash blanked (and the keyed entries rewritten) no longer passes
    // as entries from before the chain...
    assert_eq!(
        tampered(
            "UPDATE audit_log SET hash = NULL, prev_hash = NULL;
             UPDATE audit_log SET action = 'case_created' WHERE seq = 4"
        ),
        // (entries 1 to 3 come before the keyed start at 4 and read as legacy)
        ChainReport::Broken {
            seq: 4,
            problem: ChainProblem::Unchained
        }
    );
    // ...nor once the record of where the keyed chain starts is removed too...
    assert_eq!(
        tampered(
            "UPDATE audit_log SET hash = NULL, prev_hash = NULL;
             DELETE FROM server_meta WHERE name = 'audit_keyed_from'"
        ),
        ChainReport::Broken {
            seq: 1,
            problem: ChainProblem::NotKeyed
        }
    );
    // ...or moved past the rewritten entries.
    assert_eq!(
        tampered(
            "UPDATE server_meta SET value = CAST(x'00000000000000ff' || substr(value, 9) AS BLOB)
             WHERE name = 'audit_keyed_from'"
        ),
        ChainReport::Broken {
            seq: 1,
            problem: ChainProblem::ForgedKeyedStart
        }
    );
    // An entry rehashed the old way, without the key, inside the keyed part.
    let prev: [u8; 32] = {
        let conn = Connection::open(&path).unwrap();
        entries_hash(&conn, 4).unwrap().try_into().unwrap()
    };
    let rehashed = audit::entry_hash(&prev, 5, 40, "user_deactivated", None, None, None);
    assert_eq!(
        tampered(&format!(
            "UPDATE audit_log SET action = 'user_deactivated', user_id = NULL, hash = x'{}'
             WHERE seq = 5",
            hex::encode(rehashed)
        )),
        ChainReport::Broken {
            seq: 5,
            problem: ChainProblem::Altered
        }
    );
}

fn entries_hash(conn: &Connection, seq: i64) -> Option<Vec<u8>> {
    conn.query_row("SELECT hash FROM audit_log WHERE seq = ?1", [seq], |r| {
        r.get(0)
    })
    .unwrap()
}

#[test]
fn concurrent_writers_keep_one_chain() {
    // Four writers, each with a database handle of its own (on PostgreSQL: four instances'
    // pools), append to one audit chain.
    let dir = tempfile::tempdir().unwrap();
    let pg = common::fresh_database();
    let config = pg.as_ref().map_or_else(
        || DatabaseConfig::default_in(dir.path()),
        TempPgDatabase::config,
    );
    drop(Database::open(&config).unwrap());
    let threads: Vec<_> = (0..4)
        .map(|w| {
            let config = config.clone();
            std::thread::spawn(move || {
                let db = Database::open(&config)
                    .unwrap()
                    .with_record_key(zeroize::Zeroizing::new([9; 32]));
                for i in 0..25 {
                    db.write(|sql| {
                        users::add_user(sql, &format!("w{w}-{i}"), Role::FieldWorker, i)
                    })
                    .unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    match Database::open(&config)
        .unwrap()
        .with_record_key(zeroize::Zeroizing::new([9; 32]))
        .read(audit::verify_chain)
        .unwrap()
    {
        ChainReport::Intact { entries, .. } => assert_eq!(entries, 100),
        other => panic!("{other:?}"),
    }
}

#[test]
fn audit_detail_is_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let conn = sql::open_sqlite(&dir.path().join(sql::DB_FILE)).unwrap();
    let long = "x".repeat(audit::MAX_DETAIL_LEN + 1);
    let k = &mut keyed(&conn, dir.path());
    assert!(audit::record_detail(k, 1, "device_revoked", None, None, Some(&long)).is_err());
    assert!(audit::record(k, 1, "", None, None).is_err());
    assert_eq!(audit::list(k, 10).unwrap().len(), 0);
    audit::record_detail(k, 1, "device_revoked", None, None, Some("admin")).unwrap();
    assert!(verify_in(&conn, dir.path()).is_intact());
}

#[test]
fn a_tampered_log_does_not_stop_revocation() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(sql::DB_FILE);
    let conn = sql::open_sqlite(&path).unwrap();
    let user = users::add_user(
        &mut keyed(&conn, dir.path()),
        NAMES[0],
        Role::FieldWorker,
        1_000,
    )
    .unwrap();
    let key = SigningKey::generate(&mut OsRng);
    conn.execute(
        "INSERT INTO devices (id, user_id, public_key, status, enrolled_at)
         VALUES (?1, ?2, ?3, 'active', 1000)",
        rusqlite::params![
            Uuid::now_v7().to_string(),
            user.to_string(),
            key.verifying_key().to_bytes().as_slice()
        ],
    )
    .unwrap();
    drop(conn);
    tamper(
        dir.path(),
        "UPDATE audit_log SET hash = x'0102' WHERE seq = 1",
    );
    let conn = sql::open_sqlite(&path).unwrap();
    let done = users::deactivate_user(&mut keyed(&conn, dir.path()), NAMES[0], 2_000).unwrap();
    assert_eq!(done.revoked_devices.len(), 1);
    assert_eq!(
        verify_in(&conn, dir.path()),
        ChainReport::Broken {
            seq: 1,
            problem: ChainProblem::Malformed
        }
    );
}

#[test]
fn roles_and_the_conflict_inbox_from_the_cli() {
    use fieldcase_core::ActorId;
    use fieldcase_core::document::CaseDoc;
    use fieldcase_core::ids::{DeviceId, UserId};
    use fieldcase_core::model::{Author, CaseUpdate, ConsentStatus, NewCase};
    use fieldcase_core::sync::hub::HubStorage;
    use fieldcase_server::office::cases;
    use fieldcase_server::office::hub::SqlHub;

    let t = TestServer::start();
    let worker = t.add_user(NAMES[0], Role::FieldWorker);
    t.add_user(NAMES[1], Role::Admin);

    // Roles: changed and audited; the last admin keeps the role.
    let out = admin_ok(
        t.dir.path(),
        &["user", "role", NAMES[0], "--role", "case-manager"],
    );
    assert!(out.contains("field-worker -> case-manager"), "{out}");
    let users = admin_ok(t.dir.path(), &["user", "list"]);
    let line = users.lines().find(|l| l.ends_with(NAMES[0])).unwrap();
    assert!(line.contains("case-manager"), "{line}");
    let refused = run_admin(
        t.dir.path(),
        &["user", "role", NAMES[1], "--role", "field-worker"],
    );
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("last active admin"));
    assert_eq!(
        t.count("SELECT count(*) FROM audit_log WHERE action = 'user_role_changed'"),
        1
    );

    // A case whose consent two phones changed concurrently, merged at the office.
    let state = &t.server.state;
    let vault = state.vault().clone();
    let new = NewCase {
        client_code: "K-77".into(),
        consent: ConsentStatus::Given,
        assigned_workers: vec![UserId::from_uuid(worker)],
    };
    let now = state.now();
    let (case, _) = state
        .db()
        .write(|c| cases::create_case(c, &vault, &new, None, now))
        .unwrap()
        .keep(&vault);
    state
        .db()
        .write(|sql| {
            let mut hub = SqlHub::new(sql, &vault, now, 0);
            let office = hub.case_doc(case)?.unwrap();
            let saved = office.save();
            let heads = office.heads();
            for consent in [ConsentStatus::Withdrawn, ConsentStatus::Pending] {
                let mut phone = CaseDoc::load(case, &saved, &ActorId::random())?;
                let author = Author {
                    user: UserId::from_uuid(worker),
                    device: DeviceId::new(),
                };
                let update = CaseUpdate {
                    consent: Some(consent),
                    ..Default::default()
                };
                phone.update_case(author, &update, time::OffsetDateTime::now_utc())?;
                office.apply_encoded_changes(&phone.changes_since(&heads))?;
            }
            hub.store_case(case, None)?;
            Ok::<_, ServerError>(())
        })
        .unwrap();

    let inbox = admin_ok(t.dir.path(), &["case", "conflicts"]);
    assert!(inbox.contains(&format!("case {case} (K-77)")), "{inbox}");
    assert!(
        inbox.contains("withdrawn") && inbox.contains("pending"),
        "{inbox}"
    );
    assert!(inbox.contains(&format!("user {worker}")), "{inbox}");
    let bad = run_admin(
        t.dir.path(),
        &[
            "case",
            "resolve",
            &case.to_string(),
            "--field",
            "consent",
            "--value",
            "maybe",
        ],
    );
    assert!(!bad.status.success(), "a value consent does not take");
    admin_ok(
        t.dir.path(),
        &[
            "case",
            "resolve",
            &case.to_string(),
            "--field",
            "consent",
            "--value",
            "withdrawn",
        ],
    );
    let (read, conflicts) = state
        .db()
        .read(|c| cases::read_case(c, &vault, case))
        .unwrap();
    assert_eq!(read.consent, ConsentStatus::Withdrawn);
    assert!(conflicts.is_empty(), "{conflicts:?}");
    assert_eq!(
        t.count("SELECT count(*) FROM audit_log WHERE action = 'conflict_resolved'"),
        1
    );
    assert!(admin_ok(t.dir.path(), &["case", "conflicts"]).contains("no conflicts wait"));
}

/// What a hostile phone can write around core's input checks: a note whose body would retitle
/// and clear the terminal of whoever prints it.
const TERMINAL_ATTACK: &str = "court at 10 \u{1b}]0;PWNED\u{7}\u{1b}[2J\u{202e}dlrow";

#[test]
fn text_a_phone_wrote_reaches_the_admin_terminal_as_text_not_as_control() {
    use automerge::{ObjType, ReadDoc, transaction::Transactable};
    use fieldcase_core::ids::{DeviceId, UserId};
    use fieldcase_core::model::{ConsentStatus, NewCase};
    use fieldcase_core::sync::hub::HubStorage;
    use fieldcase_server::office::{cases, hub::SqlHub, quarantine};

    let t = TestServer::start();
    let ana = UserId::from_uuid(t.add_user("ana", Role::FieldWorker));
    let state = &t.server.state;
    let vault = state.vault().clone();
    let now = state.now();
    let new = NewCase {
        client_code: "K-0142".into(),
        consent: ConsentStatus::Given,
        assigned_workers: vec![ana],
    };
    let (case, _) = state
        .db()
        .write(|sql| cases::create_case(sql, &vault, &new, None, now))
        .unwrap()
        .keep(&vault);
    let saved = state
        .db()
        .write(|sql| {
            let mut hub = SqlHub::new(sql, &vault, now, 0);
            let doc = hub.case_doc(case).map_err(ServerError::Core)?;
            Ok::<_, ServerError>(doc.map(|d| d.save()))
        })
        .unwrap()
        .unwrap();
    // The phone's raw change: a complete note, written with automerge directly.
    let mut doc = automerge::AutoCommit::load(&saved).unwrap();
    doc.set_actor(automerge::ActorId::random());
    let before = doc.get_heads();
    let notes = doc.get(automerge::ROOT, "notes").unwrap().unwrap().1;
    let note = doc
        .put_object(&notes, Uuid::now_v7().to_string(), ObjType::Map)
        .unwrap();
    doc.put(&note, "author_user", ana.to_string()).unwrap();
    doc.put(&note, "author_device", DeviceId::new().to_string())
        .unwrap();
    doc.put(&note, "written_at", "2026-11-24T10:00:00Z")
        .unwrap();
    doc.put(&note, "kind", "visit").unwrap();
    let body = doc.put_object(&note, "body", ObjType::Text).unwrap();
    doc.splice_text(&body, 0, 0, TERMINAL_ATTACK).unwrap();
    doc.put_object(&note, "tags", ObjType::Map).unwrap();
    let changes = doc.save_after(&before);
    // The phone held the case (quarantine keeps only such uploads).
    let phone = DeviceId::new();
    t.server
        .state
        .db()
        .write(|sql| {
            sql.execute(
                "INSERT INTO device_case_state (device_id, case_id, confirmed) VALUES (?1, ?2, '')",
                sql_params![&phone.to_string(), &case.to_string()],
            )
        })
        .unwrap();
    let held = state
        .db()
        .write(|sql| quarantine::hold(sql, &vault, phone, ana, case, &changes, now))
        .unwrap()
        .unwrap();

    let out = run_admin(t.dir.path(), &["quarantine", "show", &held.to_string()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8(out.stdout).unwrap();
    assert!(
        !printed.chars().any(|c| c.is_control() && c != '\n'),
        "a control character reached the terminal: {printed:?}"
    );
    assert!(
        printed.contains("court at 10 \\u{1b}]0;PWNED\\u{7}\\u{1b}[2J\\u{202e}dlrow"),
        "{printed}"
    );
}

#[test]
fn the_audit_log_says_who_was_given_which_case_and_when() {
    use fieldcase_core::ids::UserId;
    use fieldcase_core::model::{CaseStatus, ConsentStatus, NewCase, NewTask, OfficeKind};
    use fieldcase_server::office::cases;

    let t = TestServer::start();
    let ana = UserId::from_uuid(t.add_user("ana", Role::FieldWorker));
    let bo = UserId::from_uuid(t.add_user("bo", Role::FieldWorker));
    let cy = UserId::from_uuid(t.add_user("cy", Role::FieldWorker));
    let state = &t.server.state;
    let (db, vault, now) = (state.db(), state.vault().clone(), state.now());
    let task = NewTask {
        purpose: "statement to the police".into(),
        office_kind: OfficeKind::Police,
        office_name: "PU Stari grad".into(),
        office_address: String::new(),
        scheduled_at: time::macros::datetime!(2026-12-05 10:00 UTC),
        time_zone: "Europe/Belgrade".into(),
        assignees: vec![ana],
        checklist: vec![],
    };
    let new = NewCase {
        client_code: "K-0142".into(),
        consent: ConsentStatus::Given,
        assigned_workers: vec![ana, bo],
    };
    let before = db.read(|sql| audit::list(sql, 1000)).unwrap().len();
    let (case, first_task) = db
        .write(|sql| cases::create_case(sql, &vault, &new, Some(&task), now))
        .unwrap()
        .keep(&vault);
    let first_task = first_task.unwrap();
    db.write(|sql| cases::set_assigned(sql, &vault, case, bo, false, now))
        .unwrap()
        .keep(&vault);
    db.write(|sql| cases::set_assigned(sql, &vault, case, cy, true, now))
        .unwrap()
        .keep(&vault);
    let second_task = db
        .write(|sql| cases::add_task(sql, &vault, case, &task, now))
        .unwrap()
        .keep(&vault);
    for status in [CaseStatus::Closed, CaseStatus::Open] {
        db.write(|sql| cases::set_status(sql, &vault, case, status, now))
            .unwrap()
            .keep(&vault);
    }
    let entries = db.read(|sql| audit::list(sql, 1000)).unwrap();
    let got: Vec<(String, Option<String>, Option<String>)> = entries[before..]
        .iter()
        .map(|e| (e.action.clone(), e.user_id.clone(), e.detail.clone()))
        .collect();
    let c = Some(case.to_string());
    let user = |u: UserId| Some(u.to_string());
    assert_eq!(
        got,
        vec![
            ("case_created".into(), None, c.clone()),
            ("case_assigned".into(), user(ana), c.clone()),
            ("case_assigned".into(), user(bo), c.clone()),
            (
                "task_added".into(),
                None,
                Some(format!("{case}/{first_task}"))
            ),
            ("case_unassigned".into(), user(bo), c.clone()),
            ("case_assigned".into(), user(cy), c.clone()),
            (
                "task_added".into(),
                None,
                Some(format!("{case}/{second_task}"))
            ),
            ("case_status_closed".into(), None, c.clone()),
            ("case_status_open".into(), None, c.clone()),
        ]
    );
    // And the chain still verifies with them.
    assert!(matches!(
        db.read(audit::verify_chain).unwrap(),
        ChainReport::Intact { .. }
    ));
}

#[test]
fn a_head_written_down_catches_a_log_cut_short_with_its_high_water_mark() {
    let (dir, n) = audited_folder();
    let head_line = admin_ok(dir.path(), &["audit", "head"]);
    let (head, count) = head_line.trim().split_once(' ').unwrap();
    assert_eq!(head.len(), 64, "{head_line}");
    assert_eq!(count, n.to_string());
    let ok = admin_ok(dir.path(), &["audit", "verify", "--head", head]);
    assert!(
        ok.contains(&format!("still holds head {head} (entry {n})")),
        "{ok}"
    );
    // The last entries removed, and SQLite's record of the highest entry lowered to match:
    // the chain itself still checks out, but the head written down is gone.
    let d = copy_db(dir.path());
    tamper(
        d.path(),
        &format!(
            "DELETE FROM audit_log WHERE seq >= {n};
             UPDATE sqlite_sequence SET seq = {} WHERE name = 'audit_log'",
            n - 1
        ),
    );
    let plain = admin_ok(d.path(), &["audit", "verify"]);
    assert!(
        plain.contains(&format!("audit chain ok: {} entries", n - 1)),
        "{plain}"
    );
    let out = run_admin(d.path(), &["audit", "verify", "--head", head]);
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("no longer holds head"), "{stdout}");
    // A head that is not one.
    let bad = run_admin(dir.path(), &["audit", "verify", "--head", "xyz"]);
    assert!(!bad.status.success());
}
