-- Transactional outbox: written in the same transaction as the state change.
CREATE TABLE IF NOT EXISTS outbox (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    id              TEXT NOT NULL UNIQUE,
    event_type      TEXT NOT NULL,
    version         INTEGER NOT NULL,
    source          TEXT NOT NULL,
    occurred_at     TEXT NOT NULL,
    traceparent     TEXT,
    data            TEXT NOT NULL,
    published_at    TEXT,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT
);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (published_at, next_attempt_at, seq);

-- Inbox: one row per (consumer, event) applied, written with the handler's effect.
CREATE TABLE IF NOT EXISTS inbox (
    consumer     TEXT NOT NULL,
    event_id     TEXT NOT NULL,
    processed_at TEXT NOT NULL,
    PRIMARY KEY (consumer, event_id)
);

-- Events a handler gave up on, kept for an operator to inspect and replay.
CREATE TABLE IF NOT EXISTS dead_letters (
    id          TEXT PRIMARY KEY,
    consumer    TEXT NOT NULL,
    event_id    TEXT NOT NULL,
    event_type  TEXT NOT NULL,
    envelope    TEXT NOT NULL,
    error       TEXT NOT NULL,
    attempts    INTEGER NOT NULL,
    created_at  TEXT NOT NULL,
    replay_requested INTEGER NOT NULL DEFAULT 0,
    replayed_at TEXT
);
CREATE INDEX IF NOT EXISTS dead_letters_open ON dead_letters (replayed_at, created_at);
