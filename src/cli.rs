//! The command line: global flags and one subcommand enum (clap derive).

use std::path::PathBuf;

use chrono::{DateTime, FixedOffset};
use clap::{Args, Parser, Subcommand};

/// `pressroom --version`: the release and the commit it was built from
/// (named by build.rs).
pub const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("PRESSROOM_BUILT_FROM"),
    ")"
);

/// Publish Markdown articles as RSS, Atom and JSON feeds and email newsletters.
#[derive(Debug, Parser)]
#[command(name = "pressroom", version = LONG_VERSION, about, propagate_version = true)]
#[command(
    after_help = "Examples:\n  pressroom build\n  pressroom --root ~/sites/dispatch check\n  pressroom new \"Rust at the Edge\""
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every command takes.
#[derive(Debug, Args)]
pub struct Global {
    /// The site's folder (holds config.toml and content/).
    #[arg(long, global = true, default_value = ".", value_name = "DIR")]
    pub root: PathBuf,
    /// Pretend the current time is this RFC 3339 instant (decides what is
    /// published and scheduled).
    #[arg(long, global = true, value_name = "RFC3339", value_parser = parse_now)]
    pub now: Option<DateTime<FixedOffset>>,
    /// Print only errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Print more (-v: each file, -vv: debugging detail).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write the RSS, Atom and JSON feeds (and per-tag feeds) to public/.
    #[command(
        after_help = "Example:\n  pressroom build\n\nFiles whose bytes would not change are not rewritten.\nExit status: 0 built, 1 a problem in config.toml or content/ (nothing written), 2 the output could not be written."
    )]
    Build,
    /// Check config.toml and every article; list every problem, exit 1 if any.
    #[command(after_help = "Example:\n  pressroom check && pressroom build")]
    Check,
    /// Create a new article with every front-matter field, dated today.
    #[command(
        after_help = "Example:\n  pressroom new \"Rust at the Edge: What We Learned\"\n  pressroom new --dir guides \"Subject lines that work\""
    )]
    New(NewArgs),
    /// Write the next newsletter issue as .html, .txt and .eml files, plus an index.
    #[command(
        after_help = "Examples:\n  pressroom preview --open\n  pressroom preview --mode per-article --articles welcome,why-we-built-our-publisher-in-rust\n  pressroom preview --to mara@example.com --out /tmp/issue\n\nThe .eml file is byte for byte the message a send would deliver to that\nrecipient (at this time). Lint findings are listed in index.html and on stderr."
    )]
    Preview(PreviewArgs),
    /// Mail what is newly published to every subscriber, once (run it from cron).
    #[command(
        after_help = "Examples:\n  pressroom send                      # what cron runs, e.g. every 15 minutes\n  pressroom send --dry-run            # render and count, send nothing\n  pressroom send --test me@example.com\n\nThe first run on a fresh ledger records the articles already published as\nsent (use --include-existing to mail them). Unfinished issues are resumed\nfirst. Exit status: 0 all sent or nothing due, 1 a problem in the input,\n2 anything deferred, the server unusable, or another send running.\nEnvironment: PRESSROOM_SECRET (unsubscribe tokens), PRESSROOM_SMTP_URL,\nPRESSROOM_SMTP_PASSWORD."
    )]
    Send(SendArgs),
    /// Show each newsletter issue with its delivery counts and last error.
    #[command(
        after_help = "Examples:\n  pressroom status\n  pressroom status --json | jq '.[0].counts'"
    )]
    Status(StatusArgs),
    /// Stop mailing an address (by address, or by the token of its unsubscribe link).
    #[command(
        after_help = "Examples:\n  pressroom unsubscribe reader@example.com\n  pressroom unsubscribe --token \"$TOKEN\"   # from a web form or CGI; needs PRESSROOM_SECRET"
    )]
    Unsubscribe(UnsubscribeArgs),
    /// Write the man pages or a shell's completion script (for installing).
    #[command(
        subcommand,
        after_help = "Examples:\n  pressroom generate man /usr/local/share/man/man1\n  pressroom generate completions bash > ~/.local/share/bash-completion/completions/pressroom"
    )]
    Generate(GenerateCommand),
    /// Answer one-click unsubscribes and signups over HTTP.
    ///
    /// Double opt-in signups and RFC 8058 one-click unsubscribes, on
    /// 127.0.0.1 behind a TLS reverse proxy.
    #[command(
        after_help = "Examples:\n  pressroom serve                          # 127.0.0.1:8080, or [serve] listen\n  pressroom --root /srv/dispatch serve --listen 127.0.0.1:8081\n\nRoutes (under [serve] path_prefix): POST/GET /unsubscribe?token=T,\nGET/POST /subscribe, GET/POST /confirm?token=T, GET /healthz. A GET never\nchanges anything. SIGTERM finishes the requests in flight, then exits.\nEnvironment: PRESSROOM_SECRET, PRESSROOM_SMTP_URL, PRESSROOM_SMTP_PASSWORD."
    )]
    Serve(ServeArgs),
    /// List every address with its state, or export the audience.
    ///
    /// Every known address with its state, source and date; `export`
    /// writes the active audience as CSV.
    #[command(
        after_help = "Examples:\n  pressroom subscribers\n  pressroom subscribers --csv > everyone.csv\n  pressroom subscribers export > audience.csv\n\nStates: active, pending (signed up, not confirmed), unsubscribed, bounced,\ncomplained. Sources: csv (subscribers.csv), signup (pressroom serve)."
    )]
    Subscribers(SubscribersArgs),
    /// Read bounce and complaint reports; suppress the readers they name.
    ///
    /// Delivery status notifications (RFC 3464), abuse reports (ARF) and
    /// auto-replies from a Maildir, an mbox file or stdin. A hard bounce
    /// or a complaint suppresses its reader at once, `bounces.soft_limit`
    /// soft bounces within `bounces.soft_days` too; the same report read
    /// twice counts once.
    #[command(
        after_help = "Examples:\n  pressroom bounces --maildir /var/mail/bounces      # from cron\n  pressroom bounces --mbox ~/bounces.mbox\n  pressroom --root /srv/site bounces - < message.eml  # one message: an MTA alias pipe\n\nA Maildir's processed messages move to cur/ with the S (seen) flag; the next\nrun skips them. Exit status: 0 done (stdin: also for a message that is no\nreport), 1 messages that could not be read (named; left where they are) or a\nproblem in config.toml, 2 the ledger could not be written; with `-` every\nfailure exits 75 (EX_TEMPFAIL) so the mail server retries later.\nEnvironment: PRESSROOM_SECRET (checks the bounce address tags)."
    )]
    Bounces(BouncesArgs),
    /// Create a new site: config.toml, one example article and templates/.
    #[command(
        after_help = "Example:\n  pressroom init my-newsletter && cd my-newsletter && pressroom build"
    )]
    Init(InitArgs),
}

