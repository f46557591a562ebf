//! The forwarding benchmark behind `forfall bench forward`: it prints figures and a ratio and
//! asserts nothing, but a run that loses or repeats a case fails (exit 1) with its figures.
//!
//! For each backend (SQLite in a temporary directory; PostgreSQL in a fresh database when a URL is
//! given) it seeds a store the way the engine fills it: one creditor, one connection, N overdue
//! invoices of N/4 customers ingested through the engine (each gets its `notice_sent` decision and
//! warning e-mail job), then the day tick on the transfer day (each gets its `transferred`
//! decision and the jobs it causes: `case.transfer` for the agency, a digest line for the
//! creditor, a status note for the platform). Then, against a fresh fake agency on loopback:
//!
//! - **gateway**: the real job runner with the real [`Forward`] handler in push mode, `in_flight`
//!   deliveries at once, until every `pipeline` job is done: per job it reads the creditor, the
//!   invoice, the customer and the decisions, opens the case, builds the case.v1, signs and POSTs
//!   it, records the message; claims and outcomes go through the store's leases.
//! - **bare**: a plain reqwest loop, `in_flight` at once, POSTing the same bodies (the messages
//!   the agency received from the gateway, under fresh message and case ids so that the fake
//!   takes each as a new case, the same path as the gateway's) with the same headers (Standard
//!   Webhooks signature, `Idempotency-Key`, `Content-Type`) to the same fake.
//!
//! - **floor**: the same bodies (fresh ids again) in an outbox table of id, body and state,
//!   emptied by loops that claim a batch in one statement, post it and mark it sent in one
//!   statement: the least a forwarder that records its deliveries must do.
//!
//! Ratio = gateway cases per second / bare cases per second (goal >= 0.8); floor / bare and
//! gateway / floor are printed beside it.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chrono::{Days, NaiveDate};
use forfall_connector::standard_webhooks::{self, Secret};
use futures_util::StreamExt;
use rust_decimal::Decimal;

use super::FakeAgency;
use super::forward::{Forward, Sink};
use super::push::{IDEMPOTENCY_KEY, PushClient, PushSettings};
use crate::api::metrics::Metrics;
use crate::clock::{Clock, SystemClock};
use crate::domain::{
    Country, Currency, CustomerFacts, CustomerKind, EventSource, InvoiceFacts, JobState, Language,
    NationalId, NewCreditor, PostalAddress,
};
use crate::jobs::day_tick::DayTick;
use crate::jobs::effects::PIPELINE_JOB;
use crate::jobs::{Handler, Runner, RunnerSettings};
use crate::rules::policy::Policy;
use crate::secrets::EncryptionKey;
use crate::store::{IngestBatch, IngestItem, Store};
use crate::sync::bench::{
    Backends, FloorDb, cpu_per_item, drop_database, fresh_store, process_cpu,
};
use crate::sync::connections::ConnectionSecrets;
use crate::sync::reevaluate::Reevaluate;

type Failed = String;

/// The pool of the benchmark's store: the gateway's default (`database_max_connections`).
const POOL: u32 = 10;
/// Invoices ingested per page.
const PAGE: usize = 500;
/// The case ids the bare loop sends start with this.
const BARE_PREFIX: &str = "bare_";
/// The floor's message ids start with this.
const FLOOR_PREFIX: &str = "floor_";
/// The floor's loops and their batch (the job runner's rounds and batch).
const FLOOR_ROUNDS: usize = 4;
const FLOOR_BATCH: i64 = 128;
/// How long the benchmark waits for a delivery before it gives up.
const STALL: Duration = Duration::from_secs(30);

/// The `pipeline` jobs the workers finished, by outcome.
struct Round {
    succeeded: usize,
    retried: usize,
    dead: usize,
}

