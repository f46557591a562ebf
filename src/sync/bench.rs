//! The ingest benchmarks behind `forfall bench sync` and `forfall bench webhooks`. They print
//! times and ratios; they assert nothing.
//!
//! - **sync**: a full pass of the Tripletex connector over the Tripletex fake seeded with N
//!   invoices into a fresh store (SQLite, and PostgreSQL when a URL is given), beside a bare
//!   reqwest loop that pages through the same fake, the same windows and fields, in the same run.
//!   Ratio = pass time / bare loop time (goal <= 1.5).
//! - **webhooks**: signed `invoice.v1` deliveries posted 64 at a time to the gateway's
//!   `POST /hooks/{connection}` (verify + store + acknowledge; the background processing is not
//!   running), beside a bare axum handler that only verifies the signature. Ratio = gateway
//!   throughput / bare throughput (goal >= 0.8).

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use chrono::Utc;
use forfall_connector::client::HttpSettings;
use forfall_connector::standard_webhooks::{self, Secret};
use forfall_connector::{DebtorKind, RemoteCustomer, RemoteId, RemoteInvoice};
use forfall_tripletex::fake::{FakeConfig, FakeTripletex};
use forfall_tripletex::paging::{first_window, month_of, next_month};
use rust_decimal::Decimal;

use super::Ingest;
use super::connections::{ConnectionSecrets, Connectors};
use crate::api::metrics::Metrics;
use crate::clock::{Clock, SystemClock};
use crate::domain::{ConnectionId, Country, Language, NewCreditor};
use crate::secrets::EncryptionKey;
use crate::store::{self, Store, StoreOptions};

/// Which databases to measure.
pub struct Backends {
    /// Where the SQLite files go (a temporary directory).
    pub sqlite_dir: std::path::PathBuf,
    pub postgres_url: Option<String>,
}

type Failed = String;

/// A fresh store: a new SQLite file, or a new PostgreSQL database created through the given URL
/// (dropped again by [`drop_database`]).
pub(crate) async fn fresh_store(
    backends: &Backends,
    name: &str,
    postgres: bool,
    max_connections: u32,
) -> Result<Arc<dyn Store>, Failed> {
    let url = if postgres {
        let admin = backends.postgres_url.clone().ok_or("no PostgreSQL URL")?;
        let pool = sqlx::PgPool::connect(&admin)
            .await
            .map_err(|e| e.to_string())?;
        sqlx::query(&format!(
            "DROP DATABASE IF EXISTS forfall_{name} WITH (FORCE)"
        ))
        .execute(&pool)
        .await
        .map_err(|e| e.to_string())?;
        sqlx::query(&format!("CREATE DATABASE forfall_{name}"))
            .execute(&pool)
            .await
            .map_err(|e| e.to_string())?;
        pool.close().await;
        store::with_database(&admin, &format!("forfall_{name}"))
    } else {
        format!("sqlite://{}/{name}.db", backends.sqlite_dir.display())
    };
    let store = store::open(&StoreOptions {
        url,
        max_connections,
    })
    .await
    .map_err(|e| e.to_string())?;
    store.migrate().await.map_err(|e| e.to_string())?;
    Ok(store)
}

pub(crate) async fn drop_database(backends: &Backends, name: &str) {
    if let Some(admin) = &backends.postgres_url
        && let Ok(pool) = sqlx::PgPool::connect(admin).await
    {
        let _ = sqlx::query(&format!(
            "DROP DATABASE IF EXISTS forfall_{name} WITH (FORCE)"
        ))
        .execute(&pool)
        .await;
        pool.close().await;
    }
}

async fn world(
    store: Arc<dyn Store>,
    platform: &str,
    settings: serde_json::Value,
    webhook_secret: &str,
) -> Result<(Arc<Ingest>, ConnectionId), Failed> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let creditor = store
        .create_creditor(
            &NewCreditor {
                name: "Benk AS".into(),
                organisation_number: "923609016".into(),
                country: Country::Norway,
                time_zone: None,
                language: Language::Nb,
                email: None,
                policy: serde_json::json!({}),
                partner_id: None,
            },
            clock.now(),
        )
        .await
        .map_err(|e| e.to_string())?;
    let key =
        EncryptionKey::from_base64(&EncryptionKey::generate_base64()).map_err(|e| e.to_string())?;
    let secrets = ConnectionSecrets {
        settings,
        webhook_secret: Some(webhook_secret.into()),
    };
    let id = secrets
        .create_connection(store.as_ref(), &key, &creditor.id, platform, clock.now())
        .await
        .map_err(|e| e.to_string())?
        .id;
    let http = HttpSettings {
        requests_per_second: std::num::NonZeroU32::MAX,
        ..HttpSettings::default()
    };
    let ingest = Arc::new(Ingest::new(
        store,
        clock,
        Connectors::new(Some(key), http),
        Arc::new(Metrics::default()),
    ));
    Ok((ingest, id))
}

