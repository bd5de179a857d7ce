//! Bad namespace input gets a clear error naming the problem, never a panic or a monitor.
#![cfg(target_os = "linux")] // network namespaces; Windows has tests/windows.rs

use netmon::{Error, Monitor};

fn error_of(builder: netmon::MonitorBuilder) -> String {
    match builder.build() {
        Err(e @ Error::Namespace { .. }) => e.to_string(),
        Err(other) => panic!("expected a namespace error, got {other:?}"),
        Ok(_) => panic!("expected an error, got a monitor"),
    }
}

#[test]
fn bad_namespaces_are_named_in_the_error() {
    let cases = [
        (Monitor::builder().netns("netmon-no-such-namespace"), "no network namespace named 'netmon-no-such-namespace'"),
        (Monitor::builder().netns("a/b"), "plain file name"),
        (Monitor::builder().netns(""), "plain file name"),
        (Monitor::builder().netns(".."), "plain file name"),
        (Monitor::builder().netns_path("/nonexistent/netns"), "cannot open"),
        (Monitor::builder().netns_path("/etc/hostname"), "not a namespace file"),
        (Monitor::builder().netns_path("/proc/self/ns/uts"), "not a network namespace"),
    ];
    for (builder, want) in cases {
        let message = error_of(builder);
        assert!(message.contains(want), "{message:?} should contain {want:?}");
    }
}

#[test]
fn own_namespace_by_path_works() {
    // Entering our own namespace still needs CAP_SYS_ADMIN; without it the error says so.
    match Monitor::builder().netns_path("/proc/self/ns/net").build() {
        Ok(monitor) => assert!(!monitor.snapshot().interfaces.is_empty()),
        Err(e) => assert!(e.to_string().contains("CAP_SYS_ADMIN"), "{e}"),
    }
}
