//! `samod-bench`: samod, the Rust automerge-repo by automerge's own authors, as a second
//! reference peer of fieldcase's benchmark suite (`tests/benches/suite.rs`, described in
//! `docs/BENCHMARKS.md`).
//!
//! It takes the same commands as the Node reference (`bench/reference/server.mjs` and
//! `client.mjs`), so that the suite drives both through the same scenarios:
//!
//! ```text
//! samod-bench server DIR                        a samod sync server on 127.0.0.1 (WebSocket,
//!                                               samod's file-system storage in DIR); prints
//!                                               {"port": N}; flushes its storage and stops
//!                                               when its stdin closes
//! samod-bench seed DIR N NOTES URLS_FILE        makes N case documents of NOTES notes offline
//!                                               (one change per note); prints the saved size
//!                                               of one document
//! samod-bench upload DIR WS_URL URLS_FILE       syncs them up; timed until the server's sync
//!                                               state shows every document's heads
//! samod-bench download DIR WS_URL URLS_FILE     a fresh peer fetches them all (then flushes)
//! samod-bench change DIR WS_URL URLS_FILE K     adds one note to K documents and syncs them up
//! samod-bench resync DIR WS_URL URLS_FILE       a peer holding them reconnects; timed until it
//!                                               and the server hold the same heads of each
//! samod-bench download-cut DIR WS_URL URLS_FILE like download, but ends (storage flushed) as
//!                                               soon as the connection drops
//! samod-bench load DIR WS_URL URLS_FILE FIRST COUNT WORKERS PER_WORKER
//!                                               COUNT phone-like peers in this process (its own
//!                                               Repo, WebSocket and storage each), peer i holding
//!                                               the PER_WORKER documents of worker i % WORKERS;
//!                                               prints {"ready": n} once all hold them, then on a
//!                                               line on stdin each adds a note to document
//!                                               i % PER_WORKER at the same moment and prints
//!                                               every latency until the server has it
//! ```
//!
//! Every client mode prints one JSON line of figures (or `{"error": ...}`) and gives up after
//! `BENCH_TIMEOUT_MS` (default 600000), printing `{"error": "timeout"}`.
//!
//! The documents have the shape of fieldcase's case documents (`core/src/document/write.rs`):
//! the case's fields, its author, one task with a checklist of two, and notes with the same
//! fields and the same text as the suite's phones write, each note its own change, the body a
//! text object.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use automerge::transaction::{CommitOptions, Transactable, Transaction};
use automerge::{Automerge, ObjId, ObjType, ROOT, ReadDoc};
use futures::StreamExt;
use futures::future::join_all;
use samod::storage::TokioFilesystemStorage;
use samod::{
    BackoffConfig, ConnectionId, DialerEvent, DialerHandle, DocHandle, DocumentId, PeerId, Repo,
    ShareConfig, Url,
};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::net::TcpListener;

/// The text of a phone's note `i`: the same as `note(i)` in the suite and in the Node reference.
fn note(i: usize) -> String {
    format!(
        "Visit {i}: went with the client to the centre; the officer took the application, asked for the birth certificate copy, and set the interview for next week. Client calm."
    )
}

/// The note the office adds in the *10 changed* scenario (the suite's office note).
const OFFICE_NOTE: &str = "follow-up call: the decision arrived, interview on Monday";

/// How long the server waits for a WebSocket handshake once a connection is open.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long `stop` (which flushes a repo's storage) may take before the process ends anyway.
const STOP_TIMEOUT: Duration = Duration::from_secs(60);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mode = args.first().cloned().unwrap_or_default();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            println!(
                "{}",
                json!({"mode": mode, "error": format!("no tokio runtime: {e}")})
            );
            return ExitCode::FAILURE;
        }
    };
    let code = if mode == "server" {
        match args.get(1) {
            Some(dir) => match runtime.block_on(server(Path::new(dir))) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    println!("{}", json!({"mode": mode, "error": format!("{e:#}")}));
                    ExitCode::FAILURE
                }
            },
            None => {
                eprintln!("usage: samod-bench server DIR");
                ExitCode::FAILURE
            }
        }
    } else {
        // The client's own watchdog: a run that overruns reports a timeout instead of hanging.
        let timeout = Duration::from_millis(
            std::env::var("BENCH_TIMEOUT_MS")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(600_000),
        );
        match runtime.block_on(async { tokio::time::timeout(timeout, client(&args)).await }) {
            Ok(Ok(v)) => {
                println!("{v}");
                ExitCode::SUCCESS
            }
            Ok(Err(e)) => {
                println!("{}", json!({"mode": mode, "error": format!("{e:#}")}));
                ExitCode::FAILURE
            }
            Err(_) => {
                println!(
                    "{}",
                    json!({"mode": mode, "error": "timeout", "after_ms": timeout.as_millis() as u64})
                );
                ExitCode::from(2)
            }
        }
    };
    // Tasks still running (a peer's reconnection, storage writes of a timed-out run) do not keep
    // the process alive.
    runtime.shutdown_timeout(Duration::from_secs(1));
    code
}

