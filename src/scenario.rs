//! Scenario files: strict parsing with precise errors.
//!
//! Error paths use one style everywhere: keys joined by dots from the top-level object, array
//! positions in brackets counted from 0 (`events[3].amount`, `policy.weekly_list.cutoff_weekday`),
//! and a key that is not a plain name quoted in brackets (`[""]`); see `json_path`.
//! A problem with the document as a whole (not JSON, not an object) has the path `(document)`.

use std::collections::{HashMap, HashSet};
use std::fmt;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use thiserror::Error;

use chrono::Datelike;

use crate::json_path;
use crate::lifecycle::{DisputeOutcome, Event, PaymentVia};
use crate::rules::dates::parse_civil_date;
use crate::rules::money::parse_amount;
use crate::rules::policy::{Policy, kind};

/// The years a scenario's dates may fall in. Limitation (at most 30 years) and the other periods
/// computed from them then stay within four-digit years.
pub const SCENARIO_YEARS: std::ops::RangeInclusive<i32> = 1900..=2999;

/// The path of a problem that concerns the whole document.
pub const DOCUMENT_PATH: &str = "(document)";

/// A problem in a scenario file: where (`path`) and what (`message`).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{path}: {message}")]
pub struct ScenarioError {
    pub path: String,
    pub message: String,
}

impl ScenarioError {
    fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        ScenarioError {
            path: path.into(),
            message: message.into(),
        }
    }
}

type Result<T> = std::result::Result<T, ScenarioError>;

