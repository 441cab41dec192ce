//! Where GoBGP v4 is for tests: the gobgpd and gobgp that `scripts/gobgp` builds from the
//! Go module `github.com/osrg/gobgp/v4` into `target/go/gobgp-VERSION/` (the version the
//! script pins), or `WREN_GOBGP_V4` (a gobgpd with its gobgp beside it). Debian 12's
//! gobgpd is GoBGP 3, without BFD; [`crate::Gobgp::start_v4`] runs these. Used by the
//! launcher and the prerequisite check; of the crate it uses only the target dir
//! (`kube_build`).

use std::path::PathBuf;

/// The build script: the one place the GoBGP v4 version is written (`version="v4.8.0"`).
const SCRIPT: &str = include_str!("../../scripts/gobgp");

/// Environment variable naming a gobgpd v4 binary to use instead of the built one.
pub const GOBGP_V4_ENV: &str = "WREN_GOBGP_V4";

/// The GoBGP release `scripts/gobgp` builds (`v4.8.0`).
pub fn gobgp_v4_version() -> Option<&'static str> {
    SCRIPT.lines().find_map(|line| {
        line.strip_prefix("version=\"")
            .and_then(|rest| rest.strip_suffix('"'))
    })
}

/// Where `scripts/gobgp` puts gobgpd for this release.
fn built_gobgpd() -> Option<PathBuf> {
    let version = gobgp_v4_version()?;
    Some(
        crate::kube_build::target_dir()
            .join("go")
            .join(format!("gobgp-{version}"))
            .join("gobgpd"),
    )
}

/// The GoBGP v4 daemon and CLI to run: `WREN_GOBGP_V4` (and the gobgp beside it), else
/// the built ones; `Err` says how to get them.
pub fn gobgp_v4_binaries() -> std::result::Result<(PathBuf, PathBuf), String> {
    let daemon = match std::env::var_os(GOBGP_V4_ENV) {
        Some(path) => PathBuf::from(path),
        None => built_gobgpd()
            .ok_or_else(|| String::from("scripts/gobgp names no version=\"...\" line"))?,
    };
    let client = daemon.with_file_name("gobgp");
    for binary in [&daemon, &client] {
        if !binary.is_file() {
            return Err(format!(
                "GoBGP v4 not built ({} missing; run scripts/gobgp)",
                binary.display()
            ));
        }
    }
    Ok((daemon, client))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn the_script_pins_a_v4_release() {
        let version = gobgp_v4_version().unwrap();
        assert!(version.starts_with("v4."), "{version}");
    }
}
