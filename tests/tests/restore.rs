//! A restore that loses nothing a phone holds, end to end: the real server over TLS on
//! 127.0.0.1 with its SQLite file, a backup taken by the office's own backup code while it
//! serves, phones with real encrypted stores that keep writing and syncing after it, the office
//! lost and restored from that backup into a new data folder, and the phones syncing with the
//! restored office. Every note, task and assignment any phone still holds is back at the office
//! exactly once; no phone deleted anything; the audit log tells the story.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

use fieldcase_core::ids::{CaseId, NoteId, UserId};
use fieldcase_core::model::{NewTask, OfficeKind};
use fieldcase_core::protocol::Role;
use fieldcase_server::Server;
use fieldcase_server::office::{audit, backup, cases};
use fieldcase_tests::process::free_port;
use fieldcase_tests::{TestDevice, TestServer};

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// A server on a fixed port, always on SQLite (the backup covers the SQLite file; PostgreSQL is
/// backed up by its own tools), so that phones reach the restored office at the same address.
fn start_on(dir: tempfile::TempDir, port: u16) -> TestServer {
    let mut options = TestServer::options(dir.path(), None);
    options.listen = SocketAddr::from(([127, 0, 0, 1], port));
    TestServer {
        running: Some(Server::start_with(options).unwrap()),
        dir,
        pg: None,
    }
}

fn notes_of(phone: &TestDevice) -> BTreeMap<CaseId, BTreeSet<NoteId>> {
    phone
        .device
        .store()
        .list_cases()
        .unwrap()
        .into_iter()
        .map(|c| {
            let notes = phone.case(c.id).notes.iter().map(|n| n.id).collect();
            (c.id, notes)
        })
        .collect()
}

fn plan_task(office: &TestServer, case: CaseId, worker: UserId, purpose: &str) {
    let state = &office.running().state;
    let vault = state.vault().clone();
    let task = NewTask {
        purpose: purpose.into(),
        office_kind: OfficeKind::Court,
        office_name: "Osnovni sud".into(),
        office_address: "Novi Sad".into(),
        scheduled_at: time::OffsetDateTime::now_utc(),
        time_zone: "Europe/Belgrade".into(),
        assignees: vec![worker],
        checklist: vec![],
    };
    state
        .db()
        .write(|sql| cases::add_task(sql, &vault, case, &task, now()))
        .unwrap()
        .keep(&vault);
}

