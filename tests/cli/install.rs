//! What an installed pressroom carries besides the binary: `--version`
//! naming the commit it was built from, and the man pages and shell
//! completions `pressroom generate` makes, read by the real `man` and
//! `bash`. (`.ci/package` checks the same files inside the Debian package.)

use std::process::Command;

use crate::common::{pressroom, run_tool, TestSite, REPO};

/// The subcommands `pressroom --help` lists (`help` aside).
fn subcommands() -> Vec<String> {
    let help = pressroom(&["--help"]);
    help.assert_code(0);
    help.stdout
        .lines()
        .skip_while(|line| !line.starts_with("Commands:"))
        .skip(1)
        .take_while(|line| !line.trim().is_empty())
        .filter(|line| !line.starts_with("   "))
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_owned)
        .collect()
}

#[test]
fn version_names_the_commit_it_was_built_from() {
    let commit = run_tool(Command::new("git").args([
        "-C",
        REPO,
        "log",
        "-1",
        "--format=%h %cd",
        "--date=short",
        "--abbrev=12",
    ]));
    let (hash, date) = commit
        .trim()
        .split_once(' ')
        .expect("git printed a hash and a date");
    let run = pressroom(&["--version"]);
    run.assert_code(0);
    assert_eq!(
        run.stdout.trim(),
        format!(
            "pressroom {} (commit {hash}, {date})",
            env!("CARGO_PKG_VERSION")
        ),
        "{run}"
    );
}

#[test]
fn man_pages_cover_every_command_and_render() {
    let out = TestSite::empty();
    let dir = out.path("man1");
    pressroom(&["generate", "man", dir.to_str().expect("UTF-8 temp path")]).assert_code(0);
    let commands = subcommands();
    assert!(commands.iter().any(|c| c == "send"), "{commands:?}");
    for command in &commands {
        let page = dir.join(format!("pressroom-{command}.1"));
        // man-db's own renderer: a page that groff cannot read fails here.
        let text = run_tool(
            Command::new("man")
                .arg("-l")
                .arg(&page)
                .env("MANWIDTH", "200")
                .env("MAN_KEEP_FORMATTING", ""),
        );
        let text: String = text.chars().filter(|c| *c != '\u{8}').collect();
        assert!(
            text.contains(&format!("pressroom-{command} -")),
            "{}:\n{text}",
            page.display()
        );
        assert!(text.contains("OPTIONS"), "{}:\n{text}", page.display());
    }
    let main = run_tool(
        Command::new("man")
            .arg("-l")
            .arg(dir.join("pressroom.1"))
            .env("MANWIDTH", "200"),
    );
    for section in [
        "SYNOPSIS",
        "SUBCOMMANDS",
        "ENVIRONMENT",
        "PRESSROOM_SMTP_PASSWORD",
        "EXIT STATUS",
        "pressroom-send(1)",
    ] {
        assert!(
            main.contains(section),
            "pressroom(1) has no {section}:\n{main}"
        );
    }
    let pages = std::fs::read_dir(&dir).expect("man folder").count();
    assert_eq!(
        pages,
        commands.len() + 1,
        "a page per command and pressroom.1"
    );
}

#[test]
fn bash_completion_offers_subcommands_and_their_values() {
    let out = TestSite::empty();
    let script = out.path("pressroom.bash");
    let run = pressroom(&["generate", "completions", "bash"]);
    run.assert_code(0);
    std::fs::write(&script, &run.stdout).expect("write the script");
    // What bash's completion calls for `pressroom WORDS…<TAB>`.
    let complete = |words: &[&str]| -> Vec<String> {
        let line = words.join(" ");
        let program = r#"source "$1"; shift
            COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 )); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
            _pressroom pressroom "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
            printf '%s\n' "${COMPREPLY[@]}""#;
        let offered = run_tool(
            Command::new("bash")
                .args(["-c", program, "_"])
                .arg(&script)
                .args(words),
        );
        let offered: Vec<String> = offered.lines().map(str::to_owned).collect();
        assert!(!offered.is_empty(), "nothing offered for `{line}`");
        offered
    };
    let se = complete(&["pressroom", "se"]);
    assert!(se.iter().any(|o| o == "send"), "{se:?}");
    assert!(se.iter().all(|o| o.starts_with("se")), "{se:?}");
    let shells = complete(&["pressroom", "generate", "completions", ""]);
    for shell in ["bash", "zsh", "fish"] {
        assert!(shells.iter().any(|s| s == shell), "{shells:?}");
    }
    assert!(complete(&["pressroom", "send", "--"])
        .iter()
        .any(|o| o == "--dry-run"));
}

#[test]
fn man_pages_into_a_folder_that_cannot_be_made_name_it() {
    let site = TestSite::empty();
    std::fs::write(site.path("file"), "").expect("write a file");
    let target = site.path("file/man1");
    let run = pressroom(&["generate", "man", target.to_str().expect("UTF-8 temp path")]);
    run.assert_code(2);
    assert!(
        run.stderr.contains(&format!(
            "{}: could not create the folder",
            target.display()
        )),
        "{run}"
    );
}
