//! `forfall claim`: what a late debtor owes on the payment date: principal, late-payment
//! interest and statutory fees, with every rate and fee traceable to its table row.

use std::fmt::Write as _;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::Serialize;
use thiserror::Error;

use super::fees::{FeeError, FeeLine, FeeOptions, statutory_fees};
use super::interest::{DayCount, InterestError, InterestPeriod, late_interest};
use super::tables::{self, TableError};
use super::{Country, DebtorKind, cents};

/// The input of `forfall claim`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimRequest {
    pub country: Country,
    /// The principal; at most 2 decimals.
    pub amount: Decimal,
    /// Must be the country's currency (NOK, SEK, EUR), any case.
    pub currency: String,
    /// The due date, already moved off weekends and holidays where the law moves it
    /// (NO-30, FI-08); interest runs from the day after.
    pub due: NaiveDate,
    /// The payment date (inclusive).
    pub paid: NaiveDate,
    pub debtor: DebtorKind,
    pub options: ClaimOptions,
}

impl ClaimRequest {
    /// A request with default options.
    pub fn new(
        country: Country,
        amount: Decimal,
        currency: impl Into<String>,
        due: NaiveDate,
        paid: NaiveDate,
        debtor: DebtorKind,
    ) -> Self {
        ClaimRequest {
            country,
            amount,
            currency: currency.into(),
            due,
            paid,
            debtor,
            options: ClaimOptions::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClaimOptions {
    pub fees: FeeOptions,
    /// Overrides the country table's day count (FI-09 asks for this to be configurable).
    pub day_count: Option<DayCount>,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ClaimError {
    #[error("--country {0:?}: expected NO, SE or FI")]
    UnknownCountry(String),
    #[error("--debtor {0:?}: expected consumer or business")]
    UnknownDebtor(String),
    #[error("--amount {0} has more than 2 decimals")]
    AmountPrecision(Decimal),
    #[error("--amount {0} must be greater than zero")]
    AmountNotPositive(Decimal),
    #[error("--amount {0} is too large")]
    AmountTooLarge(Decimal),
    #[error("--currency {given:?} does not match --country {country}: expected {expected}")]
    Currency {
        given: String,
        country: Country,
        expected: &'static str,
    },
    #[error(transparent)]
    Table(#[from] TableError),
    #[error(transparent)]
    Interest(#[from] InterestError),
    #[error(transparent)]
    Fee(#[from] FeeError),
}

/// The result; serialises to the JSON of `forfall claim --json`. Money is a string with two
/// decimals; rates are % p.a. strings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Claim {
    pub country: Country,
    pub debtor: DebtorKind,
    pub currency: String,
    #[serde(with = "rust_decimal::serde::str")]
    pub principal: Decimal,
    pub due: NaiveDate,
    pub paid: NaiveDate,
    /// The national name of the interest, e.g. "forsinkelsesrente".
    pub interest_name: String,
    pub interest_legal_reference: String,
    pub day_count: DayCount,
    #[serde(with = "rust_decimal::serde::str")]
    pub interest: Decimal,
    pub periods: Vec<InterestPeriod>,
    pub fees: Vec<FeeLine>,
    #[serde(with = "rust_decimal::serde::str")]
    pub fees_total: Decimal,
    /// principal + interest + fees.
    #[serde(with = "rust_decimal::serde::str")]
    pub total: Decimal,
    /// Some rate or fee used is not confirmed; see `notes`.
    pub provisional: bool,
    /// "no.toml 2026-11-23": the table and version every number came from.
    pub table_version: String,
    pub notes: Vec<String>,
}

/// `--country`: NO, SE or FI, in any case.
pub fn parse_country(text: &str) -> Result<Country, ClaimError> {
    text.trim()
        .to_ascii_uppercase()
        .parse()
        .map_err(|_| ClaimError::UnknownCountry(text.to_owned()))
}

/// `--debtor`: consumer or business, in any case.
pub fn parse_debtor(text: &str) -> Result<DebtorKind, ClaimError> {
    DebtorKind::parse(&text.trim().to_ascii_lowercase())
        .ok_or_else(|| ClaimError::UnknownDebtor(text.to_owned()))
}

/// Validates the request and computes the claim from the embedded tables.
pub fn calculate(request: &ClaimRequest) -> Result<Claim, ClaimError> {
    let amount = request.amount;
    if amount.normalize().scale() > 2 {
        return Err(ClaimError::AmountPrecision(amount));
    }
    if amount <= Decimal::ZERO {
        return Err(ClaimError::AmountNotPositive(amount));
    }
    let country = request.country;
    let currency = request.currency.trim().to_ascii_uppercase();
    if currency != country.currency().code() {
        return Err(ClaimError::Currency {
            given: request.currency.clone(),
            country,
            expected: country.currency().code(),
        });
    }
    let table = tables::table(country)?;
    let principal = cents(amount);
    let (debtor, due, paid) = (request.debtor, request.due, request.paid);
    let day_count = request
        .options
        .day_count
        .unwrap_or(table.interest.day_count);
    let interest =
        late_interest(table, debtor, principal, due, paid, day_count).map_err(|e| match e {
            InterestError::Overflow { .. } => ClaimError::AmountTooLarge(amount),
            other => ClaimError::Interest(other),
        })?;
    let fees = statutory_fees(table, debtor, due, paid, request.options.fees)?;
    let fees_total = cents(fees.iter().map(|f| f.amount).sum());
    let total = principal
        .checked_add(interest.total)
        .and_then(|t| t.checked_add(fees_total))
        .ok_or(ClaimError::AmountTooLarge(amount))?;

    let name = &table.interest.name;
    let mut notes: Vec<String> = interest
        .periods
        .iter()
        .filter(|p| !p.confirmed)
        .map(|p| {
            format!(
                "{name} {} % for {}..{} is unconfirmed: {}",
                p.rate, p.from, p.to, p.source
            )
        })
        .collect();
    notes.extend(fees.iter().filter(|f| !f.confirmed).map(|f| {
        format!(
            "{} {currency} {} is unconfirmed: {}",
            f.name, f.amount, f.source
        )
    }));
    if interest.periods.iter().map(|p| p.interest).sum::<Decimal>() != interest.total {
        notes.push(
            "period amounts are rounded for display; the interest total is rounded once \
             from their unrounded sum"
                .into(),
        );
    }

    Ok(Claim {
        country,
        debtor,
        currency,
        principal,
        due,
        paid,
        interest_name: name.clone(),
        interest_legal_reference: table.interest.legal_reference.clone(),
        day_count,
        interest: interest.total,
        provisional: interest.provisional || fees.iter().any(|f| !f.confirmed),
        periods: interest.periods,
        fees,
        fees_total,
        total,
        table_version: format!("{} {}", table.file, table.version),
        notes,
    })
}

impl Claim {
    /// A human-readable rendering: the interest periods as a small table, the fees, the total.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let c = &self.currency;
        // Writing to a String cannot fail.
        let _ = self.write_text(&mut out, c);
        out
    }

    fn write_text(&self, out: &mut String, c: &str) -> std::fmt::Result {
        writeln!(out, "Claim ({}, {} debtor)", self.country, self.debtor)?;
        writeln!(out, "  due {}, paid {}", self.due, self.paid)?;
        writeln!(out, "  {:<44}{c} {:>12}", "principal", self.principal)?;
        writeln!(out)?;
        writeln!(
            out,
            "{} ({}, {})",
            self.interest_name,
            self.interest_legal_reference,
            self.day_count.label()
        )?;
        if self.periods.is_empty() {
            writeln!(out, "  none: paid on or before the due date")?;
        } else {
            writeln!(
                out,
                "  from        to          days  rate %  year    interest"
            )?;
            for p in &self.periods {
                let mark = if p.confirmed { "" } else { "  (unconfirmed)" };
                writeln!(
                    out,
                    "  {}  {}  {:>4}  {:>6}  {:>4}  {:>10}{mark}",
                    p.from, p.to, p.days, p.rate, p.year_days, p.interest
                )?;
            }
        }
        writeln!(out, "  {:<44}{c} {:>12}", "interest", self.interest)?;
        writeln!(out)?;
        writeln!(out, "fees")?;
        if self.fees.is_empty() {
            writeln!(out, "  none")?;
        }
        for f in &self.fees {
            let mark = if f.confirmed { "" } else { " (unconfirmed)" };
            writeln!(
                out,
                "  {:<44}{c} {:>12}",
                format!("{}{mark}", f.name),
                f.amount
            )?;
            writeln!(out, "    {}; earliest {}", f.legal_reference, f.earliest)?;
            if let Some(note) = &f.note {
                writeln!(out, "    {note}")?;
            }
        }
        writeln!(out, "  {:<44}{c} {:>12}", "fees", self.fees_total)?;
        writeln!(out)?;
        writeln!(out, "{:<46}{c} {:>12}", "TOTAL", self.total)?;
        if self.provisional {
            writeln!(out, "\nPROVISIONAL: uses unconfirmed values")?;
        }
        for note in &self.notes {
            writeln!(out, "  - {note}")?;
        }
        writeln!(out, "\nrates: {}", self.table_version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::fees::FeeKind;
    use rust_decimal_macros::dec;

    fn date(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn request(
        country: Country,
        amount: Decimal,
        due: &str,
        paid: &str,
        debtor: DebtorKind,
    ) -> ClaimRequest {
        ClaimRequest::new(
            country,
            amount,
            country.currency().code(),
            date(due),
            date(paid),
            debtor,
        )
    }

    fn claim(
        country: Country,
        amount: Decimal,
        due: &str,
        paid: &str,
        debtor: DebtorKind,
    ) -> Claim {
        calculate(&request(country, amount, due, paid, debtor)).unwrap()
    }

    fn consumer(country: Country, amount: Decimal, due: &str, paid: &str) -> Claim {
        claim(country, amount, due, paid, DebtorKind::Consumer)
    }

    fn shape(c: &Claim) -> Vec<(NaiveDate, NaiveDate, u32, Decimal, u32)> {
        c.periods
            .iter()
            .map(|p| (p.from, p.to, p.days, p.rate, p.year_days))
            .collect()
    }

    // ---- golden examples, shared/domain.md Part 2 § 6 ----

    #[test]
    fn g1_norway_60_days_at_12_50_is_205_48() {
        let c = consumer(Country::Norway, dec!(10000), "2025-03-31", "2025-05-30");
        assert_eq!(
            shape(&c),
            [(date("2025-04-01"), date("2025-05-30"), 60, dec!(12.50), 365)]
        );
        assert_eq!(c.interest.to_string(), "205.48");
        assert!(!c.provisional);
    }

    #[test]
    fn g2_norway_crossing_1_july_is_92_47() {
        let c = consumer(Country::Norway, dec!(10000), "2023-06-15", "2023-07-15");
        assert_eq!(
            shape(&c),
            [
                (date("2023-06-16"), date("2023-06-30"), 15, dec!(10.75), 365),
                (date("2023-07-01"), date("2023-07-15"), 15, dec!(11.75), 365),
            ]
        );
        assert_eq!(c.interest.to_string(), "92.47");
    }

    #[test]
    fn g3_norway_into_a_leap_year_divides_by_366_and_is_102_74() {
        let c = consumer(Country::Norway, dec!(10000), "2023-12-15", "2024-01-15");
        assert_eq!(
            shape(&c),
            [
                (date("2023-12-16"), date("2023-12-31"), 16, dec!(11.75), 365),
                (date("2024-01-01"), date("2024-01-15"), 15, dec!(12.50), 366),
            ]
        );
        assert_eq!(c.periods[0].interest, dec!(51.51)); // 51.507
        assert_eq!(c.periods[1].interest, dec!(51.23)); // 51.230
        assert_eq!(c.interest.to_string(), "102.74");
    }

    #[test]
    fn g4_norway_derived_rates_give_101_71_and_103_01_flagged_provisional() {
        let mid = consumer(Country::Norway, dec!(10000), "2025-06-15", "2025-07-15");
        assert_eq!(mid.interest.to_string(), "101.71");
        assert!(mid.provisional);
        assert!(
            mid.notes
                .iter()
                .any(|n| n.contains("12.25 % for 2025-07-01..2025-07-15"))
        );

        let new_year = consumer(Country::Norway, dec!(10000), "2025-12-15", "2026-01-15");
        assert_eq!(
            shape(&new_year),
            [
                (date("2025-12-16"), date("2025-12-31"), 16, dec!(12.25), 365),
                (date("2026-01-01"), date("2026-01-15"), 15, dec!(12.00), 365),
            ]
        );
        assert_eq!(new_year.interest.to_string(), "103.01");
        assert!(new_year.provisional);
    }

    #[test]
    fn g5_sweden_110_days_at_8_percent_is_163_46() {
        let c = consumer(Country::Sweden, dec!(6780), "2020-12-31", "2021-04-20");
        assert_eq!(
            shape(&c),
            [(date("2021-01-01"), date("2021-04-20"), 110, dec!(8.00), 365)]
        );
        assert_eq!(c.interest.to_string(), "163.46"); // Kronofogden shows SEK 163
        assert_eq!(c.periods[0].rate.to_string(), "8.00");
        assert_eq!(c.principal + c.interest, dec!(6943.46));
    }

    #[test]
    fn g6_finland_300_eur_3_days_at_9_5_is_0_23() {
        // 2023 H1: viitekorko 2.5 + 7 = 9.5 % for a consumer.
        let c = consumer(Country::Finland, dec!(300), "2023-03-01", "2023-03-04");
        assert_eq!(
            shape(&c),
            [(date("2023-03-02"), date("2023-03-04"), 3, dec!(9.50), 365)]
        );
        assert_eq!(c.interest.to_string(), "0.23");
    }

    #[test]
    fn g7_g8_norway_consumer_varsel_35_business_standardkompensasjon_470() {
        let c = consumer(Country::Norway, dec!(1800), "2025-03-03", "2025-05-30");
        assert_eq!(c.fees.len(), 1);
        assert_eq!(
            (c.fees[0].kind, c.fees[0].amount),
            (FeeKind::Reminder, dec!(35))
        );
        assert_eq!(c.fees[0].earliest, date("2025-03-17"));

        let b = claim(
            Country::Norway,
            dec!(1800),
            "2025-03-03",
            "2025-05-30",
            DebtorKind::Business,
        );
        let amounts: Vec<_> = b
            .fees
            .iter()
            .map(|f| (f.kind, f.amount, f.deduction))
            .collect();
        assert_eq!(
            amounts,
            [
                (FeeKind::Reminder, dec!(35), None),
                (FeeKind::FixedCompensation, dec!(435), Some(dec!(35))),
            ]
        );
        assert_eq!(b.fees_total, dec!(470)); // standardkompensasjon 470 in 2025 H1, net of the fee
        assert!(!b.provisional);
    }

    #[test]
    fn g9_sweden_business_30_days_at_11_percent_450_plus_90_41() {
        let c = claim(
            Country::Sweden,
            dec!(10000),
            "2025-03-01",
            "2025-03-31",
            DebtorKind::Business,
        );
        assert_eq!(
            shape(&c),
            [(date("2025-03-02"), date("2025-03-31"), 30, dec!(11.00), 365)]
        );
        assert_eq!(c.interest.to_string(), "90.41");
        assert_eq!(c.fees.len(), 1);
        assert_eq!(
            (c.fees[0].kind, c.fees[0].amount),
            (FeeKind::FixedCompensation, dec!(450))
        );
        assert_eq!(c.total.to_string(), "10540.41");
    }

    #[test]
    fn g10_finland_consumer_45_days_at_10_5_is_12_95_plus_reminder_5() {
        let c = consumer(Country::Finland, dec!(1000), "2025-02-01", "2025-03-18");
        assert_eq!(
            shape(&c),
            [(date("2025-02-02"), date("2025-03-18"), 45, dec!(10.50), 365)]
        );
        assert_eq!(c.interest.to_string(), "12.95");
        assert_eq!(c.fees_total.to_string(), "5.00");
        assert_eq!(c.total.to_string(), "1017.95");
    }

    // ---- the claim as a whole ----

    #[test]
    fn paid_on_the_due_date_owes_only_the_principal() {
        let c = consumer(Country::Norway, dec!(10000), "2025-03-31", "2025-03-31");
        assert!(c.periods.is_empty() && c.fees.is_empty());
        assert_eq!(c.total.to_string(), "10000.00");
        assert!(c.to_text().contains("none: paid on or before the due date"));
    }

    #[test]
    fn paid_before_the_due_date_is_not_an_error() {
        let c = consumer(Country::Sweden, dec!(500), "2025-03-31", "2025-03-01");
        assert_eq!(c.total, dec!(500));
    }

    #[test]
    fn json_has_money_as_two_decimal_strings_and_periods_and_fees() {
        let c = consumer(Country::Norway, dec!(10000), "2025-03-31", "2025-05-30");
        let json = serde_json::to_value(&c).unwrap();
        assert_eq!(json["principal"], "10000.00");
        assert_eq!(json["currency"], "NOK");
        assert_eq!(json["interest"], "205.48");
        assert_eq!(json["total"], "10240.48");
        assert_eq!(json["fees_total"], "35.00");
        assert_eq!(json["provisional"], false);
        assert_eq!(json["day_count"], "actual/actual");
        assert_eq!(json["table_version"], "no.toml 2026-11-23");
        let period = &json["periods"][0];
        assert_eq!(period["from"], "2025-04-01");
        assert_eq!(period["to"], "2025-05-30");
        assert_eq!(period["days"], 60);
        assert_eq!(period["rate"], "12.50");
        assert_eq!(period["interest"], "205.48");
        let fee = &json["fees"][0];
        assert_eq!(fee["kind"], "reminder");
        assert_eq!(fee["amount"], "35.00");
        assert_eq!(fee["legal_reference"], "inkassoforskriften § 1-2");
        assert_eq!(fee["confirmed"], true);
        assert!(fee.get("deduction").is_none());
    }

    #[test]
    fn text_shows_periods_fees_and_total() {
        let c = claim(
            Country::Norway,
            dec!(10000),
            "2023-12-15",
            "2024-01-15",
            DebtorKind::Business,
        );
        let text = c.to_text();
        assert!(
            text.contains("2023-12-16  2023-12-31    16   11.75   365       51.51"),
            "{text}"
        );
        assert!(
            text.contains("2024-01-01  2024-01-15    15   12.50   366       51.23"),
            "{text}"
        );
        assert!(text.contains("standardkompensasjon"), "{text}");
        assert!(text.contains("TOTAL"), "{text}");
        assert!(text.contains(&c.total.to_string()), "{text}");
    }

    #[test]
    fn a_missing_rate_surfaces_as_the_claim_error() {
        let err = calculate(&request(
            Country::Sweden,
            dec!(100),
            "2026-06-20",
            "2026-07-10",
            DebtorKind::Consumer,
        ))
        .unwrap_err();
        assert!(
            err.to_string().starts_with("no Swedish dröjsmålsränta for 2026-07-01..2026-12-31 (table se.toml version 2026-11-23)"),
            "{err}"
        );
    }

    #[test]
    fn finnish_day_count_can_be_overridden() {
        let mut r = request(
            Country::Finland,
            dec!(36600),
            "2024-02-27",
            "2024-03-01",
            DebtorKind::Consumer,
        );
        assert_eq!(calculate(&r).unwrap().periods[0].year_days, 365);
        r.options.day_count = Some(DayCount::ActualActual);
        let c = calculate(&r).unwrap();
        assert_eq!(c.periods[0].year_days, 366);
        assert_eq!(c.day_count, DayCount::ActualActual);
    }

    // ---- validation ----

    #[test]
    fn amount_with_three_decimals_is_rejected_naming_amount() {
        let err = calculate(&request(
            Country::Norway,
            dec!(10.005),
            "2025-01-01",
            "2025-02-01",
            DebtorKind::Consumer,
        ))
        .unwrap_err();
        assert_eq!(err, ClaimError::AmountPrecision(dec!(10.005)));
        assert_eq!(err.to_string(), "--amount 10.005 has more than 2 decimals");
    }

    #[test]
    fn trailing_zeros_are_not_extra_decimals() {
        let c = calculate(&request(
            Country::Norway,
            dec!(10.500),
            "2025-01-01",
            "2025-01-01",
            DebtorKind::Consumer,
        ))
        .unwrap();
        assert_eq!(c.principal.to_string(), "10.50");
    }

    #[test]
    fn negative_or_zero_amount_is_rejected_naming_amount() {
        for amount in [dec!(-1), dec!(0)] {
            let err = calculate(&request(
                Country::Norway,
                amount,
                "2025-01-01",
                "2025-02-01",
                DebtorKind::Consumer,
            ))
            .unwrap_err();
            assert_eq!(err, ClaimError::AmountNotPositive(amount));
            assert!(err.to_string().starts_with("--amount"));
        }
    }

    #[test]
    fn an_amount_too_large_for_the_interest_formula_is_an_amount_error_not_a_panic() {
        let huge = Decimal::MAX;
        let err = calculate(&request(
            Country::Norway,
            huge,
            "2025-01-01",
            "2025-02-01",
            DebtorKind::Consumer,
        ))
        .unwrap_err();
        assert_eq!(err, ClaimError::AmountTooLarge(huge));
        assert!(err.to_string().starts_with("--amount"));
    }

    #[test]
    fn country_and_debtor_parse_in_any_case_and_name_the_argument_on_error() {
        assert_eq!(parse_country("no").ok(), Some(Country::Norway));
        assert_eq!(parse_debtor("Business").ok(), Some(DebtorKind::Business));
        let err = parse_country("DK").err().map(|e| e.to_string());
        assert!(err.is_some_and(|m| m.contains("--country")));
        let err = parse_debtor("person").err().map(|e| e.to_string());
        assert!(err.is_some_and(|m| m.contains("--debtor")));
    }

    #[test]
    fn currency_must_match_the_country_and_the_error_names_currency() {
        let mut r = request(
            Country::Sweden,
            dec!(100),
            "2025-01-01",
            "2025-02-01",
            DebtorKind::Consumer,
        );
        r.currency = "NOK".into();
        let err = calculate(&r).unwrap_err();
        assert_eq!(
            err.to_string(),
            "--currency \"NOK\" does not match --country SE: expected SEK"
        );
        r.currency = "sek".into();
        assert_eq!(calculate(&r).unwrap().currency, "SEK");
    }
}
