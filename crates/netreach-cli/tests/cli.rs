//! The `netreach` binary against the real kernel, in namespaces the tests create.
#![cfg(target_os = "linux")] // network namespaces; Windows has tests/windows.rs

use std::process::{Command, Stdio};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;
use testns::kit::{wait_exit, Lines, TIMEOUT};
use testns::{require_root, NetNs};

fn netreach() -> Command {
    Command::new(env!("CARGO_BIN_EXE_netreach"))
}

fn veth_ns(tag: &str) -> NetNs {
    let ns = NetNs::new(tag);
    ns.veth("va", "vb");
    ns.ip("addr add 192.0.2.10/24 dev va");
    ns.ip("addr add 2001:db8::10/64 dev va nodad");
    ns
}

#[test]
fn status_json_matches_the_namespace() {
    testns::skip_unless_root!();
    let ns = veth_ns("status");
    ns.ip("route add default via 192.0.2.1");
    let out = netreach().args(["status", "--json", "--netns", ns.name()]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).expect("status --json is JSON");
    assert_eq!(v["reachability"], "online");
    assert_eq!(v["ipv4"]["reachability"], "online");
    assert_eq!(v["ipv6"]["reachability"], "site");
    let va = v["interfaces"].as_array().unwrap().iter().find(|i| i["name"] == "va").expect("va listed");
    assert_eq!(va["index"], ns.index("va"));
    assert_eq!(va["kind"], "veth");
    assert_eq!((va["up"].as_bool(), va["carrier"].as_bool()), (Some(true), Some(true)));
    let addrs: Vec<(String, u64)> = va["addresses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["address"].as_str().unwrap().to_owned(), a["prefix_len"].as_u64().unwrap()))
        .collect();
    assert!(addrs.contains(&("192.0.2.10".into(), 24)) && addrs.contains(&("2001:db8::10".into(), 64)), "{addrs:?}");
    // Every interface the kernel lists, and no other.
    let kernel: Vec<Value> = ns.ip_json("link show").as_array().unwrap().clone();
    assert_eq!(v["interfaces"].as_array().unwrap().len(), kernel.len());
    let routes = v["default_routes"].as_array().unwrap();
    assert_eq!(routes.len(), 1);
    assert_eq!(
        (routes[0]["family"].as_str(), routes[0]["gateway"].as_str(), routes[0]["interface"].as_str()),
        (Some("ipv4"), Some("192.0.2.1"), Some("va"))
    );
}

#[test]
fn status_human_summary_names_levels_routes_and_interfaces() {
    testns::skip_unless_root!();
    let ns = veth_ns("human");
    let out = netreach().args(["status", "--netns", ns.name()]).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success());
    for want in ["reachability: site (kernel)", "ipv4: site", "ipv6: site", "(none)", "va (veth) up", "192.0.2.10/24"] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
}

/// JSON lines from a child's stdout, every read bounded (the kit's [`Lines`]).
struct JsonLines(Lines);

impl JsonLines {
    fn spawn(mut command: Command) -> JsonLines {
        JsonLines(Lines::spawn(command.stderr(Stdio::piped())))
    }

    fn next_json(&self) -> Value {
        let line = self.0.next(TIMEOUT).expect("a line from netreach watch in time");
        let line = String::from_utf8(line).expect("UTF-8 line");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
    }

