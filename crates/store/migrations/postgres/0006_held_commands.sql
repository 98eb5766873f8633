-- A command written behind an unfinished one of its order and target is held: not due until
-- the one before it finishes (acknowledged, superseded or abandoned), whose writer releases it.
-- A claim then reads the heads of the sequences only, however many commands wait behind them;
-- before, each claim looked at every waiting command again to find the heads.
ALTER TABLE outbox ADD COLUMN held BOOLEAN NOT NULL DEFAULT false;
UPDATE outbox c SET held = true
WHERE c.state = 'pending'
  AND EXISTS (SELECT 1 FROM outbox p
              WHERE p.order_ref = c.order_ref AND p.target = c.target AND p.id < c.id
                AND p.state IN ('pending', 'in_flight', 'dead_lettered'));
DROP INDEX outbox_due;
DROP INDEX outbox_due_by_target;
CREATE INDEX outbox_due ON outbox (next_attempt_at, id) WHERE state = 'pending' AND NOT held;
CREATE INDEX outbox_due_by_target ON outbox (target, next_attempt_at, id) WHERE state = 'pending' AND NOT held;
-- The head of each sequence, found by one probe: its first unfinished command.
CREATE INDEX outbox_unfinished ON outbox (order_ref, target, id) WHERE state IN ('pending', 'in_flight', 'dead_lettered');
