//! The fake Tripletex, driven over HTTP the way the connector drives the real one.
#![cfg(feature = "fake")]

use std::collections::BTreeSet;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::NaiveDate;
use forfall_tripletex::fake::{
    CustomerChange, FakeConfig, FakeTripletex, Fault, NewCustomer, NewInvoice,
};
use hmac::{Hmac, KeyInit, Mac};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use sha2::Sha512;
use tokio::sync::mpsc;

fn day(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

const TODAY: &str = "2026-11-23";

fn config(invoices: usize) -> FakeConfig {
    FakeConfig {
        seed: 42,
        invoices,
        today: day(TODAY),
        ..FakeConfig::default()
    }
}

async fn start(config: FakeConfig) -> FakeTripletex {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    FakeTripletex::start(listener, config).await.unwrap()
}

/// A reply: status, headers and the body as JSON (`Null` when empty or not JSON).
struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    text: String,
    json: Value,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn validation_fields(&self) -> Vec<String> {
        self.json["validationMessages"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|m| m["field"].as_str().unwrap_or("").to_string())
                    .collect()
            })
            .unwrap_or_default()
    }
}

async fn answer(r: reqwest::RequestBuilder) -> Answer {
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let text = r.text().await.unwrap();
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    Answer {
        status,
        headers,
        text,
        json,
    }
}

/// A client with a session on the fake.
struct Api {
    http: reqwest::Client,
    base: String,
    control: String,
    token: String,
}

impl Api {
    async fn new(fake: &FakeTripletex) -> Api {
        let http = reqwest::Client::new();
        let token = create_session(&http, &fake.base_url(), "2026-12-31")
            .await
            .json["value"]["token"]
            .as_str()
            .unwrap()
            .to_string();
        Api {
            http,
            base: fake.base_url(),
            control: fake.control_url(),
            token,
        }
    }

    fn auth(&self) -> String {
        format!("Basic {}", STANDARD.encode(format!("0:{}", self.token)))
    }

    async fn get(&self, path: &str) -> Answer {
        answer(
            self.http
                .get(format!("{}{path}", self.base))
                .header("authorization", self.auth()),
        )
        .await
    }

    async fn put(&self, path: &str) -> Answer {
        answer(
            self.http
                .put(format!("{}{path}", self.base))
                .header("authorization", self.auth()),
        )
        .await
    }

    async fn send_json(&self, method: reqwest::Method, path: &str, body: &Value) -> Answer {
        answer(
            self.http
                .request(method, format!("{}{path}", self.base))
                .header("authorization", self.auth())
                .header("content-type", "application/json")
                .body(body.to_string()),
        )
        .await
    }

