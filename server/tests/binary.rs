//! Runs the real `fieldcase-server` binary: admin commands on a data folder, then `serve` on
//! 127.0.0.1:0, enrollment and a signed request through the core transport, and SIGTERM.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use ed25519_dalek::SigningKey;
use fieldcase_core::protocol::{Fingerprint, Role};
use fieldcase_core::transport::{Client, DeviceClient, DeviceCredential};
use rand::rngs::OsRng;

const BIN: &str = env!("CARGO_BIN_EXE_fieldcase-server");

fn admin(data: &Path, args: &[&str]) -> String {
    let out = Command::new(BIN)
        .arg("--data")
        .arg(data)
        .arg("admin")
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "admin {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn field<'a>(text: &'a str, label: &str) -> &'a str {
    text.lines()
        .find_map(|l| l.strip_prefix(label))
        .unwrap_or_else(|| panic!("no {label:?} in {text}"))
        .trim()
}

struct Serving {
    child: Child,
    url: String,
    fingerprint: Fingerprint,
}

impl Drop for Serving {
    /// A test that ends (or fails) without stopping its server leaves no server running.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(data: &Path) -> Serving {
    let mut cmd = Command::new(BIN);
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(data);
    spawn(cmd)
}

fn spawn(mut cmd: Command) -> Serving {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    let mut url = None;
    let mut fingerprint = None;
    while url.is_none() || fingerprint.is_none() {
        let line = rx.recv_timeout(Duration::from_secs(30)).unwrap();
        if let Some(u) = line.strip_prefix("fieldcase-server listening on ") {
            url = Some(u.trim().to_owned());
        }
        if let Some(f) = line.strip_prefix("certificate sha256 fingerprint: ") {
            fingerprint = Some(Fingerprint::parse(f.trim()).unwrap());
        }
    }
    Serving {
        child,
        url: url.unwrap(),
        fingerprint: fingerprint.unwrap(),
    }
}

fn terminate(s: Serving) {
    signal(s, "-TERM");
}

