//! `POST /hooks/{connection}` with the generic connector (Standard Webhooks signatures), its bad
//! input (bad or missing signature, stale timestamp, replayed id, unknown connection, oversized or
//! malformed body: never a 500, nothing ingested, a counter in /metrics), and polling a partner's
//! `invoice.v1` feed, on both backends.

mod common;
mod ingest;

use std::sync::Arc;
use std::time::{Duration, Instant};

use forfall::store::Store;
use forfall_connector::standard_webhooks::Secret;
use forfall_connector::{DebtorKind, RemoteCustomer, RemoteId, RemoteInvoice};
use forfall_generic::WebhookEvent;
use forfall_generic::fake::{FakePartner, SignedDelivery, send, signed_delivery};
use rust_decimal::Decimal;
use serde_json::json;

use ingest::{Gateway, World, today, world_with};

on_both_backends!(
    a_signed_delivery_is_acknowledged_at_once_and_its_invoice_ingested,
    a_bad_or_missing_signature_is_401_and_nothing_is_ingested,
    a_stale_delivery_is_401_and_a_repeated_one_is_acknowledged_once_more_without_being_stored_again,
    an_unknown_connection_is_404_an_oversized_body_413_and_malformed_json_400_naming_its_field,
    a_deleted_invoice_ends_as_credited,
    a_partners_feed_is_polled_page_by_page_and_then_only_for_changes,
);

fn invoice(id: &str, amount: i64, outstanding: i64) -> RemoteInvoice {
    RemoteInvoice {
        id: RemoteId(id.into()),
        number: format!("F-{id}"),
        customer: RemoteCustomer {
            id: RemoteId("C-501".into()),
            kind: DebtorKind::Business,
            name: "Fjordkraft Rør AS".into(),
            organisation_number: Some("923609016".into()),
            email: Some("post@fjordkraft.example".into()),
            address_lines: vec!["Storgata 1".into()],
            postal_code: Some("0150".into()),
            city: Some("OSLO".into()),
            country: Some("NO".into()),
            platform_dunning: false,
        },
        issued: today() - chrono::Days::new(40),
        due: today() - chrono::Days::new(26),
        currency: "NOK".into(),
        amount: Decimal::new(amount, 2),
        outstanding: Decimal::new(outstanding, 2),
        payment_reference: Some("0001004257".into()),
        credited: false,
    }
}

async fn pushed_world(store: Arc<dyn Store>) -> (World, Secret, Gateway, String) {
    let secret = Secret::generate();
    let world = world_with(store, "generic", json!({}), &secret.to_string()).await;
    let gateway = Gateway::start(&world).await;
    let url = format!("{}/hooks/{}", gateway.base, world.connection);
    (world, secret, gateway, url)
}

fn delivery(secret: &Secret, event: &WebhookEvent, id: &str) -> SignedDelivery {
    signed_delivery(secret, event, id, chrono::Utc::now())
}

async fn stored(world: &World, id: &str) -> Option<forfall::domain::Invoice> {
    world
        .store
        .invoice_by_platform_id(&world.creditor, &world.connection, id)
        .await
        .unwrap()
}

