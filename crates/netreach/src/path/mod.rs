//! Per-connection reachability: is the path from a local address to a remote one still
//! alive? The rule is documented on [`crate::PathMonitor`]. What is reported
//! ([`crate::PathStatus`], [`crate::PathEvent`]) is plain data in the model.
//!
//! - `rule`: validation, prefix maths and the reasons table (pure).
//! - `lookup`: the kernel's route answers an OS source gives, cached per reaction.
//! - `registry`: the watched paths, their indexes, and reactions to changes (engine side).
//! - `fanout`: one path's status, subscriptions and callbacks.
//! - `monitor`: the [`PathMonitor`] handle.

mod fanout;
mod lookup;
mod monitor;
mod registry;
mod rule;

pub use fanout::PathCallbackId;
pub(crate) use fanout::PathShared;
pub(crate) use lookup::{Answer, Query, Route, RouteLookup};
pub use monitor::PathMonitor;
pub(crate) use monitor::PathOwner;
pub(crate) use registry::{touched_by, PathId, PathRegistry, Touch};
pub(crate) use rule::check_against_state;
pub(crate) use rule::in_prefix; // also IP Helper's route table (`rows`) is matched by prefix
pub use rule::validate_path;

#[cfg(test)]
#[path = "rule_tests.rs"]
mod rule_tests;
