//! Forfall's Tripletex connector (API v2), a mapping module on top of the shared HTTP layer.
//!
//! - **Auth**: `consumerToken` + `employeeToken` → `PUT /token/session/:create` → every call with
//!   Basic `<companyId>:<sessionToken>` (company `0` is the token owner's own). The session is
//!   renewed a day before its `expirationDate` (the exact instant of expiry is UNCONFIRMED) and
//!   once on a 401 (code 3000).
//! - **Finding invoices**: `GET /invoice` by calendar-month invoice-date windows (both dates are
//!   required; `invoiceDateTo` is exclusive), explicit `fields=`, `from`/`count` paging, sorted by
//!   id; `versionDigest` skips windows unchanged since the last pass. Tripletex has no unpaid
//!   filter, so invoices are sorted client-side: outstanding above zero is open; paid and credited
//!   invoices are closed; credit notes are left out.
//! - **Writing back**: payments with `PUT /invoice/{id}/:payment` (the payment type is looked up
//!   once by its description). Tripletex has no endpoint to write a note on an invoice, so
//!   `write_note` is false and `record_status` says so.
//! - **Webhooks**: subscriptions through `/event/subscription`, verified with
//!   `x-request-signature` (see [`webhook`]).
//! - **Double dunning**: a customer with Tripletex's own automatic reminders or debt-collection
//!   notices switched on is flagged `platform_dunning`.

pub mod paging;
pub mod transformers;
pub mod webhook;

#[cfg(feature = "fake")]
pub mod fake;

use std::num::NonZeroU32;
use std::sync::Mutex;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Days, NaiveDate, Utc};
use forfall_connector::client::{
    Authenticator, HttpSettings, NoAuth, PlatformClient, Request, Response,
};
use forfall_connector::{
    Capabilities, Connector, ConnectorError, Delivery, ListRequest, Page, Payment, RemoteChange,
    RemoteId, RemoteInvoice, StatusNote,
};
use http::Method;
use reqwest::Url;
use rust_decimal::Decimal;
use serde::Deserialize;

use crate::paging::{Position, first_window, month_of, next_month};
use crate::transformers::{
    Invoice, ListResponse, PaymentType, Standing, Subscription, Wrapper, invoice_fields, standing,
    to_remote_invoice,
};

/// What a Tripletex connection needs, from its (sealed) credentials.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TripletexConfig {
    /// `https://tripletex.no/v2` in production, `https://api-test.tripletex.tech/v2` for tests.
    #[serde(default = "default_base_url")]
    pub base_url: String,
    pub consumer_token: String,
    pub employee_token: String,
    /// `0` for the token owner's own company; an accountant's client company otherwise.
    #[serde(default = "default_company")]
    pub company_id: String,
    /// How far back a pass looks for open invoices (by invoice date).
    #[serde(default = "default_lookback")]
    pub lookback_days: u64,
    /// Invoices per page (Tripletex's default is 1000).
    #[serde(default = "default_page_size")]
    pub page_size: u64,
    /// The payment type used to register payments collected by the agency, by its description.
    #[serde(default = "default_payment_type")]
    pub payment_type: String,
    /// Requests per second this connection may send.
    #[serde(default = "default_rate")]
    pub requests_per_second: u32,
}

impl std::fmt::Debug for TripletexConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TripletexConfig")
            .field("base_url", &self.base_url)
            .field("consumer_token", &"***")
            .field("employee_token", &"***")
            .field("company_id", &self.company_id)
            .finish_non_exhaustive()
    }
}

fn default_base_url() -> String {
    "https://tripletex.no/v2".into()
}
fn default_company() -> String {
    "0".into()
}
fn default_lookback() -> u64 {
    // The Norwegian limitation period is three years from the due date; a little more covers it.
    3 * 366 + 31
}
fn default_page_size() -> u64 {
    1000
}
fn default_payment_type() -> String {
    "Betalt til inkassobyrå".into()
}
fn default_rate() -> u32 {
    20
}

