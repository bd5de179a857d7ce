//! The error type of everything that can fail before a monitor runs, and its kinds.

use std::path::{Path, PathBuf};

/// `Result` with netreach's [`Error`].
///
/// ```no_run
/// fn level() -> netreach::Result<netreach::Level> {
///     Ok(netreach::Monitor::new()?.snapshot().reachability.overall)
/// }
/// ```
pub type Result<T> = std::result::Result<T, Error>;

/// Why a monitor (or a query) could not be made, or a request to a running one failed. Once a
/// monitor runs, faults are reported as [`crate::EventKind::Error`] events instead.
///
/// Match on [`Error::kind`]; the text is for people. `Display` quotes names and system messages
/// verbatim, not escaped for a terminal (see
/// [the crate documentation](crate#strings-from-outside-are-kept-exact)).
///
/// ```
/// use netreach::{ErrorKind, Monitor};
///
/// let err = Monitor::builder().netns("no such/ns").build().unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::InvalidInput);
/// assert_eq!(err.netns(), Some(std::path::Path::new("no such/ns")));
/// assert!(err.to_string().contains("plain file name"));
/// ```
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    /// What went wrong, or what netreach was doing when `source` failed.
    message: String,
    /// The network namespace (name or path, as given) the error is about.
    netns: Option<PathBuf>,
    source: Option<std::io::Error>,
}

/// What kind of failure an [`Error`] is: what a caller can act on.
///
/// ```
/// use netreach::ErrorKind;
///
/// let err = "fast".parse::<netreach::Level>().unwrap_err();
/// match err.kind() {
///     ErrorKind::InvalidInput => {} // the caller's input: say so, do not retry
///     ErrorKind::SourceUnavailable | ErrorKind::Stopped => {} // may work later
///     _ => {}
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Something named does not exist: a network namespace, a file.
    NotFound,
    /// The operating system refused: e.g. entering a namespace without CAP_SYS_ADMIN.
    PermissionDenied,
    /// Not available on this platform: no backend, no namespaces, no NetworkManager.
    Unsupported,
    /// A source asked for explicitly cannot be used now: the system bus does not answer,
    /// NetworkManager is not running or does not answer.
    SourceUnavailable,
    /// The monitor (or one of its sources) has stopped.
    Stopped,
    /// The caller's input is wrong: an address, a URL, a setting, a namespace that is none.
    InvalidInput,
    /// Another operating-system call failed; [`std::error::Error::source`] has the OS error.
    Io,
}

impl Error {
    fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error { kind, message: message.into(), netns: None, source: None }
    }

    /// An OS call failed while netreach was doing `context`; the kind follows the OS error's
    /// (EPERM and EACCES are [`ErrorKind::PermissionDenied`], ENOENT [`ErrorKind::NotFound`]).
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error { source: Some(source), ..Error::new(ErrorKind::Io, context) }.classified()
    }

    /// The caller's input is wrong; `message` says how (and what is accepted).
    pub(crate) fn invalid_input(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::InvalidInput, message)
    }

    /// A namespace that cannot be used, with the reason; [`ErrorKind::InvalidInput`] unless
    /// [`Error::with_kind`] says otherwise.
    #[cfg(any(target_os = "linux", test))] // namespaces exist only on Linux
    pub(crate) fn namespace(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Error { netns: Some(path.into()), ..Error::new(ErrorKind::InvalidInput, reason) }
    }

    /// An OS call on a namespace failed: `what` (e.g. "cannot open") and the OS error.
    #[cfg(any(target_os = "linux", test))] // namespaces exist only on Linux
    pub(crate) fn namespace_io(path: impl Into<PathBuf>, what: impl Into<String>, source: std::io::Error) -> Self {
        Error { netns: Some(path.into()), ..Error::io(what, source) }
    }

    /// Not available on this platform.
    #[cfg(any(not(target_os = "linux"), test))] // Linux has every source and namespaces
    pub(crate) fn unsupported(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Unsupported, message)
    }

    /// A source asked for explicitly cannot be used now.
    #[cfg(any(target_os = "linux", test))] // NetworkManager exists only on Linux
    pub(crate) fn unavailable(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::SourceUnavailable, message)
    }

    /// The monitor or a source has stopped.
    pub(crate) fn stopped(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Stopped, message)
    }

    /// The same error with another kind (the text does not change).
    #[cfg(any(target_os = "linux", test))] // namespaces exist only on Linux
    pub(crate) fn with_kind(self, kind: ErrorKind) -> Self {
        Error { kind, ..self }
    }

    /// Gives an error with an OS error the kind that OS error says.
    fn classified(self) -> Self {
        let kind = match self.source.as_ref().map(std::io::Error::kind) {
            Some(std::io::ErrorKind::NotFound) => ErrorKind::NotFound,
            Some(std::io::ErrorKind::PermissionDenied) => ErrorKind::PermissionDenied,
            Some(std::io::ErrorKind::Unsupported) => ErrorKind::Unsupported,
            _ => self.kind,
        };
        Error { kind, ..self }
    }

    /// What kind of failure this is.
    ///
    /// ```
    /// let err = "nm2".parse::<netreach::BackendKind>().unwrap_err();
    /// assert_eq!(err.kind(), netreach::ErrorKind::InvalidInput);
    /// ```
    #[must_use]
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The network namespace the error is about (the name or path given), when it is about one:
    /// it could not be found, opened or entered, or is not a network namespace.
    ///
    /// ```
    /// let err = netreach::Monitor::builder().netns_path("/etc/hostname").build().unwrap_err();
    /// # #[cfg(target_os = "linux")]
    /// assert_eq!(err.netns(), Some(std::path::Path::new("/etc/hostname")));
    /// ```
    #[must_use]
    pub fn netns(&self) -> Option<&Path> {
        self.netns.as_deref()
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(path) = &self.netns {
            write!(f, "network namespace {}: ", path.display())?;
        }
        f.write_str(&self.message)?;
        match &self.source {
            Some(source) => write!(f, ": {source}"),
            None => Ok(()),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_ref().map(|e| e as _)
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ErrorKind::NotFound => "not found",
            ErrorKind::PermissionDenied => "permission denied",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::SourceUnavailable => "source unavailable",
            ErrorKind::Stopped => "stopped",
            ErrorKind::InvalidInput => "invalid input",
            ErrorKind::Io => "I/O error",
        })
    }
}

