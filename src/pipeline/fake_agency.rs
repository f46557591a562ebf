//! A faithful fake collection agency for the demo and the tests: a real HTTP server on a loopback
//! listener that takes Forfall's pushed messages as `docs/pipeline.md` says an agency must, and
//! sends events back.
//!
//! `POST /cases` (the URL Forfall pushes to, [`FakeAgency::url`]), in this order:
//!
//! 1. a queued fault ([`FakeAgency::answer`]) answers first: 503, 429 with `Retry-After`, 422, or
//!    (slow) the normal answer after a delay, the message stored *before* the delay, so that a
//!    client that gave up finds its retry a duplicate;
//! 2. the Standard Webhooks signature, within ±5 minutes of the real clock → else 401;
//! 3. `Idempotency-Key` present and equal to `webhook-id` and to the body's `id`, `Content-Type`
//!    JSON, the body a valid message ([`OutboundMessage::parse`]) → else 400 (415 for the
//!    content type), a problem naming the field;
//! 4. an `Idempotency-Key` already stored: 200 again, stored once ([`FakeAgency::duplicates`]);
//!    the same key with a different message is 422;
//! 5. `case.transfer` for a case already held (under another key): 409, the case was sent twice;
//!    a follow-up for an unknown case: 404; for a withdrawn or closed case: 409;
//! 6. otherwise 200 `{"id", "case_id", "state"}`, the message stored and the case updated.
//!
//! Refusals are `application/problem+json`. The fake keeps at most [`MAX_MESSAGES`] messages and
//! answers 507 beyond.
//!
//! # The control API (`/_fake`, no auth, JSON)
//!
//! | route | what |
//! | --- | --- |
//! | `GET /_fake` | counts: deliveries, messages, cases, duplicates, rejected, conflicts, pending faults |
//! | `GET /_fake/cases` | every case: `case_id`, `state`, `transfer` (the case.v1), `messages`, `withdrawn_charged` |
//! | `GET /_fake/messages` | every stored message: `idempotency_key`, `kind`, `case_id`, `body`, `received_at` |
//! | `POST /_fake/fault` | `{"fault": "unavailable"\|"rate_limited"\|"slow"\|"bad_request", "times": 1, "retry_after_seconds": 7, "millis": 3000}` |
//! | `DELETE /_fake/fault` | drops the queued faults |
//! | `POST /_fake/events` | `{"gateway": "http://127.0.0.1:8080", "event": {"type": …}, "id": "evt_…" (optional)}`: signs the event and POSTs it to `{gateway}/pipeline/events` → `{"status", "webhook_id"}` |

use std::collections::{HashMap, VecDeque};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use forfall_connector::standard_webhooks::{self, Secret};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::case::{AgencyEvent, DocumentError, MessageData, OutboundMessage};
use super::push::IDEMPOTENCY_KEY;

/// The most messages the fake stores; deliveries beyond are answered 507.
pub const MAX_MESSAGES: usize = 100_000;

/// The path events are sent to on the gateway.
pub const EVENTS_PATH: &str = "/pipeline/events";

/// An answer the fake gives instead of taking a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgencyFault {
    /// 503 Service Unavailable.
    Unavailable,
    /// 429 Too Many Requests with `Retry-After` in whole seconds.
    RateLimited { retry_after_seconds: u64 },
    /// The normal answer, after this long (the message is stored before the wait).
    Slow(Duration),
    /// 422 with a problem body: the agency refuses the message.
    BadRequest,
}

/// A case as the fake agency holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AgencyCase {
    pub case_id: String,
    /// `open`, `held`, `withdrawn` or `closed`, per the messages received.
    pub state: String,
    /// The `case.v1` of the transfer.
    pub transfer: Option<Value>,
    /// The kinds of the case's messages, in arrival order.
    pub messages: Vec<String>,
    /// Set by `case.withdraw`: whether the withdrawal is charged.
    pub withdrawn_charged: Option<bool>,
}

/// A message the fake stored (the first delivery of its idempotency key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReceivedMessage {
    pub idempotency_key: String,
    /// `case.transfer`, `case.withdraw`, …
    pub kind: String,
    pub case_id: String,
    /// The whole envelope as received.
    pub body: Value,
    pub received_at: DateTime<Utc>,
}

