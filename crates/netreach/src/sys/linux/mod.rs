//! Linux: the kernel over rtnetlink. No daemon, no root needed (except to enter another
//! network namespace).

mod decode;
mod dump;
mod kind;
mod netlink;
mod netns;
pub(crate) mod networkmanager;

use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::Duration;

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::eventfd::{EfdFlags, EventFd};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};

use self::netlink::Sockets;
use self::netns::Namespace;
use crate::error::Error;
use crate::monitor::{Backend, Engine, MonitorBuilder, Netns, Wake};
use crate::state::NetworkState;

/// At most this many datagrams are handled before the loop looks at its wake-up descriptor
/// again, so dropping a monitor is prompt even in a storm.
const BATCH: usize = 256;
/// Backoff between attempts to reopen failed sockets.
const BACKOFF_FIRST: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// After a reading pieced together from interrupted dumps, the state is read again once the
/// event socket has been silent this long (the kernel has settled).
const QUIET: Duration = Duration::from_millis(200);

/// Opens the sockets (inside the namespace, if one is given), reads the initial state.
pub(crate) fn start(config: &MonitorBuilder) -> Result<(Box<dyn Backend>, NetworkState), Error> {
    let namespace = config.netns.as_ref().map(Namespace::open).transpose()?;
    let deletion = namespace.as_ref().map(NamespaceWatch::new).transpose()?.flatten();
    let mut backend = KernelBackend {
        sockets: open_sockets(namespace.as_ref(), config.receive_buffer)?,
        namespace,
        receive_buffer: config.receive_buffer,
        wake: Arc::new(EventWaker(
            EventFd::from_flags(EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)
                .map_err(|e| Error::io("creating an eventfd", e.into()))?,
        )),
        deletion,
        complete: false,
    };
    let reading =
        backend.sockets.dump_state().map_err(|e| Error::io("reading links, addresses and routes over netlink", e))?;
    backend.complete = reading.complete;
    Ok((Box::new(backend), reading.state))
}

/// Moves the calling thread into `netns` (for sources that open their sockets there).
pub(crate) fn enter_netns(netns: &Netns) -> Result<(), Error> {
    Namespace::open(netns)?.enter()
}

fn open_sockets(namespace: Option<&Namespace>, receive_buffer: Option<usize>) -> Result<Sockets, Error> {
    match namespace {
        // sysfs describes the namespace of whoever mounted it: only trusted for our own.
        None => Sockets::open(receive_buffer, true).map_err(|e| Error::io("opening netlink sockets", e)),
        Some(ns) => ns.run_inside(|| Sockets::open(receive_buffer, false)),
    }
}

struct EventWaker(EventFd);

impl Wake for EventWaker {
    fn wake(&self) {
        // Cannot fail short of the counter overflowing, which a pending wake-up makes moot.
        let _ = self.0.write(1);
    }
}

/// Tells when a namespace file under a directory such as /run/netns is deleted (`ip netns
/// del`). The namespace itself lives on while the monitor's sockets hold it, but nothing can
/// enter or name it any more: the monitor reports that and stops, releasing it.
struct NamespaceWatch {
    inotify: Inotify,
    name: std::ffi::OsString,
}

impl NamespaceWatch {
    /// `None` for paths that cannot be watched this way: /proc/PID/ns/net ends with its process,
    /// and inotify sees nothing in /proc.
    fn new(namespace: &Namespace) -> Result<Option<Self>, Error> {
        let path = namespace.path();
        let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else { return Ok(None) };
        if path.starts_with("/proc") {
            return Ok(None);
        }
        let inotify = Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK)
            .map_err(|e| Error::io("creating an inotify instance", e.into()))?;
        inotify
            .add_watch(dir, AddWatchFlags::IN_DELETE | AddWatchFlags::IN_MOVED_FROM)
            .map_err(|e| Error::io(format!("watching {} for namespace deletion", dir.display()), e.into()))?;
        Ok(Some(NamespaceWatch { inotify, name: name.to_owned() }))
    }

    fn deleted(&self) -> bool {
        let events = self.inotify.read_events().unwrap_or_default();
        events.iter().any(|e| e.name.as_deref() == Some(self.name.as_os_str()))
    }
}

struct KernelBackend {
    namespace: Option<Namespace>,
    receive_buffer: Option<usize>,
    sockets: Sockets,
    wake: Arc<EventWaker>,
    deletion: Option<NamespaceWatch>,
    /// Whether the last reading was complete ([`dump::Reading::complete`]); until it is, the
    /// loop reads again whenever the kernel has been quiet for [`QUIET`].
    complete: bool,
}

/// What the loop does next.
enum Flow {
    Continue,
    /// The sockets were replaced (after a failure): the new event socket must be waited on.
    Reopened,
    Stop,
}

impl Backend for KernelBackend {
    fn waker(&self) -> Arc<dyn Wake> {
        self.wake.clone()
    }

