//! Wren's `bgpd` under test: found on disk (cargo cannot hand one crate another crate's
//! binary), configured like the others, checked with `bgpd --check-config` before it runs.
//!
//! Where `bgpd` is looked for, in order: `$WREN_BIN_DIR/bgpd`; next to the running bench
//! binary (`cargo build --release -p bgpd -p bench` puts both in one target directory);
//! `$CARGO_TARGET_DIR/release/bgpd`; the workspace's `target/release/bgpd`. A debug build
//! is refused for measurements (its figures would say nothing about Wren), but accepted
//! for `--quick` runs, which only keep the harness working (see [`accept_debug_builds`]).

use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Result, anyhow, bail};

use super::{DUT_ASN, DutConfig, MONITOR_ASN};
use crate::topology::Slot;

/// Environment variable naming the directory holding `bgpd`.
pub const BIN_DIR_ENV: &str = "WREN_BIN_DIR";

static DEBUG_OK: AtomicBool = AtomicBool::new(false);

/// Lets [`locate`] return a debug build of bgpd (and look in `debug/` directories): for
/// `--quick` runs, whose figures nobody reads.
pub fn accept_debug_builds() {
    DEBUG_OK.store(true, Ordering::Relaxed);
}

/// The `bgpd` binary to benchmark, or why there is none.
pub fn locate() -> Result<PathBuf, String> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(dir) = std::env::var_os(BIN_DIR_ENV) {
        let path = Path::new(&dir).join("bgpd");
        if path.is_file() {
            return Ok(path);
        }
        return Err(format!("{BIN_DIR_ENV}={} holds no bgpd", path.display()));
    }
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_owned))
    {
        candidates.push(dir.join("bgpd"));
    }
    let debug_ok = DEBUG_OK.load(Ordering::Relaxed);
    let profiles: &[&str] = if debug_ok {
        &["release", "debug"]
    } else {
        &["release"]
    };
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for profile in profiles {
        if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
            candidates.push(Path::new(&dir).join(profile).join("bgpd"));
        }
        candidates.push(workspace.join("target").join(profile).join("bgpd"));
    }
    for candidate in &candidates {
        if candidate.is_file() {
            if !debug_ok && candidate.parent().and_then(Path::file_name) == Some("debug".as_ref()) {
                return Err(format!(
                    "only a debug build at {} (build with --release)",
                    candidate.display()
                ));
            }
            return Ok(candidate.clone());
        }
    }
    Err(format!(
        "no bgpd binary (looked in {}; build it with `cargo build --release -p bgpd` in the bench's target directory or set {BIN_DIR_ENV})",
        candidates
            .iter()
            .map(|c| c.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    ))
}

/// Checks the configuration with `bgpd --check-config`, then starts `bgpd --config` in
/// the slot's namespace.
pub fn start(slot: &Slot, config: &DutConfig) -> Result<lab::Daemon> {
    let binary = locate().map_err(|reason| anyhow!(reason))?;
    let dir = slot.netns().dir().join("wren");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("bgpd.toml");
    std::fs::write(&path, config_text(config, &dir))?;
    let check = Command::new(&binary)
        .arg("--check-config")
        .arg(&path)
        .output()
        .map_err(|e| anyhow!("running {} --check-config: {e}", binary.display()))?;
    if !check.status.success() {
        let stderr = String::from_utf8_lossy(&check.stderr);
        bail!(
            "bgpd --check-config refused the benchmark configuration: {}",
            stderr.lines().next().unwrap_or("(no message)")
        );
    }
    let mut command = slot.netns().command(&binary);
    command.arg("--config").arg(&path);
    Ok(slot.netns().spawn_command("bgpd", command)?)
}

/// The bgpd.toml (issue 3's keys, plus `[fib] enabled` for kernel export).
pub fn config_text(config: &DutConfig, dir: &Path) -> String {
    let id = config.router_id;
    let keepalive = config.keepalive();
    let hold_time = config.hold_time;
    let peer_asn = config.peer_asn;
    let client = if config.reflector {
        "route_reflector_client = true\n"
    } else {
        ""
    };
    let mut text = format!(
        r#"[bgp]
asn = {DUT_ASN}
router_id = "{id}"
listen = ["{id}:{port}"]

[[bgp.neighbor]]
address = "{monitor}"
remote_asn = {MONITOR_ASN}
passive = true
hold_time = {hold_time}
keepalive = {keepalive}
export = "everything"

"#,
        monitor = config.monitor,
        port = bgp_proto::BGP_PORT,
    );
    for peer in &config.peers {
        let _ = write!(
            text,
            r#"[[bgp.neighbor]]
address = "{peer}"
remote_asn = {peer_asn}
passive = true
hold_time = {hold_time}
keepalive = {keepalive}
{client}
{bfd}
"#,
            bfd = if config.bfd { "bfd = true\n" } else { "" },
        );
    }
    for network in &config.networks {
        let _ = write!(text, "[[bgp.network]]\nprefix = \"{network}\"\n\n");
    }
    let _ = write!(
        text,
        r#"[[policy.filter]]
name = "everything"
default = "accept"

[fib]
enabled = true

[control]
socket = "{socket}"

[log]
level = "info"
"#,
        socket = dir.join("bgpd.sock").display()
    );
    if let Some(listen) = config.metrics {
        let _ = write!(text, "\n[metrics]\nlisten = \"{listen}\"\n");
    }
    text
}
