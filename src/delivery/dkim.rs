//! DKIM signing of outgoing messages (lettre's `dkim` feature), configured
//! by `[smtp.dkim]`. The signature covers the headers receivers and list
//! tools rely on, the one-click unsubscribe pair included, so nobody on
//! the way can swap the unsubscribe target without breaking it. Keys are
//! taken in the forms people have them: for rsa a PKCS#8 PEM (what
//! `openssl genrsa` writes since OpenSSL 3) or a PKCS#1 PEM; for ed25519
//! a PKCS#8 PEM (`openssl genpkey -algorithm ed25519`) or the base64 seed.

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
    #[error("{}: not a usable DKIM {algorithm} private key ({why}); for rsa use a PEM key (`openssl genrsa 2048`), for ed25519 a PEM key (`openssl genpkey -algorithm ed25519`) or the base64 seed", path.display())]
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
        let key_error = |why: String| DkimError::Key {
            path: config.private_key.clone(),
            algorithm: name,
            why,
        };
        let key = lettre_form(key.trim(), config.algorithm).map_err(key_error)?;
        let key = DkimSigningKey::new(&key, algorithm).map_err(|e| key_error(e.to_string()))?;
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

/// The key as lettre takes it: a PKCS#1 PEM for rsa, the base64 seed for
/// ed25519. Other forms are converted; what is not recognized is passed
/// on for lettre to explain.
fn lettre_form(key: &str, algorithm: DkimAlgorithm) -> Result<String, String> {
    use ed25519_dalek::pkcs8::DecodePrivateKey as _;
    use rsa::pkcs1::EncodeRsaPrivateKey as _;

    if key.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
        return Err(
            "the key is encrypted with a passphrase; write it out unencrypted with `openssl pkey -in KEY -out KEY.pem` and keep that file readable by the sender only"
                .into(),
        );
    }
    let pkcs8 = key.contains("-----BEGIN PRIVATE KEY-----");
    let ed25519 = || ed25519_dalek::SigningKey::from_pkcs8_pem(key);
    match algorithm {
        DkimAlgorithm::Rsa if pkcs8 => match rsa::RsaPrivateKey::from_pkcs8_pem(key) {
            Ok(rsa) => rsa
                .to_pkcs1_pem(rsa::pkcs8::LineEnding::LF)
                .map(|pem| pem.as_str().to_owned())
                .map_err(|e| e.to_string()),
            Err(_) if ed25519().is_ok() => {
                Err("this is an ed25519 key; set algorithm = \"ed25519\" in [smtp.dkim]".into())
            }
            Err(e) => Err(format!("PKCS#8: {e}")),
        },
        DkimAlgorithm::Ed25519 if pkcs8 => match ed25519() {
            Ok(signing) => {
                use base64::Engine as _;
                Ok(base64::engine::general_purpose::STANDARD.encode(signing.to_bytes()))
            }
            Err(_) if rsa::RsaPrivateKey::from_pkcs8_pem(key).is_ok() => {
                Err("this is an rsa key; set algorithm = \"rsa\" in [smtp.dkim]".into())
            }
            Err(e) => Err(format!("PKCS#8: {e}")),
        },
        DkimAlgorithm::Ed25519 if key.contains("-----BEGIN RSA PRIVATE KEY-----") => {
            Err("this is an rsa key; set algorithm = \"rsa\" in [smtp.dkim]".into())
        }
        _ => Ok(key.to_owned()),
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

    /// Runs the real `openssl` in `dir` and returns what it wrote to `out`.
    fn openssl(dir: &Path, args: &[&str], out: &str) -> Vec<u8> {
        let output = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("the openssl binary (Debian package openssl) runs");
        assert!(
            output.status.success(),
            "openssl {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        std::fs::read(dir.join(out)).unwrap()
    }

    fn with(key: &str, algorithm: DkimAlgorithm) -> DkimConfig {
        DkimConfig {
            private_key: PathBuf::from(key),
            algorithm,
            ..config()
        }
    }

    fn signature(signer: &DkimSigner) -> String {
        let mut message = Message::builder()
            .from("news@example.com".parse().unwrap())
            .to("reader@example.com".parse().unwrap())
            .subject("Hello")
            .body("hi\r\n".to_owned())
            .unwrap();
        signer.sign(&mut message);
        let text = String::from_utf8(message.formatted()).unwrap();
        text.lines()
            .find(|l| l.to_ascii_lowercase().starts_with("dkim-signature:"))
            .unwrap_or_default()
            .to_owned()
    }

    /// `openssl genrsa` on OpenSSL 3 writes PKCS#8 (`BEGIN PRIVATE KEY`),
    /// which was refused with "for rsa use a PKCS#1 PEM"; `genpkey` writes
    /// ed25519 keys as PKCS#8 too. Every form loads, and the key lettre is
    /// given is the one openssl itself converts the file to.
    #[test]
    fn keys_as_openssl_writes_them_are_accepted() {
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path();
        let pkcs8 = openssl(dir, &["genrsa", "-out", "rsa.pem", "1024"], "rsa.pem");
        let pkcs8 = String::from_utf8(pkcs8).unwrap();
        assert!(pkcs8.starts_with("-----BEGIN PRIVATE KEY-----"), "{pkcs8}");
        let pkcs1 = openssl(
            dir,
            &["rsa", "-in", "rsa.pem", "-traditional", "-out", "rsa1.pem"],
            "rsa1.pem",
        );
        let pkcs1 = String::from_utf8(pkcs1).unwrap();
        assert!(pkcs1.starts_with("-----BEGIN RSA PRIVATE KEY-----"));
        assert_eq!(
            lettre_form(pkcs8.trim(), DkimAlgorithm::Rsa)
                .unwrap()
                .trim(),
            pkcs1.trim()
        );

        let ed = openssl(
            dir,
            &["genpkey", "-algorithm", "ed25519", "-out", "ed.pem"],
            "ed.pem",
        );
        let ed = String::from_utf8(ed).unwrap();
        assert!(ed.starts_with("-----BEGIN PRIVATE KEY-----"), "{ed}");
        let der = openssl(
            dir,
            &["pkey", "-in", "ed.pem", "-outform", "DER", "-out", "ed.der"],
            "ed.der",
        );
        // RFC 8410: the DER ends with the 32-byte seed.
        use base64::Engine as _;
        let seed = base64::engine::general_purpose::STANDARD.encode(&der[der.len() - 32..]);
        std::fs::write(dir.join("ed.b64"), format!("{seed}\n")).unwrap();
        assert_eq!(
            lettre_form(ed.trim(), DkimAlgorithm::Ed25519).unwrap(),
            seed
        );

        for (file, algorithm, a) in [
            ("rsa.pem", DkimAlgorithm::Rsa, "a=rsa-sha256"),
            ("rsa1.pem", DkimAlgorithm::Rsa, "a=rsa-sha256"),
            ("ed.pem", DkimAlgorithm::Ed25519, "a=ed25519-sha256"),
            ("ed.b64", DkimAlgorithm::Ed25519, "a=ed25519-sha256"),
        ] {
            let signer = DkimSigner::load(&with(file, algorithm), dir)
                .unwrap_or_else(|e| panic!("{file}: {e}"));
            let sig = signature(&signer);
            assert!(sig.contains(a), "{file}: {sig}");
        }

        // A key of the other kind, or an encrypted one, says what to do.
        let err = DkimSigner::load(&with("ed.pem", DkimAlgorithm::Rsa), dir)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("ed.pem: not a usable DKIM rsa private key (this is an ed25519 key; set algorithm = \"ed25519\" in [smtp.dkim])"),
            "{err}"
        );
        let err = DkimSigner::load(&with("rsa.pem", DkimAlgorithm::Ed25519), dir)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("(this is an rsa key; set algorithm = \"rsa\""),
            "{err}"
        );
        openssl(
            dir,
            &[
                "genpkey",
                "-algorithm",
                "ed25519",
                "-aes256",
                "-pass",
                "pass:secret",
                "-out",
                "locked.pem",
            ],
            "locked.pem",
        );
        let err = DkimSigner::load(&with("locked.pem", DkimAlgorithm::Ed25519), dir)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("the key is encrypted with a passphrase"),
            "{err}"
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
