//! A real office server for the Python and Kotlin binding tests: starts `fieldcase-server` on
//! 127.0.0.1:0 over real TLS in a temporary folder, with the field worker `ana` and one case
//! assigned to her (a task today at 09:00 UTC with a two-item checklist), behind a small TCP proxy
//! that the test can switch off to simulate a phone without signal.
//!
//! It prints one JSON line when ready —
//! `{"url", "direct_url", "fingerprint", "user_id", "case_id", "task_id"}` (`url` goes through the
//! proxy) — then answers one JSON line per command read on stdin:
//! `code` (a new enrollment code for ana), `invite` (a new code as the enrollment page's QR code
//! holds it, with the office's address and certificate), `case CLIENT-CODE` (another case for ana),
//! `cases N` (N more cases for ana, at most 2,000: a caseload whose first sync takes several
//! rounds; answers `cases`, the number made),
//! `confirm DEVICE-ID FINGERPRINT` (as `admin confirm` does: a new phone syncs only once an
//! admin confirmed the key fingerprint it shows), `revoke DEVICE-ID` (as `admin revoke` does),
//! `rotate` (as `admin tls prepare`, `admin tls rotate --force` and a restart on the same
//! address do: the server presents a new certificate, whose fingerprint it answers),
//! `photo SEED` (a JPEG a camera app would write, with EXIF GPS and make tags, an XMP place and a
//! comment, as `jpeg_base64`),
//! `offline`, `online`, `quit`. It stops at `quit`
//! or at the end of stdin.
//!
//! Run: `cargo run -p fieldcase-ffi --example test_server`.

