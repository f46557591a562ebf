//! Typed identifiers. Every id is text with a short prefix that says what it names
//! (`cred_…`, `inv_…`), time-ordered (UUIDv7) so that cursors over ids follow creation order.

use std::fmt;

use serde::{Deserialize, Serialize};

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            /// A fresh, time-ordered id.
            pub fn generate() -> Self {
                Self(format!("{}_{}", $prefix, uuid::Uuid::now_v7().simple()))
            }

            /// `Some` for an id as [`Self::generate`] makes them (the prefix, `_`, and 32
            /// lowercase hex digits); `None` for any other text.
            pub fn parse(s: &str) -> Option<Self> {
                let hex = s.strip_prefix($prefix)?.strip_prefix('_')?;
                let well_formed = hex.len() == 32
                    && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
                well_formed.then(|| Self(s.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self(s.to_owned())
            }
        }
    };
}

id_type!(
    /// A creditor: the business that issued the invoices, Forfall's tenant.
    CreditorId,
    "cred"
);
id_type!(
    /// One creditor's link to one accounting platform account.
    ConnectionId,
    "conn"
);
id_type!(CustomerId, "cust");
id_type!(InvoiceId, "inv");
id_type!(CaseId, "case");
id_type!(JobId, "job");
id_type!(
    /// A partner: a collection agency or integrator serving several creditors through the API.
    PartnerId,
    "ptr"
);
id_type!(
    /// An API key (the id, not the secret token).
    ApiKeyId,
    "key"
);
id_type!(
    /// A partner's (or creditor's) webhook endpoint.
    EndpointId,
    "we"
);
id_type!(
    /// An event sent to webhook endpoints.
    EventId,
    "evt"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_parses_only_as_generate_makes_it() {
        let id = CreditorId::generate();
        assert_eq!(CreditorId::parse(id.as_str()), Some(id.clone()));
        assert_eq!(InvoiceId::parse(id.as_str()), None, "another kind's prefix");
        assert!(EventId::parse("evt_0193a5c1e2f07b4d8c61f0a2b3c4d5e6").is_some());
        assert!(EventId::parse("evt_ffffffffffffffffffffffffffffffff").is_some());
        for bad in [
            "",
            "garbage",
            "cred",
            "cred_",
            "credx0193a5c1e2f07b4d8c61f0a2b3c4d5e6",
            "cred_0193a5c1e2f07b4d8c61f0a2b3c4d5e",
            "cred_0193a5c1e2f07b4d8c61f0a2b3c4d5e6f",
            "cred_0193A5C1E2F07B4D8C61F0A2B3C4D5E6",
            "cred_0193a5c1-e2f0-7b4d-8c61-f0a2b3c4",
        ] {
            assert_eq!(CreditorId::parse(bad), None, "{bad}");
        }
    }
}
