//! The IPAM task of bgpd (issue 4): the node's pod address blocks as local routes,
//! the node registry and the node-to-node mesh. (Named `ipam_task` so that it does
//! not shadow the `ipam` crate.)
//!
//! - [`source`]: the IPAM task. It connects to the datastore of `[ipam]` (retrying
//!   while it is down, with one error line per outage), creates the configured
//!   pools, registers the node (name, addresses, ASN, labels), claims a block per
//!   family (`ensure_blocks`), keeps the node's VXLAN tunnel endpoints in the
//!   registry equal to what the pools ask for (at start and when the pools change),
//!   re-runs `address_detection` at each resync and registers the node's new
//!   addresses when its interfaces changed (`Settings::redetect`),
//!   and keeps the rib task's `IpamBlock` routes (one per
//!   block the node owns, blackholed in the kernel) and `IpamBorrowed` routes (one
//!   host route per address borrowed from another node's block) equal to the
//!   datastore's. It re-reads on a control-socket notification (`ipam-changed`,
//!   sent by `wren-ipam` after each ADD and DEL), on the datastore watch, and every
//!   `resync_interval` seconds. Its first `Replace` of `IpamBlock` is what the first
//!   convergence waits for (no kernel route churn across a restart).
//! - [`mesh`]: the neighbors the registry asks for, handed to the supervisor.
//! - The pools and the registry as a `dataplane::Snapshot` for the dataplane task
//!   (`[dataplane]`'s seam: a `watch`, read again whenever the store's revision
//!   moved).
//! - What it last knew ([`IpamStatus`]: the node's blocks, whether the datastore
//!   answers, what the node uses of each pool ([`usage`])) on a `watch`, for the
//!   `WrenNode` status the cluster task writes and for the metrics
//!   ([`IpamHandle::status`]).
//! - The operator commands (`bgpctl show ipam`, `ipam check`, release, pools) are
//!   `ipam::ops::execute`, run by the control handler with [`IpamHandle::client`].
//!
//! Calling contract: [`spawn`] starts the task and returns an [`IpamHandle`] for the
//! control server; the task runs until aborted (the daemon aborts it at stop). It
//! never withdraws what it advertised because the datastore is unreachable: the
//! last known blocks stay advertised until the datastore says otherwise.

pub mod mesh;
pub mod source;
pub mod usage;

use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ipam::{AnyStore, Ipam};
use ipnet::IpNet;
use tokio::sync::{Notify, mpsc, watch};
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::dataplane_task::SnapshotSender;
use crate::events::Events;
use crate::supervisor::Supervisor;
use crate::tasks::RibInput;

/// What the IPAM task works from (the `[ipam]` section, resolved).
#[derive(Clone, Debug)]
pub struct Settings {
    pub node: String,
    pub datastore: String,
    pub asn: u32,
    pub addresses: Vec<IpAddr>,
    pub labels: std::collections::BTreeMap<String, String>,
    pub pools: Vec<ipam::Pool>,
    pub strict_affinity: Option<bool>,
    pub max_blocks_per_node: Option<u32>,
    pub resync_interval: Duration,
    /// Follow the node registry with the mesh (`[bgp] node_mesh`).
    pub mesh: bool,
    /// The `address_detection` run again at each resync, when it reads the host's
    /// interfaces or routes: the registered addresses follow the underlay (an
    /// address changed on the parent device), and with them the VXLAN device here
    /// and its FDB entries on the other nodes. `None` with `node_addresses`, with
    /// `kubernetes-internal-ip` (read once at start) and without detection.
    pub redetect: Option<cluster::address::Detection>,
}

impl Settings {
    /// The settings of `config`'s `[ipam]` section; `Ok(None)` without one, `Err`
    /// when the node name cannot be found (no `node` and no usable host name).
    /// `internal_ips`: the Node's InternalIP addresses, read by the daemon when
    /// `address_detection` is `kubernetes-internal-ip`.
    pub fn from_config(
        config: &Config,
        internal_ips: Option<&[IpAddr]>,
    ) -> Result<Option<Settings>, String> {
        let Some(section) = &config.ipam else {
            return Ok(None);
        };
        Ok(Some(Settings {
            node: section.node_name()?,
            datastore: section.datastore.clone(),
            asn: config.bgp.asn.get(),
            addresses: section.addresses(config.bgp.router_id, internal_ips)?,
            labels: section.node_labels.clone(),
            pools: section
                .pools
                .iter()
                .map(ipam::Pool::from_settings)
                .collect(),
            strict_affinity: section.strict_affinity,
            max_blocks_per_node: section.max_blocks_per_node,
            resync_interval: Duration::from_secs(u64::from(section.resync_interval.max(1))),
            mesh: config.node_mesh(),
            redetect: section.address_detection.clone().filter(|detection| {
                section.node_addresses.is_empty()
                    && !matches!(detection, cluster::address::Detection::KubernetesInternalIp)
            }),
        }))
    }
}

