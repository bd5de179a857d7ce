//! Sources above the kernel (the probe, NetworkManager): several kinds, so a trait object.
//! Each runs its own thread and hands its inputs to a [`Reporter`]; each implements the
//! trait here, so that the sources need not know the engine.

use std::sync::{Arc, Weak};

use super::{Command, Config, Shared};
use crate::model::{Error, NetworkState, Reachability};
use crate::probe::refiner::ProbeRefiner;
use crate::sys::{self, Input, InputSink};

/// A source above the kernel that the monitor runs (a probe, a daemon's client): it judges
/// connectivity on its own thread and hands [`Input::Verdict`]s to its sink.
pub(crate) trait Refiner: Send + Sync {
    /// The state changed: `kernel` is the kernel's own reading, before any verdict. Called on
    /// the engine thread after every change, with no lock of the state held: it must return at
    /// once (e.g. signal its own thread when something it cares about changed) and must not
    /// call into the monitor.
    fn state_changed(&self, state: &NetworkState, kernel: &Reachability);
    /// Asks for a fresh verdict and blocks until it has been handed to the sink (or failed). A
    /// verdict being formed on the current state is fresh: joining it is allowed.
    fn check(&self) -> Result<(), Error>;
}

/// NM watches the network itself: the kernel's changes ask nothing of it.
impl Refiner for sys::NetworkManager {
    fn state_changed(&self, _: &NetworkState, _: &Reachability) {}

    fn check(&self) -> Result<(), Error> {
        sys::NetworkManager::check(self)
    }
}

impl Refiner for ProbeRefiner {
    fn state_changed(&self, state: &NetworkState, kernel: &Reachability) {
        ProbeRefiner::state_changed(self, state, kernel);
    }

    fn check(&self) -> Result<(), Error> {
        ProbeRefiner::check(self)
    }
}

/// Hands inputs from a source's own thread to the engine, as commands. Holds no strong
/// reference: an input that arrives after the monitor is gone is dropped harmlessly.
pub(crate) struct Reporter {
    shared: Weak<Shared>,
}

impl Reporter {
    pub(super) fn sink(shared: &Arc<Shared>) -> Arc<dyn InputSink> {
        Arc::new(Reporter { shared: Arc::downgrade(shared) })
    }
}

impl InputSink for Reporter {
    fn send(&self, input: Input) -> bool {
        self.shared.upgrade().is_some_and(|shared| shared.command(Command::Input(input)).is_ok())
    }
}

/// Starts the sources above the kernel that the config asks for. Each source's settings
/// (probe, NetworkManager) add its start here.
pub(super) fn start(config: &Config, sink: Arc<dyn InputSink>) -> Result<Vec<Arc<dyn Refiner>>, Error> {
    let mut refiners: Vec<Arc<dyn Refiner>> = Vec::new();
    if let Some(networkmanager) = sys::start_networkmanager(&config.networkmanager, sink.clone())? {
        refiners.push(Arc::new(networkmanager));
    }
    if let Some(probe) = config.probe.clone().filter(|c| c.is_enabled()) {
        let netns = config.kernel.netns.clone();
        refiners.push(Arc::new(ProbeRefiner::start(probe, netns, sink)?));
    }
    Ok(refiners)
}
