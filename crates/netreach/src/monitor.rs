//! The [`Monitor`]: builder, engine thread, snapshots and subscriptions.
//!
//! One engine thread per monitor runs the OS backend's loop. The backend hands it
//! [`Update`]s; the engine folds them into the state ([`crate::apply`]), re-derives
//! reachability, and publishes the resulting events to every subscriber. Callbacks run on
//! that same thread, in order, outside every lock (so they may call back into the monitor).

use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::backend::BackendKind;
use crate::error::Error;
use crate::event::{apply, diff, reachability_events, Event, EventKind, Update};
use crate::path::{
    check_against_state, touched_by, validate_path, PathId, PathMonitor, PathOwner, PathRegistry, PathShared,
    RouteLookup, Touch,
};
use crate::reachability::Reachability;
use crate::state::NetworkState;
use crate::subscription::{Queue, Subscription};
use crate::sys;
use crate::verdict::{judge, Verdict};

/// Default bound of each subscriber's queue.
pub const DEFAULT_QUEUE_CAPACITY: usize = 1024;

/// Which network namespace to monitor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Netns {
    /// `/run/netns/NAME`, as made by `ip netns add NAME`.
    Name(String),
    /// A namespace file, e.g. `/proc/PID/ns/net`.
    Path(PathBuf),
}

/// Settings for a [`Monitor`]; build one with [`Monitor::builder`].
///
/// ```no_run
/// let monitor = netreach::Monitor::builder().netns("blue").queue_capacity(256).build()?;
/// # Ok::<(), netreach::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct MonitorBuilder {
    pub(crate) netns: Option<Netns>,
    pub(crate) queue_capacity: usize,
    pub(crate) receive_buffer: Option<usize>,
    pub(crate) probe: Option<crate::probe::ProbeConfig>,
    pub(crate) backend: BackendKind,
    pub(crate) system_bus_address: Option<String>,
    pub(crate) settle: Option<Duration>,
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
    /// buffer overruns under bursts; the monitor then resyncs (used by the storm test).
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

    /// Starts the backend: opens its sockets, reads the initial state and starts the engine
    /// thread. Any failure is returned here; there is no half-built monitor.
    pub fn build(self) -> Result<Monitor, Error> {
        let (backend, initial) = sys::start(&self)?;
        let shared = Arc::new(Shared {
            dispatch: Mutex::new(Dispatch::default()),
            state: Mutex::new(StateCell { state: initial, published: None }),
            stopping: AtomicBool::new(false),
            commands: Mutex::new(Some(Vec::new())),
            wake: backend.waker(),
            queue_capacity: self.queue_capacity,
            refiners: Mutex::new(Vec::new()),
        });
        let sink = VerdictSink { shared: Arc::downgrade(&shared) };
        let refiners = self.start_refiners(&sink)?;
        {
            // Verdicts the sources read while starting belong in the first state; then the
            // sources get their first look at it.
            let mut commands = shared.commands.lock().unwrap_or_else(|p| p.into_inner());
            let mut cell = shared.state();
            let mut rest = Vec::new();
            for command in commands.as_mut().map(std::mem::take).unwrap_or_default() {
                match command {
                    Command::Verdict(verdict) => drop(apply(&mut cell.state, Update::Verdict(verdict))),
                    other => rest.push(other),
                }
            }
            *commands = Some(rest);
            drop(commands);
            let kernel;
            (kernel, cell.state.reachability, cell.state.details) = judge(&cell.state);
            refiners.iter().for_each(|r| r.state_changed(&cell.state, &kernel));
        }
        *shared.refiners.lock().unwrap_or_else(|p| p.into_inner()) = refiners;
        let engine = Engine { shared: shared.clone(), paths: PathRegistry::default() };
        let thread = std::thread::Builder::new()
            .name("netreach".into())
            .spawn(move || engine.run(backend))
            .map_err(|e| Error::io("starting the monitor thread", e))?;
        Ok(Monitor { shared, thread: Some(thread) })
    }
}

