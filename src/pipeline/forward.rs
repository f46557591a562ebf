//! The `pipeline` jobs: each builds one message for the agency from what the store holds now and
//! hands it to the sink: pushed (signed, keyed by the job's idempotency key) or, in pull mode,
//! put in the queue the agency fetches from. The message is kept in `pipeline_messages` either
//! way. Messages about one invoice form a chain: a follow-up never overtakes its case's transfer.

use std::sync::Arc;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::Value;

use crate::clock::Clock;
use std::collections::HashMap;

use crate::domain::{
    Case, CaseState, ConnectionId, Creditor, CreditorId, Customer, CustomerId, Decision, Invoice,
    InvoiceId, Job, JobId, Money, NewCase,
};
use crate::jobs::effects::PIPELINE_JOB;
use crate::jobs::{Done, Handler, JobError, payload_text as text};
use crate::lifecycle::InvoiceState;
use crate::store::{PipelineRecord, Store, StoreError};

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

/// What a batch read for one creditor's messages besides their invoices.
#[derive(Default)]
struct Known {
    /// The transfers' debtors.
    customers: HashMap<CustomerId, Customer>,
    /// The transfers' decisions (their warnings), each invoice's in order.
    decisions: HashMap<InvoiceId, Vec<Decision>>,
    /// The follow-ups' cases: each invoice's latest.
    latest: HashMap<InvoiceId, Case>,
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

    /// The message a job stands for, and the state its case is in once it is delivered; a
    /// transfer's case is `opened` already. `known` holds what the batch read for the job's
    /// creditor: the debtors and warnings of its transfers, the cases of its follow-ups.
    fn ready(
        job: &Job,
        creditor: &Creditor,
        invoice: &Invoice,
        opened: Option<Case>,
        known: &Known,
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
            let document = Self::case_document(creditor, invoice, &case, known)?;
            return Ok(Ready {
                creditor: creditor.id.clone(),
                message: OutboundMessage::transfer(id, &document, sent_at),
                case,
                state: None,
            });
        }
        // The case a follow-up is about: the invoice's latest (its transfer ran before, in the
        // chain).
        let case = known.latest.get(&invoice.id).cloned().ok_or_else(|| {
            JobError::Permanent(format!(
                "invoice {} has no case at the agency",
                invoice.facts.number
            ))
        })?;
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

    fn record(ready: Ready, delivered: bool) -> PipelineRecord {
        PipelineRecord {
            creditor: ready.creditor,
            case: ready.case.id,
            id: ready.message.id.clone(),
            kind: ready.message.kind.as_str().to_owned(),
            body: ready.message.into_json(),
            delivered,
            case_state: ready.state,
        }
    }

    /// Each job's creditor and invoice: the creditors once each, the invoices in one read per
    /// creditor and connection.
    async fn load(&self, jobs: &[Job]) -> Vec<Result<(Creditor, Invoice), JobError>> {
        let mut creditors: HashMap<CreditorId, Result<Creditor, JobError>> = HashMap::new();
        for job in jobs {
            if !creditors.contains_key(&job.creditor_id) {
                let creditor = self.creditor(&job.creditor_id).await;
                creditors.insert(job.creditor_id.clone(), creditor);
            }
        }
        // Which invoice each job is about.
        let refs: Vec<Result<(ConnectionId, &str), JobError>> = jobs
            .iter()
            .map(|job| {
                let connection = ConnectionId::from(text(&job.payload, "connection")?);
                Ok((connection, text(&job.payload, "invoice")?))
            })
            .collect();
        let mut wanted: HashMap<(CreditorId, ConnectionId), Vec<String>> = HashMap::new();
        for (job, one) in jobs.iter().zip(&refs) {
            if let (Ok((connection, platform_id)), Some(Ok(_))) =
                (one, creditors.get(&job.creditor_id))
            {
                wanted
                    .entry((job.creditor_id.clone(), connection.clone()))
                    .or_default()
                    .push((*platform_id).to_owned());
            }
        }
        type Found = Result<HashMap<String, Invoice>, JobError>;
        let mut found: HashMap<(CreditorId, ConnectionId), Found> = HashMap::new();
        for ((creditor, connection), mut platform_ids) in wanted {
            platform_ids.sort_unstable();
            platform_ids.dedup();
            let invoices = self
                .store
                .invoices_by_platform_ids(&creditor, &connection, &platform_ids)
                .await
                .map(|invoices| {
                    invoices
                        .into_iter()
                        .map(|invoice| (invoice.facts.platform_id.clone(), invoice))
                        .collect()
                })
                .map_err(JobError::from);
            found.insert((creditor, connection), invoices);
        }
        jobs.iter()
            .zip(refs)
            .map(|(job, one)| {
                let (connection, platform_id) = one?;
                let creditor = match creditors.get(&job.creditor_id) {
                    Some(Ok(creditor)) => creditor.clone(),
                    Some(Err(e)) => return Err(e.clone()),
                    None => return Err(JobError::transient("the creditor was not read")),
                };
                let invoice = match found.get(&(job.creditor_id.clone(), connection)) {
                    Some(Ok(invoices)) => invoices.get(platform_id).cloned(),
                    Some(Err(e)) => return Err(e.clone()),
                    None => None,
                };
                let invoice = invoice.ok_or_else(|| {
                    JobError::Permanent(format!("invoice {platform_id} is not stored"))
                })?;
                Ok((creditor, invoice))
            })
            .collect()
    }

