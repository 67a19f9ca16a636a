-- fieldcase server schema: alerts the office raises for people to act on at once. The first kind
-- is `duress`: a field worker's phone was opened with her duress PIN (the phone destroyed its
-- case data and sent a signed duress notice at its next contact; the office revoked it). Each
-- alert is shown to the case managers of the worker's teams (`alert_teams`: the teams she is on
-- and the teams of the cases assigned to her, when raised) and to admins, until one of them
-- acknowledges it (audited).
CREATE TABLE alerts (
    id              TEXT PRIMARY KEY,
    kind            TEXT NOT NULL CHECK (kind IN ('duress')),
    user_id         TEXT NOT NULL REFERENCES users(id),
    device_id       TEXT NOT NULL,
    raised_at       INTEGER NOT NULL,
    acknowledged_at INTEGER,
    acknowledged_by TEXT REFERENCES users(id)
) STRICT;

CREATE INDEX alerts_open ON alerts(acknowledged_at, raised_at);

CREATE TABLE alert_teams (
    alert_id TEXT NOT NULL REFERENCES alerts(id),
    team_id  TEXT NOT NULL REFERENCES teams(id),
    PRIMARY KEY (alert_id, team_id)
) STRICT, WITHOUT ROWID;

CREATE INDEX alert_teams_by_team ON alert_teams(team_id, alert_id);