// ---------------------------------------------------------------------------------------------
// The sync server

/// A samod sync server on 127.0.0.1:0 with samod's file-system storage in `dir`, as a sync
/// server runs it: it accepts every peer read-write and answers what peers ask for, without
/// announcing every document to everyone (as `sharePolicy: false` in the Node reference). Each
/// accepted TCP connection gets `TCP_NODELAY` (as fieldcase's server sets). Ends, with its
/// storage flushed, when stdin closes.
async fn server(dir: &Path) -> Result<()> {
    let repo = Repo::build_tokio()
        .with_storage(TokioFilesystemStorage::new(dir))
        .with_peer_id(PeerId::from("samod-sync-server"))
        .with_share_policy(ShareConfig::read_write().with_announce(false))
        .load()
        .await;
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .context("bind 127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    let acceptor = repo.make_acceptor(Url::parse(&format!("ws://127.0.0.1:{port}"))?)?;
    println!("{}", json!({"port": port}));
    let stdin_closed = async {
        let mut stdin = tokio::io::stdin();
        let mut buf = [0u8; 256];
        while let Ok(n) = stdin.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    };
    tokio::pin!(stdin_closed);
    loop {
        tokio::select! {
            () = &mut stdin_closed => break,
            accepted = listener.accept() => {
                let Ok((tcp, _)) = accepted else { continue };
                let _ = tcp.set_nodelay(true);
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let ws = tokio::time::timeout(
                        HANDSHAKE_TIMEOUT,
                        tokio_tungstenite::accept_async(tcp),
                    )
                    .await;
                    if let Ok(Ok(ws)) = ws {
                        // Refused only when the repo has stopped: nothing left to serve.
                        let _ = acceptor.accept_tungstenite(ws);
                    }
                });
            }
        }
    }
    let _ = tokio::time::timeout(STOP_TIMEOUT, repo.stop()).await;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Case documents

