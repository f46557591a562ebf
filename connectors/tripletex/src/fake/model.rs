//! The fake's data: customers, invoices and their ledger (postings, vouchers, close groups), the
//! fixed reference data (currencies, countries, accounts, payment types), and how each object is
//! rendered through a `fields` selection.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use chrono::{Datelike, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::{Map, Value};

use super::schema::{Sel, Ty, schema, star};
use super::{
    CustomerChange, FakeConfig, FakeError, Fault, LoggedDelivery, LoggedRequest, NewAddress,
    NewCustomer, NewInvoice,
};

// First ids of each kind. Kept in separate ranges so that an id of the wrong kind is a 404 rather
// than another object.
pub(crate) const CUSTOMER_BASE: i64 = 1_000_001;
pub(crate) const ADDRESS_BASE: i64 = 2_000_001;
pub(crate) const INVOICE_BASE: i64 = 3_000_001;
pub(crate) const VOUCHER_BASE: i64 = 40_000_001;
pub(crate) const POSTING_BASE: i64 = 50_000_001;
pub(crate) const CLOSE_GROUP_BASE: i64 = 60_000_001;
pub(crate) const REMINDER_BASE: i64 = 70_000_001;
pub(crate) const REMARK_BASE: i64 = 80_000_001;
pub(crate) const SUBSCRIPTION_BASE: i64 = 101;
pub(crate) const FIRST_INVOICE_NUMBER: i32 = 10_001;
pub(crate) const FIRST_CUSTOMER_NUMBER: i32 = 10_001;
/// The employee every change is attributed to (the owner of the employee token).
pub(crate) const EMPLOYEE_ID: i64 = 7_001;
/// Reminder fee on seeded reminders (NOK).
pub(crate) const REMINDER_FEE: i64 = 70;

/// The one place where amounts leave `Decimal`: Tripletex sends amounts as JSON numbers, so the
/// fake converts at the wire edge only, to the nearest `f64`.
pub(crate) fn money(d: Decimal) -> Value {
    d.to_f64()
        .and_then(serde_json::Number::from_f64)
        .map(Value::Number)
        .unwrap_or(Value::Null)
}

pub(crate) fn date(d: NaiveDate) -> Value {
    Value::String(d.format("%Y-%m-%d").to_string())
}

pub(crate) fn timestamp(t: NaiveDateTime) -> Value {
    Value::String(t.format("%Y-%m-%dT%H:%M:%S").to_string())
}

pub(crate) fn round2(d: Decimal) -> Decimal {
    d.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
}

/// Amount excluding 25 % VAT, rounded to øre.
pub(crate) fn excluding_vat(d: Decimal) -> Decimal {
    round2(d / Decimal::new(125, 2))
}

// ---------------------------------------------------------------------------------------------
// Reference data

#[derive(Debug)]
pub(crate) struct CurrencyRec {
    pub id: i64,
    pub code: &'static str,
    pub description: &'static str,
    pub factor: i32,
    /// NOK for one unit, used for invoices the control API creates in this currency.
    pub rate: (i64, u32),
}

pub(crate) static CURRENCIES: &[CurrencyRec] = &[
    CurrencyRec {
        id: 1,
        code: "NOK",
        description: "Norske kroner",
        factor: 1,
        rate: (100, 2),
    },
    CurrencyRec {
        id: 2,
        code: "SEK",
        description: "Svenske kroner",
        factor: 100,
        rate: (98, 2),
    },
    CurrencyRec {
        id: 3,
        code: "DKK",
        description: "Danske kroner",
        factor: 100,
        rate: (154, 2),
    },
    CurrencyRec {
        id: 4,
        code: "USD",
        description: "Amerikanske dollar",
        factor: 1,
        rate: (1060, 2),
    },
    CurrencyRec {
        id: 5,
        code: "EUR",
        description: "Euro",
        factor: 1,
        rate: (1150, 2),
    },
];
pub(crate) const NOK: i64 = 1;

pub(crate) fn currency(id: i64) -> Option<&'static CurrencyRec> {
    CURRENCIES.iter().find(|c| c.id == id)
}

pub(crate) fn currency_by_code(code: &str) -> Option<&'static CurrencyRec> {
    CURRENCIES
        .iter()
        .find(|c| c.code.eq_ignore_ascii_case(code.trim()))
}

#[derive(Debug)]
pub(crate) struct CountryRec {
    pub id: i64,
    pub name: &'static str,
    pub alpha2: &'static str,
    pub alpha3: &'static str,
    pub numeric: &'static str,
}

pub(crate) static COUNTRIES: &[CountryRec] = &[
    CountryRec {
        id: 161,
        name: "Norge",
        alpha2: "NO",
        alpha3: "NOR",
        numeric: "578",
    },
    CountryRec {
        id: 199,
        name: "Sverige",
        alpha2: "SE",
        alpha3: "SWE",
        numeric: "752",
    },
    CountryRec {
        id: 59,
        name: "Danmark",
        alpha2: "DK",
        alpha3: "DNK",
        numeric: "208",
    },
    CountryRec {
        id: 70,
        name: "Finland",
        alpha2: "FI",
        alpha3: "FIN",
        numeric: "246",
    },
    CountryRec {
        id: 84,
        name: "Tyskland",
        alpha2: "DE",
        alpha3: "DEU",
        numeric: "276",
    },
    CountryRec {
        id: 229,
        name: "Storbritannia",
        alpha2: "GB",
        alpha3: "GBR",
        numeric: "826",
    },
];
pub(crate) const NORWAY: i64 = 161;

pub(crate) fn country(id: i64) -> Option<&'static CountryRec> {
    COUNTRIES.iter().find(|c| c.id == id)
}

pub(crate) fn country_by_code(code: &str) -> Option<&'static CountryRec> {
    COUNTRIES
        .iter()
        .find(|c| c.alpha2.eq_ignore_ascii_case(code.trim()))
}

#[derive(Debug)]
pub(crate) struct AccountRec {
    pub number: i32,
    pub name: &'static str,
    pub kind: &'static str,
}

pub(crate) static ACCOUNTS: &[AccountRec] = &[
    AccountRec {
        number: 1500,
        name: "Kundefordringer",
        kind: "ASSETS",
    },
    AccountRec {
        number: 1900,
        name: "Kontanter",
        kind: "ASSETS",
    },
    AccountRec {
        number: 1920,
        name: "Bankinnskudd",
        kind: "ASSETS",
    },
    AccountRec {
        number: 2700,
        name: "Utgående merverdiavgift",
        kind: "LIABILITIES",
    },
    AccountRec {
        number: 3000,
        name: "Salgsinntekt, avgiftspliktig",
        kind: "OPERATING_REVENUES",
    },
];

/// Accounts have ids of their own in Tripletex; the fake's are 100 000 + the account number.
pub(crate) fn account_id(number: i32) -> i64 {
    100_000 + i64::from(number)
}

pub(crate) fn account(id: i64) -> Option<&'static AccountRec> {
    ACCOUNTS.iter().find(|a| account_id(a.number) == id)
}

#[derive(Debug)]
pub(crate) struct VatTypeRec {
    pub id: i64,
    pub number: &'static str,
    pub name: &'static str,
    pub percentage: i64,
}

pub(crate) static VAT_TYPES: &[VatTypeRec] = &[
    VatTypeRec {
        id: 0,
        number: "0",
        name: "Ingen avgiftsbehandling",
        percentage: 0,
    },
    VatTypeRec {
        id: 3,
        number: "3",
        name: "Utgående avgift, høy sats",
        percentage: 25,
    },
];
pub(crate) const VAT_HIGH: i64 = 3;

#[derive(Debug)]
pub(crate) struct PaymentTypeRec {
    pub id: i64,
    pub description: &'static str,
    pub debit_account: i32,
    pub sequence: i32,
}

pub(crate) static PAYMENT_TYPES: &[PaymentTypeRec] = &[
    PaymentTypeRec {
        id: 25_001,
        description: "Betalt til bank",
        debit_account: 1920,
        sequence: 1,
    },
    PaymentTypeRec {
        id: 25_002,
        description: "Kontant",
        debit_account: 1900,
        sequence: 2,
    },
    PaymentTypeRec {
        id: 25_003,
        description: "Betalt til inkassobyrå",
        debit_account: 1920,
        sequence: 3,
    },
    PaymentTypeRec {
        id: 25_004,
        description: "Vipps",
        debit_account: 1920,
        sequence: 4,
    },
];
pub(crate) const PAYMENT_TYPE_BANK: i64 = 25_001;

pub(crate) fn payment_type(id: i64) -> Option<&'static PaymentTypeRec> {
    PAYMENT_TYPES.iter().find(|p| p.id == id)
}

