//! The `/v2` side: one entry point that applies faults, authenticates, rate-limits and dispatches
//! on the decoded path (axum's router cannot hold segments like `:payment`).

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Query, State as AxState};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{NaiveDate, NaiveDateTime};
use rust_decimal::Decimal;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::model::{
    self, CachedList, ChangeKind, ChangeRec, Customer, Cx, EMPLOYEE_ID, Event, Invoice, ORef,
    PAYMENT_TYPES, PaymentTypeRec, Session, State, SubStatus, Subscription, render, render_ref,
};
use super::schema::{Sel, Ty, selection};
use super::{App, Fault, LoggedRequest, control, push_request, webhooks};

/// Largest page the fake serves (UNCONFIRMED on Tripletex; above it is a 422).
pub(crate) const MAX_COUNT: usize = 10_000;
/// What the rate-limit headers say when no limit is configured.
const UNLIMITED: u32 = 1_000_000;
const RATE_PERIOD: Duration = Duration::from_secs(60);
const COMPANY_ID: i64 = 90_001;
const DOCS_LINK: &str = "https://tripletex.no/v2-docs/";

pub(crate) fn router(app: Arc<App>) -> Router {
    control::routes().fallback(entry).with_state(app)
}

/// An error in Tripletex's ApiError shape (the request id is added when it is sent).
#[derive(Debug, Clone)]
pub(crate) struct ApiErr {
    status: u16,
    code: u32,
    message: String,
    developer: String,
    validation: Option<Vec<(String, String)>>,
}

impl ApiErr {
    fn new(status: u16, code: u32, message: &str, developer: impl Into<String>) -> ApiErr {
        ApiErr {
            status,
            code,
            message: message.to_string(),
            developer: developer.into(),
            validation: None,
        }
    }

    fn unauthorized(why: &str) -> ApiErr {
        ApiErr::new(401, 3000, "Unauthorized", why)
    }

    fn forbidden(why: &str) -> ApiErr {
        ApiErr::new(403, 9000, "Forbidden", why)
    }

    fn not_found(what: impl Into<String>) -> ApiErr {
        ApiErr::new(404, 6000, "Object not found", what)
    }

    fn bad_request(why: impl Into<String>) -> ApiErr {
        ApiErr::new(400, 4000, "Bad request", why)
    }

    fn illegal_field(name: &str) -> ApiErr {
        ApiErr::new(
            400,
            11000,
            &format!("Illegal field in fields filter: {name}"),
            format!("Illegal field in fields filter: {name}"),
        )
    }

    /// 422 with one validation message per `(field, message)`.
    fn validation(code: u32, messages: Vec<(String, String)>) -> ApiErr {
        let developer = messages
            .iter()
            .map(|(f, m)| format!("{f}: {m}"))
            .collect::<Vec<_>>()
            .join("; ");
        ApiErr {
            status: 422,
            code,
            message: "Validering feilet.".to_string(),
            developer,
            validation: Some(messages),
        }
    }

    /// A missing or unparsable query parameter.
    fn param(field: &str, message: &str) -> ApiErr {
        ApiErr::validation(21000, vec![(field.to_string(), message.to_string())])
    }

    /// A value that breaks a rule.
    fn rule(field: &str, message: &str) -> ApiErr {
        ApiErr::validation(18000, vec![(field.to_string(), message.to_string())])
    }

    fn body(&self, request_id: &str) -> Value {
        let validation = self.validation.as_ref().map_or(Value::Null, |v| {
            Value::Array(
                v.iter()
                    .map(|(f, m)| json!({"field": f, "message": m, "path": null, "rootId": null}))
                    .collect(),
            )
        });
        json!({
            "status": self.status,
            "code": self.code,
            "message": self.message,
            "link": DOCS_LINK,
            "developerMessage": self.developer,
            "validationMessages": validation,
            "requestId": request_id,
        })
    }
}

impl From<super::FakeError> for ApiErr {
    fn from(e: super::FakeError) -> ApiErr {
        match e {
            super::FakeError::NotFound { kind, id } => {
                ApiErr::not_found(format!("no {kind} with id {id}"))
            }
            super::FakeError::Invalid { field, message } => ApiErr::rule(&field, &message),
        }
    }
}

enum ReplyBody {
    Json(Value),
    Error(ApiErr),
    Html(String),
    Empty,
}

struct RateInfo {
    limit: u32,
    remaining: u32,
    reset: u64,
}

struct Reply {
    status: u16,
    body: ReplyBody,
    rate: Option<RateInfo>,
    retry_after: Option<u64>,
}

impl Reply {
    fn ok(v: Value) -> Reply {
        Reply {
            status: 200,
            body: ReplyBody::Json(v),
            rate: None,
            retry_after: None,
        }
    }

    fn err(e: ApiErr) -> Reply {
        Reply {
            status: e.status,
            body: ReplyBody::Error(e),
            rate: None,
            retry_after: None,
        }
    }

