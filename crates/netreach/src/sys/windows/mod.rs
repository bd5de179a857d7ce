//! Windows: IP Helper for interfaces, addresses and routes; the Network List Manager (NLM) for
//! Windows' own verdict on connectivity, cost and captive portals, per machine and per
//! connection.
//!
//! Everything reaches the [`Kernel`] source through one channel ([`Msg`]): IP Helper callbacks
//! and the DNS registry watch say "read again" ([`notify`], [`dnswatch`]; the reads are
//! [`iphlpapi`] and [`neighbours`], what they mean `rows.rs`), the
//! COM thread ([`com`], its NLM [`session`]) sends fresh NLM readings, and the [`Waker`] wakes
//! it. A burst of messages becomes, in order: its faults, [`Input::Woken`], one
//! [`Input::Reread`] (which the engine diffs into ordinary events; an NLM event asks for one
//! too, as Windows has no neighbour notification: the gateways' entries are read again on
//! every message but a wake), and for the newest NLM
//! reading its verdict of source `windows` (an [`Update::Verdict`]) followed by an [`Input::InterfaceHint`] for
//! each interface whose connection's connectivity changed (Qt's current
//! `QNetworkConnectionMonitor` rule, [`crate::nlm::path_verdict`], answered through the route
//! lookups; a reading older than a path does not judge it, as in Qt).

mod com;
mod dnswatch;
mod iphlpapi;
mod neighbours;
mod notify;
mod session;
mod sinks;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_facts;
#[cfg(test)]
mod tests_nlm;

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::time::Duration;

use self::com::ComThread;
use self::dnswatch::DnsWatch;
use self::notify::Notifications;
use self::session::Reading;
use super::{Input, KernelConfig};
use crate::model::{Error, NetworkState, Update};
use crate::path::{Answer, Query, Route, RouteLookup};
use crate::{nlm, Verdict};

/// What the source's channel receives.
pub(crate) enum Msg {
    /// The monitor wants attention (commands, callbacks, or stopping).
    Wake,
    /// IP Helper reported a change of interfaces, addresses or routes, or the DNS registry
    /// keys changed: read everything again.
    IpChanged,
    /// A fresh NLM reading.
    Nlm(Reading),
    /// The COM thread could not read NLM (reported as a non-fatal error event).
    Error(String),
    /// `Monitor::check()` had the gateways resolved again: read everything, and answer once
    /// the engine has applied that reading.
    Reverified(SyncSender<()>),
}

fn verdict(reading: &Reading) -> Verdict {
    Verdict { note: reading.note.clone(), ..nlm::verdict(reading.connectivity, reading.metered, reading.portal()) }
}

/// Makes a blocked [`Kernel::next`] return [`Input::Woken`]; callable from any thread.
pub(crate) struct Waker(Sender<Msg>);

impl Waker {
    pub(crate) fn wake(&self) {
        let _ = self.0.send(Msg::Wake); // fails only once the source is gone
    }
}

/// How long `check()` waits for the engine to apply the reading after a re-verification (it
/// applies inputs in order, within milliseconds unless a callback holds it up).
const APPLIED_WAIT: Duration = Duration::from_secs(10);

/// `Monitor::check()`'s handle on the source: has Windows resolve the default routes'
/// gateways again, on the calling thread, not the monitor's.
pub(crate) struct Reverify(Sender<Msg>);

impl Reverify {
    /// Asks Windows to resolve each default route's gateway again (`neighbours::reverify`:
    /// bounded by Windows' own retransmissions), then has the source read everything and waits
    /// (at most [`APPLIED_WAIT`]) until the engine applied it, so the state `check()` returns
    /// has the answers. Where Windows cannot be asked (Wine 8.0 has no `ResolveIpNetEntry2`)
    /// nothing is sent and the state stands; a failed read of the routes is the error.
    pub(crate) fn run(&self) -> Result<(), Error> {
        let routes =
            iphlpapi::snapshot().map_err(|e| Error::io("reading the default routes (GetAdaptersAddresses)", e))?;
        if neighbours::reverify(&crate::rows::gateways(&routes.state)).is_err() {
            return Ok(());
        }
        let (reply, applied) = mpsc::sync_channel(1);
        self.0.send(Msg::Reverified(reply)).map_err(|_| Error::stopped("the monitor has stopped"))?;
        // A late answer is harmless: the reading is applied all the same, `check()` returns the
        // state as it is then.
        let _ = applied.recv_timeout(APPLIED_WAIT);
        Ok(())
    }
}

/// The next thing to hand out; readings are taken only when their turn comes, so the route
/// lookups made for earlier inputs see the interfaces and connectivity of their time.
enum Step {
    Input(Input),
    /// Read IP Helper again; with `nlm`, NLM too (adapters may have come or gone).
    Reread {
        nlm: bool,
    },
    Nlm(Reading),
    /// Tell a `check()` that everything handed out before this was applied: the engine asks
    /// for the next input only once it has handled the previous one.
    Applied(SyncSender<()>),
}

/// The Windows kernel source.
pub(crate) struct Kernel {
    inbox: Receiver<Msg>,
    /// Kept so that the channel never disconnects; cloned into wakers.
    to_self: Sender<Msg>,
    /// Dropped with the source: unadvises the sinks and leaves COM.
    com: ComThread,
    /// Dropped with the source: cancels the IP Helper registrations.
    _notifications: Notifications,
    /// Dropped with the source: stops watching the DNS registry keys.
    _dns_watch: DnsWatch,
    /// Interface index -> adapter GUID, from the last IP Helper reading.
    guids: HashMap<u32, u128>,
    /// Each interface's NLM connectivity, from the last NLM reading.
    connections: nlm::Connections,
    steps: VecDeque<Step>,
}

