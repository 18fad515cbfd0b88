//! Email templates (minijinja, Jinja2 syntax). The defaults in the
//! repository's `templates/` folder are compiled into the binary; a site's
//! own `templates/` folder overrides them file by file and may add partials
//! of its own. Autoescaping is on for `.html`/`.htm`/`.xml` templates and
//! off for `.txt` and `.css`.
//!
//! Besides minijinja's built-in filters, templates get:
//! - `underline(char="=")`: a line of `char` as long as the value (for
//!   plain-text headings);
//! - `wrap(width=76)`: plain text wrapped at `width` columns of display
//!   width (CJK and emoji count two), paragraphs kept.

use std::collections::BTreeSet;
use std::path::Path;

use minijinja::{Environment, Error, UndefinedBehavior, Value};
use textwrap::core::{display_width, Word};
use textwrap::{Options, WordSeparator, WordSplitter, WrapAlgorithm};
use unicode_width::UnicodeWidthChar;

use crate::config::email::EmailConfig;
use crate::error_kind::{ErrorKind, HasKind};

/// Built-in templates, by name.
pub const BUILTIN: [(&str, &str); 8] = [
    ("base.html", include_str!("../../templates/base.html")),
    ("macros.html", include_str!("../../templates/macros.html")),
    ("style.css", include_str!("../../templates/style.css")),
    ("digest.html", include_str!("../../templates/digest.html")),
    ("article.html", include_str!("../../templates/article.html")),
    ("digest.txt", include_str!("../../templates/digest.txt")),
    ("article.txt", include_str!("../../templates/article.txt")),
    ("footer.txt", include_str!("../../templates/footer.txt")),
];

/// The folder of a site that overrides templates.
pub const DIR: &str = "templates";

/// Every template problem found, one per line, each naming the file and
/// line.
#[derive(Debug, thiserror::Error)]
#[error("{}", .problems.join("\n"))]
pub struct TemplateError {
    pub problems: Vec<String>,
}

impl HasKind for TemplateError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Input
    }
}

/// Compiled templates, ready to render.
#[derive(Debug, Clone)]
pub struct Templates {
    env: Environment<'static>,
    overridden: BTreeSet<String>,
}

impl Templates {
    /// Only the built-in templates.
    pub fn builtin() -> Templates {
        match Templates::from_sources(Vec::new()) {
            Ok(templates) => templates,
            // The built-ins are compiled by a unit test.
            Err(e) => panic!("built-in email templates do not compile:\n{e}"),
        }
    }