    fn into_response(self, request_id: &str, malformed: bool) -> Response {
        let (mut status, content_type, mut bytes) = match self.body {
            ReplyBody::Json(v) => (
                self.status,
                "application/json; charset=utf-8",
                json_bytes(&v),
            ),
            ReplyBody::Error(e) => (
                self.status,
                "application/json; charset=utf-8",
                json_bytes(&e.body(request_id)),
            ),
            ReplyBody::Html(h) => (self.status, "text/html; charset=utf-8", h.into_bytes()),
            ReplyBody::Empty => (self.status, "application/json; charset=utf-8", Vec::new()),
        };
        if malformed {
            // A 200 whose JSON is cut off half-way: never valid.
            status = 200;
            let keep = bytes.len() / 2;
            bytes.truncate(keep.max(1));
            if bytes.is_empty() {
                bytes.push(b'{');
            }
        }
        let mut response = Response::new(Body::from(bytes));
        *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
        let h = response.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        if let Ok(v) = HeaderValue::from_str(request_id) {
            h.insert(HeaderName::from_static("x-tlx-request-id"), v);
        }
        if let Some(rate) = self.rate {
            h.insert(
                HeaderName::from_static("x-rate-limit-limit"),
                HeaderValue::from(rate.limit),
            );
            h.insert(
                HeaderName::from_static("x-rate-limit-remaining"),
                HeaderValue::from(rate.remaining),
            );
            h.insert(
                HeaderName::from_static("x-rate-limit-reset"),
                HeaderValue::from(rate.reset),
            );
        }
        if let Some(secs) = self.retry_after {
            h.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

fn json_bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_else(|_| b"{}".to_vec())
}

/// The fault a request takes, if any.
enum Taken {
    Status {
        status: u16,
        retry_after: Option<u64>,
    },
    Slow(Duration),
    Malformed,
    LostAnswer(u16),
    ExpireSessions,
}

fn take_fault(st: &mut State, path: &str) -> Option<Taken> {
    let pos = st.faults.iter().position(|f| match f {
        Fault::Status { path_prefix, .. } | Fault::LostAnswer { path_prefix, .. } => path_prefix
            .as_deref()
            .is_none_or(|prefix| path.starts_with(prefix)),
        _ => true,
    })?;
    let (taken, left) = match st.faults.get_mut(pos)? {
        Fault::Status {
            status,
            retry_after,
            times,
            ..
        } => {
            *times = times.saturating_sub(1);
            (
                Taken::Status {
                    status: *status,
                    retry_after: *retry_after,
                },
                *times,
            )
        }
        Fault::Slow { delay, times } => {
            *times = times.saturating_sub(1);
            (Taken::Slow(*delay), *times)
        }
        Fault::Malformed { times } => {
            *times = times.saturating_sub(1);
            (Taken::Malformed, *times)
        }
        Fault::LostAnswer { status, times, .. } => {
            *times = times.saturating_sub(1);
            (Taken::LostAnswer(*status), *times)
        }
        Fault::ExpireSessions => (Taken::ExpireSessions, 0),
    };
    if left == 0 {
        st.faults.remove(pos);
    }
    Some(taken)
}

fn fault_reply(status: u16, retry_after: Option<u64>) -> Reply {
    let mut reply = match status {
        502..=504 => Reply {
            status,
            body: ReplyBody::Html(format!(
                "<html><head><title>{status}</title></head><body><center><h1>{status} {}</h1></center></body></html>\n",
                StatusCode::from_u16(status)
                    .ok()
                    .and_then(|s| s.canonical_reason())
                    .unwrap_or("Error")
            )),
            rate: None,
            retry_after: None,
        },
        _ => {
            let code = match status {
                400 => 4000,
                401 => 3000,
                403 => 9000,
                404 => 6000,
                409 => 8000,
                422 => 18000,
                500..=599 => 1000,
                _ => 0,
            };
            let message = StatusCode::from_u16(status)
                .ok()
                .and_then(|s| s.canonical_reason())
                .unwrap_or("Error");
            Reply::err(ApiErr::new(status, code, message, "injected fault"))
        }
    };
    if status == 429 {
        reply.rate = Some(RateInfo {
            limit: UNLIMITED,
            remaining: 0,
            reset: retry_after.unwrap_or(1),
        });
    }
    reply.retry_after = retry_after;
    reply
}

async fn entry(
    AxState(app): AxState<Arc<App>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    let request_id = uuid::Uuid::new_v4().to_string();
    if !(path == "/v2" || path.starts_with("/v2/")) {
        let not_found = Reply::err(ApiErr::not_found(format!("no such path: {path}")));
        return not_found.into_response(&request_id, false);
    }
    let query = uri.query().unwrap_or("").to_string();
    let taken = take_fault(&mut app.lock(), &path);
    let mut malformed = false;
    let reply = match taken {
        Some(Taken::Status {
            status,
            retry_after,
        }) => fault_reply(status, retry_after),
        Some(Taken::Slow(delay)) => {
            tokio::time::sleep(delay).await;
            handle(&app, &method, &uri, &headers, &body)
        }
        Some(Taken::Malformed) => {
            malformed = true;
            handle(&app, &method, &uri, &headers, &body)
        }
        Some(Taken::LostAnswer(status)) => {
            // The platform acts; its answer never reaches the client.
            let _acted = handle(&app, &method, &uri, &headers, &body);
            fault_reply(status, None)
        }
        Some(Taken::ExpireSessions) => {
            app.expire_sessions();
            handle(&app, &method, &uri, &headers, &body)
        }
        None => handle(&app, &method, &uri, &headers, &body),
    };
    let status = if malformed { 200 } else { reply.status };
    let response = reply.into_response(&request_id, malformed);
    push_request(
        &mut app.lock().requests,
        LoggedRequest {
            method: method.to_string(),
            path,
            query,
            status,
            at: Instant::now(),
        },
    );
    response
}

/// Query parameters; the first occurrence of a name wins.
pub(crate) struct Params(Vec<(String, String)>);

impl Params {
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A parameter that is present and not blank.
    fn present(&self, name: &str) -> Option<&str> {
        self.get(name).map(str::trim).filter(|v| !v.is_empty())
    }

    /// Everything but paging, in a stable order: the key of a listing's cache.
    fn cache_key(&self, what: &str) -> String {
        let mut pairs: Vec<&(String, String)> = self
            .0
            .iter()
            .filter(|(k, _)| k != "from" && k != "count")
            .collect();
        pairs.sort();
        let mut key = what.to_string();
        for (k, v) in pairs {
            key.push('&');
            key.push_str(k);
            key.push('=');
            key.push_str(v);
        }
        key
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let (Some(h), Some(l)) = (
                b.get(i + 1).and_then(|c| (*c as char).to_digit(16)),
                b.get(i + 2).and_then(|c| (*c as char).to_digit(16)),
            )
        {
            out.push(u8::try_from(h * 16 + l).unwrap_or(b'?'));
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn handle(app: &Arc<App>, method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> Reply {
    let params = match Query::<Vec<(String, String)>>::try_from_uri(uri) {
        Ok(Query(p)) => Params(p),
        Err(e) => return Reply::err(ApiErr::bad_request(format!("bad query string: {e}"))),
    };
    let segs: Vec<String> = uri
        .path()
        .trim_start_matches("/v2")
        .split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();

    let (reply, out) = {
        let mut st = app.lock();
        if segs == ["token", "session", ":create"] {
            let reply = if *method == Method::PUT {
                match session_create(&mut st, &app.base, &params) {
                    Ok(v) => Reply::ok(v),
                    Err(e) => Reply::err(e),
                }
            } else {
                Reply::err(method_not_allowed(method))
            };
            return reply;
        }
        let token = match authenticate(&st, headers) {
            Ok(t) => t,
            Err(e) => return Reply::err(e),
        };
        let (rate, allowed) = rate_check(&mut st, &token);
        if !allowed {
            let mut reply = Reply::err(ApiErr::new(
                429,
                0,
                "Too Many Requests",
                "rate limit exceeded for this period",
            ));
            reply.rate = Some(rate);
            return reply;
        }
        let mut events = Vec::new();
        let mut reply = match route(
            &mut st,
            &app.base,
            method,
            &segs,
            &params,
            body,
            &token,
            &mut events,
        ) {
            Ok(r) => r,
            Err(e) => Reply::err(e),
        };
        reply.rate = Some(rate);
        let out = webhooks::prepare(&st, &app.base, &events);
        (reply, out)
    };
    webhooks::spawn(app, out);
    reply
}

fn method_not_allowed(method: &Method) -> ApiErr {
    ApiErr::new(
        405,
        4000,
        "Method not allowed",
        format!("{method} is not allowed here"),
    )
}

fn authenticate(st: &State, headers: &HeaderMap) -> Result<String, ApiErr> {
    let raw = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| ApiErr::unauthorized("missing Authorization header"))?;
    let (scheme, rest) = raw
        .trim()
        .split_once(' ')
        .ok_or_else(|| ApiErr::unauthorized("malformed Authorization header"))?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(ApiErr::unauthorized("expected Basic authentication"));
    }
    let decoded = STANDARD
        .decode(rest.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| ApiErr::unauthorized("malformed Basic credentials"))?;
    let (company, token) = decoded
        .split_once(':')
        .ok_or_else(|| ApiErr::unauthorized("malformed Basic credentials"))?;
    let session = st
        .sessions
        .get(token)
        .ok_or_else(|| ApiErr::unauthorized("unknown session token"))?;
    if session.expired || st.today >= session.expiration {
        return Err(ApiErr::unauthorized("the session token has expired"));
    }
    if !(company.is_empty() || company == "0") {
        return Err(ApiErr::forbidden(
            "no login access to the company given as user name",
        ));
    }
    Ok(token.to_string())
}

fn rate_check(st: &mut State, token: &str) -> (RateInfo, bool) {
    let limit = st.rate_limit;
    let Some(s) = st.sessions.get_mut(token) else {
        return (
            RateInfo {
                limit: UNLIMITED,
                remaining: UNLIMITED,
                reset: 60,
            },
            true,
        );
    };
    let now = Instant::now();
    if now.duration_since(s.window_start) >= RATE_PERIOD {
        s.window_start = now;
        s.window_count = 0;
    }
    s.window_count = s.window_count.saturating_add(1);
    let shown = limit.unwrap_or(UNLIMITED);
    let elapsed = now.duration_since(s.window_start);
    let left = RATE_PERIOD.saturating_sub(elapsed);
    let reset = left.as_secs() + u64::from(left.subsec_nanos() > 0);
    (
        RateInfo {
            limit: shown,
            remaining: shown.saturating_sub(s.window_count),
            reset: reset.max(1),
        },
        limit.is_none_or(|l| s.window_count <= l),
    )
}

fn session_create(st: &mut State, base: &str, q: &Params) -> Result<Value, ApiErr> {
    let missing: Vec<(String, String)> = ["consumerToken", "employeeToken", "expirationDate"]
        .iter()
        .filter(|f| q.present(f).is_none())
        .map(|f| (f.to_string(), "Kan ikke være null.".to_string()))
        .collect();
    if !missing.is_empty() {
        return Err(ApiErr::validation(21000, missing));
    }
    let consumer = q.present("consumerToken").unwrap_or("");
    let employee = q.present("employeeToken").unwrap_or("");
    if consumer != st.consumer_token {
        return Err(ApiErr::forbidden("invalid consumer token"));
    }
    if employee != st.employee_token {
        return Err(ApiErr::forbidden("invalid employee token"));
    }
    let expiration = parse_date(q, "expirationDate")?.unwrap_or(st.today);
    if expiration <= st.today {
        return Err(ApiErr::rule(
            "expirationDate",
            "Utløpsdato må være etter dagens dato.",
        ));
    }
    let id = st.next_session_id;
    st.next_session_id += 1;
    let inner = json!({"tokenId": id, "token": uuid::Uuid::new_v4().to_string()});
    let token = STANDARD.encode(json_bytes(&inner));
    st.sessions.insert(
        token.clone(),
        Session {
            expiration,
            expired: false,
            window_start: Instant::now(),
            window_count: 0,
        },
    );
    st.sessions_created += 1;
    Ok(json!({"value": {
        "id": id,
        "version": 0,
        "url": format!("{base}/token/session/{id}"),
        "consumerToken": {"id": 11, "url": format!("{base}/token/consumer/11")},
        "employeeToken": {"id": 21, "url": format!("{base}/token/employee/21")},
        "expirationDate": expiration.format("%Y-%m-%d").to_string(),
        "token": token,
        "encryptionKey": null,
    }}))
}

/// A `YYYY-MM-DD` parameter: `None` when absent, 422 when malformed.
fn parse_date(q: &Params, name: &str) -> Result<Option<NaiveDate>, ApiErr> {
    let Some(v) = q.present(name) else {
        return Ok(None);
    };
    strict_date(v)
        .map(Some)
        .ok_or_else(|| ApiErr::param(name, "Ugyldig dato, forventet YYYY-MM-DD."))
}

pub(crate) fn strict_date(v: &str) -> Option<NaiveDate> {
    let b = v.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    NaiveDate::parse_from_str(v, "%Y-%m-%d").ok()
}

fn parse_i64(q: &Params, name: &str) -> Result<Option<i64>, ApiErr> {
    let Some(v) = q.present(name) else {
        return Ok(None);
    };
    v.parse::<i64>()
        .map(Some)
        .map_err(|_| ApiErr::param(name, "Ugyldig heltall."))
}

fn parse_id_list(q: &Params, name: &str) -> Result<Option<Vec<i64>>, ApiErr> {
    let Some(v) = q.present(name) else {
        return Ok(None);
    };
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<i64>())
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
        .map_err(|_| ApiErr::param(name, "Ugyldig liste av id-er."))
}

fn parse_decimal(q: &Params, name: &str) -> Result<Option<Decimal>, ApiErr> {
    let Some(v) = q.present(name) else {
        return Ok(None);
    };
    Decimal::from_str(v)
        .or_else(|_| Decimal::from_scientific(v))
        .map(Some)
        .map_err(|_| ApiErr::param(name, "Ugyldig tall."))
}

fn parse_bool(q: &Params, name: &str) -> Result<Option<bool>, ApiErr> {
    match q.present(name) {
        None => Ok(None),
        Some(v) if v.eq_ignore_ascii_case("true") => Ok(Some(true)),
        Some(v) if v.eq_ignore_ascii_case("false") => Ok(Some(false)),
        Some(_) => Err(ApiErr::param(name, "Ugyldig boolsk verdi.")),
    }
}

fn paging(q: &Params) -> Result<(usize, usize), ApiErr> {
    let from = match q.present("from") {
        None => 0,
        Some(v) => v
            .parse::<usize>()
            .map_err(|_| ApiErr::param("from", "Ugyldig heltall."))?,
    };
    let count = match q.present("count") {
        None => 1000,
        Some(v) => v
            .parse::<usize>()
            .map_err(|_| ApiErr::param("count", "Ugyldig heltall."))?,
    };
    if count > MAX_COUNT {
        return Err(ApiErr::rule(
            "count",
            &format!("Maks {MAX_COUNT} elementer per side."),
        ));
    }
    Ok((from, count))
}

fn fields(q: &Params, ty: Ty) -> Result<Sel, ApiErr> {
    selection(q.get("fields").unwrap_or(""), ty).map_err(|name| ApiErr::illegal_field(&name))
}

/// The `sorting` parameter: (field, descending) pairs, each field one of `allowed`.
fn sorting(q: &Params, allowed: &[&str]) -> Result<Vec<(String, bool)>, ApiErr> {
    let Some(v) = q.present("sorting") else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for item in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (name, desc) = match item.strip_prefix('-') {
            Some(n) => (n.trim(), true),
            None => (item, false),
        };
        if !allowed.contains(&name) {
            return Err(ApiErr::bad_request(format!(
                "Illegal field in sorting: {name}"
            )));
        }
        out.push((name.to_string(), desc));
    }
    Ok(out)
}

struct HashWriter<'a>(&'a mut Sha256);

impl std::io::Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// SHA-256 (hex) over every rendered row, `None` for an empty result.
fn digest(rows: impl Iterator<Item = Value>) -> Option<String> {
    let mut h = Sha256::new();
    let mut any = false;
    for row in rows {
        any = true;
        let _ = serde_json::to_writer(HashWriter(&mut h), &row);
        h.update(b"\n");
    }
    if !any {
        return None;
    }
    let bytes = h.finalize();
    let mut hex = String::with_capacity(64);
    for b in bytes.iter() {
        hex.push_str(&format!("{b:02x}"));
    }
    Some(hex)
}

fn envelope(total: usize, from: usize, values: Vec<Value>, digest: Option<String>) -> Value {
    let mut m = Map::new();
    m.insert("fullResultSize".into(), total.into());
    m.insert("from".into(), from.into());
    m.insert("count".into(), values.len().into());
    m.insert(
        "versionDigest".into(),
        digest.map_or(Value::Null, Value::String),
    );
    m.insert("values".into(), Value::Array(values));
    Value::Object(m)
}

/// A listing: the cached full result (ids and digest), or `compute` and cache it; then one page
/// rendered with `render_one`.
fn listing(
    st: &mut State,
    key: String,
    from: usize,
    count: usize,
    compute: impl FnOnce(&State) -> Vec<i64>,
    render_one: impl Fn(&State, i64) -> Option<Value>,
) -> Value {
    let cached = match st.cache_get(&key) {
        Some(c) => c,
        None => {
            let ids = compute(st);
            let d = digest(ids.iter().filter_map(|id| render_one(st, *id)));
            let c = Arc::new(CachedList { ids, digest: d });
            st.cache_put(key, c.clone());
            c
        }
    };
    let values: Vec<Value> = cached
        .ids
        .iter()
        .skip(from)
        .take(count)
        .filter_map(|id| render_one(st, *id))
        .collect();
    envelope(cached.ids.len(), from, values, cached.digest.clone())
}

#[allow(clippy::too_many_arguments)]
fn route(
    st: &mut State,
    base: &str,
    method: &Method,
    segs: &[&str],
    q: &Params,
    body: &[u8],
    token: &str,
    events: &mut Vec<Event>,
) -> Result<Reply, ApiErr> {
    let get = *method == Method::GET;
    let put = *method == Method::PUT;
    let post = *method == Method::POST;
    let delete = *method == Method::DELETE;
    let only = |ok: bool| {
        if ok {
            Ok(())
        } else {
            Err(method_not_allowed(method))
        }
    };
    match segs {
        ["token", "session", ">whoAmI"] => {
            only(get)?;
            Ok(Reply::ok(json!({"value": {
                "employeeId": EMPLOYEE_ID,
                "employee": {"id": EMPLOYEE_ID, "url": format!("{base}/employee/{EMPLOYEE_ID}")},
                "actualEmployeeId": EMPLOYEE_ID,
                "actualEmployee": {"id": EMPLOYEE_ID, "url": format!("{base}/employee/{EMPLOYEE_ID}")},
                "companyId": COMPANY_ID,
                "company": {"id": COMPANY_ID, "url": format!("{base}/company/{COMPANY_ID}")},
                "language": "no",
            }})))
        }
        ["token", "session", which] => {
            only(delete)?;
            let which = if *which == ">whoAmI" { token } else { which };
            if st.sessions.remove(which).is_none() {
                return Err(ApiErr::not_found("no such session token"));
            }
            Ok(Reply {
                status: 204,
                body: ReplyBody::Empty,
                rate: None,
                retry_after: None,
            })
        }
        ["invoice"] => {
            only(get)?;
            list_invoices(st, base, q).map(Reply::ok)
        }
        ["invoice", "paymentType"] => {
            only(get)?;
            list_payment_types(st, base, q).map(Reply::ok)
        }
        ["invoice", "paymentType", id] => {
            only(get)?;
            get_one(st, base, q, id, Ty::PaymentType, ORef::PaymentType)
        }
        ["invoice", id] => {
            only(get)?;
            get_one(st, base, q, id, Ty::Invoice, ORef::Invoice)
        }
        ["invoice", id, ":payment"] => {
            only(put)?;
            payment(st, base, q, id, events).map(Reply::ok)
        }
        ["invoice", id, ":createCreditNote"] => {
            only(put)?;
            credit_note(st, base, q, id, events).map(Reply::ok)
        }
        ["customer"] => {
            only(get)?;
            list_customers(st, base, q).map(Reply::ok)
        }
        ["customer", id] => {
            only(get)?;
            get_one(st, base, q, id, Ty::Customer, ORef::Customer)
        }
        ["event"] => {
            only(get)?;
            let mut m = Map::new();
            for (name, description, model) in webhooks::EVENTS {
                m.insert(
                    (*name).to_string(),
                    json!({"description": description, "payloadModel": model}),
                );
            }
            Ok(Reply::ok(json!({"value": m})))
        }
        ["event", "subscription"] if get => list_subscriptions(st, base, q).map(Reply::ok),
        ["event", "subscription"] => {
            only(post)?;
            create_subscription(st, base, body).map(Reply::ok)
        }
        ["event", "subscription", id] => {
            let id = parse_path_id(id)?;
            if get {
                get_one(
                    st,
                    base,
                    q,
                    &id.to_string(),
                    Ty::Subscription,
                    ORef::Subscription,
                )
            } else if put {
                update_subscription(st, base, id, body).map(Reply::ok)
            } else if delete {
                if st.subscriptions.remove(&id).is_none() {
                    return Err(ApiErr::not_found(format!("no subscription with id {id}")));
                }
                st.touch();
                Ok(Reply {
                    status: 204,
                    body: ReplyBody::Empty,
                    rate: None,
                    retry_after: None,
                })
            } else {
                Err(method_not_allowed(method))
            }
        }
        ["event", name] => {
            only(get)?;
            event_info(st, base, name).map(Reply::ok)
        }
        ["ledger", "voucher", id] => {
            only(get)?;
            get_one(st, base, q, id, Ty::Voucher, ORef::Voucher)
        }
        ["ledger", "posting", id] => {
            only(get)?;
            get_one(st, base, q, id, Ty::Posting, ORef::Posting)
        }
        ["ledger", "closeGroup", id] => {
            only(get)?;
            get_one(st, base, q, id, Ty::CloseGroup, ORef::CloseGroup)
        }
        ["ledger", "account", id] => {
            only(get)?;
            get_one(st, base, q, id, Ty::Account, ORef::Account)
        }
        ["ledger", "vatType", id] => {
            only(get)?;
            get_one(st, base, q, id, Ty::VatType, ORef::VatType)
        }
        ["currency", id] => {
            only(get)?;
            get_one(st, base, q, id, Ty::Currency, ORef::Currency)
        }
        ["country", id] => {
            only(get)?;
            get_one(st, base, q, id, Ty::Country, ORef::Country)
        }
        ["reminder", id] => {
            only(get)?;
            get_one(st, base, q, id, Ty::Reminder, ORef::Reminder)
        }
        ["invoiceRemark", id] => {
            only(get)?;
            get_one(st, base, q, id, Ty::InvoiceRemark, ORef::Remark)
        }
        _ => Err(ApiErr::not_found(format!(
            "no such endpoint: /v2/{}",
            segs.join("/")
        ))),
    }
}

fn parse_path_id(id: &str) -> Result<i64, ApiErr> {
    id.parse::<i64>()
        .map_err(|_| ApiErr::not_found(format!("no object with id {id}")))
}

fn get_one(
    st: &State,
    base: &str,
    q: &Params,
    id: &str,
    ty: Ty,
    make: fn(i64) -> ORef,
) -> Result<Reply, ApiErr> {
    let id = parse_path_id(id)?;
    let sel = fields(q, ty)?;
    let cx = Cx { st, base };
    match render_ref(&cx, &make(id), Some(&sel)) {
        Value::Null => Err(ApiErr::not_found(format!("no object with id {id}"))),
        v => Ok(Reply::ok(json!({ "value": v }))),
    }
}

const INVOICE_SORTS: &[&str] = &[
    "id",
    "invoiceNumber",
    "invoiceDate",
    "invoiceDueDate",
    "amount",
    "amountOutstanding",
];

fn invoice_cmp(a: &Invoice, b: &Invoice, sorts: &[(String, bool)]) -> std::cmp::Ordering {
    for (name, desc) in sorts {
        let o = match name.as_str() {
            "id" => a.id.cmp(&b.id),
            "invoiceNumber" => a.number.cmp(&b.number),
            "invoiceDate" => a.invoice_date.cmp(&b.invoice_date),
            "invoiceDueDate" => a.due_date.cmp(&b.due_date),
            "amount" => a.amount.cmp(&b.amount),
            "amountOutstanding" => a.outstanding.cmp(&b.outstanding),
            _ => std::cmp::Ordering::Equal,
        };
        let o = if *desc { o.reverse() } else { o };
        if o.is_ne() {
            return o;
        }
    }
    a.id.cmp(&b.id)
}

fn list_invoices(st: &mut State, base: &str, q: &Params) -> Result<Value, ApiErr> {
    let mut problems = Vec::new();
    for name in ["invoiceDateFrom", "invoiceDateTo"] {
        match q.present(name) {
            None => problems.push((name.to_string(), "Kan ikke være null.".to_string())),
            Some(v) if strict_date(v).is_none() => problems.push((
                name.to_string(),
                "Ugyldig dato, forventet YYYY-MM-DD.".to_string(),
            )),
            Some(_) => {}
        }
    }
    if !problems.is_empty() {
        return Err(ApiErr::validation(21000, problems));
    }
    let date_from = parse_date(q, "invoiceDateFrom")?.unwrap_or(NaiveDate::MIN);
    let date_to = parse_date(q, "invoiceDateTo")?.unwrap_or(NaiveDate::MIN);
    if date_from >= date_to {
        return Err(ApiErr::rule(
            "invoiceDateTo",
            "Til-dato (ikke inkludert) må være etter fra-dato.",
        ));
    }
    let ids = parse_id_list(q, "id")?;
    let voucher_ids = parse_id_list(q, "voucherId")?;
    let number = match q.present("invoiceNumber") {
        None => None,
        Some(v) => Some(
            v.parse::<i32>()
                .map_err(|_| ApiErr::param("invoiceNumber", "Ugyldig heltall."))?,
        ),
    };
    let kid = q.present("kid").map(str::to_string);
    let customer = parse_i64(q, "customerId")?;
    let (from, count) = paging(q)?;
    let sorts = sorting(q, INVOICE_SORTS)?;
    let sel = fields(q, Ty::Invoice)?;
    let key = q.cache_key("invoice");
    let compute = |st: &State| {
        let keep = |inv: &&Invoice| {
            inv.invoice_date >= date_from
                && inv.invoice_date < date_to
                && number.is_none_or(|n| inv.number == n)
                && kid.as_deref().is_none_or(|k| inv.kid == k)
                && customer.is_none_or(|c| inv.customer == c)
                && voucher_ids
                    .as_ref()
                    .is_none_or(|v| v.contains(&inv.voucher))
        };
        let mut rows: Vec<&Invoice> = match &ids {
            Some(ids) => ids
                .iter()
                .filter_map(|id| st.invoices.get(id))
                .filter(keep)
                .collect(),
            None => st
                .by_date
                .range((date_from, i64::MIN)..(date_to, i64::MIN))
                .filter_map(|(_, id)| st.invoices.get(id))
                .filter(keep)
                .collect(),
        };
        rows.sort_by(|a, b| invoice_cmp(a, b, &sorts));
        rows.dedup_by_key(|i| i.id);
        rows.iter().map(|i| i.id).collect()
    };
    let render_one = |st: &State, id: i64| {
        let cx = Cx { st, base };
        st.invoices.get(&id).map(|i| render(&cx, i, &sel))
    };
    Ok(listing(st, key, from, count, compute, render_one))
}

fn customer_cmp(a: &Customer, b: &Customer, sorts: &[(String, bool)]) -> std::cmp::Ordering {
    for (name, desc) in sorts {
        let o = match name.as_str() {
            "id" => a.id.cmp(&b.id),
            "name" => a.name.cmp(&b.name),
            "customerNumber" => a.number.cmp(&b.number),
            _ => std::cmp::Ordering::Equal,
        };
        let o = if *desc { o.reverse() } else { o };
        if o.is_ne() {
            return o;
        }
    }
    a.id.cmp(&b.id)
}

fn parse_changed_since(q: &Params) -> Result<Option<NaiveDateTime>, ApiErr> {
    let Some(v) = q.present("changedSince") else {
        return Ok(None);
    };
    if let Some(d) = strict_date(v) {
        return Ok(Some(d.and_time(chrono::NaiveTime::MIN)));
    }
    for format in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M:%S",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(v, format) {
            return Ok(Some(t));
        }
    }
    Err(ApiErr::param(
        "changedSince",
        "Ugyldig tidspunkt, forventet YYYY-MM-DDThh:mm:ss.",
    ))
}

