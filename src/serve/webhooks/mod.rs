//! Provider webhooks for bounces and complaints: Amazon SES through SNS
//! (`POST webhooks/ses`, signed by SNS) and Postmark (`POST
//! webhooks/postmark`, HTTP basic auth). Each turns a provider's JSON into
//! [`crate::bounce::Report`]s and records them through the server's ledger
//! thread before it answers, so a 2xx means the report is on disk and
//! anything else makes the provider try again. A route exists only when
//! its `[bounces.*]` table is configured.

pub mod fetch;
pub mod postmark;
pub mod ses;
pub mod sns;

use std::future::Future;
use std::time::Duration;

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use self::fetch::{FetchError, Fetcher, FETCH_TIMEOUT};
use self::ses::Event;
use self::sns::{Envelope, Kind};
use super::store::{Done, Op, Store};
use crate::bounce::Report;
use crate::delivery::bounces::{Applied, Outcome};

/// Largest webhook body accepted: SNS messages reach 256 KiB, more once
/// their JSON is escaped again inside the envelope.
pub const MAX_BODY: usize = 1024 * 1024;

/// `[bounces.ses]`, resolved.
#[derive(Debug, Clone)]
pub struct SesSettings {
    pub topic_arns: Vec<String>,
}

/// `[bounces.postmark]` with the password from the environment.
#[derive(Clone)]
pub struct PostmarkSettings {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for PostmarkSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostmarkSettings")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// Which webhooks are on.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub ses: Option<SesSettings>,
    pub postmark: Option<PostmarkSettings>,
}

/// The webhooks' state, shared by every request.
pub struct Webhooks {
    settings: Settings,
    fetcher: Option<Fetcher>,
    /// How long one fetch from SNS may take: well within the request's
    /// read timeout, so a slow SNS gets a 503 (retried), not a timeout.
    fetch_budget: Duration,
}

fn text(status: StatusCode, body: impl Into<String>) -> Response {
    let mut body = body.into();
    body.push('\n');
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

impl Webhooks {
    /// `read_timeout` is the server's limit on a whole request.
    pub fn new(settings: Settings, read_timeout: Duration) -> Webhooks {
        let fetcher = settings.ses.as_ref().map(|_| Fetcher::new());
        let fetch_budget = (read_timeout * 3 / 4).clamp(Duration::from_secs(1), FETCH_TIMEOUT);
        Webhooks {
            settings,
            fetcher,
            fetch_budget,
        }
    }

    pub fn ses_enabled(&self) -> bool {
        self.settings.ses.is_some()
    }

    pub fn postmark_enabled(&self) -> bool {
        self.settings.postmark.is_some()
    }

    /// `POST webhooks/ses`.
    pub async fn ses(&self, store: &Store, body: &[u8]) -> Response {
        let (Some(ses), Some(fetcher)) = (&self.settings.ses, &self.fetcher) else {
            return text(StatusCode::NOT_FOUND, "not found");
        };
        let refuse = |status: StatusCode, why: String| {
            tracing::warn!("SES webhook: refused: {why}");
            text(status, why)
        };
        let envelope = match Envelope::parse(body) {
            Ok(envelope) => envelope,
            Err(e) => return refuse(StatusCode::BAD_REQUEST, e.to_string()),
        };
        let kind = match envelope.kind() {
            Ok(kind) => kind,
            Err(e) => return refuse(StatusCode::BAD_REQUEST, e.to_string()),
        };
        let topic = &envelope.topic_arn;
        if !ses.topic_arns.iter().any(|t| t == topic) {
            return refuse(
                StatusCode::FORBIDDEN,
                format!("topic {topic} is not in bounces.ses.topic_arns"),
            );
        }
        let cert_url = match sns::sns_url(&envelope.signing_cert_url, true) {
            Ok(url) => url,
            Err(e) => return refuse(StatusCode::FORBIDDEN, e.to_string()),
        };
        let key = match timed(self.fetch_budget, fetcher.signing_key(&cert_url)).await {
            Ok(key) => key,
            Err(FetchError::Unavailable(e)) => {
                tracing::warn!("SES webhook: cannot fetch the signing certificate: {e}");
                return text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the signing certificate cannot be fetched now; try again",
                );
            }
            Err(FetchError::Refused(e)) => {
                return refuse(StatusCode::FORBIDDEN, format!("{cert_url}: {e}"))
            }
        };
        if let Err(e) = envelope.verify(&key) {
            return refuse(
                StatusCode::FORBIDDEN,
                format!("message {}: {e}", envelope.message_id),
            );
        }
        match kind {
            Kind::SubscriptionConfirmation => {
                let url = match sns::sns_url(envelope.subscribe_url.as_deref().unwrap_or(""), false)
                {
                    Ok(url) => url,
                    Err(e) => return refuse(StatusCode::FORBIDDEN, e.to_string()),
                };
                match timed(self.fetch_budget, fetcher.confirm(&url)).await {
                    Ok(()) => {
                        tracing::info!("SES webhook: confirmed the subscription to {topic}");
                        text(StatusCode::OK, "subscription confirmed")
                    }
                    Err(e) => {
                        tracing::warn!("SES webhook: confirming the subscription to {topic}: {e}");
                        text(
                            StatusCode::SERVICE_UNAVAILABLE,
                            "the subscription could not be confirmed now; try again",
                        )
                    }
                }
            }
            Kind::UnsubscribeConfirmation => {
                tracing::info!("SES webhook: the subscription to {topic} was ended");
                text(StatusCode::OK, "noted")
            }
            Kind::Notification => {
                let what = format!("SES notification {}", envelope.message_id);
                match ses::read(&envelope.message, &envelope.message_id) {
                    Ok(Event::Reports(reports)) => record(store, &what, "ses", reports).await,
                    Ok(Event::Ignored(kind)) => {
                        tracing::info!("{what}: {kind}, nothing to record");
                        text(StatusCode::OK, "nothing to record")
                    }
                    Err(e) => refuse(StatusCode::BAD_REQUEST, format!("{what}: {e}")),
                }
            }
        }
    }

    /// `POST webhooks/postmark`.
    pub async fn postmark(&self, store: &Store, headers: &HeaderMap, body: &[u8]) -> Response {
        let Some(settings) = &self.settings.postmark else {
            return text(StatusCode::NOT_FOUND, "not found");
        };
        let authorization = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        if !postmark::authorized(authorization, &settings.username, &settings.password) {
            tracing::warn!(
                "Postmark webhook: refused: {}",
                if authorization.is_some() {
                    "wrong credentials"
                } else {
                    "no credentials"
                }
            );
            let mut response = text(StatusCode::UNAUTHORIZED, "unauthorized");
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"pressroom webhooks\", charset=\"UTF-8\""),
            );
            return response;
        }
        match postmark::read(body) {
            Ok(Event::Reports(reports)) => {
                record(store, "Postmark webhook", "postmark", reports).await
            }
            Ok(Event::Ignored(kind)) => {
                tracing::info!("Postmark webhook: {kind}, nothing to record");
                text(StatusCode::OK, "nothing to record")
            }
            Err(e) => {
                tracing::warn!("Postmark webhook: refused: {e}");
                text(StatusCode::BAD_REQUEST, e)
            }
        }
    }
}

