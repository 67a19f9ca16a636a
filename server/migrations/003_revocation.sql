-- fieldcase server schema, version 3: revocation, wipe and purge receipts, leases, quarantine,
-- and a hash chain over the audit log.

-- Device lifecycle as the admin sees it.
ALTER TABLE devices ADD COLUMN last_sync_at INTEGER;
ALTER TABLE devices ADD COLUMN lease_expires_at INTEGER;
-- When the device confirmed (with a signed receipt) that it wiped itself, and why
-- ('revoked' or 'panic').
ALTER TABLE devices ADD COLUMN wiped_at INTEGER;
ALTER TABLE devices ADD COLUMN wipe_reason TEXT;

-- Cases a device confirmed it purged (unassigned or closed past retention).
CREATE TABLE purge_receipts (
    device_id TEXT NOT NULL,
    case_id   TEXT NOT NULL,
    at        INTEGER NOT NULL,
    PRIMARY KEY (device_id, case_id)
) STRICT, WITHOUT ROWID;

-- Changes uploaded by a revoked device: never merged, never dropped, until an admin decides.
-- The changes are sealed like case documents.
CREATE TABLE quarantine (
    id          TEXT PRIMARY KEY,
    device_id   TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    case_id     TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    changes     BLOB NOT NULL,
    decision    TEXT CHECK (decision IN ('released', 'discarded')),
    decided_at  INTEGER
) STRICT;

-- Audit chain: each entry's hash covers the previous entry's hash and its own fields
-- (see server/src/audit.rs). Rows written before version 3 have NULL and start the chain.
ALTER TABLE audit_log ADD COLUMN detail TEXT;
ALTER TABLE audit_log ADD COLUMN prev_hash BLOB;
ALTER TABLE audit_log ADD COLUMN hash BLOB;
