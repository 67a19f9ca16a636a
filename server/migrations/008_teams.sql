-- fieldcase server schema, version 8: need to know at the office. A case belongs to one team;
-- case managers (and admins) read the cases of the teams they are on and nothing else; a read
-- outside one's teams is a break-glass read, with a reason, for a short time, shown to the team.
--
-- Upgrading puts every existing case in one default team and every existing case manager and
-- admin on it, so that nothing anyone could see before disappears; an admin then moves cases to
-- other teams and takes people (herself included) off the default team.

CREATE TABLE teams (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE COLLATE NOCASE,
    created_at INTEGER NOT NULL
) STRICT;

INSERT INTO teams (id, name, created_at)
VALUES ('00000000-0000-4000-8000-000000000001', 'Office', 0);

CREATE TABLE team_members (
    team_id TEXT NOT NULL REFERENCES teams(id),
    user_id TEXT NOT NULL REFERENCES users(id),
    PRIMARY KEY (team_id, user_id)
) STRICT, WITHOUT ROWID;

CREATE INDEX team_members_by_user ON team_members(user_id, team_id);

INSERT INTO team_members (team_id, user_id)
SELECT '00000000-0000-4000-8000-000000000001', id FROM users
WHERE role IN ('case-manager', 'admin');

-- SQLite adds a column with a non-null default only without a REFERENCES clause; the office's
-- operations are the only writers and check the team exists.
ALTER TABLE cases ADD COLUMN team_id TEXT NOT NULL DEFAULT '00000000-0000-4000-8000-000000000001';

CREATE INDEX cases_by_team ON cases(team_id, created_at);

-- Break-glass reads: who read which case outside her teams, why, and until when it stays open.
CREATE TABLE break_glass (
    id         TEXT PRIMARY KEY,
    case_id    TEXT NOT NULL REFERENCES cases(id),
    user_id    TEXT NOT NULL REFERENCES users(id),
    reason     TEXT NOT NULL,
    opened_at  INTEGER NOT NULL,
    until      INTEGER NOT NULL
) STRICT;

CREATE INDEX break_glass_by_case ON break_glass(case_id, opened_at);
CREATE INDEX break_glass_by_user ON break_glass(user_id, case_id, until);
