//! The `forfall simulate` behaviour, end to end through `simulate_cli`.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use forfall::simulate::{EXIT_BAD_INPUT, EXIT_MISMATCH, EXIT_OK, SimulateOptions, simulate_cli};
use serde_json::{Value, json};

const CHECK: SimulateOptions = SimulateOptions {
    check: true,
    explain: false,
};
const PLAIN: SimulateOptions = SimulateOptions {
    check: false,
    explain: false,
};

/// A fresh empty directory under the system temp dir.
fn temp_dir(label: &str) -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let dir =
        std::env::temp_dir().join(format!("forfall-engine-{}-{label}-{n}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

fn write(dir: &Path, name: &str, value: &Value) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, serde_json::to_vec_pretty(value).unwrap()).unwrap();
    path
}

fn basic(expect: Value) -> Value {
    json!({
        "name": "basic", "from": "2026-11-01", "until": "2026-12-31",
        "customers": [ { "id": "C1" } ],
        "invoices": [ { "id": "1001", "customer": "C1", "issued": "2026-11-01", "due": "2026-11-15", "amount": "1250.00" } ],
        "events": [ { "on": "2026-11-18", "type": "payment", "invoice": "1001", "amount": "250.00", "via": "creditor" } ],
        "expect": expect
    })
}

fn good_expect() -> Value {
    json!([
        { "on": "2026-11-16", "invoice": "1001", "action": "notice_sent", "transfer_on": "2026-11-21" },
        { "on": "2026-11-21", "invoice": "1001", "action": "transferred", "amount": "1000.00" }
    ])
}

#[test]
fn single_file_prints_json_lines_and_exits_0() {
    let dir = temp_dir("single");
    let path = write(&dir, "basic.json", &basic(good_expect()));
    let out = simulate_cli(&path, PLAIN);
    assert_eq!(out.exit_code, EXIT_OK);
    assert_eq!(
        out.stdout,
        "{\"on\":\"2026-11-16\",\"invoice\":\"1001\",\"action\":\"notice_sent\",\"transfer_on\":\"2026-11-21\"}\n\
         {\"on\":\"2026-11-21\",\"invoice\":\"1001\",\"action\":\"transferred\",\"amount\":\"1000.00\",\"free_withdrawal_until\":\"2026-12-01\",\"first_reminder_on\":\"2026-11-26\"}\n"
    );
    assert_eq!(out.stderr, "");
}

#[test]
fn explain_adds_rule_and_inputs_to_every_line() {
    let dir = temp_dir("explain");
    let path = write(&dir, "basic.json", &basic(good_expect()));
    let out = simulate_cli(
        &path,
        SimulateOptions {
            check: false,
            explain: true,
        },
    );
    for line in out.stdout.lines() {
        let value: Value = serde_json::from_str(line).unwrap();
        assert!(value["explain"]["rule"].is_string(), "{line}");
        assert!(value["explain"]["inputs"].is_object(), "{line}");
    }
    assert!(out.stdout.contains("\"rule\":\"notice.transfer_on\""));
}

#[test]
fn single_file_check_passes_with_matching_expect() {
    let dir = temp_dir("check-ok");
    let path = write(&dir, "basic.json", &basic(good_expect()));
    let out = simulate_cli(&path, CHECK);
    assert_eq!(out.exit_code, EXIT_OK, "{}", out.stderr);
    assert_eq!(out.stderr, "ok basic.json\n");
}

