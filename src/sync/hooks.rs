//! Processing stored webhook deliveries: each is a job (kind `webhook`) written by
//! `POST /hooks/{connection}`; here it is claimed, its changes applied through the connector, and
//! its outcome recorded. A platform that is down makes the delivery wait and retry on the job
//! runner's schedule ([`retry_policy`]); after [`MAX_ATTEMPTS`] it becomes a dead letter.

use std::time::Duration;

use crate::domain::{ConnectionId, Job};
use crate::jobs::{JobError, RetryPolicy};
use crate::store::JobOutcome;

use super::{Ingest, SyncError, WEBHOOK_JOB};

pub const MAX_ATTEMPTS: u32 = 8;
const LEASE: Duration = Duration::from_secs(120);

/// A delivery's retries: the job runner's schedule (exponential, full jitter), tighter, since a
/// delivery only says that something changed and the next poll reads it anyway: 8 attempts,
/// ceilings from 1 s doubling up to 10 minutes.
pub fn retry_policy() -> RetryPolicy {
    RetryPolicy {
        max_attempts: MAX_ATTEMPTS,
        base: Duration::from_secs(1),
        cap: Duration::from_secs(600),
        ..RetryPolicy::default()
    }
}

/// Claims and processes up to a batch of deliveries; how many it processed.
pub async fn process_stored(ingest: &Ingest, owner: &str) -> Result<usize, SyncError> {
    let jobs = ingest
        .store
        .claim_jobs(owner, &[WEBHOOK_JOB], ingest.clock.now(), LEASE, 16)
        .await?;
    let count = jobs.len();
    let policy = retry_policy();
    for job in jobs {
        let outcome = match process(ingest, &job).await {
            Ok(()) => JobOutcome::Succeeded,
            Err(e) => {
                let retryable = matches!(&e, SyncError::Connector(c) if c.is_retryable())
                    || matches!(&e, SyncError::Store(_));
                let error = if retryable {
                    JobError::transient(e.to_string())
                } else {
                    JobError::Permanent(e.to_string())
                };
                let outcome = policy.outcome(job.attempts, &error, ingest.clock.now());
                if matches!(outcome, JobOutcome::Dead { .. }) {
                    tracing::warn!(job = %job.id, error = %e, "webhook delivery dead-lettered");
                    ingest
                        .metrics
                        .count("forfall_webhooks_dead_total", "webhook");
                }
                outcome
            }
        };
        ingest
            .store
            .finish_job(&job.id, owner, &outcome, ingest.clock.now())
            .await?;
    }
    Ok(count)
}

async fn process(ingest: &Ingest, job: &Job) -> Result<(), SyncError> {
    let field = |name: &str| {
        job.payload
            .get(name)
            .and_then(|v| v.as_str())
            .ok_or_else(|| SyncError::Secrets(format!("stored delivery without {name}")))
    };
    let id = ConnectionId::from(field("connection")?);
    let body = field("body")?;
    let connection = ingest.connection(&id).await?;
    let opened = ingest.connectors.open(&connection)?;
    let changes = opened
        .connector
        .parse_webhook(&http::HeaderMap::new(), body.as_bytes())?;
    ingest.apply_changes(&connection, &changes).await
}
