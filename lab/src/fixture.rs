//! Test fixtures around Wren's own binaries, shared by bgpd's tests and the cross-crate
//! tests of the top-level `tests` package: bgpd started from the built binary as a
//! [`Daemon`] inside a namespace, bgpctl against its control socket, its kernel routes, the
//! config texts of bgpd and of FRR and GoBGP as its peers (FRR with bfdd started, its BFD
//! peers), and two namespaces joined by a link.
//!
//! Unlike the rest of the library these are assertions: every function panics, with what
//! it was doing and bgpd's log tail, when the daemon or a command does not do what the test
//! expects. Guards clean up on drop, also when a test panics.
//!
//! The binaries are found with [`find_wren_binary`] (`cargo build --workspace --bins` puts
//! them in the target dir; `scripts/test` does that before `cargo test`), so the same
//! fixture works from any package, whichever crate builds bgpctl. [`wren_binary`] refuses a
//! binary older than one of its sources (cargo's dep-info file beside it lists them).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;

use crate::daemon::Daemon;
use crate::frr::Frr;
use crate::kube::ControlPlane;
use crate::link::Veth;
use crate::netns::Netns;
use crate::route::Family;
use crate::topology::find_wren_binary;
use crate::wait::{TIMEOUT, wait_for};

/// The path of Wren binary `name` (bgpd, bgpctl, wren-ipam, wren-lab); panics saying how to
/// build it when it is missing, or when cargo built it and one of its sources changed since
/// (a test would run the old code).
#[track_caller]
pub fn wren_binary(name: &str) -> PathBuf {
    let Some(binary) = find_wren_binary(name) else {
        panic!(
            "Wren binary {name} not found (target dir, WREN_BIN_DIR, PATH): \
             run `cargo build --workspace --bins` first"
        );
    };
    if let Some(source) = newer_source(&binary) {
        panic!(
            "{} is older than its source {}: run `cargo build --workspace --bins` first",
            binary.display(),
            source.display()
        );
    }
    binary
}

/// A source of `binary` changed (or gone) since cargo built it, from the dep-info file cargo
/// writes beside it (`target/debug/bgpd.d`: `BINARY: SOURCE...`, spaces in paths escaped);
/// `None` when there is no such file (an installed binary) or every source is older.
fn newer_source(binary: &Path) -> Option<PathBuf> {
    let built = std::fs::metadata(binary).and_then(|m| m.modified()).ok()?;
    let mut dep_info = binary.as_os_str().to_owned();
    dep_info.push(".d");
    let text = std::fs::read_to_string(dep_info).ok()?;
    let (_, sources) = text.lines().next()?.split_once(": ")?;
    let mut paths = Vec::new();
    let mut current = String::new();
    let mut chars = sources.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => current.extend(chars.next()),
            ' ' => paths.push(std::mem::take(&mut current)),
            other => current.push(other),
        }
    }
    paths.push(current);
    paths
        .into_iter()
        .filter(|path| !path.is_empty())
        .map(PathBuf::from)
        .find(|path| {
            std::fs::metadata(path)
                .and_then(|m| m.modified())
                .map_or(true, |modified| modified > built)
        })
}

/// bgpctl's `--json` output for `args`: one document, except `show routes`, which
/// prints one route per line (NDJSON), returned as one array.
pub fn parse_bgpctl_json(args: &[&str], stdout: &str) -> serde_json::Result<Value> {
    if args.windows(2).any(|pair| pair == ["show", "routes"]) {
        stdout
            .lines()
            .map(serde_json::from_str)
            .collect::<serde_json::Result<Vec<Value>>>()
            .map(Value::Array)
    } else {
        serde_json::from_str(stdout)
    }
}