/// Consumer or business debtor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CustomerKind {
    Consumer,
    Business,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Customer {
    pub id: String,
    pub kind: CustomerKind,
    pub opt_out: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invoice {
    pub id: String,
    pub customer: String,
    pub issued: NaiveDate,
    pub due: NaiveDate,
    /// Negative for a credit note.
    pub amount: Decimal,
    pub currency: String,
    pub opt_out: bool,
    /// The day the gateway first learns of the invoice.
    pub seen: NaiveDate,
}

/// Whom an event concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Invoice(String),
    Customer(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioEvent {
    pub on: NaiveDate,
    pub target: Target,
    pub event: Event,
}

/// A validated scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    pub name: Option<String>,
    pub from: NaiveDate,
    pub until: NaiveDate,
    pub policy: Policy,
    pub customers: Vec<Customer>,
    pub invoices: Vec<Invoice>,
    /// In file order.
    pub events: Vec<ScenarioEvent>,
    /// The expected core actions, as free-form objects; `None` when the file has no `expect`.
    pub expect: Option<Vec<Map<String, Value>>>,
}

const TOP_KEYS: &[&str] = &[
    "name",
    "from",
    "until",
    "policy",
    "customers",
    "invoices",
    "events",
    "expect",
];
const CUSTOMER_KEYS: &[&str] = &["id", "kind", "opt_out"];
const INVOICE_KEYS: &[&str] = &[
    "id", "customer", "issued", "due", "amount", "currency", "opt_out", "seen",
];

impl Scenario {
    /// Parses and validates a scenario file. Never panics, whatever the bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Scenario> {
        let text = std::str::from_utf8(bytes)
            .map_err(|e| ScenarioError::new(DOCUMENT_PATH, format!("not UTF-8: {e}")))?;
        let value = parse_strict_json(text)?;
        Scenario::from_value(&value)
    }

    /// Validates an already parsed JSON document.
    pub fn from_value(value: &Value) -> Result<Scenario> {
        let top = Obj::new(value, DOCUMENT_PATH, "")?;
        top.allow_only(TOP_KEYS)?;
        let name = top.opt_str("name")?.map(str::to_owned);
        let from = top.req_date("from")?;
        let until = top.req_date("until")?;
        if until < from {
            return Err(ScenarioError::new(
                "until",
                format!("{until} is before from ({from})"),
            ));
        }
        let policy = match top.get("policy") {
            Some(policy) => {
                Policy::from_json(policy).map_err(|e| ScenarioError::new(e.path, e.message))?
            }
            None => Policy::default(),
        };
        let customers = parse_customers(&top)?;
        let invoices = parse_invoices(&top, &customers, from)?;
        let events = parse_events(&top, &customers, &invoices, from, until)?;
        let expect = parse_expect(&top)?;
        Ok(Scenario {
            name,
            from,
            until,
            policy,
            customers,
            invoices,
            events,
            expect,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Sections
// ---------------------------------------------------------------------------------------------

fn parse_customers(top: &Obj<'_>) -> Result<Vec<Customer>> {
    let mut customers: Vec<Customer> = Vec::new();
    let mut first_at: HashMap<String, usize> = HashMap::new();
    for (i, item) in top.opt_array("customers")?.iter().enumerate() {
        let obj = Obj::new(item, &index_path("customers", i), "")?;
        obj.allow_only(CUSTOMER_KEYS)?;
        let id = obj.req_id("id")?;
        if let Some(first) = first_at.insert(id.clone(), i) {
            return Err(obj.err(
                "id",
                format!("duplicate customer id {id:?} (first at customers[{first}])"),
            ));
        }
        let kind = match obj.opt_str("kind")? {
            None | Some("consumer") => CustomerKind::Consumer,
            Some("business") => CustomerKind::Business,
            Some(other) => {
                return Err(obj.err(
                    "kind",
                    format!("unknown kind {other:?}; expected \"consumer\" or \"business\""),
                ));
            }
        };
        let opt_out = obj.opt_bool("opt_out")?.unwrap_or(false);
        customers.push(Customer { id, kind, opt_out });
    }
    Ok(customers)
}

fn parse_invoices(top: &Obj<'_>, customers: &[Customer], from: NaiveDate) -> Result<Vec<Invoice>> {
    let customer_ids: HashSet<&str> = customers.iter().map(|c| c.id.as_str()).collect();
    let mut invoices: Vec<Invoice> = Vec::new();
    let mut first_at: HashMap<String, usize> = HashMap::new();
    for (i, item) in top.opt_array("invoices")?.iter().enumerate() {
        let obj = Obj::new(item, &index_path("invoices", i), "")?;
        obj.allow_only(INVOICE_KEYS)?;
        let id = obj.req_id("id")?;
        if let Some(first) = first_at.insert(id.clone(), i) {
            return Err(obj.err(
                "id",
                format!("duplicate invoice id {id:?} (first at invoices[{first}])"),
            ));
        }
        let customer = obj.req_id("customer")?;
        if !customer_ids.contains(customer.as_str()) {
            return Err(obj.err("customer", format!("unknown customer {customer:?}")));
        }
        let issued = obj.req_date("issued")?;
        let due = obj.req_date("due")?;
        let amount = obj.req_amount("amount")?;
        let currency = match obj.opt_str("currency")? {
            None => "NOK".to_owned(),
            Some(code) if code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase()) => {
                code.to_owned()
            }
            Some(code) => {
                return Err(obj.err(
                    "currency",
                    format!("expected a 3-letter ISO 4217 code like \"NOK\", got {code:?}"),
                ));
            }
        };
        let opt_out = obj.opt_bool("opt_out")?.unwrap_or(false);
        let seen = obj.opt_date("seen")?.unwrap_or(from);
        invoices.push(Invoice {
            id,
            customer,
            issued,
            due,
            amount,
            currency,
            opt_out,
            seen,
        });
    }
    Ok(invoices)
}

/// Which fields each event type takes besides `on` and `type`; `true` marks a required one.
fn event_fields(event_type: &str) -> Option<&'static [(&'static str, bool)]> {
    Some(match event_type {
        "payment" => &[("invoice", true), ("amount", true), ("via", true)],
        "opt_out" | "opt_in" | "stop" => &[("invoice", true)],
        "customer_opt_out" | "customer_opt_in" => &[("customer", true)],
        "dispute" => &[("invoice", true), ("amount", false)],
        "dispute_resolved" => &[("invoice", true), ("outcome", true)],
        "credit_note" => &[("invoice", true), ("amount", true)],
        "due_date_changed" => &[("invoice", true), ("due", true)],
        _ => return None,
    })
}

const EVENT_TYPES: &str = "payment, opt_out, opt_in, customer_opt_out, customer_opt_in, dispute, \
     dispute_resolved, credit_note, stop, due_date_changed";

fn parse_events(
    top: &Obj<'_>,
    customers: &[Customer],
    invoices: &[Invoice],
    from: NaiveDate,
    until: NaiveDate,
) -> Result<Vec<ScenarioEvent>> {
    let customer_ids: HashSet<&str> = customers.iter().map(|c| c.id.as_str()).collect();
    let invoice_ids: HashSet<&str> = invoices.iter().map(|i| i.id.as_str()).collect();
    let mut events = Vec::new();
    for (i, item) in top.opt_array("events")?.iter().enumerate() {
        let obj = Obj::new(item, &index_path("events", i), "")?;
        let event_type = obj.req_str("type")?;
        let fields = event_fields(event_type).ok_or_else(|| {
            obj.err(
                "type",
                format!("unknown event type {event_type:?}; expected one of: {EVENT_TYPES}"),
            )
        })?;
        for key in obj.map.keys() {
            if key != "on" && key != "type" && !fields.iter().any(|(name, _)| name == key) {
                let allowed: Vec<&str> = fields.iter().map(|(name, _)| *name).collect();
                return Err(obj.err(
                    key,
                    format!(
                        "not a field of a {event_type:?} event (its fields: on, type, {})",
                        allowed.join(", ")
                    ),
                ));
            }
        }
        let on = obj.req_date("on")?;
        if on < from {
            return Err(obj.err("on", format!("{on} is before from ({from})")));
        }
        if on > until {
            return Err(obj.err("on", format!("{on} is after until ({until})")));
        }
        let target = if event_type.starts_with("customer_") {
            let customer = obj.req_id("customer")?;
            if !customer_ids.contains(customer.as_str()) {
                return Err(obj.err("customer", format!("unknown customer {customer:?}")));
            }
            Target::Customer(customer)
        } else {
            let invoice = obj.req_id("invoice")?;
            if !invoice_ids.contains(invoice.as_str()) {
                return Err(obj.err("invoice", format!("unknown invoice {invoice:?}")));
            }
            Target::Invoice(invoice)
        };
        let event = parse_event_body(&obj, event_type)?;
        events.push(ScenarioEvent { on, target, event });
    }
    Ok(events)
}

fn parse_event_body(obj: &Obj<'_>, event_type: &str) -> Result<Event> {
    Ok(match event_type {
        "payment" => {
            let amount = obj.req_positive_amount("amount")?;
            let via = match obj.req_str("via")? {
                "creditor" => PaymentVia::Creditor,
                "collection" => PaymentVia::Collection,
                other => {
                    return Err(obj.err(
                        "via",
                        format!("unknown via {other:?}; expected \"creditor\" or \"collection\""),
                    ));
                }
            };
            Event::Payment { amount, via }
        }
        "opt_out" => Event::OptOut,
        "opt_in" => Event::OptIn,
        "stop" => Event::Stop,
        "customer_opt_out" => Event::CustomerOptOut,
        "customer_opt_in" => Event::CustomerOptIn,
        "dispute" => {
            let amount = match obj.get("amount") {
                Some(_) => Some(obj.req_positive_amount("amount")?),
                None => None,
            };
            Event::Dispute { amount }
        }
        "dispute_resolved" => {
            let outcome = match obj.req_str("outcome")? {
                "creditor_upheld" => DisputeOutcome::CreditorUpheld,
                "debtor_upheld" => DisputeOutcome::DebtorUpheld,
                other => {
                    return Err(obj.err(
                        "outcome",
                        format!("unknown outcome {other:?}; expected \"creditor_upheld\" or \"debtor_upheld\""),
                    ));
                }
            };
            Event::DisputeResolved { outcome }
        }
        "credit_note" => Event::CreditNote {
            amount: obj.req_positive_amount("amount")?,
        },
        _ => Event::DueDateChanged {
            due: obj.req_date("due")?,
        },
    })
}

fn parse_expect(top: &Obj<'_>) -> Result<Option<Vec<Map<String, Value>>>> {
    let Some(value) = top.get("expect") else {
        return Ok(None);
    };
    let items = value.as_array().ok_or_else(|| {
        ScenarioError::new("expect", format!("expected an array, got {}", kind(value)))
    })?;
    let mut expect = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        match item {
            Value::Object(map) => expect.push(map.clone()),
            other => {
                return Err(ScenarioError::new(
                    index_path("expect", i),
                    format!("expected an object, got {}", kind(other)),
                ));
            }
        }
    }
    Ok(Some(expect))
}

