-- `handoff reconcile` in SQL for DuckDB, written as a data engineer would: each export read
-- once with read_csv's options and types set (no sniffing, no casts of text afterwards), one
-- hash aggregation per export, hash joins (an equi-join plus a time range for the fuzzy
-- matches, anti-joins as LEFT JOINs), window functions for the best candidate, no correlated
-- subqueries. The same join and rules as handoff_rules: by reference, then fuzzy by amount,
-- email, lines and time with the same windows, scores and tie-breaks as handoff_rules::fuzzy,
-- then handoff_rules::evaluate with one deadline for every rule. `{dir}`, `{as_of}`,
-- `{deadline_hours}` and `{timezone}` are filled in by duckdb_reconcile.py.

SET TimeZone = 'UTC';
-- Tables built for one query: no insertion order to keep (DuckDB's advice for large loads).
SET preserve_insertion_order = false;

-- Shopify's order export: one row per line item, the order's fields on its first row. Its times
-- carry an offset: read as TIMESTAMP (DuckDB's CSV reader applies %z only to that type), in UTC.
CREATE TEMP TABLE shop AS
SELECT "Name" AS ref,
       'shopify' AS channel,
       timezone('UTC', min("Created at")) AS placed,
       timezone('UTC', min("Created at")) AS updated,
       max("Total") AS total,
       max("Currency") AS currency,
       count(*) AS lines,
       max(lower("Email")) AS email,
       timezone('UTC', min(coalesce("Fulfilled at", CASE WHEN "Fulfillment Status" = 'fulfilled' THEN "Created at" END))) AS fulfilled,
       -- Cancelled (or voided) first; a refund in full closes it at the order's time (the export
       -- has no refund time).
       timezone('UTC', coalesce(
         min(coalesce("Cancelled at", CASE WHEN "Financial Status" = 'voided' THEN "Created at" END)),
         min(CASE WHEN "Financial Status" = 'refunded' OR "Refunded Amount" >= "Total" AND "Refunded Amount" > 0
                  THEN "Created at" END))) AS closed
FROM read_csv('{dir}/shopify_orders.csv', header = true, delim = ',', quote = '"', escape = '"',
              auto_detect = false, timestampformat = '%Y-%m-%d %H:%M:%S %z',
              columns = {'Name': 'VARCHAR', 'Email': 'VARCHAR', 'Financial Status': 'VARCHAR', 'Paid at': 'VARCHAR',
                         'Fulfillment Status': 'VARCHAR', 'Fulfilled at': 'TIMESTAMP', 'Accepts Marketing': 'VARCHAR',
                         'Currency': 'VARCHAR', 'Subtotal': 'VARCHAR', 'Shipping': 'VARCHAR', 'Taxes': 'VARCHAR',
                         'Total': 'DECIMAL(18,2)', 'Discount Code': 'VARCHAR', 'Discount Amount': 'VARCHAR',
                         'Shipping Method': 'VARCHAR', 'Created at': 'TIMESTAMP', 'Lineitem quantity': 'VARCHAR',
                         'Lineitem name': 'VARCHAR', 'Lineitem price': 'VARCHAR', 'Lineitem compare at price': 'VARCHAR',
                         'Lineitem sku': 'VARCHAR', 'Lineitem requires shipping': 'VARCHAR', 'Lineitem taxable': 'VARCHAR',
                         'Lineitem fulfillment status': 'VARCHAR', 'Billing Name': 'VARCHAR', 'Billing Street': 'VARCHAR',
                         'Billing Address1': 'VARCHAR', 'Billing Address2': 'VARCHAR', 'Billing Company': 'VARCHAR',
                         'Billing City': 'VARCHAR', 'Billing Zip': 'VARCHAR', 'Billing Province': 'VARCHAR',
                         'Billing Country': 'VARCHAR', 'Billing Phone': 'VARCHAR', 'Shipping Name': 'VARCHAR',
                         'Shipping Street': 'VARCHAR', 'Shipping Address1': 'VARCHAR', 'Shipping Address2': 'VARCHAR',
                         'Shipping Company': 'VARCHAR', 'Shipping City': 'VARCHAR', 'Shipping Zip': 'VARCHAR',
                         'Shipping Province': 'VARCHAR', 'Shipping Country': 'VARCHAR', 'Shipping Phone': 'VARCHAR',
                         'Notes': 'VARCHAR', 'Note Attributes': 'VARCHAR', 'Cancelled at': 'TIMESTAMP',
                         'Payment Method': 'VARCHAR', 'Payment Reference': 'VARCHAR', 'Refunded Amount': 'DECIMAL(18,2)',
                         'Vendor': 'VARCHAR', 'Outstanding Balance': 'VARCHAR', 'Employee': 'VARCHAR', 'Location': 'VARCHAR',
                         'Device ID': 'VARCHAR', 'Id': 'VARCHAR', 'Tags': 'VARCHAR', 'Risk Level': 'VARCHAR', 'Source': 'VARCHAR',
                         'Lineitem discount': 'VARCHAR', 'Tax 1 Name': 'VARCHAR', 'Tax 1 Value': 'VARCHAR', 'Phone': 'VARCHAR',
                         'Receipt Number': 'VARCHAR', 'Duties': 'VARCHAR', 'Billing Province Name': 'VARCHAR',
                         'Shipping Province Name': 'VARCHAR', 'Payment ID': 'VARCHAR', 'Payment Terms Name': 'VARCHAR',
                         'Next Payment Due At': 'VARCHAR', 'Payment References': 'VARCHAR'})
GROUP BY "Name";

-- Amazon's All Orders report: tab-separated, no quoting, one row per item; the total is the sum
-- of the items' amounts less the discounts (whatever their sign).
CREATE TEMP TABLE amazon AS
SELECT "amazon-order-id" AS ref,
       'amazon' AS channel,
       min("purchase-date") AS placed,
       greatest(min("purchase-date"), max("last-updated-date")) AS updated,
       sum(coalesce("item-price", 0) + coalesce("item-tax", 0) + coalesce("shipping-price", 0)
           + coalesce("shipping-tax", 0) + coalesce("gift-wrap-price", 0) + coalesce("gift-wrap-tax", 0)
           - abs(coalesce("item-promotion-discount", 0)) - abs(coalesce("ship-promotion-discount", 0))) AS total,
       max("currency") AS currency,
       count(*) AS lines,
       NULL::VARCHAR AS email,
       min(CASE WHEN "order-status" IN ('Shipped', 'Complete') THEN "last-updated-date" END) AS fulfilled,
       min(CASE WHEN "order-status" IN ('Cancelled', 'Canceled') THEN "last-updated-date" END) AS closed
FROM read_csv('{dir}/amazon_orders.txt', header = true, delim = '\t', quote = '', escape = '', auto_detect = false,
              columns = {'amazon-order-id': 'VARCHAR', 'merchant-order-id': 'VARCHAR', 'purchase-date': 'TIMESTAMPTZ',
                         'last-updated-date': 'TIMESTAMPTZ', 'order-status': 'VARCHAR', 'fulfillment-channel': 'VARCHAR',
                         'sales-channel': 'VARCHAR', 'order-channel': 'VARCHAR', 'url': 'VARCHAR',
                         'ship-service-level': 'VARCHAR', 'product-name': 'VARCHAR', 'sku': 'VARCHAR', 'asin': 'VARCHAR',
                         'item-status': 'VARCHAR', 'quantity': 'VARCHAR', 'currency': 'VARCHAR',
                         'item-price': 'DECIMAL(18,2)', 'item-tax': 'DECIMAL(18,2)', 'shipping-price': 'DECIMAL(18,2)',
                         'shipping-tax': 'DECIMAL(18,2)', 'gift-wrap-price': 'DECIMAL(18,2)', 'gift-wrap-tax': 'DECIMAL(18,2)',
                         'item-promotion-discount': 'DECIMAL(18,2)', 'ship-promotion-discount': 'DECIMAL(18,2)',
                         'ship-city': 'VARCHAR', 'ship-state': 'VARCHAR', 'ship-postal-code': 'VARCHAR',
                         'ship-country': 'VARCHAR', 'promotion-ids': 'VARCHAR', 'is-business-order': 'VARCHAR',
                         'purchase-order-number': 'VARCHAR', 'price-designation': 'VARCHAR'})
GROUP BY "amazon-order-id";

CREATE TEMP TABLE orders AS SELECT * FROM shop UNION ALL SELECT * FROM amazon;

-- Stripe's payments export (its current header): captured payments only.
CREATE TEMP TABLE pay AS
SELECT id,
       nullif("order_id (metadata)", '') AS ref,
       timezone('UTC', "Created date (UTC)") AS ts,
       "Amount" AS amount,
       upper("Currency") AS currency,
       nullif(lower("Customer Email"), '') AS email,
       "Status" = 'Refunded' OR ("Amount Refunded" >= "Amount" AND "Amount Refunded" > 0) AS refunded
FROM read_csv('{dir}/stripe_payments.csv', header = true, delim = ',', quote = '"', escape = '"', auto_detect = false,
              timestampformat = '%Y-%m-%d %H:%M:%S',
              columns = {'id': 'VARCHAR', 'Description': 'VARCHAR', 'Seller Message': 'VARCHAR',
                         'Created date (UTC)': 'TIMESTAMP', 'Amount': 'DECIMAL(18,2)', 'Amount Refunded': 'DECIMAL(18,2)',
                         'Currency': 'VARCHAR', 'Converted Amount': 'VARCHAR', 'Converted Amount Refunded': 'VARCHAR',
                         'Fee': 'VARCHAR', 'Tax': 'VARCHAR', 'Converted Currency': 'VARCHAR', 'Mode': 'VARCHAR',
                         'Status': 'VARCHAR', 'Statement Descriptor': 'VARCHAR', 'Customer ID': 'VARCHAR',
                         'Customer Description': 'VARCHAR', 'Customer Email': 'VARCHAR', 'Captured': 'BOOLEAN',
                         'Card ID': 'VARCHAR', 'Card Last4': 'VARCHAR', 'Card Brand': 'VARCHAR', 'Card Funding': 'VARCHAR',
                         'Card Exp Month': 'VARCHAR', 'Card Exp Year': 'VARCHAR', 'Card Name': 'VARCHAR',
                         'Card Address Country': 'VARCHAR', 'Card Issue Country': 'VARCHAR',
                         'Card Fingerprint': 'VARCHAR', 'Card CVC Status': 'VARCHAR', 'Disputed Amount': 'VARCHAR',
                         'Dispute Status': 'VARCHAR', 'Invoice ID': 'VARCHAR', 'Checkout Session ID': 'VARCHAR',
                         'PaymentIntent ID': 'VARCHAR', 'order_id (metadata)': 'VARCHAR'})
WHERE "Status" NOT IN ('Failed', 'Canceled') AND "Captured";

-- NetSuite item fulfillments: the first per sales order, in the store's time zone.
CREATE TEMP TABLE shipped AS
SELECT replace("Created From", 'Sales Order #', '') AS id, min(timezone('{timezone}', "Date Created")) AS ts
FROM read_csv('{dir}/netsuite_fulfillments.csv', header = true, delim = ',', quote = '"', escape = '"',
              auto_detect = false, timestampformat = '%m/%d/%Y %I:%M %p',
              columns = {'Internal ID': 'VARCHAR', 'Document Number': 'VARCHAR', 'Date': 'VARCHAR',
                         'Date Created': 'TIMESTAMP', 'Created From': 'VARCHAR', 'Status': 'VARCHAR', 'Memo': 'VARCHAR'})
GROUP BY 1;

-- The merchant's sales order saved search: a bare date in the store's time zone is read as
-- that day's last second.
CREATE TEMP TABLE erp AS
WITH e AS (
  SELECT "Document Number" AS id,
         nullif("PO/Check Number", '') AS ref,
         timezone('{timezone}', "Date" + INTERVAL 1 DAY - INTERVAL 1 SECOND) AS ts,
         "Amount (Total)" AS total,
         "Currency" AS currency,
         "Lines" AS lines,
         nullif(lower("Email"), '') AS email,
         "Fulfilled" AS flagged,
         "Status" IN ('Cancelled', 'Closed') AS cancelled
  FROM read_csv('{dir}/netsuite_orders.csv', header = true, delim = ',', quote = '"', escape = '"',
                auto_detect = false, dateformat = '%m/%d/%Y',
                columns = {'Internal ID': 'VARCHAR', 'Document Number': 'VARCHAR', 'Date': 'DATE', 'Status': 'VARCHAR',
                           'Name': 'VARCHAR', 'Email': 'VARCHAR', 'PO/Check Number': 'VARCHAR', 'Memo': 'VARCHAR',
                           'Currency': 'VARCHAR', 'Amount (Total)': 'DECIMAL(18,2)', 'Fulfilled': 'BOOLEAN',
                           'Lines': 'INTEGER', 'Subsidiary': 'VARCHAR'}))
SELECT e.id, e.ref, e.ts, e.total, e.currency, e.lines, e.email, e.cancelled,
       least(CASE WHEN e.flagged THEN e.ts END, s.ts) AS fulfilled
FROM e LEFT JOIN shipped s USING (id);

-- Orders the ERP holds a record of by reference, and orders a payment names: the fuzzy passes
-- prefer the others.
CREATE TEMP TABLE erp_refs AS SELECT DISTINCT ref FROM erp WHERE ref IS NOT NULL;
CREATE TEMP TABLE pay_refs AS SELECT DISTINCT ref FROM pay WHERE ref IS NOT NULL;

-- Fuzzy: an ERP record that names no order, to the best order of the same total and currency
-- placed from 72 hours before to 1 hour after it.
CREATE TEMP TABLE erp_fuzzy AS
SELECT e.id, o.ref,
       CASE WHEN o.email IS NOT NULL AND e.email IS NOT NULL THEN 0.9 ELSE 0.55 END
         + CASE WHEN e.lines IS NOT NULL THEN 0.05 ELSE 0 END AS confidence
FROM erp e
JOIN orders o ON o.currency = e.currency AND o.total = e.total
             AND o.placed BETWEEN e.ts - INTERVAL 72 HOUR AND e.ts + INTERVAL 1 HOUR
LEFT JOIN erp_refs r ON r.ref = o.ref
WHERE e.ref IS NULL
  AND (o.email IS NULL OR e.email IS NULL OR o.email = e.email)
  AND (e.lines IS NULL OR o.lines = e.lines)
QUALIFY row_number() OVER (PARTITION BY e.id
                           ORDER BY confidence DESC, r.ref IS NULL DESC, abs(epoch(e.ts) - epoch(o.placed))) = 1;

-- Fuzzy: a payment that names no order, to the best order of the same amount and currency
-- placed within an hour of it: an order no payment names first.
CREATE TEMP TABLE pay_fuzzy AS
SELECT p.id, o.ref,
       CASE WHEN o.email IS NOT NULL AND p.email IS NOT NULL THEN 0.95 ELSE 0.6 END AS confidence
FROM pay p
JOIN orders o ON o.currency = p.currency AND o.total = p.amount
             AND o.placed BETWEEN p.ts - INTERVAL 1 HOUR AND p.ts + INTERVAL 1 HOUR
LEFT JOIN pay_refs r ON r.ref = o.ref
WHERE p.ref IS NULL
  AND (o.email IS NULL OR p.email IS NULL OR o.email = p.email)
QUALIFY row_number() OVER (PARTITION BY p.id
                           ORDER BY r.ref IS NULL DESC, confidence DESC, abs(epoch(p.ts) - epoch(o.placed))) = 1;

-- Each ERP record and payment under its order: by reference, else by fuzzy match. An ERP
-- record matched to nothing is in no ledger; a payment matched to nothing is its own.
CREATE TEMP TABLE erp_of AS
SELECT coalesce(e.ref, f.ref) AS ref, e.id, e.ts, e.total, e.currency, e.lines, e.fulfilled,
       CASE WHEN e.cancelled THEN 'cancelled' WHEN e.fulfilled IS NOT NULL THEN 'fulfilled' ELSE 'open' END AS state
FROM erp e LEFT JOIN erp_fuzzy f USING (id)
WHERE e.ref IS NOT NULL OR f.ref IS NOT NULL;

CREATE TEMP TABLE pay_of AS
SELECT coalesce(p.ref, f.ref, p.id) AS ref, p.id, p.ts, p.refunded
FROM pay p LEFT JOIN pay_fuzzy f USING (id);

CREATE TEMP TABLE erp_agg AS
SELECT ref, count(*) AS records,
       count(*) FILTER (WHERE state <> 'cancelled') AS live,
       count(*) FILTER (WHERE state = 'open') AS live_open,
       max(ts) FILTER (WHERE state <> 'cancelled') AS live_seen,
       min(fulfilled) AS erp_fulfilled
FROM erp_of GROUP BY ref;

CREATE TEMP TABLE ledger AS
WITH refs AS (SELECT ref FROM orders UNION SELECT ref FROM erp_agg UNION SELECT ref FROM pay_of)
SELECT r.ref, o.placed, o.updated, o.total, o.currency, o.lines, o.fulfilled, o.closed,
       coalesce(a.records, 0) AS records, coalesce(a.live, 0) AS live, coalesce(a.live_open, 0) AS live_open,
       a.live_seen, a.erp_fulfilled
FROM refs r LEFT JOIN orders o USING (ref) LEFT JOIN erp_agg a USING (ref);

CREATE TEMP TABLE findings AS
WITH t AS (SELECT TIMESTAMPTZ '{as_of}' AS now, INTERVAL '{deadline_hours}' HOUR AS d)
SELECT 'missing_order' AS pattern, ref FROM ledger, t
WHERE placed IS NOT NULL AND closed IS NULL AND records = 0 AND now >= placed + d
UNION ALL
SELECT 'orphaned_payment', p.id FROM pay_of p JOIN ledger l USING (ref), t
WHERE l.placed IS NULL AND l.records = 0 AND NOT p.refunded AND now >= p.ts + d
UNION ALL
SELECT 'duplicate_draft', ref FROM ledger, t
WHERE live > 1 AND now >= live_seen
UNION ALL
SELECT 'status_void', ref FROM ledger, t
WHERE closed IS NULL AND fulfilled IS NULL AND placed IS NOT NULL AND erp_fulfilled IS NOT NULL
  AND now >= erp_fulfilled + d
UNION ALL
SELECT 'status_void', ref FROM ledger, t
WHERE fulfilled IS NOT NULL AND live > 0 AND live = live_open AND now >= fulfilled + d
UNION ALL
SELECT 'rollback_gap', ref FROM ledger, t
WHERE closed IS NOT NULL AND live > 0 AND now >= closed + d
UNION ALL
SELECT 'transform_mismatch', l.ref FROM ledger l JOIN erp_of e USING (ref), t
WHERE e.state <> 'cancelled' AND l.total IS NOT NULL AND e.total IS NOT NULL
  AND (e.currency <> l.currency OR abs(e.total - l.total) > 0.01
       OR (e.lines IS NOT NULL AND e.lines <> l.lines))
  AND now >= greatest(e.ts, coalesce(l.updated, e.ts)) + d;

SELECT pattern, count(*) AS exceptions FROM findings GROUP BY pattern ORDER BY pattern;
