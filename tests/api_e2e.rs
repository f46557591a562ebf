//! The partner API end to end, over HTTP alone: the real server in-process with a manual clock,
//! the Tripletex fake behind a connection made through the API. Only the partner and its key are
//! made through the store (there is no API for them); everything after is a request.
//!
//! The fake's own today stays where it starts: Tripletex checks session expiry dates against the
//! real date, which the gateway's manual clock does not move.

mod common;
mod ingest;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{NaiveDate, TimeZone, Utc};
use forfall::api::metrics::Metrics;
use forfall::clock::{Clock, ManualClock};
use forfall::domain::{Owner, Scopes};
use forfall::secrets::EncryptionKey;
use forfall::store::Store;
use forfall::sync::Ingest;
use forfall::sync::connections::Connectors;
use forfall_tripletex::fake::{FakeConfig, FakeTripletex, NewCustomer, NewInvoice};
use reqwest::StatusCode;
use rust_decimal_macros::dec;
use serde_json::{Value, json};

on_both_backends!(
    a_tripletex_invoice_synced_through_the_api_is_opted_out_and_in_to_a_fresh_five_day_warning,
    a_deleted_connection_is_gone_from_the_api_and_refuses_webhooks_while_its_invoices_stay,
    a_preview_answers_the_engines_actions_and_names_the_field_at_fault,
    connections_need_valid_credentials_an_encryption_key_and_the_right_tenant,
    a_pass_running_when_its_connection_is_deleted_stops_without_writing_its_next_page,
);

fn day(text: &str) -> NaiveDate {
    text.parse().expect("date")
}

/// The gateway on a random port, and a client holding a partner's key.
struct Api {
    base: String,
    http: reqwest::Client,
    token: String,
    clock: Arc<ManualClock>,
    store: Arc<dyn Store>,
    gateway: ingest::Gateway,
}

/// Starts the server at 10:00 Oslo time on [`ingest::TODAY`]. `key: None` is a gateway without
/// an encryption key.
async fn start(store: Arc<dyn Store>, key: Option<EncryptionKey>) -> Api {
    let clock = Arc::new(ManualClock::new(
        Utc.from_utc_datetime(&ingest::today().and_hms_opt(9, 0, 0).expect("time")),
    ));
    let ingest = Arc::new(Ingest::new(
        store.clone(),
        clock.clone(),
        Connectors::new(key, ingest::http()),
        Arc::new(Metrics::default()),
    ));
    let gateway = ingest::Gateway::serve(store.clone(), clock.clone(), ingest, None).await;
    let token = partner_key(store.as_ref(), clock.now()).await;
    Api {
        base: gateway.base.clone(),
        http: reqwest::Client::new(),
        token,
        clock,
        store,
        gateway,
    }
}

/// A new partner with a read-write key; the key's token.
async fn partner_key(store: &dyn Store, now: chrono::DateTime<Utc>) -> String {
    let partner = store
        .create_partner("Regnskap Partner AS", now)
        .await
        .expect("partner");
    let (token, hash) = forfall::api::auth::new_token();
    store
        .create_api_key(
            &Owner::Partner(partner.id),
            Scopes::ALL,
            Some("e2e"),
            &hash,
            now,
        )
        .await
        .expect("key");
    token
}

