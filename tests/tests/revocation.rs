//! Lost phones and need to know, end to end over real TLS: revocation with a signed wipe order,
//! quarantine, the offline lease, panic wipe, and purging an unassigned case.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use fieldcase_core::CoreError;
use fieldcase_core::crypto::KeyProvider;
use fieldcase_core::device::{PENDING_FILE, ServerAddress};
use fieldcase_core::protocol::{Role, WipeOrder};
use fieldcase_core::store::{DB_FILE, KEY_FILE};
use fieldcase_server::sql_params;
use fieldcase_tests::{TestDevice, TestServer};

fn store_files(phone: &TestDevice) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(phone.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(DB_FILE) || n.starts_with(KEY_FILE))
        .collect();
    names.sort();
    names
}

/// The server database's global write lock held from outside the server: SQLite's
/// `BEGIN IMMEDIATE` on the file, or on PostgreSQL the same advisory lock the server takes.
enum WriteLockHolder {
    Sqlite(rusqlite::Connection),
    Postgres(postgres::Client),
}

impl WriteLockHolder {
    fn take(server: &TestServer) -> WriteLockHolder {
        match &server.pg {
            None => {
                let conn = rusqlite::Connection::open(server.dir.path().join("server.db")).unwrap();
                conn.execute_batch("BEGIN IMMEDIATE").unwrap();
                WriteLockHolder::Sqlite(conn)
            }
            Some(pg) => {
                let mut client = pg.connect().unwrap();
                client
                    .batch_execute(&format!(
                        "BEGIN; SELECT pg_advisory_xact_lock({})",
                        i64::from_be_bytes(*b"fcwrite!")
                    ))
                    .unwrap();
                WriteLockHolder::Postgres(client)
            }
        }
    }

    fn revoke_and_commit(self, device: &str) {
        let revoke = format!("UPDATE devices SET status = 'revoked' WHERE id = '{device}'");
        match self {
            WriteLockHolder::Sqlite(conn) => {
                conn.execute_batch(&revoke).unwrap();
                conn.execute_batch("COMMIT").unwrap();
            }
            WriteLockHolder::Postgres(mut client) => {
                client.batch_execute(&revoke).unwrap();
                client.batch_execute("COMMIT").unwrap();
            }
        }
    }
}

fn device_row(server: &TestServer, phone_id: &str) -> (String, Option<i64>, Option<String>) {
    server.with_sql(|c| {
        let r = c.query_row(
            "SELECT status, wiped_at, wipe_reason FROM devices WHERE id = ?1",
            sql_params![phone_id],
        )?;
        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
    })
}

/// Every byte of every file left in the phone's folder: none may name the office (address, port,
/// certificate fingerprint), the device, or say the phone was wiped.
fn assert_folder_tells_nothing(
    phone: &TestDevice,
    id: fieldcase_core::ids::DeviceId,
    server: &TestServer,
) {
    let pin = server.fingerprint();
    let device = id.to_string();
    let needles: Vec<Vec<u8>> = vec![
        server.addr().to_string().into_bytes(),
        server.addr().ip().to_string().into_bytes(),
        server.addr().port().to_string().into_bytes(),
        pin.to_hex().into_bytes(),
        pin.0.to_vec(),
        device.clone().into_bytes(),
        device.replace('-', "").into_bytes(),
        b"https".to_vec(),
        b"panic".to_vec(),
        b"duress".to_vec(),
        b"wipe".to_vec(),
        b"revoked".to_vec(),
        b"receipt".to_vec(),
    ];
    for entry in std::fs::read_dir(phone.path()).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().to_lowercase();
        let bytes = std::fs::read(entry.path()).unwrap();
        for needle in &needles {
            let shown = String::from_utf8_lossy(needle);
            assert!(
                !name.contains(shown.as_ref()),
                "the file name {name} says {shown}"
            );
            assert!(
                !bytes
                    .windows(needle.len())
                    .any(|w| w.eq_ignore_ascii_case(needle)),
                "{name} holds {shown}"
            );
        }
    }
}

#[test]
fn a_phone_wiped_while_locked_tells_the_office_at_once_when_the_office_is_reachable() {
    let server = TestServer::start();
    let ana = server.add_user("ana", Role::FieldWorker);
    server.create_case("K-7L", &[ana]);
    let phone = TestDevice::enroll_direct(&server, "ana");
    phone.device.sync_now().unwrap();
    let id = phone.id();
    phone.device.store().lock().unwrap();

    // Locked, the device key is sealed: what goes to the office is the receipt prepared when
    // the phone first met it, which the key file held.
    let report = phone.device.panic_wipe().unwrap();
    assert!(report.keystore_key_destroyed);
    assert!(phone.keys.root_key().is_err());
    assert!(store_files(&phone).is_empty());
    assert_folder_tells_nothing(&phone, id, &server);
    // Locked, the device knows no address either: nothing is sent until one is given.
    assert!(!phone.device.send_pending_receipt().unwrap());
    let office = ServerAddress {
        url: format!("https://{}", server.addr()),
        pin: server.fingerprint(),
    };
    assert!(fieldcase_core::device::send_pending_receipt(phone.path(), &office).unwrap());
    let (status, _, reason) = device_row(&server, &id.to_string());
    assert_eq!(
        (status.as_str(), reason.as_deref()),
        ("revoked", Some("panic"))
    );
}

