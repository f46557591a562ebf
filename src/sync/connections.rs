//! Opening a connection's connector: its sealed credentials, the platform's connector, and a cache
//! so that one connection keeps one session and one rate limiter.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use forfall_connector::Connector;
use forfall_connector::client::HttpSettings;
use serde::{Deserialize, Serialize};

use chrono::{DateTime, Utc};

use crate::domain::{Connection, ConnectionId, CreditorId, SealedCredentials};
use crate::secrets::EncryptionKey;
use crate::store::{Store, StoreError};

use super::SyncError;

/// What a connection's sealed credentials hold.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectionSecrets {
    /// The connector's own settings and credentials (for Tripletex: `consumer_token`,
    /// `employee_token`, optional `base_url`, …; for the generic connector: `base_url`, `token`).
    pub settings: serde_json::Value,
    /// The secret the platform signs its webhooks with (Tripletex's `hmacSharedSecret`, the generic
    /// connector's `whsec_…`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_secret: Option<String>,
}

impl std::fmt::Debug for ConnectionSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ConnectionSecrets(***)")
    }
}

impl ConnectionSecrets {
    /// Sealed to the connection `id`: the ciphertext cannot be moved to another connection.
    pub fn seal(&self, key: &EncryptionKey, id: &ConnectionId) -> SealedCredentials {
        let plain = serde_json::to_vec(self).unwrap_or_default();
        SealedCredentials(key.seal(&plain, id.as_str()))
    }

    /// Creates a connection of `creditor` to `platform` holding these secrets, sealed to it.
    pub async fn create_connection(
        &self,
        store: &dyn Store,
        key: &EncryptionKey,
        creditor: &CreditorId,
        platform: &str,
        now: DateTime<Utc>,
    ) -> Result<Connection, StoreError> {
        let id = ConnectionId::generate();
        store
            .create_connection(creditor, &id, platform, &self.seal(key, &id), now)
            .await
    }

    pub fn open(
        key: &EncryptionKey,
        id: &ConnectionId,
        sealed: &SealedCredentials,
    ) -> Result<ConnectionSecrets, SyncError> {
        let plain = key
            .open(&sealed.0, id.as_str())
            .map_err(|e| SyncError::Secrets(e.to_string()))?;
        serde_json::from_slice(&plain).map_err(|e| SyncError::Secrets(e.to_string()))
    }
}

/// The platforms Forfall has connectors for.
pub const PLATFORMS: [&str; 2] = ["tripletex", "generic"];

/// The connector of `platform` for these settings.
pub fn connector_for(
    platform: &str,
    settings: &serde_json::Value,
    http: HttpSettings,
) -> Result<Arc<dyn Connector>, SyncError> {
    let connector: Arc<dyn Connector> = match platform {
        "tripletex" => Arc::new(forfall_tripletex::Tripletex::from_credentials(
            settings, http,
        )?),
        "generic" => Arc::new(forfall_generic::GenericConnector::from_credentials(
            settings, http,
        )?),
        other => {
            return Err(SyncError::Secrets(format!(
                "no connector for platform {other:?} (known: {})",
                PLATFORMS.join(", ")
            )));
        }
    };
    Ok(connector)
}

/// A connection's connector, opened.
pub struct Opened {
    pub connector: Arc<dyn Connector>,
    pub webhook_secret: Vec<u8>,
}

/// Opened connectors by connection, re-opened when the sealed credentials change.
pub struct Connectors {
    key: Option<EncryptionKey>,
    http: HttpSettings,
    cache: Mutex<HashMap<ConnectionId, (SealedCredentials, Arc<Opened>)>>,
}

impl Connectors {
    pub fn new(key: Option<EncryptionKey>, http: HttpSettings) -> Connectors {
        Connectors {
            key,
            http,
            cache: Mutex::new(HashMap::new()),
        }
    }

    pub fn key(&self) -> Option<&EncryptionKey> {
        self.key.as_ref()
    }

    /// Drops the opened connector of `id` (and the credentials it holds in memory).
    pub fn forget(&self, id: &ConnectionId) {
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }

    pub fn open(&self, connection: &Connection) -> Result<Arc<Opened>, SyncError> {
        {
            let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((sealed, opened)) = cache.get(&connection.id)
                && *sealed == connection.credentials
            {
                return Ok(opened.clone());
            }
        }
        let key = self.key.as_ref().ok_or(SyncError::NoKey)?;
        let secrets = ConnectionSecrets::open(key, &connection.id, &connection.credentials)?;
        let opened = Arc::new(Opened {
            connector: connector_for(&connection.platform, &secrets.settings, self.http.clone())?,
            webhook_secret: secrets.webhook_secret.unwrap_or_default().into_bytes(),
        });
        self.cache.lock().unwrap_or_else(|p| p.into_inner()).insert(
            connection.id.clone(),
            (connection.credentials.clone(), opened.clone()),
        );
        Ok(opened)
    }
}
