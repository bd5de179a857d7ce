//! `netreach wait` as a replacement for systemd-networkd-wait-online and nm-online: every flag
//! (`--interface NAME[:LEVEL]` repeated, `--any`, `--ignore`, `-4`/`-6`, `--dns`, `--dns
//! --probe`) in namespaces the tests create, reached and timed out, the timeout naming the
//! first unmet condition. Name resolution and the resolver configuration are the test's own
//! (a private mount namespace), so nothing leaves the machine.
#![cfg(target_os = "linux")] // network and mount namespaces

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use testns::http::{client_server, Reply, Server, SERVER_V4};
use testns::NetNs;

const OK_204: &str = "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n";

/// `netreach wait --netns NS ARGS`, with the time it took.
fn wait(ns: &NetNs, args: &[&str]) -> (Output, Duration) {
    let start = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_netreach"))
        .args(["wait", "--netns", ns.name()])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run netreach");
    (out, start.elapsed())
}

/// `netreach wait ARGS` inside `ns` and a private mount namespace whose /etc/resolv.conf,
/// /etc/hosts and /etc/nsswitch.conf are `resolv`, `hosts` and "hosts: files dns".
fn wait_with_resolver(ns: &NetNs, resolv: &str, hosts: &str, args: &[&str]) -> (Output, Duration) {
    let args: Vec<&str> = std::iter::once("wait").chain(args.iter().copied()).collect();
    testns::kit::with_resolver(ns, env!("CARGO_BIN_EXE_netreach"), resolv, hosts, &args)
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Exit 1 within the timeout's bounds, the message naming `first` as what failed.
fn times_out(out: &Output, elapsed: Duration, timeout: Duration, first: &str) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(elapsed >= timeout && elapsed < timeout + Duration::from_secs(2), "took {elapsed:?}: {err}");
    let (_, failed) = err.split_once(": ").unwrap_or_else(|| panic!("{err}"));
    let failed = failed.split_once(": ").map_or("", |(_, f)| f); // after "timed out after 1s waiting for L: "
    assert!(failed.starts_with(first), "want {first:?} first in {err:?}");
}

fn reached(out: &Output, elapsed: Duration) {
    assert_eq!(out.status.code(), Some(0), "{}", stderr(out));
    assert!(elapsed < Duration::from_secs(3), "took {elapsed:?}");
}

/// `va` (192.0.2.10/24, far end up: carrier) and `wa` (198.51.100.10/24, far end down: no
/// carrier); no default route.
fn two_links(tag: &str) -> NetNs {
    let ns = NetNs::new(tag);
    ns.veth("va", "vb");
    ns.ip("addr add 192.0.2.10/24 dev va");
    ns.ip("link add wa type veth peer name wb");
    ns.ip("link set wa up");
    ns.ip("addr add 198.51.100.10/24 dev wa");
    ns
}

const SECOND: Duration = Duration::from_secs(1);

