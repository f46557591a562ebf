//! A faithful fake of the Tripletex API v2: a real HTTP server (axum on a tokio task) that serves
//! the part of `/v2` Forfall's connector uses, pushes webhooks like Tripletex does, and has a
//! control API under `/_fake` (and the same controls as Rust methods) for tests, the demo and
//! `forfall fake`.
//!
//! It follows `shared/specs/tripletex.md` and the OpenAPI excerpt field by field. Where the real
//! behaviour is UNCONFIRMED the fake takes the stricter reading, so that a connector that works
//! against the fake also works against Tripletex; every such choice is listed below.
//!
//! # Starting it
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use forfall_tripletex::fake::{FakeConfig, FakeTripletex};
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let fake = FakeTripletex::start(listener, FakeConfig { invoices: 200, ..FakeConfig::default() }).await?;
//! println!("{} (control: {})", fake.base_url(), fake.control_url());
//! fake.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! # What `/v2` serves
//!
//! Every response carries `x-tlx-request-id` (a uuid) and `Content-Type: application/json;
//! charset=utf-8`; every authenticated one also `X-Rate-Limit-Limit`, `X-Rate-Limit-Remaining` and
//! `X-Rate-Limit-Reset` (seconds left of the 60 s period). Single objects come as `{"value": …}`,
//! lists as `{"fullResultSize", "from", "count", "versionDigest", "values"}` where `count` is the
//! number of values in the page and `versionDigest` is a SHA-256 (hex) over every row of the full
//! result rendered with the requested fields (independent of `from`/`count`, `null` when empty).
//! Errors are `ApiError` bodies: `{"status", "code", "message", "link", "developerMessage",
//! "validationMessages": [{"field", "message", "path", "rootId"}] | null, "requestId"}`.
//!
//! | call | notes |
//! | --- | --- |
//! | `PUT /token/session/:create?consumerToken=&employeeToken=&expirationDate=` | no auth; returns the SessionToken |
//! | `GET /token/session/>whoAmI`, `DELETE /token/session/{token}` | |
//! | `GET /invoice?invoiceDateFrom=&invoiceDateTo=&id=&invoiceNumber=&kid=&voucherId=&customerId=&from=&count=&sorting=&fields=` | charged outgoing invoices and credit notes |
//! | `GET /invoice/{id}` | |
//! | `PUT /invoice/{id}/:payment?paymentDate=&paymentTypeId=&paidAmount=[&paidAmountCurrency=]` | |
//! | `PUT /invoice/{id}/:createCreditNote?date=[&comment=]` | credits the whole invoice; returns the credit note |
//! | `GET /invoice/paymentType[/{id}]` | `description` (and `query`): case-insensitive contains |
//! | `GET /customer[/{id}]` | filters `id, customerAccountNumber, organizationNumber, email, invoiceEmail, customerName (contains), phoneNumberMobile, isInactive (default false), changedSince` |
//! | `GET /event`, `GET /event/{eventType}` | the event catalogue |
//! | `GET, POST /event/subscription`, `GET, PUT, DELETE /event/subscription/{id}` | |
//! | `GET /ledger/voucher/{id}`, `/ledger/posting/{id}`, `/ledger/closeGroup/{id}`, `/ledger/account/{id}`, `/ledger/vatType/{id}`, `/currency/{id}`, `/country/{id}`, `/reminder/{id}`, `/invoiceRemark/{id}` | to follow references |
//!
//! `fields=` is parsed properly (a small recursive parser, `fake/schema.rs`): a comma list, `*` (every field but `changes`, with
//! nested objects as `{"id", "url"}`), `name(sub, …)` for nested objects and for each element of
//! arrays, nesting to any depth; empty or missing means `*`. An unknown field (at any depth), a
//! sub-selection on a plain field or a syntax error is 400, code 11000, "Illegal field in fields
//! filter: &lt;name&gt;". Keys come back in schema order. Sorting: `id`, `invoiceNumber`,
//! `invoiceDate`, `invoiceDueDate`, `amount`, `amountOutstanding` for invoices; `id`, `name`,
//! `customerNumber` for customers; each may be prefixed `-`; default ascending id.
//!
//! Auth: `Authorization: Basic base64("0:<token>")` (company id `0` or empty). Missing, malformed,
//! unknown or expired token: 401, code 3000. Another company id: 403, code 9000.
//!
//! Error codes: 400 → 4000 (bad query string, unknown sorting field), 11000 (fields filter);
//! 401 → 3000; 403 → 9000; 404 → 6000; 405 → 4000; 409 → 8000 (stale `version`); 422 → 21000 for a
//! missing or unparsable query parameter, 18000 for a value that breaks a rule (payment amount,
//! expiration date, page size, …), 15000 for a bad value in a request body, 22000 for a body that
//! is not JSON; 429 → 0 (the code is not documented); 500 → 1000.
//!
//! # Choices where the real API is UNCONFIRMED
//!
//! - **Session expiry**: a session is valid while the fake's today is *before* `expirationDate`
//!   (through the day before it). The real instant is unconfirmed; the stricter reading makes a
//!   client renew a day early. `expirationDate` must be after today (422, 18000). No maximum
//!   lifetime. Wrong consumer or employee token on `:create`: 403, code 9000.
//! - **Page size**: `count` defaults to 1000 and may be at most 10 000 (above: 422, 18000, naming
//!   `count`) rather than being silently cut short.
//! - **Date window**: `invoiceDateFrom` must be before `invoiceDateTo` (else 422 naming
//!   `invoiceDateTo`); dates must be exactly `YYYY-MM-DD`. A missing `invoiceDateFrom` or
//!   `invoiceDateTo` is 422 with code 21000: the spec says "21000-ish", the exact code is
//!   unconfirmed, and the connector never relies on it (it always sends both).
//! - **Rate limit**: counted per session token in 60 s periods that start at the period's first
//!   request; when exceeded, 429 for the rest of the period with the `X-Rate-Limit-*` headers
//!   (`Reset` says when) and no `Retry-After` (only injected faults send one). Without a configured
//!   limit the headers say 1 000 000 and nothing is refused.
//! - **Amounts**: `amount`, `amountOutstanding` and `amountExcludingVat` are in NOK (company
//!   currency), the `*Currency*` fields in the invoice currency (the spec's wording of
//!   `amountOutstanding` is ambiguous). The `*Total` fields add unpaid reminder fees (seeded
//!   reminders carry 70 NOK) and `sumRemits` (always 0). `creditedInvoice` is 0 on an invoice that
//!   is not a credit note; unset strings are `""`.
//! - **`:payment`**: `paidAmount` (NOK) must be above zero and at most `amountOutstandingTotal`;
//!   for an invoice in another currency `paidAmountCurrency` is required and at most
//!   `amountCurrencyOutstanding`, and once it reaches zero the NOK side is zeroed too (the exchange
//!   difference is booked away). For NOK invoices `paidAmountCurrency` is ignored. A payment covers
//!   the principal before reminder fees. There is no idempotency: a repeated call pays twice, as on
//!   Tripletex, so a client must look at `postings` before retrying. A payment on a credit note,
//!   an unknown `paymentTypeId`: 422. It adds a payment voucher (bank +, customer ledger −), the
//!   ledger posting joins the invoice's `postings`, `version` goes up by one; when the invoice is
//!   settled its postings are matched in a close group.
//! - **Credit notes**: an invoice with `isCreditNote: true`, negative amounts, outstanding 0,
//!   `creditedInvoice` = the original's id, no KID. The original gets `isCredited: true` only when
//!   credited in full; a partial credit (control API only) just lowers its outstanding.
//! - **Webhooks**: delivered on tokio tasks, never in the request that caused them. Up to 3 more
//!   attempts after 100 ms, 500 ms and 2 s on a non-2xx answer or a transport error (5 s timeout
//!   per attempt), the same `idempotency-key` on each; after 10 deliveries in a row that failed
//!   every attempt the subscription becomes `DISABLED_TOO_MANY_ERRORS` (a `PUT` with
//!   `"status": "ACTIVE"` revives it). `hmacSharedSecret` and `authHeaderValue` are write-only:
//!   never returned (`null`). Without `fields` on the subscription, invoices and customers are
//!   rendered with `*`, vouchers and close groups with `*,postings(*)`. `targetUrl` must be an
//!   absolute https URL, or http when [`FakeConfig::allow_http_targets`] is set (the default, for
//!   loopback tests). While webhooks are switched off events are dropped, not queued.
//! - **Events fired**: `invoice.charged` when an invoice is added through the control API or
//!   [`FakeTripletex::add_invoice`]; on every payment `voucher.create` (the payment voucher) and,
//!   when the invoice is settled, `closeGroup.create`; on a credit `invoice.charged` (the credit
//!   note), `voucher.create` (its voucher) and `closeGroup.create` when it settles the original;
//!   `customer.create` / `customer.update` for customers added or changed. Seeding fires nothing.
//! - **Timestamps** in `changes` are the fake's today at the wall clock's time of day (UTC).
//!   `changedSince` is inclusive and takes `YYYY-MM-DD` or `YYYY-MM-DDThh:mm:ss`.
//! - **Object urls** are scheme-less like Tripletex's (`127.0.0.1:PORT/v2/invoice/3000001`).
//! - **502/503/504 faults** answer with an HTML body, like a load balancer in front of Tripletex;
//!   other injected statuses with an ApiError body.
//!
//! # Seeded data
//!
//! A pure function of (seed, invoices, today); `fake/seed.rs` describes the mix. Ids live in separate
//! ranges per kind (customers from 1 000 001, invoices from 3 000 001, vouchers 40 000 001,
//! postings 50 000 001, close groups 60 000 001) so an id of the wrong kind is a 404; invoice and
//! customer numbers start at 10 001. Payment types: 25001 "Betalt til bank", 25002 "Kontant",
//! 25003 "Betalt til inkassobyrå", 25004 "Vipps". Currencies: NOK 1, SEK 2, DKK 3, USD 4, EUR 5.
//!
//! # The control API (`/_fake`, no auth, JSON)
//!
//! | call | body / answer |
//! | --- | --- |
//! | `GET /_fake` | a summary: today, seed, counts, webhooks on/off, pending faults |
//! | `POST /_fake/customers` | `{"name", "isPrivateIndividual", "organizationNumber", "email", "invoiceEmail", "phoneNumber", "phoneNumberMobile", "language", "invoiceSendMethod", "postalAddress": {"addressLine1", "addressLine2", "postalCode", "city", "country": "NO"}, "physicalAddress", "isInactive", "isFactoring", "isAutomaticSoftReminderEnabled", "isAutomaticReminderEnabled", "isAutomaticNoticeOfDebtCollectionEnabled"}` → `{"id"}` |
//! | `PATCH /_fake/customers/{id}` | the same keys, each optional → `{"id"}`; fires `customer.update` |
//! | `POST /_fake/invoices` | `{"customerId", "amount" (string or number, VAT included, invoice currency), "invoiceDate" (default today), "invoiceDueDate" (default +14 days), "currency" (default "NOK"), "rate" (NOK per unit), "kid", "comment"}` → `{"id"}` |
//! | `GET /_fake/invoices`, `GET /_fake/invoices/open` | every invoice and credit note / the open ones, rendered with `*` |
//! | `POST /_fake/invoices/{id}/payments` | `{"amount" (invoice currency), "date" (default today)}` → the invoice |
//! | `POST /_fake/invoices/{id}/credit` | `{"amount" (optional: all), "date"}` → `{"id"}` of the credit note |
//! | `GET`, `DELETE /_fake/requests` | the `/v2` requests seen: method, path, query, status, atMs |
//! | `GET /_fake/deliveries` | webhook attempts: subscriptionId, event, id, idempotencyKey, attempt, status or error, atMs |
//! | `GET`, `POST`, `DELETE /_fake/faults` | `{"kind": "status", "status": 429, "retry_after": 2, "times": 3, "path_prefix": "/v2/invoice"}`, `{"kind": "slow", "delay_ms": 3000, "times": 1}`, `{"kind": "malformed", "times": 2}`, `{"kind": "lost_answer", "status": 502, "times": 1, "path_prefix": "/v2/invoice"}`, `{"kind": "expire_sessions"}` |
//! | `GET`, `POST /_fake/clock` | `{"today": "2026-11-23"}` |
//! | `POST /_fake/webhooks` | `{"enabled": false}` |
//! | `POST /_fake/seed` | `{"seed": 7, "invoices": 200}`: replaces customers and invoices (sessions, subscriptions and logs stay) |
//! | `POST /_fake/sessions/expire` | every session expires |
//!
//! Bad input is 400 with `{"error", "field"}` naming the field; an unknown id is 404. Faults apply
//! to `/v2` only, in the order injected: each request takes the first fault that matches it
//! (`path_prefix` for status and lost-answer faults) and uses up one of its `times`. A status fault
//! answers before auth; a slow one delays the real answer; a malformed one sends status 200 with
//! the first half of the real body (the request still takes effect); a lost answer handles the
//! request (it takes effect: a payment is registered) and then answers `status` (default 502)
//! instead, as a proxy in front of the platform does when it gives up after the platform acted;
//! `expire_sessions` expires every session just before the request is handled.