/// bgpd running in a namespace.
#[derive(Debug)]
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

    /// Writes `config` to the namespace's directory and starts the built bgpd with it;
    /// waits until the control socket answers.
    #[track_caller]
    pub fn start(netns: &Netns, config: &str) -> Wren {
        Wren::start_with_env(netns, config, &[])
    }

    /// [`Wren::start`] with [`wren_config`]: router id `router_id`, the control socket at
    /// [`Wren::socket_path`], its FIB on when `fib`, and `rest` (neighbors, networks...).
    #[track_caller]
    pub fn start_with_config(netns: &Netns, router_id: &str, fib: bool, rest: &str) -> Wren {
        let config = wren_config(router_id, &Wren::socket_path(netns), fib, rest);
        Wren::start(netns, &config)
    }

    /// [`Wren::start`] with these environment variables set for bgpd (`NODENAME`).
    #[track_caller]
    pub fn start_with_env(netns: &Netns, config: &str, env: &[(&str, &str)]) -> Wren {
        let binary = wren_binary("bgpd");
        let config_path = netns.dir().join("bgpd.toml");
        if let Err(error) = std::fs::write(&config_path, config) {
            panic!("writing {}: {error}", config_path.display());
        }
        let mut command = netns.command(&binary);
        command
            .arg("--config")
            .arg(&config_path)
            .env("RUST_LOG", "bgpd=debug,info")
            .envs(env.iter().copied());
        let daemon = netns
            .spawn_command("bgpd", command)
            .unwrap_or_else(|error| panic!("starting bgpd in {}: {error}", netns.name()));
        let wren = Wren {
            daemon,
            socket: Wren::socket_path(netns),
            config_path,
        };
        let answered = wren
            .daemon
            .wait_for(TIMEOUT, "bgpd's control socket to answer", || {
                let output = wren.bgpctl(&["show", "neighbors"]);
                if output.status.success() {
                    Ok(())
                } else {
                    Err(String::from_utf8_lossy(&output.stderr).into_owned())
                }
            });
        if let Err(error) = answered {
            panic!("{error}");
        }
        wren
    }

    /// Runs bgpctl against this bgpd.
    #[track_caller]
    pub fn bgpctl(&self, args: &[&str]) -> Output {
        bgpctl(&self.socket, args)
    }

    /// Runs bgpctl and returns stdout; panics with stderr on failure.
    #[track_caller]
    pub fn bgpctl_ok(&self, args: &[&str]) -> String {
        let output = self.bgpctl(args);
        assert!(
            output.status.success(),
            "bgpctl {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// `bgpctl --json ARGS`, parsed (`show routes`: its lines as one array).
    #[track_caller]
    pub fn bgpctl_json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let text = self.bgpctl_ok(&all);
        parse_bgpctl_json(args, &text)
            .unwrap_or_else(|error| panic!("bgpctl {all:?} printed no JSON ({error}): {text}"))
    }

    /// The neighbor entry of `address` in `show neighbors --json`.
    #[track_caller]
    pub fn neighbor(&self, address: &str) -> Option<Value> {
        let list = self.bgpctl_json(&["show", "neighbors"]);
        list.as_array()?
            .iter()
            .find(|n| n["address"] == address)
            .cloned()
    }

    /// Polls `probe` until it gives `Some` (at most `timeout`); panics naming `what`
    /// with bgpd's log tail, at once when bgpd exits.
    #[track_caller]
    pub fn wait_for<T>(
        &self,
        timeout: Duration,
        what: &str,
        mut probe: impl FnMut() -> Option<T>,
    ) -> T {
        self.daemon
            .wait_for(timeout, what, || probe().ok_or("not yet"))
            .unwrap_or_else(|error| panic!("{error}"))
    }

    /// Waits until every neighbor listed is Established (seen by bgpd).
    #[track_caller]
    pub fn wait_established(&self, neighbors: &[&str]) {
        let established = self.daemon.wait_for(
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
        );
        if let Err(error) = established {
            panic!("{error}");
        }
    }

    /// The paths bgpd has for `prefix` (`show routes PREFIX --json`).
    #[track_caller]
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
    #[track_caller]
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
            .unwrap_or_else(|error| panic!("{error}"))
    }

    /// Waits until bgpd has no path for `prefix`.
    #[track_caller]
    pub fn wait_no_route(&self, prefix: &str) {
        let gone = self
            .daemon
            .wait_for(TIMEOUT, &format!("bgpd to drop {prefix}"), || {
                let paths = self.paths(prefix);
                if paths.is_empty() {
                    Ok(())
                } else {
                    Err(format!("{} paths left", paths.len()))
                }
            });
        if let Err(error) = gone {
            panic!("{error}");
        }
    }
}

/// The built bgpctl with `--socket PATH`, to add arguments and redirections to.
#[track_caller]
pub fn bgpctl_command(socket: &Path) -> Command {
    let mut command = Command::new(wren_binary("bgpctl"));
    command.arg("--socket").arg(socket);
    command
}

/// Runs the built bgpctl with `--socket PATH`.
#[track_caller]
pub fn bgpctl(socket: &Path, args: &[&str]) -> Output {
    bgpctl_command(socket)
        .args(args)
        .output()
        .unwrap_or_else(|error| panic!("running bgpctl: {error}"))
}

/// Two namespaces joined by eth1: `a` gets `NET.1/24`, `b` gets `NET.2/24` (IPv4) and
/// `fd00:NET6::1/64`, `::2` (IPv6).
#[derive(Debug)]
pub struct Pair {
    pub a: Netns,
    pub b: Netns,
    pub link: Veth,
}

