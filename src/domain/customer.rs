use serde::{Deserialize, Serialize};

use super::ids::{ConnectionId, CustomerId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CustomerKind {
    #[default]
    Consumer,
    Business,
}

impl CustomerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CustomerKind::Consumer => "consumer",
            CustomerKind::Business => "business",
        }
    }

    pub fn parse(s: &str) -> Option<CustomerKind> {
        match s {
            "consumer" => Some(CustomerKind::Consumer),
            "business" => Some(CustomerKind::Business),
            _ => None,
        }
    }
}

impl std::fmt::Display for CustomerKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A national identity number (fødselsnummer, personnummer, henkilötunnus). Its `Debug` shows only
/// the last two characters, so it cannot leak into logs.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NationalId(pub String);

impl std::fmt::Debug for NationalId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let tail: String = {
            let chars: Vec<char> = self.0.chars().collect();
            chars[chars.len().saturating_sub(2)..].iter().collect()
        };
        write!(f, "NationalId(*********{tail})")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PostalAddress {
    pub lines: Vec<String>,
    pub postal_code: String,
    pub city: String,
    /// ISO 3166-1 alpha-2.
    pub country: String,
}

/// What an accounting platform tells about a customer (the debtor).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomerFacts {
    pub platform_id: String,
    pub kind: CustomerKind,
    pub name: String,
    pub organisation_number: Option<String>,
    pub national_id: Option<NationalId>,
    pub email: Option<String>,
    pub postal_address: Option<PostalAddress>,
    /// The platform itself sends automatic reminders or collection notices to this customer:
    /// collection through Forfall as well would dun the debtor twice.
    #[serde(default)]
    pub platform_dunning: bool,
}

/// A creditor's customer, as Forfall knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Customer {
    pub id: CustomerId,
    pub connection_id: ConnectionId,
    pub facts: CustomerFacts,
    /// The creditor excluded every invoice of this customer from collection.
    pub opt_out: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_national_id_never_shows_in_full_in_debug_output() {
        let id = NationalId("01017012345".into());
        let shown = format!("{id:?}");
        assert!(!shown.contains("0101701"), "{shown}");
        assert!(shown.ends_with("45)"));
    }
}
