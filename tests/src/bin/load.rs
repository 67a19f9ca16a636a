//! Load with faults: 200 phones with distinct enrolled identities sync with the real
//! `fieldcase-server` binary over TLS on 127.0.0.1 at a steady 100 syncs per second for two
//! minutes; each sync first writes a visit note. A tenth of the phones reach the server through a
//! `FaultProxy` that cuts connections mid-sync (during the handshake, the request or the answer).
//! At the end every phone syncs on a clean path and the office is checked: every note a phone
//! acknowledged is there once, none invented. Prints p50/p99/max latency of the syncs, the errors
//! (expected ones on the faulted path, anything else is a failure), and the server's resident
//! memory at 1 and 2 minutes (and every 10 s, split into heap, files and shared memory).
//!
//! Where the time went: the office answers each sync with a `Server-Timing` split (its
//! `server_timing` setting), and the run prints the mean split of its slowest 1 % of syncs (the
//! phone's own work, the wire, the turn wait, merging, SQL, compaction, loading, the commit)
//! beside the median's, and writes a per-second series (count, p50, p99, max, the office's time
//! in each part) to `target/load/latency-BACKEND.csv` and `.svg` (`FIELDCASE_LOAD_OUT` for
//! another folder). `FIELDCASE_LOAD_DATABASE=postgres://...` runs the office on PostgreSQL.
//!
//! `cargo run --release -p fieldcase-tests --bin load` (figures in docs/BENCHMARKS.md). The
//! default shape's 50 cases all stay in the server's memory and grow by 240 notes each, so its
//! memory grows with them; `FIELDCASE_LOAD_CASES=1000 FIELDCASE_LOAD_CACHE_OPS=30000` shows the
//! steady state, the cache at its budget from the first minute on.
//! Environment: `FIELDCASE_LOAD_PHONES` (200), `FIELDCASE_LOAD_RATE` (per second, 100),
//! `FIELDCASE_LOAD_SECS` (120), `FIELDCASE_LOAD_FAULTY` (phones behind the proxy, 20),
//! `FIELDCASE_LOAD_CASES` (cases at the office, 50: shared by four workers each; more cases than
//! phones gives each worker several of its own), `FIELDCASE_LOAD_SEED_NOTES` (notes of about
//! 170 characters written at the office in each case before the run; 0), `FIELDCASE_LOAD_CACHE_OPS` (the server's
//! `cached_operations`, the automerge operations of documents it keeps in memory; its default).

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use fieldcase_core::CoreError;
use fieldcase_core::crypto::StaticKeyProvider;
use fieldcase_core::device::{Device, ServerAddress};
use fieldcase_core::ids::{CaseId, UserId};
use fieldcase_core::model::{ConsentStatus, NewCase, NewNote, NoteKind};
use fieldcase_core::protocol::Role;
use fieldcase_core::store::{KeySetup, StoreOptions};
use fieldcase_core::transport::TransportError;
use fieldcase_server::http::tls::TlsIdentity;
use fieldcase_server::office::cases;
use fieldcase_server::office::{enrollment, users};
use fieldcase_server::storage::case_docs::CaseVault;
use fieldcase_server::storage::keys::ServerKeys;
use fieldcase_server::storage::sql::{self, Database};
use fieldcase_tests::FaultProxy;
use fieldcase_tests::load_report::{self, OfficeSplit, SyncRecord};
use fieldcase_tests::process::{MemorySample, ServerProcess, cpu_time, free_port, server_binary};
use rand::{Rng, SeedableRng};

/// How often the server's memory is sampled during the run (printed at the end, with its parts).
const SAMPLE_SECS: u64 = 10;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn office(data: &Path, database: Option<&str>) -> Result<(Database, Arc<CaseVault>)> {
    let keys = ServerKeys::load_or_create(data)?;
    let config = match database {
        Some(url) => sql::DatabaseConfig::parse(url)?,
        None => sql::DatabaseConfig::default_in(data),
    };
    let db = Database::open_with(&config, 2)?
        .with_record_key(keys.derive(fieldcase_server::office::audit::KEY_PURPOSE)?);
    let vault = db.write(|sql| CaseVault::load_or_create(sql, &keys))?;
    Ok((db, vault))
}

