//! Crash recovery and several instances, with real `forfall serve` processes.
//!
//! The run: six overdue invoices in the Tripletex fake become warning e-mails, then (five days
//! later) one case each at the fake agency, whose payments (one paid in two parts) become payments
//! registered in the Tripletex fake. The gateway is the real binary, its time a clock file
//! (`FORFALL_CLOCK_FILE`) that the test moves one simulated day at a time, waiting each time until
//! the day's work is done (the store shows the day ticked and no job runnable). The fakes and the
//! SMTP capture run in the test process.
//!
//! - An uninterrupted run records the final state; then the same run with the gateway SIGKILLed at
//!   fifteen points (during the first sync, after the clock moves, while a delivery to a slow
//!   agency is in flight, while a payment write-back is in flight, during the start-up catch-up,
//!   down over a whole day, twice in a row…) and restarted on the same database must end in the
//!   same state: one case per invoice, each payment registered once, a warning before every
//!   transfer, no dead letter. On SQLite and on PostgreSQL.
//! - Two instances on one PostgreSQL database, driven through the same days (thirty more invoices
//!   crowd one tick day), with the agency's events going to either, and one instance killed while
//!   delivering: every invoice transferred once, every payment registered once, every warning
//!   seen before its transfer.
//!
//! After a kill the clock is moved on by eleven minutes: the dead process's leases (jobs 5 min,
//! the day tick 10 min, the poll 2 min) end, as they would in real time.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use forfall::domain::{ConnectionId, Country, CreditorId, Job, JobState, Language, NewCreditor};
use forfall::notify::SmtpCapture;
use forfall::pipeline::case::AgencyEvent;
use forfall::pipeline::{AgencyFault, FakeAgency};
use forfall::secrets::EncryptionKey;
use forfall::store::{self, Store, StoreOptions};
use forfall::sync::connections::ConnectionSecrets;
use forfall_connector::standard_webhooks::Secret;
use forfall_tripletex::fake::{FakeConfig, FakeTripletex, Fault, NewCustomer, NewInvoice};
use rust_decimal::Decimal;

const ZONE: chrono_tz::Tz = chrono_tz::Europe::Oslo;
/// The last simulated day with something to do; two quiet days follow.
const LAST_DAY: i64 = 18;
/// How many times the crashing run SIGKILLs the gateway.
const KILL_POINTS: usize = 15;
/// Enough for every lease of a killed process to end.
const LEASES_END: chrono::Duration = chrono::Duration::minutes(11);
/// How long a simulated day may take to settle (real time) before the test gives up.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(90);

fn day0() -> NaiveDate {
    "2026-11-23".parse().expect("date")
}

fn date(day: i64) -> NaiveDate {
    day0() + chrono::Duration::days(day)
}

/// 06:00 in Oslo on simulated day `day`: the day tick's hour.
fn morning(day: i64) -> DateTime<Utc> {
    ZONE.from_local_datetime(&date(day).and_hms_opt(6, 0, 0).expect("time"))
        .single()
        .expect("a single instant")
        .with_timezone(&Utc)
}

/// One invoice of the run: its due date (a day offset) and what the agency collects, in days
/// after the transfer.
struct Planned {
    due: i64,
    amount: Decimal,
    payments: Vec<(i64, Decimal)>,
}

/// Six invoices falling due over ten days, and `crowd` more all falling due on day 2 (warned
/// together on day 3 by one day tick, transferred together on day 8).
fn plan(crowd: usize) -> Vec<Planned> {
    let crowd = (0..i64::try_from(crowd).expect("a small crowd")).map(|k| {
        let amount = Decimal::new(90_000 + k * 1_001, 2);
        Planned {
            due: 2,
            amount,
            payments: vec![(3, amount)],
        }
    });
    (0..6_i64)
        .map(|k| {
            let amount = Decimal::new(125_000 + k * 11_111, 2);
            let payments = if k == 3 {
                let half = (amount / Decimal::TWO).round_dp(2);
                vec![(3, half), (4, amount - half)]
            } else {
                vec![(3, amount)]
            };
            // Due from three days ago to a week ahead: warnings from day 0 to day 8, transfers
            // from day 5 to day 13.
            Planned {
                due: -3 + 2 * k,
                amount,
                payments,
            }
        })
        .chain(crowd)
        .collect()
}

