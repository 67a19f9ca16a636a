-- fieldcase server schema: erasure at the office. A closed case is kept for the office's
-- retention period (`office_retention_days`), then its content (notes, plan, profile, tasks) is
-- erased: its document is replaced by an empty one, its attachments deleted and `erased_at` set; withdrawn consent
-- erases at once. What statistics need stays in `case_statistics`, anonymised (HTCDS variables
-- with an age band in place of the year of birth, counts of the plan; no client code, no
-- names, no text).
ALTER TABLE cases ADD COLUMN erased_at INTEGER;

CREATE TABLE case_statistics (
    case_id     TEXT PRIMARY KEY,
    team_id     TEXT NOT NULL,
    opened_year INTEGER NOT NULL,
    closed_year INTEGER,
    erased_at   INTEGER NOT NULL,
    why         TEXT NOT NULL,
    fields      TEXT NOT NULL
) STRICT;
