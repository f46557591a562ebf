//! The statutory fees a creditor may add to a late claim, by country, debtor kind and date.
//!
//! Each line is the statutory maximum for one fee-bearing step, assuming the step is taken on
//! the earliest day the law allows (`earliest`); a step whose earliest day is after the payment
//! date cannot have happened and gives no line. Paid on or before the due date: no fees.
//!
//! | country | consumer | business (and public bodies) |
//! |---|---|---|
//! | NO | purregebyr R/20 (R/10 if due ≤ 2020-09-30), from due + 14 | the same + standardkompensasjon less that purregebyr |
//! | SE | påminnelseavgift 60 only if agreed + inkassokrav 180 | förseningsersättning 450 only |
//! | FI | maksumuistutus ≤ 5, from due + 14 | maksumuistutus 12 from due + 10 + vakiokorvaus 40 |

use chrono::{Days, NaiveDate};
use rust_decimal::Decimal;
use serde::Serialize;
use thiserror::Error;

use super::tables::{CountryTable, Dated, FeeRow, FeeTable, row_at};
use super::{Country, DebtorKind, cents};

/// What a fee is for; the national name is in [`FeeLine::name`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FeeKind {
    /// A reminder or (NO) collection-warning letter fee.
    Reminder,
    /// Sweden's inkassokrav.
    CollectionDemand,
    /// The EU-01 fixed compensation (standardkompensasjon, förseningsersättning, vakiokorvaus).
    FixedCompensation,
}

/// One fee of a claim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FeeLine {
    pub kind: FeeKind,
    /// The national name, e.g. "inkassokrav".
    pub name: String,
    #[serde(with = "rust_decimal::serde::str")]
    pub amount: Decimal,
    /// What was deducted from the statutory amount to get `amount` (NO-24: purregebyr
    /// already claimed is deducted from standardkompensasjon).
    #[serde(
        skip_serializing_if = "Option::is_none",
        with = "rust_decimal::serde::str_option"
    )]
    pub deduction: Option<Decimal>,
    pub legal_reference: String,
    pub source: String,
    pub confirmed: bool,
    /// The earliest day the fee-bearing step may be taken.
    pub earliest: NaiveDate,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Facts about the claim that the dates alone do not tell.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FeeOptions {
    /// Sweden: a påminnelseavgift was agreed when the debt arose (SE-01). Without that
    /// agreement the fee may not be charged, so the default is not to charge it.
    pub se_reminder_fee_agreed: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FeeError {
    #[error("table {file} (version {version}) has no [fees.{section}]")]
    MissingTable {
        section: &'static str,
        file: &'static str,
        version: String,
    },
    #[error("no {what} for {date} (table {file} version {version})")]
    MissingValue {
        what: String,
        date: NaiveDate,
        file: &'static str,
        version: String,
    },
}

/// First day of a fee-bearing reminder, counted from the due date: NO-02/NO-05 and FI-02 say
/// ≥ 14 days; FI-06 says ≥ 10 days after the previous letter, read as the due date.
const NO_REMINDER_AFTER_DAYS: u64 = 14;
const FI_CONSUMER_REMINDER_AFTER_DAYS: u64 = 14;
const FI_BUSINESS_REMINDER_AFTER_DAYS: u64 = 10;

/// The fees for a claim due on `due` and paid on `paid`.
pub fn statutory_fees(
    table: &CountryTable,
    debtor: DebtorKind,
    due: NaiveDate,
    paid: NaiveDate,
    options: FeeOptions,
) -> Result<Vec<FeeLine>, FeeError> {
    // The day `days` after the due date, if the debtor had not paid before it.
    let reached = |days| due.checked_add_days(Days::new(days)).filter(|d| *d <= paid);
    let Some(late) = reached(1) else {
        return Ok(Vec::new());
    };
    let t = Lookup { table };
    let fees = &table.fees;
    let mut lines = Vec::new();
    match (table.country, debtor) {
        (Country::Norway, _) => {
            let reminder = reached(NO_REMINDER_AFTER_DAYS)
                .map(|send| t.no_reminder(due, send))
                .transpose()?;
            let compensation = match debtor {
                DebtorKind::Business => Some(t.no_standard_compensation(late, reminder.as_ref())?),
                DebtorKind::Consumer => None,
            };
            lines.extend(reminder);
            lines.extend(compensation);
        }
        (Country::Sweden, DebtorKind::Consumer) => {
            if options.se_reminder_fee_agreed {
                lines.extend(t.fixed(("reminder", &fees.reminder), FeeKind::Reminder, late)?);
            }
            let demand = ("collection_demand", &fees.collection_demand);
            lines.extend(t.fixed(demand, FeeKind::CollectionDemand, late)?);
        }
        (Country::Sweden, DebtorKind::Business) => {
            // SE-06: replaces the påminnelse, inkassokrav and plan fees (G9).
            let section = ("fixed_compensation", &fees.fixed_compensation);
            lines.extend(t.fixed(section, FeeKind::FixedCompensation, late)?);
        }
        (Country::Finland, DebtorKind::Consumer) => {
            if let Some(send) = reached(FI_CONSUMER_REMINDER_AFTER_DAYS) {
                lines.extend(t.fixed(("reminder", &fees.reminder), FeeKind::Reminder, send)?);
            }
        }
        (Country::Finland, DebtorKind::Business) => {
            if let Some(send) = reached(FI_BUSINESS_REMINDER_AFTER_DAYS) {
                let section = ("reminder_business", &fees.reminder_business);
                lines.extend(t.fixed(section, FeeKind::Reminder, send)?);
            }
            let section = ("fixed_compensation", &fees.fixed_compensation);
            lines.extend(t.fixed(section, FeeKind::FixedCompensation, late)?);
        }
    }
    Ok(lines)
}

type Section<'a> = (&'static str, &'a Option<FeeTable>);

struct Lookup<'a> {
    table: &'a CountryTable,
}

