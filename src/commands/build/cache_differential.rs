//! The differential test of the no-op check: after each of a generated
//! sequence of edits to a site, the check's verdict is set against a full
//! build. When the check says nothing changed, the full build must leave
//! every output byte as it was; right after a full build, the check must
//! say nothing changed.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime};

use chrono::{DateTime, FixedOffset};
use proptest::prelude::*;

use crate::cache::{settings_digest, BuildCache, CACHE_FILE};
use crate::cli::Global;

const CONFIG: &str = "[site]\ntitle = 'T'\nbase_url = 'https://example.com/'\nauthor = 'A'\n";

#[derive(Debug, Clone)]
enum Edit {
    /// Article `n` (of those there are) gets new text.
    Modify(usize, u8),
    /// The same, with the same size and modification time as before.
    ModifyInPlace(usize),
    /// A new article, in folder `folder`, or in a folder of its own.
    Add {
        folder: u8,
        bundle: bool,
    },
    Delete(usize),
    /// Article `n` moved to folder `folder`, or renamed beside itself.
    Rename(usize, Option<u8>),
    /// A new modification time, the same bytes.
    Touch(usize),
    /// Article `n` scheduled after the build's `now`, or made a draft.
    Schedule(usize),
    Draft(usize),
    /// Article `n` broken (no publish date): the build fails.
    Break(usize),
    Template(bool),
    Config(bool),
    /// A file that is no article, added or changed in a folder.
    OtherFile(u8),
    /// The build's clock moved on by this many days.
    Later(u8),
    DeleteOutput,
    ChangeOutput,
    Nothing,
}

fn edit() -> impl Strategy<Value = Edit> {
    let n = 0..64usize;
    prop_oneof![
        4 => (n.clone(), any::<u8>()).prop_map(|(n, v)| Edit::Modify(n, v)),
        2 => n.clone().prop_map(Edit::ModifyInPlace),
        3 => (0..4u8, any::<bool>()).prop_map(|(folder, bundle)| Edit::Add { folder, bundle }),
        2 => n.clone().prop_map(Edit::Delete),
        2 => (n.clone(), proptest::option::of(0..4u8)).prop_map(|(n, f)| Edit::Rename(n, f)),
        2 => n.clone().prop_map(Edit::Touch),
        1 => n.clone().prop_map(Edit::Schedule),
        1 => n.clone().prop_map(Edit::Draft),
        1 => n.prop_map(Edit::Break),
        1 => any::<bool>().prop_map(Edit::Template),
        1 => any::<bool>().prop_map(Edit::Config),
        1 => (0..4u8).prop_map(Edit::OtherFile),
        1 => (1..90u8).prop_map(Edit::Later),
        1 => Just(Edit::DeleteOutput),
        1 => Just(Edit::ChangeOutput),
        2 => Just(Edit::Nothing),
    ]
}

struct Site {
    dir: tempfile::TempDir,
    now: DateTime<FixedOffset>,
    /// The article files, relative to the root.
    articles: Vec<String>,
    next: usize,
}

fn article(title: &str, date: &str, extra: &str) -> String {
    format!(
        "---\ntitle: '{title}'\npublish_date: '{date}'\ntags: [t{}]\n{extra}---\n\nBody of *{title}*.\n",
        title.len() % 3
    )
}

