//! The shared libraries bgpd's binary needs: not libm.so.6, whose two functions that
//! bgpd's dependencies call are defined in the binary (the `libm-symbols` crate).
#![cfg(all(target_os = "linux", target_env = "gnu"))]

use std::process::Command;

/// The `NEEDED` entries of a binary's dynamic section, by binutils' `readelf`.
fn needed(binary: &str) -> Vec<String> {
    let output = Command::new("readelf")
        .args(["--dynamic", "--wide", binary])
        .output()
        .unwrap_or_else(|error| panic!("readelf --dynamic {binary}: {error} (binutils)"));
    assert!(
        output.status.success(),
        "readelf --dynamic {binary}: {}",
        String::from_utf8_lossy(&output.stderr).trim()
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|line| line.contains("(NEEDED)"))
        .filter_map(|line| {
            let (_, name) = line.split_once('[')?;
            Some(name.strip_suffix(']')?.to_owned())
        })
        .collect()
}

#[test]
fn bgpd_does_not_need_libm() {
    let binary = env!("CARGO_BIN_EXE_bgpd");
    let needed = needed(binary);
    assert!(
        needed.iter().any(|name| name == "libc.so.6"),
        "no libc.so.6 among {needed:?}: readelf's output was not read"
    );
    assert!(
        !needed.iter().any(|name| name.starts_with("libm.so")),
        "bgpd needs {needed:?}: libm-symbols is not linked into it, or a dependency calls a \
         libm function other than pow and log (nm -D --undefined-only {binary})"
    );
}
