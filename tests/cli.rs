//! The `forfall` binary as a user runs it: exit codes, messages, migrations, serve and SIGTERM.

mod common;

use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn forfall(data_dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_forfall"));
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("FORFALL_DATA_DIR", data_dir)
        .stdin(Stdio::null());
    command
}

fn run(command: &mut Command) -> Output {
    command.output().expect("run forfall")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn migrate_creates_the_embedded_database_and_twice_is_harmless() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("nested/data");
    let first = run(forfall(&data).arg("migrate"));
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    assert!(data.join("forfall.db").exists());
    let second = run(forfall(&data).arg("migrate"));
    assert_eq!(second.status.code(), Some(0), "{}", stderr(&second));
    assert!(String::from_utf8_lossy(&second.stdout).contains("schema is current"));
}

#[test]
fn migrate_twice_on_postgres_is_harmless() {
    let Some(url) = common::postgres_url() else {
        return;
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let database = format!("forfall_cli_{}", uuid::Uuid::new_v4().simple());
    let admin = runtime.block_on(sqlx::PgPool::connect(&url)).unwrap();
    runtime
        .block_on(sqlx::query(&format!("CREATE DATABASE {database}")).execute(&admin))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db_url = common::with_database(&url, &database);
    for _ in 0..2 {
        let output = run(forfall(dir.path())
            .env("FORFALL_DATABASE_URL", &db_url)
            .arg("migrate"));
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    }
    runtime
        .block_on(sqlx::query(&format!("DROP DATABASE {database} WITH (FORCE)")).execute(&admin))
        .unwrap();
}

#[test]
fn a_malformed_database_url_is_exit_2_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let output = run(forfall(dir.path())
        .env("FORFALL_DATABASE_URL", "mysql://localhost/forfall")
        .arg("migrate"));
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("database_url"),
        "{}",
        stderr(&output)
    );

    let output = run(forfall(dir.path())
        .env("FORFALL_DATABASE_URL", "postgres://u:secret@[::1/db")
        .arg("migrate"));
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(!stderr(&output).contains("secret"), "{}", stderr(&output));
}

#[test]
fn an_unreachable_database_server_is_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let output = run(forfall(dir.path())
        .env(
            "FORFALL_DATABASE_URL",
            format!("postgres://nobody@127.0.0.1:{port}/x"),
        )
        .arg("migrate"));
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(stderr(&output).contains("cannot reach the database"));
}

#[test]
fn a_database_migrated_by_a_newer_forfall_is_exit_2_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(
        run(forfall(dir.path()).arg("migrate")).status.code(),
        Some(0)
    );
    let db = dir.path().join("forfall.db");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display()))
            .await
            .unwrap();
        sqlx::query(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, \
             execution_time) VALUES (9999, 'from the future', 1, x'00', 0)",
        )
        .execute(&pool)
        .await
        .unwrap();
        pool.close().await;
    });
    let output = run(forfall(dir.path()).arg("migrate"));
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("newer Forfall"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_bad_configuration_value_is_exit_2_naming_the_key_and_its_origin() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("forfall.toml");
    std::fs::write(&config, "listen = \"nowhere\"\n").unwrap();
    let output = run(forfall(dir.path())
        .arg("--config")
        .arg(&config)
        .arg("migrate"));
    assert_eq!(output.status.code(), Some(2));
    let message = stderr(&output);
    assert!(
        message.contains("listen") && message.contains("forfall.toml"),
        "{message}"
    );

    let output = run(forfall(dir.path()).env("FORFALL_LISTN", "x").arg("migrate"));
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("FORFALL_LISTN"));

    let output = run(forfall(dir.path()).arg("frobnicate"));
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn serve_refuses_to_start_without_an_encryption_key() {
    let dir = tempfile::tempdir().unwrap();
    let output = run(forfall(dir.path()).arg("serve"));
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("FORFALL_ENCRYPTION_KEY"));
}

#[test]
fn every_command_has_help() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["--help"][..],
        &["serve", "--help"],
        &["migrate", "--help"],
    ] {
        let output = run(forfall(dir.path()).args(args));
        assert_eq!(output.status.code(), Some(0), "{args:?}");
        assert!(String::from_utf8_lossy(&output.stdout).contains("Usage"));
    }
}

