//! `/v1/webhook-endpoints` and `/v1/events`: where a partner (or a creditor) wants events, and the
//! events themselves, listed and replayed.
//!
//! - An endpoint is its owner's (the key's partner or creditor): another owner's endpoint answers
//!   404, as one that does not exist. A partner's endpoint hears every one of its creditors; a
//!   creditor's only itself.
//! - `event_types` names the types an endpoint takes; omitted, or `["*"]`, is every type (new
//!   types included). An empty list is refused: an endpoint that takes nothing is a mistake.
//! - The signing secret (`whsec_…`) is made by the gateway, shown once in the answer to the
//!   creation and kept sealed with the encryption key; a gateway without that key answers 503.
//! - `GET /v1/events` lists the events of the creditors the key reaches; a replay re-sends one,
//!   with the same `webhook-id`, to the caller's endpoints that take its type (or to the one
//!   endpoint named).

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use forfall_connector::standard_webhooks::Secret;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Page, PageQuery, page_cursor, page_limit};
use crate::api::AppState;
use crate::api::auth::Caller;
use crate::api::idempotency::SealForReplay;
use crate::api::json::{Body, OptionalBody, Query, non_null};
use crate::api::problem::{FieldError, Problem};
use crate::domain::{EVENT_TYPES, EndpointId, EventId, EventTypes, WebhookEndpoint, WebhookEvent};
use crate::store::EventFilter;
use crate::webhooks::{replay_job, subscribed};

/// The longest endpoint URL accepted.
pub const MAX_URL_CHARS: usize = 2048;
/// The longest description accepted.
pub const MAX_DESCRIPTION_CHARS: usize = 500;

/// An endpoint as the API shows it (never its secret).
pub fn endpoint_json(endpoint: &WebhookEndpoint) -> Value {
    json!({
        "id": endpoint.id,
        "url": endpoint.url,
        "event_types": endpoint.event_types.to_list(),
        "description": endpoint.description,
        "partner_id": endpoint.owner.partner(),
        "creditor_id": endpoint.owner.creditor(),
        "created_at": endpoint.created_at,
    })
}

