//! # netreach-c
//!
//! The C ABI of [`netreach`]: create a monitor, read its state, subscribe with a C callback,
//! watch a connection's path, ask for a fresh check, destroy. The header
//! `include/netreach.h` is generated from this crate by cbindgen (`tests/header.rs` fails
//! when it is stale; `NETREACH_BLESS=1` rewrites it) and states the ownership and threading
//! rules; `netreach-c.pc.in` is the pkg-config template.
//!
//! Rules kept by every function here: no panic crosses the boundary (each body runs under
//! `catch_unwind`; a caught panic is `NETREACH_STATUS_INTERNAL`); a NULL or invalid argument
//! is an error with a message, never undefined behaviour this side can detect; every object
//! is freed by exactly one call, and freeing in any order (a monitor before its
//! subscriptions and paths, or from inside a callback) is safe.
//!
//! ```c
//! #include <netreach.h>
//! NetreachMonitor *monitor;
//! NetreachState *state;
//! if (netreach_monitor_new(NULL, &monitor) == NETREACH_STATUS_OK
//!     && netreach_monitor_state(monitor, &state) == NETREACH_STATUS_OK) {
//!     NetreachLevel level;
//!     netreach_state_level(state, NETREACH_FAMILY_OVERALL, &level, NULL);
//!     printf("%s\n", netreach_level_name(level));
//!     netreach_state_free(state);
//! }
//! netreach_monitor_free(monitor);
//! ```

mod args;
mod error;
mod event;
mod monitor;
mod options;
mod path;
mod slot;
mod state;
mod subscribe;
mod vocab;

pub use error::{netreach_last_error_code, netreach_last_error_message, NetreachStatus};
pub use event::{
    netreach_event_error, netreach_event_json, netreach_event_reachability, netreach_event_state, netreach_event_type,
    NetreachEvent, NetreachEventType,
};
pub use monitor::{
    netreach_monitor_check, netreach_monitor_free, netreach_monitor_new, netreach_monitor_state, NetreachMonitor,
};
pub use options::{
    netreach_options_add_probe_url, netreach_options_free, netreach_options_new, netreach_options_set_backend,
    netreach_options_set_netns, netreach_options_set_probe_timeout_ms, netreach_options_set_system_bus_address,
    NetreachBackend, NetreachOptions,
};
pub use path::{
    netreach_monitor_watch_path, netreach_path_free, netreach_path_status, netreach_path_status_free,
    netreach_path_status_interface, netreach_path_status_json, netreach_path_status_reachable,
    netreach_path_status_reason, NetreachPath, NetreachPathCallback, NetreachPathStatus,
};
pub use state::{
    netreach_state_captive_portal, netreach_state_free, netreach_state_json, netreach_state_level,
    netreach_state_metered, netreach_state_portal_url, netreach_state_reason, netreach_state_transport, NetreachState,
};
pub use subscribe::{
    netreach_monitor_subscribe, netreach_subscription_free, NetreachEventCallback, NetreachSubscription,
};
pub use vocab::{
    netreach_level_name, netreach_source_name, netreach_transport_name, NetreachFamily, NetreachLevel, NetreachSource,
    NetreachTransport, NetreachTristate,
};