#[test]
fn a_revocation_receipt_that_could_not_be_sent_waits_sealed_and_the_device_sends_it_later() {
    let server = TestServer::start();
    let ana = server.add_user("ana", Role::FieldWorker);
    server.create_case("K-7R", &[ana]);
    let proxy = fieldcase_tests::FaultProxy::start(server.addr());
    let phone = TestDevice::enroll(&server, "ana", &proxy.url());
    phone.device.sync_now().unwrap();
    let id = phone.id();
    server.revoke(id);
    let order = WipeOrder::sign(
        &server.running().state.keys().signing_key,
        *id.as_uuid(),
        time::OffsetDateTime::now_utc().unix_timestamp(),
        "revoked",
    );
    // The office cannot be reached when the phone obeys: the receipt waits.
    let nowhere = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    proxy.set_upstream(nowhere.local_addr().unwrap());
    drop(nowhere);
    phone.device.obey_wipe_order(&order, None).unwrap();
    assert!(phone.keys.root_key().is_err());
    assert!(phone.path().join(PENDING_FILE).exists());
    assert_folder_tells_nothing(&phone, id, &server);
    // Back in range: the device still in memory knows where its office is.
    proxy.set_upstream(server.addr());
    assert!(phone.device.send_pending_receipt().unwrap());
    assert!(!phone.path().join(PENDING_FILE).exists());
    let (status, _, reason) = device_row(&server, &id.to_string());
    assert_eq!(
        (status.as_str(), reason.as_deref()),
        ("revoked", Some("revoked"))
    );
}

fn audit_actions(server: &TestServer) -> Vec<String> {
    server.with_sql(|c| {
        c.query_all("SELECT action FROM audit_log ORDER BY seq", &[])?
            .iter()
            .map(|r| r.get(0))
            .collect()
    })
}

#[test]
fn a_revoked_phone_is_refused_wipes_itself_and_the_office_gets_the_receipt() {
    let server = TestServer::start();
    let ana = server.add_user("ana", Role::FieldWorker);
    let (case, _) = server.create_case("K-1", &[ana]);
    let phone = TestDevice::enroll_direct(&server, "ana");
    phone.device.sync_now().unwrap();
    let id = phone.id();

    server.revoke(id);
    let result = phone.device.sync_now();
    assert!(
        matches!(result, Err(CoreError::RevokedAndWiped)),
        "{result:?}"
    );
    assert_eq!(
        store_files(&phone),
        Vec::<String>::new(),
        "store files remain after the wipe"
    );
    assert!(
        !phone.path().join(PENDING_FILE).exists(),
        "the receipt was delivered"
    );
    assert!(matches!(
        phone.device.store().case(case),
        Err(CoreError::NoStore)
    ));
    let (status, wiped_at, reason) = device_row(&server, &id.to_string());
    assert_eq!(status, "revoked");
    assert!(wiped_at.is_some());
    assert_eq!(reason.as_deref(), Some("revoked"));
    assert!(audit_actions(&server).contains(&"wipe_receipt_revoked".to_string()));
    // Core destroyed the keystore's key itself, with no call from the app.
    assert!(phone.keys.root_key().is_err(), "the keystore key survived");
}

#[test]
fn a_forged_wipe_order_is_refused_and_wipes_nothing() {
    let server = TestServer::start();
    let ana = server.add_user("ana", Role::FieldWorker);
    let (case, _) = server.create_case("K-2", &[ana]);
    let phone = TestDevice::enroll_direct(&server, "ana");
    phone.device.sync_now().unwrap();
    let impostor = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
    let forged = WipeOrder::sign(&impostor, *phone.id().as_uuid(), 1, "revoked");
    assert!(matches!(
        phone.device.obey_wipe_order(&forged, None),
        Err(CoreError::ForgedWipeOrder)
    ));
    assert_eq!(
        store_files(&phone).len(),
        2 + usize::from(phone.path().join(format!("{DB_FILE}-wal")).exists())
            + usize::from(phone.path().join(format!("{DB_FILE}-shm")).exists())
    );
    assert_eq!(phone.case(case).client_code, "K-2");
}

