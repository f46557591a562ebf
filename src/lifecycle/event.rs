//! What can happen to one invoice.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::rules::money::format_amount;

/// Who received a payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentVia {
    /// The creditor directly (seen in the accounting platform).
    Creditor,
    /// The collection pipeline.
    Collection,
}

/// How a dispute ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DisputeOutcome {
    CreditorUpheld,
    DebtorUpheld,
}

/// One event for one invoice. Customer events reach every invoice of the customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    Payment {
        amount: Decimal,
        via: PaymentVia,
    },
    OptOut,
    OptIn,
    CustomerOptOut,
    CustomerOptIn,
    /// `amount: None` disputes the whole claim.
    Dispute {
        amount: Option<Decimal>,
    },
    DisputeResolved {
        outcome: DisputeOutcome,
    },
    CreditNote {
        amount: Decimal,
    },
    /// "Stop collection" (Avslutt inndrivelse): an opt-out before a transfer, a withdrawal after.
    Stop,
    DueDateChanged {
        due: NaiveDate,
    },
}

impl Event {
    /// The contract's name of the event type.
    pub fn type_name(&self) -> &'static str {
        match self {
            Event::Payment { .. } => "payment",
            Event::OptOut => "opt_out",
            Event::OptIn => "opt_in",
            Event::CustomerOptOut => "customer_opt_out",
            Event::CustomerOptIn => "customer_opt_in",
            Event::Dispute { .. } => "dispute",
            Event::DisputeResolved { .. } => "dispute_resolved",
            Event::CreditNote { .. } => "credit_note",
            Event::Stop => "stop",
            Event::DueDateChanged { .. } => "due_date_changed",
        }
    }

    /// The event as it appears in a scenario file (without `on` and the target), for explanations.
    pub fn to_json(&self) -> Value {
        let mut map = Map::new();
        map.insert("type".into(), json!(self.type_name()));
        match self {
            Event::Payment { amount, via } => {
                map.insert("amount".into(), json!(format_amount(*amount)));
                map.insert("via".into(), json!(via));
            }
            Event::Dispute {
                amount: Some(amount),
            }
            | Event::CreditNote { amount } => {
                map.insert("amount".into(), json!(format_amount(*amount)));
            }
            Event::DisputeResolved { outcome } => {
                map.insert("outcome".into(), json!(outcome));
            }
            Event::DueDateChanged { due } => {
                map.insert("due".into(), json!(due));
            }
            Event::Dispute { amount: None }
            | Event::OptOut
            | Event::OptIn
            | Event::CustomerOptOut
            | Event::CustomerOptIn
            | Event::Stop => {}
        }
        Value::Object(map)
    }
}
