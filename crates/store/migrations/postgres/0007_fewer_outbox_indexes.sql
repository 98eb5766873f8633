-- Indexes the write path kept up for nothing (as SQLite's 0017): every command enters and leaves
-- the in-flight index and the order's index, while the in-flight reads have the index of states
-- (0003) and the leases' (0002), and an order's commands the index of sequences (0001); the
-- audit's index by order is the head of its index by order and time (0003).
DROP INDEX outbox_in_flight;
DROP INDEX outbox_order;
DROP INDEX audit_order;