#[test]
fn serve_answers_health_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let child = forfall(dir.path())
        .env("FORFALL_LISTEN", format!("127.0.0.1:{port}"))
        .env(
            "FORFALL_ENCRYPTION_KEY",
            forfall::secrets::EncryptionKey::generate_base64(),
        )
        .arg("serve")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start serve");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let ready = runtime.block_on(async {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(response) = client
                .get(format!("http://127.0.0.1:{port}/health/ready"))
                .send()
                .await
            {
                return Some(response.status().as_u16());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        None
    });
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("send SIGTERM");
    assert!(killed.success());
    let output = child.wait_with_output().expect("wait for serve");
    assert_eq!(ready, Some(200), "{}", stderr(&output));
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(stderr(&output).contains("stopped"), "{}", stderr(&output));
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn claim_json(args: &[&str]) -> (Option<i32>, serde_json::Value, String) {
    let dir = tempfile::tempdir().unwrap();
    let output = run(forfall(dir.path()).arg("claim").args(args).arg("--json"));
    let json = serde_json::from_slice(&output.stdout).unwrap_or(serde_json::Value::Null);
    (output.status.code(), json, stderr(&output))
}

#[test]
fn claim_reproduces_the_norwegian_golden_examples_exactly() {
    let base = [
        "--country",
        "NO",
        "--amount",
        "10000.00",
        "--currency",
        "NOK",
    ];
    let cases = [
        ("2025-03-31", "2025-05-30", "205.48", false), // G1
        ("2023-06-15", "2023-07-15", "92.47", false),  // G2: split at 1 July
        ("2023-12-15", "2024-01-15", "102.74", false), // G3: into a leap year
        ("2025-06-15", "2025-07-15", "101.71", true),  // G4: derived rates, provisional
        ("2025-12-15", "2026-01-15", "103.01", true),  // G4
    ];
    for (due, paid, interest, provisional) in cases {
        let mut args = base.to_vec();
        args.extend(["--due", due, "--paid", paid]);
        let (code, json, err) = claim_json(&args);
        assert_eq!(code, Some(0), "{err}");
        assert_eq!(json["interest"], interest, "{due}..{paid}");
        assert_eq!(json["provisional"], provisional, "{due}..{paid}");
        assert_eq!(json["principal"], "10000.00");
        assert_eq!(json["currency"], "NOK");
        assert!(json["periods"].as_array().is_some_and(|p| !p.is_empty()));
        assert!(json["fees"].is_array() && json["total"].is_string());
    }
}

#[test]
fn claim_reproduces_the_swedish_and_finnish_golden_examples() {
    // G5: Kronofogden shows 163 (whole kronor); the exact interest is 163.46.
    let (_, g5, err) = claim_json(&[
        "--country",
        "SE",
        "--amount",
        "6780.00",
        "--currency",
        "SEK",
        "--due",
        "2020-12-31",
        "--paid",
        "2021-04-20",
    ]);
    assert_eq!(g5["interest"], "163.46", "{err}");
    // G9: SEK 10 000, 30 days late in 2025 H1, business: 450 + 90.41, no other fee.
    let (_, g9, err) = claim_json(&[
        "--country",
        "SE",
        "--amount",
        "10000.00",
        "--currency",
        "SEK",
        "--due",
        "2025-03-01",
        "--paid",
        "2025-03-31",
        "--debtor",
        "business",
    ]);
    assert_eq!(g9["interest"], "90.41", "{err}");
    let fees = g9["fees"].as_array().unwrap();
    assert_eq!(fees.len(), 1, "{fees:?}");
    assert_eq!(fees[0]["amount"], "450.00");
    // G6 and G10: Finland, consumer.
    let (_, g6, _) = claim_json(&[
        "--country",
        "FI",
        "--amount",
        "300.00",
        "--currency",
        "EUR",
        "--due",
        "2023-03-01",
        "--paid",
        "2023-03-04",
    ]);
    assert_eq!(g6["interest"], "0.23");
    let (_, g10, _) = claim_json(&[
        "--country",
        "FI",
        "--amount",
        "1000.00",
        "--currency",
        "EUR",
        "--due",
        "2025-02-01",
        "--paid",
        "2025-03-18",
    ]);
    assert_eq!(g10["interest"], "12.95");
}

