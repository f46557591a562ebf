//! Time is read only through a [`Clock`]: the system clock in `serve`, a manual one in tests and
//! simulations, so that they can move through days, and a [`FileClock`] for `serve` when tests
//! and demos drive a real process through simulated days (the `clock_file` key).

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;

pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;

    /// The civil date it is now in the given zone (a creditor's).
    fn today(&self, zone: Tz) -> NaiveDate {
        self.now().with_timezone(&zone).date_naive()
    }
}

/// The machine's clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that moves only when told to.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<DateTime<Utc>>,
}

impl ManualClock {
    pub fn new(now: DateTime<Utc>) -> ManualClock {
        ManualClock {
            now: Mutex::new(now),
        }
    }

    pub fn set(&self, now: DateTime<Utc>) {
        *self
            .now
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = now;
    }

    pub fn advance(&self, by: chrono::Duration) {
        let mut now = self
            .now
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *now += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self
            .now
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Why a clock file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ClockFileError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: `{text}` is not an RFC 3339 instant such as 2026-11-23T06:00:00Z")]
    Instant { path: String, text: String },
}

/// A clock read from a file holding one RFC 3339 instant (`2026-11-23T06:00:00+01:00`): a
/// testing and demo facility, so that a test can drive a real `forfall serve` process through
/// simulated days and have it keep its date across a restart. Time stands still between writes
/// (write the file whole, e.g. by renaming a temporary file over it).
///
/// The file is looked at on each reading (one `stat`), and read again only when it changed (its
/// inode, modification time or length). A file that becomes unreadable or malformed later is
/// logged, and the clock keeps the last instant it read: it never moves back to the system's.
#[derive(Debug)]
pub struct FileClock {
    path: PathBuf,
    last: Mutex<Reading>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    inode: u64,
    modified: Option<std::time::SystemTime>,
    len: u64,
}

#[derive(Debug, Clone)]
struct Reading {
    /// What the file looked like when last read (or last found unusable).
    stamp: Option<Stamp>,
    now: DateTime<Utc>,
}

fn stamp(path: &Path) -> std::io::Result<Stamp> {
    let meta = std::fs::metadata(path)?;
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&meta);
    #[cfg(not(unix))]
    let inode = 0;
    Ok(Stamp {
        inode,
        modified: meta.modified().ok(),
        len: meta.len(),
    })
}

fn read_instant(path: &Path) -> Result<DateTime<Utc>, ClockFileError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ClockFileError::Read {
        path: shown.clone(),
        source,
    })?;
    DateTime::parse_from_rfc3339(text.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| ClockFileError::Instant {
            path: shown,
            text: text.trim().chars().take(64).collect(),
        })
}

impl FileClock {
    /// Reads the file once: a missing or malformed file is an error here (at start-up), never
    /// later.
    pub fn open(path: impl Into<PathBuf>) -> Result<FileClock, ClockFileError> {
        let path = path.into();
        let before = stamp(&path).map_err(|source| ClockFileError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let now = read_instant(&path)?;
        Ok(FileClock {
            path,
            last: Mutex::new(Reading {
                stamp: Some(before),
                now,
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Clock for FileClock {
    fn now(&self) -> DateTime<Utc> {
        let mut last = self
            .last
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let current = match stamp(&self.path) {
            Ok(current) => current,
            Err(e) => {
                if last.stamp.take().is_some() {
                    tracing::warn!(path = %self.path.display(), error = %e, "the clock file cannot be read; the clock stays at its last instant");
                }
                return last.now;
            }
        };
        if last.stamp.as_ref() == Some(&current) {
            return last.now;
        }
        match read_instant(&self.path) {
            Ok(now) => {
                if now < last.now {
                    tracing::warn!(path = %self.path.display(), from = %last.now, to = %now, "the clock file moved the clock back");
                }
                last.now = now;
            }
            Err(e) => {
                tracing::warn!(error = %e, "the clock stays at its last instant");
            }
        }
        last.stamp = Some(current);
        last.now
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_civil_date_is_the_creditors_not_utcs() {
        // 23:30 UTC on 31 Dec is already 1 Jan in Oslo (UTC+1 in winter).
        let clock = ManualClock::new("2026-12-31T23:30:00Z".parse().unwrap());
        assert_eq!(
            clock.today(chrono_tz::Europe::Oslo),
            NaiveDate::from_ymd_opt(2027, 1, 1).unwrap()
        );
        assert_eq!(
            clock.today(chrono_tz::UTC),
            NaiveDate::from_ymd_opt(2026, 12, 31).unwrap()
        );
    }

    #[test]
    fn a_manual_clock_moves_only_when_told() {
        let clock = ManualClock::new("2026-11-23T06:00:00Z".parse().unwrap());
        let before = clock.now();
        clock.advance(chrono::Duration::days(1));
        assert_eq!(clock.now() - before, chrono::Duration::days(1));
    }

    fn write(path: &Path, text: &str) {
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, path).unwrap();
    }

    #[test]
    fn a_file_clock_reads_its_instant_and_follows_each_rewrite() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("clock");
        write(&path, "2026-11-23T06:00:00+01:00\n");
        let clock = FileClock::open(&path).unwrap();
        assert_eq!(
            clock.now(),
            "2026-11-23T05:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
        assert_eq!(clock.now(), clock.now(), "time stands still between writes");
        write(&path, "2026-11-24T06:00:00+01:00");
        assert_eq!(
            clock.now(),
            "2026-11-24T05:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
        assert_eq!(
            clock.today(chrono_tz::Europe::Oslo),
            NaiveDate::from_ymd_opt(2026, 11, 24).unwrap()
        );
    }

    #[test]
    fn a_missing_or_malformed_clock_file_is_refused_at_the_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("clock");
        assert!(matches!(
            FileClock::open(&path),
            Err(ClockFileError::Read { .. })
        ));
        write(&path, "tomorrow");
        let err = FileClock::open(&path).unwrap_err();
        assert!(err.to_string().contains("tomorrow"), "{err}");
    }

    #[test]
    fn a_clock_file_that_goes_bad_later_keeps_the_last_instant() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("clock");
        write(&path, "2026-11-23T06:00:00Z");
        let clock = FileClock::open(&path).unwrap();
        write(&path, "not a time at all");
        assert_eq!(
            clock.now(),
            "2026-11-23T06:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
        std::fs::remove_file(&path).unwrap();
        assert_eq!(
            clock.now(),
            "2026-11-23T06:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
        write(&path, "2026-11-25T06:00:00Z");
        assert_eq!(
            clock.now(),
            "2026-11-25T06:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
    }
}
