//! Events back from the agency (`POST /pipeline/events`), each applied through the lifecycle
//! engine like any other event, in one transaction with the event's id (a replay writes nothing):
//!
//! | agency event | engine event | what follows |
//! | --- | --- | --- |
//! | `payment.received` | `payment` via `collection` | the payment is registered in the platform; paid in full closes the case |
//! | `debtor.objected` | `dispute` (of the amount, or of all) | a dispute of all that is owed holds the case |
//! | `case.closed` `paid` | `payment` via `collection` of what is still outstanding | the case closes as paid; the rest is registered in the platform |
//! | `case.closed` `written_off` | none: the case closes (`closed`, reason `written_off`) | a status note |
//! | `withdrawal.confirmed` | none | the case is marked confirmed |
//!
//! `case.closed` `paid` when Forfall already counts the claim as paid adds nothing.

use chrono::NaiveDate;
use rust_decimal::Decimal;

use crate::actions::save_decided;
use crate::clock::Clock;
use crate::domain::{CaseId, CaseState, Invoice};
use crate::jobs::effects::collection_payment_job;
use crate::lifecycle::{
    Action, ActionKind, Decision, Event, Inputs, InvoiceState, PaymentVia, Stage, apply_event,
    evaluate,
};
use crate::rules::eligibility::Reason;
use crate::rules::policy::Policy;
use crate::store::{AgencyEventSeen, LifecycleUpdate, Store, StoreError};
use crate::sync::reevaluate::lifecycle_update;

use super::case::{AgencyEvent, CloseOutcome};

/// What became of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Applied,
    /// The event's id was applied before: nothing was written.
    Replayed,
}

#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error("no case `{0}`")]
    UnknownCase(String),
    #[error("the payment is in {got}, the case in {expected}")]
    WrongCurrency { got: String, expected: String },
    #[error("the case's invoice cannot be evaluated: {0}")]
    Unusable(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Applies one verified event (its `webhook-id` is `event_id`).
pub async fn apply(
    store: &dyn Store,
    clock: &dyn Clock,
    event_id: &str,
    event: &AgencyEvent,
) -> Result<Applied, EventError> {
    // A replayed `webhook-id` is acknowledged before anything else is checked: the agency may
    // resend it with a body that no longer fits (a case since closed), and it was applied once.
    if store.pipeline_event_seen(event_id).await? {
        return Ok(Applied::Replayed);
    }
    let case_id = CaseId::from(event.case_id());
    let case = store
        .find_case(&case_id)
        .await?
        .ok_or_else(|| EventError::UnknownCase(event.case_id().to_owned()))?;
    let creditor = store
        .creditor(&case.creditor_id)
        .await?
        .ok_or_else(|| EventError::UnknownCase(event.case_id().to_owned()))?;
    let policy =
        Policy::from_json(&creditor.policy).map_err(|e| EventError::Unusable(e.to_string()))?;
    if let AgencyEvent::PaymentReceived { currency, .. } = event
        && currency != case.amount.currency.code()
    {
        return Err(EventError::WrongCurrency {
            got: currency.clone(),
            expected: case.amount.currency.code().to_owned(),
        });
    }
    let today = clock.today(creditor.time_zone);
    let result = save_decided(
        store,
        &creditor.id,
        &case.invoice_id,
        || EventError::UnknownCase(event.case_id().to_owned()),
        |invoice| decide(&policy, invoice, today, clock.now(), event_id, event),
        clock.now(),
    )
    .await;
    let (invoice, closed) = match result {
        Ok(saved) => saved,
        Err(EventError::Store(StoreError::AlreadyApplied(_))) => return Ok(Applied::Replayed),
        Err(e) => return Err(e),
    };
    if closed
        && let Some(latest) = store.latest_case(&creditor.id, &invoice.id).await?
        && latest.state != CaseState::Closed
    {
        store
            .set_case_state(&creditor.id, &latest.id, CaseState::Closed)
            .await?;
    }
    match event {
        AgencyEvent::CaseClosed { .. } => {
            store
                .set_case_state(&creditor.id, &case.id, CaseState::Closed)
                .await?;
        }
        AgencyEvent::WithdrawalConfirmed { .. } => {
            store.confirm_withdrawal(&creditor.id, &case.id).await?;
        }
        _ => {}
    }
    Ok(Applied::Applied)
}

/// The engine's update for the event on the invoice as read, remembering the event's id; and
/// whether the invoice's case is closed by it.
fn decide(
    policy: &Policy,
    invoice: &Invoice,
    today: NaiveDate,
    now: chrono::DateTime<chrono::Utc>,
    event_id: &str,
    event: &AgencyEvent,
) -> Result<(LifecycleUpdate, bool), EventError> {
    let mut state = serde_json::from_value::<InvoiceState>(invoice.lifecycle.clone())
        .map_err(|e| EventError::Unusable(e.to_string()))?;
    let connection = &invoice.connection_id;
    let mut decisions = Vec::new();
    let mut jobs = Vec::new();
    let collected = |amount: Decimal, paid_on: NaiveDate, jobs: &mut Vec<_>| {
        jobs.push(collection_payment_job(
            connection,
            &invoice.facts.platform_id,
            event_id,
            amount,
            paid_on,
            now,
        ));
        Event::Payment {
            amount,
            via: PaymentVia::Collection,
        }
    };
    let engine_event = match event {
        AgencyEvent::PaymentReceived {
            amount, paid_on, ..
        } => Some(collected(*amount, *paid_on, &mut jobs)),
        AgencyEvent::DebtorObjected { amount, .. } => Some(Event::Dispute { amount: *amount }),
        AgencyEvent::CaseClosed {
            outcome: CloseOutcome::Paid,
            ..
        } => {
            let rest = state.facts.outstanding();
            (rest > Decimal::ZERO).then(|| collected(rest, today, &mut jobs))
        }
        AgencyEvent::CaseClosed {
            outcome: CloseOutcome::WrittenOff,
            ..
        } => {
            if let Some(case) = state.stage.case().copied() {
                state.stage = Stage::Closed {
                    on: today,
                    reason: Reason::WrittenOff,
                };
                decisions.push(Decision::new(
                    Action {
                        on: today,
                        invoice: state.invoice.clone(),
                        kind: ActionKind::Closed {
                            reason: Reason::WrittenOff,
                        },
                    },
                    "case.written_off_by_agency",
                    Inputs::new()
                        .date("transfer_on", case.transfer_on)
                        .amount("outstanding", state.facts.outstanding()),
                ));
            }
            None
        }
        AgencyEvent::WithdrawalConfirmed { .. } => None,
    };
    if let Some(engine_event) = &engine_event {
        decisions.extend(apply_event(policy, &mut state, engine_event, today));
        decisions.extend(evaluate(policy, &mut state, today));
    }
    let mut update = lifecycle_update(policy, connection, &state, &decisions, jobs, today, now);
    update.agency_event = Some(AgencyEventSeen {
        id: event_id.to_owned(),
        case_id: CaseId::from(event.case_id()),
        kind: event.kind().to_owned(),
    });
    Ok((update, matches!(state.stage, Stage::Closed { .. })))
}
