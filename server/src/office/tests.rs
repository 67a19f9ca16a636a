//! How the office keeps case documents at rest and in memory, through the operations that use
//! them, on both backends: a real SQLite file, and a fresh database on the PostgreSQL test
//! server (see [`crate::storage::testing`]); "another process" is another `Database` on the
//! same storage.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use fieldcase_core::document::CaseDoc;
use fieldcase_core::ids::CaseId;
use fieldcase_core::model::{ConsentStatus, NewCase, NewNote, NoteKind};

use crate::error::ServerError;
use crate::office::{cases, users};
use crate::storage::case_docs::{CaseVault, MAX_CHUNKS, WithDocs, checkout, store};
use crate::storage::keys::ServerKeys;
use crate::storage::sql::{Database, DatabaseConfig};
use crate::storage::testing::TempPgDatabase;

struct Office {
    name: &'static str,
    _dir: tempfile::TempDir,
    _pg: Option<TempPgDatabase>,
    config: DatabaseConfig,
    keys: ServerKeys,
    db: Database,
    vault: Arc<CaseVault>,
}

fn office(postgres: bool) -> Office {
    let dir = tempfile::tempdir().unwrap();
    let keys = ServerKeys::load_or_create(dir.path()).unwrap();
    let (pg, config) = if postgres {
        let pg = TempPgDatabase::create().unwrap();
        let config = pg.config();
        (Some(pg), config)
    } else {
        (
            None,
            DatabaseConfig::Sqlite(dir.path().join(crate::storage::sql::DB_FILE)),
        )
    };
    let db = Database::open(&config).unwrap();
    let vault = db
        .write(|sql| CaseVault::load_or_create(sql, &keys))
        .unwrap();
    Office {
        name: if postgres { "postgres" } else { "sqlite" },
        _dir: dir,
        _pg: pg,
        config,
        keys,
        db,
        vault,
    }
}

fn offices() -> [Office; 2] {
    [office(false), office(true)]
}

fn new_case(o: &Office) -> CaseId {
    new_cases(o, 1)[0]
}

/// `n` cases of one field worker.
fn new_cases(o: &Office, n: usize) -> Vec<CaseId> {
    let user = o
        .db
        .write(|sql| users::add_user(sql, "ana", fieldcase_core::protocol::Role::FieldWorker, 0))
        .unwrap();
    (0..n)
        .map(|i| {
            o.db.write(|sql| {
                cases::create_case(
                    sql,
                    &o.vault,
                    &NewCase {
                        client_code: format!("K-{i:04}"),
                        consent: ConsentStatus::Given,
                        assigned_workers: vec![fieldcase_core::ids::UserId::from_uuid(user)],
                    },
                    None,
                    0,
                )
            })
            .unwrap()
            .keep(&o.vault)
            .0
        })
        .collect()
}

fn note(body: &str) -> NewNote {
    NewNote {
        kind: NoteKind::Visit,
        body: body.into(),
        tags: vec![],
        task: None,
    }
}

fn add_note(db: &Database, vault: &CaseVault, case: CaseId, body: &str) {
    db.write(|sql| {
        let mut loaded = checkout(sql, vault, case)?.unwrap();
        loaded
            .doc
            .add_note(vault.office, &note(body), time::OffsetDateTime::UNIX_EPOCH)?;
        store(sql, vault, &mut loaded, None, 1)?;
        Ok::<_, ServerError>(WithDocs::new((), [loaded]))
    })
    .unwrap()
    .keep(vault);
}

fn chunk_rows(db: &Database) -> i64 {
    db.read(|sql| {
        sql.query_row("SELECT count(*) FROM case_chunks", &[])?
            .get::<i64>(0)
    })
    .unwrap()
}

/// The note bodies of `case` as this office reads it (from memory when it holds the case).
fn bodies(o: &Office, case: CaseId) -> Vec<String> {
    let loaded =
        o.db.read(|sql| checkout(sql, &o.vault, case))
            .unwrap()
            .unwrap();
    loaded
        .doc
        .notes()
        .unwrap()
        .into_iter()
        .map(|n| n.body)
        .collect()
}

/// Another process (or server instance) on the same storage, with an empty memory.
fn other(o: &Office) -> (Database, Arc<CaseVault>) {
    let db = Database::open(&o.config).unwrap();
    let vault = db
        .write(|sql| CaseVault::load_or_create(sql, &o.keys))
        .unwrap();
    (db, vault)
}

/// The stored document read from disk alone, by a vault with an empty memory.
fn from_disk(o: &Office, case: CaseId) -> CaseDoc {
    let (db, vault) = other(o);
    db.read(|sql| checkout(sql, &vault, case))
        .unwrap()
        .unwrap()
        .doc
}

#[test]
fn stores_append_chunks_then_compact_and_the_disk_holds_every_note() {
    for o in offices() {
        let case = new_case(&o);
        let mut seen_chunks = 0;
        for i in 0..3 * MAX_CHUNKS {
            add_note(&o.db, &o.vault, case, &format!("note {i}"));
            let rows = chunk_rows(&o.db);
            assert!(
                rows <= MAX_CHUNKS as i64,
                "{}: {rows} chunks piled up",
                o.name
            );
            seen_chunks = seen_chunks.max(rows);
            // What is on disk (snapshot and chunks) is the document in memory.
            let mut disk = from_disk(&o, case);
            assert_eq!(disk.notes().unwrap().len(), i + 1, "{}", o.name);
            let mut memory =
                o.db.read(|sql| checkout(sql, &o.vault, case))
                    .unwrap()
                    .unwrap();
            assert_eq!(disk.heads(), memory.doc.heads(), "{}", o.name);
            o.vault.keep([memory]);
        }
        assert!(seen_chunks > 1, "{}: stores never appended a chunk", o.name);
        assert_eq!(o.vault.docs_in_memory(), 1, "{}", o.name);
    }
}

