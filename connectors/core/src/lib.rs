//! Forfall's connector contract: what every accounting-platform connector implements, and the
//! normalised shapes it maps the platform's own types to.
//!
//! A connector is a small mapping module (in the style of hyperswitch's `transformers`): it turns
//! the platform's invoices, customers and webhooks into [`RemoteInvoice`], [`RemoteCustomer`] and
//! [`RemoteChange`], and Forfall's payments and status notes into the platform's calls. It declares
//! what it can do in [`Capabilities`] rather than pretending.

pub mod client;

use std::time::Duration;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// The platform's own id of an invoice or customer.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RemoteId(pub String);

/// Where an incremental read resumes; opaque outside the connector that made it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Cursor(pub String);

/// What a connector can do with its platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Capabilities {
    /// Open invoices can be listed page by page.
    pub poll: bool,
    /// The platform pushes changes to a webhook.
    pub webhooks: bool,
    /// A payment collected by the agency can be registered on the invoice.
    pub write_payment: bool,
    /// A status note (transferred, withdrawn, …) can be written on the invoice.
    pub write_note: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DebtorKind {
    Consumer,
    Business,
}

/// A customer as the platform describes it, normalised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteCustomer {
    pub id: RemoteId,
    pub kind: DebtorKind,
    pub name: String,
    pub organisation_number: Option<String>,
    pub email: Option<String>,
    pub address_lines: Vec<String>,
    pub postal_code: Option<String>,
    pub city: Option<String>,
    /// ISO 3166-1 alpha-2.
    pub country: Option<String>,
    /// The platform itself sends reminders or collection notices for this customer: forwarding
    /// would dun the debtor twice, so the gateway warns.
    pub platform_dunning: bool,
}

/// An invoice as the platform describes it, normalised. Amounts are exact decimals in `currency`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteInvoice {
    pub id: RemoteId,
    pub number: String,
    pub customer: RemoteId,
    pub issued: NaiveDate,
    pub due: NaiveDate,
    /// ISO 4217.
    pub currency: String,
    /// Negative for a credit note.
    pub amount: Decimal,
    pub outstanding: Decimal,
    /// KID, OCR or viitenumero.
    pub payment_reference: Option<String>,
    /// The invoice was credited (fully or partly) by a credit note on the platform.
    pub credited: bool,
}

/// One page of a listing, and where the next one starts (`None`: this was the last).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<Cursor>,
}

/// What a webhook says changed. Usually only an id: the gateway then reads the invoice itself, so a
/// forged or replayed delivery can at most cause a harmless re-read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoteChange {
    InvoiceChanged(RemoteId),
    InvoiceDeleted(RemoteId),
    CustomerChanged(RemoteId),
    /// The delivery carried the whole invoice (the generic connector's `invoice.v1`).
    InvoiceSnapshot(RemoteInvoice),
}

/// A payment to register on an invoice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    pub paid_on: NaiveDate,
    pub amount: Decimal,
    pub currency: String,
    /// Sent to the platform where it accepts one, and used to check what it already has.
    pub idempotency_key: String,
}

/// A note on an invoice saying what happened to it at collection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusNote {
    pub text: String,
    pub idempotency_key: String,
}

/// How a call to a platform failed, which decides what the caller does next.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectorError {
    /// The credentials or session were refused: refresh once and retry; if it fails again the
    /// connection needs the creditor's attention.
    #[error("the platform refused the credentials: {0}")]
    Unauthorized(String),
    /// Too many requests: wait at least `retry_after`, then retry.
    #[error("rate limited by the platform (retry after {retry_after:?})")]
    RateLimited { retry_after: Option<Duration> },
    /// A timeout, a 5xx or a dropped connection: retry with backoff.
    #[error("temporary failure: {0}")]
    Transient(String),
    /// The platform refused the request for good (a 4xx): retrying will not help.
    #[error("the platform refused the request ({status}): {detail}")]
    Rejected { status: u16, detail: String },
    #[error("not found on the platform")]
    NotFound,
    /// The platform's answer could not be understood.
    #[error("malformed answer from the platform: {detail}")]
    Malformed { detail: String },
    /// The connector cannot do this at all (see [`Capabilities`]).
    #[error("this platform does not support {0}")]
    Unsupported(&'static str),
}

impl ConnectorError {
    /// Whether the same call may succeed later.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            ConnectorError::RateLimited { .. }
                | ConnectorError::Transient(_)
                | ConnectorError::Malformed { .. }
        )
    }
}

/// Per-call context: the connection's decrypted credentials and settings, never logged.
pub struct Cx {
    pub connection_id: String,
    pub credentials: serde_json::Value,
}

impl std::fmt::Debug for Cx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cx")
            .field("connection_id", &self.connection_id)
            .field("credentials", &"***")
            .finish()
    }
}

/// The contract every platform connector fulfils.
#[async_trait::async_trait]
pub trait Connector: Send + Sync {
    /// The platform's name as used in configuration and URLs: `tripletex`, `generic`, …
    fn platform(&self) -> &'static str;
    fn capabilities(&self) -> Capabilities;
    /// One page of open invoices, starting at `since` (the beginning when `None`).
    async fn open_invoices(
        &self,
        cx: &Cx,
        since: Option<Cursor>,
    ) -> Result<Page<RemoteInvoice>, ConnectorError>;
    async fn invoice(&self, cx: &Cx, id: &RemoteId) -> Result<RemoteInvoice, ConnectorError>;
    async fn customer(&self, cx: &Cx, id: &RemoteId) -> Result<RemoteCustomer, ConnectorError>;
    /// Checks a webhook delivery's signature (and freshness) before anything reads it.
    fn verify_webhook(
        &self,
        secret: &[u8],
        headers: &http::HeaderMap,
        body: &[u8],
    ) -> Result<(), ConnectorError>;
    fn parse_webhook(
        &self,
        headers: &http::HeaderMap,
        body: &[u8],
    ) -> Result<Vec<RemoteChange>, ConnectorError>;
    async fn record_payment(
        &self,
        cx: &Cx,
        id: &RemoteId,
        payment: &Payment,
    ) -> Result<(), ConnectorError>;
    async fn record_status(
        &self,
        cx: &Cx,
        id: &RemoteId,
        note: &StatusNote,
    ) -> Result<(), ConnectorError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_transient_failures_are_retried() {
        assert!(ConnectorError::RateLimited { retry_after: None }.is_retryable());
        assert!(ConnectorError::Transient("503".into()).is_retryable());
        assert!(!ConnectorError::Unauthorized("401".into()).is_retryable());
        assert!(
            !ConnectorError::Rejected {
                status: 422,
                detail: "bad".into()
            }
            .is_retryable()
        );
        assert!(!ConnectorError::NotFound.is_retryable());
    }

    #[test]
    fn a_call_context_never_shows_its_credentials() {
        let cx = Cx {
            connection_id: "conn_1".into(),
            credentials: serde_json::json!({"employeeToken": "secret-token"}),
        };
        assert!(!format!("{cx:?}").contains("secret-token"));
    }
}
