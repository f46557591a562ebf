//! Deterministic Norwegian seed data: a pure function of (seed, invoices, today).
//!
//! Customers (about one per four invoices): a third private individuals, the rest companies with
//! MOD11-valid organisation numbers; Norwegian streets, postal codes and cities; a few with
//! Tripletex's own automatic reminders or debt-collection notices switched on. Invoices: dated over
//! the last 120 days (the last three years above 1 000 invoices), due after 14 days (sometimes 10
//! or 30), 200 to 80 000 NOK with øre, 25 % VAT, KIDs with a MOD10 check digit, some in EUR.
//! About 35 % paid in full, 10 % partly paid, 8 % credited (each with its credit note), 30 %
//! overdue and unpaid (some with a reminder or an invoice remark), the rest not yet due. Ids and
//! invoice numbers follow the order in which things happened.

use std::collections::{HashMap, HashSet};

use chrono::{Days, NaiveDate, NaiveDateTime, NaiveTime};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rust_decimal::Decimal;

use super::model::{NOK, PAYMENT_TYPE_BANK, State, mod11_check_digit, round2};
use super::{NewAddress, NewCustomer, NewInvoice};

const COMPANY_PREFIXES: &[&str] = &[
    "Fjordkraft",
    "Nordlys",
    "Vestland",
    "Bryggen",
    "Nidaros",
    "Fjellheim",
    "Havblikk",
    "Solsiden",
    "Polarlys",
    "Midnattsol",
    "Lofoten",
    "Tindevegen",
    "Skogly",
    "Elvebakken",
    "Sjøsiden",
    "Fosen",
    "Hardanger",
    "Trollheimen",
    "Vikna",
    "Sognefjord",
    "Kystlys",
    "Bjørkely",
    "Granly",
    "Fagerli",
];

const COMPANY_TRADES: &[&str] = &[
    "Rør",
    "Bakeri",
    "Elektro",
    "Bygg",
    "Regnskap",
    "Transport",
    "Maling",
    "Tannlegesenter",
    "Frisør",
    "Eiendom",
    "Data",
    "Catering",
    "Snekkerverksted",
    "Blomster",
    "Fysioterapi",
    "Bilverksted",
    "Arkitekter",
    "Rådgivning",
    "Sjømat",
    "Kaffebar",
    "Entreprenør",
    "Trykkeri",
];

const FIRST_NAMES: &[&str] = &[
    "Kari", "Ola", "Ingrid", "Lars", "Nora", "Emma", "Jakob", "Sofie", "Henrik", "Maja", "Anders",
    "Sigrid", "Magnus", "Ida", "Erik", "Thea", "Jonas", "Hanne", "Per", "Astrid", "Bjørn", "Silje",
    "Knut", "Marit", "Øystein", "Åse", "Tor", "Solveig",
];

const LAST_NAMES: &[&str] = &[
    "Nordmann",
    "Hansen",
    "Johansen",
    "Olsen",
    "Larsen",
    "Andersen",
    "Pedersen",
    "Nilsen",
    "Kristiansen",
    "Jensen",
    "Karlsen",
    "Johnsen",
    "Pettersen",
    "Eriksen",
    "Berg",
    "Haugen",
    "Hagen",
    "Johannessen",
    "Andreassen",
    "Jacobsen",
    "Dahl",
    "Jørgensen",
    "Halvorsen",
    "Lund",
    "Solberg",
    "Bakken",
    "Strand",
    "Moen",
    "Sæther",
    "Østby",
];

const STREETS: &[&str] = &[
    "Storgata",
    "Kirkegata",
    "Karl Johans gate",
    "Dronningens gate",
    "Kongens gate",
    "Strandgaten",
    "Torggata",
    "Olav Tryggvasons gate",
    "Skippergata",
    "Markveien",
    "Thorvald Meyers gate",
    "Nygårdsgaten",
    "Bogstadveien",
    "Fjordveien",
    "Sjøgata",
    "Elvegata",
    "Parkveien",
    "Skolegata",
    "Havnegata",
    "Øvre Slottsgate",
    "Munkegata",
    "Kongsgårdsgata",
    "Bryggen",
    "Løkkeveien",
];

