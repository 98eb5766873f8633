-- Several processes claim commands: a claim names the hub instance that holds it and until when
-- (its lease). A command whose holder's session is gone, or whose lease ran out, is taken back
-- (read back before any resend); the attempt count is the claim's fencing token, so the outcome
-- of a claim taken over is refused (see postgres/writes.rs).
ALTER TABLE outbox ADD COLUMN claimed_by INTEGER;
ALTER TABLE outbox ADD COLUMN lease_until TIMESTAMPTZ;
CREATE INDEX outbox_lease ON outbox (lease_until, id) WHERE state = 'in_flight';
