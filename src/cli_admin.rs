//! The administrative commands: creditors, connections, and a sync from the command line.

use std::sync::Arc;
use std::time::Instant;

use forfall::clock::{Clock, FileClock, SystemClock};
use forfall::config::Config;
use forfall::domain::{
    ApiKeyId, ConnectionId, Country, CreditorId, Language, NewCreditor, Owner, PartnerId, Scopes,
};
use forfall::store::{self, Store};
use forfall::sync::connections::{ConnectionSecrets, Connectors, PLATFORMS};
use forfall::sync::{Ingest, SyncError};
use forfall_connector::client::HttpSettings;

use crate::{
    ConnectionsCommand, CreditorsCommand, Failure, JobsCommand, KeysCommand, PartnersCommand, emit,
};

/// The clock this configuration sets: the system's, or the `clock_file`'s (testing and demos),
/// which must be readable at start-up.
pub fn clock(config: &Config) -> Result<Arc<dyn Clock>, Failure> {
    match &config.clock_file {
        None => Ok(Arc::new(SystemClock)),
        Some(path) => {
            let clock = FileClock::open(path)
                .map_err(|e| Failure::BadInput(format!("configuration: clock_file: {e}")))?;
            tracing::warn!(path = %path.display(), now = %clock.now(), "the time comes from a clock file (testing and demos only)");
            Ok(Arc::new(clock))
        }
    }
}

/// The ingest service for this configuration.
pub fn ingest(config: &Config, store: Arc<dyn Store>) -> Result<Arc<Ingest>, Failure> {
    let http = HttpSettings {
        timeout: config.platform_timeout,
        ..HttpSettings::default()
    };
    Ok(Arc::new(Ingest::new(
        store,
        clock(config)?,
        Connectors::new(config.encryption_key.clone(), http),
        Arc::new(forfall::api::metrics::Metrics::default()),
    )))
}

/// The job workers as the configuration sets them up.
pub fn workers(
    config: &Config,
    store: Arc<dyn Store>,
    ingest: Arc<Ingest>,
    owner: String,
) -> Result<forfall::jobs::workers::Workers, Failure> {
    use forfall::config::AgencyMode;
    use forfall::pipeline::forward::Sink;
    let sink = match (
        config.agency.mode,
        &config.agency.url,
        &config.agency.secret,
    ) {
        (AgencyMode::Push, Some(url), Some(secret)) => Some(Sink::Push(
            forfall::pipeline::PushClient::new(forfall::pipeline::PushSettings {
                url: url.clone(),
                secret: secret.clone(),
                timeout: config.agency.timeout,
            })
            .map_err(|e| Failure::BadInput(format!("configuration: agency_url: {e}")))?,
        )),
        (AgencyMode::Pull, _, _) => Some(Sink::Pull),
        _ => None,
    };
    let mailer = config
        .smtp_url
        .as_ref()
        .map(|url| {
            forfall::notify::Mailer::new(&forfall::notify::SmtpSettings {
                url: url.clone(),
                from: config.mail_from.clone(),
                timeout: std::time::Duration::from_secs(30),
            })
            .map_err(|e| Failure::BadInput(format!("configuration: smtp_url / mail_from: {e}")))
        })
        .transpose()?;
    Ok(forfall::jobs::workers::workers(
        store,
        ingest.clock.clone(),
        ingest,
        owner,
        forfall::jobs::workers::WorkerSettings {
            sink,
            agency_in_flight: config.agency.in_flight,
            mailer,
            opt_out_hint: Some(forfall::notify::API_OPT_OUT_HINT.to_owned()),
            runner: forfall::jobs::RunnerSettings {
                retry: config.retry,
                ..forfall::jobs::RunnerSettings::default()
            },
            day_tick_at: config.day_tick_at,
            // A clock file moves in jumps that the tick must notice at once.
            tick_every: if config.clock_file.is_some() {
                std::time::Duration::from_millis(200)
            } else {
                std::time::Duration::from_secs(30)
            },
        },
    ))
}

fn read_json(path: &std::path::Path) -> Result<serde_json::Value, Failure> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::BadInput(format!("{}: {e}", path.display())))?;
    serde_json::from_str(&text)
        .map_err(|e| Failure::BadInput(format!("{}: not JSON: {e}", path.display())))
}

async fn open_store(config: &Config) -> Result<Arc<dyn Store>, Failure> {
    let store = store::open(&config.store_options()).await?;
    store.migrate().await?;
    Ok(store)
}

