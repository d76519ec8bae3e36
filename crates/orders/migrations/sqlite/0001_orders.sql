-- Orders, their lines (a snapshot of the catalog at order time), their
-- status history, and the saga's bookkeeping (next_attempt_at, lease_until,
-- compensate) so any process can resume any order after a crash.
CREATE TABLE orders (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    status TEXT NOT NULL,
    status_reason TEXT,
    total_cents BIGINT NOT NULL,
    currency TEXT NOT NULL,
    payment_token TEXT NOT NULL,
    shipping_address TEXT NOT NULL,
    compensate BIGINT NOT NULL DEFAULT 0,
    attempts BIGINT NOT NULL DEFAULT 0,
    charge_attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    lease_until BIGINT NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX orders_user_created ON orders (user_id, created_at);
CREATE INDEX orders_due ON orders (status, next_attempt_at);

CREATE TABLE order_lines (
    order_id TEXT NOT NULL REFERENCES orders (id),
    line_no BIGINT NOT NULL,
    product_id TEXT NOT NULL,
    name TEXT NOT NULL,
    unit_price_cents BIGINT NOT NULL,
    quantity BIGINT NOT NULL,
    line_total_cents BIGINT NOT NULL,
    PRIMARY KEY (order_id, line_no)
);

CREATE TABLE order_history (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id TEXT NOT NULL REFERENCES orders (id),
    status TEXT NOT NULL,
    reason TEXT,
    at TEXT NOT NULL
);
CREATE INDEX order_history_order ON order_history (order_id, seq);

CREATE TABLE idempotency_keys (
    user_id TEXT NOT NULL,
    idem_key TEXT NOT NULL,
    request TEXT NOT NULL,
    status_code BIGINT NOT NULL,
    response TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, idem_key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