async fn eventually_stored(world: &World, id: &str, outstanding: Decimal) {
    let started = Instant::now();
    loop {
        if stored(world, id)
            .await
            .is_some_and(|i| i.facts.outstanding == outstanding)
        {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{id} not ingested with {outstanding}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn metrics(gateway: &Gateway) -> String {
    reqwest::get(format!("{}/metrics", gateway.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

async fn a_signed_delivery_is_acknowledged_at_once_and_its_invoice_ingested(store: Arc<dyn Store>) {
    let (world, secret, gateway, url) = pushed_world(store).await;
    let event = WebhookEvent::Updated(invoice("INV-1", 125_000, 125_000));
    let status = send(&url, &delivery(&secret, &event, "msg_1"))
        .await
        .unwrap();
    assert_eq!(status, 202);
    eventually_stored(&world, "INV-1", Decimal::new(125_000, 2)).await;
    let invoice = stored(&world, "INV-1").await.unwrap();
    let customer = world
        .store
        .customer(&world.creditor, invoice.customer_id.as_ref().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(customer.facts.name, "Fjordkraft Rør AS");
    // Overdue by 26 days on a default policy: the engine has already decided about it.
    assert!(
        !world
            .store
            .decisions(&world.creditor, &invoice.id)
            .await
            .unwrap()
            .is_empty()
    );
    // A partial payment follows.
    let event = WebhookEvent::Updated(invoice_paid_part());
    assert_eq!(
        send(&url, &delivery(&secret, &event, "msg_2"))
            .await
            .unwrap(),
        202
    );
    eventually_stored(&world, "INV-1", Decimal::new(25_000, 2)).await;
    gateway.stop().await;
}

fn invoice_paid_part() -> RemoteInvoice {
    invoice("INV-1", 125_000, 25_000)
}

async fn rejected(url: &str, delivery: &SignedDelivery) -> (u16, serde_json::Value) {
    let client = reqwest::Client::new();
    let mut request = client
        .post(url)
        .header("content-type", "application/json")
        .body(delivery.body.clone());
    for (name, value) in &delivery.headers {
        request = request.header(*name, value.as_str());
    }
    let answer = request.send().await.unwrap();
    let status = answer.status().as_u16();
    assert_eq!(
        answer.headers()["content-type"],
        "application/problem+json",
        "status {status}"
    );
    (status, answer.json().await.unwrap())
}

async fn a_bad_or_missing_signature_is_401_and_nothing_is_ingested(store: Arc<dyn Store>) {
    let (world, secret, gateway, url) = pushed_world(store).await;
    let event = WebhookEvent::Updated(invoice("INV-1", 125_000, 125_000));
    let wrong = Secret::generate();
    let (status, problem) = rejected(&url, &delivery(&wrong, &event, "msg_1")).await;
    assert_eq!(status, 401);
    assert_eq!(problem["status"], 401);
    let mut unsigned = delivery(&secret, &event, "msg_2");
    unsigned.headers[2].1 = String::new();
    assert_eq!(rejected(&url, &unsigned).await.0, 401);
    let mut tampered = delivery(&secret, &event, "msg_3");
    tampered.body = String::from_utf8(tampered.body)
        .unwrap()
        .replace("1250.00", "1.00")
        .into_bytes();
    assert_eq!(rejected(&url, &tampered).await.0, 401);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(stored(&world, "INV-1").await.is_none());
    assert!(
        metrics(&gateway)
            .await
            .contains("forfall_webhooks_rejected_total{reason=\"bad_signature\"} 3")
    );
    gateway.stop().await;
}

async fn a_stale_delivery_is_401_and_a_repeated_one_is_acknowledged_once_more_without_being_stored_again(
    store: Arc<dyn Store>,
) {
    let (world, secret, gateway, url) = pushed_world(store).await;
    let event = WebhookEvent::Updated(invoice("INV-1", 125_000, 125_000));
    let stale = signed_delivery(
        &secret,
        &event,
        "msg_old",
        chrono::Utc::now() - chrono::Duration::minutes(6),
    );
    assert_eq!(rejected(&url, &stale).await.0, 401);
    let first = delivery(&secret, &event, "msg_1");
    assert_eq!(send(&url, &first).await.unwrap(), 202);
    // The platform's retry of the same delivery (its answer was lost): acknowledged again.
    assert_eq!(send(&url, &first).await.unwrap(), 200);
    eventually_stored(&world, "INV-1", Decimal::new(125_000, 2)).await;
    let invoice = stored(&world, "INV-1").await.unwrap();
    let events = world
        .store
        .invoice_events(&world.creditor, &invoice.id)
        .await
        .unwrap();
    assert_eq!(events.len(), 1, "the replay ingested nothing");
    let text = metrics(&gateway).await;
    assert!(
        text.contains("forfall_webhooks_duplicates_total{platform=\"generic\"} 1"),
        "{text}"
    );
    gateway.stop().await;
}

async fn an_unknown_connection_is_404_an_oversized_body_413_and_malformed_json_400_naming_its_field(
    store: Arc<dyn Store>,
) {
    let (_world, secret, gateway, url) = pushed_world(store).await;
    let event = WebhookEvent::Updated(invoice("INV-1", 125_000, 125_000));
    let fine = delivery(&secret, &event, "msg_1");
    let (status, _) = rejected(&format!("{}/hooks/conn_nobody", gateway.base), &fine).await;
    assert_eq!(status, 404);
    let mut huge = fine.clone();
    huge.body = vec![b' '; 1024 * 1024 + 1];
    assert_eq!(rejected(&url, &huge).await.0, 413);
    let garbage = forfall_generic::fake::SignedDelivery {
        id: "msg_9".into(),
        timestamp: chrono::Utc::now(),
        headers: forfall_connector::standard_webhooks::headers(
            &secret,
            "msg_9",
            chrono::Utc::now().timestamp(),
            b"{not json",
        ),
        body: b"{not json".to_vec(),
    };
    assert_eq!(rejected(&url, &garbage).await.0, 400);
    // A well-formed body with a field out of its range names the field as a pointer.
    let mut wrong: serde_json::Value = serde_json::from_slice(&fine.body).unwrap();
    wrong["data"]["customer"]["kind"] = "alien".into();
    let wrong = serde_json::to_vec(&wrong).unwrap();
    let wrong = forfall_generic::fake::SignedDelivery {
        id: "msg_10".into(),
        timestamp: chrono::Utc::now(),
        headers: forfall_connector::standard_webhooks::headers(
            &secret,
            "msg_10",
            chrono::Utc::now().timestamp(),
            &wrong,
        ),
        body: wrong,
    };
    let (status, problem) = rejected(&url, &wrong).await;
    assert_eq!(status, 400);
    assert_eq!(problem["errors"][0]["pointer"], "/data/customer/kind");
    let text = metrics(&gateway).await;
    for (reason, count) in [
        ("unknown_connection", 1),
        ("too_large", 1),
        ("malformed", 2),
    ] {
        assert!(
            text.contains(&format!(
                "forfall_webhooks_rejected_total{{reason=\"{reason}\"}} {count}"
            )),
            "{reason}: {text}"
        );
    }
    assert!(!text.contains("status=\"500\""), "{text}");
    gateway.stop().await;
}

async fn a_deleted_invoice_ends_as_credited(store: Arc<dyn Store>) {
    let (world, secret, gateway, url) = pushed_world(store).await;
    let event = WebhookEvent::Updated(invoice("INV-1", 125_000, 125_000));
    assert_eq!(
        send(&url, &delivery(&secret, &event, "msg_1"))
            .await
            .unwrap(),
        202
    );
    eventually_stored(&world, "INV-1", Decimal::new(125_000, 2)).await;
    let gone = WebhookEvent::Deleted(RemoteId("INV-1".into()));
    assert_eq!(
        send(&url, &delivery(&secret, &gone, "msg_2"))
            .await
            .unwrap(),
        202
    );
    eventually_stored(&world, "INV-1", Decimal::ZERO).await;
    assert!(stored(&world, "INV-1").await.unwrap().facts.credited);
    gateway.stop().await;
}

async fn a_partners_feed_is_polled_page_by_page_and_then_only_for_changes(store: Arc<dyn Store>) {
    let partner = FakePartner::new("partner-token");
    for n in 0..25 {
        let outstanding = if n % 5 == 0 { 0 } else { 50_000 };
        partner.upsert(invoice(&format!("INV-{n}"), 50_000, outstanding));
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = partner.spawn(listener).unwrap();
    let world = world_with(
        store,
        "generic",
        partner.credentials(&base),
        &Secret::generate().to_string(),
    )
    .await;
    let stats = world
        .ingest
        .run_pass(&world.connection, true, None, &|_| {})
        .await
        .unwrap();
    assert_eq!(
        stats.created, 20,
        "the 20 open invoices, not the 5 paid ones"
    );
    assert!(stored(&world, "INV-0").await.is_none());
    assert_eq!(
        stored(&world, "INV-1").await.unwrap().facts.outstanding,
        Decimal::new(50_000, 2)
    );
    partner.upsert(invoice("INV-1", 50_000, 0));
    let requests = partner.requests();
    let stats = world
        .ingest
        .run_pass(&world.connection, false, None, &|_| {})
        .await
        .unwrap();
    assert_eq!((stats.invoices, stats.changed), (1, 1), "only the change");
    assert!(partner.requests() - requests <= 2);
    assert!(
        stored(&world, "INV-1")
            .await
            .unwrap()
            .facts
            .outstanding
            .is_zero()
    );
}