// ---------------------------------------------------------------------------------------------
// Field access with paths
// ---------------------------------------------------------------------------------------------

fn index_path(key: &str, index: usize) -> String {
    json_path::index(&json_path::field("", key), index)
}

/// A JSON object being validated, with its path (`""` for the top level).
struct Obj<'a> {
    path: String,
    map: &'a Map<String, Value>,
}

impl<'a> Obj<'a> {
    /// `shown` names the value in the error when it is not an object; `path` prefixes its keys.
    fn new(value: &'a Value, shown: &str, path: &str) -> Result<Obj<'a>> {
        let path = if path.is_empty() && shown != DOCUMENT_PATH {
            shown
        } else {
            path
        };
        match value {
            Value::Object(map) => Ok(Obj {
                path: path.to_owned(),
                map,
            }),
            other => Err(ScenarioError::new(
                shown,
                format!("expected an object, got {}", kind(other)),
            )),
        }
    }

    fn key_path(&self, key: &str) -> String {
        json_path::field(&self.path, key)
    }

    fn err(&self, key: &str, message: impl Into<String>) -> ScenarioError {
        ScenarioError::new(self.key_path(key), message)
    }

    fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key)
    }

    fn allow_only(&self, keys: &[&str]) -> Result<()> {
        match self.map.keys().find(|key| !keys.contains(&key.as_str())) {
            Some(key) => Err(self.err(
                key,
                format!("unknown field; expected one of: {}", keys.join(", ")),
            )),
            None => Ok(()),
        }
    }

    fn required(&self, key: &str) -> Result<&'a Value> {
        self.get(key)
            .ok_or_else(|| self.err(key, "missing required field"))
    }

    fn str_value(&self, key: &str, value: &'a Value) -> Result<&'a str> {
        value
            .as_str()
            .ok_or_else(|| self.err(key, format!("expected a string, got {}", kind(value))))
    }

    fn req_str(&self, key: &str) -> Result<&'a str> {
        self.str_value(key, self.required(key)?)
    }

    fn opt_str(&self, key: &str) -> Result<Option<&'a str>> {
        self.get(key)
            .map(|value| self.str_value(key, value))
            .transpose()
    }

    fn req_id(&self, key: &str) -> Result<String> {
        let id = self.req_str(key)?;
        if id.is_empty() {
            return Err(self.err(key, "must not be empty"));
        }
        Ok(id.to_owned())
    }

    fn opt_bool(&self, key: &str) -> Result<Option<bool>> {
        self.get(key)
            .map(|value| {
                value.as_bool().ok_or_else(|| {
                    self.err(key, format!("expected true or false, got {}", kind(value)))
                })
            })
            .transpose()
    }

    fn date_value(&self, key: &str, value: &'a Value) -> Result<NaiveDate> {
        let text = self.str_value(key, value)?;
        let date = parse_civil_date(text)
            .ok_or_else(|| self.err(key, format!("not a valid date YYYY-MM-DD: {text:?}")))?;
        if !SCENARIO_YEARS.contains(&date.year()) {
            return Err(self.err(
                key,
                format!(
                    "{text} is outside the years a scenario may use ({}–{}): every date the engine \
                     derives from it must still be a YYYY-MM-DD date",
                    SCENARIO_YEARS.start(),
                    SCENARIO_YEARS.end()
                ),
            ));
        }
        Ok(date)
    }

    fn req_date(&self, key: &str) -> Result<NaiveDate> {
        self.date_value(key, self.required(key)?)
    }

    fn opt_date(&self, key: &str) -> Result<Option<NaiveDate>> {
        self.get(key)
            .map(|value| self.date_value(key, value))
            .transpose()
    }

    fn req_amount(&self, key: &str) -> Result<Decimal> {
        let value = self.required(key)?;
        let text = value.as_str().ok_or_else(|| {
            self.err(
                key,
                format!(
                    "expected a decimal string like \"1250.00\", got {}",
                    kind(value)
                ),
            )
        })?;
        parse_amount(text).map_err(|e| self.err(key, e.to_string()))
    }

    fn req_positive_amount(&self, key: &str) -> Result<Decimal> {
        let amount = self.req_amount(key)?;
        if amount <= Decimal::ZERO {
            return Err(self.err(key, "must be greater than zero"));
        }
        Ok(amount)
    }

    fn opt_array(&self, key: &str) -> Result<&'a [Value]> {
        match self.get(key) {
            None => Ok(&[]),
            Some(Value::Array(items)) => Ok(items),
            Some(other) => Err(self.err(key, format!("expected an array, got {}", kind(other)))),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Strict JSON: like serde_json, but a key repeated in one object is an error
// ---------------------------------------------------------------------------------------------

fn parse_strict_json(text: &str) -> Result<Value> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let value = StrictValue::deserialize(&mut deserializer)
        .and_then(|value| deserializer.end().map(|()| value.0))
        .map_err(|e| ScenarioError::new(DOCUMENT_PATH, format!("invalid JSON: {e}")))?;
    Ok(value)
}

