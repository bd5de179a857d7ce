//! The printed report: markdown tables, each goal next to an anchor measured in the same run.

use std::time::Duration;

use crate::idle::{Cost, Idle};
use crate::latency::{Kind, Series};
use crate::listing::Listing;
use crate::observe::Subscriber;
use crate::paired::PairedSeries;
use crate::util::fmt_duration;

const LIBRARY_P50_GOAL: Duration = Duration::from_micros(100);
const LIBRARY_P99_GOAL: Duration = Duration::from_millis(1);
/// `netreach watch` / `ip monitor`, paired (issue 11).
const WATCH_P50_RATIO_GOAL: f64 = 1.1;
const WATCH_P99_RATIO_GOAL: f64 = 1.5;
/// New binary / old binary in `--compare`: no figure regresses by more than 10%.
const REGRESSION_GOAL: f64 = 1.1;
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
            s.subscriber,
            s.samples.len(),
            fmt_duration(s.p50()),
            fmt_duration(s.p99()),
            fmt_duration(s.max())
        );
    }
    out
}

/// Goals 1 and 2 for every change kind whose series were measured: the library alone, and
/// `netreach watch` against `ip monitor` measured paired.
pub fn latency_goals(series: &[Series], paired: &[(Kind, PairedSeries)]) -> Vec<Goal> {
    let mut goals = Vec::new();
    for kind in Kind::ALL {
        let library = series.iter().find(|s| s.kind == kind && s.subscriber == Subscriber::Library.label());
        let pair = paired.iter().find(|(k, _)| *k == kind).map(|(_, pair)| pair);
        let ip = pair.map(|pair| pair.percentiles(0));
        let ip_text = |d: Option<Duration>| d.map_or("—".into(), |d| format!("`ip monitor` {}", fmt_duration(d)));
        if let Some(library) = library {
            goals.push(Goal {
                what: format!("library latency p50, {}", kind.label()),
                netreach: fmt_duration(library.p50()),
                anchor: ip_text(ip.map(|(p50, _)| p50)),
                target: "≤ 100 µs",
                verdict: Verdict::of(library.p50() <= LIBRARY_P50_GOAL),
            });
            goals.push(Goal {
                what: format!("library latency p99, {}", kind.label()),
                netreach: fmt_duration(library.p99()),
                anchor: ip_text(ip.map(|(_, p99)| p99)),
                target: "≤ 1 ms",
                verdict: Verdict::of(library.p99() <= LIBRARY_P99_GOAL),
            });
        }
        if let Some(pair) = pair {
            let ((ip50, ip99), (watch50, watch99)) = (pair.percentiles(0), pair.percentiles(1));
            let (r50, r99) = pair.ratios();
            let n = pair.samples.len();
            goals.push(Goal {
                what: format!("`netreach watch` p50 / `ip monitor` p50, paired, {}, {n} samples", kind.label()),
                netreach: format!("{r50:.2} ({})", fmt_duration(watch50)),
                anchor: ip_text(Some(ip50)),
                target: "≤ 1.1",
                verdict: Verdict::of(r50 <= WATCH_P50_RATIO_GOAL),
            });
            goals.push(Goal {
                what: format!("`netreach watch` p99 / `ip monitor` p99, paired, {}, {n} samples", kind.label()),
                netreach: format!("{r99:.2} ({})", fmt_duration(watch99)),
                anchor: ip_text(Some(ip99)),
                target: "≤ 1.5",
                verdict: Verdict::of(r99 <= WATCH_P99_RATIO_GOAL),
            });
            let [ip_first, tied, watch_first] = pair.order();
            goals.push(Goal {
                what: format!("which line was read first, paired, {}", kind.label()),
                netreach: format!("`netreach watch` first {watch_first}"),
                anchor: format!("`ip monitor` first {ip_first}; same wake-up {tied}"),
                target: "—",
                verdict: Verdict::Info,
            });
        }
    }
    goals
}

/// `--compare`: every latency (paired) and listing figure of the new binary against the old.
/// `listing` is the number of runs and the two medians.
pub fn compare_table(paired: &[(Kind, PairedSeries)], listing: Option<(usize, [Duration; 2])>) -> String {
    let mut out = String::from(
        "| figure | samples | old | new | new / old | target | result |\n|---|---:|---:|---:|---:|---|---|\n",
    );
    let mut row = |what: String, n: usize, old: Duration, new: Duration| {
        let ratio = new.as_secs_f64() / old.as_secs_f64();
        out += &format!(
            "| {what} | {n} | {} | {} | {ratio:.2} | ≤ 1.10 | {} |\n",
            fmt_duration(old),
            fmt_duration(new),
            Verdict::of(ratio <= REGRESSION_GOAL).label()
        );
    };
    for (kind, pair) in paired {
        let ((old50, old99), (new50, new99)) = (pair.percentiles(0), pair.percentiles(1));
        let n = pair.samples.len();
        row(format!("`watch --json` latency p50, {}, paired", kind.label()), n, old50, new50);
        row(format!("`watch --json` latency p99, {}, paired", kind.label()), n, old99, new99);
    }
    if let Some((runs, [old, new])) = listing {
        row("`status --json` wall time, 1,000 interfaces, 10,000 addresses, median".into(), runs, old, new);
    }
    out
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
