//! The collection pipeline: how a case reaches the collection agency, and how the agency's events
//! come back. `docs/pipeline.md` is the contract an agency integrates against.
//!
//! When an unpaid invoice is due for transfer, the gateway opens a *case* and sends it to the
//! agency as a `case.transfer` message carrying the [`CaseV1`] document; later messages about the
//! same case (`case.withdraw`, `case.hold`, `case.release`, `case.paid_directly`) follow it, one at
//! a time and in order. Every message has an id that is its idempotency key, the same on every
//! retry. The agency reports back with [`AgencyEvent`]s (`payment.received`, `debtor.objected`,
//! `case.closed`, `withdrawal.confirmed`), Standard-Webhooks-signed with the same per-agency
//! secret, to the gateway's `POST /pipeline/events`.
//!
//! Messages travel one of two ways, chosen per agency:
//!
//! - **push**: the gateway POSTs each message to the agency's URL, signed ([`PushClient`], one
//!   attempt per call; the job runner retries transient failures with backoff and dead-letters
//!   permanent ones);
//! - **pull**: the messages wait in the gateway's store until the agency fetches them and
//!   acknowledges each through the partner API (`GET /v1/pipeline/messages`,
//!   `POST /v1/pipeline/messages/{id}/ack`); a message is offered again until acknowledged. That
//!   side is served by the partner API, not by this module: the documents are the same.
//!
//! - [`case`]: the wire documents, written and read strictly;
//! - [`push`]: the push client;
//! - `fake_agency` (feature `fake`): a faithful fake agency on loopback, for tests and demos;
//! - `bench` (feature `fake`): `forfall bench forward`, the gateway's forwarding against a bare
//!   reqwest loop.

#[cfg(feature = "fake")]
pub mod bench;
pub mod case;
pub mod events;
#[cfg(feature = "fake")]
pub mod fake_agency;
pub mod forward;
pub mod push;

pub use case::{
    AgencyEvent, CaseV1, CloseOutcome, Creditor, Debtor, DisputeDoc, DocumentError, InvoiceDoc,
    MessageData, MessageKind, OutboundMessage, Warning, WarningKind,
};
#[cfg(feature = "fake")]
pub use fake_agency::{AgencyCase, AgencyFault, FakeAgency, ReceivedMessage};
pub use push::{Delivered, DeliveryError, PushClient, PushSettings};