struct Phone {
    device: Device,
    /// The cases assigned to this phone's worker; each sync writes in the next one.
    cases: Vec<CaseId>,
    faulty: bool,
    /// Notes this phone acknowledged (its `write_note` returned).
    written: Vec<String>,
}

#[derive(Default)]
struct Tally {
    /// Latencies of syncs that succeeded, in microseconds.
    direct: Vec<u64>,
    faulted: Vec<u64>,
    /// Syncs on the faulted path that failed with a network error (the injected faults).
    injected: u64,
    /// Anything else: a failure of the run.
    unexpected: Vec<String>,
    /// How late the pool started syncs after their scheduled moment, worst case (µs).
    worst_lag: u64,
    /// Every successful sync with its split, for the slowest syncs' causes and the series.
    records: Vec<SyncRecord>,
}

fn options() -> StoreOptions {
    StoreOptions {
        scrypt_work_factor: 10,
        ..StoreOptions::default()
    }
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let at = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[at] as f64 / 1000.0
}

fn worker(
    phones: Arc<Vec<Mutex<Phone>>>,
    jobs: Arc<Mutex<Receiver<(usize, Instant)>>>,
    tally: Arc<Mutex<Tally>>,
    run_start: Instant,
) {
    loop {
        let job = jobs
            .lock()
            .map_err(|_| ())
            .and_then(|r| r.recv().map_err(|_| ()));
        let Ok((index, due)) = job else { return };
        let lag = Instant::now().saturating_duration_since(due).as_micros() as u64;
        let Ok(mut phone) = phones[index].lock() else {
            return;
        };
        let note = NewNote {
            kind: NoteKind::Visit,
            body: format!("load note {} of phone {index}", phone.written.len()),
            tags: vec![],
            task: None,
        };
        let case = phone.cases[phone.written.len() % phone.cases.len()];
        match phone.device.store().write_note(case, &note) {
            Ok(id) => phone.written.push(id.to_string()),
            Err(e) => {
                if let Ok(mut t) = tally.lock() {
                    t.unexpected.push(format!("write_note: {e}"));
                }
                continue;
            }
        }
        let started = Instant::now();
        let result = phone.device.sync_now();
        let took = started.elapsed().as_micros() as u64;
        let Ok(mut t) = tally.lock() else { return };
        t.worst_lag = t.worst_lag.max(lag);
        if let Ok(report) = &result {
            t.records.push(SyncRecord {
                ended: run_start.elapsed().as_secs_f64(),
                latency: took as f64 / 1000.0,
                round_trips: report.round_trip_time.as_secs_f64() * 1000.0,
                office: OfficeSplit::parse(&report.server_timing),
            });
        }
        match result {
            Ok(_) if phone.faulty => t.faulted.push(took),
            Ok(_) => t.direct.push(took),
            Err(CoreError::Network(TransportError::Http { status, code, .. })) => t
                .unexpected
                .push(format!("server answered {status} {code}")),
            Err(CoreError::Network(_)) if phone.faulty => t.injected += 1,
            Err(e) => t.unexpected.push(format!("sync: {e}")),
        }
    }
}

/// The syncs around the median latency (the middle 2 %), to set beside the slowest.
fn middle(records: &[SyncRecord]) -> Vec<SyncRecord> {
    let mut sorted = records.to_vec();
    sorted.sort_by(|a, b| a.latency.total_cmp(&b.latency));
    let n = sorted.len();
    let (from, to) = (n * 49 / 100, (n * 51 / 100).max(n * 49 / 100 + 1).min(n));
    sorted[from.min(n)..to].to_vec()
}