fn list_customers(st: &mut State, base: &str, q: &Params) -> Result<Value, ApiErr> {
    let ids = parse_id_list(q, "id")?;
    let numbers = parse_id_list(q, "customerAccountNumber")?;
    let org = q.present("organizationNumber").map(str::to_string);
    let email = q.present("email").map(str::to_string);
    let invoice_email = q.present("invoiceEmail").map(str::to_string);
    let name = q.present("customerName").map(str::to_lowercase);
    let mobile = q.present("phoneNumberMobile").map(str::to_string);
    let inactive = parse_bool(q, "isInactive")?.unwrap_or(false);
    let changed_since = parse_changed_since(q)?;
    let (from, count) = paging(q)?;
    let sorts = sorting(q, &["id", "name", "customerNumber"])?;
    let sel = fields(q, Ty::Customer)?;
    let key = q.cache_key("customer");
    let compute = |st: &State| {
        let mut rows: Vec<&Customer> = st
            .customers
            .values()
            .filter(|c| {
                c.is_inactive == inactive
                    && ids.as_ref().is_none_or(|ids| ids.contains(&c.id))
                    && numbers
                        .as_ref()
                        .is_none_or(|n| n.contains(&i64::from(c.number)))
                    && org.as_deref().is_none_or(|o| c.organization_number == o)
                    && email.as_deref().is_none_or(|e| c.email == e)
                    && invoice_email
                        .as_deref()
                        .is_none_or(|e| c.invoice_email == e)
                    && name
                        .as_deref()
                        .is_none_or(|n| c.name.to_lowercase().contains(n))
                    && mobile.as_deref().is_none_or(|m| c.phone_number_mobile == m)
                    && changed_since.is_none_or(|t| c.last_change().is_some_and(|l| l >= t))
            })
            .collect();
        rows.sort_by(|a, b| customer_cmp(a, b, &sorts));
        rows.iter().map(|c| c.id).collect()
    };
    let render_one = |st: &State, id: i64| {
        let cx = Cx { st, base };
        st.customers.get(&id).map(|c| render(&cx, c, &sel))
    };
    Ok(listing(st, key, from, count, compute, render_one))
}

