//! Property tests over random policies, invoices and event sequences.
//!
//! Together they run 10 000 generated event sequences (5 000 + 3 000 + 2 000 cases).

mod scenario_gen;

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;
use forfall::lifecycle::{Decision, Event, InvoiceState, apply_event, evaluate, next_action_on};
use forfall::rules::dates::{add_days, add_years_clamped};
use forfall::rules::policy::Mode;
use forfall::scenario::{Scenario, Target};
use forfall::simulate::{initial_states, run, run_every_day};
use proptest::prelude::*;
use proptest::test_runner::Config;
use rust_decimal::Decimal;
use serde_json::{Map, Value};

fn parse(value: &Value) -> Scenario {
    Scenario::from_value(value).expect("generated scenarios are valid")
}

fn field<'a>(action: &'a Map<String, Value>, key: &str) -> &'a str {
    action.get(key).and_then(Value::as_str).unwrap_or_default()
}

fn date(action: &Map<String, Value>, key: &str) -> NaiveDate {
    field(action, key).parse().unwrap()
}

// ---------------------------------------------------------------------------------------------
// An independent model of the facts, kept by the test from the scenario's events
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct ModelFacts {
    issued: NaiveDate,
    due: NaiveDate,
    seen: NaiveDate,
    amount: Decimal,
    reduced: Decimal,
    /// `Some(None)`: the whole claim is disputed.
    dispute: Option<Option<Decimal>>,
    opt_out: bool,
    customer_opt_out: bool,
    customer: String,
    /// The last day on which the invoice was ineligible (before or after an event) or its due
    /// date moved: a transfer needs a warning on or after this day.
    last_block: Option<NaiveDate>,
}

impl ModelFacts {
    fn outstanding(&self) -> Decimal {
        (self.amount - self.reduced).max(Decimal::ZERO)
    }

    fn disputed(&self) -> Decimal {
        match self.dispute {
            None => Decimal::ZERO,
            Some(None) => self.outstanding(),
            Some(Some(amount)) => amount.min(self.outstanding()),
        }
    }

    fn collectable(&self) -> Decimal {
        self.outstanding() - self.disputed()
    }

    fn fully_disputed(&self) -> bool {
        self.dispute.is_some() && self.disputed() >= self.outstanding()
    }

    fn eligible(&self, min_amount: Decimal) -> bool {
        !self.opt_out
            && !self.customer_opt_out
            && !self.fully_disputed()
            && self.outstanding() > Decimal::ZERO
            && self.collectable() >= min_amount
    }

    fn apply(&mut self, event: &Event) {
        match event {
            Event::Payment { amount, .. } | Event::CreditNote { amount } => self.reduced += *amount,
            Event::OptOut | Event::Stop => self.opt_out = true,
            Event::OptIn => self.opt_out = false,
            Event::CustomerOptOut => self.customer_opt_out = true,
            Event::CustomerOptIn => self.customer_opt_out = false,
            Event::Dispute { amount } => self.dispute = Some(*amount),
            Event::DisputeResolved { outcome } => {
                if self.dispute.is_some() {
                    if *outcome == forfall::lifecycle::DisputeOutcome::DebtorUpheld {
                        self.reduced += self.disputed();
                    }
                    self.dispute = None;
                }
            }
            Event::DueDateChanged { due } => self.due = *due,
        }
    }
}

fn model(scenario: &Scenario) -> Vec<ModelFacts> {
    let customer_opt_out: HashMap<&str, bool> = scenario
        .customers
        .iter()
        .map(|c| (c.id.as_str(), c.opt_out))
        .collect();
    scenario
        .invoices
        .iter()
        .map(|i| {
            let mut facts = ModelFacts {
                issued: i.issued,
                due: i.due,
                seen: i.seen,
                amount: i.amount,
                reduced: Decimal::ZERO,
                dispute: None,
                opt_out: i.opt_out,
                customer_opt_out: customer_opt_out[i.customer.as_str()],
                customer: i.customer.clone(),
                last_block: None,
            };
            if !facts.eligible(scenario.policy.min_amount) {
                facts.last_block = Some(scenario.from);
            }
            facts
        })
        .collect()
}

