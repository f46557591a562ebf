//! The `sync` jobs. A failed pass is kept as a dead letter of this kind
//! ([`super::Ingest::record_failure`]); put back in the queue (`forfall jobs retry`, or the API's
//! dead-letter retry), it runs here: the connection's pass again, from where it stopped, under
//! the poll loop's lease so that it never runs beside another pass of the same connection.

use std::sync::Arc;
use std::time::Duration;

use crate::domain::{ConnectionId, Job};
use crate::jobs::{Done, Handler, JobError, payload_text};

use super::{Ingest, PassLease, SyncError};

/// The kind of a failed pass's job.
pub const SYNC_JOB: &str = "sync";

/// How long a retried pass holds the connection's lease (renewed page by page as it goes): as
/// long as the poll loop's shortest, so that a crash mid-pass blocks polling no longer.
const PASS_LEASE: Duration = Duration::from_secs(120);

/// Runs retried passes.
pub struct RetryPass {
    pub ingest: Arc<Ingest>,
    /// This instance, for the lease.
    pub owner: String,
}

#[async_trait::async_trait]
impl Handler for RetryPass {
    fn kinds(&self) -> &'static [&'static str] {
        &[SYNC_JOB]
    }

    fn in_flight(&self) -> usize {
        1
    }

    async fn run(&self, job: &Job, _owner: &str) -> Result<Done, JobError> {
        let id = ConnectionId::from(payload_text(&job.payload, "connection")?);
        let lease = PassLease {
            name: format!("poll:{id}"),
            owner: format!("{}:{}", self.owner, job.id),
            ttl: PASS_LEASE,
        };
        let now = self.ingest.clock.now();
        if !self
            .ingest
            .store
            .acquire_lease(&lease.name, &lease.owner, now, lease.ttl)
            .await?
        {
            return Ok(Done::Defer {
                until: now + chrono::Duration::minutes(1),
                reason: "another pass of the connection is running".into(),
            });
        }
        let outcome = self
            .ingest
            .run_pass(&id, false, Some(&lease), &|_| {})
            .await;
        if let Err(e) = self
            .ingest
            .store
            .release_lease(&lease.name, &lease.owner)
            .await
        {
            tracing::warn!(connection = %id, error = %e, "cannot release the pass lease; it expires on its own");
        }
        match outcome {
            Ok(stats) => {
                tracing::info!(connection = %id, pages = stats.pages, invoices = stats.invoices, "retried pass done");
                self.ingest.record_success(&id).await?;
                Ok(Done::Succeeded)
            }
            Err(SyncError::UnknownConnection(_)) => {
                Err(JobError::Permanent(format!("connection {id} is gone")))
            }
            Err(e) => Err(e.into()),
        }
    }
}
