//! Forfall's Tripletex connector (API v2).

#[cfg(feature = "fake")]
pub mod fake;
