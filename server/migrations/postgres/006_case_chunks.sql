-- fieldcase server schema for PostgreSQL, version 6: the equivalent of ../006_case_chunks.sql
-- (case documents stored incrementally). A case is its sealed snapshot (cases.doc) followed by
-- the sealed change chunks stored since, in seq order; cases.heads names the stored document's
-- content exactly (its heads, hex, comma-separated).

ALTER TABLE cases ADD COLUMN heads TEXT COLLATE "C" NOT NULL DEFAULT '';

CREATE TABLE case_chunks (
    case_id TEXT COLLATE "C" NOT NULL REFERENCES cases(id),
    seq     BIGINT NOT NULL,
    chunk   BYTEA NOT NULL,
    PRIMARY KEY (case_id, seq)
);
