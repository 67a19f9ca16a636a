//! `serve` (run the HTTPS server until Ctrl-C or SIGTERM) and `admin init` (create an office
//! without serving it); both create the office on first use.

use std::io::Write;
use std::sync::Arc;

use anyhow::{Context, Result};
use fieldcase_server::http::tls::TlsIdentity;
use fieldcase_server::storage::data_dir;
use fieldcase_server::storage::keys::KEY_FILE;
use fieldcase_server::{AppState, SystemClock};

use super::Settings;

/// Opens (or on first start creates) the office in the data folder and its certificate.
fn open_office(settings: &Settings) -> Result<(AppState, TlsIdentity)> {
    data_dir::prepare(&settings.data)?;
    let state = AppState::open_with(
        &settings.data,
        &settings.database,
        Arc::new(SystemClock),
        settings.limits,
    )
    .context("opening the data folder and the database")?;
    let identity = TlsIdentity::load_or_create(&settings.data).context("TLS certificate")?;
    Ok((state, identity))
}

/// `admin init`: creates the office (key file, database, certificate) if the folder holds none,
/// and prints its certificate fingerprint.
pub fn init(settings: &Settings, out: &mut impl Write) -> Result<()> {
    let existed = settings.data.join(KEY_FILE).is_file();
    let (_state, identity) = open_office(settings)?;
    let what = if existed {
        "office already in"
    } else {
        "created an office in"
    };
    writeln!(out, "{what} {}", settings.data.display())?;
    writeln!(
        out,
        "certificate sha256 fingerprint: {}",
        identity.fingerprint()
    )?;
    Ok(())
}

/// `serve`: serves the office until Ctrl-C or SIGTERM, then drains in-flight requests.
pub fn run(settings: Settings) -> Result<()> {
    let (state, identity) = open_office(&settings)?;
    let tls = identity.server_config()?;
    let listener = std::net::TcpListener::bind(settings.listen)
        .with_context(|| format!("binding {}", settings.listen))?;
    let addr = listener.local_addr().context("reading the bound address")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        // Install the signal handlers before announcing the address, so a prompt SIGTERM is
        // handled as a clean shutdown.
        let shutdown = shutdown_signal()?;
        let mut out = std::io::stdout().lock();
        writeln!(out, "fieldcase-server listening on https://{addr}")?;
        writeln!(
            out,
            "certificate sha256 fingerprint: {}",
            identity.fingerprint()
        )?;
        out.flush()?;
        drop(out);
        tracing::info!(%addr, "serving");
        fieldcase_server::serve(listener, tls, state, shutdown).await?;
        tracing::info!("stopped");
        Ok(())
    })
}

/// A future that completes on Ctrl-C or (on Unix) SIGTERM.
fn shutdown_signal() -> Result<impl std::future::Future<Output = ()> + Send + 'static> {
    #[cfg(unix)]
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    Ok(async move {
        #[cfg(unix)]
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutdown requested");
    })
}
