//! The printed report: markdown tables, each goal next to an anchor measured in the same run.

use std::time::Duration;

use crate::idle::{Cost, Idle};
use crate::latency::{Kind, Series};
use crate::listing::Listing;
use crate::observe::Subscriber;
use crate::util::fmt_duration;

const LIBRARY_P50_GOAL: Duration = Duration::from_micros(100);
const LIBRARY_P99_GOAL: Duration = Duration::from_millis(1);
const WATCH_RATIO_GOAL: f64 = 1.2;
const RSS_GOAL_KIB: u64 = 8 * 1024;

/// One row of the goals table.
pub struct Goal {
    what: String,
    netreach: String,
    anchor: String,
    target: &'static str,
    verdict: Verdict,
}

#[derive(Clone, Copy)]
enum Verdict {
    Pass,
    Miss,
    /// Reported for context; no goal.
    Info,
}

impl Verdict {
    fn of(pass: bool) -> Verdict {
        if pass {
            Verdict::Pass
        } else {
            Verdict::Miss
        }
    }

    fn label(self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Miss => "**MISS**",
            Verdict::Info => "info",
        }
    }
}

/// The latency detail table: every (change, subscriber) series.
pub fn latency_table(series: &[Series]) -> String {
    let mut out = String::from("| change | subscriber | samples | p50 | p99 | max |\n|---|---|---:|---:|---:|---:|\n");
    for s in series {
        out += &format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            s.kind.label(),
            s.subscriber.label(),
            s.samples.len(),
            fmt_duration(s.p50()),
            fmt_duration(s.p99()),
            fmt_duration(s.max())
        );
    }
    out
}

/// Goals 1 and 2 for every change kind whose series were all measured.
pub fn latency_goals(series: &[Series]) -> Vec<Goal> {
    let mut goals = Vec::new();
    for kind in Kind::ALL {
        let find = |who| series.iter().find(|s| s.kind == kind && s.subscriber == who);
        let (library, ip, watch) =
            (find(Subscriber::Library), find(Subscriber::IpMonitor), find(Subscriber::NetreachWatch));
        let ip_text = |d: Option<Duration>| d.map_or("—".into(), |d| format!("`ip monitor` {}", fmt_duration(d)));
        if let Some(library) = library {
            goals.push(Goal {
                what: format!("library latency p50, {}", kind.label()),
                netreach: fmt_duration(library.p50()),
                anchor: ip_text(ip.map(Series::p50)),
                target: "≤ 100 µs",
                verdict: Verdict::of(library.p50() <= LIBRARY_P50_GOAL),
            });
            goals.push(Goal {
                what: format!("library latency p99, {}", kind.label()),
                netreach: fmt_duration(library.p99()),
                anchor: ip_text(ip.map(Series::p99)),
                target: "≤ 1 ms",
                verdict: Verdict::of(library.p99() <= LIBRARY_P99_GOAL),
            });
        }
        if let (Some(ip), Some(watch)) = (ip, watch) {
            let ratio = watch.p50().as_secs_f64() / ip.p50().as_secs_f64();
            goals.push(Goal {
                what: format!("`netreach watch` p50 / `ip monitor` p50, {}", kind.label()),
                netreach: format!("{ratio:.2} ({})", fmt_duration(watch.p50())),
                anchor: ip_text(Some(ip.p50())),
                target: "≤ 1.2",
                verdict: Verdict::of(ratio <= WATCH_RATIO_GOAL),
            });
        }
    }
    goals
}

/// Goal 3: listing 1,000 interfaces and 10,000 addresses.
pub fn listing_goals(l: &Listing) -> Vec<Goal> {
    let scale = format!("{} interfaces, {} addresses, median of {}", l.interfaces, l.addresses, l.runs);
    vec![
        Goal {
            what: format!("process wall time, `netreach status --json` ({scale})"),
            netreach: fmt_duration(l.netreach_process),
            anchor: format!("`ip -j addr show` {}", fmt_duration(l.ip_process)),
            target: "faster than `ip`",
            verdict: Verdict::of(l.netreach_process < l.ip_process),
        },
        Goal {
            what: format!("in-process build + initial snapshot ({scale})"),
            netreach: fmt_duration(l.netreach_snapshot),
            anchor: format!("if-watch listing {}", fmt_duration(l.if_watch)),
            target: "≤ if-watch",
            verdict: Verdict::of(l.netreach_snapshot <= l.if_watch),
        },
    ]
}

/// Goal 4: the idle `netreach watch`.
pub fn idle_goals(idle: &Idle) -> Vec<Goal> {
    let secs = idle.window.as_secs();
    let mib = |kib: u64| format!("{:.1} MiB", kib as f64 / 1024.0);
    let threads = |c: &Cost| format!("{} thread{}", c.threads, if c.threads == 1 { "" } else { "s" });
    let (n, ip) = (&idle.netreach, &idle.ip_monitor);
    vec![
        Goal {
            what: format!("idle `netreach watch`: wake-ups in {secs} s (all threads)"),
            netreach: format!("{} ({})", n.wakeups, threads(n)),
            anchor: format!(
                "`ip monitor` {} ({}); namespaces deleted elsewhere meanwhile: {}",
                ip.wakeups,
                threads(ip),
                idle.namespace_deletions
            ),
            target: "0",
            verdict: Verdict::of(n.wakeups == 0),
        },
        Goal {
            what: "idle `netreach watch`: VmRSS".into(),
            netreach: mib(n.rss_kib),
            anchor: format!("`ip monitor` {}", mib(ip.rss_kib)),
            target: "≤ 8 MiB",
            verdict: Verdict::of(n.rss_kib <= RSS_GOAL_KIB),
        },
        Goal {
            what: "idle `netreach watch`: VmHWM (peak RSS)".into(),
            netreach: mib(n.hwm_kib),
            anchor: format!("`ip monitor` {}", mib(ip.hwm_kib)),
            target: "—",
            verdict: Verdict::Info,
        },
    ]
}

pub fn goals_table(goals: &[Goal]) -> String {
    let mut out = String::from("| goal | netreach | anchor (same run) | target | result |\n|---|---:|---:|---|---|\n");
    for g in goals {
        out += &format!("| {} | {} | {} | {} | {} |\n", g.what, g.netreach, g.anchor, g.target, g.verdict.label());
    }
    out
}

/// "N of M goals missed." (informational rows are not goals).
pub fn summary(goals: &[Goal]) -> String {
    let missed = goals.iter().filter(|g| matches!(g.verdict, Verdict::Miss)).count();
    let total = goals.iter().filter(|g| !matches!(g.verdict, Verdict::Info)).count();
    format!("{missed} of {total} goals missed.")
}
