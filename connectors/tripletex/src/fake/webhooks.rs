//! Webhook delivery: events are rendered for each matching subscription while the state is locked
//! (a snapshot of the object at the time of the event), then posted on tokio tasks.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha512;

use super::model::{Cx, Event, State, SubStatus, render_ref};
use super::schema::{Sel, Ty, selection, star};
use super::{App, LoggedDelivery};

/// The event catalogue of `GET /v2/event`: name, description, payload model.
pub(crate) static EVENTS: &[(&str, &str, &str)] = &[
    ("customer.create", "Kunde opprettet", "Customer"),
    ("customer.update", "Kunde endret", "Customer"),
    ("customer.delete", "Kunde slettet", "Customer"),
    ("invoice.charged", "Faktura belastet (fakturert)", "Invoice"),
    ("voucher.create", "Bilag opprettet", "Voucher"),
    ("voucher.update", "Bilag endret", "Voucher"),
    ("voucher.delete", "Bilag slettet", "Voucher"),
    (
        "closeGroup.create",
        "Poster lukket mot hverandre",
        "CloseGroup",
    ),
    (
        "closeGroup.delete",
        "Lukking av poster opphevet",
        "CloseGroup",
    ),
    // Confirmed in Tripletex's docs (specs/tripletex.md) but never sent by this fake, which has
    // none of these objects: subscribing works, deliveries never come.
    ("supplier.create", "Leverandør opprettet", "Supplier"),
    ("supplier.update", "Leverandør endret", "Supplier"),
    ("supplier.delete", "Leverandør slettet", "Supplier"),
    ("project.create", "Prosjekt opprettet", "Project"),
    ("project.update", "Prosjekt endret", "Project"),
    ("project.delete", "Prosjekt slettet", "Project"),
    ("product.create", "Produkt opprettet", "Product"),
    ("product.update", "Produkt endret", "Product"),
    ("product.delete", "Produkt slettet", "Product"),
    ("order.create", "Ordre opprettet", "Order"),
    ("order.update", "Ordre endret", "Order"),
    ("order.delete", "Ordre slettet", "Order"),
    ("employee.create", "Ansatt opprettet", "Employee"),
    ("employee.update", "Ansatt endret", "Employee"),
    ("employee.delete", "Ansatt slettet", "Employee"),
    ("contact.create", "Kontakt opprettet", "Contact"),
    ("contact.update", "Kontakt endret", "Contact"),
    ("contact.delete", "Kontakt slettet", "Contact"),
    ("account.create", "Konto opprettet", "Account"),
    ("account.update", "Konto endret", "Account"),
    ("account.delete", "Konto slettet", "Account"),
    ("notification.sent", "Varsel sendt", "Notification"),
];

/// Pauses before the 2nd, 3rd and 4th attempt (UNCONFIRMED on Tripletex).
const BACKOFF_MS: [u64; 3] = [100, 500, 2000];
/// Deliveries in a row that failed every attempt before a subscription is disabled.
const MAX_FAILURES: u32 = 10;

pub(crate) fn payload_type(event: &str) -> Ty {
    match event.split('.').next().unwrap_or("") {
        "invoice" => Ty::Invoice,
        "customer" => Ty::Customer,
        "voucher" => Ty::Voucher,
        _ => Ty::CloseGroup,
    }
}

/// The rendering of a subscription without `fields`.
pub(crate) fn default_selection(event: &str) -> Sel {
    let ty = payload_type(event);
    match ty {
        Ty::Voucher | Ty::CloseGroup => selection("*,postings(*)", ty).unwrap_or_else(|_| star(ty)),
        _ => star(ty),
    }
}

pub(crate) struct Outgoing {
    subscription_id: i64,
    event: &'static str,
    object_id: i64,
    url: String,
    body: Vec<u8>,
    key: String,
    signature: Option<String>,
    auth: Option<(String, String)>,
}

