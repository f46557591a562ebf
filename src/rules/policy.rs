//! A creditor's collection policy: every key of the contract, its default, and strict parsing.

use chrono::Weekday;
use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use thiserror::Error;

use crate::rules::money::{format_amount, parse_amount};

/// How invoices reach collection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Warn the creditor, then transfer after `notice_days`.
    Notice,
    /// The AutoCollect pattern: list candidates weekly, transfer on the cut-off day.
    WeeklyList,
}

/// What happens to a transferred case when the creditor is paid directly in full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnDirectPayment {
    /// Withdraw while withdrawing is free; afterwards keep the case open for fees.
    WithdrawIfFree,
    /// Always withdraw (charged once the free period is over).
    AlwaysWithdraw,
    /// Keep the case open to collect fees.
    KeepOpen,
}

/// The weekly-list days.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct WeeklyList {
    /// The day candidates are listed to the creditor.
    #[serde(serialize_with = "serialize_weekday")]
    pub list_weekday: Weekday,
    /// The day listed invoices transfer unless excluded first.
    #[serde(serialize_with = "serialize_weekday")]
    pub cutoff_weekday: Weekday,
}

/// A creditor's collection policy. `Policy::default()` is the FakturaNett/Collectors pattern.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Policy {
    pub mode: Mode,
    /// The warning goes out this many days after the due date.
    pub notice_after_due_days: u32,
    /// A transfer happens no earlier than this many days after the warning.
    pub notice_days: u32,
    /// No transfer before the invoice date plus this.
    pub min_days_from_issue: u32,
    /// No transfer before the due date plus this.
    pub min_days_after_due: u32,
    /// Withdrawing is free up to and including transfer date plus this.
    pub free_withdrawal_days: u32,
    /// The pipeline's first reminder is planned this many days after the transfer.
    pub first_reminder_after_days: u32,
    /// An invoice whose collectable amount is below this is not transferred.
    #[serde(serialize_with = "serialize_amount")]
    pub min_amount: Decimal,
    /// Never transfer on or after the due date plus this many years (foreldelse).
    pub limitation_years: u32,
    /// Move a transfer date on a weekend or Norwegian public holiday to the next business day.
    pub roll_to_business_day: bool,
    pub on_direct_payment: OnDirectPayment,
    pub weekly_list: WeeklyList,
}

impl Default for Policy {
    /// The contract's defaults, in one place.
    fn default() -> Self {
        Policy {
            mode: Mode::Notice,
            notice_after_due_days: 1,
            notice_days: 5,
            min_days_from_issue: 14,
            min_days_after_due: 0,
            free_withdrawal_days: 10,
            first_reminder_after_days: 5,
            min_amount: Decimal::ZERO,
            limitation_years: 3,
            roll_to_business_day: false,
            on_direct_payment: OnDirectPayment::WithdrawIfFree,
            weekly_list: WeeklyList {
                list_weekday: Weekday::Tue,
                cutoff_weekday: Weekday::Thu,
            },
        }
    }
}

/// The accepted range of every day count.
pub const DAY_COUNT_RANGE: std::ops::RangeInclusive<u32> = 0..=365;
/// The accepted range of `limitation_years`.
pub const LIMITATION_YEARS_RANGE: std::ops::RangeInclusive<u32> = 1..=30;

/// A policy key that is missing its proper form. `path` names the key, e.g.
/// `policy.weekly_list.cutoff_weekday`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{path}: {message}")]
pub struct PolicyError {
    pub path: String,
    pub message: String,
}

impl PolicyError {
    fn new(path: &str, message: impl Into<String>) -> Self {
        PolicyError {
            path: path.to_owned(),
            message: message.into(),
        }
    }
}

const ROOT: &str = "policy";
const POLICY_KEYS: &[&str] = &[
    "mode",
    "notice_after_due_days",
    "notice_days",
    "min_days_from_issue",
    "min_days_after_due",
    "free_withdrawal_days",
    "first_reminder_after_days",
    "min_amount",
    "limitation_years",
    "roll_to_business_day",
    "on_direct_payment",
    "weekly_list",
];
const WEEKLY_LIST_KEYS: &[&str] = &["list_weekday", "cutoff_weekday"];

