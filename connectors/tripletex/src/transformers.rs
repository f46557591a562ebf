//! Tripletex's JSON (API v2) and its mapping to Forfall's normalised types.
//!
//! Only the fields the connector asks for with `fields=` are read. Amounts arrive as JSON numbers;
//! they are read through their decimal text, never as floating point arithmetic.

use std::str::FromStr;

use chrono::NaiveDate;
use forfall_connector::{ConnectorError, DebtorKind, RemoteCustomer, RemoteId, RemoteInvoice};
use rust_decimal::Decimal;
use serde::Deserialize;

/// The customer fields the connector reads, nested in an invoice or alone.
pub const CUSTOMER_FIELDS: &str = "id,name,organizationNumber,isPrivateIndividual,email,\
invoiceEmail,postalAddress(addressLine1,addressLine2,postalCode,city,country(isoAlpha2Code)),\
isAutomaticReminderEnabled,isAutomaticNoticeOfDebtCollectionEnabled";

/// The invoice fields the connector reads (`fields=` on every invoice call).
pub fn invoice_fields() -> String {
    format!(
        "id,version,invoiceNumber,invoiceDate,invoiceDueDate,kid,amount,amountCurrency,\
         amountOutstanding,amountCurrencyOutstanding,currency(code),isCreditNote,isCredited,\
         creditedInvoice,customer({CUSTOMER_FIELDS})"
    )
}

/// `{"value": …}`: every single object.
#[derive(Debug, Deserialize)]
pub struct Wrapper<T> {
    pub value: T,
}

/// `{"fullResultSize", "from", "count", "versionDigest", "values"}`: every list.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListResponse<T> {
    #[serde(default)]
    pub version_digest: Option<String>,
    #[serde(default = "Vec::new")]
    pub values: Vec<T>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Invoice {
    pub id: i64,
    pub invoice_number: Option<i64>,
    pub invoice_date: Option<NaiveDate>,
    pub invoice_due_date: Option<NaiveDate>,
    pub kid: Option<String>,
    pub amount: Option<serde_json::Number>,
    pub amount_currency: Option<serde_json::Number>,
    pub amount_outstanding: Option<serde_json::Number>,
    pub amount_currency_outstanding: Option<serde_json::Number>,
    pub currency: Option<CurrencyRef>,
    #[serde(default)]
    pub is_credit_note: bool,
    #[serde(default)]
    pub is_credited: bool,
    pub customer: Option<Customer>,
}

