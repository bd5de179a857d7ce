//! The `netreach` binary on gateway liveness (issue 13, item 1): `status` says which gateway
//! does not answer, `status --probe` has the kernel re-verify it, and a long-running
//! `watch --json` folds to what a fresh `status --json` says after the gateway vanishes and
//! returns. Ground truth: `ip neigh` and a real connect() through the gateway.
#![cfg(target_os = "linux")] // network namespaces

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use testns::kit::{assert_json_keys_unique, Lines, TIMEOUT};
use testns::NetNs;

fn netreach() -> Command {
    Command::new(env!("CARGO_BIN_EXE_netreach"))
}

/// The client and the router that plays its gateway ([`testns::gateway`]); the IPv4 listener
/// behind it (203.0.113.1).
fn world(tag: &str, gateway: bool) -> (NetNs, NetNs, SocketAddr, TcpListener) {
    let testns::gateway::World { client, router, listeners } = testns::gateway::world(tag, gateway);
    let listener = listeners.into_iter().next().expect("the IPv4 listener");
    let to = listener.local_addr().unwrap();
    (client, router, to, listener)
}

fn connects(client: &NetNs, to: SocketAddr) -> bool {
    client.run_inside(|| TcpStream::connect_timeout(&to, Duration::from_millis(700)).is_ok())
}

fn status(ns: &NetNs, args: &[&str]) -> String {
    let out = netreach().args(["status", "--netns", ns.name()]).args(args).output().expect("run netreach status");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("UTF-8")
}

fn kernel_state(ns: &NetNs, gateway: &str) -> String {
    let v = ns.ip_json(&format!("neigh show {gateway} dev va"));
    v[0]["state"][0].as_str().unwrap_or("none").to_owned()
}

/// Levels and reasons of both families, the time a failure began aside: a live monitor keeps
/// the time of the first failure, a fresh reading the kernel's latest attempt (the kernel
/// retries with traffic), and both read it as an age in clock ticks.
fn reading(levels: [Value; 2], mut reasons: [Value; 2]) -> [Value; 4] {
    for reason in &mut reasons {
        if let Some(r) = reason.as_object_mut() {
            r.remove("since");
        }
    }
    let [a, b] = levels;
    let [c, d] = reasons;
    [a, b, c, d]
}

fn of_state(state: &Value) -> [Value; 4] {
    reading(
        [state["ipv4"]["reachability"].clone(), state["ipv6"]["reachability"].clone()],
        [state["reasons"]["ipv4"].clone(), state["reasons"]["ipv6"].clone()],
    )
}

#[test]
fn status_probe_has_the_kernel_re_verify_an_absent_gateway_and_says_which() {
    testns::skip_unless_root!();
    let (client, _router, _to, _listener) = world("gwcli", false);
    // Without --probe nothing is sent: no entry, no evidence, online.
    let plain: Value = serde_json::from_str(&status(&client, &["--json"])).unwrap();
    assert_eq!(plain["ipv4"]["reachability"], "online");
    assert_eq!(plain["gateways"][0]["state"], "none", "{plain}");
    assert_eq!(kernel_state(&client, "192.0.2.1"), "none");
    // With it the kernel resolves the gateway afresh, and fails. (The probe's own URL is
    // behind the same dead gateway: its verdict fails too; the kernel's reason is the point.)
    let args = ["--json", "--probe", "--url", "http://203.0.113.1:9/", "--probe-timeout", "1s"];
    let json = status(&client, &args);
    assert_json_keys_unique(&json);
    let probed: Value = serde_json::from_str(&json).unwrap();
    // The probe's own connection retries the gateway after the re-verification (incomplete
    // again, then failed): the kernel ends where the re-verification did.
    testns::wait_until(TIMEOUT, "the kernel's entry FAILED", || kernel_state(&client, "192.0.2.1") == "FAILED");
    let why = &probed["reasons"]["ipv4"];
    assert_eq!(why["code"], "gateway_unreachable", "{probed}");
    assert_eq!(why["route"]["gateway"], "192.0.2.1");
    assert!(why["since"].as_u64().is_some(), "{why}");
    // Failed, or retried by the probe's connection after failing: unanswered either way.
    let entry = &probed["gateways"][0];
    assert!(["failed", "incomplete"].contains(&entry["state"].as_str().unwrap_or_default()), "{entry}");
    assert!(entry["unanswered_since"].as_u64().is_some(), "{entry}");
    // A fresh status now reads the failed entry and says it in one sentence.
    let text = status(&client, &[]);
    let line = text.lines().find(|l| l.starts_with("  ipv4: site (kernel)")).unwrap_or_else(|| panic!("{text}"));
    assert!(line.contains("— the kernel routes 0.0.0.0/0 via 192.0.2.1 dev va, but gateway 192.0.2.1 does not answer ARP on va since "), "{line}");
    assert!(line.ends_with(" UTC"), "{line}");
}

