//! The durable store: one API ([`Store`]), two implementations (SQLite in WAL mode, the embedded
//! default; PostgreSQL, for several gateway instances). Both pass the same conformance suite
//! (`tests/store.rs`).
//!
//! Tenant scoping: every read and write of creditor data takes the creditor's id and filters on it;
//! there is no unscoped query for it. The few cross-tenant operations (claiming jobs, leases, the
//! list of creditor ids for the day tick) read no creditor data beyond ids.

pub mod api;
mod postgres;
mod rows;
mod sql;
mod sqlite;
pub(crate) use sqlite::{
    connection_settings as sqlite_connection_settings, writer_settings as sqlite_writer_settings,
};
pub mod webhooks;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};

use crate::domain::{
    Case, CaseId, CaseState, Connection, ConnectionId, ConnectionStatus, Creditor, CreditorId,
    Customer, CustomerFacts, CustomerId, Decision, EventSource, Invoice, InvoiceEvent,
    InvoiceFacts, InvoiceId, Job, JobAttempt, JobId, JobState, MoneyError, NewCase, NewCreditor,
    NewDecision, NewJob, PipelineMessage, SealedCredentials, Stage,
};

pub use api::{ApiStore, Idempotency, InvoiceFilter, KeptAnswer};
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;
pub use webhooks::{EventFilter, WebhookStore};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the database URL `{url}` is not valid: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("cannot reach the database: {0}")]
    Unreachable(String),
    #[error(
        "the database has schema version {database} but this binary knows only up to {binary}: \
         it was migrated by a newer Forfall; run that version or restore a backup"
    )]
    SchemaNewer { database: i64, binary: i64 },
    #[error("migration {version} in the database differs from the one in this binary: {detail}")]
    SchemaMismatch { version: i64, detail: String },
    #[error("the database schema is not current: run `forfall migrate`")]
    NotMigrated,
    #[error("{0}")]
    Invalid(String),
    #[error("{what} `{id}` was changed by someone else; read it again and retry")]
    Conflict { what: &'static str, id: String },
    #[error("{what} `{id}` does not exist for this creditor")]
    NotFound { what: &'static str, id: String },
    /// The agency event was applied before (a replayed delivery): nothing was written.
    #[error("agency event `{0}` was already applied")]
    AlreadyApplied(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(String),
}

impl From<MoneyError> for StoreError {
    fn from(e: MoneyError) -> Self {
        StoreError::Invalid(e.to_string())
    }
}

impl StoreError {
    /// Whether the caller gave something wrong (configuration, input), as opposed to a failure.
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            StoreError::BadUrl { .. }
                | StoreError::SchemaNewer { .. }
                | StoreError::SchemaMismatch { .. }
                | StoreError::Invalid(_)
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// What an idempotent upsert did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    Created,
    Changed,
    /// The facts were already known: nothing was written.
    Unchanged,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upserted<Id> {
    pub id: Id,
    pub written: Written,
}

/// Where the schema stands against this binary's migrations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaStatus {
    pub applied: Vec<i64>,
    pub known: Vec<i64>,
}

impl SchemaStatus {
    pub fn is_current(&self) -> bool {
        self.applied == self.known
    }
}

/// The lifecycle engine's verdict on one invoice, written in one transaction with the decisions
/// behind it and the jobs it causes (the transactional outbox).
#[derive(Debug, Clone, PartialEq)]
pub struct LifecycleUpdate {
    pub stage: Stage,
    pub next_action_on: Option<NaiveDate>,
    pub lifecycle: serde_json::Value,
    pub decisions: Vec<NewDecision>,
    pub jobs: Vec<NewJob>,
    /// The agency event this update applies: remembered in the same transaction, so a replay of
    /// it is refused with [`StoreError::AlreadyApplied`] and writes nothing.
    pub agency_event: Option<AgencyEventSeen>,
    /// The creditor's own say as the lifecycle now holds it, mirrored into the invoice's columns
    /// (which the API's filters read): opted out, and the dispute (`Some(None)`: all of it).
    pub opt_out: bool,
    pub dispute: Option<Option<rust_decimal::Decimal>>,
    /// The civil day of the update: a dispute it opens is dated so.
    pub on: NaiveDate,
    /// What a creditor or partner did, logged among the invoice's events beside the decisions.
    pub logged: Option<LoggedEvent>,
}

/// An invoice event written with a lifecycle update (source, kind, what it carried).
#[derive(Debug, Clone, PartialEq)]
pub struct LoggedEvent {
    pub source: EventSource,
    pub kind: String,
    pub change: serde_json::Value,
}

/// An agency event's id (its `webhook-id`), remembered once applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgencyEventSeen {
    pub id: String,
    pub case_id: CaseId,
    pub kind: String,
}

/// What the lifecycle engine makes of an ingested invoice, called inside the ingest transaction:
/// given the invoice as stored (`None` when it is new) and its new facts, the lifecycle update to
/// write with them (`None`: the lifecycle stays as it is). Pure: it reads nothing and writes nothing.
pub trait Decide: Send + Sync {
    fn decide(
        &self,
        before: Option<&Invoice>,
        after: &InvoiceFacts,
        customer_opt_out: bool,
    ) -> Option<LifecycleUpdate>;
}

/// One invoice (and its customer) as a connector reported it.
#[derive(Debug, Clone, PartialEq)]
pub struct IngestItem {
    pub customer: Option<CustomerFacts>,
    pub invoice: InvoiceFacts,
    /// Update the invoice if Forfall knows it, never create it (a paid or credited invoice).
    pub known_only: bool,
}

/// What one ingest writes.
pub struct IngestBatch<'a> {
    pub items: &'a [IngestItem],
    pub source: EventSource,
    pub decide: &'a dyn Decide,
    /// The pass this page belongs to, if it comes from one.
    pub progress: Option<&'a PassProgress>,
}

