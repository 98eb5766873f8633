-- Where the rules' board was left, so a restart does not read the journal from its first row:
-- the journal position the board reflects, and the orders it still followed then (settled
-- orders are not followed; their next fact brings them back from the journal).
CREATE TABLE rules_checkpoint (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    position INTEGER NOT NULL
) STRICT;
CREATE TABLE rules_board (
    order_ref TEXT PRIMARY KEY
) STRICT, WITHOUT ROWID;
-- An order's journal, for the rules to follow it again.
CREATE INDEX facts_order ON facts (order_ref, id);
-- An order's exceptions (the board learns which of its findings are raised).
CREATE INDEX IF NOT EXISTS exceptions_order_ref ON exceptions (order_ref);
-- A dead letter a person abandoned: counted without a scan.
CREATE INDEX outbox_abandoned ON outbox (id) WHERE state = 'abandoned';
-- The dispatcher claims per target (each target has its own limits).
CREATE INDEX outbox_due_by_target ON outbox (target, next_attempt_at, id) WHERE state = 'pending';
