//! `serve` (run the HTTPS server until Ctrl-C or SIGTERM) and `admin init` (create an office
//! without serving it); both create the office on first use.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use fieldcase_server::http::tls::TlsIdentity;
use fieldcase_server::office::backup;
use fieldcase_server::storage::data_dir;
use fieldcase_server::storage::keys::KEY_FILE;
use fieldcase_server::storage::sql::DatabaseConfig;
use fieldcase_server::{AppState, SystemClock};

use super::Settings;

/// Before a database is migrated to this build's schema, a backup of it as it was, encrypted to
/// the configured backup recipients, so that an upgrade that goes wrong loses nothing. Written
/// to the scheduled backups' folder, or else `pre-migration-backups` in the data folder, under
/// a name the schedule's pruning leaves alone. Without recipients there is nothing to encrypt
/// to: the upgrade goes on, with a warning.
fn backup_before_migrating(settings: &Settings) -> Result<()> {
    let DatabaseConfig::Sqlite(path) = &settings.database else {
        return Ok(());
    };
    if !path.is_file() || !settings.data.join(KEY_FILE).is_file() {
        return Ok(());
    }
    let found: i64 = rusqlite::Connection::open(path)
        .and_then(|c| c.pragma_query_value(None, "user_version", |r| r.get(0)))
        .context("reading the database's schema version")?;
    let known = fieldcase_server::storage::sql::schema_version();
    if found >= known {
        return Ok(());
    }
    if settings.backup_recipients.is_empty() {
        tracing::warn!(
            found,
            known,
            "migrating the database without a backup first: no backup_recipients configured"
        );
        return Ok(());
    }
    let recipients = super::backup::recipients(&settings.backup_recipients)?;
    let dir = match &settings.backup_schedule {
        Some((_, dir, _)) => dir.clone(),
        None => settings.data.join("pre-migration-backups"),
    };
    std::fs::create_dir_all(&dir).context("creating the backup folder")?;
    let now = fieldcase_server::Clock::now(&SystemClock);
    let name =
        backup::scheduled_name(now).replacen("fieldcase-", &format!("pre-migration-v{found}-"), 1);
    let to = dir.join(name);
    backup::create(&settings.data, Some(path), &recipients, &to, now)
        .context("backing up the database before migrating it")?;
    tracing::info!(found, known, file = %to.display(), "backed up the database before migrating it");
    Ok(())
}

/// Opens (or on first start creates) the office in the data folder and its certificate.
fn open_office(settings: &Settings) -> Result<(AppState, TlsIdentity)> {
    data_dir::prepare(&settings.data)?;
    backup_before_migrating(settings)?;
    let state = AppState::open_with(
        &settings.data,
        &settings.database,
        Arc::new(SystemClock),
        settings.limits,
    )
    .context("opening the data folder and the database")?;
    let identity = TlsIdentity::load_or_create(&settings.data).context("TLS certificate")?;
    state.presenting(identity.fingerprint());
    if let Some(url) = &settings.public_url {
        state.set_public_url(url);
    }
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
        tokio::spawn(office_retention(state.clone()));
        if let Some(schedule) = backup_schedule(&settings)? {
            tokio::spawn(scheduled_backups(state.clone(), schedule));
        }
        fieldcase_server::serve(listener, tls, state, shutdown).await?;
        tracing::info!("stopped");
        Ok(())
    })
}

/// What scheduled backups need, from the settings (`None`: none are scheduled).
struct Schedule {
    every: std::time::Duration,
    dir: PathBuf,
    keep: usize,
    data: PathBuf,
    db_file: Option<PathBuf>,
    recipients: Vec<age::x25519::Recipient>,
}

fn backup_schedule(settings: &Settings) -> Result<Option<Schedule>> {
    let Some((every, dir, keep)) = settings.backup_schedule.clone() else {
        return Ok(None);
    };
    let recipients = super::backup::recipients(&settings.backup_recipients)?;
    let db_file = match &settings.database {
        DatabaseConfig::Sqlite(path) => Some(path.clone()),
        // PostgreSQL's own tools back up its database; the keys still are backed up here.
        DatabaseConfig::Postgres(_) => None,
    };
    std::fs::create_dir_all(&dir).context("creating the backup folder")?;
    Ok(Some(Schedule {
        every,
        dir,
        keep,
        data: settings.data.clone(),
        db_file,
        recipients,
    }))
}

/// Takes a backup at start and then every `schedule.every`, without stopping syncs (the copy
/// is a read snapshot), keeps the newest `schedule.keep`, and records each outcome where the
/// admin pages show it.
async fn scheduled_backups(state: AppState, schedule: Schedule) {
    let schedule = Arc::new(schedule);
    let mut tick = tokio::time::interval(schedule.every);
    loop {
        tick.tick().await;
        let now = state.now();
        let job = schedule.clone();
        let outcome = tokio::task::spawn_blocking(move || {
            let to = job.dir.join(backup::scheduled_name(now));
            backup::create(&job.data, job.db_file.as_deref(), &job.recipients, &to, now)?;
            backup::prune(&job.dir, job.keep)?;
            Ok::<_, fieldcase_server::error::ServerError>(to)
        })
        .await;
        let outcome = match outcome {
            Ok(Ok(to)) => Ok(to.display().to_string()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("the backup stopped".to_owned()),
        };
        if let Err(why) = &outcome {
            tracing::error!(%why, "scheduled backup failed");
        }
        let last = backup::LastBackup { at: now, outcome };
        let recorded = state
            .db()
            .call_write(move |sql| backup::record_last(sql, &last))
            .await;
        if let Err(e) = recorded {
            tracing::error!(%e, "recording the backup's outcome failed");
        }
    }
}

/// Erases, at start and then every hour, the content of every case closed for longer than the
/// office's retention period (`office_retention_days`), and forgets the request nonces that
/// expired on devices that have not called since.
async fn office_retention(state: AppState) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(3600));
    loop {
        tick.tick().await;
        let (vault, now) = (state.vault().clone(), state.now());
        let keep = i64::try_from(state.limits().office_retention.as_secs()).unwrap_or(i64::MAX);
        let erased = state
            .db()
            .call_write(move |sql| {
                fieldcase_server::office::retention::erase_expired(sql, &vault, keep, now)
            })
            .await;
        match erased {
            Ok(cases) if !cases.is_empty() => {
                tracing::info!(count = cases.len(), "erased closed cases past retention")
            }
            Ok(_) => {}
            Err(e) => tracing::error!(%e, "erasing closed cases past retention failed"),
        }
        let now = state.now();
        let swept = state
            .db()
            .call_write(move |sql| {
                fieldcase_server::office::devices::forget_expired_nonces(sql, now)
            })
            .await;
        if let Err(e) = swept {
            tracing::error!(%e, "forgetting expired request nonces failed");
        }
    }
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