const PLACES: &[(&str, &str)] = &[
    ("0150", "OSLO"),
    ("0250", "OSLO"),
    ("0468", "OSLO"),
    ("0558", "OSLO"),
    ("0661", "OSLO"),
    ("5003", "BERGEN"),
    ("5014", "BERGEN"),
    ("5045", "BERGEN"),
    ("7010", "TRONDHEIM"),
    ("7030", "TRONDHEIM"),
    ("4006", "STAVANGER"),
    ("4010", "STAVANGER"),
    ("9008", "TROMSØ"),
    ("1530", "MOSS"),
    ("3015", "DRAMMEN"),
    ("4612", "KRISTIANSAND S"),
    ("2317", "HAMAR"),
    ("8006", "BODØ"),
    ("6002", "ÅLESUND"),
    ("3111", "TØNSBERG"),
    ("1606", "FREDRIKSTAD"),
    ("2815", "GJØVIK"),
    ("1337", "SANDVIKA"),
    ("5527", "HAUGESUND"),
    ("6413", "MOLDE"),
    ("8300", "SVOLVÆR"),
];

/// Lower-case ASCII letters and digits only: "Fjordkraft Rør" → "fjordkraftror".
fn slug(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars().flat_map(char::to_lowercase) {
        match c {
            'æ' => out.push_str("ae"),
            'ø' => out.push('o'),
            'å' => out.push('a'),
            c if c.is_ascii_alphanumeric() => out.push(c),
            _ => {}
        }
    }
    out
}

/// A nine-digit organisation number with a valid MOD11 check digit, not yet in `taken`.
fn org_number(rng: &mut StdRng, taken: &mut HashSet<String>) -> String {
    loop {
        let mut d = [0u32; 8];
        d[0] = if rng.random_range(0..10) < 8 { 9 } else { 8 };
        for x in d.iter_mut().skip(1) {
            *x = rng.random_range(0..10);
        }
        let Some(check) = mod11_check_digit(&d) else {
            continue;
        };
        let s: String = d
            .iter()
            .chain(std::iter::once(&check))
            .map(|d| char::from(b'0' + u8::try_from(*d).unwrap_or(0)))
            .collect();
        if taken.insert(s.clone()) {
            return s;
        }
    }
}

fn digits(rng: &mut StdRng, n: usize) -> String {
    (0..n)
        .map(|_| char::from(b'0' + rng.random_range(0u8..10)))
        .collect()
}

fn street_address(rng: &mut StdRng) -> String {
    let street = STREETS.choose(rng).copied().unwrap_or("Storgata");
    let number = rng.random_range(1..120);
    if rng.random_range(0..6) == 0 {
        let letter = char::from(b'A' + rng.random_range(0u8..4));
        format!("{street} {number}{letter}")
    } else {
        format!("{street} {number}")
    }
}

/// `base` the first time, then `base2`, `base3`, …
fn unique(seen: &mut HashMap<String, u32>, base: String) -> String {
    let n = seen.entry(base.clone()).or_insert(0);
    *n += 1;
    if *n == 1 { base } else { format!("{base}{n}") }
}

