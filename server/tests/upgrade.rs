//! An office upgraded from the first schema to the latest, with data in it, on a real SQLite
//! file and a real PostgreSQL database: people, an enrolled device and an audit log written by
//! the first version survive every migration, the device still syncs (it counts as confirmed),
//! office staff keep seeing cases (the default team), the old audit entries still verify, and
//! the upgraded office opens and reads a new case.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use fieldcase_core::model::{ConsentStatus, NewCase};
use fieldcase_core::protocol::Role;
use fieldcase_server::office::access::{self, ReadVia, Staff};
use fieldcase_server::office::audit::{self, ChainReport};
use fieldcase_server::office::{cases, devices};
use fieldcase_server::storage::case_docs::CaseVault;
use fieldcase_server::storage::keys::ServerKeys;
use fieldcase_server::storage::sql::{Database, DatabaseConfig};
use uuid::Uuid;

const FIELD_WORKER: &str = "11111111-1111-4111-8111-111111111111";
const CASE_MANAGER: &str = "22222222-2222-4222-8222-222222222222";
const DEVICE: &str = "44444444-4444-4444-8444-444444444444";

/// What the first version wrote: people of two roles, an enrolled device, a used enrollment
/// code and two audit entries (`KEY` and `CODE` stand for blobs, written as each backend takes
/// them).
const FIRST_VERSION_ROWS: &str = "
    INSERT INTO users (id, name, role, active, created_at) VALUES
        ('11111111-1111-4111-8111-111111111111', 'ana', 'field-worker', 1, 1700000000),
        ('22222222-2222-4222-8222-222222222222', 'mira', 'case-manager', 1, 1700000000);
    INSERT INTO devices (id, user_id, public_key, status, enrolled_at) VALUES
        ('44444444-4444-4444-8444-444444444444', '11111111-1111-4111-8111-111111111111', KEY,
         'active', 1700000100);
    INSERT INTO enrollment_codes (code_hash, user_id, created_at, expires_at, used_at, device_id)
        VALUES (CODE, '11111111-1111-4111-8111-111111111111', 1700000000, 1700000900,
                1700000100, '44444444-4444-4444-8444-444444444444');
    INSERT INTO audit_log (at, action, user_id, device_id) VALUES
        (1700000000, 'user_added', '11111111-1111-4111-8111-111111111111', NULL),
        (1700000100, 'device_enrolled', '11111111-1111-4111-8111-111111111111',
         '44444444-4444-4444-8444-444444444444');
";

fn check_upgraded(db: &Database, keys: &ServerKeys) {
    // As the server does when it starts: the keyed chain begins after the entries there are.
    db.write(audit::start_keyed_chain).unwrap();
    let vault = db
        .write(|sql| CaseVault::load_or_create(sql, keys))
        .unwrap();
    db.write(|sql| {
        let device = devices::lookup_device(sql, &Uuid::parse_str(DEVICE).unwrap())?.unwrap();
        assert!(device.device_active && device.user_active);
        assert!(
            device.confirmed,
            "a device enrolled before confirmation existed syncs on"
        );
        match audit::verify_chain(sql).unwrap() {
            ChainReport::Intact {
                entries, legacy, ..
            } => {
                assert_eq!(legacy, 2, "the first version's entries are kept");
                assert!(entries >= 2);
            }
            broken => panic!("the upgraded log does not verify: {broken:?}"),
        }
        let new = NewCase {
            client_code: "K-0001".into(),
            consent: ConsentStatus::Given,
            assigned_workers: vec![FIELD_WORKER.parse().unwrap()],
        };
        let (case, _) = cases::create_case(sql, &vault, &new, None, 1_800_000_000)
            .unwrap()
            .keep(&vault);
        let mira = Staff {
            id: Uuid::parse_str(CASE_MANAGER).unwrap(),
            role: Role::CaseManager,
        };
        let read = access::read_case(sql, &vault, mira, case, ReadVia::Page, 1_800_000_001)
            .expect("the case manager reads the new case on the default team");
        assert_eq!(read.case.client_code, "K-0001");
        Ok::<_, fieldcase_server::error::ServerError>(())
    })
    .unwrap();
}

#[test]
fn an_office_of_the_first_schema_on_sqlite_upgrades_with_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let keys = ServerKeys::load_or_create(dir.path()).unwrap();
    let path = dir.path().join("server.db");
    let rows = FIRST_VERSION_ROWS
        .replace("KEY", &format!("X'{}'", "ab".repeat(32)))
        .replace("CODE", &format!("X'{}'", "cd".repeat(32)));
    common::sqlite_at_schema(&path, 1, &rows);
    let db = Database::open(&DatabaseConfig::Sqlite(path))
        .unwrap()
        .with_record_key(keys.derive(audit::KEY_PURPOSE).unwrap());
    check_upgraded(&db, &keys);
}

#[test]
fn an_office_of_the_first_schema_on_postgres_upgrades_with_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let keys = ServerKeys::load_or_create(dir.path()).unwrap();
    let rows = FIRST_VERSION_ROWS
        .replace("KEY", &format!("'\\x{}'::bytea", "ab".repeat(32)))
        .replace("CODE", &format!("'\\x{}'::bytea", "cd".repeat(32)));
    let pg = common::postgres_at_schema(1, &rows);
    let db = Database::open(&pg.config())
        .unwrap()
        .with_record_key(keys.derive(audit::KEY_PURPOSE).unwrap());
    check_upgraded(&db, &keys);
}
