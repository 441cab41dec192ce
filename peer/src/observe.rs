//! The daemon seen from outside: its RIB and neighbors through `bgpctl --json`, and
//! the kernel's FIB through `ip -j route` (in the daemon's network namespace).
//!
//! Field names are bgpd's JSON contract (issue 3): routes have `prefix`, `next_hops`,
//! `as_path`, `origin`, `local_pref`, `med`, `communities`, `best`, `source`;
//! neighbors have `address`, `remote_asn`, `state`, ... A route that does not parse
//! into [`RibRoute`] is an error, so a broken contract fails the test that reads it.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use ipnet::IpNet;
use serde::Deserialize;
use serde_json::Value;

use crate::error::{Error, Result};

/// One path of one prefix in the daemon's RIB (`bgpctl show routes --json`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct RibRoute {
    pub prefix: IpNet,
    pub next_hops: Vec<IpAddr>,
    pub as_path: Vec<u32>,
    pub origin: String,
    pub local_pref: Option<u32>,
    pub med: Option<u32>,
    pub communities: Vec<String>,
    pub best: bool,
    /// The neighbor's address, or "local".
    pub source: String,
}

/// One kernel route (`ip -j route show`): its destination and the raw entry.
#[derive(Clone, Debug, PartialEq)]
pub struct KernelRoute {
    pub prefix: IpNet,
    pub entry: Value,
}

impl KernelRoute {
    /// The gateways: `gateway`, or every `nexthops[].gateway` (ECMP).
    pub fn gateways(&self) -> Vec<IpAddr> {
        let single = self.entry["gateway"].as_str().and_then(|g| g.parse().ok());
        let many = self.entry["nexthops"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|hop| hop["gateway"].as_str().and_then(|g| g.parse().ok()));
        single.into_iter().chain(many).collect()
    }

    /// The route type (`unicast` when `ip` leaves it out).
    pub fn kind(&self) -> &str {
        self.entry["type"].as_str().unwrap_or("unicast")
    }
}

/// How to reach one daemon: bgpctl, its control socket, and its namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Daemon {
    bgpctl: PathBuf,
    socket: PathBuf,
    netns: Option<String>,
}

impl Daemon {
    /// The daemon whose control socket is `socket`, queried with the `bgpctl` binary;
    /// its kernel routes are read in network namespace `netns` (None: this one).
    pub fn new(bgpctl: &Path, socket: &Path, netns: Option<&str>) -> Daemon {
        Daemon {
            bgpctl: bgpctl.to_owned(),
            socket: socket.to_owned(),
            netns: netns.map(str::to_owned),
        }
    }

    /// `bgpctl --socket S --json ARGS...`, parsed (one document; see [`Daemon::routes`]
    /// for `show routes`).
    pub fn bgpctl_json(&self, args: &[&str]) -> Result<Value> {
        let mut command = self.bgpctl_command(args);
        let stdout = run(&mut command)?;
        serde_json::from_str(&stdout).map_err(|error| Error::Command {
            command: display(&command),
            detail: format!("not JSON ({error}): {stdout}"),
        })
    }

    /// Every path in the daemon's Loc-RIB (`show routes --json` prints one per line).
    pub fn routes(&self) -> Result<Vec<RibRoute>> {
        let mut command = self.bgpctl_command(&["show", "routes"]);
        let stdout = run(&mut command)?;
        stdout
            .lines()
            .map(serde_json::from_str)
            .collect::<serde_json::Result<Vec<RibRoute>>>()
            .map_err(|error| Error::Command {
                command: display(&command),
                detail: format!("does not follow the route contract ({error}): {stdout}"),
            })
    }

