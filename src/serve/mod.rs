//! `pressroom serve`: the small HTTP server that keeps the promises every
//! email makes. It answers the RFC 8058 one-click unsubscribe POST (and
//! the page behind the footer link), and runs double opt-in signups: a
//! form, a confirmation email with a signed link that expires, and a
//! Confirm button. A GET never changes anything (mail scanners open every
//! link); every change is committed to the ledger before its answer.
//!
//! Meant for 127.0.0.1 behind a TLS reverse proxy: HTTP/1.1 only, no
//! CORS, small limits on heads and bodies, read and idle timeouts, and
//! `X-Forwarded-For` believed only from configured proxies. On SIGTERM
//! or Ctrl-C it stops accepting, finishes the requests in flight, sends
//! the confirmation emails queued, and exits.

pub mod limits;
pub mod mailer;
pub mod pages;
pub mod store;
pub mod webhooks;

use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Form, Router};
use chrono::{TimeZone, Utc};
use minijinja::Value;
use serde::Deserialize;
use url::Url;

use self::limits::Limiter;
use self::mailer::Mailer;
use self::pages::Pages;
use self::store::{BounceRules, Done, Op, Store};
use self::webhooks::Webhooks;
use crate::address::EmailAddress;
use crate::delivery::ledger::Confirmation;
use crate::email::token::{self, ConfirmTokenError};

/// Largest request head (request line and headers) accepted.
const MAX_HEAD: usize = 16 * 1024;
/// Largest request body accepted (a signup form is a few hundred bytes).
const MAX_BODY: usize = 8 * 1024;
/// Connections served at once; more wait in the kernel's queue.
const MAX_CONNECTIONS: usize = 1024;
/// How long requests in flight may take to finish after SIGTERM.
const GRACE: Duration = Duration::from_secs(20);

/// Pages without per-request values, with their form's action.
const FIXED: [(&str, &str); 2] = [
    ("serve/subscribe.html", "subscribe"),
    ("serve/subscribe_sent.html", ""),
];

/// Everything the server needs, resolved by the command layer.
pub struct Settings {
    pub pages: Pages,
    pub secret: Vec<u8>,
    pub list_id: String,
    /// `site` in page templates: title, url, language, description,
    /// postal_address.
    pub site: Value,
    pub site_title: String,
    /// Where the routes are reached from outside (ends with `/`).
    pub public_url: Url,
    pub path_prefix: String,
    pub from: EmailAddress,
    pub from_name: String,
    pub id_domain: String,
    pub trusted_proxies: Vec<IpAddr>,
    pub confirm_max_age: Duration,
    pub read_timeout: Duration,
    pub signups_per_client_per_hour: u32,
    pub signups_per_address_per_hour: u32,
    /// `[bounces]`: soft-bounce rules for the reports webhooks record.
    pub bounces: crate::config::bounces::BounceConfig,
    /// The provider webhooks that are on.
    pub webhooks: webhooks::Settings,
}

