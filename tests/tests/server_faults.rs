//! Faults of the office server's disk, with a real phone syncing over TLS: a full disk and a
//! read-only data folder. The phone gets a typed refusal (`507 storage_full`, `503
//! storage_unavailable`) instead of a bare 500, the server keeps answering, its database passes
//! `PRAGMA integrity_check`, no note the phone wrote is lost, and syncing works again once the
//! fault is cleared (and after a restart).
//!
//! The data folder lives on its own small tmpfs, so the faults are real (`ENOSPC`, a read-only
//! remount); the tests run as root, for whom `chmod` changes nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../core/tests/mounts/mod.rs"]
mod mounts;

use fieldcase_core::CoreError;
use fieldcase_core::ids::CaseId;
use fieldcase_core::protocol::Role;
use fieldcase_core::transport::TransportError;
use fieldcase_server::Server;
use fieldcase_tests::{TestDevice, TestServer};
use mounts::Tmpfs;

fn server_on(disk: &Tmpfs) -> TestServer {
    let dir = tempfile::tempdir_in(disk.path()).unwrap();
    let running = Server::start_with(TestServer::options(dir.path(), None)).unwrap();
    // The disk faults are the SQLite file's: on SQLite in every run.
    TestServer {
        running: Some(running),
        dir,
        pg: None,
    }
}

fn integrity_ok(server: &TestServer) {
    let check: String =
        server.with_db(|conn| conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)));
    assert_eq!(check, "ok");
}

fn refusal_code(e: &CoreError) -> Option<(u16, String)> {
    match e {
        CoreError::Network(TransportError::Http { status, code, .. }) => {
            Some((*status, code.clone()))
        }
        _ => None,
    }
}

fn server_notes(server: &TestServer, case: CaseId) -> Vec<String> {
    server
        .case(case)
        .notes
        .into_iter()
        .map(|n| n.body)
        .collect()
}

fn assert_all_on_server(server: &TestServer, case: CaseId, written: &[String]) {
    let have = server_notes(server, case);
    for body in written {
        assert!(
            have.contains(body),
            "note {body:?} never reached the server"
        );
    }
}

#[test]
fn a_full_server_disk_refuses_syncs_clearly_and_loses_nothing() {
    let disk = Tmpfs::mount(24 * 1024 * 1024);
    let mut server = server_on(&disk);
    let ana = server.add_user("ana", Role::FieldWorker);
    let (case, _) = server.create_case("K-1", &[ana]);
    let phone = TestDevice::enroll_direct(&server, "ana");
    phone.device.sync_now().unwrap();
    let mut written = vec!["before the disk filled".to_owned()];
    phone.write_note(case, &written[0]);
    phone.device.sync_now().unwrap();

    let filler = disk.fill();
    let long = "x".repeat(30_000);
    let mut refusal = None;
    for i in 0..100 {
        let body = format!("{i} {long}");
        phone.write_note(case, &body);
        written.push(body);
        if let Err(e) = phone.device.sync_now() {
            refusal = Some(e);
            break;
        }
    }
    let refusal = refusal.expect("the full disk never refused a sync");
    assert_eq!(
        refusal_code(&refusal),
        Some((507, "storage_full".to_owned())),
        "got {refusal:?}"
    );
    // The server keeps answering, and its database is sound.
    let url = server.running().url();
    fieldcase_core::transport::Client::new(&url, server.fingerprint())
        .unwrap()
        .healthz()
        .unwrap();
    integrity_ok(&server);

    // Space again: the same phone syncs everything it wrote, also after a restart.
    std::fs::remove_file(filler).unwrap();
    phone.device.sync_now().unwrap();
    assert_all_on_server(&server, case, &written);
    integrity_ok(&server);
    server.restart();
    assert_all_on_server(&server, case, &written);
}

#[test]
fn a_read_only_server_folder_fails_clearly_and_recovers() {
    let disk = Tmpfs::mount(32 * 1024 * 1024);
    let mut server = server_on(&disk);
    let ana = server.add_user("ana", Role::FieldWorker);
    let (case, _) = server.create_case("K-2", &[ana]);
    let phone = TestDevice::enroll_direct(&server, "ana");
    phone.device.sync_now().unwrap();
    let mut written = vec!["while writable".to_owned()];
    phone.write_note(case, &written[0]);
    phone.device.sync_now().unwrap();

    // A file system cannot turn read-only under open files (EBUSY), so the server restarts onto
    // a read-only data folder: it refuses to start with a typed error, and never panics.
    let data = server.dir.path().to_owned();
    let addr = server.addr();
    server.running.take().unwrap().shutdown().unwrap();
    disk.remount(true);
    let refused =
        Server::start(&data, addr).expect_err("the server started on a read-only data folder");
    assert!(
        matches!(
            refused,
            fieldcase_server::ServerError::Db(_) | fieldcase_server::ServerError::Io { .. }
        ),
        "got {refused:?}"
    );
    // Meanwhile the phone keeps writing; its sync fails as offline and loses nothing.
    written.push("while the office was down".to_owned());
    phone.write_note(case, &written[1]);
    assert!(phone.device.sync_now().is_err());

    disk.remount(false);
    // Back on the same address, the phone syncs what it wrote meanwhile.
    server.running = Some(Server::start(&data, addr).unwrap());
    phone.device.sync_now().unwrap();
    assert_all_on_server(&server, case, &written);
    integrity_ok(&server);
}
