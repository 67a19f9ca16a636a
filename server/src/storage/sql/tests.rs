//! The facade against a real SQLite file and a real PostgreSQL cluster, with the same code.
//!
//! PostgreSQL comes from `FIELDCASE_PG_URL` when it is set; otherwise these tests start this
//! work tree's throwaway cluster through `scripts/postgres start` (once per test process; the
//! cluster stays up for the next run, `scripts/postgres stop` ends it). If neither works the
//! tests fail with the script's message: they never pass without having run against
//! PostgreSQL. Each test gets a database of its own, dropped at the end.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::mpsc;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use super::*;
use crate::error::ServerError;
use crate::sql_params;
use crate::storage::phases;

/// The URL of the PostgreSQL server for tests (see [`crate::storage::testing::pg_server_url`]).
fn pg_admin_url() -> PgUrl {
    crate::storage::testing::pg_server_url().unwrap_or_else(|why| panic!("{why}"))
}

/// A fresh PostgreSQL database, dropped when this drops.
struct TempPg {
    admin: PgUrl,
    name: String,
    url: PgUrl,
}

impl TempPg {
    fn new() -> TempPg {
        let admin = pg_admin_url();
        let name = format!("fc_test_{}", uuid::Uuid::new_v4().simple());
        let mut client = admin.connect().expect("connect");
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("create database");
        let url = admin.with_dbname(&name);
        TempPg { admin, name, url }
    }

    fn client(&self) -> postgres::Client {
        self.url.connect().expect("connect")
    }
}