#[derive(Debug, Args)]
pub struct NewArgs {
    /// The article's title.
    pub title: String,
    /// Sub-folder of content/ to create it in.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct PreviewArgs {
    /// Folder to write the preview files to (relative to the site root).
    #[arg(long, value_name = "DIR", default_value = "preview")]
    pub out: PathBuf,
    /// Open the index in the desktop's browser.
    #[arg(long)]
    pub open: bool,
    /// One digest of new articles, or one email per article (default: email.mode).
    #[arg(long, value_enum)]
    pub mode: Option<ModeArg>,
    /// Preview exactly these articles (slugs, comma-separated) instead of what is pending.
    #[arg(long, value_name = "SLUG,…", value_delimiter = ',')]
    pub articles: Vec<String>,
    /// Render for this recipient (default: reader@example.com).
    #[arg(long, value_name = "EMAIL")]
    pub to: Option<String>,
    /// On a fresh ledger (or none yet), count the articles already
    /// published as pending, as `send --include-existing` would mail them.
    #[arg(long, conflicts_with = "articles")]
    pub include_existing: bool,
}

#[derive(Debug, Args)]
pub struct SendArgs {
    /// Render and count what would be sent; no SMTP, no ledger change.
    #[arg(long, conflicts_with = "test")]
    pub dry_run: bool,
    /// Send the pending (or latest) issue to this one address only, subject
    /// prefixed [TEST]; the ledger is not touched.
    #[arg(long, value_name = "EMAIL")]
    pub test: Option<String>,
    /// Hand at most N messages to the server in this run.
    #[arg(long, value_name = "N")]
    pub limit: Option<u64>,
    /// On a fresh ledger, mail the articles already published instead of
    /// recording them as sent.
    #[arg(long)]
    pub include_existing: bool,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("who").required(true).args(["email", "token"])))]
