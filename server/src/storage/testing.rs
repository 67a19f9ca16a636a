//! Support for tests that run against either database backend (the server's own tests and the
//! end-to-end tests of the `tests` crate). Not used by the server itself.
//!
//! [`TestBackend::from_env`] reads `FIELDCASE_TEST_DATABASE`: unset, empty or `sqlite` is the
//! embedded default (a SQLite file in the server's data folder); `postgres` is a fresh database
//! of its own on a PostgreSQL server ([`TempPgDatabase`]), made per test with `CREATE
//! DATABASE` and dropped when the guard drops.
//!
//! The PostgreSQL server is `FIELDCASE_PG_URL` when it is set; otherwise this work tree's
//! throwaway cluster, started through `scripts/postgres start` (once per process; it stays up
//! for the next run, `scripts/postgres stop` ends it). When neither works the error says why:
//! a test never passes "on PostgreSQL" without a PostgreSQL server.
//!
//! A server that speaks only TLS, for the tests of TLS to the database, comes the same way from
//! `FIELDCASE_PG_TLS_URL` or `scripts/postgres start --tls` ([`pg_tls_server_url_text`]). Every
//! connection here is made by [`PgUrl::connect`], so a `FIELDCASE_PG_URL` with
//! `sslmode=verify-full` runs the PostgreSQL tests over TLS.

use std::sync::OnceLock;

use crate::storage::sql::{DatabaseConfig, PgUrl};

/// Which backend the tests of this process run against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestBackend {
    /// A SQLite file in the data folder (the default).
    Sqlite,
    /// A fresh PostgreSQL database per server (or per test).
    Postgres,
}

impl TestBackend {
    /// Reads `FIELDCASE_TEST_DATABASE` (`sqlite` or `postgres`; unset is `sqlite`).
    pub fn from_env() -> Result<TestBackend, String> {
        match std::env::var("FIELDCASE_TEST_DATABASE").as_deref() {
            Err(_) | Ok("") | Ok("sqlite") => Ok(TestBackend::Sqlite),
            Ok("postgres") | Ok("postgresql") => Ok(TestBackend::Postgres),
            Ok(_) => Err("FIELDCASE_TEST_DATABASE must be sqlite or postgres".to_owned()),
        }
    }
}

/// The URL of the PostgreSQL server for tests (see the module documentation); the text of
/// the URL is never part of the error.
pub fn pg_server_url() -> Result<PgUrl, String> {
    PgUrl::parse(&pg_server_url_text()?).map_err(|_| "FIELDCASE_PG_URL does not parse".to_owned())
}

/// [`pg_server_url`] as its text (`postgres://user:password@host:port/db`), for a test that
/// hands it to a server process. It holds the test server's password: never print it.
pub fn pg_server_url_text() -> Result<String, String> {
    static URL: OnceLock<Result<String, String>> = OnceLock::new();
    URL.get_or_init(|| cluster_url("FIELDCASE_PG_URL", &["start"]))
        .clone()
        .map_err(|why| format!("PostgreSQL tests need a server: {why}"))
}

/// The URL of a PostgreSQL server that takes TCP connections only over TLS, with
/// `sslmode=verify-full&sslrootcert=...` (its CA): `FIELDCASE_PG_TLS_URL`, or this work tree's
/// throwaway TLS cluster (`scripts/postgres start --tls`). It holds a password: never print it.
pub fn pg_tls_server_url_text() -> Result<String, String> {
    static URL: OnceLock<Result<String, String>> = OnceLock::new();
    URL.get_or_init(|| cluster_url("FIELDCASE_PG_TLS_URL", &["start", "--tls"]))
        .clone()
        .map_err(|why| format!("PostgreSQL TLS tests need a server with TLS: {why}"))
}

