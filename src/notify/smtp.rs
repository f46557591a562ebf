//! Delivery of rendered e-mails over SMTP, with `lettre`.
//!
//! A [`Mailer`] is built once from [`SmtpSettings`] and cloned freely (clones share nothing but
//! settings; every delivery opens its own connection). [`Mailer::send`] tells a failure worth
//! retrying ([`NotifyError::is_retryable`]: a 4xx answer, a lost connection, a timeout) from one
//! that is not (a 5xx answer, a bad address).
//!
//! Logs name at most the domain of a recipient, never the whole address or the body.

use std::fmt;
use std::time::Duration;

use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::Rendered;

/// The domain after `forfall` in every Message-ID: `<{id}@forfall>`.
pub const MESSAGE_ID_DOMAIN: &str = "forfall";

/// Message ids longer than this (after making them safe) are replaced by a hash of themselves.
const MAX_MESSAGE_ID_CHARS: usize = 200;

/// Where and how to send e-mail.
#[derive(Clone)]
pub struct SmtpSettings {
    /// The SMTP server:
    /// - `smtp://host:port`: plain, unencrypted SMTP, for a relay on the same machine or network
    ///   (and the [capture server](super::capture::SmtpCapture));
    /// - `smtps://user:pass@host:465`: SMTP over TLS;
    /// - `smtp://user:pass@host:587?tls=required`: SMTP upgraded with STARTTLS, refused without it.
    ///
    /// User and password must be percent-encoded.
    pub url: String,
    /// The sender, e.g. `Forfall <forfall@example.com>`.
    pub from: String,
    /// The longest one delivery may take: connecting, greeting and the whole conversation.
    pub timeout: Duration,
}

impl fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpSettings")
            .field("url", &crate::store::redact_url(&self.url))
            .field("from", &self.from)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Why an e-mail was not sent.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// The SMTP settings (or the message id the caller chose) are wrong; nothing was tried.
    #[error("e-mail settings: {0}")]
    Config(String),
    /// The recipient's address is not an e-mail address.
    #[error("bad e-mail address: {0}")]
    BadAddress(String),
    /// The server could not take the message now (4xx), or could not be reached in time; try
    /// again later.
    #[error("e-mail not sent, try again later: {0}")]
    Transient(String),
    /// The server refused the message for good (5xx); sending it again will not help.
    #[error("e-mail refused: {0}")]
    Permanent(String),
}

impl NotifyError {
    /// Whether sending the same e-mail again later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, NotifyError::Transient(_))
    }
}

/// Sends rendered e-mails to creditors. Cheap to clone.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    timeout: Duration,
}

impl fmt::Debug for Mailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mailer")
            .field("from", &self.from.to_string())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Mailer {
    /// Checks the settings and prepares the transport. Connects to nothing yet.
    pub fn new(settings: &SmtpSettings) -> Result<Mailer, NotifyError> {
        let url = crate::store::redact_url(&settings.url);
        let builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(&settings.url)
            .map_err(|e| NotifyError::Config(format!("SMTP URL `{url}`: {e}")))?;
        let from = settings.from.parse::<Mailbox>().map_err(|e| {
            NotifyError::Config(format!(
                "sender `{}` is not an e-mail address ({e}); write it like \
                 `Forfall <forfall@example.com>`",
                settings.from
            ))
        })?;
        if settings.timeout.is_zero() {
            return Err(NotifyError::Config(
                "the SMTP timeout must be more than zero".to_owned(),
            ));
        }
        if is_plain_to_a_remote_host(&settings.url) {
            tracing::warn!(
                smtp = %url,
                "e-mail goes unencrypted to a host that is not this machine; use smtps:// or \
                 ?tls=required unless the network between is trusted"
            );
        }
        Ok(Mailer {
            transport: builder.timeout(Some(settings.timeout)).build(),
            from,
            timeout: settings.timeout,
        })
    }

    /// Sends one e-mail to `to` (`name@domain` or `Name <name@domain>`).
    ///
    /// `message_id` identifies the digest, e.g. `{creditor}.{kind}.{day}`; the same id gives the
    /// same `Message-ID` header, `<{id}@forfall>`, so a digest sent again is recognisable as the
    /// same message. Characters other than ASCII letters, digits, `-`, `_` and `.` are written as
    /// `=XX` (their UTF-8 bytes in hex), and ids longer than 200 characters are replaced by
    /// `sha256-` and their hash, so distinct ids stay distinct.
    pub async fn send(
        &self,
        to: &str,
        rendered: &Rendered,
        message_id: &str,
    ) -> Result<(), NotifyError> {
        let recipient = to.trim().parse::<Mailbox>().map_err(|_| {
            NotifyError::BadAddress(format!(
                "the recipient `{}` is not an e-mail address",
                redact_address(to)
            ))
        })?;
        let domain = recipient.email.domain().to_owned();
        let message_id = safe_message_id(message_id)?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(recipient)
            .subject(rendered.subject.clone())
            .message_id(Some(format!("<{message_id}@{MESSAGE_ID_DOMAIN}>")))
            .header(ContentType::TEXT_PLAIN)
            .body(rendered.text.clone())
            .map_err(|e| NotifyError::Permanent(format!("could not build the e-mail: {e}")))?;

        let outcome = match tokio::time::timeout(self.timeout, self.transport.send(message)).await {
            Ok(Ok(_response)) => Ok(()),
            Ok(Err(e)) => Err(classify(&e)),
            Err(_elapsed) => Err(NotifyError::Transient(format!(
                "the SMTP server did not finish within {} s",
                self.timeout.as_secs_f64()
            ))),
        };
        match &outcome {
            Ok(()) => tracing::info!(recipient_domain = %domain, %message_id, "e-mail sent"),
            Err(e) => tracing::warn!(
                recipient_domain = %domain,
                %message_id,
                retryable = e.is_retryable(),
                error = %e,
                "e-mail not sent"
            ),
        }
        outcome
    }
}

