//! The error type of everything that can fail before a monitor runs.

use std::path::PathBuf;

/// Why a monitor (or a query) could not be made. Once a monitor runs, faults are reported as
/// [`crate::EventKind::Error`] events instead.
///
/// `Display` quotes names and system messages verbatim, not escaped for a terminal (see
/// [the crate documentation](crate#strings-from-outside-are-kept-exact)).
///
/// ```
/// let err = netreach::Monitor::builder().netns("no such/ns").build().unwrap_err();
/// assert!(err.to_string().contains("plain file name"));
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A network namespace name or path was wrong, or could not be entered.
    Namespace {
        /// The name or path given.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// An operating-system call failed.
    Io {
        /// What netreach was doing.
        context: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The input was invalid.
    InvalidInput(String),
    /// This platform has no backend.
    Unsupported(String),
}

impl Error {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io { context: context.into(), source }
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Namespace { path, reason } => write!(f, "network namespace {}: {reason}", path.display()),
            Error::Io { context, source } => write!(f, "{context}: {source}"),
            Error::InvalidInput(msg) | Error::Unsupported(msg) => f.write_str(msg),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
