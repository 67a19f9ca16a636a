//! Harness for fieldcase end-to-end tests: a real office server on 127.0.0.1 over real TLS
//! ([`TestServer`]), phones with real encrypted stores enrolled through the real HTTPS transport
//! ([`TestDevice`]), and a fault-injecting TCP proxy between them ([`FaultProxy`]).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod browser;
pub mod hostile;
pub mod load_report;
pub mod photo;
pub mod process;
pub mod proxy;
pub mod rawhttp;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use fieldcase_core::clock::ManualClock;
use fieldcase_core::crypto::StaticKeyProvider;
use fieldcase_core::device::{Device, ServerAddress};
use fieldcase_core::ids::{CaseId, TaskId, UserId};
use fieldcase_core::model::{Case, ConsentStatus, NewCase, NewNote, NewTask, NoteKind, OfficeKind};
use fieldcase_core::protocol::{Fingerprint, Role};
use fieldcase_core::store::{KeySetup, StoreOptions};
use fieldcase_server::office::{cases, enrollment, users};
use fieldcase_server::storage::testing::{TempPgDatabase, TestBackend};
use fieldcase_server::{RunningServer, Server, SystemClock};

pub use hostile::{deflate_bomb, raw_device};
pub use proxy::FaultProxy;

/// A real server on 127.0.0.1:0 with its data folder, on the database backend named by
/// `FIELDCASE_TEST_DATABASE` (`sqlite`, the default: the file in the data folder; `postgres`:
/// a fresh database of its own on the PostgreSQL test server, see `fieldcase_server::storage::testing`).
pub struct TestServer {
    /// The running server.
    pub running: Option<RunningServer>,
    /// Its data folder.
    pub dir: tempfile::TempDir,
    /// Its PostgreSQL database, if the run is on PostgreSQL (dropped after the server).
    pub pg: Option<TempPgDatabase>,
}

/// A fresh database on the backend of this run (`None`: the SQLite file in the data folder).
pub fn fresh_database() -> Option<TempPgDatabase> {
    match TestBackend::from_env().unwrap() {
        TestBackend::Sqlite => None,
        TestBackend::Postgres => Some(TempPgDatabase::create().unwrap()),
    }
}

fn now() -> i64 {
    use fieldcase_server::Clock;
    SystemClock.now()
}

