//! The `platform` jobs: what happened at collection, written back to the accounting platform.
//!
//! - **Payments the agency collected** are registered on the invoice (`record_payment`), never
//!   twice. The platform is read first: before the first write the job saves, as its checkpoint,
//!   the outstanding amount the platform showed; a later attempt (after a crash or a timeout
//!   whose answer was lost) that finds the outstanding amount already lowered by the payment
//!   takes the write as done. Nothing is written beyond what the platform shows outstanding
//!   (a payment is never turned into an overpayment), and the job's idempotency key goes with
//!   the write where the platform takes one.
//! - **Status notes** (transferred, withdrawn, held, released, closed) go on the invoice where
//!   the platform supports them (`record_status`); where it does not (Tripletex has no documented
//!   write for a note), the job ends as done with nothing to write.

use std::sync::Arc;

use chrono::NaiveDate;
use forfall_connector::{ConnectorError, Payment, RemoteId, StatusNote};
use rust_decimal::Decimal;
use serde_json::{Value, json};

use crate::domain::{ConnectionId, Job};
use crate::jobs::effects::{PLATFORM_JOB, event_job};
use crate::jobs::{Done, Handler, JobError, payload_text as text};
use crate::rules::money::format_amount;

use super::{Ingest, SyncError};

/// Runs the `platform` jobs.
pub struct WriteBack {
    pub ingest: Arc<Ingest>,
}

impl From<ConnectorError> for JobError {
    fn from(e: ConnectorError) -> JobError {
        match e {
            ConnectorError::RateLimited { retry_after } => JobError::Transient {
                detail: "the platform asked to slow down".into(),
                retry_after,
            },
            e if e.is_retryable() => JobError::transient(e.to_string()),
            // An expired or refused session is the connection's problem, which the creditor
            // may fix: worth retrying for a while.
            ConnectorError::Unauthorized(detail) => JobError::transient(detail),
            e => JobError::Permanent(e.to_string()),
        }
    }
}

impl From<SyncError> for JobError {
    fn from(e: SyncError) -> JobError {
        match e {
            SyncError::Connector(e) => e.into(),
            SyncError::Store(e) => e.into(),
            e => JobError::transient(e.to_string()),
        }
    }
}

/// The sentence a status note carries, in the creditor's words.
fn note_text(action: &Value) -> String {
    let name = action.get("action").and_then(Value::as_str).unwrap_or("");
    let on = action.get("on").and_then(Value::as_str).unwrap_or("");
    match name {
        "transferred" => format!(
            "Sent to collection on {on}; free withdrawal until {}.",
            action
                .get("free_withdrawal_until")
                .and_then(Value::as_str)
                .unwrap_or("")
        ),
        "withdrawn" => {
            let charged = action.get("charged").and_then(Value::as_bool) == Some(true);
            format!(
                "Withdrawn from collection on {on}{}.",
                if charged { " (charged)" } else { " (free)" }
            )
        }
        "held" => format!("Collection on hold since {on}: the debtor disputes the claim."),
        "released" => format!("Collection resumed on {on}."),
        "principal_paid" => {
            format!("Paid to the creditor directly; the case stays open for its fees ({on}).")
        }
        "closed" => format!("Collection case closed on {on}."),
        other => format!("Collection: {other} on {on}."),
    }
}

impl WriteBack {
    async fn payment(
        &self,
        job: &Job,
        owner: &str,
        connector: &dyn forfall_connector::Connector,
        id: &RemoteId,
    ) -> Result<Done, JobError> {
        let payload = &job.payload;
        let amount: Decimal = text(payload, "amount")?
            .parse()
            .map_err(|_| JobError::Permanent("the job's amount is not a number".into()))?;
        let paid_on: NaiveDate = text(payload, "paid_on")?
            .parse()
            .map_err(|_| JobError::Permanent("the job's paid_on is not a date".into()))?;
        let now_on_platform = connector.invoice(id).await?;
        let before = job
            .checkpoint
            .as_ref()
            .and_then(|c| c.get("outstanding_before"))
            .and_then(Value::as_str)
            .and_then(|t| t.parse::<Decimal>().ok());
        if let Some(before) = before
            && now_on_platform.outstanding <= before - amount.min(before)
        {
            tracing::info!(job = %job.id, "the payment is already registered on the platform");
            self.synced(job, amount, paid_on, &now_on_platform.currency)
                .await?;
            return Ok(Done::Succeeded);
        }
        let to_write = amount.min(now_on_platform.outstanding);
        if to_write <= Decimal::ZERO {
            tracing::warn!(job = %job.id, invoice = %id.0, "the platform shows nothing outstanding; the collected payment is not registered twice");
            return Ok(Done::Succeeded);
        }
        if !self
            .ingest
            .store
            .save_checkpoint(
                &job.id,
                owner,
                &json!({ "outstanding_before": now_on_platform.outstanding.to_string() }),
            )
            .await?
        {
            return Err(JobError::transient("the job's lease was lost"));
        }
        connector
            .record_payment(
                id,
                &Payment {
                    paid_on,
                    amount: to_write,
                    currency: now_on_platform.currency.clone(),
                    idempotency_key: job.idempotency_key.clone(),
                },
            )
            .await?;
        self.ingest
            .metrics
            .count("forfall_payments_written_back_total", "collection");
        self.synced(job, to_write, paid_on, &now_on_platform.currency)
            .await?;
        Ok(Done::Succeeded)
    }

    /// The payment is registered on the platform: partners hear `payment.synced` (once: the
    /// event's key is the write's, so a rerun of the job after a lost answer adds nothing).
    async fn synced(
        &self,
        job: &Job,
        amount: Decimal,
        paid_on: NaiveDate,
        currency: &str,
    ) -> Result<(), JobError> {
        let payload = &job.payload;
        let event = event_job(
            "payment.synced",
            &ConnectionId::from(text(payload, "connection")?),
            text(payload, "invoice")?,
            payload
                .get("event")
                .and_then(Value::as_str)
                .unwrap_or(&job.idempotency_key),
            json!({
                "amount": format_amount(amount),
                "currency": currency,
                "paid_on": paid_on,
            }),
            self.ingest.clock.now(),
        );
        self.ingest
            .store
            .enqueue_job(&job.creditor_id, &event, self.ingest.clock.now())
            .await?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl Handler for WriteBack {
    fn kinds(&self) -> &'static [&'static str] {
        &[PLATFORM_JOB]
    }

    async fn run(&self, job: &Job, owner: &str) -> Result<Done, JobError> {
        let payload = &job.payload;
        let connection = self
            .ingest
            .connection(&ConnectionId::from(text(payload, "connection")?))
            .await?;
        let opened = self.ingest.connectors.open(&connection)?;
        let connector = opened.connector.as_ref();
        let id = RemoteId(text(payload, "invoice")?.to_owned());
        match text(payload, "write")? {
            "payment" => {
                if !connector.capabilities().write_payment {
                    return Err(JobError::Permanent(format!(
                        "{} cannot register payments: register it by hand",
                        connector.platform()
                    )));
                }
                self.payment(job, owner, connector, &id).await
            }
            "note" => {
                if !connector.capabilities().write_note {
                    return Ok(Done::Succeeded);
                }
                let action = payload.get("decision").cloned().unwrap_or(Value::Null);
                connector
                    .record_status(
                        &id,
                        &StatusNote {
                            text: note_text(&action),
                            idempotency_key: job.idempotency_key.clone(),
                        },
                    )
                    .await?;
                Ok(Done::Succeeded)
            }
            other => Err(JobError::Permanent(format!(
                "`{other}` is not a write Forfall makes"
            ))),
        }
    }
}
