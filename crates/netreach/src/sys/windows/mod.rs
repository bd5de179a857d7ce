//! Windows: IP Helper for interfaces, addresses and routes; the Network List Manager (NLM) for
//! Windows' own verdict on connectivity, cost and captive portals, per machine and per
//! connection.
//!
//! Everything reaches the engine thread through one channel ([`Msg`]): IP Helper callbacks
//! say "read again" ([`iphlpapi`]), the COM thread ([`com`]) sends fresh NLM readings, and the
//! monitor's waker wakes the loop. IP Helper re-reads are diffed by the engine into ordinary
//! events; NLM's machine-wide connectivity becomes a [`Verdict`](crate::Verdict) of source
//! `windows`; a connection's connectivity is applied to the paths on its interface (Qt's
//! `QNetworkConnectionMonitor` rule, [`crate::nlm::path_connectivity`]).

mod com;
mod iphlpapi;
mod sinks;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;

use windows::core::GUID;

use self::com::{ComThread, Reading};
use self::iphlpapi::Notifications;
use crate::error::Error;
use crate::event::Update;
use crate::monitor::{Backend, Engine, MonitorBuilder, Wake};
use crate::path::RouteLookup;
use crate::state::{Family, NetworkState};
use crate::{nlm, Verdict};

/// What the engine thread's loop receives.
pub(crate) enum Msg {
    /// The monitor wants attention (commands, callbacks, or stopping).
    Wake,
    /// IP Helper reported a change of interfaces, addresses or routes: read them again.
    IpChanged,
    /// A fresh NLM reading.
    Nlm(Reading),
    /// The COM thread could not read NLM (reported as a non-fatal error event).
    Error(String),
}

/// Registers for IP Helper notifications, reads the state, starts the COM thread and takes
/// NLM's first reading. Any failure is returned: there is no half-built monitor.
pub(crate) fn start(config: &MonitorBuilder) -> Result<(Box<dyn Backend>, NetworkState), Error> {
    if let Some(netns) = &config.netns {
        return Err(Error::Unsupported(format!("network namespaces ({netns:?}) exist only on Linux")));
    }
    let (to_backend, inbox) = mpsc::channel();
    // Registered before the first read, so no change can fall between the two.
    let notifications = Notifications::register(to_backend.clone())
        .map_err(|e| Error::io("registering for IP Helper change notifications", e))?;
    let snapshot = iphlpapi::snapshot()
        .map_err(|e| Error::io("reading adapters and routes (GetAdaptersAddresses, GetIpForwardTable2)", e))?;
    let (com, reading) = ComThread::start(to_backend.clone())?;
    let mut backend = WindowsBackend {
        inbox,
        waker: Arc::new(Waker(to_backend)),
        com,
        _notifications: notifications,
        lookup: Lookup { guids: snapshot.guids, connectivity: HashMap::new() },
    };
    backend.lookup.connectivity = per_interface(&reading, &backend.lookup.guids);
    let mut state = snapshot.state;
    state.verdicts = vec![verdict(&reading)];
    Ok((Box::new(backend), state))
}

fn verdict(reading: &Reading) -> Verdict {
    nlm::verdict(reading.connectivity, reading.metered, reading.portal())
}

/// Each interface's NLM connectivity: a connection names its adapter's GUID, IP Helper maps
/// GUIDs to interface indexes. Several connections on one adapter add up.
fn per_interface(reading: &Reading, guids: &HashMap<u32, GUID>) -> HashMap<u32, u32> {
    let mut connectivity = HashMap::new();
    for connection in &reading.connections {
        for (&index, _) in guids.iter().filter(|(_, guid)| **guid == connection.adapter) {
            *connectivity.entry(index).or_insert(0) |= connection.connectivity;
        }
    }
    connectivity
}

struct Waker(Sender<Msg>);

impl Wake for Waker {
    fn wake(&self) {
        let _ = self.0.send(Msg::Wake); // fails only once the loop has ended
    }
}

/// Route lookups (`GetBestRoute2`) plus NLM's per-interface verdict, for path monitors.
struct Lookup {
    guids: HashMap<u32, GUID>,
    connectivity: HashMap<u32, u32>,
}

impl RouteLookup for Lookup {
    fn route(&mut self, local: IpAddr, remote: IpAddr) -> std::io::Result<Option<u32>> {
        iphlpapi::best_route(local, remote)
    }

    fn connectivity(&mut self, interface: u32, remote: IpAddr, same_subnet: bool) -> Option<bool> {
        let flags = self.connectivity.get(&interface)?;
        Some(nlm::path_connectivity(*flags, Family::of(&remote), same_subnet))
    }
}

struct WindowsBackend {
    inbox: Receiver<Msg>,
    waker: Arc<Waker>,
    /// Dropped with the backend: unadvises the sinks and leaves COM.
    com: ComThread,
    /// Dropped with the backend: cancels the IP Helper registrations.
    _notifications: Notifications,
    lookup: Lookup,
}

impl Backend for WindowsBackend {
    fn waker(&self) -> Arc<dyn Wake> {
        self.waker.clone()
    }

    fn run(mut self: Box<Self>, engine: &mut Engine) -> Result<(), String> {
        loop {
            // The backend holds a sender itself (the waker), so this never disconnects.
            let Ok(first) = self.inbox.recv() else { return Ok(()) };
            // A burst of notifications becomes one re-read, and only the newest NLM reading
            // counts (each is complete).
            let (mut woken, mut reread, mut reading) = (false, false, None);
            for message in std::iter::once(first).chain(self.inbox.try_iter()) {
                match message {
                    Msg::Wake => woken = true,
                    Msg::IpChanged => reread = true,
                    Msg::Nlm(fresh) => reading = Some(fresh),
                    Msg::Error(message) => engine.error(message),
                }
            }
            if woken {
                if engine.stopping() {
                    return Ok(());
                }
                engine.woken(&mut self.lookup);
            }
            if reread {
                self.reread(engine);
            }
            if let Some(reading) = reading {
                self.apply(engine, reading);
            }
        }
    }
}

impl WindowsBackend {
    fn reread(&mut self, engine: &mut Engine) {
        match iphlpapi::snapshot() {
            Ok(snapshot) => {
                self.lookup.guids = snapshot.guids;
                engine.reread(snapshot.state, &mut self.lookup);
                // Adapters came or went: connections may have too.
                self.com.refresh();
            }
            Err(e) => engine.error(format!("re-reading adapters and routes failed ({e}); waiting for the next change")),
        }
    }

    fn apply(&mut self, engine: &mut Engine, reading: Reading) {
        engine.update(Update::Verdict(verdict(&reading)), &mut self.lookup);
        let fresh = per_interface(&reading, &self.lookup.guids);
        let old = std::mem::replace(&mut self.lookup.connectivity, fresh);
        let mut changed: Vec<u32> = old.keys().chain(self.lookup.connectivity.keys()).copied().collect();
        changed.sort_unstable();
        changed.dedup();
        changed.retain(|i| old.get(i) != self.lookup.connectivity.get(i));
        for index in changed {
            engine.recheck_interface(index, &mut self.lookup);
        }
    }
}
