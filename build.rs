//! Names the commit the binary is built from, for `pressroom --version`.
//!
//! Read from git in a checkout, from `.cargo_vcs_info.json` in a crate
//! that `cargo package` made, and "commit unknown" when neither is there.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let built_from = from_cargo_vcs_info(&dir)
        .or_else(|| from_git(&dir))
        .unwrap_or_else(|| "commit unknown".to_owned());
    println!("cargo:rustc-env=PRESSROOM_BUILT_FROM={built_from}");
}

/// A packaged crate has no `.git`, but cargo records the commit it was
/// packaged from.
fn from_cargo_vcs_info(dir: &Path) -> Option<String> {
    let path = dir.join(".cargo_vcs_info.json");
    let text = std::fs::read_to_string(&path).ok()?;
    println!("cargo:rerun-if-changed={}", path.display());
    let (_, after) = text.split_once("\"sha1\"")?;
    let sha1: String = after
        .trim_start_matches([' ', ':', '"', '\n', '\t'])
        .chars()
        .take_while(char::is_ascii_hexdigit)
        .collect();
    (sha1.len() >= 12).then(|| format!("commit {}", &sha1[..12]))
}

fn from_git(dir: &Path) -> Option<String> {
    let described = git(
        dir,
        &[
            "log",
            "-1",
            "--date=short",
            "--format=%h %cd",
            "--abbrev=12",
        ],
    )?;
    let (commit, date) = described.split_once(' ')?;
    // Rebuild when HEAD moves: a commit appends to the HEAD log and
    // writes the branch's ref (a loose file, or packed-refs).
    let mut watched = vec![
        "HEAD".to_owned(),
        "logs/HEAD".to_owned(),
        "packed-refs".to_owned(),
    ];
    if let Some(branch) = git(dir, &["symbolic-ref", "-q", "HEAD"]) {
        watched.push(branch);
    }
    for name in watched {
        if let Some(path) = git(
            dir,
            &["rev-parse", "--path-format=absolute", "--git-path", &name],
        ) {
            if Path::new(&path).exists() {
                println!("cargo:rerun-if-changed={path}");
            }
        }
    }
    Some(format!("commit {commit}, {date}"))
}

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let output = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .ok()?;
    let text = String::from_utf8(output.stdout).ok()?;
    let text = text.trim();
    (output.status.success() && !text.is_empty()).then(|| text.to_owned())
}
