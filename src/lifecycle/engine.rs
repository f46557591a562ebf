//! The pure transition functions of one invoice's lifecycle.

use chrono::NaiveDate;

use crate::lifecycle::decision::{Action, ActionKind, Decision, Inputs};
use crate::lifecycle::event::{DisputeOutcome, Event, PaymentVia};
use crate::lifecycle::state::{Case, Dispute, EndReason, InvoiceFacts, InvoiceState, Stage};
use crate::rules::calendar::{Country, roll_forward_to_business_day};
use crate::rules::dates::{add_days, weekday_after, weekday_on_or_after};
use crate::rules::eligibility::{Reason, ineligibility, limitation_date, standing_reason};
use crate::rules::policy::{Mode, OnDirectPayment, Policy, weekday_name};

/// The calendar `roll_to_business_day` uses (the contract names Norwegian public holidays).
const ROLL_COUNTRY: Country = Country::Norway;

// ---------------------------------------------------------------------------------------------
// When something is due
// ---------------------------------------------------------------------------------------------

/// The first day on which [`evaluate`] may emit an action without a further event; `None` when
/// only an event can change anything. Evaluating on an earlier day never emits.
pub fn next_action_on(policy: &Policy, state: &InvoiceState) -> Option<NaiveDate> {
    match &state.stage {
        Stage::Open { restart_from } => {
            Some(first_decision_on(policy, &state.facts, *restart_from))
        }
        Stage::Skipped {
            eligible_since: Some(since),
            ..
        }
        | Stage::Cancelled {
            eligible_since: Some(since),
            ..
        } => Some(first_decision_on(policy, &state.facts, Some(*since))),
        Stage::Noticed { transfer_on, .. } | Stage::Listed { transfer_on, .. } => {
            Some(*transfer_on)
        }
        _ => None,
    }
}

/// The day of the notice (notice mode) or the listing (weekly-list mode), not before `not_before`.
fn first_decision_on(
    policy: &Policy,
    facts: &InvoiceFacts,
    not_before: Option<NaiveDate>,
) -> NaiveDate {
    let mut earliest = add_days(facts.due, policy.notice_after_due_days).max(facts.seen);
    if let Some(day) = not_before {
        earliest = earliest.max(day);
    }
    match policy.mode {
        Mode::Notice => earliest,
        Mode::WeeklyList => {
            let earliest = earliest
                .max(add_days(facts.issued, policy.min_days_from_issue))
                .max(add_days(facts.due, policy.min_days_after_due));
            weekday_on_or_after(earliest, policy.weekly_list.list_weekday)
        }
    }
}

fn roll(policy: &Policy, date: NaiveDate) -> NaiveDate {
    if policy.roll_to_business_day {
        roll_forward_to_business_day(ROLL_COUNTRY, date)
    } else {
        date
    }
}

/// The transfer date announced by a notice or listing made on `day`, with the inputs used.
fn plan_transfer(policy: &Policy, facts: &InvoiceFacts, day: NaiveDate) -> (NaiveDate, Inputs) {
    match policy.mode {
        Mode::Notice => {
            let unrolled = add_days(day, policy.notice_days)
                .max(add_days(facts.issued, policy.min_days_from_issue))
                .max(add_days(facts.due, policy.min_days_after_due));
            let transfer_on = roll(policy, unrolled);
            let inputs = Inputs::new()
                .date("notice_on", day)
                .days("notice_days", policy.notice_days)
                .date("issued", facts.issued)
                .days("min_days_from_issue", policy.min_days_from_issue)
                .date("due", facts.due)
                .days("min_days_after_due", policy.min_days_after_due)
                .date("earliest_transfer_on", unrolled)
                .flag("roll_to_business_day", policy.roll_to_business_day)
                .date("transfer_on", transfer_on);
            (transfer_on, inputs)
        }
        Mode::WeeklyList => {
            let cutoff = policy.weekly_list.cutoff_weekday;
            let unrolled = weekday_after(day, cutoff);
            let transfer_on = roll(policy, unrolled);
            let inputs = Inputs::new()
                .date("issued", facts.issued)
                .date("due", facts.due)
                .date("seen", facts.seen)
                .days("notice_after_due_days", policy.notice_after_due_days)
                .days("min_days_from_issue", policy.min_days_from_issue)
                .days("min_days_after_due", policy.min_days_after_due)
                .date("first_list_day", first_decision_on(policy, facts, None))
                .date("listed_on", day)
                .text(
                    "list_weekday",
                    weekday_name(policy.weekly_list.list_weekday),
                )
                .text("cutoff_weekday", weekday_name(cutoff))
                .date("next_cutoff", unrolled)
                .flag("roll_to_business_day", policy.roll_to_business_day)
                .date("transfer_on", transfer_on);
            (transfer_on, inputs)
        }
    }
}