/// A running fake agency. Dropping it stops the server.
pub struct FakeAgency {
    app: Arc<App>,
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

struct App {
    secret: Secret,
    http: reqwest::Client,
    state: Mutex<AgencyState>,
}

#[derive(Default)]
struct AgencyState {
    messages: Vec<ReceivedMessage>,
    /// Idempotency key → index in `messages`.
    by_key: HashMap<String, usize>,
    cases: Vec<AgencyCase>,
    /// Case id → index in `cases`.
    by_case: HashMap<String, usize>,
    faults: VecDeque<AgencyFault>,
    deliveries: usize,
    duplicates: usize,
    rejected: usize,
    conflicts: usize,
}

impl FakeAgency {
    /// Serves on `listener` until [`FakeAgency::shutdown`] (or drop), verifying deliveries with
    /// `secret` and signing events with it.
    pub async fn start(listener: TcpListener, secret: Secret) -> std::io::Result<FakeAgency> {
        let local = listener.local_addr()?;
        let addr = if local.ip().is_unspecified() {
            SocketAddr::new(Ipv4Addr::LOCALHOST.into(), local.port())
        } else {
            local
        };
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(std::io::Error::other)?;
        let app = Arc::new(App {
            secret,
            http,
            state: Mutex::new(AgencyState::default()),
        });
        let router = router(app.clone());
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            let serve = axum::serve(listener, router).with_graceful_shutdown(async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            });
            if let Err(e) = serve.await {
                tracing::warn!(error = %e, "the fake agency stopped");
            }
        });
        Ok(FakeAgency {
            app,
            addr,
            stop,
            task: Some(task),
        })
    }

    /// The URL Forfall pushes to: `http://127.0.0.1:PORT/cases`.
    pub fn url(&self) -> String {
        format!("http://{}/cases", self.addr)
    }

    /// The control API: `http://127.0.0.1:PORT/_fake`.
    pub fn control_url(&self) -> String {
        format!("http://{}/_fake", self.addr)
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// One per case id, in the order the cases arrived, with their messages in arrival order.
    pub fn cases(&self) -> Vec<AgencyCase> {
        self.app.lock().cases.clone()
    }

    /// Every distinct message (by `Idempotency-Key`), in arrival order.
    pub fn messages(&self) -> Vec<ReceivedMessage> {
        self.app.lock().messages.clone()
    }

    /// Deliveries whose `Idempotency-Key` was already stored (answered 200 again, not stored
    /// twice).
    pub fn duplicates(&self) -> usize {
        self.app.lock().duplicates
    }

    /// Deliveries refused for a bad signature, a stale timestamp, a missing or mismatched
    /// idempotency key or a malformed body (401, 400, 415).
    pub fn rejected(&self) -> usize {
        self.app.lock().rejected
    }

    /// Deliveries refused as conflicts: a second transfer of a case (409), a follow-up for a
    /// withdrawn or closed case (409), an idempotency key reused for another message (422).
    pub fn conflicts(&self) -> usize {
        self.app.lock().conflicts
    }

    /// Every delivery to `POST /cases`, faults and refusals included.
    pub fn deliveries(&self) -> usize {
        self.app.lock().deliveries
    }

    /// The next `times` deliveries are answered with `fault`.
    pub fn answer(&self, fault: AgencyFault, times: usize) {
        self.app
            .lock()
            .faults
            .extend(std::iter::repeat_n(fault, times));
    }

    /// Drops every fault not yet used.
    pub fn clear_faults(&self) {
        self.app.lock().faults.clear();
    }

    /// Sends an event back to Forfall: signs it the Standard Webhooks way with a fresh
    /// `webhook-id` and POSTs it to `{gateway_base}/pipeline/events`; returns the HTTP status.
    pub async fn send_event(
        &self,
        gateway_base: &str,
        event: &AgencyEvent,
    ) -> Result<u16, reqwest::Error> {
        self.app
            .send_event(gateway_base, &new_event_id(), event)
            .await
    }

    /// [`FakeAgency::send_event`] with a caller-chosen `webhook-id` (to test replays).
    pub async fn send_event_with_id(
        &self,
        gateway_base: &str,
        id: &str,
        event: &AgencyEvent,
    ) -> Result<u16, reqwest::Error> {
        self.app.send_event(gateway_base, id, event).await
    }

    /// Stops the server, waiting up to 5 s for requests in flight.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let abort = task.abort_handle();
            if tokio::time::timeout(Duration::from_secs(5), task)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
    }
}