impl MonitorBuilder {
    /// Starts the sources above the kernel that these settings ask for. Each source's
    /// settings (probe, NetworkManager) add its start here.
    fn start_refiners(&self, sink: &VerdictSink) -> Result<Vec<Arc<dyn Refiner>>, Error> {
        let mut refiners: Vec<Arc<dyn Refiner>> = Vec::new();
        refiners.extend(sys::start_networkmanager(self, sink)?);
        if let Some(config) = self.probe.clone().filter(|c| c.is_enabled()) {
            refiners.push(Arc::new(crate::probe::refiner::ProbeRefiner::start(
                config,
                self.netns.clone(),
                sink.clone(),
            )?));
        }
        Ok(refiners)
    }
}

/// A source above the kernel that the monitor runs (a probe, a daemon's client): it judges
/// connectivity on its own thread and hands [`Verdict`]s to a [`VerdictSink`].
pub(crate) trait Refiner: Send + Sync {
    /// The state changed: `kernel` is the kernel's own reading, before any verdict. Called on
    /// the engine thread with the state locked, after every change: it must return at once
    /// (e.g. signal its own thread when something it cares about changed) and must not call
    /// into the monitor.
    fn state_changed(&self, state: &NetworkState, kernel: &Reachability);
    /// Asks for a fresh verdict and blocks until it has been handed to the sink (or failed). A
    /// verdict being formed on the current state is fresh: joining it is allowed.
    fn check(&self) -> Result<(), Error>;
}

/// Hands verdicts from a source's own thread to the engine. Holds no strong reference: a
/// verdict that arrives after the monitor is gone is dropped harmlessly.
#[derive(Clone)]
pub(crate) struct VerdictSink {
    shared: Weak<Shared>,
}

impl VerdictSink {
    /// Queues `verdict` for the engine; false once the monitor has stopped.
    pub(crate) fn send(&self, verdict: Verdict) -> bool {
        self.shared.upgrade().is_some_and(|shared| shared.command(Command::Verdict(verdict)).is_ok())
    }

    /// Reports a fault the source is recovering from, as a non-fatal error event.
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))] // NetworkManager's bus faults
    pub(crate) fn error(&self, message: String) -> bool {
        self.shared.upgrade().is_some_and(|shared| shared.command(Command::Error(message)).is_ok())
    }
}

/// What a backend runs on the engine thread.
pub(crate) trait Backend: Send + 'static {
    /// A handle that interrupts [`Backend::run`]'s wait from another thread.
    fn waker(&self) -> Arc<dyn Wake>;
    /// Runs until the engine is stopping (`Ok`) or the backend cannot go on (`Err` with a
    /// description, reported to subscribers as a fatal error). When woken and not stopping, it
    /// calls [`Engine::woken`].
    fn run(self: Box<Self>, engine: &mut Engine) -> Result<(), String>;
}

/// Wakes a backend's loop: it then either stops or calls [`Engine::woken`].
pub(crate) trait Wake: Send + Sync {
    fn wake(&self);
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
pub struct Monitor {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

/// Identifies a callback registered with [`Monitor::on_event`].
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

    /// The current state. Cheap when nothing changed since the last call (a shared `Arc`).
    pub fn snapshot(&self) -> Arc<NetworkState> {
        self.shared.state().snapshot()
    }

    /// Subscribes: the returned [`Subscription`] yields a baseline, then every change.
    pub fn subscribe(&self) -> Subscription {
        let queue = Queue::new(self.shared.queue_capacity);
        let mut dispatch = self.shared.dispatch();
        self.shared.greet(&dispatch, &queue);
        dispatch.queues.push(queue.clone());
        Subscription::new(queue)
    }

    /// Calls `callback` with a baseline, then with every change, on the monitor's own thread,
    /// in order and never concurrently. It should return quickly: it delays the next event for
    /// everyone. A callback that panics is removed and an error event says so.
    pub fn on_event<F>(&self, callback: F) -> CallbackId
    where
        F: FnMut(&Event) + Send + 'static,
    {
        let slot = {
            let mut dispatch = self.shared.dispatch();
            dispatch.next_id += 1;
            let slot = Arc::new(CallbackSlot {
                id: CallbackId(dispatch.next_id),
                queue: Queue::new(self.shared.queue_capacity),
                callback: Mutex::new(Box::new(callback)),
            });
            self.shared.greet(&dispatch, &slot.queue);
            dispatch.callbacks.push(slot.clone());
            slot
        };
        self.shared.wake.wake(); // the engine thread delivers the baseline
        slot.id
    }

