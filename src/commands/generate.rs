//! `pressroom generate`: man pages and shell completions made from the
//! command line's own definitions, so they never drift from `--help`.

use std::io::Write;
use std::path::Path;

use super::{Context, Result};
use clap::CommandFactory;

use crate::cli::{Cli, GenerateCommand};

pub fn run(what: &GenerateCommand) -> Result<()> {
    match what {
        GenerateCommand::Man { dir } => write_man_pages(dir),
        GenerateCommand::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(*shell, &mut Cli::command(), "pressroom", &mut script);
            std::io::stdout()
                .write_all(&script)
                .context("could not write the completion script to stdout")
        }
    }
}

/// `pressroom.1`, with the sections `--help` has no room for, and one page
/// per subcommand (`pressroom-send.1`, …).
fn write_man_pages(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("{}: could not create the folder", dir.display()))?;
    let mut command = Cli::command().disable_help_subcommand(true);
    command.build();
    let mut see_also = Vec::new();
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        let page = clap_mangen::Man::new(sub.clone());
        page.generate_to(dir).with_context(|| {
            format!("{}: could not write {}", dir.display(), page.get_filename())
        })?;
        see_also.push(format!(
            ".BR {} (1)",
            sub.get_display_name().unwrap_or(sub.get_name())
        ));
    }
    let main = clap_mangen::Man::new(command);
    let path = dir.join(main.get_filename());
    let mut roff = Vec::new();
    main.render(&mut roff)?;
    roff.extend_from_slice(MAIN_PAGE_SECTIONS.as_bytes());
    roff.extend_from_slice(see_also.join(",\n").as_bytes());
    roff.push(b'\n');
    std::fs::write(&path, roff).with_context(|| format!("{}: could not write", path.display()))
}

/// Environment, files and exit status, for `man pressroom`.
const MAIN_PAGE_SECTIONS: &str = r#".SH ENVIRONMENT
.TP
.B PRESSROOM_SECRET
The key that signs each reader's unsubscribe token (HMAC\-SHA256).
\fBsend\fR needs it; \fBunsubscribe \-\-token\fR verifies with it.
.TP
.B PRESSROOM_SMTP_URL
Replaces \fBsmtp.url\fR from config.toml, for example
\fBsmtps://newsletter@smtp.example.com\fR.
.TP
.B PRESSROOM_SMTP_PASSWORD
The SMTP password. It is never read from config.toml and never printed.
.TP
.B PRESSROOM_LOG
A log filter that replaces \fB\-q\fR and \fB\-v\fR, for example
\fBpressroom=debug\fR.
.SH FILES
.TP
.I config.toml, content/, templates/, subscribers.csv
The site, in the folder given by \fB\-\-root\fR (default: the current one).
.TP
.I public/
Where \fBbuild\fR writes the feeds.
.TP
.I .pressroom/state.db
The send ledger: issues, deliveries and the suppression list.
.TP
.I /etc/pressroom/env
The environment (secrets) of the systemd units \fBpressroom\-send.service\fR
and \fBpressroom\-serve.service\fR that the Debian package installs.
.SH EXIT STATUS
.TP
.B 0
Success, including nothing to send.
.TP
.B 1
A problem in the input (config.toml, content, templates, subscribers):
every problem is listed as \fIfile\fR:\fIline\fR, then a count.
.TP
.B 2
The run could not finish: an output could not be written, the SMTP server
was unusable, deliveries are still deferred, or another send is running.
.SH SEE ALSO
"#;
