//! The benchmark suite: fieldcase sync over real TLS on 127.0.0.1 beside the reference
//! automerge-repo sync server (Node, from npm), beside samod (the Rust automerge-repo, built from
//! `bench/samod`) and beside raw in-memory automerge sync.
//!
//! Run it with `scripts/bench [--quick|--full]`, which installs the reference server's packages,
//! builds samod-bench, and then runs `cargo bench -p fieldcase-tests --bench suite -- MODE`. The
//! Node reference and samod take the same commands and run through the same scenario functions
//! (`reference_run`, `reference_office_load`, `reference_mobile`). It starts every process
//! it needs, stops them, and writes `results/<timestamp>/` (Markdown table, SVG plot, raw JSON).
//!
//! Processes: this binary is the orchestrator; it starts itself again as the office server
//! (`server`) and as the phone of a first sync (`device-upload`, `device-download`), so that the
//! peak memory (`VmHWM` of `/proc/PID/status`, reset through `clear_refs` before each phase) of
//! each side is its own. The incremental, day-offline, office-load and 3G phones run inside the
//! orchestrator against the server process.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    clippy::too_many_lines
)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use fieldcase_core::device::{Device, ServerAddress};
use fieldcase_core::ids::{CaseId, TaskId};
use fieldcase_core::model::{NewNote, NoteKind, TaskStatus, TaskUpdate};
use fieldcase_core::protocol::{Fingerprint, Role};
use fieldcase_core::store::KeySetup;
use fieldcase_tests::proxy::Link;
use fieldcase_tests::{FaultProxy, TestServer, office_notes};
use serde_json::{Value, json};

const NOTES_PER_CASE: usize = 20;

fn note(i: usize) -> String {
    format!(
        "Visit {i}: went with the client to the centre; the officer took the application, asked for the birth certificate copy, and set the interview for next week. Client calm."
    )
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    match args.first().map(String::as_str) {
        Some("server") => server_main(
            args.get(1).map(PathBuf::from),
            std::env::var(BENCH_DATABASE_URL).ok(),
        ),
        Some("seed-office") => seed_office_main(&args[1..]),
        Some("device-upload") => device_upload(&args[1..]),
        Some("device-download") => device_download(&args[1..]),
        Some("device-incremental") => device_incremental(&args[1..]),
        _ => orchestrate(&args),
    }
}

// ---------------------------------------------------------------------------------------------
// Peak memory

fn vm_hwm_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// CPU time (user + system) a process has used, in milliseconds: steadier than wall time on a
/// machine shared with other work.
fn cpu_ms(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at field 3.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15, i.e. 11 and 12 after the name; 100 ticks a second.
    (ticks(11) + ticks(12)) * 10.0
}

/// Resets the peak to the current resident size (Linux `clear_refs` 5).
fn reset_hwm(pid: u32) {
    let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");
}

/// The total size of the files under `dir` (what a reference server's storage takes on disk).
fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_bytes(&e.path()),
            Ok(_) => e.metadata().map(|m| m.len()).unwrap_or(0),
            Err(_) => 0,
        })
        .sum()
}

// ---------------------------------------------------------------------------------------------
// Child processes that answer in JSON lines, read by a thread so that every wait is bounded.

struct LineChild {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
}

impl LineChild {
    /// Starts `cmd` with stdout piped (and stdin piped when `talk`, else closed).
    fn spawn(mut cmd: Command, talk: bool) -> Self {
        let mut child = cmd
            .stdin(if talk { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in stdout.lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            child,
            stdin,
            lines,
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn send(&mut self, line: &str) {
        if let Some(stdin) = self.stdin.as_mut() {
            let _ = writeln!(stdin, "{line}");
            let _ = stdin.flush();
        }
    }

    /// The next line that is JSON, within `timeout`; `Err` says why not (timeout or exit).
    fn next(&mut self, timeout: Duration) -> Result<Value, String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    if let Ok(v) = serde_json::from_str::<Value>(&line) {
                        return Ok(v);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    return Err(format!("timeout after {} s", timeout.as_secs()));
                }
                Err(RecvTimeoutError::Disconnected) => return Err("process ended".into()),
            }
        }
    }

    /// The last JSON line before the process ends, within `timeout` (else it is killed).
    fn last(mut self, timeout: Duration) -> Result<Value, String> {
        let deadline = Instant::now() + timeout;
        let mut last = None;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    if let Ok(v) = serde_json::from_str::<Value>(&line) {
                        last = Some(v);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    self.kill();
                    return Err(format!("timeout after {} s", timeout.as_secs()));
                }
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        let status = self.child.wait();
        match (last, status) {
            (Some(v), Ok(st)) if st.success() => Ok(v),
            (Some(v), _) if v["error"].is_string() => Err(v["error"].as_str().unwrap().to_owned()),
            _ => Err("process failed".into()),
        }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Closes stdin and waits up to `timeout` for the process to end, then kills it.
    fn finish(mut self, timeout: Duration) {
        drop(self.stdin.take());
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill();
    }
}

// ---------------------------------------------------------------------------------------------
// The office server as its own process, driven by lines on stdin.

/// The variable that hands a server process its PostgreSQL URL (it holds a password: not an
/// argument, which other users of the machine could read in `ps`).
const BENCH_DATABASE_URL: &str = "FIELDCASE_BENCH_DATABASE_URL";

/// `server [DIR]`: the office server, on a fresh data folder or on `DIR` (made by `seed-office`,
/// or by the orchestrator for the PostgreSQL rows), and on the SQLite file of the data folder or,
/// when [`BENCH_DATABASE_URL`] is set, that PostgreSQL database (one database shared by several
/// instances).
fn server_main(data: Option<PathBuf>, database: Option<String>) {
    // Every simulated phone connects from 127.0.0.1: lift the per-address connection cap that
    // would otherwise treat hundreds of phones as one client, and let its phones sync without an
    // admin confirming each.
    let lift = |l: &mut fieldcase_server::Limits| {
        l.max_connections_per_address = 100_000;
        l.confirm_enrollment = false;
    };
    let server = match data {
        None => TestServer::start_adjusted(None, lift),
        Some(dir) => {
            let mut options =
                fieldcase_server::ServerOptions::new(&dir, "127.0.0.1:0".parse().unwrap());
            options.database = database
                .map(|url| fieldcase_server::storage::sql::DatabaseConfig::parse(&url).unwrap());
            lift(&mut options.limits);
            TestServer {
                running: Some(fieldcase_server::Server::start_with(options).unwrap()),
                // Unused: the data folder is `dir`, owned by the orchestrator.
                dir: tempfile::tempdir().unwrap(),
                // The database, if not the folder's SQLite file, is the orchestrator's too.
                pg: None,
            }
        }
    };
    let mut users = BTreeMap::new();
    println!(
        "{}",
        json!({"addr": server.addr().to_string(), "fingerprint": server.fingerprint().to_string()})
    );
    let stdin = std::io::stdin();
    for line in stdin.lock().lines() {
        let line = line.unwrap();
        let words: Vec<&str> = line.split_whitespace().collect();
        let answer = match words.as_slice() {
            ["user", name] => {
                let id = server.add_user(name, Role::FieldWorker);
                users.insert((*name).to_owned(), id);
                json!({"ok": true})
            }
            ["code", name] => json!({"code": server.enrollment_code(name)}),
            ["cases", n, name] => {
                let user = users[*name];
                let n: usize = n.parse().unwrap();
                let made: Vec<(CaseId, TaskId)> = (0..n)
                    .map(|i| server.create_case(&format!("K-{name}-{i:05}"), &[user]))
                    .collect();
                json!({
                    "cases": made.iter().map(|(c, _)| c.to_string()).collect::<Vec<_>>(),
                    "tasks": made.iter().map(|(_, t)| t.to_string()).collect::<Vec<_>>(),
                })
            }
            ["office-change", k] => {
                let state = &server.running().state;
                let mut cases = state
                    .db()
                    .read(|sql| fieldcase_server::office::cases::list_case_ids(sql))
                    .unwrap();
                cases.truncate(k.parse().unwrap());
                let vault = state.vault().clone();
                office_notes(state.db(), &vault, state.now(), &cases, 1, &|_, _| {
                    "follow-up call: the decision arrived, interview on Monday".to_owned()
                })
                .unwrap();
                json!({"ok": true})
            }
            ["quit"] => break,
            _ => json!({"error": line}),
        };
        println!("{answer}");
    }
    drop(server);
}

struct ServerProc {
    proc: LineChild,
    url: String,
    fingerprint: String,
}

/// How long an office command may take (seeding 10,000 cases is the longest).
const SERVER_COMMAND_TIMEOUT: Duration = Duration::from_secs(20 * 60);

impl ServerProc {
    fn start() -> Self {
        Self::start_on(None)
    }

    /// The server on a data folder made beforehand (`None`: a fresh one).
    fn start_on(data: Option<&Path>) -> Self {
        Self::start_with(data, None)
    }

    /// The server on a data folder and, when given, the PostgreSQL database at `database_url`.
    fn start_with(data: Option<&Path>, database_url: Option<&str>) -> Self {
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.arg("server");
        if let Some(dir) = data {
            cmd.arg(dir);
            if let Some(url) = database_url {
                cmd.env(BENCH_DATABASE_URL, url);
            }
        }
        let mut proc = LineChild::spawn(cmd, true);
        let v = proc
            .next(Duration::from_secs(60))
            .expect("the server process did not start");
        Self {
            proc,
            url: format!("https://{}", v["addr"].as_str().unwrap()),
            fingerprint: v["fingerprint"].as_str().unwrap().to_owned(),
        }
    }

    fn cmd(&mut self, line: &str) -> Value {
        self.cmd_within(line, SERVER_COMMAND_TIMEOUT)
            .unwrap_or_else(|e| panic!("office command {line:?}: {e}"))
    }

    fn cmd_within(&mut self, line: &str, timeout: Duration) -> Result<Value, String> {
        self.proc.send(line);
        self.proc.next(timeout)
    }

    fn pid(&self) -> u32 {
        self.proc.pid()
    }

    fn addr(&self) -> std::net::SocketAddr {
        self.url.trim_start_matches("https://").parse().unwrap()
    }

    fn fingerprint(&self) -> Fingerprint {
        Fingerprint(fieldcase_core::protocol::decode_hex_array(&self.fingerprint).unwrap())
    }

    /// Adds a user with `n` cases; returns the case and task ids.
    fn user_with_cases(&mut self, name: &str, n: usize) -> (Vec<CaseId>, Vec<TaskId>) {
        self.cmd(&format!("user {name}"));
        let v = self.cmd(&format!("cases {n} {name}"));
        let ids = |key: &str| -> Vec<String> {
            v[key]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_str().unwrap().to_owned())
                .collect()
        };
        (
            ids("cases").iter().map(|s| s.parse().unwrap()).collect(),
            ids("tasks").iter().map(|s| s.parse().unwrap()).collect(),
        )
    }

