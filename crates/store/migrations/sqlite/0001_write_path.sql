-- The write path: inbox, order ledger, outbox with attempts, exceptions, audit log.
-- Times are unix microseconds (UTC); money never appears outside payload JSON text.

CREATE TABLE inbox (
    id           INTEGER PRIMARY KEY,
    system       TEXT    NOT NULL,
    event_id     TEXT    NOT NULL,
    kind         TEXT    NOT NULL,
    order_ref    TEXT    NOT NULL,
    received_at  INTEGER NOT NULL,
    payload      TEXT    NOT NULL,
    UNIQUE (system, event_id)
) STRICT;
CREATE INDEX inbox_order ON inbox (order_ref);

-- Intake plans inbox rows in id order; ids grow in commit order (one writer, rows never
-- deleted from the top), so one cursor replaces a per-row "processed" flag.
CREATE TABLE intake_cursor (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    last_row INTEGER NOT NULL
) STRICT;
INSERT INTO intake_cursor (id, last_row) VALUES (1, 0);

-- One row per order: what the sequencer needs to plan the next event of that order.
CREATE TABLE orders (
    order_ref    TEXT PRIMARY KEY,
    source       TEXT    NOT NULL,
    created      INTEGER NOT NULL DEFAULT 0,
    cancelled    INTEGER NOT NULL DEFAULT 0,
    last_version INTEGER,
    first_seen   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
) STRICT;

-- Per order and per system: the last known state and when it was learned.
CREATE TABLE ledger (
    order_ref  TEXT NOT NULL,
    system     TEXT NOT NULL,
    state      TEXT NOT NULL,
    record_id  TEXT,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (order_ref, system)
) STRICT;

CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY,
    flow            TEXT    NOT NULL,
    target          TEXT    NOT NULL,
    order_ref       TEXT    NOT NULL,
    kind            TEXT    NOT NULL,
    event_row       INTEGER NOT NULL REFERENCES inbox (id),
    idempotency_key TEXT    NOT NULL UNIQUE,
    external_ref    TEXT    NOT NULL,
    version         INTEGER,
    payload         TEXT    NOT NULL,
    state           TEXT    NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    -- The last outcome is unknown: read the target back before sending again.
    ambiguous       INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    -- The retry budget counts from here; a replay moves both.
    budget_attempts INTEGER NOT NULL DEFAULT 0,
    budget_start    INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    record_id       TEXT,
    last_error      TEXT
) STRICT;
CREATE INDEX outbox_due ON outbox (next_attempt_at, id) WHERE state = 'pending';
CREATE INDEX outbox_sequence ON outbox (order_ref, target, id);
CREATE INDEX outbox_dead ON outbox (id) WHERE state = 'dead_lettered';
-- Small partial indexes so that the backlog is counted without sorting the whole outbox.
CREATE INDEX outbox_in_flight ON outbox (id) WHERE state = 'in_flight';
CREATE INDEX outbox_superseded ON outbox (id) WHERE state = 'superseded';

CREATE TABLE attempts (
    command_id  INTEGER NOT NULL REFERENCES outbox (id),
    attempt     INTEGER NOT NULL,
    started_at  INTEGER NOT NULL,
    finished_at INTEGER NOT NULL,
    outcome     TEXT    NOT NULL,
    detail      TEXT,
    PRIMARY KEY (command_id, attempt)
) STRICT;

CREATE TABLE exceptions (
    id         INTEGER PRIMARY KEY,
    pattern    TEXT    NOT NULL,
    order_ref  TEXT    NOT NULL,
    flow       TEXT,
    command_id INTEGER REFERENCES outbox (id),
    field      TEXT,
    detail     TEXT    NOT NULL,
    state      TEXT    NOT NULL,
    opened_at  INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;
CREATE INDEX exceptions_state ON exceptions (state, id);
CREATE INDEX exceptions_command ON exceptions (command_id);

CREATE TABLE audit (
    id        INTEGER PRIMARY KEY,
    at        INTEGER NOT NULL,
    actor     TEXT    NOT NULL,
    action    TEXT    NOT NULL,
    order_ref TEXT,
    detail    TEXT    NOT NULL
) STRICT;
CREATE INDEX audit_order ON audit (order_ref);
