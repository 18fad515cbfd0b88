//! `pressroom serve`: reads the configuration, the secret, the SMTP
//! settings and the page templates, opens the ledger, binds the address,
//! and runs [`crate::serve`] until SIGTERM or Ctrl-C.

use std::time::Duration;

use super::{Context, Result};
use tracing::info;

use super::InputError;
use crate::cli::{Global, ServeArgs};
use crate::delivery::ledger::Ledger;
use crate::delivery::smtp::SmtpSettings;
use crate::serve::pages::Pages;
use crate::serve::Settings;

pub fn run(global: &Global, args: &ServeArgs) -> Result<()> {
    let root = global.root.as_path();
    let config = super::load_config(root)?;
    let secret = super::secret()?;
    let Some(from) = config.email.from.clone() else {
        return Err(InputError(
            "config.toml: email.from: not set; confirmation emails need a sender address".into(),
        )
        .into());
    };
    let pages = Pages::new(crate::email::Templates::sources(root)?)?;
    let (url, password) = super::smtp_env();
    let smtp = SmtpSettings::resolve(&config.smtp, url.as_deref(), password, root)?;
    let serve = &config.serve;
    let public_url = match &serve.public_url {
        Some(url) => url.clone(),
        None => config
            .email
            .unsubscribe_base(&config.site)
            .join("./")
            .map_err(|_| {
                super::InputError("email.unsubscribe_url has no folder to serve from".into())
            })?,
    };
    let public_url = if public_url.path().ends_with('/') {
        public_url
    } else {
        let mut url = public_url;
        let path = format!("{}/", url.path());
        url.set_path(&path);
        url
    };
    let webhooks = webhook_settings(&config.bounces)?;
    let ledger_path = super::ledger_path(root, &config);
    let ledger = Ledger::open(&ledger_path)?;
    let site = &config.site;
    let settings = Settings {
        pages,
        secret,
        list_id: config.email.list_id(site),
        site: minijinja::context! {
            title => site.title.clone(),
            url => site.base_url.to_string(),
            language => site.language.clone(),
            description => crate::text::single_line(&site.description),
            postal_address => config.email.postal_address.clone().unwrap_or_default(),
        },
        site_title: site.title.clone(),
        public_url,
        path_prefix: serve.path_prefix.clone(),
        from,
        from_name: config.email.from_name(site),
        id_domain: match config.id_domain() {
            d if d.is_empty() => "localhost".to_owned(),
            d => d,
        },
        trusted_proxies: serve.trusted_proxies.clone(),
        confirm_max_age: Duration::from_secs(serve.confirm_hours * 3600),
        read_timeout: Duration::from_secs(serve.read_timeout_seconds),
        signups_per_client_per_hour: serve.signups_per_client_per_hour,
        signups_per_address_per_hour: serve.signups_per_address_per_hour,
        bounces: config.bounces.clone(),
        webhooks,
    };
    let listen = args.listen.unwrap_or(serve.listen);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        let bound = listener.local_addr().unwrap_or(listen);
        info!(
            "serving {} on http://{bound}{} (public: {})",
            config.site.title, config.serve.path_prefix, settings.public_url
        );
        crate::serve::run(
            listener,
            settings,
            ledger,
            std::sync::Arc::new(smtp),
            shutdown_signal(),
        )
        .await;
        info!("stopped");
        Ok::<(), super::Failure>(())
    })
}

/// The provider webhooks `[bounces]` turns on, with the Postmark password
/// from `PRESSROOM_POSTMARK_PASSWORD`.
fn webhook_settings(
    bounces: &crate::config::bounces::BounceConfig,
) -> Result<crate::serve::webhooks::Settings> {
    use crate::serve::webhooks::{PostmarkSettings, SesSettings, Settings};
    let ses = match &bounces.ses {
        Some(ses) if ses.topic_arns.iter().all(|t| t.trim().is_empty()) => {
            return Err(InputError(
                "config.toml: bounces.ses.topic_arns: empty; name the SNS topics whose notifications to accept (arn:aws:sns:REGION:ACCOUNT:TOPIC)".into(),
            )
            .into())
        }
        Some(ses) => Some(SesSettings {
            topic_arns: ses.topic_arns.iter().map(|t| t.trim().to_owned()).collect(),
        }),
        None => None,
    };
    let postmark = match &bounces.postmark {
        Some(postmark) => {
            if postmark.username.trim().is_empty() || postmark.username.contains(':') {
                return Err(InputError(
                    "config.toml: bounces.postmark.username: must be set, without a colon".into(),
                )
                .into());
            }
            let password = std::env::var("PRESSROOM_POSTMARK_PASSWORD").unwrap_or_default();
            if password.len() < 16 {
                return Err(InputError(
                    "PRESSROOM_POSTMARK_PASSWORD is not set or shorter than 16 characters: [bounces.postmark] needs the password of Postmark's webhook URL (e.g. `openssl rand -hex 24`)".into(),
                )
                .into());
            }
            Some(PostmarkSettings {
                username: postmark.username.clone(),
                password,
            })
        }
        None => None,
    };
    if let Some(ses) = &ses {
        info!("SES webhook on for {}", ses.topic_arns.join(", "));
    }
    if postmark.is_some() {
        info!("Postmark webhook on");
    }
    Ok(Settings { ses, postmark })
}

/// Completes on SIGTERM (systemd's stop) or Ctrl-C.
pub(super) async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
