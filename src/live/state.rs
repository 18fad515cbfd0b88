//! The site a live preview keeps in memory between saves: the
//! configuration, every article file's parsed article (or its problems),
//! and the templates. A batch of changed paths re-reads only what they
//! touch: one article file re-reads that file, a template re-reads the
//! templates, `config.toml` re-reads everything (it decides every URL and
//! id). The assembled site is the one [`Site::load`] would give, problems
//! included (a differential test below holds the two together).

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rayon::prelude::*;

use crate::config::{Config, CONFIG_FILE};
use crate::content::{self, Article, Problem, Site};
use crate::email::Templates;

/// One article file as last read.
type Parsed = Result<Article, Vec<Problem>>;

/// What is run on every site assembled (the preview's placeholder
/// sender); its error is shown as a problem.
pub type Prepare = Box<dyn Fn(&mut Site) -> Result<(), String> + Send + Sync>;

/// What a batch of changes did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Whether anything the preview shows may differ: false when every
    /// path was outside the watched files.
    pub changed: bool,
    /// The article files read again, in file order.
    pub reread: Vec<PathBuf>,
    /// Whether the templates were read again.
    pub templates: bool,
    /// Whether config.toml was read again (and with it every article).
    pub config: bool,
}

/// The site's files as last read.
pub struct Workspace {
    root: PathBuf,
    config: Result<Config, String>,
    /// The article files in the order a load reads them, and what each
    /// holds.
    order: Vec<PathBuf>,
    files: HashMap<PathBuf, Parsed>,
    /// Problems met listing the content folder.
    walk_problems: Vec<Problem>,
    templates: Result<Arc<Templates>, String>,
    /// The site made of the above, or every problem, one per line.
    site: Result<Arc<Site>, String>,
    /// Run on every site assembled (the preview's placeholder sender).
    prepare: Prepare,
}

