//! The outbox's workers: jobs written with the state change that caused them are claimed here,
//! run by the handler of their kind, and their outcome recorded.
//!
//! - **Claiming**: with the store's leases (`FOR UPDATE SKIP LOCKED` on PostgreSQL), a batch at a
//!   time; a worker that dies leaves its jobs to be claimed again when the lease ends. Jobs of one
//!   chain (every message about one invoice's case, every write to one invoice in the platform)
//!   run one at a time, in the order they were enqueued.
//! - **Retries** ([`RetryPolicy`]): exponential with full jitter and a cap (the ceiling comes from
//!   backon's exponential schedule, the wait is drawn uniformly below it), never sooner than a
//!   `Retry-After` the other side asked for. A job that fails permanently, or exhausts its
//!   attempts, becomes a dead letter with its last error and its attempt history
//!   (`forfall jobs dead`, `forfall jobs show`, `forfall jobs retry`).
//! - **Idempotency**: every job's key is derived from what it does; handlers send it on every
//!   outbound call, so a job run twice (a crash after the call, before the outcome was recorded)
//!   is one effect at the other end.
//!
//! Handlers live beside what they do: the collection pipeline ([`crate::pipeline::forward`]),
//! the creditor's e-mails ([`crate::notify::digests`]), writes back to the accounting platform
//! ([`crate::sync::write_back`]) and webhook deliveries ([`crate::sync::hooks`]). What each
//! engine decision causes is [`effects`]; the daily run of the engine is [`day_tick`].

pub mod day_tick;
pub mod effects;
pub mod workers;

use std::sync::Arc;
use std::time::Duration;

use backon::BackoffBuilder;
use chrono::{DateTime, Utc};

use crate::api::metrics::Metrics;
use crate::clock::Clock;
use crate::domain::{Job, JobId};
use crate::store::{JobOutcome, Store, StoreError};

/// How a job's run failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobError {
    /// Worth another attempt (a timeout, 5xx, 429, a database hiccup), not before `retry_after`.
    #[error("{detail}")]
    Transient {
        detail: String,
        retry_after: Option<Duration>,
    },
    /// Will fail the same way every time (a 4xx other than 408/429, a malformed job): a dead
    /// letter at once.
    #[error("{0}")]
    Permanent(String),
}

impl JobError {
    pub fn transient(detail: impl Into<String>) -> JobError {
        JobError::Transient {
            detail: detail.into(),
            retry_after: None,
        }
    }
}

impl From<StoreError> for JobError {
    fn from(e: StoreError) -> JobError {
        if e.is_bad_input() {
            JobError::Permanent(e.to_string())
        } else {
            JobError::transient(e.to_string())
        }
    }
}

/// A text field of a job's payload; a job without it is malformed, which no retry mends.
pub fn payload_text<'a>(payload: &'a serde_json::Value, key: &str) -> Result<&'a str, JobError> {
    payload
        .get(key)
        .and_then(serde_json::Value::as_str)
        .ok_or_else(|| JobError::Permanent(format!("the job has no `{key}`")))
}

/// What a handler made of one job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Done {
    Succeeded,
    /// The handler recorded the job's end itself, in the transaction that did its work.
    Recorded,
    /// Not now, and not a failure: wait until then (the attempt is given back).
    Defer {
        until: DateTime<Utc>,
        reason: String,
    },
}

/// Runs the jobs of some kinds.
#[async_trait::async_trait]
pub trait Handler: Send + Sync {
    /// The job kinds this handler runs.
    fn kinds(&self) -> &'static [&'static str];
    /// How many of its jobs may run at once.
    fn in_flight(&self) -> usize {
        8
    }
    /// How many rounds (claim, run a batch, record) of its jobs a worker keeps going at once:
    /// with two, one batch's reads and writes overlap the other's calls out (the handler bounds
    /// its calls out across them itself).
    fn rounds_at_once(&self) -> usize {
        1
    }
    /// Runs one claimed job. `owner` holds its lease (for checkpoints).
    async fn run(&self, job: &Job, owner: &str) -> Result<Done, JobError>;
    /// Runs a claimed batch; by default each job on its own, up to [`Handler::in_flight`] at
    /// once. A handler that groups jobs (one digest e-mail for many) overrides this.
    async fn run_batch(&self, jobs: &[Job], owner: &str) -> Vec<Result<Done, JobError>> {
        use futures_util::StreamExt;
        // A window of `in_flight` runs, results in the jobs' order (no closures: they trip the
        // compiler's `Send` inference inside `async_trait`).
        let mut window = futures_util::stream::FuturesOrdered::new();
        let mut waiting = jobs.iter();
        for job in waiting.by_ref().take(self.in_flight().max(1)) {
            window.push_back(self.run(job, owner));
        }
        let mut results = Vec::with_capacity(jobs.len());
        while let Some(result) = window.next().await {
            results.push(result);
            if let Some(job) = waiting.next() {
                window.push_back(self.run(job, owner));
            }
        }
        results
    }
}