mod api;
mod control;
mod model;
mod schema;
mod seed;
mod webhooks;

use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use rust_decimal::Decimal;
use tokio::net::TcpListener;
use tokio::runtime::Handle;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use model::{NOK, PAYMENT_TYPE_BANK, State, round2};
use schema::Ty;

/// How the fake starts.
#[derive(Debug, Clone)]
pub struct FakeConfig {
    /// The seeded data is a pure function of (`seed`, `invoices`, `today`).
    pub seed: u64,
    /// How many invoices to seed (0 = none); about one customer per four invoices.
    pub invoices: usize,
    /// The fake's own today (change it later with [`FakeTripletex::set_today`]).
    pub today: NaiveDate,
    /// The consumer token `:create` accepts.
    pub consumer_token: String,
    /// The employee token `:create` accepts.
    pub employee_token: String,
    /// Requests per 60 s period per session token; `None` = unlimited (headers still sent).
    pub rate_limit: Option<u32>,
    /// Accept `http://` webhook targets (real Tripletex demands https).
    pub allow_http_targets: bool,
}

impl Default for FakeConfig {
    fn default() -> Self {
        FakeConfig {
            seed: 1,
            invoices: 200,
            today: chrono::Utc::now().date_naive(),
            consumer_token: "fake-consumer-token".to_string(),
            employee_token: "fake-employee-token".to_string(),
            rate_limit: None,
            allow_http_targets: true,
        }
    }
}

