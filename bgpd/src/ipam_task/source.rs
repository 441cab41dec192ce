//! The IPAM task: the node's blocks and borrowed addresses as local routes, and the
//! node registry as mesh neighbors (see the module above for the whole picture).
//!
//! A connection's life: connect, set up (pools, cluster settings, the node's
//! registration, a block per family), start the watches, synchronise, then
//! synchronise again on every wake-up: a notification through the control socket,
//! the datastore watch of the IPAM keys (and of the registry for the mesh and the
//! dataplane, and of who uses which block for the dataplane), or the
//! resynchronisation timer. Any datastore error ends the connection: one error line
//! (repeated only when the error changes, or once a minute), the advertised routes
//! stay as they are, and the task connects again with a backoff.
//!
//! Routes to the rib task: the first synchronisation sends the whole set (a
//! `Replace` of `IpamBorrowed`, then of `IpamBlock`: the first convergence waits for
//! the latter); later ones send what changed (`Announce` and `Withdraw`), so a pod
//! starting costs the RIB one prefix, not a scan of its table.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use futures::FutureExt;
use ipam::store::Watch;
use ipam::{AnyStore, Datastore, Family, Ipam, IpamError, Node, StoreError};
use ipnet::IpNet;
use tokio::sync::mpsc;

use super::{IpamHandle, Settings, mesh};
use crate::config::NeighborConfig;
use crate::dataplane_task::SnapshotSender;
use crate::events::{Event, Events};
use crate::local::{ipam_block, ipam_borrowed};
use crate::supervisor::Supervisor;
use crate::tasks::{LocalChange, LocalSource, RibInput};

/// First pause before connecting again after a datastore error.
const RETRY_FIRST: Duration = Duration::from_millis(500);
/// Longest pause between connection attempts.
const RETRY_MAX: Duration = Duration::from_secs(10);
/// An unchanged error is logged again after this long.
const REPEAT_ERROR: Duration = Duration::from_secs(60);

/// Runs the IPAM task until aborted.
pub async fn run(
    settings: Settings,
    handle: IpamHandle,
    rib: mpsc::Sender<RibInput>,
    supervisor: Supervisor,
    dataplane: Option<SnapshotSender>,
    events: Events,
) {
    let mut source = Source {
        settings,
        handle,
        rib,
        supervisor,
        dataplane,
        dataplane_revision: None,
        events,
        advertised: None,
        mesh: None,
        revision: None,
        failing: None,
        unregistered: false,
        vtep_pools: None,
        vxlan_conflicts: Vec::new(),
        detection_failing: None,
    };
    let mut retry = RETRY_FIRST;
    loop {
        let started = Instant::now();
        let error = source.connection().await;
        source.handle.set_client(None);
        source.handle.set_reachable(Err(error.to_string()));
        source.revision = None;
        if source.rib.is_closed() {
            return;
        }
        source.report(&error);
        if started.elapsed() > RETRY_MAX {
            retry = RETRY_FIRST;
        }
        tracing::debug!("ipam: connecting to the datastore again in {retry:?}");
        tokio::time::sleep(retry).await;
        retry = (retry * 2).min(RETRY_MAX);
    }
}

/// What the rib task has of ours.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Advertised {
    blocks: BTreeSet<IpNet>,
    borrowed: BTreeSet<IpAddr>,
    /// The communities on the block routes.
    communities: Vec<u32>,
}

struct Source {
    settings: Settings,
    handle: IpamHandle,
    rib: mpsc::Sender<RibInput>,
    supervisor: Supervisor,
    /// Where the pools and nodes go for the dataplane task.
    dataplane: Option<SnapshotSender>,
    /// The store revision of the last snapshot published.
    dataplane_revision: Option<u64>,
    events: Events,
    /// None until the first synchronisation.
    advertised: Option<Advertised>,
    /// The mesh neighbors last handed to the supervisor.
    mesh: Option<Vec<NeighborConfig>>,
    /// The store revision of the last synchronisation (a re-read at the same
    /// revision is skipped).
    revision: Option<u64>,
    /// The error being reported, when it was last seen, and whether it was logged as
    /// an error (not when `ipam::outage` tells it: then its return is told there too).
    failing: Option<(String, Instant, bool)>,
    /// This node was missing from the registry at the last mesh read (said once).
    unregistered: bool,
    /// The pools the node's VXLAN tunnel endpoints were last made for.
    vtep_pools: Option<Vec<ipam::Pool>>,
    /// The VXLAN pools in conflict with their family's first, last warned of.
    vxlan_conflicts: Vec<String>,
    /// Why the last `address_detection` run failed (said once per reason).
    detection_failing: Option<String>,
}

