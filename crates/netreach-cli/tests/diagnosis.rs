//! The layered diagnosis (issue 13 item 4) against the real kernel in namespaces the tests
//! create: each layer failing in turn in `status --json`'s `diagnosis` and in `netreach why`'s
//! sentence, `diagnosis_changed` events folding to a fresh `status`, `wait`'s timeout naming
//! the first failing layer, and `why` saying what it sends before it sends it. Probe endpoints
//! and nameservers are addresses inside the test's namespaces; names are resolved only inside
//! a mount namespace whose resolver files are the test's own, so nothing leaves the machine.
#![cfg(target_os = "linux")] // network namespaces

use std::net::UdpSocket;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use testns::http::{client_server, Reply, Server, SERVER_V4};
use testns::kit::{assert_json_keys_unique, Lines, TIMEOUT};
use testns::{wait_until, NetNs};

const PORTAL: &str = "HTTP/1.1 302 Found\r\nLocation: http://192.0.2.1/login\r\nContent-Length: 0\r\n\r\n";
const OK_204: &str = "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n";
const HOSTS: &str = "127.0.0.1 localhost\n";

fn netreach() -> Command {
    Command::new(env!("CARGO_BIN_EXE_netreach"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `va` (192.0.2.10/24) with its far end `vb` up in the same namespace: carrier. Nobody owns
/// the gateway 192.0.2.1, so it has a permanent neighbour entry (which `check()` does not
/// re-verify): otherwise its layer rightly fails before the ones these tests are about.
fn one_link(tag: &str) -> NetNs {
    let ns = NetNs::new(tag);
    ns.veth("va", "vb");
    ns.ip("addr add 192.0.2.10/24 dev va");
    ns.ip("neigh replace 192.0.2.1 dev va lladdr 02:00:00:00:00:01 nud permanent");
    ns
}

fn status_json(ns: &NetNs) -> Value {
    let out = netreach().args(["status", "--json", "--backend", "kernel", "--netns", ns.name()]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_json_keys_unique(&text(&out.stdout));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// (layer, finding code) of the first failing layer of IPv4.
fn first_failing(state: &Value) -> (String, String) {
    let layers = state["diagnosis"]["ipv4"]["layers"].as_array().expect("layers");
    let failed =
        layers.iter().find(|l| l["status"] == "failed").unwrap_or_else(|| panic!("no failing layer: {state:#}"));
    (failed["layer"].as_str().unwrap().into(), failed["finding"]["code"].as_str().unwrap_or_default().into())
}

/// `why` with a probe of an address in the namespace, bounded; its output and exit code.
fn why(ns: &NetNs, extra: &[&str]) -> Output {
    let mut command = netreach();
    command.args(["why", "--backend", "kernel", "--netns", ns.name(), "--url", "http://192.0.2.1:8080/"]);
    command.args(["--probe-timeout", "1s"]).args(extra);
    command.stdin(Stdio::null()).output().unwrap()
}

/// The last line of `why`'s output: its sentence.
fn sentence(out: &Output) -> String {
    text(&out.stdout).lines().last().unwrap_or_default().to_owned()
}

#[test]
fn link_address_and_route_fail_in_turn() {
    testns::skip_unless_root!();
    let ns = one_link("dgl");
    ns.ip("route add default via 192.0.2.1");
    type Step<'a> = (&'a str, (&'a str, &'a str), &'a str);
    let steps: [Step; 4] = [
        ("link set vb down", ("link", "no_carrier"), "va has no carrier: check the cable"),
        ("link set vb up\naddr flush dev va", ("address", "no_address"), "no interface has a usable ipv4 address"),
        ("addr add 192.0.2.10/24 dev va", ("route", "kernel"), "there is no ipv4 route to the internet"),
        ("route add blackhole default", ("route", "kernel"), "a blackhole route or rule refuses ipv4 traffic"),
    ];
    for (commands, (layer, code), says) in steps {
        ns.ip_batch(&format!("{commands}\n"));
        if layer != "link" {
            wait_until(TIMEOUT, "va operationally up", || ns.ip_json("link show dev va")[0]["operstate"] == "UP");
        }
        let state = status_json(&ns);
        assert_eq!(first_failing(&state), (layer.to_owned(), code.to_owned()), "after {commands:?}: {state:#}");
        let out = why(&ns, &[]);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
        assert!(sentence(&out).starts_with(says), "after {commands:?}: {}", text(&out.stdout));
    }
    // The kernel agrees with the last step: it refuses the destination.
    assert!(ns.try_ip("route get 64.0.0.1").is_err());
}

/// Runs the binary with `args` inside `ns` and a mount namespace whose resolv.conf is `resolv`.
fn sandboxed(ns: &NetNs, resolv: &str, args: &[&str]) -> Output {
    testns::kit::with_resolver(ns, env!("CARGO_BIN_EXE_netreach"), resolv, HOSTS, args).0
}

#[test]
fn dns_layer_fails_without_a_nameserver_and_with_one_no_route_reaches() {
    testns::skip_unless_root!();
    let ns = one_link("dgd");
    ns.ip("route add default via 192.0.2.1");
    let json = |resolv: &str| -> Value {
        let out = sandboxed(&ns, resolv, &["status", "--json", "--backend", "kernel"]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let state = json("# nothing\n");
    assert_eq!(first_failing(&state), ("dns".into(), "no_nameserver".into()), "{state:#}");
    let args = ["why", "--backend", "kernel", "--url", "http://192.0.2.1:8080/", "--probe-timeout", "1s"];
    let out = sandboxed(&ns, "# nothing\n", &args);
    assert!(sentence(&out).starts_with("no nameserver is configured in /etc/resolv.conf"), "{}", text(&out.stdout));

    // A nameserver the default route would carry, but an unreachable route for its prefix
    // wins: judged by the kernel's route decision, not by the default route.
    ns.ip("route add unreachable 198.51.100.0/24");
    assert!(ns.try_ip("route get 198.51.100.53").is_err(), "the kernel refuses it");
    let resolv = "nameserver 198.51.100.53\n";
    let state = json(resolv);
    assert_eq!(first_failing(&state), ("dns".into(), "nameservers_unreachable".into()), "{state:#}");
    assert_eq!(state["ipv4"]["reachability"], "online", "the internet route itself is fine");
    assert_eq!(state["nameserver_routes"][0]["answer"], "no_route", "{state:#}");
    let out = sandboxed(&ns, resolv, &args);
    assert!(sentence(&out).starts_with("no route reaches nameserver 198.51.100.53"), "{}", text(&out.stdout));
    // `wait --dns` judges it the same way (it used to trust the default route).
    let out =
        sandboxed(&ns, resolv, &["wait", "--backend", "kernel", "--level", "site", "--dns", "--timeout", "500ms"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains(": dns: no route to nameserver 198.51.100.53"), "{}", text(&out.stderr));
    // Without the unreachable route it passes, through va.
    ns.ip("route del unreachable 198.51.100.0/24");
    let state = json(resolv);
    let dns = &state["diagnosis"]["ipv4"]["layers"][4];
    assert_eq!(
        (dns["status"].as_str(), dns["finding"]["interface"].as_str()),
        (Some("passed"), Some("va")),
        "{state:#}"
    );
}

/// A DNS server on `SERVER_V4:53` in `ns` that answers every query NXDOMAIN (the query echoed
/// with QR, RA and RCODE 3 set); stops when the returned flag is set.
fn nxdomain_server(ns: &NetNs) -> Arc<AtomicBool> {
    let socket = ns.run_inside(|| UdpSocket::bind((SERVER_V4, 53)).unwrap());
    socket.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let done = stop.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 1500];
        while !done.load(Ordering::SeqCst) {
            let Ok((n, from)) = socket.recv_from(&mut buf) else { continue };
            if n < 12 {
                continue;
            }
            let mut reply = buf[..n].to_vec();
            reply[2] = 0x80 | (reply[2] & 0x01); // QR, RD as asked
            reply[3] = 0x80 | 3; // RA, NXDOMAIN
            let _ = socket.send_to(&reply, from);
        }
    });
    stop
}

#[test]
fn probe_layers_refused_endpoint_unresolved_names_and_a_portal() {
    testns::skip_unless_root!();
    let (client, server) = client_server("dgp");
    let resolv = format!("nameserver {SERVER_V4}\noptions attempts:1 timeout:2\n");
    let why_in = |url: &str, host: Option<&str>| -> Output {
        let mut args = vec!["why", "--backend", "kernel", "--url", url, "--probe-timeout", "3s"];
        args.extend(host);
        let out = sandboxed(&client, &resolv, &args);
        assert!(!text(&out.stdout).is_empty(), "{}", text(&out.stderr));
        out
    };
    // Nothing listens on the endpoint: refused, the internet layer fails.
    let out = why_in(&format!("http://{SERVER_V4}:8080/"), None);
    assert_eq!(out.status.code(), Some(1));
    assert!(sentence(&out).starts_with("the internet does not answer over ipv4"), "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains(">> internet FAILED <<"), "{}", text(&out.stdout));

    // A name the test's own DNS server says does not exist: the DNS layer fails, not HTTP.
    let stop = nxdomain_server(&server);
    let out = why_in("http://netreach-probe.test:8080/", None);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        sentence(&out).starts_with("names do not resolve (name resolution of netreach-probe.test"),
        "{}",
        text(&out.stdout)
    );
    let json_args = ["status", "--json", "--backend", "kernel", "--probe", "--url", "http://netreach-probe.test:8080/"];
    let out = sandboxed(&client, &resolv, &json_args);
    let state: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(first_failing(&state), ("dns".into(), "names_unresolved".into()), "{state:#}");

    // HTTP by address works while HOST does not resolve: the sentence is about HOST.
    let ok = Server::start(&server, &format!("{SERVER_V4}:8080"), Reply::text(OK_204));
    let out = why_in(&format!("http://{SERVER_V4}:8080/"), Some("nothing.test"));
    assert_eq!(out.status.code(), Some(1));
    assert!(sentence(&out).starts_with("nothing.test does not resolve"), "{}", text(&out.stdout));
    assert!(ok.requests() >= 1);
    stop.store(true, Ordering::SeqCst);
    drop(ok);

    // A portal answers instead: the portal layer fails, with where to log in.
    let _portal = Server::start(&server, &format!("{SERVER_V4}:8080"), Reply::text(PORTAL));
    let out = why_in(&format!("http://{SERVER_V4}:8080/"), None);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(sentence(&out), "a captive portal intercepts traffic: log in at http://192.0.2.1/login");
}

#[test]
fn why_says_what_it_sends_before_sending_it() {
    testns::skip_unless_root!();
    let (client, server) = client_server("dgo");
    let silent = Server::start(&server, &format!("{SERVER_V4}:8080"), Reply::Silent);
    let mut why = Lines::spawn(
        netreach()
            .args(["why", "--backend", "kernel", "--netns", client.name(), "--probe-timeout", "3s"])
            .args(["--url", &format!("http://{SERVER_V4}:8080/")])
            .stderr(Stdio::null()),
    );
    // The request is in flight (the server holds it unanswered)...
    wait_until(TIMEOUT, "the probe's request", || silent.requests() >= 1);
    // ...and the plan was written before it: on stdout already, and no result yet.
    let line = |why: &Lines| text(&why.next(TIMEOUT).expect("a line"));
    assert_eq!(line(&why), "netreach why: sending now:\n");
    assert!(line(&why).starts_with("  - gateway re-verification: the kernel may ask 192.0.2.1 on va"));
    assert!(line(&why).starts_with("  - gateway re-verification: the kernel may ask 2001:db8::1 on va"));
    assert_eq!(
        line(&why),
        "  - probe: HTTP GET http://192.0.2.1:8080/ over ipv4, ipv6 (its host name looked up first)\n"
    );
    assert!(why.child().try_wait().unwrap().is_none(), "still waiting for the answer");
    // Then the results, after the probe gave up.
    let rest: Vec<String> = std::iter::from_fn(|| why.next(TIMEOUT).ok().map(|l| text(&l))).collect();
    assert!(rest[0].starts_with("probe ipv4: limited: no complete reply in time"), "{rest:?}");
    assert!(rest.last().unwrap().starts_with("the internet does not answer over ipv4"), "{rest:?}");
}

#[test]
fn why_refuses_an_invalid_host() {
    // Checked before anything starts: no namespace or root needed.
    let out = netreach().args(["why", "bad host"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("invalid host 'bad host': ' ' is not allowed in a host name"),
        "{}",
        text(&out.stderr)
    );
    let out = netreach().args(["why", "x\u{1b}[2J"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(!text(&out.stderr).contains('\u{1b}'), "escaped: {}", text(&out.stderr));
}

#[test]
fn wait_names_the_first_failing_layer_at_its_timeout() {
    testns::skip_unless_root!();
    let ns = one_link("dgw");
    let out = netreach()
        .args(["wait", "--backend", "kernel", "--timeout", "300ms", "-4", "--netns", ns.name()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("ipv4: site (the kernel has no route to the internet)"), "{err}");
    assert!(
        err.trim_end().ends_with("first failing layer: ipv4 route failed: the kernel has no route to the internet"),
        "{err}"
    );
    let out = netreach()
        .args(["wait", "--json", "--backend", "kernel", "--timeout", "300ms", "--netns", ns.name()])
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let first = &report["first_failing_layer"];
    assert_eq!((first["family"].as_str(), first["layer"].as_str()), (Some("ipv4"), Some("route")), "{report}");
}

/// Folds a `watch --json` event into the diagnosis `d` (both families).
fn fold(d: &mut Value, event: &Value) {
    if event["type"] == "diagnosis_changed" {
        let family = event["family"].as_str().unwrap();
        assert_eq!(d[family], event["before"], "the event's before is what was folded so far");
        d[family] = event["after"].clone();
    }
}

#[test]
fn diagnosis_changes_in_a_watch_fold_to_a_fresh_status() {
    testns::skip_unless_root!();
    let ns = one_link("dgf");
    ns.ip("route add default via 192.0.2.1");
    let resolv = "nameserver 198.51.100.53\n";
    // The watch runs in the resolver sandbox too, so its DNS layer is the test's.
    let dir = std::env::temp_dir().join(format!("netreach-diag-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("resolv.conf"), resolv).unwrap();
    let script = r#"mount --bind "$1/resolv.conf" /etc/resolv.conf && exec "$2" watch --json --backend kernel"#;
    let watch = Lines::spawn(
        ns.command("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c", script, "sh"])
            .arg(&dir)
            .arg(env!("CARGO_BIN_EXE_netreach"))
            .stderr(Stdio::inherit()),
    );
    let next = |left: Duration| -> Option<Value> { Some(serde_json::from_slice(&watch.next(left).ok()?).unwrap()) };
    let baseline = next(TIMEOUT).expect("baseline");
    assert_eq!(baseline["type"], "baseline");
    let mut folded = baseline["state"]["diagnosis"].clone();
    assert!(folded["ipv4"]["layers"].is_array(), "{baseline:#}");
    let fresh = |ns: &NetNs| -> Value {
        let out = sandboxed(ns, resolv, &["status", "--json", "--backend", "kernel"]);
        serde_json::from_slice::<Value>(&out.stdout).unwrap()["diagnosis"].clone()
    };
    let mut seen = 0;
    let steps = [
        "link set vb down",
        "link set vb up",
        "route del default",
        // No default route, but a route to the nameserver's prefix: the DNS layer still passes.
        "route add 198.51.100.0/24 via 192.0.2.1",
        "route add default via 192.0.2.1",
        // Routes for the nameserver's prefix alone (no link, address or default route
        // changes): the kernel source passes them because the nameserver is followed.
        "route del 198.51.100.0/24 via 192.0.2.1",
        "route add blackhole 198.51.100.0/24",
    ];
    for step in steps {
        ns.ip_batch(&format!("{step}\n"));
        let want = fresh(&ns);
        let deadline = std::time::Instant::now() + TIMEOUT;
        while folded != want {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let Some(event) = next(left) else {
                panic!("after {step:?} the folded diagnosis is {folded:#}, a fresh status {want:#}")
            };
            seen += usize::from(event["type"] == "diagnosis_changed");
            fold(&mut folded, &event);
        }
    }
    assert!(seen >= 5, "{seen} diagnosis_changed events");
    let dns = &folded["ipv4"]["layers"][4];
    assert_eq!(
        (dns["status"].as_str(), dns["finding"]["code"].as_str()),
        (Some("failed"), Some("nameservers_unreachable"))
    );
    let _ = std::fs::remove_dir_all(&dir);
}
