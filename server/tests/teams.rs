//! Need to know across an upgrade: a database from before teams, with cases and people of every
//! role, is migrated on a real SQLite file and a real PostgreSQL database, and afterwards every
//! case is on the default team with every case manager and admin who could see it before.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use fieldcase_core::protocol::Role;
use fieldcase_server::office::access::{self, Reach, Staff};
use fieldcase_server::office::teams::DEFAULT_TEAM;
use fieldcase_server::sql_params;
use fieldcase_server::storage::sql::{self, Database, DatabaseConfig};
use uuid::Uuid;

/// People of each role and two cases, as rows of the schema before teams (`DOC` stands for a
/// document's bytes, written as each backend takes them).
const ROWS: &str = "
    INSERT INTO users (id, name, role, active, created_at) VALUES
        ('11111111-1111-4111-8111-111111111111', 'ana', 'field-worker', 1, 0),
        ('22222222-2222-4222-8222-222222222222', 'mira', 'case-manager', 1, 0),
        ('33333333-3333-4333-8333-333333333333', 'boss', 'admin', 1, 0);
    INSERT INTO cases (id, seq, doc, created_at, updated_at) VALUES
        ('01890000-0000-7000-8000-000000000001', 1, DOC, 0, 0),
        ('01890000-0000-7000-8000-000000000002', 2, DOC, 0, 0);
";

const FIELD_WORKER: &str = "11111111-1111-4111-8111-111111111111";
const CASE_MANAGER: &str = "22222222-2222-4222-8222-222222222222";
const ADMIN: &str = "33333333-3333-4333-8333-333333333333";

fn check_upgraded(db: &Database) {
    db.write(|sql| {
        let teams: Vec<String> = sql
            .query_all("SELECT DISTINCT team_id FROM cases", &[])?
            .iter()
            .map(|r| r.get(0))
            .collect::<Result<_, _>>()?;
        assert_eq!(teams, [DEFAULT_TEAM.to_string()]);
        let members: Vec<String> = sql
            .query_all(
                "SELECT user_id FROM team_members WHERE team_id = ?1 ORDER BY user_id",
                sql_params![&DEFAULT_TEAM.to_string()],
            )?
            .iter()
            .map(|r| r.get(0))
            .collect::<Result<_, _>>()?;
        assert_eq!(members, [CASE_MANAGER, ADMIN]);
        for (user, role, expected) in [
            (CASE_MANAGER, Role::CaseManager, Some(Reach::Team)),
            (ADMIN, Role::Admin, Some(Reach::Team)),
            (FIELD_WORKER, Role::FieldWorker, None),
        ] {
            let who = Staff {
                id: Uuid::parse_str(user).unwrap(),
                role,
            };
            let case = "01890000-0000-7000-8000-000000000002".parse().unwrap();
            assert_eq!(
                access::reach(sql, who, case, 0).unwrap(),
                expected,
                "{role}"
            );
            let listed = access::team_case_ids(sql, who).unwrap().len();
            assert_eq!(listed, if expected.is_some() { 2 } else { 0 }, "{role}");
        }
        Ok::<_, fieldcase_server::error::ServerError>(())
    })
    .unwrap();
}

#[test]
fn upgrading_sqlite_puts_every_case_and_every_office_person_on_the_default_team() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(sql::DB_FILE);
    common::sqlite_at_schema(&path, 7, &ROWS.replace("DOC", "X'78'"));
    let db = Database::open(&DatabaseConfig::Sqlite(path)).unwrap();
    check_upgraded(&db);
}

#[test]
fn upgrading_postgres_puts_every_case_and_every_office_person_on_the_default_team() {
    let pg = common::postgres_at_schema(7, &ROWS.replace("DOC", "'\\x78'::bytea"));
    let db = Database::open(&pg.config()).unwrap();
    check_upgraded(&db);
}