    fn run(mut self: Box<Self>, engine: &mut Engine) -> Result<(), String> {
        // epoll rather than poll: the descriptors are registered once, not on every wait (this
        // loop waits once per kernel message, and that cost is in every event's latency).
        let ready_set = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)
            .map_err(|e| format!("creating an epoll instance failed: {}", e.desc()))?;
        let register = |fd: std::os::fd::BorrowedFd<'_>, token: u64| {
            ready_set
                .add(fd, EpollEvent::new(EpollFlags::EPOLLIN, token))
                .map_err(|e| format!("registering a descriptor with epoll failed: {}", e.desc()))
        };
        register(self.sockets.events.as_fd(), NETLINK)?;
        register(self.wake.0.as_fd(), WAKE)?;
        if let Some(watch) = &self.deletion {
            register(watch.inotify.as_fd(), DELETION)?;
        }
        let mut updates = Vec::new();
        let mut ready = [EpollEvent::empty(); 3];
        loop {
            // No timer at all once the state is known complete: no wake-ups while idle.
            let timeout = if self.complete { EpollTimeout::NONE } else { EpollTimeout::from(QUIET.as_millis() as u16) };
            let count = match ready_set.wait(&mut ready, timeout) {
                Ok(0) if !self.complete => {
                    match self.sockets.dump_state() {
                        Ok(reading) => {
                            self.complete = reading.complete;
                            engine.reread(reading.state, &mut self.sockets);
                        }
                        Err(e) => match self.recover(engine, e) {
                            Flow::Stop => return Ok(()),
                            Flow::Continue => {}
                            Flow::Reopened => register(self.sockets.events.as_fd(), NETLINK)?,
                        },
                    }
                    continue;
                }
                Ok(count) => count,
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(format!("waiting for netlink messages failed: {}", e.desc())),
            };
            let is_ready = |token| ready[..count].iter().any(|e| e.data() == token);
            let (netlink_ready, woken, deleted) = (is_ready(NETLINK), is_ready(WAKE), is_ready(DELETION));
            if woken {
                let _ = self.wake.0.read();
                if engine.stopping() {
                    return Ok(());
                }
                engine.woken(&mut self.sockets);
            }
            if deleted && self.deletion.as_ref().is_some_and(NamespaceWatch::deleted) {
                let path = self.namespace.as_ref().map(|n| n.path().display().to_string()).unwrap_or_default();
                return Err(format!("network namespace {path} was deleted; monitoring stopped"));
            }
            if netlink_ready {
                match self.read_batch(engine, &mut updates) {
                    Flow::Stop => return Ok(()),
                    Flow::Continue => {}
                    // The old socket left the set when it was closed.
                    Flow::Reopened => register(self.sockets.events.as_fd(), NETLINK)?,
                }
            }
        }
    }
}

/// epoll tokens of the loop's descriptors.
const NETLINK: u64 = 0;
const WAKE: u64 = 1;
const DELETION: u64 = 2;

impl KernelBackend {
    /// Handles up to [`BATCH`] datagrams from the event socket.
    fn read_batch(&mut self, engine: &mut Engine, updates: &mut Vec<crate::event::Update>) -> Flow {
        for _ in 0..BATCH {
            match self.sockets.receive(updates) {
                Ok(true) => {
                    for update in updates.drain(..) {
                        engine.update(update, &mut self.sockets);
                    }
                    for what in self.sockets.take_undecodable() {
                        engine.error(format!("skipped a netlink message that could not be decoded ({what})"));
                    }
                }
                Ok(false) => break,
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                    self.sockets.drain_events();
                    match self.sockets.dump_state() {
                        Ok(fresh) => {
                            self.complete = fresh.complete;
                            engine.resync(
                                fresh.state,
                                "netlink receive buffer overrun (ENOBUFS): events were lost, state re-read".into(),
                                &mut self.sockets,
                            )
                        }
                        Err(e) => return self.recover(engine, e),
                    }
                }
                Err(e) => return self.recover(engine, e),
            }
        }
        Flow::Continue
    }

    /// After a socket failure: report it, then reopen the sockets with capped exponential
    /// backoff until it works (or the monitor is dropped), and resync.
    fn recover(&mut self, engine: &mut Engine, failure: std::io::Error) -> Flow {
        engine.error(format!("netlink socket failed ({failure}); reopening"));
        let mut backoff = BACKOFF_FIRST;
        loop {
            // Sleep by waiting on the wake-up descriptor, so dropping the monitor is prompt.
            let mut fds = [PollFd::new(self.wake.0.as_fd(), PollFlags::POLLIN)];
            let millis = u16::try_from(backoff.as_millis()).unwrap_or(u16::MAX);
            let _ = poll(&mut fds, PollTimeout::from(millis));
            if engine.stopping() {
                return Flow::Stop;
            }
            let reopened = open_sockets(self.namespace.as_ref(), self.receive_buffer)
                .map_err(|e| e.to_string())
                .and_then(|mut s| s.dump_state().map(|state| (s, state)).map_err(|e| e.to_string()));
            match reopened {
                Ok((sockets, reading)) => {
                    self.sockets = sockets;
                    self.complete = reading.complete;
                    engine.resync(
                        reading.state,
                        format!("netlink sockets reopened after a failure ({failure})"),
                        &mut self.sockets,
                    );
                    return Flow::Reopened;
                }
                Err(e) => {
                    engine.error(format!("reopening netlink sockets failed ({e}); retrying in {backoff:?}"));
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
        }
    }
}