/// When to try again, and when to give up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts before a job becomes a dead letter.
    pub max_attempts: u32,
    /// The first retry's ceiling; each next one doubles it.
    pub base: Duration,
    /// The ceiling never grows beyond this.
    pub cap: Duration,
    /// A `Retry-After` longer than this is shortened to it (a misconfigured server cannot park
    /// a job for a year).
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    /// 25 attempts over about four days (two at the very least): ceilings of 1 min, 2 min,
    /// 4 min, … up to 12 h, the wait drawn below each. An agency down for a weekend is waited out.
    fn default() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 25,
            base: Duration::from_secs(60),
            cap: Duration::from_secs(12 * 3600),
            max_retry_after: Duration::from_secs(24 * 3600),
        }
    }
}

impl RetryPolicy {
    /// The ceiling of the wait after failed attempt `attempt` (1-based): backon's exponential
    /// schedule without its own jitter (which adds up to 100 % on top, not full jitter).
    pub fn ceiling(&self, attempt: u32) -> Duration {
        backon::ExponentialBuilder::default()
            .with_min_delay(self.base)
            .with_max_delay(self.cap)
            .with_factor(2.0)
            .without_max_times()
            .build()
            .nth(attempt.saturating_sub(1) as usize)
            .unwrap_or(self.cap)
    }

    /// The wait after failed attempt `attempt`: uniform in [0, ceiling] (full jitter), and never
    /// shorter than what the other side asked for.
    pub fn wait(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let ceiling = self.ceiling(attempt);
        let jittered = ceiling.mul_f64(fastrand::f64());
        match retry_after {
            Some(asked) => jittered.max(asked.min(self.max_retry_after)),
            None => jittered,
        }
    }

    /// What becomes of a job whose attempt number `attempts` failed with `error`.
    pub fn outcome(&self, attempts: i32, error: &JobError, now: DateTime<Utc>) -> JobOutcome {
        match error {
            JobError::Permanent(detail) => JobOutcome::Dead {
                error: format!("refused: {detail}"),
            },
            JobError::Transient { detail, .. }
                if u32::try_from(attempts).unwrap_or(u32::MAX) >= self.max_attempts =>
            {
                JobOutcome::Dead {
                    error: format!("gave up after {attempts} attempts: {detail}"),
                }
            }
            JobError::Transient {
                detail,
                retry_after,
            } => {
                let wait = self.wait(u32::try_from(attempts).unwrap_or(1), *retry_after);
                JobOutcome::Retry {
                    run_after: now + chrono::Duration::from_std(wait).unwrap_or_default(),
                    error: detail.clone(),
                }
            }
        }
    }
}

/// How the workers claim.
#[derive(Debug, Clone, Copy)]
pub struct RunnerSettings {
    /// A claimed job is another worker's to take after this (a crashed worker's jobs come back).
    pub lease: Duration,
    /// How long a worker with nothing to do waits before looking again (real time).
    pub idle_wait: Duration,
    pub retry: RetryPolicy,
}

impl Default for RunnerSettings {
    fn default() -> RunnerSettings {
        RunnerSettings {
            lease: Duration::from_secs(300),
            idle_wait: Duration::from_millis(250),
            retry: RetryPolicy::default(),
        }
    }
}

/// The workers of one gateway instance.
pub struct Runner {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub owner: String,
    pub handlers: Vec<Arc<dyn Handler>>,
    pub settings: RunnerSettings,
    pub metrics: Arc<Metrics>,
    /// Woken when new work is enqueued, so that it starts before the idle wait ends.
    pub wake: Arc<tokio::sync::Notify>,
}

/// What one round of a handler did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Round {
    pub claimed: usize,
    pub succeeded: usize,
    pub retried: usize,
    pub dead: usize,
    pub deferred: usize,
}

impl Round {
    fn add(&mut self, other: Round) {
        self.claimed += other.claimed;
        self.succeeded += other.succeeded;
        self.retried += other.retried;
        self.dead += other.dead;
        self.deferred += other.deferred;
    }
}