#[test]
fn phones_give_back_everything_a_restored_office_lost_and_delete_nothing() {
    let port = free_port();
    let office = start_on(tempfile::tempdir().unwrap(), port);
    let url = format!("https://127.0.0.1:{port}");
    let ana = office.add_user("ana", Role::FieldWorker);
    let bojan = office.add_user("bojan", Role::FieldWorker);
    let vesna = office.add_user("vesna", Role::FieldWorker);
    let (shared, _) = office.create_case("K-0001", &[ana, bojan]);
    let (bojans, _) = office.create_case("K-0002", &[bojan, vesna]);
    let phones = [
        TestDevice::enroll(&office, "ana", &url),
        TestDevice::enroll(&office, "bojan", &url),
        TestDevice::enroll(&office, "vesna", &url),
    ];
    for phone in &phones {
        phone.device.sync_now().unwrap();
    }
    phones[0].write_note(shared, "before the backup: the police report is filed");
    phones[1].write_note(bojans, "before the backup: welfare centre appointment made");
    for phone in &phones {
        phone.device.sync_now().unwrap();
    }

    // The backup, taken while the office serves.
    let keys = tempfile::tempdir().unwrap();
    let identity = age::x25519::Identity::generate();
    let file = keys.path().join("office.backup");
    let db_file = office
        .dir
        .path()
        .join(fieldcase_server::storage::sql::DB_FILE);
    let recipients = [identity.to_public()];
    backup::create(office.dir.path(), Some(&db_file), &recipients, &file, now()).unwrap();

    // After the backup: the office opens a case for Ana, gives Vesna the shared case, plans a
    // court date on Bojan's case; the phones write and sync. Bojan's last note never leaves his
    // phone before the office is lost.
    let (opened_after, _) = office.create_case("K-0003", &[ana]);
    office.assign(shared, vesna);
    plan_task(&office, bojans, bojan, "hearing at the basic court");
    for phone in &phones {
        phone.device.sync_now().unwrap();
    }
    phones[0].write_note(
        opened_after,
        "after the backup: first visit in the new case",
    );
    phones[0].write_note(shared, "after the backup: the inspector called back");
    phones[2].write_note(shared, "after the backup: Vesna joins the accompaniment");
    // A photo of the inspector's summons, at the office whole before the loss.
    let summons = phones[0]
        .device
        .store()
        .attach(
            shared,
            &fieldcase_core::model::NewAttachment {
                label: "Inspector's summons".into(),
                media_type: fieldcase_core::model::MediaType::Jpeg,
                note: None,
                task: None,
            },
            fieldcase_tests::photo::plain_jpeg(700, 500, 9),
        )
        .unwrap();
    for phone in &phones {
        phone.device.sync_now().unwrap();
    }
    let sent = phones[0]
        .device
        .sync_attachments(fieldcase_core::transfer::TransferOptions::default())
        .unwrap();
    assert_eq!(sent.uploads_completed, 1);
    phones[1].write_note(bojans, "after the backup, never synced before the loss");
    let held_before: Vec<_> = phones.iter().map(notes_of).collect();
    let task_count = office.case(bojans).tasks.len();

    // The office machine is lost; the backup is restored into a new folder and served at the
    // same address.
    let TestServer { running, .. } = office;
    running.unwrap().shutdown().unwrap();
    let restored_dir = tempfile::tempdir().unwrap();
    backup::restore(&file, &[identity], restored_dir.path(), now()).unwrap();
    let office = start_on(restored_dir, port);
    assert!(
        office.case(shared).notes.len() < held_before[0][&shared].len(),
        "the restored office should have gone back in time"
    );

    for _ in 0..2 {
        for phone in &phones {
            phone.device.sync_now().unwrap();
        }
    }

    // The photo's reference came back with the case, and its bytes with the phone's next
    // attachment transfer: the restored office had lost both.
    let resent = phones[0]
        .device
        .sync_attachments(fieldcase_core::transfer::TransferOptions::default())
        .unwrap();
    assert_eq!(resent.uploads_completed, 1);
    assert_eq!(resent.chunks_sent, summons.chunk_count());
    let listed = office.attachments(shared);
    assert_eq!(listed.len(), 1);
    assert!(listed[0].complete);

    // No phone lost anything.
    for (phone, before) in phones.iter().zip(&held_before) {
        let now_held = notes_of(phone);
        for (case, notes) in before {
            assert!(
                now_held.get(case).is_some_and(|n| n.is_superset(notes)),
                "a phone lost notes of a case it held"
            );
        }
    }
    // Every note any phone holds is at the office, once; the phones and the office agree.
    let mut expected: BTreeMap<CaseId, BTreeSet<NoteId>> = BTreeMap::new();
    for held in &held_before {
        for (case, notes) in held {
            expected.entry(*case).or_default().extend(notes);
        }
    }
    for (case, notes) in &expected {
        let at_office = office.case(*case);
        let ids: Vec<NoteId> = at_office.notes.iter().map(|n| n.id).collect();
        let unique: BTreeSet<NoteId> = ids.iter().copied().collect();
        assert_eq!(ids.len(), unique.len(), "a note is at the office twice");
        assert_eq!(&unique, notes, "the office lacks notes a phone holds");
        for phone in &phones {
            if notes_of(phone).contains_key(case) {
                assert_eq!(
                    phone.case(*case),
                    at_office,
                    "a phone and the office differ"
                );
            }
        }
    }
    // The case opened after the backup is back, with its worker; so are Vesna's assignment and
    // the court date the office planned after the backup (the phones held them).
    assert_eq!(office.case(opened_after).assigned_workers, vec![ana]);
    assert!(office.case(shared).assigned_workers.contains(&vesna));
    assert_eq!(office.case(bojans).tasks.len(), task_count);
    let assigned_to_vesna = office.with_sql(|sql| {
        Ok(sql
            .query_opt(
                "SELECT 1 FROM case_assignments WHERE case_id = ?1 AND user_id = ?2",
                fieldcase_server::sql_params![&shared.to_string(), &vesna.to_string()],
            )?
            .is_some())
    });
    assert!(
        assigned_to_vesna,
        "the office's assignment index lags its document"
    );

    // The audit log tells what happened.
    let actions: Vec<String> = office
        .with_sql(|sql| {
            audit::list(sql, 200).map_err(|_| fieldcase_server::error::SqlError::Refused("audit"))
        })
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert!(actions.iter().any(|a| a == backup::OFFICE_RESTORED));
    let started_over = actions
        .iter()
        .filter(|a| *a == audit::action::DEVICE_STARTED_OVER)
        .count();
    assert_eq!(started_over, phones.len(), "each phone starts over once");
    assert!(actions.iter().any(|a| a == audit::action::CASE_RECOVERED));
}