fn customer(
    rng: &mut StdRng,
    orgs: &mut HashSet<String>,
    emails: &mut HashMap<String, u32>,
) -> NewCustomer {
    let private = rng.random_range(0..3) == 0;
    let (postal_code, city) = PLACES.choose(rng).copied().unwrap_or(("0150", "OSLO"));
    let street = street_address(rng);
    let physical = NewAddress {
        address_line1: street.clone(),
        address_line2: String::new(),
        postal_code: postal_code.to_string(),
        city: city.to_string(),
        country: None,
    };
    let mobile = format!(
        "{}{}",
        if rng.random_range(0..2) == 0 {
            "4"
        } else {
            "9"
        },
        digits(rng, 7)
    );
    let mut c = NewCustomer {
        is_private_individual: private,
        physical_address: Some(physical.clone()),
        phone_number_mobile: Some(mobile),
        is_automatic_soft_reminder_enabled: rng.random_range(0..10) == 0,
        is_automatic_reminder_enabled: rng.random_range(0..100) < 15,
        is_automatic_notice_of_debt_collection_enabled: rng.random_range(0..100) < 5,
        is_factoring: rng.random_range(0..100) < 3,
        is_inactive: rng.random_range(0..100) < 2,
        language: Some(
            if rng.random_range(0..100) < 5 {
                "EN"
            } else {
                "NO"
            }
            .to_string(),
        ),
        ..NewCustomer::default()
    };
    if private {
        let first = FIRST_NAMES.choose(rng).copied().unwrap_or("Kari");
        let last = LAST_NAMES.choose(rng).copied().unwrap_or("Nordmann");
        c.name = format!("{first} {last}");
        let local = format!("{}.{}", slug(first), slug(last));
        let local = unique(emails, local);
        c.email = Some(format!("{local}@example.org"));
        c.postal_address = Some(physical);
        c.invoice_send_method = Some(
            match rng.random_range(0..100) {
                0..60 => "EMAIL",
                60..85 => "EFAKTURA",
                85..95 => "PAPER",
                _ => "AVTALEGIRO",
            }
            .to_string(),
        );
    } else {
        let prefix = COMPANY_PREFIXES.choose(rng).copied().unwrap_or("Nordlys");
        let trade = COMPANY_TRADES.choose(rng).copied().unwrap_or("Bakeri");
        let suffix = match rng.random_range(0..100) {
            0..88 => "AS",
            88..93 => "ANS",
            93..97 => "DA",
            _ => "ASA",
        };
        c.name = format!("{prefix} {trade} {suffix}");
        let domain = unique(emails, format!("{}{}", slug(prefix), slug(trade)));
        c.email = Some(format!("post@{domain}.example.com"));
        c.invoice_email = Some(format!("faktura@{domain}.example.com"));
        c.organization_number = Some(org_number(rng, orgs));
        c.phone_number = Some(format!("2{}", digits(rng, 7)));
        c.postal_address = Some(if rng.random_range(0..5) == 0 {
            NewAddress {
                address_line1: format!("Postboks {}", rng.random_range(100..9999)),
                ..physical
            }
        } else {
            physical
        });
        c.invoice_send_method = Some(
            match rng.random_range(0..100) {
                0..40 => "EHF",
                40..90 => "EMAIL",
                _ => "PAPER",
            }
            .to_string(),
        );
    }
    c
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Paid,
    PartlyPaid,
    Credited,
    Overdue,
    NotDue,
}

struct Plan {
    customer: usize,
    date: NaiveDate,
    due: NaiveDate,
    amount: Decimal,
    eur_rate: Option<Decimal>,
    fate: Fate,
    /// Payment (or credit) date and share paid in per cent.
    settle: Option<(NaiveDate, u32)>,
    payment_type: i64,
}

/// Amount in øre/cents (200 to 80 000 NOK, divided by `scale_down`), spread over four tiers.
fn amount_minor(rng: &mut StdRng, scale_down: i64) -> i64 {
    let (lo, hi) = match rng.random_range(0..100) {
        0..30 => (20_000, 100_000),
        30..65 => (100_000, 500_000),
        65..90 => (500_000, 2_000_000),
        _ => (2_000_000, 8_000_000),
    };
    rng.random_range(lo..=hi) / scale_down
}

fn at(date: NaiveDate, k: u32) -> NaiveDateTime {
    let secs = 8 * 3600 + k.min(50_000);
    date.and_time(NaiveTime::from_num_seconds_from_midnight_opt(secs, 0).unwrap_or(NaiveTime::MIN))
}

