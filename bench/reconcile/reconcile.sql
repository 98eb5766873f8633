-- The equivalent of `handoff reconcile` in SQL, for DuckDB: the same exports, the same join
-- (by reference, then fuzzy by amount, email, lines and time with the same windows, scores and
-- tie-breaks as handoff_rules::fuzzy), and the same rules as handoff_rules::evaluate with the
-- default deadlines (15 minutes for an ERP order, a payment and a cancellation; 30 for a
-- fulfillment). `{dir}` and `{as_of}` are filled in by duckdb_reconcile.py.

CREATE TEMP TABLE shop AS
SELECT "Name" AS ref,
       'shopify' AS channel,
       min(strptime(nullif("Created at", ''), '%Y-%m-%d %H:%M:%S %z')) AS placed,
       NULL::TIMESTAMPTZ AS updated,
       max(nullif("Total", '')::DECIMAL(18, 2)) AS total,
       max(nullif("Currency", '')) AS currency,
       count(*) AS lines,
       max(nullif(lower("Email"), '')) AS email,
       min(coalesce(strptime(nullif("Fulfilled at", ''), '%Y-%m-%d %H:%M:%S %z'),
                    CASE WHEN "Fulfillment Status" = 'fulfilled'
                         THEN strptime(nullif("Created at", ''), '%Y-%m-%d %H:%M:%S %z') END)) AS fulfilled,
       min(coalesce(strptime(nullif("Cancelled at", ''), '%Y-%m-%d %H:%M:%S %z'),
                    CASE WHEN "Financial Status" IN ('refunded', 'voided')
                         THEN strptime(nullif("Created at", ''), '%Y-%m-%d %H:%M:%S %z') END)) AS closed
FROM read_csv('{dir}/shopify_orders.csv', header = true, all_varchar = true)
GROUP BY "Name";

CREATE TEMP TABLE amazon AS
SELECT "amazon-order-id" AS ref,
       'amazon' AS channel,
       min("purchase-date"::TIMESTAMPTZ) AS placed,
       max("last-updated-date"::TIMESTAMPTZ) AS updated,
       sum(coalesce(nullif("item-price", '')::DECIMAL(18, 2), 0) + coalesce(nullif("item-tax", '')::DECIMAL(18, 2), 0)
           + coalesce(nullif("shipping-price", '')::DECIMAL(18, 2), 0) + coalesce(nullif("shipping-tax", '')::DECIMAL(18, 2), 0)
           + coalesce(nullif("gift-wrap-price", '')::DECIMAL(18, 2), 0) + coalesce(nullif("gift-wrap-tax", '')::DECIMAL(18, 2), 0)
           - coalesce(nullif("item-promotion-discount", '')::DECIMAL(18, 2), 0)
           - coalesce(nullif("ship-promotion-discount", '')::DECIMAL(18, 2), 0)) AS total,
       max("currency") AS currency,
       count(*) AS lines,
       NULL::VARCHAR AS email,
       min(CASE WHEN "order-status" = 'Shipped' THEN "last-updated-date"::TIMESTAMPTZ END) AS fulfilled,
       min(CASE WHEN "order-status" = 'Cancelled' THEN "last-updated-date"::TIMESTAMPTZ END) AS closed
FROM read_csv('{dir}/amazon_orders.txt', header = true, delim = '\t', quote = '', escape = '', all_varchar = true)
GROUP BY "amazon-order-id";

CREATE TEMP TABLE orders AS SELECT * FROM shop UNION ALL SELECT * FROM amazon;

CREATE TEMP TABLE pay AS
SELECT id,
       nullif("order_id (metadata)", '') AS ref,
       strptime("Created (UTC)", '%Y-%m-%d %H:%M:%S')::TIMESTAMPTZ AS ts,
       "Amount"::DECIMAL(18, 2) AS amount,
       upper("Currency") AS currency,
       nullif(lower("Customer Email"), '') AS email,
       ("Status" = 'Refunded'
        OR (coalesce(nullif("Amount Refunded", '')::DECIMAL(18, 2), 0) >= "Amount"::DECIMAL(18, 2)
            AND coalesce(nullif("Amount Refunded", '')::DECIMAL(18, 2), 0) > 0)) AS refunded
