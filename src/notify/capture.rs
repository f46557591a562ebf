//! A small but real SMTP server on loopback that keeps every message it receives, for the tests
//! and `forfall demo`: point a [`Mailer`](super::Mailer) at [`SmtpCapture::url`] and read what
//! arrived with [`SmtpCapture::messages`].
//!
//! It speaks enough of RFC 5321 for `lettre` and ordinary clients: the 220 greeting, `EHLO`/`HELO`
//! (advertising `8BITMIME`, `SMTPUTF8` and `SIZE`; no `STARTTLS`, no `AUTH`), `MAIL FROM`,
//! `RCPT TO`, `DATA` (dot-unstuffing, ended by `<CRLF>.<CRLF>`), `RSET`, `NOOP` and `QUIT`; any
//! other command gets `502`. A message is stored before its `250` is sent, so once a client's send
//! returns, [`SmtpCapture::messages`] has it.
//!
//! A bad client cannot make it use unbounded memory or panic: command lines are limited to
//! 4 KiB, messages to 10 MiB, recipients to 100 per message, connections to 64 at a time, the
//! store to 10 000 messages, and a connection silent for 5 minutes is closed.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use base64::Engine as _;
use tokio::io::{
    AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader,
};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

/// The longest command line, CRLF included (RFC 5321 asks for 512; this is lenient).
const MAX_COMMAND_LINE: usize = 4096;
/// Message text is read in pieces of at most this many bytes.
const DATA_CHUNK: usize = 8192;
/// The largest message accepted, as advertised with `SIZE`.
const MAX_MESSAGE_BYTES: usize = 10 * 1024 * 1024;
const MAX_RECIPIENTS: usize = 100;
const MAX_CONNECTIONS: usize = 64;
const MAX_STORED_MESSAGES: usize = 10_000;
/// A connection that sends nothing (or reads nothing) for this long is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(300);

/// A message as the capture server received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapturedMessage {
    /// The envelope sender (`MAIL FROM`), without angle brackets.
    pub from: String,
    /// The envelope recipients (`RCPT TO`), without angle brackets, in order.
    pub to: Vec<String>,
    /// The `Subject` header, unfolded and decoded (RFC 2047 encoded words).
    pub subject: String,
    /// The `Message-ID` header as sent, angle brackets included, e.g. `<digest-1@forfall>`.
    pub message_id: Option<String>,
    /// The body decoded from its `Content-Transfer-Encoding` (quoted-printable, base64 or none)
    /// and charset (UTF-8, or ISO-8859-1 when declared), with `\n` line ends. The body of a
    /// multipart message is left as sent.
    pub body: String,
    /// The whole message as received after dot-unstuffing, without the line end that precedes the
    /// final `.` (invalid UTF-8 replaced).
    pub raw: String,
}

/// A running capture server. Dropping it (or [`SmtpCapture::shutdown`]) stops it.
#[derive(Debug)]
pub struct SmtpCapture {
    addr: SocketAddr,
    shared: Arc<Shared>,
    server: Option<JoinHandle<()>>,
}

#[derive(Debug, Default)]
struct Shared {
    messages: Mutex<Vec<CapturedMessage>>,
    failures: Mutex<Failures>,
}

