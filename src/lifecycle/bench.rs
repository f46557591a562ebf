//! The day-tick benchmark behind `forfall bench engine`.
//!
//! It builds `total` invoice states of which `due` have `next_action_on == today`, keeps the
//! index a database would (`next_action_on` → invoices), and runs one day tick that reads only
//! the due invoices: load each (a clone, like reading its row), evaluate it, and collect the new
//! state and its new `next_action_on` (the rows a server would write). The cost of a tick should
//! depend on `due`, not on `total`: the ratio of 1 000 000 to 100 000 total is the figure to watch
//! (goal <= 1.3).
//!
//! This module reads the clock; the lifecycle functions it drives do not.

use std::collections::BTreeMap;
use std::fmt;
use std::mem::size_of;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use rust_decimal::Decimal;

use crate::lifecycle::{InvoiceFacts, InvoiceState, Stage, evaluate, next_action_on};
use crate::rules::dates::add_days;
use crate::rules::policy::Policy;

/// How many ticks are timed; the report gives the median.
const TIMED_TICKS: usize = 7;
/// How many alternating rounds [`bench_scaling`] times.
const SCALING_ROUNDS: usize = 21;

/// The result of [`bench_day_tick`].
#[derive(Debug, Clone, PartialEq)]
pub struct BenchReport {
    pub total: usize,
    pub due: usize,
    /// Invoices evaluated in one tick (the due ones).
    pub evaluated: usize,
    /// Decisions emitted in one tick.
    pub decisions: usize,
    /// Median wall time of one tick.
    pub wall: Duration,
    pub evaluated_per_second: f64,
    /// `size_of::<InvoiceState>()`.
    pub state_size: usize,
    /// Heap held by the states (ids) and the index, estimated from capacities.
    pub heap_estimate: usize,
}

impl fmt::Display for BenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "total {:>9} due {:>7}: tick {:>10.3} ms, {:>12.0} invoices/s, {} decisions, state {} B, heap ~{:.1} MiB",
            self.total,
            self.due,
            self.wall.as_secs_f64() * 1e3,
            self.evaluated_per_second,
            self.decisions,
            self.state_size,
            self.heap_estimate as f64 / (1024.0 * 1024.0),
        )
    }
}

/// Two sizes compared: the tick at `large` total over the tick at `small` total.
#[derive(Debug, Clone, PartialEq)]
pub struct ScalingReport {
    pub small: BenchReport,
    pub large: BenchReport,
    /// `large.wall / small.wall`; goal <= 1.3.
    pub ratio: f64,
}

impl fmt::Display for ScalingReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.small)?;
        writeln!(f, "{}", self.large)?;
        write!(
            f,
            "ratio {} vs {} total (same due): {:.2} (goal <= 1.3)",
            self.large.total, self.small.total, self.ratio
        )
    }
}

/// The `next_action_on` index a database keeps: day → invoice positions.
type DayIndex = BTreeMap<NaiveDate, Vec<u32>>;

fn bench_today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 21).unwrap_or(NaiveDate::MIN)
}

/// An invoice noticed five days ago that transfers `transfer_on`.
fn noticed_invoice(index: usize, today: NaiveDate, transfer_on: NaiveDate) -> InvoiceState {
    let issued = today
        .checked_sub_days(chrono::Days::new(31))
        .unwrap_or(today);
    let due = add_days(issued, 14);
    let amount = Decimal::new(100_000 + (index % 50_000) as i64, 2);
    let mut state = InvoiceState::new(
        format!("INV-{index:08}"),
        InvoiceFacts::new(issued, due, amount, issued),
    );
    state.stage = Stage::Noticed {
        notice_on: today,
        transfer_on,
    };
    state
}

/// Builds the states: every `total / due`-th one is due today, spread through memory the way
/// rows are spread through a table; the others transfer on one of the next 60 days.
fn build(total: usize, due: usize, today: NaiveDate) -> (Vec<InvoiceState>, DayIndex) {
    let stride = total.checked_div(due.max(1)).unwrap_or(1).max(1);
    let mut due_left = due.min(total);
    let mut states = Vec::with_capacity(total);
    let mut index: DayIndex = BTreeMap::new();
    for i in 0..total {
        let is_due = due_left > 0 && i % stride == 0;
        let transfer_on = if is_due {
            due_left -= 1;
            today
        } else {
            add_days(today, 1 + (i % 60) as u32)
        };
        states.push(noticed_invoice(i, today, transfer_on));
    }
    let policy = Policy::default();
    for (i, state) in states.iter().enumerate() {
        if let (Some(day), Ok(position)) = (next_action_on(&policy, state), u32::try_from(i)) {
            index.entry(day).or_default().push(position);
        }
    }
    (states, index)
}

/// A row a tick writes back: position, new state, new `next_action_on`.
type Update = (u32, InvoiceState, Option<NaiveDate>);

/// What one tick did.
struct TickOutcome {
    evaluated: usize,
    decisions: usize,
    /// The index entries taken out (due on or before today).
    taken: Vec<(NaiveDate, Vec<u32>)>,
    updates: Vec<Update>,
}

