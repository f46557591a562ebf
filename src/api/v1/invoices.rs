//! A creditor's invoices: the filtered list, one invoice with its timeline (events, decisions
//! with the rule behind each, and what happens next), the creditor's actions on an invoice or a
//! customer, and the decision log as JSON lines (the audit).

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Page, page_cursor, page_limit, seq_cursor};
use crate::actions::{self, ActionError};
use crate::api::AppState;
use crate::api::auth::Caller;
use crate::api::json::{Body, NoFields, OptionalBody, Query, non_null};
use crate::api::problem::Problem;
use crate::domain::{Creditor, CustomerId, Decision, Invoice, InvoiceEvent, InvoiceId, Stage};
use crate::lifecycle::{self, DisputeOutcome, Event, InvoiceState};
use crate::rules::money::format_amount;
use crate::rules::policy::Policy;
use crate::store::InvoiceFilter;

/// An invoice as the API shows it (amounts as exact decimal text).
pub fn invoice_json(invoice: &Invoice) -> Value {
    let facts = &invoice.facts;
    json!({
        "id": invoice.id,
        "connection_id": invoice.connection_id,
        "customer_id": invoice.customer_id,
        "platform_id": facts.platform_id,
        "number": facts.number,
        "issued": facts.issued,
        "due": facts.due,
        "currency": facts.currency.code(),
        "amount": format_amount(facts.amount),
        "outstanding": format_amount(facts.outstanding),
        "payment_reference": facts.payment_reference,
        "opt_out": invoice.opt_out,
        // The customer's own opt-out, as the invoice's lifecycle last saw it.
        "customer_opt_out": invoice
            .lifecycle
            .pointer("/facts/customer_opt_out")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        "dispute": invoice.dispute.as_ref().map(|d| json!({
            "opened_on": d.opened_on,
            "amount": d.amount.map(format_amount),
        })),
        "stage": invoice.stage.as_str(),
        "next_action_on": invoice.next_action_on,
    })
}

fn event_json(event: &InvoiceEvent) -> Value {
    json!({
        "at": event.at,
        "source": event.source.as_str(),
        "kind": event.kind,
        "change": event.change,
    })
}

