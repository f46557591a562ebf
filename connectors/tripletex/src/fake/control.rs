//! The control API under `/_fake` (no auth, JSON): see the module docs of `fake`.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State as AxState};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde_json::{Map, Value, json};

use super::api::strict_date;
use super::model::{Cx, country_by_code, render};
use super::schema::{Ty, star};
use super::{App, CustomerChange, FakeError, Fault, NewAddress, NewCustomer, NewInvoice};

pub(crate) fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/_fake", get(summary))
        .route("/_fake/customers", post(create_customer))
        .route("/_fake/customers/{id}", patch(patch_customer))
        .route("/_fake/invoices", get(all_invoices).post(create_invoice))
        .route("/_fake/invoices/open", get(open_invoices))
        .route("/_fake/invoices/{id}/payments", post(pay))
        .route("/_fake/invoices/{id}/credit", post(credit))
        .route("/_fake/requests", get(requests).delete(clear_requests))
        .route("/_fake/deliveries", get(deliveries))
        .route(
            "/_fake/faults",
            get(list_faults).post(add_fault).delete(clear_faults),
        )
        .route("/_fake/clock", get(clock).post(set_clock))
        .route("/_fake/webhooks", post(set_webhooks))
        .route("/_fake/seed", post(reseed))
        .route("/_fake/sessions/expire", post(expire_sessions))
}

/// A control error: 400 naming the field, or 404.
struct Ce {
    status: StatusCode,
    field: Option<String>,
    message: String,
}

impl Ce {
    fn field(field: &str, message: impl Into<String>) -> Ce {
        Ce {
            status: StatusCode::BAD_REQUEST,
            field: Some(field.to_string()),
            message: message.into(),
        }
    }
}

impl From<FakeError> for Ce {
    fn from(e: FakeError) -> Ce {
        match e {
            FakeError::NotFound { .. } => Ce {
                status: StatusCode::NOT_FOUND,
                field: None,
                message: e.to_string(),
            },
            FakeError::Invalid { field, message } => Ce::field(&field, message),
        }
    }
}

impl IntoResponse for Ce {
    fn into_response(self) -> Response {
        (
            self.status,
            axum::Json(json!({"error": self.message, "field": self.field})),
        )
            .into_response()
    }
}

type Res = Result<Response, Ce>;

fn ok(v: Value) -> Res {
    Ok(axum::Json(v).into_response())
}

/// A JSON object body; an empty body is `{}`.
fn object(body: &[u8], allowed: &[&str]) -> Result<Map<String, Value>, Ce> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    let m = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => m,
        Ok(_) => return Err(Ce::field("body", "expected a JSON object")),
        Err(e) => return Err(Ce::field("body", format!("not JSON: {e}"))),
    };
    check_keys(&m, allowed, "")?;
    Ok(m)
}

fn check_keys(m: &Map<String, Value>, allowed: &[&str], prefix: &str) -> Result<(), Ce> {
    if let Some(k) = m.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(Ce::field(&format!("{prefix}{k}"), "unknown field"));
    }
    Ok(())
}

fn string(m: &Map<String, Value>, key: &str) -> Result<Option<String>, Ce> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(Ce::field(key, "expected a string")),
    }
}

fn boolean(m: &Map<String, Value>, key: &str) -> Result<Option<bool>, Ce> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(Ce::field(key, "expected true or false")),
    }
}

fn date(m: &Map<String, Value>, key: &str) -> Result<Option<NaiveDate>, Ce> {
    match string(m, key)? {
        None => Ok(None),
        Some(s) => strict_date(&s)
            .map(Some)
            .ok_or_else(|| Ce::field(key, "expected a date YYYY-MM-DD")),
    }
}

fn unsigned(m: &Map<String, Value>, key: &str) -> Result<Option<u64>, Ce> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .map(Some)
            .ok_or_else(|| Ce::field(key, "expected a whole number of zero or more")),
    }
}

fn integer(m: &Map<String, Value>, key: &str) -> Result<Option<i64>, Ce> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => s
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| Ce::field(key, "expected a whole number")),
        Some(v) => v
            .as_i64()
            .map(Some)
            .ok_or_else(|| Ce::field(key, "expected a whole number")),
    }
}

