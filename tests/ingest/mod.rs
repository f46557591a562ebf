//! The ingest tests' world: a store, a fake platform, a creditor with one connection, the ingest
//! service, and (when asked) the gateway serving webhooks on a random port.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use chrono::{NaiveDate, TimeZone, Utc};
use forfall::api::metrics::Metrics;
use forfall::clock::{Clock, ManualClock};
use forfall::domain::{ConnectionId, Country, CreditorId, Language, NewCreditor};
use forfall::secrets::EncryptionKey;
use forfall::store::Store;
use forfall::sync::Ingest;
use forfall::sync::connections::{ConnectionSecrets, Connectors};
use forfall_connector::client::HttpSettings;
use forfall_tripletex::fake::{FakeConfig, FakeTripletex};

pub const TODAY: &str = "2026-11-23";
pub const WEBHOOK_SECRET: &str = "tripletex-shared-secret-for-tests";

pub fn today() -> NaiveDate {
    TODAY.parse().expect("date")
}

/// Quick retries so that fault tests finish in seconds.
pub fn http() -> HttpSettings {
    HttpSettings {
        timeout: Duration::from_millis(1500),
        max_attempts: 5,
        min_delay: Duration::from_millis(20),
        max_delay: Duration::from_secs(3),
        requests_per_second: std::num::NonZeroU32::new(1000).expect("nonzero"),
        ..HttpSettings::default()
    }
}

pub struct World {
    pub store: Arc<dyn Store>,
    pub clock: Arc<ManualClock>,
    pub ingest: Arc<Ingest>,
    pub creditor: CreditorId,
    pub connection: ConnectionId,
    pub key: EncryptionKey,
}

/// A Norwegian creditor with default policy, and a clock at 10:00 Oslo time on [`TODAY`].
pub async fn world_with(
    store: Arc<dyn Store>,
    platform: &str,
    settings: serde_json::Value,
    webhook_secret: &str,
) -> World {
    let clock = Arc::new(ManualClock::new(
        Utc.from_utc_datetime(&today().and_hms_opt(9, 0, 0).expect("time")),
    ));
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
            clock.now(),
        )
        .await
        .expect("creditor");
    let key = EncryptionKey::from_base64(&EncryptionKey::generate_base64()).expect("key");
    let secrets = ConnectionSecrets {
        settings,
        webhook_secret: Some(webhook_secret.into()),
    };
    let id = secrets
        .create_connection(store.as_ref(), &key, &creditor.id, platform, clock.now())
        .await
        .expect("connection")
        .id;
    let ingest = Arc::new(Ingest::new(
        store.clone(),
        clock.clone(),
        Connectors::new(Some(key.clone()), http()),
        Arc::new(Metrics::default()),
    ));
    World {
        store,
        clock,
        ingest,
        creditor: creditor.id,
        connection: id,
        key,
    }
}

/// The Tripletex fake with `invoices` seeded, and a world connected to it.
pub async fn tripletex(
    store: Arc<dyn Store>,
    invoices: usize,
    extra: serde_json::Value,
) -> (World, FakeTripletex) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let config = FakeConfig {
        seed: 7,
        invoices,
        today: today(),
        ..FakeConfig::default()
    };
    let mut settings = serde_json::json!({
        "base_url": "",
        "consumer_token": config.consumer_token,
        "employee_token": config.employee_token,
    });
    let fake = FakeTripletex::start(listener, config).await.expect("fake");
    settings["base_url"] = fake.base_url().into();
    if let (Some(settings), Some(extra)) = (settings.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            settings.insert(k.clone(), v.clone());
        }
    }
    let world = world_with(store, "tripletex", settings, WEBHOOK_SECRET).await;
    (world, fake)
}

/// The gateway serving `/hooks/…` (and everything else) for `world` on a random port.
pub struct Gateway {
    pub base: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    done: Option<tokio::task::JoinHandle<()>>,
}

impl Gateway {
    pub async fn start(world: &World) -> Gateway {
        Gateway::start_with(world, None).await
    }

    /// The gateway accepting the agency's events signed with `agency_secret`.
    pub async fn start_with(
        world: &World,
        agency_secret: Option<forfall_connector::standard_webhooks::Secret>,
    ) -> Gateway {
        Gateway::serve(
            world.store.clone(),
            world.clock.clone(),
            world.ingest.clone(),
            agency_secret,
        )
        .await
    }

    /// `forfall serve` on a random port with this store, clock and ingest (no poller, no
    /// workers).
    pub async fn serve(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        ingest: Arc<Ingest>,
        agency_secret: Option<forfall_connector::standard_webhooks::Secret>,
    ) -> Gateway {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let done = tokio::spawn(async move {
            forfall::server::serve(
                listener,
                store,
                clock,
                "test-instance".into(),
                Duration::from_secs(5),
                async {
                    let _ = stopped.await;
                },
                forfall::server::Background {
                    ingest: Some(ingest),
                    poll: None,
                    workers: None,
                    agency_secret,
                    ..Default::default()
                },
            )
            .await
            .expect("serve");
        });
        Gateway {
            base,
            stop: Some(stop),
            done: Some(done),
        }
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(done) = self.done.take() {
            let _ = done.await;
        }
    }
}

/// Tripletex's invoices read straight from the fake's `/v2` API with a session of its own: an
/// independent view of what is open, not the connector's.
pub async fn fake_invoices(fake: &FakeTripletex) -> Vec<serde_json::Value> {
    let http = reqwest::Client::new();
    let config = FakeConfig::default();
    let session: serde_json::Value = http
        .put(format!(
            "{}/token/session/:create?consumerToken={}&employeeToken={}&expirationDate=2999-01-01",
            fake.base_url(),
            config.consumer_token,
            config.employee_token
        ))
        .send()
        .await
        .expect("session")
        .json()
        .await
        .expect("session json");
    let token = session["value"]["token"]
        .as_str()
        .expect("token")
        .to_owned();
    let list: serde_json::Value = http
        .get(format!("{}/invoice", fake.base_url()))
        .basic_auth("0", Some(token))
        .query(&[
            ("invoiceDateFrom", "1990-01-01"),
            ("invoiceDateTo", "2999-01-01"),
            ("count", "10000"),
            (
                "fields",
                "id,amountCurrency,amountCurrencyOutstanding,currency(code),isCreditNote,isCredited,customer(id,name,isPrivateIndividual,organizationNumber)",
            ),
        ])
        .send()
        .await
        .expect("invoices")
        .json()
        .await
        .expect("invoices json");
    list["values"].as_array().cloned().unwrap_or_default()
}

pub fn is_open(invoice: &serde_json::Value) -> bool {
    let outstanding = invoice["amountCurrencyOutstanding"].as_f64().unwrap_or(0.0);
    outstanding > 0.0
        && invoice["isCreditNote"] != serde_json::json!(true)
        && invoice["isCredited"] != serde_json::json!(true)
}

/// A decimal from a JSON number, through its text (the test's own reading, not the connector's).
pub fn decimal(value: &serde_json::Value) -> rust_decimal::Decimal {
    value
        .to_string()
        .parse::<rust_decimal::Decimal>()
        .expect("amount")
        .round_dp(2)
}
