//! Reading request bodies and query strings, in one place for every `/v1` route: a body is at
//! most [`MAX_BODY`] bytes (413 above), sent as JSON (`application/json` or
//! `application/*+json`; 415 otherwise) and one JSON object; a body that does not fit answers 400
//! (not JSON at all) or 422 with a JSON pointer to the field at fault; never axum's plain-text
//! rejections. A route whose body is optional takes no body at all (empty, whatever the content
//! type) as its defaults.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt as _;
use serde::de::{DeserializeOwned, IgnoredAny};
use serde::{Deserialize, Deserializer};

use super::problem::Problem;
use crate::json_path::pointer_token;

/// The largest JSON body the API reads.
pub const MAX_BODY: usize = 1024 * 1024;

/// A required JSON object as the request body, decoded into `T`.
pub struct Body<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = Problem;

    async fn from_request(request: Request, _: &S) -> Result<Self, Problem> {
        let bytes = read(request).await?.ok_or_else(missing)?;
        parse(&bytes).map(Body)
    }
}

/// An optional JSON object as the request body: no body at all is `T::default()`.
pub struct OptionalBody<T>(pub T);

impl<T: DeserializeOwned + Default, S: Send + Sync> FromRequest<S> for OptionalBody<T> {
    type Rejection = Problem;

    async fn from_request(request: Request, _: &S) -> Result<Self, Problem> {
        match read(request).await? {
            None => Ok(OptionalBody(T::default())),
            Some(bytes) => parse(&bytes).map(OptionalBody),
        }
    }
}

/// A required body, checked as [`Body`] checks it up to its decoding, as its bytes: for a
/// handler that reads the JSON with a parser of its own (the scenario of a preview). Its bytes
/// still need [`parse`] (or that parser) to be known to be a JSON object.
pub struct RawBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = Problem;

    async fn from_request(request: Request, _: &S) -> Result<Self, Problem> {
        read(request).await?.ok_or_else(missing).map(RawBody)
    }
}

/// The body of a route that takes no fields: none at all, or `{}`; any field is 422.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoFields {}

fn missing() -> Problem {
    Problem::bad_request("the request needs a body: a JSON object sent as application/json")
}

fn too_large() -> Problem {
    Problem::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload-too-large",
        "Payload too large",
    )
    .with_detail(format!("the body is larger than {MAX_BODY} bytes"))
}

/// How much of a body over the limit is still read (and dropped) before it is answered 413, so
/// that the client, still sending, gets the answer instead of a connection reset. A larger one is
/// answered at once, and the connection closed.
const DRAIN: usize = 4 * MAX_BODY;

/// Reads a body of at most [`MAX_BODY`] bytes: 413 beyond (whether `Content-Length` says so or
/// the bytes do), 400 when it cannot be read.
pub async fn collect(headers: &HeaderMap, body: axum::body::Body) -> Result<Bytes, Problem> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > (MAX_BODY + DRAIN) as u64) {
        return Err(too_large());
    }
    let mut stream = body.into_data_stream();
    let mut bytes = BytesMut::new();
    let mut over = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            Problem::new(
                StatusCode::BAD_REQUEST,
                "unreadable-body",
                "The body cannot be read",
            )
            .with_detail(e.to_string())
        })?;
        if over > 0 || bytes.len() + chunk.len() > MAX_BODY {
            over += chunk.len();
            if over > DRAIN {
                break;
            }
        } else {
            bytes.extend_from_slice(&chunk);
        }
    }
    if over > 0 {
        return Err(too_large());
    }
    Ok(bytes.freeze())
}

/// Whether a `Content-Type` is JSON's: `application/json` or `application/<something>+json`,
/// with any parameters (`; charset=utf-8`).
pub fn is_json(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match essence.strip_prefix("application/") {
        Some("json") => true,
        Some(subtype) => subtype.len() > "+json".len() && subtype.ends_with("+json"),
        None => false,
    }
}

/// The body, or `None` when there is none (no bytes, or only whitespace), whatever its content
/// type says; a body there is must be sent as JSON.
async fn read(request: Request) -> Result<Option<Bytes>, Problem> {
    let (parts, body) = request.into_parts();
    let bytes = collect(&parts.headers, body).await?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let json = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(is_json);
    if !json {
        return Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Unsupported media type",
        )
        .with_detail("send the body as application/json"));
    }
    Ok(Some(bytes))
}