/// Shared by every request.
struct App {
    settings: Settings,
    store: Store,
    mailer: Mailer,
    per_client: Limiter<IpAddr>,
    per_address: Limiter<String>,
    webhooks: Webhooks,
    /// The pages that hold nothing from the request (the signup form and
    /// its answer), rendered once at start.
    fixed: Vec<(&'static str, String)>,
}

/// The connection's peer, put into each request's extensions.
#[derive(Debug, Clone, Copy)]
struct Peer(SocketAddr);

/// Builds the routes under the configured prefix.
fn router(app: Arc<App>) -> Router {
    let read_timeout = app.settings.read_timeout;
    let prefix = app.settings.path_prefix.trim_end_matches('/').to_owned();
    let mut routes: Router<Arc<App>> = Router::new()
        .route("/unsubscribe", get(unsubscribe_page).post(unsubscribe))
        .route("/subscribe", get(subscribe_page).post(subscribe))
        .route("/confirm", get(confirm_page).post(confirm))
        .route("/healthz", get(healthz))
        .fallback(not_found);
    // Provider webhooks, only when configured; their bodies may be far
    // larger than a form's.
    let webhook_body = DefaultBodyLimit::max(webhooks::MAX_BODY);
    if app.webhooks.ses_enabled() {
        routes = routes.route("/webhooks/ses", post(ses_webhook).layer(webhook_body));
    }
    if app.webhooks.postmark_enabled() {
        routes = routes.route(
            "/webhooks/postmark",
            post(postmark_webhook).layer(webhook_body),
        );
    }
    let routes: Router = if prefix.is_empty() {
        routes.with_state(app)
    } else {
        Router::<Arc<App>>::new()
            .nest(&prefix, routes)
            .fallback(not_found)
            .with_state(app)
    };
    routes
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(middleware::from_fn(move |req: Request, next: Next| {
            request_timeout(req, next, read_timeout)
        }))
}

/// A request (its body included) that takes longer than the read timeout
/// is answered 408, so a slow client cannot hold a worker. A webhook's gets
/// 503 instead: SNS takes any 4xx as final, and the notification would be
/// lost; both providers retry a 5xx.
async fn request_timeout(req: Request, next: Next, limit: Duration) -> Response {
    let webhook = req.uri().path().contains("/webhooks/");
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(response) => response,
        Err(_) if webhook => (
            StatusCode::SERVICE_UNAVAILABLE,
            "request timed out; try again\n",
        )
            .into_response(),
        Err(_) => (StatusCode::REQUEST_TIMEOUT, "request timed out\n").into_response(),
    }
}

/// Serves on `listener` until `shutdown` completes, then finishes the
/// requests in flight (for up to [`GRACE`]) and stops the ledger and
/// mailer threads after they have done everything queued.
pub async fn run(
    listener: tokio::net::TcpListener,
    settings: Settings,
    ledger: crate::delivery::ledger::Ledger,
    smtp: Arc<crate::delivery::smtp::SmtpSettings>,
    shutdown: impl Future<Output = ()>,
) {
    let rules = BounceRules {
        settings: settings.bounces.clone(),
        secret: settings.secret.clone(),
    };
    let (store, store_thread) = Store::start(ledger, rules);
    let (mailer, mailer_thread) = Mailer::start(smtp);
    let hour = Duration::from_secs(3600);
    let fixed = FIXED
        .iter()
        .filter_map(|(name, action)| {
            let ctx = context(&settings, minijinja::context! { action => *action });
            settings
                .pages
                .render(name, &ctx)
                .ok()
                .map(|body| (*name, body))
        })
        .collect();
    let app = Arc::new(App {
        per_client: Limiter::new(settings.signups_per_client_per_hour, hour),
        per_address: Limiter::new(settings.signups_per_address_per_hour, hour),
        webhooks: Webhooks::new(settings.webhooks.clone(), settings.read_timeout),
        settings,
        store,
        mailer,
        fixed,
    });
    let read_timeout = app.settings.read_timeout;
    let router = router(app.clone());
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let permits = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little.
                    tracing::warn!("accepting a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let service =
            hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(Peer(peer));
                let mut router = router.clone();
                async move {
                    let response: Result<Response, Infallible> =
                        tower::Service::call(&mut router, req).await;
                    response
                }
            });
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(read_timeout)
            .max_buf_size(MAX_HEAD)
            .keep_alive(true);
        let conn =
            graceful.watch(http.serve_connection(hyper_util::rt::TokioIo::new(stream), service));
        tokio::spawn(async move {
            let _ = conn.await;
            drop(permit);
        });
    }
    drop(listener);
    tracing::info!("stopping: finishing the requests in flight");
    if tokio::time::timeout(GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            "requests still running after {} s were cut off",
            GRACE.as_secs()
        );
    }
    drop(router);
    drop(app);
    let _ = tokio::task::spawn_blocking(move || {
        let _ = store_thread.join();
        let _ = mailer_thread.join();
    })
    .await;
}

