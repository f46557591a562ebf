//! Polling the fake partner feed over real HTTP: paging with cursors, incremental passes, open and
//! closed invoices, retries, refused tokens; and pushing signed deliveries to a receiver.

#![cfg(feature = "fake")]

mod common;

use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{date, invoice};
use forfall_connector::client::HttpSettings;
use forfall_connector::standard_webhooks::Secret;
use forfall_connector::{
    Connector, ConnectorError, Cursor, ListRequest, Page, RemoteChange, RemoteId,
};
use forfall_generic::fake::{self, FakePartner, Fault};
use forfall_generic::{GenericConnector, WebhookEvent};
use serde_json::json;
use tokio::net::TcpListener;

const TOKEN: &str = "partner-token-1";

fn fast() -> HttpSettings {
    HttpSettings {
        timeout: Duration::from_secs(2),
        max_attempts: 4,
        min_delay: Duration::from_millis(10),
        max_delay: Duration::from_secs(5),
        requests_per_second: NonZeroU32::new(1000).unwrap(),
        ..HttpSettings::default()
    }
}

async fn feed() -> (FakePartner, GenericConnector) {
    let partner = FakePartner::new(TOKEN);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base_url = partner.spawn(listener).unwrap();
    let connector =
        GenericConnector::from_credentials(&partner.credentials(&base_url), fast()).unwrap();
    (partner, connector)
}

fn request(cursor: Option<&Cursor>, full: bool) -> ListRequest {
    ListRequest {
        cursor: cursor.cloned(),
        full,
        today: date("2026-11-23"),
    }
}

fn ids(page: &Page) -> (Vec<String>, Vec<String>) {
    let ids = |list: &[forfall_connector::RemoteInvoice]| {
        list.iter().map(|invoice| invoice.id.0.clone()).collect()
    };
    (ids(&page.open), ids(&page.closed))
}

/// Reads pages from `start` until the last one; the pages, in order.
async fn pass(connector: &GenericConnector, start: Option<Cursor>, full: bool) -> Vec<Page> {
    let mut pages = Vec::new();
    let mut cursor = start;
    loop {
        let page = connector
            .open_invoices(&request(cursor.as_ref(), full && pages.is_empty()))
            .await
            .unwrap();
        cursor = Some(page.cursor.clone());
        let last = page.last;
        pages.push(page);
        if last {
            return pages;
        }
        assert!(pages.len() < 100, "the pass does not end");
    }
}

#[tokio::test]
async fn a_full_pass_pages_to_the_end_with_cursors() {
    let (partner, connector) = feed().await;
    let connector = connector.with_page_size(2);
    for n in 1..=5 {
        partner.upsert(invoice(&format!("INV-{n}"), "1000.00"));
    }
    let pages = pass(&connector, None, true).await;
    assert_eq!(pages.len(), 3);
    assert_eq!(
        pages.iter().map(|p| p.open.len()).collect::<Vec<_>>(),
        vec![2, 2, 1]
    );
    assert_eq!(
        pages.iter().map(|p| p.last).collect::<Vec<_>>(),
        vec![false, false, true]
    );
    let all: Vec<String> = pages.iter().flat_map(|p| ids(p).0).collect();
    assert_eq!(all, vec!["INV-1", "INV-2", "INV-3", "INV-4", "INV-5"]);
    assert_eq!(partner.requests(), 3);
}

#[tokio::test]
async fn open_and_closed_invoices_are_sorted_apart() {
    let (partner, connector) = feed().await;
    partner.upsert(invoice("INV-1", "1000.00"));
    partner.upsert(invoice("INV-2", "0.00"));
    partner.upsert(invoice("INV-3", "0.01"));
    let mut credited = invoice("INV-4", "0");
    credited.credited = true;
    partner.upsert(credited);
    let page = connector.open_invoices(&request(None, true)).await.unwrap();
    let (open, closed) = ids(&page);
    assert_eq!(open, vec!["INV-1", "INV-3"]);
    assert_eq!(closed, vec!["INV-2", "INV-4"]);
    assert!(page.closed[1].credited);
    assert!(page.last);
}

