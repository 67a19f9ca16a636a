-- fieldcase server schema, version 6: case documents stored incrementally.
-- A case is its sealed snapshot (cases.doc) followed by the sealed change chunks stored since,
-- in seq order; a store appends one chunk, and once they pile up a new snapshot replaces them.
-- cases.heads names the stored document's content exactly (its heads, hex, comma-separated), so
-- that a decrypted copy held in memory is used only when it is the stored document. Rows from
-- before this version have no heads recorded: their first load reads them from the database.

ALTER TABLE cases ADD COLUMN heads TEXT NOT NULL DEFAULT '';

CREATE TABLE case_chunks (
    case_id TEXT NOT NULL REFERENCES cases(id),
    seq     INTEGER NOT NULL,
    chunk   BLOB NOT NULL,
    PRIMARY KEY (case_id, seq)
) STRICT;