impl Policy {
    /// Reads a policy object; every key is optional and falls back to its default. Unknown keys,
    /// wrong types and out-of-range values are errors naming the key's path.
    pub fn from_json(value: &Value) -> Result<Policy, PolicyError> {
        let object = as_object(value, ROOT)?;
        let mut policy = Policy::default();
        for (key, value) in object {
            let path = crate::json_path::field(ROOT, key);
            policy.set(key, value, &path)?;
        }
        Ok(policy)
    }

    fn set(&mut self, key: &str, value: &Value, path: &str) -> Result<(), PolicyError> {
        match key {
            "mode" => self.mode = parse_mode(value, path)?,
            "notice_after_due_days" => self.notice_after_due_days = day_count(value, path)?,
            "notice_days" => self.notice_days = day_count(value, path)?,
            "min_days_from_issue" => self.min_days_from_issue = day_count(value, path)?,
            "min_days_after_due" => self.min_days_after_due = day_count(value, path)?,
            "free_withdrawal_days" => self.free_withdrawal_days = day_count(value, path)?,
            "first_reminder_after_days" => self.first_reminder_after_days = day_count(value, path)?,
            "min_amount" => self.min_amount = min_amount(value, path)?,
            "limitation_years" => {
                self.limitation_years = integer_in(value, path, LIMITATION_YEARS_RANGE)?
            }
            "roll_to_business_day" => self.roll_to_business_day = boolean(value, path)?,
            "on_direct_payment" => self.on_direct_payment = parse_on_direct_payment(value, path)?,
            "weekly_list" => self.weekly_list = self.weekly_list.with_json(value, path)?,
            _ => return Err(unknown_key(path, POLICY_KEYS)),
        }
        Ok(())
    }

    /// The policy as a JSON object with every key spelled out (what a server stores).
    pub fn to_json(&self) -> Value {
        // Serialising plain data into a `Value` cannot fail; fall back to an empty object anyway.
        serde_json::to_value(self).unwrap_or_else(|_| Value::Object(Map::new()))
    }
}

impl WeeklyList {
    fn with_json(mut self, value: &Value, path: &str) -> Result<WeeklyList, PolicyError> {
        for (key, value) in as_object(value, path)? {
            let path = crate::json_path::field(path, key);
            match key.as_str() {
                "list_weekday" => self.list_weekday = weekday(value, &path)?,
                "cutoff_weekday" => self.cutoff_weekday = weekday(value, &path)?,
                _ => return Err(unknown_key(&path, WEEKLY_LIST_KEYS)),
            }
        }
        Ok(self)
    }
}

impl<'de> Deserialize<'de> for Policy {
    /// Accepts exactly what `Policy::from_json` accepts, so a stored policy reads back unchanged.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Policy::from_json(&value).map_err(serde::de::Error::custom)
    }
}

fn as_object<'a>(value: &'a Value, path: &str) -> Result<&'a Map<String, Value>, PolicyError> {
    value
        .as_object()
        .ok_or_else(|| PolicyError::new(path, format!("expected an object, got {}", kind(value))))
}

fn unknown_key(path: &str, known: &[&str]) -> PolicyError {
    PolicyError::new(
        path,
        format!("unknown key; known keys: {}", known.join(", ")),
    )
}

/// A short description of a JSON value's type, for error messages.
pub(crate) fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn day_count(value: &Value, path: &str) -> Result<u32, PolicyError> {
    integer_in(value, path, DAY_COUNT_RANGE)
}

fn integer_in(
    value: &Value,
    path: &str,
    range: std::ops::RangeInclusive<u32>,
) -> Result<u32, PolicyError> {
    let out_of_range = || {
        PolicyError::new(
            path,
            format!(
                "must be a whole number from {} to {}",
                range.start(),
                range.end()
            ),
        )
    };
    match value {
        Value::Number(number) => {
            let whole = number.as_i64().ok_or_else(out_of_range)?;
            u32::try_from(whole)
                .ok()
                .filter(|n| range.contains(n))
                .ok_or_else(out_of_range)
        }
        other => Err(PolicyError::new(
            path,
            format!("expected a whole number, got {}", kind(other)),
        )),
    }
}

fn boolean(value: &Value, path: &str) -> Result<bool, PolicyError> {
    value.as_bool().ok_or_else(|| {
        PolicyError::new(path, format!("expected true or false, got {}", kind(value)))
    })
}

fn string<'a>(value: &'a Value, path: &str) -> Result<&'a str, PolicyError> {
    value
        .as_str()
        .ok_or_else(|| PolicyError::new(path, format!("expected a string, got {}", kind(value))))
}

