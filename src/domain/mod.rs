//! The canonical model: what Forfall knows about creditors, their customers and invoices, whatever
//! platform they came from.

mod access;
mod case;
mod connection;
mod creditor;
mod customer;
mod ids;
mod invoice;
mod job;
mod log;
mod money;
mod webhook;

pub use access::{ApiKey, Owner, Partner, Scopes};
pub use case::{Case, CaseState, NewCase, PipelineMessage};
pub use connection::{Connection, ConnectionStatus, SealedCredentials, SyncState};
pub use creditor::{Country, Creditor, Language, NewCreditor, UnknownCountry};
pub use customer::{Customer, CustomerFacts, CustomerKind, NationalId, PostalAddress};
pub use ids::{
    ApiKeyId, CaseId, ConnectionId, CreditorId, CustomerId, EndpointId, EventId, InvoiceId, JobId,
    PartnerId,
};
pub use invoice::{Dispute, Invoice, InvoiceFacts, Stage};
pub use job::{Job, JobAttempt, JobState, NewJob};
pub use log::{Decision, EventSource, InvoiceEvent, NewDecision};
pub use money::{Currency, Money, MoneyError};
pub use webhook::{EVENT_TYPES, EventTypes, WebhookEndpoint, WebhookEvent};
