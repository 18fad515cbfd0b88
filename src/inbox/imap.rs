//! The IMAP bounce mailbox: `imaps://user@host[:port]/MAILBOX` (or
//! `imap://…` with STARTTLS required), read with the `imap` crate's client
//! (imap-proto's response parser: literals, tagged replies, UIDs) over a
//! rustls stream set up here, so the trusted roots and the plaintext rules
//! are ours and match `[smtp]`'s.
//!
//! A run selects the mailbox, lists the messages not yet processed
//! (`UID SEARCH NOT KEYWORD $PressroomProcessed`, or `UNSEEN` on a server
//! that takes no keywords), fetches them in batches with `BODY.PEEK[]` (so
//! reading marks nothing) and, when the caller says a batch is recorded,
//! flags those messages and optionally moves them (`UID MOVE`, else
//! `UID COPY` + `\Deleted` + `UID EXPUNGE`). Memory holds one batch.
//!
//! Security rules, checked before any connection: the password comes from
//! the caller (the command reads `PRESSROOM_IMAP_PASSWORD`), never from the
//! URL, and `Debug` redacts it; `imap://` requires STARTTLS, and
//! `?tls=none` (no encryption) is taken only for localhost / 127.0.0.1 /
//! ::1, so a password never crosses a network in clear text.

use std::collections::HashSet;
use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use imap::types::{Fetches, Flag, Uid};
use percent_encoding::percent_decode_str;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

use crate::error_kind::{ErrorKind, HasKind};
use crate::net::is_local_host;
pub use crate::net::Password;

/// The keyword a processed message carries.
pub const PROCESSED: &str = "$PressroomProcessed";

/// The default port of `imaps://`.
pub const IMAPS_PORT: u16 = 993;
/// The default port of `imap://`.
pub const IMAP_PORT: u16 = 143;

/// At most this many messages in one fetch…
const BATCH_MESSAGES: usize = 100;
/// …and at most this many bytes (one larger message goes alone).
const BATCH_BYTES: u64 = 8 * 1024 * 1024;
/// UIDs whose sizes are asked for in one command.
const SIZE_CHUNK: usize = 500;

/// How the connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// `imaps://`: TLS from the first byte.
    Tls,
    /// `imap://` (default): STARTTLS, required.
    StartTls,
    /// `imap://…?tls=none`: no encryption (loopback only).
    None,
}

/// A parsed `imaps://` / `imap://` URL. It never holds a password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImapUrl {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub security: Security,
    /// The mailbox as the user wrote it (percent-decoded), `INBOX` when
    /// the URL has no path.
    pub mailbox: String,
}

/// Everything that can go wrong with the mailbox. The first group is the
/// user's input (exit 1); [`ImapError::Server`] is a run that could not
/// finish (exit 2).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ImapError {
    #[error("--imap `{url}`: {why}")]
    Url { url: String, why: String },
    #[error("--imap names user `{user}` but PRESSROOM_IMAP_PASSWORD is not set")]
    NoPassword { user: String },
    #[error("refusing to send the IMAP password in plaintext to {host}: use imaps:// or imap:// (STARTTLS); `tls=none` is for a server on this machine only")]
    Plaintext { host: String },
    #[error("{}: cannot read the CA file: {why}", path.display())]
    CaFile { path: PathBuf, why: String },
    #[error("--move-to `{0}`: {1}")]
    MoveTo(String, &'static str),
    /// The server, the network or TLS: `server` is `host:port`, `what`
    /// says what failed and what to do.
    #[error("IMAP server {server}: {what}")]
    Server { server: String, what: String },
}

impl HasKind for ImapError {
    fn kind(&self) -> ErrorKind {
        match self {
            ImapError::Server { .. } => ErrorKind::Run,
            _ => ErrorKind::Input,
        }
    }
}

