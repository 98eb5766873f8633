# NetSuite salesOrder (REST record API), upserted by external id, from Handoff's canonical
# order command. Input: {"command": {external_ref, version, order, erp}, "settings":
# {customer_id, version_field, tax, charge_items}}. Version 2 writes the order's money as the
# channel charged it: `erp` (computed in Rust with decimals) holds each line net of its
# discounts (split in two lines when the net does not divide by the quantity in cents), the
# shipping net of its discounts, and the other charges (an order-level discount as a negative
# line, tips, duties, fees, and the tax when the contract sends it as a line), each a line of
# its own item. NetSuite computes its tax itself unless the contract says `tax = "line"`.
# Money is written with `tonumber`, which keeps the decimal's digits exactly.
.command as $c
| $c.order as $o
| $c.erp as $erp
| ($o.name // $o.order_ref) as $name
| {
    externalId: $c.external_ref,
    entity: (if .settings.customer_id then {id: .settings.customer_id} else {externalId: $o.customer.email} end),
  }
  + (if $o.customer.email then {email: $o.customer.email} else {} end)
  + {
    tranDate: $o.placed_at[0:10],
    currency: {externalId: $o.currency},
    otherRefNum: $name,
    memo: "\($o.channel // "Handoff") order \($name)",
    shippingCost: ($erp.shipping | tonumber),
  }
  + (if $o.shipping_address then {
      shippingAddress: (
        {}
        + (if $o.shipping_address.name then {addressee: $o.shipping_address.name} else {} end)
        + {addr1: $o.shipping_address.line1}
        + (if $o.shipping_address.line2 then {addr2: $o.shipping_address.line2} else {} end)
        + {city: $o.shipping_address.city}
        + (if $o.shipping_address.region then {state: $o.shipping_address.region} else {} end)
        + {zip: $o.shipping_address.postal_code, country: {id: $o.shipping_address.country}}
      )
    } else {} end)
  + {
    item: {items: (
      [$erp.lines[] | {
        item: {externalId: .sku},
        quantity: .quantity,
        rate: (.unit_price | tonumber),
        amount: (.amount | tonumber),
      }]
      + [$erp.charges[] | {
        item: {externalId: .sku},
        quantity: 1,
        rate: (.amount | tonumber),
        amount: (.amount | tonumber),
      }]
    )},
  }
  + (if $c.version then {(.settings.version_field): $c.version} else {} end)
