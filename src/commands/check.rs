//! `pressroom check`: load config.toml, every article and the email
//! templates, every send setting that can be loaded without connecting
//! (the SMTP URL, the CA file, the DKIM key), render the next newsletter
//! for a sample reader and lint it, and report every problem at once.
//! Writes nothing.

use std::collections::HashSet;

use super::Result;
use tracing::{info, warn};

use super::InputError;
use crate::address::EmailAddress;
use crate::cli::Global;
use crate::config::key_line;
use crate::delivery::dkim::{DkimError, DkimSigner};
use crate::delivery::smtp::{SmtpConfigError, SmtpSettings};
use crate::email::{self, Severity, Templates};

pub fn run(global: &Global) -> Result<()> {
    let now = super::now(global);
    let site = super::load_site(&global.root)?;
    let mut problems: Vec<String> = Vec::new();
    let mut warnings: Vec<String> = Vec::new();

    // [email]: a missing sender only matters once mail is sent, so it is a
    // warning; a wrong value is a problem.
    let config_text =
        std::fs::read_to_string(global.root.join(super::CONFIG_FILE)).unwrap_or_default();
    let email_problems = site.config.email.problems(&site.config.site);
    let subject_problems = email::templates::subject_problems(&site.config.email);
    for problem in email_problems.into_iter().chain(subject_problems) {
        let key = problem.split(':').next().unwrap_or_default();
        let line = key_line(&config_text, key).unwrap_or(1);
        let located = format!("{}:{line}: {problem}", super::CONFIG_FILE);
        if key == "email.from" && site.config.email.from.is_none() {
            warnings.push(located);
        } else {
            problems.push(located);
        }
    }

    let (send_problems, send_warnings) = send_settings(global, &site, &config_text);
    problems.extend(send_problems);
    warnings.extend(send_warnings);

    // The subscriber list, when there is one: bad rows are warnings (a
    // send skips them), a list that cannot be read is a problem.
    let subscribers = &site.config.send.subscribers;
    if global.root.join(subscribers).exists() {
        match crate::delivery::subscribers::Subscribers::open(&global.root, subscribers) {
            Ok(mut rows) => {
                let mut count = 0u64;
                let mut broken = None;
                for row in &mut rows {
                    match row {
                        Ok(_) => count += 1,
                        Err(e) => {
                            broken = Some(e.to_string());
                            break;
                        }
                    }
                }
                match broken {
                    Some(problem) => problems.push(problem),
                    None => {
                        warnings.extend(rows.problems().iter().map(ToString::to_string));
                        if rows.problems_omitted() > 0 {
                            warnings.push(format!(
                                "{} more problem row(s) in {} not shown",
                                rows.problems_omitted(),
                                subscribers.display()
                            ));
                        }
                        info!("{}: {count} subscriber(s)", subscribers.display());
                    }
                }
            }
            Err(e) => problems.push(e.to_string()),
        }
    }

    match Templates::load(&global.root) {
        Err(e) => problems.extend(e.problems),
        Ok(templates) if problems.is_empty() => {
            let mut config = site.config.clone();
            if config.email.from.is_none() {
                config.email.from = EmailAddress::parse("check@example.com").ok();
            }
            let site = crate::content::Site {
                config,
                articles: site.articles.clone(),
            };
            let recipient = email::sample_recipient();
            let unsubscribe = email::unsubscribe_url(&site, &recipient.email, b"check");
            let max = site.config.email.digest_max;
            for draft in
                email::plan_preview(&site, now, site.config.email.mode, max, &HashSet::new())
            {
                match email::render(&site, &templates, &draft, &recipient, &unsubscribe) {
                    Ok(rendered) => {
                        for finding in email::lint(&rendered) {
                            match finding.severity {
                                Severity::Error => problems.push(finding.to_string()),
                                Severity::Warning => warnings.push(finding.to_string()),
                            }
                        }
                    }
                    Err(e) => problems.push(e.to_string()),
                }
            }
        }
        Ok(_) => {}
    }

    for warning in &warnings {
        warn!("{warning}");
    }
    if !problems.is_empty() {
        return Err(InputError(problems.join("\n")).into());
    }
    let published = site.published(now).count();
    let drafts = site.articles.iter().filter(|a| a.draft).count();
    let scheduled: Vec<_> = site
        .articles
        .iter()
        .filter(|a| !a.draft && a.publish_date > now)
        .collect();
    for article in &scheduled {
        info!(
            "{}: scheduled for {}",
            article.source,
            article.publish_date.to_rfc3339()
        );
    }
    info!(
        "ok: {} articles ({published} published, {} scheduled, {drafts} drafts); email templates render",
        site.articles.len(),
        scheduled.len()
    );
    Ok(())
}

/// Loads what `send` loads before it connects: the SMTP URL (or
/// `PRESSROOM_SMTP_URL`), the `ca_file` and the DKIM key. Problems name
/// the config line; what depends on the environment cron runs in (the
/// password) is a warning.
fn send_settings(
    global: &Global,
    site: &crate::content::Site,
    config_text: &str,
) -> (Vec<String>, Vec<String>) {
    let (mut problems, mut warnings) = (Vec::new(), Vec::new());
    let located = |key: &str, message: &dyn std::fmt::Display| {
        let line = key_line(config_text, key).unwrap_or(1);
        format!("{}:{line}: {key}: {message}", super::CONFIG_FILE)
    };
    let smtp = &site.config.smtp;
    let (url, password) = super::smtp_env();
    if let Err(e) = SmtpSettings::resolve(smtp, url.as_deref(), password, &global.root) {
        match &e {
            SmtpConfigError::NoPassword { .. } | SmtpConfigError::PasswordWithoutUser => {
                warnings.push(e.to_string());
            }
            SmtpConfigError::Url { .. } | SmtpConfigError::Plaintext { .. } if url.is_some() => {
                problems.push(format!("PRESSROOM_SMTP_URL: {e}"));
            }
            SmtpConfigError::Url { .. } | SmtpConfigError::Plaintext { .. } => {
                problems.push(located("smtp.url", &e));
            }
            SmtpConfigError::CaFile { .. } => problems.push(located("smtp.ca_file", &e)),
            SmtpConfigError::HelloName(_) => problems.push(located("smtp.hello_name", &e)),
            SmtpConfigError::Tls(_) => problems.push(located("smtp", &e)),
        }
    }
    if let Some(dkim) = &smtp.dkim {
        if let Err(e) = DkimSigner::load(dkim, &global.root) {
            let key = match &e {
                DkimError::Field {
                    field: "domain", ..
                } => "smtp.dkim.domain",
                DkimError::Field { .. } => "smtp.dkim.selector",
                DkimError::Read { .. } | DkimError::Key { .. } => "smtp.dkim.private_key",
            };
            problems.push(located(key, &e));
        }
    }
    // [bounces] address: the envelope sender carries a tag signed with
    // PRESSROOM_SECRET, and `pressroom bounces` checks it with the same.
    if let Some(bounces) = &site.config.bounces.address {
        if let Some(problem) = crate::email::verp::address_problem(bounces) {
            problems.push(located("bounces.address", &problem));
        }
        if let Err(e) = super::secret() {
            problems.push(located(
                "bounces.address",
                &format!("bounce addresses are signed with PRESSROOM_SECRET: {e}"),
            ));
        }
    }
    (problems, warnings)
}
