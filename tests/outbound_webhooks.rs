//! Outbound webhooks end to end: a partner (or creditor) registers an endpoint, the engine's
//! decisions become events, and a real receiver on loopback gets them signed the Standard
//! Webhooks way — checked here with HMAC-SHA256 computed independently of Forfall's signer —
//! through a stretch of 503s (retried with backoff, none lost), and again on replay with the same
//! event id. The endpoints' routes keep every owner to its own. The clock is manual: the runner
//! is drained after each step.

mod common;
mod ingest;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::NaiveDate;
use forfall::api::AppState;
use forfall::clock::{Clock, ManualClock};
use forfall::domain::{
    Country, CreditorId, JobState, Language, NewCreditor, Owner, PartnerId, Scopes,
};
use forfall::jobs::RunnerSettings;
use forfall::jobs::workers::{WorkerSettings, Workers, workers};
use forfall::secrets::EncryptionKey;
use forfall::store::Store;
use forfall::webhooks::DELIVERY_JOB;
use forfall_tripletex::fake::{FakeTripletex, NewCustomer, NewInvoice};
use hmac::{Hmac, KeyInit, Mac};
use rust_decimal_macros::dec;
use serde_json::{Value, json};

use ingest::{World, tripletex};

on_both_backends!(
    events_reach_a_signed_endpoint_through_an_outage_with_backoff_and_none_is_lost,
    a_replay_resends_the_same_event_id_and_only_to_its_tenant,
    endpoints_are_their_owners_alone_and_a_partners_endpoint_hears_all_its_creditors,
);

// ---------------------------------------------------------------------------------------------
// The receiver: verifies every delivery with its own HMAC-SHA256, answers 503 while told to.

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Received {
    id: String,
    body: Value,
    /// The signature checked out (independently of Forfall's code) and the timestamp is fresh.
    verified: bool,
    status: u16,
}

#[derive(Default)]
struct ReceiverState {
    secret: Option<String>,
    /// Answer 503 to this many requests before taking them.
    fail_next: usize,
    retry_after_seconds: Option<u64>,
    log: Vec<Received>,
}

#[derive(Clone)]
struct Receiver {
    url: String,
    state: Arc<Mutex<ReceiverState>>,
}

/// `v1,` + base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}")), from the specification alone.
fn independent_signature(secret: &str, id: &str, timestamp: &str, body: &[u8]) -> String {
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").expect("a whsec_ secret"))
        .expect("base64 secret");
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).expect("any key length");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

fn verify(secret: &str, headers: &HeaderMap, body: &[u8]) -> bool {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let (Some(id), Some(timestamp), Some(signatures)) = (
        text("webhook-id"),
        text("webhook-timestamp"),
        text("webhook-signature"),
    ) else {
        return false;
    };
    let fresh = timestamp
        .parse::<i64>()
        .is_ok_and(|t| (chrono::Utc::now().timestamp() - t).abs() <= 300);
    let expected = independent_signature(secret, id, timestamp, body);
    fresh && signatures.split(' ').any(|s| s == expected)
}

