//! # netreach
//!
//! Is this machine online, how, and the moment that changes.
//!
//! A [`Monitor`] reads the kernel's interfaces, addresses and default routes (on Linux over
//! rtnetlink, with no daemon and no root), derives Qt-style reachability levels per address
//! family ([`Level`]: `unknown`, `disconnected`, `local`, `site`, `online`; see
//! [`derive_kernel_reachability`] for the table), and tells subscribers every change: as a callback, a
//! blocking receiver, or a [`futures_core::Stream`], with no async runtime required.
//!
//! ```no_run
//! use netreach::{EventKind, Monitor};
//!
//! let monitor = Monitor::new()?;
//! let state = monitor.snapshot();
//! println!("{} (ipv4 {}, ipv6 {})", state.reachability.overall,
//!          state.reachability.ipv4.reachability, state.reachability.ipv6.reachability);
//!
//! for event in monitor.subscribe().iter() {
//!     if let EventKind::ReachabilityChanged { family, old, new, .. } = event.kind {
//!         println!("{family:?}: {old} -> {new}");
//!     }
//! }
//! # Ok::<(), netreach::Error>(())
//! ```
//!
//! Data flows one way: OS sources produce [`Update`]s; the engine folds them into the observed
//! [`NetworkState`] with [`apply`], derives the levels, details and reasons from it
//! ([`derive()`], giving the [`Snapshot`] that [`Monitor::snapshot`] hands out), and publishes
//! [`Event`]s.
//! The thinking is in pure functions ([`apply`], [`diff`], [`derive_kernel_reachability`],
//! [`refine()`]). Sources above the kernel (the HTTP [`probe`], NetworkManager, Windows' Network
//! List Manager) hand in [`Verdict`]s that confirm or lower the kernel's levels.
//!
//! ## Errors
//!
//! Everything that can fail before a monitor runs returns [`Result`], whose [`Error`] has an
//! [`ErrorKind`] to match on (not found, permission denied, unsupported, source unavailable,
//! stopped, invalid input, I/O). Faults while a monitor runs are [`EventKind::Error`] events.
//!
//! ## Per-connection paths
//!
//! [`Monitor::watch_path`] (and `watch_tcp`, `watch_udp`, `watch_socket_addrs`,
//! `watch_path_with`) gives a [`PathMonitor`]: is one connection's path, local address ->
//! remote address, still alive, judged as the kernel judges that connection's socket (its
//! link for IPv6 link-local ends, its mark and owner: [`PathOptions`])?
//! The rule is Qt's `QNetworkConnectionMonitor`'s, made concrete: the remote's family decides
//! (IPv4-mapped IPv6 counts as IPv4); a remote inside the local address's subnet needs only the
//! path to that subnet, any other remote a route out. The path is unreachable, with the first
//! [`Unreachable`] reason that applies in the order of its variants, when the local address is
//! gone, DAD-failed or tentative, its interface is down or has no carrier, the kernel has no
//! route to the remote from that source, or the kernel's route now leaves through another
//! interface (on Windows also when the Network List Manager says the connection cannot carry
//! it). The route is asked of the kernel (like `ip route get REMOTE from LOCAL`) whenever a
//! route covering the remote, the interface or the local address changes; routing tables are
//! never mirrored, and many paths share one monitor and its sockets.
//!
//! ## Strings from outside are kept exact
//!
//! Interface names, portal URLs, HTTP reasons, NetworkManager and Windows strings, and the
//! error messages and `Display` output that quote them ([`Error`], [`Unreachable`],
//! [`probe::Outcome`], [`EventKind::Error`], [`Verdict::note`]) hold exactly what the kernel, a
//! server or a daemon said, and are **not escaped for a terminal**: they may contain control
//! characters, C1 controls (e.g. U+009B, a terminal's CSI) or bidi overrides. Only the caller
//! knows where text goes (a log, JSON, a GUI, a terminal), so escaping is the printer's job;
//! escape before writing them to a terminal, as the `netreach` CLI does.
#![warn(missing_docs)]

mod arbitrate;
mod backend;
mod diagnose;
mod engine;
mod fold;
mod model;
mod monitor;
mod monitor_paths;
/// Windows' Network List Manager and IP Helper vocabulary mapped onto netreach's: pure, so its
/// tables are tested on every platform, but crate-private (Windows SDK numbers are no part of
/// the API).
#[cfg(any(windows, test))]
#[path = "sys/windows/nlm.rs"]
mod nlm;
mod path;
pub mod probe;
mod reachability;
mod refine;
/// IP Helper's rows (adapters, addresses, routes, interface metrics) as plain values and what
/// they mean: pure, tested on every platform like `nlm`.
#[cfg(any(windows, test))]
#[path = "sys/windows/rows.rs"]
mod rows;
mod subscription;
mod sys;

pub use backend::{BackendKind, Netns};
pub use diagnose::{diagnose, diagnosis_events};
pub use fold::{apply, diff, reachability_events};
pub use model::{
    Address, AddressFlags, AddressScope, DefaultRoute, Details, DnsConfig, DnsManager, DnsOrigin, Error, ErrorKind,
    Event, EventKind, Family, FamilyReachability, Interface, InterfaceKind, Level, Nameserver, NetworkState, OperState,
    PathEvent, PathEventKind, PathOptions, PathState, PathStatus, ProbeMeasurement, Reachability, ReachabilityOf,
    Result, Snapshot, Source, Transport, Unreachable, Update, Verdict,
};
pub use model::{ArbitrationRule, Disagreement, Subject};
pub use model::{
    Diagnosis, FamilyDiagnosis, Finding, Layer, LayerCheck, LayerStatus, NameserverAnswer, NameserverRoute,
};
pub use model::{Fallback, KernelRoute, Nexthop, Reason, Reasons, Reject, RouteAnswer, RouteDecision};
pub use model::{GatewayNeighbour, NeighbourState};
pub use monitor::{CallbackId, Monitor, MonitorBuilder, DEFAULT_QUEUE_CAPACITY};
pub use path::{validate_path, PathCallbackId, PathMonitor};
pub use reachability::{derive_kernel_reachability, derive_reasons};
pub use refine::{derive, refine};
pub use subscription::{RecvError, Subscription};
