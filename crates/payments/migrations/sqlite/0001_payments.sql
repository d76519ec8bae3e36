-- One row per order: the UNIQUE constraint is what guarantees at most one
-- successful charge per order, whatever the callers do.
CREATE TABLE payments (
    id TEXT PRIMARY KEY,
    order_id TEXT NOT NULL UNIQUE,
    user_id TEXT NOT NULL,
    amount_cents BIGINT NOT NULL,
    currency TEXT NOT NULL,
    payment_token TEXT NOT NULL,
    -- pending | charging | succeeded | declined | failed | refunded
    status TEXT NOT NULL,
    reason TEXT,
    attempts BIGINT NOT NULL DEFAULT 0,
    charging_until BIGINT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX payments_user_id ON payments (user_id);

CREATE TABLE refunds (
    id TEXT PRIMARY KEY,
    payment_id TEXT NOT NULL REFERENCES payments (id),
    order_id TEXT NOT NULL UNIQUE,
    amount_cents BIGINT NOT NULL,
    created_at TEXT NOT NULL
);
