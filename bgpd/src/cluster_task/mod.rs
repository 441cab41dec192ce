//! The cluster task (`[kubernetes]`, issue 14): bgpd's side of the `cluster` crate.
//! The rib and the sessions never see a Kubernetes client; this task only hands the
//! supervisor what the cluster says, as a reload would.
//!
//! - It watches the API server through `cluster::watch` (`BGPConfiguration`,
//!   `BGPPeer`, Nodes, the namespace's Secrets). Each change of this node's settings
//!   becomes a [`ClusterPart`] for the supervisor: the `BGPPeer`s' neighbors, parsed
//!   from `[[bgp.neighbor]]` tables by the file's own parser and checked with the
//!   file's checks (a neighbor that fails is skipped with one line naming its
//!   `BGPPeer`), and the Node's route reflector cluster id. Only the sessions whose
//!   settings changed reset.
//! - The file wins where both say something: its neighbors, its cluster id, its
//!   `[bgp] asn` and `listen` (a different AS or port from the cluster is logged as
//!   not applied, once per value).
//! - After the first convergence (`Event::Converged`) it sets the Node's condition
//!   `NetworkUnavailable=False` (reason `WrenIsUp`), retrying with backoff until
//!   the API server takes it.
//! - `BGPConfiguration` `communities` go to the IPAM task, which attaches them to
//!   the node's block routes (re-announced when they change).
//! - It writes the node's `WrenNode` status ([`status`]) on change, at most once
//!   every [`status::MIN_WRITE_INTERVAL`], from the supervisor's neighbors, the rib's
//!   per-peer counters, the IPAM task's blocks and reachability, and convergence.
//! - With `[ipam]`, it runs the cluster's IPAM garbage collector ([`collector`]),
//!   elected through a Lease in `[kubernetes] namespace`; one pass at a time
//!   cluster-wide. The Lease holder also posts the Warning Events of refused
//!   resources that are the same on every node (`cluster::watch`), and on the
//!   Kubernetes datastore follows the `IPPool`s for those IPAM refuses
//!   (`cluster::pools`); without `[ipam]` every node posts them (one Event each
//!   all the same: `cluster::events`).
//! - While the API server is down, nothing changes: the watch keeps its last state,
//!   the status waits, the collector makes no pass.
//!
//! Calling contract: [`spawn`] with the reader of the event stream subscribed before
//! the rib task started (so the first convergence cannot be missed). The task runs
//! until bgpd stops; if its status writer or collector ends, it ends, and the
//! daemon's watch stops bgpd naming it.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

mod collector;
mod peers;
mod status;

use cluster::watch::WatchSettings;
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;

use self::peers::Unapplied;
use crate::config::Config;
use crate::events::{Event, Occurrence};
use crate::ipam_task::IpamHandle;
use crate::supervisor::{ClusterPart, Supervisor};
use crate::tasks::RibInput;

/// First and longest wait between two tries of a write the API server refused.
const RETRY: (Duration, Duration) = (Duration::from_millis(500), Duration::from_secs(30));

/// What the cluster task works from.
#[derive(Clone, Debug)]
pub struct Settings {
    pub node: String,
    pub addresses: Vec<IpAddr>,
    pub namespace: String,
    pub kubeconfig: Option<PathBuf>,
    /// The collector's grace before a gone pod's addresses are released.
    pub pod_grace: Duration,
}

impl Settings {
    /// The settings of `config`'s `[kubernetes]`; `Ok(None)` without one. The node's
    /// name and addresses are those of `[ipam]` when configured, else `NODENAME` (or
    /// the host name) and the router id.
    /// `internal_ips`: as for the IPAM task's settings.
    pub fn from_config(
        config: &Config,
        internal_ips: Option<&[IpAddr]>,
    ) -> Result<Option<Settings>, String> {
        let Some(section) = &config.kubernetes else {
            return Ok(None);
        };
        let (node, addresses) = match &config.ipam {
            Some(ipam) => (
                ipam.node_name()?,
                ipam.addresses(config.bgp.router_id, internal_ips)?,
            ),
            None => (
                cluster::node::name().map_err(|error| error.to_string())?,
                vec![IpAddr::V4(config.bgp.router_id)],
            ),
        };
        Ok(Some(Settings {
            node,
            addresses,
            namespace: section.namespace.clone(),
            kubeconfig: section.kubeconfig.clone(),
            pod_grace: Duration::from_secs(section.collector_pod_grace),
        }))
    }
}

/// What the cluster task is handed by the daemon.
#[derive(Debug)]
pub struct Wiring {
    pub file: Arc<Config>,
    pub supervisor: Supervisor,
    pub rib: mpsc::Sender<RibInput>,
    /// The IPAM task's handle, with `[ipam]`: the node's blocks for its status, and
    /// the datastore the collector cleans.
    pub ipam: Option<IpamHandle>,
    /// Subscribed before the rib task started, so the first convergence cannot be
    /// missed.
    pub events: broadcast::Receiver<Arc<Occurrence>>,
}

