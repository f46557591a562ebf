//! The store conformance suite: every behaviour the lifecycle relies on, one body each, run on
//! SQLite and on PostgreSQL.

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use forfall::domain::{
    CaseState, ConnectionId, ConnectionStatus, Country, CreditorId, Currency, CustomerFacts,
    CustomerKind, EventSource, InvoiceFacts, JobState, Language, Money, NewCase, NewCreditor,
    NewDecision, NewJob, SealedCredentials, Stage,
};
use forfall::store::{AgencyEventSeen, JobOutcome, LifecycleUpdate, Store, StoreError, Written};
use rust_decimal::Decimal;

on_both_backends!(
    migrating_twice_is_harmless_and_leaves_the_schema_current,
    a_creditor_reads_back_as_created_with_its_countrys_time_zone,
    the_same_invoice_facts_twice_write_nothing_the_second_time,
    changed_facts_write_the_new_state_and_one_event_describing_the_change,
    an_amount_finer_than_the_currency_allows_is_refused_and_nothing_is_written,
    concurrent_upserts_of_one_invoice_lose_no_update,
    concurrent_first_sightings_of_one_invoice_create_it_once,
    another_creditors_id_reaches_none_of_the_data,
    invoices_due_returns_only_those_whose_day_has_come_in_day_order,
    invoices_due_runs_on_the_next_action_index,
    a_lifecycle_update_writes_state_decisions_and_jobs_together,
    a_stale_lifecycle_update_is_a_conflict_and_writes_nothing,
    the_same_job_enqueued_twice_stays_one_job,
    jobs_enqueued_together_say_which_were_new_and_claimers_take_only_their_kinds,
    concurrent_claimers_never_get_the_same_job,
    an_expired_job_lease_can_be_claimed_again_and_the_old_owner_loses_it,
    a_retried_job_waits_for_its_time_and_a_dead_one_is_never_claimed,
    a_named_lease_has_one_holder_until_released_or_expired,
    releasing_everything_of_an_instance_frees_its_leases_and_jobs_at_once,
    customers_upsert_idempotently_and_invoices_find_a_customer_that_arrives_later,
    opting_out_an_invoice_writes_one_event_per_change,
    a_connection_of_an_unknown_creditor_is_refused_and_its_status_can_be_set,
    a_chained_job_waits_until_every_earlier_job_of_its_chain_has_succeeded,
    every_attempt_is_kept_and_a_deferral_gives_its_attempt_back,
    a_dead_letter_retried_by_hand_runs_again_with_fresh_attempts,
    a_case_is_opened_once_per_transfer_key_and_counts_its_generation,
    a_pulled_message_is_offered_until_acknowledged_and_a_second_ack_is_harmless,
    one_digest_per_creditor_kind_and_day_is_recorded_with_the_jobs_it_covered,
    an_agency_event_applied_twice_writes_nothing_the_second_time,
);

fn day(s: &str) -> NaiveDate {
    s.parse().expect("a date")
}

fn at(s: &str) -> DateTime<Utc> {
    s.parse().expect("an instant")
}

fn now() -> DateTime<Utc> {
    at("2026-11-23T06:00:00Z")
}

fn nok(s: &str) -> Decimal {
    Decimal::from_str_exact(s).expect("a decimal")
}

async fn creditor(store: &Arc<dyn Store>, name: &str) -> (CreditorId, ConnectionId) {
    let creditor = store
        .create_creditor(
            &NewCreditor {
                name: name.into(),
                organisation_number: "923609016".into(),
                country: Country::Norway,
                time_zone: None,
                language: Language::Nb,
                email: None,
                policy: serde_json::json!({ "notice_days": 5 }),
                partner_id: None,
            },
            now(),
        )
        .await
        .expect("create creditor");
    let connection = store
        .create_connection(
            &creditor.id,
            &ConnectionId::generate(),
            "tripletex",
            &SealedCredentials(vec![1, 2, 3]),
            now(),
        )
        .await
        .expect("create connection");
    (creditor.id, connection.id)
}

fn invoice(platform_id: &str, outstanding: &str) -> InvoiceFacts {
    InvoiceFacts {
        platform_id: platform_id.into(),
        number: format!("F-{platform_id}"),
        customer_platform_id: "C1".into(),
        issued: day("2026-11-01"),
        due: day("2026-11-15"),
        currency: Currency::NOK,
        amount: nok("1250.00"),
        outstanding: nok(outstanding),
        payment_reference: Some("12345678903".into()),
        credited: false,
    }
}

fn update(stage: Stage, next: Option<&str>, jobs: Vec<NewJob>) -> LifecycleUpdate {
    LifecycleUpdate {
        stage,
        next_action_on: next.map(day),
        lifecycle: serde_json::json!({ "stage": stage.as_str() }),
        decisions: vec![NewDecision {
            on: day("2026-11-16"),
            rule: "notice.transfer_on".into(),
            inputs: serde_json::json!({ "due": "2026-11-15" }),
            outcome: serde_json::json!({ "action": "notice_sent" }),
        }],
        jobs,
        agency_event: None,
        opt_out: false,
        dispute: None,
        on: day("2026-11-16"),
        logged: None,
    }
}

