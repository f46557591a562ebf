//! The versioned rate and fee tables, embedded from `rates/*.toml`, parsed and validated once.
//!
//! Every row has an inclusive date range, its value, a `source` and a `confirmed` flag. Rows of
//! one table are contiguous and never overlap; a date outside every row has no known value,
//! and the callers turn that into an error instead of guessing.

use std::sync::LazyLock;

use chrono::{Datelike, Days, NaiveDate};
use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, de::Error as _};
use thiserror::Error;

use super::interest::DayCount;
use super::{Country, DebtorKind};

/// An embedded table that does not parse or breaks an invariant. Only a bad edit of
/// `rates/*.toml` causes this, and the unit tests below catch it before release.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TableError {
    #[error("rate table {file} does not parse: {message}")]
    Parse { file: &'static str, message: String },
    #[error("rate table {file} (version {version}) is invalid: {message}")]
    Invalid {
        file: &'static str,
        version: String,
        message: String,
    },
}

/// All the rates and fees of one country, as of `version`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CountryTable {
    /// When the table was last reviewed, e.g. "2026-11-23".
    pub version: String,
    pub country: Country,
    pub interest: InterestTable,
    pub fees: FeeTables,
    /// File name, for messages ("no.toml").
    #[serde(skip)]
    pub file: &'static str,
}

/// The late-payment interest rate, one row per rate period (a half-year in all three countries).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InterestTable {
    /// The national name: "forsinkelsesrente", "dröjsmålsränta", "viivästyskorko".
    pub name: String,
    pub legal_reference: String,
    pub day_count: DayCount,
    /// Percentage points added to the reference rate, by debtor kind.
    #[serde(deserialize_with = "decimal")]
    pub margin_consumer: Decimal,
    #[serde(deserialize_with = "decimal")]
    pub margin_business: Decimal,
    pub periods: Vec<InterestRow>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InterestRow {
    pub from: NaiveDate,
    /// Inclusive; always present for interest rows (checked on load).
    pub to: Option<NaiveDate>,
    /// The reference rate (% p.a.): Norges Bank policy rate, referensränta, viitekorko.
    #[serde(deserialize_with = "decimal")]
    pub reference: Decimal,
    /// The statutory rate when it is published as such (Norway); otherwise reference + margin.
    #[serde(default, deserialize_with = "optional_decimal")]
    pub rate: Option<Decimal>,
    pub source: String,
    pub confirmed: bool,
}

