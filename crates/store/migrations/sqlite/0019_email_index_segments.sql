-- The index of customers' email keys becomes an FTS5 table instead of a B-tree. The keys sort at
-- random, so in a B-tree each order's key lands on a page of its own: a commit of a batch of
-- plans wrote as many index pages to the WAL as it had orders (36 % of the WAL's pages at the
-- intake peak, as many as the events themselves). FTS5 writes the keys of a commit together as
-- one small segment and merges segments as later commits come (a log-structured index), so the
-- keys of a batch share pages. `detail=none`: only which rows hold a key. The order's reference
-- is kept beside its key (an order's rowid is not stable across a VACUUM). The writer adds a
-- batch's keys in one statement at the end of its plans (`writes::apply_plans`): FTS5 writes its
-- segment at every savepoint, and a trigger's statement opens one. The keys already kept are
-- added by this migration's hook (`writes::FILL_EMAIL_INDEX`), and by an import.
DROP INDEX orders_email;
CREATE VIRTUAL TABLE orders_email USING fts5(email_key, order_ref UNINDEXED, detail = none, columnsize = 0);
