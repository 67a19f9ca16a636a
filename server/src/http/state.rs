//! Shared state of the HTTP app and its limits.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Semaphore;

use crate::http::address_slots::AddressSlots;
use zeroize::Zeroizing;

use crate::clock::{Clock, SystemClock};
use crate::error::ServerError;
use crate::http::device_rate::DeviceRates;
use crate::http::ratelimit::FailureLimiter;
use crate::storage::case_docs::CaseVault;
use crate::storage::keys::ServerKeys;
use crate::storage::sql::{DEFAULT_PG_CONNECTIONS, Database, DatabaseConfig, SslMode};

/// Tunable limits of the HTTP app.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest time a request may take end to end, body included.
    pub request_timeout: Duration,
    /// Longest time a new connection may take to send its first request's headers (after the
    /// TLS handshake); a client trickling bytes is cut off.
    pub first_request_timeout: Duration,
    /// Longest time the headers of any later request on a kept-alive connection may take to
    /// arrive, counted from when the server starts waiting for them; it also closes a kept-alive
    /// connection that stays idle that long.
    pub header_read_timeout: Duration,
    /// Failed enrollment attempts allowed per client address per window.
    pub enroll_failures_per_window: u32,
    /// The failure-counting window, seconds.
    pub enroll_failure_window_secs: i64,
    /// Requests handled at once; more wait (within their timeout) for a slot.
    pub max_concurrent_requests: usize,
    /// Requests handled at once from one client address; more from it wait (within their
    /// timeout), so one address holds at most this share of the slots.
    pub max_requests_per_address: usize,
    /// Most TCP connections one client address may hold open at once (idle ones included);
    /// more are closed on arrival. An office behind one NAT shares it.
    pub max_connections_per_address: usize,
    /// Whether a newly enrolled device waits for an admin to confirm its key fingerprint
    /// before it may sync (whoever used a worker's code first would otherwise get her cases).
    pub confirm_enrollment: bool,
    /// Signed requests one device may make at once before it is held to
    /// [`Limits::device_requests_per_sec`] (a first sync of thousands of cases takes some
    /// dozens of rounds).
    pub device_burst: u32,
    /// Signed requests a second one device may make once its burst is spent.
    pub device_requests_per_sec: u32,
    /// The floor rate of a request body, bytes a second counted from the start after
    /// [`Limits::body_grace`]; a body that arrives slower ends the request.
    pub min_body_bytes_per_sec: u64,
    /// How long a request body may take before the floor rate applies.
    pub body_grace: Duration,
    /// How long a device may open case data offline after a successful sync (the lease).
    pub lease: Duration,
    /// How long a closed case stays on devices before they purge it.
    pub retention: Duration,
    /// How long the office keeps a closed case's content (notes, plan, profile, tasks) before
    /// erasing it, leaving only the anonymised statistics and an audit record.
    pub office_retention: Duration,
    /// The office's IANA time zone, in which the pages show and read times.
    pub office_time_zone: &'static str,
    /// Most pooled connections to PostgreSQL of this instance (unused with SQLite).
    pub pg_connections: usize,
    /// Most automerge operations of case documents kept decrypted in memory between requests
    /// (a loaded document takes about 25 bytes an operation; the default, 2,000,000, about
    /// 50 MB). Past it the least recently used documents are dropped and loaded again when
    /// next needed; 0 keeps none. The memory of an office that holds more than this stays at
    /// this bound whatever its caseload.
    pub cached_operations: u64,
    /// Whether sync answers carry a `Server-Timing` header saying where the request's time
    /// went at the office ([`crate::storage::phases`]): for measuring, off by default.
    pub server_timing: bool,
    /// Reports hide every count below this (and the counts that would give a hidden one away).
    pub report_threshold: i64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            request_timeout: Duration::from_secs(60),
            first_request_timeout: Duration::from_secs(30),
            header_read_timeout: Duration::from_secs(30),
            enroll_failures_per_window: 10,
            enroll_failure_window_secs: 15 * 60,
            max_concurrent_requests: 128,
            max_requests_per_address: 64,
            max_connections_per_address: 256,
            confirm_enrollment: true,
            device_burst: 120,
            device_requests_per_sec: 2,
            min_body_bytes_per_sec: 1024,
            body_grace: Duration::from_secs(10),
            lease: Duration::from_secs(72 * 3600),
            retention: Duration::from_secs(30 * 24 * 3600),
            office_retention: Duration::from_secs(
                crate::office::retention::DEFAULT_OFFICE_RETENTION_DAYS * 24 * 3600,
            ),
            office_time_zone: crate::config::DEFAULT_TIME_ZONE,
            pg_connections: DEFAULT_PG_CONNECTIONS,
            cached_operations: crate::storage::case_docs::CACHE_OPS,
            server_timing: false,
            report_threshold: crate::office::reports::DEFAULT_THRESHOLD,
        }
    }
}

