-- The content fingerprint of the last event planned at an order's last version: sources that
-- count versions in whole seconds (Shopify, WooCommerce) can change an order twice in one.
ALTER TABLE orders ADD COLUMN last_fingerprint TEXT;
