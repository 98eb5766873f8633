-- A command's payload in a table of its own. A command's row changes two or three times (claimed,
-- acknowledged or retried) and SQLite writes a changed row whole: with its payload of a few KB
-- beside it, each change wrote a page of its own to the WAL and then to the database. Without
-- it, the rows are small, and the commands claimed or acknowledged together share their pages.
CREATE TABLE outbox_payloads (
    command_id INTEGER PRIMARY KEY REFERENCES outbox (id) ON DELETE CASCADE,
    payload    TEXT    NOT NULL
) STRICT;
INSERT INTO outbox_payloads (command_id, payload) SELECT id, payload FROM outbox;
ALTER TABLE outbox DROP COLUMN payload;
