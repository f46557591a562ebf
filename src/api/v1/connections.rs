//! `/v1/creditors/{creditor}/connections`: a creditor's links to its accounting platforms.
//!
//! - **Create** takes the platform and the credentials it needs, checked field by field
//!   (`/credentials/consumer_token`), then sealed with the gateway's encryption key exactly as
//!   `forfall connections add` seals them. Credentials are write-only: no answer ever shows them.
//!   No platform Forfall supports uses OAuth2 (Tripletex takes a consumer and an employee token;
//!   the generic connector a shared webhook secret and, for polling, a feed URL and token), so
//!   there is no authorisation-code flow.
//! - **Sync** answers 202 at once; the pass runs in the background through [`Ingest::run_pass`]
//!   under the same lease as the poll loop, and `GET` then shows its outcome.
//! - **Delete** is soft: invoices and customers reference their connection (foreign keys), and
//!   their history stays. The connection is marked `deleted`, its credentials are erased, and it
//!   is never synced again nor accepts webhooks.

use std::sync::Arc;
use std::time::Duration;

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use forfall_connector::client::HttpSettings;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{Page, PageQuery, page_cursor, page_limit};
use crate::api::AppState;
use crate::api::auth::Caller;
use crate::api::json::{Body, OptionalBody, Query};
use crate::api::problem::{FieldError, Problem};
use crate::domain::{Connection, ConnectionId, ConnectionStatus, Creditor};
use crate::secrets::EncryptionKey;
use crate::sync::connections::{ConnectionSecrets, PLATFORMS, connector_for};
use crate::sync::{Ingest, PassLease};

/// How long an API-started pass holds the connection's lease between two pages.
const SYNC_LEASE: Duration = Duration::from_secs(120);