    fn code(&mut self, name: &str) -> String {
        self.cmd(&format!("code {name}"))["code"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    fn stop(mut self) {
        self.proc.send("quit");
        self.proc.finish(Duration::from_secs(60));
    }
}

/// `seed-office DIR N NOTES NAME`: makes the office's data folder `DIR` before its server starts
/// (as `tests/src/bin/load.rs` does): the field worker `NAME`, `N` cases assigned to them (one
/// task each, with `cases::create_case`), and `NOTES` notes in each written at the office. The
/// bench's way to hold 10,000 cases in a few minutes; its own process, so that the server's
/// memory figures do not carry the seeding. This connection commits with `synchronous = NORMAL`
/// (the server's own connection opens with `FULL` again).
fn seed_office_main(args: &[String]) {
    use fieldcase_server::office::{cases, users};
    use fieldcase_server::storage::keys::ServerKeys;
    use fieldcase_server::storage::sql;
    let dir = PathBuf::from(&args[0]);
    let (n, notes, name): (usize, usize, &str) =
        (args[1].parse().unwrap(), args[2].parse().unwrap(), &args[3]);
    fieldcase_server::storage::data_dir::prepare(&dir).unwrap();
    let keys = ServerKeys::load_or_create(&dir).unwrap();
    let conn = sql::open_sqlite(&dir.join(sql::DB_FILE)).unwrap();
    conn.pragma_update(None, "synchronous", "NORMAL").unwrap();
    let database = fieldcase_server::storage::sql::Database::from_sqlite(conn).with_record_key(
        keys.derive(fieldcase_server::office::audit::KEY_PURPOSE)
            .unwrap(),
    );
    let vault = database
        .write(|sql| fieldcase_server::storage::case_docs::CaseVault::load_or_create(sql, &keys))
        .unwrap();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let user = fieldcase_core::ids::UserId::from_uuid(
        database
            .write(|sql| users::add_user(sql, name, Role::FieldWorker, now))
            .unwrap(),
    );
    let t = Instant::now();
    let task = fieldcase_core::model::NewTask {
        purpose: "ID card application".into(),
        office_kind: fieldcase_core::model::OfficeKind::RegistryOffice,
        office_name: "Matična služba".into(),
        office_address: "Novi Sad".into(),
        scheduled_at: time::OffsetDateTime::now_utc().replace_time(time::macros::time!(09:00)),
        time_zone: "Europe/Belgrade".into(),
        assignees: vec![user],
        checklist: vec![
            "birth certificate copy".into(),
            "ID application form".into(),
        ],
    };
    let made: Vec<CaseId> = (0..n)
        .map(|i| {
            let new = fieldcase_core::model::NewCase {
                client_code: format!("K-S-{i:05}"),
                consent: fieldcase_core::model::ConsentStatus::Given,
                assigned_workers: vec![user],
            };
            database
                .write(|sql| cases::create_case(sql, &vault, &new, Some(&task), now))
                .unwrap()
                .keep(&vault)
                .0
        })
        .collect();
    office_notes(&database, &vault, now, &made, notes, &|c, i| {
        note(c * NOTES_PER_CASE + i)
    })
    .unwrap();
    println!(
        "{}",
        json!({"cases": n, "ms": t.elapsed().as_secs_f64() * 1e3})
    );
}

// ---------------------------------------------------------------------------------------------
// Phones

struct Phone {
    device: Device,
    _dir: tempfile::TempDir,
    _keys: fieldcase_core::crypto::StaticKeyProvider,
}

fn enroll(url: &str, fingerprint: Fingerprint, code: &str) -> Phone {
    let dir = tempfile::tempdir().unwrap();
    let keys = fieldcase_core::crypto::StaticKeyProvider::random();
    let clock = Arc::new(fieldcase_core::clock::ManualClock::new(
        time::OffsetDateTime::now_utc(),
    ));
    let device = Device::enroll(
        dir.path(),
        &ServerAddress {
            url: url.into(),
            pin: fingerprint,
        },
        code,
        KeySetup {
            keystore: Some(&keys),
            passphrase: None,
        },
        fieldcase_tests::device_options(&clock),
    )
    .unwrap();
    Phone {
        device,
        _dir: dir,
        _keys: keys,
    }
}

fn write_note(phone: &Phone, case: CaseId, body: &str) {
    phone
        .device
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
        .unwrap();
}

fn report_json(ms: f64, r: &fieldcase_core::sync::SyncReport, peak_kb: u64) -> Value {
    json!({
        "ms": ms, "sent": r.bytes_sent, "received": r.bytes_received,
        "round_trips": r.round_trips, "peak_kb": peak_kb,
    })
}

/// `device-upload URL FINGERPRINT CODE CASES_FILE`: a phone that received its cases writes
/// 20 notes in each offline, then syncs them up (timed).
fn device_upload(args: &[String]) {
    let fp = Fingerprint(fieldcase_core::protocol::decode_hex_array(&args[1]).unwrap());
    let phone = enroll(&args[0], fp, &args[2]);
    phone.device.sync_now().unwrap();
    let cases: Vec<CaseId> = std::fs::read_to_string(&args[3])
        .unwrap()
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    let t = Instant::now();
    for (c, case) in cases.iter().enumerate() {
        for i in 0..NOTES_PER_CASE {
            write_note(&phone, *case, &note(c * NOTES_PER_CASE + i));
        }
    }
    let write_ms = t.elapsed().as_secs_f64() * 1e3;
    reset_hwm(std::process::id());
    let cpu0 = cpu_ms(std::process::id());
    let t = Instant::now();
    let r = phone.device.sync_now().unwrap();
    let ms = t.elapsed().as_secs_f64() * 1e3;
    let mut out = report_json(ms, &r, vm_hwm_kb(std::process::id()));
    out["cpu_ms"] = json!(cpu_ms(std::process::id()) - cpu0);
    out["write_ms"] = json!(write_ms);
    println!("{out}");
}

/// `device-download URL FINGERPRINT CODE`: a newly enrolled phone's first sync (timed).
fn device_download(args: &[String]) {
    let fp = Fingerprint(fieldcase_core::protocol::decode_hex_array(&args[1]).unwrap());
    let phone = enroll(&args[0], fp, &args[2]);
    reset_hwm(std::process::id());
    let cpu0 = cpu_ms(std::process::id());
    let t = Instant::now();
    let r = phone.device.sync_now().unwrap();
    let ms = t.elapsed().as_secs_f64() * 1e3;
    let mut out = report_json(ms, &r, vm_hwm_kb(std::process::id()));
    out["cpu_ms"] = json!(cpu_ms(std::process::id()) - cpu0);
    println!("{out}");
}

/// `device-incremental URL FINGERPRINT CODE`: a newly enrolled phone that syncs (timed) each
/// time it reads `sync` on stdin, until `quit`.
fn device_incremental(args: &[String]) {
    let fp = Fingerprint(fieldcase_core::protocol::decode_hex_array(&args[1]).unwrap());
    let phone = enroll(&args[0], fp, &args[2]);
    println!("{}", json!({"ready": true}));
    for line in std::io::stdin().lock().lines() {
        if line.unwrap().trim() != "sync" {
            break;
        }
        reset_hwm(std::process::id());
        let cpu0 = cpu_ms(std::process::id());
        let t = Instant::now();
        let r = phone.device.sync_now();
        let ms = t.elapsed().as_secs_f64() * 1e3;
        let out = match r {
            Ok(r) => {
                let mut out = report_json(ms, &r, vm_hwm_kb(std::process::id()));
                out["cpu_ms"] = json!(cpu_ms(std::process::id()) - cpu0);
                out
            }
            Err(e) => json!({"error": e.to_string()}),
        };
        println!("{out}");
    }
}

fn run_child(args: &[&str]) -> Value {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(args)
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    assert!(out.status.success(), "{args:?} failed");
    let text = String::from_utf8(out.stdout).unwrap();
    serde_json::from_str(text.lines().last().unwrap()).unwrap()
}

// ---------------------------------------------------------------------------------------------
// Raw in-memory automerge sync of the same documents

fn case_docs(n: usize) -> Vec<Vec<u8>> {
    use fieldcase_core::document::CaseDoc;
    use fieldcase_core::model::{Author, ConsentStatus, NewCase};
    let actor = automerge::ActorId::random();
    let author = Author {
        user: fieldcase_core::ids::UserId::new(),
        device: fieldcase_core::ids::DeviceId::new(),
    };
    let now = time::OffsetDateTime::now_utc();
    (0..n)
        .map(|c| {
            let new = NewCase {
                client_code: format!("K-{c:05}"),
                consent: ConsentStatus::Given,
                assigned_workers: vec![author.user],
            };
            let mut doc = CaseDoc::create(CaseId::new(), &new, author, &actor, now).unwrap();
            // The office opens each case with one task, as the server's cases are made.
            doc.add_task(
                author,
                &fieldcase_core::model::NewTask {
                    purpose: "ID card application".into(),
                    office_kind: fieldcase_core::model::OfficeKind::RegistryOffice,
                    office_name: "Matična služba".into(),
                    office_address: "Novi Sad".into(),
                    scheduled_at: now.replace_time(time::macros::time!(09:00)),
                    time_zone: "Europe/Belgrade".into(),
                    assignees: vec![author.user],
                    checklist: vec![
                        "birth certificate copy".into(),
                        "ID application form".into(),
                    ],
                },
                now,
            )
            .unwrap();
            for i in 0..NOTES_PER_CASE {
                doc.add_note(
                    author,
                    &NewNote {
                        kind: NoteKind::Visit,
                        body: note(c * NOTES_PER_CASE + i),
                        tags: vec![],
                        task: None,
                    },
                    now,
                )
                .unwrap();
            }
            doc.save()
        })
        .collect()
}

/// Syncs every document from a full peer to an empty one with `automerge::sync`, all documents
/// advancing together round by round; messages are encoded and decoded as a network would.
fn raw_sync(saved: &[Vec<u8>]) -> Value {
    use automerge::sync::{Message, State, SyncDoc};
    let mut full: Vec<automerge::AutoCommit> = saved
        .iter()
        .map(|b| automerge::AutoCommit::load(b).unwrap())
        .collect();
    let cpu0 = cpu_ms(std::process::id());
    let t = Instant::now();
    let mut empty: Vec<automerge::AutoCommit> = (0..saved.len())
        .map(|_| automerge::AutoCommit::new())
        .collect();
    let mut states: Vec<(State, State)> = (0..saved.len())
        .map(|_| (State::new(), State::new()))
        .collect();
    let (mut to_empty, mut to_full, mut rounds) = (0usize, 0usize, 0usize);
    loop {
        let mut moved = false;
        for i in 0..saved.len() {
            if let Some(m) = full[i].sync().generate_sync_message(&mut states[i].0) {
                let bytes = m.encode();
                to_empty += bytes.len();
                empty[i]
                    .sync()
                    .receive_sync_message(&mut states[i].1, Message::decode(&bytes).unwrap())
                    .unwrap();
                moved = true;
            }
            if let Some(m) = empty[i].sync().generate_sync_message(&mut states[i].1) {
                let bytes = m.encode();
                to_full += bytes.len();
                full[i]
                    .sync()
                    .receive_sync_message(&mut states[i].0, Message::decode(&bytes).unwrap())
                    .unwrap();
                moved = true;
            }
        }
        if !moved {
            break;
        }
        rounds += 1;
    }
    let ms = t.elapsed().as_secs_f64() * 1e3;
    let cpu = cpu_ms(std::process::id()) - cpu0;
    for (a, b) in full.iter_mut().zip(empty.iter_mut()) {
        assert_eq!(a.get_heads(), b.get_heads());
    }
    json!({"ms": ms, "cpu_ms": cpu, "sent": to_full, "received": to_empty, "round_trips": rounds})
}

// ---------------------------------------------------------------------------------------------
// The references: automerge-repo's sync server in Node, and samod (the Rust automerge-repo)

/// A reference implementation of automerge-repo that the suite runs beside fieldcase: a sync
/// server process and phone-like client processes that take the same commands (`seed`,
/// `upload`, `download`, `change`, `resync`, `download-cut`, `load`), each printing JSON lines.
/// Every reference scenario below runs either kind through the same steps.
struct Reference {
    kind: ReferenceKind,
}

enum ReferenceKind {
    /// `bench/reference/server.mjs` and `client.mjs`: automerge-repo 2.5 on Node.
    Node { dir: PathBuf },
    /// `bench/samod` (its own cargo workspace): the samod-bench binary, server and client.
    Samod { bin: PathBuf },
}

impl Reference {
    /// The Node reference, when `scripts/bench` has installed its packages.
    fn available(root: &Path) -> Option<Self> {
        let dir = root.join("bench/reference");
        dir.join("node_modules/@automerge/automerge-repo")
            .exists()
            .then_some(Self {
                kind: ReferenceKind::Node { dir },
            })
    }

    /// Where `scripts/bench` builds samod-bench (`bench/samod`'s own target folder).
    fn samod_bin(root: &Path) -> PathBuf {
        root.join("bench/samod/target/release/samod-bench")
    }

    /// samod, when `scripts/bench` has built samod-bench.
    fn samod(root: &Path) -> Option<Self> {
        let bin = Self::samod_bin(root);
        bin.exists().then_some(Self {
            kind: ReferenceKind::Samod { bin },
        })
    }

    /// The name its lines and errors go by.
    fn name(&self) -> &'static str {
        match self.kind {
            ReferenceKind::Node { .. } => "reference",
            ReferenceKind::Samod { .. } => "samod",
        }
    }

    /// A client process running `args`, with its own watchdog a little inside `timeout`.
    fn client_command(&self, args: &[&str], timeout: Duration) -> Command {
        let mut cmd = match &self.kind {
            ReferenceKind::Node { dir } => {
                let mut cmd = Command::new("node");
                cmd.arg(dir.join("client.mjs")).current_dir(dir);
                cmd
            }
            ReferenceKind::Samod { bin } => Command::new(bin),
        };
        cmd.args(args).env(
            "BENCH_TIMEOUT_MS",
            (timeout.saturating_sub(Duration::from_secs(5)).as_millis()).to_string(),
        );
        cmd
    }

    /// The sync server process on the storage folder `data`.
    fn server_command(&self, data: &Path) -> Command {
        match &self.kind {
            ReferenceKind::Node { dir } => {
                let mut cmd = Command::new("node");
                cmd.arg(dir.join("server.mjs")).arg(data).current_dir(dir);
                cmd
            }
            ReferenceKind::Samod { bin } => {
                let mut cmd = Command::new(bin);
                cmd.arg("server").arg(data);
                cmd
            }
        }
    }

    fn client(&self, args: &[&str]) -> Value {
        self.client_within(args, REFERENCE_CLIENT_TIMEOUT)
    }

    /// Runs one client to its end, within `timeout`. The reference may give up (automerge-repo's
    /// own 60 s timeouts on a loaded machine) or overrun: record that and go on, rather than
    /// lose the whole run.
    fn client_within(&self, args: &[&str], timeout: Duration) -> Value {
        match LineChild::spawn(self.client_command(args, timeout), false).last(timeout) {
            Ok(v) => v,
            Err(e) => json!({"error": format!("{} client {}: {e}", self.name(), args[0])}),
        }
    }
}

/// The longest one reference client run may take.
const REFERENCE_CLIENT_TIMEOUT: Duration = Duration::from_secs(10 * 60);

/// A reference's sync server process on a temporary storage folder; it stops (flushing its
/// storage) when its stdin closes.
struct RefServer {
    proc: LineChild,
    port: u16,
    /// The server's storage folder, removed when the server is dropped.
    data: tempfile::TempDir,
}

impl RefServer {
    fn start(reference: &Reference) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut proc = LineChild::spawn(reference.server_command(dir.path()), true);
        let v = proc
            .next(Duration::from_secs(60))
            .unwrap_or_else(|e| panic!("the {} server did not start: {e}", reference.name()));
        Self {
            proc,
            port: u16::try_from(v["port"].as_u64().unwrap()).unwrap(),
            data: dir,
        }
    }