/// An event as the API lists it.
pub fn event_json(event: &WebhookEvent) -> Value {
    json!({
        "id": event.id,
        "type": event.event_type,
        "creditor_id": event.creditor_id,
        "created_at": event.created_at,
        "data": event.data,
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateEndpoint {
    url: String,
    #[serde(default, deserialize_with = "non_null")]
    event_types: Option<Vec<String>>,
    #[serde(default, deserialize_with = "non_null")]
    description: Option<String>,
}

/// The URL, if it is an absolute `http(s)` URL with a host and no credentials.
fn check_url(url: &str, errors: &mut Vec<FieldError>) -> Option<String> {
    let mut fail = |detail: &str| {
        errors.push(FieldError {
            pointer: "/url".into(),
            detail: detail.into(),
        });
        None
    };
    let url = url.trim();
    if url.chars().count() > MAX_URL_CHARS {
        return fail(&format!("must be at most {MAX_URL_CHARS} characters"));
    }
    let Ok(parsed) = reqwest::Url::parse(url) else {
        return fail("must be an absolute http:// or https:// URL");
    };
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return fail("must be an absolute http:// or https:// URL");
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return fail("must carry no user name or password: verify the signature instead");
    }
    Some(parsed.to_string())
}

/// The event types: known, each once, `*` alone.
fn check_event_types(types: Option<&[String]>, errors: &mut Vec<FieldError>) -> EventTypes {
    let Some(types) = types else {
        return EventTypes::All;
    };
    let before = errors.len();
    let mut fail = |pointer: String, detail: String| errors.push(FieldError { pointer, detail });
    if types.is_empty() {
        fail(
            "/event_types".into(),
            "must name at least one event type, or [\"*\"] for every type".into(),
        );
    }
    for (i, t) in types.iter().enumerate() {
        if t == EventTypes::ALL {
            if types.len() > 1 {
                fail(
                    format!("/event_types/{i}"),
                    "`*` (every type) stands alone".into(),
                );
            }
        } else if !EVENT_TYPES.contains(&t.as_str()) {
            fail(
                format!("/event_types/{i}"),
                format!(
                    "unknown event type `{t}`; known: {}",
                    EVENT_TYPES.join(", ")
                ),
            );
        } else if types[..i].contains(t) {
            fail(format!("/event_types/{i}"), format!("`{t}` is repeated"));
        }
    }
    if errors.len() > before {
        return EventTypes::All;
    }
    EventTypes::from_list(types.to_vec())
}

fn no_key() -> Problem {
    Problem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "webhooks-unavailable",
        "Webhook endpoints are unavailable",
    )
    .with_detail(
        "this gateway has no encryption key to keep signing secrets with \
         (FORFALL_ENCRYPTION_KEY); ask its operator",
    )
}

pub async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Body(body): Body<CreateEndpoint>,
) -> Result<Response, Problem> {
    let mut errors = Vec::new();
    let url = check_url(&body.url, &mut errors);
    let event_types = check_event_types(body.event_types.as_deref(), &mut errors);
    let description = body
        .description
        .map(|d| d.trim().to_owned())
        .filter(|d| !d.is_empty());
    if description
        .as_ref()
        .is_some_and(|d| d.chars().count() > MAX_DESCRIPTION_CHARS)
    {
        errors.push(FieldError {
            pointer: "/description".into(),
            detail: format!("must be at most {MAX_DESCRIPTION_CHARS} characters"),
        });
    }
    if !errors.is_empty() {
        return Err(Problem::validation(errors));
    }
    let Some(url) = url else {
        return Err(Problem::field("/url", "must be an absolute http(s) URL"));
    };
    let key = state.encryption_key.as_ref().ok_or_else(no_key)?;
    let id = EndpointId::generate();
    let secret = Secret::generate();
    let endpoint = WebhookEndpoint {
        sealed_secret: key.seal(secret.to_string().as_bytes(), id.as_str()),
        id,
        owner: caller.owner.clone(),
        url,
        event_types,
        description,
        created_at: crate::store::to_stored_precision(state.clock.now()),
        deleted_at: None,
    };
    state.store.create_webhook_endpoint(&endpoint).await?;
    let mut shown = endpoint_json(&endpoint);
    shown["secret"] = json!(secret.to_string());
    let mut response = (StatusCode::CREATED, axum::Json(shown)).into_response();
    // A retry with the same Idempotency-Key sees the same secret; it is kept sealed meanwhile.
    response.extensions_mut().insert(SealForReplay);
    Ok(response)
}

pub async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(query): Query<PageQuery>,
) -> Result<axum::Json<Page>, Problem> {
    let limit = page_limit(query.limit)?;
    let after = page_cursor(query.cursor, EndpointId::parse)?;
    let endpoints = state
        .store
        .webhook_endpoints_of(&caller.owner, after.as_ref(), limit + 1)
        .await?;
    Ok(axum::Json(Page::of(
        endpoints,
        limit,
        |e| e.id.to_string(),
        endpoint_json,
    )))
}

fn no_endpoint() -> Problem {
    Problem::not_found().with_detail("no webhook endpoint by that id for this key")
}

pub async fn get(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(endpoint): Path<String>,
) -> Result<axum::Json<Value>, Problem> {
    let found = state
        .store
        .webhook_endpoint_of(&caller.owner, &EndpointId::from(endpoint.as_str()))
        .await?
        .ok_or_else(no_endpoint)?;
    Ok(axum::Json(endpoint_json(&found)))
}

