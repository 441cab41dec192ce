//! FRR (Debian's 8.4 package) as a peer inside a namespace: zebra, staticd and bgpd (plus
//! any other daemon asked for) from /usr/lib/frr, each started with
//! `-z DIR/zserv.api --vty_socket DIR -i DIR/NAME.pid -f DIR/frr.conf --log stdout`, so two
//! instances in two namespaces never share a socket or pid file (no `-N` pathspace is
//! needed). The daemons run as the `frr` user as packaged, so DIR is owned by `frr`.
//! `vtysh --vty_socket DIR` reaches exactly this instance.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::command;
use crate::daemon::Daemon;
use crate::error::{Error, Result};
use crate::netns::Netns;
use crate::prereq::FRR_DIR;
use crate::route::Family;
use crate::wait::TIMEOUT;

/// A running FRR instance. Dropping it stops its daemons.
#[derive(Debug)]
pub struct Frr {
    netns: String,
    dir: PathBuf,
    // Stopped in reverse start order: bgpd before zebra.
    daemons: Vec<Daemon>,
}

impl Frr {
    /// Starts zebra, staticd and bgpd in `netns` with the integrated configuration `config`
    /// (the text of an frr.conf), and waits until vtysh reaches all three.
    pub fn start(netns: &Netns, config: &str) -> Result<Frr> {
        Frr::start_daemons(netns, config, &["bgpd"])
    }

    /// Like [`Frr::start`] with a chosen list of daemons besides zebra and staticd (which
    /// always run), for example `["bgpd", "bfdd"]`.
    pub fn start_daemons(netns: &Netns, config: &str, daemons: &[&str]) -> Result<Frr> {
        let dir = netns.dir().join("frr");
        prepare_dir(netns.dir(), &dir)?;
        let config_path = dir.join("frr.conf");
        std::fs::write(&config_path, config)
            .map_err(|e| Error::io(format!("writing {}", config_path.display()), e))?;
        std::fs::set_permissions(&config_path, std::fs::Permissions::from_mode(0o644))
            .map_err(|e| Error::io(format!("chmod {}", config_path.display()), e))?;

        let mut names: Vec<&str> = vec!["zebra", "staticd"];
        for daemon in daemons {
            if !names.contains(daemon) {
                names.push(daemon);
            }
        }
        let mut frr = Frr {
            netns: netns.name().to_owned(),
            dir: dir.clone(),
            daemons: Vec::new(),
        };
        for name in names {
            let program = Path::new(FRR_DIR).join(name);
            if !program.is_file() {
                return Err(Error::invalid(
                    format!("FRR daemon {name}"),
                    format!("{} not found", program.display()),
                ));
            }
            let mut command = netns.command(&program);
            command
                .arg("-z")
                .arg(dir.join("zserv.api"))
                .arg("--vty_socket")
                .arg(&dir)
                .arg("-i")
                .arg(dir.join(format!("{name}.pid")))
                .arg("-f")
                .arg(&config_path)
                .args(["--log", "stdout"]);
            let daemon = netns.spawn_command(&format!("frr-{name}"), command)?;
            // The vty socket appears once the daemon has read its configuration.
            let socket = dir.join(format!("{name}.vty"));
            daemon.wait_until(TIMEOUT, &format!("{} to exist", socket.display()), || {
                socket.exists()
            })?;
            frr.daemons.push(daemon);
        }
        frr.wait_ready(TIMEOUT)?;
        Ok(frr)
    }

    /// The directory with frr.conf, sockets, pid files and logs.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The daemon guards (zebra first).
    pub fn daemons(&self) -> &[Daemon] {
        &self.daemons
    }

    /// Leaves the daemons running after this guard is gone (for `wren-lab up`).
    pub fn detach(mut self) {
        for daemon in std::mem::take(&mut self.daemons) {
            daemon.detach();
        }
    }

    /// Runs one vtysh command against this instance and returns its output.
    pub fn vtysh(&self, command: &str) -> Result<String> {
        self.vtysh_lines(&[command])
    }

