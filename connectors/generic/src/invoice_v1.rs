//! Reading and writing `invoice.v1` documents (see the crate documentation for the format).
//!
//! Parsing is strict and hand-written over `serde_json::Value`, so that every error names the
//! field by its path (`customer.kind`, `customer.address.lines[1]`, `data[3].amount`) and no
//! error repeats a value, which may be personal data.

use std::str::FromStr;

use chrono::NaiveDate;
use forfall_connector::{DebtorKind, RemoteCustomer, RemoteId, RemoteInvoice};
use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::{Map, Value, json};

/// The value of the `schema` field.
pub const SCHEMA: &str = "invoice.v1";

/// Decimal places allowed in an amount.
pub const AMOUNT_DECIMALS: u32 = 2;

pub(crate) const MAX_ID_CHARS: usize = 128;
const MAX_NUMBER_CHARS: usize = 64;
const MAX_REFERENCE_CHARS: usize = 64;
const MAX_NAME_CHARS: usize = 256;
const MAX_ORGANISATION_NUMBER_CHARS: usize = 32;
const MAX_EMAIL_CHARS: usize = 254;
const MAX_ADDRESS_LINES: usize = 4;
const MAX_ADDRESS_LINE_CHARS: usize = 128;
const MAX_POSTAL_CODE_CHARS: usize = 16;
const MAX_CITY_CHARS: usize = 64;
/// Digits before the decimal point: up to 999 999 999 999 999.
const MAX_INTEGER_DIGITS: usize = 15;

const INVOICE_FIELDS: &[&str] = &[
    "schema",
    "id",
    "number",
    "issued",
    "due",
    "currency",
    "amount",
    "outstanding",
    "payment_reference",
    "credited",
    "customer",
];
const CUSTOMER_FIELDS: &[&str] = &[
    "id",
    "kind",
    "name",
    "organisation_number",
    "email",
    "address",
    "platform_dunning",
];
const ADDRESS_FIELDS: &[&str] = &["lines", "postal_code", "city", "country"];

/// A document that is not a valid `invoice.v1` (or event, or feed page): which field, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.describe())]
pub struct InvoiceV1Error {
    /// The field's path in the document, such as `customer.kind` or `data[3].amount`; empty
    /// when the document as a whole is wrong.
    pub field: String,
    /// What is wrong with it. Never repeats the value.
    pub message: String,
}

impl InvoiceV1Error {
    pub(crate) fn new(field: impl Into<String>, message: impl Into<String>) -> InvoiceV1Error {
        InvoiceV1Error {
            field: field.into(),
            message: message.into(),
        }
    }

    fn describe(&self) -> String {
        if self.field.is_empty() {
            self.message.clone()
        } else {
            format!("{}: {}", self.field, self.message)
        }
    }
}

/// Reads an `invoice.v1` document.
pub fn parse_invoice(value: &Value) -> Result<RemoteInvoice, InvoiceV1Error> {
    parse_invoice_at(value, "")
}

