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