/// An address for [`NewCustomer`] and [`CustomerChange`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewAddress {
    pub address_line1: String,
    pub address_line2: String,
    pub postal_code: String,
    pub city: String,
    /// ISO 3166-1 alpha-2 of a country the fake knows (NO, SE, DK, FI, DE, GB); `None` or an
    /// unknown code is Norway (the control API refuses unknown codes).
    pub country: Option<String>,
}

/// A customer to add. Empty options are `""` on the wire.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewCustomer {
    pub name: String,
    pub is_private_individual: bool,
    pub organization_number: Option<String>,
    pub email: Option<String>,
    /// Defaults to `email`.
    pub invoice_email: Option<String>,
    /// Defaults to `email`.
    pub overdue_notice_email: Option<String>,
    pub phone_number: Option<String>,
    pub phone_number_mobile: Option<String>,
    /// `NO` (default) or `EN`.
    pub language: Option<String>,
    /// EMAIL (default), EHF, EFAKTURA, AVTALEGIRO, VIPPS, PAPER, MANUAL.
    pub invoice_send_method: Option<String>,
    pub postal_address: Option<NewAddress>,
    pub physical_address: Option<NewAddress>,
    pub is_inactive: bool,
    pub is_factoring: bool,
    pub is_automatic_soft_reminder_enabled: bool,
    pub is_automatic_reminder_enabled: bool,
    pub is_automatic_notice_of_debt_collection_enabled: bool,
}

