//! Outbound webhooks: the endpoints partners (and creditors) register, and the events Forfall
//! sends them.

use chrono::{DateTime, Utc};

use super::access::Owner;
use super::ids::{CreditorId, EndpointId, EventId};

/// Every event type Forfall sends, in the order the documentation lists them.
pub const EVENT_TYPES: &[&str] = &[
    "invoice.noticed",
    "invoice.listed",
    "invoice.cancelled",
    "invoice.transferred",
    "case.held",
    "case.released",
    "case.principal_paid",
    "case.withdrawn",
    "case.closed",
    "payment.synced",
];

/// The event types an endpoint receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventTypes {
    /// Every type, now and in future (written `["*"]`).
    All,
    /// Only these (known types, no repeats, at least one).
    Only(Vec<String>),
}

impl EventTypes {
    /// The wildcard that subscribes to every type.
    pub const ALL: &'static str = "*";

    pub fn matches(&self, event_type: &str) -> bool {
        match self {
            EventTypes::All => true,
            EventTypes::Only(types) => types.iter().any(|t| t == event_type),
        }
    }

    /// As the API shows them and the store keeps them: `["*"]` or the list.
    pub fn to_list(&self) -> Vec<String> {
        match self {
            EventTypes::All => vec![EventTypes::ALL.to_owned()],
            EventTypes::Only(types) => types.clone(),
        }
    }

    /// From the stored list; `["*"]` (or, defensively, an empty list) is every type.
    pub fn from_list(list: Vec<String>) -> EventTypes {
        if list.is_empty() || list.iter().any(|t| t == EventTypes::ALL) {
            EventTypes::All
        } else {
            EventTypes::Only(list)
        }
    }
}

/// A registered endpoint. Its signing secret is kept sealed; only the creation answer shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookEndpoint {
    pub id: EndpointId,
    /// A partner's endpoint hears every one of its creditors; a creditor's only itself.
    pub owner: Owner,
    pub url: String,
    pub event_types: EventTypes,
    pub description: Option<String>,
    /// `nonce || ciphertext` of the `whsec_…` secret, bound to the endpoint's id.
    pub sealed_secret: Vec<u8>,
    pub created_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
}

/// Something that happened to one of a creditor's invoices, as sent to endpoints.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookEvent {
    pub id: EventId,
    pub creditor_id: CreditorId,
    pub event_type: String,
    pub data: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

impl WebhookEvent {
    /// The body every delivery of this event carries: `{type, id, created_at, data}`.
    pub fn payload(&self) -> serde_json::Value {
        serde_json::json!({
            "type": self.event_type,
            "id": self.id,
            "created_at": self.created_at,
            "data": self.data,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wildcard_matches_every_type_and_a_list_only_its_own() {
        let all = EventTypes::from_list(vec!["*".into()]);
        assert_eq!(all, EventTypes::All);
        assert!(EVENT_TYPES.iter().all(|t| all.matches(t)));
        let some = EventTypes::from_list(vec!["case.withdrawn".into()]);
        assert!(some.matches("case.withdrawn"));
        assert!(!some.matches("invoice.noticed"));
        assert_eq!(all.to_list(), vec!["*"]);
    }
}