fn list_payment_types(st: &mut State, base: &str, q: &Params) -> Result<Value, ApiErr> {
    let ids = parse_id_list(q, "id")?;
    let description = q.present("description").map(str::to_lowercase);
    let query = q.present("query").map(str::to_lowercase);
    let (from, count) = paging(q)?;
    let sel = fields(q, Ty::PaymentType)?;
    let key = q.cache_key("paymentType");
    let compute = |_: &State| {
        PAYMENT_TYPES
            .iter()
            .filter(|p| {
                let d = p.description.to_lowercase();
                ids.as_ref().is_none_or(|ids| ids.contains(&p.id))
                    && description.as_deref().is_none_or(|x| d.contains(x))
                    && query.as_deref().is_none_or(|x| d.contains(x))
            })
            .map(|p: &PaymentTypeRec| p.id)
            .collect()
    };
    let render_one = |st: &State, id: i64| {
        let cx = Cx { st, base };
        model::payment_type(id).map(|p| render(&cx, p, &sel))
    };
    Ok(listing(st, key, from, count, compute, render_one))
}

fn list_subscriptions(st: &mut State, base: &str, q: &Params) -> Result<Value, ApiErr> {
    let (from, count) = paging(q)?;
    let sel = fields(q, Ty::Subscription)?;
    let key = q.cache_key("subscription");
    let compute = |st: &State| st.subscriptions.keys().copied().collect();
    let render_one = |st: &State, id: i64| {
        let cx = Cx { st, base };
        st.subscriptions.get(&id).map(|s| render(&cx, s, &sel))
    };
    Ok(listing(st, key, from, count, compute, render_one))
}