/// The facts behind an eligibility verdict, for explanations.
fn eligibility_inputs(policy: &Policy, facts: &InvoiceFacts, inputs: Inputs) -> Inputs {
    inputs
        .flag("opt_out", facts.opt_out)
        .flag("customer_opt_out", facts.customer_opt_out)
        .flag("fully_disputed", facts.is_fully_disputed())
        .amount("outstanding", facts.outstanding())
        .amount("disputed", facts.disputed_part())
        .amount("collectable", facts.collectable())
        .amount("min_amount", policy.min_amount)
        .date("due", facts.due)
        .days("limitation_years", policy.limitation_years)
        .date(
            "limitation_date",
            limitation_date(facts.due, policy.limitation_years),
        )
}

// ---------------------------------------------------------------------------------------------
// The day's evaluation
// ---------------------------------------------------------------------------------------------

/// The day's evaluation of one invoice, after that day's events: the notice or listing, a skip,
/// the transfer, or a cancellation found only now. Emits nothing before [`next_action_on`].
///
/// Several steps can fall on one day: with `notice_days: 0` the notice and the transfer are both
/// emitted, in that order.
pub fn evaluate(policy: &Policy, state: &mut InvoiceState, day: NaiveDate) -> Vec<Decision> {
    let mut decisions = Vec::new();
    // Open → noticed → transferred is the longest chain within one day; the bound is a safeguard.
    for _ in 0..MAX_STEPS_PER_DAY {
        let Some(action_on) = next_action_on(policy, state) else {
            break;
        };
        if day < action_on {
            break;
        }
        let before = state.stage.clone();
        decisions.extend(evaluate_step(policy, state, day));
        if state.stage == before {
            break;
        }
    }
    decisions
}

const MAX_STEPS_PER_DAY: usize = 4;

fn evaluate_step(policy: &Policy, state: &mut InvoiceState, day: NaiveDate) -> Vec<Decision> {
    match state.stage {
        Stage::Open { .. } => decide(policy, state, day, true),
        Stage::Skipped { .. } | Stage::Cancelled { .. } => decide(policy, state, day, false),
        Stage::Noticed { transfer_on, .. } | Stage::Listed { transfer_on, .. } => {
            transfer(policy, state, day, transfer_on)
        }
        _ => Vec::new(),
    }
}

/// The notice or listing decision on `day`. A first decision announces a skip; a later one (after
/// re-eligibility) stays silent when the invoice turns out ineligible after all.
fn decide(policy: &Policy, state: &mut InvoiceState, day: NaiveDate, first: bool) -> Vec<Decision> {
    if state.facts.is_settled() {
        state.stage = Stage::Ended {
            reason: EndReason::Paid,
        };
        return Vec::new();
    }
    let (transfer_on, plan_inputs) = plan_transfer(policy, &state.facts, day);
    let eligibility = state.facts.eligibility();
    match ineligibility(policy, &eligibility, state.facts.due, transfer_on) {
        Some(reason) => {
            wait_ineligible(state, reason, day, first);
            if !first {
                return Vec::new();
            }
            let inputs = eligibility_inputs(
                policy,
                &state.facts,
                Inputs::new().text("reason", reason.as_str()),
            )
            .date("planned_transfer_on", transfer_on);
            vec![decision(
                state,
                day,
                ActionKind::Skipped { reason },
                "eligibility.skipped",
                inputs,
            )]
        }
        None => match policy.mode {
            Mode::Notice => {
                state.stage = Stage::Noticed {
                    notice_on: day,
                    transfer_on,
                };
                let kind = ActionKind::NoticeSent { transfer_on };
                vec![decision(
                    state,
                    day,
                    kind,
                    "notice.transfer_on",
                    plan_inputs,
                )]
            }
            Mode::WeeklyList => {
                state.stage = Stage::Listed {
                    listed_on: day,
                    transfer_on,
                };
                let kind = ActionKind::Listed { transfer_on };
                vec![decision(
                    state,
                    day,
                    kind,
                    "weekly_list.transfer_on",
                    plan_inputs,
                )]
            }
        },
    }
}

/// Records that the invoice is ineligible for `reason`: final reasons end it, others wait for an
/// event that makes it eligible again. A repeated decision keeps the reason first announced.
fn wait_ineligible(state: &mut InvoiceState, reason: Reason, day: NaiveDate, first: bool) {
    if reason.is_final() {
        state.stage = Stage::Ended {
            reason: EndReason::from_final(reason),
        };
        return;
    }
    match &mut state.stage {
        Stage::Skipped { eligible_since, .. } | Stage::Cancelled { eligible_since, .. }
            if !first =>
        {
            *eligible_since = None;
        }
        _ => {
            state.stage = Stage::Skipped {
                reason,
                on: day,
                eligible_since: None,
            }
        }
    }
}

