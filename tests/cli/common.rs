//! Shared helpers: copy a site into a temporary folder, run the real binary
//! on it, read and snapshot what it wrote, and find the external tools the
//! tests rely on (failing loudly, never skipping, when one is missing).

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

/// The fixed "current time" of every run: the sample site's 2030 article is
/// scheduled and everything dated up to late November 2026 is published.
pub const NOW: &str = "2026-11-29T12:00:00Z";

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_pressroom");

/// The repository root (holds the sample site's config.toml and content/).
pub const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// Debian's Python, which has python3-feedparser (the `python3` on PATH may
/// be another interpreter without it).
pub const PYTHON: &str = "/usr/bin/python3";

/// A site copied into its own temporary folder, removed when dropped.
pub struct TestSite {
    dir: tempfile::TempDir,
}

impl TestSite {
    /// The repository's sample site: config.toml and content/ only (never
    /// a public/ folder left over from a manual build).
    pub fn sample() -> TestSite {
        let site = TestSite::empty();
        let repo = Path::new(REPO);
        std::fs::copy(repo.join("config.toml"), site.path("config.toml"))
            .unwrap_or_else(|e| panic!("cannot copy the sample config.toml: {e}"));
        copy_dir(&repo.join("content"), &site.path("content"));
        site
    }

    /// A fixture site from `tests/fixtures/NAME` (config.toml + content/).
    pub fn fixture(name: &str) -> TestSite {
        let from = Path::new(REPO).join("tests/fixtures").join(name);
        assert!(
            from.join("config.toml").is_file(),
            "fixture {} has no config.toml",
            from.display()
        );
        let site = TestSite::empty();
        copy_dir(&from, site.root());
        site
    }

    /// An empty temporary folder.
    pub fn empty() -> TestSite {
        TestSite {
            dir: tempfile::Builder::new()
                .prefix("pressroom-test-")
                .tempdir()
                .expect("cannot create a temporary folder"),
        }
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// A path inside the site.
    pub fn path(&self, relative: &str) -> PathBuf {
        self.root().join(relative)
    }

    /// The output folder (the fixtures and the sample site use `public`).
    pub fn public(&self) -> PathBuf {
        self.path("public")
    }

    /// Runs `pressroom --root SITE --now NOW ARGS…`.
    pub fn run(&self, args: &[&str]) -> Run {
        let mut all: Vec<&OsStr> = vec![
            OsStr::new("--root"),
            self.root().as_os_str(),
            OsStr::new("--now"),
            OsStr::new(NOW),
        ];
        all.extend(args.iter().map(OsStr::new));
        pressroom(&all)
    }

    /// Runs `build` and insists that it succeeds.
    pub fn build(&self) -> Run {
        let run = self.run(&["build"]);
        run.assert_code(0);
        run
    }

    /// Reads a UTF-8 file of the site.
    pub fn read(&self, relative: &str) -> String {
        read(&self.path(relative))
    }

    /// Writes a file of the site, creating folders as needed.
    pub fn write(&self, relative: &str, bytes: impl AsRef<[u8]>) {
        let path = self.path(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("cannot create a folder");
        }
        std::fs::write(&path, bytes)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    }

    /// Every file under public/ with its bytes and modification time.
    pub fn snapshot_public(&self) -> Snapshot {
        snapshot(&self.public())
    }

    /// Every file under public/ with a name ending in `suffix`, sorted.
    pub fn public_files(&self, suffix: &str) -> Vec<PathBuf> {
        files_under(&self.public())
            .into_iter()
            .filter(|p| p.to_string_lossy().ends_with(suffix))
            .collect()
    }
}

/// What one run of the binary did.
pub struct Run {
    pub args: Vec<String>,
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Panics, showing the whole run, unless it exited with `code`.
    pub fn assert_code(&self, code: i32) -> &Run {
        assert_eq!(self.code, code, "unexpected exit status\n{self}");
        self
    }

    /// The lines of stderr.
    pub fn stderr_lines(&self) -> Vec<&str> {
        self.stderr.lines().collect()
    }
}

impl fmt::Display for Run {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "$ pressroom {}", self.args.join(" "))?;
        writeln!(f, "exit status: {}", self.code)?;
        writeln!(f, "--- stdout ---\n{}", self.stdout)?;
        write!(f, "--- stderr ---\n{}", self.stderr)
    }
}

/// Runs the binary with exactly these arguments (from the system's
/// temporary folder, so nothing depends on the current directory).
pub fn pressroom<S: AsRef<OsStr>>(args: &[S]) -> Run {
    pressroom_in(&std::env::temp_dir(), args)
}