impl Workspace {
    /// Reads everything under `root`. Never fails: problems are kept and
    /// shown until a later change fixes them.
    pub fn load(root: &Path, prepare: Prepare) -> Workspace {
        let mut workspace = Workspace {
            root: root.to_path_buf(),
            config: Err(String::new()),
            order: Vec::new(),
            files: HashMap::new(),
            walk_problems: Vec::new(),
            templates: Err(String::new()),
            site: Err(String::new()),
            prepare,
        };
        workspace.reload_config();
        workspace.reload_templates();
        workspace.assemble();
        workspace
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The configuration, when config.toml is valid.
    pub fn config(&self) -> Option<&Config> {
        self.config.as_ref().ok()
    }

    /// The site, or the problems that stop it from loading (the lines
    /// `pressroom preview` prints).
    pub fn site(&self) -> Result<Arc<Site>, String> {
        self.site.clone()
    }

    /// The templates, or their problems.
    pub fn templates(&self) -> Result<Arc<Templates>, String> {
        self.templates.clone()
    }

    /// The content folder, when the configuration names one.
    fn content_dir(&self) -> Option<PathBuf> {
        self.config
            .as_ref()
            .ok()
            .map(|c| self.root.join(&c.site.content_dir))
    }

    /// The subscriber list's path, when the configuration names one.
    pub fn subscribers(&self) -> Option<PathBuf> {
        self.config
            .as_ref()
            .ok()
            .map(|c| self.root.join(&c.send.subscribers))
    }

    /// Folders to watch recursively (those that exist): the content
    /// folder and the templates folder. The root itself is watched
    /// without its subfolders.
    pub fn folders(&self) -> Vec<PathBuf> {
        folders(&self.root, self.content_dir())
    }

    /// [`Workspace::folders`] before a workspace is loaded (so that the
    /// watcher is watching before the files are read).
    pub fn folders_of(root: &Path) -> Vec<PathBuf> {
        let content = read_config(root)
            .ok()
            .map(|c| root.join(&c.site.content_dir));
        folders(root, content)
    }

    /// Applies a batch of changed paths (created, written, removed or
    /// renamed, as the watcher reports them).
    pub fn apply(&mut self, paths: &[PathBuf]) -> Outcome {
        let mut outcome = Outcome::default();
        let config_file = self.root.join(CONFIG_FILE);
        let templates_dir = self.root.join(crate::email::templates::DIR);
        let content_dir = self.content_dir();
        let subscribers = self.subscribers();
        let mut content: BTreeSet<PathBuf> = BTreeSet::new();
        let mut content_touched = false;
        for path in paths {
            if *path == config_file {
                outcome.config = true;
            } else if path.starts_with(&templates_dir) {
                outcome.templates = true;
            } else if content_dir.as_ref().is_some_and(|c| path.starts_with(c)) {
                content_touched = true;
                if !is_hidden_below(path, content_dir.as_deref()) {
                    content.insert(path.clone());
                }
            } else if subscribers.as_ref() == Some(path) {
                // Read by every render: nothing to keep.
                outcome.changed = true;
            }
        }
        if outcome.config {
            outcome.changed = true;
            outcome.reread = self.reload_config();
        } else if content_touched {
            outcome.changed = true;
            outcome.reread = self.rescan(&content);
        }
        if outcome.templates {
            outcome.changed = true;
            self.reload_templates();
        }
        if outcome.config || content_touched {
            self.assemble();
        }
        outcome
    }

    /// Reads config.toml, then every article (the configuration decides
    /// their URLs and ids). Returns the files read.
    fn reload_config(&mut self) -> Vec<PathBuf> {
        self.config = read_config(&self.root);
        self.files.clear();
        self.order.clear();
        self.walk_problems.clear();
        let Ok(config) = &self.config else {
            return Vec::new();
        };
        let found = content::find_articles(&self.root, &self.root.join(&config.site.content_dir));
        let loaded: Vec<(PathBuf, Parsed)> = found
            .files
            .par_iter()
            .map(|path| (path.clone(), content::load_file(&self.root, config, path)))
            .collect();
        self.walk_problems = found.problems;
        self.order = found.files;
        self.files = loaded.into_iter().collect();
        self.order.clone()
    }

    /// Lists the content folder again and reads the files that are new
    /// or among `changed`; forgets the files that are gone. Returns the
    /// files read.
    fn rescan(&mut self, changed: &BTreeSet<PathBuf>) -> Vec<PathBuf> {
        let Ok(config) = &self.config else {
            return Vec::new();
        };
        let found = content::find_articles(&self.root, &self.root.join(&config.site.content_dir));
        let wanted: Vec<&PathBuf> = found
            .files
            .iter()
            .filter(|path| changed.contains(*path) || !self.files.contains_key(*path))
            .collect();
        let loaded: Vec<(PathBuf, Parsed)> = wanted
            .par_iter()
            .map(|path| {
                (
                    (*path).clone(),
                    content::load_file(&self.root, config, path),
                )
            })
            .collect();
        let kept: BTreeSet<&PathBuf> = found.files.iter().collect();
        self.files.retain(|path, _| kept.contains(path));
        let reread = loaded.iter().map(|(path, _)| path.clone()).collect();
        self.files.extend(loaded);
        self.walk_problems = found.problems;
        self.order = found.files;
        reread
    }

    fn reload_templates(&mut self) {
        self.templates = Templates::load(&self.root)
            .map(Arc::new)
            .map_err(|e| e.to_string());
    }

    /// Makes the site from the articles kept, as [`Site::load`] makes it.
    fn assemble(&mut self) {
        let config = match &self.config {
            Ok(config) => config.clone(),
            Err(e) => {
                self.site = Err(e.clone());
                return;
            }
        };
        let mut problems = self.walk_problems.clone();
        let mut articles = Vec::with_capacity(self.order.len());
        for path in &self.order {
            match self.files.get(path) {
                Some(Ok(article)) => articles.push(article.clone()),
                Some(Err(p)) => problems.extend(p.iter().cloned()),
                None => {}
            }
        }
        self.site = Site::from_articles(config, articles, problems)
            .map_err(|e| e.to_string())
            .and_then(|mut site| {
                (self.prepare)(&mut site)?;
                Ok(Arc::new(site))
            });
    }
}

fn folders(root: &Path, content_dir: Option<PathBuf>) -> Vec<PathBuf> {
    let mut folders: Vec<PathBuf> = content_dir.into_iter().collect();
    folders.push(root.join(crate::email::templates::DIR));
    folders.retain(|f| f.is_dir());
    folders
}

/// A name starting with `.` at or below the content folder (editors'
/// swap and backup files): a load skips them.
fn is_hidden_below(path: &Path, content_dir: Option<&Path>) -> bool {
    let inside = content_dir.and_then(|c| path.strip_prefix(c).ok());
    inside.is_some_and(|p| {
        p.components()
            .any(|c| c.as_os_str().as_encoded_bytes().starts_with(b"."))
    })
}

/// Reads and parses `root/config.toml`, with the messages `pressroom`
/// prints for it.
fn read_config(root: &Path) -> Result<Config, String> {
    let path = root.join(CONFIG_FILE);
    if !path.is_file() {
        return Err(format!(
            "{}: no such file; run `pressroom init` to create a site, or pass --root DIR",
            path.display()
        ));
    }
    let text = crate::fs::read_to_string(&path).map_err(|e| e.to_string())?;
    Config::parse(&content::display_path(root, &path), &text).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str =
        "[site]\ntitle = 'Live'\nbase_url = 'https://example.com/'\nauthor = 'A'\n";

    fn article(title: &str, date: &str) -> String {
        format!("---\ntitle: '{title}'\npublish_date: '{date}'\n---\n\nBody of {title}.\n")
    }

    fn site_dir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.toml"), CONFIG).unwrap();
        std::fs::create_dir_all(dir.path().join("content/2025")).unwrap();
        for (name, title, date) in [
            ("content/a.md", "Alpha", "2025-01-01"),
            ("content/b.md", "Beta", "2025-02-01"),
            ("content/2025/c.md", "Gamma", "2025-03-01"),
        ] {
            std::fs::write(dir.path().join(name), article(title, date)).unwrap();
        }
        dir
    }

