//! The push client: one signed `POST` of one [`OutboundMessage`] to the agency's URL.
//!
//! Each delivery is signed the Standard Webhooks way
//! ([`forfall_connector::standard_webhooks`]) with `webhook-id` = the message id and
//! `webhook-timestamp` = the real wall clock (the signature belongs to the transport, not to the
//! simulated time of the lifecycle), and carries `Idempotency-Key: <message id>`. One call is one
//! attempt: the job runner retries [`DeliveryError::Transient`] failures (with backoff, not before
//! `retry_after`) and dead-letters [`DeliveryError::Permanent`] ones.
//!
//! Nothing here logs the secret, a body or a national id: tracing carries the message kind, the
//! message and case ids, the status and the time taken.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use forfall_connector::standard_webhooks::{self, Secret};
use http::{HeaderMap, HeaderValue, StatusCode, header};

use super::case::OutboundMessage;

/// The most of a response body the client reads, in bytes.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// The most of an answer's body an error's `detail` quotes, in characters.
pub const MAX_DETAIL_CHARS: usize = 500;

/// The header carrying the message id, the same on every retry of the message.
pub const IDEMPOTENCY_KEY: &str = "Idempotency-Key";

/// Where and how to push.
#[derive(Debug, Clone)]
pub struct PushSettings {
    /// The agency's endpoint, `http://` or `https://`.
    pub url: String,
    /// The per-agency secret deliveries are signed with.
    pub secret: Secret,
    /// For one attempt, from connecting to the end of the answer.
    pub timeout: Duration,
}

/// The agency's answer to a delivery that succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    /// The 2xx status.
    pub status: u16,
}

/// Why a delivery did not succeed, which decides what the job runner does next.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// The settings (or the message) cannot be used: a bad URL, a message id that is no header.
    #[error("pipeline push misconfigured: {0}")]
    Config(String),
    /// 408, 425, 429, 5xx, connect errors, timeouts: try again, not before `retry_after` if the
    /// agency said (Retry-After in seconds or HTTP-date).
    #[error("the agency did not take the message, try again: {detail}")]
    Transient {
        detail: String,
        retry_after: Option<Duration>,
    },
    /// Other 4xx (and any other non-2xx, such as a redirect, which is not followed): the agency
    /// refused the message; retrying will not help. `detail` holds the status and at most
    /// [`MAX_DETAIL_CHARS`] characters of the body.
    #[error("the agency refused the message ({status}): {detail}")]
    Permanent { status: u16, detail: String },
}

impl DeliveryError {
    /// Whether the same delivery may succeed later.
    pub fn is_transient(&self) -> bool {
        matches!(self, DeliveryError::Transient { .. })
    }

    /// The agency's `Retry-After`, when it gave one.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            DeliveryError::Transient { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// Pushes messages to one agency. Cheap to clone: clones share one connection pool.
#[derive(Debug, Clone)]
pub struct PushClient {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    http: reqwest::Client,
    url: reqwest::Url,
    secret: Secret,
}

impl PushClient {
    /// A client for `settings`; a URL that is not absolute `http(s)` is [`DeliveryError::Config`].
    pub fn new(settings: PushSettings) -> Result<PushClient, DeliveryError> {
        let url = reqwest::Url::parse(settings.url.trim())
            .map_err(|e| DeliveryError::Config(format!("the agency URL is not a URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(DeliveryError::Config(
                "the agency URL must be an http:// or https:// URL with a host".into(),
            ));
        }
        if settings.timeout.is_zero() {
            return Err(DeliveryError::Config(
                "the push timeout must be above zero".into(),
            ));
        }
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout)
            // A signed POST is never re-sent elsewhere behind the caller's back.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("forfall/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| DeliveryError::Config(format!("cannot build an HTTP client: {e}")))?;
        Ok(PushClient {
            inner: Arc::new(Inner {
                http,
                url,
                secret: settings.secret,
            }),
        })
    }

    /// The agency's endpoint.
    pub fn url(&self) -> &str {
        self.inner.url.as_str()
    }

