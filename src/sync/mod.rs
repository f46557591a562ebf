//! Ingest: invoices from the platforms into the store, through the lifecycle engine.
//!
//! - **Passes** ([`Ingest::run_pass`]): page by page through a connection's invoices, each page
//!   committed with the cursor after it, so a pass cut short resumes where it stopped. The next
//!   page is fetched while the previous one is written. A full pass (the nightly resync) reads
//!   everything; at its end, open invoices it did not list are read one by one (paid, credited or
//!   gone).
//! - **The poll loop** ([`run_poll_loop`]): every interval, one pass per connection, under a lease
//!   so that only one instance polls a connection at a time; a full pass once a day.
//! - **Webhooks** ([`hooks`]): verified, stored as a job, acknowledged at once, processed by
//!   [`run_webhook_worker`]. A delivery only names what changed; the invoice is read again from
//!   the platform (or, for the generic connector, taken from the signed delivery itself).
//!
//! Every ingested change goes through the store's idempotent upsert and is re-evaluated by the
//! lifecycle engine in the same transaction ([`reevaluate`]).

#[cfg(feature = "fake")]
pub mod bench;
pub mod connections;
pub mod hooks;
pub mod reevaluate;
pub mod retry_pass;
pub mod write_back;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use forfall_connector::{
    Connector, ConnectorError, Cursor, ListRequest, Page, RemoteChange, RemoteCustomer, RemoteId,
    RemoteInvoice,
};
use rust_decimal::Decimal;

use crate::api::metrics::Metrics;
use crate::clock::Clock;
use crate::domain::{
    Connection, ConnectionId, ConnectionStatus, Creditor, Currency, CustomerFacts, CustomerKind,
    EventSource, InvoiceFacts, NewJob, PostalAddress,
};
use crate::rules::policy::Policy;
use crate::store::{IngestBatch, IngestItem, IngestReport, PassProgress, Store, StoreError};

use connections::{Connectors, Opened};
use reevaluate::Reevaluate;

/// Why ingest failed.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Connector(#[from] ConnectorError),
    #[error("FORFALL_ENCRYPTION_KEY is not set: connection credentials cannot be opened")]
    NoKey,
    #[error("the connection's credentials cannot be used: {0}")]
    Secrets(String),
    #[error("the creditor's policy is invalid: {0}")]
    Policy(String),
    #[error("no connection {0}")]
    UnknownConnection(String),
    #[error("another instance took over the connection's lease")]
    LeaseLost,
}

/// How a pass is going, for a progress bar.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PassStats {
    pub pages: usize,
    pub invoices: usize,
    pub created: usize,
    pub changed: usize,
    pub decisions: usize,
    /// Open invoices a full pass did not list, read again one by one.
    pub reread: usize,
}

impl PassStats {
    fn add(&mut self, report: &IngestReport, listed: usize) {
        self.pages += 1;
        self.invoices += listed;
        self.created += report.created;
        self.changed += report.changed;
        self.decisions += report.decisions;
    }
}

/// A lease to keep while a pass runs: renewed after every page.
#[derive(Debug, Clone)]
pub struct PassLease {
    pub name: String,
    pub owner: String,
    pub ttl: Duration,
}

/// The ingest service: the store, the clock and the opened connectors.
pub struct Ingest {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub connectors: Connectors,
    pub metrics: Arc<Metrics>,
    /// Wakes the webhook worker when a delivery is stored.
    pub deliveries: tokio::sync::Notify,
    /// Group commit of webhook deliveries (started on first use).
    delivery_writer: std::sync::OnceLock<tokio::sync::mpsc::Sender<PendingDelivery>>,
    /// Connections recently looked up by webhooks, for [`CONNECTION_CACHE`].
    recent_connections: std::sync::Mutex<HashMap<ConnectionId, (Instant, Connection)>>,
}

/// How long a webhook's connection lookup is reused: a connection deleted or changed is seen
/// by webhooks within this time.
pub const CONNECTION_CACHE: Duration = Duration::from_secs(5);

/// A delivery waiting for the next group commit.
struct PendingDelivery {
    creditor: crate::domain::CreditorId,
    job: NewJob,
    reply: tokio::sync::oneshot::Sender<Result<bool, String>>,
}