fn payment(
    st: &mut State,
    base: &str,
    q: &Params,
    id: &str,
    events: &mut Vec<Event>,
) -> Result<Value, ApiErr> {
    let id = parse_path_id(id)?;
    if !st.invoices.contains_key(&id) {
        return Err(ApiErr::not_found(format!("no invoice with id {id}")));
    }
    let sel = fields(q, Ty::Invoice)?;
    let missing: Vec<(String, String)> = ["paymentDate", "paymentTypeId", "paidAmount"]
        .iter()
        .filter(|f| q.present(f).is_none())
        .map(|f| (f.to_string(), "Kan ikke være null.".to_string()))
        .collect();
    if !missing.is_empty() {
        return Err(ApiErr::validation(21000, missing));
    }
    let date = parse_date(q, "paymentDate")?.unwrap_or(st.today);
    let ptype = parse_i64(q, "paymentTypeId")?.unwrap_or(0);
    let paid = parse_decimal(q, "paidAmount")?.unwrap_or(Decimal::ZERO);
    let paid_currency = parse_decimal(q, "paidAmountCurrency")?;
    let at = st.now();
    events.extend(st.pay(id, paid, paid_currency, date, ptype, at)?);
    let cx = Cx { st, base };
    let value = st
        .invoices
        .get(&id)
        .map_or(Value::Null, |i| render(&cx, i, &sel));
    Ok(json!({ "value": value }))
}

