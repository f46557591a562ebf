//! Outbound webhooks: events about creditors' invoices, sent to the endpoints partners (and
//! creditors) registered, signed the Standard Webhooks way.
//!
//! Two kinds of job carry them, both in the outbox:
//!
//! - an `event` job ([`EVENT_JOB`]) is written with the engine decision that causes it (see
//!   [`crate::jobs::effects`]) or with the write-back of a collected payment. Its handler,
//!   [`Events`], writes the event once (the job's idempotency key is the event's key, so a job run
//!   twice writes one event with one id) and enqueues one delivery per live endpoint that hears
//!   of the creditor (its own, and its partner's) and subscribes to the type, keyed
//!   `deliver:{event}:{endpoint}`;
//! - a delivery job ([`DELIVERY_JOB`]) is one signed `POST` of `{type, id, created_at, data}`
//!   with `webhook-id` = the event id (the same on every retry and every replay, so a receiver
//!   deduplicates on it) and `webhook-timestamp` = the real wall clock. [`Deliveries`] runs them:
//!   a 2xx is done; 408, 425, 429, 5xx and transport errors are retried by the job runner with
//!   backoff and jitter, never before the receiver's `Retry-After`; any other answer (other 4xx,
//!   a redirect, which is not followed) is a dead letter at once, visible and retryable.
//!
//! A replay ([`replay_job`]) is a delivery with a key of its own, so it runs even when the first
//! delivery succeeded. A delivery to an endpoint deleted since it was enqueued is dropped.
//!
//! Nothing here logs a secret, a URL (it may carry a token) or a body: tracing names the event,
//! the endpoint, the status and the time taken.

use std::sync::Arc;
use std::time::{Duration, Instant};

use forfall_connector::standard_webhooks::{self, Secret};
use http::{HeaderValue, StatusCode, header};
use serde_json::{Value, json};

use crate::clock::Clock;
use crate::domain::{
    ConnectionId, CreditorId, EndpointId, EventId, Job, NewJob, WebhookEndpoint, WebhookEvent,
};
use crate::jobs::{Done, Handler, JobError, payload_text};
use crate::secrets::EncryptionKey;
use crate::store::Store;

pub use crate::jobs::effects::{DELIVERY_JOB, EVENT_JOB};

/// How long one delivery may take, from connecting to the end of the answer.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(15);

/// The most of an answer's body a delivery's error quotes, in characters.
const MAX_DETAIL_CHARS: usize = 200;

/// The delivery of `event` to `endpoint`, once.
pub fn delivery_job(
    creditor: &CreditorId,
    event: &EventId,
    endpoint: &EndpointId,
    now: chrono::DateTime<chrono::Utc>,
) -> (CreditorId, NewJob) {
    (
        creditor.clone(),
        NewJob::new(
            DELIVERY_JOB,
            format!("deliver:{event}:{endpoint}"),
            json!({ "event": event.as_str(), "endpoint": endpoint.as_str() }),
            now,
        ),
    )
}

/// A replay of `event` to `endpoint`: a delivery of its own, whatever became of the others.
pub fn replay_job(
    creditor: &CreditorId,
    event: &EventId,
    endpoint: &EndpointId,
    now: chrono::DateTime<chrono::Utc>,
) -> (CreditorId, NewJob) {
    let (creditor, mut job) = delivery_job(creditor, event, endpoint, now);
    job.idempotency_key = format!(
        "replay:{event}:{endpoint}:{}",
        uuid::Uuid::now_v7().simple()
    );
    job.payload["replay"] = json!(true);
    (creditor, job)
}

/// The endpoints among `endpoints` that take events of `event_type`.
pub fn subscribed<'a>(
    endpoints: &'a [WebhookEndpoint],
    event_type: &'a str,
) -> impl Iterator<Item = &'a WebhookEndpoint> {
    endpoints
        .iter()
        .filter(move |e| e.deleted_at.is_none() && e.event_types.matches(event_type))
}

/// Runs the `event` jobs: writes each event once and fans it out to its endpoints.
pub struct Events {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
}

