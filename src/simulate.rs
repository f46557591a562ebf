//! Running a scenario on a simulated clock through the lifecycle engine, checking the result
//! against `expect`, and the whole `forfall simulate` command as a pure function.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use serde_json::{Map, Value};

use crate::lifecycle::{
    CORE_ACTIONS, Decision, InvoiceFacts, InvoiceState, apply_event, evaluate, next_action_on,
};
use crate::rules::dates::next_day;
use crate::scenario::{Scenario, ScenarioEvent, Target};

// ---------------------------------------------------------------------------------------------
// Running
// ---------------------------------------------------------------------------------------------

/// The starting state of every invoice, in file order; a customer's opt-out is copied onto its
/// invoices.
pub fn initial_states(scenario: &Scenario) -> Vec<InvoiceState> {
    let customer_opt_out: HashMap<&str, bool> = scenario
        .customers
        .iter()
        .map(|c| (c.id.as_str(), c.opt_out))
        .collect();
    scenario
        .invoices
        .iter()
        .map(|invoice| {
            let mut facts =
                InvoiceFacts::new(invoice.issued, invoice.due, invoice.amount, invoice.seen);
            facts.opt_out = invoice.opt_out;
            facts.customer_opt_out = customer_opt_out
                .get(invoice.customer.as_str())
                .copied()
                .unwrap_or(false);
            InvoiceState::new(invoice.id.clone(), facts)
        })
        .collect()
}

/// Which invoices (by position) each event reaches, in invoice-list order.
struct Targets {
    by_invoice: HashMap<String, usize>,
    by_customer: HashMap<String, Vec<usize>>,
}

impl Targets {
    fn new(scenario: &Scenario) -> Self {
        let mut by_invoice = HashMap::new();
        let mut by_customer: HashMap<String, Vec<usize>> = HashMap::new();
        for (index, invoice) in scenario.invoices.iter().enumerate() {
            by_invoice.insert(invoice.id.clone(), index);
            by_customer
                .entry(invoice.customer.clone())
                .or_default()
                .push(index);
        }
        Targets {
            by_invoice,
            by_customer,
        }
    }

    fn of(&self, target: &Target) -> Vec<usize> {
        match target {
            Target::Invoice(id) => self
                .by_invoice
                .get(id)
                .map(|&i| vec![i])
                .unwrap_or_default(),
            Target::Customer(id) => self.by_customer.get(id).cloned().unwrap_or_default(),
        }
    }
}

fn events_by_day(scenario: &Scenario) -> BTreeMap<NaiveDate, Vec<&ScenarioEvent>> {
    let mut by_day: BTreeMap<NaiveDate, Vec<&ScenarioEvent>> = BTreeMap::new();
    for event in &scenario.events {
        by_day.entry(event.on).or_default().push(event);
    }
    by_day
}

/// One simulated day: the day's events in file order, then every invoice's evaluation in file order.
fn run_day(
    scenario: &Scenario,
    states: &mut [InvoiceState],
    targets: &Targets,
    events: &[&ScenarioEvent],
    day: NaiveDate,
    out: &mut Vec<Decision>,
) {
    for event in events {
        for index in targets.of(&event.target) {
            if let Some(state) = states.get_mut(index) {
                out.extend(apply_event(&scenario.policy, state, &event.event, day));
            }
        }
    }
    for state in states.iter_mut() {
        out.extend(evaluate(&scenario.policy, state, day));
    }
}

/// Runs the scenario from `from` to `until` and returns every decision in output order: day, then
/// event order, then invoice order.
///
/// Days on which nothing can happen (no event, no invoice's `next_action_on`) are skipped; that
/// gives the same result as running every day (see [`run_every_day`]) and is what a server does.
pub fn run(scenario: &Scenario) -> Vec<Decision> {
    let mut states = initial_states(scenario);
    let targets = Targets::new(scenario);
    let events = events_by_day(scenario);
    let mut out = Vec::new();
    let mut day = scenario.from;
    loop {
        let todays = events.get(&day).map(Vec::as_slice).unwrap_or_default();
        run_day(scenario, &mut states, &targets, todays, day, &mut out);
        if day >= scenario.until {
            break;
        }
        let tomorrow = next_day(day);
        let next_event = events.range(tomorrow..).next().map(|(d, _)| *d);
        let next_action = states
            .iter()
            .filter_map(|s| next_action_on(&scenario.policy, s))
            .map(|d| d.max(tomorrow))
            .min();
        match next_event.into_iter().chain(next_action).min() {
            Some(next) if next <= scenario.until && next > day => day = next,
            _ => break,
        }
    }
    out
}

