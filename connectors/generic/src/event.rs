//! The events a partner pushes: `{"type": …, "timestamp": …, "data": …}`.

use chrono::{DateTime, SecondsFormat, Utc};
use forfall_connector::{RemoteId, RemoteInvoice};
use serde_json::{Value, json};

use crate::invoice_v1::{Fields, InvoiceV1Error, MAX_ID_CHARS, parse_invoice_at, to_json};

/// The event carrying an invoice's current state.
pub const INVOICE_UPDATED: &str = "invoice.updated";
/// Accepted as a synonym of [`INVOICE_UPDATED`], for partners that tell the two apart.
pub const INVOICE_CREATED: &str = "invoice.created";
/// The event saying an invoice no longer exists.
pub const INVOICE_DELETED: &str = "invoice.deleted";

const EVENT_FIELDS: &[&str] = &["type", "timestamp", "data"];
const DELETED_FIELDS: &[&str] = &["id"];

/// What one pushed event says.
#[derive(Debug, Clone, PartialEq, Eq)]
// One short-lived value per delivery: boxing the invoice would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum WebhookEvent {
    /// `invoice.updated` (or `invoice.created`): the invoice as it is now.
    Updated(RemoteInvoice),
    /// `invoice.deleted`: the invoice no longer exists.
    Deleted(RemoteId),
}

/// A pushed event, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub event: WebhookEvent,
    /// When the partner says the event happened.
    pub timestamp: DateTime<Utc>,
}

/// Reads an event body. Errors name the field from the top (`data.customer.kind`); a body that
/// is not JSON at all has an empty field.
pub fn parse_event(body: &[u8]) -> Result<Event, InvoiceV1Error> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        InvoiceV1Error::new(
            "",
            format!(
                "the body is not JSON (line {}, column {})",
                e.line(),
                e.column()
            ),
        )
    })?;
    let fields = Fields::new(&value, "", EVENT_FIELDS, "a JSON object")?;
    let kind = fields.text("type", 64)?;
    let timestamp_text = fields.text("timestamp", 64)?;
    let timestamp = DateTime::parse_from_rfc3339(&timestamp_text)
        .map_err(|_| {
            fields.error(
                "timestamp",
                "must be an RFC 3339 time such as \"2026-11-23T10:00:00Z\"",
            )
        })?
        .with_timezone(&Utc);
    let data = fields.required("data")?;
    let event = match kind.as_str() {
        INVOICE_UPDATED | INVOICE_CREATED => WebhookEvent::Updated(parse_invoice_at(data, "data")?),
        INVOICE_DELETED => {
            let deleted = Fields::new(data, "data", DELETED_FIELDS, "an object")?;
            WebhookEvent::Deleted(RemoteId(deleted.text("id", MAX_ID_CHARS)?))
        }
        _ => {
            return Err(fields.error(
                "type",
                format!(
                    "must be \"{INVOICE_UPDATED}\", \"{INVOICE_CREATED}\" or \"{INVOICE_DELETED}\""
                ),
            ));
        }
    };
    Ok(Event { event, timestamp })
}

/// Writes an event body, as a partner sends it: the inverse of [`parse_event`].
pub fn event_json(event: &WebhookEvent, timestamp: DateTime<Utc>) -> Value {
    let timestamp = timestamp.to_rfc3339_opts(SecondsFormat::Secs, true);
    match event {
        WebhookEvent::Updated(invoice) => json!({
            "type": INVOICE_UPDATED,
            "timestamp": timestamp,
            "data": to_json(invoice),
        }),
        WebhookEvent::Deleted(id) => json!({
            "type": INVOICE_DELETED,
            "timestamp": timestamp,
            "data": { "id": id.0 },
        }),
    }
}