/// Reads an `invoice.v1` document found at `path` in a larger one (`data`, `data[3]`), so that
/// errors name the field from the top.
pub(crate) fn parse_invoice_at(value: &Value, path: &str) -> Result<RemoteInvoice, InvoiceV1Error> {
    let doc = Fields::new(value, path, INVOICE_FIELDS, "an invoice.v1 document")?;
    let schema = doc.text("schema", 64)?;
    if schema != SCHEMA {
        return Err(doc.error("schema", format!("must be \"{SCHEMA}\"")));
    }
    let id = doc.text("id", MAX_ID_CHARS)?;
    let number = doc.text("number", MAX_NUMBER_CHARS)?;
    let issued = doc.date("issued")?;
    let due = doc.date("due")?;
    if due < issued {
        return Err(doc.error("due", "must not be before issued"));
    }
    let currency = doc.text("currency", 16)?;
    if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(doc.error(
            "currency",
            "must be an ISO 4217 code of three upper-case letters, such as \"NOK\"",
        ));
    }
    let amount = doc.amount("amount")?;
    if amount <= Decimal::ZERO {
        return Err(doc.error(
            "amount",
            "must be above zero (credit notes are not sent: see credited)",
        ));
    }
    let outstanding = doc.amount("outstanding")?;
    if outstanding < Decimal::ZERO {
        return Err(doc.error("outstanding", "must not be negative"));
    }
    if outstanding > amount {
        return Err(doc.error("outstanding", "must not be more than amount"));
    }
    let payment_reference = doc.optional_text("payment_reference", MAX_REFERENCE_CHARS)?;
    let credited = doc.flag("credited")?;
    let customer = parse_customer(doc.required("customer")?, &doc.path("customer"))?;
    Ok(RemoteInvoice {
        id: RemoteId(id),
        number,
        customer,
        issued,
        due,
        currency,
        amount,
        outstanding,
        payment_reference,
        credited,
    })
}

fn parse_customer(value: &Value, path: &str) -> Result<RemoteCustomer, InvoiceV1Error> {
    let customer = Fields::new(value, path, CUSTOMER_FIELDS, "an object")?;
    let id = customer.text("id", MAX_ID_CHARS)?;
    let kind = match customer.text("kind", 16)?.as_str() {
        "business" => DebtorKind::Business,
        "consumer" => DebtorKind::Consumer,
        _ => {
            return Err(customer.error("kind", "must be \"business\" or \"consumer\""));
        }
    };
    let name = customer.text("name", MAX_NAME_CHARS)?;
    let organisation_number =
        customer.optional_text("organisation_number", MAX_ORGANISATION_NUMBER_CHARS)?;
    let email = customer.optional_text("email", MAX_EMAIL_CHARS)?;
    if let Some(email) = &email {
        let plausible = email
            .split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty())
            && !email.contains(char::is_whitespace);
        if !plausible {
            return Err(customer.error("email", "must be an e-mail address"));
        }
    }
    let mut address_lines = Vec::new();
    let mut postal_code = None;
    let mut city = None;
    let mut country = None;
    if let Some(value) = customer.optional("address") {
        let address = Fields::new(
            value,
            &customer.path("address"),
            ADDRESS_FIELDS,
            "an object",
        )?;
        if let Some(lines) = address.optional("lines") {
            let Value::Array(lines) = lines else {
                return Err(address.error("lines", "must be an array of strings"));
            };
            if lines.len() > MAX_ADDRESS_LINES {
                return Err(address.error(
                    "lines",
                    format!("must have at most {MAX_ADDRESS_LINES} lines"),
                ));
            }
            for (index, line) in lines.iter().enumerate() {
                let path = format!("{}[{index}]", address.path("lines"));
                address_lines.push(text(line, &path, MAX_ADDRESS_LINE_CHARS)?);
            }
        }
        postal_code = address.optional_text("postal_code", MAX_POSTAL_CODE_CHARS)?;
        city = address.optional_text("city", MAX_CITY_CHARS)?;
        country = address.optional_text("country", 16)?;
        if let Some(code) = &country
            && (code.len() != 2 || !code.bytes().all(|b| b.is_ascii_uppercase()))
        {
            return Err(address.error(
                "country",
                "must be an ISO 3166-1 alpha-2 code in upper case, such as \"NO\"",
            ));
        }
    }
    let platform_dunning = customer.flag("platform_dunning")?;
    Ok(RemoteCustomer {
        id: RemoteId(id),
        kind,
        name,
        organisation_number,
        email,
        address_lines,
        postal_code,
        city,
        country,
        platform_dunning,
    })
}

