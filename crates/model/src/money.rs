//! Money is a decimal amount with a currency; never a float.

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// An ISO 4217 alphabetic code, stored upper case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency([u8; 3]);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("currency must be a three-letter ISO 4217 code, got {0:?}")]
pub struct CurrencyError(pub String);

impl Currency {
    /// Digits after the decimal point of the currency's minor unit (ISO 4217): 0 for the yen,
    /// 3 for the Kuwaiti dinar, 2 for most.
    pub fn exponent(&self) -> u32 {
        const ZERO: [&str; 16] = [
            "BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "UGX", "VND", "VUV", "XAF", "XOF",
            "XPF",
        ];
        const THREE: [&str; 7] = ["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"];
        if ZERO.contains(&self.as_str()) {
            0
        } else if THREE.contains(&self.as_str()) {
            3
        } else {
            2
        }
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII letters are ever stored.
        std::str::from_utf8(&self.0).expect("currency is ASCII")
    }
}

impl FromStr for Currency {
    type Err = CurrencyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bytes = s.as_bytes();
        if bytes.len() != 3 || !bytes.iter().all(u8::is_ascii_alphabetic) {
            return Err(CurrencyError(s.to_owned()));
        }
        Ok(Currency([bytes[0].to_ascii_uppercase(), bytes[1].to_ascii_uppercase(), bytes[2].to_ascii_uppercase()]))
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Currency {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The largest amount, in magnitude, an event may carry: a thousand trillion in any currency.
/// Every amount and quantity is checked against its bound before any arithmetic, so sums and
/// products of an order's money can never overflow a `Decimal` (a panic on a vendor's data).
pub const MAX_AMOUNT: Decimal = Decimal::from_parts(0x_a4c6_8000, 0x_0003_8d7e, 0, false, 0); // 10^15

/// The largest quantity of one line.
pub const MAX_QUANTITY: u32 = 10_000_000;

/// `amount` within [`MAX_AMOUNT`], or why not.
pub fn within_bounds(amount: Decimal) -> Result<(), String> {
    if amount.abs() > MAX_AMOUNT {
        return Err(format!("{amount} is beyond the largest amount Handoff takes ({MAX_AMOUNT})"));
    }
    Ok(())
}

/// An amount in a currency. Amounts travel as decimal strings (`"19.90"`) so that no JSON
/// reader on the way can turn them into binary floats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    #[serde(with = "rust_decimal::serde::str")]
    pub amount: Decimal,
    pub currency: Currency,
}

impl Money {
    pub fn new(amount: Decimal, currency: Currency) -> Self {
        Money { amount, currency }
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.amount, self.currency)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_largest_amount_is_a_thousand_trillion() {
        assert_eq!(super::MAX_AMOUNT, super::Decimal::from(1_000_000_000_000_000_u64));
        assert!(super::within_bounds(-super::MAX_AMOUNT).is_ok());
        let beyond = super::within_bounds(super::MAX_AMOUNT + super::Decimal::ONE).unwrap_err();
        assert!(beyond.starts_with("1000000000000001 is beyond"), "{beyond}");
    }

    use super::*;

    #[test]
    fn currency_is_normalised_and_checked() {
        assert_eq!("eur".parse::<Currency>().unwrap().as_str(), "EUR");
        assert!("EU".parse::<Currency>().is_err());
        assert!("E1R".parse::<Currency>().is_err());
    }

    #[test]
    fn money_keeps_every_digit() {
        let m: Money = serde_json::from_str(r#"{"amount":"0.10","currency":"USD"}"#).unwrap();
        let sum = m.amount + Decimal::from_str("0.20").unwrap();
        assert_eq!(sum.to_string(), "0.30");
        assert_eq!(serde_json::to_string(&m).unwrap(), r#"{"amount":"0.10","currency":"USD"}"#);
    }

    #[test]
    fn money_refuses_floats() {
        assert!(serde_json::from_str::<Money>(r#"{"amount":0.1,"currency":"USD"}"#).is_err());
    }
}
