//! Running the office: [`serve`] puts the router behind TLS on a listener until a shutdown
//! future completes; [`Server::start`] does all of it (state, certificate, listener, runtime)
//! on a background thread, for tests, benches and the bindings' test server.

use std::future::Future;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use fieldcase_core::protocol::Fingerprint;

use crate::clock::{Clock, SystemClock};
use crate::error::ServerError;
use crate::http::connection_cap::{ConnectionCap, ConnectionCounts};
use crate::http::routes::{app, finish, routes};
use crate::http::state::{AppState, Limits};
use crate::http::tls::TlsIdentity;
use crate::storage::data_dir;
use crate::storage::sql::DatabaseConfig;

/// How long in-flight requests get to finish after shutdown is asked for.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// How long a client gets for its TLS handshake.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

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

/// Like [`serve`] for an already built router (for example the app's routes plus extra routes,
/// passed through the same layers; see [`ServerOptions::extra_routes`]). `limits` bound how
/// many connections one address holds open and how long a connection may take to send a
/// request's headers (a client trickling one byte a second is cut off).
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
    .acceptor(ConnectionCap::new(
        axum_server::accept::NoDelayAcceptor::new(),
        ConnectionCounts::new(limits.max_connections_per_address),
    ));
    let mut server = axum_server::from_tcp(listener)
        .map_err(ServerError::io("using the listening socket"))?
        .acceptor(acceptor)
        .first_request_timeout(limits.first_request_timeout)
        // Not HTTP/2, even to a client that sends its preface without asking through ALPN.
        .http1_only();
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
    pub database: Option<DatabaseConfig>,
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
        data_dir::prepare(&options.data_dir)?;
        let limits = options.limits;
        let database = options
            .database
            .clone()
            .unwrap_or_else(|| DatabaseConfig::default_in(&options.data_dir));
        let state = AppState::open_with(&options.data_dir, &database, options.clock, limits)?;
        let identity = TlsIdentity::load_or_create(&options.data_dir)?;
        let tls = identity.server_config()?;
        state.presenting(identity.fingerprint());
        let listener = TcpListener::bind(options.listen)
            .map_err(ServerError::io("binding the listen address"))?;
        let addr = listener
            .local_addr()
            .map_err(ServerError::io("reading the bound address"))?;
        let mut routes = routes();
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
