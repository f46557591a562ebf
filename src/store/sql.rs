//! The SQL both backends run. SQLite and PostgreSQL store the same types (see the migrations) and
//! both accept `$N` placeholders, so one text serves both; what differs is a backend's own business:
//! how a write transaction begins (`BEGIN IMMEDIATE` on SQLite), how a read locks what it is about
//! to change (`FOR UPDATE`, `FOR UPDATE SKIP LOCKED` on PostgreSQL), and its migrations. Each
//! backend module supplies those through [`Dialect`] and instantiates [`impl_store!`] for its type.

/// A backend's own SQL fragments.
pub(super) trait Dialect {
    const BACKEND: super::Backend;
    /// Appended to a `SELECT` that reads a row in order to change it.
    const LOCK_FOR_UPDATE: &'static str;
    /// Appended to a `SELECT` of rows to claim: claimers skip each other's rows.
    const SKIP_LOCKED: &'static str;
    /// Asks for a query plan, one row of text per plan line: the column holding the text.
    const EXPLAIN: (&'static str, &'static str);
    /// The jobs column that orders a chain (enqueue order).
    const JOB_SEQ: &'static str;
    /// `column` is one of the strings of the JSON array bound at `param` (a predicate that uses
    /// the column's index).
    fn in_json_list(column: &str, param: &str) -> String;
}

/// The query behind `invoices_due`, shared by the query and its plan.
pub(super) fn invoices_due_sql() -> String {
    format!(
        "SELECT {} FROM invoices WHERE creditor_id = $1 \
         AND next_action_on IS NOT NULL AND next_action_on <= $2 \
         ORDER BY next_action_on, id LIMIT $3",
        super::rows::INVOICE_COLUMNS
    )
}

