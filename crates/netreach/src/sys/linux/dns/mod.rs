//! The resolver configuration, read from its files and followed with inotify (no polling).
//!
//! What is read: the resolver file (`/etc/resolv.conf`, or a namespace's own under
//! `/etc/netns/NAME/`), through its chain of symbolic links; when it names systemd-resolved's
//! stub listener, resolved's upstream file (`/run/systemd/resolve/resolv.conf`) beside it.
//! What is followed ([`hub`]: one inotify instance and one thread per process, for every
//! monitor): every directory holding a link of that chain, its final target or the
//! upstream file, for the names that matter there: a file replaced by rename, edited in place
//! (once its writer closes it: never half-written), a symlink retargeted, or a directory that
//! appears (resolved starting) all wake the watch,
//! which reads everything again and reports a change only when the result differs. Other
//! files in those directories wake it too (inotify watches directories), but are told apart
//! by name at once and cost no read.

mod hub;
mod parse;
mod read;

use std::path::{Path, PathBuf};

pub(crate) use self::hub::Follow;

/// The system resolver's file.
pub(crate) const RESOLV_CONF: &str = "/etc/resolv.conf";
/// systemd-resolved's list of upstream servers (what its stub forwards to).
pub(crate) const RESOLVED_UPSTREAM: &str = "/run/systemd/resolve/resolv.conf";

/// The resolver file for a monitor: a namespace named NAME (`/run/netns/NAME`) uses `/etc/netns/NAME/resolv.conf` when that exists, as `ip netns exec` does
/// by bind-mounting it; otherwise, and for the caller's own namespace, `/etc/resolv.conf`.
pub(crate) fn resolver_file(netns: Option<&Path>) -> PathBuf {
    // Only a namespace that `ip netns` named has a name there (not /proc/PID/ns/net, not a
    // container runtime's file).
    let named = |path: &&Path| {
        path.parent().is_some_and(|dir| dir == Path::new("/run/netns") || dir == Path::new("/var/run/netns"))
    };
    let own = netns
        .filter(named)
        .and_then(Path::file_name)
        .map(|name| Path::new("/etc/netns").join(name).join("resolv.conf"))
        .filter(|path| path.exists());
    own.unwrap_or_else(|| PathBuf::from(RESOLV_CONF))
}

#[cfg(test)]
mod tests;