/// One tick: take every invoice due on or before `today` from the index, evaluate it, and
/// collect the updated rows.
fn tick(
    policy: &Policy,
    states: &[InvoiceState],
    index: &mut DayIndex,
    today: NaiveDate,
) -> TickOutcome {
    let due_days: Vec<NaiveDate> = index.range(..=today).map(|(day, _)| *day).collect();
    let taken: Vec<(NaiveDate, Vec<u32>)> = due_days
        .into_iter()
        .filter_map(|day| index.remove(&day).map(|list| (day, list)))
        .collect();
    let mut updates = Vec::new();
    let mut decisions = 0;
    for &position in taken.iter().flat_map(|(_, list)| list) {
        let Some(row) = states.get(position as usize) else {
            continue;
        };
        let mut state = row.clone();
        decisions += evaluate(policy, &mut state, today).len();
        let next = next_action_on(policy, &state);
        updates.push((position, state, next));
    }
    for (position, _, next) in &updates {
        if let Some(day) = next {
            index.entry(*day).or_default().push(*position);
        }
    }
    TickOutcome {
        evaluated: updates.len(),
        decisions,
        taken,
        updates,
    }
}

/// Puts the index back as it was before a tick (the benchmark states are never overwritten).
fn restore(index: &mut DayIndex, outcome: TickOutcome) {
    for (_, _, next) in &outcome.updates {
        if let Some(list) = next.and_then(|day| index.get_mut(&day)) {
            list.pop();
        }
    }
    index.extend(outcome.taken);
}

fn heap_estimate(states: &[InvoiceState], capacity: usize, index: &DayIndex) -> usize {
    let ids: usize = states.iter().map(|s| s.invoice.capacity()).sum();
    let lists: usize = index
        .values()
        .map(|list| list.capacity() * size_of::<u32>())
        .sum();
    // A B-tree entry costs about its key and value plus node overhead; 1.5× is a fair estimate.
    let entries = index.len() * (size_of::<NaiveDate>() + size_of::<Vec<u32>>()) * 3 / 2;
    capacity * size_of::<InvoiceState>() + ids + lists + entries
}

/// A built benchmark: the states, their index, and the tick timings so far.
struct Fixture {
    total: usize,
    due: usize,
    states: Vec<InvoiceState>,
    index: DayIndex,
    walls: Vec<Duration>,
    evaluated: usize,
    decisions: usize,
}

impl Fixture {
    fn new(total: usize, due: usize) -> Self {
        let (states, index) = build(total, due, bench_today());
        Fixture {
            total,
            due,
            states,
            index,
            walls: Vec::new(),
            evaluated: 0,
            decisions: 0,
        }
    }

    fn timed_tick(&mut self, policy: &Policy) {
        let started = Instant::now();
        let outcome = tick(policy, &self.states, &mut self.index, bench_today());
        self.walls.push(started.elapsed());
        (self.evaluated, self.decisions) = (outcome.evaluated, outcome.decisions);
        restore(&mut self.index, outcome);
    }

    fn report(mut self) -> BenchReport {
        self.walls.sort();
        let wall = self
            .walls
            .get(self.walls.len() / 2)
            .copied()
            .unwrap_or_default();
        let seconds = wall.as_secs_f64();
        BenchReport {
            total: self.total,
            due: self.due,
            evaluated: self.evaluated,
            decisions: self.decisions,
            wall,
            evaluated_per_second: if seconds > 0.0 {
                self.evaluated as f64 / seconds
            } else {
                0.0
            },
            state_size: size_of::<InvoiceState>(),
            heap_estimate: heap_estimate(&self.states, self.states.capacity(), &self.index),
        }
    }
}

/// Builds `total` states of which `due` are due today and times one day tick (median of several).
pub fn bench_day_tick(total: usize, due: usize) -> BenchReport {
    let policy = Policy::default();
    let mut fixture = Fixture::new(total, due);
    for _ in 0..TIMED_TICKS {
        fixture.timed_tick(&policy);
    }
    fixture.report()
}

/// `forfall bench engine`: the tick at `large_total` over the tick at `small_total`, same `due`.
/// Both are built first and their ticks alternate, so that drift (frequency, other load) hits
/// both alike; each wall time is the median of its ticks.
pub fn bench_scaling(small_total: usize, large_total: usize, due: usize) -> ScalingReport {
    let policy = Policy::default();
    let mut small = Fixture::new(small_total, due);
    let mut large = Fixture::new(large_total, due);
    for _ in 0..SCALING_ROUNDS {
        small.timed_tick(&policy);
        large.timed_tick(&policy);
    }
    let (small, large) = (small.report(), large.report());
    let ratio = if small.wall.is_zero() {
        f64::INFINITY
    } else {
        large.wall.as_secs_f64() / small.wall.as_secs_f64()
    };
    ScalingReport {
        small,
        large,
        ratio,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_evaluates_exactly_the_due_invoices_and_transfers_them() {
        let report = bench_day_tick(1_000, 10);
        assert_eq!(report.evaluated, 10);
        assert_eq!(report.decisions, 10);
        assert_eq!(report.state_size, size_of::<InvoiceState>());
        assert!(report.heap_estimate > 1_000 * size_of::<InvoiceState>());
    }

    #[test]
    fn restoring_the_index_makes_ticks_repeatable() {
        let today = bench_today();
        let policy = Policy::default();
        let (states, mut index) = build(500, 25, today);
        let before = index.clone();
        let outcome = tick(&policy, &states, &mut index, today);
        assert_eq!(outcome.evaluated, 25);
        restore(&mut index, outcome);
        assert_eq!(index, before);
    }

    #[test]
    fn due_larger_than_total_is_capped() {
        assert_eq!(bench_day_tick(5, 50).evaluated, 5);
        assert_eq!(bench_day_tick(0, 10).evaluated, 0);
    }
}