/// Builds a [`Pair`] with namespaces named `PREFIXa` and `PREFIXb` (made unique).
#[track_caller]
pub fn pair(prefix: &str, net: &str, net6: &str) -> Pair {
    let built = (|| -> crate::Result<Pair> {
        let a = Netns::new(&format!("{prefix}a"))?;
        let b = Netns::new(&format!("{prefix}b"))?;
        let link = Veth::new(&a, "eth1", &b, "eth1")?;
        a.iface("eth1").addr(&format!("{net}.1/24"))?;
        b.iface("eth1").addr(&format!("{net}.2/24"))?;
        a.iface("eth1").addr(&format!("{net6}::1/64"))?;
        b.iface("eth1").addr(&format!("{net6}::2/64"))?;
        Ok(Pair { a, b, link })
    })();
    built.unwrap_or_else(|error| panic!("namespace pair {prefix}: {error}"))
}

/// bgpd in `pair.b` (`NET.2`, AS 65001) peering from its file with both of a's
/// addresses (`NET.1` and `NET6::1`, AS 64512): the outside peer of a bgpd that a
/// test runs in `pair.a` with the default AS.
pub fn peer_of_a(pair: &Pair, net: &str, net6: &str) -> Wren {
    let neighbors = format!(
        "[[bgp.neighbor]]\naddress = \"{net}.1\"\nremote_asn = 64512\n\
         [[bgp.neighbor]]\naddress = \"{net6}::1\"\nremote_asn = 64512\n"
    );
    let config = wren_config(
        &format!("{net}.2"),
        &Wren::socket_path(&pair.b),
        false,
        &neighbors,
    )
    .replace("asn = 64512\nrouter_id", "asn = 65001\nrouter_id");
    Wren::start(&pair.b, &config)
}

