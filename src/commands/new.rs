//! `pressroom new "Title"`: create an article file with every field of the
//! format filled in or ready to fill, dated now in the site's time zone.

use std::io::Write;

use super::{Context, Failure, Result};
use tracing::info;

use super::InputError;
use crate::cli::{Global, NewArgs};
use crate::config::is_inside;
use crate::content::Slug;
use crate::text::single_line;

pub fn run(global: &Global, args: &NewArgs) -> Result<()> {
    let config = super::load_config(&global.root)?;
    let title = single_line(&args.title);
    let slug = Slug::from_text(&title).ok_or_else(|| {
        InputError(format!(
            "`{title}` has no letters or digits to make a file name from"
        ))
    })?;
    let mut dir = global.root.join(&config.site.content_dir);
    if let Some(sub) = &args.dir {
        if !is_inside(sub) {
            return Err(InputError(format!(
                "--dir `{}` must be a folder inside content/",
                sub.display()
            ))
            .into());
        }
        dir = dir.join(sub);
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = dir.join(format!("{slug}.md"));
    let today = super::now(global)
        .with_timezone(&config.site.timezone)
        .format("%Y-%m-%d")
        .to_string();
    let text = article_template(&title, &config.site.author, &today);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => Failure::from(InputError(format!(
                "{} already exists; choose another title",
                path.display()
            ))),
            _ => Failure::from(e).wrap(format!("cannot create {}", path.display())),
        })?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    info!("created {}", path.display());
    println!("{}", path.display());
    Ok(())
}

/// A single-quoted YAML scalar.
fn quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// The text of a new article: every field of the format, the optional ones
/// ready to fill in.
pub fn article_template(title: &str, author: &str, date: &str) -> String {
    let mut fm = String::from("---\n");
    fm.push_str(&format!("title: {}\n", quote(title)));
    fm.push_str("subtitle: ''\n");
    fm.push_str("description: ''\n");
    fm.push_str(&format!("author: {}\n", quote(&single_line(author))));
    fm.push_str("# read_time: '5 mins'  (computed from the word count when absent)\n");
    fm.push_str(&format!("publish_date: '{date}'\n"));
    fm.push_str(&format!("created_date: '{date}'\n"));
    fm.push_str("# updated_date: ''\n");
    fm.push_str("heroImage: ''\n");
    fm.push_str("cta: 'Enjoyed this? Reply to this email and tell us what you think.'\n");
    fm.push_str("# slug: ''  (default: from the title)\n");
    fm.push_str("# id: ''    (default: a tag: URI that never changes)\n");
    fm.push_str("tags: []\n");
    fm.push_str("draft: true\n");
    fm.push_str("---\n\nWrite here. Set `draft: false` when it is ready to publish.\n");
    fm
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_is_a_valid_article() {
        let config = crate::config::Config::parse(
            "config.toml",
            "[site]\ntitle='T'\nbase_url='https://example.com/'\nauthor=\"O'Brien\"\n",
        )
        .unwrap();
        let text = article_template("It's: a \"test\"", "O'Brien", "2025-03-09");
        let a = crate::content::parse_article(
            &config,
            "content/x.md",
            std::path::Path::new("x.md"),
            text.as_bytes(),
        )
        .unwrap();
        assert_eq!(a.title, "It's: a \"test\"");
        assert_eq!(a.author, "O'Brien");
        assert!(a.draft);
        assert_eq!(a.subtitle, None, "empty optional fields count as absent");
    }
}
