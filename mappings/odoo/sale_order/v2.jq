# Odoo sale.order from Handoff's canonical order command. The connector then resolves
# `partner` (by email, else name; created when absent) to `partner_id` and each line's
# `default_code` to its `product_id`. Prices travel as decimal strings (Odoo reads them exactly).
# Version 2 writes the order's money as the channel charged it, from `erp` (computed in Rust):
# each line at its net unit price (a net that does not divide by the quantity in cents is two
# lines of the SKU, so Odoo's rounding of a discount percentage never loses a cent), then the
# shipping and the other charges (an order-level discount as a negative line, tips, duties,
# fees, the tax when the contract sends it as a line) as lines of their own products. Odoo
# computes tax from its products unless the contract says `tax = "line"`.
# `origin` carries the order's name for people and the version for read-back.
.command as $c
| $c.order as $o
| $c.erp as $erp
| ($o.name // $o.order_ref) as $name
| {
    client_order_ref: $c.external_ref,
    origin: (if $c.version then "\($name) [handoff v\($c.version)]" else $name end),
    partner: {email: $o.customer.email, name: $o.customer.name},
    order_line: (
      [$erp.lines[] | {
        default_code: .sku,
        name: .sku,
        product_uom_qty: .quantity,
        price_unit: .unit_price,
      }]
      + [$erp.shipping_line[] | {
        default_code: .sku,
        name: "Shipping",
        product_uom_qty: 1,
        price_unit: .amount,
      }]
      + [$erp.charges[] | {
        default_code: .sku,
        name: .charge,
        product_uom_qty: 1,
        price_unit: .amount,
      }]
    ),
  }