impl Drop for FakeAgency {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

impl App {
    fn lock(&self) -> MutexGuard<'_, AgencyState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    async fn send_event(
        &self,
        gateway_base: &str,
        id: &str,
        event: &AgencyEvent,
    ) -> Result<u16, reqwest::Error> {
        let body = event.to_json().to_string().into_bytes();
        let url = format!("{}{EVENTS_PATH}", gateway_base.trim_end_matches('/'));
        let mut request = self
            .http
            .post(url)
            .header(header::CONTENT_TYPE, "application/json");
        for (name, value) in
            standard_webhooks::headers(&self.secret, id, Utc::now().timestamp(), &body)
        {
            request = request.header(name, value);
        }
        Ok(request.body(body).send().await?.status().as_u16())
    }

    /// Steps 2 to 6 of the module documentation, under the lock.
    fn take(&self, headers: &HeaderMap, body: &[u8]) -> Response {
        let refuse = |state: &mut AgencyState, response: Response| {
            state.rejected += 1;
            response
        };
        let verified = standard_webhooks::verify(
            &self.secret,
            headers,
            body,
            Utc::now(),
            standard_webhooks::DEFAULT_TOLERANCE,
        );
        let mut state = self.lock();
        let delivery = match verified {
            Ok(delivery) => delivery,
            Err(e) => {
                let answer = problem(StatusCode::UNAUTHORIZED, "bad-signature", &e.to_string());
                return refuse(&mut state, answer);
            }
        };
        let key = headers
            .get(IDEMPOTENCY_KEY)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("");
        if key.is_empty() {
            let answer = problem(
                StatusCode::BAD_REQUEST,
                "idempotency-key-missing",
                "the Idempotency-Key header is required",
            );
            return refuse(&mut state, answer);
        }
        if key != delivery.id {
            let answer = problem(
                StatusCode::BAD_REQUEST,
                "idempotency-key-mismatch",
                "the Idempotency-Key header must equal the webhook-id header",
            );
            return refuse(&mut state, answer);
        }
        let json_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.trim_start().starts_with("application/json"));
        if !json_type {
            let answer = problem(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "the body must be application/json",
            );
            return refuse(&mut state, answer);
        }
        let message = match OutboundMessage::parse(body) {
            Ok(message) if message.id != key => {
                let error = DocumentError {
                    field: "id".into(),
                    problem: "must equal the Idempotency-Key header".into(),
                };
                return refuse(&mut state, malformed(&error));
            }
            Ok(message) => message,
            Err(error) => return refuse(&mut state, malformed(&error)),
        };
        let envelope = message.to_json();

        if let Some(&index) = state.by_key.get(key) {
            let stored = &state.messages[index];
            let same = stored.kind == message.kind.as_str()
                && stored.case_id == message.case_id
                && stored.body.get("data") == envelope.get("data");
            if !same {
                state.conflicts += 1;
                return problem(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "idempotency-key-reused",
                    "this Idempotency-Key was used for a different message",
                );
            }
            state.duplicates += 1;
            let case_state = state
                .by_case
                .get(&message.case_id)
                .map(|&index| state.cases[index].state.clone())
                .unwrap_or_default();
            return accepted(key, &message.case_id, &case_state);
        }
        if state.messages.len() >= MAX_MESSAGES {
            return problem(
                StatusCode::INSUFFICIENT_STORAGE,
                "full",
                "the fake agency holds as many messages as it can",
            );
        }

