//! Creating and dropping monitors returns every thread and file descriptor. Alone in its own
//! test binary: it counts process-wide resources, which concurrent tests would disturb.
#![cfg(target_os = "linux")] // network namespaces; Windows: src/sys/windows/tests*.rs (under Wine)

use netreach::Monitor;
use testns::{open_fds, require_root, threads, NetNs};

#[test]
fn a_thousand_monitors_leave_no_threads_or_fds_behind() {
    // The caller's own namespace needs no root.
    let (fds, tasks) = (open_fds(), threads());
    for _ in 0..1000 {
        let monitor = Monitor::new().expect("monitor");
        let sub = monitor.subscribe();
        assert!(sub.recv().is_some(), "baseline");
        drop(monitor);
    }
    assert_eq!(open_fds(), fds, "file descriptors leaked");
    threads_back_to(tasks, "threads leaked");

    // More monitors alive at once than the default per-user budget of inotify instances
    // (fs.inotify.max_user_instances, 128): they share one, for the resolver files.
    let many: Vec<Monitor> = (0..150).map(|_| Monitor::new().expect("monitor")).collect();
    assert_eq!(inotify_instances(), 1, "one inotify instance for {} monitors", many.len());
    drop(many);
    assert_eq!(inotify_instances(), 0, "the shared instance goes with the last monitor");
    assert_eq!(open_fds(), fds, "file descriptors leaked (monitors alive together)");
    threads_back_to(tasks, "threads leaked (monitors alive together)");

    // A monitor for one reading watches no file (its exit does not wait for the kernel to
    // retire inotify marks), yet its state has the resolver configuration a watching one reads.
    let watching = Monitor::new().expect("monitor");
    let dns = watching.snapshot().dns.clone();
    drop(watching);
    let reading = Monitor::builder().watch_files(false).build().expect("monitor for one reading");
    assert_eq!(inotify_instances(), 0, "a monitor for one reading watches no file");
    assert!(dns.is_some());
    assert_eq!(reading.snapshot().dns, dns, "the resolver configuration, read once");
    drop(reading);
    assert_eq!(open_fds(), fds, "file descriptors leaked (a monitor for one reading)");

    if !require_root("a_thousand_monitors_leave_no_threads_or_fds_behind (namespace part)") {
        return;
    }
    let ns = NetNs::new("life");
    let (fds, tasks) = (open_fds(), threads());
    for _ in 0..200 {
        let monitor = Monitor::builder().netns(ns.name()).build().expect("monitor in namespace");
        monitor.on_event(|_| {});
        drop(monitor);
    }
    assert_eq!(open_fds(), fds, "file descriptors leaked (namespace monitors)");
    threads_back_to(tasks, "threads leaked (namespace monitors)");
    // By name, a monitor watches /run/netns for the namespace's deletion; for one reading, not.
    let watching = Monitor::builder().netns(ns.name()).build().expect("monitor in namespace");
    assert_eq!(inotify_instances(), 2, "the resolver files and /run/netns");
    drop(watching);
    let reading = Monitor::builder().netns(ns.name()).watch_files(false).build().expect("reading in namespace");
    assert_eq!(inotify_instances(), 0, "a reading in a named namespace watches nothing");
    drop(reading);
    networkmanager_monitors_leave_no_threads_or_fds_behind();
}

/// The inotify instances this process holds.
fn inotify_instances() -> usize {
    let fds = std::fs::read_dir("/proc/self/fd").expect("/proc/self/fd");
    fds.flatten()
        .filter(|fd| std::fs::read_link(fd.path()).is_ok_and(|l| l.as_os_str() == "anon_inode:inotify"))
        .count()
}

/// Part of the test above (counts must not be disturbed by a concurrent test).
fn networkmanager_monitors_leave_no_threads_or_fds_behind() {
    let test = "networkmanager_monitors_leave_no_threads_or_fds_behind";
    if !require_root(test) || !testns::nm::require_networkmanager(test) {
        return;
    }
    let sandbox = testns::nm::NmSandbox::up();
    let build = || {
        Monitor::builder()
            .netns_path(sandbox.netns_path())
            .backend(netreach::BackendKind::NetworkManager)
            .system_bus_address(sandbox.bus_address())
            .build()
            .expect("monitor with the NetworkManager backend")
    };
    // The first one starts async-io's process-wide reactor thread, which stays by design.
    drop(build());
    let (fds, tasks) = (open_fds(), threads());
    for _ in 0..100 {
        let monitor = build();
        monitor.on_event(|_| {});
        assert!(monitor.snapshot().verdicts.iter().any(|v| v.source == netreach::Source::NetworkManager));
        drop(monitor);
    }
    assert_eq!(open_fds(), fds, "file descriptors leaked (NetworkManager monitors)");
    threads_back_to(tasks, "threads leaked (NetworkManager monitors)");
    // Refused builds (NM not running) release their bus connection too.
    sandbox.control("kill-nm");
    let (fds, tasks) = (open_fds(), threads());
    for _ in 0..20 {
        let refused = Monitor::builder()
            .netns_path(sandbox.netns_path())
            .backend(netreach::BackendKind::NetworkManager)
            .system_bus_address(sandbox.bus_address())
            .build();
        assert!(refused.is_err());
    }
    assert_eq!(open_fds(), fds, "file descriptors leaked (refused NetworkManager monitors)");
    threads_back_to(tasks, "threads leaked (refused NetworkManager monitors)");
}

/// Waits (bounded) for the process to be back to `tasks` threads. A joined thread may still be
/// counted for a moment: the kernel wakes the joiner (clearing the thread's tid) before it
/// takes the thread off the process's count. A leaked thread never comes back down.
fn threads_back_to(tasks: usize, leaked: &str) {
    testns::wait_until(std::time::Duration::from_secs(5), &format!("{tasks} threads ({leaked}?)"), || {
        threads() == tasks
    });
}