    /// What the batch's messages need beyond the invoices, in one read of each kind per
    /// creditor: the transfers' debtors and decisions (their warnings), the follow-ups' cases.
    async fn known(
        &self,
        jobs: &[Job],
        loaded: &[Result<(Creditor, Invoice), JobError>],
    ) -> HashMap<CreditorId, Result<Known, JobError>> {
        #[derive(Default)]
        struct Wanted {
            customers: Vec<CustomerId>,
            transfers: Vec<InvoiceId>,
            follow_ups: Vec<InvoiceId>,
        }
        let mut wanted: HashMap<CreditorId, Wanted> = HashMap::new();
        for (job, load) in jobs.iter().zip(loaded) {
            let Ok((creditor, invoice)) = load else {
                continue;
            };
            let wanted = wanted.entry(creditor.id.clone()).or_default();
            if Self::is_transfer(job) {
                wanted.customers.extend(invoice.customer_id.clone());
                wanted.transfers.push(invoice.id.clone());
            } else {
                wanted.follow_ups.push(invoice.id.clone());
            }
        }
        let mut known = HashMap::with_capacity(wanted.len());
        for (creditor, mut wanted) in wanted {
            for ids in [&mut wanted.transfers, &mut wanted.follow_ups] {
                ids.sort_unstable();
                ids.dedup();
            }
            wanted.customers.sort_unstable();
            wanted.customers.dedup();
            let read = async {
                let customers = self
                    .store
                    .customers_by_ids(&creditor, &wanted.customers)
                    .await?;
                let decisions = self
                    .store
                    .decisions_of_invoices(&creditor, &wanted.transfers)
                    .await?;
                let latest = self
                    .store
                    .latest_cases(&creditor, &wanted.follow_ups)
                    .await?;
                let mut known = Known {
                    customers: customers
                        .into_iter()
                        .map(|customer| (customer.id.clone(), customer))
                        .collect(),
                    latest: latest
                        .into_iter()
                        .map(|case| (case.invoice_id.clone(), case))
                        .collect(),
                    ..Known::default()
                };
                for decision in decisions {
                    known
                        .decisions
                        .entry(decision.invoice_id.clone())
                        .or_default()
                        .push(decision);
                }
                Ok::<Known, StoreError>(known)
            };
            let read = read.await.map_err(JobError::from);
            known.insert(creditor, read);
        }
        known
    }

    /// A claimed batch, step by step (see [`Forward`]).
    async fn forward_batch(&self, jobs: &[Job], owner: &str) -> Vec<Result<Done, JobError>> {
        // The creditors and invoices.
        let loaded = self.load(jobs).await;
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
        let known = self.known(jobs, &loaded).await;
        let ready: Vec<Result<Ready, JobError>> = jobs
            .iter()
            .zip(&loaded)
            .zip(opened)
            .map(|((job, load), case)| {
                let (creditor, invoice) = load.as_ref().map_err(Clone::clone)?;
                let case = case.transpose()?;
                let known = match known.get(&creditor.id) {
                    Some(Ok(known)) => known,
                    Some(Err(e)) => return Err(e.clone()),
                    None => return Err(JobError::transient("the batch's reads were not made")),
                };
                Self::ready(job, creditor, invoice, case, known)
            })
            .collect();
        // The deliveries.
        let sent = windowed(
            ready.iter().map(|ready| self.send_ready(ready)).collect(),
            self.in_flight,
        )
        .await;
        // What was delivered, kept together with the jobs' ends: one commit.
        let mut records: Vec<(JobId, PipelineRecord)> = Vec::with_capacity(jobs.len());
        let mut outcomes: Vec<Result<(), JobError>> = Vec::with_capacity(jobs.len());
        for (job, (ready, sent)) in jobs.iter().zip(ready.into_iter().zip(sent)) {
            outcomes.push(match (ready, sent) {
                (Ok(ready), Ok(delivered)) => {
                    records.push((job.id.clone(), Self::record(ready, delivered)));
                    Ok(())
                }
                (Err(e), _) | (_, Err(e)) => Err(e),
            });
        }
        let kept = self
            .store
            .record_pipeline_messages_finishing(owner, &records, self.clock.now())
            .await
            .map(|_| ())
            .map_err(JobError::from);
        outcomes
            .into_iter()
            .map(|outcome| {
                outcome?;
                kept.clone()?;
                // Finished with the message (or, when the lease was lost, another worker's).
                Ok(Done::Recorded)
            })
            .collect()
    }

    async fn send_ready(&self, ready: &Result<Ready, JobError>) -> Result<bool, JobError> {
        match ready {
            Ok(ready) => self.send(ready).await,
            Err(e) => Err(e.clone()),
        }
    }

    /// The case.v1 document: the creditor, the debtor, the invoice as the store holds it now,
    /// the dates of the case, the warnings it had and any dispute.
    fn case_document(
        creditor: &Creditor,
        invoice: &Invoice,
        case: &Case,
        known: &Known,
    ) -> Result<CaseV1, JobError> {
        let customer = invoice
            .customer_id
            .as_ref()
            .and_then(|id| known.customers.get(id));
        let warnings = known
            .decisions
            .get(&invoice.id)
            .into_iter()
            .flatten()
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
        document.dispute = InvoiceState::deserialize(&invoice.lifecycle)
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

    /// Four batches under way: their claims, reads and writes overlap the others' deliveries
    /// (which share the `in_flight` window), so the window seldom runs dry while a batch is in
    /// the database. Measured with `forfall bench forward`: four beat two on both backends,
    /// most on PostgreSQL, whose round trips and commits left the window idle with two.
    fn rounds_at_once(&self) -> usize {
        4
    }

    async fn run(&self, job: &Job, owner: &str) -> Result<Done, JobError> {
        self.forward_batch(std::slice::from_ref(job), owner)
            .await
            .pop()
            .unwrap_or(Err(JobError::transient("the job was not run")))
    }

    async fn run_batch(&self, jobs: &[Job], owner: &str) -> Vec<Result<Done, JobError>> {
        self.forward_batch(jobs, owner).await
    }
}