/// Writes an invoice as an `invoice.v1` document: the inverse of [`parse_invoice`]. Every field
/// is written (`null` where absent); amounts with exactly two decimals (rounded half away from
/// zero if the invoice had more).
pub fn to_json(invoice: &RemoteInvoice) -> Value {
    let customer = &invoice.customer;
    let has_address = !customer.address_lines.is_empty()
        || customer.postal_code.is_some()
        || customer.city.is_some()
        || customer.country.is_some();
    let address = if has_address {
        json!({
            "lines": customer.address_lines,
            "postal_code": customer.postal_code,
            "city": customer.city,
            "country": customer.country,
        })
    } else {
        Value::Null
    };
    json!({
        "schema": SCHEMA,
        "id": invoice.id.0,
        "number": invoice.number,
        "issued": invoice.issued.format("%Y-%m-%d").to_string(),
        "due": invoice.due.format("%Y-%m-%d").to_string(),
        "currency": invoice.currency,
        "amount": money(invoice.amount),
        "outstanding": money(invoice.outstanding),
        "payment_reference": invoice.payment_reference,
        "credited": invoice.credited,
        "customer": {
            "id": customer.id.0,
            "kind": match customer.kind {
                DebtorKind::Business => "business",
                DebtorKind::Consumer => "consumer",
            },
            "name": customer.name,
            "organisation_number": customer.organisation_number,
            "email": customer.email,
            "address": address,
            "platform_dunning": customer.platform_dunning,
        },
    })
}

/// An amount as a string with exactly two decimals.
fn money(amount: Decimal) -> String {
    let mut rounded =
        amount.round_dp_with_strategy(AMOUNT_DECIMALS, RoundingStrategy::MidpointAwayFromZero);
    rounded.rescale(AMOUNT_DECIMALS);
    rounded.to_string()
}

/// The fields of one JSON object at `prefix`, checked against the names it may have.
pub(crate) struct Fields<'a> {
    map: &'a Map<String, Value>,
    prefix: String,
}

