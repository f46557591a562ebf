//! Who may use the API: partners, the creditors they serve, and API keys with scopes.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::ids::{ApiKeyId, CreditorId, PartnerId};

/// A collection agency or integrator that serves several creditors through the API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Partner {
    pub id: PartnerId,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

/// Whose an API key (or a webhook endpoint) is: a partner's (reaching the creditors it created)
/// or one creditor's (reaching only itself).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Owner {
    Partner(PartnerId),
    Creditor(CreditorId),
}

impl Owner {
    pub fn partner(&self) -> Option<&PartnerId> {
        match self {
            Owner::Partner(id) => Some(id),
            Owner::Creditor(_) => None,
        }
    }

    pub fn creditor(&self) -> Option<&CreditorId> {
        match self {
            Owner::Partner(_) => None,
            Owner::Creditor(id) => Some(id),
        }
    }
}

impl std::fmt::Display for Owner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Owner::Partner(id) => write!(f, "partner {id}"),
            Owner::Creditor(id) => write!(f, "creditor {id}"),
        }
    }
}

/// What a key may do: `read` (GET) and `write` (everything else).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Scopes {
    pub read: bool,
    pub write: bool,
}

impl Scopes {
    pub const ALL: Scopes = Scopes {
        read: true,
        write: true,
    };

    /// `read`, `write` or `read,write` (in any order; spaces allowed).
    pub fn parse(text: &str) -> Result<Scopes, String> {
        let mut scopes = Scopes::default();
        for scope in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            match scope {
                "read" => scopes.read = true,
                "write" => scopes.write = true,
                other => return Err(format!("unknown scope `{other}` (read, write)")),
            }
        }
        if !scopes.read && !scopes.write {
            return Err("at least one scope is needed (read, write)".into());
        }
        Ok(scopes)
    }

    pub fn as_text(self) -> &'static str {
        match (self.read, self.write) {
            (true, true) => "read,write",
            (true, false) => "read",
            (false, true) => "write",
            (false, false) => "",
        }
    }
}

/// An API key as stored: never the token, only its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub id: ApiKeyId,
    pub owner: Owner,
    pub scopes: Scopes,
    pub label: Option<String>,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_in_any_order_and_reject_unknown_ones() {
        assert_eq!(Scopes::parse("write, read"), Ok(Scopes::ALL));
        assert_eq!(Scopes::parse("read").map(Scopes::as_text), Ok("read"));
        assert!(Scopes::parse("admin").is_err());
        assert!(Scopes::parse("").is_err());
    }
}
