//! What the partner and creditor API needs from the store: partners, API keys (by hash), the
//! idempotency record of POST requests, and listings scoped to what a key's owner may reach.
//! Every listing takes the [`Owner`] and filters on it in SQL, so no query of this module can
//! return another tenant's rows.

use chrono::{DateTime, NaiveDate, Utc};

use super::StoreError;
use super::rows::instant;
use crate::domain::{
    ApiKey, ApiKeyId, Connection, ConnectionId, Creditor, CreditorId, CustomerId, Decision,
    Invoice, InvoiceId, Job, JobState, Owner, Partner, PartnerId, PipelineMessage, Scopes, Stage,
};

/// Filters of `GET /v1/creditors/{creditor}/invoices`; `None` is "any".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InvoiceFilter {
    pub stage: Option<Stage>,
    pub customer: Option<CustomerId>,
    /// Due on or before.
    pub due_before: Option<NaiveDate>,
    /// Due on or after.
    pub due_after: Option<NaiveDate>,
    pub opted_out: Option<bool>,
    pub disputed: Option<bool>,
    /// Only invoices whose id sorts after this one (the cursor).
    pub after: Option<InvoiceId>,
}

/// How long an answer is kept for replay: a day, as Stripe does.
pub const KEPT_FOR_MS: i64 = 24 * 60 * 60 * 1000;

/// How long a first request may take before another with the same key takes over from it.
pub const STALE_IN_PROGRESS_MS: i64 = 60_000;

/// The first answer to a POST, kept for replay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeptAnswer<'a> {
    pub status: u16,
    pub content_type: &'a str,
    /// Its `Location` header, if it had one.
    pub location: Option<&'a str>,
    pub body: &'a str,
}

/// Where a POST with an `Idempotency-Key` stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Idempotency {
    /// First use of the key: the caller answers, then records the answer.
    Started,
    /// The first request with this key is still being answered.
    InProgress { request_hash: String },
    /// Answered before: the answer to repeat (when the request is the same).
    Answered {
        request_hash: String,
        status: u16,
        content_type: String,
        /// The first answer's `Location` header, if it had one.
        location: Option<String>,
        body: String,
    },
}

#[async_trait::async_trait]
pub trait ApiStore: Send + Sync {
    async fn create_partner(&self, name: &str, now: DateTime<Utc>) -> Result<Partner, StoreError>;
    async fn partner(&self, id: &PartnerId) -> Result<Option<Partner>, StoreError>;

    /// Stores a key by the hash of its token. `StoreError::Invalid` when the owner does not exist.
    async fn create_api_key(
        &self,
        owner: &Owner,
        scopes: Scopes,
        label: Option<&str>,
        hash: &str,
        now: DateTime<Utc>,
    ) -> Result<ApiKey, StoreError>;
    /// The key whose token hashes to `hash`, revoked or not.
    async fn api_key_by_hash(&self, hash: &str) -> Result<Option<ApiKey>, StoreError>;
    async fn api_keys(&self) -> Result<Vec<ApiKey>, StoreError>;
    /// Whether a key that was live is now revoked.
    async fn revoke_api_key(&self, id: &ApiKeyId, now: DateTime<Utc>) -> Result<bool, StoreError>;

    /// The creditors `owner` reaches, by id, after the cursor.
    async fn creditors_of(
        &self,
        owner: &Owner,
        after: Option<&CreditorId>,
        limit: u32,
    ) -> Result<Vec<Creditor>, StoreError>;
    /// Writes a creditor's name, country, time zone, language, policy and e-mail.
    async fn update_creditor(&self, creditor: &Creditor) -> Result<bool, StoreError>;

