-- The W3C traceparent of the request that placed the order: the saga's
-- steps (retries and timer re-drives included) join its trace.
ALTER TABLE orders ADD COLUMN traceparent TEXT;
