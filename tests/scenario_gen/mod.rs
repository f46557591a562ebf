//! Random scenarios for the property tests, built as JSON so that they also exercise the parser.

#![allow(dead_code)]

use chrono::{Days, NaiveDate};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

const WEEKDAYS: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];
const DIRECT_PAYMENT: [&str; 3] = ["withdraw_if_free", "always_withdraw", "keep_open"];

fn cents(amount: i64) -> String {
    let sign = if amount < 0 { "-" } else { "" };
    let abs = amount.unsigned_abs();
    format!("{sign}{}.{:02}", abs / 100, abs % 100)
}

fn shift(date: NaiveDate, days: i64) -> NaiveDate {
    if days >= 0 {
        date.checked_add_days(Days::new(days as u64)).unwrap()
    } else {
        date.checked_sub_days(Days::new(days.unsigned_abs()))
            .unwrap()
    }
}

fn day(date: NaiveDate) -> Value {
    json!(date.format("%Y-%m-%d").to_string())
}

/// A random policy object with a random subset of keys.
pub fn policy() -> impl Strategy<Value = Value> {
    let days = (
        prop::option::of(0u32..4),
        prop::option::of(0u32..10),
        prop::option::of(0u32..20),
        prop::option::of(0u32..16),
        prop::option::of(0u32..15),
        prop::option::of(0u32..8),
    );
    let rest = (
        prop::bool::weighted(0.35),
        prop::option::of(0i64..60_000),
        prop::option::of(1u32..4),
        any::<bool>(),
        prop::option::of(0usize..3),
        prop::option::of((0usize..7, 0usize..7)),
    );
    (days, rest).prop_map(|(days, rest)| {
        let (nad, nd, mdi, mda, fwd, fra) = days;
        let (weekly, min_amount, years, roll, odp, weekdays) = rest;
        let mut p = Map::new();
        let mut put = |key: &str, value: Option<Value>| {
            if let Some(value) = value {
                p.insert(key.into(), value);
            }
        };
        put("mode", weekly.then(|| json!("weekly_list")));
        put("notice_after_due_days", nad.map(|v| json!(v)));
        put("notice_days", nd.map(|v| json!(v)));
        put("min_days_from_issue", mdi.map(|v| json!(v)));
        put("min_days_after_due", mda.map(|v| json!(v)));
        put("free_withdrawal_days", fwd.map(|v| json!(v)));
        put("first_reminder_after_days", fra.map(|v| json!(v)));
        put("min_amount", min_amount.map(|v| json!(cents(v))));
        put("limitation_years", years.map(|v| json!(v)));
        put("roll_to_business_day", Some(json!(roll)));
        put("on_direct_payment", odp.map(|i| json!(DIRECT_PAYMENT[i])));
        put(
            "weekly_list",
            weekdays.map(
                |(l, c)| json!({ "list_weekday": WEEKDAYS[l], "cutoff_weekday": WEEKDAYS[c] }),
            ),
        );
        Value::Object(p)
    })
}

#[derive(Debug, Clone)]
struct RawInvoice {
    customer: usize,
    issued_offset: i64,
    due_after_issue: i64,
    amount: i64,
    seen_offset: Option<i64>,
    opt_out: bool,
    years_old: Option<(i64, i64)>,
}

fn raw_invoice() -> impl Strategy<Value = RawInvoice> {
    (
        0usize..3,
        -40i64..40,
        0i64..40,
        prop_oneof![8 => 1i64..500_000, 1 => -50_000i64..1, 1 => 1i64..10_000],
        prop::option::of(-10i64..40),
        prop::bool::weighted(0.15),
        prop::option::weighted(0.15, (1i64..4, -40i64..40)),
    )
        .prop_map(
            |(
                customer,
                issued_offset,
                due_after_issue,
                amount,
                seen_offset,
                opt_out,
                years_old,
            )| RawInvoice {
                customer,
                issued_offset,
                due_after_issue,
                amount,
                seen_offset,
                opt_out,
                years_old,
            },
        )
}

#[derive(Debug, Clone)]
struct RawEvent {
    offset: i64,
    kind: usize,
    invoice: usize,
    customer: usize,
    amount_choice: usize,
    amount: i64,
    via_collection: bool,
    debtor_upheld: bool,
    due_offset: i64,
}

