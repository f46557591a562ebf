//! Processing stored webhook deliveries: each is a job (kind `webhook`) written by
//! `POST /hooks/{connection}`; here it is claimed, its changes applied through the connector, and
//! its outcome recorded. A platform that is down makes the delivery wait and retry; after
//! [`MAX_ATTEMPTS`] it becomes a dead letter.

use std::time::Duration;

use crate::domain::{ConnectionId, Job};
use crate::store::JobOutcome;

use super::{Ingest, SyncError, WEBHOOK_JOB};

pub const MAX_ATTEMPTS: i64 = 8;
const LEASE: Duration = Duration::from_secs(120);

/// Claims and processes up to a batch of deliveries; how many it processed.
pub async fn process_stored(ingest: &Ingest, owner: &str) -> Result<usize, SyncError> {
    let jobs = ingest
        .store
        .claim_jobs(owner, &[WEBHOOK_JOB], ingest.clock.now(), LEASE, 16)
        .await?;
    let count = jobs.len();
    for job in jobs {
        let outcome = match process(ingest, &job).await {
            Ok(()) => JobOutcome::Succeeded,
            Err(e) => {
                let retryable = matches!(&e, SyncError::Connector(c) if c.is_retryable())
                    || matches!(&e, SyncError::Store(_));
                if retryable && i64::from(job.attempts) < MAX_ATTEMPTS {
                    // Exponential with full jitter: up to 2^attempts seconds, at most 10 minutes.
                    let ceiling = 2u64
                        .saturating_pow(job.attempts.clamp(0, 20) as u32)
                        .min(600);
                    let wait = Duration::from_millis(fastrand::u64(500..=ceiling * 1000));
                    JobOutcome::Retry {
                        run_after: ingest.clock.now()
                            + chrono::Duration::from_std(wait).unwrap_or_default(),
                        error: e.to_string(),
                    }
                } else {
                    tracing::warn!(job = %job.id, error = %e, "webhook delivery dead-lettered");
                    ingest
                        .metrics
                        .count("forfall_webhooks_dead_total", "webhook");
                    JobOutcome::Dead {
                        error: e.to_string(),
                    }
                }
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
