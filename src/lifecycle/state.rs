//! The persisted state of one invoice: its facts and its lifecycle stage.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::rules::eligibility::{EligibilityFacts, Reason};

/// The debtor's current objection. `amount: None` disputes the whole claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dispute {
    pub amount: Option<Decimal>,
}

/// What the gateway knows about an invoice (from the accounting platform and the creditor).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceFacts {
    pub issued: NaiveDate,
    pub due: NaiveDate,
    /// The invoiced amount; negative for a credit note.
    pub amount: Decimal,
    /// Everything paid so far, to the creditor or through collection.
    pub paid: Decimal,
    /// Everything credited so far.
    pub credited: Decimal,
    /// Disputed amounts found not owed (`dispute_resolved` with `debtor_upheld`).
    pub written_off: Decimal,
    pub dispute: Option<Dispute>,
    /// The creditor excluded this invoice (or pressed stop before a transfer).
    pub opt_out: bool,
    /// The creditor excluded every invoice of this customer (copied onto the invoice).
    pub customer_opt_out: bool,
    /// The day the gateway first learned of the invoice.
    pub seen: NaiveDate,
}

impl InvoiceFacts {
    /// A new invoice with nothing paid, credited or disputed.
    pub fn new(issued: NaiveDate, due: NaiveDate, amount: Decimal, seen: NaiveDate) -> Self {
        InvoiceFacts {
            issued,
            due,
            amount,
            paid: Decimal::ZERO,
            credited: Decimal::ZERO,
            written_off: Decimal::ZERO,
            dispute: None,
            opt_out: false,
            customer_opt_out: false,
            seen,
        }
    }

    /// amount − payments − credits − written-off disputes, never below zero.
    pub fn outstanding(&self) -> Decimal {
        (self.amount - self.paid - self.credited - self.written_off).max(Decimal::ZERO)
    }

    /// The part of the outstanding amount under dispute (the whole of it for a full dispute).
    pub fn disputed_part(&self) -> Decimal {
        let outstanding = self.outstanding();
        match self.dispute {
            None => Decimal::ZERO,
            Some(Dispute { amount: None }) => outstanding,
            Some(Dispute {
                amount: Some(amount),
            }) => amount.min(outstanding),
        }
    }

    /// A dispute with no amount, or with an amount at least the outstanding amount.
    pub fn is_fully_disputed(&self) -> bool {
        self.dispute.is_some() && self.disputed_part() >= self.outstanding()
    }

    /// `A` in the contract: outstanding minus the disputed part.
    pub fn collectable(&self) -> Decimal {
        self.outstanding() - self.disputed_part()
    }

    /// Nothing is owed any more.
    pub fn is_settled(&self) -> bool {
        self.outstanding().is_zero()
    }

    pub fn eligibility(&self) -> EligibilityFacts {
        EligibilityFacts {
            opted_out: self.opt_out,
            customer_opted_out: self.customer_opt_out,
            fully_disputed: self.is_fully_disputed(),
            collectable: self.collectable(),
        }
    }
}

/// An open collection case, from the transfer on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Case {
    pub transfer_on: NaiveDate,
    pub free_withdrawal_until: NaiveDate,
    pub first_reminder_on: NaiveDate,
    /// The amount transferred.
    pub amount: Decimal,
}

impl Case {
    /// Withdrawing on `day` costs the creditor a fee.
    pub fn withdrawal_charged(&self, day: NaiveDate) -> bool {
        day > self.free_withdrawal_until
    }
}

/// Why an invoice will never have another action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// Paid in full before a transfer.
    Paid,
    /// Credited in full before a transfer.
    Credited,
    /// Collectable amount below the policy's minimum.
    BelowMinimum,
    /// The transfer would be on or after the limitation date.
    Prescribed,
    /// A disputed amount was found not owed and nothing is left.
    DisputeUpheldForDebtor,
    /// The invoice is a credit note (negative amount) or for nothing (zero).
    NothingToCollect,
}

impl EndReason {
    pub(crate) fn from_final(reason: Reason) -> EndReason {
        match reason {
            Reason::Paid => EndReason::Paid,
            Reason::Credited => EndReason::Credited,
            Reason::Prescribed => EndReason::Prescribed,
            _ => EndReason::BelowMinimum,
        }
    }
}

