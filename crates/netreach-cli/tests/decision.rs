//! The `netreach` binary saying why (issue 12, item 3), from the kernel's own route decision,
//! and a long-running `watch --json` folding to what a fresh `status --json` says after
//! changes the kernel applies silently (ECMP members lost and restored).
#![cfg(target_os = "linux")] // network namespaces

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use testns::kit::{assert_json_keys_unique, Lines, TIMEOUT};
use testns::NetNs;

fn netreach() -> Command {
    Command::new(env!("CARGO_BIN_EXE_netreach"))
}

fn status(ns: &NetNs, json: bool) -> String {
    let mut command = netreach();
    command.args(["status", "--netns", ns.name()]);
    if json {
        command.arg("--json");
    }
    let out = command.output().expect("run netreach status");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("UTF-8")
}

#[test]
fn status_explains_a_dead_better_default_in_one_sentence_with_the_linkdown_hint() {
    testns::skip_unless_root!();
    let ns = testns::two_links("why");
    ns.ip("route add default via 192.0.2.1 dev va metric 100");
    ns.ip("route add default via 198.51.100.1 dev wa metric 200");
    ns.ip("link set vb down"); // the far end: va loses carrier
    let text = status(&ns, false);
    let want = "  ipv4: site (kernel) — the kernel routes 0.0.0.0/0 via 192.0.2.1 dev va, which has no carrier \
                (a default via wa exists at metric 200; set net.ipv4.conf.va.ignore_routes_with_linkdown=1 to fail over)";
    assert!(text.lines().any(|l| l == want), "{text}");
    // The kernel agrees: it still routes through va.
    let kernel = ns.ip_json("route get 64.0.0.1");
    assert_eq!(kernel[0]["dev"], "va");

    let json = status(&ns, true);
    assert_json_keys_unique(&json);
    let v: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["ipv4"]["reachability"], "site", "existing keys keep their meaning");
    let why = &v["reasons"]["ipv4"];
    assert_eq!((why["code"].as_str(), why["route"]["interface"].as_str()), (Some("no_carrier"), Some("va")));
    assert_eq!((why["fallback"]["interface"].as_str(), why["fallback"]["metric"].as_u64()), (Some("wa"), Some(200)));
    assert_eq!(v["reasons"]["ipv6"]["code"], "no_route");
}

/// ECMP with one member's link without carrier: online, and one line that says some
/// connections will time out and which knob makes the kernel fail over; JSON names the member
/// and the diagnosis passes the link layer with that finding.
#[test]
fn status_explains_an_ecmp_member_without_carrier_in_one_sentence() {
    testns::skip_unless_root!();
    let ns = testns::two_links("ecmpwhy");
    ns.ip("route add default nexthop via 192.0.2.1 dev va nexthop via 198.51.100.1 dev wa");
    ns.ip("link set vb down"); // the far end: va loses carrier, the kernel keeps its member
    testns::wait_until(TIMEOUT, "va without carrier", || {
        !ns.ip_json("link show dev va")[0]["flags"].as_array().unwrap().iter().any(|f| f == "LOWER_UP")
    });
    let text = status(&ns, false);
    let want = "  ipv4: online (kernel) — the kernel spreads flows over va and wa; va has no carrier, so some \
                connections will time out (set net.ipv4.conf.va.ignore_routes_with_linkdown=1 to fail over)";
    assert!(text.lines().any(|l| l == want), "{text}");
    let note =
        "    link passed: wa is up with carrier, but the kernel also sends some flows through va, which has no carrier";
    assert!(text.lines().any(|l| l == note), "{text}");
    // The kernel agrees: it still uses va's member, flagged linkdown, not dead.
    let matched = ns.ip_json("route get fibmatch 64.0.0.1");
    let va = matched[0]["nexthops"].as_array().unwrap().iter().find(|h| h["dev"] == "va").cloned().unwrap();
    assert_eq!(va["flags"], serde_json::json!(["linkdown"]));

    let json = status(&ns, true);
    assert_json_keys_unique(&json);
    let v: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["ipv4"]["reachability"], "online");
    let why = &v["reasons"]["ipv4"];
    assert_eq!((why["code"].as_str(), why["route"]["interface"].as_str()), (Some("partly_no_carrier"), Some("wa")));
    assert_eq!(why["without_carrier"], serde_json::json!(["va"]));
    assert_eq!(why["route"].get("source"), Some(&Value::Null), "the kernel picks a source per member");
    let members: Vec<(&str, bool, bool)> = why["route"]["nexthops"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h["interface"].as_str().unwrap(), h["linkdown"].as_bool().unwrap(), h["dead"].as_bool().unwrap()))
        .collect();
    assert_eq!(members, [("va", true, false), ("wa", false, false)]);
    let link = &v["diagnosis"]["ipv4"]["layers"][0];
    assert_eq!(link["status"], "passed");
    assert_eq!(
        link["finding"],
        serde_json::json!({"code": "partly_no_carrier", "interface": "wa", "without_carrier": ["va"]})
    );

    // Both members back: every one named, whichever the lookups hashed to.
    ns.ip("link set vb up");
    testns::wait_until(TIMEOUT, "va with carrier", || {
        ns.ip_json("link show dev va")[0]["flags"].as_array().unwrap().iter().any(|f| f == "LOWER_UP")
    });
    let text = status(&ns, false);
    let want = "  ipv4: online (kernel) — the kernel spreads flows for 0.0.0.0/0 over va (via 192.0.2.1) and wa (via 198.51.100.1)";
    assert!(text.lines().any(|l| l == want), "{text}");
}