#[test]
fn a_revoked_phones_offline_edits_land_in_quarantine_not_in_the_case() {
    let server = TestServer::start();
    let ana = server.add_user("ana", Role::FieldWorker);
    let bojan = server.add_user("bojan", Role::FieldWorker);
    let (case, _) = server.create_case("K-3", &[ana, bojan]);
    let lost = TestDevice::enroll_direct(&server, "ana");
    let colleague = TestDevice::enroll_direct(&server, "bojan");
    lost.device.sync_now().unwrap();
    colleague.device.sync_now().unwrap();
    lost.write_note(case, "written offline on the phone that was then stolen");
    server.revoke(lost.id());

    assert!(matches!(
        lost.device.sync_now(),
        Err(CoreError::RevokedAndWiped)
    ));
    assert!(
        server.case(case).notes.is_empty(),
        "nothing of the revoked phone was merged"
    );
    let held: i64 = server.with_sql(|c| {
        c.query_row(
            "SELECT COUNT(*) FROM quarantine WHERE case_id = ?1 AND decision IS NULL",
            sql_params![&case.to_string()],
        )?
        .get(0)
    });
    assert_eq!(held, 1, "the upload is kept for an admin");
    // The colleague's phone never sees it.
    colleague.device.sync_now().unwrap();
    assert!(colleague.case(case).notes.is_empty());
}

#[test]
fn a_revocation_committed_during_a_sync_sends_its_upload_to_quarantine() {
    let server = TestServer::start();
    let ana = server.add_user("ana", Role::FieldWorker);
    let bojan = server.add_user("bojan", Role::FieldWorker);
    let (case, _) = server.create_case("K-4", &[ana, bojan]);
    let phone = TestDevice::enroll_direct(&server, "ana");
    let colleague = TestDevice::enroll_direct(&server, "bojan");
    phone.device.sync_now().unwrap();
    colleague.device.sync_now().unwrap();
    let note = "the last note from the phone that is being stolen";
    phone.write_note(case, note);

    // Hold the database's write lock from another connection, start the phone's sync (it is
    // authenticated, then waits for the lock), commit the revocation, release.
    let phone_id = phone.id();
    let blocker = WriteLockHolder::take(&server);
    let syncing = std::thread::spawn(move || {
        let result = phone.device.sync_now();
        (phone, result)
    });
    std::thread::sleep(Duration::from_millis(500));
    blocker.revoke_and_commit(&phone_id.to_string());
    let (phone, result) = syncing.join().unwrap();
    assert!(
        matches!(result, Err(CoreError::RevokedAndWiped)),
        "{result:?}"
    );
    assert!(store_files(&phone).is_empty());

    // Not merged, not lost: in quarantine, readable by an admin.
    assert!(server.case(case).notes.is_empty());
    let state = &server.running().state;
    let vault = state.vault().clone();
    let held = state
        .db()
        .read(|c| fieldcase_server::office::quarantine::list(c))
        .unwrap();
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].device, phone_id);
    let preview = state
        .db()
        .read(|c| fieldcase_server::office::quarantine::preview(c, &vault, held[0].id))
        .unwrap();
    assert_eq!(preview.notes.len(), 1);
    assert_eq!(preview.notes[0].body, note);

    // Released: merged, and the colleague's phone gets it at its next sync.
    colleague.write_note(case, "colleague keeps working");
    colleague.device.sync_now().unwrap();
    state
        .db()
        .write(|c| fieldcase_server::office::quarantine::release(c, &vault, held[0].id, 1))
        .unwrap()
        .keep(&vault);
    colleague.device.sync_now().unwrap();
    let bodies: Vec<String> = colleague
        .case(case)
        .notes
        .iter()
        .map(|n| n.body.clone())
        .collect();
    assert!(bodies.contains(&note.to_string()));
    assert!(
        bodies.contains(&"colleague keeps working".to_string()),
        "no other edit lost"
    );
    assert_eq!(colleague.case(case), server.case(case));
    let actions = audit_actions(&server);
    assert!(actions.contains(&"quarantine_held".to_string()));
    assert!(actions.contains(&"quarantine_released".to_string()));
}

#[test]
fn a_discarded_quarantine_leaves_the_case_unchanged() {
    let server = TestServer::start();
    let ana = server.add_user("ana", Role::FieldWorker);
    let (case, _) = server.create_case("K-5", &[ana]);
    let phone = TestDevice::enroll_direct(&server, "ana");
    phone.device.sync_now().unwrap();
    phone.write_note(case, "to be discarded");
    let upload = phone
        .device
        .store()
        .prepare_sync()
        .unwrap()
        .request()
        .uploads[0]
        .clone();
    let state = &server.running().state;
    let vault = state.vault().clone();
    let id = state
        .db()
        .write(|c| {
            fieldcase_server::office::quarantine::hold(
                c,
                &vault,
                phone.id(),
                ana,
                case,
                &upload.changes,
                1,
            )
        })
        .unwrap()
        .unwrap();
    let before = server.case(case);
    state
        .db()
        .write(|c| fieldcase_server::office::quarantine::discard(c, &vault, id, 2))
        .unwrap()
        .keep(&vault);
    assert_eq!(server.case(case), before);
    assert!(matches!(
        state
            .db()
            .write(|c| fieldcase_server::office::quarantine::release(c, &vault, id, 3))
            .map(|kept| kept.keep(&vault)),
        Err(fieldcase_server::ServerError::QuarantineDecided)
    ));
    assert!(audit_actions(&server).contains(&"quarantine_discarded".to_string()));
}

