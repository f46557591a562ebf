//! Late-payment interest: simple interest (never compounded, NO-22, SE-04) from the day after
//! the due date up to and including the payment date, split at every rate-period boundary and
//! every calendar-year boundary. Each part is principal × rate × days / days-in-year; the
//! parts are summed unrounded and the sum is rounded to cents, half away from zero, once.

use chrono::{Datelike, Days, NaiveDate};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::tables::{CountryTable, half_year, row_at};
use super::{DebtorKind, cents};

/// How many days a year has for the interest formula.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DayCount {
    /// 365, or 366 for days in a leap year (NO-21).
    #[serde(rename = "actual/actual")]
    ActualActual,
    /// Always 365, leap years too (FI-09's common practice).
    #[serde(rename = "actual/365")]
    Actual365,
}

impl DayCount {
    pub fn year_days(self, year: i32) -> u32 {
        let leap = NaiveDate::from_ymd_opt(year, 2, 29).is_some();
        match self {
            DayCount::ActualActual if leap => 366,
            _ => 365,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            DayCount::ActualActual => "actual/actual",
            DayCount::Actual365 => "actual/365",
        }
    }
}

/// One part of the interest period with a single rate inside a single calendar year.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InterestPeriod {
    pub from: NaiveDate,
    /// Inclusive.
    pub to: NaiveDate,
    pub days: u32,
    /// % p.a.
    #[serde(with = "rust_decimal::serde::str")]
    pub rate: Decimal,
    /// The divisor used: 365 or 366.
    pub year_days: u32,
    /// This part's interest rounded to cents for display; the total is rounded from the
    /// unrounded parts, so these may differ from it by a cent.
    #[serde(with = "rust_decimal::serde::str")]
    pub interest: Decimal,
    pub confirmed: bool,
    pub source: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interest {
    pub periods: Vec<InterestPeriod>,
    /// Σ parts, unrounded, then rounded to cents once.
    pub total: Decimal,
    /// Some part used an unconfirmed rate.
    pub provisional: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum InterestError {
    #[error(
        "no {what} for {from}..{to} (table {file} version {version}); \
         add the rate to the table once it is published"
    )]
    MissingRate {
        what: String,
        from: NaiveDate,
        to: NaiveDate,
        file: &'static str,
        version: String,
    },
    #[error("interest on {principal} exceeds the decimal range")]
    Overflow { principal: Decimal },
}

