//! The `[send]` and `[smtp]` sections of `config.toml`: where subscribers
//! and the ledger live, retry and rate policy, and how to reach the SMTP
//! server. Secrets are not here: the password only ever comes from the
//! environment (`PRESSROOM_SMTP_PASSWORD`), read by the command layer.

use std::path::PathBuf;

use serde::Deserialize;

/// `[send]`: what to send to whom, how hard to retry, how fast to go.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SendConfig {
    /// The subscriber list, relative to the site root.
    pub subscribers: PathBuf,
    /// The SQLite ledger, relative to the site root. The lock file
    /// `send.lock` sits in the same folder.
    pub ledger: PathBuf,
    /// Attempts (a 4xx, a timeout, a dropped connection each count one)
    /// after which a deferred delivery is marked failed.
    pub max_attempts: u32,
    /// Wait before the first retry, in seconds; doubled after every
    /// further attempt.
    pub retry_base_seconds: u64,
    /// The longest wait between two retries, in seconds.
    pub retry_max_seconds: u64,
    /// SMTP connections used at once.
    pub concurrency: usize,
    /// Messages per second across all connections; `0` for no limit.
    pub per_second: f64,
    /// Messages per rolling hour, counted from the ledger so the cap holds
    /// across cron runs. Absent: no cap.
    pub per_hour: Option<u64>,
    /// Messages per rolling day, counted from the ledger.
    pub per_day: Option<u64>,
}

impl Default for SendConfig {
    fn default() -> Self {
        SendConfig {
            subscribers: PathBuf::from("subscribers.csv"),
            ledger: PathBuf::from(".pressroom/state.db"),
            max_attempts: 8,
            retry_base_seconds: 5 * 60,
            retry_max_seconds: 6 * 60 * 60,
            // One connection keeps the crash window at one message; raise
            // it for speed (the window becomes one message per connection).
            concurrency: 1,
            per_second: 10.0,
            per_hour: None,
            per_day: None,
        }
    }
}

/// `[smtp]`: the server and how to talk to it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmtpConfig {
    /// `smtp://[user@]host[:port][?tls=starttls|none]` (STARTTLS required
    /// unless `tls=none`; port 25 when absent) or `smtps://[user@]host[:port]`
    /// (TLS from the first byte; port 465). `PRESSROOM_SMTP_URL` overrides
    /// it. A password in the URL is refused: use `PRESSROOM_SMTP_PASSWORD`.
    pub url: String,
    /// Allow an unencrypted connection (and AUTH over it) to a host other
    /// than localhost. Off by default; localhost needs no permission.
    pub allow_plaintext: bool,
    /// A PEM file of extra trusted certificates (a private CA, or a
    /// self-signed server certificate). The system's roots stay trusted.
    pub ca_file: Option<PathBuf>,
    /// Accept any certificate. For tests against throwaway servers only:
    /// it makes TLS worthless against an active attacker.
    pub danger_accept_invalid_certs: bool,
    /// Connect, read and write timeout, in seconds.
    pub timeout_seconds: u64,
    /// The name sent in EHLO; the machine's host name when absent.
    pub hello_name: Option<String>,
    /// DKIM signing; every message is signed when present.
    pub dkim: Option<DkimConfig>,
}

impl Default for SmtpConfig {
    fn default() -> Self {
        SmtpConfig {
            url: "smtp://localhost:25".to_owned(),
            allow_plaintext: false,
            ca_file: None,
            danger_accept_invalid_certs: false,
            timeout_seconds: 30,
            hello_name: None,
            dkim: None,
        }
    }
}

/// `[smtp.dkim]`: sign with `private_key` for `d=domain`, `s=selector`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DkimConfig {
    pub domain: String,
    pub selector: String,
    /// PEM file: PKCS#1 RSA (`BEGIN RSA PRIVATE KEY`) for `rsa`, or the
    /// base64 32-byte seed for `ed25519`.
    pub private_key: PathBuf,
    #[serde(default)]
    pub algorithm: DkimAlgorithm,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DkimAlgorithm {
    #[default]
    Rsa,
    Ed25519,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Both {
        #[serde(default)]
        send: SendConfig,
        #[serde(default)]
        smtp: SmtpConfig,
    }

    #[test]
    fn defaults_fill_what_is_left_out() {
        let both: Both = toml::from_str(
            "[send]\nper_hour = 500\n[smtp]\nurl = 'smtps://mail.example.com'\nca_file = 'ca.pem'\n",
        )
        .unwrap();
        assert_eq!(both.send.per_hour, Some(500));
        assert_eq!(both.send.max_attempts, 8);
        assert_eq!(both.send.ledger, PathBuf::from(".pressroom/state.db"));
        assert_eq!(both.send.retry_base_seconds, 300);
        assert_eq!(both.send.retry_max_seconds, 6 * 3600);
        // A partly written [smtp] keeps what it sets and gets the rest.
        assert_eq!(both.smtp.url, "smtps://mail.example.com");
        assert_eq!(both.smtp.ca_file, Some(PathBuf::from("ca.pem")));
        assert_eq!(both.smtp.timeout_seconds, 30);
        assert!(!both.smtp.allow_plaintext);
        assert!(!both.smtp.danger_accept_invalid_certs);
        assert_eq!(both.smtp.dkim, None);
        // No [smtp] at all: the local server on port 25.
        let none: Both = toml::from_str("").unwrap();
        assert_eq!(none.smtp.url, "smtp://localhost:25");
    }

    #[test]
    fn unknown_keys_and_passwords_are_refused() {
        let err = toml::from_str::<Both>("[smtp]\npassword = 'x'\n")
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("unknown field `password`"), "{err}");
        let both: Both = toml::from_str(
            "[smtp]\nurl = 'smtps://me@mail.example.com'\n[smtp.dkim]\ndomain = 'example.com'\nselector = 's1'\nprivate_key = 'dkim.pem'\n",
        )
        .unwrap();
        let dkim = both.smtp.dkim.unwrap();
        assert_eq!(dkim.algorithm, DkimAlgorithm::Rsa);
        assert_eq!(dkim.private_key, PathBuf::from("dkim.pem"));
    }
}
