//! Callback: get every event on the monitor's thread, and hand what matters to the main
//! thread over a channel (callbacks should return quickly).
//!
//! ```sh
//! cargo run -p netreach --example callback -- [NETNS]
//! ```
//!
//! Ends after the first reachability change (or Ctrl-C). Reads the kernel only.

use std::sync::mpsc;

use netreach::{EventKind, Monitor};

fn main() -> netreach::Result<()> {
    let monitor = match std::env::args().nth(1) {
        Some(netns) => Monitor::builder().netns(netns).build()?,
        None => Monitor::new()?,
    };
    let (changes, changed) = mpsc::channel();
    let id = monitor.on_event(move |event| {
        // Runs on the monitor's thread, in order, never concurrently, outside every lock.
        if let EventKind::ReachabilityChanged { family, old, new, .. } = &event.kind {
            let _ = changes.send(format!("{family:?}: {old} -> {new}"));
        }
    });
    println!("now: {}; waiting for a change", monitor.snapshot().reachability.overall);
    if let Ok(change) = changed.recv() {
        println!("{change}");
    }
    monitor.remove_callback(id);
    Ok(())
}
