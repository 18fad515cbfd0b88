//! SMTP delivery with lettre's client: the connection URL, the rules about
//! when plaintext is allowed, and the classification of every outcome into
//! [`Outcome`] — the one thing the worker needs to decide between "mark
//! sent", "retry later", "give up on this address" and "stop the run".
//!
//! Each [`SmtpSender`] owns one connection and drives the SMTP dialogue
//! step by step (connect, STARTTLS, AUTH, then MAIL, RCPT, DATA per
//! message) instead of calling lettre's `SmtpTransport::send`, because the
//! right reaction to the same reply depends on the step: a 554 in the
//! greeting or a 535 in AUTH is the server's or the config's trouble and
//! must fail no recipient, while a 550 after RCPT is about that recipient.
//! lettre's pooled transport merges those steps into one error; here the
//! pool is one `SmtpSender` per worker thread, each reusing its connection.
//!
//! Security rules, checked when the settings are resolved, before any
//! connection: `smtp://` requires STARTTLS unless `?tls=none`; plaintext
//! (with or without AUTH) goes only to localhost / 127.0.0.1 / ::1 unless
//! the config says `allow_plaintext = true`. The password comes from the
//! caller (the command reads `PRESSROOM_SMTP_PASSWORD`) and every `Debug`
//! here redacts it.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{Certificate, SmtpConnection, TlsParameters};
use lettre::transport::smtp::commands::{Data, Ehlo, Mail, Rcpt, Rset};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};
use lettre::transport::smtp::response::{Code, Severity};
use lettre::Message;
use percent_encoding::percent_decode_str;

use crate::config::send::SmtpConfig;
use crate::error_kind::{ErrorKind, HasKind};
use crate::net::is_local_host;
pub use crate::net::Password;

/// What became of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The server took responsibility for the message (2xx after DATA).
    Accepted { reply: String },
    /// Try this recipient again later: a 4xx, a timeout, or the connection
    /// dropped in the middle of the transaction.
    Deferred { reply: String },
    /// A 5xx about this recipient or this message. `suppress` is false for
    /// 5.7.x (policy/content rejections), which say nothing about the
    /// address being dead.
    Rejected { reply: String, suppress: bool },
    /// Connection-level trouble (refused, TLS, AUTH, the server refusing
    /// the sender): stop the run; the recipient stays as it was.
    Fatal { reason: String },
}

/// How the connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// `smtps://`: TLS from the first byte.
    Tls,
    /// `smtp://` (default): STARTTLS, required.
    StartTls,
    /// `smtp://…?tls=none`: no encryption at all.
    None,
}

/// A parsed `smtp://` / `smtps://` URL. It never holds a password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpUrl {
    pub host: String,
    pub port: u16,
    pub user: Option<String>,
    pub security: Security,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SmtpConfigError {
    #[error("smtp url `{url}`: {why}")]
    Url { url: String, why: String },
    #[error("refusing to send {what} in plaintext to {host}: use smtps:// or STARTTLS, or set `allow_plaintext = true` under [smtp] if the network is trusted")]
    Plaintext { host: String, what: &'static str },
    #[error("the smtp url names user `{user}` but PRESSROOM_SMTP_PASSWORD is not set")]
    NoPassword { user: String },
    #[error("PRESSROOM_SMTP_PASSWORD is set but the smtp url names no user: write it as smtp://USER@host")]
    PasswordWithoutUser,
    #[error("{}: cannot read the CA file: {why}", path.display())]
    CaFile {
        path: std::path::PathBuf,
        why: String,
    },
    #[error("TLS setup: {0}")]
    Tls(String),
    #[error("hello_name `{0}` is not a host name")]
    HelloName(String),
}

impl HasKind for SmtpConfigError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Input
    }
}

impl SmtpUrl {
    pub fn parse(text: &str) -> Result<SmtpUrl, SmtpConfigError> {
        let fail = |why: &str| SmtpConfigError::Url {
            url: redact_url(text),
            why: why.to_owned(),
        };
        let url = url::Url::parse(text).map_err(|e| fail(&e.to_string()))?;
        let mut security = match url.scheme() {
            "smtp" => Security::StartTls,
            "smtps" => Security::Tls,
            other => return Err(fail(&format!("scheme `{other}` is not smtp or smtps"))),
        };
        if url.password().is_some() {
            return Err(fail(
                "it contains a password; passwords come only from PRESSROOM_SMTP_PASSWORD",
            ));
        }
        let host = match url.host() {
            Some(url::Host::Domain(d)) => d.to_owned(),
            Some(url::Host::Ipv4(ip)) => ip.to_string(),
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            None => return Err(fail("it has no host")),
        };
        if url.path() != "" && url.path() != "/" {
            return Err(fail("it has a path; write smtp://[user@]host[:port]"));
        }
        for (key, value) in url.query_pairs() {
            match (key.as_ref(), value.as_ref(), security) {
                ("tls", "none", Security::StartTls) => security = Security::None,
                ("tls", "starttls", Security::StartTls) => {}
                ("tls", _, _) => {
                    return Err(fail(
                        "tls= takes `starttls` or `none`, and only with smtp://",
                    ))
                }
                (other, _, _) => return Err(fail(&format!("unknown option `{other}`"))),
            }
        }
        let user = match url.username() {
            "" => None,
            u => Some(
                percent_decode_str(u)
                    .decode_utf8()
                    .map_err(|_| fail("the user name is not valid UTF-8"))?
                    .into_owned(),
            ),
        };
        let port = url.port().unwrap_or(match security {
            Security::Tls => 465,
            _ => 25,
        });
        Ok(SmtpUrl {
            host,
            port,
            user,
            security,
        })
    }
}