    /// The built-ins, overridden by `sources` (name relative to the
    /// templates folder with `/` separators, and text). Every syntax error
    /// is reported, not just the first.
    pub fn from_sources(
        sources: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Templates, TemplateError> {
        let mut env = environment();
        let mut problems = Vec::new();
        for (name, source) in BUILTIN {
            if let Err(e) = env.add_template(name, source) {
                problems.push(located(&e, name, &format!("{name} (built-in)")));
            }
        }
        let mut overridden = BTreeSet::new();
        for (name, source) in sources {
            let shown = format!("{DIR}/{name}");
            match env.add_template_owned(name.clone(), source) {
                Ok(()) => {
                    overridden.insert(name);
                }
                Err(e) => problems.push(located(&e, &name, &shown)),
            }
        }
        if problems.is_empty() {
            Ok(Templates { env, overridden })
        } else {
            Err(TemplateError { problems })
        }
    }

    /// The built-ins overridden by the files in `site_root/templates/`
    /// (if the folder exists). Files and folders starting with `.` are
    /// skipped. Errors name the file and, for syntax errors, the line.
    pub fn load(site_root: &Path) -> Result<Templates, TemplateError> {
        Templates::from_sources(Templates::sources(site_root)?)
    }

    /// The files of `site_root/templates/` as (name, text) pairs, for
    /// [`Templates::from_sources`] (a send freezes them with its issue).
    pub fn sources(site_root: &Path) -> Result<Vec<(String, String)>, TemplateError> {
        let dir = site_root.join(DIR);
        if !dir.is_dir() {
            return Ok(Vec::new());
        }
        let mut sources = Vec::new();
        let mut problems = Vec::new();
        let walker = walkdir::WalkDir::new(&dir)
            .sort_by_file_name()
            .into_iter()
            .filter_entry(|e| e.depth() == 0 || !e.file_name().to_string_lossy().starts_with('.'));
        for entry in walker {
            let entry = match entry {
                Ok(entry) => entry,
                Err(e) => {
                    let path = e.path().unwrap_or(&dir).display().to_string();
                    problems.push(format!("{path}: cannot read: {e}"));
                    continue;
                }
            };
            if !entry.file_type().is_file() {
                continue;
            }
            let path = entry.path();
            let name = crate::content::display_path(&dir, path);
            let shown = format!("{DIR}/{name}");
            match std::fs::read(path) {
                Ok(bytes) => match String::from_utf8(bytes) {
                    Ok(text) => sources.push((name, text)),
                    Err(_) => problems.push(format!("{shown}: not UTF-8 text; save it as UTF-8")),
                },
                Err(e) => problems.push(format!("{shown}: cannot read: {e}")),
            }
        }
        if problems.is_empty() {
            Ok(sources)
        } else {
            Err(TemplateError { problems })
        }
    }

    /// Names of the templates a site's folder replaced or added.
    pub fn overridden(&self) -> impl Iterator<Item = &str> {
        self.overridden.iter().map(String::as_str)
    }

    /// Renders the template `name` with `ctx`.
    /// The text of template `name`, if there is one.
    pub(crate) fn source(&self, name: &str) -> Option<String> {
        self.env
            .get_template(name)
            .ok()
            .map(|t| t.source().to_owned())
    }

    pub(crate) fn render(&self, name: &str, ctx: &Value) -> Result<String, String> {
        let template = self
            .env
            .get_template(name)
            .map_err(|e| self.describe(&e, name))?;
        template.render(ctx).map_err(|e| self.describe(&e, name))
    }

    /// Renders a template held in the configuration (a subject line);
    /// `key` names it in errors. Not autoescaped.
    pub(crate) fn render_str(
        &self,
        key: &str,
        source: &str,
        ctx: &Value,
    ) -> Result<String, String> {
        self.env
            .render_named_str(key, source, ctx)
            .map_err(|e| format!("{key}: {}", describe_error(&e)))
    }

    /// Compiles a template held in the configuration once, to render it
    /// with [`Templates::render_compiled`]; errors as [`Templates::render_str`]
    /// words them.
    pub(crate) fn compile_str<'s>(
        &'s self,
        key: &'s str,
        source: &'s str,
    ) -> Result<minijinja::Template<'s, 's>, String> {
        self.env
            .template_from_named_str(key, source)
            .map_err(|e| format!("{key}: {}", describe_error(&e)))
    }

    /// Renders a template from [`Templates::compile_str`].
    pub(crate) fn render_compiled(
        key: &str,
        template: &minijinja::Template<'_, '_>,
        ctx: &Value,
    ) -> Result<String, String> {
        template
            .render(ctx)
            .map_err(|e| format!("{key}: {}", describe_error(&e)))
    }

    /// An error located in the file a user can open.
    fn describe(&self, e: &Error, fallback: &str) -> String {
        let name = e.name().unwrap_or(fallback);
        let shown = if self.overridden.contains(name) {
            format!("{DIR}/{name}")
        } else {
            format!("{name} (built-in)")
        };
        located(e, name, &shown)
    }
}

/// `shown:line: kind: detail`.
fn located(e: &Error, name: &str, shown: &str) -> String {
    let line = match (e.name(), e.line()) {
        (Some(n), Some(line)) if n == name => format!(":{line}"),
        (None, Some(line)) => format!(":{line}"),
        _ => String::new(),
    };
    format!("{shown}{line}: {}", describe_error(e))
}

/// The syntax errors of the subject templates in `[email]`, as
/// `email.key: message` lines.
pub fn subject_problems(config: &EmailConfig) -> Vec<String> {
    config
        .subjects()
        .into_iter()
        .filter(|(_, source)| !source.trim().is_empty())
        .filter_map(|(key, source)| {
            let env = Environment::new();
            let e = env.template_from_str(source).err()?;
            Some(format!("{key}: {}", describe_error(&e)))
        })
        .collect()
}

/// `kind: detail` of a minijinja error, including its causes.
pub(crate) fn describe_error(e: &Error) -> String {
    let mut message = match e.detail() {
        Some(detail) => format!("{}: {detail}", e.kind()),
        None => e.kind().to_string(),
    };
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        message.push_str(&format!(" (caused by: {cause})"));
        source = cause.source();
    }
    message
}

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    // A misspelt variable (`{{ artcle.title }}`) is an error naming the
    // template and line, not an empty string in every subscriber's inbox.
    // `{% if x %}` on a missing value stays allowed (it is false), so
    // optional fields can still be tested for.
    env.set_undefined_behavior(UndefinedBehavior::SemiStrict);
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.add_filter("underline", underline);
    env.add_filter("wrap", wrap_filter);
    env
}

