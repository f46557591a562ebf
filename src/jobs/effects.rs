//! What each of the engine's decisions causes in the outside world, as jobs written in the same
//! transaction as the decision (the outbox). The table is data: one row per action.
//!
//! | action | the agency | the creditor's e-mail | the accounting platform | partners' webhooks |
//! | --- | --- | --- | --- | --- |
//! | `notice_sent` | | warning digest | | `invoice.noticed` |
//! | `listed` | | weekly list digest | | `invoice.listed` |
//! | `transferred` | `case.transfer` | transfer notice digest | status note | `invoice.transferred` |
//! | `withdrawn` | `case.withdraw` | | status note | `case.withdrawn` |
//! | `held` | `case.hold` | | status note | `case.held` |
//! | `released` | `case.release` | | status note | `case.released` |
//! | `principal_paid` | (`case.paid_directly`, from the payment itself) | | status note | `case.principal_paid` |
//! | `closed` | | | status note | `case.closed` |
//! | `cancelled` | | | | `invoice.cancelled` |
//! | `skipped` | | | | |
//!
//! A payment the creditor received directly while a case is open becomes `case.paid_directly`
//! (whatever the engine decides about the case), and a payment the agency collected becomes a
//! payment registered in the platform (and, once registered, the event `payment.synced`). Every
//! job's idempotency key is derived from what it does: the message, the invoice, the day and the
//! decision's number among the invoice's decisions (`transfer:{connection}:{invoice}:{day}:{n}`),
//! so a decision stored twice is one job, and two alike on one day (held, released, held again)
//! are two. The creditor's digest lines are one per invoice, day and kind
//! (`email.warning:{connection}:{invoice}:{day}`). The agency's messages about one invoice form
//! one chain, and so do the writes to one invoice in the platform, so each runs in order.
//!
//! An event for partners is an `event` job ([`EVENT_JOB`]): its handler
//! ([`crate::webhooks::Events`]) writes the event once and enqueues one delivery
//! ([`DELIVERY_JOB`]) per endpoint that hears of it.

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde_json::{Value, json};

use crate::domain::{ConnectionId, NewJob};
use crate::lifecycle::Decision;
use crate::rules::money::format_amount;

/// Messages to the collection agency.
pub const PIPELINE_JOB: &str = "pipeline";
/// Digest e-mails to the creditor.
pub const EMAIL_JOB: &str = "email";
/// Writes to the accounting platform (payments, status notes).
pub const PLATFORM_JOB: &str = "platform";
/// An event for partners' webhook endpoints: written once, then fanned out to deliveries.
pub const EVENT_JOB: &str = "event";
/// One signed POST of one event to one endpoint.
pub const DELIVERY_JOB: &str = "webhook_delivery";