/// The job kinds the tests' claimers take.
const KINDS: &[&str] = &["notify_creditor"];

fn job(key: &str) -> NewJob {
    NewJob {
        kind: "notify_creditor".into(),
        idempotency_key: key.into(),
        payload: serde_json::json!({ "key": key }),
        run_after: now(),
        chain: None,
    }
}

/// Enqueues `keys` as jobs of one invoice of `creditor`.
async fn enqueue(
    store: &Arc<dyn Store>,
    creditor: &CreditorId,
    conn: &ConnectionId,
    keys: &[String],
) {
    let id = store
        .upsert_invoice(
            creditor,
            conn,
            &invoice("J1", "1250.00"),
            EventSource::Poll,
            now(),
        )
        .await
        .expect("upsert")
        .id;
    let version = store.invoice(creditor, &id).await.unwrap().unwrap().version;
    let jobs = keys.iter().map(|k| job(k)).collect();
    store
        .save_lifecycle(
            creditor,
            &id,
            version,
            &update(Stage::Noticed, None, jobs),
            now(),
        )
        .await
        .expect("enqueue jobs");
}

async fn migrating_twice_is_harmless_and_leaves_the_schema_current(store: Arc<dyn Store>) {
    store.migrate().await.expect("second migration");
    store.migrate().await.expect("third migration");
    let status = store.schema_status().await.unwrap();
    assert!(status.is_current(), "{status:?}");
    assert!(!status.applied.is_empty());
    store.ping().await.unwrap();
}

async fn a_creditor_reads_back_as_created_with_its_countrys_time_zone(store: Arc<dyn Store>) {
    let (id, _) = creditor(&store, "Fjord Rør AS").await;
    let creditor = store.creditor(&id).await.unwrap().expect("the creditor");
    assert_eq!(creditor.name, "Fjord Rør AS");
    assert_eq!(creditor.country, Country::Norway);
    assert_eq!(creditor.time_zone, chrono_tz::Europe::Oslo);
    assert_eq!(creditor.policy, serde_json::json!({ "notice_days": 5 }));
    assert_eq!(store.creditor_ids().await.unwrap(), vec![id]);
}

async fn the_same_invoice_facts_twice_write_nothing_the_second_time(store: Arc<dyn Store>) {
    let (cred, conn) = creditor(&store, "A").await;
    let first = store
        .upsert_invoice(
            &cred,
            &conn,
            &invoice("1001", "1250.00"),
            EventSource::Poll,
            now(),
        )
        .await
        .unwrap();
    assert_eq!(first.written, Written::Created);
    let before = store.invoice(&cred, &first.id).await.unwrap().unwrap();
    // The same facts, even written with another scale, are the same facts.
    let mut same = invoice("1001", "1250.0");
    same.amount = nok("1250");
    let second = store
        .upsert_invoice(&cred, &conn, &same, EventSource::Webhook, now())
        .await
        .unwrap();
    assert_eq!(second.written, Written::Unchanged);
    assert_eq!(second.id, first.id);
    let after = store.invoice(&cred, &first.id).await.unwrap().unwrap();
    assert_eq!(after, before, "nothing written");
    let events = store.invoice_events(&cred, &first.id).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].kind, "created");
    assert_eq!(events[0].change["outstanding"], "1250.00");
}

async fn changed_facts_write_the_new_state_and_one_event_describing_the_change(
    store: Arc<dyn Store>,
) {
    let (cred, conn) = creditor(&store, "A").await;
    let id = store
        .upsert_invoice(
            &cred,
            &conn,
            &invoice("1001", "1250.00"),
            EventSource::Poll,
            now(),
        )
        .await
        .unwrap()
        .id;
    let later = at("2026-11-18T09:00:00Z");
    let changed = store
        .upsert_invoice(
            &cred,
            &conn,
            &invoice("1001", "1000.00"),
            EventSource::Webhook,
            later,
        )
        .await
        .unwrap();
    assert_eq!(changed.written, Written::Changed);
    let stored = store.invoice(&cred, &id).await.unwrap().unwrap();
    assert_eq!(stored.facts.outstanding, nok("1000.00"));
    assert_eq!(stored.version, 2);
    let events = store.invoice_events(&cred, &id).await.unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(events[1].kind, "changed");
    assert_eq!(events[1].source, EventSource::Webhook);
    assert_eq!(events[1].at, later);
    assert_eq!(
        events[1].change,
        serde_json::json!({ "outstanding": { "from": "1250.00", "to": "1000.00" } })
    );
}