#[test]
fn the_offline_lease_closes_case_data_until_a_sync_renews_it() {
    let clock = fieldcase_server::ManualClock::new();
    let server = TestServer::start_with_clock(clock.clone(), Duration::from_secs(60));
    let ana = server.add_user("ana", Role::FieldWorker);
    let (case, _) = server.create_case("K-6", &[ana]);
    let phone = TestDevice::enroll_direct(&server, "ana");
    // Enrolled but never synced: no lease yet, no case data (there is none anyway).
    assert!(matches!(
        phone.device.store().list_cases(),
        Err(CoreError::LeaseExpired)
    ));
    phone.device.sync_now().unwrap();
    assert_eq!(phone.case(case).client_code, "K-6");

    // Offline past the lease: case data stays closed, on every path.
    phone.clock.advance(time::Duration::seconds(61));
    assert!(matches!(
        phone.device.store().case(case),
        Err(CoreError::LeaseExpired)
    ));
    assert!(matches!(
        phone.device.store().today_tasks(time::UtcOffset::UTC),
        Err(CoreError::LeaseExpired)
    ));
    assert!(matches!(
        phone.device.store().write_note(case, &note()),
        Err(CoreError::LeaseExpired)
    ));
    // Editing the lease in the database file does not help: garbage, or no lease at all.
    let db = phone.path().join(DB_FILE);
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute(
            "UPDATE meta SET value = X'0102030405' WHERE name = 'lease'",
            [],
        )
        .unwrap();
    }
    phone.device.store().lock().unwrap();
    phone
        .device
        .store()
        .unlock_with_keystore(&phone.keys)
        .unwrap();
    assert!(matches!(
        phone.device.store().case(case),
        Err(CoreError::LeaseExpired)
    ));
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute("DELETE FROM meta WHERE name = 'lease'", [])
            .unwrap();
    }
    phone.device.store().lock().unwrap();
    phone
        .device
        .store()
        .unlock_with_keystore(&phone.keys)
        .unwrap();
    assert!(matches!(
        phone.device.store().case(case),
        Err(CoreError::LeaseExpired)
    ));

    // A sync renews it (the office's clock has moved on as well).
    clock.advance(61);
    phone.device.sync_now().unwrap();
    assert_eq!(phone.case(case).client_code, "K-6");

    // Past the lease again, then revoked: the sync wipes instead of renewing.
    phone.clock.advance(time::Duration::seconds(61));
    clock.advance(61);
    server.revoke(phone.id());
    assert!(matches!(
        phone.device.sync_now(),
        Err(CoreError::RevokedAndWiped)
    ));
    assert!(store_files(&phone).is_empty());
}

#[test]
fn a_clock_set_back_does_not_reopen_an_expired_lease() {
    let clock = fieldcase_server::ManualClock::new();
    let server = TestServer::start_with_clock(clock.clone(), Duration::from_secs(60));
    let ana = server.add_user("ana", Role::FieldWorker);
    let (case, _) = server.create_case("K-6B", &[ana]);
    let phone = TestDevice::enroll_direct(&server, "ana");
    phone.device.sync_now().unwrap();
    let store = phone.device.store();
    // The office said what time it is: that is the phone's trusted time now.
    let trusted = store.trusted_time().unwrap().unwrap();
    assert!((trusted - clock_now(&clock)).abs() <= 1, "{trusted}");
    assert_eq!(phone.case(case).client_code, "K-6B");

    // Past the lease, then the clock set back a day: still closed, on every path.
    phone.clock.advance(time::Duration::seconds(61));
    assert!(matches!(store.case(case), Err(CoreError::LeaseExpired)));
    phone.clock.advance(time::Duration::days(-1));
    assert!(matches!(store.case(case), Err(CoreError::LeaseExpired)));
    assert!(matches!(store.list_cases(), Err(CoreError::LeaseExpired)));
    assert!(matches!(
        store.write_note(case, &note()),
        Err(CoreError::LeaseExpired)
    ));
    // Nor after the app starts again (the mark was written when it passed the lease's end).
    store.lock().unwrap();
    drop(phone.device);
    let reopened = fieldcase_core::device::Device::open(
        phone.dir.path(),
        fieldcase_tests::device_options(&phone.clock),
    )
    .unwrap();
    reopened.store().unlock_with_keystore(&phone.keys).unwrap();
    assert!(matches!(
        reopened.store().case(case),
        Err(CoreError::LeaseExpired)
    ));

    // A sync renews the lease and brings the office's time back as the trusted time, although
    // the phone's clock is a day behind (the request signatures use the real time).
    clock.advance(61);
    reopened.sync_now().unwrap();
    assert_eq!(reopened.store().case(case).unwrap().client_code, "K-6B");
    // Time passing counts although the wall clock reads a day early: 61 s later it is closed.
    phone.clock.advance(time::Duration::seconds(61));
    assert!(matches!(
        reopened.store().case(case),
        Err(CoreError::LeaseExpired)
    ));
}