/// The most a group commit takes at once.
const GROUP_COMMIT_MOST: usize = 512;

/// A group commit's batch: the next item (waiting for it), and all that are already queued
/// behind it, up to [`GROUP_COMMIT_MOST`]; `None` once the queue is closed and empty.
pub(crate) async fn next_batch<T>(queue: &mut tokio::sync::mpsc::Receiver<T>) -> Option<Vec<T>> {
    let first = queue.recv().await?;
    let mut batch = vec![first];
    while batch.len() < GROUP_COMMIT_MOST {
        match queue.try_recv() {
            Ok(next) => batch.push(next),
            Err(_) => break,
        }
    }
    Some(batch)
}

/// Writes waiting deliveries together: one transaction for all that arrived meanwhile.
async fn write_deliveries(
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    mut queue: tokio::sync::mpsc::Receiver<PendingDelivery>,
) {
    while let Some(batch) = next_batch(&mut queue).await {
        let jobs: Vec<_> = batch
            .iter()
            .map(|p| (p.creditor.clone(), p.job.clone()))
            .collect();
        match store.enqueue_jobs(&jobs, clock.now()).await {
            Ok(new) => {
                for (pending, new) in batch.into_iter().zip(new) {
                    let _ = pending.reply.send(Ok(new));
                }
            }
            Err(e) => {
                let message = e.to_string();
                for pending in batch {
                    let _ = pending.reply.send(Err(message.clone()));
                }
            }
        }
    }
}

/// A creditor's rules and day.
struct CreditorDay {
    creditor: Creditor,
    policy: Policy,
    today: NaiveDate,
}

