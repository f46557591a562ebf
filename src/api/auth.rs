//! API keys: bearer tokens shown once and stored only as their SHA-256, each owned by a partner
//! or a creditor, with scopes and a rate limit of its own. Every `/v1` request passes through
//! [`authenticate`]; handlers reach a creditor only through [`Caller::creditor`], which answers
//! 404 for a creditor the key's owner does not reach (exactly as for one that does not exist).

use std::num::NonZeroU32;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock as _, DefaultClock};
use governor::{Quota, RateLimiter};
use rand::Rng;
use rand::distr::Alphanumeric;
use sha2::Digest as _;

use super::AppState;
use super::problem::Problem;
use crate::config::ApiRate;
use crate::domain::{ApiKeyId, Creditor, CreditorId, Owner, PartnerId, Scopes};

/// The prefix of every token, so that a leaked one is recognisable (secret scanners, logs).
pub const TOKEN_PREFIX: &str = "forfall_sk_";

/// A fresh secret token and the hash to store.
pub fn new_token() -> (String, String) {
    let secret: String = rand::rng()
        .sample_iter(&Alphanumeric)
        .take(40)
        .map(char::from)
        .collect();
    let token = format!("{TOKEN_PREFIX}{secret}");
    let hash = token_hash(&token);
    (token, hash)
}

/// The SHA-256 of a token, hex: what the store keeps.
pub fn token_hash(token: &str) -> String {
    let digest = sha2::Sha256::digest(token.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Who is calling: the key, its owner and scopes.
#[derive(Debug, Clone)]
pub struct Caller {
    pub key: ApiKeyId,
    pub owner: Owner,
    pub scopes: Scopes,
}

impl Caller {
    /// The creditor `id`, if this caller reaches it; 404 otherwise (never a hint that it exists).
    pub async fn creditor(&self, state: &AppState, id: &str) -> Result<Creditor, Problem> {
        let creditor = state
            .store
            .creditor(&CreditorId::from(id))
            .await
            .map_err(Problem::from)?
            .filter(|creditor| self.reaches(creditor))
            .ok_or_else(|| {
                Problem::not_found().with_detail("no creditor by that id for this key")
            })?;
        Ok(creditor)
    }

    /// The calling partner; a creditor's key is refused (403 `partner-only`) with `title` and
    /// `detail` saying what only a partner may do.
    pub fn partner_only(&self, title: &str, detail: &str) -> Result<&PartnerId, Problem> {
        match &self.owner {
            Owner::Partner(partner) => Ok(partner),
            Owner::Creditor(_) => {
                Err(Problem::new(StatusCode::FORBIDDEN, "partner-only", title).with_detail(detail))
            }
        }
    }

    pub fn reaches(&self, creditor: &Creditor) -> bool {
        match &self.owner {
            Owner::Partner(partner) => creditor.partner_id.as_ref() == Some(partner),
            Owner::Creditor(id) => &creditor.id == id,
        }
    }
}

/// Per-key rate limits.
pub struct Limits {
    limiter: RateLimiter<
        ApiKeyId,
        governor::state::keyed::DefaultKeyedStateStore<ApiKeyId>,
        DefaultClock,
    >,
    clock: DefaultClock,
}

impl Limits {
    pub fn new(rate: ApiRate) -> Limits {
        let per_second = NonZeroU32::new(rate.per_second).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(rate.burst).unwrap_or(per_second);
        Limits {
            limiter: RateLimiter::keyed(Quota::per_second(per_second).allow_burst(burst)),
            clock: DefaultClock::default(),
        }
    }

    /// `Err(seconds to wait)` when the key is over its rate.
    fn check(&self, key: &ApiKeyId) -> Result<(), u64> {
        self.limiter.check_key(key).map_err(|not_until| {
            let wait = not_until.wait_time_from(self.clock.now());
            wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
        })
    }
}

impl Default for Limits {
    fn default() -> Limits {
        Limits::new(ApiRate::default())
    }
}

/// The middleware of every `/v1` route: a live key, the scope the method needs, and the key's
/// rate limit. The [`Caller`] goes into the request's extensions.
pub async fn authenticate(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    if !request.uri().path().starts_with("/v1/") {
        return next.run(request).await;
    }
    let authorization = request
        .headers()
        .get(header::AUTHORIZATION)
        .map(|value| value.to_str().map(str::to_owned));
    let caller = match caller(&state, authorization).await {
        Ok(caller) => caller,
        Err(problem) => return problem.into_response(),
    };
    let needs_write = !matches!(*request.method(), Method::GET | Method::HEAD);
    if needs_write && !caller.scopes.write || !needs_write && !caller.scopes.read {
        let scope = if needs_write { "write" } else { "read" };
        return Problem::new(
            StatusCode::FORBIDDEN,
            "insufficient-scope",
            "Insufficient scope",
        )
        .with_detail(format!("this key lacks the `{scope}` scope"))
        .into_response();
    }
    if let Err(seconds) = state.limits.check(&caller.key) {
        let mut response = Problem::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate-limited",
            "Too many requests",
        )
        .with_detail(format!(
            "this key is over its rate limit; retry in {seconds} s"
        ))
        .into_response();
        if let Ok(value) = HeaderValue::from_str(&seconds.max(1).to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        return response;
    }
    request.extensions_mut().insert(caller);
    next.run(request).await
}

async fn caller(
    state: &AppState,
    authorization: Option<Result<String, axum::http::header::ToStrError>>,
) -> Result<Caller, Problem> {
    let unauthorized = |detail: &str| {
        Problem::new(StatusCode::UNAUTHORIZED, "unauthorized", "Unauthorized").with_detail(detail)
    };
    let header = authorization
        .ok_or_else(|| unauthorized("send an API key as `Authorization: Bearer <key>`"))?;
    let token = header
        .ok()
        .and_then(|value| {
            let (scheme, token) = value.split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then(|| token.trim().to_owned())
        })
        .filter(|token| !token.is_empty())
        .ok_or_else(|| unauthorized("the Authorization header must be `Bearer <key>`"))?;
    let key = state
        .store
        .api_key_by_hash(&token_hash(&token))
        .await
        .map_err(Problem::from)?
        .filter(|key| key.revoked_at.is_none())
        .ok_or_else(|| unauthorized("this API key is unknown or revoked"))?;
    Ok(Caller {
        key: key.id,
        owner: key.owner,
        scopes: key.scopes,
    })
}

/// The API's shared limiter, for [`AppState`].
pub fn limits(rate: ApiRate) -> Arc<Limits> {
    Arc::new(Limits::new(rate))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_prefixed_random_and_stored_only_as_its_hash() {
        let (token, hash) = new_token();
        let (other, _) = new_token();
        assert!(token.starts_with(TOKEN_PREFIX));
        assert_eq!(token.len(), TOKEN_PREFIX.len() + 40);
        assert_ne!(token, other);
        assert_eq!(hash, token_hash(&token));
        assert_eq!(hash.len(), 64);
        assert!(!hash.contains(&token[TOKEN_PREFIX.len()..]));
    }

    #[test]
    fn a_key_over_its_burst_is_told_when_to_come_back() {
        let limits = Limits::new(ApiRate {
            per_second: 1,
            burst: 2,
        });
        let key = ApiKeyId::from("key_1");
        assert!(limits.check(&key).is_ok());
        assert!(limits.check(&key).is_ok());
        let wait = limits.check(&key).unwrap_err();
        assert!((1..=2).contains(&wait), "{wait}");
        // Another key has its own budget.
        assert!(limits.check(&ApiKeyId::from("key_2")).is_ok());
    }
}