fn underline(value: &str, ch: Option<&str>) -> String {
    let ch = ch.and_then(|c| c.chars().next()).unwrap_or('=');
    let width = display_width(value) / ch.width().unwrap_or(1).max(1);
    std::iter::repeat_n(ch, width).collect()
}

fn wrap_filter(value: &str, width: Option<usize>) -> String {
    wrap(value, width.unwrap_or(76).max(20))
}

/// Greedy word wrap at `width` columns of display width (a CJK character
/// or an emoji takes two); line breaks in the input are kept, runs of
/// whitespace become one space, and words longer than a line (URLs) are
/// never split. Between spaces, a word of wide characters may break where
/// Unicode's line-breaking rules allow (between two CJK characters, say).
pub fn wrap(text: &str, width: usize) -> String {
    let options = Options::new(width)
        .word_separator(WordSeparator::Custom(words))
        .word_splitter(WordSplitter::NoHyphenation)
        .wrap_algorithm(WrapAlgorithm::FirstFit)
        .break_words(false);
    let mut out = String::with_capacity(text.len() + text.len() / width.max(1));
    for (i, line) in text.lines().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let line = line.split_whitespace().collect::<Vec<_>>().join(" ");
        for (j, part) in textwrap::wrap(&line, &options).iter().enumerate() {
            if j > 0 {
                out.push('\n');
            }
            out.push_str(part);
        }
    }
    out
}

