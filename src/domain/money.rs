//! Money: `Decimal` in code, integer minor units plus an ISO 4217 code in the database.
//!
//! A conversion that would lose precision (more decimals than the currency has) is an error,
//! never a silent rounding.

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MoneyError {
    #[error("`{0}` is not an ISO 4217 currency code this gateway knows")]
    UnknownCurrency(String),
    #[error("{amount} has more decimals than {currency} allows ({exponent})")]
    TooPrecise {
        amount: Decimal,
        currency: Currency,
        exponent: u32,
    },
    #[error("{0} is too large to store")]
    Overflow(Decimal),
    #[error("`{0}` is not a decimal amount")]
    NotDecimal(String),
}

/// The currencies Forfall's creditors invoice in, with their minor-unit exponent (ISO 4217).
/// Data, not code: add a row to support another currency.
const CURRENCIES: &[(&str, u32)] = &[
    ("NOK", 2),
    ("SEK", 2),
    ("DKK", 2),
    ("EUR", 2),
    ("ISK", 0),
    ("GBP", 2),
    ("USD", 2),
    ("CHF", 2),
    ("PLN", 2),
];

/// An ISO 4217 currency code from [`CURRENCIES`].
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Currency(&'static str);

impl Serialize for Currency {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0)
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let code = String::deserialize(d)?;
        code.parse().map_err(serde::de::Error::custom)
    }
}

impl Currency {
    pub const NOK: Currency = Currency("NOK");
    pub const SEK: Currency = Currency("SEK");
    pub const EUR: Currency = Currency("EUR");

    pub fn code(self) -> &'static str {
        self.0
    }

    /// Number of decimals of the minor unit (øre, cent): 2 for NOK, SEK and EUR.
    pub fn exponent(self) -> u32 {
        CURRENCIES
            .iter()
            .find(|(code, _)| *code == self.0)
            .map_or(2, |(_, e)| *e)
    }
}

impl FromStr for Currency {
    type Err = MoneyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CURRENCIES
            .iter()
            .find(|(code, _)| *code == s)
            .map(|(code, _)| Currency(code))
            .ok_or_else(|| MoneyError::UnknownCurrency(s.to_owned()))
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// An amount in a currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Money {
    pub amount: Decimal,
    pub currency: Currency,
}

impl Money {
    /// Builds an amount, refusing one with more decimals than the currency has.
    pub fn new(amount: Decimal, currency: Currency) -> Result<Money, MoneyError> {
        let money = Money { amount, currency };
        money.to_minor_units()?;
        Ok(money)
    }

    /// Parses exact decimal text such as `"1250.00"`.
    pub fn parse(amount: &str, currency: Currency) -> Result<Money, MoneyError> {
        let amount = Decimal::from_str_exact(amount)
            .map_err(|_| MoneyError::NotDecimal(amount.to_owned()))?;
        Money::new(amount, currency)
    }

    pub fn zero(currency: Currency) -> Money {
        Money {
            amount: Decimal::ZERO,
            currency,
        }
    }

    /// The amount in minor units (øre, cents), exactly.
    pub fn to_minor_units(&self) -> Result<i64, MoneyError> {
        let exponent = self.currency.exponent();
        let scaled = self
            .amount
            .checked_mul(Decimal::from(10_i64.pow(exponent)))
            .ok_or(MoneyError::Overflow(self.amount))?;
        if !scaled.fract().is_zero() {
            return Err(MoneyError::TooPrecise {
                amount: self.amount,
                currency: self.currency,
                exponent,
            });
        }
        i64::try_from(scaled).map_err(|_| MoneyError::Overflow(self.amount))
    }

    pub fn from_minor_units(minor: i64, currency: Currency) -> Money {
        Money {
            amount: Decimal::new(minor, currency.exponent()),
            currency,
        }
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let exponent = self.currency.exponent();
        let mut amount = self.amount;
        amount.rescale(exponent.max(amount.scale()));
        write!(f, "{amount} {}", self.currency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minor_units_round_trip_exactly() {
        let m = Money::parse("1250.05", Currency::NOK).unwrap();
        assert_eq!(m.to_minor_units().unwrap(), 125_005);
        assert_eq!(Money::from_minor_units(125_005, Currency::NOK), m);
    }

    #[test]
    fn an_amount_finer_than_the_minor_unit_is_an_error_not_a_rounding() {
        let err = Money::parse("10.005", Currency::EUR).unwrap_err();
        assert!(matches!(err, MoneyError::TooPrecise { exponent: 2, .. }));
        assert!(Money::parse("10.5", "ISK".parse::<Currency>().unwrap()).is_err());
    }

    #[test]
    fn trailing_zeros_beyond_the_minor_unit_are_not_a_loss_of_precision() {
        let m = Money::parse("10.5000", Currency::SEK).unwrap();
        assert_eq!(m.to_minor_units().unwrap(), 1050);
    }

    #[test]
    fn unknown_currency_and_non_decimal_text_are_refused() {
        assert!("XYZ".parse::<Currency>().is_err());
        assert!(Money::parse("12,50", Currency::NOK).is_err());
        assert!(Money::parse("1e3", Currency::NOK).is_err());
    }

    #[test]
    fn an_amount_too_large_for_the_database_is_an_error() {
        let m = Money {
            amount: Decimal::MAX,
            currency: Currency::NOK,
        };
        assert!(matches!(m.to_minor_units(), Err(MoneyError::Overflow(_))));
    }
}
