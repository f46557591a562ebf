//! Public holidays of Norway, Sweden and Finland, computed from the Gregorian Easter date.
//!
//! Norway follows NO-28, Sweden SE-09 (Midsummer Eve, Christmas Eve and New Year's Eve count as
//! non-business days), Finland FI-08 (Christmas Eve included).

use chrono::{Datelike, NaiveDate, Weekday};

pub use crate::domain::Country;
use crate::rules::dates::{add_days, next_day, weekday_on_or_after};

/// One public holiday of one year.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Holiday {
    pub date: NaiveDate,
    pub name: &'static str,
}

/// How a holiday's date is found in a given year.
#[derive(Debug, Clone, Copy)]
enum HolidayRule {
    /// The same month and day every year.
    Fixed(u32, u32, &'static str),
    /// Days relative to Easter Sunday.
    Easter(i64, &'static str),
    /// The first `Weekday` on or after a month and day (Midsummer, All Saints' Day).
    FirstWeekdayFrom(u32, u32, Weekday, &'static str),
}

use HolidayRule::{Easter, FirstWeekdayFrom, Fixed};

const NORWAY: &[HolidayRule] = &[
    Fixed(1, 1, "New Year's Day"),
    Easter(-3, "Maundy Thursday"),
    Easter(-2, "Good Friday"),
    Easter(0, "Easter Sunday"),
    Easter(1, "Easter Monday"),
    Fixed(5, 1, "Labour Day"),
    Fixed(5, 17, "Constitution Day"),
    Easter(39, "Ascension Day"),
    Easter(49, "Whit Sunday"),
    Easter(50, "Whit Monday"),
    Fixed(12, 25, "Christmas Day"),
    Fixed(12, 26, "Boxing Day"),
];

const SWEDEN: &[HolidayRule] = &[
    Fixed(1, 1, "New Year's Day"),
    Fixed(1, 6, "Epiphany"),
    Easter(-2, "Good Friday"),
    Easter(0, "Easter Sunday"),
    Easter(1, "Easter Monday"),
    Fixed(5, 1, "May Day"),
    Easter(39, "Ascension Day"),
    Easter(49, "Whit Sunday"),
    Fixed(6, 6, "National Day"),
    FirstWeekdayFrom(6, 19, Weekday::Fri, "Midsummer Eve"),
    FirstWeekdayFrom(6, 20, Weekday::Sat, "Midsummer Day"),
    FirstWeekdayFrom(10, 31, Weekday::Sat, "All Saints' Day"),
    Fixed(12, 24, "Christmas Eve"),
    Fixed(12, 25, "Christmas Day"),
    Fixed(12, 26, "Boxing Day"),
    Fixed(12, 31, "New Year's Eve"),
];

const FINLAND: &[HolidayRule] = &[
    Fixed(1, 1, "New Year's Day"),
    Fixed(1, 6, "Epiphany"),
    Easter(-2, "Good Friday"),
    Easter(0, "Easter Sunday"),
    Easter(1, "Easter Monday"),
    Fixed(5, 1, "May Day"),
    Easter(39, "Ascension Day"),
    Easter(49, "Whit Sunday"),
    FirstWeekdayFrom(6, 19, Weekday::Fri, "Midsummer Eve"),
    FirstWeekdayFrom(6, 20, Weekday::Sat, "Midsummer Day"),
    FirstWeekdayFrom(10, 31, Weekday::Sat, "All Saints' Day"),
    Fixed(12, 6, "Independence Day"),
    Fixed(12, 24, "Christmas Eve"),
    Fixed(12, 25, "Christmas Day"),
    Fixed(12, 26, "Boxing Day"),
];

fn rules_of(country: Country) -> &'static [HolidayRule] {
    match country {
        Country::Norway => NORWAY,
        Country::Sweden => SWEDEN,
        Country::Finland => FINLAND,
    }
}

/// Easter Sunday of `year` in the Gregorian calendar (anonymous Gregorian computus).
/// `None` only for years outside `NaiveDate`'s range.
pub fn easter_sunday(year: i32) -> Option<NaiveDate> {
    let y = i64::from(year);
    let a = y.rem_euclid(19);
    let b = y.div_euclid(100);
    let c = y.rem_euclid(100);
    let d = b.div_euclid(4);
    let e = b.rem_euclid(4);
    let f = (b + 8).div_euclid(25);
    let g = (b - f + 1).div_euclid(3);
    let h = (19 * a + b - d - g + 15).rem_euclid(30);
    let i = c.div_euclid(4);
    let k = c.rem_euclid(4);
    let l = (32 + 2 * e + 2 * i - h - k).rem_euclid(7);
    let m = (a + 11 * h + 22 * l).div_euclid(451);
    let month = (h + l - 7 * m + 114).div_euclid(31);
    let day = (h + l - 7 * m + 114).rem_euclid(31) + 1;
    NaiveDate::from_ymd_opt(year, u32::try_from(month).ok()?, u32::try_from(day).ok()?)
}

fn rule_date(rule: HolidayRule, year: i32, easter: Option<NaiveDate>) -> Option<NaiveDate> {
    match rule {
        Fixed(month, day, _) => NaiveDate::from_ymd_opt(year, month, day),
        Easter(offset, _) => easter?.checked_add_signed(chrono::TimeDelta::try_days(offset)?),
        FirstWeekdayFrom(month, day, weekday, _) => {
            NaiveDate::from_ymd_opt(year, month, day).map(|from| weekday_on_or_after(from, weekday))
        }
    }
}

fn rule_name(rule: HolidayRule) -> &'static str {
    match rule {
        Fixed(_, _, name) | Easter(_, name) | FirstWeekdayFrom(_, _, _, name) => name,
    }
}

/// The public holidays of `country` in `year`, in date order.
pub fn public_holidays(country: Country, year: i32) -> Vec<Holiday> {
    let easter = easter_sunday(year);
    let mut holidays: Vec<Holiday> = rules_of(country)
        .iter()
        .filter_map(|rule| {
            let date = rule_date(*rule, year, easter)?;
            Some(Holiday {
                date,
                name: rule_name(*rule),
            })
        })
        .collect();
    holidays.sort_by_key(|holiday| holiday.date);
    holidays
}

/// Whether `date` is a public holiday (or, in Sweden and Finland, a day treated as one) in `country`.
pub fn is_public_holiday(country: Country, date: NaiveDate) -> bool {
    let easter = easter_sunday(date.year());
    rules_of(country)
        .iter()
        // All Saints' Day may fall in November of the same year; every rule stays within its year.
        .any(|rule| rule_date(*rule, date.year(), easter) == Some(date))
}

/// Neither a Saturday, a Sunday nor a public holiday.
pub fn is_business_day(country: Country, date: NaiveDate) -> bool {
    !matches!(date.weekday(), Weekday::Sat | Weekday::Sun) && !is_public_holiday(country, date)
}

/// `date` itself when it is a business day, otherwise the next business day.
pub fn roll_forward_to_business_day(country: Country, date: NaiveDate) -> NaiveDate {
    let mut day = date;
    // A run of non-business days is never longer than a couple of weeks; the bound only guards
    // against the end of the representable range.
    for _ in 0..366 {
        if is_business_day(country, day) || day == NaiveDate::MAX {
            return day;
        }
        day = next_day(day);
    }
    day
}

/// `date + days` then rolled forward to a business day.
pub fn add_days_rolled(country: Country, date: NaiveDate, days: u32) -> NaiveDate {
    roll_forward_to_business_day(country, add_days(date, days))
}

#[cfg(test)]
mod tests {
    use super::*;
    pub use crate::domain::Country;
    use crate::rules::dates::parse_civil_date;