struct StrictValue(Value);

impl<'de> Deserialize<'de> for StrictValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(StrictValue)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> std::result::Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> std::result::Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> std::result::Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> std::result::Result<Value, E> {
        Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("number out of range"))
    }

    fn visit_str<E>(self, v: &str) -> std::result::Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> std::result::Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> std::result::Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> std::result::Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(StrictValue(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> std::result::Result<Value, A::Error> {
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            if map.contains_key(&key) {
                return Err(de::Error::custom(format!("duplicate key {key:?}")));
            }
            let StrictValue(value) = access.next_value()?;
            map.insert(key, value);
        }
        Ok(Value::Object(map))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn valid() -> Value {
        json!({
            "name": "basic",
            "from": "2026-11-01",
            "until": "2026-12-31",
            "policy": { "notice_days": 5 },
            "customers": [ { "id": "C1", "kind": "consumer" }, { "id": "C2", "kind": "business", "opt_out": true } ],
            "invoices": [
                { "id": "1001", "customer": "C1", "issued": "2026-11-01", "due": "2026-11-15",
                  "amount": "1250.00", "currency": "NOK" },
                { "id": "1002", "customer": "C2", "issued": "2026-11-01", "due": "2026-11-15",
                  "amount": "-50", "seen": "2026-11-10", "opt_out": true }
            ],
            "events": [
                { "on": "2026-11-18", "type": "payment", "invoice": "1001", "amount": "250.00", "via": "creditor" },
                { "on": "2026-11-19", "type": "dispute", "invoice": "1001" },
                { "on": "2026-11-20", "type": "customer_opt_in", "customer": "C2" },
                { "on": "2026-11-20", "type": "due_date_changed", "invoice": "1001", "due": "2026-11-30" }
            ],
            "expect": [ { "on": "2026-11-16", "invoice": "1001", "action": "notice_sent" } ]
        })
    }

    fn error_of(value: Value) -> ScenarioError {
        Scenario::from_value(&value).unwrap_err()
    }

    /// Sets (or adds) the value at a JSON pointer.
    fn with(mut value: Value, pointer: &str, replacement: Value) -> Value {
        let (parent, key) = pointer.rsplit_once('/').unwrap();
        match value.pointer_mut(parent).unwrap() {
            Value::Object(map) => {
                map.insert(key.to_owned(), replacement);
            }
            Value::Array(items) => items[key.parse::<usize>().unwrap()] = replacement,
            _ => panic!("no container at {parent}"),
        }
        value
    }

    fn without(mut value: Value, pointer: &str) -> Value {
        let (parent, key) = pointer.rsplit_once('/').unwrap();
        value
            .pointer_mut(parent)
            .unwrap()
            .as_object_mut()
            .unwrap()
            .remove(key);
        value
    }

    #[test]
    fn valid_scenario_parses_with_defaults() {
        let scenario = Scenario::from_value(&valid()).unwrap();
        assert_eq!(scenario.name.as_deref(), Some("basic"));
        assert_eq!(scenario.invoices[0].seen, scenario.from);
        assert_eq!(scenario.invoices[0].currency, "NOK");
        assert_eq!(scenario.invoices[1].amount, Decimal::new(-50, 0));
        assert_eq!(scenario.customers[1].kind, CustomerKind::Business);
        assert_eq!(scenario.events.len(), 4);
        assert_eq!(scenario.events[1].event, Event::Dispute { amount: None });
        assert_eq!(scenario.expect.as_ref().map(Vec::len), Some(1));
        assert_eq!(scenario.policy.notice_days, 5);
    }

    #[test]
    fn from_slice_reads_bytes() {
        let bytes = serde_json::to_vec(&valid()).unwrap();
        assert!(Scenario::from_slice(&bytes).is_ok());
    }

    #[test]
    fn unknown_fields_are_rejected_everywhere() {
        assert_eq!(error_of(with(valid(), "/nme", json!(1))).path, "nme");
        let mut v = valid();
        v["customers"][0]["vip"] = json!(true);
        assert_eq!(error_of(v).path, "customers[0].vip");
        let mut v = valid();
        v["invoices"][1]["total"] = json!("1.00");
        assert_eq!(error_of(v).path, "invoices[1].total");
        let mut v = valid();
        v["policy"]["notice"] = json!(1);
        assert_eq!(error_of(v).path, "policy.notice");
    }

    #[test]
    fn an_unknown_empty_key_is_named_by_a_path_that_is_not_empty() {
        // Found by the fuzz test: `"from"` cut out of a file's text leaves the key `""`.
        assert_eq!(error_of(with(valid(), "/", json!(1))).path, "[\"\"]");
        let mut v = valid();
        v["policy"][""] = json!(1);
        assert_eq!(error_of(v).path, "policy[\"\"]");
        let mut v = valid();
        v["events"][0]["a.b"] = json!(1);
        assert_eq!(error_of(v).path, "events[0][\"a.b\"]");
    }

    #[test]
    fn event_fields_must_belong_to_the_event_type() {
        let mut v = valid();
        v["events"][1]["via"] = json!("creditor");
        let e = error_of(v);
        assert_eq!(e.path, "events[1].via");
        assert!(e.message.contains("dispute"), "{e}");
        let mut v = valid();
        v["events"][2]["invoice"] = json!("1001");
        assert_eq!(error_of(v).path, "events[2].invoice");
    }

    #[test]
    fn amounts_must_be_decimal_strings_with_two_decimals() {
        let e = error_of(with(valid(), "/invoices/0/amount", json!("1.005")));
        assert_eq!(e.path, "invoices[0].amount");
        assert!(e.message.contains("at most 2 decimals"), "{e}");
        let e = error_of(with(valid(), "/events/0/amount", json!(250.0)));
        assert_eq!(e.path, "events[0].amount");
        assert!(e.message.contains("decimal string"), "{e}");
        assert_eq!(
            error_of(with(valid(), "/events/0/amount", json!("0.00"))).path,
            "events[0].amount"
        );
        assert_eq!(
            error_of(with(valid(), "/events/0/amount", json!("-5.00"))).path,
            "events[0].amount"
        );
    }

    #[test]
    fn bad_dates_are_rejected() {
        assert_eq!(
            error_of(with(valid(), "/from", json!("2026-02-30"))).path,
            "from"
        );
        assert_eq!(
            error_of(with(valid(), "/invoices/0/due", json!("15.11.2026"))).path,
            "invoices[0].due"
        );
        assert_eq!(
            error_of(with(valid(), "/events/3/due", json!("2026-11-31"))).path,
            "events[3].due"
        );
        assert_eq!(
            error_of(with(valid(), "/invoices/1/seen", json!(20261110))).path,
            "invoices[1].seen"
        );
    }

    #[test]
    fn until_before_from_is_rejected() {
        let e = error_of(with(valid(), "/until", json!("2026-10-31")));
        assert_eq!(e.path, "until");
    }

    #[test]
    fn events_outside_the_period_are_rejected() {
        assert_eq!(
            error_of(with(valid(), "/events/0/on", json!("2026-10-31"))).path,
            "events[0].on"
        );
        assert_eq!(
            error_of(with(valid(), "/events/0/on", json!("2027-01-01"))).path,
            "events[0].on"
        );
        assert!(Scenario::from_value(&with(valid(), "/events/0/on", json!("2026-12-31"))).is_ok());
    }

    #[test]
    fn unknown_references_are_rejected() {
        let e = error_of(with(valid(), "/invoices/0/customer", json!("C9")));
        assert_eq!(
            (e.path.as_str(), e.message.as_str()),
            ("invoices[0].customer", "unknown customer \"C9\"")
        );
        assert_eq!(
            error_of(with(valid(), "/events/0/invoice", json!("9999"))).path,
            "events[0].invoice"
        );
        assert_eq!(
            error_of(with(valid(), "/events/2/customer", json!("C9"))).path,
            "events[2].customer"
        );
    }

    #[test]
    fn duplicate_ids_are_rejected() {
        let e = error_of(with(valid(), "/invoices/1/id", json!("1001")));
        assert_eq!(e.path, "invoices[1].id");
        assert!(e.message.contains("invoices[0]"));
        assert_eq!(
            error_of(with(valid(), "/customers/1/id", json!("C1"))).path,
            "customers[1].id"
        );
    }

    #[test]
    fn missing_required_fields_are_named() {
        assert_eq!(error_of(without(valid(), "/from")).path, "from");
        assert_eq!(
            error_of(without(valid(), "/invoices/0/due")).path,
            "invoices[0].due"
        );
        assert_eq!(
            error_of(without(valid(), "/events/0/via")).path,
            "events[0].via"
        );
        assert_eq!(
            error_of(without(valid(), "/events/0/type")).path,
            "events[0].type"
        );
        assert_eq!(
            error_of(without(valid(), "/customers/0/id")).path,
            "customers[0].id"
        );
    }

    #[test]
    fn bad_enumerations_are_rejected() {
        assert_eq!(
            error_of(with(valid(), "/events/0/via", json!("bank"))).path,
            "events[0].via"
        );
        assert_eq!(
            error_of(with(valid(), "/events/0/type", json!("refund"))).path,
            "events[0].type"
        );
        assert_eq!(
            error_of(with(valid(), "/customers/0/kind", json!("person"))).path,
            "customers[0].kind"
        );
        let mut v = valid();
        v["events"][1] = json!({ "on": "2026-11-19", "type": "dispute_resolved", "invoice": "1001", "outcome": "draw" });
        assert_eq!(error_of(v).path, "events[1].outcome");
        assert_eq!(
            error_of(with(valid(), "/invoices/0/currency", json!("nok"))).path,
            "invoices[0].currency"
        );
    }

    #[test]
    fn expect_entries_must_be_objects_but_are_otherwise_free() {
        assert_eq!(
            error_of(with(valid(), "/expect/0", json!("x"))).path,
            "expect[0]"
        );
        assert!(
            Scenario::from_value(&with(valid(), "/expect/0", json!({ "anything": [1, 2] })))
                .is_ok()
        );
        assert_eq!(
            Scenario::from_value(&without(valid(), "/expect"))
                .unwrap()
                .expect,
            None
        );
    }

    #[test]
    fn document_level_problems_use_the_document_path() {
        for bytes in [&b"[1]"[..], b"{", b"", b"\xff", b"{} {}"] {
            assert_eq!(
                Scenario::from_slice(bytes).unwrap_err().path,
                DOCUMENT_PATH,
                "{bytes:?}"
            );
        }
    }

    #[test]
    fn duplicate_keys_are_rejected() {
        let text = br#"{"from":"2026-11-01","until":"2026-11-02","from":"2026-11-01"}"#;
        let e = Scenario::from_slice(text).unwrap_err();
        assert!(e.message.contains("duplicate key \"from\""), "{e}");
    }

    #[test]
    fn sections_of_the_wrong_type_are_rejected() {
        assert_eq!(
            error_of(with(valid(), "/invoices", json!({}))).path,
            "invoices"
        );
        assert_eq!(
            error_of(with(valid(), "/customers/0", json!([]))).path,
            "customers[0]"
        );
        assert_eq!(
            error_of(with(valid(), "/invoices/0/opt_out", json!("yes"))).path,
            "invoices[0].opt_out"
        );
        assert_eq!(
            error_of(with(valid(), "/invoices/0/id", json!(1001))).path,
            "invoices[0].id"
        );
        assert_eq!(
            error_of(with(valid(), "/invoices/0/id", json!(""))).path,
            "invoices[0].id"
        );
    }
}
