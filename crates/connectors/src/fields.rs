//! Reading a vendor's JSON fields: what every mapping of a `serde_json::Value` body needs.

use handoff_model::{Address, Currency};
use jiff::Timestamp;
use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::Value;

use crate::SourceError;
use crate::http_json::invalid;

/// A non-empty string field.
pub(crate) fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_owned)
}

/// A required RFC 3339 timestamp field, refused with its name.
pub(crate) fn time(v: &Value, key: &'static str) -> Result<Timestamp, SourceError> {
    let s = text(v, key).ok_or_else(|| invalid(key, "is missing"))?;
    s.parse().map_err(|_| invalid(key, format!("{s:?} is not a timestamp")))
}

/// How a vendor names the parts of an address.
pub(crate) struct AddressKeys {
    pub line1: &'static str,
    pub line2: &'static str,
    pub city: &'static str,
    pub region: &'static str,
    pub postal_code: &'static str,
    pub country: &'static str,
}

/// The address in `v` under the vendor's `keys`, or `None` when it has no first line.
pub(crate) fn address(v: &Value, keys: &AddressKeys, name: Option<String>) -> Option<Address> {
    text(v, keys.line1).map(|line1| Address {
        name,
        line1,
        line2: text(v, keys.line2),
        city: text(v, keys.city).unwrap_or_default(),
        region: text(v, keys.region),
        postal_code: text(v, keys.postal_code).unwrap_or_default(),
        country: text(v, keys.country).unwrap_or_default(),
    })
}

/// The unit price of a line that a vendor prices as a whole (Amazon `ItemPrice`, eBay
/// `lineItemCost`, WooCommerce `subtotal`), and the rounding to add to the line's discount.
/// The unit price has the amount's own decimals; when the amount does not divide by the
/// quantity (25.00 for 3) it is rounded up (8.34) and the difference (0.02) is returned, so
/// that unit price x quantity - discount is still the vendor's amount to the cent.
pub(crate) fn unit_price(
    amount: Decimal,
    quantity: u32,
    field: &'static str,
) -> Result<(Decimal, Decimal), SourceError> {
    if quantity == 0 {
        return if amount.is_zero() {
            Ok((Decimal::ZERO, Decimal::ZERO))
        } else {
            Err(invalid(field, format!("a line of quantity 0 costs {amount}")))
        };
    }
    // At the amount's own decimals, so that the product is exact (a 28-digit quotient times
    // the quantity can round back to the amount and hide a remainder).
    handoff_model::money::within_bounds(amount).map_err(|reason| invalid(field, reason))?;
    let quantity = Decimal::from(quantity);
    let unit = (amount / quantity).round_dp_with_strategy(amount.scale(), RoundingStrategy::AwayFromZero);
    Ok((unit, unit * quantity - amount))
}

/// A vendor's reader of one money object: its amount and currency, `None` when absent.
pub(crate) type MoneyReader = fn(&Value, &'static str) -> Result<Option<(Decimal, Currency)>, SourceError>;

/// Reads the money of one order with its vendor's reader, every amount in the order's currency.
pub(crate) struct Amounts {
    pub currency: Currency,
    pub money: MoneyReader,
}

impl Amounts {
    /// The amount of a money object (zero when absent); one in another currency is refused.
    pub fn of(&self, v: &Value, field: &'static str) -> Result<Decimal, SourceError> {
        match (self.money)(v, field)? {
            None => Ok(Decimal::ZERO),
            Some((amount, currency)) if currency == self.currency => Ok(amount),
            Some((_, currency)) => Err(invalid(field, format!("is in {currency}, the order in {}", self.currency))),
        }
    }

    /// A discount's size, whatever sign the vendor sends it with (Amazon does not document
    /// one; eBay documents discounts as negative): it is subtracted.
    pub fn discount(&self, v: &Value, field: &'static str) -> Result<Decimal, SourceError> {
        Ok(self.of(v, field)?.abs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    #[test]
    fn a_line_amount_that_does_not_divide_keeps_its_cents_in_the_discount() {
        assert_eq!(unit_price(dec("49.98"), 2, "f").unwrap(), (dec("24.99"), Decimal::ZERO));
        let (unit, rounding) = unit_price(dec("25.00"), 3, "f").unwrap();
        assert_eq!((unit, rounding), (dec("8.34"), dec("0.02")));
        assert_eq!(unit * Decimal::from(3) - rounding, dec("25.00"));
        assert_eq!(unit_price(dec("1000"), 3, "f").unwrap(), (dec("334"), dec("2")), "zero decimals");
        assert_eq!(unit_price(dec("1.000"), 3, "f").unwrap(), (dec("0.334"), dec("0.002")), "three decimals");
        assert_eq!(unit_price(dec("1.00"), 8, "f").unwrap(), (dec("0.13"), dec("0.04")), "never below a cent");
        assert_eq!(unit_price(Decimal::ZERO, 0, "f").unwrap(), (Decimal::ZERO, Decimal::ZERO));
        assert_eq!(unit_price(dec("1.00"), 0, "f").unwrap_err().field(), Some("f"));
    }
}
