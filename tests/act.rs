//! Acting durably, end to end with the fakes: an overdue Tripletex invoice becomes a warning
//! e-mail, then after five days one case at the agency (through 503s and a duplicate delivery),
//! and the agency's payment becomes one payment in Tripletex. A stop reaches the agency as a
//! free or a charged withdrawal. The clock is manual: each simulated day runs the day tick and
//! the workers until nothing is left to do.

mod common;
mod ingest;

use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDate;
use forfall::api::metrics::Metrics;
use forfall::clock::Clock;
use forfall::domain::{CreditorId, Invoice, JobState, Stage};
use forfall::jobs::workers::{WorkerSettings, Workers, workers};
use forfall::jobs::{RetryPolicy, RunnerSettings};
use forfall::notify::{Mailer, SmtpCapture, SmtpSettings};
use forfall::pipeline::case::AgencyEvent;
use forfall::pipeline::forward::Sink;
use forfall::pipeline::{AgencyFault, FakeAgency, PushClient, PushSettings};
use forfall::store::Store;
use forfall_connector::standard_webhooks::Secret;
use forfall_tripletex::fake::{FakeTripletex, NewCustomer, NewInvoice};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;

use ingest::{World, tripletex};

on_both_backends!(
    an_overdue_invoice_is_warned_then_transferred_once_and_its_collected_payment_lands_once_in_tripletex,
    a_stop_within_ten_days_is_a_free_withdrawal_and_after_them_a_charged_one,
    a_case_held_released_and_held_again_on_one_day_reaches_the_agency_as_three_messages,
    a_payment_whose_answer_tripletex_lost_is_registered_once_not_again_by_a_blind_retry,
    a_digest_another_instance_is_sending_waits_for_it_instead_of_going_out_under_the_same_message_id,
    in_weekly_list_mode_the_creditor_gets_the_list_then_the_listed_invoices_transfer_at_the_cutoff,
);

struct Act {
    world: World,
    fake: FakeTripletex,
    agency: FakeAgency,
    mail: SmtpCapture,
    workers: Workers,
    gateway: ingest::Gateway,
}

fn day(text: &str) -> NaiveDate {
    text.parse().expect("date")
}

/// A creditor with an e-mail address, Tripletex (no seeded invoices), the agency, SMTP capture,
/// the workers, and the gateway serving `/pipeline/events`.
async fn act(store: Arc<dyn Store>) -> Act {
    let (world, fake) = tripletex(store.clone(), 0, serde_json::json!({})).await;
    let secret = Secret::generate();
    let agency = FakeAgency::start(
        tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
        secret.clone(),
    )
    .await
    .unwrap();
    let mail = SmtpCapture::start(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap())
        .await
        .unwrap();
    let push = PushClient::new(PushSettings {
        url: agency.url(),
        secret: secret.clone(),
        timeout: Duration::from_millis(500),
    })
    .unwrap();
    let mailer = Mailer::new(&SmtpSettings {
        url: mail.url(),
        from: "Forfall <forfall@localhost>".into(),
        timeout: Duration::from_secs(5),
    })
    .unwrap();
    let workers = workers(
        store.clone(),
        world.clock.clone(),
        world.ingest.clone(),
        "test-instance".into(),
        WorkerSettings {
            sink: Some(Sink::Push(push)),
            agency_in_flight: 8,
            mailer: Some(mailer),
            opt_out_hint: Some(forfall::notify::API_OPT_OUT_HINT.to_owned()),
            runner: RunnerSettings {
                retry: RetryPolicy::default(),
                ..RunnerSettings::default()
            },
            day_tick_at: chrono::NaiveTime::from_hms_opt(6, 0, 0).unwrap(),
            tick_every: Duration::from_secs(3600),
        },
    );
    let gateway = ingest::Gateway::start_with(&world, Some(secret)).await;
    Act {
        world,
        fake,
        agency,
        mail,
        workers,
        gateway,
    }
}

impl Act {
    fn creditor(&self) -> &CreditorId {
        &self.world.creditor
    }

