//! `netreach why [HOST]`: the layered diagnosis after the active checks, ending with one
//! sentence a person can act on.
//!
//! What it sends, said before it is sent (the plan is written and flushed first):
//! - gateway re-verification: `Monitor::check()`, which may have the kernel ask the gateways
//!   the route decision uses whether they are still there (ARP, neighbour solicitation);
//! - HOST's name lookup through the system resolver (getaddrinfo: /etc/hosts, then the
//!   nameservers), bounded by `--probe-timeout` (default 5 s); an address is not looked up;
//! - the connectivity probe (one HTTP GET per endpoint and family, the endpoints' names
//!   resolved first) over each family whose kernel level is at least `site`.
//!
//! Exit codes: 0 when no layer fails (in one family at least) and HOST resolved; 1 when a
//! layer fails, HOST did not resolve, or the monitor could not start; 2 for bad input (an
//! invalid HOST, a bad --url, a --netns that is not a network namespace).

use std::net::IpAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use netreach::probe::{FamilyProbe, ProbeConfig};
use netreach::{Family, Level, Reason, Snapshot, Update};
use serde_json::json;

use crate::terminal::Lines;
use crate::{diagnosis, output, probe, Common, Failure};

/// How long HOST's lookup may take without `--probe-timeout`.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Args)]
pub(crate) struct WhyArgs {
    /// A host name (or address) to look up through the system resolver as well.
    host: Option<String>,
    #[command(flatten)]
    target: probe::Target,
    #[command(flatten)]
    common: Common,
}

/// Whether `host` is an address or a name the resolver could be asked (RFC 1123 labels of
/// letters, digits, `-` and `_`, at most 63 bytes each and 253 in all, a final dot allowed).
pub(crate) fn check_host(host: &str) -> Result<(), String> {
    if host.parse::<IpAddr>().is_ok() {
        return Ok(());
    }
    let name = host.strip_suffix('.').unwrap_or(host);
    let why = if name.is_empty() {
        Some("it is empty".to_owned())
    } else if name.len() > 253 {
        Some("it is longer than 253 characters".to_owned())
    } else {
        name.split('.').find_map(|label| match label {
            "" => Some("it has an empty label".to_owned()),
            l if l.len() > 63 => Some(format!("the label '{l}' is longer than 63 characters")),
            l if l.starts_with('-') || l.ends_with('-') => Some(format!("the label '{l}' starts or ends with '-'")),
            l => l
                .chars()
                .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
                .map(|c| format!("'{}' is not allowed in a host name", c.escape_debug())),
        })
    };
    why.map_or(Ok(()), |why| Err(format!("invalid host '{host}': {why}")))
}

/// The gateways the route decision uses now, with their interfaces.
fn gateways(state: &Snapshot) -> Vec<(IpAddr, String)> {
    let mut out = Vec::new();
    for family in [Family::Ipv4, Family::Ipv6] {
        let Some(route) = state.reasons.family(family).and_then(Reason::route) else { continue };
        // A multipath route: every member the kernel uses is re-verified, not only the one named.
        let members = route.nexthops.iter().filter(|h| h.used()).map(|h| (h.gateway, h.interface.clone()));
        for (gateway, interface) in std::iter::once((route.gateway, route.interface.clone())).chain(members) {
            if let Some(gateway) = gateway.filter(|g| !out.iter().any(|(o, i)| o == g && *i == interface)) {
                out.push((gateway, interface));
            }
        }
    }
    out
}