fn min_amount(value: &Value, path: &str) -> Result<Decimal, PolicyError> {
    let text = string(value, path)?;
    let amount = parse_amount(text).map_err(|e| PolicyError::new(path, e.to_string()))?;
    if amount.is_sign_negative() && !amount.is_zero() {
        return Err(PolicyError::new(path, "must not be negative"));
    }
    Ok(amount)
}

fn parse_mode(value: &Value, path: &str) -> Result<Mode, PolicyError> {
    match string(value, path)? {
        "notice" => Ok(Mode::Notice),
        "weekly_list" => Ok(Mode::WeeklyList),
        other => Err(PolicyError::new(
            path,
            format!("unknown mode {other:?}; expected \"notice\" or \"weekly_list\""),
        )),
    }
}

fn parse_on_direct_payment(value: &Value, path: &str) -> Result<OnDirectPayment, PolicyError> {
    match string(value, path)? {
        "withdraw_if_free" => Ok(OnDirectPayment::WithdrawIfFree),
        "always_withdraw" => Ok(OnDirectPayment::AlwaysWithdraw),
        "keep_open" => Ok(OnDirectPayment::KeepOpen),
        other => Err(PolicyError::new(
            path,
            format!(
                "unknown value {other:?}; expected \"withdraw_if_free\", \"always_withdraw\" or \"keep_open\""
            ),
        )),
    }
}

const WEEKDAY_NAMES: [(&str, Weekday); 7] = [
    ("monday", Weekday::Mon),
    ("tuesday", Weekday::Tue),
    ("wednesday", Weekday::Wed),
    ("thursday", Weekday::Thu),
    ("friday", Weekday::Fri),
    ("saturday", Weekday::Sat),
    ("sunday", Weekday::Sun),
];

/// Parses a lowercase English weekday name ("monday" … "sunday").
pub fn parse_weekday(name: &str) -> Option<Weekday> {
    WEEKDAY_NAMES
        .iter()
        .find(|(known, _)| *known == name)
        .map(|(_, weekday)| *weekday)
}

/// The lowercase English name of a weekday.
pub fn weekday_name(weekday: Weekday) -> &'static str {
    WEEKDAY_NAMES
        .iter()
        .find(|(_, known)| *known == weekday)
        .map_or("monday", |(name, _)| name)
}

fn weekday(value: &Value, path: &str) -> Result<Weekday, PolicyError> {
    let name = string(value, path)?;
    parse_weekday(name).ok_or_else(|| {
        PolicyError::new(
            path,
            format!("unknown weekday {name:?}; expected a lowercase English name like \"tuesday\""),
        )
    })
}

fn serialize_weekday<S: Serializer>(weekday: &Weekday, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(weekday_name(*weekday))
}

