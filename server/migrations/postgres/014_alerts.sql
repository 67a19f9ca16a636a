-- fieldcase server schema for PostgreSQL: the equivalent of ../014_alerts.sql (alerts the office
-- raises for people to act on at once, and the teams each is shown to).
CREATE TABLE alerts (
    id              TEXT COLLATE "C" PRIMARY KEY,
    kind            TEXT NOT NULL CHECK (kind IN ('duress')),
    user_id         TEXT COLLATE "C" NOT NULL REFERENCES users(id),
    device_id       TEXT COLLATE "C" NOT NULL,
    raised_at       BIGINT NOT NULL,
    acknowledged_at BIGINT,
    acknowledged_by TEXT COLLATE "C" REFERENCES users(id)
);

CREATE INDEX alerts_open ON alerts(acknowledged_at, raised_at);

CREATE TABLE alert_teams (
    alert_id TEXT COLLATE "C" NOT NULL REFERENCES alerts(id),
    team_id  TEXT COLLATE "C" NOT NULL REFERENCES teams(id),
    PRIMARY KEY (alert_id, team_id)
);

CREATE INDEX alert_teams_by_team ON alert_teams(team_id, alert_id);
