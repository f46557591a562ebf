//! Reading request bodies and query strings: a JSON body that does not fit answers 400 (not
//! JSON at all) or 422 with a JSON pointer to the field at fault; never axum's plain-text
//! rejections.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

use super::problem::Problem;

/// The largest JSON body the API reads.
pub const MAX_BODY: usize = 1024 * 1024;

/// A JSON request body.
pub struct Body<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = Problem;

    async fn from_request(request: Request, state: &S) -> Result<Self, Problem> {
        let json = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split(';').next())
            .map(|mime| {
                let mime = mime.trim();
                mime.eq_ignore_ascii_case("application/json") || mime.ends_with("+json")
            });
        if json == Some(false) {
            return Err(Problem::new(
                axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported media type",
            )
            .with_detail("send the body as application/json"));
        }
        let bytes = Bytes::from_request(request, state).await.map_err(|e| {
            Problem::new(e.status(), "unreadable-body", "The body cannot be read")
                .with_detail(e.body_text())
        })?;
        if bytes.len() > MAX_BODY {
            return Err(Problem::new(
                axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                "payload-too-large",
                "Payload too large",
            )
            .with_detail(format!("the body is larger than {MAX_BODY} bytes")));
        }
        parse(&bytes).map(Body)
    }
}

/// Parses JSON into `T`, naming the field at fault.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Problem> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize(&mut deserializer) {
        Ok(value) => {
            deserializer
                .end()
                .map_err(|e| Problem::bad_request(format!("the body is not JSON: {e}")))?;
            Ok(value)
        }
        Err(e) => {
            let mut pointer = pointer(e.path());
            let inner = e.into_inner();
            if inner.is_syntax() || inner.is_eof() {
                return Err(Problem::bad_request(format!(
                    "the body is not JSON: {inner}"
                )));
            }
            let detail = strip_position(&inner.to_string());
            // serde reports a missing field at the object that lacks it: name the field.
            if let Some(field) = missing_field(&detail) {
                pointer.push('/');
                pointer.push_str(&escape(field));
            }
            Err(Problem::field(pointer, detail))
        }
    }
}

/// The field of serde's "missing field `name`".
fn missing_field(detail: &str) -> Option<&str> {
    detail
        .strip_prefix("missing field `")?
        .strip_suffix('`')
        .filter(|name| !name.is_empty())
}

/// One JSON pointer token (RFC 6901).
fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// A serde path (`policy.notice_days`, `items[2]`) as a JSON pointer (`/policy/notice_days`).
fn pointer(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for segment in path.iter() {
        out.push('/');
        match segment {
            Segment::Seq { index } => out.push_str(&index.to_string()),
            Segment::Map { key } => out.push_str(&escape(key)),
            Segment::Enum { variant } => out.push_str(variant),
            Segment::Unknown => {}
        }
    }
    out
}

/// serde_json's messages end in " at line 1 column 42": noise for a field error.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(at) => message[..at].to_owned(),
        None => message.to_owned(),
    }
}

/// For `#[serde(default, deserialize_with = "non_null")]` on an `Option`: a field that may be
/// left out but, where the schema does not say it may be `null`, is not `null` (422 naming it)
/// rather than taken as left out.
pub fn non_null<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    match Option::<T>::deserialize(deserializer)? {
        Some(value) => Ok(Some(value)),
        None => Err(serde::de::Error::custom(
            "must not be null (leave the field out instead)",
        )),
    }
}

/// A query string; a parameter that does not fit, is unknown or repeated answers 422 naming it
/// (`/query/<name>`).
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Problem> {
        let query = parts.uri.query().unwrap_or_default();
        let deserializer =
            serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(deserializer)
            .map(Query)
            .map_err(|e| {
                let name = e.path().to_string();
                let inner = e.into_inner().to_string();
                // An unknown or repeated parameter is reported at the top level (`.`); name it
                // from the message when it can be found there.
                let name = if name == "." || name.is_empty() {
                    inner
                        .split('`')
                        .nth(1)
                        .map(str::to_owned)
                        .unwrap_or_default()
                } else {
                    name
                };
                let pointer = if name.is_empty() {
                    "/query".to_owned()
                } else {
                    format!("/query/{}", name.replace('~', "~0").replace('/', "~1"))
                };
                Problem::field(pointer, inner)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        name: String,
        items: Vec<Inner>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Inner {
        amount: u32,
    }

    #[test]
    fn a_wrong_field_is_named_by_its_json_pointer() {
        let problem =
            parse::<Outer>(br#"{"name":"x","items":[{"amount":1},{"amount":"no"}]}"#).unwrap_err();
        assert_eq!(problem.status, 422);
        assert_eq!(problem.errors[0].pointer, "/items/1/amount");
        assert!(!problem.errors[0].detail.contains("line"));
    }

    #[test]
    fn text_that_is_not_json_is_a_bad_request() {
        assert_eq!(parse::<Outer>(b"{not json").unwrap_err().status, 400);
        assert_eq!(parse::<Value>(b"{} trailing").unwrap_err().status, 400);
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Parent {
        parent: Child,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Child {
        name: String,
    }

    fn only_error(problem: &Problem) -> (&str, &str) {
        assert_eq!(problem.status, 422, "{problem:?}");
        assert_eq!(problem.errors.len(), 1, "{problem:?}");
        (&problem.errors[0].pointer, &problem.errors[0].detail)
    }

    #[test]
    fn a_missing_field_is_named_by_its_own_pointer() {
        let problem = parse::<Outer>(br#"{"items":[]}"#).unwrap_err();
        assert_eq!(only_error(&problem), ("/name", "missing field `name`"));
        let problem = parse::<Parent>(br#"{"parent":{}}"#).unwrap_err();
        assert_eq!(only_error(&problem).0, "/parent/name");
        let problem = parse::<Outer>(br#"{"name":"x","items":[{}]}"#).unwrap_err();
        assert_eq!(only_error(&problem).0, "/items/0/amount");
        let problem = parse::<Parent>(b"{}").unwrap_err();
        assert_eq!(only_error(&problem).0, "/parent");
    }

    #[derive(Debug, Default, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Defaults {
        #[serde(default, deserialize_with = "non_null")]
        amount: Option<String>,
        #[serde(default, deserialize_with = "non_null")]
        extra: Option<Value>,
    }

    #[test]
    fn null_is_refused_where_a_field_may_only_be_left_out() {
        let problem = parse::<Defaults>(br#"{"amount":null}"#).unwrap_err();
        assert_eq!(problem.errors[0].pointer, "/amount");
        let problem = parse::<Defaults>(br#"{"extra":null}"#).unwrap_err();
        assert_eq!(problem.errors[0].pointer, "/extra");
        let given = parse::<Defaults>(br#"{"amount":"1.00","extra":{"a":null}}"#).unwrap();
        assert_eq!(given.amount.as_deref(), Some("1.00"));
        assert_eq!(given.extra, Some(serde_json::json!({"a": null})));
        let absent = parse::<Defaults>(b"{}").unwrap();
        assert!(absent.amount.is_none() && absent.extra.is_none());
    }
}
