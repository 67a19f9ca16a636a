//! TLS to PostgreSQL, against a real cluster that takes TCP connections only over TLS
//! (`FIELDCASE_PG_TLS_URL`, or this work tree's `scripts/postgres start --tls`, whose throwaway
//! CA and certificate for 127.0.0.1 and localhost the script makes), and how the URL's TLS
//! settings are read and refused.
//!
//! A CA that did not sign the server's certificate is made here with rcgen. A host name the
//! certificate does not hold is reached through `hostaddr=127.0.0.1`: the client connects to
//! that address and checks the certificate against the URL's host name.
//!
//! One test also needs a server **without** TLS: `FIELDCASE_PG_URL` when it has none, otherwise
//! this work tree's plain cluster (`scripts/postgres start`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rustls::CertificateError;

use super::*;
use crate::error::ServerError;
use crate::sql_params;
use crate::storage::testing::{
    TempPgDatabase, pg_server_url_text, pg_tls_server_url_text, script_cluster_url,
};

fn tls_url() -> String {
    pg_tls_server_url_text().unwrap_or_else(|why| panic!("{why}"))
}

/// `url` with the query parameter `key` set to `value` (or removed for `None`).
fn set_param(url: &str, key: &str, value: Option<&str>) -> String {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let mut pairs: Vec<String> = query
        .split('&')
        .filter(|p| !p.is_empty() && p.split('=').next() != Some(key))
        .map(str::to_owned)
        .collect();
    if let Some(value) = value {
        pairs.push(format!("{key}={value}"));
    }
    if pairs.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", pairs.join("&"))
    }
}

/// `url` (`postgres://user:password@host:port/...`) with another host.
fn set_host(url: &str, host: &str) -> String {
    let at = url.find('@').expect("the test URL has user@host");
    let port = at + url[at..].find(':').expect("the test URL has a port");
    format!("{}{host}{}", &url[..=at], &url[port..])
}

/// Whether the session of `client` is encrypted, as the server sees it.
fn server_sees_tls(client: &mut postgres::Client) -> bool {
    client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .unwrap()
        .get::<_, bool>(0)
}

/// Opens (and migrates) the database of `url`; the server's own start-up path.
fn open(url: &str) -> Result<Database, ServerError> {
    Database::open(&DatabaseConfig::parse(url)?)
}

#[test]
fn verify_full_with_the_right_ca_stores_and_reads_rows_over_tls() {
    let pg = TempPgDatabase::create_on(&tls_url()).unwrap();
    let config = DatabaseConfig::parse(pg.url_text()).unwrap();
    assert_eq!(config.pg_ssl_mode(), Some(SslMode::VerifyFull));
    let db = Database::open(&config).unwrap();
    db.write(|sql| {
        sql.execute_batch("CREATE TABLE scratch (id BIGINT PRIMARY KEY, note TEXT NOT NULL)")?;
        sql.execute(
            "INSERT INTO scratch (id, note) VALUES (?1, ?2)",
            sql_params![7_i64, "over tls"],
        )?;
        Ok::<_, SqlError>(())
    })
    .unwrap();
    let note = db
        .read(|sql| {
            sql.query_row("SELECT note FROM scratch WHERE id = ?1", sql_params![7_i64])?
                .get::<String>(0)
        })
        .unwrap();
    assert_eq!(note, "over tls");
    // The server agrees that the session is encrypted.
    let mut client = pg.connect().unwrap();
    assert!(server_sees_tls(&mut client));
}

#[test]
fn a_ca_that_did_not_sign_the_certificate_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let other_ca = params.self_signed(&key).unwrap();
    let path = dir.path().join("other-ca.pem");
    std::fs::write(&path, other_ca.pem()).unwrap();
    let url = set_param(&tls_url(), "sslrootcert", Some(path.to_str().unwrap()));
    let err = open(&url).unwrap_err();
    assert!(
        matches!(
            err,
            ServerError::Sql(SqlError::Tls(rustls::Error::InvalidCertificate(
                CertificateError::UnknownIssuer
            )))
        ),
        "{err:?}"
    );
    // The message says why, and holds no password.
    let text = format!("{err} {err:?}");
    assert!(text.contains("TLS to the database failed"), "{text}");
    assert!(!text.contains(&password_of(&url)), "{text}");
}

