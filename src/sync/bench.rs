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
//!
//! Beside each, its floor (`FloorDb`): the bare loop or handler plus the least storing any
//! durable design must do (a plain multi-row INSERT of each page's open invoices; one
//! group-committed INSERT of each delivery's id and body), in a table with nothing else, in the
//! same run. floor / bare says what the goal allows at all on this machine; gateway / floor is
//! the gateway's own cost.

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

/// This process's CPU time so far (user and system, every thread), where the system tells it:
/// Linux's `/proc/self/stat`, in clock ticks of 10 ms (`USER_HZ` is 100 on every Linux this runs
/// on); `None` elsewhere. A benchmark prints CPU per item beside its rates: on a machine whose
/// cores are all busy, a ratio cannot beat the ratio of CPU spent per item.
pub(crate) fn process_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) may hold spaces: count the fields after its `)`. The state is
    // field 3; `utime` and `stime` are fields 14 and 15.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = |field: usize| fields.get(field - 3)?.parse::<u64>().ok();
    Some(Duration::from_millis((ticks(14)? + ticks(15)?) * 10))
}

/// The CPU spent since `before` (a [`process_cpu`] reading), per item, in microseconds.
pub(crate) fn cpu_per_item(before: Option<Duration>, items: usize) -> Option<f64> {
    let spent = process_cpu()?.checked_sub(before?)?;
    Some(spent.as_secs_f64() * 1e6 / items.max(1) as f64)
}

/// A fresh store: a new SQLite file, or a new PostgreSQL database created through the given URL
/// (dropped again by [`drop_database`]).
pub(crate) async fn fresh_store(
    backends: &Backends,
    name: &str,
    postgres: bool,
    max_connections: u32,
) -> Result<Arc<dyn Store>, Failed> {
    let url = if postgres {
        fresh_database(backends, name).await?
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

/// A new, empty PostgreSQL database `forfall_{name}` (an old one of that name is dropped first);
/// its URL. Dropped again by [`drop_database`].
async fn fresh_database(backends: &Backends, name: &str) -> Result<String, Failed> {
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
    Ok(store::with_database(&admin, &format!("forfall_{name}")))
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

/// Plain reqwest paging through every window of the fake: the same requests a full sync makes.
struct BarePager {
    http: reqwest::Client,
    base: String,
    token: String,
    fields: String,
    today: chrono::NaiveDate,
    window: chrono::NaiveDate,
    from: usize,
    done: bool,
}

impl BarePager {
    async fn start(
        fake: &FakeTripletex,
        config: &FakeConfig,
        lookback_days: u64,
    ) -> Result<BarePager, Failed> {
        let http = reqwest::Client::new();
        let session: serde_json::Value = http
            .put(format!(
                "{}/token/session/:create?consumerToken={}&employeeToken={}&expirationDate=2999-01-01",
                fake.base_url(),
                config.consumer_token,
                config.employee_token
            ))
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| e.to_string())?
            .json()
            .await
            .map_err(|e| e.to_string())?;
        let token = session["value"]["token"]
            .as_str()
            .ok_or("the fake's session has no token")?
            .to_owned();
        Ok(BarePager {
            http,
            base: fake.base_url(),
            token,
            fields: forfall_tripletex::transformers::invoice_fields(),
            today: config.today,
            window: first_window(config.today, lookback_days),
            from: 0,
            done: false,
        })
    }

    /// The next page's invoices (`None` after the last page).
    async fn next(&mut self) -> Result<Option<Vec<serde_json::Value>>, Failed> {
        if self.done {
            return Ok(None);
        }
        let body = self
            .http
            .get(format!("{}/invoice", self.base))
            .basic_auth("0", Some(&self.token))
            .query(&[
                ("invoiceDateFrom", self.window.to_string()),
                ("invoiceDateTo", next_month(self.window).to_string()),
                ("from", self.from.to_string()),
                ("count", "1000".into()),
                ("sorting", "id".into()),
                ("fields", self.fields.clone()),
            ])
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| e.to_string())?
            .bytes()
            .await
            .map_err(|e| e.to_string())?;
        let mut page: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| e.to_string())?;
        let serde_json::Value::Array(values) = page["values"].take() else {
            return Err("a page of the fake has no values".into());
        };
        self.from += values.len();
        if values.len() < 1000 {
            if self.window >= month_of(self.today) {
                self.done = true;
            } else {
                self.window = next_month(self.window);
                self.from = 0;
            }
        }
        Ok(Some(values))
    }
}

/// Pages through every window of the fake with plain reqwest: the floor for any sync.
async fn bare_loop(
    fake: &FakeTripletex,
    config: &FakeConfig,
    lookback_days: u64,
) -> Result<(Duration, usize), Failed> {
    let started = Instant::now();
    let mut pager = BarePager::start(fake, config, lookback_days).await?;
    let mut invoices = 0;
    while let Some(page) = pager.next().await? {
        invoices += page.len();
    }
    Ok((started.elapsed(), invoices))
}