/// A connection as the API shows it: never its credentials.
pub fn connection_json(connection: &Connection) -> Value {
    json!({
        "id": connection.id,
        "creditor_id": connection.creditor_id,
        "platform": connection.platform,
        "status": connection.status.as_str(),
        "last_synced_at": connection.last_synced_at,
        "last_full_sync_at": connection.sync.last_full_sync_at,
        "last_error": connection.last_error,
        "syncing": connection.sync.in_pass,
        "webhook_path": format!("/hooks/{}", connection.id),
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateConnection {
    platform: String,
    credentials: Value,
}

/// What a credential field holds.
#[derive(Debug, Clone, Copy)]
enum Kind {
    /// A secret: non-empty text, never echoed in an error.
    Secret,
    /// Non-empty text.
    Text,
    /// An `http` or `https` URL.
    Url,
    /// A whole number in this range.
    Count(u64, u64),
    /// A Standard Webhooks secret (`whsec_` and base64).
    WebhookSecret,
    /// A shared HMAC key as text, at least [`MIN_SHARED_SECRET`] characters.
    SharedSecret,
}

struct Field {
    name: &'static str,
    kind: Kind,
    required: bool,
}

const fn field(name: &'static str, kind: Kind, required: bool) -> Field {
    Field {
        name,
        kind,
        required,
    }
}

/// Tripletex: the consumer token (Forfall's, per integration) and the employee token (the
/// creditor's), and optional tuning. `webhook_secret` is the shared secret Tripletex signs its
/// webhooks with; absent, the gateway makes one (it subscribes to Tripletex's webhooks itself).
const TRIPLETEX: &[Field] = &[
    field("consumer_token", Kind::Secret, true),
    field("employee_token", Kind::Secret, true),
    field("base_url", Kind::Url, false),
    field("company_id", Kind::Text, false),
    field("lookback_days", Kind::Count(1, 36_600), false),
    field("page_size", Kind::Count(1, 10_000), false),
    field("payment_type", Kind::Text, false),
    field("requests_per_second", Kind::Count(1, 1_000), false),
    field("webhook_secret", Kind::SharedSecret, false),
];

/// The generic connector: the partner signs its deliveries with `webhook_secret` (Standard
/// Webhooks), so the partner chooses it; `base_url` and `token` together let Forfall poll a feed.
const GENERIC: &[Field] = &[
    field("webhook_secret", Kind::WebhookSecret, true),
    field("base_url", Kind::Url, false),
    field("token", Kind::Secret, false),
];

fn fields_of(platform: &str) -> Option<&'static [Field]> {
    match platform {
        "tripletex" => Some(TRIPLETEX),
        "generic" => Some(GENERIC),
        _ => None,
    }
}

/// The shortest webhook secret accepted for Tripletex (it is an HMAC key).
const MIN_SHARED_SECRET: usize = 16;

/// Checks `credentials` for `platform`: every field at fault, each named by its JSON pointer.
/// On success, the secrets to seal.
fn check_credentials(platform: &str, credentials: &Value) -> Result<ConnectionSecrets, Problem> {
    let Some(fields) = fields_of(platform) else {
        return Err(Problem::field(
            "/platform",
            format!("`{platform}` is not one of {}", PLATFORMS.join(", ")),
        ));
    };
    let Some(given) = credentials.as_object() else {
        return Err(Problem::field("/credentials", "must be a JSON object"));
    };
    let mut errors = Vec::new();
    let mut fail = |name: &str, detail: String| {
        errors.push(FieldError {
            pointer: format!("/credentials/{name}"),
            detail,
        });
    };
    for name in given.keys() {
        if !fields.iter().any(|f| f.name == name) {
            let known: Vec<&str> = fields.iter().map(|f| f.name).collect();
            fail(
                name,
                format!(
                    "is not a {platform} credential (expected {})",
                    known.join(", ")
                ),
            );
        }
    }
    for spec in fields {
        match given.get(spec.name) {
            None | Some(Value::Null) if spec.required => fail(spec.name, "is required".into()),
            None | Some(Value::Null) => {}
            Some(value) => {
                if let Err(why) = check_value(spec.kind, value) {
                    fail(spec.name, why);
                }
            }
        }
    }
    if platform == "generic" {
        let present = |name: &str| given.get(name).is_some_and(|v| !v.is_null());
        match (present("base_url"), present("token")) {
            (true, false) => fail(
                "token",
                "is required with base_url (the feed's token)".into(),
            ),
            (false, true) => fail("base_url", "is required with token (the feed's URL)".into()),
            _ => {}
        }
    }
    if !errors.is_empty() {
        return Err(Problem::validation(errors));
    }
    let mut settings: Map<String, Value> = given
        .iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let webhook_secret = match settings.remove("webhook_secret") {
        Some(Value::String(secret)) => secret,
        _ => match platform {
            "generic" => forfall_connector::standard_webhooks::Secret::generate().to_string(),
            _ => random_secret(),
        },
    };
    let settings = if settings.is_empty() && platform == "generic" {
        Value::Null
    } else {
        Value::Object(settings)
    };
    // The connector itself must accept them before they are stored.
    connector_for(platform, &settings, HttpSettings::default())
        .map_err(|e| Problem::field("/credentials", e.to_string()))?;
    Ok(ConnectionSecrets {
        settings,
        webhook_secret: Some(webhook_secret),
    })
}

/// Why `value` does not fit `kind`; never quotes a secret.
fn check_value(kind: Kind, value: &Value) -> Result<(), String> {
    let text = || match value {
        Value::String(text) if !text.trim().is_empty() => Ok(text.as_str()),
        Value::String(_) => Err("must not be empty".to_owned()),
        _ => Err("must be a string".to_owned()),
    };
    match kind {
        Kind::Secret | Kind::Text => text().map(|_| ()),
        Kind::SharedSecret => {
            if text()?.chars().count() < MIN_SHARED_SECRET {
                return Err(format!("must be at least {MIN_SHARED_SECRET} characters"));
            }
            Ok(())
        }
        Kind::Url => {
            let url = text()?;
            match reqwest::Url::parse(url) {
                Ok(url) if matches!(url.scheme(), "http" | "https") && url.has_host() => Ok(()),
                Ok(_) => Err("must be an http or https URL".into()),
                Err(_) => Err("is not a URL".into()),
            }
        }
        Kind::Count(min, max) => match value.as_u64() {
            Some(n) if (min..=max).contains(&n) => Ok(()),
            _ => Err(format!("must be a whole number from {min} to {max}")),
        },
        Kind::WebhookSecret => {
            let secret = text()?;
            forfall_connector::standard_webhooks::Secret::parse(secret)
                .map(|_| ())
                .map_err(|e| e.to_string())
        }
    }
}

/// 32 random bytes as URL-safe base64: a shared secret a platform can store as text.
fn random_secret() -> String {
    use base64::Engine;
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn unavailable(kind: &str, title: &str, detail: &str) -> Problem {
    Problem::new(StatusCode::SERVICE_UNAVAILABLE, kind, title).with_detail(detail)
}

/// The ingest service, or 503 where this gateway does not ingest.
fn ingest(state: &AppState) -> Result<&Arc<Ingest>, Problem> {
    state.ingest.as_ref().ok_or_else(|| {
        unavailable(
            "ingest-off",
            "This gateway does not sync",
            "this gateway was started without ingest; connections cannot be created or synced here",
        )
    })
}

/// The key that seals credentials, or 503 when the gateway has none.
fn sealing_key(ingest: &Ingest) -> Result<&EncryptionKey, Problem> {
    ingest.connectors.key().ok_or_else(|| {
        unavailable(
            "no-encryption-key",
            "Credentials cannot be sealed",
            "the gateway has no encryption key (FORFALL_ENCRYPTION_KEY); connections cannot be \
             created or synced until it is configured",
        )
    })
}

fn location(creditor: &Creditor, connection: &Connection) -> Option<HeaderValue> {
    HeaderValue::from_str(&format!(
        "/v1/creditors/{}/connections/{}",
        creditor.id, connection.id
    ))
    .ok()
}

pub async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(creditor): Path<String>,
    Body(body): Body<CreateConnection>,
) -> Result<Response, Problem> {
    let creditor = caller.creditor(&state, &creditor).await?;
    let secrets = check_credentials(&body.platform, &body.credentials)?;
    let ingest = ingest(&state)?;
    let key = sealing_key(ingest)?;
    let connection = secrets
        .create_connection(
            state.store.as_ref(),
            key,
            &creditor.id,
            &body.platform,
            state.clock.now(),
        )
        .await?;
    tracing::info!(connection = %connection.id, creditor = %creditor.id, platform = %connection.platform, "connection created");
    let mut response = (
        StatusCode::CREATED,
        axum::Json(connection_json(&connection)),
    )
        .into_response();
    if let Some(location) = location(&creditor, &connection) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

pub async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(creditor): Path<String>,
    Query(query): Query<PageQuery>,
) -> Result<axum::Json<Page>, Problem> {
    let creditor = caller.creditor(&state, &creditor).await?;
    let limit = page_limit(query.limit)?;
    let after = page_cursor(query.cursor, ConnectionId::parse)?;
    let connections = state
        .store
        .connections_of(&creditor.id, after.as_ref(), limit + 1)
        .await?;
    Ok(axum::Json(Page::of(
        connections,
        limit,
        |c| c.id.to_string(),
        connection_json,
    )))
}

/// The creditor's connection `id`, unless it is deleted: 404 otherwise.
async fn live_connection(
    state: &AppState,
    creditor: &Creditor,
    id: &str,
) -> Result<Connection, Problem> {
    state
        .store
        .connection(&creditor.id, &ConnectionId::from(id))
        .await?
        .filter(|c| c.status != ConnectionStatus::Deleted)
        .ok_or_else(|| {
            Problem::not_found().with_detail("no connection by that id for this creditor")
        })
}

pub async fn get(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((creditor, connection)): Path<(String, String)>,
) -> Result<axum::Json<Value>, Problem> {
    let creditor = caller.creditor(&state, &creditor).await?;
    let connection = live_connection(&state, &creditor, &connection).await?;
    Ok(axum::Json(connection_json(&connection)))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncBody {
    /// A full pass (every invoice, and open ones no longer listed read again) rather than an
    /// incremental one.
    #[serde(default)]
    full: bool,
}

/// `POST …/connections/{connection}/sync`: 202, and a pass runs in the background.
pub async fn sync(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((creditor, connection)): Path<(String, String)>,
    // No body at all is an incremental pass.
    OptionalBody(body): OptionalBody<SyncBody>,
) -> Result<Response, Problem> {
    let creditor = caller.creditor(&state, &creditor).await?;
    let connection = live_connection(&state, &creditor, &connection).await?;
    let ingest = ingest(&state)?.clone();
    sealing_key(&ingest)?;
    // The poll loop's lease: one pass per connection at a time, whoever starts it.
    let lease = PassLease {
        name: format!("poll:{}", connection.id),
        owner: format!("api-sync-{}", uuid::Uuid::new_v4().simple()),
        ttl: SYNC_LEASE,
    };
    let held = state
        .store
        .acquire_lease(&lease.name, &lease.owner, state.clock.now(), lease.ttl)
        .await?;
    if !held {
        return Err(Problem::conflict(format!(
            "a sync of connection {} is already running; its outcome shows on the connection",
            connection.id
        )));
    }
    let id = connection.id.clone();
    let wake = state.jobs_wake.clone();
    tokio::spawn(async move {
        match ingest.run_pass(&id, body.full, Some(&lease), &|_| {}).await {
            Ok(stats) => {
                tracing::info!(connection = %id, pages = stats.pages, invoices = stats.invoices, "API sync done");
                if let Err(e) = ingest.record_success(&id).await {
                    tracing::warn!(connection = %id, error = %e, "cannot mark the connection healthy");
                }
                wake.notify_one();
            }
            Err(e) => {
                tracing::warn!(connection = %id, error = %e, "API sync failed");
                ingest.record_failure(&id, &e).await;
            }
        }
        if let Err(e) = ingest.store.release_lease(&lease.name, &lease.owner).await {
            tracing::warn!(connection = %id, error = %e, "cannot release the sync lease; it expires on its own");
        }
    });
    // The pass is started: the answer says so, though the task may not yet have marked it.
    let mut answer = connection_json(&connection);
    answer["syncing"] = Value::Bool(true);
    let mut response = (StatusCode::ACCEPTED, axum::Json(answer)).into_response();
    if let Some(location) = location(&creditor, &connection) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// `DELETE …/connections/{connection}`: 204; soft (see the module's documentation).
pub async fn delete(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((creditor, connection)): Path<(String, String)>,
) -> Result<Response, Problem> {
    let creditor = caller.creditor(&state, &creditor).await?;
    let id = ConnectionId::from(connection.as_str());
    if !state.store.delete_connection(&creditor.id, &id).await? {
        return Err(Problem::not_found().with_detail("no connection by that id for this creditor"));
    }
    if let Some(ingest) = &state.ingest {
        ingest.forget_connection(&id);
    }
    tracing::info!(connection = %id, creditor = %creditor.id, "connection deleted");
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pointers(problem: &Problem) -> Vec<&str> {
        problem.errors.iter().map(|e| e.pointer.as_str()).collect()
    }

    #[test]
    fn tripletex_needs_both_tokens_and_names_each_missing_one() {
        let problem = check_credentials("tripletex", &json!({})).unwrap_err();
        assert_eq!(problem.status, 422);
        assert_eq!(
            pointers(&problem),
            ["/credentials/consumer_token", "/credentials/employee_token"]
        );
        let ok = check_credentials(
            "tripletex",
            &json!({"consumer_token": "c-token", "employee_token": "e-token"}),
        )
        .unwrap();
        assert_eq!(ok.settings["consumer_token"], "c-token");
        assert!(ok.webhook_secret.is_some_and(|s| s.len() >= 32));
    }

    #[test]
    fn a_wrong_credential_is_named_without_quoting_the_secret() {
        let problem = check_credentials(
            "tripletex",
            &json!({
                "consumer_token": 12345,
                "employee_token": "",
                "base_url": "ftp://example.com",
                "page_size": 0,
                "password": "hunter2-secret",
            }),
        )
        .unwrap_err();
        assert_eq!(
            pointers(&problem),
            [
                "/credentials/password",
                "/credentials/consumer_token",
                "/credentials/employee_token",
                "/credentials/base_url",
                "/credentials/page_size",
            ]
        );
        let text = serde_json::to_string(&problem).unwrap();
        assert!(
            !text.contains("12345") && !text.contains("hunter2"),
            "{text}"
        );
    }

    #[test]
    fn generic_needs_a_standard_webhooks_secret_and_a_feed_url_with_its_token() {
        let problem =
            check_credentials("generic", &json!({"webhook_secret": "plain"})).unwrap_err();
        assert_eq!(pointers(&problem), ["/credentials/webhook_secret"]);
        let secret = forfall_connector::standard_webhooks::Secret::generate().to_string();
        let problem = check_credentials(
            "generic",
            &json!({"webhook_secret": secret, "base_url": "https://erp.example/api"}),
        )
        .unwrap_err();
        assert_eq!(pointers(&problem), ["/credentials/token"]);
        let push_only = check_credentials("generic", &json!({"webhook_secret": secret})).unwrap();
        assert_eq!(push_only.settings, Value::Null);
        assert_eq!(push_only.webhook_secret.as_deref(), Some(secret.as_str()));
    }

    #[test]
    fn an_unknown_platform_or_non_object_credentials_are_named() {
        let problem = check_credentials("fiken", &json!({})).unwrap_err();
        assert_eq!(pointers(&problem), ["/platform"]);
        let problem = check_credentials("tripletex", &json!("token")).unwrap_err();
        assert_eq!(pointers(&problem), ["/credentials"]);
    }

    #[test]
    fn a_connection_shows_no_credentials() {
        let key = EncryptionKey::from_base64(&EncryptionKey::generate_base64()).unwrap();
        let id = ConnectionId::from("conn_1");
        let secrets = ConnectionSecrets {
            settings: json!({"consumer_token": "c-secret", "employee_token": "e-secret"}),
            webhook_secret: Some("w-secret".into()),
        };
        let connection = Connection {
            id: id.clone(),
            creditor_id: "cred_1".into(),
            platform: "tripletex".into(),
            credentials: secrets.seal(&key, &id),
            sync_cursor: Some("cursor".into()),
            status: ConnectionStatus::Active,
            last_error: None,
            last_synced_at: None,
            sync: Default::default(),
        };
        let text = connection_json(&connection).to_string();
        assert!(
            !text.contains("secret") && !text.contains("credentials"),
            "{text}"
        );
        assert!(!text.contains("cursor"), "{text}");
    }
}
