//! The engine: one thread per monitor owns the loop.
//!
//! It asks the OS source ([`sys::Kernel`], a leaf; see the contract in `sys/mod.rs`) for the
//! next [`Input`], folds it into the state ([`apply`], [`diff`]), re-derives reachability
//! ([`judge`]), publishes the events ([`fanout`]) and re-evaluates the paths the change
//! touched, answering their route lookups with the same source between waits. Sources above
//! the kernel ([`Refiner`]s: the probe, NetworkManager) run their own threads and hand their
//! inputs to a [`Reporter`], which queues them as commands for this loop.
//!
//! The state lock is held only to swap the state: route lookups, refiner notifications and
//! callbacks run on a snapshot (an `Arc` of the state) after it is released, so `snapshot()`
//! never waits for them. Only this thread changes the state, so the snapshot is current.

mod fanout;
mod nameservers;
mod refiner;
mod shared;
#[cfg(test)]
mod tests;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;

pub(crate) use self::refiner::Refiner;
use self::refiner::Reporter;
use self::shared::lock;
pub(crate) use self::shared::{stopped, Command, Shared};
use crate::diagnose::{diagnose, diagnosis_events};
use crate::fold::{apply, diff, reachability_events, reason_events};
use crate::model::{Diagnosis, Error, EventKind, NetworkState, Snapshot, Update};
use crate::path::{touched_by, PathRegistry, RouteLookup, Touch};
use crate::probe::ProbeConfig;
use crate::refine::judge;
use crate::sys::{self, Input, KernelConfig, NetworkManagerConfig};

/// Everything a monitor's engine needs to start; filled by the builder.
pub(crate) struct Config {
    pub kernel: KernelConfig,
    pub networkmanager: NetworkManagerConfig,
    pub probe: Option<ProbeConfig>,
    pub queue_capacity: usize,
}

/// The running engine, owned by the monitor's handle: dropping it stops the sources, then the
/// engine thread, and waits for both.
pub(crate) struct Running {
    pub(crate) shared: Arc<Shared>,
    /// Asks the OS to re-verify the way out's gateways (`Monitor::check()`).
    #[cfg(any(target_os = "linux", windows))]
    pub(crate) reverify: sys::Reverify,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        // Sources first: their threads end before the engine they report to.
        drop(std::mem::take(&mut *lock(&self.shared.refiners)));
        self.shared.stopping.store(true, Ordering::SeqCst);
        self.shared.wake.wake();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join(); // the engine catches its own panics
        }
    }
}

/// Opens the kernel source, starts the sources above it and the engine thread. Any failure is
/// returned here; there is no half-built monitor.
pub(crate) fn start(config: Config) -> Result<Running, Error> {
    let (mut source, mut initial) = sys::Kernel::open(&config.kernel)?;
    source.watch_destinations(&nameservers::addresses(initial.dns.as_ref()));
    initial.nameserver_routes = nameservers::look_up(&mut source, &initial, initial.dns.as_ref());
    #[cfg(any(target_os = "linux", windows))]
    let reverify = source.reverifier();
    let shared = Shared::new(Snapshot { state: initial, ..Snapshot::default() }, source.waker(), config.queue_capacity);
    let refiners = refiner::start(&config, Reporter::sink(&shared))?;
    let (state, kernel) = {
        // Verdicts the sources read while starting belong in the first state.
        let mut commands = lock(&shared.commands);
        let mut cell = lock(&shared.state);
        let snapshot = Arc::make_mut(&mut cell);
        let mut rest = Vec::new();
        for command in commands.as_mut().map(std::mem::take).unwrap_or_default() {
            match command {
                Command::Input(Input::Verdict(verdict)) => drop(apply(&mut snapshot.state, Update::Verdict(verdict))),
                other => rest.push(other),
            }
        }
        *commands = Some(rest);
        let (kernel, reasons);
        (kernel, snapshot.reachability, snapshot.details, reasons) = judge(&snapshot.state);
        *snapshot.reasons = reasons;
        (cell.clone(), kernel)
    };
    // Then the sources get their first look at it.
    refiners.iter().for_each(|r| r.state_changed(&state, &kernel));
    let diagnosis = diagnose(&state);
    drop(state);
    *lock(&shared.refiners) = refiners;
    let engine = Engine { shared: shared.clone(), paths: PathRegistry::default(), diagnosis, nameservers_due: false };
    let thread = std::thread::Builder::new()
        .name("netreach".into())
        .spawn(move || engine.run(source))
        .map_err(|e| Error::io("starting the monitor thread", e))?;
    Ok(Running {
        shared,
        #[cfg(any(target_os = "linux", windows))]
        reverify,
        thread: Some(thread),
    })
}