impl Site {
    fn new() -> Site {
        let mut site = Site {
            dir: tempfile::tempdir().unwrap(),
            now: DateTime::parse_from_rfc3339("2025-03-01T00:00:00Z").unwrap(),
            articles: Vec::new(),
            next: 0,
        };
        site.write("config.toml", CONFIG);
        site.write("templates/article.txt", "{{ title }}");
        for folder in 0..3 {
            site.add(folder, folder == 2);
        }
        site
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn write(&self, relative: &str, text: &str) {
        let path = self.root().join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    fn add(&mut self, folder: u8, bundle: bool) {
        let n = self.next;
        self.next += 1;
        let path = if bundle {
            format!("content/f{folder}/post-{n}/index.md")
        } else {
            format!("content/f{folder}/post-{n}.md")
        };
        self.write(&path, &article(&format!("Post {n}"), "2025-02-01", ""));
        self.articles.push(path);
    }

    fn pick(&self, n: usize) -> Option<String> {
        (!self.articles.is_empty()).then(|| self.articles[n % self.articles.len()].clone())
    }

    fn apply(&mut self, edit: &Edit) {
        let root = self.root().to_path_buf();
        let path = |relative: &str| root.join(relative);
        match *edit {
            Edit::Modify(n, v) => {
                if let Some(a) = self.pick(n) {
                    let date = format!("2025-02-{:02}", 1 + v % 27);
                    self.write(&a, &article(&format!("Changed {v}"), &date, ""));
                }
            }
            Edit::ModifyInPlace(n) => {
                if let Some(a) = self.pick(n) {
                    let text = std::fs::read_to_string(path(&a)).unwrap();
                    let modified = std::fs::metadata(path(&a)).unwrap().modified().unwrap();
                    let changed = text.replacen("Body", "Bodx", 1);
                    std::fs::write(path(&a), changed).unwrap();
                    let file = std::fs::File::options().write(true).open(path(&a)).unwrap();
                    file.set_modified(modified).unwrap();
                }
            }
            Edit::Add { folder, bundle } => self.add(folder, bundle),
            Edit::Delete(n) => {
                if let Some(a) = self.pick(n) {
                    std::fs::remove_file(path(&a)).unwrap();
                    self.articles.retain(|x| *x != a);
                }
            }
            Edit::Rename(n, folder) => {
                if let Some(a) = self.pick(n) {
                    let name = format!("renamed-{}.md", self.next);
                    self.next += 1;
                    let to = match folder {
                        Some(f) => format!("content/f{f}/{name}"),
                        None => format!("{}/{name}", Path::new(&a).parent().unwrap().display()),
                    };
                    std::fs::create_dir_all(path(&to).parent().unwrap()).unwrap();
                    std::fs::rename(path(&a), path(&to)).unwrap();
                    self.articles.retain(|x| *x != a);
                    self.articles.push(to);
                }
            }
            Edit::Touch(n) => {
                if let Some(a) = self.pick(n) {
                    let file = std::fs::File::options().write(true).open(path(&a)).unwrap();
                    file.set_modified(SystemTime::now()).unwrap();
                }
            }
            Edit::Schedule(n) => {
                if let Some(a) = self.pick(n) {
                    self.write(&a, &article("Scheduled", "2025-05-01", ""));
                }
            }
            Edit::Draft(n) => {
                if let Some(a) = self.pick(n) {
                    self.write(&a, &article("Draft", "2025-02-02", "draft: true\n"));
                }
            }
            Edit::Break(n) => {
                if let Some(a) = self.pick(n) {
                    self.write(&a, "---\ntitle: 'No date'\n---\nBody\n");
                }
            }
            Edit::Template(change) => {
                let text = if change {
                    "{{ title }}!"
                } else {
                    "{{ title }}"
                };
                self.write("templates/article.txt", text);
            }
            Edit::Config(change) => {
                let text = if change {
                    CONFIG.replace("'T'", "'Another title'")
                } else {
                    CONFIG.to_owned()
                };
                self.write("config.toml", &text);
            }
            Edit::OtherFile(folder) => {
                self.write(
                    &format!("content/f{folder}/image.png"),
                    &format!("{:?}", SystemTime::now()),
                );
            }
            Edit::Later(days) => self.now += chrono::Duration::days(i64::from(days)),
            Edit::DeleteOutput => {
                let _ = std::fs::remove_file(path("public/atom.xml"));
            }
            Edit::ChangeOutput => {
                if path("public/rss.xml").exists() {
                    self.write("public/rss.xml", "<rss/>");
                }
            }
            Edit::Nothing => {}
        }
    }

    fn global(&self) -> Global {
        Global {
            root: self.root().to_path_buf(),
            now: Some(self.now),
            quiet: true,
            verbose: 0,
        }
    }

    /// Whether a build now would stop as a no-op (as `build` decides).
    fn no_op(&self) -> bool {
        let root = self.root();
        let settings = settings_digest(root);
        crate::commands::load_config(root).is_ok()
            && BuildCache::load(root)
                .zip(settings)
                .is_some_and(|(cache, settings)| cache.is_fresh(root, &settings, self.now))
    }

    /// A full build, the cache set aside (and put back when the build
    /// fails, as a failed build leaves it). Every stamp counts as
    /// settled: the test waits a clock tick before each edit instead.
    fn full_build(&self) -> bool {
        let cache = self.root().join(CACHE_FILE);
        let saved = std::fs::read(&cache).ok();
        let _ = std::fs::remove_file(&cache);
        let later = SystemTime::now() + Duration::from_secs(60);
        let built = super::run_started(&self.global(), later).is_ok();
        if let (false, Some(saved)) = (built, saved) {
            std::fs::write(&cache, saved).unwrap();
        }
        built
    }

    /// Every file under public/, with its bytes.
    fn outputs(&self) -> BTreeMap<String, Vec<u8>> {
        let public = self.root().join("public");
        walkdir::WalkDir::new(&public)
            .into_iter()
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_file())
            .map(|e| {
                let relative = e.path().strip_prefix(&public).unwrap();
                (
                    relative.display().to_string(),
                    std::fs::read(e.path()).unwrap(),
                )
            })
            .collect()
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn the_no_op_verdict_matches_a_full_build(edits in proptest::collection::vec(edit(), 1..14)) {
        let mut site = Site::new();
        prop_assert!(site.full_build());
        prop_assert!(site.no_op(), "no no-op right after the first build");
        for (step, edit) in edits.iter().enumerate() {
            // Past the clock tick of the last build's stamps, as the
            // build's two-second rule ensures outside tests.
            std::thread::sleep(Duration::from_millis(20));
            site.apply(edit);
            let no_op = site.no_op();
            let kept = site.outputs();
            let built = site.full_build();
            if no_op {
                prop_assert!(built, "step {step} ({edit:?}): a no-op where the build fails");
                let rebuilt = site.outputs();
                prop_assert!(
                    kept == rebuilt,
                    "step {step} ({edit:?}): a no-op would keep {:?}, a build writes {:?}",
                    kept.keys().collect::<Vec<_>>(),
                    rebuilt.keys().collect::<Vec<_>>()
                );
            }
            if built {
                prop_assert!(site.no_op(), "step {step} ({edit:?}): no no-op right after a build");
            }
        }
    }
}
