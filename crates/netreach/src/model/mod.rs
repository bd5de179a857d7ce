//! The data floor: plain types that every other module reads and none of them import anything
//! from above. What the OS reported (interfaces, addresses, default routes), what sources
//! above the kernel said (verdicts), what is derived from both (levels, details), what is
//! published (events, path statuses) and the error type. Serde types and their trivial
//! methods only: the thinking that derives one from another lives above, in `fold.rs`,
//! `reachability.rs` and `refine.rs`.
//!
//! The files import std, serde and each other, in one direction (a test,
//! `tests/module_graph.rs`, checks it):
//!
//! ```text
//! error   address   dns
//!    \    /  |  \
//!    level   | interface
//!      |     |    |
//! disagreement | |
//!         \   |  /
//!       verdict  decision
//!          |    /    |
//!          |   /   reason
//!        state ---- neighbour
//!          |
//!        snapshot
//!          |
//!        event
//!          |
//!        path
//! ```

mod address;
mod decision;
mod diagnosis;
mod disagreement;
mod dns;
mod error;
mod event;
mod finding;
mod interface;
mod level;
mod measurement;
mod neighbour;
mod path;
mod reason;
mod snapshot;
mod state;
mod verdict;

pub use address::{Address, AddressFlags, AddressScope, Family};
pub use decision::{KernelRoute, Nexthop, Reject, RouteAnswer, RouteDecision};
pub use diagnosis::{Diagnosis, FamilyDiagnosis, Layer, LayerCheck, LayerStatus};
pub use disagreement::{ArbitrationRule, Disagreement, Subject};
pub use dns::{DnsConfig, DnsManager, DnsOrigin, Nameserver, NameserverAnswer, NameserverRoute};
pub use error::{Error, ErrorKind, Result};
pub use event::{Event, EventKind, ReachabilityOf, Update};
pub use finding::Finding;
#[cfg(target_os = "linux")] // for the resolver paths (sys/linux/dns)
pub(crate) use interface::display_name;
pub use interface::{Interface, InterfaceKind, OperState};
pub use level::{FamilyReachability, Level, Reachability, Source};
pub use measurement::{ProbeMeasurement, Timings};
pub use neighbour::{GatewayNeighbour, NeighbourState};
pub use path::{PathEvent, PathEventKind, PathOptions, PathState, PathStatus, Unreachable};
pub use reason::{Fallback, Reason, Reasons};
pub use snapshot::Snapshot;
pub use state::{DefaultRoute, NetworkState};
pub use verdict::{Details, Transport, Verdict};
