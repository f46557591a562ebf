//! A fake partner for the demo and the tests: a real HTTP server serving the `invoice.v1` feed
//! from memory, and helpers that push signed deliveries to the gateway as a partner would.
//!
//! - `GET /invoices?limit=N[&cursor=C]` and `GET /invoices/{id}`, behind
//!   `Authorization: Bearer <token>` (401 otherwise).
//! - Every [`FakePartner::upsert`] is a change with the next sequence number; the feed lists
//!   invoices by their last change, and a cursor is the sequence number of the last one a page
//!   held (written `c<number>`, opaque to clients). [`FakePartner::delete`] removes an invoice:
//!   it leaves the feed and `GET /invoices/{id}` answers 404.
//! - `limit` defaults to [`DEFAULT_LIMIT`] and is cut to [`MAX_LIMIT`]; 0, a non-number or an
//!   unknown cursor is a 400.
//! - [`FakePartner::fail_next`] makes the next answers 503, or 429 with `Retry-After`.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use forfall_connector::RemoteInvoice;
use forfall_connector::standard_webhooks::{self, Secret};
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::{WebhookEvent, event_json, to_json};

/// Invoices per page when the client gives no `limit`.
pub const DEFAULT_LIMIT: usize = 100;
/// The most invoices one page holds, whatever `limit` asks.
pub const MAX_LIMIT: usize = 1000;

/// A failure the feed answers with instead of serving.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// 503 Service Unavailable.
    Unavailable,
    /// 429 Too Many Requests with `Retry-After` in whole seconds.
    RateLimited { retry_after: Duration },
}

/// The fake partner: a cheap handle to shared state (clones see the same invoices).
#[derive(Clone)]
pub struct FakePartner {
    shared: Arc<Shared>,
}

struct Shared {
    token: String,
    state: Mutex<FeedState>,
}

#[derive(Default)]
struct FeedState {
    /// The last sequence number given to a change.
    sequence: u64,
    /// Each invoice with the sequence number of its last change.
    invoices: HashMap<String, (u64, RemoteInvoice)>,
    /// Sequence number of the last change → invoice id: the feed's order.
    changes: BTreeMap<u64, String>,
    faults: VecDeque<Fault>,
    requests: usize,
}

impl FakePartner {
    /// An empty feed that accepts `token` as its bearer token.
    pub fn new(token: impl Into<String>) -> FakePartner {
        FakePartner {
            shared: Arc::new(Shared {
                token: token.into(),
                state: Mutex::new(FeedState::default()),
            }),
        }
    }

    /// The credentials JSON of a connection polling this feed at `base_url`.
    pub fn credentials(&self, base_url: &str) -> Value {
        json!({ "base_url": base_url, "token": self.shared.token })
    }

    /// The feed's routes.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/invoices", get(list))
            .route("/invoices/{id}", get(single))
            .with_state(self.clone())
    }

    /// Serves the feed on `listener` until the server fails.
    pub async fn serve(&self, listener: TcpListener) -> std::io::Result<()> {
        axum::serve(listener, self.router()).await
    }

    /// Serves the feed on `listener` in a task of the current Tokio runtime, and gives its base
    /// URL (`http://<address>`).
    pub fn spawn(&self, listener: TcpListener) -> std::io::Result<String> {
        let address = listener.local_addr()?;
        let router = self.router();
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, router).await {
                tracing::warn!(error = %e, "the fake partner feed stopped");
            }
        });
        Ok(format!("http://{address}"))
    }

    /// Adds or replaces an invoice: a change, listed after every earlier one.
    pub fn upsert(&self, invoice: RemoteInvoice) {
        let mut state = self.state();
        state.sequence += 1;
        let sequence = state.sequence;
        let id = invoice.id.0.clone();
        if let Some((previous, _)) = state.invoices.insert(id.clone(), (sequence, invoice)) {
            state.changes.remove(&previous);
        }
        state.changes.insert(sequence, id);
    }

    /// Removes an invoice; whether there was one.
    pub fn delete(&self, id: &str) -> bool {
        let mut state = self.state();
        match state.invoices.remove(id) {
            Some((sequence, _)) => {
                state.changes.remove(&sequence);
                true
            }
            None => false,
        }
    }

    /// The next `n` requests to the feed are answered with `fault`.
    pub fn fail_next(&self, n: usize, fault: Fault) {
        self.state().faults.extend(std::iter::repeat_n(fault, n));
    }

    /// Requests the feed has received, faults and refusals included.
    pub fn requests(&self) -> usize {
        self.state().requests
    }

    fn state(&self) -> MutexGuard<'_, FeedState> {
        self.shared
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Counts the request, then answers with a pending fault or a refused token, if any.
    fn gate(&self, headers: &HeaderMap) -> Option<Response> {
        let fault = {
            let mut state = self.state();
            state.requests += 1;
            state.faults.pop_front()
        };
        match fault {
            Some(Fault::Unavailable) => {
                return Some(problem(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "the feed is down for maintenance",
                ));
            }
            Some(Fault::RateLimited { retry_after }) => {
                let mut response = problem(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limited",
                    "too many requests",
                );
                response.headers_mut().insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(retry_after.as_secs()),
                );
                return Some(response);
            }
            None => {}
        }
        let expected = format!("Bearer {}", self.shared.token);
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok());
        if given != Some(expected.as_str()) {
            return Some(problem(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "missing or wrong bearer token",
            ));
        }
        None
    }
}

