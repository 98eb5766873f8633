# Odoo sale.order from Handoff's canonical order command. The connector then resolves
# `partner` (by email, else name; created when absent) to `partner_id` and each line's
# `default_code` to its `product_id`. Prices travel as decimal strings (Odoo reads them exactly);
# a line's `discount_percent` (its discount as a percentage of the gross) is computed in Rust.
# `origin` carries the order's name for people and the version for read-back.
.command as $c
| $c.order as $o
| ($o.name // $o.order_ref) as $name
| {
    client_order_ref: $c.external_ref,
    origin: (if $c.version then "\($name) [handoff v\($c.version)]" else $name end),
    partner: {email: $o.customer.email, name: $o.customer.name},
    order_line: [$o.lines[] | {
      default_code: .sku,
      name: .sku,
      product_uom_qty: .quantity,
      price_unit: .unit_price,
    } + (if .discount_percent then {discount: .discount_percent} else {} end)],
  }