impl Ingest {
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        connectors: Connectors,
        metrics: Arc<Metrics>,
    ) -> Ingest {
        Ingest {
            store,
            clock,
            connectors,
            metrics,
            deliveries: tokio::sync::Notify::new(),
            delivery_writer: std::sync::OnceLock::new(),
            recent_connections: std::sync::Mutex::new(HashMap::new()),
        }
    }

    /// A connection by id for a webhook, reusing a lookup younger than [`CONNECTION_CACHE`].
    pub async fn connection_for_webhook(
        &self,
        id: &ConnectionId,
    ) -> Result<Option<Connection>, StoreError> {
        {
            let recent = self
                .recent_connections
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if let Some((at, connection)) = recent.get(id)
                && at.elapsed() < CONNECTION_CACHE
            {
                return Ok(Some(connection.clone()));
            }
        }
        let found = self.store.find_connection(id).await?;
        if let Some(connection) = &found {
            let mut recent = self
                .recent_connections
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if recent.len() > 10_000 {
                recent.clear();
            }
            recent.insert(id.clone(), (Instant::now(), connection.clone()));
        }
        Ok(found)
    }

    /// Forgets what this instance holds of a connection (after it is deleted): its webhook lookup
    /// and its opened connector, so webhooks for it are refused at once here. Other instances
    /// refuse them within [`CONNECTION_CACHE`].
    pub fn forget_connection(&self, id: &ConnectionId) {
        self.recent_connections
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
        self.connectors.forget(id);
    }

    /// Stores a verified delivery as a job, committed together with the deliveries arriving at
    /// the same time; whether it was new (a replay is not). Answers only once it is durable.
    pub async fn store_delivery(
        &self,
        creditor: &crate::domain::CreditorId,
        job: NewJob,
    ) -> Result<bool, String> {
        let writer = self.delivery_writer.get_or_init(|| {
            let (sender, queue) = tokio::sync::mpsc::channel(4096);
            tokio::spawn(write_deliveries(
                self.store.clone(),
                self.clock.clone(),
                queue,
            ));
            sender
        });
        let (reply, answer) = tokio::sync::oneshot::channel();
        writer
            .send(PendingDelivery {
                creditor: creditor.clone(),
                job,
                reply,
            })
            .await
            .map_err(|_| "the delivery writer stopped".to_owned())?;
        answer
            .await
            .map_err(|_| "the delivery writer stopped".to_owned())?
    }

    pub async fn connection(&self, id: &ConnectionId) -> Result<Connection, SyncError> {
        self.store
            .find_connection(id)
            .await?
            .ok_or_else(|| SyncError::UnknownConnection(id.to_string()))
    }

    async fn creditor_day(&self, connection: &Connection) -> Result<CreditorDay, SyncError> {
        let creditor = self
            .store
            .creditor(&connection.creditor_id)
            .await?
            .ok_or_else(|| SyncError::UnknownConnection(connection.id.to_string()))?;
        let policy =
            Policy::from_json(&creditor.policy).map_err(|e| SyncError::Policy(e.to_string()))?;
        let today = self.clock.today(creditor.time_zone);
        Ok(CreditorDay {
            creditor,
            policy,
            today,
        })
    }

    /// Runs one pass over a connection (or finishes the one under way), reporting each page to
    /// `progress`.
    pub async fn run_pass(
        &self,
        id: &ConnectionId,
        full: bool,
        lease: Option<&PassLease>,
        progress: &(dyn Fn(&PassStats) + Send + Sync),
    ) -> Result<PassStats, SyncError> {
        let before = self.connection(id).await?;
        let opened = self.connectors.open(&before)?;
        let day = self.creditor_day(&before).await?;
        let connection = self.store.begin_pass(&day.creditor.id, id, full).await?;
        let resumed = before.sync.in_pass;
        let full = connection.sync.full;
        let pass = connection.sync.pass;
        // A pass under way resumes from its cursor; a new full pass starts from nothing; a new
        // incremental pass starts from where the last one ended (what lets it skip unchanged data).
        let start = match (resumed, full) {
            (false, true) => None,
            _ => connection.sync_cursor.clone().map(Cursor),
        };
        tracing::info!(connection = %id, pass, full, resumed, "sync pass");
        let connector = opened.connector.as_ref();
        let request = |cursor: Option<Cursor>| ListRequest {
            cursor,
            full,
            today: day.today,
        };
        let mut stats = PassStats::default();
        let mut next = connector.open_invoices(&request(start)).await;
        loop {
            let page = next?;
            let listed = page.open.len() + page.closed.len();
            let progress_mark = PassProgress {
                pass,
                cursor: page.cursor.0.clone(),
                last: page.last,
                full,
            };
            let items = items_of(&page)?;
            let write = self.write(
                &connection,
                &day,
                &items,
                EventSource::Poll,
                Some(&progress_mark),
            );
            if page.last {
                let report = write.await?;
                stats.add(&report, listed);
                progress(&stats);
                break;
            }
            let next_request = request(Some(page.cursor.clone()));
            let fetch = connector.open_invoices(&next_request);
            let (written, fetched) = tokio::join!(write, fetch);
            stats.add(&written?, listed);
            progress(&stats);
            next = fetched;
            if let Some(lease) = lease {
                self.renew(lease).await?;
            }
        }
        if full && connector.capabilities().complete_listing {
            let unseen = self
                .store
                .unseen_open_invoices(&day.creditor.id, id, pass)
                .await?;
            for platform_id in unseen {
                self.reread(
                    &connection,
                    &day,
                    connector,
                    &platform_id,
                    EventSource::Poll,
                )
                .await?;
                stats.reread += 1;
                progress(&stats);
            }
        }
        self.metrics.count(
            "forfall_sync_passes_total",
            if full { "full" } else { "incremental" },
        );
        Ok(stats)
    }

    async fn renew(&self, lease: &PassLease) -> Result<(), SyncError> {
        let held = self
            .store
            .acquire_lease(&lease.name, &lease.owner, self.clock.now(), lease.ttl)
            .await?;
        if held {
            Ok(())
        } else {
            Err(SyncError::LeaseLost)
        }
    }

    async fn write(
        &self,
        connection: &Connection,
        day: &CreditorDay,
        items: &[IngestItem],
        source: EventSource,
        progress: Option<&PassProgress>,
    ) -> Result<IngestReport, SyncError> {
        let now = self.clock.now();
        let decide = Reevaluate {
            policy: &day.policy,
            today: day.today,
            connection: &connection.id,
            now,
        };
        for item in items {
            if let Some(customer) = &item.customer
                && customer.platform_dunning
                && !item.known_only
            {
                tracing::warn!(
                    connection = %connection.id,
                    customer = %customer.platform_id,
                    "the platform's own automatic reminders or collection notices are on for this customer: collection through Forfall would dun the debtor twice"
                );
                self.metrics.count(
                    "forfall_double_dunning_warnings_total",
                    &connection.platform,
                );
            }
        }
        let batch = IngestBatch {
            items,
            source,
            decide: &decide,
            progress,
        };
        Ok(self
            .store
            .ingest(&connection.creditor_id, &connection.id, &batch, now)
            .await?)
    }

    /// Reads one invoice again and ingests what the platform says now; an invoice the platform
    /// no longer has counts as credited in full (nothing more is owed on it).
    async fn reread(
        &self,
        connection: &Connection,
        day: &CreditorDay,
        connector: &dyn Connector,
        platform_id: &str,
        source: EventSource,
    ) -> Result<(), SyncError> {
        match connector.invoice(&RemoteId(platform_id.to_owned())).await {
            Ok(invoice) => self.write_one(connection, day, &invoice, source).await?,
            Err(ConnectorError::NotFound) => {
                self.vanished(connection, day, platform_id, source).await?;
            }
            Err(e) => return Err(e.into()),
        }
        Ok(())
    }

    /// Ingests one invoice as the platform describes it: created only if it is open.
    async fn write_one(
        &self,
        connection: &Connection,
        day: &CreditorDay,
        invoice: &RemoteInvoice,
        source: EventSource,
    ) -> Result<(), SyncError> {
        let items: Vec<_> = item_of(invoice, !is_open(invoice))?.into_iter().collect();
        self.write(connection, day, &items, source, None).await?;
        Ok(())
    }

    async fn vanished(
        &self,
        connection: &Connection,
        day: &CreditorDay,
        platform_id: &str,
        source: EventSource,
    ) -> Result<(), SyncError> {
        let Some(invoice) = self
            .store
            .invoice_by_platform_id(&connection.creditor_id, &connection.id, platform_id)
            .await?
        else {
            return Ok(());
        };
        tracing::warn!(connection = %connection.id, invoice = %platform_id, "the invoice is gone from the platform; treated as credited in full");
        let mut facts = invoice.facts.clone();
        facts.outstanding = Decimal::ZERO;
        facts.credited = true;
        let item = IngestItem {
            customer: None,
            invoice: facts,
            known_only: true,
        };
        self.write(connection, day, &[item], source, None).await?;
        Ok(())
    }

    /// Applies what a webhook delivery said changed.
    pub async fn apply_changes(
        &self,
        connection: &Connection,
        changes: &[RemoteChange],
    ) -> Result<(), SyncError> {
        let opened: Arc<Opened> = self.connectors.open(connection)?;
        let day = self.creditor_day(connection).await?;
        let connector = opened.connector.as_ref();
        let source = EventSource::Webhook;
        for change in changes {
            match change {
                RemoteChange::InvoiceChanged(id) => {
                    self.reread(connection, &day, connector, &id.0, source)
                        .await?;
                }
                RemoteChange::InvoiceDeleted(id) => {
                    self.vanished(connection, &day, &id.0, source).await?;
                }
                RemoteChange::InvoiceSnapshot(invoice) => {
                    self.write_one(connection, &day, invoice, source).await?;
                }
                RemoteChange::Unspecific { customer } => {
                    let refs = self
                        .store
                        .open_invoice_refs(
                            &connection.creditor_id,
                            &connection.id,
                            customer.as_ref().map(|c| c.0.as_str()),
                        )
                        .await?;
                    for platform_id in refs {
                        self.reread(connection, &day, connector, &platform_id, source)
                            .await?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Records a failed pass: the connection shows the error, and a dead letter keeps it (with the
    /// body excerpt the connector's error carries) until someone looks.
    pub async fn record_failure(&self, id: &ConnectionId, error: &SyncError) {
        if matches!(error, SyncError::NoKey | SyncError::UnknownConnection(_)) {
            // About this process's configuration or the caller's input, not the connection:
            // nothing to mark on it and nothing to keep as a dead letter.
            return;
        }
        let Ok(Some(connection)) = self.store.find_connection(id).await else {
            return;
        };
        let status = match error {
            SyncError::Connector(ConnectorError::Unauthorized(_))
            | SyncError::Connector(ConnectorError::Rejected {
                status: 401 | 403, ..
            })
            | SyncError::Secrets(_)
            | SyncError::NoKey => ConnectionStatus::Unauthorized,
            _ => ConnectionStatus::Failing,
        };
        let message = error.to_string();
        let now = self.clock.now();
        let letter = NewJob {
            kind: retry_pass::SYNC_JOB.into(),
            idempotency_key: format!("sync:{}:{}", id, connection.sync.pass),
            payload: serde_json::json!({
                "connection": id.as_str(),
                "pass": connection.sync.pass,
                "cursor": connection.sync_cursor,
            }),
            run_after: now,
            chain: None,
        };
        let results = (
            self.store
                .set_connection_status(&connection.creditor_id, id, status, Some(&message))
                .await,
            self.store
                .record_dead_letter(&connection.creditor_id, &letter, &message, now)
                .await,
        );
        if let (Err(e), _) | (_, Err(e)) = results {
            tracing::error!(connection = %id, error = %e, "cannot record a failed sync");
        }
        self.metrics
            .count("forfall_sync_failures_total", &connection.platform);
    }

    /// Marks a connection healthy again after a pass that worked.
    pub async fn record_success(&self, id: &ConnectionId) -> Result<(), SyncError> {
        let connection = self.connection(id).await?;
        if connection.status != ConnectionStatus::Active || connection.last_error.is_some() {
            self.store
                .set_connection_status(&connection.creditor_id, id, ConnectionStatus::Active, None)
                .await?;
        }
        Ok(())
    }
}

fn is_open(invoice: &RemoteInvoice) -> bool {
    invoice.outstanding > Decimal::ZERO && invoice.amount > Decimal::ZERO && !invoice.credited
}

/// The store's items for a page: open invoices may be created; closed ones only update.
fn items_of(page: &Page) -> Result<Vec<IngestItem>, SyncError> {
    let mut items = Vec::with_capacity(page.open.len() + page.closed.len());
    for invoice in &page.open {
        items.extend(item_of(invoice, false)?);
    }
    for invoice in &page.closed {
        items.extend(item_of(invoice, true)?);
    }
    Ok(items)
}

/// One invoice as the store's item; `None` for a credit note (its effect shows on the invoice it
/// credits). A currency Forfall does not know, or an amount finer than the currency's minor
/// unit, is a malformed answer.
fn item_of(invoice: &RemoteInvoice, known_only: bool) -> Result<Option<IngestItem>, SyncError> {
    if invoice.amount <= Decimal::ZERO {
        return Ok(None);
    }
    let currency: Currency = invoice
        .currency
        .parse()
        .map_err(|_| ConnectorError::Malformed {
            detail: format!(
                "invoice {} is in {:?}, a currency Forfall does not know",
                invoice.id.0, invoice.currency
            ),
        })?;
    Ok(Some(IngestItem {
        customer: Some(customer_facts(&invoice.customer)),
        invoice: InvoiceFacts {
            platform_id: invoice.id.0.clone(),
            number: invoice.number.clone(),
            customer_platform_id: invoice.customer.id.0.clone(),
            issued: invoice.issued,
            due: invoice.due,
            currency,
            amount: invoice.amount,
            outstanding: invoice.outstanding.max(Decimal::ZERO),
            payment_reference: invoice.payment_reference.clone(),
            credited: invoice.credited,
        },
        known_only,
    }))
}

fn customer_facts(customer: &RemoteCustomer) -> CustomerFacts {
    let address = match (&customer.postal_code, &customer.city) {
        (Some(code), Some(city)) => Some(PostalAddress {
            lines: customer.address_lines.clone(),
            postal_code: code.clone(),
            city: city.clone(),
            country: customer.country.clone().unwrap_or_else(|| "NO".into()),
        }),
        _ => None,
    };
    CustomerFacts {
        platform_id: customer.id.0.clone(),
        kind: match customer.kind {
            forfall_connector::DebtorKind::Consumer => CustomerKind::Consumer,
            forfall_connector::DebtorKind::Business => CustomerKind::Business,
        },
        name: customer.name.clone(),
        organisation_number: customer.organisation_number.clone(),
        national_id: None,
        email: customer.email.clone(),
        postal_address: address,
        platform_dunning: customer.platform_dunning,
    }
}

/// How the poll loop runs.
#[derive(Debug, Clone)]
pub struct PollSettings {
    pub interval: Duration,
    /// The local time (creditor's zone) from which the day's full pass runs.
    pub full_sync_at: NaiveTime,
    /// This instance's name, for leases.
    pub owner: String,
}

/// Whether the next pass of `connection` should be full: never fully synced, or not yet today
/// (creditor's day) and the full-sync time has come.
pub fn full_pass_due(
    connection: &Connection,
    now: DateTime<Utc>,
    zone: chrono_tz::Tz,
    at: NaiveTime,
) -> bool {
    let local = now.with_timezone(&zone);
    match connection.sync.last_full_sync_at {
        None => true,
        Some(last) => {
            let last_day = last.with_timezone(&zone).date_naive();
            last_day < local.date_naive() && local.time() >= at
        }
    }
}

/// Polls every connection that can be polled, one pass each per interval, until `stop`.
pub async fn run_poll_loop(
    ingest: Arc<Ingest>,
    settings: PollSettings,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut stop = stop;
    loop {
        let started = Instant::now();
        if let Err(e) = poll_once(&ingest, &settings).await {
            tracing::error!(error = %e, "poll round failed");
        }
        let wait = settings.interval.saturating_sub(started.elapsed());
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => return,
        }
        if *stop.borrow() {
            return;
        }
    }
}

/// One round: a pass for each connection whose lease this instance gets.
pub async fn poll_once(ingest: &Ingest, settings: &PollSettings) -> Result<(), SyncError> {
    for connection in ingest.store.all_connections().await? {
        if connection.status == ConnectionStatus::Paused {
            continue;
        }
        let lease = PassLease {
            name: format!("poll:{}", connection.id),
            owner: settings.owner.clone(),
            ttl: (settings.interval * 2).max(Duration::from_secs(120)),
        };
        let now = ingest.clock.now();
        if !ingest
            .store
            .acquire_lease(&lease.name, &lease.owner, now, lease.ttl)
            .await?
        {
            continue;
        }
        let polls = ingest
            .connectors
            .open(&connection)
            .map(|o| o.connector.capabilities().poll)
            .unwrap_or(true);
        if polls {
            let zone = match ingest.store.creditor(&connection.creditor_id).await? {
                Some(c) => c.time_zone,
                None => continue,
            };
            let full = full_pass_due(&connection, now, zone, settings.full_sync_at);
            match ingest
                .run_pass(&connection.id, full, Some(&lease), &|_| {})
                .await
            {
                Ok(stats) => {
                    tracing::info!(connection = %connection.id, pages = stats.pages, invoices = stats.invoices, "pass done");
                    ingest.record_success(&connection.id).await?;
                }
                Err(e) => {
                    tracing::warn!(connection = %connection.id, error = %e, "pass failed");
                    ingest.record_failure(&connection.id, &e).await;
                }
            }
        }
        ingest
            .store
            .release_lease(&lease.name, &lease.owner)
            .await?;
    }
    Ok(())
}

/// The job kind of a stored webhook delivery.
pub const WEBHOOK_JOB: &str = "webhook";

/// Processes stored webhook deliveries until `stop`: claimed with leases (so several instances
/// share them), retried with backoff, dead-lettered after `MAX_ATTEMPTS`.
pub async fn run_webhook_worker(
    ingest: Arc<Ingest>,
    owner: String,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut stop = stop;
    loop {
        let worked = match hooks::process_stored(&ingest, &owner).await {
            Ok(n) => n,
            Err(e) => {
                tracing::error!(error = %e, "webhook worker");
                0
            }
        };
        if worked > 0 {
            continue;
        }
        tokio::select! {
            _ = ingest.deliveries.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = stop.changed() => return,
        }
        if *stop.borrow() {
            return;
        }
    }
}
