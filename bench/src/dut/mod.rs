//! The daemons under test: Wren's `bgpd`, BIRD 2, FRR 8.4 (bgpd + zebra) and GoBGP 3, each
//! started in a slot's namespace with an equivalent configuration (see each module):
//! AS 64512, every generator peer passive in AS 65000 with hold time 90 s and keepalive
//! 30 s, routes from generator peers accepted and never sent back to them, everything
//! exported to the monitor peer (AS 65100), FIB export on, no debug logging.
//!
//! A started daemon is pinned to the daemon CPU and is ready once it listens on port 179.
//! [`Dut::table`] is where its routes are timed: the kernel table of its namespace, except
//! for GoBGP, whose FIB integration (through FRR's zebra) does not work with FRR 8.4, so
//! its RIB is timed through its gRPC watch stream instead (see `gobgp`).

mod bird;
mod frr;
mod gobgp;
mod wren;

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::generator::PeerSpec;
use crate::routelog::RouteLog;
use crate::system::{self, Usage};
use crate::topology::Slot;

pub use wren::{accept_debug_builds, locate as locate_wren};

/// The daemon's AS.
pub const DUT_ASN: u32 = 64512;
/// The AS of every generator peer.
pub const PEER_ASN: u32 = 65000;
/// The monitor peer's AS.
pub const MONITOR_ASN: u32 = 65100;
/// Hold time every session is configured with (keepalive: a third).
pub const HOLD_TIME: u16 = 90;
/// Time allowed for a daemon to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Which daemon.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Wren,
    Bird,
    Frr,
    Gobgp,
}

impl Kind {
    /// Every daemon, Wren first (the table order).
    pub const ALL: [Kind; 4] = [Kind::Wren, Kind::Bird, Kind::Frr, Kind::Gobgp];
    /// The daemons Wren is compared with.
    pub const ANCHORS: [Kind; 3] = [Kind::Bird, Kind::Frr, Kind::Gobgp];

    /// The name in tables.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Wren => "Wren",
            Kind::Bird => "BIRD",
            Kind::Frr => "FRR",
            Kind::Gobgp => "GoBGP",
        }
    }

    /// The name in namespaces and on the command line.
    pub fn slug(self) -> &'static str {
        match self {
            Kind::Wren => "wren",
            Kind::Bird => "bird",
            Kind::Frr => "frr",
            Kind::Gobgp => "gobgp",
        }
    }

    /// Parses a slug.
    pub fn parse(text: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.slug() == text)
    }

    /// Whether the daemon can run here; `Err` says why not.
    pub fn available(self) -> Result<(), String> {
        match self {
            Kind::Wren => wren::locate().map(drop),
            Kind::Bird => lab::check(lab::Prereq::Bird),
            Kind::Frr => lab::check(lab::Prereq::Frr),
            Kind::Gobgp => lab::check(lab::Prereq::Gobgp),
        }
    }

    /// Where its routes are timed.
    pub fn table_kind(self) -> TableKind {
        match self {
            Kind::Gobgp => TableKind::Rib,
            _ => TableKind::Kernel,
        }
    }
}

/// What [`Dut::table`] observes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TableKind {
    /// The kernel's main table (netlink events).
    Kernel,
    /// The daemon's own RIB (its event API), for a daemon that cannot write the FIB here.
    Rib,
}

/// What a daemon is configured with.
#[derive(Clone, Debug)]
pub struct DutConfig {
    /// Its address and router id.
    pub router_id: Ipv4Addr,
    /// Generator peers (AS [`PEER_ASN`]).
    pub peers: Vec<Ipv4Addr>,
    /// The monitor peer (AS [`MONITOR_ASN`]).
    pub monitor: Ipv4Addr,
    /// Wren only: `[metrics] listen` (the `metrics` scenario); the other daemons
    /// have no such endpoint.
    pub metrics: Option<std::net::SocketAddr>,
    /// The generator peers' AS: [`PEER_ASN`], or [`DUT_ASN`] for iBGP (the `scale-*`
    /// scenarios: the daemon is a mesh member and sends its own blocks to every peer).
    pub peer_asn: u32,
    /// Hold time of every session (keepalive: a third).
    pub hold_time: u16,
    /// Blocks the daemon originates (its node's /26), sent to iBGP generator peers.
    pub networks: Vec<ipnet::Ipv4Net>,
    /// iBGP only: the generator peers are route reflector clients (RFC 4456), so every
    /// peer's routes go to every other peer.
    pub reflector: bool,
    /// BFD with every generator peer at 300 ms × 3 (the `bfd` scenario): Wren's `bfd =
    /// true`, FRR's `neighbor GEN bfd` with bfdd, BIRD's `bfd on` with `protocol bfd`.
    pub bfd: bool,
}