    async fn control(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Answer {
        let mut r = self.http.request(method, format!("{}{path}", self.control));
        if let Some(b) = body {
            r = r
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        answer(r).await
    }
}

async fn create_session(http: &reqwest::Client, base: &str, expiration: &str) -> Answer {
    answer(http.put(format!(
        "{base}/token/session/:create?consumerToken=fake-consumer-token&employeeToken=fake-employee-token&expirationDate={expiration}"
    )))
    .await
}

fn assert_api_error(a: &Answer, status: u16, code: u64) {
    assert_eq!(a.status, status, "{}", a.text);
    assert_eq!(
        a.header("content-type"),
        Some("application/json; charset=utf-8")
    );
    let body = a.json.as_object().expect("an ApiError object");
    for key in [
        "status",
        "code",
        "message",
        "link",
        "developerMessage",
        "validationMessages",
        "requestId",
    ] {
        assert!(body.contains_key(key), "ApiError without {key}: {}", a.text);
    }
    assert_eq!(a.json["status"], json!(status));
    assert_eq!(a.json["code"], json!(code), "{}", a.text);
    assert_eq!(
        a.json["requestId"].as_str(),
        a.header("x-tlx-request-id"),
        "the body's requestId is the header's"
    );
}

// ---------------------------------------------------------------------------------------------
// Sessions and auth

#[tokio::test]
async fn a_created_session_token_is_accepted_as_basic_auth_with_company_zero() {
    let fake = start(config(20)).await;
    let http = reqwest::Client::new();
    let created = create_session(&http, &fake.base_url(), "2026-12-31").await;
    assert_eq!(created.status, 200, "{}", created.text);
    let value = &created.json["value"];
    for key in [
        "id",
        "version",
        "url",
        "consumerToken",
        "employeeToken",
        "expirationDate",
        "token",
    ] {
        assert!(value.get(key).is_some(), "SessionToken without {key}");
    }
    assert_eq!(value["expirationDate"], "2026-12-31");
    assert!(value["consumerToken"]["id"].is_i64());
    let token = value["token"].as_str().unwrap();
    assert!(created.header("x-tlx-request-id").is_some());

    for user in ["0", ""] {
        let ok = answer(
            http.get(format!("{}/invoice/paymentType", fake.base_url()))
                .basic_auth(user, Some(token)),
        )
        .await;
        assert_eq!(ok.status, 200, "{}", ok.text);
        let request_id = ok.header("x-tlx-request-id").unwrap();
        assert!(uuid_like(request_id), "{request_id}");
        assert!(ok.header("x-rate-limit-limit").is_some());
        assert!(ok.header("x-rate-limit-remaining").is_some());
        assert!(ok.header("x-rate-limit-reset").is_some());
    }
    assert_eq!(fake.sessions_created(), 1);

    let other_company = answer(
        http.get(format!("{}/invoice/paymentType", fake.base_url()))
            .basic_auth("12345", Some(token)),
    )
    .await;
    assert_api_error(&other_company, 403, 9000);
    fake.shutdown().await;
}

fn uuid_like(s: &str) -> bool {
    s.len() == 36 && s.chars().filter(|c| *c == '-').count() == 4
}

#[tokio::test]
async fn a_missing_unknown_or_expired_token_is_401_code_3000_in_an_api_error_body() {
    let fake = start(config(10)).await;
    let http = reqwest::Client::new();
    let url = format!("{}/invoice/paymentType", fake.base_url());

    let missing = answer(http.get(&url)).await;
    assert_api_error(&missing, 401, 3000);
    assert!(missing.header("x-rate-limit-limit").is_none());
    let unknown = answer(http.get(&url).basic_auth("0", Some("not-a-token"))).await;
    assert_api_error(&unknown, 401, 3000);
    let garbage = answer(http.get(&url).header("authorization", "Basic %%%")).await;
    assert_api_error(&garbage, 401, 3000);

    // Valid through the day before expirationDate.
    let token = create_session(&http, &fake.base_url(), "2026-11-25")
        .await
        .json["value"]["token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        answer(http.get(&url).basic_auth("0", Some(&token)))
            .await
            .status,
        200
    );
    fake.set_today(day("2026-11-24"));
    assert_eq!(
        answer(http.get(&url).basic_auth("0", Some(&token)))
            .await
            .status,
        200
    );
    fake.set_today(day("2026-11-25"));
    let expired = answer(http.get(&url).basic_auth("0", Some(&token))).await;
    assert_api_error(&expired, 401, 3000);

    // Expired by hand: a new session works again.
    fake.set_today(day(TODAY));
    let api = Api::new(&fake).await;
    assert_eq!(api.get("/invoice/paymentType").await.status, 200);
    fake.expire_sessions();
    assert_api_error(&api.get("/invoice/paymentType").await, 401, 3000);
    let api = Api::new(&fake).await;
    assert_eq!(api.get("/invoice/paymentType").await.status, 200);
    fake.shutdown().await;
}

#[tokio::test]
async fn session_create_names_missing_parameters_and_refuses_wrong_tokens_and_past_dates() {
    let fake = start(config(0)).await;
    let http = reqwest::Client::new();
    let base = fake.base_url();
    let missing = answer(http.put(format!(
        "{base}/token/session/:create?consumerToken=fake-consumer-token"
    )))
    .await;
    assert_api_error(&missing, 422, 21000);
    assert_eq!(
        missing.validation_fields(),
        ["employeeToken", "expirationDate"]
    );

    let wrong = answer(http.put(format!(
        "{base}/token/session/:create?consumerToken=nope&employeeToken=fake-employee-token&expirationDate=2026-12-31"
    )))
    .await;
    assert_api_error(&wrong, 403, 9000);
    let wrong = answer(http.put(format!(
        "{base}/token/session/:create?consumerToken=fake-consumer-token&employeeToken=nope&expirationDate=2026-12-31"
    )))
    .await;
    assert_api_error(&wrong, 403, 9000);

    for bad in [TODAY, "2026-11-01", "31.12.2026"] {
        let a = create_session(&http, &base, bad).await;
        assert_eq!(a.status, 422, "{bad}: {}", a.text);
        assert_eq!(a.validation_fields(), ["expirationDate"]);
    }
    let get = answer(http.get(format!("{base}/token/session/:create"))).await;
    assert_eq!(get.status, 405);
    assert_eq!(fake.sessions_created(), 0);
    fake.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Listing invoices

#[tokio::test]
async fn invoice_list_requires_both_dates_and_names_the_missing_or_bad_one() {
    let fake = start(config(20)).await;
    let api = Api::new(&fake).await;
    let none = api.get("/invoice").await;
    assert_api_error(&none, 422, 21000);
    assert_eq!(
        none.validation_fields(),
        ["invoiceDateFrom", "invoiceDateTo"]
    );

    let no_to = api.get("/invoice?invoiceDateFrom=2026-01-01").await;
    assert_api_error(&no_to, 422, 21000);
    assert_eq!(no_to.validation_fields(), ["invoiceDateTo"]);

    let bad = api
        .get("/invoice?invoiceDateFrom=2026-13-01&invoiceDateTo=2026-12-01")
        .await;
    assert_eq!(bad.status, 422);
    assert_eq!(bad.validation_fields(), ["invoiceDateFrom"]);

    let backwards = api
        .get("/invoice?invoiceDateFrom=2026-12-01&invoiceDateTo=2026-12-01")
        .await;
    assert_eq!(backwards.status, 422);
    assert_eq!(backwards.validation_fields(), ["invoiceDateTo"]);

    let too_big = api
        .get("/invoice?invoiceDateFrom=2026-01-01&invoiceDateTo=2026-12-01&count=10001")
        .await;
    assert_eq!(too_big.status, 422);
    assert_eq!(too_big.validation_fields(), ["count"]);
    fake.shutdown().await;
}

#[tokio::test]
async fn invoice_date_to_is_exclusive_and_date_from_inclusive() {
    let fake = start(config(0)).await;
    let customer = fake.add_customer(NewCustomer {
        name: "Nordlys Bakeri AS".into(),
        ..NewCustomer::default()
    });
    let mut ids = Vec::new();
    for d in ["2026-10-01", "2026-10-02", "2026-10-03"] {
        ids.push(
            fake.add_invoice(NewInvoice::new(customer, day(d), dec("1000.00")))
                .unwrap(),
        );
    }
    let api = Api::new(&fake).await;
    let ids_of = |a: &Answer| -> Vec<i64> {
        a.json["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["id"].as_i64().unwrap())
            .collect()
    };
    let one = api
        .get("/invoice?invoiceDateFrom=2026-10-02&invoiceDateTo=2026-10-03&fields=id")
        .await;
    assert_eq!(ids_of(&one), [ids[1]]);
    let two = api
        .get("/invoice?invoiceDateFrom=2026-10-01&invoiceDateTo=2026-10-03&fields=id")
        .await;
    assert_eq!(ids_of(&two), [ids[0], ids[1]]);
    let desc = api
        .get("/invoice?invoiceDateFrom=2026-10-01&invoiceDateTo=2026-10-04&fields=id&sorting=-id")
        .await;
    assert_eq!(ids_of(&desc), [ids[2], ids[1], ids[0]]);
    let empty = api
        .get("/invoice?invoiceDateFrom=2026-09-01&invoiceDateTo=2026-10-01")
        .await;
    assert_eq!(empty.status, 200);
    assert_eq!(empty.json["values"], json!([]));
    assert_eq!(empty.json["versionDigest"], Value::Null);
    assert_eq!(empty.json["count"], 0);
    fake.shutdown().await;
}

const WINDOW: &str = "invoiceDateFrom=2026-01-01&invoiceDateTo=2026-12-01";

#[tokio::test]
async fn paging_with_from_and_count_covers_every_invoice_once_under_one_digest() {
    let fake = start(config(300)).await;
    let api = Api::new(&fake).await;
    let all: BTreeSet<i64> = fake
        .invoices()
        .iter()
        .map(|i| i["id"].as_i64().unwrap())
        .collect();
    let mut seen = Vec::new();
    let mut digests = BTreeSet::new();
    let mut from = 0;
    loop {
        let page = api
            .get(&format!(
                "/invoice?{WINDOW}&from={from}&count=70&fields=id,amountOutstanding"
            ))
            .await;
        assert_eq!(page.status, 200, "{}", page.text);
        assert_eq!(page.json["from"], json!(from));
        let values = page.json["values"].as_array().unwrap();
        assert_eq!(page.json["count"], json!(values.len()));
        assert!(page.json["fullResultSize"].as_u64().unwrap() >= all.len() as u64);
        digests.insert(page.json["versionDigest"].as_str().unwrap().to_string());
        seen.extend(values.iter().map(|v| v["id"].as_i64().unwrap()));
        if values.len() < 70 {
            break;
        }
        from += 70;
    }
    let unique: BTreeSet<i64> = seen.iter().copied().collect();
    assert_eq!(unique.len(), seen.len(), "no invoice twice");
    assert_eq!(unique, all, "every invoice (credit notes included) once");
    assert!(
        seen.windows(2).all(|w| w[0] < w[1]),
        "ascending id by default"
    );
    assert_eq!(digests.len(), 1, "the digest does not depend on the page");
    fake.shutdown().await;
}

#[tokio::test]
async fn version_digest_changes_after_a_payment_and_only_where_the_invoice_is() {
    let fake = start(config(0)).await;
    let customer = fake.add_customer(NewCustomer {
        name: "Kari Nordmann".into(),
        is_private_individual: true,
        ..NewCustomer::default()
    });
    let october = fake
        .add_invoice(NewInvoice::new(customer, day("2026-10-05"), dec("1250.00")))
        .unwrap();
    fake.add_invoice(NewInvoice::new(customer, day("2026-09-05"), dec("990.50")))
        .unwrap();
    let api = Api::new(&fake).await;
    let digest = |from: &'static str, to: &'static str, fields: &'static str| {
        let api = &api;
        async move {
            api.get(&format!(
                "/invoice?invoiceDateFrom={from}&invoiceDateTo={to}&fields={fields}"
            ))
            .await
            .json["versionDigest"]
                .as_str()
                .unwrap()
                .to_string()
        }
    };
    let oct = digest("2026-10-01", "2026-11-01", "id,amountOutstanding").await;
    let oct_ids = digest("2026-10-01", "2026-11-01", "id").await;
    let sep = digest("2026-09-01", "2026-10-01", "id,amountOutstanding").await;
    assert_eq!(
        oct,
        digest("2026-10-01", "2026-11-01", "id,amountOutstanding").await,
        "stable while nothing changes"
    );
    assert_ne!(oct, oct_ids, "the digest covers the requested fields");

    let paid = api
        .put(&format!(
            "/invoice/{october}/:payment?paymentDate=2026-11-20&paymentTypeId=25001&paidAmount=250"
        ))
        .await;
    assert_eq!(paid.status, 200, "{}", paid.text);
    assert_ne!(
        oct,
        digest("2026-10-01", "2026-11-01", "id,amountOutstanding").await
    );
    assert_eq!(
        oct_ids,
        digest("2026-10-01", "2026-11-01", "id").await,
        "a field not asked for does not change the digest"
    );
    assert_eq!(
        sep,
        digest("2026-09-01", "2026-10-01", "id,amountOutstanding").await
    );
    fake.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// fields=

#[tokio::test]
async fn fields_filter_renders_explicit_nested_fields_and_star_as_references() {
    let fake = start(config(40)).await;
    let api = Api::new(&fake).await;
    let explicit = api
        .get(&format!(
            "/invoice?{WINDOW}&count=1&fields=id,customer(id,name,postalAddress(*)),currency(code)"
        ))
        .await;
    assert_eq!(explicit.status, 200, "{}", explicit.text);
    let inv = &explicit.json["values"][0];
    let keys: Vec<&str> = inv
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["id", "customer", "currency"]);
    let customer_keys: Vec<&str> = inv["customer"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(customer_keys, ["id", "name", "postalAddress"]);
    let address = &inv["customer"]["postalAddress"];
    for key in ["id", "addressLine1", "postalCode", "city", "country"] {
        assert!(address.get(key).is_some(), "address without {key}");
    }
    assert_eq!(
        address["country"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        ["id", "url"],
        "nested objects inside * are references"
    );
    assert_eq!(
        inv["currency"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        ["code"]
    );
    assert!(["NOK", "EUR"].contains(&inv["currency"]["code"].as_str().unwrap()));

    let star = api
        .get(&format!("/invoice?{WINDOW}&count=1&fields=*"))
        .await;
    let inv = &star.json["values"][0];
    for key in [
        "id",
        "version",
        "url",
        "invoiceNumber",
        "invoiceDate",
        "invoiceDueDate",
        "customer",
        "kid",
        "comment",
        "invoiceComment",
        "amount",
        "amountCurrency",
        "amountExcludingVat",
        "amountExcludingVatCurrency",
        "amountRoundoff",
        "amountRoundoffCurrency",
        "amountOutstanding",
        "amountCurrencyOutstanding",
        "amountOutstandingTotal",
        "amountCurrencyOutstandingTotal",
        "sumRemits",
        "currency",
        "isCreditNote",
        "isCredited",
        "creditedInvoice",
        "isCharged",
        "isApproved",
        "invoiceRemark",
        "postings",
        "reminders",
        "orders",
        "voucher",
        "ehfSendStatus",
    ] {
        assert!(inv.get(key).is_some(), "* without {key}");
    }
    assert!(inv.get("changes").is_none(), "* leaves out changes");
    assert_eq!(
        inv["customer"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        ["id", "url"]
    );
    assert!(inv["amount"].is_number());
    assert_eq!(
        star.json["values"],
        api.get(&format!("/invoice?{WINDOW}&count=1")).await.json["values"],
        "no fields means *"
    );

    let with_changes = api
        .get(&format!(
            "/invoice?{WINDOW}&count=1&fields=*,changes,postings(*)"
        ))
        .await;
    let inv = &with_changes.json["values"][0];
    assert_eq!(inv["changes"][0]["changeType"], "CREATE");
    assert!(inv["postings"][0]["amount"].is_number());
    fake.shutdown().await;
}

#[tokio::test]
async fn an_unknown_or_garbled_field_is_400_code_11000_naming_it() {
    let fake = start(config(10)).await;
    let api = Api::new(&fake).await;
    for (fields, named) in [
        ("id,shoeSize", "shoeSize"),
        ("id,customer(name,shoeSize)", "shoeSize"),
        ("amount(value)", "amount"),
    ] {
        let a = api.get(&format!("/invoice?{WINDOW}&fields={fields}")).await;
        assert_api_error(&a, 400, 11000);
        assert_eq!(
            a.json["message"],
            format!("Illegal field in fields filter: {named}")
        );
    }
    for garbled in ["customer(", "id)", "a%20b", "((((", "id;name"] {
        let a = api
            .get(&format!("/invoice?{WINDOW}&fields={garbled}"))
            .await;
        assert_api_error(&a, 400, 11000);
    }
    let single = api.get("/customer/1000001?fields=nope").await;
    assert_api_error(&single, 400, 11000);
    fake.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// :payment and payment types

#[tokio::test]
async fn payment_lowers_amount_outstanding_adds_a_posting_and_bumps_version() {
    let fake = start(config(0)).await;
    let customer = fake.add_customer(NewCustomer {
        name: "Fjordkraft Rør AS".into(),
        organization_number: Some("923609016".into()),
        ..NewCustomer::default()
    });
    let id = fake
        .add_invoice(NewInvoice::new(
            customer,
            day("2026-10-01"),
            dec("12500.00"),
        ))
        .unwrap();
    let api = Api::new(&fake).await;
    let before = api.get(&format!("/invoice/{id}")).await.json["value"].clone();
    assert_eq!(before["amountOutstanding"], json!(12500.0));
    let paid = api
        .put(&format!(
            "/invoice/{id}/:payment?paymentDate=2026-11-20&paymentTypeId=25001&paidAmount=2500.50&fields=id,version,amountOutstanding,amountCurrencyOutstanding,amountOutstandingTotal,postings(amount,type)"
        ))
        .await;
    assert_eq!(paid.status, 200, "{}", paid.text);
    let v = &paid.json["value"];
    assert_eq!(v["amountOutstanding"], json!(9999.5));
    assert_eq!(v["amountCurrencyOutstanding"], json!(9999.5));
    assert_eq!(v["amountOutstandingTotal"], json!(9999.5));
    assert_eq!(v["version"], json!(before["version"].as_i64().unwrap() + 1));
    let postings = v["postings"].as_array().unwrap();
    assert_eq!(postings.len(), 2);
    assert_eq!(postings[1]["amount"], json!(-2500.5));
    assert_eq!(postings[1]["type"], "INCOMING_PAYMENT");
    assert_eq!(fake.open_invoices().len(), 1);

    let rest = api
        .put(&format!(
            "/invoice/{id}/:payment?paymentDate=2026-11-21&paymentTypeId=25001&paidAmount=9999.5&fields=amountOutstanding,postings(closeGroup)"
        ))
        .await;
    assert_eq!(rest.json["value"]["amountOutstanding"], json!(0.0));
    assert!(
        rest.json["value"]["postings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["closeGroup"]["id"].is_i64()),
        "a settled invoice's postings are matched: {}",
        rest.text
    );
    assert!(fake.open_invoices().is_empty());
    fake.shutdown().await;
}

#[tokio::test]
async fn payment_errors_name_the_field_and_leave_the_invoice_alone() {
    let fake = start(config(0)).await;
    let customer = fake.add_customer(NewCustomer {
        name: "Havblikk Sjømat AS".into(),
        ..NewCustomer::default()
    });
    let nok = fake
        .add_invoice(NewInvoice::new(customer, day("2026-10-01"), dec("1000.00")))
        .unwrap();
    let eur = fake
        .add_invoice(NewInvoice {
            currency: "EUR".into(),
            ..NewInvoice::new(customer, day("2026-10-01"), dec("100.00"))
        })
        .unwrap();
    let note = fake
        .credit(nok, Some(dec("100")), day("2026-10-10"))
        .unwrap();
    let api = Api::new(&fake).await;
    let pay = |id: i64, query: &'static str| {
        let api = &api;
        async move { api.put(&format!("/invoice/{id}/:payment?{query}")).await }
    };
    let missing = pay(nok, "paymentDate=2026-11-01").await;
    assert_api_error(&missing, 422, 21000);
    assert_eq!(missing.validation_fields(), ["paymentTypeId", "paidAmount"]);
    for (id, query, field) in [
        (
            nok,
            "paymentDate=2026-11-01&paymentTypeId=25001&paidAmount=0",
            "paidAmount",
        ),
        (
            nok,
            "paymentDate=2026-11-01&paymentTypeId=25001&paidAmount=-5",
            "paidAmount",
        ),
        (
            nok,
            "paymentDate=2026-11-01&paymentTypeId=25001&paidAmount=abc",
            "paidAmount",
        ),
        (
            nok,
            "paymentDate=2026-11-01&paymentTypeId=99&paidAmount=10",
            "paymentTypeId",
        ),
        (
            nok,
            "paymentDate=1.11.2026&paymentTypeId=25001&paidAmount=10",
            "paymentDate",
        ),
        (
            nok,
            "paymentDate=2026-11-01&paymentTypeId=25001&paidAmount=900.01",
            "paidAmount",
        ),
        (
            eur,
            "paymentDate=2026-11-01&paymentTypeId=25001&paidAmount=1150",
            "paidAmountCurrency",
        ),
        (
            note,
            "paymentDate=2026-11-01&paymentTypeId=25001&paidAmount=10",
            "id",
        ),
    ] {
        let a = pay(id, query).await;
        assert_eq!(a.status, 422, "{query}: {}", a.text);
        assert_eq!(a.validation_fields(), [field], "{query}");
    }
    let unknown = pay(
        1,
        "paymentDate=2026-11-01&paymentTypeId=25001&paidAmount=10",
    )
    .await;
    assert_api_error(&unknown, 404, 6000);

    let after = api
        .get(&format!("/invoice/{nok}?fields=version,amountOutstanding"))
        .await;
    assert_eq!(after.json["value"]["amountOutstanding"], json!(900.0));

    let eur_paid = pay(
        eur,
        "paymentDate=2026-11-01&paymentTypeId=25001&paidAmount=1150&paidAmountCurrency=100",
    )
    .await;
    assert_eq!(eur_paid.status, 200, "{}", eur_paid.text);
    assert_eq!(
        eur_paid.json["value"]["amountCurrencyOutstanding"],
        json!(0.0)
    );
    assert_eq!(eur_paid.json["value"]["amountOutstanding"], json!(0.0));
    fake.shutdown().await;
}

#[tokio::test]
async fn payment_types_are_found_by_case_insensitive_description() {
    let fake = start(config(0)).await;
    let api = Api::new(&fake).await;
    let bank = api
        .get("/invoice/paymentType?description=BETALT%20TIL%20BANK&fields=id,description,debitAccount(number)")
        .await;
    assert_eq!(bank.status, 200, "{}", bank.text);
    assert_eq!(bank.json["values"].as_array().unwrap().len(), 1);
    assert_eq!(bank.json["values"][0]["description"], "Betalt til bank");
    assert_eq!(bank.json["values"][0]["debitAccount"]["number"], 1920);
    let id = bank.json["values"][0]["id"].as_i64().unwrap();

    let agency = api.get("/invoice/paymentType?description=inkasso").await;
    assert_eq!(
        agency.json["values"][0]["description"],
        "Betalt til inkassobyrå"
    );
    for key in [
        "id",
        "version",
        "url",
        "description",
        "debitAccount",
        "creditAccount",
    ] {
        assert!(
            agency.json["values"][0].get(key).is_some(),
            "PaymentType without {key}"
        );
    }
    let all = api.get("/invoice/paymentType").await;
    let descriptions: Vec<&str> = all.json["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["description"].as_str().unwrap())
        .collect();
    assert!(descriptions.contains(&"Kontant"));
    let one = api.get(&format!("/invoice/paymentType/{id}")).await;
    assert_eq!(one.json["value"]["description"], "Betalt til bank");
    fake.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Customers, credit notes and seeded data

#[tokio::test]
async fn customers_are_read_by_id_and_filters_with_addresses_and_dunning_switches() {
    let fake = start(config(0)).await;
    let id = fake.add_customer(NewCustomer {
        name: "Ola Hansen".into(),
        is_private_individual: true,
        email: Some("ola.hansen@example.org".into()),
        postal_address: Some(forfall_tripletex::fake::NewAddress {
            address_line1: "Storgata 1".into(),
            postal_code: "0150".into(),
            city: "OSLO".into(),
            ..Default::default()
        }),
        is_automatic_reminder_enabled: true,
        ..NewCustomer::default()
    });
    fake.add_customer(NewCustomer {
        name: "Nordlys Bakeri AS".into(),
        organization_number: Some("923609016".into()),
        ..NewCustomer::default()
    });
    let api = Api::new(&fake).await;
    let one = api
        .get(&format!(
            "/customer/{id}?fields=*,postalAddress(addressLine1,postalCode,city,country(isoAlpha2Code))"
        ))
        .await;
    assert_eq!(one.status, 200, "{}", one.text);
    let c = &one.json["value"];
    assert_eq!(c["name"], "Ola Hansen");
    assert_eq!(c["isPrivateIndividual"], true);
    assert_eq!(c["organizationNumber"], "");
    assert_eq!(c["isAutomaticReminderEnabled"], true);
    assert_eq!(c["isAutomaticNoticeOfDebtCollectionEnabled"], false);
    assert_eq!(
        c["postalAddress"],
        json!({"addressLine1": "Storgata 1", "postalCode": "0150", "city": "OSLO", "country": {"isoAlpha2Code": "NO"}})
    );
    for key in [
        "customerNumber",
        "displayName",
        "invoiceEmail",
        "overdueNoticeEmail",
        "phoneNumber",
        "phoneNumberMobile",
        "physicalAddress",
        "invoiceSendMethod",
        "language",
        "isInactive",
        "isFactoring",
        "isAutomaticSoftReminderEnabled",
    ] {
        assert!(c.get(key).is_some(), "Customer without {key}");
    }

    let by_org = api
        .get("/customer?organizationNumber=923609016&fields=id,name")
        .await;
    assert_eq!(by_org.json["values"][0]["name"], "Nordlys Bakeri AS");
    let by_name = api.get("/customer?customerName=hansen&fields=id").await;
    assert_eq!(by_name.json["values"], json!([{"id": id}]));
    assert_api_error(&api.get("/customer/42").await, 404, 6000);

    fake.set_customer(
        id,
        CustomerChange {
            is_automatic_reminder_enabled: Some(false),
            ..CustomerChange::default()
        },
    )
    .unwrap();
    let changed = api
        .get(&format!(
            "/customer/{id}?fields=version,isAutomaticReminderEnabled,changes"
        ))
        .await;
    assert_eq!(changed.json["value"]["version"], 1);
    assert_eq!(changed.json["value"]["isAutomaticReminderEnabled"], false);
    assert_eq!(changed.json["value"]["changes"][1]["changeType"], "UPDATE");
    let since = api
        .get(&format!("/customer?changedSince={TODAY}&fields=id"))
        .await;
    assert_eq!(since.json["values"].as_array().unwrap().len(), 2);
    let none_since = api.get("/customer?changedSince=2027-01-01&fields=id").await;
    assert_eq!(none_since.json["values"], json!([]));
    fake.shutdown().await;
}

#[tokio::test]
async fn a_credit_note_is_a_negative_invoice_pointing_at_the_credited_one() {
    let fake = start(config(0)).await;
    let customer = fake.add_customer(NewCustomer {
        name: "Sigrid Berg".into(),
        is_private_individual: true,
        ..NewCustomer::default()
    });
    let id = fake
        .add_invoice(NewInvoice::new(customer, day("2026-10-01"), dec("4990.00")))
        .unwrap();
    let note = fake.credit(id, None, day("2026-10-15")).unwrap();
    let api = Api::new(&fake).await;
    let fields = "id,isCreditNote,isCredited,creditedInvoice,amount,amountOutstanding,kid";
    let list = api
        .get(&format!(
            "/invoice?invoiceDateFrom=2026-10-01&invoiceDateTo=2026-11-01&fields={fields}"
        ))
        .await;
    let values = list.json["values"].as_array().unwrap();
    assert_eq!(values.len(), 2);
    assert_eq!(values[0]["id"], id);
    assert_eq!(values[0]["isCredited"], true);
    assert_eq!(values[0]["isCreditNote"], false);
    assert_eq!(values[0]["amountOutstanding"], json!(0.0));
    assert_eq!(values[0]["creditedInvoice"], 0);
    assert_eq!(values[1]["id"], note);
    assert_eq!(values[1]["isCreditNote"], true);
    assert_eq!(values[1]["creditedInvoice"], id);
    assert_eq!(values[1]["amount"], json!(-4990.0));
    assert_eq!(values[1]["amountOutstanding"], json!(0.0));
    assert!(fake.open_invoices().is_empty());
    assert!(
        fake.credit(id, None, day("2026-10-16")).is_err(),
        "credited once"
    );

    // Through the API, too.
    let other = fake
        .add_invoice(NewInvoice::new(customer, day("2026-10-02"), dec("100.00")))
        .unwrap();
    let created = api
        .put(&format!("/invoice/{other}/:createCreditNote?date=2026-10-20&fields=isCreditNote,creditedInvoice,amount"))
        .await;
    assert_eq!(created.status, 200, "{}", created.text);
    assert_eq!(
        created.json["value"],
        json!({"creditedInvoice": other, "amount": -100.0, "isCreditNote": true})
    );
    fake.shutdown().await;
}

fn mod11_ok(org: &str) -> bool {
    let d: Vec<u32> = org.chars().filter_map(|c| c.to_digit(10)).collect();
    if d.len() != 9 || org.len() != 9 {
        return false;
    }
    let sum: u32 = d[..8]
        .iter()
        .zip([3, 2, 7, 6, 5, 4, 3, 2])
        .map(|(a, b)| a * b)
        .sum();
    let check = match sum % 11 {
        0 => 0,
        1 => return false,
        r => 11 - r,
    };
    check == d[8]
}

fn mod10_ok(kid: &str) -> bool {
    let d: Vec<u32> = kid.chars().filter_map(|c| c.to_digit(10)).collect();
    if d.len() != kid.len() || d.len() < 2 {
        return false;
    }
    let sum: u32 = d
        .iter()
        .rev()
        .enumerate()
        .map(|(i, x)| {
            if i % 2 == 1 {
                let y = x * 2;
                if y > 9 { y - 9 } else { y }
            } else {
                *x
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

#[tokio::test]
async fn seeded_org_numbers_pass_mod11_kids_pass_mod10_and_the_mix_is_realistic() {
    let fake = start(config(400)).await;
    let api = Api::new(&fake).await;
    let customers = api
        .get("/customer?count=1000&fields=id,isPrivateIndividual,organizationNumber,name,postalAddress(postalCode,city)")
        .await;
    let inactive = api.get("/customer?isInactive=true&fields=id").await;
    let customers = customers.json["values"].as_array().unwrap();
    assert_eq!(
        customers.len() + inactive.json["values"].as_array().unwrap().len(),
        100
    );
    let mut consumers = 0;
    for c in customers {
        let org = c["organizationNumber"].as_str().unwrap();
        if c["isPrivateIndividual"] == true {
            consumers += 1;
            assert_eq!(org, "");
        } else {
            assert!(mod11_ok(org), "{org} fails MOD11");
        }
        let code = c["postalAddress"]["postalCode"].as_str().unwrap();
        assert_eq!(code.len(), 4);
    }
    assert!(
        (15..=50).contains(&consumers),
        "about a third consumers: {consumers}"
    );

    let invoices = fake.invoices();
    let originals: Vec<&Value> = invoices
        .iter()
        .filter(|i| i["isCreditNote"] == false)
        .collect();
    assert_eq!(originals.len(), 400);
    for i in &originals {
        let kid = i["kid"].as_str().unwrap();
        assert!(mod10_ok(kid), "{kid} fails MOD10");
    }
    let share = |f: &dyn Fn(&Value) -> bool| originals.iter().filter(|i| f(i)).count() * 100 / 400;
    let paid = share(&|i| i["amountOutstanding"] == json!(0.0) && i["isCredited"] == false);
    let credited = share(&|i| i["isCredited"] == true);
    let overdue = share(&|i| {
        i["amountOutstanding"].as_f64().unwrap() > 0.0
            && i["invoiceDueDate"].as_str().unwrap() < TODAY
    });
    let eur = share(&|i| i["amountCurrency"] != i["amount"]);
    assert!((25..=45).contains(&paid), "paid {paid} %");
    assert!((4..=13).contains(&credited), "credited {credited} %");
    assert!((28..=55).contains(&overdue), "overdue {overdue} %");
    assert!(eur >= 1, "some invoices in EUR");
    let notes = invoices
        .iter()
        .filter(|i| i["isCreditNote"] == true)
        .count();
    assert_eq!(
        notes * 100 / 400,
        credited,
        "one credit note per credited invoice"
    );
    for i in &originals {
        let d = i["invoiceDate"].as_str().unwrap();
        assert!(("2026-07-26"..=TODAY).contains(&d), "{d} within 120 days");
        let amount = i["amount"].as_f64().unwrap();
        assert!((150.0..=1_000_000.0).contains(&amount));
    }
    fake.shutdown().await;
}

fn strip_urls(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.remove("url");
            m.values_mut().for_each(strip_urls);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_urls),
        _ => {}
    }
}

#[tokio::test]
async fn the_same_seed_gives_the_same_data_and_another_seed_other_data() {
    let a = start(config(150)).await;
    let b = start(config(150)).await;
    let c = start(FakeConfig {
        seed: 43,
        ..config(150)
    })
    .await;
    let data = |f: &FakeTripletex| {
        let mut v = Value::Array(f.invoices());
        strip_urls(&mut v);
        v
    };
    assert_eq!(data(&a), data(&b));
    assert_ne!(data(&a), data(&c));
    let (api_a, api_b) = (Api::new(&a).await, Api::new(&b).await);
    let q = "/customer?fields=id,name,organizationNumber,email,postalAddress(addressLine1,postalCode,city)";
    assert_eq!(api_a.get(q).await.json, api_b.get(q).await.json);
    // Reseeding with the first seed gives the first data back.
    c.reseed(42, 150);
    assert_eq!(data(&a), data(&c));
    for f in [a, b, c] {
        f.shutdown().await;
    }
}

// ---------------------------------------------------------------------------------------------
// Webhooks

#[derive(Debug)]
struct Received {
    headers: HeaderMap,
    body: Bytes,
}

/// A local receiver that answers the statuses of `script` in turn (then 200).
async fn receiver(script: Vec<u16>) -> (String, mpsc::UnboundedReceiver<Received>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let calls = Arc::new(AtomicU32::new(0));
    let app = axum::Router::new().route(
        "/hooks",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let tx = tx.clone();
            let calls = calls.clone();
            let script = script.clone();
            async move {
                let n = calls.fetch_add(1, Ordering::SeqCst) as usize;
                let _ = tx.send(Received { headers, body });
                StatusCode::from_u16(script.get(n).copied().unwrap_or(200)).unwrap()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, rx)
}

async fn next(rx: &mut mpsc::UnboundedReceiver<Received>) -> Received {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("a delivery within 10 s")
        .unwrap()
}

fn independent_signature(secret: &str, key: &str, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha512> as KeyInit>::new_from_slice(secret.as_bytes()).unwrap();
    let mut message = key.as_bytes().to_vec();
    message.push(b'&');
    message.extend_from_slice(body);
    mac.update(&message);
    STANDARD.encode(mac.finalize().into_bytes())
}

#[tokio::test]
async fn webhooks_arrive_signed_with_hmac_sha512_over_key_and_body() {
    let fake = start(config(0)).await;
    let (url, mut rx) = receiver(vec![]).await;
    let api = Api::new(&fake).await;
    let events = api.get("/event").await;
    for e in [
        "invoice.charged",
        "closeGroup.create",
        "voucher.create",
        "customer.create",
        "customer.update",
    ] {
        assert!(events.json["value"][e]["description"].is_string(), "{e}");
    }
    let mut ids = Vec::new();
    for (event, fields) in [
        (
            "invoice.charged",
            "id,version,amountOutstanding,customer(id)",
        ),
        (
            "voucher.create",
            "id,date,postings(id,date,amount,customer(id),invoiceNumber,closeGroup)",
        ),
        ("closeGroup.create", ""),
    ] {
        let created = api
            .send_json(
                reqwest::Method::POST,
                "/event/subscription",
                &json!({
                    "event": event, "targetUrl": url, "fields": fields,
                    "authHeaderName": "Authorization", "authHeaderValue": "Bearer s3cret",
                    "hmacSharedSecret": "k3y",
                }),
            )
            .await;
        assert_eq!(created.status, 200, "{}", created.text);
        let v = &created.json["value"];
        assert_eq!(v["status"], "ACTIVE");
        assert_eq!(v["hmacSharedSecret"], Value::Null, "write-only");
        assert_eq!(v["authHeaderValue"], Value::Null, "write-only");
        ids.push(v["id"].as_i64().unwrap());
    }
    let listed = api.get("/event/subscription").await;
    assert_eq!(listed.json["values"].as_array().unwrap().len(), 3);
    assert!(!listed.text.contains("k3y") && !listed.text.contains("s3cret"));

    let customer = fake.add_customer(NewCustomer {
        name: "Nordlys Bakeri AS".into(),
        ..NewCustomer::default()
    });
    let invoice = fake
        .add_invoice(NewInvoice::new(customer, day("2026-11-01"), dec("800.00")))
        .unwrap();
    let charged = next(&mut rx).await;
    let key = charged.headers["idempotency-key"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(uuid_like(&key));
    assert_eq!(charged.headers["content-type"], "application/json");
    assert_eq!(charged.headers["authorization"], "Bearer s3cret");
    assert_eq!(
        charged.headers["x-request-signature"].to_str().unwrap(),
        independent_signature("k3y", &key, &charged.body)
    );
    assert_ne!(
        charged.headers["x-request-signature"].to_str().unwrap(),
        independent_signature("other", &key, &charged.body)
    );
    let body: Value = serde_json::from_slice(&charged.body).unwrap();
    assert_eq!(
        body,
        json!({"subscriptionId": ids[0], "event": "invoice.charged", "id": invoice,
               "value": {"id": invoice, "version": 0, "amountOutstanding": 800.0, "customer": {"id": customer}}})
    );

    // Paying in full: a voucher and a close group.
    let paid = api
        .put(&format!(
            "/invoice/{invoice}/:payment?paymentDate=2026-11-22&paymentTypeId=25001&paidAmount=800"
        ))
        .await;
    assert_eq!(paid.status, 200);
    let mut got = Vec::new();
    for _ in 0..2 {
        let r = next(&mut rx).await;
        let key = r.headers["idempotency-key"].to_str().unwrap();
        assert_eq!(
            r.headers["x-request-signature"].to_str().unwrap(),
            independent_signature("k3y", key, &r.body)
        );
        got.push(serde_json::from_slice::<Value>(&r.body).unwrap());
    }
    got.sort_by_key(|v| v["event"].as_str().unwrap().to_string());
    assert_eq!(got[0]["event"], "closeGroup.create");
    assert_eq!(got[1]["event"], "voucher.create");
    let customer_posting = got[1]["value"]["postings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["customer"]["id"] == customer)
        .unwrap()
        .clone();
    assert_eq!(customer_posting["amount"], json!(-800.0));
    assert!(
        customer_posting["invoiceNumber"]
            .as_str()
            .unwrap()
            .parse::<i64>()
            .is_ok()
    );
    let closed = got[0]["value"]["postings"].as_array().unwrap();
    assert_eq!(closed.len(), 2, "the invoice posting and the payment");
    assert!(closed.iter().all(|p| p["closeGroup"]["id"] == got[0]["id"]));

    // Switched off: nothing more arrives.
    fake.set_webhooks_enabled(false);
    fake.add_invoice(NewInvoice::new(customer, day("2026-11-02"), dec("10.00")))
        .unwrap();
    assert!(
        tokio::time::timeout(Duration::from_millis(500), rx.recv())
            .await
            .is_err()
    );
    assert!(fake.deliveries().iter().all(|d| d.status == Some(200)));
    assert_eq!(fake.deliveries().len(), 3);
    fake.shutdown().await;
}

#[tokio::test]
async fn a_failed_webhook_is_retried_with_the_same_idempotency_key() {
    let fake = start(config(0)).await;
    let (url, mut rx) = receiver(vec![500, 503]).await;
    let api = Api::new(&fake).await;
    let created = api
        .send_json(
            reqwest::Method::POST,
            "/event/subscription",
            &json!({"event": "customer.update", "targetUrl": url, "fields": "id,version"}),
        )
        .await;
    assert_eq!(created.status, 200);
    let customer = fake.add_customer(NewCustomer {
        name: "Per Olsen".into(),
        ..NewCustomer::default()
    });
    fake.set_customer(
        customer,
        CustomerChange {
            email: Some("per@example.org".into()),
            ..CustomerChange::default()
        },
    )
    .unwrap();
    let keys: Vec<String> = [
        next(&mut rx).await,
        next(&mut rx).await,
        next(&mut rx).await,
    ]
    .iter()
    .map(|r| r.headers["idempotency-key"].to_str().unwrap().to_string())
    .collect();
    assert!(keys.iter().all(|k| *k == keys[0]));
    assert!(
        tokio::time::timeout(Duration::from_millis(700), rx.recv())
            .await
            .is_err(),
        "no attempt after a 200"
    );
    let attempts: Vec<(u32, Option<u16>)> = fake
        .deliveries()
        .iter()
        .map(|d| (d.attempt, d.status))
        .collect();
    assert_eq!(attempts, [(1, Some(500)), (2, Some(503)), (3, Some(200))]);
    let sub = api
        .get(&format!(
            "/event/subscription/{}",
            created.json["value"]["id"]
        ))
        .await;
    assert_eq!(sub.json["value"]["status"], "ACTIVE");
    fake.shutdown().await;
}

#[tokio::test]
async fn ten_deliveries_that_fail_every_attempt_disable_the_subscription() {
    let fake = start(config(0)).await;
    // A port nobody listens on: every attempt fails at once.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hooks", dead.local_addr().unwrap());
    drop(dead);
    let api = Api::new(&fake).await;
    let created = api
        .send_json(
            reqwest::Method::POST,
            "/event/subscription",
            &json!({"event": "customer.create", "targetUrl": url}),
        )
        .await;
    let id = created.json["value"]["id"].as_i64().unwrap();
    for n in 0..10 {
        fake.add_customer(NewCustomer {
            name: format!("Kunde {n}"),
            ..NewCustomer::default()
        });
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let sub = api
            .get(&format!("/event/subscription/{id}?fields=status"))
            .await;
        if sub.json["value"]["status"] == "DISABLED_TOO_MANY_ERRORS" {
            break;
        }
        assert!(Instant::now() < deadline, "still {}", sub.text);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(fake.deliveries().len(), 40, "four attempts each");
    assert!(fake.deliveries().iter().all(|d| d.error.is_some()));
    fake.shutdown().await;
}

#[tokio::test]
async fn subscriptions_validate_their_body_and_refuse_a_stale_version_with_409() {
    let fake = start(FakeConfig {
        allow_http_targets: false,
        ..config(0)
    })
    .await;
    let api = Api::new(&fake).await;
    let post = |body: Value| {
        let api = &api;
        async move {
            api.send_json(reqwest::Method::POST, "/event/subscription", &body)
                .await
        }
    };
    for (body, field) in [
        (
            json!({"event": "invoice.paid", "targetUrl": "https://gw.example/h"}),
            "event",
        ),
        (json!({"targetUrl": "https://gw.example/h"}), "event"),
        (json!({"event": "invoice.charged"}), "targetUrl"),
        (
            json!({"event": "invoice.charged", "targetUrl": "http://127.0.0.1:9/h"}),
            "targetUrl",
        ),
        (
            json!({"event": "invoice.charged", "targetUrl": "/relative"}),
            "targetUrl",
        ),
        (
            json!({"event": "invoice.charged", "targetUrl": "https://gw.example/h", "fields": "id,nope"}),
            "fields",
        ),
    ] {
        let a = post(body.clone()).await;
        assert_eq!(a.status, 422, "{body}: {}", a.text);
        assert_eq!(a.validation_fields(), [field], "{body}");
    }
    let not_json = answer(
        api.http
            .post(format!("{}/event/subscription", api.base))
            .header("authorization", api.auth())
            .body("{nope"),
    )
    .await;
    assert_eq!(not_json.status, 422);

    let created =
        post(json!({"event": "invoice.charged", "targetUrl": "https://gw.example/h"})).await;
    assert_eq!(created.status, 200, "{}", created.text);
    let id = created.json["value"]["id"].as_i64().unwrap();
    let path = format!("/event/subscription/{id}");
    let changed = api
        .send_json(
            reqwest::Method::PUT,
            &path,
            &json!({"version": 0, "fields": "id"}),
        )
        .await;
    assert_eq!(changed.status, 200, "{}", changed.text);
    assert_eq!(changed.json["value"]["version"], 1);
    assert_eq!(changed.json["value"]["fields"], "id");
    let stale = api
        .send_json(
            reqwest::Method::PUT,
            &path,
            &json!({"version": 0, "fields": "id,version"}),
        )
        .await;
    assert_api_error(&stale, 409, 8000);
    let deleted = answer(
        api.http
            .delete(format!("{}{path}", api.base))
            .header("authorization", api.auth()),
    )
    .await;
    assert_eq!(deleted.status, 204);
    assert_api_error(&api.get(&path).await, 404, 6000);
    fake.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Faults and rate limits

#[tokio::test]
async fn an_injected_429_carries_retry_after_for_its_path_only_then_clears() {
    let fake = start(config(20)).await;
    let api = Api::new(&fake).await;
    fake.inject(Fault::Status {
        status: 429,
        retry_after: Some(2),
        times: 2,
        path_prefix: Some("/v2/invoice".into()),
    });
    assert_eq!(
        api.get("/customer?fields=id").await.status,
        200,
        "other paths pass"
    );
    for _ in 0..2 {
        let limited = api.get(&format!("/invoice?{WINDOW}")).await;
        assert_api_error(&limited, 429, 0);
        assert_eq!(limited.header("retry-after"), Some("2"));
        assert_eq!(limited.header("x-rate-limit-remaining"), Some("0"));
    }
    assert_eq!(api.get(&format!("/invoice?{WINDOW}")).await.status, 200);
    let statuses: Vec<u16> = fake.requests().iter().map(|r| r.status).collect();
    assert!(statuses.ends_with(&[200, 429, 429, 200]), "{statuses:?}");
    fake.shutdown().await;
}

#[tokio::test]
async fn injected_503_malformed_and_slow_answers_behave_as_named() {
    let fake = start(config(20)).await;
    let api = Api::new(&fake).await;
    fake.inject(Fault::Status {
        status: 503,
        retry_after: None,
        times: 1,
        path_prefix: None,
    });
    fake.inject(Fault::Malformed { times: 1 });
    fake.inject(Fault::Slow {
        delay: Duration::from_millis(600),
        times: 1,
    });
    let unavailable = api.get("/invoice/paymentType").await;
    assert_eq!(unavailable.status, 503);
    assert!(unavailable.header("x-tlx-request-id").is_some());

    let malformed = api.get("/invoice/paymentType").await;
    assert_eq!(malformed.status, 200);
    assert!(!malformed.text.is_empty());
    assert!(serde_json::from_str::<Value>(&malformed.text).is_err());

    let started = Instant::now();
    let slow = api.get("/invoice/paymentType").await;
    assert!(started.elapsed() >= Duration::from_millis(600));
    assert_eq!(slow.status, 200);
    assert!(slow.json["values"].is_array());

    assert_eq!(api.get("/invoice/paymentType").await.status, 200);
    fake.shutdown().await;
}

#[tokio::test]
async fn the_rate_limit_counts_down_in_headers_and_then_answers_429() {
    let fake = start(FakeConfig {
        rate_limit: Some(3),
        ..config(0)
    })
    .await;
    let api = Api::new(&fake).await;
    for left in ["2", "1", "0"] {
        let a = api.get("/invoice/paymentType").await;
        assert_eq!(a.status, 200);
        assert_eq!(a.header("x-rate-limit-limit"), Some("3"));
        assert_eq!(a.header("x-rate-limit-remaining"), Some(left));
        let reset: u64 = a.header("x-rate-limit-reset").unwrap().parse().unwrap();
        assert!((1..=60).contains(&reset));
    }
    let refused = api.get("/invoice/paymentType").await;
    assert_api_error(&refused, 429, 0);
    assert_eq!(refused.header("x-rate-limit-remaining"), Some("0"));
    // Another session has its own budget.
    let other = Api::new(&fake).await;
    assert_eq!(other.get("/invoice/paymentType").await.status, 200);
    fake.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// The control API

#[tokio::test]
async fn the_control_api_adds_pays_credits_and_refuses_bad_input_by_field() {
    let fake = start(config(0)).await;
    let api = Api::new(&fake).await;
    use reqwest::Method;
    let customer = api
        .control(
            Method::POST,
            "/customers",
            Some(json!({"name": "Ingrid Larsen", "isPrivateIndividual": true,
                        "postalAddress": {"addressLine1": "Bryggen 3", "postalCode": "5003", "city": "BERGEN"}})),
        )
        .await;
    assert_eq!(customer.status, 200, "{}", customer.text);
    let cid = customer.json["id"].as_i64().unwrap();
    let invoice = api
        .control(
            Method::POST,
            "/invoices",
            Some(json!({"customerId": cid, "invoiceDate": "2026-10-01", "invoiceDueDate": "2026-10-15", "amount": "1234.50"})),
        )
        .await;
    assert_eq!(invoice.status, 200, "{}", invoice.text);
    let iid = invoice.json["id"].as_i64().unwrap();
    let numeric = api
        .control(
            Method::POST,
            "/invoices",
            Some(json!({"customerId": cid, "amount": 99.9, "currency": "EUR"})),
        )
        .await;
    assert_eq!(numeric.status, 200, "{}", numeric.text);

    let open = api.control(Method::GET, "/invoices/open", None).await;
    assert_eq!(open.json.as_array().unwrap().len(), 2);
    let kid = open.json[0]["kid"].as_str().unwrap();
    assert!(mod10_ok(kid), "generated KID {kid}");

    let paid = api
        .control(
            Method::POST,
            &format!("/invoices/{iid}/payments"),
            Some(json!({"amount": "234.50", "date": "2026-11-01"})),
        )
        .await;
    assert_eq!(paid.status, 200, "{}", paid.text);
    assert_eq!(paid.json["amountOutstanding"], json!(1000.0));
    let credit = api
        .control(
            Method::POST,
            &format!("/invoices/{iid}/credit"),
            Some(json!({"date": "2026-11-02"})),
        )
        .await;
    assert_eq!(credit.status, 200, "{}", credit.text);
    let all = api.control(Method::GET, "/invoices", None).await;
    assert_eq!(all.json.as_array().unwrap().len(), 3);

    for (path, body, field) in [
        ("/customers", json!({}), "name"),
        (
            "/customers",
            json!({"name": "X", "shoeSize": 42}),
            "shoeSize",
        ),
        (
            "/customers",
            json!({"name": "X", "postalAddress": {"country": "ZZ"}}),
            "postalAddress.country",
        ),
        ("/invoices", json!({"customerId": cid}), "amount"),
        (
            "/invoices",
            json!({"customerId": cid, "amount": "12,50"}),
            "amount",
        ),
        (
            "/invoices",
            json!({"customerId": 1, "amount": "10"}),
            "customerId",
        ),
        (
            "/invoices",
            json!({"customerId": cid, "amount": "10", "invoiceDate": "01.10.2026"}),
            "invoiceDate",
        ),
        (
            "/invoices",
            json!({"customerId": cid, "amount": "10", "currency": "XYZ"}),
            "currency",
        ),
        ("/faults", json!({"kind": "teapot"}), "kind"),
        ("/faults", json!({"kind": "status"}), "status"),
        ("/clock", json!({"today": "tomorrow"}), "today"),
        ("/webhooks", json!({"enabled": "no"}), "enabled"),
        ("/seed", json!({"seed": 1}), "invoices"),
    ] {
        let a = api.control(Method::POST, path, Some(body.clone())).await;
        assert_eq!(a.status, 400, "{path} {body}: {}", a.text);
        assert_eq!(a.json["field"], field, "{path} {body}");
    }
    let unknown = api
        .control(
            Method::POST,
            "/invoices/1/payments",
            Some(json!({"amount": "1"})),
        )
        .await;
    assert_eq!(unknown.status, 404);

    // Faults, clock, webhooks and reseeding through HTTP.
    let fault = api
        .control(Method::POST, "/faults", Some(json!({"kind": "status", "status": 429, "retry_after": 2, "times": 1, "path_prefix": "/v2/invoice"})))
        .await;
    assert_eq!(fault.status, 200, "{}", fault.text);
    assert_eq!(api.get(&format!("/invoice?{WINDOW}")).await.status, 429);
    api.control(
        Method::POST,
        "/faults",
        Some(json!({"kind": "malformed", "times": 2})),
    )
    .await;
    assert_eq!(
        api.control(Method::DELETE, "/faults", None).await.status,
        200
    );
    assert_eq!(api.get(&format!("/invoice?{WINDOW}")).await.status, 200);

    let clock = api
        .control(Method::POST, "/clock", Some(json!({"today": "2026-12-24"})))
        .await;
    assert_eq!(clock.status, 200);
    assert_eq!(fake.today(), day("2026-12-24"));
    let seeded = api
        .control(
            Method::POST,
            "/seed",
            Some(json!({"seed": 7, "invoices": 40})),
        )
        .await;
    assert_eq!(seeded.status, 200, "{}", seeded.text);
    assert_eq!(
        fake.invoices()
            .iter()
            .filter(|i| i["isCreditNote"] == false)
            .count(),
        40
    );
    let requests = api.control(Method::GET, "/requests", None).await;
    let last = requests.json.as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["method"], "GET");
    assert_eq!(last["path"], "/v2/invoice");
    assert_eq!(last["query"], WINDOW);
    assert_eq!(last["status"], 200);
    let summary = api.control(Method::GET, "", None).await;
    assert_eq!(summary.json["today"], "2026-12-24");
    fake.shutdown().await;
}

#[tokio::test]
async fn a_hundred_thousand_invoices_seed_and_page_quickly() {
    let started = Instant::now();
    let fake = start(config(100_000)).await;
    let seeded = started.elapsed();
    let api = Api::new(&fake).await;
    let fields = "id,version,invoiceNumber,invoiceDate,invoiceDueDate,kid,amount,amountCurrency,amountOutstanding,amountCurrencyOutstanding,currency(code),isCreditNote,isCredited,creditedInvoice,customer(id,name,organizationNumber,isPrivateIndividual,email,invoiceEmail,postalAddress(addressLine1,addressLine2,postalCode,city,country(isoAlpha2Code)),isAutomaticReminderEnabled,isAutomaticNoticeOfDebtCollectionEnabled)";
    let query = format!(
        "/invoice?invoiceDateFrom=2026-01-01&invoiceDateTo=2026-02-01&count=1000&sorting=id&fields={fields}"
    );
    let first = Instant::now();
    let page = api.get(&format!("{query}&from=0")).await;
    let first = first.elapsed();
    assert_eq!(page.status, 200);
    assert_eq!(page.json["count"], 1000);
    let second = Instant::now();
    let next = api.get(&format!("{query}&from=1000")).await;
    let second = second.elapsed();
    assert_eq!(page.json["versionDigest"], next.json["versionDigest"]);
    eprintln!("seeded 100 000 in {seeded:?}; first page {first:?}, next page {second:?}");
    // Generous bounds: debug builds are slow, and CI machines slower still.
    assert!(seeded < Duration::from_secs(60));
    assert!(second < Duration::from_secs(10));
    fake.shutdown().await;
}