/// Runs the binary with these arguments in the folder `cwd`.
pub fn pressroom_in<S: AsRef<OsStr>>(cwd: &Path, args: &[S]) -> Run {
    let output = Command::new(BIN)
        .args(args)
        .current_dir(cwd)
        .env_remove("PRESSROOM_LOG")
        .env("NO_COLOR", "1")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {BIN}: {e}"));
    Run {
        args: args
            .iter()
            .map(|a| a.as_ref().to_string_lossy().into_owned())
            .collect(),
        // A signal is not an exit code; -1 never matches an expected one.
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Copies a folder recursively (files and folders only).
pub fn copy_dir(from: &Path, to: &Path) {
    for entry in walkdir::WalkDir::new(from) {
        let entry = entry.unwrap_or_else(|e| panic!("cannot walk {}: {e}", from.display()));
        let relative = entry.path().strip_prefix(from).expect("inside the walk");
        let target = to.join(relative);
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&target)
                .unwrap_or_else(|e| panic!("cannot create {}: {e}", target.display()));
        } else {
            std::fs::copy(entry.path(), &target).unwrap_or_else(|e| {
                panic!(
                    "cannot copy {} to {}: {e}",
                    entry.path().display(),
                    target.display()
                )
            });
        }
    }
}

/// Reads a UTF-8 file, naming it if that fails.
pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Every file under `dir`, sorted (none if `dir` does not exist).
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    if !dir.exists() {
        return Vec::new();
    }
    let mut files: Vec<PathBuf> = walkdir::WalkDir::new(dir)
        .into_iter()
        .map(|e| e.unwrap_or_else(|e| panic!("cannot walk {}: {e}", dir.display())))
        .filter(|e| e.file_type().is_file())
        .map(|e| e.into_path())
        .collect();
    files.sort();
    files
}

/// One file's state in a [`Snapshot`].
#[derive(Clone, PartialEq, Eq)]
pub struct FileState {
    pub bytes: Vec<u8>,
    pub modified: SystemTime,
}

/// Files under a folder by relative path (with `/`).
pub type Snapshot = BTreeMap<String, FileState>;

/// Reads every file under `dir` with its modification time (nanosecond
/// resolution on the file systems the tests run on).
pub fn snapshot(dir: &Path) -> Snapshot {
    files_under(dir)
        .into_iter()
        .map(|path| {
            let relative = path
                .strip_prefix(dir)
                .expect("inside the folder")
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            let bytes = std::fs::read(&path)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
            let modified = std::fs::metadata(&path)
                .and_then(|m| m.modified())
                .unwrap_or_else(|e| panic!("cannot stat {}: {e}", path.display()));
            (relative, FileState { bytes, modified })
        })
        .collect()
}

/// Every difference between two snapshots, one line each; empty when they
/// are the same files with the same bytes and modification times.
pub fn snapshot_differences(before: &Snapshot, after: &Snapshot) -> Vec<String> {
    let mut out = Vec::new();
    for (path, old) in before {
        match after.get(path) {
            None => out.push(format!("{path}: removed")),
            Some(new) => {
                if new.bytes != old.bytes {
                    out.push(format!("{path}: bytes changed"));
                }
                if new.modified != old.modified {
                    out.push(format!(
                        "{path}: modification time changed ({:?} -> {:?})",
                        old.modified, new.modified
                    ));
                }
            }
        }
    }
    for path in after.keys().filter(|p| !before.contains_key(*p)) {
        out.push(format!("{path}: added"));
    }
    out
}

/// An external program the tests need; panics with what to install when
/// it is missing (a test that cannot run must fail, never pass silently).
pub fn require_tool(name: &str, package: &str) -> PathBuf {
    let found = if name.contains('/') {
        Some(PathBuf::from(name)).filter(|p| p.is_file())
    } else {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join(name))
                .find(|p| p.is_file())
        })
    };
    found.unwrap_or_else(|| {
        panic!(
            "`{name}` is not installed; these tests need it. Install the Debian package \
             `{package}` (apt-get install {package}, as .ci/run does)"
        )
    })
}

/// Debian's python3, checked to have feedparser.
pub fn python_with_feedparser() -> PathBuf {
    let python = require_tool(PYTHON, "python3-feedparser");
    let probe = Command::new(&python)
        .args(["-c", "import feedparser"])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {PYTHON}: {e}"));
    assert!(
        probe.status.success(),
        "{PYTHON} cannot import feedparser; install the Debian package python3-feedparser\n{}",
        String::from_utf8_lossy(&probe.stderr)
    );
    python
}

/// Runs a program to completion and returns its stdout, panicking with its
/// stderr when it fails.
pub fn run_tool(command: &mut Command) -> String {
    let shown = format!("{command:?}");
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {shown}: {e}"));
    assert!(
        output.status.success(),
        "{shown} failed with {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap_or_else(|e| panic!("{shown} printed non-UTF-8: {e}"))
}

/// A path relative to `base`, with `/` separators.
pub fn relative(base: &Path, path: &Path) -> String {
    path.strip_prefix(base)
        .unwrap_or(path)
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}
