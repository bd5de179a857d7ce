//! What a path monitor reports: a path's status (reachable through its interface, or
//! unreachable with a reason) and the events of a path's subscriptions. Plain data.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::SystemTime;

use serde::{Serialize, Serializer};

use super::event::rfc3339;

/// Why a path is unreachable. `Display` quotes interface names verbatim, not escaped for a
/// terminal (see [the crate documentation](crate#strings-from-outside-are-kept-exact)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Unreachable {
    /// No interface owns the local address any more.
    LocalAddressGone,
    /// Duplicate address detection failed for the local address.
    LocalAddressDadFailed,
    /// Duplicate address detection is still running for the local address.
    LocalAddressTentative,
    /// The interface owning the local address is administratively down.
    InterfaceDown {
        /// That interface.
        interface: Arc<str>,
    },
    /// The interface owning the local address has no carrier.
    NoCarrier {
        /// That interface.
        interface: Arc<str>,
    },
    /// The kernel has no route to the remote from the local address.
    NoRoute,
    /// The kernel's route to the remote leaves through another interface than the one owning
    /// the local address.
    RouteViaOtherInterface {
        /// The interface owning the local address.
        expected: Arc<str>,
        /// The interface the route now leaves through.
        actual: Arc<str>,
    },
    /// The operating system's own judgement of the connection says it carries no traffic to
    /// the remote (Windows: the Network List Manager's connectivity of the connection on this
    /// interface, by Qt's current rule: a link-local pair needs any connectivity of its
    /// family, a same-subnet remote subnet, local-network or internet connectivity, any other
    /// remote internet; a reading older than the path judges it only when it says the family
    /// has no network at all; see `nlm::path_verdict`).
    NoConnectivity {
        /// The interface owning the local address.
        interface: Arc<str>,
    },
    /// The route could not be looked up (a netlink failure; the monitor is recovering).
    LookupFailed {
        /// What failed.
        message: String,
    },
}

impl Unreachable {
    /// True for the reasons that name the interface owning the local address themselves.
    fn names_interface(&self) -> bool {
        matches!(
            self,
            Unreachable::InterfaceDown { .. } | Unreachable::NoCarrier { .. } | Unreachable::NoConnectivity { .. }
        )
    }
}

impl std::fmt::Display for Unreachable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unreachable::LocalAddressGone => f.write_str("no interface owns the local address any more"),
            Unreachable::LocalAddressDadFailed => {
                f.write_str("duplicate address detection failed for the local address")
            }
            Unreachable::LocalAddressTentative => {
                f.write_str("the local address is tentative (duplicate address detection running)")
            }
            Unreachable::InterfaceDown { interface } => write!(f, "interface {interface} is down"),
            Unreachable::NoCarrier { interface } => write!(f, "interface {interface} has no carrier"),
            Unreachable::NoRoute => f.write_str("no route to the remote from the local address"),
            Unreachable::RouteViaOtherInterface { expected, actual } => {
                write!(f, "the route to the remote now leaves through {actual}, not {expected}")
            }
            Unreachable::NoConnectivity { interface } => {
                write!(f, "the system reports no connectivity to the remote on {interface}")
            }
            Unreachable::LookupFailed { message } => write!(f, "route lookup failed: {message}"),
        }
    }
}

/// What a socket carries into the kernel's route decision besides its two addresses: its
/// mark (`SO_MARK`, which `ip rule ... fwmark` matches) and its owner (which `ip rule ...
/// uidrange` matches). A path watched with these is judged as the kernel judges that socket.
/// Paths made from a socket ([`crate::Monitor::watch_tcp`], [`crate::Monitor::watch_udp`])
/// read them from it. Linux only: elsewhere a path with either is refused.
///
/// ```
/// let options = netreach::PathOptions::new().mark(7).uid(1000);
/// assert_eq!((options.mark, options.uid), (Some(7), Some(1000)));
/// assert_eq!(netreach::PathOptions::default().mark, None);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize)]
#[non_exhaustive]
pub struct PathOptions {
    /// The socket's mark; `None`: no mark (as 0).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mark: Option<u32>,
    /// The uid owning the socket; `None`: this process's own (the monitor asks the kernel as it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
}

impl PathOptions {
    /// No mark, this process's uid: how a plain socket of this process is routed.
    pub fn new() -> Self {
        PathOptions::default()
    }

    /// Judges the path as for a socket with this mark (`setsockopt(SO_MARK)`).
    ///
    /// ```
    /// assert_eq!(netreach::PathOptions::new().mark(7).mark, Some(7));
    /// ```
    pub fn mark(mut self, mark: u32) -> Self {
        self.mark = Some(mark);
        self
    }

    /// Judges the path as for a socket owned by this uid.
    ///
    /// ```
    /// assert_eq!(netreach::PathOptions::new().uid(1000).uid, Some(1000));
    /// ```
    pub fn uid(mut self, uid: u32) -> Self {
        self.uid = Some(uid);
        self
    }
}

