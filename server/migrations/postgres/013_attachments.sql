-- fieldcase server schema, version 13: attachments. The case document holds each attachment's
-- reference; these tables hold the bytes, sealed with the office's key in chunks, once per
-- content: `blob_key` is a keyed hash of the content's SHA-256 (the hash itself is not kept in
-- the clear, so the database alone cannot confirm that the office holds a given file).
CREATE TABLE attachment_blobs (
    blob_key BYTEA PRIMARY KEY,
    size     BIGINT NOT NULL,
    chunks   BIGINT NOT NULL,
    received BIGINT NOT NULL,
    complete BIGINT NOT NULL
);

CREATE TABLE attachment_blob_chunks (
    blob_key BYTEA NOT NULL REFERENCES attachment_blobs(blob_key) ON DELETE CASCADE,
    idx      BIGINT NOT NULL,
    data     BYTEA NOT NULL,
    PRIMARY KEY (blob_key, idx)
);

-- Which case each attachment belongs to and which content it holds.
CREATE TABLE attachments (
    id         TEXT PRIMARY KEY,
    case_id    TEXT NOT NULL REFERENCES cases(id),
    blob_key   BYTEA NOT NULL REFERENCES attachment_blobs(blob_key),
    created_at BIGINT NOT NULL
);
CREATE INDEX attachments_by_case ON attachments(case_id);
CREATE INDEX attachments_by_blob ON attachments(blob_key);