/// `forfall_jobs_total{kind="pipeline",outcome=…}` as the workers counted it.
fn job_count(metrics: &Metrics, outcome: &str) -> usize {
    let line = format!("forfall_jobs_total{{kind=\"{PIPELINE_JOB}\",outcome=\"{outcome}\"}} ");
    metrics
        .render()
        .lines()
        .find_map(|l| l.strip_prefix(line.as_str()))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

/// What one backend's run measured.
struct Measured {
    seeded: Duration,
    transfers: usize,
    gateway: Duration,
    succeeded: usize,
    retried: usize,
    dead: usize,
    bare: Duration,
    bare_sent: usize,
    floor: Duration,
    floor_sent: usize,
    /// This process's CPU per case (µs) in each run, where the system tells it.
    cpu: [Option<f64>; 3],
}

fn per_second(count: usize, took: Duration) -> f64 {
    count as f64 / took.as_secs_f64().max(1e-9)
}

/// `forfall bench forward`.
pub async fn bench_forward(
    cases: usize,
    in_flight: usize,
    backends: &Backends,
) -> Result<String, Failed> {
    let in_flight = in_flight.max(1);
    let mut out = format!(
        "forwarding {cases} cases to the fake agency, {in_flight} in flight (release build: cargo run --release)\n"
    );
    let mut runs = vec![("SQLite (WAL)", false)];
    if backends.postgres_url.is_some() {
        runs.push(("PostgreSQL", true));
    }
    let mut failures = Vec::new();
    for (name, postgres) in runs {
        let store = fresh_store(backends, "bench_forward", postgres, POOL).await?;
        let measured = run_backend(store.clone(), cases, in_flight, backends, postgres).await;
        store.close().await;
        if postgres {
            drop_database(backends, "bench_forward").await;
        }
        let (m, problems) = measured?;
        let gateway = per_second(m.succeeded, m.gateway);
        let bare = per_second(m.bare_sent, m.bare);
        out.push_str(&format!(
            "{name}: seeded {} transfer jobs in {:.1} s; gateway {gateway:.0} cases/s \
             ({} jobs completed in {:.2} s: {:.0} jobs/s, {} retried, {} dead), \
             bare reqwest {bare:.0} cases/s ({} in {:.2} s), ratio {:.2} (goal >= 0.8)\n",
            m.transfers,
            m.seeded.as_secs_f64(),
            m.succeeded,
            m.gateway.as_secs_f64(),
            per_second(m.succeeded, m.gateway),
            m.retried,
            m.dead,
            m.bare_sent,
            m.bare.as_secs_f64(),
            gateway / bare.max(1e-9),
        ));
        let floor = per_second(m.floor_sent, m.floor);
        out.push_str(&format!(
            "{name}: floor of durable forwarding (an outbox of id, body and state: claim 128 in one \
             statement, post, mark sent in one statement; 4 loops) {floor:.0} cases/s \
             ({} in {:.2} s): floor/bare {:.2}, gateway/floor {:.2}\n",
            m.floor_sent,
            m.floor.as_secs_f64(),
            floor / bare.max(1e-9),
            gateway / floor.max(1e-9),
        ));
        if let [Some(gateway_cpu), Some(bare_cpu), Some(floor_cpu)] = m.cpu {
            // Cores kept busy = CPU per case × cases per second.
            let busy = |cpu: f64, rate: f64| cpu * rate / 1e6;
            out.push_str(&format!(
                "{name}: CPU per case in this process (the gateway or the loop, the fake agency{}): \
                 gateway {gateway_cpu:.0} us ({:.1} cores busy), bare {bare_cpu:.0} us ({:.1}), \
                 floor {floor_cpu:.0} us ({:.1}); bare/gateway CPU {:.2}: where both runs use \
                 every core, the ratio cannot be higher\n",
                if postgres { "; PostgreSQL's own not counted" } else { ", SQLite" },
                busy(gateway_cpu, gateway),
                busy(bare_cpu, bare),
                busy(floor_cpu, floor),
                bare_cpu / gateway_cpu.max(1e-9),
            ));
        }
        failures.extend(problems.into_iter().map(|p| format!("{name}: {p}")));
    }
    if failures.is_empty() {
        Ok(out)
    } else {
        Err(format!("{out}FAILED:\n  {}\n", failures.join("\n  ")))
    }
}

/// Seeds one store, runs the gateway and the bare loop against a fresh fake agency; the figures
/// and what went wrong (empty when every case arrived once and no job died).
async fn run_backend(
    store: Arc<dyn Store>,
    cases: usize,
    in_flight: usize,
    backends: &Backends,
    postgres: bool,
) -> Result<(Measured, Vec<String>), Failed> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let seeding = Instant::now();
    let transfers = seed(store.clone(), clock.clone(), cases).await?;
    let seeded = seeding.elapsed();
    let mut problems = Vec::new();
    if transfers != cases {
        problems.push(format!(
            "the engine enqueued {transfers} transfers, not {cases}"
        ));
    }

    let secret = Secret::generate();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let agency = FakeAgency::start(listener, secret.clone())
        .await
        .map_err(|e| e.to_string())?;
    let push = PushClient::new(PushSettings {
        url: agency.url(),
        secret: secret.clone(),
        timeout: Duration::from_secs(30),
    })
    .map_err(|e| e.to_string())?;
    let forward: Arc<dyn Handler> = Arc::new(Forward::new(
        store.clone(),
        clock.clone(),
        Sink::Push(push),
        in_flight,
    ));
    let metrics = Arc::new(Metrics::default());
    let runner = Arc::new(Runner {
        store: store.clone(),
        clock: clock.clone(),
        owner: "bench".into(),
        handlers: vec![forward],
        settings: RunnerSettings::default(),
        metrics: metrics.clone(),
        wake: Arc::new(tokio::sync::Notify::new()),
    });
    // The workers as `serve` runs them, until the agency has had a delivery per transfer (or
    // nothing moved for a while); a batch under way when told to stop is finished and recorded.
    let started = Instant::now();
    let cpu = process_cpu();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let workers = tokio::spawn(runner.run(stopped));
    let (mut seen, mut moved) = (0, Instant::now());
    while agency.deliveries() < transfers {
        tokio::time::sleep(Duration::from_millis(2)).await;
        let now = agency.deliveries();
        if now != seen {
            (seen, moved) = (now, Instant::now());
        } else if moved.elapsed() > STALL {
            problems.push(format!(
                "the deliveries stalled at {now} for {} s",
                STALL.as_secs()
            ));
            break;
        }
    }
    let _ = stop.send(true);
    workers.await.map_err(|e| e.to_string())?;
    let gateway = started.elapsed();
    let gateway_cpu = cpu_per_item(cpu, agency.deliveries());
    let count = |outcome: &str| job_count(&metrics, outcome);
    let round = Round {
        succeeded: count("succeeded"),
        retried: count("retried"),
        dead: count("dead"),
    };

    let received = agency.messages();
    let gateway_cases = agency.cases().len();
    if gateway_cases != cases {
        problems.push(format!(
            "the agency holds {gateway_cases} cases from the gateway, not {cases}"
        ));
    }
    let dead = store
        .list_jobs(Some(JobState::Dead), 10)
        .await
        .map_err(|e| e.to_string())?;
    if !dead.is_empty() || round.dead > 0 {
        problems.push(format!(
            "{} jobs are dead letters (first: {})",
            round.dead.max(dead.len()),
            dead.first()
                .and_then(|job| job.last_error.clone())
                .unwrap_or_default()
        ));
    }
    let left = store
        .list_jobs(Some(JobState::Pending), u32::MAX)
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter(|job| job.kind == PIPELINE_JOB)
        .count();
    if left > 0 {
        problems.push(format!("{left} pipeline jobs are still waiting"));
    }

    // The bare loop: the same bodies, under fresh ids, with the same headers.
    let bodies = |prefix: &str| -> Vec<(String, Vec<u8>)> {
        received
            .iter()
            .map(|message| {
                let mut body = message.body.clone();
                let id = format!("{prefix}{}", message.idempotency_key);
                let case_id = format!("{prefix}{}", message.case_id);
                body["id"] = id.clone().into();
                body["case_id"] = case_id.clone().into();
                if body["data"].get("case_id").is_some() {
                    body["data"]["case_id"] = case_id.into();
                }
                (id, body.to_string().into_bytes())
            })
            .collect()
    };
    let bodies_of_bare = bodies(BARE_PREFIX);
    let cpu = process_cpu();
    let (bare, bare_sent) = bare_loop(&agency.url(), &secret, bodies_of_bare, in_flight).await?;
    let bare_cpu = cpu_per_item(cpu, bare_sent);
    let total = agency.cases().len();
    if total != 2 * gateway_cases {
        problems.push(format!(
            "the bare loop left {} cases at the agency, not {gateway_cases}",
            total - gateway_cases.min(total)
        ));
    }
    let floor_db = Arc::new(FloorDb::open(backends, "bench_forward", postgres).await?);
    let mut floor_cpu = None;
    let floor = match floor_db.fill_outbox(&bodies(FLOOR_PREFIX)).await {
        Ok(()) => {
            let cpu = process_cpu();
            let floor = floor_loop(floor_db.clone(), &agency.url(), &secret, in_flight).await;
            if let Ok((_, sent)) = &floor {
                floor_cpu = cpu_per_item(cpu, *sent);
            }
            floor
        }
        Err(e) => Err(e.to_string()),
    };
    floor_db.close(backends).await;
    let (floor, floor_sent) = floor?;
    let before_floor = total;
    let total = agency.cases().len();
    if total != before_floor + gateway_cases {
        problems.push(format!(
            "the floor loop left {} cases at the agency, not {gateway_cases}",
            total - before_floor.min(total)
        ));
    }
    if agency.rejected() > 0 || agency.conflicts() > 0 || agency.duplicates() > 0 {
        problems.push(format!(
            "the agency rejected {}, refused as conflicts {} and saw {} duplicates",
            agency.rejected(),
            agency.conflicts(),
            agency.duplicates()
        ));
    }
    agency.shutdown().await;
    Ok((
        Measured {
            seeded,
            transfers,
            gateway,
            succeeded: round.succeeded,
            retried: round.retried,
            dead: round.dead,
            bare,
            bare_sent,
            floor,
            floor_sent,
            cpu: [gateway_cpu, bare_cpu, floor_cpu],
        },
        problems,
    ))
}

