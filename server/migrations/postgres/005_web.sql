-- fieldcase server schema for PostgreSQL, version 5: the equivalent of ../005_web.sql (the web
-- pages). Passwords only as argon2id PHC strings; sessions only as the SHA-256 of their cookie
-- token; failed logins for rate limiting.

CREATE TABLE web_logins (
    user_id       TEXT COLLATE "C" PRIMARY KEY REFERENCES users(id),
    password_hash TEXT COLLATE "C" NOT NULL,
    lang          TEXT COLLATE "C" NOT NULL DEFAULT 'en' CHECK (lang IN ('en', 'sr-Latn', 'sr-Cyrl')),
    set_at        BIGINT NOT NULL
);

CREATE TABLE web_sessions (
    token_hash  BYTEA PRIMARY KEY CHECK (octet_length(token_hash) = 32),
    user_id     TEXT COLLATE "C" NOT NULL REFERENCES users(id),
    csrf        TEXT COLLATE "C" NOT NULL,
    created_at  BIGINT NOT NULL,
    last_seen   BIGINT NOT NULL
);

CREATE INDEX web_sessions_by_user ON web_sessions(user_id);

-- Failed login attempts (client address and the name tried, lowercased), kept for the window.
CREATE TABLE web_login_failures (
    ip    TEXT COLLATE "C" NOT NULL,
    name  TEXT COLLATE "C" NOT NULL,
    at    BIGINT NOT NULL
);

CREATE INDEX web_login_failures_by_at ON web_login_failures(at);