impl ImapUrl {
    pub fn parse(text: &str) -> Result<ImapUrl, ImapError> {
        let fail = |why: &str| ImapError::Url {
            url: redact_url(text),
            why: why.to_owned(),
        };
        let url = url::Url::parse(text).map_err(|e| fail(&e.to_string()))?;
        let mut security = match url.scheme() {
            "imap" => Security::StartTls,
            "imaps" => Security::Tls,
            other => return Err(fail(&format!("scheme `{other}` is not imaps or imap"))),
        };
        if url.password().is_some() {
            return Err(fail(
                "it contains a password; the password comes only from PRESSROOM_IMAP_PASSWORD",
            ));
        }
        let host = match url.host() {
            Some(url::Host::Domain(d)) if !d.is_empty() => d.to_owned(),
            Some(url::Host::Ipv4(ip)) => ip.to_string(),
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            _ => return Err(fail("it has no host")),
        };
        for (key, value) in url.query_pairs() {
            match (key.as_ref(), value.as_ref(), security) {
                ("tls", "none", Security::StartTls) => security = Security::None,
                ("tls", "starttls", Security::StartTls) => {}
                ("tls", _, _) => {
                    return Err(fail(
                        "tls= takes `starttls` or `none`, and only with imap://",
                    ))
                }
                (other, _, _) => return Err(fail(&format!("unknown option `{other}`"))),
            }
        }
        let decode = |part: &str, what: &str| {
            percent_decode_str(part)
                .decode_utf8()
                .map(|s| s.into_owned())
                .map_err(|_| fail(&format!("the {what} is not valid UTF-8")))
        };
        // RFC 5092 allows `user;AUTH=…`: the mechanism is ours to choose.
        let user = decode(url.username(), "user name")?;
        let user = user.split(';').next().unwrap_or_default().to_owned();
        if user.is_empty() {
            return Err(fail(
                "it names no user; write imaps://USER@host/MAILBOX (an @ in the user as %40)",
            ));
        }
        let path = url.path().trim_start_matches('/');
        let mailbox = if path.is_empty() {
            "INBOX".to_owned()
        } else {
            decode(path, "mailbox name")?
        };
        if mailbox.chars().any(|c| c.is_control()) {
            return Err(fail("the mailbox name has a control character"));
        }
        let port = url.port().unwrap_or(match security {
            Security::Tls => IMAPS_PORT,
            _ => IMAP_PORT,
        });
        Ok(ImapUrl {
            host,
            port,
            user,
            security,
            mailbox,
        })
    }

    /// `host:port`, as messages name the server.
    pub fn server(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
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

/// Everything needed to open the mailbox, checked and ready.
#[derive(Clone)]
pub struct ImapSettings {
    pub url: ImapUrl,
    password: Password,
    tls: Option<Arc<rustls::ClientConfig>>,
    /// The folder processed messages go to, if any.
    pub move_to: Option<String>,
    timeout: Duration,
}

impl std::fmt::Debug for ImapSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImapSettings")
            .field("url", &self.url)
            .field("password", &self.password)
            .field("move_to", &self.move_to)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl ImapSettings {
    /// Checks the URL, the password and the folder, and builds the TLS
    /// setup: the system's roots plus `ca_file` (relative to `base_dir`).
    /// Nothing connects here.
    pub fn resolve(
        url: &str,
        password: Option<Password>,
        ca_file: Option<&Path>,
        move_to: Option<&str>,
        base_dir: &Path,
    ) -> Result<ImapSettings, ImapError> {
        let url = ImapUrl::parse(url)?;
        let Some(password) = password else {
            return Err(ImapError::NoPassword { user: url.user });
        };
        if url.security == Security::None && !is_local_host(&url.host) {
            return Err(ImapError::Plaintext { host: url.host });
        }
        if let Some(folder) = move_to {
            if folder.is_empty() || folder.chars().any(|c| c.is_control()) {
                return Err(ImapError::MoveTo(
                    folder.escape_debug().to_string(),
                    "a folder name, not empty and without control characters",
                ));
            }
            if folder == url.mailbox {
                return Err(ImapError::MoveTo(
                    folder.to_owned(),
                    "is the mailbox read; name another folder",
                ));
            }
        }
        let tls = match url.security {
            Security::None => None,
            _ => Some(Arc::new(tls_config(
                ca_file.map(|f| base_dir.join(f)).as_deref(),
            )?)),
        };
        Ok(ImapSettings {
            url,
            password,
            tls,
            move_to: move_to.map(str::to_owned),
            timeout: Duration::from_secs(60),
        })
    }

    /// Another wait for connect, read and write (default 60 seconds).
    pub fn with_timeout(mut self, timeout: Duration) -> ImapSettings {
        self.timeout = timeout.max(Duration::from_secs(1));
        self
    }

    fn fail(&self, what: impl Into<String>) -> ImapError {
        ImapError::Server {
            server: self.url.server(),
            what: what.into(),
        }
    }
}

/// rustls with ring, the platform's roots and the extra PEM file.
fn tls_config(ca_file: Option<&Path>) -> Result<rustls::ClientConfig, ImapError> {
    let mut roots = rustls::RootCertStore::empty();
    // Unreadable system certificates are skipped, as lettre does.
    let native = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(native.certs);
    if let Some(path) = ca_file {
        let fail = |why: String| ImapError::CaFile {
            path: path.to_owned(),
            why,
        };
        let pem = std::fs::read(path).map_err(|e| fail(e.to_string()))?;
        let mut added = 0;
        for cert in CertificateDer::pem_slice_iter(&pem) {
            let cert = cert.map_err(|e| fail(format!("not a PEM certificate: {e}")))?;
            roots
                .add(cert)
                .map_err(|e| fail(format!("not a usable certificate: {e}")))?;
            added += 1;
        }
        if added == 0 {
            return Err(fail("it holds no PEM certificate".to_owned()));
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ImapError::CaFile {
            path: ca_file.map(Path::to_owned).unwrap_or_default(),
            why: e.to_string(),
        })?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(config)
}

/// The byte stream under the IMAP client.
enum Stream {
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
    Plain(TcpStream),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tls(s) => s.read(buf),
            Stream::Plain(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tls(s) => s.write(buf),
            Stream::Plain(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Tls(s) => s.flush(),
            Stream::Plain(s) => s.flush(),
        }
    }
}

/// How processed messages are marked, decided by what the mailbox allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marking {
    /// The `$PressroomProcessed` keyword (PERMANENTFLAGS has `\*`).
    Keyword,
    /// `\Seen`: the server keeps no keywords, so a message someone read
    /// in a mail program before the run is skipped too.
    Seen,
}

/// An open, selected mailbox.
pub struct Mailbox {
    settings: ImapSettings,
    session: imap::Session<Stream>,
    /// The mailbox's UIDVALIDITY: with a UID, names one message for good.
    pub uid_validity: u32,
    pub marking: Marking,
    can_move: bool,
    uidplus: bool,
    /// Messages not yet processed, ascending, not yet fetched.
    pending: std::collections::VecDeque<Uid>,
    searched: bool,
    /// Fetched, not yet handed out by [`Mailbox::next_message`].
    queue: std::collections::VecDeque<(Uid, Vec<u8>)>,
    logged_out: bool,
}

impl std::fmt::Debug for Mailbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailbox")
            .field("settings", &self.settings)
            .field("uid_validity", &self.uid_validity)
            .field("marking", &self.marking)
            .finish_non_exhaustive()
    }
}

