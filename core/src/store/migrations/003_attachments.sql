-- fieldcase device store, schema 3: attachments. The case document holds each attachment's
-- reference; these rows hold where its bytes stand on this phone, and the bytes themselves in
-- sealed chunks (bound to the attachment and the chunk's index).
CREATE TABLE attachments (
    id        BLOB PRIMARY KEY,
    case_id   BLOB NOT NULL,
    -- 1 when this phone made it and must upload it.
    ours      INTEGER NOT NULL,
    -- Chunks the office has acknowledged (uploads).
    acked     INTEGER NOT NULL DEFAULT 0,
    -- Chunks held here (all of them for this phone's own, the downloaded part otherwise).
    held      INTEGER NOT NULL DEFAULT 0,
    -- 1 once every chunk is here and the whole matched its hash.
    complete  INTEGER NOT NULL DEFAULT 0,
    -- 1 when the worker asked for it (opening it before it was here).
    wanted    INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX attachments_by_case ON attachments (case_id);

CREATE TABLE attachment_chunks (
    attachment_id BLOB NOT NULL REFERENCES attachments (id) ON DELETE CASCADE,
    idx           INTEGER NOT NULL,
    data          BLOB NOT NULL,
    PRIMARY KEY (attachment_id, idx)
) STRICT;
