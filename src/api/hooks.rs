//! `POST /hooks/{connection}`: the platforms' webhooks. Verified with the connection's own scheme
//! (Tripletex's `x-request-signature`, Standard Webhooks for the generic connector), stored as a
//! job in the same database as everything else, and acknowledged at once; the webhook worker
//! processes it (see `sync::hooks`). Nothing is ingested from a delivery that fails a check.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use forfall_connector::ConnectorError;
use sha2::Digest;

use super::AppState;
use super::problem::{FieldError, Problem};
use crate::domain::{ConnectionId, NewJob};
use crate::sync::WEBHOOK_JOB;

/// The largest delivery accepted.
pub const MAX_BODY: usize = 1024 * 1024;

const REJECTED: &str = "forfall_webhooks_rejected_total";

pub async fn receive(
    State(state): State<AppState>,
    Path(connection): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some(ingest) = state.ingest.clone() else {
        return Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "ingest-off",
            "This gateway does not ingest",
        )
        .into_response();
    };
    let reject = |reason: &str, problem: Problem| {
        state.metrics.count(REJECTED, reason);
        problem.into_response()
    };
    let id = ConnectionId::from(connection.as_str());
    let connection = match ingest.connection_for_webhook(&id).await {
        Ok(Some(connection)) => connection,
        Ok(None) => return reject("unknown_connection", Problem::not_found()),
        Err(e) => {
            tracing::error!(error = %e, "webhook: store");
            return Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "store-unavailable",
                "The store is unavailable",
            )
            .into_response();
        }
    };
    let too_large = || {
        Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload-too-large",
            "The delivery is too large",
        )
        .with_detail(format!("at most {MAX_BODY} bytes"))
    };
    let declared = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > MAX_BODY) {
        return reject("too_large", too_large());
    }
    let body = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(body) => body,
        Err(_) => return reject("too_large", too_large()),
    };
    let opened = match ingest.connectors.open(&connection) {
        Ok(opened) => opened,
        Err(e) => {
            tracing::error!(connection = %id, error = %e, "webhook: cannot open the connection");
            return Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "connection-unusable",
                "The connection cannot be used",
            )
            .into_response();
        }
    };
    let connector = opened.connector.as_ref();
    // A signature's timestamp is checked against the machine's real clock: it is about
    // transport, not about the business day the gateway's (possibly simulated) clock says, and
    // senders sign with their real time (as for `/pipeline/events`).
    let delivery =
        match connector.verify_webhook(&opened.webhook_secret, &headers, &body, chrono::Utc::now())
        {
            Ok(delivery) => delivery,
            Err(ConnectorError::BadSignature(why)) => {
                return reject(
                    "bad_signature",
                    Problem::new(
                        StatusCode::UNAUTHORIZED,
                        "bad-signature",
                        "The delivery's signature does not check out",
                    )
                    .with_detail(why),
                );
            }
            Err(e) => {
                tracing::error!(connection = %id, error = %e, "webhook: cannot verify");
                return reject(
                    "unverifiable",
                    Problem::new(
                        StatusCode::UNAUTHORIZED,
                        "bad-signature",
                        "The delivery cannot be verified",
                    ),
                );
            }
        };
    if let Err(e) = connector.parse_webhook(&headers, &body) {
        return reject("malformed", malformed_delivery(e));
    }
    let Ok(text) = std::str::from_utf8(&body) else {
        return reject(
            "malformed",
            Problem::new(
                StatusCode::BAD_REQUEST,
                "malformed-delivery",
                "The delivery is not UTF-8",
            ),
        );
    };
    // A delivery the platform does not name is named by its content: the same bytes twice are
    // the same delivery.
    let delivery_id = delivery.id.unwrap_or_else(|| {
        let digest = sha2::Sha256::digest(&body);
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        format!("sha256:{hex}")
    });
    let job = NewJob {
        kind: WEBHOOK_JOB.into(),
        idempotency_key: format!("webhook:{id}:{delivery_id}"),
        payload: serde_json::json!({ "connection": id.as_str(), "body": text }),
        run_after: state.clock.now(),
        chain: None,
    };
    match ingest.store_delivery(&connection.creditor_id, job).await {
        Ok(true) => {
            ingest.deliveries.notify_one();
            state
                .metrics
                .count("forfall_webhooks_accepted_total", &connection.platform);
            StatusCode::ACCEPTED.into_response()
        }
        // The platform's retry of a delivery it did not see acknowledged (same delivery id):
        // acknowledged again, not stored again, so the platform stops retrying it.
        Ok(false) => {
            state.metrics.count_labelled(
                "forfall_webhooks_duplicates_total",
                &[("platform", connection.platform.as_str())],
            );
            StatusCode::OK.into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "webhook: cannot store the delivery");
            Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "store-unavailable",
                "The store is unavailable",
            )
            .into_response()
        }
    }
}

/// 400 for a delivery that cannot be read. A connector names the field at fault at the start of
/// its detail (`data.customer.kind: must be …`): it becomes the problem's `errors[0].pointer`.
fn malformed_delivery(error: ConnectorError) -> Problem {
    let detail = match error {
        ConnectorError::Malformed { detail } => detail,
        other => other.to_string(),
    };
    let mut problem = Problem::new(
        StatusCode::BAD_REQUEST,
        "malformed-delivery",
        "The delivery cannot be read",
    )
    .with_detail(detail.clone());
    let named = detail
        .split_once(": ")
        .filter(|(path, _)| !path.is_empty() && !path.contains(char::is_whitespace));
    problem.errors.push(match named {
        Some((path, why)) => FieldError {
            pointer: crate::json_path::pointer(path),
            detail: why.to_owned(),
        },
        None => FieldError {
            pointer: String::new(),
            detail,
        },
    });
    problem
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_malformed_delivery_names_its_field_as_a_pointer() {
        let problem = malformed_delivery(ConnectorError::Malformed {
            detail: "data.customer.kind: must be \"consumer\" or \"business\"".into(),
        });
        assert_eq!(problem.status, 400);
        assert_eq!(problem.errors[0].pointer, "/data/customer/kind");
        assert_eq!(
            problem.errors[0].detail,
            "must be \"consumer\" or \"business\""
        );
        let whole = malformed_delivery(ConnectorError::Malformed {
            detail: "the body is not JSON (line 1, column 2)".into(),
        });
        assert_eq!(whole.errors[0].pointer, "");
    }
}
