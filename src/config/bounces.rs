//! `[bounces]` in `config.toml`: where the mail system sends bounces and
//! complaints back (the VERP address), when temporary failures add up to a
//! suppression, and the provider webhooks `pressroom serve` accepts.
//! Secrets are not here: the Postmark webhook password only ever comes from
//! the environment (`PRESSROOM_POSTMARK_PASSWORD`).
//!
//! ```toml
//! [bounces]
//! address = "bounces@dispatch.example.com"  # envelope sender: bounces+TAG@…
//! soft_limit = 3                            # temporary failures that suppress…
//! soft_days = 30                            # …within this many days
//!
//! [bounces.postmark]                        # optional: POST /webhooks/postmark
//! username = "postmark"
//!
//! [bounces.ses]                             # optional: POST /webhooks/ses
//! topic_arns = ["arn:aws:sns:eu-west-1:123456789012:bounces"]
//! ```

use serde::Deserialize;

use crate::address::EmailAddress;

/// `[bounces]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BounceConfig {
    /// The address bounces come back to. With it, every message's envelope
    /// sender is `local+TAG@domain`, the tag naming the issue and reader.
    /// Absent: the envelope sender is `email.from`, and reports are
    /// attributed by Message-ID and recipient only.
    pub address: Option<EmailAddress>,
    /// Temporary failures (soft bounces) that suppress a reader…
    pub soft_limit: u32,
    /// …when they fall within this many days.
    pub soft_days: u32,
    /// `[bounces.postmark]`: accept Postmark's bounce and spam-complaint
    /// webhooks, with HTTP basic auth.
    pub postmark: Option<PostmarkConfig>,
    /// `[bounces.ses]`: accept Amazon SES notifications through SNS.
    pub ses: Option<SesConfig>,
}

impl Default for BounceConfig {
    fn default() -> Self {
        BounceConfig {
            address: None,
            soft_limit: 3,
            soft_days: 30,
            postmark: None,
            ses: None,
        }
    }
}

/// `[bounces.postmark]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostmarkConfig {
    /// The basic-auth user name Postmark's webhook URL carries; the
    /// password is `PRESSROOM_POSTMARK_PASSWORD`.
    pub username: String,
}

/// `[bounces.ses]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SesConfig {
    /// The SNS topics whose notifications are accepted; a message from any
    /// other topic is refused.
    pub topic_arns: Vec<String>,
}
