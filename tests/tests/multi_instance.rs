//! Two `fieldcase-server` instances on one PostgreSQL database, whatever
//! `FIELDCASE_TEST_DATABASE` says: instance A in this process, instance B the real binary as a
//! child process, each with its own data folder holding copies of the same `server.key` and TLS
//! certificate, both over real TLS on 127.0.0.1. The phones reach them through a TLS-passing
//! relay (a TCP load balancer) that sends each new connection to the instance chosen at the time,
//! so a phone alternates between instances from one sync to the next.
//!
//! Shown: phones alternating between the instances while editing the same case converge, with
//! every note at the office; phones syncing at the same time on both instances converge too; a revocation made on A is refused by B at the phone's next request
//! (and the phone wipes itself); B killed with SIGKILL during syncs, A carries on, and nothing a
//! sync acknowledged is lost. Needs a PostgreSQL server (`fieldcase_server::storage::testing`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fieldcase_core::CoreError;
use fieldcase_core::protocol::Role;
use fieldcase_server::Server;
use fieldcase_server::http::tls;
use fieldcase_server::storage::keys;
use fieldcase_server::storage::testing::TempPgDatabase;
use fieldcase_tests::process::{ServerProcess, free_port, server_binary};
use fieldcase_tests::{TestDevice, TestServer};

/// A TCP relay that sends each new connection to the current target and, when the target is
/// switched, cuts the connections it relays, so that the next request of every phone opens a
/// connection to the new target (TLS passes through untouched: the phones pin the certificate
/// both instances share).
struct Balancer {
    port: u16,
    target: Arc<Mutex<SocketAddr>>,
    open: Arc<Mutex<Vec<TcpStream>>>,
}

impl Balancer {
    fn start(first: SocketAddr) -> Balancer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let target = Arc::new(Mutex::new(first));
        let open = Arc::new(Mutex::new(Vec::<TcpStream>::new()));
        let (t, o) = (target.clone(), open.clone());
        std::thread::spawn(move || {
            for inbound in listener.incoming() {
                let Ok(inbound) = inbound else { return };
                let to = *t.lock().unwrap();
                let Ok(outbound) = TcpStream::connect(to) else {
                    continue; // the instance is down: the phone sees a network error
                };
                o.lock().unwrap().push(inbound.try_clone().unwrap());
                let (a, b) = (inbound.try_clone().unwrap(), outbound.try_clone().unwrap());
                std::thread::spawn(move || pipe(inbound, outbound));
                std::thread::spawn(move || pipe(b, a));
            }
        });
        Balancer { port, target, open }
    }

    fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    fn switch_to(&self, to: SocketAddr) {
        *self.target.lock().unwrap() = to;
        for s in self.open.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
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
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}

/// Instance A (in process) on a fresh PostgreSQL database, and instance B (the binary) on a
/// second data folder holding copies of A's key file and certificate.
struct Pair {
    a: TestServer,
    b: ServerProcess,
    _b_dir: tempfile::TempDir,
}

fn pair() -> Pair {
    let pg = TempPgDatabase::create().unwrap();
    let a_dir = tempfile::tempdir().unwrap();
    let running = Server::start_with(TestServer::options(a_dir.path(), Some(&pg))).unwrap();
    let b_dir = tempfile::tempdir().unwrap();
    for f in [keys::KEY_FILE, tls::CERT_FILE, tls::CERT_KEY_FILE] {
        std::fs::copy(a_dir.path().join(f), b_dir.path().join(f)).unwrap();
    }
    let b = ServerProcess::start_on(
        &server_binary(),
        b_dir.path(),
        free_port(),
        Some(pg.url_text()),
    );
    let a = TestServer {
        running: Some(running),
        dir: a_dir,
        pg: Some(pg),
    };
    Pair {
        a,
        b,
        _b_dir: b_dir,
    }
}

fn note_bodies(case: &fieldcase_core::model::Case) -> BTreeSet<String> {
    case.notes.iter().map(|n| n.body.clone()).collect()
}