impl<'a> Fields<'a> {
    /// `value` must be an object (described as `what` otherwise) with no field outside `known`.
    pub(crate) fn new(
        value: &'a Value,
        prefix: &str,
        known: &[&str],
        what: &str,
    ) -> Result<Fields<'a>, InvoiceV1Error> {
        let Value::Object(map) = value else {
            return Err(InvoiceV1Error::new(prefix, format!("must be {what}")));
        };
        let fields = Fields {
            map,
            prefix: prefix.to_string(),
        };
        if let Some(unknown) = map.keys().find(|key| !known.contains(&key.as_str())) {
            return Err(fields.error(&shown_key(unknown), "unknown field"));
        }
        Ok(fields)
    }

    /// The path of one of the fields.
    pub(crate) fn path(&self, key: &str) -> String {
        if self.prefix.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.prefix)
        }
    }

    pub(crate) fn error(&self, key: &str, message: impl Into<String>) -> InvoiceV1Error {
        InvoiceV1Error::new(self.path(key), message)
    }

    /// A field that must be present and not null.
    pub(crate) fn required(&self, key: &str) -> Result<&'a Value, InvoiceV1Error> {
        self.optional(key)
            .ok_or_else(|| self.error(key, "is required"))
    }

    /// A field that may be absent or null.
    pub(crate) fn optional(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|value| !value.is_null())
    }

    pub(crate) fn text(&self, key: &str, max_chars: usize) -> Result<String, InvoiceV1Error> {
        text(self.required(key)?, &self.path(key), max_chars)
    }

    fn optional_text(&self, key: &str, max_chars: usize) -> Result<Option<String>, InvoiceV1Error> {
        self.optional(key)
            .map(|value| text(value, &self.path(key), max_chars))
            .transpose()
    }

    /// An optional boolean, false when absent or null.
    pub(crate) fn flag(&self, key: &str) -> Result<bool, InvoiceV1Error> {
        match self.optional(key) {
            None => Ok(false),
            Some(Value::Bool(flag)) => Ok(*flag),
            Some(_) => Err(self.error(key, "must be true or false")),
        }
    }

    fn date(&self, key: &str) -> Result<NaiveDate, InvoiceV1Error> {
        let path = self.path(key);
        let Value::String(text) = self.required(key)? else {
            return Err(InvoiceV1Error::new(path, "must be a date as YYYY-MM-DD"));
        };
        let bytes = text.as_bytes();
        let shaped = bytes.len() == 10
            && bytes.iter().enumerate().all(|(i, b)| match i {
                4 | 7 => *b == b'-',
                _ => b.is_ascii_digit(),
            });
        if !shaped {
            return Err(InvoiceV1Error::new(path, "must be a date as YYYY-MM-DD"));
        }
        NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .map_err(|_| InvoiceV1Error::new(path, "is not a calendar date"))
    }

    fn amount(&self, key: &str) -> Result<Decimal, InvoiceV1Error> {
        let path = self.path(key);
        let text = match self.required(key)? {
            Value::String(text) => text,
            Value::Number(_) => {
                return Err(InvoiceV1Error::new(
                    path,
                    "must be a decimal string such as \"12500.00\", not a JSON number",
                ));
            }
            _ => {
                return Err(InvoiceV1Error::new(
                    path,
                    "must be a decimal string such as \"12500.00\"",
                ));
            }
        };
        let unsigned = text.strip_prefix('-').unwrap_or(text);
        let (integer, fraction) = match unsigned.split_once('.') {
            Some((integer, fraction)) => (integer, Some(fraction)),
            None => (unsigned, None),
        };
        let digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
        if !digits(integer) || fraction.is_some_and(|fraction| !digits(fraction)) {
            return Err(InvoiceV1Error::new(
                path,
                "must be a decimal string such as \"12500.00\"",
            ));
        }
        if fraction.is_some_and(|fraction| fraction.len() > AMOUNT_DECIMALS as usize) {
            return Err(InvoiceV1Error::new(
                path,
                format!("must have at most {AMOUNT_DECIMALS} decimal places"),
            ));
        }
        if integer.trim_start_matches('0').len() > MAX_INTEGER_DIGITS {
            return Err(InvoiceV1Error::new(path, "is too large"));
        }
        Decimal::from_str(text).map_err(|_| InvoiceV1Error::new(path, "is too large"))
    }
}

/// A required single-line string of 1 to `max_chars` characters.
pub(crate) fn text(value: &Value, path: &str, max_chars: usize) -> Result<String, InvoiceV1Error> {
    let Value::String(text) = value else {
        return Err(InvoiceV1Error::new(path, "must be a string"));
    };
    if text.trim().is_empty() {
        return Err(InvoiceV1Error::new(path, "must not be empty"));
    }
    if text.chars().count() > max_chars {
        return Err(InvoiceV1Error::new(
            path,
            format!("must be at most {max_chars} characters"),
        ));
    }
    if text.chars().any(char::is_control) {
        return Err(InvoiceV1Error::new(
            path,
            "must not contain control characters (line breaks, tabs)",
        ));
    }
    Ok(text.clone())
}

/// An unknown field's name as shown in an error: at most 64 characters, no control characters.
fn shown_key(key: &str) -> String {
    let mut shown: String = key
        .chars()
        .take(64)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if key.chars().count() > 64 {
        shown.push('…');
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_is_written_with_two_decimals() {
        assert_eq!(money(Decimal::new(125, 0)), "125.00");
        assert_eq!(money(Decimal::new(12505, 1)), "1250.50");
        assert_eq!(money(Decimal::new(1005, 3)), "1.01");
        assert_eq!(money(Decimal::new(-1005, 3)), "-1.01");
    }

    #[test]
    fn an_unknown_key_is_shown_short_and_printable() {
        assert_eq!(shown_key("phone"), "phone");
        assert_eq!(shown_key("a\nb"), "a?b");
        let long = "x".repeat(100);
        assert_eq!(shown_key(&long).chars().count(), 65);
    }
}
