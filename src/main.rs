//! The `forfall` command line. Exit codes: 0 ok, 1 failure, 2 bad input or configuration.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use forfall::config::{Config, LogFormat};
use forfall::store::{self, StoreError};

mod cli_admin;

/// mimalloc rather than the system allocator: under the gateway's many small, short-lived
/// allocations across threads, glibc's malloc spent about a quarter of the webhook benchmark in
/// its own bookkeeping and arena locks.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "forfall",
    version,
    about = "An open gateway between accounting platforms and debt collection"
)]
struct Cli {
    /// A TOML configuration file (environment variables FORFALL_* override it). Not for
    /// simulate, claim, bench, demo and fake, which read no configuration.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Write logs as JSON lines instead of human-readable text.
    #[arg(long, global = true)]
    log_json: bool,
    /// Without one, `forfall` runs the demo (`forfall demo`): the whole loop, nothing to set up.
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway: HTTP server (health, metrics) on the configured address. Applies pending
    /// migrations first. Needs FORFALL_ENCRYPTION_KEY.
    Serve,
    /// Bring the database schema up to date (harmless when it already is).
    Migrate,
    /// Run scenario files through the lifecycle engine on a simulated clock and print the actions
    /// as JSON lines (exit 0), or compare them with each file's "expect" (`--check`: exit 1 and a
    /// readable diff on a mismatch). Bad input is exit 2 naming the file, the JSON path and the
    /// problem, with nothing on stdout.
    Simulate(SimulateArgs),
    /// Late-payment interest and statutory fees of a claim, from the dated rate tables.
    Claim(ClaimArgs),
    /// Benchmarks that print figures and ratios (they assert nothing).
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Creditors: the businesses whose invoices Forfall follows.
    #[command(subcommand)]
    Creditors(CreditorsCommand),
    /// Connections: a creditor's accounts on accounting platforms.
    #[command(subcommand)]
    Connections(ConnectionsCommand),
    /// Run one sync pass of a connection now, with a progress bar (pages, invoices, elapsed). A
    /// pass cut short earlier is finished first.
    Sync {
        /// The connection's id (conn_…).
        connection: String,
        /// Read everything again (the nightly resync): also re-reads open invoices the platform
        /// no longer lists.
        #[arg(long)]
        full: bool,
    },
    /// The whole loop on your machine, nothing to set up: a fake Tripletex with a bakery's
    /// invoices, a fake collection agency, an SMTP capture and the gateway on a simulated clock
    /// (a day per second), narrated day by day and summed up at the end.
    #[cfg(feature = "fake")]
    Demo {
        /// Simulated days to run.
        #[arg(long, default_value_t = 45)]
        days: u32,
        /// Real milliseconds per simulated day (0: as fast as it goes).
        #[arg(long, default_value_t = 1000)]
        day_ms: u64,
        /// Where the demo makes its own directory (and database).
        #[arg(long, default_value = "data")]
        dir: PathBuf,
        /// Keep the demo's directory afterwards.
        #[arg(long)]
        keep: bool,
    },
    /// The outbox's jobs: what is waiting, what failed for good, and putting it back.
    #[command(subcommand)]
    Jobs(JobsCommand),
    /// Partners: collection agencies and integrators serving creditors through the API.
    #[command(subcommand)]
    Partners(PartnersCommand),
    /// API keys: bearer tokens for the partner and creditor API (`/v1`).
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Run a faithful fake of a platform on loopback, for tests and demos, until Ctrl-C.
    #[cfg(feature = "fake")]
    #[command(subcommand)]
    Fake(FakeCommand),
}

