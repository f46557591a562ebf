//! The `pipeline` jobs: each builds one message for the agency from what the store holds now and
//! hands it to the sink: pushed (signed, keyed by the job's idempotency key) or, in pull mode,
//! put in the queue the agency fetches from. The message is kept in `pipeline_messages` either
//! way. Messages about one invoice form a chain: a follow-up never overtakes its case's transfer.

use std::sync::Arc;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde_json::Value;

use crate::clock::Clock;
use crate::domain::{Case, CaseState, ConnectionId, Creditor, Invoice, Job, Money, NewCase};
use crate::jobs::effects::PIPELINE_JOB;
use crate::jobs::{Done, Handler, JobError, payload_text as text};
use crate::lifecycle::InvoiceState;
use crate::store::Store;

use super::case::{self, CaseV1, OutboundMessage};
use super::push::{DeliveryError, PushClient};

/// Where messages go.
#[derive(Clone)]
pub enum Sink {
    /// POSTed to the agency's URL, signed.
    Push(PushClient),
    /// Kept for the agency to fetch and acknowledge through the partner API.
    Pull,
}

/// Runs the `pipeline` jobs.
pub struct Forward {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub sink: Sink,
    /// Deliveries at once (the agency's connection pool).
    pub in_flight: usize,
}

fn date(value: &Value, key: &str) -> Result<NaiveDate, JobError> {
    text(value, key)?
        .parse()
        .map_err(|_| JobError::Permanent(format!("the job's `{key}` is not a date")))
}

fn amount(value: &Value, key: &str) -> Result<Decimal, JobError> {
    text(value, key)?
        .parse()
        .map_err(|_| JobError::Permanent(format!("the job's `{key}` is not an amount")))
}

/// Why a case was withdrawn, as the agency reads it, from the engine rule that decided it.
fn withdraw_reason(rule: &str) -> &'static str {
    match rule {
        "case.direct_payment" => "paid_directly",
        "case.credited_in_full" => "credited",
        "case.dispute_upheld_for_debtor" => "dispute_upheld_for_debtor",
        _ => "stopped",
    }
}

impl From<DeliveryError> for JobError {
    fn from(e: DeliveryError) -> JobError {
        match e {
            DeliveryError::Transient {
                detail,
                retry_after,
            } => JobError::Transient {
                detail,
                retry_after,
            },
            DeliveryError::Permanent { status, detail } => {
                JobError::Permanent(format!("the agency answered {status}: {detail}"))
            }
            DeliveryError::Config(detail) => JobError::Permanent(detail),
        }
    }
}

impl Forward {
    async fn invoice(&self, job: &Job) -> Result<(Creditor, Invoice), JobError> {
        let payload = &job.payload;
        let creditor = self
            .store
            .creditor(&job.creditor_id)
            .await?
            .ok_or_else(|| JobError::Permanent(format!("creditor {} is gone", job.creditor_id)))?;
        let connection = ConnectionId::from(text(payload, "connection")?);
        let platform_id = text(payload, "invoice")?;
        let invoice = self
            .store
            .invoice_by_platform_id(&creditor.id, &connection, platform_id)
            .await?
            .ok_or_else(|| JobError::Permanent(format!("invoice {platform_id} is not stored")))?;
        Ok((creditor, invoice))
    }

    /// The case a follow-up is about: the invoice's latest (its transfer ran before, in the
    /// chain).
    async fn case_of(&self, creditor: &Creditor, invoice: &Invoice) -> Result<Case, JobError> {
        self.store
            .latest_case(&creditor.id, &invoice.id)
            .await?
            .ok_or_else(|| {
                JobError::Permanent(format!(
                    "invoice {} has no case at the agency",
                    invoice.facts.number
                ))
            })
    }