impl Events {
    /// The event's data: the invoice's ids (Forfall's and the platform's), its number, and the
    /// fields of what happened. Nothing about the customer.
    async fn data(&self, job: &Job) -> Result<Value, JobError> {
        let payload = &job.payload;
        let connection = ConnectionId::from(payload_text(payload, "connection")?);
        let platform_id = payload_text(payload, "invoice")?;
        let invoice = self
            .store
            .invoice_by_platform_id(&job.creditor_id, &connection, platform_id)
            .await?
            .ok_or_else(|| {
                JobError::Permanent(format!(
                    "the invoice {platform_id} of connection {connection} is not stored"
                ))
            })?;
        let mut data = serde_json::Map::new();
        data.insert("creditor_id".into(), json!(job.creditor_id));
        data.insert("invoice_id".into(), json!(invoice.id));
        data.insert("invoice_number".into(), json!(invoice.facts.number));
        data.insert("connection_id".into(), json!(connection));
        data.insert("platform_invoice_id".into(), json!(platform_id));
        if let Some(Value::Object(fields)) = payload.get("fields") {
            for (name, value) in fields {
                data.entry(name.clone()).or_insert_with(|| value.clone());
            }
        }
        Ok(Value::Object(data))
    }
}

#[async_trait::async_trait]
impl Handler for Events {
    fn kinds(&self) -> &'static [&'static str] {
        &[EVENT_JOB]
    }

    async fn run(&self, job: &Job, _owner: &str) -> Result<Done, JobError> {
        let event_type = payload_text(&job.payload, "event_type")?.to_owned();
        let data = self.data(job).await?;
        let event = self
            .store
            .record_event(
                &job.idempotency_key,
                &WebhookEvent {
                    id: EventId::generate(),
                    creditor_id: job.creditor_id.clone(),
                    event_type,
                    data,
                    created_at: job.created_at,
                },
            )
            .await?;
        let endpoints = self.store.webhook_endpoints_for(&job.creditor_id).await?;
        let now = self.clock.now();
        let deliveries: Vec<_> = subscribed(&endpoints, &event.event_type)
            .map(|endpoint| delivery_job(&event.creditor_id, &event.id, &endpoint.id, now))
            .collect();
        if !deliveries.is_empty() {
            self.store.enqueue_jobs(&deliveries, now).await?;
        }
        tracing::debug!(event = %event.id, kind = %event.event_type, endpoints = deliveries.len(), "event written");
        Ok(Done::Succeeded)
    }
}

/// Runs the delivery jobs: one signed POST each.
pub struct Deliveries {
    pub store: Arc<dyn Store>,
    /// Opens the endpoints' sealed secrets.
    pub key: EncryptionKey,
    pub http: reqwest::Client,
    pub in_flight: usize,
}

impl Deliveries {
    pub fn new(store: Arc<dyn Store>, key: EncryptionKey) -> Deliveries {
        let http = reqwest::Client::builder()
            .timeout(DELIVERY_TIMEOUT)
            .connect_timeout(DELIVERY_TIMEOUT)
            // A signed POST is never re-sent elsewhere behind the endpoint owner's back.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("forfall/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        Deliveries {
            store,
            key,
            http,
            in_flight: 16,
        }
    }

    /// The endpoint's secret, unsealed.
    fn secret(&self, endpoint: &WebhookEndpoint) -> Result<Secret, JobError> {
        let opened = self
            .key
            .open(&endpoint.sealed_secret, endpoint.id.as_str())
            .map_err(|e| JobError::Permanent(format!("endpoint {}: {e}", endpoint.id)))?;
        let text = String::from_utf8(opened).map_err(|_| {
            JobError::Permanent(format!("endpoint {}: the secret is not text", endpoint.id))
        })?;
        Secret::parse(&text)
            .map_err(|e| JobError::Permanent(format!("endpoint {}: {e}", endpoint.id)))
    }
}