fn main() -> Result<()> {
    let phones_n = env("FIELDCASE_LOAD_PHONES", 200) as usize;
    let rate = env("FIELDCASE_LOAD_RATE", 100).max(1);
    let secs = env("FIELDCASE_LOAD_SECS", 120);
    let faulty_n = (env("FIELDCASE_LOAD_FAULTY", 20) as usize).min(phones_n);
    let seed_notes = env("FIELDCASE_LOAD_SEED_NOTES", 0) as usize;
    let data = tempfile::tempdir()?;
    let stores = tempfile::tempdir()?;
    // The server's configuration: sync answers say where their time went (`Server-Timing`),
    // and the memory budget for case documents if one is asked for.
    let path = stores.path().join("fieldcase.toml");
    let mut config = String::from("confirm_enrollment = false\nserver_timing = true\n");
    if let Ok(ops) = std::env::var("FIELDCASE_LOAD_CACHE_OPS") {
        let ops: u64 = ops.parse().context("FIELDCASE_LOAD_CACHE_OPS")?;
        config += &format!("cached_operations = {ops}\n");
        println!("load: the server keeps at most {ops} operations of documents in memory");
    }
    std::fs::write(&path, config)?;
    let database = std::env::var("FIELDCASE_LOAD_DATABASE").ok();
    println!(
        "load: the office on {}",
        if database.is_some() {
            "PostgreSQL"
        } else {
            "SQLite"
        }
    );
    let mut server = ServerProcess::start_configured(
        &server_binary(),
        data.path(),
        free_port(),
        database.as_deref(),
        Some(&path),
    );
    let proxy = FaultProxy::start(server.addr);

    // The office: one worker per phone; by default one case per four workers.
    let cases_n = (env("FIELDCASE_LOAD_CASES", (phones_n as u64 / 4).max(1)) as usize).max(1);
    let (office_db, vault) = office(data.path(), database.as_deref())?;
    let mut users = Vec::new();
    let mut codes = Vec::new();
    for i in 0..phones_n {
        let name = format!("worker{i:03}");
        users.push(UserId::from_uuid(office_db.write(|sql| {
            users::add_user(sql, &name, Role::FieldWorker, now())
        })?));
        codes.push(
            office_db
                .write(|sql| enrollment::issue_enrollment_code(sql, &name, 3600, now()))?
                .code,
        );
    }
    // Fewer cases than workers: each case is shared by a group of workers. More: each worker
    // has several cases of its own (case c is worker c mod phones').
    let mut case_of: Vec<Vec<CaseId>> = vec![Vec::new(); phones_n];
    let mut distinct = Vec::new();
    // Workers a shared case has, and so how many cases there are: groups of `share` cover the
    // phones exactly once (the last group may be smaller).
    let shared = cases_n < phones_n;
    let share = phones_n.div_ceil(cases_n);
    let count = if shared {
        phones_n.div_ceil(share)
    } else {
        cases_n
    };
    for c in 0..count {
        let workers: Vec<usize> = match shared {
            true => (c * share..((c + 1) * share).min(phones_n)).collect(),
            false => vec![c % phones_n],
        };
        let new = NewCase {
            client_code: format!("K-{c:04}"),
            consent: ConsentStatus::Given,
            assigned_workers: workers.iter().map(|w| users[*w]).collect(),
        };
        let (case, _) = office_db
            .write(|sql| cases::create_case(sql, &vault, &new, None, now()))?
            .keep(&vault);
        for w in workers {
            case_of[w].push(case);
        }
        distinct.push(case);
    }
    println!(
        "load: {} cases, {} to {} per phone",
        distinct.len(),
        case_of.iter().map(Vec::len).min().unwrap_or(0),
        case_of.iter().map(Vec::len).max().unwrap_or(0)
    );
    // The caseload the office holds before the run, if asked for.
    if seed_notes > 0 {
        let t = Instant::now();
        fieldcase_tests::office_notes(
            &office_db,
            &vault,
            now(),
            &distinct,
            seed_notes,
            &|c, i| {
                format!(
                    "Visit {i} with client {c}: went with the client to the centre; the officer took \
                 the application, asked for the birth certificate copy, and set the interview \
                 for next week."
                )
            },
        )?;
        println!(
            "load: the office holds {} cases with {seed_notes} notes each (written in {:.1} s)",
            distinct.len(),
            t.elapsed().as_secs_f64()
        );
    }
    drop(office_db);
    let pin = TlsIdentity::load_or_create(data.path())?.fingerprint();

    let setup = Instant::now();
    let mut phones = Vec::new();
    for (i, code) in codes.iter().enumerate() {
        let faulty = i < faulty_n;
        let url = if faulty { proxy.url() } else { server.url() };
        let dir = stores.path().join(format!("phone{i:03}"));
        std::fs::create_dir_all(&dir)?;
        let keys = StaticKeyProvider::random();
        let device = Device::enroll(
            &dir,
            &ServerAddress { url, pin },
            code,
            KeySetup {
                keystore: Some(&keys),
                passphrase: None,
            },
            options(),
        )
        .with_context(|| format!("enrolling phone {i}"))?;
        device
            .sync_now()
            .with_context(|| format!("first sync of phone {i}"))?;
        phones.push(Mutex::new(Phone {
            device,
            cases: case_of[i].clone(),
            faulty,
            written: Vec::new(),
        }));
    }
    println!(
        "load: {phones_n} phones enrolled and synced in {:.1} s ({faulty_n} behind the fault proxy)",
        setup.elapsed().as_secs_f64()
    );

    let phones = Arc::new(phones);
    let tally = Arc::new(Mutex::new(Tally::default()));
    // Syncs are due from here on (the series counts seconds from it).
    let start = Instant::now();
    let (send, jobs) = channel::<(usize, Instant)>();
    let jobs = Arc::new(Mutex::new(jobs));
    let workers: Vec<_> = (0..32)
        .map(|_| {
            let (phones, jobs, tally) = (phones.clone(), jobs.clone(), tally.clone());
            std::thread::spawn(move || worker(phones, jobs, tally, start))
        })
        .collect();

    // Faults: every 100-400 ms the proxy cuts its next connection after 100-8000 bytes from the
    // server (inside the TLS handshake or the answer).
    let stop = Arc::new(AtomicBool::new(false));
    let cuts = Arc::new(AtomicU64::new(0));
    let faults = {
        let (stop, cuts) = (stop.clone(), cuts.clone());
        let proxy = Arc::new(proxy);
        let handle_proxy = proxy.clone();
        let thread = std::thread::spawn(move || {
            let mut rng = rand::rngs::StdRng::seed_from_u64(7);
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(rng.gen_range(100..400)));
                handle_proxy.cut_next_response_after(rng.gen_range(100..8000));
                cuts.fetch_add(1, Ordering::Relaxed);
            }
        });
        (proxy, thread)
    };

    // A steady rate, open loop: sync n is due at start + n / rate.
    let pid = server.pid();
    let cpu_at_start = (cpu_time(pid), cpu_time(0));
    let total = rate * secs;
    // The server's memory every SAMPLE_SECS, and so at the end of each minute.
    let mut memory = Vec::new();
    let mut next_sample = SAMPLE_SECS;
    for n in 0..total {
        let due = start + Duration::from_micros(n * 1_000_000 / rate);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        if start.elapsed() >= Duration::from_secs(next_sample) {
            memory.push((next_sample, MemorySample::of(pid).unwrap_or_default()));
            next_sample += SAMPLE_SECS;
        }
        send.send(((n as usize) % phones.len(), due))?;
    }
    drop(send);
    for w in workers {
        let _ = w.join();
    }
    let elapsed = start.elapsed();
    let cpu_at_end = (cpu_time(pid), cpu_time(0));
    if memory.len() < (secs / SAMPLE_SECS) as usize {
        memory.push((secs, MemorySample::of(pid).unwrap_or_default()));
    }
    stop.store(true, Ordering::Relaxed);
    let (proxy, fault_thread) = faults;
    let _ = fault_thread.join();

    // Calm: every phone syncs until it has nothing pending (the faulted ones through a proxy
    // that may still hold one cut; retried).
    let mut written = BTreeSet::new();
    let mut acknowledged = 0usize;
    for (i, phone) in phones.iter().enumerate() {
        let phone = phone.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
        let mut synced = false;
        for _ in 0..5 {
            if phone.device.sync_now().is_ok() && phone.device.store().pending_changes()?.is_empty()
            {
                synced = true;
                break;
            }
        }
        if !synced {
            bail!("phone {i} could not finish its last sync");
        }
        acknowledged += phone.written.len();
        written.extend(phone.written.iter().cloned());
    }
    let (office_db, vault) = office(data.path(), database.as_deref())?;
    let mut at_office = Vec::new();
    for case in &distinct {
        let case = office_db
            .read(|sql| cases::read_case(sql, &vault, *case))?
            .0;
        // The phones' notes; not the caseload written at the office beforehand.
        at_office.extend(
            case.notes
                .iter()
                .filter(|n| n.body.starts_with("load note"))
                .map(|n| n.id.to_string()),
        );
    }
    let office_set: BTreeSet<String> = at_office.iter().cloned().collect();
    let lost = written.difference(&office_set).count();
    let invented = office_set.difference(&written).count();
    let duplicated = at_office.len() - office_set.len();
    let check: String = match database {
        Some(_) => "ok".to_owned(),
        None => office_db.read(|sql| {
            sql.query_row("PRAGMA integrity_check", &[])?
                .get::<String>(0)
                .map_err(fieldcase_server::ServerError::from)
        })?,
    };
    server.kill();
    drop(proxy);

    let mut t = tally.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
    t.direct.sort_unstable();
    t.faulted.sort_unstable();
    let mut all: Vec<u64> = t.direct.iter().chain(t.faulted.iter()).copied().collect();
    all.sort_unstable();
    println!(
        "load: {} syncs in {:.1} s ({:.1}/s) from {phones_n} phones; worst start lag {:.1} ms",
        t.direct.len() + t.faulted.len() + t.injected as usize + t.unexpected.len(),
        elapsed.as_secs_f64(),
        (t.direct.len() + t.faulted.len() + t.injected as usize) as f64 / elapsed.as_secs_f64(),
        t.worst_lag as f64 / 1000.0
    );
    println!(
        "load: latency of successful syncs p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (direct path p50 {:.1}, p99 {:.1}; faulted path p50 {:.1}, p99 {:.1})",
        percentile(&all, 0.50),
        percentile(&all, 0.99),
        percentile(&all, 1.0),
        percentile(&t.direct, 0.50),
        percentile(&t.direct, 0.99),
        percentile(&t.faulted, 0.50),
        percentile(&t.faulted, 0.99),
    );
    let without = t.records.iter().filter(|r| r.office.is_none()).count();
    if without > 0 {
        println!("load: {without} syncs came back without the office's timing");
    }
    // How much of the machine the run took: the office's CPU and the phones' (this process).
    if let ((Some(s0), Some(p0)), (Some(s1), Some(p1))) = (cpu_at_start, cpu_at_end) {
        let syncs = (t.direct.len() + t.faulted.len()).max(1) as f64;
        let (office, phones) = ((s1 - s0).as_secs_f64(), (p1 - p0).as_secs_f64());
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        println!(
            "load: CPU per sync: office {:.2} ms, phones {:.2} ms; busy {:.0} % of {cores} cores ({:.2} of the office, {:.2} of the phones)",
            office * 1000.0 / syncs,
            phones * 1000.0 / syncs,
            (office + phones) / elapsed.as_secs_f64() / cores as f64 * 100.0,
            office / elapsed.as_secs_f64(),
            phones / elapsed.as_secs_f64(),
        );
    }
    if let Some(held) = load_report::held_share(&t.records) {
        println!("load: the global write order (lock or commit order): {held}");
    }
    println!(
        "load: where the slowest 1 % of syncs spent their time: {}",
        load_report::slowest_split(&t.records, 0.01)
    );
    println!(
        "load: and the median sync: {}",
        load_report::slowest_split(&middle(&t.records), 1.0)
    );
    let seconds = load_report::per_second(&t.records);
    let out = std::path::PathBuf::from(
        std::env::var("FIELDCASE_LOAD_OUT").unwrap_or_else(|_| "target/load".to_owned()),
    );
    std::fs::create_dir_all(&out)?;
    let backend = if database.is_some() {
        "postgres"
    } else {
        "sqlite"
    };
    let (csv, svg) = (
        out.join(format!("latency-{backend}.csv")),
        out.join(format!("latency-{backend}.svg")),
    );
    load_report::write_csv(&csv, &seconds)?;
    load_report::write_svg(
        &svg,
        &seconds,
        &format!("load on {backend}: {rate} syncs/s from {phones_n} phones"),
    )?;
    let worst = seconds
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.p99.total_cmp(&b.1.p99))
        .map(|(i, s)| format!("second {i}: p99 {:.1} ms, max {:.1} ms", s.p99, s.max))
        .unwrap_or_default();
    println!(
        "load: per second in {} and {} (worst {worst})",
        csv.display(),
        svg.display()
    );
    println!(
        "load: {} cuts armed, {} syncs failed by them (expected), {} other errors",
        cuts.load(Ordering::Relaxed),
        t.injected,
        t.unexpected.len()
    );
    for e in t.unexpected.iter().take(10) {
        println!("load:   unexpected: {e}");
    }
    let mib = |bytes: u64| bytes as f64 / 1048576.0;
    for (at, m) in &memory {
        if at % 60 == 0 || *at == secs {
            println!("load: server RSS at {at} s: {:.1} MiB", mib(m.rss));
        }
    }
    // Single samples swing by a few MiB as the allocator hands pages back; each minute's mean
    // says whether the resident size grows.
    let minutes = memory.last().map_or(0, |(at, _)| at.div_ceil(60));
    let means: Vec<f64> = (1..=minutes)
        .filter_map(|minute| {
            let inside: Vec<u64> = memory
                .iter()
                .filter(|(at, _)| at.div_ceil(60) == minute)
                .map(|(_, m)| m.rss)
                .collect();
            (!inside.is_empty()).then(|| mib(inside.iter().sum::<u64>() / inside.len() as u64))
        })
        .collect();
    for (minute, mean) in means.iter().enumerate() {
        let change = match minute.checked_sub(1).and_then(|m| means.get(m)) {
            Some(before) => format!(
                " ({:+.1}% on the minute before)",
                (mean / before - 1.0) * 100.0
            ),
            None => String::new(),
        };
        println!(
            "load: server RSS mean in minute {}: {mean:.1} MiB{change}",
            minute + 1
        );
    }
    for (at, m) in &memory {
        println!(
            "load:   {at:>4} s: RSS {:.1} MiB = anonymous {:.1} + files {:.1} + shared {:.1}; {} threads",
            mib(m.rss),
            mib(m.anon),
            mib(m.file),
            mib(m.shmem),
            m.threads
        );
    }
    println!(
        "load: {acknowledged} notes acknowledged by phones, {} at the office: {lost} lost, {duplicated} duplicated, {invented} invented; integrity_check {check}",
        office_set.len()
    );
    if lost > 0 || invented > 0 || duplicated > 0 || !t.unexpected.is_empty() || check != "ok" {
        bail!("load run failed");
    }
    Ok(())
}
