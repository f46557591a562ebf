//! The two append-only logs: what happened to an invoice (InvoiceEvent) and what the rules decided
//! about it and why (Decision, the audit trail).

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::ids::InvoiceId;

/// Where a change came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventSource {
    /// A scheduled or manual sync read it from the platform.
    Poll,
    /// The platform pushed it.
    Webhook,
    /// A creditor or partner said it through the API.
    Api,
    /// The collection pipeline reported it.
    Pipeline,
    /// The lifecycle engine did it.
    Engine,
}

impl EventSource {
    pub fn as_str(self) -> &'static str {
        match self {
            EventSource::Poll => "poll",
            EventSource::Webhook => "webhook",
            EventSource::Api => "api",
            EventSource::Pipeline => "pipeline",
            EventSource::Engine => "engine",
        }
    }

    pub fn parse(s: &str) -> Option<EventSource> {
        [
            EventSource::Poll,
            EventSource::Webhook,
            EventSource::Api,
            EventSource::Pipeline,
            EventSource::Engine,
        ]
        .into_iter()
        .find(|source| source.as_str() == s)
    }
}

/// One entry of an invoice's history. Never updated, never deleted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InvoiceEvent {
    /// Position in the log: increasing in the order the entries were written.
    pub seq: i64,
    pub invoice_id: InvoiceId,
    pub at: DateTime<Utc>,
    pub source: EventSource,
    /// `created`, `changed`, `opted_out`, …
    pub kind: String,
    /// For `changed`: `{field: {from, to}}`; otherwise what the event carried.
    pub change: serde_json::Value,
}

/// One decision of the lifecycle rules: which rule, on what inputs, with what outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    pub seq: i64,
    pub invoice_id: InvoiceId,
    /// The civil day (creditor's zone) the decision is for.
    pub on: NaiveDate,
    pub at: DateTime<Utc>,
    pub rule: String,
    pub inputs: serde_json::Value,
    pub outcome: serde_json::Value,
}

/// A decision about to be appended.
#[derive(Debug, Clone, PartialEq)]
pub struct NewDecision {
    pub on: NaiveDate,
    pub rule: String,
    pub inputs: serde_json::Value,
    pub outcome: serde_json::Value,
}