/// The floor of a durable sync: the bare loop, plus one multi-row INSERT per page of its open
/// invoices' id, customer, dates and amounts into a table with nothing else, written while the
/// next page is fetched (as a sync pass does). No engine, no events, no decisions.
async fn floor_loop(
    fake: &FakeTripletex,
    config: &FakeConfig,
    lookback_days: u64,
    db: &FloorDb,
) -> Result<(Duration, usize), Failed> {
    let started = Instant::now();
    let mut pager = BarePager::start(fake, config, lookback_days).await?;
    let mut stored = 0;
    let mut next = pager.next().await?;
    while let Some(page) = next {
        let rows: Vec<FloorInvoice> = page
            .iter()
            .filter(|v| {
                v["amountOutstanding"]
                    .as_f64()
                    .is_some_and(|outstanding| outstanding > 0.0)
            })
            .map(|v| {
                let text = |v: &serde_json::Value| match v {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                [
                    text(&v["id"]),
                    text(&v["customer"]["id"]),
                    text(&v["invoiceDate"]),
                    text(&v["invoiceDueDate"]),
                    text(&v["amount"]),
                    text(&v["amountOutstanding"]),
                ]
            })
            .collect();
        stored += rows.len();
        let (written, fetched) = tokio::join!(db.insert_invoices(&rows), pager.next());
        written.map_err(|e| e.to_string())?;
        next = fetched?;
    }
    Ok((started.elapsed(), stored))
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
        let floor_db = FloorDb::open(backends, "bench_sync", postgres).await?;
        let floor = floor_loop(&fake, &config, lookback, &floor_db).await;
        floor_db.close(backends).await;
        let (floor, floor_stored) = floor?;
        if floor_stored != stats.created {
            return Err(format!(
                "{out}{name}: the floor stored {floor_stored} open invoices, the sync {}",
                stats.created
            ));
        }
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
        out.push_str(&format!(
            "{name}: floor of a durable sync (bare loop + one multi-row INSERT per page of its {floor_stored} open invoices, nothing else) {:.2} s: floor/bare {:.2}, sync/floor {:.2}\n",
            floor.as_secs_f64(),
            floor.as_secs_f64() / bare.as_secs_f64().max(1e-9),
            synced.as_secs_f64() / floor.as_secs_f64().max(1e-9),
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

/// Group commits under way at once in the webhook floor on PostgreSQL (several, since that
/// database commits several transactions at once; the gateway's one was tried with four and
/// gained nothing). SQLite has one writer.
const FLOOR_PG_WRITERS: u32 = 4;

/// The floors' database: a fresh SQLite file with the store's own settings, or a fresh
/// PostgreSQL database (dropped again by [`FloorDb::close`]), holding only the floors' tables.
pub(crate) enum FloorDb {
    Sqlite(sqlx::SqlitePool),
    /// The pool and the name given to [`fresh_database`].
    Postgres(sqlx::PgPool, String),
}

/// Runs `$body` with `$pool` the floor's pool and `$db` its sqlx database type: one text for
/// both backends' statements.
macro_rules! on_floor {
    ($floor:expr, |$pool:ident, $db:ident| $body:expr) => {
        match $floor {
            FloorDb::Sqlite($pool) => {
                type $db = sqlx::Sqlite;
                $body
            }
            FloorDb::Postgres($pool, _) => {
                type $db = sqlx::Postgres;
                $body
            }
        }
    };
}

type FloorItem = (String, Vec<u8>, tokio::sync::oneshot::Sender<bool>);

/// An invoice as the sync floor stores it: id, customer, issued, due, amount, outstanding.
type FloorInvoice = [String; 6];

/// Rows per multi-row statement: within both databases' limits on bound parameters.
const FLOOR_ROWS_PER_STATEMENT: usize = 1000;

impl FloorDb {
    /// The floor of the benchmark `name` (its own file or database, so that benchmarks run
    /// at once do not share one).
    pub(crate) async fn open(
        backends: &Backends,
        name: &str,
        postgres: bool,
    ) -> Result<FloorDb, Failed> {
        const TABLES: [&str; 4] = [
            "CREATE TABLE deliveries (id TEXT PRIMARY KEY, body BYTEA NOT NULL)",
            "CREATE TABLE invoices (id TEXT PRIMARY KEY, customer TEXT NOT NULL, \
             issued TEXT NOT NULL, due TEXT NOT NULL, amount TEXT NOT NULL, \
             outstanding TEXT NOT NULL)",
            "CREATE TABLE outbox (id TEXT PRIMARY KEY, body BYTEA NOT NULL, state TEXT NOT NULL)",
            "CREATE INDEX outbox_waiting ON outbox (state, id)",
        ];
        let name = format!("{name}_floor");
        let floor = if postgres {
            let url = fresh_database(backends, &name).await?;
            let pool = sqlx::postgres::PgPoolOptions::new()
                .max_connections(FLOOR_PG_WRITERS)
                .connect(&url)
                .await;
            match pool {
                Ok(pool) => FloorDb::Postgres(pool, name),
                Err(e) => {
                    drop_database(backends, &name).await;
                    return Err(e.to_string());
                }
            }
        } else {
            let file = backends.sqlite_dir.join(format!("{name}.db"));
            for suffix in ["", "-wal", "-shm"] {
                let mut stale = file.clone().into_os_string();
                stale.push(suffix);
                let _ = std::fs::remove_file(stale);
            }
            // The store's own settings, those of its writer included (see `store::sqlite`).
            let options = store::sqlite_writer_settings(store::sqlite_connection_settings(
                sqlx::sqlite::SqliteConnectOptions::new().filename(file),
            ));
            let pool = sqlx::sqlite::SqlitePoolOptions::new()
                .max_connections(1)
                .connect_with(options)
                .await
                .map_err(|e| e.to_string())?;
            FloorDb::Sqlite(pool)
        };
        for table in TABLES {
            let created = on_floor!(&floor, |pool, Db| sqlx::query::<Db>(table)
                .execute(pool)
                .await
                .map(|_| ()));
            if let Err(e) = created {
                floor.close(backends).await;
                return Err(e.to_string());
            }
        }
        Ok(floor)
    }

    async fn insert(&self, batch: &[FloorItem]) -> Result<(), sqlx::Error> {
        on_floor!(self, |pool, Db| {
            let mut insert = sqlx::QueryBuilder::<Db>::new("INSERT INTO deliveries (id, body) ");
            insert.push_values(batch, |mut row, (id, body, _)| {
                row.push_bind(id.as_str()).push_bind(body.as_slice());
            });
            insert.push(" ON CONFLICT (id) DO NOTHING");
            insert.build().execute(pool).await.map(|_| ())
        })
    }

    async fn insert_invoices(&self, rows: &[FloorInvoice]) -> Result<(), sqlx::Error> {
        for chunk in rows.chunks(FLOOR_ROWS_PER_STATEMENT) {
            on_floor!(self, |pool, Db| {
                let mut insert = sqlx::QueryBuilder::<Db>::new(
                    "INSERT INTO invoices (id, customer, issued, due, amount, outstanding) ",
                );
                insert.push_values(chunk, |mut row, columns| {
                    for column in columns {
                        row.push_bind(column.as_str());
                    }
                });
                insert.push(" ON CONFLICT (id) DO NOTHING");
                insert.build().execute(pool).await?;
            });
        }
        Ok(())
    }

    /// Puts messages in the outbox, waiting.
    pub(crate) async fn fill_outbox(
        &self,
        messages: &[(String, Vec<u8>)],
    ) -> Result<(), sqlx::Error> {
        for chunk in messages.chunks(FLOOR_ROWS_PER_STATEMENT) {
            on_floor!(self, |pool, Db| {
                let mut insert =
                    sqlx::QueryBuilder::<Db>::new("INSERT INTO outbox (id, body, state) ");
                insert.push_values(chunk, |mut row, (id, body)| {
                    row.push_bind(id.as_str())
                        .push_bind(body.as_slice())
                        .push_bind("waiting");
                });
                insert.build().execute(pool).await?;
            });
        }
        Ok(())
    }

    /// Claims up to `count` waiting messages (marks them sending); none when the outbox is empty.
    pub(crate) async fn claim(&self, count: i64) -> Result<Vec<(String, Vec<u8>)>, sqlx::Error> {
        // Several loops claim at once: on PostgreSQL each skips the rows another holds.
        let skip_locked = match self {
            FloorDb::Sqlite(_) => "",
            FloorDb::Postgres(..) => " FOR UPDATE SKIP LOCKED",
        };
        let sql = format!(
            "UPDATE outbox SET state = 'sending' WHERE id IN (SELECT id FROM outbox \
             WHERE state = 'waiting' ORDER BY id LIMIT $1{skip_locked}) RETURNING id, body"
        );
        on_floor!(self, |pool, Db| sqlx::query_as::<Db, (String, Vec<u8>)>(
            &sql
        )
        .bind(count)
        .fetch_all(pool)
        .await)
    }

    /// Marks sent messages done, in one statement.
    pub(crate) async fn sent(&self, ids: &[String]) -> Result<(), sqlx::Error> {
        if ids.is_empty() {
            return Ok(());
        }
        on_floor!(self, |pool, Db| {
            let mut update =
                sqlx::QueryBuilder::<Db>::new("UPDATE outbox SET state = 'sent' WHERE id IN ");
            update.push_tuples(ids, |mut row, id| {
                row.push_bind(id.as_str());
            });
            update.build().execute(pool).await.map(|_| ())
        })
    }

    pub(crate) async fn close(&self, backends: &Backends) {
        match self {
            FloorDb::Sqlite(pool) => pool.close().await,
            FloorDb::Postgres(pool, name) => {
                pool.close().await;
                drop_database(backends, name).await;
            }
        }
    }
}

/// The bare handlers' check: the delivery's Standard Webhooks signature against the real clock.
fn verified(secret: &Secret, headers: &HeaderMap, body: &[u8]) -> Option<String> {
    standard_webhooks::verify(
        secret,
        headers,
        body,
        Utc::now(),
        standard_webhooks::DEFAULT_TOLERANCE,
    )
    .ok()
    .map(|delivery| delivery.id)
}

/// The floor's router: verify, hand the delivery to the one writer, answer 202 once it is
/// committed.
fn floor_router(secret: Secret, db: Arc<FloorDb>) -> axum::Router {
    let (sender, queue) = tokio::sync::mpsc::channel::<FloorItem>(4096);
    let queue = Arc::new(tokio::sync::Mutex::new(queue));
    // PostgreSQL commits several transactions at once; SQLite has one writer.
    let writers = match db.as_ref() {
        FloorDb::Sqlite(_) => 1,
        FloorDb::Postgres(..) => FLOOR_PG_WRITERS,
    };
    for _ in 0..writers {
        let (db, queue) = (db.clone(), queue.clone());
        tokio::spawn(async move {
            loop {
                let Some(batch) = super::next_batch(&mut *queue.lock().await).await else {
                    break;
                };
                let stored = db.insert(&batch).await.is_ok();
                for (_, _, reply) in batch {
                    let _ = reply.send(stored);
                }
            }
        });
    }
    axum::Router::new().route(
        "/hooks/{connection}",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let secret = secret.clone();
            let sender = sender.clone();
            async move {
                let Some(id) = verified(&secret, &headers, &body) else {
                    return axum::http::StatusCode::UNAUTHORIZED;
                };
                let (reply, stored) = tokio::sync::oneshot::channel();
                let item = (id, body.to_vec(), reply);
                if sender.send(item).await.is_err() {
                    return axum::http::StatusCode::SERVICE_UNAVAILABLE;
                }
                match stored.await {
                    Ok(true) => axum::http::StatusCode::ACCEPTED,
                    _ => axum::http::StatusCode::SERVICE_UNAVAILABLE,
                }
            }
        }),
    )
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
                match verified(&secret, &headers, &body) {
                    Some(_) => axum::http::StatusCode::ACCEPTED,
                    None => axum::http::StatusCode::UNAUTHORIZED,
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
        let floor_db = Arc::new(FloorDb::open(backends, "bench_hooks", postgres).await?);
        let floor_rate = match serve_router(floor_router(secret.clone(), floor_db.clone())).await {
            Ok((floor_base, floor_task)) => {
                let rate = post_all(
                    &format!("{floor_base}/hooks/{id}"),
                    signed_bodies(&secret, deliveries, &format!("{tag}f")),
                    IN_FLIGHT,
                )
                .await;
                floor_task.abort();
                rate
            }
            Err(e) => Err(e),
        };
        let floor_rate = match floor_rate {
            Ok(rate) => rate,
            Err(e) => {
                floor_db.close(backends).await;
                return Err(e);
            }
        };
        out.push_str(&format!(
            "{name}: gateway {gateway:.0} deliveries/s (verify + store + 202), bare axum {bare_rate:.0}/s (verify + 202), ratio {:.2} (goal >= 0.8)\n\
             {name}: floor of durable ingest (bare axum + one group-committed INSERT of id and body into a table with nothing else) {floor_rate:.0}/s: floor/bare {:.2}, gateway/floor {:.2}\n",
            gateway / bare_rate.max(1e-9),
            floor_rate / bare_rate.max(1e-9),
            gateway / floor_rate.max(1e-9),
        ));
        floor_db.close(backends).await;
        task.abort();
        store.close().await;
        if postgres {
            drop_database(backends, "bench_hooks").await;
        }
    }
    bare_task.abort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_os = "linux")]
    #[test]
    fn process_cpu_reads_this_process_and_grows_with_work() {
        let before = process_cpu().expect("Linux has /proc/self/stat");
        let started = Instant::now();
        let mut x = 0u64;
        while process_cpu().is_some_and(|now| now <= before) && started.elapsed().as_secs() < 10 {
            for i in 0..100_000u64 {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
            }
        }
        assert!(process_cpu().is_some_and(|now| now > before));
        assert!(cpu_per_item(Some(before), 1).is_some_and(|us| us >= 10_000.0));
    }
}