/// Where an invoice is in its lifecycle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "stage", rename_all = "snake_case")]
pub enum Stage {
    /// Waiting for its first decision (notice or listing). `restart_from` is set when a due-date
    /// change started it over: no decision before that day.
    Open {
        restart_from: Option<NaiveDate>,
    },
    /// Found ineligible and told so once. `eligible_since` is the day the last event made it
    /// eligible again; the next decision comes from that day on.
    Skipped {
        reason: Reason,
        on: NaiveDate,
        eligible_since: Option<NaiveDate>,
    },
    /// The creditor was warned; transfers on `transfer_on` unless removed first.
    Noticed {
        notice_on: NaiveDate,
        transfer_on: NaiveDate,
    },
    /// Listed to the creditor (weekly-list mode); transfers on `transfer_on` unless removed first.
    Listed {
        listed_on: NaiveDate,
        transfer_on: NaiveDate,
    },
    /// Removed before the transfer for a reason that may go away.
    Cancelled {
        reason: Reason,
        on: NaiveDate,
        eligible_since: Option<NaiveDate>,
    },
    /// With the collection pipeline.
    Transferred(Case),
    /// With the collection pipeline, on hold while the debtor disputes the whole claim.
    Held(Case),
    /// Principal paid to the creditor directly; the case stays open for fees.
    PrincipalPaid(Case),
    Withdrawn {
        on: NaiveDate,
        charged: bool,
    },
    Closed {
        on: NaiveDate,
        reason: Reason,
    },
    /// Before any transfer, nothing will ever happen again.
    Ended {
        reason: EndReason,
    },
}

impl Stage {
    /// The open collection case, if any.
    pub fn case(&self) -> Option<&Case> {
        match self {
            Stage::Transferred(case) | Stage::Held(case) | Stage::PrincipalPaid(case) => Some(case),
            _ => None,
        }
    }
}

/// One invoice's persisted state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceState {
    /// The invoice id, as the accounting platform names it.
    pub invoice: String,
    pub facts: InvoiceFacts,
    pub stage: Stage,
    /// How many actions have been decided for the invoice so far (the engine leaves it alone;
    /// the gateway counts when it stores decisions). It numbers each decision's effects, so that
    /// two alike on one day (held, released, held again) are two messages, not one.
    #[serde(default)]
    pub decided: u64,
}

impl InvoiceState {
    /// A newly known invoice. A credit note (negative amount) or an invoice for nothing starts
    /// `Ended`: it never produces an action.
    pub fn new(invoice: impl Into<String>, facts: InvoiceFacts) -> Self {
        let stage = if facts.amount > Decimal::ZERO {
            Stage::Open { restart_from: None }
        } else {
            Stage::Ended {
                reason: EndReason::NothingToCollect,
            }
        };
        InvoiceState {
            invoice: invoice.into(),
            facts,
            stage,
            decided: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::dates::parse_civil_date;
    use rust_decimal_macros::dec;

    fn facts(amount: Decimal) -> InvoiceFacts {
        let day = parse_civil_date("2026-11-01").unwrap();
        InvoiceFacts::new(day, day, amount, day)
    }

    #[test]
    fn partial_dispute_lowers_collectable() {
        let mut f = facts(dec!(1000));
        f.dispute = Some(Dispute {
            amount: Some(dec!(300)),
        });
        assert_eq!(f.collectable(), dec!(700));
        assert!(!f.is_fully_disputed());
    }

    #[test]
    fn dispute_of_at_least_the_outstanding_amount_is_full() {
        let mut f = facts(dec!(1000));
        f.paid = dec!(800);
        f.dispute = Some(Dispute {
            amount: Some(dec!(300)),
        });
        assert!(f.is_fully_disputed());
        assert_eq!(f.collectable(), dec!(0));
        f.dispute = Some(Dispute { amount: None });
        assert!(f.is_fully_disputed());
    }

    #[test]
    fn overpayment_leaves_nothing_outstanding() {
        let mut f = facts(dec!(100));
        f.paid = dec!(150);
        assert_eq!(f.outstanding(), dec!(0));
        assert!(f.is_settled());
    }

    #[test]
    fn credit_note_invoice_starts_ended() {
        let state = InvoiceState::new("CN1", facts(dec!(-50)));
        assert_eq!(
            state.stage,
            Stage::Ended {
                reason: EndReason::NothingToCollect
            }
        );
        let state = InvoiceState::new("1", facts(dec!(50)));
        assert_eq!(state.stage, Stage::Open { restart_from: None });
    }

    #[test]
    fn state_round_trips_through_json() {
        let mut state = InvoiceState::new("1001", facts(dec!(1250.00)));
        let day = parse_civil_date("2026-11-21").unwrap();
        state.stage = Stage::Held(Case {
            transfer_on: day,
            free_withdrawal_until: day,
            first_reminder_on: day,
            amount: dec!(1000.00),
        });
        let text = serde_json::to_string(&state).unwrap();
        let back: InvoiceState = serde_json::from_str(&text).unwrap();
        assert_eq!(back, state);
    }
}
