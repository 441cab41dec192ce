//! The dataplane task (issue 15): what bgpd programs on the host beside the routes,
//! from the `dataplane` crate. It runs with `[dataplane]` or `[ipam]` and owns the
//! pod MTU file (`STATE_DIR/mtu`) and the nftables table `inet wren`.
//!
//! Inputs: the IPAM task's [`Snapshot`] on a `watch` (pools, nodes; `None` until
//! the IPAM task's first read; no channel at all without `[ipam]`), and the host's
//! interfaces, read again every [`LINK_INTERVAL`].
//!
//! nat_outgoing: the table is made equal to what the snapshot asks for at every
//! new snapshot and every [`NAT_INTERVAL`] (a table someone removed comes back):
//! nothing is sent when it already is (a restart changes nothing in the kernel),
//! set elements when pools or nodes changed, the table removed when no pool has
//! `nat_outgoing`. Nothing is listed or changed before the first snapshot, and
//! never without `[ipam]`. A refusal by nftables is one error line; the table stays
//! as it was and the next sync tries again.
//!
//! MTU: at start an override (`[dataplane] mtu`) larger than the underlay allows
//! stops bgpd (one line naming the interface). The file is written once the
//! encapsulation is known (at once without `[ipam]`, else at the IPAM task's first
//! read, so a restart never writes a value it takes back), and rewritten when the
//! pod MTU changes. When every underlay interface has gone down the last pod MTU
//! stays, with one error line; every problem is logged once, and again when it
//! changes.
//!
//! Forwarding: at every new snapshot and every [`LINK_INTERVAL`],
//! `net.ipv4.ip_forward` (and `net.ipv6.conf.all.forwarding` when an IPv6 pool
//! exists) is set to 1 where it is not (nothing is written when it is).
//!
//! VXLAN overlay (with `[ipam]`): at every new snapshot and every
//! [`LINK_INTERVAL`], the devices `vxlan.wren` / `vxlan-v6.wren`, their tunnel
//! address and their neighbour and FDB entries are made what the snapshot asks for
//! (`dataplane::vxlan`; nothing is sent when they already are), then the remote
//! blocks' routes are published on a `watch` for the fib task, which hands them to
//! route-sync. The first value is published even when the overlay fails (with no
//! routes) or no pool encapsulates: the fib task holds its first convergence until
//! it has one, so a restart never deletes the overlay's routes before asking for
//! them again. On a later failure the last routes stay published.
//!
//! Status: after each sync the task publishes a [`Status`] on a `watch` (what it
//! last did and found: the pod MTU, the underlay, the nat_outgoing pools and
//! table, the VXLAN devices, counters since start), read by the metrics listener
//! at each scrape.
//!
//! Calling contract: [`spawn`] checks what it can before returning the task; the
//! task runs until aborted and leaves the file, the table and the devices as they
//! are at stop.

use std::time::Duration;

use dataplane::mtu::{self, MtuSettings};
use dataplane::nat::{self, Change, NatSettings};
use dataplane::vxlan::{self, OverlayRoutes, kernel::Kernel};
use dataplane::{Encapsulation, Snapshot};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::{Config, DataplaneConfig};

/// How often the task reads the interfaces again (an underlay MTU that changes, an
/// interface that goes down).
pub const LINK_INTERVAL: Duration = Duration::from_secs(5);
/// How often the nftables table is checked when no snapshot came.
pub const NAT_INTERVAL: Duration = Duration::from_secs(30);

/// The IPAM task's side of the seam: it publishes what it read.
pub type SnapshotSender = watch::Sender<Option<Snapshot>>;
/// The dataplane task's side.
pub type SnapshotReceiver = watch::Receiver<Option<Snapshot>>;
/// The overlay's routes, from the dataplane task (`None` until its first
/// snapshot).
pub type OverlaySender = watch::Sender<Option<OverlayRoutes>>;
/// The fib task's side.
pub type OverlayReceiver = watch::Receiver<Option<OverlayRoutes>>;

/// The metrics' side of the task's [`Status`].
pub type StatusReceiver = watch::Receiver<Status>;

/// What the dataplane task last did and found, published after each sync.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Status {
    /// The pod MTU the file holds (`None` until it is written).
    pub pod_mtu: Option<u32>,
    /// The underlay interface the pod MTU follows, and its MTU (`None` when no up
    /// interface matches the pattern).
    pub underlay: Option<dataplane::mtu::HostMtu>,
    /// nat_outgoing (with `[ipam]`, from the first snapshot on).
    pub nat: Option<NatStatus>,
    /// The VXLAN devices the last overlay sync asked for (with `[ipam]`).
    pub devices: Vec<DeviceStatus>,
    /// Changes made to the VXLAN devices and their entries since start.
    pub vxlan_changes: u64,
    /// Failed syncs since start, per area ([`AREAS`]' order).
    pub errors: [u64; AREAS.len()],
}