    fn pid(&self) -> u32 {
        self.proc.pid()
    }

    fn addr(&self) -> std::net::SocketAddr {
        format!("127.0.0.1:{}", self.port).parse().unwrap()
    }

    fn stop(self) {
        self.proc.finish(Duration::from_secs(60));
    }
}

/// One reference run at `n` documents: upload, first download, 10 changed, none changed.
fn reference_run(reference: &Reference, n: usize) -> Value {
    let server = RefServer::start(reference);
    let pid = server.pid();
    let proxy = FaultProxy::start(server.addr());
    let url = format!("ws://{}", proxy.addr);
    let work = tempfile::tempdir().unwrap();
    let urls = work.path().join("urls.json");
    let (a, b, o) = (
        work.path().join("a"),
        work.path().join("b"),
        work.path().join("office"),
    );
    let s = |p: &Path| p.to_str().unwrap().to_owned();
    let n_text = n.to_string();
    let notes = NOTES_PER_CASE.to_string();
    // The seed's line holds the saved size of one document, where the reference reports it.
    let seeded = reference.client(&["seed", &s(&a), &n_text, &notes, &s(&urls)]);
    let mut out = json!({ "seed": seeded });
    let mut step = |name: &str, args: &[&str]| {
        reset_hwm(pid);
        let cpu0 = cpu_ms(pid);
        let (up, down) = (proxy.bytes_to_server(), proxy.bytes_to_client());
        let mut v = reference.client(args);
        v["server_cpu_ms"] = json!(cpu_ms(pid) - cpu0);
        v["sent"] = json!(proxy.bytes_to_server() - up);
        v["received"] = json!(proxy.bytes_to_client() - down);
        v["server_peak_kb"] = json!(vm_hwm_kb(pid));
        // What the server's storage holds on disk after this step (written as it goes).
        v["server_storage_bytes"] = json!(dir_bytes(server.data.path()));
        println!("  {} {name:<12} {v}", reference.name());
        out[name] = v;
    };
    step("upload", &["upload", &s(&a), &url, &s(&urls)]);
    step("download", &["download", &s(&b), &url, &s(&urls)]);
    reference.client(&["change", &s(&o), &url, &s(&urls), "10"]);
    step("ten_changed", &["resync", &s(&b), &url, &s(&urls)]);
    step("none_changed", &["resync", &s(&b), &url, &s(&urls)]);
    server.stop();
    out
}

// ---------------------------------------------------------------------------------------------
// fieldcase runs

/// Scenarios 1 and 2 at `n` cases: upload (a phone's notes up), first sync of a new phone, 10
/// changed at the office, none changed.
fn fieldcase_run(n: usize) -> Value {
    let mut server = ServerProc::start();
    let (cases, _) = server.user_with_cases("ana", n);
    let work = tempfile::tempdir().unwrap();
    let cases_file = work.path().join("cases.txt");
    std::fs::write(
        &cases_file,
        cases.iter().map(|c| format!("{c}\n")).collect::<String>(),
    )
    .unwrap();
    let mut out = json!({});
    let url = server.url.clone();
    let fp = server.fingerprint.clone();

    let code = server.code("ana");
    reset_hwm(server.pid());
    let server_cpu = cpu_ms(server.pid());
    let mut up = run_child(&[
        "device-upload",
        &url,
        &fp,
        &code,
        cases_file.to_str().unwrap(),
    ]);
    up["server_peak_kb"] = json!(vm_hwm_kb(server.pid()));
    up["server_cpu_ms"] = json!(cpu_ms(server.pid()) - server_cpu);
    println!("  fieldcase upload       {up}");
    out["upload"] = up;

    let code = server.code("ana");
    reset_hwm(server.pid());
    let server_cpu = cpu_ms(server.pid());
    let mut down = run_child(&["device-download", &url, &fp, &code]);
    down["server_peak_kb"] = json!(vm_hwm_kb(server.pid()));
    down["server_cpu_ms"] = json!(cpu_ms(server.pid()) - server_cpu);
    println!("  fieldcase download     {down}");
    out["download"] = down;

    // Incremental: a phone holding everything; ten cases change through another phone.
    let (a, b) = (server.code("ana"), server.code("ana"));
    let phone = enroll(&url, server.fingerprint(), &a);
    phone.device.sync_now().unwrap();
    let office = enroll(&url, server.fingerprint(), &b);
    office.device.sync_now().unwrap();
    for case in &cases[..10] {
        write_note(
            &office,
            *case,
            "follow-up call: the decision arrived, interview on Monday",
        );
    }
    office.device.sync_now().unwrap();
    for (name, label) in [
        ("ten_changed", "10 changed"),
        ("none_changed", "none changed"),
    ] {
        reset_hwm(server.pid());
        let t = Instant::now();
        let r = phone.device.sync_now().unwrap();
        let mut v = report_json(t.elapsed().as_secs_f64() * 1e3, &r, 0);
        v["server_peak_kb"] = json!(vm_hwm_kb(server.pid()));
        println!("  fieldcase {label:<12} {v}");
        out[name] = v;
    }
    server.stop();
    out
}

