//! The e-mail jobs: each engine decision that the creditor must hear of (a warning, a listing, a
//! transfer) and each dead letter is one `email` job; the handler groups them into one digest
//! per creditor, kind and civil day, sends it, and records it with the jobs it covered in one
//! transaction. A job for a creditor whose digest of that kind already went out today waits for
//! tomorrow's (nothing is lost, and no second e-mail of a kind goes out the same day).
//!
//! Delivery is at least once: a crash between the SMTP server's acceptance and the record
//! re-sends the digest with the same `Message-ID` (`{kind}.{creditor}.{day}`), which mail
//! clients show once.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde_json::{Value, json};

use crate::clock::Clock;
use crate::domain::{ConnectionId, Creditor, CreditorId, Job, NewJob};
use crate::jobs::{Done, Handler, JobError};
use crate::store::Store;

use super::{Digest, DigestItem, DigestKind, Mailer, NotifyError, render};

pub use crate::jobs::effects::EMAIL_JOB;

/// The job that puts a dead letter in the creditor's next alert digest.
pub fn dead_letter_job(job: &Job, error: &str, now: DateTime<Utc>) -> NewJob {
    NewJob::new(
        EMAIL_JOB,
        format!("email.dead_letter:{}", job.id),
        json!({
            "digest": "dead_letter",
            "job": job.id.as_str(),
            "job_kind": job.kind,
            "job_key": job.idempotency_key,
            "error": error,
        }),
        now,
    )
}

/// Sends the digests.
pub struct Digests {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub mailer: Mailer,
    /// Shown in warnings: how the creditor opts an invoice or customer out.
    pub opt_out_hint: Option<String>,
}

fn kind_of(name: &str) -> Option<DigestKind> {
    match name {
        "warning" => Some(DigestKind::Warning),
        "transfer" => Some(DigestKind::Transfer),
        "weekly_list" => Some(DigestKind::WeeklyList),
        "dead_letter" => Some(DigestKind::DeadLetter),
        _ => None,
    }
}

fn text<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value.get(key).and_then(Value::as_str)
}

fn date(value: &Value, key: &str) -> Option<NaiveDate> {
    text(value, key).and_then(|t| t.parse().ok())
}

/// How long one instance may hold a creditor's digest of one kind while it sends it.
const DIGEST_LEASE: std::time::Duration = std::time::Duration::from_secs(120);
/// How long a job waits when another instance is sending the same digest.
const DIGEST_BUSY_WAIT: chrono::Duration = chrono::Duration::seconds(5);

impl Digests {
    /// One digest: the creditor's jobs of one kind. One instance at a time sends a creditor's
    /// digest of a kind (a lease, `digest:{creditor}:{kind}`): two instances that each claimed
    /// some of the day's jobs would otherwise both send a digest with the day's `Message-ID`,
    /// and a mail client shows only one of them, so the other's invoices would never be seen.
    /// Jobs that find the lease taken wait a few seconds, then find the day's digest sent and
    /// go in the next day's.
    async fn send_one(
        &self,
        creditor: &Creditor,
        kind_name: &str,
        kind: DigestKind,
        jobs: &[&Job],
        owner: &str,
    ) -> Result<Done, JobError> {
        let now = self.clock.now();
        let lease = format!("digest:{}:{kind_name}", creditor.id);
        if !self
            .store
            .acquire_lease(&lease, owner, now, DIGEST_LEASE)
            .await?
        {
            return Ok(Done::Defer {
                until: now + DIGEST_BUSY_WAIT,
                reason: format!("another instance is sending the {kind_name} e-mail"),
            });
        }
        let sent = self
            .send_leased(creditor, kind_name, kind, jobs, owner)
            .await;
        if let Err(e) = self.store.release_lease(&lease, owner).await {
            tracing::warn!(lease, error = %e, "could not release the digest lease; it expires on its own");
        }
        sent
    }

    async fn send_leased(
        &self,
        creditor: &Creditor,
        kind_name: &str,
        kind: DigestKind,
        jobs: &[&Job],
        owner: &str,
    ) -> Result<Done, JobError> {
        let now = self.clock.now();
        let day = self.clock.today(creditor.time_zone);
        let Some(to) = creditor.email.as_deref() else {
            tracing::info!(creditor = %creditor.id, kind = kind_name, "the creditor has no e-mail address; the digest is not sent");
            return Ok(Done::Succeeded);
        };
        if self
            .store
            .notification_sent(&creditor.id, kind_name, day)
            .await?
        {
            return Ok(Done::Defer {
                until: next_local_day(creditor, now),
                reason: format!(
                    "today's {kind_name} e-mail was already sent; this goes in tomorrow's"
                ),
            });
        }
        let mut items = Vec::with_capacity(jobs.len());
        for job in jobs {
            items.push(self.item(creditor, kind, job).await?);
        }
        items.sort_by(|a, b| a.invoice_number.cmp(&b.invoice_number));
        let digest = Digest {
            kind,
            creditor_name: creditor.name.clone(),
            language: creditor.language,
            day,
            items,
            opt_out_hint: self
                .opt_out_hint
                .as_ref()
                .map(|hint| hint.replace("{creditor}", creditor.id.as_str())),
        };
        let message_id = format!("{kind_name}.{}.{day}", creditor.id);
        self.mailer
            .send(to, &render(&digest), &message_id)
            .await
            .map_err(|e| match e {
                e if e.is_retryable() => JobError::transient(e.to_string()),
                NotifyError::BadAddress(detail) => {
                    JobError::Permanent(format!("the creditor's e-mail address: {detail}"))
                }
                e => JobError::Permanent(e.to_string()),
            })?;
        let ids: Vec<_> = jobs.iter().map(|job| job.id.clone()).collect();
        let recorded = self
            .store
            .record_notification(
                owner,
                &ids,
                &creditor.id,
                kind_name,
                day,
                &message_id,
                digest.items.len(),
                self.clock.now(),
            )
            .await?;
        tracing::info!(creditor = %creditor.id, kind = kind_name, items = digest.items.len(), "digest e-mail sent");
        Ok(if recorded {
            Done::Recorded
        } else {
            Done::Succeeded
        })
    }

