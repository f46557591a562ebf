//! One typed configuration, from defaults, an optional TOML file (`--config`) and the environment
//! (`FORFALL_*`, which wins), validated before anything starts. A bad value is an error naming the
//! key, where it came from and the problem; `main` turns it into exit code 2.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::secrets::EncryptionKey;

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Human,
    Json,
}

#[derive(Debug, Clone)]
pub struct Config {
    /// Where the embedded database and other local state live (created if missing).
    pub data_dir: PathBuf,
    /// `sqlite://…` (default: `forfall.db` in the data directory) or `postgres://…`.
    pub database_url: String,
    pub database_max_connections: u32,
    pub listen: SocketAddr,
    pub log_format: LogFormat,
    /// A `tracing` filter, e.g. `info` or `forfall=debug,sqlx=warn`.
    pub log: String,
    /// How long a shutdown waits for requests in flight.
    pub shutdown_grace_seconds: u64,
    /// Seals connection credentials; only ever read from the environment.
    pub encryption_key: Option<EncryptionKey>,
    /// How often each connection is polled; `None`: not at all.
    pub poll_interval: Option<std::time::Duration>,
    /// The local time from which the day's full resync runs.
    pub full_sync_at: chrono::NaiveTime,
    /// Timeout of one call to an accounting platform.
    pub platform_timeout: std::time::Duration,
    /// The collection agency: where cases go and whose events are accepted.
    pub agency: AgencyConfig,
    /// The SMTP server for the creditors' e-mails; `None`: e-mails wait (as jobs) until one is set.
    pub smtp_url: Option<String>,
    pub mail_from: String,
    /// The creditor's local time from which each day's engine run (the day tick) happens.
    pub day_tick_at: chrono::NaiveTime,
    /// How jobs are retried.
    pub retry: crate::jobs::RetryPolicy,
    /// Each API key's rate limit.
    pub api_rate: ApiRate,
    /// Testing and demos: read the time from this file (an RFC 3339 instant) instead of the
    /// system clock, so that a real process can be driven through simulated days.
    pub clock_file: Option<PathBuf>,
}

/// Each API key's rate limit: a sustained rate and a burst above it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiRate {
    pub per_second: u32,
    pub burst: u32,
}

impl Default for ApiRate {
    fn default() -> ApiRate {
        ApiRate {
            per_second: 25,
            burst: 50,
        }
    }
}

/// How cases reach the collection agency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgencyMode {
    /// No agency: transfers wait (as jobs) until one is configured.
    Off,
    /// POSTed to `agency_url`, signed.
    Push,
    /// Kept for the agency to fetch through the partner API.
    Pull,
}

#[derive(Clone)]
pub struct AgencyConfig {
    pub mode: AgencyMode,
    pub url: Option<String>,
    /// Signs the messages to the agency and checks its events; environment only.
    pub secret: Option<forfall_connector::standard_webhooks::Secret>,
    /// Deliveries to the agency at once.
    pub in_flight: usize,
    pub timeout: std::time::Duration,
}

impl std::fmt::Debug for AgencyConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgencyConfig")
            .field("mode", &self.mode)
            .field("url", &self.url)
            .field("secret", &self.secret.as_ref().map(|_| "***"))
            .field("in_flight", &self.in_flight)
            .finish()
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("configuration: {key} (from {origin}): {problem}")]
pub struct ConfigError {
    pub key: String,
    pub origin: String,
    pub problem: String,
}

/// One configuration key: its name in the TOML file, its environment variable, and what it means.
/// The README's configuration table lists the same keys.
pub struct Key {
    pub name: &'static str,
    pub env: &'static str,
    pub default: &'static str,
    pub meaning: &'static str,
}

