//! The probe as a source of the monitor: a thread that probes when reachability-relevant
//! state changes and hands verdicts to the engine.
//!
//! Scheduling:
//! - The engine calls [`ProbeRefiner::state_changed`] after every change. Only a change of the
//!   [`Fingerprint`] (kernel level per family, the default routes, and what the other sources
//!   claim about each family and a portal) schedules a probe, so an address lifetime refresh or
//!   a new neighbour costs nothing. A daemon's new claim is re-checked because the probe's
//!   `online` outranks a daemon's lower level (`arbitrate.rs`, row 2): only a probe newer than
//!   the claim may overrule it. The first reading probes at
//!   once; later changes are coalesced for the debounce window (200 ms by default), counted
//!   from the first change of a burst so a storm cannot postpone the probe forever.
//! - Only families whose kernel level is `site` or better are probed: below that nothing can
//!   answer, and the family's verdict is `None` (the kernel's own level stands). With no such
//!   family nothing is sent on the network and the verdict is withdrawn.
//! - While any family is portal or limited, the probe rechecks after the backoff (1 s by
//!   default), doubling up to its cap (5 min); a relevant change or an `online` verdict resets it.
//! - [`ProbeRefiner::check`] joins the round in flight when no relevant change happened since it
//!   started (that round is as fresh as a new one would be): the round a monitor starts when it
//!   is built is the one a `check()` right after `build()` waits for, so a command makes one
//!   request per family, not two. Otherwise it asks for a round of its own.
//! - Every time sum saturates: any `Duration` in the config is a bound, never a panic.
//! - With nothing scheduled the thread sleeps on a condition variable with no timeout: zero
//!   wake-ups while idle (a periodic interval is used only when configured).
//! - Drop cancels a probe in flight (its sockets are shut down) and joins the thread.

use std::sync::{mpsc, Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::io::{later, round, Cancel};
use super::{verdict, FamilyProbe, Outcome, ProbeConfig};
use crate::backend::Netns;
use crate::model::{Error, Family, Level, NetworkState, ProbeMeasurement, Reachability, Source, Verdict};
use crate::sys::{Input, InputSink};

/// The part of the state that can change what a probe would find.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fingerprint {
    levels: [Level; 2],
    /// (family, gateway, interface index, metric) of every default route, in state order.
    routes: Vec<(Family, Option<std::net::IpAddr>, u32, u32)>,
    /// What every other source claims, in state order.
    claims: Vec<Claim>,
}

/// (source, ipv4, ipv6, portal) of another source's verdict: what the probe may overrule.
type Claim = (Source, Option<Level>, Option<Level>, Option<bool>);

impl Fingerprint {
    pub(crate) fn of(state: &NetworkState, kernel: &Reachability) -> Self {
        Fingerprint {
            levels: [kernel.ipv4.reachability, kernel.ipv6.reachability],
            routes: state.default_routes.iter().map(|r| (r.family, r.gateway, r.interface_index, r.metric)).collect(),
            claims: state
                .verdicts
                .iter()
                .filter(|v| v.source != Source::Probe)
                .map(|v| (v.source, v.ipv4, v.ipv6, v.captive_portal))
                .collect(),
        }
    }

    /// Families worth probing: kernel level `site` or better.
    pub(crate) fn families(&self) -> Vec<Family> {
        [Family::Ipv4, Family::Ipv6]
            .into_iter()
            .zip(self.levels)
            .filter(|(_, l)| *l >= Level::Site)
            .map(|(f, _)| f)
            .collect()
    }
}

/// What the probe thread and its callers share.
struct Control {
    fingerprint: Option<Fingerprint>,
    /// When the next probe is due; `None`: nothing scheduled.
    due: Option<Instant>,
    /// Delay of the next recheck while portal or limited.
    backoff: Duration,
    /// Rounds started and finished (verdict handed on) so far; one runs at a time, so a round
    /// is in flight when `started > finished`.
    started: u64,
    finished: u64,
    /// A relevant change happened since the round in flight started: it cannot answer a check.
    stale: bool,
    /// A `check()` waits for a round that has not started yet.
    wanted: bool,
    stop: bool,
}

struct Inner {
    control: Mutex<Control>,
    changed: Condvar,
    cancel: Cancel,
    config: ProbeConfig,
}