macro_rules! impl_store {
    ($store:ty, $db:ty) => {
        const _: () = {
            use std::time::Duration;

            use chrono::{DateTime, NaiveDate, Utc};
            use sqlx::types::Json;

            use $crate::domain::{
                Case, CaseId, CaseState, JobAttempt, JobState, NewCase, PipelineMessage,
                Connection, ConnectionId, ConnectionStatus, Creditor, CreditorId, Customer, CustomerFacts,
                CustomerId, Decision, EventSource, Invoice, InvoiceEvent, InvoiceFacts, InvoiceId, Job,
                JobId, NewCreditor, NewDecision, NewJob, SealedCredentials, Stage,
            };
            use $crate::store::rows::{
                self, CONNECTION_COLUMNS, CREDITOR_COLUMNS, CUSTOMER_COLUMNS, ConnectionRow, CreditorRow, CustomerRow,
                DecisionRow, EventRow, INVOICE_COLUMNS, InvoiceRow, JobRow, StoredFacts,
                AttemptRow, CASE_COLUMNS, CaseRow, JOB_COLUMNS, KeyedCaseRow, MESSAGE_COLUMNS,
                MessageRow,
            };
            use $crate::store::sql::Dialect;
            use $crate::store::{
                Backend, IngestBatch, IngestItem, IngestReport, JobOutcome, LifecycleUpdate,
                SchemaStatus, Store, StoreError, Upserted, Written, lease_end, millis,
            };

            /// Rows per multi-row statement: well under SQLite's and PostgreSQL's limits on bound
            /// parameters (21 columns × 400 rows).
            const ROWS_PER_STATEMENT: usize = 400;

            #[async_trait::async_trait]
            impl Store for $store {
                fn backend(&self) -> Backend {
                    <$store as Dialect>::BACKEND
                }

                async fn migrate(&self) -> Result<(), StoreError> {
                    self.run_migrations().await
                }

                async fn schema_status(&self) -> Result<SchemaStatus, StoreError> {
                    let known = Self::known_migrations();
                    let applied = if self.has_migrations_table().await? {
                        sqlx::query_scalar(
                            "SELECT version FROM _sqlx_migrations WHERE success ORDER BY version",
                        )
                        .fetch_all(&self.pool)
                        .await?
                    } else {
                        Vec::new()
                    };
                    Ok(SchemaStatus { applied, known })
                }

                async fn ping(&self) -> Result<(), StoreError> {
                    sqlx::query("SELECT 1")
                        .execute(&self.pool)
                        .await
                        .map(|_| ())
                        .map_err(|e| StoreError::Unreachable(e.to_string()))
                }

                async fn close(&self) {
                    self.close_pools().await;
                }

                async fn create_creditor(
                    &self,
                    new: &NewCreditor,
                    now: DateTime<Utc>,
                ) -> Result<Creditor, StoreError> {
                    let creditor = Creditor {
                        id: CreditorId::generate(),
                        name: new.name.clone(),
                        organisation_number: new.organisation_number.clone(),
                        country: new.country,
                        time_zone: new
                            .time_zone
                            .unwrap_or_else(|| new.country.default_time_zone()),
                        language: new.language,
                        policy: new.policy.clone(),
                        email: new.email.clone(),
                        ticked_through: None,
                        partner_id: new.partner_id.clone(),
                    };
                    sqlx::query(
                        "INSERT INTO creditors (id, name, organisation_number, country, \
                                 time_zone, language, policy, created_at, email, partner_id) \
                                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                    )
                    .bind(creditor.id.as_str())
                    .bind(&creditor.name)
                    .bind(&creditor.organisation_number)
                    .bind(creditor.country.code())
                    .bind(creditor.time_zone.name())
                    .bind(creditor.language.as_str())
                    .bind(Json(&creditor.policy))
                    .bind(millis(now))
                    .bind(creditor.email.as_deref())
                    .bind(creditor.partner_id.as_ref().map(|p| p.as_str()))
                    .execute(&self.pool)
                    .await?;
                    Ok(creditor)
                }

                async fn creditor(&self, id: &CreditorId) -> Result<Option<Creditor>, StoreError> {
                    let row: Option<CreditorRow> = sqlx::query_as(&format!(
                        "SELECT {CREDITOR_COLUMNS} FROM creditors WHERE id = $1"
                    ))
                    .bind(id.as_str())
                    .fetch_optional(&self.pool)
                    .await?;
                    row.map(Creditor::try_from).transpose()
                }

                async fn creditor_ids(&self) -> Result<Vec<CreditorId>, StoreError> {
                    let ids: Vec<String> = sqlx::query_scalar("SELECT id FROM creditors ORDER BY id")
                        .fetch_all(&self.pool)
                        .await?;
                    Ok(ids.into_iter().map(CreditorId).collect())
                }

                async fn create_connection(
                    &self,
                    creditor: &CreditorId,
                    id: &ConnectionId,
                    platform: &str,
                    credentials: &SealedCredentials,
                    now: DateTime<Utc>,
                ) -> Result<Connection, StoreError> {
                    let id = id.clone();
                    let inserted = sqlx::query(
                        "INSERT INTO connections (id, creditor_id, platform, credentials, status, \
                                 created_at) SELECT $1, id, $3, $4, $5, $6 FROM creditors WHERE id = $2",
                    )
                    .bind(id.as_str())
                    .bind(creditor.as_str())
                    .bind(platform)
                    .bind(&credentials.0)
                    .bind(ConnectionStatus::Active.as_str())
                    .bind(millis(now))
                    .execute(&self.pool)
                    .await?;
                    if inserted.rows_affected() == 0 {
                        return Err(StoreError::NotFound {
                            what: "creditor",
                            id: creditor.to_string(),
                        });
                    }
                    self.connection(creditor, &id)
                        .await?
                        .ok_or(StoreError::NotFound {
                            what: "connection",
                            id: id.to_string(),
                        })
                }

                async fn connection(
                    &self,
                    creditor: &CreditorId,
                    id: &ConnectionId,
                ) -> Result<Option<Connection>, StoreError> {
                    let row: Option<ConnectionRow> = sqlx::query_as(&format!(
                        "SELECT {CONNECTION_COLUMNS} FROM connections \
                                 WHERE creditor_id = $1 AND id = $2"
                    ))
                    .bind(creditor.as_str())
                    .bind(id.as_str())
                    .fetch_optional(&self.pool)
                    .await?;
                    row.map(Connection::try_from).transpose()
                }

                async fn set_connection_status(
                    &self,
                    creditor: &CreditorId,
                    id: &ConnectionId,
                    status: ConnectionStatus,
                    last_error: Option<&str>,
                ) -> Result<(), StoreError> {
                    let updated = sqlx::query(
                        "UPDATE connections SET status = $3, last_error = $4 \
                                 WHERE creditor_id = $1 AND id = $2 AND status <> 'deleted'",
                    )
                    .bind(creditor.as_str())
                    .bind(id.as_str())
                    .bind(status.as_str())
                    .bind(last_error)
                    .execute(&self.pool)
                    .await?;
                    found(updated.rows_affected(), "connection", id.as_str())
                }

                async fn upsert_customer(
                    &self,
                    creditor: &CreditorId,
                    connection: &ConnectionId,
                    facts: &CustomerFacts,
                ) -> Result<Upserted<CustomerId>, StoreError> {
                    loop {
                        if let Some(done) = self
                            .upsert_customer_once(creditor, connection, facts)
                            .await?
                        {
                            return Ok(done);
                        }
                    }
                }

                async fn customer(
                    &self,
                    creditor: &CreditorId,
                    id: &CustomerId,
                ) -> Result<Option<Customer>, StoreError> {
                    let row: Option<CustomerRow> = sqlx::query_as(&format!(
                        "SELECT {CUSTOMER_COLUMNS} FROM customers WHERE creditor_id = $1 AND id = $2"
                    ))
                    .bind(creditor.as_str())
                    .bind(id.as_str())
                    .fetch_optional(&self.pool)
                    .await?;
                    row.map(Customer::try_from).transpose()
                }

                async fn set_customer_opt_out(
                    &self,
                    creditor: &CreditorId,
                    customer: &CustomerId,
                    opt_out: bool,
                ) -> Result<(), StoreError> {
                    let updated = sqlx::query(
                        "UPDATE customers SET opt_out = $3, version = version + 1 \
                                 WHERE creditor_id = $1 AND id = $2",
                    )
                    .bind(creditor.as_str())
                    .bind(customer.as_str())
                    .bind(opt_out)
                    .execute(&self.pool)
                    .await?;
                    found(updated.rows_affected(), "customer", customer.as_str())
                }

                async fn upsert_invoice(
                    &self,
                    creditor: &CreditorId,
                    connection: &ConnectionId,
                    facts: &InvoiceFacts,
                    source: EventSource,
                    now: DateTime<Utc>,
                ) -> Result<Upserted<InvoiceId>, StoreError> {
                    let stored = StoredFacts::of(facts)?;
                    loop {
                        if let Some(done) = self
                            .upsert_invoice_once(creditor, connection, &stored, source, now)
                            .await?
                        {
                            return Ok(done);
                        }
                    }
                }

                async fn set_invoice_opt_out(
                    &self,
                    creditor: &CreditorId,
                    invoice: &InvoiceId,
                    opt_out: bool,
                    source: EventSource,
                    now: DateTime<Utc>,
                ) -> Result<(), StoreError> {
                    let mut tx = self.begin_write().await?;
                    let updated = sqlx::query(
                        "UPDATE invoices SET opt_out = $3, version = version + 1, updated_at = $4 \
                                 WHERE creditor_id = $1 AND id = $2 AND opt_out <> $3",
                    )
                    .bind(creditor.as_str())
                    .bind(invoice.as_str())
                    .bind(opt_out)
                    .bind(millis(now))
                    .execute(&mut *tx)
                    .await?;
                    if updated.rows_affected() == 0 {
                        // Either already so (nothing to write) or not this creditor's invoice.
                        let exists = invoice_exists_then_roll_back(tx, creditor, invoice).await?;
                        return found(u64::from(exists), "invoice", invoice.as_str());
                    }
                    let kind = if opt_out { "opted_out" } else { "opted_in" };
                    let change = serde_json::json!({ "opt_out": opt_out });
                    append_event(&mut tx, creditor, invoice, now, source, kind, &change).await?;
                    tx.commit().await?;
                    Ok(())
                }

                async fn invoice(
                    &self,
                    creditor: &CreditorId,
                    id: &InvoiceId,
                ) -> Result<Option<Invoice>, StoreError> {
                    let row: Option<InvoiceRow> = sqlx::query_as(&format!(
                        "SELECT {INVOICE_COLUMNS} FROM invoices WHERE creditor_id = $1 AND id = $2"
                    ))
                    .bind(creditor.as_str())
                    .bind(id.as_str())
                    .fetch_optional(&self.pool)
                    .await?;
                    row.map(Invoice::try_from).transpose()
                }

                async fn invoice_events(
                    &self,
                    creditor: &CreditorId,
                    invoice: &InvoiceId,
                ) -> Result<Vec<InvoiceEvent>, StoreError> {
                    let rows: Vec<EventRow> = sqlx::query_as(
                        "SELECT seq, invoice_id, at, source, kind, change FROM invoice_events \
                                 WHERE creditor_id = $1 AND invoice_id = $2 ORDER BY seq",
                    )
                    .bind(creditor.as_str())
                    .bind(invoice.as_str())
                    .fetch_all(&self.pool)
                    .await?;
                    rows::collect(rows)
                }

                async fn invoices_due(
                    &self,
                    creditor: &CreditorId,
                    day: NaiveDate,
                    limit: u32,
                ) -> Result<Vec<Invoice>, StoreError> {
                    let rows: Vec<InvoiceRow> = sqlx::query_as(&$crate::store::sql::invoices_due_sql())
                        .bind(creditor.as_str())
                        .bind(day)
                        .bind(i64::from(limit))
                        .fetch_all(&self.pool)
                        .await?;
                    rows::collect(rows)
                }

                async fn explain_invoices_due(
                    &self,
                    creditor: &CreditorId,
                    day: NaiveDate,
                ) -> Result<String, StoreError> {
                    use sqlx::Row;
                    let (explain, column) = Self::EXPLAIN;
                    let mut tx = self.pool.begin().await?;
                    self.prefer_indexes(&mut tx).await?;
                    let rows = sqlx::query(&format!(
                        "{explain} {}",
                        $crate::store::sql::invoices_due_sql()
                    ))
                    .bind(creditor.as_str())
                    .bind(day)
                    .bind(100_i64)
                    .fetch_all(&mut *tx)
                    .await?;
                    tx.rollback().await?;
                    rows.iter()
                        .map(|row| row.try_get::<String, _>(column).map_err(StoreError::from))
                        .collect::<Result<Vec<_>, _>>()
                        .map(|lines| lines.join("\n"))
                }

                async fn save_lifecycle(
                    &self,
                    creditor: &CreditorId,
                    invoice: &InvoiceId,
                    expected_version: i64,
                    update: &LifecycleUpdate,
                    now: DateTime<Utc>,
                ) -> Result<(), StoreError> {
                    let mut tx = self.begin_write().await?;
                    let currency: Option<String> = sqlx::query_scalar(
                        "UPDATE invoices SET stage = $4, next_action_on = $5, lifecycle = $6, \
                                 version = version + 1, updated_at = $7, opt_out = $8, \
                                 dispute_opened_on = CASE WHEN $9 THEN \
                                   COALESCE(dispute_opened_on, $10) ELSE NULL END, \
                                 dispute_amount_minor = NULL \
                                 WHERE creditor_id = $1 AND id = $2 AND version = $3 \
                                 RETURNING currency",
                    )
                    .bind(creditor.as_str())
                    .bind(invoice.as_str())
                    .bind(expected_version)
                    .bind(update.stage.as_str())
                    .bind(update.next_action_on)
                    .bind(Json(&update.lifecycle))
                    .bind(millis(now))
                    .bind(update.opt_out)
                    .bind(update.dispute.is_some())
                    .bind(update.on)
                    .fetch_optional(&mut *tx)
                    .await?;
                    if let (Some(currency), Some(Some(amount))) = (&currency, update.dispute) {
                        let currency = currency.parse().map_err(|_| {
                            StoreError::Invalid(format!("stored currency `{currency}` is unknown"))
                        })?;
                        let minor = $crate::domain::Money::new(amount, currency)
                            .and_then(|money| money.to_minor_units())
                            .map_err(|e| StoreError::Invalid(e.to_string()))?;
                        sqlx::query(
                            "UPDATE invoices SET dispute_amount_minor = $3 \
                                     WHERE creditor_id = $1 AND id = $2",
                        )
                        .bind(creditor.as_str())
                        .bind(invoice.as_str())
                        .bind(minor)
                        .execute(&mut *tx)
                        .await?;
                    }
                    if let Some(logged) = &update.logged {
                        append_event(
                            &mut tx,
                            creditor,
                            invoice,
                            now,
                            logged.source,
                            &logged.kind,
                            &logged.change,
                        )
                        .await?;
                    }
                    if currency.is_none() {
                        let exists = invoice_exists_then_roll_back(tx, creditor, invoice).await?;
                        let id = invoice.to_string();
                        return Err(if exists {
                            StoreError::Conflict { what: "invoice", id }
                        } else {
                            StoreError::NotFound { what: "invoice", id }
                        });
                    }
                    append_decisions_and_jobs(&mut tx, creditor, invoice, update, now).await?;
                    tx.commit().await?;
                    Ok(())
                }

                async fn decisions(
                    &self,
                    creditor: &CreditorId,
                    invoice: &InvoiceId,
                ) -> Result<Vec<Decision>, StoreError> {
                    let rows: Vec<DecisionRow> = sqlx::query_as(
                        "SELECT seq, invoice_id, on_day, at, rule, inputs, outcome FROM decisions \
                                 WHERE creditor_id = $1 AND invoice_id = $2 ORDER BY seq",
                    )
                    .bind(creditor.as_str())
                    .bind(invoice.as_str())
                    .fetch_all(&self.pool)
                    .await?;
                    rows::collect(rows)
                }

                async fn claim_jobs(
                    &self,
                    owner: &str,
                    kinds: &[&str],
                    now: DateTime<Utc>,
                    lease: Duration,
                    limit: u32,
                ) -> Result<Vec<Job>, StoreError> {
                    let until = lease_end(now, lease)?;
                    let mut kinds: Vec<&str> = kinds.to_vec();
                    kinds.sort_unstable();
                    kinds.dedup();
                    if kinds.is_empty() || limit == 0 {
                        return Ok(Vec::new());
                    }
                    // One candidate list per kind and state, each read in the order of the
                    // claimable index (kind, state, run_after) and cut at `limit`: a claim reads
                    // about `limit` rows (plus those whose chain is blocked), not every due job,
                    // and takes the longest due of them.
                    let chain_free = format!(
                        "(j.chain IS NULL OR NOT EXISTS (SELECT 1 FROM jobs e \
                         WHERE e.chain = j.chain AND e.{seq} < j.{seq} AND e.state <> 'succeeded'))",
                        seq = Self::JOB_SEQ,
                    );
                    let mut lists = Vec::with_capacity(kinds.len() * 2);
                    for n in 0..kinds.len() {
                        for due in [
                            "j.state = 'pending' AND j.run_after <= $3",
                            "j.state = 'running' AND j.lease_until <= $3",
                        ] {
                            lists.push(format!(
                                "c{} AS (SELECT j.id, j.run_after FROM jobs j \
                                 WHERE j.kind = ${} AND {due} AND {chain_free} \
                                 ORDER BY j.run_after LIMIT $4{})",
                                lists.len(),
                                n + 5,
                                Self::SKIP_LOCKED,
                            ));
                        }
                    }
                    let candidates = (0..lists.len())
                        .map(|n| format!("SELECT id, run_after FROM c{n}"))
                        .collect::<Vec<_>>()
                        .join(" UNION ALL ");
                    let sql = format!(
                        "WITH {} UPDATE jobs SET state = 'running', lease_owner = $1, \
                         lease_until = $2, attempts = attempts + 1, updated_at = $3 \
                         WHERE id IN (SELECT id FROM ({candidates}) c \
                         ORDER BY run_after, id LIMIT $4) RETURNING {JOB_COLUMNS}",
                        lists.join(", "),
                    );
                    let mut tx = self.begin_write().await?;
                    let mut claim = sqlx::query_as(&sql)
                        .bind(owner)
                        .bind(millis(until))
                        .bind(millis(now))
                        .bind(i64::from(limit));
                    for kind in &kinds {
                        claim = claim.bind(*kind);
                    }
                    let mut rows: Vec<JobRow> = claim.fetch_all(&mut *tx).await?;
                    tx.commit().await?;
                    rows.sort_by(|a, b| (a.run_after(), a.id()).cmp(&(b.run_after(), b.id())));
                    rows::collect(rows)
                }

                async fn finish_job(
                    &self,
                    job: &JobId,
                    owner: &str,
                    outcome: &JobOutcome,
                    now: DateTime<Utc>,
                ) -> Result<bool, StoreError> {
                    let done = self
                        .finish_jobs(owner, &[(job.clone(), outcome.clone())], now)
                        .await?;
                    Ok(done.first().copied().unwrap_or(false))
                }

                async fn jobs(&self, creditor: &CreditorId) -> Result<Vec<Job>, StoreError> {
                    let rows: Vec<JobRow> = sqlx::query_as(&format!(
                        "SELECT {JOB_COLUMNS} FROM jobs WHERE creditor_id = $1 \
                                 ORDER BY created_at, id"
                    ))
                    .bind(creditor.as_str())
                    .fetch_all(&self.pool)
                    .await?;
                    rows::collect(rows)
                }

                async fn enqueue_job(
                    &self,
                    creditor: &CreditorId,
                    job: &NewJob,
                    now: DateTime<Utc>,
                ) -> Result<bool, StoreError> {
                    let mut tx = self.begin_write().await?;
                    let new = insert_jobs(&mut tx, &[(creditor, job)], now).await?;
                    tx.commit().await?;
                    Ok(new.contains(&job.idempotency_key))
                }

                async fn enqueue_jobs(
                    &self,
                    jobs: &[(CreditorId, NewJob)],
                    now: DateTime<Utc>,
                ) -> Result<Vec<bool>, StoreError> {
                    let mut tx = self.begin_write().await?;
                    let refs: Vec<_> = jobs.iter().map(|(c, j)| (c, j)).collect();
                    let mut inserted = insert_jobs(&mut tx, &refs, now).await?;
                    tx.commit().await?;
                    // The first of repeated keys is the new one.
                    Ok(jobs
                        .iter()
                        .map(|(_, job)| inserted.remove(&job.idempotency_key))
                        .collect())
                }

                async fn record_dead_letter(
                    &self,
                    creditor: &CreditorId,
                    job: &NewJob,
                    error: &str,
                    now: DateTime<Utc>,
                ) -> Result<(), StoreError> {
                    let mut tx = self.begin_write().await?;
                    let written = sqlx::query(
                        "INSERT INTO jobs (id, creditor_id, kind, idempotency_key, payload, \
                         state, attempts, run_after, last_error, created_at, updated_at) \
                         VALUES ($1, $2, $3, $4, $5, 'dead', 1, $6, $7, $8, $8) \
                         ON CONFLICT (idempotency_key) DO UPDATE SET state = 'dead', \
                         attempts = jobs.attempts + 1, last_error = $7, payload = $5, updated_at = $8 \
                         WHERE jobs.state IN ('dead', 'succeeded')",
                    )
                    .bind(JobId::generate().as_str())
                    .bind(creditor.as_str())
                    .bind(&job.kind)
                    .bind(&job.idempotency_key)
                    .bind(Json(&job.payload))
                    .bind(millis(job.run_after))
                    .bind(error)
                    .bind(millis(now))
                    .execute(&mut *tx)
                    .await?;
                    if written.rows_affected() == 0 {
                        // The dead letter was put back in the queue (pending or running): the
                        // retry already queued stands, and this failure adds nothing to it.
                        tx.commit().await?;
                        return Ok(());
                    }
                    // The failure is the dead letter's attempt, shown by `forfall jobs show`.
                    sqlx::query(
                        "INSERT INTO job_attempts (job_id, attempt, finished_at, outcome, error) \
                         SELECT j.id, CAST((SELECT COALESCE(MAX(a.attempt), 0) FROM job_attempts a \
                         WHERE a.job_id = j.id) + 1 AS INTEGER), $2, 'dead', $3 \
                         FROM jobs j WHERE j.idempotency_key = $1",
                    )
                    .bind(&job.idempotency_key)
                    .bind(millis(now))
                    .bind(error)
                    .execute(&mut *tx)
                    .await?;
                    tx.commit().await?;
                    Ok(())
                }

                async fn finish_jobs(
                    &self,
                    owner: &str,
                    outcomes: &[(JobId, JobOutcome)],
                    now: DateTime<Utc>,
                ) -> Result<Vec<bool>, StoreError> {
                    if outcomes.is_empty() {
                        return Ok(Vec::new());
                    }
                    let mut tx = self.begin_write().await?;
                    // The successes (nearly all) in two statements; the others one by one.
                    let succeeded: Vec<&str> = outcomes
                        .iter()
                        .filter(|(_, outcome)| matches!(outcome, JobOutcome::Succeeded))
                        .map(|(job, _)| job.as_str())
                        .collect();
                    let finished = finish_succeeded_in_tx(&mut tx, owner, &succeeded, now).await?;
                    let mut held = Vec::with_capacity(outcomes.len());
                    for (job, outcome) in outcomes {
                        held.push(match outcome {
                            JobOutcome::Succeeded => finished.contains(job.as_str()),
                            _ => finish_in_tx(&mut tx, job, owner, outcome, now).await?,
                        });
                    }
                    tx.commit().await?;
                    Ok(held)
                }

                async fn save_checkpoint(
                    &self,
                    job: &JobId,
                    owner: &str,
                    checkpoint: &serde_json::Value,
                ) -> Result<bool, StoreError> {
                    let updated = sqlx::query(
                        "UPDATE jobs SET checkpoint = $3 \
                                 WHERE id = $1 AND lease_owner = $2 AND state = 'running'",
                    )
                    .bind(job.as_str())
                    .bind(owner)
                    .bind(Json(checkpoint))
                    .execute(&self.pool)
                    .await?;
                    Ok(updated.rows_affected() == 1)
                }

                async fn job(&self, id: &JobId) -> Result<Option<Job>, StoreError> {
                    let row: Option<JobRow> =
                        sqlx::query_as(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1"))
                            .bind(id.as_str())
                            .fetch_optional(&self.pool)
                            .await?;
                    row.map(Job::try_from).transpose()
                }

                async fn job_attempts(&self, id: &JobId) -> Result<Vec<JobAttempt>, StoreError> {
                    let rows: Vec<AttemptRow> = sqlx::query_as(
                        "SELECT attempt, finished_at, outcome, error FROM job_attempts \
                                 WHERE job_id = $1 ORDER BY attempt",
                    )
                    .bind(id.as_str())
                    .fetch_all(&self.pool)
                    .await?;
                    rows::collect(rows)
                }

                async fn list_jobs(
                    &self,
                    state: Option<JobState>,
                    limit: u32,
                ) -> Result<Vec<Job>, StoreError> {
                    let rows: Vec<JobRow> = sqlx::query_as(&format!(
                        "SELECT {JOB_COLUMNS} FROM jobs WHERE ($1 IS NULL OR state = $1) \
                                 ORDER BY updated_at DESC, id LIMIT $2"
                    ))
                    .bind(state.map(JobState::as_str))
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await?;
                    rows::collect(rows)
                }

                async fn retry_job(&self, id: &JobId, now: DateTime<Utc>) -> Result<bool, StoreError> {
                    let updated = sqlx::query(
                        "UPDATE jobs SET state = 'pending', attempts = 0, run_after = $2, \
                                 updated_at = $2, lease_owner = NULL, lease_until = NULL \
                                 WHERE id = $1 AND state IN ('dead', 'pending')",
                    )
                    .bind(id.as_str())
                    .bind(millis(now))
                    .execute(&self.pool)
                    .await?;
                    Ok(updated.rows_affected() == 1)
                }

                async fn set_ticked_through(
                    &self,
                    creditor: &CreditorId,
                    day: NaiveDate,
                ) -> Result<(), StoreError> {
                    sqlx::query(
                        "UPDATE creditors SET ticked_through = $2 WHERE id = $1 \
                                 AND (ticked_through IS NULL OR ticked_through < $2)",
                    )
                    .bind(creditor.as_str())
                    .bind(day)
                    .execute(&self.pool)
                    .await?;
                    Ok(())
                }

                async fn open_case(
                    &self,
                    creditor: &CreditorId,
                    new: &NewCase,
                    now: DateTime<Utc>,
                ) -> Result<Case, StoreError> {
                    let mut tx = self.begin_write().await?;
                    let (case, created) = open_case_in_tx(&mut tx, creditor, new, now).await?;
                    if created {
                        tx.commit().await?;
                    } else {
                        tx.rollback().await?;
                    }
                    Ok(case)
                }

                async fn open_cases(
                    &self,
                    creditor: &CreditorId,
                    new: &[NewCase],
                    now: DateTime<Utc>,
                ) -> Result<Vec<Case>, StoreError> {
                    if new.is_empty() {
                        return Ok(Vec::new());
                    }
                    use std::collections::{HashMap, HashSet};
                    let mut tx = self.begin_write().await?;
                    // The cases these transfers opened before (a retried job's), by key.
                    let keys: Vec<&str> = new.iter().map(|one| one.transfer_key.as_str()).collect();
                    let rows: Vec<KeyedCaseRow> = sqlx::query_as(&format!(
                        "SELECT transfer_key, {CASE_COLUMNS} FROM cases WHERE {}",
                        Self::in_json_list("transfer_key", "$1")
                    ))
                    .bind(Json(&keys))
                    .fetch_all(&mut *tx)
                    .await?;
                    let mut by_key: HashMap<String, Case> = HashMap::with_capacity(new.len());
                    for row in rows {
                        if let Some(key) = row.transfer_key {
                            by_key.insert(key, Case::try_from(row.case)?);
                        }
                    }
                    // The others, once per key, numbered after their invoice's cases.
                    let mut seen = HashSet::with_capacity(new.len());
                    let opening: Vec<&NewCase> = new
                        .iter()
                        .filter(|one| {
                            !by_key.contains_key(&one.transfer_key)
                                && seen.insert(one.transfer_key.as_str())
                        })
                        .collect();
                    if !opening.is_empty() {
                        let invoices: Vec<&str> =
                            opening.iter().map(|one| one.invoice_id.as_str()).collect();
                        let counts: Vec<(String, i64)> = sqlx::query_as(&format!(
                            "SELECT invoice_id, COUNT(*) FROM cases WHERE creditor_id = $1 \
                             AND {} GROUP BY invoice_id",
                            Self::in_json_list("invoice_id", "$2")
                        ))
                        .bind(creditor.as_str())
                        .bind(Json(&invoices))
                        .fetch_all(&mut *tx)
                        .await?;
                        let mut generations: HashMap<String, i64> = counts.into_iter().collect();
                        let mut rows = Vec::with_capacity(opening.len());
                        for one in opening {
                            let generation = generations
                                .entry(one.invoice_id.as_str().to_owned())
                                .or_insert(0);
                            *generation += 1;
                            let generation = i32::try_from(*generation).map_err(|_| {
                                StoreError::Invalid(format!(
                                    "invoice {} has too many cases",
                                    one.invoice_id
                                ))
                            })?;
                            rows.push((one, generation, one.amount.to_minor_units()?));
                        }
                        for chunk in rows.chunks(ROWS_PER_STATEMENT) {
                            let mut insert = sqlx::QueryBuilder::<$db>::new(
                                "INSERT INTO cases (id, creditor_id, invoice_id, generation, state, \
                                 currency, amount_minor, transfer_on, free_withdrawal_until, \
                                 first_reminder_on, opened_at, transfer_key) ",
                            );
                            insert.push_values(chunk, |mut row, (one, generation, minor)| {
                                row.push_bind(CaseId::generate().0)
                                    .push_bind(creditor.0.clone())
                                    .push_bind(one.invoice_id.0.clone())
                                    .push_bind(*generation)
                                    .push_bind("open")
                                    .push_bind(one.amount.currency.code())
                                    .push_bind(*minor)
                                    .push_bind(one.transfer_on)
                                    .push_bind(one.free_withdrawal_until)
                                    .push_bind(one.first_reminder_on)
                                    .push_bind(millis(now))
                                    .push_bind(one.transfer_key.clone());
                            });
                            insert.push(format!(" RETURNING transfer_key, {CASE_COLUMNS}"));
                            let opened: Vec<KeyedCaseRow> =
                                insert.build_query_as().fetch_all(&mut *tx).await?;
                            for row in opened {
                                if let Some(key) = row.transfer_key {
                                    by_key.insert(key, Case::try_from(row.case)?);
                                }
                            }
                        }
                        tx.commit().await?;
                    } else {
                        tx.rollback().await?;
                    }
                    new.iter()
                        .map(|one| {
                            // Every key was found or inserted above.
                            by_key
                                .get(&one.transfer_key)
                                .cloned()
                                .ok_or(StoreError::Database(sqlx::Error::RowNotFound))
                        })
                        .collect()
                }

                async fn latest_case(
                    &self,
                    creditor: &CreditorId,
                    invoice: &InvoiceId,
                ) -> Result<Option<Case>, StoreError> {
                    let row: Option<CaseRow> = sqlx::query_as(&format!(
                        "SELECT {CASE_COLUMNS} FROM cases WHERE creditor_id = $1 \
                                 AND invoice_id = $2 ORDER BY generation DESC LIMIT 1"
                    ))
                    .bind(creditor.as_str())
                    .bind(invoice.as_str())
                    .fetch_optional(&self.pool)
                    .await?;
                    row.map(Case::try_from).transpose()
                }

                async fn find_case(&self, id: &CaseId) -> Result<Option<Case>, StoreError> {
                    let row: Option<CaseRow> =
                        sqlx::query_as(&format!("SELECT {CASE_COLUMNS} FROM cases WHERE id = $1"))
                            .bind(id.as_str())
                            .fetch_optional(&self.pool)
                            .await?;
                    row.map(Case::try_from).transpose()
                }

                async fn pipeline_event_seen(&self, id: &str) -> Result<bool, StoreError> {
                    let row: Option<(String,)> =
                        sqlx::query_as("SELECT id FROM pipeline_events WHERE id = $1")
                            .bind(id)
                            .fetch_optional(&self.pool)
                            .await?;
                    Ok(row.is_some())
                }

                async fn set_case_state(
                    &self,
                    creditor: &CreditorId,
                    case: &CaseId,
                    state: CaseState,
                ) -> Result<(), StoreError> {
                    let updated = sqlx::query(
                        "UPDATE cases SET state = $3 WHERE creditor_id = $1 AND id = $2",
                    )
                    .bind(creditor.as_str())
                    .bind(case.as_str())
                    .bind(state.as_str())
                    .execute(&self.pool)
                    .await?;
                    found(updated.rows_affected(), "case", case.as_str())
                }

                async fn confirm_withdrawal(
                    &self,
                    creditor: &CreditorId,
                    case: &CaseId,
                ) -> Result<(), StoreError> {
                    let updated = sqlx::query(
                        "UPDATE cases SET withdrawal_confirmed = TRUE \
                                 WHERE creditor_id = $1 AND id = $2",
                    )
                    .bind(creditor.as_str())
                    .bind(case.as_str())
                    .execute(&self.pool)
                    .await?;
                    found(updated.rows_affected(), "case", case.as_str())
                }

                async fn record_pipeline_message(
                    &self,
                    creditor: &CreditorId,
                    case: &CaseId,
                    id: &str,
                    kind: &str,
                    body: &serde_json::Value,
                    delivered: bool,
                    now: DateTime<Utc>,
                ) -> Result<(), StoreError> {
                    let delivered_at = delivered.then(|| millis(now));
                    sqlx::query(
                        "INSERT INTO pipeline_messages (id, creditor_id, case_id, kind, body, \
                                 created_at, delivered_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                                 ON CONFLICT (id) DO UPDATE SET delivered_at = \
                                 COALESCE(pipeline_messages.delivered_at, excluded.delivered_at)",
                    )
                    .bind(id)
                    .bind(creditor.as_str())
                    .bind(case.as_str())
                    .bind(kind)
                    .bind(Json(body))
                    .bind(millis(now))
                    .bind(delivered_at)
                    .execute(&self.pool)
                    .await?;
                    Ok(())
                }

                async fn record_pipeline_messages(
                    &self,
                    messages: &[$crate::store::PipelineRecord],
                    now: DateTime<Utc>,
                ) -> Result<(), StoreError> {
                    if messages.is_empty() {
                        return Ok(());
                    }
                    let mut tx = self.begin_write().await?;
                    let refs: Vec<&$crate::store::PipelineRecord> = messages.iter().collect();
                    insert_pipeline_messages(&mut tx, &refs, now).await?;
                    tx.commit().await?;
                    Ok(())
                }

                async fn record_pipeline_messages_finishing(
                    &self,
                    owner: &str,
                    messages: &[(JobId, $crate::store::PipelineRecord)],
                    now: DateTime<Utc>,
                ) -> Result<Vec<bool>, StoreError> {
                    if messages.is_empty() {
                        return Ok(Vec::new());
                    }
                    let mut tx = self.begin_write().await?;
                    let refs: Vec<&$crate::store::PipelineRecord> =
                        messages.iter().map(|(_, message)| message).collect();
                    insert_pipeline_messages(&mut tx, &refs, now).await?;
                    let jobs: Vec<&str> = messages.iter().map(|(job, _)| job.as_str()).collect();
                    let finished = finish_succeeded_in_tx(&mut tx, owner, &jobs, now).await?;
                    tx.commit().await?;
                    Ok(jobs.iter().map(|job| finished.contains(*job)).collect())
                }

                async fn invoices_by_platform_ids(
                    &self,
                    creditor: &CreditorId,
                    connection: &ConnectionId,
                    platform_ids: &[String],
                ) -> Result<Vec<Invoice>, StoreError> {
                    if platform_ids.is_empty() {
                        return Ok(Vec::new());
                    }
                    let rows: Vec<InvoiceRow> = sqlx::query_as(&format!(
                        "SELECT {INVOICE_COLUMNS} FROM invoices WHERE creditor_id = $1 \
                         AND connection_id = $2 AND {}",
                        Self::in_json_list("platform_id", "$3")
                    ))
                    .bind(creditor.as_str())
                    .bind(connection.as_str())
                    .bind(Json(platform_ids))
                    .fetch_all(&self.pool)
                    .await?;
                    rows::collect(rows)
                }

                async fn customers_by_ids(
                    &self,
                    creditor: &CreditorId,
                    ids: &[CustomerId],
                ) -> Result<Vec<Customer>, StoreError> {
                    if ids.is_empty() {
                        return Ok(Vec::new());
                    }
                    let ids: Vec<&str> = ids.iter().map(CustomerId::as_str).collect();
                    let rows: Vec<CustomerRow> = sqlx::query_as(&format!(
                        "SELECT {CUSTOMER_COLUMNS} FROM customers WHERE creditor_id = $1 AND {}",
                        Self::in_json_list("id", "$2")
                    ))
                    .bind(creditor.as_str())
                    .bind(Json(&ids))
                    .fetch_all(&self.pool)
                    .await?;
                    rows::collect(rows)
                }

                async fn decisions_of_invoices(
                    &self,
                    creditor: &CreditorId,
                    invoices: &[InvoiceId],
                ) -> Result<Vec<Decision>, StoreError> {
                    if invoices.is_empty() {
                        return Ok(Vec::new());
                    }
                    let ids: Vec<&str> = invoices.iter().map(InvoiceId::as_str).collect();
                    let rows: Vec<DecisionRow> = sqlx::query_as(&format!(
                        "SELECT seq, invoice_id, on_day, at, rule, inputs, outcome FROM decisions \
                         WHERE creditor_id = $1 AND {} ORDER BY invoice_id, seq",
                        Self::in_json_list("invoice_id", "$2")
                    ))
                    .bind(creditor.as_str())
                    .bind(Json(&ids))
                    .fetch_all(&self.pool)
                    .await?;
                    rows::collect(rows)
                }

                async fn latest_cases(
                    &self,
                    creditor: &CreditorId,
                    invoices: &[InvoiceId],
                ) -> Result<Vec<Case>, StoreError> {
                    if invoices.is_empty() {
                        return Ok(Vec::new());
                    }
                    let ids: Vec<&str> = invoices.iter().map(InvoiceId::as_str).collect();
                    let rows: Vec<CaseRow> = sqlx::query_as(&format!(
                        "SELECT {CASE_COLUMNS} FROM cases WHERE creditor_id = $1 AND {} \
                         ORDER BY invoice_id, generation DESC",
                        Self::in_json_list("invoice_id", "$2")
                    ))
                    .bind(creditor.as_str())
                    .bind(Json(&ids))
                    .fetch_all(&self.pool)
                    .await?;
                    let mut latest: Vec<Case> = Vec::with_capacity(invoices.len());
                    for row in rows {
                        let case = Case::try_from(row)?;
                        if latest.last().is_none_or(|last| last.invoice_id != case.invoice_id) {
                            latest.push(case);
                        }
                    }
                    Ok(latest)
                }

                async fn unacknowledged_messages(
                    &self,
                    after_seq: i64,
                    limit: u32,
                ) -> Result<Vec<PipelineMessage>, StoreError> {
                    let rows: Vec<MessageRow> = sqlx::query_as(&format!(
                        "SELECT {MESSAGE_COLUMNS} FROM pipeline_messages \
                                 WHERE acknowledged_at IS NULL AND seq > $1 ORDER BY seq LIMIT $2"
                    ))
                    .bind(after_seq)
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await?;
                    rows::collect(rows)
                }

                async fn pipeline_messages(
                    &self,
                    creditor: &CreditorId,
                ) -> Result<Vec<PipelineMessage>, StoreError> {
                    let rows: Vec<MessageRow> = sqlx::query_as(&format!(
                        "SELECT {MESSAGE_COLUMNS} FROM pipeline_messages \
                                 WHERE creditor_id = $1 ORDER BY seq"
                    ))
                    .bind(creditor.as_str())
                    .fetch_all(&self.pool)
                    .await?;
                    rows::collect(rows)
                }

                async fn acknowledge_message(
                    &self,
                    id: &str,
                    now: DateTime<Utc>,
                ) -> Result<Option<bool>, StoreError> {
                    let mut tx = self.begin_write().await?;
                    let acknowledged: Option<Option<i64>> = sqlx::query_scalar(
                        "SELECT acknowledged_at FROM pipeline_messages WHERE id = $1",
                    )
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await?;
                    let first = match acknowledged {
                        None => None,
                        Some(Some(_)) => Some(false),
                        Some(None) => {
                            sqlx::query(
                                "UPDATE pipeline_messages SET acknowledged_at = $2 WHERE id = $1",
                            )
                            .bind(id)
                            .bind(millis(now))
                            .execute(&mut *tx)
                            .await?;
                            Some(true)
                        }
                    };
                    tx.commit().await?;
                    Ok(first)
                }

                async fn notification_sent(
                    &self,
                    creditor: &CreditorId,
                    kind: &str,
                    day: NaiveDate,
                ) -> Result<bool, StoreError> {
                    let found: Option<i64> = sqlx::query_scalar(
                        "SELECT items FROM notifications WHERE creditor_id = $1 AND kind = $2 \
                                 AND day = $3",
                    )
                    .bind(creditor.as_str())
                    .bind(kind)
                    .bind(day)
                    .fetch_optional(&self.pool)
                    .await?;
                    Ok(found.is_some())
                }

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
                ) -> Result<bool, StoreError> {
                    let mut tx = self.begin_write().await?;
                    let inserted = sqlx::query(
                        "INSERT INTO notifications (creditor_id, kind, day, message_id, items, \
                                 sent_at) VALUES ($1, $2, $3, $4, $5, $6) \
                                 ON CONFLICT (creditor_id, kind, day) DO NOTHING",
                    )
                    .bind(creditor.as_str())
                    .bind(kind)
                    .bind(day)
                    .bind(message_id)
                    .bind(i64::try_from(items).unwrap_or(i64::MAX))
                    .bind(millis(now))
                    .execute(&mut *tx)
                    .await?;
                    if inserted.rows_affected() == 0 {
                        tx.rollback().await?;
                        return Ok(false);
                    }
                    for job in jobs {
                        finish_in_tx(&mut tx, job, owner, &JobOutcome::Succeeded, now).await?;
                    }
                    tx.commit().await?;
                    Ok(true)
                }

                async fn find_connection(
                    &self,
                    id: &ConnectionId,
                ) -> Result<Option<Connection>, StoreError> {
                    let row: Option<ConnectionRow> = sqlx::query_as(&format!(
                        "SELECT {CONNECTION_COLUMNS} FROM connections \
                         WHERE id = $1 AND status <> 'deleted'"
                    ))
                    .bind(id.as_str())
                    .fetch_optional(&self.pool)
                    .await?;
                    row.map(Connection::try_from).transpose()
                }

                async fn all_connections(&self) -> Result<Vec<Connection>, StoreError> {
                    let rows: Vec<ConnectionRow> = sqlx::query_as(&format!(
                        "SELECT {CONNECTION_COLUMNS} FROM connections WHERE status <> 'deleted' \
                         ORDER BY created_at, id"
                    ))
                    .fetch_all(&self.pool)
                    .await?;
                    rows::collect(rows)
                }

                async fn begin_pass(
                    &self,
                    creditor: &CreditorId,
                    connection: &ConnectionId,
                    full: bool,
                ) -> Result<Connection, StoreError> {
                    let mut tx = self.begin_write().await?;
                    sqlx::query(
                        "UPDATE connections SET sync_pass = sync_pass + 1, sync_in_pass = $3, \
                         sync_full = $4 WHERE creditor_id = $1 AND id = $2 AND NOT sync_in_pass \
                         AND status <> 'deleted'",
                    )
                    .bind(creditor.as_str())
                    .bind(connection.as_str())
                    .bind(true)
                    .bind(full)
                    .execute(&mut *tx)
                    .await?;
                    let row: Option<ConnectionRow> = sqlx::query_as(&format!(
                        "SELECT {CONNECTION_COLUMNS} FROM connections WHERE creditor_id = $1 AND id = $2 \
                         AND status <> 'deleted'"
                    ))
                    .bind(creditor.as_str())
                    .bind(connection.as_str())
                    .fetch_optional(&mut *tx)
                    .await?;
                    tx.commit().await?;
                    row.map(Connection::try_from)
                        .transpose()?
                        .ok_or_else(|| StoreError::NotFound {
                            what: "connection",
                            id: connection.to_string(),
                        })
                }

                async fn ingest(
                    &self,
                    creditor: &CreditorId,
                    connection: &ConnectionId,
                    batch: &IngestBatch<'_>,
                    now: DateTime<Utc>,
                ) -> Result<IngestReport, StoreError> {
                    let stored = batch
                        .items
                        .iter()
                        .map(|item| Ok((item, StoredFacts::of(&item.invoice)?)))
                        .collect::<Result<Vec<_>, StoreError>>()?;
                    loop {
                        if let Some(report) = self
                            .ingest_once(creditor, connection, &stored, batch, now)
                            .await?
                        {
                            self.after_ingest(report.created).await;
                            return Ok(report);
                        }
                    }
                }

                async fn unseen_open_invoices(
                    &self,
                    creditor: &CreditorId,
                    connection: &ConnectionId,
                    pass: i64,
                ) -> Result<Vec<String>, StoreError> {
                    Ok(sqlx::query_scalar(
                        "SELECT platform_id FROM invoices WHERE creditor_id = $1 \
                         AND connection_id = $2 AND outstanding_minor > 0 \
                         AND stage NOT IN ('withdrawn', 'closed', 'ended') \
                         AND (seen_pass IS NULL OR seen_pass < $3) ORDER BY platform_id",
                    )
                    .bind(creditor.as_str())
                    .bind(connection.as_str())
                    .bind(pass)
                    .fetch_all(&self.pool)
                    .await?)
                }

                async fn open_invoice_refs(
                    &self,
                    creditor: &CreditorId,
                    connection: &ConnectionId,
                    customer_platform_id: Option<&str>,
                ) -> Result<Vec<String>, StoreError> {
                    Ok(sqlx::query_scalar(
                        "SELECT platform_id FROM invoices WHERE creditor_id = $1 \
                         AND connection_id = $2 AND outstanding_minor > 0 \
                         AND stage NOT IN ('withdrawn', 'closed', 'ended') \
                         AND ($3 IS NULL OR customer_platform_id = $3) ORDER BY platform_id",
                    )
                    .bind(creditor.as_str())
                    .bind(connection.as_str())
                    .bind(customer_platform_id)
                    .fetch_all(&self.pool)
                    .await?)
                }

                async fn invoice_by_platform_id(
                    &self,
                    creditor: &CreditorId,
                    connection: &ConnectionId,
                    platform_id: &str,
                ) -> Result<Option<Invoice>, StoreError> {
                    let row: Option<InvoiceRow> = sqlx::query_as(&format!(
                        "SELECT {INVOICE_COLUMNS} FROM invoices WHERE creditor_id = $1 \
                         AND connection_id = $2 AND platform_id = $3"
                    ))
                    .bind(creditor.as_str())
                    .bind(connection.as_str())
                    .bind(platform_id)
                    .fetch_optional(&self.pool)
                    .await?;
                    row.map(Invoice::try_from).transpose()
                }

                async fn acquire_lease(
                    &self,
                    name: &str,
                    owner: &str,
                    now: DateTime<Utc>,
                    ttl: Duration,
                ) -> Result<bool, StoreError> {
                    let until = lease_end(now, ttl)?;
                    let holder: Option<String> = sqlx::query_scalar(
                        "INSERT INTO leases (name, owner, expires_at) VALUES ($1, $2, $3) \
                                 ON CONFLICT (name) DO UPDATE \
                                 SET owner = excluded.owner, expires_at = excluded.expires_at \
                                 WHERE leases.owner = excluded.owner OR leases.expires_at <= $4 \
                                 RETURNING owner",
                    )
                    .bind(name)
                    .bind(owner)
                    .bind(millis(until))
                    .bind(millis(now))
                    .fetch_optional(&self.pool)
                    .await?;
                    Ok(holder.as_deref() == Some(owner))
                }

                async fn release_lease(&self, name: &str, owner: &str) -> Result<(), StoreError> {
                    sqlx::query("DELETE FROM leases WHERE name = $1 AND owner = $2")
                        .bind(name)
                        .bind(owner)
                        .execute(&self.pool)
                        .await?;
                    Ok(())
                }

                async fn release_everything_of(&self, owner: &str) -> Result<(), StoreError> {
                    let mut tx = self.begin_write().await?;
                    sqlx::query("DELETE FROM leases WHERE owner = $1")
                        .bind(owner)
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query(
                        "UPDATE jobs SET state = 'pending', lease_owner = NULL, \
                                 lease_until = NULL WHERE lease_owner = $1 AND state = 'running'",
                    )
                    .bind(owner)
                    .execute(&mut *tx)
                    .await?;
                    tx.commit().await?;
                    Ok(())
                }
            }

            /// Opens the case of a transfer unless its `transfer_key` has one; the case, and
            /// whether it was opened now.
            async fn open_case_in_tx(
                tx: &mut sqlx::Transaction<'_, $db>,
                creditor: &CreditorId,
                new: &NewCase,
                now: DateTime<Utc>,
            ) -> Result<(Case, bool), StoreError> {
                let existing: Option<CaseRow> = sqlx::query_as(&format!(
                    "SELECT {CASE_COLUMNS} FROM cases WHERE transfer_key = $1"
                ))
                .bind(&new.transfer_key)
                .fetch_optional(&mut **tx)
                .await?;
                if let Some(row) = existing {
                    return Ok((Case::try_from(row)?, false));
                }
                let generation: i32 = sqlx::query_scalar(
                    "SELECT CAST(COUNT(*) + 1 AS INTEGER) FROM cases \
                             WHERE creditor_id = $1 AND invoice_id = $2",
                )
                .bind(creditor.as_str())
                .bind(new.invoice_id.as_str())
                .fetch_one(&mut **tx)
                .await?;
                let id = CaseId::generate();
                let row: CaseRow = sqlx::query_as(&format!(
                    "INSERT INTO cases (id, creditor_id, invoice_id, generation, state, \
                             currency, amount_minor, transfer_on, free_withdrawal_until, \
                             first_reminder_on, opened_at, transfer_key) \
                             VALUES ($1, $2, $3, $4, 'open', $5, $6, $7, $8, $9, $10, $11) \
                             RETURNING {CASE_COLUMNS}"
                ))
                .bind(id.as_str())
                .bind(creditor.as_str())
                .bind(new.invoice_id.as_str())
                .bind(generation)
                .bind(new.amount.currency.code())
                .bind(new.amount.to_minor_units()?)
                .bind(new.transfer_on)
                .bind(new.free_withdrawal_until)
                .bind(new.first_reminder_on)
                .bind(millis(now))
                .bind(&new.transfer_key)
                .fetch_one(&mut **tx)
                .await?;
                Ok((Case::try_from(row)?, true))
            }

            /// Records one claimed job's outcome and the attempt, if `owner` still holds it.
            async fn finish_in_tx(
                tx: &mut sqlx::Transaction<'_, $db>,
                job: &JobId,
                owner: &str,
                outcome: &JobOutcome,
                now: DateTime<Utc>,
            ) -> Result<bool, StoreError> {
                let (state, attempt, run_after, error) = match outcome {
                    JobOutcome::Succeeded => ("succeeded", "succeeded", None, None),
                    JobOutcome::Retry { run_after, error } => {
                        ("pending", "retry", Some(millis(*run_after)), Some(error.as_str()))
                    }
                    JobOutcome::Dead { error } => ("dead", "dead", None, Some(error.as_str())),
                    JobOutcome::Defer { run_after, reason } => {
                        ("pending", "deferred", Some(millis(*run_after)), Some(reason.as_str()))
                    }
                };
                let given_back = i32::from(matches!(outcome, JobOutcome::Defer { .. }));
                let updated = sqlx::query(
                    "UPDATE jobs SET state = $3, run_after = COALESCE($4, run_after), \
                             last_error = COALESCE($5, last_error), lease_owner = NULL, \
                             lease_until = NULL, updated_at = $6, attempts = attempts - $7 \
                             WHERE id = $1 AND lease_owner = $2 AND state = 'running'",
                )
                .bind(job.as_str())
                .bind(owner)
                .bind(state)
                .bind(run_after)
                .bind(error)
                .bind(millis(now))
                .bind(given_back)
                .execute(&mut **tx)
                .await?;
                if updated.rows_affected() == 0 {
                    return Ok(false);
                }
                sqlx::query(
                    "INSERT INTO job_attempts (job_id, attempt, finished_at, outcome, error) \
                             SELECT $1, CAST(COALESCE(MAX(attempt), 0) + 1 AS INTEGER), $2, $3, $4 \
                             FROM job_attempts WHERE job_id = $1",
                )
                .bind(job.as_str())
                .bind(millis(now))
                .bind(attempt)
                .bind(error)
                .execute(&mut **tx)
                .await?;
                Ok(true)
            }

            /// Keeps messages (once per id; a later delivery only sets `delivered_at`), a
            /// multi-row insert per [`ROWS_PER_STATEMENT`], and moves their cases to the state
            /// each one's delivery brings.
            async fn insert_pipeline_messages(
                tx: &mut sqlx::Transaction<'_, $db>,
                messages: &[&$crate::store::PipelineRecord],
                now: DateTime<Utc>,
            ) -> Result<(), StoreError> {
                // A statement may touch a row once: one row per id (delivered if any was).
                let mut rows: Vec<(&$crate::store::PipelineRecord, bool)> =
                    Vec::with_capacity(messages.len());
                let mut at: std::collections::HashMap<&str, usize> =
                    std::collections::HashMap::with_capacity(messages.len());
                for message in messages {
                    match at.get(message.id.as_str()) {
                        Some(&n) => rows[n].1 |= message.delivered,
                        None => {
                            at.insert(message.id.as_str(), rows.len());
                            rows.push((message, message.delivered));
                        }
                    }
                }
                for chunk in rows.chunks(ROWS_PER_STATEMENT) {
                    let mut insert = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO pipeline_messages (id, creditor_id, case_id, kind, body, \
                         created_at, delivered_at) ",
                    );
                    insert.push_values(chunk, |mut row, (message, delivered)| {
                        row.push_bind(message.id.clone())
                            .push_bind(message.creditor.0.clone())
                            .push_bind(message.case.0.clone())
                            .push_bind(message.kind.clone())
                            .push_bind(Json(&message.body))
                            .push_bind(millis(now))
                            .push_bind(delivered.then(|| millis(now)));
                    });
                    insert.push(
                        " ON CONFLICT (id) DO UPDATE SET delivered_at = \
                         COALESCE(pipeline_messages.delivered_at, excluded.delivered_at)",
                    );
                    insert.build().execute(&mut **tx).await?;
                }
                for message in messages {
                    if let Some(state) = message.case_state {
                        let updated = sqlx::query(
                            "UPDATE cases SET state = $3 WHERE creditor_id = $1 AND id = $2",
                        )
                        .bind(message.creditor.as_str())
                        .bind(message.case.as_str())
                        .bind(state.as_str())
                        .execute(&mut **tx)
                        .await?;
                        found(updated.rows_affected(), "case", message.case.as_str())?;
                    }
                }
                Ok(())
            }

            /// Records claimed jobs as succeeded, with an attempt each, where `owner` still
            /// holds them: two statements per [`ROWS_PER_STATEMENT`] jobs. The ids it finished.
            async fn finish_succeeded_in_tx(
                tx: &mut sqlx::Transaction<'_, $db>,
                owner: &str,
                jobs: &[&str],
                now: DateTime<Utc>,
            ) -> Result<std::collections::HashSet<String>, StoreError> {
                let mut finished = std::collections::HashSet::with_capacity(jobs.len());
                for chunk in jobs.chunks(ROWS_PER_STATEMENT) {
                    let done: Vec<String> = sqlx::query_scalar(&format!(
                        "UPDATE jobs SET state = 'succeeded', lease_owner = NULL, \
                         lease_until = NULL, updated_at = $2 \
                         WHERE {} AND lease_owner = $1 AND state = 'running' RETURNING id",
                        <$store as Dialect>::in_json_list("id", "$3")
                    ))
                    .bind(owner)
                    .bind(millis(now))
                    .bind(Json(chunk))
                    .fetch_all(&mut **tx)
                    .await?;
                    if done.is_empty() {
                        continue;
                    }
                    sqlx::query(&format!(
                        "INSERT INTO job_attempts (job_id, attempt, finished_at, outcome, error) \
                         SELECT j.id, CAST((SELECT COALESCE(MAX(a.attempt), 0) FROM job_attempts a \
                         WHERE a.job_id = j.id) + 1 AS INTEGER), $1, 'succeeded', NULL \
                         FROM jobs j WHERE {}",
                        <$store as Dialect>::in_json_list("j.id", "$2")
                    ))
                    .bind(millis(now))
                    .bind(Json(&done))
                    .execute(&mut **tx)
                    .await?;
                    finished.extend(done);
                }
                Ok(finished)
            }

            async fn append_event(
                tx: &mut sqlx::Transaction<'_, $db>,
                creditor: &CreditorId,
                invoice: &InvoiceId,
                now: DateTime<Utc>,
                source: EventSource,
                kind: &str,
                change: &serde_json::Value,
            ) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO invoice_events (creditor_id, invoice_id, at, source, kind, \
                             change) VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(creditor.as_str())
                .bind(invoice.as_str())
                .bind(millis(now))
                .bind(source.as_str())
                .bind(kind)
                .bind(Json(change))
                .execute(&mut **tx)
                .await?;
                Ok(())
            }

            fn bind_customer<'q>(
                query: sqlx::query::Query<
                    'q,
                    $db,
                    <$db as sqlx::Database>::Arguments<'q>,
                >,
                facts: &'q CustomerFacts,
            ) -> sqlx::query::Query<'q, $db, <$db as sqlx::Database>::Arguments<'q>>
            {
                query
                    .bind(facts.kind.as_str())
                    .bind(&facts.name)
                    .bind(&facts.organisation_number)
                    .bind(facts.national_id.as_ref().map(|n| n.0.as_str()))
                    .bind(&facts.email)
                    .bind(facts.postal_address.as_ref().map(Json))
                    .bind(facts.platform_dunning)
            }

            /// After an update of an invoice that wrote nothing: undoes the transaction and says
            /// whether the invoice exists for this creditor (so the caller can tell "already so" or
            /// "changed meanwhile" from "not this creditor's").
            async fn invoice_exists_then_roll_back(
                mut tx: sqlx::Transaction<'_, $db>,
                creditor: &CreditorId,
                invoice: &InvoiceId,
            ) -> Result<bool, StoreError> {
                let version: Option<i64> = sqlx::query_scalar(
                    "SELECT version FROM invoices WHERE creditor_id = $1 AND id = $2",
                )
                .bind(creditor.as_str())
                .bind(invoice.as_str())
                .fetch_optional(&mut *tx)
                .await?;
                tx.rollback().await?;
                Ok(version.is_some())
            }

            fn found(rows: u64, what: &'static str, id: &str) -> Result<(), StoreError> {
                if rows == 0 {
                    Err(StoreError::NotFound {
                        what,
                        id: id.to_owned(),
                    })
                } else {
                    Ok(())
                }
            }

            impl $store {
                /// An insert that wrote nothing: a concurrent writer inserted the same row first
                /// (`Ok(None)`: run again, it will now find the row), or the connection is not
                /// this creditor's.
                async fn lost_insert_race<T>(
                    &self,
                    creditor: &CreditorId,
                    connection: &ConnectionId,
                    tx: sqlx::Transaction<'_, $db>,
                ) -> Result<Option<T>, StoreError> {
                    tx.rollback().await?;
                    let exists: Option<i64> = sqlx::query_scalar(
                        "SELECT CAST(1 AS BIGINT) FROM connections WHERE creditor_id = $1 AND id = $2",
                    )
                    .bind(creditor.as_str())
                    .bind(connection.as_str())
                    .fetch_optional(&self.pool)
                    .await?;
                    match exists {
                        Some(_) => Ok(None),
                        None => Err(StoreError::NotFound {
                            what: "connection",
                            id: connection.to_string(),
                        }),
                    }
                }

                async fn upsert_customer_once(
                    &self,
                    creditor: &CreditorId,
                    connection: &ConnectionId,
                    facts: &CustomerFacts,
                ) -> Result<Option<Upserted<CustomerId>>, StoreError> {
                    let mut tx = self.begin_write().await?;
                    match customer_in_tx(&mut tx, creditor, connection, facts).await? {
                        None => self.lost_insert_race(creditor, connection, tx).await,
                        Some((id, written, _)) => {
                            tx.commit().await?;
                            Ok(Some(Upserted { id, written }))
                        }
                    }
                }

                async fn upsert_invoice_once(
                    &self,
                    creditor: &CreditorId,
                    connection: &ConnectionId,
                    stored: &StoredFacts,
                    source: EventSource,
                    now: DateTime<Utc>,
                ) -> Result<Option<Upserted<InvoiceId>>, StoreError> {
                    let mut tx = self.begin_write().await?;
                    let write = InvoiceWrite {
                        creditor,
                        connection,
                        stored,
                        source,
                        now,
                    };
                    match invoice_in_tx(&mut tx, &write).await? {
                        InvoiceWritten::Race => self.lost_insert_race(creditor, connection, tx).await,
                        InvoiceWritten::Unchanged(id) => {
                            // Nothing new: no write at all.
                            tx.rollback().await?;
                            Ok(Some(Upserted { id, written: Written::Unchanged }))
                        }
                        InvoiceWritten::Written { id, written } => {
                            tx.commit().await?;
                            Ok(Some(Upserted { id, written }))
                        }
                    }
                }

                /// One attempt at a page: `None` when a concurrent writer created one of its rows
                /// first (the caller runs the page again). A page is a handful of statements,
                /// whatever its size: one locked read of its customers and of its invoices, then
                /// one multi-row insert each of new customers, new invoices, events, decisions and
                /// jobs (changed rows are updated one by one: they are the few).
                async fn ingest_once(
                    &self,
                    creditor: &CreditorId,
                    connection: &ConnectionId,
                    items: &[(&IngestItem, StoredFacts)],
                    batch: &IngestBatch<'_>,
                    now: DateTime<Utc>,
                ) -> Result<Option<IngestReport>, StoreError> {
                    use std::collections::{HashMap, HashSet};
                    let (source, decide, progress) = (batch.source, batch.decide, batch.progress);
                    let seen_pass = progress.filter(|p| p.full).map(|p| p.pass);
                    let mut tx = self.begin_write().await?;
                    let mut report = IngestReport::default();
                    let ours: Option<i64> = sqlx::query_scalar(
                        "SELECT CAST(1 AS BIGINT) FROM connections WHERE creditor_id = $1 AND id = $2",
                    )
                    .bind(creditor.as_str())
                    .bind(connection.as_str())
                    .fetch_optional(&mut *tx)
                    .await?;
                    if ours.is_none() {
                        tx.rollback().await?;
                        return Err(StoreError::NotFound {
                            what: "connection",
                            id: connection.to_string(),
                        });
                    }

                    // The page's invoices, read under lock; an invoice listed twice counts once,
                    // as last listed.
                    let mut last_of: HashMap<&str, usize> = HashMap::new();
                    for (n, (_, stored)) in items.iter().enumerate() {
                        last_of.insert(stored.normalized.platform_id.as_str(), n);
                    }
                    let refs: Vec<&str> = last_of.keys().copied().collect();
                    let rows: Vec<InvoiceRow> = sqlx::query_as(&format!(
                        "SELECT {INVOICE_COLUMNS} FROM invoices WHERE creditor_id = $1 \
                         AND connection_id = $2 AND {}{}",
                        Self::in_json_list("platform_id", "$3"),
                        Self::LOCK_FOR_UPDATE
                    ))
                    .bind(creditor.as_str())
                    .bind(connection.as_str())
                    .bind(Json(&refs))
                    .fetch_all(&mut *tx)
                    .await?;
                    let mut existing: HashMap<String, InvoiceRow> = HashMap::new();
                    for row in rows {
                        existing.insert(row.facts()?.platform_id, row);
                    }
                    // The page's customers: known ones read under lock, new ones inserted at once.
                    let mut customer_refs: Vec<String> = items
                        .iter()
                        .map(|(_, s)| s.normalized.customer_platform_id.clone())
                        .collect();
                    customer_refs.sort_unstable();
                    customer_refs.dedup();
                    let rows: Vec<CustomerRow> = sqlx::query_as(&format!(
                        "SELECT {CUSTOMER_COLUMNS} FROM customers WHERE creditor_id = $1 \
                         AND connection_id = $2 AND {}{}",
                        Self::in_json_list("platform_id", "$3"),
                        Self::LOCK_FOR_UPDATE
                    ))
                    .bind(creditor.as_str())
                    .bind(connection.as_str())
                    .bind(Json(&customer_refs))
                    .fetch_all(&mut *tx)
                    .await?;
                    // platform id → (id, opt-out)
                    let mut customers: HashMap<String, (CustomerId, bool)> = HashMap::new();
                    let mut stored_customers: HashMap<String, CustomerFacts> = HashMap::new();
                    for row in rows {
                        let facts = row.facts()?;
                        customers.insert(
                            facts.platform_id.clone(),
                            (CustomerId::from(row.id()), row.opt_out()),
                        );
                        stored_customers.insert(facts.platform_id.clone(), facts);
                    }
                    let mut fresh_customers: Vec<(CustomerId, &CustomerFacts)> = Vec::new();
                    let mut touched: Vec<String> = Vec::new();
                    let mut named: HashSet<&str> = HashSet::new();
                    for (item, stored) in items {
                        let Some(facts) = &item.customer else { continue };
                        // A closed invoice Forfall never knew is not written, nor is its customer.
                        if item.known_only && !existing.contains_key(&stored.normalized.platform_id) {
                            continue;
                        }
                        if !named.insert(facts.platform_id.as_str()) {
                            continue;
                        }
                        match (customers.get(&facts.platform_id), stored_customers.get(&facts.platform_id)) {
                            (Some(_), Some(stored)) if stored == facts => {}
                            (Some((id, _)), _) => {
                                update_customer(&mut tx, creditor, id, facts).await?;
                                touched.push(facts.platform_id.clone());
                            }
                            _ => fresh_customers.push((CustomerId::generate(), facts)),
                        }
                    }
                    for chunk in fresh_customers.chunks(ROWS_PER_STATEMENT) {
                        let mut insert = sqlx::QueryBuilder::<$db>::new(
                            "INSERT INTO customers (creditor_id, id, connection_id, platform_id, kind, \
                             name, organisation_number, national_id, email, postal_address, \
                             platform_dunning) ",
                        );
                        insert.push_values(chunk, |mut row, (id, f)| {
                            row.push_bind(creditor.0.clone())
                                .push_bind(id.0.clone())
                                .push_bind(connection.0.clone())
                                .push_bind(f.platform_id.clone())
                                .push_bind(f.kind.as_str())
                                .push_bind(f.name.clone())
                                .push_bind(f.organisation_number.clone())
                                .push_bind(f.national_id.as_ref().map(|n| n.0.clone()))
                                .push_bind(f.email.clone())
                                .push_bind(f.postal_address.clone().map(Json))
                                .push_bind(f.platform_dunning);
                        });
                        insert.push(" ON CONFLICT (creditor_id, connection_id, platform_id) DO NOTHING");
                        let done = insert.build().execute(&mut *tx).await?;
                        if done.rows_affected() != chunk.len() as u64 {
                            return self.lost_insert_race(creditor, connection, tx).await;
                        }
                    }
                    for (id, facts) in &fresh_customers {
                        customers.insert(facts.platform_id.clone(), (id.clone(), false));
                        touched.push(facts.platform_id.clone());
                    }
                    if !touched.is_empty() {
                        // Invoices that arrived before their customer now find it.
                        sqlx::query(&format!(
                            "UPDATE invoices SET customer_id = (SELECT c.id FROM customers c \
                             WHERE c.creditor_id = invoices.creditor_id \
                             AND c.connection_id = invoices.connection_id \
                             AND c.platform_id = invoices.customer_platform_id) \
                             WHERE creditor_id = $1 AND connection_id = $2 AND customer_id IS NULL \
                             AND {}",
                            Self::in_json_list("customer_platform_id", "$3")
                        ))
                        .bind(creditor.as_str())
                        .bind(connection.as_str())
                        .bind(Json(&touched))
                        .execute(&mut *tx)
                        .await?;
                    }

                    let mut fresh: Vec<(InvoiceId, &StoredFacts, Option<CustomerId>, Stage, Option<NaiveDate>, serde_json::Value)> = Vec::new();
                    let mut events: Vec<(InvoiceId, &'static str, serde_json::Value)> = Vec::new();
                    let mut updates: Vec<(InvoiceId, LifecycleUpdate)> = Vec::new();
                    let mut seen: Vec<String> = Vec::new();
                    for (n, (item, stored)) in items.iter().enumerate() {
                        let facts = &stored.normalized;
                        if last_of.get(facts.platform_id.as_str()) != Some(&n) {
                            continue;
                        }
                        let customer = customers.get(&facts.customer_platform_id);
                        let opt_out = customer.is_some_and(|(_, o)| *o);
                        match existing.remove(&facts.platform_id) {
                            Some(row) => {
                                let before = row.facts()?;
                                let id = InvoiceId::from(row.id());
                                if before == *facts {
                                    report.unchanged += 1;
                                    if seen_pass.is_some() {
                                        seen.push(id.0);
                                    }
                                    continue;
                                }
                                let invoice = Invoice::try_from(row)?;
                                let update = decide.decide(Some(&invoice), facts, opt_out);
                                let write = InvoiceWrite {
                                    creditor,
                                    connection,
                                    stored,
                                    source,
                                    now,
                                };
                                update_invoice(&mut tx, &write, &id, seen_pass, update.as_ref())
                                    .await?;
                                events.push((
                                    id.clone(),
                                    "changed",
                                    serde_json::Value::Object(before.changes_to(facts)),
                                ));
                                if let Some(update) = update {
                                    updates.push((id, update));
                                }
                                report.changed += 1;
                            }
                            None if item.known_only => report.skipped += 1,
                            None => {
                                let id = InvoiceId::generate();
                                let update = decide.decide(None, facts, opt_out);
                                let (stage, next_action_on, lifecycle) = match &update {
                                    Some(u) => (u.stage, u.next_action_on, u.lifecycle.clone()),
                                    None => (Stage::Open, Some(facts.due), serde_json::json!({})),
                                };
                                events.push((
                                    id.clone(),
                                    "created",
                                    serde_json::to_value(facts)
                                        .map_err(|e| StoreError::Invalid(e.to_string()))?,
                                ));
                                fresh.push((
                                    id.clone(),
                                    stored,
                                    customer.map(|(c, _)| c.clone()),
                                    stage,
                                    next_action_on,
                                    lifecycle,
                                ));
                                if let Some(update) = update {
                                    updates.push((id, update));
                                }
                                report.created += 1;
                            }
                        }
                    }
                    let at = millis(now);
                    for chunk in fresh.chunks(ROWS_PER_STATEMENT) {
                        let mut insert = sqlx::QueryBuilder::<$db>::new(
                            "INSERT INTO invoices (creditor_id, id, connection_id, platform_id, number, \
                             customer_platform_id, customer_id, issued, due, currency, amount_minor, \
                             outstanding_minor, payment_reference, stage, next_action_on, lifecycle, \
                             version, created_at, updated_at, credited, seen_pass) ",
                        );
                        insert.push_values(chunk, |mut row, (id, stored, customer, stage, next, lifecycle)| {
                            let f = &stored.normalized;
                            row.push_bind(creditor.0.clone())
                                .push_bind(id.0.clone())
                                .push_bind(connection.0.clone())
                                .push_bind(f.platform_id.clone())
                                .push_bind(f.number.clone())
                                .push_bind(f.customer_platform_id.clone())
                                .push_bind(customer.as_ref().map(|c| c.0.clone()))
                                .push_bind(f.issued)
                                .push_bind(f.due)
                                .push_bind(f.currency.code())
                                .push_bind(stored.amount_minor)
                                .push_bind(stored.outstanding_minor)
                                .push_bind(f.payment_reference.clone())
                                .push_bind(stage.as_str())
                                .push_bind(*next)
                                .push_bind(Json(lifecycle.clone()))
                                .push_bind(1_i64)
                                .push_bind(at)
                                .push_bind(at)
                                .push_bind(f.credited)
                                .push_bind(seen_pass);
                        });
                        insert.push(" ON CONFLICT (creditor_id, connection_id, platform_id) DO NOTHING");
                        let done = insert.build().execute(&mut *tx).await?;
                        if done.rows_affected() != chunk.len() as u64 {
                            return self.lost_insert_race(creditor, connection, tx).await;
                        }
                    }
                    for chunk in events.chunks(ROWS_PER_STATEMENT) {
                        let mut insert = sqlx::QueryBuilder::<$db>::new(
                            "INSERT INTO invoice_events (creditor_id, invoice_id, at, source, kind, change) ",
                        );
                        insert.push_values(chunk, |mut row, (id, kind, change)| {
                            row.push_bind(creditor.0.clone())
                                .push_bind(id.0.clone())
                                .push_bind(at)
                                .push_bind(source.as_str())
                                .push_bind(*kind)
                                .push_bind(Json(change.clone()));
                        });
                        insert.build().execute(&mut *tx).await?;
                    }
                    let decisions: Vec<(&InvoiceId, &NewDecision)> = updates
                        .iter()
                        .flat_map(|(id, u)| u.decisions.iter().map(move |d| (id, d)))
                        .collect();
                    report.decisions += decisions.len();
                    insert_decisions(&mut tx, creditor, &decisions, now).await?;
                    let jobs: Vec<(&CreditorId, &NewJob)> = updates
                        .iter()
                        .flat_map(|(_, u)| u.jobs.iter().map(|j| (creditor, j)))
                        .collect();
                    insert_jobs(&mut tx, &jobs, now).await?;
                    if let (Some(pass), false) = (seen_pass, seen.is_empty()) {
                        sqlx::query(&format!(
                            "UPDATE invoices SET seen_pass = $3 WHERE creditor_id = $1 \
                             AND {}",
                            Self::in_json_list("id", "$2")
                        ))
                        .bind(creditor.as_str())
                        .bind(Json(&seen))
                        .bind(pass)
                        .execute(&mut *tx)
                        .await?;
                    }
                    if let Some(progress) = progress {
                        let updated = sqlx::query(
                            "UPDATE connections SET sync_cursor = $3, sync_in_pass = $4, \
                             last_synced_at = CASE WHEN $4 THEN last_synced_at ELSE $5 END, \
                             last_full_sync_at = CASE WHEN $4 OR NOT $6 THEN last_full_sync_at ELSE $5 END \
                             WHERE creditor_id = $1 AND id = $2 AND sync_pass = $7",
                        )
                        .bind(creditor.as_str())
                        .bind(connection.as_str())
                        .bind(&progress.cursor)
                        .bind(!progress.last)
                        .bind(millis(now))
                        .bind(progress.full)
                        .bind(progress.pass)
                        .execute(&mut *tx)
                        .await?;
                        if updated.rows_affected() == 0 {
                            // Another pass started meanwhile: this page's progress is not ours.
                            tx.rollback().await?;
                            return Err(StoreError::Conflict {
                                what: "sync pass",
                                id: connection.to_string(),
                            });
                        }
                    }
                    tx.commit().await?;
                    Ok(Some(report))
                }
            }

            /// Reads, then inserts or updates a customer inside `tx`: its id, what was written and
            /// its opt-out; `None` when a concurrent writer inserted it first.
            async fn customer_in_tx(
                tx: &mut sqlx::Transaction<'_, $db>,
                creditor: &CreditorId,
                connection: &ConnectionId,
                facts: &CustomerFacts,
            ) -> Result<Option<(CustomerId, Written, bool)>, StoreError> {
                let existing: Option<CustomerRow> = sqlx::query_as(&format!(
                    "SELECT {CUSTOMER_COLUMNS} FROM customers WHERE creditor_id = $1 \
                     AND connection_id = $2 AND platform_id = $3{}",
                    <$store as Dialect>::LOCK_FOR_UPDATE
                ))
                .bind(creditor.as_str())
                .bind(connection.as_str())
                .bind(&facts.platform_id)
                .fetch_optional(&mut **tx)
                .await?;
                let (id, written, opt_out) = match existing {
                    Some(row) if row.facts()? == *facts => {
                        (CustomerId::from(row.id()), Written::Unchanged, row.opt_out())
                    }
                    Some(row) => {
                        let id = CustomerId::from(row.id());
                        update_customer(tx, creditor, &id, facts).await?;
                        (id, Written::Changed, row.opt_out())
                    }
                    None => {
                        let id = CustomerId::generate();
                        let inserted = bind_customer(
                            sqlx::query(
                                "INSERT INTO customers (creditor_id, id, kind, name, \
                                 organisation_number, national_id, email, postal_address, \
                                 platform_dunning, connection_id, platform_id) \
                                 SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11 \
                                 FROM connections WHERE creditor_id = $1 AND id = $10 \
                                 ON CONFLICT (creditor_id, connection_id, platform_id) \
                                 DO NOTHING",
                            )
                            .bind(creditor.as_str())
                            .bind(id.as_str()),
                            facts,
                        )
                        .bind(connection.as_str())
                        .bind(&facts.platform_id)
                        .execute(&mut **tx)
                        .await?;
                        if inserted.rows_affected() == 0 {
                            return Ok(None);
                        }
                        (id, Written::Created, false)
                    }
                };
                if written != Written::Unchanged {
                    // Invoices that arrived before their customer now find it.
                    sqlx::query(
                        "UPDATE invoices SET customer_id = $3 WHERE creditor_id = $1 \
                         AND connection_id = $2 AND customer_platform_id = $4 \
                         AND customer_id IS NULL",
                    )
                    .bind(creditor.as_str())
                    .bind(connection.as_str())
                    .bind(id.as_str())
                    .bind(&facts.platform_id)
                    .execute(&mut **tx)
                    .await?;
                }
                Ok(Some((id, written, opt_out)))
            }

            /// One invoice to write inside a transaction.
            struct InvoiceWrite<'a> {
                creditor: &'a CreditorId,
                connection: &'a ConnectionId,
                stored: &'a StoredFacts,
                source: EventSource,
                now: DateTime<Utc>,
            }

            enum InvoiceWritten {
                /// A concurrent writer created the invoice first.
                Race,
                Unchanged(InvoiceId),
                Written { id: InvoiceId, written: Written },
            }

            /// Reads the invoice under lock, then inserts it or updates its facts, with one
            /// InvoiceEvent (the lifecycle is left to `save_lifecycle`).
            async fn invoice_in_tx(
                tx: &mut sqlx::Transaction<'_, $db>,
                w: &InvoiceWrite<'_>,
            ) -> Result<InvoiceWritten, StoreError> {
                let (creditor, connection, stored) = (w.creditor, w.connection, w.stored);
                let facts = &stored.normalized;
                let existing: Option<InvoiceRow> = sqlx::query_as(&format!(
                    "SELECT {INVOICE_COLUMNS} FROM invoices WHERE creditor_id = $1 \
                     AND connection_id = $2 AND platform_id = $3{}",
                    <$store as Dialect>::LOCK_FOR_UPDATE
                ))
                .bind(creditor.as_str())
                .bind(connection.as_str())
                .bind(&facts.platform_id)
                .fetch_optional(&mut **tx)
                .await?;
                let (id, written, kind, change) = match existing {
                    Some(row) => {
                        let before = row.facts()?;
                        let id = InvoiceId::from(row.id());
                        if before == *facts {
                            return Ok(InvoiceWritten::Unchanged(id));
                        }
                        update_invoice(tx, w, &id, None, None).await?;
                        let change = serde_json::Value::Object(before.changes_to(facts));
                        (id, Written::Changed, "changed", change)
                    }
                    None => {
                        let id = InvoiceId::generate();
                        let inserted = sqlx::query(
                            "INSERT INTO invoices (creditor_id, id, connection_id, \
                             platform_id, number, customer_platform_id, issued, due, \
                             currency, amount_minor, outstanding_minor, payment_reference, \
                             customer_id, stage, next_action_on, lifecycle, version, \
                             created_at, updated_at, credited) \
                             SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, \
                               (SELECT c.id FROM customers c WHERE c.creditor_id = $1 \
                                AND c.connection_id = $3 AND c.platform_id = $6), \
                               $13, $8, $14, 1, $15, $15, $16 \
                             FROM connections WHERE creditor_id = $1 AND id = $3 \
                             ON CONFLICT (creditor_id, connection_id, platform_id) DO NOTHING",
                        )
                        .bind(creditor.as_str())
                        .bind(id.as_str())
                        .bind(connection.as_str())
                        .bind(&facts.platform_id)
                        .bind(&facts.number)
                        .bind(&facts.customer_platform_id)
                        .bind(facts.issued)
                        .bind(facts.due)
                        .bind(facts.currency.code())
                        .bind(stored.amount_minor)
                        .bind(stored.outstanding_minor)
                        .bind(&facts.payment_reference)
                        .bind(Stage::Open.as_str())
                        .bind(Json(serde_json::json!({})))
                        .bind(millis(w.now))
                        .bind(facts.credited)
                        .execute(&mut **tx)
                        .await?;
                        if inserted.rows_affected() == 0 {
                            return Ok(InvoiceWritten::Race);
                        }
                        let change = serde_json::to_value(facts)
                            .map_err(|e| StoreError::Invalid(e.to_string()))?;
                        (id, Written::Created, "created", change)
                    }
                };
                append_event(tx, creditor, &id, w.now, w.source, kind, &change).await?;
                Ok(InvoiceWritten::Written { id, written })
            }

            /// Appends a lifecycle update's decisions and enqueues its jobs (the outbox).
            async fn append_decisions_and_jobs(
                tx: &mut sqlx::Transaction<'_, $db>,
                creditor: &CreditorId,
                invoice: &InvoiceId,
                update: &LifecycleUpdate,
                now: DateTime<Utc>,
            ) -> Result<(), StoreError> {
                if let Some(seen) = &update.agency_event {
                    let inserted = sqlx::query(
                        "INSERT INTO pipeline_events (id, case_id, kind, received_at) \
                                 VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO NOTHING",
                    )
                    .bind(&seen.id)
                    .bind(seen.case_id.as_str())
                    .bind(&seen.kind)
                    .bind(millis(now))
                    .execute(&mut **tx)
                    .await?;
                    if inserted.rows_affected() == 0 {
                        return Err(StoreError::AlreadyApplied(seen.id.clone()));
                    }
                }
                let decisions: Vec<_> = update.decisions.iter().map(|d| (invoice, d)).collect();
                insert_decisions(tx, creditor, &decisions, now).await?;
                let jobs: Vec<_> = update.jobs.iter().map(|j| (creditor, j)).collect();
                insert_jobs(tx, &jobs, now).await?;
                Ok(())
            }

            /// Appends decisions, a multi-row insert per [`ROWS_PER_STATEMENT`].
            async fn insert_decisions(
                tx: &mut sqlx::Transaction<'_, $db>,
                creditor: &CreditorId,
                decisions: &[(&InvoiceId, &NewDecision)],
                now: DateTime<Utc>,
            ) -> Result<(), StoreError> {
                for chunk in decisions.chunks(ROWS_PER_STATEMENT) {
                    let mut insert = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO decisions (creditor_id, invoice_id, on_day, at, rule, inputs, outcome) ",
                    );
                    insert.push_values(chunk, |mut row, (id, d)| {
                        row.push_bind(creditor.0.clone())
                            .push_bind(id.0.clone())
                            .push_bind(d.on)
                            .push_bind(millis(now))
                            .push_bind(d.rule.clone())
                            .push_bind(Json(d.inputs.clone()))
                            .push_bind(Json(d.outcome.clone()));
                    });
                    insert.build().execute(&mut **tx).await?;
                }
                Ok(())
            }

            /// Enqueues jobs, a multi-row insert per [`ROWS_PER_STATEMENT`]; the same work
            /// enqueued twice stays one job. The idempotency keys that were new.
            async fn insert_jobs(
                tx: &mut sqlx::Transaction<'_, $db>,
                jobs: &[(&CreditorId, &NewJob)],
                now: DateTime<Utc>,
            ) -> Result<std::collections::HashSet<String>, StoreError> {
                let mut inserted = std::collections::HashSet::new();
                for chunk in jobs.chunks(ROWS_PER_STATEMENT) {
                    let mut insert = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO jobs (id, creditor_id, kind, idempotency_key, payload, state, \
                         attempts, run_after, created_at, updated_at, chain) ",
                    );
                    insert.push_values(chunk, |mut row, (creditor, job)| {
                        row.push_bind(JobId::generate().0)
                            .push_bind(creditor.as_str())
                            .push_bind(job.kind.as_str())
                            .push_bind(job.idempotency_key.as_str())
                            .push_bind(Json(&job.payload))
                            .push_bind("pending")
                            .push_bind(0_i32)
                            .push_bind(millis(job.run_after))
                            .push_bind(millis(now))
                            .push_bind(millis(now))
                            .push_bind(job.chain.as_deref());
                    });
                    insert.push(" ON CONFLICT (idempotency_key) DO NOTHING RETURNING idempotency_key");
                    let keys: Vec<String> = insert.build_query_scalar().fetch_all(&mut **tx).await?;
                    inserted.extend(keys);
                }
                Ok(inserted)
            }

            async fn update_customer(
                tx: &mut sqlx::Transaction<'_, $db>,
                creditor: &CreditorId,
                id: &CustomerId,
                facts: &CustomerFacts,
            ) -> Result<(), StoreError> {
                bind_customer(
                    sqlx::query(
                        "UPDATE customers SET kind = $3, name = $4, \
                         organisation_number = $5, national_id = $6, email = $7, \
                         postal_address = $8, platform_dunning = $9, version = version + 1 \
                         WHERE creditor_id = $1 AND id = $2",
                    )
                    .bind(creditor.as_str())
                    .bind(id.as_str()),
                    facts,
                )
                .execute(&mut **tx)
                .await?;
                Ok(())
            }

            /// Writes an invoice's new facts, and, when given, the full pass that listed it and
            /// the lifecycle engine's update (stage, next action, state).
            async fn update_invoice(
                tx: &mut sqlx::Transaction<'_, $db>,
                w: &InvoiceWrite<'_>,
                id: &InvoiceId,
                seen_pass: Option<i64>,
                update: Option<&LifecycleUpdate>,
            ) -> Result<(), StoreError> {
                let (stored, facts) = (w.stored, &w.stored.normalized);
                sqlx::query(
                    "UPDATE invoices SET number = $4, customer_platform_id = $5, \
                     issued = $6, due = $7, currency = $8, amount_minor = $9, \
                     outstanding_minor = $10, payment_reference = $11, credited = $13, \
                     customer_id = (SELECT c.id FROM customers c \
                       WHERE c.creditor_id = $1 AND c.connection_id = $3 \
                       AND c.platform_id = $5), \
                     seen_pass = COALESCE($14, seen_pass), \
                     stage = COALESCE($15, stage), \
                     next_action_on = CASE WHEN $15 IS NULL THEN next_action_on ELSE $16 END, \
                     lifecycle = COALESCE($17, lifecycle), \
                     version = version + 1, updated_at = $12 \
                     WHERE creditor_id = $1 AND id = $2",
                )
                .bind(w.creditor.as_str())
                .bind(id.as_str())
                .bind(w.connection.as_str())
                .bind(&facts.number)
                .bind(&facts.customer_platform_id)
                .bind(facts.issued)
                .bind(facts.due)
                .bind(facts.currency.code())
                .bind(stored.amount_minor)
                .bind(stored.outstanding_minor)
                .bind(&facts.payment_reference)
                .bind(millis(w.now))
                .bind(facts.credited)
                .bind(seen_pass)
                .bind(update.map(|u| u.stage.as_str()))
                .bind(update.and_then(|u| u.next_action_on))
                .bind(update.map(|u| Json(&u.lifecycle)))
                .execute(&mut **tx)
                .await?;
                Ok(())
            }
        };
    };
}

pub(super) use impl_store;