/// On (or after) `transfer_on`: transfer if still eligible, else cancel.
fn transfer(
    policy: &Policy,
    state: &mut InvoiceState,
    day: NaiveDate,
    transfer_on: NaiveDate,
) -> Vec<Decision> {
    let facts = &state.facts;
    let reason = if facts.is_settled() {
        Some(Reason::Paid)
    } else {
        ineligibility(policy, &facts.eligibility(), facts.due, day)
    };
    if let Some(reason) = reason {
        let inputs =
            eligibility_inputs(policy, facts, Inputs::new().text("reason", reason.as_str()))
                .date("transfer_on", transfer_on);
        state.stage = cancelled_stage(reason, day);
        return vec![decision(
            state,
            day,
            ActionKind::Cancelled { reason },
            "transfer.cancelled",
            inputs,
        )];
    }
    let case = Case {
        transfer_on: day,
        free_withdrawal_until: add_days(day, policy.free_withdrawal_days),
        first_reminder_on: add_days(day, policy.first_reminder_after_days),
        amount: facts.collectable(),
    };
    let inputs = Inputs::new()
        .date("transfer_on", transfer_on)
        .amount("outstanding", facts.outstanding())
        .amount("disputed", facts.disputed_part())
        .amount("amount", case.amount)
        .days("free_withdrawal_days", policy.free_withdrawal_days)
        .days(
            "first_reminder_after_days",
            policy.first_reminder_after_days,
        )
        .date(
            "limitation_date",
            limitation_date(facts.due, policy.limitation_years),
        );
    state.stage = Stage::Transferred(case);
    let kind = ActionKind::Transferred {
        amount: case.amount,
        free_withdrawal_until: case.free_withdrawal_until,
        first_reminder_on: case.first_reminder_on,
    };
    vec![decision(state, day, kind, "transfer.transferred", inputs)]
}

fn cancelled_stage(reason: Reason, day: NaiveDate) -> Stage {
    if reason.is_final() {
        Stage::Ended {
            reason: EndReason::from_final(reason),
        }
    } else {
        Stage::Cancelled {
            reason,
            on: day,
            eligible_since: None,
        }
    }
}

fn decision(
    state: &InvoiceState,
    day: NaiveDate,
    kind: ActionKind,
    rule: &'static str,
    inputs: Inputs,
) -> Decision {
    let action = Action {
        on: day,
        invoice: state.invoice.clone(),
        kind,
    };
    Decision::new(action, rule, inputs)
}

// ---------------------------------------------------------------------------------------------
// Events
// ---------------------------------------------------------------------------------------------

/// What an event changed in the facts.
#[derive(Debug, Clone, Copy)]
struct FactChange {
    /// The event brought the outstanding amount from above zero to zero.
    settled_now: bool,
    /// The due date moved to a different day.
    due_changed: bool,
}

/// Applies one event on `day` and returns the actions it causes at once.
pub fn apply_event(
    policy: &Policy,
    state: &mut InvoiceState,
    event: &Event,
    day: NaiveDate,
) -> Vec<Decision> {
    let change = update_facts(&mut state.facts, event);
    match state.stage {
        Stage::Open { .. } => {
            if state.facts.is_settled() {
                state.stage = Stage::Ended {
                    reason: settled_end_reason(event),
                };
            }
            Vec::new()
        }
        Stage::Skipped { .. } | Stage::Cancelled { .. } => {
            update_waiting(policy, state, event, day);
            Vec::new()
        }
        Stage::Noticed { .. } | Stage::Listed { .. } => {
            remove_if_ineligible(policy, state, event, change, day)
        }
        Stage::Transferred(case) => {
            case_event(policy, state, CaseStatus::Active, case, event, change, day)
        }
        Stage::Held(case) => case_event(policy, state, CaseStatus::Held, case, event, change, day),
        Stage::PrincipalPaid(case) => case_event(
            policy,
            state,
            CaseStatus::PrincipalPaid,
            case,
            event,
            change,
            day,
        ),
        Stage::Withdrawn { .. } | Stage::Closed { .. } | Stage::Ended { .. } => Vec::new(),
    }
}

