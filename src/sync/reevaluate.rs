//! How a change the platform reports becomes lifecycle events, and the engine's verdict on it.
//!
//! The platform only ever reports facts (amounts, dates). The difference between the facts Forfall
//! has and the new ones is turned into the engine's events, applied on the creditor's today, and
//! then the invoice is evaluated for that day:
//!
//! - a new invoice starts with what it already had paid (or credited) when first seen;
//! - a lower outstanding amount is a payment to the creditor, or a credit note when the platform
//!   says the invoice was credited;
//! - a moved due date is `due_date_changed`;
//! - a customer's opt-out that changed since the invoice last saw it is passed on.
//!
//! A higher outstanding amount (a payment reversed) or a changed invoice amount has no event in the
//! engine's contract: the facts are recorded (and shown in the invoice's history), the lifecycle
//! keeps what it knew, and a warning is logged. Reopening a decided case is a creditor's call.

use chrono::NaiveDate;
use rust_decimal::Decimal;

use crate::domain::{ConnectionId, Invoice, InvoiceFacts, NewDecision, NewJob, Stage};
use crate::jobs::effects::{jobs_for, paid_directly_job};
use crate::lifecycle::{
    Decision, Event, InvoiceState, PaymentVia, apply_event, evaluate, next_action_on,
};
use crate::rules::policy::Policy;
use crate::store::{Decide, LifecycleUpdate};

/// The engine on one creditor's day, for ingest.
pub struct Reevaluate<'a> {
    pub policy: &'a Policy,
    pub today: NaiveDate,
    pub connection: &'a ConnectionId,
    /// When the jobs the decisions cause may run.
    pub now: chrono::DateTime<chrono::Utc>,
}

impl Decide for Reevaluate<'_> {
    fn decide(
        &self,
        before: Option<&Invoice>,
        after: &InvoiceFacts,
        customer_opt_out: bool,
    ) -> Option<LifecycleUpdate> {
        let (mut state, events) = match before {
            None => (self.first_sight(after, customer_opt_out), Vec::new()),
            Some(invoice) => {
                let state = serde_json::from_value::<InvoiceState>(invoice.lifecycle.clone())
                    .unwrap_or_else(|_| {
                        // Stored without a lifecycle (an upsert outside ingest): start from the
                        // facts Forfall had.
                        self.first_sight(&invoice.facts, customer_opt_out)
                    });
                let events = events_between(&invoice.facts, after, &state, customer_opt_out);
                (state, events)
            }
        };
        let mut decisions = Vec::new();
        let mut extra_jobs = Vec::new();
        for event in &events {
            let had_case = state.stage.case().is_some();
            decisions.extend(apply_event(self.policy, &mut state, event, self.today));
            if let Event::Payment {
                amount,
                via: PaymentVia::Creditor,
            } = event
                && had_case
            {
                // The agency hears of money the creditor received, whatever becomes of the case.
                extra_jobs.push(paid_directly_job(
                    self.connection,
                    &state.invoice,
                    self.today,
                    *amount,
                    state.facts.outstanding(),
                    state.stage.case().is_some(),
                    self.now,
                ));
            }
        }
        decisions.extend(evaluate(self.policy, &mut state, self.today));
        Some(lifecycle_update(
            self.policy,
            self.connection,
            &state,
            &decisions,
            extra_jobs,
            self.today,
            self.now,
        ))
    }
}

impl Reevaluate<'_> {
    fn first_sight(&self, facts: &InvoiceFacts, customer_opt_out: bool) -> InvoiceState {
        let mut lifecycle =
            crate::lifecycle::InvoiceFacts::new(facts.issued, facts.due, facts.amount, self.today);
        let settled_before = (facts.amount - facts.outstanding).max(Decimal::ZERO);
        if facts.credited {
            lifecycle.credited = settled_before;
        } else {
            lifecycle.paid = settled_before;
        }
        lifecycle.customer_opt_out = customer_opt_out;
        InvoiceState::new(facts.platform_id.clone(), lifecycle)
    }
}