impl Receiver {
    async fn start() -> Receiver {
        let state = Arc::new(Mutex::new(ReceiverState::default()));
        let shared = state.clone();
        let app = axum::Router::new().route(
            "/hooks",
            axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
                let state = shared.clone();
                async move {
                    let mut state = state.lock().unwrap();
                    let verified = state
                        .secret
                        .as_deref()
                        .is_some_and(|secret| verify(secret, &headers, &body));
                    let failing = state.fail_next > 0;
                    let status = if failing {
                        state.fail_next -= 1;
                        StatusCode::SERVICE_UNAVAILABLE
                    } else {
                        StatusCode::OK
                    };
                    state.log.push(Received {
                        id: headers
                            .get("webhook-id")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_owned(),
                        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
                        verified,
                        status: status.as_u16(),
                    });
                    let mut answer = HeaderMap::new();
                    if let (true, Some(seconds)) = (failing, state.retry_after_seconds) {
                        answer.insert("retry-after", seconds.to_string().parse().unwrap());
                    }
                    (status, answer, "")
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hooks", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver { url, state }
    }

    fn set_secret(&self, secret: &str) {
        self.state.lock().unwrap().secret = Some(secret.to_owned());
    }

    /// The next `n` requests are answered 503, with `Retry-After` when given.
    fn fail_next(&self, n: usize, retry_after_seconds: Option<u64>) {
        let mut state = self.state.lock().unwrap();
        state.fail_next = n;
        state.retry_after_seconds = retry_after_seconds;
    }

    fn log(&self) -> Vec<Received> {
        self.state.lock().unwrap().log.clone()
    }

    fn delivered(&self) -> Vec<Received> {
        self.log().into_iter().filter(|r| r.status == 200).collect()
    }
}

// ---------------------------------------------------------------------------------------------
// The API, through a bearer key.

#[derive(Clone)]
struct Api {
    base: String,
    token: String,
    key_id: forfall::domain::ApiKeyId,
    http: reqwest::Client,
}

impl Api {
    async fn key(store: &dyn Store, base: &str, owner: &Owner) -> Api {
        let (token, hash) = forfall::api::auth::new_token();
        let key = store
            .create_api_key(owner, Scopes::ALL, None, &hash, chrono::Utc::now())
            .await
            .expect("API key");
        Api {
            base: base.to_owned(),
            token,
            key_id: key.id,
            http: reqwest::Client::new(),
        }
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        self.send_with(method, path, body, None).await
    }

    async fn send_with(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        idempotency_key: Option<&str>,
    ) -> (u16, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(key) = idempotency_key {
            request = request.header("Idempotency-Key", key);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer = request.send().await.expect("the API answers");
        let status = answer.status().as_u16();
        let text = answer.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.send(reqwest::Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(reqwest::Method::POST, path, Some(body)).await
    }

    async fn delete(&self, path: &str) -> (u16, Value) {
        self.send(reqwest::Method::DELETE, path, None).await
    }
}

/// Serves the API on loopback with `key` (or none) to seal endpoint secrets.
async fn serve_api(
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    key: Option<EncryptionKey>,
) -> String {
    let mut state = AppState::new(store, clock);
    state.encryption_key = key;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, forfall::api::router(state)).await;
    });
    base
}

// ---------------------------------------------------------------------------------------------
// A creditor on Tripletex with the workers and its own API key.

struct Setup {
    world: World,
    fake: FakeTripletex,
    workers: Workers,
    api: Api,
    receiver: Receiver,
}

async fn setup(store: Arc<dyn Store>) -> Setup {
    let (world, fake) = tripletex(store.clone(), 0, json!({})).await;
    let workers = workers(
        store.clone(),
        world.clock.clone(),
        world.ingest.clone(),
        "test-instance".into(),
        WorkerSettings {
            sink: None,
            agency_in_flight: 1,
            mailer: None,
            opt_out_hint: None,
            runner: RunnerSettings::default(),
            day_tick_at: chrono::NaiveTime::from_hms_opt(6, 0, 0).unwrap(),
            tick_every: Duration::from_secs(3600),
        },
    );
    let base = serve_api(store.clone(), world.clock.clone(), Some(world.key.clone())).await;
    let api = Api::key(
        store.as_ref(),
        &base,
        &Owner::Creditor(world.creditor.clone()),
    )
    .await;
    let receiver = Receiver::start().await;
    Setup {
        world,
        fake,
        workers,
        api,
        receiver,
    }
}

impl Setup {
    /// An invoice of 1 250 NOK due 2026-11-03: overdue (and warned of) on the test's today.
    fn overdue_invoice(&self) -> i64 {
        let customer = self.fake.add_customer(NewCustomer {
            name: "Fjordkraft Kantine AS".into(),
            organization_number: Some("914778271".into()),
            ..NewCustomer::default()
        });
        let issued: NaiveDate = "2026-10-20".parse().unwrap();
        self.fake
            .add_invoice(NewInvoice::new(customer, issued, dec!(1250.00)))
            .unwrap()
    }

    async fn sync(&self) {
        self.world
            .ingest
            .run_pass(&self.world.connection, false, None, &|_| {})
            .await
            .unwrap();
        self.workers.tick.run_due().await.unwrap();
        self.workers.runner.drain().await.unwrap();
    }

    async fn advance(&self, step: chrono::Duration) {
        self.world.clock.advance(step);
        self.workers.runner.drain().await.unwrap();
    }

    /// Registers the receiver for `types`; returns the endpoint's id.
    async fn register(&self, types: Value) -> String {
        let (status, endpoint) = self
            .api
            .post(
                "/v1/webhook-endpoints",
                json!({ "url": self.receiver.url, "event_types": types, "description": "ERP" }),
            )
            .await;
        assert_eq!(status, 201, "{endpoint}");
        let secret = endpoint["secret"].as_str().expect("the secret, once");
        assert!(secret.starts_with("whsec_"), "{secret}");
        self.receiver.set_secret(secret);
        endpoint["id"].as_str().unwrap().to_owned()
    }

