-- fieldcase server schema: the report index. For each case its facts (team, opening and
-- closing days, close reason, identified or not, age band, the HTCDS profile without the year
-- of birth, dated accompaniments, services and goals achieved), sealed with the office's data
-- key like the case itself; and the counts those facts add up to, by team, day or month,
-- metric and key, kept in the same transaction as every store of a case, so that a report is
-- a sum over buckets and never decrypts a case. The server derives the facts of the cases
-- stored before this migration at its next start.
CREATE TABLE report_facts (
    case_id TEXT PRIMARY KEY,
    facts   BLOB NOT NULL
) STRICT;

-- grain 0: bucket is a Julian day; grain 1: bucket is a month (year * 12 + month - 1).
CREATE TABLE report_counts (
    grain   INTEGER NOT NULL,
    bucket  INTEGER NOT NULL,
    team_id TEXT NOT NULL,
    metric  TEXT NOT NULL,
    key     TEXT NOT NULL,
    n       INTEGER NOT NULL,
    PRIMARY KEY (grain, bucket, team_id, metric, key)
) STRICT, WITHOUT ROWID;
