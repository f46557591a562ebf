//! The HTTP surface: health, metrics (and, as the API grows, the partner API and webhooks).

pub mod agency_events;
pub mod auth;
mod health;
pub mod hooks;
pub mod idempotency;
pub mod json;
pub mod metrics;
pub mod problem;
pub mod v1;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::{MethodRouter, get, post};

use crate::clock::Clock;
use crate::store::Store;

use metrics::Metrics;
use problem::Problem;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub metrics: Arc<Metrics>,
    /// Ingest from the platforms (webhooks); `None` where the gateway does not ingest.
    pub ingest: Option<Arc<crate::sync::Ingest>>,
    /// The collection agency's secret, which signs its events; `None`: no agency configured.
    pub agency_secret: Option<forfall_connector::standard_webhooks::Secret>,
    /// Seals secrets the API is given or makes (webhook endpoints' signing secrets); `None`:
    /// routes that need it answer 503.
    pub encryption_key: Option<crate::secrets::EncryptionKey>,
    /// Wakes the job workers when a request causes work.
    pub jobs_wake: Arc<tokio::sync::Notify>,
    /// Each API key's rate limit.
    pub limits: Arc<auth::Limits>,
    shutting_down: Arc<AtomicBool>,
}

impl AppState {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> AppState {
        AppState {
            store,
            clock,
            metrics: Arc::new(Metrics::default()),
            ingest: None,
            agency_secret: None,
            encryption_key: None,
            jobs_wake: Arc::new(tokio::sync::Notify::new()),
            limits: Arc::new(auth::Limits::default()),
            shutting_down: Arc::new(AtomicBool::new(false)),
        }
    }

    /// From now on, readiness says no, so a load balancer stops sending work here.
    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
    }

    pub fn shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }
}

/// `openapi.yaml` from the repository root, served as it is.
pub const OPENAPI: &str = include_str!("../../openapi.yaml");

/// Every route the server has, as (path, method router): the one list the router is built from and
/// the OpenAPI test walks.
pub fn routes() -> Vec<(&'static str, MethodRouter<AppState>)> {
    vec![
        ("/health/live", get(health::live)),
        ("/health/ready", get(health::ready)),
        ("/metrics", get(metrics::metrics)),
        ("/openapi.yaml", get(openapi)),
        ("/hooks/{connection}", post(hooks::receive)),
        ("/pipeline/events", post(agency_events::receive)),
    ]
    .into_iter()
    .chain(v1::routes())
    .collect()
}

async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/yaml")], OPENAPI)
}

pub fn router(state: AppState) -> Router {
    routes()
        .into_iter()
        .fold(Router::new(), |router, (path, handler)| {
            router.route(path, handler)
        })
        .fallback(|| async { Problem::not_found() })
        .layer(axum::extract::DefaultBodyLimit::max(json::MAX_BODY))
        .layer(axum::middleware::map_response(plain_errors_as_problems))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            idempotency::idempotent,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::authenticate,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .with_state(state)
}

/// The router's and axum's own errors (405, a path or body that cannot be read, a body over the
/// limit) come as plain text: answer them as problems too, keeping `Allow` and `Retry-After`.
async fn plain_errors_as_problems(response: axum::response::Response) -> axum::response::Response {
    let status = response.status();
    let plain = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v.starts_with("text/plain"));
    if !(status.is_client_error() || status.is_server_error()) || !plain {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 64 * 1024)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    let slug = status
        .canonical_reason()
        .unwrap_or("error")
        .to_ascii_lowercase()
        .replace(' ', "-");
    let mut problem = Problem::new(status, &slug, status.canonical_reason().unwrap_or("Error"));
    if !text.is_empty() {
        problem = problem.with_detail(text);
    }
    let mut answer = problem.into_response();
    for name in [header::ALLOW, header::RETRY_AFTER] {
        if let Some(value) = parts.headers.get(&name) {
            answer.headers_mut().insert(name, value.clone());
        }
    }
    answer
}
