//! Benchmark for `netreach exporter --all-netns` (prints figures; not a timed test).
//!
//! `cargo run --release -p netreach-bench --bin exporter [-- --quick] [-- --namespaces N]`
//!
//! One exporter follows N namespaces (default 200), bind-mounted into a directory of the
//! benchmark's own as a container runtime keeps them. Printed: the exporter's RSS; scrape
//! time p50/p99, paired with node_exporter's own scrape (its default collectors) in the same
//! run, alternating; the time from a change in one namespace to the scrape that shows it;
//! context switches of every exporter thread during an idle window (60 s, 20 s with
//! --quick), beside node_exporter's in the same window; the release binary's size stripped.
//! Everything runs in a namespace of its own, on its loopback.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use testns::NetNs;

const EXPORTER_PORT: u16 = 9986;
const NODE_EXPORTER_PORT: u16 = 9100;

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A namespace bind-mounted into the benchmark's directory; unmounted (lazily, as `ip netns
/// del` does) and deleted when dropped.
struct Mounted {
    file: PathBuf,
    _ns: NetNs,
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.file).status();
        let _ = std::fs::remove_file(&self.file);
    }
}

fn mounted(dir: &Path, i: usize) -> Mounted {
    let ns = NetNs::new("bench-exp");
    ns.ip_batch("link add va type veth peer name vb\nlink set va up\nlink set vb up\naddr add 192.0.2.10/24 dev va\nroute add default via 192.0.2.1\n");
    let file = dir.join(format!("ns{i:04}"));
    std::fs::File::create(&file).expect("namespace file");
    let ok = Command::new("mount").arg("--bind").arg(ns.path()).arg(&file).status().map(|s| s.success());
    assert_eq!(ok.ok(), Some(true), "mount --bind {}", file.display());
    Mounted { file, _ns: ns }
}

fn spawn_in(ns: &NetNs, program: &Path, args: &[&str]) -> Running {
    let child = Command::new("nsenter")
        .arg(format!("--net={}", ns.path().display()))
        .arg("--")
        .arg(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", program.display()));
    Running(child)
}

/// One GET of /metrics on the loopback of the namespace this thread is in: (time, body).
fn scrape(port: u16) -> Result<(Duration, String), String> {
    let started = Instant::now();
    let mut stream = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    stream.set_read_timeout(Some(Duration::from_secs(10))).map_err(|e| e.to_string())?;
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut response = Vec::with_capacity(1 << 20);
    stream.read_to_end(&mut response).map_err(|e| e.to_string())?;
    let elapsed = started.elapsed();
    Ok((elapsed, String::from_utf8_lossy(&response).into_owned()))
}

fn percentile(sorted: &[Duration], p: usize) -> Duration {
    sorted[((sorted.len() * p).div_ceil(100)).saturating_sub(1).min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// Context switches of all threads of `pid` (voluntary + involuntary): each is a wake-up.
fn switches(pid: u32) -> u64 {
    let (follower, others) = switches_split(pid);
    follower + others
}

/// Context switches of the namespace follower thread, and of all the others. The follower
/// wakes on every mount-table change of the host (any `ip netns add/del`, by anyone).
fn switches_split(pid: u32) -> (u64, u64) {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return (0, 0) };
    let (mut follower, mut others) = (0, 0);
    for task in tasks.flatten() {
        let Ok(status) = std::fs::read_to_string(task.path().join("status")) else { continue };
        let count: u64 = status
            .lines()
            .filter(|l| l.contains("ctxt_switches"))
            .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            .sum();
        let name = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if name.trim() == "netns-follow" {
            follower += count;
        } else {
            others += count;
        }
    }
    (follower, others)
}

/// Mount-table changes of this mount namespace during `window`, counted by a thread that
/// waits on /proc/self/mountinfo like the follower does.
fn count_mount_changes(window: Duration) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        use std::os::fd::AsFd;
        let Ok(mounts) = std::fs::File::open("/proc/self/mountinfo") else { return 0 };
        let deadline = Instant::now() + window;
        let mut changes = 0;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return changes;
            }
            let mut fds = [PollFd::new(mounts.as_fd(), PollFlags::POLLPRI)];
            let timeout = PollTimeout::try_from(left.as_millis().min(60_000) as i32).unwrap_or(PollTimeout::NONE);
            if matches!(poll(&mut fds, timeout), Ok(n) if n > 0) {
                changes += 1;
            }
        }
    })
}

