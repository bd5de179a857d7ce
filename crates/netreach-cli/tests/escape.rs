//! Strings from outside (a captive portal's `Location`, interface names, names given on the
//! command line) reach a terminal escaped in every subcommand's human output, and stay exact
//! in JSON. The servers and interfaces are in namespaces the tests create.
#![cfg(target_os = "linux")] // network namespaces

use std::process::{Command, Output, Stdio};

use serde_json::Value;
use testns::http::{client_server, Reply, Server, SERVER_V4};
use testns::kit::{Lines, TIMEOUT};
use testns::NetNs;

fn netreach() -> Command {
    Command::new(env!("CARGO_BIN_EXE_netreach"))
}

fn run(args: &[&str]) -> Output {
    netreach().args(args).stdin(Stdio::null()).output().expect("run netreach")
}

/// `bytes` as text, after checking that a terminal would only print it: valid UTF-8 (a raw
/// 0x9b byte is CSI to an 8-bit terminal), no C0 control but the line breaks, no DEL, no C1
/// control, no bidi mark, embedding, override or isolate.
fn terminal_safe(what: &str, bytes: &[u8]) -> String {
    let text = std::str::from_utf8(bytes).unwrap_or_else(|e| panic!("{what}: not UTF-8 ({e}): {bytes:?}"));
    for c in text.chars() {
        let n = u32::from(c);
        let unsafe_char = (n < 0x20 && c != '\n')
            || (0x7F..=0x9F).contains(&n)
            || [0x61C, 0x200E, 0x200F].contains(&n)
            || (0x202A..=0x202E).contains(&n)
            || (0x2066..=0x2069).contains(&n);
        assert!(!unsafe_char, "{what}: {c:?} reaches the terminal in {text:?}");
    }
    text.to_owned()
}

/// A running `netreach`, its stdout read line by line (as bytes), every read bounded (the
/// kit's [`Lines`]); killed when dropped.
struct Running(Lines);

impl Running {
    fn spawn(args: &[&str]) -> Running {
        Running(Lines::spawn(netreach().args(args)))
    }

    /// Reads lines until one contains `want`, checking each is terminal-safe; returns it.
    fn until(&self, want: &str) -> String {
        loop {
            let line = self.0.next(TIMEOUT).unwrap_or_else(|_| panic!("no line with {want:?} in time"));
            let line = terminal_safe("watch", &line);
            if line.contains(want) {
                return line;
            }
        }
    }
}

