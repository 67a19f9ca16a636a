//! Certificate rotation end to end: the real `fieldcase-server` binary serving over TLS on
//! 127.0.0.1, driven by its own admin commands (`admin tls prepare`, `status`, `rotate`) as an
//! operator would, and phones with real stores syncing through the real pinned transport. One
//! phone learns the next certificate from the signed sync headers and keeps syncing across the
//! switch; one that was away the whole time gets the certificate mismatch, is repinned with the
//! fingerprint the admin reads out, and syncs again.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use fieldcase_core::CoreError;
use fieldcase_core::clock::ManualClock;
use fieldcase_core::crypto::StaticKeyProvider;
use fieldcase_core::device::{Device, ServerAddress};
use fieldcase_core::ids::CaseId;
use fieldcase_core::model::{NewNote, NoteKind};
use fieldcase_core::protocol::Fingerprint;
use fieldcase_core::store::KeySetup;
use fieldcase_core::transport::TransportError;
use fieldcase_tests::device_options;
use fieldcase_tests::process::{ServerProcess, free_port, server_binary};

/// The office as its admin sees it: the binary's admin commands on the data folder.
struct Admin<'a> {
    data: &'a Path,
    database: Option<&'a str>,
}

impl Admin<'_> {
    /// Runs `fieldcase-server --data DATA admin ARGS`; its exit status and its stdout and stderr.
    fn try_run(&self, args: &[&str]) -> (bool, String) {
        let mut command = Command::new(server_binary());
        if let Some(url) = self.database {
            command.env("FIELDCASE_DATABASE_URL", url);
        }
        let output = command
            .arg("--data")
            .arg(self.data)
            .arg("admin")
            .args(args)
            .env("RUST_LOG", "error")
            .output()
            .expect("running fieldcase-server admin");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        (output.status.success(), text)
    }

    fn run(&self, args: &[&str]) -> String {
        let (ok, text) = self.try_run(args);
        assert!(ok, "admin {args:?} failed: {text}");
        text
    }

    /// The value after `label` on the line that starts with it.
    fn field(text: &str, label: &str) -> String {
        text.lines()
            .find_map(|l| l.strip_prefix(label))
            .unwrap_or_else(|| panic!("no {label:?} in {text}"))
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_owned()
    }

    /// The state `admin tls status` shows for one device (`held`, `missing`).
    fn pin_state(&self, device: &str) -> String {
        let status = self.run(&["tls", "status"]);
        let line = status
            .lines()
            .find(|l| l.starts_with(device))
            .unwrap_or_else(|| panic!("device {device} not in {status}"));
        line.split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_owned()
    }
}

/// A phone with a real encrypted store, enrolled with a code from `admin enroll`.
struct Phone {
    device: Device,
    _dir: tempfile::TempDir,
}