FROM read_csv('{dir}/stripe_payments.csv', header = true, all_varchar = true)
WHERE "Status" NOT IN ('Failed', 'Canceled') AND "Captured" <> 'false';

CREATE TEMP TABLE shipped AS
SELECT replace("Created From", 'Sales Order #', '') AS id,
       min(strptime("Date Created", '%m/%d/%Y %I:%M %p')::TIMESTAMPTZ) AS ts
FROM read_csv('{dir}/netsuite_fulfillments.csv', header = true, all_varchar = true)
GROUP BY 1;

CREATE TEMP TABLE erp AS
SELECT e."Document Number" AS id,
       nullif(e."External ID", '') AS ref,
       strptime(e."Date Created", '%m/%d/%Y %I:%M %p')::TIMESTAMPTZ AS ts,
       nullif(e."Amount (Transaction Total)", '')::DECIMAL(18, 2) AS total,
       nullif(e."Currency", '') AS currency,
       nullif(e."Line Count", '')::INTEGER AS lines,
       nullif(lower(e."Email"), '') AS email,
       least(CASE WHEN e."Status" IN ('Pending Billing', 'Billed', 'Fulfilled')
                  THEN coalesce(strptime(nullif(e."Last Modified", ''), '%m/%d/%Y %I:%M %p'),
                                strptime(e."Date Created", '%m/%d/%Y %I:%M %p'))::TIMESTAMPTZ END,
             s.ts) AS fulfilled,
       e."Status" IN ('Cancelled', 'Closed') AS cancelled
FROM read_csv('{dir}/netsuite_orders.csv', header = true, all_varchar = true) e
LEFT JOIN shipped s ON s.id = e."Document Number";

-- Fuzzy: ERP records that name no order, to the best order of the same total and currency
-- placed from 72 hours before to 1 hour after the record.
CREATE TEMP TABLE erp_fuzzy AS
SELECT e.id, o.ref,
       (CASE WHEN o.email IS NOT NULL AND e.email IS NOT NULL THEN 0.9 ELSE 0.55 END)
         + (CASE WHEN o.lines IS NOT NULL AND e.lines IS NOT NULL THEN 0.05 ELSE 0 END) AS confidence
FROM erp e
JOIN orders o ON o.total = e.total AND o.currency = e.currency
             AND o.placed BETWEEN e.ts - INTERVAL 72 HOUR AND e.ts + INTERVAL 1 HOUR
WHERE e.ref IS NULL
  AND (o.email IS NULL OR e.email IS NULL OR o.email = e.email)
  AND (o.lines IS NULL OR e.lines IS NULL OR o.lines = e.lines)
QUALIFY row_number() OVER (
  PARTITION BY e.id
  ORDER BY confidence DESC,
           (o.ref NOT IN (SELECT ref FROM erp WHERE ref IS NOT NULL)) DESC,
           abs(epoch(e.ts) - epoch(o.placed)) ASC) = 1;

-- Fuzzy: payments that name no order, to the best order of the same amount and currency
-- placed within an hour: an order not yet paid first.
CREATE TEMP TABLE pay_fuzzy AS
SELECT p.id, o.ref,
       CASE WHEN o.email IS NOT NULL AND p.email IS NOT NULL THEN 0.95 ELSE 0.6 END AS confidence
FROM pay p
JOIN orders o ON o.total = p.amount AND o.currency = p.currency
             AND o.placed BETWEEN p.ts - INTERVAL 1 HOUR AND p.ts + INTERVAL 1 HOUR
WHERE p.ref IS NULL
  AND (o.email IS NULL OR p.email IS NULL OR o.email = p.email)
QUALIFY row_number() OVER (
  PARTITION BY p.id
  ORDER BY (o.ref NOT IN (SELECT ref FROM pay WHERE ref IS NOT NULL)) DESC,
           confidence DESC,
           abs(epoch(p.ts) - epoch(o.placed)) ASC) = 1;