fn raw_event() -> impl Strategy<Value = RawEvent> {
    (
        0i64..200,
        0usize..10,
        0usize..6,
        0usize..3,
        0usize..4,
        1i64..300_000,
        any::<bool>(),
        any::<bool>(),
        -30i64..60,
    )
        .prop_map(
            |(
                offset,
                kind,
                invoice,
                customer,
                amount_choice,
                amount,
                via_collection,
                debtor_upheld,
                due_offset,
            )| {
                RawEvent {
                    offset,
                    kind,
                    invoice,
                    customer,
                    amount_choice,
                    amount,
                    via_collection,
                    debtor_upheld,
                    due_offset,
                }
            },
        )
}

/// A random valid scenario (without `expect`).
pub fn scenario() -> impl Strategy<Value = Value> {
    (
        policy(),
        0i64..1500,
        20i64..120,
        1usize..4,
        prop::collection::vec(any::<bool>(), 3),
        prop::collection::vec(raw_invoice(), 1..6),
        prop::collection::vec(raw_event(), 0..20),
    )
        .prop_map(|(policy, from_offset, length, customer_count, customer_opt_out, invoices, events)| {
            let base = NaiveDate::from_ymd_opt(2025, 1, 1).unwrap();
            let from = shift(base, from_offset);
            let until = shift(from, length);
            let customers: Vec<Value> = (0..customer_count)
                .map(|c| {
                    let opt_out = customer_opt_out[c] && c == 1;
                    json!({ "id": format!("C{c}"), "opt_out": opt_out })
                })
                .collect();
            let mut amounts = Vec::new();
            let invoices: Vec<Value> = invoices
                .iter()
                .enumerate()
                .map(|(i, inv)| {
                    let issued = shift(from, inv.issued_offset);
                    let mut due = shift(issued, inv.due_after_issue);
                    if let Some((years, offset)) = inv.years_old {
                        due = shift(from, -365 * years + offset);
                    }
                    amounts.push(inv.amount);
                    let mut v = json!({
                        "id": format!("I{i}"),
                        "customer": format!("C{}", inv.customer % customer_count),
                        "issued": day(issued.min(due)),
                        "due": day(due),
                        "amount": cents(inv.amount),
                        "opt_out": inv.opt_out,
                    });
                    if let Some(seen) = inv.seen_offset {
                        v["seen"] = day(shift(from, seen));
                    }
                    v
                })
                .collect();
            let events: Vec<Value> = events
                .iter()
                .map(|e| {
                    let on = day(shift(from, e.offset % (length + 1)));
                    let index = e.invoice % invoices.len();
                    let invoice = format!("I{index}");
                    let customer = format!("C{}", e.customer % customer_count);
                    let full = amounts[index].max(1);
                    let amount = cents(match e.amount_choice {
                        0 => full,
                        1 => (full / 2).max(1),
                        _ => e.amount,
                    });
                    match e.kind {
                        0 => json!({ "on": on, "type": "payment", "invoice": invoice, "amount": amount,
                                     "via": if e.via_collection { "collection" } else { "creditor" } }),
                        1 => json!({ "on": on, "type": "opt_out", "invoice": invoice }),
                        2 => json!({ "on": on, "type": "opt_in", "invoice": invoice }),
                        3 => json!({ "on": on, "type": "customer_opt_out", "customer": customer }),
                        4 => json!({ "on": on, "type": "customer_opt_in", "customer": customer }),
                        5 if e.amount_choice == 3 => json!({ "on": on, "type": "dispute", "invoice": invoice }),
                        5 => json!({ "on": on, "type": "dispute", "invoice": invoice, "amount": amount }),
                        6 => json!({ "on": on, "type": "dispute_resolved", "invoice": invoice,
                                     "outcome": if e.debtor_upheld { "debtor_upheld" } else { "creditor_upheld" } }),
                        7 => json!({ "on": on, "type": "credit_note", "invoice": invoice, "amount": amount }),
                        8 => json!({ "on": on, "type": "stop", "invoice": invoice }),
                        _ => json!({ "on": on, "type": "due_date_changed", "invoice": invoice,
                                     "due": day(shift(from, e.due_offset)) }),
                    }
                })
                .collect();
            json!({
                "name": "generated",
                "from": day(from),
                "until": day(until),
                "policy": policy,
                "customers": customers,
                "invoices": invoices,
                "events": events,
            })
        })
}
