//! The `netreach` binary on Windows (run under Wine here): `status`, `check` and `watch` against
//! the real IP Helper and Network List Manager, compared with the library's own reading.
#![cfg(windows)]

use std::io::{BufRead, BufReader};
use std::net::IpAddr;
use std::process::{Command, Stdio};

use serde_json::Value;

fn netreach() -> Command {
    Command::new(env!("CARGO_BIN_EXE_netreach"))
}

fn json(args: &[&str]) -> (Value, std::process::ExitStatus) {
    let out = netreach().args(args).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{args:?} printed no JSON ({e}): {text}"));
    (value, out.status)
}

/// An IPv4 address of an interface with a default route, and another host of its subnet.
fn path_ends(state: &netreach::NetworkState) -> (IpAddr, IpAddr) {
    let route =
        state.default_routes.iter().find(|r| r.family == netreach::Family::Ipv4).expect("an IPv4 default route");
    let interface = state.interface(route.interface_index).unwrap();
    let address = interface.addresses.iter().find(|a| a.address.is_ipv4()).expect("an IPv4 address");
    let IpAddr::V4(v4) = address.address else { unreachable!() };
    let network = u32::from(v4) & (u32::MAX << (32 - address.prefix_len));
    let host = if network + 1 == u32::from(v4) { network + 2 } else { network + 1 };
    (address.address, IpAddr::V4(host.into()))
}

#[test]
fn status_json_lists_the_adapters_windows_reports() {
    let (v, status) = json(&["status", "--json"]);
    assert!(status.success());
    let reported = netreach::Monitor::new().unwrap().snapshot();
    let listed: Vec<(u64, String)> = v["interfaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["index"].as_u64().unwrap(), i["name"].as_str().unwrap().to_owned()))
        .collect();
    let expected: Vec<(u64, String)> =
        reported.interfaces.iter().map(|i| (u64::from(i.index), i.name.clone())).collect();
    assert!(!expected.is_empty());
    assert_eq!(listed, expected);
    for (printed, interface) in v["interfaces"].as_array().unwrap().iter().zip(&reported.interfaces) {
        let addresses: Vec<&str> =
            printed["addresses"].as_array().unwrap().iter().map(|a| a["address"].as_str().unwrap()).collect();
        let own: Vec<String> = interface.addresses.iter().map(|a| a.address.to_string()).collect();
        assert_eq!(addresses, own, "{}", interface.name);
    }
    assert_eq!(v["default_routes"].as_array().unwrap().len(), reported.default_routes.len());
    // Windows' verdict is there and decides.
    let windows = v["verdicts"].as_array().unwrap().iter().find(|v| v["source"] == "windows").expect("NLM verdict");
    assert!(windows["ipv4"].is_string() && windows["ipv6"].is_string(), "{windows}");
    assert_eq!(v["reachability"], serde_json::to_value(reported.reachability.overall).unwrap());
}

#[test]
fn check_answers_for_a_path() {
    let state = netreach::Monitor::new().unwrap().snapshot();
    let (local, remote) = path_ends(&state);
    let (v, status) = json(&["check", "--json", &local.to_string(), &remote.to_string()]);
    assert_eq!(v["reachable"], true, "{v}");
    assert_eq!(v["same_subnet"], true);
    assert!(status.success());
    // Bad input: exit 2, with the reason.
    let out = netreach().args(["check", "192.0.2.250", "127.0.0.1"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("loopback"));
}

#[test]
fn watch_prints_the_baseline_first() {
    let mut child = netreach().args(["watch", "--json"]).stdout(Stdio::piped()).spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
    assert_eq!(v["type"], "baseline");
    assert!(!v["state"]["interfaces"].as_array().unwrap().is_empty());
}