/// Answers still to give instead of accepting a `MAIL` command.
#[derive(Debug, Default, Clone, Copy)]
struct Failures {
    remaining: usize,
    code: u16,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Shared {
    fn take_failure(&self) -> Option<u16> {
        let mut failures = lock(&self.failures);
        if failures.remaining == 0 {
            return None;
        }
        failures.remaining -= 1;
        Some(failures.code)
    }
}

impl SmtpCapture {
    /// Serves SMTP on `listener` (bind it to `127.0.0.1:0` for a free port) until shut down.
    pub async fn start(listener: TcpListener) -> std::io::Result<SmtpCapture> {
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::default());
        let server = tokio::spawn(serve(listener, Arc::clone(&shared)));
        Ok(SmtpCapture {
            addr,
            shared,
            server: Some(server),
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The URL to give [`SmtpSettings::url`](super::SmtpSettings::url): `smtp://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("smtp://{}", self.addr)
    }

    /// Every message received so far, in arrival order.
    pub fn messages(&self) -> Vec<CapturedMessage> {
        lock(&self.shared.messages).clone()
    }

    /// Answers the next `n` `MAIL` commands (the start of each message) with `code` instead of
    /// accepting them, e.g. 451 (try again later) or 550 (refused). A code outside 400–599 is
    /// taken as 451. Replaces any failures still pending.
    pub fn fail_next(&self, n: usize, code: u16) {
        let code = if (400..=599).contains(&code) {
            code
        } else {
            451
        };
        *lock(&self.shared.failures) = Failures { remaining: n, code };
    }

    /// Stops listening and closes every open connection.
    pub async fn shutdown(mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
            // A cancelled task's JoinError is the expected outcome.
            let _ = server.await;
        }
    }
}

impl Drop for SmtpCapture {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}

/// Accepts connections; aborting this task drops the `JoinSet`, which aborts every connection.
async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) if connections.len() < MAX_CONNECTIONS => {
                    connections.spawn(session(stream, Arc::clone(&shared)));
                }
                Ok((stream, _peer)) => {
                    // Too many at once: say so and hang up, without waiting on the client.
                    let _ = stream.try_write(b"421 4.7.0 too many connections\r\n");
                }
                Err(error) => {
                    // Out of file descriptors and the like: wait a little instead of spinning.
                    tracing::debug!(%error, "SMTP capture could not accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// The state of one SMTP conversation.
#[derive(Debug, Default)]
struct Transaction {
    greeted: bool,
    from: Option<String>,
    to: Vec<String>,
}

impl Transaction {
    fn reset(&mut self) {
        self.from = None;
        self.to.clear();
    }
}

/// One connection, from greeting to `QUIT` (or error, or silence).
async fn session(stream: TcpStream, shared: Arc<Shared>) {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    // Any I/O error or timeout ends the conversation; there is nobody to tell.
    let _ = converse(&mut reader, &mut write, &shared).await;
}

async fn converse<R, W>(reader: &mut R, write: &mut W, shared: &Shared) -> std::io::Result<()>
where
    R: AsyncBufRead + Unpin,
    W: AsyncWrite + Unpin,
{
    reply(write, "220 forfall-capture ESMTP ready\r\n").await?;
    let mut transaction = Transaction::default();
    loop {
        let Some(line) = read_line(reader, MAX_COMMAND_LINE).await? else {
            return Ok(());
        };
        if !line.ends_with(b"\n") {
            if line.len() >= MAX_COMMAND_LINE {
                reply(write, "500 5.5.2 line too long\r\n").await?;
            }
            // Too long, or the client hung up mid-line.
            return Ok(());
        }
        let line = String::from_utf8_lossy(&line);
        let line = line.trim_end_matches(['\r', '\n']);
        let (verb, argument) = match line.split_once(' ') {
            Some((verb, argument)) => (verb, argument.trim()),
            None => (line, ""),
        };
        match verb.to_ascii_uppercase().as_str() {
            "EHLO" | "HELO" if argument.is_empty() => {
                reply(write, "501 5.5.4 a domain or address is required\r\n").await?;
            }
            "EHLO" => {
                transaction.reset();
                transaction.greeted = true;
                let answer = format!(
                    "250-forfall-capture greets {}\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n\
                     250 SIZE {MAX_MESSAGE_BYTES}\r\n",
                    printable(argument)
                );
                reply(write, &answer).await?;
            }
            "HELO" => {
                transaction.reset();
                transaction.greeted = true;
                reply(write, "250 forfall-capture\r\n").await?;
            }
            "MAIL" => {
                let answer = mail(&mut transaction, argument, shared);
                reply(write, &answer).await?;
            }
            "RCPT" => {
                let answer = rcpt(&mut transaction, argument);
                reply(write, answer).await?;
            }
            "DATA" => {
                if transaction.from.is_none() {
                    reply(write, "503 5.5.1 MAIL first\r\n").await?;
                } else if transaction.to.is_empty() {
                    reply(write, "554 5.5.1 no valid recipients\r\n").await?;
                } else {
                    reply(write, "354 end data with <CR><LF>.<CR><LF>\r\n").await?;
                    let answer = match read_data(reader).await? {
                        Some(raw) => store(&mut transaction, &raw, shared),
                        None => "552 5.3.4 message too large\r\n".to_owned(),
                    };
                    transaction.reset();
                    reply(write, &answer).await?;
                }
            }
            "RSET" => {
                transaction.reset();
                reply(write, "250 2.0.0 OK\r\n").await?;
            }
            "NOOP" => reply(write, "250 2.0.0 OK\r\n").await?,
            "QUIT" => {
                reply(write, "221 2.0.0 bye\r\n").await?;
                return Ok(());
            }
            "" => reply(write, "500 5.5.2 empty command\r\n").await?,
            _ => reply(write, "502 5.5.1 command not implemented\r\n").await?,
        }
    }
}

fn mail(transaction: &mut Transaction, argument: &str, shared: &Shared) -> String {
    if !transaction.greeted {
        return "503 5.5.1 EHLO or HELO first\r\n".to_owned();
    }
    if transaction.from.is_some() {
        return "503 5.5.1 a message is already started\r\n".to_owned();
    }
    let Some(from) = path_after(argument, "FROM:") else {
        return "501 5.5.4 syntax: MAIL FROM:<address>\r\n".to_owned();
    };
    if let Some(code) = shared.take_failure() {
        return if code < 500 {
            format!("{code} 4.3.0 try again later (SmtpCapture::fail_next)\r\n")
        } else {
            format!("{code} 5.7.1 refused (SmtpCapture::fail_next)\r\n")
        };
    }
    transaction.from = Some(from);
    "250 2.1.0 OK\r\n".to_owned()
}

fn rcpt(transaction: &mut Transaction, argument: &str) -> &'static str {
    if transaction.from.is_none() {
        return "503 5.5.1 MAIL first\r\n";
    }
    let Some(to) = path_after(argument, "TO:") else {
        return "501 5.5.4 syntax: RCPT TO:<address>\r\n";
    };
    if to.is_empty() {
        return "501 5.1.3 a recipient address is required\r\n";
    }
    if transaction.to.len() >= MAX_RECIPIENTS {
        return "452 4.5.3 too many recipients\r\n";
    }
    transaction.to.push(to);
    "250 2.1.5 OK\r\n"
}

/// The address of `FROM:<a@b> PARAMS` or `TO:<a@b>` (case-insensitive keyword, optional space
/// after the colon, brackets optional), without brackets. `None` when malformed.
fn path_after(argument: &str, keyword: &str) -> Option<String> {
    let head = argument.get(..keyword.len())?;
    if !head.eq_ignore_ascii_case(keyword) {
        return None;
    }
    let rest = argument.get(keyword.len()..)?.trim_start();
    let path = match rest.strip_prefix('<') {
        Some(bracketed) => bracketed.split_once('>')?.0,
        None => rest.split_whitespace().next()?,
    };
    Some(path.to_owned())
}

/// Keeps a received message; the answer to the end of `DATA`.
fn store(transaction: &mut Transaction, raw: &[u8], shared: &Shared) -> String {
    let mut messages = lock(&shared.messages);
    if messages.len() >= MAX_STORED_MESSAGES {
        return "452 4.3.1 the capture is full\r\n".to_owned();
    }
    let from = transaction.from.take().unwrap_or_default();
    let to = std::mem::take(&mut transaction.to);
    messages.push(parse_message(from, to, raw));
    format!("250 2.0.0 OK queued as {}\r\n", messages.len())
}

/// The message text after `354`, dot-unstuffed, up to the line end before the `.` line. `None` when it was larger than
/// [`MAX_MESSAGE_BYTES`] (the rest is read and dropped); an error when the client hung up.
async fn read_data<R: AsyncBufRead + Unpin>(reader: &mut R) -> std::io::Result<Option<Vec<u8>>> {
    let mut message = Vec::new();
    let mut too_large = false;
    let mut at_line_start = true;
    loop {
        let Some(piece) = read_line(reader, DATA_CHUNK).await? else {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "connection closed during DATA",
            ));
        };
        let mut content = piece.as_slice();
        if at_line_start {
            if content == b".\r\n" || content == b".\n" {
                break;
            }
            if let Some(unstuffed) = content.strip_prefix(b".") {
                content = unstuffed;
            }
        }
        at_line_start = piece.ends_with(b"\n");
        if too_large || message.len() + content.len() > MAX_MESSAGE_BYTES {
            too_large = true;
            message = Vec::new();
        } else {
            message.extend_from_slice(content);
        }
    }
    // The line end before the `.` line belongs to the terminator, as clients such as lettre
    // write it (`<message><CRLF>.<CRLF>`), so the message is stored exactly as they formatted it.
    if message.ends_with(b"\r\n") {
        message.truncate(message.len() - 2);
    } else if message.ends_with(b"\n") {
        message.truncate(message.len() - 1);
    }
    Ok((!too_large).then_some(message))
}

/// Reads up to and including `\n`, at most `limit` bytes. `None` at the end of the stream.
async fn read_line<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    limit: usize,
) -> std::io::Result<Option<Vec<u8>>> {
    let mut line = Vec::new();
    let limit = u64::try_from(limit).unwrap_or(u64::MAX);
    let read = tokio::time::timeout(
        IDLE_TIMEOUT,
        (&mut *reader).take(limit).read_until(b'\n', &mut line),
    )
    .await
    .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "client idle"))??;
    Ok((read > 0).then_some(line))
}

async fn reply<W: AsyncWrite + Unpin>(write: &mut W, answer: &str) -> std::io::Result<()> {
    tokio::time::timeout(IDLE_TIMEOUT, async {
        write.write_all(answer.as_bytes()).await?;
        write.flush().await
    })
    .await
    .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "client not reading"))?
}

/// Client text fit to echo in an answer: printable ASCII only, at most 100 characters.
fn printable(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_ascii_graphic())
        .take(100)
        .collect()
}

/// Splits a received message into what the tests look at.
fn parse_message(from: String, to: Vec<String>, raw: &[u8]) -> CapturedMessage {
    let (head, body) = split_head(raw);
    let headers = unfold(&String::from_utf8_lossy(head));
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.trim().to_owned())
    };
    let subject = header("Subject")
        .map(|s| decode_encoded_words(&s))
        .unwrap_or_default();
    let encoding = header("Content-Transfer-Encoding")
        .unwrap_or_default()
        .to_ascii_lowercase();
    let content_type = header("Content-Type").unwrap_or_default();
    let decoded = if content_type.to_ascii_lowercase().starts_with("multipart/") {
        body.to_vec()
    } else {
        match encoding.as_str() {
            "base64" => decode_base64(body).unwrap_or_else(|| body.to_vec()),
            "quoted-printable" => decode_quoted_printable(body),
            _ => body.to_vec(),
        }
    };
    let body = decode_charset(&decoded, &charset_of(&content_type)).replace("\r\n", "\n");
    CapturedMessage {
        from,
        to,
        subject,
        message_id: header("Message-ID"),
        body,
        raw: String::from_utf8_lossy(raw).into_owned(),
    }
}

/// Header section and body, split at the first empty line.
fn split_head(raw: &[u8]) -> (&[u8], &[u8]) {
    for (separator, skip) in [(&b"\r\n\r\n"[..], 4), (&b"\n\n"[..], 2)] {
        if let Some(at) = raw.windows(separator.len()).position(|w| w == separator) {
            return (&raw[..at], &raw[at + skip..]);
        }
    }
    (raw, &[])
}

/// Header fields as (name, value), continuation lines joined (RFC 5322 unfolding).
fn unfold(head: &str) -> Vec<(String, String)> {
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in head.split('\n').map(|l| l.trim_end_matches('\r')) {
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = fields.last_mut() {
                value.push_str(line);
            }
        } else if let Some((name, value)) = line.split_once(':') {
            fields.push((name.trim().to_owned(), value.to_owned()));
        }
    }
    fields
}

/// The `charset` parameter of a `Content-Type`, lower case; `utf-8` when absent.
fn charset_of(content_type: &str) -> String {
    content_type
        .split(';')
        .filter_map(|param| param.split_once('='))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("charset"))
        .map(|(_, value)| value.trim().trim_matches('"').to_ascii_lowercase())
        .unwrap_or_else(|| "utf-8".to_owned())
}

fn decode_charset(bytes: &[u8], charset: &str) -> String {
    match charset {
        "iso-8859-1" | "latin1" | "iso_8859-1" => bytes.iter().map(|&b| char::from(b)).collect(),
        _ => String::from_utf8_lossy(bytes).into_owned(),
    }
}

/// Decodes RFC 2047 encoded words (`=?utf-8?b?…?=`, `=?utf-8?q?…?=`) in a header value. The
/// space between two adjacent encoded words is dropped, and their bytes are joined before
/// decoding, so a character split across two words survives. Anything malformed stays as is.
fn decode_encoded_words(value: &str) -> String {
    let mut out = String::new();
    let mut pending = Vec::new();
    let mut pending_charset = String::new();
    let mut gap = String::new();
    let mut after_word = false;
    let mut rest = value;
    while let Some(c) = rest.chars().next() {
        if let Some((charset, bytes, consumed)) = encoded_word(rest) {
            let adjacent = after_word && gap.chars().all(char::is_whitespace);
            if !adjacent || charset != pending_charset {
                out.push_str(&decode_charset(&pending, &pending_charset));
                pending.clear();
            }
            if !adjacent {
                out.push_str(&gap);
            }
            gap.clear();
            pending.extend(bytes);
            pending_charset = charset;
            after_word = true;
            rest = rest.get(consumed..).unwrap_or("");
        } else {
            gap.push(c);
            rest = rest.get(c.len_utf8()..).unwrap_or("");
        }
    }
    out.push_str(&decode_charset(&pending, &pending_charset));
    out.push_str(&gap);
    out
}

/// One encoded word at the start of `text`: its charset (lower case, language dropped), its
/// bytes, and how many bytes of `text` it took.
fn encoded_word(text: &str) -> Option<(String, Vec<u8>, usize)> {
    // RFC 2047 words are at most 75 characters; looking no further keeps a hostile header from
    // costing quadratic time.
    const MAX_WORD_CHARS: usize = 256;
    let inner = text.strip_prefix("=?")?;
    let inner = inner
        .char_indices()
        .nth(MAX_WORD_CHARS)
        .map_or(inner, |(end, _)| &inner[..end]);
    let (charset, rest) = inner.split_once('?')?;
    let (encoding, rest) = rest.split_once('?')?;
    let (payload, _) = rest.split_once("?=")?;
    if charset.is_empty() || payload.contains(char::is_whitespace) {
        return None;
    }
    let bytes = match encoding {
        "b" | "B" => decode_base64(payload.as_bytes())?,
        "q" | "Q" => decode_q(payload.as_bytes()),
        _ => return None,
    };
    let consumed = 2 + charset.len() + 1 + encoding.len() + 1 + payload.len() + 2;
    let charset = charset.split('*').next().unwrap_or("").to_ascii_lowercase();
    Some((charset, bytes, consumed))
}

/// Base64 with whitespace and line breaks ignored, padding optional.
fn decode_base64(text: &[u8]) -> Option<Vec<u8>> {
    let compact = text
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect::<Vec<_>>();
    base64::engine::general_purpose::STANDARD
        .decode(&compact)
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(&compact))
        .ok()
}

/// The `Q` encoding of RFC 2047: `_` is a space, `=XX` a byte.
fn decode_q(text: &[u8]) -> Vec<u8> {
    let spaced = text
        .iter()
        .map(|&b| if b == b'_' { b' ' } else { b })
        .collect::<Vec<_>>();
    decode_quoted_printable(&spaced)
}

/// Quoted-printable (RFC 2045): `=XX` is a byte, `=` at a line end joins the lines; a stray `=`
/// stays as it is.
fn decode_quoted_printable(text: &[u8]) -> Vec<u8> {
    fn hex(byte: Option<&u8>) -> Option<u8> {
        char::from(*byte?)
            .to_digit(16)
            .and_then(|d| u8::try_from(d).ok())
    }
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while let Some(&byte) = text.get(i) {
        if byte != b'=' {
            out.push(byte);
            i += 1;
            continue;
        }
        let after = text.get(i + 1..).unwrap_or(&[]);
        if after.starts_with(b"\r\n") {
            i += 3;
        } else if after.starts_with(b"\n") {
            i += 2;
        } else if let (Some(high), Some(low)) = (hex(text.get(i + 1)), hex(text.get(i + 2))) {
            out.push(high * 16 + low);
            i += 3;
        } else {
            out.push(b'=');
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

    #[test]
    fn encoded_words_in_a_subject_are_decoded_and_joined() {
        assert_eq!(
            decode_encoded_words("=?utf-8?b?MyBmYWt0dXJhZXIgZ8OlciB0aWwgaW5rYXNzbw==?="),
            "3 fakturaer går til inkasso"
        );
        // A character split across two adjacent words; the folding space between them goes.
        assert_eq!(
            decode_encoded_words("=?utf-8?q?g=C3?= =?utf-8?q?=A5r_til?= inkasso"),
            "går til inkasso"
        );
        assert_eq!(decode_encoded_words("plain subject"), "plain subject");
        assert_eq!(decode_encoded_words("a =?iso-8859-1?q?=E6?= b"), "a æ b");
        // Malformed words stay as they are, without panicking.
        for bad in [
            "=?",
            "=?utf-8?",
            "=?utf-8?x?abc?=",
            "=?utf-8?b?!!!?=",
            "=??b?QQ==?=",
        ] {
            assert_eq!(decode_encoded_words(bad), bad);
        }
    }

    #[test]
    fn quoted_printable_bodies_are_decoded_with_soft_line_breaks() {
        assert_eq!(
            decode_quoted_printable(b"g=C3=A5r til=\r\n inkasso =3D ok ="),
            "går til inkasso = ok =".as_bytes()
        );
        assert_eq!(decode_quoted_printable(b"=ZZ="), b"=ZZ=");
    }

    #[test]
    fn a_message_is_split_into_headers_subject_id_and_decoded_body() {
        let raw = b"From: a@example.com\r\nSubject: =?utf-8?b?w6Vy?=\r\n =?utf-8?b?w6Vy?=\r\n\
                    Message-ID: <x.1@forfall>\r\nContent-Type: text/plain; charset=utf-8\r\n\
                    Content-Transfer-Encoding: base64\r\n\r\nZ8OlcgpsaW5qZQ==\r\n";
        let message = parse_message("a@example.com".into(), vec!["b@example.com".into()], raw);
        assert_eq!(message.subject, "årår");
        assert_eq!(message.message_id.as_deref(), Some("<x.1@forfall>"));
        assert_eq!(message.body, "går\nlinje");
    }

    #[test]
    fn envelope_paths_are_read_with_or_without_brackets_and_parameters() {
        assert_eq!(
            path_after("FROM:<a@b.no> BODY=8BITMIME", "FROM:").as_deref(),
            Some("a@b.no")
        );
        assert_eq!(
            path_after("from: <a@b.no>", "FROM:").as_deref(),
            Some("a@b.no")
        );
        assert_eq!(path_after("TO:a@b.no", "TO:").as_deref(), Some("a@b.no"));
        assert_eq!(path_after("FROM:<>", "FROM:").as_deref(), Some(""));
        assert_eq!(path_after("FROM:<a@b.no", "FROM:"), None);
        assert_eq!(path_after("TO", "TO:"), None);
        assert_eq!(path_after("ø", "FROM:"), None);
    }

    async fn connect(
        capture: &SmtpCapture,
    ) -> (
        BufReader<tokio::net::tcp::OwnedReadHalf>,
        tokio::net::tcp::OwnedWriteHalf,
    ) {
        let stream = TcpStream::connect(capture.addr()).await.unwrap();
        let (read, write) = stream.into_split();
        let mut reader = BufReader::new(read);
        let mut greeting = String::new();
        reader.read_line(&mut greeting).await.unwrap();
        assert!(greeting.starts_with("220 "), "{greeting}");
        (reader, write)
    }

    /// Sends one line and returns the last line of the answer.
    async fn say(
        reader: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
        write: &mut tokio::net::tcp::OwnedWriteHalf,
        line: &str,
    ) -> String {
        write.write_all(line.as_bytes()).await.unwrap();
        loop {
            let mut answer = String::new();
            reader.read_line(&mut answer).await.unwrap();
            if answer.len() < 4 || answer.as_bytes()[3] != b'-' {
                return answer;
            }
        }
    }

    async fn capture() -> SmtpCapture {
        SmtpCapture::start(TcpListener::bind("127.0.0.1:0").await.unwrap())
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_raw_smtp_conversation_is_captured_with_dots_unstuffed() {
        let capture = capture().await;
        let (mut r, mut w) = connect(&capture).await;
        assert!(
            say(&mut r, &mut w, "EHLO client.example\r\n")
                .await
                .starts_with("250 ")
        );
        assert!(
            say(&mut r, &mut w, "MAIL FROM:<from@example.com>\r\n")
                .await
                .starts_with("250")
        );
        assert!(
            say(&mut r, &mut w, "RCPT TO:<one@example.com>\r\n")
                .await
                .starts_with("250")
        );
        assert!(
            say(&mut r, &mut w, "RCPT TO:<two@example.com>\r\n")
                .await
                .starts_with("250")
        );
        assert!(say(&mut r, &mut w, "DATA\r\n").await.starts_with("354"));
        let answer = say(
            &mut r,
            &mut w,
            "Subject: hi\r\n\r\nline one\r\n..leading dot\r\n.\r\n",
        )
        .await;
        assert!(answer.starts_with("250"), "{answer}");
        assert!(say(&mut r, &mut w, "NOOP\r\n").await.starts_with("250"));
        assert!(say(&mut r, &mut w, "VRFY x\r\n").await.starts_with("502"));
        assert!(say(&mut r, &mut w, "QUIT\r\n").await.starts_with("221"));

        let messages = capture.messages();
        assert_eq!(messages.len(), 1);
        assert_eq!(messages[0].from, "from@example.com");
        assert_eq!(messages[0].to, ["one@example.com", "two@example.com"]);
        assert_eq!(messages[0].subject, "hi");
        assert_eq!(messages[0].body, "line one\n.leading dot");
        capture.shutdown().await;
    }

    #[tokio::test]
    async fn commands_out_of_order_are_refused_without_harm() {
        let capture = capture().await;
        let (mut r, mut w) = connect(&capture).await;
        assert!(
            say(&mut r, &mut w, "MAIL FROM:<a@b.no>\r\n")
                .await
                .starts_with("503")
        );
        assert!(say(&mut r, &mut w, "HELO x\r\n").await.starts_with("250"));
        assert!(
            say(&mut r, &mut w, "RCPT TO:<a@b.no>\r\n")
                .await
                .starts_with("503")
        );
        assert!(say(&mut r, &mut w, "DATA\r\n").await.starts_with("503"));
        assert!(
            say(&mut r, &mut w, "MAIL FROM:<a@b.no>\r\n")
                .await
                .starts_with("250")
        );
        assert!(say(&mut r, &mut w, "DATA\r\n").await.starts_with("554"));
        assert!(say(&mut r, &mut w, "RSET\r\n").await.starts_with("250"));
        assert!(
            say(&mut r, &mut w, "MAIL FROM garbage\r\n")
                .await
                .starts_with("501")
        );
        assert!(say(&mut r, &mut w, "\r\n").await.starts_with("500"));
        assert!(capture.messages().is_empty());
    }

    #[tokio::test]
    async fn an_overlong_command_line_closes_the_connection() {
        let capture = capture().await;
        let (mut r, mut w) = connect(&capture).await;
        let long = format!("NOOP {}\r\n", "x".repeat(MAX_COMMAND_LINE * 2));
        let answer = say(&mut r, &mut w, &long).await;
        assert!(answer.starts_with("500"), "{answer}");
        let mut rest = String::new();
        assert_eq!(r.read_line(&mut rest).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn fail_next_answers_the_next_mail_commands_with_the_code_then_accepts() {
        let capture = capture().await;
        capture.fail_next(2, 550);
        let (mut r, mut w) = connect(&capture).await;
        say(&mut r, &mut w, "EHLO x\r\n").await;
        assert!(
            say(&mut r, &mut w, "MAIL FROM:<a@b.no>\r\n")
                .await
                .starts_with("550 ")
        );
        assert!(
            say(&mut r, &mut w, "MAIL FROM:<a@b.no>\r\n")
                .await
                .starts_with("550 ")
        );
        assert!(
            say(&mut r, &mut w, "MAIL FROM:<a@b.no>\r\n")
                .await
                .starts_with("250 ")
        );
    }

    #[tokio::test]
    async fn a_message_over_the_size_limit_is_refused_and_the_session_goes_on() {
        let capture = capture().await;
        let (mut r, mut w) = connect(&capture).await;
        say(&mut r, &mut w, "EHLO x\r\n").await;
        say(&mut r, &mut w, "MAIL FROM:<a@b.no>\r\n").await;
        say(&mut r, &mut w, "RCPT TO:<c@d.no>\r\n").await;
        assert!(say(&mut r, &mut w, "DATA\r\n").await.starts_with("354"));
        let line = format!("{}\r\n", "x".repeat(998));
        let big = line.repeat(MAX_MESSAGE_BYTES / line.len() + 10);
        w.write_all(big.as_bytes()).await.unwrap();
        assert!(say(&mut r, &mut w, ".\r\n").await.starts_with("552"));
        assert!(say(&mut r, &mut w, "NOOP\r\n").await.starts_with("250"));
        assert!(capture.messages().is_empty());
    }

    proptest::proptest! {
        #[test]
        fn parsing_any_bytes_never_panics(raw in proptest::collection::vec(proptest::num::u8::ANY, 0..400)) {
            let _ = parse_message(String::new(), Vec::new(), &raw);
            let _ = decode_quoted_printable(&raw);
        }

        #[test]
        fn decoding_any_header_never_panics(value in "(=\\?|\\?=|[a-zA-Z0-9 _=?*-]|ø){0,60}") {
            let _ = decode_encoded_words(&value);
        }
    }
}
