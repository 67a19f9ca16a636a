//! Crash safety with real processes: the real `fieldcase-server` binary and a phone process
//! (`crash-device`, the real core `Device` API writing notes and syncing over TLS) are killed
//! with SIGKILL at random moments while the phone writes and syncs, then started again. After
//! every kill: the killed side's SQLite file passes `PRAGMA integrity_check`, every note the
//! phone had acknowledged (its `write_note` returned) is in the phone's store, and every note the
//! server had acknowledged (a sync that carried it returned) is at the office. At the end a clean
//! sync brings every note the phone ever acknowledged to the office, and both hold the same case.
//!
//! The test command makes 100 kills; `FIELDCASE_CRASH_KILLS=1000 cargo test --release -p
//! fieldcase-tests --test crash` is the soak. `FIELDCASE_CRASH_SEED=N` replays a schedule of kill
//! moments (the processes' own timing still varies).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use fieldcase_core::clock::ManualClock;
use fieldcase_core::crypto::StaticKeyProvider;
use fieldcase_core::device::{Device, ServerAddress};
use fieldcase_core::ids::{CaseId, UserId};
use fieldcase_core::model::{Case, ConsentStatus, NewCase};
use fieldcase_core::protocol::Role;
use fieldcase_core::store::KeySetup;
use fieldcase_server::http::tls::TlsIdentity;
use fieldcase_server::office::cases;
use fieldcase_server::office::{enrollment, users};
use fieldcase_server::storage::case_docs::CaseVault;
use fieldcase_server::storage::keys::ServerKeys;
use fieldcase_server::storage::sql::{self, Database};
use fieldcase_tests::device_options;
use fieldcase_tests::process::{ServerProcess, free_port, server_binary};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const KEY: u8 = 0x5c;
const CASES: usize = 3;
const DEFAULT_KILLS: usize = 100;

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// The office database opened as the server opens it (another process may be serving it).
fn office(data: &Path) -> (Database, Arc<CaseVault>) {
    let keys = ServerKeys::load_or_create(data).unwrap();
    let db = Database::from_sqlite(sql::open_sqlite(&data.join(sql::DB_FILE)).unwrap())
        .with_record_key(
            keys.derive(fieldcase_server::office::audit::KEY_PURPOSE)
                .unwrap(),
        );
    let vault = db
        .write(|sql| CaseVault::load_or_create(sql, &keys))
        .unwrap();
    (db, vault)
}

fn integrity(path: &Path) -> String {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap()
}

fn office_notes(data: &Path, cases: &[CaseId]) -> BTreeSet<String> {
    let (office_db, vault) = office(data);
    let mut notes = BTreeSet::new();
    for case in cases {
        let case = office_db
            .read(|sql| cases::read_case(sql, &vault, *case))
            .unwrap()
            .0;
        notes.extend(case.notes.iter().map(|n| n.id.to_string()));
    }
    notes
}

fn open_phone(dir: &Path) -> Device {
    let clock = Arc::new(ManualClock::new(time::OffsetDateTime::now_utc()));
    let device = Device::open(dir, device_options(&clock)).unwrap();
    device
        .store()
        .unlock_with_keystore(&StaticKeyProvider::new([KEY; 32]))
        .unwrap();
    device
}

fn phone_cases(device: &Device, cases: &[CaseId]) -> Vec<Case> {
    cases
        .iter()
        .map(|c| device.store().case(*c).unwrap())
        .collect()
}

/// What the phone process said, line by line, as the parent heard it.
#[derive(Default)]
struct Heard {
    /// Notes the phone acknowledged, in order.
    written: Vec<String>,
    /// How many of `written` the office has acknowledged (a sync that started after them
    /// returned).
    office_acknowledged: usize,
    /// `written.len()` when the current sync started.
    sync_started_at: Option<usize>,
    syncs: usize,
}

impl Heard {
    fn hear(&mut self, line: &str) {
        if let Some(id) = line.strip_prefix("written ") {
            self.written.push(id.to_owned());
        } else if line == "sync-start" {
            self.sync_started_at = Some(self.written.len());
        } else if line == "synced" {
            let at = self
                .sync_started_at
                .take()
                .expect("synced without sync-start");
            self.office_acknowledged = self.office_acknowledged.max(at);
            self.syncs += 1;
        } else if line == "sync-failed" {
            self.sync_started_at = None;
        } else if let Some(why) = line.strip_prefix("sync-error ") {
            panic!("the phone's sync failed with more than a network error: {why}");
        }
    }
}

struct PhoneProcess {
    child: Child,
    lines: Receiver<String>,
}

impl PhoneProcess {
    fn start(dir: &Path, heard: &mut Heard) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_crash-device"))
            .arg(dir)
            .arg(KEY.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let mut phone = PhoneProcess { child, lines };
        let ready = phone
            .lines
            .recv_timeout(Duration::from_secs(60))
            .expect("the phone process started");
        assert_eq!(ready, "ready");
        phone.listen(heard, Duration::ZERO);
        phone
    }

