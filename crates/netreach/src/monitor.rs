//! The [`Monitor`] handle and its [`MonitorBuilder`].
//!
//! The handle is thin: building one starts the engine (`crate::engine`), whose thread owns the
//! loop over the OS source; snapshots, subscriptions, callbacks, checks and paths are asked of
//! it. Callbacks run on that thread, in order, outside every lock (so they may call back into
//! the monitor).

use std::path::PathBuf;
use std::sync::{mpsc, Arc};
use std::time::Duration;

use crate::backend::{BackendKind, Netns};
use crate::engine::{self, stopped, Command, Running};
use crate::model::{Error, Event, Snapshot};
use crate::subscription::Subscription;
use crate::sys::{KernelConfig, NetworkManagerConfig};

/// Default bound of each subscriber's queue.
pub const DEFAULT_QUEUE_CAPACITY: usize = 1024;

/// Settings for a [`Monitor`]; build one with [`Monitor::builder`].
///
/// ```no_run
/// let monitor = netreach::Monitor::builder().netns("blue").queue_capacity(256).build()?;
/// # Ok::<(), netreach::Error>(())
/// ```
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `build()`"]
pub struct MonitorBuilder {
    pub(crate) netns: Option<Netns>,
    pub(crate) queue_capacity: usize,
    pub(crate) receive_buffer: Option<usize>,
    pub(crate) probe: Option<crate::probe::ProbeConfig>,
    pub(crate) backend: BackendKind,
    pub(crate) system_bus_address: Option<String>,
    pub(crate) settle: Option<Duration>,
    pub(crate) watch_files: bool,
}

impl Default for MonitorBuilder {
    fn default() -> Self {
        MonitorBuilder {
            netns: None,
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
            receive_buffer: None,
            probe: None,
            backend: BackendKind::Auto,
            system_bus_address: None,
            settle: None,
            watch_files: true,
        }
    }
}

impl MonitorBuilder {
    /// Monitors the namespace `/run/netns/NAME` instead of the caller's; the calling process
    /// does not move into it (entering it needs CAP_SYS_ADMIN).
    pub fn netns(mut self, name: impl Into<String>) -> Self {
        self.netns = Some(Netns::Name(name.into()));
        self
    }