    /// An invoice of 1 250 NOK issued on 2026-10-20, due 2026-11-03: overdue on the test's today.
    fn overdue_invoice(&self) -> i64 {
        let customer = self.fake.add_customer(NewCustomer {
            name: "Fjordkraft Kantine AS".into(),
            organization_number: Some("914778271".into()),
            ..NewCustomer::default()
        });
        self.fake
            .add_invoice(NewInvoice::new(customer, day("2026-10-20"), dec!(1250.00)))
            .unwrap()
    }

    async fn stored(&self, platform_id: i64) -> Invoice {
        self.world
            .store
            .invoice_by_platform_id(
                self.creditor(),
                &self.world.connection,
                &platform_id.to_string(),
            )
            .await
            .unwrap()
            .expect("the invoice is stored")
    }

    /// Moves the clock by `step`, then runs the day tick and the workers until nothing is
    /// runnable. (The fake's own today stays: Tripletex checks session expiry dates against the
    /// real date, which a simulated clock does not move.)
    async fn advance(&self, step: chrono::Duration) {
        self.world.clock.advance(step);
        self.workers.tick.run_due().await.unwrap();
        self.workers.runner.drain().await.unwrap();
    }

    async fn sync(&self) {
        self.world
            .ingest
            .run_pass(&self.world.connection, false, None, &|_| {})
            .await
            .unwrap();
        self.workers.tick.run_due().await.unwrap();
        self.workers.runner.drain().await.unwrap();
    }

    /// The agency reports `amount` collected on case `case_id` (paid on 2026-12-03) under the
    /// event id `id`; the gateway's status.
    async fn agency_collected(&self, id: &str, case_id: &str, amount: Decimal) -> u16 {
        let event = AgencyEvent::PaymentReceived {
            case_id: case_id.into(),
            amount,
            currency: "NOK".into(),
            paid_on: day("2026-12-03"),
        };
        self.agency
            .send_event_with_id(&self.gateway.base, id, &event)
            .await
            .unwrap()
    }

    async fn stop(self) {
        self.gateway.stop().await;
    }
}

fn payments_registered(fake: &FakeTripletex, id: i64) -> usize {
    fake.requests()
        .iter()
        .filter(|r| r.method == "PUT" && r.path == format!("/v2/invoice/{id}/:payment"))
        .count()
}

fn outstanding_on_platform(fake: &FakeTripletex, id: i64) -> Decimal {
    let invoice = fake
        .invoices()
        .into_iter()
        .find(|i| i["id"] == serde_json::json!(id))
        .expect("the fake has the invoice");
    ingest::decimal(&invoice["amountOutstanding"])
}

