//! Forfall's generic connector, for accounting systems without a dedicated one.
//!
//! The partner describes each invoice as an `invoice.v1` document ([`parse_invoice`],
//! [`to_json`]) and either pushes changes to the gateway, signed the Standard Webhooks way
//! ([`forfall_connector::standard_webhooks`]), or serves them for polling from a cursor-paged
//! feed, or both. [`GenericConnector`] implements [`Connector`] over both; the feature `fake`
//! adds [`fake::FakePartner`], a small partner feed for the demo and the tests.
//!
//! What follows is `INVOICE_V1.md` beside this crate's manifest, the partner-facing
//! specification.
//!
#![doc = include_str!("../INVOICE_V1.md")]

mod event;
mod invoice_v1;

#[cfg(feature = "fake")]
pub mod fake;

use std::fmt;

use chrono::{DateTime, Utc};
use forfall_connector::client::{Authenticator, HttpSettings, PlatformClient, Request};
use forfall_connector::standard_webhooks::{self, DEFAULT_TOLERANCE, Secret};
use forfall_connector::{
    Capabilities, Connector, ConnectorError, Cursor, Delivery, ListRequest, Page, Payment,
    RemoteChange, RemoteId, RemoteInvoice, StatusNote,
};
use serde_json::Value;

pub use event::{
    Event, INVOICE_CREATED, INVOICE_DELETED, INVOICE_UPDATED, WebhookEvent, event_json, parse_event,
};
pub use invoice_v1::{AMOUNT_DECIMALS, InvoiceV1Error, SCHEMA, parse_invoice, to_json};

use invoice_v1::{Fields, parse_invoice_at};

/// The platform name of this connector.
pub const PLATFORM: &str = "generic";

/// Invoices asked for per page unless [`GenericConnector::with_page_size`] says otherwise.
pub const DEFAULT_PAGE_SIZE: u32 = 100;
/// The most invoices a feed page may be asked for.
pub const MAX_PAGE_SIZE: u32 = 1000;
/// The longest cursor accepted from a feed, in bytes (the gateway stores it).
pub const MAX_CURSOR_BYTES: usize = 1024;

const CREDENTIAL_FIELDS: &[&str] = &["base_url", "token"];
const FEED_FIELDS: &[&str] = &["data", "next_cursor", "has_more"];

/// A connection's settings, from its credentials JSON `{"base_url": …, "token": …}`. Both are
/// absent for a connection the partner only pushes to; both are present for one that is polled.
#[derive(Clone, PartialEq, Eq)]
pub struct GenericConfig {
    /// Where the partner's feed is: `{base_url}/invoices`. `http` or `https`, without query,
    /// fragment or user info.
    pub base_url: Option<reqwest::Url>,
    /// Sent as `Authorization: Bearer <token>` to the feed.
    pub token: Option<String>,
}

impl fmt::Debug for GenericConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GenericConfig")
            .field("base_url", &self.base_url.as_ref().map(|url| url.as_str()))
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl GenericConfig {
    /// Reads the credentials JSON. `null` counts as `{}` (push only). Unknown keys, a malformed
    /// URL, a token without a URL or a URL without a token are [`ConnectorError::Config`].
    pub fn from_credentials(credentials: &Value) -> Result<GenericConfig, ConnectorError> {
        if credentials.is_null() {
            return Ok(GenericConfig {
                base_url: None,
                token: None,
            });
        }
        let fields = Fields::new(credentials, "", CREDENTIAL_FIELDS, "a JSON object")
            .map_err(|e| ConnectorError::Config(format!("generic credentials: {e}")))?;
        let text = |key: &str| match fields.optional(key) {
            None => Ok(None),
            Some(Value::String(text)) if !text.trim().is_empty() => Ok(Some(text.clone())),
            Some(_) => Err(ConnectorError::Config(format!(
                "generic credentials: {key} must be a non-empty string"
            ))),
        };
        let base_url = text("base_url")?
            .map(|url| {
                reqwest::Url::parse(&url).map_err(|_| {
                    ConnectorError::Config("generic credentials: base_url is not a URL".into())
                })
            })
            .transpose()?;
        let config = GenericConfig {
            base_url,
            token: text("token")?,
        };
        config.check()?;
        Ok(config)
    }

    /// Both or neither of base_url and token; a usable base_url.
    fn check(&self) -> Result<(), ConnectorError> {
        let bad = |why: &str| ConnectorError::Config(format!("generic credentials: {why}"));
        match (&self.base_url, &self.token) {
            (Some(url), Some(_)) => {
                check_base_url(url).map_err(|why| bad(&format!("base_url {why}")))
            }
            (None, None) => Ok(()),
            (Some(_), None) => Err(bad("base_url needs a token for the feed")),
            (None, Some(_)) => Err(bad("a token is only used with base_url, which is missing")),
        }
    }
}