fn signal(mut s: Serving, sig: &str) {
    let status = Command::new("kill")
        .args([sig, &s.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = s.child.try_wait().unwrap() {
            assert!(status.success(), "server exited with {status}");
            return;
        }
        if std::time::Instant::now() > deadline {
            let _ = s.child.kill();
            panic!("server did not stop after {sig}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn binary_serves_healthz_and_stops_on_sigterm() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let s = serve(&data);
    assert!(s.url.starts_with("https://127.0.0.1:"));
    assert!(!s.url.ends_with(":0"));
    let client = Client::new(&s.url, s.fingerprint).unwrap();
    client.healthz().unwrap();
    let fp = s.fingerprint;
    terminate(s);

    // Restarting on the same folder keeps the certificate; Ctrl-C (SIGINT) also stops it cleanly.
    let again = serve(&data);
    assert_eq!(again.fingerprint, fp);
    let client = Client::new(&again.url, again.fingerprint).unwrap();
    client.healthz().unwrap();
    signal(again, "-INT");
}

#[test]
fn admin_cli_manages_users() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let created = admin(&data, &["init"]);
    assert!(created.starts_with("created an office in "), "{created}");
    let fingerprint = field(&created, "certificate sha256 fingerprint:").to_owned();
    let again = admin(&data, &["init"]);
    assert!(again.starts_with("office already in "), "{again}");
    assert_eq!(
        field(&again, "certificate sha256 fingerprint:"),
        fingerprint
    );
    let added = admin(&data, &["user", "add", "Amina", "--role", "field-worker"]);
    assert!(added.starts_with("added user "), "{added}");
    let listed = admin(&data, &["user", "list"]);
    assert!(
        listed.contains("Amina") && listed.contains("field-worker"),
        "{listed}"
    );
    let dup = Command::new(BIN)
        .arg("--data")
        .arg(&data)
        .args(["admin", "user", "add", "Amina", "--role", "admin"])
        .output()
        .unwrap();
    assert!(!dup.status.success(), "duplicate user accepted");
    let unknown = Command::new(BIN)
        .arg("--data")
        .arg(&data)
        .args(["admin", "enroll", "Nobody"])
        .output()
        .unwrap();
    assert!(!unknown.status.success(), "code issued for an unknown user");
}

#[test]
fn the_invite_admin_enroll_prints_enrolls_a_phone_with_nothing_typed() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    admin(&data, &["init"]);
    admin(&data, &["user", "add", "Bo", "--role", "field-worker"]);
    let s = serve(&data);
    let out = admin(&data, &["enroll", "bo", "--url", &s.url]);
    let invite = field(&out, "invite:");
    let parsed = fieldcase_core::protocol::EnrollmentInvite::parse(invite).unwrap();
    assert_eq!(parsed.url, s.url);
    assert_eq!(parsed.pin, s.fingerprint);
    assert_eq!(parsed.display_code(), field(&out, "enrollment code:"));

    let phone = tempfile::tempdir().unwrap();
    let keys = fieldcase_core::crypto::StaticKeyProvider::random();
    let setup = || fieldcase_core::store::KeySetup {
        keystore: Some(&keys),
        passphrase: None,
    };
    let device = fieldcase_core::device::Device::enroll_with_invite(
        phone.path(),
        invite,
        setup(),
        Default::default(),
    )
    .unwrap();
    let listed = admin(&data, &["devices"]);
    assert!(
        listed.contains(&device.key_fingerprint().unwrap()),
        "{listed}"
    );
    // The invite's code is spent; a damaged invite is refused before anything is sent.
    let again = tempfile::tempdir().unwrap();
    let spent = fieldcase_core::device::Device::enroll_with_invite(
        again.path(),
        invite,
        setup(),
        Default::default(),
    );
    assert!(spent.is_err());
    let mut damaged = invite.to_owned();
    damaged.replace_range(10..11, if &invite[10..11] == "A" { "B" } else { "A" });
    let refused = fieldcase_core::device::Device::enroll_with_invite(
        again.path(),
        &damaged,
        setup(),
        Default::default(),
    );
    assert!(
        matches!(
            refused,
            Err(fieldcase_core::CoreError::Invite(
                fieldcase_core::protocol::InviteError::BadChecksum
            ))
        ),
        "{refused:?}"
    );
}

#[test]
fn enrollment_code_from_cli_works_once() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    admin(&data, &["init"]);
    admin(&data, &["user", "add", "Bo", "--role", "case-manager"]);
    let s = serve(&data);
    let out = admin(&data, &["enroll", "bo", "--ttl", "5m", "--url", &s.url]);
    let code = field(&out, "enrollment code:");
    assert_eq!(code.len(), 19, "{out}");
    assert_eq!(field(&out, "server url:"), s.url);
    let pin = Fingerprint::parse(field(&out, "fingerprint:")).unwrap();
    assert_eq!(pin, s.fingerprint);

    let key = SigningKey::generate(&mut OsRng);
    let answer = fieldcase_core::transport::enroll(&s.url, pin, code, &key).unwrap();
    assert_eq!(answer.role, Role::CaseManager);
    let shown = fieldcase_core::protocol::key_fingerprint(key.verifying_key().as_bytes());
    let device = DeviceClient::new(
        Client::new(&s.url, pin).unwrap(),
        DeviceCredential::new(answer.device_id, key),
    );
    // Until an admin confirms the key fingerprint the phone shows, it is refused.
    let refused = device.whoami().unwrap_err();
    assert_eq!(refused.code(), Some("device_unconfirmed"));
    let listed = admin(&data, &["devices"]);
    assert!(
        listed.contains("waiting") && listed.contains(&shown),
        "{listed}"
    );
    let id = answer.device_id.to_string();
    let wrong = Command::new(BIN)
        .arg("--data")
        .arg(&data)
        .args([
            "admin",
            "confirm",
            &id,
            "--fingerprint",
            "0000-0000-0000-0000",
        ])
        .output()
        .unwrap();
    assert!(!wrong.status.success(), "a wrong fingerprint was taken");
    assert!(
        String::from_utf8_lossy(&wrong.stderr).contains("not this device's key fingerprint"),
        "{}",
        String::from_utf8_lossy(&wrong.stderr)
    );
    assert_eq!(
        device.whoami().unwrap_err().code(),
        Some("device_unconfirmed")
    );
    // As read off the phone's screen: any case, spaces for dashes.
    let typed = shown.to_lowercase().replace('-', " ");
    admin(&data, &["confirm", &id, "--fingerprint", &typed]);
    let who = device.whoami().unwrap();
    assert_eq!(who.user_id, answer.user_id);
    let again =
        fieldcase_core::transport::enroll(&s.url, pin, code, &SigningKey::generate(&mut OsRng));
    assert_eq!(again.unwrap_err().code(), Some("enrollment_code_used"));
    terminate(s);
}

#[test]
fn config_file_is_read_and_flags_override_it() {
    let tmp = tempfile::tempdir().unwrap();
    let from_config = tmp.path().join("from-config");
    let config = tmp.path().join("server.toml");
    std::fs::write(
        &config,
        format!(
            "data = {:?}\nlisten = \"127.0.0.1:0\"\nrequest_timeout_secs = 30\n",
            from_config.to_str().unwrap()
        ),
    )
    .unwrap();
    let mut cmd = Command::new(BIN);
    cmd.arg("serve").arg("--config").arg(&config);
    let s = spawn(cmd);
    Client::new(&s.url, s.fingerprint)
        .unwrap()
        .healthz()
        .unwrap();
    terminate(s);
    assert!(from_config.join("server.db").exists());
    assert!(from_config.join("server.key").exists());

    let from_flag = tmp.path().join("from-flag");
    let mut cmd = Command::new(BIN);
    cmd.arg("serve")
        .arg("--config")
        .arg(&config)
        .arg("--data")
        .arg(&from_flag);
    let s = spawn(cmd);
    terminate(s);
    assert!(from_flag.join("server.db").exists());

    std::fs::write(&config, "bogus = 1\n").unwrap();
    let out = Command::new(BIN)
        .arg("serve")
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success(), "unknown config keys must be refused");
}

