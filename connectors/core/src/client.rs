//! The HTTP layer every connector uses, so that a connector is only a mapping module on top:
//!
//! - a timeout on every request, and a cap on the size of every answer;
//! - retries for transient failures only (timeouts, connection errors, 408, 429, 5xx), exponential
//!   with full jitter and a cap (`backon`), honouring `Retry-After` (seconds or an HTTP date);
//! - a client-side rate limiter per connection (`governor`), and a pause when the platform's own
//!   rate-limit headers say the budget is spent;
//! - one re-authentication on 401 (the session or access token expired), then the request again;
//! - tracing of method, path, status, attempt and time: never the query, a header or a body, which
//!   may carry tokens or personal ids.

use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use backon::{ExponentialBuilder, Retryable};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use http::{HeaderMap, Method, StatusCode};

use crate::ConnectorError;

/// Reads a platform's error body into a one-line explanation.
pub type ErrorDetail = fn(&[u8]) -> Option<String>;

/// How a connection talks to its platform. Defaults suit the platforms' published limits.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// For one request, from sending to the last byte of the answer.
    pub timeout: Duration,
    /// Attempts in all, the first included.
    pub max_attempts: usize,
    /// The first retry waits up to this long …
    pub min_delay: Duration,
    /// … and no backoff waits longer than this.
    pub max_delay: Duration,
    /// A `Retry-After` (or the platform's rate-limit reset) up to this long is waited out before
    /// the next attempt. A longer one ends the call at once with `RateLimited` carrying the wait,
    /// for the caller to honour (the job runner does); a call is never retried early. Kept well
    /// below the job and pass leases (300 s, 120 s): a worker waiting longer in-process could see
    /// its job taken over by another instance.
    pub max_retry_after: Duration,
    /// Answers larger than this are refused (`Malformed`), never read whole into memory.
    pub max_body_bytes: usize,
    /// Requests per second this connection may send.
    pub requests_per_second: NonZeroU32,
    /// The platform's "requests left" and "seconds until reset" headers, if it sends them.
    pub rate_limit_headers: Option<(&'static str, &'static str)>,
    /// Reads the platform's own error body into a one-line explanation (its code and message,
    /// never personal data); without it errors carry a short excerpt of the body.
    pub error_detail: Option<ErrorDetail>,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            timeout: Duration::from_secs(30),
            max_attempts: 6,
            min_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(60),
            max_retry_after: Duration::from_secs(60),
            max_body_bytes: 16 * 1024 * 1024,
            requests_per_second: NonZeroU32::new(10).unwrap_or(NonZeroU32::MIN),
            rate_limit_headers: None,
            error_detail: None,
        }
    }
}

/// Adds a connection's credentials to a request, and renews them when the platform refuses them.
#[async_trait::async_trait]
pub trait Authenticator: Send + Sync {
    async fn authorize(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::RequestBuilder, ConnectorError>;
    /// Called once after a 401: get a fresh session or access token.
    async fn renew(&self) -> Result<(), ConnectorError>;
}

/// A request, kept so that it can be sent again.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: Method,
    pub url: reqwest::Url,
    pub headers: HeaderMap,
    pub body: Option<Vec<u8>>,
    /// Whether sending it twice does no harm. A request that is not (a payment on a platform
    /// that takes no idempotency key) is sent once, and again only after a 401 with renewed
    /// credentials (refused before the platform acted); any other failure goes back to the
    /// caller, who must look at the platform before trying again.
    pub repeatable: bool,
}

impl Request {
    pub fn get(url: reqwest::Url) -> Request {
        Request {
            method: Method::GET,
            url,
            headers: HeaderMap::new(),
            body: None,
            repeatable: true,
        }
    }

    /// Marks the request as one that must not be repeated blindly (see [`Request::repeatable`]).
    pub fn not_repeatable(mut self) -> Request {
        self.repeatable = false;
        self
    }

    pub fn with_json(mut self, method: Method, body: Vec<u8>) -> Request {
        self.method = method;
        self.headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        self.body = Some(body);
        self
    }
}

/// A successful answer, read whole (within the cap).
#[derive(Debug, Clone)]
pub struct Response {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Response {
    /// The body as `T`; an answer that does not fit is `Malformed` with a short excerpt.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, ConnectorError> {
        serde_json::from_slice(&self.body).map_err(|e| ConnectorError::Malformed {
            detail: format!("{e}; the answer began: {}", excerpt(&self.body)),
        })
    }
}

/// The first 200 characters of a body, for error messages and dead letters.
pub fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut cut: String = text.chars().take(200).collect();
    if text.chars().count() > 200 {
        cut.push('…');
    }
    cut
}

/// One connection's HTTP client.
pub struct PlatformClient {
    http: reqwest::Client,
    settings: HttpSettings,
    limiter: DefaultDirectRateLimiter,
    /// Set from the platform's rate-limit headers: send nothing before this instant.
    not_before: Mutex<Option<Instant>>,
}

