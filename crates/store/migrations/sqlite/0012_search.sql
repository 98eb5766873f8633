-- The console's and the API's searches (crate::search), each filter led by an index whose order
-- is the page's order. An order's channel (the sales channel it names, else its source) and the
-- hash of its customer's email (searchable without a copy of the address) are filled from its
-- events by the writer; rows from before this migration are filled by its hook.
ALTER TABLE orders ADD COLUMN channel TEXT;
ALTER TABLE orders ADD COLUMN email_key TEXT;
ALTER TABLE orders ADD COLUMN state TEXT GENERATED ALWAYS AS
    (CASE WHEN cancelled THEN 'cancelled' WHEN created THEN 'created' ELSE 'received' END) VIRTUAL;
CREATE INDEX orders_seen ON orders (first_seen, order_ref);
CREATE INDEX orders_channel ON orders (channel, first_seen, order_ref);
CREATE INDEX orders_email ON orders (email_key, first_seen, order_ref);
CREATE INDEX orders_state ON orders (state, first_seen, order_ref);
-- Exceptions newest first, by when they were opened (each index ends with the row id).
CREATE INDEX exceptions_opened ON exceptions (opened_at);
CREATE INDEX exceptions_pattern ON exceptions (pattern, opened_at);
CREATE INDEX exceptions_state_opened ON exceptions (state, opened_at);
CREATE INDEX exceptions_flow ON exceptions (flow, opened_at);
CREATE INDEX exceptions_channel ON exceptions (channel, opened_at);
CREATE INDEX exceptions_order_opened ON exceptions (order_ref, opened_at);
-- Commands newest first, by state or target (an order's by outbox_sequence).
CREATE INDEX outbox_state ON outbox (state, id);
CREATE INDEX outbox_target ON outbox (target, id);
CREATE INDEX outbox_order ON outbox (order_ref, id);
-- The audit log newest first, by actor, order or time.
CREATE INDEX audit_at ON audit (at);
CREATE INDEX audit_actor ON audit (actor, at);
CREATE INDEX audit_order_at ON audit (order_ref, at);