/// What will be sent, in words, one item a line.
fn plan(state: &Snapshot, host: Option<&str>, config: &ProbeConfig, families: &[Family]) -> Vec<String> {
    let mut plan = Vec::new();
    for (gateway, interface) in gateways(state) {
        plan.push(format!("gateway re-verification: the kernel may ask {gateway} on {interface} whether it is there"));
    }
    if let Some(host) = host.filter(|h| h.parse::<IpAddr>().is_err()) {
        let servers = state.dns.as_ref().map(|d| {
            let list: Vec<String> = d.nameservers.iter().map(|n| n.to_string()).collect();
            format!(
                " (nameservers: {}; {})",
                if list.is_empty() { "none".into() } else { list.join(", ") },
                d.origin.file
            )
        });
        plan.push(format!("name lookup of {host} through the system resolver{}", servers.unwrap_or_default()));
    }
    if families.is_empty() {
        plan.push("no probe: no family reaches site by the kernel's reading".into());
    }
    let names: Vec<String> = families.iter().map(|f| f.to_string()).collect();
    for endpoint in config.endpoint_list().iter().filter(|_| !families.is_empty()) {
        plan.push(format!(
            "probe: HTTP GET {} over {} (its host name looked up first)",
            endpoint.url(),
            names.join(", ")
        ));
    }
    plan
}