/// One creditor with `cases` overdue invoices, warned ten days ago through ingest and transferred
/// today by the day tick; returns the number of `pipeline` jobs waiting.
async fn seed(store: Arc<dyn Store>, clock: Arc<dyn Clock>, cases: usize) -> Result<usize, Failed> {
    let creditor = store
        .create_creditor(
            &NewCreditor {
                name: "Benk AS".into(),
                organisation_number: "923609016".into(),
                country: Country::Norway,
                time_zone: None,
                language: Language::Nb,
                email: Some("post@benk.example".into()),
                policy: serde_json::json!({}),
                partner_id: None,
            },
            clock.now(),
        )
        .await
        .map_err(|e| e.to_string())?;
    let key =
        EncryptionKey::from_base64(&EncryptionKey::generate_base64()).map_err(|e| e.to_string())?;
    let connection = ConnectionSecrets {
        settings: serde_json::json!({}),
        webhook_secret: Some("bench".into()),
    }
    .create_connection(store.as_ref(), &key, &creditor.id, "generic", clock.now())
    .await
    .map_err(|e| e.to_string())?;
    let policy = Policy::from_json(&creditor.policy).map_err(|e| e.to_string())?;
    let today = clock.today(creditor.time_zone);
    let days_ago = |n: u64| today.checked_sub_days(Days::new(n)).unwrap_or(today);
    // First seen (and warned) ten days ago; the transfer is due by today.
    let seen = days_ago(10);
    let (issued, due) = (days_ago(60), days_ago(40));
    let customers = (cases / 4).max(1);
    let items: Vec<IngestItem> = (0..cases)
        .map(|n| IngestItem {
            customer: Some(customer(n % customers)),
            invoice: invoice(n, n % customers, issued, due),
            known_only: false,
        })
        .collect();
    let decide = Reevaluate {
        policy: &policy,
        today: seen,
        connection: &connection.id,
        now: clock.now(),
    };
    for page in items.chunks(PAGE) {
        store
            .ingest(
                &creditor.id,
                &connection.id,
                &IngestBatch {
                    items: page,
                    source: EventSource::Poll,
                    decide: &decide,
                    progress: None,
                },
                clock.now(),
            )
            .await
            .map_err(|e| e.to_string())?;
    }
    let tick = DayTick {
        store: store.clone(),
        clock: clock.clone(),
        owner: "bench".into(),
        at: chrono::NaiveTime::MIN,
    };
    tick.run_day(&creditor, &policy, today)
        .await
        .map_err(|e| e.to_string())?;
    let transfers = store
        .list_jobs(Some(JobState::Pending), u32::MAX)
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter(|job| job.kind == PIPELINE_JOB)
        .count();
    Ok(transfers)
}