/// Deletes the endpoint: it receives nothing more, and deliveries waiting for it are dropped.
pub async fn delete(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(endpoint): Path<String>,
) -> Result<StatusCode, Problem> {
    let deleted = state
        .store
        .delete_webhook_endpoint(
            &caller.owner,
            &EndpointId::from(endpoint.as_str()),
            state.clock.now(),
        )
        .await?;
    if deleted {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(no_endpoint())
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    #[serde(default)]
    cursor: Option<String>,
    #[serde(default)]
    limit: Option<u32>,
    #[serde(default, rename = "type")]
    event_type: Option<String>,
    #[serde(default)]
    creditor_id: Option<String>,
}

/// The events of the creditors the caller reaches, oldest first.
pub async fn events(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(query): Query<EventsQuery>,
) -> Result<axum::Json<Page>, Problem> {
    let limit = page_limit(query.limit)?;
    if let Some(t) = &query.event_type
        && !EVENT_TYPES.contains(&t.as_str())
    {
        return Err(Problem::field(
            "/query/type",
            format!("unknown event type `{t}`"),
        ));
    }
    let creditor = match &query.creditor_id {
        Some(id) => Some(caller.creditor(&state, id).await?.id),
        None => None,
    };
    let filter = EventFilter {
        creditor,
        event_type: query.event_type,
        after: page_cursor(query.cursor, EventId::parse)?,
    };
    let events = state
        .store
        .events_of(&caller.owner, &filter, limit + 1)
        .await?;
    Ok(axum::Json(Page::of(
        events,
        limit,
        |e| e.id.to_string(),
        event_json,
    )))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Replay {
    #[serde(default, deserialize_with = "non_null")]
    endpoint_id: Option<String>,
}

/// Re-sends an event (same `webhook-id`) to the caller's endpoints that take its type, or to
/// the one named. The body is optional.
pub async fn replay(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(event): Path<String>,
    OptionalBody(replay): OptionalBody<Replay>,
) -> Result<Response, Problem> {
    let found = state
        .store
        .event_of(&caller.owner, &EventId::from(event.as_str()))
        .await?
        .ok_or_else(|| Problem::not_found().with_detail("no event by that id for this key"))?;
    let endpoints = match &replay.endpoint_id {
        Some(id) => {
            let endpoint = state
                .store
                .webhook_endpoint_of(&caller.owner, &EndpointId::from(id.as_str()))
                .await?
                .ok_or_else(no_endpoint)?;
            if !endpoint.event_types.matches(&found.event_type) {
                return Err(Problem::field(
                    "/endpoint_id",
                    format!("endpoint {id} does not take `{}` events", found.event_type),
                ));
            }
            vec![endpoint]
        }
        None => {
            state
                .store
                .webhook_endpoints_of(&caller.owner, None, super::MAX_LIMIT)
                .await?
        }
    };
    let now = state.clock.now();
    let jobs: Vec<_> = subscribed(&endpoints, &found.event_type)
        .map(|endpoint| replay_job(&found.creditor_id, &found.id, &endpoint.id, now))
        .collect();
    if jobs.is_empty() {
        return Err(Problem::conflict(format!(
            "none of your endpoints takes `{}` events",
            found.event_type
        )));
    }
    state.store.enqueue_jobs(&jobs, now).await?;
    state.jobs_wake.notify_one();
    let deliveries: Vec<Value> = jobs
        .iter()
        .map(|(_, job)| json!({ "endpoint_id": job.payload["endpoint"] }))
        .collect();
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(json!({ "event_id": found.id, "deliveries": deliveries })),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_must_be_absolute_http_without_credentials() {
        for bad in [
            "",
            "not a url",
            "/hooks",
            "ftp://partner.example/hooks",
            "mailto:ops@partner.example",
            "https://user:pass@partner.example/hooks",
        ] {
            let mut errors = Vec::new();
            assert_eq!(check_url(bad, &mut errors), None, "{bad}");
            assert_eq!(errors[0].pointer, "/url", "{bad}");
        }
        let mut errors = Vec::new();
        assert_eq!(
            check_url(" https://partner.example/hooks?x=1 ", &mut errors).as_deref(),
            Some("https://partner.example/hooks?x=1")
        );
        assert!(errors.is_empty());
    }

    #[test]
    fn event_types_are_known_each_once_and_the_wildcard_stands_alone() {
        let list = |types: &[&str]| types.iter().map(|t| (*t).to_owned()).collect::<Vec<_>>();
        let mut errors = Vec::new();
        assert_eq!(check_event_types(None, &mut errors), EventTypes::All);
        assert_eq!(
            check_event_types(Some(&list(&["*"])), &mut errors),
            EventTypes::All
        );
        assert_eq!(
            check_event_types(Some(&list(&["case.withdrawn"])), &mut errors),
            EventTypes::Only(list(&["case.withdrawn"]))
        );
        assert!(errors.is_empty());
        check_event_types(
            Some(&list(&[
                "case.withdrawn",
                "invoice.nope",
                "case.withdrawn",
                "*",
            ])),
            &mut errors,
        );
        let pointers: Vec<_> = errors.iter().map(|e| e.pointer.as_str()).collect();
        assert_eq!(
            pointers,
            ["/event_types/1", "/event_types/2", "/event_types/3"]
        );
        let mut errors = Vec::new();
        check_event_types(Some(&[]), &mut errors);
        assert_eq!(errors[0].pointer, "/event_types");
    }
}
