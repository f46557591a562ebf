//! Standard Webhooks signatures (<https://www.standardwebhooks.com/>): signing and verification.
//!
//! A delivery carries three headers:
//!
//! - `webhook-id`: the delivery's id, the same on every retry of it;
//! - `webhook-timestamp`: when it was sent, as whole seconds since 1970-01-01T00:00:00Z;
//! - `webhook-signature`: one or more space-separated `v1,<base64>` entries, each the
//!   HMAC-SHA256 of `{id}.{timestamp}.{body}` under the shared secret (several entries let a
//!   sender roll its secret: any one that matches is enough).
//!
//! [`verify`] checks the headers, the freshness of the timestamp (within a tolerance of the
//! receiver's clock, [`DEFAULT_TOLERANCE`] by default) and the signature, compared in constant
//! time. It does not remember ids: replay protection within the tolerance is the receiver's job
//! (the gateway ignores a delivery id it has seen). [`sign`] and [`headers`] are the sender's
//! side.
//!
//! A [`Secret`] is written `whsec_<base64 of the key>`. Its `Debug` never shows the key, and it
//! deliberately has no `Display`, so that `{}` in a log line cannot print it: only an explicit
//! [`Secret::to_string`] does. No error message of this module contains the secret or an expected
//! signature.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use base64::Engine;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use chrono::{DateTime, TimeDelta, Utc};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// The delivery's id header.
pub const HEADER_ID: &str = "webhook-id";
/// The delivery's timestamp header (seconds since 1970).
pub const HEADER_TIMESTAMP: &str = "webhook-timestamp";
/// The delivery's signature header.
pub const HEADER_SIGNATURE: &str = "webhook-signature";

/// How far a delivery's timestamp may be from the receiver's clock, either way.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(5 * 60);

/// The prefix of a secret's written form.
pub const SECRET_PREFIX: &str = "whsec_";

/// The shortest key accepted, in bytes. The Standard Webhooks specification recommends 24 to 64
/// bytes (its own test vector uses 24); 16 bytes (128 bits) is the floor below which an HMAC key
/// is weak, and keeps secrets issued by platforms with shorter keys usable. [`Secret::generate`]
/// makes 32-byte keys.
pub const MIN_SECRET_BYTES: usize = 16;

/// The size of the keys [`Secret::generate`] makes, in bytes.
pub const GENERATED_SECRET_BYTES: usize = 32;

/// The longest `webhook-id` accepted, in bytes: the receiver remembers ids, so they are bounded.
pub const MAX_ID_BYTES: usize = 256;

/// The signature scheme this module signs with and verifies; other versions are ignored.
const VERSION: &str = "v1";

/// Standard base64, padding optional when reading, written with padding.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

type HmacSha256 = Hmac<Sha256>;

/// A shared signing key.
#[derive(Clone)]
pub struct Secret {
    key: Vec<u8>,
}

/// Why a secret was refused. Never contains the secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("the webhook secret is empty")]
    Empty,
    #[error("the webhook secret is not valid base64 (expected `whsec_` and standard base64)")]
    NotBase64,
    #[error("the webhook secret's key is {len} bytes; at least {MIN_SECRET_BYTES} are required")]
    TooShort { len: usize },
}

impl Secret {
    /// Reads `whsec_<base64>`, or the base64 alone. Surrounding whitespace (a trailing newline
    /// from a file) is ignored; base64 padding is optional.
    pub fn parse(text: &str) -> Result<Secret, SecretError> {
        let text = text.trim();
        let encoded = text.strip_prefix(SECRET_PREFIX).unwrap_or(text);
        if encoded.is_empty() {
            return Err(SecretError::Empty);
        }
        let key = BASE64.decode(encoded).map_err(|_| SecretError::NotBase64)?;
        Secret::from_bytes(&key)
    }

    /// A secret from its raw key, at least [`MIN_SECRET_BYTES`] long.
    pub fn from_bytes(key: &[u8]) -> Result<Secret, SecretError> {
        if key.is_empty() {
            return Err(SecretError::Empty);
        }
        if key.len() < MIN_SECRET_BYTES {
            return Err(SecretError::TooShort { len: key.len() });
        }
        Ok(Secret { key: key.to_vec() })
    }

