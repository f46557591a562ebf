//! One gateway instance's workers, assembled: the job runner with a handler per kind of work the
//! configuration allows, and the day tick. Events for partners' webhooks are always written;
//! they are delivered where the encryption key (which seals the endpoints' secrets) is known. What is not configured (no agency, no SMTP server)
//! has no handler: its jobs wait in the queue, visible with `forfall jobs list`, until it is.

use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveTime;

use crate::clock::Clock;
use crate::notify::Mailer;
use crate::notify::digests::Digests;
use crate::pipeline::forward::{Forward, Sink};
use crate::store::Store;
use crate::sync::Ingest;
use crate::sync::retry_pass::RetryPass;
use crate::sync::write_back::WriteBack;
use crate::webhooks::{Deliveries, Events};

use super::day_tick::DayTick;
use super::{Handler, Runner, RunnerSettings};

/// What the workers may reach.
pub struct WorkerSettings {
    /// The agency's sink; `None`: no agency, transfers wait.
    pub sink: Option<Sink>,
    pub agency_in_flight: usize,
    /// The SMTP server; `None`: e-mails wait.
    pub mailer: Option<Mailer>,
    /// Told to the creditor in a warning: how to opt out.
    pub opt_out_hint: Option<String>,
    pub runner: RunnerSettings,
    pub day_tick_at: NaiveTime,
    /// How often (real time) the scheduler looks for a due day.
    pub tick_every: Duration,
}

/// The assembled workers.
pub struct Workers {
    pub runner: Arc<Runner>,
    pub tick: Arc<DayTick>,
    pub tick_every: Duration,
}

pub fn workers(
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    ingest: Arc<Ingest>,
    owner: String,
    settings: WorkerSettings,
) -> Workers {
    let mut handlers: Vec<Arc<dyn Handler>> = vec![
        Arc::new(WriteBack {
            ingest: ingest.clone(),
        }),
        Arc::new(RetryPass {
            ingest: ingest.clone(),
            owner: owner.clone(),
        }),
        Arc::new(Events {
            store: store.clone(),
            clock: clock.clone(),
        }),
    ];
    if let Some(key) = ingest.connectors.key() {
        handlers.push(Arc::new(Deliveries::new(store.clone(), key.clone())));
    }
    if let Some(sink) = settings.sink {
        handlers.push(Arc::new(Forward::new(
            store.clone(),
            clock.clone(),
            sink,
            settings.agency_in_flight,
        )));
    }
    if let Some(mailer) = settings.mailer {
        handlers.push(Arc::new(Digests {
            store: store.clone(),
            clock: clock.clone(),
            mailer,
            opt_out_hint: settings.opt_out_hint,
        }));
    }
    let runner = Arc::new(Runner {
        store: store.clone(),
        clock: clock.clone(),
        owner: owner.clone(),
        handlers,
        settings: settings.runner,
        metrics: ingest.metrics.clone(),
        wake: Arc::new(tokio::sync::Notify::new()),
    });
    let tick = Arc::new(DayTick {
        store,
        clock,
        owner,
        at: settings.day_tick_at,
    });
    Workers {
        runner,
        tick,
        tick_every: settings.tick_every,
    }
}