impl Runner {
    /// Claims a batch of one handler's jobs, runs them and records their outcomes (in one
    /// transaction).
    pub async fn round(&self, handler: &dyn Handler) -> Result<Round, StoreError> {
        let batch = u32::try_from(handler.in_flight().saturating_mul(2).max(1)).unwrap_or(256);
        let jobs = self
            .store
            .claim_jobs(
                &self.owner,
                handler.kinds(),
                self.clock.now(),
                self.settings.lease,
                batch,
            )
            .await?;
        let mut round = Round {
            claimed: jobs.len(),
            ..Round::default()
        };
        if jobs.is_empty() {
            return Ok(round);
        }
        let results = handler.run_batch(&jobs, &self.owner).await;
        let now = self.clock.now();
        let mut outcomes: Vec<(JobId, JobOutcome)> = Vec::with_capacity(jobs.len());
        let mut dead: Vec<(&Job, String)> = Vec::new();
        // Each job's outcome for the metrics (a job the handler recorded itself succeeded).
        let mut labels: Vec<(&Job, &'static str)> = Vec::with_capacity(jobs.len());
        for (job, result) in jobs.iter().zip(results) {
            let outcome = match result {
                Ok(Done::Succeeded) => JobOutcome::Succeeded,
                Ok(Done::Recorded) => {
                    round.succeeded += 1;
                    labels.push((job, "succeeded"));
                    continue;
                }
                Ok(Done::Defer { until, reason }) => JobOutcome::Defer {
                    run_after: until,
                    reason,
                },
                Err(error) => self.settings.retry.outcome(job.attempts, &error, now),
            };
            match &outcome {
                JobOutcome::Succeeded => round.succeeded += 1,
                JobOutcome::Retry { error, .. } => {
                    round.retried += 1;
                    tracing::info!(job = %job.id, kind = %job.kind, attempt = job.attempts, error = %error, "job will be retried");
                }
                JobOutcome::Dead { error } => {
                    round.dead += 1;
                    dead.push((job, error.clone()));
                    tracing::warn!(job = %job.id, kind = %job.kind, error = %error, "job dead-lettered");
                }
                JobOutcome::Defer { .. } => round.deferred += 1,
            }
            labels.push((
                job,
                match &outcome {
                    JobOutcome::Succeeded => "succeeded",
                    JobOutcome::Retry { .. } => "retried",
                    JobOutcome::Dead { .. } => "dead",
                    JobOutcome::Defer { .. } => "deferred",
                },
            ));
            outcomes.push((job.id.clone(), outcome));
        }
        if !outcomes.is_empty() {
            self.store.finish_jobs(&self.owner, &outcomes, now).await?;
        }
        for (job, label) in labels {
            self.metrics.count_labelled(
                "forfall_jobs_total",
                &[("kind", job.kind.as_str()), ("outcome", label)],
            );
        }
        for (job, error) in dead {
            self.alert_dead(job, &error).await;
        }
        Ok(round)
    }

    /// A dead letter is never silent: the creditor's next alert digest lists it (a job of its
    /// own, enqueued after the dead letter was recorded; the dead letter stays visible in
    /// `forfall jobs dead` whatever becomes of the alert).
    async fn alert_dead(&self, job: &Job, error: &str) {
        if job.kind == effects::EMAIL_JOB {
            return; // an e-mail that cannot be sent is not announced by e-mail
        }
        if job.kind == effects::DELIVERY_JOB {
            // The endpoint's owner (often a partner, not the creditor) sees it among the dead
            // letters; the creditor is not e-mailed about someone else's receiver.
            return;
        }
        let alert = crate::notify::digests::dead_letter_job(job, error, self.clock.now());
        if let Err(e) = self
            .store
            .enqueue_job(&job.creditor_id, &alert, self.clock.now())
            .await
        {
            tracing::error!(job = %job.id, error = %e, "could not enqueue the dead-letter alert");
        }
    }

    /// Runs every handler's jobs until none is runnable now (tests, `forfall demo`, the
    /// benchmark): what a manual clock makes due is done before the clock moves on.
    pub async fn drain(&self) -> Result<Round, StoreError> {
        let mut total = Round::default();
        loop {
            let mut progressed = false;
            for handler in &self.handlers {
                let round = self.round(handler.as_ref()).await?;
                progressed |= round.claimed > 0;
                total.add(round);
            }
            if !progressed {
                return Ok(total);
            }
        }
    }

    /// One worker per handler (or [`Handler::rounds_at_once`]) until `stop` turns true.
    pub async fn run(self: Arc<Self>, stop: tokio::sync::watch::Receiver<bool>) {
        let mut workers = Vec::new();
        let loops = self
            .handlers
            .iter()
            .flat_map(|handler| {
                std::iter::repeat_n(handler.clone(), handler.rounds_at_once().max(1))
            })
            .collect::<Vec<_>>();
        for handler in loops {
            let runner = self.clone();
            let mut stop = stop.clone();
            workers.push(tokio::spawn(async move {
                loop {
                    if *stop.borrow() {
                        return;
                    }
                    let claimed = match runner.round(handler.as_ref()).await {
                        Ok(round) => round.claimed,
                        Err(e) => {
                            tracing::error!(error = %e, kinds = ?handler.kinds(), "claiming jobs failed");
                            0
                        }
                    };
                    if claimed == 0 {
                        tokio::select! {
                            _ = stop.changed() => {}
                            () = runner.wake.notified() => {}
                            () = tokio::time::sleep(runner.settings.idle_wait) => {}
                        }
                    }
                }
            }));
        }
        for worker in workers {
            let _ = worker.await;
        }
    }
}
