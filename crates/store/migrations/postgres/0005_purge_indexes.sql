-- The journal entries that refer to an inbox row or a command, found by index: every delete of
-- the purge (an inbox row, a finished command) checks its foreign keys, and without these each
-- one scanned the whole journal (SQLite's migration 0015 adds the same).
CREATE INDEX facts_event ON facts (event_row) WHERE event_row IS NOT NULL;
CREATE INDEX facts_command ON facts (command_id) WHERE command_id IS NOT NULL;
