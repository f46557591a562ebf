//! Tripletex's webhook deliveries: the signature check and what a delivery means.
//!
//! A subscription made with `hmacSharedSecret` is delivered with two headers: `idempotency-key`,
//! the same on every retry of one delivery, and `x-request-signature` =
//! `base64(HMAC-SHA512(secret, idempotency-key + "&" + body))`. Tripletex sends no timestamp, so
//! freshness cannot be checked: replays are stopped by remembering idempotency keys (the gateway
//! does), and a delivery only ever causes a re-read of the invoice, never a write from its body.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use forfall_connector::{ConnectorError, Delivery, RemoteChange, RemoteId};
use hmac::{Hmac, KeyInit, Mac};
use serde::Deserialize;
use sha2::Sha512;

pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
pub const SIGNATURE: &str = "x-request-signature";

/// The events the connector subscribes to, with the fields it asks each delivery to carry.
pub const SUBSCRIPTIONS: [(&str, &str); 4] = [
    // Seen in third parties' integrations, not in Tripletex's own list (UNCONFIRMED): a new
    // charged invoice.
    ("invoice.charged", "id,version"),
    // Postings matched: an OCR/KID payment settled an invoice.
    (
        "closeGroup.create",
        "id,date,postings(id,customer(id),invoiceNumber)",
    ),
    // Any voucher: partial payments and credit notes.
    (
        "voucher.create",
        "id,date,postings(id,customer(id),invoiceNumber)",
    ),
    // A customer's details or dunning switches changed.
    ("customer.update", "id,version"),
];

/// Checks the signature of a delivery against the subscription's shared secret.
pub fn verify(
    secret: &[u8],
    headers: &http::HeaderMap,
    body: &[u8],
) -> Result<Delivery, ConnectorError> {
    if secret.is_empty() {
        return Err(ConnectorError::BadSignature(
            "the connection has no webhook secret".into(),
        ));
    }
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| ConnectorError::BadSignature(format!("the {name} header is missing")))
    };
    let key = header(IDEMPOTENCY_KEY)?;
    let signature = STANDARD
        .decode(header(SIGNATURE)?)
        .map_err(|_| ConnectorError::BadSignature(format!("{SIGNATURE} is not base64")))?;
    let mut mac = Hmac::<Sha512>::new_from_slice(secret)
        .map_err(|_| ConnectorError::Config("unusable webhook secret".into()))?;
    mac.update(key.as_bytes());
    mac.update(b"&");
    mac.update(body);
    mac.verify_slice(&signature)
        .map_err(|_| ConnectorError::BadSignature("the signature does not match".into()))?;
    Ok(Delivery {
        id: Some(key.to_owned()),
    })
}

/// The signature Tripletex would send: for tests and the fake.
pub fn sign(secret: &[u8], idempotency_key: &str, body: &[u8]) -> String {
    let mut mac = match Hmac::<Sha512>::new_from_slice(secret) {
        Ok(mac) => mac,
        // HMAC takes keys of any length; this branch cannot be reached.
        Err(_) => return String::new(),
    };
    mac.update(idempotency_key.as_bytes());
    mac.update(b"&");
    mac.update(body);
    STANDARD.encode(mac.finalize().into_bytes())
}

/// `{"subscriptionId", "event", "id", "value"}` (`WebHookWrapper`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Wrapper {
    event: String,
    id: Option<i64>,
    #[serde(default)]
    value: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
struct WithPostings {
    #[serde(default)]
    postings: Vec<Posting>,
}

#[derive(Debug, Deserialize)]
struct Posting {
    customer: Option<IdRef>,
}

#[derive(Debug, Deserialize)]
struct IdRef {
    id: i64,
}