fn update_facts(facts: &mut InvoiceFacts, event: &Event) -> FactChange {
    let was_owed = !facts.is_settled();
    let old_due = facts.due;
    match event {
        Event::Payment { amount, .. } => facts.paid = facts.paid.saturating_add(*amount),
        Event::CreditNote { amount } => facts.credited = facts.credited.saturating_add(*amount),
        Event::OptOut | Event::Stop => facts.opt_out = true,
        Event::OptIn => facts.opt_out = false,
        Event::CustomerOptOut => facts.customer_opt_out = true,
        Event::CustomerOptIn => facts.customer_opt_out = false,
        Event::Dispute { amount } => facts.dispute = Some(Dispute { amount: *amount }),
        Event::DisputeResolved { outcome } => resolve_dispute(facts, *outcome),
        Event::DueDateChanged { due } => facts.due = *due,
    }
    FactChange {
        settled_now: was_owed && facts.is_settled(),
        due_changed: facts.due != old_due,
    }
}

/// `creditor_upheld` clears the dispute; `debtor_upheld` also writes the disputed part off.
fn resolve_dispute(facts: &mut InvoiceFacts, outcome: DisputeOutcome) {
    if facts.dispute.is_none() {
        return;
    }
    if outcome == DisputeOutcome::DebtorUpheld {
        facts.written_off = facts.written_off.saturating_add(facts.disputed_part());
    }
    facts.dispute = None;
}

fn settled_end_reason(event: &Event) -> EndReason {
    match event {
        Event::CreditNote { .. } => EndReason::Credited,
        Event::DisputeResolved { .. } => EndReason::DisputeUpheldForDebtor,
        _ => EndReason::Paid,
    }
}

/// Skipped or cancelled: nothing is emitted; note whether the invoice is eligible again.
fn update_waiting(policy: &Policy, state: &mut InvoiceState, event: &Event, day: NaiveDate) {
    if state.facts.is_settled() {
        state.stage = Stage::Ended {
            reason: settled_end_reason(event),
        };
        return;
    }
    let reason = standing_reason(&state.facts.eligibility(), policy.min_amount);
    if let Some(reason) = reason.filter(|r| r.is_final()) {
        state.stage = Stage::Ended {
            reason: EndReason::from_final(reason),
        };
        return;
    }
    if let Stage::Skipped { eligible_since, .. } | Stage::Cancelled { eligible_since, .. } =
        &mut state.stage
    {
        match reason {
            Some(_) => *eligible_since = None,
            None => {
                eligible_since.get_or_insert(day);
            }
        }
    }
}

/// Noticed or listed: an event that makes the invoice ineligible cancels the pending transfer.
fn remove_if_ineligible(
    policy: &Policy,
    state: &mut InvoiceState,
    event: &Event,
    change: FactChange,
    day: NaiveDate,
) -> Vec<Decision> {
    let reason = if change.settled_now || state.facts.is_settled() {
        Some(match event {
            Event::CreditNote { .. } => Reason::Credited,
            Event::DisputeResolved { .. } => Reason::Disputed,
            _ => Reason::Paid,
        })
    } else if change.due_changed {
        Some(Reason::DueDateChanged)
    } else {
        standing_reason(&state.facts.eligibility(), policy.min_amount)
    };
    let Some(reason) = reason else {
        return Vec::new();
    };
    let pending_transfer_on = match state.stage {
        Stage::Noticed { transfer_on, .. } | Stage::Listed { transfer_on, .. } => Some(transfer_on),
        _ => None,
    };
    let mut inputs = Inputs::new()
        .value("event", event.to_json())
        .text("reason", reason.as_str());
    if let Some(transfer_on) = pending_transfer_on {
        inputs = inputs.date("transfer_on", transfer_on);
    }
    let inputs = eligibility_inputs(policy, &state.facts, inputs);
    state.stage = if reason == Reason::DueDateChanged {
        // Starts over from the new due date, never before today.
        Stage::Open {
            restart_from: Some(day),
        }
    } else {
        cancelled_stage(reason, day)
    };
    vec![decision(
        state,
        day,
        ActionKind::Cancelled { reason },
        "pending.cancelled",
        inputs,
    )]
}

/// The status of an open case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CaseStatus {
    Active,
    Held,
    PrincipalPaid,
}