        let payload = match message.payload() {
            Ok(payload) => payload,
            Err(error) => return refuse(&mut state, malformed(&error)),
        };
        let existing = state.by_case.get(&message.case_id).copied();
        let case_index = match (&payload, existing) {
            (MessageData::Transfer(_), Some(_)) => {
                state.conflicts += 1;
                return problem(
                    StatusCode::CONFLICT,
                    "case-exists",
                    "this case was already transferred under another Idempotency-Key",
                );
            }
            (MessageData::Transfer(_), None) => {
                let index = state.cases.len();
                state.cases.push(AgencyCase {
                    case_id: message.case_id.clone(),
                    state: "open".into(),
                    transfer: envelope.get("data").cloned(),
                    messages: Vec::new(),
                    withdrawn_charged: None,
                });
                state.by_case.insert(message.case_id.clone(), index);
                index
            }
            (_, None) => {
                return problem(
                    StatusCode::NOT_FOUND,
                    "unknown-case",
                    "no case with this case_id was transferred",
                );
            }
            (_, Some(index)) => {
                let current = state.cases[index].state.clone();
                if matches!(current.as_str(), "withdrawn" | "closed") {
                    state.conflicts += 1;
                    return problem(
                        StatusCode::CONFLICT,
                        "case-finished",
                        &format!("the case is {current}: it takes no more messages"),
                    );
                }
                index
            }
        };
        let case = &mut state.cases[case_index];
        match &payload {
            MessageData::Transfer(_) | MessageData::Release => case.state = "open".into(),
            MessageData::Hold { .. } => case.state = "held".into(),
            MessageData::Withdraw { charged, .. } => {
                case.state = "withdrawn".into();
                case.withdrawn_charged = Some(*charged);
            }
            // Information: with `keep_open` the case stays open for the fees; without it, the
            // `case.withdraw` that follows ends it.
            MessageData::PaidDirectly { .. } => {}
        }
        case.messages.push(message.kind.as_str().to_string());
        let case_state = case.state.clone();
        let index = state.messages.len();
        state.messages.push(ReceivedMessage {
            idempotency_key: key.to_string(),
            kind: message.kind.as_str().to_string(),
            case_id: message.case_id.clone(),
            body: envelope,
            received_at: Utc::now(),
        });
        state.by_key.insert(key.to_string(), index);
        accepted(key, &message.case_id, &case_state)
    }
}

fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/cases", post(receive))
        .route("/_fake", get(summary))
        .route("/_fake/cases", get(list_cases))
        .route("/_fake/messages", get(list_messages))
        .route("/_fake/fault", post(add_fault).delete(clear_faults))
        .route("/_fake/events", post(send_event))
        .fallback(|| async { problem(StatusCode::NOT_FOUND, "not-found", "no such route") })
        .with_state(app)
}

async fn receive(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Response {
    let fault = {
        let mut state = app.lock();
        state.deliveries += 1;
        state.faults.pop_front()
    };
    let delay = match fault {
        Some(AgencyFault::Unavailable) => {
            return problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the agency is down for maintenance",
            );
        }
        Some(AgencyFault::RateLimited {
            retry_after_seconds,
        }) => {
            let mut response = problem(
                StatusCode::TOO_MANY_REQUESTS,
                "rate-limited",
                "too many requests",
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_seconds));
            return response;
        }
        Some(AgencyFault::BadRequest) => {
            return problem(
                StatusCode::UNPROCESSABLE_ENTITY,
                "refused",
                "the agency refuses this message",
            );
        }
        Some(AgencyFault::Slow(delay)) => Some(delay),
        None => None,
    };
    let response = app.take(&headers, &body);
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    response
}

async fn summary(State(app): State<Arc<App>>) -> Json<Value> {
    let state = app.lock();
    Json(json!({
        "deliveries": state.deliveries,
        "messages": state.messages.len(),
        "cases": state.cases.len(),
        "duplicates": state.duplicates,
        "rejected": state.rejected,
        "conflicts": state.conflicts,
        "pending_faults": state.faults.len(),
    }))
}

async fn list_cases(State(app): State<Arc<App>>) -> Json<Vec<AgencyCase>> {
    Json(app.lock().cases.clone())
}

async fn list_messages(State(app): State<Arc<App>>) -> Json<Vec<ReceivedMessage>> {
    Json(app.lock().messages.clone())
}