/// Starts the cluster task.
pub fn spawn(settings: Settings, wiring: Wiring) -> JoinHandle<()> {
    tokio::spawn(run(settings, wiring))
}

async fn run(settings: Settings, wiring: Wiring) {
    let Wiring {
        file,
        supervisor,
        rib,
        ipam,
        events,
    } = wiring;
    let mut wait = RETRY.0;
    let (client, api_server) = loop {
        match cluster::client::connect(settings.kubeconfig.as_deref()).await {
            Ok(connected) => break connected,
            Err(error) => {
                tracing::error!("{error}; trying again in {wait:?}");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(RETRY.1);
            }
        }
    };
    tracing::info!(node = %settings.node, "Kubernetes API server {api_server}: watching BGP resources");
    let (sender, mut changes) = watch::channel(None);
    // The collector's Lease holder posts the Events of cluster-wide refusals; without
    // a collector (no [ipam]) every node does (one Event each all the same).
    let (holder, leading) = watch::channel(false);
    // The IPPools are custom resources only on the Kubernetes datastore.
    let on_kubernetes = file
        .ipam
        .as_ref()
        .is_some_and(|ipam| ipam.datastore.starts_with("kubernetes"));
    let pools = {
        let (client, api_server) = (client.clone(), api_server.clone());
        let (node, leading) = (settings.node.clone(), leading.clone());
        async move {
            if on_kubernetes {
                cluster::pools::run(client, api_server, node, leading).await;
            }
            std::future::pending::<()>().await;
        }
    };
    let watch = cluster::watch::run(
        client.clone(),
        WatchSettings {
            node: settings.node.clone(),
            addresses: settings.addresses.clone(),
            namespace: settings.namespace.clone(),
            api_server: api_server.clone(),
            leading: ipam.is_some().then_some(leading),
        },
        sender,
    );
    let (converged_sender, converged) = watch::channel(false);
    let condition = network_available(
        client.clone(),
        api_server.clone(),
        settings.node.clone(),
        events,
        converged_sender,
    );
    let status = status::run(status::Inputs {
        client: client.clone(),
        api_server: api_server.clone(),
        node: settings.node.clone(),
        asn: file.bgp.asn.get(),
        supervisor: supervisor.clone(),
        rib,
        ipam: ipam.as_ref().map(IpamHandle::status),
        converged,
    });
    let collector = collector::run(
        client,
        settings.node.clone(),
        settings.namespace.clone(),
        settings.pod_grace,
        api_server.clone(),
        ipam.clone(),
        holder,
    );
    let apply = async move {
        let mut unapplied = Unapplied::default();
        while changes.changed().await.is_ok() {
            let Some(node_settings) = changes.borrow_and_update().clone() else {
                continue;
            };
            unapplied.report(&file, &node_settings);
            if let Some(ipam) = &ipam {
                ipam.set_block_communities(node_settings.block_communities.clone());
            }
            let part = ClusterPart {
                neighbors: peers::neighbors(&file, &node_settings),
                cluster_id: node_settings.cluster_id,
                node_mesh: node_settings.node_mesh,
            };
            if supervisor.set_cluster(part).await.is_err() {
                return;
            }
        }
    };
    // The watch ends only when `apply` stops reading: bgpd is stopping. The status
    // writer and the collector run until then.
    tokio::select! {
        _ = async { tokio::join!(watch, apply, condition) } => {}
        () = status => {}
        () = collector => {}
        () = pools => {}
    }
}

/// Waits for the first convergence, then sets the Node's NetworkUnavailable=False
/// until the API server takes it.
async fn network_available(
    client: cluster::client::Client,
    api_server: String,
    node: String,
    mut events: broadcast::Receiver<Arc<Occurrence>>,
    converged: watch::Sender<bool>,
) {
    loop {
        match events.recv().await {
            Ok(occurrence) if occurrence.event == Event::Converged => break,
            Ok(_) => {}
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                tracing::debug!(
                    missed,
                    "cluster task: events missed while waiting for convergence"
                );
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
    // No more events wanted: building them costs the other tasks.
    drop(events);
    converged.send_replace(true);
    let mut wait = RETRY.0;
    loop {
        match cluster::client::network_available(&client, &api_server, &node).await {
            Ok(()) => {
                tracing::info!(node = %node, "Node condition NetworkUnavailable=False (WrenIsUp) set");
                return;
            }
            Err(error) => {
                tracing::error!("{error}; trying again in {wait:?}");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(RETRY.1);
            }
        }
    }
}
