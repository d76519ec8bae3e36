-- Users. *_ci columns hold the case-folded forms uniqueness and login use.
CREATE TABLE users (
    id TEXT PRIMARY KEY,
    username TEXT NOT NULL,
    username_ci TEXT NOT NULL UNIQUE,
    email TEXT NOT NULL,
    email_ci TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    is_staff BIGINT NOT NULL DEFAULT 0,
    is_superuser BIGINT NOT NULL DEFAULT 0,
    is_active BIGINT NOT NULL DEFAULT 1,
    date_joined TEXT NOT NULL,
    last_login TEXT
);
CREATE INDEX users_date_joined ON users (date_joined);

-- Refresh tokens: only a SHA-256 of each opaque token is kept. A family is
-- one login session; rotation adds to it, reuse revokes all of it.
CREATE TABLE refresh_tokens (
    id TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    family_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT,
    revoked_at BIGINT
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id);

-- Ed25519 signing keys. activated_at NULL: published "next" key, not yet
-- signing; retired_at set: no longer signing, published until its tokens
-- have expired.
CREATE TABLE signing_keys (
    kid TEXT PRIMARY KEY,
    private_pkcs8 TEXT NOT NULL,
    public_x TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    activated_at BIGINT,
    retired_at BIGINT
);

-- Failed-login counters per username and per client IP (fixed window).
CREATE TABLE login_throttle (
    throttle_key TEXT PRIMARY KEY,
    failures BIGINT NOT NULL,
    window_start BIGINT NOT NULL
);