#[test]
fn wait_says_why_at_its_timeout() {
    testns::skip_unless_root!();
    let ns = testns::two_links("waitwhy");
    ns.ip("route add default via 192.0.2.1");
    ns.ip("route add blackhole default metric 0 table 7");
    ns.ip("rule add lookup 7 pref 10");
    let out = netreach()
        .args(["wait", "--level", "online", "--timeout", "300ms", "--netns", ns.name()])
        .output()
        .expect("run netreach wait");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("ipv4: site (the kernel rejects traffic to the internet (a blackhole route or rule))"),
        "{err}"
    );
    assert!(err.contains("ipv6: site (the kernel has no route to the internet)"), "{err}");
}

/// Levels and reasons of both families, as `status --json` and the folded stream hold them.
#[derive(Debug, Clone, PartialEq)]
struct Reading {
    levels: [Value; 2],
    reasons: [Value; 2],
}

fn reading(state: &Value) -> Reading {
    Reading {
        levels: [state["ipv4"]["reachability"].clone(), state["ipv6"]["reachability"].clone()],
        reasons: [state["reasons"]["ipv4"].clone(), state["reasons"]["ipv6"].clone()],
    }
}

/// Folds one `watch --json` event into `r`.
fn fold(r: &mut Reading, event: &Value) {
    let slot = match event["family"].as_str() {
        Some("ipv4") => 0,
        Some("ipv6") => 1,
        _ => return, // overall, or an event without a family
    };
    match event["type"].as_str() {
        Some("reachability_changed") => {
            r.levels[slot] = event["new"].clone();
            r.reasons[slot] = event.get("reason").cloned().unwrap_or(Value::Null);
        }
        Some("reason_changed") => r.reasons[slot] = event["after"].clone(),
        _ => {}
    }
}

#[test]
fn ecmp_members_lost_and_restored_fold_to_a_fresh_status() {
    testns::skip_unless_root!();
    let ns = testns::two_links("ecmpcli");
    ns.ip("route add default nexthop via 192.0.2.1 dev va nexthop via 198.51.100.1 dev wa");
    ns.ip("-6 route add default nexthop via 2001:db8::1 dev va nexthop via 2001:db8:2::1 dev wa");
    let watch = Lines::spawn(netreach().args(["watch", "--json", "--netns", ns.name()]).stderr(Stdio::null()));
    let next = |left: Duration| -> Option<Value> {
        let line = watch.next(left).ok()?;
        Some(serde_json::from_slice(&line).expect("a JSON line"))
    };
    let baseline = next(TIMEOUT).expect("baseline");
    assert_eq!(baseline["type"], "baseline");
    let mut folded = reading(&baseline["state"]);
    assert_eq!(folded.levels, [Value::from("online"), Value::from("online")]);
    let steps = ["va down", "va up", "wa down", "wa up", "vb down", "vb up", "wb down", "wb up", "va down"];
    for step in steps {
        ns.ip(&format!("link set {step}"));
        let fresh: Value = serde_json::from_str(&status(&ns, true)).unwrap();
        let want = reading(&fresh);
        let deadline = Instant::now() + TIMEOUT;
        while folded != want {
            let left = deadline.saturating_duration_since(Instant::now());
            let Some(event) = next(left) else {
                panic!("after `link set {step}` the folded stream is {folded:#?}, a fresh status {want:#?}")
            };
            assert_json_keys_unique(&event.to_string());
            fold(&mut folded, &event);
        }
    }
}
