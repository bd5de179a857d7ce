//! systemd's readiness protocol (`Type=notify`) for `exporter` and `watch`: READY=1 once the
//! first state is known, STATUS= with the current level at each change, and WATCHDOG=1
//! keep-alives when the unit sets `WatchdogSec=` (systemd passes WATCHDOG_USEC).
//!
//! Everything is a no-op without NOTIFY_SOCKET (not started by systemd), and a failed send is
//! ignored: the service manager's absence must never stop the monitor.

use std::time::Duration;

use netreach::{Event, EventKind, Level, ReachabilityOf, Snapshot};
use sd_notify::NotifyState;

/// The STATUS= text for a state, e.g. `online (ipv4 online, ipv6 site)`. Only level names:
/// no text from outside reaches systemd.
pub(crate) fn describe(state: &Snapshot) -> String {
    let r = &state.reachability;
    line([r.overall, r.ipv4.reachability, r.ipv6.reachability])
}

fn line([overall, ipv4, ipv6]: [Level; 3]) -> String {
    format!("{overall} (ipv4 {ipv4}, ipv6 {ipv6})")
}

/// `watch`'s notifications, from its events: READY=1 with the baseline, STATUS= at each
/// level change. The levels are followed from the events themselves (overall, IPv4, IPv6).
#[derive(Default)]
pub(crate) struct Follow {
    levels: Option<[Level; 3]>,
}

impl Follow {
    pub(crate) fn event(&mut self, event: &Event) {
        match (&event.kind, self.levels.as_mut()) {
            (EventKind::Baseline { state }, previous) => {
                let r = &state.reachability;
                let levels = [r.overall, r.ipv4.reachability, r.ipv6.reachability];
                if previous.is_none() {
                    ready(&line(levels));
                } else {
                    status(&line(levels)); // after a lag: the fresh state
                }
                self.levels = Some(levels);
            }
            (EventKind::ReachabilityChanged { family, new, .. }, Some(levels)) => {
                levels[match family {
                    ReachabilityOf::Ipv4 => 1,
                    ReachabilityOf::Ipv6 => 2,
                    _ => 0,
                }] = *new;
                status(&line(*levels));
            }
            _ => {}
        }
    }
}

/// Tells systemd we are ready, with a first status.
pub(crate) fn ready(status: &str) {
    let _ = sd_notify::notify(false, &[NotifyState::Ready, NotifyState::Status(status)]);
}

/// Updates the status line (`systemctl status` shows it).
pub(crate) fn status(status: &str) {
    let _ = sd_notify::notify(false, &[NotifyState::Status(status)]);
}

/// Whether systemd listens (NOTIFY_SOCKET is set): callers skip building statuses otherwise.
pub(crate) fn enabled() -> bool {
    std::env::var_os("NOTIFY_SOCKET").is_some()
}

/// When systemd asks for keep-alives (WATCHDOG_USEC for this process), sends WATCHDOG=1 at
/// half the interval from a thread of its own, as sd_watchdog_enabled(3) advises. That thread
/// is the only timer in the process, and only when asked for.
pub(crate) fn start_watchdog() {
    let mut usec = 0;
    if !sd_notify::watchdog_enabled(false, &mut usec) || usec == 0 {
        return;
    }
    let every = Duration::from_micros(usec / 2);
    let _ = std::thread::Builder::new().name("watchdog".into()).spawn(move || loop {
        let _ = sd_notify::notify(false, &[NotifyState::Watchdog]);
        std::thread::sleep(every);
    });
}