/// `base64(HMAC-SHA512(secret, idempotency_key + "&" + body))`.
pub(crate) fn signature(secret: &[u8], key: &str, body: &[u8]) -> Option<String> {
    let mut mac = <Hmac<Sha512> as KeyInit>::new_from_slice(secret).ok()?;
    mac.update(key.as_bytes());
    mac.update(b"&");
    mac.update(body);
    Some(STANDARD.encode(mac.finalize().into_bytes()))
}

/// The deliveries `events` cause, rendered now.
pub(crate) fn prepare(st: &State, base: &str, events: &[Event]) -> Vec<Outgoing> {
    if !st.webhooks_enabled || events.is_empty() {
        return Vec::new();
    }
    let cx = Cx { st, base };
    let mut out = Vec::new();
    for ev in events {
        for sub in st
            .subscriptions
            .values()
            .filter(|s| s.status == SubStatus::Active && s.event == ev.name)
        {
            let value = if ev.name.ends_with(".delete") {
                Value::Null
            } else {
                let sel = if sub.fields.trim().is_empty() {
                    default_selection(ev.name)
                } else {
                    selection(&sub.fields, payload_type(ev.name))
                        .unwrap_or_else(|_| default_selection(ev.name))
                };
                render_ref(&cx, &ev.obj, Some(&sel))
            };
            let body = json!({
                "subscriptionId": sub.id,
                "event": ev.name,
                "id": ev.id,
                "value": value,
            });
            let body = serde_json::to_vec(&body).unwrap_or_default();
            let key = uuid::Uuid::new_v4().to_string();
            let signature = sub
                .hmac_secret
                .as_deref()
                .and_then(|secret| signature(secret.as_bytes(), &key, &body));
            let auth = match (&sub.auth_header_name, &sub.auth_header_value) {
                (Some(n), Some(v)) => Some((n.clone(), v.clone())),
                _ => None,
            };
            out.push(Outgoing {
                subscription_id: sub.id,
                event: ev.name,
                object_id: ev.id,
                url: sub.target_url.clone(),
                body,
                key,
                signature,
                auth,
            });
        }
    }
    out
}

pub(crate) fn spawn(app: &Arc<App>, out: Vec<Outgoing>) {
    for o in out {
        app.rt.spawn(deliver(app.clone(), o));
    }
}

async fn deliver(app: Arc<App>, o: Outgoing) {
    let mut stop = app.shutdown.clone();
    for attempt in 0..=BACKOFF_MS.len() {
        if attempt > 0 {
            let pause = Duration::from_millis(BACKOFF_MS.get(attempt - 1).copied().unwrap_or(0));
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
        }
        let mut request = app
            .http
            .post(&o.url)
            .header("content-type", "application/json")
            .header("idempotency-key", &o.key)
            .body(o.body.clone());
        if let Some(sig) = &o.signature {
            request = request.header("x-request-signature", sig);
        }
        if let Some((name, value)) = &o.auth {
            request = request.header(name.as_str(), value.as_str());
        }
        let (status, error) = match request.send().await {
            Ok(r) => (Some(r.status().as_u16()), None),
            Err(e) => (None, Some(e.to_string())),
        };
        let ok = status.is_some_and(|s| (200..300).contains(&s));
        let mut st = app.lock();
        st.deliveries.push(LoggedDelivery {
            subscription_id: o.subscription_id,
            event: o.event.to_string(),
            object_id: o.object_id,
            idempotency_key: o.key.clone(),
            attempt: u32::try_from(attempt + 1).unwrap_or(u32::MAX),
            status,
            error,
            at: Instant::now(),
        });
        if ok {
            if let Some(sub) = st.subscriptions.get_mut(&o.subscription_id) {
                sub.failures = 0;
            }
            return;
        }
    }
    let mut st = app.lock();
    let mut changed = false;
    if let Some(sub) = st.subscriptions.get_mut(&o.subscription_id) {
        sub.failures += 1;
        if sub.failures >= MAX_FAILURES && sub.status == SubStatus::Active {
            sub.status = SubStatus::TooManyErrors;
            changed = true;
        }
    }
    if changed {
        st.touch();
    }
}
