//! Pure rules: no I/O and no clock; every function takes the dates it needs as arguments.
//!
//! The collection rules: the creditor's [`policy`], [`eligibility`], civil-date arithmetic
//! ([`dates`]), public-holiday [`calendar`]s of Norway, Sweden and Finland computed from Easter, and
//! exact amounts ([`money`]). The late-payment rules: [`interest`], statutory [`fees`] and the
//! [`claim`] that combines them, every rate and fee from the versioned data tables in `rates/*.toml`
//! ([`tables`]).

pub mod calendar;
pub mod claim;
pub mod dates;
pub mod eligibility;
pub mod fees;
pub mod interest;
pub mod money;
pub mod policy;
pub mod tables;

use rust_decimal::{Decimal, RoundingStrategy};

pub use crate::domain::Country;
/// Who owes: a consumer, or a business (public bodies count as business: the B2B rules,
/// standardkompensasjon, förseningsersättning, vakiokorvaus and the Finnish +8 pp rate, cover them
/// too: NO-24, SE-06, EU-01).
pub use crate::domain::CustomerKind as DebtorKind;
pub use claim::{Claim, ClaimError, ClaimOptions, ClaimRequest, calculate};

/// Rounds money to cents, half away from zero (2.505 → 2.51), and always shows two decimals.
pub fn cents(amount: Decimal) -> Decimal {
    let mut rounded = amount.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
    rounded.rescale(2);
    rounded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cents_rounds_half_away_from_zero_and_keeps_two_decimals() {
        let d = |s: &str| Decimal::from_str_exact(s).unwrap();
        assert_eq!(cents(d("2.505")).to_string(), "2.51");
        assert_eq!(cents(d("2.515")).to_string(), "2.52");
        assert_eq!(cents(d("-2.505")).to_string(), "-2.51");
        assert_eq!(cents(d("2.50499999")).to_string(), "2.50");
        assert_eq!(cents(d("10000")).to_string(), "10000.00");
    }
}
