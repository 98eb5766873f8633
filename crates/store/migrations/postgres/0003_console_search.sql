-- The console's and the API's searches (crate::search) and the console's people, as SQLite's
-- migrations 0012 and 0013. Each filter is led by an index whose order is the page's order;
-- references are ordered bytewise (COLLATE "C"), as SQLite orders them, so cursors agree.
-- An order's channel (the sales channel it names, else its source) and the hash of its
-- customer's email are filled from its events by the writer, and for the rows from before this
-- migration by its hook (postgres/migrate.rs), as is each exception's fingerprint: the part of
-- the cluster key computed in Rust (handoff_model::cluster), so clusters are grouped in SQL.
ALTER TABLE orders ADD COLUMN channel TEXT;
ALTER TABLE orders ADD COLUMN email_key TEXT;
ALTER TABLE orders ADD COLUMN state TEXT GENERATED ALWAYS AS
    (CASE WHEN cancelled THEN 'cancelled' WHEN created THEN 'created' ELSE 'received' END) STORED;
CREATE INDEX orders_ref ON orders (order_ref COLLATE "C");
CREATE INDEX orders_seen ON orders (first_seen, order_ref COLLATE "C");
CREATE INDEX orders_channel ON orders (channel, first_seen, order_ref COLLATE "C");
CREATE INDEX orders_email ON orders (email_key, first_seen, order_ref COLLATE "C");
CREATE INDEX orders_state ON orders (state, first_seen, order_ref COLLATE "C");

ALTER TABLE exceptions ADD COLUMN fingerprint TEXT;
CREATE INDEX exceptions_opened ON exceptions (opened_at, id);
CREATE INDEX exceptions_pattern ON exceptions (pattern, opened_at, id);
CREATE INDEX exceptions_state_opened ON exceptions (state, opened_at, id);
CREATE INDEX exceptions_flow ON exceptions (flow, opened_at, id);
CREATE INDEX exceptions_channel ON exceptions (channel, opened_at, id);
CREATE INDEX exceptions_order_opened ON exceptions (order_ref, opened_at, id);

CREATE INDEX outbox_state ON outbox (state, id);
CREATE INDEX outbox_target ON outbox (target, id);
CREATE INDEX outbox_order ON outbox (order_ref, id);

CREATE INDEX audit_at ON audit (at, id);
CREATE INDEX audit_actor ON audit (actor, at, id);
CREATE INDEX audit_order_at ON audit (order_ref, at, id);

-- A password is kept as its argon2id hash (PHC string); a session's random id as its SHA-256,
-- so a copy of the database lets no one in.
CREATE TABLE console_users (
    id            BIGSERIAL PRIMARY KEY,
    name          TEXT        NOT NULL UNIQUE,
    role          TEXT        NOT NULL,
    password_hash TEXT        NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL
);

-- A session is live from its creation until it is ended (logout) or the console's idle or
-- absolute limit passes. `link` marks a one-time login link not yet redeemed.
CREATE TABLE console_sessions (
    id           BIGSERIAL PRIMARY KEY,
    hash         TEXT        NOT NULL UNIQUE,
    user_id      BIGINT      NOT NULL REFERENCES console_users (id),
    csrf         TEXT        NOT NULL,
    link         BOOLEAN     NOT NULL DEFAULT false,
    created_at   TIMESTAMPTZ NOT NULL,
    last_seen_at TIMESTAMPTZ NOT NULL,
    ended_at     TIMESTAMPTZ
);
CREATE INDEX console_sessions_user ON console_sessions (user_id);
