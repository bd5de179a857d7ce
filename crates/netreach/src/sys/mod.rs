//! Operating-system sources: the leaves of the crate.
//!
//! # Contract
//!
//! A *source* waits for input from the operating system and translates it into plain
//! [`Input`]s. It holds no policy: it does not fold, derive, publish or decide anything about
//! paths; the engine (`engine/`) does all of that and owns the one loop.
//!
//! - **Imports.** Only plain data types from below (state, updates, verdicts, levels, errors),
//!   the [`RouteLookup`](crate::path::RouteLookup) contract it answers, and the small
//!   configs defined here ([`KernelConfig`], [`NetworkManagerConfig`]) that the builder fills.
//!   Never the engine, the builder or the `Monitor` handle: a source cannot call back up.
//! - **One implementation per OS**, chosen statically: [`Kernel`] and [`Waker`] name this
//!   platform's types (rtnetlink on Linux, IP Helper + Network List Manager on Windows). No
//!   trait object for it.
//! - **The kernel source** is opened by `Kernel::open(&KernelConfig)`, which returns it with
//!   its first reading of the state, or the error (there is no half-open source). The engine's
//!   thread then owns it and calls `Kernel::next()`, which blocks until there is input and
//!   returns one [`Input`] (a batch of updates counts as one); inputs are handled in the order
//!   returned. Between calls the engine asks it route lookups (`Kernel` implements
//!   `RouteLookup`) on the same thread, never concurrently with `next()`. `Kernel::busy()`
//!   says whether `next()` has input at hand or work of its own due that needs no waiting
//!   (Linux asks the kernel's route decision again right after handing over the change that
//!   made it due): lookups the engine makes after changes (the nameservers' routes) wait until
//!   it is not, so one change asks them once.
//! - **Waking.** `Kernel::waker()` gives a [`Waker`] that any thread may call: the blocked
//!   `next()` then returns [`Input::Woken`] promptly, even during a storm or a reconnect
//!   backoff. The engine then runs its commands or, when the monitor is being dropped, stops
//!   calling `next()` and drops the source.
//! - **Errors.** Problems the source recovers from (a socket reopened with backoff, an
//!   undecodable message, a failed re-read) are reported as [`Input::Fault`], and state that
//!   may have been missed is re-read and reported as [`Input::Reread`]. An error it cannot
//!   recover from (e.g. the monitored namespace was deleted) is `next()`'s `Err`, a sentence
//!   for people; the engine reports it as fatal and calls `next()` no more.
//! - **Shutdown.** Dropping the source releases everything it holds (sockets, registrations,
//!   COM sinks, threads), on the engine's thread.
//!
//! Sources *above* the kernel that live here because they speak an OS service (NetworkManager
//! over D-Bus) run their own thread and report through an [`InputSink`] the engine hands them;
//! the same rules apply: plain inputs out, no engine types in.

#[cfg(target_os = "linux")]
pub(crate) mod linux;
#[cfg(target_os = "linux")]
pub(crate) use linux::networkmanager::{start as start_networkmanager, NetworkManager};
#[cfg(target_os = "linux")]
pub(crate) use linux::{enter_netns, socket_options, Kernel, Reverify, Waker};

#[cfg(windows)]
pub(crate) mod windows;
#[cfg(windows)]
pub(crate) use windows::{Kernel, Reverify, Waker};

#[cfg(not(any(target_os = "linux", windows)))]
mod unsupported;
#[cfg(not(any(target_os = "linux", windows)))]
pub(crate) use unsupported::{Kernel, Waker};

#[cfg(not(target_os = "linux"))]
mod elsewhere;
#[cfg(not(target_os = "linux"))]
pub(crate) use elsewhere::{enter_netns, start_networkmanager, NetworkManager};

#[cfg(target_os = "linux")]
use std::time::Duration;

use crate::backend::{BackendKind, Netns};
use crate::model::{NetworkState, ProbeMeasurement, Update, Verdict};

/// What a source hands the engine.
#[derive(Debug)]
pub(crate) enum Input {
    /// Incremental changes, in the order the OS reported them.
    Updates(Vec<Update>),
    /// The verdict of a source above the kernel (NetworkManager, the probe), from its thread.
    /// (Windows' NLM verdict comes with the kernel source's readings, as an update.)
    Verdict(Verdict),
    /// What a probe round measured (from the probe's thread), published as it is.
    Measured(Vec<ProbeMeasurement>),
    /// A full fresh reading of the kernel's state, to be diffed against the current one.
    Reread {
        /// Boxed: a whole state is large next to the other inputs, and rare.
        state: Box<NetworkState>,
        /// `Some(reason)` when changes may have been lost (an overrun, reopened sockets): the
        /// engine then publishes a `Resynced` notice and re-evaluates every path. `None` for
        /// an OS that says "something changed, read again" (Windows' IP Helper) and for the
        /// quiet re-read after a reading pieced together during churn.
        resync: Option<String>,
    },
    /// The OS's own verdict on one interface's connection changed (Windows' per-connection
    /// NLM connectivity, which its route lookups answer): paths there are judged again. Only
    /// Windows judges connections.
    #[cfg(windows)]
    InterfaceHint(u32),
    /// A fault the source is recovering from; reported as a non-fatal error event.
    Fault(String),
    /// The [`Waker`] was called: the handle has commands, or the monitor is stopping.
    Woken,
}

/// Where a source with its own thread (NetworkManager, the probe) hands its inputs.
/// Implemented by the engine; it holds no strong reference to the monitor.
pub(crate) trait InputSink: Send + Sync {
    /// Queues `input` for the engine; false once the monitor has stopped.
    fn send(&self, input: Input) -> bool;
}

/// What the kernel source needs to know; filled by the builder. Knobs only one OS has exist
/// only there, so no source carries settings it ignores.
#[derive(Debug, Clone, Default)]
pub(crate) struct KernelConfig {
    /// Another network namespace to follow (Linux only; elsewhere opening fails).
    pub netns: Option<Netns>,
    /// SO_RCVBUF of the netlink event socket. Windows has no such buffer: its notifications
    /// are callbacks that say "read again", which cannot overrun.
    #[cfg(target_os = "linux")]
    pub receive_buffer: Option<usize>,
    /// Read the files the state depends on (the resolver configuration) once and watch none
    /// (`MonitorBuilder::watch_files(false)`); `false`, the default, watches them.
    #[cfg(target_os = "linux")]
    pub files_read_once: bool,
}

/// What the NetworkManager source needs to know; filled by the builder. Elsewhere than on
/// Linux only the backend asked for matters (`networkmanager` is an error there).
#[derive(Debug, Clone, Default)]
pub(crate) struct NetworkManagerConfig {
    pub backend: BackendKind,
    /// Whether another namespace than the caller's is monitored (NM speaks only for its own).
    #[cfg(target_os = "linux")]
    pub other_namespace: bool,
    #[cfg(target_os = "linux")]
    pub system_bus_address: Option<String>,
    #[cfg(target_os = "linux")]
    pub settle: Option<Duration>,
}
