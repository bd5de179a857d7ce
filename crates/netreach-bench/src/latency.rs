//! Latency from a kernel change to each subscriber: the library's callback (alone), and
//! `netreach watch --json` paired with `ip monitor` (or with another `netreach` binary; see
//! [`crate::paired`]), for three kinds of change.
//!
//! Every sample is one cycle: drain stragglers, make the measured change (t0 right before
//! `send()`), wait for the subscriber to report it (t1), then undo the change and wait for
//! that too, then until the subscriber has been silent for [`QUIET`]: each sample starts from
//! the same quiet state, not while a subscriber is still busy printing the previous change
//! (netreach reports a change with several lines: the change, then reachability and details).

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use testns::NetNs;

use crate::changer::Changer;
use crate::observe::{Observer, Seen, Subscriber};
use crate::paired::{Contender, Pair};
use crate::util::{percentile, Fallible};

/// Silence that ends a cycle (see the module docs).
const QUIET: Duration = Duration::from_millis(1);
/// How long any one change may take to show up before the measurement fails.
const EVENT_TIMEOUT: Duration = Duration::from_secs(2);
/// While warming up (the subscriber may still be starting) a cycle is retried this often...
const WARMUP_ATTEMPTS: usize = 50;
/// ...with this shorter timeout, until this many cycles succeeded.
const WARMUP_TIMEOUT: Duration = Duration::from_millis(200);
const WARMUP_CYCLES: usize = 20;

/// Gateway of the default route; on-link through `ROUTE_ADDRESS`'s /24.
const GATEWAY: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 254);
const ROUTE_ADDRESS: &str = "192.0.2.1/24";

/// The change kinds the issue asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An IPv4 /32 added (and removed again, unmeasured).
    AddressAdd,
    /// The default route removed (and added again, unmeasured).
    RouteRemoval,
    /// `IFF_UP` cleared on a veth (and set again, unmeasured).
    LinkDown,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::AddressAdd, Kind::RouteRemoval, Kind::LinkDown];

    pub fn label(self) -> &'static str {
        match self {
            Kind::AddressAdd => "address add",
            Kind::RouteRemoval => "default route removal",
            Kind::LinkDown => "link down",
        }
    }

    /// The veth (pair `x0`/`x1`) this kind changes; `x0` is the one changed.
    fn interface(self) -> &'static str {
        match self {
            Kind::AddressAdd => "va0",
            Kind::RouteRemoval => "vr0",
            Kind::LinkDown => "vl0",
        }
    }
}

/// The `i`-th address of the add cycle: 198.51.100.1-254, then 203.0.113.1-254, cycling.
fn cycle_address(i: usize) -> Ipv4Addr {
    let n = i % 508;
    let (net, host) = if n < 254 { ([198, 51, 100], n + 1) } else { ([203, 0, 113], n - 253) };
    Ipv4Addr::new(net[0], net[1], net[2], host as u8)
}

/// Samples of one (kind, subscriber) pair.
pub struct Series {
    pub kind: Kind,
    pub subscriber: String,
    /// Sorted.
    pub samples: Vec<Duration>,
}

impl Series {
    pub fn new(kind: Kind, subscriber: &str, mut samples: Vec<Duration>) -> Series {
        samples.sort();
        Series { kind, subscriber: subscriber.into(), samples }
    }
    pub fn p50(&self) -> Duration {
        percentile(&self.samples, 50)
    }
    pub fn p99(&self) -> Duration {
        percentile(&self.samples, 99)
    }
    pub fn max(&self) -> Duration {
        *self.samples.last().expect("series has samples")
    }
}

/// A namespace with one veth pair per kind, and a changer inside it.
pub struct Bench {
    ns: NetNs,
    changer: Changer,
    /// Interface index of each kind's changed veth, indexed by `Kind as usize`.
    indexes: [u32; 3],
}

impl Bench {
    /// Creates the namespace. The veths get no IPv6 link-local addresses (`addrgenmode
    /// none`): their duplicate address detection would otherwise report changes a second
    /// after every `up`, in the middle of later samples.
    pub fn new() -> Fallible<Bench> {
        let ns = NetNs::new("lat");
        let mut batch = String::new();
        for kind in Kind::ALL {
            let (a, b) = (kind.interface(), kind.interface().replace('0', "1"));
            batch += &format!("link add {a} type veth peer name {b}\n");
            batch += &format!("link set {a} addrgenmode none\nlink set {b} addrgenmode none\n");
            batch += &format!("link set {a} up\nlink set {b} up\n");
        }
        batch += &format!("addr add {ROUTE_ADDRESS} dev {}\n", Kind::RouteRemoval.interface());
        ns.ip_batch(&batch);
        let indexes = Kind::ALL.map(|kind| ns.index(kind.interface()));
        let mut changer = Changer::open(&ns.path())?;
        changer.add_default_route(indexes[Kind::RouteRemoval as usize], GATEWAY)?;
        Ok(Bench { ns, changer, indexes })
    }

    pub fn netns(&self) -> &str {
        self.ns.name()
    }