#[test]
fn hostile_portal_urls_are_escaped_for_people_and_exact_in_json() {
    testns::skip_unless_root!();
    let (client, server) = client_server("ep");
    let cases: [(&[u8], &str, &str); 2] = [
        // CSI "2J" clears the screen, OSC 0 sets the window title; UTF-8 encoded C1 controls.
        (
            b"HTTP/1.1 302 Found\r\nLocation: http://x/\xc2\x9b2J\xc2\x9d0;pwned\xc2\x9c\r\n\r\n",
            "http://x/\u{9b}2J\u{9d}0;pwned\u{9c}",
            r"http://x/\u{9b}2J\u{9d}0;pwned\u{9c}",
        ),
        // A right-to-left override makes "gnp.exe" read as "exe.png".
        (
            b"HTTP/1.1 302 Found\r\nLocation: http://x/\xe2\x80\xaegnp.exe\r\n\r\n",
            "http://x/\u{202e}gnp.exe",
            r"http://x/\u{202e}gnp.exe",
        ),
    ];
    for (port, (reply, url, shown)) in (8080..).zip(cases) {
        let portal = Server::start(&server, &format!("{SERVER_V4}:{port}"), Reply::Bytes(reply.to_vec()));
        let target = portal.url("/");
        let with = |args: &[&str]| {
            let mut all = args.to_vec();
            all.extend(["--netns", client.name(), "--url", &target]);
            run(&all)
        };

        let out = with(&["probe", "--family", "4"]);
        assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
        let text = terminal_safe("probe", &out.stdout);
        assert!(text.contains(&format!("ipv4: captive portal ({shown}) via ")), "{text}");
        let v: Value = serde_json::from_slice(&with(&["probe", "--family", "4", "--json"]).stdout).unwrap();
        assert_eq!(v[0]["url"], url);

        let out = with(&["status", "--probe"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let text = terminal_safe("status --probe", &out.stdout);
        assert!(text.contains(&format!("captive portal: yes ({shown})")), "{text}");
        let v: Value = serde_json::from_slice(&with(&["status", "--probe", "--json"]).stdout).unwrap();
        assert_eq!(v["portal_url"], url);

        let watch = Running::spawn(&["watch", "--probe", "--netns", client.name(), "--url", &target]);
        let line = watch.until("captive portal: yes (");
        assert!(line.contains(&format!("captive portal: yes ({shown})")), "{line}");
        drop(watch);

        // `wait` says what is missing on stderr, and (with --json) reports on stdout.
        let out = with(&["wait", "--probe", "--timeout", "1s", "--json"]);
        assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
        let text = terminal_safe("wait stderr", &out.stderr);
        assert!(text.contains(&format!("captive portal at {shown}")), "{text}");
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(v["missing"][0].as_str().is_some_and(|m| m.ends_with(&format!("captive portal at {url})"))), "{v}");
    }
}

#[test]
fn hostile_interface_names_are_escaped_for_people_and_exact_in_json() {
    testns::skip_unless_root!();
    // Legal interface names: the kernel refuses only '/', ':' and whitespace.
    let (esc, bidi, csi) = ("e\u{1b}[31m", "r\u{202e}x", "c\u{9b}2J");
    let (esc_shown, bidi_shown, csi_shown) = (r"e\x1b[31m", r"r\u{202e}x", r"c\u{9b}2J");
    let ns = NetNs::new("ei");
    ns.ip(&format!("link add {esc} type veth peer name {bidi}"));
    ns.ip(&format!("link add {csi} type veth peer name c2"));
    for name in [esc, bidi] {
        ns.ip(&format!("link set {name} up"));
    }
    ns.ip(&format!("addr add 192.0.2.10/24 dev {esc}"));
    ns.ip("route add default via 192.0.2.1");

    let out = run(&["status", "--netns", ns.name()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = terminal_safe("status", &out.stdout);
    for want in [&format!("dev {esc_shown} metric"), &format!(": {esc_shown} (veth)"), bidi_shown, csi_shown] {
        assert!(text.contains(want), "{want:?} missing in:\n{text}");
    }
    let v: Value = serde_json::from_slice(&run(&["status", "--netns", ns.name(), "--json"]).stdout).unwrap();
    let names: Vec<&str> = v["interfaces"].as_array().unwrap().iter().filter_map(|i| i["name"].as_str()).collect();
    assert!([esc, bidi, csi].iter().all(|n| names.contains(n)), "{names:?}");

    let out = run(&["check", "--netns", ns.name(), "192.0.2.10", "203.0.113.5"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let text = terminal_safe("check", &out.stdout);
    assert!(text.contains(&format!("reachable via {esc_shown}")), "{text}");
    let out = run(&["check", "--netns", ns.name(), "--json", "192.0.2.10", "203.0.113.5"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["interface"].as_str(), Some(esc), "{v}");

    let watch = Running::spawn(&["watch", "--netns", ns.name()]);
    let mut unseen = vec![esc_shown, bidi_shown, csi_shown];
    while !unseen.is_empty() {
        let line = watch.until(" (veth) "); // the baseline's interface lines, in any order
        unseen.retain(|name| !line.contains(&format!(": {name} (")));
    }
    ns.ip(&format!("link set {esc} down"));
    watch.until(&format!("interface changed: {esc_shown} ("));
    drop(watch);
}

#[test]
fn error_lines_quote_names_escaped() {
    // A namespace name is ours, but it is quoted in the error: OSC 0 would set the title.
    let name = "nope\u{1b}]0;pwned\u{7}\u{202e}";
    for args in [
        vec!["status"],
        vec!["watch"],
        vec!["wait", "--timeout", "0"],
        vec!["probe", "--url", "http://192.0.2.1/"],
        vec!["check", "192.0.2.10", "192.0.2.1"],
    ] {
        let out = netreach().args(&args).args(["--netns", name]).stdin(Stdio::null()).output().unwrap();
        assert!(matches!(out.status.code(), Some(1 | 2)), "{args:?}: {out:?}");
        let text = terminal_safe(args[0], &out.stderr);
        assert!(text.contains(r"nope\x1b]0;pwned\x07\u{202e}"), "{args:?}: {text}");
        assert_eq!(text.lines().count(), 1, "{args:?}: {text}");
    }
    // A usage error quotes the value given (clap itself drops ESC sequences, not C1 or bidi).
    let out = netreach().args(["wait", "--level", "x\u{9b}2J\u{202e}y"]).stdin(Stdio::null()).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let text = terminal_safe("usage error", &out.stderr);
    assert!(text.contains(r"invalid value 'x\u{9b}2J\u{202e}y'"), "{text}");
}
