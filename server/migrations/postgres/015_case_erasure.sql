-- fieldcase server schema for PostgreSQL: erasure at the office (see the SQLite migration of
-- the same name).
ALTER TABLE cases ADD COLUMN erased_at BIGINT;

CREATE TABLE case_statistics (
    case_id     TEXT PRIMARY KEY,
    team_id     TEXT NOT NULL,
    opened_year BIGINT NOT NULL,
    closed_year BIGINT,
    erased_at   BIGINT NOT NULL,
    why         TEXT NOT NULL,
    fields      TEXT NOT NULL
);