#[derive(Subcommand)]
enum JobsCommand {
    /// The newest jobs, one line each: id, state, kind, attempts, key, last error.
    List {
        /// Only jobs in this state: pending, running, succeeded or dead.
        #[arg(long)]
        state: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// One job with its payload and every attempt.
    Show { id: String },
    /// Put a dead (or waiting) job back in the queue now, with a fresh count of attempts.
    Retry { id: String },
    /// The dead letters: jobs that failed for good.
    Dead {
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
}

#[derive(Subcommand)]
enum PartnersCommand {
    /// Add a partner; prints its id.
    Add {
        #[arg(long)]
        name: String,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Create a key for a partner (reaching the creditors it serves) or for one creditor; prints
    /// the token once (only its hash is kept).
    Create {
        /// The partner's id (ptr_…).
        #[arg(
            long,
            conflicts_with = "creditor",
            required_unless_present = "creditor"
        )]
        partner: Option<String>,
        /// The creditor's id (cred_…).
        #[arg(long)]
        creditor: Option<String>,
        /// `read`, `write` or `read,write`.
        #[arg(long, default_value = "read,write")]
        scopes: String,
        /// A note to recognise the key by.
        #[arg(long)]
        label: Option<String>,
    },
    /// Every key: id, owner, scopes, created, revoked.
    List,
    /// Revoke a key at once.
    Revoke { id: String },
}

#[derive(Subcommand)]
enum CreditorsCommand {
    /// Add a creditor; prints its id.
    Add {
        #[arg(long)]
        name: String,
        /// The creditor's organisation number.
        #[arg(long)]
        org: String,
        /// NO, SE or FI.
        #[arg(long)]
        country: String,
        /// An IANA time zone; the country's by default (Europe/Oslo for NO).
        #[arg(long)]
        time_zone: Option<String>,
        /// nb or en.
        #[arg(long, default_value = "nb")]
        language: String,
        /// A JSON file with the policy (the scenario format's `policy`); the defaults otherwise.
        #[arg(long, value_name = "FILE")]
        policy: Option<PathBuf>,
        /// Where the creditor's e-mails go (warnings, transfer notices, alerts).
        #[arg(long)]
        email: Option<String>,
        /// The partner serving this creditor (ptr_…): its API keys reach the creditor.
        #[arg(long)]
        partner: Option<String>,
    },
}

#[derive(Subcommand)]
enum ConnectionsCommand {
    /// Add a connection; prints its id, its webhook path and its webhook secret. Needs
    /// FORFALL_ENCRYPTION_KEY: the settings are stored sealed.
    Add {
        /// The creditor's id (cred_…).
        #[arg(long)]
        creditor: String,
        /// tripletex or generic.
        #[arg(long)]
        platform: String,
        /// A JSON file with the connector's settings (see the README's "Connectors").
        #[arg(long, value_name = "FILE")]
        settings: PathBuf,
        /// The secret the platform signs webhooks with; a new one is made when absent.
        #[arg(long)]
        webhook_secret: Option<String>,
    },
    /// Ask the platform to deliver changes to this gateway (Tripletex: event subscriptions).
    Subscribe {
        connection: String,
        /// This gateway's public base URL, e.g. https://forfall.example.no
        #[arg(long)]
        public_url: String,
    },
    /// List connections with their status, last sync and last error.
    List,
}

#[cfg(feature = "fake")]
#[derive(Subcommand)]
enum FakeCommand {
    /// The Tripletex API v2 under /v2, with a control API under /_fake.
    Tripletex {
        #[arg(long, default_value_t = 8090)]
        port: u16,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// How many invoices to seed.
        #[arg(long, default_value_t = 200)]
        invoices: usize,
    },
    /// A collection agency: receives signed cases on /cases, with a control API under /_fake.
    Agency {
        #[arg(long, default_value_t = 8091)]
        port: u16,
        /// The shared secret (whsec_…); a new one is made and printed when absent.
        #[arg(long, env = "FORFALL_AGENCY_SECRET")]
        secret: Option<String>,
    },
}

#[derive(clap::Args)]
struct SimulateArgs {
    /// A scenario file, or a folder: every *.json in it, with a closing line "N passed, M failed".
    path: PathBuf,
    /// Compare the core actions with the file's "expect".
    #[arg(long)]
    check: bool,
    /// Add the rule and the inputs behind each action (what the server writes to its decision log).
    #[arg(long)]
    explain: bool,
}

#[derive(Subcommand)]
enum BenchCommand {
    /// The day tick over a small and a large book with the same number of invoices due: invoices
    /// evaluated per second, and the ratio of the two run times (goal <= 1.3: a day's work follows
    /// the due invoices, not the total).
    Engine {
        #[arg(long, default_value_t = 100_000)]
        small: usize,
        #[arg(long, default_value_t = 1_000_000)]
        large: usize,
        #[arg(long, default_value_t = 10_000)]
        due: usize,
    },
    /// A full Tripletex sync of N invoices from the fake into SQLite (and PostgreSQL with
    /// --postgres), beside a bare reqwest loop over the same pages: times and ratio (goal <= 1.5).
    #[cfg(feature = "fake")]
    Sync {
        #[arg(long, default_value_t = 100_000)]
        invoices: usize,
        /// A PostgreSQL URL whose server the benchmark may create a database on.
        #[arg(long, env = "FORFALL_TEST_POSTGRES_URL")]
        postgres: Option<String>,
    },
    /// Webhook ingest (verify + store + 202) against a bare axum handler that only verifies:
    /// deliveries per second and ratio (goal >= 0.8).
    #[cfg(feature = "fake")]
    Webhooks {
        #[arg(long, default_value_t = 20_000)]
        deliveries: usize,
        #[arg(long, env = "FORFALL_TEST_POSTGRES_URL")]
        postgres: Option<String>,
    },
    /// Forwards N transfers to the fake agency through the job runner and the `pipeline`
    /// handler, beside a bare reqwest loop posting the same bodies to the same fake: cases per
    /// second, the ratio (goal >= 0.8) and jobs completed per second, on SQLite (and PostgreSQL
    /// with --postgres). Exit 1 if a case is missing or repeated or a job died.
    #[cfg(feature = "fake")]
    Forward {
        #[arg(long, default_value_t = 20_000)]
        cases: usize,
        /// Deliveries to the agency at once (the gateway's `agency_in_flight`, and the bare
        /// loop's concurrency).
        #[arg(long, default_value_t = 64)]
        in_flight: usize,
        #[arg(long, env = "FORFALL_TEST_POSTGRES_URL")]
        postgres: Option<String>,
    },
}

#[derive(clap::Args)]
struct ClaimArgs {
    /// NO, SE or FI.
    #[arg(long)]
    country: String,
    /// The principal, a decimal with at most 2 decimals (10000.00).
    #[arg(long)]
    amount: String,
    /// The country's currency: NOK, SEK or EUR.
    #[arg(long)]
    currency: String,
    /// The due date (YYYY-MM-DD); interest runs from the day after.
    #[arg(long)]
    due: String,
    /// The payment date (YYYY-MM-DD), included in the interest.
    #[arg(long)]
    paid: String,
    /// consumer or business.
    #[arg(long, default_value = "consumer")]
    debtor: String,
    /// Sweden: the påminnelseavgift was agreed when the debt arose (SE-01), so it may be charged.
    #[arg(long)]
    reminder_fee_agreed: bool,
    /// Print JSON instead of the readable table.
    #[arg(long)]
    json: bool,
}

/// How a command ended, and so the exit code.
enum Failure {
    /// Exit 2: the user gave something wrong (configuration, input).
    BadInput(String),
    /// Exit 1: something failed that was not the user's input.
    Failed(String),
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Failure {
        // On the command line an id that names nothing is the caller's input at fault.
        if e.is_bad_input() || matches!(e, StoreError::NotFound { .. }) {
            Failure::BadInput(e.to_string())
        } else {
            Failure::Failed(e.to_string())
        }
    }
}

/// `forfall` alone: the demo, as `cargo run` with nothing set up should show the gateway at work.
#[cfg(feature = "fake")]
fn no_command() -> ExitCode {
    eprintln!(
        "forfall: no command given, so here is the demo (`forfall demo`); `forfall --help` lists the commands"
    );
    let cli = Cli::parse_from(["forfall", "demo"]);
    match cli.command {
        Some(command @ Command::Demo { .. }) => run_command(command, None, false),
        _ => ExitCode::from(2),
    }
}

#[cfg(not(feature = "fake"))]
fn no_command() -> ExitCode {
    use clap::CommandFactory;
    let _ = Cli::command().print_help();
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(command) => run_command(command, cli.config, cli.log_json),
        None => no_command(),
    }
}