/// Replaces the state's customers and invoices with `invoices` seeded ones.
pub(crate) fn seed(st: &mut State, seed: u64, invoices: usize, today: NaiveDate) {
    st.clear_data();
    st.seed = seed;
    st.seeded_invoices = invoices;
    if invoices == 0 {
        return;
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let window: u64 = if invoices <= 1000 { 120 } else { 3 * 365 };
    let start = today.checked_sub_days(Days::new(window)).unwrap_or(today);
    let created = start.checked_sub_days(Days::new(30)).unwrap_or(start);

    let n_customers = (invoices / 4).max(1);
    let mut orgs = HashSet::new();
    let mut emails = HashMap::new();
    let mut customers = Vec::with_capacity(n_customers);
    for k in 0..n_customers {
        let c = customer(&mut rng, &mut orgs, &mut emails);
        let private = c.is_private_individual;
        let time = at(created, u32::try_from(k).unwrap_or(u32::MAX));
        if let Ok((id, _)) = st.add_customer(c, time) {
            customers.push((id, private));
        }
    }
    if customers.is_empty() {
        return;
    }

    // Roughly what the ledger will hold, so it is not reallocated while it grows.
    st.postings.reserve(invoices.saturating_mul(5));
    st.vouchers.reserve(invoices.saturating_mul(2));
    let mut plans = Vec::with_capacity(invoices);
    for _ in 0..invoices {
        let customer = rng.random_range(0..customers.len());
        let private = customers.get(customer).is_some_and(|c| c.1);
        let terms: u64 = match rng.random_range(0..100) {
            0..70 => 14,
            70..85 => 10,
            _ => 30,
        };
        let fate = match rng.random_range(0..100) {
            0..35 => Fate::Paid,
            35..45 => Fate::PartlyPaid,
            45..53 => Fate::Credited,
            53..83 => Fate::Overdue,
            _ => Fate::NotDue,
        };
        // Overdue needs a due date before today, not-yet-due one from today on.
        let days_back = match fate {
            Fate::Overdue => rng.random_range(terms + 1..=window.max(terms + 1)),
            Fate::NotDue => rng.random_range(0..=terms.min(window)),
            _ => rng.random_range(0..=window),
        };
        let date = today
            .checked_sub_days(Days::new(days_back))
            .unwrap_or(today);
        let due = date.checked_add_days(Days::new(terms)).unwrap_or(date);
        let eur = !private && rng.random_range(0..100) < 6;
        let (amount, eur_rate) = if eur {
            (
                Decimal::new(amount_minor(&mut rng, 10), 2),
                Some(Decimal::new(rng.random_range(1120..1180), 2)),
            )
        } else {
            (Decimal::new(amount_minor(&mut rng, 1), 2), None)
        };
        let settle = match fate {
            Fate::Paid | Fate::PartlyPaid => {
                let d = date
                    .checked_add_days(Days::new(rng.random_range(0..=terms + 10)))
                    .unwrap_or(date)
                    .min(today);
                let share = if fate == Fate::Paid {
                    100
                } else {
                    rng.random_range(20..=70)
                };
                Some((d, share))
            }
            Fate::Credited => {
                let d = date
                    .checked_add_days(Days::new(rng.random_range(1..=20)))
                    .unwrap_or(date)
                    .min(today);
                Some((d, 100))
            }
            _ => None,
        };
        let payment_type = match rng.random_range(0..100) {
            0..3 if private => 25_002,
            3..8 if private => 25_004,
            _ => PAYMENT_TYPE_BANK,
        };
        plans.push(Plan {
            customer,
            date,
            due,
            amount,
            eur_rate,
            fate,
            settle,
            payment_type,
        });
    }
    // A reminder or a remark on some overdue invoices, decided now so the draws stay in order.
    let extras: Vec<u32> = plans.iter().map(|_| rng.random_range(0..100)).collect();

    // Replay what happened in date order: create (0), then pay or credit (1).
    let mut events: Vec<(NaiveDate, u8, usize)> = Vec::with_capacity(plans.len() * 2);
    for (i, p) in plans.iter().enumerate() {
        events.push((p.date, 0, i));
        if let Some((d, _)) = p.settle {
            events.push((d, 1, i));
        }
    }
    events.sort_unstable();
    let mut ids = vec![0i64; plans.len()];
    let mut day = None;
    let mut k = 0u32;
    for (date, kind, i) in events {
        if day != Some(date) {
            day = Some(date);
            k = 0;
        }
        k += 1;
        let time = at(date, k);
        let Some(p) = plans.get(i) else { continue };
        let Some(&(customer_id, _)) = customers.get(p.customer) else {
            continue;
        };
        if kind == 0 {
            let new = NewInvoice {
                customer_id,
                invoice_date: p.date,
                invoice_due_date: p.due,
                amount: p.amount,
                currency: if p.eur_rate.is_some() { "EUR" } else { "NOK" }.to_string(),
                rate: p.eur_rate,
                kid: None,
                comment: None,
            };
            if let Ok((id, _)) = st.add_invoice(new, time)
                && let Some(slot) = ids.get_mut(i)
            {
                *slot = id;
            }
            continue;
        }
        let id = ids.get(i).copied().unwrap_or(0);
        let Some((d, share)) = p.settle else { continue };
        if p.fate == Fate::Credited {
            let _ = st.credit(id, None, d, None, time);
            continue;
        }
        let Some(inv) = st.invoices.get(&id) else {
            continue;
        };
        let part = |amount: Decimal| {
            if share >= 100 {
                amount
            } else {
                round2(amount * Decimal::from(share) / Decimal::ONE_HUNDRED)
            }
        };
        let (nok, cur) = if inv.currency == NOK {
            (part(inv.amount), None)
        } else {
            let cur = part(inv.amount_currency);
            let nok = if share >= 100 {
                inv.amount
            } else {
                round2(cur * inv.rate)
            };
            (nok, Some(cur))
        };
        let _ = st.pay(id, nok, cur, d, p.payment_type, time);
    }

    // Reminders from Tripletex's own dunning, and a few remarks, on overdue NOK invoices.
    for (i, p) in plans.iter().enumerate() {
        if p.fate != Fate::Overdue {
            continue;
        }
        let id = ids.get(i).copied().unwrap_or(0);
        let Some(inv) = st.invoices.get(&id) else {
            continue;
        };
        if inv.currency != NOK {
            continue;
        }
        let customer = st.customers.get(&inv.customer);
        let (auto_reminder, auto_soft) =
            customer.map_or((false, false), |c| (c.auto_reminder, c.auto_soft_reminder));
        let extra = extras.get(i).copied().unwrap_or(99);
        let reminder_day = p
            .due
            .checked_add_days(Days::new(14))
            .filter(|d| auto_reminder && *d <= today);
        let soft_day = p
            .due
            .checked_add_days(Days::new(7))
            .filter(|d| auto_soft && *d <= today);
        if let Some(d) = reminder_day {
            st.add_reminder(id, "REMINDER", d);
        } else if let Some(d) = soft_day {
            st.add_reminder(id, "SOFT_REMINDER", d);
        }
        if extra < 3 {
            st.add_remark(
                id,
                "Kunden har fått betalingsutsettelse",
                p.due.checked_add_days(Days::new(45)),
            );
        }
    }
}

/// Checks a KID's MOD10 check digit.
#[cfg(test)]
pub(crate) fn kid_is_valid(kid: &str) -> bool {
    use super::model::mod10_check_digit;
    if kid.len() < 2 || !kid.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let (body, check) = kid.split_at(kid.len() - 1);
    check.parse::<u32>().ok() == Some(mod10_check_digit(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slug_drops_norwegian_letters_and_spaces() {
        assert_eq!(slug("Fjordkraft Rør"), "fjordkraftror");
        assert_eq!(slug("Sjøsiden Kaffebar"), "sjosidenkaffebar");
        assert_eq!(slug("Åse Sæther"), "asesaether");
    }

    #[test]
    fn generated_kids_check_out() {
        let kid = super::super::model::kid_for(10_001, 10_042);
        assert_eq!(kid.len(), 12);
        assert!(kid_is_valid(&kid));
        assert!(!kid_is_valid("1234"));
    }
}
