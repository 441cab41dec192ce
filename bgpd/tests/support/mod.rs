//! Shared by bgpd's namespace tests: bgpd started from the built binary as a lab
//! `Daemon` inside a namespace, bgpctl against its control socket, and topology and
//! peer-config helpers. Every guard cleans up on drop.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use lab::{Daemon, Netns, Veth};
use serde_json::Value;

/// Generous: a loaded 2-core machine runs these in parallel.
pub const TIMEOUT: Duration = Duration::from_secs(60);

/// bgpd running in a namespace.
pub struct Wren {
    pub daemon: Daemon,
    pub socket: PathBuf,
    pub config_path: PathBuf,
}

impl Wren {
    /// The control socket path for a bgpd in `netns` (put it in the config).
    pub fn socket_path(netns: &Netns) -> PathBuf {
        netns.dir().join("bgpd.sock")
    }

    /// Writes `config` to the namespace's directory and starts bgpd with it; waits
    /// until the control socket answers.
    pub fn start(netns: &Netns, config: &str) -> Wren {
        let config_path = netns.dir().join("bgpd.toml");
        std::fs::write(&config_path, config).unwrap();
        let mut command = netns.command(env!("CARGO_BIN_EXE_bgpd"));
        command
            .arg("--config")
            .arg(&config_path)
            .env("RUST_LOG", "bgpd=debug,info");
        let daemon = netns.spawn_command("bgpd", command).unwrap();
        let wren = Wren {
            daemon,
            socket: Wren::socket_path(netns),
            config_path,
        };
        wren.daemon
            .wait_for(TIMEOUT, "bgpd's control socket to answer", || {
                let output = wren.bgpctl(&["show", "neighbors"]);
                if output.status.success() {
                    Ok(())
                } else {
                    Err(String::from_utf8_lossy(&output.stderr).into_owned())
                }
            })
            .unwrap();
        wren
    }

    /// Runs bgpctl against this bgpd.
    pub fn bgpctl(&self, args: &[&str]) -> Output {
        bgpctl(&self.socket, args)
    }

    /// Runs bgpctl and returns stdout; panics with stderr on failure.
    pub fn bgpctl_ok(&self, args: &[&str]) -> String {
        let output = self.bgpctl(args);
        assert!(
            output.status.success(),
            "bgpctl {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    /// `bgpctl --json ARGS`, parsed.
    pub fn bgpctl_json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        serde_json::from_str(&self.bgpctl_ok(&all)).unwrap()
    }

    /// The neighbor entry of `address` in `show neighbors --json`.
    pub fn neighbor(&self, address: &str) -> Option<Value> {
        let list = self.bgpctl_json(&["show", "neighbors"]);
        list.as_array()?
            .iter()
            .find(|n| n["address"] == address)
            .cloned()
    }

    /// Waits until every neighbor listed is Established (seen by bgpd).
    pub fn wait_established(&self, neighbors: &[&str]) {
        self.daemon
            .wait_for(
                TIMEOUT,
                &format!("bgpd sessions {neighbors:?} Established"),
                || {
                    for address in neighbors {
                        let state = self
                            .neighbor(address)
                            .map(|n| n["state"].as_str().unwrap_or("").to_owned());
                        if state.as_deref() != Some("Established") {
                            return Err(format!("{address} is {state:?}"));
                        }
                    }
                    Ok(())
                },
            )
            .unwrap();
    }

    /// The paths bgpd has for `prefix` (`show routes PREFIX --json`).
    pub fn paths(&self, prefix: &str) -> Vec<Value> {
        self.bgpctl_json(&["show", "routes", prefix])
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|route| route["prefix"] == prefix)
            .collect()
    }

    /// Waits until bgpd has a path for `prefix`; returns the paths.
    pub fn wait_route(&self, prefix: &str) -> Vec<Value> {
        self.daemon
            .wait_for(TIMEOUT, &format!("bgpd to learn {prefix}"), || {
                let paths = self.paths(prefix);
                if paths.is_empty() {
                    Err("no path")
                } else {
                    Ok(paths)
                }
            })
            .unwrap()
    }