pub const KEYS: &[Key] = &[
    Key {
        name: "data_dir",
        env: "FORFALL_DATA_DIR",
        default: "data",
        meaning: "directory for the embedded database and local state (created if missing)",
    },
    Key {
        name: "database_url",
        env: "FORFALL_DATABASE_URL",
        default: "sqlite://<data_dir>/forfall.db",
        meaning: "sqlite://PATH (embedded, one instance) or postgres://… (several instances)",
    },
    Key {
        name: "database_max_connections",
        env: "FORFALL_DATABASE_MAX_CONNECTIONS",
        default: "10",
        meaning: "connection pool size, 1 to 1000",
    },
    Key {
        name: "listen",
        env: "FORFALL_LISTEN",
        default: "127.0.0.1:8080",
        meaning: "address and port the server listens on",
    },
    Key {
        name: "log_format",
        env: "FORFALL_LOG_FORMAT",
        default: "human",
        meaning: "`human` or `json` (also `--log-json`)",
    },
    Key {
        name: "log",
        env: "FORFALL_LOG",
        default: "info,sqlx=warn",
        meaning: "log filter, e.g. `info` or `forfall=debug,sqlx=warn`",
    },
    Key {
        name: "shutdown_grace_seconds",
        env: "FORFALL_SHUTDOWN_GRACE_SECONDS",
        default: "30",
        meaning: "how long a shutdown waits for requests in flight, 0 to 3600",
    },
    Key {
        name: "poll_interval_seconds",
        env: "FORFALL_POLL_INTERVAL_SECONDS",
        default: "300",
        meaning: "how often each connection is polled, 10 to 86400 (0 turns polling off)",
    },
    Key {
        name: "full_sync_at",
        env: "FORFALL_FULL_SYNC_AT",
        default: "03:00",
        meaning: "local time (creditor's zone) from which the day's full resync runs, HH:MM",
    },
    Key {
        name: "platform_timeout_seconds",
        env: "FORFALL_PLATFORM_TIMEOUT_SECONDS",
        default: "30",
        meaning: "timeout of one call to an accounting platform, 1 to 600",
    },
    Key {
        name: "encryption_key",
        env: "FORFALL_ENCRYPTION_KEY",
        default: "(none: `serve` refuses to start)",
        meaning: "32 random bytes as base64, sealing connection credentials; environment only",
    },
    Key {
        name: "agency_mode",
        env: "FORFALL_AGENCY_MODE",
        default: "off",
        meaning: "how cases reach the collection agency: `push` (to agency_url), `pull` (the agency fetches) or `off` (they wait)",
    },
    Key {
        name: "agency_url",
        env: "FORFALL_AGENCY_URL",
        default: "(none)",
        meaning: "where cases and messages are POSTed in push mode (http:// or https://)",
    },
    Key {
        name: "agency_secret",
        env: "FORFALL_AGENCY_SECRET",
        default: "(none)",
        meaning: "whsec_… Standard Webhooks secret shared with the agency (signs cases, checks its events); environment only",
    },
    Key {
        name: "agency_in_flight",
        env: "FORFALL_AGENCY_IN_FLIGHT",
        default: "64",
        meaning: "deliveries to the agency at once, 1 to 1024",
    },
    Key {
        name: "agency_timeout_seconds",
        env: "FORFALL_AGENCY_TIMEOUT_SECONDS",
        default: "30",
        meaning: "timeout of one delivery to the agency, 1 to 600",
    },
    Key {
        name: "smtp_url",
        env: "FORFALL_SMTP_URL",
        default: "(none: e-mails wait)",
        meaning: "smtp://host:port (plain, a local relay), smtps://user:pass@host or smtp://…?tls=required",
    },
    Key {
        name: "mail_from",
        env: "FORFALL_MAIL_FROM",
        default: "Forfall <forfall@localhost>",
        meaning: "the From of the creditors' e-mails",
    },
    Key {
        name: "day_tick_at",
        env: "FORFALL_DAY_TICK_AT",
        default: "06:00",
        meaning: "local time (creditor's zone) from which each day's engine run happens, HH:MM",
    },
    Key {
        name: "job_max_attempts",
        env: "FORFALL_JOB_MAX_ATTEMPTS",
        default: "25",
        meaning: "attempts before a job becomes a dead letter, 1 to 1000",
    },
    Key {
        name: "job_backoff_base_seconds",
        env: "FORFALL_JOB_BACKOFF_BASE_SECONDS",
        default: "60",
        meaning: "ceiling of the first retry's wait (doubling after), 1 to 86400",
    },
    Key {
        name: "job_backoff_cap_seconds",
        env: "FORFALL_JOB_BACKOFF_CAP_SECONDS",
        default: "43200",
        meaning: "the retry wait's ceiling never grows beyond this, 1 to 604800",
    },
    Key {
        name: "api_requests_per_second",
        env: "FORFALL_API_REQUESTS_PER_SECOND",
        default: "25",
        meaning: "each API key's sustained request rate (429 with Retry-After beyond it), 1 to 100000",
    },
    Key {
        name: "api_burst",
        env: "FORFALL_API_BURST",
        default: "50",
        meaning: "requests an API key may send at once above its rate, 1 to 100000",
    },
    Key {
        name: "clock_file",
        env: "FORFALL_CLOCK_FILE",
        default: "(none: the system clock)",
        meaning: "testing and demos only: a file holding an RFC 3339 instant that is the gateway's time (the day tick then looks every 0.2 s)",
    },
];

