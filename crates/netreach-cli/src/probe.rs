//! `netreach probe`: one connectivity probe now; and the probe options of status/watch/wait.

use std::fmt::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use netreach::probe::{Endpoint, FamilyProbe, Outcome, ProbeConfig};
use netreach::Family;

use crate::terminal::Lines;
use crate::{output, Common, Failure};

/// Which endpoints to probe and how long to give them.
#[derive(Args, Clone)]
pub(crate) struct Target {
    /// Probe this plain-http URL instead of the default endpoints (repeatable: tried in order).
    #[arg(long = "url", value_name = "URL")]
    urls: Vec<String>,
    /// The HTTP status that means online, for --url.
    #[arg(long, value_name = "N", default_value_t = 204, requires = "urls")]
    expect_status: u16,
    /// The body must start with this text, for --url ("" = empty body); any body if not given.
    #[arg(long, value_name = "TEXT", requires = "urls")]
    expect_body: Option<String>,
    /// Bound on each endpoint's whole probe, e.g. 3s (default 10s; also caps DNS and connect).
    /// At most 365 days; 0 is refused.
    #[arg(long = "probe-timeout", value_name = "DURATION", value_parser = crate::duration::parse_positive)]
    probe_timeout: Option<Duration>,
}

impl Target {
    /// `--probe-timeout`, when given.
    pub(crate) fn timeout(&self) -> Option<Duration> {
        self.probe_timeout
    }

    /// The probe settings these options ask for; a bad URL is an `InvalidInput` error.
    pub(crate) fn config(&self) -> Result<ProbeConfig, netreach::Error> {
        let mut config = ProbeConfig::new();
        if !self.urls.is_empty() {
            let endpoint = |url: &String| {
                let e = Endpoint::new(url)?.expect_status(self.expect_status);
                Ok::<_, netreach::Error>(match &self.expect_body {
                    Some(body) => e.expect_body(body.clone()),
                    None => e,
                })
            };
            config = config.endpoints(self.urls.iter().map(endpoint).collect::<Result<_, _>>()?);
        }
        if let Some(t) = self.probe_timeout {
            config = config.total_timeout(t).connect_timeout(t).dns_timeout(t);
        }
        Ok(config)
    }
}

/// `--probe` and its endpoint options, for commands that run a monitor.
#[derive(Args, Clone)]
pub(crate) struct Switch {
    /// Also run the connectivity probe (plain HTTP to the default endpoints or --url) and use
    /// its verdict; `status --probe` also has the kernel re-verify the route's gateways (ARP or
    /// neighbour solicitations). Off unless given: without it nothing is sent on the network.
    #[arg(long)]
    probe: bool,
    #[command(flatten)]
    target: Target,
}

impl Switch {
    pub(crate) fn enabled(&self) -> bool {
        self.probe
    }

    /// The endpoints given with --url (empty: the default ones, which are host names).
    pub(crate) fn urls(&self) -> &[String] {
        &self.target.urls
    }

    /// Options that mean nothing without --probe are a command-line mistake (exit 2), in
    /// every command that has --probe (status, watch, wait). --expect-status and --expect-body
    /// require --url, so they are covered by it.
    pub(crate) fn validate(&self) -> Result<(), String> {
        if !self.probe && !self.target.urls.is_empty() {
            return Err("--url applies to the probe: add --probe".into());
        }
        if !self.probe && self.target.probe_timeout.is_some() {
            return Err("--probe-timeout applies to the probe: add --probe".into());
        }
        Ok(())
    }

    /// Adds the probe to `builder` when --probe was given.
    pub(crate) fn apply(&self, builder: netreach::MonitorBuilder) -> Result<netreach::MonitorBuilder, netreach::Error> {
        Ok(if self.probe { builder.probe(self.target.config()?) } else { builder })
    }
}

#[derive(Args)]
pub(crate) struct ProbeArgs {
    /// Probe only this family: 4 or 6 (default both).
    #[arg(long, value_name = "4|6", value_parser = ["4", "6"])]
    family: Option<String>,
    #[command(flatten)]
    target: Target,
    #[command(flatten)]
    common: Common,
}

pub(crate) fn run(args: &ProbeArgs) -> Result<ExitCode, Failure> {
    let families = match args.family.as_deref() {
        Some("4") => vec![Family::Ipv4],
        Some(_) => vec![Family::Ipv6],
        None => vec![Family::Ipv4, Family::Ipv6],
    };
    let results = netreach::probe::run(&args.target.config()?, &families, args.common.netns().as_ref())?;
    let text = if args.common.json {
        serde_json::to_string(&results).map_err(|e| e.to_string())? + "\n"
    } else {
        let mut lines = Lines::default();
        results.iter().for_each(|r| lines.push(line(r)));
        lines.escaped()
    };
    output::write_lines(&mut std::io::stdout().lock(), text.as_bytes())?;
    Ok(if online(&results) { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// Online: some family answered as expected and none met a captive portal.
fn online(results: &[FamilyProbe]) -> bool {
    results.iter().any(|r| r.outcome == Outcome::Online)
        && !results.iter().any(|r| matches!(r.outcome, Outcome::CaptivePortal { .. }))
}

/// e.g. `ipv4: online via http://192.0.2.1:8080/ at 192.0.2.1:8080 (connect 0.2 ms, first byte
/// 0.3 ms, total 0.6 ms)`.
pub(crate) fn line(r: &FamilyProbe) -> String {
    let mut s = format!("{}: {}", r.family, r.outcome);
    if let Some(endpoint) = &r.endpoint {
        let _ = write!(s, " via {endpoint}");
    }
    if let Some(address) = r.address {
        let _ = write!(s, " at {address}");
    }
    if !matches!(r.outcome, Outcome::NotProbed { .. }) {
        let ms = |d: Duration| format!("{:.1} ms", d.as_secs_f64() * 1000.0);
        let t = &r.timings;
        let parts: Vec<String> =
            [("dns", t.dns), ("connect", t.connect), ("first byte", t.first_byte), ("total", Some(t.total))]
                .into_iter()
                .filter_map(|(name, d)| d.map(|d| format!("{name} {}", ms(d))))
                .collect();
        let _ = write!(s, " ({})", parts.join(", "));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(family: Family, outcome: Outcome) -> FamilyProbe {
        FamilyProbe { family, outcome, endpoint: None, address: None, timings: Default::default() }
    }

    #[test]
    fn exit_rule() {
        let on = result(Family::Ipv4, Outcome::Online);
        let portal = result(Family::Ipv6, Outcome::CaptivePortal { url: None });
        let down = result(Family::Ipv6, Outcome::Limited { reason: "refused".into() });
        assert!(online(&[on.clone(), down.clone()]));
        assert!(!online(&[on, portal]));
        assert!(!online(&[down]));
    }

    #[test]
    fn lines_name_verdict_endpoint_and_timings() {
        let mut r = result(Family::Ipv4, Outcome::CaptivePortal { url: Some("http://portal.test/".into()) });
        r.endpoint = Some("http://192.0.2.1:8080/".into());
        r.timings.total = Duration::from_micros(1500);
        assert_eq!(line(&r), "ipv4: captive portal (http://portal.test/) via http://192.0.2.1:8080/ (total 1.5 ms)");
    }
}
