//! [`Monitor`]'s per-connection paths: watching whether one connection's path (local ->
//! remote) still works. The handle asks its engine thread to add the path (the route lookup
//! runs there); [`PathMonitor`] is the rest. Apart from `monitor.rs` to keep each file one job.

use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::sync::{mpsc, Arc};

use crate::engine::{stopped, Command};
use crate::model::{Error, PathOptions};
use crate::monitor::Monitor;
use crate::path::{check_against_state, validate_path, PathMonitor, PathOwner, Query};

impl Monitor {
    /// Watches the path from `local` to `remote`: whether a connection between them can still
    /// work, and the moment that changes. See [`PathMonitor`] for the rule. Fails with a
    /// clear error for unspecified, loopback, multicast or broadcast addresses, mixed
    /// families, or a local address no interface owns.
    ///
    /// ```no_run
    /// let monitor = netreach::Monitor::new()?;
    /// let path = monitor.watch_path("192.0.2.10".parse().unwrap(), "198.51.100.1".parse().unwrap())?;
    /// println!("{}", if path.is_reachable() { "reachable" } else { "unreachable" });
    /// # Ok::<(), netreach::Error>(())
    /// ```
    pub fn watch_path(&self, local: IpAddr, remote: IpAddr) -> Result<PathMonitor, Error> {
        self.watch_path_with((local, 0).into(), (remote, 0).into(), PathOptions::new())
    }

    /// Watches the path between two socket addresses (ports are ignored). The scope id of an
    /// IPv6 link-local address names its link: the path is judged on that link.
    pub fn watch_socket_addrs(&self, local: SocketAddr, remote: SocketAddr) -> Result<PathMonitor, Error> {
        self.watch_path_with(local, remote, PathOptions::new())
    }

    /// Watches the path between two socket addresses (ports are ignored; link-local scope ids
    /// name the link) as the kernel judges it for a socket with `options`: its mark and owner,
    /// which policy routing rules (`ip rule ... fwmark`, `uidrange`) match. Fails, besides as
    /// [`Monitor::watch_path`] does, for a scope id on an address that takes none, a scope id
    /// naming no interface, ends on two different links, or a link-local end whose link is not
    /// known; elsewhere than on Linux, for a mark or uid.
    ///
    /// ```no_run
    /// use netreach::PathOptions;
    /// let monitor = netreach::Monitor::new()?;
    /// let local = "[fe80::10%2]:0".parse().unwrap();
    /// let remote = "[fe80::1%2]:0".parse().unwrap();
    /// let path = monitor.watch_path_with(local, remote, PathOptions::new().mark(7))?;
    /// println!("{:?}", path.status());
    /// # Ok::<(), netreach::Error>(())
    /// ```
    pub fn watch_path_with(
        &self,
        local: SocketAddr,
        remote: SocketAddr,
        options: PathOptions,
    ) -> Result<PathMonitor, Error> {
        let (local_ip, remote_ip) = validate_path(local.ip(), remote.ip())?;
        if cfg!(not(target_os = "linux")) && options != PathOptions::default() {
            return Err(Error::invalid_input(format!(
                "a socket mark or uid ({options:?}) only means something to Linux's policy routing"
            )));
        }
        let scope_of = |end: SocketAddr| match end {
            SocketAddr::V6(v6) => Some(v6.scope_id()),
            SocketAddr::V4(_) => None,
        };
        let scope = check_against_state(&self.snapshot(), local_ip, remote_ip, [scope_of(local), scope_of(remote)])?;
        let query = Query { local: local_ip, remote: remote_ip, scope, mark: options.mark, uid: options.uid };
        let (reply, answer) = mpsc::sync_channel(1);
        self.engine.shared.command(Command::AddPath { query, reply })?;
        let (id, shared) = answer.recv().map_err(|_| stopped())?;
        let owner: Arc<dyn PathOwner> = self.engine.shared.clone();
        Ok(PathMonitor { id, shared, owner: Arc::downgrade(&owner) })
    }

    /// Watches the path of a connected TCP stream (its local and peer addresses), judged as
    /// the kernel judges that socket: with its mark and owner (Linux).
    pub fn watch_tcp(&self, stream: &TcpStream) -> Result<PathMonitor, Error> {
        let ends = stream.local_addr().and_then(|l| stream.peer_addr().map(|r| (l, r)));
        let (local, remote) = ends.map_err(|e| Error::io("reading the TCP stream's addresses", e))?;
        self.watch_path_with(local, remote, socket_options(stream)?)
    }

    /// Watches the path of a connected UDP socket (its local and peer addresses), judged as
    /// the kernel judges that socket: with its mark and owner (Linux).
    pub fn watch_udp(&self, socket: &UdpSocket) -> Result<PathMonitor, Error> {
        let ends = socket.local_addr().and_then(|l| socket.peer_addr().map(|r| (l, r)));
        let (local, remote) =
            ends.map_err(|e| Error::io("reading the UDP socket's addresses (it must be connected)", e))?;
        self.watch_path_with(local, remote, socket_options(socket)?)
    }
}

/// The mark and owner a socket's traffic is routed by.
#[cfg(target_os = "linux")]
fn socket_options(socket: &impl std::os::fd::AsFd) -> Result<PathOptions, Error> {
    crate::sys::socket_options(socket).map_err(|e| Error::io("reading the socket's mark and owner", e))
}

/// Elsewhere routing knows no socket mark or owner.
#[cfg(not(target_os = "linux"))]
fn socket_options<T>(_: &T) -> Result<PathOptions, Error> {
    Ok(PathOptions::new())
}