/// The client's address: the peer, or, when the peer is a trusted proxy,
/// the nearest untrusted address in `X-Forwarded-For`.
fn client(peer: SocketAddr, headers: &HeaderMap, trusted: &[IpAddr]) -> IpAddr {
    let peer = peer.ip().to_canonical();
    if !trusted.contains(&peer) {
        return peer;
    }
    let mut client = peer;
    for value in headers.get_all("x-forwarded-for").iter().rev() {
        let Ok(value) = value.to_str() else { break };
        for hop in value.split(',').rev() {
            match hop.trim().parse::<IpAddr>() {
                Ok(ip) => {
                    client = ip.to_canonical();
                    if !trusted.contains(&client) {
                        return client;
                    }
                }
                Err(_) => return client,
            }
        }
    }
    client
}

#[derive(Debug, Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

#[derive(Debug, Deserialize)]
struct SignupForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    name: String,
    /// The honeypot: hidden from people.
    #[serde(default)]
    website: String,
}

/// What every page and the confirmation email see, plus `extra`.
fn context(settings: &Settings, extra: Value) -> Value {
    minijinja::context! {
        site => settings.site.clone(),
        list_id => settings.list_id.clone(),
        subscribe => "subscribe",
        hours => settings.confirm_max_age.as_secs() / 3600,
        ..extra
    }
}

/// An HTML answer with the headers every page carries: no caching, no
/// referrer (the URL holds a token), no framing, no scripts.
fn html(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_TYPE, "text/html; charset=utf-8"),
        (header::CACHE_CONTROL, "no-store"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

impl App {
    fn context(&self, extra: Value) -> Value {
        context(&self.settings, extra)
    }

    fn page(&self, status: StatusCode, name: &str, extra: Value) -> Response {
        if let Some((_, body)) = self.fixed.iter().find(|(n, _)| *n == name) {
            return html(status, body.clone());
        }
        match self.settings.pages.render(name, &self.context(extra)) {
            Ok(body) => html(status, body),
            Err(e) => {
                tracing::error!("{e}");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "a page template failed; see the server's log\n",
                )
                    .into_response()
            }
        }
    }

    fn error(&self, status: StatusCode, heading: &str, message: &str) -> Response {
        self.page(
            status,
            "serve/error.html",
            minijinja::context! { heading => heading, message => message },
        )
    }

    fn invalid_link(&self) -> Response {
        self.error(
            StatusCode::BAD_REQUEST,
            "This link does not work",
            "The link is incomplete or was changed. Copy the whole link from the email, or use the unsubscribe link of a more recent one.",
        )
    }

    fn unavailable(&self) -> Response {
        self.error(
            StatusCode::SERVICE_UNAVAILABLE,
            "Please try again",
            "We could not record this just now. Nothing was changed; please try again in a minute.",
        )
    }

    fn unsubscribe_address(&self, query: &TokenQuery) -> Option<EmailAddress> {
        let token = query.token.as_deref()?;
        token::verify_token(token, &self.settings.list_id, &self.settings.secret)
    }

    fn confirm_address(&self, query: &TokenQuery) -> Result<(EmailAddress, i64), Response> {
        let token = query.token.as_deref().ok_or_else(|| self.invalid_link())?;
        let max_age = self.settings.confirm_max_age.as_secs() as i64;
        token::verify_confirm(
            token,
            &self.settings.list_id,
            &self.settings.secret,
            Utc::now().timestamp(),
            max_age,
        )
        .map_err(|e| match e {
            ConfirmTokenError::Invalid => self.invalid_link(),
            ConfirmTokenError::Expired => self.error(
                StatusCode::GONE,
                "This link has expired",
                "Confirmation links work for a limited time. Sign up again and we will send a new one.",
            ),
        })
    }
}

fn action(route: &str, token: &str) -> String {
    let mut out = String::from(route);
    out.push_str("?token=");
    out.extend(url::form_urlencoded::byte_serialize(token.as_bytes()));
    out
}