    fn d(text: &str) -> NaiveDate {
        parse_civil_date(text).unwrap()
    }

    fn holidays(country: Country, year: i32) -> Vec<NaiveDate> {
        public_holidays(country, year)
            .into_iter()
            .map(|h| h.date)
            .collect()
    }

    fn dates(texts: &[&str]) -> Vec<NaiveDate> {
        texts.iter().map(|t| d(t)).collect()
    }

    #[test]
    fn easter_sunday_matches_known_years() {
        for (year, easter) in [
            (2024, "2024-03-31"),
            (2025, "2025-04-20"),
            (2026, "2026-04-05"),
            (2027, "2027-03-28"),
            (2000, "2000-04-23"),
            (2038, "2038-04-25"),
            (1818, "1818-03-22"),
        ] {
            assert_eq!(easter_sunday(year), Some(d(easter)), "{year}");
        }
    }

    #[test]
    fn norwegian_holidays_2024_to_2027_match_no_28() {
        let expected = [
            (
                2024,
                [
                    "2024-01-01",
                    "2024-03-28",
                    "2024-03-29",
                    "2024-03-31",
                    "2024-04-01",
                    "2024-05-01",
                    "2024-05-09",
                    "2024-05-17",
                    "2024-05-19",
                    "2024-05-20",
                    "2024-12-25",
                    "2024-12-26",
                ],
            ),
            (
                2025,
                [
                    "2025-01-01",
                    "2025-04-17",
                    "2025-04-18",
                    "2025-04-20",
                    "2025-04-21",
                    "2025-05-01",
                    "2025-05-17",
                    "2025-05-29",
                    "2025-06-08",
                    "2025-06-09",
                    "2025-12-25",
                    "2025-12-26",
                ],
            ),
            (
                2026,
                [
                    "2026-01-01",
                    "2026-04-02",
                    "2026-04-03",
                    "2026-04-05",
                    "2026-04-06",
                    "2026-05-01",
                    "2026-05-14",
                    "2026-05-17",
                    "2026-05-24",
                    "2026-05-25",
                    "2026-12-25",
                    "2026-12-26",
                ],
            ),
            (
                2027,
                [
                    "2027-01-01",
                    "2027-03-25",
                    "2027-03-26",
                    "2027-03-28",
                    "2027-03-29",
                    "2027-05-01",
                    "2027-05-06",
                    "2027-05-16",
                    "2027-05-17",
                    "2027-05-17",
                    "2027-12-25",
                    "2027-12-26",
                ],
            ),
        ];
        // In 2027 Whit Monday and Constitution Day are both 17 May: listed once per holiday.
        for (year, days) in expected {
            assert_eq!(holidays(Country::Norway, year), dates(&days), "{year}");
        }
    }

