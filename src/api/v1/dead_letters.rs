//! Dead letters: jobs of the caller's creditors that failed for good, with their last error and
//! attempts, and putting one back in the queue.

use axum::Extension;
use axum::extract::{Path, State};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::AppState;
use crate::api::auth::Caller;
use crate::api::json::{NoFields, OptionalBody, Query};
use crate::api::problem::Problem;
use crate::domain::{EndpointId, Job, JobAttempt, JobId, JobState};

fn job_json(job: &Job, attempts: &[JobAttempt]) -> Value {
    json!({
        "id": job.id,
        "creditor_id": job.creditor_id,
        "kind": job.kind,
        "idempotency_key": job.idempotency_key,
        "state": job.state.as_str(),
        "attempts": job.attempts,
        "last_error": job.last_error,
        "created_at": job.created_at,
        "updated_at": job.updated_at,
        "history": attempts.iter().map(|a| json!({
            "attempt": a.attempt,
            "finished_at": a.finished_at,
            "outcome": a.outcome,
            "error": a.error,
        })).collect::<Vec<_>>(),
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    #[serde(default)]
    limit: Option<u32>,
}

pub async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(query): Query<ListQuery>,
) -> Result<axum::Json<Value>, Problem> {
    let limit = super::page_limit(query.limit)?;
    let jobs = state
        .store
        .jobs_of(&caller.owner, Some(JobState::Dead), limit + 1)
        .await?;
    let has_more = jobs.len() > limit as usize;
    let mut data = Vec::with_capacity(jobs.len());
    for job in jobs.iter().take(limit as usize) {
        if !visible(&state, &caller, job).await? {
            continue;
        }
        let attempts = state.store.job_attempts(&job.id).await?;
        data.push(job_json(job, &attempts));
    }
    Ok(axum::Json(json!({ "data": data, "has_more": has_more })))
}

/// A delivery to a webhook endpoint is its endpoint owner's alone: a creditor does not see (or
/// re-send) its partner's deliveries, nor a partner a creditor's own.
async fn visible(state: &AppState, caller: &Caller, job: &Job) -> Result<bool, Problem> {
    if job.kind != crate::webhooks::DELIVERY_JOB {
        return Ok(true);
    }
    let Some(endpoint) = job.payload.get("endpoint").and_then(Value::as_str) else {
        return Ok(false);
    };
    Ok(state
        .store
        .webhook_endpoint_of(&caller.owner, &EndpointId::from(endpoint))
        .await?
        .is_some())
}

/// Puts a dead letter back in the queue with a fresh count of attempts.
pub async fn retry(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(job): Path<String>,
    OptionalBody(NoFields {}): OptionalBody<NoFields>,
) -> Result<axum::Json<Value>, Problem> {
    let id = JobId::from(job.as_str());
    let not_found = || Problem::not_found().with_detail("no dead letter by that id for this key");
    let found = state.store.job(&id).await?.ok_or_else(not_found)?;
    // Another tenant's job is answered exactly like a missing one.
    state
        .store
        .creditor(&found.creditor_id)
        .await?
        .filter(|c| caller.reaches(c))
        .ok_or_else(not_found)?;
    if !visible(&state, &caller, &found).await? {
        return Err(not_found());
    }
    if found.state != JobState::Dead {
        return Err(Problem::conflict(format!(
            "job {job} is {}, not dead",
            found.state.as_str()
        )));
    }
    state.store.retry_job(&id, state.clock.now()).await?;
    state.jobs_wake.notify_one();
    let job = state.store.job(&id).await?.ok_or_else(not_found)?;
    let attempts = state.store.job_attempts(&id).await?;
    Ok(axum::Json(job_json(&job, &attempts)))
}
