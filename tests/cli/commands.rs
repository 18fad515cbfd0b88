//! `init`, `new`, `--help`, and the exit codes of runs that cannot start:
//! a missing config.toml, a config.toml with an unknown key, an output
//! folder that cannot be written.

use serde_json::Value;

use crate::common::{pressroom, TestSite, NOW};
use crate::source;
use crate::structure::parse;

/// `pressroom init DIR` inside a fresh temporary folder; returns the
/// folder holder and the site path.
fn init_site() -> (TestSite, std::path::PathBuf) {
    let holder = TestSite::empty();
    let dir = holder.path("my-newsletter");
    pressroom(&["init".as_ref(), dir.as_os_str()]).assert_code(0);
    (holder, dir)
}

#[test]
fn init_makes_a_site_that_builds_all_three_feeds() {
    let (_holder, dir) = init_site();
    assert!(dir.join("config.toml").is_file());
    let run = pressroom(&[
        "--root".as_ref(),
        dir.as_os_str(),
        "--now".as_ref(),
        NOW.as_ref(),
        "build".as_ref(),
    ]);
    run.assert_code(0);
    let public = dir.join("public");
    for file in ["rss.xml", "atom.xml"] {
        let text = crate::common::read(&public.join(file));
        let root = parse(file, &text);
        assert!(!root.children.is_empty(), "{file} is empty");
    }
    let json: Value = serde_json::from_str(&crate::common::read(&public.join("feed.json")))
        .expect("feed.json is JSON");
    assert_eq!(json["version"], "https://jsonfeed.org/version/1.1");
    assert!(
        json["items"].as_array().is_some_and(|i| !i.is_empty()),
        "the example article should be published at {NOW}: {json}"
    );
}

#[test]
fn init_refuses_an_existing_site() {
    let (_holder, dir) = init_site();
    let config = std::fs::read(dir.join("config.toml")).expect("config");
    let run = pressroom(&["init".as_ref(), dir.as_os_str()]);
    run.assert_code(1);
    assert!(run.stderr.contains("config.toml"), "{run}");
    assert_eq!(
        std::fs::read(dir.join("config.toml")).expect("config"),
        config,
        "init rewrote an existing config.toml"
    );
    // The repository's own sample site is a site too.
    let sample = TestSite::sample();
    pressroom(&["init".as_ref(), sample.root().as_os_str()]).assert_code(1);
    assert_eq!(
        sample.read("config.toml"),
        crate::common::read(&std::path::Path::new(crate::common::REPO).join("config.toml"))
    );
}

#[test]
fn new_creates_an_article_that_check_accepts_and_refuses_a_second_one() {
    let site = TestSite::sample();
    let run = site.run(&["new", "Some Title"]);
    run.assert_code(0);
    let path = "content/some-title.md";
    let text = site.read(path);
    assert!(text.contains("title: 'Some Title'"), "{text}");
    // Dated "today" at --now, in the site's time zone.
    let config = source::config(site.root());
    let today = source::now()
        .with_timezone(&config.timezone)
        .format("%Y-%m-%d")
        .to_string();
    assert!(text.contains(&format!("publish_date: '{today}'")), "{text}");
    let article = source::articles(site.root())
        .into_iter()
        .find(|a| a.source == path)
        .expect("the new article loads");
    assert_eq!(article.title, "Some Title");
    assert!(article.draft, "a new article starts as a draft");
    site.run(&["check"]).assert_code(0);

    let again = site.run(&["new", "Some Title"]);
    again.assert_code(1);
    assert!(again.stderr.contains("some-title.md"), "{again}");
    assert_eq!(site.read(path), text, "the second `new` changed the file");

    // --dir puts it in a sub-folder of content/.
    site.run(&["new", "--dir", "guides", "Another One"])
        .assert_code(0);
    assert!(site.path("content/guides/another-one.md").is_file());
    site.run(&["check"]).assert_code(0);
}

#[test]
fn every_command_has_help_with_an_example() {
    // Every subcommand the command line defines, so a new one is covered
    // without being listed here.
    use clap::CommandFactory;
    let cli = pressroom::cli::Cli::command();
    let names: Vec<String> = cli
        .get_subcommands()
        .map(|c| c.get_name().to_owned())
        .filter(|name| name != "help")
        .collect();
    assert!(
        names.len() >= 8 && names.iter().any(|n| n == "unsubscribe"),
        "{names:?}"
    );
    let mut commands: Vec<Vec<&str>> = vec![Vec::new()];
    commands.extend(names.iter().map(|name| vec![name.as_str()]));
    for command in commands {
        let mut args: Vec<&str> = command.to_vec();
        args.push("--help");
        let run = pressroom(&args);
        run.assert_code(0);
        assert!(
            run.stdout.contains("Example"),
            "`pressroom {}` has no example\n{run}",
            args.join(" ")
        );
    }
}

#[test]
fn a_missing_config_toml_is_a_problem_in_the_input() {
    let site = TestSite::empty();
    for command in ["check", "build", "new"] {
        let args: &[&str] = if command == "new" {
            &["new", "A Title"]
        } else {
            &[command]
        };
        let run = site.run(args);
        run.assert_code(1);
        assert!(run.stderr.contains("config.toml"), "{run}");
    }
    assert!(
        !site.public().exists(),
        "build wrote output without a config"
    );
    assert!(!site.path("content").exists(), "new wrote without a config");
}

#[test]
fn an_unknown_config_key_is_named_with_its_line() {
    let site = TestSite::sample();
    let config = site.read("config.toml");
    let after = "title = \"The Pressroom Dispatch\"\n";
    let at = config.find(after).expect("the sample's title line") + after.len();
    let line = config[..at].matches('\n').count() + 1;
    site.write(
        "config.toml",
        format!("{}colour = \"red\"\n{}", &config[..at], &config[at..]),
    );
    for command in ["check", "build"] {
        let run = site.run(&[command]);
        run.assert_code(1);
        assert!(
            run.stderr
                .contains(&format!("config.toml:{line}: site.colour: unknown key")),
            "expected config.toml:{line} to be named\n{run}"
        );
    }
    assert!(
        !site.public().exists(),
        "build wrote output with a bad config"
    );
}

#[test]
fn an_output_folder_that_cannot_be_written_exits_2() {
    let site = TestSite::sample();
    // A file where the output folder should be.
    site.write("public", "not a folder");
    let run = site.run(&["build"]);
    run.assert_code(2);
    assert!(run.stderr.contains("public"), "{run}");
}