/// Keys only ever read from the environment: secrets never sit in a file.
const ENVIRONMENT_ONLY: [&str; 2] = ["encryption_key", "agency_secret"];

/// Environment variables with this prefix belong to the test suite, not to the configuration.
const TEST_ENV_PREFIX: &str = "FORFALL_TEST_";

impl Config {
    /// Reads the configuration from the optional TOML file and the given environment.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut values: BTreeMap<&'static str, (String, String)> = BTreeMap::new();
        if let Some(path) = file {
            let origin = path.display().to_string();
            for (name, value, number) in read_file(path)? {
                let key = KEYS
                    .iter()
                    .find(|k| k.name == name)
                    .ok_or_else(|| ConfigError {
                        key: name.clone(),
                        origin: origin.clone(),
                        problem: "unknown key".into(),
                    })?;
                if ENVIRONMENT_ONLY.contains(&key.name) {
                    return Err(ConfigError {
                        key: name,
                        origin,
                        problem: format!(
                            "a secret must come from the environment ({}), never from a file",
                            key.env
                        ),
                    });
                }
                // A number where the key takes one, text where it takes text: the file's own
                // types are checked (the environment has only text).
                let wants_number = key.default.bytes().all(|b| b.is_ascii_digit());
                if number != wants_number {
                    return Err(ConfigError {
                        key: name,
                        origin,
                        problem: if wants_number {
                            format!("expected a number, found the string {value:?}")
                        } else {
                            "expected a string, found a number".into()
                        },
                    });
                }
                values.insert(key.name, (value, origin.clone()));
            }
        }
        for (var, value) in env {
            if !var.starts_with("FORFALL_") || var.starts_with(TEST_ENV_PREFIX) {
                continue;
            }
            let key = KEYS
                .iter()
                .find(|k| k.env == var)
                .ok_or_else(|| ConfigError {
                    key: var.clone(),
                    origin: "environment".into(),
                    problem: format!(
                        "unknown variable; known ones: {}",
                        KEYS.iter().map(|k| k.env).collect::<Vec<_>>().join(", ")
                    ),
                })?;
            values.insert(key.name, (value, "environment".into()));
        }
        Config::from_values(&values)
    }

    fn from_values(
        values: &BTreeMap<&'static str, (String, String)>,
    ) -> Result<Config, ConfigError> {
        let get = |name: &'static str| values.get(name);
        let fail = |name: &'static str, problem: String| {
            let origin = get(name).map_or_else(|| "default".into(), |(_, o)| o.clone());
            ConfigError {
                key: name.into(),
                origin,
                problem,
            }
        };
        let text = |name: &'static str, default: &str| {
            get(name).map_or_else(|| default.to_owned(), |(v, _)| v.clone())
        };

        let data_dir = PathBuf::from(text("data_dir", "data"));
        if data_dir.as_os_str().is_empty() {
            return Err(fail("data_dir", "must not be empty".into()));
        }
        let database_url = match get("database_url") {
            Some((url, _)) => url.clone(),
            None => format!("sqlite://{}/forfall.db", data_dir.display()),
        };
        if !(database_url.starts_with("sqlite:")
            || database_url.starts_with("postgres://")
            || database_url.starts_with("postgresql://"))
        {
            return Err(fail(
                "database_url",
                format!(
                    "`{}` must start with sqlite:// or postgres://",
                    crate::store::redact_url(&database_url)
                ),
            ));
        }
        if let Some(rest) = database_url.strip_prefix("sqlite:") {
            let path = rest.trim_start_matches("//");
            let path = path.split('?').next().unwrap_or(path);
            if path.is_empty() || path == ":memory:" {
                return Err(fail(
                    "database_url",
                    format!(
                        "`{database_url}` names no database file (an in-memory database would be lost at exit); for example sqlite://data/forfall.db"
                    ),
                ));
            }
        }
        let number = |name: &'static str, default: u64, max: u64, min: u64| {
            let raw = text(name, &default.to_string());
            match raw.trim().parse::<u64>() {
                Ok(n) if (min..=max).contains(&n) => Ok(n),
                _ => Err(fail(
                    name,
                    format!("`{raw}` is not a whole number from {min} to {max}"),
                )),
            }
        };
        let database_max_connections =
            u32::try_from(number("database_max_connections", 10, 1000, 1)?).unwrap_or(10);
        let shutdown_grace_seconds = number("shutdown_grace_seconds", 30, 3600, 0)?;
        let listen_text = text("listen", "127.0.0.1:8080");
        let listen = listen_text.parse().map_err(|_| {
            fail(
                "listen",
                format!("`{listen_text}` is not an address and port such as 127.0.0.1:8080"),
            )
        })?;
        let log_format = match text("log_format", "human").as_str() {
            "human" => LogFormat::Human,
            "json" => LogFormat::Json,
            other => {
                return Err(fail(
                    "log_format",
                    format!("`{other}` is not `human` or `json`"),
                ));
            }
        };
        let log = text("log", "info,sqlx=warn");
        if tracing_subscriber::EnvFilter::try_new(&log).is_err() {
            return Err(fail("log", format!("`{log}` is not a valid log filter")));
        }
        let encryption_key = get("encryption_key")
            .map(|(v, _)| EncryptionKey::from_base64(v))
            .transpose()
            .map_err(|e| fail("encryption_key", e.to_string()))?;
        let poll_seconds = number("poll_interval_seconds", 300, 86_400, 0)?;
        if (1..10).contains(&poll_seconds) {
            return Err(fail(
                "poll_interval_seconds",
                format!("`{poll_seconds}` is below 10 (0 turns polling off)"),
            ));
        }
        let poll_interval =
            (poll_seconds > 0).then(|| std::time::Duration::from_secs(poll_seconds));
        let full_text = text("full_sync_at", "03:00");
        let full_sync_at =
            chrono::NaiveTime::parse_from_str(full_text.trim(), "%H:%M").map_err(|_| {
                fail(
                    "full_sync_at",
                    format!("`{full_text}` is not a time such as 03:00"),
                )
            })?;
        let platform_timeout =
            std::time::Duration::from_secs(number("platform_timeout_seconds", 30, 600, 1)?);
        let agency_mode = match text("agency_mode", "off").trim() {
            "off" => AgencyMode::Off,
            "push" => AgencyMode::Push,
            "pull" => AgencyMode::Pull,
            other => {
                return Err(fail(
                    "agency_mode",
                    format!("`{other}` is not `push`, `pull` or `off`"),
                ));
            }
        };
        let agency_url = get("agency_url").map(|(v, _)| v.trim().to_owned());
        if let Some(url) = &agency_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(fail(
                "agency_url",
                format!("`{url}` must start with http:// or https://"),
            ));
        }
        let agency_secret = get("agency_secret")
            .map(|(v, _)| forfall_connector::standard_webhooks::Secret::parse(v.trim()))
            .transpose()
            .map_err(|e| fail("agency_secret", e.to_string()))?;
        if agency_mode == AgencyMode::Push && agency_url.is_none() {
            return Err(fail(
                "agency_url",
                "push mode needs the agency's URL".into(),
            ));
        }
        if agency_mode != AgencyMode::Off && agency_secret.is_none() {
            return Err(fail(
                "agency_secret",
                "an agency needs the shared secret (FORFALL_AGENCY_SECRET, whsec_…)".into(),
            ));
        }
        let agency = AgencyConfig {
            mode: agency_mode,
            url: agency_url,
            secret: agency_secret,
            in_flight: usize::try_from(number("agency_in_flight", 64, 1024, 1)?).unwrap_or(64),
            timeout: std::time::Duration::from_secs(number("agency_timeout_seconds", 30, 600, 1)?),
        };
        let smtp_url = get("smtp_url").map(|(v, _)| v.trim().to_owned());
        if let Some(url) = &smtp_url
            && !(url.starts_with("smtp://") || url.starts_with("smtps://"))
        {
            return Err(fail(
                "smtp_url",
                format!(
                    "`{}` must start with smtp:// or smtps://",
                    crate::store::redact_url(url)
                ),
            ));
        }
        let mail_from = text("mail_from", "Forfall <forfall@localhost>");
        let tick_text = text("day_tick_at", "06:00");
        let day_tick_at =
            chrono::NaiveTime::parse_from_str(tick_text.trim(), "%H:%M").map_err(|_| {
                fail(
                    "day_tick_at",
                    format!("`{tick_text}` is not a time such as 06:00"),
                )
            })?;
        let retry = crate::jobs::RetryPolicy {
            max_attempts: u32::try_from(number("job_max_attempts", 25, 1000, 1)?).unwrap_or(25),
            base: std::time::Duration::from_secs(number(
                "job_backoff_base_seconds",
                60,
                86_400,
                1,
            )?),
            cap: std::time::Duration::from_secs(number(
                "job_backoff_cap_seconds",
                43_200,
                604_800,
                1,
            )?),
            ..crate::jobs::RetryPolicy::default()
        };
        let api_rate = ApiRate {
            per_second: u32::try_from(number("api_requests_per_second", 25, 100_000, 1)?)
                .unwrap_or(25),
            burst: u32::try_from(number("api_burst", 50, 100_000, 1)?).unwrap_or(50),
        };
        let clock_file = match get("clock_file") {
            Some((path, _)) if path.trim().is_empty() => {
                return Err(fail("clock_file", "must not be empty".into()));
            }
            Some((path, _)) => Some(PathBuf::from(path.trim())),
            None => None,
        };
        Ok(Config {
            api_rate,
            clock_file,
            agency,
            smtp_url,
            mail_from,
            day_tick_at,
            retry,
            poll_interval,
            full_sync_at,
            platform_timeout,
            data_dir,
            database_url,
            database_max_connections,
            listen,
            log_format,
            log,
            shutdown_grace_seconds,
            encryption_key,
        })
    }

    pub fn store_options(&self) -> crate::store::StoreOptions {
        crate::store::StoreOptions {
            url: self.database_url.clone(),
            max_connections: self.database_max_connections,
        }
    }
}

