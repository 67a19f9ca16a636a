-- fieldcase server schema, version 2: cases and their sync state.
-- Case documents are sealed (XChaCha20-Poly1305) under a data key that is itself wrapped with age
-- to the identity in server.key, outside this database. Ids are random; heads are change hashes.

CREATE TABLE server_meta (
    name  TEXT PRIMARY KEY,
    value BLOB NOT NULL
) STRICT;

-- One automerge document per case; seq is a server-wide change counter (the sync cursor).
CREATE TABLE cases (
    id         TEXT PRIMARY KEY,
    seq        INTEGER NOT NULL UNIQUE,
    doc        BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;

CREATE TABLE case_seq (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    value INTEGER NOT NULL
) STRICT;
INSERT INTO case_seq (id, value) VALUES (1, 0);

-- Need to know: which users may receive and change which cases.
CREATE TABLE case_assignments (
    case_id TEXT NOT NULL REFERENCES cases(id),
    user_id TEXT NOT NULL REFERENCES users(id),
    PRIMARY KEY (case_id, user_id)
) STRICT, WITHOUT ROWID;

CREATE INDEX case_assignments_by_user ON case_assignments(user_id, case_id);

-- What the server knows of each device's copy of each case: heads confirmed, and heads sent in a
-- response not yet known to be applied (with that response's cursor).
CREATE TABLE device_case_state (
    device_id   TEXT NOT NULL,
    case_id     TEXT NOT NULL,
    confirmed   TEXT NOT NULL,
    sent        TEXT,
    sent_cursor INTEGER,
    PRIMARY KEY (device_id, case_id)
) STRICT, WITHOUT ROWID;