/// Why a base URL cannot be used, if it cannot.
fn check_base_url(url: &reqwest::Url) -> Result<(), &'static str> {
    if !matches!(url.scheme(), "http" | "https") {
        Err("must be http or https")
    } else if url.cannot_be_a_base() || url.host().is_none() {
        Err("must have a host")
    } else if !url.username().is_empty() || url.password().is_some() {
        Err("must not carry credentials: put them in token")
    } else if url.query().is_some() || url.fragment().is_some() {
        Err("must not have a query or fragment")
    } else {
        Ok(())
    }
}

/// Sends a static token as `Authorization: Bearer <token>`. Its `Debug` never shows the token.
pub struct BearerToken {
    header: http::HeaderValue,
}

impl BearerToken {
    /// A token that is empty or not visible ASCII is [`ConnectorError::Config`].
    pub fn new(token: &str) -> Result<BearerToken, ConnectorError> {
        if token.trim().is_empty() {
            return Err(ConnectorError::Config("the token is empty".into()));
        }
        let mut header = http::HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
            ConnectorError::Config("the token must be visible ASCII characters".into())
        })?;
        header.set_sensitive(true);
        Ok(BearerToken { header })
    }
}

impl fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BearerToken(<redacted>)")
    }
}

#[async_trait::async_trait]
impl Authenticator for BearerToken {
    async fn authorize(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::RequestBuilder, ConnectorError> {
        Ok(request.header(http::header::AUTHORIZATION, self.header.clone()))
    }

    /// A static token cannot be renewed: the connection needs a new one.
    async fn renew(&self) -> Result<(), ConnectorError> {
        Err(ConnectorError::Unauthorized(
            "the partner refused the bearer token; a static token cannot be renewed, so the \
             connection needs a new one"
                .into(),
        ))
    }
}

/// The connector for one generic connection.
pub struct GenericConnector {
    feed: Option<Feed>,
    page_size: u32,
}

struct Feed {
    base_url: reqwest::Url,
    client: PlatformClient,
    auth: BearerToken,
}

impl fmt::Debug for GenericConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GenericConnector")
            .field(
                "base_url",
                &self.feed.as_ref().map(|feed| feed.base_url.as_str()),
            )
            .field("page_size", &self.page_size)
            .finish()
    }
}

impl GenericConnector {
    /// The connector for a connection's credentials JSON (see [`GenericConfig::from_credentials`]).
    pub fn from_credentials(
        credentials: &Value,
        settings: HttpSettings,
    ) -> Result<GenericConnector, ConnectorError> {
        GenericConnector::new(GenericConfig::from_credentials(credentials)?, settings)
    }

    /// The connector for a configuration. Unless `settings` has its own, partner error bodies
    /// of the shape `{"error": …, "message": …}` are read into error details.
    pub fn new(
        config: GenericConfig,
        mut settings: HttpSettings,
    ) -> Result<GenericConnector, ConnectorError> {
        config.check()?;
        let feed = match (config.base_url, config.token) {
            (Some(base_url), Some(token)) => {
                if settings.error_detail.is_none() {
                    settings.error_detail = Some(partner_error);
                }
                Some(Feed {
                    base_url,
                    client: PlatformClient::new(settings)?,
                    auth: BearerToken::new(&token)?,
                })
            }
            _ => None,
        };
        Ok(GenericConnector {
            feed,
            page_size: DEFAULT_PAGE_SIZE,
        })
    }

    /// Invoices asked for per feed page, 1 to [`MAX_PAGE_SIZE`].
    pub fn with_page_size(mut self, page_size: u32) -> GenericConnector {
        self.page_size = page_size.clamp(1, MAX_PAGE_SIZE);
        self
    }

    fn feed(&self) -> Result<&Feed, ConnectorError> {
        self.feed.as_ref().ok_or(ConnectorError::Unsupported(
            "polling (no base_url configured)",
        ))
    }
}

