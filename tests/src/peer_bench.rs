//! The conformance and fault tests' bench: bgpd in one namespace, the
//! adversarial peer (crate `peer`) in another, one veth between them.
//!
//! Addresses (the same in every test: each test has its own namespaces):
//! - bgpd's side, `eth1`: 10.66.255.254/16 (BGP), 192.0.2.254/24, 2001:db8::254/64;
//! - the peer's side, `eth1`: 192.0.2.1/24 and 2001:db8::1/64 (the next hops it
//!   announces, on the link so the kernel takes routes via them), and one address
//!   10.66.R.N/16 per connection, taken fresh with [`Bench::fresh_address`] so that
//!   each connection is a new dynamic neighbor of listen range 10.66.R.0/24.
//!
//! Every guard cleans up on drop, also when a test panics.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Mutex;

pub use lab::TIMEOUT;
use lab::fixture::wren_binary;
use lab::{Daemon, Netns, Veth};
use peer::{ConnectOptions, Peer};

/// bgpd's BGP address.
pub const DAEMON: Ipv4Addr = Ipv4Addr::new(10, 66, 255, 254);

/// bgpd with the peer's namespace next to it.
#[derive(Debug)]
pub struct Bench {
    pub bgpd: Daemon,
    pub observer: peer::Daemon,
    pub socket: PathBuf,
    pub config_path: PathBuf,
    next_host: Mutex<HashMap<u8, u8>>,
    pub link: Veth,
    pub peer_ns: Netns,
    pub daemon_ns: Netns,
}

impl Bench {
    /// The namespaces (named `PREFIX`d and `PREFIX`p), the link, and bgpd started
    /// with `config` (see [`config`]); waits until its control socket answers.
    pub fn start(prefix: &str, config: impl FnOnce(&std::path::Path) -> String) -> Bench {
        Bench::start_with_env(prefix, &[], config)
    }

    /// Like [`Bench::start`], with `env` set for bgpd (kept across restarts).
    pub fn start_with_env(
        prefix: &str,
        env: &[(&str, &str)],
        config: impl FnOnce(&std::path::Path) -> String,
    ) -> Bench {
        Bench::start_full(prefix, &[], env, config)
    }

    /// Like [`Bench::start`], with bgpd run by `wrapper` (a command and its arguments
    /// that end by running the command after them, such as `prlimit --nofile=64:4096 --`).
    pub fn start_wrapped(
        prefix: &str,
        wrapper: &[&str],
        config: impl FnOnce(&std::path::Path) -> String,
    ) -> Bench {
        Bench::start_full(prefix, wrapper, &[], config)
    }

    fn start_full(
        prefix: &str,
        wrapper: &[&str],
        env: &[(&str, &str)],
        config: impl FnOnce(&std::path::Path) -> String,
    ) -> Bench {
        let daemon_ns = Netns::new(&format!("{prefix}d")).unwrap();
        let peer_ns = Netns::new(&format!("{prefix}p")).unwrap();
        let link = Veth::new(&daemon_ns, "eth1", &peer_ns, "eth1").unwrap();
        for address in ["10.66.255.254/16", "192.0.2.254/24", "2001:db8::254/64"] {
            daemon_ns.iface("eth1").addr(address).unwrap();
        }
        for address in ["192.0.2.1/24", "2001:db8::1/64"] {
            peer_ns.iface("eth1").addr(address).unwrap();
        }
        let socket = daemon_ns.dir().join("bgpd.sock");
        let config_path = daemon_ns.dir().join("bgpd.toml");
        std::fs::write(&config_path, config(&socket)).unwrap();
        let bgpd = spawn_bgpd(&daemon_ns, &config_path, &[], env, wrapper);
        let observer = peer::Daemon::new(&wren_binary("bgpctl"), &socket, Some(daemon_ns.name()));
        let bench = Bench {
            bgpd,
            observer,
            socket,
            config_path,
            next_host: Mutex::new(HashMap::new()),
            link,
            peer_ns,
            daemon_ns,
        };
        bench.wait_control();
        bench
    }