fn customer(n: usize) -> CustomerFacts {
    let consumer = !n.is_multiple_of(3);
    CustomerFacts {
        platform_id: format!("C-{n}"),
        kind: if consumer {
            CustomerKind::Consumer
        } else {
            CustomerKind::Business
        },
        name: if consumer {
            format!("Kari Nordmann {n}")
        } else {
            format!("Nordlys Bakeri {n} AS")
        },
        organisation_number: (!consumer).then(|| "923609016".into()),
        national_id: consumer.then(|| NationalId("01017012345".into())),
        email: Some(format!("debtor{n}@example.no")),
        postal_address: Some(PostalAddress {
            lines: vec![format!("Storgata {}", n % 200 + 1)],
            postal_code: "0155".into(),
            city: "Oslo".into(),
            country: "NO".into(),
        }),
        platform_dunning: false,
    }
}

fn invoice(n: usize, customer: usize, issued: NaiveDate, due: NaiveDate) -> InvoiceFacts {
    let amount = Decimal::new(125_000 + (n % 1000) as i64 * 100, 2);
    InvoiceFacts {
        platform_id: format!("INV-{n}"),
        number: format!("{}", 10_000 + n),
        customer_platform_id: format!("C-{customer}"),
        issued,
        due,
        currency: Currency::NOK,
        amount,
        outstanding: amount,
        payment_reference: Some(format!("{:08}", 10_000 + n)),
        credited: false,
    }
}

