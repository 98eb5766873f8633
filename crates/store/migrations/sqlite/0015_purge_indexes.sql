-- The rows that refer to an inbox row or a command, found by index. With foreign keys on, every
-- delete of the purge (an inbox row, a finished command) looks for rows still referring to it:
-- without these, each delete scanned the whole journal and outbox, and the history's purge
-- took time in the square of the store's size.
CREATE INDEX facts_event ON facts (event_row) WHERE event_row IS NOT NULL;
CREATE INDEX facts_command ON facts (command_id) WHERE command_id IS NOT NULL;
CREATE INDEX outbox_event ON outbox (event_row);
