use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::ids::{ConnectionId, CustomerId, InvoiceId};
use super::money::{Currency, Money, MoneyError};

/// What an accounting platform tells about an invoice: the facts Forfall ingests.
/// Upserting the same facts twice changes nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceFacts {
    pub platform_id: String,
    pub number: String,
    /// The platform's id of the customer the invoice is addressed to.
    pub customer_platform_id: String,
    pub issued: NaiveDate,
    pub due: NaiveDate,
    pub currency: Currency,
    /// The invoiced amount; negative for a credit note.
    pub amount: Decimal,
    /// What is still unpaid.
    pub outstanding: Decimal,
    /// KID (NO), OCR (SE) or viitenumero (FI).
    pub payment_reference: Option<String>,
    /// The platform says the invoice was credited: a drop in `outstanding` is a credit, not a
    /// payment.
    #[serde(default)]
    pub credited: bool,
}

impl InvoiceFacts {
    pub fn amount(&self) -> Result<Money, MoneyError> {
        Money::new(self.amount, self.currency)
    }

    pub fn outstanding(&self) -> Result<Money, MoneyError> {
        Money::new(self.outstanding, self.currency)
    }

    /// The fields that differ between `self` (before) and `after`, as `{field: {from, to}}`:
    /// the body of the InvoiceEvent an ingest writes.
    pub fn changes_to(&self, after: &InvoiceFacts) -> serde_json::Map<String, serde_json::Value> {
        let (Ok(before), Ok(after)) = (serde_json::to_value(self), serde_json::to_value(after))
        else {
            return serde_json::Map::new();
        };
        let (serde_json::Value::Object(before), serde_json::Value::Object(after)) = (before, after)
        else {
            return serde_json::Map::new();
        };
        after
            .into_iter()
            .filter(|(field, to)| before.get(field) != Some(to))
            .map(|(field, to)| {
                let from = before
                    .get(&field)
                    .cloned()
                    .unwrap_or(serde_json::Value::Null);
                (field, serde_json::json!({ "from": from, "to": to }))
            })
            .collect()
    }
}

/// A debtor's objection: to the whole claim (`amount: None`) or to a part of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dispute {
    pub amount: Option<Decimal>,
    pub opened_on: NaiveDate,
}

/// Where an invoice stands in its collection lifecycle (the lifecycle engine decides).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Known, not yet due for a decision.
    Open,
    /// Found ineligible when its notice day came (opted out, disputed, …); waits for a change.
    Skipped,
    /// The creditor was warned; transfers on `transfer_on` unless something changes.
    Noticed,
    /// On the weekly list; transfers at the cut-off unless removed.
    Listed,
    /// A pending transfer was called off; waits for a change.
    Cancelled,
    /// A case is open at the collection pipeline.
    Transferred,
    /// The case is paused by a dispute.
    Held,
    /// The debtor paid the creditor directly; the case stays open for the fees.
    PrincipalPaid,
    /// The case was withdrawn.
    Withdrawn,
    /// The case was closed by the pipeline.
    Closed,
    /// Nothing more will ever happen (paid or credited before transfer, prescribed, below minimum).
    Ended,
}

impl Stage {
    pub const ALL: [Stage; 11] = [
        Stage::Open,
        Stage::Skipped,
        Stage::Noticed,
        Stage::Listed,
        Stage::Cancelled,
        Stage::Transferred,
        Stage::Held,
        Stage::PrincipalPaid,
        Stage::Withdrawn,
        Stage::Closed,
        Stage::Ended,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Open => "open",
            Stage::Skipped => "skipped",
            Stage::Noticed => "noticed",
            Stage::Listed => "listed",
            Stage::Cancelled => "cancelled",
            Stage::Transferred => "transferred",
            Stage::Held => "held",
            Stage::PrincipalPaid => "principal_paid",
            Stage::Withdrawn => "withdrawn",
            Stage::Closed => "closed",
            Stage::Ended => "ended",
        }
    }

    pub fn parse(s: &str) -> Option<Stage> {
        Stage::ALL.into_iter().find(|stage| stage.as_str() == s)
    }
}

/// An invoice as Forfall keeps it: the platform's facts plus the creditor's choices and the
/// lifecycle engine's state.
#[derive(Debug, Clone, PartialEq)]
pub struct Invoice {
    pub id: InvoiceId,
    pub connection_id: ConnectionId,
    pub customer_id: Option<CustomerId>,
    pub facts: InvoiceFacts,
    /// The creditor excluded this invoice from collection.
    pub opt_out: bool,
    pub dispute: Option<Dispute>,
    pub stage: Stage,
    /// The next civil day the lifecycle engine must look at this invoice; `None` when only an
    /// event can change anything.
    pub next_action_on: Option<NaiveDate>,
    /// The lifecycle engine's own state of this invoice.
    pub lifecycle: serde_json::Value,
    /// Increases by one with every write; guards read-modify-write against lost updates.
    pub version: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> InvoiceFacts {
        InvoiceFacts {
            platform_id: "1001".into(),
            number: "1001".into(),
            customer_platform_id: "C1".into(),
            issued: NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(),
            due: NaiveDate::from_ymd_opt(2026, 11, 15).unwrap(),
            currency: Currency::NOK,
            amount: Decimal::new(125000, 2),
            outstanding: Decimal::new(125000, 2),
            payment_reference: Some("12345678903".into()),
            credited: false,
        }
    }

    #[test]
    fn changes_name_only_the_fields_that_differ_with_old_and_new_values() {
        let before = facts();
        let mut after = facts();
        after.outstanding = Decimal::new(100000, 2);
        let changes = before.changes_to(&after);
        assert_eq!(changes.len(), 1);
        assert_eq!(
            changes["outstanding"],
            serde_json::json!({"from": "1250.00", "to": "1000.00"})
        );
        assert!(before.changes_to(&facts()).is_empty());
    }

    #[test]
    fn every_stage_round_trips_through_its_name() {
        for stage in Stage::ALL {
            assert_eq!(Stage::parse(stage.as_str()), Some(stage));
        }
    }
}