/// One fetched message.
#[derive(Debug)]
pub struct Message<'a> {
    pub uid: Uid,
    pub bytes: &'a [u8],
}

/// Messages fetched together; they borrow from one response buffer.
pub struct Batch {
    fetches: Fetches,
    /// UIDs asked for but not returned (expunged meanwhile).
    pub missing: Vec<Uid>,
}

impl Batch {
    /// The messages, in UID order.
    pub fn messages(&self) -> Vec<Message<'_>> {
        let mut out: Vec<Message<'_>> = self
            .fetches
            .iter()
            .filter_map(|f| {
                Some(Message {
                    uid: f.uid?,
                    bytes: f.body()?,
                })
            })
            .collect();
        out.sort_by_key(|m| m.uid);
        out.dedup_by_key(|m| m.uid);
        out
    }
}

impl Mailbox {
    /// Connects, secures the connection, logs in, selects the mailbox
    /// read-write and checks the `--move-to` folder. Every failure names
    /// the server and what to do.
    pub fn open(settings: ImapSettings) -> Result<Mailbox, ImapError> {
        let url = settings.url.clone();
        let tcp = connect(&settings)?;
        let mut client = match (&url.security, &settings.tls) {
            (Security::Tls, Some(tls)) => {
                let stream = handshake(&settings, tls, tcp)?;
                let mut client = imap::Client::new(stream);
                let greeting = client
                    .read_greeting()
                    .map_err(|e| settings.fail(describe(&e, "reading the greeting")))?;
                check_greeting(&settings, &greeting)?;
                client
            }
            (Security::StartTls, Some(tls)) => {
                let tcp = starttls(&settings, tcp)?;
                let stream = handshake(&settings, tls, tcp)?;
                let mut client = imap::Client::new(stream);
                client.greeting_read = true;
                client
            }
            _ => {
                let mut client = imap::Client::new(Stream::Plain(tcp));
                let greeting = client
                    .read_greeting()
                    .map_err(|e| settings.fail(describe(&e, "reading the greeting")))?;
                check_greeting(&settings, &greeting)?;
                client
            }
        };
        let caps = client
            .capabilities()
            .map_err(|e| settings.fail(describe(&e, "CAPABILITY")))?;
        let plain = caps.has_str("AUTH=PLAIN");
        let login_disabled = caps.has_str("LOGINDISABLED");
        drop(caps);
        let result = if plain {
            client.authenticate(
                "PLAIN",
                &PlainAuth {
                    user: url.user.clone(),
                    password: settings.password.expose().to_owned(),
                },
            )
        } else if login_disabled {
            return Err(settings.fail(
                "offers neither AUTH=PLAIN nor LOGIN, so pressroom cannot log in (use the server's TLS port with imaps://)",
            ));
        } else {
            client.login(&url.user, settings.password.expose())
        };
        let mut session = result.map_err(|(e, _)| {
            settings.fail(format!(
                "login as `{}` refused: {} (check the user in --imap and PRESSROOM_IMAP_PASSWORD)",
                url.user,
                server_words(&e)
            ))
        })?;

        let caps = session
            .capabilities()
            .map_err(|e| settings.fail(describe(&e, "CAPABILITY")))?;
        let can_move = caps.has_str("MOVE");
        let uidplus = caps.has_str("UIDPLUS");
        drop(caps);

        let selected = session
            .select(encode_mailbox_name(&url.mailbox))
            .map_err(|e| match e {
                imap::Error::No(_) => settings.fail(format!(
                    "cannot open mailbox `{}`: {} (check the mailbox in --imap; names are case-sensitive except INBOX)",
                    url.mailbox,
                    server_words(&e)
                )),
                e => settings.fail(describe(&e, "SELECT")),
            })?;
        if selected.is_read_only {
            return Err(settings.fail(format!(
                "mailbox `{}` opens read-only, so processed messages cannot be marked (give the user write access)",
                url.mailbox
            )));
        }
        let Some(uid_validity) = selected.uid_validity else {
            return Err(settings.fail(format!(
                "mailbox `{}` has no UIDVALIDITY, so its messages cannot be told apart between runs",
                url.mailbox
            )));
        };
        let keyword = Flag::Custom(PROCESSED.into());
        let marking = if selected
            .permanent_flags
            .iter()
            .any(|f| *f == Flag::MayCreate || *f == keyword)
        {
            Marking::Keyword
        } else {
            Marking::Seen
        };
        if let Some(folder) = &settings.move_to {
            session
                .status(encode_mailbox_name(folder), "(UIDVALIDITY)")
                .map_err(|e| {
                    settings.fail(format!(
                        "the --move-to folder `{folder}` cannot be used: {} (create it first, or check its name)",
                        server_words(&e)
                    ))
                })?;
        }
        Ok(Mailbox {
            settings,
            session,
            uid_validity,
            marking,
            can_move,
            uidplus,
            pending: Default::default(),
            searched: false,
            queue: Default::default(),
            logged_out: false,
        })
    }