#[test]
fn a_host_name_the_certificate_does_not_hold_is_refused() {
    let url = set_param(
        &set_host(&tls_url(), "db.example.invalid"),
        "hostaddr",
        Some("127.0.0.1"),
    );
    let err = open(&url).unwrap_err();
    assert!(
        matches!(
            err,
            ServerError::Sql(SqlError::Tls(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. }
            )))
        ),
        "{err:?}"
    );
}

#[test]
fn sslmode_disable_is_refused_by_a_server_that_takes_only_tls() {
    let url = set_param(
        &set_param(&tls_url(), "sslrootcert", None),
        "sslmode",
        Some("disable"),
    );
    let err = open(&url).unwrap_err();
    // 28000: pg_hba.conf's `hostnossl ... reject`.
    assert!(
        matches!(&err, ServerError::Sql(SqlError::Postgres { code, .. }) if code == "28000"),
        "{err:?}"
    );
}

#[test]
fn sslmode_require_encrypts_but_checks_no_certificate() {
    // A name the certificate does not hold, and no CA: `require` connects all the same.
    let url = set_param(
        &set_param(
            &set_param(
                &set_host(&tls_url(), "db.example.invalid"),
                "hostaddr",
                Some("127.0.0.1"),
            ),
            "sslrootcert",
            None,
        ),
        "sslmode",
        Some("require"),
    );
    let url = PgUrl::parse(&url).unwrap();
    assert_eq!(url.ssl_mode(), SslMode::Require);
    let mut client = url.connect().unwrap();
    assert!(server_sees_tls(&mut client));
}

/// A server without TLS: `FIELDCASE_PG_URL` when it is one (`sslmode=disable`), otherwise (the
/// run's PostgreSQL tests go over TLS) this work tree's plain cluster.
fn plain_url() -> String {
    let url = pg_server_url_text().unwrap_or_else(|why| panic!("{why}"));
    if PgUrl::parse(&url).unwrap().ssl_mode() == SslMode::Disable {
        return url;
    }
    script_cluster_url("FIELDCASE_PG_URL", &["start"]).unwrap_or_else(|why| panic!("{why}"))
}

#[test]
fn verify_full_to_a_server_without_tls_is_refused() {
    let plain = plain_url();
    let ca = tls_url()
        .split('&')
        .find_map(|p| p.strip_prefix("sslrootcert="))
        .expect("the TLS URL names its CA")
        .to_owned();
    let url = set_param(
        &set_param(&plain, "sslmode", Some("verify-full")),
        "sslrootcert",
        Some(&ca),
    );
    let Err(err) = PgUrl::parse(&url).unwrap().connect() else {
        panic!("verify-full connected to a server without TLS");
    };
    assert!(matches!(err, SqlError::TlsNotOffered), "{err:?}");
}

/// The password of a `postgres://user:password@...` URL.
fn password_of(url: &str) -> String {
    let userinfo = &url[url.find("://").unwrap() + 3..url.find('@').unwrap()];
    userinfo.split_once(':').unwrap().1.to_owned()
}

// ---- settings, without a server ------------------------------------------------------------

/// The reason a setting is refused, as the operator reads it.
fn refused(url: &str) -> String {
    match PgUrl::parse(url) {
        Ok(_) => panic!("accepted: {url}"),
        Err(e) => {
            let text = e.to_string();
            assert!(
                !text.contains("pw-9c1"),
                "the error repeats the password: {text}"
            );
            text
        }
    }
}

fn mode(url: &str) -> SslMode {
    PgUrl::parse(url).unwrap().ssl_mode()
}