async fn an_overdue_invoice_is_warned_then_transferred_once_and_its_collected_payment_lands_once_in_tripletex(
    store: Arc<dyn Store>,
) {
    let act = act(store).await;
    let id = act.overdue_invoice();
    act.sync().await;

    // Today (2026-11-23) the warning: one e-mail, naming the invoice and the transfer date.
    let invoice = act.stored(id).await;
    assert_eq!(invoice.stage, Stage::Noticed);
    let mails = act.mail.messages();
    assert_eq!(mails.len(), 1, "one warning e-mail");
    assert!(mails[0].to.iter().any(|to| to == "faktura@nordlys.example"));
    // It says how to opt out, through the creditor API, for this creditor.
    let opt_out = format!("/v1/creditors/{}/invoices", act.creditor());
    assert!(
        mails[0].body.replace("=\r\n", "").contains(&opt_out),
        "{}",
        mails[0].body
    );
    assert!(
        mails[0].subject.contains("28.11.2026"),
        "{}",
        mails[0].subject
    );
    assert!(
        mails[0].body.contains(&invoice.facts.number),
        "{}",
        mails[0].body
    );
    assert!(act.agency.cases().is_empty());

    // The agency is down for two days from the transfer day, and its first answer after that
    // comes too late: Forfall retries and delivers again (a duplicate, never a second case).
    act.agency.answer(AgencyFault::Unavailable, 10_000);
    for _ in 0..5 {
        act.advance(chrono::Duration::days(1)).await;
    }
    assert_eq!(act.stored(id).await.stage, Stage::Transferred);
    assert!(act.agency.cases().is_empty(), "the agency answered 503");
    for _ in 0..48 {
        act.advance(chrono::Duration::hours(1)).await;
    }
    assert!(act.agency.cases().is_empty());
    act.agency.clear_faults();
    act.agency
        .answer(AgencyFault::Slow(Duration::from_millis(900)), 1);
    for _ in 0..72 {
        act.advance(chrono::Duration::hours(1)).await;
        if act.agency.duplicates() > 0 {
            break;
        }
    }
    let cases = act.agency.cases();
    assert_eq!(cases.len(), 1, "one case at the agency");
    assert!(
        act.agency.duplicates() >= 1,
        "the slow answer was delivered again"
    );
    let transfer = cases[0].transfer.clone().expect("the case.v1 document");
    assert_eq!(transfer["schema"], "case.v1");
    assert_eq!(transfer["invoice"]["outstanding"], "1250.00");
    assert_eq!(transfer["transfer_on"], "2026-11-28");
    assert_eq!(transfer["free_withdrawal_until"], "2026-12-08");
    assert_eq!(transfer["warnings"][0]["kind"], "notice");
    let jobs = act.world.store.jobs(act.creditor()).await.unwrap();
    assert!(
        jobs.iter().all(|j| j.state == JobState::Succeeded),
        "every job done: {:?}",
        jobs.iter()
            .map(|j| (&j.idempotency_key, j.state))
            .collect::<Vec<_>>()
    );
    // The transfer notice went out as its own digest.
    assert!(
        act.mail
            .messages()
            .iter()
            .any(|m| m.body.contains("2026") && m.subject != act.mail.messages()[0].subject),
        "a transfer notice e-mail"
    );

    // The agency collects everything: one payment registered in Tripletex, even when the event
    // is delivered twice.
    let case_id = cases[0].case_id.clone();
    let status = act
        .agency_collected("evt_pay_1", &case_id, dec!(1250.00))
        .await;
    assert_eq!(status, 202);
    let replay = act
        .agency_collected("evt_pay_1", &case_id, dec!(1250.00))
        .await;
    assert_eq!(replay, 200, "a replayed event is acknowledged, not applied");
    // Replayed with a body that no longer fits (another case): still only acknowledged.
    let replay = act
        .agency_collected("evt_pay_1", "case_nope", dec!(1250.00))
        .await;
    assert_eq!(
        replay, 200,
        "the id was applied once; the new body is not looked at"
    );
    act.advance(chrono::Duration::minutes(1)).await;
    assert_eq!(payments_registered(&act.fake, id), 1);
    assert_eq!(outstanding_on_platform(&act.fake, id), Decimal::ZERO);
    assert_eq!(act.stored(id).await.stage, Stage::Closed);
    // Partners hear of the registered payment once, however often the event was delivered.
    let synced = act
        .world
        .store
        .events_of(
            &forfall::domain::Owner::Creditor(act.creditor().clone()),
            &forfall::store::EventFilter {
                event_type: Some("payment.synced".into()),
                ..Default::default()
            },
            10,
        )
        .await
        .unwrap();
    assert_eq!(synced.len(), 1, "{synced:?}");
    assert_eq!(synced[0].data["amount"], "1250.00");
    assert_eq!(synced[0].data["paid_on"], "2026-12-03");

    // The next poll sees the payment Forfall wrote: not a payment to the creditor.
    act.sync().await;
    assert!(
        !act.agency
            .messages()
            .iter()
            .any(|m| m.kind == "case.paid_directly"),
        "the written-back payment is not mistaken for a direct one"
    );
    assert_eq!(payments_registered(&act.fake, id), 1);
    act.stop().await;
}