impl Inner {
    fn control(&self) -> MutexGuard<'_, Control> {
        self.control.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The probe as a source above the kernel (the engine's `Refiner`): owns the probe thread.
pub(crate) struct ProbeRefiner {
    inner: Arc<Inner>,
    thread: Option<JoinHandle<()>>,
}

/// What one family's probe measured.
fn measurement(probe: &FamilyProbe) -> ProbeMeasurement {
    ProbeMeasurement {
        family: probe.family,
        success: probe.outcome == Outcome::Online,
        endpoint: probe.endpoint.clone(),
        timings: probe.timings,
    }
}

impl ProbeRefiner {
    /// Starts the probe thread, inside `netns` when given; fails if it cannot enter it.
    pub(crate) fn start(config: ProbeConfig, netns: Option<Netns>, sink: Arc<dyn InputSink>) -> Result<Self, Error> {
        config.validate()?;
        let inner = Arc::new(Inner {
            control: Mutex::new(Control {
                fingerprint: None,
                due: None,
                backoff: config.recheck_first,
                started: 0,
                finished: 0,
                stale: false,
                wanted: false,
                stop: false,
            }),
            changed: Condvar::new(),
            cancel: Cancel::default(),
            config,
        });
        let (entered, outcome) = mpsc::sync_channel(1);
        let worker = inner.clone();
        let thread = std::thread::Builder::new()
            .name("netreach-probe".into())
            .spawn(move || {
                // Sockets and resolver threads made from here on live in the namespace.
                let ready = netns.as_ref().map_or(Ok(()), crate::sys::enter_netns);
                let ok = ready.is_ok();
                let _ = entered.send(ready);
                if ok {
                    run(&worker, &sink);
                }
                let mut control = worker.control();
                control.stop = true; // check() callers must not wait for a thread that is gone
                worker.changed.notify_all();
            })
            .map_err(|e| Error::io("starting the probe thread", e))?;
        let refiner = ProbeRefiner { inner, thread: Some(thread) };
        outcome.recv().map_err(|_| Error::io("probe thread", std::io::Error::other("ended early")))??;
        Ok(refiner)
    }
}

/// The probe thread: waits for something due, probes, sends the verdict, schedules rechecks.
fn run(inner: &Inner, sink: &Arc<dyn InputSink>) {
    let config = &inner.config;
    let mut control = inner.control();
    loop {
        loop {
            if control.stop {
                return;
            }
            let now = Instant::now();
            match control.due {
                _ if control.wanted => break,
                Some(due) if due <= now => break,
                Some(due) => {
                    control = inner.changed.wait_timeout(control, due - now).unwrap_or_else(|p| p.into_inner()).0
                }
                None => control = inner.changed.wait(control).unwrap_or_else(|p| p.into_inner()),
            }
        }
        // This round serves whatever was due or asked for until now.
        control.due = None;
        control.wanted = false;
        control.stale = false;
        control.started += 1;
        let families = control.fingerprint.as_ref().map(Fingerprint::families).unwrap_or_default();
        drop(control);
        let probes = if families.is_empty() { Vec::new() } else { round(config, &families, &inner.cancel) };
        let verdict = if probes.is_empty() { Verdict::new(crate::Source::Probe) } else { verdict(&probes) };
        let measured = probes.iter().filter(|p| !matches!(p.outcome, Outcome::NotProbed { .. })).map(measurement);
        let measured: Vec<ProbeMeasurement> = measured.collect();
        // What was measured first, then the verdict (a subscriber sees the round, then what
        // it concluded); a round with nothing measured (no family to probe) says nothing.
        let sent = measured.is_empty() || sink.send(Input::Measured(measured));
        if inner.cancel.is_cancelled() || !sent || !sink.send(Input::Verdict(verdict.clone())) {
            return; // the monitor is going away
        }
        control = inner.control();
        control.finished = control.started;
        let unsettled = [verdict.ipv4, verdict.ipv6].contains(&Some(Level::Site));
        let next = if unsettled {
            let delay = control.backoff;
            control.backoff = delay.saturating_mul(2).min(config.recheck_max);
            Some(delay)
        } else {
            control.backoff = config.recheck_first;
            config.interval.filter(|_| !families.is_empty())
        };
        if let Some(delay) = next {
            let at = later(Instant::now(), delay);
            control.due = Some(control.due.map_or(at, |due| due.min(at)));
        }
        // Still holding the lock, straight into the wait: a `check()` woken here runs only once
        // this thread sleeps, so nothing of this round is left to wake it afterwards.
        inner.changed.notify_all();
    }
}

impl ProbeRefiner {
    /// The state changed: only a change of the [`Fingerprint`] schedules a probe. Returns at
    /// once.
    pub(crate) fn state_changed(&self, state: &NetworkState, kernel: &Reachability) {
        let fingerprint = Fingerprint::of(state, kernel);
        let mut control = self.inner.control();
        if control.fingerprint.as_ref() == Some(&fingerprint) {
            return;
        }
        let delay = if control.fingerprint.is_none() { Duration::ZERO } else { self.inner.config.debounce };
        control.fingerprint = Some(fingerprint);
        control.backoff = self.inner.config.recheck_first;
        control.stale = true; // a round in flight probed the state before this change
        let at = later(Instant::now(), delay);
        control.due = Some(control.due.map_or(at, |due| due.min(at)));
        self.inner.changed.notify_all();
    }

    /// Blocks until a round that probed the current state has handed its verdict over.
    pub(crate) fn check(&self) -> Result<(), Error> {
        let mut control = self.inner.control();
        let in_flight = control.started > control.finished;
        let mine = if in_flight && !control.stale {
            control.started // already probing the current state: its answer is fresh
        } else {
            control.wanted = true;
            self.inner.changed.notify_all();
            control.started + 1
        };
        while control.finished < mine && !control.stop {
            control = self.inner.changed.wait(control).unwrap_or_else(|p| p.into_inner());
        }
        if control.finished < mine {
            return Err(Error::stopped("probing: the probe has stopped"));
        }
        Ok(())
    }
}

impl Drop for ProbeRefiner {
    fn drop(&mut self) {
        self.inner.control().stop = true;
        self.inner.changed.notify_all();
        self.inner.cancel.cancel();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{DefaultRoute, FamilyReachability};

    fn kernel(v4: Level, v6: Level) -> Reachability {
        let k = |l| FamilyReachability { reachability: l, source: Source::Kernel };
        Reachability::from_families(k(v4), k(v6))
    }

    #[test]
    fn fingerprint_sees_levels_and_default_routes_only() {
        let mut state = NetworkState::default();
        let base = Fingerprint::of(&state, &kernel(Level::Online, Level::Site));
        assert_eq!(base.families(), vec![Family::Ipv4, Family::Ipv6]);
        // An interface appearing without changing levels or routes: same fingerprint.
        state.interfaces.push(crate::Interface { index: 7, name: "x".into(), ..Default::default() });
        assert_eq!(Fingerprint::of(&state, &kernel(Level::Online, Level::Site)), base);
        state.default_routes.push(DefaultRoute {
            family: Family::Ipv4,
            gateway: Some("192.0.2.1".parse().unwrap()),
            interface: "x".into(),
            interface_index: 7,
            metric: 0,
            table: 254,
        });
        assert_ne!(Fingerprint::of(&state, &kernel(Level::Online, Level::Site)), base);
        let low = Fingerprint::of(&state, &kernel(Level::Local, Level::Disconnected));
        assert!(low.families().is_empty());
        assert_eq!(Fingerprint::of(&state, &kernel(Level::Local, Level::Online)).families(), vec![Family::Ipv6]);
    }

    #[test]
    fn fingerprint_sees_other_sources_claims_not_the_probes_own() {
        let mut state = NetworkState::default();
        let base = Fingerprint::of(&state, &kernel(Level::Online, Level::Site));
        state.verdicts.push(Verdict { ipv4: Some(Level::Online), ..Verdict::new(Source::Probe) });
        assert_eq!(Fingerprint::of(&state, &kernel(Level::Online, Level::Site)), base, "its own verdict: no re-probe");
        state.verdicts.push(Verdict { ipv4: Some(Level::Site), ..Verdict::new(Source::NetworkManager) });
        let limited = Fingerprint::of(&state, &kernel(Level::Online, Level::Site));
        assert_ne!(limited, base, "a daemon's new claim is re-checked");
        state.verdicts[1].metered = Some(true);
        assert_eq!(
            Fingerprint::of(&state, &kernel(Level::Online, Level::Site)),
            limited,
            "metering is no claim on the probe"
        );
    }
}
