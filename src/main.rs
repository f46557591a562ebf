//! The `forfall` command line. Exit codes: 0 ok, 1 failure, 2 bad input or configuration.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use forfall::clock::SystemClock;
use forfall::config::{Config, LogFormat};
use forfall::store::{self, StoreError};

#[derive(Parser)]
#[command(
    name = "forfall",
    version,
    about = "An open gateway between accounting platforms and debt collection"
)]
struct Cli {
    /// A TOML configuration file (environment variables FORFALL_* override it).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Write logs as JSON lines instead of human-readable text.
    #[arg(long, global = true)]
    log_json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway: HTTP server (health, metrics) on the configured address. Applies pending
    /// migrations first. Needs FORFALL_ENCRYPTION_KEY.
    Serve,
    /// Bring the database schema up to date (harmless when it already is).
    Migrate,
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
        if e.is_bad_input() {
            Failure::BadInput(e.to_string())
        } else {
            Failure::Failed(e.to_string())
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(cli.config.as_deref(), std::env::vars()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("forfall: {e}");
            return ExitCode::from(2);
        }
    };
    init_logs(&config, cli.log_json);
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
    let outcome = runtime.block_on(async {
        match cli.command {
            Command::Serve => serve(&config).await,
            Command::Migrate => migrate(&config).await,
        }
    });
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

async fn migrate(config: &Config) -> Result<(), Failure> {
    let store = store::open(&config.store_options()).await?;
    store.migrate().await?;
    let status = store.schema_status().await?;
    println!(
        "{}: schema is current (version {})",
        store::redact_url(&config.database_url),
        status.applied.last().copied().unwrap_or(0)
    );
    store.close().await;
    Ok(())
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
    let store = store::open(&config.store_options()).await?;
    store.migrate().await?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| Failure::Failed(format!("cannot listen on {}: {e}", config.listen)))?;
    tracing::info!(
        listen = %config.listen,
        database = %store::redact_url(&config.database_url),
        "forfall is serving"
    );
    let served = forfall::server::serve(
        listener,
        store.clone(),
        Arc::new(SystemClock),
        forfall::server::instance_id(),
        Duration::from_secs(config.shutdown_grace_seconds),
        forfall::server::shutdown_signal(),
    )
    .await;
    store.close().await;
    served.map_err(|e| Failure::Failed(e.to_string()))
}