/// Checks every invariant of one run against the model.
fn check_invariants(scenario: &Scenario, decisions: &[Decision]) -> Result<(), TestCaseError> {
    let policy = &scenario.policy;
    let mut facts = model(scenario);
    let index: HashMap<&str, usize> = scenario
        .invoices
        .iter()
        .enumerate()
        .map(|(i, inv)| (inv.id.as_str(), i))
        .collect();
    let mut events_by_day: BTreeMap<NaiveDate, Vec<_>> = BTreeMap::new();
    for event in &scenario.events {
        events_by_day.entry(event.on).or_default().push(event);
    }
    let mut by_day: BTreeMap<NaiveDate, Vec<Map<String, Value>>> = BTreeMap::new();
    let mut previous_day = scenario.from;
    for decision in decisions {
        prop_assert!(decision.action.on >= previous_day, "output is in day order");
        previous_day = decision.action.on;
        by_day
            .entry(decision.action.on)
            .or_default()
            .push(decision.action.to_json());
    }
    // Per invoice: the last warning (day, announced transfer_on), the open case's free period,
    // and whether a case was ever opened or ended.
    let mut warning: Vec<Option<(NaiveDate, NaiveDate)>> = vec![None; facts.len()];
    let mut free_until: Vec<Option<NaiveDate>> = vec![None; facts.len()];
    let mut transfers = vec![0usize; facts.len()];
    let mut case_over = vec![false; facts.len()];

    let mut day = scenario.from;
    loop {
        for event in events_by_day.get(&day).into_iter().flatten() {
            let targets: Vec<usize> = match &event.target {
                Target::Invoice(id) => vec![index[id.as_str()]],
                Target::Customer(id) => (0..facts.len())
                    .filter(|&i| facts[i].customer == *id)
                    .collect(),
            };
            for i in targets {
                let before = facts[i].eligible(policy.min_amount);
                let old_due = facts[i].due;
                facts[i].apply(&event.event);
                if !before || !facts[i].eligible(policy.min_amount) || facts[i].due != old_due {
                    facts[i].last_block = Some(day);
                }
            }
        }
        for action in by_day.get(&day).into_iter().flatten() {
            let i = index[field(action, "invoice")];
            let f = &facts[i];
            prop_assert!(
                day >= f.seen,
                "no action before the invoice is seen: {action:?}"
            );
            prop_assert!(
                f.amount > Decimal::ZERO,
                "credit notes never act: {action:?}"
            );
            match field(action, "action") {
                "notice_sent" | "listed" => {
                    prop_assert_eq!(transfers[i], 0, "no warning after a transfer");
                    warning[i] = Some((day, date(action, "transfer_on")));
                }
                "skipped" | "cancelled" => {
                    prop_assert_eq!(transfers[i], 0, "no skip or cancel after a transfer");
                    warning[i] = None;
                }
                "transferred" => {
                    transfers[i] += 1;
                    prop_assert_eq!(transfers[i], 1, "at most one case per invoice");
                    let Some((warned_on, announced)) = warning[i] else {
                        return Err(TestCaseError::fail(format!(
                            "transfer without a warning: {action:?}"
                        )));
                    };
                    prop_assert_eq!(announced, day, "transfers on the announced day");
                    prop_assert!(
                        f.last_block.is_none_or(|b| b <= warned_on),
                        "fresh warning after re-eligibility: {action:?} {f:?}"
                    );
                    match policy.mode {
                        Mode::Notice => {
                            prop_assert!(day >= add_days(warned_on, policy.notice_days))
                        }
                        Mode::WeeklyList => prop_assert!(day > warned_on),
                    }
                    prop_assert!(
                        !f.opt_out && !f.customer_opt_out,
                        "not while opted out: {f:?}"
                    );
                    prop_assert!(!f.fully_disputed(), "not while fully disputed");
                    prop_assert!(f.outstanding() > Decimal::ZERO, "not when paid or credited");
                    prop_assert!(
                        f.collectable() >= policy.min_amount,
                        "not below the minimum"
                    );
                    prop_assert!(
                        day >= add_days(f.issued, policy.min_days_from_issue),
                        "not before issued + min_days_from_issue"
                    );
                    prop_assert!(
                        day >= add_days(f.due, policy.min_days_after_due),
                        "not before due + min_days_after_due"
                    );
                    prop_assert!(
                        day < add_years_clamped(f.due, policy.limitation_years),
                        "not on or after the limitation date"
                    );
                    prop_assert_eq!(
                        field(action, "amount"),
                        forfall::rules::money::format_amount(f.collectable())
                    );
                    prop_assert_eq!(
                        date(action, "free_withdrawal_until"),
                        add_days(day, policy.free_withdrawal_days)
                    );
                    prop_assert_eq!(
                        date(action, "first_reminder_on"),
                        add_days(day, policy.first_reminder_after_days)
                    );
                    free_until[i] = Some(date(action, "free_withdrawal_until"));
                }
                kind => {
                    prop_assert_eq!(transfers[i], 1, "{} only for a transferred case", kind);
                    prop_assert!(!case_over[i], "nothing after a case is withdrawn or closed");
                    if kind == "withdrawn" {
                        let charged = action.get("charged").and_then(Value::as_bool);
                        prop_assert_eq!(
                            charged,
                            free_until[i].map(|fwu| day > fwu),
                            "charged = day > free_withdrawal_until"
                        );
                    }
                    if kind == "withdrawn" || kind == "closed" {
                        case_over[i] = true;
                    }
                }
            }
        }
        if day >= scenario.until {
            break;
        }
        day = day.succ_opt().unwrap();
    }
    Ok(())
}

