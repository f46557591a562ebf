//! The wording of the creditor e-mails in Norwegian Bokmål and English, and the locale formatting
//! of amounts and dates.
//!
//! Bodies are plain text: a greeting, one sentence saying what happens, a table-like list with one
//! line per invoice (columns padded with spaces, amounts right-aligned), what the creditor can do,
//! and a short footer. Text that comes from outside (names, invoice numbers, notes) is put on one
//! line: control characters such as line breaks become spaces, so nobody can add lines or headers.

use chrono::{Datelike, NaiveDate};
use rust_decimal::{Decimal, RoundingStrategy};

use super::{Digest, DigestItem, DigestKind, Rendered};
use crate::domain::{Currency, Language};

/// The space inside formatted amounts: the thousands separator in Norwegian (`1 250,00 kr`) and the
/// gap between number and currency in both languages. It is U+00A0 NO-BREAK SPACE, so that a mail
/// program never wraps a line in the middle of an amount.
pub const AMOUNT_SPACE: char = '\u{a0}';

/// Customer names longer than this are shortened with `…` so that the list stays readable.
const MAX_NAME_CHARS: usize = 40;

/// Shown where a value is missing.
const MISSING: &str = "–";

/// An amount as a creditor reads it, rounded (half away from zero) to the currency's minor unit.
///
/// - Norwegian: `1 250,00 kr` for NOK, `1 250,00 EUR` for other currencies, `-1 250,00 kr` when
///   negative.
/// - English: `NOK 1,250.00`, `NOK -1,250.00` when negative.
///
/// The spaces are [`AMOUNT_SPACE`]. Zero is never shown with a minus sign.
pub fn format_amount(amount: Decimal, currency: Currency, language: Language) -> String {
    let exponent = currency.exponent();
    let rounded = amount.round_dp_with_strategy(exponent, RoundingStrategy::MidpointAwayFromZero);
    let negative = rounded.is_sign_negative() && !rounded.is_zero();
    let mut magnitude = rounded.abs();
    // Shows exactly `exponent` decimals (`12` → `12.00`); a value too large for that keeps fewer.
    magnitude.rescale(exponent);
    let digits = magnitude.to_string();
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits.as_str(), ""));
    let (thousands, decimal_mark) = match language {
        Language::Nb => (AMOUNT_SPACE, ','),
        Language::En => (',', '.'),
    };
    let mut number = group_thousands(whole, thousands);
    if !fraction.is_empty() {
        number.push(decimal_mark);
        number.push_str(fraction);
    }
    let sign = if negative { "-" } else { "" };
    match language {
        Language::Nb if currency == Currency::NOK => format!("{sign}{number}{AMOUNT_SPACE}kr"),
        Language::Nb => format!("{sign}{number}{AMOUNT_SPACE}{currency}"),
        Language::En => format!("{currency}{AMOUNT_SPACE}{sign}{number}"),
    }
}

/// A date as a creditor reads it: Norwegian `28.11.2026`, English `28 Nov 2026`.
pub fn format_date(date: NaiveDate, language: Language) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    match language {
        Language::Nb => format!("{:02}.{:02}.{}", date.day(), date.month(), date.year()),
        Language::En => {
            let month = MONTHS.get(date.month0() as usize).copied().unwrap_or("");
            format!("{} {month} {}", date.day(), date.year())
        }
    }
}

/// Renders a digest to a subject and a plain-text body in the creditor's language.
///
/// Subjects are short and name the count and a date: the transfer date for warnings and weekly
/// lists (prefixed "fra"/"from" when the invoices' dates differ, then the earliest), the digest's
/// day for transfers and dead letters.
pub fn render(digest: &Digest) -> Rendered {
    let words = Words::of(digest.language);
    let (subject, blocks) = match digest.kind {
        DigestKind::Warning => warning(digest, &words),
        DigestKind::Transfer => transfer(digest, &words),
        DigestKind::WeeklyList => weekly_list(digest, &words),
        DigestKind::DeadLetter => dead_letter(digest, &words),
    };
    let name = one_line(&digest.creditor_name);
    let greeting = if name.is_empty() {
        format!("{},", words.hello)
    } else {
        format!("{} {name},", words.hello)
    };
    let mut text = greeting;
    for block in blocks.iter().filter(|block| !block.is_empty()) {
        text.push_str("\n\n");
        text.push_str(block);
    }
    text.push_str("\n\n-- \n");
    text.push_str(words.footer);
    text.push('\n');
    Rendered {
        subject: one_line(&subject),
        text,
    }
}

/// The fixed words of one language.
struct Words {
    language: Language,
    hello: &'static str,
    footer: &'static str,
    invoice: Noun,
    job: Noun,
    column_invoice: &'static str,
    column_customer: &'static str,
    column_amount: &'static str,
    column_due: &'static str,
    column_transfer: &'static str,
    column_first_reminder: &'static str,
    column_free_until: &'static str,
    column_failure: &'static str,
}