/// The URL with any password replaced, for messages.
fn redact_url(text: &str) -> String {
    match url::Url::parse(text) {
        Ok(mut url) if url.password().is_some() => {
            let _ = url.set_password(Some("REDACTED"));
            url.to_string()
        }
        Ok(url) => url.to_string(),
        Err(_) => text.chars().filter(|c| !c.is_control()).collect(),
    }
}

/// Everything needed to open connections, checked and ready.
#[derive(Clone)]
pub struct SmtpSettings {
    pub url: SmtpUrl,
    password: Option<Password>,
    tls: Option<TlsParameters>,
    timeout: Duration,
    hello: ClientId,
    allow_plaintext: bool,
}

impl std::fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpSettings")
            .field("url", &self.url)
            .field("password", &self.password)
            .field("timeout", &self.timeout)
            .field("allow_plaintext", &self.allow_plaintext)
            .finish_non_exhaustive()
    }
}

impl SmtpSettings {
    /// Checks `config` (with `url_override` from `PRESSROOM_SMTP_URL` and
    /// the password from `PRESSROOM_SMTP_PASSWORD`) and builds the TLS
    /// setup. Relative `ca_file` paths are taken from `base_dir`. Nothing
    /// connects here: a refused plaintext AUTH is refused before any byte
    /// goes out.
    pub fn resolve(
        config: &SmtpConfig,
        url_override: Option<&str>,
        password: Option<Password>,
        base_dir: &Path,
    ) -> Result<SmtpSettings, SmtpConfigError> {
        let url = SmtpUrl::parse(url_override.unwrap_or(&config.url))?;
        match (&url.user, &password) {
            (Some(user), None) => {
                return Err(SmtpConfigError::NoPassword { user: user.clone() });
            }
            (None, Some(_)) => return Err(SmtpConfigError::PasswordWithoutUser),
            _ => {}
        }
        if url.security == Security::None && !is_local_host(&url.host) && !config.allow_plaintext {
            return Err(SmtpConfigError::Plaintext {
                host: url.host.clone(),
                what: if url.user.is_some() {
                    "the password (AUTH)"
                } else {
                    "mail"
                },
            });
        }
        let tls = if url.security == Security::None {
            None
        } else {
            let mut builder = TlsParameters::builder(url.host.clone());
            if let Some(ca) = &config.ca_file {
                let path = base_dir.join(ca);
                let pem = std::fs::read(&path).map_err(|e| SmtpConfigError::CaFile {
                    path: path.clone(),
                    why: e.to_string(),
                })?;
                let cert = Certificate::from_pem(&pem).map_err(|e| SmtpConfigError::CaFile {
                    path: path.clone(),
                    why: e.to_string(),
                })?;
                builder = builder.add_root_certificate(cert);
            }
            if config.danger_accept_invalid_certs {
                builder = builder.dangerous_accept_invalid_certs(true);
            }
            Some(
                builder
                    .build_rustls()
                    .map_err(|e| SmtpConfigError::Tls(e.to_string()))?,
            )
        };
        let hello = match &config.hello_name {
            Some(name) => {
                let ok = !name.is_empty()
                    && name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
                if !ok {
                    return Err(SmtpConfigError::HelloName(name.escape_debug().to_string()));
                }
                ClientId::Domain(name.clone())
            }
            None => ClientId::default(),
        };
        Ok(SmtpSettings {
            url,
            password,
            tls,
            timeout: Duration::from_secs(config.timeout_seconds.max(1)),
            hello,
            allow_plaintext: config.allow_plaintext,
        })
    }

    fn server(&self) -> String {
        format!("{}:{}", self.url.host, self.url.port)
    }
}

/// The step of the SMTP dialogue an error happened in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Connect,
    Mail,
    Rcpt,
    Data,
    /// After the message body was sent, waiting for the final reply.
    EndOfData,
}

impl Phase {
    fn name(self) -> &'static str {
        match self {
            Phase::Connect => "connecting",
            Phase::Mail => "MAIL FROM",
            Phase::Rcpt => "RCPT TO",
            Phase::Data => "DATA",
            Phase::EndOfData => "end of data",
        }
    }
}

/// The reply text of a lettre error: `451 4.7.1 try later` for a server
/// reply, the error's own words otherwise.
pub fn reply_text(err: &lettre::transport::smtp::Error) -> String {
    use std::error::Error as _;
    match (err.status(), err.source()) {
        (Some(code), Some(text)) => format!("{code} {text}"),
        (Some(code), None) => code.to_string(),
        _ => err.to_string(),
    }
}

/// Whether a reply's enhanced status code is 5.7.x (policy: spam, content,
/// authentication). Such a rejection fails the delivery without
/// suppressing the address.
fn is_policy_rejection(text: &str) -> bool {
    text.split_whitespace()
        .take(2)
        .any(|word| word.starts_with("5.7."))
}

