//! The `pressroom` binary: parse the command line, set up logging, run the
//! command, and turn its outcome into an exit code (0 ok, 1 a problem in
//! the user's input, 2 a run that could not finish).

use std::process::ExitCode;

use clap::Parser;
use pressroom::cli::Cli;
use pressroom::commands;

/// Per-thread heaps: the build allocates on every core at once.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.global.quiet, cli.global.verbose);
    match commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let code = err.exit_code();
            if code == 1 {
                // Problems in the input: one `path:line: key: message` per
                // line, so editors and scripts can jump to each, then a
                // count.
                let text = format!("{err:#}");
                eprintln!("{text}");
                let count = text.lines().filter(|l| !l.trim().is_empty()).count();
                let noun = if count == 1 { "problem" } else { "problems" };
                eprintln!("error: {count} {noun} found");
            } else {
                eprintln!("error: {err:#}");
            }
            ExitCode::from(code)
        }
    }
}

fn init_logging(quiet: bool, verbose: u8) {
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "info",
        (false, 1) => "debug",
        (false, _) => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("PRESSROOM_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("pressroom={level}")));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .event_format(Plain)
        .init();
}

/// Log lines as a command-line tool prints them: plain for progress,
/// `warning:` / `error:` in front of trouble.
struct Plain;

impl<S, N> tracing_subscriber::fmt::FormatEvent<S, N> for Plain
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut writer: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let prefix = match *event.metadata().level() {
            tracing::Level::ERROR => "error: ",
            tracing::Level::WARN => "warning: ",
            tracing::Level::INFO => "",
            tracing::Level::DEBUG => "debug: ",
            tracing::Level::TRACE => "trace: ",
        };
        write!(writer, "{prefix}")?;
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}