/// Sorts a `lettre` failure into retryable or not, with any e-mail address in the server's words
/// reduced to its domain.
fn classify(error: &lettre::transport::smtp::Error) -> NotifyError {
    let text = redact_addresses(&error.to_string());
    if error.is_permanent() || error.is_client() {
        // 5xx, or something this client cannot do with this server (for example no common
        // authentication mechanism): the same message will fail the same way.
        NotifyError::Permanent(text)
    } else {
        // 4xx, connection refused or lost, timeouts, TLS handshakes, garbled answers.
        NotifyError::Transient(text)
    }
}

/// The message id with every character outside `A-Z a-z 0-9 - _ .` written as `=XX`, dots kept
/// only where RFC 5322 allows them (not first, last or doubled). Injective: `=` itself is escaped.
fn safe_message_id(id: &str) -> Result<String, NotifyError> {
    if id.is_empty() {
        return Err(NotifyError::Config("the message id is empty".to_owned()));
    }
    let bytes = id.as_bytes();
    let mut safe = String::with_capacity(id.len());
    for (i, &byte) in bytes.iter().enumerate() {
        let dot_allowed = i > 0
            && i + 1 < bytes.len()
            && bytes.get(i - 1) != Some(&b'.')
            && bytes.get(i + 1) != Some(&b'.');
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' => safe.push(char::from(byte)),
            b'.' if dot_allowed => safe.push('.'),
            _ => safe.push_str(&format!("={byte:02X}")),
        }
    }
    if safe.len() > MAX_MESSAGE_ID_CHARS {
        use sha2::Digest as _;
        let hash = sha2::Sha256::digest(id.as_bytes());
        let hex = hash.iter().map(|b| format!("{b:02x}")).collect::<String>();
        return Ok(format!("sha256-{hex}"));
    }
    Ok(safe)
}

/// `smtp://` without `?tls=…` to a host other than this machine.
fn is_plain_to_a_remote_host(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("smtp://") else {
        return false;
    };
    if url.contains("tls=required") || url.contains("tls=opportunistic") {
        return false;
    }
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    let host_port = authority.rsplit('@').next().unwrap_or("");
    let host = if let Some(bracketed) = host_port.strip_prefix('[') {
        bracketed.split(']').next().unwrap_or("")
    } else {
        host_port.split(':').next().unwrap_or("")
    };
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    !loopback
}

/// An address with its local part hidden: `***@example.com`.
fn redact_address(address: &str) -> String {
    match address.rsplit_once('@') {
        Some((_, domain)) => format!("***@{}", domain.trim_end_matches('>').trim()),
        None => "***".to_owned(),
    }
}

