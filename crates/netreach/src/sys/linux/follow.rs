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
use crate::model::Update;

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
    /// Sets the expiry timer to the decision's earliest route expiry, or disarms it; nothing
    /// when it is set that way already (most decisions have no expiry at all).
    pub(super) fn arm(&mut self) {
        let deadline = self.decider.deadline();
        if deadline == self.armed {
            return;
        }
        self.armed = deadline;
        // Failing to set a timer on a valid timerfd is not possible short of a kernel bug; the
        // route's deletion by the kernel's garbage collection still reaches the monitor.
        let _ = match deadline {
            Some(at) => {
                let left = at.saturating_duration_since(Instant::now()).max(Duration::from_millis(1));
                self.expiry.set(Expiration::OneShot(TimeSpec::from_duration(left)), TimerSetTimeFlags::empty())
            }
            None => self.expiry.unset(),
        };
    }

    /// Programs the event socket's filter for the watched paths' remotes and the nameservers
    /// (no filter when there are too many), if that changed anything.
    pub(super) fn refilter(&mut self) {
        let wanted = self
            .remotes
            .as_ref()
            .and_then(|remotes| super::filter::bounded(&mut remotes.iter().chain(&self.nameservers).copied()));
        if wanted != self.filter {
            self.filter = super::filter::apply(&self.sockets.events, wanted);
        }
    }

    /// Asks the kernel for its route decision again for `families`; the families whose
    /// answers changed.
    pub(super) fn decide(&mut self, families: Families) -> Vec<Update> {
        let mut updates = self.decider.decide(&mut self.sockets.requests, families, false);
        self.arm();
        if self.sockets.follow_gateways(&self.decider.current()) {
            updates.push(crate::model::Update::Gateways(self.sockets.neighbours.current()));
        }
        updates
    }

    /// After a rule change: the defaults of tables that became (or stopped being) listed.
    /// Asked once nothing else is ready (the decision handed over, the callbacks it caused
    /// delivered), so the rule change's effect on the levels is not delayed by the dumps.
    pub(super) fn retable(&mut self) {
        self.tables_due = false;
        match self.sockets.retable() {
            Ok(listed) if listed.is_empty() => {}
            Ok(listed) => self.pending.push_back(Input::Updates(listed)),
            Err(e) => self.pending.push_back(Input::Fault(format!("reading the routing tables failed ({e})"))),
        }
    }

    /// What a datagram's updates need before they are handed over: default routes of tables
    /// that are not listed dropped ([`super::listed::Tables::keeps`]), the tables read again
    /// after a change of a rule that names a table (or a link change, with `l3mdev` rules: a
    /// VRF's table), and links that came back up revived.
    pub(super) fn follow(&mut self, updates: &mut Vec<Update>) {
        let tables = &self.sockets.tables;
        let relist = |u: &Update| matches!(u, Update::Link(_) | Update::LinkRemoved(_)) && tables.l3mdev;
        // A kill switch's `unreachable` rule names no table: reading every rule again after it
        // would only delay the next change.
        let named = std::mem::take(&mut self.sockets.tables_may_change);
        self.tables_due |= named || updates.iter().any(relist);
        updates.retain(|u| tables.keeps(u));
        self.revive(updates);
    }

    /// Adds the default routes through links that came back up: the kernel revives the dead
    /// next hops of multipath routes through them silently (see
    /// [`Sockets::default_routes_via`]).
    fn revive(&mut self, updates: &mut Vec<Update>) {
        let mut up = Vec::new();
        for update in updates.iter() {
            if let Update::Link(link) = update {
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
