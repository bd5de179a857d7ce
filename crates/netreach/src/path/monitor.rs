//! The [`PathMonitor`] handle.

use std::sync::{Arc, Weak};

use super::fanout::{PathCallbackId, PathShared};
use super::registry::PathId;
use crate::model::{PathEvent, PathStatus};
use crate::subscription::Subscription;

/// Watches whether one connection's path (local address -> remote address) still works.
/// Made by [`crate::Monitor::watch_path`] and friends; many share one monitor. Dropping it
/// stops watching.
///
/// ```no_run
/// use std::net::TcpStream;
/// let monitor = netreach::Monitor::new()?;
/// let stream = TcpStream::connect("192.0.2.1:443").expect("connect");
/// let path = monitor.watch_tcp(&stream)?;
/// if let Some(reason) = path.status().reason() {
///     println!("dead path: {reason}; reconnect now instead of waiting for TCP timeouts");
/// }
/// # Ok::<(), netreach::Error>(())
/// ```
///
/// # The rule (Qt's `QNetworkConnectionMonitor`, made concrete)
///
/// The remote's address family decides which family counts. IPv4-mapped IPv6 addresses
/// (`::ffff:192.0.2.1`) are treated as the IPv4 address they carry. A path is unreachable when,
/// checked in this order:
///
/// | reason                      | condition                                                              |
/// |-----------------------------|------------------------------------------------------------------------|
/// | `local_address_gone`        | no interface owns the local address any more                           |
/// | `local_address_dad_failed`  | duplicate address detection failed for it                               |
/// | `local_address_tentative`   | duplicate address detection is still running (an optimistic address, RFC 4429, is usable meanwhile) |
/// | `interface_down`            | the interface owning it is administratively down                       |
/// | `no_carrier`                | that interface has no carrier (or is dormant / lower-layer down)       |
/// | `no_route`                  | the kernel has no route to the remote from that source address         |
/// | `route_via_other_interface` | the kernel's route to the remote now leaves through another interface  |
/// | `no_connectivity`           | Windows only: the Network List Manager says the connection cannot carry it (Qt's current rule; a reading older than the path counts only when it says the family has no network) |
///
/// A remote that is one of this host's own addresses (the kernel answers with a local route,
/// over `lo`) is reachable whatever the local interface's link: the kernel delivers it on this
/// host, so for such a path only the first three reasons apply. (While the local interface is
/// down or has no carrier only remotes that are the host's own addresses are asked about: a
/// link going down then costs no lookup per path.)
///
/// The route is asked as the kernel would route the connection's own socket: an IPv6
/// link-local path on its link (the scope id of [`crate::Monitor::watch_socket_addrs`], or the
/// only link owning a link-local local address; `RTA_OIF`, like `ip route get ... oif LINK`),
/// and with the socket's mark and owner ([`crate::PathOptions`]; read from the socket by
/// [`crate::Monitor::watch_tcp`] and [`crate::Monitor::watch_udp`]; `ip route get ... mark M
/// uid U`), so `fwmark` and `uidrange` policy rules are applied as to that socket. Adding or
/// removing a rule (`ip rule`) judges every path again.
///
/// A remote inside the local address's subnet needs only the path to that subnet: the kernel's
/// route is then the subnet's connected route, so a default route coming or going does not
/// touch it. Any other remote needs a route out, which the kernel lookup answers. The route is
/// asked of the kernel (`RTM_GETROUTE` for that destination and source, like
/// `ip route get REMOTE from LOCAL`) whenever a route covering the remote, the interface or
/// the local address changes; routing tables are never mirrored.
///
/// Many path monitors share one [`crate::Monitor`]: one netlink socket per namespace, and
/// indexes by local address, interface and remote address, so a change costs time in
/// proportion to the paths it touches, not to how many are watched.
#[must_use = "dropping a PathMonitor stops watching the path"]
pub struct PathMonitor {
    pub(crate) id: PathId,
    pub(crate) shared: Arc<PathShared>,
    /// The monitor, told when this handle is dropped; weak so a path never keeps it alive.
    pub(crate) owner: Weak<dyn PathOwner>,
}

/// What a [`PathMonitor`] needs from its monitor.
pub(crate) trait PathOwner: Send + Sync {
    /// The handle of path `id` was dropped.
    fn forget(&self, id: PathId);
    /// Reports a fault the monitor goes on from (a path callback panicked), as a non-fatal
    /// error event.
    fn report(&self, message: String);
}

impl PathMonitor {
    /// The current status.
    pub fn status(&self) -> PathStatus {
        self.shared.status()
    }

    /// True when the path is reachable; see [`PathMonitor::status`] for the reason when not.
    pub fn is_reachable(&self) -> bool {
        self.shared.is_reachable()
    }

    /// Subscribes to changes: [`crate::PathEventKind::Changed`] with the current status first,
    /// then one per change (bounded like the monitor's own subscriptions: on overflow
    /// [`crate::PathEventKind::Lagged`] and the current status).
    pub fn subscribe(&self) -> Subscription<PathEvent> {
        self.shared.subscribe()
    }

    /// Calls `callback` with the current status at once, on this thread, then with every
    /// change, on the monitor's thread; in order, never concurrently, outside every lock (it
    /// may call [`PathMonitor::status`] or [`crate::Monitor::snapshot`]). A callback that
    /// panics is removed, and an [`crate::EventKind::Error`] on the monitor says so.
    ///
    /// ```no_run
    /// let monitor = netreach::Monitor::new()?;
    /// let path = monitor.watch_path("192.0.2.10".parse().unwrap(), "198.51.100.1".parse().unwrap())?;
    /// let id = path.on_change(|status| println!("reachable: {}", status.is_reachable()));
    /// assert!(path.remove_callback(id));
    /// # Ok::<(), netreach::Error>(())
    /// ```
    pub fn on_change<F>(&self, callback: F) -> PathCallbackId
    where
        F: FnMut(&PathStatus) + Send + 'static,
    {
        self.shared.on_change(Box::new(callback), self.owner.clone())
    }

    /// Removes a callback: no call of it starts after this returns. Returns false if it was
    /// not registered here (or already removed, e.g. because it panicked).
    pub fn remove_callback(&self, id: PathCallbackId) -> bool {
        self.shared.remove_callback(id)
    }
}

impl std::fmt::Debug for PathMonitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PathMonitor").field("status", &self.status()).finish()
    }
}

impl Drop for PathMonitor {
    fn drop(&mut self) {
        if let Some(owner) = self.owner.upgrade() {
            owner.forget(self.id);
        }
    }
}