/// The areas of [`Status::errors`], by index.
pub const AREAS: [&str; 4] = ["mtu", "nat", "vxlan", "forwarding"];
const MTU: usize = 0;
const NAT: usize = 1;
const VXLAN: usize = 2;
const FORWARDING: usize = 3;

/// The nftables table `inet wren` as the last sync left it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NatStatus {
    /// Pools with `nat_outgoing`, IPv4 and IPv6.
    pub pools: [usize; 2],
    /// The last sync made the table what the pools ask for (present with a
    /// nat_outgoing pool, absent without).
    pub synced: bool,
    /// Times the table was found missing or of another shape, and made again,
    /// while what it should hold had not changed (someone removed or changed it).
    pub repairs: u64,
}

/// One VXLAN device after the last overlay sync.
#[derive(Clone, Debug, PartialEq)]
pub struct DeviceStatus {
    /// `vxlan.wren` or `vxlan-v6.wren`.
    pub name: &'static str,
    /// The last sync made it, with its entries, and set it up.
    pub up: bool,
    /// Remote nodes with a tunnel endpoint of its family: one FDB entry (and one
    /// neighbour entry) each.
    pub remote_nodes: usize,
}

/// What the dataplane task works from.
#[derive(Clone, Debug)]
pub struct Settings {
    pub mtu: MtuSettings,
    pub nat: NatSettings,
    /// This node's name in the registry (with `[ipam]`): the overlay's own node.
    pub node: Option<String>,
}

impl Settings {
    /// The settings of `config`: `None` without `[dataplane]` and `[ipam]`.
    /// `Err` when `[ipam]` names no usable node.
    pub fn from_config(config: &Config) -> Result<Option<Settings>, String> {
        let section = match (&config.dataplane, &config.ipam) {
            (Some(section), _) => section.clone(),
            (None, Some(_)) => DataplaneConfig::default(),
            (None, None) => return Ok(None),
        };
        let node = config
            .ipam
            .as_ref()
            .map(|ipam| ipam.node_name())
            .transpose()?;
        Ok(Some(Settings {
            mtu: MtuSettings {
                interface_pattern: section.mtu_interface_pattern.regex().clone(),
                mtu: section.mtu,
                state_dir: section.state_dir,
            },
            nat: NatSettings::default(),
            node,
        }))
    }
}

/// Checks the MTU override against the interfaces, then starts the task. With
/// `snapshots` (`[ipam]`), the MTU file waits for the first snapshot, and the
/// overlay's routes go to `overlay`.
pub async fn spawn(
    settings: Settings,
    snapshots: Option<SnapshotReceiver>,
    overlay: Option<OverlaySender>,
    status: watch::Sender<Status>,
) -> anyhow::Result<JoinHandle<()>> {
    let links = read_links().await?;
    // The least overhead: an override refused here is refused whatever the pools say.
    mtu::resolve(&settings.mtu, &links, Encapsulation::None)?;
    let mut task = Task {
        written: mtu::read_mtu_file(&settings.mtu.state_dir),
        settings,
        snapshot: None,
        failing: Failing::default(),
        nat_synced: false,
        nat_desired: None,
        overlay,
        kernel: None,
        status: Status::default(),
        published: status,
    };
    if snapshots.is_none() {
        task.snapshot = Some(Snapshot::default());
        task.mtu(&links)?;
    }
    task.publish();
    Ok(tokio::spawn(task.run(snapshots)))
}

struct Task {
    settings: Settings,
    /// The last snapshot; `None` until the IPAM task's first read.
    snapshot: Option<Snapshot>,
    /// The pod MTU the file holds.
    written: Option<u32>,
    /// The problems last logged.
    failing: Failing,
    /// The nftables table was synchronised once.
    nat_synced: bool,
    /// What the table was last made to hold (`None`: absent).
    nat_desired: Option<nat::Desired>,
    /// Where the overlay's routes go (with `[ipam]`).
    overlay: Option<OverlaySender>,
    /// The netlink connection of the overlay, opened at its first sync.
    kernel: Option<Kernel>,
    /// What is published next.
    status: Status,
    /// Where the status goes (the metrics listener reads it).
    published: watch::Sender<Status>,
}

/// The problem last logged, per part.
#[derive(Default)]
struct Failing {
    mtu: Option<String>,
    nat: Option<String>,
    overlay: Option<String>,
    forwarding: Option<String>,
}

