//! `/v1/creditors`: create (partner keys), list, get and update. A policy is validated exactly as
//! `forfall simulate` validates it, and a bad one is answered with the key at fault.

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Page, PageQuery, page_cursor, page_limit};
use crate::api::AppState;
use crate::api::auth::Caller;
use crate::api::json::{Body, Query, non_null};
use crate::api::problem::{FieldError, Problem};
use crate::domain::{Country, Creditor, CreditorId, Language, NewCreditor};
use crate::rules::policy::Policy;

/// A creditor as the API shows it.
pub fn creditor_json(creditor: &Creditor) -> Value {
    json!({
        "id": creditor.id,
        "name": creditor.name,
        "organisation_number": creditor.organisation_number,
        "country": creditor.country.code(),
        "time_zone": creditor.time_zone.name(),
        "language": creditor.language.as_str(),
        "email": creditor.email,
        "policy": creditor.policy,
        "partner_id": creditor.partner_id,
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateCreditor {
    name: String,
    organisation_number: String,
    country: String,
    #[serde(default, deserialize_with = "non_null")]
    time_zone: Option<String>,
    #[serde(default, deserialize_with = "non_null")]
    language: Option<String>,
    #[serde(default, deserialize_with = "non_null")]
    email: Option<String>,
    #[serde(default, deserialize_with = "non_null")]
    policy: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateCreditor {
    // Only `email` may be `null` (it removes the address); a `null` elsewhere is 422, not
    // "unchanged": the schema says string or object.
    #[serde(default, deserialize_with = "non_null")]
    name: Option<String>,
    #[serde(default, deserialize_with = "non_null")]
    country: Option<String>,
    #[serde(default, deserialize_with = "non_null")]
    time_zone: Option<String>,
    #[serde(default, deserialize_with = "non_null")]
    language: Option<String>,
    /// `null` removes the address.
    #[serde(default, with = "double_option")]
    email: Option<Option<String>>,
    #[serde(default, deserialize_with = "non_null")]
    policy: Option<Value>,
}

/// Tells a field that is absent from one that is `null`.
mod double_option {
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Option<String>>, D::Error> {
        Option::<String>::deserialize(d).map(Some)
    }
}

/// Every field error of a creditor's settings at once.
#[derive(Default)]
struct Check(Vec<FieldError>);

impl Check {
    fn fail(&mut self, pointer: &str, detail: impl Into<String>) {
        self.0.push(FieldError {
            pointer: pointer.into(),
            detail: detail.into(),
        });
    }

    fn text(&mut self, pointer: &str, value: &str, max: usize) {
        if value.trim().is_empty() {
            self.fail(pointer, "must not be empty");
        } else if value.chars().count() > max {
            self.fail(pointer, format!("must be at most {max} characters"));
        }
    }

    fn country(&mut self, value: &str) -> Option<Country> {
        value
            .parse::<Country>()
            .map_err(|e| self.fail("/country", e.to_string()))
            .ok()
    }

    fn time_zone(&mut self, value: &str) -> Option<chrono_tz::Tz> {
        value
            .parse::<chrono_tz::Tz>()
            .map_err(|_| {
                self.fail(
                    "/time_zone",
                    format!("`{value}` is not an IANA time zone such as Europe/Oslo"),
                )
            })
            .ok()
    }

    fn language(&mut self, value: &str) -> Option<Language> {
        let language = Language::parse(value);
        if language.is_none() {
            self.fail("/language", format!("`{value}` is not nb or en"));
        }
        language
    }

    fn email(&mut self, value: &str) {
        let valid = value.len() <= 254
            && value
                .split_once('@')
                .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'))
            && !value.chars().any(char::is_whitespace);
        if !valid {
            self.fail("/email", "is not an e-mail address");
        }
    }

    fn policy(&mut self, value: &Value) {
        if let Err(e) = Policy::from_json(value) {
            self.fail(&crate::json_path::pointer(&e.path), e.message);
        }
    }

    fn done(self) -> Result<(), Problem> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(Problem::validation(self.0))
        }
    }
}

pub async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Body(body): Body<CreateCreditor>,
) -> Result<Response, Problem> {
    let partner = caller.partner_only(
        "Only a partner creates creditors",
        "a creditor's key cannot create other creditors",
    )?;
    let mut check = Check::default();
    check.text("/name", &body.name, 200);
    check.text("/organisation_number", &body.organisation_number, 40);
    let country = check.country(&body.country);
    let time_zone = body.time_zone.as_deref().and_then(|tz| check.time_zone(tz));
    let language = body
        .language
        .as_deref()
        .map_or(Some(Language::default()), |l| check.language(l));
    if let Some(email) = &body.email {
        check.email(email);
    }
    let policy = body.policy.unwrap_or_else(|| json!({}));
    check.policy(&policy);
    check.done()?;
    let (Some(country), Some(language)) = (country, language) else {
        return Err(Problem::bad_request(
            "the creditor's settings are not valid",
        ));
    };
    let creditor = state
        .store
        .create_creditor(
            &NewCreditor {
                name: body.name.trim().to_owned(),
                organisation_number: body.organisation_number.trim().to_owned(),
                country,
                time_zone,
                language,
                policy,
                email: body.email,
                partner_id: Some(partner.clone()),
            },
            state.clock.now(),
        )
        .await?;
    let location = format!("/v1/creditors/{}", creditor.id);
    Ok((
        StatusCode::CREATED,
        [(axum::http::header::LOCATION, location)],
        axum::Json(creditor_json(&creditor)),
    )
        .into_response())
}

pub async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(query): Query<PageQuery>,
) -> Result<axum::Json<Page>, Problem> {
    let limit = page_limit(query.limit)?;
    let after = page_cursor(query.cursor, CreditorId::parse)?;
    let creditors = state
        .store
        .creditors_of(&caller.owner, after.as_ref(), limit + 1)
        .await?;
    Ok(axum::Json(Page::of(
        creditors,
        limit,
        |c| c.id.to_string(),
        creditor_json,
    )))
}

pub async fn get(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(creditor): Path<String>,
) -> Result<axum::Json<Value>, Problem> {
    let creditor = caller.creditor(&state, &creditor).await?;
    Ok(axum::Json(creditor_json(&creditor)))
}

pub async fn update(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(creditor): Path<String>,
    Body(body): Body<UpdateCreditor>,
) -> Result<axum::Json<Value>, Problem> {
    let mut creditor = caller.creditor(&state, &creditor).await?;
    let mut check = Check::default();
    if let Some(name) = &body.name {
        check.text("/name", name, 200);
    }
    let country = body.country.as_deref().and_then(|c| check.country(c));
    let time_zone = body.time_zone.as_deref().and_then(|tz| check.time_zone(tz));
    let language = body.language.as_deref().and_then(|l| check.language(l));
    if let Some(Some(email)) = &body.email {
        check.email(email);
    }
    if let Some(policy) = &body.policy {
        check.policy(policy);
    }
    check.done()?;
    if let Some(name) = body.name {
        creditor.name = name.trim().to_owned();
    }
    if let Some(country) = country {
        creditor.country = country;
    }
    if let Some(time_zone) = time_zone {
        creditor.time_zone = time_zone;
    }
    if let Some(language) = language {
        creditor.language = language;
    }
    if let Some(email) = body.email {
        creditor.email = email;
    }
    if let Some(policy) = body.policy {
        creditor.policy = policy;
    }
    if !state.store.update_creditor(&creditor).await? {
        return Err(Problem::not_found());
    }
    Ok(axum::Json(creditor_json(&creditor)))
}