    /// The URL of one message (RFC 5092): stays the same across runs
    /// while the mailbox's UIDVALIDITY does.
    pub fn message_url(&self, uid: Uid) -> String {
        let url = &self.settings.url;
        let scheme = if url.security == Security::Tls {
            "imaps"
        } else {
            "imap"
        };
        let enc = |s: &str| {
            percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
        };
        format!(
            "{scheme}://{}@{}/{};UIDVALIDITY={}/;UID={uid}",
            enc(&url.user),
            url.server(),
            enc(&url.mailbox),
            self.uid_validity
        )
    }

    /// How many messages wait to be processed (searches on first call).
    pub fn unprocessed(&mut self) -> Result<usize, ImapError> {
        if !self.searched {
            let query = match self.marking {
                Marking::Keyword => format!("NOT KEYWORD {PROCESSED} NOT DELETED"),
                Marking::Seen => "UNSEEN NOT DELETED".to_owned(),
            };
            let found: HashSet<Uid> = self
                .session
                .uid_search(&query)
                .map_err(|e| self.settings.fail(describe(&e, "UID SEARCH")))?;
            let mut uids: Vec<Uid> = found.into_iter().collect();
            uids.sort_unstable();
            self.pending = uids.into();
            self.searched = true;
        }
        Ok(self.pending.len())
    }

