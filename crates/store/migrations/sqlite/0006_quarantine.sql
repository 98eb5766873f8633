-- Vendor bodies that arrived authenticated (or were polled) but that no reader could map: kept
-- exactly as received, with the request headers their reader needs, until a fixed reader
-- replays them into the inbox. A redelivery of the same body is held once (fingerprint).
CREATE TABLE quarantine (
    id             INTEGER PRIMARY KEY,
    system         TEXT    NOT NULL,
    -- webhook | poll
    source         TEXT    NOT NULL,
    fingerprint    TEXT    NOT NULL,
    order_ref      TEXT,
    -- JSON object of lower-case header name -> value; never a signature.
    headers        TEXT    NOT NULL,
    body           BLOB    NOT NULL,
    field          TEXT    NOT NULL,
    reason         TEXT    NOT NULL,
    source_version TEXT,
    flow           TEXT,
    received_at    INTEGER NOT NULL,
    -- held | replayed
    state          TEXT    NOT NULL,
    exception_id   INTEGER REFERENCES exceptions (id),
    event_row      INTEGER REFERENCES inbox (id),
    replayed_at    INTEGER,
    UNIQUE (system, fingerprint)
) STRICT;
CREATE INDEX quarantine_held ON quarantine (system) WHERE state = 'held';
CREATE INDEX quarantine_order ON quarantine (order_ref);