fn clock_now(clock: &fieldcase_server::ManualClock) -> i64 {
    use fieldcase_server::Clock;
    clock.now()
}

fn note() -> fieldcase_core::model::NewNote {
    fieldcase_core::model::NewNote {
        kind: fieldcase_core::model::NoteKind::Visit,
        body: "x".into(),
        tags: vec![],
        task: None,
    }
}

#[test]
fn panic_wipe_needs_no_network_and_is_reported_later() {
    let server = TestServer::start();
    let ana = server.add_user("ana", Role::FieldWorker);
    let (case, _) = server.create_case("K-7", &[ana]);
    let proxy = fieldcase_tests::FaultProxy::start(server.addr());
    let phone = TestDevice::enroll(&server, "ana", &proxy.url());
    phone.device.sync_now().unwrap();
    phone.write_note(case, "sensitive");
    let id = phone.id();
    // A copy an attacker took before.
    let copy = tempfile::tempdir().unwrap();
    for name in [
        DB_FILE.to_string(),
        format!("{DB_FILE}-wal"),
        KEY_FILE.to_string(),
    ] {
        if phone.path().join(&name).exists() {
            std::fs::copy(phone.path().join(&name), copy.path().join(&name)).unwrap();
        }
    }
    drop(proxy); // no network from here on

    let report = phone.device.panic_wipe().unwrap();
    assert!(report.files_removed.contains(&KEY_FILE.to_string()));
    assert!(store_files(&phone).is_empty());
    // Core destroyed the keystore's key through the key provider.
    assert!(report.keystore_key_destroyed);
    assert!(phone.keys.root_key().is_err(), "the keystore key survived");
    assert!(phone.path().join(PENDING_FILE).exists());
    // Nothing left on the phone says where the office is, which certificate it has, whose
    // phone it was, or that it was wiped.
    assert_folder_tells_nothing(&phone, id, &server);
    // The old copy's key file was taken before the wipe: that copy is what a thief has, and
    // only the keystore key (now destroyed) opens it; the shredded key file on the phone is
    // gone, so any copy of the database alone opens with nothing.
    std::fs::remove_file(copy.path().join(KEY_FILE)).unwrap();
    assert!(matches!(
        fieldcase_core::store::Store::open(
            copy.path(),
            fieldcase_tests::device_options(&phone.clock)
        ),
        Err(CoreError::NoStore)
    ));

    // The device still in memory knows only the proxy's address, which is gone: it stays.
    assert!(phone.device.send_pending_receipt().is_err());
    assert!(phone.path().join(PENDING_FILE).exists());
    // Back in range later, directly, with the office's address given again (its enrollment
    // QR code): the sealed receipt reaches the office, which opens it and records the wipe.
    let office = ServerAddress {
        url: format!("https://{}", server.addr()),
        pin: server.fingerprint(),
    };
    assert!(fieldcase_core::device::send_pending_receipt(phone.path(), &office).unwrap());
    assert!(!phone.path().join(PENDING_FILE).exists());
    assert!(!fieldcase_core::device::send_pending_receipt(phone.path(), &office).unwrap());
    let (status, wiped_at, reason) = device_row(&server, &id.to_string());
    assert_eq!(
        (status.as_str(), reason.as_deref()),
        ("revoked", Some("panic"))
    );
    assert!(wiped_at.is_some());
}

