//! Building C (and C++) programs against this build's library, with the flags of the
//! pkg-config file (tests/c_api.rs, tests/qt.rs).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A scratch directory with `netreach-c.pc` filled in for this build.
pub struct Build {
    pub dir: PathBuf,
    pub libdir: PathBuf,
}

impl Build {
    /// Writes the .pc file for this build into a fresh directory named after `tag`.
    pub fn new(tag: &str) -> Build {
        let libdir = built_library_dir();
        let dir = std::env::temp_dir().join(format!("netreach-c-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch directory");
        let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
        let template = std::fs::read_to_string(crate_dir.join("netreach-c.pc.in")).expect("pc template");
        let pc = template
            .replace("@LIBDIR@", &libdir.display().to_string())
            .replace("@INCLUDEDIR@", &crate_dir.join("include").display().to_string());
        std::fs::write(dir.join("netreach-c.pc"), pc).expect("writing the .pc file");
        Build { dir, libdir }
    }

    /// `pkg-config ARGS netreach-c` through the generated file.
    pub fn pkg_config(&self, args: &[&str]) -> Vec<String> {
        let out = Command::new("pkg-config")
            .args(args)
            .arg("netreach-c")
            .env("PKG_CONFIG_PATH", &self.dir)
            .output()
            .expect("pkg-config (apt install pkg-config)");
        assert!(out.status.success(), "pkg-config: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).expect("UTF-8 flags").split_whitespace().map(str::to_owned).collect()
    }

    /// Compiles one C file with warnings as errors, linked to libnetreach_c.so (rpath set).
    pub fn compile(&self, source: &str, extra: &[&str]) -> PathBuf {
        let mut link = self.pkg_config(&["--cflags", "--libs"]);
        link.push(format!("-Wl,-rpath,{}", self.libdir.display()));
        self.cc(source, "", extra, &link)
    }

    /// Compiles one C file linked to libnetreach_c.a and the system libraries the .pc file
    /// lists for static linking (`Libs.private`).
    pub fn compile_static(&self, source: &str) -> PathBuf {
        let mut link = self.pkg_config(&["--cflags"]);
        link.push(self.libdir.join("libnetreach_c.a").display().to_string());
        let libs = self.pkg_config(&["--static", "--libs-only-l"]);
        link.extend(libs.into_iter().filter(|l| l != "-lnetreach_c"));
        self.cc(source, "-static-lib", &[], &link)
    }

    fn cc(&self, source: &str, suffix: &str, extra: &[&str], link: &[String]) -> PathBuf {
        let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
        let stem = Path::new(source).file_stem().expect("file name").to_string_lossy();
        let program = self.dir.join(format!("{stem}{suffix}"));
        let out = Command::new("cc")
            .args(["-std=c11", "-g", "-Wall", "-Wextra", "-Werror", "-pthread"])
            .args(extra)
            .arg(crate_dir.join(source))
            .arg("-o")
            .arg(&program)
            .args(link)
            .output()
            .expect("cc (apt install gcc)");
        assert!(out.status.success(), "cc {source}: {}", String::from_utf8_lossy(&out.stderr));
        program
    }
}

/// Builds the C library (`cargo test` builds only the rlib the tests link, so the .so could be
/// stale) and returns the directory holding libnetreach_c.so.
fn built_library_dir() -> PathBuf {
    let out = Command::new(env!("CARGO"))
        .args(["build", "-p", "netreach-c", "--lib", "--message-format=json"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("running cargo build for the C library");
    assert!(out.status.success(), "cargo build -p netreach-c: {}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let so = stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|v| v["reason"] == "compiler-artifact" && v["target"]["name"] == "netreach_c")
        .flat_map(|v| v["filenames"].as_array().cloned().unwrap_or_default())
        .filter_map(|f| f.as_str().map(PathBuf::from))
        .find(|f| f.extension().is_some_and(|e| e == "so"))
        .expect("cargo reports libnetreach_c.so");
    so.parent().expect("library directory").to_path_buf()
}

impl Drop for Build {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Shows a program's output in the test log (std::io::Write: the CLI's lint forbids print!).
pub fn report(stdout: &str, stderr: &str) {
    let mut log = std::io::stderr().lock();
    let _ = writeln!(log, "--- stdout\n{stdout}--- stderr\n{stderr}---");
}