/// A database of its own for one test: SQLite in the test's directory, or a PostgreSQL
/// database created for it (and dropped by [`Database::drop_it`]).
struct Database {
    url: String,
    postgres: Option<(String, String)>,
}

impl Database {
    async fn sqlite(dir: &Path) -> Database {
        Database {
            url: format!("sqlite://{}/forfall.db", dir.display()),
            postgres: None,
        }
    }

    async fn postgres() -> Option<Database> {
        let admin_url = common::postgres_url()?;
        let name = format!("forfall_test_{}", uuid::Uuid::new_v4().simple());
        let admin = sqlx::PgPool::connect(&admin_url)
            .await
            .expect("connect to FORFALL_TEST_POSTGRES_URL");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&admin)
            .await
            .expect("create a test database");
        admin.close().await;
        Some(Database {
            url: common::with_database(&admin_url, &name),
            postgres: Some((admin_url, name)),
        })
    }

    async fn drop_it(self) {
        if let Some((admin_url, name)) = self.postgres {
            let admin = sqlx::PgPool::connect(&admin_url).await.expect("connect");
            sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&admin)
                .await
                .expect("drop the test database");
            admin.close().await;
        }
    }
}

/// One `forfall serve` process (and its restarts) on a fixed port, logging to a file.
struct Gateway {
    port: u16,
    log: PathBuf,
    env: Vec<(String, String)>,
    child: Option<Child>,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

impl Gateway {
    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self) {
        assert!(self.child.is_none(), "the gateway is already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log file");
        let mut command = Command::new(env!("CARGO_BIN_EXE_forfall"));
        command.arg("serve");
        for (var, _) in std::env::vars() {
            if var.starts_with("FORFALL_") {
                command.env_remove(var);
            }
        }
        command
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("FORFALL_LISTEN", format!("127.0.0.1:{}", self.port))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log);
        self.child = Some(command.spawn().expect("spawn forfall serve"));
    }

    /// SIGKILL: no shutdown, no lease released.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Panics with the log's end if the process has exited.
    fn check_alive(&mut self) {
        if let Some(child) = self.child.as_mut()
            && let Ok(Some(status)) = child.try_wait()
        {
            panic!("forfall serve exited ({status}):\n{}", tail(&self.log, 60));
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.kill();
    }
}