#[test]
fn interfaces_each_at_their_level_or_any_of_them() {
    testns::skip_unless_root!();
    let ns = two_links("wi");
    // va reaches site on its own, though the machine is not online (the default level).
    let (out, t) = wait(&ns, &["--interface", "va:site", "--timeout", "5s"]);
    reached(&out, t);
    // Both listed: wa has no carrier, and the message names it.
    let (out, t) = wait(&ns, &["--interface", "va:site", "--interface", "wa:site", "--timeout", "1s"]);
    times_out(&out, t, SECOND, "interface wa: no carrier");
    // Either suffices with --any.
    let (out, t) = wait(&ns, &["--interface", "wa:site", "--interface", "va:site", "--any", "--timeout", "5s"]);
    reached(&out, t);
    // va's level without a default route: online is not reached through it.
    let (out, t) = wait(&ns, &["--interface", "va", "--timeout", "1s", "--json"]);
    times_out(&out, t, SECOND, "interface va: ipv4: site (the kernel has no route to the internet)");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["reached"], false);
    assert!(v["failed"].as_str().unwrap().starts_with("interface va: ipv4: site"), "{v}");
    // A listed interface that does not exist is named as such.
    let (out, t) = wait(&ns, &["--interface", "va:site", "--interface", "nope0", "--timeout", "1s"]);
    times_out(&out, t, SECOND, "interface nope0: does not exist");
    // Waiting, then the route appears: reached through va.
    let child = Command::new(env!("CARGO_BIN_EXE_netreach"))
        .args(["wait", "--netns", ns.name(), "--interface", "va:online", "--timeout", "20s"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    ns.ip("route add default via 192.0.2.1 dev va");
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn ignored_interfaces_do_not_count() {
    testns::skip_unless_root!();
    let ns = NetNs::new("wg");
    ns.veth("va", "vb");
    ns.ip("addr add 192.0.2.10/24 dev va");
    ns.ip("route add default via 192.0.2.1 dev va");
    let (out, t) = wait(&ns, &["--timeout", "5s"]);
    reached(&out, t);
    // Online only through va: ignoring it leaves nothing.
    let (out, t) = wait(&ns, &["--ignore", "va", "--timeout", "1s"]);
    times_out(&out, t, SECOND, "ipv4: disconnected without va");
    // A second way out, through wa: va can be ignored.
    ns.veth("wa", "wb");
    ns.ip("addr add 198.51.100.10/24 dev wa");
    ns.ip("route add default via 198.51.100.1 dev wa metric 50");
    let (out, t) = wait(&ns, &["--ignore", "va", "--timeout", "5s"]);
    reached(&out, t);
}

#[test]
fn families_with_4_and_6() {
    testns::skip_unless_root!();
    let ns = NetNs::new("w46");
    ns.veth("va", "vb");
    ns.ip("addr add 192.0.2.10/24 dev va");
    ns.ip("route add default via 192.0.2.1 dev va");
    let (out, t) = wait(&ns, &["-4", "--timeout", "5s"]);
    reached(&out, t);
    let (out, t) = wait(&ns, &["-6", "--timeout", "1s"]);
    times_out(&out, t, SECOND, "ipv6: ");
    assert!(!stderr(&out).contains("ipv4"), "only IPv6 counts: {}", stderr(&out));
    // Both: IPv6 is the one missing.
    let (out, t) = wait(&ns, &["-4", "-6", "--timeout", "1s"]);
    times_out(&out, t, SECOND, "ipv6: ");
    assert!(!stderr(&out).contains("ipv4:"), "{}", stderr(&out));
    // An IPv6 way out as well: both reached.
    ns.ip("-6 addr add 2001:db8::10/64 dev va nodad");
    ns.ip("-6 route add default via 2001:db8::1 dev va");
    let (out, t) = wait(&ns, &["-4", "-6", "--timeout", "5s"]);
    reached(&out, t);
}

#[test]
fn dns_needs_a_nameserver_the_routes_reach() {
    testns::skip_unless_root!();
    let ns = NetNs::new("wd");
    ns.veth("va", "vb");
    ns.ip("addr add 192.0.2.10/24 dev va");
    let hosts = "127.0.0.1 localhost\n";
    // No nameserver at all.
    let (out, t) = wait_with_resolver(&ns, "# nothing\n", hosts, &["--level", "site", "--dns", "--timeout", "1s"]);
    times_out(&out, t, SECOND, "dns: no nameserver configured in /etc/resolv.conf");
    // A nameserver beyond a default route that does not exist.
    let resolv = "nameserver 198.51.100.53\n";
    let (out, t) = wait_with_resolver(&ns, resolv, hosts, &["--level", "site", "--dns", "--timeout", "1s"]);
    times_out(&out, t, SECOND, "dns: no route to nameserver 198.51.100.53 (ipv4: site)");
    // The levels come first: waiting for online, the missing route is what is named.
    let (out, t) = wait_with_resolver(&ns, resolv, hosts, &["--dns", "--timeout", "1s"]);
    times_out(&out, t, SECOND, "ipv4: site (the kernel has no route to the internet)");
    // An on-link nameserver is reachable without one.
    let (out, t) =
        wait_with_resolver(&ns, "nameserver 192.0.2.53\n", hosts, &["--level", "site", "--dns", "--timeout", "5s"]);
    reached(&out, t);
    // With the default route, the far nameserver is reachable too.
    ns.ip("route add default via 192.0.2.1 dev va");
    let (out, t) = wait_with_resolver(&ns, resolv, hosts, &["--dns", "--timeout", "5s"]);
    reached(&out, t);
}

#[test]
fn dns_with_the_probe_needs_a_name_that_resolves() {
    testns::skip_unless_root!();
    let (client, server) = client_server("wn");
    let ok = Server::start(&server, &format!("{SERVER_V4}:8080"), Reply::text(OK_204));
    let hosts = format!("127.0.0.1 localhost\n{SERVER_V4} netreach-probe.test\n");
    // The nameserver is the server's address, where nothing listens on port 53: refused.
    let resolv = format!("nameserver {SERVER_V4}\noptions attempts:1\n");
    let args = ["--dns", "--probe", "--url", "http://netreach-probe.test:8080/", "--timeout", "5s"];
    let (out, t) = wait_with_resolver(&client, &resolv, &hosts, &args);
    reached(&out, t);
    assert!(ok.requests() >= 1);
    // A name that does not resolve: site is reached, the name is what fails.
    let args =
        ["--level", "site", "--dns", "--probe", "--url", "http://netreach-probe.invalid:8080/", "--timeout", "2s"];
    let (out, t) = wait_with_resolver(&client, &resolv, &hosts, &args);
    times_out(&out, t, 2 * SECOND, "dns: no name resolved yet (probe: ");
    assert!(stderr(&out).contains("netreach-probe.invalid"), "{}", stderr(&out));
    // An address as the probe's URL resolves no name: refused as a bad command line.
    let (out, _) = wait(&client, &["--dns", "--probe", "--url", &format!("http://{SERVER_V4}:8080/")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--dns with --probe needs a name to resolve"), "{}", stderr(&out));
}

#[test]
fn bad_flags_exit_2_and_the_default_timeout_is_30s() {
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_netreach")).arg("wait").args(args).stdin(Stdio::null()).output().unwrap()
    };
    for (args, says) in [
        (&["--interface", "eth0:up"][..], "expected"),
        (&["--interface", ":site"][..], "names no interface"),
        (&["--any"][..], "--interface"),
        (&["--ignore", "eth0", "--interface", "eth1"][..], "cannot be used with"),
        (&["--timeout", "forever"][..], "forever"),
    ] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(says), "{args:?}: {}", stderr(&out));
    }
    let help = String::from_utf8(run(&["--help"]).stdout).unwrap();
    assert!(help.contains("[default: 30s]"), "{help}");
}