impl DutConfig {
    /// The configuration for a slot's peers and monitor.
    pub fn for_slot(slot: &Slot) -> DutConfig {
        DutConfig {
            router_id: slot.daemon(),
            peers: slot.peers(),
            monitor: slot.monitor(),
            metrics: None,
            peer_asn: PEER_ASN,
            hold_time: HOLD_TIME,
            networks: Vec::new(),
            reflector: false,
            bfd: false,
        }
    }

    /// True when the generator peers are in the daemon's AS.
    pub fn internal(&self) -> bool {
        self.peer_asn == DUT_ASN
    }

    /// The keepalive interval, a third of the hold time.
    pub fn keepalive(&self) -> u16 {
        self.hold_time / 3
    }
}

/// Generator peer `i` of `slot` as [`DutConfig::for_slot`] configures it (AS
/// [`PEER_ASN`], hold time [`HOLD_TIME`]), sending `initial` once Established; it does
/// not reconnect and records nothing.
pub fn peer_spec(slot: &Slot, i: usize, initial: bytes::Bytes) -> PeerSpec {
    PeerSpec {
        local: slot.peer(i),
        remote: slot.daemon(),
        asn: PEER_ASN,
        hold_time: HOLD_TIME,
        initial,
        reconnect: false,
        monitor: None,
    }
}

/// The monitor peer of `slot` (AS [`MONITOR_ASN`]), recording in `log` what the daemon
/// advertises; it announces nothing and does not reconnect.
pub fn monitor_spec(slot: &Slot, log: Arc<RouteLog>) -> PeerSpec {
    PeerSpec {
        local: slot.monitor(),
        asn: MONITOR_ASN,
        monitor: Some(log),
        ..peer_spec(slot, 0, bytes::Bytes::new())
    }
}

/// The processes of a running daemon.
#[derive(Debug)]
enum Process {
    Bird(lab::Bird),
    Frr(lab::Frr),
    Gobgp(gobgp::Running),
    Wren(lab::Daemon),
}

/// A running daemon under test; dropping it stops it.
#[derive(Debug)]
pub struct Dut {
    kind: Kind,
    config: DutConfig,
    process: Option<Process>,
    table: Arc<RouteLog>,
}

impl Dut {
    /// Starts `kind` in `slot` and waits until it listens on port 179.
    pub fn start(kind: Kind, slot: &Slot, config: &DutConfig) -> Result<Dut> {
        let (process, table) = launch(kind, slot, config)?;
        let dut = Dut {
            kind,
            config: config.clone(),
            process: Some(process),
            table,
        };
        dut.ready(slot)?;
        Ok(dut)
    }

    /// Which daemon.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// Where its routes are timed (see the module documentation).
    pub fn table(&self) -> &Arc<RouteLog> {
        &self.table
    }

    /// Process ids counted for CPU and memory (FRR: zebra and bgpd).
    pub fn pids(&self) -> Vec<u32> {
        match &self.process {
            Some(Process::Bird(bird)) => vec![bird.daemon().pid()],
            Some(Process::Frr(frr)) => frr
                .daemons()
                .iter()
                .filter(|d| d.name().starts_with("frr-zebra") || d.name().starts_with("frr-bgpd"))
                .map(lab::Daemon::pid)
                .collect(),
            Some(Process::Gobgp(gobgp)) => vec![gobgp.pid()],
            Some(Process::Wren(daemon)) => vec![daemon.pid()],
            None => Vec::new(),
        }
    }

    /// The BGP process alone (FRR's bgpd; the same as [`Dut::pids`] for the others).
    pub fn bgp_pid(&self) -> Option<u32> {
        match &self.process {
            Some(Process::Frr(frr)) => frr
                .daemons()
                .iter()
                .find(|d| d.name().starts_with("frr-bgpd"))
                .map(lab::Daemon::pid),
            _ => self.pids().first().copied(),
        }
    }

    /// The processes that run BFD: FRR's bfdd; the daemon itself for the others.
    pub fn bfd_pids(&self) -> Vec<u32> {
        match &self.process {
            Some(Process::Frr(frr)) => frr
                .daemons()
                .iter()
                .filter(|d| d.name().starts_with("frr-bfdd"))
                .map(lab::Daemon::pid)
                .collect(),
            _ => self.pids(),
        }
    }

    /// CPU and memory summed over [`Dut::pids`].
    pub fn usage(&self) -> Result<Usage> {
        system::usage_sum(&self.pids())
            .with_context(|| format!("reading usage of {}", self.kind.name()))
    }

    /// CPU and memory of [`Dut::bgp_pid`].
    pub fn bgp_usage(&self) -> Result<Usage> {
        match self.bgp_pid() {
            Some(pid) => system::usage(pid),
            None => Ok(Usage::default()),
        }
    }