    /// Asks every source above the kernel (probe, daemon) for a fresh verdict now, waits for
    /// the answers to be applied, and returns the resulting state. With no such source the
    /// kernel's view is always current and is returned at once. A probe round already in
    /// flight when nothing relevant changed since it started is fresh: `check()` waits for it
    /// rather than sending a second round (so a `check()` right after `build()` probes once).
    ///
    /// ```no_run
    /// let monitor = netreach::Monitor::new()?;
    /// let state = monitor.check()?;
    /// println!("{} ({})", state.reachability.overall, state.reachability.source);
    /// # Ok::<(), netreach::Error>(())
    /// ```
    pub fn check(&self) -> Result<Arc<NetworkState>, Error> {
        let refiners = self.shared.refiners.lock().unwrap_or_else(|p| p.into_inner()).clone();
        for refiner in &refiners {
            refiner.check()?;
        }
        if !refiners.is_empty() {
            // Commands run in order: once this one is answered, the verdicts are applied.
            let (reply, answer) = mpsc::sync_channel(1);
            self.shared.command(Command::Sync(reply))?;
            answer.recv().map_err(|_| stopped())?;
        }
        Ok(self.snapshot())
    }

    /// Removes a callback; returns false if it was not registered (or already removed).
    pub fn remove_callback(&self, id: CallbackId) -> bool {
        let mut dispatch = self.shared.dispatch();
        let before = dispatch.callbacks.len();
        dispatch.callbacks.retain(|c| c.id != id);
        before != dispatch.callbacks.len()
    }
}

impl Monitor {
    /// Watches the path from `local` to `remote`: whether a connection between them can still
    /// work, and the moment that changes. See [`PathMonitor`] for the rule. Fails with a
    /// clear error for unspecified, loopback, multicast or broadcast addresses, mixed
    /// families, or a local address no interface owns.
    ///
    /// ```no_run
    /// let monitor = netreach::Monitor::new()?;
    /// let path = monitor.watch_path("192.0.2.10".parse().unwrap(), "198.51.100.1".parse().unwrap())?;
    /// println!("{}", if path.is_reachable() { "reachable" } else { "unreachable" });
    /// # Ok::<(), netreach::Error>(())
    /// ```
    pub fn watch_path(&self, local: IpAddr, remote: IpAddr) -> Result<PathMonitor, Error> {
        let (local, remote) = validate_path(local, remote)?;
        check_against_state(&self.snapshot(), local, remote)?;
        let (reply, answer) = mpsc::sync_channel(1);
        self.shared.command(Command::AddPath { local, remote, reply })?;
        let (id, shared) = answer.recv().map_err(|_| stopped())?;
        let owner: Arc<dyn PathOwner> = self.shared.clone();
        Ok(PathMonitor { id, shared, owner: Arc::downgrade(&owner) })
    }

    /// Watches the path between two socket addresses (ports are ignored).
    pub fn watch_socket_addrs(&self, local: SocketAddr, remote: SocketAddr) -> Result<PathMonitor, Error> {
        self.watch_path(local.ip(), remote.ip())
    }

    /// Watches the path of a connected TCP stream (its local and peer addresses).
    pub fn watch_tcp(&self, stream: &TcpStream) -> Result<PathMonitor, Error> {
        let ends = stream.local_addr().and_then(|l| stream.peer_addr().map(|r| (l, r)));
        let (local, remote) = ends.map_err(|e| Error::io("reading the TCP stream's addresses", e))?;
        self.watch_socket_addrs(local, remote)
    }