    fn workspace(root: &Path) -> Workspace {
        Workspace::load(root, Box::new(|_| Ok(())))
    }

    /// What a fresh full load gives, in a form two sites can be compared
    /// by: every article field, or every problem.
    fn fresh(root: &Path) -> String {
        let config = read_config(root).unwrap();
        match Site::load(root, config) {
            Ok(site) => format!("{:?}", site.articles),
            Err(e) => e.to_string(),
        }
    }

    fn kept(workspace: &Workspace) -> String {
        match workspace.site() {
            Ok(site) => format!("{:?}", site.articles),
            Err(e) => e,
        }
    }

    fn titles(workspace: &Workspace) -> Vec<String> {
        workspace
            .site()
            .unwrap()
            .articles
            .iter()
            .map(|a| a.title.clone())
            .collect()
    }

    #[test]
    fn a_changed_article_is_the_only_file_read_again() {
        let dir = site_dir();
        let root = dir.path();
        let mut ws = workspace(root);
        assert_eq!(titles(&ws), ["Gamma", "Beta", "Alpha"]);
        let a = root.join("content/a.md");
        std::fs::write(&a, article("Alpha, edited", "2025-01-01")).unwrap();
        // b.md changes on disk too, but the batch does not name it: a
        // load that read it again would show the new title.
        std::fs::write(
            root.join("content/b.md"),
            article("Beta, unseen", "2025-02-01"),
        )
        .unwrap();
        let outcome = ws.apply(std::slice::from_ref(&a));
        assert_eq!(outcome.reread, vec![a]);
        assert!(outcome.changed && !outcome.config && !outcome.templates);
        assert_eq!(titles(&ws), ["Gamma", "Beta", "Alpha, edited"]);
    }