/// Classifies a negative reply by code: 4xx defers, 5xx rejects
/// (suppressing unless 5.7.x).
pub fn classify_code(code: Code, text: &str) -> Outcome {
    let reply = if text.starts_with(&code.to_string()) {
        text.to_owned()
    } else {
        format!("{code} {text}")
    };
    match code.severity {
        Severity::TransientNegativeCompletion => Outcome::Deferred { reply },
        Severity::PermanentNegativeCompletion => Outcome::Rejected {
            suppress: !is_policy_rejection(&reply[3..]),
            reply,
        },
        _ => Outcome::Deferred { reply },
    }
}

/// Classifies an error from one step of a transaction (after the
/// connection was up).
pub fn classify_error(phase: Phase, err: &lettre::transport::smtp::Error) -> Outcome {
    let text = reply_text(err);
    if phase == Phase::Connect {
        return Outcome::Fatal {
            reason: format!("{}: {text}", phase.name()),
        };
    }
    if let Some(code) = err.status() {
        if phase == Phase::Mail {
            // The server refuses our sender, or everything right now: no
            // recipient is to blame.
            return Outcome::Fatal {
                reason: format!("the server refused MAIL FROM: {text}"),
            };
        }
        return classify_code(code, &text);
    }
    if err.is_client() {
        return Outcome::Rejected {
            reply: format!("not sent: {text}"),
            suppress: false,
        };
    }
    // Timeouts, resets, EOF, garbage: the connection is gone in the middle
    // of the transaction. After the body was sent we cannot know whether
    // the server kept it; deferring may repeat this one message, which is
    // the at-least-once promise.
    let what = if err.is_timeout() {
        "timed out"
    } else {
        "connection lost"
    };
    Outcome::Deferred {
        reply: format!("{what} during {}: {text}", phase.name()),
    }
}

/// One SMTP connection, opened on first use and reused while it works.
pub struct SmtpSender {
    settings: Arc<SmtpSettings>,
    conn: Option<SmtpConnection>,
    /// Whether the server offers PIPELINING (RFC 2920) on `conn`.
    pipelining: bool,
    /// The next message's envelope, written behind the previous body, and
    /// what the server said to it (see [`super::Transport::send_when`]).
    ahead: Option<SentAhead>,
}

/// An envelope (MAIL, RCPT, DATA) sent ahead of its message's turn.
struct SentAhead {
    envelope: Envelope,
    /// `Ok`: the server said 354 and waits for the body. `Err`: the step
    /// that failed; a connection that took DATA anyway is already closed.
    replies: Result<(), StepError>,
}

impl std::fmt::Debug for SmtpSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpSender")
            .field("server", &self.settings.server())
            .field("connected", &self.conn.is_some())
            .finish()
    }
}

/// A step's failure: where, and lettre's error.
type StepError = (Phase, lettre::transport::smtp::Error);

impl SmtpSender {
    pub fn new(settings: Arc<SmtpSettings>) -> SmtpSender {
        SmtpSender {
            settings,
            conn: None,
            pipelining: false,
            ahead: None,
        }
    }

    /// Opens, secures and authenticates a connection, when none is open;
    /// sending a message calls it first.
    pub fn connect(&mut self) -> Result<(), Outcome> {
        if self.conn.is_none() {
            let (conn, pipelining) = open(&self.settings)?;
            self.conn = Some(conn);
            self.pipelining = pipelining;
        }
        Ok(())
    }

    /// Ends the connection with QUIT (the server is between commands).
    fn drop_connection(&mut self) {
        self.ahead = None;
        if let Some(mut conn) = self.conn.take() {
            conn.abort();
        }
    }

    /// Ends the connection without writing another byte. For a server
    /// that said 354 and waits for a body we will not send: RSET or QUIT
    /// would be read as the message's text, and waiting for their reply
    /// would wait out the timeout. A connection closed before the
    /// terminator ends no message (RFC 5321 §3.8: the server discards the
    /// transaction).
    fn close_mid_data(&mut self) {
        self.ahead = None;
        self.conn = None;
    }

    /// Ends the connection the way its state allows.
    fn close(&mut self) {
        if self.ahead.as_ref().is_some_and(|a| a.replies.is_ok()) {
            self.close_mid_data();
        } else {
            self.drop_connection();
        }
    }

    /// The MAIL and RCPT commands for `envelope`.
    fn envelope_commands(
        conn: &SmtpConnection,
        envelope: &Envelope,
        eight_bit: bool,
    ) -> (Mail, Vec<Rcpt>) {
        let mut params = Vec::new();
        let non_ascii = envelope
            .from()
            .is_some_and(|a| !AsRef::<str>::as_ref(a).is_ascii())
            || envelope
                .to()
                .iter()
                .any(|a| !AsRef::<str>::as_ref(a).is_ascii());
        if non_ascii && conn.server_info().supports_feature(Extension::SmtpUtfEight) {
            params.push(MailParameter::SmtpUtfEight);
        }
        if eight_bit && conn.server_info().supports_feature(Extension::EightBitMime) {
            params.push(MailParameter::Body(MailBodyParameter::EightBitMime));
        }
        let mail = Mail::new(envelope.from().cloned(), params);
        let rcpts = envelope
            .to()
            .iter()
            .map(|to| Rcpt::new(to.clone(), vec![]))
            .collect();
        (mail, rcpts)
    }