    /// Watches the path of a connected UDP socket (its local and peer addresses).
    pub fn watch_udp(&self, socket: &UdpSocket) -> Result<PathMonitor, Error> {
        let ends = socket.local_addr().and_then(|l| socket.peer_addr().map(|r| (l, r)));
        let (local, remote) =
            ends.map_err(|e| Error::io("reading the UDP socket's addresses (it must be connected)", e))?;
        self.watch_socket_addrs(local, remote)
    }
}

fn stopped() -> Error {
    Error::io("watching a path", std::io::Error::other("the monitor has stopped"))
}

impl PathOwner for Shared {
    fn forget(&self, id: PathId) {
        let _ = self.command(Command::RemovePath(id)); // fails only once the engine stopped
    }

    fn report(&self, message: String) {
        let _ = self.command(Command::Error(message)); // nobody to tell once the engine stopped
    }
}

/// Work for the engine thread, which owns the sockets that path evaluation needs.
enum Command {
    AddPath {
        local: IpAddr,
        remote: IpAddr,
        reply: mpsc::SyncSender<(PathId, Arc<PathShared>)>,
    },
    RemovePath(PathId),
    /// A source's verdict, from its own thread.
    Verdict(Verdict),
    /// A non-fatal fault from another thread (a source's, a path callback's panic).
    Error(String),
    /// Answered once every earlier command has run.
    Sync(mpsc::SyncSender<()>),
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

impl Drop for Monitor {
    fn drop(&mut self) {
        // Sources first: their threads end before the engine they report to.
        drop(std::mem::take(&mut *self.shared.refiners.lock().unwrap_or_else(|p| p.into_inner())));
        self.shared.stopping.store(true, Ordering::SeqCst);
        self.shared.wake.wake();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join(); // the engine catches its own panics
        }
    }
}

/// A user callback (see [`Monitor::on_event`]).
type Callback = Box<dyn FnMut(&Event) + Send>;

struct CallbackSlot {
    id: CallbackId,
    queue: Arc<Queue>,
    callback: Mutex<Callback>,
}

#[derive(Default)]
struct Dispatch {
    queues: Vec<Arc<Queue>>,
    callbacks: Vec<Arc<CallbackSlot>>,
    next_id: u64,
    /// Set when the engine stopped; with the fatal error if there was one.
    stopped: Option<Option<String>>,
}

struct StateCell {
    state: NetworkState,
    /// The last snapshot handed out, while still current.
    published: Option<Arc<NetworkState>>,
}

impl StateCell {
    fn snapshot(&mut self) -> Arc<NetworkState> {
        self.published.get_or_insert_with(|| Arc::new(self.state.clone())).clone()
    }
}

/// State shared by the [`Monitor`] handle and its engine thread. Lock order: dispatch, then
/// state.
struct Shared {
    dispatch: Mutex<Dispatch>,
    state: Mutex<StateCell>,
    stopping: AtomicBool,
    /// Pending work for the engine thread; `None` once it has stopped.
    commands: Mutex<Option<Vec<Command>>>,
    wake: Arc<dyn Wake>,
    queue_capacity: usize,
    /// Sources above the kernel; emptied (and so stopped) when the monitor drops.
    refiners: Mutex<Vec<Arc<dyn Refiner>>>,
}

impl Shared {
    /// Queues work for the engine thread and wakes it.
    fn command(&self, command: Command) -> Result<(), Error> {
        let mut commands = self.commands.lock().unwrap_or_else(|p| p.into_inner());
        commands.as_mut().ok_or_else(stopped)?.push(command);
        drop(commands);
        self.wake.wake();
        Ok(())
    }

    fn dispatch(&self) -> MutexGuard<'_, Dispatch> {
        // Callbacks run outside this lock, so a poisoned lock means a bug in netreach itself
        // mid-push; the data (lists of queues) is still consistent.
        self.dispatch.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn state(&self) -> MutexGuard<'_, StateCell> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Gives a new subscriber its baseline (and the end, if the monitor already stopped).
    /// Called with the dispatch lock held so no event can slip between baseline and stream.
    fn greet(&self, dispatch: &Dispatch, queue: &Queue) {
        let state = self.state().snapshot();
        let mut greeting = vec![Event::now(EventKind::Baseline { state: state.clone() })];
        if let Some(Some(message)) = &dispatch.stopped {
            greeting.push(Event::now(EventKind::Error { message: message.clone(), fatal: true }));
        }
        queue.push(&greeting, &|| EventKind::Baseline { state: state.clone() });
        if dispatch.stopped.is_some() {
            queue.close();
        }
    }
}

/// The engine side: what a backend calls from the engine thread.
pub(crate) struct Engine {
    shared: Arc<Shared>,
    paths: PathRegistry,
}

impl Engine {
    /// True once the monitor is being dropped.
    pub(crate) fn stopping(&self) -> bool {
        self.shared.stopping.load(Ordering::SeqCst)
    }