    /// The next batch of unprocessed messages, or `None` when all were
    /// fetched. Sizes are asked first so a batch stays under 8 MiB.
    pub fn next_batch(&mut self) -> Result<Option<Batch>, ImapError> {
        self.unprocessed()?;
        self.forget_unsolicited();
        if self.pending.is_empty() {
            return Ok(None);
        }
        let head: Vec<Uid> = self.pending.iter().take(SIZE_CHUNK).copied().collect();
        let sizes = self
            .session
            .uid_fetch(uid_set(&head), "(UID RFC822.SIZE)")
            .map_err(|e| self.settings.fail(describe(&e, "UID FETCH")))?;
        let sizes: std::collections::HashMap<Uid, u32> = sizes
            .iter()
            .filter_map(|f| Some((f.uid?, f.size.unwrap_or(0))))
            .collect();
        let mut take = Vec::new();
        let mut bytes = 0u64;
        let mut missing = Vec::new();
        while let Some(&uid) = self.pending.front() {
            if take.len() >= BATCH_MESSAGES || take.len() + missing.len() >= head.len() {
                break;
            }
            let Some(&size) = sizes.get(&uid) else {
                // Gone since the search (expunged by someone else).
                missing.push(uid);
                self.pending.pop_front();
                continue;
            };
            if !take.is_empty() && bytes + u64::from(size) > BATCH_BYTES {
                break;
            }
            bytes += u64::from(size);
            take.push(uid);
            self.pending.pop_front();
        }
        if take.is_empty() {
            return Ok(Some(Batch {
                fetches: self
                    .session
                    .uid_fetch("", "(UID)")
                    .map_err(|e| self.settings.fail(describe(&e, "UID FETCH")))?,
                missing,
            }));
        }
        let fetches = self
            .session
            .uid_fetch(uid_set(&take), "(UID BODY.PEEK[])")
            .map_err(|e| self.settings.fail(describe(&e, "UID FETCH")))?;
        let got: HashSet<Uid> = fetches
            .iter()
            .filter(|f| f.body().is_some())
            .filter_map(|f| f.uid)
            .collect();
        missing.extend(take.iter().filter(|u| !got.contains(u)));
        Ok(Some(Batch { fetches, missing }))
    }

    /// The next unprocessed message, owned: a batch is fetched when the
    /// previous one is used up, so memory holds one batch at most.
    pub fn next_message(&mut self) -> Result<Option<(Uid, Vec<u8>)>, ImapError> {
        while self.queue.is_empty() {
            let Some(batch) = self.next_batch()? else {
                return Ok(None);
            };
            self.queue = batch
                .messages()
                .into_iter()
                .map(|m| (m.uid, m.bytes.to_vec()))
                .collect();
        }
        Ok(self.queue.pop_front())
    }

    /// Marks `uids` processed and, with `--move-to`, moves them there.
    /// Call it only after what they said is recorded.
    pub fn finish(&mut self, uids: &[Uid]) -> Result<(), ImapError> {
        if uids.is_empty() {
            return Ok(());
        }
        self.forget_unsolicited();
        let set = uid_set(uids);
        let flag = match self.marking {
            Marking::Keyword => PROCESSED,
            Marking::Seen => "\\Seen",
        };
        self.session
            .uid_store(&set, format!("+FLAGS.SILENT ({flag})"))
            .map_err(|e| self.settings.fail(describe(&e, "UID STORE")))?;
        let Some(folder) = self.settings.move_to.clone() else {
            return Ok(());
        };
        let name = encode_mailbox_name(&folder);
        if self.can_move {
            self.session
                .uid_mv(&set, &name)
                .map_err(|e| self.settings.fail(describe(&e, "UID MOVE")))?;
        } else {
            self.session
                .uid_copy(&set, quote(&name))
                .map_err(|e| self.settings.fail(describe(&e, "UID COPY")))?;
            self.session
                .uid_store(&set, "+FLAGS.SILENT (\\Deleted)")
                .map_err(|e| self.settings.fail(describe(&e, "UID STORE")))?;
            // Without UIDPLUS an EXPUNGE would also remove what others
            // marked \Deleted: the originals then wait for the mail
            // program's next expunge, and later runs skip them.
            if self.uidplus {
                self.session
                    .uid_expunge(&set)
                    .map_err(|e| self.settings.fail(describe(&e, "UID EXPUNGE")))?;
            }
        }
        Ok(())
    }

    /// Drops the untagged EXPUNGE / EXISTS / FETCH news the client keeps
    /// for us (moves make one per message): memory stays flat.
    fn forget_unsolicited(&mut self) {
        drop(self.session.take_all_unsolicited());
    }

    /// Says goodbye; a failure here loses nothing.
    pub fn close(mut self) {
        self.logout();
    }

    /// LOGOUT, once; a failure here loses nothing.
    pub fn logout(&mut self) {
        if !self.logged_out {
            self.logged_out = true;
            let _ = self.session.logout();
        }
    }
}

/// SASL PLAIN (RFC 4616): works for UTF-8 passwords, unlike LOGIN's
/// quoted strings.
struct PlainAuth {
    user: String,
    password: String,
}