fn credit_note(
    st: &mut State,
    base: &str,
    q: &Params,
    id: &str,
    events: &mut Vec<Event>,
) -> Result<Value, ApiErr> {
    let id = parse_path_id(id)?;
    if !st.invoices.contains_key(&id) {
        return Err(ApiErr::not_found(format!("no invoice with id {id}")));
    }
    let sel = fields(q, Ty::Invoice)?;
    let Some(date) = parse_date(q, "date")? else {
        return Err(ApiErr::param("date", "Kan ikke være null."));
    };
    let comment = q.present("comment").map(str::to_string);
    parse_bool(q, "sendToCustomer")?;
    let at = st.now();
    let (note, evs) = st.credit(id, None, date, comment, at)?;
    events.extend(evs);
    let cx = Cx { st, base };
    let value = st
        .invoices
        .get(&note)
        .map_or(Value::Null, |i| render(&cx, i, &sel));
    Ok(json!({ "value": value }))
}

fn event_info(st: &State, base: &str, name: &str) -> Result<Value, ApiErr> {
    let Some((name, description, model)) = webhooks::EVENTS.iter().find(|(n, _, _)| n == &name)
    else {
        return Err(ApiErr::not_found(format!("no such event: {name}")));
    };
    let cx = Cx { st, base };
    let example = if name.ends_with(".delete") {
        None
    } else {
        match webhooks::payload_type(name) {
            Ty::Invoice => st.invoices.keys().next().map(|id| ORef::Invoice(*id)),
            Ty::Customer => st.customers.keys().next().map(|id| ORef::Customer(*id)),
            Ty::Voucher => st.vouchers.first().map(|v| ORef::Voucher(v.id)),
            _ => st.close_groups.first().map(|c| ORef::CloseGroup(c.id)),
        }
    };
    let id = example.and_then(|r| match r {
        ORef::Invoice(id) | ORef::Customer(id) | ORef::Voucher(id) | ORef::CloseGroup(id) => {
            Some(id)
        }
        _ => None,
    });
    let value = example.map_or(Value::Null, |r| {
        render_ref(&cx, &r, Some(&webhooks::default_selection(name)))
    });
    Ok(json!({"value": {
        "name": name,
        "description": description,
        "payloadModel": model,
        "examples": [{"value": value, "event": name, "subscriptionId": 0, "id": id}],
    }}))
}