#[test]
fn phones_alternating_between_two_instances_converge() {
    let p = pair();
    let ana = p.a.add_user("ana", Role::FieldWorker);
    let bob = p.a.add_user("bob", Role::FieldWorker);
    let (case, _) = p.a.create_case("K-MULTI", &[ana, bob]);
    let lb = Balancer::start(p.a.addr());
    let phones = [
        TestDevice::enroll(&p.a, "ana", &lb.url()),
        TestDevice::enroll(&p.a, "bob", &lb.url()),
    ];
    for phone in &phones {
        phone.device.sync_now().unwrap();
    }
    let mut written = BTreeSet::new();
    for round in 0..6 {
        lb.switch_to(if round % 2 == 0 { p.b.addr } else { p.a.addr() });
        for (i, phone) in phones.iter().enumerate() {
            let body = format!("round {round} phone {i}");
            phone.write_note(case, &body);
            written.insert(body);
            phone.device.sync_now().unwrap();
        }
    }
    // One more round each way so both phones have everything.
    for to in [p.b.addr, p.a.addr()] {
        lb.switch_to(to);
        for phone in &phones {
            phone.device.sync_now().unwrap();
        }
    }
    let office = p.a.case(case);
    assert_eq!(
        note_bodies(&office),
        written,
        "every note reached the office"
    );
    for phone in &phones {
        assert_eq!(
            phone.case(case),
            office,
            "the phones converged with the office"
        );
    }
}

/// Six phones syncing at the same time, three on each instance, each writing to a case all of
/// them share and to one it shares with one other phone: on PostgreSQL syncs of different cases
/// run beside each other (two of one case wait for each other), and still every note reaches
/// the office once and every phone ends with what the office has.
#[test]
fn phones_syncing_at_once_on_both_instances_converge_with_every_note() {
    let p = pair();
    let users: Vec<_> = (0..6)
        .map(|i| p.a.add_user(&format!("worker{i}"), Role::FieldWorker))
        .collect();
    let (shared, _) = p.a.create_case("K-ALL", &users);
    let pairs: Vec<_> = (0..6)
        .map(|i| {
            let two = [users[i], users[(i + 1) % 6]];
            p.a.create_case(&format!("K-PAIR-{i}"), &two).0
        })
        .collect();
    let phones: Vec<TestDevice> = (0..6)
        .map(|i| {
            let url = match i % 2 {
                0 => format!("https://{}", p.a.addr()),
                _ => p.b.url(),
            };
            TestDevice::enroll(&p.a, &format!("worker{i}"), &url)
        })
        .collect();
    let barrier = Arc::new(std::sync::Barrier::new(phones.len()));
    let workers: Vec<_> = phones
        .into_iter()
        .enumerate()
        .map(|(i, phone)| {
            let (barrier, own) = (barrier.clone(), pairs[i]);
            std::thread::spawn(move || {
                phone.device.sync_now().unwrap();
                barrier.wait();
                let mut written = Vec::new();
                for round in 0..8 {
                    for case in [shared, own] {
                        let body = format!("phone {i} round {round} case {case}");
                        phone.write_note(case, &body);
                        written.push((case, body));
                    }
                    phone.device.sync_now().unwrap();
                }
                (phone, written)
            })
        })
        .collect();
    let (phones, written): (Vec<TestDevice>, Vec<_>) =
        workers.into_iter().map(|w| w.join().unwrap()).unzip();
    // Two quiet rounds, so every phone has every other phone's last notes.
    for _ in 0..2 {
        for phone in &phones {
            phone.device.sync_now().unwrap();
        }
    }
    for case in std::iter::once(shared).chain(pairs.iter().copied()) {
        let expected: BTreeSet<String> = written
            .iter()
            .flatten()
            .filter(|(c, _)| *c == case)
            .map(|(_, body)| body.clone())
            .collect();
        let office = p.a.case(case);
        assert_eq!(office.notes.len(), expected.len(), "each note once");
        assert_eq!(
            note_bodies(&office),
            expected,
            "every note reached the office"
        );
    }
    for (i, phone) in phones.iter().enumerate() {
        for case in [shared, pairs[i], pairs[(i + 5) % 6]] {
            assert_eq!(phone.case(case), p.a.case(case), "phone {i} converged");
        }
        assert!(phone.device.store().pending_changes().unwrap().is_empty());
    }
}