impl Api {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        self.call_as(&self.token, method, path, body).await
    }

    async fn call_as(
        &self,
        token: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request");
        let status = response.status();
        let text = response.text().await.expect("body");
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
        };
        (status, value)
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(reqwest::Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    async fn delete(&self, path: &str) -> (StatusCode, Value) {
        self.call(reqwest::Method::DELETE, path, None).await
    }

    async fn create_creditor(&self) -> String {
        let (status, creditor) = self
            .post(
                "/v1/creditors",
                json!({
                    "name": "Nordlys Bakeri AS",
                    "organisation_number": "923609016",
                    "country": "NO",
                    "email": "faktura@nordlys.example",
                }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{creditor}");
        creditor["id"].as_str().expect("creditor id").to_owned()
    }

    /// Creates a Tripletex connection to `fake` through the API; its id.
    async fn connect(&self, creditor: &str, fake: &FakeTripletex) -> String {
        let config = FakeConfig::default();
        let (status, connection) = self
            .post(
                &format!("/v1/creditors/{creditor}/connections"),
                json!({
                    "platform": "tripletex",
                    "credentials": {
                        "consumer_token": config.consumer_token,
                        "employee_token": config.employee_token,
                        "base_url": fake.base_url(),
                    },
                }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{connection}");
        let text = connection.to_string();
        assert!(
            !text.contains(&config.consumer_token) && !text.contains(&config.employee_token),
            "credentials are never returned: {text}"
        );
        assert_eq!(connection["status"], "active");
        assert_eq!(connection["last_synced_at"], Value::Null);
        connection["id"].as_str().expect("connection id").to_owned()
    }

    /// Starts a sync (202) and waits until the connection shows a sync finished after `since`.
    async fn sync(&self, creditor: &str, connection: &str) -> Value {
        let path = format!("/v1/creditors/{creditor}/connections/{connection}");
        let (status, _) = self.get(&path).await;
        assert_eq!(status, StatusCode::OK);
        let (status, accepted) = self.post(&format!("{path}/sync"), json!({})).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
        assert_eq!(
            accepted["syncing"], true,
            "the 202 says the pass is running"
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (status, now) = self.get(&path).await;
            assert_eq!(status, StatusCode::OK);
            if now["last_error"] != Value::Null {
                panic!("the sync failed: {now}");
            }
            if now["last_synced_at"] != Value::Null && now["syncing"] == false {
                return now;
            }
            assert!(Instant::now() < deadline, "no sync within 30 s: {now}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn stop(self) {
        self.gateway.stop().await;
    }
}

fn key() -> Option<EncryptionKey> {
    Some(EncryptionKey::from_base64(&EncryptionKey::generate_base64()).expect("key"))
}

/// The Tripletex fake with no seeded invoices and one overdue one: 1 250 NOK issued on
/// 2026-10-20, due 2026-11-03. Its platform id.
async fn fake_with_an_overdue_invoice() -> (FakeTripletex, i64) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let fake = FakeTripletex::start(
        listener,
        FakeConfig {
            seed: 7,
            invoices: 0,
            today: ingest::today(),
            ..FakeConfig::default()
        },
    )
    .await
    .expect("fake");
    let customer = fake.add_customer(NewCustomer {
        name: "Fjordkraft Kantine AS".into(),
        organization_number: Some("914778271".into()),
        ..NewCustomer::default()
    });
    let id = fake
        .add_invoice(NewInvoice::new(customer, day("2026-10-20"), dec!(1250.00)))
        .expect("invoice");
    (fake, id)
}

/// The creditor's invoice with this platform id, found through the list.
async fn invoice_id(api: &Api, creditor: &str, platform_id: i64) -> String {
    let (status, page) = api.get(&format!("/v1/creditors/{creditor}/invoices")).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["data"]
        .as_array()
        .expect("data")
        .iter()
        .find(|i| i["platform_id"].as_str() == Some(platform_id.to_string().as_str()))
        .unwrap_or_else(|| panic!("invoice {platform_id} is not listed: {page}"))["id"]
        .as_str()
        .expect("id")
        .to_owned()
}

async fn a_tripletex_invoice_synced_through_the_api_is_opted_out_and_in_to_a_fresh_five_day_warning(
    store: Arc<dyn Store>,
) {
    let api = start(store, key()).await;
    let (fake, platform_id) = fake_with_an_overdue_invoice().await;
    let creditor = api.create_creditor().await;
    let connection = api.connect(&creditor, &fake).await;

    let synced = api.sync(&creditor, &connection).await;
    assert_eq!(synced["status"], "active");
    assert_eq!(synced["last_synced_at"], "2026-11-23T09:00:00Z");

    // The overdue invoice was warned today; the transfer is planned five days on.
    let invoice = invoice_id(&api, &creditor, platform_id).await;
    let path = format!("/v1/creditors/{creditor}/invoices/{invoice}");
    let (status, timeline) = api.get(&path).await;
    assert_eq!(status, StatusCode::OK, "{timeline}");
    assert_eq!(timeline["connection_id"], connection.as_str());
    assert_eq!(timeline["amount"], "1250.00");
    assert_eq!(timeline["stage"], "noticed", "{timeline}");
    assert!(
        timeline["decisions"]
            .as_array()
            .expect("decisions")
            .iter()
            .any(|d| d["outcome"]["action"] == "notice_sent"
                && d["outcome"]["transfer_on"] == "2026-11-28"),
        "{timeline}"
    );
    assert_eq!(timeline["next"]["on"], "2026-11-28", "{timeline}");
    assert_eq!(timeline["next"]["action"]["action"], "transferred");

    // Opted out: no transfer is planned any more.
    let (status, opted_out) = api.post(&format!("{path}/opt-out"), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{opted_out}");
    assert_eq!(opted_out["invoice"]["opt_out"], true);
    assert_eq!(opted_out["invoice"]["stage"], "cancelled");
    assert_eq!(
        opted_out["invoice"]["next"],
        Value::Null,
        "an opted-out invoice has no planned transfer: {opted_out}"
    );
    let (_, timeline) = api.get(&path).await;
    assert_eq!(timeline["next"], Value::Null, "{timeline}");

    // Two days later, opted in again: a fresh warning with five days from today.
    api.clock.advance(chrono::Duration::days(2));
    let (status, opted_in) = api.post(&format!("{path}/opt-in"), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{opted_in}");
    assert_eq!(opted_in["invoice"]["opt_out"], false);
    assert_eq!(opted_in["invoice"]["stage"], "noticed");
    assert!(
        opted_in["decisions"]
            .as_array()
            .expect("decisions")
            .iter()
            .any(|d| d["action"] == "notice_sent"
                && d["on"] == "2026-11-25"
                && d["transfer_on"] == "2026-11-30"),
        "{opted_in}"
    );
    assert_eq!(opted_in["invoice"]["next"]["on"], "2026-11-30");
    assert_eq!(
        opted_in["invoice"]["next"]["action"]["action"],
        "transferred"
    );

    api.stop().await;
    fake.shutdown().await;
}

async fn a_deleted_connection_is_gone_from_the_api_and_refuses_webhooks_while_its_invoices_stay(
    store: Arc<dyn Store>,
) {
    let api = start(store, key()).await;
    let (fake, platform_id) = fake_with_an_overdue_invoice().await;
    let creditor = api.create_creditor().await;
    let connection = api.connect(&creditor, &fake).await;
    api.sync(&creditor, &connection).await;
    let invoice = invoice_id(&api, &creditor, platform_id).await;

    let (status, page) = api
        .get(&format!("/v1/creditors/{creditor}/connections"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["data"].as_array().map(Vec::len), Some(1), "{page}");

    let path = format!("/v1/creditors/{creditor}/connections/{connection}");
    let (status, _) = api.delete(&path).await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    let (status, _) = api.get(&path).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = api.delete(&path).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = api.post(&format!("{path}/sync"), json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, page) = api
        .get(&format!("/v1/creditors/{creditor}/connections"))
        .await;
    assert_eq!(page["data"], json!([]), "{page}");

    // No webhook is accepted for it, and nothing polls it.
    let webhook = api
        .http
        .post(format!("{}/hooks/{connection}", api.base))
        .body("{}")
        .send()
        .await
        .expect("webhook");
    assert_eq!(webhook.status(), StatusCode::NOT_FOUND);
    assert!(
        api.store
            .all_connections()
            .await
            .expect("connections")
            .is_empty()
    );
    // Its credentials are erased; its invoices and their history stay.
    let row = api
        .store
        .connection(&creditor.as_str().into(), &connection.as_str().into())
        .await
        .expect("store")
        .expect("the row stays");
    assert!(row.credentials.0.is_empty());
    let (status, timeline) = api
        .get(&format!("/v1/creditors/{creditor}/invoices/{invoice}"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(timeline["connection_id"], connection.as_str());

    api.stop().await;
    fake.shutdown().await;
}

async fn a_preview_answers_the_engines_actions_and_names_the_field_at_fault(store: Arc<dyn Store>) {
    let api = start(store, key()).await;
    let creditor = api.create_creditor().await;
    let path = format!("/v1/creditors/{creditor}/preview");
    let file = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/scenarios/01-default-basic-partial-payment.json"
    );
    let bytes = std::fs::read(file).expect("scenario");
    let scenario: Value = serde_json::from_slice(&bytes).expect("JSON");

    let (status, preview) = api.post(&path, scenario.clone()).await;
    assert_eq!(status, StatusCode::OK, "{preview}");
    // Exactly what `forfall simulate --explain` prints for the same file.
    let parsed = forfall::scenario::Scenario::from_slice(&bytes).expect("scenario");
    let printed: Vec<Value> =
        forfall::simulate::render_lines(&forfall::simulate::run(&parsed), true, None)
            .lines()
            .map(|line| serde_json::from_str(line).expect("line"))
            .collect();
    assert_eq!(preview["actions"], Value::Array(printed));
    assert_eq!(preview["actions"][0]["action"], "notice_sent");
    assert_eq!(preview["check"]["ok"], true, "{preview}");

    // Nothing was stored.
    let (_, invoices) = api.get(&format!("/v1/creditors/{creditor}/invoices")).await;
    assert_eq!(invoices["data"], json!([]));

    // A due date that is not a date, and a policy key that does not exist.
    let mut bad = scenario.clone();
    bad["invoices"][0]["due"] = json!("2026-13-45");
    let (status, problem) = api.post(&path, bad).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(problem["errors"][0]["pointer"], "/invoices/0/due");
    let mut bad = scenario.clone();
    bad["policy"] = json!({ "notice_days": "five" });
    let (status, problem) = api.post(&path, bad).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(problem["errors"][0]["pointer"], "/policy/notice_days");
    let response = api
        .http
        .post(format!("{}{path}", api.base))
        .bearer_auth(&api.token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);

    api.stop().await;
}

async fn connections_need_valid_credentials_an_encryption_key_and_the_right_tenant(
    store: Arc<dyn Store>,
) {
    let api = start(store.clone(), key()).await;
    let creditor = api.create_creditor().await;
    let path = format!("/v1/creditors/{creditor}/connections");

    let (status, problem) = api
        .post(
            &path,
            json!({
                "platform": "tripletex",
                "credentials": { "consumer_token": "only-one-token-given" },
            }),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(
        problem["errors"][0]["pointer"], "/credentials/employee_token",
        "{problem}"
    );
    assert!(!problem.to_string().contains("only-one-token-given"));

    let (status, problem) = api
        .post(&path, json!({ "platform": "fiken", "credentials": {} }))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["errors"][0]["pointer"], "/platform");

    // Another partner's key does not reach this creditor's connections.
    let other = partner_key(api.store.as_ref(), api.clock.now()).await;
    let (status, _) = api.call_as(&other, reqwest::Method::GET, &path, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    api.stop().await;

    // A gateway without an encryption key says so instead of storing anything.
    let keyless = start(store, None).await;
    let creditor = keyless.create_creditor().await;
    let (status, problem) = keyless
        .post(
            &format!("/v1/creditors/{creditor}/connections"),
            json!({
                "platform": "tripletex",
                "credentials": { "consumer_token": "c-token", "employee_token": "e-token" },
            }),
        )
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{problem}");
    assert!(
        problem["type"]
            .as_str()
            .is_some_and(|t| t.ends_with("/no-encryption-key")),
        "{problem}"
    );
    keyless.stop().await;
}

async fn a_pass_running_when_its_connection_is_deleted_stops_without_writing_its_next_page(
    store: Arc<dyn Store>,
) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let (world, fake) = ingest::tripletex(store, 200, json!({ "page_size": 10 })).await;
    let written = AtomicUsize::new(0);
    let handle = tokio::runtime::Handle::current();
    let outcome = world
        .ingest
        .run_pass(&world.connection, true, None, &|stats| {
            if stats.pages == 1 {
                written.store(stats.created, Ordering::SeqCst);
                // The delete lands while the pass is between two pages.
                let deleted = tokio::task::block_in_place(|| {
                    handle.block_on(
                        world
                            .store
                            .delete_connection(&world.creditor, &world.connection),
                    )
                });
                assert!(deleted.expect("delete"));
            }
        })
        .await;
    let error = outcome.expect_err("the pass stops");
    assert!(error.to_string().contains("sync pass"), "{error}");
    let stored = world
        .store
        .list_invoices(&world.creditor, &Default::default(), 1000)
        .await
        .expect("invoices");
    assert_eq!(stored.len(), written.load(Ordering::SeqCst));
    // And no new pass starts.
    let again = world
        .ingest
        .run_pass(&world.connection, true, None, &|_| {})
        .await
        .expect_err("a deleted connection is not synced");
    assert!(
        matches!(again, forfall::sync::SyncError::UnknownConnection(_)),
        "{again}"
    );
    fake.shutdown().await;
}
