//! `POST /pipeline/events`: the collection agency's events (payments, objections, closes,
//! withdrawal confirmations), signed the Standard Webhooks way with the agency's secret. The
//! timestamp must be within ±5 minutes of the machine's real clock (the signature is about
//! transport, not about the business day the gateway's clock says); a `webhook-id` seen before
//! is acknowledged (200) without being applied again. Answers: 202 applied, 200 replay, 400
//! malformed (naming the field), 401 bad signature, 404 unknown case, 422 wrong currency.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use forfall_connector::standard_webhooks::{self, DEFAULT_TOLERANCE};

use super::AppState;
use super::problem::{FieldError, Problem};
use crate::pipeline::case::AgencyEvent;
use crate::pipeline::events::{self, Applied, EventError};

/// The largest event accepted.
pub const MAX_BODY: usize = 256 * 1024;

const REJECTED: &str = "forfall_agency_events_rejected_total";

pub async fn receive(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let Some(secret) = state.agency_secret.clone() else {
        return Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "pipeline-off",
            "This gateway has no collection agency configured",
        )
        .into_response();
    };
    let reject = |reason: &str, problem: Problem| {
        state.metrics.count(REJECTED, reason);
        problem.into_response()
    };
    let Ok(body) = axum::body::to_bytes(body, MAX_BODY).await else {
        return reject(
            "too_large",
            Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload-too-large",
                "The event is too large",
            )
            .with_detail(format!("at most {MAX_BODY} bytes")),
        );
    };
    let delivery = match standard_webhooks::verify(
        &secret,
        &headers,
        &body,
        chrono::Utc::now(),
        DEFAULT_TOLERANCE,
    ) {
        Ok(delivery) => delivery,
        Err(why) => {
            return reject(
                "bad_signature",
                Problem::new(
                    StatusCode::UNAUTHORIZED,
                    "bad-signature",
                    "The event's signature does not check out",
                )
                .with_detail(why.to_string()),
            );
        }
    };
    let event = match AgencyEvent::parse(&body) {
        Ok(event) => event,
        Err(e) => {
            let mut problem = Problem::new(
                StatusCode::BAD_REQUEST,
                "malformed-event",
                "The event cannot be read",
            )
            .with_detail(e.to_string());
            problem.errors.push(FieldError {
                pointer: e.pointer(),
                detail: e.problem.clone(),
            });
            return reject("malformed", problem);
        }
    };
    match events::apply(
        state.store.as_ref(),
        state.clock.as_ref(),
        &delivery.id,
        &event,
    )
    .await
    {
        Ok(Applied::Applied) => {
            state
                .metrics
                .count("forfall_agency_events_total", event.kind());
            state.jobs_wake.notify_waiters();
            StatusCode::ACCEPTED.into_response()
        }
        Ok(Applied::Replayed) => StatusCode::OK.into_response(),
        Err(EventError::UnknownCase(case)) => reject(
            "unknown_case",
            Problem::new(StatusCode::NOT_FOUND, "unknown-case", "No such case")
                .with_detail(format!("no case `{case}`")),
        ),
        Err(e @ EventError::WrongCurrency { .. }) => {
            let mut problem = Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "wrong-currency",
                "The payment is not in the case's currency",
            )
            .with_detail(e.to_string());
            problem.errors.push(FieldError {
                pointer: "/data/currency".into(),
                detail: e.to_string(),
            });
            reject("wrong_currency", problem)
        }
        Err(e) => {
            tracing::error!(error = %e, "agency event: cannot apply");
            Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "store-unavailable",
                "The event cannot be applied now; send it again",
            )
            .into_response()
        }
    }
}
