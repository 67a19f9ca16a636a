-- fieldcase server schema for PostgreSQL, version 2: the equivalent of ../002_cases.sql (cases and
-- their sync state). Case documents are sealed (XChaCha20-Poly1305) under a data key that is
-- itself wrapped with age to the identity in server.key, outside this database.

CREATE TABLE server_meta (
    name  TEXT COLLATE "C" PRIMARY KEY,
    value BYTEA NOT NULL
);

-- One automerge document per case; seq is a server-wide change counter (the sync cursor).
CREATE TABLE cases (
    id         TEXT COLLATE "C" PRIMARY KEY,
    seq        BIGINT NOT NULL UNIQUE,
    doc        BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE case_seq (
    id    BIGINT PRIMARY KEY CHECK (id = 1),
    value BIGINT NOT NULL
);
INSERT INTO case_seq (id, value) VALUES (1, 0);

-- Need to know: which users may receive and change which cases.
CREATE TABLE case_assignments (
    case_id TEXT COLLATE "C" NOT NULL REFERENCES cases(id),
    user_id TEXT COLLATE "C" NOT NULL REFERENCES users(id),
    PRIMARY KEY (case_id, user_id)
);

CREATE INDEX case_assignments_by_user ON case_assignments(user_id, case_id);

-- What the server knows of each device's copy of each case: heads confirmed, and heads sent in a
-- response not yet known to be applied (with that response's cursor).
CREATE TABLE device_case_state (
    device_id   TEXT COLLATE "C" NOT NULL,
    case_id     TEXT COLLATE "C" NOT NULL,
    confirmed   TEXT COLLATE "C" NOT NULL,
    sent        TEXT COLLATE "C",
    sent_cursor BIGINT,
    PRIMARY KEY (device_id, case_id)
);
