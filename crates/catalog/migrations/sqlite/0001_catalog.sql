-- Catalog schema (SQLite). Money in integer cents, ids are UUID text,
-- timestamps RFC 3339 text (fixed width, so they sort as text).
CREATE TABLE categories (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    slug       TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL
);

-- `pk` is the rowid the FTS5 index points at; `id` is the public UUID.
CREATE TABLE products (
    pk          INTEGER PRIMARY KEY,
    id          TEXT NOT NULL UNIQUE,
    sku         TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    price_cents BIGINT NOT NULL CHECK (price_cents > 0),
    currency    TEXT NOT NULL DEFAULT 'USD',
    category_id TEXT NOT NULL REFERENCES categories (id),
    stock       BIGINT NOT NULL CHECK (stock >= 0),
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
CREATE INDEX products_price ON products (price_cents, id);
CREATE INDEX products_name ON products (name, id);
CREATE INDEX products_created ON products (created_at, id);
CREATE INDEX products_category_price ON products (category_id, price_cents);
CREATE INDEX products_category_created ON products (category_id, created_at, id);

-- Full-text search over name and description, kept in sync by triggers.
CREATE VIRTUAL TABLE products_fts USING fts5 (
    name, description, content = 'products', content_rowid = 'pk',
    tokenize = 'unicode61 remove_diacritics 2'
);
CREATE TRIGGER products_fts_ai AFTER INSERT ON products BEGIN
    INSERT INTO products_fts (rowid, name, description) VALUES (new.pk, new.name, new.description);
END;
CREATE TRIGGER products_fts_ad AFTER DELETE ON products BEGIN
    INSERT INTO products_fts (products_fts, rowid, name, description)
    VALUES ('delete', old.pk, old.name, old.description);
END;
CREATE TRIGGER products_fts_au AFTER UPDATE OF name, description ON products BEGIN
    INSERT INTO products_fts (products_fts, rowid, name, description)
    VALUES ('delete', old.pk, old.name, old.description);
    INSERT INTO products_fts (rowid, name, description) VALUES (new.pk, new.name, new.description);
END;

-- One row per order: the idempotency key of every reservation call.
-- status: reserved | rejected | committed | released.
CREATE TABLE reservations (
    order_id    TEXT PRIMARY KEY,
    status      TEXT NOT NULL,
    reason      TEXT,
    product_ids TEXT NOT NULL DEFAULT '[]',
    expires_at  BIGINT NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
CREATE INDEX reservations_expiry ON reservations (status, expires_at);

CREATE TABLE reservation_lines (
    order_id   TEXT NOT NULL REFERENCES reservations (order_id),
    product_id TEXT NOT NULL,
    quantity   BIGINT NOT NULL CHECK (quantity > 0),
    PRIMARY KEY (order_id, product_id)
);