    /// Claims `key` for `api_key` (first use), or tells how it was used before.
    async fn begin_idempotent(
        &self,
        api_key: &ApiKeyId,
        key: &str,
        request_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Idempotency, StoreError>;
    /// Records the answer of the claim made at `claimed_at` (a claim taken over since is left
    /// alone).
    async fn finish_idempotent(
        &self,
        api_key: &ApiKeyId,
        key: &str,
        claimed_at: DateTime<Utc>,
        answer: &KeptAnswer<'_>,
    ) -> Result<(), StoreError>;
    /// Lets the key be used again (the first request failed in a way worth retrying), unless
    /// another claim took it over since `claimed_at`.
    async fn forget_idempotent(
        &self,
        api_key: &ApiKeyId,
        key: &str,
        claimed_at: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// A creditor's connections that are not deleted, by id, after the cursor.
    async fn connections_of(
        &self,
        creditor: &CreditorId,
        after: Option<&ConnectionId>,
        limit: u32,
    ) -> Result<Vec<Connection>, StoreError>;
    /// Deletes a connection softly (its invoices and customers reference it): the status becomes
    /// `deleted`, the sealed credentials and the sync cursor are erased, and the pass number moves
    /// on, so a pass still running fails at its next page instead of writing. Whether a connection
    /// that was not yet deleted was.
    async fn delete_connection(
        &self,
        creditor: &CreditorId,
        id: &ConnectionId,
    ) -> Result<bool, StoreError>;

    /// A creditor's invoices matching `filter`, by id.
    async fn list_invoices(
        &self,
        creditor: &CreditorId,
        filter: &InvoiceFilter,
        limit: u32,
    ) -> Result<Vec<Invoice>, StoreError>;
    /// A creditor's decision log, oldest first, after `after_seq`.
    async fn creditor_decisions(
        &self,
        creditor: &CreditorId,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<Decision>, StoreError>;
    /// Jobs of the creditors `owner` reaches, newest change first, optionally in one state.
    async fn jobs_of(
        &self,
        owner: &Owner,
        state: Option<JobState>,
        limit: u32,
    ) -> Result<Vec<Job>, StoreError>;
    /// Unacknowledged pipeline messages of the creditors `owner` reaches, after `after_seq`.
    async fn unacknowledged_messages_of(
        &self,
        owner: &Owner,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<PipelineMessage>, StoreError>;
    /// The creditor of a pipeline message, if `owner` reaches it.
    async fn message_creditor(
        &self,
        owner: &Owner,
        id: &str,
    ) -> Result<Option<CreditorId>, StoreError>;
}

/// `column` belongs to a creditor `owner` reaches; the owner's id is bound at `param`.
pub(super) fn reachable(owner: &Owner, column: &str, param: &str) -> (String, String) {
    match owner {
        Owner::Partner(id) => (
            format!("{column} IN (SELECT id FROM creditors WHERE partner_id = {param})"),
            id.to_string(),
        ),
        Owner::Creditor(id) => (format!("{column} = {param}"), id.to_string()),
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct ApiKeyRow {
    id: String,
    partner_id: Option<String>,
    creditor_id: Option<String>,
    scopes: String,
    label: Option<String>,
    created_at: i64,
    revoked_at: Option<i64>,
}

pub(super) const API_KEY_COLUMNS: &str =
    "id, partner_id, creditor_id, scopes, label, created_at, revoked_at";

impl TryFrom<ApiKeyRow> for ApiKey {
    type Error = StoreError;
    fn try_from(r: ApiKeyRow) -> Result<ApiKey, StoreError> {
        let owner = match (r.partner_id, r.creditor_id) {
            (Some(partner), None) => Owner::Partner(PartnerId(partner)),
            (None, Some(creditor)) => Owner::Creditor(CreditorId(creditor)),
            _ => {
                return Err(StoreError::Invalid(format!(
                    "API key {} has no single owner",
                    r.id
                )));
            }
        };
        Ok(ApiKey {
            id: ApiKeyId(r.id),
            owner,
            scopes: Scopes::parse(&r.scopes).map_err(StoreError::Invalid)?,
            label: r.label,
            created_at: instant(r.created_at)?,
            revoked_at: r.revoked_at.map(instant).transpose()?,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct PartnerRow {
    id: String,
    name: String,
    created_at: i64,
}

impl TryFrom<PartnerRow> for Partner {
    type Error = StoreError;
    fn try_from(r: PartnerRow) -> Result<Partner, StoreError> {
        Ok(Partner {
            id: PartnerId(r.id),
            name: r.name,
            created_at: instant(r.created_at)?,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct IdempotencyRow {
    request_hash: String,
    status: Option<i64>,
    content_type: Option<String>,
    location: Option<String>,
    body: Option<String>,
}

impl From<IdempotencyRow> for Idempotency {
    fn from(r: IdempotencyRow) -> Idempotency {
        match r.status.and_then(|s| u16::try_from(s).ok()) {
            Some(status) => Idempotency::Answered {
                request_hash: r.request_hash,
                status,
                content_type: r.content_type.unwrap_or_default(),
                location: r.location,
                body: r.body.unwrap_or_default(),
            },
            None => Idempotency::InProgress {
                request_hash: r.request_hash,
            },
        }
    }
}

macro_rules! impl_api_store {
    ($store:ty) => {
        const _: () = {
            use chrono::{DateTime, Utc};
            use sqlx::types::Json;

            use $crate::domain::{
                ApiKey, ApiKeyId, Connection, ConnectionId, ConnectionStatus, Creditor,
                CreditorId, Decision, Invoice, Job, JobState, Owner, Partner, PartnerId,
                PipelineMessage, Scopes,
            };
            use $crate::store::api::{
                API_KEY_COLUMNS, ApiKeyRow, ApiStore, Idempotency, IdempotencyRow, InvoiceFilter,
                KEPT_FOR_MS, KeptAnswer, PartnerRow, STALE_IN_PROGRESS_MS, reachable,
            };
            use $crate::store::rows::{
                self, CONNECTION_COLUMNS, CREDITOR_COLUMNS, ConnectionRow, CreditorRow, DecisionRow, INVOICE_COLUMNS, InvoiceRow,
                JOB_COLUMNS, JobRow, MESSAGE_COLUMNS, MessageRow,
            };
            use $crate::store::{StoreError, millis};

            #[async_trait::async_trait]
            impl ApiStore for $store {
                async fn create_partner(
                    &self,
                    name: &str,
                    now: DateTime<Utc>,
                ) -> Result<Partner, StoreError> {
                    let partner = Partner {
                        id: PartnerId::generate(),
                        name: name.to_owned(),
                        created_at: now,
                    };
                    sqlx::query("INSERT INTO partners (id, name, created_at) VALUES ($1, $2, $3)")
                        .bind(partner.id.as_str())
                        .bind(&partner.name)
                        .bind(millis(now))
                        .execute(&self.pool)
                        .await?;
                    Ok(partner)
                }

                async fn partner(&self, id: &PartnerId) -> Result<Option<Partner>, StoreError> {
                    let row: Option<PartnerRow> =
                        sqlx::query_as("SELECT id, name, created_at FROM partners WHERE id = $1")
                            .bind(id.as_str())
                            .fetch_optional(&self.pool)
                            .await?;
                    row.map(Partner::try_from).transpose()
                }

                async fn create_api_key(
                    &self,
                    owner: &Owner,
                    scopes: Scopes,
                    label: Option<&str>,
                    hash: &str,
                    now: DateTime<Utc>,
                ) -> Result<ApiKey, StoreError> {
                    let exists: Option<String> = match owner {
                        Owner::Partner(id) => {
                            sqlx::query_scalar("SELECT id FROM partners WHERE id = $1")
                                .bind(id.as_str())
                                .fetch_optional(&self.pool)
                                .await?
                        }
                        Owner::Creditor(id) => {
                            sqlx::query_scalar("SELECT id FROM creditors WHERE id = $1")
                                .bind(id.as_str())
                                .fetch_optional(&self.pool)
                                .await?
                        }
                    };
                    if exists.is_none() {
                        return Err(StoreError::Invalid(format!("there is no {owner}")));
                    }
                    let key = ApiKey {
                        id: ApiKeyId::generate(),
                        owner: owner.clone(),
                        scopes,
                        label: label.map(str::to_owned),
                        created_at: now,
                        revoked_at: None,
                    };
                    sqlx::query(
                        "INSERT INTO api_keys (id, hash, partner_id, creditor_id, scopes, label, \
                         created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    )
                    .bind(key.id.as_str())
                    .bind(hash)
                    .bind(owner.partner().map(PartnerId::as_str))
                    .bind(owner.creditor().map(CreditorId::as_str))
                    .bind(scopes.as_text())
                    .bind(label)
                    .bind(millis(now))
                    .execute(&self.pool)
                    .await?;
                    Ok(key)
                }

                async fn api_key_by_hash(&self, hash: &str) -> Result<Option<ApiKey>, StoreError> {
                    let row: Option<ApiKeyRow> = sqlx::query_as(&format!(
                        "SELECT {API_KEY_COLUMNS} FROM api_keys WHERE hash = $1"
                    ))
                    .bind(hash)
                    .fetch_optional(&self.pool)
                    .await?;
                    row.map(ApiKey::try_from).transpose()
                }

                async fn api_keys(&self) -> Result<Vec<ApiKey>, StoreError> {
                    let rows: Vec<ApiKeyRow> = sqlx::query_as(&format!(
                        "SELECT {API_KEY_COLUMNS} FROM api_keys ORDER BY id"
                    ))
                    .fetch_all(&self.pool)
                    .await?;
                    rows.into_iter().map(ApiKey::try_from).collect()
                }

                async fn revoke_api_key(
                    &self,
                    id: &ApiKeyId,
                    now: DateTime<Utc>,
                ) -> Result<bool, StoreError> {
                    let done = sqlx::query(
                        "UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
                    )
                    .bind(id.as_str())
                    .bind(millis(now))
                    .execute(&self.pool)
                    .await?;
                    Ok(done.rows_affected() == 1)
                }

                async fn creditors_of(
                    &self,
                    owner: &Owner,
                    after: Option<&CreditorId>,
                    limit: u32,
                ) -> Result<Vec<Creditor>, StoreError> {
                    let (reach, owner_id) = reachable(owner, "id", "$1");
                    let rows: Vec<CreditorRow> = sqlx::query_as(&format!(
                        "SELECT {CREDITOR_COLUMNS} FROM creditors WHERE {reach} \
                         AND ($2 IS NULL OR id > $2) ORDER BY id LIMIT $3"
                    ))
                    .bind(owner_id)
                    .bind(after.map(CreditorId::as_str))
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await?;
                    rows.into_iter().map(Creditor::try_from).collect()
                }

                async fn update_creditor(&self, creditor: &Creditor) -> Result<bool, StoreError> {
                    let done = sqlx::query(
                        "UPDATE creditors SET name = $2, country = $3, time_zone = $4, \
                         language = $5, policy = $6, email = $7 WHERE id = $1",
                    )
                    .bind(creditor.id.as_str())
                    .bind(&creditor.name)
                    .bind(creditor.country.code())
                    .bind(creditor.time_zone.name())
                    .bind(creditor.language.as_str())
                    .bind(Json(&creditor.policy))
                    .bind(creditor.email.as_deref())
                    .execute(&self.pool)
                    .await?;
                    Ok(done.rows_affected() == 1)
                }

                async fn begin_idempotent(
                    &self,
                    api_key: &ApiKeyId,
                    key: &str,
                    request_hash: &str,
                    now: DateTime<Utc>,
                ) -> Result<Idempotency, StoreError> {
                    // Answers older than a day are forgotten (the key's own rows only: cheap,
                    // through the primary key).
                    sqlx::query(
                        "DELETE FROM idempotency_keys WHERE api_key_id = $1 \
                         AND created_at < $2 AND status IS NOT NULL",
                    )
                    .bind(api_key.as_str())
                    .bind(millis(now) - KEPT_FOR_MS)
                    .execute(&self.pool)
                    .await?;
                    let inserted = sqlx::query(
                        "INSERT INTO idempotency_keys (api_key_id, key, request_hash, created_at) \
                         VALUES ($1, $2, $3, $4) ON CONFLICT (api_key_id, key) DO NOTHING",
                    )
                    .bind(api_key.as_str())
                    .bind(key)
                    .bind(request_hash)
                    .bind(millis(now))
                    .execute(&self.pool)
                    .await?;
                    if inserted.rows_affected() == 1 {
                        return Ok(Idempotency::Started);
                    }
                    // A first request that never finished (its instance died) is taken over
                    // after a minute by the same request, so the key is not stuck; another
                    // request with the key is refused as ever.
                    let taken = sqlx::query(
                        "UPDATE idempotency_keys SET request_hash = $3, created_at = $4 \
                         WHERE api_key_id = $1 AND key = $2 AND status IS NULL AND created_at < $5 \
                         AND request_hash = $3",
                    )
                    .bind(api_key.as_str())
                    .bind(key)
                    .bind(request_hash)
                    .bind(millis(now))
                    .bind(millis(now) - STALE_IN_PROGRESS_MS)
                    .execute(&self.pool)
                    .await?;
                    if taken.rows_affected() == 1 {
                        return Ok(Idempotency::Started);
                    }
                    let row: Option<IdempotencyRow> = sqlx::query_as(
                        "SELECT request_hash, status, content_type, location, body FROM idempotency_keys \
                         WHERE api_key_id = $1 AND key = $2",
                    )
                    .bind(api_key.as_str())
                    .bind(key)
                    .fetch_optional(&self.pool)
                    .await?;
                    Ok(row.map(Idempotency::from).unwrap_or(Idempotency::InProgress {
                        request_hash: request_hash.to_owned(),
                    }))
                }

                async fn finish_idempotent(
                    &self,
                    api_key: &ApiKeyId,
                    key: &str,
                    claimed_at: DateTime<Utc>,
                    answer: &KeptAnswer<'_>,
                ) -> Result<(), StoreError> {
                    sqlx::query(
                        "UPDATE idempotency_keys SET status = $3, content_type = $4, body = $5, \
                         location = $7 \
                         WHERE api_key_id = $1 AND key = $2 AND created_at = $6 \
                         AND status IS NULL",
                    )
                    .bind(api_key.as_str())
                    .bind(key)
                    .bind(i64::from(answer.status))
                    .bind(answer.content_type)
                    .bind(answer.body)
                    .bind(millis(claimed_at))
                    .bind(answer.location)
                    .execute(&self.pool)
                    .await?;
                    Ok(())
                }

                async fn forget_idempotent(
                    &self,
                    api_key: &ApiKeyId,
                    key: &str,
                    claimed_at: DateTime<Utc>,
                ) -> Result<(), StoreError> {
                    sqlx::query(
                        "DELETE FROM idempotency_keys WHERE api_key_id = $1 AND key = $2 \
                         AND created_at = $3 AND status IS NULL",
                    )
                    .bind(api_key.as_str())
                    .bind(key)
                    .bind(millis(claimed_at))
                    .execute(&self.pool)
                        .await?;
                    Ok(())
                }

                async fn connections_of(
                    &self,
                    creditor: &CreditorId,
                    after: Option<&ConnectionId>,
                    limit: u32,
                ) -> Result<Vec<Connection>, StoreError> {
                    let rows: Vec<ConnectionRow> = sqlx::query_as(&format!(
                        "SELECT {CONNECTION_COLUMNS} FROM connections WHERE creditor_id = $1 \
                         AND status <> $2 AND ($3 IS NULL OR id > $3) ORDER BY id LIMIT $4"
                    ))
                    .bind(creditor.as_str())
                    .bind(ConnectionStatus::Deleted.as_str())
                    .bind(after.map(ConnectionId::as_str))
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await?;
                    rows::collect(rows)
                }

                async fn delete_connection(
                    &self,
                    creditor: &CreditorId,
                    id: &ConnectionId,
                ) -> Result<bool, StoreError> {
                    let done = sqlx::query(
                        "UPDATE connections SET status = $3, credentials = $4, \
                         sync_cursor = NULL, sync_in_pass = $5, sync_pass = sync_pass + 1 \
                         WHERE creditor_id = $1 AND id = $2 AND status <> $3",
                    )
                    .bind(creditor.as_str())
                    .bind(id.as_str())
                    .bind(ConnectionStatus::Deleted.as_str())
                    .bind(Vec::<u8>::new())
                    .bind(false)
                    .execute(&self.pool)
                    .await?;
                    Ok(done.rows_affected() == 1)
                }

                async fn list_invoices(
                    &self,
                    creditor: &CreditorId,
                    filter: &InvoiceFilter,
                    limit: u32,
                ) -> Result<Vec<Invoice>, StoreError> {
                    let rows: Vec<InvoiceRow> = sqlx::query_as(&format!(
                        "SELECT {INVOICE_COLUMNS} FROM invoices WHERE creditor_id = $1 \
                         AND ($2 IS NULL OR stage = $2) \
                         AND ($3 IS NULL OR customer_id = $3) \
                         AND ($4 IS NULL OR due <= $4) \
                         AND ($5 IS NULL OR due >= $5) \
                         AND ($6 IS NULL OR (opt_out OR EXISTS (SELECT 1 FROM customers c \
                         WHERE c.id = invoices.customer_id AND c.opt_out)) = $6) \
                         AND ($7 IS NULL OR (dispute_opened_on IS NOT NULL) = $7) \
                         AND ($8 IS NULL OR id > $8) \
                         ORDER BY id LIMIT $9"
                    ))
                    .bind(creditor.as_str())
                    .bind(filter.stage.map(|s| s.as_str()))
                    .bind(filter.customer.as_ref().map(|c| c.as_str()))
                    .bind(filter.due_before)
                    .bind(filter.due_after)
                    .bind(filter.opted_out)
                    .bind(filter.disputed)
                    .bind(filter.after.as_ref().map(|i| i.as_str()))
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await?;
                    rows::collect(rows)
                }

                async fn creditor_decisions(
                    &self,
                    creditor: &CreditorId,
                    after_seq: i64,
                    limit: u32,
                ) -> Result<Vec<Decision>, StoreError> {
                    let rows: Vec<DecisionRow> = sqlx::query_as(
                        "SELECT seq, invoice_id, on_day, at, rule, inputs, outcome FROM decisions \
                         WHERE creditor_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
                    )
                    .bind(creditor.as_str())
                    .bind(after_seq)
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await?;
                    rows.into_iter().map(Decision::try_from).collect()
                }

                async fn jobs_of(
                    &self,
                    owner: &Owner,
                    state: Option<JobState>,
                    limit: u32,
                ) -> Result<Vec<Job>, StoreError> {
                    let (reach, owner_id) = reachable(owner, "creditor_id", "$1");
                    let rows: Vec<JobRow> = sqlx::query_as(&format!(
                        "SELECT {JOB_COLUMNS} FROM jobs WHERE {reach} \
                         AND ($2 IS NULL OR state = $2) ORDER BY updated_at DESC, id LIMIT $3"
                    ))
                    .bind(owner_id)
                    .bind(state.map(JobState::as_str))
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await?;
                    rows::collect(rows)
                }

                async fn unacknowledged_messages_of(
                    &self,
                    owner: &Owner,
                    after_seq: i64,
                    limit: u32,
                ) -> Result<Vec<PipelineMessage>, StoreError> {
                    let (reach, owner_id) = reachable(owner, "creditor_id", "$1");
                    let rows: Vec<MessageRow> = sqlx::query_as(&format!(
                        "SELECT {MESSAGE_COLUMNS} FROM pipeline_messages \
                         WHERE acknowledged_at IS NULL AND seq > $2 AND {reach} \
                         ORDER BY seq LIMIT $3"
                    ))
                    .bind(owner_id)
                    .bind(after_seq)
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await?;
                    rows::collect(rows)
                }

                async fn message_creditor(
                    &self,
                    owner: &Owner,
                    id: &str,
                ) -> Result<Option<CreditorId>, StoreError> {
                    let (reach, owner_id) = reachable(owner, "creditor_id", "$1");
                    let found: Option<String> = sqlx::query_scalar(&format!(
                        "SELECT creditor_id FROM pipeline_messages WHERE id = $2 AND {reach}"
                    ))
                    .bind(owner_id)
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?;
                    Ok(found.map(CreditorId))
                }
            }
        };
    };
}

pub(super) use impl_api_store;