/// A noun's singular and plural, with the count in front.
struct Noun {
    one: &'static str,
    many: &'static str,
}

impl Noun {
    fn count(&self, n: usize) -> String {
        format!("{n} {}", if n == 1 { self.one } else { self.many })
    }
}

impl Words {
    fn of(language: Language) -> Words {
        match language {
            Language::Nb => Words {
                language,
                hello: "Hei",
                footer: "Denne e-posten er sendt automatisk av Forfall.",
                invoice: Noun {
                    one: "faktura",
                    many: "fakturaer",
                },
                job: Noun {
                    one: "jobb",
                    many: "jobber",
                },
                column_invoice: "Faktura",
                column_customer: "Kunde",
                column_amount: "Beløp",
                column_due: "Forfall",
                column_transfer: "Til inkasso",
                column_first_reminder: "Første påminnelse",
                column_free_until: "Gratis stopp t.o.m.",
                column_failure: "Hva som feilet",
            },
            Language::En => Words {
                language,
                hello: "Hello",
                footer: "This e-mail was sent automatically by Forfall.",
                invoice: Noun {
                    one: "invoice",
                    many: "invoices",
                },
                job: Noun {
                    one: "job",
                    many: "jobs",
                },
                column_invoice: "Invoice",
                column_customer: "Customer",
                column_amount: "Amount",
                column_due: "Due",
                column_transfer: "To collection",
                column_first_reminder: "First reminder",
                column_free_until: "Free to stop until",
                column_failure: "What failed",
            },
        }
    }

    fn date(&self, date: NaiveDate) -> String {
        format_date(date, self.language)
    }

    fn optional_date(&self, date: Option<NaiveDate>) -> String {
        date.map_or_else(|| MISSING.to_owned(), |date| self.date(date))
    }

    fn amount(&self, item: &DigestItem) -> String {
        format_amount(item.amount, item.currency, self.language)
    }

    /// A column name quoted the way the language quotes.
    fn quoted(&self, column: &str) -> String {
        match self.language {
            Language::Nb => format!("«{column}»"),
            Language::En => format!("“{column}”"),
        }
    }

    /// The invoice columns every list starts with.
    fn invoice_columns(&self) -> Vec<Column> {
        vec![
            Column::left(self.column_invoice),
            Column::left(self.column_customer),
            Column::right(self.column_amount),
            Column::left(self.column_due),
        ]
    }

    fn invoice_cells(&self, item: &DigestItem) -> Vec<String> {
        vec![
            cell(&item.invoice_number),
            shorten(&cell(&item.customer_name), MAX_NAME_CHARS),
            self.amount(item),
            self.date(item.due),
        ]
    }

    /// The list of a warning or weekly list: the invoice columns and the transfer date.
    fn transfer_table(&self, items: &[DigestItem]) -> String {
        let mut columns = self.invoice_columns();
        columns.push(Column::left(self.column_transfer));
        let rows = items
            .iter()
            .map(|item| {
                let mut row = self.invoice_cells(item);
                row.push(self.optional_date(item.transfer_on));
                row
            })
            .collect::<Vec<_>>();
        table(&columns, &rows)
    }
}

/// When the invoices of a digest share a date, or the earliest when they do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum When {
    /// Every invoice has this date.
    Same(NaiveDate),
    /// The dates differ (or some are missing); this is the earliest.
    From(NaiveDate),
    /// No invoice has the date.
    Unknown,
}

impl When {
    fn of(items: &[DigestItem], date: impl Fn(&DigestItem) -> Option<NaiveDate>) -> When {
        let dates = items.iter().map(&date).collect::<Vec<_>>();
        match dates.iter().flatten().min() {
            None => When::Unknown,
            Some(&earliest) if dates.iter().all(|d| *d == Some(earliest)) => When::Same(earliest),
            Some(&earliest) => When::From(earliest),
        }
    }
}

