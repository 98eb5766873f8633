-- The write path in PostgreSQL: the schema the SQLite store reached at its migration 0011, in
-- one step. Times are timestamptz (microseconds, as SQLite's integers); money is NUMERIC.
-- Payloads and headers stay TEXT: they are hashed and compared as the bytes they were.

CREATE TABLE inbox (
    id          BIGSERIAL PRIMARY KEY,
    system      TEXT        NOT NULL,
    event_id    TEXT        NOT NULL,
    kind        TEXT        NOT NULL,
    order_ref   TEXT        NOT NULL,
    received_at TIMESTAMPTZ NOT NULL,
    payload     TEXT        NOT NULL,
    -- The vendor's body as received.
    raw         TEXT,
    -- Several transactions commit at once, so ids do not grow in commit order: intake marks
    -- each row it planned instead of keeping one cursor (SQLite's single writer can).
    planned     BOOLEAN     NOT NULL DEFAULT false,
    UNIQUE (system, event_id)
);
CREATE INDEX inbox_order ON inbox (order_ref);
CREATE INDEX inbox_unplanned ON inbox (id) WHERE NOT planned;

CREATE TABLE orders (
    order_ref        TEXT PRIMARY KEY,
    source           TEXT        NOT NULL,
    created          BOOLEAN     NOT NULL DEFAULT false,
    cancelled        BOOLEAN     NOT NULL DEFAULT false,
    last_version     BIGINT,
    last_fingerprint TEXT,
    first_seen       TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL
);

CREATE TABLE ledger (
    order_ref  TEXT        NOT NULL,
    system     TEXT        NOT NULL,
    state      TEXT        NOT NULL,
    record_id  TEXT,
    updated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (order_ref, system)
);

CREATE TABLE outbox (
    id              BIGSERIAL PRIMARY KEY,
    flow            TEXT        NOT NULL,
    target          TEXT        NOT NULL,
    order_ref       TEXT        NOT NULL,
    kind            TEXT        NOT NULL,
    event_row       BIGINT      NOT NULL REFERENCES inbox (id),
    idempotency_key TEXT        NOT NULL UNIQUE,
    external_ref    TEXT        NOT NULL,
    version         BIGINT,
    payload         TEXT        NOT NULL,
    state           TEXT        NOT NULL,
    attempts        INTEGER     NOT NULL DEFAULT 0,
    -- The last outcome is unknown: read the target back before sending again.
    ambiguous       BOOLEAN     NOT NULL DEFAULT false,
    next_attempt_at TIMESTAMPTZ NOT NULL,
    -- The retry budget counts from here; a replay moves both.
    budget_attempts INTEGER     NOT NULL DEFAULT 0,
    budget_start    TIMESTAMPTZ NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL,
    record_id       TEXT,
    last_error      TEXT
);
CREATE INDEX outbox_due ON outbox (next_attempt_at, id) WHERE state = 'pending';
CREATE INDEX outbox_due_by_target ON outbox (target, next_attempt_at, id) WHERE state = 'pending';
CREATE INDEX outbox_sequence ON outbox (order_ref, target, id);
CREATE INDEX outbox_event ON outbox (event_row);
CREATE INDEX outbox_created ON outbox (created_at);
CREATE INDEX outbox_dead ON outbox (id) WHERE state = 'dead_lettered';
CREATE INDEX outbox_in_flight ON outbox (id) WHERE state = 'in_flight';
CREATE INDEX outbox_superseded ON outbox (id) WHERE state = 'superseded';
CREATE INDEX outbox_abandoned ON outbox (id) WHERE state = 'abandoned';

CREATE TABLE attempts (
    command_id  BIGINT      NOT NULL REFERENCES outbox (id),
    attempt     INTEGER     NOT NULL,
    started_at  TIMESTAMPTZ NOT NULL,
    finished_at TIMESTAMPTZ NOT NULL,
    outcome     TEXT        NOT NULL,
    detail      TEXT,
    -- The mapping version the attempt's payload was made with.
    mapping     TEXT,
    PRIMARY KEY (command_id, attempt)
);

CREATE TABLE exceptions (
    id         BIGSERIAL PRIMARY KEY,
    pattern    TEXT        NOT NULL,
    order_ref  TEXT        NOT NULL,
    flow       TEXT,
    command_id BIGINT REFERENCES outbox (id),
    field      TEXT,
    detail     TEXT        NOT NULL,
    state      TEXT        NOT NULL,
    opened_at  TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    -- A rules finding's identity within the order, what clusters it, the money at stake.
    subject    TEXT,
    channel    TEXT,
    mapping    TEXT,
    amount     NUMERIC,
    currency   TEXT,
    action     TEXT,
    evidence   TEXT,
    -- false once a person resolved a rules exception: the rules check whether its cause is gone.
    rechecked  BOOLEAN     NOT NULL DEFAULT true
);
CREATE INDEX exceptions_state ON exceptions (state, id);
CREATE INDEX exceptions_command ON exceptions (command_id);
CREATE INDEX exceptions_order ON exceptions (order_ref, id);
CREATE UNIQUE INDEX exceptions_finding ON exceptions (pattern, order_ref, subject) WHERE subject IS NOT NULL;
CREATE INDEX exceptions_recheck ON exceptions (id) WHERE NOT rechecked;

CREATE TABLE audit (
    id        BIGSERIAL PRIMARY KEY,
    at        TIMESTAMPTZ NOT NULL,
    actor     TEXT        NOT NULL,
    action    TEXT        NOT NULL,
    order_ref TEXT,
    detail    TEXT        NOT NULL
);
CREATE INDEX audit_order ON audit (order_ref);

-- Where each polled system's last poll ended; moved in the same transaction as its events.
CREATE TABLE poll_cursor (
    system     TEXT PRIMARY KEY,
    cursor     TEXT        NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);

-- The rules' journal. Its ids must grow in commit order (the rules read it by position), so
-- every transaction that appends takes the journal's lock first (see postgres/writes.rs).
CREATE TABLE facts (
    id         BIGSERIAL PRIMARY KEY,
    order_ref  TEXT        NOT NULL,
    system     TEXT        NOT NULL,
    kind       TEXT        NOT NULL,
    event_row  BIGINT REFERENCES inbox (id),
    command_id BIGINT REFERENCES outbox (id),
    record_id  TEXT,
    at         TIMESTAMPTZ NOT NULL
);
CREATE INDEX facts_order ON facts (order_ref, id);

CREATE TABLE quarantine (
    id             BIGSERIAL PRIMARY KEY,
    system         TEXT        NOT NULL,
    source         TEXT        NOT NULL,
    fingerprint    TEXT        NOT NULL,
    order_ref      TEXT,
    headers        TEXT        NOT NULL,
    body           BYTEA       NOT NULL,
    field          TEXT        NOT NULL,
    reason         TEXT        NOT NULL,
    source_version TEXT,
    flow           TEXT,
    received_at    TIMESTAMPTZ NOT NULL,
    state          TEXT        NOT NULL,
    exception_id   BIGINT REFERENCES exceptions (id),
    event_row      BIGINT REFERENCES inbox (id),
    replayed_at    TIMESTAMPTZ,
    body_sha256    TEXT,
    UNIQUE (system, fingerprint)
);
CREATE INDEX quarantine_held ON quarantine (system) WHERE state = 'held';
CREATE INDEX quarantine_order ON quarantine (order_ref);
CREATE INDEX quarantine_state ON quarantine (state, id);
CREATE INDEX quarantine_event ON quarantine (event_row) WHERE event_row IS NOT NULL;

CREATE TABLE rules_checkpoint (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    position BIGINT NOT NULL
);
CREATE TABLE rules_board (
    order_ref TEXT PRIMARY KEY
);

CREATE TABLE retention_cursor (
    step    TEXT PRIMARY KEY,
    last_id BIGINT NOT NULL
);
CREATE TABLE retention_deferred (
    step   TEXT   NOT NULL,
    row_id BIGINT NOT NULL,
    PRIMARY KEY (step, row_id)
);

CREATE TABLE api_tokens (
    id         BIGSERIAL PRIMARY KEY,
    name       TEXT        NOT NULL,
    role       TEXT        NOT NULL,
    hash       TEXT        NOT NULL UNIQUE,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ,
    revoked_at TIMESTAMPTZ
);