/// A page of a pass: committed with the items, so that a pass cut short resumes after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PassProgress {
    pub pass: i64,
    /// The connector's cursor after this page.
    pub cursor: String,
    /// This page ends the pass.
    pub last: bool,
    /// The pass is full: every invoice listed is marked seen by it.
    pub full: bool,
}

/// What an ingest wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IngestReport {
    pub created: usize,
    pub changed: usize,
    pub unchanged: usize,
    /// Closed invoices Forfall never knew: not created.
    pub skipped: usize,
    pub decisions: usize,
}

/// A message for the agency to keep (see [`Store::record_pipeline_messages`]).
#[derive(Debug, Clone, PartialEq)]
pub struct PipelineRecord {
    pub creditor: CreditorId,
    pub case: CaseId,
    /// The message's id (its idempotency key).
    pub id: String,
    pub kind: String,
    pub body: serde_json::Value,
    /// It was just pushed.
    pub delivered: bool,
    /// The state its case is in once it is delivered, if it changes.
    pub case_state: Option<CaseState>,
}

/// Why a claimed job goes back.
#[derive(Debug, Clone, PartialEq)]
pub enum JobOutcome {
    Succeeded,
    /// Try again at `run_after`.
    Retry {
        run_after: DateTime<Utc>,
        error: String,
    },
    /// Give up: a dead letter, visible until retried by hand.
    Dead {
        error: String,
    },
    /// Not an attempt: the job waits until `run_after` (its attempt is given back), e.g. a digest
    /// already sent today waits for tomorrow's.
    Defer {
        run_after: DateTime<Utc>,
        reason: String,
    },
}

/// The one store API. Times are passed in (from the injected clock), never read from the database's
/// own clock, so that tests and simulations can move through days.
#[async_trait::async_trait]
pub trait Store: ApiStore + WebhookStore + Send + Sync {
    fn backend(&self) -> Backend;

    /// Applies the migrations this binary knows; harmless when the schema is current.
    async fn migrate(&self) -> Result<(), StoreError>;
    async fn schema_status(&self) -> Result<SchemaStatus, StoreError>;
    /// Fails unless the database answers.
    async fn ping(&self) -> Result<(), StoreError>;
    async fn close(&self);

    // Creditors.
    async fn create_creditor(
        &self,
        new: &NewCreditor,
        now: DateTime<Utc>,
    ) -> Result<Creditor, StoreError>;
    async fn creditor(&self, id: &CreditorId) -> Result<Option<Creditor>, StoreError>;
    /// Every creditor's id, for the scheduler's day tick.
    async fn creditor_ids(&self) -> Result<Vec<CreditorId>, StoreError>;