/// Reads a JSON object body.
fn json_object(body: &[u8]) -> Result<Map<String, Value>, ApiErr> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(ApiErr::validation(
            22000,
            vec![(String::new(), "Forventet et JSON-objekt.".to_string())],
        )),
        Err(e) => Err(ApiErr::validation(
            22000,
            vec![(String::new(), format!("Ugyldig JSON: {e}"))],
        )),
    }
}

fn body_err(field: &str, message: &str) -> ApiErr {
    ApiErr::validation(15000, vec![(field.to_string(), message.to_string())])
}

/// An optional string member: `Ok(None)` when absent, `Ok(Some(None))` when null.
fn opt_string(m: &Map<String, Value>, key: &str) -> Result<Option<Option<String>>, ApiErr> {
    match m.get(key) {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(Value::String(s)) => Ok(Some(Some(s.clone()))),
        Some(_) => Err(body_err(key, "Forventet en tekst.")),
    }
}

fn check_target_url(st: &State, url: &str) -> Result<(), ApiErr> {
    let parsed =
        reqwest::Url::parse(url).map_err(|_| body_err("targetUrl", "Må være en absolutt URL."))?;
    let scheme_ok =
        parsed.scheme() == "https" || (parsed.scheme() == "http" && st.allow_http_targets);
    if !scheme_ok {
        return Err(body_err("targetUrl", "Må bruke https."));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(body_err("targetUrl", "Mangler vertsnavn."));
    }
    Ok(())
}

