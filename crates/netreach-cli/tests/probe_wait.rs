//! `netreach probe`, `netreach wait` and `--probe` against servers in namespaces the tests create.
//! Name resolution happens only inside a mount namespace whose /etc/resolv.conf, /etc/hosts and
//! /etc/nsswitch.conf are the test's own, so no query can leave the machine.
#![cfg(target_os = "linux")] // network namespaces

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;
use testns::http::{client_server, Reply, Server, SERVER_V4};
use testns::{wait_until, NetNs};

const OK_204: &str = "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n";
const PORTAL: &str = "HTTP/1.1 302 Found\r\nLocation: http://portal.test/login\r\nContent-Length: 0\r\n\r\n";

fn netreach() -> Command {
    Command::new(env!("CARGO_BIN_EXE_netreach"))
}

fn run(args: &[&str]) -> (Output, Duration) {
    let start = Instant::now();
    let out = netreach().args(args).stdin(Stdio::null()).output().expect("run netreach");
    (out, start.elapsed())
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn probe_prints_verdicts_timings_and_portal_urls() {
    testns::skip_unless_root!();
    let (client, server) = client_server("cp");
    let ok = Server::start(&server, &format!("{SERVER_V4}:8080"), Reply::text(OK_204));
    let portal = Server::start(&server, &format!("{SERVER_V4}:8081"), Reply::text(PORTAL));
    let (out, _) = run(&["probe", "--netns", client.name(), "--url", &ok.url("/"), "--family", "4", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v[0]["family"], "ipv4");
    assert_eq!(v[0]["verdict"], "online");
    assert_eq!(v[0]["address"], format!("{SERVER_V4}:8080"));
    assert!(v[0]["timings"]["connect_ms"].as_f64().is_some() && v[0]["timings"]["total_ms"].as_f64().is_some(), "{v}");

    let (out, _) = run(&["probe", "--netns", client.name(), "--url", &portal.url("/"), "--family", "4"]);
    assert_eq!(out.status.code(), Some(1));
    let line = text(&out.stdout);
    assert!(line.starts_with("ipv4: captive portal (http://portal.test/login) via "), "{line}");
    assert!(line.contains("connect ") && line.contains("total "), "{line}");
}

#[test]
fn probe_rejects_bad_input_with_2() {
    testns::skip_unless_root!();
    for (args, why) in [
        (vec!["probe", "--url", "https://example.test/"], "only plain http"),
        (vec!["probe", "--url", "http://192.0.2.1:0/"], "1-65535"),
        (vec!["probe", "--family", "5", "--url", "http://192.0.2.1/"], "possible values"),
        (vec!["probe", "--netns", "nmt-no-such-ns", "--url", "http://192.0.2.1/"], "no network namespace"),
        (vec!["wait", "--level", "unknown"], "online, site or local"),
        (vec!["wait", "--timeout", "soon"], "soon"),
    ] {
        let (out, _) = run(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out.stderr));
        assert!(text(&out.stderr).contains(why), "{args:?}: {}", text(&out.stderr));
    }
}

/// Runs `netreach ARGS` inside `ns` and a private mount namespace where the resolver files are
/// the given texts.
fn in_resolver_sandbox(ns: &NetNs, resolv: &str, hosts: &str, args: &[&str]) -> (Output, Duration) {
    testns::kit::with_resolver(ns, env!("CARGO_BIN_EXE_netreach"), resolv, hosts, args)
}

#[test]
fn name_resolution_uses_only_the_test_resolver() {
    testns::skip_unless_root!();
    let (client, server) = client_server("cd");
    let ok = Server::start(&server, &format!("{SERVER_V4}:8080"), Reply::text(OK_204));
    let hosts = format!("127.0.0.1 localhost\n{SERVER_V4} netreach-probe.test\n");
    // The nameserver is the server namespace's address, where nothing listens on port 53.
    let resolv = format!("nameserver {SERVER_V4}\noptions attempts:1\n");
    let json = |out: &Output| serde_json::from_slice::<Value>(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:?}"));

    // A name from the test's /etc/hosts resolves and is probed.
    let args = ["probe", "--url", "http://netreach-probe.test:8080/", "--family", "4", "--json"];
    let (out, _) = in_resolver_sandbox(&client, &resolv, &hosts, &args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v = json(&out);
    assert_eq!(v[0]["verdict"], "online");
    assert!(v[0]["timings"]["dns_ms"].as_f64().is_some(), "{v}");
    assert_eq!(ok.requests(), 1);

    // An unknown name goes to the test's nameserver, which refuses: unresolved (a name
    // resolution failure, told apart from HTTP failures).
    let args = ["probe", "--url", "http://netreach-probe.invalid/", "--family", "4", "--json"];
    let (out, _) = in_resolver_sandbox(&client, &resolv, &hosts, &args);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let v = json(&out);
    assert_eq!(v[0]["verdict"], "unresolved");
    assert!(v[0]["reason"].as_str().unwrap().contains("name resolution of netreach-probe.invalid failed"), "{v}");

    // A nameserver that swallows queries: the probe's own bound ends it.
    let silent_dns = server.run_inside(|| std::net::UdpSocket::bind((SERVER_V4, 53)).unwrap());
    let resolv = format!("nameserver {SERVER_V4}\noptions timeout:5 attempts:2\n");
    let args = ["probe", "--url", "http://netreach-probe.invalid/", "--family", "4", "--probe-timeout", "1s", "--json"];
    let (out, elapsed) = in_resolver_sandbox(&client, &resolv, &hosts, &args);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let v = json(&out);
    assert!(v[0]["reason"].as_str().unwrap().contains("timed out after 1s"), "{v}");
    assert!(elapsed < Duration::from_secs(4), "took {elapsed:?}");
    let mut query = [0u8; 512];
    silent_dns.set_nonblocking(true).unwrap();
    assert!(silent_dns.recv(&mut query).is_ok(), "the query went to the test's nameserver");
}

/// A namespace with an address on a veth whose far end is up too (carrier) but no default
/// route: `site` for IPv4.
fn site_only(tag: &str) -> NetNs {
    let ns = NetNs::new(tag);
    ns.veth("va", "vb");
    ns.ip("addr add 192.0.2.10/24 dev va");
    ns
}

#[test]
fn wait_returns_at_once_when_already_online() {
    testns::skip_unless_root!();
    let (client, _server) = client_server("wo");
    let (out, elapsed) = run(&["wait", "--netns", client.name(), "--timeout", "10s"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
    // Check once (timeout 0) when not reached: 1 at once.
    let ns = site_only("w0");
    let (out, elapsed) = run(&["wait", "--netns", ns.name(), "--timeout", "0", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((v["reached"].as_bool(), v["reachability"].as_str()), (Some(false), Some("site")));
}

#[test]
fn wait_sees_the_network_come_online_after_two_seconds() {
    testns::skip_unless_root!();
    let ns = site_only("w2");
    let start = Instant::now();
    let child =
        netreach().args(["wait", "--netns", ns.name(), "--timeout", "20s"]).stderr(Stdio::piped()).spawn().unwrap();
    std::thread::sleep(Duration::from_secs(2)); // the scenario: the route appears two seconds later
    ns.ip("route add default via 192.0.2.1");
    let out = child.wait_with_output().unwrap();
    let elapsed = start.elapsed();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(elapsed >= Duration::from_secs(2) && elapsed < Duration::from_secs(6), "{elapsed:?}");
}

#[test]
fn wait_gives_up_at_its_timeout_saying_what_is_missing() {
    testns::skip_unless_root!();
    let ns = site_only("wt");
    let (out, elapsed) = run(&["wait", "--netns", ns.name(), "--timeout", "1s"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(elapsed >= Duration::from_secs(1) && elapsed < Duration::from_secs(3), "{elapsed:?}");
    let err = text(&out.stderr);
    assert!(
        err.contains("timed out after 1s waiting for online")
            && err.contains("ipv4: site (the kernel has no route to the internet)"),
        "{err}"
    );

    // An interface that never gets carrier: its far end stays down.
    let ns = NetNs::new("wc");
    ns.ip("link add va type veth peer name vb");
    ns.ip("link set va up");
    ns.ip("addr add 192.0.2.10/24 dev va");
    let (out, elapsed) =
        run(&["wait", "--netns", ns.name(), "--interface", "va", "--level", "local", "--timeout", "1s"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
    assert!(text(&out.stderr).contains("interface va: no carrier"), "{}", text(&out.stderr));
}

#[test]
fn wait_exits_130_on_sigint() {
    testns::skip_unless_root!();
    let ns = site_only("wi");
    let child = netreach().args(["wait", "--netns", ns.name(), "--timeout", "60s"]).spawn().unwrap();
    let pid = child.id();
    // SIGINT is taken with sigwait() once it is blocked (bit 1 of the main thread's mask).
    wait_until(Duration::from_secs(10), "SIGINT blocked for sigwait()", || {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let caught = status.lines().find_map(|l| l.strip_prefix("SigBlk:")).unwrap_or("0");
        u64::from_str_radix(caught.trim(), 16).unwrap_or(0) & (1 << (libc_sigint() - 1)) != 0
    });
    let start = Instant::now();
    kill(Pid::from_raw(pid as i32), Signal::SIGINT).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130));
    assert!(start.elapsed() < Duration::from_secs(2));
}

fn libc_sigint() -> u32 {
    Signal::SIGINT as u32
}

#[test]
fn wait_and_status_use_the_probe_when_asked() {
    testns::skip_unless_root!();
    let (client, server) = client_server("wp");
    let ok = Server::start(&server, &format!("{SERVER_V4}:8080"), Reply::text(OK_204));
    let portal = Server::start(&server, &format!("{SERVER_V4}:8081"), Reply::text(PORTAL));
    let (out, _) = run(&["wait", "--netns", client.name(), "--probe", "--url", &ok.url("/"), "--timeout", "10s"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(ok.requests(), 1);
    // Behind a portal the kernel's online is not enough.
    let (out, elapsed) =
        run(&["wait", "--netns", client.name(), "--probe", "--url", &portal.url("/"), "--timeout", "1s"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
    let err = text(&out.stderr);
    assert!(err.contains("ipv4: site (probe: captive portal at http://portal.test/login)"), "{err}");

    let (out, _) = run(&["status", "--netns", client.name(), "--json", "--probe", "--url", &portal.url("/")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((v["ipv4"]["reachability"].as_str(), v["ipv4"]["source"].as_str()), (Some("site"), Some("probe")));
    assert_eq!(
        (v["captive_portal"].as_bool(), v["portal_url"].as_str()),
        (Some(true), Some("http://portal.test/login"))
    );
    // Without --probe nothing is sent.
    let before = ok.requests() + portal.requests();
    let (out, _) = run(&["status", "--netns", client.name(), "--json"]);
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ipv4"]["source"], "kernel");
    assert_eq!(ok.requests() + portal.requests(), before);
}

/// One command, one probe round: `status --probe` and `wait --timeout 0 --probe` make exactly
/// one request per family (the round the monitor starts when built is the one they wait for),
/// and against a silent server take one probe timeout, not two.
#[test]
fn status_and_wait_once_probe_once() {
    testns::skip_unless_root!();
    let (client, server) = client_server("p1");
    let v4 = Server::start(&server, &format!("{SERVER_V4}:8080"), Reply::text(OK_204));
    let v6 = Server::start(&server, &format!("[{}]:8086", testns::http::SERVER_V6), Reply::text(OK_204));
    let silent = Server::start(&server, &format!("{SERVER_V4}:8081"), Reply::Silent);
    let ns = client.name();
    // A kernel change during a command is a reason for a second round: start from a settled
    // namespace (the link-local address has finished duplicate address detection).
    testns::wait_until(Duration::from_secs(10), "no tentative address in the client", || {
        !client.ip_json("addr show").to_string().contains("\"tentative\":true")
    });
    let both = ["--probe", "--url", &v4.url("/"), "--url", &v6.url("/"), "--probe-timeout", "5s"];
    let commands: [Vec<&str>; 2] = [
        [&["status", "--json", "--netns", ns][..], &both].concat(),
        [&["wait", "--timeout", "0", "--netns", ns][..], &both].concat(),
    ];
    for i in 0..10 {
        for args in &commands {
            let before = (v4.requests(), v6.requests());
            let (out, _) = run(args);
            assert_eq!(out.status.code(), Some(0), "run {i} {args:?}: {}", text(&out.stderr));
            let after = (v4.requests(), v6.requests());
            assert_eq!((after.0 - before.0, after.1 - before.1), (1, 1), "run {i} {args:?}: requests per family");
        }
    }
    let bound = Duration::from_millis(1800);
    let silent_url = silent.url("/");
    for i in 0..10 {
        for (args, code) in [
            (vec!["status", "--netns", ns, "--probe", "--url", &silent_url, "--probe-timeout", "1s"], 0),
            (
                vec!["wait", "--timeout", "0", "--netns", ns, "--probe", "--url", &silent_url, "--probe-timeout", "1s"],
                1,
            ),
        ] {
            let before = silent.requests();
            let (out, elapsed) = run(&args);
            assert_eq!(out.status.code(), Some(code), "run {i} {args:?}: {}", text(&out.stderr));
            assert!(elapsed < bound, "run {i} {args:?} took {elapsed:?} with a 1s probe timeout");
            assert!(elapsed >= Duration::from_secs(1), "run {i} {args:?} did not wait for the probe: {elapsed:?}");
            assert_eq!(silent.requests() - before, 1, "run {i} {args:?}");
        }
    }
}

/// A probe result's `address` is the one its reason talks about: with a name resolving to an
/// address that never answers and one that would, when the first eats the whole timeout the
/// result names the first (not the second, which was never tried); when the first refuses,
/// the result is the second's.
#[test]
fn probe_address_is_the_one_the_outcome_is_about() {
    testns::skip_unless_root!();
    let (client, server) = client_server("pa");
    // Off the client's subnet, reached through its default route; the name's other address is
    // on the subnet, which getaddrinfo sorts first (RFC 6724 rule 9, longest matching prefix).
    server.ip("addr add 198.51.100.1/32 dev vb");
    let ok = Server::start(&server, "198.51.100.1:8080", Reply::text(OK_204));
    let json = |out: &Output| serde_json::from_slice::<Value>(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:?}"));
    let args = ["probe", "--url", "http://multi.test:8080/", "--family", "4", "--probe-timeout", "2s", "--json"];

    // 192.0.2.99: on the link, at a link-layer address nobody has (a permanent entry: no ARP
    // that the kernel could give up on, EHOSTUNREACH, on a loaded machine before the probe's
    // own timeout), so the SYN is lost and connecting times out.
    client.ip("neigh replace 192.0.2.99 dev va lladdr 02:00:00:00:00:99 nud permanent");
    let hosts = "127.0.0.1 localhost\n192.0.2.99 multi.test\n198.51.100.1 multi.test\n";
    let (out, _) = in_resolver_sandbox(&client, "", hosts, &args);
    let v = json(&out);
    assert_eq!(v[0]["verdict"], "limited", "{v}");
    assert_eq!(v[0]["reason"], "connecting to 192.0.2.99:8080 timed out", "{v}");
    assert_eq!(v[0]["address"], "192.0.2.99:8080", "{v}");
    assert_eq!(ok.requests(), 0, "{v}");

    // 192.0.2.1: the server namespace, where nothing listens on 8080: refused, then the next.
    let hosts = "127.0.0.1 localhost\n192.0.2.1 multi.test\n198.51.100.1 multi.test\n";
    let (out, _) = in_resolver_sandbox(&client, "", hosts, &args);
    let v = json(&out);
    assert_eq!(
        (&v[0]["verdict"], &v[0]["address"]),
        (&Value::from("online"), &Value::from("198.51.100.1:8080")),
        "{v}"
    );
    assert_eq!(ok.requests(), 1);
}