impl TestServer {
    /// Starts a server on a fresh data folder.
    pub fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let pg = fresh_database();
        let running = Server::start_with(Self::options(dir.path(), pg.as_ref())).unwrap();
        Self {
            running: Some(running),
            dir,
            pg,
        }
    }

    /// Default options for a server on `dir` and (if given) a PostgreSQL database. Its phones
    /// sync as soon as they enroll, as at an office that does not ask an admin to confirm each
    /// key fingerprint: the tests of that confirmation turn it on.
    pub fn options(dir: &Path, pg: Option<&TempPgDatabase>) -> fieldcase_server::ServerOptions {
        let mut options = fieldcase_server::ServerOptions::new(dir, "127.0.0.1:0".parse().unwrap());
        options.database = pg.map(TempPgDatabase::config);
        options.limits.confirm_enrollment = false;
        options
    }

    /// `FIELDCASE_DATABASE_URL` for a `fieldcase-server` process on this server's database
    /// (`None` on SQLite).
    pub fn database_url(&self) -> Option<&str> {
        self.pg.as_ref().map(TempPgDatabase::url_text)
    }

    /// The running server.
    pub fn running(&self) -> &RunningServer {
        self.running.as_ref().expect("server is running")
    }

    /// Its address.
    pub fn addr(&self) -> SocketAddr {
        self.running().addr
    }

    /// Its certificate fingerprint.
    pub fn fingerprint(&self) -> Fingerprint {
        self.running().fingerprint
    }

    /// Stops the server and starts it again on the same data folder (on a new port).
    pub fn restart(&mut self) {
        if let Some(running) = self.running.take() {
            running.shutdown().unwrap();
        }
        self.running =
            Some(Server::start_with(Self::options(self.dir.path(), self.pg.as_ref())).unwrap());
    }

    /// Opens a web session for `user` now, as signing in to the office's pages does (admin
    /// changes through the admin API need one that is recent).
    pub fn sign_in_on_the_web(&self, user: UserId) {
        let now = now();
        self.with_sql(|sql| {
            fieldcase_server::office::sign_in::create_session(sql, *user.as_uuid(), now)
                .map(|_| ())
                .map_err(|_| fieldcase_server::error::SqlError::Refused("opening a session"))
        });
    }

    /// Adds a user.
    pub fn add_user(&self, name: &str, role: Role) -> UserId {
        let id = self
            .running()
            .state
            .db()
            .write(|sql| users::add_user(sql, name, role, now()))
            .unwrap();
        UserId::from_uuid(id)
    }

    /// Puts `user` on the default team, where [`TestServer::create_case`] opens cases: from then
    /// on she reads them at the office (an admin reads no case otherwise).
    pub fn join_default_team(&self, user: UserId) {
        self.running()
            .state
            .db()
            .write(|sql| {
                fieldcase_server::office::teams::set_member(
                    sql,
                    fieldcase_server::office::teams::DEFAULT_TEAM,
                    *user.as_uuid(),
                    true,
                    now(),
                )
            })
            .unwrap();
    }

    /// Issues an enrollment code for the user called `name`.
    pub fn enrollment_code(&self, name: &str) -> String {
        self.running()
            .state
            .db()
            .write(|sql| enrollment::issue_enrollment_code(sql, name, 900, now()))
            .unwrap()
            .code
    }

    /// Opens a case at the office for `workers`, with one task today at 10:00 Belgrade time.
    pub fn create_case(&self, client_code: &str, workers: &[UserId]) -> (CaseId, TaskId) {
        let state = &self.running().state;
        let vault = state.vault().clone();
        let new = NewCase {
            client_code: client_code.into(),
            consent: ConsentStatus::Given,
            assigned_workers: workers.to_vec(),
        };
        let task = NewTask {
            purpose: "ID card application".into(),
            office_kind: OfficeKind::RegistryOffice,
            office_name: "Matična služba".into(),
            office_address: "Novi Sad".into(),
            scheduled_at: time::OffsetDateTime::now_utc().replace_time(time::macros::time!(09:00)),
            time_zone: "Europe/Belgrade".into(),
            assignees: workers.to_vec(),
            checklist: vec![
                "birth certificate copy".into(),
                "ID application form".into(),
            ],
        };
        let (case, task) = state
            .db()
            .write(|sql| cases::create_case(sql, &vault, &new, Some(&task), now()))
            .unwrap()
            .keep(&vault);
        (case, task.unwrap())
    }

    /// The case as the office has it.
    pub fn case(&self, case: CaseId) -> Case {
        let state = &self.running().state;
        let vault = state.vault().clone();
        state
            .db()
            .read(|sql| cases::read_case(sql, &vault, case))
            .unwrap()
            .0
    }

    /// The conflicts the office sees in a case.
    pub fn conflicts(&self, case: CaseId) -> Vec<fieldcase_core::document::Conflict> {
        let state = &self.running().state;
        let vault = state.vault().clone();
        state
            .db()
            .read(|sql| cases::read_case(sql, &vault, case))
            .unwrap()
            .1
    }

    /// The attachments the office lists for a case, and whether it holds each whole.
    pub fn attachments(
        &self,
        case: CaseId,
    ) -> Vec<fieldcase_server::office::attachments::OfficeAttachment> {
        let state = &self.running().state;
        let vault = state.vault().clone();
        state
            .db()
            .read(|sql| fieldcase_server::office::attachments::list(sql, &vault, case))
            .unwrap()
            .keep(&vault)
    }

    /// The database file and its WAL.
    pub fn db_files(&self) -> Vec<PathBuf> {
        ["server.db", "server.db-wal"]
            .iter()
            .map(|n| self.dir.path().join(n))
            .filter(|p| p.exists())
            .collect()
    }
}

