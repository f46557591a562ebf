//! `forfall demo`: the whole loop in one process, on loopback, with nothing to set up. A fake
//! Tripletex with a few dozen invoices of a Norwegian bakery, a fake collection agency, an SMTP
//! capture, and the gateway (its store in SQLite in a fresh directory) on a simulated clock:
//! a day per second by default. Each day the gateway polls Tripletex, runs the day tick and its
//! workers; some debtors pay the bakery directly, and the agency collects, objects or closes
//! cases and tells the gateway through `/pipeline/events`. Every day is narrated; a summary
//! table ends it, and everything it started is stopped (the directory is removed unless
//! `--keep`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{NaiveDate, TimeZone, Utc};
use forfall_connector::client::HttpSettings;
use forfall_connector::standard_webhooks::Secret;
use forfall_tripletex::fake::{FakeConfig, FakeTripletex, NewCustomer, NewInvoice};
use rust_decimal::Decimal;

use crate::api::metrics::Metrics;
use crate::clock::{Clock, ManualClock};
use crate::domain::{Country, CreditorId, Language, NewCreditor};
use crate::jobs::workers::{WorkerSettings, Workers, workers};
use crate::jobs::{RetryPolicy, RunnerSettings};
use crate::notify::{Mailer, SmtpCapture, SmtpSettings};
use crate::pipeline::case::{AgencyEvent, CloseOutcome};
use crate::pipeline::forward::Sink;
use crate::pipeline::{FakeAgency, PushClient, PushSettings};
use crate::secrets::EncryptionKey;
use crate::store::{Store, StoreOptions};
use crate::sync::Ingest;
use crate::sync::connections::{ConnectionSecrets, Connectors};

#[derive(Debug, thiserror::Error)]
#[error("demo: {0}")]
pub struct DemoError(String);

fn fail(what: &str) -> impl Fn(String) -> DemoError + '_ {
    move |e| DemoError(format!("{what}: {e}"))
}

/// How the demo runs.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub days: u32,
    /// Real time per simulated day (0: as fast as it goes).
    pub day_length: Duration,
    /// Where the demo's own directory is made.
    pub parent_dir: PathBuf,
    /// Keep the directory (its database) after the run.
    pub keep: bool,
    /// Narrate with a progress bar (off in tests).
    pub narrate: bool,
}

/// What happened, in total.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DemoSummary {
    pub invoices: usize,
    pub warnings: usize,
    pub transfers: usize,
    pub withdrawals: usize,
    pub paid_directly: usize,
    pub agency_payments: usize,
    pub payments_synced_back: usize,
    pub emails: usize,
    pub duplicates_at_agency: usize,
    pub dead_letters: usize,
}

impl std::fmt::Display for DemoSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let rows = [
            ("invoices in Tripletex", self.invoices),
            ("warnings (5 days before transfer)", self.warnings),
            ("cases sent to the agency", self.transfers),
            ("cases withdrawn", self.withdrawals),
            ("direct payments told to the agency", self.paid_directly),
            ("payments collected by the agency", self.agency_payments),
            (
                "payments registered in Tripletex",
                self.payments_synced_back,
            ),
            ("e-mails to the creditor", self.emails),
            (
                "duplicate deliveries at the agency",
                self.duplicates_at_agency,
            ),
            ("dead letters", self.dead_letters),
        ];
        writeln!(f, "┌{:─<42}┬{:─>8}┐", "", "")?;
        for (label, value) in rows {
            writeln!(f, "│ {label:<40} │ {value:>6} │")?;
        }
        write!(f, "└{:─<42}┴{:─>8}┘", "", "")
    }
}

/// The counters a day's narration compares.
#[derive(Debug, Clone, Copy, Default)]
struct Counts {
    warnings: usize,
    transfers: usize,
    withdrawals: usize,
    paid_directly: usize,
    synced: usize,
    emails: usize,
    dead: usize,
}

struct Demo {
    store: Arc<dyn Store>,
    clock: Arc<ManualClock>,
    creditor: CreditorId,
    connection: crate::domain::ConnectionId,
    ingest: Arc<Ingest>,
    workers: Workers,
    tripletex: FakeTripletex,
    agency: FakeAgency,
    mail: SmtpCapture,
    gateway: String,
    invoices: Vec<(i64, Decimal)>,
    agency_payments: std::sync::atomic::AtomicUsize,
}