impl imap::Authenticator for PlainAuth {
    type Response = Vec<u8>;
    fn process(&self, _challenge: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.user.len() + self.password.len() + 2);
        out.push(0);
        out.extend_from_slice(self.user.as_bytes());
        out.push(0);
        out.extend_from_slice(self.password.as_bytes());
        out
    }
}

/// Opens the TCP connection, trying each address, with timeouts set.
fn connect(settings: &ImapSettings) -> Result<TcpStream, ImapError> {
    let url = &settings.url;
    let addrs = (url.host.as_str(), url.port)
        .to_socket_addrs()
        .map_err(|e| {
            settings.fail(format!(
                "cannot resolve the host name: {e} (check the host in --imap)"
            ))
        })?;
    let mut last = None;
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, settings.timeout) {
            Ok(tcp) => {
                let set = tcp
                    .set_read_timeout(Some(settings.timeout))
                    .and_then(|_| tcp.set_write_timeout(Some(settings.timeout)));
                set.map_err(|e| settings.fail(format!("cannot set timeouts: {e}")))?;
                return Ok(tcp);
            }
            Err(e) => last = Some(e),
        }
    }
    Err(settings.fail(match last {
        Some(e) => format!(
            "cannot connect: {e} (check the host and port in --imap, and that the server runs)"
        ),
        None => "the host name has no address (check the host in --imap)".to_owned(),
    }))
}

/// Runs the TLS handshake to the end, so a bad certificate is reported as
/// such rather than as a failed read.
fn handshake(
    settings: &ImapSettings,
    tls: &Arc<rustls::ClientConfig>,
    mut tcp: TcpStream,
) -> Result<Stream, ImapError> {
    let name = ServerName::try_from(settings.url.host.clone()).map_err(|e| {
        settings.fail(format!(
            "`{}` is no TLS server name: {e}",
            settings.url.host
        ))
    })?;
    let mut conn = rustls::ClientConnection::new(tls.clone(), name)
        .map_err(|e| settings.fail(format!("TLS setup failed: {e}")))?;
    while conn.is_handshaking() {
        if let Err(e) = conn.complete_io(&mut tcp) {
            let hint = if e.to_string().contains("certificate") {
                " (if the server uses a private CA or a self-signed certificate, pass its PEM with --imap-ca-file)"
            } else if e.kind() == io::ErrorKind::InvalidData {
                " (is this the server's TLS port? imaps:// speaks TLS from the first byte; use imap:// for STARTTLS)"
            } else {
                ""
            };
            return Err(settings.fail(format!("TLS handshake failed: {e}{hint}")));
        }
    }
    Ok(Stream::Tls(Box::new(rustls::StreamOwned::new(conn, tcp))))
}

/// Reads one line (up to CRLF) byte by byte, so nothing after the line is
/// taken from the socket: what follows STARTTLS's OK belongs to TLS.
fn read_line(tcp: &mut TcpStream) -> io::Result<Vec<u8>> {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        if tcp.read(&mut byte)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the server closed the connection",
            ));
        }
        line.push(byte[0]);
        if byte[0] == b'\n' {
            return Ok(line);
        }
        if line.len() > 64 * 1024 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "a line longer than 64 KiB before TLS",
            ));
        }
    }
}