/// A charged invoice to add.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewInvoice {
    pub customer_id: i64,
    pub invoice_date: NaiveDate,
    pub invoice_due_date: NaiveDate,
    /// VAT included, in `currency`, at most two decimals.
    pub amount: Decimal,
    /// ISO 4217: NOK, EUR, SEK, DKK or USD.
    pub currency: String,
    /// NOK for one unit of `currency`; `None` takes the fake's fixed rate (EUR 11.50, USD 10.60,
    /// SEK 0.98, DKK 1.54). Ignored for NOK.
    pub rate: Option<Decimal>,
    /// `None` generates one: customer number, invoice number and a MOD10 check digit.
    pub kid: Option<String>,
    pub comment: Option<String>,
}

impl NewInvoice {
    /// A NOK invoice due 14 days after `invoice_date`.
    pub fn new(customer_id: i64, invoice_date: NaiveDate, amount: Decimal) -> NewInvoice {
        NewInvoice {
            customer_id,
            invoice_date,
            invoice_due_date: invoice_date
                .checked_add_days(chrono::Days::new(14))
                .unwrap_or(invoice_date),
            amount,
            currency: "NOK".to_string(),
            rate: None,
            kid: None,
            comment: None,
        }
    }
}

/// A change to a customer: `None` leaves the field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CustomerChange {
    pub name: Option<String>,
    pub organization_number: Option<String>,
    pub email: Option<String>,
    pub invoice_email: Option<String>,
    pub overdue_notice_email: Option<String>,
    pub phone_number: Option<String>,
    pub phone_number_mobile: Option<String>,
    pub is_private_individual: Option<bool>,
    pub is_inactive: Option<bool>,
    pub language: Option<String>,
    pub invoice_send_method: Option<String>,
    pub is_factoring: Option<bool>,
    pub is_automatic_soft_reminder_enabled: Option<bool>,
    pub is_automatic_reminder_enabled: Option<bool>,
    pub is_automatic_notice_of_debt_collection_enabled: Option<bool>,
    pub postal_address: Option<NewAddress>,
}

