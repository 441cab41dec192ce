//! The machine a run happened on: CPUs, kernel, memory, the versions of every daemon, the
//! commit, the load when the run started and how the CPUs were used.

use std::path::Path;
use std::process::Command;

use crate::dut::{Kind, locate_wren};
use crate::system::Cpus;

/// Facts about the machine, one `- key: value` line each.
pub fn describe(cpus: Cpus) -> Vec<(String, String)> {
    let mut facts = vec![
        (
            "CPUs".to_owned(),
            format!(
                "{} ({})",
                online_cpus(),
                cpu_model().unwrap_or_else(|| "unknown model".into())
            ),
        ),
        (
            "Kernel".to_owned(),
            read_trimmed("/proc/sys/kernel/osrelease").unwrap_or_else(|| "unknown".into()),
        ),
        (
            "Memory".to_owned(),
            mem_total().unwrap_or_else(|| "unknown".into()),
        ),
        (
            "Load average at start".to_owned(),
            read_trimmed("/proc/loadavg")
                .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
                .unwrap_or_else(|| "unknown".into()),
        ),
        (
            "Pinning".to_owned(),
            format!(
                "daemon under test (and kernel floors) on CPU {}, generator and harness on CPU {}",
                cpus.dut, cpus.generator
            ),
        ),
    ];
    for kind in Kind::ALL {
        facts.push((kind.name().to_owned(), version(kind)));
    }
    facts.push(("Commit".to_owned(), commit()));
    facts
}

/// The daemon's version line, or why there is none.
pub fn version(kind: Kind) -> String {
    let output = |program: &str, args: &[&str]| -> Option<String> {
        let output = Command::new(program).args(args).output().ok()?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        text.lines().next().map(|l| l.trim().to_owned())
    };
    let line = match kind {
        Kind::Bird => output("bird", &["--version"]),
        Kind::Frr => output("/usr/lib/frr/bgpd", &["--version"]).map(|l| format!("FRR {l}")),
        Kind::Gobgp => output("gobgpd", &["--version"]),
        Kind::Wren => match locate_wren() {
            Ok(path) => output(&path.to_string_lossy(), &["--version"])
                .map(|l| format!("{l} ({})", path.display())),
            Err(reason) => Some(format!("not available: {reason}")),
        },
    };
    line.unwrap_or_else(|| "not installed".into())
}

/// CPUs online (not the harness's pinned affinity).
fn online_cpus() -> String {
    nix::unistd::sysconf(nix::unistd::SysconfVar::_NPROCESSORS_ONLN)
        .ok()
        .flatten()
        .map_or_else(|| "unknown".to_owned(), |n| n.to_string())
}

fn cpu_model() -> Option<String> {
    let text = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|rest| rest.trim_start_matches([' ', '\t', ':']).trim().to_owned())
}

fn mem_total() -> Option<String> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(format!("{:.1} GiB", kib as f64 / 1024.0 / 1024.0))
}

fn read_trimmed(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_owned())
}

fn commit() -> String {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let run = |args: &[&str]| {
        Command::new("git")
            .arg("-C")
            .arg(&workspace)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    match run(&["rev-parse", "--short", "HEAD"]) {
        Some(hash) => {
            let dirty = run(&["status", "--porcelain", "--untracked-files=no"])
                .is_some_and(|s| !s.is_empty());
            if dirty {
                format!("{hash} (with uncommitted changes)")
            } else {
                hash
            }
        }
        None => "unknown (not a git checkout)".into(),
    }
}