/// The engine thread's own part.
struct Engine {
    shared: Arc<Shared>,
    paths: PathRegistry,
    /// The diagnosis of the current state, to diff the next one against (derived, so kept
    /// here rather than in the state).
    diagnosis: Diagnosis,
    /// A batch of updates could have moved the nameservers' routes: they are asked again
    /// once the source is idle ([`Engine::refresh_nameservers`]).
    nameservers_due: bool,
}

impl Engine {
    fn run(mut self, mut source: sys::Kernel) {
        let outcome = match catch_unwind(AssertUnwindSafe(|| self.serve(&mut source))) {
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
        drop(source); // sockets, registrations and sinks go before the subscribers hear the end
        let fatal = outcome.err();
        if let Some(message) = &fatal {
            self.shared.publish(vec![EventKind::Error { message: message.clone(), fatal: true }]);
        }
        // Pending path requests fail (their reply channels drop); new ones are refused.
        lock(&self.shared.commands).take();
        self.paths.close_all();
        self.shared.close(fatal);
    }

    /// The loop: until the monitor stops (`Ok`) or the source cannot go on (`Err`).
    fn serve(&mut self, source: &mut sys::Kernel) -> Result<(), String> {
        loop {
            if self.nameservers_due && !source.busy() {
                self.refresh_nameservers(source);
            }
            let input = source.next()?;
            if matches!(input, Input::Woken) && self.shared.stopping.load(Ordering::SeqCst) {
                return Ok(());
            }
            let last_of_change = !source.busy();
            self.handle(input, last_of_change, source);
        }
    }

    /// Handles one input; `last_of_change` when the source had nothing more at hand after it.
    fn handle(&mut self, input: Input, last_of_change: bool, lookup: &mut dyn RouteLookup) {
        match input {
            Input::Updates(updates) => {
                // Asked once the source is idle (see `serve` and nameservers.rs).
                self.nameservers_due |= nameservers::needed(&self.shared.snapshot(), &updates);
                let mut updates = updates.into_iter().peekable();
                while let Some(update) = updates.next() {
                    if !is_decision(&update) {
                        self.update(update, lookup);
                        continue;
                    }
                    // The kernel's decision and the gateway entries that came with it are one
                    // change: folded together, derived and published once.
                    let mut run = vec![update];
                    run.extend(std::iter::from_fn(|| updates.next_if(is_decision)));
                    self.decided(run, last_of_change && updates.peek().is_none(), lookup);
                }
            }
            Input::Verdict(verdict) => self.update(Update::Verdict(verdict), lookup),
            Input::Reread { state, resync } => self.replace(*state, resync, lookup),
            #[cfg(windows)]
            Input::InterfaceHint(index) => self.react(None, Touch::Interface(index), lookup),
            Input::Fault(message) => self.shared.publish(vec![EventKind::Error { message, fatal: false }]),
            Input::Measured(measurements) => self.shared.publish(vec![EventKind::ProbeFinished { measurements }]),
            Input::Woken => self.woken(lookup),
        }
    }

    /// Asks the nameservers' routes again after changes that can move them: once the source
    /// has nothing more at hand (the kernel's route decision that the same change makes it
    /// ask, the rest of a burst), so a change asks them once, after its own events and the
    /// levels it changed are out, and the diagnosis changes once (see nameservers.rs).
    fn refresh_nameservers(&mut self, lookup: &mut dyn RouteLookup) {
        self.nameservers_due = false;
        if let Some(routes) = nameservers::refresh(&self.shared.snapshot(), lookup) {
            self.change_deriving(true, |state| nameservers::set(state, routes));
        }
    }

    /// Folds one update into the state, publishes what changed, and re-evaluates the paths it
    /// touches.
    fn update(&mut self, update: Update, lookup: &mut dyn RouteLookup) {
        let touch = touched_by(&update);
        if matches!(update, Update::RouteChanged(..) | Update::RulesChanged(..)) {
            // Rules and routes other than default ones are not state: only path monitors care
            // about them (and the nameservers' routes, asked after the batch).
            self.react(None, touch, lookup);
        } else if let Some(state) = self.change(|state| apply(&mut Arc::make_mut(state).state, update)) {
            self.react(Some(state), touch, lookup);
        }
    }

    /// Folds the kernel's decision and its gateways' neighbour entries (`run`): they have no
    /// event of their own; what they change is the levels, reasons and diagnosis derived from
    /// them, so the levels are derived even though the fold reports nothing. Then re-evaluates
    /// every path when the decision changed (whatever changed it may have moved them too).
    ///
    /// When `closes_change` (the source had nothing more at hand) and the nameservers' routes
    /// are due, they are asked now and folded into the same change: the diagnosis, whose DNS
    /// layer reads them, then changes once, with the levels, instead of once more right after.
    fn decided(&mut self, run: Vec<Update>, closes_change: bool, lookup: &mut dyn RouteLookup) {
        let touch = if run.iter().any(|u| matches!(u, Update::Decision(..))) { Touch::All } else { Touch::Nothing };
        let routes = if closes_change && self.nameservers_due {
            self.nameservers_due = false;
            nameservers::refresh(&self.shared.snapshot(), lookup)
        } else {
            None
        };
        let state = self.change_deriving(true, |state| {
            let mut events: Vec<EventKind> =
                run.into_iter().flat_map(|update| apply(&mut Arc::make_mut(state).state, update)).collect();
            if let Some(routes) = routes {
                events.extend(nameservers::set(state, routes));
            }
            events
        });
        self.react(state, touch, lookup);
    }

    /// Replaces the whole state with a fresh reading and publishes exactly what differed; with
    /// `resync`, followed by a [`EventKind::Resynced`] notice. Paths are re-evaluated when
    /// something changed (always after a resync: lost route changes are not in the state).
    fn replace(&mut self, mut fresh: NetworkState, resync: Option<String>, lookup: &mut dyn RouteLookup) {
        // Changes may have been missed: the nameservers' routes are asked again too.
        lookup.watch_destinations(&nameservers::addresses(fresh.dns.as_ref()));
        fresh.nameserver_routes = nameservers::look_up(lookup, &fresh, fresh.dns.as_ref());
        self.nameservers_due = false;
        let before = self.shared.snapshot();
        let decided = before.route_decisions != fresh.route_decisions
            || before.gateways != fresh.gateways
            || before.nameserver_routes != fresh.nameserver_routes;
        drop(before);
        let changed = self.change_deriving(decided, |state| {
            let mut events = diff(&state.state, &fresh);
            if events.is_empty() && resync.is_none() && !decided {
                return events;
            }
            // Verdicts come from other sources than the kernel re-read; reachability and
            // details are re-derived (and diffed) by `change`.
            fresh.verdicts = state.verdicts.clone();
            Arc::make_mut(state).state = fresh;
            if let Some(reason) = resync {
                let changes = events.len();
                events.push(EventKind::Resynced { reason, changes });
            }
            events
        });
        if let Some(state) = changed {
            self.react(Some(state), Touch::All, lookup);
        }
    }

    /// Re-evaluates the paths `touch` names against `state` (default: the current one), with
    /// no lock held.
    fn react(&mut self, state: Option<Arc<Snapshot>>, touch: Touch, lookup: &mut dyn RouteLookup) {
        if self.paths.len() > 0 {
            let state = state.unwrap_or_else(|| self.shared.snapshot());
            self.paths.react(&state, touch, lookup);
        }
    }

    /// Runs queued commands, then delivers pending callbacks.
    fn woken(&mut self, lookup: &mut dyn RouteLookup) {
        let commands = lock(&self.shared.commands).as_mut().map(std::mem::take).unwrap_or_default();
        for command in commands {
            match command {
                Command::AddPath { query, reply } => {
                    // Before the path's first lookup: no route change after it may be dropped.
                    lookup.watch_routes_to(&mut self.paths.remotes().chain([query.remote]));
                    let state = self.shared.snapshot();
                    let added = self.paths.add(&state, query, self.shared.queue_capacity, lookup);
                    if reply.send(added.clone()).is_err() {
                        self.paths.remove(added.0); // the caller gave up waiting
                    }
                }
                Command::RemovePath(id) => {
                    self.paths.remove(id);
                    lookup.watch_routes_to(&mut self.paths.remotes());
                }
                Command::Input(input) => self.handle(input, false, lookup),
                Command::Sync(reply) => {
                    let _ = reply.send(()); // the caller may have given up
                }
            }
        }
        self.shared.deliver_callbacks();
    }

    /// Applies `f` to the state (under the lock: `f` only folds); publishes its events plus any
    /// reachability change, then, with the lock released, tells the refiners and runs the
    /// callbacks. Returns the new state if anything changed.
    fn change(&mut self, f: impl FnOnce(&mut Arc<Snapshot>) -> Vec<EventKind>) -> Option<Arc<Snapshot>> {
        self.change_deriving(false, f)
    }

    /// [`Engine::change`]; with `always`, the levels are derived again even when the fold
    /// itself reported nothing (the input was the kernel's route decision).
    fn change_deriving(
        &mut self,
        always: bool,
        f: impl FnOnce(&mut Arc<Snapshot>) -> Vec<EventKind>,
    ) -> Option<Arc<Snapshot>> {
        let (state, kernel) = {
            let mut dispatch = self.shared.dispatch();
            let mut cell = lock(&self.shared.state);
            let mut events = f(&mut cell);
            if events.is_empty() && !always {
                return None;
            }
            let state = Arc::make_mut(&mut cell);
            let (kernel, reachability, details, reasons) = judge(&state.state);
            // Reachability events go before a resync notice, which closes the batch.
            let at = events.iter().position(|e| matches!(e, EventKind::Resynced { .. })).unwrap_or(events.len());
            let mut changed = reachability_events(&state.reachability, &reachability);
            reason_events((&state.reachability, &reachability), (&state.reasons, &reasons), &mut changed);
            if details != state.details {
                changed.push(EventKind::DetailsChanged { before: state.details.clone(), after: details.clone() });
            }
            state.reachability = reachability;
            state.details = details;
            *state.reasons = reasons;
            let diagnosis = diagnose(state);
            changed.extend(diagnosis_events(&self.diagnosis, &diagnosis));
            self.diagnosis = diagnosis;
            if events.is_empty() && changed.is_empty() {
                return None;
            }
            events.splice(at..at, changed);
            let state = cell.clone();
            drop(cell);
            // Still under the dispatch lock: a new subscriber's baseline is either before this
            // change (and it gets these events) or after it (and it does not).
            self.shared.push(&mut dispatch, events);
            (state, kernel)
        };
        // Refiners must return at once; the list's own lock is not the state's.
        for refiner in lock(&self.shared.refiners).iter() {
            refiner.state_changed(&state, &kernel);
        }
        self.shared.deliver_callbacks();
        Some(state)
    }
}

/// The kernel's route decision, or its gateways' neighbour entries: observed input that only
/// what is derived from it reports (see [`Engine::decided`]).
fn is_decision(update: &Update) -> bool {
    matches!(update, Update::Decision(..) | Update::Gateways(..))
}