#[test]
fn sslmode_defaults_to_disable_only_on_this_machine() {
    for local in [
        "postgres://u:pw-9c1@127.0.0.1:5432/db",
        "postgres://u:pw-9c1@127.8.0.1/db",
        "postgres://u:pw-9c1@localhost/db",
        "postgres://u:pw-9c1@[::1]:5432/db",
        "postgres://u:pw-9c1@%2Frun%2Fpostgresql/db",
        "postgres://u:pw-9c1@localhost,127.0.0.1/db",
        "postgres://u:pw-9c1@db.example.org/db?hostaddr=127.0.0.1",
    ] {
        assert_eq!(mode(local), SslMode::Disable, "{local}");
    }
    for remote in [
        "postgres://u:pw-9c1@10.0.0.5/db",
        "postgres://u:pw-9c1@db.example.org:5432/db",
        "postgres://u:pw-9c1@localhost,10.0.0.5/db",
        "postgres://u:pw-9c1@localhost/db?hostaddr=10.0.0.5",
    ] {
        assert!(
            refused(remote).contains("sslmode=verify-full"),
            "{remote}: {}",
            refused(remote)
        );
        let disabled = set_param(remote, "sslmode", Some("disable"));
        assert!(refused(&disabled).contains("allow_remote_plaintext=true"));
        let allowed = set_param(&disabled, ALLOW_REMOTE_PLAINTEXT, Some("true"));
        assert_eq!(mode(&allowed), SslMode::Disable, "{allowed}");
        assert_eq!(
            mode(&set_param(remote, "sslmode", Some("require"))),
            SslMode::Require
        );
    }
}

#[test]
fn tls_settings_that_are_wrong_are_refused_with_the_reason() {
    let base = "postgres://u:pw-9c1@10.0.0.5/db";
    let with = |query: &str| format!("{base}?{query}");
    for (query, reason) in [
        (
            "sslmode=verify-ful",
            "sslmode must be disable, require or verify-full",
        ),
        (
            "sslmode=",
            "sslmode must be disable, require or verify-full",
        ),
        ("sslmode=prefer", "fall back to no TLS"),
        ("sslmode=allow", "fall back to no TLS"),
        ("sslmode=verify-ca", "verify-ca is not supported"),
        ("sslmode=verify-full", "needs sslrootcert"),
        (
            "sslmode=require&sslrootcert=/etc/ssl/ca.pem",
            "sslrootcert is used only by sslmode=verify-full",
        ),
        ("sslrootcert=/etc/ssl/ca.pem", "not this machine"),
        (
            "sslmode=require&allow_remote_plaintext=true",
            "allow_remote_plaintext goes only with sslmode=disable",
        ),
        (
            "sslmode=disable&allow_remote_plaintext=yes",
            "allow_remote_plaintext must be true or false",
        ),
        ("sslmode=require&sslmode=disable", "sslmode is given twice"),
        (
            "sslmode=require&sslcert=/c.pem&sslkey=/k.pem",
            "client certificates",
        ),
    ] {
        let text = refused(&with(query));
        assert!(text.contains(reason), "{query}: {text}");
    }
    // TLS on a Unix socket (PostgreSQL has none).
    let text = refused("postgres://u:pw-9c1@%2Frun%2Fpostgresql/db?sslmode=require");
    assert!(text.contains("Unix socket"), "{text}");
    // Not a URL.
    assert!(refused("host=10.0.0.5 user=u password=pw-9c1").contains("postgres:// URL"));
}

#[test]
fn a_ca_file_that_is_missing_or_holds_no_certificate_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let url = |path: &std::path::Path| {
        format!(
            "postgres://u:pw-9c1@db.example.org/db?sslmode=verify-full&sslrootcert={}",
            path.display()
        )
    };
    let missing = dir.path().join("missing.pem");
    let Err(SqlError::CaFile { path, problem }) = PgUrl::parse(&url(&missing)) else {
        panic!("a missing CA file was accepted");
    };
    assert_eq!(path, missing);
    assert!(problem.contains("cannot be read"), "{problem}");

    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "not a certificate\n").unwrap();
    let Err(err @ SqlError::CaFile { .. }) = PgUrl::parse(&url(&empty)) else {
        panic!("a CA file without a certificate was accepted");
    };
    let text = err.to_string();
    assert!(
        text.contains("empty.pem") && text.contains("holds no certificate"),
        "{text}"
    );
    // A PEM block that is not DER is refused too, never a panic.
    let broken = dir.path().join("broken.pem");
    std::fs::write(
        &broken,
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    assert!(matches!(
        PgUrl::parse(&url(&broken)),
        Err(SqlError::CaFile { .. })
    ));
    // The server's own setting gives the same typed error.
    assert!(matches!(
        DatabaseConfig::parse(&url(&missing)),
        Err(SqlError::CaFile { .. })
    ));
}