/// An amount given as a string ("1234.50") or a JSON number.
fn decimal(m: &Map<String, Value>, key: &str) -> Result<Option<Decimal>, Ce> {
    let text = match m.get(key) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => s.trim().to_string(),
        Some(Value::Number(n)) => n.to_string(),
        Some(_) => return Err(Ce::field(key, "expected an amount")),
    };
    Decimal::from_str(&text)
        .or_else(|_| Decimal::from_scientific(&text))
        .map(Some)
        .map_err(|_| Ce::field(key, "expected an amount"))
}

fn required<T>(v: Option<T>, key: &str) -> Result<T, Ce> {
    v.ok_or_else(|| Ce::field(key, "required"))
}

fn path_id(id: &str) -> Result<i64, Ce> {
    id.parse()
        .map_err(|_| Ce::field("id", "expected a numeric id"))
}

const ADDRESS_KEYS: &[&str] = &[
    "addressLine1",
    "addressLine2",
    "postalCode",
    "city",
    "country",
];

fn address(m: &Map<String, Value>, key: &str) -> Result<Option<NewAddress>, Ce> {
    let a = match m.get(key) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(a)) => a,
        Some(_) => return Err(Ce::field(key, "expected an object")),
    };
    check_keys(a, ADDRESS_KEYS, &format!("{key}."))?;
    let field = |k: &str| string(a, k).map_err(|e| Ce::field(&format!("{key}.{k}"), e.message));
    let country = field("country")?;
    if let Some(c) = &country
        && country_by_code(c).is_none()
    {
        return Err(Ce::field(
            &format!("{key}.country"),
            "unknown country code (NO, SE, DK, FI, DE, GB)",
        ));
    }
    Ok(Some(NewAddress {
        address_line1: field("addressLine1")?.unwrap_or_default(),
        address_line2: field("addressLine2")?.unwrap_or_default(),
        postal_code: field("postalCode")?.unwrap_or_default(),
        city: field("city")?.unwrap_or_default(),
        country,
    }))
}

const CUSTOMER_KEYS: &[&str] = &[
    "name",
    "isPrivateIndividual",
    "organizationNumber",
    "email",
    "invoiceEmail",
    "overdueNoticeEmail",
    "phoneNumber",
    "phoneNumberMobile",
    "language",
    "invoiceSendMethod",
    "postalAddress",
    "physicalAddress",
    "isInactive",
    "isFactoring",
    "isAutomaticSoftReminderEnabled",
    "isAutomaticReminderEnabled",
    "isAutomaticNoticeOfDebtCollectionEnabled",
];

const SEND_METHODS: &[&str] = &[
    "EMAIL",
    "EHF",
    "EFAKTURA",
    "AVTALEGIRO",
    "VIPPS",
    "PAPER",
    "MANUAL",
];

fn language(m: &Map<String, Value>) -> Result<Option<String>, Ce> {
    match string(m, "language")? {
        Some(l) if l == "NO" || l == "EN" => Ok(Some(l)),
        Some(_) => Err(Ce::field("language", "NO or EN")),
        None => Ok(None),
    }
}

fn send_method(m: &Map<String, Value>) -> Result<Option<String>, Ce> {
    match string(m, "invoiceSendMethod")? {
        Some(s) if SEND_METHODS.contains(&s.as_str()) => Ok(Some(s)),
        Some(_) => Err(Ce::field("invoiceSendMethod", SEND_METHODS.join(", "))),
        None => Ok(None),
    }
}

async fn summary(AxState(app): AxState<Arc<App>>) -> Res {
    let st = app.lock();
    ok(json!({
        "today": st.today.format("%Y-%m-%d").to_string(),
        "seed": st.seed,
        "seededInvoices": st.seeded_invoices,
        "customers": st.customers.len(),
        "invoices": st.invoices.len(),
        "openInvoices": st.invoices.values().filter(|i| i.is_open()).count(),
        "subscriptions": st.subscriptions.len(),
        "sessionsCreated": st.sessions_created,
        "webhooksEnabled": st.webhooks_enabled,
        "pendingFaults": st.faults.len(),
        "baseUrl": format!("http://{}", app.base),
    }))
}

