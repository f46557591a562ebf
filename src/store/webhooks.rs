//! What outbound webhooks need from the store: partners' (and creditors') endpoints, scoped to
//! their owner, and the events about a creditor's invoices, written once per decision and listed
//! to whoever reaches the creditor.
//!
//! An endpoint is its owner's alone: every query of endpoints takes the [`Owner`] and filters on
//! it in SQL (a partner's endpoints are not a creditor's, even one the partner serves). Events
//! are the creditor's: listed through [`reachable`](super::api::reachable), like the rest of the
//! API.

use chrono::{DateTime, Utc};

use super::StoreError;
use super::rows::instant;
use crate::domain::{
    CreditorId, EndpointId, EventId, EventTypes, Owner, PartnerId, WebhookEndpoint, WebhookEvent,
};

/// Filters of `GET /v1/events`; `None` is "any".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    pub creditor: Option<CreditorId>,
    pub event_type: Option<String>,
    /// Only events whose id sorts after this one (the cursor).
    pub after: Option<EventId>,
}

#[async_trait::async_trait]
pub trait WebhookStore: Send + Sync {
    /// Stores a new endpoint. `StoreError::Invalid` when its owner does not exist.
    async fn create_webhook_endpoint(&self, endpoint: &WebhookEndpoint) -> Result<(), StoreError>;
    /// `owner`'s live endpoint `id`; `None` for another owner's, a deleted or an unknown one.
    async fn webhook_endpoint_of(
        &self,
        owner: &Owner,
        id: &EndpointId,
    ) -> Result<Option<WebhookEndpoint>, StoreError>;
    /// `owner`'s live endpoints, by id, after the cursor.
    async fn webhook_endpoints_of(
        &self,
        owner: &Owner,
        after: Option<&EndpointId>,
        limit: u32,
    ) -> Result<Vec<WebhookEndpoint>, StoreError>;
    /// Deletes `owner`'s endpoint: it receives nothing more. `false` when there was no such live
    /// endpoint of `owner`.
    async fn delete_webhook_endpoint(
        &self,
        owner: &Owner,
        id: &EndpointId,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// An endpoint by id alone, deleted or not: for the deliveries that name it.
    async fn webhook_endpoint(
        &self,
        id: &EndpointId,
    ) -> Result<Option<WebhookEndpoint>, StoreError>;
    /// The live endpoints that hear of `creditor`'s events: its own and its partner's.
    async fn webhook_endpoints_for(
        &self,
        creditor: &CreditorId,
    ) -> Result<Vec<WebhookEndpoint>, StoreError>;

    /// Writes `event` under `key` unless an event with that key exists; either way the stored
    /// event (so a job that runs twice writes one event, with its first id).
    async fn record_event(
        &self,
        key: &str,
        event: &WebhookEvent,
    ) -> Result<WebhookEvent, StoreError>;
    /// An event by id alone (for its deliveries).
    async fn event(&self, id: &EventId) -> Result<Option<WebhookEvent>, StoreError>;
    /// The event `id`, if `owner` reaches its creditor.
    async fn event_of(
        &self,
        owner: &Owner,
        id: &EventId,
    ) -> Result<Option<WebhookEvent>, StoreError>;
    /// Events of the creditors `owner` reaches, matching `filter`, by id (oldest first).
    async fn events_of(
        &self,
        owner: &Owner,
        filter: &EventFilter,
        limit: u32,
    ) -> Result<Vec<WebhookEvent>, StoreError>;
}

/// The endpoint column naming `owner` and the id to bind to it.
pub(super) fn owned_by(owner: &Owner) -> (&'static str, &str) {
    match owner {
        Owner::Partner(id) => ("partner_id", id.as_str()),
        Owner::Creditor(id) => ("creditor_id", id.as_str()),
    }
}

pub(super) const ENDPOINT_COLUMNS: &str =
    "id, partner_id, creditor_id, url, event_types, secret, description, created_at, deleted_at";

pub(super) const EVENT_COLUMNS: &str = "id, creditor_id, type, data, created_at";

#[derive(sqlx::FromRow)]
pub(super) struct EndpointRow {
    id: String,
    partner_id: Option<String>,
    creditor_id: Option<String>,
    url: String,
    event_types: String,
    secret: Vec<u8>,
    description: Option<String>,
    created_at: i64,
    deleted_at: Option<i64>,
}

impl TryFrom<EndpointRow> for WebhookEndpoint {
    type Error = StoreError;
    fn try_from(r: EndpointRow) -> Result<WebhookEndpoint, StoreError> {
        let owner = match (r.partner_id, r.creditor_id) {
            (Some(partner), None) => Owner::Partner(PartnerId(partner)),
            (None, Some(creditor)) => Owner::Creditor(CreditorId(creditor)),
            _ => {
                return Err(StoreError::Invalid(format!(
                    "webhook endpoint {} has no single owner",
                    r.id
                )));
            }
        };
        let types: Vec<String> = serde_json::from_str(&r.event_types).map_err(|e| {
            StoreError::Invalid(format!("webhook endpoint {}: event types: {e}", r.id))
        })?;
        Ok(WebhookEndpoint {
            id: EndpointId(r.id),
            owner,
            url: r.url,
            event_types: EventTypes::from_list(types),
            description: r.description,
            sealed_secret: r.secret,
            created_at: instant(r.created_at)?,
            deleted_at: r.deleted_at.map(instant).transpose()?,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct EventRow {
    id: String,
    creditor_id: String,
    #[sqlx(rename = "type")]
    event_type: String,
    data: sqlx::types::Json<serde_json::Value>,
    created_at: i64,
}

impl TryFrom<EventRow> for WebhookEvent {
    type Error = StoreError;
    fn try_from(r: EventRow) -> Result<WebhookEvent, StoreError> {
        Ok(WebhookEvent {
            id: EventId(r.id),
            creditor_id: CreditorId(r.creditor_id),
            event_type: r.event_type,
            data: r.data.0,
            created_at: instant(r.created_at)?,
        })
    }
}

macro_rules! impl_webhook_store {
    ($store:ty) => {
        const _: () = {
            use chrono::{DateTime, Utc};
            use sqlx::types::Json;

            use $crate::domain::{
                CreditorId, EndpointId, EventId, Owner, PartnerId, WebhookEndpoint, WebhookEvent,
            };
            use $crate::store::api::reachable;
            use $crate::store::webhooks::{
                ENDPOINT_COLUMNS, EVENT_COLUMNS, EndpointRow, EventFilter, EventRow, WebhookStore,
                owned_by,
            };
            use $crate::store::{StoreError, millis};

            #[async_trait::async_trait]
            impl WebhookStore for $store {
                async fn create_webhook_endpoint(
                    &self,
                    endpoint: &WebhookEndpoint,
                ) -> Result<(), StoreError> {
                    let (table, owner_id) = match &endpoint.owner {
                        Owner::Partner(id) => ("partners", id.as_str()),
                        Owner::Creditor(id) => ("creditors", id.as_str()),
                    };
                    let exists: Option<i64> = sqlx::query_scalar(&format!(
                        "SELECT CAST(1 AS BIGINT) FROM {table} WHERE id = $1"
                    ))
                    .bind(owner_id)
                    .fetch_optional(&self.pool)
                    .await?;
                    if exists.is_none() {
                        return Err(StoreError::Invalid(format!(
                            "there is no {}",
                            endpoint.owner
                        )));
                    }
                    let types = serde_json::to_string(&endpoint.event_types.to_list())
                        .map_err(|e| StoreError::Invalid(e.to_string()))?;
                    sqlx::query(
                        "INSERT INTO webhook_endpoints (id, partner_id, creditor_id, url, \
                         event_types, secret, description, created_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                    )
                    .bind(endpoint.id.as_str())
                    .bind(endpoint.owner.partner().map(PartnerId::as_str))
                    .bind(endpoint.owner.creditor().map(CreditorId::as_str))
                    .bind(&endpoint.url)
                    .bind(types)
                    .bind(&endpoint.sealed_secret)
                    .bind(endpoint.description.as_deref())
                    .bind(millis(endpoint.created_at))
                    .execute(&self.pool)
                    .await?;
                    Ok(())
                }

                async fn webhook_endpoint_of(
                    &self,
                    owner: &Owner,
                    id: &EndpointId,
                ) -> Result<Option<WebhookEndpoint>, StoreError> {
                    let (column, owner_id) = owned_by(owner);
                    let row: Option<EndpointRow> = sqlx::query_as(&format!(
                        "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints \
                         WHERE id = $1 AND {column} = $2 AND deleted_at IS NULL"
                    ))
                    .bind(id.as_str())
                    .bind(owner_id)
                    .fetch_optional(&self.pool)
                    .await?;
                    row.map(WebhookEndpoint::try_from).transpose()
                }

                async fn webhook_endpoints_of(
                    &self,
                    owner: &Owner,
                    after: Option<&EndpointId>,
                    limit: u32,
                ) -> Result<Vec<WebhookEndpoint>, StoreError> {
                    let (column, owner_id) = owned_by(owner);
                    let rows: Vec<EndpointRow> = sqlx::query_as(&format!(
                        "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints \
                         WHERE {column} = $1 AND deleted_at IS NULL \
                         AND ($2 IS NULL OR id > $2) ORDER BY id LIMIT $3"
                    ))
                    .bind(owner_id)
                    .bind(after.map(EndpointId::as_str))
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await?;
                    rows.into_iter().map(WebhookEndpoint::try_from).collect()
                }

                async fn delete_webhook_endpoint(
                    &self,
                    owner: &Owner,
                    id: &EndpointId,
                    now: DateTime<Utc>,
                ) -> Result<bool, StoreError> {
                    let (column, owner_id) = owned_by(owner);
                    let done = sqlx::query(&format!(
                        "UPDATE webhook_endpoints SET deleted_at = $3 \
                         WHERE id = $1 AND {column} = $2 AND deleted_at IS NULL"
                    ))
                    .bind(id.as_str())
                    .bind(owner_id)
                    .bind(millis(now))
                    .execute(&self.pool)
                    .await?;
                    Ok(done.rows_affected() == 1)
                }

                async fn webhook_endpoint(
                    &self,
                    id: &EndpointId,
                ) -> Result<Option<WebhookEndpoint>, StoreError> {
                    let row: Option<EndpointRow> = sqlx::query_as(&format!(
                        "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id = $1"
                    ))
                    .bind(id.as_str())
                    .fetch_optional(&self.pool)
                    .await?;
                    row.map(WebhookEndpoint::try_from).transpose()
                }

                async fn webhook_endpoints_for(
                    &self,
                    creditor: &CreditorId,
                ) -> Result<Vec<WebhookEndpoint>, StoreError> {
                    let rows: Vec<EndpointRow> = sqlx::query_as(&format!(
                        "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints \
                         WHERE deleted_at IS NULL AND (creditor_id = $1 OR partner_id = \
                         (SELECT partner_id FROM creditors WHERE id = $1)) ORDER BY id"
                    ))
                    .bind(creditor.as_str())
                    .fetch_all(&self.pool)
                    .await?;
                    rows.into_iter().map(WebhookEndpoint::try_from).collect()
                }

                async fn record_event(
                    &self,
                    key: &str,
                    event: &WebhookEvent,
                ) -> Result<WebhookEvent, StoreError> {
                    sqlx::query(
                        "INSERT INTO events (id, key, creditor_id, type, data, created_at) \
                         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (key) DO NOTHING",
                    )
                    .bind(event.id.as_str())
                    .bind(key)
                    .bind(event.creditor_id.as_str())
                    .bind(&event.event_type)
                    .bind(Json(&event.data))
                    .bind(millis(event.created_at))
                    .execute(&self.pool)
                    .await?;
                    let row: EventRow = sqlx::query_as(&format!(
                        "SELECT {EVENT_COLUMNS} FROM events WHERE key = $1"
                    ))
                    .bind(key)
                    .fetch_one(&self.pool)
                    .await?;
                    WebhookEvent::try_from(row)
                }

                async fn event(&self, id: &EventId) -> Result<Option<WebhookEvent>, StoreError> {
                    let row: Option<EventRow> = sqlx::query_as(&format!(
                        "SELECT {EVENT_COLUMNS} FROM events WHERE id = $1"
                    ))
                    .bind(id.as_str())
                    .fetch_optional(&self.pool)
                    .await?;
                    row.map(WebhookEvent::try_from).transpose()
                }

                async fn event_of(
                    &self,
                    owner: &Owner,
                    id: &EventId,
                ) -> Result<Option<WebhookEvent>, StoreError> {
                    let (reach, owner_id) = reachable(owner, "creditor_id", "$1");
                    let row: Option<EventRow> = sqlx::query_as(&format!(
                        "SELECT {EVENT_COLUMNS} FROM events WHERE id = $2 AND {reach}"
                    ))
                    .bind(owner_id)
                    .bind(id.as_str())
                    .fetch_optional(&self.pool)
                    .await?;
                    row.map(WebhookEvent::try_from).transpose()
                }

                async fn events_of(
                    &self,
                    owner: &Owner,
                    filter: &EventFilter,
                    limit: u32,
                ) -> Result<Vec<WebhookEvent>, StoreError> {
                    let (reach, owner_id) = reachable(owner, "creditor_id", "$1");
                    let rows: Vec<EventRow> = sqlx::query_as(&format!(
                        "SELECT {EVENT_COLUMNS} FROM events WHERE {reach} \
                         AND ($2 IS NULL OR creditor_id = $2) \
                         AND ($3 IS NULL OR type = $3) \
                         AND ($4 IS NULL OR id > $4) \
                         ORDER BY id LIMIT $5"
                    ))
                    .bind(owner_id)
                    .bind(filter.creditor.as_ref().map(CreditorId::as_str))
                    .bind(filter.event_type.as_deref())
                    .bind(filter.after.as_ref().map(EventId::as_str))
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await?;
                    rows.into_iter().map(WebhookEvent::try_from).collect()
                }
            }
        };
    };
}

pub(super) use impl_webhook_store;
