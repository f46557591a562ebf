//! The day tick: once per civil day in each creditor's time zone, from a configured local time
//! (06:00 by default), the lifecycle engine evaluates the creditor's invoices whose
//! `next_action_on` has come (and only those: an index finds them). Days missed while the
//! gateway was down are caught up at start-up, one by one and in order, so a warning is never
//! skipped: an invoice due for its notice on a missed day gets it on that day's evaluation, and
//! its transfer only on a later one.
//!
//! On PostgreSQL with several instances, one instance ticks a creditor at a time (a lease named
//! `tick:{creditor}`); and every verdict is saved only if the invoice is still at the version it
//! was read at, so a tick racing an ingest of the same invoice re-reads it instead of
//! overwriting it.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::{NaiveDate, NaiveTime};

use crate::clock::Clock;
use crate::domain::{Creditor, CreditorId, Invoice};
use crate::lifecycle::{InvoiceState, evaluate};
use crate::rules::dates::add_days;
use crate::rules::policy::Policy;
use crate::store::{Store, StoreError};
use crate::sync::reevaluate::lifecycle_update;

/// Invoices read per query.
const BATCH: u32 = 500;
/// How long one instance holds a creditor's tick.
const LEASE: Duration = Duration::from_secs(600);
/// Attempts at saving one verdict when ingest keeps changing the invoice under it.
const SAVE_ATTEMPTS: usize = 3;

#[derive(Debug, thiserror::Error)]
pub enum TickError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("creditor {creditor}: the policy is invalid: {problem}")]
    Policy {
        creditor: CreditorId,
        problem: String,
    },
}

/// What a tick did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TickReport {
    /// (creditor, day) pairs run, in order.
    pub days: Vec<(CreditorId, NaiveDate)>,
    pub evaluated: usize,
    pub decisions: usize,
}

/// The scheduler of one instance.
pub struct DayTick {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub owner: String,
    /// The creditor's local time from which a day's tick runs.
    pub at: NaiveTime,
}

impl DayTick {
    /// The last day whose tick is due for the creditor now: today once the local time has
    /// reached `at`, else yesterday.
    pub fn due_through(&self, creditor: &Creditor) -> NaiveDate {
        let local = self.clock.now().with_timezone(&creditor.time_zone);
        let today = local.date_naive();
        if local.time() >= self.at {
            today
        } else {
            today.pred_opt().unwrap_or(today)
        }
    }

    /// Runs every creditor's ticks that are due (catching up missed days in order).
    pub async fn run_due(&self) -> Result<TickReport, TickError> {
        let mut report = TickReport::default();
        for id in self.store.creditor_ids().await? {
            let Some(creditor) = self.store.creditor(&id).await? else {
                continue;
            };
            let through = self.due_through(&creditor);
            // A new creditor starts with the day it is first ticked: nothing before it was missed.
            let first = creditor
                .ticked_through
                .map_or(through, |day| add_days(day, 1));
            if first > through {
                continue;
            }
            let lease = format!("tick:{id}");
            if !self
                .store
                .acquire_lease(&lease, &self.owner, self.clock.now(), LEASE)
                .await?
            {
                continue; // another instance is ticking this creditor
            }
            let result = self.run_days(&creditor, first, through, &mut report).await;
            if let Err(e) = self.store.release_lease(&lease, &self.owner).await {
                tracing::warn!(creditor = %id, error = %e, "could not release the tick lease; it expires on its own");
            }
            if let Err(e) = result {
                // One creditor's broken policy does not stop the others' ticks.
                tracing::error!(creditor = %id, error = %e, "the day tick failed for this creditor");
            }
        }
        Ok(report)
    }

    async fn run_days(
        &self,
        creditor: &Creditor,
        first: NaiveDate,
        through: NaiveDate,
        report: &mut TickReport,
    ) -> Result<(), TickError> {
        let policy = Policy::from_json(&creditor.policy).map_err(|e| TickError::Policy {
            creditor: creditor.id.clone(),
            problem: e.to_string(),
        })?;
        let mut day = first;
        while day <= through {
            let (evaluated, decisions) = self.run_day(creditor, &policy, day).await?;
            self.store.set_ticked_through(&creditor.id, day).await?;
            report.days.push((creditor.id.clone(), day));
            report.evaluated += evaluated;
            report.decisions += decisions;
            if evaluated > 0 {
                tracing::info!(creditor = %creditor.id, %day, evaluated, decisions, "day tick");
            }
            day = add_days(day, 1);
        }
        Ok(())
    }

    /// Evaluates, for `day`, every invoice of the creditor whose next action has come.
    pub async fn run_day(
        &self,
        creditor: &Creditor,
        policy: &Policy,
        day: NaiveDate,
    ) -> Result<(usize, usize), TickError> {
        let mut done = HashSet::new();
        let (mut evaluated, mut decisions) = (0, 0);
        loop {
            let due = self.store.invoices_due(&creditor.id, day, BATCH).await?;
            let fresh: Vec<Invoice> = due
                .into_iter()
                .filter(|invoice| !done.contains(&invoice.id))
                .collect();
            if fresh.is_empty() {
                return Ok((evaluated, decisions));
            }
            for invoice in fresh {
                done.insert(invoice.id.clone());
                evaluated += 1;
                decisions += self.evaluate_one(creditor, policy, invoice, day).await?;
            }
        }
    }

    /// Evaluates one invoice and saves the verdict, re-reading it if ingest changed it meanwhile.
    async fn evaluate_one(
        &self,
        creditor: &Creditor,
        policy: &Policy,
        mut invoice: Invoice,
        day: NaiveDate,
    ) -> Result<usize, TickError> {
        for _ in 0..SAVE_ATTEMPTS {
            let Ok(mut state) = serde_json::from_value::<InvoiceState>(invoice.lifecycle.clone())
            else {
                tracing::warn!(invoice = %invoice.id, "an invoice without a readable lifecycle is left to the next ingest");
                return Ok(0);
            };
            let made = evaluate(policy, &mut state, day);
            let update = lifecycle_update(
                policy,
                &invoice.connection_id,
                &state,
                &made,
                Vec::new(),
                day,
                self.clock.now(),
            );
            if made.is_empty() && update.next_action_on == invoice.next_action_on {
                return Ok(0);
            }
            match self
                .store
                .save_lifecycle(
                    &creditor.id,
                    &invoice.id,
                    invoice.version,
                    &update,
                    self.clock.now(),
                )
                .await
            {
                Ok(()) => return Ok(made.len()),
                Err(StoreError::Conflict { .. }) => {
                    match self.store.invoice(&creditor.id, &invoice.id).await? {
                        Some(fresh) => invoice = fresh,
                        None => return Ok(0),
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        tracing::warn!(invoice = %invoice.id, "the invoice kept changing during the day tick; the next tick evaluates it");
        Ok(0)
    }
}

/// Runs the due ticks every `every` (real time) until `stop`.
pub async fn run_tick_loop(
    tick: Arc<DayTick>,
    every: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
    wake: Arc<tokio::sync::Notify>,
) {
    loop {
        if *stop.borrow() {
            return;
        }
        match tick.run_due().await {
            Ok(report) if report.decisions > 0 => wake.notify_waiters(),
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "the day tick failed"),
        }
        tokio::select! {
            _ = stop.changed() => {}
            () = tokio::time::sleep(every) => {}
        }
    }
}
