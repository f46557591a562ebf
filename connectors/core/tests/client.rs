//! The shared HTTP client against a real server on loopback that answers from a script: 5xx,
//! 429 with Retry-After, 401, slow answers, oversized bodies, spent rate-limit budgets.

use std::collections::VecDeque;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use forfall_connector::ConnectorError;
use forfall_connector::client::{Authenticator, HttpSettings, NoAuth, PlatformClient, Request};

/// One scripted answer.
#[derive(Clone)]
struct Answer {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
    delay: Duration,
}

fn answer(status: u16) -> Answer {
    Answer {
        status,
        headers: Vec::new(),
        body: format!("{{\"status\":{status}}}"),
        delay: Duration::ZERO,
    }
}

#[derive(Clone, Default)]
struct Script {
    answers: Arc<Mutex<VecDeque<Answer>>>,
    hits: Arc<AtomicUsize>,
    hit_times: Arc<Mutex<Vec<Instant>>>,
}

async fn scripted(State(script): State<Script>) -> impl IntoResponse {
    script.hits.fetch_add(1, Ordering::SeqCst);
    script.hit_times.lock().unwrap().push(Instant::now());
    let next = script
        .answers
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or_else(|| answer(200));
    tokio::time::sleep(next.delay).await;
    let mut headers = HeaderMap::new();
    for (name, value) in next.headers {
        headers.insert(name, value.parse().unwrap());
    }
    (
        StatusCode::from_u16(next.status).unwrap(),
        headers,
        next.body,
    )
}