    // Connections.
    /// Creates a connection under `id` (chosen by the caller, who seals the credentials to it).
    async fn create_connection(
        &self,
        creditor: &CreditorId,
        id: &ConnectionId,
        platform: &str,
        credentials: &SealedCredentials,
        now: DateTime<Utc>,
    ) -> Result<Connection, StoreError>;
    /// A connection of `creditor`, deleted or not (its status says).
    async fn connection(
        &self,
        creditor: &CreditorId,
        id: &ConnectionId,
    ) -> Result<Option<Connection>, StoreError>;
    /// Never changes a deleted connection (`NotFound`).
    async fn set_connection_status(
        &self,
        creditor: &CreditorId,
        id: &ConnectionId,
        status: ConnectionStatus,
        last_error: Option<&str>,
    ) -> Result<(), StoreError>;

    // Customers and invoices: idempotent ingest.
    async fn upsert_customer(
        &self,
        creditor: &CreditorId,
        connection: &ConnectionId,
        facts: &CustomerFacts,
    ) -> Result<Upserted<CustomerId>, StoreError>;
    async fn customer(
        &self,
        creditor: &CreditorId,
        id: &CustomerId,
    ) -> Result<Option<Customer>, StoreError>;
    async fn set_customer_opt_out(
        &self,
        creditor: &CreditorId,
        customer: &CustomerId,
        opt_out: bool,
    ) -> Result<(), StoreError>;
    /// Writes the facts when they are new or changed, with one InvoiceEvent describing the change,
    /// in one transaction; the same facts again write nothing.
    async fn upsert_invoice(
        &self,
        creditor: &CreditorId,
        connection: &ConnectionId,
        facts: &InvoiceFacts,
        source: EventSource,
        now: DateTime<Utc>,
    ) -> Result<Upserted<InvoiceId>, StoreError>;
    async fn set_invoice_opt_out(
        &self,
        creditor: &CreditorId,
        invoice: &InvoiceId,
        opt_out: bool,
        source: EventSource,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    async fn invoice(
        &self,
        creditor: &CreditorId,
        id: &InvoiceId,
    ) -> Result<Option<Invoice>, StoreError>;
    async fn invoice_events(
        &self,
        creditor: &CreditorId,
        invoice: &InvoiceId,
    ) -> Result<Vec<InvoiceEvent>, StoreError>;
    /// The invoices whose `next_action_on` is on or before `day`, oldest first, through the
    /// `invoices_next_action` index: a day's work reads only what needs action.
    async fn invoices_due(
        &self,
        creditor: &CreditorId,
        day: NaiveDate,
        limit: u32,
    ) -> Result<Vec<Invoice>, StoreError>;
    /// The database's query plan for [`Store::invoices_due`], to show it runs on the
    /// `invoices_next_action` index (an operator's check, and a test's).
    async fn explain_invoices_due(
        &self,
        creditor: &CreditorId,
        day: NaiveDate,
    ) -> Result<String, StoreError>;
    /// Saves the engine's verdict if the invoice is still at `expected_version`
    /// (else [`StoreError::Conflict`]), with its decisions and jobs, in one transaction.
    async fn save_lifecycle(
        &self,
        creditor: &CreditorId,
        invoice: &InvoiceId,
        expected_version: i64,
        update: &LifecycleUpdate,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    async fn decisions(
        &self,
        creditor: &CreditorId,
        invoice: &InvoiceId,
    ) -> Result<Vec<Decision>, StoreError>;

    // Work claiming.
    /// Claims up to `limit` runnable jobs (pending and due, or running with an expired lease) for
    /// `owner` until `now + lease`. Two concurrent claimers never get the same job.
    async fn claim_jobs(
        &self,
        owner: &str,
        kinds: &[&str],
        now: DateTime<Utc>,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<Job>, StoreError>;
    /// Records a claimed job's outcome; `false` when `owner` no longer holds its lease.
    async fn finish_job(
        &self,
        job: &JobId,
        owner: &str,
        outcome: &JobOutcome,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    async fn jobs(&self, creditor: &CreditorId) -> Result<Vec<Job>, StoreError>;
    /// Enqueues one job unless a job with its idempotency key exists; `false` when it did.
    async fn enqueue_job(
        &self,
        creditor: &CreditorId,
        job: &NewJob,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// Enqueues several jobs in one transaction (a group commit); for each, whether it was new
    /// (a key already enqueued, or repeated earlier in `jobs`, is not).
    async fn enqueue_jobs(
        &self,
        jobs: &[(CreditorId, NewJob)],
        now: DateTime<Utc>,
    ) -> Result<Vec<bool>, StoreError>;
    /// Records work that failed for good as a dead letter (one per key; a repeat updates its error).
    async fn record_dead_letter(
        &self,
        creditor: &CreditorId,
        job: &NewJob,
        error: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    // The job runner: many outcomes in one transaction, checkpoints, the operator's view.
    /// Records several claimed jobs' outcomes (and one attempt each) in one transaction; for
    /// each, whether `owner` still held it.
    async fn finish_jobs(
        &self,
        owner: &str,
        outcomes: &[(JobId, JobOutcome)],
        now: DateTime<Utc>,
    ) -> Result<Vec<bool>, StoreError>;
    /// Saves what a handler needs to know on the next attempt; `false` when `owner` lost the job.
    async fn save_checkpoint(
        &self,
        job: &JobId,
        owner: &str,
        checkpoint: &serde_json::Value,
    ) -> Result<bool, StoreError>;
    /// A job by id, whatever its creditor (the operator's `forfall jobs show`).
    async fn job(&self, id: &JobId) -> Result<Option<Job>, StoreError>;
    async fn job_attempts(&self, id: &JobId) -> Result<Vec<JobAttempt>, StoreError>;
    /// Jobs of every creditor, newest first, optionally only in one state.
    async fn list_jobs(&self, state: Option<JobState>, limit: u32) -> Result<Vec<Job>, StoreError>;
    /// Puts a dead (or pending) job back in the queue now, with a fresh count of attempts
    /// (its history stays). `false` when there is no such job or it is running or done.
    async fn retry_job(&self, id: &JobId, now: DateTime<Utc>) -> Result<bool, StoreError>;

    // The day tick.
    /// Records that the day tick has run through `day` for the creditor.
    async fn set_ticked_through(
        &self,
        creditor: &CreditorId,
        day: NaiveDate,
    ) -> Result<(), StoreError>;

    // Collection cases and the messages about them.
    /// Opens the case for a transfer, once per `transfer_key` (a repeat returns the same case).
    async fn open_case(
        &self,
        creditor: &CreditorId,
        new: &NewCase,
        now: DateTime<Utc>,
    ) -> Result<Case, StoreError>;
    /// The invoice's most recent case.
    async fn latest_case(
        &self,
        creditor: &CreditorId,
        invoice: &InvoiceId,
    ) -> Result<Option<Case>, StoreError>;
    /// A case by id alone: the agency names only the case.
    async fn find_case(&self, id: &CaseId) -> Result<Option<Case>, StoreError>;
    /// Whether an agency event with this `webhook-id` was applied already.
    async fn pipeline_event_seen(&self, id: &str) -> Result<bool, StoreError>;
    async fn set_case_state(
        &self,
        creditor: &CreditorId,
        case: &CaseId,
        state: CaseState,
    ) -> Result<(), StoreError>;
    async fn confirm_withdrawal(
        &self,
        creditor: &CreditorId,
        case: &CaseId,
    ) -> Result<(), StoreError>;
    /// Keeps a message for the agency (once per id); `delivered` when it was just pushed.
    #[allow(clippy::too_many_arguments)]
    async fn record_pipeline_message(
        &self,
        creditor: &CreditorId,
        case: &CaseId,
        id: &str,
        kind: &str,
        body: &serde_json::Value,
        delivered: bool,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// Opens the cases of several transfers of one creditor in one transaction, each as
    /// [`Store::open_case`] would (once per `transfer_key`), in the order given.
    async fn open_cases(
        &self,
        creditor: &CreditorId,
        new: &[NewCase],
        now: DateTime<Utc>,
    ) -> Result<Vec<Case>, StoreError>;
    /// Keeps several messages, each as [`Store::record_pipeline_message`] would, with the case
    /// state each one's delivery brings, in one transaction.
    async fn record_pipeline_messages(
        &self,
        messages: &[PipelineRecord],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// Keeps several messages as [`Store::record_pipeline_messages`] does and, in the same
    /// transaction, finishes the job behind each as succeeded (one attempt each) where `owner`
    /// still holds it: for each, whether it did. One commit for a batch's deliveries.
    async fn record_pipeline_messages_finishing(
        &self,
        owner: &str,
        messages: &[(JobId, PipelineRecord)],
        now: DateTime<Utc>,
    ) -> Result<Vec<bool>, StoreError>;
    /// The invoices of one connection with these platform ids (those stored, in no particular
    /// order): a batch's invoices in one read.
    async fn invoices_by_platform_ids(
        &self,
        creditor: &CreditorId,
        connection: &ConnectionId,
        platform_ids: &[String],
    ) -> Result<Vec<Invoice>, StoreError>;
    /// The creditor's customers with these ids (those stored, in no particular order).
    async fn customers_by_ids(
        &self,
        creditor: &CreditorId,
        ids: &[CustomerId],
    ) -> Result<Vec<Customer>, StoreError>;
    /// The decisions about these invoices, each invoice's in order (as [`Store::decisions`]).
    async fn decisions_of_invoices(
        &self,
        creditor: &CreditorId,
        invoices: &[InvoiceId],
    ) -> Result<Vec<Decision>, StoreError>;
    /// Each of these invoices' most recent case (as [`Store::latest_case`]); an invoice without
    /// one is left out.
    async fn latest_cases(
        &self,
        creditor: &CreditorId,
        invoices: &[InvoiceId],
    ) -> Result<Vec<Case>, StoreError>;
    /// The messages not yet acknowledged, after `after_seq`, oldest first (the pull queue).
    async fn unacknowledged_messages(
        &self,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<PipelineMessage>, StoreError>;
    /// Every message of one creditor's cases, oldest first.
    async fn pipeline_messages(
        &self,
        creditor: &CreditorId,
    ) -> Result<Vec<PipelineMessage>, StoreError>;
    /// The agency acknowledges a pulled message: `None` when there is no such message, else
    /// whether this was the first acknowledgement (a repeat is harmless).
    async fn acknowledge_message(
        &self,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<bool>, StoreError>;

    // Digest e-mails.
    /// Whether the creditor's digest of `kind` for `day` was sent.
    async fn notification_sent(
        &self,
        creditor: &CreditorId,
        kind: &str,
        day: NaiveDate,
    ) -> Result<bool, StoreError>;
    /// Records the digest sent and finishes the jobs it covered (held by `owner`), in one
    /// transaction; `false` (nothing written) when one was already recorded for that day.
    #[allow(clippy::too_many_arguments)]
    async fn record_notification(
        &self,
        owner: &str,
        jobs: &[JobId],
        creditor: &CreditorId,
        kind: &str,
        day: NaiveDate,
        message_id: &str,
        items: usize,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    // Ingest.
    /// A connection by id alone: for the platform's webhooks and the command line, where the id is
    /// all there is. Everything after uses the connection's creditor. A deleted connection is not
    /// found (nor listed by `all_connections`, nor started by `begin_pass`).
    async fn find_connection(&self, id: &ConnectionId) -> Result<Option<Connection>, StoreError>;
    /// Every connection, for the poll loop.
    async fn all_connections(&self) -> Result<Vec<Connection>, StoreError>;
    /// Starts a pass (the next number) unless one is under way; returns the connection as it is now.
    async fn begin_pass(
        &self,
        creditor: &CreditorId,
        connection: &ConnectionId,
        full: bool,
    ) -> Result<Connection, StoreError>;
    /// Writes a page of ingested invoices, each re-evaluated by `decide`, with the pass's progress,
    /// in one transaction.
    async fn ingest(
        &self,
        creditor: &CreditorId,
        connection: &ConnectionId,
        batch: &IngestBatch<'_>,
        now: DateTime<Utc>,
    ) -> Result<IngestReport, StoreError>;
    /// The platform ids of the open invoices (outstanding above zero, no final stage) a full pass
    /// `pass` did not list.
    async fn unseen_open_invoices(
        &self,
        creditor: &CreditorId,
        connection: &ConnectionId,
        pass: i64,
    ) -> Result<Vec<String>, StoreError>;
    /// The platform ids of a connection's open invoices, of one customer or of all.
    async fn open_invoice_refs(
        &self,
        creditor: &CreditorId,
        connection: &ConnectionId,
        customer_platform_id: Option<&str>,
    ) -> Result<Vec<String>, StoreError>;
    /// An invoice by the platform's id.
    async fn invoice_by_platform_id(
        &self,
        creditor: &CreditorId,
        connection: &ConnectionId,
        platform_id: &str,
    ) -> Result<Option<Invoice>, StoreError>;
    /// Takes (or renews) the named lease for `owner` until `now + ttl`, if it is free, expired or
    /// already `owner`'s. Returns whether `owner` holds it.
    async fn acquire_lease(
        &self,
        name: &str,
        owner: &str,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> Result<bool, StoreError>;
    async fn release_lease(&self, name: &str, owner: &str) -> Result<(), StoreError>;
    /// Frees every lease and job claim `owner` holds (graceful shutdown).
    async fn release_everything_of(&self, owner: &str) -> Result<(), StoreError>;
}

/// How to open the database.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub url: String,
    pub max_connections: u32,
}

/// Opens the store named by the URL: `sqlite://path` (created if missing) or `postgres://…`.
pub async fn open(options: &StoreOptions) -> Result<Arc<dyn Store>, StoreError> {
    let url = options.url.as_str();
    if url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::open(options).await?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(PostgresStore::open(options).await?))
    } else {
        Err(StoreError::BadUrl {
            url: redact_url(url),
            reason: "it must start with sqlite:// or postgres://".into(),
        })
    }
}

/// A PostgreSQL URL with its database name replaced (tests and benchmarks create their own).
pub fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let base = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{base}/{database}?{query}"),
        None => format!("{base}/{database}"),
    }
}

/// The URL with any password replaced, fit for messages and logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

fn millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// `t` as the store keeps it: to the millisecond. What an API answers on creation then equals
/// what it answers when read back.
pub fn to_stored_precision(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap_or(t)
}

fn lease_end(now: DateTime<Utc>, ttl: Duration) -> Result<DateTime<Utc>, StoreError> {
    chrono::Duration::from_std(ttl)
        .ok()
        .and_then(|ttl| now.checked_add_signed(ttl))
        .ok_or_else(|| StoreError::Invalid(format!("lease of {ttl:?} is too long")))
}

fn migration_error(e: sqlx::migrate::MigrateError, known: &[i64]) -> StoreError {
    use sqlx::migrate::MigrateError;
    match e {
        MigrateError::VersionMissing(version) => StoreError::SchemaNewer {
            database: version,
            binary: known.iter().copied().max().unwrap_or(0),
        },
        MigrateError::VersionMismatch(version) => StoreError::SchemaMismatch {
            version,
            detail: "its checksum changed".into(),
        },
        MigrateError::Dirty(version) => StoreError::SchemaMismatch {
            version,
            detail: "it was left half-applied; restore a backup".into(),
        },
        MigrateError::Execute(e) => StoreError::Database(e),
        other => StoreError::Migrate(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_in_a_database_url_never_reaches_a_message() {
        assert_eq!(
            redact_url("postgres://forfall:s3cret@db:5432/forfall"),
            "postgres://forfall:***@db:5432/forfall"
        );
        assert_eq!(
            redact_url("sqlite://data/forfall.db"),
            "sqlite://data/forfall.db"
        );
    }

    #[test]
    fn an_instant_at_stored_precision_reads_back_unchanged() {
        let now = DateTime::parse_from_rfc3339("2026-12-06T08:55:26.147495085Z")
            .unwrap()
            .with_timezone(&Utc);
        let kept = to_stored_precision(now);
        assert_eq!(kept.to_rfc3339(), "2026-12-06T08:55:26.147+00:00");
        assert_eq!(rows::instant(millis(kept)).unwrap(), kept);
    }
}
