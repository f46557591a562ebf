//! The scenario parser never panics: arbitrary bytes, and valid scenarios mutated as text or as
//! JSON trees, give either a scenario or an error with a path.

mod scenario_gen;

use forfall::scenario::Scenario;
use forfall::simulate::run;
use proptest::prelude::*;
use proptest::test_runner::Config;
use serde_json::{Map, Value};

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        "[0-9]{4}-[0-9]{2}-[0-9]{2}".prop_map(Value::String),
        "-?[0-9]{1,14}(\\.[0-9]{0,4})?".prop_map(Value::String),
        prop::sample::select(vec![
            "payment",
            "opt_out",
            "creditor",
            "collection",
            "debtor_upheld",
            "weekly_list",
            "monday",
            "I0",
            "C0",
            "C1",
            "consumer",
            "NOK",
            "",
        ])
        .prop_map(Value::from),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec(("[a-z_]{1,10}", inner), 0..4)
                .prop_map(|pairs| Value::Object(pairs.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// The node reached by following `steps` (each picks a child modulo the number of children).
fn node_at<'a>(value: &'a mut Value, steps: &[usize]) -> &'a mut Value {
    let Some((&step, rest)) = steps.split_first() else {
        return value;
    };
    let has_children = match &*value {
        Value::Array(items) => !items.is_empty(),
        Value::Object(map) => !map.is_empty(),
        _ => false,
    };
    if !has_children {
        return value;
    }
    match value {
        Value::Array(items) => {
            let len = items.len();
            node_at(&mut items[step % len], rest)
        }
        Value::Object(map) => {
            let len = map.len();
            let key = map.keys().nth(step % len).cloned().unwrap();
            node_at(map.get_mut(&key).unwrap(), rest)
        }
        other => other,
    }
}

#[derive(Debug, Clone)]
enum TreeMutation {
    Replace(Vec<usize>, Value),
    RemoveKey(Vec<usize>, usize),
    AddKey(Vec<usize>, String, Value),
}

fn tree_mutation() -> impl Strategy<Value = TreeMutation> {
    let steps = prop::collection::vec(0usize..8, 0..5);
    prop_oneof![
        (steps.clone(), any_json()).prop_map(|(s, v)| TreeMutation::Replace(s, v)),
        (steps.clone(), 0usize..8).prop_map(|(s, k)| TreeMutation::RemoveKey(s, k)),
        (steps, "[a-z_]{1,12}", any_json()).prop_map(|(s, k, v)| TreeMutation::AddKey(s, k, v)),
    ]
}

fn mutate_tree(value: &mut Value, mutation: &TreeMutation) {
    match mutation {
        TreeMutation::Replace(steps, new) => *node_at(value, steps) = new.clone(),
        TreeMutation::RemoveKey(steps, k) => {
            if let Value::Object(map) = node_at(value, steps)
                && let Some(key) = map.keys().nth(k % map.len().max(1)).cloned()
            {
                map.remove(&key);
            }
        }
        TreeMutation::AddKey(steps, key, new) => {
            if let Value::Object(map) = node_at(value, steps) {
                map.insert(key.clone(), new.clone());
            }
        }
    }
}

/// Parses, and when the input is valid, also runs it: neither may panic.
fn parse_and_run(bytes: &[u8]) -> Result<(), TestCaseError> {
    match Scenario::from_slice(bytes) {
        Ok(scenario) => {
            // Keep runs short: a mutated `until` may span centuries.
            if (scenario.until - scenario.from).num_days() < 3_000 {
                let _ = run(&scenario);
            }
        }
        Err(error) => prop_assert!(!error.path.is_empty() && !error.message.is_empty()),
    }
    Ok(())
}

proptest! {
    #![proptest_config(Config { cases: 1_500, ..Config::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        parse_and_run(&bytes)?;
    }

    #[test]
    fn valid_scenarios_mutated_as_text_never_panic(
        value in scenario_gen::scenario(),
        edits in prop::collection::vec((0usize..4000, 0usize..6, prop::collection::vec(any::<u8>(), 0..4)), 1..4),
    ) {
        let mut bytes = serde_json::to_vec(&value).unwrap();
        for (at, remove, insert) in edits {
            let at = at % (bytes.len() + 1);
            let end = (at + remove).min(bytes.len());
            bytes.splice(at..end, insert);
        }
        parse_and_run(&bytes)?;
    }

    #[test]
    fn valid_scenarios_mutated_as_trees_never_panic(
        value in scenario_gen::scenario(),
        mutations in prop::collection::vec(tree_mutation(), 1..4),
    ) {
        let mut value = value;
        for mutation in &mutations {
            mutate_tree(&mut value, mutation);
        }
        parse_and_run(&serde_json::to_vec(&value).unwrap())?;
    }
}

#[test]
fn deeply_nested_json_is_an_error_not_a_stack_overflow() {
    let text = "[".repeat(100_000);
    assert!(Scenario::from_slice(text.as_bytes()).is_err());
    let text = format!("{{\"expect\":{}", "{\"a\":".repeat(50_000));
    assert!(Scenario::from_slice(text.as_bytes()).is_err());
}

#[test]
fn huge_numbers_and_extreme_dates_are_errors_or_run_safely() {
    let text = r#"{"from":"0001-01-01","until":"9999-12-31","policy":{"notice_days":1e400}}"#;
    assert!(Scenario::from_slice(text.as_bytes()).is_err());
    // Years past 2999 are refused: dates derived from them would leave YYYY-MM-DD.
    let text = r#"{"from":"9999-12-01","until":"9999-12-31"}"#;
    let error = Scenario::from_slice(text.as_bytes()).unwrap_err();
    assert_eq!(error.path, "from");
    // The extremes that are allowed run safely, and every date printed is still YYYY-MM-DD.
    let text = r#"{"from":"2999-12-01","until":"2999-12-31","policy":{"notice_days":365,"limitation_years":30},
        "customers":[{"id":"C"}],
        "invoices":[{"id":"I","customer":"C","issued":"2999-12-30","due":"2999-12-31","amount":"999999999999.99"},
                    {"id":"J","customer":"C","issued":"2999-12-01","due":"2999-12-02","amount":"999999999999.99"}],
        "events":[{"on":"2999-12-31","type":"payment","invoice":"I","amount":"999999999999.99","via":"creditor"}]}"#;
    let scenario = Scenario::from_slice(text.as_bytes()).unwrap();
    for decision in run(&scenario) {
        let line = serde_json::Value::Object(decision.to_json(false)).to_string();
        assert!(!line.contains("\"+"), "{line}");
    }
}