#[test]
fn claim_without_a_known_rate_is_exit_2_naming_the_table_and_period() {
    let (code, json, err) = claim_json(&[
        "--country",
        "NO",
        "--amount",
        "10000.00",
        "--currency",
        "NOK",
        "--due",
        "2026-06-15",
        "--paid",
        "2026-07-15",
    ]);
    assert_eq!(code, Some(2));
    assert_eq!(json, serde_json::Value::Null, "nothing on stdout");
    assert!(
        err.contains("no.toml") && err.contains("2026-07-01"),
        "{err}"
    );
}

#[test]
fn claim_with_bad_arguments_is_exit_2_naming_the_argument() {
    for (args, flag) in [
        (["--amount", "10.005", "--currency", "NOK"], "--amount"),
        (["--amount", "ten", "--currency", "NOK"], "--amount"),
        (["--amount", "10.00", "--currency", "SEK"], "--currency"),
    ] {
        let mut all = vec![
            "--country",
            "NO",
            "--due",
            "2025-03-31",
            "--paid",
            "2025-05-30",
        ];
        all.extend(args);
        let (code, _, err) = claim_json(&all);
        assert_eq!(code, Some(2), "{args:?}");
        assert!(err.contains(flag), "{args:?}: {err}");
    }
}

#[test]
fn serve_with_a_missing_or_malformed_clock_file_is_exit_2_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let clock = dir.path().join("clock");
    let serve = |clock: &Path| {
        run(forfall(dir.path())
            .arg("serve")
            .env(
                "FORFALL_ENCRYPTION_KEY",
                forfall::secrets::EncryptionKey::generate_base64(),
            )
            .env("FORFALL_LISTEN", "127.0.0.1:0")
            .env("FORFALL_CLOCK_FILE", clock))
    };
    let missing = serve(&clock);
    assert_eq!(missing.status.code(), Some(2), "{}", stderr(&missing));
    assert!(
        stderr(&missing).contains("clock_file"),
        "{}",
        stderr(&missing)
    );
    std::fs::write(&clock, "next tuesday").unwrap();
    let malformed = serve(&clock);
    assert_eq!(malformed.status.code(), Some(2), "{}", stderr(&malformed));
    assert!(
        stderr(&malformed).contains("clock_file") && stderr(&malformed).contains("next tuesday"),
        "{}",
        stderr(&malformed)
    );
}

#[test]
fn forfall_with_no_command_runs_the_demo_rather_than_failing() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_forfall"))
        .current_dir(dir.path())
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The demo announces itself on its first line, then runs; stop it once it narrates.
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut first = String::new();
    std::io::BufRead::read_line(&mut stderr, &mut first).unwrap();
    assert!(first.contains("forfall demo"), "{first}");
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut narrated = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut narrated).unwrap();
    assert!(narrated.contains("invoices"), "{narrated}");
    // SIGINT: the demo stops and removes its directory (and the `data` it made).
    let _ = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let mut rest = String::new();
    let _ = std::io::Read::read_to_string(&mut stderr, &mut rest);
    let status = child.wait().unwrap();
    assert!(!status.success(), "interrupted: {rest}");
    assert!(rest.contains("interrupted"), "{rest}");
    assert!(!dir.path().join("data").exists(), "left behind: {rest}");
}

/// An encryption key for tests that store connections.
const KEY: &str = "9sXPXnBju2LdY2svXTWM7mwxBT8o87qgw2lk8mdV7uQ=";

/// The first word of `output` that starts with `prefix` (an id such as `cred_…`).
fn id_in(output: &str, prefix: &str) -> String {
    output
        .split_whitespace()
        .find(|word| word.starts_with(prefix))
        .unwrap_or_else(|| panic!("no {prefix}… in {output}"))
        .to_owned()
}

/// Migrates the database in `dir` and adds a Norwegian creditor; its id.
fn creditor_in(dir: &Path) -> String {
    assert_eq!(run(forfall(dir).arg("migrate")).status.code(), Some(0));
    let created = run(forfall(dir).args([
        "creditors",
        "add",
        "--name",
        "Nordlys AS",
        "--org",
        "923609016",
        "--country",
        "NO",
    ]));
    assert_eq!(created.status.code(), Some(0), "{}", stderr(&created));
    id_in(&String::from_utf8_lossy(&created.stdout), "cred_")
}

