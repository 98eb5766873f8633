-- Retention (`[retention]`, `handoff purge`). Each step of a purge visits its table's rows once,
-- in id order (arrival order), and keeps where it stopped.
CREATE TABLE retention_cursor (
    step    TEXT PRIMARY KEY,
    last_id INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
-- Commands a purge passed while they were unfinished (pending, in flight, dead-lettered):
-- looked at again by every purge until they finish, so none keeps personal data for ever.
CREATE TABLE retention_deferred (
    step   TEXT    NOT NULL,
    row_id INTEGER NOT NULL,
    PRIMARY KEY (step, row_id)
) STRICT, WITHOUT ROWID;
-- What a held body was, once the body itself is purged.
ALTER TABLE quarantine ADD COLUMN body_sha256 TEXT;
-- Whether an inbox row is still referred to by a held body's replay (before it may go).
CREATE INDEX quarantine_event ON quarantine (event_row) WHERE event_row IS NOT NULL;