async fn an_amount_finer_than_the_currency_allows_is_refused_and_nothing_is_written(
    store: Arc<dyn Store>,
) {
    let (cred, conn) = creditor(&store, "A").await;
    let err = store
        .upsert_invoice(
            &cred,
            &conn,
            &invoice("1001", "10.005"),
            EventSource::Poll,
            now(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err}");
    assert!(
        store
            .invoices_due(&cred, day("2100-01-01"), 10)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn concurrent_upserts_of_one_invoice_lose_no_update(store: Arc<dyn Store>) {
    let (cred, conn) = creditor(&store, "A").await;
    let id = store
        .upsert_invoice(
            &cred,
            &conn,
            &invoice("1001", "1250.00"),
            EventSource::Poll,
            now(),
        )
        .await
        .unwrap()
        .id;
    // 8 writers, each setting 10 distinct outstanding amounts, all at once.
    let mut writers = Vec::new();
    for writer in 0..8_i64 {
        let (store, cred, conn) = (store.clone(), cred.clone(), conn.clone());
        writers.push(tokio::spawn(async move {
            let mut changed = 0;
            for step in 0..10_i64 {
                let outstanding = Decimal::new(100_000 + writer * 100 + step, 2);
                let mut facts = invoice("1001", "0");
                facts.outstanding = outstanding;
                let done = store
                    .upsert_invoice(&cred, &conn, &facts, EventSource::Webhook, now())
                    .await
                    .expect("concurrent upsert");
                if done.written == Written::Changed {
                    changed += 1;
                }
            }
            changed
        }));
    }
    let mut changed = 0;
    for writer in writers {
        changed += writer.await.unwrap();
    }
    assert_eq!(changed, 80, "every distinct value is a change");
    let events = store.invoice_events(&cred, &id).await.unwrap();
    assert_eq!(events.len(), 81, "one event per change, plus the creation");
    // The events form one unbroken chain: each change starts where the previous one ended.
    let mut current = events[0].change["outstanding"].clone();
    for event in &events[1..] {
        assert_eq!(
            event.change["outstanding"]["from"], current,
            "a lost update"
        );
        current = event.change["outstanding"]["to"].clone();
    }
    let stored = store.invoice(&cred, &id).await.unwrap().unwrap();
    assert_eq!(
        serde_json::json!(stored.facts.outstanding.to_string()),
        current
    );
    assert_eq!(stored.version, 81);
}

async fn concurrent_first_sightings_of_one_invoice_create_it_once(store: Arc<dyn Store>) {
    let (cred, conn) = creditor(&store, "A").await;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (store, cred, conn) = (store.clone(), cred.clone(), conn.clone());
        tasks.push(tokio::spawn(async move {
            store
                .upsert_invoice(
                    &cred,
                    &conn,
                    &invoice("2002", "500.00"),
                    EventSource::Poll,
                    now(),
                )
                .await
                .expect("upsert")
        }));
    }
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap());
    }
    let created = results
        .iter()
        .filter(|r| r.written == Written::Created)
        .count();
    assert_eq!(created, 1);
    assert!(results.iter().all(|r| r.id == results[0].id));
    let events = store.invoice_events(&cred, &results[0].id).await.unwrap();
    assert_eq!(events.len(), 1);
}

async fn another_creditors_id_reaches_none_of_the_data(store: Arc<dyn Store>) {
    let (a, a_conn) = creditor(&store, "A").await;
    let (b, b_conn) = creditor(&store, "B").await;
    let id = store
        .upsert_invoice(
            &a,
            &a_conn,
            &invoice("1001", "1250.00"),
            EventSource::Poll,
            now(),
        )
        .await
        .unwrap()
        .id;
    assert!(store.invoice(&b, &id).await.unwrap().is_none());
    assert!(store.invoice_events(&b, &id).await.unwrap().is_empty());
    assert!(store.decisions(&b, &id).await.unwrap().is_empty());
    assert!(
        store
            .invoices_due(&b, day("2100-01-01"), 100)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(store.connection(&b, &a_conn).await.unwrap().is_none());
    let err = store
        .set_invoice_opt_out(&b, &id, true, EventSource::Api, now())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err}");
    let err = store
        .save_lifecycle(&b, &id, 1, &update(Stage::Noticed, None, vec![]), now())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err}");
    // B cannot write through A's connection either.
    let err = store
        .upsert_invoice(&b, &a_conn, &invoice("9", "1.00"), EventSource::Poll, now())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err}");
    // And A's invoice is untouched.
    let a_invoice = store.invoice(&a, &id).await.unwrap().unwrap();
    assert!(!a_invoice.opt_out);
    assert_eq!(a_invoice.version, 1);
    let _ = b_conn;
}

