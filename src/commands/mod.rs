//! One module per subcommand: wiring and reporting only. The work happens
//! in the pure core (`content`, `feed`); this layer reads and writes files.

mod bounces;
pub(crate) mod build;
mod check;
mod generate;
mod init;
mod new;
mod preview;
mod send;
mod serve;
mod status;
mod subscribers;
mod unsubscribe;

use std::fmt;
use std::path::Path;

use chrono::{DateTime, FixedOffset, Utc};

use crate::cli::{Cli, Command, Global};
use crate::config::{Config, CONFIG_FILE};
use crate::content::Site;
use crate::error_kind::{ErrorKind, HasKind};

/// Runs the chosen command.
pub fn run(cli: Cli) -> Result<()> {
    let global = &cli.global;
    match &cli.command {
        Command::Generate(what) => generate::run(what),
        Command::Build => build::run(global),
        Command::Check => check::run(global),
        Command::New(args) => new::run(global, args),
        Command::Preview(args) => preview::run(global, args),
        Command::Send(args) => send::run(global, args),
        Command::Status(args) => status::run(global, args),
        Command::Unsubscribe(args) => unsubscribe::run(global, args),
        Command::Serve(args) => serve::run(global, args),
        Command::Subscribers(args) => subscribers::run(global, args),
        Command::Bounces(args) => bounces::run(global, args),
        Command::Init(args) => init::run(args),
    }
}

/// A problem in the user's input (content, config, templates): exit 1.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InputError(pub String);

impl HasKind for InputError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Input
    }
}

/// A run that could not finish, said in the command's words: exit 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct RunError(pub String);

impl HasKind for RunError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Run
    }
}

/// Why a command failed: the error with its causes, and its kind. It is
/// made only from errors that implement [`HasKind`] (or with the kind
/// named, [`Failure::new`]), so every error type declares its exit code.
///
/// An error type that does not say its kind does not compile with `?`:
///
/// ```compile_fail
/// #[derive(Debug)]
/// struct Unsaid;
/// impl std::fmt::Display for Unsaid {
///     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
///         f.write_str("unsaid")
///     }
/// }
/// impl std::error::Error for Unsaid {}
/// fn run() -> pressroom::commands::Result<()> {
///     Err(Unsaid)?
/// }
/// ```
///
/// and the same type with its kind does:
///
/// ```
/// use pressroom::error_kind::{ErrorKind, HasKind};
/// #[derive(Debug)]
/// struct Said;
/// impl std::fmt::Display for Said {
///     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
///         f.write_str("said")
///     }
/// }
/// impl std::error::Error for Said {}
/// impl HasKind for Said {
///     fn kind(&self) -> ErrorKind {
///         ErrorKind::Input
///     }
/// }
/// fn run() -> pressroom::commands::Result<()> {
///     Err(Said)?
/// }
/// assert_eq!(run().unwrap_err().exit_code(), 1);
/// ```
pub struct Failure {
    kind: ErrorKind,
    error: anyhow::Error,
}

/// What the commands return.
pub type Result<T, E = Failure> = std::result::Result<T, E>;

impl Failure {
    /// A failure of `kind` from an error of a crate outside pressroom,
    /// whose kind depends on where it happened.
    pub fn new(kind: ErrorKind, error: impl Into<anyhow::Error>) -> Failure {
        Failure {
            kind,
            error: error.into(),
        }
    }

    /// [`Failure::new`] with [`ErrorKind::Run`].
    pub fn run(error: impl Into<anyhow::Error>) -> Failure {
        Failure::new(ErrorKind::Run, error)
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The same failure, of another kind (a mail server's pipe turns
    /// every failure into a try-again-later).
    pub fn with_kind(self, kind: ErrorKind) -> Failure {
        Failure { kind, ..self }
    }

    /// 1 for problems in the user's input, 2 for a run that could not
    /// finish, 75 for a mail server's pipe to try again later.
    pub fn exit_code(&self) -> u8 {
        self.kind.exit_code()
    }
}

impl<E: std::error::Error + HasKind + Send + Sync + 'static> From<E> for Failure {
    fn from(error: E) -> Failure {
        Failure {
            kind: error.kind(),
            error: anyhow::Error::new(error),
        }
    }
}

/// `{}` is the outermost message, `{:#}` the whole chain.
impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if f.alternate() {
            write!(f, "{:#}", self.error)
        } else {
            write!(f, "{}", self.error)
        }
    }
}

impl fmt::Debug for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} ({:?})", self.error, self.kind)
    }
}

/// `.context(..)` and `.with_context(..)` as anyhow has them, keeping the
/// kind of the error they wrap.
pub trait Context<T> {
    fn context<C>(self, context: C) -> Result<T>
    where
        C: fmt::Display + Send + Sync + 'static;

    fn with_context<C, F>(self, context: F) -> Result<T>
    where
        C: fmt::Display + Send + Sync + 'static,
        F: FnOnce() -> C;
}

impl<T, E: std::error::Error + HasKind + Send + Sync + 'static> Context<T>
    for std::result::Result<T, E>
{
    fn context<C>(self, context: C) -> Result<T>
    where
        C: fmt::Display + Send + Sync + 'static,
    {
        self.map_err(|e| Failure::from(e).wrap(context))
    }

    fn with_context<C, F>(self, context: F) -> Result<T>
    where
        C: fmt::Display + Send + Sync + 'static,
        F: FnOnce() -> C,
    {
        self.map_err(|e| Failure::from(e).wrap(context()))
    }
}

impl<T> Context<T> for Result<T> {
    fn context<C>(self, context: C) -> Result<T>
    where
        C: fmt::Display + Send + Sync + 'static,
    {
        self.map_err(|e| e.wrap(context))
    }

