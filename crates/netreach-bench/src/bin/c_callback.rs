//! Benchmark: kernel change -> C callback (through the C API of crates/netreach-c) beside the
//! Rust callback, on the same changes, in the same run (paired).
//!
//! `cargo run --release -p netreach-bench --bin c_callback [-- --quick]`
//!
//! Three monitors watch one namespace: a Rust `Monitor::on_event` callback, a C-API monitor
//! whose callback is an `extern "C"` function called through `netreach_monitor_subscribe`'s
//! function pointer (the path a C program's function takes: the slot lock, the event wrapper,
//! the ABI call), and a second Rust monitor as the control (what two identical monitors differ
//! by). Each change (an address added or removed over the changer's own rtnetlink socket)
//! is stamped right before it is sent; each callback stamps its arrival. Printed: p50/p90/p99
//! of each, and the p50 of the per-change differences C - Rust and control - Rust. Issue 15's
//! goal: C within 10 µs of Rust at p50. Prints the load average before and after.

#[path = "../changer.rs"]
#[allow(dead_code)] // shared with the main benchmark; this binary makes address changes only
mod changer;
#[path = "../util.rs"]
#[allow(dead_code)] // shared with the main benchmark; this binary uses its namespace helper and statistics
mod util;

use std::ffi::c_void;
use std::net::Ipv4Addr;
use std::sync::mpsc::{self, Receiver, Sender};
use std::time::{Duration, Instant};

use netreach::{EventKind, Monitor};
use netreach_c::{
    netreach_event_type, netreach_monitor_free, netreach_monitor_new, netreach_monitor_subscribe, netreach_options_free,
    netreach_options_new, netreach_options_set_backend, netreach_options_set_netns, netreach_subscription_free,
    NetreachBackend, NetreachEvent, NetreachEventType, NetreachStatus,
};
use util::{fmt_duration, percentile};

const WAIT: Duration = Duration::from_secs(5);

/// The C callback: stamps address events and sends the stamp on the channel in `user_data`.
unsafe extern "C" fn on_c_event(event: *const NetreachEvent, user_data: *mut c_void) {
    let now = Instant::now();
    // SAFETY: `event` is the live event of this callback.
    let kind = unsafe { netreach_event_type(event) };
    if matches!(kind, NetreachEventType::AddressAdded | NetreachEventType::AddressRemoved) {
        // SAFETY: `user_data` is the `Sender` that `main` keeps alive until it frees the
        // subscription; `Sender` is `Sync`.
        let _ = unsafe { &*(user_data as *const Sender<Instant>) }.send(now);
    }
}

fn rust_monitor(ns: &testns::NetNs) -> (Monitor, Receiver<Instant>) {
    let monitor = Monitor::builder().netns(ns.name()).backend(netreach::BackendKind::Kernel).build().expect("monitor");
    let (tx, rx) = mpsc::channel();
    monitor.on_event(move |event| {
        let now = Instant::now();
        if matches!(event.kind, EventKind::AddressAdded { .. } | EventKind::AddressRemoved { .. }) {
            let _ = tx.send(now);
        }
    });
    (monitor, rx)
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg").unwrap_or_default().split(' ').take(3).collect::<Vec<_>>().join(" ")
}

fn row(name: &str, mut samples: Vec<Duration>) -> String {
    samples.sort();
    let p = |q| fmt_duration(percentile(&samples, q));
    format!("| {name} | {} | {} | {} |", p(50), p(90), p(99))
}

/// p50 of signed per-change differences, in µs.
fn diff_p50(a: &[Duration], b: &[Duration]) -> f64 {
    let mut d: Vec<f64> = a.iter().zip(b).map(|(a, b)| (a.as_secs_f64() - b.as_secs_f64()) * 1e6).collect();
    d.sort_by(f64::total_cmp);
    d[d.len() / 2]
}

fn main() {
    if !testns::require_root("c_callback benchmark") {
        std::process::exit(1);
    }
    let changes = if std::env::args().any(|a| a == "--quick") { 200 } else { 1000 };
    println!("load average before: {}", loadavg());
    let ns = testns::NetNs::new("bench-c");
    ns.veth("va", "vb");
    let index = ns.index("va");

    let (rust, rust_rx) = rust_monitor(&ns);
    let (control, control_rx) = rust_monitor(&ns);
    let (c_tx, c_rx) = mpsc::channel::<Instant>();
    let name = std::ffi::CString::new(ns.name()).expect("namespace name");
    let mut c_monitor = std::ptr::null_mut();
    let mut subscription = std::ptr::null_mut();
    // SAFETY: options are made, used and freed here; `c_tx` outlives the subscription (freed
    // below before `c_tx` is dropped).
    unsafe {
        let options = netreach_options_new();
        assert_eq!(netreach_options_set_netns(options, name.as_ptr()), NetreachStatus::Ok);
        assert_eq!(netreach_options_set_backend(options, NetreachBackend::Kernel as i32), NetreachStatus::Ok);
        assert_eq!(netreach_monitor_new(options, &mut c_monitor), NetreachStatus::Ok);
        netreach_options_free(options);
        let user_data = &c_tx as *const Sender<Instant> as *mut c_void;
        assert_eq!(netreach_monitor_subscribe(c_monitor, Some(on_c_event), user_data, &mut subscription), NetreachStatus::Ok);
    }

    let mut changer = changer::Changer::open(&ns.path()).expect("changer");
    let (mut r, mut c, mut k) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..changes {
        let address = Ipv4Addr::new(198, 18, (i / 250) as u8, (i % 250 + 1) as u8);
        for add in [true, false] {
            let t0 = if add { changer.add_address(index, address) } else { changer.remove_address(index, address) };
            let t0 = t0.expect("change");
            let arrival = |rx: &Receiver<Instant>| rx.recv_timeout(WAIT).expect("callback within 5 s") - t0;
            r.push(arrival(&rust_rx));
            c.push(arrival(&c_rx));
            k.push(arrival(&control_rx));
        }
    }
    // SAFETY: made above, freed once; the subscription first, so `c_tx` is unused afterwards.
    unsafe {
        netreach_subscription_free(subscription);
        netreach_monitor_free(c_monitor);
    }
    drop((rust, control));

    println!("\n{} kernel changes (address add/remove), change -> callback:\n", r.len());
    println!("| callback | p50 | p90 | p99 |\n|---|---|---|---|");
    println!("{}", row("Rust `Monitor::on_event`", r.clone()));
    println!("{}", row("C API `netreach_monitor_subscribe` (extern \"C\" fn)", c.clone()));
    println!("{}", row("Rust, second monitor (control)", k.clone()));
    let (dc, dk) = (diff_p50(&c, &r), diff_p50(&k, &r));
    println!("\nper-change difference, p50: C - Rust = {dc:+.1} µs; control - Rust = {dk:+.1} µs");
    println!("goal (issue 15): C within 10 µs of Rust at p50: {}", if dc.abs() <= 10.0 { "met" } else { "missed" });
    println!("load average after: {}", loadavg());
}
