//! Pull mode for the collection agency: the case messages not yet acknowledged, oldest first
//! (the same `case.v1` documents push mode POSTs), and their acknowledgement. A message stays in
//! the list until it is acknowledged; acknowledging twice is harmless. Partner keys only.

use axum::Extension;
use axum::extract::{Path, State};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Page, page_limit, seq_cursor};
use crate::api::AppState;
use crate::api::auth::Caller;
use crate::api::json::{NoFields, OptionalBody, Query};
use crate::api::problem::Problem;
use crate::domain::PipelineMessage;

fn message_json(message: &PipelineMessage) -> Value {
    json!({
        "id": message.id,
        "seq": message.seq,
        "type": message.kind,
        "creditor_id": message.creditor_id,
        "case_id": message.case_id,
        "created_at": message.created_at,
        "body": message.body,
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// The `next_cursor` of the previous page (a message's `seq`).
    #[serde(default)]
    cursor: Option<i64>,
    #[serde(default)]
    limit: Option<u32>,
}

pub async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(query): Query<ListQuery>,
) -> Result<axum::Json<Page>, Problem> {
    // The queue is the agency's: a creditor's key neither reads it (the debtors' personal data)
    // nor acknowledges a message, which would keep a case from the agency.
    caller.partner_only(
        "Only a partner reads the pipeline",
        "pull mode is for the agency's partner key, not a creditor's",
    )?;
    let limit = page_limit(query.limit)?;
    let messages = state
        .store
        .unacknowledged_messages_of(
            &caller.owner,
            seq_cursor("cursor", query.cursor)?,
            limit + 1,
        )
        .await?;
    Ok(axum::Json(Page::of(
        messages,
        limit,
        |m| m.seq.to_string(),
        message_json,
    )))
}

pub async fn ack(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(message): Path<String>,
    OptionalBody(NoFields {}): OptionalBody<NoFields>,
) -> Result<axum::Json<Value>, Problem> {
    // The queue is the agency's: a creditor's key neither reads it (the debtors' personal data)
    // nor acknowledges a message, which would keep a case from the agency.
    caller.partner_only(
        "Only a partner reads the pipeline",
        "pull mode is for the agency's partner key, not a creditor's",
    )?;
    let not_found = || Problem::not_found().with_detail("no message by that id for this key");
    if state
        .store
        .message_creditor(&caller.owner, &message)
        .await?
        .is_none()
    {
        return Err(not_found());
    }
    let first = state
        .store
        .acknowledge_message(&message, state.clock.now())
        .await?
        .ok_or_else(not_found)?;
    Ok(axum::Json(json!({
        "id": message,
        "acknowledged": true,
        "first_acknowledgement": first,
    })))
}