pub fn decision_json(decision: &Decision) -> Value {
    json!({
        "seq": decision.seq,
        "invoice_id": decision.invoice_id,
        "on": decision.on,
        "at": decision.at,
        "rule": decision.rule,
        "inputs": decision.inputs,
        "outcome": decision.outcome,
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    customer: Option<String>,
    #[serde(default)]
    due_before: Option<NaiveDate>,
    #[serde(default)]
    due_after: Option<NaiveDate>,
    #[serde(default)]
    opted_out: Option<bool>,
    #[serde(default)]
    disputed: Option<bool>,
    #[serde(default)]
    cursor: Option<String>,
    #[serde(default)]
    limit: Option<u32>,
}

pub async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(creditor): Path<String>,
    Query(query): Query<ListQuery>,
) -> Result<axum::Json<Page>, Problem> {
    let creditor = caller.creditor(&state, &creditor).await?;
    let limit = page_limit(query.limit)?;
    let stage = match query.state.as_deref() {
        None => None,
        Some(name) => Some(Stage::parse(name).ok_or_else(|| {
            let names: Vec<&str> = Stage::ALL.iter().map(|s| s.as_str()).collect();
            Problem::field(
                "/query/state",
                format!("`{name}` is not one of {}", names.join(", ")),
            )
        })?),
    };
    let filter = InvoiceFilter {
        stage,
        customer: query.customer.map(CustomerId),
        due_before: query.due_before,
        due_after: query.due_after,
        opted_out: query.opted_out,
        disputed: query.disputed,
        after: page_cursor(query.cursor, InvoiceId::parse)?,
    };
    let invoices = state
        .store
        .list_invoices(&creditor.id, &filter, limit + 1)
        .await?;
    Ok(axum::Json(Page::of(
        invoices,
        limit,
        |i| i.id.to_string(),
        invoice_json,
    )))
}

/// The invoice with its timeline.
pub async fn get(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((creditor, invoice)): Path<(String, String)>,
) -> Result<axum::Json<Value>, Problem> {
    let creditor = caller.creditor(&state, &creditor).await?;
    let invoice = find_invoice(&state, &creditor, &invoice).await?;
    Ok(axum::Json(timeline(&state, &creditor, &invoice).await?))
}

async fn find_invoice(state: &AppState, creditor: &Creditor, id: &str) -> Result<Invoice, Problem> {
    state
        .store
        .invoice(&creditor.id, &InvoiceId::from(id))
        .await?
        .ok_or_else(|| Problem::not_found().with_detail("no invoice by that id for this creditor"))
}

async fn timeline(
    state: &AppState,
    creditor: &Creditor,
    invoice: &Invoice,
) -> Result<Value, Problem> {
    let events = state
        .store
        .invoice_events(&creditor.id, &invoice.id)
        .await?;
    let decisions = state.store.decisions(&creditor.id, &invoice.id).await?;
    let mut body = invoice_json(invoice);
    if let Value::Object(map) = &mut body {
        map.insert(
            "events".into(),
            events.iter().map(event_json).collect::<Vec<_>>().into(),
        );
        map.insert(
            "decisions".into(),
            decisions
                .iter()
                .map(decision_json)
                .collect::<Vec<_>>()
                .into(),
        );
        map.insert(
            "next".into(),
            next_step(creditor, invoice, state.clock.today(creditor.time_zone)),
        );
    }
    Ok(body)
}

/// What the engine will do next, and when, if nothing changes: the engine itself run forward to
/// the invoice's next action day.
pub fn next_step(creditor: &Creditor, invoice: &Invoice, today: NaiveDate) -> Value {
    let (Ok(policy), Ok(mut lifecycle)) = (
        Policy::from_json(&creditor.policy),
        serde_json::from_value::<InvoiceState>(invoice.lifecycle.clone()),
    ) else {
        return Value::Null;
    };
    let Some(day) = lifecycle::next_action_on(&policy, &lifecycle) else {
        return Value::Null;
    };
    let day = day.max(today);
    let Some(decision) = lifecycle::evaluate(&policy, &mut lifecycle, day)
        .into_iter()
        .next()
    else {
        return json!({ "on": day, "action": null, "summary": format!("checked again on {day}") });
    };
    let action = decision.action.to_json();
    let name = action
        .get("action")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    json!({
        "on": day,
        "action": action,
        "rule": decision.explain.rule,
        "summary": summary(&name, day),
    })
}

fn summary(action: &str, day: NaiveDate) -> String {
    const UNLESS: &str = "unless it is paid, opted out or disputed before then";
    match action {
        "notice_sent" => format!("a transfer warning goes to the creditor on {day} {UNLESS}"),
        "listed" => format!("goes on the weekly transfer list on {day} {UNLESS}"),
        "transferred" => format!("transfers to collection on {day} {UNLESS}"),
        "skipped" => format!("is checked on {day} and will not be transferred as it stands"),
        other => format!("{} on {day}", other.replace('_', " ")),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DisputeBody {
    /// The disputed part as decimal text; absent: the whole invoice.
    #[serde(default, deserialize_with = "non_null")]
    amount: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResolveBody {
    outcome: DisputeOutcome,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DirectPaymentChoice {
    Withdraw,
    KeepOpen,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectPaymentBody {
    choice: DirectPaymentChoice,
}

/// `POST …/invoices/{invoice}/opt-out`.
pub async fn opt_out(
    state: State<AppState>,
    caller: Extension<Caller>,
    path: Path<(String, String)>,
    OptionalBody(NoFields {}): OptionalBody<NoFields>,
) -> Result<Response, Problem> {
    act(state, caller, path, Event::OptOut).await
}

pub async fn opt_in(
    state: State<AppState>,
    caller: Extension<Caller>,
    path: Path<(String, String)>,
    OptionalBody(NoFields {}): OptionalBody<NoFields>,
) -> Result<Response, Problem> {
    act(state, caller, path, Event::OptIn).await
}

/// Stop collection: before transfer it cancels; after, it withdraws the case (`charged` says
/// whether the withdrawal costs the creditor).
pub async fn stop(
    state: State<AppState>,
    caller: Extension<Caller>,
    path: Path<(String, String)>,
    OptionalBody(NoFields {}): OptionalBody<NoFields>,
) -> Result<Response, Problem> {
    act(state, caller, path, Event::Stop).await
}

pub async fn dispute(
    state: State<AppState>,
    caller: Extension<Caller>,
    path: Path<(String, String)>,
    // No body at all is a dispute of the whole invoice.
    OptionalBody(body): OptionalBody<DisputeBody>,
) -> Result<Response, Problem> {
    let amount = match body.amount.as_deref() {
        None => None,
        Some(text) => Some(parse_amount(text).map_err(|e| Problem::field("/amount", e))?),
    };
    act(state, caller, path, Event::Dispute { amount }).await
}

pub async fn resolve_dispute(
    state: State<AppState>,
    caller: Extension<Caller>,
    path: Path<(String, String)>,
    Body(body): Body<ResolveBody>,
) -> Result<Response, Problem> {
    act(
        state,
        caller,
        path,
        Event::DisputeResolved {
            outcome: body.outcome,
        },
    )
    .await
}

/// After the debtor paid the creditor directly, with a case kept open for its fees: withdraw it
/// now (a stop), or keep it open (nothing changes). Anything else is 409.
pub async fn direct_payment(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((creditor, invoice)): Path<(String, String)>,
    Body(body): Body<DirectPaymentBody>,
) -> Result<Response, Problem> {
    let creditor_row = caller.creditor(&state, &creditor).await?;
    let found = find_invoice(&state, &creditor_row, &invoice).await?;
    if found.stage != Stage::PrincipalPaid {
        return Err(Problem::conflict(format!(
            "invoice {invoice} has no case kept open after a direct payment (it is {})",
            found.stage.as_str()
        )));
    }
    match body.choice {
        DirectPaymentChoice::Withdraw => {
            act(
                State(state),
                Extension(caller),
                Path((creditor, invoice)),
                Event::Stop,
            )
            .await
        }
        DirectPaymentChoice::KeepOpen => {
            let body = json!({
                "invoice": timeline(&state, &creditor_row, &found).await?,
                "decisions": [],
            });
            Ok(axum::Json(body).into_response())
        }
    }
}

/// A decimal amount: positive, at most two decimals.
fn parse_amount(text: &str) -> Result<Decimal, String> {
    let amount: Decimal = text
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a decimal amount such as 1250.00"))?;
    if amount <= Decimal::ZERO {
        return Err("must be more than zero".into());
    }
    if amount.scale() > 2 && amount.normalize().scale() > 2 {
        return Err("has more than two decimals".into());
    }
    Ok(amount)
}

/// Applies a creditor's event to one invoice; answers the decisions it caused and the invoice.
async fn act(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((creditor, invoice)): Path<(String, String)>,
    event: Event,
) -> Result<Response, Problem> {
    let creditor = caller.creditor(&state, &creditor).await?;
    let id = InvoiceId::from(invoice.as_str());
    let decisions = actions::apply(
        state.store.as_ref(),
        state.clock.as_ref(),
        &creditor.id,
        &id,
        &event,
    )
    .await
    .map_err(action_problem)?;
    state.jobs_wake.notify_one();
    let invoice = find_invoice(&state, &creditor, &invoice).await?;
    let body = json!({
        "invoice": timeline(&state, &creditor, &invoice).await?,
        "decisions": decisions.iter().map(|d| Value::Object(d.to_json(true))).collect::<Vec<_>>(),
    });
    Ok(axum::Json(body).into_response())
}

fn action_problem(e: ActionError) -> Problem {
    match e {
        ActionError::UnknownCreditor(_) => {
            Problem::not_found().with_detail("no creditor by that id for this key")
        }
        ActionError::UnknownInvoice(_) => {
            Problem::not_found().with_detail("no invoice by that id for this creditor")
        }
        ActionError::Unusable(why) => {
            Problem::conflict(format!("the invoice cannot be evaluated as stored: {why}"))
        }
        ActionError::Store(e) => Problem::from(e),
    }
}

/// `POST …/customers/{customer}/opt-out` and `/opt-in`: the customer's flag, then each of its
/// invoices through the engine. Should the gateway stop half-way, the next sync of the invoices
/// finishes the job (ingest compares every invoice with its customer's flag).
async fn act_on_customer(
    state: AppState,
    caller: Caller,
    creditor: String,
    customer: String,
    opt_out: bool,
) -> Result<Response, Problem> {
    let creditor = caller.creditor(&state, &creditor).await?;
    let customer_id = CustomerId::from(customer.as_str());
    if state
        .store
        .customer(&creditor.id, &customer_id)
        .await?
        .is_none()
    {
        return Err(Problem::not_found().with_detail("no customer by that id for this creditor"));
    }
    // The rest runs in a task of its own: a client that hangs up does not cut it off half-way.
    let work = tokio::spawn(apply_to_customer(
        state.clone(),
        creditor.id.clone(),
        customer_id.clone(),
        opt_out,
    ));
    let (changed, skipped) = work.await.map_err(|e| Problem::internal(&e))??;
    state.jobs_wake.notify_one();
    Ok(axum::Json(json!({
        "customer_id": customer_id,
        "opt_out": opt_out,
        "decisions": changed,
        "skipped": skipped,
    }))
    .into_response())
}

/// Sets the customer's flag, then applies the event to each of its invoices. An invoice that
/// cannot take it now (its lifecycle unreadable, or changing under a sync) is skipped and named:
/// the next sync of it compares it with the customer's flag and catches up.
async fn apply_to_customer(
    state: AppState,
    creditor: crate::domain::CreditorId,
    customer: CustomerId,
    opt_out: bool,
) -> Result<(Vec<Value>, Vec<Value>), Problem> {
    state
        .store
        .set_customer_opt_out(&creditor, &customer, opt_out)
        .await?;
    let event = if opt_out {
        Event::CustomerOptOut
    } else {
        Event::CustomerOptIn
    };
    let mut filter = InvoiceFilter {
        customer: Some(customer),
        ..InvoiceFilter::default()
    };
    let mut changed = Vec::new();
    let mut skipped = Vec::new();
    loop {
        let page = state
            .store
            .list_invoices(&creditor, &filter, super::MAX_LIMIT)
            .await?;
        let Some(last) = page.last() else { break };
        filter.after = Some(last.id.clone());
        for invoice in &page {
            match actions::apply(
                state.store.as_ref(),
                state.clock.as_ref(),
                &creditor,
                &invoice.id,
                &event,
            )
            .await
            {
                Ok(decisions) => changed.extend(
                    decisions
                        .iter()
                        .map(|d| Value::Object(d.to_json(true)))
                        .collect::<Vec<_>>(),
                ),
                Err(
                    e @ (ActionError::Unusable(_)
                    | ActionError::Store(crate::store::StoreError::Conflict { .. })),
                ) => skipped.push(json!({ "invoice_id": invoice.id, "reason": e.to_string() })),
                Err(e) => return Err(action_problem(e)),
            }
        }
    }
    Ok((changed, skipped))
}

pub async fn customer_opt_out(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((creditor, customer)): Path<(String, String)>,
    OptionalBody(NoFields {}): OptionalBody<NoFields>,
) -> Result<Response, Problem> {
    act_on_customer(state, caller, creditor, customer, true).await
}

pub async fn customer_opt_in(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((creditor, customer)): Path<(String, String)>,
    OptionalBody(NoFields {}): OptionalBody<NoFields>,
) -> Result<Response, Problem> {
    act_on_customer(state, caller, creditor, customer, false).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Only decisions after this sequence number.
    #[serde(default)]
    after: Option<i64>,
    #[serde(default)]
    limit: Option<u32>,
}

/// The creditor's decision log as JSON lines (`application/x-ndjson`), oldest first; the last
/// line's `seq` is the `after` of the next page.
pub async fn audit(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(creditor): Path<String>,
    Query(query): Query<AuditQuery>,
) -> Result<Response, Problem> {
    let creditor = caller.creditor(&state, &creditor).await?;
    let limit = match query.limit {
        None => 10_000,
        Some(n) if (1..=100_000).contains(&n) => n,
        Some(_) => return Err(Problem::field("/query/limit", "must be 1 to 100000")),
    };
    let decisions = state
        .store
        .creditor_decisions(&creditor.id, seq_cursor("after", query.after)?, limit)
        .await?;
    let mut body = String::new();
    for decision in &decisions {
        body.push_str(&decision_json(decision).to_string());
        body.push('\n');
    }
    let mut response = (StatusCode::OK, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_amount_is_positive_with_at_most_two_decimals() {
        assert_eq!(parse_amount("100.50"), Ok(Decimal::new(10050, 2)));
        assert_eq!(parse_amount("100.500"), Ok(Decimal::new(100500, 3)));
        assert!(parse_amount("0").is_err());
        assert!(parse_amount("-5").is_err());
        assert!(parse_amount("1.005").is_err());
        assert!(parse_amount("abc").is_err());
    }
}