#[async_trait::async_trait]
impl Handler for Deliveries {
    fn kinds(&self) -> &'static [&'static str] {
        &[DELIVERY_JOB]
    }

    fn in_flight(&self) -> usize {
        self.in_flight
    }

    async fn run(&self, job: &Job, _owner: &str) -> Result<Done, JobError> {
        let endpoint_id = EndpointId::from(payload_text(&job.payload, "endpoint")?);
        let event_id = EventId::from(payload_text(&job.payload, "event")?);
        let Some(endpoint) = self
            .store
            .webhook_endpoint(&endpoint_id)
            .await?
            .filter(|e| e.deleted_at.is_none())
        else {
            tracing::info!(event = %event_id, endpoint = %endpoint_id, "the endpoint was deleted; delivery dropped");
            return Ok(Done::Succeeded);
        };
        let event = self
            .store
            .event(&event_id)
            .await?
            .ok_or_else(|| JobError::Permanent(format!("there is no event {event_id}")))?;
        let secret = self.secret(&endpoint)?;
        let url = reqwest::Url::parse(&endpoint.url).map_err(|_| {
            JobError::Permanent(format!("endpoint {endpoint_id}: the URL is not valid"))
        })?;
        let body = serde_json::to_vec(&event.payload())
            .map_err(|e| JobError::Permanent(format!("event {event_id}: {e}")))?;
        let timestamp = chrono::Utc::now().timestamp();
        let mut request = self.http.post(url).header(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        for (name, value) in
            standard_webhooks::headers(&secret, event.id.as_str(), timestamp, &body)
        {
            request = request.header(name, value);
        }
        let started = Instant::now();
        let answer = match request.body(body).send().await {
            Ok(answer) => answer,
            Err(e) => {
                let detail = if e.is_timeout() {
                    "timed out".to_owned()
                } else if e.is_connect() {
                    "cannot connect".to_owned()
                } else {
                    "transport error".to_owned()
                };
                tracing::info!(event = %event_id, endpoint = %endpoint_id, error = %detail, "webhook delivery failed");
                return Err(JobError::transient(format!(
                    "endpoint {endpoint_id}: {detail}"
                )));
            }
        };
        let status = answer.status();
        let retry_after = forfall_connector::client::retry_after(answer.headers());
        let excerpt = answer.text().await.unwrap_or_default();
        tracing::debug!(
            event = %event_id,
            endpoint = %endpoint_id,
            status = status.as_u16(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "webhook delivery"
        );
        classify(status, retry_after, &excerpt)
            .map(|()| Done::Succeeded)
            .map_err(|e| match e {
                JobError::Transient {
                    detail,
                    retry_after,
                } => JobError::Transient {
                    detail: format!("endpoint {endpoint_id}: {detail}"),
                    retry_after,
                },
                JobError::Permanent(detail) => {
                    JobError::Permanent(format!("endpoint {endpoint_id}: {detail}"))
                }
            })
    }
}

/// What the endpoint's answer means: 2xx done; 408, 425, 429 and 5xx worth another attempt (not
/// before `Retry-After`); anything else refused for good.
pub fn classify(
    status: StatusCode,
    retry_after: Option<Duration>,
    body: &str,
) -> Result<(), JobError> {
    if status.is_success() {
        return Ok(());
    }
    let excerpt: String = body
        .chars()
        .take(MAX_DETAIL_CHARS)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let excerpt = excerpt.trim();
    let detail = if excerpt.is_empty() {
        format!("answered {status}")
    } else {
        format!("answered {status}: {excerpt}")
    };
    match status.as_u16() {
        408 | 425 | 429 | 500..=599 => Err(JobError::Transient {
            detail,
            retry_after,
        }),
        _ => Err(JobError::Permanent(detail)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_2xx_is_delivered_and_busy_answers_are_retried_after_their_retry_after() {
        assert_eq!(classify(StatusCode::NO_CONTENT, None, ""), Ok(()));
        for code in [408, 425, 429, 500, 502, 503, 504] {
            let status = StatusCode::from_u16(code).unwrap();
            let error = classify(status, Some(Duration::from_secs(30)), "busy").unwrap_err();
            assert_eq!(
                error,
                JobError::Transient {
                    detail: format!("answered {status}: busy"),
                    retry_after: Some(Duration::from_secs(30)),
                },
                "{code}"
            );
        }
    }

    #[test]
    fn other_4xx_and_redirects_are_dead_letters_at_once() {
        for code in [400, 401, 403, 404, 410, 422, 301, 308] {
            let status = StatusCode::from_u16(code).unwrap();
            assert!(
                matches!(classify(status, None, "no"), Err(JobError::Permanent(_))),
                "{code}"
            );
        }
    }

    #[test]
    fn a_replay_is_a_delivery_of_its_own_and_a_repeat_delivery_is_not() {
        let now = chrono::Utc::now();
        let creditor = CreditorId::from("cred_1");
        let event = EventId::from("evt_1");
        let endpoint = EndpointId::from("we_1");
        let (_, first) = delivery_job(&creditor, &event, &endpoint, now);
        let (_, again) = delivery_job(&creditor, &event, &endpoint, now);
        assert_eq!(first.idempotency_key, "deliver:evt_1:we_1");
        assert_eq!(first.idempotency_key, again.idempotency_key);
        let (_, replay) = replay_job(&creditor, &event, &endpoint, now);
        let (_, replay_again) = replay_job(&creditor, &event, &endpoint, now);
        assert_ne!(replay.idempotency_key, first.idempotency_key);
        assert_ne!(replay.idempotency_key, replay_again.idempotency_key);
        assert_eq!(replay.payload["event"], "evt_1");
        assert_eq!(replay.payload["endpoint"], "we_1");
    }
}