/// Whether one path is reachable, and why not.
///
/// Serialised (e.g. by `netreach check --json`) as one flat object: `local`, `remote`,
/// `mark` and `uid` when the path was watched with them ([`PathOptions`]), `reachable`, the
/// reason's fields when unreachable (`reason` and, for some reasons,
/// `expected`/`actual`/`message`), `interface` (null when no interface owns the local address)
/// and `same_subnet`:
///
/// ```
/// use netreach::{PathOptions, PathState, PathStatus, Unreachable};
/// let status = PathStatus {
///     local: "192.0.2.10".parse().unwrap(),
///     remote: "198.51.100.1".parse().unwrap(),
///     options: PathOptions::new().mark(7),
///     state: PathState::Unreachable { reason: Unreachable::NoRoute, interface: Some("eth0".into()), same_subnet: false },
/// };
/// assert_eq!(
///     serde_json::to_string(&status).unwrap(),
///     r#"{"local":"192.0.2.10","remote":"198.51.100.1","mark":7,"reachable":false,"reason":"no_route","interface":"eth0","same_subnet":false}"#
/// );
/// assert_eq!(status.reason(), Some(&Unreachable::NoRoute));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathStatus {
    /// The local address (IPv4-mapped IPv6 normalised to IPv4).
    pub local: IpAddr,
    /// The remote address (normalised likewise).
    pub remote: IpAddr,
    /// The socket's mark and owner the path is judged with.
    pub options: PathOptions,
    /// Reachable or not, with what goes with each.
    pub state: PathState,
}

/// A path's state: a reachable path always has its interface, an unreachable one always a
/// reason. Interface names are shared (`Arc<str>`): many paths, one name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathState {
    /// The path works as far as this machine can tell.
    Reachable {
        /// The interface owning the local address (the kernel's route leaves through it).
        interface: Arc<str>,
        /// True when the remote is inside the local address's subnet (needs no route out).
        same_subnet: bool,
    },
    /// The path does not work.
    Unreachable {
        /// Why.
        reason: Unreachable,
        /// The interface owning the local address; `None` only when no interface owns it
        /// ([`Unreachable::LocalAddressGone`]). Reasons that name an interface name this one.
        interface: Option<Arc<str>>,
        /// True when the remote is inside the local address's subnet (false when unknown).
        same_subnet: bool,
    },
}

impl PathStatus {
    /// True when the path works as far as this machine can tell.
    pub fn is_reachable(&self) -> bool {
        matches!(self.state, PathState::Reachable { .. })
    }

    /// Why the path is unreachable; `None` when it is reachable.
    pub fn reason(&self) -> Option<&Unreachable> {
        match &self.state {
            PathState::Reachable { .. } => None,
            PathState::Unreachable { reason, .. } => Some(reason),
        }
    }

    /// The interface owning the local address, when one does.
    pub fn interface(&self) -> Option<&str> {
        match &self.state {
            PathState::Reachable { interface, .. } => Some(interface),
            PathState::Unreachable { interface, .. } => interface.as_deref(),
        }
    }

    /// True when the remote is inside the local address's subnet.
    pub fn same_subnet(&self) -> bool {
        match self.state {
            PathState::Reachable { same_subnet, .. } | PathState::Unreachable { same_subnet, .. } => same_subnet,
        }
    }
}

impl Serialize for PathStatus {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        /// The flat wire shape (unchanged since paths were first printed).
        #[derive(Serialize)]
        struct Wire<'a> {
            local: IpAddr,
            remote: IpAddr,
            #[serde(flatten)]
            options: PathOptions,
            reachable: bool,
            #[serde(flatten)]
            reason: Option<&'a Unreachable>,
            /// Outer `None`: the reason already named it (a JSON object has each key once).
            #[serde(skip_serializing_if = "Option::is_none")]
            interface: Option<Option<&'a str>>,
            same_subnet: bool,
        }
        let reason = self.reason();
        Wire {
            local: self.local,
            remote: self.remote,
            options: self.options,
            reachable: self.is_reachable(),
            reason,
            interface: (!reason.is_some_and(Unreachable::names_interface)).then(|| self.interface()),
            same_subnet: self.same_subnet(),
        }
        .serialize(serializer)
    }
}

/// One item of a path's [`crate::Subscription`], stamped with the time netreach saw it.
///
/// Serialised (e.g. by `netreach check --watch --json`) as one flat object with a `"type"`
/// field: `{"timestamp":"2026-11-23T10:00:00.123456Z","type":"path_changed","status":{...}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PathEvent {
    /// When netreach processed the change (RFC 3339 in JSON).
    #[serde(serialize_with = "rfc3339")]
    pub timestamp: SystemTime,
    /// What happened.
    #[serde(flatten)]
    pub kind: PathEventKind,
}

/// What happened to a watched path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum PathEventKind {
    /// The path's status: first the current one, then every change.
    #[serde(rename = "path_changed")]
    Changed {
        /// The new status.
        status: PathStatus,
    },
    /// This subscriber fell behind and `missed` events were dropped; the current status
    /// follows.
    Lagged {
        /// How many events were dropped.
        missed: u64,
    },
}

#[cfg(test)]
#[path = "path_tests.rs"]
mod tests;