/// Scenario 3: 200 notes and 50 task updates made offline over 50 cases, then one sync.
fn day_offline(n: usize) -> Value {
    let mut server = ServerProc::start();
    let (cases, tasks) = server.user_with_cases("ana", n.max(50));
    let code = server.code("ana");
    let phone = enroll(&server.url, server.fingerprint(), &code);
    phone.device.sync_now().unwrap();
    for (k, (case, task)) in cases.iter().zip(&tasks).take(50).enumerate() {
        for i in 0..4 {
            write_note(&phone, *case, &note(k * 4 + i));
        }
        phone
            .device
            .store()
            .update_task(
                *case,
                *task,
                &TaskUpdate {
                    status: Some(TaskStatus::Done),
                    outcome: Some("documents handed in; receipt kept".into()),
                    follow_up: None,
                    scheduled_at: None,
                },
            )
            .unwrap();
    }
    let t = Instant::now();
    let r = phone.device.sync_now().unwrap();
    let v = report_json(t.elapsed().as_secs_f64() * 1e3, &r, 0);
    println!("  fieldcase day offline  {v}");
    server.stop();
    v
}

/// Scenario 4: `d` phones (ten workers, five cases each) each make a small change and sync at
/// the same moment over TLS.
fn office_load(d: usize) -> Value {
    let mut server = ServerProc::start();
    let v = office_load_on(std::slice::from_mut(&mut server), d);
    println!("  fieldcase office load  {v}");
    server.stop();
    v
}

/// Scenario 4 on `servers` (one, or several instances on one database): ten workers with five
/// cases each, made through the first instance; `d` phones, phone `i` enrolled on and syncing
/// with instance `i % servers.len()`, each with one new note, all sync at the same moment.
/// Server peak and CPU are the sums over the instances.
fn office_load_on(servers: &mut [ServerProc], d: usize) -> Value {
    let workers = 10.min(d);
    let mut cases = Vec::new();
    for w in 0..workers {
        cases.push(servers[0].user_with_cases(&format!("w{w}"), 5).0);
    }
    let instances = servers.len();
    let phones: Vec<(Phone, CaseId)> = (0..d)
        .map(|i| {
            let code = servers[0].code(&format!("w{}", i % workers));
            let server = &servers[i % instances];
            let phone = enroll(&server.url, server.fingerprint(), &code);
            phone.device.sync_now().unwrap();
            let case = cases[i % workers][i % 5];
            write_note(
                &phone,
                case,
                &format!("phone {i}: client met at the centre"),
            );
            (phone, case)
        })
        .collect();
    for server in servers.iter() {
        reset_hwm(server.pid());
    }
    let cpu = |servers: &[ServerProc]| servers.iter().map(|s| cpu_ms(s.pid())).sum::<f64>();
    let server_cpu = cpu(servers);
    let barrier = Arc::new(Barrier::new(d + 1));
    let handles: Vec<_> = phones
        .into_iter()
        .map(|(phone, _)| {
            let barrier = barrier.clone();
            std::thread::Builder::new()
                .stack_size(512 * 1024)
                .spawn(move || {
                    barrier.wait();
                    let t = Instant::now();
                    let r = phone.device.sync_now();
                    (t.elapsed(), r.map_err(|e| e.to_string()), phone)
                })
                .unwrap()
        })
        .collect();
    barrier.wait();
    let t = Instant::now();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let wall = t.elapsed();
    let mut lat: Vec<f64> = results
        .iter()
        .map(|(e, _, _)| e.as_secs_f64() * 1e3)
        .collect();
    lat.sort_by(f64::total_cmp);
    let errors: Vec<&String> = results
        .iter()
        .filter_map(|(_, r, _)| r.as_ref().err())
        .collect();
    let pct = |p: f64| lat[((lat.len() as f64 - 1.0) * p).round() as usize];
    json!({
        "phones": d,
        "instances": instances,
        "wall_ms": wall.as_secs_f64() * 1e3,
        "syncs_per_s": d as f64 / wall.as_secs_f64(),
        "p50_ms": pct(0.5), "p99_ms": pct(0.99),
        "errors": errors.len(),
        "first_error": errors.first().map(|e| e.as_str()),
        "server_peak_kb": servers.iter().map(|s| vm_hwm_kb(s.pid())).sum::<u64>(),
        "server_cpu_ms": cpu(servers) - server_cpu,
    })
}

/// The backends figures: scenario 4 with `d` phones against one instance on the embedded SQLite
/// default, one instance on PostgreSQL, and two instances on one PostgreSQL database (each
/// with its own data folder holding copies of the same key file and TLS certificate, as a
/// deployment of several instances does), one after the other in this run. The PostgreSQL
/// server is `FIELDCASE_PG_URL` or the throwaway cluster of `scripts/postgres`; without one the
/// PostgreSQL rows say why they are missing.
fn office_load_backends(d: usize) -> Value {
    let mut rows = Vec::new();
    let mut sqlite = ServerProc::start();
    let mut v = office_load_on(std::slice::from_mut(&mut sqlite), d);
    sqlite.stop();
    v["backend"] = json!("SQLite (embedded)");
    println!("  backends  {v}");
    rows.push(v);
    for instances in [1, 2] {
        let backend = format!(
            "PostgreSQL, {instances} instance{}",
            if instances > 1 { "s" } else { "" }
        );
        let pg = match fieldcase_server::storage::testing::TempPgDatabase::create() {
            Ok(pg) => pg,
            Err(why) => {
                println!("  backends  {backend}: no PostgreSQL server ({why})");
                rows.push(json!({"backend": backend, "phones": d, "missing": why}));
                continue;
            }
        };
        let dirs: Vec<tempfile::TempDir> = (0..instances)
            .map(|_| tempfile::tempdir().unwrap())
            .collect();
        let mut servers = vec![ServerProc::start_with(
            Some(dirs[0].path()),
            Some(pg.url_text()),
        )];
        for dir in &dirs[1..] {
            for f in [
                fieldcase_server::storage::keys::KEY_FILE,
                fieldcase_server::http::tls::CERT_FILE,
                fieldcase_server::http::tls::CERT_KEY_FILE,
            ] {
                std::fs::copy(dirs[0].path().join(f), dir.path().join(f)).unwrap();
            }
            servers.push(ServerProc::start_with(
                Some(dir.path()),
                Some(pg.url_text()),
            ));
        }
        let mut v = office_load_on(&mut servers, d);
        for server in servers {
            server.stop();
        }
        drop(pg);
        v["backend"] = json!(backend);
        println!("  backends  {v}");
        rows.push(v);
    }
    json!(rows)
}

/// An office with `n` cases of one field worker, uploaded by a phone of hers (its own process),
/// and two more phones of hers enrolled through a fault proxy whose link is not shaped yet.
fn uploaded_behind_proxy(n: usize) -> (ServerProc, FaultProxy, Phone, Phone) {
    let mut server = ServerProc::start();
    let (cases, _) = server.user_with_cases("ana", n);
    let work = tempfile::tempdir().unwrap();
    let cases_file = work.path().join("cases.txt");
    std::fs::write(
        &cases_file,
        cases.iter().map(|c| format!("{c}\n")).collect::<String>(),
    )
    .unwrap();
    let code = server.code("ana");
    run_child(&[
        "device-upload",
        &server.url,
        &server.fingerprint,
        &code,
        cases_file.to_str().unwrap(),
    ]);
    let proxy = FaultProxy::start(server.addr());
    let url = proxy.url();
    let (a, b) = (server.code("ana"), server.code("ana"));
    let first = enroll(&url, server.fingerprint(), &a);
    let second = enroll(&url, server.fingerprint(), &b);
    (server, proxy, first, second)
}

/// Scenario 6: a phone on 3G (1 Mbit/s, 300 ms round trip): first sync of `n` cases, then a
/// first sync cut halfway and resumed.
fn mobile(n: usize) -> Value {
    let (server, proxy, phone, cut_phone) = uploaded_behind_proxy(n);
    proxy.set_link(Link::three_g());

    let down0 = proxy.bytes_to_client();
    let t = Instant::now();
    let r = phone.device.sync_now().unwrap();
    let first_ms = t.elapsed().as_secs_f64() * 1e3;
    let whole = proxy.bytes_to_client() - down0;

    proxy.cut_next_response_after(usize::try_from(whole / 2).unwrap());
    let down1 = proxy.bytes_to_client();
    let t = Instant::now();
    let cut = cut_phone.device.sync_now();
    let cut_ms = t.elapsed().as_secs_f64() * 1e3;
    let delivered = proxy.bytes_to_client() - down1;
    let down2 = proxy.bytes_to_client();
    let t = Instant::now();
    let resumed = cut_phone.device.sync_now();
    let resumed_ms = t.elapsed().as_secs_f64() * 1e3;
    let resent = proxy.bytes_to_client() - down2;
    let v = json!({
        "cases": n,
        "first_ms": first_ms, "first_wire_bytes": whole, "first": report_json(first_ms, &r, 0),
        "cut_ok": cut.is_err(), "cut_ms": cut_ms, "cut_delivered_bytes": delivered,
        "resumed_ok": resumed.is_ok(), "resumed_ms": resumed_ms, "resumed_wire_bytes": resent,
    });
    println!("  fieldcase 3G           {v}");
    server.stop();
    v
}

/// Scenario 7: a phone on EDGE (256 kbit/s, 600 ms round trip) whose link is cut now and then:
/// the first sync of `n` cases, its link cut a third of the way into the first attempt and a
/// third of the way into the second, the phone syncing again at once after each failure (as the
/// app's retry does) until a sync succeeds. The cut points are in bytes of the whole answer,
/// measured first by another phone on an unshaped link.
fn edge(n: usize) -> Value {
    let (server, proxy, measure, phone) = uploaded_behind_proxy(n);
    let down0 = proxy.bytes_to_client();
    measure.device.sync_now().unwrap();
    let whole = proxy.bytes_to_client() - down0;

    proxy.set_link(Link::edge());
    let cut_at = usize::try_from(whole / 3).unwrap();
    let down1 = proxy.bytes_to_client();
    let t = Instant::now();
    let mut attempts = 0;
    let mut cuts = 0;
    let mut done = None;
    while attempts < 10 {
        attempts += 1;
        if cuts < 2 {
            proxy.cut_next_response_after(cut_at);
        }
        match phone.device.sync_now() {
            Ok(r) => {
                done = Some(r);
                break;
            }
            Err(_) => cuts += 1,
        }
    }
    let total_ms = t.elapsed().as_secs_f64() * 1e3;
    let down = proxy.bytes_to_client() - down1;
    let held = phone
        .device
        .store()
        .list_cases()
        .map(|c| c.len())
        .unwrap_or(0);
    let v = json!({
        "cases": n,
        "ok": done.is_some() && held == n,
        "cases_on_phone": held,
        "total_ms": total_ms,
        "attempts": attempts,
        "cuts": cuts,
        "whole_wire_bytes": whole,
        "wire_bytes": down,
    });
    println!("  fieldcase EDGE         {v}");
    server.stop();
    v
}

