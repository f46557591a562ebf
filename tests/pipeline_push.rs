//! The push client against the fake agency over real HTTP on loopback: delivery, idempotent
//! redelivery, the failure classes the job runner acts on, and events sent back to the gateway.

#![cfg(feature = "fake")]

use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use chrono::{NaiveDate, Utc};
use forfall::domain::{CustomerKind, NationalId, PostalAddress};
use forfall::pipeline::{
    AgencyEvent, AgencyFault, CaseV1, CloseOutcome, Creditor, Debtor, DeliveryError, FakeAgency,
    InvoiceDoc, OutboundMessage, PushClient, PushSettings, Warning, WarningKind,
};
use forfall_connector::standard_webhooks::{self, Secret};
use rust_decimal::Decimal;
use serde_json::json;
use tokio::net::TcpListener;

fn date(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
}

fn case_v1(case_id: &str) -> CaseV1 {
    CaseV1 {
        case_id: case_id.into(),
        creditor: Creditor {
            name: "Rørlegger Hansen AS".into(),
            organisation_number: "987654321".into(),
            country: "NO".into(),
        },
        debtor: Debtor {
            kind: CustomerKind::Consumer,
            name: "Kari Nordmann".into(),
            organisation_number: None,
            national_id: Some(NationalId("01017012345".into())),
            email: Some("kari@example.no".into()),
            postal_address: Some(PostalAddress {
                lines: vec!["Storgata 1".into()],
                postal_code: "0155".into(),
                city: "Oslo".into(),
                country: "NO".into(),
            }),
        },
        invoice: InvoiceDoc {
            number: "10023".into(),
            platform_id: "88213".into(),
            issued: date("2026-10-01"),
            due: date("2026-10-15"),
            payment_reference: Some("12345678903".into()),
            currency: "NOK".into(),
            original_amount: Decimal::from_str("1250.00").unwrap(),
            outstanding: Decimal::from_str("1250.00").unwrap(),
        },
        transfer_on: date("2026-11-28"),
        free_withdrawal_until: date("2026-12-12"),
        first_reminder_on: date("2026-12-03"),
        warnings: vec![Warning {
            kind: WarningKind::Notice,
            on: date("2026-11-14"),
            transfer_on: date("2026-11-28"),
        }],
        dispute: None,
    }
}

fn transfer(id: &str, case_id: &str) -> OutboundMessage {
    OutboundMessage::transfer(id, &case_v1(case_id), Utc::now())
}

async fn agency() -> (FakeAgency, Secret) {
    let secret = Secret::generate();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let fake = FakeAgency::start(listener, secret.clone()).await.unwrap();
    (fake, secret)
}

fn client(url: &str, secret: &Secret, timeout: Duration) -> PushClient {
    PushClient::new(PushSettings {
        url: url.into(),
        secret: secret.clone(),
        timeout,
    })
    .unwrap()
}

#[tokio::test]
async fn a_transfer_is_stored_once_and_a_redelivery_is_a_duplicate_not_a_second_case() {
    let (fake, secret) = agency().await;
    let push = client(&fake.url(), &secret, Duration::from_secs(5));
    let message = transfer("msg_transfer_1", "case_1");

    let delivered = push.deliver(&message).await.unwrap();
    assert_eq!(delivered.status, 200);
    let cases = fake.cases();
    assert_eq!(cases.len(), 1);
    assert_eq!(cases[0].case_id, "case_1");
    assert_eq!(cases[0].state, "open");
    assert_eq!(cases[0].messages, vec!["case.transfer"]);
    assert_eq!(
        cases[0].transfer.as_ref(),
        Some(&case_v1("case_1").to_json())
    );
    let messages = fake.messages();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].idempotency_key, "msg_transfer_1");
    assert_eq!(
        messages[0].body["data"]["debtor"]["national_id"],
        "01017012345"
    );

    // A retry of the same message (the answer was lost, say): 2xx again, nothing stored twice.
    assert_eq!(push.deliver(&message).await.unwrap().status, 200);
    assert_eq!(fake.duplicates(), 1);
    assert_eq!(fake.cases().len(), 1);
    assert_eq!(fake.messages().len(), 1);
}

#[tokio::test]
async fn an_unavailable_agency_is_a_transient_failure_and_the_next_attempt_succeeds() {
    let (fake, secret) = agency().await;
    let push = client(&fake.url(), &secret, Duration::from_secs(5));
    let message = transfer("msg_1", "case_1");
    fake.answer(AgencyFault::Unavailable, 1);

    let error = push.deliver(&message).await.unwrap_err();
    assert!(
        matches!(&error, DeliveryError::Transient { detail, retry_after: None } if detail.starts_with("503")),
        "{error:?}"
    );
    assert!(fake.cases().is_empty());
    assert_eq!(push.deliver(&message).await.unwrap().status, 200);
    assert_eq!(fake.cases().len(), 1);
    assert_eq!(fake.duplicates(), 0);
}

