//! Linux: the kernel over rtnetlink. No daemon, no root needed (except to enter another
//! network namespace).
//!
//! [`Kernel`] waits on one epoll set (the event socket, the waker's eventfd, which the shared
//! resolver watch ([`dns`]) also uses, and an inotify watch for the deletion of a followed
//! namespace) and translates what arrives into
//! [`Input`]s. It recovers on its own and says so through inputs: an overrun (ENOBUFS) is a
//! resync, a failed socket is reopened with capped exponential backoff, and a reading pieced
//! together from interrupted dumps is read again once the kernel has been quiet.

mod decision;
mod decode;
mod dns;
mod dump;
mod families;
mod faults;
mod filter;
mod follow;
mod frame;
mod gateways;
mod kind;
mod listed;
mod neighbour;
mod netlink;
mod netns;
pub(crate) mod networkmanager;
mod recover;
mod route_message;
mod rule_message;
mod socket;
mod tables;

use std::collections::VecDeque;
use std::net::IpAddr;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::eventfd::{EfdFlags, EventFd};
use nix::sys::timerfd::{ClockId, TimerFd, TimerFlags};

use self::decision::{matters, Decider, Families};
use self::follow::read_state;
pub(crate) use self::gateways::Reverify;
use self::netlink::Sockets;
use self::netns::{Namespace, NamespaceWatch};
use self::recover::Broken;
pub(crate) use self::socket::socket_options;
use super::{Input, KernelConfig};
use crate::backend::Netns;
use crate::model::{Error, NetworkState, Update};
use crate::path::{Answer, Query, RouteLookup};

/// At most this many datagrams are read before the loop looks at its wake-up descriptor
/// again, so dropping a monitor is prompt even in a storm.
const BATCH: usize = 256;
/// After a reading pieced together from interrupted dumps, the state is read again once the
/// event socket has been silent this long (the kernel has settled).
const QUIET: Duration = Duration::from_millis(200);

/// epoll tokens of the loop's descriptors.
const NETLINK: u64 = 0;
const WAKE: u64 = 1;
const DELETION: u64 = 2;
const EXPIRY: u64 = 3;
const NEIGHBOURS: u64 = 4;

/// Moves the calling thread into `netns` (for sources that open their sockets there).
pub(crate) fn enter_netns(netns: &Netns) -> Result<(), Error> {
    Namespace::open(netns)?.enter()
}

fn open_sockets(namespace: Option<&Namespace>, receive_buffer: Option<usize>) -> Result<Sockets, Error> {
    match namespace {
        // sysfs describes the namespace of whoever mounted it: only trusted for our own.
        None => Sockets::open(receive_buffer, true).map_err(|e| Error::io("opening netlink sockets", e)),
        Some(ns) => {
            let mut sockets = ns.run_inside(|| Sockets::open(receive_buffer, false))?;
            sockets.namespace = Some(ns.try_clone()?);
            Ok(sockets)
        }
    }
}

/// Makes a blocked [`Kernel::next`] return [`Input::Woken`]; callable from any thread.
pub(crate) struct Waker(Arc<EventFd>);

impl Waker {
    pub(crate) fn wake(&self) {
        // Cannot fail short of the counter overflowing, which a pending wake-up makes moot.
        let _ = self.0.write(1);
    }
}

/// The kernel source: rtnetlink sockets (inside the followed namespace, if any).
pub(crate) struct Kernel {
    namespace: Option<Namespace>,
    receive_buffer: Option<usize>,
    sockets: Sockets,
    wake: Arc<EventFd>,
    deletion: Option<NamespaceWatch>,
    /// The resolver configuration's files (read in this process's own mount namespace; the
    /// watch is shared by every monitor of the process and wakes this one through its waker).
    dns: dns::Follow,
    ready_set: Epoll,
    /// Whether the last reading was complete ([`dump::Reading::complete`]); until it is, the
    /// source reads again whenever the kernel has been quiet for [`QUIET`].
    complete: bool,
    /// Datagrams still to read before the other descriptors are looked at again.
    budget: usize,
    /// Inputs found and not yet returned, in order (a datagram's updates, then its faults).
    pending: VecDeque<Input>,
    /// Set while the sockets are broken and being reopened.
    broken: Option<Broken>,
    /// The fatal error, returned once everything before it has been.
    fatal: Option<String>,
    /// The kernel's last route decision for the internet of each family.
    decider: Decider,
    /// The families whose decision must be asked again, once a datagram's updates were handed
    /// over and before the next datagram is read (see [`Kernel::read_one`]).
    decision_due: Families,
    /// The destinations the event socket's filter passes route changes for, besides those that
    /// can change the route decision; `None` when no filter is attached ([`filter`]).
    filter: Option<Vec<IpAddr>>,
    /// What the filter is made of: the watched paths' remotes (`None`: too many to filter)
    /// and the nameservers, whose routes the diagnosis reads.
    remotes: Option<Vec<IpAddr>>,
    nameservers: Vec<IpAddr>,
    /// Interfaces last seen administratively down (their multipath next hops are dead).
    down: std::collections::HashSet<u32>,
    /// A rule changed: the listed tables are read again once nothing else is ready
    /// ([`tables`]).
    tables_due: bool,
    /// One-shot timer at the earliest expiry of a route in that decision (an RA-learned
    /// default): the kernel sends nothing when a route's lifetime runs out, only when its
    /// garbage collection removes it, up to about 30 s later. Disarmed otherwise.
    expiry: TimerFd,
    /// The deadline `expiry` is set to (`None`: disarmed, or fired): a decision that leaves it
    /// as it was costs no `timerfd_settime`.
    armed: Option<Instant>,
    /// Re-verifications of the gateways asked by `Monitor::check()`.
    verification: gateways::Verification,
}

