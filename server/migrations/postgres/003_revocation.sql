-- fieldcase server schema for PostgreSQL, version 3: the equivalent of ../003_revocation.sql
-- (revocation, wipe and purge receipts, leases, quarantine, and a hash chain over the audit log).

-- Device lifecycle as the admin sees it.
ALTER TABLE devices ADD COLUMN last_sync_at BIGINT;
ALTER TABLE devices ADD COLUMN lease_expires_at BIGINT;
-- When the device confirmed (with a signed receipt) that it wiped itself, and why
-- ('revoked' or 'panic').
ALTER TABLE devices ADD COLUMN wiped_at BIGINT;
ALTER TABLE devices ADD COLUMN wipe_reason TEXT COLLATE "C";

-- Cases a device confirmed it purged (unassigned or closed past retention).
CREATE TABLE purge_receipts (
    device_id TEXT COLLATE "C" NOT NULL,
    case_id   TEXT COLLATE "C" NOT NULL,
    at        BIGINT NOT NULL,
    PRIMARY KEY (device_id, case_id)
);

-- Changes uploaded by a revoked device: never merged, never dropped, until an admin decides.
-- The changes are sealed like case documents.
CREATE TABLE quarantine (
    id          TEXT COLLATE "C" PRIMARY KEY,
    device_id   TEXT COLLATE "C" NOT NULL,
    user_id     TEXT COLLATE "C" NOT NULL,
    case_id     TEXT COLLATE "C" NOT NULL,
    received_at BIGINT NOT NULL,
    changes     BYTEA NOT NULL,
    decision    TEXT COLLATE "C" CHECK (decision IN ('released', 'discarded')),
    decided_at  BIGINT
);

-- Audit chain: each entry's hash covers the previous entry's hash and its own fields
-- (see server/src/audit.rs). Rows written before version 3 have NULL and start the chain.
ALTER TABLE audit_log ADD COLUMN detail TEXT COLLATE "C";
ALTER TABLE audit_log ADD COLUMN prev_hash BYTEA;
ALTER TABLE audit_log ADD COLUMN hash BYTEA;
