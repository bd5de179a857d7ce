//! The resolver configuration followed by a running `netreach watch`, in a private mount
//! namespace whose /etc and /run are the test's own (tmpfs): the file replaced by rename,
//! edited in place, its symlink retargeted to systemd-resolved's stub, resolved's upstream
//! servers changing. The test reaches those files through /proc/PID/root, so nothing of the
//! host's own configuration is read or written. At the end a fresh `status` in the same
//! namespaces must say what the long-running `watch` says.
#![cfg(target_os = "linux")] // mount and network namespaces

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;
use testns::kit::{Lines, TIMEOUT};
use testns::NetNs;

/// `netreach watch --json` in `ns`, with a private /etc and /run holding `resolv` as
/// /etc/resolv.conf.
fn watch_in_private_root(ns: &NetNs, resolv: &str) -> (Lines, PathBuf) {
    let script = r#"set -e
mount -t tmpfs netreach-etc /etc
mount -t tmpfs netreach-run /run
mkdir -p /run/systemd/resolve
printf '%s' "$1" > /etc/resolv.conf
bin="$2"; shift 2
exec "$bin" "$@""#;
    let mut command = ns.command("unshare");
    command.args(["--mount", "--propagation", "private", "sh", "-c", script, "sh", resolv]);
    command.args([env!("CARGO_BIN_EXE_netreach"), "watch", "--json"]).stderr(Stdio::inherit());
    let mut lines = Lines::spawn(&mut command);
    // `ip netns exec`, unshare and sh all exec: the pid is netreach's once the baseline is out.
    let baseline = next_json(&lines);
    assert_eq!(baseline["type"], "baseline", "{baseline}");
    let root = PathBuf::from(format!("/proc/{}/root", lines.child().id()));
    (lines, root)
}

fn next_json(lines: &Lines) -> Value {
    let line = lines.next(TIMEOUT).expect("a line from watch in time");
    serde_json::from_slice(&line).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&line)))
}

/// The next `dns_changed` event's `after`.
fn next_dns(lines: &Lines) -> Value {
    loop {
        let event = next_json(lines);
        if event["type"] == "dns_changed" {
            return event["after"].clone();
        }
    }
}

fn servers(dns: &Value) -> Vec<String> {
    let list = dns["nameservers"].as_array().unwrap_or_else(|| panic!("nameservers in {dns}"));
    list.iter().map(|n| n["address"].as_str().unwrap().to_owned()).collect()
}

fn replace(root: &Path, rel: &str, text: &str) {
    let tmp = root.join(format!("{rel}.new"));
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(tmp, root.join(rel)).unwrap();
}

#[test]
fn watch_follows_the_resolver_configuration_and_equals_a_fresh_status() {
    testns::skip_unless_root!();
    let ns = NetNs::new("cli-dns");
    let (mut lines, root) = watch_in_private_root(&ns, "nameserver 192.0.2.53\nsearch a.example\n");

    // Replaced by rename (how DHCP clients and resolvconf write it).
    replace(&root, "etc/resolv.conf", "nameserver 198.51.100.53\n");
    let dns = next_dns(&lines);
    assert_eq!(servers(&dns), ["198.51.100.53"]);
    assert_eq!(dns["search"], serde_json::json!([]));
    assert_eq!(dns["origin"]["file"], "/etc/resolv.conf");

    // Edited in place.
    std::fs::write(root.join("etc/resolv.conf"), "nameserver 203.0.113.53\nsearch b.example\n").unwrap();
    let dns = next_dns(&lines);
    assert_eq!((servers(&dns), dns["search"][0].as_str()), (vec!["203.0.113.53".to_owned()], Some("b.example")));

    // Becomes a symlink to systemd-resolved's stub file; the upstream servers are resolved's.
    std::fs::write(root.join("run/systemd/resolve/resolv.conf"), "nameserver 198.51.100.1\n").unwrap();
    std::fs::write(root.join("run/systemd/resolve/stub-resolv.conf"), "nameserver 127.0.0.53\n").unwrap();
    symlink("/run/systemd/resolve/stub-resolv.conf", root.join("etc/resolv.conf.link")).unwrap();
    std::fs::rename(root.join("etc/resolv.conf.link"), root.join("etc/resolv.conf")).unwrap();
    let dns = next_dns(&lines);
    assert_eq!(servers(&dns), ["198.51.100.1"]);
    assert_eq!(dns["origin"]["manager"], "systemd-resolved");
    assert_eq!(dns["origin"]["stub"], "127.0.0.53");
    assert_eq!(dns["origin"]["target"], "/run/systemd/resolve/stub-resolv.conf");

    // resolved switches upstream servers.
    replace(&root, "run/systemd/resolve/resolv.conf", "nameserver 2001:db8::53\nnameserver 198.51.100.2\n");
    let watched = next_dns(&lines);
    assert_eq!(servers(&watched), ["2001:db8::53", "198.51.100.2"]);

    // A fresh `status` in the same network and mount namespaces says the same.
    let pid = lines.child().id().to_string();
    let out = Command::new("nsenter")
        .args(["--target", &pid, "--mount", "--net", env!("CARGO_BIN_EXE_netreach"), "status", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["dns"], watched, "watch and a fresh status agree");
}