#[test]
fn single_file_check_mismatch_exits_1_with_a_readable_diff() {
    let dir = temp_dir("check-bad");
    let expect = json!([
        { "on": "2026-11-16", "invoice": "1001", "action": "notice_sent", "transfer_on": "2026-11-21" },
        { "on": "2026-11-21", "invoice": "1001", "action": "transferred", "amount": "1250.00" }
    ]);
    let path = write(&dir, "basic.json", &basic(expect));
    let out = simulate_cli(&path, CHECK);
    assert_eq!(out.exit_code, EXIT_MISMATCH);
    assert!(
        out.stderr.starts_with("FAILED basic.json\n"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("expected #2: {\"on\":\"2026-11-21\",\"invoice\":\"1001\",\"action\":\"transferred\",\"amount\":\"1250.00\"}   <- first mismatch"), "{}", out.stderr);
    assert!(out.stderr.contains("actual   #2: {"), "{}", out.stderr);
    assert!(out.stderr.contains("differs in: amount"), "{}", out.stderr);
}

#[test]
fn missing_expect_is_compared_as_an_empty_list() {
    let dir = temp_dir("no-expect");
    let mut scenario = basic(json!([]));
    scenario.as_object_mut().unwrap().remove("expect");
    let path = write(&dir, "basic.json", &scenario);
    let out = simulate_cli(&path, CHECK);
    assert_eq!(out.exit_code, EXIT_MISMATCH);
    assert!(out.stderr.contains("extra    #1"), "{}", out.stderr);
}

#[test]
fn bad_input_exits_2_naming_file_and_path_with_nothing_on_stdout() {
    let dir = temp_dir("bad");
    let mut scenario = basic(good_expect());
    scenario["events"][0]["amount"] = json!(250);
    let path = write(&dir, "bad.json", &scenario);
    for options in [PLAIN, CHECK] {
        let out = simulate_cli(&path, options);
        assert_eq!(out.exit_code, EXIT_BAD_INPUT);
        assert_eq!(out.stdout, "");
        assert_eq!(
            out.stderr,
            format!(
                "{}: events[0].amount: expected a decimal string like \"1250.00\", got a number\n",
                path.display()
            )
        );
    }
}

#[test]
fn unreadable_file_is_bad_input() {
    let dir = temp_dir("missing");
    let out = simulate_cli(&dir.join("nope.json"), PLAIN);
    assert_eq!(out.exit_code, EXIT_BAD_INPUT);
    assert!(
        out.stderr.contains("nope.json: cannot read"),
        "{}",
        out.stderr
    );
    assert_eq!(out.stdout, "");
}

#[test]
fn directory_check_reports_each_file_sorted_and_a_summary() {
    let dir = temp_dir("dir-check");
    write(&dir, "b-fails.json", &basic(json!([])));
    write(&dir, "a-passes.json", &basic(good_expect()));
    fs::write(dir.join("notes.txt"), "not a scenario").unwrap();
    let out = simulate_cli(&dir, CHECK);
    assert_eq!(out.exit_code, EXIT_MISMATCH);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[0], "ok a-passes.json");
    assert_eq!(lines[1], "FAILED b-fails.json");
    assert_eq!(*lines.last().unwrap(), "1 passed, 1 failed");
}

#[test]
fn directory_check_all_passing_exits_0() {
    let dir = temp_dir("dir-ok");
    write(&dir, "one.json", &basic(good_expect()));
    write(&dir, "two.json", &basic(good_expect()));
    let out = simulate_cli(&dir, CHECK);
    assert_eq!(out.exit_code, EXIT_OK);
    assert_eq!(out.stdout, "ok one.json\nok two.json\n2 passed, 0 failed\n");
}

#[test]
fn directory_without_check_adds_the_scenario_field() {
    let dir = temp_dir("dir-plain");
    write(&dir, "x.json", &basic(good_expect()));
    let out = simulate_cli(&dir, PLAIN);
    assert_eq!(out.exit_code, EXIT_OK);
    for line in out.stdout.lines() {
        assert!(
            line.starts_with("{\"scenario\":\"x.json\",\"on\":"),
            "{line}"
        );
    }
    assert_eq!(out.stdout.lines().count(), 2);
}

#[test]
fn any_bad_file_in_a_directory_exits_2_with_nothing_on_stdout() {
    let dir = temp_dir("dir-bad");
    write(&dir, "a-good.json", &basic(good_expect()));
    fs::write(dir.join("b-broken.json"), "{ \"from\": ").unwrap();
    let mut unknown = basic(good_expect());
    unknown["events"][0]["invoice"] = json!("404");
    write(&dir, "c-unknown.json", &unknown);
    let out = simulate_cli(&dir, CHECK);
    assert_eq!(out.exit_code, EXIT_BAD_INPUT);
    assert_eq!(out.stdout, "");
    assert!(
        out.stderr
            .contains("b-broken.json: (document): invalid JSON"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("c-unknown.json: events[0].invoice: unknown invoice \"404\""),
        "{}",
        out.stderr
    );
}

#[test]
fn empty_directory_is_bad_input() {
    let dir = temp_dir("dir-empty");
    let out = simulate_cli(&dir, CHECK);
    assert_eq!(out.exit_code, EXIT_BAD_INPUT);
    assert_eq!(out.stdout, "");
}