/// A session token and the day it expires.
#[derive(Clone)]
struct Session {
    token: String,
    expires: NaiveDate,
}

/// Tripletex's session-token authentication: created on first use, renewed a day early and on 401.
struct SessionAuth {
    client: PlatformClient,
    base: Url,
    config: TripletexConfig,
    session: tokio::sync::Mutex<Option<Session>>,
    /// The latest "today" the gateway gave (its clock may run ahead of the system's in a demo).
    today: Mutex<Option<NaiveDate>>,
}

/// How long a session is asked to live. UNCONFIRMED: Tripletex documents no maximum lifetime
/// (specs/tripletex.md); a week is short enough to be accepted and long enough that renewals are
/// rare, and a refusal of the date (422) or an early expiry (401) is met by renewing.
const SESSION_DAYS: u64 = 7;

impl SessionAuth {
    fn today(&self) -> NaiveDate {
        let system = Utc::now().date_naive();
        let given = *self.today.lock().unwrap_or_else(|p| p.into_inner());
        given.map_or(system, |g| g.max(system))
    }

    async fn create(&self) -> Result<Session, ConnectorError> {
        let expires = self
            .today()
            .checked_add_days(Days::new(SESSION_DAYS))
            .ok_or_else(|| ConnectorError::Config("no date after today".into()))?;
        let mut url = join(&self.base, &["token", "session", ":create"])?;
        url.query_pairs_mut()
            .append_pair("consumerToken", &self.config.consumer_token)
            .append_pair("employeeToken", &self.config.employee_token)
            .append_pair("expirationDate", &expires.to_string());
        let mut request = Request::get(url);
        request.method = Method::PUT;
        let answer = match self.client.send(&request, &NoAuth).await {
            // Wrong tokens: the creditor must fix the connection.
            Err(ConnectorError::Rejected { status, detail }) if status == 403 || status == 422 => {
                return Err(ConnectorError::Unauthorized(format!(
                    "session not created ({status}): {detail}"
                )));
            }
            other => other?,
        };
        #[derive(Deserialize)]
        struct Token {
            token: String,
            #[serde(rename = "expirationDate")]
            expiration_date: Option<NaiveDate>,
        }
        let token: Wrapper<Token> = answer.json()?;
        tracing::info!(expires = %expires, "Tripletex session created");
        Ok(Session {
            token: token.value.token,
            expires: token.value.expiration_date.unwrap_or(expires),
        })
    }
}

#[async_trait::async_trait]
impl Authenticator for SessionAuth {
    async fn authorize(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::RequestBuilder, ConnectorError> {
        let mut session = self.session.lock().await;
        let renew_from = session
            .as_ref()
            .and_then(|s| s.expires.checked_sub_days(Days::new(1)));
        if renew_from.is_none_or(|day| self.today() >= day) {
            *session = Some(self.create().await?);
        }
        let token = session
            .as_ref()
            .map(|s| s.token.clone())
            .unwrap_or_default();
        let basic = STANDARD.encode(format!("{}:{token}", self.config.company_id));
        Ok(request.header(http::header::AUTHORIZATION, format!("Basic {basic}")))
    }

    async fn renew(&self) -> Result<(), ConnectorError> {
        let fresh = self.create().await?;
        *self.session.lock().await = Some(fresh);
        Ok(())
    }
}

/// One Tripletex connection.
pub struct Tripletex {
    auth: SessionAuth,
    payment_type: tokio::sync::Mutex<Option<i64>>,
}

impl Tripletex {
    pub fn new(
        config: TripletexConfig,
        mut http: HttpSettings,
    ) -> Result<Tripletex, ConnectorError> {
        if config.consumer_token.trim().is_empty() || config.employee_token.trim().is_empty() {
            return Err(ConnectorError::Config(
                "consumer_token and employee_token are required".into(),
            ));
        }
        if config.page_size == 0 {
            return Err(ConnectorError::Config(
                "page_size must be at least 1".into(),
            ));
        }
        let mut base = Url::parse(&config.base_url).map_err(|e| {
            ConnectorError::Config(format!("base_url {:?} is not a URL: {e}", config.base_url))
        })?;
        if !matches!(base.scheme(), "http" | "https") || base.host_str().is_none() {
            return Err(ConnectorError::Config(format!(
                "base_url {:?} must be an http(s) URL with a host",
                config.base_url
            )));
        }
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        http.rate_limit_headers = Some(("x-rate-limit-remaining", "x-rate-limit-reset"));
        http.error_detail = Some(transformers::error_detail);
        http.requests_per_second =
            NonZeroU32::new(config.requests_per_second).unwrap_or(http.requests_per_second);
        Ok(Tripletex {
            auth: SessionAuth {
                client: PlatformClient::new(http)?,
                base,
                config,
                session: tokio::sync::Mutex::new(None),
                today: Mutex::new(None),
            },
            payment_type: tokio::sync::Mutex::new(None),
        })
    }

