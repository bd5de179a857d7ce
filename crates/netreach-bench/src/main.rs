//! `netreach-bench`: measures netreach against the goals of its benchmark issue and prints
//! markdown tables with each goal next to an anchor (`ip`, `if-watch`) measured in the same
//! run.
//!
//! ```text
//! cargo run --release -p netreach-bench             # full run, about 2 minutes
//! cargo run --release -p netreach-bench -- --quick  # short run for CI, under a minute
//! cargo run --release -p netreach-bench -- [--quick] --compare OLD NEW
//!     # two `netreach` binaries (e.g. OLD built from an older commit) side by side
//! ```
//!
//! Needs root (it creates network namespaces). Progress goes to stderr, the report to stdout.
//! Exit status: 0 when every measurement was made (even if goals were missed), 1 when a
//! measurement failed, 2 for a bad command line.

mod changer;
mod idle;
mod latency;
mod listing;
mod observe;
mod paired;
mod report;
mod util;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Duration;

use latency::{Bench, Kind, Series};
use observe::Subscriber;
use paired::{Contender, PairedSeries};
use util::{panic_message, Fallible};

/// How much to measure.
struct Config {
    quick: bool,
    /// `--compare OLD NEW`: only the two binaries against each other.
    compare: Option<[PathBuf; 2]>,
    /// Changes per (kind, subscriber) latency series.
    changes: usize,
    /// Runs of each listing contender (the median is reported).
    listing_runs: usize,
    idle_window: Duration,
}

impl Config {
    fn from_args() -> Result<Config, String> {
        const USAGE: &str = "usage: netreach-bench [--quick] [--compare OLD_NETREACH NEW_NETREACH]";
        let (mut quick, mut compare) = (false, None);
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--quick" => quick = true,
                "--compare" => match (args.next(), args.next()) {
                    (Some(old), Some(new)) => compare = Some([old.into(), new.into()]),
                    _ => return Err(format!("--compare needs two binaries; {USAGE}")),
                },
                "-h" | "--help" => return Err(USAGE.into()),
                other => return Err(format!("unknown argument {other:?}; {USAGE}")),
            }
        }
        Ok(if quick {
            Config { quick, compare, changes: 200, listing_runs: 5, idle_window: Duration::from_secs(10) }
        } else {
            Config { quick, compare, changes: 1000, listing_runs: 7, idle_window: Duration::from_secs(60) }
        })
    }
}

