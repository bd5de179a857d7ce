//! Async `Stream` under tokio: a `Subscription` is a `futures_core::Stream`, woken by the
//! monitor's thread; no runtime is imposed, so it runs on tokio's as on any other.
//!
//! ```sh
//! cargo run -p netreach --example tokio_stream -- [NETNS]
//! ```
//!
//! Prints events for 30 s (or until the monitor stops). Reads the kernel only.

use std::time::Duration;

use futures_lite::StreamExt;
use netreach::{EventKind, Monitor};

#[tokio::main(flavor = "current_thread")]
async fn main() -> netreach::Result<()> {
    let monitor = match std::env::args().nth(1) {
        Some(netns) => Monitor::builder().netns(netns).build()?,
        None => Monitor::new()?,
    };
    let mut events = monitor.subscribe();
    let deadline = tokio::time::sleep(Duration::from_secs(30));
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            event = events.next() => match event {
                Some(event) => {
                    if let EventKind::ReachabilityChanged { family, old, new, .. } = event.kind {
                        println!("{family:?}: {old} -> {new}");
                    } else if let EventKind::Baseline { state } = event.kind {
                        println!("now: {}", state.reachability.overall);
                    }
                }
                None => break, // the monitor stopped
            },
            _ = &mut deadline => break,
        }
    }
    Ok(())
}
