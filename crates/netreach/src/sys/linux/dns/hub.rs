//! One inotify instance and one thread per process follow the resolver files of every monitor.
//!
//! Why shared: inotify instances are a per-user budget (`fs.inotify.max_user_instances`, 128 by
//! default, counted across every process of the user), and a process may run hundreds of
//! monitors (an exporter over every container's namespace). Their resolver files are nearly
//! always the same few, so one watch set serves them all. The thread starts with the first
//! follower and ends (joined) with the last, so a process with no monitor has no such thread.

use std::os::fd::AsFd;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::eventfd::{EfdFlags, EventFd};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, InotifyEvent, WatchDescriptor};

use super::read::{read, Place};
use crate::model::{DnsConfig, Error};

/// What the directories are watched for. Not IN_MODIFY: an edit in place truncates first, and
/// the file read then would be empty; IN_CLOSE_WRITE comes once the writer is done.
const FLAGS: AddWatchFlags = AddWatchFlags::IN_CREATE
    .union(AddWatchFlags::IN_DELETE)
    .union(AddWatchFlags::IN_MOVED_FROM)
    .union(AddWatchFlags::IN_MOVED_TO)
    .union(AddWatchFlags::IN_CLOSE_WRITE)
    .union(AddWatchFlags::IN_DELETE_SELF)
    .union(AddWatchFlags::IN_MOVE_SELF)
    .union(AddWatchFlags::IN_ONLYDIR);

/// One monitor's resolver configuration, followed for as long as this lives.
pub(crate) struct Follow {
    follower: Arc<Follower>,
    /// Whether the hub follows it (`false`: read once, [`Follow::once`]).
    followed: bool,
}

struct Follower {
    file: PathBuf,
    upstream: PathBuf,
    /// Called (on the hub's thread) when the configuration changed; must return at once.
    wake: Box<dyn Fn() + Send + Sync>,
    seen: Mutex<Seen>,
}

struct Seen {
    current: DnsConfig,
    places: Vec<Place>,
    /// Changed since the owner last took it.
    changed: bool,
}

/// Read-and-watch rounds at most per refresh: one per directory level that can appear.
const MAX_ROUNDS: usize = 16;

/// The shared watch set; `None` while no monitor follows anything.
static HUB: Mutex<Option<Hub>> = Mutex::new(None);

struct Hub {
    inotify: Arc<Inotify>,
    stop: Arc<EventFd>,
    thread: Option<JoinHandle<()>>,
    followers: Vec<Arc<Follower>>,
    /// Watched directories.
    watched: Vec<(WatchDescriptor, PathBuf)>,
}

fn hub() -> MutexGuard<'static, Option<Hub>> {
    // Every mutation keeps the hub consistent (lists, a handle); a panic elsewhere cannot
    // leave it half-changed.
    HUB.lock().unwrap_or_else(|p| p.into_inner())
}

fn lock(seen: &Mutex<Seen>) -> MutexGuard<'_, Seen> {
    seen.lock().unwrap_or_else(|p| p.into_inner())
}

impl Follow {
    /// Reads the configuration in `file` (behind a stub: in `upstream`) and follows it;
    /// `wake` is called whenever it changed.
    pub(crate) fn new(file: PathBuf, upstream: PathBuf, wake: Box<dyn Fn() + Send + Sync>) -> Result<Follow, Error> {
        let seen = Seen { current: DnsConfig::default(), places: Vec::new(), changed: false };
        let follower = Arc::new(Follower { file, upstream, wake, seen: Mutex::new(seen) });
        let mut guard = hub();
        if guard.is_none() {
            *guard = Some(Hub::start()?);
        }
        let hub = guard.as_mut().expect("started above");
        hub.followers.push(follower.clone());
        hub.refresh(&follower);
        lock(&follower.seen).changed = false; // the first reading is no change
        Ok(Follow { follower, followed: true })
    }

    /// Reads the configuration once and follows nothing: no hub, no inotify mark (see
    /// `MonitorBuilder::watch_files`); it never changes.
    pub(crate) fn once(file: PathBuf, upstream: PathBuf) -> Follow {
        let (current, places) = read(&file, &upstream);
        let seen = Seen { current, places, changed: false };
        let follower = Follower { file, upstream, wake: Box::new(|| {}), seen: Mutex::new(seen) };
        Follow { follower: Arc::new(follower), followed: false }
    }

    /// The configuration as last read.
    pub(crate) fn current(&self) -> DnsConfig {
        lock(&self.follower.seen).current.clone()
    }

    /// The new configuration if it changed since the last call.
    pub(crate) fn take_change(&self) -> Option<DnsConfig> {
        let mut seen = lock(&self.follower.seen);
        std::mem::take(&mut seen.changed).then(|| seen.current.clone())
    }
}

