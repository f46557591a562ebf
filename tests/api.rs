//! The partner and creditor API (`/v1`) through HTTP on both backends: keys and scopes, rate
//! limits, idempotency, creditors, pull mode, and tenant isolation over every route
//! `openapi.yaml` describes.

mod common;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use forfall::clock::SystemClock;
use forfall::config::ApiRate;
use forfall::domain::{
    ConnectionId, Country, Currency, CustomerFacts, CustomerKind, EventSource, InvoiceFacts,
    Language, Money, NewCase, NewCreditor, NewJob, Owner, Scopes, SealedCredentials,
};
use forfall::store::Store;
use reqwest::StatusCode;
use rust_decimal::Decimal;
use serde_json::{Value, json};

on_both_backends!(
    a_request_without_a_live_key_is_401_and_a_read_key_cannot_write,
    a_key_over_its_rate_is_told_when_to_retry,
    an_idempotency_key_replays_the_first_answer_and_refuses_another_request,
    a_partner_creates_lists_and_updates_its_creditors_and_a_bad_policy_names_its_key,
    an_opt_out_through_the_api_is_logged_filtered_and_reversible,
    pull_mode_offers_a_message_until_it_is_acknowledged,
    every_route_answers_another_tenant_as_if_nothing_were_there,
    a_creditor_neither_sees_nor_resends_its_partners_webhook_deliveries,
    a_stale_idempotency_claim_is_taken_over_by_the_same_request_only_and_its_late_answer_ignored,
    a_missing_field_is_named_by_its_own_pointer,
    an_action_refuses_a_body_it_cannot_take_and_applies_nothing,
    a_body_over_the_limit_is_413_with_or_without_an_idempotency_key,
    a_body_is_taken_only_as_json,
    a_patch_refuses_null_where_the_schema_has_none,
    an_idempotency_key_is_visible_ascii_only,
    a_cursor_the_server_did_not_give_is_refused,
);

struct Server {
    base: String,
    stop: tokio::sync::oneshot::Sender<()>,
    done: tokio::task::JoinHandle<()>,
}

impl Server {
    async fn start(store: Arc<dyn Store>, api_rate: ApiRate) -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        // Ingest with an encryption key, as serve has it (webhook endpoints seal their secrets).
        let key = forfall::secrets::EncryptionKey::from_base64(
            &forfall::secrets::EncryptionKey::generate_base64(),
        )
        .unwrap();
        let ingest = Arc::new(forfall::sync::Ingest::new(
            store.clone(),
            Arc::new(SystemClock),
            forfall::sync::connections::Connectors::new(
                Some(key),
                forfall_connector::client::HttpSettings::default(),
            ),
            Arc::new(forfall::api::metrics::Metrics::default()),
        ));
        let done = tokio::spawn(async move {
            forfall::server::serve(
                listener,
                store,
                Arc::new(SystemClock),
                "api-test".into(),
                Duration::from_secs(5),
                async {
                    let _ = stopped.await;
                },
                forfall::server::Background {
                    api_rate,
                    ingest: Some(ingest),
                    ..Default::default()
                },
            )
            .await
            .expect("serve");
        });
        Server { base, stop, done }
    }

    async fn stop(self) {
        self.stop.send(()).unwrap();
        self.done.await.unwrap();
    }
}

/// Generous enough that no test but the rate-limit one meets it.
const UNLIMITED: ApiRate = ApiRate {
    per_second: 10_000,
    burst: 10_000,
};

fn now() -> DateTime<Utc> {
    Utc::now()
}

