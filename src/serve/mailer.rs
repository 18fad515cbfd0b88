//! Confirmation emails: built from the `serve/confirm_email.*` templates
//! and sent by one thread through the configured SMTP server (the same
//! client `send` uses). Handlers only queue a message, so the page a
//! visitor gets does not wait for (or reveal anything through the timing
//! of) the SMTP dialogue. On shutdown the thread sends what is queued,
//! then ends.

use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::Message;
use sha2::{Digest, Sha256};

use crate::address::EmailAddress;
use crate::delivery::smtp::{SmtpSender, SmtpSettings};
use crate::delivery::{Outcome, Transport};
use crate::email::message::AutoSubmitted;

/// What a confirmation email says.
pub struct Confirmation<'a> {
    pub from: &'a EmailAddress,
    pub from_name: &'a str,
    pub to: &'a EmailAddress,
    pub to_name: Option<&'a str>,
    pub subject: &'a str,
    pub text: String,
    pub html: String,
    /// Makes the Message-ID (with the address).
    pub token: &'a str,
    pub id_domain: &'a str,
}

/// Builds the message; fails only on an address lettre cannot write.
pub fn build(c: &Confirmation<'_>) -> Result<Message, String> {
    let address = |a: &EmailAddress| {
        a.as_str()
            .parse::<lettre::Address>()
            .map_err(|_| format!("`{a}` cannot be used in a message header"))
    };
    let from = Mailbox::new(
        Some(crate::text::single_line(c.from_name)).filter(|n| !n.is_empty()),
        address(c.from)?,
    );
    let to = Mailbox::new(
        c.to_name
            .map(crate::text::single_line)
            .filter(|n| !n.is_empty()),
        address(c.to)?,
    );
    let digest = Sha256::new().chain_update(c.token.as_bytes()).finalize();
    let id: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    Message::builder()
        .from(from)
        .to(to)
        .subject(crate::text::single_line(c.subject))
        .date_now()
        .message_id(Some(format!("<confirm.{id}@{}>", c.id_domain)))
        .header(AutoSubmitted::new("auto-generated"))
        .multipart(
            MultiPart::alternative()
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_PLAIN)
                        .body(c.text.clone()),
                )
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_HTML)
                        .body(c.html.clone()),
                ),
        )
        .map_err(|e| format!("cannot build the confirmation email: {e}"))
}

/// The queue of messages to send.
#[derive(Debug, Clone)]
pub struct Mailer {
    tx: mpsc::Sender<Message>,
}

impl Mailer {
    /// Starts the sending thread.
    pub fn start(settings: Arc<SmtpSettings>) -> (Mailer, JoinHandle<()>) {
        let (tx, rx) = mpsc::channel::<Message>();
        let handle = std::thread::Builder::new()
            .name("mailer".into())
            .spawn(move || {
                let mut sender = SmtpSender::new(settings.clone());
                while let Ok(message) = rx.recv() {
                    let to = message
                        .envelope()
                        .to()
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ");
                    let mut outcome = sender.send(&message);
                    if !matches!(outcome, Outcome::Accepted { .. } | Outcome::Rejected { .. }) {
                        // A connection kept open between signups may have
                        // been closed by the server: one fresh try.
                        sender = SmtpSender::new(settings.clone());
                        outcome = sender.send(&message);
                    }
                    match outcome {
                        Outcome::Accepted { .. } => {
                            tracing::info!("confirmation email sent to {to}")
                        }
                        Outcome::Rejected { reply, .. } => {
                            tracing::warn!("confirmation email to {to} refused: {reply}")
                        }
                        Outcome::Deferred { reply } => {
                            tracing::error!("confirmation email to {to} not sent: {reply}")
                        }
                        Outcome::Fatal { reason } => {
                            tracing::error!("confirmation email to {to} not sent: {reason}")
                        }
                    }
                }
            })
            .unwrap_or_else(|e| panic!("cannot start the mailer thread: {e}"));
        (Mailer { tx }, handle)
    }

    /// Queues `message`.
    pub fn queue(&self, message: Message) {
        if self.tx.send(message).is_err() {
            tracing::error!("the mailer thread has stopped; a confirmation email was not sent");
        }
    }
}