#[test]
fn an_unassigned_case_is_purged_after_its_pending_edits_reach_the_office() {
    let server = TestServer::start();
    let ana = server.add_user("ana", Role::FieldWorker);
    let (case, _) = server.create_case("K-PURGE-8", &[ana]);
    let (kept, _) = server.create_case("K-KEEP-9", &[ana]);
    let phone = TestDevice::enroll_direct(&server, "ana");
    phone.device.sync_now().unwrap();
    let pending = phone.write_note(case, "written before the unassignment reached the phone");
    // Remember some ciphertext of the case as stored on the phone.
    let sealed: Vec<u8> = {
        let conn = rusqlite::Connection::open(phone.path().join(DB_FILE)).unwrap();
        conn.query_row(
            "SELECT snapshot FROM case_docs WHERE case_id = ?1",
            [case.as_bytes().as_slice()],
            |r| r.get(0),
        )
        .unwrap()
    };

    server.unassign(case, ana);
    phone.device.sync_now().unwrap();
    // The pending note reached the office before the purge.
    assert!(server.case(case).notes.iter().any(|n| n.id == pending));
    // Gone from the phone; the other case stays.
    assert!(matches!(
        phone.device.store().case(case),
        Err(CoreError::CaseNotFound)
    ));
    let listed: Vec<_> = phone
        .device
        .store()
        .list_cases()
        .unwrap()
        .iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(listed, vec![kept]);
    // The purge receipt is recorded and audited.
    let receipts: i64 = server.with_sql(|c| {
        c.query_row(
            "SELECT COUNT(*) FROM purge_receipts WHERE case_id = ?1",
            sql_params![&case.to_string()],
        )?
        .get(0)
    });
    assert_eq!(receipts, 1);
    assert!(audit_actions(&server).contains(&"case_purged".to_string()));
    // After compaction no byte of the case's ciphertext is left in the files.
    phone.device.store().compact().unwrap();
    for name in [DB_FILE.to_string(), format!("{DB_FILE}-wal")] {
        if let Ok(bytes) = std::fs::read(phone.path().join(&name)) {
            assert!(
                !bytes.windows(64).any(|w| w == &sealed[..64]),
                "case bytes left in {name}"
            );
        }
    }
    // Asking for it again by id yields nothing: a forged upload naming it gets no update.
    let request = fieldcase_core::sync::SyncRequest {
        version: fieldcase_core::sync::PROTOCOL_VERSION,
        cursor: 0,
        uploads: vec![fieldcase_core::sync::CaseChanges {
            case_id: case,
            changes: vec![],
            heads: vec![],
        }],
        purged: vec![],
        ..fieldcase_core::sync::SyncRequest::default()
    };
    let prepared_cursor0 = fieldcase_core::sync::hub::handle_sync(
        &mut fieldcase_core::sync::hub::MemoryHub::new(),
        phone.id(),
        ana,
        &request,
    )
    .unwrap();
    assert!(prepared_cursor0.updates.is_empty());
}

/// A device of an admin, talking to the admin API with signed requests.
fn admin_client(server: &TestServer, name: &str) -> fieldcase_core::transport::DeviceClient {
    use fieldcase_core::transport::{Client, DeviceClient, DeviceCredential, enroll};
    let url = format!("https://{}", server.addr());
    let key = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
    let enrolled = enroll(
        &url,
        server.fingerprint(),
        &server.enrollment_code(name),
        &key,
    )
    .unwrap();
    DeviceClient::new(
        Client::new(&url, server.fingerprint()).unwrap(),
        DeviceCredential::new(enrolled.device_id, key),
    )
}

