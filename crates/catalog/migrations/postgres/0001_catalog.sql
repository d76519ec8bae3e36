-- Catalog schema (PostgreSQL). Same shape as the SQLite one; search is a
-- generated tsvector column with a GIN index.
CREATE TABLE categories (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    slug       TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL
);

CREATE TABLE products (
    pk          BIGSERIAL PRIMARY KEY,
    id          TEXT NOT NULL UNIQUE,
    sku         TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    price_cents BIGINT NOT NULL CHECK (price_cents > 0),
    currency    TEXT NOT NULL DEFAULT 'USD',
    category_id TEXT NOT NULL REFERENCES categories (id),
    stock       BIGINT NOT NULL CHECK (stock >= 0),
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    search      tsvector GENERATED ALWAYS AS (
        to_tsvector('simple', name || ' ' || description)
    ) STORED
);
CREATE INDEX products_price ON products (price_cents, id);
CREATE INDEX products_name ON products (name COLLATE "C", id);
CREATE INDEX products_created ON products (created_at, id);
CREATE INDEX products_category_price ON products (category_id, price_cents);
CREATE INDEX products_category_created ON products (category_id, created_at, id);
CREATE INDEX products_search ON products USING GIN (search);

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