impl Kernel {
    /// Opens the sockets (inside the namespace, if one is given) and reads the initial state.
    pub(crate) fn open(config: &KernelConfig) -> Result<(Kernel, NetworkState), Error> {
        let namespace = config.netns.as_ref().map(Namespace::open).transpose()?;
        let deletion = match &namespace {
            Some(namespace) if !config.files_read_once => NamespaceWatch::new(namespace)?,
            _ => None,
        };
        let mut sockets = open_sockets(namespace.as_ref(), config.receive_buffer)?;
        let wake = EventFd::from_flags(EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)
            .map(Arc::new)
            .map_err(|e| Error::io("creating an eventfd", e.into()))?;
        // epoll rather than poll: the descriptors are registered once, not on every wait (the
        // source waits once per kernel message, and that cost is in every event's latency).
        let ready_set = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)
            .map_err(|e| Error::io("creating an epoll instance", e.into()))?;
        let register = |fd: std::os::fd::BorrowedFd<'_>, token: u64| {
            ready_set
                .add(fd, EpollEvent::new(EpollFlags::EPOLLIN, token))
                .map_err(|e| Error::io("registering a descriptor with epoll", e.into()))
        };
        register(sockets.events.as_fd(), NETLINK)?;
        register(sockets.neighbours.socket.as_fd(), NEIGHBOURS)?;
        register(wake.as_fd(), WAKE)?;
        if let Some(watch) = &deletion {
            register(watch.inotify.as_fd(), DELETION)?;
        }
        let resolver = dns::resolver_file(namespace.as_ref().map(Namespace::path));
        let waker = Waker(wake.clone());
        let upstream = dns::RESOLVED_UPSTREAM.into();
        let dns = if config.files_read_once {
            dns::Follow::once(resolver, upstream)
        } else {
            dns::Follow::new(resolver, upstream, Box::new(move || waker.wake()))?
        };
        let expiry = TimerFd::new(ClockId::CLOCK_MONOTONIC, TimerFlags::TFD_CLOEXEC | TimerFlags::TFD_NONBLOCK)
            .map_err(|e| Error::io("creating a timerfd", e.into()))?;
        register(expiry.as_fd(), EXPIRY)?;
        let mut decider = Decider::default();
        let mut reading = read_state(&mut sockets, &mut decider)
            .map_err(|e| Error::io("reading links, addresses and routes over netlink", e))?;
        reading.state.dns = Some(dns.current());
        let mut kernel = Kernel {
            namespace,
            receive_buffer: config.receive_buffer,
            sockets,
            wake,
            deletion,
            dns,
            ready_set,
            complete: reading.complete,
            budget: 0,
            pending: VecDeque::new(),
            broken: None,
            fatal: None,
            decider,
            decision_due: Families::NONE,
            expiry,
            armed: None,
            down: reading.state.interfaces.iter().filter(|i| !i.up).map(|i| i.index).collect(),
            filter: None,
            remotes: Some(Vec::new()),
            nameservers: Vec::new(),
            tables_due: false,
            verification: Default::default(),
        };
        kernel.filter = filter::apply(&kernel.sockets.events, Some(Vec::new()));
        kernel.arm();
        Ok((kernel, reading.state))
    }

    pub(crate) fn waker(&self) -> Waker {
        Waker(self.wake.clone())
    }

    /// Blocks until there is input; `Err` when the source cannot go on (see the contract).
    pub(crate) fn next(&mut self) -> Result<Input, String> {
        loop {
            if let Some(input) = self.pending.pop_front() {
                return Ok(input);
            }
            if let Some(fatal) = self.fatal.take() {
                return Err(fatal);
            }
            if self.broken.is_some() {
                self.reopen()?;
            } else if self.decision_due.any() {
                let families = std::mem::take(&mut self.decision_due);
                let updates = self.decide(families);
                if !updates.is_empty() {
                    self.pending.push_back(Input::Updates(updates));
                }
            } else if self.budget > 0 {
                self.read_one();
            } else {
                self.wait()?;
            }
        }
    }

    /// Whether the source has input at hand or work of its own due that needs no wait (queued
    /// inputs, the route decision a change made due): the engine's own lookups that follow
    /// changes wait until it has none (see the contract). Datagrams possibly still queued do
    /// not count: finding out means reading, and when there are none `next()` waits.
    pub(crate) fn busy(&self) -> bool {
        !self.pending.is_empty() || self.decision_due.any()
    }

    /// Waits for any descriptor (or, until the state is known complete, for quiet).
    fn wait(&mut self) -> Result<(), String> {
        let mut ready = [EpollEvent::empty(); 5];
        // No timer at all once the state is known complete (and no re-verification of the
        // gateways is under way): no wake-ups while idle. Tables due after a rule change are
        // read once nothing is ready (the change's callbacks first).
        let timeout = if self.tables_due {
            EpollTimeout::ZERO
        } else {
            self.verification.wait((!self.complete).then_some(QUIET))
        };
        let count = match self.ready_set.wait(&mut ready, timeout) {
            Ok(0) if self.tables_due => {
                self.retable();
                return Ok(());
            }
            Ok(0) if self.verification.due() => {
                self.gateways(false);
                return Ok(());
            }
            Ok(0) if !self.complete => {
                match self.read() {
                    Ok(reading) => {
                        self.complete = reading.complete;
                        self.pending.push_back(self.reread(reading.state, None));
                    }
                    Err(e) => self.fail(e),
                }
                return Ok(());
            }
            Ok(count) => count,
            Err(Errno::EINTR) => return Ok(()),
            Err(e) => return Err(format!("waiting for netlink messages failed: {}", e.desc())),
        };
        let is_ready = |token| ready[..count].iter().any(|e| e.data() == token);
        if is_ready(EXPIRY) {
            let _ = self.expiry.wait(); // non-blocking: consumes the expiration
            self.armed = None; // a one-shot timer that fired is disarmed
            let updates = self.decide(Families::BOTH);
            if !updates.is_empty() {
                self.pending.push_back(Input::Updates(updates));
            }
        }
        let woken = is_ready(WAKE);
        if woken || is_ready(NEIGHBOURS) {
            self.gateways(woken); // reads the wake-up descriptor first, then the neighbours
        }
        if woken {
            self.pending.push_back(Input::Woken);
            // The shared resolver watch wakes the source through the same descriptor.
            if let Some(config) = self.dns.take_change() {
                self.pending.push_back(Input::Updates(vec![Update::Dns(config)]));
            }
        }
        if is_ready(DELETION) && self.deletion.as_ref().is_some_and(NamespaceWatch::deleted) {
            let path = self.namespace.as_ref().map(|n| n.path().display().to_string()).unwrap_or_default();
            self.fatal = Some(format!("network namespace {path} was deleted; monitoring stopped"));
        } else if is_ready(NETLINK) {
            self.budget = BATCH;
        }
        Ok(())
    }

    /// A whole new reading of the kernel's state, with the resolver configuration (which the
    /// kernel does not know) as last read.
    fn reread(&self, mut state: NetworkState, resync: Option<String>) -> Input {
        state.dns = Some(self.dns.current());
        Input::Reread { state: Box::new(state), resync }
    }

    /// Reads one datagram from the event socket.
    fn read_one(&mut self) {
        self.budget -= 1;
        let mut updates = Vec::new();
        let received = faults::receive_failure().map_or_else(|| self.sockets.receive(&mut updates), Err);
        match received {
            Ok(true) => {
                self.follow(&mut updates);
                // Rules, nexthop objects and netconf settings (policy) may concern either family.
                let policy = std::mem::take(&mut self.sockets.policy_changed);
                let due = updates.iter().map(matters).fold(policy, Families::with);
                if due.any() {
                    // Asked after the datagram's own updates are handed over (the next call),
                    // before the next datagram is read: the decision reflects the kernel after
                    // all of them, and the change's own events are not delayed by the lookups
                    // (six round trips, most of an event's latency when they came first). The
                    // engine folds and judges update by update either way.
                    self.decision_due = self.decision_due.with(due);
                }
                if !updates.is_empty() {
                    self.pending.push_back(Input::Updates(updates));
                }
                for what in self.sockets.take_undecodable() {
                    let fault = format!("skipped a netlink message that could not be decoded ({what})");
                    self.pending.push_back(Input::Fault(fault));
                }
            }
            Ok(false) => self.budget = 0,
            Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                self.sockets.drain_events();
                match self.read() {
                    Ok(fresh) => {
                        self.complete = fresh.complete;
                        let resync = "netlink receive buffer overrun (ENOBUFS): events were lost, state re-read";
                        self.pending.push_back(self.reread(fresh.state, Some(resync.into())));
                    }
                    Err(e) => self.fail(e),
                }
            }
            Err(e) => self.fail(e),
        }
    }
}

/// Route lookups go to the kernel over the request socket, between waits.
impl RouteLookup for Kernel {
    fn route(&mut self, query: &Query) -> Answer {
        self.sockets.route(query)
    }

    fn routes(&mut self, queries: &[Query]) -> Vec<Answer> {
        self.sockets.routes(queries)
    }

    fn watch_routes_to(&mut self, remotes: &mut dyn Iterator<Item = IpAddr>) {
        self.remotes = filter::bounded(remotes);
        self.refilter();
    }

    fn watch_destinations(&mut self, destinations: &[IpAddr]) {
        if self.nameservers != destinations {
            self.nameservers = destinations.to_vec();
            self.refilter();
        }
    }
}