impl Source {
    /// One connection, from connecting to the error that ends it.
    async fn connection(&mut self) -> IpamError {
        match self.serve().await {
            Ok(never) => match never {},
            Err(error) => error,
        }
    }

    async fn serve(&mut self) -> Result<std::convert::Infallible, IpamError> {
        let ipam = ipam::connect(&self.settings.datastore).await?;
        self.setup(&ipam).await?;
        // Watches first, then the first read: no change falls in between.
        let mut changes = ipam.watch_node(&self.settings.node).await?;
        let mut nodes = if self.settings.mesh || self.dataplane.is_some() {
            Some(ipam.watch_nodes().await?)
        } else {
            None
        };
        // The overlay routes every node's blocks and borrowed addresses: woken when
        // who uses them changes (a remote node's new block at once, on every store).
        let mut users = if self.dataplane.is_some() {
            Some(ipam.watch_block_users().await?)
        } else {
            None
        };
        self.sync(&ipam).await?;
        self.sync_mesh(&ipam).await?;
        self.sync_dataplane(&ipam).await?;
        self.handle.set_client(Some(ipam.clone()));
        self.handle.set_reachable(Ok(()));
        match self.failing.take() {
            Some((error, _, true)) => {
                tracing::info!(datastore = %self.settings.datastore, "ipam: datastore reachable again (was: {error})");
            }
            // Not logged as an error: `ipam::outage` says once that it is back.
            Some((error, _, false)) => {
                tracing::debug!(datastore = %self.settings.datastore, "ipam: datastore reachable again (was: {error})");
            }
            None => {}
        }
        let mut resync = tokio::time::interval(self.settings.resync_interval);
        resync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        resync.tick().await;
        loop {
            let mut mesh_changed = false;
            tokio::select! {
                changed = changes.changed() => { changed?; }
                changed = next(&mut nodes) => { changed?; mesh_changed = true; }
                changed = next(&mut users) => { changed?; }
                () = self.handle.shared.changed.notified() => {}
                _ = resync.tick() => {
                    mesh_changed = true;
                    self.follow_addresses(&ipam).await?;
                }
            }
            // Coalesce what else is already queued into this one re-read.
            while let Some(changed) = changes.changed().now_or_never() {
                changed?;
            }
            if let Some(watch) = nodes.as_mut() {
                while let Some(changed) = watch.changed().now_or_never() {
                    changed?;
                    mesh_changed = true;
                }
            }
            if let Some(watch) = users.as_mut() {
                while let Some(changed) = watch.changed().now_or_never() {
                    changed?;
                }
            }
            self.sync(&ipam).await?;
            if mesh_changed {
                self.sync_mesh(&ipam).await?;
            }
            self.sync_dataplane(&ipam).await?;
        }
    }

    /// Runs `address_detection` again (`Settings::redetect`) and registers the
    /// node's new addresses when they changed: its VXLAN device takes the new local
    /// address, the other nodes their FDB entries and mesh sessions, from the
    /// registry. A detection that fails is said once per reason; the registered
    /// addresses stay.
    async fn follow_addresses(&mut self, ipam: &Ipam<AnyStore>) -> Result<(), IpamError> {
        let Some(detection) = &self.settings.redetect else {
            return Ok(());
        };
        let found = match detection.detect(None) {
            Ok(found) => {
                self.detection_failing = None;
                found
            }
            Err(error) => {
                let text = error.to_string();
                if self.detection_failing.as_ref() != Some(&text) {
                    tracing::warn!(
                        addresses = ?self.settings.addresses,
                        "ipam: {text}; the node's registered addresses stay"
                    );
                    self.detection_failing = Some(text);
                }
                return Ok(());
            }
        };
        if found == self.settings.addresses {
            return Ok(());
        }
        let Some(mut node) = ipam.node(&self.settings.node).await? else {
            return Ok(());
        };
        tracing::warn!(
            node = %node.name,
            from = ?self.settings.addresses,
            to = ?found,
            "ipam: the node's addresses changed ({detection}); registering the new ones"
        );
        node.addresses.clone_from(&found);
        ipam.register_node(&node).await?;
        self.settings.addresses = found;
        Ok(())
    }