    /// Lets every process of the daemon run on both CPUs instead of the daemon CPU (the
    /// unpinned runs of `bulk-unpinned`; threads started later inherit it).
    pub fn unpin(&self) -> Result<()> {
        for pid in self.pids() {
            system::unpin_process(pid)
                .with_context(|| format!("unpinning {}", self.kind.name()))?;
        }
        Ok(())
    }

    /// Fails when a process of the daemon has exited.
    pub fn check_alive(&self) -> Result<()> {
        let dead = |d: &lab::Daemon| {
            (!d.is_alive()).then(|| format!("{} exited:\n{}", d.name(), d.log_tail(20)))
        };
        let problem = match &self.process {
            Some(Process::Bird(bird)) => dead(bird.daemon()),
            Some(Process::Frr(frr)) => frr.daemons().iter().find_map(dead),
            Some(Process::Gobgp(gobgp)) => dead(gobgp.daemon()),
            Some(Process::Wren(daemon)) => dead(daemon),
            None => Some("not running".to_owned()),
        };
        match problem {
            Some(problem) => anyhow::bail!("{}: {problem}", self.kind.name()),
            None => Ok(()),
        }
    }

    /// Stops the daemon gracefully (SIGTERM, as an operator's restart does) and starts it
    /// again with the same configuration; waits until it listens again.
    pub fn restart(&mut self, slot: &Slot) -> Result<()> {
        if let Some(process) = self.process.take() {
            drop(process);
        }
        let (process, table) = launch_again(self.kind, slot, &self.config, &self.table)?;
        self.process = Some(process);
        self.table = table;
        self.ready(slot)
    }

    /// SIGKILL to every process: the quick way out after a run with a big table (a
    /// graceful stop would delete every route one by one first).
    pub fn kill(mut self) {
        match self.process.take() {
            Some(Process::Bird(bird)) => {
                let _ = bird.daemon().kill();
            }
            Some(Process::Frr(frr)) => {
                for daemon in frr.daemons() {
                    let _ = daemon.kill();
                }
            }
            Some(Process::Gobgp(gobgp)) => {
                let _ = gobgp.daemon().kill();
            }
            Some(Process::Wren(daemon)) => {
                let _ = daemon.kill();
            }
            None => {}
        }
    }

    fn ready(&self, slot: &Slot) -> Result<()> {
        let netns = slot.netns().name().to_owned();
        let what = format!(
            "{} to listen on port {} in {netns}",
            self.kind.name(),
            bgp_proto::BGP_PORT
        );
        let pids = self.pids();
        lab::wait_for(START_TIMEOUT, &what, || {
            self.check_alive()?;
            if system::listening(&netns, bgp_proto::BGP_PORT) {
                Ok(())
            } else {
                Err(anyhow::anyhow!("not listening yet"))
            }
        })?;
        for pid in pids {
            system::pin_process(pid, system::cpus().dut)?;
        }
        Ok(())
    }
}

fn launch(kind: Kind, slot: &Slot, config: &DutConfig) -> Result<(Process, Arc<RouteLog>)> {
    let kernel = slot.kernel().clone();
    Ok(match kind {
        Kind::Bird => (Process::Bird(bird::start(slot, config)?), kernel),
        Kind::Frr => (Process::Frr(frr::start(slot, config)?), kernel),
        Kind::Wren => (Process::Wren(wren::start(slot, config)?), kernel),
        Kind::Gobgp => {
            if !config.networks.is_empty() || config.reflector {
                anyhow::bail!(
                    "GoBGP under test originates no networks and reflects no routes (its FIB does not work here)"
                );
            }
            let log = Arc::new(RouteLog::new(format!("GoBGP RIB in {}", slot.name())));
            let running = gobgp::start(slot, config, log.clone())?;
            (Process::Gobgp(running), log)
        }
    })
}

fn launch_again(
    kind: Kind,
    slot: &Slot,
    config: &DutConfig,
    table: &Arc<RouteLog>,
) -> Result<(Process, Arc<RouteLog>)> {
    match kind {
        Kind::Gobgp => {
            // The RIB is empty after a restart; keep one log so marks stay valid.
            table.record_reset();
            let running = gobgp::start(slot, config, table.clone())?;
            Ok((Process::Gobgp(running), table.clone()))
        }
        _ => launch(kind, slot, config),
    }
}