    /// Takes in what the phone says for `time`.
    fn listen(&mut self, heard: &mut Heard, time: Duration) {
        let until = Instant::now() + time;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => heard.hear(&line),
                Err(RecvTimeoutError::Timeout) => return,
                Err(RecvTimeoutError::Disconnected) => panic!("the phone process stopped"),
            }
        }
    }

    /// SIGKILL, then everything it said before dying.
    fn kill(mut self, heard: &mut Heard) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(10)) {
            heard.hear(&line);
        }
    }
}

#[test]
fn killed_server_and_phone_processes_lose_no_acknowledged_change() {
    let kills: usize = std::env::var("FIELDCASE_CRASH_KILLS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_KILLS);
    let seed: u64 = std::env::var("FIELDCASE_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed);
    let mut rng = StdRng::seed_from_u64(seed);
    let data = tempfile::tempdir().unwrap();
    let phone_dir = tempfile::tempdir().unwrap();
    let mut server = ServerProcess::start(&server_binary(), data.path(), free_port());

    // The office: a worker, three cases, an enrollment code; the phone enrolls and syncs.
    let (office_db, vault) = office(data.path());
    let worker = UserId::from_uuid(
        office_db
            .write(|sql| users::add_user(sql, "ana", Role::FieldWorker, now()))
            .unwrap(),
    );
    let case_ids: Vec<CaseId> = (0..CASES)
        .map(|c| {
            let new = NewCase {
                client_code: format!("K-{c:04}"),
                consent: ConsentStatus::Given,
                assigned_workers: vec![worker],
            };
            office_db
                .write(|sql| cases::create_case(sql, &vault, &new, None, now()))
                .unwrap()
                .keep(&vault)
                .0
        })
        .collect();
    let code = office_db
        .write(|sql| enrollment::issue_enrollment_code(sql, "ana", 900, now()))
        .unwrap()
        .code;
    drop(office_db);
    let pin = TlsIdentity::load_or_create(data.path())
        .unwrap()
        .fingerprint();
    let clock = Arc::new(ManualClock::new(time::OffsetDateTime::now_utc()));
    let keys = StaticKeyProvider::new([KEY; 32]);
    let device = Device::enroll(
        phone_dir.path(),
        &ServerAddress {
            url: server.url(),
            pin,
        },
        &code,
        KeySetup {
            keystore: Some(&keys),
            passphrase: None,
        },
        device_options(&clock),
    )
    .unwrap();
    device.sync_now().unwrap();
    drop(device);

    let mut heard = Heard::default();
    let mut phone = PhoneProcess::start(phone_dir.path(), &mut heard);
    let (mut server_kills, mut phone_kills, mut mid_sync) = (0, 0, 0);
    for kill in 0..kills {
        let wait = Duration::from_millis(rng.gen_range(10..250));
        phone.listen(&mut heard, wait);
        if heard.sync_started_at.is_some() {
            mid_sync += 1;
        }
        if rng.gen_bool(0.5) {
            server.kill();
            server_kills += 1;
            let check = integrity(&data.path().join(sql::DB_FILE));
            assert_eq!(check, "ok", "server.db after kill {kill}");
            server.restart();
        } else {
            phone.kill(&mut heard);
            phone_kills += 1;
            let check = integrity(&phone_dir.path().join(fieldcase_core::store::DB_FILE));
            assert_eq!(check, "ok", "phone store after kill {kill}");
            let device = open_phone(phone_dir.path());
            let held: BTreeSet<String> = phone_cases(&device, &case_ids)
                .iter()
                .flat_map(|c| c.notes.iter().map(|n| n.id.to_string()))
                .collect();
            drop(device);
            for id in &heard.written {
                assert!(
                    held.contains(id),
                    "kill {kill}: the phone lost note {id} it had acknowledged"
                );
            }
            phone = PhoneProcess::start(phone_dir.path(), &mut heard);
        }
        let at_office = office_notes(data.path(), &case_ids);
        for id in &heard.written[..heard.office_acknowledged] {
            assert!(
                at_office.contains(id),
                "kill {kill}: the office lost note {id} it had acknowledged"
            );
        }
    }
    phone.kill(&mut heard);

    // Back to calm: one clean sync, and the phone and the office hold the same cases.
    let device = open_phone(phone_dir.path());
    device.sync_now().unwrap();
    let at_office = office_notes(data.path(), &case_ids);
    for id in &heard.written {
        assert!(at_office.contains(id), "note {id} never reached the office");
    }
    let (office_db, vault) = office(data.path());
    for case in phone_cases(&device, &case_ids) {
        let stored = office_db
            .read(|sql| cases::read_case(sql, &vault, case.id))
            .unwrap()
            .0;
        assert_eq!(case, stored);
    }
    assert!(device.store().pending_changes().unwrap().is_empty());
    assert!(server.is_running());
    assert!(heard.syncs > 0, "the phone never synced");
    eprintln!(
        "crash: {kills} kills ({server_kills} server, {phone_kills} phone, {mid_sync} during a \
         sync), {} notes acknowledged by the phone, {} by the office before the last kill, {} \
         syncs; nothing lost",
        heard.written.len(),
        heard.office_acknowledged,
        heard.syncs
    );
}
