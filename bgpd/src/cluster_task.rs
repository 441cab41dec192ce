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
//! - While the API server is down, nothing changes: the watch keeps its last state.
//!
//! Calling contract: [`spawn`] with the reader of the event stream subscribed before
//! the rib task started (so the first convergence cannot be missed).

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use cluster::translate::NodeSettings;
use cluster::watch::WatchSettings;
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;

use crate::config::{Config, NeighborConfig};
use crate::events::Event;
use crate::supervisor::{ClusterPart, Supervisor};

/// First and longest wait between two tries of a write the API server refused.
const RETRY: (Duration, Duration) = (Duration::from_millis(500), Duration::from_secs(30));

/// What the cluster task works from.
#[derive(Clone, Debug)]
pub struct Settings {
    pub node: String,
    pub addresses: Vec<IpAddr>,
    pub namespace: String,
    pub kubeconfig: Option<PathBuf>,
}

impl Settings {
    /// The settings of `config`'s `[kubernetes]`; `Ok(None)` without one. The node's
    /// name and addresses are those of `[ipam]` when configured, else `NODENAME` (or
    /// the host name) and the router id.
    pub fn from_config(config: &Config) -> Result<Option<Settings>, String> {
        let Some(section) = &config.kubernetes else {
            return Ok(None);
        };
        let (node, addresses) = match &config.ipam {
            Some(ipam) => (ipam.node_name()?, ipam.addresses(config.bgp.router_id)?),
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
        }))
    }
}

/// Starts the cluster task.
pub fn spawn(
    settings: Settings,
    file: Arc<Config>,
    supervisor: Supervisor,
    events: broadcast::Receiver<Arc<Event>>,
) -> JoinHandle<()> {
    tokio::spawn(run(settings, file, supervisor, events))
}

async fn run(
    settings: Settings,
    file: Arc<Config>,
    supervisor: Supervisor,
    events: broadcast::Receiver<Arc<Event>>,
) {
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
    let watch = cluster::watch::run(
        client.clone(),
        WatchSettings {
            node: settings.node.clone(),
            addresses: settings.addresses.clone(),
            namespace: settings.namespace.clone(),
            api_server: api_server.clone(),
        },
        sender,
    );
    let condition = network_available(client, api_server, settings.node.clone(), events);
    let apply = async move {
        let mut unapplied = Unapplied::default();
        while changes.changed().await.is_ok() {
            let Some(node_settings) = changes.borrow_and_update().clone() else {
                continue;
            };
            unapplied.report(&file, &node_settings);
            let part = ClusterPart {
                neighbors: neighbors(&file, &node_settings),
                cluster_id: node_settings.cluster_id,
            };
            if supervisor.set_cluster(part).await.is_err() {
                return;
            }
        }
    };
    // The watch ends only when `apply` stops reading: bgpd is stopping.
    tokio::join!(watch, apply, condition);
}

/// The neighbors of `settings`, each parsed and checked as the file's are; those
/// that fail are left out with one line each.
fn neighbors(file: &Config, settings: &NodeSettings) -> Vec<NeighborConfig> {
    let mut out = Vec::new();
    for table in &settings.neighbors {
        let from = table
            .get("description")
            .and_then(|value| value.as_str())
            .unwrap_or("a BGPPeer")
            .to_owned();
        let neighbor: NeighborConfig = match toml::Value::Table(table.clone()).try_into() {
            Ok(neighbor) => neighbor,
            Err(error) => {
                tracing::warn!("{from}: refused: {error}");
                continue;
            }
        };
        // The file's checks, on the file with this neighbor added.
        let mut candidate = file.clone();
        if candidate.neighbor(neighbor.address).is_some() {
            continue;
        }
        candidate.bgp.neighbors.push(neighbor.clone());
        let problems =
            crate::config::check::check(&candidate, &crate::config::error::Locator::new(&from, ""));
        if let Some(problem) = problems.first() {
            tracing::warn!("{problem}: not peering");
            continue;
        }
        out.push(neighbor);
    }
    out
}

/// The cluster's settings the file overrides, each logged once per value.
#[derive(Debug, Default)]
struct Unapplied {
    told: Vec<String>,
}

impl Unapplied {
    fn report(&mut self, file: &Config, settings: &NodeSettings) {
        let mut lines = Vec::new();
        if let Some(asn) = settings.asn.filter(|asn| *asn != file.bgp.asn.get()) {
            lines.push(format!(
                "the cluster's AS {asn} is not applied: [bgp] asn {} of the file wins",
                file.bgp.asn.get()
            ));
        }
        if let Some(port) = settings
            .listen_port
            .filter(|port| file.bgp.listen.iter().any(|a| a.port() != *port))
        {
            lines.push(format!(
                "BGPConfiguration listenPort {port} is not applied: [bgp] listen of the file wins"
            ));
        }
        if let Some(mesh) = settings.node_mesh.filter(|mesh| *mesh != file.node_mesh()) {
            lines.push(format!(
                "BGPConfiguration nodeToNodeMeshEnabled {mesh} is not applied: bgpd follows [bgp] node_mesh ({})",
                file.node_mesh()
            ));
        }
        if !settings.block_communities.is_empty() {
            lines.push(
                "BGPConfiguration communities are not applied: bgpd does not tag IPAM blocks yet"
                    .to_owned(),
            );
        }
        for line in lines {
            if !self.told.contains(&line) {
                tracing::warn!("{line}");
                self.told.push(line);
            }
        }
    }
}

/// Waits for the first convergence, then sets the Node's NetworkUnavailable=False
/// until the API server takes it.
async fn network_available(
    client: cluster::client::Client,
    api_server: String,
    node: String,
    mut events: broadcast::Receiver<Arc<Event>>,
) {
    loop {
        match events.recv().await {
            Ok(event) if *event == Event::Converged => break,
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