// ---------------------------------------------------------------------------------------------
// Objects

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChangeKind {
    Create,
    Update,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ChangeRec {
    pub timestamp: NaiveDateTime,
    pub kind: ChangeKind,
}

#[derive(Debug, Clone)]
pub(crate) struct Address {
    pub id: i64,
    pub version: i32,
    pub line1: String,
    pub line2: String,
    pub postal_code: String,
    pub city: String,
    pub country: i64,
}

#[derive(Debug, Clone)]
pub(crate) struct Customer {
    pub id: i64,
    pub version: i32,
    pub number: i32,
    pub name: String,
    pub organization_number: String,
    pub email: String,
    pub invoice_email: String,
    pub overdue_notice_email: String,
    pub phone_number: String,
    pub phone_number_mobile: String,
    pub is_private_individual: bool,
    pub is_inactive: bool,
    pub language: String,
    pub invoice_send_method: String,
    pub postal_address: i64,
    pub physical_address: i64,
    pub is_factoring: bool,
    pub auto_soft_reminder: bool,
    pub auto_reminder: bool,
    pub auto_notice: bool,
    pub invoices_due_in: i32,
    pub changes: Vec<ChangeRec>,
}

impl Customer {
    pub fn last_change(&self) -> Option<NaiveDateTime> {
        self.changes.iter().map(|c| c.timestamp).max()
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Invoice {
    pub id: i64,
    pub version: i32,
    pub number: i32,
    pub invoice_date: NaiveDate,
    pub due_date: NaiveDate,
    pub customer: i64,
    pub kid: String,
    pub comment: String,
    pub invoice_comment: String,
    pub currency: i64,
    /// NOK for one unit of `currency`.
    pub rate: Decimal,
    /// In NOK.
    pub amount: Decimal,
    pub amount_currency: Decimal,
    pub amount_ex_vat: Decimal,
    pub amount_ex_vat_currency: Decimal,
    /// In NOK, principal only.
    pub outstanding: Decimal,
    pub outstanding_currency: Decimal,
    /// Unpaid reminder fees (NOK invoices only), part of the `*Total` fields.
    pub fees: Decimal,
    pub sum_remits: Decimal,
    pub is_credit_note: bool,
    pub is_credited: bool,
    /// Credited so far, in the invoice currency.
    pub credited: Decimal,
    pub credited_invoice: Option<i64>,
    pub voucher: i64,
    /// Customer-ledger postings: the invoice's (+) and its payments' (−).
    pub postings: Vec<i64>,
    pub reminders: Vec<i64>,
    pub remark: Option<i64>,
    pub changes: Vec<ChangeRec>,
}

impl Invoice {
    pub fn is_open(&self) -> bool {
        self.outstanding > Decimal::ZERO && !self.is_credit_note && !self.is_credited
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PostingKind {
    InvoiceCustomer,
    Income,
    Vat,
    PaymentCustomer,
    PaymentBank,
    CreditCustomer,
    CreditIncome,
    CreditVat,
}

#[derive(Debug, Clone)]
pub(crate) struct Posting {
    pub id: i64,
    pub voucher: i64,
    pub date: NaiveDate,
    pub account: i32,
    pub customer: Option<i64>,
    pub amount: Decimal,
    pub amount_currency: Decimal,
    pub gross: Decimal,
    pub gross_currency: Decimal,
    pub currency: i64,
    pub close_group: Option<i64>,
    /// The invoice (or credit note) the posting belongs to.
    pub invoice: Option<i64>,
    pub row: i32,
    pub kind: PostingKind,
    pub vat_type: Option<i64>,
    pub payment_type: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum VoucherKind {
    Invoice,
    Payment,
    CreditNote,
}

#[derive(Debug, Clone)]
pub(crate) struct Voucher {
    pub id: i64,
    pub number: i32,
    pub date: NaiveDate,
    pub kind: VoucherKind,
    /// The invoice (or credit note) the voucher is about.
    pub invoice: i64,
    pub postings: Vec<i64>,
    pub created: NaiveDateTime,
}

#[derive(Debug, Clone)]
pub(crate) struct CloseGroup {
    pub id: i64,
    pub date: NaiveDate,
    pub postings: Vec<i64>,
    pub created: NaiveDateTime,
}

#[derive(Debug, Clone)]
pub(crate) struct Reminder {
    pub id: i64,
    pub invoice: i64,
    pub date: NaiveDate,
    pub term: NaiveDate,
    pub kind: &'static str,
    pub charge: Decimal,
    pub currency: i64,
    pub kid: String,
}

#[derive(Debug, Clone)]
pub(crate) struct Remark {
    pub id: i64,
    pub description: String,
    pub postpone_to: Option<NaiveDate>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SubStatus {
    Active,
    Disabled,
    TooManyErrors,
}

impl SubStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SubStatus::Active => "ACTIVE",
            SubStatus::Disabled => "DISABLED",
            SubStatus::TooManyErrors => "DISABLED_TOO_MANY_ERRORS",
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Subscription {
    pub id: i64,
    pub version: i32,
    pub event: String,
    pub target_url: String,
    pub fields: String,
    pub status: SubStatus,
    pub auth_header_name: Option<String>,
    pub auth_header_value: Option<String>,
    pub hmac_secret: Option<String>,
    /// Deliveries that failed every attempt in a row.
    pub failures: u32,
    pub changes: Vec<ChangeRec>,
}

#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub expiration: NaiveDate,
    pub expired: bool,
    pub window_start: Instant,
    pub window_count: u32,
}

/// Something that happened, for the webhooks.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Event {
    pub name: &'static str,
    pub id: i64,
    pub obj: ORef,
}

/// A cached listing: the ids of the full result, in order, and its digest.
#[derive(Debug)]
pub(crate) struct CachedList {
    pub ids: Vec<i64>,
    pub digest: Option<String>,
}

/// Everything the fake holds, behind one mutex.
pub(crate) struct State {
    pub seed: u64,
    pub seeded_invoices: usize,
    pub today: NaiveDate,
    pub consumer_token: String,
    pub employee_token: String,
    pub rate_limit: Option<u32>,
    pub allow_http_targets: bool,
    pub webhooks_enabled: bool,

    pub customers: BTreeMap<i64, Customer>,
    pub addresses: BTreeMap<i64, Address>,
    pub invoices: BTreeMap<i64, Invoice>,
    pub by_date: BTreeSet<(NaiveDate, i64)>,
    pub postings: Vec<Posting>,
    pub vouchers: Vec<Voucher>,
    pub close_groups: Vec<CloseGroup>,
    pub reminders: Vec<Reminder>,
    pub remarks: Vec<Remark>,
    pub next_customer_id: i64,
    pub next_customer_number: i32,
    pub next_address_id: i64,
    pub next_invoice_id: i64,
    pub next_invoice_number: i32,

    pub subscriptions: BTreeMap<i64, Subscription>,
    pub next_subscription_id: i64,
    pub sessions: HashMap<String, Session>,
    pub next_session_id: i64,
    pub sessions_created: usize,

    pub faults: VecDeque<Fault>,
    pub requests: VecDeque<LoggedRequest>,
    pub deliveries: Vec<LoggedDelivery>,
    pub list_cache: HashMap<String, Arc<CachedList>>,
    pub last_change: NaiveDateTime,
}

/// How many requests the log keeps (the oldest are dropped).
pub(crate) const REQUEST_LOG_CAP: usize = 100_000;
/// How many listings the digest cache keeps before it starts over.
const LIST_CACHE_CAP: usize = 256;

fn idx(id: i64, base: i64, len: usize) -> Option<usize> {
    let i = usize::try_from(id.checked_sub(base)?).ok()?;
    (i < len).then_some(i)
}

impl State {
    pub fn new(config: &FakeConfig) -> State {
        State {
            seed: config.seed,
            seeded_invoices: config.invoices,
            today: config.today,
            consumer_token: config.consumer_token.clone(),
            employee_token: config.employee_token.clone(),
            rate_limit: config.rate_limit,
            allow_http_targets: config.allow_http_targets,
            webhooks_enabled: true,
            customers: BTreeMap::new(),
            addresses: BTreeMap::new(),
            invoices: BTreeMap::new(),
            by_date: BTreeSet::new(),
            postings: Vec::new(),
            vouchers: Vec::new(),
            close_groups: Vec::new(),
            reminders: Vec::new(),
            remarks: Vec::new(),
            next_customer_id: CUSTOMER_BASE,
            next_customer_number: FIRST_CUSTOMER_NUMBER,
            next_address_id: ADDRESS_BASE,
            next_invoice_id: INVOICE_BASE,
            next_invoice_number: FIRST_INVOICE_NUMBER,
            subscriptions: BTreeMap::new(),
            next_subscription_id: SUBSCRIPTION_BASE,
            sessions: HashMap::new(),
            next_session_id: 1,
            sessions_created: 0,
            faults: VecDeque::new(),
            requests: VecDeque::new(),
            deliveries: Vec::new(),
            list_cache: HashMap::new(),
            last_change: config.today.and_time(NaiveTime::MIN),
        }
    }

    /// Drops the customers, invoices and ledger (sessions, subscriptions and logs stay).
    pub fn clear_data(&mut self) {
        self.customers.clear();
        self.addresses.clear();
        self.invoices.clear();
        self.by_date.clear();
        self.postings.clear();
        self.vouchers.clear();
        self.close_groups.clear();
        self.reminders.clear();
        self.remarks.clear();
        self.next_customer_id = CUSTOMER_BASE;
        self.next_customer_number = FIRST_CUSTOMER_NUMBER;
        self.next_address_id = ADDRESS_BASE;
        self.next_invoice_id = INVOICE_BASE;
        self.next_invoice_number = FIRST_INVOICE_NUMBER;
        self.touch();
    }

    /// Something changed: every cached listing (and its digest) is stale.
    pub fn touch(&mut self) {
        self.list_cache.clear();
    }

    pub fn cache_get(&self, key: &str) -> Option<Arc<CachedList>> {
        self.list_cache.get(key).cloned()
    }

    pub fn cache_put(&mut self, key: String, list: Arc<CachedList>) {
        if self.list_cache.len() >= LIST_CACHE_CAP {
            self.list_cache.clear();
        }
        self.list_cache.insert(key, list);
    }

    /// The time of a change made now: the fake's today at the wall clock's time of day (UTC),
    /// never earlier than the previous change of the same day.
    pub fn now(&mut self) -> NaiveDateTime {
        let wall = Utc::now().time();
        let wall = NaiveTime::from_hms_opt(
            chrono::Timelike::hour(&wall),
            chrono::Timelike::minute(&wall),
            chrono::Timelike::second(&wall),
        )
        .unwrap_or(NaiveTime::MIN);
        let mut t = self.today.and_time(wall);
        if t < self.last_change && self.last_change.date() == self.today {
            t = self.last_change;
        }
        self.last_change = t;
        t
    }

    pub fn posting(&self, id: i64) -> Option<&Posting> {
        self.postings
            .get(idx(id, POSTING_BASE, self.postings.len())?)
    }

    fn posting_mut(&mut self, id: i64) -> Option<&mut Posting> {
        let i = idx(id, POSTING_BASE, self.postings.len())?;
        self.postings.get_mut(i)
    }

    pub fn voucher(&self, id: i64) -> Option<&Voucher> {
        self.vouchers
            .get(idx(id, VOUCHER_BASE, self.vouchers.len())?)
    }

    pub fn close_group(&self, id: i64) -> Option<&CloseGroup> {
        self.close_groups
            .get(idx(id, CLOSE_GROUP_BASE, self.close_groups.len())?)
    }

    pub fn reminder(&self, id: i64) -> Option<&Reminder> {
        self.reminders
            .get(idx(id, REMINDER_BASE, self.reminders.len())?)
    }

    pub fn remark(&self, id: i64) -> Option<&Remark> {
        self.remarks.get(idx(id, REMARK_BASE, self.remarks.len())?)
    }

    fn add_address(&mut self, a: &NewAddress) -> Result<i64, FakeError> {
        let country = match &a.country {
            None => NORWAY,
            Some(code) => {
                country_by_code(code)
                    .ok_or_else(|| {
                        FakeError::invalid("postalAddress.country", "unknown country code")
                    })?
                    .id
            }
        };
        let id = self.next_address_id;
        self.next_address_id += 1;
        self.addresses.insert(
            id,
            Address {
                id,
                version: 0,
                line1: a.address_line1.clone(),
                line2: a.address_line2.clone(),
                postal_code: a.postal_code.clone(),
                city: a.city.clone(),
                country,
            },
        );
        Ok(id)
    }

    pub fn add_customer(
        &mut self,
        c: NewCustomer,
        at: NaiveDateTime,
    ) -> Result<(i64, Vec<Event>), FakeError> {
        let postal = self.add_address(&c.postal_address.clone().unwrap_or_default())?;
        let physical = self.add_address(&c.physical_address.clone().unwrap_or_default())?;
        let id = self.next_customer_id;
        self.next_customer_id += 1;
        let number = self.next_customer_number;
        self.next_customer_number += 1;
        let email = c.email.unwrap_or_default();
        let customer = Customer {
            id,
            version: 0,
            number,
            name: c.name,
            organization_number: c.organization_number.unwrap_or_default(),
            invoice_email: c.invoice_email.unwrap_or_else(|| email.clone()),
            overdue_notice_email: c.overdue_notice_email.unwrap_or_else(|| email.clone()),
            email,
            phone_number: c.phone_number.unwrap_or_default(),
            phone_number_mobile: c.phone_number_mobile.unwrap_or_default(),
            is_private_individual: c.is_private_individual,
            is_inactive: c.is_inactive,
            language: c.language.unwrap_or_else(|| "NO".to_string()),
            invoice_send_method: c.invoice_send_method.unwrap_or_else(|| "EMAIL".to_string()),
            postal_address: postal,
            physical_address: physical,
            is_factoring: c.is_factoring,
            auto_soft_reminder: c.is_automatic_soft_reminder_enabled,
            auto_reminder: c.is_automatic_reminder_enabled,
            auto_notice: c.is_automatic_notice_of_debt_collection_enabled,
            invoices_due_in: 14,
            changes: vec![ChangeRec {
                timestamp: at,
                kind: ChangeKind::Create,
            }],
        };
        self.customers.insert(id, customer);
        self.touch();
        Ok((
            id,
            vec![Event {
                name: "customer.create",
                id,
                obj: ORef::Customer(id),
            }],
        ))
    }

    pub fn set_customer(
        &mut self,
        id: i64,
        change: CustomerChange,
        at: NaiveDateTime,
    ) -> Result<Vec<Event>, FakeError> {
        if !self.customers.contains_key(&id) {
            return Err(FakeError::NotFound {
                kind: "customer",
                id,
            });
        }
        if let Some(address) = &change.postal_address {
            // Validate before changing anything.
            if let Some(code) = &address.country {
                country_by_code(code).ok_or_else(|| {
                    FakeError::invalid("postalAddress.country", "unknown country code")
                })?;
            }
        }
        let postal_id = self.customers.get(&id).map(|c| c.postal_address);
        if let (Some(address), Some(pid)) = (&change.postal_address, postal_id) {
            let country = address
                .country
                .as_deref()
                .and_then(country_by_code)
                .map_or(NORWAY, |c| c.id);
            if let Some(a) = self.addresses.get_mut(&pid) {
                a.line1 = address.address_line1.clone();
                a.line2 = address.address_line2.clone();
                a.postal_code = address.postal_code.clone();
                a.city = address.city.clone();
                a.country = country;
                a.version += 1;
            }
        }
        let Some(c) = self.customers.get_mut(&id) else {
            return Err(FakeError::NotFound {
                kind: "customer",
                id,
            });
        };
        let CustomerChange {
            name,
            organization_number,
            email,
            invoice_email,
            overdue_notice_email,
            phone_number,
            phone_number_mobile,
            is_private_individual,
            is_inactive,
            language,
            invoice_send_method,
            is_factoring,
            is_automatic_soft_reminder_enabled,
            is_automatic_reminder_enabled,
            is_automatic_notice_of_debt_collection_enabled,
            postal_address: _,
        } = change;
        if let Some(v) = name {
            c.name = v;
        }
        if let Some(v) = organization_number {
            c.organization_number = v;
        }
        if let Some(v) = email {
            c.email = v;
        }
        if let Some(v) = invoice_email {
            c.invoice_email = v;
        }
        if let Some(v) = overdue_notice_email {
            c.overdue_notice_email = v;
        }
        if let Some(v) = phone_number {
            c.phone_number = v;
        }
        if let Some(v) = phone_number_mobile {
            c.phone_number_mobile = v;
        }
        if let Some(v) = is_private_individual {
            c.is_private_individual = v;
        }
        if let Some(v) = is_inactive {
            c.is_inactive = v;
        }
        if let Some(v) = language {
            c.language = v;
        }
        if let Some(v) = invoice_send_method {
            c.invoice_send_method = v;
        }
        if let Some(v) = is_factoring {
            c.is_factoring = v;
        }
        if let Some(v) = is_automatic_soft_reminder_enabled {
            c.auto_soft_reminder = v;
        }
        if let Some(v) = is_automatic_reminder_enabled {
            c.auto_reminder = v;
        }
        if let Some(v) = is_automatic_notice_of_debt_collection_enabled {
            c.auto_notice = v;
        }
        c.version += 1;
        c.changes.push(ChangeRec {
            timestamp: at,
            kind: ChangeKind::Update,
        });
        self.touch();
        Ok(vec![Event {
            name: "customer.update",
            id,
            obj: ORef::Customer(id),
        }])
    }

    fn add_posting(&mut self, mut p: Posting) -> i64 {
        let id = POSTING_BASE + self.postings.len() as i64;
        p.id = id;
        self.postings.push(p);
        id
    }

    fn add_voucher(
        &mut self,
        kind: VoucherKind,
        invoice: i64,
        date: NaiveDate,
        at: NaiveDateTime,
    ) -> i64 {
        let id = VOUCHER_BASE + self.vouchers.len() as i64;
        let number = i32::try_from(self.vouchers.len() + 1).unwrap_or(i32::MAX);
        self.vouchers.push(Voucher {
            id,
            number,
            date,
            kind,
            invoice,
            postings: Vec::new(),
            created: at,
        });
        id
    }

    fn voucher_push(&mut self, voucher: i64, posting: i64) {
        if let Some(i) = idx(voucher, VOUCHER_BASE, self.vouchers.len())
            && let Some(v) = self.vouchers.get_mut(i)
        {
            v.postings.push(posting);
        }
    }

    /// A charged invoice (or, with `credit_of`, a credit note) and its sales voucher.
    fn insert_invoice(&mut self, spec: InvoiceSpec, at: NaiveDateTime) -> Result<i64, FakeError> {
        let id = self.next_invoice_id;
        self.next_invoice_id += 1;
        let number = self.next_invoice_number;
        self.next_invoice_number += 1;
        let customer_number =
            self.customers
                .get(&spec.customer)
                .map(|c| c.number)
                .ok_or(FakeError::NotFound {
                    kind: "customer",
                    id: spec.customer,
                })?;
        let kid = match spec.kid {
            Some(k) => k,
            None if spec.credit_of.is_some() => String::new(),
            None => kid_for(customer_number, number),
        };
        let credit = spec.credit_of.is_some();
        let amount_currency = spec.amount_currency;
        let amount = if spec.currency == NOK {
            amount_currency
        } else {
            round2(amount_currency * spec.rate)
        };
        let ex_vat = excluding_vat(amount);
        let ex_vat_currency = excluding_vat(amount_currency);
        let voucher_kind = if credit {
            VoucherKind::CreditNote
        } else {
            VoucherKind::Invoice
        };
        let voucher = self.add_voucher(voucher_kind, id, spec.date, at);
        let (customer_kind, income_kind, vat_kind) = if credit {
            (
                PostingKind::CreditCustomer,
                PostingKind::CreditIncome,
                PostingKind::CreditVat,
            )
        } else {
            (
                PostingKind::InvoiceCustomer,
                PostingKind::Income,
                PostingKind::Vat,
            )
        };
        let base = Posting {
            id: 0,
            voucher,
            date: spec.date,
            account: 1500,
            customer: Some(spec.customer),
            amount,
            amount_currency,
            gross: amount,
            gross_currency: amount_currency,
            currency: spec.currency,
            close_group: None,
            invoice: Some(id),
            row: 1,
            kind: customer_kind,
            vat_type: None,
            payment_type: None,
        };
        let ledger = self.add_posting(base.clone());
        let income = self.add_posting(Posting {
            account: 3000,
            customer: None,
            amount: -ex_vat,
            amount_currency: -ex_vat_currency,
            gross: -amount,
            gross_currency: -amount_currency,
            row: 2,
            kind: income_kind,
            vat_type: Some(VAT_HIGH),
            ..base.clone()
        });
        let vat = self.add_posting(Posting {
            account: 2700,
            customer: None,
            amount: -(amount - ex_vat),
            amount_currency: -(amount_currency - ex_vat_currency),
            gross: -(amount - ex_vat),
            gross_currency: -(amount_currency - ex_vat_currency),
            row: 3,
            kind: vat_kind,
            vat_type: Some(VAT_HIGH),
            ..base
        });
        for p in [ledger, income, vat] {
            self.voucher_push(voucher, p);
        }
        let outstanding = if credit { Decimal::ZERO } else { amount };
        let outstanding_currency = if credit {
            Decimal::ZERO
        } else {
            amount_currency
        };
        let invoice = Invoice {
            id,
            version: 0,
            number,
            invoice_date: spec.date,
            due_date: spec.due,
            customer: spec.customer,
            kid,
            comment: spec.comment,
            invoice_comment: String::new(),
            currency: spec.currency,
            rate: spec.rate,
            amount,
            amount_currency,
            amount_ex_vat: ex_vat,
            amount_ex_vat_currency: ex_vat_currency,
            outstanding,
            outstanding_currency,
            fees: Decimal::ZERO,
            sum_remits: Decimal::ZERO,
            is_credit_note: credit,
            is_credited: false,
            credited: Decimal::ZERO,
            credited_invoice: spec.credit_of,
            voucher,
            postings: vec![ledger],
            reminders: Vec::new(),
            remark: None,
            changes: vec![ChangeRec {
                timestamp: at,
                kind: ChangeKind::Create,
            }],
        };
        self.by_date.insert((spec.date, id));
        self.invoices.insert(id, invoice);
        self.touch();
        Ok(id)
    }

    pub fn add_invoice(
        &mut self,
        new: NewInvoice,
        at: NaiveDateTime,
    ) -> Result<(i64, Vec<Event>), FakeError> {
        if !self.customers.contains_key(&new.customer_id) {
            return Err(FakeError::NotFound {
                kind: "customer",
                id: new.customer_id,
            });
        }
        if new.invoice_due_date < new.invoice_date {
            return Err(FakeError::invalid(
                "invoiceDueDate",
                "must not be before invoiceDate",
            ));
        }
        if new.amount <= Decimal::ZERO {
            return Err(FakeError::invalid("amount", "must be above zero"));
        }
        if new.amount.scale() > 2 && new.amount != round2(new.amount) {
            return Err(FakeError::invalid("amount", "at most two decimals"));
        }
        let cur = currency_by_code(&new.currency)
            .ok_or_else(|| FakeError::invalid("currency", "unknown currency code"))?;
        if let Some(kid) = &new.kid
            && (kid.is_empty() || kid.len() > 25 || !kid.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(FakeError::invalid("kid", "a KID is 1 to 25 digits"));
        }
        let rate = new
            .rate
            .unwrap_or_else(|| Decimal::new(cur.rate.0, cur.rate.1));
        if rate <= Decimal::ZERO {
            return Err(FakeError::invalid("rate", "must be above zero"));
        }
        let id = self.insert_invoice(
            InvoiceSpec {
                customer: new.customer_id,
                date: new.invoice_date,
                due: new.invoice_due_date,
                amount_currency: round2(new.amount),
                currency: cur.id,
                rate: if cur.id == NOK { Decimal::ONE } else { rate },
                kid: new.kid,
                comment: new.comment.unwrap_or_default(),
                credit_of: None,
            },
            at,
        )?;
        Ok((
            id,
            vec![Event {
                name: "invoice.charged",
                id,
                obj: ORef::Invoice(id),
            }],
        ))
    }

    /// Registers a payment: `paid` in NOK, `paid_currency` in the invoice currency (the same for
    /// NOK invoices). Errors name the `:payment` query parameter at fault.
    pub fn pay(
        &mut self,
        id: i64,
        paid: Decimal,
        paid_currency: Option<Decimal>,
        date: NaiveDate,
        payment_type_id: i64,
        at: NaiveDateTime,
    ) -> Result<Vec<Event>, FakeError> {
        let Some(inv) = self.invoices.get(&id) else {
            return Err(FakeError::NotFound {
                kind: "invoice",
                id,
            });
        };
        let ptype = payment_type(payment_type_id)
            .ok_or_else(|| FakeError::invalid("paymentTypeId", "unknown payment type"))?;
        if inv.is_credit_note {
            return Err(FakeError::invalid(
                "id",
                "a payment cannot be registered on a credit note",
            ));
        }
        if paid <= Decimal::ZERO {
            return Err(FakeError::invalid("paidAmount", "must be above zero"));
        }
        let paid = round2(paid);
        let foreign = inv.currency != NOK;
        let paid_currency = if foreign {
            match paid_currency {
                None => {
                    return Err(FakeError::invalid(
                        "paidAmountCurrency",
                        "required for an invoice in a currency other than NOK",
                    ));
                }
                Some(p) if p <= Decimal::ZERO => {
                    return Err(FakeError::invalid(
                        "paidAmountCurrency",
                        "must be above zero",
                    ));
                }
                Some(p) => round2(p),
            }
        } else {
            paid
        };
        if foreign {
            if paid_currency > inv.outstanding_currency {
                return Err(FakeError::invalid(
                    "paidAmountCurrency",
                    "more than the amount outstanding",
                ));
            }
        } else if paid > inv.outstanding + inv.fees {
            return Err(FakeError::invalid(
                "paidAmount",
                "more than the amount outstanding",
            ));
        }
        let customer = inv.customer;
        let currency = inv.currency;
        let voucher = self.add_voucher(VoucherKind::Payment, id, date, at);
        let bank = self.add_posting(Posting {
            id: 0,
            voucher,
            date,
            account: ptype.debit_account,
            customer: None,
            amount: paid,
            amount_currency: paid_currency,
            gross: paid,
            gross_currency: paid_currency,
            currency,
            close_group: None,
            invoice: Some(id),
            row: 1,
            kind: PostingKind::PaymentBank,
            vat_type: None,
            payment_type: Some(ptype.id),
        });
        let ledger = self.add_posting(Posting {
            id: 0,
            voucher,
            date,
            account: 1500,
            customer: Some(customer),
            amount: -paid,
            amount_currency: -paid_currency,
            gross: -paid,
            gross_currency: -paid_currency,
            currency,
            close_group: None,
            invoice: Some(id),
            row: 2,
            kind: PostingKind::PaymentCustomer,
            vat_type: None,
            payment_type: Some(ptype.id),
        });
        self.voucher_push(voucher, bank);
        self.voucher_push(voucher, ledger);
        let Some(inv) = self.invoices.get_mut(&id) else {
            return Err(FakeError::NotFound {
                kind: "invoice",
                id,
            });
        };
        let was_open = inv.outstanding_currency > Decimal::ZERO;
        if foreign {
            inv.outstanding_currency -= paid_currency;
            inv.outstanding = if inv.outstanding_currency.is_zero() {
                // The exchange difference is booked away (agio/disagio): nothing is left in NOK.
                Decimal::ZERO
            } else {
                (inv.outstanding - paid).max(Decimal::ZERO)
            };
        } else {
            let principal = paid.min(inv.outstanding);
            inv.outstanding -= principal;
            inv.outstanding_currency = inv.outstanding;
            inv.fees -= paid - principal;
        }
        inv.postings.push(ledger);
        inv.version += 1;
        inv.changes.push(ChangeRec {
            timestamp: at,
            kind: ChangeKind::Update,
        });
        let settled = was_open && inv.outstanding_currency.is_zero();
        let mut events = vec![Event {
            name: "voucher.create",
            id: voucher,
            obj: ORef::Voucher(voucher),
        }];
        if settled {
            let postings = inv.postings.clone();
            events.push(self.close(postings, date, at));
        }
        self.touch();
        Ok(events)
    }

    /// Matches `postings` in a new close group.
    fn close(&mut self, postings: Vec<i64>, date: NaiveDate, at: NaiveDateTime) -> Event {
        let id = CLOSE_GROUP_BASE + self.close_groups.len() as i64;
        for p in &postings {
            if let Some(p) = self.posting_mut(*p) {
                p.close_group = Some(id);
            }
        }
        self.close_groups.push(CloseGroup {
            id,
            date,
            postings,
            created: at,
        });
        Event {
            name: "closeGroup.create",
            id,
            obj: ORef::CloseGroup(id),
        }
    }

    /// Credits `amount` (in the invoice currency; `None` = the whole invoice) with a new credit
    /// note dated `date`. Returns the credit note's id.
    pub fn credit(
        &mut self,
        id: i64,
        amount: Option<Decimal>,
        date: NaiveDate,
        comment: Option<String>,
        at: NaiveDateTime,
    ) -> Result<(i64, Vec<Event>), FakeError> {
        let Some(inv) = self.invoices.get(&id) else {
            return Err(FakeError::NotFound {
                kind: "invoice",
                id,
            });
        };
        if inv.is_credit_note {
            return Err(FakeError::invalid("id", "a credit note cannot be credited"));
        }
        if inv.is_credited {
            return Err(FakeError::invalid("id", "the invoice is already credited"));
        }
        let credit = match amount {
            None => inv.amount_currency - inv.credited,
            Some(a) if a <= Decimal::ZERO => {
                return Err(FakeError::invalid("amount", "must be above zero"));
            }
            Some(a) if round2(a) > inv.outstanding_currency => {
                return Err(FakeError::invalid(
                    "amount",
                    "more than the amount outstanding",
                ));
            }
            Some(a) => round2(a),
        };
        let number = inv.number;
        let spec = InvoiceSpec {
            customer: inv.customer,
            date,
            due: date,
            amount_currency: -credit,
            currency: inv.currency,
            rate: inv.rate,
            kid: None,
            comment: comment.unwrap_or_else(|| format!("Kreditnota for faktura {number}")),
            credit_of: Some(id),
        };
        let full_credit = amount.is_none();
        let note = self.insert_invoice(spec, at)?;
        let note_posting = self
            .invoices
            .get(&note)
            .and_then(|n| n.postings.first().copied());
        let note_voucher = self.invoices.get(&note).map(|n| n.voucher);
        let note_amount = self.invoices.get(&note).map(|n| n.amount);
        let Some(inv) = self.invoices.get_mut(&id) else {
            return Err(FakeError::NotFound {
                kind: "invoice",
                id,
            });
        };
        let was_open = inv.outstanding_currency > Decimal::ZERO;
        inv.credited += credit;
        if full_credit {
            // The whole invoice is nullified: in NOK exactly its amount.
            inv.outstanding = Decimal::ZERO;
            inv.outstanding_currency = Decimal::ZERO;
        } else {
            inv.outstanding_currency = (inv.outstanding_currency - credit).max(Decimal::ZERO);
            inv.outstanding = if inv.outstanding_currency.is_zero() {
                Decimal::ZERO
            } else {
                let nok = -note_amount.unwrap_or(Decimal::ZERO);
                (inv.outstanding - nok).max(Decimal::ZERO)
            };
        }
        inv.is_credited = inv.credited >= inv.amount_currency;
        inv.version += 1;
        inv.changes.push(ChangeRec {
            timestamp: at,
            kind: ChangeKind::Update,
        });
        let settled = was_open && inv.outstanding_currency.is_zero();
        let mut postings = inv.postings.clone();
        let mut events = vec![Event {
            name: "invoice.charged",
            id: note,
            obj: ORef::Invoice(note),
        }];
        if let Some(v) = note_voucher {
            events.push(Event {
                name: "voucher.create",
                id: v,
                obj: ORef::Voucher(v),
            });
        }
        if settled {
            postings.extend(note_posting);
            events.push(self.close(postings, date, at));
        }
        self.touch();
        Ok((note, events))
    }

    /// A reminder on an unpaid NOK invoice (seeding only): adds its fee to the `*Total` fields.
    pub fn add_reminder(&mut self, invoice: i64, kind: &'static str, date: NaiveDate) {
        let id = REMINDER_BASE + self.reminders.len() as i64;
        let Some(inv) = self.invoices.get_mut(&invoice) else {
            return;
        };
        let charge = if kind == "SOFT_REMINDER" {
            Decimal::ZERO
        } else {
            Decimal::new(REMINDER_FEE * 100, 2)
        };
        inv.fees += charge;
        inv.reminders.push(id);
        let kid = inv.kid.clone();
        let currency = inv.currency;
        self.reminders.push(Reminder {
            id,
            invoice,
            date,
            term: date + chrono::Days::new(14),
            kind,
            charge,
            currency,
            kid,
        });
        self.touch();
    }

    /// An invoice remark (seeding only).
    pub fn add_remark(&mut self, invoice: i64, description: &str, postpone_to: Option<NaiveDate>) {
        let id = REMARK_BASE + self.remarks.len() as i64;
        if let Some(inv) = self.invoices.get_mut(&invoice) {
            inv.remark = Some(id);
            self.remarks.push(Remark {
                id,
                description: description.to_string(),
                postpone_to,
            });
            self.touch();
        }
    }
}

pub(crate) struct InvoiceSpec {
    pub customer: i64,
    pub date: NaiveDate,
    pub due: NaiveDate,
    /// Negative for a credit note.
    pub amount_currency: Decimal,
    pub currency: i64,
    pub rate: Decimal,
    pub kid: Option<String>,
    pub comment: String,
    pub credit_of: Option<i64>,
}

/// KID: customer number (5 digits), invoice number (6 digits) and a MOD10 check digit.
pub(crate) fn kid_for(customer_number: i32, invoice_number: i32) -> String {
    let base = format!(
        "{:05}{:06}",
        customer_number.rem_euclid(100_000),
        invoice_number.rem_euclid(1_000_000)
    );
    let check = mod10_check_digit(&base);
    format!("{base}{check}")
}

/// The Luhn (MOD10) check digit of a string of digits.
pub(crate) fn mod10_check_digit(digits: &str) -> u32 {
    let mut sum = 0;
    for (i, c) in digits.bytes().rev().enumerate() {
        let d = u32::from(c.wrapping_sub(b'0'));
        let v = if i % 2 == 0 { d * 2 } else { d };
        sum += if v > 9 { v - 9 } else { v };
    }
    (10 - sum % 10) % 10
}

/// The MOD11 check digit of an organisation number's first eight digits, `None` when the
/// remainder makes it invalid.
pub(crate) fn mod11_check_digit(first8: &[u32; 8]) -> Option<u32> {
    const WEIGHTS: [u32; 8] = [3, 2, 7, 6, 5, 4, 3, 2];
    let sum: u32 = first8.iter().zip(WEIGHTS).map(|(d, w)| d * w).sum();
    match sum % 11 {
        0 => Some(0),
        1 => None,
        r => Some(11 - r),
    }
}

// ---------------------------------------------------------------------------------------------
// Rendering

/// A reference to an object, for nested rendering.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ORef {
    Invoice(i64),
    Customer(i64),
    Address(i64),
    Country(i64),
    Currency(i64),
    Posting(i64),
    Voucher(i64),
    CloseGroup(i64),
    Reminder(i64),
    Remark(i64),
    Account(i64),
    VatType(i64),
    PaymentType(i64),
    Subscription(i64),
    Change(ChangeRec),
    /// An object of a type the fake does not model (path, id).
    Opaque(&'static str, i64),
}

impl ORef {
    fn path_id(&self) -> Option<(&'static str, i64)> {
        Some(match *self {
            ORef::Invoice(id) => ("invoice", id),
            ORef::Customer(id) => ("customer", id),
            ORef::Address(id) => ("address", id),
            ORef::Country(id) => ("country", id),
            ORef::Currency(id) => ("currency", id),
            ORef::Posting(id) => ("ledger/posting", id),
            ORef::Voucher(id) => ("ledger/voucher", id),
            ORef::CloseGroup(id) => ("ledger/closeGroup", id),
            ORef::Reminder(id) => ("reminder", id),
            ORef::Remark(id) => ("invoiceRemark", id),
            ORef::Account(id) => ("ledger/account", id),
            ORef::VatType(id) => ("ledger/vatType", id),
            ORef::PaymentType(id) => ("invoice/paymentType", id),
            ORef::Subscription(id) => ("event/subscription", id),
            ORef::Opaque(path, id) => (path, id),
            ORef::Change(_) => return None,
        })
    }
}

/// What an object says about one of its fields.
pub(crate) enum Val {
    J(Value),
    Obj(Option<ORef>),
    Arr(Vec<ORef>),
}

/// The rendering context: the state and the url prefix (`127.0.0.1:PORT/v2`, like Tripletex's
/// scheme-less `tripletex.no/v2`).
pub(crate) struct Cx<'a> {
    pub st: &'a State,
    pub base: &'a str,
}

impl Cx<'_> {
    fn url(&self, path: &str, id: i64) -> Value {
        Value::String(format!("{}/{path}/{id}", self.base))
    }
}

pub(crate) trait Entity {
    const TY: Ty;
    fn get(&self, cx: &Cx<'_>, name: &str) -> Val;
}

/// Renders `e` with the selection `sel` (compiled for `E::TY`).
pub(crate) fn render<E: Entity>(cx: &Cx<'_>, e: &E, sel: &Sel) -> Value {
    let defs = schema(E::TY);
    let mut m = Map::with_capacity(sel.fields.len());
    for (i, sub) in &sel.fields {
        let Some(def) = defs.get(*i) else { continue };
        let v = match e.get(cx, def.name) {
            Val::J(v) => v,
            Val::Obj(None) => Value::Null,
            Val::Obj(Some(r)) => render_ref(cx, &r, sub.as_ref()),
            Val::Arr(rs) => {
                Value::Array(rs.iter().map(|r| render_ref(cx, r, sub.as_ref())).collect())
            }
        };
        m.insert(def.name.to_string(), v);
    }
    Value::Object(m)
}

/// Renders a nested object: `{"id", "url"}` without a selection, else the selected fields.
pub(crate) fn render_ref(cx: &Cx<'_>, r: &ORef, sel: Option<&Sel>) -> Value {
    if let ORef::Change(c) = r {
        return match sel {
            Some(sel) => render(cx, c, sel),
            None => render(cx, c, &star(Ty::Change)),
        };
    }
    let Some(sel) = sel else {
        let Some((path, id)) = r.path_id() else {
            return Value::Null;
        };
        let mut m = Map::with_capacity(2);
        m.insert("id".into(), id.into());
        m.insert("url".into(), cx.url(path, id));
        return Value::Object(m);
    };
    let st = cx.st;
    let out = match *r {
        ORef::Invoice(id) => st.invoices.get(&id).map(|e| render(cx, e, sel)),
        ORef::Customer(id) => st.customers.get(&id).map(|e| render(cx, e, sel)),
        ORef::Address(id) => st.addresses.get(&id).map(|e| render(cx, e, sel)),
        ORef::Country(id) => country(id).map(|e| render(cx, e, sel)),
        ORef::Currency(id) => currency(id).map(|e| render(cx, e, sel)),
        ORef::Posting(id) => st.posting(id).map(|e| render(cx, e, sel)),
        ORef::Voucher(id) => st.voucher(id).map(|e| render(cx, e, sel)),
        ORef::CloseGroup(id) => st.close_group(id).map(|e| render(cx, e, sel)),
        ORef::Reminder(id) => st.reminder(id).map(|e| render(cx, e, sel)),
        ORef::Remark(id) => st.remark(id).map(|e| render(cx, e, sel)),
        ORef::Account(id) => account(id).map(|e| render(cx, e, sel)),
        ORef::VatType(id) => VAT_TYPES
            .iter()
            .find(|v| v.id == id)
            .map(|e| render(cx, e, sel)),
        ORef::PaymentType(id) => payment_type(id).map(|e| render(cx, e, sel)),
        ORef::Subscription(id) => st.subscriptions.get(&id).map(|e| render(cx, e, sel)),
        ORef::Opaque(path, id) => Some(render(cx, &Opaque { path, id }, sel)),
        ORef::Change(_) => None,
    };
    out.unwrap_or(Value::Null)
}

fn j(v: impl Into<Value>) -> Val {
    Val::J(v.into())
}

fn s(v: &str) -> Val {
    Val::J(Value::String(v.to_string()))
}

fn changes(c: &[ChangeRec]) -> Val {
    Val::Arr(c.iter().map(|c| ORef::Change(*c)).collect())
}

impl Entity for ChangeRec {
    const TY: Ty = Ty::Change;
    fn get(&self, _: &Cx<'_>, name: &str) -> Val {
        match name {
            "employeeId" => j(EMPLOYEE_ID),
            "timestamp" => Val::J(timestamp(self.timestamp)),
            "changeType" => s(match self.kind {
                ChangeKind::Create => "CREATE",
                ChangeKind::Update => "UPDATE",
            }),
            _ => Val::J(Value::Null),
        }
    }
}

pub(crate) struct Opaque {
    pub path: &'static str,
    pub id: i64,
}

impl Entity for Opaque {
    const TY: Ty = Ty::Ref;
    fn get(&self, cx: &Cx<'_>, name: &str) -> Val {
        match name {
            "id" => j(self.id),
            "version" => j(0),
            "url" => Val::J(cx.url(self.path, self.id)),
            _ => Val::J(Value::Null),
        }
    }
}

impl Entity for Invoice {
    const TY: Ty = Ty::Invoice;
    fn get(&self, cx: &Cx<'_>, name: &str) -> Val {
        match name {
            "id" => j(self.id),
            "version" => j(self.version),
            "changes" => changes(&self.changes),
            "url" => Val::J(cx.url("invoice", self.id)),
            "invoiceNumber" => j(self.number),
            "invoiceDate" => Val::J(date(self.invoice_date)),
            "customer" => Val::Obj(Some(ORef::Customer(self.customer))),
            // Tripletex's int32: 0 on an invoice that is not a credit note.
            "creditedInvoice" => j(self.credited_invoice.unwrap_or(0)),
            "isCredited" => j(self.is_credited),
            "invoiceDueDate" => Val::J(date(self.due_date)),
            "kid" => s(&self.kid),
            "invoiceComment" => s(&self.invoice_comment),
            "comment" => s(&self.comment),
            "orders" | "orderLines" | "travelReports" | "projectInvoiceDetails" => {
                Val::Arr(Vec::new())
            }
            "voucher" => Val::Obj(Some(ORef::Voucher(self.voucher))),
            "deliveryDate" => Val::J(date(self.invoice_date)),
            "amount" => Val::J(money(self.amount)),
            "amountCurrency" => Val::J(money(self.amount_currency)),
            "amountExcludingVat" => Val::J(money(self.amount_ex_vat)),
            "amountExcludingVatCurrency" => Val::J(money(self.amount_ex_vat_currency)),
            "amountRoundoff" | "amountRoundoffCurrency" => Val::J(money(Decimal::ZERO)),
            "amountOutstanding" => Val::J(money(self.outstanding)),
            "amountCurrencyOutstanding" => Val::J(money(self.outstanding_currency)),
            "amountOutstandingTotal" => {
                Val::J(money(self.outstanding + self.fees + self.sum_remits))
            }
            "amountCurrencyOutstandingTotal" => Val::J(money(
                self.outstanding_currency + self.fees + self.sum_remits,
            )),
            "sumRemits" => Val::J(money(self.sum_remits)),
            "currency" => Val::Obj(Some(ORef::Currency(self.currency))),
            "isCreditNote" => j(self.is_credit_note),
            "isCharged" | "isApproved" => j(true),
            "postings" => Val::Arr(self.postings.iter().map(|p| ORef::Posting(*p)).collect()),
            "reminders" => Val::Arr(self.reminders.iter().map(|r| ORef::Reminder(*r)).collect()),
            "invoiceRemarks" => s(self
                .remark
                .and_then(|r| cx.st.remark(r))
                .map_or("", |r| r.description.as_str())),
            "invoiceRemark" => Val::Obj(self.remark.map(ORef::Remark)),
            "isPeriodizationPossible" => j(false),
            "documentId" => j(self.id - INVOICE_BASE + 900_001),
            "ehfSendStatus" => s("DO_NOT_SEND"),
            // paymentTypeId, paidAmount: write-only on POST /invoice.
            _ => Val::J(Value::Null),
        }
    }
}

impl Entity for Customer {
    const TY: Ty = Ty::Customer;
    fn get(&self, cx: &Cx<'_>, name: &str) -> Val {
        match name {
            "id" => j(self.id),
            "version" => j(self.version),
            "changes" => changes(&self.changes),
            "url" => Val::J(cx.url("customer", self.id)),
            "name" => s(&self.name),
            "organizationNumber" => s(&self.organization_number),
            "globalLocationNumber" | "supplierNumber" => j(0),
            "customerNumber" => j(self.number),
            "isSupplier" => j(false),
            "isCustomer" => j(true),
            "isInactive" => j(self.is_inactive),
            "accountManager" | "department" | "deliveryAddress" | "category1" | "category2"
            | "category3" => Val::Obj(None),
            "email" => s(&self.email),
            "invoiceEmail" => s(&self.invoice_email),
            "overdueNoticeEmail" => s(&self.overdue_notice_email),
            "bankAccounts" => Val::J(Value::Array(Vec::new())),
            "phoneNumber" => s(&self.phone_number),
            "phoneNumberMobile" => s(&self.phone_number_mobile),
            "description" | "website" | "invoiceSMSNotificationNumber" => s(""),
            "language" => s(&self.language),
            "displayName" => Val::J(Value::String(format!("{} ({})", self.name, self.number))),
            "isPrivateIndividual" => j(self.is_private_individual),
            "singleCustomerInvoice" | "invoiceSendSMSNotification" => j(false),
            "invoiceSendMethod" => s(&self.invoice_send_method),
            "emailAttachmentType" => s("ATTACHMENT"),
            "postalAddress" => Val::Obj(Some(ORef::Address(self.postal_address))),
            "physicalAddress" => Val::Obj(Some(ORef::Address(self.physical_address))),
            "invoicesDueIn" => j(self.invoices_due_in),
            "invoicesDueInType" => s("DAYS"),
            "currency" => Val::Obj(Some(ORef::Currency(NOK))),
            "bankAccountPresentation" => Val::Arr(Vec::new()),
            "ledgerAccount" => Val::Obj(Some(ORef::Account(account_id(1500)))),
            "isFactoring" => j(self.is_factoring),
            "isAutomaticSoftReminderEnabled" => j(self.auto_soft_reminder),
            "isAutomaticReminderEnabled" => j(self.auto_reminder),
            "isAutomaticNoticeOfDebtCollectionEnabled" => j(self.auto_notice),
            "discountPercentage" => Val::J(money(Decimal::ZERO)),
            _ => Val::J(Value::Null),
        }
    }
}

impl Address {
    fn as_string(&self) -> String {
        let mut parts: Vec<&str> = Vec::new();
        for p in [&self.line1, &self.line2] {
            if !p.is_empty() {
                parts.push(p);
            }
        }
        let place = format!("{} {}", self.postal_code, self.city);
        let place = place.trim();
        let mut out = parts.join(", ");
        if !place.is_empty() {
            if !out.is_empty() {
                out.push_str(", ");
            }
            out.push_str(place);
        }
        out
    }
}

impl Entity for Address {
    const TY: Ty = Ty::Address;
    fn get(&self, cx: &Cx<'_>, name: &str) -> Val {
        match name {
            "id" => j(self.id),
            "version" => j(self.version),
            "changes" => Val::Arr(Vec::new()),
            "url" => Val::J(cx.url("address", self.id)),
            "addressLine1" => s(&self.line1),
            "addressLine2" => s(&self.line2),
            "postalCode" => s(&self.postal_code),
            "city" => s(&self.city),
            "country" => Val::Obj(Some(ORef::Country(self.country))),
            "displayName" | "addressAsString" | "displayNameInklMatrikkel" => {
                Val::J(Value::String(self.as_string()))
            }
            "knr" | "gnr" | "bnr" | "fnr" | "snr" => j(0),
            "unitNumber" => s(""),
            _ => Val::J(Value::Null),
        }
    }
}

impl Entity for CountryRec {
    const TY: Ty = Ty::Country;
    fn get(&self, cx: &Cx<'_>, name: &str) -> Val {
        match name {
            "id" => j(self.id),
            "version" => j(0),
            "changes" => Val::Arr(Vec::new()),
            "url" => Val::J(cx.url("country", self.id)),
            "name" | "displayName" => s(self.name),
            "isoAlpha2Code" => s(self.alpha2),
            "isoAlpha3Code" => s(self.alpha3),
            "isoNumericCode" => s(self.numeric),
            _ => Val::J(Value::Null),
        }
    }
}

impl Entity for CurrencyRec {
    const TY: Ty = Ty::Currency;
    fn get(&self, cx: &Cx<'_>, name: &str) -> Val {
        match name {
            "id" => j(self.id),
            "version" => j(0),
            "changes" => Val::Arr(Vec::new()),
            "url" => Val::J(cx.url("currency", self.id)),
            "code" => s(self.code),
            "description" => s(self.description),
            "factor" => j(self.factor),
            "displayName" => Val::J(Value::String(format!(
                "{} - {}",
                self.code, self.description
            ))),
            "isDisabled" => j(false),
            _ => Val::J(Value::Null),
        }
    }
}

impl Entity for AccountRec {
    const TY: Ty = Ty::Account;
    fn get(&self, cx: &Cx<'_>, name: &str) -> Val {
        match name {
            "id" => j(account_id(self.number)),
            "version" => j(0),
            "changes" => Val::Arr(Vec::new()),
            "url" => Val::J(cx.url("ledger/account", account_id(self.number))),
            "number" => j(self.number),
            "name" => s(self.name),
            "description" => s(""),
            "type" => s(self.kind),
            _ => Val::J(Value::Null),
        }
    }
}

impl Entity for VatTypeRec {
    const TY: Ty = Ty::VatType;
    fn get(&self, cx: &Cx<'_>, name: &str) -> Val {
        match name {
            "id" => j(self.id),
            "version" => j(0),
            "changes" => Val::Arr(Vec::new()),
            "url" => Val::J(cx.url("ledger/vatType", self.id)),
            "name" => s(self.name),
            "number" => s(self.number),
            "percentage" => Val::J(money(Decimal::from(self.percentage))),
            _ => Val::J(Value::Null),
        }
    }
}

impl Entity for PaymentTypeRec {
    const TY: Ty = Ty::PaymentType;
    fn get(&self, cx: &Cx<'_>, name: &str) -> Val {
        match name {
            "id" => j(self.id),
            "version" => j(0),
            "changes" => Val::Arr(Vec::new()),
            "url" => Val::J(cx.url("invoice/paymentType", self.id)),
            "description" | "displayName" => s(self.description),
            "debitAccount" => Val::Obj(Some(ORef::Account(account_id(self.debit_account)))),
            "creditAccount" => Val::Obj(Some(ORef::Account(account_id(1500)))),
            "vatType" => Val::Obj(Some(ORef::VatType(0))),
            "sequence" => j(self.sequence),
            "customer" | "supplier" => Val::Obj(None),
            "currencyId" => j(NOK),
            "currencyCode" => s("NOK"),
            _ => Val::J(Value::Null),
        }
    }
}

impl Posting {
    fn description(&self, st: &State) -> String {
        let inv = self.invoice.and_then(|i| st.invoices.get(&i));
        let number = inv.map_or(0, |i| i.number);
        let customer = inv
            .and_then(|i| st.customers.get(&i.customer))
            .map_or("", |c| c.name.as_str());
        match self.kind {
            PostingKind::InvoiceCustomer | PostingKind::Income | PostingKind::Vat => {
                format!("Faktura nummer {number} til {customer}")
            }
            PostingKind::PaymentCustomer | PostingKind::PaymentBank => {
                format!("Innbetaling faktura nummer {number}")
            }
            PostingKind::CreditCustomer | PostingKind::CreditIncome | PostingKind::CreditVat => {
                format!("Kreditnota nummer {number} til {customer}")
            }
        }
    }
}

impl Entity for Posting {
    const TY: Ty = Ty::Posting;
    fn get(&self, cx: &Cx<'_>, name: &str) -> Val {
        let inv = || self.invoice.and_then(|i| cx.st.invoices.get(&i));
        let ledger = matches!(
            self.kind,
            PostingKind::InvoiceCustomer
                | PostingKind::PaymentCustomer
                | PostingKind::CreditCustomer
        );
        match name {
            "id" => j(self.id),
            "version" => j(i32::from(self.close_group.is_some())),
            "changes" => Val::Arr(Vec::new()),
            "url" => Val::J(cx.url("ledger/posting", self.id)),
            "voucher" => Val::Obj(Some(ORef::Voucher(self.voucher))),
            "date" => Val::J(date(self.date)),
            "description" => Val::J(Value::String(self.description(cx.st))),
            "account" => Val::Obj(Some(ORef::Account(account_id(self.account)))),
            "amortizationAccount"
            | "supplier"
            | "employee"
            | "project"
            | "product"
            | "department"
            | "quantityType1"
            | "quantityType2" => Val::Obj(None),
            "customer" => Val::Obj(self.customer.map(ORef::Customer)),
            "vatType" => Val::Obj(Some(ORef::VatType(self.vat_type.unwrap_or(0)))),
            "amount" => Val::J(money(self.amount)),
            "amountCurrency" => Val::J(money(self.amount_currency)),
            "amountGross" => Val::J(money(self.gross)),
            "amountGrossCurrency" => Val::J(money(self.gross_currency)),
            "currency" => Val::Obj(Some(ORef::Currency(self.currency))),
            "closeGroup" => Val::Obj(self.close_group.map(ORef::CloseGroup)),
            "invoiceNumber" => match inv() {
                Some(i) if ledger => Val::J(Value::String(i.number.to_string())),
                _ => s(""),
            },
            "termOfPayment" => match inv() {
                Some(i) if self.kind == PostingKind::InvoiceCustomer => Val::J(date(i.due_date)),
                _ => Val::J(date(self.date)),
            },
            "row" => j(self.row),
            "type" => match self.kind {
                PostingKind::InvoiceCustomer | PostingKind::CreditCustomer => {
                    s("OUTGOING_INVOICE_CUSTOMER_POSTING")
                }
                PostingKind::PaymentCustomer => s("INCOMING_PAYMENT"),
                PostingKind::PaymentBank => s("INCOMING_PAYMENT_OPPOSITE"),
                _ => Val::J(Value::Null),
            },
            "externalRef" => match (self.kind, inv()) {
                (PostingKind::PaymentCustomer | PostingKind::PaymentBank, Some(i)) => s(&i.kid),
                (PostingKind::CreditCustomer, Some(i)) => Val::J(Value::String(
                    i.credited_invoice
                        .and_then(|o| cx.st.invoices.get(&o))
                        .map_or(String::new(), |o| o.number.to_string()),
                )),
                _ => s(""),
            },
            "systemGenerated" => j(matches!(
                self.kind,
                PostingKind::Vat | PostingKind::CreditVat
            )),
            "taxTransactionType" | "taxTransactionTypeId" => Val::J(Value::Null),
            "matched" => j(self.close_group.is_some()),
            "quantityAmount1" | "quantityAmount2" => Val::J(money(Decimal::ZERO)),
            "isVatReadonly" | "isAmountVatClosed" => j(false),
            "postingRuleId" => Val::J(self.payment_type.map_or(Value::Null, Value::from)),
            _ => Val::J(Value::Null),
        }
    }
}

impl Voucher {
    fn description(&self, st: &State) -> String {
        let inv = st.invoices.get(&self.invoice);
        let number = inv.map_or(0, |i| i.number);
        let customer = inv
            .and_then(|i| st.customers.get(&i.customer))
            .map_or("", |c| c.name.as_str());
        match self.kind {
            VoucherKind::Invoice => format!("Faktura nummer {number} til {customer}"),
            VoucherKind::Payment => format!("Innbetaling faktura nummer {number}"),
            VoucherKind::CreditNote => format!("Kreditnota nummer {number} til {customer}"),
        }
    }
}

impl Entity for Voucher {
    const TY: Ty = Ty::Voucher;
    fn get(&self, cx: &Cx<'_>, name: &str) -> Val {
        match name {
            "id" => j(self.id),
            "version" => j(0),
            "changes" => changes(&[ChangeRec {
                timestamp: self.created,
                kind: ChangeKind::Create,
            }]),
            "url" => Val::J(cx.url("ledger/voucher", self.id)),
            "date" => Val::J(date(self.date)),
            "number" => j(self.number),
            "tempNumber" => j(0),
            "year" => j(self.date.year()),
            "description" => Val::J(Value::String(self.description(cx.st))),
            "voucherType" => Val::Obj(Some(ORef::Opaque(
                "ledger/voucherType",
                match self.kind {
                    VoucherKind::Invoice | VoucherKind::CreditNote => 1,
                    VoucherKind::Payment => 2,
                },
            ))),
            "postings" => Val::Arr(self.postings.iter().map(|p| ORef::Posting(*p)).collect()),
            "document" | "attachment" => Val::Obj(None),
            _ => Val::J(Value::Null),
        }
    }
}

impl Entity for CloseGroup {
    const TY: Ty = Ty::CloseGroup;
    fn get(&self, cx: &Cx<'_>, name: &str) -> Val {
        match name {
            "id" => j(self.id),
            "version" => j(0),
            "changes" => changes(&[ChangeRec {
                timestamp: self.created,
                kind: ChangeKind::Create,
            }]),
            "url" => Val::J(cx.url("ledger/closeGroup", self.id)),
            "date" => Val::J(date(self.date)),
            "postings" => Val::Arr(self.postings.iter().map(|p| ORef::Posting(*p)).collect()),
            _ => Val::J(Value::Null),
        }
    }
}

impl Entity for Reminder {
    const TY: Ty = Ty::Reminder;
    fn get(&self, cx: &Cx<'_>, name: &str) -> Val {
        let inv = cx.st.invoices.get(&self.invoice);
        match name {
            "id" => j(self.id),
            "version" => j(0),
            "changes" => Val::Arr(Vec::new()),
            "url" => Val::J(cx.url("reminder", self.id)),
            "reminderDate" => Val::J(date(self.date)),
            "charge" | "chargeCurrency" | "totalCharge" | "totalChargeCurrency" => {
                Val::J(money(self.charge))
            }
            "totalAmountCurrency" => Val::J(money(
                inv.map_or(Decimal::ZERO, |i| i.outstanding_currency) + self.charge,
            )),
            "interests" | "interestRate" => Val::J(money(Decimal::ZERO)),
            "termOfPayment" => Val::J(date(self.term)),
            "currency" => Val::Obj(Some(ORef::Currency(self.currency))),
            "type" => s(self.kind),
            "comment" => s(""),
            "kid" => s(&self.kid),
            "bankAccountNumber" => s("15032012342"),
            "bankAccountIBAN" => s("NO2715032012342"),
            "bankAccountSWIFT" => s("DNBANOKKXXX"),
            "bank" => s("DNB"),
            _ => Val::J(Value::Null),
        }
    }
}

impl Entity for Remark {
    const TY: Ty = Ty::InvoiceRemark;
    fn get(&self, cx: &Cx<'_>, name: &str) -> Val {
        match name {
            "id" => j(self.id),
            "version" => j(0),
            "changes" => Val::Arr(Vec::new()),
            "url" => Val::J(cx.url("invoiceRemark", self.id)),
            "description" => s(&self.description),
            "postponeRemindersTo" => Val::J(self.postpone_to.map_or(Value::Null, date)),
            _ => Val::J(Value::Null),
        }
    }
}

impl Entity for Subscription {
    const TY: Ty = Ty::Subscription;
    fn get(&self, cx: &Cx<'_>, name: &str) -> Val {
        match name {
            "id" => j(self.id),
            "version" => j(self.version),
            "changes" => changes(&self.changes),
            "url" => Val::J(cx.url("event/subscription", self.id)),
            "event" => s(&self.event),
            "targetUrl" => s(&self.target_url),
            "fields" => s(&self.fields),
            "status" => s(self.status.as_str()),
            "authHeaderName" => Val::J(
                self.auth_header_name
                    .as_deref()
                    .map_or(Value::Null, Value::from),
            ),
            // authHeaderValue and hmacSharedSecret are write-only.
            _ => Val::J(Value::Null),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mod10_matches_known_kids() {
        // Luhn examples: 7992739871 → 3.
        assert_eq!(mod10_check_digit("7992739871"), 3);
        assert_eq!(mod10_check_digit("000000000"), 0);
    }

    #[test]
    fn mod11_matches_a_known_organisation_number() {
        // 923609016 (Equinor ASA).
        assert_eq!(mod11_check_digit(&[9, 2, 3, 6, 0, 9, 0, 1]), Some(6));
    }

    #[test]
    fn money_is_a_json_number() {
        assert_eq!(money(Decimal::new(1250050, 2)).to_string(), "12500.5");
        assert_eq!(money(Decimal::ZERO).to_string(), "0.0");
    }
}