    /// Pools, cluster settings, the node's registration and its blocks.
    async fn setup(&mut self, ipam: &Ipam<AnyStore>) -> Result<(), IpamError> {
        let settings = &self.settings;
        for pool in &settings.pools {
            self.ensure_pool(ipam, pool).await?;
        }
        if settings.strict_affinity.is_some() || settings.max_blocks_per_node.is_some() {
            let stored = ipam.config().await?;
            let mut wanted = stored.clone();
            if let Some(strict) = settings.strict_affinity {
                wanted.strict_affinity = strict;
            }
            if let Some(max) = settings.max_blocks_per_node {
                wanted.max_blocks_per_node = max;
            }
            if wanted != stored {
                ipam.set_config(&wanted).await?;
                tracing::info!(
                    strict_affinity = wanted.strict_affinity,
                    max_blocks_per_node = wanted.max_blocks_per_node,
                    "ipam: cluster settings written"
                );
            }
        }
        let stored = ipam.node(&settings.node).await?;
        let node = Node {
            name: settings.node.clone(),
            addresses: settings.addresses.clone(),
            asn: settings.asn,
            labels: settings.labels.clone(),
            // Kept until the blocks are known (the labels decide the pools).
            vteps: stored.as_ref().map(|n| n.vteps.clone()).unwrap_or_default(),
        };
        if stored.as_ref() != Some(&node) {
            ipam.register_node(&node).await?;
            tracing::info!(node = %node.name, addresses = ?node.addresses, asn = node.asn, "ipam: node registered");
        }
        let blocks = ipam.ensure_blocks(&settings.node).await?;
        tracing::info!(node = %settings.node, blocks = ?blocks, "ipam: the node's blocks");
        self.vtep_pools = None;
        self.sync_vteps(ipam).await
    }

    /// Keeps the node's VXLAN tunnel endpoints in the registry equal to what its
    /// pools ask for: at setup, and whenever the pools change (a VXLAN pool added,
    /// disabled or deleted while bgpd runs). Not for a node missing from the registry
    /// (released: the mesh says so; a restart registers it again).
    async fn sync_vteps(&mut self, ipam: &Ipam<AnyStore>) -> Result<(), IpamError> {
        let pools = ipam.pools().await?;
        if self.vtep_pools.as_ref() == Some(&pools) {
            return Ok(());
        }
        let Some(mut node) = ipam.node(&self.settings.node).await? else {
            return Ok(());
        };
        let mut vteps = Vec::new();
        for family in [Family::Ipv4, Family::Ipv6] {
            vteps.extend(ipam.ensure_vtep(&self.settings.node, family).await?);
        }
        if vteps != node.vteps {
            node.vteps = vteps;
            ipam.register_node(&node).await?;
            tracing::info!(node = %node.name, vteps = ?node.vteps, "ipam: VXLAN tunnel endpoints registered");
        }
        self.vtep_pools = Some(pools);
        Ok(())
    }

    /// Adds a configured pool that the datastore lacks; a stored pool that differs
    /// is kept (and said so), except `disabled`, which follows the configuration.
    async fn ensure_pool(&self, ipam: &Ipam<AnyStore>, pool: &ipam::Pool) -> Result<(), IpamError> {
        match ipam.add_pool(pool.clone()).await {
            Ok(()) => {
                tracing::info!(pool = %pool.cidr, block_size = pool.block_size, "ipam: pool added");
                Ok(())
            }
            Err(IpamError::PoolExists(cidr)) => {
                let Some(stored) = ipam.pools().await?.into_iter().find(|p| p.cidr == cidr) else {
                    return Ok(());
                };
                if stored.disabled != pool.disabled {
                    ipam.set_pool_disabled(cidr, pool.disabled).await?;
                    tracing::info!(pool = %cidr, disabled = pool.disabled, "ipam: pool enabled or disabled as configured");
                }
                let mut compared = stored.clone();
                compared.disabled = pool.disabled;
                if compared != *pool {
                    tracing::warn!(
                        pool = %cidr,
                        "ipam: the stored pool differs from [[ipam.pool]] (stored: block_size {}, nat_outgoing {}, node_selector {}, vxlan_mode {}, vxlan_vni {}, vxlan_port {}); the stored one stays in force (bgpctl ipam pool delete, then add, to change it)",
                        stored.block_size,
                        stored.nat_outgoing,
                        ipam::format_node_selector(&stored.node_selector),
                        stored.vxlan_mode,
                        stored.vxlan_vni,
                        stored.vxlan_port,
                    );
                }
                Ok(())
            }
            Err(error @ (IpamError::Store(_) | IpamError::Contention { .. })) => Err(error),
            Err(error) => {
                // Overlapping another stored pool: a configuration problem that a
                // retry will not fix. Said once per connection; the rest goes on.
                tracing::error!("ipam: [[ipam.pool]] {} not added: {error}", pool.cidr);
                Ok(())
            }
        }
    }