/// `fetch`, or a retryable error once `budget` has passed.
async fn timed<T>(
    budget: Duration,
    fetch: impl Future<Output = Result<T, FetchError>>,
) -> Result<T, FetchError> {
    tokio::time::timeout(budget, fetch)
        .await
        .unwrap_or_else(|_| {
            Err(FetchError::Unavailable(format!(
                "no answer within {budget:?}"
            )))
        })
}

/// Records `reports` in one transaction and logs what each did.
async fn record(store: &Store, what: &str, source: &'static str, reports: Vec<Report>) -> Response {
    if reports.is_empty() {
        tracing::info!("{what}: names no recipient, nothing to record");
        return text(StatusCode::OK, "nothing to record");
    }
    let summary: Vec<String> = reports
        .iter()
        .map(|r| {
            format!(
                "{} for {}",
                r.verdict.as_str(),
                r.recipient.as_deref().unwrap_or("?")
            )
        })
        .collect();
    match store.apply(Op::Bounces { reports, source }).await {
        Ok(Done::Bounces(applied)) => {
            for (report, applied) in summary.iter().zip(&applied) {
                tracing::info!("{what}: {report}: {}", describe(applied));
            }
            text(StatusCode::OK, "recorded")
        }
        Ok(other) => {
            tracing::error!("{what}: the ledger answered {other:?}");
            text(StatusCode::INTERNAL_SERVER_ERROR, "not recorded; try again")
        }
        Err(e) => {
            tracing::error!("{what}: not recorded: {e}");
            text(StatusCode::INTERNAL_SERVER_ERROR, "not recorded; try again")
        }
    }
}

/// What a report did, for the log.
fn describe(applied: &Applied) -> String {
    match &applied.outcome {
        Outcome::Ignored { .. } => "counted, nothing else to do".into(),
        Outcome::Unattributed => "matches nothing pressroom sent; nothing changed".into(),
        Outcome::Duplicate { target } => format!(
            "already recorded for {} (issue {}); nothing changed",
            target.recipient, target.issue
        ),
        Outcome::Recorded {
            target,
            suppressed,
            soft_count,
        } => {
            let whom = format!(
                "{} (issue {}, matched by {})",
                target.recipient,
                target.issue,
                target.by.as_str()
            );
            match (suppressed, soft_count) {
                (Some(reason), _) => format!("{whom} suppressed: {}", reason.as_str()),
                (None, Some(n)) => format!("{whom}: soft bounce counted, {n} so far"),
                (None, None) => format!("{whom}: recorded"),
            }
        }
    }
}