/// An event on a transferred case.
fn case_event(
    policy: &Policy,
    state: &mut InvoiceState,
    status: CaseStatus,
    case: Case,
    event: &Event,
    change: FactChange,
    day: NaiveDate,
) -> Vec<Decision> {
    use CaseStatus::{Active, Held, PrincipalPaid};
    let collecting = status != PrincipalPaid;
    match (status, event) {
        (_, Event::Stop) => withdraw(state, case, day, "case.stop", event),
        (
            _,
            Event::Payment {
                via: PaymentVia::Collection,
                ..
            },
        ) if collecting && change.settled_now => close_paid(state, case, day, event),
        (
            _,
            Event::Payment {
                via: PaymentVia::Creditor,
                ..
            },
        ) if collecting && change.settled_now => direct_payment(policy, state, case, day, event),
        (_, Event::CreditNote { .. }) if collecting && change.settled_now => {
            withdraw(state, case, day, "case.credited_in_full", event)
        }
        // A dispute is full when it covers all that is still owed: raised as such, or made so by
        // a later partial payment or credit. Either way the case pauses.
        (Active, Event::Dispute { .. } | Event::Payment { .. } | Event::CreditNote { .. })
            if state.facts.is_fully_disputed() =>
        {
            hold(state, case, day, event)
        }
        (Held, Event::Dispute { .. }) if !state.facts.is_fully_disputed() => {
            release(state, case, day, event)
        }
        (
            Held,
            Event::DisputeResolved {
                outcome: DisputeOutcome::CreditorUpheld,
            },
        ) => release(state, case, day, event),
        (
            Held,
            Event::DisputeResolved {
                outcome: DisputeOutcome::DebtorUpheld,
            },
        ) => withdraw(state, case, day, "case.dispute_upheld_for_debtor", event),
        (
            Active,
            Event::DisputeResolved {
                outcome: DisputeOutcome::DebtorUpheld,
            },
        ) if change.settled_now => {
            withdraw(state, case, day, "case.dispute_upheld_for_debtor", event)
        }
        _ => Vec::new(),
    }
}

fn case_inputs(case: &Case, day: NaiveDate, event: &Event) -> Inputs {
    Inputs::new()
        .value("event", event.to_json())
        .date("transfer_on", case.transfer_on)
        .date("free_withdrawal_until", case.free_withdrawal_until)
        .date("day", day)
}

fn withdraw(
    state: &mut InvoiceState,
    case: Case,
    day: NaiveDate,
    rule: &'static str,
    event: &Event,
) -> Vec<Decision> {
    let charged = case.withdrawal_charged(day);
    let inputs = case_inputs(&case, day, event).flag("charged", charged);
    state.stage = Stage::Withdrawn { on: day, charged };
    vec![decision(
        state,
        day,
        ActionKind::Withdrawn { charged },
        rule,
        inputs,
    )]
}

fn close_paid(
    state: &mut InvoiceState,
    case: Case,
    day: NaiveDate,
    event: &Event,
) -> Vec<Decision> {
    let inputs = case_inputs(&case, day, event).amount("paid", state.facts.paid);
    state.stage = Stage::Closed {
        on: day,
        reason: Reason::Paid,
    };
    vec![decision(
        state,
        day,
        ActionKind::Closed {
            reason: Reason::Paid,
        },
        "case.collection_paid_in_full",
        inputs,
    )]
}

/// The creditor was paid directly in full after the transfer.
fn direct_payment(
    policy: &Policy,
    state: &mut InvoiceState,
    case: Case,
    day: NaiveDate,
    event: &Event,
) -> Vec<Decision> {
    let withdraw_now = match policy.on_direct_payment {
        OnDirectPayment::AlwaysWithdraw => true,
        OnDirectPayment::WithdrawIfFree => !case.withdrawal_charged(day),
        OnDirectPayment::KeepOpen => false,
    };
    let policy_name = serde_json::json!(policy.on_direct_payment);
    if withdraw_now {
        let mut decisions = withdraw(state, case, day, "case.direct_payment", event);
        for d in &mut decisions {
            d.explain
                .inputs
                .insert("on_direct_payment".into(), policy_name.clone());
        }
        return decisions;
    }
    let inputs = case_inputs(&case, day, event).value("on_direct_payment", policy_name);
    state.stage = Stage::PrincipalPaid(case);
    vec![decision(
        state,
        day,
        ActionKind::PrincipalPaid,
        "case.direct_payment",
        inputs,
    )]
}

fn hold(state: &mut InvoiceState, case: Case, day: NaiveDate, event: &Event) -> Vec<Decision> {
    let inputs = case_inputs(&case, day, event).amount("outstanding", state.facts.outstanding());
    state.stage = Stage::Held(case);
    vec![decision(
        state,
        day,
        ActionKind::Held {
            reason: Reason::Disputed,
        },
        "case.full_dispute",
        inputs,
    )]
}