fn day(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

/// One tenant: a partner with a creditor holding a connection, a customer, an overdue invoice, a
/// case message waiting to be pulled and a dead letter; keys for the partner and the creditor;
/// and the strings that must never reach another tenant.
struct Tenant {
    partner_key: String,
    creditor_key: String,
    creditor: String,
    connection: String,
    customer: String,
    invoice: String,
    message: String,
    job: String,
    endpoint: String,
    event: String,
    secrets: Vec<String>,
}

async fn key(store: &Arc<dyn Store>, owner: Owner, scopes: Scopes) -> String {
    let (token, hash) = forfall::api::auth::new_token();
    store
        .create_api_key(&owner, scopes, Some("test"), &hash, now())
        .await
        .unwrap();
    token
}

async fn tenant(store: &Arc<dyn Store>, name: &str) -> Tenant {
    let partner = store
        .create_partner(&format!("{name} Inkasso"), now())
        .await
        .unwrap();
    let creditor = store
        .create_creditor(
            &NewCreditor {
                name: format!("{name} Bakeri AS"),
                organisation_number: format!(
                    "9{:08}",
                    name.bytes().map(u32::from).product::<u32>() % 100_000_000
                ),
                country: Country::Norway,
                time_zone: None,
                language: Language::Nb,
                policy: json!({ "notice_days": 5 }),
                email: Some(format!("post@{}.example", name.to_lowercase())),
                partner_id: Some(partner.id.clone()),
            },
            now(),
        )
        .await
        .unwrap();
    let connection = store
        .create_connection(
            &creditor.id,
            &ConnectionId::generate(),
            "tripletex",
            &SealedCredentials(vec![1, 2, 3]),
            now(),
        )
        .await
        .unwrap();
    let customer = store
        .upsert_customer(
            &creditor.id,
            &connection.id,
            &CustomerFacts {
                platform_id: format!("{name}-C1"),
                kind: CustomerKind::Business,
                name: format!("{name} Kunde AS"),
                organisation_number: Some("987654321".into()),
                national_id: None,
                email: None,
                postal_address: None,
                platform_dunning: false,
            },
        )
        .await
        .unwrap()
        .id;
    let amount = Decimal::new(125_000, 2);
    let invoice = store
        .upsert_invoice(
            &creditor.id,
            &connection.id,
            &InvoiceFacts {
                platform_id: format!("{name}-1001"),
                number: format!("{name}-F1001"),
                customer_platform_id: format!("{name}-C1"),
                issued: day("2026-10-01"),
                due: day("2026-10-15"),
                currency: Currency::NOK,
                amount,
                outstanding: amount,
                payment_reference: Some("12345678903".into()),
                credited: false,
            },
            EventSource::Poll,
            now(),
        )
        .await
        .unwrap()
        .id;
    // The lifecycle as ingest leaves it, evaluated today: a warning is out.
    let policy = forfall::rules::policy::Policy::from_json(&creditor.policy).unwrap();
    let today = Utc::now().date_naive();
    let mut state = forfall::lifecycle::InvoiceState::new(
        format!("{name}-1001"),
        forfall::lifecycle::InvoiceFacts::new(day("2026-10-01"), day("2026-10-15"), amount, today),
    );
    let decisions = forfall::lifecycle::evaluate(&policy, &mut state, today);
    let update = forfall::sync::reevaluate::lifecycle_update(
        &policy,
        &connection.id,
        &state,
        &decisions,
        Vec::new(),
        today,
        now(),
    );
    let version = store
        .invoice(&creditor.id, &invoice)
        .await
        .unwrap()
        .unwrap()
        .version;
    store
        .save_lifecycle(&creditor.id, &invoice, version, &update, now())
        .await
        .unwrap();
    let case = store
        .open_case(
            &creditor.id,
            &NewCase {
                invoice_id: invoice.clone(),
                transfer_key: format!("transfer:{name}"),
                amount: Money::new(amount, Currency::NOK).unwrap(),
                transfer_on: day("2026-11-01"),
                free_withdrawal_until: day("2026-11-11"),
                first_reminder_on: day("2026-11-06"),
            },
            now(),
        )
        .await
        .unwrap();
    let message = format!("transfer:{name}:msg");
    store
        .record_pipeline_message(
            &creditor.id,
            &case.id,
            &message,
            "case.transfer",
            &json!({ "type": "case.transfer", "id": message, "debtor": format!("{name} Kunde AS") }),
            false,
            now(),
        )
        .await
        .unwrap();
    store
        .record_dead_letter(
            &creditor.id,
            &NewJob {
                kind: "pipeline".into(),
                idempotency_key: format!("dead:{name}"),
                payload: json!({ "invoice": invoice }),
                run_after: now(),
                chain: None,
            },
            "the agency answered 422",
            now(),
        )
        .await
        .unwrap();
    let job = store
        .jobs(&creditor.id)
        .await
        .unwrap()
        .into_iter()
        .find(|j| j.idempotency_key == format!("dead:{name}"))
        .unwrap()
        .id;
    let endpoint = forfall::domain::WebhookEndpoint {
        id: forfall::domain::EndpointId::generate(),
        owner: Owner::Partner(partner.id.clone()),
        url: format!("https://{}.example/hooks", name.to_lowercase()),
        event_types: forfall::domain::EventTypes::All,
        description: Some(format!("{name} ERP")),
        sealed_secret: vec![0; 40],
        created_at: now(),
        deleted_at: None,
    };
    store.create_webhook_endpoint(&endpoint).await.unwrap();
    let event = store
        .record_event(
            &format!("event:{name}"),
            &forfall::domain::WebhookEvent {
                id: forfall::domain::EventId::generate(),
                creditor_id: creditor.id.clone(),
                event_type: "invoice.noticed".into(),
                data: json!({ "invoice_id": invoice, "number": format!("{name}-F1001") }),
                created_at: now(),
            },
        )
        .await
        .unwrap()
        .id;
    // A delivery to the partner's endpoint that failed for good: the partner's, not the
    // creditor's, dead letter.
    store
        .record_dead_letter(
            &creditor.id,
            &NewJob {
                kind: forfall::webhooks::DELIVERY_JOB.into(),
                idempotency_key: format!("deliver:{event}:{}", endpoint.id),
                payload: json!({ "event": event.as_str(), "endpoint": endpoint.id.as_str() }),
                run_after: now(),
                chain: None,
            },
            "the endpoint answered 410",
            now(),
        )
        .await
        .unwrap();
    let partner_key = key(store, Owner::Partner(partner.id.clone()), Scopes::ALL).await;
    let creditor_key = key(store, Owner::Creditor(creditor.id.clone()), Scopes::ALL).await;
    let secrets = vec![
        creditor.id.to_string(),
        creditor.name.clone(),
        creditor.organisation_number.clone(),
        partner.id.to_string(),
        connection.id.to_string(),
        customer.to_string(),
        format!("{name} Kunde AS"),
        invoice.to_string(),
        format!("{name}-F1001"),
        message.clone(),
        job.to_string(),
        case.id.to_string(),
        endpoint.id.to_string(),
        endpoint.url.clone(),
        event.to_string(),
    ];
    Tenant {
        partner_key,
        creditor_key,
        creditor: creditor.id.to_string(),
        connection: connection.id.to_string(),
        customer: customer.to_string(),
        invoice: invoice.to_string(),
        message,
        job: job.to_string(),
        endpoint: endpoint.id.to_string(),
        event: event.to_string(),
        secrets,
    }
}

async fn send(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    key: &str,
    body: Option<&Value>,
) -> (StatusCode, String, reqwest::header::HeaderMap) {
    let (content_type, body) = match body {
        Some(body) => (JSON, body.to_string()),
        None => (None, String::new()),
    };
    exchange(client, method, url, key, content_type, body, None).await
}

/// One request as given (content type, body and Idempotency-Key each optional): the status, the
/// body as text, the headers.
async fn exchange(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    key: &str,
    content_type: Option<&str>,
    body: impl Into<reqwest::Body>,
    idempotency_key: Option<&str>,
) -> (StatusCode, String, reqwest::header::HeaderMap) {
    let mut request = client.request(method, url).bearer_auth(key).body(body);
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    if let Some(idempotency_key) = idempotency_key {
        request = request.header("idempotency-key", idempotency_key);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    (status, response.text().await.unwrap(), headers)
}

/// How many of the creditors tenant `a`'s partner serves are named `name`.
async fn creditors_named(store: &Arc<dyn Store>, a: &Tenant, name: &str) -> usize {
    let creditor = store
        .creditor(&a.creditor.as_str().into())
        .await
        .unwrap()
        .unwrap();
    store
        .creditors_of(&Owner::Partner(creditor.partner_id.unwrap()), None, 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|c| c.name == name)
        .count()
}

async fn a_request_without_a_live_key_is_401_and_a_read_key_cannot_write(store: Arc<dyn Store>) {
    let a = tenant(&store, "Alfa").await;
    let server = Server::start(store.clone(), UNLIMITED).await;
    let client = reqwest::Client::new();
    let url = format!("{}/v1/creditors/{}", server.base, a.creditor);
    let anonymous = client.get(&url).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    assert_eq!(
        anonymous.headers()["content-type"],
        "application/problem+json"
    );
    let (status, _, _) = send(&client, reqwest::Method::GET, &url, "forfall_sk_nope", None).await;
    assert_eq!(status, 401);

    let read_only = key(
        &store,
        Owner::Creditor(a.creditor.as_str().into()),
        Scopes::parse("read").unwrap(),
    )
    .await;
    let (status, body, _) = send(&client, reqwest::Method::GET, &url, &read_only, None).await;
    assert_eq!(status, 200, "{body}");
    let (status, body, _) = send(
        &client,
        reqwest::Method::PATCH,
        &url,
        &read_only,
        Some(&json!({ "name": "Renamed" })),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("write"), "{body}");

    // Revoked: refused at once.
    let keys = store.api_keys().await.unwrap();
    let revoked = keys
        .iter()
        .find(|k| k.scopes == Scopes::parse("read").unwrap())
        .unwrap();
    assert!(store.revoke_api_key(&revoked.id, now()).await.unwrap());
    let (status, _, _) = send(&client, reqwest::Method::GET, &url, &read_only, None).await;
    assert_eq!(status, 401);
    server.stop().await;
}

async fn a_key_over_its_rate_is_told_when_to_retry(store: Arc<dyn Store>) {
    let a = tenant(&store, "Alfa").await;
    let b = tenant(&store, "Beta").await;
    let server = Server::start(
        store,
        ApiRate {
            per_second: 1,
            burst: 3,
        },
    )
    .await;
    let client = reqwest::Client::new();
    let url = format!("{}/v1/creditors", server.base);
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..5 {
        let (status, _, headers) =
            send(&client, reqwest::Method::GET, &url, &a.partner_key, None).await;
        statuses.push(status.as_u16());
        if status == 429 {
            retry_after = headers.get("retry-after").cloned();
        }
    }
    assert_eq!(&statuses[..3], &[200, 200, 200]);
    assert!(statuses[3..].contains(&429), "{statuses:?}");
    let seconds: u64 = retry_after.unwrap().to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&seconds));
    // Another key is not slowed down by the first.
    let (status, _, _) = send(&client, reqwest::Method::GET, &url, &b.partner_key, None).await;
    assert_eq!(status, 200);
    server.stop().await;
}

