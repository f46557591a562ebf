//! Reading and writing `invoice.v1`: the good document, every kind of bad field named by its
//! path, and the round trip.

mod common;

use common::{date, document, invoice, money};
use forfall_connector::{DebtorKind, RemoteId};
use forfall_generic::{InvoiceV1Error, parse_invoice, to_json};
use serde_json::{Value, json};

/// The error for the example document changed by `change`.
fn error_after(change: impl FnOnce(&mut Value)) -> InvoiceV1Error {
    let mut doc = document();
    change(&mut doc);
    parse_invoice(&doc).expect_err("the changed document should be refused")
}

fn assert_refused(change: impl FnOnce(&mut Value), field: &str, message: &str) {
    let error = error_after(change);
    assert_eq!(error.field, field, "{error}");
    assert!(
        error.message.contains(message),
        "{field}: expected {message:?} in {:?}",
        error.message
    );
}

#[test]
fn the_example_document_reads_into_the_normalised_invoice() {
    let invoice = parse_invoice(&document()).unwrap();
    assert_eq!(invoice.id, RemoteId("INV-1001".into()));
    assert_eq!(invoice.number, "1001");
    assert_eq!(invoice.issued, date("2026-05-02"));
    assert_eq!(invoice.due, date("2026-05-16"));
    assert_eq!(invoice.currency, "NOK");
    assert_eq!(invoice.amount, money("12500.00"));
    assert_eq!(invoice.outstanding, money("12500.00"));
    assert_eq!(invoice.payment_reference.as_deref(), Some("0001004257"));
    assert!(!invoice.credited);
    let customer = &invoice.customer;
    assert_eq!(customer.id, RemoteId("C-501".into()));
    assert_eq!(customer.kind, DebtorKind::Business);
    assert_eq!(customer.name, "Nordlys Bakeri AS");
    assert_eq!(customer.organisation_number.as_deref(), Some("923609016"));
    assert_eq!(customer.email.as_deref(), Some("post@nordlys.no"));
    assert_eq!(customer.address_lines, vec!["Storgata 1".to_string()]);
    assert_eq!(customer.postal_code.as_deref(), Some("0150"));
    assert_eq!(customer.city.as_deref(), Some("OSLO"));
    assert_eq!(customer.country.as_deref(), Some("NO"));
    assert!(!customer.platform_dunning);
}

#[test]
fn optional_fields_may_be_absent_or_null_and_default_to_nothing() {
    let minimal = json!({
        "schema": "invoice.v1", "id": "INV-1", "number": "1",
        "issued": "2026-05-02", "due": "2026-05-02", "currency": "EUR",
        "amount": "10", "outstanding": "0",
        "customer": {"id": "C-1", "kind": "consumer", "name": "Matti Meikäläinen"}
    });
    let invoice = parse_invoice(&minimal).unwrap();
    assert_eq!(invoice.payment_reference, None);
    assert!(!invoice.credited);
    assert!(invoice.customer.address_lines.is_empty());
    assert_eq!(invoice.customer.country, None);
    assert!(!invoice.customer.platform_dunning);

    let mut nulls = minimal.clone();
    nulls["payment_reference"] = Value::Null;
    nulls["credited"] = Value::Null;
    nulls["customer"]["email"] = Value::Null;
    nulls["customer"]["address"] = Value::Null;
    assert_eq!(parse_invoice(&nulls).unwrap(), invoice);
}

#[test]
fn credited_and_platform_dunning_are_read() {
    let mut doc = document();
    doc["credited"] = json!(true);
    doc["outstanding"] = json!("2500.00");
    doc["customer"]["platform_dunning"] = json!(true);
    let invoice = parse_invoice(&doc).unwrap();
    assert!(invoice.credited);
    assert!(invoice.customer.platform_dunning);
    assert_eq!(invoice.outstanding, money("2500"));
}

#[test]
fn amounts_with_fewer_decimals_are_read_exactly() {
    for (text, expected) in [
        ("12500", "12500.00"),
        ("12500.5", "12500.50"),
        ("0.01", "0.01"),
    ] {
        let mut doc = document();
        doc["amount"] = json!(text);
        doc["outstanding"] = json!(text);
        assert_eq!(
            parse_invoice(&doc).unwrap().amount,
            money(expected),
            "{text}"
        );
    }
}

