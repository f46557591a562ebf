//! Standard Webhooks signatures (https://www.standardwebhooks.com/): signing and verification.