    /// Makes the rib task's IPAM routes equal to the node's allocations.
    async fn sync(&mut self, ipam: &Ipam<AnyStore>) -> Result<(), IpamError> {
        let revision = ipam.store().revision().await?;
        let communities = self.handle.block_communities();
        if self.revision == Some(revision)
            && self
                .advertised
                .as_ref()
                .is_some_and(|advertised| advertised.communities == communities)
        {
            return Ok(());
        }
        self.sync_vteps(ipam).await?;
        let allocations = ipam.node_allocations(&self.settings.node).await?;
        let pools = match &self.vtep_pools {
            Some(pools) => pools.clone(),
            None => ipam.pools().await?,
        };
        self.handle
            .set_usage(super::usage::usage(&pools, &allocations));
        let wanted = Advertised {
            blocks: allocations.blocks,
            borrowed: allocations.borrowed,
            communities,
        };
        self.advertise(wanted).await;
        self.revision = Some(allocations.revision);
        Ok(())
    }

    async fn advertise(&mut self, wanted: Advertised) {
        let mut changes = Vec::new();
        match &self.advertised {
            None => {
                tracing::info!(
                    blocks = ?wanted.blocks,
                    borrowed = wanted.borrowed.len(),
                    "ipam: advertising the node's blocks"
                );
                changes.push(LocalChange::Replace {
                    source: LocalSource::IpamBorrowed,
                    routes: wanted
                        .borrowed
                        .iter()
                        .map(|a| ipam_borrowed(*a, Vec::new()))
                        .collect(),
                });
                // Last: the first convergence waits for this one.
                changes.push(LocalChange::Replace {
                    source: LocalSource::IpamBlock,
                    routes: wanted
                        .blocks
                        .iter()
                        .map(|b| ipam_block(*b, wanted.communities.clone()))
                        .collect(),
                });
            }
            Some(old) if *old == wanted => return,
            Some(old) => {
                for block in old.blocks.difference(&wanted.blocks) {
                    tracing::info!(block = %block, "ipam: block released; withdrawing it");
                    changes.push(LocalChange::Withdraw {
                        prefix: *block,
                        source: LocalSource::IpamBlock,
                    });
                }
                for address in old.borrowed.difference(&wanted.borrowed) {
                    tracing::debug!(address = %address, "ipam: borrowed address released");
                    changes.push(LocalChange::Withdraw {
                        prefix: IpNet::from(*address),
                        source: LocalSource::IpamBorrowed,
                    });
                }
                for block in wanted.blocks.difference(&old.blocks) {
                    tracing::info!(block = %block, "ipam: new block; advertising it");
                    changes.push(LocalChange::Announce(ipam_block(
                        *block,
                        wanted.communities.clone(),
                    )));
                }
                if old.communities != wanted.communities {
                    tracing::info!(communities = ?wanted.communities, "ipam: the blocks' communities changed; advertising them again");
                    for block in wanted.blocks.intersection(&old.blocks) {
                        changes.push(LocalChange::Announce(ipam_block(
                            *block,
                            wanted.communities.clone(),
                        )));
                    }
                }
                for address in wanted.borrowed.difference(&old.borrowed) {
                    tracing::debug!(address = %address, "ipam: borrowed address; advertising it");
                    changes.push(LocalChange::Announce(ipam_borrowed(*address, Vec::new())));
                }
            }
        }
        for change in changes {
            if self.rib.send(RibInput::Local(change)).await.is_err() {
                return;
            }
        }
        self.handle
            .set_blocks(wanted.blocks.iter().copied().collect());
        self.events.send_with(|| Event::Ipam {
            blocks: wanted.blocks.iter().copied().collect(),
            borrowed: wanted.borrowed.iter().copied().collect(),
        });
        self.advertised = Some(wanted);
    }

    /// Hands the supervisor the mesh neighbors the registry asks for.
    async fn sync_mesh(&mut self, ipam: &Ipam<AnyStore>) -> Result<(), IpamError> {
        if !self.settings.mesh {
            return Ok(());
        }
        let nodes = ipam.nodes().await?;
        let registered = nodes.iter().any(|n| n.name == self.settings.node);
        if !registered && !self.unregistered {
            tracing::warn!(
                node = %self.settings.node,
                "ipam: this node is no longer in the registry (released with `bgpctl ipam release-node`?); restart bgpd to register it and claim a block again"
            );
        }
        self.unregistered = !registered;
        let wanted = mesh::neighbors(&self.settings.node, &self.settings.addresses, &nodes);
        if self.mesh.as_ref() == Some(&wanted) {
            return Ok(());
        }
        match self.supervisor.set_mesh(wanted.clone()).await {
            Ok(summary) => {
                tracing::debug!(?summary, "ipam: node mesh handed to the supervisor");
                self.mesh = Some(wanted);
            }
            Err(error) => tracing::warn!("ipam: node mesh not applied: {error}"),
        }
        Ok(())
    }