impl Kernel {
    /// Registers for IP Helper notifications, reads the state, starts the COM thread and takes
    /// NLM's first reading. Any failure is returned: there is no half-built source.
    pub(crate) fn open(config: &KernelConfig) -> Result<(Kernel, NetworkState), Error> {
        if let Some(netns) = &config.netns {
            return Err(Error::unsupported(format!("network namespaces ({netns:?}) exist only on Linux")));
        }
        let (to_self, inbox) = mpsc::channel();
        // Registered before the first read, so no change can fall between the two.
        let notifications = Notifications::register(to_self.clone())
            .map_err(|e| Error::io("registering for IP Helper change notifications", e))?;
        let dns_watch = DnsWatch::start(to_self.clone())
            .map_err(|e| Error::io("watching the DNS registry keys (RegNotifyChangeKeyValue)", e))?;
        let snapshot = iphlpapi::snapshot().map_err(|e| {
            Error::io("reading adapters and routes (GetAdaptersAddresses, GetIpForwardTable2, GetIpInterfaceTable)", e)
        })?;
        let (com, reading) = ComThread::start(to_self.clone())?;
        let mut connections = nlm::Connections::default();
        connections.update(&flags_of(&reading), &snapshot.guids);
        let kernel = Kernel {
            inbox,
            to_self,
            com,
            _notifications: notifications,
            _dns_watch: dns_watch,
            guids: snapshot.guids,
            connections,
            steps: VecDeque::new(),
        };
        let mut state = snapshot.state;
        state.verdicts = vec![verdict(&reading)];
        Ok((kernel, state))
    }

    pub(crate) fn waker(&self) -> Waker {
        Waker(self.to_self.clone())
    }

    /// What `Monitor::check()` uses to have the gateways verified again; any thread.
    pub(crate) fn reverifier(&self) -> Reverify {
        Reverify(self.to_self.clone())
    }

    /// Blocks until there is input. Never fails: IP Helper and NLM failures are faults.
    pub(crate) fn next(&mut self) -> Result<Input, String> {
        loop {
            match self.steps.pop_front() {
                Some(Step::Input(input)) => return Ok(input),
                Some(Step::Reread { nlm }) => return Ok(self.reread(nlm)),
                Some(Step::Nlm(reading)) => return Ok(self.apply(reading)),
                Some(Step::Applied(reply)) => drop(reply.send(())), // the caller may have given up
                None => self.receive(),
            }
        }
    }

    /// Whether the source has input at hand (see the contract in `sys/mod.rs`).
    pub(crate) fn busy(&self) -> bool {
        !self.steps.is_empty()
    }

    /// Waits for a message and takes the whole burst: one re-read for any number of
    /// notifications, and only the newest NLM reading (each is complete).
    fn receive(&mut self) {
        // The source holds a sender itself, so this never disconnects.
        let Ok(first) = self.inbox.recv() else { return };
        let (mut woken, mut reread, mut reading, mut replies) = (false, None, None, Vec::new());
        for message in std::iter::once(first).chain(self.inbox.try_iter()) {
            match message {
                Msg::Wake => woken = true,
                Msg::IpChanged => reread = Some(true),
                // Only the gateways' entries may have changed with it: NLM's own reading is
                // this one, so NLM is not asked again.
                Msg::Nlm(fresh) => (reading, reread) = (Some(fresh), Some(reread.unwrap_or(false))),
                Msg::Error(message) => self.steps.push_back(Step::Input(Input::Fault(message))),
                Msg::Reverified(reply) => {
                    (reread, replies) = (Some(reread.unwrap_or(false)), [replies, vec![reply]].concat())
                }
            }
        }
        if woken {
            self.steps.push_back(Step::Input(Input::Woken));
        }
        if let Some(nlm) = reread {
            self.steps.push_back(Step::Reread { nlm });
        }
        self.steps.extend(reading.map(Step::Nlm));
        self.steps.extend(replies.into_iter().map(Step::Applied));
    }

    fn reread(&mut self, nlm: bool) -> Input {
        match iphlpapi::snapshot() {
            Ok(snapshot) => {
                self.guids = snapshot.guids;
                if nlm {
                    // Adapters came or went: connections may have too.
                    self.com.refresh();
                }
                Input::Reread { state: Box::new(snapshot.state), resync: None }
            }
            Err(e) => Input::Fault(format!("re-reading adapters and routes failed ({e}); waiting for the next change")),
        }
    }

    /// The machine's verdict now; each interface whose connectivity changed is hinted next.
    fn apply(&mut self, reading: Reading) -> Input {
        let changed = self.connections.update(&flags_of(&reading), &self.guids);
        for (at, index) in changed.into_iter().enumerate() {
            self.steps.insert(at, Step::Input(Input::InterfaceHint(index)));
        }
        Input::Updates(vec![Update::Verdict(verdict(&reading))])
    }
}

/// Each connection's adapter GUID (as a number) and `NLM_CONNECTIVITY` flags.
fn flags_of(reading: &Reading) -> Vec<(u128, u32)> {
    reading.connections.iter().map(|c| (c.adapter.to_u128(), c.connectivity)).collect()
}

/// Route lookups (`GetBestRoute2`) plus NLM's per-interface verdict, for path monitors.
impl RouteLookup for Kernel {
    fn route(&mut self, query: &Query) -> Answer {
        iphlpapi::best_route(query.local, query.remote, query.scope).map(|out| out.map(Route::out))
    }

    fn connectivity(
        &mut self,
        interface: u32,
        local: IpAddr,
        remote: IpAddr,
        same_subnet: bool,
        since: u64,
    ) -> Option<bool> {
        self.connections.verdict(interface, local, remote, same_subnet, since)
    }

    fn opinion_clock(&mut self) -> u64 {
        self.connections.clock()
    }
}
