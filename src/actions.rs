//! What a creditor does to one invoice (stop collection, opt out, opt in), applied through the
//! lifecycle engine on the creditor's today and saved with the jobs it causes, in one
//! transaction. `forfall invoices …` uses it, and so will the creditor API.

use crate::clock::Clock;
use crate::domain::EventSource;
use crate::domain::{CreditorId, Invoice, InvoiceId};
use crate::lifecycle::{Decision, Event, InvoiceState, apply_event, evaluate};
use crate::rules::policy::Policy;
use crate::store::{LifecycleUpdate, LoggedEvent, Store, StoreError};
use crate::sync::reevaluate::lifecycle_update;

/// Attempts at saving while ingest changes the same invoice.
pub const SAVE_ATTEMPTS: usize = 3;

#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error("no creditor {0}")]
    UnknownCreditor(String),
    #[error("no invoice {0} for this creditor")]
    UnknownInvoice(String),
    #[error("the invoice cannot be evaluated: {0}")]
    Unusable(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The events a creditor may cause on one invoice.
pub fn creditor_event(name: &str) -> Option<Event> {
    match name {
        "stop" => Some(Event::Stop),
        "opt_out" | "opt-out" => Some(Event::OptOut),
        "opt_in" | "opt-in" => Some(Event::OptIn),
        _ => None,
    }
}

/// Reads the invoice, lets `decide` make the engine's update of it, and saves the update if the
/// invoice is still as it was read; when ingest changed it meanwhile, reads it again (up to
/// [`SAVE_ATTEMPTS`] times). Returns the invoice as read for the saved update, and what `decide`
/// returned beside the update.
pub async fn save_decided<T, E: From<StoreError>>(
    store: &dyn Store,
    creditor: &CreditorId,
    invoice: &InvoiceId,
    missing: impl Fn() -> E,
    mut decide: impl FnMut(&Invoice) -> Result<(LifecycleUpdate, T), E>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(Invoice, T), E> {
    for _ in 0..SAVE_ATTEMPTS {
        let stored = store
            .invoice(creditor, invoice)
            .await?
            .ok_or_else(&missing)?;
        let (update, outcome) = decide(&stored)?;
        match store
            .save_lifecycle(creditor, invoice, stored.version, &update, now)
            .await
        {
            Ok(()) => return Ok((stored, outcome)),
            Err(StoreError::Conflict { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(StoreError::Conflict {
        what: "invoice",
        id: invoice.to_string(),
    }
    .into())
}

/// Applies `event` to the invoice today, logged as the creditor's (source `api`) among the
/// invoice's events; returns the decisions it caused.
pub async fn apply(
    store: &dyn Store,
    clock: &dyn Clock,
    creditor: &CreditorId,
    invoice: &InvoiceId,
    event: &Event,
) -> Result<Vec<Decision>, ActionError> {
    let creditor = store
        .creditor(creditor)
        .await?
        .ok_or_else(|| ActionError::UnknownCreditor(creditor.to_string()))?;
    let policy =
        Policy::from_json(&creditor.policy).map_err(|e| ActionError::Unusable(e.to_string()))?;
    let today = clock.today(creditor.time_zone);
    let (_, decisions) = save_decided(
        store,
        &creditor.id,
        invoice,
        || ActionError::UnknownInvoice(invoice.to_string()),
        |stored| {
            let mut state = serde_json::from_value::<InvoiceState>(stored.lifecycle.clone())
                .map_err(|e| ActionError::Unusable(e.to_string()))?;
            let mut decisions = apply_event(&policy, &mut state, event, today);
            decisions.extend(evaluate(&policy, &mut state, today));
            let mut update = lifecycle_update(
                &policy,
                &stored.connection_id,
                &state,
                &decisions,
                Vec::new(),
                today,
                clock.now(),
            );
            update.logged = Some(LoggedEvent {
                source: EventSource::Api,
                kind: event.type_name().to_owned(),
                change: event.to_json(),
            });
            Ok((update, decisions))
        },
        clock.now(),
    )
    .await?;
    Ok(decisions)
}
