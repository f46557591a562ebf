//! Money as decimal strings with at most two decimals ("1250.00"), never floats.

use rust_decimal::Decimal;
use thiserror::Error;

/// The most digits accepted before the decimal point (999 999 999 999.99), so that sums of many
/// amounts can never overflow a `Decimal`.
pub const MAX_INTEGER_DIGITS: usize = 12;

/// Why a text is not an amount.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AmountError {
    #[error("expected a decimal string like \"1250.00\", got {0:?}")]
    NotDecimal(String),
    #[error("at most 2 decimals are allowed, got {0:?}")]
    TooManyDecimals(String),
    #[error("at most {MAX_INTEGER_DIGITS} digits before the decimal point are allowed, got {0:?}")]
    TooLarge(String),
}

/// Parses `-?DIGITS(.D{1,2})?`. No sign `+`, no exponent, no spaces, no thousands separators.
pub fn parse_amount(text: &str) -> Result<Decimal, AmountError> {
    let not_decimal = || AmountError::NotDecimal(text.to_owned());
    let unsigned = text.strip_prefix('-').unwrap_or(text);
    let (integer, fraction) = match unsigned.split_once('.') {
        Some((integer, fraction)) => (integer, Some(fraction)),
        None => (unsigned, None),
    };
    if integer.is_empty() || !integer.bytes().all(|b| b.is_ascii_digit()) {
        return Err(not_decimal());
    }
    if let Some(fraction) = fraction {
        if fraction.is_empty() || !fraction.bytes().all(|b| b.is_ascii_digit()) {
            return Err(not_decimal());
        }
        if fraction.len() > 2 {
            return Err(AmountError::TooManyDecimals(text.to_owned()));
        }
    }
    if integer.len() > MAX_INTEGER_DIGITS {
        return Err(AmountError::TooLarge(text.to_owned()));
    }
    text.parse::<Decimal>().map_err(|_| not_decimal())
}

/// Formats with exactly two decimals ("1000.00"); a negative zero prints as "0.00".
pub fn format_amount(amount: Decimal) -> String {
    let mut rounded = amount.round_dp(2);
    rounded.rescale(2);
    if rounded.is_zero() {
        rounded.set_sign_positive(true);
    }
    rounded.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn accepts_plain_decimal_strings() {
        assert_eq!(parse_amount("1250.00"), Ok(dec!(1250.00)));
        assert_eq!(parse_amount("7"), Ok(dec!(7)));
        assert_eq!(parse_amount("0.5"), Ok(dec!(0.5)));
        assert_eq!(parse_amount("-50.25"), Ok(dec!(-50.25)));
    }

    #[test]
    fn rejects_three_decimals() {
        assert!(matches!(
            parse_amount("1.005"),
            Err(AmountError::TooManyDecimals(_))
        ));
    }

    #[test]
    fn rejects_non_decimal_forms() {
        for text in [
            "", "-", ".5", "5.", "+5", "1e3", " 5", "5 ", "1,00", "NaN", "--1", "1.2.3",
        ] {
            assert!(
                matches!(parse_amount(text), Err(AmountError::NotDecimal(_))),
                "{text:?}"
            );
        }
    }

    #[test]
    fn rejects_more_than_twelve_integer_digits() {
        assert!(parse_amount("999999999999.99").is_ok());
        assert!(matches!(
            parse_amount("1000000000000"),
            Err(AmountError::TooLarge(_))
        ));
    }

    #[test]
    fn formats_with_exactly_two_decimals() {
        assert_eq!(format_amount(dec!(1000)), "1000.00");
        assert_eq!(format_amount(dec!(0.5)), "0.50");
        assert_eq!(format_amount(dec!(-0.00)), "0.00");
        assert_eq!(format_amount(dec!(12.345)), "12.34");
    }
}