    /// MAIL, RCPT… and DATA for `envelope` as one pipelined group (RFC
    /// 2920), each with its CRLF, and how many RCPTs.
    fn envelope_group(
        conn: &SmtpConnection,
        envelope: &Envelope,
        eight_bit: bool,
    ) -> (String, usize) {
        let (mail, rcpts) = Self::envelope_commands(conn, envelope, eight_bit);
        let mut group = mail.to_string();
        for rcpt in &rcpts {
            group.push_str(&rcpt.to_string());
        }
        group.push_str(&Data.to_string());
        (group, rcpts.len())
    }

    /// Reads the replies to a pipelined MAIL (its reply is `mail`),
    /// `rcpts` RCPTs and DATA. Every reply is read even after a failure,
    /// so the connection stays in step for RSET and the next message; a
    /// server that says 354 after refusing MAIL or RCPT waits for a body
    /// we will not send, and is closed.
    fn envelope_replies(
        &mut self,
        mail: Result<lettre::transport::smtp::response::Response, lettre::transport::smtp::Error>,
        rcpts: usize,
    ) -> Result<(), StepError> {
        let Some(conn) = self.conn.as_mut() else {
            unreachable!("envelope replies without a connection")
        };
        let mut first_error = None;
        let mut note = |phase: Phase, result: Result<_, lettre::transport::smtp::Error>| {
            match result {
                Ok(_) => Ok(()),
                // No reply at all: the connection is gone (after the
                // first refusal, if any, which says why).
                Err(e) if e.status().is_none() => Err(first_error.take().unwrap_or((phase, e))),
                Err(e) => {
                    first_error.get_or_insert((phase, e));
                    Ok(())
                }
            }
        };
        note(Phase::Mail, mail)?;
        for _ in 0..rcpts {
            note(Phase::Rcpt, conn.read_response())?;
        }
        let data = conn.read_response();
        let data_ok = data.is_ok();
        note(Phase::Data, data)?;
        if let Some(error) = first_error {
            if data_ok {
                self.close_mid_data();
            }
            return Err(error);
        }
        Ok(())
    }

    /// Sends `message`'s envelope and reads the replies.
    fn envelope(&mut self, message: &Message, eight_bit: bool) -> Result<(), StepError> {
        let Some(conn) = self.conn.as_mut() else {
            unreachable!("transaction without a connection")
        };
        let envelope = message.envelope();
        if self.pipelining {
            // RFC 2920: MAIL, RCPT and DATA in one write, then their
            // replies in order.
            let (group, rcpts) = Self::envelope_group(conn, envelope, eight_bit);
            let mail = conn.command(Pipelined(group));
            self.envelope_replies(mail, rcpts)
        } else {
            let (mail, rcpts) = Self::envelope_commands(conn, envelope, eight_bit);
            conn.command(mail).map_err(|e| (Phase::Mail, e))?;
            for rcpt in rcpts {
                conn.command(rcpt).map_err(|e| (Phase::Rcpt, e))?;
            }
            conn.command(Data).map_err(|e| (Phase::Data, e))?;
            Ok(())
        }
    }

    /// After a 354: waits for `ready`, then sends the body, with the
    /// next message's envelope behind it when `next` gives one, and reads
    /// the body's reply (then the envelope's, kept in `self.ahead`).
    /// `Ok(None)`: the run is gone and the body was not sent.
    fn body(
        &mut self,
        message: &Message,
        body: &mut Option<Vec<u8>>,
        ready: &mut dyn FnMut() -> bool,
        next: &mut dyn FnMut() -> Option<super::Ahead>,
    ) -> Result<Option<String>, StepError> {
        // The server waits for the body; it goes only once the previous
        // message is on record (see `Transport::send_when`).
        if !ready() {
            self.close_mid_data();
            return Ok(None);
        }
        let Some(conn) = self.conn.as_mut() else {
            unreachable!("the connection is kept after a good DATA")
        };
        // One write for the body and its terminator: lettre's `message`
        // writes `\r\n.\r\n` separately, and with Nagle on (lettre never
        // sets TCP_NODELAY) those five bytes wait for the server's delayed
        // ACK of the body, 40 ms on Linux: 25 messages a second at most.
        let body = body.take().unwrap_or_else(|| message.formatted());
        let (response, ahead) = match DataBlock::new(body) {
            Ok(mut block) => {
                // PIPELINING across messages: the next envelope rides in
                // the same write, so its replies come with this body's.
                // No mail goes without its body, and that body waits for
                // this message's record like every other.
                let ahead = if self.pipelining { next() } else { None };
                let ahead = ahead.map(|a| {
                    let (group, rcpts) = Self::envelope_group(conn, &a.envelope, a.eight_bit);
                    block.0.push_str(&group);
                    (a.envelope, rcpts)
                });
                (conn.command(block), ahead)
            }
            Err(body) => (conn.message(&body), None),
        };
        let response = match response {
            Ok(response) => response,
            Err(e) => {
                // No reply, or 421: the connection is gone or going, and
                // with it whatever was sent ahead (closed here without
                // another byte: the server may be in that envelope's DATA);
                // the next message starts afresh. Any other refusal ends
                // this transaction only: the server reads the envelope
                // behind it.
                let gone = e.status().is_none_or(|c| c.to_string() == "421");
                match (gone, ahead) {
                    (true, Some(_)) => self.close_mid_data(),
                    (false, Some((envelope, rcpts))) => self.read_ahead(envelope, rcpts),
                    (_, None) => {}
                }
                return Err((Phase::EndOfData, e));
            }
        };
        if let Some((envelope, rcpts)) = ahead {
            self.read_ahead(envelope, rcpts);
        }
        let text: Vec<&str> = response.message().collect();
        Ok(Some(format!("{} {}", response.code(), text.join(" "))))
    }