    /// A new random secret of [`GENERATED_SECRET_BYTES`] bytes, from the thread's
    /// cryptographically secure generator (seeded by the operating system).
    pub fn generate() -> Secret {
        let key: [u8; GENERATED_SECRET_BYTES] = rand::random();
        Secret { key: key.to_vec() }
    }

    /// The written form, `whsec_<base64>`, to hand to the other side. Deliberately not
    /// `Display`: a secret is only ever printed on purpose.
    #[allow(clippy::inherent_to_string)]
    pub fn to_string(&self) -> String {
        format!("{SECRET_PREFIX}{}", BASE64.encode(&self.key))
    }

    /// The key's length in bytes.
    pub fn len(&self) -> usize {
        self.key.len()
    }

    /// Always false: an empty secret cannot be made.
    pub fn is_empty(&self) -> bool {
        self.key.is_empty()
    }

    /// The HMAC over `{id}.{timestamp}.{body}`, not yet finalised.
    fn mac(&self, id: &str, timestamp: i64, body: &[u8]) -> HmacSha256 {
        let mut mac = match HmacSha256::new_from_slice(&self.key) {
            Ok(mac) => mac,
            // HMAC takes a key of any length (RFC 2104: a long key is hashed, a short one padded).
            Err(_) => unreachable!("HMAC accepts keys of every length"),
        };
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret(<{} bytes, redacted>)", self.key.len())
    }
}

impl FromStr for Secret {
    type Err = SecretError;

    fn from_str(text: &str) -> Result<Secret, SecretError> {
        Secret::parse(text)
    }
}

/// The `webhook-signature` value for a delivery: `v1,<base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}"))>`.
pub fn sign(secret: &Secret, id: &str, timestamp: i64, body: &[u8]) -> String {
    let tag = secret.mac(id, timestamp, body).finalize().into_bytes();
    format!("{VERSION},{}", BASE64.encode(tag))
}

/// The three headers of a signed delivery, in the order `webhook-id`, `webhook-timestamp`,
/// `webhook-signature`.
pub fn headers(
    secret: &Secret,
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> [(&'static str, String); 3] {
    [
        (HEADER_ID, id.to_string()),
        (HEADER_TIMESTAMP, timestamp.to_string()),
        (HEADER_SIGNATURE, sign(secret, id, timestamp, body)),
    ]
}

/// A delivery whose signature and timestamp checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedDelivery {
    /// The `webhook-id`: the same on every retry of the delivery. Remember it to refuse replays.
    pub id: String,
    /// The `webhook-timestamp`.
    pub timestamp: DateTime<Utc>,
}

/// Which check a delivery failed. Never contains the secret or the expected signature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the {0} header is missing or empty")]
    MissingHeader(&'static str),
    #[error("the {0} header is not visible ASCII text")]
    HeaderNotText(&'static str),
    #[error("the webhook-id header is longer than {MAX_ID_BYTES} bytes")]
    IdTooLong,
    #[error("the webhook-timestamp header is not a whole number of seconds since 1970")]
    BadTimestamp,
    #[error(
        "the delivery is stale: its timestamp is {age_seconds} s old, beyond the tolerance of {tolerance_seconds} s"
    )]
    Stale {
        age_seconds: i64,
        tolerance_seconds: u64,
    },
    #[error(
        "the delivery's timestamp is {ahead_seconds} s in the future, beyond the tolerance of {tolerance_seconds} s"
    )]
    Future {
        ahead_seconds: i64,
        tolerance_seconds: u64,
    },
    #[error("the webhook-signature header has no v1 signature")]
    NoSignature,
    #[error("no v1 signature in the webhook-signature header matches the delivery")]
    Mismatch,
}