    /// Monitors the namespace behind a namespace file such as `/proc/PID/ns/net`.
    pub fn netns_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.netns = Some(Netns::Path(path.into()));
        self
    }

    /// Bound of each subscriber's queue (default [`DEFAULT_QUEUE_CAPACITY`]; at least 1).
    pub fn queue_capacity(mut self, events: usize) -> Self {
        self.queue_capacity = events.max(1);
        self
    }

    /// Kernel receive buffer of the event socket in bytes (default: the system's). A small
    /// buffer overruns under bursts; the monitor then resyncs (used by the storm test). Only
    /// with the `test-util` feature: a test knob, outside the stable API.
    #[cfg(feature = "test-util")]
    pub fn receive_buffer(mut self, bytes: usize) -> Self {
        self.receive_buffer = Some(bytes);
        self
    }

    /// Runs the connectivity probe ([`crate::probe`]) as a source of this monitor: its verdicts
    /// refine the kernel's levels (source `probe`) and [`Monitor::check`] probes at once. Off
    /// unless called; a config with [`crate::probe::ProbeConfig::enabled`]`(false)` keeps it off.
    /// The probe connects from inside the monitored namespace.
    pub fn probe(mut self, config: crate::probe::ProbeConfig) -> Self {
        self.probe = Some(config);
        self
    }

    /// Which source refines the kernel's view (default [`BackendKind::Auto`]: NetworkManager
    /// when the system bus answers). See [`BackendKind`].
    ///
    /// ```no_run
    /// let monitor = netreach::Monitor::builder().backend(netreach::BackendKind::NetworkManager).build()?;
    /// # Ok::<(), netreach::Error>(())
    /// ```
    pub fn backend(mut self, backend: BackendKind) -> Self {
        self.backend = backend;
        self
    }

    /// D-Bus address of the system bus, e.g. `unix:path=/run/dbus/system_bus_socket` (default:
    /// `DBUS_SYSTEM_BUS_ADDRESS`, else that path).
    ///
    /// ```no_run
    /// let monitor = netreach::Monitor::builder()
    ///     .backend(netreach::BackendKind::NetworkManager)
    ///     .system_bus_address("unix:path=/tmp/sandbox/system_bus_socket")
    ///     .build()?;
    /// # Ok::<(), netreach::Error>(())
    /// ```
    pub fn system_bus_address(mut self, address: impl Into<String>) -> Self {
        self.system_bus_address = Some(address.into());
        self
    }

    /// Passes NetworkManager's values on only once they have held for `window` (default: off,
    /// every value is passed on as it arrives). NM emits transients, e.g. `limited` for a
    /// moment before `portal`; with a window such a value is never reported. NM leaving the
    /// bus and [`Monitor::check`] are never delayed.
    ///
    /// ```no_run
    /// let monitor = netreach::Monitor::builder().settle(std::time::Duration::from_secs(2)).build()?;
    /// # Ok::<(), netreach::Error>(())
    /// ```
    pub fn settle(mut self, window: Duration) -> Self {
        self.settle = Some(window).filter(|w| !w.is_zero());
        self
    }

    /// Whether the monitor watches files for changes (default: yes). On Linux these are the
    /// resolver configuration (`/etc/resolv.conf` and what it leads to: the `dns` of the
    /// state) and, for a namespace given by name, `/run/netns` (its deletion stops the
    /// monitor). With `false` the resolver configuration is read once, when the monitor is
    /// built, and never again, and a deleted namespace goes unnoticed.
    ///
    /// For a monitor made for one reading (`netreach status`, `netreach why`): the watches
    /// are inotify marks, and dropping the last one (or exiting with it) makes the process
    /// wait for the kernel to retire them, a grace period of up to about 15 ms, more than the
    /// whole reading takes. Elsewhere than on Linux there is nothing to watch.
    ///
    /// ```no_run
    /// let monitor = netreach::Monitor::builder().watch_files(false).build()?;
    /// println!("{}", monitor.snapshot().reachability.overall);
    /// # Ok::<(), netreach::Error>(())
    /// ```
    pub fn watch_files(mut self, watch: bool) -> Self {
        self.watch_files = watch;
        self
    }

    /// Starts the monitor: opens the OS source's sockets, reads the initial state, starts the
    /// sources above the kernel and the engine thread. Any failure is returned here; there is
    /// no half-built monitor.
    pub fn build(self) -> Result<Monitor, Error> {
        let engine = engine::start(engine::Config {
            // Linux-only knobs exist only there (see `sys::KernelConfig`); elsewhere they are
            // accepted and have nothing to set.
            kernel: KernelConfig {
                netns: self.netns.clone(),
                #[cfg(target_os = "linux")]
                receive_buffer: self.receive_buffer,
                #[cfg(target_os = "linux")]
                files_read_once: !self.watch_files,
            },
            networkmanager: NetworkManagerConfig {
                backend: self.backend,
                #[cfg(target_os = "linux")]
                other_namespace: self.netns.is_some(),
                #[cfg(target_os = "linux")]
                system_bus_address: self.system_bus_address,
                #[cfg(target_os = "linux")]
                settle: self.settle,
            },
            probe: self.probe,
            queue_capacity: self.queue_capacity,
        })?;
        Ok(Monitor { engine })
    }
}

/// Watches the network and tells subscribers what changed.
///
/// ```no_run
/// use netreach::{EventKind, Monitor};
/// let monitor = Monitor::new()?;
/// println!("now: {}", monitor.snapshot().reachability.overall);
/// let _id = monitor.on_event(|event| {
///     if let EventKind::ReachabilityChanged { family, old, new, .. } = &event.kind {
///         println!("{family:?}: {old} -> {new}");
///     }
/// });
/// # Ok::<(), netreach::Error>(())
/// ```
#[must_use = "dropping a Monitor stops it"]
pub struct Monitor {
    /// Dropping it stops the sources and the engine thread.
    pub(crate) engine: Running,
}

/// Identifies a callback registered with [`Monitor::on_event`], to remove it.
///
/// ```no_run
/// let monitor = netreach::Monitor::new()?;
/// let id = monitor.on_event(|event| println!("{:?}", event.kind));
/// assert!(monitor.remove_callback(id));
/// assert!(!monitor.remove_callback(id)); // already gone
/// # Ok::<(), netreach::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CallbackId(u64);

impl Monitor {
    /// Monitors the caller's own network namespace with default settings.
    pub fn new() -> Result<Monitor, Error> {
        Monitor::builder().build()
    }