fn status_field(pid: u32, field: &str) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field).map(|v| v.trim().to_owned()))
        .unwrap_or_default()
}

fn build_cli() -> PathBuf {
    let exe = std::env::current_exe().expect("this binary");
    let target = exe.parent().and_then(Path::parent).expect("target directory").to_owned();
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../Cargo.toml");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    eprintln!("building the netreach CLI (cargo build --release -p netreach-cli)");
    let ok = Command::new(cargo)
        .args(["build", "--release", "--quiet", "-p", "netreach-cli", "--manifest-path"])
        .arg(&manifest)
        .env("CARGO_TARGET_DIR", &target)
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "building the netreach CLI failed");
    target.join("release").join("netreach")
}

fn stripped_size(binary: &Path) -> Option<u64> {
    let copy = std::env::temp_dir().join(format!("netreach-stripped-{}", std::process::id()));
    let ok = Command::new("strip").arg("-o").arg(&copy).arg(binary).status().is_ok_and(|s| s.success());
    let size = ok.then(|| std::fs::metadata(&copy).map(|m| m.len()).ok()).flatten();
    let _ = std::fs::remove_file(&copy);
    size
}

fn main() {
    if !testns::require_root("exporter benchmark") {
        std::process::exit(1);
    }
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let namespaces: usize =
        args.iter().position(|a| a == "--namespaces").and_then(|i| args.get(i + 1)?.parse().ok()).unwrap_or(200);
    let (idle, scrapes) = if quick { (Duration::from_secs(20), 200) } else { (Duration::from_secs(60), 1000) };
    let netreach = build_cli();

    let host = testns::uplinks("bench-exp-host");
    let dir = std::env::temp_dir().join(format!("netreach-bench-exporter-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("directory");
    eprintln!("creating {namespaces} namespaces");
    let spaces: Vec<Mounted> = (0..namespaces).map(|i| mounted(&dir, i)).collect();

    let dir_arg = dir.display().to_string();
    let started = Instant::now();
    let exporter = spawn_in(&host, &netreach, &["exporter", "--all-netns", "--netns-dir", &dir_arg]);
    let node = spawn_in(
        &host,
        Path::new("/usr/bin/prometheus-node-exporter"),
        &[&format!("--web.listen-address=127.0.0.1:{NODE_EXPORTER_PORT}")],
    );
    let (exporter_pid, node_pid) = (exporter.0.id(), node.0.id());
    let want = namespaces + 1;
    let ready = host.run_inside(|| {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let up = scrape(EXPORTER_PORT)
                .map(|(_, b)| b.lines().filter(|l| l.starts_with("netreach_up{") && l.ends_with(" 1")).count());
            let node = scrape(NODE_EXPORTER_PORT).map(drop);
            if up == Ok(want) && node.is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("exporter: {up:?} namespaces up of {want}; node_exporter: {node:?}"));
            }
            std::thread::sleep(Duration::from_millis(20)); // no event says "serving": poll, bounded
        }
    });
    if let Err(e) = ready {
        panic!("not ready within 120 s: {e}");
    }
    let start_time = started.elapsed();

    // Scrapes, alternating with node_exporter's (paired: a slow moment hits both).
    let (mut ours, mut theirs, mut size) = (Vec::new(), Vec::new(), (0, 0));
    host.run_inside(|| {
        for _ in 0..scrapes {
            let (t, body) = scrape(EXPORTER_PORT).expect("scrape the exporter");
            ours.push(t);
            size.0 = body.len();
            let (t, body) = scrape(NODE_EXPORTER_PORT).expect("scrape node_exporter");
            theirs.push(t);
            size.1 = body.len();
        }
    });
    ours.sort();
    theirs.sort();

    // A change in one namespace -> the first scrape that shows it.
    let victim = &spaces[namespaces / 2];
    let label = victim.file.file_name().unwrap().to_string_lossy().into_owned();
    let series = format!("netreach_online{{netns=\"{label}\",family=\"ipv4\"}} 0");
    let flipped = Instant::now();
    let ok = Command::new("nsenter")
        .arg(format!("--net={}", victim.file.display()))
        .args(["ip", "link", "set", "vb", "down"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "link down in {label}");
    let visible = host.run_inside(|| {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if scrape(EXPORTER_PORT).is_ok_and(|(_, b)| b.contains(&series)) {
                return Some(flipped.elapsed());
            }
        }
        None
    });

    // Idle: nothing changes; count every wake-up of every thread. First the kernel settles
    // (the link-down just made, duplicate address detection in fresh namespaces): the window
    // starts once the exporter has not been scheduled for a whole second (at most 60 s).
    let settling = Instant::now();
    loop {
        let before = switches_split(exporter_pid).1;
        std::thread::sleep(Duration::from_secs(1)); // a measured quiet second
        if switches_split(exporter_pid).1 == before || settling.elapsed() > Duration::from_secs(60) {
            break;
        }
    }
    let settled = settling.elapsed();
    let rss = status_field(exporter_pid, "VmRSS:");
    let threads = status_field(exporter_pid, "Threads:");
    let (ours_before, theirs_before) = (switches_split(exporter_pid), switches(node_pid));
    let mount_changes = count_mount_changes(idle);
    std::thread::sleep(idle); // the measured window
    let ours_after = switches_split(exporter_pid);
    let (follower_idle, ours_idle) = (ours_after.0 - ours_before.0, ours_after.1 - ours_before.1);
    let theirs_idle = switches(node_pid) - theirs_before;
    let mount_changes = mount_changes.join().unwrap_or(0);

    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load: Vec<&str> = load.split_whitespace().take(3).collect();
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("## netreach exporter, {namespaces} namespaces (+ its own) in one process\n");
    println!(
        "Command: `cargo run --release -p netreach-bench --bin exporter{}`; nproc {cpus}, load {} (1/5/15 min)\n",
        if quick { " -- --quick" } else { "" },
        load.join(" ")
    );
    println!("| figure | netreach exporter | node_exporter (same run) | goal |");
    println!("| --- | --- | --- | --- |");
    println!("| start until every namespace is up | {} | | |", ms(start_time));
    println!("| RSS | {rss} ({threads} threads) | {} | <= 32 MiB |", status_field(node_pid, "VmRSS:"));
    println!("| exposition size | {} bytes | {} bytes | |", size.0, size.1);
    println!(
        "| scrape p50 / p99 ({scrapes} each, alternating) | {} / {} | {} / {} | p99 <= 5 ms |",
        ms(percentile(&ours, 50)),
        ms(percentile(&ours, 99)),
        ms(percentile(&theirs, 50)),
        ms(percentile(&theirs, 99))
    );
    println!(
        "| change -> first scrape showing it | {} | | next scrape |",
        visible.map_or_else(|| "not seen in 10 s".to_owned(), ms)
    );
    println!(
        "| wake-ups in {} s idle, all threads but the follower (after {:.0} s settling) | {ours_idle} | {theirs_idle} (all) | 0 |",
        idle.as_secs(),
        settled.as_secs_f64()
    );
    println!(
        "| wake-ups of the namespace follower in that window / host mount-table changes in it | {follower_idle} / {mount_changes} | | one per change |"
    );
    match (stripped_size(&netreach), std::fs::metadata(&netreach).map(|m| m.len())) {
        (Some(stripped), Ok(full)) => println!(
            "| release binary, stripped (unstripped) | {:.2} MiB ({:.2} MiB) | | <= 4 MiB |",
            stripped as f64 / 1048576.0,
            full as f64 / 1048576.0
        ),
        _ => println!("| release binary, stripped | strip failed | | <= 4 MiB |"),
    }
    // The Debian package's binary: the dist profile (fat LTO, stripped), when scripts/deb built it.
    let dist = netreach.parent().and_then(Path::parent).map(|t| t.join("dist").join("netreach"));
    if let Some(size) = dist.and_then(|d| std::fs::metadata(d).ok()).map(|m| m.len()) {
        println!(
            "| packaged binary (`--profile dist`, target/dist/netreach) | {:.2} MiB | | <= 4 MiB |",
            size as f64 / 1048576.0
        );
    }
    drop((exporter, node));
    drop(spaces);
    let _ = std::fs::remove_dir_all(&dir);
}