/// Pages through every window of the fake with plain reqwest: the floor for any sync.
async fn bare_loop(
    fake: &FakeTripletex,
    config: &FakeConfig,
    lookback_days: u64,
) -> Result<(Duration, usize), Failed> {
    let http = reqwest::Client::new();
    let started = Instant::now();
    let session: serde_json::Value = http
        .put(format!(
            "{}/token/session/:create?consumerToken={}&employeeToken={}&expirationDate=2999-01-01",
            fake.base_url(),
            config.consumer_token,
            config.employee_token
        ))
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    let token = session["value"]["token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let today = config.today;
    let mut window = first_window(today, lookback_days);
    let mut invoices = 0;
    let fields = forfall_tripletex::transformers::invoice_fields();
    loop {
        let mut from = 0usize;
        loop {
            let body = http
                .get(format!("{}/invoice", fake.base_url()))
                .basic_auth("0", Some(&token))
                .query(&[
                    ("invoiceDateFrom", window.to_string()),
                    ("invoiceDateTo", next_month(window).to_string()),
                    ("from", from.to_string()),
                    ("count", "1000".into()),
                    ("sorting", "id".into()),
                    ("fields", fields.clone()),
                ])
                .send()
                .await
                .map_err(|e| e.to_string())?
                .bytes()
                .await
                .map_err(|e| e.to_string())?;
            let page: serde_json::Value =
                serde_json::from_slice(&body).map_err(|e| e.to_string())?;
            let n = page["values"].as_array().map_or(0, Vec::len);
            invoices += n;
            from += n;
            if n < 1000 {
                break;
            }
        }
        if window >= month_of(today) {
            break;
        }
        window = next_month(window);
    }
    Ok((started.elapsed(), invoices))
}

/// `forfall bench sync`.
pub async fn bench_sync(invoices: usize, backends: &Backends) -> Result<String, Failed> {
    let mut out = String::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let config = FakeConfig {
        seed: 42,
        invoices,
        ..FakeConfig::default()
    };
    let seeding = Instant::now();
    let fake = FakeTripletex::start(listener, config.clone())
        .await
        .map_err(|e| e.to_string())?;
    out.push_str(&format!(
        "Tripletex fake seeded with {invoices} invoices in {:.1} s\n",
        seeding.elapsed().as_secs_f64()
    ));
    let lookback = 3 * 366 + 31;
    let mut runs = vec![("SQLite (WAL)", false)];
    if backends.postgres_url.is_some() {
        runs.push(("PostgreSQL", true));
    }
    for (name, postgres) in runs {
        let store = fresh_store(backends, "bench_sync", postgres, 8).await?;
        let settings = serde_json::json!({
            "base_url": fake.base_url(),
            "consumer_token": config.consumer_token,
            "employee_token": config.employee_token,
            "requests_per_second": u32::MAX,
        });
        let (ingest, id) = world(store.clone(), "tripletex", settings, "secret").await?;
        // The bare loop first warms the fake's caches for both (each then reads the same pages).
        let (_, _) = bare_loop(&fake, &config, lookback).await?;
        let started = Instant::now();
        let stats = ingest
            .run_pass(&id, true, None, &|_| {})
            .await
            .map_err(|e| e.to_string())?;
        let synced = started.elapsed();
        let (bare, listed) = bare_loop(&fake, &config, lookback).await?;
        out.push_str(&format!(
            "{name}: sync {:.2} s ({} pages, {} invoices listed, {} stored, {} decisions), bare reqwest loop {:.2} s ({listed} invoices), ratio {:.2} (goal <= 1.5)\n",
            synced.as_secs_f64(),
            stats.pages,
            stats.invoices,
            stats.created,
            stats.decisions,
            bare.as_secs_f64(),
            synced.as_secs_f64() / bare.as_secs_f64().max(1e-9)
        ));
        store.close().await;
        if postgres {
            drop_database(backends, "bench_sync").await;
        }
    }
    fake.shutdown().await;
    Ok(out)
}

fn delivery_invoice(n: usize) -> RemoteInvoice {
    let today = Utc::now().date_naive();
    RemoteInvoice {
        id: RemoteId(format!("INV-{n}")),
        number: n.to_string(),
        customer: RemoteCustomer {
            id: RemoteId(format!("C-{}", n % 500)),
            kind: DebtorKind::Business,
            name: "Nordlys Bakeri AS".into(),
            organisation_number: Some("923609016".into()),
            email: Some("post@nordlys.example".into()),
            address_lines: vec!["Storgata 1".into()],
            postal_code: Some("0150".into()),
            city: Some("OSLO".into()),
            country: Some("NO".into()),
            platform_dunning: false,
        },
        issued: today - chrono::Days::new(30),
        due: today - chrono::Days::new(16),
        currency: "NOK".into(),
        amount: Decimal::new(125_000, 2),
        outstanding: Decimal::new(125_000, 2),
        payment_reference: None,
        credited: false,
    }
}

/// Posts `bodies` with `concurrency` in flight; deliveries per second.
async fn post_all(
    url: &str,
    bodies: Vec<(HeaderMap, Vec<u8>)>,
    concurrency: usize,
) -> Result<f64, Failed> {
    let client = reqwest::Client::new();
    let started = Instant::now();
    let queue = Arc::new(tokio::sync::Mutex::new(bodies));
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let queue = queue.clone();
        let client = client.clone();
        let url = url.to_owned();
        tasks.push(tokio::spawn(async move {
            let mut done = 0usize;
            loop {
                let next = queue.lock().await.pop();
                let Some((headers, body)) = next else { break };
                let status = client
                    .post(&url)
                    .headers(headers)
                    .body(body)
                    .send()
                    .await
                    .map_err(|e| e.to_string())?
                    .status();
                if status.as_u16() != 202 {
                    return Err(format!("answered {status}"));
                }
                done += 1;
            }
            Ok::<usize, String>(done)
        }));
    }
    let mut total = 0;
    for task in tasks {
        total += task.await.map_err(|e| e.to_string())??;
    }
    Ok(total as f64 / started.elapsed().as_secs_f64().max(1e-9))
}