async fn a_payment_whose_answer_tripletex_lost_is_registered_once_not_again_by_a_blind_retry(
    store: Arc<dyn Store>,
) {
    let act = act(store).await;
    let id = act.overdue_invoice();
    act.sync().await;
    for _ in 0..5 {
        act.advance(chrono::Duration::days(1)).await;
    }
    let cases = act.agency.cases();
    assert_eq!(cases.len(), 1);
    // Tripletex registers the payment, but its answer is lost on the way (a 502 instead). It
    // takes no idempotency key: sending the PUT again would pay twice.
    act.fake.inject(forfall_tripletex::fake::Fault::LostAnswer {
        status: 502,
        times: 1,
        path_prefix: Some(format!("/v2/invoice/{id}/:payment")),
    });
    let status = act
        .agency_collected("evt_pay_lost", &cases[0].case_id, dec!(500.00))
        .await;
    assert_eq!(status, 202);
    act.advance(chrono::Duration::minutes(1)).await;
    assert_eq!(payments_registered(&act.fake, id), 1, "no blind retry");
    assert_eq!(outstanding_on_platform(&act.fake, id), dec!(750.00));
    // The job's next attempt reads the invoice, sees the payment there, and writes nothing.
    for _ in 0..24 {
        act.advance(chrono::Duration::hours(1)).await;
    }
    assert_eq!(payments_registered(&act.fake, id), 1);
    assert_eq!(outstanding_on_platform(&act.fake, id), dec!(750.00));
    let jobs = act.world.store.jobs(act.creditor()).await.unwrap();
    let payment = jobs
        .iter()
        .find(|j| j.idempotency_key.starts_with("payment:"))
        .expect("the payment job");
    assert_eq!(payment.state, JobState::Succeeded);
    assert!(payment.attempts >= 2, "the lost answer cost an attempt");
    act.stop().await;
}

async fn a_stop_within_ten_days_is_a_free_withdrawal_and_after_them_a_charged_one(
    store: Arc<dyn Store>,
) {
    let act = act(store).await;
    let early = act.overdue_invoice();
    let late = act.overdue_invoice();
    act.sync().await;
    for _ in 0..5 {
        act.advance(chrono::Duration::days(1)).await;
    }
    assert_eq!(act.agency.cases().len(), 2);
    let stop = |id: i64| {
        let act = &act;
        async move {
            let invoice = act.stored(id).await;
            forfall::actions::apply(
                act.world.store.as_ref(),
                act.world.clock.as_ref(),
                act.creditor(),
                &invoice.id,
                &forfall::lifecycle::Event::Stop,
            )
            .await
            .unwrap();
            act.workers.runner.drain().await.unwrap();
        }
    };
    // Day 10 after the transfer (2026-12-08) is the last free one.
    for _ in 0..10 {
        act.advance(chrono::Duration::days(1)).await;
    }
    stop(early).await;
    act.advance(chrono::Duration::days(1)).await;
    stop(late).await;

    let withdrawal = |id: i64| {
        act.agency
            .cases()
            .into_iter()
            .find(|c| {
                c.transfer.as_ref().expect("transferred")["invoice"]["platform_id"]
                    == serde_json::json!(id.to_string())
            })
            .expect("the invoice's case")
    };
    let early_case = withdrawal(early);
    let late_case = withdrawal(late);
    assert_eq!(early_case.messages, vec!["case.transfer", "case.withdraw"]);
    assert_eq!(
        early_case.withdrawn_charged,
        Some(false),
        "free within ten days"
    );
    assert_eq!(
        late_case.withdrawn_charged,
        Some(true),
        "charged after them"
    );
    let _ = Metrics::default();
    act.stop().await;
}

async fn a_case_held_released_and_held_again_on_one_day_reaches_the_agency_as_three_messages(
    store: Arc<dyn Store>,
) {
    let act = act(store).await;
    let id = act.overdue_invoice();
    act.sync().await;
    for _ in 0..5 {
        act.advance(chrono::Duration::days(1)).await;
    }
    assert_eq!(act.agency.cases().len(), 1);
    let invoice = act.stored(id).await;
    // A full dispute holds the case, narrowing it to a part releases it, and disputing the
    // whole again holds it again: the same day, so alike decisions must not share a key.
    for amount in [None, Some(dec!(1.00)), None] {
        forfall::actions::apply(
            act.world.store.as_ref(),
            act.world.clock.as_ref(),
            act.creditor(),
            &invoice.id,
            &forfall::lifecycle::Event::Dispute { amount },
        )
        .await
        .unwrap();
        act.workers.runner.drain().await.unwrap();
    }
    let case = act.agency.cases().into_iter().next().expect("the case");
    assert_eq!(
        case.messages,
        vec!["case.transfer", "case.hold", "case.release", "case.hold"]
    );
    assert_eq!(act.stored(id).await.stage, Stage::Held);
    let jobs = act.world.store.jobs(act.creditor()).await.unwrap();
    let held_events = jobs
        .iter()
        .filter(|job| job.idempotency_key.starts_with("event.case.held:"))
        .count();
    assert_eq!(held_events, 2, "partners hear of both holds");
    act.stop().await;
}