impl<'a> Lookup<'a> {
    fn section(&self, (section, fee): Section<'a>) -> Result<&'a FeeTable, FeeError> {
        fee.as_ref().ok_or_else(|| FeeError::MissingTable {
            section,
            file: self.table.file,
            version: self.table.version.clone(),
        })
    }

    fn missing(&self, fee: &FeeTable, date: NaiveDate) -> FeeError {
        FeeError::MissingValue {
            what: format!("{} {}", self.table.country.adjective(), fee.name),
            date,
            file: self.table.file,
            version: self.table.version.clone(),
        }
    }

    fn row(&self, fee: &'a FeeTable, date: NaiveDate) -> Result<&'a FeeRow, FeeError> {
        row_at(&fee.rows, date).ok_or_else(|| self.missing(fee, date))
    }

    fn line(&self, fee: &FeeTable, kind: FeeKind, amount: Decimal, earliest: NaiveDate) -> FeeLine {
        FeeLine {
            kind,
            name: fee.name.clone(),
            amount: cents(amount),
            deduction: None,
            legal_reference: fee.legal_reference.clone(),
            source: String::new(),
            confirmed: true,
            earliest,
            note: None,
        }
    }

    /// A fixed amount looked up on `earliest`; none before the fee was introduced.
    fn fixed(
        &self,
        section: Section<'a>,
        kind: FeeKind,
        earliest: NaiveDate,
    ) -> Result<Option<FeeLine>, FeeError> {
        let fee = self.section(section)?;
        if fee.introduced.is_some_and(|day| earliest < day) {
            return Ok(None);
        }
        let row = self.row(fee, earliest)?;
        let amount = row.amount.ok_or_else(|| self.missing(fee, earliest))?;
        Ok(Some(FeeLine {
            source: row.source.clone(),
            confirmed: row.confirmed,
            ..self.line(fee, kind, amount, earliest)
        }))
    }

    /// NO-13/NO-14: R / divisor, the divisor chosen by the due date, R by the sending date.
    fn no_reminder(&self, due: NaiveDate, send: NaiveDate) -> Result<FeeLine, FeeError> {
        let fee = self.section(("reminder", &self.table.fees.reminder))?;
        let rates = self.section(("inkassosats", &self.table.fees.inkassosats))?;
        let row = self.row(fee, due)?;
        let divisor = row.r_divisor.ok_or_else(|| self.missing(fee, due))?;
        let r_row = self.row(rates, send)?;
        let r = r_row.amount.ok_or_else(|| self.missing(rates, send))?;
        Ok(FeeLine {
            source: format!(
                "R/{divisor} by due date {due} ({}); R = {r} on {send} ({})",
                row.source, r_row.source
            ),
            confirmed: row.confirmed && r_row.confirmed,
            ..self.line(fee, FeeKind::Reminder, r / Decimal::from(divisor), send)
        })
    }

    /// NO-24: the value for the half-year in which interest starts, less the purregebyr of
    /// this claim. A half with no known value uses the last earlier known value, unconfirmed.
    fn no_standard_compensation(
        &self,
        start: NaiveDate,
        reminder: Option<&FeeLine>,
    ) -> Result<FeeLine, FeeError> {
        let fee = self.section(("fixed_compensation", &self.table.fees.fixed_compensation))?;
        let rows = &fee.rows;
        let at = rows
            .iter()
            .position(|r| r.covers(start))
            .ok_or_else(|| self.missing(fee, start))?;
        let row = &rows[at];
        let currency = self.table.country.currency().code();
        let mut notes = Vec::new();
        let (gross, source, confirmed) = match row.amount {
            Some(amount) => (amount, row.source.clone(), row.confirmed),
            None => {
                let (known, amount) = rows[..at]
                    .iter()
                    .rev()
                    .find_map(|r| r.amount.map(|a| (r, a)))
                    .ok_or_else(|| self.missing(fee, start))?;
                notes.push(format!(
                    "no value known for {}; used {currency} {} of {} (last known value)",
                    span(row),
                    cents(amount),
                    span(known)
                ));
                (amount, format!("{}; {}", row.source, known.source), false)
            }
        };
        let deduction = reminder
            .map(|r| r.amount.min(gross))
            .filter(|d| !d.is_zero());
        if let Some(d) = deduction {
            notes.push(format!(
                "{currency} {} less the purregebyr {currency} {} claimed above",
                cents(gross),
                cents(d)
            ));
        }
        Ok(FeeLine {
            deduction: deduction.map(cents),
            source,
            confirmed,
            note: (!notes.is_empty()).then(|| notes.join("; ")),
            ..self.line(
                fee,
                FeeKind::FixedCompensation,
                gross - deduction.unwrap_or_default(),
                start,
            )
        })
    }
}

fn span(row: &impl Dated) -> String {
    match row.to() {
        Some(to) => format!("{}..{to}", row.from()),
        None => format!("{}..", row.from()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::tables::table;
    use rust_decimal_macros::dec;

    fn date(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn fees(country: Country, debtor: DebtorKind, due: &str, paid: &str) -> Vec<FeeLine> {
        fees_with(country, debtor, due, paid, FeeOptions::default()).unwrap()
    }

    fn fees_with(
        country: Country,
        debtor: DebtorKind,
        due: &str,
        paid: &str,
        options: FeeOptions,
    ) -> Result<Vec<FeeLine>, FeeError> {
        statutory_fees(
            table(country).unwrap(),
            debtor,
            date(due),
            date(paid),
            options,
        )
    }

    fn amounts(lines: &[FeeLine]) -> Vec<(FeeKind, Decimal)> {
        lines.iter().map(|l| (l.kind, l.amount)).collect()
    }

    #[test]
    fn no_fees_when_paid_on_the_due_date() {
        for country in [Country::Norway, Country::Sweden, Country::Finland] {
            for debtor in [DebtorKind::Consumer, DebtorKind::Business] {
                assert!(fees(country, debtor, "2025-03-03", "2025-03-03").is_empty());
            }
        }
    }

    #[test]
    fn g7_norwegian_varsel_fee_is_35_and_earliest_14_days_after_due() {
        let lines = fees(
            Country::Norway,
            DebtorKind::Consumer,
            "2025-03-03",
            "2025-05-30",
        );
        assert_eq!(amounts(&lines), [(FeeKind::Reminder, dec!(35))]);
        assert_eq!(lines[0].earliest, date("2025-03-17"));
        assert_eq!(lines[0].legal_reference, "inkassoforskriften § 1-2");
        assert!(lines[0].confirmed);
    }

    #[test]
    fn norwegian_consumer_paying_before_day_14_owes_no_reminder_fee() {
        assert!(
            fees(
                Country::Norway,
                DebtorKind::Consumer,
                "2025-03-03",
                "2025-03-16"
            )
            .is_empty()
        );
        assert_eq!(
            fees(
                Country::Norway,
                DebtorKind::Consumer,
                "2025-03-03",
                "2025-03-17"
            )
            .len(),
            1
        );
    }

    #[test]
    fn norwegian_fee_transition_is_by_due_date_70_then_35() {
        // Both would be sent in October 2020; only the due date decides.
        let before = fees(
            Country::Norway,
            DebtorKind::Consumer,
            "2020-09-30",
            "2020-11-30",
        );
        let after = fees(
            Country::Norway,
            DebtorKind::Consumer,
            "2020-10-01",
            "2020-11-30",
        );
        assert_eq!(amounts(&before), [(FeeKind::Reminder, dec!(70))]);
        assert_eq!(amounts(&after), [(FeeKind::Reminder, dec!(35))]);
        assert_eq!(before[0].amount.to_string(), "70.00");
    }

    #[test]
    fn g8_norwegian_business_gets_standardkompensasjon_470_less_the_varsel_fee() {
        let lines = fees(
            Country::Norway,
            DebtorKind::Business,
            "2025-03-03",
            "2025-05-30",
        );
        assert_eq!(
            amounts(&lines),
            [
                (FeeKind::Reminder, dec!(35)),
                (FeeKind::FixedCompensation, dec!(435))
            ]
        );
        let compensation = &lines[1];
        assert_eq!(
            compensation.amount + compensation.deduction.unwrap(),
            dec!(470)
        );
        assert_eq!(compensation.legal_reference, "forsinkelsesrenteloven § 3a");
        assert!(compensation.confirmed);
    }

    #[test]
    fn norwegian_business_paying_before_day_14_gets_full_standardkompensasjon() {
        let lines = fees(
            Country::Norway,
            DebtorKind::Business,
            "2025-03-03",
            "2025-03-10",
        );
        assert_eq!(amounts(&lines), [(FeeKind::FixedCompensation, dec!(470))]);
        assert_eq!(lines[0].deduction, None);
    }

    #[test]
    fn unknown_standardkompensasjon_half_uses_last_known_value_unconfirmed() {
        // Interest starts 2025-07-02 (2025 H2: no value in domain.md).
        let lines = fees(
            Country::Norway,
            DebtorKind::Business,
            "2025-07-01",
            "2025-07-05",
        );
        assert_eq!(amounts(&lines), [(FeeKind::FixedCompensation, dec!(470))]);
        assert!(!lines[0].confirmed);
        let note = lines[0].note.as_deref().unwrap();
        assert!(
            note.contains("no value known for 2025-07-01..2025-12-31"),
            "{note}"
        );
        assert!(
            note.contains("NOK 470.00 of 2025-01-01..2025-06-30"),
            "{note}"
        );
    }

    #[test]
    fn norwegian_2026_fee_is_unconfirmed_because_r_2026_is() {
        let lines = fees(
            Country::Norway,
            DebtorKind::Consumer,
            "2026-01-05",
            "2026-03-01",
        );
        assert_eq!(amounts(&lines), [(FeeKind::Reminder, dec!(35))]);
        assert!(!lines[0].confirmed);
    }

    #[test]
    fn norwegian_fee_before_the_r_table_is_an_error() {
        let err = fees_with(
            Country::Norway,
            DebtorKind::Consumer,
            "2016-11-01",
            "2017-02-01",
            FeeOptions::default(),
        )
        .unwrap_err();
        assert!(
            err.to_string().starts_with(
                "no Norwegian purregebyr (purring eller inkassovarsel) for 2016-11-01"
            ),
            "{err}"
        );
    }

    #[test]
    fn swedish_consumer_gets_inkassokrav_and_the_reminder_fee_only_if_agreed() {
        let default = fees(
            Country::Sweden,
            DebtorKind::Consumer,
            "2025-03-01",
            "2025-03-31",
        );
        assert_eq!(amounts(&default), [(FeeKind::CollectionDemand, dec!(180))]);
        let agreed = FeeOptions {
            se_reminder_fee_agreed: true,
        };
        let lines = fees_with(
            Country::Sweden,
            DebtorKind::Consumer,
            "2025-03-01",
            "2025-03-31",
            agreed,
        )
        .unwrap();
        assert_eq!(
            amounts(&lines),
            [
                (FeeKind::Reminder, dec!(60)),
                (FeeKind::CollectionDemand, dec!(180))
            ]
        );
    }

    #[test]
    fn g9_swedish_business_gets_450_and_no_reminder_or_inkassokrav_fee() {
        let agreed = FeeOptions {
            se_reminder_fee_agreed: true,
        };
        let lines = fees_with(
            Country::Sweden,
            DebtorKind::Business,
            "2025-03-01",
            "2025-03-31",
            agreed,
        )
        .unwrap();
        assert_eq!(amounts(&lines), [(FeeKind::FixedCompensation, dec!(450))]);
        assert_eq!(lines[0].name, "förseningsersättning");
    }

    #[test]
    fn g10_finnish_consumer_reminder_is_5_from_day_14() {
        let lines = fees(
            Country::Finland,
            DebtorKind::Consumer,
            "2025-02-01",
            "2025-03-18",
        );
        assert_eq!(amounts(&lines), [(FeeKind::Reminder, dec!(5))]);
        assert_eq!(lines[0].earliest, date("2025-02-15"));
        assert!(
            fees(
                Country::Finland,
                DebtorKind::Consumer,
                "2025-02-01",
                "2025-02-14"
            )
            .is_empty()
        );
    }

    #[test]
    fn finnish_business_gets_reminder_12_and_vakiokorvaus_40() {
        let lines = fees(
            Country::Finland,
            DebtorKind::Business,
            "2025-02-01",
            "2025-03-18",
        );
        assert_eq!(
            amounts(&lines),
            [
                (FeeKind::Reminder, dec!(12)),
                (FeeKind::FixedCompensation, dec!(40))
            ]
        );
        assert!(lines.iter().all(|l| l.confirmed));
    }

    #[test]
    fn finnish_business_before_may_2022_gets_eu_vakiokorvaus_unconfirmed_and_no_reminder_cap() {
        let lines = fees(
            Country::Finland,
            DebtorKind::Business,
            "2021-03-01",
            "2021-04-30",
        );
        assert_eq!(amounts(&lines), [(FeeKind::FixedCompensation, dec!(40))]);
        assert!(!lines[0].confirmed);
    }
}