#[test]
fn the_admin_api_revokes_reads_and_releases_quarantine_and_checks_the_audit_chain() {
    let server = TestServer::start();
    let ana = server.add_user("ana", Role::FieldWorker);
    let boss = server.add_user("boss", Role::Admin);
    let (case, _) = server.create_case("K-10", &[ana]);
    let admin = admin_client(&server, "boss");
    let phone = TestDevice::enroll_direct(&server, "ana");
    phone.device.sync_now().unwrap();

    // A field worker's device may not use the admin API.
    let worker = admin_client(&server, "ana");
    match worker.get("/v1/admin/devices") {
        Err(fieldcase_core::transport::TransportError::Http { status, code, .. }) => {
            assert_eq!((status, code.as_str()), (403, "forbidden"));
        }
        other => panic!("expected 403, got {other:?}"),
    }

    let devices: serde_json::Value =
        serde_json::from_slice(&admin.get("/v1/admin/devices").unwrap()).unwrap();
    let row = devices
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["device_id"] == phone.id().to_string().as_str())
        .unwrap();
    assert_eq!(row["status"], "active");
    assert!(row["last_sync_at"].is_i64() && row["lease_expires_at"].is_i64());

    phone.write_note(case, "written offline, then the phone was lost");
    let phone_id = phone.id().to_string();
    // A stolen admin phone alone cannot act as an admin: changes need a recent web sign-in.
    match admin.post(&format!("/v1/admin/devices/{}/revoke", phone.id()), b"") {
        Err(fieldcase_core::transport::TransportError::Http { status, code, .. }) => {
            assert_eq!((status, code.as_str()), (403, "recent_sign_in_required"));
        }
        other => panic!("expected 403, got {other:?}"),
    }
    // A sign-in that is no longer recent does not do either.
    server.sign_in_on_the_web(boss);
    server.with_sql(|c| {
        c.execute(
            "UPDATE web_sessions SET created_at = created_at - ?1",
            sql_params![fieldcase_server::office::sign_in::RECENT_SIGN_IN_SECS + 60],
        )?;
        Ok(())
    });
    assert!(
        admin
            .post(&format!("/v1/admin/devices/{}/revoke", phone.id()), b"")
            .is_err()
    );
    server.sign_in_on_the_web(boss);
    let revoked: serde_json::Value = serde_json::from_slice(
        &admin
            .post(&format!("/v1/admin/devices/{}/revoke", phone.id()), b"")
            .unwrap(),
    )
    .unwrap();
    assert_eq!(revoked["revoked"], true);
    assert!(matches!(
        phone.device.sync_now(),
        Err(CoreError::RevokedAndWiped)
    ));

    let devices: serde_json::Value =
        serde_json::from_slice(&admin.get("/v1/admin/devices").unwrap()).unwrap();
    let row = devices
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["device_id"] == phone_id.as_str())
        .unwrap();
    assert_eq!(
        (row["status"].as_str(), row["wipe_reason"].as_str()),
        (Some("revoked"), Some("revoked"))
    );

    let held: serde_json::Value =
        serde_json::from_slice(&admin.get("/v1/admin/quarantine").unwrap()).unwrap();
    let id = held[0]["id"].as_str().unwrap().to_owned();
    // The admin manages devices, so she sees that an upload waits; what it says is case
    // content, for the case's team only.
    match admin.get(&format!("/v1/admin/quarantine/{id}")) {
        Err(fieldcase_core::transport::TransportError::Http { status, code, .. }) => {
            assert_eq!((status, code.as_str()), (403, "forbidden"));
        }
        other => panic!("an admin off the case's team read its quarantine: {other:?}"),
    }
    server.join_default_team(boss);
    let shown: serde_json::Value =
        serde_json::from_slice(&admin.get(&format!("/v1/admin/quarantine/{id}")).unwrap()).unwrap();
    assert_eq!(
        shown["notes"][0]["body"],
        "written offline, then the phone was lost"
    );
    admin
        .post(&format!("/v1/admin/quarantine/{id}/release"), b"")
        .unwrap();
    assert_eq!(server.case(case).notes.len(), 1);
    match admin.post(&format!("/v1/admin/quarantine/{id}/discard"), b"") {
        Err(fieldcase_core::transport::TransportError::Http { status, .. }) => {
            assert_eq!(status, 409)
        }
        other => panic!("expected 409, got {other:?}"),
    }
    let chain: serde_json::Value =
        serde_json::from_slice(&admin.get("/v1/admin/audit/verify").unwrap()).unwrap();
    assert_eq!(chain["intact"], true);
    assert_eq!(chain["head"].as_str().map(str::len), Some(64), "{chain}");
}

#[test]
fn a_closed_case_is_purged_from_phones_once_its_retention_has_passed() {
    let clock = fieldcase_server::ManualClock::new();
    let server =
        TestServer::start_with_limits(clock.clone(), |l| l.retention = Duration::from_secs(120));
    let ana = server.add_user("ana", Role::FieldWorker);
    let (case, _) = server.create_case("K-11", &[ana]);
    let phone = TestDevice::enroll_direct(&server, "ana");
    phone.device.sync_now().unwrap();
    server.close_case(case);
    phone.device.sync_now().unwrap();
    assert_eq!(
        phone.case(case).status,
        fieldcase_core::model::CaseStatus::Closed,
        "kept during retention"
    );
    clock.advance(121);
    let closed_at: Option<i64> = server.with_sql(|c| {
        c.query_row(
            "SELECT closed_at FROM cases WHERE id = ?1",
            sql_params![&case.to_string()],
        )?
        .get(0)
    });
    assert!(
        closed_at.is_some(),
        "the office recorded when the case was closed"
    );
    phone.device.sync_now().unwrap();
    assert!(matches!(
        phone.device.store().case(case),
        Err(CoreError::CaseNotFound)
    ));
    assert_eq!(
        server.case(case).status,
        fieldcase_core::model::CaseStatus::Closed,
        "the office keeps it"
    );
}

/// The office's saved document of `case`, as a hostile phone would start from it.
fn office_doc(server: &TestServer, case: fieldcase_core::ids::CaseId) -> automerge::AutoCommit {
    use fieldcase_core::sync::hub::HubStorage;
    let state = &server.running().state;
    let vault = state.vault().clone();
    let saved = state
        .db()
        .write(|sql| {
            let mut hub = fieldcase_server::office::hub::SqlHub::new(sql, &vault, 1, 0);
            let doc = hub
                .case_doc(case)
                .map_err(fieldcase_server::ServerError::Core)?;
            Ok::<_, fieldcase_server::ServerError>(doc.map(|d| d.save()))
        })
        .unwrap()
        .unwrap();
    let mut doc = automerge::AutoCommit::load(&saved).unwrap();
    doc.set_actor(automerge::ActorId::random());
    doc
}

