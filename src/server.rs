//! `forfall serve`: the HTTP server with its background work, and a graceful shutdown on SIGTERM or
//! Ctrl-C: readiness turns false, no new connections are taken, requests in flight finish (up to the
//! configured grace), and every lease this instance holds is released so another instance can take
//! the work at once.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::api::{self, AppState};
use crate::clock::Clock;
use crate::store::Store;
use crate::sync::{Ingest, PollSettings, run_poll_loop, run_webhook_worker};

/// Identifies this instance as the holder of leases.
pub fn instance_id() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "forfall".into());
    format!(
        "{host}-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    )
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("the server stopped: {0}")]
    Io(#[from] std::io::Error),
}

/// Runs until `shutdown` resolves, then drains and releases this instance's leases. The store
/// stays open: its owner closes it.
/// What runs beside the HTTP server.
#[derive(Default)]
pub struct Background {
    /// Ingest: webhooks are accepted and processed (and, with `poll`, connections are polled).
    pub ingest: Option<Arc<Ingest>>,
    pub poll: Option<PollSettings>,
    /// The job workers and the day tick.
    pub workers: Option<crate::jobs::workers::Workers>,
    /// The agency's secret, which signs its events (`POST /pipeline/events`).
    pub agency_secret: Option<forfall_connector::standard_webhooks::Secret>,
    /// Each API key's rate limit.
    pub api_rate: crate::config::ApiRate,
}

pub async fn serve(
    listener: TcpListener,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    owner: String,
    grace: Duration,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    background: Background,
) -> Result<(), ServeError> {
    let mut state = AppState::new(store.clone(), clock);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut workers = Vec::new();
    state.agency_secret = background.agency_secret;
    state.limits = Arc::new(api::auth::Limits::new(background.api_rate));
    if let Some(act) = background.workers {
        state.jobs_wake = act.runner.wake.clone();
        // Days missed while the gateway was down are caught up before anything else runs.
        match act.tick.run_due().await {
            Ok(report) if !report.days.is_empty() => {
                tracing::info!(
                    days = report.days.len(),
                    decisions = report.decisions,
                    "caught up the day tick"
                );
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "the start-up day tick failed"),
        }
        workers.push(tokio::spawn(crate::jobs::day_tick::run_tick_loop(
            act.tick.clone(),
            act.tick_every,
            stop_rx.clone(),
            act.runner.wake.clone(),
        )));
        workers.push(tokio::spawn(act.runner.clone().run(stop_rx.clone())));
    }
    if let Some(ingest) = background.ingest {
        state.metrics = ingest.metrics.clone();
        // The key that seals connection credentials seals webhook endpoints' secrets too.
        state.encryption_key = ingest.connectors.key().cloned();
        state.ingest = Some(ingest.clone());
        workers.push(tokio::spawn(run_webhook_worker(
            ingest.clone(),
            owner.clone(),
            stop_rx.clone(),
        )));
        if let Some(poll) = background.poll {
            workers.push(tokio::spawn(run_poll_loop(ingest, poll, stop_rx.clone())));
        }
    }
    let app = api::router(state.clone());
    let (drained_tx, drained_rx) = tokio::sync::oneshot::channel::<()>();
    let stopping = {
        let state = state.clone();
        async move {
            shutdown.await;
            tracing::info!("shutting down: finishing requests in flight");
            state.begin_shutdown();
            let _ = drained_tx.send(());
        }
    };
    let server = axum::serve(listener, app).with_graceful_shutdown(stopping);
    let result = tokio::select! {
        result = server => result.map_err(ServeError::from),
        () = async {
            let _ = drained_rx.await;
            tokio::time::sleep(grace).await;
        } => {
            tracing::warn!(grace_seconds = grace.as_secs(), "requests still in flight after the grace period; stopping anyway");
            Ok(())
        }
    };
    let _ = stop_tx.send(true);
    for worker in workers {
        // A worker between two steps stops at once; one in the middle of a page finishes it
        // within the grace period, or is cut off (its work resumes from the last commit).
        if tokio::time::timeout(grace, worker).await.is_err() {
            tracing::warn!("a background worker did not stop within the grace period");
        }
    }
    if let Err(e) = store.release_everything_of(&owner).await {
        tracing::error!(error = %e, "could not release this instance's leases; they expire on their own");
    }
    tracing::info!("stopped");
    result
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
