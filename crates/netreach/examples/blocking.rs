//! Blocking receiver: print the state, then every reachability change, from a plain thread.
//!
//! ```sh
//! cargo run -p netreach --example blocking              # this machine's namespace
//! cargo run -p netreach --example blocking -- demo      # /run/netns/demo (needs root)
//! ```
//!
//! Reads the kernel only: sends no packet anywhere.

use netreach::{EventKind, Monitor};

fn main() -> netreach::Result<()> {
    let monitor = match std::env::args().nth(1) {
        Some(netns) => Monitor::builder().netns(netns).build()?,
        None => Monitor::new()?,
    };
    // A baseline first, then every change; `recv` blocks, `recv_timeout` bounds the wait.
    for event in monitor.subscribe().iter() {
        match event.kind {
            EventKind::Baseline { state } => {
                println!("now: {} ({})", state.reachability.overall, state.reachability.source)
            }
            EventKind::ReachabilityChanged { family, old, new, source, reason } => match reason {
                Some(why) => println!("{family:?}: {old} -> {new} ({source}): {why}"),
                None => println!("{family:?}: {old} -> {new} ({source})"),
            },
            EventKind::Error { message, fatal: true } => {
                eprintln!("stopped: {message}");
                break;
            }
            _ => {}
        }
    }
    Ok(())
}