/// Applies the writable members of a Subscription body.
fn apply_subscription(
    st: &State,
    sub: &mut Subscription,
    m: &Map<String, Value>,
) -> Result<(), ApiErr> {
    if let Some(event) = opt_string(m, "event")? {
        let event = event.unwrap_or_default();
        if !webhooks::EVENTS.iter().any(|(n, _, _)| *n == event) {
            return Err(body_err("event", "Ukjent hendelse (se GET /event)."));
        }
        sub.event = event;
    }
    if let Some(url) = opt_string(m, "targetUrl")? {
        let url = url.unwrap_or_default();
        check_target_url(st, &url)?;
        sub.target_url = url;
    }
    if let Some(fields) = opt_string(m, "fields")? {
        sub.fields = fields.unwrap_or_default();
    }
    if !sub.fields.trim().is_empty() {
        selection(&sub.fields, webhooks::payload_type(&sub.event)).map_err(|name| {
            body_err("fields", &format!("Illegal field in fields filter: {name}"))
        })?;
    }
    if let Some(name) = opt_string(m, "authHeaderName")? {
        if let Some(n) = &name
            && HeaderName::from_bytes(n.as_bytes()).is_err()
        {
            return Err(body_err("authHeaderName", "Ugyldig headernavn."));
        }
        sub.auth_header_name = name.filter(|n| !n.is_empty());
    }
    if let Some(value) = opt_string(m, "authHeaderValue")? {
        if let Some(v) = &value
            && HeaderValue::from_str(v).is_err()
        {
            return Err(body_err("authHeaderValue", "Ugyldig headerverdi."));
        }
        sub.auth_header_value = value.filter(|v| !v.is_empty());
    }
    if let Some(secret) = opt_string(m, "hmacSharedSecret")? {
        sub.hmac_secret = secret.filter(|s| !s.is_empty());
    }
    if let Some(status) = opt_string(m, "status")? {
        match status.as_deref() {
            Some("ACTIVE") => {
                sub.status = SubStatus::Active;
                sub.failures = 0;
            }
            Some("DISABLED") => sub.status = SubStatus::Disabled,
            None => {}
            Some(_) => return Err(body_err("status", "ACTIVE eller DISABLED.")),
        }
    }
    Ok(())
}

fn create_subscription(st: &mut State, base: &str, body: &[u8]) -> Result<Value, ApiErr> {
    let m = json_object(body)?;
    for required in ["event", "targetUrl"] {
        if !matches!(m.get(required), Some(Value::String(s)) if !s.is_empty()) {
            return Err(body_err(required, "Kan ikke være null."));
        }
    }
    let at = st.now();
    let mut sub = Subscription {
        id: st.next_subscription_id,
        version: 0,
        event: String::new(),
        target_url: String::new(),
        fields: String::new(),
        status: SubStatus::Active,
        auth_header_name: None,
        auth_header_value: None,
        hmac_secret: None,
        failures: 0,
        changes: vec![ChangeRec {
            timestamp: at,
            kind: ChangeKind::Create,
        }],
    };
    apply_subscription(st, &mut sub, &m)?;
    sub.status = SubStatus::Active;
    st.next_subscription_id += 1;
    let cx = Cx { st, base };
    let value = render(&cx, &sub, &super::schema::star(Ty::Subscription));
    st.subscriptions.insert(sub.id, sub);
    st.touch();
    Ok(json!({ "value": value }))
}

fn update_subscription(st: &mut State, base: &str, id: i64, body: &[u8]) -> Result<Value, ApiErr> {
    let m = json_object(body)?;
    let Some(current) = st.subscriptions.get(&id) else {
        return Err(ApiErr::not_found(format!("no subscription with id {id}")));
    };
    if let Some(v) = m.get("version").filter(|v| !v.is_null()) {
        let Some(v) = v.as_i64() else {
            return Err(body_err("version", "Forventet et heltall."));
        };
        if v != i64::from(current.version) {
            return Err(ApiErr::new(
                409,
                8000,
                "Revision conflict",
                format!(
                    "the subscription has version {}, the request was based on {v}",
                    current.version
                ),
            ));
        }
    }
    let mut sub = current.clone();
    apply_subscription(st, &mut sub, &m)?;
    sub.version += 1;
    let at = st.now();
    sub.changes.push(ChangeRec {
        timestamp: at,
        kind: ChangeKind::Update,
    });
    let cx = Cx { st, base };
    let value = render(&cx, &sub, &super::schema::star(Ty::Subscription));
    st.subscriptions.insert(id, sub);
    st.touch();
    Ok(json!({ "value": value }))
}