/// What a delivery says changed. Invoice events name the invoice; payment matches and vouchers
/// name the customers whose postings they touch (the gateway re-reads those customers' invoices);
/// events the connector did not subscribe to are ignored.
pub fn parse(body: &[u8]) -> Result<Vec<RemoteChange>, ConnectorError> {
    let wrapper: Wrapper = serde_json::from_slice(body).map_err(|e| ConnectorError::Malformed {
        detail: format!("not a Tripletex webhook: {e}"),
    })?;
    let id = || {
        wrapper
            .id
            .map(|id| RemoteId(id.to_string()))
            .ok_or_else(|| ConnectorError::Malformed {
                detail: format!("{} delivery without an id", wrapper.event),
            })
    };
    let (object, verb) = wrapper
        .event
        .split_once('.')
        .unwrap_or((wrapper.event.as_str(), ""));
    Ok(match object {
        "invoice" if verb == "delete" => vec![RemoteChange::InvoiceDeleted(id()?)],
        "invoice" => vec![RemoteChange::InvoiceChanged(id()?)],
        "customer" => vec![RemoteChange::Unspecific {
            customer: Some(id()?),
        }],
        "closeGroup" | "voucher" => {
            let postings = wrapper
                .value
                .as_ref()
                .and_then(|v| serde_json::from_value::<WithPostings>(v.clone()).ok())
                .map(|v| v.postings)
                .unwrap_or_default();
            let mut customers: Vec<i64> = postings
                .iter()
                .filter_map(|p| p.customer.as_ref().map(|c| c.id))
                .collect();
            customers.sort_unstable();
            customers.dedup();
            if customers.is_empty() {
                // A deletion (value null) or postings without customers: re-read everything open.
                vec![RemoteChange::Unspecific { customer: None }]
            } else {
                customers
                    .into_iter()
                    .map(|c| RemoteChange::Unspecific {
                        customer: Some(RemoteId(c.to_string())),
                    })
                    .collect()
            }
        }
        _ => Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(key: &str, signature: &str) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        h.insert(IDEMPOTENCY_KEY, key.parse().unwrap());
        h.insert(SIGNATURE, signature.parse().unwrap());
        h
    }

    #[test]
    fn a_delivery_signed_with_the_shared_secret_passes_and_names_its_idempotency_key() {
        let body = br#"{"subscriptionId":1,"event":"invoice.charged","id":7,"value":{"id":7}}"#;
        let signature = sign(b"k3y", "abc-1", body);
        let delivery = verify(b"k3y", &headers("abc-1", &signature), body).unwrap();
        assert_eq!(delivery.id.as_deref(), Some("abc-1"));
    }

    #[test]
    fn a_tampered_body_another_key_or_another_secret_is_refused() {
        let body = br#"{"event":"invoice.charged","id":7}"#;
        let signature = sign(b"k3y", "abc-1", body);
        let refused = |r: Result<Delivery, ConnectorError>| {
            assert!(matches!(r, Err(ConnectorError::BadSignature(_))), "{r:?}")
        };
        refused(verify(
            b"k3y",
            &headers("abc-1", &signature),
            br#"{"event":"invoice.charged","id":8}"#,
        ));
        refused(verify(b"k3y", &headers("abc-2", &signature), body));
        refused(verify(b"other", &headers("abc-1", &signature), body));
        refused(verify(b"k3y", &headers("abc-1", "not base64!"), body));
        refused(verify(b"k3y", &http::HeaderMap::new(), body));
        refused(verify(b"", &headers("abc-1", &signature), body));
    }

    #[test]
    fn the_signature_is_base64_hmac_sha512_of_key_ampersand_body() {
        // Computed independently: printf 'abc-1&{}' | openssl dgst -sha512 -hmac k3y -binary | base64
        assert_eq!(
            sign(b"k3y", "abc-1", b"{}"),
            "3+o2PV1cQGZkS0j/XTwhNXCtETphoKD1pICV3vo7/IgyKK72aqoCmy79WS37WbdzLstDErrsQ+m00aTKeqCHXw=="
        );
    }

    #[test]
    fn deliveries_become_the_changes_they_describe() {
        assert_eq!(
            parse(br#"{"subscriptionId":1,"event":"invoice.charged","id":7,"value":{"id":7}}"#)
                .unwrap(),
            vec![RemoteChange::InvoiceChanged(RemoteId("7".into()))]
        );
        assert_eq!(
            parse(
                br#"{"event":"closeGroup.create","id":3,"value":{"id":3,"postings":[
                {"id":1,"customer":{"id":501}},{"id":2,"customer":{"id":501}},{"id":3}]}}"#
            )
            .unwrap(),
            vec![RemoteChange::Unspecific {
                customer: Some(RemoteId("501".into()))
            }]
        );
        assert_eq!(
            parse(br#"{"event":"voucher.delete","id":3,"value":null}"#).unwrap(),
            vec![RemoteChange::Unspecific { customer: None }]
        );
        assert!(
            parse(br#"{"event":"product.create","id":3}"#)
                .unwrap()
                .is_empty()
        );
        assert!(matches!(
            parse(b"{not json"),
            Err(ConnectorError::Malformed { .. })
        ));
    }
}
