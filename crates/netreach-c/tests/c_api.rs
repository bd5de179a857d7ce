//! The C API from C: tests/c/api_test.c, compiled with the system's C compiler against the
//! library this build made (flags from the pkg-config file), run under AddressSanitizer and
//! LeakSanitizer against a namespace this test creates. Linux only (namespaces).
#![cfg(target_os = "linux")]

mod common;

use std::process::Command;

#[test]
fn c_program_exercises_every_function_clean_under_asan() {
    testns::skip_unless_root!();
    let build = common::Build::new("api");
    let program = build.compile("tests/c/api_test.c", &["-fsanitize=address,undefined", "-fno-omit-frame-pointer"]);
    let ns = testns::uplinks("capi");
    let out = Command::new(&program)
        .arg(ns.name())
        // Leaks are errors; exitcode 23 tells a sanitizer report from a failed check.
        .env("ASAN_OPTIONS", "detect_leaks=1:exitcode=23:abort_on_error=0")
        .env("UBSAN_OPTIONS", "halt_on_error=1:print_stacktrace=1")
        .output()
        .expect("running the C test");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    common::report(&stdout, &stderr);
    assert!(!stderr.contains("Sanitizer"), "sanitizer report:\n{stderr}");
    assert!(out.status.success(), "C test failed ({}):\n{stdout}\n{stderr}", out.status);
    let last = stdout.lines().last().unwrap_or_default();
    let passed: usize = last.split(' ').next().and_then(|n| n.parse().ok()).unwrap_or(0);
    assert!(last.ends_with(" passed, 0 failed") && passed > 100, "summary: {last}");
}
