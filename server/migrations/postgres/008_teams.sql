-- fieldcase server schema for PostgreSQL, version 8: the equivalent of ../008_teams.sql (teams,
-- a case's team, break-glass reads). Upgrading puts every existing case in one default team and
-- every existing case manager and admin on it, so that nothing anyone could see before
-- disappears.

CREATE TABLE teams (
    id         TEXT COLLATE "C" PRIMARY KEY,
    name       TEXT COLLATE fieldcase_nocase NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);

INSERT INTO teams (id, name, created_at)
VALUES ('00000000-0000-4000-8000-000000000001', 'Office', 0);

CREATE TABLE team_members (
    team_id TEXT COLLATE "C" NOT NULL REFERENCES teams(id),
    user_id TEXT COLLATE "C" NOT NULL REFERENCES users(id),
    PRIMARY KEY (team_id, user_id)
);

CREATE INDEX team_members_by_user ON team_members(user_id, team_id);

INSERT INTO team_members (team_id, user_id)
SELECT '00000000-0000-4000-8000-000000000001', id FROM users
WHERE role IN ('case-manager', 'admin');

ALTER TABLE cases ADD COLUMN team_id TEXT COLLATE "C" NOT NULL
    DEFAULT '00000000-0000-4000-8000-000000000001' REFERENCES teams(id);

CREATE INDEX cases_by_team ON cases(team_id, created_at);

CREATE TABLE break_glass (
    id         TEXT COLLATE "C" PRIMARY KEY,
    case_id    TEXT COLLATE "C" NOT NULL REFERENCES cases(id),
    user_id    TEXT COLLATE "C" NOT NULL REFERENCES users(id),
    reason     TEXT NOT NULL,
    opened_at  BIGINT NOT NULL,
    until      BIGINT NOT NULL
);

CREATE INDEX break_glass_by_case ON break_glass(case_id, opened_at);
CREATE INDEX break_glass_by_user ON break_glass(user_id, case_id, until);