/// Text with the local part of anything that looks like an e-mail address replaced by `***`.
fn redact_addresses(text: &str) -> String {
    fn local_part_char(c: char) -> bool {
        c.is_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c)
    }
    let chars = text.chars().collect::<Vec<_>>();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        if chars.get(i).is_some_and(|&c| local_part_char(c)) {
            let start = i;
            while chars.get(i).is_some_and(|&c| local_part_char(c)) {
                i += 1;
            }
            if chars.get(i) == Some(&'@') {
                out.push_str("***");
            } else {
                out.extend(&chars[start..i]);
            }
        } else if let Some(&c) = chars.get(i) {
            out.push(c);
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(url: &str, from: &str) -> SmtpSettings {
        SmtpSettings {
            url: url.to_owned(),
            from: from.to_owned(),
            timeout: Duration::from_secs(5),
        }
    }

    #[test]
    fn valid_settings_build_a_mailer_for_each_url_form() {
        for url in [
            "smtp://127.0.0.1:2525",
            "smtps://user:secret@smtp.example.com:465",
            "smtp://user:secret@smtp.example.com:587?tls=required",
        ] {
            Mailer::new(&settings(url, "Forfall <forfall@example.com>")).unwrap();
        }
    }

    #[test]
    fn a_bad_url_or_sender_is_a_configuration_error_naming_the_problem() {
        let err = Mailer::new(&settings("http://example.com", "forfall@example.com")).unwrap_err();
        assert!(
            matches!(&err, NotifyError::Config(m) if m.contains("SMTP URL")),
            "{err}"
        );
        let err = Mailer::new(&settings("not a url", "forfall@example.com")).unwrap_err();
        assert!(matches!(err, NotifyError::Config(_)));
        let err = Mailer::new(&settings("smtp://127.0.0.1:25", "Forfall")).unwrap_err();
        assert!(
            matches!(&err, NotifyError::Config(m) if m.contains("sender")),
            "{err}"
        );
        let mut zero = settings("smtp://127.0.0.1:25", "forfall@example.com");
        zero.timeout = Duration::ZERO;
        assert!(matches!(Mailer::new(&zero), Err(NotifyError::Config(_))));
    }

    #[test]
    fn the_password_in_the_url_never_shows_in_errors_or_debug_output() {
        let bad = settings(
            "smtps://user:hunter2@smtp.example.com:465?tls=bogus",
            "nope",
        );
        assert!(!format!("{bad:?}").contains("hunter2"));
        let err = Mailer::new(&settings(
            "ftp://user:hunter2@smtp.example.com",
            "forfall@example.com",
        ))
        .unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }

    #[test]
    fn only_transient_errors_are_retryable() {
        assert!(NotifyError::Transient("451".into()).is_retryable());
        assert!(!NotifyError::Permanent("550".into()).is_retryable());
        assert!(!NotifyError::BadAddress("x".into()).is_retryable());
        assert!(!NotifyError::Config("x".into()).is_retryable());
    }

    #[test]
    fn message_ids_keep_safe_characters_and_escape_the_rest_injectively() {
        assert_eq!(
            safe_message_id("0190a1b2-c3d4.warning.2026-11-28").unwrap(),
            "0190a1b2-c3d4.warning.2026-11-28"
        );
        assert_eq!(safe_message_id("a b").unwrap(), "a=20b");
        assert_eq!(safe_message_id("a=20b").unwrap(), "a=3D20b");
        assert_eq!(safe_message_id("<x>@y").unwrap(), "=3Cx=3E=40y");
        assert_eq!(safe_message_id(".a..b.").unwrap(), "=2Ea=2E=2Eb=2E");
        assert_eq!(safe_message_id("ø").unwrap(), "=C3=B8");
        assert!(safe_message_id("").is_err());
        let long = safe_message_id(&"x".repeat(500)).unwrap();
        assert!(long.starts_with("sha256-") && long.len() == 7 + 64);
        assert_ne!(long, safe_message_id(&"x".repeat(501)).unwrap());
    }

    #[test]
    fn addresses_in_server_answers_are_reduced_to_their_domain() {
        assert_eq!(
            redact_addresses("permanent error (550): <kari.nordmann@example.no>: no such user"),
            "permanent error (550): <***@example.no>: no such user"
        );
        assert_eq!(redact_addresses("no address here"), "no address here");
        assert_eq!(redact_address("Kari <kari@example.no>"), "***@example.no");
        assert_eq!(redact_address("kari"), "***");
    }

    #[test]
    fn plain_smtp_is_flagged_only_when_it_leaves_the_machine() {
        assert!(!is_plain_to_a_remote_host("smtp://127.0.0.1:2525"));
        assert!(!is_plain_to_a_remote_host("smtp://localhost"));
        assert!(!is_plain_to_a_remote_host("smtp://u:p@[::1]:25"));
        assert!(!is_plain_to_a_remote_host("smtps://smtp.example.com"));
        assert!(!is_plain_to_a_remote_host(
            "smtp://smtp.example.com?tls=required"
        ));
        assert!(is_plain_to_a_remote_host("smtp://relay.internal:25"));
    }
}
