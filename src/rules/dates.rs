//! Civil-date arithmetic that never panics: results saturate at the ends of `NaiveDate`'s range.

use chrono::{Datelike, Days, NaiveDate, Weekday};

/// `date + days`, saturating at `NaiveDate::MAX`.
pub fn add_days(date: NaiveDate, days: u32) -> NaiveDate {
    date.checked_add_days(Days::new(u64::from(days)))
        .unwrap_or(NaiveDate::MAX)
}

/// The day after `date`, saturating at `NaiveDate::MAX`.
pub fn next_day(date: NaiveDate) -> NaiveDate {
    date.succ_opt().unwrap_or(NaiveDate::MAX)
}

/// `date` plus whole calendar years; a day that does not exist in the target month is clamped to
/// the month's last day (29 Feb 2024 + 3 years = 28 Feb 2027), as Norwegian year deadlines end.
/// Saturates at `NaiveDate::MAX`.
pub fn add_years_clamped(date: NaiveDate, years: u32) -> NaiveDate {
    let Some(year) = i32::try_from(years)
        .ok()
        .and_then(|years| date.year().checked_add(years))
    else {
        return NaiveDate::MAX;
    };
    (1..=date.day())
        .rev()
        .find_map(|day| NaiveDate::from_ymd_opt(year, date.month(), day))
        .unwrap_or(NaiveDate::MAX)
}

/// The first `weekday` on or after `date` (`date` itself when it is that weekday).
pub fn weekday_on_or_after(date: NaiveDate, weekday: Weekday) -> NaiveDate {
    let ahead = (7 + weekday.num_days_from_monday() - date.weekday().num_days_from_monday()) % 7;
    add_days(date, ahead)
}

/// The first `weekday` strictly after `date` (one week later when `date` is that weekday).
pub fn weekday_after(date: NaiveDate, weekday: Weekday) -> NaiveDate {
    weekday_on_or_after(next_day(date), weekday)
}

/// Parses a strict civil date `YYYY-MM-DD` (exactly four-digit year, two-digit month and day).
pub fn parse_civil_date(text: &str) -> Option<NaiveDate> {
    let bytes = text.as_bytes();
    let shape_ok = bytes.len() == 10
        && bytes.iter().enumerate().all(|(i, b)| match i {
            4 | 7 => *b == b'-',
            _ => b.is_ascii_digit(),
        });
    if !shape_ok {
        return None;
    }
    let number = |range: std::ops::Range<usize>| text.get(range)?.parse::<u32>().ok();
    let year = i32::try_from(number(0..4)?).ok()?;
    NaiveDate::from_ymd_opt(year, number(5..7)?, number(8..10)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(text: &str) -> NaiveDate {
        parse_civil_date(text).unwrap()
    }

    #[test]
    fn leap_day_plus_three_years_is_end_of_february() {
        assert_eq!(add_years_clamped(d("2024-02-29"), 3), d("2027-02-28"));
        assert_eq!(add_years_clamped(d("2024-02-29"), 4), d("2028-02-29"));
        assert_eq!(add_years_clamped(d("2026-11-15"), 3), d("2029-11-15"));
    }

    #[test]
    fn adding_days_crosses_month_and_year_ends() {
        assert_eq!(add_days(d("2026-12-28"), 5), d("2027-01-02"));
        assert_eq!(add_days(d("2028-02-27"), 2), d("2028-02-29"));
    }

    #[test]
    fn adding_days_saturates_instead_of_panicking() {
        assert_eq!(add_days(NaiveDate::MAX, 10), NaiveDate::MAX);
        assert_eq!(add_years_clamped(NaiveDate::MAX, 30), NaiveDate::MAX);
        assert_eq!(next_day(NaiveDate::MAX), NaiveDate::MAX);
    }

    #[test]
    fn weekday_on_or_after_includes_the_day_itself() {
        // 2026-11-17 is a Tuesday.
        assert_eq!(
            weekday_on_or_after(d("2026-11-17"), Weekday::Tue),
            d("2026-11-17")
        );
        assert_eq!(
            weekday_on_or_after(d("2026-11-18"), Weekday::Tue),
            d("2026-11-24")
        );
        assert_eq!(
            weekday_on_or_after(d("2026-11-17"), Weekday::Thu),
            d("2026-11-19")
        );
    }

    #[test]
    fn weekday_after_is_strictly_later() {
        assert_eq!(
            weekday_after(d("2026-11-19"), Weekday::Thu),
            d("2026-11-26")
        );
        assert_eq!(
            weekday_after(d("2026-11-17"), Weekday::Thu),
            d("2026-11-19")
        );
    }

    #[test]
    fn civil_dates_must_be_strict_iso() {
        assert_eq!(parse_civil_date("2026-02-28"), Some(d("2026-02-28")));
        for bad in [
            "2026-2-28",
            "2026-02-29",
            "26-02-28",
            "2026/02/28",
            "2026-02-28T00:00",
            "",
            "２０２６-02-28",
        ] {
            assert_eq!(parse_civil_date(bad), None, "{bad}");
        }
    }
}