    /// `bgpctl --socket S --json ARGS...`.
    fn bgpctl_command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.bgpctl);
        command
            .arg("--socket")
            .arg(&self.socket)
            .arg("--json")
            .args(args);
        command
    }

    /// The paths of exactly `prefix`.
    pub fn paths(&self, prefix: IpNet) -> Result<Vec<RibRoute>> {
        Ok(self
            .routes()?
            .into_iter()
            .filter(|route| route.prefix == prefix)
            .collect())
    }

    /// `show neighbors --json`.
    pub fn neighbors(&self) -> Result<Vec<Value>> {
        let value = self.bgpctl_json(&["show", "neighbors"])?;
        Ok(value.as_array().cloned().unwrap_or_default())
    }

    /// The summary entry of neighbor `address`, if the daemon has one.
    pub fn neighbor_state(&self, address: IpAddr) -> Result<Option<String>> {
        let text = address.to_string();
        Ok(self
            .neighbors()?
            .into_iter()
            .find(|n| n["address"] == text.as_str())
            .and_then(|n| n["state"].as_str().map(str::to_owned)))
    }

    /// `show neighbor ADDR --json` (timers, capabilities, counters, last error).
    pub fn neighbor(&self, address: IpAddr) -> Result<Value> {
        self.bgpctl_json(&["show", "neighbor", &address.to_string()])
    }

    /// The kernel's routes of both families in the main table.
    pub fn kernel_routes(&self) -> Result<Vec<KernelRoute>> {
        let mut routes = Vec::new();
        for family in ["-4", "-6"] {
            let mut command = Command::new("ip");
            command.arg("-j");
            if let Some(netns) = &self.netns {
                command.args(["-n", netns]);
            }
            command.args([family, "route", "show", "table", "main"]);
            let stdout = run(&mut command)?;
            if stdout.trim().is_empty() {
                continue;
            }
            let value: Value = serde_json::from_str(&stdout).map_err(|error| Error::Command {
                command: display(&command),
                detail: format!("not JSON ({error})"),
            })?;
            for entry in value.as_array().cloned().unwrap_or_default() {
                if let Some(prefix) = kernel_prefix(&entry, family == "-6") {
                    routes.push(KernelRoute { prefix, entry });
                }
            }
        }
        Ok(routes)
    }

    /// The kernel's route for exactly `prefix`, if any.
    pub fn kernel_route(&self, prefix: IpNet) -> Result<Option<KernelRoute>> {
        Ok(self
            .kernel_routes()?
            .into_iter()
            .find(|route| route.prefix == prefix))
    }
}

/// `dst` as a prefix: "default", "10.0.0.0/24", or a host route without its length.
fn kernel_prefix(entry: &Value, ipv6: bool) -> Option<IpNet> {
    let dst = entry["dst"].as_str()?;
    if dst == "default" {
        return Some(if ipv6 {
            "::/0".parse().ok()?
        } else {
            "0.0.0.0/0".parse().ok()?
        });
    }
    if dst.contains('/') {
        return dst.parse().ok();
    }
    let address: IpAddr = dst.parse().ok()?;
    Some(IpNet::from(address))
}

/// Runs a command; stdout, or an error with its stderr.
fn run(command: &mut Command) -> Result<String> {
    let output = command.output().map_err(|error| Error::Command {
        command: display(command),
        detail: error.to_string(),
    })?;
    if !output.status.success() {
        return Err(Error::Command {
            command: display(command),
            detail: format!(
                "{}: {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            ),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

fn display(command: &Command) -> String {
    std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|part| part.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn kernel_destinations_become_prefixes() {
        let entry = |dst: &str| serde_json::json!({ "dst": dst });
        assert_eq!(
            kernel_prefix(&entry("10.1.0.0/24"), false),
            Some("10.1.0.0/24".parse().unwrap())
        );
        assert_eq!(
            kernel_prefix(&entry("10.1.0.7"), false),
            Some("10.1.0.7/32".parse().unwrap())
        );
        assert_eq!(
            kernel_prefix(&entry("fd00::7"), true),
            Some("fd00::7/128".parse().unwrap())
        );
        assert_eq!(
            kernel_prefix(&entry("default"), true),
            Some("::/0".parse().unwrap())
        );
        let route = KernelRoute {
            prefix: "10.0.0.0/8".parse().unwrap(),
            entry: serde_json::json!({"dst": "10.0.0.0/8", "nexthops": [
                {"gateway": "192.0.2.1"}, {"gateway": "192.0.2.3"}]}),
        };
        assert_eq!(route.gateways().len(), 2);
        assert_eq!(route.kind(), "unicast");
    }
}