/// Phone-like reference peers hosted by one client process (Node or samod-bench) in the
/// office-load scenario.
const REFERENCE_PEERS_PER_PROCESS: usize = 125;

/// Scenario 4 against a reference (Node or samod): 50 documents (ten workers, five each) opened
/// by an office peer and synced up; `d` peers, peer `i` holding the five documents of worker
/// `i % 10` (its own Repo, WebSocket and file-system storage), all change one document at the
/// same moment. Up to 125 peers share one client process (`client.mjs load`, `samod-bench load`).
/// Latency: from a peer's change until its view of the server's sync state shows the new heads; a
/// peer that does not get there within 120 s counts as an error, as does a process that fails or
/// overruns.
fn reference_office_load(reference: &Reference, d: usize) -> Value {
    let server = RefServer::start(reference);
    let pid = server.pid();
    let url = format!("ws://{}", server.addr());
    let work = tempfile::tempdir().unwrap();
    let s = |p: &Path| p.to_str().unwrap().to_owned();
    let (urls, office, phones) = (
        work.path().join("urls.json"),
        work.path().join("office"),
        work.path().join("phones"),
    );
    let workers = 10.min(d);
    let docs = (workers * 5).to_string();
    let fail = |what: &str, e: &str| json!({"phones": d, "errors": d, "first_error": format!("{what}: {e}")});
    let seeded = reference.client(&["seed", &s(&office), &docs, "0", &s(&urls)]);
    let up = reference.client(&["upload", &s(&office), &url, &s(&urls)]);
    if let Some(e) = seeded["error"].as_str().or(up["error"].as_str()) {
        server.stop();
        return fail("office documents", e);
    }
    let setup = Duration::from_secs(600);
    let run = Duration::from_secs(180);
    let mut procs: Vec<(usize, LineChild)> = (0..d)
        .step_by(REFERENCE_PEERS_PER_PROCESS)
        .map(|first| {
            let count = REFERENCE_PEERS_PER_PROCESS.min(d - first);
            let args = [
                "load".to_owned(),
                s(&phones),
                url.clone(),
                s(&urls),
                first.to_string(),
                count.to_string(),
                workers.to_string(),
                "5".to_owned(),
            ];
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            (
                count,
                LineChild::spawn(reference.client_command(&args, setup + run), true),
            )
        })
        .collect();
    let mut errors = 0usize;
    let mut first_error: Option<String> = None;
    let mut live = Vec::new();
    for (count, mut p) in procs.drain(..) {
        match p.next(setup) {
            Ok(v) if v["ready"].is_number() => live.push((count, p)),
            other => {
                errors += count;
                first_error.get_or_insert(format!("peers not ready: {other:?}"));
                p.kill();
            }
        }
    }
    reset_hwm(pid);
    let cpu0 = cpu_ms(pid);
    for (_, p) in &mut live {
        p.send("go");
    }
    let t = Instant::now();
    let mut lat: Vec<f64> = Vec::new();
    for (count, p) in live {
        match p.last(run.saturating_sub(t.elapsed())) {
            Ok(v) => {
                lat.extend(v["latencies_ms"].as_array().unwrap().iter().map(f));
                let e = usize::try_from(v["errors"].as_u64().unwrap_or(0)).unwrap();
                errors += e;
                if e > 0 {
                    first_error.get_or_insert(v["first_error"].as_str().unwrap_or("").to_owned());
                }
            }
            Err(e) => {
                errors += count;
                first_error.get_or_insert(e);
            }
        }
    }
    let wall = t.elapsed();
    lat.sort_by(f64::total_cmp);
    let pct =
        |p: f64| (!lat.is_empty()).then(|| lat[((lat.len() as f64 - 1.0) * p).round() as usize]);
    let v = json!({
        "phones": d,
        "processes": d.div_ceil(REFERENCE_PEERS_PER_PROCESS),
        "wall_ms": wall.as_secs_f64() * 1e3,
        "syncs_per_s": lat.len() as f64 / wall.as_secs_f64(),
        "p50_ms": pct(0.5), "p99_ms": pct(0.99),
        "errors": errors,
        "first_error": first_error,
        "server_peak_kb": vm_hwm_kb(pid),
        "server_cpu_ms": cpu_ms(pid) - cpu0,
    });
    println!("  {} office load  {v}", reference.name());
    server.stop();
    v
}

/// Scenario 6 against a reference (Node or samod), through the same shaped link: a fresh peer fetches `n`
/// documents of 20 notes; another fresh peer's fetch is cut when half the first one's bytes have
/// come back (it keeps what arrived, flushed to its storage), then it reconnects and syncs until
/// it holds the server's heads of every document.
fn reference_mobile(reference: &Reference, n: usize) -> Value {
    let server = RefServer::start(reference);
    let work = tempfile::tempdir().unwrap();
    let s = |p: &Path| p.to_str().unwrap().to_owned();
    let urls = work.path().join("urls.json");
    let [a, b, c] = ["a", "b", "c"].map(|d| work.path().join(d));
    let direct = format!("ws://{}", server.addr());
    reference.client(&[
        "seed",
        &s(&a),
        &n.to_string(),
        &NOTES_PER_CASE.to_string(),
        &s(&urls),
    ]);
    let up = reference.client(&["upload", &s(&a), &direct, &s(&urls)]);
    let proxy = FaultProxy::start_with(server.addr(), Link::three_g());
    let url = format!("ws://{}", proxy.addr);

    let down0 = proxy.bytes_to_client();
    let first = reference.client(&["download", &s(&b), &url, &s(&urls)]);
    let whole = proxy.bytes_to_client() - down0;

    proxy.cut_next_response_after(usize::try_from(whole / 2).unwrap());
    let down1 = proxy.bytes_to_client();
    let cut = reference.client(&["download-cut", &s(&c), &url, &s(&urls)]);
    let delivered = proxy.bytes_to_client() - down1;
    let down2 = proxy.bytes_to_client();
    let resumed = reference.client(&["resync", &s(&c), &url, &s(&urls)]);
    let resent = proxy.bytes_to_client() - down2;
    let ok = |v: &Value| !v["error"].is_string();
    let errors: Vec<&str> = [&up, &first, &cut, &resumed]
        .iter()
        .filter_map(|v| v["error"].as_str())
        .collect();
    let v = json!({
        "cases": n,
        "upload_ok": ok(&up),
        "first_ok": ok(&first), "first_ms": first["ms"], "first_wire_bytes": whole,
        "cut_ok": cut["cut"].as_bool() == Some(true), "cut_ms": cut["ms"],
        "cut_docs_ready": cut["docs_ready"], "cut_delivered_bytes": delivered,
        "resumed_ok": ok(&resumed), "resumed_ms": resumed["ms"], "resumed_wire_bytes": resent,
        "errors": errors,
    });
    println!("  {} 3G           {v}", reference.name());
    server.stop();
    v
}

/// Scenario 2 at large N: `n` cases of 20 notes made at the office (no phone), a newly enrolled
/// phone's first sync of them (its own process), then 10 cases changed at the office and the
/// phone's incremental sync, then a sync with nothing changed.
fn incremental_at_scale(n: usize) -> Value {
    let data = tempfile::tempdir().unwrap();
    let office = data.path().join("office");
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.arg("seed-office").arg(&office).args([
        n.to_string(),
        NOTES_PER_CASE.to_string(),
        "ana".into(),
    ]);
    let seeded = match LineChild::spawn(cmd, false).last(SERVER_COMMAND_TIMEOUT) {
        Ok(v) => v,
        Err(e) => return json!({"cases": n, "first": {"error": format!("seeding: {e}")}}),
    };
    println!(
        "  fieldcase seeded       {n} cases at the office in {:.0} ms",
        f(&seeded["ms"])
    );
    let mut server = ServerProc::start_on(Some(&office));
    let code = server.code("ana");
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "device-incremental",
        &server.url,
        &server.fingerprint,
        &code,
    ]);
    let mut phone = LineChild::spawn(cmd, true);
    let mut out = json!({"cases": n, "seed_ms": seeded["ms"]});
    let timeout = Duration::from_secs(15 * 60);
    let ready = phone.next(Duration::from_secs(60));
    let mut sync = |server: &ServerProc, phone: &mut LineChild, name: &str| -> bool {
        reset_hwm(server.pid());
        let cpu0 = cpu_ms(server.pid());
        phone.send("sync");
        let mut v = phone.next(timeout).unwrap_or_else(|e| json!({"error": e}));
        v["server_peak_kb"] = json!(vm_hwm_kb(server.pid()));
        v["server_cpu_ms"] = json!(cpu_ms(server.pid()) - cpu0);
        println!("  fieldcase at scale {name:<12} {v}");
        let ok = !v["error"].is_string();
        out[name] = v;
        ok
    };
    if ready.is_ok() && sync(&server, &mut phone, "first") {
        server.cmd("office-change 10");
        if sync(&server, &mut phone, "ten_changed") {
            sync(&server, &mut phone, "none_changed");
        }
    } else if let Err(e) = ready {
        out["first"] = json!({"error": e});
    }
    phone.send("quit");
    phone.finish(Duration::from_secs(60));
    server.stop();
    out
}

