//! The committed header equals a fresh cbindgen generation (CI fails on a stale header).
//! `NETREACH_BLESS=1 cargo test -p netreach-c --test header` rewrites it.

use std::path::Path;

#[test]
fn header_matches_a_fresh_generation() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")).expect("cbindgen.toml");
    let bindings = cbindgen::Builder::new()
        .with_crate(crate_dir)
        .with_config(config)
        .generate()
        .expect("cbindgen generates the header");
    let mut fresh = Vec::new();
    bindings.write(&mut fresh);
    let committed_path = crate_dir.join("include/netreach.h");
    if std::env::var_os("NETREACH_BLESS").is_some() {
        std::fs::write(&committed_path, &fresh).expect("writing include/netreach.h");
        return;
    }
    let committed = std::fs::read(&committed_path).unwrap_or_default();
    assert!(
        committed == fresh,
        "include/netreach.h is stale: run `NETREACH_BLESS=1 cargo test -p netreach-c --test header` and commit it"
    );
}