/// The words of a line (single spaces between them): split at spaces, and
/// a word with a wide character further at Unicode line-break
/// opportunities. Words without one (Latin text, URLs) stay whole.
fn words(line: &str) -> Box<dyn Iterator<Item = Word<'_>> + '_> {
    Box::new(line.split_inclusive(' ').flat_map(|piece| {
        if piece.chars().any(|c| c.width().unwrap_or(0) > 1) {
            WordSeparator::UnicodeBreakProperties.find_words(piece)
        } else {
            Box::new(std::iter::once(Word::from(piece)))
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_subject_that_does_not_compile_is_named() {
        let config = EmailConfig {
            subject_single: "{{ article.title".into(),
            ..EmailConfig::default()
        };
        let problems = subject_problems(&config);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].starts_with("email.subject_single: syntax error: "),
            "{problems:?}"
        );
        assert!(subject_problems(&EmailConfig::default()).is_empty());
    }

    #[test]
    fn builtins_compile() {
        let t = Templates::builtin();
        assert_eq!(t.overridden().count(), 0);
    }

    #[test]
    fn syntax_errors_name_every_file_and_line() {
        let err = Templates::from_sources(vec![
            ("digest.html".into(), "<p>\n{{ site.title }\n</p>".into()),
            ("article.txt".into(), "ok\n{% if x %}\nno end".into()),
            ("article.html".into(), "fine {{ article.title }}".into()),
        ])
        .unwrap_err();
        assert_eq!(err.problems.len(), 2, "{err}");
        assert!(
            err.problems[0].starts_with("templates/digest.html:2: syntax error"),
            "{err}"
        );
        assert!(
            err.problems[1].starts_with("templates/article.txt:3: syntax error"),
            "{err}"
        );
    }

    #[test]
    fn load_reads_overrides_and_partials_from_the_site() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("templates/partials")).unwrap();
        std::fs::write(
            dir.path().join("templates/article.txt"),
            "{% include 'partials/hi.txt' %} {{ article.title }}",
        )
        .unwrap();
        std::fs::write(dir.path().join("templates/partials/hi.txt"), "Hi").unwrap();
        std::fs::write(dir.path().join("templates/.swp"), [0xff, 0xfe]).unwrap();
        let t = Templates::load(dir.path()).unwrap();
        assert_eq!(
            t.overridden().collect::<Vec<_>>(),
            ["article.txt", "partials/hi.txt"]
        );
        let ctx = minijinja::context! { article => minijinja::context! { title => "T" } };
        assert_eq!(t.render("article.txt", &ctx).unwrap(), "Hi T");

        std::fs::write(dir.path().join("templates/digest.txt"), [b'a', 0xff]).unwrap();
        let err = Templates::load(dir.path()).unwrap_err().to_string();
        assert_eq!(
            err,
            "templates/digest.txt: not UTF-8 text; save it as UTF-8"
        );
    }

    #[test]
    fn runtime_errors_name_the_template() {
        let t = Templates::from_sources(vec![(
            "article.txt".into(),
            "line one\n{{ article.title|nosuchfilter }}".into(),
        )])
        .unwrap();
        let ctx = minijinja::context! { article => minijinja::context! { title => "T" } };
        let err = t.render("article.txt", &ctx).unwrap_err();
        assert!(err.starts_with("templates/article.txt:2: "), "{err}");
        assert!(err.contains("nosuchfilter"), "{err}");
        let err = Templates::builtin()
            .render("nothing.html", &minijinja::context! {})
            .unwrap_err();
        assert!(
            err.starts_with("nothing.html (built-in): template not found"),
            "{err}"
        );
    }

    /// Regression test for a bug: undefined behaviour was minijinja's
    /// lenient default, so a misspelt variable rendered as nothing and
    /// `check` passed. Printing an unknown variable or field is now an
    /// error naming the template and line; testing one with `if` is not.
    #[test]
    fn unknown_variables_are_errors_with_template_and_line() {
        let t = Templates::from_sources(vec![(
            "article.txt".into(),
            "{{ article.title }}\n{% if article.nothing %}x{% endif %}\n{{ artcle.title }}".into(),
        )])
        .unwrap();
        let ctx = minijinja::context! { article => minijinja::context! { title => "T" } };
        let err = t.render("article.txt", &ctx).unwrap_err();
        assert!(
            err.starts_with("templates/article.txt:3: undefined value"),
            "{err}"
        );
        let t = Templates::from_sources(vec![(
            "article.txt".into(),
            "{{ article.title }}\n{{ article.subtitel }}".into(),
        )])
        .unwrap();
        let err = t.render("article.txt", &ctx).unwrap_err();
        assert!(
            err.starts_with("templates/article.txt:2: undefined value"),
            "{err}"
        );
    }

    #[test]
    fn filters() {
        assert_eq!(underline("Héllo", None), "=====");
        assert_eq!(underline("ab", Some("-")), "--");
        assert_eq!(
            wrap("one two three four\n\nfive six", 9),
            "one two\nthree\nfour\n\nfive six"
        );
        assert_eq!(
            wrap("see https://example.com/a/very/long/url ok", 10),
            "see\nhttps://example.com/a/very/long/url\nok"
        );
    }

    /// Every line of `wrapped` fits in `width` columns of display width.
    fn assert_fits(wrapped: &str, width: usize) {
        for line in wrapped.lines() {
            assert!(
                display_width(line) <= width,
                "{line:?} is {} columns wide, more than {width}\n{wrapped}",
                display_width(line)
            );
        }
    }

    /// CJK characters and most emoji take two columns; counting them as
    /// one made lines twice too wide, and CJK text without spaces never
    /// broke at all.
    #[test]
    fn wide_characters_wrap_by_display_width() {
        let japanese = "日本語のニュースレターは、一行が長すぎると読みにくくなります。幅を正しく数えましょう。";
        let wrapped = wrap(japanese, 20);
        assert_fits(&wrapped, 20);
        assert!(wrapped.lines().count() > 1, "{wrapped}");
        assert_eq!(wrapped.replace('\n', ""), japanese, "no character lost");

        let chinese = "这是一个很长的中文句子 用来测试 换行是否按照显示宽度而不是字符数量进行";
        let wrapped = wrap(chinese, 24);
        assert_fits(&wrapped, 24);
        assert_eq!(wrapped.replace(['\n', ' '], ""), chinese.replace(' ', ""));

        let emoji = "🎉🎉🎉 launch day 🚀🚀🚀🚀🚀 party 🥳🥳🥳🥳 thanks for reading 📬📬📬";
        let wrapped = wrap(emoji, 20);
        assert_fits(&wrapped, 20);
        assert_eq!(
            wrapped.split_whitespace().collect::<String>(),
            emoji.split_whitespace().collect::<String>()
        );

        // A line of Latin text with a few wide characters in it.
        let mixed = "Café menu: ラーメン and 寿司 today, with 🍣 for everyone who subscribes";
        assert_fits(&wrap(mixed, 20), 20);

        assert_eq!(underline("見出し", None), "======");
        assert_eq!(underline("ab🎉", Some("-")), "----");
    }
}