fn run_command(command: Command, config_file: Option<PathBuf>, log_json: bool) -> ExitCode {
    // Commands that touch no database and no server read no configuration: a file given to one
    // of them would be silently unused, so it is refused.
    let reads_none = match &command {
        Command::Claim(_) | Command::Simulate(_) | Command::Bench(_) => true,
        #[cfg(feature = "fake")]
        Command::Demo { .. } | Command::Fake(_) => true,
        _ => false,
    };
    if reads_none && let Some(file) = &config_file {
        eprintln!(
            "forfall: --config {}: this command reads no configuration (simulate, claim, bench, demo and fake make their own); leave it out",
            file.display()
        );
        return ExitCode::from(2);
    }
    match &command {
        Command::Claim(args) => return finish(claim(args)),
        Command::Simulate(args) => return simulate(args),
        Command::Bench(BenchCommand::Engine { small, large, due }) => {
            let report = forfall::lifecycle::bench::bench_scaling(*small, *large, *due);
            return finish(emit(&format!("{report}\n")));
        }
        #[cfg(feature = "fake")]
        Command::Fake(command) => return finish(run_async(fake(command))),
        #[cfg(feature = "fake")]
        Command::Demo {
            days,
            day_ms,
            dir,
            keep,
        } => {
            let options = forfall::demo::DemoOptions {
                days: *days,
                day_length: Duration::from_millis(*day_ms),
                parent_dir: dir.clone(),
                keep: *keep,
                narrate: true,
            };
            return finish(run_async(async move {
                let started = std::time::Instant::now();
                let summary =
                    forfall::demo::run_until(&options, forfall::server::shutdown_signal())
                        .await
                        .map_err(|e| Failure::Failed(e.to_string()))?;
                emit(&format!(
                    "{summary}\n{} simulated days in {:.1} s\n",
                    options.days,
                    started.elapsed().as_secs_f64()
                ))
            }));
        }
        #[cfg(feature = "fake")]
        Command::Bench(BenchCommand::Sync { invoices, postgres }) => {
            let invoices = *invoices;
            return finish(run_async(bench_ingest(postgres.clone(), move |b| {
                Box::pin(async move { forfall::sync::bench::bench_sync(invoices, &b).await })
            })));
        }
        #[cfg(feature = "fake")]
        Command::Bench(BenchCommand::Webhooks {
            deliveries,
            postgres,
        }) => {
            let deliveries = *deliveries;
            return finish(run_async(bench_ingest(postgres.clone(), move |b| {
                Box::pin(async move { forfall::sync::bench::bench_webhooks(deliveries, &b).await })
            })));
        }
        #[cfg(feature = "fake")]
        Command::Bench(BenchCommand::Forward {
            cases,
            in_flight,
            postgres,
        }) => {
            let (cases, in_flight) = (*cases, *in_flight);
            return finish(run_async(bench_ingest(postgres.clone(), move |b| {
                Box::pin(async move {
                    forfall::pipeline::bench::bench_forward(cases, in_flight, &b).await
                })
            })));
        }
        _ => {}
    }
    let config = match Config::load(config_file.as_deref(), std::env::vars()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("forfall: {e}");
            return ExitCode::from(2);
        }
    };
    init_logs(&config, log_json);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("forfall: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    finish(runtime.block_on(async {
        match command {
            Command::Serve => serve(&config).await,
            Command::Migrate => migrate(&config).await,
            Command::Creditors(command) => cli_admin::creditors(&config, command).await,
            Command::Connections(command) => cli_admin::connections(&config, command).await,
            Command::Sync { connection, full } => cli_admin::sync(&config, &connection, full).await,
            Command::Jobs(command) => cli_admin::jobs(&config, command).await,
            Command::Partners(command) => cli_admin::partners(&config, command).await,
            Command::Keys(command) => cli_admin::keys(&config, command).await,
            // Answered before any configuration is read (see above).
            _ => Ok(()),
        }
    }))
}

