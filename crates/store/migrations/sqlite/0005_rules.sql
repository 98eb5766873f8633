-- The rules' journal: every planned event and every command outcome, in commit order, so the
-- rules follow each order's cross-system ledger without rescanning the store.
CREATE TABLE facts (
    id         INTEGER PRIMARY KEY,
    order_ref  TEXT    NOT NULL,
    system     TEXT    NOT NULL,
    -- An event kind (order.created, ...), or acknowledged:<command kind>, dead_lettered:<command kind>.
    kind       TEXT    NOT NULL,
    event_row  INTEGER REFERENCES inbox (id),
    command_id INTEGER REFERENCES outbox (id),
    record_id  TEXT,
    at         INTEGER NOT NULL
) STRICT;

-- Exceptions raised by the rules carry the finding's subject (its identity within the order),
-- what clusters them, the suggested action and the evidence pack.
ALTER TABLE exceptions ADD COLUMN subject TEXT;
ALTER TABLE exceptions ADD COLUMN channel TEXT;
ALTER TABLE exceptions ADD COLUMN mapping TEXT;
ALTER TABLE exceptions ADD COLUMN amount TEXT;
ALTER TABLE exceptions ADD COLUMN currency TEXT;
ALTER TABLE exceptions ADD COLUMN action TEXT;
ALTER TABLE exceptions ADD COLUMN evidence TEXT;
-- 0 once a person resolved a rules exception: the rules check whether its cause is gone.
ALTER TABLE exceptions ADD COLUMN rechecked INTEGER NOT NULL DEFAULT 1;
CREATE UNIQUE INDEX exceptions_finding ON exceptions (pattern, order_ref, subject) WHERE subject IS NOT NULL;
CREATE INDEX exceptions_recheck ON exceptions (id) WHERE rechecked = 0;