impl Feed {
    /// `{base_url}/{segments…}`, each segment percent-encoded.
    fn url(&self, segments: &[&str]) -> Result<reqwest::Url, ConnectorError> {
        let mut url = self.base_url.clone();
        url.path_segments_mut()
            .map_err(|_| ConnectorError::Config("base_url cannot take a path".into()))?
            .pop_if_empty()
            .extend(segments);
        Ok(url)
    }
}

/// Reads a partner's error body `{"error": "code", "message": "text"}` into one short line.
fn partner_error(body: &[u8]) -> Option<String> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let code = value.get("error").and_then(Value::as_str);
    let message = value.get("message").and_then(Value::as_str);
    let line = match (code, message) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(text), None) | (None, Some(text)) => text.to_string(),
        (None, None) => return None,
    };
    Some(line.chars().take(200).collect())
}

/// One page of the feed, read.
struct FeedPage {
    invoices: Vec<RemoteInvoice>,
    next_cursor: Option<String>,
    has_more: bool,
}

fn parse_feed_page(value: &Value) -> Result<FeedPage, InvoiceV1Error> {
    let fields = Fields::new(value, "", FEED_FIELDS, "a JSON object")?;
    let Value::Array(data) = fields.required("data")? else {
        return Err(fields.error("data", "must be an array of invoice.v1 documents"));
    };
    let mut invoices = Vec::with_capacity(data.len());
    for (index, document) in data.iter().enumerate() {
        let path = format!("data[{index}]");
        let invoice = parse_invoice_at(document, &path).map_err(|mut e| {
            if let Some(id) = document.get("id").and_then(Value::as_str) {
                let id: String = id.chars().take(128).collect();
                e.message = format!("{} (invoice {id:?})", e.message);
            }
            e
        })?;
        invoices.push(invoice);
    }
    let next_cursor = match fields.optional("next_cursor") {
        None => None,
        Some(Value::String(cursor)) if !cursor.is_empty() && cursor.len() <= MAX_CURSOR_BYTES => {
            Some(cursor.clone())
        }
        Some(_) => {
            return Err(fields.error(
                "next_cursor",
                format!("must be null or a non-empty string of at most {MAX_CURSOR_BYTES} bytes"),
            ));
        }
    };
    let has_more = match fields.required("has_more")? {
        Value::Bool(flag) => *flag,
        _ => return Err(fields.error("has_more", "must be true or false")),
    };
    Ok(FeedPage {
        invoices,
        next_cursor,
        has_more,
    })
}

fn malformed(error: InvoiceV1Error) -> ConnectorError {
    ConnectorError::Malformed {
        detail: error.to_string(),
    }
}

