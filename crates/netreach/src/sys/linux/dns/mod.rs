//! The resolver configuration, read from its files and followed with inotify (no polling).
//!
//! What is read: the resolver file (`/etc/resolv.conf`, or a namespace's own under
//! `/etc/netns/NAME/`), through its chain of symbolic links; when it names systemd-resolved's
//! stub listener, resolved's upstream file (`/run/systemd/resolve/resolv.conf`) beside it.
//! What is followed: every directory holding a link of that chain, its final target or the
//! upstream file, for the names that matter there: a file replaced by rename, edited in place
//! (once its writer closes it: never half-written), a symlink retargeted, or a directory that
//! appears (resolved starting) all wake the watch,
//! which reads everything again and reports a change only when the result differs. Other
//! files in those directories wake it too (inotify watches directories), but are told apart
//! by name at once and cost no read.

mod parse;

use std::ffi::{OsStr, OsString};
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};

use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, WatchDescriptor};

use crate::model::{display_name, DnsConfig, DnsManager, DnsOrigin, Error};

/// The system resolver's file.
pub(crate) const RESOLV_CONF: &str = "/etc/resolv.conf";
/// systemd-resolved's list of upstream servers (what its stub forwards to).
pub(crate) const RESOLVED_UPSTREAM: &str = "/run/systemd/resolve/resolv.conf";
/// systemd-resolved's stub listeners: 127.0.0.53 (the stub) and 127.0.0.54 (the proxy).
const RESOLVED_STUBS: [Ipv4Addr; 2] = [Ipv4Addr::new(127, 0, 0, 53), Ipv4Addr::new(127, 0, 0, 54)];
/// Symbolic links followed at most (as the kernel's own limit, ELOOP).
const MAX_LINKS: usize = 40;

/// The resolver file for a monitor: a namespace named NAME (under a directory such as
/// /run/netns) uses `/etc/netns/NAME/resolv.conf` when that exists, as `ip netns exec` does
/// by bind-mounting it; otherwise, and for the caller's own namespace, `/etc/resolv.conf`.
pub(crate) fn resolver_file(netns: Option<&Path>) -> PathBuf {
    let own = netns
        .and_then(Path::file_name)
        .map(|name| Path::new("/etc/netns").join(name).join("resolv.conf"))
        .filter(|path| path.exists());
    own.unwrap_or_else(|| PathBuf::from(RESOLV_CONF))
}

/// Follows a resolver configuration; its descriptor goes into the source's wait set.
pub(crate) struct DnsWatch {
    inotify: Inotify,
    file: PathBuf,
    /// Where the upstream servers are behind a stub ([`RESOLVED_UPSTREAM`]; a test's own).
    upstream: PathBuf,
    /// Watched directories, and the names in each that matter.
    watched: Vec<(WatchDescriptor, PathBuf, Vec<OsString>)>,
    current: DnsConfig,
}

impl DnsWatch {
    /// Reads the configuration in `file` (behind a stub: in `upstream`) and starts following it.
    pub(crate) fn new(file: PathBuf, upstream: PathBuf) -> Result<DnsWatch, Error> {
        let inotify = Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK)
            .map_err(|e| Error::io("creating an inotify instance for the resolver configuration", e.into()))?;
        let (current, places) = read(&file, &upstream);
        let mut watch = DnsWatch { inotify, file, upstream, watched: Vec::new(), current };
        watch.arm(places);
        Ok(watch)
    }

    /// The configuration as last read.
    pub(crate) fn current(&self) -> &DnsConfig {
        &self.current
    }

    /// The descriptor that becomes readable when something may have changed.
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.inotify.as_fd()
    }

    /// Called when [`DnsWatch::fd`] is readable: the new configuration if it changed.
    pub(crate) fn changed(&mut self) -> Option<DnsConfig> {
        let events = self.inotify.read_events().unwrap_or_default();
        let relevant = events.iter().any(|event| {
            // An overflow (events lost) or a watched directory gone or moved: read again.
            if event.mask.intersects(AddWatchFlags::IN_Q_OVERFLOW | AddWatchFlags::IN_IGNORED) {
                return true;
            }
            let Some((_, dir, names)) = self.watched.iter().find(|(wd, _, _)| *wd == event.wd) else { return false };
            if event.mask.intersects(AddWatchFlags::IN_DELETE_SELF | AddWatchFlags::IN_MOVE_SELF) {
                return true;
            }
            let Some(name) = event.name.as_deref().filter(|n| names.iter().any(|m| m == n)) else { return false };
            // A regular file created in place is still being written: its IN_CLOSE_WRITE
            // comes when it is whole (a symlink or a directory is whole when created).
            !(event.mask.contains(AddWatchFlags::IN_CREATE)
                && std::fs::symlink_metadata(dir.join(name)).is_ok_and(|m| m.is_file()))
        });
        if !relevant {
            return None;
        }
        let (fresh, places) = read(&self.file, &self.upstream);
        self.arm(places);
        if fresh == self.current {
            return None;
        }
        self.current = fresh.clone();
        Some(fresh)
    }

    /// Watches exactly the directories `places` names (adding and removing watches).
    fn arm(&mut self, places: Vec<(PathBuf, OsString)>) {
        let mut wanted: Vec<(PathBuf, Vec<OsString>)> = Vec::new();
        for (dir, name) in places {
            match wanted.iter_mut().find(|(d, _)| *d == dir) {
                Some((_, names)) => names.push(name),
                None => wanted.push((dir, vec![name])),
            }
        }
        let flags = AddWatchFlags::IN_CREATE
            | AddWatchFlags::IN_DELETE
            | AddWatchFlags::IN_MOVED_FROM
            | AddWatchFlags::IN_MOVED_TO
            // Not IN_MODIFY: an edit in place truncates first, and the file read then would be
            // empty; IN_CLOSE_WRITE comes once the writer is done.
            | AddWatchFlags::IN_CLOSE_WRITE
            | AddWatchFlags::IN_DELETE_SELF
            | AddWatchFlags::IN_MOVE_SELF
            | AddWatchFlags::IN_ONLYDIR;
        for (wd, dir, _) in std::mem::take(&mut self.watched) {
            if !wanted.iter().any(|(d, _)| *d == dir) {
                let _ = self.inotify.rm_watch(wd); // fails only if the directory went: fine
            }
        }
        for (dir, names) in wanted {
            // Adding a watch on a directory already watched returns its descriptor again.
            if let Ok(wd) = self.inotify.add_watch(&dir, flags) {
                self.watched.push((wd, dir, names));
            }
        }
    }
}

