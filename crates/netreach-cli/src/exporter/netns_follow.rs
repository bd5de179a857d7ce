//! `--all-netns`: every network namespace under the configured directories (default
//! `/run/netns`), followed as they come and go, without polling.
//!
//! A namespace file is a namespace only while a namespace is bind-mounted on it (`ip netns
//! add` creates an empty file, then mounts; `ip netns del` unmounts, then unlinks). So two
//! kernel notifications wake the follower, and nothing else: inotify on the directories
//! (files created, deleted, renamed) and the mount table (`/proc/self/mountinfo` reports
//! every mount change to poll() as POLLPRI). Each wake-up re-reads the directories (a
//! `stat` per file) and reconciles: new namespaces get a monitor, deleted ones (or ones
//! replaced by another namespace under the same name) are dropped with their series.

use std::collections::BTreeMap;
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};

use super::registry::{lock, Namespace, Registry, Watched};

/// How a namespace's monitor is opened (the builder's options, decided by the command line).
pub(crate) type Open = Box<dyn Fn(&Path) -> Result<netreach::Monitor, netreach::Error> + Send>;

/// The directories are usable: each exists and can be listed (exit 2 otherwise: the user
/// named them). `/run/netns` when not named may be missing: `ip netns add` creates it later.
pub(crate) fn check(dirs: &[PathBuf], named: bool) -> Result<(), String> {
    for dir in dirs {
        match std::fs::read_dir(dir) {
            Ok(_) => {}
            Err(e) if !named && e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("--netns-dir {}: {e}", dir.display())),
        }
    }
    Ok(())
}

/// A namespace file found in a directory.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Found {
    pub(crate) label: String,
    pub(crate) path: PathBuf,
    pub(crate) identity: (u64, u64),
}

/// Lists the namespaces in `dirs`: files on nsfs (the device of our own namespace file), each
/// labelled with its name, or its whole path when an earlier directory has that name.
pub(crate) fn scan(dirs: &[PathBuf], nsfs: u64) -> Vec<Found> {
    let mut found: Vec<Found> = Vec::new();
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(dir) else { continue };
        let mut files: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
        files.sort();
        for path in files {
            let Ok(meta) = std::fs::metadata(&path) else { continue };
            if meta.dev() != nsfs {
                continue; // not (yet, or no longer) a mounted namespace
            }
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let label = if found.iter().any(|f| f.label == name) { path.display().to_string() } else { name };
            found.push(Found { label, path, identity: (meta.dev(), meta.ino()) });
        }
    }
    found
}

/// Follows the directories from a thread of its own; the first reconciliation happens before
/// this returns, so the namespaces present at start are there for the first scrape.
pub(crate) fn start(dirs: Vec<PathBuf>, registry: Arc<Registry>, open: Open) -> Result<(), String> {
    let nsfs = std::fs::metadata("/proc/self/ns/net").map_err(|e| format!("reading /proc/self/ns/net: {e}"))?.dev();
    let inotify = Inotify::init(InitFlags::IN_CLOEXEC).map_err(|e| format!("inotify: {}", e.desc()))?;
    let mounts = File::open("/proc/self/mountinfo").map_err(|e| format!("opening /proc/self/mountinfo: {e}"))?;
    let mut follower = Follower { dirs, nsfs, registry, open, inotify, watched: BTreeMap::new() };
    follower.reconcile();
    std::thread::Builder::new()
        .name("netns-follow".into())
        .spawn(move || follower.run(&mounts))
        .map(drop)
        .map_err(|e| format!("starting the namespace follower: {e}"))
}

struct Follower {
    dirs: Vec<PathBuf>,
    nsfs: u64,
    registry: Arc<Registry>,
    open: Open,
    inotify: Inotify,
    /// Directories with an inotify watch (a missing one is retried at each wake-up).
    watched: BTreeMap<PathBuf, ()>,
}