    /// The message a job stands for, and the state its case is in once it is delivered.
    async fn message(
        &self,
        job: &Job,
        creditor: &Creditor,
        invoice: &Invoice,
    ) -> Result<(Case, OutboundMessage, Option<CaseState>), JobError> {
        let payload = &job.payload;
        let id = job.idempotency_key.clone();
        // Fixed across retries: every attempt sends the same body.
        let sent_at = job.created_at;
        let kind = text(payload, "message")?;
        if kind == "transfer" {
            let decision = payload.get("decision").cloned().unwrap_or(Value::Null);
            let transfer_on = date(&decision, "on")?;
            let case = self
                .store
                .open_case(
                    &creditor.id,
                    &NewCase {
                        invoice_id: invoice.id.clone(),
                        transfer_key: job.idempotency_key.clone(),
                        amount: Money {
                            amount: amount(&decision, "amount")?,
                            currency: invoice.facts.currency,
                        },
                        transfer_on,
                        free_withdrawal_until: date(&decision, "free_withdrawal_until")?,
                        first_reminder_on: date(&decision, "first_reminder_on")?,
                    },
                    self.clock.now(),
                )
                .await?;
            let document = self.case_document(creditor, invoice, &case).await?;
            return Ok((
                case.clone(),
                OutboundMessage::transfer(id, &document, sent_at),
                None,
            ));
        }
        let case = self.case_of(creditor, invoice).await?;
        let case_id = case.id.to_string();
        let decision = payload.get("decision").cloned().unwrap_or(Value::Null);
        let (message, state) = match kind {
            "withdraw" => {
                let charged = decision
                    .get("charged")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                let rule = payload.get("rule").and_then(Value::as_str).unwrap_or("");
                (
                    OutboundMessage::withdraw(id, case_id, charged, withdraw_reason(rule), sent_at),
                    Some(CaseState::Withdrawn),
                )
            }
            "hold" => (
                OutboundMessage::hold(id, case_id, "disputed", sent_at),
                Some(CaseState::Held),
            ),
            "release" => (
                OutboundMessage::release(id, case_id, sent_at),
                Some(CaseState::Open),
            ),
            "paid_directly" => {
                let keep_open = payload
                    .get("keep_open")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                let outstanding = amount(payload, "outstanding")?;
                (
                    OutboundMessage::paid_directly(
                        id,
                        case_id,
                        amount(payload, "amount")?,
                        invoice.facts.currency.code(),
                        outstanding,
                        keep_open,
                        sent_at,
                    ),
                    (keep_open && outstanding.is_zero()).then_some(CaseState::PrincipalPaid),
                )
            }
            other => {
                return Err(JobError::Permanent(format!(
                    "`{other}` is not a message Forfall sends"
                )));
            }
        };
        Ok((case, message, state))
    }

    /// The case.v1 document: the creditor, the debtor, the invoice as the store holds it now,
    /// the dates of the case, the warnings it had and any dispute.
    async fn case_document(
        &self,
        creditor: &Creditor,
        invoice: &Invoice,
        case: &Case,
    ) -> Result<CaseV1, JobError> {
        let customer = match &invoice.customer_id {
            Some(id) => self.store.customer(&creditor.id, id).await?,
            None => None,
        };
        let warnings = self
            .store
            .decisions(&creditor.id, &invoice.id)
            .await?
            .into_iter()
            .filter_map(|d| {
                let action = d.outcome.get("action").and_then(Value::as_str)?;
                let kind = match action {
                    "notice_sent" => case::WarningKind::Notice,
                    "listed" => case::WarningKind::Listed,
                    _ => return None,
                };
                let transfer_on = d
                    .outcome
                    .get("transfer_on")
                    .and_then(Value::as_str)?
                    .parse()
                    .ok()?;
                Some(case::Warning {
                    kind,
                    on: d.on,
                    transfer_on,
                })
            })
            .collect();
        let Some(customer) = customer else {
            return Err(JobError::Permanent(format!(
                "the debtor of invoice {} is not known",
                invoice.facts.number
            )));
        };
        let mut document = CaseV1::from_domain(
            case,
            creditor,
            &customer.facts,
            &invoice.facts,
            warnings,
            None,
        );
        document.dispute = serde_json::from_value::<InvoiceState>(invoice.lifecycle.clone())
            .ok()
            .and_then(|state| state.facts.dispute)
            .map(|d| case::DisputeDoc {
                amount: d.amount,
                opened_on: invoice.dispute.as_ref().map(|d| d.opened_on),
            });
        Ok(document)
    }
}

#[async_trait::async_trait]
impl Handler for Forward {
    fn kinds(&self) -> &'static [&'static str] {
        &[PIPELINE_JOB]
    }

    fn in_flight(&self) -> usize {
        self.in_flight
    }

    async fn run(&self, job: &Job, _owner: &str) -> Result<Done, JobError> {
        let (creditor, invoice) = self.invoice(job).await?;
        let (case, message, state) = self.message(job, &creditor, &invoice).await?;
        let delivered = match &self.sink {
            Sink::Push(client) => {
                client.deliver(&message).await?;
                true
            }
            Sink::Pull => false,
        };
        let body: Value = serde_json::from_slice(&message.to_json_bytes())
            .map_err(|e| JobError::Permanent(format!("the message is not JSON: {e}")))?;
        self.store
            .record_pipeline_message(
                &creditor.id,
                &case.id,
                &message.id,
                message.kind.as_str(),
                &body,
                delivered,
                self.clock.now(),
            )
            .await?;
        if let Some(state) = state {
            self.store
                .set_case_state(&creditor.id, &case.id, state)
                .await?;
        }
        Ok(Done::Succeeded)
    }
}