fn signed_bodies(secret: &Secret, count: usize, tag: &str) -> Vec<(HeaderMap, Vec<u8>)> {
    let now = Utc::now();
    (0..count)
        .map(|n| {
            let event = forfall_generic::WebhookEvent::Updated(delivery_invoice(n));
            let body = forfall_generic::event_json(&event, now)
                .to_string()
                .into_bytes();
            let id = format!("msg_{tag}_{n}");
            let mut headers = HeaderMap::new();
            for (name, value) in standard_webhooks::headers(secret, &id, now.timestamp(), &body) {
                if let Ok(value) = value.parse() {
                    headers.insert(name, value);
                }
            }
            headers.insert(
                axum::http::header::CONTENT_TYPE,
                axum::http::HeaderValue::from_static("application/json"),
            );
            (headers, body)
        })
        .collect()
}

async fn serve_router(
    router: axum::Router,
) -> Result<(String, tokio::task::JoinHandle<()>), Failed> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let base = format!(
        "http://{}",
        listener.local_addr().map_err(|e| e.to_string())?
    );
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Ok((base, task))
}

/// `forfall bench webhooks`.
pub async fn bench_webhooks(deliveries: usize, backends: &Backends) -> Result<String, Failed> {
    const IN_FLIGHT: usize = 64;
    let mut out = String::new();
    let secret = Secret::generate();
    // The bare handler: verify the signature, answer 202.
    let bare_secret = secret.clone();
    let bare = axum::Router::new().route(
        "/hooks/{connection}",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let secret = bare_secret.clone();
            async move {
                match standard_webhooks::verify(
                    &secret,
                    &headers,
                    &body,
                    Utc::now(),
                    standard_webhooks::DEFAULT_TOLERANCE,
                ) {
                    Ok(_) => axum::http::StatusCode::ACCEPTED,
                    Err(_) => axum::http::StatusCode::UNAUTHORIZED,
                }
            }
        }),
    );
    let (bare_base, bare_task) = serve_router(bare).await?;
    let mut runs = vec![("SQLite (WAL)", false)];
    if backends.postgres_url.is_some() {
        runs.push(("PostgreSQL", true));
    }
    for (name, postgres) in runs {
        let store = fresh_store(backends, "bench_hooks", postgres, 8).await?;
        let (ingest, id) = world(
            store.clone(),
            "generic",
            serde_json::json!({}),
            &secret.to_string(),
        )
        .await?;
        let mut state = crate::api::AppState::new(store.clone(), Arc::new(SystemClock));
        state.ingest = Some(ingest);
        let (base, task) = serve_router(crate::api::router(state)).await?;
        let tag = format!("{}", uuid::Uuid::now_v7().simple());
        let gateway = post_all(
            &format!("{base}/hooks/{id}"),
            signed_bodies(&secret, deliveries, &tag),
            IN_FLIGHT,
        )
        .await?;
        let bare_rate = post_all(
            &format!("{bare_base}/hooks/{id}"),
            signed_bodies(&secret, deliveries, &format!("{tag}b")),
            IN_FLIGHT,
        )
        .await?;
        out.push_str(&format!(
            "{name}: gateway {gateway:.0} deliveries/s (verify + store + 202), bare axum {bare_rate:.0}/s (verify + 202), ratio {:.2} (goal >= 0.8)\n",
            gateway / bare_rate.max(1e-9)
        ));
        task.abort();
        store.close().await;
        if postgres {
            drop_database(backends, "bench_hooks").await;
        }
    }
    bare_task.abort();
    Ok(out)
}