async fn unsubscribe_page(
    State(app): State<Arc<App>>,
    Query(query): Query<TokenQuery>,
) -> Response {
    let Some(address) = app.unsubscribe_address(&query) else {
        return app.invalid_link();
    };
    let token = query.token.as_deref().unwrap_or_default().trim();
    app.page(
        StatusCode::OK,
        "serve/unsubscribe.html",
        minijinja::context! { email => address.as_str(), action => action("unsubscribe", token) },
    )
}

/// The RFC 8058 one-click POST (body `List-Unsubscribe=One-Click`) and
/// the page's button: both unsubscribe at once, answer 200, and say so
/// again when repeated.
async fn unsubscribe(
    State(app): State<Arc<App>>,
    Query(query): Query<TokenQuery>,
    body: Bytes,
) -> Response {
    let Some(address) = app.unsubscribe_address(&query) else {
        return app.invalid_link();
    };
    let how = if body.windows(8).any(|w| w == b"via=page") {
        "page"
    } else {
        "one-click"
    };
    match app
        .store
        .apply(Op::Unsubscribe {
            address: address.clone(),
            how,
        })
        .await
    {
        Ok(Done::Unsubscribed(new)) => {
            if new {
                tracing::info!("{address} unsubscribed ({how})");
            }
            app.page(
                StatusCode::OK,
                "serve/unsubscribed.html",
                minijinja::context! { email => address.as_str() },
            )
        }
        _ => app.unavailable(),
    }
}

async fn subscribe_page(State(app): State<Arc<App>>) -> Response {
    app.page(
        StatusCode::OK,
        "serve/subscribe.html",
        minijinja::context! { action => "subscribe" },
    )
}

async fn subscribe(
    State(app): State<Arc<App>>,
    Extension(Peer(peer)): Extension<Peer>,
    headers: HeaderMap,
    Form(form): Form<SignupForm>,
) -> Response {
    let client = client(peer, &headers, &app.settings.trusted_proxies);
    let sent = || {
        app.page(
            StatusCode::OK,
            "serve/subscribe_sent.html",
            Value::UNDEFINED,
        )
    };
    if !app.per_client.allow(client, Instant::now()) {
        return app.error(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many signups",
            "This network has asked for many signups in the last hour. Please try again later.",
        );
    }
    let Ok(address) = EmailAddress::parse(form.email.trim()) else {
        return app.error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Please check the address",
            "That does not look like an email address. Go back and check it for typos.",
        );
    };
    if !form.website.is_empty() {
        // A bot filled in the hidden field: answered like anyone, ignored.
        tracing::debug!("signup with the honeypot filled in, ignored");
        return sent();
    }
    let name = crate::text::single_line(form.name.trim());
    let name: Option<String> = (!name.is_empty()).then(|| name.chars().take(100).collect());
    let done = app
        .store
        .apply(Op::Signup {
            address: address.clone(),
            name: name.clone(),
            client: client.to_string(),
        })
        .await;
    let before = match done {
        Ok(Done::Signup(before)) => before,
        _ => return app.unavailable(),
    };
    if before.needs_confirmation() && app.per_address.allow(address.normalized(), Instant::now()) {
        let issued = Utc::now().timestamp();
        let token = token::sign_confirm(
            &address,
            &app.settings.list_id,
            issued,
            &app.settings.secret,
        );
        let mut link = app
            .settings
            .public_url
            .join("confirm")
            .unwrap_or_else(|_| app.settings.public_url.clone());
        link.query_pairs_mut().append_pair("token", &token);
        match confirmation_email(&app, &address, name.as_deref(), link.as_str(), &token) {
            Ok(message) => app.mailer.queue(message),
            Err(e) => tracing::error!("confirmation email for {address}: {e}"),
        }
    }
    sent()
}

