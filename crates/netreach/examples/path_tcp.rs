//! Path monitor from a `TcpStream`: connect, then learn the moment that connection's path
//! (local -> remote) stops working, instead of waiting minutes for TCP timeouts.
//!
//! ```sh
//! cargo run -p netreach --example path_tcp -- 192.0.2.1:80
//! ```
//!
//! Connects only to the address given (no default: it never contacts anything on its own),
//! then reads the kernel. Ends at the first change of the path, or after 60 s.

use std::net::TcpStream;
use std::sync::mpsc;
use std::time::Duration;

use netreach::Monitor;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let Some(remote) = std::env::args().nth(1) else {
        return Err("usage: path_tcp HOST:PORT (the server to connect to)".into());
    };
    let stream = TcpStream::connect(&remote)?;
    let monitor = Monitor::new()?;
    let path = monitor.watch_tcp(&stream)?;
    let (changes, changed) = mpsc::channel();
    // Called at once with the current status (on this thread), then on every change.
    let id = path.on_change(move |status| {
        let _ = changes.send(status.clone());
    });
    let first = changed.recv()?;
    println!("{} -> {}: {}", first.local, first.remote, describe(&first));
    match changed.recv_timeout(Duration::from_secs(60)) {
        Ok(next) => println!("changed: {}", describe(&next)),
        Err(_) => println!("no change in 60 s"),
    }
    path.remove_callback(id);
    Ok(())
}

fn describe(status: &netreach::PathStatus) -> String {
    match status.reason() {
        None => format!("reachable via {}", status.interface().unwrap_or("?")),
        Some(reason) => format!("unreachable: {reason}"),
    }
}
