//! Pushed events through the connector: verified the Standard Webhooks way, then read into
//! changes.

mod common;

use chrono::{DateTime, Duration, Utc};
use common::{document, invoice};
use forfall_connector::client::HttpSettings;
use forfall_connector::standard_webhooks::{self, Secret};
use forfall_connector::{Connector, ConnectorError, Delivery, RemoteChange, RemoteId};
use forfall_generic::{GenericConnector, WebhookEvent, event_json, parse_event};
use http::HeaderMap;
use serde_json::json;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn connector() -> GenericConnector {
    GenericConnector::from_credentials(&json!({}), HttpSettings::default()).unwrap()
}

fn now() -> DateTime<Utc> {
    "2026-11-23T10:00:00Z".parse().unwrap()
}

/// A delivery signed with the test secret, sent at `at`.
fn signed(id: &str, at: DateTime<Utc>, body: &[u8]) -> HeaderMap {
    let secret = Secret::parse(SECRET).unwrap();
    let mut headers = HeaderMap::new();
    for (name, value) in standard_webhooks::headers(&secret, id, at.timestamp(), body) {
        headers.insert(name, value.parse().unwrap());
    }
    headers
}

fn updated_body() -> Vec<u8> {
    json!({"type": "invoice.updated", "timestamp": "2026-11-23T09:59:58Z", "data": document()})
        .to_string()
        .into_bytes()
}

fn verify(headers: &HeaderMap, body: &[u8]) -> Result<Delivery, ConnectorError> {
    connector().verify_webhook(SECRET.as_bytes(), headers, body, now())
}

#[test]
fn a_valid_delivery_verifies_and_gives_its_id_for_replay_protection() {
    let body = updated_body();
    let delivery = verify(&signed("msg_1", now(), &body), &body).unwrap();
    assert_eq!(delivery.id.as_deref(), Some("msg_1"));
}

#[test]
fn a_valid_update_reads_into_a_snapshot_of_the_invoice() {
    let body = updated_body();
    let changes = connector()
        .parse_webhook(&signed("msg_1", now(), &body), &body)
        .unwrap();
    let expected = forfall_generic::parse_invoice(&document()).unwrap();
    assert_eq!(
        changes,
        vec![RemoteChange::InvoiceSnapshot(Box::new(expected))]
    );
}

#[test]
fn a_deletion_reads_into_a_deleted_change() {
    let body = br#"{"type": "invoice.deleted", "timestamp": "2026-11-23T10:00:00Z", "data": {"id": "INV-1001"}}"#;
    let changes = connector().parse_webhook(&HeaderMap::new(), body).unwrap();
    assert_eq!(
        changes,
        vec![RemoteChange::InvoiceDeleted(RemoteId("INV-1001".into()))]
    );
}

#[test]
fn a_tampered_body_is_a_bad_signature() {
    let body = updated_body();
    let headers = signed("msg_1", now(), &body);
    let tampered = String::from_utf8(body).unwrap().replace("12500.00", "1.00");
    let error = verify(&headers, tampered.as_bytes()).unwrap_err();
    assert!(matches!(error, ConnectorError::BadSignature(_)), "{error}");
}

#[test]
fn a_delivery_older_than_five_minutes_is_a_bad_signature() {
    let body = updated_body();
    let headers = signed("msg_1", now() - Duration::minutes(6), &body);
    let error = verify(&headers, &body).unwrap_err();
    match error {
        ConnectorError::BadSignature(message) => assert!(message.contains("stale"), "{message}"),
        other => panic!("expected BadSignature, got {other}"),
    }
    let within = signed("msg_1", now() - Duration::minutes(4), &body);
    assert!(verify(&within, &body).is_ok());
}