proptest! {
    #![proptest_config(Config { cases: 5_000, ..Config::default() })]

    /// No transfer while opted out, disputed, paid, credited, below the minimum, too early after
    /// the last warning or the issue date, or prescribed; one case per invoice; `charged` is
    /// `day > free_withdrawal_until`; skipping idle days gives the same output as every day.
    #[test]
    fn transfers_respect_every_rule_and_day_skipping_changes_nothing(value in scenario_gen::scenario()) {
        let scenario = parse(&value);
        let decisions = run(&scenario);
        check_invariants(&scenario, &decisions)?;
        prop_assert_eq!(&decisions, &run_every_day(&scenario));
    }
}

proptest! {
    #![proptest_config(Config { cases: 3_000, ..Config::default() })]

    /// Evaluating before `next_action_on` neither emits nor changes the state; anything emitted
    /// is on or after it; states survive a JSON round trip at every step (server persistence).
    #[test]
    fn evaluating_before_next_action_on_is_a_no_op(value in scenario_gen::scenario()) {
        let scenario = parse(&value);
        let policy = &scenario.policy;
        let mut states: Vec<InvoiceState> = initial_states(&scenario);
        let mut day = scenario.from;
        loop {
            for event in scenario.events.iter().filter(|e| e.on == day) {
                for state in states.iter_mut() {
                    let hit = match &event.target {
                        Target::Invoice(id) => state.invoice == *id,
                        Target::Customer(id) => scenario.invoices.iter().any(|i| i.id == state.invoice && i.customer == *id),
                    };
                    if hit {
                        apply_event(policy, state, &event.event, day);
                    }
                }
            }
            for state in states.iter_mut() {
                let due_on = next_action_on(policy, state);
                let before = state.clone();
                let emitted = evaluate(policy, state, day);
                if due_on.is_none_or(|d| day < d) {
                    prop_assert!(emitted.is_empty(), "emitted before next_action_on: {:?}", emitted);
                    prop_assert_eq!(&*state, &before);
                }
                let text = serde_json::to_string(&*state).unwrap();
                let back: InvoiceState = serde_json::from_str(&text).unwrap();
                prop_assert_eq!(&back, &*state);
            }
            if day >= scenario.until {
                break;
            }
            day = day.succ_opt().unwrap();
        }
    }
}

proptest! {
    #![proptest_config(Config { cases: 2_000, ..Config::default() })]

    /// The same input gives the same output, and reordering the invoice list changes only the
    /// order of same-day actions: every invoice gets the same actions on the same days.
    #[test]
    fn output_is_deterministic_and_independent_of_invoice_order(value in scenario_gen::scenario(), rotate in 0usize..6) {
        let scenario = parse(&value);
        let first = run(&scenario);
        prop_assert_eq!(&first, &run(&scenario));

        let mut reordered = value.clone();
        let invoices = reordered["invoices"].as_array_mut().unwrap();
        invoices.reverse();
        let len = invoices.len();
        invoices.rotate_left(rotate % len);
        let second = run(&parse(&reordered));

        let per_invoice = |decisions: &[Decision]| {
            let mut map: BTreeMap<String, Vec<Map<String, Value>>> = BTreeMap::new();
            for d in decisions {
                map.entry(d.action.invoice.clone()).or_default().push(d.action.to_json());
            }
            map
        };
        prop_assert_eq!(per_invoice(&first), per_invoice(&second));
        let days = |decisions: &[Decision]| decisions.iter().map(|d| d.action.on).collect::<Vec<_>>();
        prop_assert_eq!(days(&first), days(&second));
    }
}