#[tokio::test]
async fn a_rate_limit_is_transient_with_the_agencys_retry_after() {
    let (fake, secret) = agency().await;
    let push = client(&fake.url(), &secret, Duration::from_secs(5));
    fake.answer(
        AgencyFault::RateLimited {
            retry_after_seconds: 7,
        },
        1,
    );
    let error = push
        .deliver(&transfer("msg_1", "case_1"))
        .await
        .unwrap_err();
    assert!(error.is_transient(), "{error:?}");
    assert_eq!(error.retry_after(), Some(Duration::from_secs(7)));
}

#[tokio::test]
async fn a_message_the_agency_refuses_is_a_permanent_failure_with_its_problem() {
    let (fake, secret) = agency().await;
    let push = client(&fake.url(), &secret, Duration::from_secs(5));
    fake.answer(AgencyFault::BadRequest, 1);
    let error = push
        .deliver(&transfer("msg_1", "case_1"))
        .await
        .unwrap_err();
    let DeliveryError::Permanent { status, detail } = error else {
        panic!("expected a permanent failure, got {error:?}");
    };
    assert_eq!(status, 422);
    assert!(detail.contains("refuses this message"), "{detail}");
}

#[tokio::test]
async fn cleared_faults_are_not_answered() {
    let (fake, secret) = agency().await;
    let push = client(&fake.url(), &secret, Duration::from_secs(5));
    fake.answer(AgencyFault::Unavailable, 3);
    fake.clear_faults();
    assert!(push.deliver(&transfer("msg_1", "case_1")).await.is_ok());
}

#[tokio::test]
async fn a_delivery_signed_with_a_wrong_secret_is_rejected_as_401() {
    let (fake, _) = agency().await;
    let push = client(&fake.url(), &Secret::generate(), Duration::from_secs(5));
    let error = push
        .deliver(&transfer("msg_1", "case_1"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, DeliveryError::Permanent { status: 401, .. }),
        "{error:?}"
    );
    assert_eq!(fake.rejected(), 1);
    assert!(fake.cases().is_empty());
}

#[tokio::test]
async fn a_follow_up_for_an_unknown_case_is_a_permanent_404() {
    let (fake, secret) = agency().await;
    let push = client(&fake.url(), &secret, Duration::from_secs(5));
    let withdraw = OutboundMessage::withdraw("msg_w", "case_unknown", false, "stopped", Utc::now());
    let error = push.deliver(&withdraw).await.unwrap_err();
    assert!(
        matches!(error, DeliveryError::Permanent { status: 404, .. }),
        "{error:?}"
    );
    assert!(fake.messages().is_empty());
}

#[tokio::test]
async fn a_second_transfer_of_a_case_under_another_message_id_is_a_409_conflict() {
    let (fake, secret) = agency().await;
    let push = client(&fake.url(), &secret, Duration::from_secs(5));
    push.deliver(&transfer("msg_1", "case_1")).await.unwrap();
    let error = push
        .deliver(&transfer("msg_2", "case_1"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, DeliveryError::Permanent { status: 409, .. }),
        "{error:?}"
    );
    assert_eq!(fake.conflicts(), 1);
    assert_eq!(fake.cases().len(), 1);
    assert_eq!(fake.messages().len(), 1);
}

#[tokio::test]
async fn a_message_id_reused_for_another_message_is_refused() {
    let (fake, secret) = agency().await;
    let push = client(&fake.url(), &secret, Duration::from_secs(5));
    push.deliver(&transfer("msg_1", "case_1")).await.unwrap();
    let other = OutboundMessage::hold("msg_1", "case_1", "disputed", Utc::now());
    let error = push.deliver(&other).await.unwrap_err();
    assert!(
        matches!(error, DeliveryError::Permanent { status: 422, .. }),
        "{error:?}"
    );
    assert_eq!(fake.duplicates(), 0);
}

#[tokio::test]
async fn an_answer_slower_than_the_timeout_is_transient_and_the_retry_finds_it_stored() {
    let (fake, secret) = agency().await;
    let push = client(&fake.url(), &secret, Duration::from_millis(300));
    let message = transfer("msg_1", "case_1");
    fake.answer(AgencyFault::Slow(Duration::from_millis(1500)), 1);

    let error = push.deliver(&message).await.unwrap_err();
    assert!(
        matches!(&error, DeliveryError::Transient { detail, .. } if detail == "timed out"),
        "{error:?}"
    );
    assert_eq!(push.deliver(&message).await.unwrap().status, 200);
    assert_eq!(fake.duplicates(), 1);
    assert_eq!(fake.cases().len(), 1);
}

