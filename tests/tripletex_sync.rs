//! Ingest from Tripletex end to end: the real connector against the Tripletex fake over loopback,
//! into each backend, with the faults a platform throws (429 storms, 5xx, timeouts, malformed
//! bodies, an expired session, a pass cut short) and webhooks.

mod common;
mod ingest;

use forfall::clock::Clock;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use forfall::domain::{ConnectionStatus, CustomerKind, JobState};
use forfall::store::Store;
use forfall_tripletex::fake::Fault;
use rust_decimal::Decimal;
use serde_json::json;

use ingest::{Gateway, decimal, fake_invoices, is_open, today, tripletex};

on_both_backends!(
    a_sync_leaves_exactly_the_fakes_open_invoices_with_their_amounts_and_customers,
    a_second_pass_over_unchanged_data_writes_nothing_and_skips_unchanged_windows,
    a_payment_in_tripletex_reaches_the_store_by_webhook_within_a_second,
    with_webhooks_off_a_payment_reaches_the_store_at_the_next_poll,
    a_429_storm_is_waited_out_honouring_retry_after,
    server_errors_and_timeouts_are_retried_until_the_sync_completes,
    malformed_bodies_end_in_a_failing_connection_and_a_dead_letter_with_the_excerpt_that_a_retry_runs_again,
    a_session_expired_mid_sync_is_renewed_once_and_no_page_is_lost,
    a_pass_cut_short_resumes_from_its_cursor_without_duplicate_events,
    a_full_pass_rereads_an_open_invoice_it_no_longer_lists,
);

async fn pass(world: &ingest::World, full: bool) -> Result<forfall::sync::PassStats, String> {
    world
        .ingest
        .run_pass(&world.connection, full, None, &|_| {})
        .await
        .map_err(|e| e.to_string())
}

/// Every fake invoice: open ones are in the store with the fake's amounts and customer, the others
/// are not.
async fn assert_store_mirrors_the_fakes_open_invoices(
    world: &ingest::World,
    fake: &forfall_tripletex::fake::FakeTripletex,
) {
    let invoices = fake_invoices(fake).await;
    assert!(!invoices.is_empty());
    let mut open = 0;
    for invoice in &invoices {
        let id = invoice["id"].to_string();
        let stored = world
            .store
            .invoice_by_platform_id(&world.creditor, &world.connection, &id)
            .await
            .unwrap();
        if !is_open(invoice) {
            assert!(
                stored.is_none(),
                "invoice {id} is not open in the fake but was stored"
            );
            continue;
        }
        open += 1;
        let stored = stored.unwrap_or_else(|| panic!("open invoice {id} missing from the store"));
        assert_eq!(
            stored.facts.amount,
            decimal(&invoice["amountCurrency"]),
            "{id}"
        );
        assert_eq!(
            stored.facts.outstanding,
            decimal(&invoice["amountCurrencyOutstanding"]),
            "{id}"
        );
        assert_eq!(
            stored.facts.currency.code(),
            invoice["currency"]["code"].as_str().unwrap(),
            "{id}"
        );
        let customer = world
            .store
            .customer(
                &world.creditor,
                stored.customer_id.as_ref().expect("linked"),
            )
            .await
            .unwrap()
            .expect("customer");
        assert_eq!(
            customer.facts.name,
            invoice["customer"]["name"].as_str().unwrap()
        );
        let consumer = invoice["customer"]["isPrivateIndividual"] == json!(true);
        assert_eq!(
            customer.facts.kind,
            if consumer {
                CustomerKind::Consumer
            } else {
                CustomerKind::Business
            }
        );
    }
    let refs = world
        .store
        .open_invoice_refs(&world.creditor, &world.connection, None)
        .await
        .unwrap();
    assert!(open > 20, "the seed has open invoices ({open})");
    assert!(refs.len() <= open);
}