    /// The digest's line for one job.
    async fn item(
        &self,
        creditor: &Creditor,
        kind: DigestKind,
        job: &Job,
    ) -> Result<DigestItem, JobError> {
        let payload = &job.payload;
        if kind == DigestKind::DeadLetter {
            return Ok(DigestItem {
                invoice_number: text(payload, "job_key").unwrap_or_default().to_owned(),
                customer_name: String::new(),
                amount: Decimal::ZERO,
                currency: creditor.country.currency(),
                due: self.clock.today(creditor.time_zone),
                transfer_on: None,
                first_reminder_on: None,
                free_withdrawal_until: None,
                note: Some(format!(
                    "{}: {}",
                    text(payload, "job_kind").unwrap_or("job"),
                    text(payload, "error").unwrap_or("failed")
                )),
            });
        }
        let (Some(connection), Some(invoice)) =
            (text(payload, "connection"), text(payload, "invoice"))
        else {
            return Err(JobError::Permanent(
                "an e-mail job without its invoice".into(),
            ));
        };
        let stored = self
            .store
            .invoice_by_platform_id(&creditor.id, &ConnectionId::from(connection), invoice)
            .await?
            .ok_or_else(|| JobError::Permanent(format!("invoice {invoice} is not stored")))?;
        let customer_name = match &stored.customer_id {
            Some(id) => self
                .store
                .customer(&creditor.id, id)
                .await?
                .map(|c| c.facts.name)
                .unwrap_or_default(),
            None => String::new(),
        };
        let decision = payload.get("decision").cloned().unwrap_or(Value::Null);
        Ok(DigestItem {
            invoice_number: stored.facts.number.clone(),
            customer_name,
            amount: stored.facts.outstanding,
            currency: stored.facts.currency,
            due: stored.facts.due,
            transfer_on: date(&decision, "transfer_on")
                .or_else(|| date(&decision, "on").filter(|_| kind == DigestKind::Transfer)),
            first_reminder_on: date(&decision, "first_reminder_on"),
            free_withdrawal_until: date(&decision, "free_withdrawal_until"),
            note: None,
        })
    }
}

/// Midnight (and a minute) of the creditor's next civil day, as an instant.
fn next_local_day(creditor: &Creditor, now: DateTime<Utc>) -> DateTime<Utc> {
    let local = now.with_timezone(&creditor.time_zone).date_naive();
    let next = local.succ_opt().unwrap_or(local);
    next.and_hms_opt(0, 1, 0)
        .and_then(|t| t.and_local_timezone(creditor.time_zone).earliest())
        .map_or(now + chrono::Duration::days(1), |t| t.with_timezone(&Utc))
}

#[async_trait::async_trait]
impl Handler for Digests {
    fn kinds(&self) -> &'static [&'static str] {
        &[EMAIL_JOB]
    }

    fn in_flight(&self) -> usize {
        // A batch is grouped by creditor and kind: a big batch makes fewer, fuller digests.
        256
    }

    async fn run(&self, job: &Job, owner: &str) -> Result<Done, JobError> {
        let mut results = self.run_batch(std::slice::from_ref(job), owner).await;
        results.pop().unwrap_or(Ok(Done::Succeeded))
    }

    async fn run_batch(&self, jobs: &[Job], owner: &str) -> Vec<Result<Done, JobError>> {
        let mut groups: BTreeMap<(CreditorId, String), Vec<usize>> = BTreeMap::new();
        let mut results: Vec<Option<Result<Done, JobError>>> = vec![None; jobs.len()];
        for (i, job) in jobs.iter().enumerate() {
            match text(&job.payload, "digest").filter(|k| kind_of(k).is_some()) {
                Some(kind) => groups
                    .entry((job.creditor_id.clone(), kind.to_owned()))
                    .or_default()
                    .push(i),
                None => {
                    results[i] = Some(Err(JobError::Permanent(
                        "an e-mail job of no known digest kind".into(),
                    )));
                }
            }
        }
        for ((creditor_id, kind_name), members) in groups {
            let group: Vec<&Job> = members.iter().map(|&i| &jobs[i]).collect();
            let outcome = match self.store.creditor(&creditor_id).await {
                Ok(Some(creditor)) => {
                    let kind = kind_of(&kind_name).unwrap_or(DigestKind::DeadLetter);
                    self.send_one(&creditor, &kind_name, kind, &group, owner)
                        .await
                }
                Ok(None) => Err(JobError::Permanent(format!(
                    "creditor {creditor_id} does not exist"
                ))),
                Err(e) => Err(e.into()),
            };
            for &i in &members {
                results[i] = Some(outcome.clone());
            }
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or(Ok(Done::Succeeded)))
            .collect()
    }
}
