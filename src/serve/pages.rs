//! The pages and the confirmation email `pressroom serve` answers with:
//! minijinja templates built into the binary (`templates/serve/`, with the
//! email stylesheet `templates/style.css`), each replaced by a file of the
//! same name in the site's `templates/` folder, as the email templates
//! are. Autoescaping is on for every `.html` template, so every value a
//! visitor or a token brings is escaped.

use minijinja::{Environment, UndefinedBehavior, Value};

use crate::email::templates::BUILTIN as EMAIL_BUILTIN;
use crate::email::TemplateError;

/// Built-in page templates, by name.
pub const BUILTIN: [(&str, &str); 10] = [
    (
        "serve/base.html",
        include_str!("../../templates/serve/base.html"),
    ),
    (
        "serve/unsubscribe.html",
        include_str!("../../templates/serve/unsubscribe.html"),
    ),
    (
        "serve/unsubscribed.html",
        include_str!("../../templates/serve/unsubscribed.html"),
    ),
    (
        "serve/subscribe.html",
        include_str!("../../templates/serve/subscribe.html"),
    ),
    (
        "serve/subscribe_sent.html",
        include_str!("../../templates/serve/subscribe_sent.html"),
    ),
    (
        "serve/confirm.html",
        include_str!("../../templates/serve/confirm.html"),
    ),
    (
        "serve/confirmed.html",
        include_str!("../../templates/serve/confirmed.html"),
    ),
    (
        "serve/error.html",
        include_str!("../../templates/serve/error.html"),
    ),
    (
        "serve/confirm_email.txt",
        include_str!("../../templates/serve/confirm_email.txt"),
    ),
    (
        "serve/confirm_email.html",
        include_str!("../../templates/serve/confirm_email.html"),
    ),
];

/// Compiled page templates.
#[derive(Debug)]
pub struct Pages {
    env: Environment<'static>,
}

impl Pages {
    /// The built-ins, overridden by `sources` (the site's `templates/`
    /// files as name and text; only `serve/…` and `style.css` matter
    /// here). Every page is rendered once with sample values, so a broken
    /// override is reported at start, naming its file and line.
    pub fn new(sources: Vec<(String, String)>) -> Result<Pages, TemplateError> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::SemiStrict);
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        let mut problems = Vec::new();
        let style = EMAIL_BUILTIN
            .iter()
            .find(|(name, _)| *name == "style.css")
            .map(|(_, text)| *text)
            .unwrap_or_default();
        for (name, text) in BUILTIN.iter().copied().chain([("style.css", style)]) {
            if let Err(e) = env.add_template(name, text) {
                problems.push(format!("{name} (built-in): {e}"));
            }
        }
        let mut overridden = Vec::new();
        for (name, text) in sources {
            if name == "style.css" || name.starts_with("serve/") {
                match env.add_template_owned(name.clone(), text) {
                    Ok(()) => overridden.push(name),
                    Err(e) => problems.push(located(&name, &e)),
                }
            }
        }
        if !problems.is_empty() {
            return Err(TemplateError { problems });
        }
        let pages = Pages { env };
        let sample = minijinja::context! {
            site => minijinja::context! { title => "Site", url => "https://example.com/",
                language => "en", description => "", postal_address => "" },
            list_id => "example.com", email => "reader@example.com", action => "x",
            subscribe => "subscribe", hours => 48, heading => "h", message => "m",
            link => "https://example.com/confirm?token=x",
        };
        for (name, _) in BUILTIN {
            if name != "serve/base.html" {
                if let Err(e) = pages.render(name, &sample) {
                    problems.push(e);
                }
            }
        }
        if problems.is_empty() {
            Ok(pages)
        } else {
            Err(TemplateError { problems })
        }
    }

    /// Renders the template `name`; the error names the file and line.
    pub fn render(&self, name: &str, ctx: &Value) -> Result<String, String> {
        self.env
            .get_template(name)
            .and_then(|t| t.render(ctx))
            .map_err(|e| located(e.name().unwrap_or(name), &e))
    }
}

fn located(name: &str, e: &minijinja::Error) -> String {
    let line = e.line().map(|l| format!(":{l}")).unwrap_or_default();
    format!(
        "{}/{name}{line}: {}",
        crate::email::templates::DIR,
        crate::email::templates::describe_error(e)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_render_and_escape_every_value() {
        let pages = Pages::new(Vec::new()).unwrap();
        let ctx = minijinja::context! {
            site => minijinja::context! { title => "<b>Site</b>", url => "https://example.com/",
                language => "en" },
            list_id => "example.com", email => "\"><script>alert(1)</script>@example.com",
            action => "unsubscribe?token=a&b",
        };
        let html = pages.render("serve/unsubscribe.html", &ctx).unwrap();
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
        assert!(html.contains("&lt;b&gt;Site&lt;&#x2f;b&gt;"), "{html}");
        assert!(
            html.contains("action=\"unsubscribe?token=a&amp;b\""),
            "{html}"
        );
        assert!(
            html.contains(".masthead"),
            "the email stylesheet is included"
        );
    }

    #[test]
    fn an_override_replaces_a_page_and_a_broken_one_is_named() {
        let pages = Pages::new(vec![(
            "serve/confirmed.html".to_owned(),
            "Welcome, {{ email }}!".to_owned(),
        )])
        .unwrap();
        let html = pages
            .render(
                "serve/confirmed.html",
                &minijinja::context! { email => "a&b@x.org" },
            )
            .unwrap();
        assert_eq!(html, "Welcome, a&amp;b@x.org!");
        let err = Pages::new(vec![(
            "serve/confirm.html".to_owned(),
            "line one\n{% if %}".to_owned(),
        )])
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("templates/serve/confirm.html:2: "), "{err}");
    }
}