    #[test]
    fn added_deleted_and_broken_articles_end_as_a_fresh_load_does() {
        let dir = site_dir();
        let root = dir.path();
        let mut ws = workspace(root);
        assert_eq!(kept(&ws), fresh(root));

        // Added in a new folder, and one deleted, in one batch.
        std::fs::create_dir_all(root.join("content/new")).unwrap();
        let d = root.join("content/new/d.md");
        std::fs::write(&d, article("Delta", "2025-04-01")).unwrap();
        let b = root.join("content/b.md");
        std::fs::remove_file(&b).unwrap();
        let outcome = ws.apply(&[root.join("content/new"), d.clone(), b.clone()]);
        assert_eq!(outcome.reread, vec![d.clone()]);
        assert_eq!(titles(&ws), ["Delta", "Gamma", "Alpha"]);
        assert_eq!(kept(&ws), fresh(root));

        // Saved half-written: empty, then a broken front matter; both are
        // problems with their file and line, as a full load reports them.
        std::fs::write(&d, "").unwrap();
        ws.apply(std::slice::from_ref(&d));
        assert!(kept(&ws).starts_with("content/new/d.md"), "{}", kept(&ws));
        assert_eq!(kept(&ws), fresh(root));
        std::fs::write(
            &d,
            "---\ntitle: [unclosed\npublish_date: '2025-04-01'\n---\n",
        )
        .unwrap();
        ws.apply(std::slice::from_ref(&d));
        assert!(kept(&ws).starts_with("content/new/d.md:"), "{}", kept(&ws));
        assert_eq!(kept(&ws), fresh(root));

        // A second file with the same slug: the duplicate is found across
        // a file read now and one kept from before.
        let dup = root.join("content/z.md");
        std::fs::write(&dup, article("Alpha", "2025-05-01")).unwrap();
        ws.apply(std::slice::from_ref(&dup));
        assert!(kept(&ws).contains("is also the slug of"), "{}", kept(&ws));
        assert_eq!(kept(&ws), fresh(root));

        // Fixed: the site is whole again.
        std::fs::remove_file(&dup).unwrap();
        std::fs::write(&d, article("Delta, fixed", "2025-04-01")).unwrap();
        ws.apply(&[dup, d]);
        assert_eq!(titles(&ws), ["Delta, fixed", "Gamma", "Alpha"]);
        assert_eq!(kept(&ws), fresh(root));

        // A hidden editor file and a file outside the watched set change
        // nothing and read nothing.
        let swap = root.join("content/.a.md.swp");
        std::fs::write(&swap, "x").unwrap();
        let outcome = ws.apply(&[swap]);
        assert!(outcome.reread.is_empty());
        let outcome = ws.apply(&[root.join("public/rss.xml")]);
        assert_eq!(outcome, Outcome::default());
    }

    #[test]
    fn a_config_change_reads_everything_and_a_broken_config_recovers() {
        let dir = site_dir();
        let root = dir.path();
        let mut ws = workspace(root);
        let config = root.join("config.toml");
        std::fs::write(&config, "[site]\ntitle = 'Live'\nbase_url = 'not a url'\n").unwrap();
        let outcome = ws.apply(std::slice::from_ref(&config));
        assert!(outcome.config && outcome.reread.is_empty());
        let error = ws.site().unwrap_err();
        assert!(error.starts_with("config.toml"), "{error}");

        std::fs::write(
            &config,
            CONFIG.replace("https://example.com/", "https://other.example/"),
        )
        .unwrap();
        let outcome = ws.apply(std::slice::from_ref(&config));
        assert_eq!(outcome.reread.len(), 3);
        let site = ws.site().unwrap();
        assert!(site.articles[0]
            .url
            .as_str()
            .starts_with("https://other.example/"));
        assert_eq!(kept(&ws), fresh(root));
    }

    #[test]
    fn a_template_change_reads_the_templates_and_no_article() {
        let dir = site_dir();
        let root = dir.path();
        let mut ws = workspace(root);
        std::fs::create_dir_all(root.join("templates")).unwrap();
        let t = root.join("templates/digest.html");
        std::fs::write(&t, "{% if %}").unwrap();
        let outcome = ws.apply(std::slice::from_ref(&t));
        assert!(outcome.templates && outcome.reread.is_empty());
        let error = ws.templates().unwrap_err();
        assert!(error.starts_with("templates/digest.html:1:"), "{error}");
        std::fs::remove_file(&t).unwrap();
        ws.apply(&[t]);
        assert!(ws.templates().is_ok());
    }
}