async fn a_digest_another_instance_is_sending_waits_for_it_instead_of_going_out_under_the_same_message_id(
    store: Arc<dyn Store>,
) {
    let act = act(store).await;
    let lease = format!("digest:{}:warning", act.creditor());
    let now = act.world.clock.now();
    assert!(
        act.world
            .store
            .acquire_lease(&lease, "other-instance", now, Duration::from_secs(120))
            .await
            .unwrap()
    );
    let id = act.overdue_invoice();
    act.sync().await;
    assert_eq!(act.stored(id).await.stage, Stage::Noticed);
    assert!(
        act.mail.messages().is_empty(),
        "no warning while another instance sends the creditor's warning digest"
    );
    let jobs = act.world.store.jobs(act.creditor()).await.unwrap();
    let warning = jobs
        .iter()
        .find(|j| j.idempotency_key.starts_with("email.warning"))
        .expect("the warning's job");
    assert_eq!(warning.state, JobState::Pending);
    assert!(warning.run_after > now, "it waits a little");
    assert_eq!(warning.attempts, 0, "waiting is not a failed attempt");

    act.world
        .store
        .release_lease(&lease, "other-instance")
        .await
        .unwrap();
    act.advance(chrono::Duration::minutes(1)).await;
    let mails = act.mail.messages();
    assert_eq!(
        mails.len(),
        1,
        "the warning goes out once the lease is free"
    );
    assert!(mails[0].body.contains(&act.stored(id).await.facts.number));
    act.stop().await;
}

async fn in_weekly_list_mode_the_creditor_gets_the_list_then_the_listed_invoices_transfer_at_the_cutoff(
    store: Arc<dyn Store>,
) {
    let act = act(store.clone()).await;
    let mut creditor = store.creditor(act.creditor()).await.unwrap().unwrap();
    creditor.policy = serde_json::json!({ "mode": "weekly_list" });
    assert!(store.update_creditor(&creditor).await.unwrap());
    let first = act.overdue_invoice();
    let second = act.overdue_invoice();
    // Monday 2026-11-23: found; the list goes out on the list day (Tuesday), not before.
    act.sync().await;
    assert!(act.mail.messages().is_empty(), "no list before its weekday");
    act.advance(chrono::Duration::days(1)).await;
    let mails = act.mail.messages();
    assert_eq!(mails.len(), 1, "one weekly list for both invoices");
    for id in [first, second] {
        let invoice = act.stored(id).await;
        assert_eq!(invoice.stage, Stage::Listed);
        assert!(
            mails[0].body.contains(&invoice.facts.number),
            "{}",
            mails[0].body
        );
    }
    assert!(
        act.agency.cases().is_empty(),
        "nothing transfers before the cut-off"
    );
    // Wednesday: still waiting; Thursday, the cut-off: both transfer, once each.
    act.advance(chrono::Duration::days(1)).await;
    assert!(
        act.agency.cases().is_empty(),
        "nothing transfers before the cut-off"
    );
    act.advance(chrono::Duration::days(1)).await;
    assert_eq!(act.agency.cases().len(), 2, "{:?}", act.agency.cases());
    for id in [first, second] {
        assert_eq!(act.stored(id).await.stage, Stage::Transferred);
    }
    let dead = store.list_jobs(Some(JobState::Dead), 10).await.unwrap();
    assert!(dead.is_empty(), "{dead:?}");
    act.stop().await;
}
