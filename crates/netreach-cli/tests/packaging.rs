//! What ships beside the binary (packaging/): the systemd units pass `systemd-analyze
//! verify`, the alert rules pass `promtool check rules` and their unit tests.
#![cfg(target_os = "linux")]

use std::path::{Path, PathBuf};
use std::process::Command;

fn packaging() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../packaging")
}

/// Runs a checker; it must succeed and say nothing on stderr (systemd-analyze reports unit
/// file mistakes as warnings with exit 0).
fn quiet_success(command: &mut Command) -> String {
    let out = command.output().unwrap_or_else(|e| panic!("{command:?}: {e}"));
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && stderr.trim().is_empty(), "{command:?}: {stdout}{stderr}");
    stdout.into_owned()
}

#[test]
fn unit_files_pass_systemd_analyze_verify() {
    // The units name /usr/bin/netreach, which verify wants to exist: check copies that run the
    // binary under test instead. Man pages exist only once the package is installed (the
    // package test verifies with them).
    let dir = std::env::temp_dir().join(format!("netreach-units-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut units = Vec::new();
    for unit in ["netreach-exporter.service", "netreach-wait-online.service"] {
        let text = std::fs::read_to_string(packaging().join("systemd").join(unit)).unwrap();
        assert!(text.contains("ExecStart=/usr/bin/netreach "), "{unit} runs the packaged binary");
        let copy = dir.join(unit);
        std::fs::write(&copy, text.replace("/usr/bin/netreach", env!("CARGO_BIN_EXE_netreach"))).unwrap();
        units.push(copy);
    }
    quiet_success(Command::new("systemd-analyze").args(["verify", "--man=no"]).args(&units));
    // The checker is not blind: a broken unit is reported.
    let broken = dir.join("broken.service");
    std::fs::write(&broken, "[Service]\nType=notifyy\nExecStart=/bin/true\n").unwrap();
    let out = Command::new("systemd-analyze").args(["verify", "--man=no"]).arg(&broken).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("notifyy"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn alert_rules_pass_promtool_check_and_their_unit_tests() {
    let dir = packaging().join("prometheus");
    let said =
        quiet_success(Command::new("promtool").args(["check", "rules", "netreach-alerts.yml"]).current_dir(&dir));
    assert!(said.contains("SUCCESS: 6 rules found"), "{said}");
    let said =
        quiet_success(Command::new("promtool").args(["test", "rules", "netreach-alerts.test.yml"]).current_dir(&dir));
    assert!(said.contains("SUCCESS"), "{said}");
}