#[test]
fn memory_holds_to_its_budget_dropping_the_least_recently_used_first() {
    for o in offices() {
        let cases = new_cases(&o, 5);
        for case in &cases {
            for i in 0..4 {
                add_note(&o.db, &o.vault, *case, &format!("visit {i}"));
            }
        }
        // Used in this order: each taken out of memory (or loaded) and given back.
        let touch = |c: CaseId| {
            let loaded =
                o.db.read(|sql| checkout(sql, &o.vault, c))
                    .unwrap()
                    .unwrap();
            let ops = loaded.doc.op_count();
            o.vault.keep([loaded]);
            ops
        };
        let size = cases.iter().map(|c| touch(*c)).max().unwrap();
        // Room for four documents of this size (one may take a quarter of the budget).
        o.vault.docs.set_budget(size * 4 + size / 2);
        for case in &cases {
            touch(*case);
        }
        assert_eq!(o.vault.docs_in_memory(), 4, "{}", o.name);
        let heads = |c: CaseId| from_disk(&o, c).heads();
        assert!(
            o.vault.docs.take(cases[0], &heads(cases[0])).is_err(),
            "{}: the least recently used document is still in memory",
            o.name
        );
        assert!(
            o.vault.docs.take(cases[4], &heads(cases[4])).is_ok(),
            "{}: the most recently used document was dropped",
            o.name
        );
        // No budget: nothing is kept, and every note is still read from the disk.
        o.vault.docs.set_budget(0);
        assert_eq!(o.vault.docs_in_memory(), 0, "{}", o.name);
        add_note(&o.db, &o.vault, cases[1], "with nothing in memory");
        assert_eq!(o.vault.docs_in_memory(), 0, "{}", o.name);
        assert_eq!(bodies(&o, cases[1]).len(), 5, "{}", o.name);
    }
}

#[test]
fn a_copy_in_memory_is_not_used_once_another_process_changed_the_case() {
    for o in offices() {
        let case = new_case(&o);
        add_note(&o.db, &o.vault, case, "from this process");
        // Another process (an admin command, another instance) adds a note.
        let (other_db, other_vault) = other(&o);
        add_note(&other_db, &other_vault, case, "from the other process");
        let bodies = bodies(&o, case);
        assert!(
            bodies.contains(&"from the other process".to_string()),
            "{}",
            o.name
        );
        assert!(
            bodies.contains(&"from this process".to_string()),
            "{}",
            o.name
        );
    }
}

#[test]
fn a_transaction_that_rolled_back_leaves_memory_as_the_disk() {
    for o in offices() {
        let case = new_case(&o);
        add_note(&o.db, &o.vault, case, "kept");
        let mut escaped = None;
        let rolled_back = o.db.write(|sql| {
            let mut loaded = checkout(sql, &o.vault, case)?.unwrap();
            loaded.doc.add_note(
                o.vault.office,
                &note("rolled back"),
                time::OffsetDateTime::UNIX_EPOCH,
            )?;
            store(sql, &o.vault, &mut loaded, None, 1)?;
            escaped = Some(loaded);
            Err::<(), _>(ServerError::Internal("roll back"))
        });
        assert!(rolled_back.is_err());
        // Even a copy given back by mistake must not be used.
        o.vault.keep(escaped);
        let bodies = bodies(&o, case);
        assert_eq!(bodies, vec!["kept".to_string()], "{}", o.name);
    }
}

/// A device's request forgets only that device's expired nonces (so that syncs of different
/// devices touch no common rows); the hourly sweep forgets the rest, and a nonce not expired
/// stays refused as a replay.
#[test]
fn a_request_forgets_its_own_devices_expired_nonces_and_the_sweep_the_rest() {
    use crate::office::devices::{forget_expired_nonces, record_nonce};
    for o in offices() {
        let (a, b) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
        let kept = |o: &Office, device: &uuid::Uuid| -> i64 {
            let id = device.to_string();
            o.db.read(|sql| {
                sql.query_row(
                    "SELECT count(*) FROM request_nonces WHERE device_id = ?1",
                    crate::sql_params![&id],
                )?
                .get::<i64>(0)
            })
            .unwrap()
        };
        o.db.write(|sql| {
            assert!(record_nonce(sql, &a, b"a-old", 100, 50)?);
            assert!(record_nonce(sql, &b, b"b-old", 100, 50)?);
            record_nonce(sql, &a, b"a-new", 400, 200)
        })
        .unwrap();
        assert_eq!(kept(&o, &a), 1, "{}: a's expired nonce is kept", o.name);
        assert_eq!(
            kept(&o, &b),
            1,
            "{}: b's nonce went with a's request",
            o.name
        );
        let swept = o.db.write(|sql| forget_expired_nonces(sql, 200)).unwrap();
        assert_eq!(swept, 1, "{}", o.name);
        assert_eq!(kept(&o, &b), 0, "{}", o.name);
        let replay = o.db.write(|sql| record_nonce(sql, &a, b"a-new", 400, 200));
        assert!(!replay.unwrap(), "{}: a live nonce was taken twice", o.name);
    }
}
