//! `fieldcase-server` binary: `serve` runs the HTTPS server; `admin ...` manages the office
//! (users, cases, devices, enrollment, audit, quarantine) directly on its data folder. This file
//! only parses the command line and dispatches; each command group lives in `cli/`.

/// jemalloc, not the system allocator: under a steady load glibc kept freed memory in its many
/// per-thread arenas, so the resident size rose minute after minute while the heap in use stayed
/// flat (heaptrack); jemalloc gives freed pages back to the system after a few seconds.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

mod cli;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use cli::audit::AuditCommand;
use cli::backup::BackupCommand;
use cli::cases::CaseCommand;
use cli::quarantine::QuarantineCommand;
use cli::teams::TeamCommand;
use cli::tls::TlsCommand;
use cli::users::UserCommand;

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
    /// variable for a URL with a password (a flag is visible to other users in `ps`). A host
    /// other than this machine needs `?sslmode=verify-full&sslrootcert=CA-FILE` (or
    /// `sslmode=require`, or `sslmode=disable&allow_remote_plaintext=true`).
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
    /// Create an office in the data folder (key file, database, TLS certificate) without serving
    /// it; `serve` does the same on its first start. Other admin commands refuse a folder that
    /// holds no office.
    Init,
    /// Manage users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Manage teams: who reads which cases.
    Team {
        #[command(subcommand)]
        command: TeamCommand,
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
        #[arg(long, default_value = "15m", value_parser = cli::devices::parse_ttl)]
        ttl: Duration,
        /// Server address to show to the device (default: public_url from the config, else the
        /// listen address).
        #[arg(long)]
        url: Option<String>,
    },
    /// List devices with their user, enrollment, last sync, lease, state and receipts.
    Devices,
    /// Confirm a newly enrolled device by the key fingerprint its phone shows: until then it
    /// may not sync (`admin devices` lists it as waiting). A fingerprint that does not match
    /// means someone else used the code: revoke that device and issue a new code.
    Confirm {
        /// The device id.
        device: String,
        /// The key fingerprint shown on the phone (`3F2A-91C0-77DE-0B14`).
        #[arg(long)]
        fingerprint: String,
    },
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
    /// Backups: create (while the office runs), verify, restore into an empty `--data` folder.
    Backup {
        #[command(subcommand)]
        command: BackupCommand,
    },
    /// The office's key: `export --to AGE_RECIPIENT --out FILE` writes an encrypted copy of
    /// `server.key` (without it no backup of the database, and no database, can be read).
    Key {
        #[command(subcommand)]
        command: KeyCommand,
    },
    /// Changes uploaded by revoked devices: read, release into the case, or discard.
    Quarantine {
        #[command(subcommand)]
        command: QuarantineCommand,
    },
    /// The report of a period: cases new, open and closed, identified victims, children and
    /// adults, gender, exploitation, nationality, accompaniments, services, goals achieved,
    /// each beside the previous period; counts below `report_threshold` hidden.
    Report {
        /// First day (YYYY-MM-DD).
        #[arg(long, value_parser = cli::reports::parse_date)]
        from: time::Date,
        /// Last day (YYYY-MM-DD), included.
        #[arg(long, value_parser = cli::reports::parse_date)]
        to: time::Date,
        /// One team (name or id); the whole office without it.
        #[arg(long)]
        team: Option<String>,
        /// csv or md.
        #[arg(long, value_enum, default_value = "md")]
        format: cli::reports::Format,
        /// The language of the words: en, sr-Latn or sr-Cyrl.
        #[arg(long, default_value = "en")]
        lang: String,
    },
    /// An anonymised export: `htcds` (one row per case registered in a period, HTCDS names,
    /// k-anonymous; see docs/htcds.md).
    Export {
        #[command(subcommand)]
        command: cli::export::ExportCommand,
    },
    /// Replace the office's TLS certificate without enrolling phones again: prepare, status,
    /// rotate (see docs/tls-rotation.md).
    Tls {
        #[command(subcommand)]
        command: TlsCommand,
    },
}

#[derive(Subcommand, Debug)]
enum KeyCommand {
    /// Write `server.key` encrypted to one age recipient, for safekeeping away from the office
    /// machine.
    Export {
        /// The age recipient (age1...) who will hold it.
        #[arg(long)]
        to: String,
        /// Where to write it.
        #[arg(long)]
        out: std::path::PathBuf,
    },
}

/// Errors end the process with a one-line message and exit status 1, never with a backtrace
/// (whatever `RUST_BACKTRACE` says): an operator's mistake is not a crash.
fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let listen = match &cli.command {
        Command::Serve(args) => args.listen,
        Command::Admin { .. } => None,
    };
    let settings = cli::Settings::resolve(cli.data, cli.config, listen, cli.database)?;
    let admin = match cli.command {
        Command::Serve(_) => return cli::serve::run(settings),
        Command::Admin { command } => command,
    };
    // Every admin command but `init` works on an office that exists.
    let office = || cli::Office::open(&settings);
    let out = &mut std::io::stdout().lock();
    match admin {
        AdminCommand::Init => cli::serve::init(&settings, out),
        AdminCommand::User { command } => cli::users::run(&office()?, command, out),
        AdminCommand::Team { command } => cli::teams::run(&office()?, command, out),
        AdminCommand::Case { command } => cli::cases::run(&office()?, command, out),
        AdminCommand::Enroll { user, ttl, url } => {
            cli::devices::enroll(&office()?, &settings, &user, ttl, url, out)
        }
        AdminCommand::Devices => cli::devices::list(&office()?, out),
        AdminCommand::Confirm {
            device,
            fingerprint,
        } => cli::devices::confirm(&office()?, &device, &fingerprint, out),
        AdminCommand::Revoke { device } => cli::devices::revoke(&office()?, &device, out),
        AdminCommand::Deactivate { user } => cli::devices::deactivate(&office()?, &user, out),
        AdminCommand::Audit { command } => cli::audit::run(&office()?, command, out),
        AdminCommand::Quarantine { command } => cli::quarantine::run(&office()?, command, out),
        AdminCommand::Tls { command } => cli::tls::run(&office()?, command, out),
        AdminCommand::Report {
            from,
            to,
            team,
            format,
            lang,
        } => cli::reports::run(&office()?, from, to, team.as_deref(), format, &lang, out),
        AdminCommand::Export { command } => cli::export::run(&office()?, command, out),
        AdminCommand::Backup { command } => {
            cli::backup::run(&settings, &settings.backup_recipients, command, out)
        }
        AdminCommand::Key {
            command: KeyCommand::Export { to, out: file },
        } => {
            office()?;
            cli::backup::export_key(&settings, &to, &file, out)
        }
    }
}
