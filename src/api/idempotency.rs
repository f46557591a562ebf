//! `Idempotency-Key` on `/v1` POSTs, per API key: the same key with the same request returns the
//! first response (with `Idempotent-Replayed: true`); the same key with a different request is
//! 422; while the first is still being answered, 409. A first answer that says "try again" (5xx,
//! 409, 429) is not kept, so a retry with the same key runs again. A first request that never
//! finished is taken over after a minute by the same request only, and its late answer is then
//! not recorded over the new one.
//!
//! An answer that shows a secret once (a webhook endpoint's signing secret) carries the
//! [`SealForReplay`] extension: it is kept sealed with the encryption key, never as plain text,
//! and opened again to be replayed.

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::Digest as _;

use super::AppState;
use super::auth::Caller;
use super::json;
use super::problem::Problem;
use crate::store::{Idempotency, KeptAnswer};

pub const HEADER: &str = "idempotency-key";
pub const REPLAYED: &str = "idempotent-replayed";
const POINTER: &str = "/headers/Idempotency-Key";
/// The largest response kept for replay.
const MAX_RESPONSE: usize = 8 * 1024 * 1024;
/// The prefix of a kept answer that is sealed (base64 of `nonce || ciphertext`).
const SEALED: &str = "sealed:";

/// A response extension: the answer holds a secret, so it is kept for replay only sealed.
#[derive(Debug, Clone, Copy)]
pub struct SealForReplay;

/// What a kept answer is sealed to: its API key and Idempotency-Key.
fn record(api_key: &crate::domain::ApiKeyId, key: &str) -> String {
    format!("idempotency:{api_key}:{key}")
}

pub async fn idempotent(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if request.method() != Method::POST || !request.uri().path().starts_with("/v1/") {
        return next.run(request).await;
    }
    let Some(value) = request.headers().get(HEADER) else {
        return next.run(request).await;
    };
    let Some(caller) = request.extensions().get::<Caller>().cloned() else {
        return next.run(request).await;
    };
    let Some(key) = valid_key(value.as_bytes()) else {
        return Problem::field(POINTER, "must be 1 to 255 visible ASCII characters")
            .into_response();
    };
    let (parts, body) = request.into_parts();
    // Read here under the same limit (413) and errors as the body's extractor reads it.
    let bytes = match json::collect(&parts.headers, body).await {
        Ok(bytes) => bytes,
        Err(problem) => return problem.into_response(),
    };
    let mut hasher = sha2::Sha256::new();
    hasher.update(parts.method.as_str().as_bytes());
    hasher.update(b" ");
    hasher.update(parts.uri.path().as_bytes());
    hasher.update(b"?");
    hasher.update(parts.uri.query().unwrap_or_default().as_bytes());
    hasher.update(b"\n");
    hasher.update(&bytes);
    let request_hash: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let now = state.clock.now();
    let reused = || {
        Problem::field(
            POINTER,
            "this key was used for a different request; use a new key for a new request",
        )
        .into_response()
    };
    match state
        .store
        .begin_idempotent(&caller.key, &key, &request_hash, now)
        .await
    {
        Err(e) => Problem::from(e).into_response(),
        Ok(Idempotency::InProgress {
            request_hash: first,
        }) if first != request_hash => reused(),
        Ok(Idempotency::InProgress { .. }) => Problem::conflict(
            "a request with this Idempotency-Key is still being answered; retry in a moment",
        )
        .into_response(),
        Ok(Idempotency::Answered {
            request_hash: first,
            ..
        }) if first != request_hash => reused(),
        Ok(Idempotency::Answered {
            status,
            content_type,
            location,
            body,
            ..
        }) => {
            let body = match body.strip_prefix(SEALED) {
                None => body,
                Some(sealed) => {
                    use base64::Engine as _;
                    let opened = state.encryption_key.as_ref().and_then(|k| {
                        let bytes = base64::engine::general_purpose::STANDARD
                            .decode(sealed)
                            .ok()?;
                        let plain = k.open(&bytes, &record(&caller.key, &key)).ok()?;
                        String::from_utf8(plain).ok()
                    });
                    match opened {
                        Some(body) => body,
                        None => {
                            return Problem::internal(&"a kept answer does not open with this key")
                                .into_response();
                        }
                    }
                }
            };
            let mut response =
                (StatusCode::from_u16(status).unwrap_or(StatusCode::OK), body).into_response();
            if let Ok(value) = HeaderValue::from_str(&content_type) {
                response.headers_mut().insert(header::CONTENT_TYPE, value);
            }
            if let Some(value) = location.and_then(|l| HeaderValue::from_str(&l).ok()) {
                response.headers_mut().insert(header::LOCATION, value);
            }
            response
                .headers_mut()
                .insert(REPLAYED, HeaderValue::from_static("true"));
            response
        }
        Ok(Idempotency::Started) => {
            let request = Request::from_parts(parts, Body::from(bytes));
            let response = next.run(request).await;
            let (parts, body) = response.into_parts();
            let bytes = match to_bytes(body, MAX_RESPONSE).await {
                Ok(bytes) => bytes,
                Err(e) => {
                    let _ = state.store.forget_idempotent(&caller.key, &key, now).await;
                    return Problem::internal(&e).into_response();
                }
            };
            let sealed;
            let mut text = std::str::from_utf8(&bytes).ok();
            if parts.extensions.get::<SealForReplay>().is_some() {
                use base64::Engine as _;
                sealed = state.encryption_key.as_ref().map(|k| {
                    let bytes = k.seal(&bytes, &record(&caller.key, &key));
                    format!(
                        "{SEALED}{}",
                        base64::engine::general_purpose::STANDARD.encode(bytes)
                    )
                });
                // Without a key the answer is not kept: a retry runs again.
                text = sealed.as_deref();
            }
            let outcome = match text {
                Some(text) if worth_keeping(parts.status) => {
                    let content_type = parts
                        .headers
                        .get(header::CONTENT_TYPE)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("application/json");
                    let location = parts
                        .headers
                        .get(header::LOCATION)
                        .and_then(|v| v.to_str().ok());
                    state
                        .store
                        .finish_idempotent(
                            &caller.key,
                            &key,
                            now,
                            &KeptAnswer {
                                status: parts.status.as_u16(),
                                content_type,
                                location,
                                body: text,
                            },
                        )
                        .await
                }
                _ => state.store.forget_idempotent(&caller.key, &key, now).await,
            };
            if let Err(e) = outcome {
                tracing::error!(error = %e, "could not record an idempotent response");
            }
            Response::from_parts(parts, Body::from(bytes))
        }
    }
}

