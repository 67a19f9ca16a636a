-- fieldcase server schema, version 5: the web pages (issue 6). Passwords only as argon2id PHC
-- strings; sessions only as the SHA-256 of their cookie token; failed logins for rate limiting.

CREATE TABLE web_logins (
    user_id       TEXT PRIMARY KEY REFERENCES users(id),
    password_hash TEXT NOT NULL,
    lang          TEXT NOT NULL DEFAULT 'en' CHECK (lang IN ('en', 'sr-Latn', 'sr-Cyrl')),
    set_at        INTEGER NOT NULL
) STRICT;

CREATE TABLE web_sessions (
    token_hash  BLOB PRIMARY KEY CHECK (length(token_hash) = 32),
    user_id     TEXT NOT NULL REFERENCES users(id),
    csrf        TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    last_seen   INTEGER NOT NULL
) STRICT;

CREATE INDEX web_sessions_by_user ON web_sessions(user_id);

-- Failed login attempts (client address and the name tried, lowercased), kept for the window.
CREATE TABLE web_login_failures (
    ip    TEXT NOT NULL,
    name  TEXT NOT NULL,
    at    INTEGER NOT NULL
) STRICT;

CREATE INDEX web_login_failures_by_at ON web_login_failures(at);