fn warning(digest: &Digest, words: &Words) -> (String, Vec<String>) {
    let n = digest.items.len();
    let when = When::of(&digest.items, |item| item.transfer_on);
    let count = words.invoice.count(n);
    let hint = digest.opt_out_hint.as_deref().map(one_line);
    match digest.language {
        Language::Nb => {
            let subject = match when {
                When::Same(d) => format!("{count} går til inkasso {}", words.date(d)),
                When::From(d) => format!("{count} går til inkasso fra {}", words.date(d)),
                When::Unknown => format!("{count} går snart til inkasso"),
            };
            let on = match when {
                When::Same(d) => words.date(d),
                When::From(_) => format!(
                    "på datoen i kolonnen {}",
                    words.quoted(words.column_transfer)
                ),
                When::Unknown => "snart".to_owned(),
            };
            let intro = match n {
                0 => "Ingen fakturaer går til inkasso nå.".to_owned(),
                1 => format!("Denne fakturaen går til inkasso {on} hvis du ikke gjør noe:"),
                _ => format!("Disse {n} fakturaene går til inkasso {on} hvis du ikke gjør noe:"),
            };
            let mut act = "Vil du ikke at en faktura skal gå til inkasso, kan du unnta fakturaen \
                           – eller alle fakturaer til den kunden – før den tid. Du kan også \
                           stoppe alle overføringer til inkasso."
                .to_owned();
            if let Some(hint) = hint {
                act.push_str(&format!("\nSlik gjør du det: {hint}"));
            }
            let blocks = vec![
                intro,
                words.transfer_table(&digest.items),
                act,
                "Fakturaer som blir betalt eller bestridt før den tid, går ikke til inkasso."
                    .to_owned(),
            ];
            (subject, blocks)
        }
        Language::En => {
            let verb = if n == 1 { "goes" } else { "go" };
            let subject = match when {
                When::Same(d) => format!("{count} {verb} to collection on {}", words.date(d)),
                When::From(d) => format!("{count} {verb} to collection from {}", words.date(d)),
                When::Unknown => format!("{count} {verb} to collection soon"),
            };
            let on = match when {
                When::Same(d) => format!("on {}", words.date(d)),
                When::From(_) => format!(
                    "on the date in the column {}",
                    words.quoted(words.column_transfer)
                ),
                When::Unknown => "soon".to_owned(),
            };
            let intro = match n {
                0 => "No invoices go to collection now.".to_owned(),
                1 => format!("This invoice goes to collection {on} unless you act:"),
                _ => format!("These {n} invoices go to collection {on} unless you act:"),
            };
            let mut act = "If you do not want an invoice to go to collection, opt out the \
                           invoice – or all invoices of that customer – before then. You can \
                           also stop all transfers to collection."
                .to_owned();
            if let Some(hint) = hint {
                act.push_str(&format!("\nHow: {hint}"));
            }
            let blocks = vec![
                intro,
                words.transfer_table(&digest.items),
                act,
                "Invoices that are paid or disputed before then do not go to collection."
                    .to_owned(),
            ];
            (subject, blocks)
        }
    }
}

fn weekly_list(digest: &Digest, words: &Words) -> (String, Vec<String>) {
    let n = digest.items.len();
    let when = When::of(&digest.items, |item| item.transfer_on);
    let count = words.invoice.count(n);
    let hint = digest.opt_out_hint.as_deref().map(one_line);
    match digest.language {
        Language::Nb => {
            let subject = match when {
                When::Same(d) => {
                    format!(
                        "Ukeliste: {count} registreres for inkasso {}",
                        words.date(d)
                    )
                }
                When::From(d) => {
                    format!(
                        "Ukeliste: {count} registreres for inkasso fra {}",
                        words.date(d)
                    )
                }
                When::Unknown => format!("Ukeliste: {count} registreres for inkasso"),
            };
            let on = match when {
                When::Same(d) => format!(" {}", words.date(d)),
                When::From(_) => format!(
                    " på datoen i kolonnen {}",
                    words.quoted(words.column_transfer)
                ),
                When::Unknown => String::new(),
            };
            let intro = match n {
                0 => "Ingen fakturaer blir registrert for inkasso denne uken.".to_owned(),
                1 => format!(
                    "Denne fakturaen blir registrert for inkasso{on} hvis du ikke fjerner den \
                     før det:"
                ),
                _ => format!(
                    "Disse {n} fakturaene blir registrert for inkasso{on} hvis du ikke fjerner \
                     dem før det:"
                ),
            };
            let mut act = "Du fjerner en faktura fra listen ved å unnta den – eller alle \
                           fakturaer til den kunden – fra inkasso. Du kan også stoppe alle \
                           overføringer til inkasso."
                .to_owned();
            if let Some(hint) = hint {
                act.push_str(&format!("\nSlik gjør du det: {hint}"));
            }
            let blocks = vec![
                intro,
                words.transfer_table(&digest.items),
                act,
                "Fakturaer som blir betalt eller bestridt før den tid, blir ikke registrert."
                    .to_owned(),
            ];
            (subject, blocks)
        }
        Language::En => {
            let subject = match when {
                When::Same(d) => format!(
                    "Weekly list: {count} to be registered for collection on {}",
                    words.date(d)
                ),
                When::From(d) => format!(
                    "Weekly list: {count} to be registered for collection from {}",
                    words.date(d)
                ),
                When::Unknown => format!("Weekly list: {count} to be registered for collection"),
            };
            let on = match when {
                When::Same(d) => format!(" on {}", words.date(d)),
                When::From(_) => format!(
                    " on the date in the column {}",
                    words.quoted(words.column_transfer)
                ),
                When::Unknown => String::new(),
            };
            let intro = match n {
                0 => "No invoices will be registered for collection this week.".to_owned(),
                1 => format!(
                    "This invoice will be registered for collection{on} unless you remove it \
                     before then:"
                ),
                _ => format!(
                    "These {n} invoices will be registered for collection{on} unless you remove \
                     them before then:"
                ),
            };
            let mut act = "To remove an invoice from the list, opt it out – or all invoices of \
                           that customer. You can also stop all transfers to collection."
                .to_owned();
            if let Some(hint) = hint {
                act.push_str(&format!("\nHow: {hint}"));
            }
            let blocks = vec![
                intro,
                words.transfer_table(&digest.items),
                act,
                "Invoices that are paid or disputed before then are not registered.".to_owned(),
            ];
            (subject, blocks)
        }
    }
}

