//! Where a pass over Tripletex's invoices stands, kept in the connection's cursor.
//!
//! `GET /invoice` needs an invoice-date window (`invoiceDateFrom` inclusive, `invoiceDateTo`
//! exclusive) and pages with `from`/`count`. A pass reads calendar-month windows from the start of
//! the look-back period to the current month. Each list answer carries a `versionDigest` of the
//! window's whole result: when the first page of a window has the digest recorded at the last
//! pass, nothing in that window changed and the rest of it is skipped (unless the pass is full).

use std::collections::BTreeMap;

use chrono::{Datelike, Days, NaiveDate};
use forfall_connector::Cursor;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    /// The first day of the window being read; `None` before a pass starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<NaiveDate>,
    /// The offset of the next page within the window.
    #[serde(default)]
    pub from: u64,
    /// The digest the window's first page had in this pass; `None` once the window changed while
    /// it was being read (then it is read again next pass).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reading: Option<String>,
    /// Each window's digest when it was last read to the end, by the window's first day.
    #[serde(default)]
    pub digests: BTreeMap<NaiveDate, String>,
}

impl Position {
    /// The position a cursor describes; an unreadable cursor starts a fresh pass (nothing is lost:
    /// the pass reads everything).
    pub fn from_cursor(cursor: Option<&Cursor>) -> Position {
        match cursor {
            None => Position::default(),
            Some(c) => serde_json::from_str(&c.0).unwrap_or_else(|e| {
                tracing::warn!(error = %e, "unreadable Tripletex cursor; starting a fresh pass");
                Position::default()
            }),
        }
    }

    pub fn to_cursor(&self) -> Cursor {
        Cursor(serde_json::to_string(self).unwrap_or_default())
    }

    /// Forgets digests of windows that are no longer part of a pass.
    pub fn prune(&mut self, first: NaiveDate) {
        self.digests.retain(|window, _| *window >= first);
    }
}

/// The first day of `day`'s month.
pub fn month_of(day: NaiveDate) -> NaiveDate {
    day.with_day(1).unwrap_or(day)
}

/// The first day of the month after `window`'s.
pub fn next_month(window: NaiveDate) -> NaiveDate {
    let (year, month) = if window.month() == 12 {
        (window.year() + 1, 1)
    } else {
        (window.year(), window.month() + 1)
    };
    NaiveDate::from_ymd_opt(year, month, 1).unwrap_or(window)
}

/// The first window of a pass that looks back `lookback_days` from `today`.
pub fn first_window(today: NaiveDate, lookback_days: u64) -> NaiveDate {
    month_of(
        today
            .checked_sub_days(Days::new(lookback_days))
            .unwrap_or(today),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn windows_are_calendar_months_across_the_year_end() {
        assert_eq!(next_month(day("2025-12-01")), day("2026-01-01"));
        assert_eq!(next_month(day("2026-01-01")), day("2026-02-01"));
        assert_eq!(first_window(day("2026-11-23"), 30), day("2026-10-01"));
    }

    #[test]
    fn a_position_survives_its_cursor_and_a_garbled_cursor_starts_over() {
        let mut position = Position {
            window: Some(day("2026-10-01")),
            from: 2000,
            reading: Some("abc".into()),
            digests: BTreeMap::new(),
        };
        position.digests.insert(day("2026-09-01"), "d1".into());
        assert_eq!(Position::from_cursor(Some(&position.to_cursor())), position);
        assert_eq!(
            Position::from_cursor(Some(&Cursor("garbage".into()))),
            Position::default()
        );
    }
}
