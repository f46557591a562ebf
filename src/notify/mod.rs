//! E-mail to creditors: what Forfall tells a creditor about their invoices, and how it gets there.
//!
//! **The digest rule: one e-mail per creditor per day and kind.** A creditor never gets one e-mail
//! per invoice. The caller gathers everything of one [`DigestKind`] that concerns one creditor on
//! one of the creditor's civil days into a single [`Digest`]; this module only renders it
//! ([`render`], in Norwegian Bokmål or English) and sends it ([`Mailer::send`]). Sending the same
//! digest again (a retry) uses the same message id, so the creditor's mail program can recognise it
//! as the same message.
//!
//! - [`templates`]: the wording and the locale formatting of amounts and dates.
//! - [`smtp`]: delivery over SMTP with `lettre`, and which failures are worth retrying.
//! - [`capture`]: a small real SMTP server on loopback that keeps what it receives, for the tests
//!   and `forfall demo`.

use chrono::NaiveDate;
use rust_decimal::Decimal;

use crate::domain::{Currency, Language};

pub mod capture;
pub mod digests;
pub mod smtp;
pub mod templates;

pub use capture::{CapturedMessage, SmtpCapture};
pub use smtp::{Mailer, NotifyError, SmtpSettings};
pub use templates::{AMOUNT_SPACE, format_amount, format_date, render};

/// What a digest is about. Each kind has its own wording and subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DigestKind {
    /// Invoices that go to collection on a coming date unless the creditor acts.
    Warning,
    /// Invoices that were just transferred to collection.
    Transfer,
    /// In automatic-collection mode: the week's list of invoices that will be registered for
    /// collection unless removed.
    WeeklyList,
    /// Work that failed for good and needs someone to look at it.
    DeadLetter,
}

impl DigestKind {
    /// A stable name, for message ids, logs and the database: `warning`, `transfer`,
    /// `weekly_list`, `dead_letter`.
    pub fn as_str(self) -> &'static str {
        match self {
            DigestKind::Warning => "warning",
            DigestKind::Transfer => "transfer",
            DigestKind::WeeklyList => "weekly_list",
            DigestKind::DeadLetter => "dead_letter",
        }
    }
}

/// One e-mail's worth of news for one creditor: one kind, one day, any number of invoices.
#[derive(Debug, Clone, PartialEq)]
pub struct Digest {
    /// What the e-mail is about.
    pub kind: DigestKind,
    /// The creditor's name as they know it, used in the greeting.
    pub creditor_name: String,
    /// The language of the creditor's e-mails.
    pub language: Language,
    /// The creditor's civil day the digest is for. Transfer and dead-letter subjects name it;
    /// warning and weekly-list subjects name the transfer date of the invoices instead.
    pub day: NaiveDate,
    /// One line each, in the order given.
    pub items: Vec<DigestItem>,
    /// How to opt out or stop, e.g. a URL or a CLI command; shown in warnings and weekly lists.
    pub opt_out_hint: Option<String>,
}

/// How a creditor opts out, as `forfall serve`'s warnings tell it: the creditor API (`{creditor}`
/// becomes the creditor's id). The e-mail names invoices by number; the list finds their ids.
pub const API_OPT_OUT_HINT: &str = "with your API key, list the invoices with GET \
     /v1/creditors/{creditor}/invoices?state=noticed, then POST \
     /v1/creditors/{creditor}/invoices/<id>/opt-out (or .../customers/<id>/opt-out for a \
     customer, .../invoices/<id>/stop to stop collection)";

/// One invoice in a digest.
#[derive(Debug, Clone, PartialEq)]
pub struct DigestItem {
    /// The invoice number as the creditor's accounting platform shows it.
    pub invoice_number: String,
    /// The customer (debtor) the invoice was sent to.
    pub customer_name: String,
    /// What is outstanding.
    pub amount: Decimal,
    /// The invoice's currency; amounts are rounded to its minor unit.
    pub currency: Currency,
    /// The invoice's due date.
    pub due: NaiveDate,
    /// Warning and weekly list: the invoice goes to collection on this date unless the creditor
    /// acts.
    pub transfer_on: Option<NaiveDate>,
    /// Transfer notice: when the debtor's first reminder goes out.
    pub first_reminder_on: Option<NaiveDate>,
    /// Transfer notice: the last day (inclusive) on which stopping collection is free.
    pub free_withdrawal_until: Option<NaiveDate>,
    /// Dead letter: what failed (job kind and last error), already redacted by the caller.
    pub note: Option<String>,
}

/// A rendered e-mail: a short subject and a plain-text body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// One line, no line breaks.
    pub subject: String,
    /// The body, lines ending in `\n` (turned into CRLF when sent).
    pub text: String,
}
