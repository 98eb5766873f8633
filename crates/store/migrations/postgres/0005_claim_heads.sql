-- The claim asks, for each due command, whether an earlier command of its order to its target
-- is still unfinished. Through `outbox_sequence` that probe walked every finished predecessor
-- of the order first (a hot order has hundreds), so claims slowed as history grew. This index
-- holds the unfinished commands alone: the probe is one index lookup.
CREATE INDEX outbox_unfinished_sequence ON outbox (order_ref, target, id)
    WHERE state IN ('pending', 'in_flight', 'dead_lettered');