/// The engine's verdict as the store writes it: the state, the decisions with their
/// explanations, and the jobs they cause (`extra_jobs` first: they describe the event the
/// decisions answer).
pub fn lifecycle_update(
    policy: &Policy,
    connection: &ConnectionId,
    state: &InvoiceState,
    decisions: &[Decision],
    extra_jobs: Vec<NewJob>,
    on: chrono::NaiveDate,
    now: chrono::DateTime<chrono::Utc>,
) -> LifecycleUpdate {
    let mut jobs = extra_jobs;
    jobs.extend(jobs_for(connection, decisions, state.decided, now));
    let mut lifecycle = serde_json::to_value(state).unwrap_or_default();
    if let Some(stored) = lifecycle.as_object_mut() {
        let decided = state
            .decided
            .saturating_add(u64::try_from(decisions.len()).unwrap_or(u64::MAX));
        stored.insert("decided".into(), decided.into());
    }
    LifecycleUpdate {
        stage: stage_of(&state.stage),
        next_action_on: next_action_on(policy, state),
        lifecycle,
        decisions: decisions
            .iter()
            .map(|d| NewDecision {
                on: d.action.on,
                rule: d.explain.rule.to_owned(),
                inputs: serde_json::Value::Object(d.explain.inputs.clone()),
                outcome: serde_json::Value::Object(d.action.to_json()),
            })
            .collect(),
        jobs,
        agency_event: None,
        opt_out: state.facts.opt_out,
        dispute: state.facts.dispute.map(|dispute| dispute.amount),
        on,
        logged: None,
    }
}

/// The engine's events that bring `state` from the facts `before` to `after`.
fn events_between(
    before: &InvoiceFacts,
    after: &InvoiceFacts,
    state: &InvoiceState,
    customer_opt_out: bool,
) -> Vec<Event> {
    let mut events = Vec::new();
    if state.facts.customer_opt_out != customer_opt_out {
        events.push(if customer_opt_out {
            Event::CustomerOptOut
        } else {
            Event::CustomerOptIn
        });
    }
    if after.due != before.due {
        events.push(Event::DueDateChanged { due: after.due });
    }
    if after.amount != before.amount {
        tracing::warn!(
            invoice = %after.platform_id,
            "the platform changed the invoice amount; the lifecycle keeps the first amount"
        );
    }
    // What the platform should show if it knows every payment and credit Forfall knows of
    // (collection payments included: they are written back to it). Less is new money; more is
    // a write-back not yet landed, or a payment reversed on the platform.
    let expected =
        (state.facts.amount - state.facts.paid - state.facts.credited).max(Decimal::ZERO);
    let drop = expected.min(before.outstanding) - after.outstanding;
    if drop > Decimal::ZERO {
        events.push(if after.credited {
            Event::CreditNote { amount: drop }
        } else {
            Event::Payment {
                amount: drop,
                via: PaymentVia::Creditor,
            }
        });
    } else if after.outstanding > before.outstanding {
        tracing::warn!(
            invoice = %after.platform_id,
            "the outstanding amount rose on the platform (a payment reversed?); recorded, the lifecycle is unchanged"
        );
    }
    events
}

/// The store's stage column for a lifecycle stage.
pub fn stage_of(stage: &crate::lifecycle::Stage) -> Stage {
    use crate::lifecycle::Stage as L;
    match stage {
        L::Open { .. } => Stage::Open,
        L::Skipped { .. } => Stage::Skipped,
        L::Noticed { .. } => Stage::Noticed,
        L::Listed { .. } => Stage::Listed,
        L::Cancelled { .. } => Stage::Cancelled,
        L::Transferred(_) => Stage::Transferred,
        L::Held(_) => Stage::Held,
        L::PrincipalPaid(_) => Stage::PrincipalPaid,
        L::Withdrawn { .. } => Stage::Withdrawn,
        L::Closed { .. } => Stage::Closed,
        L::Ended { .. } => Stage::Ended,
    }
}