/// Runs the binary with `RUST_BACKTRACE=1` and returns (success, stdout, stderr).
fn run_raw(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn admin_commands_refuse_a_folder_that_holds_no_office() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("no-such-office");
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    for data in [&missing, &empty] {
        for args in [
            &["user", "list"][..],
            &["user", "add", "Amina", "--role", "admin"],
            &["case", "list"],
            &["enroll", "Amina"],
            &["audit", "verify"],
        ] {
            let mut all = vec!["--data", data.to_str().unwrap(), "admin"];
            all.extend_from_slice(args);
            let (ok, stdout, stderr) = run_raw(&all);
            assert!(!ok, "{args:?} succeeded on {}", data.display());
            assert!(stdout.is_empty(), "{stdout}");
            assert!(stderr.contains("no office in"), "{args:?}: {stderr}");
            assert!(
                stderr.contains("serve"),
                "the message says how to make one: {stderr}"
            );
        }
        // Nothing was created: no second, empty office beside the real one.
        assert!(!missing.exists(), "the folder was created");
        assert_eq!(std::fs::read_dir(&empty).unwrap().count(), 0);
    }
}

#[test]
fn input_errors_print_one_line_and_no_backtrace() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    admin(&data, &["init"]);
    let data_arg = data.to_str().unwrap();
    let bad_config = tmp.path().join("bad.toml");
    std::fs::write(&bad_config, "listen = 12\n").unwrap();
    for args in [
        vec!["--data", data_arg, "admin", "revoke", "not-a-uuid"],
        vec!["--data", data_arg, "admin", "case", "assign", "nope", "ana"],
        vec![
            "--data", data_arg, "admin", "user", "role", "Nobody", "--role", "admin",
        ],
        vec![
            "--data",
            data_arg,
            "--config",
            bad_config.to_str().unwrap(),
            "admin",
            "user",
            "list",
        ],
    ] {
        let (ok, _, stderr) = run_raw(&args);
        assert!(!ok, "{args:?} succeeded");
        assert!(stderr.starts_with("error: "), "{args:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
        assert!(!stderr.to_lowercase().contains("backtrace"), "{stderr}");
    }
}