    /// From a connection's credentials JSON (`consumer_token`, `employee_token`, optional
    /// `base_url`, `company_id`, `lookback_days`, `page_size`, `payment_type`,
    /// `requests_per_second`).
    pub fn from_credentials(
        credentials: &serde_json::Value,
        http: HttpSettings,
    ) -> Result<Tripletex, ConnectorError> {
        let config: TripletexConfig = serde_json::from_value(credentials.clone())
            .map_err(|e| ConnectorError::Config(format!("Tripletex credentials: {e}")))?;
        Tripletex::new(config, http)
    }

    fn config(&self) -> &TripletexConfig {
        &self.auth.config
    }

    fn url(&self, segments: &[&str]) -> Result<Url, ConnectorError> {
        join(&self.auth.base, segments)
    }

    async fn call(&self, request: Request) -> Result<Response, ConnectorError> {
        self.auth.client.send(&request, &self.auth).await
    }

    async fn get(&self, url: Url) -> Result<Response, ConnectorError> {
        self.call(Request::get(url)).await
    }

    /// One page of one window, and the window's digest.
    async fn window_page(
        &self,
        window: NaiveDate,
        from: u64,
    ) -> Result<ListResponse<Invoice>, ConnectorError> {
        let mut url = self.url(&["invoice"])?;
        url.query_pairs_mut()
            .append_pair("invoiceDateFrom", &window.to_string())
            .append_pair("invoiceDateTo", &next_month(window).to_string())
            .append_pair("from", &from.to_string())
            .append_pair("count", &self.config().page_size.to_string())
            .append_pair("sorting", "id")
            .append_pair("fields", &invoice_fields());
        self.get(url).await?.json()
    }

    /// The id of the payment type payments are registered with, looked up once.
    async fn payment_type_id(&self) -> Result<i64, ConnectorError> {
        let mut cached = self.payment_type.lock().await;
        if let Some(id) = *cached {
            return Ok(id);
        }
        let wanted = &self.config().payment_type;
        let mut url = self.url(&["invoice", "paymentType"])?;
        url.query_pairs_mut()
            .append_pair("description", wanted)
            .append_pair("fields", "id,description");
        let list: ListResponse<PaymentType> = self.get(url).await?.json()?;
        let exact = list.values.iter().find(|t| {
            t.description
                .as_deref()
                .is_some_and(|d| d.trim().eq_ignore_ascii_case(wanted.trim()))
        });
        // The search matches on part of the description: only the exact one is taken (a
        // setting of "Betalt" must not pay through "Betalt til bank").
        let id = exact.map(|t| t.id).ok_or_else(|| {
            let near: Vec<&str> = list
                .values
                .iter()
                .filter_map(|t| t.description.as_deref())
                .collect();
            ConnectorError::Config(format!(
                "Tripletex has no payment type described exactly as {wanted:?}{}",
                if near.is_empty() {
                    String::new()
                } else {
                    format!(" (it has {})", near.join(", "))
                }
            ))
        })?;
        *cached = Some(id);
        Ok(id)
    }