/// The greeting, then `STARTTLS` and its tagged reply, on the bare TCP
/// connection. Any refusal stops the run: `imap://` never falls back to
/// plaintext.
fn starttls(settings: &ImapSettings, mut tcp: TcpStream) -> Result<TcpStream, ImapError> {
    let lost = |e: io::Error| {
        let what = if matches!(
            e.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
        ) {
            "no answer in time".to_owned()
        } else {
            e.to_string()
        };
        settings.fail(format!(
            "no STARTTLS: {what} (is this the STARTTLS port? use imaps:// for the TLS port)"
        ))
    };
    let greeting = read_line(&mut tcp).map_err(lost)?;
    check_greeting(settings, &greeting)?;
    tcp.write_all(b"S1 STARTTLS\r\n").map_err(lost)?;
    loop {
        let line = read_line(&mut tcp).map_err(lost)?;
        if line.starts_with(b"* ") {
            continue;
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end();
        if text.len() >= 5 && text[..5].eq_ignore_ascii_case("S1 OK") {
            return Ok(tcp);
        }
        return Err(settings.fail(format!(
            "STARTTLS refused (`{}`), and imap:// requires it: use imaps:// with the server's TLS port",
            text.chars().take(200).collect::<String>()
        )));
    }
}

/// A greeting must be `* OK` (`* PREAUTH` would skip our login; `* BYE`
/// is a refusal).
fn check_greeting(settings: &ImapSettings, greeting: &[u8]) -> Result<(), ImapError> {
    let text = String::from_utf8_lossy(greeting);
    let text = text.trim_end();
    if text.len() >= 4 && text[..4].eq_ignore_ascii_case("* OK") {
        return Ok(());
    }
    Err(settings.fail(format!(
        "unexpected greeting `{}` (is this an IMAP server?)",
        text.chars()
            .filter(|c| !c.is_control())
            .take(200)
            .collect::<String>()
    )))
}

/// The server's own words in a NO / BAD / BYE, else the error.
fn server_words(e: &imap::Error) -> String {
    match e {
        imap::Error::No(no) => match &no.code {
            Some(code) => format!("{} ({code:?})", no.information),
            None => no.information.clone(),
        },
        imap::Error::Bad(bad) => format!("BAD {}", bad.information),
        imap::Error::Bye(bye) => format!("BYE {}", bye.information),
        other => other.to_string(),
    }
}

/// One line for a failed command: a lost connection and a timeout say so.
fn describe(e: &imap::Error, command: &str) -> String {
    match e {
        imap::Error::Io(io)
            if matches!(
                io.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) =>
        {
            format!("no answer to {command} in time (the server hangs; try again later)")
        }
        imap::Error::Io(io) => format!("connection lost during {command}: {io} (try again later)"),
        imap::Error::ConnectionLost => {
            format!("the server hung up during {command} (try again later)")
        }
        imap::Error::Bye(bye) => format!(
            "the server closed the session during {command}: {} (try again later)",
            bye.information
        ),
        other => format!("{command} failed: {}", server_words(other)),
    }
}

/// `1:3,7,9:10` for sorted or unsorted UIDs.
pub fn uid_set(uids: &[Uid]) -> String {
    let mut sorted = uids.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut out = String::new();
    let mut i = 0;
    while i < sorted.len() {
        let start = sorted[i];
        let mut end = start;
        while i + 1 < sorted.len() && sorted[i + 1] == end + 1 {
            i += 1;
            end = sorted[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}:{end}"));
        }
        i += 1;
    }
    out
}

/// A quoted IMAP string.
fn quote(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

/// A mailbox name as IMAP wants it: modified UTF-7 (RFC 3501 5.1.3), so
/// `Rückläufer` is `R&APw-ckl&AOQ-ufer` and `&` is `&-`.
pub fn encode_mailbox_name(name: &str) -> String {
    use base64::Engine;
    const ALPHABET: base64::alphabet::Alphabet = match base64::alphabet::Alphabet::new(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,",
    ) {
        Ok(a) => a,
        Err(_) => panic!("the modified base64 alphabet"),
    };
    let engine =
        base64::engine::GeneralPurpose::new(&ALPHABET, base64::engine::general_purpose::NO_PAD);
    let mut out = String::new();
    let mut wide: Vec<u16> = Vec::new();
    let flush = |wide: &mut Vec<u16>, out: &mut String| {
        if !wide.is_empty() {
            let bytes: Vec<u8> = wide.iter().flat_map(|u| u.to_be_bytes()).collect();
            out.push('&');
            out.push_str(&engine.encode(bytes));
            out.push('-');
            wide.clear();
        }
    };
    for c in name.chars() {
        if (' '..='~').contains(&c) {
            flush(&mut wide, &mut out);
            if c == '&' {
                out.push_str("&-");
            } else {
                out.push(c);
            }
        } else {
            let mut buf = [0u16; 2];
            wide.extend_from_slice(c.encode_utf16(&mut buf));
        }
    }
    flush(&mut wide, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_with_their_defaults() {
        let url = ImapUrl::parse("imaps://bounces%40example.com@imap.example.com/INBOX").unwrap();
        assert_eq!(url.user, "bounces@example.com");
        assert_eq!(url.host, "imap.example.com");
        assert_eq!(url.port, 993);
        assert_eq!(url.security, Security::Tls);
        assert_eq!(url.mailbox, "INBOX");

        let url = ImapUrl::parse("imap://me@mail.example.org:1143").unwrap();
        assert_eq!(url.port, 1143);
        assert_eq!(url.security, Security::StartTls);
        assert_eq!(url.mailbox, "INBOX", "no path: INBOX");

        let url =
            ImapUrl::parse("imap://me;AUTH=*@[::1]/Bounces/R%C3%BCckl%C3%A4ufer?tls=none").unwrap();
        assert_eq!(url.user, "me");
        assert_eq!(url.host, "::1");
        assert_eq!(url.server(), "[::1]:143");
        assert_eq!(url.security, Security::None);
        assert_eq!(url.mailbox, "Bounces/Rückläufer");
    }

    #[test]
    fn bad_urls_are_refused_with_the_reason_and_no_password_shown() {
        let err = |u: &str| ImapUrl::parse(u).unwrap_err().to_string();
        let e = err("imaps://me:hunter2@imap.example.com/INBOX");
        assert!(e.contains("PRESSROOM_IMAP_PASSWORD"), "{e}");
        assert!(!e.contains("hunter2"), "{e}");
        assert!(err("pop3://me@host/").contains("scheme `pop3`"));
        assert!(err("imaps://imap.example.com/INBOX").contains("names no user"));
        assert!(err("imaps://me@host/?tls=none").contains("only with imap://"));
        assert!(err("imap://me@host/?verify=no").contains("unknown option `verify`"));
        assert!(err("imaps://me@host/IN%0ABOX").contains("control character"));
    }

    #[test]
    fn plaintext_only_to_this_machine_and_a_password_is_required() {
        let resolve = |url: &str, password: Option<&str>| {
            ImapSettings::resolve(
                url,
                password.map(|p| Password::new(p.to_owned())),
                None,
                None,
                Path::new("."),
            )
        };
        let e = resolve("imap://me@mail.example.com/INBOX?tls=none", Some("x")).unwrap_err();
        assert!(matches!(e, ImapError::Plaintext { .. }), "{e}");
        assert_eq!(e.kind(), ErrorKind::Input);
        for local in ["localhost", "127.0.0.1", "[::1]"] {
            let s = resolve(
                &format!("imap://me@{local}:10143/INBOX?tls=none"),
                Some("x"),
            )
            .unwrap();
            assert_eq!(s.url.security, Security::None);
        }
        let e = resolve("imaps://me@mail.example.com/INBOX", None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "--imap names user `me` but PRESSROOM_IMAP_PASSWORD is not set"
        );
        let s = resolve("imaps://me@mail.example.com/INBOX", Some("hunter2")).unwrap();
        assert!(!format!("{s:?}").contains("hunter2"));
    }

    #[test]
    fn the_move_to_folder_and_the_ca_file_are_checked_before_connecting() {
        let dir = tempfile::tempdir().unwrap();
        let resolve = |ca: Option<&str>, move_to: Option<&str>| {
            ImapSettings::resolve(
                "imaps://me@mail.example.com/INBOX",
                Some(Password::new("x".into())),
                ca.map(Path::new),
                move_to,
                dir.path(),
            )
        };
        let e = resolve(None, Some("INBOX")).unwrap_err().to_string();
        assert!(e.contains("is the mailbox read"), "{e}");
        let e = resolve(Some("missing.pem"), None).unwrap_err().to_string();
        assert!(e.contains("missing.pem: cannot read the CA file"), "{e}");
        std::fs::write(dir.path().join("empty.pem"), "not a certificate\n").unwrap();
        let e = resolve(Some("empty.pem"), None).unwrap_err().to_string();
        assert!(
            e.contains("empty.pem: cannot read the CA file: it holds no PEM certificate"),
            "{e}"
        );
    }

    #[test]
    fn uid_sets_are_ranges() {
        assert_eq!(uid_set(&[7, 1, 2, 3, 9, 10, 3]), "1:3,7,9:10");
        assert_eq!(uid_set(&[42]), "42");
        assert_eq!(uid_set(&[]), "");
    }

    #[test]
    fn mailbox_names_are_modified_utf7() {
        // RFC 3501's own example, and the escape of `&`.
        assert_eq!(
            encode_mailbox_name("~peter/mail/台北/日本語"),
            "~peter/mail/&U,BTFw-/&ZeVnLIqe-"
        );
        assert_eq!(encode_mailbox_name("Rückläufer"), "R&APw-ckl&AOQ-ufer");
        assert_eq!(encode_mailbox_name("Tom & Jerry"), "Tom &- Jerry");
        assert_eq!(encode_mailbox_name("INBOX"), "INBOX");
        // Outside the BMP: a surrogate pair.
        assert_eq!(encode_mailbox_name("📬"), "&2D3c7A-");
    }

    #[test]
    fn sasl_plain_carries_user_and_password() {
        use imap::Authenticator;
        let auth = PlainAuth {
            user: "ü".into(),
            password: "p w".into(),
        };
        assert_eq!(auth.process(b""), b"\0\xc3\xbc\0p w".to_vec());
    }
}