/// The reference loop: every civil day from `from` to `until`, inclusive.
pub fn run_every_day(scenario: &Scenario) -> Vec<Decision> {
    let mut states = initial_states(scenario);
    let targets = Targets::new(scenario);
    let events = events_by_day(scenario);
    let mut out = Vec::new();
    let mut day = scenario.from;
    loop {
        let todays = events.get(&day).map(Vec::as_slice).unwrap_or_default();
        run_day(scenario, &mut states, &targets, todays, day, &mut out);
        if day >= scenario.until || day == NaiveDate::MAX {
            break;
        }
        day = next_day(day);
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Output
// ---------------------------------------------------------------------------------------------

/// JSON lines, one per decision. `scenario` adds a `"scenario"` field first (directory mode).
pub fn render_lines(decisions: &[Decision], explain: bool, scenario: Option<&str>) -> String {
    let mut text = String::new();
    for decision in decisions {
        let mut line = Map::new();
        if let Some(name) = scenario {
            line.insert("scenario".into(), Value::String(name.to_owned()));
        }
        line.extend(decision.to_json(explain));
        text.push_str(&Value::Object(line).to_string());
        text.push('\n');
    }
    text
}

// ---------------------------------------------------------------------------------------------
// Checking
// ---------------------------------------------------------------------------------------------

/// One difference between the expected and the actual core actions. Positions count from 1.
#[derive(Debug, Clone, PartialEq)]
pub enum DiffEntry {
    /// Expected #`expected` and actual #`actual` stand at the same place but differ in `fields`.
    Mismatch {
        expected: usize,
        expected_entry: Map<String, Value>,
        actual: usize,
        actual_entry: Map<String, Value>,
        fields: Vec<String>,
    },
    /// Expected, but no such action was taken.
    Missing {
        expected: usize,
        entry: Map<String, Value>,
    },
    /// Taken, but not expected.
    Extra {
        actual: usize,
        entry: Map<String, Value>,
    },
}

/// Why the actual core actions do not match `expect`.
#[derive(Debug, Clone, PartialEq)]
pub struct Diff {
    pub expected_count: usize,
    pub actual_count: usize,
    pub entries: Vec<DiffEntry>,
}

impl fmt::Display for Diff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "  expected {} core actions, got {} (positions count from 1)",
            self.expected_count, self.actual_count
        )?;
        for (n, entry) in self.entries.iter().enumerate() {
            let marker = if n == 0 { "   <- first mismatch" } else { "" };
            match entry {
                DiffEntry::Mismatch {
                    expected,
                    expected_entry,
                    actual,
                    actual_entry,
                    fields,
                } => {
                    writeln!(
                        f,
                        "  expected #{expected}: {}{marker}",
                        Value::Object(expected_entry.clone())
                    )?;
                    writeln!(
                        f,
                        "  actual   #{actual}: {}",
                        Value::Object(actual_entry.clone())
                    )?;
                    writeln!(f, "    differs in: {}", fields.join(", "))?;
                }
                DiffEntry::Missing { expected, entry } => {
                    writeln!(
                        f,
                        "  missing  #{expected}: {}{marker}",
                        Value::Object(entry.clone())
                    )?;
                }
                DiffEntry::Extra { actual, entry } => {
                    writeln!(
                        f,
                        "  extra    #{actual}: {}{marker}",
                        Value::Object(entry.clone())
                    )?;
                }
            }
        }
        Ok(())
    }
}

fn is_core(entry: &Map<String, Value>) -> bool {
    entry
        .get("action")
        .and_then(Value::as_str)
        .is_none_or(|action| CORE_ACTIONS.contains(&action))
}

/// The fields of `expected` that `actual` does not have equal.
fn differing_fields(expected: &Map<String, Value>, actual: &Map<String, Value>) -> Vec<String> {
    expected
        .iter()
        .filter(|(key, value)| actual.get(key.as_str()) != Some(value))
        .map(|(key, _)| key.clone())
        .collect()
}

/// Compares the core actions with `expect`: same list, same order, every field given in an
/// expect entry equal (fields not given are not compared). Expect entries naming a non-core
/// action are ignored, as are non-core actual actions.
pub fn check(expect: &[Map<String, Value>], actual: &[Decision]) -> Result<(), Diff> {
    let expected: Vec<&Map<String, Value>> = expect.iter().filter(|e| is_core(e)).collect();
    let actual: Vec<Map<String, Value>> = actual
        .iter()
        .map(|d| d.action.to_json())
        .filter(is_core)
        .collect();
    let matches = |e: usize, a: usize| differing_fields(expected[e], &actual[a]).is_empty();
    if expected.len() == actual.len() && (0..expected.len()).all(|i| matches(i, i)) {
        return Ok(());
    }
    let entries = align(&expected, &actual, matches);
    Err(Diff {
        expected_count: expected.len(),
        actual_count: actual.len(),
        entries,
    })
}