    /// Settings for a monitor.
    pub fn builder() -> MonitorBuilder {
        MonitorBuilder::default()
    }

    /// The current state: a shared `Arc`, cheap to take and never waiting for the engine's
    /// route lookups or callbacks.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.engine.shared.snapshot()
    }

    /// Subscribes: the returned [`Subscription`] yields a baseline, then every change.
    pub fn subscribe(&self) -> Subscription {
        self.engine.shared.subscribe()
    }

    /// Calls `callback` with a baseline, then with every change, on the monitor's own thread,
    /// in order and never concurrently. It should return quickly: it delays the next event for
    /// everyone. A callback that panics is removed and an error event says so.
    pub fn on_event<F>(&self, mut callback: F) -> CallbackId
    where
        F: FnMut(&Event) + Send + 'static,
    {
        self.on_events(move |events| events.iter().for_each(&mut callback))
    }

    /// Like [`Monitor::on_event`], but `callback` gets the events in batches: each call holds
    /// one or more whole changes (the events of one change share a timestamp), never part of
    /// one. For writers that want one write per change, such as `netreach watch`. A callback that panics is removed (the rest of
    /// its batch is not delivered) and an error event says so.
    ///
    /// ```no_run
    /// let monitor = netreach::Monitor::new()?;
    /// monitor.on_events(|batch| {
    ///     let lines: Vec<String> = batch.iter().map(|event| format!("{:?}", event.kind)).collect();
    ///     println!("{}", lines.join("\n")); // one write for the whole change
    /// });
    /// # Ok::<(), netreach::Error>(())
    /// ```
    pub fn on_events<F>(&self, callback: F) -> CallbackId
    where
        F: FnMut(&[Event]) + Send + 'static,
    {
        CallbackId(self.engine.shared.add_callback(Box::new(callback)))
    }

    /// Asks every source above the kernel (probe, daemon) for a fresh verdict now, waits for
    /// the answers to be applied, and returns the resulting state. A probe round already in
    /// flight when nothing relevant changed since it started is fresh: `check()` waits for it
    /// rather than sending a second round (so a `check()` right after `build()` probes once).
    ///
    /// On Linux it also asks the kernel to re-verify the gateways the route decision uses
    /// (unicast ARP or neighbour solicitations to a known gateway, a fresh resolution of one
    /// that is unknown or failed; nothing for static entries) and waits until the kernel has
    /// its answer, at most about 4 s; nothing is sent to a gateway without `check()`.
    ///
    /// On Windows it first asks Windows to resolve the default routes' gateways again
    /// (`ResolveIpNetEntry2`: an ARP request or neighbour solicitation each, answered or given
    /// up by Windows within seconds) and waits until their entries are read; nothing is sent
    /// to a gateway without `check()`.
    ///
    /// ```no_run
    /// let monitor = netreach::Monitor::new()?;
    /// let state = monitor.check()?;
    /// println!("{} ({})", state.reachability.overall, state.reachability.source);
    /// # Ok::<(), netreach::Error>(())
    /// ```
    pub fn check(&self) -> Result<Arc<Snapshot>, Error> {
        #[cfg(windows)]
        self.engine.reverify.run()?;
        let refiners = self.engine.shared.refiners();
        for refiner in &refiners {
            refiner.check()?;
        }
        // After the sources: a probe round in flight is joined, not made stale and repeated,
        // by the time the kernel takes to answer.
        #[cfg(target_os = "linux")]
        self.engine.reverify.run()?;
        if !refiners.is_empty() || cfg!(target_os = "linux") {
            // Commands run in order: once this one is answered, the verdicts are applied.
            let (reply, answer) = mpsc::sync_channel(1);
            self.engine.shared.command(Command::Sync(reply))?;
            answer.recv().map_err(|_| stopped())?;
        }
        Ok(self.snapshot())
    }

    /// Removes a callback; returns false if it was not registered (or already removed).
    pub fn remove_callback(&self, id: CallbackId) -> bool {
        self.engine.shared.remove_callback(id.0)
    }
}

impl std::fmt::Debug for Monitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.snapshot();
        f.debug_struct("Monitor")
            .field("reachability", &state.reachability)
            .field("interfaces", &state.interfaces.len())
            .finish_non_exhaustive()
    }
}
