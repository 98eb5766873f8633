-- The mapping version an attempt's payload was made with (e.g. netsuite/sales_order@2), so a
-- dead letter can be replayed knowing what ran.
ALTER TABLE attempts ADD COLUMN mapping TEXT;