impl Drop for Follow {
    fn drop(&mut self) {
        if !self.followed {
            return;
        }
        let last = {
            let mut guard = hub();
            let Some(hub) = guard.as_mut() else { return };
            hub.followers.retain(|f| !Arc::ptr_eq(f, &self.follower));
            if hub.followers.is_empty() {
                guard.take()
            } else {
                hub.arm();
                None
            }
        };
        if let Some(mut hub) = last {
            // Outside the lock: the thread takes it before it looks for the stop signal.
            let _ = hub.stop.write(1);
            if let Some(thread) = hub.thread.take() {
                let _ = thread.join();
            }
        }
    }
}

impl Hub {
    fn start() -> Result<Hub, Error> {
        let inotify = Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK)
            .map_err(|e| Error::io("creating an inotify instance for the resolver configuration", e.into()))?;
        let stop = EventFd::from_flags(EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)
            .map_err(|e| Error::io("creating an eventfd", e.into()))?;
        let (inotify, stop) = (Arc::new(inotify), Arc::new(stop));
        let (watch, stopped) = (inotify.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name("netreach-dns".into())
            .spawn(move || serve(&watch, &stopped))
            .map_err(|e| Error::io("starting the resolver watch thread", e))?;
        Ok(Hub { inotify, stop, thread: Some(thread), followers: Vec::new(), watched: Vec::new() })
    }

    /// Reads `follower`'s configuration and watches what it depends on, again while that
    /// adds watches: what changed between a reading and its watch (a directory tree created
    /// step by step) is then read, not missed. Marks a change; true if there was one.
    fn refresh(&mut self, follower: &Follower) -> bool {
        let mut fresh = DnsConfig::default();
        for _ in 0..MAX_ROUNDS {
            let places;
            (fresh, places) = read(&follower.file, &follower.upstream);
            lock(&follower.seen).places = places;
            if !self.arm() {
                break;
            }
        }
        let mut seen = lock(&follower.seen);
        if fresh == seen.current {
            return false;
        }
        seen.current = fresh;
        seen.changed = true;
        true
    }

    /// Watches exactly the directories some follower needs; true if a watch was added.
    fn arm(&mut self) -> bool {
        let mut wanted: Vec<PathBuf> = Vec::new();
        for follower in &self.followers {
            for (dir, _) in &lock(&follower.seen).places {
                if !wanted.contains(dir) {
                    wanted.push(dir.clone());
                }
            }
        }
        let inotify = &self.inotify;
        self.watched.retain(|(wd, dir)| {
            let keep = wanted.contains(dir);
            if !keep {
                let _ = inotify.rm_watch(*wd); // fails only if the directory went: fine
            }
            keep
        });
        let mut added = false;
        for dir in wanted {
            if !self.watched.iter().any(|(_, d)| *d == dir) {
                // A directory that cannot be watched (gone meanwhile) is retried at the next
                // change; its nearest existing ancestor is usually watched anyway.
                if let Ok(wd) = self.inotify.add_watch(&dir, FLAGS) {
                    self.watched.push((wd, dir));
                    added = true;
                }
            }
        }
        added
    }

    /// Whether `event` can change what `follower` reads.
    fn touches(&self, event: &InotifyEvent, follower: &Follower) -> bool {
        if event.mask.contains(AddWatchFlags::IN_Q_OVERFLOW) {
            return true; // events were lost: everyone reads again
        }
        let Some((_, dir)) = self.watched.iter().find(|(wd, _)| *wd == event.wd) else { return false };
        let seen = lock(&follower.seen);
        let self_event = AddWatchFlags::IN_DELETE_SELF | AddWatchFlags::IN_MOVE_SELF | AddWatchFlags::IN_IGNORED;
        if event.mask.intersects(self_event) {
            return seen.places.iter().any(|(d, _)| d == dir);
        }
        let Some(name) = event.name.as_deref() else { return false };
        if !seen.places.iter().any(|(d, n)| d == dir && n == name) {
            return false;
        }
        // A regular file created in place is still being written: its IN_CLOSE_WRITE comes
        // when it is whole (a symlink or a directory is whole when created).
        !(event.mask.contains(AddWatchFlags::IN_CREATE)
            && std::fs::symlink_metadata(dir.join(name)).is_ok_and(|m| m.is_file()))
    }
}

/// The hub's thread: waits for inotify (or the stop signal), re-reads the configurations the
/// events can change, wakes the owners of those that did, and re-arms.
fn serve(inotify: &Inotify, stop: &EventFd) {
    loop {
        let mut fds = [PollFd::new(inotify.as_fd(), PollFlags::POLLIN), PollFd::new(stop.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(_) => return, // cannot happen with valid descriptors; the followers keep their last reading
        }
        if fds[1].revents().is_some_and(|r| r.contains(PollFlags::POLLIN)) {
            return;
        }
        let events = inotify.read_events().unwrap_or_default();
        let mut guard = hub();
        let Some(hub) = guard.as_mut() else { return };
        let stale: Vec<Arc<Follower>> =
            hub.followers.iter().filter(|f| events.iter().any(|e| hub.touches(e, f))).cloned().collect();
        for follower in &stale {
            if hub.refresh(follower) {
                (follower.wake)();
            }
        }
    }
}