/// A misbehaviour to inject into `/v2` answers (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer `status` (with `Retry-After: retry_after` when set) instead of handling the request,
    /// `times` times, for paths starting with `path_prefix` (all when `None`).
    Status {
        status: u16,
        retry_after: Option<u64>,
        times: u32,
        path_prefix: Option<String>,
    },
    /// Wait `delay` before answering, `times` times.
    Slow { delay: Duration, times: u32 },
    /// Answer 200 with a truncated JSON body, `times` times.
    Malformed { times: u32 },
    /// Handle the request (it takes effect), then answer `status` instead of its answer, `times`
    /// times, for paths starting with `path_prefix` (all when `None`).
    LostAnswer {
        status: u16,
        times: u32,
        path_prefix: Option<String>,
    },
    /// Expire every session before the next request is handled.
    ExpireSessions,
}

/// Why a control call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FakeError {
    #[error("no {kind} with id {id}")]
    NotFound { kind: &'static str, id: i64 },
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
}

impl FakeError {
    pub(crate) fn invalid(field: &str, message: &str) -> FakeError {
        FakeError::Invalid {
            field: field.to_string(),
            message: message.to_string(),
        }
    }
}

/// A `/v2` request the fake answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedRequest {
    pub method: String,
    pub path: String,
    /// The raw query string (`""` when there is none).
    pub query: String,
    pub status: u16,
    pub at: Instant,
}

/// One attempt at delivering a webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedDelivery {
    pub subscription_id: i64,
    pub event: String,
    /// The id of the object the event is about.
    pub object_id: i64,
    /// The same on every attempt of one delivery.
    pub idempotency_key: String,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// The receiver's status, `None` when the request failed.
    pub status: Option<u16>,
    pub error: Option<String>,
    pub at: Instant,
}

/// The shared heart of a running fake.
pub(crate) struct App {
    state: Mutex<State>,
    /// Url prefix for object urls: `127.0.0.1:PORT/v2`.
    base: String,
    http: reqwest::Client,
    rt: Handle,
    shutdown: watch::Receiver<bool>,
    started: Instant,
}