async fn an_idempotency_key_replays_the_first_answer_and_refuses_another_request(
    store: Arc<dyn Store>,
) {
    let a = tenant(&store, "Alfa").await;
    let server = Server::start(store.clone(), UNLIMITED).await;
    let client = reqwest::Client::new();
    let url = format!("{}/v1/creditors", server.base);
    let body =
        json!({ "name": "Ny Kunde AS", "organisation_number": "999888777", "country": "SE" });
    let post = |body: Value, key: &'static str| {
        client
            .post(&url)
            .bearer_auth(&a.partner_key)
            .header("Idempotency-Key", key)
            .json(&body)
            .send()
    };
    let first = post(body.clone(), "create-1").await.unwrap();
    assert_eq!(first.status(), 201);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let location = first.headers()["location"].clone();
    let first: Value = first.json().await.unwrap();
    assert_eq!(
        location.to_str().unwrap(),
        format!("/v1/creditors/{}", first["id"].as_str().unwrap())
    );
    let again = post(body.clone(), "create-1").await.unwrap();
    assert_eq!(again.status(), 201);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(
        again.headers()["location"],
        location,
        "the first answer's headers too"
    );
    let again: Value = again.json().await.unwrap();
    assert_eq!(again, first, "the same creditor, not a second one");
    let other = post(
        json!({ "name": "Annen AS", "organisation_number": "1", "country": "SE" }),
        "create-1",
    )
    .await
    .unwrap();
    assert_eq!(other.status(), 422);
    let problem: Value = other.json().await.unwrap();
    assert_eq!(problem["errors"][0]["pointer"], "/headers/Idempotency-Key");
    let swedish = creditors_named(&store, &a, "Ny Kunde AS").await;
    assert_eq!(swedish, 1);
    // A validation failure is remembered too: the same bad request gets the same answer.
    let bad = json!({ "name": "", "organisation_number": "1", "country": "XX" });
    let first_bad = post(bad.clone(), "bad-1").await.unwrap();
    assert_eq!(first_bad.status(), 422);
    let replay_bad = post(bad, "bad-1").await.unwrap();
    assert_eq!(replay_bad.status(), 422);
    assert_eq!(replay_bad.headers()["idempotent-replayed"], "true");
    server.stop().await;
}