#[test]
fn more_than_two_decimals_is_refused() {
    assert_refused(
        |d| d["amount"] = json!("12500.005"),
        "amount",
        "at most 2 decimal places",
    );
    assert_refused(
        |d| d["outstanding"] = json!("1.001"),
        "outstanding",
        "at most 2 decimal places",
    );
}

#[test]
fn an_amount_as_a_json_number_is_refused() {
    assert_refused(
        |d| d["amount"] = json!(12500.0),
        "amount",
        "not a JSON number",
    );
}

#[test]
fn an_amount_that_is_not_a_plain_decimal_is_refused() {
    for bad in ["12 500,00", "1e3", "+5", ".5", "5.", "", "NaN", "12,500.00"] {
        let error = error_after(|d| d["amount"] = json!(bad));
        assert_eq!(error.field, "amount", "{bad}: {error}");
    }
    assert_refused(
        |d| d["amount"] = json!("1".repeat(20)),
        "amount",
        "too large",
    );
}

#[test]
fn an_invoice_amount_must_be_above_zero() {
    assert_refused(|d| d["amount"] = json!("0.00"), "amount", "above zero");
    assert_refused(|d| d["amount"] = json!("-100.00"), "amount", "above zero");
}

#[test]
fn outstanding_must_be_between_zero_and_amount() {
    assert_refused(
        |d| d["outstanding"] = json!("12500.01"),
        "outstanding",
        "not be more than amount",
    );
    assert_refused(
        |d| d["outstanding"] = json!("-0.01"),
        "outstanding",
        "not be negative",
    );
}

#[test]
fn each_missing_required_field_is_named() {
    for field in [
        "schema",
        "id",
        "number",
        "issued",
        "due",
        "currency",
        "amount",
        "outstanding",
        "customer",
    ] {
        assert_refused(
            |d| {
                d.as_object_mut().unwrap().remove(field);
            },
            field,
            "is required",
        );
    }
    for field in ["id", "kind", "name"] {
        assert_refused(
            |d| {
                d["customer"].as_object_mut().unwrap().remove(field);
            },
            &format!("customer.{field}"),
            "is required",
        );
    }
}

#[test]
fn each_kind_of_bad_field_is_named_by_its_path() {
    type Change = Box<dyn FnOnce(&mut Value)>;
    let cases: Vec<(Change, &str, &str)> = vec![
        (
            Box::new(|d| d["schema"] = json!("invoice.v2")),
            "schema",
            "invoice.v1",
        ),
        (
            Box::new(|d| d["id"] = json!(1001)),
            "id",
            "must be a string",
        ),
        (
            Box::new(|d| d["id"] = json!("   ")),
            "id",
            "must not be empty",
        ),
        (
            Box::new(|d| d["id"] = json!("x".repeat(129))),
            "id",
            "at most 128",
        ),
        (
            Box::new(|d| d["number"] = json!("10\n01")),
            "number",
            "control characters",
        ),
        (
            Box::new(|d| d["number"] = json!("1".repeat(65))),
            "number",
            "at most 64",
        ),
        (
            Box::new(|d| d["issued"] = json!("2026-5-2")),
            "issued",
            "YYYY-MM-DD",
        ),
        (
            Box::new(|d| d["issued"] = json!("02.05.2026")),
            "issued",
            "YYYY-MM-DD",
        ),
        (
            Box::new(|d| d["due"] = json!("2026-02-30")),
            "due",
            "not a calendar date",
        ),
        (
            Box::new(|d| d["due"] = json!("2026-05-01")),
            "due",
            "not be before issued",
        ),
        (
            Box::new(|d| d["currency"] = json!("nok")),
            "currency",
            "ISO 4217",
        ),
        (
            Box::new(|d| d["currency"] = json!("NOKK")),
            "currency",
            "ISO 4217",
        ),
        (
            Box::new(|d| d["payment_reference"] = json!(1004257)),
            "payment_reference",
            "must be a string",
        ),
        (
            Box::new(|d| d["credited"] = json!("no")),
            "credited",
            "true or false",
        ),
        (
            Box::new(|d| d["customer"] = json!("C-501")),
            "customer",
            "must be an object",
        ),
        (
            Box::new(|d| d["customer"]["kind"] = json!("company")),
            "customer.kind",
            "\"business\" or \"consumer\"",
        ),
        (
            Box::new(|d| d["customer"]["name"] = json!("")),
            "customer.name",
            "must not be empty",
        ),
        (
            Box::new(|d| d["customer"]["email"] = json!("post.nordlys.no")),
            "customer.email",
            "e-mail address",
        ),
        (
            Box::new(|d| d["customer"]["platform_dunning"] = json!(1)),
            "customer.platform_dunning",
            "true or false",
        ),
        (
            Box::new(|d| d["customer"]["address"] = json!(["Storgata 1"])),
            "customer.address",
            "must be an object",
        ),
        (
            Box::new(|d| d["customer"]["address"]["lines"] = json!("Storgata 1")),
            "customer.address.lines",
            "array",
        ),
        (
            Box::new(|d| d["customer"]["address"]["lines"] = json!(["Storgata 1", 2])),
            "customer.address.lines[1]",
            "must be a string",
        ),
        (
            Box::new(|d| d["customer"]["address"]["lines"] = json!(["a", "b", "c", "d", "e"])),
            "customer.address.lines",
            "at most 4",
        ),
        (
            Box::new(|d| d["customer"]["address"]["country"] = json!("Norway")),
            "customer.address.country",
            "alpha-2",
        ),
        (
            Box::new(|d| d["customer"]["address"]["postal_code"] = json!(150)),
            "customer.address.postal_code",
            "must be a string",
        ),
    ];
    for (change, field, message) in cases {
        assert_refused(change, field, message);
    }
}

