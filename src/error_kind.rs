//! What kind of failure an error is: a problem in the user's input
//! (content, config, templates, command-line values; exit 1) or a run
//! that could not finish (a server, the disk, a lock; exit 2), or, for a
//! mail server's pipe, a try-again-later (exit 75). Every
//! error type says which by implementing [`HasKind`]; the command layer
//! accepts only errors that do, so a new error type cannot reach the
//! exit code without declaring its kind.

use std::error::Error;

/// The two ways a run can fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The user's input is wrong: fix it and run again (exit 1).
    Input,
    /// The run could not finish: the input may be fine (exit 2).
    Run,
    /// A mail server's pipe should try again later: the ledger is busy,
    /// the site cannot be read just now (exit 75, `EX_TEMPFAIL`, which
    /// MTAs answer by keeping the message queued).
    TempFail,
}

impl ErrorKind {
    /// The process exit code for a failure of this kind.
    pub fn exit_code(self) -> u8 {
        match self {
            ErrorKind::Input => 1,
            ErrorKind::Run => 2,
            ErrorKind::TempFail => 75,
        }
    }
}

/// An error that knows its [`ErrorKind`].
pub trait HasKind {
    fn kind(&self) -> ErrorKind;
}

/// A boxable error that knows its kind, for fields that hold errors of
/// several types.
pub trait KindError: Error + HasKind + Send + Sync + 'static {}

impl<E: Error + HasKind + Send + Sync + 'static> KindError for E {}

/// An error of any type that knows its kind, in a box: its message and
/// causes are the boxed error's own.
#[derive(Debug)]
pub struct Boxed(Box<dyn KindError>);

impl Boxed {
    pub fn new(error: impl KindError) -> Boxed {
        Boxed(Box::new(error))
    }
}

impl std::fmt::Display for Boxed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl Error for Boxed {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.0.source()
    }
}

impl HasKind for Boxed {
    fn kind(&self) -> ErrorKind {
        self.0.kind()
    }
}

/// Reading or writing a file, a socket, a pipe: the run's environment,
/// not the user's input (input read from a file is checked, and its
/// problems reported, by the error type of whoever parses it).
impl HasKind for std::io::Error {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Run
    }
}

/// An error that is only a message, with its kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Described {
    pub kind: ErrorKind,
    pub message: String,
}

impl Described {
    /// The message of `error`, keeping its kind.
    pub fn of(error: &(impl Error + HasKind)) -> Described {
        Described {
            kind: error.kind(),
            message: error.to_string(),
        }
    }
}

impl HasKind for Described {
    fn kind(&self) -> ErrorKind {
        self.kind
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_map_to_the_documented_exit_codes() {
        assert_eq!(ErrorKind::Input.exit_code(), 1);
        assert_eq!(ErrorKind::Run.exit_code(), 2);
        assert_eq!(ErrorKind::TempFail.exit_code(), 75);
    }

    #[test]
    fn a_boxed_error_keeps_its_kind() {
        let input = Boxed::new(Described {
            kind: ErrorKind::Input,
            message: "bad".into(),
        });
        assert_eq!(input.kind(), ErrorKind::Input);
        assert_eq!(input.to_string(), "bad");
        assert_eq!(Described::of(&input).kind, ErrorKind::Input);
        let io = Boxed::new(std::io::Error::other("disk"));
        assert_eq!(io.kind(), ErrorKind::Run);
    }
}