    /// Reads the replies to the envelope sent behind a body (`rcpts`
    /// recipients) and keeps them for that envelope's transaction.
    fn read_ahead(&mut self, envelope: Envelope, rcpts: usize) {
        let Some(conn) = self.conn.as_mut() else {
            unreachable!("the connection is kept after a reply")
        };
        let mail = conn.read_response();
        let replies = self.envelope_replies(mail, rcpts);
        self.ahead = Some(SentAhead { envelope, replies });
    }

    /// Runs one transaction, or finishes the one whose envelope went
    /// ahead. `Err` carries the step that failed.
    fn transaction(
        &mut self,
        message: &Message,
        body: &mut Option<Vec<u8>>,
        ready: &mut dyn FnMut() -> bool,
        next: &mut dyn FnMut() -> Option<super::Ahead>,
    ) -> Result<Option<String>, StepError> {
        match self.ahead.take() {
            Some(ahead) => ahead.replies?,
            None => {
                let eight_bit = body.as_deref().is_some_and(|b| !b.is_ascii());
                self.envelope(message, eight_bit)?
            }
        }
        self.body(message, body, ready, next)
    }
}

/// Commands written together (PIPELINING), each with its CRLF.
struct Pipelined(String);

impl std::fmt::Display for Pipelined {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A message body ready for the wire after DATA: dot-stuffed (a `.` that
/// starts a line is doubled, as lettre's codec does) and followed by the
/// `\r\n.\r\n` terminator, so that it goes out in one write.
struct DataBlock(String);

impl DataBlock {
    /// The body back when it is not UTF-8 (lettre's own path handles it).
    /// Our messages need no stuffing (see `email::qp`): then the body is
    /// taken as it is, without a copy.
    fn new(body: Vec<u8>) -> Result<DataBlock, Vec<u8>> {
        let text = String::from_utf8(body).map_err(|e| e.into_bytes())?;
        let bytes = text.as_bytes();
        let stuff: Vec<usize> = bytes
            .starts_with(b".")
            .then_some(0)
            .into_iter()
            .chain(memchr::memmem::find_iter(bytes, b"\r\n.").map(|i| i + 2))
            .collect();
        let mut out = if stuff.is_empty() {
            text
        } else {
            let mut out = String::with_capacity(text.len() + stuff.len() + 5);
            let mut from = 0;
            for at in stuff {
                out.push_str(&text[from..at]);
                out.push('.');
                from = at;
            }
            out.push_str(&text[from..]);
            out
        };
        out.push_str("\r\n.\r\n");
        Ok(DataBlock(out))
    }
}

impl std::fmt::Display for DataBlock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Opens a connection ready for transactions, and whether the server
/// offers PIPELINING.
fn open(settings: &SmtpSettings) -> Result<(SmtpConnection, bool), Outcome> {
    let server = settings.server();
    let fatal = |what: &str, err: lettre::transport::smtp::Error| Outcome::Fatal {
        reason: format!("{what} {server}: {}", reply_text(&err)),
    };
    let wrapper = match settings.url.security {
        Security::Tls => settings.tls.as_ref(),
        _ => None,
    };
    let mut conn = SmtpConnection::connect(
        (settings.url.host.as_str(), settings.url.port),
        Some(settings.timeout),
        &settings.hello,
        wrapper,
        None,
    )
    .map_err(|e| fatal("cannot connect to", e))?;
    if settings.url.security == Security::StartTls {
        let Some(tls) = settings.tls.as_ref() else {
            unreachable!("STARTTLS settings without TLS parameters")
        };
        if !conn.server_info().supports_feature(Extension::StartTls) {
            conn.abort();
            return Err(Outcome::Fatal {
                reason: format!(
                    "{server} does not offer STARTTLS, which smtp:// requires; use smtps://, or smtp://…?tls=none for a trusted local server"
                ),
            });
        }
        conn.starttls(tls, &settings.hello)
            .map_err(|e| fatal("STARTTLS failed with", e))?;
    }
    // lettre keeps the EHLO keywords it knows; PIPELINING is not one.
    let pipelining = conn
        .command(Ehlo::new(settings.hello.clone()))
        .is_ok_and(|reply| {
            reply
                .message()
                .any(|line| line.trim().eq_ignore_ascii_case("PIPELINING"))
        });
    if let (Some(user), Some(password)) = (&settings.url.user, &settings.password) {
        // Checked at resolve time too; checked again on the live connection.
        if !conn.is_encrypted() && !is_local_host(&settings.url.host) && !settings.allow_plaintext {
            conn.abort();
            return Err(Outcome::Fatal {
                reason: format!("refusing to send the password unencrypted to {server}"),
            });
        }
        let credentials = Credentials::new(user.clone(), password.expose().to_owned());
        if let Err(e) = conn.auth(&[Mechanism::Plain, Mechanism::Login], &credentials) {
            conn.abort();
            return Err(Outcome::Fatal {
                reason: format!(
                    "authentication as `{user}` failed at {server}: {} (check the user and PRESSROOM_SMTP_PASSWORD)",
                    reply_text(&e)
                ),
            });
        }
    }
    Ok((conn, pipelining))
}

impl super::Transport for SmtpSender {
    fn send_when(
        &mut self,
        message: &Message,
        formatted: Vec<u8>,
        ready: &mut dyn FnMut() -> bool,
        next: &mut dyn FnMut() -> Option<super::Ahead>,
    ) -> Outcome {
        // An envelope sent ahead for a message the caller then did not
        // send (the run is stopping): the server may wait for its body.
        if self
            .ahead
            .as_ref()
            .is_some_and(|a| &a.envelope != message.envelope())
        {
            self.close();
        }
        let mut body = Some(formatted);
        for attempt in 0..2 {
            let reused = self.conn.is_some() || self.ahead.is_some();
            if self.ahead.is_none() {
                if let Err(outcome) = self.connect() {
                    return outcome;
                }
            }
            match self.transaction(message, &mut body, ready, next) {
                Ok(Some(reply)) => return Outcome::Accepted { reply },
                Ok(None) => {
                    return Outcome::Deferred {
                        reply: "not sent: the run stopped before the message's body".to_owned(),
                    }
                }
                Err((phase, err)) => {
                    let lost = err.status().is_none() && !err.is_client();
                    // A reused connection the server closed while idle
                    // (or with 421) fails at MAIL: reconnect once. So does
                    // an envelope sent ahead on a connection the server
                    // closed after the previous message.
                    let stale = phase == Phase::Mail
                        && (lost || err.status().is_some_and(|c| c.to_string() == "421"));
                    if reused && stale && attempt == 0 {
                        self.close();
                        continue;
                    }
                    let outcome = classify_error(phase, &err);
                    let reusable = !lost
                        && !matches!(outcome, Outcome::Fatal { .. })
                        && err.status().is_none_or(|c| c.to_string() != "421");
                    if !reusable {
                        self.close();
                    } else if self.ahead.is_none() {
                        // After a refused body with the next envelope
                        // behind it, the server is already in that next
                        // transaction: no RSET then.
                        let reset_ok = self.conn.as_mut().is_some_and(|c| c.command(Rset).is_ok());
                        if !reset_ok {
                            self.drop_connection();
                        }
                    }
                    return outcome;
                }
            }
        }
        Outcome::Deferred {
            reply: "connection lost twice before MAIL FROM".to_owned(),
        }
    }
}

impl Drop for SmtpSender {
    fn drop(&mut self) {
        if self.ahead.as_ref().is_some_and(|a| a.replies.is_ok()) {
            // The server waits for a body: close without QUIT.
            self.close_mid_data();
        } else if let Some(mut conn) = self.conn.take() {
            let _ = conn.quit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;
    use std::str::FromStr;

    use lettre::transport::smtp::response::Response;

    use crate::delivery::Transport;

    #[test]
    fn data_blocks_are_dot_stuffed_and_terminated_in_one_piece() {
        let block = |b: &[u8]| DataBlock::new(b.to_vec()).ok().map(|d| d.0);
        assert_eq!(
            block(b".a\r\n..b\r\nc.\r\n.").unwrap(),
            "..a\r\n...b\r\nc.\r\n..\r\n.\r\n"
        );
        // Only CRLF starts a line, as in lettre's codec.
        assert_eq!(
            block(b"a\n.b\r.c\r\r\n.d").unwrap(),
            "a\n.b\r.c\r\r\n..d\r\n.\r\n"
        );
        assert_eq!(block(b"").unwrap(), "\r\n.\r\n");
        assert!(block(b"\xff").is_none());
    }

    fn code(reply: &str) -> (Code, String) {
        let r = Response::from_str(&format!("{reply}\r\n")).unwrap();
        let text: Vec<&str> = r.message().collect();
        (r.code(), text.join(" "))
    }

    #[test]
    fn replies_are_classified_by_code_and_enhanced_status() {
        let (c, t) = code("451 4.7.1 Greylisted, try again later");
        assert_eq!(
            classify_code(c, &t),
            Outcome::Deferred {
                reply: "451 4.7.1 Greylisted, try again later".into()
            }
        );
        let (c, t) = code("550 5.1.1 <x@example.com>: Recipient address rejected");
        assert!(matches!(
            classify_code(c, &t),
            Outcome::Rejected { suppress: true, .. }
        ));
        let (c, t) = code("554 5.7.1 Message rejected as spam");
        assert!(matches!(
            classify_code(c, &t),
            Outcome::Rejected {
                suppress: false,
                ..
            }
        ));
        let (c, t) = code("552 mailbox full");
        assert!(matches!(
            classify_code(c, &t),
            Outcome::Rejected { suppress: true, .. }
        ));
        let (c, t) = code("421 4.4.2 closing");
        assert!(matches!(classify_code(c, &t), Outcome::Deferred { .. }));
    }

    #[test]
    fn urls_parse_and_plaintext_rules_hold() {
        let u = SmtpUrl::parse("smtp://news%40example.com@mail.example.com:587").unwrap();
        assert_eq!(u.user.as_deref(), Some("news@example.com"));
        assert_eq!((u.port, u.security), (587, Security::StartTls));
        let u = SmtpUrl::parse("smtps://mail.example.com").unwrap();
        assert_eq!((u.port, u.security), (465, Security::Tls));
        let u = SmtpUrl::parse("smtp://127.0.0.1:2525?tls=none").unwrap();
        assert_eq!(u.security, Security::None);
        for (bad, why) in [
            ("smtp://u:hunter2@mail.example.com", "password"),
            ("http://mail.example.com", "scheme"),
            ("smtps://mail.example.com?tls=none", "tls="),
            ("smtp://mail.example.com?x=1", "unknown option"),
        ] {
            let err = SmtpUrl::parse(bad).unwrap_err().to_string();
            assert!(err.contains(why), "{bad}: {err}");
            assert!(!err.contains("hunter2"), "{err}");
        }
        assert!(is_local_host("localhost") && is_local_host("127.0.0.1") && is_local_host("::1"));
        assert!(!is_local_host("mail.example.com") && !is_local_host("10.0.0.1"));

        let base = Path::new(".");
        let config = |url: &str| SmtpConfig {
            url: url.to_owned(),
            ..SmtpConfig::default()
        };
        let pw = || Some(Password::new("hunter2".into()));
        let err = SmtpSettings::resolve(
            &config("smtp://me@mail.example.com?tls=none"),
            None,
            pw(),
            base,
        )
        .unwrap_err();
        assert!(matches!(err, SmtpConfigError::Plaintext { .. }));
        assert!(
            err.to_string()
                .contains("password (AUTH) in plaintext to mail.example.com"),
            "{err}"
        );
        SmtpSettings::resolve(
            &config("smtp://me@localhost:2525?tls=none"),
            None,
            pw(),
            base,
        )
        .unwrap();
        let mut allowed = config("smtp://me@mail.example.com?tls=none");
        allowed.allow_plaintext = true;
        SmtpSettings::resolve(&allowed, None, pw(), base).unwrap();
        let err = SmtpSettings::resolve(&config("smtp://me@mail.example.com"), None, None, base)
            .unwrap_err();
        assert_eq!(err, SmtpConfigError::NoPassword { user: "me".into() });
        // The override wins, and the password never shows in Debug.
        let s = SmtpSettings::resolve(
            &config("smtp://x.example.com"),
            Some("smtps://me@y.example.com"),
            pw(),
            base,
        )
        .unwrap();
        assert_eq!(s.url.host, "y.example.com");
        let debug = format!("{s:?}");
        assert!(
            !debug.contains("hunter2") && debug.contains("REDACTED"),
            "{debug}"
        );
    }

    /// A real (if tiny) SMTP server on a loopback port that answers from
    /// a script, so lettre produces its real errors. Each entry is what to
    /// answer to the command starting with that verb; `None` closes the
    /// connection instead.
    fn scripted_server(script: Vec<(&'static str, Option<&'static str>)>) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut out = stream.try_clone().unwrap();
            let mut input = BufReader::new(stream);
            out.write_all(b"220 test ESMTP\r\n").unwrap();
            let mut in_data = false;
            let mut line = String::new();
            loop {
                line.clear();
                if input.read_line(&mut line).unwrap_or(0) == 0 {
                    return;
                }
                let verb = if in_data {
                    if line != ".\r\n" {
                        continue;
                    }
                    in_data = false;
                    "."
                } else {
                    line.split_whitespace().next().unwrap_or("")
                };
                let verb = verb.to_ascii_uppercase();
                let answer = script
                    .iter()
                    .find(|(v, _)| *v == verb)
                    .map(|(_, a)| *a)
                    .unwrap_or(Some(match verb.as_str() {
                        "EHLO" => "250-test\r\n250 8BITMIME",
                        "QUIT" => "221 bye",
                        "DATA" => "354 go ahead",
                        _ => "250 ok",
                    }));
                match answer {
                    None => return,
                    Some(a) => {
                        out.write_all(format!("{a}\r\n").as_bytes()).unwrap();
                        if verb == "DATA" && a.starts_with("354") {
                            in_data = true;
                        }
                    }
                }
            }
        });
        port
    }

    fn sender(port: u16, user: Option<&str>) -> SmtpSender {
        let url = match user {
            Some(u) => format!("smtp://{u}@127.0.0.1:{port}?tls=none"),
            None => format!("smtp://127.0.0.1:{port}?tls=none"),
        };
        let config = SmtpConfig {
            url,
            timeout_seconds: 2,
            ..SmtpConfig::default()
        };
        let settings = SmtpSettings::resolve(
            &config,
            None,
            user.map(|_| Password::new("secret".into())),
            Path::new("."),
        )
        .unwrap();
        SmtpSender::new(Arc::new(settings))
    }

    fn message() -> Message {
        Message::builder()
            .from("News <news@example.com>".parse().unwrap())
            .to("reader@example.com".parse().unwrap())
            .subject("hi")
            .body("hello\r\n".to_owned())
            .unwrap()
    }

    #[test]
    fn transaction_errors_from_a_live_server_are_classified() {
        let send = |script| sender(scripted_server(script), None).send(&message());
        assert!(matches!(send(vec![]), Outcome::Accepted { .. }));
        assert!(matches!(
            send(vec![("RCPT", Some("451 4.2.0 later"))]),
            Outcome::Deferred { .. }
        ));
        assert_eq!(
            send(vec![("RCPT", Some("550 5.1.1 no such user"))]),
            Outcome::Rejected {
                reply: "550 5.1.1 no such user".into(),
                suppress: true
            }
        );
        assert!(matches!(
            send(vec![(".", Some("554 5.7.1 spam"))]),
            Outcome::Rejected {
                suppress: false,
                ..
            }
        ));
        // The server vanishes after the body: maybe delivered, so retry.
        let dropped = send(vec![(".", None)]);
        assert!(
            matches!(&dropped, Outcome::Deferred { reply } if reply.contains("end of data")),
            "{dropped:?}"
        );
        assert!(matches!(
            send(vec![("RCPT", None)]),
            Outcome::Deferred { .. }
        ));
        // Sender refused: nobody's fault but the config's.
        assert!(matches!(
            send(vec![("MAIL", Some("553 5.7.1 sender not owned"))]),
            Outcome::Fatal { .. }
        ));
    }

    /// With PIPELINING, MAIL, RCPT and DATA go in one write and every
    /// reply is read, so refusals classify as without it and the
    /// connection stays usable (the scripted server takes one connection
    /// only: a second message on a dropped one would be Fatal).
    #[test]
    fn pipelined_transactions_classify_and_keep_the_connection() {
        let pipelining = Some("250-test\r\n250-PIPELINING\r\n250 8BITMIME");
        let twice = |script: Vec<(&'static str, Option<&'static str>)>| {
            let mut script = script;
            script.push(("EHLO", pipelining));
            let mut sender = sender(scripted_server(script), None);
            let first = sender.send(&message());
            assert!(sender.pipelining, "PIPELINING seen in the EHLO reply");
            (first, sender.send(&message()))
        };
        let (a, b) = twice(vec![]);
        assert!(matches!(a, Outcome::Accepted { .. }), "{a:?}");
        assert!(matches!(b, Outcome::Accepted { .. }), "{b:?}");
        let (a, b) = twice(vec![
            ("RCPT", Some("550 5.1.1 no such user")),
            ("DATA", Some("554 5.5.1 no valid recipients")),
        ]);
        let rejected = Outcome::Rejected {
            reply: "550 5.1.1 no such user".into(),
            suppress: true,
        };
        assert_eq!((&a, &b), (&rejected, &rejected));
        let (a, b) = twice(vec![
            ("RCPT", Some("451 4.2.0 later")),
            ("DATA", Some("503 5.5.1 no valid recipients")),
        ]);
        assert!(matches!(a, Outcome::Deferred { .. }), "{a:?}");
        assert!(matches!(b, Outcome::Deferred { .. }), "{b:?}");
        let (a, _) = twice(vec![("MAIL", Some("553 5.7.1 sender not owned"))]);
        assert!(matches!(a, Outcome::Fatal { .. }), "{a:?}");
        // A server that takes DATA after refusing RCPT would wait for a
        // body: the connection is dropped, the refusal still counts.
        let (a, b) = twice(vec![("RCPT", Some("550 5.1.1 no such user"))]);
        assert_eq!(a, rejected);
        assert!(matches!(b, Outcome::Fatal { .. }), "{b:?}");
    }

    #[test]
    fn a_gone_run_sends_no_body() {
        let port = scripted_server(vec![("EHLO", Some("250-test\r\n250 PIPELINING"))]);
        let message = message();
        let formatted = message.formatted();
        let out = sender(port, None).send_when(&message, formatted, &mut || false, &mut || None);
        assert!(
            matches!(&out, Outcome::Deferred { reply } if reply.contains("before the message's body")),
            "{out:?}"
        );
    }

    #[test]
    fn connection_level_trouble_is_fatal() {
        // Nothing listens on this port once the listener is dropped.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let out = sender(port, None).send(&message());
        assert!(
            matches!(&out, Outcome::Fatal { reason } if reason.contains("cannot connect")),
            "{out:?}"
        );

        let port = scripted_server(vec![
            ("EHLO", Some("250-test\r\n250 AUTH PLAIN LOGIN")),
            ("AUTH", Some("535 5.7.8 Authentication credentials invalid")),
        ]);
        let out = sender(port, Some("me")).send(&message());
        assert!(
            matches!(&out, Outcome::Fatal { reason } if reason.contains("535") && !reason.contains("secret")),
            "{out:?}"
        );

        // smtp:// without tls=none requires STARTTLS.
        let port = scripted_server(vec![]);
        let config = SmtpConfig {
            url: format!("smtp://127.0.0.1:{port}"),
            ..SmtpConfig::default()
        };
        let settings = SmtpSettings::resolve(&config, None, None, Path::new(".")).unwrap();
        let out = SmtpSender::new(Arc::new(settings)).send(&message());
        assert!(
            matches!(&out, Outcome::Fatal { reason } if reason.contains("STARTTLS")),
            "{out:?}"
        );
    }
}
