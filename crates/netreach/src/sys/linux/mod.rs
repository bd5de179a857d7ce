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
mod filter;
mod follow;
mod frame;
mod kind;
mod netlink;
mod netns;
pub(crate) mod networkmanager;
mod socket;

use std::collections::VecDeque;
use std::net::IpAddr;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::eventfd::{EfdFlags, EventFd};
use nix::sys::timerfd::{ClockId, TimerFd, TimerFlags};

use self::decision::{matters, Decider};
use self::follow::read_state;
use self::netlink::Sockets;
use self::netns::{Namespace, NamespaceWatch};
pub(crate) use self::socket::socket_options;
use super::{Input, KernelConfig};
use crate::backend::Netns;
use crate::model::{Error, NetworkState, Update};
use crate::path::{Answer, Query, RouteLookup};

/// At most this many datagrams are read before the loop looks at its wake-up descriptor
/// again, so dropping a monitor is prompt even in a storm.
const BATCH: usize = 256;
/// Backoff between attempts to reopen failed sockets.
const BACKOFF_FIRST: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// After a reading pieced together from interrupted dumps, the state is read again once the
/// event socket has been silent this long (the kernel has settled).
const QUIET: Duration = Duration::from_millis(200);

/// epoll tokens of the loop's descriptors.
const NETLINK: u64 = 0;
const WAKE: u64 = 1;
const DELETION: u64 = 2;
const EXPIRY: u64 = 3;

/// Moves the calling thread into `netns` (for sources that open their sockets there).
pub(crate) fn enter_netns(netns: &Netns) -> Result<(), Error> {
    Namespace::open(netns)?.enter()
}