impl PlatformClient {
    pub fn new(settings: HttpSettings) -> Result<PlatformClient, ConnectorError> {
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .user_agent(concat!("forfall/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ConnectorError::Transient(format!("cannot build an HTTP client: {e}")))?;
        Ok(PlatformClient {
            http,
            limiter: RateLimiter::direct(Quota::per_second(settings.requests_per_second)),
            settings,
            not_before: Mutex::new(None),
        })
    }

    pub fn settings(&self) -> &HttpSettings {
        &self.settings
    }

    /// Sends `request`, retrying what may succeed later and renewing the credentials once on 401.
    pub async fn send(
        &self,
        request: &Request,
        auth: &dyn Authenticator,
    ) -> Result<Response, ConnectorError> {
        match self.send_with_retries(request, auth).await {
            Err(ConnectorError::Unauthorized(_)) => {
                tracing::info!(
                    path = request.url.path(),
                    "credentials refused; renewing once"
                );
                auth.renew().await?;
                self.send_with_retries(request, auth).await
            }
            other => other,
        }
    }

    async fn send_with_retries(
        &self,
        request: &Request,
        auth: &dyn Authenticator,
    ) -> Result<Response, ConnectorError> {
        let backoff = ExponentialBuilder::default()
            .with_min_delay(self.settings.min_delay)
            .with_max_delay(self.settings.max_delay)
            .with_max_times(self.settings.max_attempts.saturating_sub(1));
        let attempt = std::sync::atomic::AtomicUsize::new(0);
        (|| async {
            let n = attempt.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            self.send_once(request, auth, n).await
        })
        .retry(backoff)
        .when(|error| {
            // A request that must not repeat waits in-process for nothing: a 429 goes back to
            // the job, which defers it (its lease could run out while it waited here).
            request.repeatable && error.is_retryable()
        })
        .adjust(|error, delay| retry_delay(error, delay, self.settings.max_retry_after))
        .notify(|error, delay| {
            tracing::warn!(path = request.url.path(), error = %error, ?delay, "retrying");
        })
        .await
    }

    async fn send_once(
        &self,
        request: &Request,
        auth: &dyn Authenticator,
        attempt: usize,
    ) -> Result<Response, ConnectorError> {
        self.wait_for_platform_budget().await;
        self.limiter.until_ready().await;
        let started = Instant::now();
        let mut builder = self
            .http
            .request(request.method.clone(), request.url.clone())
            .headers(request.headers.clone());
        if let Some(body) = &request.body {
            builder = builder.body(body.clone());
        }
        let builder = auth.authorize(builder).await?;
        let answer = builder.send().await.map_err(transport_error)?;
        let status = answer.status();
        let headers = answer.headers().clone();
        self.note_platform_budget(&headers);
        let body = self.read_capped(answer).await?;
        tracing::debug!(
            method = %request.method,
            path = request.url.path(),
            status = status.as_u16(),
            attempt,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "platform call"
        );
        classify(status, headers, body, self.settings.error_detail)
    }

    async fn read_capped(&self, mut answer: reqwest::Response) -> Result<Vec<u8>, ConnectorError> {
        let cap = self.settings.max_body_bytes;
        if answer.content_length().is_some_and(|len| len > cap as u64) {
            return Err(too_large(cap));
        }
        let mut body = Vec::new();
        while let Some(chunk) = answer.chunk().await.map_err(transport_error)? {
            if body.len() + chunk.len() > cap {
                return Err(too_large(cap));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    async fn wait_for_platform_budget(&self) {
        let until = *self.not_before.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(until) = until {
            let now = Instant::now();
            if until > now {
                tokio::time::sleep(until - now).await;
            }
        }
    }

    /// When the platform says no requests are left, wait for its reset before the next one.
    fn note_platform_budget(&self, headers: &HeaderMap) {
        let Some((remaining, reset)) = self.settings.rate_limit_headers else {
            return;
        };
        let number = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
        };
        if number(remaining) == Some(0) {
            let wait =
                Duration::from_secs(number(reset).unwrap_or(1)).min(self.settings.max_retry_after);
            *self.not_before.lock().unwrap_or_else(|p| p.into_inner()) =
                Some(Instant::now() + wait);
        }
    }
}

/// The wait before the next attempt: the platform's `Retry-After` when it gave one, otherwise
/// full jitter (a uniformly random share of the exponential delay). A `Retry-After` longer than
/// `max_retry_after` ends the retries: the error, carrying it, goes back to the caller.
fn retry_delay(
    error: &ConnectorError,
    delay: Option<Duration>,
    max_retry_after: Duration,
) -> Option<Duration> {
    let delay = delay?;
    match error {
        ConnectorError::RateLimited {
            retry_after: Some(wait),
        } => (*wait <= max_retry_after).then_some(*wait),
        _ => Some(delay.mul_f64(fastrand::f64())),
    }
}

fn too_large(cap: usize) -> ConnectorError {
    ConnectorError::Malformed {
        detail: format!("the answer is larger than {cap} bytes"),
    }
}

fn transport_error(e: reqwest::Error) -> ConnectorError {
    if e.is_timeout() {
        ConnectorError::Transient("timed out".into())
    } else if e.is_connect() {
        ConnectorError::Transient("cannot connect".into())
    } else {
        ConnectorError::Transient(format!("transport error: {}", e.without_url()))
    }
}

/// What a status means for the caller.
fn classify(
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
    error_detail: Option<ErrorDetail>,
) -> Result<Response, ConnectorError> {
    let detail = |body: &[u8]| {
        error_detail
            .and_then(|read| read(body))
            .unwrap_or_else(|| excerpt(body))
    };
    match status.as_u16() {
        200..=299 => {
            // A JSON answer cut short (a dropped connection behind a proxy) is `Malformed`
            // here, inside the retries, not later where the caller reads it.
            let says_json = headers
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.contains("json"));
            if says_json
                && !body.is_empty()
                && let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(&body)
            {
                return Err(ConnectorError::Malformed {
                    detail: format!("{e}; the answer began: {}", excerpt(&body)),
                });
            }
            Ok(Response {
                status,
                headers,
                body,
            })
        }
        401 => Err(ConnectorError::Unauthorized(detail(&body))),
        404 => Err(ConnectorError::NotFound),
        429 => Err(ConnectorError::RateLimited {
            retry_after: retry_after(&headers),
        }),
        408 | 500..=599 => Err(ConnectorError::Transient(format!(
            "{status}: {}",
            detail(&body)
        ))),
        code => Err(ConnectorError::Rejected {
            status: code,
            detail: detail(&body),
        }),
    }
}

/// `Retry-After` as seconds or as an HTTP date.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let wait = at.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(wait.to_std().unwrap_or(Duration::ZERO))
}

/// An authenticator for platforms that need none (tests, open endpoints).
pub struct NoAuth;

#[async_trait::async_trait]
impl Authenticator for NoAuth {
    async fn authorize(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::RequestBuilder, ConnectorError> {
        Ok(request)
    }

    async fn renew(&self) -> Result<(), ConnectorError> {
        Err(ConnectorError::Unauthorized(
            "no credentials to renew".into(),
        ))
    }
}

/// Shared handle, as connectors hold it.
pub type SharedClient = Arc<PlatformClient>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_is_read_as_seconds_or_as_an_http_date() {
        let mut headers = HeaderMap::new();
        headers.insert(http::header::RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
        let soon = (chrono::Utc::now() + chrono::Duration::seconds(30)).to_rfc2822();
        headers.insert(http::header::RETRY_AFTER, soon.parse().unwrap());
        let wait = retry_after(&headers).unwrap();
        assert!(
            wait <= Duration::from_secs(30) && wait >= Duration::from_secs(28),
            "{wait:?}"
        );
        headers.insert(http::header::RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(retry_after(&headers), None);
    }

    #[test]
    fn statuses_map_to_what_the_caller_must_do() {
        let status = |code: u16| {
            classify(
                StatusCode::from_u16(code).unwrap(),
                HeaderMap::new(),
                b"x".to_vec(),
                None,
            )
        };
        assert!(status(200).is_ok());
        assert!(matches!(status(401), Err(ConnectorError::Unauthorized(_))));
        assert!(matches!(status(404), Err(ConnectorError::NotFound)));
        assert!(matches!(
            status(429),
            Err(ConnectorError::RateLimited { .. })
        ));
        assert!(matches!(status(503), Err(ConnectorError::Transient(_))));
        assert!(matches!(status(408), Err(ConnectorError::Transient(_))));
        assert!(matches!(
            status(422),
            Err(ConnectorError::Rejected { status: 422, .. })
        ));
    }

    #[test]
    fn a_retry_waits_the_whole_retry_after_or_gives_it_back_and_otherwise_at_most_the_backoff() {
        let cap = Duration::from_secs(60);
        let limited = ConnectorError::RateLimited {
            retry_after: Some(Duration::from_secs(5)),
        };
        assert_eq!(
            retry_delay(&limited, Some(Duration::from_millis(100)), cap),
            Some(Duration::from_secs(5))
        );
        let greedy = ConnectorError::RateLimited {
            retry_after: Some(Duration::from_secs(3600)),
        };
        assert_eq!(
            retry_delay(&greedy, Some(Duration::ZERO), cap),
            None,
            "never early: the caller waits the hour"
        );
        let patient = ConnectorError::RateLimited {
            retry_after: Some(Duration::from_secs(90)),
        };
        assert_eq!(
            retry_delay(&patient, Some(Duration::ZERO), Duration::from_secs(900)),
            Some(Duration::from_secs(90))
        );
        let transient = ConnectorError::Transient("503".into());
        for _ in 0..100 {
            let wait = retry_delay(&transient, Some(Duration::from_secs(2)), cap).unwrap();
            assert!(wait <= Duration::from_secs(2));
        }
        // Exhausted stays exhausted, whatever the platform asks.
        assert_eq!(retry_delay(&limited, None, cap), None);
    }
}