/// Parses a JSON object into `T`, naming the field at fault: 400 for text that is not JSON,
/// 422 with a pointer for JSON that does not fit (the empty pointer when it is not an object).
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Problem> {
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        // An array would pass for a struct's fields in order: only an object is a body here.
        well_formed(bytes)?;
        return Err(Problem::field("", "must be a JSON object"));
    }
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
            // serde stops at the first field that does not fit, before it has seen the rest:
            // text that is not JSON further on is still not JSON (400).
            well_formed(bytes)?;
            let detail = strip_position(&inner.to_string());
            // serde reports a missing field at the object that lacks it: name the field.
            if let Some(field) = missing_field(&detail) {
                pointer.push('/');
                pointer.push_str(&pointer_token(field));
            }
            Err(Problem::field(pointer, detail))
        }
    }
}

/// 400 unless `bytes` are one well-formed JSON value.
fn well_formed(bytes: &[u8]) -> Result<(), Problem> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    IgnoredAny::deserialize(&mut deserializer)
        .and_then(|_| deserializer.end())
        .map_err(|e| Problem::bad_request(format!("the body is not JSON: {e}")))
}

/// The field of serde's "missing field `name`".
fn missing_field(detail: &str) -> Option<&str> {
    detail
        .strip_prefix("missing field `")?
        .strip_suffix('`')
        .filter(|name| !name.is_empty())
}