-- Each ERP record and payment under its order: by reference, else by fuzzy match; a payment
-- matched to nothing is its own ledger, keyed by its id.
CREATE TEMP TABLE erp_of AS
SELECT coalesce(e.ref, f.ref) AS ref, e.*, coalesce(f.confidence, 1.0) AS confidence,
       CASE WHEN e.cancelled THEN 'cancelled' WHEN e.fulfilled IS NOT NULL THEN 'fulfilled' ELSE 'open' END AS state
FROM erp e LEFT JOIN erp_fuzzy f ON f.id = e.id
WHERE e.ref IS NOT NULL OR f.ref IS NOT NULL;

CREATE TEMP TABLE pay_of AS
SELECT coalesce(p.ref, f.ref, p.id) AS ref, p.*
FROM pay p LEFT JOIN pay_fuzzy f ON f.id = p.id;

CREATE TEMP TABLE ledger AS
WITH refs AS (SELECT ref FROM orders UNION SELECT ref FROM erp_of UNION SELECT ref FROM pay_of),
erp_agg AS (
  SELECT ref, count(*) AS records,
         count(*) FILTER (WHERE state <> 'cancelled') AS live,
         count(*) FILTER (WHERE state = 'open') AS live_open,
         max(ts) FILTER (WHERE state <> 'cancelled') AS live_seen,
         min(fulfilled) AS erp_fulfilled
  FROM erp_of GROUP BY ref)
SELECT r.ref, o.channel, o.placed, greatest(o.placed, o.updated) AS updated, o.total, o.currency, o.lines,
       o.fulfilled, o.closed,
       coalesce(a.records, 0) AS records, coalesce(a.live, 0) AS live, coalesce(a.live_open, 0) AS live_open,
       a.live_seen, a.erp_fulfilled
FROM refs r LEFT JOIN orders o USING (ref) LEFT JOIN erp_agg a USING (ref);

CREATE TEMP TABLE findings AS
SELECT 'missing_order' AS pattern, ref FROM ledger
WHERE placed IS NOT NULL AND closed IS NULL AND records = 0
  AND TIMESTAMPTZ '{as_of}' >= placed + INTERVAL 15 MINUTE
UNION ALL
SELECT 'orphaned_payment', p.id FROM pay_of p JOIN ledger l USING (ref)
WHERE l.placed IS NULL AND l.records = 0 AND NOT p.refunded
  AND TIMESTAMPTZ '{as_of}' >= p.ts + INTERVAL 15 MINUTE
UNION ALL
SELECT 'duplicate_draft', ref FROM ledger
WHERE live > 1 AND TIMESTAMPTZ '{as_of}' >= live_seen
UNION ALL
SELECT 'status_void', ref FROM ledger
WHERE closed IS NULL AND fulfilled IS NULL AND placed IS NOT NULL AND erp_fulfilled IS NOT NULL
  AND TIMESTAMPTZ '{as_of}' >= erp_fulfilled + INTERVAL 30 MINUTE
UNION ALL
SELECT 'status_void', ref FROM ledger
WHERE fulfilled IS NOT NULL AND live > 0 AND live = live_open
  AND TIMESTAMPTZ '{as_of}' >= fulfilled + INTERVAL 30 MINUTE
UNION ALL
SELECT 'rollback_gap', ref FROM ledger
WHERE closed IS NOT NULL AND live > 0
  AND TIMESTAMPTZ '{as_of}' >= closed + INTERVAL 15 MINUTE
UNION ALL
SELECT 'transform_mismatch', l.ref FROM ledger l JOIN erp_of e USING (ref)
WHERE e.state <> 'cancelled' AND l.total IS NOT NULL AND e.total IS NOT NULL
  AND (e.currency <> l.currency OR abs(e.total - l.total) > 0.01
       OR (e.lines IS NOT NULL AND l.lines IS NOT NULL AND e.lines <> l.lines))
  AND TIMESTAMPTZ '{as_of}' >= greatest(e.ts, coalesce(l.updated, e.ts)) + INTERVAL 15 MINUTE;

SELECT pattern, count(*) AS exceptions FROM findings GROUP BY pattern ORDER BY pattern;