/// One effect of a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// A message to the agency: `case.{message}`.
    Agency(&'static str),
    /// A line in the creditor's digest of this kind.
    Email(&'static str),
    /// A status note on the invoice in the platform.
    StatusNote,
    /// An event of this type for partners' webhook endpoints.
    Event(&'static str),
}

/// The table: what each action causes.
pub const EFFECTS: &[(&str, &[Effect])] = &[
    (
        "notice_sent",
        &[Effect::Email("warning"), Effect::Event("invoice.noticed")],
    ),
    (
        "listed",
        &[
            Effect::Email("weekly_list"),
            Effect::Event("invoice.listed"),
        ],
    ),
    (
        "transferred",
        &[
            Effect::Agency("transfer"),
            Effect::Email("transfer"),
            Effect::StatusNote,
            Effect::Event("invoice.transferred"),
        ],
    ),
    (
        "withdrawn",
        &[
            Effect::Agency("withdraw"),
            Effect::StatusNote,
            Effect::Event("case.withdrawn"),
        ],
    ),
    (
        "held",
        &[
            Effect::Agency("hold"),
            Effect::StatusNote,
            Effect::Event("case.held"),
        ],
    ),
    (
        "released",
        &[
            Effect::Agency("release"),
            Effect::StatusNote,
            Effect::Event("case.released"),
        ],
    ),
    (
        "principal_paid",
        &[Effect::StatusNote, Effect::Event("case.principal_paid")],
    ),
    (
        "closed",
        &[Effect::StatusNote, Effect::Event("case.closed")],
    ),
    ("skipped", &[]),
    ("cancelled", &[Effect::Event("invoice.cancelled")]),
];

/// What an action causes (nothing for an action the table does not know).
pub fn effects_of(action: &str) -> &'static [Effect] {
    EFFECTS
        .iter()
        .find(|(name, _)| *name == action)
        .map_or(&[], |(_, effects)| effects)
}

/// The chain of the agency's messages about one invoice.
pub fn agency_chain(connection: &ConnectionId, invoice: &str) -> String {
    format!("pipeline:{connection}:{invoice}")
}

/// The chain of writes to one invoice in the platform.
pub fn platform_chain(connection: &ConnectionId, invoice: &str) -> String {
    format!("platform:{connection}:{invoice}")
}

/// The jobs the decisions cause, in the decisions' order. `decided_before` is how many
/// decisions the invoice had before these: the first of them is number `decided_before + 1`.
pub fn jobs_for(
    connection: &ConnectionId,
    decisions: &[Decision],
    decided_before: u64,
    now: DateTime<Utc>,
) -> Vec<NewJob> {
    let mut jobs = Vec::new();
    for (number, decision) in (decided_before + 1..).zip(decisions) {
        let action = &decision.action;
        let occurrence = format!("{}:{number}", action.on);
        let invoice = action.invoice.as_str();
        let name = action.kind.name();
        let base = |extra: (&str, Value)| {
            let mut payload = serde_json::Map::new();
            payload.insert("connection".into(), json!(connection.as_str()));
            payload.insert("invoice".into(), json!(invoice));
            payload.insert("on".into(), json!(action.on));
            payload.insert("decision".into(), Value::Object(action.to_json()));
            payload.insert("rule".into(), json!(decision.explain.rule));
            payload.insert(extra.0.into(), extra.1);
            Value::Object(payload)
        };
        for effect in effects_of(name) {
            let job = match effect {
                Effect::Agency(message) => NewJob::new(
                    PIPELINE_JOB,
                    format!("{message}:{connection}:{invoice}:{occurrence}"),
                    base(("message", json!(message))),
                    now,
                )
                .in_chain(agency_chain(connection, invoice)),
                Effect::Email(digest) => NewJob::new(
                    EMAIL_JOB,
                    format!("email.{digest}:{connection}:{invoice}:{}", action.on),
                    base(("digest", json!(digest))),
                    now,
                ),
                Effect::StatusNote => NewJob::new(
                    PLATFORM_JOB,
                    format!("note.{name}:{connection}:{invoice}:{occurrence}"),
                    base(("write", json!("note"))),
                    now,
                )
                .in_chain(platform_chain(connection, invoice)),
                Effect::Event(event_type) => {
                    let mut fields = action.to_json();
                    fields.remove("invoice");
                    fields.remove("action");
                    event_job(
                        event_type,
                        connection,
                        invoice,
                        &occurrence,
                        Value::Object(fields),
                        now,
                    )
                }
            };
            jobs.push(job);
        }
    }
    jobs
}

/// The creditor was paid `amount` directly while the invoice's case is open: the agency hears
/// of it (`keep_open`: the case stays open for the agency's fees).
pub fn paid_directly_job(
    connection: &ConnectionId,
    invoice: &str,
    on: NaiveDate,
    amount: Decimal,
    outstanding: Decimal,
    keep_open: bool,
    now: DateTime<Utc>,
) -> NewJob {
    NewJob::new(
        PIPELINE_JOB,
        format!(
            "paid_directly:{connection}:{invoice}:{on}:{}",
            format_amount(outstanding)
        ),
        json!({
            "connection": connection.as_str(),
            "invoice": invoice,
            "on": on,
            "message": "paid_directly",
            "amount": format_amount(amount),
            "outstanding": format_amount(outstanding),
            "keep_open": keep_open,
        }),
        now,
    )
    .in_chain(agency_chain(connection, invoice))
}

/// The agency collected `amount` (its event `event_id`): registered on the invoice in the
/// platform, once.
pub fn collection_payment_job(
    connection: &ConnectionId,
    invoice: &str,
    event_id: &str,
    amount: Decimal,
    paid_on: NaiveDate,
    now: DateTime<Utc>,
) -> NewJob {
    NewJob::new(
        PLATFORM_JOB,
        format!("payment:{connection}:{invoice}:{event_id}"),
        json!({
            "connection": connection.as_str(),
            "invoice": invoice,
            "write": "payment",
            "amount": format_amount(amount),
            "paid_on": paid_on,
            "event": event_id,
        }),
        now,
    )
    .in_chain(platform_chain(connection, invoice))
}

/// The event `event_type` about `invoice` (the platform's id), once per `occurrence` (the day and
/// number of a decision, the agency's event id of a payment). `fields` become the event's data beside the
/// invoice's ids.
pub fn event_job(
    event_type: &str,
    connection: &ConnectionId,
    invoice: &str,
    occurrence: &str,
    fields: Value,
    now: DateTime<Utc>,
) -> NewJob {
    NewJob::new(
        EVENT_JOB,
        format!("event.{event_type}:{connection}:{invoice}:{occurrence}"),
        json!({
            "event_type": event_type,
            "connection": connection.as_str(),
            "invoice": invoice,
            "fields": fields,
        }),
        now,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lifecycle::CORE_ACTIONS;

    #[test]
    fn every_core_action_has_a_row_in_the_effects_table() {
        for action in CORE_ACTIONS {
            assert!(
                EFFECTS.iter().any(|(name, _)| *name == action),
                "{action} is missing from EFFECTS"
            );
        }
    }

    #[test]
    fn a_transfer_reaches_the_agency_the_creditor_and_the_platform() {
        assert_eq!(
            effects_of("transferred"),
            &[
                Effect::Agency("transfer"),
                Effect::Email("transfer"),
                Effect::StatusNote,
                Effect::Event("invoice.transferred"),
            ]
        );
        assert!(effects_of("skipped").is_empty());
        assert!(effects_of("no_such_action").is_empty());
    }

    #[test]
    fn every_event_the_table_causes_is_a_known_event_type() {
        for (action, effects) in EFFECTS {
            for effect in *effects {
                if let Effect::Event(event_type) = effect {
                    assert!(
                        crate::domain::EVENT_TYPES.contains(event_type),
                        "{action} causes the unknown event {event_type}"
                    );
                }
            }
        }
    }
}
