# NetSuite salesOrder (REST record API), upserted by external id, from Handoff's canonical
# order command. Input: {"command": {external_ref, version, order}, "settings": {customer_id,
# version_field}}; the order's lines carry `net_amount` (unit price x quantity - discount),
# computed in Rust with decimals. Money is written with `tonumber`, which keeps the decimal's
# digits exactly.
.command as $c
| $c.order as $o
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
    shippingCost: (($o.totals.shipping // "0") | tonumber),
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
    item: {items: [$o.lines[] | {
      item: {externalId: .sku},
      quantity: .quantity,
      rate: (.unit_price | tonumber),
      amount: (.net_amount | tonumber),
    }]},
  }
  + (if $c.version then {(.settings.version_field): $c.version} else {} end)