/// Aligns the two lists by their longest common subsequence of matching entries; between two
/// matched pairs, unmatched entries are paired up as mismatches, the rest are missing or extra.
fn align(
    expected: &[&Map<String, Value>],
    actual: &[Map<String, Value>],
    matches: impl Fn(usize, usize) -> bool,
) -> Vec<DiffEntry> {
    let (n, m) = (expected.len(), actual.len());
    if n.saturating_mul(m) > MAX_ALIGNMENT_CELLS {
        return align_by_position(expected, actual, matches);
    }
    // lcs[i][j] = length of the LCS of expected[i..] and actual[j..].
    let mut lcs = vec![vec![0usize; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if matches(i, j) {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let mut entries = Vec::new();
    let (mut i, mut j) = (0, 0);
    let (mut pending_e, mut pending_a) = (Vec::new(), Vec::new());
    while i < n || j < m {
        if i < n && j < m && matches(i, j) && lcs[i][j] == lcs[i + 1][j + 1] + 1 {
            flush(
                &mut entries,
                &mut pending_e,
                &mut pending_a,
                expected,
                actual,
            );
            i += 1;
            j += 1;
        } else if j < m && (i == n || lcs[i][j + 1] >= lcs[i + 1][j]) {
            pending_a.push(j);
            j += 1;
        } else {
            pending_e.push(i);
            i += 1;
        }
    }
    flush(
        &mut entries,
        &mut pending_e,
        &mut pending_a,
        expected,
        actual,
    );
    entries
}

/// Above this many cells the alignment table would be too big; compare position by position.
const MAX_ALIGNMENT_CELLS: usize = 4_000_000;

fn align_by_position(
    expected: &[&Map<String, Value>],
    actual: &[Map<String, Value>],
    matches: impl Fn(usize, usize) -> bool,
) -> Vec<DiffEntry> {
    let mut entries = Vec::new();
    let (mut pending_e, mut pending_a) = (Vec::new(), Vec::new());
    for i in 0..expected.len().max(actual.len()) {
        if i < expected.len() && i < actual.len() && matches(i, i) {
            continue;
        }
        if i < expected.len() {
            pending_e.push(i);
        }
        if i < actual.len() {
            pending_a.push(i);
        }
        flush(
            &mut entries,
            &mut pending_e,
            &mut pending_a,
            expected,
            actual,
        );
    }
    entries
}

fn flush(
    entries: &mut Vec<DiffEntry>,
    pending_e: &mut Vec<usize>,
    pending_a: &mut Vec<usize>,
    expected: &[&Map<String, Value>],
    actual: &[Map<String, Value>],
) {
    let paired = pending_e.len().min(pending_a.len());
    for (&e, &a) in pending_e.iter().zip(pending_a.iter()) {
        entries.push(DiffEntry::Mismatch {
            expected: e + 1,
            expected_entry: expected[e].clone(),
            actual: a + 1,
            actual_entry: actual[a].clone(),
            fields: differing_fields(expected[e], &actual[a]),
        });
    }
    for &e in &pending_e[paired..] {
        entries.push(DiffEntry::Missing {
            expected: e + 1,
            entry: expected[e].clone(),
        });
    }
    for &a in &pending_a[paired..] {
        entries.push(DiffEntry::Extra {
            actual: a + 1,
            entry: actual[a].clone(),
        });
    }
    pending_e.clear();
    pending_a.clear();
}

// ---------------------------------------------------------------------------------------------
// The command
// ---------------------------------------------------------------------------------------------

/// `forfall simulate` flags.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SimulateOptions {
    /// Compare with `expect`.
    pub check: bool,
    /// Add `"explain": {"rule":..,"inputs":{..}}` to every printed action.
    pub explain: bool,
}

/// What the command prints and its exit code.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CliOutput {
    pub stdout: String,
    pub stderr: String,
    pub exit_code: i32,
}

/// Exit codes.
pub const EXIT_OK: i32 = 0;
pub const EXIT_MISMATCH: i32 = 1;
pub const EXIT_BAD_INPUT: i32 = 2;

impl CliOutput {
    fn bad_input(stderr: String) -> Self {
        CliOutput {
            stdout: String::new(),
            stderr,
            exit_code: EXIT_BAD_INPUT,
        }
    }
}

/// `forfall simulate PATH [--check] [--explain]` for a file or a directory.
///
/// - File: the actions as JSON lines on stdout. With `--check`, the verdict goes to stderr
///   (`ok NAME`, or `FAILED NAME` and the diff) and the exit code is 1 on a mismatch.
/// - Directory: every `*.json` in it (not recursive), sorted by name. Without `--check`, every
///   file's actions with a `"scenario"` field. With `--check`, `ok NAME` / `FAILED NAME` and the
///   diff per file, then `N passed, M failed`.
/// - Bad input anywhere: exit 2, `FILE: PATH: problem` lines on stderr, nothing on stdout.
pub fn simulate_cli(path: &Path, options: SimulateOptions) -> CliOutput {
    if path.is_dir() {
        simulate_dir(path, options)
    } else {
        simulate_file(path, options)
    }
}

fn load(path: &Path) -> Result<Scenario, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    Scenario::from_slice(&bytes).map_err(|e| format!("{}: {e}", path.display()))
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// Checks one scenario: `Ok` or the diff.
fn check_scenario(scenario: &Scenario, decisions: &[Decision]) -> Result<(), Diff> {
    check(scenario.expect.as_deref().unwrap_or_default(), decisions)
}

fn simulate_file(path: &Path, options: SimulateOptions) -> CliOutput {
    let scenario = match load(path) {
        Ok(scenario) => scenario,
        Err(message) => return CliOutput::bad_input(message + "\n"),
    };
    let decisions = run(&scenario);
    let stdout = render_lines(&decisions, options.explain, None);
    if !options.check {
        return CliOutput {
            stdout,
            stderr: String::new(),
            exit_code: EXIT_OK,
        };
    }
    let name = file_name(path);
    match check_scenario(&scenario, &decisions) {
        Ok(()) => CliOutput {
            stdout,
            stderr: format!("ok {name}\n"),
            exit_code: EXIT_OK,
        },
        Err(diff) => CliOutput {
            stdout,
            stderr: format!("FAILED {name}\n{diff}"),
            exit_code: EXIT_MISMATCH,
        },
    }
}

/// The `*.json` files directly in `dir`, sorted by name.
fn scenario_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("{}: cannot read: {e}", dir.display()))?;
    let mut files = Vec::new();
    for entry in entries {
        let path = entry
            .map_err(|e| format!("{}: cannot read: {e}", dir.display()))?
            .path();
        if path.is_file() && path.extension().is_some_and(|ext| ext == "json") {
            files.push(path);
        }
    }
    files.sort_by_key(|path| file_name(path));
    if files.is_empty() {
        return Err(format!(
            "{}: no scenario files (*.json) in this directory",
            dir.display()
        ));
    }
    Ok(files)
}