#[test]
fn an_unknown_field_is_refused_at_every_level() {
    assert_refused(|d| d["phone"] = json!("+47 1"), "phone", "unknown field");
    assert_refused(
        |d| d["customer"]["vat"] = json!("NO"),
        "customer.vat",
        "unknown field",
    );
    assert_refused(
        |d| d["customer"]["address"]["street"] = json!("Storgata"),
        "customer.address.street",
        "unknown field",
    );
}

#[test]
fn a_document_that_is_not_an_object_is_refused_as_a_whole() {
    let error = parse_invoice(&json!(["INV-1001"])).unwrap_err();
    assert_eq!(error.field, "");
    assert!(error.to_string().contains("invoice.v1 document"), "{error}");
}

#[test]
fn errors_name_the_field_but_never_repeat_the_value() {
    let error = error_after(|d| d["customer"]["email"] = json!("kari.nordmann.at.example.no"));
    assert_eq!(
        error.to_string(),
        "customer.email: must be an e-mail address"
    );
    let error = error_after(|d| d["customer"]["name"] = json!("Kari Nordmann".repeat(30)));
    assert!(!error.to_string().contains("Kari"), "{error}");
}

#[test]
fn the_example_document_round_trips_through_the_invoice() {
    let doc = document();
    assert_eq!(to_json(&parse_invoice(&doc).unwrap()), doc);
}

#[test]
fn an_invoice_round_trips_through_the_document() {
    for outstanding in ["1000.00", "250.5", "0"] {
        let original = invoice("INV-7", outstanding);
        assert_eq!(parse_invoice(&to_json(&original)).unwrap(), original);
    }
    let mut bare = invoice("INV-8", "10");
    bare.customer.email = None;
    bare.customer.address_lines.clear();
    bare.customer.postal_code = None;
    bare.customer.city = None;
    bare.customer.country = None;
    bare.payment_reference = Some("RF18539007547034".into());
    bare.credited = true;
    let written = to_json(&bare);
    assert_eq!(written["customer"]["address"], Value::Null);
    assert_eq!(parse_invoice(&written).unwrap(), bare);
}

#[test]
fn amounts_are_written_as_strings_with_two_decimals() {
    let written = to_json(&invoice("INV-9", "250.5"));
    assert_eq!(written["amount"], json!("1000.00"));
    assert_eq!(written["outstanding"], json!("250.50"));
    assert_eq!(written["schema"], json!("invoice.v1"));
}
