//! The server's only outgoing HTTPS: SNS signing certificates (kept in
//! memory once read) and subscription confirmations. Only URLs that
//! [`sns::sns_url`] accepts get here; TLS is checked against the system's
//! roots, so the certificate's origin is the SNS host itself.
//!
//! Tests only: a debug build (never a release build) reads
//! `PRESSROOM_TEST_SNS_ADDR` (a loopback `IP:PORT`) and
//! `PRESSROOM_TEST_SNS_CA` (a PEM file); with both set, every SNS host
//! resolves to that address and the CA is trusted besides the system's
//! roots, so the integration tests can stand in for SNS on 127.0.0.1.
//! The URL rules stay as they are; the server logs a warning at start.

use std::collections::HashMap;
use std::io::Read;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use url::Url;

use super::sns::{SigningKey, SnsError};

/// Largest certificate file read.
const MAX_CERTIFICATE: u64 = 64 * 1024;
/// Largest subscription confirmation answer read.
const MAX_ANSWER: u64 = 64 * 1024;
/// Certificates kept; SNS uses a handful at a time.
const CACHED: usize = 32;
/// The longest one request to SNS may take.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a fetch failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The network or the server failed: worth a retry.
    #[error("{0}")]
    Unavailable(String),
    /// The certificate itself is unusable.
    #[error(transparent)]
    Refused(#[from] SnsError),
}

/// The HTTPS client and the certificates read so far.
pub struct Fetcher {
    agent: ureq::Agent,
    certificates: Mutex<HashMap<String, Arc<SigningKey>>>,
}

impl Fetcher {
    pub fn new() -> Fetcher {
        let mut roots = rustls::RootCertStore::empty();
        let native = rustls_native_certs::load_native_certs();
        for e in &native.errors {
            tracing::warn!("reading the system's TLS roots: {e}");
        }
        let (added, _) = roots.add_parsable_certificates(native.certs);
        if added == 0 {
            tracing::error!(
                "no TLS root certificates found: SNS signing certificates cannot be fetched (install ca-certificates)"
            );
        }
        let mut builder = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(5))
            .timeout(FETCH_TIMEOUT)
            .redirects(0)
            .user_agent(concat!("pressroom/", env!("CARGO_PKG_VERSION")));
        #[cfg(debug_assertions)]
        {
            if let Some((addr, ca)) = test_override() {
                tracing::warn!(
                    "tests only: SNS hosts resolve to {addr} and trust {}",
                    ca.display()
                );
                if let Ok(pem) = std::fs::read(&ca) {
                    use rustls::pki_types::pem::PemObject;
                    let certs = rustls::pki_types::CertificateDer::pem_slice_iter(&pem)
                        .filter_map(Result::ok);
                    roots.add_parsable_certificates(certs);
                }
                builder = builder.resolver(move |_: &str| Ok(vec![addr]));
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        match rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
        {
            Ok(config) => {
                let config = config.with_root_certificates(roots).with_no_client_auth();
                builder = builder.tls_config(Arc::new(config));
            }
            Err(e) => tracing::error!("TLS setup: {e}"),
        }
        Fetcher {
            agent: builder.build(),
            certificates: Mutex::new(HashMap::new()),
        }
    }

    /// The signing key at `url` (already checked by `sns_url`), fetched
    /// once, and valid now.
    pub async fn signing_key(&self, url: &Url) -> Result<Arc<SigningKey>, FetchError> {
        let cached = self.lock().get(url.as_str()).cloned();
        let key = match cached {
            Some(key) => key,
            None => {
                let pem = self.get(url, MAX_CERTIFICATE).await?;
                let key = Arc::new(SigningKey::from_pem(&pem)?);
                let mut cache = self.lock();
                if cache.len() >= CACHED {
                    cache.clear();
                }
                cache.insert(url.to_string(), key.clone());
                key
            }
        };
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        key.check_validity(now)?;
        Ok(key)
    }

    /// Visits a subscription's `SubscribeURL` (already checked).
    pub async fn confirm(&self, url: &Url) -> Result<(), FetchError> {
        self.get(url, MAX_ANSWER).await.map(|_| ())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<SigningKey>>> {
        self.certificates.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn get(&self, url: &Url, max: u64) -> Result<Vec<u8>, FetchError> {
        let agent = self.agent.clone();
        let target = url.to_string();
        let fetched = tokio::task::spawn_blocking(move || {
            let response = agent.get(&target).call().map_err(|e| match e {
                ureq::Error::Status(code, _) => format!("{target}: HTTP {code}"),
                other => format!("{target}: {other}"),
            })?;
            // Redirects are not followed: anything but 200 is a failure.
            if response.status() != 200 {
                return Err(format!("{target}: HTTP {}", response.status()));
            }
            let mut body = Vec::new();
            response
                .into_reader()
                .take(max)
                .read_to_end(&mut body)
                .map_err(|e| format!("{target}: {e}"))?;
            Ok::<_, String>(body)
        })
        .await
        .map_err(|e| FetchError::Unavailable(e.to_string()))?;
        fetched.map_err(FetchError::Unavailable)
    }
}

impl Default for Fetcher {
    fn default() -> Self {
        Fetcher::new()
    }
}

/// The tests' stand-in for SNS, when both variables are set and the
/// address is on the loopback interface.
#[cfg(debug_assertions)]
fn test_override() -> Option<(std::net::SocketAddr, std::path::PathBuf)> {
    let addr = std::env::var("PRESSROOM_TEST_SNS_ADDR").ok()?;
    let ca = std::env::var_os("PRESSROOM_TEST_SNS_CA")?;
    let addr: std::net::SocketAddr = match addr.parse() {
        Ok(addr) => addr,
        Err(_) => {
            tracing::warn!("PRESSROOM_TEST_SNS_ADDR {addr:?} ignored: not IP:PORT");
            return None;
        }
    };
    if !addr.ip().is_loopback() {
        tracing::warn!("PRESSROOM_TEST_SNS_ADDR {addr} ignored: not a loopback address");
        return None;
    }
    Some((addr, ca.into()))
}
