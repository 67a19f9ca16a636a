-- fieldcase server schema, version 1: users, enrollment codes, devices, request nonces, audit log.
-- Ids are random UUIDv7 strings. No secret from which a device credential could be rebuilt is
-- stored: enrollment codes only as SHA-256, devices only as Ed25519 public keys.

CREATE TABLE users (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE COLLATE NOCASE,
    role        TEXT NOT NULL CHECK (role IN ('field-worker', 'case-manager', 'admin')),
    active      INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    created_at  INTEGER NOT NULL
) STRICT;

CREATE TABLE enrollment_codes (
    code_hash   BLOB PRIMARY KEY CHECK (length(code_hash) = 32),
    user_id     TEXT NOT NULL REFERENCES users(id),
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    used_at     INTEGER,
    device_id   TEXT
) STRICT;

CREATE TABLE devices (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users(id),
    public_key  BLOB NOT NULL UNIQUE CHECK (length(public_key) = 32),
    status      TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'revoked')),
    enrolled_at INTEGER NOT NULL,
    revoked_at  INTEGER
) STRICT;

CREATE INDEX devices_by_user ON devices(user_id);

-- Nonces of accepted signed requests, kept until their timestamp leaves the accepted window.
CREATE TABLE request_nonces (
    device_id   TEXT NOT NULL,
    nonce       BLOB NOT NULL,
    expires_at  INTEGER NOT NULL,
    PRIMARY KEY (device_id, nonce)
) STRICT, WITHOUT ROWID;

CREATE INDEX request_nonces_by_expiry ON request_nonces(expires_at);

-- Append-only: updates and deletes are refused by triggers.
CREATE TABLE audit_log (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    at          INTEGER NOT NULL,
    action      TEXT NOT NULL,
    user_id     TEXT,
    device_id   TEXT
) STRICT;

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;

CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
