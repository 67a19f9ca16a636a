-- fieldcase device store, schema 1.
-- Every column that describes a person or a case holds XChaCha20-Poly1305 ciphertext sealed under
-- the store's data key; ids are random UUIDs and carry no personal data.
CREATE TABLE meta (
    name  TEXT PRIMARY KEY,
    value BLOB NOT NULL
) STRICT;

-- The last compacted save of each case document.
CREATE TABLE case_docs (
    case_id  BLOB PRIMARY KEY,
    snapshot BLOB NOT NULL
) STRICT;

-- Changes made or received since the case's last compaction, in order.
CREATE TABLE case_changes (
    case_id BLOB NOT NULL,
    seq     INTEGER NOT NULL,
    change  BLOB NOT NULL,
    PRIMARY KEY (case_id, seq)
) STRICT;

-- The sealed summary of each case that list screens read instead of loading documents.
CREATE TABLE case_index (
    case_id BLOB PRIMARY KEY,
    summary BLOB NOT NULL
) STRICT;

-- Local changes waiting to reach the office.
CREATE TABLE outbox (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    case_id BLOB NOT NULL,
    entry   BLOB NOT NULL
) STRICT;