impl Drop for TempPg {
    fn drop(&mut self) {
        if let Ok(mut client) = self.admin.connect() {
            let _ = client.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

/// Both backends, migrated: a SQLite file in a temporary folder and a fresh PostgreSQL
/// database. The guards keep them alive.
struct Both {
    _dir: tempfile::TempDir,
    _pg: TempPg,
    sqlite: Database,
    postgres: Database,
}

impl Both {
    fn new() -> Both {
        let dir = tempfile::tempdir().unwrap();
        let sqlite = Database::open(&DatabaseConfig::Sqlite(dir.path().join("server.db"))).unwrap();
        let pg = TempPg::new();
        let postgres = Database::open(&DatabaseConfig::Postgres(pg.url.clone())).unwrap();
        Both {
            _dir: dir,
            _pg: pg,
            sqlite,
            postgres,
        }
    }

    fn each(&self) -> [(&'static str, &Database); 2] {
        [("sqlite", &self.sqlite), ("postgres", &self.postgres)]
    }
}

// ---- placeholders -------------------------------------------------------------------------

#[test]
fn placeholders_are_rewritten_outside_literals_only() {
    let cases = [
        ("SELECT 1", "SELECT 1"),
        ("SELECT ?1, ?2", "SELECT $1, $2"),
        ("SELECT ?12 + ?3", "SELECT $12 + $3"),
        ("SELECT '?1', ?1", "SELECT '?1', $1"),
        ("SELECT 'it''s ?1', ?2", "SELECT 'it''s ?1', $2"),
        (
            "SELECT \"col?1\" FROM t WHERE a = ?1",
            "SELECT \"col?1\" FROM t WHERE a = $1",
        ),
        (
            "SELECT ?1 -- ?2 not a param\n, ?3",
            "SELECT $1 -- ?2 not a param\n, $3",
        ),
        ("SELECT /* ?9 */ ?1", "SELECT /* ?9 */ $1"),
        ("SELECT 'Đorđe ?1' || ?1", "SELECT 'Đorđe ?1' || $1"),
        ("SELECT ''||?1||''", "SELECT ''||$1||''"),
    ];
    for (portable, pg) in cases {
        assert_eq!(
            to_postgres_placeholders(portable).unwrap(),
            pg,
            "{portable}"
        );
    }
    for bad in [
        "SELECT ?",
        "SELECT ?0",
        "SELECT ?a",
        "SELECT 'open ?1",
        "SELECT /* ?1",
        "SELECT \"x ?1",
    ] {
        assert!(
            matches!(to_postgres_placeholders(bad), Err(SqlError::Dialect(_))),
            "{bad}"
        );
    }
}

#[test]
fn a_literal_question_mark_reaches_both_databases_unchanged() {
    let both = Both::new();
    for (name, db) in both.each() {
        let row = db
            .read(|sql| sql.query_row("SELECT '?1', ?1, 'x''?2'", sql_params!["bound"]))
            .map_err(|e: SqlError| e)
            .unwrap();
        assert_eq!(row.get::<String>(0).unwrap(), "?1", "{name}");
        assert_eq!(row.get::<String>(1).unwrap(), "bound", "{name}");
        assert_eq!(row.get::<String>(2).unwrap(), "x'?2", "{name}");
    }
}

// ---- migrations ---------------------------------------------------------------------------

#[test]
fn the_two_migration_lists_match_step_by_step() {
    let sqlite: Vec<&str> = super::sqlite_schema::MIGRATIONS
        .iter()
        .map(|(n, _)| *n)
        .collect();
    let pg: Vec<&str> = PG_MIGRATIONS.iter().map(|(n, _)| *n).collect();
    assert_eq!(sqlite, pg);
    assert_eq!(crate::storage::sql::schema_version(), pg_schema_version());
}

fn sqlite_schema(db: &Database) -> Vec<(String, Vec<String>)> {
    db.read(|sql| {
        let tables = sql.query_all(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
            &[],
        )?;
        let mut out = Vec::new();
        for t in tables {
            let table: String = t.get(0)?;
            let cols = sql.query_all(
                "SELECT name FROM pragma_table_info(?1) ORDER BY cid",
                sql_params![&table],
            )?;
            out.push((table, cols.iter().map(|c| c.get(0)).collect::<Result<_, _>>()?));
        }
        Ok::<_, SqlError>(out)
    })
    .unwrap()
}

fn pg_schema(db: &Database) -> Vec<(String, Vec<String>)> {
    db.read(|sql| {
        let tables = sql.query_all(
            "SELECT table_name::text FROM information_schema.tables
             WHERE table_schema = 'public' ORDER BY table_name",
            &[],
        )?;
        let mut out = Vec::new();
        for t in tables {
            let table: String = t.get(0)?;
            let cols = sql.query_all(
                "SELECT column_name::text FROM information_schema.columns
                 WHERE table_schema = 'public' AND table_name = ?1 ORDER BY ordinal_position",
                sql_params![&table],
            )?;
            out.push((
                table,
                cols.iter().map(|c| c.get(0)).collect::<Result<_, _>>()?,
            ));
        }
        Ok::<_, SqlError>(out)
    })
    .unwrap()
}

fn indexes(db: &Database, sql_text: &str) -> Vec<String> {
    db.read(|sql| {
        sql.query_all(sql_text, &[])?
            .iter()
            .map(|r| r.get(0))
            .collect::<Result<Vec<String>, _>>()
    })
    .unwrap()
}

#[test]
fn both_migration_sets_make_the_same_tables_columns_and_indexes() {
    let both = Both::new();
    let sqlite = sqlite_schema(&both.sqlite);
    let mut pg = pg_schema(&both.postgres);
    // PostgreSQL's own bookkeeping: PRAGMA user_version and sqlite_sequence in SQLite.
    pg.retain(|(t, _)| t != "schema_version" && t != "audit_log_sequence");
    assert!(sqlite.len() >= 15, "{sqlite:?}");
    assert_eq!(sqlite, pg);
    let named_sqlite = indexes(
        &both.sqlite,
        "SELECT name FROM sqlite_master WHERE type = 'index' AND name NOT LIKE 'sqlite_%' ORDER BY name",
    );
    let named_pg = indexes(
        &both.postgres,
        "SELECT indexname::text FROM pg_indexes WHERE schemaname = 'public'
         AND indexname NOT LIKE '%_pkey' AND indexname NOT LIKE '%_key' ORDER BY indexname",
    );
    assert_eq!(named_sqlite, named_pg);
    // Version recorded, and a second open (nothing to migrate) succeeds.
    Database::open(&DatabaseConfig::Postgres(both._pg.url.clone())).unwrap();
    let version = both
        .postgres
        .read(|sql| {
            sql.query_row("SELECT version FROM schema_version", &[])?
                .get::<i64>(0)
        })
        .unwrap();
    assert_eq!(version, pg_schema_version());
}

#[test]
fn constraints_hold_on_both() {
    let both = Both::new();
    for (name, db) in both.each() {
        db.write(|sql| {
            sql.execute(
                "INSERT INTO users (id, name, role, active, created_at) VALUES (?1, ?2, 'admin', 1, 0)",
                sql_params!["u1", "Ana"],
            )
        })
        .unwrap();
        // Case-insensitive unique names, as SQLite's NOCASE.
        let dup = db.write(|sql| {
            sql.execute(
                "INSERT INTO users (id, name, role, active, created_at) VALUES (?1, ?2, 'admin', 1, 0)",
                sql_params!["u2", "ANA"],
            )
        });
        assert!(dup.is_err(), "{name}: duplicate name accepted");
        let found = db
            .read(|sql| sql.query_opt("SELECT id FROM users WHERE name = ?1", sql_params!["aNa"]))
            .unwrap();
        assert_eq!(found.unwrap().get::<String>(0).unwrap(), "u1", "{name}");
        // CHECK constraints.
        for bad in [
            "INSERT INTO users (id, name, role, active, created_at) VALUES ('u3', 'B', 'boss', 1, 0)",
            "INSERT INTO users (id, name, role, active, created_at) VALUES ('u3', 'B', 'admin', 2, 0)",
        ] {
            assert!(
                db.write(|sql| sql.execute(bad, &[])).is_err(),
                "{name}: {bad}"
            );
        }
        let short_hash = db.write(|sql| {
            sql.execute(
                "INSERT INTO enrollment_codes (code_hash, user_id, created_at, expires_at) VALUES (?1, 'u1', 0, 0)",
                sql_params![&[0u8; 31]],
            )
        });
        let err = short_hash.expect_err("a 31-byte code hash was accepted");
        assert!(
            matches!(&err, SqlError::Sqlite(_)) || err.to_string().contains("23514"),
            "{name}: {err}"
        );
        // Foreign keys.
        let orphan = db.write(|sql| {
            sql.execute(
                "INSERT INTO devices (id, user_id, public_key, enrolled_at) VALUES ('d', 'nobody', ?1, 0)",
                sql_params![&[7u8; 32]],
            )
        });
        assert!(orphan.is_err(), "{name}: foreign key not enforced");
        // The audit log is append-only.
        db.write(|sql| {
            sql.execute(
                "INSERT INTO audit_log (seq, at, action) VALUES (1, 0, 'user_added')",
                &[],
            )
        })
        .unwrap();
        for bad in ["UPDATE audit_log SET action = 'x'", "DELETE FROM audit_log"] {
            let err = db.write(|sql| sql.execute(bad, &[])).unwrap_err();
            assert!(err.to_string().contains("append-only"), "{name}: {err}");
        }
    }
}

#[test]
fn a_newer_postgres_schema_is_refused() {
    let pg = TempPg::new();
    Database::open(&DatabaseConfig::Postgres(pg.url.clone())).unwrap();
    pg.client()
        .batch_execute("UPDATE schema_version SET version = 99")
        .unwrap();
    let err = Database::open(&DatabaseConfig::Postgres(pg.url.clone())).unwrap_err();
    assert!(
        matches!(err, ServerError::SchemaTooNew { found: 99, .. }),
        "{err}"
    );
}

#[test]
fn a_statement_prepared_before_its_table_changed_is_prepared_again() {
    let pg = TempPg::new();
    let db = Database::open(&DatabaseConfig::Postgres(pg.url.clone())).unwrap();
    db.write(|sql| sql.execute("CREATE TABLE widths (a BIGINT)", &[]))
        .unwrap();
    db.write(|sql| sql.execute("INSERT INTO widths (a) VALUES (1)", &[]))
        .unwrap();
    let columns = |db: &Database| {
        db.read(|sql| sql.query_all("SELECT * FROM widths", &[]))
            .map(|rows| rows.first().map(Row::len))
    };
    // Prepared and kept on the connection, which the next transaction takes again.
    assert_eq!(columns(&db).unwrap(), Some(1));
    pg.client()
        .batch_execute("ALTER TABLE widths ADD COLUMN b BIGINT")
        .unwrap();
    // PostgreSQL refuses the kept statement once (its result changed shape); it is forgotten
    // and prepared afresh.
    assert!(columns(&db).is_err());
    assert_eq!(columns(&db).unwrap(), Some(2));
}

#[test]
fn concurrent_starts_migrate_once() {
    let pg = TempPg::new();
    let url = pg.url.clone();
    let start = Arc::new(Barrier::new(4));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            let start = start.clone();
            std::thread::spawn(move || {
                start.wait();
                Database::open(&DatabaseConfig::Postgres(url)).map(|_| ())
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap().unwrap();
    }
    let version: i64 = pg
        .client()
        .query_one("SELECT version FROM schema_version", &[])
        .unwrap()
        .get(0);
    assert_eq!(version, pg_schema_version());
}

// ---- values -------------------------------------------------------------------------------

#[test]
fn every_value_type_round_trips_including_null_into_every_column_type() {
    let both = Both::new();
    let blob: Vec<u8> = (0..=255u8).collect();
    let text = "Đorđe Petrović — ćirilica: Ђорђе, '?1' \"x\"";
    let ints = [i64::MIN, -1, 0, 1, i64::MAX];
    for (name, db) in both.each() {
        db.write(|sql| {
            sql.execute_batch(match sql.backend() {
                Backend::Sqlite => {
                    "CREATE TABLE t (k INTEGER PRIMARY KEY, i INTEGER, s TEXT, b BLOB) STRICT"
                }
                Backend::Postgres => {
                    "CREATE TABLE t (k BIGINT PRIMARY KEY, i BIGINT, s TEXT, b BYTEA)"
                }
            })?;
            for (k, i) in ints.iter().enumerate() {
                sql.execute(
                    "INSERT INTO t (k, i, s, b) VALUES (?1, ?2, ?3, ?4)",
                    sql_params![k as i64, *i, text, blob.as_slice()],
                )?;
            }
            // NULL into each column type.
            let n = sql.execute(
                "INSERT INTO t (k, i, s, b) VALUES (?1, ?2, ?3, ?4)",
                &[Param::Int(100), Param::Null, Param::Null, Param::Null],
            )?;
            assert_eq!(n, 1);
            // Option<T>::None binds as NULL, Some as the value; bool as 0/1.
            sql.execute(
                "INSERT INTO t (k, i, s, b) VALUES (?1, ?2, ?3, ?4)",
                sql_params![101, true, None::<&str>, Some(&blob)],
            )?;
            Ok::<_, SqlError>(())
        })
        .unwrap();
        let rows = db
            .read(|sql| sql.query_all("SELECT k, i, s, b FROM t ORDER BY k", &[]))
            .unwrap();
        assert_eq!(rows.len(), ints.len() + 2, "{name}");
        for (row, i) in rows.iter().zip(ints) {
            assert_eq!(row.get::<i64>(1).unwrap(), i, "{name}");
            assert_eq!(row.get::<String>(2).unwrap(), text, "{name}");
            assert_eq!(row.get::<Vec<u8>>(3).unwrap(), blob, "{name}");
        }
        let null = &rows[ints.len()];
        assert_eq!(null.value(1).unwrap(), &Value::Null, "{name}");
        assert_eq!(null.get::<Option<i64>>(1).unwrap(), None, "{name}");
        assert_eq!(null.get::<Option<String>>(2).unwrap(), None, "{name}");
        assert_eq!(null.get::<Option<Vec<u8>>>(3).unwrap(), None, "{name}");
        let mixed = &rows[ints.len() + 1];
        assert!(mixed.get::<bool>(1).unwrap(), "{name}");
        assert_eq!(mixed.get::<Option<String>>(2).unwrap(), None, "{name}");
        assert_eq!(
            mixed.get::<Option<Vec<u8>>>(3).unwrap(),
            Some(blob.clone()),
            "{name}"
        );
        // Writing back what was read, through Value::as_param.
        let values = rows[0].clone().into_values();
        let params: Vec<Param<'_>> = values[1..].iter().map(Value::as_param).collect();
        db.write(|sql| {
            sql.execute(
                "INSERT INTO t (k, i, s, b) VALUES (200, ?1, ?2, ?3)",
                &params,
            )
        })
        .unwrap();
        let copy = db
            .read(|sql| sql.query_row("SELECT i, s, b FROM t WHERE k = 200", &[]))
            .unwrap();
        assert_eq!(copy.into_values(), values[1..].to_vec(), "{name}");
    }
}

#[test]
fn getters_return_typed_errors_not_panics() {
    let both = Both::new();
    for (name, db) in both.each() {
        let row = db
            .read(|sql| sql.query_row("SELECT 5, 'x', NULL", &[]))
            .unwrap();
        assert!(
            matches!(
                row.get::<String>(0),
                Err(SqlError::ColumnType { index: 0, .. })
            ),
            "{name}"
        );
        assert!(
            matches!(
                row.get::<i64>(1),
                Err(SqlError::ColumnType { index: 1, .. })
            ),
            "{name}"
        );
        assert!(
            matches!(
                row.get::<i64>(2),
                Err(SqlError::ColumnType { index: 2, .. })
            ),
            "{name}"
        );
        assert!(
            matches!(row.get::<bool>(0), Err(SqlError::ColumnType { .. })),
            "{name}"
        );
        assert!(
            matches!(
                row.get::<i64>(3),
                Err(SqlError::NoColumn { index: 3, len: 3 })
            ),
            "{name}"
        );
        let none = db.read(|sql| sql.query_row("SELECT 1 WHERE 1 = 0", &[]));
        assert!(matches!(none, Err(SqlError::NoRow)), "{name}");
        let two = db.read(|sql| sql.query_opt("SELECT 1 UNION ALL SELECT 2", &[]));
        assert!(matches!(two, Err(SqlError::TooManyRows)), "{name}");
    }
    // A type the facade does not read, and a parameter that does not fit its place.
    let numeric = both
        .postgres
        .read(|sql| sql.query_row("SELECT CAST(1 AS NUMERIC)", &[]));
    assert!(
        matches!(numeric, Err(SqlError::UnsupportedType { index: 0, .. })),
        "{numeric:?}"
    );
    let wrong = both.postgres.write(|sql| {
        sql.execute(
            "INSERT INTO server_meta (name, value) VALUES (?1, ?2)",
            sql_params![1, "text where bytes go"],
        )
    });
    assert!(matches!(wrong, Err(SqlError::Postgres { .. })), "{wrong:?}");
}

#[test]
fn on_conflict_and_returning_work_on_both() {
    let both = Both::new();
    for (name, db) in both.each() {
        let seqs = db
            .write(|sql| {
                let mut seqs = Vec::new();
                for _ in 0..3 {
                    let row = sql.query_row(
                        "UPDATE case_seq SET value = value + 1 WHERE id = 1 RETURNING value",
                        &[],
                    )?;
                    seqs.push(row.get::<i64>(0)?);
                }
                sql.execute(
                    "INSERT INTO server_meta (name, value) VALUES (?1, ?2) ON CONFLICT (name) DO NOTHING",
                    sql_params!["k", b"one".as_slice()],
                )?;
                let ignored = sql.execute(
                    "INSERT INTO server_meta (name, value) VALUES (?1, ?2) ON CONFLICT (name) DO NOTHING",
                    sql_params!["k", b"two".as_slice()],
                )?;
                assert_eq!(ignored, 0);
                sql.execute(
                    "INSERT INTO server_meta (name, value) VALUES (?1, ?2)
                     ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                    sql_params!["k", b"three".as_slice()],
                )?;
                let returned = sql.execute(
                    "INSERT INTO server_meta (name, value) VALUES ('r', ?1) RETURNING name",
                    sql_params![b"r".as_slice()],
                )?;
                assert_eq!(returned, 1);
                Ok::<_, SqlError>(seqs)
            })
            .unwrap();
        assert_eq!(seqs, [1, 2, 3], "{name}");
        let v = db
            .read(|sql| {
                sql.query_row(
                    "SELECT value FROM server_meta WHERE name = ?1",
                    sql_params!["k"],
                )?
                .get::<Vec<u8>>(0)
            })
            .unwrap();
        assert_eq!(v, b"three", "{name}");
    }
}

// ---- transactions -------------------------------------------------------------------------

#[derive(Debug)]
enum TestError {
    #[allow(dead_code)]
    Sql(SqlError),
    Refused,
}

impl From<SqlError> for TestError {
    fn from(e: SqlError) -> Self {
        TestError::Sql(e)
    }
}

#[test]
fn a_failed_closure_rolls_back_on_both() {
    let both = Both::new();
    for (name, db) in both.each() {
        let result: Result<(), TestError> = db.write(|sql| {
            sql.execute("UPDATE case_seq SET value = 41 WHERE id = 1", &[])?;
            sql.execute(
                "INSERT INTO server_meta (name, value) VALUES ('gone', ?1)",
                sql_params![b"x".as_slice()],
            )?;
            Err(TestError::Refused)
        });
        assert!(matches!(result, Err(TestError::Refused)), "{name}");
        // A failing statement half-way rolls back what came before it too.
        let result: Result<(), SqlError> = db.write(|sql| {
            sql.execute("UPDATE case_seq SET value = 42 WHERE id = 1", &[])?;
            sql.execute("INSERT INTO users (id) VALUES ('no name')", &[])?;
            Ok(())
        });
        assert!(result.is_err(), "{name}");
        // And a panic.
        let db2 = db.clone();
        let panicked = std::thread::spawn(move || {
            let _: Result<(), SqlError> = db2.write(|sql| {
                sql.execute("UPDATE case_seq SET value = 43 WHERE id = 1", &[])?;
                panic!("deliberate");
            });
        })
        .join();
        assert!(panicked.is_err());
        let (seq, meta) = db
            .read(|sql| {
                let seq = sql
                    .query_row("SELECT value FROM case_seq", &[])?
                    .get::<i64>(0)?;
                let meta = sql.query_all("SELECT name FROM server_meta", &[])?.len();
                Ok::<_, SqlError>((seq, meta))
            })
            .unwrap();
        assert_eq!((seq, meta), (0, 0), "{name}");
        // The connection still works after all of that.
        db.write(|sql| sql.execute("UPDATE case_seq SET value = 1 WHERE id = 1", &[]))
            .unwrap();
    }
}

#[test]
fn read_transactions_refuse_writes_on_both() {
    let both = Both::new();
    for (name, db) in both.each() {
        let w = db.read(|sql| sql.execute("UPDATE case_seq SET value = 5", &[]));
        assert!(w.is_err(), "{name}");
        // The read-only mode does not stick to the connection.
        db.write(|sql| sql.execute("UPDATE case_seq SET value = 5", &[]))
            .unwrap();
    }
}

/// On SQLite a read does not wait for a write: while a write transaction is open (and holds
/// the writer), a read on a reader connection sees the last committed state and returns; the
/// write's rows appear to reads once it commits.
#[test]
fn a_sqlite_read_runs_beside_an_open_write_and_sees_only_what_is_committed() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(&DatabaseConfig::Sqlite(dir.path().join("server.db"))).unwrap();
    let value = |db: &Database| {
        db.read(|sql| {
            sql.query_row("SELECT value FROM case_seq WHERE id = 1", &[])?
                .get::<i64>(0)
        })
        .unwrap()
    };
    let before = value(&db);
    let (written_tx, written_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let writer = {
        let db = db.clone();
        std::thread::spawn(move || {
            db.write(|sql| {
                sql.execute("UPDATE case_seq SET value = value + 7 WHERE id = 1", &[])?;
                written_tx.send(()).unwrap();
                release_rx.recv().unwrap();
                Ok::<_, SqlError>(())
            })
            .unwrap()
        })
    };
    written_rx.recv().unwrap();
    let (read_tx, read_rx) = mpsc::channel();
    let reader = {
        let db = db.clone();
        std::thread::spawn(move || read_tx.send(value(&db)).unwrap())
    };
    let seen = read_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the read waited for the open write");
    assert_eq!(seen, before, "an uncommitted write is not read");
    release_tx.send(()).unwrap();
    writer.join().unwrap();
    reader.join().unwrap();
    assert_eq!(value(&db), before + 7);
}

/// Two threads, two connections: the second writer waits for the first to commit, then sees
/// its write. Sequence numbers so taken become visible in commit order.
#[test]
fn the_write_lock_serialises_two_postgres_transactions() {
    let pg = TempPg::new();
    // Two instances of the server on one database, each with its own pool.
    let a = Database::open(&DatabaseConfig::Postgres(pg.url.clone())).unwrap();
    let b = Database::open(&DatabaseConfig::Postgres(pg.url.clone())).unwrap();
    let (locked_tx, locked_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let first = std::thread::spawn(move || {
        a.write(|sql| {
            let seq = sql
                .query_row(
                    "UPDATE case_seq SET value = value + 1 WHERE id = 1 RETURNING value",
                    &[],
                )?
                .get::<i64>(0)?;
            locked_tx.send(()).unwrap();
            release_rx.recv().unwrap();
            Ok::<_, SqlError>((seq, Instant::now()))
        })
        .unwrap()
    });
    locked_rx.recv().unwrap();
    let second = std::thread::spawn(move || {
        b.write(|sql| {
            let entered = Instant::now();
            // No row lock on case_seq is needed to see the first writer's commit: the write
            // lock was had only after it.
            let seen = sql
                .query_row("SELECT value FROM case_seq WHERE id = 1", &[])?
                .get::<i64>(0)?;
            let seq = sql
                .query_row(
                    "UPDATE case_seq SET value = value + 1 WHERE id = 1 RETURNING value",
                    &[],
                )?
                .get::<i64>(0)?;
            Ok::<_, SqlError>((seen, seq, entered))
        })
        .unwrap()
    });
    std::thread::sleep(Duration::from_millis(500));
    assert!(!second.is_finished(), "the second writer did not wait");
    // While the first holds the lock, the second is seen waiting on it.
    let waiting: i64 = pg
        .client()
        .query_one(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted
             AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(waiting, 1);
    let released = Instant::now();
    release_tx.send(()).unwrap();
    let (first_seq, _) = first.join().unwrap();
    let (seen, second_seq, entered) = second.join().unwrap();
    assert!(
        entered >= released,
        "the second writer ran before the first committed"
    );
    assert_eq!((first_seq, seen, second_seq), (1, 1, 2));
}

/// The same on SQLite, through two connections to one file (two processes would behave so):
/// BEGIN IMMEDIATE makes the second writer wait (busy timeout) until the first commits.
#[test]
fn the_write_lock_serialises_two_sqlite_transactions() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("server.db");
    let a = Database::open(&DatabaseConfig::Sqlite(path.clone())).unwrap();
    let b = Database::open(&DatabaseConfig::Sqlite(path)).unwrap();
    let (locked_tx, locked_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let first = std::thread::spawn(move || {
        a.write(|sql| {
            sql.execute("UPDATE case_seq SET value = value + 1 WHERE id = 1", &[])?;
            locked_tx.send(()).unwrap();
            release_rx.recv().unwrap();
            Ok::<_, SqlError>(())
        })
        .unwrap()
    });
    locked_rx.recv().unwrap();
    let second = std::thread::spawn(move || {
        b.write(|sql| {
            sql.query_row(
                "UPDATE case_seq SET value = value + 1 WHERE id = 1 RETURNING value",
                &[],
            )?
            .get::<i64>(0)
        })
        .unwrap()
    });
    std::thread::sleep(Duration::from_millis(300));
    assert!(!second.is_finished(), "the second writer did not wait");
    release_tx.send(()).unwrap();
    first.join().unwrap();
    assert_eq!(second.join().unwrap(), 2);
}

/// How many advisory locks are waited for in `pg`'s database right now.
fn advisory_waiters(pg: &TempPg) -> i64 {
    pg.client()
        .query_one(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted
             AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            &[],
        )
        .unwrap()
        .get(0)
}

/// Waits (up to 20 s) until `n` advisory locks are waited for in `pg`'s database.
fn until_waiting(pg: &TempPg, n: i64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while advisory_waiters(pg) != n {
        assert!(Instant::now() < deadline, "never {n} waiting for a lock");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn sync_scope(device: u8, cases: &[u8]) -> WriteScope {
    let id = |b: u8| uuid::Uuid::from_bytes([b; 16]);
    WriteScope::Sync {
        keys: std::iter::once(LockKey::device(&id(device)))
            .chain(cases.iter().map(|&c| LockKey::case(&id(c))))
            .collect(),
    }
}

/// A transaction in `scope` on `db` (its own thread) that stays open until told to end; returns
/// once it has begun, with the sender that ends it and its thread.
fn open_write(db: &Database, scope: WriteScope) -> (mpsc::Sender<()>, std::thread::JoinHandle<()>) {
    let db = db.clone();
    let (began_tx, began_rx) = mpsc::channel();
    let (end_tx, end_rx) = mpsc::channel::<()>();
    let thread = std::thread::spawn(move || {
        db.write_in(&scope, |_| {
            began_tx.send(()).unwrap();
            end_rx.recv().unwrap();
            Ok::<_, SqlError>(())
        })
        .unwrap()
    });
    began_rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the transaction began");
    (end_tx, thread)
}

/// Syncs of different devices and cases run beside each other, also from two instances; an
/// exclusive write waits for them, and they wait for it.
#[test]
fn syncs_of_different_cases_run_beside_each_other_on_postgres() {
    let pg = TempPg::new();
    let a = Database::open(&DatabaseConfig::Postgres(pg.url.clone())).unwrap();
    let b = Database::open(&DatabaseConfig::Postgres(pg.url.clone())).unwrap();
    let (end_first, first) = open_write(&a, sync_scope(1, &[10, 11]));
    // The second sync runs to its end while the first is open.
    let (end_second, second) = open_write(&b, sync_scope(2, &[12]));
    end_second.send(()).unwrap();
    second.join().unwrap();
    // An exclusive write waits for the open sync...
    let exclusive = {
        let b = b.clone();
        std::thread::spawn(move || b.write(|sql| sql.execute("SELECT 1", &[])).unwrap())
    };
    until_waiting(&pg, 1);
    assert!(!exclusive.is_finished());
    // ...and a sync that comes after it waits for it.
    let later = {
        let a = a.clone();
        std::thread::spawn(move || {
            a.write_in(&sync_scope(3, &[13]), |sql| sql.execute("SELECT 1", &[]))
                .unwrap()
        })
    };
    until_waiting(&pg, 2);
    end_first.send(()).unwrap();
    first.join().unwrap();
    exclusive.join().unwrap();
    later.join().unwrap();
}

/// Two syncs of one case, or of one device, wait for each other whichever instance runs them.
#[test]
fn syncs_of_one_case_or_one_device_wait_for_each_other_on_postgres() {
    let pg = TempPg::new();
    let a = Database::open(&DatabaseConfig::Postgres(pg.url.clone())).unwrap();
    let b = Database::open(&DatabaseConfig::Postgres(pg.url.clone())).unwrap();
    for (first_scope, second_scope) in [
        (sync_scope(1, &[10, 20]), sync_scope(2, &[20])),
        (sync_scope(1, &[10]), sync_scope(1, &[30])),
    ] {
        let (end_first, first) = open_write(&a, first_scope);
        let second = {
            let b = b.clone();
            std::thread::spawn(move || {
                phases::collect(|| {
                    b.write_in(&second_scope, |sql| sql.execute("SELECT 1", &[]))
                        .unwrap()
                })
                .1
            })
        };
        until_waiting(&pg, 1);
        assert!(!second.is_finished());
        let waited = Duration::from_millis(50);
        std::thread::sleep(waited);
        end_first.send(()).unwrap();
        first.join().unwrap();
        // The wait is told apart as waiting for a lock, not as the sync's own SQL.
        let tally = second.join().unwrap();
        assert!(tally.lock >= waited, "{tally:?}");
        assert!(tally.sql < waited, "{tally:?}");
    }
}

/// A sync that takes a sequence number holds the commit order until it commits: another sync
/// does its own work meanwhile but takes its number only after the first committed, so numbers
/// become visible in the order they were taken (a reader never sees a later one without the
/// earlier).
#[test]
fn sequence_numbers_of_syncs_become_visible_in_commit_order_on_postgres() {
    let pg = TempPg::new();
    let a = Database::open(&DatabaseConfig::Postgres(pg.url.clone())).unwrap();
    let b = Database::open(&DatabaseConfig::Postgres(pg.url.clone())).unwrap();
    let bump = |sql: &mut dyn Sql| -> Result<i64, SqlError> {
        sql.enter_commit_order()?;
        sql.query_row(
            "UPDATE case_seq SET value = value + 1 WHERE id = 1 RETURNING value",
            &[],
        )?
        .get::<i64>(0)
    };
    let (numbered_tx, numbered_rx) = mpsc::channel();
    let (end_tx, end_rx) = mpsc::channel::<()>();
    let first = {
        let a = a.clone();
        std::thread::spawn(move || {
            a.write_in(&sync_scope(1, &[10]), |sql| {
                let seq = bump(sql)?;
                numbered_tx.send(seq).unwrap();
                end_rx.recv().unwrap();
                Ok::<_, SqlError>(seq)
            })
            .unwrap()
        })
    };
    let first_seq = numbered_rx.recv().unwrap();
    let (worked_tx, worked_rx) = mpsc::channel();
    let second = {
        let b = b.clone();
        std::thread::spawn(move || {
            b.write_in(&sync_scope(2, &[20]), |sql| {
                sql.execute(
                    "INSERT INTO request_nonces (device_id, nonce, expires_at) VALUES (?1, ?2, ?3)",
                    sql_params!["d2", &[7u8; 16][..], 0i64],
                )?;
                worked_tx.send(()).unwrap();
                let seq = bump(sql)?;
                Ok::<_, SqlError>((seq, Instant::now()))
            })
            .unwrap()
        })
    };
    worked_rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the second sync did its own work beside the first");
    until_waiting(&pg, 1);
    let committed = |db: &Database| {
        db.read(|sql| {
            sql.query_row("SELECT value FROM case_seq WHERE id = 1", &[])?
                .get::<i64>(0)
        })
        .unwrap()
    };
    assert_eq!(
        committed(&a),
        first_seq - 1,
        "nothing numbered is visible yet"
    );
    let released = Instant::now();
    end_tx.send(()).unwrap();
    assert_eq!(first.join().unwrap(), first_seq);
    let (second_seq, numbered_at) = second.join().unwrap();
    assert_eq!(second_seq, first_seq + 1);
    assert!(numbered_at >= released);
    assert_eq!(committed(&b), second_seq);
}

/// Many syncs at once over a few devices and cases, each taking the commit order, from two
/// instances: none waits for another in a circle (PostgreSQL would abort one as a deadlock),
/// and every number is taken once.
#[test]
fn many_syncs_at_once_finish_and_number_each_store_once_on_postgres() {
    let pg = TempPg::new();
    let dbs = [
        Database::open(&DatabaseConfig::Postgres(pg.url.clone())).unwrap(),
        Database::open(&DatabaseConfig::Postgres(pg.url.clone())).unwrap(),
    ];
    let threads: Vec<_> = (0u8..8)
        .map(|t| {
            let db = dbs[usize::from(t % 2)].clone();
            std::thread::spawn(move || {
                let mut seqs = Vec::new();
                for round in 0u8..15 {
                    // Cases in varying order and overlap, devices shared by two threads.
                    let cases = [(t + round) % 5, (t * 3 + round) % 5, 4 - (round % 5)];
                    let seq = db
                        .write_in(&sync_scope(t % 4, &cases), |sql| {
                            sql.enter_commit_order()?;
                            sql.query_row(
                                "UPDATE case_seq SET value = value + 1 WHERE id = 1 RETURNING value",
                                &[],
                            )?
                            .get::<i64>(0)
                        })
                        .unwrap();
                    seqs.push(seq);
                }
                seqs
            })
        })
        .collect();
    let mut all: Vec<i64> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    all.sort_unstable();
    assert_eq!(all, (1..=120).collect::<Vec<i64>>());
}

/// The tally says how long a write held what orders every writer: all of a SQLite write and of
/// an exclusive PostgreSQL write, none of a PostgreSQL sync that took no number, and from its
/// number on for one that did.
#[test]
fn the_held_time_is_counted_only_while_writers_are_ordered() {
    let both = Both::new();
    for (name, db) in both.each() {
        let (_, plain) = phases::collect(|| {
            db.write_in(&sync_scope(1, &[10]), |sql| sql.execute("SELECT 1", &[]))
                .unwrap()
        });
        let (_, exclusive) =
            phases::collect(|| db.write(|sql| sql.execute("SELECT 1", &[])).unwrap());
        let (_, numbered) = phases::collect(|| {
            db.write_in(&sync_scope(1, &[10]), |sql| {
                sql.enter_commit_order()?;
                sql.execute("UPDATE case_seq SET value = value + 1 WHERE id = 1", &[])
            })
            .unwrap()
        });
        assert!(exclusive.held > Duration::ZERO, "{name}");
        assert!(exclusive.held <= exclusive.transaction, "{name}");
        assert!(numbered.held > Duration::ZERO, "{name}");
        assert!(numbered.held <= numbered.transaction, "{name}");
        match name {
            "sqlite" => assert!(plain.held > Duration::ZERO),
            _ => assert_eq!(plain.held, Duration::ZERO),
        }
    }
}

#[test]
fn the_async_entry_runs_on_the_blocking_pool() {
    let both = Both::new();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    for (name, db) in both.each() {
        let db = db.clone();
        let n = rt
            .block_on(async move {
                db.call_write(|sql| {
                    sql.query_row(
                        "UPDATE case_seq SET value = value + 7 WHERE id = 1 RETURNING value",
                        &[],
                    )?
                    .get::<i64>(0)
                })
                .await
            })
            .map_err(|e: SqlError| e)
            .unwrap();
        assert_eq!(n, 7, "{name}");
    }
}

// ---- errors -------------------------------------------------------------------------------

#[test]
fn errors_hold_no_password_and_no_row_data() {
    let admin = pg_admin_url();
    let wrong = admin.with_password("not-the-password-3f9a");
    let Err(err) = wrong.connect() else {
        panic!("a wrong password was accepted");
    };
    let text = format!("{err} {err:?}");
    assert!(!text.contains("not-the-password-3f9a"), "{text}");
    assert!(
        matches!(&err, SqlError::Postgres { code, .. } if code == "28P01"),
        "{text}"
    );
    // Debug of a URL hides its password.
    let url = PgUrl::parse("postgres://u:secret-pw-7@127.0.0.1:1/db").unwrap();
    assert!(!format!("{url:?}").contains("secret-pw-7"));
    // A bad URL is refused without repeating it.
    let bad = PgUrl::parse("postgres://u:secret-pw-7@127.0.0.1:notaport/db").unwrap_err();
    assert!(!bad.to_string().contains("secret-pw-7"), "{bad}");
    // A unique violation names the constraint, never the value (PostgreSQL's DETAIL would).
    let both = Both::new();
    let err = both
        .postgres
        .write(|sql| {
            for _ in 0..2 {
                sql.execute(
                    "INSERT INTO users (id, name, role, created_at) VALUES (?1, 'x', 'admin', 0)",
                    sql_params!["Milica Jovanović"],
                )?;
            }
            Ok::<_, SqlError>(())
        })
        .unwrap_err();
    let text = format!("{err} {err:?}");
    assert!(
        text.contains("23505") && text.contains("users_pkey"),
        "{text}"
    );
    assert!(!text.contains("Milica"), "{text}");
}

#[test]
fn database_settings_parse() {
    assert!(matches!(
        DatabaseConfig::parse("postgres://u@127.0.0.1/db"),
        Ok(DatabaseConfig::Postgres(_))
    ));
    assert!(matches!(
        DatabaseConfig::parse("postgresql://u@127.0.0.1/db"),
        Ok(DatabaseConfig::Postgres(_))
    ));
    assert!(matches!(
        DatabaseConfig::parse("sqlite:/var/lib/fieldcase/server.db"),
        Ok(DatabaseConfig::Sqlite(p)) if p == std::path::Path::new("/var/lib/fieldcase/server.db")
    ));
    assert!(DatabaseConfig::parse("").is_err());
}

#[test]
fn a_deleted_row_leaves_nothing_readable_in_the_sqlite_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(super::DB_FILE);
    let db = Database::from_sqlite(super::open_sqlite(&path).unwrap());
    let marker = "erased-row-marker-5f1c";
    db.write(|sql| {
        sql.execute_batch("CREATE TABLE scratch (x TEXT NOT NULL)")?;
        for i in 0..50 {
            sql.execute(
                "INSERT INTO scratch (x) VALUES (?1)",
                sql_params![&format!("{marker} {i} {}", "y".repeat(200))],
            )?;
        }
        Ok::<_, SqlError>(())
    })
    .unwrap();
    db.write(|sql| {
        sql.execute("DELETE FROM scratch", &[])?;
        Ok::<_, SqlError>(())
    })
    .unwrap();
    drop(db);
    // Closing the last connection checkpoints the WAL into the file.
    let file = std::fs::read(&path).unwrap();
    let wal = std::fs::read(dir.path().join(format!("{}-wal", super::DB_FILE))).unwrap_or_default();
    for bytes in [&file, &wal] {
        assert!(
            !bytes.windows(marker.len()).any(|w| w == marker.as_bytes()),
            "a deleted row is still in the file"
        );
    }
}