pub async fn creditors(config: &Config, command: CreditorsCommand) -> Result<(), Failure> {
    match command {
        CreditorsCommand::Add {
            name,
            org,
            country,
            time_zone,
            language,
            policy,
            email,
            partner,
        } => {
            // The same limits as `POST /v1/creditors`.
            for (flag, value, max) in [("--name", &name, 200), ("--org", &org, 40)] {
                if value.trim().is_empty() {
                    return Err(Failure::BadInput(format!("{flag}: must not be empty")));
                }
                if value.chars().count() > max {
                    return Err(Failure::BadInput(format!(
                        "{flag}: must be at most {max} characters"
                    )));
                }
            }
            if let Some(email) = &email
                && !looks_like_email(email)
            {
                return Err(Failure::BadInput(format!(
                    "--email {email:?}: not an e-mail address"
                )));
            }
            let country: Country = country
                .parse()
                .map_err(|_| Failure::BadInput(format!("--country {country:?}: NO, SE or FI")))?;
            let time_zone = time_zone
                .map(|tz| {
                    tz.parse().map_err(|_| {
                        Failure::BadInput(format!("--time-zone {tz:?}: not an IANA zone"))
                    })
                })
                .transpose()?;
            let language = Language::parse(&language)
                .ok_or_else(|| Failure::BadInput(format!("--language {language:?}: nb or en")))?;
            let policy = match policy {
                Some(path) => {
                    let value = read_json(&path)?;
                    forfall::rules::policy::Policy::from_json(&value)
                        .map_err(|e| Failure::BadInput(format!("{}: {e}", path.display())))?;
                    value
                }
                None => serde_json::json!({}),
            };
            let store = open_store(config).await?;
            let partner_id = match partner {
                Some(id) => Some(
                    store
                        .partner(&PartnerId::from(id.as_str()))
                        .await?
                        .ok_or_else(|| {
                            Failure::BadInput(format!("--partner {id:?}: no such partner"))
                        })?
                        .id,
                ),
                None => None,
            };
            let creditor = store
                .create_creditor(
                    &NewCreditor {
                        name: name.trim().to_owned(),
                        organisation_number: org.trim().to_owned(),
                        country,
                        time_zone,
                        language,
                        policy,
                        email,
                        partner_id,
                    },
                    chrono::Utc::now(),
                )
                .await?;
            store.close().await;
            emit(&format!("{}\n", creditor.id))
        }
    }
}

pub async fn connections(config: &Config, command: ConnectionsCommand) -> Result<(), Failure> {
    match command {
        ConnectionsCommand::Add {
            creditor,
            platform,
            settings,
            webhook_secret,
        } => {
            let key = config.encryption_key.as_ref().ok_or_else(|| {
                Failure::BadInput("FORFALL_ENCRYPTION_KEY is not set: it seals the settings".into())
            })?;
            if !PLATFORMS.contains(&platform.as_str()) {
                return Err(Failure::BadInput(format!(
                    "--platform {platform:?}: one of {}",
                    PLATFORMS.join(", ")
                )));
            }
            let value = read_json(&settings)?;
            // The settings must make a connector before they are stored.
            forfall::sync::connections::connector_for(&platform, &value, HttpSettings::default())
                .map_err(|e| Failure::BadInput(format!("{}: {e}", settings.display())))?;
            if let Some(secret) = &webhook_secret {
                if secret.trim().is_empty() {
                    return Err(Failure::BadInput(
                        "--webhook-secret: must not be empty (leave it out to have one made)"
                            .into(),
                    ));
                }
                if platform == "generic"
                    && forfall_connector::standard_webhooks::Secret::parse(secret).is_err()
                {
                    return Err(Failure::BadInput(
                        "--webhook-secret: the generic connector takes a Standard Webhooks secret, `whsec_` and base64".into(),
                    ));
                }
            }
            let secret = webhook_secret.unwrap_or_else(|| match platform.as_str() {
                "generic" => forfall_connector::standard_webhooks::Secret::generate().to_string(),
                _ => random_secret(),
            });
            let secrets = ConnectionSecrets {
                settings: value,
                webhook_secret: Some(secret.clone()),
            };
            let store = open_store(config).await?;
            let connection = secrets
                .create_connection(
                    store.as_ref(),
                    key,
                    &CreditorId::from(creditor.as_str()),
                    &platform,
                    chrono::Utc::now(),
                )
                .await?;
            store.close().await;
            emit(&format!(
                "{}\nwebhooks: POST /hooks/{}\nwebhook secret: {secret}\n",
                connection.id, connection.id
            ))
        }
        ConnectionsCommand::Subscribe {
            connection,
            public_url,
        } => {
            let store = open_store(config).await?;
            let ingest = ingest(config, store.clone())?;
            let connection = ingest
                .connection(&ConnectionId::from(connection.as_str()))
                .await
                .map_err(sync_failure)?;
            let opened = ingest.connectors.open(&connection).map_err(sync_failure)?;
            let target = format!(
                "{}/hooks/{}",
                public_url.trim_end_matches('/'),
                connection.id
            );
            let outcome = opened
                .connector
                .subscribe_webhooks(&target, &opened.webhook_secret)
                .await;
            store.close().await;
            outcome.map_err(|e| Failure::Failed(e.to_string()))?;
            emit(&format!("subscribed: {target}\n"))
        }
        ConnectionsCommand::List => {
            let store = open_store(config).await?;
            let all = store.all_connections().await?;
            store.close().await;
            let mut out = String::new();
            for c in all {
                out.push_str(&format!(
                    "{}\t{}\t{}\t{}\tlast sync {}\t{}\n",
                    c.id,
                    c.creditor_id,
                    c.platform,
                    c.status.as_str(),
                    c.last_synced_at
                        .map_or_else(|| "never".into(), |t| t.to_rfc3339()),
                    c.last_error.unwrap_or_default()
                ));
            }
            emit(&out)
        }
    }
}

