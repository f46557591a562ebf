use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::ids::{CaseId, InvoiceId};
use super::money::Money;

/// Where a case stands at the collection pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseState {
    Open,
    Held,
    PrincipalPaid,
    Withdrawn,
    Closed,
}

/// A transferred invoice at the collection pipeline. An invoice has at most one open case; a
/// re-transfer after a withdrawal is a new case with the next `generation`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Case {
    pub id: CaseId,
    pub invoice_id: InvoiceId,
    /// 1 for the invoice's first case; part of the idempotency key of every call about it.
    pub generation: i32,
    pub state: CaseState,
    pub amount: Money,
    pub transfer_on: NaiveDate,
    pub free_withdrawal_until: NaiveDate,
    pub first_reminder_on: NaiveDate,
    pub opened_at: DateTime<Utc>,
}