pub struct UnsubscribeArgs {
    /// The address to stop mailing.
    pub email: Option<String>,
    /// The token from an unsubscribe link (verified with PRESSROOM_SECRET).
    #[arg(long, value_name = "TOKEN")]
    pub token: Option<String>,
}

/// Where `pressroom bounces` reads reports from: exactly one source.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("input").required(true).multiple(false)))]
pub struct BouncesArgs {
    /// A Maildir: every message in new/ and cur/ not yet flagged seen;
    /// each is marked (moved to cur/ with the S flag) once recorded.
    #[arg(long, value_name = "DIR", group = "input")]
    pub maildir: Option<PathBuf>,
    /// An mbox file, read whole and left unchanged.
    #[arg(long, value_name = "FILE", group = "input")]
    pub mbox: Option<PathBuf>,
    /// `-`: one message on stdin (for an MTA alias such as
    /// `bounces: "|pressroom --root /srv/site bounces -"`).
    #[arg(value_name = "-", group = "input", value_parser = clap::builder::PossibleValuesParser::new(["-"]))]
    pub stdin: Option<String>,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address and port to listen on (default: [serve] listen, 127.0.0.1:8080).
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Option<std::net::SocketAddr>,
}

#[derive(Debug, Args)]
pub struct SubscribersArgs {
    /// Print CSV instead of a table.
    #[arg(long)]
    pub csv: bool,
    #[command(subcommand)]
    pub action: Option<SubscribersAction>,
}

#[derive(Debug, Subcommand)]
pub enum SubscribersAction {
    /// Write the active audience (who the next send mails) as CSV to stdout:
    /// email, name, source, subscribed_at.
    Export,
    /// Mail an address again after a bounce or complaint suppressed it
    /// (recorded; an unsubscribe is never lifted here).
    #[command(after_help = "Example:\n  pressroom subscribers reactivate reader@example.com")]
    Reactivate {
        /// The suppressed address.
        #[arg(value_name = "EMAIL")]
        email: String,
    },
}

/// `--mode` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ModeArg {
    Digest,
    PerArticle,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Folder to create the site in (created if missing; must not already
    /// hold a config.toml).
    pub dir: PathBuf,
}

/// `pressroom generate …`
#[derive(Debug, Subcommand)]
pub enum GenerateCommand {
    /// Write pressroom.1 and a page per subcommand (pressroom-send.1, …) into DIR.
    #[command(after_help = "Example:\n  pressroom generate man /usr/local/share/man/man1")]
    Man {
        /// Folder to write the pages to (created if missing).
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
    /// Print the completion script for SHELL.
    #[command(
        after_help = "Examples:\n  pressroom generate completions bash > ~/.local/share/bash-completion/completions/pressroom\n  pressroom generate completions zsh > ~/.zfunc/_pressroom\n  pressroom generate completions fish > ~/.config/fish/completions/pressroom.fish"
    )]
    Completions {
        #[arg(value_name = "SHELL")]
        shell: clap_complete::Shell,
    },
}

fn parse_now(value: &str) -> Result<DateTime<FixedOffset>, String> {
    DateTime::parse_from_rfc3339(value).map_err(|e| {
        format!("`{value}` is not an RFC 3339 time such as 2025-03-09T08:00:00Z ({e})")
    })
}
