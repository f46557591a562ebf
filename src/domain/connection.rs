use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::ids::{ConnectionId, CreditorId};

/// Where a connection stands with its platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionStatus {
    /// Syncing normally.
    Active,
    /// The last sync failed; it will be retried. `last_error` says why.
    Failing,
    /// The platform refused the credentials; the creditor must reconnect.
    Unauthorized,
    /// Switched off by the creditor.
    Paused,
    /// Deleted through the API: never synced again and no webhook is accepted for it. The row
    /// stays (its invoices, customers and their history reference it), with its credentials
    /// erased.
    Deleted,
}

impl ConnectionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectionStatus::Active => "active",
            ConnectionStatus::Failing => "failing",
            ConnectionStatus::Unauthorized => "unauthorized",
            ConnectionStatus::Paused => "paused",
            ConnectionStatus::Deleted => "deleted",
        }
    }

    pub fn parse(s: &str) -> Option<ConnectionStatus> {
        [
            ConnectionStatus::Active,
            ConnectionStatus::Failing,
            ConnectionStatus::Unauthorized,
            ConnectionStatus::Paused,
            ConnectionStatus::Deleted,
        ]
        .into_iter()
        .find(|status| status.as_str() == s)
    }
}

/// Credentials sealed with the gateway's encryption key (see `secrets`). Never logged.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedCredentials(pub Vec<u8>);

impl std::fmt::Debug for SealedCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SealedCredentials({} bytes)", self.0.len())
    }
}

/// One creditor's link to one account on an accounting platform.
#[derive(Debug, Clone, PartialEq)]
pub struct Connection {
    pub id: ConnectionId,
    pub creditor_id: CreditorId,
    /// The connector's name: `tripletex`, `generic`, …
    pub platform: String,
    pub credentials: SealedCredentials,
    /// Where the next incremental sync starts; opaque to everyone but the connector.
    pub sync_cursor: Option<String>,
    pub status: ConnectionStatus,
    pub last_error: Option<String>,
    pub last_synced_at: Option<DateTime<Utc>>,
    pub sync: SyncState,
}

/// Where a connection's passes over its platform stand. A pass reads every page once, each page
/// committed with the cursor after it, so a pass cut short resumes where it stopped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncState {
    /// The number of the current (or last) pass.
    pub pass: i64,
    /// A pass was started and has not reached its last page.
    pub in_pass: bool,
    /// The current pass is a full one (the nightly resync).
    pub full: bool,
    pub last_full_sync_at: Option<DateTime<Utc>>,
}
