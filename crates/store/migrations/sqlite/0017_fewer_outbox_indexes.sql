-- Indexes the write path kept up for nothing: every command enters and leaves the in-flight
-- index (two writes per command) and the order's index, while the index of states (0012) answers
-- the in-flight reads and the index of sequences (0001) an order's commands; the audit's index by
-- order is the head of its index by order and time (0012).
DROP INDEX outbox_in_flight;
DROP INDEX outbox_order;
DROP INDEX audit_order;