/// 32 random bytes as URL-safe base64: a shared secret a platform can store as text.
fn random_secret() -> String {
    use base64::Engine;
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn sync_failure(e: SyncError) -> Failure {
    match e {
        SyncError::UnknownConnection(_) | SyncError::NoKey | SyncError::Secrets(_) => {
            Failure::BadInput(e.to_string())
        }
        other => Failure::Failed(other.to_string()),
    }
}

pub async fn sync(config: &Config, connection: &str, full: bool) -> Result<(), Failure> {
    let store = open_store(config).await?;
    let ingest = ingest(config, store.clone())?;
    let id = ConnectionId::from(connection);
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {elapsed} {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    let started = Instant::now();
    let outcome = ingest
        .run_pass(&id, full, None, &|stats| {
            bar.set_message(format!(
                "{} pages, {} invoices ({} new, {} changed)",
                stats.pages, stats.invoices, stats.created, stats.changed
            ));
        })
        .await;
    bar.finish_and_clear();
    let result = match outcome {
        Ok(stats) => {
            if let Err(e) = ingest.record_success(&id).await {
                tracing::warn!(error = %e, "cannot mark the connection healthy");
            }
            emit(&format!(
                "{connection}: {} pages, {} invoices listed, {} new, {} changed, {} re-read, {} decisions in {:.1} s\n",
                stats.pages,
                stats.invoices,
                stats.created,
                stats.changed,
                stats.reread,
                stats.decisions,
                started.elapsed().as_secs_f64()
            ))
        }
        Err(e) => {
            ingest.record_failure(&id, &e).await;
            Err(sync_failure(e))
        }
    };
    store.close().await;
    result
}

/// `local@domain.tld`, roughly: enough to catch a slip, not a full RFC 5322 parser.
fn looks_like_email(text: &str) -> bool {
    match text.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !text.chars().any(char::is_whitespace)
        }
        None => false,
    }
}