async fn invoices_due_returns_only_those_whose_day_has_come_in_day_order(store: Arc<dyn Store>) {
    let (cred, conn) = creditor(&store, "A").await;
    for (platform_id, next) in [
        ("1", Some("2026-11-20")),
        ("2", Some("2026-11-16")),
        ("3", Some("2026-11-21")),
        ("4", None),
        ("5", Some("2026-11-18")),
    ] {
        let id = store
            .upsert_invoice(
                &cred,
                &conn,
                &invoice(platform_id, "100.00"),
                EventSource::Poll,
                now(),
            )
            .await
            .unwrap()
            .id;
        let version = store.invoice(&cred, &id).await.unwrap().unwrap().version;
        store
            .save_lifecycle(
                &cred,
                &id,
                version,
                &update(Stage::Noticed, next, vec![]),
                now(),
            )
            .await
            .unwrap();
    }
    let due = store
        .invoices_due(&cred, day("2026-11-20"), 100)
        .await
        .unwrap();
    let numbers: Vec<_> = due.iter().map(|i| i.facts.platform_id.as_str()).collect();
    assert_eq!(numbers, ["2", "5", "1"]);
    let limited = store
        .invoices_due(&cred, day("2026-11-20"), 2)
        .await
        .unwrap();
    assert_eq!(limited.len(), 2);
    assert!(
        store
            .invoices_due(&cred, day("2026-11-15"), 100)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn invoices_due_runs_on_the_next_action_index(store: Arc<dyn Store>) {
    let (cred, _) = creditor(&store, "A").await;
    let plan = store
        .explain_invoices_due(&cred, day("2026-11-20"))
        .await
        .unwrap();
    assert!(plan.contains("invoices_next_action"), "plan:\n{plan}");
}

async fn a_lifecycle_update_writes_state_decisions_and_jobs_together(store: Arc<dyn Store>) {
    let (cred, conn) = creditor(&store, "A").await;
    let id = store
        .upsert_invoice(
            &cred,
            &conn,
            &invoice("1001", "1250.00"),
            EventSource::Poll,
            now(),
        )
        .await
        .unwrap()
        .id;
    let v1 = store.invoice(&cred, &id).await.unwrap().unwrap().version;
    store
        .save_lifecycle(
            &cred,
            &id,
            v1,
            &update(
                Stage::Noticed,
                Some("2026-11-21"),
                vec![job("notice:1001:1")],
            ),
            now(),
        )
        .await
        .unwrap();
    let stored = store.invoice(&cred, &id).await.unwrap().unwrap();
    assert_eq!(stored.stage, Stage::Noticed);
    assert_eq!(stored.next_action_on, Some(day("2026-11-21")));
    assert_eq!(stored.lifecycle, serde_json::json!({ "stage": "noticed" }));
    assert_eq!(stored.version, v1 + 1);
    let decisions = store.decisions(&cred, &id).await.unwrap();
    assert_eq!(decisions.len(), 1);
    assert_eq!(decisions[0].rule, "notice.transfer_on");
    assert_eq!(decisions[0].on, day("2026-11-16"));
    let jobs = store.jobs(&cred).await.unwrap();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].idempotency_key, "notice:1001:1");
    assert_eq!(jobs[0].state, JobState::Pending);
}

async fn a_stale_lifecycle_update_is_a_conflict_and_writes_nothing(store: Arc<dyn Store>) {
    let (cred, conn) = creditor(&store, "A").await;
    let id = store
        .upsert_invoice(
            &cred,
            &conn,
            &invoice("1001", "1250.00"),
            EventSource::Poll,
            now(),
        )
        .await
        .unwrap()
        .id;
    let stale = store.invoice(&cred, &id).await.unwrap().unwrap().version;
    // Someone else writes first.
    store
        .upsert_invoice(
            &cred,
            &conn,
            &invoice("1001", "900.00"),
            EventSource::Poll,
            now(),
        )
        .await
        .unwrap();
    let err = store
        .save_lifecycle(
            &cred,
            &id,
            stale,
            &update(Stage::Noticed, Some("2026-11-21"), vec![job("k")]),
            now(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err}");
    assert!(store.decisions(&cred, &id).await.unwrap().is_empty());
    assert!(store.jobs(&cred).await.unwrap().is_empty());
    assert_eq!(
        store.invoice(&cred, &id).await.unwrap().unwrap().stage,
        Stage::Open
    );
}

async fn the_same_job_enqueued_twice_stays_one_job(store: Arc<dyn Store>) {
    let (cred, conn) = creditor(&store, "A").await;
    enqueue(&store, &cred, &conn, &["transfer:inv_1:1".into()]).await;
    enqueue(&store, &cred, &conn, &["transfer:inv_1:1".into()]).await;
    assert_eq!(store.jobs(&cred).await.unwrap().len(), 1);
}

async fn jobs_enqueued_together_say_which_were_new_and_claimers_take_only_their_kinds(
    store: Arc<dyn Store>,
) {
    let (cred, conn) = creditor(&store, "A").await;
    enqueue(&store, &cred, &conn, &["old".into()]).await;
    let webhook = |key: &str| NewJob {
        kind: "webhook".into(),
        ..job(key)
    };
    let new = store
        .enqueue_jobs(
            &[
                (cred.clone(), webhook("a")),
                (cred.clone(), webhook("old")),
                (cred.clone(), webhook("b")),
                (cred.clone(), webhook("a")),
            ],
            now(),
        )
        .await
        .unwrap();
    assert_eq!(new, vec![true, false, true, false]);
    assert_eq!(store.jobs(&cred).await.unwrap().len(), 3);
    let claimed = store
        .claim_jobs("w", &["webhook"], now(), Duration::from_secs(60), 10)
        .await
        .unwrap();
    let mut keys: Vec<_> = claimed.iter().map(|j| j.idempotency_key.as_str()).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        vec!["a", "b"],
        "the notify_creditor job is not a webhook"
    );
}

