//! Credentials at rest: sealed with ChaCha20-Poly1305 under a 256-bit key that comes from the
//! environment (`FORFALL_ENCRYPTION_KEY`, base64). Each sealing binds the record it belongs to
//! (associated data), so a sealed value copied onto another connection does not open.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use rand::RngCore;

const NONCE_LEN: usize = 12;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretError {
    #[error("the encryption key must be 32 bytes encoded as base64 (got {0})")]
    BadKey(String),
    #[error("sealed credentials do not open with this key (wrong key, or not this record's)")]
    DoesNotOpen,
}

/// The key that seals connection credentials. Its `Debug` never shows it.
#[derive(Clone)]
pub struct EncryptionKey(Key);

impl std::fmt::Debug for EncryptionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EncryptionKey(***)")
    }
}

impl EncryptionKey {
    pub fn from_base64(text: &str) -> Result<EncryptionKey, SecretError> {
        let bytes = STANDARD
            .decode(text.trim())
            .map_err(|_| SecretError::BadKey("text that is not base64".into()))?;
        if bytes.len() != 32 {
            return Err(SecretError::BadKey(format!("{} bytes", bytes.len())));
        }
        Ok(EncryptionKey(*Key::from_slice(&bytes)))
    }

    /// A fresh random key, as base64.
    pub fn generate_base64() -> String {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        STANDARD.encode(bytes)
    }

    /// `nonce || ciphertext`, bound to `record` (for example the connection id).
    pub fn seal(&self, plaintext: &[u8], record: &str) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let cipher = ChaCha20Poly1305::new(&self.0);
        let payload = Payload {
            msg: plaintext,
            aad: record.as_bytes(),
        };
        // Encryption with a valid key and a 12-byte nonce cannot fail for inputs below 256 GiB.
        let sealed = cipher
            .encrypt(Nonce::from_slice(&nonce), payload)
            .unwrap_or_default();
        [nonce.as_slice(), sealed.as_slice()].concat()
    }

    pub fn open(&self, sealed: &[u8], record: &str) -> Result<Vec<u8>, SecretError> {
        if sealed.len() < NONCE_LEN {
            return Err(SecretError::DoesNotOpen);
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let payload = Payload {
            msg: ciphertext,
            aad: record.as_bytes(),
        };
        ChaCha20Poly1305::new(&self.0)
            .decrypt(Nonce::from_slice(nonce), payload)
            .map_err(|_| SecretError::DoesNotOpen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> EncryptionKey {
        EncryptionKey::from_base64(&EncryptionKey::generate_base64()).unwrap()
    }

    #[test]
    fn sealed_credentials_open_only_for_their_record_and_key() {
        let key = key();
        let sealed = key.seal(b"employeeToken=abc", "conn_1");
        assert!(!sealed.windows(3).any(|w| w == b"abc"));
        assert_eq!(key.open(&sealed, "conn_1").unwrap(), b"employeeToken=abc");
        assert_eq!(key.open(&sealed, "conn_2"), Err(SecretError::DoesNotOpen));
        assert_eq!(
            self::key().open(&sealed, "conn_1"),
            Err(SecretError::DoesNotOpen)
        );
        assert_eq!(
            key.open(&sealed[..5], "conn_1"),
            Err(SecretError::DoesNotOpen)
        );
    }

    #[test]
    fn a_key_that_is_not_32_bytes_of_base64_is_refused_without_echoing_it() {
        let err = EncryptionKey::from_base64("c2hvcnQ=").unwrap_err();
        assert_eq!(err, SecretError::BadKey("5 bytes".into()));
        assert!(EncryptionKey::from_base64("not base64!").is_err());
        assert_eq!(format!("{:?}", key()), "EncryptionKey(***)");
    }
}