impl App {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` on the state, then sends the webhooks for the events it returns.
    fn with_events<T>(
        self: &Arc<Self>,
        f: impl FnOnce(&mut State) -> Result<(T, Vec<model::Event>), FakeError>,
    ) -> Result<T, FakeError> {
        let (value, out) = {
            let mut st = self.lock();
            let (value, events) = f(&mut st)?;
            let out = webhooks::prepare(&st, &self.base, &events);
            (value, out)
        };
        webhooks::spawn(self, out);
        Ok(value)
    }

    fn add_customer(self: &Arc<Self>, c: NewCustomer) -> i64 {
        self.with_events(|st| {
            let at = st.now();
            st.add_customer(c, at)
        })
        .unwrap_or(0)
    }

    fn add_invoice(self: &Arc<Self>, i: NewInvoice) -> Result<i64, FakeError> {
        self.with_events(|st| {
            let at = st.now();
            st.add_invoice(i, at)
        })
    }

    /// A payment of `amount` in the invoice's currency, paid to the bank.
    fn pay(self: &Arc<Self>, id: i64, amount: Decimal, date: NaiveDate) -> Result<(), FakeError> {
        self.with_events(|st| {
            let inv = st.invoices.get(&id).ok_or(FakeError::NotFound {
                kind: "invoice",
                id,
            })?;
            let (nok, cur) = if inv.currency == NOK {
                (amount, None)
            } else if round2(amount) == inv.outstanding_currency {
                (inv.outstanding.max(Decimal::new(1, 2)), Some(amount))
            } else {
                (round2(amount * inv.rate), Some(amount))
            };
            let at = st.now();
            let events =
                st.pay(id, nok, cur, date, PAYMENT_TYPE_BANK, at)
                    .map_err(|e| match e {
                        FakeError::Invalid { message, .. } => FakeError::Invalid {
                            field: "amount".to_string(),
                            message,
                        },
                        e => e,
                    })?;
            Ok(((), events))
        })
    }

    fn credit(
        self: &Arc<Self>,
        id: i64,
        amount: Option<Decimal>,
        date: NaiveDate,
    ) -> Result<i64, FakeError> {
        self.with_events(|st| {
            let at = st.now();
            st.credit(id, amount, date, None, at)
        })
    }

    fn set_customer(self: &Arc<Self>, id: i64, change: CustomerChange) -> Result<(), FakeError> {
        self.with_events(|st| {
            let at = st.now();
            Ok(((), st.set_customer(id, change, at)?))
        })
    }

    fn expire_sessions(&self) {
        for s in self.lock().sessions.values_mut() {
            s.expired = true;
        }
    }

    fn render_invoices(&self, open_only: bool) -> Vec<serde_json::Value> {
        let st = self.lock();
        let cx = model::Cx {
            st: &st,
            base: &self.base,
        };
        let sel = schema::star(Ty::Invoice);
        st.invoices
            .values()
            .filter(|i| !open_only || i.is_open())
            .map(|i| model::render(&cx, i, &sel))
            .collect()
    }

    fn reseed(&self, seed: u64, invoices: usize) {
        let mut st = self.lock();
        let today = st.today;
        seed::seed(&mut st, seed, invoices, today);
    }
}

/// A running fake Tripletex.
pub struct FakeTripletex {
    app: Arc<App>,
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl FakeTripletex {
    /// Seeds the data and serves on `listener` until [`FakeTripletex::shutdown`] (or drop).
    pub async fn start(
        listener: TcpListener,
        config: FakeConfig,
    ) -> std::io::Result<FakeTripletex> {
        let local = listener.local_addr()?;
        let addr = if local.ip().is_unspecified() {
            SocketAddr::new(Ipv4Addr::LOCALHOST.into(), local.port())
        } else {
            local
        };
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .map_err(std::io::Error::other)?;
        let mut state = State::new(&config);
        seed::seed(&mut state, config.seed, config.invoices, config.today);
        let (stop, stopped) = watch::channel(false);
        let app = Arc::new(App {
            state: Mutex::new(state),
            base: format!("{addr}/v2"),
            http,
            rt: Handle::current(),
            shutdown: stopped.clone(),
            started: Instant::now(),
        });
        let router = api::router(app.clone());
        let mut signal = stopped;
        let task = tokio::spawn(async move {
            let serve = axum::serve(listener, router).with_graceful_shutdown(async move {
                let _ = signal.wait_for(|stop| *stop).await;
            });
            if let Err(e) = serve.await {
                tracing::warn!(error = %e, "the fake Tripletex server stopped");
            }
        });
        Ok(FakeTripletex {
            app,
            addr,
            stop,
            task: Some(task),
        })
    }

    /// `http://127.0.0.1:PORT/v2`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v2", self.addr)
    }

    /// `http://127.0.0.1:PORT/_fake`.
    pub fn control_url(&self) -> String {
        format!("http://{}/_fake", self.addr)
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops the server (waiting up to 5 s for requests in flight) and pending webhook retries.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let abort = task.abort_handle();
            if tokio::time::timeout(Duration::from_secs(5), task)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
    }

    /// Adds a customer (fires `customer.create`); returns its id.
    pub fn add_customer(&self, c: NewCustomer) -> i64 {
        self.app.add_customer(c)
    }

    /// Adds a charged invoice (fires `invoice.charged`); returns its id.
    pub fn add_invoice(&self, i: NewInvoice) -> Result<i64, FakeError> {
        self.app.add_invoice(i)
    }

    /// Registers a payment of `amount` in the invoice's currency, like `:payment` with "Betalt til
    /// bank" (fires `voucher.create`, and `closeGroup.create` when it settles the invoice).
    pub fn pay(&self, invoice_id: i64, amount: Decimal, date: NaiveDate) -> Result<(), FakeError> {
        self.app.pay(invoice_id, amount, date)
    }

    /// Credits `amount` (in the invoice's currency; `None` = the whole invoice) with a credit note
    /// dated `date`; returns the credit note's id.
    pub fn credit(
        &self,
        invoice_id: i64,
        amount: Option<Decimal>,
        date: NaiveDate,
    ) -> Result<i64, FakeError> {
        self.app.credit(invoice_id, amount, date)
    }

    /// Changes a customer (fires `customer.update`).
    pub fn set_customer(&self, id: i64, change: CustomerChange) -> Result<(), FakeError> {
        self.app.set_customer(id, change)
    }

    /// Moves the fake's today (sessions expire by it; seeded data is not regenerated).
    pub fn set_today(&self, today: NaiveDate) {
        self.app.lock().today = today;
    }

    pub fn today(&self) -> NaiveDate {
        self.app.lock().today
    }

    /// Queues a fault (see [`Fault`]).
    pub fn inject(&self, fault: Fault) {
        self.app.lock().faults.push_back(fault);
    }

    /// Drops every fault not yet used.
    pub fn clear_faults(&self) {
        self.app.lock().faults.clear();
    }

    /// Expires every session now: the next call with one gets 401, code 3000.
    pub fn expire_sessions(&self) {
        self.app.expire_sessions();
    }

    /// Switches webhook delivery on or off (events while off are dropped).
    pub fn set_webhooks_enabled(&self, on: bool) {
        self.app.lock().webhooks_enabled = on;
    }

    /// Replaces customers and invoices with freshly seeded ones (at the current today).
    pub fn reseed(&self, seed: u64, invoices: usize) {
        self.app.reseed(seed, invoices);
    }

    /// Every invoice and credit note, as `GET /v2/invoice?fields=*` renders it, by id.
    pub fn invoices(&self) -> Vec<serde_json::Value> {
        self.app.render_invoices(false)
    }

    /// Invoices with `amountOutstanding > 0` that are neither credit notes nor credited.
    pub fn open_invoices(&self) -> Vec<serde_json::Value> {
        self.app.render_invoices(true)
    }

    /// The `/v2` requests answered so far (the last 100 000).
    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.app.lock().requests.iter().cloned().collect()
    }

    /// How many sessions `:create` has handed out.
    pub fn sessions_created(&self) -> usize {
        self.app.lock().sessions_created
    }

    /// Every webhook delivery attempt so far.
    pub fn deliveries(&self) -> Vec<LoggedDelivery> {
        self.app.lock().deliveries.clone()
    }
}

impl Drop for FakeTripletex {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

pub(crate) fn push_request(log: &mut VecDeque<LoggedRequest>, r: LoggedRequest) {
    if log.len() >= model::REQUEST_LOG_CAP {
        log.pop_front();
    }
    log.push_back(r);
}