async fn concurrent_claimers_never_get_the_same_job(store: Arc<dyn Store>) {
    let (cred, conn) = creditor(&store, "A").await;
    let keys: Vec<String> = (0..60).map(|i| format!("job-{i}")).collect();
    enqueue(&store, &cred, &conn, &keys).await;
    let mut claimers = Vec::new();
    for worker in 0..4 {
        let store = store.clone();
        claimers.push(tokio::spawn(async move {
            let owner = format!("worker-{worker}");
            let mut mine = Vec::new();
            loop {
                let claimed = store
                    .claim_jobs(&owner, KINDS, now(), Duration::from_secs(60), 3)
                    .await
                    .expect("claim");
                if claimed.is_empty() {
                    break;
                }
                for job in claimed {
                    assert_eq!(job.lease_owner.as_deref(), Some(owner.as_str()));
                    mine.push(job.idempotency_key);
                }
                tokio::task::yield_now().await;
            }
            mine
        }));
    }
    let mut all = Vec::new();
    for claimer in claimers {
        all.extend(claimer.await.unwrap());
    }
    let unique: HashSet<_> = all.iter().cloned().collect();
    assert_eq!(all.len(), unique.len(), "a job was claimed twice");
    assert_eq!(unique.len(), 60, "every job was claimed");
}

async fn an_expired_job_lease_can_be_claimed_again_and_the_old_owner_loses_it(
    store: Arc<dyn Store>,
) {
    let (cred, conn) = creditor(&store, "A").await;
    enqueue(&store, &cred, &conn, &["only".into()]).await;
    let lease = Duration::from_secs(30);
    let first = store
        .claim_jobs("a", KINDS, now(), lease, 10)
        .await
        .unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].attempts, 1);
    let during = now() + chrono::Duration::seconds(29);
    assert!(
        store
            .claim_jobs("b", KINDS, during, lease, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let after = now() + chrono::Duration::seconds(30);
    let second = store
        .claim_jobs("b", KINDS, after, lease, 10)
        .await
        .unwrap();
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].attempts, 2);
    let lost = store
        .finish_job(&first[0].id, "a", &JobOutcome::Succeeded, after)
        .await
        .unwrap();
    assert!(!lost, "the old owner's lease is gone");
    let done = store
        .finish_job(&second[0].id, "b", &JobOutcome::Succeeded, after)
        .await
        .unwrap();
    assert!(done);
    let jobs = store.jobs(&cred).await.unwrap();
    assert_eq!(jobs[0].state, JobState::Succeeded);
    assert_eq!(jobs[0].lease_owner, None);
}

async fn a_retried_job_waits_for_its_time_and_a_dead_one_is_never_claimed(store: Arc<dyn Store>) {
    let (cred, conn) = creditor(&store, "A").await;
    enqueue(&store, &cred, &conn, &["retry".into(), "dead".into()]).await;
    let lease = Duration::from_secs(60);
    let claimed = store
        .claim_jobs("w", KINDS, now(), lease, 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 2);
    let retry_at = now() + chrono::Duration::minutes(5);
    for job in &claimed {
        let outcome = if job.idempotency_key == "retry" {
            JobOutcome::Retry {
                run_after: retry_at,
                error: "503 from the agency".into(),
            }
        } else {
            JobOutcome::Dead {
                error: "422: rejected".into(),
            }
        };
        assert!(
            store
                .finish_job(&job.id, "w", &outcome, now())
                .await
                .unwrap()
        );
    }
    let early = retry_at - chrono::Duration::seconds(1);
    assert!(
        store
            .claim_jobs("w", KINDS, early, lease, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let again = store
        .claim_jobs("w", KINDS, retry_at, lease, 10)
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].idempotency_key, "retry");
    assert_eq!(again[0].last_error.as_deref(), Some("503 from the agency"));
    let jobs = store.jobs(&cred).await.unwrap();
    let dead = jobs.iter().find(|j| j.idempotency_key == "dead").unwrap();
    assert_eq!(dead.state, JobState::Dead);
    assert_eq!(dead.last_error.as_deref(), Some("422: rejected"));
}

async fn a_named_lease_has_one_holder_until_released_or_expired(store: Arc<dyn Store>) {
    let ttl = Duration::from_secs(60);
    assert!(
        store
            .acquire_lease("poll:conn_1", "a", now(), ttl)
            .await
            .unwrap()
    );
    assert!(
        !store
            .acquire_lease("poll:conn_1", "b", now(), ttl)
            .await
            .unwrap()
    );
    // The holder renews.
    assert!(
        store
            .acquire_lease("poll:conn_1", "a", now(), ttl)
            .await
            .unwrap()
    );
    // Released: free at once.
    store.release_lease("poll:conn_1", "a").await.unwrap();
    assert!(
        store
            .acquire_lease("poll:conn_1", "b", now(), ttl)
            .await
            .unwrap()
    );
    // Expired: free for another.
    let later = now() + chrono::Duration::seconds(60);
    assert!(
        !store
            .acquire_lease(
                "poll:conn_1",
                "a",
                later - chrono::Duration::seconds(1),
                ttl
            )
            .await
            .unwrap()
    );
    assert!(
        store
            .acquire_lease("poll:conn_1", "a", later, ttl)
            .await
            .unwrap()
    );
    // Releasing a lease one does not hold changes nothing.
    store.release_lease("poll:conn_1", "b").await.unwrap();
    assert!(
        !store
            .acquire_lease("poll:conn_1", "b", later, ttl)
            .await
            .unwrap()
    );
}

