//! # netreach
//!
//! Is this machine online, how, and the moment that changes.
//!
//! A [`Monitor`] reads the kernel's interfaces, addresses and default routes (on Linux over
//! rtnetlink, with no daemon and no root), derives Qt-style reachability levels per address
//! family ([`Level`]: `unknown`, `disconnected`, `local`, `site`, `online`; see
//! [`reachability`] for the table), and tells subscribers every change: as a callback, a
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
//! Data flows one way: OS sources produce [`Update`]s; the engine folds them into a
//! [`NetworkState`] with [`apply`], re-derives reachability, and publishes [`Event`]s.
//! The thinking is in pure functions ([`apply`], [`diff`], [`derive_kernel_reachability`]).
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

mod backend;
mod error;
mod event;
mod monitor;
/// Windows' Network List Manager and IP Helper vocabulary mapped onto netreach's (pure; on every
/// platform, so its tables are tested everywhere).
#[path = "sys/windows/nlm.rs"]
pub mod nlm;
mod path;
pub mod probe;
pub mod reachability;
mod state;
mod subscription;
mod sys;
pub mod verdict;

pub use backend::BackendKind;
pub use error::Error;
pub use event::{apply, diff, reachability_events, Event, EventKind, ReachabilityOf, Update};
pub use monitor::{CallbackId, Monitor, MonitorBuilder, Netns, DEFAULT_QUEUE_CAPACITY};
pub use path::{
    validate_path, PathCallbackId, PathEvent, PathEventKind, PathMonitor, PathState, PathStatus, Unreachable,
};
pub use reachability::{derive_kernel_reachability, FamilyReachability, Level, Reachability, Source};
pub use state::{
    Address, AddressFlags, AddressScope, DefaultRoute, Family, Interface, InterfaceKind, NetworkState, OperState,
};
pub use subscription::{RecvError, Subscription};
pub use verdict::{derive, refine, Details, Transport, Verdict};