/// The key, if it is 1 to 255 visible ASCII characters (`!` to `~`: no space, no control).
fn valid_key(value: &[u8]) -> Option<String> {
    let visible = value.iter().all(|b| (b'!'..=b'~').contains(b));
    if !visible || !(1..=255).contains(&value.len()) {
        return None;
    }
    String::from_utf8(value.to_vec()).ok()
}

/// An answer a retry should get again. Not a 5xx, nor a 409 or 429: those say "try again", and
/// a retry with the same key must then really run again.
fn worth_keeping(status: StatusCode) -> bool {
    !status.is_server_error()
        && status != StatusCode::CONFLICT
        && status != StatusCode::TOO_MANY_REQUESTS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_1_to_255_visible_ascii_characters() {
        assert_eq!(valid_key(b"create-1").as_deref(), Some("create-1"));
        assert_eq!(valid_key(b"!~").as_deref(), Some("!~"));
        assert!(valid_key(&[b'k'; 255]).is_some());
        for bad in [
            &b""[..],
            b"a b",
            b"a\tb",
            b"caf\xc3\xa9",
            b"nul\0",
            b"del\x7f",
            &[b'k'; 256],
        ] {
            assert_eq!(valid_key(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn answers_that_say_try_again_are_not_kept_for_replay() {
        assert!(worth_keeping(StatusCode::CREATED));
        assert!(worth_keeping(StatusCode::UNPROCESSABLE_ENTITY));
        assert!(worth_keeping(StatusCode::NOT_FOUND));
        assert!(!worth_keeping(StatusCode::CONFLICT));
        assert!(!worth_keeping(StatusCode::TOO_MANY_REQUESTS));
        assert!(!worth_keeping(StatusCode::SERVICE_UNAVAILABLE));
    }
}