/// Posts one body signed now the way the push client signs, with its `Idempotency-Key`.
async fn post_signed(
    client: &reqwest::Client,
    url: &str,
    secret: &Secret,
    id: &str,
    body: &[u8],
) -> Result<(), Failed> {
    let timestamp = chrono::Utc::now().timestamp();
    let mut request = client
        .post(url)
        .header(IDEMPOTENCY_KEY, id)
        .header(http::header::CONTENT_TYPE, "application/json");
    for (name, value) in standard_webhooks::headers(secret, id, timestamp, body) {
        request = request.header(name, value);
    }
    let answer = request
        .body(body.to_vec())
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = answer.status();
    let _ = answer.bytes().await;
    if !status.is_success() {
        return Err(format!("the agency answered {status}"));
    }
    Ok(())
}

/// The floor of durable forwarding: an outbox table holding only id, body and state (the same
/// bodies as the bare loop, under fresh ids), emptied by [`FLOOR_ROUNDS`] loops that each claim
/// [`FLOOR_BATCH`] messages in one statement, post them (`in_flight` at once in all), and mark
/// them sent in one statement. What any outbox that records its deliveries must do at least.
async fn floor_loop(
    db: Arc<FloorDb>,
    url: &str,
    secret: &Secret,
    in_flight: usize,
) -> Result<(Duration, usize), Failed> {
    let client = reqwest::Client::new();
    let per_round = in_flight.div_ceil(FLOOR_ROUNDS).max(1);
    let started = Instant::now();
    let mut rounds = Vec::with_capacity(FLOOR_ROUNDS);
    for _ in 0..FLOOR_ROUNDS {
        let (db, client, url, secret) =
            (db.clone(), client.clone(), url.to_owned(), secret.clone());
        rounds.push(tokio::spawn(async move {
            let mut sent = 0usize;
            loop {
                let batch = db.claim(FLOOR_BATCH).await.map_err(|e| e.to_string())?;
                if batch.is_empty() {
                    return Ok::<usize, Failed>(sent);
                }
                let posts = futures_util::stream::iter(batch)
                    .map(|(id, body)| {
                        let (client, url, secret) = (client.clone(), url.clone(), secret.clone());
                        async move {
                            post_signed(&client, &url, &secret, &id, &body).await?;
                            Ok::<String, Failed>(id)
                        }
                    })
                    .buffer_unordered(per_round);
                let outcomes: Vec<_> = posts.collect().await;
                let ids = outcomes
                    .into_iter()
                    .collect::<Result<Vec<String>, Failed>>()?;
                db.sent(&ids).await.map_err(|e| e.to_string())?;
                sent += ids.len();
            }
        }));
    }
    let mut sent = 0;
    for round in rounds {
        sent += round.await.map_err(|e| e.to_string())??;
    }
    Ok((started.elapsed(), sent))
}

/// Posts `bodies` with `in_flight` at once, each signed now the way the push client signs:
/// the time taken and how many the agency took.
async fn bare_loop(
    url: &str,
    secret: &Secret,
    bodies: Vec<(String, Vec<u8>)>,
    in_flight: usize,
) -> Result<(Duration, usize), Failed> {
    let client = reqwest::Client::new();
    let bodies = Arc::new(bodies);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(in_flight);
    for _ in 0..in_flight {
        let (client, bodies, next) = (client.clone(), bodies.clone(), next.clone());
        let (url, secret) = (url.to_owned(), secret.clone());
        tasks.push(tokio::spawn(async move {
            let mut sent = 0usize;
            loop {
                let Some((id, body)) = bodies.get(next.fetch_add(1, Ordering::Relaxed)) else {
                    return Ok::<usize, String>(sent);
                };
                post_signed(&client, &url, &secret, id, body).await?;
                sent += 1;
            }
        }));
    }
    let mut sent = 0;
    for task in tasks {
        sent += task.await.map_err(|e| e.to_string())??;
    }
    Ok((started.elapsed(), sent))
}