fn confirmation_email(
    app: &App,
    address: &EmailAddress,
    name: Option<&str>,
    link: &str,
    token: &str,
) -> Result<lettre::Message, String> {
    let ctx = app.context(minijinja::context! { email => address.as_str(), link => link });
    let text = app.settings.pages.render("serve/confirm_email.txt", &ctx)?;
    let html = app
        .settings
        .pages
        .render("serve/confirm_email.html", &ctx)?;
    let subject = format!("Confirm your subscription to {}", app.settings.site_title);
    mailer::build(&mailer::Confirmation {
        from: &app.settings.from,
        from_name: &app.settings.from_name,
        to: address,
        to_name: name,
        subject: &subject,
        text,
        html,
        token,
        id_domain: &app.settings.id_domain,
    })
}

async fn confirm_page(State(app): State<Arc<App>>, Query(query): Query<TokenQuery>) -> Response {
    let (address, _) = match app.confirm_address(&query) {
        Ok(found) => found,
        Err(page) => return page,
    };
    let token = query.token.as_deref().unwrap_or_default().trim();
    app.page(
        StatusCode::OK,
        "serve/confirm.html",
        minijinja::context! { email => address.as_str(), action => action("confirm", token) },
    )
}

async fn confirm(
    State(app): State<Arc<App>>,
    Extension(Peer(peer)): Extension<Peer>,
    headers: HeaderMap,
    Query(query): Query<TokenQuery>,
) -> Response {
    let (address, issued) = match app.confirm_address(&query) {
        Ok(found) => found,
        Err(page) => return page,
    };
    let client = client(peer, &headers, &app.settings.trusted_proxies);
    let issued_at = Utc.timestamp_opt(issued, 0).single().unwrap_or_default();
    let done = app
        .store
        .apply(Op::Confirm {
            address: address.clone(),
            issued_at,
            client: client.to_string(),
        })
        .await;
    match done {
        Ok(Done::Confirm(Confirmation::Confirmed | Confirmation::AlreadyActive)) => {
            tracing::info!("{address} confirmed a signup");
            app.page(
                StatusCode::OK,
                "serve/confirmed.html",
                minijinja::context! { email => address.as_str() },
            )
        }
        Ok(Done::Confirm(Confirmation::Stale)) => app.error(
            StatusCode::GONE,
            "This link is no longer valid",
            "This address left the list after the link was sent. To join again, sign up again and use the new link.",
        ),
        _ => app.unavailable(),
    }
}

async fn ses_webhook(State(app): State<Arc<App>>, body: Bytes) -> Response {
    app.webhooks.ses(&app.store, &body).await
}

async fn postmark_webhook(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    app.webhooks.postmark(&app.store, &headers, &body).await
}

async fn healthz(State(app): State<Arc<App>>) -> Response {
    match app.store.apply(Op::Health).await {
        Ok(Done::Healthy) => (StatusCode::OK, "ok\n").into_response(),
        _ => (
            StatusCode::SERVICE_UNAVAILABLE,
            "the ledger does not answer\n",
        )
            .into_response(),
    }
}

async fn not_found(State(app): State<Arc<App>>) -> Response {
    app.error(
        StatusCode::NOT_FOUND,
        "Not found",
        "There is no page at this address.",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let proxy: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            HeaderValue::from_static("203.0.113.9, 198.51.100.7"),
        );
        let trusted = ["127.0.0.1".parse().unwrap()];
        assert_eq!(client(proxy, &headers, &[]), proxy.ip());
        assert_eq!(
            client(proxy, &headers, &trusted),
            "198.51.100.7".parse::<IpAddr>().unwrap(),
            "the nearest hop the proxy saw, not what the client wrote first"
        );
        let two = [
            "127.0.0.1".parse().unwrap(),
            "198.51.100.7".parse().unwrap(),
        ];
        assert_eq!(
            client(proxy, &headers, &two),
            "203.0.113.9".parse::<IpAddr>().unwrap()
        );
        let stranger: SocketAddr = "192.0.2.1:5000".parse().unwrap();
        assert_eq!(client(stranger, &headers, &trusted), stranger.ip());
        headers.insert("x-forwarded-for", HeaderValue::from_static("junk"));
        assert_eq!(client(proxy, &headers, &trusted), proxy.ip());
    }
}