    /// One attempt (the job runner does retries). Signs with `webhook-id` = `message.id` and
    /// `webhook-timestamp` = the real wall clock, and sends `Idempotency-Key: <message.id>` and
    /// `Content-Type: application/json`. Any 2xx is success.
    pub async fn deliver(&self, message: &OutboundMessage) -> Result<Delivered, DeliveryError> {
        let id = header_value(&message.id)?;
        let body = message.to_json_bytes();
        let timestamp = Utc::now().timestamp();
        let mut headers = HeaderMap::new();
        for (name, value) in
            standard_webhooks::headers(&self.inner.secret, &message.id, timestamp, &body)
        {
            headers.insert(name, header_value(&value)?);
        }
        headers.insert(IDEMPOTENCY_KEY, id);
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );

        let started = Instant::now();
        let sent = self
            .inner
            .http
            .post(self.inner.url.clone())
            .headers(headers)
            .body(body)
            .send()
            .await;
        let answer = match sent {
            Ok(answer) => answer,
            Err(e) => {
                let error = transport_error(&e);
                tracing::warn!(
                    kind = message.kind.as_str(),
                    message_id = %message.id,
                    case_id = %message.case_id,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    error = %error,
                    "pipeline push failed"
                );
                return Err(error);
            }
        };
        let status = answer.status();
        let retry_after = forfall_connector::client::retry_after(answer.headers());
        let body = read_capped(answer).await;
        tracing::debug!(
            kind = message.kind.as_str(),
            message_id = %message.id,
            case_id = %message.case_id,
            status = status.as_u16(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "pipeline push"
        );
        classify(status, retry_after, &body)
    }
}

fn header_value(text: &str) -> Result<HeaderValue, DeliveryError> {
    if text.is_empty() || text.len() > standard_webhooks::MAX_ID_BYTES {
        return Err(DeliveryError::Config(format!(
            "a message id must be 1 to {} bytes",
            standard_webhooks::MAX_ID_BYTES
        )));
    }
    HeaderValue::from_str(text).map_err(|_| {
        DeliveryError::Config(
            "a message id must be visible ASCII text to travel as a header".into(),
        )
    })
}

/// Reads at most [`MAX_RESPONSE_BYTES`] of the answer; the rest, and a body cut short by an error,
/// are left unread (only error details use the body).
async fn read_capped(mut answer: reqwest::Response) -> Vec<u8> {
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = answer.chunk().await {
        let room = MAX_RESPONSE_BYTES - body.len();
        if chunk.len() >= room {
            body.extend_from_slice(&chunk[..room]);
            break;
        }
        body.extend_from_slice(&chunk);
    }
    body
}

fn transport_error(e: &reqwest::Error) -> DeliveryError {
    let detail = if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_connect() {
        "cannot connect".to_string()
    } else {
        // Without the URL: it may carry a token in its query.
        let mut detail = String::from("transport error");
        let mut source: Option<&dyn std::error::Error> = std::error::Error::source(e);
        while let Some(cause) = source {
            detail.push_str(": ");
            detail.push_str(&cause.to_string());
            source = cause.source();
        }
        detail
    };
    DeliveryError::Transient {
        detail,
        retry_after: None,
    }
}

/// What an answer means for the caller.
fn classify(
    status: StatusCode,
    retry_after: Option<Duration>,
    body: &[u8],
) -> Result<Delivered, DeliveryError> {
    let code = status.as_u16();
    if status.is_success() {
        return Ok(Delivered { status: code });
    }
    let detail = describe(status, body);
    match code {
        408 | 425 | 429 | 500..=599 => Err(DeliveryError::Transient {
            detail,
            retry_after,
        }),
        _ => Err(DeliveryError::Permanent {
            status: code,
            detail,
        }),
    }
}

