-- Where each polled system's last poll ended; advanced in the same transaction as the
-- events that poll recorded, so a crash can neither skip changes nor lose the cursor.
CREATE TABLE poll_cursor (
    system     TEXT PRIMARY KEY,
    cursor     TEXT NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;