impl Follower {
    fn run(mut self, mounts: &File) {
        loop {
            let mut fds =
                [PollFd::new(self.inotify.as_fd(), PollFlags::POLLIN), PollFd::new(mounts.as_fd(), PollFlags::POLLPRI)];
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                Err(e) => {
                    crate::terminal::error_line(&format!("netreach: following namespaces stopped: {}", e.desc()));
                    return;
                }
            }
            if fds[0].revents().is_some_and(|r| r.contains(PollFlags::POLLIN)) {
                let _ = self.inotify.read_events(); // drained; what changed is read from the directories
            }
            self.reconcile();
        }
    }

    fn watch_directories(&mut self) {
        let flags = AddWatchFlags::IN_CREATE
            | AddWatchFlags::IN_DELETE
            | AddWatchFlags::IN_MOVED_FROM
            | AddWatchFlags::IN_MOVED_TO
            | AddWatchFlags::IN_DELETE_SELF
            | AddWatchFlags::IN_ONLYDIR;
        for dir in &self.dirs {
            if !self.watched.contains_key(dir) && self.inotify.add_watch(dir.as_path(), flags).is_ok() {
                self.watched.insert(dir.clone(), ());
            }
        }
        // A directory deleted and made again needs a new watch: forget the ones that went.
        self.watched.retain(|dir, ()| dir.is_dir());
    }

    /// Makes the registry match the directories.
    fn reconcile(&mut self) {
        self.watch_directories();
        let found = scan(&self.dirs, self.nsfs);
        let known: Vec<(String, Option<(u64, u64)>)> = lock(&self.registry.namespaces)
            .values()
            .filter(|n| n.path.is_some())
            .map(|n| (n.label.clone(), n.identity))
            .collect();
        for (label, identity) in &known {
            if !found.iter().any(|f| &f.label == label && Some(f.identity) == *identity) {
                drop(self.registry.remove(label)); // dropped outside the registry's lock
            }
        }
        for f in found {
            if known.iter().any(|(label, identity)| *label == f.label && *identity == Some(f.identity)) {
                continue;
            }
            // The monitor enters the namespace through a descriptor we hold, not by name: it
            // is exactly the namespace just found (no race with a rename or a re-creation),
            // and the library then needs no deletion watch of its own (one inotify instance
            // per monitor would stop at fs.inotify.max_user_instances, 128 by default): this
            // follower drops the monitor when the file goes.
            let file = match File::open(&f.path) {
                Ok(file) => file,
                Err(e) => {
                    crate::terminal::error_line(&format!("netreach: namespace {}: {e}", f.path.display()));
                    let watched = Watched::Failed(format!("opening {}: {e}", f.path.display()));
                    let namespace = Namespace {
                        label: f.label,
                        path: Some(f.path),
                        identity: Some(f.identity),
                        watched,
                        _file: None,
                        formatted: None,
                    };
                    drop(self.registry.insert(namespace));
                    continue;
                }
            };
            let by_descriptor = PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd()));
            let watched = match (self.open)(&by_descriptor) {
                Ok(monitor) => {
                    let counters = self.registry.follow(&monitor);
                    Watched::Running { monitor, paths: Vec::new(), counters }
                }
                Err(e) => {
                    crate::terminal::error_line(&format!("netreach: namespace {}: {e}", f.path.display()));
                    Watched::Failed(e.to_string())
                }
            };
            let namespace = Namespace {
                label: f.label,
                path: Some(f.path),
                identity: Some(f.identity),
                watched,
                _file: Some(file),
                formatted: None,
            };
            drop(self.registry.insert(namespace));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_files_on_nsfs_count_and_duplicate_names_get_their_path() {
        let base = std::env::temp_dir().join(format!("netreach-scan-{}", std::process::id()));
        let (a, b) = (base.join("a"), base.join("b"));
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        std::fs::write(a.join("x"), "").unwrap();
        std::fs::write(b.join("x"), "").unwrap();
        // The temporary directory's own device plays nsfs here: both files count.
        let dev = std::fs::metadata(&a).unwrap().dev();
        let found = scan(&[a.clone(), b.clone(), base.join("missing")], dev);
        let labels: Vec<_> = found.iter().map(|f| f.label.clone()).collect();
        assert_eq!(labels, vec!["x".to_owned(), b.join("x").display().to_string()]);
        assert!(scan(std::slice::from_ref(&a), dev.wrapping_add(1)).is_empty(), "another device: not a namespace");
        assert!(check(&[base.join("missing")], true).unwrap_err().contains("missing"));
        assert!(check(&[base.join("missing")], false).is_ok());
        std::fs::remove_dir_all(&base).unwrap();
    }
}