fn main() -> ExitCode {
    let config = match Config::from_args() {
        Ok(config) => config,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    if !testns::require_root("netreach-bench") {
        return ExitCode::FAILURE;
    }
    if let Some(binaries) = &config.compare {
        return compare(&config, binaries);
    }
    let netreach = match netreach_cli() {
        Ok(path) => path,
        Err(message) => {
            eprintln!("netreach-bench: {message}");
            return ExitCode::FAILURE;
        }
    };

    let mut failures = Vec::new();
    eprintln!("latency: {} changes per kind and subscriber", config.changes);
    let (series, paired) = measure_latency(config.changes, &netreach, &mut failures);
    eprintln!("idle: {} s window", config.idle_window.as_secs());
    let idle = guarded("idle", &mut failures, || idle::measure(config.idle_window, &netreach));
    eprintln!("listing at scale: {} runs each", config.listing_runs);
    let listing = guarded("listing", &mut failures, || listing::measure(config.listing_runs, &netreach));

    let mut goals = report::latency_goals(&series, &paired);
    goals.extend(listing.as_ref().map(report::listing_goals).unwrap_or_default());
    goals.extend(idle.as_ref().map(report::idle_goals).unwrap_or_default());
    print_report(&config, &series, &goals);
    report_failures(&failures)
}

/// Latency samples are taken in rounds of this many changes per subscriber, the subscribers
/// taking turns, so a slow phase of the (shared) machine hits them all alike and the ratios
/// between them stay meaningful. A pair's contenders swap their start order every round (see
/// `paired`), so an even number of rounds gives each order the same share.
const ROUND: usize = 100;

/// Every (kind, subscriber) series, and for each kind `ip monitor` and `netreach watch`
/// paired; a failed series is recorded and the others still run. The paired contenders also
/// appear as two series each, for the detail table.
fn measure_latency(
    changes: usize,
    netreach: &Path,
    failures: &mut Vec<String>,
) -> (Vec<Series>, Vec<(Kind, PairedSeries)>) {
    let Some(mut bench) = guarded("latency setup", failures, Bench::new) else { return (Vec::new(), Vec::new()) };
    let rounds = changes.div_ceil(ROUND);
    let (mut series, mut paired) = (Vec::new(), Vec::new());
    for kind in Kind::ALL {
        let mut samples = Subscriber::ALL.map(|_| Some(Vec::new()));
        let mut pair_samples = Some(Vec::new());
        for round in 0..rounds {
            eprintln!("  {}: round {} of {rounds}", kind.label(), round + 1);
            let n = ROUND.min(changes - round * ROUND);
            for (subscriber, slot) in Subscriber::ALL.into_iter().zip(&mut samples) {
                let Some(collected) = slot.as_mut() else { continue }; // failed in an earlier round
                let what = format!("latency {} / {}", kind.label(), subscriber.label());
                match guarded(&what, failures, || bench.measure(kind, subscriber, n)) {
                    Some(more) => collected.extend(more),
                    None => *slot = None,
                }
            }
            let Some(collected) = pair_samples.as_mut() else { continue };
            let contenders = [
                Contender::ip_monitor(bench.netns()),
                Contender::netreach_watch(WATCH_LABEL.into(), netreach, bench.netns()),
            ];
            let what = format!("latency {} / `ip monitor` paired with `netreach watch`", kind.label());
            match guarded(&what, failures, || bench.measure_pair(kind, contenders, round % 2, n)) {
                Some(more) => collected.extend(more),
                None => pair_samples = None,
            }
        }
        for (subscriber, slot) in Subscriber::ALL.into_iter().zip(samples) {
            series.extend(slot.map(|samples| Series::new(kind, subscriber.label(), samples)));
        }
        if let Some(samples) = pair_samples {
            let pair = PairedSeries { labels: [IP_LABEL.into(), WATCH_LABEL.into()], samples };
            for who in 0..2 {
                series.push(Series::new(kind, &format!("{} (paired)", pair.labels[who]), pair.sorted(who)));
            }
            paired.push((kind, pair));
        }
    }
    (series, paired)
}

const IP_LABEL: &str = "`ip monitor`";
const WATCH_LABEL: &str = "`netreach watch --json`";

/// `--compare OLD NEW`: the two binaries' `netreach watch --json` paired for every change kind
/// (ratios new / old), and their `netreach status --json` listing times alternated.
fn compare(config: &Config, [old, new]: &[PathBuf; 2]) -> ExitCode {
    let mut failures = Vec::new();
    let label = |which: &str, path: &Path| format!("{which} `{}`", path.display());
    let labels = [label("old", old), label("new", new)];
    let mut paired = Vec::new();
    if let Some(mut bench) = guarded("latency setup", &mut failures, Bench::new) {
        for kind in Kind::ALL {
            let mut samples = Vec::new();
            for round in 0..config.changes.div_ceil(ROUND) {
                eprintln!("  {}: round {} of {}", kind.label(), round + 1, config.changes.div_ceil(ROUND));
                let n = ROUND.min(config.changes - round * ROUND);
                let contenders = [
                    Contender::netreach_watch(labels[0].clone(), old, bench.netns()),
                    Contender::netreach_watch(labels[1].clone(), new, bench.netns()),
                ];
                let what = format!("latency {}, old and new paired", kind.label());
                match guarded(&what, &mut failures, || bench.measure_pair(kind, contenders, round % 2, n)) {
                    Some(more) => samples.extend(more),
                    None => break,
                }
            }
            if !samples.is_empty() {
                paired.push((kind, PairedSeries { labels: labels.clone(), samples }));
            }
        }
    }
    // Two binaries of the same kind are closer than the goals' contenders: more runs than the
    // goals take, for medians steady within the 10% asked.
    let runs = config.listing_runs * 3;
    eprintln!("listing at scale: {runs} runs each");
    let listing = guarded("listing", &mut failures, || listing::compare(runs, [old.as_path(), new.as_path()]));

    println!("Command: `cargo run --release -p netreach-bench --{} --compare OLD NEW`\n", quick_flag(config));
    println!("Machine: {}\n", machine());
    println!("Old: `{}`, new: `{}`\n", old.display(), new.display());
    println!("{}", report::compare_table(&paired, listing.map(|medians| (runs, medians))));
    report_failures(&failures)
}

fn quick_flag(config: &Config) -> &'static str {
    if config.quick {
        " --quick"
    } else {
        ""
    }
}