    fn with_context<C, F>(self, context: F) -> Result<T>
    where
        C: fmt::Display + Send + Sync + 'static,
        F: FnOnce() -> C,
    {
        self.map_err(|e| e.wrap(context()))
    }
}

impl Failure {
    /// This failure with `context` said around it; the kind stays.
    pub fn wrap<C: fmt::Display + Send + Sync + 'static>(self, context: C) -> Failure {
        Failure {
            kind: self.kind,
            error: self.error.context(context),
        }
    }

    /// The error of type `E` this failure was made from, else the failure.
    pub fn downcast<E: fmt::Display + fmt::Debug + Send + Sync + 'static>(
        self,
    ) -> std::result::Result<E, Failure> {
        let kind = self.kind;
        self.error
            .downcast::<E>()
            .map_err(|error| Failure { kind, error })
    }
}

/// The time that decides what is published: `--now`, or the clock.
pub fn now(global: &Global) -> DateTime<FixedOffset> {
    global.now.unwrap_or_else(|| Utc::now().fixed_offset())
}

/// Reads the site's config.toml.
pub fn load_config(root: &Path) -> Result<Config> {
    let path = root.join(CONFIG_FILE);
    if !path.is_file() {
        return Err(InputError(format!(
            "{}: no such file; run `pressroom init` to create a site, or pass --root DIR",
            path.display()
        ))
        .into());
    }
    let text = crate::fs::read_to_string(&path)?;
    Ok(Config::parse(
        &crate::content::display_path(root, &path),
        &text,
    )?)
}

/// Reads config.toml and every article.
pub fn load_site(root: &Path) -> Result<Site> {
    let config = load_config(root)?;
    Ok(Site::load(root, config)?)
}

/// The secret that signs unsubscribe tokens, from `PRESSROOM_SECRET`.
pub fn secret() -> Result<Vec<u8>> {
    match std::env::var("PRESSROOM_SECRET") {
        Ok(secret) if secret.len() >= 16 => Ok(secret.into_bytes()),
        Ok(_) => Err(InputError(
            "PRESSROOM_SECRET is too short: use at least 16 random characters (e.g. `openssl rand -hex 32`)".into(),
        )
        .into()),
        Err(_) => Err(InputError(
            "PRESSROOM_SECRET is not set: it signs every unsubscribe link; set it to a long random string (e.g. `openssl rand -hex 32`) and keep it the same across runs".into(),
        )
        .into()),
    }
}

/// The SMTP URL and password from the environment
/// (`PRESSROOM_SMTP_URL`, `PRESSROOM_SMTP_PASSWORD`); empty means unset.
pub fn smtp_env() -> (Option<String>, Option<crate::delivery::smtp::Password>) {
    let url = std::env::var("PRESSROOM_SMTP_URL")
        .ok()
        .filter(|u| !u.is_empty());
    let password = std::env::var("PRESSROOM_SMTP_PASSWORD")
        .ok()
        .filter(|p| !p.is_empty())
        .map(crate::delivery::smtp::Password::new);
    (url, password)
}

/// The ledger's path from `[send]`.
pub fn ledger_path(root: &Path, config: &Config) -> std::path::PathBuf {
    root.join(&config.send.ledger)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::lock::LockError;
    use crate::delivery::DeliveryError;
    use crate::email::MessageError;
    use crate::error_kind::{Boxed, Described};

    fn failing<E: std::error::Error + HasKind + Send + Sync + 'static>(e: E) -> Result<()> {
        Err(e)?
    }

    /// The hand-kept list of input errors did not name MessageError, so a
    /// message without a sender exited 2, as if the server were down.
    #[test]
    fn a_message_without_a_sender_is_a_problem_in_the_input() {
        let failure = failing(MessageError::MissingFrom).unwrap_err();
        assert_eq!(failure.exit_code(), 1);
        assert!(failure.to_string().contains("email.from is not set"));
    }

    /// The send worker passed an article that could not be prepared as a
    /// bare string, which lost its kind: the run exited 2.
    #[test]
    fn a_wrapped_error_keeps_its_kind_through_boxes_and_context() {
        let article = crate::email::RenderError::Article("content/a.md: bad".into());
        let delivery = DeliveryError::Render {
            recipient: "reader@example.com".into(),
            source: Boxed::new(Described::of(&article)),
        };
        let failure = failing(delivery).context("issue 2026-11-29").unwrap_err();
        assert_eq!(failure.exit_code(), 1);
        assert_eq!(
            format!("{failure:#}"),
            "issue 2026-11-29: rendering the message for reader@example.com: content/a.md: bad"
        );
    }

    #[test]
    fn a_run_that_could_not_finish_exits_2() {
        let held = LockError::Held {
            path: ".pressroom/send.lock".into(),
            holder: None,
        };
        assert_eq!(failing(held).unwrap_err().exit_code(), 2);
        let io = std::io::Error::other("disk full");
        let failure = failing(io)
            .with_context(|| "cannot write public/rss.xml")
            .unwrap_err();
        assert_eq!(failure.exit_code(), 2);
        assert_eq!(
            format!("{failure:#}"),
            "cannot write public/rss.xml: disk full"
        );
        assert_eq!(Failure::run(anyhow::anyhow!("x")).exit_code(), 2);
    }

    #[test]
    fn downcasting_finds_the_error_and_keeps_the_kind_when_it_does_not() {
        let load = crate::content::LoadError {
            problems: Vec::new(),
        };
        assert!(Failure::from(load)
            .downcast::<crate::content::LoadError>()
            .is_ok());
        let other = Failure::from(InputError("x".into()))
            .downcast::<crate::content::LoadError>()
            .unwrap_err();
        assert_eq!(other.kind(), ErrorKind::Input);
    }
}