#[tokio::test]
async fn an_agency_that_cannot_be_reached_is_a_transient_failure() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    let push = client(
        &format!("http://{address}/cases"),
        &Secret::generate(),
        Duration::from_secs(2),
    );
    let error = push
        .deliver(&transfer("msg_1", "case_1"))
        .await
        .unwrap_err();
    assert!(error.is_transient(), "{error:?}");
}

#[tokio::test]
async fn follow_ups_move_the_case_through_its_states_in_order() {
    let (fake, secret) = agency().await;
    let push = client(&fake.url(), &secret, Duration::from_secs(5));
    let now = Utc::now();
    push.deliver(&transfer("m1", "case_1")).await.unwrap();
    push.deliver(&OutboundMessage::hold("m2", "case_1", "disputed", now))
        .await
        .unwrap();
    assert_eq!(fake.cases()[0].state, "held");
    push.deliver(&OutboundMessage::release("m3", "case_1", now))
        .await
        .unwrap();
    assert_eq!(fake.cases()[0].state, "open");
    let paid = OutboundMessage::paid_directly(
        "m4",
        "case_1",
        Decimal::from_str("1250.00").unwrap(),
        "NOK",
        Decimal::ZERO,
        true,
        now,
    );
    push.deliver(&paid).await.unwrap();
    assert_eq!(fake.cases()[0].state, "open");
    push.deliver(&OutboundMessage::withdraw(
        "m5",
        "case_1",
        true,
        "paid_directly",
        now,
    ))
    .await
    .unwrap();

    let case = &fake.cases()[0];
    assert_eq!(case.state, "withdrawn");
    assert_eq!(case.withdrawn_charged, Some(true));
    assert_eq!(
        case.messages,
        vec![
            "case.transfer",
            "case.hold",
            "case.release",
            "case.paid_directly",
            "case.withdraw"
        ]
    );
    let keys: Vec<String> = fake
        .messages()
        .into_iter()
        .map(|m| m.idempotency_key)
        .collect();
    assert_eq!(keys, vec!["m1", "m2", "m3", "m4", "m5"]);

    // A withdrawn case takes no more messages.
    let error = push
        .deliver(&OutboundMessage::hold("m6", "case_1", "disputed", now))
        .await
        .unwrap_err();
    assert!(
        matches!(error, DeliveryError::Permanent { status: 409, .. }),
        "{error:?}"
    );
}

/// What the test's stand-in for the gateway received.
#[derive(Clone, Default)]
struct Received {
    events: Arc<Mutex<Vec<(String, AgencyEvent)>>>,
}

/// A stand-in for the gateway's `POST /pipeline/events`: verifies the signature with
/// `standard_webhooks::verify` and reads the event strictly.
async fn gateway(secret: Secret) -> (String, Received) {
    let received = Received::default();
    let state = (secret, received.clone());
    let router = axum::Router::new()
        .route(
            "/pipeline/events",
            post(
                |State((secret, received)): State<(Secret, Received)>,
                 headers: HeaderMap,
                 body: Bytes| async move {
                    let Ok(delivery) = standard_webhooks::verify(
                        &secret,
                        &headers,
                        &body,
                        Utc::now(),
                        standard_webhooks::DEFAULT_TOLERANCE,
                    ) else {
                        return StatusCode::UNAUTHORIZED;
                    };
                    let Ok(event) = AgencyEvent::parse(&body) else {
                        return StatusCode::BAD_REQUEST;
                    };
                    received.events.lock().unwrap().push((delivery.id, event));
                    StatusCode::ACCEPTED
                },
            ),
        )
        .with_state(state);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (base, received)
}

#[tokio::test]
async fn send_event_posts_a_correctly_signed_event_the_gateway_verifies() {
    let (fake, secret) = agency().await;
    let (base, received) = gateway(secret).await;
    let payment = AgencyEvent::PaymentReceived {
        case_id: "case_1".into(),
        amount: Decimal::from_str("250.00").unwrap(),
        currency: "NOK".into(),
        paid_on: date("2026-12-02"),
    };
    assert_eq!(fake.send_event(&base, &payment).await.unwrap(), 202);
    let closed = AgencyEvent::CaseClosed {
        case_id: "case_1".into(),
        outcome: CloseOutcome::Paid,
    };
    assert_eq!(
        fake.send_event_with_id(&format!("{base}/"), "evt_fixed", &closed)
            .await
            .unwrap(),
        202
    );

    let events = received.events.lock().unwrap().clone();
    assert_eq!(events.len(), 2);
    assert!(events[0].0.starts_with("evt_"), "{}", events[0].0);
    assert_eq!(events[0].1, payment);
    assert_eq!(events[1], ("evt_fixed".to_string(), closed));
}