fn transfer(digest: &Digest, words: &Words) -> (String, Vec<String>) {
    let n = digest.items.len();
    let day = words.date(digest.day);
    let count = words.invoice.count(n);
    let reminder = When::of(&digest.items, |item| item.first_reminder_on);
    let free_until = When::of(&digest.items, |item| item.free_withdrawal_until);

    let mut columns = words.invoice_columns();
    columns.push(Column::left(words.column_first_reminder));
    columns.push(Column::left(words.column_free_until));
    let rows = digest
        .items
        .iter()
        .map(|item| {
            let mut row = words.invoice_cells(item);
            row.push(words.optional_date(item.first_reminder_on));
            row.push(words.optional_date(item.free_withdrawal_until));
            row
        })
        .collect::<Vec<_>>();
    let list = table(&columns, &rows);
    let reminder_column = words.quoted(words.column_first_reminder);
    let free_column = words.quoted(words.column_free_until);

    match digest.language {
        Language::Nb => {
            let subject = format!("{count} sendt til inkasso {day}");
            let intro = match n {
                0 => format!("Ingen fakturaer ble sendt til inkasso {day}."),
                1 => format!("Denne fakturaen ble sendt til inkasso {day}:"),
                _ => format!("Disse {n} fakturaene ble sendt til inkasso {day}:"),
            };
            let mut next = Vec::new();
            match reminder {
                When::Same(d) => next.push(format!(
                    "Den første påminnelsen til kunden sendes {}.",
                    words.date(d)
                )),
                When::From(_) => next.push(format!(
                    "Den første påminnelsen til kunden sendes på datoen i kolonnen \
                     {reminder_column}."
                )),
                When::Unknown => {}
            }
            match free_until {
                When::Same(d) => next.push(format!(
                    "Du kan stoppe inkassoen uten kostnad til og med {}.",
                    words.date(d)
                )),
                When::From(_) => next.push(format!(
                    "Du kan stoppe inkassoen uten kostnad til og med datoen i kolonnen \
                     {free_column}."
                )),
                When::Unknown => {}
            }
            (subject, vec![intro, list, next.join("\n")])
        }
        Language::En => {
            let subject = format!("{count} transferred to collection on {day}");
            let intro = match n {
                0 => format!("No invoices were transferred to collection on {day}."),
                1 => format!("This invoice was transferred to collection on {day}:"),
                _ => format!("These {n} invoices were transferred to collection on {day}:"),
            };
            let mut next = Vec::new();
            match reminder {
                When::Same(d) => next.push(format!(
                    "The debtor's first reminder goes out on {}.",
                    words.date(d)
                )),
                When::From(_) => next.push(format!(
                    "The debtor's first reminder goes out on the date in the column \
                     {reminder_column}."
                )),
                When::Unknown => {}
            }
            match free_until {
                When::Same(d) => next.push(format!(
                    "You can stop collection free of charge up to and including {}.",
                    words.date(d)
                )),
                When::From(_) => next.push(format!(
                    "You can stop collection free of charge up to and including the date in \
                     the column {free_column}."
                )),
                When::Unknown => {}
            }
            (subject, vec![intro, list, next.join("\n")])
        }
    }
}

fn dead_letter(digest: &Digest, words: &Words) -> (String, Vec<String>) {
    let n = digest.items.len();
    let day = words.date(digest.day);
    let count = words.job.count(n);

    let mut columns = words.invoice_columns();
    columns.push(Column::left(words.column_failure));
    let rows = digest
        .items
        .iter()
        .map(|item| {
            let mut row = words.invoice_cells(item);
            row.push(
                item.note
                    .as_deref()
                    .map_or_else(|| MISSING.to_owned(), cell),
            );
            row
        })
        .collect::<Vec<_>>();
    let list = table(&columns, &rows);

    match digest.language {
        Language::Nb => {
            let subject = format!("Trenger oppfølging: {count} feilet {day}");
            let intro = match n {
                0 => "Ingen jobber har feilet.".to_owned(),
                1 => "Forfall har gitt opp en jobb etter gjentatte forsøk, og den trenger \
                      oppfølging:"
                    .to_owned(),
                _ => format!(
                    "Forfall har gitt opp {n} jobber etter gjentatte forsøk, og de trenger \
                     oppfølging:"
                ),
            };
            let act = "Se detaljene med `forfall jobs dead`. Når årsaken er rettet, kjør \
                       `forfall jobs retry` for å prøve igjen."
                .to_owned();
            (subject, vec![intro, list, act])
        }
        Language::En => {
            let subject = format!("Needs attention: {count} failed on {day}");
            let intro = match n {
                0 => "No jobs have failed.".to_owned(),
                1 => "Forfall gave up on a job after repeated attempts; it needs attention:"
                    .to_owned(),
                _ => format!(
                    "Forfall gave up on {n} jobs after repeated attempts; they need attention:"
                ),
            };
            let act = "See the details with `forfall jobs dead`. Once the cause is fixed, run \
                       `forfall jobs retry` to try again."
                .to_owned();
            (subject, vec![intro, list, act])
        }
    }
}

