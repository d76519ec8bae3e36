-- Who to write to: this service's own copy of user_id -> username/email,
-- learnt from `user.registered` (event-carried state) or from identity.
CREATE TABLE IF NOT EXISTS recipients (
    user_id    TEXT PRIMARY KEY,
    username   TEXT NOT NULL,
    email      TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

-- The email log. A row is written in the same transaction as the inbox row
-- of the event that caused it, then sent by the sender worker.
CREATE TABLE IF NOT EXISTS notifications (
    id              TEXT PRIMARY KEY,
    event_id        TEXT NOT NULL,
    kind            TEXT NOT NULL,
    channel         TEXT NOT NULL DEFAULT 'email',
    user_id         TEXT NOT NULL,
    to_address      TEXT NOT NULL,
    subject         TEXT NOT NULL,
    body_text       TEXT NOT NULL,
    body_html       TEXT NOT NULL,
    status          TEXT NOT NULL DEFAULT 'pending',
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL DEFAULT 0,
    locked_until    INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT,
    created_at      TEXT NOT NULL,
    sent_at         TEXT,
    UNIQUE (event_id, kind)
);
CREATE INDEX IF NOT EXISTS notifications_by_user ON notifications (user_id, created_at);
CREATE INDEX IF NOT EXISTS notifications_due ON notifications (status, next_attempt_at);
