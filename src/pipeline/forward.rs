//! The `pipeline` jobs: each builds one message for the agency from what the store holds now and
//! hands it to the sink: pushed (signed, keyed by the job's idempotency key) or, in pull mode,
//! put in the queue the agency fetches from. The message is kept in `pipeline_messages` either
//! way. Messages about one invoice form a chain: a follow-up never overtakes its case's transfer.

use std::sync::Arc;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde_json::Value;

use crate::clock::Clock;
use std::collections::HashMap;

use crate::domain::{
    Case, CaseState, ConnectionId, Creditor, CreditorId, Invoice, Job, Money, NewCase,
};
use crate::jobs::effects::PIPELINE_JOB;
use crate::jobs::{Done, Handler, JobError, payload_text as text};
use crate::lifecycle::InvoiceState;
use crate::store::{PipelineRecord, Store};

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
///
/// A claimed batch is worked in steps, each over the whole batch: the creditors, invoices and
/// case documents are read (`in_flight` at once), the transfers' cases are opened in one
/// transaction, the messages are delivered (`in_flight` at once, across every batch under way),
/// and what was delivered is kept in one transaction. A message is kept only after the agency
/// took it; a job whose delivery or recording failed is retried with the same case and the same
/// message id, which the agency takes as the same message.
pub struct Forward {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub sink: Sink,
    /// Deliveries at once (the agency's connection pool).
    pub in_flight: usize,
    /// Bounds the deliveries of every batch under way to `in_flight`.
    deliveries: Arc<tokio::sync::Semaphore>,
}

/// A job made ready to send.
struct Ready {
    creditor: CreditorId,
    case: Case,
    message: OutboundMessage,
    /// The state the case is in once the message is delivered.
    state: Option<CaseState>,
}