/// `"<status> <reason>: <body excerpt>"`, one line, at most [`MAX_DETAIL_CHARS`] of the body.
fn describe(status: StatusCode, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut excerpt: String = text
        .chars()
        .take(MAX_DETAIL_CHARS)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if text.chars().count() > MAX_DETAIL_CHARS {
        excerpt.push('…');
    }
    let excerpt = excerpt.trim();
    let reason = status.canonical_reason().unwrap_or("");
    match (reason.is_empty(), excerpt.is_empty()) {
        (true, true) => status.as_u16().to_string(),
        (true, false) => format!("{}: {excerpt}", status.as_u16()),
        (false, true) => format!("{} {reason}", status.as_u16()),
        (false, false) => format!("{} {reason}: {excerpt}", status.as_u16()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(url: &str) -> PushSettings {
        PushSettings {
            url: url.into(),
            secret: Secret::generate(),
            timeout: Duration::from_secs(5),
        }
    }

    #[test]
    fn a_url_that_is_not_absolute_http_is_a_config_error() {
        for bad in [
            "",
            "not a url",
            "ftp://agency.example/cases",
            "/cases",
            "mailto:x@y.z",
        ] {
            assert!(
                matches!(
                    PushClient::new(settings(bad)),
                    Err(DeliveryError::Config(_))
                ),
                "{bad}"
            );
        }
        assert!(PushClient::new(settings("https://agency.example/cases")).is_ok());
    }

    #[test]
    fn success_is_any_2xx() {
        for code in [200, 201, 202, 204, 299] {
            let status = StatusCode::from_u16(code).unwrap();
            assert_eq!(classify(status, None, b""), Ok(Delivered { status: code }));
        }
    }

    #[test]
    fn timeouts_too_early_rate_limits_and_server_errors_are_transient_with_retry_after() {
        for code in [408, 425, 429, 500, 502, 503, 504, 599] {
            let status = StatusCode::from_u16(code).unwrap();
            let error = classify(status, Some(Duration::from_secs(7)), b"busy").unwrap_err();
            assert!(error.is_transient(), "{code}");
            assert_eq!(error.retry_after(), Some(Duration::from_secs(7)), "{code}");
        }
    }

    #[test]
    fn other_4xx_and_redirects_are_permanent_with_status_and_body() {
        for code in [400, 401, 403, 404, 409, 410, 422, 301, 307] {
            let status = StatusCode::from_u16(code).unwrap();
            let error = classify(status, None, br#"{"title":"no"}"#).unwrap_err();
            let DeliveryError::Permanent { status, detail } = error else {
                panic!("{code} should be permanent");
            };
            assert_eq!(status, code);
            assert!(detail.starts_with(&code.to_string()), "{detail}");
            assert!(detail.contains(r#"{"title":"no"}"#), "{detail}");
        }
    }

    #[test]
    fn an_error_detail_quotes_at_most_500_characters_of_the_body_on_one_line() {
        let body = format!("line one\nline two {}", "x".repeat(2000));
        let detail = describe(StatusCode::UNPROCESSABLE_ENTITY, body.as_bytes());
        assert!(detail.starts_with("422 Unprocessable Entity: line one line two"));
        assert!(!detail.contains('\n'));
        assert!(
            detail.chars().count() <= MAX_DETAIL_CHARS + 40,
            "{}",
            detail.len()
        );
        assert!(detail.ends_with('…'));
    }

    #[test]
    fn a_message_id_that_cannot_be_a_header_is_a_config_error() {
        assert!(matches!(header_value(""), Err(DeliveryError::Config(_))));
        assert!(matches!(
            header_value("a\nb"),
            Err(DeliveryError::Config(_))
        ));
        assert!(matches!(
            header_value(&"m".repeat(standard_webhooks::MAX_ID_BYTES + 1)),
            Err(DeliveryError::Config(_))
        ));
        assert!(header_value("msg_01").is_ok());
    }

    /// The worked example in `docs/pipeline.md` ("Signature"): if this fails, update the document.
    #[test]
    fn the_signature_example_in_the_pipeline_documentation_is_what_the_code_computes() {
        let secret = Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let sent_at = chrono::DateTime::parse_from_rfc3339("2026-11-28T05:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let message =
            OutboundMessage::release("msg_0193a5c1e2f07b4d", "case_0193a5c0d9e1", sent_at);
        let body = message.to_json_bytes();
        assert_eq!(
            String::from_utf8(body.clone()).unwrap(),
            r#"{"type":"case.release","id":"msg_0193a5c1e2f07b4d","case_id":"case_0193a5c0d9e1","sent_at":"2026-11-28T05:00:00Z","data":{}}"#
        );
        assert_eq!(sent_at.timestamp(), 1_795_842_000);
        assert_eq!(
            standard_webhooks::sign(&secret, &message.id, 1_795_842_000, &body),
            "v1,8grjH5I7bLJEbI3Eeg6WkZ81cllpV/GnGI0S1vrBEoM="
        );
    }

    #[test]
    fn settings_debug_never_shows_the_secret() {
        let settings = settings("https://agency.example/cases");
        let key = settings.secret.to_string();
        let shown = format!("{settings:?}");
        assert!(!shown.contains(&key["whsec_".len()..]), "{shown}");
    }
}
