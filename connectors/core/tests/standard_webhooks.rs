//! Standard Webhooks verification against the specification's own test vector, and each way a
//! delivery can fail.

use chrono::{DateTime, Utc};
use forfall_connector::standard_webhooks::{
    DEFAULT_TOLERANCE, HEADER_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP, Secret, SignatureError,
    VerifiedDelivery, headers, sign, verify,
};
use http::HeaderMap;

// The official test vector (standard-webhooks, libraries' shared tests).
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
const TIMESTAMP: i64 = 1614265330;
const PAYLOAD: &[u8] = br#"{"test": 2432232314}"#;
const SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

fn secret() -> Secret {
    Secret::parse(SECRET).unwrap()
}

fn sent_at() -> DateTime<Utc> {
    DateTime::from_timestamp(TIMESTAMP, 0).unwrap()
}

fn vector_headers(signature: &str) -> HeaderMap {
    let mut map = HeaderMap::new();
    map.insert(HEADER_ID, ID.parse().unwrap());
    map.insert(HEADER_TIMESTAMP, TIMESTAMP.to_string().parse().unwrap());
    map.insert(HEADER_SIGNATURE, signature.parse().unwrap());
    map
}

fn check(headers: &HeaderMap, body: &[u8]) -> Result<VerifiedDelivery, SignatureError> {
    verify(&secret(), headers, body, sent_at(), DEFAULT_TOLERANCE)
}

#[test]
fn signing_the_official_vector_gives_the_official_signature() {
    assert_eq!(sign(&secret(), ID, TIMESTAMP, PAYLOAD), SIGNATURE);
}

#[test]
fn the_official_vector_verifies() {
    let delivery = check(&vector_headers(SIGNATURE), PAYLOAD).unwrap();
    assert_eq!(delivery.id, ID);
    assert_eq!(delivery.timestamp, sent_at());
}

#[test]
fn the_three_headers_carry_id_timestamp_and_signature() {
    let made = headers(&secret(), ID, TIMESTAMP, PAYLOAD);
    assert_eq!(
        made,
        [
            ("webhook-id", ID.to_string()),
            ("webhook-timestamp", TIMESTAMP.to_string()),
            ("webhook-signature", SIGNATURE.to_string()),
        ]
    );
}

#[test]
fn a_tampered_body_is_refused() {
    let error = check(&vector_headers(SIGNATURE), br#"{"test": 2432232315}"#).unwrap_err();
    assert_eq!(error, SignatureError::Mismatch);
}

#[test]
fn a_tampered_id_is_refused() {
    let mut headers = vector_headers(SIGNATURE);
    headers.insert(HEADER_ID, "msg_other".parse().unwrap());
    assert_eq!(
        check(&headers, PAYLOAD).unwrap_err(),
        SignatureError::Mismatch
    );
}

#[test]
fn a_signature_made_with_another_secret_is_refused() {
    let other = Secret::generate();
    let forged = sign(&other, ID, TIMESTAMP, PAYLOAD);
    let error = check(&vector_headers(&forged), PAYLOAD).unwrap_err();
    assert_eq!(error, SignatureError::Mismatch);
}

#[test]
fn a_stale_timestamp_is_refused_even_with_a_valid_signature() {
    let later = sent_at() + chrono::Duration::minutes(6);
    let error = verify(
        &secret(),
        &vector_headers(SIGNATURE),
        PAYLOAD,
        later,
        DEFAULT_TOLERANCE,
    )
    .unwrap_err();
    assert!(
        matches!(
            error,
            SignatureError::Stale {
                age_seconds: 360,
                ..
            }
        ),
        "{error}"
    );
}

#[test]
fn a_future_timestamp_is_refused_even_with_a_valid_signature() {
    let earlier = sent_at() - chrono::Duration::minutes(6);
    let error = verify(
        &secret(),
        &vector_headers(SIGNATURE),
        PAYLOAD,
        earlier,
        DEFAULT_TOLERANCE,
    )
    .unwrap_err();
    assert!(
        matches!(
            error,
            SignatureError::Future {
                ahead_seconds: 360,
                ..
            }
        ),
        "{error}"
    );
}

#[test]
fn each_missing_header_is_named() {
    for name in [HEADER_ID, HEADER_TIMESTAMP, HEADER_SIGNATURE] {
        let mut headers = vector_headers(SIGNATURE);
        headers.remove(name);
        let error = check(&headers, PAYLOAD).unwrap_err();
        assert_eq!(error, SignatureError::MissingHeader(name));
        assert!(error.to_string().contains(name), "{error}");
    }
}

#[test]
fn an_empty_header_counts_as_missing() {
    let mut headers = vector_headers(SIGNATURE);
    headers.insert(HEADER_ID, "".parse().unwrap());
    assert_eq!(
        check(&headers, PAYLOAD).unwrap_err(),
        SignatureError::MissingHeader(HEADER_ID)
    );
}

#[test]
fn multiple_signatures_pass_when_one_is_valid() {
    let stale_key = sign(&Secret::generate(), ID, TIMESTAMP, PAYLOAD);
    let headers = vector_headers(&format!("{stale_key} {SIGNATURE}"));
    assert!(check(&headers, PAYLOAD).is_ok());
    let headers = vector_headers(&format!("{SIGNATURE} {stale_key}"));
    assert!(check(&headers, PAYLOAD).is_ok());
}

#[test]
fn multiple_signatures_fail_when_none_is_valid() {
    let one = sign(&Secret::generate(), ID, TIMESTAMP, PAYLOAD);
    let two = sign(&Secret::generate(), ID, TIMESTAMP, PAYLOAD);
    let headers = vector_headers(&format!("{one} {two}"));
    assert_eq!(
        check(&headers, PAYLOAD).unwrap_err(),
        SignatureError::Mismatch
    );
}

#[test]
fn an_unknown_version_is_ignored() {
    // The right bytes under another version do not count …
    let other_version = SIGNATURE.replacen("v1,", "v1a,", 1);
    let headers = vector_headers(&other_version);
    assert_eq!(
        check(&headers, PAYLOAD).unwrap_err(),
        SignatureError::NoSignature
    );
    // … and do not stop a valid v1 entry beside them from passing.
    let headers = vector_headers(&format!("{other_version} v2,abc {SIGNATURE}"));
    assert!(check(&headers, PAYLOAD).is_ok());
}

#[test]
fn a_verification_error_never_reveals_the_secret_or_the_expected_signature() {
    let errors = [
        check(&vector_headers("v1,AAAA"), PAYLOAD).unwrap_err(),
        check(&vector_headers(SIGNATURE), b"tampered").unwrap_err(),
    ];
    for error in errors {
        let message = format!("{error} {error:?}");
        assert!(!message.contains("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"));
        assert!(!message.contains("g0hM9SsE"));
    }
}