async fn create_customer(AxState(app): AxState<Arc<App>>, body: Bytes) -> Res {
    let m = object(&body, CUSTOMER_KEYS)?;
    let name = required(string(&m, "name")?, "name")?;
    if name.trim().is_empty() {
        return Err(Ce::field("name", "must not be empty"));
    }
    let c = NewCustomer {
        name,
        is_private_individual: boolean(&m, "isPrivateIndividual")?.unwrap_or(false),
        organization_number: string(&m, "organizationNumber")?,
        email: string(&m, "email")?,
        invoice_email: string(&m, "invoiceEmail")?,
        overdue_notice_email: string(&m, "overdueNoticeEmail")?,
        phone_number: string(&m, "phoneNumber")?,
        phone_number_mobile: string(&m, "phoneNumberMobile")?,
        language: language(&m)?,
        invoice_send_method: send_method(&m)?,
        postal_address: address(&m, "postalAddress")?,
        physical_address: address(&m, "physicalAddress")?,
        is_inactive: boolean(&m, "isInactive")?.unwrap_or(false),
        is_factoring: boolean(&m, "isFactoring")?.unwrap_or(false),
        is_automatic_soft_reminder_enabled: boolean(&m, "isAutomaticSoftReminderEnabled")?
            .unwrap_or(false),
        is_automatic_reminder_enabled: boolean(&m, "isAutomaticReminderEnabled")?.unwrap_or(false),
        is_automatic_notice_of_debt_collection_enabled: boolean(
            &m,
            "isAutomaticNoticeOfDebtCollectionEnabled",
        )?
        .unwrap_or(false),
    };
    let id = app.add_customer(c);
    ok(json!({ "id": id }))
}