async fn serve(answers: Vec<Answer>) -> (Script, reqwest::Url) {
    let script = Script::default();
    script.answers.lock().unwrap().extend(answers);
    let app = axum::Router::new()
        .route("/v2/invoice", axum::routing::get(scripted))
        .with_state(script.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v2/invoice", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (script, url.parse().unwrap())
}

fn fast() -> HttpSettings {
    HttpSettings {
        timeout: Duration::from_millis(500),
        max_attempts: 4,
        min_delay: Duration::from_millis(10),
        max_delay: Duration::from_secs(5),
        max_retry_after: Duration::from_secs(5),
        max_body_bytes: 1024,
        requests_per_second: NonZeroU32::new(1000).unwrap(),
        rate_limit_headers: Some(("x-rate-limit-remaining", "x-rate-limit-reset")),
        error_detail: None,
    }
}

#[tokio::test]
async fn transient_failures_are_retried_until_the_platform_answers() {
    let (script, url) = serve(vec![answer(503), answer(500), answer(200)]).await;
    let client = PlatformClient::new(fast()).unwrap();
    let response = client.send(&Request::get(url), &NoAuth).await.unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(script.hits.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn retries_end_in_the_last_error_when_the_platform_stays_down() {
    let (script, url) = serve(vec![answer(503); 10]).await;
    let client = PlatformClient::new(fast()).unwrap();
    let error = client.send(&Request::get(url), &NoAuth).await.unwrap_err();
    assert!(matches!(error, ConnectorError::Transient(_)), "{error}");
    assert_eq!(script.hits.load(Ordering::SeqCst), 4, "max_attempts in all");
}

#[tokio::test]
async fn a_429_waits_at_least_its_retry_after() {
    let mut limited = answer(429);
    limited.headers.push(("retry-after", "1".into()));
    let (script, url) = serve(vec![limited, answer(200)]).await;
    let client = PlatformClient::new(fast()).unwrap();
    let started = Instant::now();
    client.send(&Request::get(url), &NoAuth).await.unwrap();
    let times = script.hit_times.lock().unwrap().clone();
    assert_eq!(times.len(), 2);
    let waited = times[1] - times[0];
    assert!(waited >= Duration::from_secs(1), "waited only {waited:?}");
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn a_retry_after_longer_than_the_client_waits_goes_back_to_the_caller_at_once() {
    let mut limited = answer(429);
    limited.headers.push(("retry-after", "90".into()));
    let (script, url) = serve(vec![limited, answer(200)]).await;
    let client = PlatformClient::new(fast()).unwrap();
    let started = Instant::now();
    let error = client.send(&Request::get(url), &NoAuth).await.unwrap_err();
    assert_eq!(
        error,
        ConnectorError::RateLimited {
            retry_after: Some(Duration::from_secs(90))
        },
        "never retried early: the caller waits the 90 s"
    );
    assert_eq!(script.hits.load(Ordering::SeqCst), 1);
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn a_request_that_must_not_repeat_is_sent_once_and_a_429_goes_back_to_the_caller() {
    let (script, url) = serve(vec![answer(502), answer(200)]).await;
    let client = PlatformClient::new(fast()).unwrap();
    let once = Request::get(url.clone()).not_repeatable();
    let error = client.send(&once, &NoAuth).await.unwrap_err();
    assert!(matches!(error, ConnectorError::Transient(_)), "{error}");
    assert_eq!(
        script.hits.load(Ordering::SeqCst),
        1,
        "the platform may have acted"
    );

    let mut limited = answer(429);
    limited.headers.push(("retry-after", "0".into()));
    let (script, url) = serve(vec![limited, answer(200)]).await;
    let once = Request::get(url).not_repeatable();
    let error = client.send(&once, &NoAuth).await.unwrap_err();
    assert!(
        matches!(error, ConnectorError::RateLimited { .. }),
        "{error}"
    );
    assert_eq!(
        script.hits.load(Ordering::SeqCst),
        1,
        "the job defers it, not the client"
    );
}

#[tokio::test]
async fn a_json_answer_cut_short_is_retried_like_a_transient_failure() {
    let mut cut = answer(200);
    cut.headers
        .push(("content-type", "application/json".into()));
    cut.body = "{\"values\": [{\"id\": 1".into();
    let mut whole = answer(200);
    whole
        .headers
        .push(("content-type", "application/json".into()));
    whole.body = "{\"values\": [{\"id\": 1}]}".into();
    let (script, url) = serve(vec![cut, whole]).await;
    let client = PlatformClient::new(fast()).unwrap();
    let response = client.send(&Request::get(url), &NoAuth).await.unwrap();
    assert_eq!(response.body, b"{\"values\": [{\"id\": 1}]}");
    assert_eq!(script.hits.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_refusal_for_good_is_not_retried() {
    let mut refused = answer(422);
    refused.body = "{\"status\":422,\"message\":\"Validering feilet\"}".into();
    let (script, url) = serve(vec![refused]).await;
    let client = PlatformClient::new(fast()).unwrap();
    let error = client.send(&Request::get(url), &NoAuth).await.unwrap_err();
    match error {
        ConnectorError::Rejected { status, detail } => {
            assert_eq!(status, 422);
            assert!(detail.contains("Validering feilet"));
        }
        other => panic!("expected Rejected, got {other}"),
    }
    assert_eq!(script.hits.load(Ordering::SeqCst), 1);
}

struct CountingAuth {
    renewals: AtomicUsize,
}

#[async_trait::async_trait]
impl Authenticator for CountingAuth {
    async fn authorize(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::RequestBuilder, ConnectorError> {
        let token = format!("token-{}", self.renewals.load(Ordering::SeqCst));
        Ok(request.basic_auth("0", Some(token)))
    }

    async fn renew(&self) -> Result<(), ConnectorError> {
        self.renewals.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

#[tokio::test]
async fn an_expired_session_is_renewed_once_and_the_request_sent_again() {
    let (script, url) = serve(vec![answer(401), answer(200)]).await;
    let client = PlatformClient::new(fast()).unwrap();
    let auth = CountingAuth {
        renewals: AtomicUsize::new(0),
    };
    client.send(&Request::get(url), &auth).await.unwrap();
    assert_eq!(auth.renewals.load(Ordering::SeqCst), 1);
    assert_eq!(script.hits.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn credentials_refused_after_renewal_are_unauthorized_without_a_loop() {
    let (script, url) = serve(vec![answer(401); 10]).await;
    let client = PlatformClient::new(fast()).unwrap();
    let auth = CountingAuth {
        renewals: AtomicUsize::new(0),
    };
    let error = client.send(&Request::get(url), &auth).await.unwrap_err();
    assert!(matches!(error, ConnectorError::Unauthorized(_)), "{error}");
    assert_eq!(auth.renewals.load(Ordering::SeqCst), 1);
    assert_eq!(script.hits.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_slow_answer_past_the_timeout_is_retried() {
    let mut slow = answer(200);
    slow.delay = Duration::from_secs(2);
    let (script, url) = serve(vec![slow, answer(200)]).await;
    let client = PlatformClient::new(fast()).unwrap();
    let response = client.send(&Request::get(url), &NoAuth).await.unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(script.hits.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn an_answer_over_the_size_cap_is_refused_not_read() {
    let mut huge = answer(200);
    huge.body = "x".repeat(4096);
    let (_, url) = serve(vec![huge.clone(), huge.clone(), huge.clone(), huge]).await;
    let client = PlatformClient::new(fast()).unwrap();
    let error = client.send(&Request::get(url), &NoAuth).await.unwrap_err();
    assert!(matches!(error, ConnectorError::Malformed { .. }), "{error}");
}

#[tokio::test]
async fn a_malformed_body_is_malformed_with_an_excerpt() {
    let mut broken = answer(200);
    broken.body = "{\"values\": [".into();
    let (_, url) = serve(vec![broken]).await;
    let client = PlatformClient::new(fast()).unwrap();
    let response = client.send(&Request::get(url), &NoAuth).await.unwrap();
    let error = response.json::<serde_json::Value>().unwrap_err();
    match error {
        ConnectorError::Malformed { detail } => {
            assert!(detail.contains("{\"values\": ["), "{detail}")
        }
        other => panic!("expected Malformed, got {other}"),
    }
}

#[tokio::test]
async fn a_spent_rate_limit_budget_pauses_the_next_request_until_reset() {
    let mut spent = answer(200);
    spent.headers.push(("x-rate-limit-remaining", "0".into()));
    spent.headers.push(("x-rate-limit-reset", "1".into()));
    let (script, url) = serve(vec![spent, answer(200)]).await;
    let client = PlatformClient::new(fast()).unwrap();
    client
        .send(&Request::get(url.clone()), &NoAuth)
        .await
        .unwrap();
    client.send(&Request::get(url), &NoAuth).await.unwrap();
    let times = script.hit_times.lock().unwrap().clone();
    assert!(
        times[1] - times[0] >= Duration::from_secs(1),
        "{:?}",
        times[1] - times[0]
    );
}