#[tokio::test]
async fn an_incremental_pass_after_a_change_returns_only_the_changed_invoice() {
    let (partner, connector) = feed().await;
    let connector = connector.with_page_size(2);
    for n in 1..=3 {
        partner.upsert(invoice(&format!("INV-{n}"), "1000.00"));
    }
    let first = pass(&connector, None, true).await;
    let resume = first.last().unwrap().cursor.clone();

    // Nothing changed: an empty last page that keeps the cursor.
    let quiet = pass(&connector, Some(resume.clone()), false).await;
    assert_eq!(quiet.len(), 1);
    assert!(quiet[0].open.is_empty() && quiet[0].closed.is_empty());
    assert_eq!(quiet[0].cursor, resume);

    // INV-2 is paid: only it comes back, now closed.
    partner.upsert(invoice("INV-2", "0.00"));
    let changed = pass(&connector, Some(resume.clone()), false).await;
    assert_eq!(changed.len(), 1);
    assert_eq!(ids(&changed[0]), (vec![], vec!["INV-2".to_string()]));
    assert_ne!(changed[0].cursor, resume);

    // And the pass after that is quiet again.
    let after = pass(&connector, Some(changed[0].cursor.clone()), false).await;
    assert!(after[0].open.is_empty() && after[0].closed.is_empty());
}

#[tokio::test]
async fn a_full_pass_ignores_the_cursor_and_lists_everything() {
    let (partner, connector) = feed().await;
    for n in 1..=3 {
        partner.upsert(invoice(&format!("INV-{n}"), "1000.00"));
    }
    let resume = pass(&connector, None, true).await.pop().unwrap().cursor;
    let page = connector
        .open_invoices(&request(Some(&resume), true))
        .await
        .unwrap();
    assert_eq!(page.open.len(), 3);
    assert!(page.last);
}