impl Task {
    async fn run(mut self, mut snapshots: Option<SnapshotReceiver>) {
        let mut links = tokio::time::interval(LINK_INTERVAL);
        links.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut nat = tokio::time::interval(NAT_INTERVAL);
        nat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        nat.tick().await;
        loop {
            let (mut check_mtu, mut check_nat) = (false, false);
            tokio::select! {
                changed = next(&mut snapshots) => {
                    if changed.is_err() {
                        // The IPAM task is gone (bgpd stops): keep what is programmed.
                        snapshots = None;
                        continue;
                    }
                    let latest = snapshots.as_mut().and_then(|s| s.borrow_and_update().clone());
                    if latest.is_none() {
                        continue;
                    }
                    self.snapshot = latest;
                    (check_mtu, check_nat) = (true, true);
                }
                _ = links.tick() => check_mtu = true,
                _ = nat.tick() => check_nat = true,
            }
            if check_nat && snapshots.is_some() {
                let outcome = self.nat().await;
                self.count_error(NAT, &outcome);
                report(&mut self.failing.nat, outcome.err());
            }
            if check_mtu {
                let outcome = self.forwarding();
                self.count_error(FORWARDING, &outcome);
                report(&mut self.failing.forwarding, outcome.err());
            }
            if check_mtu && snapshots.is_some() {
                let outcome = self.overlay().await;
                self.count_error(VXLAN, &outcome);
                report(&mut self.failing.overlay, outcome.err());
            }
            if check_mtu {
                let outcome = match read_links().await {
                    Ok(links) => self.mtu(&links),
                    Err(error) => Err(error),
                };
                self.count_error(MTU, &outcome);
                report(&mut self.failing.mtu, outcome.err());
            }
            self.publish();
        }
    }

    /// Counts a failed sync of the area `AREAS[area]`.
    fn count_error<T>(&mut self, area: usize, outcome: &anyhow::Result<T>) {
        if outcome.is_err() {
            self.status.errors[area] += 1;
        }
    }

    /// Publishes the status when it changed.
    fn publish(&self) {
        self.published.send_if_modified(|published| {
            let changed = *published != self.status;
            if changed {
                published.clone_from(&self.status);
            }
            changed
        });
    }

    /// Makes the nftables table what the snapshot asks for.
    async fn nat(&mut self) -> anyhow::Result<()> {
        let Some(snapshot) = &self.snapshot else {
            return Ok(());
        };
        let desired = nat::desired(snapshot, &self.settings.nat);
        let nat_pools = |ipv4: bool| {
            snapshot
                .pools
                .iter()
                .filter(|pool| pool.nat_outgoing && pool.cidr.addr().is_ipv4() == ipv4)
                .count()
        };
        let status = self.status.nat.get_or_insert_with(NatStatus::default);
        status.pools = [nat_pools(true), nat_pools(false)];
        status.synced = false;
        let plan = nat::nft::sync(desired.as_ref()).await?;
        let pools: Vec<String> = snapshot
            .pools
            .iter()
            .filter(|pool| pool.nat_outgoing)
            .map(|pool| pool.cidr.to_string())
            .collect();
        let first = !self.nat_synced;
        self.nat_synced = true;
        // Made again while what it holds had not changed: someone removed or
        // changed it.
        let repaired = !first
            && self.nat_desired.is_some()
            && match plan.change {
                Change::Created => true,
                Change::Rebuilt => self.nat_desired == desired,
                _ => false,
            };
        status.synced = true;
        if repaired {
            status.repairs += 1;
        }
        self.nat_desired = desired;
        match plan.change {
            Change::None if first => tracing::info!(
                ?pools,
                "dataplane: nftables table inet wren already as wanted; nothing sent"
            ),
            Change::None => {}
            Change::Created if repaired => tracing::warn!(
                ?pools,
                "dataplane: nftables table inet wren was gone; made again"
            ),
            Change::Created => {
                tracing::info!(
                    ?pools,
                    "dataplane: nftables table inet wren made (nat_outgoing)"
                );
            }
            Change::Rebuilt => tracing::info!(
                ?pools,
                "dataplane: nftables table inet wren had another shape; made again in one transaction"
            ),
            Change::Elements { added, deleted } => tracing::info!(
                added,
                deleted,
                "dataplane: nftables table inet wren: pools or nodes changed"
            ),
            Change::Removed => {
                tracing::info!(
                    "dataplane: no pool has nat_outgoing; nftables table inet wren removed"
                );
            }
        }
        Ok(())
    }