/// For callers that speak `std::io`: the nearest `io::ErrorKind`, with the whole error inside.
///
/// ```
/// let err = "fast".parse::<netreach::Level>().unwrap_err();
/// let io: std::io::Error = err.into();
/// assert_eq!(io.kind(), std::io::ErrorKind::InvalidInput);
/// ```
impl From<Error> for std::io::Error {
    fn from(e: Error) -> Self {
        let kind = match e.kind {
            ErrorKind::NotFound => std::io::ErrorKind::NotFound,
            ErrorKind::PermissionDenied => std::io::ErrorKind::PermissionDenied,
            ErrorKind::Unsupported => std::io::ErrorKind::Unsupported,
            ErrorKind::InvalidInput => std::io::ErrorKind::InvalidInput,
            ErrorKind::Io => e.source.as_ref().map_or(std::io::ErrorKind::Other, std::io::Error::kind),
            ErrorKind::SourceUnavailable | ErrorKind::Stopped => std::io::ErrorKind::Other,
        };
        std::io::Error::new(kind, e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_errors_give_their_kind_and_keep_the_text() {
        let denied = Error::io("opening netlink sockets", std::io::Error::from_raw_os_error(libc_eperm()));
        assert_eq!(denied.kind(), ErrorKind::PermissionDenied);
        assert!(denied.to_string().starts_with("opening netlink sockets: "), "{denied}");
        let other = Error::io("starting the monitor thread", std::io::Error::other("boom"));
        assert_eq!(other.kind(), ErrorKind::Io);
        assert_eq!(other.to_string(), "starting the monitor thread: boom");
        assert!(std::error::Error::source(&other).is_some());
        let gone = Error::namespace_io("/x", "cannot open", std::io::ErrorKind::NotFound.into());
        assert_eq!((gone.kind(), gone.netns()), (ErrorKind::NotFound, Some(Path::new("/x"))));
        assert!(gone.to_string().starts_with("network namespace /x: cannot open: "), "{gone}");
    }

    #[test]
    fn texts_are_the_messages() {
        let cases = [
            (Error::invalid_input("bad"), ErrorKind::InvalidInput, "bad"),
            (Error::unsupported("no"), ErrorKind::Unsupported, "no"),
            (Error::unavailable("NM is not running"), ErrorKind::SourceUnavailable, "NM is not running"),
            (Error::stopped("the monitor has stopped"), ErrorKind::Stopped, "the monitor has stopped"),
            (
                Error::namespace("a/b", "must be plain").with_kind(ErrorKind::NotFound),
                ErrorKind::NotFound,
                "network namespace a/b: must be plain",
            ),
        ];
        for (error, kind, text) in cases {
            assert_eq!((error.kind(), error.to_string()), (kind, text.to_string()));
        }
        let io: std::io::Error = Error::stopped("gone").into();
        assert_eq!((io.kind(), io.to_string()), (std::io::ErrorKind::Other, "gone".to_string()));
    }

    /// A raw OS error that std maps to `PermissionDenied`: EPERM on Unix, ERROR_ACCESS_DENIED
    /// on Windows (whose raw OS errors are Win32 codes).
    fn libc_eperm() -> i32 {
        if cfg!(windows) {
            5
        } else {
            1
        }
    }
}
