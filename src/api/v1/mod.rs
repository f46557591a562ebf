//! The partner and creditor API under `/v1`: every route needs an API key (see
//! [`crate::api::auth`]); a route with a creditor in its path answers 404 for a creditor the key
//! does not reach. Lists are pages of `data` with a `next_cursor`.

pub mod connections;
pub mod creditors;
pub mod dead_letters;
pub mod invoices;
pub mod pipeline;
pub mod preview;
pub mod webhooks;

use axum::routing::{MethodRouter, get, post};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::AppState;
use super::problem::Problem;

/// Items per page unless `limit` says otherwise, and the most it may say.
pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 500;

pub fn page_limit(limit: Option<u32>) -> Result<u32, Problem> {
    match limit {
        None => Ok(DEFAULT_LIMIT),
        Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        Some(_) => Err(Problem::field(
            "/query/limit",
            format!("must be between 1 and {MAX_LIMIT}"),
        )),
    }
}

/// A list's `cursor`: the id of the previous page's last item, as `next_cursor` gave it. Text the
/// server did not issue as a cursor is 422 (`/query/cursor`); a well-formed id past the end is
/// a valid cursor, of an empty page.
pub fn page_cursor<I>(
    cursor: Option<String>,
    parse: impl Fn(&str) -> Option<I>,
) -> Result<Option<I>, Problem> {
    match cursor {
        None => Ok(None),
        Some(text) => parse(&text).map(Some).ok_or_else(|| {
            Problem::field(
                "/query/cursor",
                "is not a cursor of this list: pass the previous page's `next_cursor`",
            )
        }),
    }
}

/// A numeric cursor (a `seq`): 0 or more, else 422 naming the parameter.
pub fn seq_cursor(name: &str, value: Option<i64>) -> Result<i64, Problem> {
    match value {
        None => Ok(0),
        Some(n) if n >= 0 => Ok(n),
        Some(_) => Err(Problem::field(
            format!("/query/{name}"),
            "must be 0 or more",
        )),
    }
}

/// The query of a plain list: where the previous page ended, and how many to show.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    /// The previous page's `next_cursor`.
    #[serde(default)]
    pub cursor: Option<String>,
    #[serde(default)]
    pub limit: Option<u32>,
}

/// One page of a list.
#[derive(Debug, Serialize)]
pub struct Page {
    pub data: Vec<Value>,
    /// Pass as `cursor` for the next page; `null` on the last.
    pub next_cursor: Option<String>,
}

impl Page {
    /// `items` was fetched with `limit + 1`: the extra one says there is a next page.
    pub fn of<T>(
        mut items: Vec<T>,
        limit: u32,
        cursor: impl Fn(&T) -> String,
        render: impl Fn(&T) -> Value,
    ) -> Page {
        let more = items.len() > limit as usize;
        items.truncate(limit as usize);
        Page {
            next_cursor: if more {
                items.last().map(&cursor)
            } else {
                None
            },
            data: items.iter().map(render).collect(),
        }
    }
}

pub fn routes() -> Vec<(&'static str, MethodRouter<AppState>)> {
    vec![
        (
            "/v1/creditors",
            post(creditors::create).get(creditors::list),
        ),
        (
            "/v1/creditors/{creditor}",
            get(creditors::get).patch(creditors::update),
        ),
        (
            "/v1/creditors/{creditor}/connections",
            post(connections::create).get(connections::list),
        ),
        (
            "/v1/creditors/{creditor}/connections/{connection}",
            get(connections::get).delete(connections::delete),
        ),
        (
            "/v1/creditors/{creditor}/connections/{connection}/sync",
            post(connections::sync),
        ),
        ("/v1/creditors/{creditor}/preview", post(preview::preview)),
        ("/v1/creditors/{creditor}/invoices", get(invoices::list)),
        (
            "/v1/creditors/{creditor}/invoices/{invoice}",
            get(invoices::get),
        ),
        (
            "/v1/creditors/{creditor}/invoices/{invoice}/opt-out",
            post(invoices::opt_out),
        ),
        (
            "/v1/creditors/{creditor}/invoices/{invoice}/opt-in",
            post(invoices::opt_in),
        ),
        (
            "/v1/creditors/{creditor}/invoices/{invoice}/stop",
            post(invoices::stop),
        ),
        (
            "/v1/creditors/{creditor}/invoices/{invoice}/dispute",
            post(invoices::dispute),
        ),
        (
            "/v1/creditors/{creditor}/invoices/{invoice}/dispute/resolve",
            post(invoices::resolve_dispute),
        ),
        (
            "/v1/creditors/{creditor}/invoices/{invoice}/direct-payment",
            post(invoices::direct_payment),
        ),
        (
            "/v1/creditors/{creditor}/customers/{customer}/opt-out",
            post(invoices::customer_opt_out),
        ),
        (
            "/v1/creditors/{creditor}/customers/{customer}/opt-in",
            post(invoices::customer_opt_in),
        ),
        ("/v1/creditors/{creditor}/audit", get(invoices::audit)),
        ("/v1/pipeline/messages", get(pipeline::list)),
        ("/v1/pipeline/messages/{message}/ack", post(pipeline::ack)),
        ("/v1/dead-letters", get(dead_letters::list)),
        ("/v1/dead-letters/{job}/retry", post(dead_letters::retry)),
        (
            "/v1/webhook-endpoints",
            post(webhooks::create).get(webhooks::list),
        ),
        (
            "/v1/webhook-endpoints/{endpoint}",
            get(webhooks::get).delete(webhooks::delete),
        ),
        ("/v1/events", get(webhooks::events)),
        ("/v1/events/{event}/replay", post(webhooks::replay)),
    ]
}
