//! Reading the resolver configuration from its files: the symlink chain, the stub's upstream
//! file, who manages it, and the places (directory, name) whose change can change it.

use std::ffi::{OsStr, OsString};
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use super::parse;
use crate::model::{display_name, DnsConfig, DnsManager, DnsOrigin};

/// systemd-resolved's stub listeners: 127.0.0.53 (the stub) and 127.0.0.54 (the proxy).
const RESOLVED_STUBS: [Ipv4Addr; 2] = [Ipv4Addr::new(127, 0, 0, 53), Ipv4Addr::new(127, 0, 0, 54)];
/// Symbolic links followed at most (as the kernel's own limit, ELOOP).
const MAX_LINKS: usize = 40;

/// A place whose change can change a configuration: a directory and a name in it.
pub(super) type Place = (PathBuf, OsString);

/// Reads the configuration in `file`; also returns the (directory, name) places whose change
/// can change it.
pub(super) fn read(file: &Path, upstream: &Path) -> (DnsConfig, Vec<Place>) {
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
fn follow(path: &Path, places: &mut Vec<Place>, problem: &mut Option<String>) -> Option<PathBuf> {
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
fn place(path: &Path, places: &mut Vec<Place>) {
    let mut name = path.file_name().map(OsStr::to_owned);
    let mut dir = path.parent();
    while let (Some(d), Some(n)) = (dir, &name) {
        if d.is_dir() {
            // Canonical, so that one directory reached two ways (`etc/../run`, `/var/run`)
            // is one watch, and inotify's events (named by watch) match it.
            places.push((std::fs::canonicalize(d).unwrap_or_else(|_| d.to_owned()), n.clone()));
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