    /// Folds one backend update into the state, publishes what changed, and re-evaluates the
    /// paths it touches (asking `lookup` for routes).
    pub(crate) fn update(&mut self, update: Update, lookup: &mut dyn RouteLookup) {
        let touch = touched_by(&update);
        // Routes other than default ones are not state: only path monitors care about them.
        let changed = matches!(update, Update::RouteChanged(..)) || self.change(|state| apply(state, update));
        if changed {
            self.react(touch, lookup);
        }
    }

    fn react(&mut self, touch: Touch, lookup: &mut dyn RouteLookup) {
        if self.paths.len() > 0 {
            // On a snapshot: route lookups and path callbacks run outside the state lock.
            let state = self.shared.state().snapshot();
            self.paths.react(&state, touch, lookup);
        }
    }

    /// Replaces the whole state with a fresh reading and publishes exactly what differed,
    /// followed by a [`EventKind::Resynced`] notice; every path is re-evaluated.
    #[cfg_attr(windows, allow(dead_code))] // Windows re-reads on notifications; it never overruns
    pub(crate) fn resync(&mut self, fresh: NetworkState, reason: String, lookup: &mut dyn RouteLookup) {
        self.replace(fresh, Some(reason), lookup);
    }

    /// Replaces the whole state with a fresh reading and publishes exactly what differed, as
    /// ordinary changes: for backends whose OS says "something changed, read again" (Windows'
    /// IP Helper notifications; Linux after a reading pieced together during churn). Paths are
    /// re-evaluated when something did change.
    pub(crate) fn reread(&mut self, fresh: NetworkState, lookup: &mut dyn RouteLookup) {
        self.replace(fresh, None, lookup);
    }

    /// Re-evaluates the paths on one interface: the OS's verdict on its connection changed
    /// (Windows' per-connection NLM connectivity), not the state.
    #[cfg_attr(not(windows), allow(dead_code))]
    pub(crate) fn recheck_interface(&mut self, index: u32, lookup: &mut dyn RouteLookup) {
        self.react(Touch::Interface(index), lookup);
    }

    fn replace(&mut self, fresh: NetworkState, resynced: Option<String>, lookup: &mut dyn RouteLookup) {
        let changed = self.change(|state| {
            let mut events = diff(state, &fresh);
            let (reachability, details) = (state.reachability, std::mem::take(&mut state.details));
            let verdicts = std::mem::take(&mut state.verdicts);
            *state = fresh;
            // Verdicts come from other sources than the kernel re-read; reachability and
            // details are re-derived (and diffed) by `change`.
            (state.reachability, state.details, state.verdicts) = (reachability, details, verdicts);
            if let Some(reason) = resynced {
                let changes = events.len();
                events.push(EventKind::Resynced { reason, changes });
            }
            events
        });
        if changed {
            self.react(Touch::All, lookup);
        }
    }

    /// Called by the backend when woken and not stopping: runs queued commands, then delivers
    /// pending callbacks.
    pub(crate) fn woken(&mut self, lookup: &mut dyn RouteLookup) {
        let commands = {
            let mut commands = self.shared.commands.lock().unwrap_or_else(|p| p.into_inner());
            commands.as_mut().map(std::mem::take).unwrap_or_default()
        };
        for command in commands {
            match command {
                Command::AddPath { local, remote, reply } => {
                    let cell = self.shared.state();
                    let added = self.paths.add(&cell.state, local, remote, self.shared.queue_capacity, lookup);
                    drop(cell);
                    if reply.send(added.clone()).is_err() {
                        self.paths.remove(added.0); // the caller gave up waiting
                    }
                }
                Command::RemovePath(id) => self.paths.remove(id),
                Command::Verdict(verdict) => self.update(Update::Verdict(verdict), lookup),
                Command::Error(message) => self.error(message),
                Command::Sync(reply) => {
                    let _ = reply.send(()); // the caller may have given up
                }
            }
        }
        self.deliver_callbacks();
    }

