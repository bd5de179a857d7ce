//! Benchmark for the connectivity probe and `netreach wait` (prints figures; not a timed test).
//!
//! ```sh
//! apt install curl                                  # the reference, if missing
//! cargo build --release -p netreach-cli               # the netreach binary measured
//! cargo run --release -p netreach-bench --bin probe [-- --quick]
//! ```
//!
//! - Probe overhead: `netreach probe --url URL --family 4` against a local endpoint (a server in a
//!   namespace of its own, behind a veth) versus `curl -s -o /dev/null URL` to the same URL in
//!   the same run, alternating, both started from inside the client namespace: p50 of each and
//!   the ratio (goal <= 1.2x). The library call alone (`netreach::probe::run`) is shown too.
//! - `netreach wait` when the level is already reached: wall time of the release binary run
//!   against a namespace that is already online (goal <= 5 ms).

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use netreach::probe::{run, Endpoint, Outcome, ProbeConfig};
use netreach::{Family, Netns};
use testns::http::{client_server, Reply, Server, SERVER_V4};

fn main() {
    if !testns::require_root("probe benchmark") {
        std::process::exit(1);
    }
    let rounds = if std::env::args().any(|a| a == "--quick") { 30 } else { 200 };
    let netreach = netreach_binary();
    let (client, server) = client_server("bprobe");
    let srv = Server::start(&server, &format!("{SERVER_V4}:8080"), Reply::text("HTTP/1.1 204 No Content\r\n\r\n"));
    let url = srv.url("/generate_204");
    let ns = Netns::Name(client.name().into());

    let config = ProbeConfig::new().endpoints(vec![Endpoint::new(&url).expect("url")]);
    // From a thread already inside the namespace: the probe itself, without entering it.
    let library = client.run_inside(|| {
        timed(rounds, || {
            let results = run(&config, &[Family::Ipv4], None).expect("probe");
            assert_eq!(results[0].outcome, Outcome::Online, "{results:?}");
        })
    });
    // The same through `Some(netns)`: each call enters the namespace on a fresh thread.
    let entering = timed(rounds, || {
        let results = run(&config, &[Family::Ipv4], Some(&ns)).expect("probe");
        assert_eq!(results[0].outcome, Outcome::Online, "{results:?}");
    });

    let curl = Command::new("curl").arg("--version").stdout(Stdio::null()).status().is_ok_and(|s| s.success());
    // Children started from a thread inside the namespace are born there.
    let (ours, theirs) = client.run_inside(|| {
        let mut ours = Vec::new();
        let mut theirs = Vec::new();
        for _ in 0..rounds {
            ours.push(time_command(Command::new(&netreach).args(["probe", "--url", &url, "--family", "4"])));
            if curl {
                theirs.push(time_command(Command::new("curl").args(["-s", "-f", "-o", "/dev/null", &url])));
            }
        }
        (ours, theirs)
    });

    // `netreach wait` as a boot script inside the namespace runs it (no --netns), and from outside
    // with --netns (which also watches /run/netns for the namespace's deletion).
    let wait_args = ["wait", "--level", "online", "--timeout", "5s"];
    let wait = client.run_inside(|| timed(rounds, || run_wait(&netreach, &wait_args)));
    let wait_netns = timed(rounds, || run_wait(&netreach, &[&wait_args[..], &["--netns", client.name()]].concat()));

    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!("probe benchmark ({rounds} rounds each, local endpoint {url})");
    println!("  library netreach::probe::run p50 {:.3} ms, p95 {:.3} ms", ms(pct(&library, 50)), ms(pct(&library, 95)));
    println!(
        "  library, entering the netns p50 {:.3} ms, p95 {:.3} ms",
        ms(pct(&entering, 50)),
        ms(pct(&entering, 95))
    );
    println!("  netreach probe (process)     p50 {:.3} ms, p95 {:.3} ms", ms(pct(&ours, 50)), ms(pct(&ours, 95)));
    if curl {
        let ratio = ms(pct(&ours, 50)) / ms(pct(&theirs, 50));
        println!("  curl (process)             p50 {:.3} ms, p95 {:.3} ms", ms(pct(&theirs, 50)), ms(pct(&theirs, 95)));
        println!("  ratio netreach probe / curl p50: {ratio:.2}x (goal <= 1.2x)");
    } else {
        println!("  curl not installed (apt install curl): no reference figure");
    }
    println!(
        "  netreach wait (already online, inside) p50 {:.3} ms, p95 {:.3} ms (goal p50 <= 5 ms)",
        ms(pct(&wait, 50)),
        ms(pct(&wait, 95))
    );
    println!(
        "  netreach wait --netns (already online) p50 {:.3} ms, p95 {:.3} ms",
        ms(pct(&wait_netns, 50)),
        ms(pct(&wait_netns, 95))
    );
}

fn run_wait(netreach: &PathBuf, args: &[&str]) {
    let ok = Command::new(netreach).args(args).stdout(Stdio::null()).status().is_ok_and(|s| s.success());
    assert!(ok, "netreach wait failed on an online namespace");
}

/// The release `netreach` binary next to this benchmark.
fn netreach_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let path = exe.with_file_name("netreach");
    if !path.exists() {
        eprintln!("{} not found: run `cargo build --release -p netreach-cli` first", path.display());
        std::process::exit(1);
    }
    path
}

fn time_command(command: &mut Command) -> Duration {
    let start = Instant::now();
    let status = command.stdout(Stdio::null()).stderr(Stdio::null()).status().expect("start");
    let took = start.elapsed();
    assert!(status.success(), "{command:?} failed: {status}");
    took
}

fn timed(rounds: usize, mut f: impl FnMut()) -> Vec<Duration> {
    (0..rounds)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect()
}

fn pct(samples: &[Duration], p: usize) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    sorted[(sorted.len() - 1) * p / 100]
}
