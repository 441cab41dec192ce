//! GoBGP as a peer inside a namespace: `gobgpd -f DIR/gobgpd.toml` with its gRPC API on
//! the namespace's own loopback (`--api-hosts 127.0.0.1:50051`, private to the namespace),
//! queried with `gobgp -j` (JSON). [`Gobgp::start`] runs Debian's GoBGP 3 from `PATH`;
//! [`Gobgp::start_v4`] the GoBGP v4 that `scripts/gobgp` builds (native BFD:
//! `[neighbors.bfd.config]`, [`Gobgp::bfd_state`]). Both take the same command line and
//! answer the same `gobgp -j` queries; only the config's BFD section is v4's alone.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::command;
use crate::daemon::Daemon;
use crate::error::{Error, Result};
use crate::netns::Netns;
use crate::route::Family;
use crate::wait::TIMEOUT;

/// The API address inside the namespace.
const API_HOST: &str = "127.0.0.1";
const API_PORT: &str = "50051";

/// A running gobgpd. Dropping it stops it.
#[derive(Debug)]
pub struct Gobgp {
    netns: String,
    dir: PathBuf,
    /// The `gobgp` CLI of the same release as the daemon.
    client: OsString,
    daemon: Daemon,
}

impl Gobgp {
    /// Starts Debian's gobgpd (GoBGP 3, from `PATH`) in `netns` with `config` (the text of
    /// a TOML config) and waits until the API answers.
    pub fn start(netns: &Netns, config: &str) -> Result<Gobgp> {
        Gobgp::start_with(netns, config, "gobgpd".into(), "gobgp".into())
    }

    /// Starts the GoBGP v4 that `scripts/gobgp` built (or `WREN_GOBGP_V4`) in `netns`
    /// with `config` and waits until the API answers.
    pub fn start_v4(netns: &Netns, config: &str) -> Result<Gobgp> {
        let (daemon, client) = crate::gobgp_build::gobgp_v4_binaries()
            .map_err(|reason| Error::invalid("GoBGP v4", reason))?;
        Gobgp::start_with(netns, config, daemon.into(), client.into())
    }

    fn start_with(
        netns: &Netns,
        config: &str,
        daemon: OsString,
        client: OsString,
    ) -> Result<Gobgp> {
        let dir = netns.dir().join("gobgp");
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        let config_path = dir.join("gobgpd.toml");
        std::fs::write(&config_path, config)
            .map_err(|e| Error::io(format!("writing {}", config_path.display()), e))?;
        let mut command = netns.command(&daemon);
        command
            .arg("-f")
            .arg(&config_path)
            .args(["-t", "toml", "-p", "--pprof-disable"])
            .arg(format!("--api-hosts={API_HOST}:{API_PORT}"));
        let daemon = netns.spawn_command("gobgpd", command)?;
        let gobgp = Gobgp {
            netns: netns.name().to_owned(),
            dir,
            client,
            daemon,
        };
        // `global` fails until the config (and so the global section) is loaded.
        gobgp
            .daemon
            .wait_for(TIMEOUT, "gobgp to reach gobgpd", || {
                gobgp.gobgp_json(&["global"])
            })?;
        Ok(gobgp)
    }

    /// The directory with the config and the log.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The process guard.
    pub fn daemon(&self) -> &Daemon {
        &self.daemon
    }

    /// Runs `gobgp ARGS...` against this daemon and returns the output.
    pub fn gobgp(&self, args: &[&str]) -> Result<String> {
        command::run(self.client().args(args))
    }

    /// Runs `gobgp -j ARGS...` and parses the JSON.
    pub fn gobgp_json(&self, args: &[&str]) -> Result<Value> {
        command::run_json(self.client().arg("-j").args(args))
    }

    /// `gobgp -j neighbor`: the neighbors with `conf` and `state`.
    pub fn neighbors(&self) -> Result<Value> {
        self.gobgp_json(&["neighbor"])
    }

    /// The session state of `neighbor` as GoBGP names it (`established`, `active`, ...).
    pub fn neighbor_state(&self, neighbor: &str) -> Result<Option<String>> {
        let neighbors = self.neighbors()?;
        Ok(neighbors.as_array().and_then(|list| {
            list.iter()
                .find(|n| n["conf"]["neighbor_address"].as_str() == Some(neighbor))
                .map(|n| session_state(&n["state"]["session_state"]))
        }))
    }

    /// The local BFD session state with `neighbor` (GoBGP v4: `state.bfd_state.session_state`
    /// of `gobgp -j neighbor`) as a lower-case name without the enum's prefix (`up`,
    /// `down`, `init`, `admin_down`), with the packets it sent and received; `None` when
    /// the neighbor is not configured or has no BFD state.
    pub fn bfd_state(&self, neighbor: &str) -> Result<Option<BfdState>> {
        let neighbors = self.neighbors()?;
        Ok(neighbors.as_array().and_then(|list| {
            list.iter()
                .find(|n| n["conf"]["neighbor_address"].as_str() == Some(neighbor))
                .and_then(|n| BfdState::of(&n["state"]["bfd_state"]))
        }))
    }