/// `var` if it is set, otherwise the `var=` line `scripts/postgres args` prints.
fn cluster_url(var: &str, args: &[&str]) -> Result<String, String> {
    if let Ok(url) = std::env::var(var)
        && !url.is_empty()
    {
        return Ok(url);
    }
    script_cluster_url(var, args)
}

/// The `var=` line `scripts/postgres args` prints: this work tree's throwaway cluster, started
/// if it is not running, whatever `var` holds (a test that needs a server without TLS when
/// `FIELDCASE_PG_URL` names one with).
pub fn script_cluster_url(var: &str, args: &[&str]) -> Result<String, String> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/postgres");
    let out = std::process::Command::new(script)
        .args(args)
        .env_remove(var)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("could not run {script}: {e}"))?;
    let command = format!("scripts/postgres {}", args.join(" "));
    if !out.status.success() {
        return Err(format!(
            "{var} is unset or not usable here and `{command}` failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let prefix = format!("{var}=");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .map(str::to_owned)
        .ok_or_else(|| format!("`{command}` printed no {var} line"))
}

/// `url` (a `postgres://` URL) naming the database `name` instead.
fn with_db_name(url: &str, name: &str) -> Result<String, String> {
    let bad = || "FIELDCASE_PG_URL is not a postgres://host/db URL".to_owned();
    let scheme_end = url.find("://").ok_or_else(bad)? + 3;
    let rest = &url[scheme_end..];
    let (before_query, query) = match rest.find('?') {
        Some(q) => (&rest[..q], &rest[q..]),
        None => (rest, ""),
    };
    let host_end = before_query.rfind('/').unwrap_or(before_query.len());
    Ok(format!(
        "{}{}/{name}{query}",
        &url[..scheme_end],
        &before_query[..host_end]
    ))
}

/// A fresh PostgreSQL database (`fc_test_<uuid>`), dropped (with any session still on it)
/// when this drops.
pub struct TempPgDatabase {
    server: PgUrl,
    name: String,
    url: PgUrl,
    url_text: String,
}

impl std::fmt::Debug for TempPgDatabase {
    /// The database's name only (the URL holds a password).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TempPgDatabase")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl TempPgDatabase {
    /// Creates the database on [`pg_server_url`].
    pub fn create() -> Result<TempPgDatabase, String> {
        TempPgDatabase::create_on(&pg_server_url_text()?)
    }

    /// Creates the database on the server of `server_url` (a `postgres://` URL, with its TLS
    /// settings; it is never part of the error).
    pub fn create_on(server_url: &str) -> Result<TempPgDatabase, String> {
        let server = PgUrl::parse(server_url)
            .map_err(|e| format!("the PostgreSQL test server's URL is refused: {e}"))?;
        let name = format!("fc_test_{}", uuid::Uuid::new_v4().simple());
        let mut client = server
            .connect()
            .map_err(|e| format!("could not connect to the PostgreSQL test server: {e}"))?;
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .map_err(|e| format!("CREATE DATABASE failed: {e}"))?;
        let url = server.with_dbname(&name);
        let url_text = with_db_name(server_url, &name)?;
        Ok(TempPgDatabase {
            server,
            name,
            url,
            url_text,
        })
    }

    /// The database's URL as text, for `FIELDCASE_DATABASE_URL` of a server process (it holds
    /// the test server's password: never print it).
    pub fn url_text(&self) -> &str {
        &self.url_text
    }

    /// The database's URL.
    pub fn url(&self) -> &PgUrl {
        &self.url
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The database as a server setting.
    pub fn config(&self) -> DatabaseConfig {
        DatabaseConfig::Postgres(self.url.clone())
    }

    /// A plain connection to the database (for a test to look or tamper, as the owner).
    pub fn connect(&self) -> Result<postgres::Client, String> {
        self.url
            .connect()
            .map_err(|e| format!("could not connect to the test database: {e}"))
    }
}

impl Drop for TempPgDatabase {
    fn drop(&mut self) {
        if let Ok(mut client) = self.server.connect() {
            let _ = client.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}
