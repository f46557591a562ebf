//! Forfall's connector contract: what every accounting-platform connector implements, and the
//! normalised shapes it maps the platform's own types to.
//!
//! A connector is a small mapping module (in the style of hyperswitch's `transformers`): it turns
//! the platform's invoices, customers and webhooks into [`RemoteInvoice`], [`RemoteCustomer`] and
//! [`RemoteChange`], and Forfall's payments and status notes into the platform's calls. It declares
//! what it can do in [`Capabilities`] rather than pretending.

pub mod client;
pub mod standard_webhooks;

use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
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
    /// A full pass (`ListRequest::full`) lists every invoice the platform still has in the
    /// synced period, so an open invoice the gateway knows that is absent from it must be re-read.
    pub complete_listing: bool,
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
    /// The customer, as the platform describes it at the time of reading.
    pub customer: RemoteCustomer,
    pub issued: NaiveDate,
    pub due: NaiveDate,
    /// ISO 4217.
    pub currency: String,
    /// The invoiced amount, VAT included.
    pub amount: Decimal,
    /// What is still unpaid of `amount` (reminder fees excluded).
    pub outstanding: Decimal,
    /// KID, OCR or viitenumero.
    pub payment_reference: Option<String>,
    /// The invoice was credited (fully or partly) by a credit note on the platform, so a drop in
    /// `outstanding` is a credit, not a payment.
    pub credited: bool,
}

/// What a listing call is asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListRequest {
    /// Where to resume: `None` starts a pass from the beginning.
    pub cursor: Option<Cursor>,
    /// Read everything again, skipping nothing the platform says is unchanged (the nightly resync).
    pub full: bool,
    /// Today in the creditor's time zone (from the gateway's clock): date windows end here.
    pub today: NaiveDate,
}

/// One page of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// Invoices still owed (outstanding above zero), credit notes left out.
    pub open: Vec<RemoteInvoice>,
    /// Invoices in the same listing that are no longer owed (paid, credited): they update the
    /// invoices the gateway knows, and never create one.
    pub closed: Vec<RemoteInvoice>,
    /// Where the next call resumes. On the last page of a pass, where the next pass starts (it may
    /// carry what the connector needs to skip unchanged data next time).
    pub cursor: Cursor,
    /// This page ends the pass.
    pub last: bool,
}

/// What a webhook says changed. Usually only an id: the gateway then reads the invoice itself, so a
/// forged or replayed delivery can at most cause a harmless re-read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoteChange {
    InvoiceChanged(RemoteId),
    /// The invoice no longer exists on the platform.
    InvoiceDeleted(RemoteId),
    /// The delivery carried the whole invoice (the generic connector's `invoice.v1`).
    InvoiceSnapshot(Box<RemoteInvoice>),
    /// Something changed that may affect several invoices (a payment matched, a voucher, a
    /// customer's details): the gateway re-reads the invoices it knows of that customer, or all
    /// open ones when `customer` is `None`.
    Unspecific {
        customer: Option<RemoteId>,
    },
}

/// A verified webhook delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The platform's id of this delivery, the same on every retry of it: the gateway ignores an
    /// id it has seen. `None` when the platform sends none.
    pub id: Option<String>,
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
    /// A webhook delivery whose signature, timestamp or headers do not check out.
    #[error("webhook refused: {0}")]
    BadSignature(String),
    /// The connection's configuration is unusable (a missing token, a bad URL).
    #[error("bad connection settings: {0}")]
    Config(String),
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

/// The contract every platform connector fulfils. One value serves one connection: it holds that
/// connection's credentials, session and rate limiter, and never logs a secret.
#[async_trait::async_trait]
pub trait Connector: Send + Sync {
    /// The platform's name as used in configuration and URLs: `tripletex`, `generic`, …
    fn platform(&self) -> &'static str;
    fn capabilities(&self) -> Capabilities;
    /// One page of a pass over the platform's invoices, sorted into open and closed.
    async fn open_invoices(&self, request: &ListRequest) -> Result<Page, ConnectorError>;
    /// One invoice, whatever its state ([`ConnectorError::NotFound`] when it no longer exists).
    async fn invoice(&self, id: &RemoteId) -> Result<RemoteInvoice, ConnectorError>;
    /// Checks a webhook delivery's signature (and freshness, against `now`) before anything reads
    /// it.
    fn verify_webhook(
        &self,
        secret: &[u8],
        headers: &http::HeaderMap,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Delivery, ConnectorError>;
    fn parse_webhook(
        &self,
        headers: &http::HeaderMap,
        body: &[u8],
    ) -> Result<Vec<RemoteChange>, ConnectorError>;
    /// Asks the platform to deliver changes to `target_url`, signed with `secret`; harmless when
    /// already so.
    async fn subscribe_webhooks(
        &self,
        _target_url: &str,
        _secret: &[u8],
    ) -> Result<(), ConnectorError> {
        Err(ConnectorError::Unsupported("webhook subscriptions"))
    }
    async fn record_payment(&self, id: &RemoteId, payment: &Payment) -> Result<(), ConnectorError>;
    async fn record_status(&self, id: &RemoteId, note: &StatusNote) -> Result<(), ConnectorError>;
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
}