/// A bgpd config: AS 64512, router id `router_id`, listening on 0.0.0.0 and ::,
/// the control socket at `socket`, short connect retry, the FIB off unless `fib`;
/// `rest` adds neighbors, networks and more. With `[ipam]` in `rest` and no
/// `[dataplane]`, the dataplane's state directory (the pod MTU file) is the socket's
/// directory, not the host's `/var/lib/wren`.
pub fn wren_config(router_id: &str, socket: &Path, fib: bool, rest: &str) -> String {
    let state = match socket.parent() {
        Some(dir) if rest.contains("[ipam]") && !rest.contains("[dataplane]") => {
            format!("[dataplane]\nstate_dir = \"{}\"\n", dir.display())
        }
        _ => String::new(),
    };
    format!(
        "[bgp]
asn = 64512
router_id = \"{router_id}\"
listen = [\"0.0.0.0:179\", \"[::]:179\"]

[control]
socket = \"{}\"

[fib]
enabled = {fib}

{state}
{rest}
",
        socket.display()
    )
}

/// FRR as an eBGP or iBGP peer of bgpd: AS `asn`, `neighbor_lines` inside
/// `router bgp` (e.g. "neighbor 10.0.0.1 remote-as 64512"), and `af4`/`af6` lines inside
/// the IPv4 and IPv6 unicast address families; static blackholes for `networks`.
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

/// FRR (bgpd and bfdd, AS 65001) in `netns` with `neighbor_lines` inside `router bgp`,
/// announcing `prefixes` (IPv4).
#[track_caller]
pub fn frr_with_bfdd(
    netns: &Netns,
    router_id: &str,
    neighbor_lines: &str,
    prefixes: &[&str],
) -> Frr {
    let networks: Vec<String> = prefixes
        .iter()
        .map(|prefix| format!("  network {prefix}"))
        .collect();
    let config = frr_config(
        65001,
        router_id,
        neighbor_lines,
        &networks.join("\n"),
        "",
        prefixes,
    );
    Frr::start_daemons(netns, &config, &["bgpd", "bfdd"])
        .unwrap_or_else(|error| panic!("FRR with bfdd in {}: {error}", netns.name()))
}

/// FRR's BFD peer `address` from `show bfd peers json`, if it has one.
pub fn frr_bfd_peer(frr: &Frr, address: &str) -> Option<Value> {
    let peers = frr.vtysh_json("show bfd peers json").ok()?;
    peers
        .as_array()?
        .iter()
        .find(|peer| peer["peer"] == address)
        .cloned()
}

/// GoBGP as a peer: AS `asn`, router id `router_id`, one neighbor `neighbor` of AS
/// `peer_as`, retrying the connection every second, hold time 9 s.
pub fn gobgp_config(asn: u32, router_id: &str, neighbor: &str, peer_as: u32) -> String {
    format!(
        r#"[global.config]
  as = {asn}
  router-id = "{router_id}"

[[neighbors]]
  [neighbors.config]
    neighbor-address = "{neighbor}"
    peer-as = {peer_as}
  [neighbors.timers.config]
    connect-retry = 1
    hold-time = 9
    keepalive-interval = 3
"#
    )
}

/// `kubectl apply -f -` of one `object` on `control`'s API server.
#[track_caller]
pub fn kubectl_apply(control: &ControlPlane, object: &Value) {
    if let Err(error) = control.kubectl_input(&["apply", "-f", "-"], &object.to_string()) {
        panic!("kubectl apply {object}: {error}");
    }
}

/// Applies CustomResourceDefinitions and waits until the API server serves them.
#[track_caller]
pub fn apply_crds(control: &ControlPlane, crds: &[impl serde::Serialize]) {
    let mut names = Vec::new();
    for crd in crds {
        let crd = serde_json::to_value(crd)
            .unwrap_or_else(|error| panic!("a CustomResourceDefinition as JSON: {error}"));
        kubectl_apply(control, &crd);
        names.push(format!(
            "crd/{}",
            crd["metadata"]["name"].as_str().unwrap_or_default()
        ));
    }
    let mut wait = vec!["wait", "--for=condition=Established", "--timeout=60s"];
    wait.extend(names.iter().map(String::as_str));
    if let Err(error) = control.kubectl(&wait) {
        panic!("{names:?} not Established: {error}");
    }
}

/// FRR's view of neighbor `address` (`show bgp neighbors ADDR json`).
#[track_caller]
pub fn frr_neighbor(frr: &Frr, address: &str) -> Value {
    frr.vtysh_json(&format!("show bgp neighbors {address} json"))
        .unwrap_or_else(|error| panic!("FRR's neighbor {address}: {error}"))[address]
        .clone()
}

/// The routing protocol number bgpd tags its kernel routes with unless configured
/// otherwise (`[fib] protocol`).
pub const PROTOCOL: &str = "196";

/// bgpd's kernel route (protocol [`PROTOCOL`]) for exactly `prefix` in the main table of
/// `netns`, if any.
#[track_caller]
pub fn kernel_route(netns: &Netns, prefix: &str) -> Option<Value> {
    let routes = netns
        .routes(Family::of(prefix), &["proto", PROTOCOL, "exact", prefix])
        .unwrap_or_else(|error| panic!("bgpd's kernel route for {prefix}: {error}"));
    routes.as_array().and_then(|routes| routes.first().cloned())
}

/// Copies a binary into `dir` (mode 0755) so that any user can run it, and waits
/// until it can be executed: a process another test thread forked while the copy
/// was open for writing holds it open until it execs, and until then running the
/// copy fails with ETXTBSY.
#[track_caller]
pub fn public_binary(source: &Path, dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let Some(name) = source.file_name() else {
        panic!("{} names no file", source.display());
    };
    let path = dir.join(name);
    let copied = std::fs::copy(source, &path)
        .and_then(|_| std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)));
    if let Err(error) = copied {
        panic!(
            "copying {} to {}: {error}",
            source.display(),
            path.display()
        );
    }
    let runs = wait_for(
        TIMEOUT,
        &format!("{} to be executable", path.display()),
        || match Command::new(&path).arg("--version").output() {
            Ok(output) if output.status.success() => Ok(()),
            Ok(output) => Err(format!("{output:?}")),
            Err(error) => Err(error.to_string()),
        },
    );
    if let Err(error) = runs {
        panic!("{error}");
    }
    path
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    #[should_panic(expected = "run `cargo build --workspace --bins` first")]
    fn a_missing_binary_says_how_to_build_it() {
        wren_binary("wren-no-such-binary");
    }

    #[test]
    fn a_binary_older_than_a_source_is_stale() {
        use std::time::{Duration, SystemTime};
        let dir = tempfile::tempdir().unwrap();
        let binary = dir.path().join("bgpd");
        let source = dir.path().join("a dir").join("main.rs");
        std::fs::create_dir(source.parent().unwrap()).unwrap();
        std::fs::write(&source, "fn main() {}").unwrap();
        std::fs::write(&binary, "").unwrap();
        // No dep-info file (an installed binary): not judged.
        assert_eq!(newer_source(&binary), None);
        let escaped = source.display().to_string().replace(' ', "\\ ");
        std::fs::write(
            dir.path().join("bgpd.d"),
            format!("{}: {escaped}\n", binary.display()),
        )
        .unwrap();
        let set = |path: &Path, time: SystemTime| {
            std::fs::File::options()
                .write(true)
                .open(path)
                .unwrap()
                .set_modified(time)
                .unwrap();
        };
        let now = SystemTime::now();
        set(&source, now - Duration::from_secs(60));
        set(&binary, now);
        assert_eq!(newer_source(&binary), None);
        set(&source, now + Duration::from_secs(60));
        assert_eq!(newer_source(&binary), Some(source.clone()));
        // A source that is gone means the binary is stale too.
        std::fs::remove_file(&source).unwrap();
        assert_eq!(newer_source(&binary), Some(source));
    }
}