async fn releasing_everything_of_an_instance_frees_its_leases_and_jobs_at_once(
    store: Arc<dyn Store>,
) {
    let (cred, conn) = creditor(&store, "A").await;
    enqueue(&store, &cred, &conn, &["j".into()]).await;
    let ttl = Duration::from_secs(600);
    assert!(
        store
            .acquire_lease("tick:cred", "instance-1", now(), ttl)
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .claim_jobs("instance-1", KINDS, now(), ttl, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    store.release_everything_of("instance-1").await.unwrap();
    assert!(
        store
            .acquire_lease("tick:cred", "instance-2", now(), ttl)
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .claim_jobs("instance-2", KINDS, now(), ttl, 10)
            .await
            .unwrap()
            .len(),
        1
    );
}

async fn customers_upsert_idempotently_and_invoices_find_a_customer_that_arrives_later(
    store: Arc<dyn Store>,
) {
    let (cred, conn) = creditor(&store, "A").await;
    let id = store
        .upsert_invoice(
            &cred,
            &conn,
            &invoice("1001", "1250.00"),
            EventSource::Poll,
            now(),
        )
        .await
        .unwrap()
        .id;
    assert_eq!(
        store
            .invoice(&cred, &id)
            .await
            .unwrap()
            .unwrap()
            .customer_id,
        None
    );
    let facts = CustomerFacts {
        platform_id: "C1".into(),
        kind: CustomerKind::Business,
        name: "Nordlys Bakeri AS".into(),
        organisation_number: Some("923609016".into()),
        national_id: None,
        email: Some("post@nordlys.example".into()),
        postal_address: None,
        platform_dunning: false,
    };
    let first = store.upsert_customer(&cred, &conn, &facts).await.unwrap();
    assert_eq!(first.written, Written::Created);
    let again = store.upsert_customer(&cred, &conn, &facts).await.unwrap();
    assert_eq!(again.written, Written::Unchanged);
    let mut renamed = facts.clone();
    renamed.name = "Nordlys Bakeri og Kafé AS".into();
    assert_eq!(
        store
            .upsert_customer(&cred, &conn, &renamed)
            .await
            .unwrap()
            .written,
        Written::Changed
    );
    let customer = store.customer(&cred, &first.id).await.unwrap().unwrap();
    assert_eq!(customer.facts, renamed);
    assert!(!customer.opt_out);
    store
        .set_customer_opt_out(&cred, &first.id, true)
        .await
        .unwrap();
    assert!(
        store
            .customer(&cred, &first.id)
            .await
            .unwrap()
            .unwrap()
            .opt_out
    );
    let linked = store.invoice(&cred, &id).await.unwrap().unwrap();
    assert_eq!(linked.customer_id, Some(first.id));
}

async fn opting_out_an_invoice_writes_one_event_per_change(store: Arc<dyn Store>) {
    let (cred, conn) = creditor(&store, "A").await;
    let id = store
        .upsert_invoice(
            &cred,
            &conn,
            &invoice("1001", "1250.00"),
            EventSource::Poll,
            now(),
        )
        .await
        .unwrap()
        .id;
    store
        .set_invoice_opt_out(&cred, &id, true, EventSource::Api, now())
        .await
        .unwrap();
    store
        .set_invoice_opt_out(&cred, &id, true, EventSource::Api, now())
        .await
        .unwrap();
    assert!(store.invoice(&cred, &id).await.unwrap().unwrap().opt_out);
    store
        .set_invoice_opt_out(&cred, &id, false, EventSource::Api, now())
        .await
        .unwrap();
    let kinds: Vec<_> = store
        .invoice_events(&cred, &id)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(kinds, ["created", "opted_out", "opted_in"]);
}

async fn a_connection_of_an_unknown_creditor_is_refused_and_its_status_can_be_set(
    store: Arc<dyn Store>,
) {
    let err = store
        .create_connection(
            &CreditorId::from("cred_nobody"),
            &ConnectionId::generate(),
            "tripletex",
            &SealedCredentials(vec![]),
            now(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err}");
    let (cred, conn) = creditor(&store, "A").await;
    store
        .set_connection_status(
            &cred,
            &conn,
            ConnectionStatus::Failing,
            Some("503 from Tripletex"),
        )
        .await
        .unwrap();
    let connection = store.connection(&cred, &conn).await.unwrap().unwrap();
    assert_eq!(connection.status, ConnectionStatus::Failing);
    assert_eq!(connection.last_error.as_deref(), Some("503 from Tripletex"));
    assert_eq!(connection.credentials, SealedCredentials(vec![1, 2, 3]));
}

fn chained(key: &str, chain: &str) -> NewJob {
    NewJob {
        chain: Some(chain.into()),
        ..job(key)
    }
}

async fn a_chained_job_waits_until_every_earlier_job_of_its_chain_has_succeeded(
    store: Arc<dyn Store>,
) {
    let (cred, _) = creditor(&store, "A").await;
    let jobs = [
        (cred.clone(), chained("transfer", "case-1")),
        (cred.clone(), chained("withdraw", "case-1")),
        (cred.clone(), job("independent")),
    ];
    store.enqueue_jobs(&jobs, now()).await.unwrap();
    let lease = Duration::from_secs(60);
    let claimed = store
        .claim_jobs("w", KINDS, now(), lease, 10)
        .await
        .unwrap();
    let keys: HashSet<_> = claimed.iter().map(|j| j.idempotency_key.as_str()).collect();
    assert_eq!(keys, HashSet::from(["transfer", "independent"]));
    let transfer = claimed
        .iter()
        .find(|j| j.idempotency_key == "transfer")
        .unwrap();
    // Failing keeps the chain blocked; a dead letter too.
    let retry = JobOutcome::Retry {
        run_after: now(),
        error: "503".into(),
    };
    store
        .finish_job(&transfer.id, "w", &retry, now())
        .await
        .unwrap();
    let again = store
        .claim_jobs("w", KINDS, now(), lease, 10)
        .await
        .unwrap();
    assert_eq!(
        again
            .iter()
            .map(|j| j.idempotency_key.as_str())
            .collect::<Vec<_>>(),
        vec!["transfer"],
        "the withdraw waits behind its transfer"
    );
    store
        .finish_job(&again[0].id, "w", &JobOutcome::Succeeded, now())
        .await
        .unwrap();
    let next = store
        .claim_jobs("w", KINDS, now(), lease, 10)
        .await
        .unwrap();
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].idempotency_key, "withdraw");
    assert_eq!(next[0].chain.as_deref(), Some("case-1"));
}

async fn every_attempt_is_kept_and_a_deferral_gives_its_attempt_back(store: Arc<dyn Store>) {
    let (cred, _) = creditor(&store, "A").await;
    store.enqueue_job(&cred, &job("k"), now()).await.unwrap();
    let lease = Duration::from_secs(60);
    let first = store
        .claim_jobs("w", KINDS, now(), lease, 1)
        .await
        .unwrap()
        .remove(0);
    assert_eq!(first.attempts, 1);
    store
        .finish_jobs(
            "w",
            &[(
                first.id.clone(),
                JobOutcome::Defer {
                    run_after: now(),
                    reason: "tomorrow".into(),
                },
            )],
            now(),
        )
        .await
        .unwrap();
    let second = store
        .claim_jobs("w", KINDS, now(), lease, 1)
        .await
        .unwrap()
        .remove(0);
    assert_eq!(second.attempts, 1, "a deferral is not an attempt");
    store
        .save_checkpoint(&second.id, "w", &serde_json::json!({ "seen": "1250.00" }))
        .await
        .unwrap();
    store
        .finish_job(
            &second.id,
            "w",
            &JobOutcome::Dead {
                error: "422".into(),
            },
            now(),
        )
        .await
        .unwrap();
    let attempts = store.job_attempts(&first.id).await.unwrap();
    let outcomes: Vec<_> = attempts.iter().map(|a| a.outcome.as_str()).collect();
    assert_eq!(outcomes, vec!["deferred", "dead"]);
    assert_eq!(attempts[1].error.as_deref(), Some("422"));
    let job = store.job(&first.id).await.unwrap().unwrap();
    assert_eq!(job.state, JobState::Dead);
    assert_eq!(
        job.checkpoint,
        Some(serde_json::json!({ "seen": "1250.00" }))
    );
}

async fn a_dead_letter_retried_by_hand_runs_again_with_fresh_attempts(store: Arc<dyn Store>) {
    let (cred, _) = creditor(&store, "A").await;
    store.enqueue_job(&cred, &job("k"), now()).await.unwrap();
    let lease = Duration::from_secs(60);
    let claimed = store
        .claim_jobs("w", KINDS, now(), lease, 1)
        .await
        .unwrap()
        .remove(0);
    let dead = JobOutcome::Dead {
        error: "gave up".into(),
    };
    store
        .finish_job(&claimed.id, "w", &dead, now())
        .await
        .unwrap();
    let dead_letters = store.list_jobs(Some(JobState::Dead), 10).await.unwrap();
    assert_eq!(dead_letters.len(), 1);
    assert!(
        store
            .claim_jobs("w", KINDS, now(), lease, 1)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(store.retry_job(&claimed.id, now()).await.unwrap());
    let again = store.claim_jobs("w", KINDS, now(), lease, 1).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempts, 1);
    assert!(
        !store.retry_job(&claimed.id, now()).await.unwrap(),
        "a running job is not retried"
    );
}

async fn a_case_is_opened_once_per_transfer_key_and_counts_its_generation(store: Arc<dyn Store>) {
    let (cred, conn) = creditor(&store, "A").await;
    let invoice = store
        .upsert_invoice(
            &cred,
            &conn,
            &invoice("C1", "1250.00"),
            EventSource::Poll,
            now(),
        )
        .await
        .unwrap()
        .id;
    let new = |key: &str| NewCase {
        invoice_id: invoice.clone(),
        transfer_key: key.into(),
        amount: Money::new(nok("1250.00"), Currency::NOK).unwrap(),
        transfer_on: day("2026-11-28"),
        free_withdrawal_until: day("2026-12-08"),
        first_reminder_on: day("2026-12-03"),
    };
    let first = store
        .open_case(&cred, &new("transfer:1"), now())
        .await
        .unwrap();
    let again = store
        .open_case(&cred, &new("transfer:1"), now())
        .await
        .unwrap();
    assert_eq!(first, again);
    assert_eq!(first.generation, 1);
    assert_eq!(first.state, CaseState::Open);
    store
        .set_case_state(&cred, &first.id, CaseState::Withdrawn)
        .await
        .unwrap();
    let second = store
        .open_case(&cred, &new("transfer:2"), now())
        .await
        .unwrap();
    assert_eq!(second.generation, 2);
    assert_eq!(
        store.latest_case(&cred, &invoice).await.unwrap(),
        Some(second.clone())
    );
    assert_eq!(store.find_case(&second.id).await.unwrap(), Some(second));
}

async fn a_pulled_message_is_offered_until_acknowledged_and_a_second_ack_is_harmless(
    store: Arc<dyn Store>,
) {
    let (cred, conn) = creditor(&store, "A").await;
    let invoice = store
        .upsert_invoice(
            &cred,
            &conn,
            &invoice("P1", "1250.00"),
            EventSource::Poll,
            now(),
        )
        .await
        .unwrap()
        .id;
    let case = store
        .open_case(
            &cred,
            &NewCase {
                invoice_id: invoice,
                transfer_key: "transfer:p".into(),
                amount: Money::new(nok("1250.00"), Currency::NOK).unwrap(),
                transfer_on: day("2026-11-28"),
                free_withdrawal_until: day("2026-12-08"),
                first_reminder_on: day("2026-12-03"),
            },
            now(),
        )
        .await
        .unwrap();
    let body = serde_json::json!({ "type": "case.transfer" });
    for id in ["m1", "m2", "m1"] {
        store
            .record_pipeline_message(&cred, &case.id, id, "case.transfer", &body, false, now())
            .await
            .unwrap();
    }
    let waiting = store.unacknowledged_messages(0, 10).await.unwrap();
    assert_eq!(
        waiting.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(),
        vec!["m1", "m2"]
    );
    assert_eq!(
        store.acknowledge_message("m1", now()).await.unwrap(),
        Some(true)
    );
    assert_eq!(
        store.acknowledge_message("m1", now()).await.unwrap(),
        Some(false)
    );
    assert_eq!(
        store.acknowledge_message("nope", now()).await.unwrap(),
        None
    );
    let waiting = store.unacknowledged_messages(0, 10).await.unwrap();
    assert_eq!(waiting.len(), 1);
    assert_eq!(waiting[0].id, "m2");
    assert_eq!(store.pipeline_messages(&cred).await.unwrap().len(), 2);
}

async fn one_digest_per_creditor_kind_and_day_is_recorded_with_the_jobs_it_covered(
    store: Arc<dyn Store>,
) {
    let (cred, _) = creditor(&store, "A").await;
    store.enqueue_job(&cred, &job("mail"), now()).await.unwrap();
    let lease = Duration::from_secs(60);
    let claimed = store.claim_jobs("w", KINDS, now(), lease, 1).await.unwrap();
    let ids: Vec<_> = claimed.iter().map(|j| j.id.clone()).collect();
    let today = day("2026-11-23");
    assert!(
        !store
            .notification_sent(&cred, "warning", today)
            .await
            .unwrap()
    );
    assert!(
        store
            .record_notification("w", &ids, &cred, "warning", today, "warning.x", 1, now())
            .await
            .unwrap()
    );
    assert!(
        store
            .notification_sent(&cred, "warning", today)
            .await
            .unwrap()
    );
    assert_eq!(
        store.job(&ids[0]).await.unwrap().unwrap().state,
        JobState::Succeeded
    );
    assert!(
        !store
            .record_notification("w", &[], &cred, "warning", today, "warning.x", 1, now())
            .await
            .unwrap(),
        "a second digest of the day is refused"
    );
}

async fn an_agency_event_applied_twice_writes_nothing_the_second_time(store: Arc<dyn Store>) {
    let (cred, conn) = creditor(&store, "A").await;
    let id = store
        .upsert_invoice(
            &cred,
            &conn,
            &invoice("E1", "1250.00"),
            EventSource::Poll,
            now(),
        )
        .await
        .unwrap()
        .id;
    let with_event = |jobs| LifecycleUpdate {
        agency_event: Some(AgencyEventSeen {
            id: "evt_1".into(),
            case_id: "case_1".into(),
            kind: "payment.received".into(),
        }),
        ..update(Stage::Closed, None, jobs)
    };
    let version = store.invoice(&cred, &id).await.unwrap().unwrap().version;
    store
        .save_lifecycle(&cred, &id, version, &with_event(vec![job("pay-1")]), now())
        .await
        .unwrap();
    let version = store.invoice(&cred, &id).await.unwrap().unwrap().version;
    let replay = store
        .save_lifecycle(&cred, &id, version, &with_event(vec![job("pay-2")]), now())
        .await;
    assert!(
        matches!(replay, Err(StoreError::AlreadyApplied(_))),
        "{replay:?}"
    );
    let keys: Vec<_> = store
        .jobs(&cred)
        .await
        .unwrap()
        .into_iter()
        .map(|j| j.idempotency_key)
        .collect();
    assert_eq!(keys, vec!["pay-1"]);
    assert_eq!(
        store.invoice(&cred, &id).await.unwrap().unwrap().version,
        version,
        "the replay changed nothing"
    );
}
