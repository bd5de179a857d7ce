//! Plain data: the changes OS sources report ([`Update`]) and the events subscribers receive
//! ([`Event`], [`EventKind`]). The functions that turn one into the other are in `fold.rs`
//! ([`crate::apply`], [`crate::diff`], [`crate::reachability_events`]).

use std::sync::Arc;
use std::time::SystemTime;

use serde::{Serialize, Serializer};

use super::address::{Address, Family};
use super::decision::RouteDecision;
use super::diagnosis::FamilyDiagnosis;
use super::dns::DnsConfig;
use super::interface::Interface;
use super::level::{Level, Source};
use super::measurement::ProbeMeasurement;
use super::neighbour::GatewayNeighbour;
use super::reason::Reason;
use super::snapshot::Snapshot;
use super::state::DefaultRoute;
use super::verdict::{Details, Verdict};

/// One change reported to subscribers, stamped with the time netreach saw it.
///
/// Serialised (e.g. by `netreach watch --json`) as one flat object with a `"type"` field:
/// `{"timestamp":"2026-11-23T10:00:00.123456Z","type":"address_added",...}`.
///
/// ```
/// let e = netreach::Event::now(netreach::EventKind::Lagged { missed: 3 });
/// let json = serde_json::to_string(&e).unwrap();
/// assert!(json.starts_with(r#"{"timestamp":""#) && json.ends_with(r#""type":"lagged","missed":3}"#));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    /// When netreach processed the change (RFC 3339 in JSON).
    #[serde(serialize_with = "rfc3339")]
    pub timestamp: SystemTime,
    /// What happened.
    #[serde(flatten)]
    pub kind: EventKind,
}

impl Event {
    /// Stamps an event kind with the current time.
    ///
    /// ```
    /// let e = netreach::Event::now(netreach::EventKind::Lagged { missed: 3 });
    /// assert!(matches!(e.kind, netreach::EventKind::Lagged { missed: 3 }));
    /// ```
    pub fn now(kind: EventKind) -> Self {
        Event { timestamp: SystemTime::now(), kind }
    }
}

pub(super) fn rfc3339<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    // Formatted whole first: `collect_str` would hand the serializer a dozen small pieces, each
    // escaped on its own, and this runs for every event `netreach watch --json` prints.
    use std::fmt::Write;
    let mut text = String::with_capacity(32);
    let _ = write!(text, "{}", humantime::format_rfc3339_micros(*t)); // writing to a String cannot fail
    s.serialize_str(&text)
}

/// Which reachability a [`EventKind::ReachabilityChanged`] is about.
///
/// ```
/// use netreach::{FamilyReachability, Level, Reachability, ReachabilityOf, Source};
/// let k = |l| FamilyReachability { reachability: l, source: Source::Kernel };
/// let old = Reachability::from_families(k(Level::Online), k(Level::Site));
/// let new = Reachability::from_families(k(Level::Online), k(Level::Online));
/// let events = netreach::reachability_events(&old, &new);
/// // Only IPv6 changed; overall was online already.
/// assert!(matches!(events[..], [netreach::EventKind::ReachabilityChanged { family: ReachabilityOf::Ipv6, .. }]));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ReachabilityOf {
    /// The overall level (the better family).
    Overall,
    /// IPv4 only.
    Ipv4,
    /// IPv6 only.
    Ipv6,
}