/// `fieldcase-server --data DATA admin ARGS`, expected to fail: its standard error.
fn admin_fails(data: &Path, args: &[&str]) -> String {
    let out = Command::new(BIN)
        .arg("--data")
        .arg(data)
        .arg("admin")
        .args(args)
        .output()
        .unwrap();
    assert!(!out.status.success(), "admin {args:?} succeeded");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `serve` on `data` reading the configuration file `config`, to spawn or to run to its end.
fn serve_configured(data: &Path, config: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.arg("--config")
        .arg(config)
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(data);
    cmd
}

/// The arguments of `admin backup VERB FILE --identity IDENTITY` (verify or restore).
fn backup_with<'a>(verb: &'a str, file: &'a Path, identity: &'a Path) -> [&'a str; 5] {
    [
        "backup",
        verb,
        file.to_str().unwrap(),
        "--identity",
        identity.to_str().unwrap(),
    ]
}

/// An age identity in a file of its own, with its recipient.
fn age_identity(dir: &Path, name: &str) -> (std::path::PathBuf, String) {
    use age::secrecy::ExposeSecret;
    let identity = age::x25519::Identity::generate();
    let path = dir.join(name);
    std::fs::write(&path, identity.to_string().expose_secret()).unwrap();
    (path, identity.to_public().to_string())
}

#[test]
fn a_backup_taken_while_serving_verifies_and_restores_into_an_office_that_serves() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    admin(&data, &["init"]);
    admin(&data, &["user", "add", "ana", "--role", "field-worker"]);
    admin(
        &data,
        &[
            "case",
            "create",
            "--client-code",
            "K-0142",
            "--assign",
            "ana",
        ],
    );
    let serving = serve(&data);
    let (identity, recipient) = age_identity(tmp.path(), "holder.key");
    let file = tmp.path().join("office.fcbak");
    let out = admin(
        &data,
        &[
            "backup",
            "create",
            "--to",
            file.to_str().unwrap(),
            "--recipient",
            &recipient,
        ],
    );
    assert!(out.contains("1 cases, 1 users"), "{out}");
    terminate(serving);
    // Nothing readable in the file: the client code, the key file's words.
    let bytes = std::fs::read(&file).unwrap();
    for needle in [&b"K-0142"[..], b"age_identity", b"SQLite format"] {
        assert!(!bytes.windows(needle.len()).any(|w| w == needle));
    }
    let out = admin(&data, &backup_with("verify", &file, &identity));
    assert!(out.contains("backup ok"), "{out}");

    let restored = tmp.path().join("restored");
    admin(&restored, &backup_with("restore", &file, &identity));
    let listed = admin(&restored, &["case", "list"]);
    assert_eq!(listed.lines().count(), 1, "{listed}");
    let audit = admin(&restored, &["audit", "list", "--limit", "1"]);
    assert!(audit.contains("office_restored"), "{audit}");
    assert!(admin(&restored, &["audit", "verify"]).contains("audit chain ok"));
    let serving = serve(&restored);
    terminate(serving);
}

