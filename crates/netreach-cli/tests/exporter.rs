//! `netreach exporter` against the real kernel, a real Prometheus server and a real
//! node_exporter, all inside network namespaces the tests create: every listener and every
//! scrape is on a namespace's own loopback, nothing touches the host's interfaces.
#![cfg(target_os = "linux")]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use testns::{wait_until, NetNs};

/// Prometheus scrapes every second; a change shows within a few scrapes even on a loaded
/// machine.
const PROMETHEUS_WAIT: Duration = Duration::from_secs(40);

fn netreach() -> &'static str {
    env!("CARGO_BIN_EXE_netreach")
}

/// A child process killed and reaped when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs `program args` with its network namespace switched to `ns` (its mount namespace
/// stays ours, so it sees the namespace files the test mounts).
fn spawn_in(ns: &NetNs, program: &str, args: &[&str]) -> Running {
    let net = format!("--net={}", ns.path().display());
    let child = Command::new("nsenter")
        .arg(net)
        .arg("--")
        .arg(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {program}: {e}"));
    Running(child)
}

/// A temporary directory removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("netreach-exporter-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A namespace bind-mounted into a directory of our own, as a container runtime keeps them.
struct Mounted {
    file: PathBuf,
    ns: NetNs,
}

impl Mounted {
    fn new(dir: &Path, tag: &str, name: &str) -> Mounted {
        let ns = NetNs::new(tag);
        ns.veth("va", "vb");
        ns.ip("addr add 192.0.2.10/24 dev va");
        ns.ip("route add default via 192.0.2.1");
        let file = dir.join(name);
        std::fs::File::create(&file).unwrap();
        let ok = Command::new("mount").arg("--bind").arg(ns.path()).arg(&file).status().unwrap().success();
        assert!(ok, "mount --bind {} {}", ns.path().display(), file.display());
        Mounted { file, ns }
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        // Lazily, as `ip netns del` does: a monitor holding the namespace open keeps it busy.
        let _ = Command::new("umount").arg("-l").arg(&self.file).status();
        let _ = std::fs::remove_file(&self.file);
    }
}

/// One HTTP GET on the namespace's loopback: (status code, body).
fn get(ns: &NetNs, port: u16, target: &str, accept: Option<&str>) -> Result<(u16, String), String> {
    let request = format!(
        "GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n{}Connection: close\r\n\r\n",
        accept.map(|a| format!("Accept: {a}\r\n")).unwrap_or_default()
    );
    ns.run_inside(move || {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
        stream.set_read_timeout(Some(Duration::from_secs(10))).map_err(|e| e.to_string())?;
        stream.write_all(request.as_bytes()).map_err(|e| e.to_string())?;
        let mut response = String::new();
        stream.read_to_string(&mut response).map_err(|e| e.to_string())?;
        let (head, body) = response.split_once("\r\n\r\n").ok_or("no header end")?;
        let code = head.split(' ').nth(1).and_then(|c| c.parse().ok()).ok_or("no status")?;
        Ok((code, body.to_owned()))
    })
}

/// A sample's value in a Prometheus text exposition, by its whole series text.
fn sample(body: &str, series: &str) -> Option<String> {
    body.lines().find_map(|l| l.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')).map(str::to_owned))
}

fn promtool_check_metrics(body: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus)");
    child.stdin.take().unwrap().write_all(body.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && said.trim().is_empty(), "promtool check metrics: {said}\n{body}");
}

/// Context switches of each thread of `pid`, by thread id and name.
fn switches(pid: u32) -> BTreeMap<String, u64> {
    let mut all = BTreeMap::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap().flatten() {
        let Ok(status) = std::fs::read_to_string(task.path().join("status")) else { continue };
        let count: u64 = status
            .lines()
            .filter(|l| l.starts_with("voluntary_ctxt_switches") || l.starts_with("nonvoluntary_ctxt_switches"))
            .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            .sum();
        let name = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        all.insert(format!("{} {}", task.file_name().to_string_lossy(), name.trim()), count);
    }
    all
}

#[test]
fn metrics_follow_the_kernel_and_pass_promtool_and_idle_costs_nothing() {
    testns::skip_unless_root!();
    let ns = testns::uplinks("exp-http");
    let _exporter = spawn_in(&ns, netreach(), &["exporter", "--path", "up=192.0.2.10,203.0.113.1"]);
    let port = 9986; // the default address, on the namespace's own loopback
    let scrape = || get(&ns, port, "/metrics", None);
    wait_until(testns::kit::TIMEOUT, "the exporter to answer", || scrape().is_ok());
    let (code, body) = scrape().unwrap();
    assert_eq!(code, 200);
    assert_eq!(sample(&body, r#"netreach_online{netns="",family="ipv4"}"#).as_deref(), Some("1"), "{body}");
    assert_eq!(sample(&body, r#"netreach_interface_carrier{netns="",device="va"}"#).as_deref(), Some("1"));
    let path =
        r#"netreach_path_reachable{netns="",path="up",local="192.0.2.10",remote="203.0.113.1",device="va",reason=""}"#;
    assert_eq!(sample(&body, path).as_deref(), Some("1"), "{body}");
    assert!(body.contains(r#"netreach_default_route_info{netns="",family="ipv4",device="va",gateway="192.0.2.1",metric="0",table="254"} 1"#));
    promtool_check_metrics(&body);

    // OpenMetrics when asked for; 404 and 405 for the rest.
    let (_, om) = get(&ns, port, "/metrics", Some("application/openmetrics-text; version=1.0.0")).unwrap();
    assert!(om.ends_with("# EOF\n") && om.contains("# TYPE netreach_reachability stateset"), "{om}");
    assert_eq!(get(&ns, port, "/nothing", None).unwrap().0, 404);

    // Zero wake-ups while nothing changes: no thread of the exporter runs for two seconds,
    // once the kernel itself is quiet (duplicate address detection of link-local addresses
    // ends with an address event).
    wait_until(testns::kit::TIMEOUT, "no tentative address", || ns.ip("addr show tentative").trim().is_empty());
    let pid = _exporter.0.id();
    let before = switches(pid);
    std::thread::sleep(Duration::from_secs(2)); // the measured window, not a synchronisation
    let after = switches(pid);
    assert_eq!(before, after, "threads woke up while idle (context switches per thread)");

    // The carrier goes: the next scrape says so, the path with its reason.
    ns.ip("link set vb down");
    let down = r#"netreach_path_reachable{netns="",path="up",local="192.0.2.10",remote="203.0.113.1",device="va",reason="no_carrier"} 0"#;
    wait_until(testns::kit::TIMEOUT, "ipv4 offline and the path down", || {
        let body = scrape().unwrap().1;
        sample(&body, r#"netreach_online{netns="",family="ipv4"}"#).as_deref() == Some("0") && body.contains(down)
    });
    let body = scrape().unwrap().1;
    assert_eq!(sample(&body, r#"netreach_interface_carrier{netns="",device="va"}"#).as_deref(), Some("0"));
    let changes: u64 =
        sample(&body, r#"netreach_reachability_changes_total{netns="",family="ipv4"}"#).unwrap().parse().unwrap();
    assert!(changes >= 1, "{body}");
    promtool_check_metrics(&body);
}

#[test]
fn probe_metrics_are_named_like_blackbox_exporters() {
    testns::skip_unless_root!();
    use testns::http::{client_server, Reply, Server, SERVER_V4};
    let (client, server) = client_server("exp-probe");
    let _ok = Server::start(&server, &format!("{SERVER_V4}:8080"), Reply::text("HTTP/1.1 204 No Content\r\n\r\n"));
    let url = format!("http://{SERVER_V4}:8080/");
    let _exporter = spawn_in(&client, netreach(), &["exporter", "--probe", "--url", &url]);
    let scrape = || get(&client, 9986, "/metrics", None).map(|(_, body)| body).unwrap_or_default();
    let family = r#"{netns="",family="ipv4"}"#;
    wait_until(testns::kit::TIMEOUT, "a probe round in the metrics", || {
        sample(&scrape(), &format!("probe_duration_seconds{family}")).is_some()
    });
    let body = scrape();
    assert_eq!(sample(&body, &format!("probe_success{family}")).as_deref(), Some("1"), "{body}");
    let seconds = |series: &str| sample(&body, series).and_then(|v| v.parse::<f64>().ok());
    let total = seconds(&format!("probe_duration_seconds{family}")).expect("a duration");
    for phase in ["connect", "processing"] {
        let took = seconds(&format!(r#"probe_http_duration_seconds{{netns="",family="ipv4",phase="{phase}"}}"#));
        assert!(took.is_some_and(|t| t > 0.0 && t <= total), "{phase} in {body}");
    }
    // An address URL resolves no name: no resolve phase, no DNS lookup time.
    assert!(!body.contains(r#"phase="resolve""#) && !body.contains("probe_dns_lookup_time_seconds{"), "{body}");
    promtool_check_metrics(&body);
}

#[test]
fn bad_input_exits_2_with_a_clear_message() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port().to_string();
    let dir = TempDir::new("bad");
    let missing = dir.0.join("missing");
    let cases: Vec<(Vec<String>, String)> = vec![
        (vec!["--listen".into(), format!("127.0.0.1:{port}")], "cannot listen on 127.0.0.1:".into()),
        // A documentation address no interface here has.
        (vec!["--listen".into(), "192.0.2.254:9986".into()], "cannot listen on 192.0.2.254:9986".into()),
        (vec!["--listen".into(), "localhost".into()], "invalid value 'localhost'".into()),
        (vec!["--textfile".into(), missing.join("x.prom").display().to_string()], "missing".into()),
        (
            vec!["--all-netns".into(), "--netns-dir".into(), missing.display().to_string()],
            format!("--netns-dir {}", missing.display()),
        ),
        (
            vec!["--all-netns".into(), "--netns-dir".into(), "/etc/passwd".into()],
            "--netns-dir /etc/passwd: Not a directory".into(),
        ),
        (vec!["--path".into(), "up=192.0.2.10".into()], "NAME=LOCAL,REMOTE".into()),
        (vec!["--url".into(), "http://192.0.2.1/".into()], "add --probe".into()),
    ];
    for (args, expected) in cases {
        let out = Command::new(netreach()).arg("exporter").args(&args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(&expected), "{args:?}: {stderr}");
    }
    drop(busy);
}

/// Percent-encodes a PromQL expression for a query string.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}

/// The values of an instant PromQL query, one per series.
fn query(ns: &NetNs, expr: &str) -> Vec<String> {
    let Ok((200, body)) = get(ns, 9090, &format!("/api/v1/query?query={}", encode(expr)), None) else {
        return Vec::new();
    };
    let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    v["data"]["result"]
        .as_array()
        .map(|r| r.iter().filter_map(|s| s["value"][1].as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

fn wait_for(ns: &NetNs, expr: &str, want: &[&str]) {
    let deadline = std::time::Instant::now() + PROMETHEUS_WAIT;
    loop {
        if query(ns, expr) == want {
            return;
        }
        if std::time::Instant::now() > deadline {
            let family = expr.split('{').next().unwrap_or(expr);
            let all = get(ns, 9090, &format!("/api/v1/query?query={}", encode(family)), None);
            panic!("timed out after {PROMETHEUS_WAIT:?} waiting for {expr} to be {want:?}; {family} is {all:?}");
        }
        // Prometheus answers from its scrapes, once a second: asking more often is pointless.
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn prometheus_sees_every_namespace_change() {
    testns::skip_unless_root!();
    // The exporter's own namespace ("host" here), with a path to watch.
    let host = testns::uplinks("exp-prom");
    let dir = TempDir::new("prom");
    let spaces = dir.0.join("netns");
    std::fs::create_dir(&spaces).unwrap();
    let a = Mounted::new(&spaces, "exp-a", "alpha");
    let b = Mounted::new(&spaces, "exp-b", "beta");
    let spaces_arg = spaces.display().to_string();
    let _exporter = spawn_in(
        &host,
        netreach(),
        &["exporter", "--all-netns", "--netns-dir", &spaces_arg, "--path", "up=192.0.2.10,203.0.113.1"],
    );
    let config = dir.0.join("prometheus.yml");
    std::fs::write(
        &config,
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: netreach\n    \
         static_configs:\n      - targets: ['127.0.0.1:9986']\n",
    )
    .unwrap();
    let data = dir.0.join("data");
    let (config_arg, data_arg) =
        (format!("--config.file={}", config.display()), format!("--storage.tsdb.path={}", data.display()));
    let _prometheus = spawn_in(&host, "prometheus", &[&config_arg, &data_arg, "--web.listen-address=127.0.0.1:9090"]);

    wait_for(&host, r#"netreach_online{netns="alpha",family="ipv4"}"#, &["1"]);
    wait_for(&host, r#"netreach_online{netns="beta",family="ipv4"}"#, &["1"]);
    wait_for(&host, r#"netreach_path_reachable{netns="",path="up",reason=""}"#, &["1"]);

    // alpha's link goes down and comes back: 1 -> 0 -> 1 for alpha's IPv4 only.
    a.ns.ip("link set va down");
    wait_for(&host, r#"netreach_online{netns="alpha",family="ipv4"}"#, &["0"]);
    assert_eq!(query(&host, r#"netreach_online{netns="beta",family="ipv4"}"#), ["1"]);
    a.ns.ip("link set va up");
    a.ns.ip("route add default via 192.0.2.1");
    wait_for(&host, r#"netreach_online{netns="alpha",family="ipv4"}"#, &["1"]);

    // The path's series flips, with its reason.
    host.ip("link set va down");
    wait_for(&host, r#"netreach_path_reachable{netns="",path="up",reason="interface_down"}"#, &["0"]);
    wait_for(&host, r#"netreach_path_reachable{netns="",path="up",reason=""}"#, &[]);
    host.ip("link set va up");
    host.ip("route add default via 192.0.2.1"); // the kernel flushed it with the link
    wait_for(&host, r#"netreach_path_reachable{netns="",path="up",reason=""}"#, &["1"]);

    // A namespace made mid-run appears; a deleted one goes stale.
    let c = Mounted::new(&spaces, "exp-c", "gamma");
    wait_for(&host, r#"netreach_online{netns="gamma",family="ipv4"}"#, &["1"]);
    drop(b);
    wait_for(&host, r#"netreach_up{netns="beta"}"#, &[]);
    assert_eq!(query(&host, r#"netreach_up{netns="alpha"}"#), ["1"]);
    drop(c);
}

#[test]
fn node_exporter_serves_the_textfile() {
    testns::skip_unless_root!();
    let ns = testns::uplinks("exp-text");
    let dir = TempDir::new("text");
    let file = dir.0.join("netreach.prom");
    let file_arg = file.display().to_string();
    let _exporter = spawn_in(&ns, netreach(), &["exporter", "--textfile", &file_arg]);
    let dir_arg = format!("--collector.textfile.directory={}", dir.0.display());
    let _node = spawn_in(
        &ns,
        "prometheus-node-exporter",
        &["--collector.disable-defaults", "--collector.textfile", &dir_arg, "--web.listen-address=127.0.0.1:9100"],
    );
    let metric = |body: &str| sample(body, r#"netreach_online{family="ipv4",netns=""}"#);
    let scrape = || get(&ns, 9100, "/metrics", None).map(|(_, body)| body).unwrap_or_default();
    wait_until(testns::kit::TIMEOUT, "node_exporter to serve netreach_online 1", || {
        metric(&scrape()).as_deref() == Some("1")
    });
    assert_eq!(sample(&scrape(), "node_textfile_scrape_error").as_deref(), Some("0"));
    ns.ip("link set vb down");
    wait_until(testns::kit::TIMEOUT, "node_exporter to serve netreach_online 0", || {
        metric(&scrape()).as_deref() == Some("0")
    });
    // The file itself is a valid exposition (it is replaced whole, never written in place).
    promtool_check_metrics(&std::fs::read_to_string(&file).unwrap());
}

#[test]
fn a_namespace_that_cannot_be_used_is_a_metric_and_a_log_line() {
    testns::skip_unless_root!();
    let host = testns::uplinks("exp-bad-ns");
    let dir = TempDir::new("bad-ns");
    let spaces = dir.0.join("netns");
    std::fs::create_dir(&spaces).unwrap();
    let good = Mounted::new(&spaces, "exp-good", "good");
    // A uts namespace mounted among the network namespaces: on nsfs, but not a network one.
    let uts = spaces.join("uts");
    std::fs::File::create(&uts).unwrap();
    assert!(Command::new("mount").args(["--bind", "/proc/self/ns/uts"]).arg(&uts).status().unwrap().success());
    let spaces_arg = spaces.display().to_string();
    let child = Command::new("nsenter")
        .arg(format!("--net={}", host.path().display()))
        .args(["--", netreach(), "exporter", "--all-netns", "--netns-dir", &spaces_arg])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut exporter = Running(child);
    let scrape = || get(&host, 9986, "/metrics", None).map(|(_, body)| body).unwrap_or_default();
    wait_until(testns::kit::TIMEOUT, "both namespaces exported", || {
        let body = scrape();
        body.contains(r#"netreach_up{netns="good"} 1"#) && body.contains(r#"netreach_up{netns="uts"} 0"#)
    });
    let body = scrape();
    let error = body.lines().find(|l| l.starts_with(r#"netreach_monitor_error_info{netns="uts",error=""#));
    assert!(error.is_some_and(|l| l.contains("network namespace")), "{body}");
    // The exporter goes on; once stopped, its stderr has the one line naming the file.
    let _ = exporter.0.kill();
    let mut stderr = String::new();
    exporter.0.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    let lines: Vec<&str> = stderr.lines().filter(|l| l.contains(&*uts.display().to_string())).collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    let _ = Command::new("umount").arg("-l").arg(&uts).status();
    drop(good);
}