    /// The next event whose type is `kind`, returning the types skipped on the way.
    fn until(&self, kind: &str) -> (Value, Vec<String>) {
        let mut skipped = Vec::new();
        loop {
            let v = self.next_json();
            assert!(v["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')), "timestamp: {v}");
            if v["type"] == kind {
                return (v, skipped);
            }
            skipped.push(v["type"].as_str().unwrap_or_default().to_owned());
        }
    }
}

#[test]
fn watch_json_shows_a_scripted_sequence_in_order() {
    testns::skip_unless_root!();
    let ns = NetNs::new("watch");
    ns.veth("va", "vb");
    let mut command = netreach();
    command.args(["watch", "--json", "--netns", ns.name()]);
    let lines = JsonLines::spawn(command);
    let baseline = lines.next_json();
    assert_eq!(baseline["type"], "baseline");
    // fe80:: on the fresh veth may still be tentative (DAD): disconnected or local, not more.
    assert!(["disconnected", "local"].contains(&baseline["state"]["reachability"].as_str().unwrap()), "{baseline}");
    assert!(baseline["state"]["interfaces"].as_array().unwrap().iter().any(|i| i["name"] == "va"));

    ns.ip("addr add 192.0.2.10/24 dev va");
    let (v, _) = lines.until("address_added");
    assert_eq!((v["interface"].as_str(), v["address"]["address"].as_str()), (Some("va"), Some("192.0.2.10")));
    let (v, _) = lines.until("reachability_changed");
    assert_eq!(
        (v["family"].as_str(), v["old"].as_str(), v["new"].as_str()),
        (Some("ipv4"), Some("disconnected"), Some("site"))
    );

    ns.ip("route add default via 192.0.2.1");
    let (v, skipped) = lines.until("default_route_added");
    assert!(!skipped.contains(&"address_added".to_owned()));
    assert_eq!(v["route"]["gateway"], "192.0.2.1");
    let (v, _) = lines.until("reachability_changed");
    assert_eq!((v["family"].as_str(), v["new"].as_str()), (Some("ipv4"), Some("online")));

    ns.ip("link set va down");
    let (v, _) = lines.until("interface_changed");
    assert_eq!((v["after"]["name"].as_str(), v["after"]["up"].as_bool()), (Some("va"), Some(false)));
    lines.until("default_route_removed");

    ns.ip("link del va");
    let (v, _) = lines.until("interface_removed");
    assert!(["va", "vb"].contains(&v["interface"]["name"].as_str().unwrap()));
}

#[test]
fn watch_exits_zero_on_sigterm_and_sigint() {
    testns::skip_unless_root!();
    let ns = NetNs::new("signal");
    for signal in [Signal::SIGTERM, Signal::SIGINT] {
        let mut command = netreach();
        command.args(["watch", "--netns", ns.name()]);
        let mut lines = JsonLines::spawn(command);
        lines.0.next(TIMEOUT).expect("baseline printed"); // the handler is installed by now
        let pid = Pid::from_raw(lines.0.child().id() as i32);
        kill(pid, signal).expect("send signal");
        let status = wait_exit(lines.0.child(), TIMEOUT);
        assert_eq!(status.code(), Some(0), "{signal}");
    }
}

#[test]
fn watch_into_a_closed_pipe_exits_quietly() {
    testns::skip_unless_root!();
    let ns = NetNs::new("pipe");
    let script =
        format!("set -o pipefail; '{}' watch --json --netns {} | head -1", env!("CARGO_BIN_EXE_netreach"), ns.name());
    let mut child =
        Command::new("bash").args(["-c", &script]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    // No network change happens: netreach must notice the reader left on its own.
    let status = wait_exit(&mut child, TIMEOUT);
    let out = child.wait_with_output().unwrap();
    assert_eq!(status.code(), Some(0), "pipeline status (pipefail)");
    assert!(out.stderr.is_empty(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let line: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(line["type"], "baseline");
}

#[test]
fn bad_input_exit_codes() {
    let out = netreach().args(["status", "--netns", "netreach-no-such-ns"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2)); // bad input, as in every subcommand
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no network namespace named 'netreach-no-such-ns'"), "{err}");

    let out = netreach().args(["status", "--bogus"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    // An endpoint without --probe would silently do nothing: a command-line mistake.
    let out = netreach().args(["watch", "--url", "http://192.0.2.1/"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("add --probe"));
    let out = netreach().args(["watch", "--netns", "/etc/hostname"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a namespace file"));
}

#[test]
fn check_exit_codes_and_json() {
    testns::skip_unless_root!();
    let ns = veth_ns("check");
    ns.ip("route add default via 192.0.2.1");
    let check = |args: &[&str]| {
        let out = netreach().args(["check", "--netns", ns.name()]).args(args).output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, out, _) = check(&["192.0.2.10", "203.0.113.5"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("192.0.2.10 -> 203.0.113.5: reachable via va"), "{out}");

    let (code, out, _) = check(&["--json", "192.0.2.10", "192.0.2.99"]);
    assert_eq!(code, Some(0));
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!((v["reachable"].as_bool(), v["same_subnet"].as_bool()), (Some(true), Some(true)));

    ns.ip("route del default");
    let (code, out, _) = check(&["192.0.2.10", "203.0.113.5"]);
    assert_eq!(code, Some(1));
    assert!(out.contains("unreachable: no route"), "{out}");
    let (code, out, _) = check(&["--json", "192.0.2.10", "203.0.113.5"]);
    assert_eq!(code, Some(1));
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap()["reason"], "no_route");

    for (args, want) in [
        (["192.0.2.10", "127.0.0.1"], "loopback"),
        (["192.0.2.10", "2001:db8::1"], "different families"),
        (["0.0.0.0", "203.0.113.5"], "unspecified"),
        (["192.0.2.99", "203.0.113.5"], "no interface owns"),
        (["192.0.2.10", "224.0.0.1"], "multicast"),
    ] {
        let (code, _, err) = check(&args);
        assert_eq!(code, Some(2), "{args:?}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
    let out = netreach().args(["check", "192.0.2.10", "not-an-address"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// The reasons naming the interface (`no_carrier`, `interface_down`) once printed the
/// `"interface"` key twice: invalid JSON for strict readers. Each key comes once now.
#[test]
fn check_json_has_each_key_once() {
    testns::skip_unless_root!();
    let ns = veth_ns("checkkeys");
    let check = || {
        let out = netreach().args(["check", "--json", "--netns", ns.name(), "192.0.2.10", "192.0.2.20"]).output();
        let out = out.unwrap();
        assert_eq!(out.status.code(), Some(1), "unreachable");
        String::from_utf8(out.stdout).unwrap()
    };
    let shape = |reason: &str| {
        format!(
            "{{\"local\":\"192.0.2.10\",\"remote\":\"192.0.2.20\",\"reachable\":false,\"reason\":\"{reason}\",\"interface\":\"va\",\"same_subnet\":true}}\n"
        )
    };
    ns.ip("link set vb down");
    let out = check();
    assert_eq!(out, shape("no_carrier"));
    testns::kit::assert_json_keys_unique(&out);
    ns.ip("link set va down");
    let out = check();
    assert_eq!(out, shape("interface_down"));
    testns::kit::assert_json_keys_unique(&out);
}

#[test]
fn check_watch_streams_changes() {
    testns::skip_unless_root!();
    let ns = veth_ns("checkw");
    let mut command = netreach();
    command.args(["check", "--watch", "--json", "--netns", ns.name(), "192.0.2.10", "192.0.2.20"]);
    let lines = JsonLines::spawn(command);
    let first = lines.next_json();
    assert_eq!((first["type"].as_str(), first["status"]["reachable"].as_bool()), (Some("path_changed"), Some(true)));
    ns.ip("link set vb down");
    let v = lines.next_json();
    assert_eq!((v["status"]["reachable"].as_bool(), v["status"]["reason"].as_str()), (Some(false), Some("no_carrier")));
    ns.ip("link set vb up");
    let v = lines.next_json();
    assert_eq!(v["status"]["reachable"].as_bool(), Some(true));
}

#[test]
fn backend_option_chooses_and_explains() {
    let out = netreach().args(["status", "--backend", "bogus"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("auto, kernel, networkmanager"));
    let out = netreach()
        .args(["status", "--backend", "networkmanager"])
        .env("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/nonexistent/netreach-test-bus")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot connect to the system bus"));

    if !(require_root("backend_option_chooses_and_explains (NM part)")
        && testns::nm::require_networkmanager("backend_option_chooses_and_explains (NM part)"))
    {
        return;
    }
    let sandbox = testns::nm::NmSandbox::up();
    let netns = sandbox.netns_path();
    let status = |backend: &str| -> Value {
        let out = netreach()
            .args(["status", "--json", "--backend", backend, "--netns"])
            .arg(&netns)
            .env("DBUS_SYSTEM_BUS_ADDRESS", sandbox.bus_address())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let nm = status("networkmanager");
    assert_eq!(nm["source"], "networkmanager", "{nm:#}");
    assert_eq!(nm["transport"], "ethernet");
    let kernel = status("kernel");
    assert_eq!(kernel["source"], "kernel", "{kernel:#}");
    assert_eq!(kernel["verdicts"].as_array().map_or(0, Vec::len), 0, "{kernel:#}");
}