/// The cost of encryption on the phone's write and read paths, measured without a plaintext
/// switch in the product: the real path is timed, then the same seals (write) or opens (read),
/// on the same sizes, are timed alone with the same cipher; the ratio is real / (real − crypto).
fn crypto_cost() -> Value {
    use fieldcase_core::crypto::{DataKey, open, seal};
    let mut server = ServerProc::start();
    let (cases, _) = server.user_with_cases("ana", 50);
    let code = server.code("ana");
    let phone = enroll(&server.url, server.fingerprint(), &code);
    phone.device.sync_now().unwrap();
    let writes = cases.len() * NOTES_PER_CASE;
    let t = Instant::now();
    for (c, case) in cases.iter().enumerate() {
        for i in 0..NOTES_PER_CASE {
            write_note(&phone, *case, &note(c * NOTES_PER_CASE + i));
        }
    }
    let write_ms = t.elapsed().as_secs_f64() * 1e3 / writes as f64;
    // Cold reads: lock (drops every loaded document), unlock, read each case once.
    phone.device.store().lock().unwrap();
    phone
        .device
        .store()
        .unlock_with_keystore(&phone._keys)
        .unwrap();
    let t = Instant::now();
    for case in &cases {
        phone.device.store().case(*case).unwrap();
    }
    let read_ms = t.elapsed().as_secs_f64() * 1e3 / cases.len() as f64;
    server.stop();

    // What one note write seals: its change (~600 B), the case's index row (~400 B), its outbox
    // entry (~600 B), and one write in eight a compacted snapshot (~3 KB). A cold read opens the
    // snapshot and up to eight change rows (four on average) and nothing else.
    let key = DataKey::generate();
    let (change, index, snapshot) = (vec![7u8; 600], vec![7u8; 400], vec![7u8; 3000]);
    let rounds = 2000;
    let t = Instant::now();
    for i in 0..rounds {
        std::hint::black_box(seal(&key, b"aad", &change).unwrap());
        std::hint::black_box(seal(&key, b"aad", &index).unwrap());
        std::hint::black_box(seal(&key, b"aad", &change).unwrap());
        if i % 8 == 0 {
            std::hint::black_box(seal(&key, b"aad", &snapshot).unwrap());
        }
    }
    let seal_ms = t.elapsed().as_secs_f64() * 1e3 / rounds as f64;
    let (sealed_snapshot, sealed_change) = (
        seal(&key, b"aad", &snapshot).unwrap(),
        seal(&key, b"aad", &change).unwrap(),
    );
    let t = Instant::now();
    for _ in 0..rounds {
        std::hint::black_box(open(&key, b"aad", &sealed_snapshot, "bench").unwrap());
        for _ in 0..4 {
            std::hint::black_box(open(&key, b"aad", &sealed_change, "bench").unwrap());
        }
    }
    let open_ms = t.elapsed().as_secs_f64() * 1e3 / rounds as f64;
    let v = json!({
        "write_ms": write_ms, "write_crypto_ms": seal_ms,
        "write_ratio": write_ms / (write_ms - seal_ms).max(1e-9),
        "read_ms": read_ms, "read_crypto_ms": open_ms,
        "read_ratio": read_ms / (read_ms - open_ms).max(1e-9),
    });
    println!("  fieldcase encryption   {v}");
    v
}

// ---------------------------------------------------------------------------------------------
// Orchestration, table and plot

