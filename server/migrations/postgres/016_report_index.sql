-- fieldcase server schema for PostgreSQL: the report index (see the SQLite migration of the
-- same name).
CREATE TABLE report_facts (
    case_id TEXT PRIMARY KEY,
    facts   BYTEA NOT NULL
);

CREATE TABLE report_counts (
    grain   BIGINT NOT NULL,
    bucket  BIGINT NOT NULL,
    team_id TEXT NOT NULL,
    metric  TEXT NOT NULL,
    key     TEXT NOT NULL,
    n       BIGINT NOT NULL,
    PRIMARY KEY (grain, bucket, team_id, metric, key)
);