#[test]
fn a_backup_opened_with_the_wrong_key_cut_short_changed_or_from_a_newer_schema_restores_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    admin(&data, &["init"]);
    admin(&data, &["user", "add", "ana", "--role", "field-worker"]);
    let (identity, recipient) = age_identity(tmp.path(), "holder.key");
    let (stranger, _) = age_identity(tmp.path(), "stranger.key");
    let file = tmp.path().join("office.fcbak");
    admin(
        &data,
        &[
            "backup",
            "create",
            "--to",
            file.to_str().unwrap(),
            "--recipient",
            &recipient,
        ],
    );
    let bytes = std::fs::read(&file).unwrap();
    let target = tmp.path().join("target");
    let restore = |file: &Path, identity: &Path| {
        admin_fails(&target, &backup_with("restore", file, identity))
    };
    assert!(restore(&file, &stranger).contains("none of the given identities"));
    let cut = tmp.path().join("cut.fcbak");
    std::fs::write(&cut, &bytes[..bytes.len() - 100]).unwrap();
    assert!(restore(&cut, &identity).contains("damaged"));
    let changed = tmp.path().join("changed.fcbak");
    let mut flipped = bytes.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x40;
    std::fs::write(&changed, &flipped).unwrap();
    assert!(restore(&changed, &identity).contains("damaged"));
    // The same backup, as a newer server would have made it.
    let keys: Vec<age::x25519::Identity> = vec![
        std::fs::read_to_string(&identity)
            .unwrap()
            .trim()
            .parse()
            .unwrap(),
    ];
    let mut contents = fieldcase_server::office::backup::open(&file, &keys).unwrap();
    contents.manifest.schema_version = Some(99);
    let newer = tmp.path().join("newer.fcbak");
    fieldcase_server::office::backup::write(&contents, &[recipient.parse().unwrap()], &newer)
        .unwrap();
    assert!(restore(&newer, &identity).contains("newer than this server knows"));
    // Nothing was written for any of them, and a folder that holds an office is not overwritten.
    assert!(!target.exists());
    let refused = admin_fails(&data, &backup_with("restore", &file, &identity));
    assert!(refused.contains("not empty"), "{refused}");
    let leftovers: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".restore-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn the_office_key_exports_encrypted_to_its_keeper() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    admin(&data, &["init"]);
    let (identity, recipient) = age_identity(tmp.path(), "keeper.key");
    let out = tmp.path().join("server.key.age");
    admin(
        &data,
        &[
            "key",
            "export",
            "--to",
            &recipient,
            "--out",
            out.to_str().unwrap(),
        ],
    );
    let sealed = std::fs::read(&out).unwrap();
    assert!(!sealed.windows(12).any(|w| w == b"age_identity"));
    let keeper: age::x25519::Identity = std::fs::read_to_string(&identity)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let decryptor = age::Decryptor::new(&sealed[..]).unwrap();
    let mut plain = Vec::new();
    std::io::Read::read_to_end(
        &mut decryptor
            .decrypt(std::iter::once(&keeper as &dyn age::Identity))
            .unwrap(),
        &mut plain,
    )
    .unwrap();
    assert_eq!(plain, std::fs::read(data.join("server.key")).unwrap());
}

#[test]
fn the_lease_and_the_retention_come_from_the_configuration_and_are_checked() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let config = tmp.path().join("server.toml");
    admin(&data, &["init"]);
    admin(&data, &["user", "add", "ana", "--role", "field-worker"]);
    for bad in [
        "lease_hours = 0",
        "lease_hours = 721",
        "closed_case_retention_days = 4000",
        "connections_per_address = 0",
        "device_burst = 0",
    ] {
        std::fs::write(&config, format!("{bad}\n")).unwrap();
        let out = serve_configured(&data, &config).output().unwrap();
        assert!(!out.status.success(), "{bad} was taken");
    }
    std::fs::write(
        &config,
        "lease_hours = 2\nclosed_case_retention_days = 7\nconfirm_enrollment = false\n",
    )
    .unwrap();
    let s = spawn(serve_configured(&data, &config));
    let out = admin(&data, &["enroll", "ana", "--url", &s.url]);
    let code = field(&out, "enrollment code:");
    let key = SigningKey::generate(&mut OsRng);
    let answer = fieldcase_core::transport::enroll(&s.url, s.fingerprint, code, &key).unwrap();
    let device = DeviceClient::new(
        Client::new(&s.url, s.fingerprint).unwrap(),
        DeviceCredential::new(answer.device_id, key),
    );
    let request = fieldcase_core::sync::SyncRequest::default();
    let before = time::OffsetDateTime::now_utc().unix_timestamp();
    let reply = device.post("/v1/sync", &request.encode().unwrap()).unwrap();
    let lease = fieldcase_core::sync::SyncResponse::decode(&reply)
        .unwrap()
        .lease
        .unwrap();
    let granted = lease.expires_at - before;
    assert!((7200 - 5..=7200 + 5).contains(&granted), "{granted}");
    terminate(s);
}