#[test]
fn a_revocation_on_one_instance_is_refused_by_the_other() {
    let p = pair();
    let ana = p.a.add_user("ana", Role::FieldWorker);
    let (case, _) = p.a.create_case("K-REVOKE", &[ana]);
    let lb = Balancer::start(p.b.addr);
    let phone = TestDevice::enroll(&p.a, "ana", &lb.url());
    phone.device.sync_now().unwrap();
    assert_eq!(phone.case(case).client_code, "K-REVOKE");
    // Revoked on instance A (its own database handle, as its admin pages and API do) ...
    let now = p.a.running().state.now();
    let id = *phone.id().as_uuid();
    p.a.running()
        .state
        .db()
        .write(|sql| fieldcase_server::office::devices::revoke_device(sql, &id, now))
        .unwrap();
    // ... refused by instance B at the phone's next request, which wipes the phone.
    let result = phone.device.sync_now();
    assert!(
        matches!(result, Err(CoreError::RevokedAndWiped)),
        "{result:?}"
    );
}

#[test]
fn one_instance_killed_during_syncs_the_other_carries_on_and_nothing_acknowledged_is_lost() {
    let mut p = pair();
    let ana = p.a.add_user("ana", Role::FieldWorker);
    let bob = p.a.add_user("bob", Role::FieldWorker);
    let (case, _) = p.a.create_case("K-KILL", &[ana, bob]);
    let lb = Balancer::start(p.b.addr);
    let phones: Vec<TestDevice> = ["ana", "bob"]
        .iter()
        .map(|n| TestDevice::enroll(&p.a, n, &lb.url()))
        .collect();
    for phone in &phones {
        phone.device.sync_now().unwrap();
    }
    // Both phones sync in a loop through the balancer (on B), writing a note before each sync
    // and recording the notes of every sync that was answered.
    let acknowledged = Arc::new(Mutex::new(BTreeSet::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let workers: Vec<_> = phones
        .into_iter()
        .enumerate()
        .map(|(i, phone)| {
            let (acknowledged, stop) = (acknowledged.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut pending = Vec::new();
                let mut n = 0;
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    let body = format!("phone {i} note {n}");
                    n += 1;
                    phone.write_note(case, &body);
                    pending.push(body);
                    if phone.device.sync_now().is_ok() {
                        acknowledged.lock().unwrap().extend(pending.drain(..));
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                phone
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    let before_kill = acknowledged.lock().unwrap().len();
    assert!(before_kill > 0, "no sync went through instance B");
    // B dies in whatever it was doing; the balancer sends new connections to A.
    p.b.kill();
    lb.switch_to(p.a.addr());
    let deadline = Instant::now() + Duration::from_secs(30);
    while acknowledged.lock().unwrap().len() < before_kill + 4 {
        assert!(Instant::now() < deadline, "instance A did not carry on");
        std::thread::sleep(Duration::from_millis(100));
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let phones: Vec<TestDevice> = workers.into_iter().map(|w| w.join().unwrap()).collect();
    // A last sync each (twice, so each phone also gets the other's last notes).
    for _ in 0..2 {
        for phone in &phones {
            phone.device.sync_now().unwrap();
        }
    }
    let office = note_bodies(&p.a.case(case));
    let acknowledged = acknowledged.lock().unwrap();
    let lost: Vec<_> = acknowledged.difference(&office).collect();
    assert!(lost.is_empty(), "acknowledged notes lost: {lost:?}");
    for phone in &phones {
        assert_eq!(phone.case(case), p.a.case(case), "the phones converged");
        assert!(phone.device.store().pending_changes().unwrap().is_empty());
    }
}

#[test]
fn a_sync_received_by_one_instance_wakes_the_live_pages_of_the_other() {
    let p = pair();
    let ana = p.a.add_user("ana", Role::FieldWorker);
    let (case, _) = p.a.create_case("K-LIVE", &[ana]);
    let lb = Balancer::start(p.b.addr);
    let phone = TestDevice::enroll(&p.a, "ana", &lb.url());
    phone.device.sync_now().unwrap();
    // Instance A's change signal (what its open case pages wait on), heard through
    // PostgreSQL's LISTEN/NOTIFY only: the sync goes to B.
    let mut changes = p.a.running().state.vault().subscribe();
    changes.mark_unchanged();
    phone.write_note(case, "seen live on the other instance");
    phone.device.sync_now().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let woke = runtime
        .block_on(async { tokio::time::timeout(Duration::from_secs(3), changes.changed()).await });
    assert!(
        matches!(woke, Ok(Ok(()))),
        "instance A never heard of B's store"
    );
    assert!(note_bodies(&p.a.case(case)).contains("seen live on the other instance"));
}
