//! Async `Stream` under smol (a second executor, next to tokio_stream.rs): the same
//! `Subscription`, no tokio anywhere.
//!
//! ```sh
//! cargo run -p netreach --example smol_stream -- [NETNS]
//! ```
//!
//! Prints events for 30 s (or until the monitor stops). Reads the kernel only.

use std::time::Duration;

use futures_lite::{FutureExt, StreamExt};
use netreach::{EventKind, Monitor};

fn main() -> netreach::Result<()> {
    let monitor = match std::env::args().nth(1) {
        Some(netns) => Monitor::builder().netns(netns).build()?,
        None => Monitor::new()?,
    };
    smol::block_on(async {
        let mut events = monitor.subscribe();
        let print = async {
            while let Some(event) = events.next().await {
                match event.kind {
                    EventKind::Baseline { state } => println!("now: {}", state.reachability.overall),
                    EventKind::ReachabilityChanged { family, old, new, .. } => println!("{family:?}: {old} -> {new}"),
                    _ => {}
                }
            }
        };
        // Whichever ends first: the stream (monitor stopped) or 30 s.
        print
            .or(async {
                smol::Timer::after(Duration::from_secs(30)).await;
            })
            .await;
    });
    Ok(())
}
