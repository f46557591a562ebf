//! `/health/live`: the process answers. `/health/ready`: the database answers and its schema is
//! the one this binary knows, so the instance can take traffic.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::problem::Problem;

pub async fn live() -> impl IntoResponse {
    Json(serde_json::json!({ "status": "live" }))
}

pub async fn ready(State(state): State<AppState>) -> Response {
    let not_ready = |detail: String| {
        Problem::new(StatusCode::SERVICE_UNAVAILABLE, "not-ready", "Not ready")
            .with_detail(detail)
            .into_response()
    };
    if state.shutting_down() {
        return not_ready("shutting down".into());
    }
    if let Err(e) = state.store.ping().await {
        return not_ready(e.to_string());
    }
    match state.store.schema_status().await {
        Ok(status) if status.is_current() => Json(serde_json::json!({
            "status": "ready",
            "schema_version": status.applied.last().copied().unwrap_or(0),
        }))
        .into_response(),
        Ok(status) => not_ready(format!(
            "schema at {:?}, this binary expects {:?}",
            status.applied, status.known
        )),
        Err(e) => not_ready(e.to_string()),
    }
}
