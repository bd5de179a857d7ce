//! Bad namespace input gets a clear error naming the problem, never a panic or a monitor.
#![cfg(target_os = "linux")] // network namespaces; Windows: src/sys/windows/tests*.rs (under Wine)

use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use netreach::{Error, ErrorKind, Monitor};

fn error_of(builder: netreach::MonitorBuilder) -> Error {
    match builder.build() {
        Err(e) if e.netns().is_some() => e,
        Err(other) => panic!("expected a namespace error, got {other:?}"),
        Ok(_) => panic!("expected an error, got a monitor"),
    }
}

#[test]
fn bad_namespaces_are_named_in_the_error() {
    let cases = [
        (
            Monitor::builder().netns("netreach-no-such-namespace"),
            ErrorKind::NotFound,
            "no network namespace named 'netreach-no-such-namespace'",
        ),
        (Monitor::builder().netns("a/b"), ErrorKind::InvalidInput, "plain file name"),
        (Monitor::builder().netns(""), ErrorKind::InvalidInput, "plain file name"),
        (Monitor::builder().netns(".."), ErrorKind::InvalidInput, "plain file name"),
        (Monitor::builder().netns_path("/nonexistent/netns"), ErrorKind::NotFound, "cannot open"),
        (
            Monitor::builder().netns_path("/etc/hostname"),
            ErrorKind::InvalidInput,
            "a regular file, not a namespace file",
        ),
        (Monitor::builder().netns_path("/proc/self/ns/uts"), ErrorKind::InvalidInput, "not a network namespace"),
    ];
    for (builder, kind, want) in cases {
        let error = error_of(builder);
        let message = error.to_string();
        assert!(message.contains(want), "{message:?} should contain {want:?}");
        assert_eq!(error.kind(), kind, "{message:?}");
    }
}

#[test]
fn own_namespace_by_path_works() {
    // Entering our own namespace still needs CAP_SYS_ADMIN; without it the error says so.
    match Monitor::builder().netns_path("/proc/self/ns/net").build() {
        Ok(monitor) => assert!(!monitor.snapshot().interfaces.is_empty()),
        Err(e) => {
            assert!(e.to_string().contains("CAP_SYS_ADMIN"), "{e}");
            assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
        }
    }
}

/// Builds a monitor on `netns` on another thread: a namespace open that blocks (a FIFO waits
/// for a writer) fails the test after 10 s instead of hanging it.
fn error_in_time(netns: netreach::Netns) -> (Error, Duration) {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let start = Instant::now();
        let builder = match netns {
            netreach::Netns::Name(name) => Monitor::builder().netns(name),
            netreach::Netns::Path(path) => Monitor::builder().netns_path(path),
        };
        let _ = tx.send((error_of(builder), start.elapsed()));
    });
    rx.recv_timeout(Duration::from_secs(10)).expect("opening a bad namespace returned in time")
}

#[test]
fn files_that_are_not_network_namespaces_are_refused_at_once() {
    let dir = std::env::temp_dir().join(format!("netreach-input-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let fifo = dir.join("fifo");
    let c_path = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0, "mkfifo");
    std::os::unix::fs::symlink(&fifo, dir.join("link")).unwrap();
    let _socket = std::os::unix::net::UnixListener::bind(dir.join("socket")).unwrap();
    let cases: Vec<(PathBuf, &str)> = vec![
        (fifo.clone(), "a FIFO (named pipe), not a namespace file"),
        (dir.join("link"), "a FIFO (named pipe), not a namespace file"),
        (dir.clone(), "a directory, not a namespace file"),
        (dir.join("socket"), "a socket, not a namespace file"),
        ("/dev/null".into(), "a character device, not a namespace file"),
        ("/proc/self/ns/uts".into(), "a uts namespace, not a network namespace"),
    ];
    for (path, want) in cases {
        let (error, took) = error_in_time(netreach::Netns::Path(path.clone()));
        let message = error.to_string();
        assert_eq!(error.kind(), ErrorKind::InvalidInput, "{message:?}");
        assert!(message.contains(&*path.to_string_lossy()), "{message:?} should name {path:?}");
        assert!(message.contains(want), "{message:?} should contain {want:?}");
        assert!(took < Duration::from_millis(500), "{path:?} took {took:?}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_fifo_under_run_netns_is_refused_by_name() {
    testns::skip_unless_root!();
    let name = format!("netreach-fifo-{}", std::process::id());
    std::fs::create_dir_all("/run/netns").unwrap();
    let path = PathBuf::from("/run/netns").join(&name);
    let c_path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0, "mkfifo");
    let (error, took) = error_in_time(netreach::Netns::Name(name));
    let message = error.to_string();
    assert_eq!(error.kind(), ErrorKind::InvalidInput, "{message:?}");
    let _ = std::fs::remove_file(&path);
    assert!(message.contains(&*path.to_string_lossy()) && message.contains("a FIFO (named pipe)"), "{message:?}");
    assert!(took < Duration::from_millis(500), "took {took:?}");
}
