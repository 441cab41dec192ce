//! A single-member etcd for tests: started from /usr/bin/etcd on free ports, in a namespace
//! or on the host's loopback, with a temporary data directory; waits until healthy and gives
//! the client endpoint URL. Fault tests kill it (SIGKILL) and restart it on the same ports
//! and data.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use tempfile::TempDir;

use crate::command;
use crate::daemon::Daemon;
use crate::error::{Error, Result};
use crate::netns::Netns;
use crate::prereq::{find_program, keep_files, scratch_dir};
use crate::wait::TIMEOUT;

/// A running etcd. Dropping it stops etcd and removes its data.
#[derive(Debug)]
pub struct Etcd {
    daemon: Daemon,
    netns: Option<String>,
    endpoint: String,
    dir: TempDir,
}

impl Etcd {
    /// Starts etcd on the host's 127.0.0.1 with free ports and waits until it is healthy.
    pub fn on_host() -> Result<Etcd> {
        Etcd::start(None, IpAddr::V4(Ipv4Addr::LOCALHOST))
    }

    /// Starts etcd inside `netns`, listening on `ip` (an address of the namespace, or
    /// 127.0.0.1 for clients inside it only), and waits until it is healthy.
    pub fn in_netns(netns: &Netns, ip: IpAddr) -> Result<Etcd> {
        Etcd::start(Some(netns), ip)
    }

    fn start(netns: Option<&Netns>, ip: IpAddr) -> Result<Etcd> {
        let etcd =
            find_program("etcd").ok_or_else(|| Error::invalid("etcd", "not found in PATH"))?;
        let dir =
            scratch_dir("wren-etcd-").map_err(|e| Error::io("creating an etcd directory", e))?;
        let (client_port, peer_port) = match netns {
            Some(netns) => netns.enter(|| free_ports(ip))??,
            None => free_ports(ip)?,
        };
        let host = match ip {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => format!("[{v6}]"),
        };
        let endpoint = format!("http://{host}:{client_port}");
        let peer = format!("http://{host}:{peer_port}");
        let name = "wren-lab";
        let mut command = match netns {
            Some(netns) => netns.command(&etcd),
            None => Command::new(&etcd),
        };
        command
            .args(["--name", name, "--data-dir"])
            .arg(dir.path().join("data"))
            .args([
                "--listen-client-urls",
                &endpoint,
                "--advertise-client-urls",
                &endpoint,
            ])
            .args([
                "--listen-peer-urls",
                &peer,
                "--initial-advertise-peer-urls",
                &peer,
            ])
            .args(["--initial-cluster", &format!("{name}={peer}")])
            .args(["--initial-cluster-state", "new", "--log-level", "warn"]);
        let label = match netns {
            Some(netns) => format!("etcd@{}", netns.name()),
            None => "etcd".to_owned(),
        };
        let daemon = Daemon::spawn(&label, command, &dir.path().join("etcd.log"))?;
        let etcd = Etcd {
            daemon,
            netns: netns.map(|ns| ns.name().to_owned()),
            endpoint,
            dir,
        };
        etcd.wait_healthy(TIMEOUT)?;
        Ok(etcd)
    }

    /// The client URL, `http://IP:PORT`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The data and log directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The etcd process guard (pid, log, signals).
    pub fn daemon(&self) -> &Daemon {
        &self.daemon
    }

    /// True when `etcdctl endpoint health` succeeds now.
    pub fn is_healthy(&self) -> bool {
        self.etcdctl(&["endpoint", "health"]).is_ok()
    }

    /// Waits until etcd answers health checks.
    pub fn wait_healthy(&self, timeout: Duration) -> Result<()> {
        self.daemon
            .wait_for(
                timeout,
                &format!("etcd healthy at {}", self.endpoint),
                || self.etcdctl(&["endpoint", "health"]),
            )
            .map(drop)
    }

    /// Runs `etcdctl --endpoints URL ARGS...` (API v3) where etcd runs; returns stdout.
    pub fn etcdctl(&self, args: &[&str]) -> Result<String> {
        let mut command = match &self.netns {
            Some(netns) => {
                let mut command = Command::new("ip");
                command.args(["netns", "exec", netns, "etcdctl"]);
                command
            }
            None => Command::new("etcdctl"),
        };
        command
            .env("ETCDCTL_API", "3")
            .args(["--endpoints", &self.endpoint, "--command-timeout=5s"])
            .args(args);
        command::run(&mut command)
    }

    /// SIGKILL: the crash a fault test wants. Data stays for [`Etcd::restart`].
    pub fn kill(&self) -> Result<()> {
        self.daemon.kill().map(drop)
    }

    /// Starts etcd again (killing it first if it runs) on the same ports and data, and waits
    /// until it is healthy.
    pub fn restart(&mut self) -> Result<()> {
        self.daemon.restart()?;
        self.wait_healthy(TIMEOUT)
    }

    /// The data directory path, for tests that inspect it.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        if keep_files() {
            self.dir.disable_cleanup(true);
        }
    }
}

/// Two free TCP ports on `ip`, from the kernel (bind to port 0). The listeners are closed
/// before etcd binds, so another process could take a port in between; etcd would then fail
/// to start and say so in its log.
fn free_ports(ip: IpAddr) -> Result<(u16, u16)> {
    let bind = || {
        TcpListener::bind(SocketAddr::new(ip, 0))
            .map_err(|e| Error::io(format!("binding a free port on {ip}"), e))
    };
    let a = bind()?;
    let b = bind()?;
    let port = |l: &TcpListener| {
        l.local_addr()
            .map(|a| a.port())
            .map_err(|e| Error::io("reading a bound port", e))
    };
    Ok((port(&a)?, port(&b)?))
}
