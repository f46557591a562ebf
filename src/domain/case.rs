use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::ids::{CaseId, CreditorId, InvoiceId};
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
    pub creditor_id: CreditorId,
    pub invoice_id: InvoiceId,
    /// 1 for the invoice's first case; part of the idempotency key of every call about it.
    pub generation: i32,
    pub state: CaseState,
    pub amount: Money,
    pub transfer_on: NaiveDate,
    pub free_withdrawal_until: NaiveDate,
    pub first_reminder_on: NaiveDate,
    pub opened_at: DateTime<Utc>,
    /// The agency confirmed the withdrawal.
    pub withdrawal_confirmed: bool,
}

impl CaseState {
    pub fn as_str(self) -> &'static str {
        match self {
            CaseState::Open => "open",
            CaseState::Held => "held",
            CaseState::PrincipalPaid => "principal_paid",
            CaseState::Withdrawn => "withdrawn",
            CaseState::Closed => "closed",
        }
    }

    pub fn parse(s: &str) -> Option<CaseState> {
        [
            CaseState::Open,
            CaseState::Held,
            CaseState::PrincipalPaid,
            CaseState::Withdrawn,
            CaseState::Closed,
        ]
        .into_iter()
        .find(|state| state.as_str() == s)
    }
}

/// A case about to be opened by its transfer job.
#[derive(Debug, Clone, PartialEq)]
pub struct NewCase {
    pub invoice_id: InvoiceId,
    /// The transfer job's idempotency key: the case is opened once, however often the job runs.
    pub transfer_key: String,
    pub amount: Money,
    pub transfer_on: NaiveDate,
    pub free_withdrawal_until: NaiveDate,
    pub first_reminder_on: NaiveDate,
}

/// A message for the agency as Forfall keeps it: the pull queue, and the record of what was pushed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PipelineMessage {
    /// Its position in the queue (increasing).
    pub seq: i64,
    /// The message id, which is the job's idempotency key.
    pub id: String,
    pub creditor_id: CreditorId,
    pub case_id: CaseId,
    pub kind: String,
    pub body: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub acknowledged_at: Option<DateTime<Utc>>,
}