    /// Runs several commands in one vtysh session (each as a `-c`), for example
    /// `["configure terminal", "router bgp 65001", "neighbor 10.0.0.2 shutdown"]`.
    pub fn vtysh_lines(&self, commands: &[&str]) -> Result<String> {
        let mut vtysh = Command::new("ip");
        vtysh
            .args(["netns", "exec", &self.netns, "vtysh", "--vty_socket"])
            .arg(&self.dir);
        for line in commands {
            vtysh.args(["-c", line]);
        }
        let output = command::run(&mut vtysh)?;
        // vtysh exits 0 on some command errors; catch the common ones.
        if let Some(line) = output
            .lines()
            .find(|l| l.starts_with("% Unknown command") || l.starts_with("% Command incomplete"))
        {
            return Err(Error::Command {
                command: command::display(&vtysh),
                status: "exit status: 0".to_owned(),
                stderr: line.to_owned(),
            });
        }
        Ok(output)
    }

    /// Runs a vtysh command that ends in `json` and parses the output.
    pub fn vtysh_json(&self, command: &str) -> Result<Value> {
        let output = self.vtysh(command)?;
        command::parse_json(&format!("vtysh -c '{command}' in {}", self.netns), &output)
    }

    /// `show bgp summary json`: `{"ipv4Unicast": {"peers": {"ADDR": {"state": ...}}}}`.
    pub fn bgp_summary_json(&self) -> Result<Value> {
        self.vtysh_json("show bgp summary json")
    }

    /// `show bgp <family> unicast json`: `{"routes": {"PREFIX": [paths...]}}`.
    pub fn bgp_routes_json(&self, family: Family) -> Result<Value> {
        self.vtysh_json(&format!("show bgp {} json", family.frr()))
    }

    /// The state of the session with `neighbor` (`Established`, `Active`, ...) from
    /// `show bgp summary json`, looking in every address family the neighbor is active in
    /// (an IPv6 neighbor may carry only IPv4 routes). `None` when FRR does not list it.
    pub fn neighbor_state(&self, neighbor: &str) -> Result<Option<String>> {
        Ok(neighbor_state_in(&self.bgp_summary_json()?, neighbor))
    }

    /// Waits until every session in `neighbors` is Established.
    pub fn wait_established(&self, timeout: Duration, neighbors: &[&str]) -> Result<()> {
        self.wait_for(
            timeout,
            &format!("FRR sessions {neighbors:?} Established"),
            || {
                for neighbor in neighbors {
                    let state = self.neighbor_state(neighbor).map_err(|e| e.to_string())?;
                    if state.as_deref() != Some("Established") {
                        return Err(format!(
                            "{neighbor} is {}",
                            state.as_deref().unwrap_or("not configured")
                        ));
                    }
                }
                Ok(())
            },
        )
    }

    /// The BGP paths FRR has for `prefix` (may be empty).
    pub fn bgp_paths(&self, prefix: &str) -> Result<Vec<Value>> {
        let routes = self.bgp_routes_json(Family::of(prefix))?;
        Ok(routes["routes"][prefix]
            .as_array()
            .cloned()
            .unwrap_or_default())
    }

    /// Waits until FRR's BGP table has `prefix`; returns its paths.
    pub fn wait_route(&self, timeout: Duration, prefix: &str) -> Result<Vec<Value>> {
        self.wait_for(timeout, &format!("FRR to learn {prefix}"), || {
            let paths = self.bgp_paths(prefix).map_err(|e| e.to_string())?;
            if paths.is_empty() {
                Err("not in the BGP table".to_owned())
            } else {
                Ok(paths)
            }
        })
    }

    /// Waits until FRR's BGP table no longer has `prefix`.
    pub fn wait_no_route(&self, timeout: Duration, prefix: &str) -> Result<()> {
        self.wait_for(timeout, &format!("FRR to drop {prefix}"), || {
            let paths = self.bgp_paths(prefix).map_err(|e| e.to_string())?;
            if paths.is_empty() {
                Ok(())
            } else {
                Err(format!("{} paths left", paths.len()))
            }
        })
    }

