//! Probe and wait: ask an HTTP endpoint once, then run a monitor with the probe and wait
//! (bounded) until the network is online.
//!
//! ```sh
//! cargo run -p netreach --example probe_wait -- http://192.0.2.1:8080/generate_204
//! ```
//!
//! The endpoint is the first argument; **without one it probes `http://127.0.0.1:8080/generate_204`
//! (loopback), never a server on the internet** (netreach's own defaults would ask Google's
//! and GNOME's). The endpoint must answer `204 No Content` when online. Exit status: 0 once
//! online, 1 after 10 s without.

use std::time::{Duration, Instant};

use netreach::probe::{self, Endpoint, ProbeConfig};
use netreach::{Family, Level, Monitor};

/// Loopback, so that running the example as is contacts nothing outside this machine.
const DEFAULT_URL: &str = "http://127.0.0.1:8080/generate_204";

fn main() -> netreach::Result<()> {
    let url = std::env::args().nth(1).unwrap_or_else(|| DEFAULT_URL.to_owned());
    let config = ProbeConfig::new()
        .endpoints(vec![Endpoint::new(&url)?])
        .total_timeout(Duration::from_secs(3))
        .connect_timeout(Duration::from_secs(2));
    for result in probe::run(&config, &[Family::Ipv4, Family::Ipv6], None)? {
        println!("probe {}: {} in {:?}", result.family, result.outcome, result.timings.total);
    }

    // The same probe inside a monitor: its verdicts refine the kernel's level (source probe).
    let monitor = Monitor::builder().probe(config).build()?;
    let events = monitor.subscribe();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let state = monitor.snapshot();
        if state.reachability.overall == Level::Online {
            println!("online ({})", state.reachability.source);
            return Ok(());
        }
        // Woken by any event; bounded by the deadline.
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || matches!(events.recv_timeout(left), Err(netreach::RecvError::Closed)) {
            println!("not online after 10 s: {} ({})", state.reachability.overall, state.reachability.source);
            std::process::exit(1);
        }
    }
}