#[test]
fn serve_takes_a_backup_at_start_that_verifies_and_records_its_outcome() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let backups = tmp.path().join("backups");
    let (identity, recipient) = age_identity(tmp.path(), "holder.key");
    admin(&data, &["init"]);
    admin(&data, &["user", "add", "ana", "--role", "field-worker"]);
    let config = tmp.path().join("server.toml");
    std::fs::write(
        &config,
        format!(
            "backup_every_hours = 24\nbackup_dir = {:?}\nbackup_recipients = [{recipient:?}]\n",
            backups.to_str().unwrap()
        ),
    )
    .unwrap();
    let s = spawn(serve_configured(&data, &config));
    let taken = (0..300).find_map(|_| {
        std::thread::sleep(Duration::from_millis(100));
        let found: Vec<_> = std::fs::read_dir(&backups)
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "fcbak"))
            .collect();
        (!found.is_empty()).then_some(found)
    });
    let taken = taken.expect("serve took no backup at start");
    assert_eq!(taken.len(), 1);
    // Its outcome is recorded once the file is in place.
    let recorded = (0..300).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        admin(&data, &["audit", "list", "--limit", "5"]).contains("backup_taken")
    });
    assert!(recorded, "the backup's outcome was not recorded");
    terminate(s);
    let out = admin(&data, &backup_with("verify", &taken[0], &identity));
    assert!(
        out.contains("backup ok") && out.contains("1 users"),
        "{out}"
    );
    // A schedule without recipients is refused at start.
    std::fs::write(
        &config,
        format!(
            "backup_every_hours = 24\nbackup_dir = {:?}\n",
            backups.to_str().unwrap()
        ),
    )
    .unwrap();
    let out = serve_configured(&data, &config).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("backup_recipients"));
}

#[test]
fn serve_backs_up_a_database_of_an_older_schema_before_migrating_it() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    admin(&data, &["init"]);
    // The database as the first version left it, beside the office's key.
    let db = data.join("server.db");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    common::sqlite_at_schema(
        &db,
        1,
        "INSERT INTO users (id, name, role, active, created_at)
         VALUES ('11111111-1111-4111-8111-111111111111', 'ana', 'field-worker', 1, 0);",
    );
    let (identity, recipient) = age_identity(tmp.path(), "holder.key");
    let config = tmp.path().join("server.toml");
    std::fs::write(&config, format!("backup_recipients = [{recipient:?}]\n")).unwrap();
    let s = spawn(serve_configured(&data, &config));
    terminate(s);
    let taken: Vec<_> = std::fs::read_dir(data.join("pre-migration-backups"))
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    assert_eq!(taken.len(), 1, "{taken:?}");
    let name = taken[0].file_name().unwrap().to_string_lossy().into_owned();
    assert!(name.starts_with("pre-migration-v1-"), "{name}");
    let out = admin(&data, &backup_with("verify", &taken[0], &identity));
    assert!(
        out.contains("schema version: 1") && out.contains("1 users"),
        "{out}"
    );
    // The office itself was migrated and serves on.
    assert!(admin(&data, &["user", "list"]).contains("ana"));
}
