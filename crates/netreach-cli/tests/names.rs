//! `netreach status` with an interface name and an address label that are not UTF-8.
#![cfg(target_os = "linux")] // network namespaces

use std::process::Command;

use serde_json::{json, Value};
use testns::NetNs;

#[test]
fn status_keeps_a_link_and_a_label_that_are_not_utf8() {
    testns::skip_unless_root!();
    let ns = NetNs::new("cli-names");
    ns.ip_bytes(&[b"link", b"add", b"w\xff", b"type", b"veth", b"peer", b"name", b"wb"]);
    ns.ip_bytes(&[b"link", b"set", b"w\xff", b"up"]);
    ns.ip_bytes(&[b"link", b"set", b"wb", b"up"]);
    ns.ip_bytes(&[b"addr", b"add", b"192.0.2.10/24", b"dev", b"w\xff", b"label", b"w\xff:\xe9"]);
    ns.ip_bytes(&[b"route", b"add", b"default", b"via", b"192.0.2.1"]);

    let out =
        Command::new(env!("CARGO_BIN_EXE_netreach")).args(["status", "--json", "--netns", ns.name()]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).expect("status --json is JSON");
    assert_eq!((&v["reachability"], &v["ipv4"]["reachability"]), (&json!("online"), &json!("online")));
    let interfaces = v["interfaces"].as_array().unwrap();
    let link = interfaces.iter().find(|i| i["name"] == "w\\xff").expect("w\\xff listed");
    assert_eq!(link["name_bytes"], json!([b'w', 0xff]));
    assert_eq!(link["addresses"][0]["address"], "192.0.2.10");
    assert_eq!(v["default_routes"][0]["interface"], "w\\xff");
    // UTF-8 names are as before: no `name_bytes`.
    let peer = interfaces.iter().find(|i| i["name"] == "wb").expect("wb listed");
    assert!(peer.get("name_bytes").is_none(), "{peer}");

    let out = Command::new(env!("CARGO_BIN_EXE_netreach")).args(["status", "--netns", ns.name()]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).expect("human output is UTF-8");
    assert!(text.contains("w\\xff") && text.contains("192.0.2.10/24"), "{text}");
}
