//! The lifecycle of one invoice, from open to transferred (and beyond), as pure functions over a
//! serialisable state so that a server can persist the state and call the same functions.
//!
//! - [`apply_event`] applies one event on its day and returns what it causes at once
//!   (`cancelled`, `withdrawn`, `principal_paid`, `held`, `released`, `closed`).
//! - [`evaluate`] is the day's evaluation (`skipped`, `notice_sent`, `listed`, `transferred`, and
//!   cancellations found only then).
//! - [`next_action_on`] is the first day on which `evaluate` can emit anything without a new event;
//!   evaluating before it never emits.

pub mod bench;
mod decision;
mod engine;
mod event;
mod state;

pub use decision::{Action, ActionKind, CORE_ACTIONS, Decision, Explanation, Inputs};
pub use engine::{apply_event, evaluate, next_action_on};
pub use event::{DisputeOutcome, Event, PaymentVia};
pub use state::{Case, Dispute, EndReason, InvoiceFacts, InvoiceState, Stage};