#[test]
fn a_sync_without_the_encryption_key_is_exit_2_and_leaves_the_connection_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let with_key = |args: &[&str]| {
        let output = run(forfall(dir.path())
            .env("FORFALL_ENCRYPTION_KEY", KEY)
            .args(args));
        assert_eq!(
            output.status.code(),
            Some(0),
            "{args:?}: {}",
            stderr(&output)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let creditor = creditor_in(dir.path());
    let settings = dir.path().join("generic.json");
    std::fs::write(
        &settings,
        r#"{"base_url": "http://127.0.0.1:9/forfall", "token": "t0ken"}"#,
    )
    .unwrap();
    let added = with_key(&[
        "connections",
        "add",
        "--creditor",
        &creditor,
        "--platform",
        "generic",
        "--settings",
        settings.to_str().unwrap(),
    ]);
    let connection = id_in(&added, "conn_");
    let before = with_key(&["connections", "list"]);

    let output = run(forfall(dir.path()).args(["sync", &connection]));
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("FORFALL_ENCRYPTION_KEY"),
        "{}",
        stderr(&output)
    );
    assert_eq!(with_key(&["connections", "list"]), before);
    let dead = with_key(&["jobs", "dead"]);
    assert!(!dead.contains("sync:"), "{dead}");
}

#[test]
fn creditors_add_refuses_an_empty_or_overlong_name_as_the_api_does() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(
        run(forfall(dir.path()).arg("migrate")).status.code(),
        Some(0)
    );
    let long = "x".repeat(201);
    for (name, org, flag) in [
        ("", "923609016", "--name"),
        ("  ", "923609016", "--name"),
        (long.as_str(), "923609016", "--name"),
        ("Nordlys AS", "", "--org"),
    ] {
        let output = run(forfall(dir.path()).args([
            "creditors",
            "add",
            "--name",
            name,
            "--org",
            org,
            "--country",
            "NO",
        ]));
        assert_eq!(output.status.code(), Some(2), "{name:?} {org:?}");
        assert!(stderr(&output).contains(flag), "{}", stderr(&output));
    }
}

#[test]
fn a_config_file_given_to_a_command_that_reads_none_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("forfall.toml");
    std::fs::write(&file, "listen = \"127.0.0.1:9999\"\n").unwrap();
    for args in [
        vec!["demo", "--days", "1"],
        vec!["simulate", "nothing.json"],
    ] {
        let output = run(forfall(dir.path()).args(&args).arg("--config").arg(&file));
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert!(
            stderr(&output).contains("reads no configuration"),
            "{}",
            stderr(&output)
        );
    }
}

#[test]
fn connections_add_refuses_bad_settings_and_an_unknown_creditor_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let creditor = creditor_in(dir.path());
    let settings = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let ftp = settings(
        "ftp.json",
        r#"{"base_url": "ftp://x", "consumer_token": "c", "employee_token": "e"}"#,
    );
    let generic = settings(
        "generic.json",
        r#"{"base_url": "http://127.0.0.1:9/forfall", "token": "t0ken"}"#,
    );
    let add = |creditor: &str, platform: &str, path: &Path, secret: Option<&str>| {
        let mut command = forfall(dir.path());
        command.env("FORFALL_ENCRYPTION_KEY", KEY).args([
            "connections",
            "add",
            "--creditor",
            creditor,
            "--platform",
            platform,
            "--settings",
            path.to_str().unwrap(),
        ]);
        if let Some(secret) = secret {
            command.args(["--webhook-secret", secret]);
        }
        run(&mut command)
    };
    let unknown = add("cred_nope", "generic", &generic, None);
    assert_eq!(unknown.status.code(), Some(2), "{}", stderr(&unknown));
    let bad_url = add(&creditor, "tripletex", &ftp, None);
    assert_eq!(bad_url.status.code(), Some(2));
    assert!(
        stderr(&bad_url).contains("base_url"),
        "{}",
        stderr(&bad_url)
    );
    for secret in ["", "notwhsec"] {
        let output = add(&creditor, "generic", &generic, Some(secret));
        assert_eq!(output.status.code(), Some(2), "{secret:?}");
        assert!(
            stderr(&output).contains("--webhook-secret"),
            "{}",
            stderr(&output)
        );
    }
}
