//! Whether an invoice may go to collection, and if not, which reason the creditor is given.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::rules::dates::add_years_clamped;
use crate::rules::policy::Policy;

/// Why an invoice is skipped, cancelled, held or closed.
///
/// The first five are the skip reasons in the contract's precedence order; `Paid`, `Credited` and
/// `DueDateChanged` are cancellation reasons named after the event that caused them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    OptedOut,
    CustomerOptedOut,
    Disputed,
    BelowMinimum,
    Prescribed,
    Paid,
    Credited,
    DueDateChanged,
    /// The agency closed the case without collecting the rest (only ever a case's close reason).
    WrittenOff,
}

impl Reason {
    /// The name used in actions (`"opted_out"`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::OptedOut => "opted_out",
            Reason::CustomerOptedOut => "customer_opted_out",
            Reason::Disputed => "disputed",
            Reason::BelowMinimum => "below_minimum",
            Reason::Prescribed => "prescribed",
            Reason::Paid => "paid",
            Reason::Credited => "credited",
            Reason::DueDateChanged => "due_date_changed",
            Reason::WrittenOff => "written_off",
        }
    }

    /// A final reason never lets the invoice become eligible again.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Reason::BelowMinimum | Reason::Prescribed | Reason::Paid | Reason::Credited
        )
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The facts of an invoice that eligibility depends on, apart from dates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EligibilityFacts {
    /// The creditor excluded this invoice (or pressed stop before a transfer).
    pub opted_out: bool,
    /// The creditor excluded every invoice of this customer.
    pub customer_opted_out: bool,
    /// The debtor disputes the whole outstanding amount.
    pub fully_disputed: bool,
    /// Outstanding minus the disputed part.
    pub collectable: Decimal,
}

/// The first reason, in precedence order, that holds whatever the transfer date: `opted_out`,
/// `customer_opted_out`, `disputed` (a full dispute), `below_minimum` (collectable < `min_amount`).
pub fn standing_reason(facts: &EligibilityFacts, min_amount: Decimal) -> Option<Reason> {
    if facts.opted_out {
        Some(Reason::OptedOut)
    } else if facts.customer_opted_out {
        Some(Reason::CustomerOptedOut)
    } else if facts.fully_disputed {
        Some(Reason::Disputed)
    } else if facts.collectable < min_amount {
        Some(Reason::BelowMinimum)
    } else {
        None
    }
}

/// The first day on which a transfer is barred by limitation (foreldelse): `due + limitation_years`,
/// in calendar years, 29 February clamped to 28 February.
pub fn limitation_date(due: NaiveDate, limitation_years: u32) -> NaiveDate {
    add_years_clamped(due, limitation_years)
}

/// Whether a transfer on `transfer_on` would be on or after the limitation date.
pub fn is_prescribed(due: NaiveDate, limitation_years: u32, transfer_on: NaiveDate) -> bool {
    transfer_on >= limitation_date(due, limitation_years)
}

/// The reason, in the contract's full precedence order, why an invoice may not be transferred on
/// `transfer_on`; `None` when it may.
pub fn ineligibility(
    policy: &Policy,
    facts: &EligibilityFacts,
    due: NaiveDate,
    transfer_on: NaiveDate,
) -> Option<Reason> {
    standing_reason(facts, policy.min_amount).or_else(|| {
        is_prescribed(due, policy.limitation_years, transfer_on).then_some(Reason::Prescribed)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::dates::parse_civil_date;
    use rust_decimal_macros::dec;

    fn d(text: &str) -> NaiveDate {
        parse_civil_date(text).unwrap()
    }

    fn eligible() -> EligibilityFacts {
        EligibilityFacts {
            opted_out: false,
            customer_opted_out: false,
            fully_disputed: false,
            collectable: dec!(100.00),
        }
    }

    fn policy_with_min(min: Decimal) -> Policy {
        Policy {
            min_amount: min,
            ..Policy::default()
        }
    }

    #[test]
    fn eligible_invoice_has_no_reason() {
        let reason = ineligibility(
            &Policy::default(),
            &eligible(),
            d("2026-11-15"),
            d("2026-11-21"),
        );
        assert_eq!(reason, None);
    }

    #[test]
    fn reasons_follow_the_contract_precedence() {
        let policy = policy_with_min(dec!(500));
        let due = d("2020-01-01");
        let late = d("2026-01-01");
        let mut facts = EligibilityFacts {
            opted_out: true,
            customer_opted_out: true,
            fully_disputed: true,
            collectable: dec!(0),
        };
        assert_eq!(
            ineligibility(&policy, &facts, due, late),
            Some(Reason::OptedOut)
        );
        facts.opted_out = false;
        assert_eq!(
            ineligibility(&policy, &facts, due, late),
            Some(Reason::CustomerOptedOut)
        );
        facts.customer_opted_out = false;
        assert_eq!(
            ineligibility(&policy, &facts, due, late),
            Some(Reason::Disputed)
        );
        facts.fully_disputed = false;
        assert_eq!(
            ineligibility(&policy, &facts, due, late),
            Some(Reason::BelowMinimum)
        );
        facts.collectable = dec!(500);
        assert_eq!(
            ineligibility(&policy, &facts, due, late),
            Some(Reason::Prescribed)
        );
    }

    #[test]
    fn collectable_equal_to_minimum_is_eligible() {
        let policy = policy_with_min(dec!(100.00));
        assert_eq!(standing_reason(&eligible(), policy.min_amount), None);
    }

    #[test]
    fn prescribed_on_and_after_the_limitation_date_only() {
        let due = d("2023-11-15");
        assert!(!is_prescribed(due, 3, d("2026-11-14")));
        assert!(is_prescribed(due, 3, d("2026-11-15")));
        assert!(is_prescribed(due, 3, d("2026-11-16")));
    }

    #[test]
    fn leap_day_due_date_prescribes_on_28_february() {
        assert_eq!(limitation_date(d("2024-02-29"), 3), d("2027-02-28"));
        assert!(is_prescribed(d("2024-02-29"), 3, d("2027-02-28")));
        assert!(!is_prescribed(d("2024-02-29"), 3, d("2027-02-27")));
    }

    #[test]
    fn final_reasons_are_below_minimum_prescribed_paid_and_credited() {
        let finals: Vec<Reason> = [
            Reason::OptedOut,
            Reason::CustomerOptedOut,
            Reason::Disputed,
            Reason::BelowMinimum,
            Reason::Prescribed,
            Reason::Paid,
            Reason::Credited,
            Reason::DueDateChanged,
        ]
        .into_iter()
        .filter(|r| r.is_final())
        .collect();
        assert_eq!(
            finals,
            [
                Reason::BelowMinimum,
                Reason::Prescribed,
                Reason::Paid,
                Reason::Credited
            ]
        );
    }

    #[test]
    fn reasons_serialize_in_snake_case() {
        assert_eq!(
            serde_json::to_value(Reason::CustomerOptedOut).unwrap(),
            "customer_opted_out"
        );
        assert_eq!(Reason::DueDateChanged.to_string(), "due_date_changed");
    }
}