/// Checks a delivery: the three headers are present, the timestamp is within `tolerance` of
/// `now` either way, and one `v1` entry of the signature header is the HMAC of the delivery
/// (entries of other versions are ignored; the comparison is in constant time).
pub fn verify(
    secret: &Secret,
    headers: &http::HeaderMap,
    body: &[u8],
    now: DateTime<Utc>,
    tolerance: Duration,
) -> Result<VerifiedDelivery, SignatureError> {
    let id = header(headers, HEADER_ID)?;
    if id.len() > MAX_ID_BYTES {
        return Err(SignatureError::IdTooLong);
    }
    let timestamp_text = header(headers, HEADER_TIMESTAMP)?;
    let signatures = header(headers, HEADER_SIGNATURE)?;

    if !timestamp_text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SignatureError::BadTimestamp);
    }
    let timestamp: i64 = timestamp_text
        .parse()
        .map_err(|_| SignatureError::BadTimestamp)?;
    let sent = DateTime::from_timestamp(timestamp, 0).ok_or(SignatureError::BadTimestamp)?;
    let allowed = TimeDelta::from_std(tolerance).unwrap_or(TimeDelta::MAX);
    let age = now.signed_duration_since(sent);
    if age > allowed {
        return Err(SignatureError::Stale {
            age_seconds: age.num_seconds(),
            tolerance_seconds: tolerance.as_secs(),
        });
    }
    if -age > allowed {
        return Err(SignatureError::Future {
            ahead_seconds: (-age).num_seconds(),
            tolerance_seconds: tolerance.as_secs(),
        });
    }

    let mac = secret.mac(id, timestamp, body);
    let mut saw_v1 = false;
    for entry in signatures.split(' ').filter(|entry| !entry.is_empty()) {
        let Some((version, encoded)) = entry.split_once(',') else {
            continue;
        };
        if version != VERSION {
            continue;
        }
        saw_v1 = true;
        let Ok(candidate) = BASE64.decode(encoded) else {
            continue;
        };
        if mac.clone().verify_slice(&candidate).is_ok() {
            return Ok(VerifiedDelivery {
                id: id.to_string(),
                timestamp: sent,
            });
        }
    }
    Err(if saw_v1 {
        SignatureError::Mismatch
    } else {
        SignatureError::NoSignature
    })
}