#[async_trait::async_trait]
impl Connector for GenericConnector {
    fn platform(&self) -> &'static str {
        PLATFORM
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            poll: self.feed.is_some(),
            webhooks: true,
            write_payment: false,
            write_note: false,
            complete_listing: true,
        }
    }

    /// One page of the feed. A full pass starts without a cursor (everything the partner has);
    /// otherwise the pass resumes from `request.cursor`. When the partner gives no next cursor,
    /// the page's cursor is the one it was asked with (empty for the start), so the next pass
    /// resumes from the same place.
    async fn open_invoices(&self, request: &ListRequest) -> Result<Page, ConnectorError> {
        let feed = self.feed()?;
        let cursor = if request.full {
            None
        } else {
            request
                .cursor
                .as_ref()
                .map(|cursor| cursor.0.as_str())
                .filter(|cursor| !cursor.is_empty())
        };
        let mut url = feed.url(&["invoices"])?;
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("limit", &self.page_size.to_string());
            if let Some(cursor) = cursor {
                query.append_pair("cursor", cursor);
            }
        }
        let response = feed.client.send(&Request::get(url), &feed.auth).await?;
        let value: Value = response.json()?;
        let page = parse_feed_page(&value).map_err(malformed)?;
        if page.has_more && page.next_cursor.is_none() {
            return Err(ConnectorError::Malformed {
                detail: "has_more is true but next_cursor is null".into(),
            });
        }
        if page.has_more && page.next_cursor.as_deref() == cursor {
            return Err(ConnectorError::Malformed {
                detail: "has_more is true but next_cursor did not move".into(),
            });
        }
        let next = page
            .next_cursor
            .unwrap_or_else(|| cursor.unwrap_or_default().to_string());
        let (open, closed): (Vec<_>, Vec<_>) = page
            .invoices
            .into_iter()
            .partition(|invoice| invoice.outstanding > rust_decimal::Decimal::ZERO);
        tracing::debug!(
            platform = PLATFORM,
            full = request.full,
            open = open.len(),
            closed = closed.len(),
            last = !page.has_more,
            "feed page read"
        );
        Ok(Page {
            open,
            closed,
            cursor: Cursor(next),
            last: !page.has_more,
        })
    }

    async fn invoice(&self, id: &RemoteId) -> Result<RemoteInvoice, ConnectorError> {
        let feed = self.feed()?;
        let url = feed.url(&["invoices", &id.0])?;
        let response = feed.client.send(&Request::get(url), &feed.auth).await?;
        let value: Value = response.json()?;
        let invoice = parse_invoice(&value).map_err(malformed)?;
        if invoice.id != *id {
            return Err(ConnectorError::Malformed {
                detail: "id: the partner answered with another invoice than the one asked for"
                    .into(),
            });
        }
        Ok(invoice)
    }

    /// Checks a delivery the Standard Webhooks way with the connection's `whsec_` secret and a
    /// tolerance of five minutes. The delivery's `webhook-id` comes back in [`Delivery::id`]: the
    /// gateway refuses an id it has seen, which is what stops a replay within the tolerance.
    fn verify_webhook(
        &self,
        secret: &[u8],
        headers: &http::HeaderMap,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Delivery, ConnectorError> {
        let secret = std::str::from_utf8(secret)
            .ok()
            .and_then(|text| Secret::parse(text).ok())
            .ok_or_else(|| {
                ConnectorError::Config(
                    "the connection's webhook secret is not a whsec_ secret".into(),
                )
            })?;
        let delivery = standard_webhooks::verify(&secret, headers, body, now, DEFAULT_TOLERANCE)
            .map_err(|e| ConnectorError::BadSignature(e.to_string()))?;
        Ok(Delivery {
            id: Some(delivery.id),
        })
    }

    fn parse_webhook(
        &self,
        _headers: &http::HeaderMap,
        body: &[u8],
    ) -> Result<Vec<RemoteChange>, ConnectorError> {
        let event = parse_event(body).map_err(malformed)?;
        Ok(vec![match event.event {
            WebhookEvent::Updated(invoice) => RemoteChange::InvoiceSnapshot(Box::new(invoice)),
            WebhookEvent::Deleted(id) => RemoteChange::InvoiceDeleted(id),
        }])
    }

    async fn record_payment(
        &self,
        _id: &RemoteId,
        _payment: &Payment,
    ) -> Result<(), ConnectorError> {
        Err(ConnectorError::Unsupported("registering payments"))
    }

    async fn record_status(
        &self,
        _id: &RemoteId,
        _note: &StatusNote,
    ) -> Result<(), ConnectorError> {
        Err(ConnectorError::Unsupported("status notes"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partner_error_bodies_become_one_line() {
        assert_eq!(
            partner_error(br#"{"error":"unauthorized","message":"bad token"}"#).as_deref(),
            Some("unauthorized: bad token")
        );
        assert_eq!(partner_error(b"<html>").as_deref(), None);
    }

    #[test]
    fn debug_never_shows_the_token() {
        let config = GenericConfig::from_credentials(&serde_json::json!({
            "base_url": "https://erp.example/api", "token": "s3cr3t-token"
        }))
        .unwrap();
        assert!(!format!("{config:?}").contains("s3cr3t"));
        let token = BearerToken::new("s3cr3t-token").unwrap();
        assert!(!format!("{token:?}").contains("s3cr3t"));
    }

    #[test]
    fn the_feed_url_keeps_the_base_path_and_encodes_the_id() {
        let connector = GenericConnector::from_credentials(
            &serde_json::json!({"base_url": "https://erp.example/api/forfall/", "token": "t"}),
            HttpSettings::default(),
        )
        .unwrap();
        let feed = connector.feed().unwrap();
        assert_eq!(
            feed.url(&["invoices", "INV/1 2"]).unwrap().as_str(),
            "https://erp.example/api/forfall/invoices/INV%2F1%202"
        );
    }
}
