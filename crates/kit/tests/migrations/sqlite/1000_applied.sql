CREATE TABLE applied (
    consumer TEXT NOT NULL,
    event_id TEXT NOT NULL,
    n        INTEGER NOT NULL,
    PRIMARY KEY (consumer, event_id)
);