#[derive(Debug, Deserialize)]
pub struct CurrencyRef {
    pub code: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Customer {
    pub id: i64,
    pub name: Option<String>,
    pub organization_number: Option<String>,
    #[serde(default)]
    pub is_private_individual: bool,
    pub email: Option<String>,
    pub invoice_email: Option<String>,
    pub postal_address: Option<Address>,
    #[serde(default)]
    pub is_automatic_reminder_enabled: bool,
    #[serde(default)]
    pub is_automatic_notice_of_debt_collection_enabled: bool,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Address {
    pub address_line1: Option<String>,
    pub address_line2: Option<String>,
    pub postal_code: Option<String>,
    pub city: Option<String>,
    pub country: Option<CountryRef>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CountryRef {
    pub iso_alpha2_code: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct PaymentType {
    pub id: i64,
    pub description: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subscription {
    pub id: i64,
    pub version: Option<i64>,
    pub event: Option<String>,
    pub target_url: Option<String>,
    pub status: Option<String>,
}

/// Tripletex's error body (`ApiError`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ApiError {
    code: Option<i64>,
    message: Option<String>,
    #[serde(default)]
    validation_messages: Option<Vec<ValidationMessage>>,
}

#[derive(Debug, Deserialize)]
struct ValidationMessage {
    field: Option<String>,
    message: Option<String>,
}

/// One line from Tripletex's error body: its code, message and the fields it names. The
/// `developerMessage` is left out: it may quote the request.
pub fn error_detail(body: &[u8]) -> Option<String> {
    let error: ApiError = serde_json::from_slice(body).ok()?;
    let mut line = match (error.code, error.message) {
        (Some(code), Some(message)) => format!("code {code}: {message}"),
        (Some(code), None) => format!("code {code}"),
        (None, Some(message)) => message,
        (None, None) => return None,
    };
    for v in error.validation_messages.unwrap_or_default() {
        line.push_str(&format!(
            "; {}: {}",
            v.field.unwrap_or_else(|| "?".into()),
            v.message.unwrap_or_default()
        ));
    }
    Some(line)
}

/// An exact decimal from a JSON number, rounded to øre.
pub fn amount(value: &Option<serde_json::Number>, field: &str) -> Result<Decimal, ConnectorError> {
    let number = value.as_ref().ok_or_else(|| missing(field))?;
    let text = number.to_string();
    Decimal::from_str(&text)
        .or_else(|_| Decimal::from_scientific(&text))
        .map(|d| d.round_dp(2))
        .map_err(|_| ConnectorError::Malformed {
            detail: format!("{field} is not an amount: {text}"),
        })
}

fn missing(field: &str) -> ConnectorError {
    ConnectorError::Malformed {
        detail: format!("the invoice has no {field}"),
    }
}

fn non_empty(text: Option<String>) -> Option<String> {
    text.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty())
}

/// Where an invoice stands, as the connector's client-side filter sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Owed: outstanding above zero, not a credit note, not credited.
    Open,
    /// Paid or credited.
    Closed,
    /// A credit note: its effect shows on the invoice it credits.
    CreditNote,
}

/// Sorts an invoice the way the spec advises: `amountOutstanding > 0`, excluding credit notes and
/// credited invoices. A partly credited invoice is treated as closed: the creditor has settled it
/// in Tripletex, and sending it to collection would be the wrong side to err on.
pub fn standing(invoice: &Invoice, mapped: &RemoteInvoice) -> Standing {
    if invoice.is_credit_note {
        Standing::CreditNote
    } else if invoice.is_credited || mapped.outstanding <= Decimal::ZERO {
        Standing::Closed
    } else {
        Standing::Open
    }
}

/// A Tripletex invoice as Forfall's normalised invoice. Amounts are in the invoice's currency
/// (`amountCurrency`, `amountCurrencyOutstanding`), falling back to the company currency fields.
pub fn to_remote_invoice(invoice: &Invoice) -> Result<RemoteInvoice, ConnectorError> {
    let customer = invoice
        .customer
        .as_ref()
        .ok_or_else(|| missing("customer"))?;
    let total = if invoice.amount_currency.is_some() {
        amount(&invoice.amount_currency, "amountCurrency")?
    } else {
        amount(&invoice.amount, "amount")?
    };
    let outstanding = if invoice.amount_currency_outstanding.is_some() {
        amount(
            &invoice.amount_currency_outstanding,
            "amountCurrencyOutstanding",
        )?
    } else {
        amount(&invoice.amount_outstanding, "amountOutstanding")?
    };
    let currency = invoice
        .currency
        .as_ref()
        .and_then(|c| non_empty(c.code.clone()))
        .unwrap_or_else(|| "NOK".to_owned());
    Ok(RemoteInvoice {
        id: RemoteId(invoice.id.to_string()),
        number: invoice
            .invoice_number
            .map(|n| n.to_string())
            .unwrap_or_else(|| invoice.id.to_string()),
        customer: to_remote_customer(customer)?,
        issued: invoice.invoice_date.ok_or_else(|| missing("invoiceDate"))?,
        due: invoice
            .invoice_due_date
            .ok_or_else(|| missing("invoiceDueDate"))?,
        currency,
        amount: total,
        outstanding,
        payment_reference: non_empty(invoice.kid.clone()),
        credited: invoice.is_credited,
    })
}

/// A Tripletex customer as Forfall's normalised customer. `isPrivateIndividual` decides consumer
/// or business; the invoice e-mail is preferred to the general one.
pub fn to_remote_customer(customer: &Customer) -> Result<RemoteCustomer, ConnectorError> {
    let address = customer.postal_address.as_ref();
    let lines = address
        .map(|a| {
            [a.address_line1.clone(), a.address_line2.clone()]
                .into_iter()
                .filter_map(non_empty)
                .collect()
        })
        .unwrap_or_default();
    Ok(RemoteCustomer {
        id: RemoteId(customer.id.to_string()),
        kind: if customer.is_private_individual {
            DebtorKind::Consumer
        } else {
            DebtorKind::Business
        },
        name: non_empty(customer.name.clone()).ok_or_else(|| ConnectorError::Malformed {
            detail: format!("customer {} has no name", customer.id),
        })?,
        organisation_number: non_empty(customer.organization_number.clone())
            .map(|n| n.chars().filter(|c| !c.is_whitespace()).collect()),
        email: non_empty(customer.invoice_email.clone()).or(non_empty(customer.email.clone())),
        address_lines: lines,
        postal_code: address.and_then(|a| non_empty(a.postal_code.clone())),
        city: address.and_then(|a| non_empty(a.city.clone())),
        country: address
            .and_then(|a| a.country.as_ref())
            .and_then(|c| non_empty(c.iso_alpha2_code.clone())),
        platform_dunning: customer.is_automatic_reminder_enabled
            || customer.is_automatic_notice_of_debt_collection_enabled,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn invoice(value: serde_json::Value) -> Invoice {
        serde_json::from_value(value).unwrap()
    }

    fn example() -> serde_json::Value {
        json!({
            "id": 1001, "version": 3, "invoiceNumber": 10042,
            "invoiceDate": "2026-05-02", "invoiceDueDate": "2026-05-16", "kid": "0001004257",
            "amount": 12500.0, "amountCurrency": 12500.0,
            "amountOutstanding": 12499.9, "amountCurrencyOutstanding": 12499.9,
            "currency": {"code": "NOK"}, "isCreditNote": false, "isCredited": false,
            "customer": {"id": 501, "name": "Nordlys Bakeri AS", "organizationNumber": "923 609 016",
                "isPrivateIndividual": false, "email": "post@nordlys.no", "invoiceEmail": "",
                "postalAddress": {"addressLine1": "Storgata 1", "addressLine2": "", "postalCode": "0150",
                    "city": "OSLO", "country": {"isoAlpha2Code": "NO"}},
                "isAutomaticReminderEnabled": false, "isAutomaticNoticeOfDebtCollectionEnabled": true}
        })
    }

    #[test]
    fn an_invoice_maps_field_by_field_with_exact_amounts() {
        let wire = invoice(example());
        let mapped = to_remote_invoice(&wire).unwrap();
        assert_eq!(mapped.id, RemoteId("1001".into()));
        assert_eq!(mapped.number, "10042");
        assert_eq!(mapped.amount, Decimal::new(1250000, 2));
        assert_eq!(mapped.outstanding, Decimal::new(1249990, 2));
        assert_eq!(mapped.payment_reference.as_deref(), Some("0001004257"));
        assert_eq!(mapped.customer.kind, DebtorKind::Business);
        assert_eq!(
            mapped.customer.organisation_number.as_deref(),
            Some("923609016")
        );
        assert_eq!(mapped.customer.email.as_deref(), Some("post@nordlys.no"));
        assert_eq!(mapped.customer.address_lines, vec!["Storgata 1"]);
        assert_eq!(mapped.customer.country.as_deref(), Some("NO"));
        assert!(mapped.customer.platform_dunning);
        assert_eq!(standing(&wire, &mapped), Standing::Open);
    }

    #[test]
    fn a_private_individual_is_a_consumer() {
        let mut value = example();
        value["customer"]["isPrivateIndividual"] = json!(true);
        let mapped = to_remote_invoice(&invoice(value)).unwrap();
        assert_eq!(mapped.customer.kind, DebtorKind::Consumer);
    }

    #[test]
    fn paid_credited_and_credit_notes_are_not_open() {
        let mut paid = example();
        paid["amountCurrencyOutstanding"] = json!(0.0);
        let wire = invoice(paid);
        assert_eq!(
            standing(&wire, &to_remote_invoice(&wire).unwrap()),
            Standing::Closed
        );
        let mut credited = example();
        credited["isCredited"] = json!(true);
        let wire = invoice(credited);
        assert_eq!(
            standing(&wire, &to_remote_invoice(&wire).unwrap()),
            Standing::Closed
        );
        let mut note = example();
        note["isCreditNote"] = json!(true);
        note["amountCurrency"] = json!(-500.0);
        let wire = invoice(note);
        assert_eq!(
            standing(&wire, &to_remote_invoice(&wire).unwrap()),
            Standing::CreditNote
        );
    }

    #[test]
    fn a_foreign_currency_invoice_is_read_in_its_own_currency() {
        let mut value = example();
        value["currency"] = json!({"code": "EUR"});
        value["amountCurrency"] = json!(1000.5);
        value["amountCurrencyOutstanding"] = json!(1000.5);
        let mapped = to_remote_invoice(&invoice(value)).unwrap();
        assert_eq!(mapped.currency, "EUR");
        assert_eq!(mapped.amount, Decimal::new(100050, 2));
    }

    #[test]
    fn an_invoice_without_a_due_date_is_malformed_not_a_panic() {
        let mut value = example();
        value.as_object_mut().unwrap().remove("invoiceDueDate");
        assert!(matches!(
            to_remote_invoice(&invoice(value)),
            Err(ConnectorError::Malformed { .. })
        ));
    }

    #[test]
    fn tripletex_error_bodies_become_one_line_with_code_and_fields() {
        let body = r#"{"status":422,"code":18000,"message":"Validering feilet.","link":"x",
            "developerMessage":"secret stuff","validationMessages":[{"field":"paidAmount","message":"Må være større enn 0"}],
            "requestId":"r1"}"#;
        let line = error_detail(body.as_bytes()).unwrap();
        assert_eq!(
            line,
            "code 18000: Validering feilet.; paidAmount: Må være større enn 0"
        );
        assert!(error_detail(b"<html>").is_none());
    }
}