fn header<'a>(headers: &'a http::HeaderMap, name: &'static str) -> Result<&'a str, SignatureError> {
    let value = headers
        .get(name)
        .ok_or(SignatureError::MissingHeader(name))?
        .to_str()
        .map_err(|_| SignatureError::HeaderNotText(name))?;
    if value.trim().is_empty() {
        return Err(SignatureError::MissingHeader(name));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> Secret {
        Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap()
    }

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(seconds, 0).unwrap()
    }

    fn signed(secret: &Secret, id: &str, timestamp: i64, body: &[u8]) -> http::HeaderMap {
        let mut map = http::HeaderMap::new();
        for (name, value) in headers(secret, id, timestamp, body) {
            map.insert(name, value.parse().unwrap());
        }
        map
    }

    #[test]
    fn a_secret_reads_with_or_without_prefix_and_padding_and_writes_with_prefix() {
        let with = secret();
        let without = Secret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(with.to_string(), without.to_string());
        assert_eq!(with.to_string(), "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        assert_eq!(with.len(), 24);
        // 16 bytes: base64 with padding "==", accepted with and without it.
        let padded = Secret::from_bytes(&[7u8; 16]).unwrap().to_string();
        assert!(padded.ends_with("=="));
        let unpadded = padded.trim_end_matches('=');
        assert_eq!(Secret::parse(unpadded).unwrap().to_string(), padded);
        assert_eq!(
            Secret::parse(&format!("  {padded}\n")).unwrap().to_string(),
            padded
        );
    }

    #[test]
    fn an_empty_short_or_non_base64_secret_is_refused() {
        assert_eq!(Secret::parse("").unwrap_err(), SecretError::Empty);
        assert_eq!(Secret::parse("whsec_").unwrap_err(), SecretError::Empty);
        assert_eq!(
            Secret::parse("whsec_not base64!").unwrap_err(),
            SecretError::NotBase64
        );
        assert_eq!(
            Secret::parse("whsec_c2hvcnQ=").unwrap_err(),
            SecretError::TooShort { len: 5 }
        );
        assert_eq!(
            Secret::from_bytes(&[1u8; 15]).unwrap_err(),
            SecretError::TooShort { len: 15 }
        );
        assert!(Secret::from_bytes(&[1u8; MIN_SECRET_BYTES]).is_ok());
    }

    #[test]
    fn debug_never_shows_the_key() {
        let shown = format!("{:?}", secret());
        assert!(
            !shown.contains("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
            "{shown}"
        );
        assert!(shown.contains("redacted"));
    }

    #[test]
    fn generated_secrets_are_32_random_bytes_and_read_back() {
        let one = Secret::generate();
        let two = Secret::generate();
        assert_eq!(one.len(), GENERATED_SECRET_BYTES);
        assert_ne!(one.to_string(), two.to_string());
        assert!(one.to_string().starts_with("whsec_"));
        assert_eq!(
            Secret::parse(&one.to_string()).unwrap().to_string(),
            one.to_string()
        );
    }

    #[test]
    fn what_is_signed_verifies_and_gives_back_id_and_time() {
        let secret = Secret::generate();
        let headers = signed(&secret, "msg_1", 1_800_000_000, b"{}");
        let delivery = verify(
            &secret,
            &headers,
            b"{}",
            at(1_800_000_000),
            DEFAULT_TOLERANCE,
        )
        .unwrap();
        assert_eq!(delivery.id, "msg_1");
        assert_eq!(delivery.timestamp, at(1_800_000_000));
    }

    #[test]
    fn a_timestamp_exactly_at_the_tolerance_passes_and_one_second_more_fails() {
        let secret = secret();
        let headers = signed(&secret, "msg_1", 1_000, b"x");
        let ok = |now| verify(&secret, &headers, b"x", at(now), DEFAULT_TOLERANCE);
        assert!(ok(1_300).is_ok());
        assert!(ok(700).is_ok());
        assert_eq!(
            ok(1_301).unwrap_err(),
            SignatureError::Stale {
                age_seconds: 301,
                tolerance_seconds: 300
            }
        );
        assert_eq!(
            ok(699).unwrap_err(),
            SignatureError::Future {
                ahead_seconds: 301,
                tolerance_seconds: 300
            }
        );
    }

    #[test]
    fn a_timestamp_that_is_not_whole_seconds_is_refused() {
        let secret = secret();
        for bad in [
            "1614265330.5",
            "-5",
            "+1614265330",
            "soon",
            "99999999999999999999",
        ] {
            let mut headers = signed(&secret, "msg_1", 1_614_265_330, b"x");
            headers.insert(HEADER_TIMESTAMP, bad.parse().unwrap());
            assert_eq!(
                verify(
                    &secret,
                    &headers,
                    b"x",
                    at(1_614_265_330),
                    DEFAULT_TOLERANCE
                )
                .unwrap_err(),
                SignatureError::BadTimestamp,
                "{bad}"
            );
        }
    }

    #[test]
    fn an_undecodable_entry_is_skipped_and_a_later_valid_one_passes() {
        let secret = secret();
        let mut headers = signed(&secret, "msg_1", 1_000, b"x");
        let good = sign(&secret, "msg_1", 1_000, b"x");
        headers.insert(
            HEADER_SIGNATURE,
            format!("v1,%%%  nocomma {good}").parse().unwrap(),
        );
        assert!(verify(&secret, &headers, b"x", at(1_000), DEFAULT_TOLERANCE).is_ok());
    }

    #[test]
    fn an_overlong_id_is_refused() {
        let secret = secret();
        let id = "m".repeat(MAX_ID_BYTES + 1);
        let headers = signed(&secret, &id, 1_000, b"x");
        assert_eq!(
            verify(&secret, &headers, b"x", at(1_000), DEFAULT_TOLERANCE).unwrap_err(),
            SignatureError::IdTooLong
        );
    }

    #[test]
    fn error_messages_never_carry_the_secret_or_the_expected_signature() {
        let secret = secret();
        let expected = sign(&secret, "msg_1", 1_000, b"x");
        let mut headers = signed(&secret, "msg_1", 1_000, b"x");
        headers.insert(HEADER_SIGNATURE, "v1,AAAA".parse().unwrap());
        let error = verify(&secret, &headers, b"x", at(1_000), DEFAULT_TOLERANCE).unwrap_err();
        let message = error.to_string();
        assert_eq!(error, SignatureError::Mismatch);
        assert!(!message.contains(&expected[3..]));
        assert!(!message.contains("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"));
    }
}