async fn a_sync_leaves_exactly_the_fakes_open_invoices_with_their_amounts_and_customers(
    store: Arc<dyn Store>,
) {
    let (world, fake) = tripletex(store, 200, json!({})).await;
    let stats = pass(&world, true).await.unwrap();
    assert!(stats.created > 20);
    assert_store_mirrors_the_fakes_open_invoices(&world, &fake).await;
    // The connector asked for its fields explicitly, always with both dates.
    let requests = fake.requests();
    let listings: Vec<_> = requests
        .iter()
        .filter(|r| r.path == "/v2/invoice")
        .collect();
    assert!(!listings.is_empty());
    for r in listings {
        assert!(r.query.contains("invoiceDateFrom=") && r.query.contains("invoiceDateTo="));
        assert!(r.query.contains("fields="));
    }
    let connection = world.ingest.connection(&world.connection).await.unwrap();
    assert!(!connection.sync.in_pass);
    assert!(connection.last_synced_at.is_some());
    assert!(connection.sync.last_full_sync_at.is_some());
    fake.shutdown().await;
}

async fn a_second_pass_over_unchanged_data_writes_nothing_and_skips_unchanged_windows(
    store: Arc<dyn Store>,
) {
    let (world, fake) = tripletex(store, 200, json!({"page_size": 10})).await;
    pass(&world, true).await.unwrap();
    let before = fake.requests().len();
    let second = pass(&world, false).await.unwrap();
    assert_eq!((second.created, second.changed), (0, 0));
    let listings_second = fake.requests()[before..]
        .iter()
        .filter(|r| r.path == "/v2/invoice")
        .count();
    let listings_first = fake.requests()[..before]
        .iter()
        .filter(|r| r.path == "/v2/invoice")
        .count();
    assert!(
        listings_second < listings_first,
        "unchanged windows are skipped after their first page ({listings_second} vs {listings_first})"
    );
    fake.shutdown().await;
}

/// An open invoice of the fake, as (id, outstanding).
async fn an_open_invoice(fake: &forfall_tripletex::fake::FakeTripletex) -> (i64, Decimal) {
    let invoices = fake_invoices(fake).await;
    let invoice = invoices
        .iter()
        .find(|i| is_open(i) && i["currency"]["code"] == json!("NOK"))
        .expect("an open NOK invoice");
    (
        invoice["id"].as_i64().unwrap(),
        decimal(&invoice["amountCurrencyOutstanding"]),
    )
}

async fn outstanding(world: &ingest::World, id: i64) -> Decimal {
    world
        .store
        .invoice_by_platform_id(&world.creditor, &world.connection, &id.to_string())
        .await
        .unwrap()
        .expect("stored")
        .facts
        .outstanding
}

