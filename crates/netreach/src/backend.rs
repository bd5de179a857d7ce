//! Which sources a monitor uses besides the kernel, and which network namespace it follows:
//! plain settings, below both the engine and the OS sources that read them.

use std::path::PathBuf;

/// Which backend a [`crate::Monitor`] uses on top of the kernel's own view (see
/// [`crate::MonitorBuilder::backend`]).
///
/// ```
/// use netreach::BackendKind;
/// assert_eq!("networkmanager".parse::<BackendKind>().unwrap(), BackendKind::NetworkManager);
/// assert_eq!(BackendKind::default(), BackendKind::Auto);
/// assert!("nm2".parse::<BackendKind>().unwrap_err().to_string().contains("auto, kernel, networkmanager"));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BackendKind {
    /// NetworkManager when the system bus answers (following NM as it comes and goes), else
    /// the kernel alone. Only for the caller's own network namespace: NM speaks for the
    /// namespace it runs in. Costs one failed `connect()` when there is no system bus.
    #[default]
    Auto,
    /// The kernel alone (plus the probe, if configured).
    Kernel,
    /// NetworkManager on top of the kernel: building the monitor fails, naming the problem,
    /// when the system bus does not answer or NM does not own its name on it. Linux only.
    NetworkManager,
}

impl std::str::FromStr for BackendKind {
    type Err = crate::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(BackendKind::Auto),
            "kernel" => Ok(BackendKind::Kernel),
            "networkmanager" | "nm" => Ok(BackendKind::NetworkManager),
            _ => Err(crate::Error::invalid_input(format!(
                "unknown backend {s:?}: expected one of auto, kernel, networkmanager"
            ))),
        }
    }
}

impl std::fmt::Display for BackendKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BackendKind::Auto => "auto",
            BackendKind::Kernel => "kernel",
            BackendKind::NetworkManager => "networkmanager",
        })
    }
}

/// Which network namespace to monitor (see [`crate::MonitorBuilder::netns`]).
///
/// ```
/// let blue = netreach::Netns::Name("blue".into());
/// assert_ne!(blue, netreach::Netns::Path("/proc/1/ns/net".into()));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Netns {
    /// `/run/netns/NAME`, as made by `ip netns add NAME`.
    Name(String),
    /// A namespace file, e.g. `/proc/PID/ns/net`.
    Path(PathBuf),
}