    /// Polls `probe` until `Ok`, failing early if a daemon exits; errors carry every
    /// daemon's log tail.
    pub fn wait_for<T>(
        &self,
        timeout: Duration,
        what: &str,
        mut probe: impl FnMut() -> Result<T, String>,
    ) -> Result<T> {
        // Watch bgpd (the daemon tests care about); a dead zebra shows in its probes.
        let watched = self
            .daemons
            .last()
            .ok_or_else(|| Error::invalid("FRR", "no daemons"))?;
        watched.wait_for(timeout, what, || {
            if let Some(dead) = self.daemons.iter().find(|d| !d.is_alive()) {
                return Err(format!("{} exited:\n{}", dead.name(), dead.log_tail(20)));
            }
            probe()
        })
    }

    fn wait_ready(&self, timeout: Duration) -> Result<()> {
        self.wait_for(timeout, "vtysh to reach FRR", || {
            self.vtysh("show version")
                .map(drop)
                .map_err(|e| e.to_string())
        })
    }
}

impl Drop for Frr {
    fn drop(&mut self) {
        // bgpd first, zebra last, so zebra can clean the routes bgpd installed.
        while let Some(daemon) = self.daemons.pop() {
            drop(daemon);
        }
    }
}

/// The state of `neighbor` in a `show bgp summary json` document: Established if it is
/// Established in any family, else the state of the first family that lists it.
pub fn neighbor_state_in(summary: &Value, neighbor: &str) -> Option<String> {
    let states: Vec<&str> = summary
        .as_object()
        .into_iter()
        .flat_map(|families| families.values())
        .filter_map(|family| family["peers"][neighbor]["state"].as_str())
        .collect();
    states
        .iter()
        .find(|s| **s == "Established")
        .or(states.first())
        .map(|s| (*s).to_owned())
}

/// Makes `dir` owned by the `frr` user and `parent` traversable, so the daemons (which
/// drop to user `frr`) can read the configuration and create sockets and pid files.
fn prepare_dir(parent: &Path, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    let mode = std::fs::metadata(parent)
        .map_err(|e| Error::io(format!("reading {}", parent.display()), e))?
        .permissions()
        .mode();
    std::fs::set_permissions(parent, std::fs::Permissions::from_mode(mode | 0o711))
        .map_err(|e| Error::io(format!("chmod {}", parent.display()), e))?;
    let user = nix::unistd::User::from_name("frr")
        .map_err(|e| Error::sys("looking up user frr", e))?
        .ok_or_else(|| Error::invalid("user frr", "does not exist (apt-get install frr)"))?;
    std::os::unix::fs::chown(dir, Some(user.uid.as_raw()), Some(user.gid.as_raw()))
        .map_err(|e| Error::io(format!("chown frr {}", dir.display()), e))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn neighbor_state_from_any_family() {
        // Shape of FRR 8.4's `show bgp summary json`, trimmed.
        let summary = serde_json::json!({
            "ipv4Unicast": {"as": 65001, "peers": {"fd00::2": {"remoteAs": 65002, "state": "Established"}}},
            "ipv6Unicast": {"as": 65001, "peers": {"fd00::2": {"remoteAs": 65002, "state": "Active"},
                                                   "fd00::3": {"remoteAs": 65003, "state": "Connect"}}}
        });
        assert_eq!(
            neighbor_state_in(&summary, "fd00::2").as_deref(),
            Some("Established")
        );
        assert_eq!(
            neighbor_state_in(&summary, "fd00::3").as_deref(),
            Some("Connect")
        );
        assert_eq!(neighbor_state_in(&summary, "10.0.0.9"), None);
        assert_eq!(neighbor_state_in(&serde_json::json!({}), "10.0.0.9"), None);
    }
}
