//! DKIM signing of outgoing messages (lettre's `dkim` feature), configured
//! by `[smtp.dkim]`. The signature covers the headers receivers and list
//! tools rely on, the one-click unsubscribe pair included, so nobody on
//! the way can swap the unsubscribe target without breaking it.

use std::path::{Path, PathBuf};

use lettre::message::dkim::{
    DkimCanonicalization, DkimCanonicalizationType, DkimConfig as LettreDkim, DkimSigningAlgorithm,
    DkimSigningKey,
};
use lettre::message::header::HeaderName;
use lettre::Message;

use crate::config::send::{DkimAlgorithm, DkimConfig};
use crate::error_kind::{ErrorKind, HasKind};

/// The headers in `h=`, in this order.
pub const SIGNED_HEADERS: [&str; 7] = [
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
];

#[derive(Debug, thiserror::Error)]
pub enum DkimError {
    #[error("{}: cannot read the DKIM private key: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: not a usable DKIM {algorithm} private key ({why}); for rsa use a PKCS#1 PEM (`openssl genrsa`), for ed25519 the base64 seed", path.display())]
    Key {
        path: PathBuf,
        algorithm: &'static str,
        why: String,
    },
    #[error("[smtp.dkim] {field} `{value}` is not valid: {why}")]
    Field {
        field: &'static str,
        value: String,
        why: &'static str,
    },
}

impl HasKind for DkimError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Input
    }
}

/// Signs messages; built once per run from the config.
#[derive(Debug)]
pub struct DkimSigner {
    config: LettreDkim,
}

impl DkimSigner {
    /// Reads the key (relative paths from `base_dir`) and checks the
    /// domain and selector.
    pub fn load(config: &DkimConfig, base_dir: &Path) -> Result<DkimSigner, DkimError> {
        let path = base_dir.join(&config.private_key);
        let pem = std::fs::read_to_string(&path).map_err(|source| DkimError::Read {
            path: path.clone(),
            source,
        })?;
        DkimSigner::from_pem(config, &pem).map_err(|e| match e {
            DkimError::Key { algorithm, why, .. } => DkimError::Key {
                path,
                algorithm,
                why,
            },
            other => other,
        })
    }

    /// Builds a signer from key text (as [`DkimSigner::load`] reads it).
    pub fn from_pem(config: &DkimConfig, key: &str) -> Result<DkimSigner, DkimError> {
        let label_ok = |s: &str| {
            !s.is_empty()
                && s.split('.').all(|l| {
                    !l.is_empty()
                        && l.chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                })
        };
        if !label_ok(&config.domain) {
            return Err(DkimError::Field {
                field: "domain",
                value: config.domain.escape_debug().to_string(),
                why: "a DNS name such as example.com",
            });
        }
        if !label_ok(&config.selector) {
            return Err(DkimError::Field {
                field: "selector",
                value: config.selector.escape_debug().to_string(),
                why: "a DNS label such as s1",
            });
        }
        let (algorithm, name) = match config.algorithm {
            DkimAlgorithm::Rsa => (DkimSigningAlgorithm::Rsa, "rsa"),
            DkimAlgorithm::Ed25519 => (DkimSigningAlgorithm::Ed25519, "ed25519"),
        };
        let key = DkimSigningKey::new(key.trim(), algorithm).map_err(|e| DkimError::Key {
            path: config.private_key.clone(),
            algorithm: name,
            why: e.to_string(),
        })?;
        let headers = SIGNED_HEADERS
            .iter()
            .map(|h| HeaderName::new_from_ascii_str(h))
            .collect();
        Ok(DkimSigner {
            config: LettreDkim::new(
                config.selector.clone(),
                config.domain.clone(),
                key,
                headers,
                DkimCanonicalization {
                    header: DkimCanonicalizationType::Relaxed,
                    body: DkimCanonicalizationType::Relaxed,
                },
            ),
        })
    }

    /// Adds a `DKIM-Signature` header to `message`.
    pub fn sign(&self, message: &mut Message) {
        message.sign(&self.config);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A throwaway 1024-bit test key (PKCS#1), generated for these tests.
    pub(crate) const TEST_KEY: &str = include_str!("../../tests/fixtures/dkim/test.key");

    fn config() -> DkimConfig {
        DkimConfig {
            domain: "example.com".into(),
            selector: "s1".into(),
            private_key: PathBuf::from("test.key"),
            algorithm: DkimAlgorithm::Rsa,
        }
    }

    #[test]
    fn signature_lists_the_unsubscribe_headers() {
        let signer = DkimSigner::from_pem(&config(), TEST_KEY).unwrap();
        let mut message = Message::builder()
            .from("News <news@example.com>".parse().unwrap())
            .to("reader@example.com".parse().unwrap())
            .subject("Hello")
            .message_id(Some("<1@example.com>".into()))
            .body("hi\r\n".to_owned())
            .unwrap();
        signer.sign(&mut message);
        let text = String::from_utf8(message.formatted()).unwrap();
        let sig = text
            .lines()
            .skip_while(|l| !l.to_ascii_lowercase().starts_with("dkim-signature:"))
            .take_while(|l| !l.is_empty())
            .collect::<String>();
        assert!(
            sig.contains(
                "h=from:to:subject:date:message-id:list-unsubscribe:list-unsubscribe-post;"
            ),
            "{sig}"
        );
        assert!(
            sig.contains("d=example.com") && sig.contains("s=s1"),
            "{sig}"
        );
    }

    #[test]
    fn bad_keys_and_names_are_explained() {
        let err = DkimSigner::from_pem(&config(), "not a key")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("test.key: not a usable DKIM rsa private key"),
            "{err}"
        );
        let mut c = config();
        c.domain = "exa mple.com".into();
        let err = DkimSigner::from_pem(&c, TEST_KEY).unwrap_err().to_string();
        assert!(err.contains("domain"), "{err}");
        let err = DkimSigner::load(&config(), Path::new("/nonexistent"))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("/nonexistent/test.key: cannot read"),
            "{err}"
        );
    }
}