async fn a_partner_creates_lists_and_updates_its_creditors_and_a_bad_policy_names_its_key(
    store: Arc<dyn Store>,
) {
    let a = tenant(&store, "Alfa").await;
    let b = tenant(&store, "Beta").await;
    let server = Server::start(store, UNLIMITED).await;
    let client = reqwest::Client::new();
    let url = format!("{}/v1/creditors", server.base);
    let (status, body, _) = send(
        &client,
        reqwest::Method::POST,
        &url,
        &a.partner_key,
        Some(&json!({
            "name": "Fjordkafé AS",
            "organisation_number": "998877665",
            "country": "NO",
            "policy": { "notice_days": -3 }
        })),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    let problem: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(problem["errors"][0]["pointer"], "/policy/notice_days");

    let (status, body, _) = send(
        &client,
        reqwest::Method::POST,
        &url,
        &a.partner_key,
        Some(&json!({ "name": "Fjordkafé AS", "organisation_number": "998877665", "country": "NO", "email": "kafe@fjord.example" })),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let created: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(created["time_zone"], "Europe/Oslo");
    assert_eq!(created["language"], "nb");
    let id = created["id"].as_str().unwrap().to_owned();

    // The creditor's own key cannot create creditors.
    let (status, _, _) = send(
        &client,
        reqwest::Method::POST,
        &url,
        &a.creditor_key,
        Some(&json!({ "name": "X", "organisation_number": "1", "country": "NO" })),
    )
    .await;
    assert_eq!(status, 403);

    // A lists two creditors in pages of one; B sees only its own.
    let (_, body, _) = send(
        &client,
        reqwest::Method::GET,
        &format!("{url}?limit=1"),
        &a.partner_key,
        None,
    )
    .await;
    let page: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(page["data"].as_array().unwrap().len(), 1);
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    let (_, body, _) = send(
        &client,
        reqwest::Method::GET,
        &format!("{url}?limit=1&cursor={cursor}"),
        &a.partner_key,
        None,
    )
    .await;
    let second: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(second["data"].as_array().unwrap().len(), 1);
    assert!(second["next_cursor"].is_null());
    let (_, body, _) = send(&client, reqwest::Method::GET, &url, &b.partner_key, None).await;
    let of_b: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(of_b["data"].as_array().unwrap().len(), 1);
    assert_eq!(of_b["data"][0]["id"], b.creditor.as_str());

    let (status, body, _) = send(
        &client,
        reqwest::Method::PATCH,
        &format!("{url}/{id}"),
        &a.partner_key,
        Some(&json!({ "language": "en", "email": null, "policy": { "notice_days": 7 } })),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let updated: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(updated["language"], "en");
    assert!(updated["email"].is_null());
    assert_eq!(updated["policy"]["notice_days"], 7);
    assert_eq!(updated["name"], "Fjordkafé AS");

    let (status, body, _) = send(
        &client,
        reqwest::Method::PATCH,
        &format!("{url}/{id}"),
        &a.partner_key,
        Some(&json!({ "time_zone": "Mars/Olympus", "country": "DK" })),
    )
    .await;
    assert_eq!(status, 422);
    let problem: Value = serde_json::from_str(&body).unwrap();
    let pointers: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["pointer"].as_str().unwrap())
        .collect();
    assert_eq!(pointers, ["/country", "/time_zone"]);

    // Not JSON at all: 400; an unknown field: 422 naming it.
    let response = client
        .patch(format!("{url}/{id}"))
        .bearer_auth(&a.partner_key)
        .header("content-type", "application/json")
        .body("{nope")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let (status, body, _) = send(
        &client,
        reqwest::Method::PATCH,
        &format!("{url}/{id}"),
        &a.partner_key,
        Some(&json!({ "colour": "red" })),
    )
    .await;
    assert_eq!(status, 422);
    assert!(body.contains("colour"), "{body}");
    server.stop().await;
}

async fn an_opt_out_through_the_api_is_logged_filtered_and_reversible(store: Arc<dyn Store>) {
    let a = tenant(&store, "Alfa").await;
    let server = Server::start(store, UNLIMITED).await;
    let client = reqwest::Client::new();
    let base = format!("{}/v1/creditors/{}", server.base, a.creditor);
    let (status, body, _) = send(
        &client,
        reqwest::Method::POST,
        &format!("{base}/invoices/{}/opt-out", a.invoice),
        &a.creditor_key,
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let result: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(result["invoice"]["opt_out"], true);
    let events = result["invoice"]["events"].as_array().unwrap();
    assert!(
        events
            .iter()
            .any(|e| e["source"] == "api" && e["kind"] == "opt_out"),
        "{events:?}"
    );
    let (_, body, _) = send(
        &client,
        reqwest::Method::GET,
        &format!("{base}/invoices?opted_out=true"),
        &a.creditor_key,
        None,
    )
    .await;
    let page: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(page["data"].as_array().unwrap().len(), 1);
    let (_, body, _) = send(
        &client,
        reqwest::Method::GET,
        &format!("{base}/invoices?opted_out=false"),
        &a.creditor_key,
        None,
    )
    .await;
    let page: Value = serde_json::from_str(&body).unwrap();
    assert!(page["data"].as_array().unwrap().is_empty());

    let (status, body, _) = send(
        &client,
        reqwest::Method::POST,
        &format!("{base}/invoices/{}/opt-in", a.invoice),
        &a.creditor_key,
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let result: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(result["invoice"]["opt_out"], false);
    assert_eq!(result["invoice"]["customer_opt_out"], false);

    // A customer's opt-out covers its invoices: shown on each, and in the filter.
    let customer = format!("{base}/customers/{}", a.customer);
    let (status, body, _) = send(
        &client,
        reqwest::Method::POST,
        &format!("{customer}/opt-out"),
        &a.creditor_key,
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let listed = |query: &'static str| {
        let (client, base, key) = (&client, &base, &a.creditor_key);
        async move {
            let (_, body, _) = send(
                client,
                reqwest::Method::GET,
                &format!("{base}/invoices?{query}"),
                key,
                None,
            )
            .await;
            let page: Value = serde_json::from_str(&body).unwrap();
            page["data"].as_array().unwrap().clone()
        }
    };
    let opted_out = listed("opted_out=true").await;
    assert_eq!(opted_out.len(), 1);
    assert_eq!(opted_out[0]["opt_out"], false);
    assert_eq!(opted_out[0]["customer_opt_out"], true);
    assert!(listed("opted_out=false").await.is_empty());
    let (status, body, _) = send(
        &client,
        reqwest::Method::POST,
        &format!("{customer}/opt-in"),
        &a.creditor_key,
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(listed("opted_out=false").await.len(), 1);
    assert_eq!(
        listed("opted_out=false").await[0]["customer_opt_out"],
        false
    );

    // A partial dispute is mirrored for the filter; a bad amount names its field.
    let (status, body, _) = send(
        &client,
        reqwest::Method::POST,
        &format!("{base}/invoices/{}/dispute", a.invoice),
        &a.creditor_key,
        Some(&json!({ "amount": "1.005" })),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("/amount"));
    let (status, body, _) = send(
        &client,
        reqwest::Method::POST,
        &format!("{base}/invoices/{}/dispute", a.invoice),
        &a.creditor_key,
        Some(&json!({ "amount": "400.00" })),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let result: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(result["invoice"]["dispute"]["amount"], "400.00");
    let (_, body, _) = send(
        &client,
        reqwest::Method::GET,
        &format!("{base}/invoices?disputed=true"),
        &a.creditor_key,
        None,
    )
    .await;
    let page: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(page["data"].as_array().unwrap().len(), 1);

    // The audit has the decisions as JSON lines.
    let response = client
        .get(format!("{base}/audit"))
        .bearer_auth(&a.creditor_key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["content-type"], "application/x-ndjson");
    let text = response.text().await.unwrap();
    for line in text.lines() {
        let decision: Value = serde_json::from_str(line).unwrap();
        assert!(decision["rule"].is_string());
    }
    server.stop().await;
}

async fn pull_mode_offers_a_message_until_it_is_acknowledged(store: Arc<dyn Store>) {
    let a = tenant(&store, "Alfa").await;
    let b = tenant(&store, "Beta").await;
    let server = Server::start(store, UNLIMITED).await;
    let client = reqwest::Client::new();
    let list = format!("{}/v1/pipeline/messages", server.base);
    let (_, body, _) = send(&client, reqwest::Method::GET, &list, &a.partner_key, None).await;
    let page: Value = serde_json::from_str(&body).unwrap();
    let ids: Vec<&str> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [a.message.as_str()]);
    let ack = format!("{}/v1/pipeline/messages/{}/ack", server.base, a.message);
    // B cannot acknowledge A's message.
    let (status, _, _) = send(&client, reqwest::Method::POST, &ack, &b.partner_key, None).await;
    assert_eq!(status, 404);
    let (status, body, _) = send(&client, reqwest::Method::POST, &ack, &a.partner_key, None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["first_acknowledgement"],
        true
    );
    let (status, body, _) = send(&client, reqwest::Method::POST, &ack, &a.partner_key, None).await;
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["first_acknowledgement"],
        false
    );
    let (_, body, _) = send(&client, reqwest::Method::GET, &list, &a.partner_key, None).await;
    let page: Value = serde_json::from_str(&body).unwrap();
    assert!(page["data"].as_array().unwrap().is_empty());
    // B's message is still waiting for B.
    // A creditor's key does not read or acknowledge the agency's queue.
    let (status, _, _) = send(&client, reqwest::Method::GET, &list, &b.creditor_key, None).await;
    assert_eq!(status, 403);
    let b_ack = format!("{}/v1/pipeline/messages/{}/ack", server.base, b.message);
    let (status, _, _) = send(
        &client,
        reqwest::Method::POST,
        &b_ack,
        &b.creditor_key,
        None,
    )
    .await;
    assert_eq!(status, 403);
    let (_, body, _) = send(&client, reqwest::Method::GET, &list, &b.partner_key, None).await;
    assert!(body.contains(&b.message));
    server.stop().await;
}

/// The value of a path parameter for tenant A's resources.
fn path_value<'a>(tenant: &'a Tenant, name: &str) -> &'a str {
    match name {
        "creditor" => &tenant.creditor,
        "connection" => &tenant.connection,
        "customer" => &tenant.customer,
        "invoice" => &tenant.invoice,
        "message" => &tenant.message,
        "job" => &tenant.job,
        "endpoint" => &tenant.endpoint,
        "event" => &tenant.event,
        other => panic!(
            "the isolation test has no value for the path parameter {{{other}}}: add one to Tenant"
        ),
    }
}

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// Walks every `/v1` operation in openapi.yaml with tenant A's ids and the keys of another
/// partner and of another creditor: a route naming a resource answers 404, a route without one
/// answers only with the caller's own data; no byte of A's data comes back either way. A's own
/// key gets no 405 and no 5xx on any operation, and a 405 on any method the document lacks.
async fn every_route_answers_another_tenant_as_if_nothing_were_there(store: Arc<dyn Store>) {
    let a = tenant(&store, "Alfa").await;
    let b = tenant(&store, "Beta").await;
    let server = Server::start(store, UNLIMITED).await;
    let client = reqwest::Client::new();
    let document: Value =
        serde_yaml_ng::from_str(forfall::api::OPENAPI).expect("openapi.yaml is YAML");
    let mut walked = 0;
    let mut deletions = Vec::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        if !path.starts_with("/v1/") {
            continue;
        }
        let mut url = format!("{}{path}", server.base);
        let names: Vec<String> = path
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(str::to_owned)
            .collect();
        for name in &names {
            url = url.replace(&format!("{{{name}}}"), path_value(&a, name));
        }
        for method in METHODS {
            let http = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let Some(operation) = item.get(method) else {
                let (status, body, headers) = send(&client, http, &url, &a.partner_key, None).await;
                assert_eq!(
                    status, 405,
                    "{method} {path} is not in openapi.yaml but answered: {body}"
                );
                assert_eq!(headers["content-type"], "application/problem+json");
                assert!(headers.contains_key("allow"));
                continue;
            };
            let media = &operation["requestBody"]["content"]["application/json"];
            let body = match media["example"].clone() {
                Value::Null => media["examples"]
                    .as_object()
                    .and_then(|examples| examples.values().next())
                    .map(|example| example["value"].clone()),
                example => Some(example),
            };
            for (who, key) in [("partner", &b.partner_key), ("creditor", &b.creditor_key)] {
                let (status, text, _) = send(&client, http.clone(), &url, key, body.as_ref()).await;
                for secret in &a.secrets {
                    assert!(
                        !text.contains(secret.as_str()),
                        "{method} {path} with another {who}'s key leaked `{secret}`: {text}"
                    );
                }
                if names.is_empty() {
                    assert!(
                        status.is_success() || status == 403,
                        "{method} {path} with another {who}'s key: {status} {text}"
                    );
                } else {
                    let partner_only = who == "creditor" && text.contains("partner-only");
                    assert!(
                        status == 404 || status == 403 && partner_only,
                        "{method} {path} with another {who}'s key: {status} {text}"
                    );
                }
            }
            // A's own key: deletions last, so that they do not take what later routes use.
            if method == "delete" {
                deletions.push((path.clone(), url.clone()));
            } else {
                let (status, text, _) =
                    send(&client, http.clone(), &url, &a.partner_key, body.as_ref()).await;
                assert!(
                    status != 405 && !status.is_server_error() && status != 404,
                    "{method} {path} with its own partner's key: {status} {text}"
                );
            }
            walked += 1;
        }
    }
    for (path, url) in deletions {
        let (status, text, _) =
            send(&client, reqwest::Method::DELETE, &url, &a.partner_key, None).await;
        assert!(
            status.is_success(),
            "delete {path} with its own partner's key: {status} {text}"
        );
    }
    assert!(walked >= 15, "only {walked} operations walked");
    server.stop().await;
}

async fn a_creditor_neither_sees_nor_resends_its_partners_webhook_deliveries(
    store: Arc<dyn Store>,
) {
    let a = tenant(&store, "Alfa").await;
    let server = Server::start(store.clone(), UNLIMITED).await;
    let client = reqwest::Client::new();
    let url = format!("{}/v1/dead-letters", server.base);
    let kinds = |body: &str| -> Vec<String> {
        serde_json::from_str::<Value>(body).unwrap()["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|j| j["kind"].as_str().unwrap().to_owned())
            .collect()
    };
    let (_, body, _) = send(&client, reqwest::Method::GET, &url, &a.partner_key, None).await;
    let mut of_partner = kinds(&body);
    of_partner.sort();
    assert_eq!(of_partner, ["pipeline", forfall::webhooks::DELIVERY_JOB]);
    let (_, body, _) = send(&client, reqwest::Method::GET, &url, &a.creditor_key, None).await;
    assert_eq!(kinds(&body), ["pipeline"]);
    assert!(!body.contains(&a.endpoint));
    let delivery = store
        .jobs(&a.creditor.as_str().into())
        .await
        .unwrap()
        .into_iter()
        .find(|j| j.kind == forfall::webhooks::DELIVERY_JOB)
        .unwrap();
    let retry = format!("{url}/{}/retry", delivery.id);
    let (status, _, _) = send(
        &client,
        reqwest::Method::POST,
        &retry,
        &a.creditor_key,
        None,
    )
    .await;
    assert_eq!(status, 404);
    let (status, _, _) = send(&client, reqwest::Method::POST, &retry, &a.partner_key, None).await;
    assert_eq!(status, 200);
    server.stop().await;
}

async fn a_stale_idempotency_claim_is_taken_over_by_the_same_request_only_and_its_late_answer_ignored(
    store: Arc<dyn Store>,
) {
    use forfall::store::Idempotency;
    let a = tenant(&store, "Alfa").await;
    let key = store
        .api_key_by_hash(&forfall::api::auth::token_hash(&a.partner_key))
        .await
        .unwrap()
        .unwrap()
        .id;
    let first: DateTime<Utc> = "2026-12-06T10:00:00Z".parse().unwrap();
    let later = first + chrono::Duration::minutes(2);
    assert_eq!(
        store
            .begin_idempotent(&key, "k", "hash-1", first)
            .await
            .unwrap(),
        Idempotency::Started
    );
    // Another request with the key, even long after: refused, not a takeover.
    assert_eq!(
        store
            .begin_idempotent(&key, "k", "hash-2", later)
            .await
            .unwrap(),
        Idempotency::InProgress {
            request_hash: "hash-1".into()
        }
    );
    // The same request after a minute takes the stale claim over.
    assert_eq!(
        store
            .begin_idempotent(&key, "k", "hash-1", later)
            .await
            .unwrap(),
        Idempotency::Started
    );
    // The first claim's late answer (or giving up) changes nothing; the new claim's answer stays.
    store
        .finish_idempotent(
            &key,
            "k",
            first,
            &forfall::store::KeptAnswer {
                status: 201,
                content_type: "application/json",
                location: None,
                body: "{\"late\":true}",
            },
        )
        .await
        .unwrap();
    store.forget_idempotent(&key, "k", first).await.unwrap();
    store
        .finish_idempotent(
            &key,
            "k",
            later,
            &forfall::store::KeptAnswer {
                status: 201,
                content_type: "application/json",
                location: None,
                body: "{\"new\":true}",
            },
        )
        .await
        .unwrap();
    match store
        .begin_idempotent(&key, "k", "hash-1", later)
        .await
        .unwrap()
    {
        Idempotency::Answered { body, status, .. } => {
            assert_eq!(status, 201);
            assert_eq!(body, "{\"new\":true}");
        }
        other => panic!("expected the new claim's answer, got {other:?}"),
    }
    // A day later the answer is forgotten: the key is new again.
    assert_eq!(
        store
            .begin_idempotent(&key, "k", "hash-3", later + chrono::Duration::hours(25))
            .await
            .unwrap(),
        Idempotency::Started
    );
}

/// A request with the body as given: its exact bytes, content type and Idempotency-Key.
async fn raw(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    key: &str,
    content_type: Option<&str>,
    body: impl Into<reqwest::Body>,
    idempotency_key: Option<&str>,
) -> (StatusCode, Value, reqwest::header::HeaderMap) {
    let (status, text, headers) = exchange(
        client,
        method,
        url,
        key,
        content_type,
        body,
        idempotency_key,
    )
    .await;
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, body, headers)
}

/// The pointers of a problem's `errors`.
fn pointers(problem: &Value) -> Vec<&str> {
    problem["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .filter_map(|e| e["pointer"].as_str())
                .collect()
        })
        .unwrap_or_default()
}

