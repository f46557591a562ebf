//! Forfall: a gateway between accounting platforms and debt collection.
//!
//! `domain` is the canonical model; `store` keeps it (SQLite or PostgreSQL); `api` serves HTTP;
//! `server` runs it; `config`, `clock` and `secrets` are the plumbing every part shares.

pub mod actions;
pub mod api;
pub mod clock;
pub mod config;
#[cfg(feature = "fake")]
pub mod demo;
pub mod domain;
pub mod jobs;
pub mod json_path;
pub mod lifecycle;
pub mod notify;
pub mod pipeline;
pub mod rules;
pub mod scenario;
pub mod secrets;
pub mod server;
pub mod simulate;
pub mod store;
pub mod sync;
pub mod webhooks;