    /// Reports a fault. Non-fatal faults are being recovered from by the backend.
    pub(crate) fn error(&self, message: String) {
        self.publish(vec![EventKind::Error { message, fatal: false }]);
    }

    /// Applies `f` to the state; publishes its events plus any reachability change. Returns
    /// whether anything changed.
    fn change(&self, f: impl FnOnce(&mut NetworkState) -> Vec<EventKind>) -> bool {
        {
            let mut dispatch = self.shared.dispatch();
            let events = {
                let mut cell = self.shared.state();
                let mut events = f(&mut cell.state);
                if events.is_empty() {
                    return false;
                }
                let (kernel, reachability, details) = judge(&cell.state);
                // Reachability events go before a resync notice, which closes the batch.
                let at = events.iter().position(|e| matches!(e, EventKind::Resynced { .. })).unwrap_or(events.len());
                let mut changed = reachability_events(&cell.state.reachability, &reachability);
                if details != cell.state.details {
                    changed
                        .push(EventKind::DetailsChanged { before: cell.state.details.clone(), after: details.clone() });
                }
                events.splice(at..at, changed);
                cell.state.reachability = reachability;
                cell.state.details = details;
                cell.published = None;
                for refiner in self.shared.refiners.lock().unwrap_or_else(|p| p.into_inner()).iter() {
                    refiner.state_changed(&cell.state, &kernel);
                }
                events
            };
            self.push(&mut dispatch, events);
        }
        self.deliver_callbacks();
        true
    }

    fn publish(&self, events: Vec<EventKind>) {
        self.push(&mut self.shared.dispatch(), events);
        self.deliver_callbacks();
    }

    fn push(&self, dispatch: &mut Dispatch, events: Vec<EventKind>) {
        let now = std::time::SystemTime::now();
        let batch: Vec<Event> = events.into_iter().map(|kind| Event { timestamp: now, kind }).collect();
        let baseline = || EventKind::Baseline { state: self.shared.state().snapshot() };
        dispatch.queues.retain(|q| q.push(&batch, &baseline));
        dispatch.callbacks.retain(|c| c.queue.push(&batch, &baseline));
    }

    /// Runs callbacks for everything queued for them, outside every lock.
    pub(crate) fn deliver_callbacks(&self) {
        let callbacks = self.shared.dispatch().callbacks.clone();
        let mut panicked = Vec::new();
        for slot in callbacks {
            let mut callback = slot.callback.lock().unwrap_or_else(|p| p.into_inner());
            for event in slot.queue.drain() {
                if catch_unwind(AssertUnwindSafe(|| callback(&event))).is_err() {
                    panicked.push(slot.id);
                    break;
                }
            }
        }
        for id in panicked {
            self.shared.dispatch().callbacks.retain(|c| c.id != id);
            self.publish(vec![EventKind::Error {
                message: format!("callback {} panicked and was removed", id.0),
                fatal: false,
            }]);
        }
    }

    fn run(mut self, backend: Box<dyn Backend>) {
        let outcome = match catch_unwind(AssertUnwindSafe(|| backend.run(&mut self))) {
            Ok(outcome) => outcome,
            Err(panic) => Err(format!(
                "internal error: the monitor thread panicked ({})",
                panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default()
            )),
        };
        let fatal = outcome.err();
        if let Some(message) = &fatal {
            self.publish(vec![EventKind::Error { message: message.clone(), fatal: true }]);
        }
        // Pending path requests fail (their reply channels drop); new ones are refused.
        self.shared.commands.lock().unwrap_or_else(|p| p.into_inner()).take();
        self.paths.close_all();
        let mut dispatch = self.shared.dispatch();
        dispatch.stopped = Some(fatal);
        for q in &dispatch.queues {
            q.close();
        }
        dispatch.callbacks.clear();
    }
}