impl Phone {
    fn enroll(admin: &Admin<'_>, user: &str, url: &str) -> Phone {
        let issued = admin.run(&["enroll", user, "--url", url]);
        let code = Admin::field(&issued, "enrollment code:");
        let pin = Fingerprint::parse(&Admin::field(&issued, "fingerprint:")).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let keys = StaticKeyProvider::random();
        let clock = Arc::new(ManualClock::new(time::OffsetDateTime::now_utc()));
        let device = Device::enroll(
            dir.path(),
            &ServerAddress {
                url: url.to_owned(),
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
        Phone { device, _dir: dir }
    }

    fn id(&self) -> String {
        self.device.store().author().unwrap().device.to_string()
    }

    fn note(&self, case: CaseId, body: &str) {
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
            .unwrap();
    }

    fn notes(&self, case: CaseId) -> Vec<String> {
        let case = self.device.store().case(case).unwrap();
        case.notes.into_iter().map(|n| n.body).collect()
    }
}

#[test]
fn the_office_rotates_its_certificate_and_phones_follow_or_are_repinned() {
    let data = tempfile::tempdir().unwrap();
    let pg = fieldcase_tests::fresh_database();
    let database = pg.as_ref().map(|p| p.url_text().to_owned());
    let binary = server_binary();
    let mut server =
        ServerProcess::start_on(&binary, data.path(), free_port(), database.as_deref());
    let url = server.url();
    let admin = Admin {
        data: data.path(),
        database: database.as_deref(),
    };
    admin.run(&["user", "add", "ana", "--role", "field-worker"]);
    admin.run(&["user", "add", "bojan", "--role", "field-worker"]);
    let created = admin.run(&[
        "case",
        "create",
        "--client-code",
        "K-0701",
        "--assign",
        "ana",
        "--assign",
        "bojan",
    ]);
    let case: CaseId = Admin::field(&created, "created case ").parse().unwrap();

    let ana = Phone::enroll(&admin, "ana", &url);
    let bojan = Phone::enroll(&admin, "bojan", &url);
    let old = ana.device.pins().unwrap();
    assert_eq!(old.len(), 1);
    let old = old[0];
    ana.device.sync_now().unwrap();
    bojan.device.sync_now().unwrap();
    assert_eq!(bojan.device.pins().unwrap(), vec![old]);

    // Nothing to rotate to yet.
    let (ok, text) = admin.try_run(&["tls", "rotate"]);
    assert!(!ok && text.contains("no next certificate"), "{text}");

    // The admin prepares the next certificate while the server runs; it is announced at once.
    let prepared = admin.run(&["tls", "prepare"]);
    let next = Fingerprint::parse(&Admin::field(
        &prepared,
        "next certificate sha256 fingerprint:",
    ))
    .unwrap();
    assert_ne!(next, old);
    let status = admin.run(&["tls", "status"]);
    assert_eq!(Admin::field(&status, "current certificate:"), old.to_hex());
    assert_eq!(Admin::field(&status, "next certificate:"), next.to_hex());
    assert_eq!(admin.pin_state(&ana.id()), "missing");

    // Ana syncs: the signed announcement gives her phone the next pin; her next request says
    // so, signed, and the office records it.
    ana.note(case, "Before the rotation.");
    ana.device.sync_now().unwrap();
    assert_eq!(ana.device.pins().unwrap(), vec![old, next]);
    assert_eq!(
        admin.pin_state(&ana.id()),
        "missing",
        "acknowledged too early"
    );
    ana.device.sync_now().unwrap();
    assert_eq!(admin.pin_state(&ana.id()), "held");
    assert_eq!(admin.pin_state(&bojan.id()), "missing");
    assert!(
        admin
            .run(&["tls", "status"])
            .contains("1 of 2 active devices hold the next certificate")
    );

    // Bojan's phone has not synced since: the switch is refused, naming his device.
    let (ok, text) = admin.try_run(&["tls", "rotate"]);
    assert!(!ok, "rotated without every acknowledgement: {text}");
    assert!(
        text.contains(&bojan.id()) && !text.contains(&ana.id()),
        "{text}"
    );
    assert!(
        data.path().join("tls-cert.next.pem").exists(),
        "refusal changed files"
    );

    // Bojan stays away; the admin forces the switch and restarts the server.
    let rotated = admin.run(&["tls", "rotate", "--force"]);
    assert_eq!(
        Admin::field(&rotated, "current certificate:"),
        next.to_hex()
    );
    assert_eq!(
        Admin::field(&rotated, "previous certificate:"),
        old.to_hex()
    );
    // Until the restart the server still presents the old certificate and goes on announcing
    // the new one, so a phone that syncs in between keeps both.
    ana.device.sync_now().unwrap();
    assert_eq!(ana.device.pins().unwrap(), vec![old, next]);
    server.kill();
    server.restart();
    let status = admin.run(&["tls", "status"]);
    assert_eq!(Admin::field(&status, "current certificate:"), next.to_hex());
    assert_eq!(Admin::field(&status, "previous certificate:"), old.to_hex());
    assert!(status.contains("next certificate:     none"), "{status}");

    // Ana's phone syncs on the new certificate and lets the old one go.
    ana.note(case, "After the rotation.");
    ana.device.sync_now().unwrap();
    assert_eq!(ana.device.pins().unwrap(), vec![next]);

    // Bojan's phone meets a certificate it does not hold: a typed error with what the server
    // shows, and nothing sent.
    match bojan.device.sync_now() {
        Err(CoreError::Network(TransportError::PinMismatch { actual })) => {
            assert_eq!(actual, next);
        }
        other => panic!("expected a pin mismatch, got {other:?}"),
    }
    assert_eq!(bojan.notes(case), Vec::<String>::new());
    // The admin reads the new fingerprint out to Bojan; his app repins and syncs.
    bojan.device.repin(next).unwrap();
    bojan.device.sync_now().unwrap();
    assert_eq!(bojan.device.pins().unwrap(), vec![next]);
    let mut notes = bojan.notes(case);
    notes.sort();
    assert_eq!(notes, vec!["After the rotation.", "Before the rotation."]);
}

/// The pins a device last acknowledged, as the office recorded them.
fn recorded_pins(server: &fieldcase_tests::TestServer, device: uuid::Uuid) -> Option<String> {
    server.with_sql(|sql| {
        sql.query_row(
            "SELECT tls_pins FROM devices WHERE id = ?1",
            fieldcase_server::sql_params![&device.to_string()],
        )?
        .get(0)
    })
}

#[test]
fn an_acknowledgement_counts_only_under_the_device_signature() {
    use fieldcase_core::protocol::{HEADER_PINS, PATH_WHOAMI, error_code, format_pins};
    let server = fieldcase_tests::TestServer::start();
    server.add_user("ana", fieldcase_core::protocol::Role::FieldWorker);
    let device = fieldcase_tests::raw_device(&server, "ana");
    let id = device.credential().device_id;
    let pins = [server.fingerprint(), Fingerprint([7; 32])];

    // Added by whoever sits between phone and office to a request the phone signed without it:
    // the signature no longer verifies, and nothing is recorded.
    let mut forged = device.signed_request_now("GET", PATH_WHOAMI, &[]);
    forged
        .headers
        .push((HEADER_PINS.to_owned(), format_pins(&pins)));
    let answer = device.client().send(&forged).unwrap();
    assert_eq!(answer.status, 401);
    assert_eq!(
        answer.error_body().unwrap().error,
        error_code::BAD_SIGNATURE
    );
    assert_eq!(recorded_pins(&server, id), None);

    // A value that is not a list of fingerprints is refused before anything else.
    let mut garbled = device.signed_request_now("GET", PATH_WHOAMI, &[]);
    garbled
        .headers
        .push((HEADER_PINS.to_owned(), "next,please".to_owned()));
    let answer = device.client().send(&garbled).unwrap();
    assert_eq!(answer.status, 401);
    assert_eq!(
        answer.error_body().unwrap().error,
        error_code::BAD_AUTH_HEADER
    );
    assert_eq!(recorded_pins(&server, id), None);

    // Signed by the device: recorded as sent.
    let device = device.acknowledging(&pins);
    device.whoami().unwrap();
    assert_eq!(recorded_pins(&server, id), Some(format_pins(&pins)));
    // A phone with one pin says nothing, and the record stays.
    let single = fieldcase_tests::raw_device(&server, "ana").acknowledging(&pins[..1]);
    assert!(
        !single
            .signed_request_now("GET", PATH_WHOAMI, &[])
            .headers
            .iter()
            .any(|(n, _)| n == HEADER_PINS)
    );
}

#[test]
fn sync_answers_carry_the_signed_next_pin_only_while_one_is_prepared() {
    use fieldcase_core::protocol::PinAnnouncement;
    let server = fieldcase_tests::TestServer::start();
    server.add_user("ana", fieldcase_core::protocol::Role::FieldWorker);
    let device = fieldcase_tests::raw_device(&server, "ana");
    let office = server.running().state.keys().signing_key.verifying_key();
    let empty = fieldcase_core::sync::SyncRequest::default()
        .encode()
        .unwrap();
    let sync = |device: &fieldcase_core::transport::DeviceClient| {
        device
            .post_announced(fieldcase_core::device::PATH_SYNC, &empty)
            .unwrap()
            .1
    };
    let dir = server.dir.path();
    let announced = |device: &fieldcase_core::transport::DeviceClient| {
        sync(device).map(|a| {
            PinAnnouncement::verified(&office, &a.fingerprint, &a.signature)
                .expect("signed by the office")
                .fingerprint
        })
    };
    assert_eq!(announced(&device), None);
    let first = fieldcase_server::http::tls::prepare_next(dir)
        .unwrap()
        .fingerprint();
    assert_eq!(announced(&device), Some(first));
    // The next files removed (that rotation abandoned): announced no more.
    std::fs::remove_file(dir.join("tls-cert.next.pem")).unwrap();
    std::fs::remove_file(dir.join("tls-key.next.pem")).unwrap();
    assert_eq!(announced(&device), None);
    let second = fieldcase_server::http::tls::prepare_next(dir)
        .unwrap()
        .fingerprint();
    assert_eq!(announced(&device), Some(second));
    // Rotated in the files while this server still presents the old certificate: the new
    // current one is still announced until the restart.
    fieldcase_server::http::tls::rotate(dir).unwrap();
    assert_eq!(announced(&device), Some(second));
}
