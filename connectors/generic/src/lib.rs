//! The generic connector.
