-- fieldcase server schema for PostgreSQL, version 1: the equivalent of ../001_initial.sql (users,
-- enrollment codes, devices, request nonces, audit log). Same tables, columns, constraints and
-- indexes; BIGINT for INTEGER, BYTEA for BLOB; booleans as 0/1 integers like in SQLite.
-- Text keys compare byte by byte (COLLATE "C", SQLite's BINARY) whatever the database's locale.

-- SQLite's `COLLATE NOCASE` for user names: equal and unique regardless of case. ICU's level-2
-- comparison folds case in every script (SQLite's NOCASE folds only A-Z), so here "Đorđe" and
-- "đorđe" are one name too: stricter uniqueness, never looser.
CREATE COLLATION fieldcase_nocase (provider = icu, locale = 'und-u-ks-level2', deterministic = false);

CREATE TABLE users (
    id          TEXT COLLATE "C" PRIMARY KEY,
    name        TEXT COLLATE fieldcase_nocase NOT NULL UNIQUE,
    role        TEXT COLLATE "C" NOT NULL CHECK (role IN ('field-worker', 'case-manager', 'admin')),
    active      BIGINT NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    created_at  BIGINT NOT NULL
);

CREATE TABLE enrollment_codes (
    code_hash   BYTEA PRIMARY KEY CHECK (octet_length(code_hash) = 32),
    user_id     TEXT COLLATE "C" NOT NULL REFERENCES users(id),
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    used_at     BIGINT,
    device_id   TEXT COLLATE "C"
);

CREATE TABLE devices (
    id          TEXT COLLATE "C" PRIMARY KEY,
    user_id     TEXT COLLATE "C" NOT NULL REFERENCES users(id),
    public_key  BYTEA NOT NULL UNIQUE CHECK (octet_length(public_key) = 32),
    status      TEXT COLLATE "C" NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'revoked')),
    enrolled_at BIGINT NOT NULL,
    revoked_at  BIGINT
);

CREATE INDEX devices_by_user ON devices(user_id);

-- Nonces of accepted signed requests, kept until their timestamp leaves the accepted window.
CREATE TABLE request_nonces (
    device_id   TEXT COLLATE "C" NOT NULL,
    nonce       BYTEA NOT NULL,
    expires_at  BIGINT NOT NULL,
    PRIMARY KEY (device_id, nonce)
);

CREATE INDEX request_nonces_by_expiry ON request_nonces(expires_at);

-- Append-only: updates, deletes and truncation are refused by triggers.
-- `seq` is SQLite's `INTEGER PRIMARY KEY AUTOINCREMENT`. server/src/audit.rs writes it explicitly
-- (last seq + 1) and reads sqlite_sequence, the highest seq ever written, to notice entries cut
-- from the end. audit_log_sequence is that high-water mark here, kept by a trigger that also
-- gives a row written without seq the next number, as AUTOINCREMENT does (never reused).
CREATE TABLE audit_log (
    seq         BIGINT PRIMARY KEY,
    at          BIGINT NOT NULL,
    action      TEXT COLLATE "C" NOT NULL,
    user_id     TEXT COLLATE "C",
    device_id   TEXT COLLATE "C"
);

CREATE TABLE audit_log_sequence (
    id  BIGINT PRIMARY KEY CHECK (id = 1),
    seq BIGINT NOT NULL
);
INSERT INTO audit_log_sequence (id, seq) VALUES (1, 0);

CREATE FUNCTION audit_log_next_seq() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    high BIGINT;
BEGIN
    SELECT seq INTO high FROM audit_log_sequence WHERE id = 1 FOR UPDATE;
    IF NEW.seq IS NULL THEN
        NEW.seq := high + 1;
    END IF;
    IF NEW.seq > high THEN
        UPDATE audit_log_sequence SET seq = NEW.seq WHERE id = 1;
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER audit_log_seq BEFORE INSERT ON audit_log
FOR EACH ROW EXECUTE FUNCTION audit_log_next_seq();

CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END $$;

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();

CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();

CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();

-- The high-water mark only grows (sqlite_sequence has no such guard; this is cheap).
CREATE FUNCTION audit_log_sequence_grows() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'UPDATE' OR NEW.seq < OLD.seq OR NEW.id <> OLD.id THEN
        RAISE EXCEPTION 'audit_log_sequence only grows';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER audit_log_sequence_guard BEFORE UPDATE OR DELETE ON audit_log_sequence
FOR EACH ROW EXECUTE FUNCTION audit_log_sequence_grows();

CREATE TRIGGER audit_log_sequence_no_truncate BEFORE TRUNCATE ON audit_log_sequence
FOR EACH STATEMENT EXECUTE FUNCTION audit_log_sequence_grows();