#[tokio::test]
async fn an_empty_feed_ends_the_pass_at_the_start() {
    let (_partner, connector) = feed().await;
    let page = connector.open_invoices(&request(None, true)).await.unwrap();
    assert!(page.last && page.open.is_empty());
    assert_eq!(page.cursor, Cursor(String::new()));
    // An empty cursor resumes from the start.
    assert!(
        connector
            .open_invoices(&request(Some(&page.cursor), false))
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn a_503_is_retried_until_the_feed_answers() {
    let (partner, connector) = feed().await;
    partner.upsert(invoice("INV-1", "1000.00"));
    partner.fail_next(2, Fault::Unavailable);
    let page = connector.open_invoices(&request(None, true)).await.unwrap();
    assert_eq!(page.open.len(), 1);
    assert_eq!(partner.requests(), 3);
}

#[tokio::test]
async fn a_429_waits_for_its_retry_after() {
    let (partner, connector) = feed().await;
    partner.upsert(invoice("INV-1", "1000.00"));
    partner.fail_next(
        1,
        Fault::RateLimited {
            retry_after: Duration::from_secs(1),
        },
    );
    let started = Instant::now();
    let page = connector.open_invoices(&request(None, true)).await.unwrap();
    assert_eq!(page.open.len(), 1);
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!(partner.requests(), 2);
}

#[tokio::test]
async fn a_feed_that_stays_down_ends_in_a_transient_error() {
    let (partner, connector) = feed().await;
    partner.fail_next(10, Fault::Unavailable);
    let error = connector
        .open_invoices(&request(None, true))
        .await
        .unwrap_err();
    assert!(matches!(error, ConnectorError::Transient(_)), "{error}");
    assert_eq!(partner.requests(), 4, "max_attempts in all");
}

#[tokio::test]
async fn a_wrong_token_is_unauthorized_without_a_second_try() {
    let partner = FakePartner::new(TOKEN);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base_url = partner.spawn(listener).unwrap();
    let connector = GenericConnector::from_credentials(
        &json!({"base_url": base_url, "token": "stolen-or-old"}),
        fast(),
    )
    .unwrap();
    let error = connector
        .open_invoices(&request(None, true))
        .await
        .unwrap_err();
    assert!(matches!(error, ConnectorError::Unauthorized(_)), "{error}");
    assert_eq!(partner.requests(), 1, "a static token is not renewed");
}

#[tokio::test]
async fn one_invoice_is_read_by_id_and_a_deleted_one_is_not_found() {
    let (partner, connector) = feed().await;
    let mut odd = invoice("INV/7 b", "300.00");
    odd.payment_reference = Some("0001004257".into());
    partner.upsert(odd.clone());
    assert_eq!(connector.invoice(&odd.id).await.unwrap(), odd);
    assert!(partner.delete("INV/7 b"));
    let error = connector.invoice(&odd.id).await.unwrap_err();
    assert_eq!(error, ConnectorError::NotFound);
    // A deleted invoice also leaves the feed.
    let page = connector.open_invoices(&request(None, true)).await.unwrap();
    assert!(page.open.is_empty() && page.closed.is_empty());
}

#[tokio::test]
async fn capabilities_follow_the_configuration() {
    let (_partner, polled) = feed().await;
    let caps = polled.capabilities();
    assert!(caps.poll && caps.webhooks && caps.complete_listing);
    assert!(!caps.write_payment && !caps.write_note);
    assert_eq!(polled.platform(), "generic");

    let pushed = GenericConnector::from_credentials(&json!({}), fast()).unwrap();
    assert!(!pushed.capabilities().poll);
    assert!(matches!(
        pushed.open_invoices(&request(None, true)).await,
        Err(ConnectorError::Unsupported(_))
    ));
    let payment = forfall_connector::Payment {
        paid_on: date("2026-11-23"),
        amount: common::money("10.00"),
        currency: "NOK".into(),
        idempotency_key: "k".into(),
    };
    assert!(matches!(
        polled
            .record_payment(&RemoteId("INV-1".into()), &payment)
            .await,
        Err(ConnectorError::Unsupported(_))
    ));
    let note = forfall_connector::StatusNote {
        text: "transferred".into(),
        idempotency_key: "k".into(),
    };
    assert!(matches!(
        polled.record_status(&RemoteId("INV-1".into()), &note).await,
        Err(ConnectorError::Unsupported(_))
    ));
}

#[test]
fn bad_credentials_are_config_errors_naming_the_problem() {
    let cases = [
        (
            json!({"base_url": "https://erp.example", "token": "t", "secret": "x"}),
            "secret",
        ),
        (json!({"base_url": "https://erp.example"}), "token"),
        (json!({"token": "t"}), "base_url"),
        (
            json!({"base_url": "ftp://erp.example", "token": "t"}),
            "http or https",
        ),
        (json!({"base_url": "not a url", "token": "t"}), "not a URL"),
        (
            json!({"base_url": "https://u:p@erp.example", "token": "t"}),
            "credentials",
        ),
        (
            json!({"base_url": "https://erp.example/?a=1", "token": "t"}),
            "query",
        ),
        (
            json!({"base_url": "https://erp.example", "token": 5}),
            "token",
        ),
        (
            json!({"base_url": "https://erp.example", "token": "t\nx"}),
            "token",
        ),
        (json!(["https://erp.example"]), "object"),
    ];
    for (credentials, expected) in cases {
        match GenericConnector::from_credentials(&credentials, fast()) {
            Err(ConnectorError::Config(message)) => {
                assert!(message.contains(expected), "{expected}: {message}")
            }
            other => panic!("{expected}: expected Config, got {other:?}"),
        }
    }
    assert!(GenericConnector::from_credentials(&serde_json::Value::Null, fast()).is_ok());
}

/// A feed that answers one fixed page.
async fn fixed_feed(page: serde_json::Value) -> GenericConnector {
    let app = axum::Router::new().route(
        "/invoices",
        axum::routing::get(move || {
            let page = page.clone();
            async move { axum::Json(page) }
        }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base_url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    GenericConnector::from_credentials(&json!({"base_url": base_url, "token": TOKEN}), fast())
        .unwrap()
}

#[tokio::test]
async fn a_bad_document_in_a_page_is_malformed_naming_its_place_and_id() {
    let mut bad = forfall_generic::to_json(&invoice("INV-2", "10.00"));
    bad["customer"]["kind"] = json!("company");
    let good = forfall_generic::to_json(&invoice("INV-1", "10.00"));
    let connector =
        fixed_feed(json!({"data": [good, bad], "next_cursor": null, "has_more": false})).await;
    match connector.open_invoices(&request(None, true)).await {
        Err(ConnectorError::Malformed { detail }) => {
            assert!(detail.starts_with("data[1].customer.kind:"), "{detail}");
            assert!(detail.contains("INV-2"), "{detail}");
        }
        other => panic!("expected Malformed, got {other:?}"),
    }
}

#[tokio::test]
async fn a_page_that_promises_more_without_a_cursor_is_malformed() {
    let connector = fixed_feed(json!({"data": [], "next_cursor": null, "has_more": true})).await;
    let error = connector
        .open_invoices(&request(None, true))
        .await
        .unwrap_err();
    assert!(matches!(error, ConnectorError::Malformed { .. }), "{error}");
}

#[tokio::test]
async fn pushed_deliveries_are_signed_so_the_connector_accepts_them() {
    let secret = Secret::generate();
    let accepted: Arc<Mutex<Vec<RemoteChange>>> = Arc::default();
    let receiver = {
        let secret = secret.to_string();
        let accepted = accepted.clone();
        axum::Router::new().route(
            "/hooks/c1",
            axum::routing::post(
                move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                    let secret = secret.clone();
                    let accepted = accepted.clone();
                    async move {
                        let connector =
                            GenericConnector::from_credentials(&json!({}), HttpSettings::default())
                                .unwrap();
                        let now = chrono::Utc::now();
                        if connector
                            .verify_webhook(secret.as_bytes(), &headers, &body, now)
                            .is_err()
                        {
                            return axum::http::StatusCode::UNAUTHORIZED;
                        }
                        let changes = connector.parse_webhook(&headers, &body).unwrap();
                        accepted.lock().unwrap().extend(changes);
                        axum::http::StatusCode::NO_CONTENT
                    }
                },
            ),
        )
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks/c1", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, receiver).await.unwrap() });

    let paid = invoice("INV-1", "0.00");
    let status = fake::push(&url, &secret, &WebhookEvent::Updated(paid.clone()))
        .await
        .unwrap();
    assert_eq!(status, 204);
    let status = fake::push(
        &url,
        &secret,
        &WebhookEvent::Deleted(RemoteId("INV-2".into())),
    )
    .await
    .unwrap();
    assert_eq!(status, 204);
    let wrong = Secret::generate();
    let status = fake::push(&url, &wrong, &WebhookEvent::Updated(paid.clone()))
        .await
        .unwrap();
    assert_eq!(status, 401);
    // A delivery from ten minutes ago is refused.
    let old = fake::signed_delivery(
        &secret,
        &WebhookEvent::Updated(paid.clone()),
        "msg_old",
        chrono::Utc::now() - chrono::Duration::minutes(10),
    );
    assert_eq!(fake::send(&url, &old).await.unwrap(), 401);

    assert_eq!(
        *accepted.lock().unwrap(),
        vec![
            RemoteChange::InvoiceSnapshot(Box::new(paid)),
            RemoteChange::InvoiceDeleted(RemoteId("INV-2".into())),
        ]
    );
}