fn orchestrate(args: &[String]) {
    // The target folder is shared by several worktrees of this project: make sure the library
    // linked here is this tree's (wire format version 3), not another branch's build.
    let probe = fieldcase_core::sync::SyncRequest::default()
        .encode()
        .unwrap();
    assert!(
        probe.starts_with(b"FCSY") && fieldcase_core::sync::PROTOCOL_VERSION == 3,
        "this bench was linked against another tree's fieldcase-core: touch core/src/lib.rs and rebuild"
    );
    // `--render DIR`: write the table and plot again from DIR/results.json (a relative DIR is
    // taken from the workspace root: cargo runs benches in the package's folder).
    if let Some(dir) = args
        .iter()
        .position(|a| a == "--render")
        .and_then(|i| args.get(i + 1))
    {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join(dir);
        let all: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap())
                .unwrap();
        std::fs::write(dir.join("results.md"), markdown(&all)).unwrap();
        std::fs::write(dir.join("sync-time.svg"), svg(&all)).unwrap();
        println!("{}", markdown(&all));
        return;
    }
    if args.iter().any(|a| a == "--crypto") {
        crypto_cost();
        return;
    }
    let full = args.iter().any(|a| a == "--full" || a == "full");
    let skip_reference = args.iter().any(|a| a == "--no-reference");
    let (mut ns, loads, mobile_n, offline_n) = if full {
        // Phone-made sizes: 5,000 cases through a phone take a quarter hour more; the first
        // sync down at 5,000 and 10,000 is measured by the office-seeded runs below
        // (`--phone-cases 100,1000,5000` puts it back).
        (vec![100, 1000], vec![10, 100, 500], 200, 1000)
    } else {
        (vec![100, 300], vec![10, 50], 50, 100)
    };
    // `--phone-cases 100,1000,5000`: the sizes of the phone-made first sync (scenarios 1, 2, 5).
    if let Some(list) = args
        .iter()
        .position(|a| a == "--phone-cases")
        .and_then(|i| args.get(i + 1))
    {
        ns = list
            .split(',')
            .filter_map(|v| v.trim().parse().ok())
            .filter(|n| *n > 0)
            .collect();
    }
    // `--max-cases N`: leave out the larger sizes (the 5,000-case run takes a quarter hour).
    if let Some(max) = args
        .iter()
        .position(|a| a == "--max-cases")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse::<usize>().ok())
    {
        ns.retain(|n| *n <= max);
    }
    // `--incremental-cases 1000,10000`: the sizes of the office-seeded incremental scenario
    // (0 to leave it out).
    let mut incremental_ns: Vec<usize> = if full {
        vec![1000, 5000, 10000]
    } else {
        vec![100, 1000]
    };
    if let Some(list) = args
        .iter()
        .position(|a| a == "--incremental-cases")
        .and_then(|i| args.get(i + 1))
    {
        incremental_ns = list
            .split(',')
            .filter_map(|v| v.trim().parse().ok())
            .filter(|n| *n > 0)
            .collect();
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let stamp = time::OffsetDateTime::now_utc()
        .format(&time::macros::format_description!(
            "[year][month][day]-[hour][minute][second]"
        ))
        .unwrap();
    let out_dir = root.join("results").join(&stamp);
    std::fs::create_dir_all(&out_dir).unwrap();
    let reference = if skip_reference {
        None
    } else {
        Reference::available(&root)
    };
    if reference.is_none() && !skip_reference {
        eprintln!("reference packages are not installed: run scripts/bench, not cargo bench alone");
    }
    // samod, the Rust automerge-repo, beside the Node reference (`--no-samod` leaves it out).
    let skip_samod = args.iter().any(|a| a == "--no-samod");
    let samod = if skip_samod {
        None
    } else {
        Reference::samod(&root)
    };
    if samod.is_none() && !skip_samod {
        eprintln!(
            "samod-bench is not built ({}): run scripts/bench, or `cargo build --release --manifest-path bench/samod/Cargo.toml`; the samod columns are left out",
            Reference::samod_bin(&root).display()
        );
    }
    // `--only first,incremental,offline,load,backends,3g,edge,crypto`: run only these parts.
    let only: Option<Vec<String>> = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .map(|l| l.split(',').map(str::to_owned).collect());
    let part = |name: &str| only.as_ref().is_none_or(|o| o.iter().any(|p| p == name));
    if !part("first") {
        ns.clear();
    }
    if !part("incremental") {
        incremental_ns.clear();
    }
    let mut all = json!({"mode": if full { "full" } else { "quick" }, "runs": {}});
    for &n in &ns {
        println!("== {n} cases x {NOTES_PER_CASE} notes");
        let docs = case_docs(n);
        let mut raw = raw_sync(&docs);
        // One case document as automerge saves it, to set beside samod's.
        raw["doc_bytes"] = json!(docs.first().map(Vec::len));
        println!("  raw automerge sync     {raw}");
        let fc = fieldcase_run(n);
        let rf = reference.as_ref().map(|r| reference_run(r, n));
        let sm = samod.as_ref().map(|r| reference_run(r, n));
        all["runs"][n.to_string()] =
            json!({"raw": raw, "fieldcase": fc, "reference": rf, "samod": sm});
    }
    all["incremental"] = json!(
        incremental_ns
            .iter()
            .map(|&n| {
                println!("== incremental at scale: {n} cases made at the office");
                incremental_at_scale(n)
            })
            .collect::<Vec<_>>()
    );
    if part("offline") {
        println!("== a day offline");
        all["day_offline"] = day_offline(offline_n);
    }
    println!("== office load");
    all["office_load"] = json!(
        loads
            .iter()
            .filter(|_| part("load"))
            .map(|&d| {
                let mut v = office_load(d);
                v["reference"] = reference
                    .as_ref()
                    .map_or(Value::Null, |r| reference_office_load(r, d));
                v["samod"] = samod
                    .as_ref()
                    .map_or(Value::Null, |r| reference_office_load(r, d));
                v
            })
            .collect::<Vec<_>>()
    );
    if part("backends") {
        let d = if full { 500 } else { 50 };
        println!("== office load on each database backend ({d} phones)");
        all["backends"] = office_load_backends(d);
    }
    if part("3g") {
        println!("== 3G");
        all["mobile"] = mobile(mobile_n);
        all["mobile"]["reference"] = reference
            .as_ref()
            .map_or(Value::Null, |r| reference_mobile(r, mobile_n));
        all["mobile"]["samod"] = samod
            .as_ref()
            .map_or(Value::Null, |r| reference_mobile(r, mobile_n));
    }
    if part("edge") {
        println!("== EDGE");
        all["edge"] = edge(mobile_n);
    }
    if part("crypto") {
        println!("== encryption");
        all["encryption"] = crypto_cost();
    }
    std::fs::write(
        out_dir.join("results.json"),
        serde_json::to_string_pretty(&all).unwrap(),
    )
    .unwrap();
    let table = markdown(&all);
    std::fs::write(out_dir.join("results.md"), &table).unwrap();
    std::fs::write(out_dir.join("sync-time.svg"), svg(&all)).unwrap();
    println!("\n{table}\nwritten to {}", out_dir.display());
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

fn mb(bytes: f64) -> String {
    format!("{:.2} MB", bytes / 1e6)
}

fn kb_mb(kb: f64) -> String {
    format!("{:.0} MB", kb / 1024.0)
}

fn ratio(a: f64, b: f64) -> String {
    if a.is_finite() && b.is_finite() && b > 0.0 {
        format!("{:.2}", a / b)
    } else {
        "–".into()
    }
}

/// The cells of one reference peer (`rf`: the Node reference or samod) in a row of the first
/// table: time, bytes up and down, server peak and CPU, and fieldcase's time over its time.
fn peer_cells(fc: &Value, rf: &Value) -> [String; 6] {
    let dash = || "–".to_owned();
    if rf.is_null() {
        return std::array::from_fn(|_| dash());
    }
    let ok = !rf["error"].is_string();
    [
        if ok {
            format!("{:.0} ms", f(&rf["ms"]))
        } else {
            "failed".into()
        },
        mb(f(&rf["sent"])),
        mb(f(&rf["received"])),
        kb_mb(f(&rf["server_peak_kb"])),
        format!("{:.0} ms", f(&rf["server_cpu_ms"])),
        if ok {
            ratio(f(&fc["ms"]), f(&rf["ms"]))
        } else {
            dash()
        },
    ]
}

fn markdown(all: &Value) -> String {
    let mut s = String::new();
    s += &format!("Mode: {}\n\n", all["mode"].as_str().unwrap_or(""));
    s += "### First sync and incremental sync (scenarios 1, 2, 5)\n\n";
    let runs = all["runs"].as_object().cloned().unwrap_or_default();
    // The samod columns only where samod ran (results of earlier runs render as they were).
    let with_samod = runs.values().any(|r| !r["samod"].is_null());
    let samod_head = if with_samod {
        " samod time | samod up | samod down | samod server peak | samod server CPU | time fc/samod |"
    } else {
        ""
    };
    s += &format!(
        "| cases | what | fieldcase time | up | down | round trips | phone peak | server peak | phone + server CPU | reference time | ref up | ref down | ref server peak | ref server CPU | time fc/ref |{samod_head} raw automerge time (CPU) | raw bytes | time fc/raw | bytes fc/raw |\n"
    );
    s += &format!(
        "|{}\n",
        " --- |".repeat(19 + if with_samod { 6 } else { 0 })
    );
    let mut keys: Vec<usize> = runs.keys().filter_map(|k| k.parse().ok()).collect();
    keys.sort_unstable();
    for &n in &keys {
        let run = &runs[&n.to_string()];
        let raw = &run["raw"];
        let raw_bytes = f(&raw["sent"]) + f(&raw["received"]);
        for (key, label) in [
            ("upload", "first sync up (phone → office)"),
            ("download", "first sync down (new phone)"),
            ("ten_changed", "10 changed at the office"),
            ("none_changed", "nothing changed"),
        ] {
            let fc = &run["fieldcase"][key];
            let fc_bytes = f(&fc["sent"]) + f(&fc["received"]);
            let first = key == "upload" || key == "download";
            let dash = || "–".to_owned();
            let cpu = f(&fc["cpu_ms"]) + f(&fc["server_cpu_ms"]);
            let mut cells = vec![
                format!("{:.0} ms", f(&fc["ms"])),
                mb(f(&fc["sent"])),
                mb(f(&fc["received"])),
                fc["round_trips"].to_string(),
                if f(&fc["peak_kb"]) > 0.0 {
                    kb_mb(f(&fc["peak_kb"]))
                } else {
                    dash()
                },
                kb_mb(f(&fc["server_peak_kb"])),
                if cpu.is_finite() {
                    format!("{cpu:.0} ms")
                } else {
                    dash()
                },
            ];
            cells.extend(peer_cells(fc, &run["reference"][key]));
            if with_samod {
                cells.extend(peer_cells(fc, &run["samod"][key]));
            }
            cells.extend([
                if first {
                    format!("{:.0} ms ({:.0} ms)", f(&raw["ms"]), f(&raw["cpu_ms"]))
                } else {
                    dash()
                },
                if first { mb(raw_bytes) } else { dash() },
                if first {
                    ratio(f(&fc["ms"]), f(&raw["ms"]))
                } else {
                    dash()
                },
                if first {
                    ratio(fc_bytes, raw_bytes)
                } else {
                    dash()
                },
            ]);
            s += &format!("| {n} | {label} | {} |\n", cells.join(" | "));
        }
    }
    // One document as saved, fieldcase's (the raw column's) beside samod's.
    for &n in &keys {
        let run = &runs[&n.to_string()];
        let samod_doc = &run["samod"]["seed"]["doc_bytes"];
        if samod_doc.is_number() {
            s += &format!(
                "\nOne case document of {NOTES_PER_CASE} notes as automerge saves it ({n} cases): fieldcase {:.0} B, samod {:.0} B ({} fieldcase/samod); samod's server storage after the upload: {}.\n",
                f(&run["raw"]["doc_bytes"]),
                f(samod_doc),
                ratio(f(&run["raw"]["doc_bytes"]), f(samod_doc)),
                mb(f(&run["samod"]["upload"]["server_storage_bytes"])),
            );
        }
    }
    if let Some(inc) = all["incremental"].as_array().filter(|a| !a.is_empty()) {
        s += "\n### Incremental sync at scale (scenario 2): cases made at the office, a new phone's first sync, then 10 changed at the office, then none\n\n";
        s += "| cases | seeding at the office | first sync time | first sync down | round trips | phone peak | server peak | phone + server CPU | 10 changed: time | bytes | round trips | bytes / bytes at the smallest N | nothing changed: time | bytes |\n";
        s += "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n";
        let base = inc
            .iter()
            .map(|r| f(&r["ten_changed"]["sent"]) + f(&r["ten_changed"]["received"]))
            .find(|b| b.is_finite());
        for r in inc {
            let (first, ten, none) = (&r["first"], &r["ten_changed"], &r["none_changed"]);
            let time = |v: &Value| {
                if let Some(e) = v["error"].as_str() {
                    format!("failed ({e})")
                } else if v.is_null() {
                    "–".into()
                } else {
                    format!("{:.0} ms", f(&v["ms"]))
                }
            };
            let bytes = |v: &Value| f(&v["sent"]) + f(&v["received"]);
            s += &format!(
                "| {} | {:.1} s | {} | {} | {} | {} | {} | {:.0} ms | {} | {:.0} B | {} | {} | {} | {:.0} B |\n",
                r["cases"],
                f(&r["seed_ms"]) / 1e3,
                time(first),
                mb(f(&first["received"])),
                first["round_trips"],
                kb_mb(f(&first["peak_kb"])),
                kb_mb(f(&first["server_peak_kb"])),
                f(&first["cpu_ms"]) + f(&first["server_cpu_ms"]),
                time(ten),
                bytes(ten),
                ten["round_trips"],
                base.map_or("–".into(), |b| ratio(bytes(ten), b)),
                time(none),
                bytes(none),
            );
        }
    }
    let d = &all["day_offline"];
    if !d.is_null() {
        s += "\n### A day offline (scenario 3): 200 notes and 50 task updates over 50 cases, one sync\n\n";
        s += &format!(
            "{:.0} ms, {} up, {} down, {} round trips\n",
            f(&d["ms"]),
            mb(f(&d["sent"])),
            mb(f(&d["received"])),
            d["round_trips"]
        );
    }
    s += &office_load_md(all);
    s += &backends_md(all);
    s += &mobile_md(all);
    s += &edge_md(all);
    let e = &all["encryption"];
    if !e.is_null() {
        s += "\n### Encryption on the phone (measured as described in docs/BENCHMARKS.md)\n\n";
        s += &format!(
            "Note write {:.2} ms of which sealing {:.3} ms: {:.2}x plaintext. Cold case read {:.2} ms of which opening {:.3} ms: {:.2}x plaintext.\n",
            f(&e["write_ms"]),
            f(&e["write_crypto_ms"]),
            f(&e["write_ratio"]),
            f(&e["read_ms"]),
            f(&e["read_crypto_ms"]),
            f(&e["read_ratio"]),
        );
    }
    s
}

/// The cells of one reference peer (`r`: the Node reference or samod) in a row of the office
/// load table, beside fieldcase's row `l`.
fn load_peer_cells(l: &Value, r: &Value) -> Vec<String> {
    let ms = |v: &Value| {
        if v.is_number() {
            format!("{:.0} ms", f(v))
        } else {
            "–".into()
        }
    };
    if r.is_null() {
        vec!["–".to_owned(); 10]
    } else if r["p50_ms"].is_null() {
        // No peer got its change to the server.
        let mut cells = vec!["failed".to_owned(), "–".into(), "–".into(), "–".into()];
        cells.push(r["errors"].to_string());
        cells.push(kb_mb(f(&r["server_peak_kb"])));
        cells.extend(["–".to_owned(), "–".into(), "–".into(), "–".into()]);
        cells
    } else {
        vec![
            ms(&r["wall_ms"]),
            format!("{:.0}", f(&r["syncs_per_s"])),
            ms(&r["p50_ms"]),
            ms(&r["p99_ms"]),
            r["errors"].to_string(),
            kb_mb(f(&r["server_peak_kb"])),
            ms(&r["server_cpu_ms"]),
            ratio(f(&l["syncs_per_s"]), f(&r["syncs_per_s"])),
            ratio(f(&l["p99_ms"]), f(&r["p99_ms"])),
            ratio(f(&l["server_peak_kb"]), f(&r["server_peak_kb"])),
        ]
    }
}

fn office_load_md(all: &Value) -> String {
    let loads = all["office_load"].as_array().cloned().unwrap_or_default();
    let mut s = String::new();
    if loads.is_empty() {
        return s;
    }
    let with_samod = loads.iter().any(|l| !l["samod"].is_null());
    s += &format!(
        "\n### Office load (scenario 4): phones syncing a small change at the same moment (fieldcase over TLS; {} over WebSocket)\n\n",
        if with_samod {
            "reference and samod"
        } else {
            "reference"
        }
    );
    s += &format!(
        "| phones | wall | syncs/s | p50 | p99 | errors | server peak | server CPU | ref wall | ref syncs/s | ref p50 | ref p99 | ref errors | ref server peak | ref server CPU | syncs/s fc/ref | p99 fc/ref | server peak fc/ref |{}\n",
        if with_samod {
            " samod wall | samod syncs/s | samod p50 | samod p99 | samod errors | samod server peak | samod server CPU | syncs/s fc/samod | p99 fc/samod | server peak fc/samod |"
        } else {
            ""
        }
    );
    s += &format!(
        "|{}\n",
        " --- |".repeat(18 + if with_samod { 10 } else { 0 })
    );
    let ms = |v: &Value| {
        if v.is_number() {
            format!("{:.0} ms", f(v))
        } else {
            "–".into()
        }
    };
    for l in loads {
        let mut peers = load_peer_cells(&l, &l["reference"]);
        if with_samod {
            peers.extend(load_peer_cells(&l, &l["samod"]));
        }
        s += &format!(
            "| {} | {} | {:.0} | {} | {} | {} | {} | {} | {} |\n",
            l["phones"],
            ms(&l["wall_ms"]),
            f(&l["syncs_per_s"]),
            ms(&l["p50_ms"]),
            ms(&l["p99_ms"]),
            l["errors"],
            kb_mb(f(&l["server_peak_kb"])),
            ms(&l["server_cpu_ms"]),
            peers.join(" | ")
        );
    }
    s
}

fn backends_md(all: &Value) -> String {
    let rows = all["backends"].as_array().cloned().unwrap_or_default();
    let mut s = String::new();
    if rows.is_empty() {
        return s;
    }
    s += &format!(
        "\n### Office load on each database backend: {} phones syncing a small change at the same moment over TLS\n\n",
        rows[0]["phones"]
    );
    s += "| backend | wall | syncs/s | p50 | p99 | errors | server peak (all instances) | server CPU (all instances) | syncs/s vs SQLite | p99 vs SQLite |\n";
    s += "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n";
    let base = &rows[0];
    for r in &rows {
        if let Some(why) = r["missing"].as_str() {
            s += &format!(
                "| {} | not run: {why} | – | – | – | – | – | – | – | – |\n",
                r["backend"].as_str().unwrap_or("?")
            );
            continue;
        }
        s += &format!(
            "| {} | {:.0} ms | {:.0} | {:.0} ms | {:.0} ms | {} | {} | {:.0} ms | {} | {} |\n",
            r["backend"].as_str().unwrap_or("?"),
            f(&r["wall_ms"]),
            f(&r["syncs_per_s"]),
            f(&r["p50_ms"]),
            f(&r["p99_ms"]),
            r["errors"],
            kb_mb(f(&r["server_peak_kb"])),
            f(&r["server_cpu_ms"]),
            ratio(f(&r["syncs_per_s"]), f(&base["syncs_per_s"])),
            ratio(f(&r["p99_ms"]), f(&base["p99_ms"])),
        );
    }
    s
}

fn edge_md(all: &Value) -> String {
    let e = &all["edge"];
    if e.is_null() {
        return String::new();
    }
    let mut s = format!(
        "\n### A phone on EDGE (scenario 7): {} cases, 256 kbit/s each way, 600 ms round trip, cut twice\n\n",
        e["cases"]
    );
    s += "| first sync, cuts and retries included | attempts | cuts | bytes down (wire) | whole answer (wire) | sent again | all cases on the phone |\n";
    s += "| --- | --- | --- | --- | --- | --- | --- |\n";
    s += &format!(
        "| {:.1} s | {} | {} | {} | {} | {} | {} |\n",
        f(&e["total_ms"]) / 1e3,
        e["attempts"],
        e["cuts"],
        mb(f(&e["wire_bytes"])),
        mb(f(&e["whole_wire_bytes"])),
        mb(f(&e["wire_bytes"]) - f(&e["whole_wire_bytes"])),
        if e["ok"].as_bool() == Some(true) {
            "yes"
        } else {
            "no"
        },
    );
    s
}

fn mobile_md(all: &Value) -> String {
    let mut s = String::new();
    let m = &all["mobile"];
    if m.is_null() {
        return s;
    }
    let r = &m["reference"];
    let sm = &m["samod"];
    let with_samod = !sm.is_null();
    s += &format!(
        "\n### A phone on 3G (scenario 6): {} cases, 1 Mbit/s each way, 300 ms round trip, through the fault proxy\n\n",
        m["cases"]
    );
    s += "| what | fieldcase time | fieldcase bytes down (wire) | reference time | reference bytes down (wire) | time fc/ref | bytes fc/ref |";
    if with_samod {
        s += " samod time | samod bytes down (wire) | time fc/samod | bytes fc/samod |";
    }
    s += &format!(
        "\n|{}\n",
        " --- |".repeat(7 + if with_samod { 4 } else { 0 })
    );
    let secs = |v: &Value, ok: &Value| {
        if ok.as_bool() == Some(false) {
            "failed".to_owned()
        } else if v.is_number() {
            format!("{:.1} s", f(v) / 1e3)
        } else {
            "–".into()
        }
    };
    let wire = |v: &Value| {
        if v.is_number() {
            mb(f(v))
        } else {
            "–".into()
        }
    };
    // Sent again: what the cut and the resumed syncs moved beyond one whole first sync.
    let again = |m: &Value| {
        f(&m["cut_delivered_bytes"]) + f(&m["resumed_wire_bytes"]) - f(&m["first_wire_bytes"])
    };
    let rows: [(&str, &str, &str, Option<&str>); 3] = [
        (
            "first sync",
            "first_ms",
            "first_wire_bytes",
            Some("first_ok"),
        ),
        (
            "cut halfway (delivered before the cut)",
            "cut_ms",
            "cut_delivered_bytes",
            None,
        ),
        (
            "resumed sync",
            "resumed_ms",
            "resumed_wire_bytes",
            Some("resumed_ok"),
        ),
    ];
    for (label, t, b, ok) in rows {
        let okv = |v: &Value| ok.map_or(Value::Null, |k| v[k].clone());
        // A reference peer's cells in this row: time, bytes, and fieldcase's over its.
        let peer = |r: &Value| {
            let both = okv(m).as_bool() != Some(false) && okv(r).as_bool() != Some(false);
            [
                secs(&r[t], &okv(r)),
                if r.is_null() {
                    "–".into()
                } else {
                    wire(&r[b])
                },
                if both {
                    ratio(f(&m[t]), f(&r[t]))
                } else {
                    "–".into()
                },
                if both {
                    ratio(f(&m[b]), f(&r[b]))
                } else {
                    "–".into()
                },
            ]
        };
        let mut cells = vec![secs(&m[t], &okv(m)), wire(&m[b])];
        let [rt, rb, tr, br] = peer(r);
        cells.extend([rt, rb, tr, br]);
        if with_samod {
            cells.extend(peer(sm));
        }
        s += &format!("| {label} | {} |\n", cells.join(" | "));
    }
    let again_cells = |r: &Value| {
        [
            if r.is_null() {
                "–".into()
            } else {
                mb(again(r))
            },
            if r["resumed_ok"].as_bool() == Some(true) {
                ratio(again(m), again(r))
            } else {
                "–".into()
            },
        ]
    };
    let [ra, rr] = again_cells(r);
    s += &format!(
        "| sent again after the resume (cut + resumed − whole) | | {} | | {ra} | | {rr} |",
        mb(again(m)),
    );
    if with_samod {
        let [sa, sr] = again_cells(sm);
        s += &format!(" | {sa} | | {sr} |");
    }
    s += "\n";
    s += &format!(
        "\nfieldcase: the cut sync failed as expected = {}, the resumed one ok = {}.",
        m["cut_ok"], m["resumed_ok"]
    );
    for (name, r) in [("Reference", r), ("samod", sm)] {
        if !r.is_null() {
            s += &format!(
                " {name}: the cut was seen = {}, {} of {} documents ready before it; resumed ok = {}{}.",
                r["cut_ok"],
                r["cut_docs_ready"],
                r["cases"],
                r["resumed_ok"],
                r["errors"]
                    .as_array()
                    .filter(|e| !e.is_empty())
                    .map_or(String::new(), |e| format!("; errors: {e:?}")),
            );
        }
    }
    s += "\n";
    s
}

/// Sync time against the number of cases, log-log, hand-written SVG.
fn svg(all: &Value) -> String {
    let runs = all["runs"].as_object().cloned().unwrap_or_default();
    let mut keys: Vec<usize> = runs.keys().filter_map(|k| k.parse().ok()).collect();
    keys.sort_unstable();
    type Series<'a> = (&'a str, &'a str, Vec<(f64, f64)>);
    let series: Vec<Series> = [
        (
            "fieldcase first sync down",
            "#1b7837",
            "fieldcase",
            "download",
        ),
        ("fieldcase first sync up", "#5aae61", "fieldcase", "upload"),
        (
            "reference first sync down",
            "#b2182b",
            "reference",
            "download",
        ),
        ("reference first sync up", "#ef8a62", "reference", "upload"),
        ("samod first sync down", "#762a83", "samod", "download"),
        ("samod first sync up", "#c2a5cf", "samod", "upload"),
        ("raw automerge sync", "#2166ac", "raw", ""),
        (
            "fieldcase first sync down (office-seeded)",
            "#00441b",
            "incremental",
            "first",
        ),
    ]
    .into_iter()
    .map(|(label, colour, who, key)| {
        if who == "incremental" {
            let pts = all["incremental"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .filter_map(|r| Some((f(&r["cases"]), r[key]["ms"].as_f64()?)))
                .collect();
            return (label, colour, pts);
        }
        let pts = keys
            .iter()
            .filter_map(|n| {
                let run = &runs[&n.to_string()][who];
                let v = if key.is_empty() {
                    &run["ms"]
                } else {
                    &run[key]["ms"]
                };
                v.as_f64().map(|ms| (*n as f64, ms))
            })
            .collect();
        (label, colour, pts)
    })
    .collect();
    let all_pts: Vec<(f64, f64)> = series.iter().flat_map(|s| s.2.clone()).collect();
    let (w, h, ml, mr, mt, mb_) = (800.0, 440.0, 70.0, 290.0, 30.0, 50.0);
    let (xmin, xmax) = all_pts
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.0), b.max(p.0)));
    let (ymin, ymax) = all_pts
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.1), b.max(p.1)));
    let (lx0, lx1) = (
        xmin.log10().floor(),
        xmax.log10().ceil().max(xmin.log10().floor() + 1.0),
    );
    let (ly0, ly1) = (
        ymin.log10().floor(),
        ymax.log10().ceil().max(ymin.log10().floor() + 1.0),
    );
    let x = |v: f64| ml + (v.log10() - lx0) / (lx1 - lx0) * (w - ml - mr);
    let y = |v: f64| h - mb_ - (v.log10() - ly0) / (ly1 - ly0) * (h - mt - mb_);
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12"><rect width="100%" height="100%" fill="white"/>"#
    );
    s += &format!(
        r#"<text x="{}" y="18" text-anchor="middle" font-size="14">Sync time against number of cases (20 notes each), log-log</text>"#,
        (w - mr + ml) / 2.0
    );
    let mut e = lx0;
    while e <= lx1 {
        let v = 10f64.powf(e);
        s += &format!(
            r##"<line x1="{0}" y1="{1}" x2="{0}" y2="{2}" stroke="#ddd"/><text x="{0}" y="{3}" text-anchor="middle">{4}</text>"##,
            x(v),
            mt,
            h - mb_,
            h - mb_ + 16.0,
            v
        );
        e += 1.0;
    }
    let mut e = ly0;
    while e <= ly1 {
        let v = 10f64.powf(e);
        let label = if v >= 1000.0 {
            format!("{} s", v / 1000.0)
        } else {
            format!("{v} ms")
        };
        s += &format!(
            r##"<line x1="{0}" y1="{1}" x2="{2}" y2="{1}" stroke="#ddd"/><text x="{3}" y="{4}" text-anchor="end">{5}</text>"##,
            ml,
            y(v),
            w - mr,
            ml - 6.0,
            y(v) + 4.0,
            label
        );
        e += 1.0;
    }
    s += &format!(
        r#"<text x="{}" y="{}" text-anchor="middle">cases</text>"#,
        (w - mr + ml) / 2.0,
        h - 12.0
    );
    for (i, (label, colour, pts)) in series.iter().enumerate() {
        if pts.is_empty() {
            continue;
        }
        let path: Vec<String> = pts
            .iter()
            .map(|p| format!("{:.1},{:.1}", x(p.0), y(p.1)))
            .collect();
        s += &format!(
            r#"<polyline fill="none" stroke="{colour}" stroke-width="2" points="{}"/>"#,
            path.join(" ")
        );
        for p in pts {
            s += &format!(
                r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{colour}"/>"#,
                x(p.0),
                y(p.1)
            );
        }
        let ly = mt + 20.0 + 18.0 * i as f64;
        s += &format!(
            r#"<line x1="{0}" y1="{1}" x2="{2}" y2="{1}" stroke="{colour}" stroke-width="2"/><text x="{3}" y="{4}">{label}</text>"#,
            w - mr + 10.0,
            ly,
            w - mr + 30.0,
            w - mr + 36.0,
            ly + 4.0
        );
    }
    s += "</svg>\n";
    s
}