/// The fee tables; which ones a country has, and how they are used, is decided in `fees.rs`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeeTables {
    /// Norway's inkassosats R, of which the reminder fee is a fraction.
    pub inkassosats: Option<FeeTable>,
    /// The (consumer, in Finland) reminder fee: purregebyr, påminnelseavgift, maksumuistutus.
    pub reminder: Option<FeeTable>,
    /// Finland's B2B reminder fee.
    pub reminder_business: Option<FeeTable>,
    /// Sweden's inkassokrav fee.
    pub collection_demand: Option<FeeTable>,
    /// The EU-01 fixed compensation: standardkompensasjon, förseningsersättning, vakiokorvaus.
    pub fixed_compensation: Option<FeeTable>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeeTable {
    pub name: String,
    pub legal_reference: String,
    /// The day the fee came into existence: before it, the fee does not apply (no line, no
    /// error). Without it, a date before the first row is an unknown value (an error).
    pub introduced: Option<NaiveDate>,
    pub rows: Vec<FeeRow>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeeRow {
    pub from: NaiveDate,
    /// Inclusive; only the last row may be open-ended (a fixed statutory amount in force).
    pub to: Option<NaiveDate>,
    /// The amount; absent when no value is known for the period.
    #[serde(default, deserialize_with = "optional_decimal")]
    pub amount: Option<Decimal>,
    /// For fees defined as R / divisor (Norway).
    pub r_divisor: Option<u32>,
    pub source: String,
    pub confirmed: bool,
}

/// A decimal written as a string ("12.50"). TOML numbers are rejected: a float would pass
/// through f64 and could silently change the value.
fn decimal<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Decimal, D::Error> {
    let text = String::deserialize(deserializer)?;
    Decimal::from_str_exact(&text)
        .map_err(|e| D::Error::custom(format!("{text:?} is not an exact decimal: {e}")))
}

fn optional_decimal<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Decimal>, D::Error> {
    #[derive(Deserialize)]
    struct Wrapped(#[serde(deserialize_with = "decimal")] Decimal);
    Ok(Option::<Wrapped>::deserialize(deserializer)?.map(|Wrapped(d)| d))
}

/// A row that covers an inclusive date range.
pub trait Dated {
    fn from(&self) -> NaiveDate;
    fn to(&self) -> Option<NaiveDate>;

    fn covers(&self, date: NaiveDate) -> bool {
        self.from() <= date && self.to().is_none_or(|to| date <= to)
    }
}

impl Dated for InterestRow {
    fn from(&self) -> NaiveDate {
        self.from
    }
    fn to(&self) -> Option<NaiveDate> {
        self.to
    }
}

impl Dated for FeeRow {
    fn from(&self) -> NaiveDate {
        self.from
    }
    fn to(&self) -> Option<NaiveDate> {
        self.to
    }
}

/// The row covering `date`, if any.
pub fn row_at<R: Dated>(rows: &[R], date: NaiveDate) -> Option<&R> {
    rows.iter().find(|row| row.covers(date))
}

impl InterestRow {
    /// The rate (% p.a.) for this row and debtor kind, with at least two decimals ("8.00").
    pub fn rate_for(&self, table: &InterestTable, debtor: DebtorKind) -> Decimal {
        let mut rate = self
            .rate
            .unwrap_or_else(|| self.reference + table.margin(debtor));
        if rate.scale() < 2 {
            rate.rescale(2);
        }
        rate
    }
}

impl InterestTable {
    pub fn margin(&self, debtor: DebtorKind) -> Decimal {
        match debtor {
            DebtorKind::Consumer => self.margin_consumer,
            DebtorKind::Business => self.margin_business,
        }
    }
}

/// The half-year (1 Jan–30 Jun or 1 Jul–31 Dec) containing `date`: the period for which all
/// three countries set their rates, used to name a missing period.
pub fn half_year(date: NaiveDate) -> (NaiveDate, NaiveDate) {
    let year = date.year();
    let (start, end) = if date.month() <= 6 {
        ((1, 1), (6, 30))
    } else {
        ((7, 1), (12, 31))
    };
    let at = |(m, d): (u32, u32)| NaiveDate::from_ymd_opt(year, m, d).unwrap_or(date);
    (at(start), at(end))
}

static NO: LazyLock<Result<CountryTable, TableError>> = LazyLock::new(|| {
    CountryTable::parse(Country::Norway, "no.toml", include_str!("rates/no.toml"))
});
static SE: LazyLock<Result<CountryTable, TableError>> = LazyLock::new(|| {
    CountryTable::parse(Country::Sweden, "se.toml", include_str!("rates/se.toml"))
});
static FI: LazyLock<Result<CountryTable, TableError>> = LazyLock::new(|| {
    CountryTable::parse(Country::Finland, "fi.toml", include_str!("rates/fi.toml"))
});

/// The embedded table of `country`, parsed on first use.
pub fn table(country: Country) -> Result<&'static CountryTable, TableError> {
    let table = match country {
        Country::Norway => &NO,
        Country::Sweden => &SE,
        Country::Finland => &FI,
    };
    table.as_ref().map_err(Clone::clone)
}

impl CountryTable {
    /// Parses and validates a table. `file` names it in messages.
    pub fn parse(expected: Country, file: &'static str, text: &str) -> Result<Self, TableError> {
        let mut table: CountryTable = toml::from_str(text).map_err(|e| TableError::Parse {
            file,
            message: e.to_string(),
        })?;
        table.file = file;
        table
            .validate(expected)
            .map_err(|message| TableError::Invalid {
                file,
                version: table.version.clone(),
                message,
            })?;
        Ok(table)
    }

    fn validate(&self, expected: Country) -> Result<(), String> {
        if self.country != expected {
            return Err(format!("country is {}, expected {expected}", self.country));
        }
        if self.version.trim().is_empty() {
            return Err("version is empty".into());
        }
        let interest = &self.interest;
        if interest.margin_consumer.is_sign_negative()
            || interest.margin_business.is_sign_negative()
        {
            return Err("interest margins must not be negative".into());
        }
        if let Some(row) = interest.periods.iter().find(|r| r.to.is_none()) {
            return Err(format!("interest row from {} has no `to`", row.from));
        }
        contiguous("interest.periods", &interest.periods)?;
        let fees = &self.fees;
        for (name, fee) in [
            ("inkassosats", &fees.inkassosats),
            ("reminder", &fees.reminder),
            ("reminder_business", &fees.reminder_business),
            ("collection_demand", &fees.collection_demand),
            ("fixed_compensation", &fees.fixed_compensation),
        ] {
            let Some(fee) = fee else { continue };
            let what = format!("fees.{name}");
            contiguous(&what, &fee.rows)?;
            if let (Some(introduced), Some(first)) = (fee.introduced, fee.rows.first())
                && introduced > first.from
            {
                return Err(format!(
                    "{what}: introduced {introduced} is after its first row"
                ));
            }
            for row in &fee.rows {
                if row.amount.is_some() && row.r_divisor.is_some() {
                    return Err(format!(
                        "{what} row from {}: both amount and r_divisor",
                        row.from
                    ));
                }
                if row.amount.is_some_and(|a| a.is_sign_negative()) || row.r_divisor == Some(0) {
                    return Err(format!("{what} row from {}: bad value", row.from));
                }
            }
        }
        Ok(())
    }
}

/// Rows non-empty, each `from <= to`, each starting the day after the previous one ends,
/// and only the last one open-ended.
fn contiguous<R: Dated>(what: &str, rows: &[R]) -> Result<(), String> {
    if rows.is_empty() {
        return Err(format!("{what} has no rows"));
    }
    for (i, row) in rows.iter().enumerate() {
        let is_last = i + 1 == rows.len();
        match row.to() {
            Some(to) if to < row.from() => {
                return Err(format!("{what}: row {} ends before it starts", row.from()));
            }
            None if !is_last => {
                return Err(format!(
                    "{what}: row {} is open-ended but not last",
                    row.from()
                ));
            }
            _ => {}
        }
        if let Some(next) = rows.get(i + 1) {
            let expected = row.to().and_then(|to| to.checked_add_days(Days::new(1)));
            if expected != Some(next.from()) {
                return Err(format!(
                    "{what}: row {} does not start the day after row {} ends (gap or overlap)",
                    next.from(),
                    row.from()
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    fn date(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn every_embedded_table_parses_and_is_contiguous() {
        for country in [Country::Norway, Country::Sweden, Country::Finland] {
            let table = table(country).unwrap();
            assert_eq!(table.country, country);
            assert_eq!(table.version, "2026-11-23");
        }
    }

    #[test]
    fn interest_tables_cover_2020_h1_to_2026_h1_in_half_years() {
        for country in [Country::Norway, Country::Sweden, Country::Finland] {
            let rows = &table(country).unwrap().interest.periods;
            assert_eq!(rows.len(), 13, "{country}");
            assert_eq!(rows[0].from, date("2020-01-01"));
            assert_eq!(rows[12].to, Some(date("2026-06-30")));
            for row in rows {
                assert_eq!(
                    half_year(row.from),
                    (row.from, row.to.unwrap()),
                    "{country}"
                );
            }
        }
    }

    #[test]
    fn norwegian_rates_equal_policy_rate_plus_eight() {
        let t = &table(Country::Norway).unwrap().interest;
        for row in &t.periods {
            assert_eq!(row.rate, Some(row.reference + dec!(8)), "row {}", row.from);
        }
    }

    #[test]
    fn unconfirmed_rows_are_exactly_the_ones_domain_md_marks_unconfirmed() {
        let unconfirmed = |c| -> Vec<NaiveDate> {
            let rows = &table(c).unwrap().interest.periods;
            rows.iter()
                .filter(|r| !r.confirmed)
                .map(|r| r.from)
                .collect()
        };
        let no = ["2024-07-01", "2025-07-01", "2026-01-01"].map(date);
        assert_eq!(unconfirmed(Country::Norway), no);
        assert!(unconfirmed(Country::Sweden).is_empty());
        assert_eq!(
            unconfirmed(Country::Finland),
            ["2025-07-01", "2026-01-01"].map(date)
        );
    }

    #[test]
    fn overlapping_rows_are_rejected() {
        let text = r#"
            version = "t"
            country = "NO"
            [interest]
            name = "x"
            legal_reference = "x"
            day_count = "actual/actual"
            margin_consumer = "8"
            margin_business = "8"
            [[interest.periods]]
            from = "2020-01-01"
            to = "2020-06-30"
            reference = "0"
            source = "x"
            confirmed = true
            [[interest.periods]]
            from = "2020-06-30"
            to = "2020-12-31"
            reference = "0"
            source = "x"
            confirmed = true
            [fees]
        "#;
        let err = CountryTable::parse(Country::Norway, "test.toml", text).unwrap_err();
        assert!(err.to_string().contains("gap or overlap"), "{err}");
    }

    #[test]
    fn a_float_rate_is_rejected_so_no_value_passes_through_f64() {
        let text = r#"
            version = "t"
            country = "NO"
            [interest]
            name = "x"
            legal_reference = "x"
            day_count = "actual/actual"
            margin_consumer = 8.0
            margin_business = "8"
            periods = []
            [fees]
        "#;
        let result = CountryTable::parse(Country::Norway, "test.toml", text);
        assert!(
            matches!(result, Err(TableError::Parse { .. })),
            "{result:?}"
        );
    }

    #[test]
    fn half_year_of_a_date() {
        assert_eq!(
            half_year(date("2026-08-15")),
            (date("2026-07-01"), date("2026-12-31"))
        );
        assert_eq!(
            half_year(date("2024-02-29")),
            (date("2024-01-01"), date("2024-06-30"))
        );
    }
}