    #[test]
    fn norway_christmas_eve_and_new_years_eve_are_business_days_on_weekdays() {
        assert!(is_business_day(Country::Norway, d("2025-12-24")));
        assert!(is_business_day(Country::Norway, d("2025-12-31")));
        assert!(!is_business_day(Country::Norway, d("2025-12-25")));
    }

    #[test]
    fn sweden_2026_holidays_include_midsummer_all_saints_and_the_eves() {
        let want = dates(&[
            "2026-01-01",
            "2026-01-06",
            "2026-04-03",
            "2026-04-05",
            "2026-04-06",
            "2026-05-01",
            "2026-05-14",
            "2026-05-24",
            "2026-06-06",
            "2026-06-19",
            "2026-06-20",
            "2026-10-31",
            "2026-12-24",
            "2026-12-25",
            "2026-12-26",
            "2026-12-31",
        ]);
        assert_eq!(holidays(Country::Sweden, 2026), want);
    }

    #[test]
    fn sweden_all_saints_can_fall_in_november() {
        // 2025: Saturday 1 November.
        assert!(is_public_holiday(Country::Sweden, d("2025-11-01")));
        assert!(!is_public_holiday(Country::Sweden, d("2025-10-31")));
        assert!(!is_business_day(Country::Sweden, d("2025-12-31")));
    }

    #[test]
    fn finland_2025_holidays_follow_fi_08() {
        let want = dates(&[
            "2025-01-01",
            "2025-01-06",
            "2025-04-18",
            "2025-04-20",
            "2025-04-21",
            "2025-05-01",
            "2025-05-29",
            "2025-06-08",
            "2025-06-20",
            "2025-06-21",
            "2025-11-01",
            "2025-12-06",
            "2025-12-24",
            "2025-12-25",
            "2025-12-26",
        ]);
        assert_eq!(holidays(Country::Finland, 2025), want);
        assert!(is_business_day(Country::Finland, d("2025-12-31")));
        assert!(!is_public_holiday(Country::Finland, d("2025-05-17")));
    }

    #[test]
    fn weekends_are_not_business_days() {
        assert!(!is_business_day(Country::Norway, d("2026-11-21")));
        assert!(!is_business_day(Country::Norway, d("2026-11-22")));
        assert!(is_business_day(Country::Norway, d("2026-11-23")));
    }

    #[test]
    fn roll_forward_skips_easter_and_weekend() {
        // Maundy Thursday 2026-04-02 → Tuesday 2026-04-07 after Easter Monday.
        assert_eq!(
            roll_forward_to_business_day(Country::Norway, d("2026-04-02")),
            d("2026-04-07")
        );
        // 17 May 2025 is a Saturday → Monday 19 May.
        assert_eq!(
            roll_forward_to_business_day(Country::Norway, d("2025-05-17")),
            d("2025-05-19")
        );
        // Christmas 2026: Fri 25, Sat 26, Sun 27 → Mon 28.
        assert_eq!(
            roll_forward_to_business_day(Country::Norway, d("2026-12-25")),
            d("2026-12-28")
        );
        // A business day stays.
        assert_eq!(
            roll_forward_to_business_day(Country::Norway, d("2026-12-24")),
            d("2026-12-24")
        );
        // Sweden: Midsummer Eve 2026-06-19 → Monday 22.
        assert_eq!(
            roll_forward_to_business_day(Country::Sweden, d("2026-06-19")),
            d("2026-06-22")
        );
    }

    #[test]
    fn roll_forward_never_panics_at_the_end_of_time() {
        assert_eq!(
            roll_forward_to_business_day(Country::Norway, NaiveDate::MAX),
            NaiveDate::MAX
        );
        assert_eq!(
            add_days_rolled(Country::Norway, NaiveDate::MAX, 5),
            NaiveDate::MAX
        );
    }
}
