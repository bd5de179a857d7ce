//! Recovering from a failed socket: report it, reopen with capped exponential backoff (the
//! wait is on the wake-up descriptor, so dropping the monitor stays prompt), and resync.

use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::epoll::{EpollEvent, EpollFlags};

use super::follow::read_state;
use super::{faults, filter, open_sockets, Input, Kernel, NEIGHBOURS, NETLINK};
use crate::model::Error;

/// Backoff between attempts to reopen failed sockets.
pub(super) const BACKOFF_FIRST: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// The sockets failed: when to try reopening them, and why they failed.
pub(super) struct Broken {
    failure: String,
    retry_at: Instant,
    backoff: Duration,
}

impl Kernel {
    /// A socket failed: report it, and reopen from the next call on.
    pub(super) fn fail(&mut self, failure: std::io::Error) {
        self.budget = 0;
        self.pending.push_back(Input::Fault(format!("netlink socket failed ({failure}); reopening")));
        let failure = failure.to_string();
        self.broken = Some(Broken { failure, retry_at: Instant::now() + BACKOFF_FIRST, backoff: BACKOFF_FIRST });
    }

    /// Sleeps until the next attempt (on the wake-up descriptor, so dropping the monitor is
    /// prompt), then reopens the sockets and resyncs, or reports the failure and backs off.
    pub(super) fn reopen(&mut self) -> Result<(), String> {
        let Some(broken) = &mut self.broken else { return Ok(()) };
        let wait = broken.retry_at.saturating_duration_since(Instant::now());
        if !wait.is_zero() {
            let mut fds = [PollFd::new(self.wake.as_fd(), PollFlags::POLLIN)];
            let millis = u16::try_from(wait.as_millis().max(1)).unwrap_or(u16::MAX);
            if poll(&mut fds, PollTimeout::from(millis)).is_ok_and(|n| n > 0) {
                let _ = self.wake.read();
                self.pending.push_back(Input::Woken);
            }
            return Ok(()); // back to the caller's loop: the wake-up first, then the rest of the wait
        }
        let reopened = faults::open_failure()
            .map_or_else(
                || open_sockets(self.namespace.as_ref(), self.receive_buffer),
                |e| Err(Error::io("opening netlink sockets", e)),
            )
            .map_err(|e| e.to_string())
            .and_then(|mut s| read_state(&mut s, &mut self.decider).map(|state| (s, state)).map_err(|e| e.to_string()));
        match reopened {
            Ok((sockets, reading)) => {
                // The old event socket left the epoll set when it was closed.
                self.sockets = sockets;
                for (fd, token) in
                    [(self.sockets.events.as_fd(), NETLINK), (self.sockets.neighbours.socket.as_fd(), NEIGHBOURS)]
                {
                    self.ready_set
                        .add(fd, EpollEvent::new(EpollFlags::EPOLLIN, token))
                        .map_err(|e| format!("registering a descriptor with epoll failed: {}", e.desc()))?;
                }
                self.complete = reading.complete;
                let resync = format!("netlink sockets reopened after a failure ({})", broken.failure);
                self.pending.push_back(self.reread(reading.state, Some(resync)));
                self.broken = None;
                self.arm();
                self.filter = filter::apply(&self.sockets.events, self.filter.take());
            }
            Err(e) => {
                broken.backoff = (broken.backoff * 2).min(BACKOFF_MAX);
                broken.retry_at = Instant::now() + broken.backoff;
                let fault = format!("reopening netlink sockets failed ({e}); retrying in {:?}", broken.backoff);
                self.pending.push_back(Input::Fault(fault));
            }
        }
        Ok(())
    }
}