/// A column of a plain-text list.
struct Column {
    header: &'static str,
    right_aligned: bool,
}

impl Column {
    fn left(header: &'static str) -> Column {
        Column {
            header,
            right_aligned: false,
        }
    }

    fn right(header: &'static str) -> Column {
        Column {
            header,
            right_aligned: true,
        }
    }
}

/// A header line and one line per row, columns padded to the widest cell and two spaces apart.
/// No rows, no list.
fn table(columns: &[Column], rows: &[Vec<String>]) -> String {
    if rows.is_empty() {
        return String::new();
    }
    let widths = columns
        .iter()
        .enumerate()
        .map(|(i, column)| {
            rows.iter()
                .filter_map(|row| row.get(i))
                .map(|cell| cell.chars().count())
                .chain([column.header.chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect::<Vec<_>>();
    let header = columns
        .iter()
        .map(|column| column.header.to_owned())
        .collect::<Vec<_>>();
    std::iter::once(&header)
        .chain(rows)
        .map(|row| {
            let line = columns
                .iter()
                .zip(&widths)
                .enumerate()
                .map(|(i, (column, &width))| {
                    let cell = row.get(i).map_or("", String::as_str);
                    let pad = " ".repeat(width.saturating_sub(cell.chars().count()));
                    if column.right_aligned {
                        format!("{pad}{cell}")
                    } else {
                        format!("{cell}{pad}")
                    }
                })
                .collect::<Vec<_>>()
                .join("  ");
            line.trim_end().to_owned()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Outside text made safe for one line: control characters (line breaks, tabs) become spaces.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_owned()
}

/// A cell: outside text on one line, or `–` when empty.
fn cell(text: &str) -> String {
    let text = one_line(text);
    if text.is_empty() {
        MISSING.to_owned()
    } else {
        text
    }
}

/// At most `max` characters, the last one `…` when shortened.
fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let mut short = text.chars().take(max.saturating_sub(1)).collect::<String>();
        short.push('…');
        short
    }
}

fn group_thousands(digits: &str, separator: char) -> String {
    let count = digits.chars().count();
    let mut grouped = String::with_capacity(digits.len() + count / 3 * 2);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (count - i).is_multiple_of(3) {
            grouped.push(separator);
        }
        grouped.push(digit);
    }
    grouped
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    fn nb(s: &str) -> String {
        s.replace(' ', &AMOUNT_SPACE.to_string())
    }

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn item(number: &str, customer: &str, amount: Decimal) -> DigestItem {
        DigestItem {
            invoice_number: number.to_owned(),
            customer_name: customer.to_owned(),
            amount,
            currency: Currency::NOK,
            due: date(2026, 10, 31),
            transfer_on: Some(date(2026, 11, 28)),
            first_reminder_on: None,
            free_withdrawal_until: None,
            note: None,
        }
    }

    fn digest(kind: DigestKind, language: Language, items: Vec<DigestItem>) -> Digest {
        Digest {
            kind,
            creditor_name: "Fjordkraft Rør AS".to_owned(),
            language,
            day: date(2026, 11, 21),
            items,
            opt_out_hint: Some("https://forfall.example/opt-out".to_owned()),
        }
    }

    fn three_items() -> Vec<DigestItem> {
        vec![
            item("10023", "Nordlys Bakeri AS", dec!(1250)),
            item("10024", "Ola Nordmann", dec!(399.5)),
            item("10031", "Kari Hansen", dec!(1250000)),
        ]
    }

    fn transferred(number: &str) -> DigestItem {
        DigestItem {
            transfer_on: None,
            first_reminder_on: Some(date(2026, 11, 24)),
            free_withdrawal_until: Some(date(2026, 12, 5)),
            ..item(number, "Nordlys Bakeri AS", dec!(1250))
        }
    }

    fn failed(number: &str, note: &str) -> DigestItem {
        DigestItem {
            transfer_on: None,
            note: Some(note.to_owned()),
            ..item(number, "Nordlys Bakeri AS", dec!(1250))
        }
    }

    #[test]
    fn norwegian_amounts_use_a_space_for_thousands_a_comma_for_decimals_and_kr_for_nok() {
        assert_eq!(
            format_amount(dec!(1250), Currency::NOK, Language::Nb),
            nb("1 250,00 kr")
        );
        assert_eq!(
            format_amount(dec!(1234567.8), Currency::NOK, Language::Nb),
            nb("1 234 567,80 kr")
        );
        assert_eq!(
            format_amount(dec!(999.99), Currency::NOK, Language::Nb),
            nb("999,99 kr")
        );
        assert_eq!(
            format_amount(dec!(1250), Currency::EUR, Language::Nb),
            nb("1 250,00 EUR")
        );
    }

    #[test]
    fn english_amounts_put_the_code_first_with_commas_for_thousands() {
        assert_eq!(
            format_amount(dec!(1250), Currency::NOK, Language::En),
            nb("NOK 1,250.00")
        );
        assert_eq!(
            format_amount(dec!(1000000), Currency::SEK, Language::En),
            nb("SEK 1,000,000.00")
        );
        assert_eq!(
            format_amount(dec!(100), Currency::EUR, Language::En),
            nb("EUR 100.00")
        );
    }

    #[test]
    fn amounts_are_rounded_half_away_from_zero_to_the_currency_minor_unit() {
        assert_eq!(
            format_amount(dec!(10.005), Currency::NOK, Language::En),
            nb("NOK 10.01")
        );
        assert_eq!(
            format_amount(dec!(10.004), Currency::NOK, Language::En),
            nb("NOK 10.00")
        );
        let isk: Currency = "ISK".parse().unwrap();
        assert_eq!(
            format_amount(dec!(1249.5), isk, Language::Nb),
            nb("1 250 ISK")
        );
        assert_eq!(
            format_amount(dec!(1250), isk, Language::En),
            nb("ISK 1,250")
        );
    }

    #[test]
    fn zero_is_shown_with_decimals_and_without_a_sign() {
        assert_eq!(
            format_amount(Decimal::ZERO, Currency::NOK, Language::Nb),
            nb("0,00 kr")
        );
        assert_eq!(
            format_amount(dec!(-0.001), Currency::NOK, Language::En),
            nb("NOK 0.00")
        );
    }

    #[test]
    fn negative_amounts_get_a_minus_sign_and_never_panic() {
        assert_eq!(
            format_amount(dec!(-1250.5), Currency::NOK, Language::Nb),
            nb("-1 250,50 kr")
        );
        assert_eq!(
            format_amount(dec!(-1250.5), Currency::NOK, Language::En),
            nb("NOK -1,250.50")
        );
        for amount in [Decimal::MIN, Decimal::MAX] {
            for language in [Language::Nb, Language::En] {
                assert!(!format_amount(amount, Currency::NOK, language).is_empty());
            }
        }
    }

    #[test]
    fn dates_are_day_month_year_in_both_languages() {
        assert_eq!(format_date(date(2026, 11, 28), Language::Nb), "28.11.2026");
        assert_eq!(format_date(date(2026, 3, 5), Language::Nb), "05.03.2026");
        assert_eq!(format_date(date(2026, 11, 28), Language::En), "28 Nov 2026");
        assert_eq!(format_date(date(2026, 3, 5), Language::En), "5 Mar 2026");
    }

    #[test]
    fn a_norwegian_warning_names_count_and_transfer_date_and_lists_every_invoice() {
        let rendered = render(&digest(DigestKind::Warning, Language::Nb, three_items()));
        assert_eq!(rendered.subject, "3 fakturaer går til inkasso 28.11.2026");
        let text = &rendered.text;
        assert!(text.starts_with("Hei Fjordkraft Rør AS,\n"), "{text}");
        assert!(
            text.contains("Disse 3 fakturaene går til inkasso 28.11.2026 hvis du ikke gjør noe:"),
            "{text}"
        );
        assert!(text.contains("Faktura  Kunde"), "{text}");
        for needle in [
            "10023",
            "Nordlys Bakeri AS",
            &nb("1 250,00 kr"),
            &nb("399,50 kr"),
            &nb("1 250 000,00 kr"),
            "31.10.2026",
        ] {
            assert!(text.contains(needle), "{needle} missing in {text}");
        }
        assert!(text.contains("alle fakturaer til den kunden"), "{text}");
        assert!(
            text.contains("Slik gjør du det: https://forfall.example/opt-out"),
            "{text}"
        );
        // One line per invoice.
        assert_eq!(text.lines().filter(|l| l.starts_with("100")).count(), 3);
    }

    #[test]
    fn a_warning_for_one_invoice_is_singular_in_both_languages() {
        let one = vec![item("10023", "Ola Nordmann", dec!(1250))];
        let nb_warning = render(&digest(DigestKind::Warning, Language::Nb, one.clone()));
        assert_eq!(nb_warning.subject, "1 faktura går til inkasso 28.11.2026");
        assert!(
            nb_warning
                .text
                .contains("Denne fakturaen går til inkasso 28.11.2026")
        );
        let en_warning = render(&digest(DigestKind::Warning, Language::En, one));
        assert_eq!(
            en_warning.subject,
            "1 invoice goes to collection on 28 Nov 2026"
        );
        assert!(
            en_warning
                .text
                .contains("This invoice goes to collection on 28 Nov 2026 unless you act:")
        );
    }

    #[test]
    fn an_english_warning_is_plural_and_explains_how_to_opt_out() {
        let rendered = render(&digest(DigestKind::Warning, Language::En, three_items()));
        assert_eq!(
            rendered.subject,
            "3 invoices go to collection on 28 Nov 2026"
        );
        let text = &rendered.text;
        assert!(text.starts_with("Hello Fjordkraft Rør AS,\n"));
        assert!(text.contains("These 3 invoices go to collection on 28 Nov 2026 unless you act:"));
        assert!(text.contains(&nb("NOK 1,250,000.00")));
        assert!(text.contains("31 Oct 2026"));
        assert!(text.contains("or all invoices of that customer"));
        assert!(text.contains("How: https://forfall.example/opt-out"));
    }

    #[test]
    fn a_warning_with_different_transfer_dates_names_the_earliest_and_points_at_the_column() {
        let mut items = three_items();
        items[1].transfer_on = Some(date(2026, 11, 27));
        let nb_warning = render(&digest(DigestKind::Warning, Language::Nb, items.clone()));
        assert_eq!(
            nb_warning.subject,
            "3 fakturaer går til inkasso fra 27.11.2026"
        );
        assert!(
            nb_warning
                .text
                .contains("på datoen i kolonnen «Til inkasso»")
        );
        let en_warning = render(&digest(DigestKind::Warning, Language::En, items));
        assert_eq!(
            en_warning.subject,
            "3 invoices go to collection from 27 Nov 2026"
        );
    }

    #[test]
    fn a_warning_without_a_hint_still_explains_opting_out() {
        let mut warning = digest(DigestKind::Warning, Language::Nb, three_items());
        warning.opt_out_hint = None;
        let rendered = render(&warning);
        assert!(rendered.text.contains("kan du unnta fakturaen"));
        assert!(!rendered.text.contains("Slik gjør du det"));
    }

    #[test]
    fn a_transfer_notice_names_first_reminder_and_the_free_withdrawal_window() {
        let items = vec![transferred("10023"), transferred("10024")];
        let nb_notice = render(&digest(DigestKind::Transfer, Language::Nb, items.clone()));
        assert_eq!(
            nb_notice.subject,
            "2 fakturaer sendt til inkasso 21.11.2026"
        );
        let text = &nb_notice.text;
        assert!(text.contains("Disse 2 fakturaene ble sendt til inkasso 21.11.2026:"));
        assert!(text.contains("Den første påminnelsen til kunden sendes 24.11.2026."));
        assert!(text.contains("uten kostnad til og med 05.12.2026."));

        let en_notice = render(&digest(DigestKind::Transfer, Language::En, items));
        assert_eq!(
            en_notice.subject,
            "2 invoices transferred to collection on 21 Nov 2026"
        );
        let text = &en_notice.text;
        assert!(text.contains("These 2 invoices were transferred to collection on 21 Nov 2026:"));
        assert!(text.contains("first reminder goes out on 24 Nov 2026."));
        assert!(text.contains("free of charge up to and including 5 Dec 2026."));
    }

    #[test]
    fn a_transfer_notice_for_one_invoice_is_singular() {
        let items = vec![transferred("10023")];
        let nb_notice = render(&digest(DigestKind::Transfer, Language::Nb, items.clone()));
        assert_eq!(nb_notice.subject, "1 faktura sendt til inkasso 21.11.2026");
        assert!(
            nb_notice
                .text
                .contains("Denne fakturaen ble sendt til inkasso")
        );
        let en_notice = render(&digest(DigestKind::Transfer, Language::En, items));
        assert_eq!(
            en_notice.subject,
            "1 invoice transferred to collection on 21 Nov 2026"
        );
        assert!(en_notice.text.contains("This invoice was transferred"));
    }

    #[test]
    fn a_transfer_notice_with_different_windows_points_at_the_columns() {
        let mut items = vec![transferred("10023"), transferred("10024")];
        items[1].free_withdrawal_until = Some(date(2026, 12, 6));
        let rendered = render(&digest(DigestKind::Transfer, Language::En, items));
        assert!(
            rendered
                .text
                .contains("up to and including the date in the column “Free to stop until”.")
        );
        assert!(rendered.text.contains("6 Dec 2026"));
    }

    #[test]
    fn a_weekly_list_says_when_the_invoices_are_registered_unless_removed() {
        let nb_list = render(&digest(DigestKind::WeeklyList, Language::Nb, three_items()));
        assert_eq!(
            nb_list.subject,
            "Ukeliste: 3 fakturaer registreres for inkasso 28.11.2026"
        );
        assert!(nb_list.text.contains(
            "Disse 3 fakturaene blir registrert for inkasso 28.11.2026 hvis du ikke fjerner dem"
        ));
        assert!(
            nb_list
                .text
                .contains("Slik gjør du det: https://forfall.example/opt-out")
        );

        let en_list = render(&digest(DigestKind::WeeklyList, Language::En, three_items()));
        assert_eq!(
            en_list.subject,
            "Weekly list: 3 invoices to be registered for collection on 28 Nov 2026"
        );
        assert!(en_list.text.contains(
            "These 3 invoices will be registered for collection on 28 Nov 2026 unless you remove them"
        ));
        assert!(
            en_list
                .text
                .contains("How: https://forfall.example/opt-out")
        );
    }

    #[test]
    fn a_weekly_list_of_one_invoice_is_singular() {
        let one = vec![item("10023", "Ola Nordmann", dec!(1250))];
        let nb_list = render(&digest(DigestKind::WeeklyList, Language::Nb, one.clone()));
        assert_eq!(
            nb_list.subject,
            "Ukeliste: 1 faktura registreres for inkasso 28.11.2026"
        );
        assert!(nb_list.text.contains("Denne fakturaen blir registrert"));
        let en_list = render(&digest(DigestKind::WeeklyList, Language::En, one));
        assert_eq!(
            en_list.subject,
            "Weekly list: 1 invoice to be registered for collection on 28 Nov 2026"
        );
        assert!(en_list.text.contains("unless you remove it before then:"));
    }

    #[test]
    fn a_dead_letter_alert_shows_what_failed_and_how_to_retry() {
        let items = vec![
            failed("10023", "push_case: 503 from the pipeline"),
            failed("10024", "sync_payment: timeout"),
        ];
        let nb_alert = render(&digest(DigestKind::DeadLetter, Language::Nb, items.clone()));
        assert_eq!(
            nb_alert.subject,
            "Trenger oppfølging: 2 jobber feilet 21.11.2026"
        );
        assert!(nb_alert.text.contains("push_case: 503 from the pipeline"));
        assert!(nb_alert.text.contains("`forfall jobs dead`"));
        assert!(nb_alert.text.contains("`forfall jobs retry`"));

        let en_alert = render(&digest(DigestKind::DeadLetter, Language::En, items));
        assert_eq!(
            en_alert.subject,
            "Needs attention: 2 jobs failed on 21 Nov 2026"
        );
        assert!(en_alert.text.contains("Forfall gave up on 2 jobs"));
        assert!(en_alert.text.contains("sync_payment: timeout"));
        assert!(en_alert.text.contains("`forfall jobs retry`"));
    }

    #[test]
    fn a_dead_letter_alert_for_one_job_is_singular() {
        let items = vec![failed("10023", "push_case: rejected")];
        let nb_alert = render(&digest(DigestKind::DeadLetter, Language::Nb, items.clone()));
        assert_eq!(
            nb_alert.subject,
            "Trenger oppfølging: 1 jobb feilet 21.11.2026"
        );
        let en_alert = render(&digest(DigestKind::DeadLetter, Language::En, items));
        assert_eq!(
            en_alert.subject,
            "Needs attention: 1 job failed on 21 Nov 2026"
        );
        assert!(en_alert.text.contains("gave up on a job"));
    }

    #[test]
    fn line_breaks_in_outside_text_cannot_add_lines_or_headers() {
        let mut items = three_items();
        items[0].customer_name = "Evil\r\nBcc: everyone@example.com".to_owned();
        let mut warning = digest(DigestKind::Warning, Language::En, items);
        warning.creditor_name = "Acme\nSubject: hi".to_owned();
        let rendered = render(&warning);
        assert!(!rendered.subject.contains('\n'));
        assert!(rendered.text.starts_with("Hello Acme Subject: hi,\n"));
        assert!(!rendered.text.lines().any(|l| l.starts_with("Bcc:")));
    }

    #[test]
    fn amounts_are_right_aligned_in_the_list() {
        let rendered = render(&digest(DigestKind::Warning, Language::En, three_items()));
        let lines = rendered
            .text
            .lines()
            .filter(|l| l.starts_with("100"))
            .collect::<Vec<_>>();
        let ends = lines
            .iter()
            .map(|l| {
                let at = l.find(".00").or_else(|| l.find(".50")).unwrap();
                l[..at].chars().count()
            })
            .collect::<Vec<_>>();
        assert!(ends.windows(2).all(|w| w[0] == w[1]), "{lines:#?}");
    }

    #[test]
    fn an_empty_digest_renders_without_a_list() {
        let rendered = render(&digest(DigestKind::WeeklyList, Language::En, vec![]));
        assert_eq!(
            rendered.subject,
            "Weekly list: 0 invoices to be registered for collection"
        );
        assert!(rendered.text.contains("No invoices will be registered"));
        assert!(!rendered.text.contains("Customer"));
    }

    #[test]
    fn long_customer_names_are_shortened() {
        let mut items = three_items();
        items[0].customer_name = "A".repeat(100);
        let rendered = render(&digest(DigestKind::Warning, Language::En, items));
        assert!(rendered.text.contains(&format!("{}…", "A".repeat(39))));
        assert!(!rendered.text.contains(&"A".repeat(41)));
    }
}