    /// Turns IP forwarding on (IPv6 too with an IPv6 pool) where it is off.
    fn forwarding(&self) -> anyhow::Result<()> {
        let Some(snapshot) = &self.snapshot else {
            return Ok(());
        };
        for path in dataplane::forwarding::ensure(&dataplane::forwarding::wanted(snapshot))? {
            tracing::info!(sysctl = path, "dataplane: IP forwarding turned on");
        }
        Ok(())
    }

    /// Makes the VXLAN devices and entries what the snapshot asks for, then
    /// publishes the remote blocks' routes for the fib task.
    async fn overlay(&mut self) -> anyhow::Result<()> {
        let (Some(snapshot), Some(node), Some(sender)) =
            (&self.snapshot, &self.settings.node, &self.overlay)
        else {
            return Ok(());
        };
        let pools = snapshot.pools.iter().map(|pool| pool.cidr).collect();
        let mut made = 0;
        let outcome = async {
            let kernel = match &self.kernel {
                Some(kernel) => kernel.clone(),
                None => Kernel::open()?,
            };
            self.kernel = Some(kernel.clone());
            let interfaces = kernel.interface_addresses().await?;
            let overlay = vxlan::desired(snapshot, node, &interfaces)?;
            // Down until this sync has made them.
            self.status.devices = overlay
                .devices
                .iter()
                .map(|device| DeviceStatus {
                    name: device.name,
                    up: false,
                    remote_nodes: device.peers.len(),
                })
                .collect();
            let changes = kernel.sync(&overlay).await?;
            made = changes.len();
            for change in changes {
                tracing::info!("dataplane: {change}");
            }
            for device in &mut self.status.devices {
                device.up = true;
            }
            Ok::<_, dataplane::Error>(overlay.routes)
        }
        .await;
        // A failed sync does not tell what it changed before failing: none counted.
        self.status.vxlan_changes += made as u64;
        let routes = match outcome {
            Ok(routes) => routes,
            Err(error) => {
                // The fib task's first convergence waits for a first value.
                if sender.borrow().is_none() {
                    sender.send_replace(Some(OverlayRoutes {
                        pools,
                        routes: Vec::new(),
                    }));
                }
                return Err(error.into());
            }
        };
        let wanted = OverlayRoutes { pools, routes };
        sender.send_if_modified(|published| {
            let changed = published.as_ref() != Some(&wanted);
            if changed {
                *published = Some(wanted);
            }
            changed
        });
        Ok(())
    }

    /// Writes the pod MTU for `links` when it changed (and the encapsulation is
    /// known).
    fn mtu(&mut self, links: &[dataplane::Link]) -> anyhow::Result<()> {
        let Some(snapshot) = &self.snapshot else {
            return Ok(());
        };
        let settings = &self.settings.mtu;
        let pod = mtu::resolve(settings, links, snapshot.encapsulation())?;
        self.status.underlay.clone_from(&pod.host);
        if pod.host.is_none()
            && !pod.overridden
            && let Some(written) = self.written
        {
            anyhow::bail!(
                "dataplane: no up interface matches mtu_interface_pattern {:?}; the pod MTU stays {written}",
                settings.interface_pattern.as_str()
            );
        }
        if self.written != Some(pod.mtu) || mtu::read_mtu_file(&settings.state_dir) != Some(pod.mtu)
        {
            mtu::write_mtu_file(&settings.state_dir, pod.mtu)?;
            tracing::info!(
                mtu = pod.mtu,
                underlay = ?pod.host,
                overridden = pod.overridden,
                file = %mtu::mtu_path(&settings.state_dir).display(),
                "dataplane: pod MTU written"
            );
            self.written = Some(pod.mtu);
        }
        self.status.pod_mtu = self.written;
        Ok(())
    }
}

/// Logs a problem once, and again when it changes; says when it is over.
fn report(failing: &mut Option<String>, problem: Option<anyhow::Error>) {
    match (problem.map(|e| e.to_string()), &failing) {
        (Some(text), Some(last)) if *last == text => {}
        (Some(text), _) => {
            tracing::error!("{text}");
            *failing = Some(text);
        }
        (None, Some(last)) => {
            tracing::info!("dataplane: back in order (was: {last})");
            *failing = None;
        }
        (None, None) => {}
    }
}

/// The host's interfaces, read off the async threads.
async fn read_links() -> anyhow::Result<Vec<dataplane::Link>> {
    let links = tokio::task::spawn_blocking(dataplane::links).await??;
    Ok(links)
}

/// The next change of an optional watch (never, without one).
async fn next(snapshots: &mut Option<SnapshotReceiver>) -> Result<(), watch::error::RecvError> {
    match snapshots {
        Some(receiver) => receiver.changed().await,
        None => std::future::pending().await,
    }
}