/// Runs a future on a fresh runtime (for commands that read no configuration).
#[cfg(feature = "fake")]
fn run_async(
    future: impl std::future::Future<Output = Result<(), Failure>>,
) -> Result<(), Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Failed(format!("cannot start the async runtime: {e}")))?
        .block_on(future)
}

/// Runs an ingest benchmark in a temporary directory and prints its report.
#[cfg(feature = "fake")]
async fn bench_ingest<F>(postgres: Option<String>, run: F) -> Result<(), Failure>
where
    F: FnOnce(
        forfall::sync::bench::Backends,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<String, String>>>>,
{
    let dir = tempfile_dir()?;
    let backends = forfall::sync::bench::Backends {
        sqlite_dir: dir.clone(),
        postgres_url: postgres.filter(|u| !u.is_empty()),
    };
    let outcome = run(backends).await;
    let _ = std::fs::remove_dir_all(&dir);
    emit(&outcome.map_err(Failure::Failed)?)
}

/// A fresh directory under the system's temporary directory.
#[cfg(feature = "fake")]
fn tempfile_dir() -> Result<PathBuf, Failure> {
    let dir = std::env::temp_dir().join(format!("forfall-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)
        .map_err(|e| Failure::Failed(format!("cannot create {}: {e}", dir.display())))?;
    Ok(dir)
}

#[cfg(feature = "fake")]
async fn fake(command: &FakeCommand) -> Result<(), Failure> {
    match command {
        FakeCommand::Tripletex {
            port,
            seed,
            invoices,
        } => {
            use forfall_tripletex::fake::{FakeConfig, FakeTripletex};
            let listener = tokio::net::TcpListener::bind(("127.0.0.1", *port))
                .await
                .map_err(|e| Failure::Failed(format!("cannot listen on port {port}: {e}")))?;
            let config = FakeConfig {
                seed: *seed,
                invoices: *invoices,
                ..FakeConfig::default()
            };
            let (consumer, employee) =
                (config.consumer_token.clone(), config.employee_token.clone());
            let fake = FakeTripletex::start(listener, config)
                .await
                .map_err(|e| Failure::Failed(format!("cannot start the fake: {e}")))?;
            emit(&format!(
                "fake Tripletex at {}\ncontrol API at {}\nconsumer_token {consumer}\nemployee_token {employee}\n{invoices} invoices seeded with seed {seed}; Ctrl-C stops\n",
                fake.base_url(),
                fake.control_url()
            ))?;
            forfall::server::shutdown_signal().await;
            fake.shutdown().await;
            Ok(())
        }
        FakeCommand::Agency { port, secret } => {
            use forfall_connector::standard_webhooks::Secret;
            let secret = match secret {
                Some(text) => {
                    Secret::parse(text).map_err(|e| Failure::BadInput(format!("--secret: {e}")))?
                }
                None => Secret::generate(),
            };
            let listener = tokio::net::TcpListener::bind(("127.0.0.1", *port))
                .await
                .map_err(|e| Failure::Failed(format!("cannot listen on port {port}: {e}")))?;
            let agency = forfall::pipeline::FakeAgency::start(listener, secret.clone())
                .await
                .map_err(|e| Failure::Failed(format!("cannot start the fake agency: {e}")))?;
            emit(&format!(
                "fake agency receiving cases at {}\nsecret {}\nset FORFALL_AGENCY_MODE=push FORFALL_AGENCY_URL={} FORFALL_AGENCY_SECRET=<the secret> on the gateway; Ctrl-C stops\n",
                agency.url(),
                secret.to_string(),
                agency.url()
            ))?;
            forfall::server::shutdown_signal().await;
            Ok(())
        }
    }
}

fn finish(outcome: Result<(), Failure>) -> ExitCode {
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::BadInput(message)) => {
            eprintln!("forfall: {message}");
            ExitCode::from(2)
        }
        Err(Failure::Failed(message)) => {
            eprintln!("forfall: {message}");
            ExitCode::from(1)
        }
    }
}

fn init_logs(config: &Config, json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json || config.log_format == LogFormat::Json {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn simulate(args: &SimulateArgs) -> ExitCode {
    use forfall::simulate::{SimulateOptions, simulate_cli};
    let out = simulate_cli(
        &args.path,
        SimulateOptions {
            check: args.check,
            explain: args.explain,
        },
    );
    eprint!("{}", out.stderr);
    if let Err(Failure::Failed(message) | Failure::BadInput(message)) = emit(&out.stdout) {
        eprintln!("forfall: {message}");
        return ExitCode::from(1);
    }
    ExitCode::from(u8::try_from(out.exit_code).unwrap_or(1))
}

fn claim(args: &ClaimArgs) -> Result<(), Failure> {
    use forfall::rules::claim::{self, ClaimRequest};
    let bad = |e: String| Failure::BadInput(e);
    let date = |flag: &str, text: &str| {
        text.parse::<chrono::NaiveDate>()
            .map_err(|_| bad(format!("{flag} {text:?}: expected a date as YYYY-MM-DD")))
    };
    let amount = rust_decimal::Decimal::from_str_exact(args.amount.trim()).map_err(|_| {
        bad(format!(
            "--amount {:?}: expected a decimal such as 10000.00",
            args.amount
        ))
    })?;
    let mut request = ClaimRequest::new(
        claim::parse_country(&args.country).map_err(|e| bad(e.to_string()))?,
        amount,
        args.currency.as_str(),
        date("--due", &args.due)?,
        date("--paid", &args.paid)?,
        claim::parse_debtor(&args.debtor).map_err(|e| bad(e.to_string()))?,
    );
    request.options.fees.se_reminder_fee_agreed = args.reminder_fee_agreed;
    let claim = claim::calculate(&request).map_err(|e| bad(e.to_string()))?;
    if args.json {
        let json = serde_json::to_string_pretty(&claim)
            .map_err(|e| Failure::Failed(format!("cannot write JSON: {e}")))?;
        emit(&format!("{json}\n"))
    } else {
        emit(&claim.to_text())
    }
}

/// Writes to stdout; a reader that went away (`| head`) ends the output quietly, never a panic.
fn emit(text: &str) -> Result<(), Failure> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(Failure::Failed(format!("cannot write to stdout: {e}")))
        }
        _ => Ok(()),
    }
}