use std::io::{BufRead, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use fieldcase_core::ids::UserId;
use fieldcase_core::model::{ConsentStatus, NewCase, NewTask, OfficeKind};
use fieldcase_core::protocol::Role;
use fieldcase_server::office::{alerts, cases, devices, enrollment, users};
use fieldcase_server::{Clock, RunningServer, Server, SystemClock};
use serde_json::json;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

const USER: &str = "ana";

fn main() -> Res<()> {
    let dir = tempfile::tempdir()?;
    let mut server = Server::start(dir.path(), "127.0.0.1:0".parse()?)?;
    let user = UserId::from_uuid(
        server
            .state
            .db()
            .write(|c| users::add_user(c, USER, Role::FieldWorker, SystemClock.now()))?,
    );
    // A case manager of the default team (where the test's cases go), who is shown alerts.
    let manager = server
        .state
        .db()
        .write(|c| users::add_user(c, "maria", Role::CaseManager, SystemClock.now()))?;
    let proxy = Proxy::start(server.addr)?;
    let (case_id, task_id) = create_case(&server, "K-0142", user)?;
    let mut out = std::io::stdout().lock();
    emit(
        &mut out,
        json!({
            "url": format!("https://{}", proxy.addr),
            "direct_url": format!("https://{}", server.addr),
            "fingerprint": server.fingerprint.to_hex(),
            "user_id": user.to_string(),
            "case_id": case_id,
            "task_id": task_id,
        }),
    )?;
    for line in std::io::stdin().lock().lines() {
        let line = line?;
        let mut words = line.split_whitespace();
        let reply = match (words.next(), words.next()) {
            (Some("code"), _) => {
                let issued = server.state.db().write(|c| {
                    enrollment::issue_enrollment_code(c, USER, 900, SystemClock.now())
                })?;
                json!({ "code": issued.code })
            }
            (Some("invite"), _) => {
                // A new code as the enrollment page shows it: the invite its QR code holds, for
                // the office as phones reach it (through the proxy).
                let issued = server.state.db().write(|c| {
                    enrollment::issue_enrollment_code(c, USER, 900, SystemClock.now())
                })?;
                let invite = enrollment::invite(
                    &format!("https://{}", proxy.addr),
                    server.fingerprint,
                    &issued.code,
                );
                json!({ "invite": invite, "code": issued.code })
            }
            (Some("case"), Some(client_code)) => {
                let (case_id, task_id) = create_case(&server, client_code, user)?;
                json!({ "case_id": case_id, "task_id": task_id })
            }
            (Some("cases"), Some(count)) => {
                let count: usize = count.parse::<usize>()?.min(2_000);
                for i in 0..count {
                    create_case(&server, &format!("B-{i:04}"), user)?;
                }
                json!({ "cases": count.to_string() })
            }
            (Some("revoke"), Some(device)) => {
                let device = uuid::Uuid::parse_str(device)?;
                server
                    .state
                    .db()
                    .write(|c| devices::revoke_device(c, &device, SystemClock.now()))?;
                json!({ "ok": true })
            }
            (Some("confirm"), Some(device)) => {
                // As an admin does, with the key fingerprint read off the phone.
                let device = uuid::Uuid::parse_str(device)?;
                let typed = words.next().unwrap_or_default().to_owned();
                server
                    .state
                    .db()
                    .write(|c| devices::confirm_device(c, &device, &typed, SystemClock.now()))?;
                json!({ "ok": true })
            }
            (Some("rotate"), _) => {
                let tls = fieldcase_server::http::tls::prepare_next(dir.path())?;
                fieldcase_server::http::tls::rotate(dir.path())?;
                let addr = server.addr;
                server.shutdown()?;
                server = Server::start(dir.path(), addr)?;
                json!({ "fingerprint": tls.fingerprint().to_hex() })
            }
            (Some("photo"), seed) => {
                use base64::Engine;
                let seed = seed.and_then(|s| s.parse().ok()).unwrap_or(1);
                let jpeg = fieldcase_tests::photo::jpeg_with_gps(320, 240, seed);
                json!({ "jpeg_base64": base64::engine::general_purpose::STANDARD.encode(jpeg) })
            }
            (Some("alerts"), _) => {
                // What the case manager's pages show on top (`office::alerts`, which the page
                // frame renders).
                let staff = fieldcase_server::office::access::Staff {
                    id: manager,
                    role: Role::CaseManager,
                };
                let alerts = server
                    .state
                    .db()
                    .read(|c| alerts::visible_to(c, staff, false))?;
                let list: Vec<_> = alerts
                    .iter()
                    .map(|a| {
                        json!({
                            "kind": a.kind, "user_id": a.user_id.to_string(),
                            "user_name": a.user_name, "device_id": a.device_id.to_string(),
                        })
                    })
                    .collect();
                json!({ "alerts": list })
            }
            (Some("device"), Some(device)) => {
                let device = uuid::Uuid::parse_str(device)?;
                let listed = server.state.db().read(|c| devices::list_devices(c))?;
                let row = listed.iter().find(|d| d.device_id == device);
                json!({
                    "status": row.map(|d| d.status.to_string()),
                    "wipe_reason": row.and_then(|d| d.wipe_reason.clone()),
                })
            }
            (Some("offline"), _) => {
                proxy.set_online(false);
                json!({ "ok": true })
            }
            (Some("online"), _) => {
                proxy.set_online(true);
                json!({ "ok": true })
            }
            (Some("quit"), _) => break,
            _ => json!({ "error": "unknown command" }),
        };
        emit(&mut out, reply)?;
    }
    server.shutdown()?;
    Ok(())
}

fn emit(out: &mut impl Write, value: serde_json::Value) -> Res<()> {
    writeln!(out, "{value}")?;
    out.flush()?;
    Ok(())
}

/// Opens a case at the office for `user`, with one task today at 09:00 UTC.
fn create_case(server: &RunningServer, client_code: &str, user: UserId) -> Res<(String, String)> {
    let vault = server.state.vault().clone();
    let new = NewCase {
        client_code: client_code.into(),
        consent: ConsentStatus::Given,
        assigned_workers: vec![user],
    };
    let task = NewTask {
        purpose: "ID card application".into(),
        office_kind: OfficeKind::RegistryOffice,
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
    let (case, task) = server
        .state
        .db()
        .write(|c| cases::create_case(c, &vault, &new, Some(&task), SystemClock.now()))?
        .keep(&vault);
    let task = task.ok_or("the office created no task")?;
    Ok((case.to_string(), task.to_string()))
}

/// A TCP proxy in front of the server that can be switched off: offline, it cuts every open
/// connection and refuses new ones, as a phone without signal sees it.
struct Proxy {
    addr: std::net::SocketAddr,
    online: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    fn start(upstream: std::net::SocketAddr) -> Res<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let online = Arc::new(AtomicBool::new(true));
        let open: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (on, conns) = (online.clone(), open.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                if !on.load(Ordering::SeqCst) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(upstream) else {
                    continue;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                if let Ok(mut list) = conns.lock() {
                    list.extend(client.try_clone().ok());
                    list.extend(server.try_clone().ok());
                }
                pipe(&client, &server);
                pipe(&server, &client);
            }
        });
        Ok(Proxy { addr, online, open })
    }

    fn set_online(&self, online: bool) {
        self.online.store(online, Ordering::SeqCst);
        if !online && let Ok(mut list) = self.open.lock() {
            for s in list.drain(..) {
                let _ = s.shutdown(Shutdown::Both);
            }
        }
    }
}

/// Copies bytes from `from` to `to` on a thread until either side closes.
fn pipe(from: &TcpStream, to: &TcpStream) {
    let (Ok(mut from), Ok(mut to)) = (from.try_clone(), to.try_clone()) else {
        return;
    };
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut from, &mut to);
        let _ = to.shutdown(Shutdown::Write);
    });
}