#[test]
fn watch_folds_to_a_fresh_status_as_the_gateway_vanishes_and_returns() {
    testns::skip_unless_root!();
    let (client, router, to, _listener) = world("gwfold", true);
    assert!(connects(&client, to));
    let watch = Lines::spawn(netreach().args(["watch", "--json", "--netns", client.name()]).stderr(Stdio::null()));
    let next = |left: Duration| -> Option<Value> {
        let line = watch.next(left).ok()?;
        Some(serde_json::from_slice(&line).expect("a JSON line"))
    };
    let baseline = next(TIMEOUT).expect("baseline");
    assert_eq!(baseline["type"], "baseline");
    let mut levels =
        [baseline["state"]["ipv4"]["reachability"].clone(), baseline["state"]["ipv6"]["reachability"].clone()];
    let mut reasons = [baseline["state"]["reasons"]["ipv4"].clone(), baseline["state"]["reasons"]["ipv6"].clone()];
    assert_eq!(levels, [Value::from("online"), Value::from("online")]);
    let mut seen_failed = false;
    for (step, gateway) in [("vanishes", false), ("returns", true)] {
        testns::gateway::answer(&router, gateway);
        // Traffic makes the kernel find out; the monitor only listens.
        assert_eq!(connects(&client, to), gateway, "{step}");
        let gateway_v6: std::net::SocketAddr = "[2001:db8::1]:9".parse().unwrap();
        let _ = client.run_inside(|| TcpStream::connect_timeout(&gateway_v6, Duration::from_millis(700)));
        let want_entry = if gateway { "REACHABLE" } else { "FAILED" };
        testns::wait_until(TIMEOUT, &format!("the kernel's entries {want_entry}"), || {
            ["192.0.2.1", "2001:db8::1"].iter().all(|g| kernel_state(&client, g) == want_entry)
        });
        let fresh: Value = serde_json::from_str(&status(&client, &["--json"])).unwrap();
        let want = of_state(&fresh);
        assert_eq!(want[0], if gateway { "online" } else { "site" }, "{step}: {fresh}");
        let deadline = Instant::now() + TIMEOUT;
        while reading(levels.clone(), reasons.clone()) != want {
            let left = deadline.saturating_duration_since(Instant::now());
            let Some(event) = next(left) else {
                panic!(
                    "after the gateway {step} the folded stream is {levels:?} {reasons:#?}, a fresh status {want:#?}"
                )
            };
            assert_json_keys_unique(&event.to_string());
            let slot = match event["family"].as_str() {
                Some("ipv4") => 0,
                Some("ipv6") => 1,
                _ => continue,
            };
            match event["type"].as_str() {
                Some("reachability_changed") => {
                    levels[slot] = event["new"].clone();
                    reasons[slot] = event.get("reason").cloned().unwrap_or(Value::Null);
                    seen_failed |= reasons[slot]["code"] == "gateway_unreachable";
                }
                Some("reason_changed") => reasons[slot] = event["after"].clone(),
                _ => {}
            }
        }
    }
    assert!(seen_failed, "the stream said why the family dropped");
}
