use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::ids::{CreditorId, JobId};

/// Where a job of the outbox stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Waiting for `run_after`, or for a worker.
    Pending,
    /// Claimed by a worker until its lease ends.
    Running,
    Succeeded,
    /// Gave up: attempts exhausted or refused for good. Visible, retryable by hand.
    Dead,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Pending => "pending",
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Dead => "dead",
        }
    }

    pub fn parse(s: &str) -> Option<JobState> {
        [
            JobState::Pending,
            JobState::Running,
            JobState::Succeeded,
            JobState::Dead,
        ]
        .into_iter()
        .find(|state| state.as_str() == s)
    }
}

/// Work caused by a state change, written in the same transaction (the transactional outbox).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub id: JobId,
    pub creditor_id: CreditorId,
    /// What to do: `forward_case`, `notify_creditor`, …
    pub kind: String,
    /// Derived from what the job does (`transfer:{invoice}:{generation}`); sent on every outbound
    /// call, and unique: enqueueing the same work twice keeps one job.
    pub idempotency_key: String,
    pub payload: serde_json::Value,
    pub state: JobState,
    pub attempts: i32,
    pub run_after: DateTime<Utc>,
    pub lease_owner: Option<String>,
    pub lease_until: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    /// Jobs of one chain run one at a time, in the order they were enqueued (every message about
    /// one invoice's case, say); `None`: independent.
    pub chain: Option<String>,
    /// What a handler saved between attempts (e.g. what the platform showed before a write).
    pub checkpoint: Option<serde_json::Value>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One attempt at a job, for its history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobAttempt {
    pub attempt: i32,
    pub finished_at: DateTime<Utc>,
    /// `succeeded`, `retry` or `dead`.
    pub outcome: String,
    pub error: Option<String>,
}

/// A job about to be enqueued.
#[derive(Debug, Clone, PartialEq)]
pub struct NewJob {
    pub kind: String,
    pub idempotency_key: String,
    pub payload: serde_json::Value,
    pub run_after: DateTime<Utc>,
    /// See [`Job::chain`].
    pub chain: Option<String>,
}

impl NewJob {
    pub fn new(
        kind: impl Into<String>,
        idempotency_key: impl Into<String>,
        payload: serde_json::Value,
        run_after: DateTime<Utc>,
    ) -> NewJob {
        NewJob {
            kind: kind.into(),
            idempotency_key: idempotency_key.into(),
            payload,
            run_after,
            chain: None,
        }
    }

    /// Runs after every job enqueued before it in `chain` has succeeded.
    pub fn in_chain(mut self, chain: impl Into<String>) -> NewJob {
        self.chain = Some(chain.into());
        self
    }
}