fn release(state: &mut InvoiceState, case: Case, day: NaiveDate, event: &Event) -> Vec<Decision> {
    let inputs = case_inputs(&case, day, event).amount("collectable", state.facts.collectable());
    state.stage = Stage::Transferred(case);
    vec![decision(
        state,
        day,
        ActionKind::Released,
        "case.dispute_lifted",
        inputs,
    )]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lifecycle::decision::ActionKind;
    use crate::lifecycle::state::InvoiceFacts;
    use crate::rules::dates::parse_civil_date;
    use rust_decimal::Decimal;
    use rust_decimal_macros::dec;

    fn d(text: &str) -> NaiveDate {
        parse_civil_date(text).unwrap()
    }

    /// Issued 1 Nov 2026, due 15 Nov, 1000.00, seen 1 Nov.
    fn invoice() -> InvoiceState {
        InvoiceState::new(
            "1001",
            InvoiceFacts::new(
                d("2026-11-01"),
                d("2026-11-15"),
                dec!(1000),
                d("2026-11-01"),
            ),
        )
    }

    fn kinds(decisions: &[Decision]) -> Vec<ActionKind> {
        decisions.iter().map(|d| d.action.kind.clone()).collect()
    }

    fn transferred(policy: &Policy) -> InvoiceState {
        let mut state = invoice();
        evaluate(policy, &mut state, d("2026-11-16"));
        evaluate(policy, &mut state, d("2026-11-21"));
        assert!(matches!(state.stage, Stage::Transferred(_)));
        state
    }

    #[test]
    fn open_invoice_is_next_due_on_the_notice_day() {
        let policy = Policy::default();
        assert_eq!(next_action_on(&policy, &invoice()), Some(d("2026-11-16")));
        let mut late = invoice();
        late.facts.seen = d("2026-12-01");
        assert_eq!(next_action_on(&policy, &late), Some(d("2026-12-01")));
    }

    #[test]
    fn weekly_list_invoice_is_next_due_on_the_first_list_weekday() {
        let policy = Policy {
            mode: Mode::WeeklyList,
            ..Policy::default()
        };
        // max(due+1 = Mon 16 Nov, issued+14 = Sun 15 Nov) → Tuesday 17 Nov.
        assert_eq!(next_action_on(&policy, &invoice()), Some(d("2026-11-17")));
    }

    #[test]
    fn noticed_invoice_is_next_due_on_transfer_on_and_transferred_cases_wait_for_events() {
        let policy = Policy::default();
        let mut state = invoice();
        evaluate(&policy, &mut state, d("2026-11-16"));
        assert_eq!(next_action_on(&policy, &state), Some(d("2026-11-21")));
        evaluate(&policy, &mut state, d("2026-11-21"));
        assert_eq!(next_action_on(&policy, &state), None);
    }

    #[test]
    fn nothing_is_emitted_before_the_notice_day() {
        let policy = Policy::default();
        let mut state = invoice();
        assert!(evaluate(&policy, &mut state, d("2026-11-15")).is_empty());
        assert_eq!(state, invoice());
    }

    #[test]
    fn zero_notice_days_notices_and_transfers_on_the_same_day() {
        let policy = Policy {
            notice_days: 0,
            min_days_from_issue: 0,
            ..Policy::default()
        };
        let mut state = invoice();
        let out = evaluate(&policy, &mut state, d("2026-11-16"));
        assert_eq!(out.len(), 2);
        assert_eq!(
            out[0].action.kind,
            ActionKind::NoticeSent {
                transfer_on: d("2026-11-16")
            }
        );
        assert!(matches!(out[1].action.kind, ActionKind::Transferred { .. }));
    }

    #[test]
    fn a_late_evaluation_transfers_with_dates_counted_from_the_real_day() {
        let policy = Policy::default();
        let mut state = invoice();
        evaluate(&policy, &mut state, d("2026-11-16"));
        let out = evaluate(&policy, &mut state, d("2026-11-23"));
        assert_eq!(
            kinds(&out),
            [ActionKind::Transferred {
                amount: dec!(1000),
                free_withdrawal_until: d("2026-12-03"),
                first_reminder_on: d("2026-11-28"),
            }]
        );
    }

    #[test]
    fn a_late_first_evaluation_still_gives_full_notice() {
        let policy = Policy::default();
        let mut state = invoice();
        let out = evaluate(&policy, &mut state, d("2026-11-20"));
        assert_eq!(
            kinds(&out),
            [ActionKind::NoticeSent {
                transfer_on: d("2026-11-25")
            }]
        );
    }

    #[test]
    fn skipped_invoice_waits_for_a_moved_due_date_after_opt_in() {
        let policy = Policy::default();
        let mut state = invoice();
        apply_event(&policy, &mut state, &Event::OptOut, d("2026-11-10"));
        let out = evaluate(&policy, &mut state, d("2026-11-16"));
        assert_eq!(
            kinds(&out),
            [ActionKind::Skipped {
                reason: Reason::OptedOut
            }]
        );
        let moved = Event::DueDateChanged {
            due: d("2026-12-15"),
        };
        assert!(apply_event(&policy, &mut state, &moved, d("2026-11-18")).is_empty());
        apply_event(&policy, &mut state, &Event::OptIn, d("2026-11-20"));
        assert_eq!(next_action_on(&policy, &state), Some(d("2026-12-16")));
        assert!(evaluate(&policy, &mut state, d("2026-11-20")).is_empty());
        let out = evaluate(&policy, &mut state, d("2026-12-16"));
        assert_eq!(
            kinds(&out),
            [ActionKind::NoticeSent {
                transfer_on: d("2026-12-21")
            }]
        );
    }

    #[test]
    fn skipped_is_emitted_once_even_when_the_reason_changes() {
        let policy = Policy::default();
        let mut state = invoice();
        apply_event(&policy, &mut state, &Event::OptOut, d("2026-11-10"));
        assert_eq!(evaluate(&policy, &mut state, d("2026-11-16")).len(), 1);
        apply_event(
            &policy,
            &mut state,
            &Event::Dispute { amount: None },
            d("2026-11-17"),
        );
        apply_event(&policy, &mut state, &Event::OptIn, d("2026-11-18"));
        assert!(evaluate(&policy, &mut state, d("2026-11-18")).is_empty());
        assert_eq!(next_action_on(&policy, &state), None);
    }

    #[test]
    fn re_eligible_but_prescribed_ends_silently() {
        let policy = Policy {
            limitation_years: 1,
            ..Policy::default()
        };
        let mut state = invoice();
        apply_event(&policy, &mut state, &Event::OptOut, d("2026-11-10"));
        evaluate(&policy, &mut state, d("2026-11-16"));
        apply_event(&policy, &mut state, &Event::OptIn, d("2027-11-20"));
        assert!(evaluate(&policy, &mut state, d("2027-11-20")).is_empty());
        assert_eq!(
            state.stage,
            Stage::Ended {
                reason: EndReason::Prescribed
            }
        );
    }

    #[test]
    fn raised_minimum_found_on_transfer_day_cancels_at_evaluation() {
        let mut policy = Policy::default();
        let mut state = invoice();
        evaluate(&policy, &mut state, d("2026-11-16"));
        policy.min_amount = dec!(5000);
        let out = evaluate(&policy, &mut state, d("2026-11-21"));
        assert_eq!(
            kinds(&out),
            [ActionKind::Cancelled {
                reason: Reason::BelowMinimum
            }]
        );
        assert_eq!(out[0].explain.rule, "transfer.cancelled");
    }

    #[test]
    fn a_partial_dispute_made_full_by_a_later_payment_or_credit_holds_the_case() {
        let policy = Policy::default();
        for later in [
            Event::Payment {
                amount: dec!(700.00),
                via: PaymentVia::Collection,
            },
            Event::Payment {
                amount: dec!(700.00),
                via: PaymentVia::Creditor,
            },
            Event::CreditNote {
                amount: dec!(700.00),
            },
        ] {
            let mut state = transferred(&policy);
            let dispute = Event::Dispute {
                amount: Some(dec!(300.00)),
            };
            assert!(apply_event(&policy, &mut state, &dispute, d("2026-11-23")).is_empty());
            let out = apply_event(&policy, &mut state, &later, d("2026-11-24"));
            assert_eq!(
                kinds(&out),
                [ActionKind::Held {
                    reason: Reason::Disputed
                }],
                "{later:?}"
            );
        }
    }

    #[test]
    fn narrowing_a_dispute_while_held_releases_the_case() {
        let policy = Policy::default();
        let mut state = transferred(&policy);
        let out = apply_event(
            &policy,
            &mut state,
            &Event::Dispute { amount: None },
            d("2026-11-22"),
        );
        assert_eq!(
            kinds(&out),
            [ActionKind::Held {
                reason: Reason::Disputed
            }]
        );
        let out = apply_event(
            &policy,
            &mut state,
            &Event::Dispute {
                amount: Some(dec!(100)),
            },
            d("2026-11-23"),
        );
        assert_eq!(kinds(&out), [ActionKind::Released]);
        assert!(matches!(state.stage, Stage::Transferred(_)));
    }

    #[test]
    fn partial_dispute_after_transfer_emits_nothing_until_it_covers_all_that_is_owed() {
        let policy = Policy::default();
        let mut state = transferred(&policy);
        let partial = Event::Dispute {
            amount: Some(dec!(400)),
        };
        assert!(apply_event(&policy, &mut state, &partial, d("2026-11-22")).is_empty());
        let payment = Event::Payment {
            amount: dec!(600),
            via: PaymentVia::Collection,
        };
        // 1000 − 600 leaves 400 owed, all of it disputed: the case pauses.
        let out = apply_event(&policy, &mut state, &payment, d("2026-11-23"));
        assert_eq!(
            kinds(&out),
            [ActionKind::Held {
                reason: Reason::Disputed
            }]
        );
        let upheld = Event::DisputeResolved {
            outcome: DisputeOutcome::DebtorUpheld,
        };
        let out = apply_event(&policy, &mut state, &upheld, d("2026-11-24"));
        assert_eq!(kinds(&out), [ActionKind::Withdrawn { charged: false }]);
    }

    #[test]
    fn after_principal_paid_a_collection_payment_changes_nothing() {
        let policy = Policy {
            on_direct_payment: OnDirectPayment::KeepOpen,
            ..Policy::default()
        };
        let mut state = transferred(&policy);
        let direct = Event::Payment {
            amount: dec!(1000),
            via: PaymentVia::Creditor,
        };
        let out = apply_event(&policy, &mut state, &direct, d("2026-11-22"));
        assert_eq!(kinds(&out), [ActionKind::PrincipalPaid]);
        let fees = Event::Payment {
            amount: dec!(70),
            via: PaymentVia::Collection,
        };
        assert!(apply_event(&policy, &mut state, &fees, d("2026-11-23")).is_empty());
        let out = apply_event(&policy, &mut state, &Event::Stop, d("2026-12-02"));
        assert_eq!(kinds(&out), [ActionKind::Withdrawn { charged: true }]);
        assert!(apply_event(&policy, &mut state, &Event::Stop, d("2026-12-03")).is_empty());
    }

    #[test]
    fn withdraw_if_free_keeps_the_case_open_after_the_free_period() {
        let policy = Policy::default();
        let mut state = transferred(&policy);
        let direct = Event::Payment {
            amount: dec!(1000),
            via: PaymentVia::Creditor,
        };
        let out = apply_event(&policy, &mut state, &direct, d("2026-12-02"));
        assert_eq!(kinds(&out), [ActionKind::PrincipalPaid]);
        let mut state = transferred(&policy);
        let out = apply_event(&policy, &mut state, &direct, d("2026-12-01"));
        assert_eq!(kinds(&out), [ActionKind::Withdrawn { charged: false }]);
    }

    #[test]
    fn opt_out_and_due_date_change_after_transfer_change_nothing() {
        let policy = Policy::default();
        let mut state = transferred(&policy);
        let before = state.stage.clone();
        for event in [
            Event::OptOut,
            Event::CustomerOptOut,
            Event::DueDateChanged {
                due: d("2027-01-01"),
            },
            Event::OptIn,
        ] {
            assert!(apply_event(&policy, &mut state, &event, d("2026-11-25")).is_empty());
        }
        assert_eq!(state.stage, before);
    }

    #[test]
    fn payment_before_notice_ends_without_any_action() {
        let policy = Policy::default();
        let mut state = invoice();
        let paid = Event::Payment {
            amount: dec!(1000),
            via: PaymentVia::Creditor,
        };
        assert!(apply_event(&policy, &mut state, &paid, d("2026-11-14")).is_empty());
        assert_eq!(
            state.stage,
            Stage::Ended {
                reason: EndReason::Paid
            }
        );
        assert!(evaluate(&policy, &mut state, d("2026-11-16")).is_empty());
        assert_eq!(next_action_on(&policy, &state), None);
    }

    #[test]
    fn overpayment_between_notice_and_transfer_cancels_as_paid() {
        let policy = Policy::default();
        let mut state = invoice();
        evaluate(&policy, &mut state, d("2026-11-16"));
        let paid = Event::Payment {
            amount: dec!(1500),
            via: PaymentVia::Creditor,
        };
        let out = apply_event(&policy, &mut state, &paid, d("2026-11-18"));
        assert_eq!(
            kinds(&out),
            [ActionKind::Cancelled {
                reason: Reason::Paid
            }]
        );
        assert_eq!(state.facts.outstanding(), Decimal::ZERO);
    }

    #[test]
    fn explanations_name_the_rule_and_inputs() {
        let policy = Policy::default();
        let mut state = invoice();
        let out = evaluate(&policy, &mut state, d("2026-11-16"));
        assert_eq!(out[0].explain.rule, "notice.transfer_on");
        assert_eq!(out[0].explain.inputs["notice_days"], 5);
        assert_eq!(out[0].explain.inputs["transfer_on"], "2026-11-21");
    }
}
