//! `POST /v1/creditors/{creditor}/preview`: what the engine would do with these invoices under
//! this policy. The body is a scenario in the format of `forfall simulate` (`from`, `until`,
//! `policy`, `customers`, `invoices`, `events`, optional `expect`), validated by the same parser
//! and run by the same engine loop ([`crate::simulate::run`]); nothing is stored. Without a
//! `policy`, the creditor's own is used. A field at fault answers 422 with its JSON pointer
//! (`/invoices/0/due`), translated from the scenario's error path.

use axum::Extension;
use axum::extract::{Path, State};
use serde_json::{Value, json};

use crate::api::AppState;
use crate::api::auth::Caller;
use crate::api::json::RawBody;
use crate::api::problem::Problem;
use crate::rules::policy::Policy;
use crate::scenario::{DOCUMENT_PATH, Scenario, ScenarioError};
use crate::simulate;

/// The most invoices and events one preview may carry.
pub const MAX_INVOICES: usize = 1_000;
pub const MAX_EVENTS: usize = 10_000;

/// A scenario error path (`invoices[2].due`, `(document)`) as a JSON pointer (`/invoices/2/due`,
/// the empty pointer for the whole document).
pub fn scenario_pointer(path: &str) -> String {
    if path == DOCUMENT_PATH || path.is_empty() {
        String::new()
    } else {
        crate::json_path::pointer(path)
    }
}

fn scenario_problem(e: ScenarioError) -> Problem {
    Problem::field(scenario_pointer(&e.path), e.message)
}

/// Runs the scenario and renders the answer: every action with its explanation, in the order
/// `forfall simulate --explain` prints them, and the comparison with `expect` when there is one.
pub fn preview_json(scenario: &Scenario) -> Value {
    let decisions = simulate::run(scenario);
    let check =
        scenario
            .expect
            .as_deref()
            .map(|expect| match simulate::check(expect, &decisions) {
                Ok(()) => json!({ "ok": true, "diff": null }),
                Err(diff) => json!({ "ok": false, "diff": diff.to_string() }),
            });
    json!({
        "from": scenario.from,
        "until": scenario.until,
        "actions": decisions
            .iter()
            .map(|d| Value::Object(d.to_json(true)))
            .collect::<Vec<_>>(),
        "check": check,
    })
}

pub async fn preview(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(creditor): Path<String>,
    RawBody(body): RawBody,
) -> Result<axum::Json<Value>, Problem> {
    let creditor = caller.creditor(&state, &creditor).await?;
    // Not JSON at all is a bad request (400), JSON that is not an object 422; the scenario
    // parser then names any field at fault.
    let document: Value = crate::api::json::parse(&body)?;
    let mut scenario = Scenario::from_slice(&body).map_err(scenario_problem)?;
    if scenario.invoices.len() > MAX_INVOICES {
        return Err(Problem::field(
            "/invoices",
            format!("at most {MAX_INVOICES} invoices per preview"),
        ));
    }
    if scenario.events.len() > MAX_EVENTS {
        return Err(Problem::field(
            "/events",
            format!("at most {MAX_EVENTS} events per preview"),
        ));
    }
    if document.get("policy").is_none() {
        scenario.policy = Policy::from_json(&creditor.policy).map_err(|e| {
            Problem::conflict(format!(
                "the creditor's stored policy is not valid ({e}); send a policy with the preview"
            ))
        })?;
    }
    let answer = tokio::task::spawn_blocking(move || preview_json(&scenario))
        .await
        .map_err(|e| Problem::internal(&e))?;
    Ok(axum::Json(answer))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scenario_path_becomes_a_json_pointer() {
        assert_eq!(scenario_pointer("invoices[2].due"), "/invoices/2/due");
        assert_eq!(
            scenario_pointer("policy.weekly_list.cutoff_weekday"),
            "/policy/weekly_list/cutoff_weekday"
        );
        assert_eq!(scenario_pointer("until"), "/until");
        assert_eq!(scenario_pointer(DOCUMENT_PATH), "");
    }

    #[test]
    fn a_preview_is_what_simulate_prints() {
        let text = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/scenarios/01-default-basic-partial-payment.json"
        ))
        .unwrap();
        let scenario = Scenario::from_slice(&text).unwrap();
        let answer = preview_json(&scenario);
        let lines: Vec<Value> = simulate::render_lines(&simulate::run(&scenario), true, None)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert!(!lines.is_empty());
        assert_eq!(answer["actions"], Value::Array(lines));
        assert_eq!(answer["check"]["ok"], true, "{}", answer["check"]);
    }
}