const JSON: Option<&str> = Some("application/json");

async fn a_missing_field_is_named_by_its_own_pointer(store: Arc<dyn Store>) {
    let a = tenant(&store, "Alfa").await;
    let server = Server::start(store, UNLIMITED).await;
    let client = reqwest::Client::new();
    let creditor = format!("{}/v1/creditors/{}", server.base, a.creditor);
    let invoice = format!("{creditor}/invoices/{}", a.invoice);
    for (url, body, pointer) in [
        (
            format!("{}/v1/creditors", server.base),
            json!({ "organisation_number": "1", "country": "NO" }),
            "/name",
        ),
        (
            format!("{creditor}/connections"),
            json!({ "platform": "tripletex" }),
            "/credentials",
        ),
        (format!("{invoice}/dispute/resolve"), json!({}), "/outcome"),
        (format!("{invoice}/direct-payment"), json!({}), "/choice"),
        (
            format!("{}/v1/webhook-endpoints", server.base),
            json!({ "event_types": ["*"] }),
            "/url",
        ),
    ] {
        let (status, text, headers) = send(
            &client,
            reqwest::Method::POST,
            &url,
            &a.partner_key,
            Some(&body),
        )
        .await;
        assert_eq!(status, 422, "{url}: {text}");
        assert_eq!(headers["content-type"], "application/problem+json");
        let problem: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(pointers(&problem), [pointer], "{url}: {text}");
    }
    server.stop().await;
}