#[tokio::test]
async fn an_event_signed_with_another_secret_fails_the_gateways_verification() {
    let (fake, _) = agency().await;
    let (base, received) = gateway(Secret::generate()).await;
    let event = AgencyEvent::WithdrawalConfirmed {
        case_id: "case_1".into(),
    };
    assert_eq!(fake.send_event(&base, &event).await.unwrap(), 401);
    assert!(received.events.lock().unwrap().is_empty());
}

#[tokio::test]
async fn the_control_api_queues_faults_lists_cases_and_sends_events() {
    let (fake, secret) = agency().await;
    let (base, received) = gateway(secret.clone()).await;
    let push = client(&fake.url(), &secret, Duration::from_secs(5));
    let http = reqwest::Client::new();
    let control = fake.control_url();

    let answer = http
        .post(format!("{control}/fault"))
        .json(&json!({"fault": "rate_limited", "times": 1, "retry_after_seconds": 3}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let error = push.deliver(&transfer("m1", "case_1")).await.unwrap_err();
    assert_eq!(error.retry_after(), Some(Duration::from_secs(3)));
    push.deliver(&transfer("m1", "case_1")).await.unwrap();

    let cases: serde_json::Value = http
        .get(format!("{control}/cases"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(cases[0]["case_id"], "case_1");
    assert_eq!(cases[0]["transfer"]["schema"], "case.v1");
    let messages: serde_json::Value = http
        .get(format!("{control}/messages"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(messages[0]["idempotency_key"], "m1");
    let summary: serde_json::Value = http
        .get(&control)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(summary["deliveries"], 2);
    assert_eq!(summary["cases"], 1);

    let sent: serde_json::Value = http
        .post(format!("{control}/events"))
        .json(&json!({
            "gateway": base,
            "event": {"type": "debtor.objected", "case_id": "case_1", "data": {"amount": "300.00"}},
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(sent["status"], 202);
    let events = received.events.lock().unwrap().clone();
    assert_eq!(events[0].0, sent["webhook_id"].as_str().unwrap());
    assert_eq!(
        events[0].1,
        AgencyEvent::DebtorObjected {
            case_id: "case_1".into(),
            amount: Some(Decimal::from_str("300.00").unwrap()),
            reason: None,
        }
    );

    let bad = http
        .post(format!("{control}/events"))
        .json(&json!({"gateway": base, "event": {"type": "payment.received", "case_id": "c", "data": {}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let problem: serde_json::Value = bad.json().await.unwrap();
    assert_eq!(problem["errors"][0]["field"], "event.data.amount");
}

#[tokio::test]
async fn a_malformed_body_or_a_mismatched_idempotency_key_is_rejected_as_400() {
    let (fake, secret) = agency().await;
    let http = reqwest::Client::new();
    let send = |id: &'static str, key: &'static str, body: Vec<u8>| {
        let headers = standard_webhooks::headers(&secret, id, Utc::now().timestamp(), &body);
        let mut request = http
            .post(fake.url())
            .header("content-type", "application/json")
            .header("idempotency-key", key)
            .body(body);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        request.send()
    };

    let mut body = transfer("m1", "case_1").to_json();
    body["data"]["invoice"]["outstanding"] = json!(1250.0);
    let answer = send("m1", "m1", body.to_string().into_bytes())
        .await
        .unwrap();
    assert_eq!(answer.status(), 400);
    assert_eq!(answer.headers()["content-type"], "application/problem+json");
    let problem: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(problem["errors"][0]["pointer"], "/data/invoice/outstanding");

    let good = transfer("m1", "case_1").to_json_bytes();
    let answer = send("m1", "other", good).await.unwrap();
    assert_eq!(answer.status(), 400);
    assert_eq!(fake.rejected(), 2);
    assert!(fake.messages().is_empty());
}

/// `forfall bench forward` end to end at a small size: every transfer reaches the agency once
/// through the workers, and the bare loop runs beside it (SQLite; PostgreSQL too when set).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_forwarding_benchmark_delivers_every_transfer_once() {
    let dir = std::env::temp_dir().join(format!("forfall-bench-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let backends = forfall::sync::bench::Backends {
        sqlite_dir: dir.clone(),
        postgres_url: std::env::var("FORFALL_TEST_POSTGRES_URL")
            .ok()
            .filter(|u| !u.is_empty()),
    };
    let report = forfall::pipeline::bench::bench_forward(200, 16, &backends).await;
    let _ = std::fs::remove_dir_all(&dir);
    let report = report.unwrap();
    assert!(
        report.contains("SQLite (WAL): seeded 200 transfer jobs"),
        "{report}"
    );
    assert!(report.contains("200 jobs completed"), "{report}");
    assert!(
        report.contains("floor of durable forwarding") && report.contains("(200 in "),
        "{report}"
    );
}