    /// Waits until bgpd has no path for `prefix`.
    pub fn wait_no_route(&self, prefix: &str) {
        self.daemon
            .wait_for(TIMEOUT, &format!("bgpd to drop {prefix}"), || {
                let paths = self.paths(prefix);
                if paths.is_empty() {
                    Ok(())
                } else {
                    Err(format!("{} paths left", paths.len()))
                }
            })
            .unwrap();
    }
}

/// Runs bgpctl with `--socket PATH`.
pub fn bgpctl(socket: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bgpctl"))
        .arg("--socket")
        .arg(socket)
        .args(args)
        .output()
        .unwrap()
}

/// Two namespaces joined by eth1: `a` gets `NET.1/24`, `b` gets `NET.2/24` (IPv4) and
/// `fd00:NET6::1/64`, `::2` (IPv6).
pub struct Pair {
    pub a: Netns,
    pub b: Netns,
    pub link: Veth,
}

pub fn pair(prefix: &str, net: &str, net6: &str) -> Pair {
    let a = Netns::new(&format!("{prefix}a")).unwrap();
    let b = Netns::new(&format!("{prefix}b")).unwrap();
    let link = Veth::new(&a, "eth1", &b, "eth1").unwrap();
    a.iface("eth1").addr(&format!("{net}.1/24")).unwrap();
    b.iface("eth1").addr(&format!("{net}.2/24")).unwrap();
    a.iface("eth1").addr(&format!("{net6}::1/64")).unwrap();
    b.iface("eth1").addr(&format!("{net6}::2/64")).unwrap();
    Pair { a, b, link }
}

/// A bgpd config: AS 64512, router id `router_id`, listening on 0.0.0.0 and ::,
/// the control socket at `socket`, short connect retry, the FIB off unless `fib`;
/// `rest` adds neighbors, networks and more.
pub fn wren_config(router_id: &str, socket: &Path, fib: bool, rest: &str) -> String {
    format!(
        "[bgp]
asn = 64512
router_id = \"{router_id}\"
listen = [\"0.0.0.0:179\", \"[::]:179\"]

[control]
socket = \"{}\"

[fib]
enabled = {fib}

{rest}
",
        socket.display()
    )
}

/// FRR as an eBGP or iBGP peer of bgpd: AS `asn`, `neighbor_lines` inside
/// `router bgp` (e.g. "neighbor 10.0.0.1 remote-as 64512"), and `af_lines` inside
/// `address-family ipv4 unicast`; static blackholes for `networks`.
pub fn frr_config(
    asn: u32,
    router_id: &str,
    neighbor_lines: &str,
    af4: &str,
    af6: &str,
    networks: &[&str],
) -> String {
    let mut statics = String::new();
    for network in networks {
        if network.contains(':') {
            statics.push_str(&format!("ipv6 route {network} blackhole\n"));
        } else {
            statics.push_str(&format!("ip route {network} blackhole\n"));
        }
    }
    format!(
        "frr defaults datacenter
hostname frr
{statics}router bgp {asn}
 bgp router-id {router_id}
 no bgp ebgp-requires-policy
 no bgp network import-check
{neighbor_lines}
 address-family ipv4 unicast
{af4}
 exit-address-family
 address-family ipv6 unicast
{af6}
 exit-address-family
"
    )
}

/// FRR's view of neighbor `address` (`show bgp neighbors ADDR json`).
pub fn frr_neighbor(frr: &lab::Frr, address: &str) -> Value {
    frr.vtysh_json(&format!("show bgp neighbors {address} json"))
        .unwrap()[address]
        .clone()
}

/// Copies a binary into `dir` (mode 0755) so that any user can run it, and waits
/// until it can be executed: a process another test thread forked while the copy
/// was open for writing holds it open until it execs, and until then running the
/// copy fails with ETXTBSY.
pub fn public_binary(source: &Path, dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let name = source.file_name().expect("binary name");
    let path = dir.join(name);
    std::fs::copy(source, &path).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    lab::wait_for(
        TIMEOUT,
        &format!("{} to be executable", path.display()),
        || match Command::new(&path).arg("--version").output() {
            Ok(output) if output.status.success() => Ok(()),
            Ok(output) => Err(format!("{output:?}")),
            Err(error) => Err(error.to_string()),
        },
    )
    .unwrap();
    path
}