#[test]
fn quarantine_keeps_only_what_a_revoked_phone_held_within_bounds_and_shows_every_change() {
    use automerge::{ReadDoc, transaction::Transactable};
    use fieldcase_server::office::quarantine::{self, MAX_HELD_BYTES_PER_DEVICE, NotHeld};

    let server = TestServer::start();
    let ana = server.add_user("ana", Role::FieldWorker);
    let bojan = server.add_user("bojan", Role::FieldWorker);
    let (case, _) = server.create_case("K-Q1", &[ana, bojan]);
    let (not_hers, _) = server.create_case("K-Q2", &[bojan]);
    let colleague = TestDevice::enroll_direct(&server, "bojan");
    colleague.device.sync_now().unwrap();
    colleague.write_note(case, "a colleague's note, already at the office");
    colleague.device.sync_now().unwrap();
    let phone = TestDevice::enroll_direct(&server, "ana");
    phone.device.sync_now().unwrap();
    server.revoke(phone.id());
    let state = &server.running().state;
    let vault = state.vault().clone();
    let hold = |case, bytes: &[u8]| {
        state
            .db()
            .write(|c| quarantine::hold(c, &vault, phone.id(), ana, case, bytes, 10))
            .unwrap()
    };

    // What the stolen phone sends: the colleague's note deleted and consent withdrawn...
    let mut doc = office_doc(&server, case);
    let before = doc.get_heads();
    let notes = doc.get(automerge::ROOT, "notes").unwrap().unwrap().1;
    let victim = doc.keys(&notes).next().unwrap();
    doc.delete(&notes, victim.as_str()).unwrap();
    doc.put(automerge::ROOT, "consent", "withdrawn").unwrap();
    let rewrite = doc.save_after(&before);
    // ...and a note dated in the year 9999, which no sync would take.
    let mut doc = office_doc(&server, case);
    let before = doc.get_heads();
    let notes = doc.get(automerge::ROOT, "notes").unwrap().unwrap().1;
    let note = doc.keys(&notes).next().unwrap();
    let note = doc.get(&notes, note.as_str()).unwrap().unwrap().1;
    doc.put(&note, "written_at", "9999-12-31T23:30:00Z")
        .unwrap();
    let far = doc.save_after(&before);

    // Only cases the phone held are kept.
    assert_eq!(hold(not_hers, &rewrite), Err(NotHeld::NotItsCase));
    let rewrite_id = hold(case, &rewrite).unwrap();
    let far_id = hold(case, &far).unwrap();

    // The preview shows the whole difference, not only new notes.
    let preview = state
        .db()
        .read(|c| quarantine::preview(c, &vault, rewrite_id))
        .unwrap();
    assert!(preview.notes.is_empty());
    assert_eq!(preview.deleted_notes.len(), 1);
    assert_eq!(
        preview.deleted_notes[0].body,
        "a colleague's note, already at the office"
    );
    let consent: Vec<_> = preview
        .fields
        .iter()
        .map(|f| (f.field, f.before.as_str(), f.after.as_str()))
        .collect();
    assert_eq!(consent, vec![("consent", "given", "withdrawn")]);

    // Release goes through a sync's checks: the far-future note is refused, nothing changes.
    let case_before = server.case(case);
    assert!(
        state
            .db()
            .write(|c| quarantine::release(c, &vault, far_id, 11))
            .map(|kept| kept.keep(&vault))
            .is_err()
    );
    assert!(
        state
            .db()
            .read(|c| quarantine::preview(c, &vault, far_id))
            .is_err()
    );
    assert_eq!(server.case(case), case_before);

    // Bytes waiting per device are capped.
    let big = vec![7u8; 4 * 1024 * 1024];
    let mut kept = 0;
    loop {
        match hold(case, &big) {
            Ok(_) => kept += 1,
            Err(NotHeld::Full) => break,
            Err(other) => panic!("{other:?}"),
        }
        assert!(kept <= MAX_HELD_BYTES_PER_DEVICE / (4 * 1024 * 1024));
    }
    assert_eq!(kept, 3);
    let waiting: i64 = server.with_sql(|c| {
        c.query_row(
            "SELECT CAST(sum(length(changes)) AS BIGINT) FROM quarantine WHERE decision IS NULL",
            &[],
        )?
        .get(0)
    });
    assert!(waiting <= MAX_HELD_BYTES_PER_DEVICE, "{waiting}");

    // Once its wipe receipt has come, nothing more is kept.
    server.with_sql(|c| {
        c.execute(
            "UPDATE devices SET wiped_at = 20 WHERE id = ?1",
            sql_params![&phone.id().to_string()],
        )?;
        Ok(())
    });
    state
        .db()
        .write(|c| quarantine::discard(c, &vault, rewrite_id, 21))
        .unwrap()
        .keep(&vault);
    assert_eq!(hold(case, &rewrite), Err(NotHeld::Wiped));
}