pub(crate) fn run(args: &WhyArgs) -> Result<ExitCode, Failure> {
    if let Some(host) = &args.host {
        check_host(host).map_err(Failure::invalid_input)?;
    }
    let config = args.target.config()?;
    let monitor = args.common.reading()?; // without a probe: starting it sends nothing
    let before = monitor.snapshot();
    let kernel = netreach::derive_kernel_reachability(&before);
    let families: Vec<Family> =
        [Family::Ipv4, Family::Ipv6].into_iter().filter(|f| kernel.family(*f).reachability >= Level::Site).collect();
    let plan = plan(&before, args.host.as_deref(), &config, &families);
    let mut out = std::io::stdout().lock();
    if args.common.json {
        output::print_line(&mut out, &json!({ "will_send": plan }).to_string())?;
    } else {
        let mut lines = Lines::one("netreach why: sending now:".into());
        plan.iter().for_each(|item| lines.push(format!("  - {item}")));
        output::write_lines(&mut out, lines.escaped().as_bytes())?;
    }
    // The checks, each bounded: check() by the monitor, the lookup and the probe by their timeouts.
    let checked = monitor.check()?;
    let netns = args.common.netns();
    let looked_up = match &args.host {
        Some(host) => {
            Some(netreach::probe::resolve(host, args.target.timeout().unwrap_or(LOOKUP_TIMEOUT), netns.as_ref())?)
        }
        None => None,
    };
    let probes = netreach::probe::run(&config, &families, netns.as_ref())?;
    let mut state = checked.state().clone();
    netreach::apply(&mut state, Update::Verdict(netreach::probe::verdict(&probes)));
    let state = netreach::derive(state);
    let diagnosis = netreach::diagnose(&state);
    let first = diagnosis.first_failing();
    let host_failed = match (&args.host, &looked_up) {
        (Some(host), Some(Err(error))) => Some((host.as_str(), error.as_str())),
        _ => None,
    };
    let sentence = match (first, host_failed) {
        // A layer at or below DNS explains HOST's failure too.
        (Some((family, check)), Some(_)) if check.layer <= netreach::Layer::Dns => diagnosis::advice(family, check),
        (_, Some((host, error))) => {
            format!("{host} does not resolve ({error}): check the name, or ask who runs the nameserver")
        }
        (Some((family, check)), None) => diagnosis::advice(family, check),
        (None, None) => nothing_fails(&diagnosis),
    };
    if args.common.json {
        let host = args.host.as_ref().map(|host| match &looked_up {
            Some(Ok((addresses, took))) => {
                json!({ "name": host, "addresses": addresses, "ms": took.as_secs_f64() * 1000.0 })
            }
            Some(Err(error)) => json!({ "name": host, "error": error }),
            None => json!({ "name": host }),
        });
        let report = json!({
            "host": host,
            "probe": probes,
            "diagnosis": diagnosis,
            "first_failing_layer": first.map(|(family, check)| json!({ "family": family, "check": check })),
            "advice": sentence,
        });
        output::print_line(&mut out, &report.to_string())?;
    } else {
        let mut lines = Lines::default();
        if let (Some(host), Some(result)) = (&args.host, &looked_up) {
            lines.push(match result {
                Ok(_) if host.parse::<IpAddr>().is_ok() => format!("address {host}: not looked up"),
                Ok((addresses, took)) => {
                    let list: Vec<String> = addresses.iter().map(|a| a.to_string()).collect();
                    format!("name {host}: {} ({:.1} ms)", list.join(", "), took.as_secs_f64() * 1000.0)
                }
                Err(error) => format!("name {host}: {error}"),
            });
        }
        probes.iter().for_each(|p: &FamilyProbe| lines.push(format!("probe {}", probe::line(p))));
        lines.append(diagnosis::view(&diagnosis));
        lines.push(sentence);
        output::write_lines(&mut out, lines.escaped().as_bytes())?;
    }
    Ok(if first.is_none() && host_failed.is_none() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// The sentence when nothing fails: which family reaches the internet, or that nothing
/// netreach can see fails.
fn nothing_fails(diagnosis: &netreach::Diagnosis) -> String {
    let passed = |f: Family| {
        diagnosis.family(f).layer(netreach::Layer::Internet).is_some_and(|c| c.status == netreach::LayerStatus::Passed)
    };
    match [Family::Ipv4, Family::Ipv6].into_iter().find(|f| passed(*f)) {
        Some(family) => format!("nothing to fix: {family} reaches the internet"),
        None => "no layer fails that netreach can see (unprobed layers are unknown)".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_checked() {
        for good in ["example.test", "a", "xn--bcher-kva.test.", "_dmarc.example.test", "192.0.2.1", "2001:db8::1"] {
            assert_eq!(check_host(good), Ok(()), "{good}");
        }
        let table = [
            ("", "it is empty"),
            ("a..b", "an empty label"),
            ("-a.test", "starts or ends with '-'"),
            ("a b", "' ' is not allowed"),
            ("a\u{1b}[2J", "'\\u{1b}' is not allowed"),
            ("http://x", "':' is not allowed"),
        ];
        for (bad, says) in table {
            let e = check_host(bad).unwrap_err();
            assert!(e.starts_with(&format!("invalid host '{bad}'")) && e.contains(says), "{bad:?}: {e}");
        }
        assert!(check_host(&"a".repeat(64)).unwrap_err().contains("longer than 63"));
        assert!(check_host(&["a"; 130].join(".")).unwrap_err().contains("longer than 253"));
    }

    /// A multipath route: the plan names every used member's gateway once, not a dead one.
    #[test]
    fn the_plan_names_every_multipath_gateway() {
        use netreach::{KernelRoute, Nexthop, Reason};
        let hop = |index, interface: &str, gateway: &str, dead| Nexthop {
            interface_index: index,
            interface: interface.into(),
            gateway: Some(gateway.parse().unwrap()),
            linkdown: dead,
            dead,
        };
        let route = KernelRoute {
            prefix: "0.0.0.0".parse().unwrap(),
            prefix_len: 0,
            table: 254,
            interface_index: 2,
            interface: "va".into(),
            gateway: Some("192.0.2.1".parse().unwrap()),
            source: None,
            nexthops: vec![
                hop(2, "va", "192.0.2.1", false),
                hop(3, "wa", "198.51.100.1", false),
                hop(4, "xa", "203.0.113.1", true),
            ],
        };
        let mut state = Snapshot::default();
        state.reasons.ipv4 = Some(Reason::RoutedOut { route });
        let got: Vec<(String, String)> = gateways(&state).into_iter().map(|(g, i)| (g.to_string(), i)).collect();
        let want = [("192.0.2.1", "va"), ("198.51.100.1", "wa")].map(|(g, i)| (g.to_owned(), i.to_owned()));
        assert_eq!(got, want);
    }
}
