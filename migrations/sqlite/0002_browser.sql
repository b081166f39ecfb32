-- Browser sign-in: sessions, pending authorization requests, codes, remembered consent.

CREATE TABLE sessions (
    id         TEXT PRIMARY KEY,          -- SHA-256 of the cookie value
    user_id    TEXT,                      -- NULL until the user signs in
    auth_time  INTEGER,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX sessions_expires_at ON sessions (expires_at);

CREATE TABLE auth_requests (
    id         TEXT PRIMARY KEY,
    session_id TEXT NOT NULL,
    client_id  TEXT NOT NULL,
    request    TEXT NOT NULL,             -- the validated request, JSON
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX auth_requests_expires_at ON auth_requests (expires_at);

CREATE TABLE auth_codes (
    hash         TEXT PRIMARY KEY,        -- SHA-256 of the code
    grant_id     TEXT NOT NULL,           -- the grant its redemption creates
    client_id    TEXT NOT NULL,
    user_id      TEXT NOT NULL,
    request      TEXT NOT NULL,           -- redirect_uri, scope, nonce, PKCE, auth_time, JSON
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    consumed_at  INTEGER
);
CREATE INDEX auth_codes_expires_at ON auth_codes (expires_at);

CREATE TABLE consents (
    user_id    TEXT NOT NULL,
    client_id  TEXT NOT NULL,
    scope      TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, client_id)
);
