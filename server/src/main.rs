//! `fieldcase-server` binary: `serve` runs the HTTPS server; `admin ...` manages users and
//! enrollment codes directly on the data folder's database.

/// jemalloc, not the system allocator: under a steady load glibc kept freed memory in its many
/// per-thread arenas, so the resident size rose minute after minute while the heap in use stayed
/// flat (heaptrack); jemalloc gives freed pages back to the system after a few seconds.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use fieldcase_core::ids::UserId;
use fieldcase_core::model::{NewCase, NewTask};
use fieldcase_core::protocol::Role;
use fieldcase_server::cases::{self, CaseVault};
use fieldcase_server::config::{DEFAULT_DATA_DIR, DEFAULT_LISTEN, FileConfig};
use fieldcase_server::sql::{Database, DatabaseConfig};
use fieldcase_server::{
    AppState, Clock, Limits, SystemClock, TlsIdentity, admin, audit, prepare_data_dir, store,
};

#[derive(Parser, Debug)]
#[command(name = "fieldcase-server", version, about = "fieldcase office server")]
struct Cli {
    /// Data folder (database, key file, TLS certificate). Default ./fieldcase-data.
    #[arg(long, global = true, value_name = "DIR")]
    data: Option<PathBuf>,
    /// TOML configuration file; flags override it.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Database: a postgres:// URL (several instances share one PostgreSQL database) or the
    /// path of a SQLite file. Default: server.db in the data folder. Prefer the environment
    /// variable for a URL with a password (a flag is visible to other users in `ps`).
    #[arg(
        long,
        global = true,
        value_name = "URL|PATH",
        env = "FIELDCASE_DATABASE_URL",
        hide_env_values = true
    )]
    database: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the HTTPS server until Ctrl-C or SIGTERM.
    Serve(ServeArgs),
    /// Administer users and devices (works on the database directly).
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
}

#[derive(Args, Debug)]
struct ServeArgs {
    /// Address to listen on (port 0 picks a free port). Default 127.0.0.1:8443.
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
}

#[derive(Subcommand, Debug)]
enum AdminCommand {
    /// Manage users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Manage cases (open, assign, plan tasks).
    Case {
        #[command(subcommand)]
        command: CaseCommand,
    },
    /// Issue a one-time enrollment code binding one new device to USER.
    Enroll {
        /// The user's name.
        user: String,
        /// How long the code stays valid (e.g. 90s, 15m, 1h; at most 24h).
        #[arg(long, default_value = "15m", value_parser = parse_ttl)]
        ttl: Duration,
        /// Server address to show to the device (default: public_url from the config, else the
        /// listen address).
        #[arg(long)]
        url: Option<String>,
    },
    /// List devices with their user, enrollment, last sync, lease, state and receipts.
    Devices,
    /// Revoke one device: its next request is refused and carries a wipe order.
    Revoke {
        /// The device id.
        device: String,
    },
    /// Deactivate a user and revoke all of their devices.
    Deactivate {
        /// The user's name (or id).
        user: String,
    },
    /// Check or show the hash-chained audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Changes uploaded by revoked devices: read, release into the case, or discard.
    Quarantine {
        #[command(subcommand)]
        command: QuarantineCommand,
    },
}

#[derive(Subcommand, Debug)]
enum QuarantineCommand {
    /// List quarantined uploads.
    List,
    /// Show what an upload would add to its case.
    Show {
        /// The quarantine id.
        id: uuid::Uuid,
    },
    /// Merge an upload into its case (other devices get it at their next sync).
    Release {
        /// The quarantine id.
        id: uuid::Uuid,
    },
    /// Discard an upload; the case stays as it is.
    Discard {
        /// The quarantine id.
        id: uuid::Uuid,
    },
}

