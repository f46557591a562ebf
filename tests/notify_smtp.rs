//! Creditor e-mail over real SMTP: `Mailer` (lettre) talking to `SmtpCapture` on loopback.

use std::time::Duration;

use chrono::NaiveDate;
use forfall::domain::{Currency, Language};
use forfall::notify::{
    Digest, DigestItem, DigestKind, Mailer, NotifyError, SmtpCapture, SmtpSettings, render,
};
use rust_decimal_macros::dec;
use tokio::net::TcpListener;

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn norwegian_warning() -> Digest {
    let item = |number: &str, customer: &str| DigestItem {
        invoice_number: number.to_owned(),
        customer_name: customer.to_owned(),
        amount: dec!(1250),
        currency: Currency::NOK,
        due: date(2026, 10, 31),
        transfer_on: Some(date(2026, 11, 28)),
        first_reminder_on: None,
        free_withdrawal_until: None,
        note: None,
    };
    Digest {
        kind: DigestKind::Warning,
        creditor_name: "Fjordkraft Rør AS".to_owned(),
        language: Language::Nb,
        day: date(2026, 11, 21),
        items: vec![
            item("10023", "Nordlys Bakeri AS"),
            item("10024", "Ærlig Øl & Å-bryggeri"),
            item("10031", "Kari Hansen"),
        ],
        opt_out_hint: Some("forfall invoices opt-out 10023".to_owned()),
    }
}

async fn start_capture() -> SmtpCapture {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    SmtpCapture::start(listener).await.unwrap()
}

fn mailer_for(capture: &SmtpCapture) -> Mailer {
    Mailer::new(&SmtpSettings {
        url: capture.url(),
        from: "Forfall <forfall@example.com>".to_owned(),
        timeout: Duration::from_secs(10),
    })
    .unwrap()
}

#[tokio::test]
async fn a_norwegian_digest_arrives_with_sender_recipient_subject_body_and_message_id() {
    let capture = start_capture().await;
    assert_eq!(capture.url(), format!("smtp://{}", capture.addr()));
    let mailer = mailer_for(&capture);
    let rendered = render(&norwegian_warning());

    mailer
        .send(
            "Kari Regnskap <kari@fjordkraft.example>",
            &rendered,
            "c-42.warning.2026-11-21",
        )
        .await
        .unwrap();

    let messages = capture.messages();
    assert_eq!(messages.len(), 1);
    let message = &messages[0];
    assert_eq!(message.from, "forfall@example.com");
    assert_eq!(message.to, ["kari@fjordkraft.example"]);
    assert_eq!(message.subject, "3 fakturaer går til inkasso 28.11.2026");
    assert_eq!(rendered.subject, message.subject);
    assert_eq!(
        message.message_id.as_deref(),
        Some("<c-42.warning.2026-11-21@forfall>")
    );
    assert!(message.body.contains("går til inkasso"), "{}", message.body);
    assert!(message.body.contains("Ærlig Øl & Å-bryggeri"));
    assert!(message.body.contains("1\u{a0}250,00\u{a0}kr"));
    assert_eq!(message.body, rendered.text);
    let raw = message.raw.to_ascii_lowercase();
    assert!(
        raw.contains("content-type: text/plain; charset=utf-8"),
        "{raw}"
    );
    capture.shutdown().await;
}

#[tokio::test]
async fn sending_the_same_digest_again_gives_the_same_message_id() {
    let capture = start_capture().await;
    let mailer = mailer_for(&capture);
    let rendered = render(&norwegian_warning());
    for _ in 0..2 {
        mailer
            .send("kari@fjordkraft.example", &rendered, "c 42/warning")
            .await
            .unwrap();
    }
    let ids = capture
        .messages()
        .into_iter()
        .map(|m| m.message_id)
        .collect::<Vec<_>>();
    assert_eq!(ids.len(), 2);
    assert_eq!(ids[0], ids[1]);
    assert_eq!(ids[0].as_deref(), Some("<c=2042=2Fwarning@forfall>"));
}

#[tokio::test]
async fn a_451_is_retryable_and_the_next_send_succeeds() {
    let capture = start_capture().await;
    let mailer = mailer_for(&capture);
    let rendered = render(&norwegian_warning());
    capture.fail_next(1, 451);

    let err = mailer
        .send("kari@fjordkraft.example", &rendered, "c-42.warning")
        .await
        .unwrap_err();
    assert!(matches!(err, NotifyError::Transient(_)), "{err:?}");
    assert!(err.is_retryable());
    assert!(capture.messages().is_empty());

    mailer
        .send("kari@fjordkraft.example", &rendered, "c-42.warning")
        .await
        .unwrap();
    assert_eq!(capture.messages().len(), 1);
}

#[tokio::test]
async fn a_550_is_permanent_and_not_retryable() {
    let capture = start_capture().await;
    let mailer = mailer_for(&capture);
    capture.fail_next(1, 550);

    let err = mailer
        .send(
            "kari@fjordkraft.example",
            &render(&norwegian_warning()),
            "c-42.warning",
        )
        .await
        .unwrap_err();
    assert!(matches!(err, NotifyError::Permanent(_)), "{err:?}");
    assert!(!err.is_retryable());
    assert!(capture.messages().is_empty());
}

#[tokio::test]
async fn a_server_that_is_not_there_is_a_retryable_error() {
    let capture = start_capture().await;
    let mailer = mailer_for(&capture);
    capture.shutdown().await;

    let err = mailer
        .send(
            "kari@fjordkraft.example",
            &render(&norwegian_warning()),
            "c-42.warning",
        )
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
}

#[tokio::test]
async fn a_bad_recipient_address_is_refused_before_connecting_without_echoing_it() {
    let capture = start_capture().await;
    let mailer = mailer_for(&capture);
    let err = mailer
        .send(
            "kari.nordmann at fjordkraft",
            &render(&norwegian_warning()),
            "c-42.warning",
        )
        .await
        .unwrap_err();
    assert!(matches!(err, NotifyError::BadAddress(_)), "{err:?}");
    assert!(!err.is_retryable());
    assert!(!err.to_string().contains("kari.nordmann"), "{err}");
    assert!(capture.messages().is_empty());
}