struct Inner {
    db: Database,
    keys: ServerKeys,
    /// Tags the user names of failed logins (derived from `server.key`).
    login_key: Zeroizing<[u8; 32]>,
    vault: Arc<CaseVault>,
    clock: Arc<dyn Clock>,
    limits: Limits,
    enroll_failures: Mutex<FailureLimiter>,
    device_rates: DeviceRates,
    in_flight: Arc<Semaphore>,
    per_address: Arc<AddressSlots>,
    live_streams: Arc<Semaphore>,
    sync_streams: Arc<Semaphore>,
    next_pin: crate::http::tls::NextPinWatch,
    /// The address phones reach the office at (`public_url`), for enrollment invites.
    public_url: std::sync::OnceLock<String>,
}

/// What the key tagging failed logins' user names is derived for.
pub(crate) const LOGIN_FAILURES_KEY: &str = "web login failures: user names";

/// Most live-update streams (server-sent events of open case pages) open at once; past it a
/// page is answered 503 and its script falls back to polling.
pub(crate) const MAX_LIVE_STREAMS: usize = 64;

/// Everything a request handler needs; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("limits", &self.inner.limits)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// Builds the state from its parts; loads (or on first start creates) the case-sealing key.
    pub fn new(
        db: Database,
        keys: ServerKeys,
        clock: Arc<dyn Clock>,
        limits: Limits,
    ) -> Result<AppState, ServerError> {
        AppState::build(
            db,
            keys,
            clock,
            limits,
            crate::http::tls::NextPinWatch::none(),
        )
    }

    fn build(
        db: Database,
        keys: ServerKeys,
        clock: Arc<dyn Clock>,
        limits: Limits,
        next_pin: crate::http::tls::NextPinWatch,
    ) -> Result<AppState, ServerError> {
        // Every transaction carries the audit key; the keyed chain starts here if it has not.
        let db = db.with_record_key(keys.derive(crate::office::audit::KEY_PURPOSE)?);
        db.write(crate::office::audit::start_keyed_chain)?;
        let vault = db.write(|sql| CaseVault::load_or_create(sql, &keys))?;
        // Cases stored before the report index existed get their facts once.
        let derived = db.write(|sql| crate::storage::case_docs::backfill_index(sql, &vault))?;
        if derived > 0 {
            tracing::info!(
                cases = derived,
                "report index: derived the facts of stored cases"
            );
        }
        vault.docs.set_budget(limits.cached_operations);
        // Several instances on one PostgreSQL database: hear the stores of the others.
        if let Some(url) = db.pg_url() {
            crate::storage::live_notify::spawn(url, &vault)?;
        }
        let limiter = FailureLimiter::new(
            limits.enroll_failures_per_window,
            limits.enroll_failure_window_secs,
        );
        let login_key = keys.derive(LOGIN_FAILURES_KEY)?;
        Ok(AppState {
            inner: Arc::new(Inner {
                db,
                keys,
                login_key,
                vault,
                clock,
                limits,
                enroll_failures: Mutex::new(limiter),
                device_rates: DeviceRates::new(limits.device_burst, limits.device_requests_per_sec),
                in_flight: Arc::new(Semaphore::new(limits.max_concurrent_requests.max(1))),
                per_address: AddressSlots::new(limits.max_requests_per_address),
                live_streams: Arc::new(Semaphore::new(MAX_LIVE_STREAMS)),
                sync_streams: Arc::new(Semaphore::new(limits.max_concurrent_requests.max(1))),
                next_pin,
                public_url: std::sync::OnceLock::new(),
            }),
        })
    }

    /// Opens the database and key file of `data_dir` (creating them if needed): the SQLite
    /// file in `data_dir`.
    pub fn open(
        data_dir: &Path,
        clock: Arc<dyn Clock>,
        limits: Limits,
    ) -> Result<AppState, ServerError> {
        AppState::open_with(
            data_dir,
            &DatabaseConfig::default_in(data_dir),
            clock,
            limits,
        )
    }

    /// Like [`AppState::open`] with the database chosen by `database` (the key file stays in
    /// `data_dir`: every instance on one PostgreSQL database needs a copy of the same
    /// `server.key`, which opens the case-sealing key stored in the database). Sync answers
    /// announce the next certificate of `data_dir` whenever one is prepared.
    pub fn open_with(
        data_dir: &Path,
        database: &DatabaseConfig,
        clock: Arc<dyn Clock>,
        limits: Limits,
    ) -> Result<AppState, ServerError> {
        let keys = ServerKeys::load_or_create(data_dir)?;
        let db = Database::open_with(database, limits.pg_connections)?;
        tracing::info!(
            backend = database.backend_name(),
            sslmode = database.pg_ssl_mode().map(SslMode::as_str),
            "database opened"
        );
        AppState::build(
            db,
            keys,
            clock,
            limits,
            crate::http::tls::NextPinWatch::new(data_dir),
        )
    }

    /// Opens `data_dir` with the system clock and default limits.
    pub fn open_default(data_dir: &Path) -> Result<AppState, ServerError> {
        AppState::open(data_dir, Arc::new(SystemClock), Limits::default())
    }

    /// The database.
    pub fn db(&self) -> &Database {
        &self.inner.db
    }

    /// The case-sealing key and the office's editing identity.
    pub fn vault(&self) -> &Arc<CaseVault> {
        &self.inner.vault
    }

    /// The server's keys.
    pub fn keys(&self) -> &ServerKeys {
        &self.inner.keys
    }

    /// The signed announcement of the office's next certificate, while one is prepared in the
    /// data folder (see [`crate::http::tls::NextPinWatch`]).
    pub fn next_pin(&self) -> Option<fieldcase_core::protocol::PinAnnouncement> {
        self.inner
            .next_pin
            .announcement(&self.inner.keys.signing_key)
    }

    /// Records which certificate this server presents (loaded at its start), so that after
    /// `admin tls rotate` and before the restart the new one is still announced (see
    /// [`crate::http::tls::NextPinWatch`]).
    pub fn presenting(&self, fingerprint: fieldcase_core::protocol::Fingerprint) {
        self.inner.next_pin.presenting(fingerprint);
    }

    /// The certificate this server presents (what phones pin), once known.
    pub fn presented_pin(&self) -> Option<fieldcase_core::protocol::Fingerprint> {
        self.inner.next_pin.presented()
    }

    /// Sets the address phones reach this office at (`public_url`), which enrollment invites
    /// carry; the first call counts.
    pub fn set_public_url(&self, url: &str) {
        let _ = self.inner.public_url.set(url.to_owned());
    }

    /// The address phones reach this office at, if configured.
    pub fn public_url(&self) -> Option<&str> {
        self.inner.public_url.get().map(String::as_str)
    }

    /// The key that tags the typed user names of failed logins.
    pub(crate) fn login_key(&self) -> &[u8; 32] {
        &self.inner.login_key
    }

    /// Current time, Unix seconds.
    pub fn now(&self) -> i64 {
        self.inner.clock.now()
    }

    /// The limits.
    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    /// Slots for open live-update streams of the web pages (each holds one while open).
    pub(crate) fn live_streams(&self) -> &Arc<Semaphore> {
        &self.inner.live_streams
    }

    /// Slots for sync answers streamed past their first page (each holds one while it builds
    /// further pages); as many as requests handled at once. Without a free slot an answer ends
    /// after its first page and the phone asks again.
    pub(crate) fn sync_streams(&self) -> &Arc<Semaphore> {
        &self.inner.sync_streams
    }

    pub(crate) fn in_flight(&self) -> &Arc<Semaphore> {
        &self.inner.in_flight
    }

    /// The request slots of each client address.
    pub(crate) fn per_address(&self) -> &Arc<AddressSlots> {
        &self.inner.per_address
    }

    /// Requests per device ([`crate::http::device_rate`]).
    pub(crate) fn device_rates(&self) -> &DeviceRates {
        &self.inner.device_rates
    }

    pub(crate) fn enroll_failures(&self) -> &Mutex<FailureLimiter> {
        &self.inner.enroll_failures
    }
}