/// An enrolled phone with a real encrypted store.
pub struct TestDevice {
    /// The phone.
    pub device: Device,
    /// Its keystore stand-in (kept by the device, so its wipes destroy it).
    pub keys: Arc<StaticKeyProvider>,
    /// Its store folder.
    pub dir: tempfile::TempDir,
    /// Its clock.
    pub clock: Arc<ManualClock>,
}

/// Store options for test phones: a fast scrypt, a movable clock.
pub fn device_options(clock: &Arc<ManualClock>) -> StoreOptions {
    StoreOptions {
        clock: clock.clone(),
        scrypt_work_factor: 10,
        ..StoreOptions::default()
    }
}

impl TestDevice {
    /// Enrolls a phone for the user called `name`, reaching the server at `url`.
    pub fn enroll(server: &TestServer, name: &str, url: &str) -> Self {
        let code = server.enrollment_code(name);
        let dir = tempfile::tempdir().unwrap();
        let keys = Arc::new(StaticKeyProvider::random());
        let clock = Arc::new(ManualClock::new(time::OffsetDateTime::now_utc()));
        let device = Device::enroll(
            dir.path(),
            &ServerAddress {
                url: url.into(),
                pin: server.fingerprint(),
            },
            &code,
            KeySetup {
                keystore: Some(&keys),
                passphrase: None,
            },
            device_options(&clock),
        )
        .unwrap();
        // As the bindings do: every wipe of the device destroys the keystore's key.
        device.keep_keystore(keys.clone());
        Self {
            device,
            keys,
            dir,
            clock,
        }
    }

    /// Enrolls a phone reaching the server directly.
    pub fn enroll_direct(server: &TestServer, name: &str) -> Self {
        Self::enroll(server, name, &format!("https://{}", server.addr()))
    }

    /// This phone's device id.
    pub fn id(&self) -> fieldcase_core::ids::DeviceId {
        self.device.store().author().unwrap().device
    }

    /// The phone's store folder.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a visit note.
    pub fn write_note(&self, case: CaseId, body: &str) -> fieldcase_core::ids::NoteId {
        self.device
            .store()
            .write_note(
                case,
                &NewNote {
                    kind: NoteKind::Visit,
                    body: body.into(),
                    tags: vec![],
                    task: None,
                },
            )
            .unwrap()
    }

    /// The case as this phone has it.
    pub fn case(&self, case: CaseId) -> Case {
        self.device.store().case(case).unwrap()
    }
}

impl TestServer {
    /// Starts a server whose clock moves only when told and whose offline lease lasts `lease`.
    pub fn start_with_clock(
        clock: fieldcase_server::ManualClock,
        lease: std::time::Duration,
    ) -> Self {
        Self::start_with_limits(clock, |limits| limits.lease = lease)
    }

    /// Starts a server with a manual clock and adjusted limits.
    pub fn start_with_limits(
        clock: fieldcase_server::ManualClock,
        adjust: impl FnOnce(&mut fieldcase_server::Limits),
    ) -> Self {
        Self::start_adjusted(Some(clock), adjust)
    }

    /// Starts a server with limits changed by `adjust`, on the system clock unless `clock` is
    /// given.
    pub fn start_adjusted(
        clock: Option<fieldcase_server::ManualClock>,
        adjust: impl FnOnce(&mut fieldcase_server::Limits),
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let pg = fresh_database();
        let mut options = Self::options(dir.path(), pg.as_ref());
        if let Some(clock) = clock {
            options.clock = Arc::new(clock);
        }
        adjust(&mut options.limits);
        let running = Server::start_with(options).unwrap();
        Self {
            running: Some(running),
            dir,
            pg,
        }
    }

    /// Revokes a device (as `admin revoke` does).
    pub fn revoke(&self, device: fieldcase_core::ids::DeviceId) {
        self.with_sql(|sql| {
            sql.execute(
                "UPDATE devices SET status = 'revoked', revoked_at = ?2 WHERE id = ?1",
                fieldcase_server::sql_params![&device.to_string(), now()],
            )
        });
    }