    async fn wire_invoice(&self, id: &RemoteId) -> Result<Invoice, ConnectorError> {
        let numeric: i64 = id.0.parse().map_err(|_| ConnectorError::NotFound)?;
        let mut url = self.url(&["invoice", &numeric.to_string()])?;
        url.query_pairs_mut()
            .append_pair("fields", &invoice_fields());
        let wrapper: Wrapper<Invoice> = self.get(url).await?.json()?;
        Ok(wrapper.value)
    }
}

/// `base` with path segments appended (each percent-encoded as needed).
fn join(base: &Url, segments: &[&str]) -> Result<Url, ConnectorError> {
    let mut url = base.clone();
    url.path_segments_mut()
        .map_err(|_| ConnectorError::Config("base_url cannot take a path".into()))?
        .pop_if_empty()
        .extend(segments);
    Ok(url)
}

#[async_trait::async_trait]
impl Connector for Tripletex {
    fn platform(&self) -> &'static str {
        "tripletex"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            poll: true,
            webhooks: true,
            write_payment: true,
            // No documented endpoint writes a comment or note on an invoice.
            write_note: false,
            complete_listing: true,
        }
    }

    async fn open_invoices(&self, request: &ListRequest) -> Result<Page, ConnectorError> {
        {
            let mut today = self.auth.today.lock().unwrap_or_else(|p| p.into_inner());
            *today = Some(today.map_or(request.today, |t| t.max(request.today)));
        }
        let first = first_window(request.today, self.config().lookback_days);
        let last_window = month_of(request.today);
        let mut position = Position::from_cursor(request.cursor.as_ref());
        if request.full && request.cursor.is_none() {
            position.window = None;
        }
        let mut page = Page {
            open: Vec::new(),
            closed: Vec::new(),
            cursor: position.to_cursor(),
            last: false,
        };
        loop {
            let window = match position.window {
                Some(window) => window,
                None => {
                    position.prune(first);
                    position.from = 0;
                    position.reading = None;
                    first
                }
            };
            position.window = Some(window);
            let answer = self.window_page(window, position.from).await?;
            let digest = answer.version_digest.clone();
            let unchanged = position.from == 0
                && !request.full
                && digest.is_some()
                && position.digests.get(&window) == digest.as_ref();
            let window_done = if unchanged {
                true
            } else {
                if position.from == 0 {
                    position.reading = digest.clone();
                } else if position.reading != digest {
                    // The window changed while it was being read: read it again next pass.
                    position.reading = None;
                }
                let count = answer.values.len() as u64;
                for wire in &answer.values {
                    let invoice = to_remote_invoice(wire)?;
                    match standing(wire, &invoice) {
                        Standing::Open => page.open.push(invoice),
                        Standing::Closed => page.closed.push(invoice),
                        Standing::CreditNote => {}
                    }
                }
                position.from += count;
                count < self.config().page_size
            };
            if window_done {
                match position.reading.take() {
                    Some(d) if !unchanged => {
                        position.digests.insert(window, d);
                    }
                    _ if unchanged => {}
                    _ => {
                        position.digests.remove(&window);
                    }
                }
                position.from = 0;
                if window >= last_window {
                    position.window = None;
                    page.last = true;
                } else {
                    position.window = Some(next_month(window));
                }
            }
            page.cursor = position.to_cursor();
            // Return a page once it holds something, or at the end of the pass; empty and
            // unchanged windows are passed over within one call.
            if page.last || !page.open.is_empty() || !page.closed.is_empty() || !window_done {
                return Ok(page);
            }
        }
    }

    async fn invoice(&self, id: &RemoteId) -> Result<RemoteInvoice, ConnectorError> {
        to_remote_invoice(&self.wire_invoice(id).await?)
    }

    fn verify_webhook(
        &self,
        secret: &[u8],
        headers: &http::HeaderMap,
        body: &[u8],
        _now: DateTime<Utc>,
    ) -> Result<Delivery, ConnectorError> {
        webhook::verify(secret, headers, body)
    }

    fn parse_webhook(
        &self,
        _headers: &http::HeaderMap,
        body: &[u8],
    ) -> Result<Vec<RemoteChange>, ConnectorError> {
        webhook::parse(body)
    }

    async fn subscribe_webhooks(
        &self,
        target_url: &str,
        secret: &[u8],
    ) -> Result<(), ConnectorError> {
        let secret = std::str::from_utf8(secret)
            .map_err(|_| ConnectorError::Config("the webhook secret must be text".into()))?;
        let mut url = self.url(&["event", "subscription"])?;
        url.query_pairs_mut()
            .append_pair("fields", "id,version,event,targetUrl,status")
            .append_pair("count", "1000");
        let existing: ListResponse<Subscription> = self.get(url).await?.json()?;
        for (event, fields) in webhook::SUBSCRIPTIONS {
            let body = serde_json::json!({
                "event": event,
                "targetUrl": target_url,
                "fields": fields,
                "hmacSharedSecret": secret,
            });
            let mine = existing.values.iter().find(|s| {
                s.event.as_deref() == Some(event) && s.target_url.as_deref() == Some(target_url)
            });
            let request = match mine {
                // The shared secret cannot be read back: write it again, and re-enable.
                Some(s) => {
                    let mut body = body;
                    body["id"] = s.id.into();
                    if let Some(v) = s.version {
                        body["version"] = v.into();
                    }
                    if s.status.as_deref() != Some("ACTIVE") {
                        body["status"] = "ACTIVE".into();
                    }
                    Request::get(self.url(&["event", "subscription", &s.id.to_string()])?)
                        .with_json(Method::PUT, body.to_string().into_bytes())
                }
                None => Request::get(self.url(&["event", "subscription"])?)
                    .with_json(Method::POST, body.to_string().into_bytes()),
            };
            self.call(request).await?;
        }
        Ok(())
    }

    async fn record_payment(&self, id: &RemoteId, payment: &Payment) -> Result<(), ConnectorError> {
        if payment.amount <= Decimal::ZERO {
            return Err(ConnectorError::Rejected {
                status: 422,
                detail: "a payment must be above zero".into(),
            });
        }
        let type_id = self.payment_type_id().await?;
        let wire = self.wire_invoice(id).await?;
        let invoice = to_remote_invoice(&wire)?;
        if !invoice.currency.eq_ignore_ascii_case(&payment.currency) {
            return Err(ConnectorError::Rejected {
                status: 422,
                detail: format!(
                    "payment in {} for an invoice in {}",
                    payment.currency, invoice.currency
                ),
            });
        }
        let mut url = self.url(&["invoice", &id.0, ":payment"])?;
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("paymentDate", &payment.paid_on.to_string())
                .append_pair("paymentTypeId", &type_id.to_string());
            if invoice.currency.eq_ignore_ascii_case("NOK") {
                query.append_pair("paidAmount", &payment.amount.to_string());
            } else {
                // `paidAmount` is in the company's currency (NOK): convert at the invoice's own
                // rate (its amount in NOK over its amount in its currency).
                let nok = transformers::amount(&wire.amount, "amount")?;
                let rate = if invoice.amount.is_zero() {
                    Decimal::ONE
                } else {
                    nok / invoice.amount
                };
                query
                    .append_pair(
                        "paidAmount",
                        &(payment.amount * rate).round_dp(2).to_string(),
                    )
                    .append_pair("paidAmountCurrency", &payment.amount.to_string());
            }
            query.append_pair("fields", "id,version");
        }
        // Tripletex takes no idempotency key and pays again on a repeated call: a timeout or a
        // 5xx goes back to the write-back job, which reads the invoice before trying again.
        let mut request = Request::get(url).not_repeatable();
        request.method = Method::PUT;
        self.call(request).await?;
        Ok(())
    }

    async fn record_status(
        &self,
        _id: &RemoteId,
        _note: &StatusNote,
    ) -> Result<(), ConnectorError> {
        Err(ConnectorError::Unsupported(
            "status notes on invoices (Tripletex has no endpoint for them)",
        ))
    }
}