/// The file's keys as text. Numbers are accepted as TOML numbers or strings.
/// A value from the file, with whether TOML wrote it as a number.
type FileValue = (String, String, bool);

fn read_file(path: &Path) -> Result<Vec<FileValue>, ConfigError> {
    let origin = path.display().to_string();
    let fail = |key: &str, problem: String| ConfigError {
        key: key.into(),
        origin: origin.clone(),
        problem,
    };
    let text = std::fs::read_to_string(path).map_err(|e| fail("--config", e.to_string()))?;
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        fail("--config", format!("not valid TOML: {}", e.message()))
    })?;
    table
        .into_iter()
        .map(|(key, value)| match value {
            toml::Value::String(s) => Ok((key, s, false)),
            toml::Value::Integer(n) => Ok((key, n.to_string(), true)),
            other => Err(fail(
                &key,
                format!(
                    "expected a string or a number, found a {}",
                    other.type_str()
                ),
            )),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_file_value_of_the_wrong_toml_type_is_refused_naming_the_key() {
        let dir = tempfile::tempdir().unwrap();
        for (line, key) in [
            ("data_dir = 5", "data_dir"),
            ("poll_interval_seconds = \"300\"", "poll_interval_seconds"),
        ] {
            let file = dir.path().join("forfall.toml");
            std::fs::write(&file, format!("{line}\n")).unwrap();
            let error = Config::load(Some(&file), env(&[])).unwrap_err();
            assert_eq!(error.key, key, "{line}");
            assert!(error.to_string().contains("expected a"), "{error}");
        }
        let file = dir.path().join("forfall.toml");
        std::fs::write(&file, "data_dir = \"d\"\npoll_interval_seconds = 300\n").unwrap();
        assert!(Config::load(Some(&file), env(&[])).is_ok());
    }

    #[test]
    fn a_sqlite_url_without_a_file_is_refused_naming_the_key() {
        for url in [
            "sqlite://",
            "sqlite:",
            "sqlite::memory:",
            "sqlite://?mode=rwc",
        ] {
            let error = Config::load(None, env(&[("FORFALL_DATABASE_URL", url)])).unwrap_err();
            assert_eq!(error.key, "database_url", "{url}");
            assert!(
                error.to_string().contains("names no database file"),
                "{error}"
            );
        }
        assert!(Config::load(None, env(&[("FORFALL_DATABASE_URL", "sqlite:///tmp/f.db")])).is_ok());
    }

    #[test]
    fn defaults_give_an_embedded_database_in_the_data_directory_on_localhost_8080() {
        let config = Config::load(None, env(&[("PATH", "/bin")])).unwrap();
        assert_eq!(config.database_url, "sqlite://data/forfall.db");
        assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(config.log_format, LogFormat::Human);
        assert!(config.encryption_key.is_none());
    }

    #[test]
    fn the_environment_wins_over_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("forfall.toml");
        std::fs::write(
            &file,
            "listen = \"0.0.0.0:9000\"\ndatabase_max_connections = 4\n",
        )
        .unwrap();
        let config =
            Config::load(Some(&file), env(&[("FORFALL_LISTEN", "127.0.0.1:9999")])).unwrap();
        assert_eq!(config.listen.to_string(), "127.0.0.1:9999");
        assert_eq!(config.database_max_connections, 4);
    }

    #[test]
    fn a_bad_value_names_the_key_its_origin_and_the_problem() {
        let err = Config::load(None, env(&[("FORFALL_LISTEN", "localhost")])).unwrap_err();
        assert_eq!(err.key, "listen");
        assert_eq!(err.origin, "environment");
        assert!(err.problem.contains("localhost"));

        let err = Config::load(None, env(&[("FORFALL_DATABASE_URL", "mysql://x")])).unwrap_err();
        assert_eq!(err.key, "database_url");

        let err =
            Config::load(None, env(&[("FORFALL_DATABASE_MAX_CONNECTIONS", "0")])).unwrap_err();
        assert_eq!(err.key, "database_max_connections");
    }

    #[test]
    fn an_unknown_variable_or_file_key_is_an_error_but_test_variables_are_not() {
        let err = Config::load(None, env(&[("FORFALL_LISTN", "x")])).unwrap_err();
        assert_eq!(err.key, "FORFALL_LISTN");
        assert!(Config::load(None, env(&[("FORFALL_TEST_POSTGRES_URL", "x")])).is_ok());

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("forfall.toml");
        std::fs::write(&file, "listn = \"x\"\n").unwrap();
        assert_eq!(
            Config::load(Some(&file), env(&[])).unwrap_err().key,
            "listn"
        );
    }

    #[test]
    fn the_encryption_key_is_refused_in_a_file_and_validated_from_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("forfall.toml");
        std::fs::write(&file, "encryption_key = \"abc\"\n").unwrap();
        let err = Config::load(Some(&file), env(&[])).unwrap_err();
        assert!(err.problem.contains("environment"), "{err}");

        let err = Config::load(None, env(&[("FORFALL_ENCRYPTION_KEY", "abc")])).unwrap_err();
        assert_eq!(err.key, "encryption_key");
        assert!(!err.to_string().contains("abc"), "{err}");
        let key = EncryptionKey::generate_base64();
        let config = Config::load(None, env(&[("FORFALL_ENCRYPTION_KEY", &key)])).unwrap();
        assert!(config.encryption_key.is_some());
    }

    #[test]
    fn the_clock_file_is_unset_by_default_and_read_from_the_environment() {
        assert!(Config::load(None, env(&[])).unwrap().clock_file.is_none());
        let config = Config::load(None, env(&[("FORFALL_CLOCK_FILE", "/tmp/clock")])).unwrap();
        assert_eq!(config.clock_file, Some(PathBuf::from("/tmp/clock")));
        let err = Config::load(None, env(&[("FORFALL_CLOCK_FILE", " ")])).unwrap_err();
        assert_eq!(err.key, "clock_file");
    }

    #[test]
    fn a_file_that_is_not_toml_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("forfall.toml");
        std::fs::write(&file, "listen = \n").unwrap();
        let err = Config::load(Some(&file), env(&[])).unwrap_err();
        assert_eq!(err.key, "--config");
        assert!(err.origin.ends_with("forfall.toml"));
    }
}
