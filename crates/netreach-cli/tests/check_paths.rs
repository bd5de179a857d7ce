//! `netreach check` judging a path as the kernel judges a socket: `--mark`, `--uid`,
//! `fe80::1%LINK` scope ids, same-host paths; ground truth `ip route get` in the namespace.
#![cfg(target_os = "linux")] // network namespaces

use std::process::Command;

use serde_json::Value;
use testns::{uplinks, NetNs};

fn netreach() -> Command {
    Command::new(env!("CARGO_BIN_EXE_netreach"))
}

/// `netreach check --netns NS ARGS`: exit code, stdout, stderr.
fn check(ns: &NetNs, args: &[&str]) -> (Option<i32>, String, String) {
    let out = netreach().args(["check", "--netns", ns.name()]).args(args).output().unwrap();
    let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
    (out.status.code(), text(out.stdout), text(out.stderr))
}

/// The interface `ip route get ARGS` names (`dev X`), or `lo` for a local route.
fn kernel_dev(ns: &NetNs, args: &str) -> String {
    let out = ns.ip(&format!("route get {args}"));
    if out.starts_with("local ") {
        return "lo".into();
    }
    let mut words = out.split_whitespace();
    words.find(|w| *w == "dev").expect("a dev in the answer");
    words.next().unwrap().to_owned()
}

#[test]
fn check_mark_and_uid_judge_as_policy_routing_does() {
    testns::skip_unless_root!();
    let ns = uplinks("chkmark");
    ns.ip("route add 203.0.113.0/24 via 198.51.100.1 dev wa table 100");
    ns.ip("rule add fwmark 7 table 100");
    ns.ip("rule add uidrange 1000-1000 table 100");
    for (options, kernel) in
        [(&["--mark", "7"][..], "mark 7"), (&["--mark", "0x7"], "mark 7"), (&["--uid", "1000"], "uid 1000")]
    {
        let args = [&["--json"], options, &["198.51.100.10", "203.0.113.5"]].concat();
        let (code, out, err) = check(&ns, &args);
        assert_eq!(code, Some(0), "{args:?}: {out}{err}");
        testns::kit::assert_json_keys_unique(out.trim_end());
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!((v["reachable"].as_bool(), v["interface"].as_str()), (Some(true), Some("wa")));
        assert_eq!(kernel_dev(&ns, &format!("203.0.113.5 from 198.51.100.10 {kernel}")), "wa");
        let (key, value) = kernel.split_once(' ').unwrap();
        assert_eq!(v[key].as_u64(), Some(value.parse().unwrap()), "{out}");
    }
    // Without them, the main table: out of va, which does not own 198.51.100.10.
    assert_eq!(kernel_dev(&ns, "203.0.113.5 from 198.51.100.10"), "va");
    let (code, out, _) = check(&ns, &["--json", "198.51.100.10", "203.0.113.5"]);
    assert_eq!(code, Some(1));
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (v["reason"].as_str(), v["actual"].as_str(), v.get("mark")),
        (Some("route_via_other_interface"), Some("va"), None)
    );
    let (code, out, _) = check(&ns, &["--mark", "7", "198.51.100.10", "203.0.113.5"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("198.51.100.10 -> 203.0.113.5 (mark 7): reachable via wa"), "{out}");
    for bad in ["bogus", "7x", "0x", "4294967296"] {
        let (code, _, err) = check(&ns, &["--mark", bad, "198.51.100.10", "203.0.113.5"]);
        assert_eq!(code, Some(2), "--mark {bad}: {err}");
        assert!(err.contains("--mark") && err.contains("a mark is a 32-bit number"), "{err}");
    }
}

#[test]
fn check_same_host_path_is_reachable() {
    testns::skip_unless_root!();
    let ns = uplinks("chkhost");
    assert_eq!(kernel_dev(&ns, "198.51.100.10 from 192.0.2.10"), "lo");
    let (code, out, err) = check(&ns, &["192.0.2.10", "198.51.100.10"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("192.0.2.10 -> 198.51.100.10: reachable via va"), "{out}");
}

#[test]
fn check_takes_link_local_scopes_and_refuses_bad_ones() {
    testns::skip_unless_root!();
    let ns = NetNs::new("chkscope");
    ns.veth("va", "vb");
    ns.veth("wa", "wb");
    ns.ip("addr add fe80::10/64 dev va nodad");
    ns.ip("addr add fe80::10/64 dev wa nodad");
    ns.ip("addr add fe80::20/64 dev wa nodad");
    ns.ip("addr add 192.0.2.10/24 dev va");
    let wa = ns.index("wa").to_string();
    for (local, remote, link) in [
        ("fe80::10%va", "fe80::1", "va"),
        ("fe80::10", "fe80::1%wa", "wa"),
        ("fe80::10%wa", "fe80::1%wa", "wa"),
        (&format!("fe80::10%{wa}")[..], "fe80::1", "wa"),
        ("fe80::20", "fe80::1", "wa"),
    ] {
        let (code, out, err) = check(&ns, &["--json", local, remote]);
        assert_eq!(code, Some(0), "{local} {remote}: {out}{err}");
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["interface"].as_str(), Some(link), "{local} {remote}");
        assert_eq!(kernel_dev(&ns, &format!("fe80::1 from fe80::10 oif {link}")), link);
    }
    // wb loses its carrier: the path on wa says so, the one on va does not.
    ns.ip("link set wb down");
    let (code, out, _) = check(&ns, &["--json", "fe80::10%wa", "fe80::1"]);
    assert_eq!((code, serde_json::from_str::<Value>(&out).unwrap()["reason"].as_str()), (Some(1), Some("no_carrier")));
    assert_eq!(check(&ns, &["fe80::10%va", "fe80::1"]).0, Some(0));

    for (local, remote, want) in [
        ("fe80::10", "fe80::1", "on several links (va, wa)"),
        ("fe80::10%va", "fe80::1%wa", "different links"),
        ("fe80::10%nosuch", "fe80::1", "no interface is named \"nosuch\""),
        ("fe80::10%999", "fe80::1", "index 999, which does not exist"),
        ("fe80::20%va", "fe80::1", "no interface owns the local address fe80::20 on link va"),
        ("192.0.2.10%va", "192.0.2.1", "only IPv6 link-local addresses"),
        ("192.0.2.10", "fe80::1%", "nothing after %"),
        ("fe80::10%va", "fe80::1%%", "no interface is named \"%\""),
    ] {
        let (code, out, err) = check(&ns, &[local, remote]);
        assert_eq!(code, Some(2), "{local} {remote}: {out}{err}");
        assert!(err.contains(want), "{local} {remote}: {err}");
    }
}