    async fn events(&self, query: &str) -> Vec<Value> {
        let (status, page) = self.api.get(&format!("/v1/events{query}")).await;
        assert_eq!(status, 200, "{page}");
        page["data"].as_array().unwrap().clone()
    }

    async fn delivery_jobs(&self) -> Vec<forfall::domain::Job> {
        self.world
            .store
            .jobs(&self.world.creditor)
            .await
            .unwrap()
            .into_iter()
            .filter(|j| j.kind == DELIVERY_JOB)
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------

async fn events_reach_a_signed_endpoint_through_an_outage_with_backoff_and_none_is_lost(
    store: Arc<dyn Store>,
) {
    let t = setup(store).await;
    t.register(json!(["invoice.noticed", "invoice.transferred"]))
        .await;
    // The receiver is down for a while: its next six answers are 503 with Retry-After: 90.
    t.receiver.fail_next(6, Some(90));
    t.overdue_invoice();
    t.overdue_invoice();
    t.sync().await;

    // Both warnings are events, listed to the creditor.
    let events = t.events("?type=invoice.noticed").await;
    assert_eq!(events.len(), 2, "{events:?}");
    let ids: BTreeSet<String> = events
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    for event in &events {
        assert_eq!(event["creditor_id"], json!(t.world.creditor));
        assert!(
            event["data"]["invoice_id"]
                .as_str()
                .unwrap()
                .starts_with("inv_")
        );
        assert_eq!(event["data"]["transfer_on"], "2026-11-28");
    }

    // The first attempts were refused, and the retries wait: at least the receiver's
    // Retry-After, so draining again now sends nothing.
    let first = t.receiver.log();
    assert_eq!(first.len(), 2, "{first:?}");
    assert!(first.iter().all(|r| r.status == 503));
    let now = t.world.clock.now();
    let jobs = t.delivery_jobs().await;
    assert_eq!(jobs.len(), 2);
    for job in &jobs {
        assert_eq!(job.state, JobState::Pending);
        assert_eq!(job.attempts, 1);
        assert!(
            job.run_after >= now + chrono::Duration::seconds(90),
            "retried no sooner than Retry-After: {} vs {now}",
            job.run_after
        );
    }
    t.workers.runner.drain().await.unwrap();
    assert_eq!(t.receiver.log().len(), 2, "nothing is sent before its time");

    // Time passes; the receiver comes back after its sixth 503; every event arrives.
    for _ in 0..200 {
        t.advance(chrono::Duration::minutes(5)).await;
        let delivered: BTreeSet<String> =
            t.receiver.delivered().into_iter().map(|r| r.id).collect();
        if delivered == ids {
            break;
        }
    }
    let log = t.receiver.log();
    assert_eq!(log.iter().filter(|r| r.status == 503).count(), 6);
    let delivered = t.receiver.delivered();
    let delivered_ids: BTreeSet<String> = delivered.iter().map(|r| r.id.clone()).collect();
    assert_eq!(delivered_ids, ids, "every event delivered: {log:?}");
    assert_eq!(delivered.len(), 2, "each once");
    for request in &log {
        assert!(request.verified, "the signature checks out: {request:?}");
        assert_eq!(
            request.body["id"],
            json!(request.id),
            "webhook-id is the event id"
        );
        assert_eq!(request.body["type"], "invoice.noticed");
        assert!(request.body["data"]["invoice_number"].is_string());
        assert!(request.body["created_at"].is_string());
    }
    for job in t.delivery_jobs().await {
        assert_eq!(job.state, JobState::Succeeded, "{job:?}");
        assert!(job.attempts >= 2);
        let history = t.world.store.job_attempts(&job.id).await.unwrap();
        assert!(history.iter().any(|a| a.outcome == "retry"), "{history:?}");
    }
}

async fn a_replay_resends_the_same_event_id_and_only_to_its_tenant(store: Arc<dyn Store>) {
    let t = setup(store.clone()).await;
    let endpoint = t.register(json!(["*"])).await;
    t.overdue_invoice();
    t.sync().await;
    let events = t.events("").await;
    assert_eq!(events.len(), 1, "{events:?}");
    let event_id = events[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(t.receiver.delivered().len(), 1);

    // Replayed to every endpoint of the caller's that takes it, then to the one named.
    let (status, answer) = t
        .api
        .post(&format!("/v1/events/{event_id}/replay"), json!({}))
        .await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["deliveries"], json!([{ "endpoint_id": endpoint }]));
    t.workers.runner.drain().await.unwrap();
    let (status, _) = t
        .api
        .post(
            &format!("/v1/events/{event_id}/replay"),
            json!({ "endpoint_id": endpoint }),
        )
        .await;
    assert_eq!(status, 202);
    t.workers.runner.drain().await.unwrap();
    let delivered = t.receiver.delivered();
    assert_eq!(delivered.len(), 3, "the event and two replays");
    assert!(delivered.iter().all(|r| r.id == event_id && r.verified));
    assert!(
        delivered.iter().all(|r| r.body == delivered[0].body),
        "the same event each time"
    );

    // Unknown endpoint: 404. Another creditor's key sees neither the event nor the endpoint.
    let (status, _) = t
        .api
        .post(
            &format!("/v1/events/{event_id}/replay"),
            json!({ "endpoint_id": "we_nope" }),
        )
        .await;
    assert_eq!(status, 404);
    let other = store
        .create_creditor(&creditor("Havbris Fisk AS", None), t.world.clock.now())
        .await
        .unwrap();
    let stranger = Api::key(store.as_ref(), &t.api.base, &Owner::Creditor(other.id)).await;
    let (status, problem) = stranger
        .post(&format!("/v1/events/{event_id}/replay"), json!({}))
        .await;
    assert_eq!(status, 404, "{problem}");
    let (status, page) = stranger.get("/v1/events").await;
    assert_eq!(status, 200);
    assert_eq!(page["data"], json!([]));
    let (status, _) = stranger
        .get(&format!("/v1/webhook-endpoints/{endpoint}"))
        .await;
    assert_eq!(status, 404);
    t.workers.runner.drain().await.unwrap();
    assert_eq!(t.receiver.delivered().len(), 3, "nothing more was sent");
}

fn creditor(name: &str, partner: Option<&PartnerId>) -> NewCreditor {
    NewCreditor {
        name: name.into(),
        organisation_number: "923609016".into(),
        country: Country::Norway,
        time_zone: None,
        language: Language::Nb,
        email: None,
        policy: json!({}),
        partner_id: partner.cloned(),
    }
}

async fn endpoints_are_their_owners_alone_and_a_partners_endpoint_hears_all_its_creditors(
    store: Arc<dyn Store>,
) {
    let clock: Arc<ManualClock> = Arc::new(ManualClock::new(chrono::Utc::now()));
    let now = clock.now();
    let key = EncryptionKey::from_base64(&EncryptionKey::generate_base64()).unwrap();
    let base = serve_api(store.clone(), clock.clone(), Some(key)).await;
    let p = store.create_partner("Inkasso Nord", now).await.unwrap();
    let q = store.create_partner("Inkasso Sør", now).await.unwrap();
    let a = store
        .create_creditor(&creditor("A", Some(&p.id)), now)
        .await
        .unwrap();
    let b = store
        .create_creditor(&creditor("B", Some(&p.id)), now)
        .await
        .unwrap();
    let c = store
        .create_creditor(&creditor("C", Some(&q.id)), now)
        .await
        .unwrap();
    let partner = Api::key(store.as_ref(), &base, &Owner::Partner(p.id.clone())).await;
    let other_partner = Api::key(store.as_ref(), &base, &Owner::Partner(q.id.clone())).await;
    let creditor_a = Api::key(store.as_ref(), &base, &Owner::Creditor(a.id.clone())).await;

    let (status, created) = partner
        .post(
            "/v1/webhook-endpoints",
            json!({ "url": "https://erp.example/forfall" }),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["event_types"], json!(["*"]), "omitted: every type");
    assert_eq!(created["partner_id"], json!(p.id));
    assert!(created["secret"].as_str().unwrap().starts_with("whsec_"));
    let id = created["id"].as_str().unwrap().to_owned();

    // A retry with the same Idempotency-Key answers the same endpoint and secret, which the
    // gateway kept only sealed.
    let body = json!({ "url": "https://erp.example/other", "event_types": ["case.closed"] });
    let (status, first) = partner
        .send_with(
            reqwest::Method::POST,
            "/v1/webhook-endpoints",
            Some(body.clone()),
            Some("retry-1"),
        )
        .await;
    assert_eq!(status, 201, "{first}");
    let (status, again) = partner
        .send_with(
            reqwest::Method::POST,
            "/v1/webhook-endpoints",
            Some(body),
            Some("retry-1"),
        )
        .await;
    assert_eq!(status, 201, "{again}");
    assert_eq!(again, first);
    let secret = first["secret"].as_str().unwrap();
    let kept = store
        .begin_idempotent(&partner.key_id, "retry-1", "another request", now)
        .await
        .unwrap();
    let forfall::store::Idempotency::Answered { body: kept, .. } = kept else {
        panic!("the first answer is kept: {kept:?}");
    };
    assert!(
        !kept.contains(&secret["whsec_".len()..]),
        "kept sealed: {kept}"
    );
    assert!(
        !kept.contains(first["id"].as_str().unwrap()),
        "sealed whole"
    );
    let (status, _) = partner
        .delete(&format!(
            "/v1/webhook-endpoints/{}",
            first["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(status, 204);

    // Listed and read by its owner, never with the secret.
    let (status, page) = partner.get("/v1/webhook-endpoints").await;
    assert_eq!(status, 200);
    assert_eq!(page["data"].as_array().unwrap().len(), 1);
    assert!(page["data"][0].get("secret").is_none(), "{page}");
    let (status, one) = partner.get(&format!("/v1/webhook-endpoints/{id}")).await;
    assert_eq!(status, 200);
    assert!(one.get("secret").is_none());

    // Nobody else's: another partner, and even a creditor the partner serves, get 404.
    for stranger in [&other_partner, &creditor_a] {
        let (status, problem) = stranger.get(&format!("/v1/webhook-endpoints/{id}")).await;
        assert_eq!(status, 404, "{problem}");
        assert_eq!(problem["status"], 404);
        let (status, _) = stranger
            .delete(&format!("/v1/webhook-endpoints/{id}"))
            .await;
        assert_eq!(status, 404);
        let (_, page) = stranger.get("/v1/webhook-endpoints").await;
        assert_eq!(page["data"], json!([]));
    }

    // Who hears of whom: the partner's endpoint of all its creditors, a creditor's of itself.
    let (status, own) = creditor_a
        .post(
            "/v1/webhook-endpoints",
            json!({ "url": "http://127.0.0.1:9/a", "event_types": ["case.withdrawn"] }),
        )
        .await;
    assert_eq!(status, 201, "{own}");
    let own_id = own["id"].as_str().unwrap().to_owned();
    let hears = |creditor: CreditorId| {
        let store = store.clone();
        async move {
            store
                .webhook_endpoints_for(&creditor)
                .await
                .unwrap()
                .into_iter()
                .map(|e| e.id.to_string())
                .collect::<BTreeSet<_>>()
        }
    };
    assert_eq!(
        hears(a.id.clone()).await,
        BTreeSet::from([id.clone(), own_id.clone()])
    );
    assert_eq!(hears(b.id.clone()).await, BTreeSet::from([id.clone()]));
    assert!(hears(c.id.clone()).await.is_empty());

    // Deleted by its owner: gone from every view, and it hears nothing more.
    let (status, _) = partner.delete(&format!("/v1/webhook-endpoints/{id}")).await;
    assert_eq!(status, 204);
    let (status, _) = partner.get(&format!("/v1/webhook-endpoints/{id}")).await;
    assert_eq!(status, 404);
    assert_eq!(hears(a.id.clone()).await, BTreeSet::from([own_id]));
    assert!(hears(b.id.clone()).await.is_empty());

    // Invalid input names every field at fault.
    let (status, problem) = partner
        .post(
            "/v1/webhook-endpoints",
            json!({ "url": "ftp://erp.example", "event_types": ["invoice.noticed", "nope"] }),
        )
        .await;
    assert_eq!(status, 422, "{problem}");
    let pointers: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["pointer"].as_str().unwrap())
        .collect();
    assert_eq!(pointers, ["/url", "/event_types/1"]);

    // A gateway without an encryption key cannot keep a secret: it says so.
    let keyless = serve_api(store.clone(), clock.clone(), None).await;
    let partner_keyless = Api {
        base: keyless,
        ..partner.clone()
    };
    let (status, problem) = partner_keyless
        .post(
            "/v1/webhook-endpoints",
            json!({ "url": "https://erp.example/forfall" }),
        )
        .await;
    assert_eq!(status, 503, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("encryption key")
    );
}