pub async fn jobs(config: &Config, command: JobsCommand) -> Result<(), Failure> {
    use forfall::domain::{JobId, JobState};
    let store = open_store(config).await?;
    let line = |job: &forfall::domain::Job| {
        format!(
            "{}  {:<9}  {:<8}  attempts {:<2}  {}  {}\n",
            job.id,
            job.state.as_str(),
            job.kind,
            job.attempts,
            job.idempotency_key,
            job.last_error.as_deref().unwrap_or("")
        )
    };
    let result = match command {
        JobsCommand::List { state, limit } => {
            let state = state
                .map(|s| {
                    JobState::parse(&s).ok_or_else(|| {
                        Failure::BadInput(format!(
                            "--state {s:?}: pending, running, succeeded or dead"
                        ))
                    })
                })
                .transpose()?;
            let jobs = store.list_jobs(state, limit).await?;
            emit(&jobs.iter().map(line).collect::<String>())
        }
        JobsCommand::Dead { limit } => {
            let jobs = store.list_jobs(Some(JobState::Dead), limit).await?;
            if jobs.is_empty() {
                emit("no dead letters\n")
            } else {
                emit(&jobs.iter().map(line).collect::<String>())
            }
        }
        JobsCommand::Show { id } => {
            let id = JobId::from(id.as_str());
            let Some(job) = store.job(&id).await? else {
                return Err(Failure::BadInput(format!("no job {id}")));
            };
            let attempts = store.job_attempts(&id).await?;
            let mut out = line(&job);
            out.push_str(&format!(
                "creditor {}\nchain {}\nrun after {}\npayload {}\n",
                job.creditor_id,
                job.chain.as_deref().unwrap_or("(none)"),
                job.run_after.to_rfc3339(),
                job.payload
            ));
            for attempt in attempts {
                out.push_str(&format!(
                    "attempt {}  {}  {}  {}\n",
                    attempt.attempt,
                    attempt.finished_at.to_rfc3339(),
                    attempt.outcome,
                    attempt.error.as_deref().unwrap_or("")
                ));
            }
            emit(&out)
        }
        JobsCommand::Retry { id } => {
            let id = JobId::from(id.as_str());
            if store.retry_job(&id, chrono::Utc::now()).await? {
                emit(&format!("{id} is back in the queue\n"))
            } else {
                Err(Failure::BadInput(format!(
                    "no dead or waiting job {id} (a running or finished job is not retried)"
                )))
            }
        }
    };
    store.close().await;
    result
}

pub async fn partners(config: &Config, command: PartnersCommand) -> Result<(), Failure> {
    match command {
        PartnersCommand::Add { name } => {
            if name.trim().is_empty() {
                return Err(Failure::BadInput("--name: must not be empty".into()));
            }
            let store = open_store(config).await?;
            let partner = store
                .create_partner(name.trim(), chrono::Utc::now())
                .await?;
            store.close().await;
            emit(&format!("{}\n", partner.id))
        }
    }
}

pub async fn keys(config: &Config, command: KeysCommand) -> Result<(), Failure> {
    match command {
        KeysCommand::Create {
            partner,
            creditor,
            scopes,
            label,
        } => {
            let scopes =
                Scopes::parse(&scopes).map_err(|e| Failure::BadInput(format!("--scopes: {e}")))?;
            let owner = match (partner, creditor) {
                (Some(partner), None) => Owner::Partner(PartnerId::from(partner.as_str())),
                (None, Some(creditor)) => Owner::Creditor(CreditorId::from(creditor.as_str())),
                _ => {
                    return Err(Failure::BadInput(
                        "give exactly one of --partner and --creditor".into(),
                    ));
                }
            };
            let store = open_store(config).await?;
            let (token, hash) = forfall::api::auth::new_token();
            let key = store
                .create_api_key(&owner, scopes, label.as_deref(), &hash, chrono::Utc::now())
                .await?;
            store.close().await;
            emit(&format!(
                "{}\t{token}\n# the token is shown only now: keep it (Forfall stores only its hash)\n",
                key.id
            ))
        }
        KeysCommand::List => {
            let store = open_store(config).await?;
            let keys = store.api_keys().await?;
            store.close().await;
            let mut out = String::new();
            for key in keys {
                out.push_str(&format!(
                    "{}\t{}\t{}\t{}\t{}\t{}\n",
                    key.id,
                    key.owner,
                    key.scopes.as_text(),
                    key.created_at.format("%Y-%m-%d %H:%M"),
                    key.revoked_at.map_or("live".to_owned(), |at| format!(
                        "revoked {}",
                        at.format("%Y-%m-%d %H:%M")
                    )),
                    key.label.unwrap_or_default(),
                ));
            }
            emit(&out)
        }
        KeysCommand::Revoke { id } => {
            let store = open_store(config).await?;
            let revoked = store
                .revoke_api_key(&ApiKeyId::from(id.as_str()), chrono::Utc::now())
                .await?;
            store.close().await;
            if revoked {
                emit(&format!("{id} revoked\n"))
            } else {
                Err(Failure::BadInput(format!(
                    "{id}: no live key by that id (unknown or already revoked)"
                )))
            }
        }
    }
}