/// Every action route with a body it cannot take: not JSON (400), an unknown field (422 naming
/// it), not an object (422 at the empty pointer), not sent as JSON (415). Nothing is applied;
/// then no body at all (whatever its content type) and `{}` are taken.
async fn an_action_refuses_a_body_it_cannot_take_and_applies_nothing(store: Arc<dyn Store>) {
    let a = tenant(&store, "Alfa").await;
    let server = Server::start(store.clone(), UNLIMITED).await;
    let client = reqwest::Client::new();
    let creditor = format!("{}/v1/creditors/{}", server.base, a.creditor);
    let invoice = format!("{creditor}/invoices/{}", a.invoice);
    let customer = format!("{creditor}/customers/{}", a.customer);
    let routes = [
        format!("{invoice}/opt-out"),
        format!("{invoice}/opt-in"),
        format!("{invoice}/stop"),
        format!("{invoice}/dispute"),
        format!("{invoice}/dispute/resolve"),
        format!("{invoice}/direct-payment"),
        format!("{customer}/opt-out"),
        format!("{customer}/opt-in"),
        format!("{creditor}/connections/{}/sync", a.connection),
        format!("{creditor}/preview"),
        format!("{}/v1/events/{}/replay", server.base, a.event),
        format!("{}/v1/pipeline/messages/{}/ack", server.base, a.message),
        format!("{}/v1/dead-letters/{}/retry", server.base, a.job),
    ];
    let before = store
        .invoice(&a.creditor.as_str().into(), &a.invoice.as_str().into())
        .await
        .unwrap()
        .unwrap();
    let decisions = |store: Arc<dyn Store>, creditor: String, invoice: String| async move {
        store
            .decisions(&creditor.as_str().into(), &invoice.as_str().into())
            .await
            .unwrap()
            .len()
    };
    let decisions_before = decisions(store.clone(), a.creditor.clone(), a.invoice.clone()).await;
    let jobs_before = store.jobs(&a.creditor.as_str().into()).await.unwrap();
    for url in &routes {
        for (content_type, body, status, pointer) in [
            (JSON, "{", 400, None),
            (JSON, "{\"foo\": 1", 400, None),
            (JSON, "{} {}", 400, None),
            (JSON, "{\"foo\": 1}", 422, Some("/foo")),
            (JSON, "[]", 422, Some("")),
            (JSON, "\"full\"", 422, Some("")),
            (Some("text/plain"), "{}", 415, None),
            (None, "{}", 415, None),
            (
                Some("application/x-www-form-urlencoded"),
                "amount=1",
                415,
                None,
            ),
        ] {
            let (got, problem, headers) = raw(
                &client,
                reqwest::Method::POST,
                url,
                &a.partner_key,
                content_type,
                body,
                None,
            )
            .await;
            assert_eq!(got, status, "{url} with {content_type:?} {body}: {problem}");
            assert_eq!(headers["content-type"], "application/problem+json");
            if let Some(pointer) = pointer
                && !url.ends_with("/preview")
            {
                assert_eq!(
                    pointers(&problem),
                    [pointer],
                    "{url} with {body}: {problem}"
                );
            }
        }
    }
    // Nothing was applied.
    let after = store
        .invoice(&a.creditor.as_str().into(), &a.invoice.as_str().into())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after.version, before.version);
    assert!(!after.opt_out && after.dispute.is_none());
    assert_eq!(
        decisions(store.clone(), a.creditor.clone(), a.invoice.clone()).await,
        decisions_before,
        "no decision of an action"
    );
    let customer_row = store
        .customer(&a.creditor.as_str().into(), &a.customer.as_str().into())
        .await
        .unwrap()
        .unwrap();
    assert!(!customer_row.opt_out);
    let (_, body, _) = send(
        &client,
        reqwest::Method::GET,
        &format!("{}/v1/pipeline/messages", server.base),
        &a.partner_key,
        None,
    )
    .await;
    assert!(body.contains(&a.message), "the message is not acknowledged");
    let jobs_after = store.jobs(&a.creditor.as_str().into()).await.unwrap();
    let states = |jobs: &[forfall::domain::Job]| {
        jobs.iter()
            .map(|j| (j.id.clone(), j.state.as_str()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        states(&jobs_after),
        states(&jobs_before),
        "no job queued (a replay, a sync) nor a dead letter retried"
    );

    // No body, whatever its content type, and `{}`: taken.
    for content_type in [None, JSON, Some("text/plain")] {
        let (status, result, _) = raw(
            &client,
            reqwest::Method::POST,
            &format!("{invoice}/opt-out"),
            &a.partner_key,
            content_type,
            "",
            None,
        )
        .await;
        assert_eq!(status, 200, "{content_type:?}: {result}");
        assert_eq!(result["invoice"]["opt_out"], true);
    }
    let (status, result, _) = raw(
        &client,
        reqwest::Method::POST,
        &format!("{invoice}/opt-in"),
        &a.partner_key,
        Some("application/json; charset=utf-8"),
        " {} ",
        None,
    )
    .await;
    assert_eq!(status, 200, "{result}");
    assert_eq!(result["invoice"]["opt_out"], false);
    // A dispute's `amount` may be left out (the whole invoice) but is not null.
    let (status, problem, _) = raw(
        &client,
        reqwest::Method::POST,
        &format!("{invoice}/dispute"),
        &a.partner_key,
        JSON,
        r#"{"amount": null}"#,
        None,
    )
    .await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(pointers(&problem), ["/amount"]);
    let (status, result, _) = raw(
        &client,
        reqwest::Method::POST,
        &format!("{invoice}/dispute"),
        &a.partner_key,
        JSON,
        "{}",
        None,
    )
    .await;
    assert_eq!(status, 200, "{result}");
    assert!(result["invoice"]["dispute"]["amount"].is_null(), "{result}");
    server.stop().await;
}

async fn a_body_over_the_limit_is_413_with_or_without_an_idempotency_key(store: Arc<dyn Store>) {
    let a = tenant(&store, "Alfa").await;
    let server = Server::start(store.clone(), UNLIMITED).await;
    let client = reqwest::Client::new();
    let too_big = format!(
        r#"{{"name":"{}","organisation_number":"1","country":"NO"}}"#,
        "x".repeat(forfall::api::json::MAX_BODY)
    );
    let creditors = format!("{}/v1/creditors", server.base);
    let opt_out = format!(
        "{}/v1/creditors/{}/invoices/{}/opt-out",
        server.base, a.creditor, a.invoice
    );
    for (method, url, idempotency_key) in [
        (reqwest::Method::POST, creditors.clone(), None),
        (reqwest::Method::POST, creditors.clone(), Some("big-1")),
        (
            reqwest::Method::PATCH,
            format!("{creditors}/{}", a.creditor),
            None,
        ),
        (reqwest::Method::POST, opt_out.clone(), None),
        (reqwest::Method::POST, opt_out.clone(), Some("big-2")),
    ] {
        let (status, problem, headers) = raw(
            &client,
            method.clone(),
            &url,
            &a.partner_key,
            JSON,
            too_big.clone(),
            idempotency_key,
        )
        .await;
        assert_eq!(status, 413, "{method} {url} {idempotency_key:?}: {problem}");
        assert_eq!(headers["content-type"], "application/problem+json");
        assert_eq!(problem["status"], 413);
    }
    let invoice = store
        .invoice(&a.creditor.as_str().into(), &a.invoice.as_str().into())
        .await
        .unwrap()
        .unwrap();
    assert!(!invoice.opt_out, "nothing applied");
    // Just under the limit, the same request is read (and refused for its name's length).
    let (status, problem, _) = raw(
        &client,
        reqwest::Method::POST,
        &creditors,
        &a.partner_key,
        JSON,
        format!(
            r#"{{"name":"{}","organisation_number":"1","country":"NO"}}"#,
            "x".repeat(forfall::api::json::MAX_BODY - 100)
        ),
        Some("big-3"),
    )
    .await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(pointers(&problem), ["/name"]);
    server.stop().await;
}

async fn a_body_is_taken_only_as_json(store: Arc<dyn Store>) {
    let a = tenant(&store, "Alfa").await;
    let server = Server::start(store.clone(), UNLIMITED).await;
    let client = reqwest::Client::new();
    let creditors = format!("{}/v1/creditors", server.base);
    let creditor = format!("{creditors}/{}", a.creditor);
    let new_creditor =
        json!({ "name": "Medietype AS", "organisation_number": "123", "country": "NO" });
    let secret = forfall_connector::standard_webhooks::Secret::generate().to_string();
    let routes = [
        (
            reqwest::Method::POST,
            creditors.clone(),
            new_creditor.clone(),
        ),
        (
            reqwest::Method::PATCH,
            creditor.clone(),
            json!({ "name": "Omdøpt AS" }),
        ),
        (
            reqwest::Method::POST,
            format!("{creditor}/connections"),
            json!({ "platform": "generic", "credentials": { "webhook_secret": secret } }),
        ),
        (
            reqwest::Method::POST,
            format!("{}/v1/webhook-endpoints", server.base),
            json!({ "url": "https://erp.example/forfall" }),
        ),
    ];
    for (method, url, body) in &routes {
        for content_type in [
            None,
            Some("text/plain"),
            Some("text/json"),
            Some("multipart/form-data"),
        ] {
            let (status, problem, headers) = raw(
                &client,
                method.clone(),
                url,
                &a.partner_key,
                content_type,
                body.to_string(),
                None,
            )
            .await;
            assert_eq!(status, 415, "{method} {url} as {content_type:?}: {problem}");
            assert_eq!(headers["content-type"], "application/problem+json");
        }
    }
    assert_eq!(
        creditor_name(&store, &a.creditor).await,
        "Alfa Bakeri AS",
        "nothing changed"
    );
    // JSON's media types, with parameters.
    for (i, content_type) in [
        "application/json; charset=utf-8",
        "Application/JSON",
        "application/merge-patch+json",
    ]
    .into_iter()
    .enumerate()
    {
        for (method, url, body) in &routes {
            let mut body = body.clone();
            if body.get("organisation_number").is_some() {
                body["organisation_number"] = json!(format!("12{i}"));
            }
            let (status, answer, _) = raw(
                &client,
                method.clone(),
                url,
                &a.partner_key,
                Some(content_type),
                body.to_string(),
                None,
            )
            .await;
            assert!(
                status.is_success(),
                "{method} {url} as {content_type}: {status} {answer}"
            );
        }
    }
    assert_eq!(creditor_name(&store, &a.creditor).await, "Omdøpt AS");
    server.stop().await;
}

async fn creditor_name(store: &Arc<dyn Store>, id: &str) -> String {
    store.creditor(&id.into()).await.unwrap().unwrap().name
}

async fn a_patch_refuses_null_where_the_schema_has_none(store: Arc<dyn Store>) {
    let a = tenant(&store, "Alfa").await;
    let server = Server::start(store.clone(), UNLIMITED).await;
    let client = reqwest::Client::new();
    let url = format!("{}/v1/creditors/{}", server.base, a.creditor);
    for field in ["name", "country", "time_zone", "language", "policy"] {
        let mut body = json!({ "language": "en" });
        body[field] = Value::Null;
        let (status, text, _) = send(
            &client,
            reqwest::Method::PATCH,
            &url,
            &a.partner_key,
            Some(&body),
        )
        .await;
        assert_eq!(status, 422, "{field}: {text}");
        let problem: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(pointers(&problem), [format!("/{field}")], "{text}");
    }
    let creditor = store
        .creditor(&a.creditor.as_str().into())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(creditor.name, "Alfa Bakeri AS");
    assert_eq!(creditor.policy, json!({ "notice_days": 5 }));
    assert_eq!(creditor.language, Language::Nb, "nothing changed");
    // The e-mail is nullable: null removes it.
    let (status, text, _) = send(
        &client,
        reqwest::Method::PATCH,
        &url,
        &a.partner_key,
        Some(&json!({ "email": null })),
    )
    .await;
    assert_eq!(status, 200, "{text}");
    assert!(serde_json::from_str::<Value>(&text).unwrap()["email"].is_null());
    // On creation too, a field is given or left out, not null.
    let (status, text, _) = send(
        &client,
        reqwest::Method::POST,
        &format!("{}/v1/creditors", server.base),
        &a.partner_key,
        Some(&json!({ "name": "Null AS", "organisation_number": "1", "country": "NO", "policy": null })),
    )
    .await;
    assert_eq!(status, 422, "{text}");
    assert_eq!(pointers(&serde_json::from_str(&text).unwrap()), ["/policy"]);
    server.stop().await;
}

async fn an_idempotency_key_is_visible_ascii_only(store: Arc<dyn Store>) {
    let a = tenant(&store, "Alfa").await;
    let server = Server::start(store.clone(), UNLIMITED).await;
    let client = reqwest::Client::new();
    let url = format!("{}/v1/creditors", server.base);
    let body = json!({ "name": "Nøkkel AS", "organisation_number": "42", "country": "NO" });
    for bad in ["a b", "a\tb", " a b ", &"k".repeat(256)] {
        let (status, problem, headers) = raw(
            &client,
            reqwest::Method::POST,
            &url,
            &a.partner_key,
            JSON,
            body.to_string(),
            Some(bad),
        )
        .await;
        assert_eq!(status, 422, "{bad:?}: {problem}");
        assert_eq!(headers["content-type"], "application/problem+json");
        assert_eq!(pointers(&problem), ["/headers/Idempotency-Key"]);
    }
    let (status, problem, _) = raw(
        &client,
        reqwest::Method::POST,
        &url,
        &a.partner_key,
        JSON,
        body.to_string(),
        Some("!visible~ASCII-only:255"),
    )
    .await;
    assert_eq!(status, 201, "{problem}");
    let created = creditors_named(&store, &a, "Nøkkel AS").await;
    assert_eq!(created, 1, "only the request with a good key created one");
    server.stop().await;
}

async fn a_cursor_the_server_did_not_give_is_refused(store: Arc<dyn Store>) {
    let a = tenant(&store, "Alfa").await;
    let server = Server::start(store, UNLIMITED).await;
    let client = reqwest::Client::new();
    let base = &server.base;
    let creditor = format!("{base}/v1/creditors/{}", a.creditor);
    let get = |url: String| {
        let client = client.clone();
        let key = a.partner_key.clone();
        async move {
            let (status, text, _) = send(&client, reqwest::Method::GET, &url, &key, None).await;
            (status, text)
        }
    };
    for (url, pointer) in [
        (
            format!("{base}/v1/pipeline/messages?cursor=-1"),
            "/query/cursor",
        ),
        (format!("{creditor}/audit?after=-1"), "/query/after"),
        (
            format!("{base}/v1/creditors?cursor=garbage"),
            "/query/cursor",
        ),
        (
            format!("{creditor}/invoices?cursor=garbage"),
            "/query/cursor",
        ),
        (
            format!("{creditor}/connections?cursor=garbage"),
            "/query/cursor",
        ),
        (format!("{base}/v1/events?cursor=garbage"), "/query/cursor"),
        (
            format!("{base}/v1/webhook-endpoints?cursor=garbage"),
            "/query/cursor",
        ),
        // Another list's id is not this list's cursor.
        (
            format!("{base}/v1/creditors?cursor={}", a.invoice),
            "/query/cursor",
        ),
        (format!("{base}/v1/events?cursor="), "/query/cursor"),
    ] {
        let (status, text) = get(url.clone()).await;
        assert_eq!(status, 422, "{url}: {text}");
        let problem: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(pointers(&problem), [pointer], "{url}: {text}");
    }
    // A cursor of the right form past the end: an empty last page.
    let past = "f".repeat(32);
    for url in [
        format!("{base}/v1/creditors?cursor=cred_{past}"),
        format!("{creditor}/invoices?cursor=inv_{past}"),
        format!("{creditor}/connections?cursor=conn_{past}"),
        format!("{base}/v1/events?cursor=evt_{past}"),
        format!("{base}/v1/webhook-endpoints?cursor=we_{past}"),
        format!("{base}/v1/pipeline/messages?cursor={}", i64::MAX),
    ] {
        let (status, text) = get(url.clone()).await;
        assert_eq!(status, 200, "{url}: {text}");
        let page: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(page["data"], json!([]), "{url}");
        assert!(page["next_cursor"].is_null(), "{url}");
    }
    let (status, text) = get(format!("{creditor}/audit?after=0")).await;
    assert_eq!(status, 200, "{text}");
    // A cursor a page gave is taken.
    let (status, text) = get(format!("{creditor}/invoices?cursor={}", a.invoice)).await;
    assert_eq!(status, 200, "{text}");
    server.stop().await;
}