async fn a_payment_in_tripletex_reaches_the_store_by_webhook_within_a_second(
    store: Arc<dyn Store>,
) {
    let (world, fake) = tripletex(store, 60, json!({})).await;
    pass(&world, true).await.unwrap();
    let gateway = Gateway::start(&world).await;
    let connection = world.ingest.connection(&world.connection).await.unwrap();
    let opened = world.ingest.connectors.open(&connection).unwrap();
    let target = format!("{}/hooks/{}", gateway.base, world.connection);
    opened
        .connector
        .subscribe_webhooks(&target, ingest::WEBHOOK_SECRET.as_bytes())
        .await
        .unwrap();
    let (id, owed) = an_open_invoice(&fake).await;
    let paid_at = Instant::now();
    fake.pay(id, owed, today()).unwrap();
    loop {
        if outstanding(&world, id).await.is_zero() {
            break;
        }
        assert!(
            paid_at.elapsed() < Duration::from_secs(1),
            "the payment did not arrive by webhook within a second; deliveries: {:?}",
            fake.deliveries()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let events = world
        .store
        .invoice_events(
            &world.creditor,
            &world
                .store
                .invoice_by_platform_id(&world.creditor, &world.connection, &id.to_string())
                .await
                .unwrap()
                .unwrap()
                .id,
        )
        .await
        .unwrap();
    assert_eq!(events.last().unwrap().source.as_str(), "webhook");
    // Every delivery the fake made was accepted (signature verified).
    assert!(fake.deliveries().iter().all(|d| d.status == Some(202)));
    gateway.stop().await;
    fake.shutdown().await;
}

async fn with_webhooks_off_a_payment_reaches_the_store_at_the_next_poll(store: Arc<dyn Store>) {
    let (world, fake) = tripletex(store, 60, json!({})).await;
    pass(&world, true).await.unwrap();
    fake.set_webhooks_enabled(false);
    let (id, owed) = an_open_invoice(&fake).await;
    let part = (owed / Decimal::from(2)).round_dp(2);
    fake.pay(id, part, today()).unwrap();
    assert_eq!(outstanding(&world, id).await, owed);
    let stats = pass(&world, false).await.unwrap();
    assert_eq!(stats.changed, 1);
    assert_eq!(outstanding(&world, id).await, owed - part);
    fake.pay(id, owed - part, today()).unwrap();
    pass(&world, false).await.unwrap();
    assert!(outstanding(&world, id).await.is_zero());
    fake.shutdown().await;
}

async fn a_429_storm_is_waited_out_honouring_retry_after(store: Arc<dyn Store>) {
    let (world, fake) = tripletex(store, 40, json!({})).await;
    fake.inject(Fault::Status {
        status: 429,
        retry_after: Some(1),
        times: 2,
        path_prefix: Some("/v2/invoice".into()),
    });
    let started = Instant::now();
    pass(&world, true).await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "waited {:?}",
        started.elapsed()
    );
    let requests = fake.requests();
    let limited: Vec<_> = requests.iter().filter(|r| r.status == 429).collect();
    assert_eq!(limited.len(), 2);
    // The request after each 429 came at least Retry-After later.
    for limited in limited {
        let next = requests
            .iter()
            .find(|r| r.at > limited.at && r.path == limited.path)
            .expect("a retry");
        assert!(next.at - limited.at >= Duration::from_millis(950));
    }
    assert_store_mirrors_the_fakes_open_invoices(&world, &fake).await;
    fake.shutdown().await;
}

async fn server_errors_and_timeouts_are_retried_until_the_sync_completes(store: Arc<dyn Store>) {
    let (world, fake) = tripletex(store, 40, json!({})).await;
    fake.inject(Fault::Status {
        status: 503,
        retry_after: None,
        times: 1,
        path_prefix: Some("/v2/invoice".into()),
    });
    fake.inject(Fault::Status {
        status: 500,
        retry_after: None,
        times: 1,
        path_prefix: Some("/v2/invoice".into()),
    });
    fake.inject(Fault::Slow {
        delay: Duration::from_secs(3),
        times: 1,
    });
    pass(&world, true).await.unwrap();
    assert_store_mirrors_the_fakes_open_invoices(&world, &fake).await;
    fake.shutdown().await;
}

async fn malformed_bodies_end_in_a_failing_connection_and_a_dead_letter_with_the_excerpt_that_a_retry_runs_again(
    store: Arc<dyn Store>,
) {
    let (world, fake) = tripletex(store, 40, json!({})).await;
    fake.inject(Fault::Malformed { times: 50 });
    let error = world
        .ingest
        .run_pass(&world.connection, true, None, &|_| {})
        .await
        .unwrap_err();
    world.ingest.record_failure(&world.connection, &error).await;
    let connection = world.ingest.connection(&world.connection).await.unwrap();
    assert_eq!(connection.status, ConnectionStatus::Failing);
    let message = connection.last_error.expect("the error is shown");
    assert!(message.contains("malformed"), "{message}");
    let jobs = world.store.jobs(&world.creditor).await.unwrap();
    let dead: Vec<_> = jobs.iter().filter(|j| j.state == JobState::Dead).collect();
    assert_eq!(dead.len(), 1);
    assert!(
        dead[0]
            .last_error
            .as_deref()
            .unwrap_or("")
            .contains("the answer began"),
        "{:?}",
        dead[0].last_error
    );
    let attempts = world.store.job_attempts(&dead[0].id).await.unwrap();
    assert_eq!(
        attempts.len(),
        1,
        "the failure is the dead letter's attempt"
    );
    // Once the platform behaves, the dead letter put back in the queue runs the pass again
    // (the `sync` handler), and the connection is healthy again.
    fake.clear_faults();
    let dead_id = dead[0].id.clone();
    assert!(
        world
            .store
            .retry_job(&dead_id, world.clock.now())
            .await
            .unwrap()
    );
    // The same pass failing again meanwhile does not cancel the retry the operator queued.
    world.ingest.record_failure(&world.connection, &error).await;
    let queued = world.store.jobs(&world.creditor).await.unwrap();
    let queued = queued.iter().find(|j| j.id == dead_id).unwrap();
    assert_eq!(queued.state, JobState::Pending);
    let runner = forfall::jobs::Runner {
        store: world.store.clone(),
        clock: world.clock.clone(),
        owner: "test".into(),
        handlers: vec![Arc::new(forfall::sync::retry_pass::RetryPass {
            ingest: world.ingest.clone(),
            owner: "test".into(),
        })],
        settings: forfall::jobs::RunnerSettings::default(),
        metrics: Arc::new(forfall::api::metrics::Metrics::default()),
        wake: Arc::new(tokio::sync::Notify::new()),
    };
    let round = runner.drain().await.unwrap();
    assert_eq!(round.succeeded, 1, "{round:?}");
    let retried = world
        .store
        .jobs(&world.creditor)
        .await
        .unwrap()
        .into_iter()
        .find(|j| j.id == dead_id)
        .unwrap();
    assert_eq!(retried.state, JobState::Succeeded);
    assert_store_mirrors_the_fakes_open_invoices(&world, &fake).await;
    let connection = world.ingest.connection(&world.connection).await.unwrap();
    assert_eq!(connection.status, ConnectionStatus::Active);
    assert_eq!(connection.last_error, None);
    fake.shutdown().await;
}

async fn a_session_expired_mid_sync_is_renewed_once_and_no_page_is_lost(store: Arc<dyn Store>) {
    let (world, fake) = tripletex(store, 120, json!({"page_size": 10})).await;
    let expired = AtomicBool::new(false);
    world
        .ingest
        .run_pass(&world.connection, true, None, &|stats| {
            if stats.pages == 3 && !expired.swap(true, Ordering::SeqCst) {
                fake.expire_sessions();
            }
        })
        .await
        .unwrap();
    assert!(expired.load(Ordering::SeqCst));
    assert_eq!(fake.sessions_created(), 2, "one session, renewed once");
    assert!(fake.requests().iter().any(|r| r.status == 401));
    assert_store_mirrors_the_fakes_open_invoices(&world, &fake).await;
    fake.shutdown().await;
}

async fn a_pass_cut_short_resumes_from_its_cursor_without_duplicate_events(store: Arc<dyn Store>) {
    let (world, fake) = tripletex(store, 120, json!({"page_size": 10})).await;
    let result = world
        .ingest
        .run_pass(&world.connection, true, None, &|stats| {
            if stats.pages == 4 {
                fake.inject(Fault::Status {
                    status: 500,
                    retry_after: None,
                    times: 1000,
                    path_prefix: None,
                });
            }
        })
        .await;
    assert!(result.is_err(), "the pass was cut short");
    let connection = world.ingest.connection(&world.connection).await.unwrap();
    assert!(connection.sync.in_pass);
    let cursor = connection
        .sync_cursor
        .clone()
        .expect("a cursor was committed");
    fake.clear_faults();
    let before = fake.requests().len();
    pass(&world, false).await.unwrap();
    // The resumed pass began where the first stopped, not at the first page.
    let first = fake.requests()[before..]
        .iter()
        .find(|r| r.path == "/v2/invoice")
        .cloned()
        .expect("a listing");
    let position: serde_json::Value = serde_json::from_str(&cursor).unwrap();
    assert!(
        first.query.contains(&format!("from={}", position["from"])),
        "{} vs {cursor}",
        first.query
    );
    assert_store_mirrors_the_fakes_open_invoices(&world, &fake).await;
    // No invoice was created twice.
    let mut created: HashMap<String, usize> = HashMap::new();
    for id in world
        .store
        .open_invoice_refs(&world.creditor, &world.connection, None)
        .await
        .unwrap()
    {
        let invoice = world
            .store
            .invoice_by_platform_id(&world.creditor, &world.connection, &id)
            .await
            .unwrap()
            .unwrap();
        let events = world
            .store
            .invoice_events(&world.creditor, &invoice.id)
            .await
            .unwrap();
        *created.entry(id).or_default() += events.iter().filter(|e| e.kind == "created").count();
    }
    assert!(created.values().all(|n| *n == 1), "{created:?}");
    fake.shutdown().await;
}

async fn a_full_pass_rereads_an_open_invoice_it_no_longer_lists(store: Arc<dyn Store>) {
    let (world, fake) = tripletex(store, 0, json!({"lookback_days": 60})).await;
    let customer = fake.add_customer(forfall_tripletex::fake::NewCustomer {
        name: "Kari Nordmann".into(),
        is_private_individual: true,
        ..Default::default()
    });
    let issued = today() - chrono::Days::new(20);
    let id = fake
        .add_invoice(forfall_tripletex::fake::NewInvoice::new(
            customer,
            issued,
            Decimal::new(125_000, 2),
        ))
        .unwrap();
    fake.set_webhooks_enabled(false);
    pass(&world, true).await.unwrap();
    assert_eq!(outstanding(&world, id).await, Decimal::new(125_000, 2));
    // 100 days on, the invoice is older than the look-back: no window lists it any more.
    let later = today() + chrono::Days::new(100);
    fake.set_today(later);
    world.clock.advance(chrono::Duration::days(100));
    fake.pay(id, Decimal::new(125_000, 2), later).unwrap();
    pass(&world, false).await.unwrap();
    assert_eq!(
        outstanding(&world, id).await,
        Decimal::new(125_000, 2),
        "an incremental pass does not see it"
    );
    let stats = pass(&world, true).await.unwrap();
    assert_eq!(stats.reread, 1);
    assert!(outstanding(&world, id).await.is_zero());
    fake.shutdown().await;
}

/// `forfall bench sync` and `forfall bench webhooks` end to end at a small size, floors
/// included: each prints its gateway figure and its floor for SQLite (and PostgreSQL when set).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ingest_benchmarks_print_the_gateway_and_its_floor() {
    let dir =
        std::env::temp_dir().join(format!("forfall-ingest-bench-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let postgres = std::env::var("FORFALL_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty());
    let backends = forfall::sync::bench::Backends {
        sqlite_dir: dir.clone(),
        postgres_url: postgres.clone(),
    };
    let sync = forfall::sync::bench::bench_sync(2_000, &backends).await;
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let hooks = forfall::sync::bench::bench_webhooks(300, &backends).await;
    let _ = std::fs::remove_dir_all(&dir);
    let (sync, hooks) = (sync.unwrap(), hooks.unwrap());
    let backends = if postgres.is_some() { 2 } else { 1 };
    assert_eq!(
        sync.matches("floor of a durable sync").count(),
        backends,
        "{sync}"
    );
    assert_eq!(sync.matches(" stored, ").count(), backends, "{sync}");
    assert_eq!(
        hooks.matches("floor of durable ingest").count(),
        backends,
        "{hooks}"
    );
    assert_eq!(
        hooks.matches("deliveries/s (verify + store + 202)").count(),
        backends,
        "{hooks}"
    );
}
