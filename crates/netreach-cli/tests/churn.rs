//! `netreach status` while the kernel is busy: thousands of links and addresses appearing, IPv6
//! duplicate address detection running. Every dump is then likely to be interrupted
//! (`NLM_F_DUMP_INTR`); status must still answer, and once things settle equal the kernel.
#![cfg(target_os = "linux")] // network namespaces

use std::collections::BTreeSet;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use testns::NetNs;

/// veth pairs created by the churn: twice as many links.
const PAIRS: usize = 1200;

/// (index, name, sorted "address/prefix" list) of every interface.
type Listing = BTreeSet<(u64, String, Vec<String>)>;

fn status(ns: &NetNs) -> Result<Value, String> {
    let out = Command::new(env!("CARGO_BIN_EXE_netreach"))
        .args(["status", "--json", "--netns", ns.name()])
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!("exit {:?}: {}", out.status.code(), String::from_utf8_lossy(&out.stderr)));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("not JSON: {e}"))
}

fn listing(interfaces: &Value, index: &str, name: &str, addresses: &str, address: &str, prefix: &str) -> Listing {
    let interfaces = interfaces.as_array().expect("an array of interfaces");
    interfaces
        .iter()
        .map(|i| {
            let mut addrs: Vec<String> = i[addresses]
                .as_array()
                .map(|a| a.iter().map(|a| format!("{}/{}", a[address].as_str().unwrap_or("?"), a[prefix])).collect())
                .unwrap_or_default();
            addrs.sort();
            (i[index].as_u64().unwrap_or(0), i[name].as_str().unwrap_or("?").to_owned(), addrs)
        })
        .collect()
}

#[test]
fn status_during_heavy_churn_always_answers_and_then_equals_the_kernel() {
    testns::skip_unless_root!();
    let ns = NetNs::new("churn");
    let mut batch = String::new();
    for i in 0..PAIRS {
        let (a, b) = (format!("c{i}a"), format!("c{i}b"));
        batch.push_str(&format!("link add {a} type veth peer name {b}\n"));
        batch.push_str(&format!("link set {a} up\nlink set {b} up\n"));
        batch.push_str(&format!("addr add 198.18.{}.{}/32 dev {a}\n", i / 250, i % 250 + 1));
        batch.push_str(&format!("addr add 2001:db8:{i:x}::1/64 dev {b}\n"));
    }

    let started = Instant::now();
    let (failures, runs, monitor) = std::thread::scope(|scope| {
        let churn = scope.spawn(|| ns.ip_batch(&batch));
        let (mut failures, mut runs, mut monitor) = (Vec::new(), 0, None);
        // At least a dozen runs, and keep going as long as the churn does.
        while runs < 12 || !churn.is_finished() {
            runs += 1;
            if let Err(e) = status(&ns) {
                failures.push(e);
            }
            // A long-running monitor started in the middle of the churn.
            if runs == 2 {
                monitor = Some(netreach::Monitor::builder().netns(ns.name()).build().map_err(|e| e.to_string()));
            }
        }
        churn.join().expect("churn thread");
        (failures, runs, monitor)
    });
    // The test's own figure for the log (eprintln! is reserved for netreach's escaped output).
    let figure =
        format!("{} of {runs} status runs failed during the churn ({:?})\n", failures.len(), started.elapsed());
    let _ = std::io::Write::write_all(&mut std::io::stderr(), figure.as_bytes());
    assert!(failures.is_empty(), "{} of {runs} runs failed: {:?}", failures.len(), failures.first());

    // Settled: no more links or addresses being added. DAD may still flip flags, which the
    // comparison leaves out (names, indexes and addresses only).
    let kernel = || listing(&ns.ip_json("addr show"), "ifindex", "ifname", "addr_info", "local", "prefixlen");
    let want = kernel();
    assert_eq!(want.len(), 2 * PAIRS + 1, "the churn made every link");
    let got = status(&ns).expect("status after the churn");
    let got = listing(&got["interfaces"], "index", "name", "addresses", "address", "prefix_len");
    let missing: Vec<_> = want.difference(&got).take(3).collect();
    let extra: Vec<_> = got.difference(&want).take(3).collect();
    assert!(missing.is_empty() && extra.is_empty(), "status differs from ip: missing {missing:?}, extra {extra:?}");

    // The monitor started during the churn converges to the same state.
    let monitor = monitor.expect("a monitor was started").expect("the monitor starts during the churn");
    let snapshot = || -> Listing {
        let state = monitor.snapshot();
        let listed = state.interfaces.iter().map(|i| {
            let mut addrs: Vec<String> =
                i.addresses.iter().map(|a| format!("{}/{}", a.address, a.prefix_len)).collect();
            addrs.sort();
            (u64::from(i.index), i.name.clone(), addrs)
        });
        listed.collect()
    };
    testns::wait_until(Duration::from_secs(20), "the monitor's state to equal ip's", || snapshot() == want);
}