    /// Waits until every session in `neighbors` is established.
    pub fn wait_established(&self, timeout: Duration, neighbors: &[&str]) -> Result<()> {
        self.daemon.wait_for(
            timeout,
            &format!("GoBGP sessions {neighbors:?} established"),
            || {
                for neighbor in neighbors {
                    let state = self.neighbor_state(neighbor).map_err(|e| e.to_string())?;
                    if state.as_deref() != Some("established") {
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

    /// `gobgp -j global rib -a FAMILY`: `{"PREFIX": [paths...]}`.
    pub fn rib(&self, family: Family) -> Result<Value> {
        self.gobgp_json(&["global", "rib", "-a", family.gobgp()])
    }

    /// Waits until the global RIB has `prefix`; returns its paths.
    pub fn wait_route(&self, timeout: Duration, prefix: &str) -> Result<Vec<Value>> {
        self.daemon
            .wait_for(timeout, &format!("GoBGP to learn {prefix}"), || {
                let rib = self.rib(Family::of(prefix)).map_err(|e| e.to_string())?;
                match rib[prefix].as_array() {
                    Some(paths) if !paths.is_empty() => Ok(paths.clone()),
                    _ => Err("not in the global RIB".to_owned()),
                }
            })
    }

    /// Originates `prefix` with `next_hop` (`gobgp global rib add`).
    pub fn announce(&self, prefix: &str, next_hop: &str) -> Result<()> {
        let family = Family::of(prefix).gobgp();
        self.gobgp(&[
            "global", "rib", "add", "-a", family, prefix, "nexthop", next_hop,
        ])
        .map(drop)
    }

    /// Withdraws a prefix originated with [`Gobgp::announce`].
    pub fn withdraw(&self, prefix: &str) -> Result<()> {
        let family = Family::of(prefix).gobgp();
        self.gobgp(&["global", "rib", "del", "-a", family, prefix])
            .map(drop)
    }

    fn client(&self) -> std::process::Command {
        let mut command = std::process::Command::new("ip");
        command.args(["netns", "exec", &self.netns]);
        command
            .arg(&self.client)
            .args(["-u", API_HOST, "-p", API_PORT]);
        command
    }
}

/// GoBGP v4's view of one BFD session (`state.bfd_state` of a neighbor).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BfdState {
    /// `up`, `down`, `init` or `admin_down` (from `BFD_SESSION_STATE_UP` or the enum's
    /// number).
    pub state: String,
    /// `bfd_async.transmitted_packets`.
    pub transmitted: u64,
    /// `bfd_async.received_packets`.
    pub received: u64,
}

impl BfdState {
    fn of(value: &Value) -> Option<BfdState> {
        if value.is_null() {
            return None;
        }
        let state = &value["session_state"];
        let state = match state.as_u64() {
            Some(number) => match number {
                1 => "up",
                2 => "down",
                3 => "admin_down",
                4 => "init",
                _ => "unknown",
            }
            .to_owned(),
            None => state
                .as_str()
                .unwrap_or("unknown")
                .trim_start_matches("BFD_SESSION_STATE_")
                .to_lowercase(),
        };
        let count = |name: &str| value["bfd_async"][name].as_u64().unwrap_or(0);
        Some(BfdState {
            state,
            transmitted: count("transmitted_packets"),
            received: count("received_packets"),
        })
    }
}

/// GoBGP's JSON gives the session state as a number (the gRPC enum) or a name depending on
/// the version; both become the lower-case name.
fn session_state(value: &Value) -> String {
    if let Some(number) = value.as_u64() {
        return match number {
            1 => "idle",
            2 => "connect",
            3 => "active",
            4 => "opensent",
            5 => "openconfirm",
            6 => "established",
            _ => "unknown",
        }
        .to_owned();
    }
    value.as_str().unwrap_or("unknown").to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_states_both_spellings() {
        assert_eq!(session_state(&serde_json::json!(6)), "established");
        assert_eq!(
            session_state(&serde_json::json!("ESTABLISHED")),
            "established"
        );
        assert_eq!(session_state(&serde_json::json!(null)), "unknown");
    }

    #[test]
    fn bfd_states_both_spellings() {
        let named = serde_json::json!({
            "session_state": "BFD_SESSION_STATE_ADMIN_DOWN",
            "bfd_async": {"transmitted_packets": 7, "received_packets": 5}
        });
        assert_eq!(
            BfdState::of(&named),
            Some(BfdState {
                state: "admin_down".to_owned(),
                transmitted: 7,
                received: 5
            })
        );
        let numbered = serde_json::json!({"session_state": 1});
        assert_eq!(
            BfdState::of(&numbered).map(|s| s.state),
            Some("up".to_owned())
        );
        assert_eq!(BfdState::of(&serde_json::json!(null)), None);
    }
}
