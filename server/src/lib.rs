//! fieldcase office server: enrollment, device authentication, and (later) the sync hub.
//!
//! Everything lives in one data folder: the SQLite database ([`db::DB_FILE`]; or, for several
//! instances, one PostgreSQL database shared by all: [`sql::DatabaseConfig`]), the secret key file
//! ([`keys::KEY_FILE`], mode 0600) and a self-signed TLS certificate ([`tls::CERT_FILE`],
//! [`tls::CERT_KEY_FILE`]) whose SHA-256 fingerprint devices pin. The server speaks HTTPS only,
//! TLS 1.3 only (rustls with ring).
//!
//! - [`app`] builds the axum router; [`serve`] runs it on a listener with TLS until a shutdown
//!   future completes.
//! - [`Server::start`] does all of it on a background thread, for tests and benches.

pub mod admin;
pub mod admin_api;
pub mod audit;
pub mod auth;
pub mod case_docs;
pub mod cases;
pub mod clock;
pub mod config;
pub mod conflicts;
pub mod db;
pub mod error;
pub mod keys;
pub mod live_notify;
pub mod quarantine;
pub mod ratelimit;
pub mod routes;
pub mod sql;
pub mod state;
pub mod store;
pub mod sync;
pub mod testing;
pub mod tls;
pub mod web;

use std::future::Future;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use fieldcase_core::protocol::Fingerprint;

pub use auth::Authenticated;
pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{AppError, ServerError};
pub use routes::{app, finish, routes};
pub use state::{AppState, Limits};
pub use tls::TlsIdentity;

/// How long in-flight requests get to finish after shutdown is asked for.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// How long a client gets for its TLS handshake.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Creates the data folder (mode 0700 on Unix) if it does not exist.
pub fn prepare_data_dir(data_dir: &Path) -> Result<(), ServerError> {
    if data_dir.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder
        .create(data_dir)
        .map_err(ServerError::io("creating the data folder"))
}

/// Serves `app(state)` on `listener` with TLS until `shutdown` completes, then drains in-flight
/// requests (up to [`SHUTDOWN_GRACE`]).
pub async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let limits = *state.limits();
    serve_router(listener, tls, app(state), &limits, shutdown).await
}

/// Like [`serve`] for an already built router (for example [`routes::routes`] plus extra routes, passed
/// through [`finish`]). `limits` bound how long a connection may take to send a request's
/// headers (a client trickling one byte a second is cut off).
pub async fn serve_router(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    router: Router,
    limits: &Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let handle = axum_server::Handle::new();
    let on_shutdown = handle.clone();
    tokio::spawn(async move {
        shutdown.await;
        on_shutdown.graceful_shutdown(Some(SHUTDOWN_GRACE));
    });
    // TCP_NODELAY: a sync answer is one small write; without it Nagle's algorithm and the
    // peer's delayed ACK add about 40 ms to every round trip.
    let acceptor = axum_server::tls_rustls::RustlsAcceptor::new(
        axum_server::tls_rustls::RustlsConfig::from_config(tls),
    )
    .handshake_timeout(TLS_HANDSHAKE_TIMEOUT)
    .acceptor(axum_server::accept::NoDelayAcceptor::new());
    let mut server = axum_server::from_tcp(listener)
        .map_err(ServerError::io("using the listening socket"))?
        .acceptor(acceptor)
        .first_request_timeout(limits.first_request_timeout);
    // axum-server turns hyper's header read timeout off; without it a kept-alive connection
    // could trickle the headers of its next request forever.
    server
        .http_builder()
        .http1()
        .header_read_timeout(limits.header_read_timeout);
    server
        .handle(handle)
        .serve(router.into_make_service_with_connect_info::<SocketAddr>())
        .await
        .map_err(ServerError::io("serving"))
}

/// Options of [`Server::start_with`].
pub struct ServerOptions {
    /// Data folder.
    pub data_dir: PathBuf,
    /// Address to listen on (port 0 picks a free port).
    pub listen: SocketAddr,
    /// Time source.
    pub clock: Arc<dyn Clock>,
    /// Limits.
    pub limits: Limits,
    /// Routes merged into the app (for tests of extractors, or later endpoints).
    pub extra_routes: Option<Router<AppState>>,
    /// The database; `None` is the SQLite file in the data folder.
    pub database: Option<sql::DatabaseConfig>,
}

impl ServerOptions {
    /// Defaults: system clock, default limits, no extra routes.
    pub fn new(data_dir: impl Into<PathBuf>, listen: SocketAddr) -> ServerOptions {
        ServerOptions {
            data_dir: data_dir.into(),
            listen,
            clock: Arc::new(SystemClock),
            limits: Limits::default(),
            extra_routes: None,
            database: None,
        }
    }
}

/// Runs the server on a background thread with its own tokio runtime.
#[derive(Debug)]
pub struct Server;

impl Server {
    /// Starts a server for `data_dir` on `listen` with defaults.
    pub fn start(
        data_dir: impl AsRef<Path>,
        listen: SocketAddr,
    ) -> Result<RunningServer, ServerError> {
        Server::start_with(ServerOptions::new(data_dir.as_ref(), listen))
    }

    /// Starts a server with explicit options.
    pub fn start_with(options: ServerOptions) -> Result<RunningServer, ServerError> {
        prepare_data_dir(&options.data_dir)?;
        let limits = options.limits;
        let database = options
            .database
            .clone()
            .unwrap_or_else(|| sql::DatabaseConfig::default_in(&options.data_dir));
        let state = AppState::open_with(&options.data_dir, &database, options.clock, limits)?;
        let identity = TlsIdentity::load_or_create(&options.data_dir)?;
        let tls = identity.server_config()?;
        let listener = TcpListener::bind(options.listen)
            .map_err(ServerError::io("binding the listen address"))?;
        let addr = listener
            .local_addr()
            .map_err(ServerError::io("reading the bound address"))?;
        let mut routes = routes::routes();
        if let Some(extra) = options.extra_routes {
            routes = routes.merge(extra);
        }
        let router = finish(routes, state.clone());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(ServerError::io("starting the async runtime"))?;
        let thread = std::thread::Builder::new()
            .name("fieldcase-server".to_owned())
            .spawn(move || {
                runtime.block_on(serve_router(listener, tls, router, &limits, async move {
                    let _ = rx.await;
                }))
            })
            .map_err(ServerError::io("starting the server thread"))?;
        Ok(RunningServer {
            addr,
            fingerprint: identity.fingerprint(),
            state,
            shutdown: Some(tx),
            thread: Some(thread),
        })
    }
}

/// A server running on a background thread; stops when shut down or dropped.
#[derive(Debug)]
pub struct RunningServer {
    /// The bound address.
    pub addr: SocketAddr,
    /// SHA-256 fingerprint of the server certificate.
    pub fingerprint: Fingerprint,
    /// The app state (database, keys, clock), for inspection.
    pub state: AppState,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<Result<(), ServerError>>>,
}

impl RunningServer {
    /// `https://ADDR`.
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// Stops accepting, drains in-flight requests and waits for the thread.
    pub fn shutdown(mut self) -> Result<(), ServerError> {
        self.stop()
    }

    fn stop(&mut self) -> Result<(), ServerError> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        match self.thread.take() {
            Some(thread) => thread
                .join()
                .map_err(|_| ServerError::Internal("server thread panicked"))?,
            None => Ok(()),
        }
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}