/// A serde path (`policy.notice_days`, `items[2]`) as a JSON pointer (`/policy/notice_days`).
fn pointer(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for segment in path.iter() {
        out.push('/');
        match segment {
            Segment::Seq { index } => out.push_str(&index.to_string()),
            Segment::Map { key } => out.push_str(&pointer_token(key)),
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
                    format!("/query/{}", pointer_token(&name))
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
        assert_eq!(parse::<Outer>(b"{").unwrap_err().status, 400);
        assert_eq!(parse::<Outer>(b"[").unwrap_err().status, 400);
        assert_eq!(parse::<Outer>(b"nope").unwrap_err().status, 400);
        assert_eq!(parse::<Outer>(b"[] []").unwrap_err().status, 400);
        // Not JSON further on than the first field at fault: still not JSON.
        assert_eq!(parse::<NoFields>(br#"{"foo": 1"#).unwrap_err().status, 400);
        assert_eq!(parse::<Outer>(br#"{"name": 1, "#).unwrap_err().status, 400);
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

    #[test]
    fn an_unknown_field_is_named_and_a_fieldless_body_takes_none() {
        let problem = parse::<Outer>(br#"{"name":"x","items":[],"foo":1}"#).unwrap_err();
        assert_eq!(only_error(&problem).0, "/foo");
        let problem = parse::<NoFields>(br#"{"foo":1}"#).unwrap_err();
        assert_eq!(only_error(&problem).0, "/foo");
        assert!(parse::<NoFields>(b" {} ").is_ok());
    }

    #[test]
    fn json_that_is_not_an_object_is_refused_at_the_empty_pointer() {
        for body in [&b"[]"[..], b" [1, 2]", b"\"text\"", b"12", b"null", b"true"] {
            let problem = parse::<NoFields>(body).unwrap_err();
            assert_eq!(
                only_error(&problem),
                ("", "must be a JSON object"),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        // An array does not pass for a struct whose fields all have defaults.
        let problem = parse::<Defaults>(b"[]").unwrap_err();
        assert_eq!(only_error(&problem).0, "");
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
        assert_eq!(only_error(&problem).0, "/amount");
        let problem = parse::<Defaults>(br#"{"extra":null}"#).unwrap_err();
        assert_eq!(only_error(&problem).0, "/extra");
        let given = parse::<Defaults>(br#"{"amount":"1.00","extra":{"a":null}}"#).unwrap();
        assert_eq!(given.amount.as_deref(), Some("1.00"));
        assert_eq!(given.extra, Some(serde_json::json!({"a": null})));
        let absent = parse::<Defaults>(b"{}").unwrap();
        assert!(absent.amount.is_none() && absent.extra.is_none());
    }

    #[test]
    fn json_media_types_are_application_json_and_its_suffix() {
        for yes in [
            "application/json",
            "Application/JSON",
            "application/json; charset=utf-8",
            "application/json;charset=UTF-8",
            " application/merge-patch+json ",
            "application/problem+json",
        ] {
            assert!(is_json(yes), "{yes}");
        }
        for no in [
            "",
            "text/plain",
            "text/json",
            "text/x+json",
            "application/x-www-form-urlencoded",
            "application/+json",
            "application/jsonx",
            "multipart/form-data",
        ] {
            assert!(!is_json(no), "{no}");
        }
    }

    fn request(content_type: Option<&str>, body: impl Into<axum::body::Body>) -> Request {
        let mut builder = Request::builder().method("POST").uri("/v1/x");
        if let Some(content_type) = content_type {
            builder = builder.header(header::CONTENT_TYPE, content_type);
        }
        builder.body(body.into()).unwrap()
    }

    async fn optional(request: Request) -> Result<Defaults, Problem> {
        OptionalBody::<Defaults>::from_request(request, &())
            .await
            .map(|OptionalBody(body)| body)
    }

    #[tokio::test]
    async fn an_optional_body_may_be_absent_under_any_content_type_but_a_body_is_json() {
        for content_type in [None, Some("application/json"), Some("text/plain")] {
            for empty in ["", " \n"] {
                let body = optional(request(content_type, empty)).await.unwrap();
                assert!(body.amount.is_none(), "{content_type:?}");
            }
        }
        for content_type in [
            None,
            Some("text/plain"),
            Some("application/x-www-form-urlencoded"),
        ] {
            let problem = optional(request(content_type, r#"{"amount":"1.00"}"#))
                .await
                .unwrap_err();
            assert_eq!(problem.status, 415, "{content_type:?}");
        }
        let body = optional(request(
            Some("application/json; charset=utf-8"),
            r#"{"amount":"1.00"}"#,
        ))
        .await
        .unwrap();
        assert_eq!(body.amount.as_deref(), Some("1.00"));
        let problem = optional(request(Some("application/json"), "{"))
            .await
            .unwrap_err();
        assert_eq!(problem.status, 400);
    }

    #[tokio::test]
    async fn a_required_body_must_be_there() {
        let problem = Body::<Defaults>::from_request(request(Some("application/json"), ""), &())
            .await
            .err()
            .unwrap();
        assert_eq!(problem.status, 400);
        let problem = RawBody::from_request(request(None, "{}"), &())
            .await
            .err()
            .unwrap();
        assert_eq!(problem.status, 415);
    }

    #[tokio::test]
    async fn a_body_over_the_limit_is_413_whether_declared_or_streamed() {
        let big = vec![b' '; MAX_BODY + 1];
        // Declared by Content-Length, far over: before a byte is read.
        let mut declared = request(Some("application/json"), "{}");
        declared
            .headers_mut()
            .insert(header::CONTENT_LENGTH, (MAX_BODY + DRAIN + 1).into());
        let problem = optional(declared).await.unwrap_err();
        assert_eq!(problem.status, 413);
        // Sent in one piece.
        let problem = optional(request(Some("application/json"), big.clone()))
            .await
            .unwrap_err();
        assert_eq!(problem.status, 413);
        assert!(problem.kind.ends_with("/payload-too-large"));
        // Streamed in chunks with no length given: just over, and over by more than is drained.
        for size in [MAX_BODY + 1, MAX_BODY + DRAIN + 1] {
            let chunks = vec![b' '; size]
                .chunks(64 * 1024)
                .map(|c| Ok::<_, std::io::Error>(Bytes::copy_from_slice(c)))
                .collect::<Vec<_>>();
            let streamed = axum::body::Body::from_stream(futures_util::stream::iter(chunks));
            let problem = optional(request(Some("application/json"), streamed))
                .await
                .unwrap_err();
            assert_eq!(problem.status, 413, "{size}");
        }
        // At the limit exactly: read.
        let mut at_limit = vec![b' '; MAX_BODY - 2];
        at_limit.splice(0..0, *b"{}");
        assert!(
            optional(request(Some("application/json"), at_limit))
                .await
                .is_ok()
        );
    }
}
