//! What the engine decides: the core action plus the explanation of why.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Serialize, Serializer};
use serde_json::{Map, Value, json};

use crate::rules::eligibility::Reason;
use crate::rules::money::format_amount;

/// The contract's core actions, the ones `--check` compares.
pub const CORE_ACTIONS: [&str; 10] = [
    "skipped",
    "notice_sent",
    "listed",
    "cancelled",
    "transferred",
    "withdrawn",
    "principal_paid",
    "held",
    "released",
    "closed",
];

/// The kind of action and its fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionKind {
    Skipped {
        reason: Reason,
    },
    NoticeSent {
        transfer_on: NaiveDate,
    },
    Listed {
        transfer_on: NaiveDate,
    },
    Cancelled {
        reason: Reason,
    },
    Transferred {
        amount: Decimal,
        free_withdrawal_until: NaiveDate,
        first_reminder_on: NaiveDate,
    },
    Withdrawn {
        charged: bool,
    },
    PrincipalPaid,
    Held {
        reason: Reason,
    },
    Released,
    Closed {
        reason: Reason,
    },
}

impl ActionKind {
    /// The contract's name of the action.
    pub fn name(&self) -> &'static str {
        match self {
            ActionKind::Skipped { .. } => "skipped",
            ActionKind::NoticeSent { .. } => "notice_sent",
            ActionKind::Listed { .. } => "listed",
            ActionKind::Cancelled { .. } => "cancelled",
            ActionKind::Transferred { .. } => "transferred",
            ActionKind::Withdrawn { .. } => "withdrawn",
            ActionKind::PrincipalPaid => "principal_paid",
            ActionKind::Held { .. } => "held",
            ActionKind::Released => "released",
            ActionKind::Closed { .. } => "closed",
        }
    }

    fn write_fields(&self, map: &mut Map<String, Value>) {
        match self {
            ActionKind::Skipped { reason }
            | ActionKind::Cancelled { reason }
            | ActionKind::Held { reason }
            | ActionKind::Closed { reason } => {
                map.insert("reason".into(), json!(reason.as_str()));
            }
            ActionKind::NoticeSent { transfer_on } | ActionKind::Listed { transfer_on } => {
                map.insert("transfer_on".into(), json!(transfer_on));
            }
            ActionKind::Transferred {
                amount,
                free_withdrawal_until,
                first_reminder_on,
            } => {
                map.insert("amount".into(), json!(format_amount(*amount)));
                map.insert("free_withdrawal_until".into(), json!(free_withdrawal_until));
                map.insert("first_reminder_on".into(), json!(first_reminder_on));
            }
            ActionKind::Withdrawn { charged } => {
                map.insert("charged".into(), json!(charged));
            }
            ActionKind::PrincipalPaid | ActionKind::Released => {}
        }
    }
}

/// One action the gateway takes for one invoice on one day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Action {
    pub on: NaiveDate,
    pub invoice: String,
    pub kind: ActionKind,
}

impl Action {
    /// `{"on":..,"invoice":..,"action":..,<fields>}` in that key order.
    pub fn to_json(&self) -> Map<String, Value> {
        let mut map = Map::new();
        map.insert("on".into(), json!(self.on));
        map.insert("invoice".into(), json!(self.invoice));
        map.insert("action".into(), json!(self.kind.name()));
        self.kind.write_fields(&mut map);
        map
    }
}

impl Serialize for Action {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}

/// Why an action was taken: the rule and the inputs it used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Explanation {
    /// A stable rule name such as `notice.transfer_on`.
    pub rule: &'static str,
    pub inputs: Map<String, Value>,
}

/// An action with its explanation; what `--explain` prints and a server logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub action: Action,
    pub explain: Explanation,
}

impl Decision {
    pub fn new(action: Action, rule: &'static str, inputs: Inputs) -> Self {
        Decision {
            action,
            explain: Explanation {
                rule,
                inputs: inputs.0,
            },
        }
    }

    /// The action's JSON object, with `"explain": {"rule":..,"inputs":{..}}` when asked.
    pub fn to_json(&self, with_explain: bool) -> Map<String, Value> {
        let mut map = self.action.to_json();
        if with_explain {
            map.insert(
                "explain".into(),
                json!({ "rule": self.explain.rule, "inputs": self.explain.inputs }),
            );
        }
        map
    }
}

impl Serialize for Decision {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json(true).serialize(serializer)
    }
}

/// A small builder for explanation inputs, keeping their insertion order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inputs(Map<String, Value>);

impl Inputs {
    pub fn new() -> Self {
        Inputs::default()
    }

    pub fn date(mut self, key: &str, date: NaiveDate) -> Self {
        self.0.insert(key.into(), json!(date));
        self
    }

    pub fn amount(mut self, key: &str, amount: Decimal) -> Self {
        self.0.insert(key.into(), json!(format_amount(amount)));
        self
    }

    pub fn days(mut self, key: &str, days: u32) -> Self {
        self.0.insert(key.into(), json!(days));
        self
    }

    pub fn flag(mut self, key: &str, flag: bool) -> Self {
        self.0.insert(key.into(), json!(flag));
        self
    }

    pub fn text(mut self, key: &str, text: &str) -> Self {
        self.0.insert(key.into(), json!(text));
        self
    }

    pub fn value(mut self, key: &str, value: Value) -> Self {
        self.0.insert(key.into(), value);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::dates::parse_civil_date;
    use rust_decimal_macros::dec;

    #[test]
    fn transferred_action_prints_contract_fields_in_order() {
        let d = |t| parse_civil_date(t).unwrap();
        let action = Action {
            on: d("2026-11-21"),
            invoice: "1001".into(),
            kind: ActionKind::Transferred {
                amount: dec!(1000),
                free_withdrawal_until: d("2026-12-01"),
                first_reminder_on: d("2026-11-26"),
            },
        };
        assert_eq!(
            serde_json::to_string(&action).unwrap(),
            r#"{"on":"2026-11-21","invoice":"1001","action":"transferred","amount":"1000.00","free_withdrawal_until":"2026-12-01","first_reminder_on":"2026-11-26"}"#
        );
    }

    #[test]
    fn withdrawn_charged_is_a_json_boolean_and_explain_is_appended() {
        let decision = Decision::new(
            Action {
                on: parse_civil_date("2026-12-02").unwrap(),
                invoice: "7".into(),
                kind: ActionKind::Withdrawn { charged: true },
            },
            "case.stop",
            Inputs::new().flag("charged", true),
        );
        assert_eq!(
            serde_json::to_string(&decision.to_json(true)).unwrap(),
            r#"{"on":"2026-12-02","invoice":"7","action":"withdrawn","charged":true,"explain":{"rule":"case.stop","inputs":{"charged":true}}}"#
        );
        assert!(!decision.to_json(false).contains_key("explain"));
    }

    #[test]
    fn every_action_kind_is_core() {
        let kinds = [
            ActionKind::Skipped {
                reason: Reason::OptedOut,
            },
            ActionKind::PrincipalPaid,
            ActionKind::Released,
        ];
        for kind in kinds {
            assert!(CORE_ACTIONS.contains(&kind.name()));
        }
    }
}