    /// Publishes the pools, nodes, block owners and borrowed addresses for the
    /// dataplane task when the store moved since the last read (and the snapshot
    /// differs).
    async fn sync_dataplane(&mut self, ipam: &Ipam<AnyStore>) -> Result<(), IpamError> {
        if self.dataplane.is_none() {
            return Ok(());
        }
        let revision = ipam.store().revision().await?;
        if self.dataplane_revision == Some(revision) {
            return Ok(());
        }
        let users = ipam.block_users().await?;
        let pools = ipam.pools().await?;
        self.warn_vxlan_conflicts(&pools);
        let snapshot = dataplane::Snapshot {
            pools: pools
                .into_iter()
                .map(|pool| dataplane::Pool {
                    cidr: pool.cidr,
                    nat_outgoing: pool.nat_outgoing,
                    vxlan_mode: pool.vxlan_mode,
                    vxlan_vni: pool.vxlan_vni,
                    vxlan_port: pool.vxlan_port,
                })
                .collect(),
            nodes: ipam
                .nodes()
                .await?
                .into_iter()
                .map(|node| dataplane::Node {
                    name: node.name,
                    addresses: node.addresses,
                    vteps: node
                        .vteps
                        .iter()
                        .map(|vtep| dataplane::Vtep {
                            tunnel_address: vtep.tunnel_address,
                            mac: vtep.mac.0,
                        })
                        .collect(),
                })
                .collect(),
            blocks: users
                .owners
                .into_iter()
                .map(|(block, node)| dataplane::BlockOwner { block, node })
                .collect(),
            borrowed: users
                .borrowed
                .into_iter()
                .map(|(address, node)| dataplane::Borrowed { address, node })
                .collect(),
        };
        let Some(sender) = &self.dataplane else {
            return Ok(());
        };
        sender.send_if_modified(|published| {
            let changed = published.as_ref() != Some(&snapshot);
            if changed {
                *published = Some(snapshot);
            }
            changed
        });
        self.dataplane_revision = Some(revision);
        Ok(())
    }

    /// Warns of the stored VXLAN pools whose VNI or port differs from their family's
    /// first VXLAN pool (by CIDR), whose VNI and port the device takes (`bgpctl ipam
    /// pool add` refuses them; another writer or an older version may have stored
    /// them): once per pool, and again when the conflicts change.
    fn warn_vxlan_conflicts(&mut self, pools: &[ipam::Pool]) {
        let conflicts = ipam::pool::vxlan_conflicts(pools);
        if conflicts != self.vxlan_conflicts {
            for conflict in &conflicts {
                tracing::warn!(
                    "ipam: {conflict}; the device keeps the first pool's (change the pool: bgpctl ipam pool delete, then add)"
                );
            }
            self.vxlan_conflicts = conflicts;
        }
    }

    /// Logs a datastore error: once, again when it changes, and once a minute. An
    /// API server outage is told once, by `ipam::outage`, so an API server's error
    /// is logged here only when that module does not tell it, and only from its
    /// second sighting in a row: the first may come before the watches have noticed
    /// the outage (this task's request and the watches fail at the same moment).
    fn report(&mut self, error: &IpamError) {
        let text = error.to_string();
        let now = Instant::now();
        let first = self.failing.is_none();
        let repeat = match &self.failing {
            Some((last, at, logged)) => {
                *last != text || now.duration_since(*at) >= REPEAT_ERROR || !logged
            }
            None => true,
        };
        if repeat {
            let what = if self.advertised.is_some() {
                "the last known blocks stay advertised"
            } else {
                "no IPAM block is advertised yet"
            };
            let outage = ipam::outage::failing_servers()
                .iter()
                .any(|server| text.contains(server.as_str()));
            let quiet = outage || (first && text.contains("API server "));
            if quiet {
                tracing::debug!("ipam: {text}; {what}; retrying");
            } else {
                tracing::error!("ipam: {text}; {what}; retrying");
            }
            self.failing = Some((text, now, !quiet));
        }
    }
}

/// The next notification of an optional watch (never, without one).
async fn next(watch: &mut Option<Watch>) -> Result<u64, StoreError> {
    match watch {
        Some(watch) => watch.changed().await,
        None => std::future::pending().await,
    }
}