/// What happened. Interface events carry the link without its addresses; every address
/// appears in its own address event. New kinds may be added (`#[non_exhaustive]`): match the
/// ones you need and ignore the rest.
///
/// ```no_run
/// use netreach::{EventKind, Monitor};
/// let monitor = Monitor::new()?;
/// for event in monitor.subscribe().iter() {
///     match event.kind {
///         EventKind::Baseline { state } => println!("now {}", state.reachability.overall),
///         EventKind::ReachabilityChanged { family, new, .. } => println!("{family:?}: {new}"),
///         EventKind::Error { message, fatal: true } => return Err(message.into()),
///         _ => {}
///     }
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum EventKind {
    /// The whole current state: the first thing every subscriber receives, and again after a
    /// [`EventKind::Lagged`].
    Baseline {
        /// The state and what was derived from it.
        state: Arc<Snapshot>,
    },
    /// A new interface appeared.
    InterfaceAdded {
        /// The interface (without addresses).
        interface: Interface,
    },
    /// An interface disappeared (its addresses were reported removed just before).
    InterfaceRemoved {
        /// The interface as last seen (without addresses).
        interface: Interface,
    },
    /// Link properties changed: up/down, carrier, operational state, name, MTU, MAC, kind.
    InterfaceChanged {
        /// Before (without addresses).
        before: Interface,
        /// After (without addresses).
        after: Interface,
    },
    /// An address was added.
    AddressAdded {
        /// Interface name.
        interface: String,
        /// Interface index.
        index: u32,
        /// The address.
        address: Address,
    },
    /// An address was removed.
    AddressRemoved {
        /// Interface name.
        interface: String,
        /// Interface index.
        index: u32,
        /// The address as last seen.
        address: Address,
    },
    /// An address's flags or scope changed (e.g. duplicate address detection finished).
    AddressChanged {
        /// Interface name.
        interface: String,
        /// Interface index.
        index: u32,
        /// Before.
        before: Address,
        /// After.
        after: Address,
    },
    /// A default route appeared.
    DefaultRouteAdded {
        /// The route.
        route: DefaultRoute,
    },
    /// A default route disappeared (deleted, or flushed because its link went down).
    DefaultRouteRemoved {
        /// The route as last seen.
        route: DefaultRoute,
    },
    /// A reachability level changed.
    ReachabilityChanged {
        /// Overall, IPv4 or IPv6.
        family: ReachabilityOf,
        /// The previous level.
        old: Level,
        /// The new level.
        new: Level,
        /// Who decided the new level.
        source: Source,
        /// Why the family is at the new level (for `overall`: the better family's reason);
        /// `None` when no reason is known.
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<Reason>,
    },
    /// A family's reason changed while its level stayed (e.g. the kernel now routes through
    /// another interface, or a different problem keeps it from the internet).
    ReasonChanged {
        /// The family.
        family: Family,
        /// Before.
        before: Option<Reason>,
        /// After.
        after: Option<Reason>,
    },
    /// Transport, metering or captive portal changed.
    DetailsChanged {
        /// Before.
        before: Details,
        /// After.
        after: Details,
    },
    /// A source above the kernel (probe, NetworkManager, Windows) gave a new verdict; the
    /// reachability and details events it causes follow.
    VerdictChanged {
        /// The new verdict (all fields `None` when the source withdrew, e.g. its daemon left).
        verdict: Verdict,
    },
    /// The connectivity probe finished a round: what it measured per family (success, the
    /// time of each phase). Every round, whether or not its verdict changed (a
    /// [`EventKind::VerdictChanged`] follows when it did).
    ProbeFinished {
        /// One per probed family.
        measurements: Vec<ProbeMeasurement>,
    },
    /// The resolver configuration changed (nameservers, search domains, or where it comes
    /// from: a replaced resolv.conf, a retargeted symlink, systemd-resolved's new upstream
    /// servers). Programs that cached the old configuration should re-read it.
    DnsChanged {
        /// Before (`None` when it was not known).
        before: Option<DnsConfig>,
        /// After.
        after: DnsConfig,
    },
    /// A layer of a family's diagnosis changed (its status or what was found): the family's
    /// whole diagnosis before and after ([`crate::diagnose`]). Published with the events of the
    /// change that caused it; a layer read from what the kernel is asked after a change (its
    /// route decision, the nameservers' routes) changes in the batch that follows, with the
    /// levels. Folding these into a baseline's `diagnose(&state)` gives the diagnosis of the
    /// current state.
    DiagnosisChanged {
        /// The family.
        family: Family,
        /// Before.
        before: FamilyDiagnosis,
        /// After.
        after: FamilyDiagnosis,
    },
    /// The monitor re-read the whole state (after a netlink overrun or a socket failure);
    /// the events just before this one are exactly what the re-read found changed.
    Resynced {
        /// Why.
        reason: String,
        /// How many change events the resync produced.
        changes: usize,
    },
    /// This subscriber fell behind and `missed` events were dropped; a fresh
    /// [`EventKind::Baseline`] follows.
    Lagged {
        /// How many events were dropped.
        missed: u64,
    },
    /// Something went wrong. When `fatal` is false the monitor is recovering by itself; when
    /// true the monitor has stopped and the subscription ends after this event.
    Error {
        /// What went wrong, in words.
        message: String,
        /// Whether the monitor stopped.
        fatal: bool,
    },
}

/// A change reported by a backend, before policy. Backends produce these; [`crate::apply`] folds them.
///
/// ```
/// use netreach::{apply, DefaultRoute, EventKind, Family, NetworkState, Update};
/// let mut state = NetworkState::default();
/// let gateway = Some("192.0.2.1".parse().unwrap());
/// let route =
///     DefaultRoute { family: Family::Ipv4, gateway, interface: String::new(), interface_index: 2, metric: 0, table: 254 };
/// let events = apply(&mut state, Update::RouteAdded(route));
/// assert!(matches!(events[..], [EventKind::DefaultRouteAdded { .. }]));
/// assert_eq!(state.default_routes.len(), 1);
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Update {
    /// A link was created or changed (addresses are ignored).
    Link(Interface),
    /// A link was deleted.
    LinkRemoved(u32),
    /// An address was added or re-announced on the interface with this index.
    AddressAdded(u32, Address),
    /// An address was removed from the interface with this index.
    AddressRemoved(u32, Address),
    /// A default route was added.
    RouteAdded(DefaultRoute),
    /// A default route replaced whatever route had the same family, table and metric
    /// (`ip route replace`: the kernel sends no deletion for the route it replaced).
    RouteReplaced(DefaultRoute),
    /// A default route was removed.
    RouteRemoved(DefaultRoute),
    /// Some other route (destination, prefix length) was added, changed or removed. Not kept
    /// in the state; it tells path monitors which kernel route lookups to repeat.
    RouteChanged(std::net::IpAddr, u8),
    /// A policy routing rule of this family was added or removed (`ip rule`). Not kept in the
    /// state; every path monitor's route lookup is repeated.
    RulesChanged(Family),
    /// The kernel's route decision for the representative destinations of a family
    /// (replacing the previous one of that family).
    Decision(Family, Vec<RouteDecision>),
    /// The neighbour entries of the gateways the route decision uses, all of them (replacing
    /// the previous list).
    Gateways(Vec<GatewayNeighbour>),
    /// A source above the kernel gave its verdict, replacing its previous one. A verdict with
    /// no opinion at all withdraws the source.
    Verdict(Verdict),
    /// The resolver configuration as now read.
    Dns(DnsConfig),
}
