//! The HTTP surface: health, metrics (and, as the API grows, the partner API and webhooks).

mod health;
pub mod metrics;
pub mod problem;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::routing::get;

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
    shutting_down: Arc<AtomicBool>,
}

impl AppState {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> AppState {
        AppState {
            store,
            clock,
            metrics: Arc::new(Metrics::default()),
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

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/health/live", get(health::live))
        .route("/health/ready", get(health::ready))
        .route("/metrics", get(metrics::metrics))
        .fallback(|| async { Problem::not_found() })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .with_state(state)
}
