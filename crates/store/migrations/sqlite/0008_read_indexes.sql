-- Every read the API and the CLI make is led by an index: an order's exceptions by its
-- reference, the commands of a time window by their creation, held bodies by their state.
CREATE INDEX exceptions_order ON exceptions (order_ref, id);
CREATE INDEX outbox_created ON outbox (created_at);
CREATE INDEX quarantine_state ON quarantine (state, id);
