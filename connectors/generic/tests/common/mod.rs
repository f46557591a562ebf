//! Documents and invoices shared by the generic connector's tests.

#![allow(dead_code)]

use chrono::NaiveDate;
use forfall_connector::{DebtorKind, RemoteCustomer, RemoteId, RemoteInvoice};
use rust_decimal::Decimal;
use serde_json::{Value, json};

/// The specification's example document.
pub fn document() -> Value {
    json!({
        "schema": "invoice.v1",
        "id": "INV-1001",
        "number": "1001",
        "issued": "2026-05-02",
        "due": "2026-05-16",
        "currency": "NOK",
        "amount": "12500.00",
        "outstanding": "12500.00",
        "payment_reference": "0001004257",
        "credited": false,
        "customer": {
            "id": "C-501",
            "kind": "business",
            "name": "Nordlys Bakeri AS",
            "organisation_number": "923609016",
            "email": "post@nordlys.no",
            "address": {
                "lines": ["Storgata 1"],
                "postal_code": "0150",
                "city": "OSLO",
                "country": "NO"
            },
            "platform_dunning": false
        }
    })
}

/// An invoice of 1000.00 with `outstanding` still unpaid.
pub fn invoice(id: &str, outstanding: &str) -> RemoteInvoice {
    RemoteInvoice {
        id: RemoteId(id.to_string()),
        number: id.trim_start_matches("INV-").to_string(),
        customer: RemoteCustomer {
            id: RemoteId("C-1".into()),
            kind: DebtorKind::Consumer,
            name: "Kari Nordmann".into(),
            organisation_number: None,
            email: Some("kari@example.no".into()),
            address_lines: vec!["Storgata 1".into(), "H0101".into()],
            postal_code: Some("0150".into()),
            city: Some("OSLO".into()),
            country: Some("NO".into()),
            platform_dunning: false,
        },
        issued: date("2026-05-02"),
        due: date("2026-05-16"),
        currency: "NOK".into(),
        amount: money("1000.00"),
        outstanding: money(outstanding),
        payment_reference: None,
        credited: false,
    }
}

pub fn date(text: &str) -> NaiveDate {
    text.parse().unwrap()
}

pub fn money(text: &str) -> Decimal {
    text.parse().unwrap()
}