fn open_sockets(namespace: Option<&Namespace>, receive_buffer: Option<usize>) -> Result<Sockets, Error> {
    match namespace {
        // sysfs describes the namespace of whoever mounted it: only trusted for our own.
        None => Sockets::open(receive_buffer, true).map_err(|e| Error::io("opening netlink sockets", e)),
        Some(ns) => ns.run_inside(|| Sockets::open(receive_buffer, false)),
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

/// The sockets failed: when to try reopening them, and why they failed.
struct Broken {
    failure: String,
    retry_at: Instant,
    backoff: Duration,
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
    /// A datagram's updates were handed over and the kernel's decision must be asked again
    /// before the next datagram is read (see [`Kernel::read_one`]).
    decision_due: bool,
    /// Whether route changes that cannot change the route decision are dropped by the event
    /// socket's filter (while no path monitor needs them).
    filtered: bool,
    /// Whether every route change must arrive (path monitors exist), and the destinations
    /// whose route changes must arrive anyway (the nameservers): what the filter should be.
    every: bool,
    extra: Vec<IpAddr>,
    /// Interfaces last seen administratively down (their multipath next hops are dead).
    down: std::collections::HashSet<u32>,
    /// One-shot timer at the earliest expiry of a route in that decision (an RA-learned
    /// default): the kernel sends nothing when a route's lifetime runs out, only when its
    /// garbage collection removes it, up to about 30 s later. Disarmed otherwise.
    expiry: TimerFd,
}

impl Kernel {
    /// Opens the sockets (inside the namespace, if one is given) and reads the initial state.
    pub(crate) fn open(config: &KernelConfig) -> Result<(Kernel, NetworkState), Error> {
        let namespace = config.netns.as_ref().map(Namespace::open).transpose()?;
        let deletion = namespace.as_ref().map(NamespaceWatch::new).transpose()?.flatten();
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
        register(wake.as_fd(), WAKE)?;
        if let Some(watch) = &deletion {
            register(watch.inotify.as_fd(), DELETION)?;
        }
        let resolver = dns::resolver_file(namespace.as_ref().map(Namespace::path));
        let waker = Waker(wake.clone());
        let dns = dns::Follow::new(resolver, dns::RESOLVED_UPSTREAM.into(), Box::new(move || waker.wake()))?;
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
            decision_due: false,
            expiry,
            down: reading.state.interfaces.iter().filter(|i| !i.up).map(|i| i.index).collect(),
            filtered: false,
            every: false,
            extra: Vec::new(),
        };
        kernel.every_route(false);
        kernel.arm();
        Ok((kernel, reading.state))
    }

    pub(crate) fn waker(&self) -> Waker {
        Waker(self.wake.clone())
    }

    /// Attaches the filter (with the extra destinations, after a change of them) or removes
    /// it, as `every` and `extra` ask. Without the filter (an old kernel refusing it, or more
    /// extra destinations than it holds), irrelevant changes still arrive and are found
    /// irrelevant after decoding: slower under churn, never wrong.
    fn refilter(&mut self, extra_changed: bool) {
        let on = !self.every && self.extra.len() <= filter::MAX_EXTRA;
        if (on != self.filtered || (on && extra_changed)) && filter::set(&self.sockets.events, on, &self.extra).is_ok()
        {
            self.filtered = on;
        }
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
            } else if self.decision_due {
                self.decision_due = false;
                let updates = self.decide();
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

    /// Waits for any descriptor (or, until the state is known complete, for quiet).
    fn wait(&mut self) -> Result<(), String> {
        let mut ready = [EpollEvent::empty(); 4];
        // No timer at all once the state is known complete: no wake-ups while idle.
        let timeout = if self.complete { EpollTimeout::NONE } else { EpollTimeout::from(QUIET.as_millis() as u16) };
        let count = match self.ready_set.wait(&mut ready, timeout) {
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
            let updates = self.decide();
            if !updates.is_empty() {
                self.pending.push_back(Input::Updates(updates));
            }
        }
        if is_ready(WAKE) {
            let _ = self.wake.read();
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
        match self.sockets.receive(&mut updates) {
            Ok(true) => {
                self.revive(&mut updates);
                if self.sockets.policy_changed || updates.iter().any(matters) {
                    // Asked after the datagram's own updates are handed over (the next call),
                    // before the next datagram is read: the decision reflects the kernel after
                    // all of them, and the change's own events are not delayed by the lookups
                    // (six round trips, most of an event's latency when they came first). The
                    // engine folds and judges update by update either way.
                    self.decision_due = true;
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

    /// A socket failed: report it, and reopen from the next call on.
    fn fail(&mut self, failure: std::io::Error) {
        self.budget = 0;
        self.pending.push_back(Input::Fault(format!("netlink socket failed ({failure}); reopening")));
        let failure = failure.to_string();
        self.broken = Some(Broken { failure, retry_at: Instant::now() + BACKOFF_FIRST, backoff: BACKOFF_FIRST });
    }

    /// Sleeps until the next attempt (on the wake-up descriptor, so dropping the monitor is
    /// prompt), then reopens the sockets and resyncs, or reports the failure and backs off.
    fn reopen(&mut self) -> Result<(), String> {
        let Some(broken) = &mut self.broken else { return Ok(()) };
        let wait = broken.retry_at.saturating_duration_since(Instant::now());
        if !wait.is_zero() {
            let mut fds = [PollFd::new(self.wake.as_fd(), PollFlags::POLLIN)];
            let millis = u16::try_from(wait.as_millis().max(1)).unwrap_or(u16::MAX);
            if poll(&mut fds, PollTimeout::from(millis)).is_ok_and(|n| n > 0) {
                let _ = self.wake.read();
                self.pending.push_back(Input::Woken);
            }
            return Ok(()); // back to the caller's loop: the wake-up first, then the rest of the wait
        }
        let reopened = open_sockets(self.namespace.as_ref(), self.receive_buffer)
            .map_err(|e| e.to_string())
            .and_then(|mut s| read_state(&mut s, &mut self.decider).map(|state| (s, state)).map_err(|e| e.to_string()));
        match reopened {
            Ok((sockets, reading)) => {
                // The old event socket left the epoll set when it was closed.
                self.sockets = sockets;
                self.ready_set
                    .add(self.sockets.events.as_fd(), EpollEvent::new(EpollFlags::EPOLLIN, NETLINK))
                    .map_err(|e| format!("registering a descriptor with epoll failed: {}", e.desc()))?;
                self.complete = reading.complete;
                let resync = format!("netlink sockets reopened after a failure ({})", broken.failure);
                self.pending.push_back(self.reread(reading.state, Some(resync)));
                self.broken = None;
                self.arm();
                if self.filtered {
                    self.filtered = false;
                    self.every_route(false);
                }
            }
            Err(e) => {
                broken.backoff = (broken.backoff * 2).min(BACKOFF_MAX);
                broken.retry_at = Instant::now() + broken.backoff;
                let fault = format!("reopening netlink sockets failed ({e}); retrying in {:?}", broken.backoff);
                self.pending.push_back(Input::Fault(fault));
            }
        }
        Ok(())
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

    fn every_route(&mut self, every: bool) {
        self.every = every;
        self.refilter(false);
    }

    fn watch_destinations(&mut self, destinations: &[IpAddr]) {
        if self.extra != destinations {
            self.extra = destinations.to_vec();
            self.refilter(true);
        }
    }
}
