//! The record a running lab leaves in `DIR/state.json` (the runner's DIR is
//! /run/wren-lab/NAME), so `wren-lab status` can report from another process: nodes,
//! namespaces, daemons (pid and log) and links. `wren-lab down` does not need it: every name
//! can be derived from the topology file (see [`crate::topology::teardown`]).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::daemon::Daemon;
use crate::error::{Error, Result};

/// Where the runner keeps its labs: `/run/wren-lab`, or `WREN_LAB_RUN_DIR`.
pub fn run_dir() -> PathBuf {
    std::env::var_os("WREN_LAB_RUN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/run/wren-lab"))
}

/// A running lab.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct State {
    pub name: String,
    pub topology: PathBuf,
    pub dir: PathBuf,
    pub nodes: Vec<NodeState>,
    pub links: Vec<LinkState>,
}

/// A node of a running lab.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeState {
    pub name: String,
    pub netns: String,
    pub dir: PathBuf,
    /// `frr`, `wren` or `linux`.
    pub role: String,
    pub daemons: Vec<DaemonState>,
    pub pods: Vec<PodState>,
}

/// A daemon of a node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DaemonState {
    pub name: String,
    pub pid: u32,
    pub log: PathBuf,
}

/// A pod of a node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PodState {
    pub netns: String,
    pub addresses: Vec<String>,
}

/// A link between two node interfaces.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkState {
    pub a_netns: String,
    pub a_interface: String,
    pub b_netns: String,
    pub b_interface: String,
}

impl DaemonState {
    pub(crate) fn of(daemon: &Daemon) -> DaemonState {
        DaemonState {
            name: daemon.name().to_owned(),
            pid: daemon.pid(),
            log: daemon.log_path().to_owned(),
        }
    }

    /// True while the process exists and is not a zombie.
    pub fn is_alive(&self) -> bool {
        std::fs::read_to_string(format!("/proc/{}/stat", self.pid))
            .ok()
            .and_then(|stat| {
                // The state follows the parenthesised command name.
                let after = stat.rsplit_once(')')?.1;
                after
                    .split_whitespace()
                    .next()
                    .map(|state| state != "Z" && state != "X")
            })
            .unwrap_or(false)
    }
}

impl State {
    /// The state file of a lab directory.
    pub fn path(dir: &Path) -> PathBuf {
        dir.join("state.json")
    }

    /// Writes `DIR/state.json`.
    pub fn write(&self) -> Result<()> {
        let path = State::path(&self.dir);
        let text = serde_json::to_string_pretty(self)
            .map_err(|e| Error::invalid("lab state", e.to_string()))?;
        std::fs::write(&path, text).map_err(|e| Error::io(format!("writing {}", path.display()), e))
    }

    /// Reads the state of the lab in `dir`.
    pub fn read(dir: &Path) -> Result<State> {
        let path = State::path(dir);
        let text = std::fs::read_to_string(&path)
            .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
        serde_json::from_str(&text)
            .map_err(|e| Error::invalid(path.display().to_string(), e.to_string()))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let state = State {
            name: "pair".into(),
            topology: "/x/pair.clab.yml".into(),
            dir: dir.path().to_owned(),
            nodes: vec![NodeState {
                name: "r1".into(),
                netns: "clab-pair-r1".into(),
                dir: dir.path().join("nodes/r1"),
                role: "frr".into(),
                daemons: vec![DaemonState {
                    name: "frr-zebra@clab-pair-r1".into(),
                    pid: std::process::id(),
                    log: "/x/zebra.log".into(),
                }],
                pods: vec![PodState {
                    netns: "clab-pair-r1-pod1".into(),
                    addresses: vec!["10.244.0.2".into()],
                }],
            }],
            links: vec![LinkState {
                a_netns: "clab-pair-r1".into(),
                a_interface: "eth1".into(),
                b_netns: "clab-pair-r2".into(),
                b_interface: "eth1".into(),
            }],
        };
        state.write().unwrap();
        assert_eq!(State::read(dir.path()).unwrap(), state);
        assert!(state.nodes[0].daemons[0].is_alive());
    }
}