#[test]
fn a_missing_header_is_a_bad_signature_naming_it() {
    let body = updated_body();
    let mut headers = signed("msg_1", now(), &body);
    headers.remove("webhook-signature");
    match verify(&headers, &body).unwrap_err() {
        ConnectorError::BadSignature(message) => {
            assert!(message.contains("webhook-signature"), "{message}")
        }
        other => panic!("expected BadSignature, got {other}"),
    }
}

#[test]
fn a_delivery_signed_with_another_secret_is_a_bad_signature() {
    let body = updated_body();
    let headers = signed("msg_1", now(), &body);
    let other = Secret::generate().to_string();
    let error = connector()
        .verify_webhook(other.as_bytes(), &headers, &body, now())
        .unwrap_err();
    assert!(matches!(error, ConnectorError::BadSignature(_)), "{error}");
}

#[test]
fn an_unusable_connection_secret_is_a_config_error_not_a_bad_signature() {
    let body = updated_body();
    let headers = signed("msg_1", now(), &body);
    for secret in [
        &b"whsec_"[..],
        b"whsec_c2hvcnQ=",
        b"\xff\xfe",
        b"not base64!",
    ] {
        let error = connector()
            .verify_webhook(secret, &headers, &body, now())
            .unwrap_err();
        assert!(matches!(error, ConnectorError::Config(_)), "{error}");
    }
}

#[test]
fn a_bad_document_in_an_event_is_malformed_naming_the_field_path() {
    let mut doc = document();
    doc["customer"]["kind"] = json!("company");
    let body = json!({"type": "invoice.updated", "timestamp": "2026-11-23T10:00:00Z", "data": doc})
        .to_string();
    match connector()
        .parse_webhook(&HeaderMap::new(), body.as_bytes())
        .unwrap_err()
    {
        ConnectorError::Malformed { detail } => {
            assert!(detail.starts_with("data.customer.kind:"), "{detail}")
        }
        other => panic!("expected Malformed, got {other}"),
    }
}

#[test]
fn a_bad_envelope_is_malformed_naming_the_field() {
    let cases = [
        (&b"{not json"[..], "not JSON"),
        (br#"{"type": "invoice.paid", "timestamp": "2026-11-23T10:00:00Z", "data": {}}"#, "type:"),
        (br#"{"type": "invoice.deleted", "timestamp": "yesterday", "data": {"id": "1"}}"#, "timestamp:"),
        (br#"{"type": "invoice.deleted", "timestamp": "2026-11-23T10:00:00Z"}"#, "data:"),
        (br#"{"type": "invoice.deleted", "timestamp": "2026-11-23T10:00:00Z", "data": {"id": "1", "why": "x"}}"#, "data.why:"),
        (br#"{"type": "invoice.deleted", "timestamp": "2026-11-23T10:00:00Z", "data": {"id": "1"}, "extra": 1}"#, "extra:"),
    ];
    for (body, expected) in cases {
        match connector()
            .parse_webhook(&HeaderMap::new(), body)
            .unwrap_err()
        {
            ConnectorError::Malformed { detail } => {
                assert!(detail.contains(expected), "{expected}: {detail}")
            }
            other => panic!("expected Malformed, got {other}"),
        }
    }
}

#[test]
fn created_is_read_like_updated() {
    let body =
        json!({"type": "invoice.created", "timestamp": "2026-11-23T10:00:00Z", "data": document()})
            .to_string();
    let changes = connector()
        .parse_webhook(&HeaderMap::new(), body.as_bytes())
        .unwrap();
    assert!(matches!(changes[..], [RemoteChange::InvoiceSnapshot(_)]));
}

#[test]
fn events_round_trip_through_their_json() {
    for event in [
        WebhookEvent::Updated(invoice("INV-1", "1000.00")),
        WebhookEvent::Deleted(RemoteId("INV-2".into())),
    ] {
        let body = event_json(&event, now()).to_string();
        let read = parse_event(body.as_bytes()).unwrap();
        assert_eq!(read.event, event);
        assert_eq!(read.timestamp, now());
    }
}