fn serialize_amount<S: Serializer>(amount: &Decimal, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&format_amount(*amount))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;
    use serde_json::json;

    fn error(value: Value) -> PolicyError {
        Policy::from_json(&value).unwrap_err()
    }

    #[test]
    fn empty_object_gives_the_contract_defaults() {
        let policy = Policy::from_json(&json!({})).unwrap();
        assert_eq!(policy, Policy::default());
        assert_eq!(policy.notice_days, 5);
        assert_eq!(policy.notice_after_due_days, 1);
        assert_eq!(policy.min_days_from_issue, 14);
        assert_eq!(policy.free_withdrawal_days, 10);
        assert_eq!(policy.limitation_years, 3);
        assert_eq!(policy.weekly_list.list_weekday, Weekday::Tue);
        assert_eq!(policy.weekly_list.cutoff_weekday, Weekday::Thu);
    }

    #[test]
    fn every_key_can_be_set() {
        let policy = Policy::from_json(&json!({
            "mode": "weekly_list", "notice_after_due_days": 2, "notice_days": 7,
            "min_days_from_issue": 0, "min_days_after_due": 14, "free_withdrawal_days": 3,
            "first_reminder_after_days": 9, "min_amount": "100.50", "limitation_years": 10,
            "roll_to_business_day": true, "on_direct_payment": "keep_open",
            "weekly_list": { "list_weekday": "monday", "cutoff_weekday": "friday" }
        }))
        .unwrap();
        assert_eq!(policy.mode, Mode::WeeklyList);
        assert_eq!(policy.min_amount, dec!(100.50));
        assert_eq!(policy.on_direct_payment, OnDirectPayment::KeepOpen);
        assert_eq!(policy.weekly_list.list_weekday, Weekday::Mon);
        assert_eq!(policy.weekly_list.cutoff_weekday, Weekday::Fri);
        assert_eq!(policy.limitation_years, 10);
    }

    #[test]
    fn partial_weekly_list_keeps_the_other_default() {
        let policy =
            Policy::from_json(&json!({ "weekly_list": { "cutoff_weekday": "friday" } })).unwrap();
        assert_eq!(policy.weekly_list.list_weekday, Weekday::Tue);
        assert_eq!(policy.weekly_list.cutoff_weekday, Weekday::Fri);
    }

    #[test]
    fn unknown_keys_are_rejected_with_their_path() {
        assert_eq!(
            error(json!({ "notice_dayz": 5 })).path,
            "policy.notice_dayz"
        );
        let nested = error(json!({ "weekly_list": { "cutof_weekday": "friday" } }));
        assert_eq!(nested.path, "policy.weekly_list.cutof_weekday");
    }

    #[test]
    fn wrong_types_are_rejected() {
        assert_eq!(
            error(json!({ "notice_days": "5" })).path,
            "policy.notice_days"
        );
        assert_eq!(
            error(json!({ "notice_days": 5.5 })).path,
            "policy.notice_days"
        );
        assert_eq!(
            error(json!({ "roll_to_business_day": 1 })).path,
            "policy.roll_to_business_day"
        );
        assert_eq!(
            error(json!({ "min_amount": 100 })).path,
            "policy.min_amount"
        );
        assert_eq!(
            error(json!({ "weekly_list": [] })).path,
            "policy.weekly_list"
        );
        assert_eq!(error(json!([])).path, "policy");
    }

    #[test]
    fn out_of_range_values_are_rejected() {
        assert_eq!(
            error(json!({ "notice_days": -1 })).path,
            "policy.notice_days"
        );
        assert_eq!(
            error(json!({ "notice_days": 366 })).path,
            "policy.notice_days"
        );
        assert!(Policy::from_json(&json!({ "notice_days": 365 })).is_ok());
        assert_eq!(
            error(json!({ "limitation_years": 0 })).path,
            "policy.limitation_years"
        );
        assert_eq!(
            error(json!({ "limitation_years": 31 })).path,
            "policy.limitation_years"
        );
        assert_eq!(
            error(json!({ "min_amount": "-1.00" })).path,
            "policy.min_amount"
        );
        assert_eq!(
            error(json!({ "min_amount": "1.005" })).path,
            "policy.min_amount"
        );
        assert_eq!(
            error(json!({ "free_withdrawal_days": 1e20 })).path,
            "policy.free_withdrawal_days"
        );
    }

    #[test]
    fn weekdays_must_be_lowercase_english_names() {
        let e = error(json!({ "weekly_list": { "list_weekday": "Tuesday" } }));
        assert_eq!(e.path, "policy.weekly_list.list_weekday");
        assert!(
            error(json!({ "weekly_list": { "list_weekday": "tisdag" } }))
                .message
                .contains("weekday")
        );
        assert_eq!(parse_weekday("sunday"), Some(Weekday::Sun));
        assert_eq!(weekday_name(Weekday::Wed), "wednesday");
    }

    #[test]
    fn bad_enum_values_are_rejected() {
        assert_eq!(error(json!({ "mode": "weekly" })).path, "policy.mode");
        assert_eq!(
            error(json!({ "on_direct_payment": "withdraw" })).path,
            "policy.on_direct_payment"
        );
    }

    #[test]
    fn serialized_policy_reads_back_unchanged() {
        let policy = Policy::from_json(&json!({
            "mode": "weekly_list", "min_amount": "5", "weekly_list": { "list_weekday": "sunday" }
        }))
        .unwrap();
        let stored = policy.to_json();
        assert_eq!(stored["min_amount"], json!("5.00"));
        assert_eq!(stored["weekly_list"]["list_weekday"], json!("sunday"));
        assert_eq!(stored["mode"], json!("weekly_list"));
        assert_eq!(Policy::from_json(&stored).unwrap(), policy);
        let via_serde: Policy = serde_json::from_value(stored).unwrap();
        assert_eq!(via_serde, policy);
    }

    #[test]
    fn error_display_is_path_then_message() {
        let e = error(json!({ "notice_days": -1 }));
        assert_eq!(
            e.to_string(),
            "policy.notice_days: must be a whole number from 0 to 365"
        );
    }
}