fn report_failures(failures: &[String]) -> ExitCode {
    if failures.is_empty() {
        return ExitCode::SUCCESS;
    }
    println!("\n**{} measurement(s) failed:**\n", failures.len());
    for failure in failures {
        println!("- {failure}");
    }
    ExitCode::FAILURE
}

/// Runs one measurement; a failure or panic (testns panics when `ip` fails) is recorded
/// under `what` instead of ending the run, and cleanup happens as the stack unwinds.
fn guarded<T>(what: &str, failures: &mut Vec<String>, f: impl FnOnce() -> Fallible<T>) -> Option<T> {
    let outcome = catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|panic| Err(panic_message(&panic)));
    outcome.map_err(|e| failures.push(format!("{what}: {e}"))).ok()
}

/// The release `netreach` CLI next to this binary's target directory, built (or found up to
/// date) by cargo first so the CLI measured is built from the same sources as the library.
fn netreach_cli() -> Fallible<PathBuf> {
    let exe = std::env::current_exe().map_err(|e| format!("locating this binary: {e}"))?;
    // target/<profile>/netreach-bench -> target/release/netreach
    let target = exe.parent().and_then(Path::parent).ok_or("cannot find the target directory")?;
    let binary = target.join("release").join("netreach");
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../Cargo.toml");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    eprintln!("building the netreach CLI (cargo build --release -p netreach-cli)");
    let built = Command::new(cargo)
        .args(["build", "--release", "--quiet", "-p", "netreach-cli", "--manifest-path"])
        .arg(&manifest)
        .env("CARGO_TARGET_DIR", target)
        .status();
    match built {
        Ok(status) if status.success() => Ok(binary),
        _ if binary.exists() => {
            eprintln!("warning: building the CLI failed; measuring the existing {}", binary.display());
            Ok(binary)
        }
        _ => Err(format!("cannot build the netreach CLI and there is no {}", binary.display())),
    }
}

fn print_report(config: &Config, series: &[Series], goals: &[report::Goal]) {
    let command = if config.quick {
        "cargo run --release -p netreach-bench -- --quick"
    } else {
        "cargo run --release -p netreach-bench"
    };
    println!("Command: `{command}`\n");
    println!("Machine: {}\n", machine());
    if cfg!(debug_assertions) {
        println!("**Warning: built without `--release`; these figures are not representative.**\n");
    }
    println!(
        "### Latency: kernel change → subscriber ({} changes per row)\n\n\
         t0: right before the changer's `send()` of the request on its own rtnetlink socket in \
         the namespace; t1: the library callback runs, or the subscriber's stdout line is read. \
         \"(paired)\": both processes follow the namespace at once and one reader stamps both.\n",
        config.changes
    );
    println!("{}", report::latency_table(series));
    println!("### Goals\n\n{}", report::goals_table(goals));
    println!("{}", report::summary(goals));
}

/// `nproc`, CPU model, kernel release and load averages (at the end of the run).
fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name")?.split_once(':').map(|(_, m)| m.trim().to_string()))
        .unwrap_or_else(|| "unknown CPU".into());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load: Vec<&str> = load.split_whitespace().take(3).collect();
    format!("nproc {cpus}, {model}, Linux {}, load {} (1/5/15 min, at the end)", kernel.trim(), load.join(" "))
}
