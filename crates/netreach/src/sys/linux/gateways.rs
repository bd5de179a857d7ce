//! The gateways' neighbour entries ([`super::neighbour`]) in the kernel source's loop: followed
//! with every decision, read whenever their socket has something (and on every wake-up), and
//! re-verified when `Monitor::check()` asks ([`Reverify`]).

use std::sync::mpsc::{self, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use nix::sys::epoll::EpollTimeout;

use super::neighbour::REVERIFY_WAIT;
use super::netlink::Sockets;
use super::{Input, Kernel, Waker};
use crate::model::{Error, RouteDecision, Update};

/// Callers waiting for a re-verification, as handed over from their threads.
type Asked = Arc<Mutex<Vec<SyncSender<()>>>>;

fn lock(asked: &Asked) -> MutexGuard<'_, Vec<SyncSender<()>>> {
    // Only pushes and takes happen under it: a poisoned list is still a list.
    asked.lock().unwrap_or_else(|p| p.into_inner())
}

/// Asks the kernel source to re-verify the decision's gateways; callable from any thread.
pub(crate) struct Reverify {
    asked: Asked,
    waker: Waker,
}

impl Reverify {
    /// Asks, and waits until the kernel has answered for every gateway (reachable or failed)
    /// or [`REVERIFY_WAIT`] has passed; the answers are handed to the engine before this
    /// returns. `Err` once the monitor has stopped.
    pub(crate) fn run(&self) -> Result<(), Error> {
        let (reply, answer) = mpsc::sync_channel(1);
        lock(&self.asked).push(reply);
        self.waker.wake();
        // The source answers at its deadline at the latest; the margin covers a source busy
        // reopening its sockets, after which the caller goes on with what is known.
        match answer.recv_timeout(REVERIFY_WAIT + Duration::from_secs(1)) {
            Ok(()) | Err(RecvTimeoutError::Timeout) => Ok(()),
            Err(RecvTimeoutError::Disconnected) => Err(Error::stopped("the monitor has stopped")),
        }
    }
}

/// The source's side: who asked, who waits, until when.
#[derive(Default)]
pub(super) struct Verification {
    asked: Asked,
    waiting: Vec<SyncSender<()>>,
    deadline: Option<Instant>,
}

impl Verification {
    /// How long the loop may wait: until `quiet` passes or a re-verification's deadline,
    /// whichever comes first; forever when there is neither.
    pub(super) fn wait(&self, quiet: Option<Duration>) -> EpollTimeout {
        let left = self.deadline.map(|at| at.saturating_duration_since(Instant::now()));
        let timeout = match (quiet, left) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        // Rounded up: a deadline less than a millisecond away must not spin.
        timeout.map_or(EpollTimeout::NONE, |t| EpollTimeout::from(t.as_micros().div_ceil(1000).min(60_000) as u16))
    }

    /// Whether a re-verification's deadline has passed.
    pub(super) fn due(&self) -> bool {
        self.deadline.is_some_and(|at| at <= Instant::now())
    }
}

impl Sockets {
    /// Follows the gateways of `decisions` ([`super::neighbour::Neighbours::follow`]); whether
    /// their entries changed. A failure is reported as a fault and leaves them as they were.
    pub(super) fn follow_gateways(&mut self, decisions: &[RouteDecision]) -> bool {
        let Sockets { neighbours, requests, .. } = self;
        neighbours.follow(decisions, requests).unwrap_or_else(|e| {
            neighbours.faults.push(format!("reading the gateways' neighbour entries failed ({e})"));
            false
        })
    }
}

impl Kernel {
    /// A handle for `Monitor::check()`.
    pub(crate) fn reverifier(&self) -> Reverify {
        Reverify { asked: self.verification.asked.clone(), waker: self.waker() }
    }

    /// Reads the wake-up descriptor (when `woken`), then what the neighbour socket has; starts
    /// a re-verification asked since the last wake-up, and answers the callers waiting for one
    /// once the kernel has answered or the deadline passed. In that order, and before the
    /// wake-up is handed on: an answer the kernel queued before a caller's command woke the
    /// loop is folded before the command runs.
    pub(super) fn gateways(&mut self, woken: bool) {
        if woken {
            let _ = self.wake.read();
        }
        let Sockets { neighbours, requests, .. } = &mut self.sockets;
        let mut changed = neighbours.receive_or_reread(requests).unwrap_or_else(|e| {
            neighbours.faults.push(format!("reading the neighbour socket failed ({e})"));
            false
        });
        let asked = if woken { std::mem::take(&mut *lock(&self.verification.asked)) } else { Vec::new() };
        if !asked.is_empty() {
            changed |= neighbours.reverify(requests).unwrap_or_else(|e| {
                neighbours.faults.push(format!("re-verifying the gateways failed ({e})"));
                false
            });
            self.verification.waiting.extend(asked);
            self.verification.deadline = Some(Instant::now() + REVERIFY_WAIT);
        }
        if changed {
            self.pending.push_back(Input::Updates(vec![Update::Gateways(neighbours.current())]));
        }
        for fault in std::mem::take(&mut neighbours.faults) {
            self.pending.push_back(Input::Fault(fault));
        }
        if !self.verification.waiting.is_empty() && (neighbours.settled() || self.verification.due()) {
            for waiting in self.verification.waiting.drain(..) {
                let _ = waiting.send(()); // the caller may have given up
            }
            self.verification.deadline = None;
        }
    }
}