/// Interest on `principal` due on `due` and paid on `paid`. Paid on or before the due date:
/// zero, no periods.
pub fn late_interest(
    table: &CountryTable,
    debtor: DebtorKind,
    principal: Decimal,
    due: NaiveDate,
    paid: NaiveDate,
    day_count: DayCount,
) -> Result<Interest, InterestError> {
    let rates = &table.interest;
    let overflow = || InterestError::Overflow { principal };
    let mut periods = Vec::new();
    let mut sum = Decimal::ZERO;
    let mut cursor = due.checked_add_days(Days::new(1));
    while let Some(from) = cursor.filter(|c| *c <= paid) {
        let row = row_at(&rates.periods, from).ok_or_else(|| {
            let (start, end) = half_year(from);
            InterestError::MissingRate {
                what: format!("{} {}", table.country.adjective(), rates.name),
                from: start,
                to: end,
                file: table.file,
                version: table.version.clone(),
            }
        })?;
        let year_end = NaiveDate::from_ymd_opt(from.year(), 12, 31).unwrap_or(paid);
        let to = [Some(paid), row.to, Some(year_end)]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(paid);
        let days = u32::try_from((to - from).num_days() + 1).map_err(|_| overflow())?;
        let rate = row.rate_for(rates, debtor);
        let year_days = day_count.year_days(from.year());
        let part = principal
            .checked_mul(rate)
            .and_then(|x| x.checked_mul(Decimal::from(days)))
            .and_then(|x| x.checked_div(Decimal::from(100 * year_days)))
            .ok_or_else(overflow)?;
        sum = sum.checked_add(part).ok_or_else(overflow)?;
        periods.push(InterestPeriod {
            from,
            to,
            days,
            rate,
            year_days,
            interest: cents(part),
            confirmed: row.confirmed,
            source: row.source.clone(),
        });
        cursor = to.checked_add_days(Days::new(1));
    }
    Ok(Interest {
        provisional: periods.iter().any(|p| !p.confirmed),
        total: cents(sum),
        periods,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::Country;
    use crate::rules::tables::table;
    use rust_decimal_macros::dec;

    fn date(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn no(principal: Decimal, due: &str, paid: &str) -> Result<Interest, InterestError> {
        let t = table(Country::Norway).unwrap();
        let dc = t.interest.day_count;
        late_interest(
            t,
            DebtorKind::Consumer,
            principal,
            date(due),
            date(paid),
            dc,
        )
    }

    /// A one-row table spanning a year end, to split at 31 Dec alone.
    fn across_year_end(day_count: &str) -> CountryTable {
        let text = format!(
            r#"
            version = "test"
            country = "NO"
            [interest]
            name = "forsinkelsesrente"
            legal_reference = "x"
            day_count = "{day_count}"
            margin_consumer = "8"
            margin_business = "8"
            [[interest.periods]]
            from = "2023-10-01"
            to = "2024-03-31"
            reference = "2"
            source = "test"
            confirmed = true
            [fees]
            "#
        );
        CountryTable::parse(Country::Norway, "test.toml", &text).unwrap()
    }

    #[test]
    fn paid_on_the_due_date_gives_zero_interest_and_no_periods() {
        let i = no(dec!(10000), "2025-03-31", "2025-03-31").unwrap();
        assert_eq!(i.total, dec!(0));
        assert_eq!(i.total.to_string(), "0.00");
        assert!(i.periods.is_empty());
        assert!(!i.provisional);
    }

    #[test]
    fn paid_before_the_due_date_gives_zero_interest() {
        let i = no(dec!(10000), "2025-03-31", "2025-03-01").unwrap();
        assert_eq!(i.total, dec!(0));
        assert!(i.periods.is_empty());
    }

    #[test]
    fn one_day_late_counts_the_payment_date_only() {
        let i = no(dec!(36500), "2025-03-31", "2025-04-01").unwrap();
        assert_eq!(i.periods.len(), 1);
        assert_eq!(i.periods[0].days, 1);
        assert_eq!(i.periods[0].from, date("2025-04-01"));
        assert_eq!(i.total, dec!(12.50)); // 36 500 × 12.5 % / 365
    }

    #[test]
    fn a_year_end_inside_one_rate_row_splits_365_then_366() {
        let t = across_year_end("actual/actual");
        let i = late_interest(
            &t,
            DebtorKind::Consumer,
            dec!(10000),
            date("2023-12-21"),
            date("2024-01-10"),
            t.interest.day_count,
        )
        .unwrap();
        let shape: Vec<_> = i
            .periods
            .iter()
            .map(|p| (p.from, p.to, p.days, p.year_days))
            .collect();
        assert_eq!(
            shape,
            [
                (date("2023-12-22"), date("2023-12-31"), 10, 365),
                (date("2024-01-01"), date("2024-01-10"), 10, 366),
            ]
        );
        // 10000 × 10 % × (10/365 + 10/366) = 27.3973 + 27.3224 = 54.7197
        assert_eq!(i.total, dec!(54.72));
    }

    #[test]
    fn actual_365_uses_365_in_a_leap_year_too() {
        let t = across_year_end("actual/actual");
        let (due, paid) = (date("2024-02-27"), date("2024-03-01"));
        let i = late_interest(
            &t,
            DebtorKind::Consumer,
            dec!(36600),
            due,
            paid,
            DayCount::Actual365,
        )
        .unwrap();
        assert_eq!(i.periods[0].days, 3); // 28, 29 Feb and 1 Mar
        assert_eq!(i.periods[0].year_days, 365);
        assert_eq!(i.total, dec!(30.08)); // 36 600 × 10 % × 3 / 365 = 30.0822
        let leap = late_interest(
            &t,
            DebtorKind::Consumer,
            dec!(36600),
            due,
            paid,
            DayCount::ActualActual,
        )
        .unwrap();
        assert_eq!(leap.total, dec!(30.00)); // … × 3 / 366
    }

    #[test]
    fn rounding_is_half_away_from_zero_at_exactly_half_a_cent() {
        // 73 days in 2025 H1 at 12.5 %: 100.20 × 0.125 × 73 / 365 = 2.505 exactly.
        let i = no(dec!(100.20), "2024-12-31", "2025-03-14").unwrap();
        assert_eq!(i.periods[0].days, 73);
        assert_eq!(i.total.to_string(), "2.51"); // banker's rounding would give 2.50
    }

    #[test]
    fn the_total_is_rounded_once_from_unrounded_parts() {
        // Each part is exactly 0.0025, which rounds to 0.00 alone; together they make 0.005 → 0.01.
        let t = across_year_end("actual/365");
        // 1.825 × 10 % × 5 / 365 = 0.0025 per part.
        let i = late_interest(
            &t,
            DebtorKind::Consumer,
            dec!(1.825),
            date("2023-12-26"),
            date("2024-01-05"),
            DayCount::Actual365,
        )
        .unwrap();
        assert_eq!(i.periods.len(), 2);
        assert_eq!(
            i.periods.iter().map(|p| p.interest).sum::<Decimal>(),
            dec!(0.00)
        );
        assert_eq!(i.total, dec!(0.01));
    }

    #[test]
    fn a_date_without_a_rate_is_an_error_naming_the_table_and_half_year() {
        let err = no(dec!(10000), "2026-06-15", "2026-08-15").unwrap_err();
        assert_eq!(
            err,
            InterestError::MissingRate {
                what: "Norwegian forsinkelsesrente".into(),
                from: date("2026-07-01"),
                to: date("2026-12-31"),
                file: "no.toml",
                version: "2026-11-23".into(),
            }
        );
        let msg = err.to_string();
        assert!(
            msg.starts_with(
                "no Norwegian forsinkelsesrente for 2026-07-01..2026-12-31 (table no.toml version 2026-11-23)"
            ),
            "{msg}"
        );
    }

    #[test]
    fn a_date_before_the_table_is_an_error_too() {
        let err = no(dec!(10000), "2019-12-01", "2020-01-10").unwrap_err();
        assert!(err.to_string().contains("2019-07-01..2019-12-31"), "{err}");
    }

    #[test]
    fn finnish_rate_depends_on_the_debtor_kind() {
        let t = table(Country::Finland).unwrap();
        let rate = |debtor| {
            let i = late_interest(
                t,
                debtor,
                dec!(1000),
                date("2025-02-01"),
                date("2025-02-02"),
                DayCount::Actual365,
            )
            .unwrap();
            i.periods[0].rate
        };
        assert_eq!(rate(DebtorKind::Consumer), dec!(10.50));
        assert_eq!(rate(DebtorKind::Business), dec!(11.50));
    }

    #[test]
    fn a_huge_principal_is_an_overflow_error_not_a_panic() {
        let err = no(Decimal::MAX, "2025-03-31", "2025-05-30").unwrap_err();
        assert!(matches!(err, InterestError::Overflow { .. }));
    }
}