async fn add_fault(State(app): State<Arc<App>>, body: Bytes) -> Response {
    let Ok(Value::Object(request)) = serde_json::from_slice::<Value>(&body) else {
        return problem(
            StatusCode::BAD_REQUEST,
            "bad-request",
            "the body must be a JSON object",
        );
    };
    let number = |key: &str, default: u64| match request.get(key) {
        None | Some(Value::Null) => Some(default),
        Some(value) => value.as_u64(),
    };
    let (Some(times), Some(retry_after_seconds), Some(millis)) = (
        number("times", 1),
        number("retry_after_seconds", 1),
        number("millis", 1000),
    ) else {
        return problem(
            StatusCode::BAD_REQUEST,
            "bad-request",
            "times, retry_after_seconds and millis must be whole numbers from 0",
        );
    };
    let fault = match request.get("fault").and_then(Value::as_str) {
        Some("unavailable") => AgencyFault::Unavailable,
        Some("rate_limited") => AgencyFault::RateLimited {
            retry_after_seconds,
        },
        Some("slow") => AgencyFault::Slow(Duration::from_millis(millis)),
        Some("bad_request") => AgencyFault::BadRequest,
        _ => {
            return problem(
                StatusCode::BAD_REQUEST,
                "bad-request",
                "fault must be \"unavailable\", \"rate_limited\", \"slow\" or \"bad_request\"",
            );
        }
    };
    let times = usize::try_from(times)
        .unwrap_or(usize::MAX)
        .min(MAX_MESSAGES);
    let mut state = app.lock();
    state.faults.extend(std::iter::repeat_n(fault, times));
    Json(json!({ "pending_faults": state.faults.len() })).into_response()
}

async fn clear_faults(State(app): State<Arc<App>>) -> StatusCode {
    app.lock().faults.clear();
    StatusCode::NO_CONTENT
}

async fn send_event(State(app): State<Arc<App>>, body: Bytes) -> Response {
    let Ok(Value::Object(request)) = serde_json::from_slice::<Value>(&body) else {
        return problem(
            StatusCode::BAD_REQUEST,
            "bad-request",
            "the body must be a JSON object",
        );
    };
    let Some(gateway) = request.get("gateway").and_then(Value::as_str) else {
        return problem(
            StatusCode::BAD_REQUEST,
            "bad-request",
            "gateway must be the gateway's base URL, such as \"http://127.0.0.1:8080\"",
        );
    };
    let event_json = request.get("event").cloned().unwrap_or(Value::Null);
    let event = match AgencyEvent::parse(event_json.to_string().as_bytes()) {
        Ok(event) => event,
        Err(error) => {
            let error = DocumentError {
                field: format!("event.{}", error.field),
                problem: error.problem,
            };
            return malformed(&error);
        }
    };
    let id = match request.get("id") {
        None | Some(Value::Null) => new_event_id(),
        Some(Value::String(id)) if !id.is_empty() => id.clone(),
        Some(_) => {
            return problem(
                StatusCode::BAD_REQUEST,
                "bad-request",
                "id must be a non-empty string",
            );
        }
    };
    match app.send_event(gateway, &id, &event).await {
        Ok(status) => Json(json!({ "status": status, "webhook_id": id })).into_response(),
        Err(e) => problem(
            StatusCode::BAD_GATEWAY,
            "gateway-unreachable",
            &format!("cannot send the event: {e}"),
        ),
    }
}

fn accepted(id: &str, case_id: &str, state: &str) -> Response {
    Json(json!({ "id": id, "case_id": case_id, "state": state })).into_response()
}

/// An RFC 9457 problem.
fn problem(status: StatusCode, kind: &str, detail: &str) -> Response {
    problem_with(status, kind, detail, Vec::new())
}

fn malformed(error: &DocumentError) -> Response {
    problem_with(
        StatusCode::BAD_REQUEST,
        "malformed",
        &error.to_string(),
        vec![json!({ "pointer": error.pointer(), "field": error.field, "detail": error.problem })],
    )
}

fn problem_with(status: StatusCode, kind: &str, detail: &str, errors: Vec<Value>) -> Response {
    let mut body = json!({
        "type": format!("https://agency.example/problems/{kind}"),
        "title": status.canonical_reason().unwrap_or("Error"),
        "status": status.as_u16(),
        "detail": detail,
    });
    if !errors.is_empty() {
        body["errors"] = Value::Array(errors);
    }
    let mut response = (status, body.to_string()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    response
}

/// `evt_` and something unique within the process and unlikely to repeat across runs.
fn new_event_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = Utc::now().timestamp_nanos_opt().unwrap_or_default();
    format!("evt_{nanos:x}{n:04x}")
}
