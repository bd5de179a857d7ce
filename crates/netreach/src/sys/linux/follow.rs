//! Keeping the kernel's route decision current: asked again with every full reading, when a
//! change can alter it, at the expiry of a route it uses (a one-shot timer), and with the
//! default routes of a link that came back up (the kernel revives multipath next hops
//! silently).

use std::time::{Duration, Instant};

use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{Expiration, TimerSetTimeFlags};

use super::decision::{Decider, Families};
use super::dump::Reading;
use super::netlink::Sockets;
use super::{Input, Kernel};

/// Reads the whole state, then the kernel's route decision for it.
pub(super) fn read_state(sockets: &mut Sockets, decider: &mut Decider) -> std::io::Result<Reading> {
    let mut reading = sockets.dump_state()?;
    decider.decide(&mut sockets.requests, Families::BOTH, true);
    reading.state.route_decisions = decider.current();
    sockets.follow_gateways(&reading.state.route_decisions);
    reading.state.gateways = sockets.neighbours.current();
    Ok(reading)
}

impl Kernel {
    /// Sets the expiry timer to the decision's earliest route expiry, or disarms it.
    pub(super) fn arm(&self) {
        // Failing to set a timer on a valid timerfd is not possible short of a kernel bug; the
        // route's deletion by the kernel's garbage collection still reaches the monitor.
        let _ = match self.decider.deadline() {
            Some(at) => {
                let left = at.saturating_duration_since(Instant::now()).max(Duration::from_millis(1));
                self.expiry.set(Expiration::OneShot(TimeSpec::from_duration(left)), TimerSetTimeFlags::empty())
            }
            None => self.expiry.unset(),
        };
    }

    /// Asks the kernel for its route decision again for `families`; the families whose
    /// answers changed.
    pub(super) fn decide(&mut self, families: Families) -> Vec<crate::model::Update> {
        self.sockets.policy_changed = false;
        let mut updates = self.decider.decide(&mut self.sockets.requests, families, false);
        self.arm();
        if self.sockets.follow_gateways(&self.decider.current()) {
            updates.push(crate::model::Update::Gateways(self.sockets.neighbours.current()));
        }
        updates
    }

    /// Adds the default routes through links that came back up: the kernel revives the dead
    /// next hops of multipath routes through them silently (see
    /// [`Sockets::default_routes_via`]).
    pub(super) fn revive(&mut self, updates: &mut Vec<crate::model::Update>) {
        let mut up = Vec::new();
        for update in updates.iter() {
            if let crate::model::Update::Link(link) = update {
                if !link.up {
                    self.down.insert(link.index);
                } else if self.down.remove(&link.index) {
                    up.push(link.index);
                }
            }
        }
        for index in up {
            match self.sockets.default_routes_via(index) {
                Ok(routes) => updates.extend(routes),
                Err(e) => {
                    self.pending.push_back(Input::Fault(format!("reading the routes of link {index} failed ({e})")))
                }
            }
        }
    }

    /// [`read_state`] on this source's sockets, with the timer re-armed.
    pub(super) fn read(&mut self) -> std::io::Result<Reading> {
        let reading = read_state(&mut self.sockets, &mut self.decider);
        self.arm();
        reading
    }
}