fn simulate_dir(dir: &Path, options: SimulateOptions) -> CliOutput {
    let files = match scenario_files(dir) {
        Ok(files) => files,
        Err(message) => return CliOutput::bad_input(message + "\n"),
    };
    let mut loaded = Vec::new();
    let mut problems = String::new();
    for path in &files {
        match load(path) {
            Ok(scenario) => loaded.push((file_name(path), scenario)),
            Err(message) => {
                problems.push_str(&message);
                problems.push('\n');
            }
        }
    }
    if !problems.is_empty() {
        return CliOutput::bad_input(problems);
    }
    let mut stdout = String::new();
    let (mut passed, mut failed) = (0usize, 0usize);
    for (name, scenario) in &loaded {
        let decisions = run(scenario);
        if !options.check {
            stdout.push_str(&render_lines(&decisions, options.explain, Some(name)));
            continue;
        }
        match check_scenario(scenario, &decisions) {
            Ok(()) => {
                passed += 1;
                stdout.push_str(&format!("ok {name}\n"));
            }
            Err(diff) => {
                failed += 1;
                stdout.push_str(&format!("FAILED {name}\n{diff}"));
            }
        }
    }
    if !options.check {
        return CliOutput {
            stdout,
            stderr: String::new(),
            exit_code: EXIT_OK,
        };
    }
    stdout.push_str(&format!("{passed} passed, {failed} failed\n"));
    let exit_code = if failed == 0 { EXIT_OK } else { EXIT_MISMATCH };
    CliOutput {
        stdout,
        stderr: String::new(),
        exit_code,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lifecycle::{Action, ActionKind, Inputs};
    use crate::rules::dates::parse_civil_date;
    use crate::rules::eligibility::Reason;
    use serde_json::json;

    fn decision(on: &str, invoice: &str, kind: ActionKind) -> Decision {
        let action = Action {
            on: parse_civil_date(on).unwrap(),
            invoice: invoice.into(),
            kind,
        };
        Decision::new(action, "test", Inputs::new())
    }

    fn actual() -> Vec<Decision> {
        let transfer_on = parse_civil_date("2026-11-21").unwrap();
        vec![
            decision("2026-11-16", "1", ActionKind::NoticeSent { transfer_on }),
            decision(
                "2026-11-16",
                "2",
                ActionKind::Skipped {
                    reason: Reason::OptedOut,
                },
            ),
            decision(
                "2026-11-18",
                "1",
                ActionKind::Cancelled {
                    reason: Reason::Paid,
                },
            ),
        ]
    }

    fn entries(value: Value) -> Vec<Map<String, Value>> {
        value
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_object().unwrap().clone())
            .collect()
    }

    #[test]
    fn fields_not_given_in_expect_are_not_compared() {
        let expect = entries(json!([
            { "invoice": "1", "action": "notice_sent" },
            { "on": "2026-11-16", "action": "skipped" },
            { "action": "cancelled", "reason": "paid" }
        ]));
        assert_eq!(check(&expect, &actual()), Ok(()));
    }

    #[test]
    fn non_core_expect_entries_are_ignored() {
        let expect = entries(json!([
            { "invoice": "1", "action": "notice_sent" },
            { "invoice": "1", "action": "notification_queued" },
            { "invoice": "2", "action": "skipped" },
            { "invoice": "1", "action": "cancelled" }
        ]));
        assert_eq!(check(&expect, &actual()), Ok(()));
    }

    #[test]
    fn a_missing_action_in_the_middle_is_reported_as_missing_not_as_a_shifted_list() {
        let expect = entries(json!([
            { "invoice": "1", "action": "notice_sent" },
            { "invoice": "3", "action": "held" },
            { "invoice": "2", "action": "skipped" },
            { "invoice": "1", "action": "cancelled" }
        ]));
        let diff = check(&expect, &actual()).unwrap_err();
        assert_eq!(diff.entries.len(), 1);
        assert!(matches!(
            &diff.entries[0],
            DiffEntry::Missing { expected: 2, .. }
        ));
    }

    #[test]
    fn extra_and_mismatched_actions_are_reported_with_positions_and_fields() {
        let expect = entries(json!([
            { "invoice": "1", "action": "notice_sent", "transfer_on": "2026-11-22" },
            { "invoice": "2", "action": "skipped" }
        ]));
        let diff = check(&expect, &actual()).unwrap_err();
        assert_eq!(diff.entries.len(), 2);
        match &diff.entries[0] {
            DiffEntry::Mismatch {
                expected: 1,
                actual: 1,
                fields,
                ..
            } => assert_eq!(fields, &["transfer_on"]),
            other => panic!("unexpected {other:?}"),
        }
        assert!(matches!(
            &diff.entries[1],
            DiffEntry::Extra { actual: 3, .. }
        ));
        let text = diff.to_string();
        assert!(text.contains("expected #1: {\"invoice\":\"1\",\"action\":\"notice_sent\",\"transfer_on\":\"2026-11-22\"}   <- first mismatch"), "{text}");
        assert!(text.contains("extra    #3: {\"on\":\"2026-11-18\",\"invoice\":\"1\",\"action\":\"cancelled\",\"reason\":\"paid\"}"), "{text}");
    }

    #[test]
    fn huge_lists_fall_back_to_positional_comparison() {
        let many: Vec<Decision> = (0..2_100).flat_map(|_| actual()).collect();
        let mut expect: Vec<Map<String, Value>> = many.iter().map(|d| d.action.to_json()).collect();
        expect[5].insert("invoice".into(), json!("nope"));
        let diff = check(&expect, &many).unwrap_err();
        assert_eq!(diff.entries.len(), 1);
        assert!(matches!(
            &diff.entries[0],
            DiffEntry::Mismatch {
                expected: 6,
                actual: 6,
                ..
            }
        ));
    }

    #[test]
    fn json_types_must_match_exactly() {
        let expect = entries(json!([
            { "action": "notice_sent" }, { "action": "skipped" }, { "action": "cancelled", "on": 20261118 }
        ]));
        assert!(check(&expect, &actual()).is_err());
    }

    #[test]
    fn render_lines_adds_scenario_first_and_explain_last() {
        let text = render_lines(&actual()[..1], true, Some("s.json"));
        assert_eq!(
            text,
            "{\"scenario\":\"s.json\",\"on\":\"2026-11-16\",\"invoice\":\"1\",\"action\":\"notice_sent\",\"transfer_on\":\"2026-11-21\",\"explain\":{\"rule\":\"test\",\"inputs\":{}}}\n"
        );
    }
}