async fn patch_customer(
    AxState(app): AxState<Arc<App>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Res {
    let id = path_id(&id)?;
    let keys: Vec<&str> = CUSTOMER_KEYS
        .iter()
        .copied()
        .filter(|k| *k != "physicalAddress")
        .collect();
    let m = object(&body, &keys)?;
    let change = CustomerChange {
        name: string(&m, "name")?,
        organization_number: string(&m, "organizationNumber")?,
        email: string(&m, "email")?,
        invoice_email: string(&m, "invoiceEmail")?,
        overdue_notice_email: string(&m, "overdueNoticeEmail")?,
        phone_number: string(&m, "phoneNumber")?,
        phone_number_mobile: string(&m, "phoneNumberMobile")?,
        is_private_individual: boolean(&m, "isPrivateIndividual")?,
        is_inactive: boolean(&m, "isInactive")?,
        language: language(&m)?,
        invoice_send_method: send_method(&m)?,
        is_factoring: boolean(&m, "isFactoring")?,
        is_automatic_soft_reminder_enabled: boolean(&m, "isAutomaticSoftReminderEnabled")?,
        is_automatic_reminder_enabled: boolean(&m, "isAutomaticReminderEnabled")?,
        is_automatic_notice_of_debt_collection_enabled: boolean(
            &m,
            "isAutomaticNoticeOfDebtCollectionEnabled",
        )?,
        postal_address: address(&m, "postalAddress")?,
    };
    app.set_customer(id, change)?;
    ok(json!({ "id": id }))
}

async fn create_invoice(AxState(app): AxState<Arc<App>>, body: Bytes) -> Res {
    let m = object(
        &body,
        &[
            "customerId",
            "invoiceDate",
            "invoiceDueDate",
            "amount",
            "currency",
            "rate",
            "kid",
            "comment",
        ],
    )?;
    let customer_id = required(integer(&m, "customerId")?, "customerId")?;
    let amount = required(decimal(&m, "amount")?, "amount")?;
    let today = app.lock().today;
    let invoice_date = date(&m, "invoiceDate")?.unwrap_or(today);
    let invoice_due_date = date(&m, "invoiceDueDate")?.unwrap_or_else(|| {
        invoice_date
            .checked_add_days(chrono::Days::new(14))
            .unwrap_or(invoice_date)
    });
    let new = NewInvoice {
        customer_id,
        invoice_date,
        invoice_due_date,
        amount,
        currency: string(&m, "currency")?.unwrap_or_else(|| "NOK".to_string()),
        rate: decimal(&m, "rate")?,
        kid: string(&m, "kid")?,
        comment: string(&m, "comment")?,
    };
    let id = app.add_invoice(new).map_err(|e| match e {
        FakeError::NotFound { .. } => Ce::field("customerId", e.to_string()),
        e => e.into(),
    })?;
    ok(json!({ "id": id }))
}

fn invoice_json(app: &App, id: i64) -> Value {
    let st = app.lock();
    let cx = Cx {
        st: &st,
        base: &app.base,
    };
    st.invoices
        .get(&id)
        .map_or(Value::Null, |i| render(&cx, i, &star(Ty::Invoice)))
}

async fn all_invoices(AxState(app): AxState<Arc<App>>) -> Res {
    ok(Value::Array(app.render_invoices(false)))
}

async fn open_invoices(AxState(app): AxState<Arc<App>>) -> Res {
    ok(Value::Array(app.render_invoices(true)))
}

async fn pay(AxState(app): AxState<Arc<App>>, Path(id): Path<String>, body: Bytes) -> Res {
    let id = path_id(&id)?;
    let m = object(&body, &["amount", "date"])?;
    let amount = required(decimal(&m, "amount")?, "amount")?;
    let today = app.lock().today;
    let date = date(&m, "date")?.unwrap_or(today);
    app.pay(id, amount, date)?;
    ok(invoice_json(&app, id))
}

async fn credit(AxState(app): AxState<Arc<App>>, Path(id): Path<String>, body: Bytes) -> Res {
    let id = path_id(&id)?;
    let m = object(&body, &["amount", "date"])?;
    let amount = decimal(&m, "amount")?;
    let today = app.lock().today;
    let date = date(&m, "date")?.unwrap_or(today);
    let note = app.credit(id, amount, date)?;
    ok(json!({ "id": note }))
}

async fn requests(AxState(app): AxState<Arc<App>>) -> Res {
    let st = app.lock();
    let list: Vec<Value> = st
        .requests
        .iter()
        .map(|r| {
            json!({
                "method": r.method,
                "path": r.path,
                "query": r.query,
                "status": r.status,
                "atMs": r.at.saturating_duration_since(app.started).as_millis() as u64,
            })
        })
        .collect();
    ok(Value::Array(list))
}

async fn clear_requests(AxState(app): AxState<Arc<App>>) -> Res {
    app.lock().requests.clear();
    ok(json!({}))
}

async fn deliveries(AxState(app): AxState<Arc<App>>) -> Res {
    let st = app.lock();
    let list: Vec<Value> = st
        .deliveries
        .iter()
        .map(|d| {
            json!({
                "subscriptionId": d.subscription_id,
                "event": d.event,
                "id": d.object_id,
                "idempotencyKey": d.idempotency_key,
                "attempt": d.attempt,
                "status": d.status,
                "error": d.error,
                "atMs": d.at.saturating_duration_since(app.started).as_millis() as u64,
            })
        })
        .collect();
    ok(Value::Array(list))
}

fn fault_json(f: &Fault) -> Value {
    match f {
        Fault::Status {
            status,
            retry_after,
            times,
            path_prefix,
        } => {
            json!({"kind": "status", "status": status, "retry_after": retry_after, "times": times, "path_prefix": path_prefix})
        }
        Fault::Slow { delay, times } => {
            json!({"kind": "slow", "delay_ms": delay.as_millis() as u64, "times": times})
        }
        Fault::Malformed { times } => json!({"kind": "malformed", "times": times}),
        Fault::LostAnswer {
            status,
            times,
            path_prefix,
        } => {
            json!({"kind": "lost_answer", "status": status, "times": times, "path_prefix": path_prefix})
        }
        Fault::ExpireSessions => json!({"kind": "expire_sessions"}),
    }
}

async fn list_faults(AxState(app): AxState<Arc<App>>) -> Res {
    let st = app.lock();
    ok(Value::Array(st.faults.iter().map(fault_json).collect()))
}

fn times(m: &Map<String, Value>) -> Result<u32, Ce> {
    let t = unsigned(m, "times")?.unwrap_or(1);
    if t == 0 {
        return Err(Ce::field("times", "must be at least 1"));
    }
    u32::try_from(t).map_err(|_| Ce::field("times", "too large"))
}

async fn add_fault(AxState(app): AxState<Arc<App>>, body: Bytes) -> Res {
    let m = object(
        &body,
        &[
            "kind",
            "status",
            "retry_after",
            "times",
            "path_prefix",
            "delay_ms",
        ],
    )?;
    let kind = required(string(&m, "kind")?, "kind")?;
    let fault = match kind.as_str() {
        "status" => {
            let status = required(unsigned(&m, "status")?, "status")?;
            if !(100..=599).contains(&status) {
                return Err(Ce::field("status", "an HTTP status, 100 to 599"));
            }
            Fault::Status {
                status: u16::try_from(status).unwrap_or(500),
                retry_after: unsigned(&m, "retry_after")?,
                times: times(&m)?,
                path_prefix: string(&m, "path_prefix")?,
            }
        }
        "slow" => Fault::Slow {
            delay: Duration::from_millis(required(unsigned(&m, "delay_ms")?, "delay_ms")?),
            times: times(&m)?,
        },
        "malformed" => Fault::Malformed { times: times(&m)? },
        "lost_answer" => {
            let status = unsigned(&m, "status")?.unwrap_or(502);
            if !(500..=599).contains(&status) {
                return Err(Ce::field("status", "a 5xx status, 500 to 599"));
            }
            Fault::LostAnswer {
                status: u16::try_from(status).unwrap_or(502),
                times: times(&m)?,
                path_prefix: string(&m, "path_prefix")?,
            }
        }
        "expire_sessions" => Fault::ExpireSessions,
        _ => {
            return Err(Ce::field(
                "kind",
                "status, slow, malformed, lost_answer or expire_sessions",
            ));
        }
    };
    let v = fault_json(&fault);
    app.lock().faults.push_back(fault);
    ok(v)
}

async fn clear_faults(AxState(app): AxState<Arc<App>>) -> Res {
    app.lock().faults.clear();
    ok(json!({}))
}

async fn clock(AxState(app): AxState<Arc<App>>) -> Res {
    let today = app.lock().today;
    ok(json!({"today": today.format("%Y-%m-%d").to_string()}))
}

async fn set_clock(AxState(app): AxState<Arc<App>>, body: Bytes) -> Res {
    let m = object(&body, &["today"])?;
    let today = required(date(&m, "today")?, "today")?;
    app.lock().today = today;
    ok(json!({"today": today.format("%Y-%m-%d").to_string()}))
}

async fn set_webhooks(AxState(app): AxState<Arc<App>>, body: Bytes) -> Res {
    let m = object(&body, &["enabled"])?;
    let on = required(boolean(&m, "enabled")?, "enabled")?;
    app.lock().webhooks_enabled = on;
    ok(json!({ "enabled": on }))
}

/// Most invoices `/_fake/seed` will make.
const MAX_SEED_INVOICES: u64 = 2_000_000;

async fn reseed(AxState(app): AxState<Arc<App>>, body: Bytes) -> Res {
    let m = object(&body, &["seed", "invoices"])?;
    let seed = required(unsigned(&m, "seed")?, "seed")?;
    let invoices = required(unsigned(&m, "invoices")?, "invoices")?;
    if invoices > MAX_SEED_INVOICES {
        return Err(Ce::field(
            "invoices",
            format!("at most {MAX_SEED_INVOICES}"),
        ));
    }
    let n = usize::try_from(invoices).map_err(|_| Ce::field("invoices", "too large"))?;
    let app2 = app.clone();
    tokio::task::spawn_blocking(move || app2.reseed(seed, n))
        .await
        .map_err(|e| Ce {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            field: None,
            message: e.to_string(),
        })?;
    let st = app.lock();
    ok(json!({"seed": seed, "invoices": st.invoices.len(), "customers": st.customers.len()}))
}

async fn expire_sessions(AxState(app): AxState<Arc<App>>) -> Res {
    app.expire_sessions();
    ok(json!({}))
}