    /// Measures `samples` changes of `kind` as seen by the in-process `subscriber` (unsorted).
    pub fn measure(&mut self, kind: Kind, subscriber: Subscriber, samples: usize) -> Fallible<Vec<Duration>> {
        let observer = Observer::start(subscriber, self.ns.name())?;
        self.run(kind, &observer, samples, |t0, t1| t1.saturating_duration_since(t0))
    }

    /// Measures `samples` changes of `kind` as seen by both `contenders` at once, started
    /// together before the first change, `second` (0 or 1) after the other (unsorted; each
    /// sample holds both latencies).
    pub fn measure_pair(
        &mut self,
        kind: Kind,
        contenders: [Contender; 2],
        second: usize,
        samples: usize,
    ) -> Fallible<Vec<[Duration; 2]>> {
        let pair = Pair::start(contenders, second)?;
        self.run(kind, &pair, samples, |t0, t1: [_; 2]| t1.map(|t| t.saturating_duration_since(t0)))
    }

    /// Warms up, then takes `samples` cycles, each turned into a sample by `latency(t0, t1)`.
    fn run<F: Follower, T>(
        &mut self,
        kind: Kind,
        follower: &F,
        samples: usize,
        latency: impl Fn(Instant, F::Stamp) -> T,
    ) -> Fallible<Vec<T>> {
        self.warm_up(kind, follower).map_err(|e| format!("warm-up: {e}"))?;
        (0..samples)
            .map(|i| {
                let (t0, t1) = self.cycle(kind, follower, i, EVENT_TIMEOUT).map_err(|e| format!("change {i}: {e}"))?;
                Ok(latency(t0, t1))
            })
            .collect()
    }

    /// Runs discarded cycles until the subscriber demonstrably follows the namespace (a
    /// spawned `ip monitor` gives no sign of when it has subscribed) and caches are warm.
    fn warm_up(&mut self, kind: Kind, follower: &impl Follower) -> Fallible<()> {
        let mut succeeded = 0;
        let mut last_error = String::new();
        for attempt in 0..WARMUP_ATTEMPTS {
            match self.cycle(kind, follower, attempt, WARMUP_TIMEOUT) {
                Ok(_) => succeeded += 1,
                Err(e) => last_error = e,
            }
            if succeeded == WARMUP_CYCLES {
                return Ok(());
            }
        }
        Err(format!("only {succeeded} of {WARMUP_ATTEMPTS} cycles succeeded; last error: {last_error}"))
    }

    /// One sample: the measured change, then its undo; returns t0 and the follower's stamp.
    /// The undo runs even when the change was not seen, so the namespace always returns to
    /// its starting state.
    fn cycle<F: Follower>(
        &mut self,
        kind: Kind,
        follower: &F,
        i: usize,
        timeout: Duration,
    ) -> Fallible<(Instant, F::Stamp)> {
        follower.drain();
        let index = self.indexes[kind as usize];
        let name = kind.interface().to_string();
        let c = &mut self.changer;
        let (t0, seen, undone) = match kind {
            Kind::AddressAdd => {
                let address = cycle_address(i);
                let t0 = c.add_address(index, address)?;
                let seen = follower.wait_for(&Seen::AddressAdded(address.into()), timeout);
                c.remove_address(index, address)?;
                (t0, seen, Seen::AddressRemoved(address.into()))
            }
            Kind::RouteRemoval => {
                let t0 = c.remove_default_route(index, GATEWAY)?;
                let seen = follower.wait_for(&Seen::DefaultRouteRemoved(name.clone()), timeout);
                c.add_default_route(index, GATEWAY)?;
                (t0, seen, Seen::DefaultRouteAdded(name))
            }
            Kind::LinkDown => {
                let t0 = c.set_link_up(index, false)?;
                let seen = follower.wait_for(&Seen::LinkDown(name.clone()), timeout);
                c.set_link_up(index, true)?;
                (t0, seen, Seen::LinkReady(name))
            }
        };
        let t1 = seen?;
        follower.wait_for(&undone, timeout)?;
        follower.settle(QUIET, timeout);
        Ok((t0, t1))
    }
}

/// What a cycle needs from whoever follows the namespace: one subscriber ([`Observer`],
/// stamped with an [`Instant`]) or a pair ([`Pair`], stamped with one instant each).
trait Follower {
    type Stamp;
    fn drain(&self);
    fn settle(&self, quiet: Duration, timeout: Duration);
    fn wait_for(&self, expected: &Seen, timeout: Duration) -> Fallible<Self::Stamp>;
}

impl Follower for Observer {
    type Stamp = Instant;
    fn drain(&self) {
        Observer::drain(self)
    }
    fn settle(&self, quiet: Duration, timeout: Duration) {
        Observer::settle(self, quiet, timeout)
    }
    fn wait_for(&self, expected: &Seen, timeout: Duration) -> Fallible<Instant> {
        Observer::wait_for(self, expected, timeout)
    }
}

impl Follower for Pair {
    type Stamp = [Instant; 2];
    fn drain(&self) {
        Pair::drain(self)
    }
    fn settle(&self, quiet: Duration, timeout: Duration) {
        Pair::settle(self, quiet, timeout)
    }
    fn wait_for(&self, expected: &Seen, timeout: Duration) -> Fallible<[Instant; 2]> {
        Pair::wait_for(self, expected, timeout)
    }
}