/// For tests that run Wren's bgpd: lets the debug build the suite makes do, and says
/// whether one is there. Without one the test fails under `WREN_REQUIRE_LAB=1` and
/// is skipped, saying so, otherwise.
#[cfg(test)]
pub(crate) fn wren_for_test(test: &str) -> bool {
    accept_debug_builds();
    match Kind::Wren.available() {
        Ok(()) => true,
        Err(reason) if std::env::var("WREN_REQUIRE_LAB").is_ok_and(|v| v == "1") => {
            panic!("{test}: bgpd is needed (build it: cargo build -p bgpd): {reason}")
        }
        Err(reason) => {
            eprintln!("SKIPPED {test}: {reason}");
            false
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::generator::{check_nothing_received, updates, wait_all_established};
    use crate::topology::Bench;

    /// The same battery for every daemon: routes from two generator peers reach the table
    /// and the monitor, nothing goes back to the generator peers, and a closed peer's
    /// routes leave both.
    fn battery(kind: Kind) {
        let bench = Bench::new().unwrap();
        let slot = bench.slot(kind.slug(), 2).unwrap();
        let dut = Dut::start(kind, &slot, &DutConfig::for_slot(&slot)).unwrap();
        let monitor_log = Arc::new(RouteLog::new("monitor"));
        let _monitor = bench
            .generator()
            .peer(monitor_spec(&slot, monitor_log.clone()));
        let nets = [updates::prefixes(0..50), updates::prefixes(50..100)];
        let peers: Vec<_> = nets
            .iter()
            .enumerate()
            .map(|(p, nets)| {
                let initial = updates::announce(slot.peer(p), PEER_ASN, nets).unwrap();
                bench.generator().peer(peer_spec(&slot, p, initial))
            })
            .collect();
        wait_all_established(&peers, Duration::from_secs(60)).unwrap();
        let all: Vec<_> = nets.iter().flat_map(|n| updates::keys(n)).collect();
        dut.table()
            .wait_all_present(Duration::from_secs(60), &all)
            .unwrap();
        monitor_log
            .wait_all_present(Duration::from_secs(60), &all)
            .unwrap();
        check_nothing_received(&peers).unwrap();
        let usage = dut.usage().unwrap();
        assert!(usage.rss > 0 && usage.peak_rss >= usage.rss);

        peers[0].close();
        let gone = updates::keys(&nets[0]);
        dut.table()
            .wait_none_present(Duration::from_secs(60), &gone)
            .unwrap();
        monitor_log
            .wait_none_present(Duration::from_secs(60), &gone)
            .unwrap();
        dut.table()
            .wait_all_present(Duration::from_secs(5), &updates::keys(&nets[1]))
            .unwrap();
        assert!(peers[1].state().established);
        dut.check_alive().unwrap();
        slot.kernel().check_complete().unwrap();
    }

    #[test]
    fn bird_installs_and_readvertises() {
        let Some(_ready) = lab::require!(Root, Bird) else {
            return;
        };
        battery(Kind::Bird);
    }

    #[test]
    fn frr_installs_and_readvertises() {
        let Some(_ready) = lab::require!(Root, Frr) else {
            return;
        };
        battery(Kind::Frr);
    }

    #[test]
    fn gobgp_learns_and_readvertises() {
        let Some(_ready) = lab::require!(Root, Gobgp) else {
            return;
        };
        battery(Kind::Gobgp);
    }

    /// Wren runs the battery on whichever bgpd the target dir holds (the debug build in
    /// the test suite); under `WREN_REQUIRE_LAB=1` a missing bgpd fails the test.
    #[test]
    fn wren_installs_and_readvertises() {
        let Some(_ready) = lab::require!(Root) else {
            return;
        };
        if !wren_for_test("wren_installs_and_readvertises") {
            return;
        }
        battery(Kind::Wren);
    }

    #[test]
    fn configs_pass_the_daemons_own_checks() {
        let Some(ready) = lab::require!(Bird, Frr, Gobgp) else {
            return;
        };
        let config = DutConfig {
            router_id: "10.1.0.1".parse().unwrap(),
            peers: vec!["10.1.1.1".parse().unwrap(), "10.1.1.2".parse().unwrap()],
            monitor: "10.1.250.1".parse().unwrap(),
            metrics: Some("10.1.0.1:9180".parse().unwrap()),
            peer_asn: PEER_ASN,
            hold_time: HOLD_TIME,
            networks: Vec::new(),
            reflector: false,
            bfd: true,
        };
        let dir = ready.dir();
        let checks: [(&str, String, Vec<&str>); 3] = [
            (
                "bird.conf",
                bird::config_text(&config),
                vec!["bird", "-p", "-c"],
            ),
            (
                "frr.conf",
                frr::config_text(&config),
                vec!["vtysh", "--dryrun", "-f"],
            ),
            (
                "gobgpd.toml",
                gobgp::config_text(&config),
                vec!["gobgpd", "-t", "toml", "-d", "-f"],
            ),
        ];
        for (file, text, command) in checks {
            let path = dir.join(file);
            std::fs::write(&path, text).unwrap();
            let output = std::process::Command::new(command[0])
                .args(&command[1..])
                .arg(&path)
                .output()
                .unwrap();
            assert!(
                output.status.success(),
                "{file}: {}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
    }
}