fn problem(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(json!({ "error": code, "message": message }))).into_response()
}

async fn list(
    State(fake): State<FakePartner>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if let Some(refusal) = fake.gate(&headers) {
        return refusal;
    }
    let limit = match query.get("limit").map(|text| text.parse::<usize>()) {
        None => DEFAULT_LIMIT,
        Some(Ok(limit)) if limit > 0 => limit.min(MAX_LIMIT),
        Some(_) => {
            return problem(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "limit must be a whole number from 1",
            );
        }
    };
    let after = match query.get("cursor") {
        None => 0,
        Some(cursor) => match cursor.strip_prefix('c').and_then(|n| n.parse::<u64>().ok()) {
            Some(after) => after,
            None => return problem(StatusCode::BAD_REQUEST, "bad_request", "unknown cursor"),
        },
    };
    let state = fake.state();
    let mut changes = state
        .changes
        .range((Bound::Excluded(after), Bound::Unbounded));
    let mut data = Vec::new();
    let mut last = None;
    for (sequence, id) in changes.by_ref().take(limit) {
        if let Some((_, invoice)) = state.invoices.get(id) {
            data.push(to_json(invoice));
        }
        last = Some(*sequence);
    }
    let has_more = changes.next().is_some();
    Json(json!({
        "data": data,
        "next_cursor": last.map(|sequence| format!("c{sequence}")),
        "has_more": has_more,
    }))
    .into_response()
}

async fn single(
    State(fake): State<FakePartner>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Some(refusal) = fake.gate(&headers) {
        return refusal;
    }
    match fake.state().invoices.get(&id) {
        Some((_, invoice)) => Json(to_json(invoice)).into_response(),
        None => problem(StatusCode::NOT_FOUND, "not_found", "no such invoice"),
    }
}

/// A delivery ready to send: its id, the body, and the Standard Webhooks headers signing it.
#[derive(Debug, Clone)]
pub struct SignedDelivery {
    pub id: String,
    pub timestamp: DateTime<Utc>,
    pub headers: [(&'static str, String); 3],
    pub body: Vec<u8>,
}

/// Signs `event` as sent at `at` with delivery id `id` (choose both to test replays and stale
/// deliveries; [`push`] picks fresh ones).
pub fn signed_delivery(
    secret: &Secret,
    event: &WebhookEvent,
    id: &str,
    at: DateTime<Utc>,
) -> SignedDelivery {
    let body = event_json(event, at).to_string().into_bytes();
    SignedDelivery {
        id: id.to_string(),
        timestamp: at,
        headers: standard_webhooks::headers(secret, id, at.timestamp(), &body),
        body,
    }
}

/// POSTs a delivery to `url` (again, for a retry or a replay) and gives the answer's status.
pub async fn send(url: &str, delivery: &SignedDelivery) -> Result<u16, reqwest::Error> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let mut request = client
        .post(url)
        .header(header::CONTENT_TYPE, "application/json")
        .body(delivery.body.clone());
    for (name, value) in &delivery.headers {
        request = request.header(*name, value.as_str());
    }
    Ok(request.send().await?.status().as_u16())
}

/// Pushes `event` to `url` as a partner would: signed with `secret`, a new delivery id, now.
pub async fn push(url: &str, secret: &Secret, event: &WebhookEvent) -> Result<u16, reqwest::Error> {
    let delivery = signed_delivery(secret, event, &new_delivery_id(), Utc::now());
    send(url, &delivery).await
}

/// `msg_` and something unique within the process and unlikely to repeat across runs.
fn new_delivery_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = Utc::now().timestamp_nanos_opt().unwrap_or_default();
    format!("msg_{nanos:x}{n:04x}")
}