fn tail(path: &Path, lines: usize) -> String {
    let mut text = String::new();
    if let Ok(mut file) = std::fs::File::open(path) {
        let _ = file.read_to_string(&mut text);
    }
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The final state of a run, with ids that differ between runs (creditor, connection,
/// invoices) replaced by the platform's invoice ids.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    invoices: BTreeMap<i64, InvoiceOutcome>,
    /// Every job by its idempotency key, with its state.
    jobs: BTreeMap<String, String>,
    /// Every distinct e-mail: its kind and day (from its Message-ID).
    emails: BTreeSet<String>,
}

#[derive(Debug, PartialEq, Eq)]
struct InvoiceOutcome {
    stage: String,
    /// Cases the agency holds for the invoice.
    cases_at_agency: usize,
    agency_case_state: Option<String>,
    /// The kinds of the messages of its case, in order (each idempotency key once).
    agency_messages: Vec<String>,
    transfer_on: Option<NaiveDate>,
    store_case_state: Option<String>,
    /// Successful `PUT /invoice/{id}/:payment` calls at Tripletex.
    payments_registered: usize,
    outstanding: Decimal,
    /// The first day a warning e-mail named the invoice.
    warned_on: Option<NaiveDate>,
}

/// Polls `$cond` (which may `.await`) every few milliseconds until it holds, or panics naming
/// `$what` after `$timeout`.
macro_rules! wait_until {
    ($run:expr, $timeout:expr, $what:expr, $cond:expr) => {{
        let started = Instant::now();
        loop {
            if $cond {
                break;
            }
            if started.elapsed() > $timeout {
                panic!("timed out waiting for {}:\n{}", $what, $run.logs());
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }};
}

struct Run {
    dir: tempfile::TempDir,
    store: Arc<dyn Store>,
    tripletex: FakeTripletex,
    agency: FakeAgency,
    mail: SmtpCapture,
    creditor: CreditorId,
    connection: ConnectionId,
    /// (Tripletex id, plan), in the order added.
    invoices: Vec<(i64, Planned)>,
    now: DateTime<Utc>,
    gateways: Vec<Gateway>,
    /// Which gateway the agency's next event goes to.
    next_event: usize,
    /// The kill points hit, in order.
    kills: Vec<&'static str>,
}

impl Run {
    /// The fakes, the invoices, a creditor and its Tripletex connection in a fresh store, and
    /// `instances` gateways configured (not started) on it.
    async fn new(
        dir: tempfile::TempDir,
        database_url: &str,
        instances: usize,
        crowd: usize,
    ) -> Run {
        let store = store::open(&StoreOptions {
            url: database_url.to_owned(),
            max_connections: 4,
        })
        .await
        .expect("open the store");
        store.migrate().await.expect("migrate");
        let listener = || async {
            tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind")
        };
        let config = FakeConfig {
            seed: 7,
            invoices: 0,
            today: day0(),
            ..FakeConfig::default()
        };
        let settings = serde_json::json!({
            "consumer_token": config.consumer_token,
            "employee_token": config.employee_token,
            "lookback_days": 120,
            "requests_per_second": 1000,
        });
        let tripletex = FakeTripletex::start(listener().await, config)
            .await
            .expect("Tripletex fake");
        let customer = tripletex.add_customer(NewCustomer {
            name: "Fjordkraft Kantine AS".into(),
            organization_number: Some("914778271".into()),
            ..NewCustomer::default()
        });
        let invoices: Vec<(i64, Planned)> = plan(crowd)
            .into_iter()
            .map(|planned| {
                let issued = date(planned.due) - chrono::Duration::days(14);
                let id = tripletex
                    .add_invoice(NewInvoice::new(customer, issued, planned.amount))
                    .expect("invoice");
                (id, planned)
            })
            .collect();
        let now = morning(0);
        let creditor = store
            .create_creditor(
                &NewCreditor {
                    name: "Nordlys Bakeri AS".into(),
                    organisation_number: "923609016".into(),
                    country: Country::Norway,
                    time_zone: None,
                    language: Language::Nb,
                    email: Some("faktura@nordlys.example".into()),
                    policy: serde_json::json!({}),
                    partner_id: None,
                },
                now,
            )
            .await
            .expect("creditor");
        let key_text = EncryptionKey::generate_base64();
        let key = EncryptionKey::from_base64(&key_text).expect("key");
        let mut settings = settings;
        settings["base_url"] = tripletex.base_url().into();
        let connection = ConnectionSecrets {
            settings,
            webhook_secret: Some("tripletex-shared-secret-for-tests".into()),
        }
        .create_connection(store.as_ref(), &key, &creditor.id, "tripletex", now)
        .await
        .expect("connection")
        .id;
        let secret = Secret::generate();
        let agency = FakeAgency::start(listener().await, secret.clone())
            .await
            .expect("agency");
        let mail = SmtpCapture::start(listener().await)
            .await
            .expect("SMTP capture");
        let clock_file = dir.path().join("clock");
        let env: Vec<(String, String)> = [
            ("FORFALL_DATABASE_URL", database_url.to_owned()),
            ("FORFALL_DATABASE_MAX_CONNECTIONS", "4".into()),
            ("FORFALL_DATA_DIR", dir.path().display().to_string()),
            ("FORFALL_ENCRYPTION_KEY", key_text),
            ("FORFALL_CLOCK_FILE", clock_file.display().to_string()),
            ("FORFALL_POLL_INTERVAL_SECONDS", "10".into()),
            ("FORFALL_AGENCY_MODE", "push".into()),
            ("FORFALL_AGENCY_URL", agency.url()),
            ("FORFALL_AGENCY_SECRET", secret.to_string()),
            ("FORFALL_SMTP_URL", mail.url()),
            ("FORFALL_SHUTDOWN_GRACE_SECONDS", "1".into()),
            ("FORFALL_LOG", "info,sqlx=warn".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let gateways = (0..instances)
            .map(|i| Gateway {
                port: free_port(),
                log: dir.path().join(format!("gateway-{i}.log")),
                env: env.clone(),
                child: None,
            })
            .collect();
        let mut run = Run {
            dir,
            store,
            tripletex,
            agency,
            mail,
            creditor: creditor.id,
            connection,
            invoices,
            now,
            gateways,
            next_event: 0,
            kills: Vec::new(),
        };
        run.set_clock(now);
        run
    }

    fn logs(&self) -> String {
        self.gateways
            .iter()
            .map(|g| format!("--- {} ---\n{}", g.log.display(), tail(&g.log, 40)))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Moves the gateway's time: the file is replaced whole.
    fn set_clock(&mut self, now: DateTime<Utc>) {
        self.now = now;
        let path = self.dir.path().join("clock");
        let tmp = self.dir.path().join("clock.tmp");
        std::fs::write(&tmp, now.to_rfc3339()).expect("write the clock");
        std::fs::rename(&tmp, &path).expect("move the clock");
    }

    fn spawn_all(&mut self) {
        for gateway in &mut self.gateways {
            gateway.spawn();
        }
    }

    /// Every gateway answers `/health/ready` (its start-up catch-up is done).
    async fn wait_ready(&mut self) {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .expect("client");
        for i in 0..self.gateways.len() {
            let url = format!("{}/health/ready", self.gateways[i].base());
            let started = Instant::now();
            loop {
                self.gateways[i].check_alive();
                if let Ok(answer) = http.get(&url).send().await
                    && answer.status().is_success()
                {
                    break;
                }
                assert!(
                    started.elapsed() < SETTLE_TIMEOUT,
                    "the gateway never became ready:\n{}",
                    self.logs()
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }

    /// SIGKILLs every gateway at kill point `what`.
    fn kill(&mut self, what: &'static str) {
        for gateway in &mut self.gateways {
            gateway.kill();
        }
        self.kills.push(what);
    }

    /// Starts the gateways again once the dead process's leases have ended.
    fn restart(&mut self) {
        self.set_clock(self.now + LEASES_END);
        self.spawn_all();
    }

    async fn crash(&mut self, what: &'static str) {
        self.kill(what);
        self.restart();
        self.wait_ready().await;
    }

    async fn stored(&self, platform_id: i64) -> Option<forfall::domain::Invoice> {
        self.store
            .invoice_by_platform_id(&self.creditor, &self.connection, &platform_id.to_string())
            .await
            .expect("read the store")
    }

    async fn jobs(&self) -> Vec<Job> {
        self.store.jobs(&self.creditor).await.expect("read jobs")
    }

    /// Whether day `day`'s work is done: ticked, every invoice ingested, no job runnable now or
    /// running. A dead letter fails the test at once.
    async fn settled(&self, day: i64) -> Result<(), String> {
        let creditor = self
            .store
            .creditor(&self.creditor)
            .await
            .expect("read the creditor")
            .expect("the creditor");
        if creditor.ticked_through < Some(date(day)) {
            return Err(format!("ticked through {:?}", creditor.ticked_through));
        }
        for (id, _) in &self.invoices {
            if self.stored(*id).await.is_none() {
                return Err(format!("invoice {id} is not ingested yet"));
            }
        }
        let jobs = self.jobs().await;
        if let Some(dead) = jobs.iter().find(|j| j.state == JobState::Dead) {
            panic!(
                "a dead letter: {} ({:?})\n{}",
                dead.idempotency_key,
                dead.last_error,
                self.logs()
            );
        }
        if let Some(busy) = jobs.iter().find(|j| {
            j.state == JobState::Running
                || (j.state == JobState::Pending && j.run_after <= self.now)
        }) {
            return Err(format!(
                "job {} is {:?} (attempts {}, last error {:?})",
                busy.idempotency_key, busy.state, busy.attempts, busy.last_error
            ));
        }
        Ok(())
    }

    async fn wait_settled(&mut self, day: i64) {
        let started = Instant::now();
        loop {
            for gateway in &mut self.gateways {
                gateway.check_alive();
            }
            match self.settled(day).await {
                Ok(()) => return,
                Err(why) if started.elapsed() > SETTLE_TIMEOUT => {
                    panic!("day {day} did not settle: {why}\n{}", self.logs())
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(25)).await,
            }
        }
    }

    /// The agency's payments due on `day`, per the plan: (invoice, event id, event).
    fn payments_due(&self, day: i64) -> Vec<(i64, String, AgencyEvent)> {
        let mut due = Vec::new();
        for case in self.agency.cases() {
            let Some(transfer) = &case.transfer else {
                continue;
            };
            let platform_id: i64 = transfer["invoice"]["platform_id"]
                .as_str()
                .and_then(|t| t.parse().ok())
                .expect("the case names its invoice");
            let transfer_on: NaiveDate = transfer["transfer_on"]
                .as_str()
                .and_then(|t| t.parse().ok())
                .expect("transfer_on");
            let (_, planned) = self
                .invoices
                .iter()
                .find(|(id, _)| *id == platform_id)
                .expect("a planned invoice");
            for (n, (after, amount)) in planned.payments.iter().enumerate() {
                if transfer_on + chrono::Duration::days(*after) == date(day) {
                    due.push((
                        platform_id,
                        format!("evt_pay_{platform_id}_{n}"),
                        AgencyEvent::PaymentReceived {
                            case_id: case.case_id.clone(),
                            amount: *amount,
                            currency: "NOK".into(),
                            paid_on: date(day),
                        },
                    ));
                }
            }
        }
        due
    }

    /// The agency tells a gateway (each in turn) of a payment; a replay (after a crash) is
    /// acknowledged without being applied.
    async fn send(&mut self, id: &str, event: &AgencyEvent) {
        let gateway = self.next_event % self.gateways.len();
        self.next_event += 1;
        let base = self.gateways[gateway].base();
        let status = self
            .agency
            .send_event_with_id(&base, id, event)
            .await
            .expect("send the agency's event");
        assert!(
            status == 202 || status == 200,
            "the gateway answered {status} to {id}:\n{}",
            self.logs()
        );
    }

    fn payment_puts(&self, platform_id: i64) -> usize {
        let path = format!("/v2/invoice/{platform_id}/:payment");
        self.tripletex
            .requests()
            .iter()
            .filter(|r| r.method == "PUT" && r.path == path && r.status < 300)
            .count()
    }

    async fn job_with_key(&self, prefix: &str, platform_id: i64) -> Option<Job> {
        let needle = format!(":{platform_id}:");
        self.jobs()
            .await
            .into_iter()
            .find(|j| j.idempotency_key.starts_with(prefix) && j.idempotency_key.contains(&needle))
    }

    fn platform_id(&self, k: usize) -> i64 {
        self.invoices[k].0
    }

    /// Gathers the final state.
    async fn outcome(&self) -> Outcome {
        let mut emails = BTreeSet::new();
        let mut warnings: Vec<(NaiveDate, String)> = Vec::new();
        let mut seen = BTreeSet::new();
        for message in self.mail.messages() {
            let id = message.message_id.clone().expect("a Message-ID");
            if !seen.insert(id.clone()) {
                continue; // sent again after a crash: the same e-mail
            }
            // <{kind}.{creditor}.{day}@forfall>
            let inner = id.trim_start_matches('<').trim_end_matches("@forfall>");
            let kind = inner.split('.').next().expect("kind").to_owned();
            let day: NaiveDate = inner
                .rsplit('.')
                .next()
                .and_then(|d| d.parse().ok())
                .expect("the digest's day");
            emails.insert(format!("{kind} {day}"));
            if kind == "warning" {
                warnings.push((day, message.body.clone()));
            }
        }
        let cases = self.agency.cases();
        let fake_invoices = self.tripletex.invoices();
        let mut invoices = BTreeMap::new();
        let mut jobs = BTreeMap::new();
        let mut ids = vec![
            (self.creditor.to_string(), "CREDITOR".to_owned()),
            (self.connection.to_string(), "CONNECTION".to_owned()),
        ];
        for (platform_id, _) in &self.invoices {
            let stored = self.stored(*platform_id).await.expect("stored");
            ids.push((stored.id.to_string(), format!("INVOICE{platform_id}")));
            let at_agency: Vec<_> = cases
                .iter()
                .filter(|c| {
                    c.transfer
                        .as_ref()
                        .and_then(|t| t["invoice"]["platform_id"].as_str())
                        == Some(platform_id.to_string().as_str())
                })
                .collect();
            let case = self
                .store
                .latest_case(&self.creditor, &stored.id)
                .await
                .expect("read the case");
            let outstanding = fake_invoices
                .iter()
                .find(|i| i["id"] == serde_json::json!(platform_id))
                .map(|i| match &i["amountOutstanding"] {
                    serde_json::Value::String(s) => s.parse::<Decimal>().expect("amount"),
                    other => other.to_string().parse::<Decimal>().expect("amount"),
                })
                .expect("the fake has the invoice")
                .normalize();
            invoices.insert(
                *platform_id,
                InvoiceOutcome {
                    stage: format!("{:?}", stored.stage),
                    cases_at_agency: at_agency.len(),
                    agency_case_state: at_agency.first().map(|c| c.state.clone()),
                    agency_messages: at_agency
                        .first()
                        .map(|c| c.messages.clone())
                        .unwrap_or_default(),
                    transfer_on: at_agency
                        .first()
                        .and_then(|c| c.transfer.as_ref()?["transfer_on"].as_str()?.parse().ok()),
                    store_case_state: case.map(|c| format!("{:?}", c.state)),
                    payments_registered: self.payment_puts(*platform_id),
                    outstanding,
                    warned_on: warnings
                        .iter()
                        .filter(|(_, body)| body.contains(&stored.facts.number))
                        .map(|(day, _)| *day)
                        .min(),
                },
            );
        }
        for job in self.jobs().await {
            let mut key = job.idempotency_key.clone();
            for (id, name) in &ids {
                key = key.replace(id.as_str(), name);
            }
            jobs.insert(key, format!("{:?}", job.state));
        }
        Outcome {
            invoices,
            jobs,
            emails,
        }
    }

    /// What every run must end with, interrupted or not.
    fn check(&self, outcome: &Outcome) {
        assert_eq!(self.agency.conflicts(), 0, "no case sent twice");
        assert_eq!(self.agency.rejected(), 0, "no delivery refused");
        for (platform_id, planned) in &self.invoices {
            let invoice = &outcome.invoices[platform_id];
            assert_eq!(
                invoice.cases_at_agency, 1,
                "invoice {platform_id}: one case at the agency: {outcome:#?}"
            );
            assert_eq!(
                invoice.payments_registered,
                planned.payments.len(),
                "invoice {platform_id}: each collected payment registered once: {outcome:#?}"
            );
            assert_eq!(invoice.outstanding, Decimal::ZERO, "invoice {platform_id}");
            let (Some(warned), Some(transfer)) = (invoice.warned_on, invoice.transfer_on) else {
                panic!("invoice {platform_id}: warned and transferred: {outcome:#?}");
            };
            assert!(
                warned < transfer,
                "invoice {platform_id}: warned on {warned}, before its transfer on {transfer}"
            );
            assert_eq!(invoice.stage, "Closed", "invoice {platform_id}");
        }
        let unfinished: Vec<_> = outcome
            .jobs
            .iter()
            .filter(|(_, state)| *state != "Succeeded")
            .collect();
        assert!(unfinished.is_empty(), "every job done: {unfinished:?}");
    }

    async fn stop(mut self) {
        for gateway in &mut self.gateways {
            gateway.kill();
        }
        self.store.close().await;
        self.tripletex.shutdown().await;
        self.agency.shutdown().await;
        self.mail.shutdown().await;
    }
}

/// Drives the run through its days; with `crash`, SIGKILLs and restarts the gateway at
/// fifteen points on the way.
async fn drive(run: &mut Run, crash: bool) {
    run.spawn_all();
    if crash {
        wait_until!(run, SETTLE_TIMEOUT, "the first invoice stored", {
            run.stored(run.platform_id(0)).await.is_some()
        });
        run.kill("during the first sync, once an invoice is stored");
        run.restart();
        run.wait_ready().await;
        run.kill("the moment the restarted gateway was ready");
        run.restart();
    }
    run.wait_ready().await;
    run.wait_settled(0).await;
    let mut day = 1;
    while day <= LAST_DAY + 2 {
        match (crash, day) {
            (true, 1) => {
                run.set_clock(morning(day));
                tokio::time::sleep(Duration::from_millis(100)).await;
                run.crash("right after the clock moved to a new day").await;
            }
            (true, 2) => {
                let sent = run.mail.messages().len();
                run.set_clock(morning(day));
                wait_until!(
                    run,
                    SETTLE_TIMEOUT,
                    "the day's warning e-mail",
                    run.mail.messages().len() > sent
                );
                run.crash("the moment the SMTP server took the warning e-mail")
                    .await;
            }
            (true, 3) => {
                // Down over a whole day: day 3 is caught up at start-up, then day 4.
                run.kill("down from day 2 to day 4");
                run.set_clock(morning(4));
                run.restart();
                run.wait_ready().await;
                run.wait_settled(3).await;
                day = 4;
            }
            (true, 5) => {
                run.agency
                    .answer(AgencyFault::Slow(Duration::from_secs(3)), 1);
                let deliveries = run.agency.deliveries();
                run.set_clock(morning(day));
                wait_until!(
                    run,
                    SETTLE_TIMEOUT,
                    "a delivery to the slow agency",
                    run.agency.deliveries() > deliveries
                );
                run.crash("while a delivery to the (slow) agency was in flight")
                    .await;
            }
            (true, 7) => {
                run.kill("idle at the end of day 6");
                run.set_clock(morning(day));
                run.spawn_all();
                let k2 = run.platform_id(2);
                wait_until!(
                    run,
                    SETTLE_TIMEOUT,
                    "the start-up catch-up's transfer",
                    run.job_with_key("transfer", k2).await.is_some()
                );
                run.crash("during the start-up catch-up, its transfer decided")
                    .await;
            }
            (true, 9) => {
                let cases = run.agency.cases().len();
                run.set_clock(morning(day));
                wait_until!(
                    run,
                    SETTLE_TIMEOUT,
                    "the day's case at the agency",
                    run.agency.cases().len() > cases
                );
                run.crash("the moment the agency took the case").await;
            }
            (true, 11) => {
                run.set_clock(morning(day));
                let k4 = run.platform_id(4);
                wait_until!(
                    run,
                    SETTLE_TIMEOUT,
                    "the day's transfer decided",
                    run.job_with_key("transfer", k4).await.is_some()
                );
                run.crash("the transfer decided, its delivery not yet made")
                    .await;
            }
            (true, 13) => {
                run.set_clock(morning(day));
                tokio::time::sleep(Duration::from_millis(50)).await;
                run.kill("right after the clock moved, once");
                run.restart();
                tokio::time::sleep(Duration::from_millis(150)).await;
                run.crash("and again while starting up").await;
            }
            (false, 8) if run.gateways.len() > 1 => {
                // One of two instances dies while delivering the crowd's transfers; the other
                // takes its jobs once their leases end.
                run.agency
                    .answer(AgencyFault::Slow(Duration::from_secs(3)), 1);
                let deliveries = run.agency.deliveries();
                run.set_clock(morning(day));
                wait_until!(
                    run,
                    SETTLE_TIMEOUT,
                    "a delivery to the slow agency",
                    run.agency.deliveries() > deliveries
                );
                run.gateways[0].kill();
                run.kills.push("one of two instances, while delivering");
                run.set_clock(run.now + LEASES_END);
                run.wait_settled(day).await;
                run.gateways[0].spawn();
                run.wait_ready().await;
            }
            _ => run.set_clock(morning(day)),
        }
        run.wait_settled(day).await;
        let payments = run.payments_due(day);
        for (n, (platform_id, id, event)) in payments.iter().enumerate() {
            match (crash, day, n) {
                (true, 8, 0) => {
                    run.send(id, event).await;
                    run.crash("right after the agency's payment was accepted")
                        .await;
                }
                (true, 8, 1) => {
                    // The platform answers slowly: the write-back's read, then its write.
                    run.tripletex.inject(Fault::Slow {
                        delay: Duration::from_millis(1000),
                        times: 3,
                    });
                    run.send(id, event).await;
                    wait_until!(
                        run,
                        SETTLE_TIMEOUT,
                        "the write-back's checkpoint",
                        run.job_with_key("payment", *platform_id)
                            .await
                            .is_some_and(|j| j.checkpoint.is_some())
                    );
                    run.kill("while the payment write-back was in flight");
                    // The dead process's request lands (or not) before anyone looks again.
                    let started = Instant::now();
                    while run.payment_puts(*platform_id) == 0
                        && started.elapsed() < Duration::from_secs(3)
                    {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    run.tripletex.clear_faults();
                    run.restart();
                    run.wait_ready().await;
                }
                (true, 12, 0) => {
                    let puts = run.payment_puts(*platform_id);
                    run.send(id, event).await;
                    wait_until!(
                        run,
                        SETTLE_TIMEOUT,
                        "the payment registered in Tripletex",
                        run.payment_puts(*platform_id) > puts
                    );
                    run.crash("the moment Tripletex registered the payment")
                        .await;
                }
                _ => run.send(id, event).await,
            }
        }
        run.wait_settled(day).await;
        day += 1;
    }
}

async fn uninterrupted_and_crashed_runs_end_alike(
    make_database: impl AsyncFn(&Path) -> Option<Database>,
) {
    let clean = {
        let dir = tempfile::tempdir().expect("dir");
        let Some(database) = make_database(dir.path()).await else {
            return;
        };
        let mut run = Run::new(dir, &database.url, 1, 0).await;
        drive(&mut run, false).await;
        let outcome = run.outcome().await;
        run.check(&outcome);
        run.stop().await;
        database.drop_it().await;
        outcome
    };
    let dir = tempfile::tempdir().expect("dir");
    let Some(database) = make_database(dir.path()).await else {
        return;
    };
    let mut run = Run::new(dir, &database.url, 1, 0).await;
    drive(&mut run, true).await;
    let outcome = run.outcome().await;
    assert_eq!(
        run.kills.len(),
        KILL_POINTS,
        "every kill point hit: {:?}",
        run.kills
    );
    run.check(&outcome);
    assert_eq!(
        outcome, clean,
        "killed at {:?}, the run ends as the uninterrupted one",
        run.kills
    );
    run.stop().await;
    database.drop_it().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_killed_at_fifteen_points_the_gateway_ends_as_the_uninterrupted_run() {
    uninterrupted_and_crashed_runs_end_alike(async |dir: &Path| Some(Database::sqlite(dir).await))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_killed_at_fifteen_points_the_gateway_ends_as_the_uninterrupted_run() {
    uninterrupted_and_crashed_runs_end_alike(async |_: &Path| Database::postgres().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_two_gateways_on_one_database_transfer_each_invoice_once_and_register_each_payment_once()
 {
    let dir = tempfile::tempdir().expect("dir");
    let Some(database) = Database::postgres().await else {
        return;
    };
    let mut run = Run::new(dir, &database.url, 2, 30).await;
    drive(&mut run, false).await;
    let outcome = run.outcome().await;
    assert_eq!(run.kills.len(), 1, "one instance was killed on the way");
    run.check(&outcome);
    let transfers = run
        .agency
        .messages()
        .iter()
        .filter(|m| m.kind == "case.transfer")
        .count();
    assert_eq!(
        transfers,
        run.invoices.len(),
        "one transfer message per invoice"
    );
    run.stop().await;
    database.drop_it().await;
}