    /// Closes a case at the office.
    pub fn close_case(&self, case: CaseId) {
        let state = &self.running().state;
        let vault = state.vault().clone();
        let at = state.now();
        state
            .db()
            .write(|sql| {
                cases::set_status(
                    sql,
                    &vault,
                    case,
                    fieldcase_core::model::CaseStatus::Closed,
                    at,
                )
            })
            .unwrap()
            .keep(&vault);
    }

    /// Gives a case to a worker at the office.
    pub fn assign(&self, case: CaseId, user: UserId) {
        let state = &self.running().state;
        let vault = state.vault().clone();
        state
            .db()
            .write(|sql| cases::set_assigned(sql, &vault, case, user, true, now()))
            .unwrap()
            .keep(&vault);
    }

    /// Removes a worker from a case at the office.
    pub fn unassign(&self, case: CaseId, user: UserId) {
        let state = &self.running().state;
        let vault = state.vault().clone();
        state
            .db()
            .write(|sql| cases::set_assigned(sql, &vault, case, user, false, now()))
            .unwrap()
            .keep(&vault);
    }

    /// Runs `f` on the server's SQLite file through a connection of its own (the file is
    /// in WAL mode, so this works while the server runs). SQLite only: tests that run on
    /// both backends use [`TestServer::with_sql`].
    pub fn with_db<T>(
        &self,
        f: impl FnOnce(&mut rusqlite::Connection) -> rusqlite::Result<T>,
    ) -> T {
        let mut conn = rusqlite::Connection::open(
            self.dir
                .path()
                .join(fieldcase_server::storage::sql::DB_FILE),
        )
        .unwrap();
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .unwrap();
        f(&mut conn).unwrap()
    }

    /// Runs `f` in a write transaction of the server's database, whichever backend it is.
    pub fn with_sql<T>(
        &self,
        f: impl FnOnce(
            &mut dyn fieldcase_server::storage::sql::Sql,
        ) -> Result<T, fieldcase_server::error::SqlError>,
    ) -> T {
        self.running().state.db().write(f).unwrap()
    }
}

impl TestServer {
    /// Adds a user with a web password.
    pub fn add_web_user(&self, name: &str, role: Role, password: &str) -> UserId {
        let id = self.add_user(name, role);
        self.running()
            .state
            .db()
            .write(|sql| {
                fieldcase_server::office::sign_in::set_password(sql, name, password, now())
            })
            .unwrap();
        id
    }
}

/// Adds `per_case` notes to each of `cases` at the office through the server's own storage of
/// the sync hub (`SqlHub`: its `case_doc` and `store_case`, as a sync request stores what it
/// received), a hundred cases to a transaction; the notes are the office's own edits. `body(c, i)`
/// is the text of note `i` of the `c`-th case. How the benchmarks and the load run give an office
/// a large caseload in little time.
pub fn office_notes(
    database: &fieldcase_server::storage::sql::Database,
    vault: &Arc<fieldcase_server::storage::case_docs::CaseVault>,
    now: i64,
    cases: &[CaseId],
    per_case: usize,
    body: &dyn Fn(usize, usize) -> String,
) -> Result<(), fieldcase_server::ServerError> {
    use fieldcase_core::sync::hub::HubStorage;
    let at = time::OffsetDateTime::from_unix_timestamp(now).unwrap();
    for (b, batch) in cases.chunks(100).enumerate() {
        let loaded = database.write(|sql| {
            let mut hub = fieldcase_server::office::hub::SqlHub::new(sql, vault, now, 0);
            for (k, case) in batch.iter().enumerate() {
                let doc = hub.case_doc(*case)?.expect("a case of this office");
                for i in 0..per_case {
                    doc.add_note(
                        vault.office,
                        &NewNote {
                            kind: NoteKind::Visit,
                            body: body(b * 100 + k, i),
                            tags: vec![],
                            task: None,
                        },
                        at,
                    )?;
                }
                hub.store_case(*case, None)?;
            }
            Ok::<_, fieldcase_server::ServerError>(hub.into_loaded().collect::<Vec<_>>())
        })?;
        // Committed: the documents in memory are what is stored.
        vault.keep(loaded);
    }
    Ok(())
}