async fn migrate(config: &Config) -> Result<(), Failure> {
    let store = store::open(&config.store_options()).await?;
    store.migrate().await?;
    let status = store.schema_status().await?;
    store.close().await;
    emit(&format!(
        "{}: schema is current (version {})\n",
        store::redact_url(&config.database_url),
        status.applied.last().copied().unwrap_or(0)
    ))
}

async fn serve(config: &Config) -> Result<(), Failure> {
    if config.encryption_key.is_none() {
        return Err(Failure::BadInput(format!(
            "configuration: encryption_key: FORFALL_ENCRYPTION_KEY is not set; `serve` needs it to \
             seal connection credentials. Make one with: head -c 32 /dev/urandom | base64   \
             (for example: {})",
            forfall::secrets::EncryptionKey::generate_base64()
        )));
    }
    let clock = cli_admin::clock(config)?;
    let store = store::open(&config.store_options()).await?;
    // The workers' settings (agency, SMTP) are checked before anything is migrated or served.
    let owner = forfall::server::instance_id();
    let ingest = cli_admin::ingest(config, store.clone())?;
    let workers = cli_admin::workers(config, store.clone(), ingest.clone(), owner.clone())?;
    store.migrate().await?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| Failure::Failed(format!("cannot listen on {}: {e}", config.listen)))?;
    tracing::info!(
        listen = %config.listen,
        database = %store::redact_url(&config.database_url),
        "forfall is serving"
    );
    let background = forfall::server::Background {
        workers: Some(workers),
        agency_secret: config.agency.secret.clone(),
        api_rate: config.api_rate,
        ingest: Some(ingest),
        poll: config
            .poll_interval
            .map(|interval| forfall::sync::PollSettings {
                interval,
                full_sync_at: config.full_sync_at,
                owner: owner.clone(),
            }),
    };
    let served = forfall::server::serve(
        listener,
        store.clone(),
        clock,
        owner,
        Duration::from_secs(config.shutdown_grace_seconds),
        forfall::server::shutdown_signal(),
        background,
    )
    .await;
    store.close().await;
    served.map_err(|e| Failure::Failed(e.to_string()))
}