#[derive(Subcommand, Debug)]
enum AuditCommand {
    /// Recompute the hash chain; exit non-zero and name the entry where it breaks.
    Verify,
    /// Show the most recent entries, oldest first.
    List {
        /// How many entries.
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
}

#[derive(Subcommand, Debug)]
enum CaseCommand {
    /// Open a case assigned to one or more workers; prints its id.
    Create {
        /// The client's code (never the name).
        #[arg(long)]
        client_code: String,
        /// A worker (user name) to assign; repeat for several.
        #[arg(long = "assign", value_name = "USER", required = true)]
        assign: Vec<String>,
        /// Consent as recorded at intake: pending, given or withdrawn.
        #[arg(long, default_value = "pending")]
        consent: String,
    },
    /// Assign a worker to a case.
    Assign {
        /// The case id.
        case: String,
        /// The worker's user name.
        user: String,
    },
    /// Remove a worker from a case.
    Unassign {
        /// The case id.
        case: String,
        /// The worker's user name.
        user: String,
    },
    /// Plan an accompaniment task in a case.
    AddTask {
        /// The case id.
        case: String,
        /// Why the client goes.
        #[arg(long)]
        purpose: String,
        /// police, social_welfare_centre, court, prosecutor, registry_office, health_centre,
        /// employment_service, embassy_or_consulate, school or other.
        #[arg(long)]
        office_kind: String,
        /// The office's name.
        #[arg(long)]
        office_name: String,
        /// The office's address.
        #[arg(long, default_value = "")]
        address: String,
        /// When, RFC 3339 with offset (2026-11-24T10:00:00+01:00).
        #[arg(long)]
        at: String,
        /// IANA time zone it is planned in.
        #[arg(long, default_value = "Europe/Belgrade")]
        time_zone: String,
        /// A worker (user name) who accompanies; repeat for several.
        #[arg(long = "assignee", value_name = "USER")]
        assignees: Vec<String>,
        /// A document to bring; repeat for several.
        #[arg(long = "bring", value_name = "ITEM")]
        checklist: Vec<String>,
    },
    /// List the conflict inbox: sensitive fields (consent, risk level, legal status, a task's
    /// outcome) that hold concurrent values, each with who wrote it and when.
    Conflicts,
    /// Settle a conflict in the inbox: keep one of the values, or write a new one.
    Resolve {
        /// The case id.
        case: String,
        /// The field: consent, risk_level or legal_status (of the case), or outcome (of a task,
        /// with --task).
        #[arg(long)]
        field: String,
        /// The task id, for a task's outcome.
        #[arg(long)]
        task: Option<String>,
        /// The value to keep (one of those shown by `conflicts`, or a new one).
        #[arg(long)]
        value: String,
    },
    /// Close a case; devices purge it once the retention period has passed.
    Close {
        /// The case id.
        case: String,
    },
    /// List case ids, oldest first.
    List,
}

#[derive(Subcommand, Debug)]
enum UserCommand {
    /// Add a user.
    Add {
        /// Display name (unique).
        name: String,
        /// Role.
        #[arg(long, value_enum)]
        role: RoleArg,
    },
    /// List users.
    List,
    /// Give a user another role (takes effect on their next request).
    Role {
        /// User name (or id).
        name: String,
        /// The new role.
        #[arg(long, value_enum)]
        role: RoleArg,
    },
    /// Set a user's web password, read from standard input (one line).
    Password {
        /// User name.
        name: String,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum RoleArg {
    FieldWorker,
    CaseManager,
    Admin,
}

impl From<RoleArg> for Role {
    fn from(r: RoleArg) -> Role {
        match r {
            RoleArg::FieldWorker => Role::FieldWorker,
            RoleArg::CaseManager => Role::CaseManager,
            RoleArg::Admin => Role::Admin,
        }
    }
}

fn parse_ttl(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (number, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: u64 = number
        .parse()
        .map_err(|_| "expected a duration like 15m, 90s or 1h".to_owned())?;
    let secs = match unit {
        "s" => n,
        "m" => n.saturating_mul(60),
        "h" => n.saturating_mul(3600),
        _ => return Err("the unit is s, m or h".to_owned()),
    };
    if secs == 0 || secs > 24 * 3600 {
        return Err("the code must be valid for between 1 second and 24 hours".to_owned());
    }
    Ok(Duration::from_secs(secs))
}

struct Resolved {
    data: PathBuf,
    listen: SocketAddr,
    public_url: Option<String>,
    limits: Limits,
    /// The database (its `Debug` hides a password; it is never printed).
    database: DatabaseConfig,
}

fn resolve(
    cli_data: Option<PathBuf>,
    config: Option<PathBuf>,
    listen: Option<SocketAddr>,
    database: Option<String>,
) -> Result<Resolved> {
    let file = match config {
        Some(path) => FileConfig::load(&path).context("loading the configuration file")?,
        None => FileConfig::default(),
    };
    let default_listen: SocketAddr = DEFAULT_LISTEN.parse().context("default listen address")?;
    let mut limits = Limits::default();
    if let Some(secs) = file.request_timeout_secs {
        if secs == 0 {
            bail!("request_timeout_secs must be positive");
        }
        limits.request_timeout = Duration::from_secs(secs);
    }
    if let Some(n) = file.database_connections {
        if n == 0 {
            bail!("database_connections must be positive");
        }
        limits.pg_connections = n;
    }
    if let Some(ops) = file.cached_operations {
        limits.cached_operations = ops;
    }
    let data = cli_data
        .or(file.data)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
    // The error never repeats the setting: it may hold a password.
    let database = match database.or(file.database) {
        Some(setting) => DatabaseConfig::parse(&setting).context("the database setting")?,
        None => DatabaseConfig::default_in(&data),
    };
    Ok(Resolved {
        data,
        listen: listen.or(file.listen).unwrap_or(default_listen),
        public_url: file.public_url,
        limits,
        database,
    })
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    match cli.command {
        Command::Serve(args) => {
            let resolved = resolve(cli.data, cli.config, args.listen, cli.database)?;
            serve(resolved)
        }
        Command::Admin { command } => {
            let resolved = resolve(cli.data, cli.config, None, cli.database)?;
            admin(resolved, command)
        }
    }
}

fn serve(resolved: Resolved) -> Result<()> {
    prepare_data_dir(&resolved.data)?;
    let state = AppState::open_with(
        &resolved.data,
        &resolved.database,
        Arc::new(SystemClock),
        resolved.limits,
    )
    .context("opening the data folder and the database")?;
    let identity = TlsIdentity::load_or_create(&resolved.data).context("TLS certificate")?;
    let tls = identity.server_config()?;
    let listener = std::net::TcpListener::bind(resolved.listen)
        .with_context(|| format!("binding {}", resolved.listen))?;
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

fn admin(resolved: Resolved, command: AdminCommand) -> Result<()> {
    prepare_data_dir(&resolved.data)?;
    let db = Database::open_with(&resolved.database, 2).context("opening the database")?;
    let now = SystemClock.now();
    let mut out = std::io::stdout().lock();
    match command {
        AdminCommand::User {
            command: UserCommand::Add { name, role },
        } => {
            let id = db.write(|sql| store::add_user(sql, &name, role.into(), now))?;
            writeln!(out, "added user {id} ({})", Role::from(role))?;
        }
        AdminCommand::User {
            command: UserCommand::Role { name, role },
        } => {
            let done = db.write(|sql| admin::change_role(sql, &name, role.into(), now))?;
            if done.from == done.to {
                writeln!(out, "user {} already has role {}", done.user_id, done.to)?;
            } else {
                writeln!(
                    out,
                    "user {}: role {} -> {}",
                    done.user_id, done.from, done.to
                )?;
            }
        }
        AdminCommand::User {
            command: UserCommand::Password { name },
        } => {
            let mut password = zeroize::Zeroizing::new(String::new());
            std::io::stdin()
                .read_line(&mut password)
                .context("reading the password from standard input")?;
            let password = password.trim_end_matches(['\r', '\n']);
            db.write(|sql| fieldcase_server::web::auth::set_password(sql, &name, password, now))?;
            writeln!(out, "password set")?;
        }
        AdminCommand::User {
            command: UserCommand::List,
        } => {
            let users = db.read(store::list_users)?;
            writeln!(
                out,
                "{:<36}  {:<12}  {:<8}  {:>7}  name",
                "id", "role", "active", "devices"
            )?;
            for u in users {
                writeln!(
                    out,
                    "{:<36}  {:<12}  {:<8}  {:>7}  {}",
                    u.id,
                    u.role,
                    if u.active { "yes" } else { "no" },
                    u.active_devices,
                    u.name
                )?;
            }
        }
        AdminCommand::Case { command } => {
            let keys = fieldcase_server::keys::ServerKeys::load_or_create(&resolved.data)
                .context("server key file")?;
            let vault = db.write(|sql| CaseVault::load_or_create(sql, &keys))?;
            case_command(&db, &vault, command, now, &mut out)?;
        }
        AdminCommand::Enroll { user, ttl, url } => {
            let ttl_secs = i64::try_from(ttl.as_secs()).context("ttl")?;
            let identity =
                TlsIdentity::load_or_create(&resolved.data).context("TLS certificate")?;
            let issued = db.write(|sql| store::issue_enrollment_code(sql, &user, ttl_secs, now))?;
            let url = url
                .or(resolved.public_url)
                .unwrap_or_else(|| format!("https://{}", resolved.listen));
            let expires = time::OffsetDateTime::from_unix_timestamp(issued.expires_at)
                .ok()
                .and_then(|t| {
                    t.format(&time::format_description::well_known::Rfc3339)
                        .ok()
                })
                .unwrap_or_else(|| issued.expires_at.to_string());
            writeln!(out, "enrollment code: {}", issued.code)?;
            writeln!(out, "user id:         {}", issued.user_id)?;
            writeln!(out, "expires:         {expires} (one device, one use)")?;
            writeln!(out, "server url:      {url}")?;
            writeln!(out, "fingerprint:     {}", identity.fingerprint())?;
            if resolved.listen.ip().is_unspecified() {
                writeln!(
                    out,
                    "note: the server listens on all addresses; give the device an address it can reach (--url)"
                )?;
            }
        }
        AdminCommand::Devices => {
            let devices = db.read(admin::list_devices)?;
            writeln!(
                out,
                "{:<36}  {:<20}  {:<20}  {:<20}  {:<8}  {:<28}  {:>6}  user",
                "device", "enrolled", "last sync", "lease expires", "state", "wiped", "purged"
            )?;
            let time = |t: Option<i64>| t.map_or_else(|| "-".to_owned(), admin::rfc3339);
            for d in devices {
                let state = match (d.status, d.user_active) {
                    (admin::DeviceStatus::Active, true) => "active",
                    (admin::DeviceStatus::Active, false) => "inactive",
                    (admin::DeviceStatus::Revoked, _) => "revoked",
                };
                let wiped = match (d.wiped_at, &d.wipe_reason) {
                    (Some(at), Some(reason)) => format!("{} ({reason})", admin::rfc3339(at)),
                    (Some(at), None) => admin::rfc3339(at),
                    (None, _) => "-".to_owned(),
                };
                writeln!(
                    out,
                    "{:<36}  {:<20}  {:<20}  {:<20}  {:<8}  {:<28}  {:>6}  {}",
                    d.device_id,
                    admin::rfc3339(d.enrolled_at),
                    time(d.last_sync_at),
                    time(d.lease_expires_at),
                    state,
                    wiped,
                    d.purge_receipts,
                    d.user_name
                )?;
            }
        }
        AdminCommand::Revoke { device } => {
            let device_id = uuid::Uuid::try_parse(device.trim()).context("device id")?;
            match db.write(|sql| admin::revoke_device(sql, &device_id, now))? {
                admin::RevokeOutcome::Revoked { .. } => {
                    writeln!(out, "revoked device {device_id}")?;
                }
                admin::RevokeOutcome::AlreadyRevoked { revoked_at } => {
                    let when = revoked_at.map_or_else(|| "earlier".to_owned(), admin::rfc3339);
                    writeln!(out, "device {device_id} was already revoked ({when})")?;
                }
            }
        }
        AdminCommand::Deactivate { user } => {
            let done = db.write(|sql| admin::deactivate_user(sql, &user, now))?;
            if done.was_inactive && done.revoked_devices.is_empty() {
                writeln!(out, "user {} was already deactivated", done.user_id)?;
            } else {
                writeln!(
                    out,
                    "deactivated user {}; revoked {} device(s)",
                    done.user_id,
                    done.revoked_devices.len()
                )?;
                for d in &done.revoked_devices {
                    writeln!(out, "revoked device {d}")?;
                }
            }
        }
        AdminCommand::Audit {
            command: AuditCommand::Verify,
        } => match db.read(audit::verify_chain)? {
            audit::ChainReport::Intact {
                entries,
                legacy,
                head,
            } => {
                writeln!(out, "audit chain ok: {entries} entries")?;
                if legacy > 0 {
                    writeln!(
                        out,
                        "({legacy} entries predate the chain and carry no hash)"
                    )?;
                }
                if let Some(head) = head {
                    writeln!(out, "head hash: {}", hex::encode(head))?;
                }
            }
            audit::ChainReport::Broken { seq, problem } => {
                writeln!(out, "audit chain broken at entry {seq}: {problem}")?;
                out.flush()?;
                bail!("audit chain verification failed at entry {seq}");
            }
        },
        AdminCommand::Quarantine { command } => {
            let keys = fieldcase_server::keys::ServerKeys::load_or_create(&resolved.data)
                .context("server key file")?;
            let vault = db.write(|sql| CaseVault::load_or_create(sql, &keys))?;
            quarantine_command(&db, &vault, command, now, &mut out)?;
        }
        AdminCommand::Audit {
            command: AuditCommand::List { limit },
        } => {
            writeln!(
                out,
                "{:>6}  {:<20}  {:<24}  {:<36}  {:<36}  detail",
                "seq", "at", "action", "user", "device"
            )?;
            for e in db.read(|sql| audit::list(sql, limit))? {
                writeln!(
                    out,
                    "{:>6}  {:<20}  {:<24}  {:<36}  {:<36}  {}",
                    e.seq,
                    admin::rfc3339(e.at),
                    e.action,
                    e.user_id.as_deref().unwrap_or("-"),
                    e.device_id.as_deref().unwrap_or("-"),
                    e.detail.as_deref().unwrap_or("-")
                )?;
            }
        }
    }
    Ok(())
}

fn user_ids(db: &Database, names: &[String]) -> Result<Vec<UserId>> {
    names
        .iter()
        .map(|n| {
            db.read(|sql| store::user_id_by_name(sql, n))
                .map(UserId::from_uuid)
                .with_context(|| "unknown user name".to_string())
        })
        .collect()
}

fn case_command(
    db: &Database,
    vault: &CaseVault,
    command: CaseCommand,
    now: i64,
    out: &mut impl Write,
) -> Result<()> {
    let assigning = matches!(command, CaseCommand::Assign { .. });
    match command {
        CaseCommand::Create {
            client_code,
            assign,
            consent,
        } => {
            let new = NewCase {
                client_code,
                consent: consent.parse().context("consent")?,
                assigned_workers: user_ids(db, &assign)?,
            };
            let (id, _) = db
                .write(|sql| cases::create_case(sql, vault, &new, None, now))?
                .keep(vault);
            writeln!(out, "created case {id}")?;
        }
        CaseCommand::Assign { case, user } | CaseCommand::Unassign { case, user } => {
            let user = UserId::from_uuid(
                db.read(|sql| store::user_id_by_name(sql, &user))
                    .context("unknown user name")?,
            );
            let case = case.parse().context("case id")?;
            db.write(|sql| cases::set_assigned(sql, vault, case, user, assigning, now))?
                .keep(vault);
            writeln!(out, "{}", if assigning { "assigned" } else { "unassigned" })?;
        }
        CaseCommand::AddTask {
            case,
            purpose,
            office_kind,
            office_name,
            address,
            at,
            time_zone,
            assignees,
            checklist,
        } => {
            let task = NewTask {
                purpose,
                office_kind: office_kind.parse().context("office kind")?,
                office_name,
                office_address: address,
                scheduled_at: time::OffsetDateTime::parse(
                    &at,
                    &time::format_description::well_known::Rfc3339,
                )
                .context("--at must be RFC 3339 with an offset")?,
                time_zone,
                assignees: user_ids(db, &assignees)?,
                checklist,
            };
            let case = case.parse().context("case id")?;
            let id = db
                .write(|sql| cases::add_task(sql, vault, case, &task, now))?
                .keep(vault);
            writeln!(out, "added task {id}")?;
        }
        CaseCommand::Close { case } => {
            let case = case.parse().context("case id")?;
            db.write(|sql| {
                cases::set_status(
                    sql,
                    vault,
                    case,
                    fieldcase_core::model::CaseStatus::Closed,
                    now,
                )
            })?
            .keep(vault);
            writeln!(out, "closed")?;
        }
        CaseCommand::List => {
            for id in db.read(cases::list_case_ids)? {
                writeln!(out, "{id}")?;
            }
        }
        CaseCommand::Conflicts => {
            let inbox = db.read(|sql| fieldcase_server::conflicts::inbox(sql, vault))?;
            if inbox.is_empty() {
                writeln!(out, "no conflicts wait")?;
            }
            for case in inbox {
                writeln!(out, "case {} ({})", case.case, case.client_code)?;
                for c in case.conflicts {
                    match c.task {
                        Some(task) => writeln!(out, "  task {task} {}:", c.field)?,
                        None => writeln!(out, "  {}:", c.field)?,
                    }
                    for v in c.values {
                        let who = v.author.map_or_else(
                            || "unknown author".to_owned(),
                            |a| format!("user {} device {}", a.user, a.device),
                        );
                        let when = v
                            .at
                            .map_or_else(|| "-".to_owned(), |t| admin::rfc3339(t.unix_timestamp()));
                        writeln!(out, "    {:<24}  {when}  {who}", v.value)?;
                    }
                }
            }
        }
        CaseCommand::Resolve {
            case,
            field,
            task,
            value,
        } => {
            let decision = fieldcase_server::conflicts::Resolution {
                case: case.parse().context("case id")?,
                task: task.map(|t| t.parse()).transpose().context("task id")?,
                field,
                value,
            };
            db.write(|sql| fieldcase_server::conflicts::resolve(sql, vault, &decision, None, now))?
                .keep(vault);
            writeln!(out, "resolved")?;
        }
    }
    Ok(())
}

fn quarantine_command(
    db: &Database,
    vault: &CaseVault,
    command: QuarantineCommand,
    now: i64,
    out: &mut impl Write,
) -> Result<()> {
    use fieldcase_server::quarantine;
    match command {
        QuarantineCommand::List => {
            writeln!(
                out,
                "{:<36}  {:<20}  {:<36}  {:<36}  decision",
                "id", "received", "device", "case"
            )?;
            for q in db.read(quarantine::list)? {
                writeln!(
                    out,
                    "{:<36}  {:<20}  {:<36}  {:<36}  {}",
                    q.id,
                    admin::rfc3339(q.received_at),
                    q.device,
                    q.case,
                    q.decision.as_deref().unwrap_or("waiting")
                )?;
            }
        }
        QuarantineCommand::Show { id } => {
            let preview = db.read(|sql| quarantine::preview(sql, vault, id))?;
            writeln!(
                out,
                "case {} from device {} at {}",
                preview.entry.case,
                preview.entry.device,
                admin::rfc3339(preview.entry.received_at)
            )?;
            for note in preview.notes {
                writeln!(
                    out,
                    "--- note {} ({}) by user {}",
                    note.id, note.kind, note.author.user
                )?;
                writeln!(out, "{}", note.body)?;
            }
        }
        QuarantineCommand::Release { id } => {
            db.write(|sql| quarantine::release(sql, vault, id, now))?
                .keep(vault);
            writeln!(out, "released into the case")?;
        }
        QuarantineCommand::Discard { id } => {
            db.write(|sql| quarantine::discard(sql, vault, id, now))?
                .keep(vault);
            writeln!(out, "discarded")?;
        }
    }
    Ok(())
}