    /// Waits until bgpd's control socket answers.
    pub fn wait_control(&self) {
        self.bgpd
            .wait_for(TIMEOUT, "bgpd's control socket to answer", || {
                self.observer.neighbors().map_err(|e| e.to_string())
            })
            .unwrap();
    }

    /// A new address 10.66.`range`.N on the peer's side, never used before in this
    /// test.
    pub fn fresh_address(&self, range: u8) -> Ipv4Addr {
        let host = {
            let mut next = self.next_host.lock().unwrap();
            let host = next.entry(range).or_insert(0);
            *host += 1;
            assert!(*host < 255, "listen range 10.66.{range}.0/24 used up");
            *host
        };
        let address = Ipv4Addr::new(10, 66, range, host);
        self.peer_ns
            .iface("eth1")
            .addr(&format!("{address}/16"))
            .unwrap();
        address
    }

    /// A TCP connection from `source` (in the peer's namespace) to bgpd.
    pub fn connect(&self, source: Ipv4Addr) -> Peer {
        self.connect_with(source, |_| {})
    }

    /// Like [`Bench::connect`], with socket options changed by `adjust`.
    pub fn connect_with(&self, source: Ipv4Addr, adjust: impl FnOnce(&mut ConnectOptions)) -> Peer {
        let mut options = ConnectOptions::new(SocketAddr::new(IpAddr::V4(DAEMON), 179));
        options.local = Some(IpAddr::V4(source));
        adjust(&mut options);
        self.peer_ns
            .enter(|| Peer::connect(&options))
            .unwrap()
            .unwrap_or_else(|e| panic!("connecting from {source}: {e}"))
    }

    /// Panics with bgpd's log tail if bgpd has exited.
    pub fn assert_alive(&self) {
        if let Some(status) = self.bgpd.exit_status() {
            panic!("bgpd exited ({status}); log:\n{}", self.bgpd.log_tail(60));
        }
    }
}

/// Starts bgpd (the built binary) in `netns` with `config_path` and `extra` arguments,
/// logging at debug level to the namespace's directory.
pub fn start_bgpd(netns: &Netns, config_path: &std::path::Path, extra: &[&str]) -> Daemon {
    spawn_bgpd(netns, config_path, extra, &[], &[])
}

fn spawn_bgpd(
    netns: &Netns,
    config_path: &std::path::Path,
    extra: &[&str],
    env: &[(&str, &str)],
    wrapper: &[&str],
) -> Daemon {
    let mut command = match wrapper.split_first() {
        Some((program, arguments)) => {
            let mut command = netns.command(program);
            command.args(arguments).arg(wren_binary("bgpd"));
            command
        }
        None => netns.command(wren_binary("bgpd")),
    };
    command
        .arg("--config")
        .arg(config_path)
        .args(extra)
        .env("RUST_LOG", "bgpd=debug,info")
        .envs(env.iter().copied());
    netns.spawn_command("bgpd", command).unwrap()
}

/// A bgpd config: AS 64512, router id and listen address [`DAEMON`], the control
/// socket at `socket`, the FIB on or off, then `rest` (listen ranges, neighbors).
pub fn config(socket: &std::path::Path, fib: bool, rest: &str) -> String {
    format!(
        "[bgp]
asn = 64512
router_id = \"{DAEMON}\"
listen = [\"{DAEMON}:179\"]

{rest}

[control]
socket = \"{}\"

[fib]
enabled = {fib}
",
        socket.display()
    )
}

/// A `[[bgp.listen_range]]` for 10.66.`range`.0/24 with AS `asn`, IPv4 and IPv6, and
/// `extra` lines.
pub fn listen_range(range: u8, asn: u32, extra: &str) -> String {
    format!(
        "[[bgp.listen_range]]
prefix = \"10.66.{range}.0/24\"
remote_asn = {asn}
families = [\"ipv4\", \"ipv6\"]
{extra}
"
    )
}