/// Runs at most `limit` of `futures` at once; their outputs in their order.
async fn windowed<F: std::future::Future>(futures: Vec<F>, limit: usize) -> Vec<F::Output> {
    use futures_util::StreamExt;
    futures_util::stream::iter(futures)
        .buffered(limit.max(1))
        .collect()
        .await
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
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        sink: Sink,
        in_flight: usize,
    ) -> Forward {
        let in_flight = in_flight.max(1);
        Forward {
            store,
            clock,
            sink,
            in_flight,
            deliveries: Arc::new(tokio::sync::Semaphore::new(in_flight)),
        }
    }

    async fn creditor(&self, id: &CreditorId) -> Result<Creditor, JobError> {
        self.store
            .creditor(id)
            .await?
            .ok_or_else(|| JobError::Permanent(format!("creditor {id} is gone")))
    }

    async fn invoice(&self, job: &Job, creditor: &Creditor) -> Result<Invoice, JobError> {
        let payload = &job.payload;
        let connection = ConnectionId::from(text(payload, "connection")?);
        let platform_id = text(payload, "invoice")?;
        self.store
            .invoice_by_platform_id(&creditor.id, &connection, platform_id)
            .await?
            .ok_or_else(|| JobError::Permanent(format!("invoice {platform_id} is not stored")))
    }

    /// The case a transfer job opens, from the engine's decision.
    fn new_case(job: &Job, invoice: &Invoice) -> Result<NewCase, JobError> {
        let decision = job.payload.get("decision").cloned().unwrap_or(Value::Null);
        Ok(NewCase {
            invoice_id: invoice.id.clone(),
            transfer_key: job.idempotency_key.clone(),
            amount: Money {
                amount: amount(&decision, "amount")?,
                currency: invoice.facts.currency,
            },
            transfer_on: date(&decision, "on")?,
            free_withdrawal_until: date(&decision, "free_withdrawal_until")?,
            first_reminder_on: date(&decision, "first_reminder_on")?,
        })
    }

    fn is_transfer(job: &Job) -> bool {
        job.payload.get("message").and_then(Value::as_str) == Some("transfer")
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

    /// The message a job stands for, and the state its case is in once it is delivered; a
    /// transfer's case is `opened` already.
    async fn ready(
        &self,
        job: &Job,
        creditor: &Creditor,
        invoice: &Invoice,
        opened: Option<Case>,
    ) -> Result<Ready, JobError> {
        let payload = &job.payload;
        let id = job.idempotency_key.clone();
        // Fixed across retries: every attempt sends the same body.
        let sent_at = job.created_at;
        let kind = text(payload, "message")?;
        if kind == "transfer" {
            let case = opened.ok_or_else(|| {
                JobError::transient(format!("the case of {} was not opened", job.id))
            })?;
            let document = self.case_document(creditor, invoice, &case).await?;
            return Ok(Ready {
                creditor: creditor.id.clone(),
                message: OutboundMessage::transfer(id, &document, sent_at),
                case,
                state: None,
            });
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
        Ok(Ready {
            creditor: creditor.id.clone(),
            case,
            message,
            state,
        })
    }

    /// Hands the message to the sink; whether it was delivered (pushed) now.
    async fn send(&self, ready: &Ready) -> Result<bool, JobError> {
        match &self.sink {
            Sink::Push(client) => {
                let _permit = self
                    .deliveries
                    .acquire()
                    .await
                    .map_err(|_| JobError::transient("the delivery window closed"))?;
                client.deliver(&ready.message).await?;
                Ok(true)
            }
            Sink::Pull => Ok(false),
        }
    }

    fn record(ready: &Ready, delivered: bool) -> PipelineRecord {
        PipelineRecord {
            creditor: ready.creditor.clone(),
            case: ready.case.id.clone(),
            id: ready.message.id.clone(),
            kind: ready.message.kind.as_str().to_owned(),
            body: ready.message.to_json(),
            delivered,
            case_state: ready.state,
        }
    }

    /// Loads a job's creditor (from those read for the batch) and invoice.
    async fn load(
        &self,
        job: &Job,
        creditors: &HashMap<CreditorId, Result<Creditor, JobError>>,
    ) -> Result<(Creditor, Invoice), JobError> {
        let creditor = match creditors.get(&job.creditor_id) {
            Some(Ok(creditor)) => creditor.clone(),
            Some(Err(e)) => return Err(e.clone()),
            None => self.creditor(&job.creditor_id).await?,
        };
        let invoice = self.invoice(job, &creditor).await?;
        Ok((creditor, invoice))
    }

    /// A claimed batch, step by step (see [`Forward`]).
    async fn forward_batch(&self, jobs: &[Job]) -> Vec<Result<Done, JobError>> {
        // The creditors, once each.
        let mut creditors: HashMap<CreditorId, Result<Creditor, JobError>> = HashMap::new();
        for job in jobs {
            if !creditors.contains_key(&job.creditor_id) {
                let creditor = self.creditor(&job.creditor_id).await;
                creditors.insert(job.creditor_id.clone(), creditor);
            }
        }
        // The invoices.
        let loaded = windowed(
            jobs.iter().map(|job| self.load(job, &creditors)).collect(),
            self.in_flight,
        )
        .await;
        // The transfers' cases, one transaction per creditor.
        let mut opened: Vec<Option<Result<Case, JobError>>> = vec![None; jobs.len()];
        let mut by_creditor: HashMap<CreditorId, Vec<(usize, NewCase)>> = HashMap::new();
        for (index, (job, load)) in jobs.iter().zip(&loaded).enumerate() {
            if let Ok((creditor, invoice)) = load
                && Self::is_transfer(job)
            {
                match Self::new_case(job, invoice) {
                    Ok(new) => by_creditor
                        .entry(creditor.id.clone())
                        .or_default()
                        .push((index, new)),
                    Err(e) => opened[index] = Some(Err(e)),
                }
            }
        }
        for (creditor, news) in by_creditor {
            let cases: Vec<NewCase> = news.iter().map(|(_, new)| new.clone()).collect();
            match self
                .store
                .open_cases(&creditor, &cases, self.clock.now())
                .await
            {
                Ok(cases) => {
                    for ((index, _), case) in news.iter().zip(cases) {
                        opened[*index] = Some(Ok(case));
                    }
                }
                Err(e) => {
                    let error = JobError::from(e);
                    for (index, _) in &news {
                        opened[*index] = Some(Err(error.clone()));
                    }
                }
            }
        }
        // The messages.
        let mut preparing = Vec::with_capacity(jobs.len());
        for ((job, load), case) in jobs.iter().zip(&loaded).zip(opened) {
            preparing.push(self.prepare(job, load, case));
        }
        let ready = windowed(preparing, self.in_flight).await;
        // The deliveries.
        let sent = windowed(
            ready.iter().map(|ready| self.send_ready(ready)).collect(),
            self.in_flight,
        )
        .await;
        // What was delivered, kept together.
        let records: Vec<PipelineRecord> = ready
            .iter()
            .zip(&sent)
            .filter_map(|(ready, sent)| match (ready, sent) {
                (Ok(ready), Ok(delivered)) => Some(Self::record(ready, *delivered)),
                _ => None,
            })
            .collect();
        let kept = self
            .store
            .record_pipeline_messages(&records, self.clock.now())
            .await
            .map_err(JobError::from);
        ready
            .into_iter()
            .zip(sent)
            .map(|(ready, sent)| {
                ready?;
                sent?;
                kept.clone()?;
                Ok(Done::Succeeded)
            })
            .collect()
    }

    async fn prepare(
        &self,
        job: &Job,
        load: &Result<(Creditor, Invoice), JobError>,
        case: Option<Result<Case, JobError>>,
    ) -> Result<Ready, JobError> {
        let (creditor, invoice) = load.as_ref().map_err(Clone::clone)?;
        let case = case.transpose()?;
        self.ready(job, creditor, invoice, case).await
    }

    async fn send_ready(&self, ready: &Result<Ready, JobError>) -> Result<bool, JobError> {
        match ready {
            Ok(ready) => self.send(ready).await,
            Err(e) => Err(e.clone()),
        }
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

    /// Two batches under way: one's reads and writes overlap the other's deliveries (which
    /// share the `in_flight` window).
    fn rounds_at_once(&self) -> usize {
        2
    }

    async fn run(&self, job: &Job, _owner: &str) -> Result<Done, JobError> {
        self.forward_batch(std::slice::from_ref(job))
            .await
            .pop()
            .unwrap_or(Err(JobError::transient("the job was not run")))
    }

    async fn run_batch(&self, jobs: &[Job], _owner: &str) -> Vec<Result<Done, JobError>> {
        self.forward_batch(jobs).await
    }
}