/// Customers of the bakery: (name, organisation number or none for a consumer).
const CUSTOMERS: [(&str, Option<&str>); 8] = [
    ("Fjordkraft Kantine AS", Some("914778271")),
    ("Havblikk Hotell AS", Some("982463718")),
    ("Kari Nordmann", None),
    ("Solsiden Barnehage SA", Some("997618305")),
    ("Ola Hansen", None),
    ("Trondheim Torg Café AS", Some("921345678")),
    ("Bergen Byggservice AS", Some("916425173")),
    ("Lise Berg", None),
];

pub async fn run(options: &DemoOptions) -> Result<DemoSummary, DemoError> {
    run_until(options, std::future::pending()).await
}

/// [`run`], cut short when `stop` resolves (Ctrl-C, SIGTERM): what the demo started is dropped and
/// its directory removed (unless `keep`) all the same.
pub async fn run_until(
    options: &DemoOptions,
    stop: impl std::future::Future<Output = ()>,
) -> Result<DemoSummary, DemoError> {
    let parent_existed = options.parent_dir.exists();
    let dir = options
        .parent_dir
        .join(format!("demo-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).map_err(|e| {
        DemoError(format!(
            "cannot make the demo's directory {}: {e}",
            dir.display()
        ))
    })?;
    let result = tokio::select! {
        result = run_in(&dir, options) => result,
        () = stop => Err(DemoError("interrupted; the demo stopped".into())),
    };
    if options.keep {
        eprintln!("the demo's directory is kept: {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
        if !parent_existed {
            // Only when empty: the directory was made for the demo.
            let _ = std::fs::remove_dir(&options.parent_dir);
        }
    }
    result
}

async fn run_in(dir: &std::path::Path, options: &DemoOptions) -> Result<DemoSummary, DemoError> {
    let demo = Demo::start(dir).await?;
    let bar = options.narrate.then(|| {
        let bar = indicatif::ProgressBar::new(u64::from(options.days));
        bar.set_style(
            indicatif::ProgressStyle::with_template("{bar:30} day {pos}/{len} {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    });
    let say = |line: String| match &bar {
        Some(bar) if !bar.is_hidden() => bar.println(line),
        Some(_) => println!("{line}"),
        None => tracing::debug!("{line}"),
    };
    say(format!(
        "Nordlys Bakeri AS has {} invoices in Tripletex; the agency and the SMTP capture are listening.",
        demo.invoices.len()
    ));
    let mut before = demo.counts().await?;
    for day in 0..options.days {
        let started = Instant::now();
        if day > 0 {
            demo.clock.advance(chrono::Duration::days(1));
        }
        let t0 = Instant::now();
        demo.debtors_pay(day)?;
        let t1 = Instant::now();
        demo.run_day().await?;
        let t2 = Instant::now();
        demo.agency_acts().await?;
        let t3 = Instant::now();
        tracing::debug!(pay = ?(t1 - t0), day = ?(t2 - t1), agency = ?(t3 - t2), "demo day timing");
        demo.workers
            .runner
            .drain()
            .await
            .map_err(|e| DemoError(e.to_string()))?;
        let after = demo.counts().await?;
        let today = demo.clock.today(chrono_tz::Europe::Oslo);
        say(narrate(today, &before, &after));
        before = after;
        if let Some(bar) = &bar {
            bar.inc(1);
        }
        let rest = options.day_length.saturating_sub(started.elapsed());
        tokio::time::sleep(rest).await;
    }
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let summary = demo.summary(&before);
    demo.stop().await;
    Ok(summary)
}

fn narrate(today: NaiveDate, before: &Counts, after: &Counts) -> String {
    let mut parts = Vec::new();
    let mut part = |n: usize, one: &str, many: &str| {
        if n > 0 {
            parts.push(if n == 1 {
                one.to_owned()
            } else {
                format!("{n} {many}")
            });
        }
    };
    part(
        after.warnings - before.warnings,
        "1 invoice warned",
        "invoices warned",
    );
    part(
        after.transfers - before.transfers,
        "1 case sent to the agency",
        "cases sent to the agency",
    );
    part(
        after.withdrawals - before.withdrawals,
        "1 case withdrawn",
        "cases withdrawn",
    );
    part(
        after.paid_directly - before.paid_directly,
        "1 direct payment told to the agency",
        "direct payments told to the agency",
    );
    part(
        after.synced - before.synced,
        "1 agency payment registered in Tripletex",
        "agency payments registered in Tripletex",
    );
    part(
        after.emails - before.emails,
        "1 e-mail sent",
        "e-mails sent",
    );
    part(after.dead - before.dead, "1 dead letter", "dead letters");
    let what = if parts.is_empty() {
        "nothing due".to_owned()
    } else {
        parts.join(", ")
    };
    format!("{}: {what}", today.format("%a %d %b %Y"))
}

impl Demo {
    async fn start(dir: &std::path::Path) -> Result<Demo, DemoError> {
        let store = crate::store::open(&StoreOptions {
            url: format!("sqlite://{}/forfall.db", dir.display()),
            max_connections: 4,
        })
        .await
        .map_err(|e| fail("store")(e.to_string()))?;
        store
            .migrate()
            .await
            .map_err(|e| fail("store")(e.to_string()))?;
        let zone = chrono_tz::Europe::Oslo;
        let today = Utc::now().with_timezone(&zone).date_naive();
        let start = today
            .and_hms_opt(7, 0, 0)
            .and_then(|t| zone.from_local_datetime(&t).earliest())
            .map_or_else(Utc::now, |t| t.with_timezone(&Utc));
        let clock = Arc::new(ManualClock::new(start));
        let listener = |what: &'static str| async move {
            tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .map_err(|e| DemoError(format!("cannot listen for the {what}: {e}")))
        };
        let tripletex = FakeTripletex::start(
            listener("Tripletex fake").await?,
            FakeConfig {
                seed: 2026,
                invoices: 0,
                today,
                ..FakeConfig::default()
            },
        )
        .await
        .map_err(|e| fail("Tripletex fake")(e.to_string()))?;
        let mut invoices = Vec::new();
        let customers: Vec<i64> = CUSTOMERS
            .iter()
            .map(|(name, org)| {
                tripletex.add_customer(NewCustomer {
                    name: (*name).into(),
                    is_private_individual: org.is_none(),
                    organization_number: org.map(Into::into),
                    email: Some(format!(
                        "regnskap@{}.example",
                        name.split(' ').next().unwrap_or("kunde").to_lowercase()
                    )),
                    ..NewCustomer::default()
                })
            })
            .collect();
        // 36 invoices issued from 40 days ago to 30 days ahead, 14 days' credit.
        let mut rng = fastrand::Rng::with_seed(2026);
        for i in 0..36_i64 {
            let issued = today + chrono::Duration::days(i * 2 - 40);
            let amount = Decimal::new(rng.i64(50_000..2_500_000), 2);
            let customer = customers[rng.usize(..customers.len())];
            let id = tripletex
                .add_invoice(NewInvoice::new(customer, issued, amount))
                .map_err(|e| fail("Tripletex fake")(e.to_string()))?;
            invoices.push((id, amount));
        }
        let creditor = store
            .create_creditor(
                &NewCreditor {
                    name: "Nordlys Bakeri AS".into(),
                    organisation_number: "923609016".into(),
                    country: Country::Norway,
                    time_zone: None,
                    language: Language::Nb,
                    email: Some("faktura@nordlys-bakeri.example".into()),
                    policy: serde_json::json!({}),
                    partner_id: None,
                },
                clock.now(),
            )
            .await
            .map_err(|e| fail("creditor")(e.to_string()))?;
        let key = EncryptionKey::from_base64(&EncryptionKey::generate_base64())
            .map_err(|e| fail("key")(e.to_string()))?;
        let config = FakeConfig::default();
        let connection = ConnectionSecrets {
            settings: serde_json::json!({
                "base_url": tripletex.base_url(),
                "consumer_token": config.consumer_token,
                "employee_token": config.employee_token,
                // The bakery's invoices are all recent, and the fake is local: no need to read
                // three years back at a polite 20 requests a second.
                "lookback_days": 120,
                "requests_per_second": 1000,
            }),
            webhook_secret: Some("demo-webhook-secret".into()),
        }
        .create_connection(store.as_ref(), &key, &creditor.id, "tripletex", clock.now())
        .await
        .map_err(|e| fail("connection")(e.to_string()))?;
        let secret = Secret::generate();
        let agency = FakeAgency::start(listener("agency fake").await?, secret.clone())
            .await
            .map_err(|e| fail("agency fake")(e.to_string()))?;
        let mail = SmtpCapture::start(listener("SMTP capture").await?)
            .await
            .map_err(|e| fail("SMTP capture")(e.to_string()))?;
        let ingest = Arc::new(Ingest::new(
            store.clone(),
            clock.clone(),
            Connectors::new(Some(key), HttpSettings::default()),
            Arc::new(Metrics::default()),
        ));
        let push = PushClient::new(PushSettings {
            url: agency.url(),
            secret: secret.clone(),
            timeout: Duration::from_secs(10),
        })
        .map_err(|e| fail("agency client")(e.to_string()))?;
        let mailer = Mailer::new(&SmtpSettings {
            url: mail.url(),
            from: "Forfall <forfall@localhost>".into(),
            timeout: Duration::from_secs(10),
        })
        .map_err(|e| fail("mailer")(e.to_string()))?;
        let workers = workers(
            store.clone(),
            clock.clone(),
            ingest.clone(),
            "demo".into(),
            WorkerSettings {
                sink: Some(Sink::Push(push)),
                agency_in_flight: 16,
                mailer: Some(mailer),
                opt_out_hint: None,
                runner: RunnerSettings {
                    retry: RetryPolicy::default(),
                    ..RunnerSettings::default()
                },
                day_tick_at: chrono::NaiveTime::from_hms_opt(6, 0, 0).unwrap_or_default(),
                tick_every: Duration::from_secs(3600),
            },
        );
        let gateway_listener = listener("gateway").await?;
        let gateway = format!(
            "http://{}",
            gateway_listener
                .local_addr()
                .map_err(|e| fail("gateway")(e.to_string()))?
        );
        let mut state = crate::api::AppState::new(store.clone(), clock.clone());
        state.agency_secret = Some(secret);
        state.ingest = Some(ingest.clone());
        let app = crate::api::router(state);
        tokio::spawn(async move {
            let _ = axum::serve(gateway_listener, app).await;
        });
        Ok(Demo {
            store,
            clock,
            creditor: creditor.id,
            connection: connection.id,
            ingest,
            workers,
            tripletex,
            agency,
            mail,
            gateway,
            invoices,
            agency_payments: std::sync::atomic::AtomicUsize::new(0),
        })
    }

    /// Some debtors pay the bakery directly, before or after their invoice's transfer.
    fn debtors_pay(&self, day: u32) -> Result<(), DemoError> {
        let today = self.clock.today(chrono_tz::Europe::Oslo);
        let open = self.tripletex.open_invoices();
        for (i, (id, _)) in self.invoices.iter().enumerate() {
            // Invoice i is due on day 2i - 26 and goes to collection on day 2i - 20: every
            // seventh debtor pays two days before that, another every seventh two days after.
            let pays_on = match i % 7 {
                3 => 2 * i as i64 - 22,
                5 => 2 * i as i64 - 18,
                _ => continue,
            };
            if pays_on != i64::from(day) {
                continue;
            }
            let outstanding = open
                .iter()
                .find(|invoice| invoice["id"] == serde_json::json!(id))
                .and_then(|invoice| invoice["amountOutstanding"].as_f64())
                .and_then(|v| Decimal::try_from(v).ok())
                .map(|v| v.round_dp(2));
            if let Some(outstanding) = outstanding.filter(|v| *v > Decimal::ZERO) {
                self.tripletex
                    .pay(*id, outstanding, today)
                    .map_err(|e| fail("Tripletex fake")(e.to_string()))?;
            }
        }
        Ok(())
    }

    async fn run_day(&self) -> Result<(), DemoError> {
        let t = Instant::now();
        self.ingest
            .run_pass(&self.connection, false, None, &|_| {})
            .await
            .map_err(|e| fail("sync")(e.to_string()))?;
        tracing::debug!(sync = ?t.elapsed(), "demo sync timing");
        self.workers
            .tick
            .run_due()
            .await
            .map_err(|e| fail("day tick")(e.to_string()))?;
        self.workers
            .runner
            .drain()
            .await
            .map_err(|e| fail("workers")(e.to_string()))?;
        Ok(())
    }

    /// The agency works its open cases: four days after a transfer, most debtors pay in full,
    /// every fifth objects, and now and then the agency writes a case off after an objection.
    async fn agency_acts(&self) -> Result<(), DemoError> {
        let today = self.clock.today(chrono_tz::Europe::Oslo);
        for (n, case) in self.agency.cases().iter().enumerate() {
            let Some(transfer) = &case.transfer else {
                continue;
            };
            let transfer_on: Option<NaiveDate> = transfer["transfer_on"]
                .as_str()
                .and_then(|t| t.parse().ok());
            let outstanding: Option<Decimal> = transfer["invoice"]["outstanding"]
                .as_str()
                .and_then(|t| t.parse().ok());
            let (Some(transfer_on), Some(outstanding)) = (transfer_on, outstanding) else {
                continue;
            };
            if case.state != "open" || today != transfer_on + chrono::Duration::days(4) {
                continue;
            }
            let event = if n % 5 == 4 {
                AgencyEvent::DebtorObjected {
                    case_id: case.case_id.clone(),
                    amount: None,
                    reason: Some("Varene ble aldri levert".into()),
                }
            } else {
                AgencyEvent::PaymentReceived {
                    case_id: case.case_id.clone(),
                    amount: outstanding,
                    currency: "NOK".into(),
                    paid_on: today,
                }
            };
            let status = self
                .agency
                .send_event(&self.gateway, &event)
                .await
                .map_err(|e| fail("agency event")(e.to_string()))?;
            if status >= 300 {
                return Err(DemoError(format!(
                    "the gateway answered {status} to the agency's event"
                )));
            }
            if matches!(event, AgencyEvent::PaymentReceived { .. }) {
                self.agency_payments
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            if n % 5 == 4 && n % 2 == 0 {
                let closed = AgencyEvent::CaseClosed {
                    case_id: case.case_id.clone(),
                    outcome: CloseOutcome::WrittenOff,
                };
                let _ = self.agency.send_event(&self.gateway, &closed).await;
            }
        }
        Ok(())
    }

    async fn counts(&self) -> Result<Counts, DemoError> {
        let jobs = self
            .store
            .jobs(&self.creditor)
            .await
            .map_err(|e| fail("store")(e.to_string()))?;
        let done = |prefix: &str| {
            jobs.iter()
                .filter(|j| {
                    j.idempotency_key.starts_with(prefix)
                        && j.state == crate::domain::JobState::Succeeded
                })
                .count()
        };
        Ok(Counts {
            warnings: jobs
                .iter()
                .filter(|j| j.idempotency_key.starts_with("email.warning"))
                .count(),
            transfers: done("transfer:"),
            withdrawals: done("withdraw:"),
            paid_directly: done("paid_directly:"),
            synced: done("payment:"),
            emails: self.mail.messages().len(),
            dead: jobs
                .iter()
                .filter(|j| j.state == crate::domain::JobState::Dead)
                .count(),
        })
    }

    fn summary(&self, last: &Counts) -> DemoSummary {
        DemoSummary {
            invoices: self.invoices.len(),
            warnings: last.warnings,
            transfers: last.transfers,
            withdrawals: last.withdrawals,
            paid_directly: last.paid_directly,
            agency_payments: self
                .agency_payments
                .load(std::sync::atomic::Ordering::Relaxed),
            payments_synced_back: last.synced,
            emails: last.emails,
            duplicates_at_agency: self.agency.duplicates(),
            dead_letters: last.dead,
        }
    }

    async fn stop(self) {
        self.tripletex.shutdown().await;
        self.mail.shutdown().await;
        self.store.close().await;
    }
}