/// What the IPAM task last knew of the node, for its status.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IpamStatus {
    /// The blocks the node owns (advertised).
    pub blocks: Vec<IpNet>,
    /// `None` before the first connection; then whether the datastore answers, with
    /// its error when it does not.
    pub reachable: Option<Result<(), String>>,
    /// What the node uses of each pool, at the last synchronisation (kept while the
    /// datastore is down).
    pub usage: Vec<usage::PoolUsage>,
}

/// The control server's way to the IPAM task and its datastore.
#[derive(Clone, Debug)]
pub struct IpamHandle {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    node: String,
    url: String,
    /// The task's datastore client, once connected.
    client: Mutex<Option<Ipam<AnyStore>>>,
    /// Wakes the task to re-read now (a CNI ADD or DEL, an operator's release).
    changed: Notify,
    /// What the task last knew (one value: the latest wins).
    status: watch::Sender<IpamStatus>,
    /// The communities of the node's block routes (`BGPConfiguration`), set by the
    /// cluster task.
    block_communities: Mutex<Vec<u32>>,
}

impl IpamHandle {
    /// This node's name.
    pub fn node(&self) -> &str {
        &self.shared.node
    }

    /// The datastore URL.
    pub fn url(&self) -> &str {
        &self.shared.url
    }

    /// Asks the task to re-read the node's allocations now (coalesced: several
    /// notifications before it wakes make one re-read).
    pub fn notify(&self) {
        self.shared.changed.notify_one();
    }

    /// A datastore client: the task's, else a new connection (which fails with the
    /// datastore's own one-line error while it is down).
    pub async fn client(&self) -> Result<Ipam<AnyStore>, ipam::IpamError> {
        let existing = self
            .shared
            .client
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone();
        match existing {
            Some(client) => Ok(client),
            None => ipam::connect(&self.shared.url).await,
        }
    }

    /// Follows what the task knows of the node: its blocks, whether the datastore
    /// answers.
    pub fn status(&self) -> watch::Receiver<IpamStatus> {
        self.shared.status.subscribe()
    }

    /// Sets the communities of the node's block routes; the task re-announces the
    /// blocks when they changed.
    pub fn set_block_communities(&self, communities: Vec<u32>) {
        let changed = {
            let mut slot = self
                .shared
                .block_communities
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            replace(&mut *slot, communities)
        };
        if changed {
            self.notify();
        }
    }

    fn block_communities(&self) -> Vec<u32> {
        self.shared
            .block_communities
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    fn set_blocks(&self, blocks: Vec<IpNet>) {
        self.shared
            .status
            .send_if_modified(|status| replace(&mut status.blocks, blocks));
    }

    fn set_usage(&self, usage: Vec<usage::PoolUsage>) {
        self.shared
            .status
            .send_if_modified(|status| replace(&mut status.usage, usage));
    }

    fn set_reachable(&self, reachable: Result<(), String>) {
        self.shared
            .status
            .send_if_modified(|status| replace(&mut status.reachable, Some(reachable)));
    }

    fn set_client(&self, client: Option<Ipam<AnyStore>>) {
        *self
            .shared
            .client
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = client;
    }
}

/// Starts the IPAM task: local routes to `rib`, mesh neighbors to `supervisor`,
/// pools and nodes to the dataplane task.
pub fn spawn(
    settings: Settings,
    rib: mpsc::Sender<RibInput>,
    supervisor: Supervisor,
    dataplane: Option<SnapshotSender>,
    events: Events,
) -> (IpamHandle, JoinHandle<()>) {
    let handle = IpamHandle {
        shared: Arc::new(Shared {
            node: settings.node.clone(),
            url: settings.datastore.clone(),
            client: Mutex::new(None),
            changed: Notify::new(),
            status: watch::Sender::new(IpamStatus::default()),
            block_communities: Mutex::new(Vec::new()),
        }),
    };
    let task = tokio::spawn(source::run(
        settings,
        handle.clone(),
        rib,
        supervisor,
        dataplane,
        events,
    ));
    (handle, task)
}

/// Sets `slot` to `value`; whether it changed.
fn replace<T: PartialEq>(slot: &mut T, value: T) -> bool {
    if *slot == value {
        return false;
    }
    *slot = value;
    true
}
