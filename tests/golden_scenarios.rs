//! The project's golden scenarios, when present: every `*.json` passes `--check`, and every file
//! in `bad/` is rejected with exit 2 and nothing on stdout.
//!
//! The folder is `tests/scenarios`.

use std::path::PathBuf;

use forfall::simulate::{EXIT_BAD_INPUT, EXIT_OK, SimulateOptions, simulate_cli};

fn golden_dir() -> PathBuf {
    // The project's own scenarios must be there: a missing folder fails the test, never passes it.
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios");
    assert!(
        dir.is_dir(),
        "the golden scenarios are missing: {}",
        dir.display()
    );
    dir
}

#[test]
fn golden_scenarios_pass_check() {
    let dir = golden_dir();
    let out = simulate_cli(
        &dir,
        SimulateOptions {
            check: true,
            explain: false,
        },
    );
    assert_eq!(out.exit_code, EXIT_OK, "{}{}", out.stdout, out.stderr);
    let files = std::fs::read_dir(&dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "json")
        })
        .count();
    assert!(files >= 30, "only {files} golden scenarios");
    assert!(
        out.stdout.ends_with(&format!("{files} passed, 0 failed\n")),
        "{}",
        out.stdout
    );
}

#[test]
fn golden_bad_inputs_exit_2_with_nothing_on_stdout() {
    let entries: Vec<_> = std::fs::read_dir(golden_dir().join("bad"))
        .expect("tests/scenarios/bad")
        .collect();
    assert!(entries.len() >= 6, "too few bad-input scenarios");
    for entry in entries {
        let path = entry.unwrap().path();
        let out = simulate_cli(&path, SimulateOptions::default());
        assert_eq!(out.exit_code, EXIT_BAD_INPUT, "{}", path.display());
        assert_eq!(out.stdout, "", "{}", path.display());
        assert!(
            out.stderr.starts_with(&format!("{}: ", path.display())),
            "{}",
            out.stderr
        );
    }
}