/// The current time as fieldcase writes it in documents (RFC 3339, seconds, UTC).
fn now_text() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// One change of `doc`, with a message and a time as fieldcase's changes carry.
fn commit(
    doc: &mut Automerge,
    what: &str,
    edit: impl FnOnce(&mut Transaction<'_>) -> Result<()>,
) -> Result<()> {
    let time = chrono::Utc::now().timestamp();
    doc.transact_with(
        |_| {
            CommitOptions::default()
                .with_message(what.to_owned())
                .with_time(time)
        },
        edit,
    )
    .map(|_| ())
    .map_err(|failure| failure.error.context(format!("edit {what}")))
}

/// The map at `key` of `obj`.
fn map_of(tx: &Transaction<'_>, obj: &ObjId, key: &str) -> Result<ObjId> {
    match tx.get(obj, key)? {
        Some((automerge::Value::Object(ObjType::Map), id)) => Ok(id),
        _ => bail!("the document has no map {key:?}"),
    }
}

/// A case document of `notes` notes, made as a phone makes fieldcase's: the case (its
/// fields, its author, its empty collections), one task with a checklist of two, then each
/// note its own change.
fn case_doc(c: usize, notes: usize) -> Result<Automerge> {
    let mut doc = Automerge::new();
    let user = uuid::Uuid::new_v4().to_string();
    let device = uuid::Uuid::new_v4().to_string();
    let actor = doc.get_actor().to_hex_string();
    let now = now_text();
    commit(&mut doc, "case.create", |tx| {
        let authors = tx.put_object(&ROOT, "authors", ObjType::Map)?;
        let me = tx.put_object(&authors, actor.as_str(), ObjType::Map)?;
        tx.put(&me, "user", user.as_str())?;
        tx.put(&me, "device", device.as_str())?;
        tx.put(&ROOT, "schema", 1_i64)?;
        tx.put(&ROOT, "client_code", format!("K-{c:05}"))?;
        tx.put(&ROOT, "status", "open")?;
        tx.put(&ROOT, "consent", "given")?;
        tx.put(&ROOT, "created_at", now.as_str())?;
        let assigned = tx.put_object(&ROOT, "assigned", ObjType::Map)?;
        tx.put(&assigned, user.as_str(), true)?;
        for key in ["notes", "tasks", "goals", "services", "reviews"] {
            tx.put_object(&ROOT, key, ObjType::Map)?;
        }
        Ok(())
    })?;
    commit(&mut doc, "task.add", |tx| {
        let tasks = map_of(tx, &ROOT, "tasks")?;
        let task = tx.put_object(&tasks, uuid::Uuid::new_v4().to_string(), ObjType::Map)?;
        tx.put(&task, "purpose", "ID card application")?;
        tx.put(&task, "office_kind", "registry_office")?;
        tx.put(&task, "office_name", "Matična služba")?;
        tx.put(&task, "office_address", "Novi Sad")?;
        tx.put(&task, "scheduled_at", now.as_str())?;
        tx.put(&task, "time_zone", "Europe/Belgrade")?;
        tx.put(&task, "status", "planned")?;
        let assignees = tx.put_object(&task, "assignees", ObjType::Map)?;
        tx.put(&assignees, user.as_str(), true)?;
        let checklist = tx.put_object(&task, "checklist", ObjType::Map)?;
        for (pos, label) in ["birth certificate copy", "ID application form"]
            .into_iter()
            .enumerate()
        {
            let item = tx.put_object(&checklist, uuid::Uuid::new_v4().to_string(), ObjType::Map)?;
            tx.put(&item, "pos", pos as u64)?;
            tx.put(&item, "label", label)?;
            tx.put(&item, "done", false)?;
        }
        Ok(())
    })?;
    for i in 0..notes {
        add_note(&mut doc, &note(c * notes + i), &user, &device)?;
    }
    Ok(doc)
}

/// Adds a visit note (its own change), as fieldcase's `CaseDoc::add_note` writes one.
fn add_note(doc: &mut Automerge, body: &str, user: &str, device: &str) -> Result<()> {
    let now = now_text();
    commit(doc, "note.add", |tx| {
        let notes = map_of(tx, &ROOT, "notes")?;
        let note = tx.put_object(&notes, uuid::Uuid::new_v4().to_string(), ObjType::Map)?;
        tx.put(&note, "author_user", user)?;
        tx.put(&note, "author_device", device)?;
        tx.put(&note, "written_at", now.as_str())?;
        tx.put(&note, "kind", "visit")?;
        let text = tx.put_object(&note, "body", ObjType::Text)?;
        tx.splice_text(&text, 0, 0, body)?;
        tx.put_object(&note, "tags", ObjType::Map)?;
        tx.put(&ROOT, "last_activity", now.as_str())?;
        Ok(())
    })
}

// ---------------------------------------------------------------------------------------------
// Peers

/// The peak resident size of this process (`VmHWM`), in kB.
fn vm_hwm_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Resets the peak to the current resident size (Linux `clear_refs` 5); where that is not
/// allowed the peak is the process's whole life.
fn reset_hwm() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// The total size of the files under `dir` (the space a repo's storage takes).
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

/// A phone-like repo with samod's file-system storage, connected to the server.
struct Peer {
    repo: Repo,
    dialer: DialerHandle,
    conn: ConnectionId,
}

impl Peer {
    /// A repo on `dir` that dials `url` with samod's own WebSocket dialer, once the handshake
    /// with the server is done.
    async fn connect(dir: &Path, url: &Url) -> Result<Self> {
        let repo = Repo::build_tokio()
            .with_storage(TokioFilesystemStorage::new(dir))
            .load()
            .await;
        let backoff = BackoffConfig {
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(2),
            max_retries: Some(20),
        };
        let dialer = repo.dial_websocket(url.clone(), backoff)?;
        dialer
            .established()
            .await
            .map_err(|e| anyhow!("no connection to the samod server: {e}"))?;
        let conn = dialer
            .connection_id()
            .ok_or_else(|| anyhow!("connected, but with no connection"))?;
        Ok(Self { repo, dialer, conn })
    }

    /// Every document of `ids`, from storage or else from the server; one that neither holds is
    /// an error.
    async fn fetch_all(&self, ids: &[DocumentId]) -> Result<Vec<DocHandle>> {
        let found = join_all(ids.iter().map(|id| self.repo.find(id.clone()))).await;
        found
            .into_iter()
            .zip(ids)
            .map(|(r, id)| match r {
                Ok(Some(h)) => Ok(h),
                Ok(None) => Err(anyhow!("document {id} unavailable")),
                Err(e) => Err(e.into()),
            })
            .collect()
    }

    /// Until the server's sync state shows each document's heads (the Node reference's
    /// `untilServerHas`).
    async fn server_has_ours(&self, handles: &[DocHandle]) {
        join_all(handles.iter().map(|h| h.they_have_our_changes(self.conn))).await;
    }

    /// Until this peer and the server hold the same heads of each document.
    async fn in_step(&self, handles: &[DocHandle]) {
        join_all(handles.iter().map(|h| {
            futures::future::join(
                h.they_have_our_changes(self.conn),
                h.we_have_their_changes(self.conn),
            )
        }))
        .await;
    }

    /// Closes the connection and flushes storage.
    async fn stop(self) {
        self.dialer.close();
        let _ = tokio::time::timeout(STOP_TIMEOUT, self.repo.stop()).await;
    }
}

/// The document ids of a URLs file (a JSON list of `automerge:` URLs, as `seed` writes).
fn read_ids(file: &Path) -> Result<Vec<DocumentId>> {
    let text = std::fs::read_to_string(file).with_context(|| format!("read {}", file.display()))?;
    let urls: Vec<String> = serde_json::from_str(&text).context("the URLs file is not a list")?;
    urls.iter()
        .map(|u| {
            let id = u.strip_prefix("automerge:").unwrap_or(u);
            DocumentId::from_str(id).map_err(|_| anyhow!("not a document URL: {u}"))
        })
        .collect()
}

fn number(args: &[String], i: usize) -> Result<usize> {
    let text = arg(args, i)?;
    text.parse()
        .with_context(|| format!("argument {i} is not a number: {text}"))
}

fn arg(args: &[String], i: usize) -> Result<&str> {
    args.get(i)
        .map(String::as_str)
        .ok_or_else(|| anyhow!("missing argument {i} (see the usage at the top of main.rs)"))
}

/// The modes of a client process (every mode but `server`).
const CLIENT_MODES: [&str; 7] = [
    "seed",
    "upload",
    "download",
    "change",
    "resync",
    "download-cut",
    "load",
];

/// Every mode but `server`; its figures as one JSON value.
async fn client(args: &[String]) -> Result<Value> {
    let mode = arg(args, 0)?;
    if !CLIENT_MODES.contains(&mode) {
        bail!(
            "unknown mode {mode:?}: server or one of {}",
            CLIENT_MODES.join(", ")
        );
    }
    let dir = PathBuf::from(arg(args, 1)?);
    if mode == "seed" {
        return seed(
            &dir,
            number(args, 2)?,
            number(args, 3)?,
            Path::new(arg(args, 4)?),
        )
        .await;
    }
    let url = Url::parse(arg(args, 2)?).context("the server's URL")?;
    let ids = read_ids(Path::new(arg(args, 3)?))?;
    if mode == "load" {
        let shape = [4, 5, 6, 7].map(|i| number(args, i));
        let [first, count, workers, per_worker] = shape;
        return load(&dir, &url, &ids, first?, count?, workers?, per_worker?).await;
    }
    reset_hwm();
    let t0 = Instant::now();
    if mode == "download-cut" {
        return download_cut(&dir, &url, &ids, t0).await;
    }
    let ids = if mode == "change" {
        &ids[..number(args, 4)?.min(ids.len())]
    } else {
        &ids[..]
    };
    let peer = Peer::connect(&dir, &url).await?;
    let handles = peer.fetch_all(ids).await?;
    match mode {
        "upload" => peer.server_has_ours(&handles).await,
        // `find` of a document this peer lacks resolves once it has synced with the server.
        "download" => {}
        "resync" => peer.in_step(&handles).await,
        "change" => {
            let (user, device) = (uuid::Uuid::new_v4().to_string(), "office".to_owned());
            for h in &handles {
                h.with_document(|d| add_note(d, OFFICE_NOTE, &user, &device))?;
            }
            peer.server_has_ours(&handles).await;
        }
        other => bail!("unknown mode {other}"),
    }
    let synced = t0.elapsed();
    // What this peer holds now: every note of every document, a check that the sync delivered.
    let notes_held: usize = handles
        .iter()
        .map(|h| h.with_document(|d| notes_in(d)))
        .sum();
    peer.stop().await;
    // As the Node reference times it: the download until its documents are flushed to storage,
    // the others until the sync state shows the heads.
    let ms = if mode == "download" {
        t0.elapsed()
    } else {
        synced
    };
    Ok(json!({
        "mode": mode, "docs": ids.len(), "ms": ms.as_secs_f64() * 1e3, "peak_kb": vm_hwm_kb(),
        "storage_bytes": dir_bytes(&dir), "notes_held": notes_held,
    }))
}

/// How many notes `doc` holds (0 when it has no notes map).
fn notes_in(doc: &Automerge) -> usize {
    match doc.get(&ROOT, "notes") {
        Ok(Some((automerge::Value::Object(ObjType::Map), id))) => doc.length(&id),
        _ => 0,
    }
}

/// `seed`: `n` documents of `notes` notes made offline into the storage at `dir`, their URLs
/// written to `urls_file`; reports the saved size of the first document.
async fn seed(dir: &Path, n: usize, notes: usize, urls_file: &Path) -> Result<Value> {
    let repo = Repo::build_tokio()
        .with_storage(TokioFilesystemStorage::new(dir))
        .load()
        .await;
    let mut urls = Vec::with_capacity(n);
    let mut doc_bytes = 0;
    for c in 0..n {
        let doc = case_doc(c, notes)?;
        if c == 0 {
            doc_bytes = doc.save().len();
        }
        let handle = repo.create(doc).await?;
        urls.push(handle.url().to_string());
    }
    let _ = tokio::time::timeout(STOP_TIMEOUT, repo.stop()).await;
    std::fs::write(urls_file, serde_json::to_string(&urls)?)
        .with_context(|| format!("write {}", urls_file.display()))?;
    Ok(json!({
        "mode": "seed", "seeded": n, "doc_bytes": doc_bytes, "storage_bytes": dir_bytes(dir),
    }))
}

/// `download-cut`: a fresh peer fetches every document until its connection drops (the suite's
/// proxy cuts it), keeps what arrived (flushed to storage) and ends, as a phone losing its
/// signal would; `resync` on the same folder is the resumed sync.
async fn download_cut(dir: &Path, url: &Url, ids: &[DocumentId], t0: Instant) -> Result<Value> {
    let peer = Peer::connect(dir, url).await?;
    // On a clone of the handle: the stream borrows it (2024 capture rules), and `peer` is
    // stopped below.
    let dialer = peer.dialer.clone();
    let mut events = dialer.events();
    let ready = Arc::new(AtomicUsize::new(0));
    let finds = join_all(ids.iter().map(|id| {
        let find = peer.repo.find(id.clone());
        let ready = ready.clone();
        async move {
            if let Ok(Some(_)) = find.await {
                ready.fetch_add(1, Ordering::SeqCst);
            }
        }
    }));
    let dropped = async {
        while let Some(event) = events.next().await {
            if matches!(event, DialerEvent::Disconnected { .. }) {
                return true;
            }
        }
        false
    };
    let dropped = tokio::select! {
        _ = finds => false,
        d = dropped => d,
    };
    let ms = t0.elapsed().as_secs_f64() * 1e3;
    let docs_ready = ready.load(Ordering::SeqCst);
    peer.stop().await;
    Ok(json!({
        "mode": "download-cut", "docs": ids.len(),
        // Seen as the connection's end, or as documents the server could no longer send.
        "cut": dropped || docs_ready < ids.len(),
        "docs_ready": docs_ready, "ms": ms, "peak_kb": vm_hwm_kb(),
    }))
}

/// `load`: `count` phone-like peers, each with its own repo, storage and WebSocket; see the
/// module documentation.
async fn load(
    dir: &Path,
    url: &Url,
    ids: &[DocumentId],
    first: usize,
    count: usize,
    workers: usize,
    per_worker: usize,
) -> Result<Value> {
    if workers == 0 || per_worker == 0 {
        bail!("workers and documents per worker must be at least 1");
    }
    let t0 = Instant::now();
    let setup = join_all((first..first + count).map(|i| {
        let w = i % workers;
        let mine = ids
            .get(w * per_worker..(w + 1) * per_worker)
            .map(<[_]>::to_vec);
        let phone_dir = dir.join(format!("phone-{i}"));
        async move {
            let result = async {
                let mine = mine.ok_or_else(|| anyhow!("no documents for worker {w}"))?;
                let peer = Peer::connect(&phone_dir, url).await?;
                let handles = peer.fetch_all(&mine).await?;
                peer.in_step(&handles).await;
                let handle = handles
                    .get(i % per_worker)
                    .cloned()
                    .ok_or_else(|| anyhow!("no document {}", i % per_worker))?;
                Ok::<_, anyhow::Error>((peer, handle))
            }
            .await;
            result
                .map(|(peer, handle)| (i, peer, handle))
                .map_err(|e| format!("peer {i} could not fetch its documents: {e:#}"))
        }
    }))
    .await;
    let mut peers = Vec::new();
    let mut setup_errors = Vec::new();
    for r in setup {
        match r {
            Ok(p) => peers.push(p),
            Err(e) => setup_errors.push(e),
        }
    }
    println!(
        "{}",
        json!({
            "ready": peers.len(), "setup_errors": setup_errors.len(),
            "setup_ms": t0.elapsed().as_secs_f64() * 1e3,
        })
    );
    // One line on stdin starts the run (the suite sends "go" to every process at once).
    let _ = BufReader::new(tokio::io::stdin()).lines().next_line().await;
    let per_peer = Duration::from_millis(
        std::env::var("BENCH_PEER_TIMEOUT_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(120_000),
    );
    let user = uuid::Uuid::new_v4().to_string();
    let started: Vec<(Instant, Result<(), String>)> = peers
        .iter()
        .map(|(i, _, handle)| {
            let at = Instant::now();
            let body = format!("phone {i}: client met at the centre");
            let device = format!("phone-{i}");
            let changed = handle
                .with_document(|d| add_note(d, &body, &user, &device))
                .map_err(|e| format!("peer {i} could not change its document: {e:#}"));
            (at, changed)
        })
        .collect();
    let results = join_all(peers.iter().zip(&started).map(
        |((_, peer, handle), (at, changed))| async move {
            if let Err(e) = changed {
                return Err(e.clone());
            }
            let left = per_peer.saturating_sub(at.elapsed());
            match tokio::time::timeout(left, handle.they_have_our_changes(peer.conn)).await {
                Ok(()) => Ok(at.elapsed().as_secs_f64() * 1e3),
                Err(_) => Err(format!(
                    "server did not show the change within {} ms",
                    per_peer.as_millis()
                )),
            }
        },
    ))
    .await;
    let latencies: Vec<f64> = results
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .copied()
        .collect();
    let late: Vec<&String> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    let wall_ms = latencies.iter().copied().fold(0.0, f64::max);
    let first_error = setup_errors.first().or(late.first().copied()).cloned();
    let out = json!({
        "mode": "load", "peers": count, "latencies_ms": latencies,
        "errors": late.len() + setup_errors.len(), "setup_errors": setup_errors.len(),
        "first_error": first_error, "wall_ms": wall_ms, "peak_kb": vm_hwm_kb(),
    });
    join_all(peers.into_iter().map(|(_, peer, _)| peer.stop())).await;
    Ok(out)
}