/// Reads the configuration in `file`; also returns the (directory, name) places whose change
/// can change it.
fn read(file: &Path, upstream: &Path) -> (DnsConfig, Vec<(PathBuf, OsString)>) {
    let mut places = Vec::new();
    let mut problem = None;
    let target = follow(file, &mut places, &mut problem);
    let text = read_capped(target.as_deref().unwrap_or(file), &mut problem);
    let conf = parse::parse(&text);
    let mut origin = DnsOrigin {
        file: path_text(file),
        target: target.as_deref().filter(|t| *t != file).map(path_text),
        manager: manager(target.as_deref().unwrap_or(file), conf.by_networkmanager),
        stub: None,
        upstream: None,
        problem: None,
    };
    let mut config = DnsConfig { nameservers: conf.nameservers, search: conf.search, origin: DnsOrigin::default() };
    let stub = match config.nameservers[..] {
        [ref only] if RESOLVED_STUBS.iter().any(|s| only.address == IpAddr::V4(*s)) => Some(only.address),
        _ => None,
    };
    if let Some(stub) = stub {
        // Behind the stub, the servers that matter are resolved's own upstream ones.
        let target = follow(upstream, &mut places, &mut problem);
        let text = read_capped(target.as_deref().unwrap_or(upstream), &mut problem);
        config.nameservers = parse::parse(&text).nameservers;
        origin.stub = Some(stub);
        origin.upstream = Some(path_text(upstream));
        origin.manager = DnsManager::SystemdResolved;
    }
    if conf.skipped > 0 && problem.is_none() {
        problem = Some(format!("{} search domain(s) that are not text were skipped", conf.skipped));
    }
    origin.problem = problem;
    config.origin = origin;
    (config, places)
}

/// Follows `path`'s symbolic links to the final target, recording every place on the way;
/// `None` (and a problem) when the chain is broken or too long.
fn follow(path: &Path, places: &mut Vec<(PathBuf, OsString)>, problem: &mut Option<String>) -> Option<PathBuf> {
    let mut at = path.to_owned();
    for _ in 0..MAX_LINKS {
        place(&at, places);
        match std::fs::read_link(&at) {
            Ok(next) => at = at.parent().unwrap_or(Path::new("/")).join(next),
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => return Some(at), // not a link
            Err(e) => {
                problem.get_or_insert_with(|| format!("cannot read {}: {e}", at.display()));
                return None;
            }
        }
    }
    problem.get_or_insert_with(|| format!("{}: too many levels of symbolic links", path.display()));
    None
}

/// Records where a change of `path` shows: its directory, or, if that does not exist (yet),
/// the nearest ancestor that does, for the first missing component.
fn place(path: &Path, places: &mut Vec<(PathBuf, OsString)>) {
    let mut name = path.file_name().map(OsStr::to_owned);
    let mut dir = path.parent();
    while let (Some(d), Some(n)) = (dir, &name) {
        if d.is_dir() {
            places.push((d.to_owned(), n.clone()));
            return;
        }
        name = d.file_name().map(OsStr::to_owned);
        dir = d.parent();
    }
}

/// The file's first [`parse::MAX_FILE`] bytes; empty (and a problem) if it cannot be read.
fn read_capped(path: &Path, problem: &mut Option<String>) -> Vec<u8> {
    use std::io::Read;
    let mut text = Vec::new();
    let read = std::fs::File::open(path).and_then(|f| f.take(parse::MAX_FILE as u64).read_to_end(&mut text));
    if let Err(e) = read {
        problem.get_or_insert_with(|| format!("cannot read {}: {e}", path.display()));
        text.clear();
    }
    text
}

/// A path as the model shows it: the text, or for one that is not UTF-8 the display form
/// interface names use (each odd byte `\xNN`).
fn path_text(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let bytes = path.as_os_str().as_bytes();
    std::str::from_utf8(bytes).map(str::to_owned).unwrap_or_else(|_| display_name(bytes))
}

/// Who manages the file, from where it lives (under any root: a container's, a test's) and
/// its header.
fn manager(path: &Path, by_networkmanager: bool) -> DnsManager {
    let path = path.to_string_lossy();
    if path.contains("/run/systemd/resolve/") {
        DnsManager::SystemdResolved
    } else if path.contains("/run/NetworkManager/") || by_networkmanager {
        DnsManager::NetworkManager
    } else if path.contains("/run/resolvconf/") || path.contains("/etc/resolvconf/run/") {
        DnsManager::Resolvconf
    } else {
        DnsManager::Unknown
    }
}

#[cfg(test)]
mod tests;
